"""The real upstream for the benchmarks: uvicorn on 127.0.0.1, port 0, in its own process.

Run as a script (``python benchmarks/_server.py``); it prints ``PORT <n>`` on
stdout once its socket listens and serves until SIGTERM/SIGINT. A server in
a thread of the benchmark process would measure GIL contention and Nagle
stalls, not HTTP, so the benchmark always starts this in a subprocess.

Routes (a bare ASGI app, so the server's own cost stays small and steady):

- ``/hang``: never answers; waits until the client goes away.
- ``/tail/<key>?call=<n>&every=<N>&slow_ms=<ms>``: a long tail (the ``hedging``
  section). Every hit is counted under ``<key>``. The first hit for a call
  number ``n`` that is a multiple of ``N`` answers after ``ms`` milliseconds;
  every other hit, a hedge of that same call included, answers at once: the
  slowness is that attempt's bad luck (a pause, a busy worker), not the request's.
- ``/hits/<key>``: how many requests ``/tail/<key>`` has received (the server's
  own count, not the client's), as the body.
- anything else: ``200 ok``.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_OK_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"2")]

#: ``/tail/<key>``: hits received, and the slow call numbers already served slowly.
_hits: dict[str, int] = {}
_slow_served: dict[str, set[int]] = {}


def _query(scope: Scope) -> dict[str, str]:
    raw: bytes = scope["query_string"]
    pairs = (item.partition("=") for item in raw.decode("ascii").split("&") if item)
    return {name: value for name, _, value in pairs}


async def _tail(key: str, scope: Scope) -> None:
    """Count the hit; sleep when it is the first attempt of a slow call."""
    _hits[key] = _hits.get(key, 0) + 1
    query = _query(scope)
    call, every = int(query["call"]), int(query["every"])
    served = _slow_served.setdefault(key, set())
    if call % every == 0 and call not in served:
        served.add(call)
        await asyncio.sleep(int(query["slow_ms"]) / 1000)


async def _send_text(send: Send, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":  # lifespan is off; nothing else is expected
        return
    if scope["path"] == "/hang":
        while (await receive())["type"] != "http.disconnect":
            pass
        return
    path: str = scope["path"]
    if path.startswith("/tail/"):
        await _tail(path[len("/tail/") :], scope)
    elif path.startswith("/hits/"):
        await _send_text(send, str(_hits.get(path[len("/hits/") :], 0)).encode())
        return
    await send({"type": "http.response.start", "status": 200, "headers": _OK_HEADERS})
    await send({"type": "http.response.body", "body": b"ok"})


def main() -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    config = uvicorn.Config(
        app,
        log_level="error",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    # The socket already listens: connections made from now on wait in its
    # backlog until uvicorn accepts them, so the port can be announced now.
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


if __name__ == "__main__":
    main()
