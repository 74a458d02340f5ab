"""The real upstream for the benchmarks: uvicorn on 127.0.0.1, port 0, in its own process.

Run as a script (``python benchmarks/_server.py``); it prints ``PORT <n>`` on
stdout once its socket listens and serves until SIGTERM/SIGINT. A server in
a thread of the benchmark process would measure GIL contention and Nagle
stalls, not HTTP, so the benchmark always starts this in a subprocess.

Routes (a bare ASGI app, so the server's own cost stays small and steady):

- ``/hang``: never answers; waits until the client goes away.
- anything else: ``200 ok``.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_OK_HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"2")]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":  # lifespan is off; nothing else is expected
        return
    if scope["path"] == "/hang":
        while (await receive())["type"] != "http.disconnect":
            pass
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
