"""ResilientTransport over MockTransport: what only the async binding has
(cancellation, concurrent callers in a task group, async fallbacks and
listeners, its misuse in ``httpx.Client``).

The binding-independent tests live in tests/contract/test_transport.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anyio
import httpx
import pytest
import tenacity

from resilient_http import (
    Breaker,
    BreakerPolicy,
    CircuitOpenError,
    CircuitState,
    Event,
    Policy,
    RejectedError,
    ResilientTransport,
    RetryPolicy,
    StateChanged,
)
from resilient_http.testing import FakeClock

URL = "https://api.example.com/v1/items"
CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN

Handler = Callable[[httpx.Request], httpx.Response]


class Counting(httpx.AsyncBaseTransport):
    """Counts the requests that reach the upstream, and whether it was closed."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler or (lambda request: httpx.Response(200, text="fresh"))
        self.mock = httpx.MockTransport(self.handler)
        self.requests: list[httpx.Request] = []
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.mock.handle_async_request(request)

    async def aclose(self) -> None:
        self.closed = True

    @property
    def calls(self) -> int:
        return len(self.requests)


def policy(threshold: int = 1, recovery: float = 30.0, **retry: Any) -> Policy:
    retry.setdefault("attempts", 1)
    retry.setdefault("wait", tenacity.wait_none())
    retry.setdefault("budget", None)
    return Policy(
        breaker=BreakerPolicy(failure_threshold=threshold, recovery_timeout=recovery),
        retry=RetryPolicy(**retry),
    )


def make(
    clock: FakeClock,
    handler: Handler | None = None,
    *,
    default: Policy | None = None,
    hosts: dict[str, Policy] | None = None,
    listeners: Sequence[Callable[[Event], object]] = (),
    max_hosts: int = 1024,
) -> tuple[httpx.AsyncClient, ResilientTransport, Counting]:
    upstream = Counting(handler)
    transport = ResilientTransport(
        upstream,
        policy=default if default is not None else policy(),
        hosts=hosts,
        listeners=listeners,
        max_hosts=max_hosts,
        clock=clock,
        sleep=clock.sleep,
    )
    return httpx.AsyncClient(transport=transport), transport, upstream


def status(code: int) -> Handler:
    return lambda request: httpx.Response(code, text=f"status {code}")


def fail(breaker: Breaker, times: int = 1) -> None:
    """Record counted failures directly on the state machine."""
    for _ in range(times):
        ticket = breaker.admit()
        assert ticket is not None
        breaker.on_failure(ticket)


def trip(transport: ResilientTransport, url: str = URL) -> None:
    """Open the circuit for ``url``'s host (the recovery timer starts now)."""
    breaker = transport.breaker(url)
    fail(breaker, breaker.policy.failure_threshold)
    assert breaker.state is OPEN


# -- failure classification ------------------------------------------------------------------


class Hanging(httpx.AsyncBaseTransport):
    """The first ``hang`` requests never answer; later ones get 200."""

    def __init__(self, hang: int = 1) -> None:
        self.hang = hang
        self.calls = 0
        self.entered = anyio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.hang:
            self.entered.set()
            await anyio.sleep_forever()
        return httpx.Response(200)


async def cancel_once_inside(client: httpx.AsyncClient, upstream: Hanging) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.get, URL)
        await upstream.entered.wait()
        tg.cancel_scope.cancel()


async def test_cancellation_is_neither_success_nor_failure(clock: FakeClock) -> None:
    upstream = Hanging()
    transport = ResilientTransport(upstream, policy=policy(threshold=2), clock=clock)
    breaker = transport.breaker(URL)
    fail(breaker)
    async with httpx.AsyncClient(transport=transport) as client:
        await cancel_once_inside(client, upstream)
        assert breaker.state is CLOSED
        assert breaker.failure_count == 1


async def test_cancelled_probe_gives_its_slot_back(clock: FakeClock) -> None:
    upstream = Hanging()
    transport = ResilientTransport(upstream, policy=policy(), clock=clock)
    async with httpx.AsyncClient(transport=transport) as client:
        trip(transport)
        clock.advance(30)
        await cancel_once_inside(client, upstream)
        breaker = transport.breaker(URL)
        assert breaker.state is HALF_OPEN
        assert breaker.probes_in_flight == 0
        response = await client.get(URL)
    assert response.status_code == 200
    assert breaker.state is CLOSED


async def test_half_open_lets_exactly_half_open_max_calls_of_50_concurrent_callers_through(
    clock: FakeClock,
) -> None:
    release = anyio.Event()
    reached = 0

    class Gate(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal reached
            reached += 1
            await release.wait()
            return httpx.Response(200)

    probes = Policy(breaker=BreakerPolicy(failure_threshold=1, half_open_max_calls=3))
    transport = ResilientTransport(Gate(), policy=probes, clock=clock)
    outcomes: list[str] = []

    async def call(client: httpx.AsyncClient) -> None:
        try:
            await client.get(URL)
        except CircuitOpenError as exc:
            # half-open and busy: a probe may go as soon as a slot frees
            outcomes.append(f"rejected, retry after {exc.retry_after}")
        else:
            outcomes.append("ok")

    async with httpx.AsyncClient(transport=transport) as client:
        trip(transport)
        clock.advance(30)
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(call, client)
            await anyio.wait_all_tasks_blocked()
            assert reached == 3
            release.set()
    assert outcomes.count("ok") == 3
    assert outcomes.count("rejected, retry after 0.0") == 47
    assert transport.breaker(URL).state is CLOSED


# -- fallbacks -------------------------------------------------------------------------------


async def test_async_fallback_by_decorator(clock: FakeClock) -> None:
    client, transport, upstream = make(clock)
    seen: list[tuple[httpx.Request, RejectedError]] = []

    @transport.fallback("api.example.com")
    async def unknown(request: httpx.Request, error: RejectedError) -> httpx.Response:
        seen.append((request, error))
        return httpx.Response(200, json={"status": "unknown", "cached": True})

    assert unknown.__name__ == "unknown"  # the decorator returns the function itself
    transport.breaker(URL).force_open()
    async with client:
        response = await client.get(URL + "?page=2")
    assert response.json() == {"status": "unknown", "cached": True}
    assert response.extensions["resilient_http.fallback"] == "circuit_open"
    assert upstream.calls == 0
    [(request, error)] = seen
    assert request.url == httpx.URL(URL + "?page=2")
    assert isinstance(error, CircuitOpenError)
    assert error.host == "api.example.com:443"


async def test_async_fallback_that_raises_propagates(clock: FakeClock) -> None:
    client, transport, _ = make(clock)

    async def broken(request: httpx.Request, error: RejectedError) -> httpx.Response:
        raise error

    transport.fallback("api.example.com", broken)
    transport.breaker(URL).force_open()
    async with client:
        with pytest.raises(CircuitOpenError):
            await client.get(URL)
    assert transport.breaker(URL).state is OPEN


# -- events and logging ------------------------------------------------------------------------


async def test_async_listeners_are_awaited(clock: FakeClock) -> None:
    seen: list[Event] = []

    async def listener(event: Event) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(event)

    client, _, _ = make(clock, status(503), listeners=[listener])
    async with client:
        await client.get(URL)
        assert any(isinstance(e, StateChanged) and e.new is OPEN for e in seen)


def _use_sync(client: httpx.Client, use: str) -> None:
    if use == "request":
        client.get("https://api.example.com/")
    else:
        with client:
            pass


@pytest.mark.parametrize("use", ["request", "context manager"])
def test_an_async_transport_in_a_sync_client_says_what_to_use(use: str) -> None:
    transport = ResilientTransport(httpx.MockTransport(lambda request: httpx.Response(200)))
    client = httpx.Client(transport=transport)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"httpx\.AsyncClient.*SyncResilientTransport with httpx\.Client"
    ):
        _use_sync(client, use)


class _Generated(httpx.AsyncByteStream):
    """A body whose iterator is an async generator (as httpx's are), noting
    whether that generator was finished."""

    def __init__(self) -> None:
        self.finished = False

    async def __aiter__(self) -> Any:
        try:
            for chunk in (b"a", b"b", b"c"):
                yield chunk
        finally:
            self.finished = True

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize(
    "policy", [Policy(), Policy(max_concurrency=2)], ids=["observed", "bulkhead"]
)
async def test_a_body_closed_part_way_finishes_the_bodys_own_iterator(policy: Policy) -> None:
    """A reader that closes the body iterator after one chunk (httpx2 does,
    with aclosing) finishes the upstream's iterator too: nothing is left for
    the garbage collector, which trio would warn about."""
    body = _Generated()
    inner = httpx.MockTransport(lambda request: httpx.Response(200, stream=body))
    transport = ResilientTransport(inner, policy=policy)
    response = await transport.handle_async_request(httpx.Request("GET", "https://a.test/"))
    iterator: Any = response.stream.__aiter__()  # type: ignore[union-attr]
    assert await iterator.__anext__() == b"a"
    await iterator.aclose()
    assert body.finished
    await response.aclose()
