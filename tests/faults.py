"""A fault-injecting HTTP/1.1 upstream, written on raw asyncio streams so every
byte (and every TCP reset) is under the test's control.

``start_faults()`` runs one server on 127.0.0.1, port 0, in its own thread and
event loop (TCP_NODELAY on the listening and accepted sockets). Keep-alive is
supported, so connections really go back to the client's pool. Routes:

- ``/ok``: 200 ``ok``.
- ``/status/{code}``: that status. ``?retry_after=V`` sets ``Retry-After``;
  ``?drip=S`` sends the body in 4 chunks, S seconds apart.
- ``/hang``: never answers; waits until the client goes away.
- ``/drip?n=N&interval=S``: 200, a chunked body of N chunks, S seconds apart.
- ``/reset?after=S``: 200 announcing 64 KiB, sends 1 KiB, waits S seconds, then
  resets the connection (SO_LINGER 0: a real RST, not a FIN).
- ``/reset-early``: resets the connection without answering.
- ``/close``: closes the connection without answering.
- ``/garbage?kind=status|header|length``: a malformed response, then close.

``FaultServer.fail_next = N`` answers the next N requests (any route but
``/ok?healthy``) with ``fail_status`` (503 by default): a 5xx burst.

Every request head that arrives is counted in ``hits[(method, path)]``, and per
``X-Request-Id`` in ``request_ids``: that is how tests see whether a request
reached the upstream, and how often.

``closed_port()`` yields a port that refuses connections (bound, never listening).

``CountingTransport`` wraps any inner transport and counts the response streams
it hands out and how many of them were closed, so a test can prove that every
response the resilient layer dropped was closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import httpx

__all__ = [
    "CountingStream",
    "CountingTransport",
    "FaultServer",
    "closed_port",
    "start_faults",
]

_REASONS = {
    200: "OK",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class _Close(Exception):
    """Raised by a route to end the connection (after a fault)."""


@dataclass
class FaultServer:
    """The server's address and its scripted, thread-safe state."""

    host: str = "127.0.0.1"
    port: int = 0
    fail_next: int = 0
    fail_status: int = 503
    hits: Counter[tuple[str, str]] = field(default_factory=Counter)
    request_ids: Counter[str] = field(default_factory=Counter)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        with self.lock:
            self.fail_next = 0
            self.fail_status = 503
            self.hits.clear()
            self.request_ids.clear()

    def total_hits(self, path: str | None = None) -> int:
        with self.lock:
            return sum(n for (_, p), n in self.hits.items() if path is None or p == path)

    # -- protocol ------------------------------------------------------------------

    async def _read_request(self, reader: asyncio.StreamReader) -> _Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None  # the client closed an idle keep-alive connection
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.hits[(method, parts.path)] += 1
            if "x-request-id" in headers:
                self.request_ids[headers["x-request-id"]] += 1
        body = b""
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                data = await reader.readexactly(size + 2)
                if size == 0:
                    break
                chunks.append(data[:-2])
            body = b"".join(chunks)
        return _Request(method, parts.path, query, headers, body)

    @staticmethod
    def _head(status: int, headers: dict[str, str]) -> bytes:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Whatever')}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        request: _Request,
        status: int,
        body: bytes,
        **extra: str,
    ) -> None:
        headers = {"content-length": str(len(body)), "content-type": "text/plain", **extra}
        writer.write(self._head(status, headers))
        if request.method != "HEAD":
            writer.write(body)
        await writer.drain()

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    async def _route(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: _Request
    ) -> None:
        path, query = request.path, request.query
        with self.lock:
            burst = self.fail_next > 0 and "healthy" not in query
            if burst:
                self.fail_next -= 1
        if burst:
            await self._respond(writer, request, self.fail_status, b"burst")
            return
        if path == "/ok":
            await self._respond(writer, request, 200, b"ok")
        elif path.startswith("/status/"):
            status = int(path.rsplit("/", 1)[1])
            extra = {}
            if "retry_after" in query:
                extra["retry-after"] = query["retry_after"]
            if "drip" in query:
                gap = float(query["drip"])
                writer.write(self._head(status, {"content-length": "16", **extra}))
                for _ in range(4):
                    await writer.drain()
                    await asyncio.sleep(gap)
                    writer.write(b"slow")
                await writer.drain()
            else:
                await self._respond(writer, request, status, f"status {status}".encode(), **extra)
        elif path == "/hang":
            await reader.read()  # until the client gives up and closes
            raise _Close
        elif path == "/drip":
            n, gap = int(query.get("n", "4")), float(query.get("interval", "0.01"))
            writer.write(self._head(200, {"transfer-encoding": "chunked"}))
            for i in range(n):
                await writer.drain()
                if i:
                    await asyncio.sleep(gap)
                data = f"chunk {i}\n".encode()
                writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        elif path == "/reset":
            writer.write(self._head(200, {"content-length": str(64 * 1024)}))
            writer.write(b"x" * 1024)
            await writer.drain()
            await asyncio.sleep(float(query.get("after", "0.02")))
            self._reset(writer)
            raise _Close
        elif path == "/reset-early":
            self._reset(writer)
            raise _Close
        elif path == "/close":
            raise _Close
        elif path == "/garbage":
            kind = query.get("kind", "status")
            if kind == "status":
                writer.write(b"HTTP/1.1 TWO-HUNDRED OK\r\ncontent-length: 2\r\n\r\nok")
            elif kind == "header":
                writer.write(b"HTTP/1.1 200 OK\r\nthis is not a header\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: lots\r\n\r\nok")
            await writer.drain()
            raise _Close
        else:
            await self._respond(writer, request, 404, b"no such fault")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self.lock:
            self.connections += 1
        try:
            while True:
                request = await self._read_request(reader)
                if request is None:
                    break
                await self._route(reader, writer, request)
        except (_Close, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(256)
    sock.setblocking(False)
    return sock


@contextlib.contextmanager
def start_faults() -> Iterator[FaultServer]:
    """Run a :class:`FaultServer` in a thread for the duration of the block."""
    sock = _listening_socket()
    fault = FaultServer(port=sock.getsockname()[1])
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Event | None = None
    tasks: set[asyncio.Task[None]] = set()

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await fault._serve(reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()
        finally:
            tasks.discard(task)

    async def main() -> None:
        nonlocal stop
        stop = asyncio.Event()
        server = await asyncio.start_server(client, sock=sock)
        started.set()
        await stop.wait()
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    try:
        if not started.wait(10):  # pragma: no cover
            raise RuntimeError("fault server did not start")
        yield fault
    finally:
        assert stop is not None
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=10)
        loop.close()
        sock.close()


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nobody else takes it)
    but never listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


# -- counting what the client side opens and closes ---------------------------------


@dataclass
class _Opened:
    method: str
    path: str
    status: int
    closed: bool = False


class CountingStream(httpx.AsyncByteStream):
    """Passes a response body through and notes when it is closed."""

    def __init__(self, stream: httpx.AsyncByteStream, record: _Opened) -> None:
        self._stream = stream
        self._record = record

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        self._record.closed = True
        await self._stream.aclose()


class CountingTransport(httpx.AsyncBaseTransport):
    """An inner transport that counts every response it produced and whether
    it was closed (by the caller, or by the resilient layer that dropped it)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.opened: list[_Opened] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        record = _Opened(request.method, request.url.path, response.status_code)
        self.opened.append(record)
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        response.stream = CountingStream(stream, record)
        return response

    @property
    def closed(self) -> int:
        return sum(r.closed for r in self.opened)

    def unclosed(self) -> list[tuple[str, str, int]]:
        return [(r.method, r.path, r.status) for r in self.opened if not r.closed]

    async def aclose(self) -> None:
        await self.inner.aclose()
