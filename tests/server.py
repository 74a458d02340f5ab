"""A real HTTP/1.1 upstream for tests: uvicorn on 127.0.0.1, port 0, in a thread.

The listening socket gets TCP_NODELAY before uvicorn takes it (without it a
threaded server answers in ~44 ms: Nagle meets delayed ACKs). Behaviour is
scripted per test through ``LiveServer.state``:

- ``/status/{code}``: that status; ``?retry_after=V`` sets ``Retry-After``.
- ``/flaky``: the next ``state.fail_next`` hits get ``state.fail_status``, then 200.
- ``/hang``: never answers (until the client goes away).
- ``/sse?n=N&interval=S``: N server-sent events, S seconds apart.
- ``/drip?n=N&interval=S&status=C``: N chunks, S seconds apart, status C (200).
- ``/bad-gzip``: a gzip body that turns to garbage partway.
- ``/reset-mid-body``: sends part of a chunked body, then drops the connection.
- ``/echo``: 200 with the request body.
- ``/gated``: waits until the test sets ``state.gate``, then 200.
- ``/sse-gated?n=N``: event 0 at once, the other N-1 only after ``state.gate`` is set.

``state.hits`` counts requests per path.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class ServerState:
    hits: Counter[str] = field(default_factory=Counter)
    fail_next: int = 0
    fail_status: int = 503
    whoami_delay: float = 0.0  # seconds /whoami takes on this server
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate: threading.Event = field(default_factory=threading.Event)

    def reset(self) -> None:
        self.gate.clear()
        with self.lock:
            self.hits.clear()
            self.fail_next = 0
            self.fail_status = 503
            self.whoami_delay = 0.0


def build_app(state: ServerState) -> Starlette:
    def hit(request: Request) -> None:
        with state.lock:
            state.hits[request.url.path] += 1

    async def status(request: Request) -> Response:
        hit(request)
        headers = {}
        if "retry_after" in request.query_params:
            headers["Retry-After"] = request.query_params["retry_after"]
        code = int(request.path_params["code"])
        return PlainTextResponse(f"status {code}", status_code=code, headers=headers)

    async def flaky(request: Request) -> Response:
        hit(request)
        with state.lock:
            failing = state.fail_next > 0
            if failing:
                state.fail_next -= 1
        if failing:
            return PlainTextResponse("sick", status_code=state.fail_status)
        return PlainTextResponse("ok")

    async def hang(request: Request) -> Response:
        hit(request)
        # Wait for the client to go away: receive() returns http.disconnect then.
        while (await request.receive())["type"] != "http.disconnect":
            pass
        return PlainTextResponse("too late")

    async def sse(request: Request) -> Response:
        hit(request)
        n = int(request.query_params.get("n", "3"))
        interval = float(request.query_params.get("interval", "0.05"))

        async def events() -> AsyncIterator[bytes]:
            for i in range(n):
                yield f"data: {i}\n\n".encode()
                await asyncio.sleep(interval)

        return StreamingResponse(events(), media_type="text/event-stream")

    async def drip(request: Request) -> Response:
        hit(request)
        n = int(request.query_params.get("n", "3"))
        interval = float(request.query_params.get("interval", "0.05"))

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(n):
                if i:
                    await asyncio.sleep(interval)
                yield f"chunk {i}\n".encode()

        status = int(request.query_params.get("status", "200"))
        return StreamingResponse(chunks(), status_code=status, media_type="text/plain")

    async def bad_gzip(request: Request) -> Response:
        hit(request)
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
        good = compressor.compress(b"resilient " * 2000) + compressor.flush(zlib.Z_SYNC_FLUSH)

        async def chunks() -> AsyncIterator[bytes]:
            yield good
            await asyncio.sleep(0.01)
            yield b"\x07garbage" * 50  # a reserved deflate block type: undecodable

        return StreamingResponse(
            chunks(), media_type="text/plain", headers={"Content-Encoding": "gzip"}
        )

    async def reset_mid_body(request: Request) -> Response:
        hit(request)

        async def broken() -> AsyncIterator[bytes]:
            yield b"partial body "
            await asyncio.sleep(0.01)
            raise RuntimeError("upstream died mid-body")

        return StreamingResponse(broken(), media_type="text/plain")

    async def wait_for_gate() -> None:
        # Bounded, so a test that forgets to open the gate cannot wedge the server.
        for _ in range(10_000):
            if state.gate.is_set():
                return
            await asyncio.sleep(0.002)

    async def gated(request: Request) -> Response:
        hit(request)
        await wait_for_gate()
        return PlainTextResponse("released")

    async def sse_gated(request: Request) -> Response:
        hit(request)
        n = int(request.query_params.get("n", "3"))

        async def events() -> AsyncIterator[bytes]:
            yield b"data: 0\n\n"
            await wait_for_gate()
            for i in range(1, n):
                yield f"data: {i}\n\n".encode()

        return StreamingResponse(events(), media_type="text/event-stream")

    async def whoami(request: Request) -> Response:
        """What this server was asked: the Host header, path and query."""
        hit(request)
        if state.whoami_delay:
            await asyncio.sleep(state.whoami_delay)
        query = f"?{request.url.query}" if request.url.query else ""
        return PlainTextResponse(f"{request.headers['host']} {request.url.path}{query}")

    async def tail(request: Request) -> Response:
        """A long tail: every ``every``-th request (counted per method) takes ``slow`` s."""
        with state.lock:
            state.hits[request.url.path] += 1
            state.hits[f"{request.method} {request.url.path}"] += 1
            n = state.hits[f"{request.method} {request.url.path}"]
        every = int(request.query_params.get("every", "10"))
        if n % every == 0:
            await asyncio.sleep(float(request.query_params.get("slow", "1")))
            return PlainTextResponse("slow")
        return PlainTextResponse("fast")

    async def messages(request: Request) -> Response:
        """A fake of Anthropic's Messages API: ``fail_next`` answers fail first."""
        hit(request)
        with state.lock:
            failing = state.fail_next > 0
            if failing:
                state.fail_next -= 1
        if failing:
            error = {"type": "overloaded_error", "message": "Overloaded"}
            return JSONResponse({"type": "error", "error": error}, status_code=state.fail_status)
        return JSONResponse(
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "model": "claude-test",
                "content": [{"type": "text", "text": "hello"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {"input_tokens": 1, "output_tokens": 1},
            }
        )

    async def echo(request: Request) -> Response:
        hit(request)
        return Response(await request.body(), media_type="application/octet-stream")

    return Starlette(
        routes=[
            Route("/status/{code:int}", status, methods=["GET", "POST", "PUT", "DELETE", "HEAD"]),
            Route("/flaky", flaky, methods=["GET", "POST", "PUT", "DELETE"]),
            Route("/hang", hang),
            Route("/sse", sse),
            Route("/drip", drip),
            Route("/bad-gzip", bad_gzip),
            Route("/reset-mid-body", reset_mid_body),
            Route("/echo", echo, methods=["GET", "POST", "PUT"]),
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/tail", tail, methods=["GET", "POST"]),
            Route("/whoami", whoami),
            Route("/gated", gated),
            Route("/sse-gated", sse_gated),
        ]
    )


@dataclass
class LiveServer:
    url: str
    port: int
    state: ServerState


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@contextlib.contextmanager
def start_server(state: ServerState | None = None) -> Iterator[LiveServer]:
    state = state or ServerState()
    sock = listening_socket()
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        build_app(state), log_level="error", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.01)
        else:  # pragma: no cover
            raise RuntimeError("test server did not start")
        yield LiveServer(url=f"http://127.0.0.1:{port}", port=port, state=state)
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        if thread.is_alive():  # pragma: no cover
            server.force_exit = True
            thread.join(timeout=5)
        sock.close()
