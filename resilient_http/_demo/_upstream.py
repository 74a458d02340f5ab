"""The embedded flaky upstream: HTTP/1.1 servers on asyncio streams, in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from functools import partial
from typing import Literal

from ._scenario import (
    HANG_EVERY,
    SERVICE_TIME,
    SINGLE,
    Layout,
    Phase,
    Schedule,
)


class FlakyUpstream:
    """Tiny HTTP/1.1 servers on 127.0.0.1 (one per server of the ``layout``: two
    by default, three with ``--replicas``) in a thread with its own event loop.

    ``hits[(side, server, phase)]`` counts the requests that reached it; the
    side comes from the ``x-demo-side`` request header. Until ``schedule`` is
    set, every call is healthy.
    """

    def __init__(self, layout: Layout = SINGLE) -> None:
        self.layout = layout
        self.schedule: Schedule | None = None
        self.ports: dict[str, int] = {}
        self._hits: Counter[tuple[str, str, Phase]] = Counter()
        self._first_hit: dict[tuple[str, str, Phase], float] = {}
        self._outage_calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._run, name="demo-upstream", daemon=True)
        self._error: BaseException | None = None

    def url(self, server: str) -> str:
        """Where a caller sends a call to ``server``: its origin, its service's path."""
        return f"{self.origin(server)}/{dict(self.layout.servers)[server]}"

    def origin(self, server: str) -> str:
        return f"http://127.0.0.1:{self.ports[server]}"

    def __enter__(self) -> FlakyUpstream:
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"the demo upstream did not start: {self._error!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(5)

    def hits(self, side: str, server: str, phase: Phase) -> int:
        with self._lock:
            return self._hits[(side, server, phase)]

    def first_hit(self, side: str, server: str, phase: Phase) -> float | None:
        """When (``time.monotonic``) the side's first call in that phase reached the server."""
        with self._lock:
            return self._first_hit.get((side, server, phase))

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # pragma: no cover - reported by __enter__
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        servers = []
        for name, service in self.layout.servers:
            server = await asyncio.start_server(
                partial(self._serve, name, service), "127.0.0.1", 0, backlog=512
            )
            servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        for server in servers:
            server.close()
        for writer in list(self._writers):  # hung handlers see EOF and return
            writer.close()
        await asyncio.sleep(0.05)

    def _decide(self, server: str, side: str) -> Literal["ok", "fail", "hang"]:
        schedule = self.schedule
        now = time.monotonic()
        phase = "healthy" if schedule is None else schedule.phase(now)
        with self._lock:
            self._hits[(side, server, phase)] += 1
            self._first_hit.setdefault((side, server, phase), now)
            if server != self.layout.sick or phase != "outage":
                return "ok"
            n = self._outage_calls[side]
            self._outage_calls[side] += 1
        return "hang" if n % HANG_EVERY == 0 else "fail"

    async def _serve(
        self,
        server: str,
        service: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get(b"content-length", b"0") or 0)
                if length:
                    await reader.readexactly(length)
                side = headers.get(b"x-demo-side", b"other").decode("ascii", "replace")
                action = self._decide(server, side)
                if action == "hang":
                    await reader.read()  # until the caller gives up and hangs up
                    return
                if action == "fail":
                    status, body = b"503 Service Unavailable", b'{"error": "overloaded"}'
                else:
                    await asyncio.sleep(SERVICE_TIME)
                    status, body = b"200 OK", b'{"%s": "fresh"}' % service.encode()
                writer.write(
                    b"HTTP/1.1 %s\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (status, len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


# -- a worker: one client, its traffic, its reports -----------------------------------
