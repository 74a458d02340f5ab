"""A scriptable upstream for the examples: nothing here touches the internet.

``Upstream`` is a small ASGI app whose behaviour the example switches at run
time, per host name (the ``Host`` header without the port):

- ``"ok"``: 200 with a small JSON body;
- ``"down"``: 503, the way a sick service or its load balancer answers;
- ``"hang"``: never answers (until the client gives up), the way a stuck one behaves.

``fail_next(n)`` makes the next ``n`` requests answer 503 whatever the mode: a blip.

Serve it on a real socket with :func:`serve` (uvicorn in a thread on
127.0.0.1, port 0), or hand ``upstream.app`` to ``httpx.ASGITransport`` to keep
everything in-process, where any host name (``payments.example.com``) reaches it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["Mode", "Upstream", "serve"]

Mode = Literal["ok", "down", "hang"]
ANY_HOST = "*"


class Upstream:
    """An HTTP service that answers ``ok``, ``down`` or ``hang``, per host name."""

    def __init__(self) -> None:
        self._modes: dict[str, Mode] = {ANY_HOST: "ok"}
        self._hits: Counter[str] = Counter()
        self._fail_next = 0
        self._lock = threading.Lock()
        methods = ["GET", "HEAD", "POST", "PUT", "DELETE"]
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])

    def set(self, mode: Mode, host: str = ANY_HOST) -> None:
        """Switch ``host`` (every host by default) to ``mode``."""
        with self._lock:
            if host == ANY_HOST:
                self._modes = {ANY_HOST: mode}
            else:
                self._modes[host] = mode

    def fail_next(self, n: int) -> None:
        """The next ``n`` requests (to any host) answer 503."""
        with self._lock:
            self._fail_next = n

    def hits(self, host: str = ANY_HOST) -> int:
        """Requests that reached the upstream (for ``host``, or in total)."""
        with self._lock:
            return sum(self._hits.values()) if host == ANY_HOST else self._hits[host]

    async def _handle(self, request: Request) -> Response:
        host = request.url.hostname or ""
        with self._lock:
            self._hits[host] += 1
            mode = self._modes.get(host, self._modes[ANY_HOST])
            if self._fail_next > 0:
                self._fail_next -= 1
                mode = "down"
        if mode == "down":
            return JSONResponse({"error": "service unavailable"}, status_code=503)
        if mode == "hang":
            # Stuck: answer nothing until the client goes away.
            while (await request.receive())["type"] != "http.disconnect":
                pass
        return JSONResponse({"host": host, "path": request.url.path, "ok": True})


@contextlib.contextmanager
def serve(upstream: Upstream) -> Iterator[str]:
    """Run ``upstream`` with uvicorn in a thread on 127.0.0.1, port 0; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Without TCP_NODELAY a server in a thread of this process answers in ~44 ms
    # (Nagle's algorithm meets delayed ACKs) instead of ~1 ms.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        upstream.app, log_level="error", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            threading.Event().wait(0.01)
        else:
            raise RuntimeError("the example upstream did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        sock.close()
