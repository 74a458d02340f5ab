"""The four bindings behind one async face, so that one contract test runs on
each: ``httpx.AsyncClient`` and ``httpx2.AsyncClient`` directly (on asyncio and
on trio), ``httpx.Client`` and ``httpx2.Client`` in worker threads
(``anyio.to_thread``), which is how a sync client is driven concurrently.

A test asks the ``binding`` fixture for what it needs (``binding.http`` is the
httpx or httpx2 module, ``binding.api`` is ``resilient_http`` or
``resilient_http.httpx2``) and awaits every call; the sync bindings run each
call in a thread and hand back a response whose ``aread``/``aiter_bytes``/
``aclose`` do the same.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import anyio.to_thread
import httpx
import httpx2

import resilient_http
import resilient_http.httpx2


class ThreadedResponse:
    """A sync response, read in a worker thread when awaited."""

    def __init__(self, response: Any) -> None:
        self.sync = response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sync, name)

    async def aread(self) -> bytes:
        data: bytes = await anyio.to_thread.run_sync(self.sync.read)
        return data

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self.sync.close)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        chunks: Iterator[bytes | None] = self.sync.iter_bytes()
        while True:
            chunk = await anyio.to_thread.run_sync(next, chunks, None)
            if chunk is None:
                return
            yield chunk

    async def aiter_raw(self) -> AsyncIterator[bytes]:
        chunks: Iterator[bytes | None] = self.sync.iter_raw()
        while True:
            chunk = await anyio.to_thread.run_sync(next, chunks, None)
            if chunk is None:
                return
            yield chunk


class ThreadedClient:
    """A sync client whose calls each run in a worker thread."""

    def __init__(self, client: Any) -> None:
        self.sync = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sync, name)

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    async def request(self, method: str, url: Any, **kwargs: Any) -> ThreadedResponse:
        return ThreadedResponse(await self._run(self.sync.request, method, url, **kwargs))

    async def get(self, url: Any, **kwargs: Any) -> ThreadedResponse:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: Any, **kwargs: Any) -> ThreadedResponse:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: Any, **kwargs: Any) -> ThreadedResponse:
        return await self.request("PUT", url, **kwargs)

    async def send(self, request: Any, *, stream: bool = False) -> ThreadedResponse:
        return ThreadedResponse(await self._run(self.sync.send, request, stream=stream))

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: Any, **kwargs: Any) -> AsyncIterator[ThreadedResponse]:
        request = self.sync.build_request(method, url, **kwargs)
        response = ThreadedResponse(await self._run(self.sync.send, request, stream=True))
        try:
            yield response
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        await self._run(self.sync.close)

    async def __aenter__(self) -> ThreadedClient:
        await self._run(self.sync.__enter__)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._run(self.sync.__exit__, *exc_info)


@dataclass(frozen=True)
class Binding:
    name: str
    http: ModuleType  # httpx or httpx2
    api: ModuleType  # resilient_http or resilient_http.httpx2
    sync: bool
    backend: str  # the event loop the test itself runs on

    def __str__(self) -> str:
        return self.name

    @property
    def Transport(self) -> Any:
        return self.api.SyncResilientTransport if self.sync else self.api.ResilientTransport

    @property
    def Client(self) -> Any:
        return self.api.SyncResilientClient if self.sync else self.api.ResilientClient

    def mock(self, handler: Callable[[Any], Any]) -> Any:
        """A ``MockTransport`` of this binding; ``handler(request) -> Response``."""
        return self.http.MockTransport(handler)

    def response(self, status: int = 200, **kwargs: Any) -> Any:
        return self.http.Response(status, **kwargs)

    def transport(self, inner: Any = None, **kwargs: Any) -> Any:
        return self.Transport(inner, **kwargs)

    def inner_http(self, **kwargs: Any) -> Any:
        """The library's own HTTP transport (a real connection pool)."""
        kind = self.http.HTTPTransport if self.sync else self.http.AsyncHTTPTransport
        return kind(**kwargs)

    def client(self, transport: Any, **kwargs: Any) -> Any:
        """A plain httpx client over ``transport``, behind the async face."""
        if self.sync:
            return ThreadedClient(self.http.Client(transport=transport, **kwargs))
        return self.http.AsyncClient(transport=transport, **kwargs)

    def resilient_client(self, **kwargs: Any) -> Any:
        """``ResilientClient`` or ``SyncResilientClient``, behind the async face."""
        client = self.Client(**kwargs)
        return ThreadedClient(client) if self.sync else client

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, a transport method: in a thread for the sync bindings,
        awaited for the async ones."""
        if self.sync:
            return await anyio.to_thread.run_sync(fn, *args)
        return await fn(*args)


BINDINGS = [
    Binding("httpx-async-asyncio", httpx, resilient_http, sync=False, backend="asyncio"),
    Binding("httpx-async-trio", httpx, resilient_http, sync=False, backend="trio"),
    Binding("httpx-sync", httpx, resilient_http, sync=True, backend="asyncio"),
    Binding("httpx2-async-asyncio", httpx2, resilient_http.httpx2, sync=False, backend="asyncio"),
    Binding("httpx2-async-trio", httpx2, resilient_http.httpx2, sync=False, backend="trio"),
    Binding("httpx2-sync", httpx2, resilient_http.httpx2, sync=True, backend="asyncio"),
]
