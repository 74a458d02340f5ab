"""Who is measured: bare httpx, resilient_http, and what users would pick instead.

Every contender sends a GET through an ``httpx.AsyncClient`` built on the inner
transport it is given (``httpx.MockTransport`` in-process, ``httpx.AsyncHTTPTransport``
against the real server), each with its library's default settings:

- a transport that only forwards to the inner one shows the floor for any
  wrapping transport;
- peers that are httpx transports wrap the inner transport (httpx-retries,
  interlock-cb), like ``ResilientTransport`` does;
- breaker libraries that are not transports wrap the call, one breaker per host,
  the way their documentation shows (aiobreaker, purgatory), and a 5xx response
  is raised so that it counts as a failure, as ``ResilientTransport`` counts it;
- "pybreaker + tenacity" is the usual recipe: ``@tenacity.retry`` (3 attempts,
  exponential backoff with jitter, on transport errors and 5xx) around
  ``with breaker.calling(): await client.get(url)``.

A peer whose package is missing raises :class:`NotInstalled` when built, and is
reported as such; it never stops the run.

The ``sync`` section measures the sync binding the same way: every
:class:`SyncEntry` wraps the inner ``httpx.BaseTransport`` (``httpx.MockTransport``)
in a transport, and each request goes through an ``httpx.Client`` built on it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import tenacity

from resilient_http import ResilientTransport, SyncResilientTransport

__all__ = [
    "CONTENDERS",
    "SYNC_CONTENDERS",
    "Contender",
    "Entry",
    "NotInstalled",
    "Role",
    "SyncEntry",
    "Unsupported",
]

Role = Literal["baseline", "reference", "ours", "peer"]


class NotInstalled(Exception):
    """The peer's package cannot be imported."""


class Unsupported(Exception):
    """The contender has no such feature (e.g. no circuit breaker to open)."""


class Contender:
    """One way of sending a GET. ``host`` is the URL's host name, given so that
    the recipes that wrap the call do not pay for parsing the URL."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.client = httpx.AsyncClient(transport=transport)

    async def get(self, url: str, host: str) -> httpx.Response:
        return await self.client.get(url)

    async def open_circuit(self, url: str, host: str) -> None:
        """Open the circuit for ``host`` so that the next calls are rejected."""
        raise Unsupported("no circuit breaker")

    async def aclose(self) -> None:
        await self.client.aclose()


def _raise_for_5xx(response: httpx.Response) -> None:
    if response.is_server_error:
        response.raise_for_status()


class Bare(Contender):
    """``httpx.AsyncClient(transport=inner)``: the baseline."""


class _Forward(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class Forwarding(Contender):
    """A transport that only forwards to the inner one: the floor for any wrapper."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        super().__init__(_Forward(inner))


class Resilient(Contender):
    """``httpx.AsyncClient(transport=ResilientTransport(inner))``, default policy;
    with ``fallback_for``, a fallback response registered for that host."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *, fallback_for: str | None = None) -> None:
        self.transport = ResilientTransport(inner)
        if fallback_for is not None:

            def fallback(request: httpx.Request, error: Exception) -> httpx.Response:
                return httpx.Response(200, content=b"fallback")

            self.transport.fallback(fallback_for, fallback)
        super().__init__(self.transport)

    async def open_circuit(self, url: str, host: str) -> None:
        self.transport.breaker(url).force_open()


class HttpxRetries(Contender):
    """httpx-retries: ``RetryTransport(transport=inner)`` (retries, no breaker)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        try:
            from httpx_retries import RetryTransport
        except ImportError as exc:
            raise NotInstalled(str(exc)) from exc
        super().__init__(RetryTransport(transport=inner))


class Interlock(Contender):
    """interlock-cb: ``AsyncCircuitBreakerTransport(inner)`` (a breaker per host)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        try:
            from interlock.integrations.httpx import AsyncCircuitBreakerTransport
        except ImportError as exc:
            raise NotInstalled(str(exc)) from exc
        self.transport: Any = AsyncCircuitBreakerTransport(inner)
        super().__init__(self.transport)

    async def open_circuit(self, url: str, host: str) -> None:
        self.transport.registry.get(host).force_open()


class AioBreaker(Contender):
    """aiobreaker: ``await breakers[host].call_async(fetch, url)``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        try:
            import aiobreaker
        except ImportError as exc:
            raise NotInstalled(str(exc)) from exc
        super().__init__(inner)
        self._new: Callable[[], Any] = aiobreaker.CircuitBreaker
        self._breakers: dict[str, Any] = {}

    def _breaker(self, host: str) -> Any:
        breaker = self._breakers.get(host)
        if breaker is None:
            breaker = self._breakers[host] = self._new()
        return breaker

    async def _fetch(self, url: str) -> httpx.Response:
        response = await self.client.get(url)
        _raise_for_5xx(response)
        return response

    async def get(self, url: str, host: str) -> httpx.Response:
        response: httpx.Response = await self._breaker(host).call_async(self._fetch, url)
        return response

    async def open_circuit(self, url: str, host: str) -> None:
        self._breaker(host).open()


class Purgatory(Contender):
    """purgatory: ``async with await factory.get_breaker(host): await client.get(url)``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        try:
            from purgatory import AsyncCircuitBreakerFactory
        except ImportError as exc:
            raise NotInstalled(str(exc)) from exc
        super().__init__(inner)
        self.factory: Any = AsyncCircuitBreakerFactory()

    async def get(self, url: str, host: str) -> httpx.Response:
        async with await self.factory.get_breaker(host):
            response = await self.client.get(url)
            _raise_for_5xx(response)
        return response

    async def open_circuit(self, url: str, host: str) -> None:
        # purgatory has no manual control: trip the circuit with failures.
        threshold = int(self.factory.default_threshold)
        for _ in range(threshold):
            try:
                async with await self.factory.get_breaker(host):
                    raise httpx.ConnectError("benchmark: tripping the circuit")
            except Exception:  # the failure itself, then the open circuit's rejection
                pass


class PybreakerTenacity(Contender):
    """pybreaker + tenacity: ``@tenacity.retry(...)`` around
    ``with breakers[host].calling(): await client.get(url)``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        try:
            import pybreaker
        except ImportError as exc:
            raise NotInstalled(str(exc)) from exc
        super().__init__(inner)
        new: Callable[[], Any] = pybreaker.CircuitBreaker
        breakers: dict[str, Any] = {}
        client = self.client

        def breaker_for(host: str) -> Any:
            breaker = breakers.get(host)
            if breaker is None:
                breaker = breakers[host] = new()
            return breaker

        @tenacity.retry(
            stop=tenacity.stop_after_attempt(3),
            wait=tenacity.wait_exponential_jitter(initial=0.1, max=2.0),
            retry=tenacity.retry_if_exception_type((httpx.TransportError, httpx.HTTPStatusError)),
            reraise=True,
        )
        async def fetch(url: str, host: str) -> httpx.Response:
            with breaker_for(host).calling():
                response = await client.get(url)
                _raise_for_5xx(response)
            return response

        self._fetch: Callable[[str, str], Awaitable[httpx.Response]] = fetch
        self._breaker_for = breaker_for

    async def get(self, url: str, host: str) -> httpx.Response:
        return await self._fetch(url, host)

    async def open_circuit(self, url: str, host: str) -> None:
        self._breaker_for(host).open()


@dataclass(frozen=True)
class Entry:
    """A contender as listed in the tables."""

    name: str
    role: Role
    build: Callable[[httpx.AsyncBaseTransport], Contender]
    distribution: str | None = None  # for the version shown beside the results


CONTENDERS: tuple[Entry, ...] = (
    Entry("httpx (bare)", "baseline", Bare, "httpx"),
    Entry("forwarding-only transport (the floor)", "reference", Forwarding),
    Entry("resilient_http ResilientTransport", "ours", Resilient, "resilient-http"),
    Entry("httpx-retries RetryTransport", "peer", HttpxRetries, "httpx-retries"),
    Entry("interlock-cb AsyncCircuitBreakerTransport", "peer", Interlock, "interlock-cb"),
    Entry("aiobreaker (wrapping the call)", "peer", AioBreaker, "aiobreaker"),
    Entry("purgatory (wrapping the call)", "peer", Purgatory, "purgatory"),
    Entry("pybreaker + tenacity (recipe)", "peer", PybreakerTenacity, "pybreaker"),
)


# -- the sync binding: transports for httpx.Client --------------------------------------


def _bare_sync(inner: httpx.BaseTransport) -> httpx.BaseTransport:
    """``httpx.Client(transport=inner)``: the baseline."""
    return inner


def _resilient_sync(inner: httpx.BaseTransport) -> httpx.BaseTransport:
    """``SyncResilientTransport(inner)``, default ``Policy()``."""
    return SyncResilientTransport(inner)


def _httpx_retries_sync(inner: httpx.BaseTransport) -> httpx.BaseTransport:
    """httpx-retries: ``RetryTransport(transport=inner)``, default ``Retry()``. One
    class serves both clients; with a ``BaseTransport`` it retries through ``handle_request``."""
    try:
        from httpx_retries import RetryTransport
    except ImportError as exc:
        raise NotInstalled(str(exc)) from exc
    transport: httpx.BaseTransport = RetryTransport(transport=inner)
    return transport


def _interlock_sync(inner: httpx.BaseTransport) -> httpx.BaseTransport:
    """interlock-cb: ``interlock.integrations.httpx.CircuitBreakerTransport(inner)``, the
    sync twin of ``AsyncCircuitBreakerTransport`` (a breaker per host)."""
    try:
        import interlock.integrations.httpx as interlock_httpx
    except ImportError as exc:
        raise NotInstalled(str(exc)) from exc
    sync_transport = getattr(interlock_httpx, "CircuitBreakerTransport", None)
    if sync_transport is None:
        raise Unsupported("this interlock-cb has no sync httpx transport")
    transport: httpx.BaseTransport = sync_transport(inner)
    return transport


@dataclass(frozen=True)
class SyncEntry:
    """A contender of the ``sync`` section: wraps the inner sync transport. Raises
    :class:`NotInstalled` when its package is missing, :class:`Unsupported` when the
    package has no sync transport."""

    name: str
    role: Role
    wrap: Callable[[httpx.BaseTransport], httpx.BaseTransport]
    distribution: str | None = None


SYNC_CONTENDERS: tuple[SyncEntry, ...] = (
    SyncEntry("httpx.Client (bare)", "baseline", _bare_sync, "httpx"),
    SyncEntry("resilient_http SyncResilientTransport", "ours", _resilient_sync, "resilient-http"),
    SyncEntry("httpx-retries RetryTransport (sync)", "peer", _httpx_retries_sync, "httpx-retries"),
    SyncEntry("interlock-cb CircuitBreakerTransport", "peer", _interlock_sync, "interlock-cb"),
)
