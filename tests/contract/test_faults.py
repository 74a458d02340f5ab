"""Faults on a real upstream (tests/faults.py), through the transport over a
small real connection pool, on every binding: httpx and httpx2, async on
asyncio and trio, sync in worker threads. Every fault is classified as
DESIGN.md says, the breaker trips and recovers, and afterwards a burst larger
than the pool completes with every response closed.

What only the async bindings can do (cancel a caller or a probe, run async
listeners) is tested in tests/test_faults.py.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import anyio
import pytest
import tenacity

from resilient_http import (
    AttemptFinished,
    BreakerPolicy,
    CircuitState,
    Event,
    Policy,
    RetryPolicy,
)
from resilient_http.testing import FakeClock

from ..bindings import Binding
from ..faults import FaultServer, closed_port, start_faults

POOL = 2
THRESHOLD = 3
RECOVERY = 10.0
#: How long a held request waits for the test's condition before it goes anyway.
HOLD_GUARD = 5.0

T = TypeVar("T")


def timeouts(binding: Binding) -> Any:
    """A short real read timeout so hangs and slow drips end quickly; a pool
    timeout that turns a leaked connection into a PoolTimeout, not a stuck test."""
    return binding.http.Timeout(2.0, read=0.25, pool=2.0)


@pytest.fixture(scope="module")
def fault_server() -> Iterator[FaultServer]:
    with start_faults() as server:
        yield server


@pytest.fixture
def upstream(fault_server: FaultServer) -> FaultServer:
    fault_server.reset()
    return fault_server


@pytest.fixture(scope="module")
def refused_port() -> Iterator[int]:
    with closed_port() as port:
        yield port


# -- counting what the client side opens and closes ---------------------------------


def native(binding: Binding, mixin: type[T], sync_base: str, async_base: str) -> type[T]:
    """``mixin`` as a subclass of the binding's own class: ``binding.http.<sync_base>``
    for the sync bindings, ``binding.http.<async_base>`` for the async ones."""
    base = getattr(binding.http, sync_base if binding.sync else async_base)
    return cast("type[T]", type(mixin.__name__, (mixin, base), {}))


@dataclass
class Opened:
    method: str
    path: str
    status: int
    closed: bool = False


class CountedBody:
    """Passes a response body through and notes when it is closed."""

    def __init__(self, stream: Any, record: Opened) -> None:
        self._stream = stream
        self._record = record

    def __iter__(self) -> Iterator[bytes]:
        yield from self._stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    def close(self) -> None:
        self._record.closed = True
        self._stream.close()

    async def aclose(self) -> None:
        self._record.closed = True
        await self._stream.aclose()


class Counting:
    """An inner transport that counts every response it produced and whether
    it was closed (by the caller, or by the resilient layer that dropped it).
    While ``hold`` is set and false, a request waits before it goes out."""

    def __init__(self, binding: Binding, inner: Any) -> None:
        self.binding = binding
        self.inner = inner
        self.opened: list[Opened] = []
        self.lock = threading.Lock()
        self.hold: Callable[[], bool] | None = None

    def _counted(self, request: Any, response: Any) -> Any:
        record = Opened(request.method, request.url.path, response.status_code)
        with self.lock:
            self.opened.append(record)
        body = native(self.binding, CountedBody, "SyncByteStream", "AsyncByteStream")
        response.stream = body(response.stream, record)
        return response

    def _held(self, now: float, started: float) -> bool:
        return self.hold is not None and not self.hold() and now - started < HOLD_GUARD

    def handle_request(self, request: Any) -> Any:
        started = time.monotonic()
        while self._held(time.monotonic(), started):
            time.sleep(0.002)
        return self._counted(request, self.inner.handle_request(request))

    async def handle_async_request(self, request: Any) -> Any:
        started = anyio.current_time()
        while self._held(anyio.current_time(), started):
            await anyio.sleep(0.002)
        return self._counted(request, await self.inner.handle_async_request(request))

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def unclosed(self) -> list[tuple[str, str, int]]:
        with self.lock:
            return [(r.method, r.path, r.status) for r in self.opened if not r.closed]


def counting(binding: Binding, inner: Any) -> Counting:
    return native(binding, Counting, "BaseTransport", "AsyncBaseTransport")(binding, inner)


# -- the rig ------------------------------------------------------------------------


@dataclass
class Rig:
    clock: FakeClock
    counting: Counting
    transport: Any
    client: Any
    events: list[Event] = field(default_factory=list)

    def outcomes(self) -> list[str]:
        return [e.outcome for e in self.events if isinstance(e, AttemptFinished)]


def make_policy(*, attempts: int = 1, half_open_max_calls: int = 1) -> Policy:
    return Policy(
        breaker=BreakerPolicy(
            failure_threshold=THRESHOLD,
            recovery_timeout=RECOVERY,
            half_open_max_calls=half_open_max_calls,
        ),
        retry=RetryPolicy(attempts=attempts, wait=tenacity.wait_none(), budget=None),
    )


@contextlib.asynccontextmanager
async def rig(
    binding: Binding, clock: FakeClock, policy: Policy | None = None
) -> AsyncIterator[Rig]:
    limits = binding.http.Limits(max_connections=POOL, max_keepalive_connections=POOL)
    pool = counting(binding, binding.inner_http(limits=limits))
    events: list[Event] = []
    transport = binding.transport(
        pool,
        policy=policy or make_policy(),
        listeners=[events.append],
        clock=clock,
        sleep=clock.sleep,
    )
    async with binding.client(transport, timeout=timeouts(binding)) as client:
        yield Rig(clock, pool, transport, client, events)
    assert pool.unclosed() == []


async def burst(rig: Rig, url: str, n: int = 4 * POOL) -> list[int]:
    """``n`` concurrent GETs: with a leaked connection the pool runs dry (PoolTimeout)."""
    statuses: list[int] = []

    async def one() -> None:
        statuses.append((await rig.client.get(url)).status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return statuses


# -- classification -----------------------------------------------------------------

ERROR_PATHS = ["/hang", "/reset-early", "/close", "/garbage", "/garbage?kind=header"]
ERROR_FAULTS = [
    pytest.param("/hang", "ReadTimeout", id="hang"),
    pytest.param("/reset-early", "ReadError", id="reset-before-answer"),
    pytest.param("/close", "RemoteProtocolError", id="closed-without-answer"),
    pytest.param("/garbage?kind=status", "RemoteProtocolError", id="garbage-status-line"),
    pytest.param("/garbage?kind=header", "RemoteProtocolError", id="garbage-header"),
    pytest.param("/garbage?kind=length", "RemoteProtocolError", id="garbage-length"),
]


@pytest.mark.parametrize(("path", "error"), ERROR_FAULTS)
async def test_an_error_before_the_answer_is_a_failure(
    binding: Binding, upstream: FaultServer, clock: FakeClock, path: str, error: str
) -> None:
    async with rig(binding, clock) as r:
        with pytest.raises(getattr(binding.http, error)):
            await r.client.get(upstream.url + path)
        assert r.transport.breaker(upstream.url).failure_count == 1
        assert r.outcomes() == ["failure"]


async def test_refused_connection_is_a_failure(
    binding: Binding, clock: FakeClock, refused_port: int
) -> None:
    url = f"http://127.0.0.1:{refused_port}/"
    async with rig(binding, clock) as r:
        for _ in range(THRESHOLD):
            with pytest.raises(binding.http.ConnectError):
                await r.client.get(url)
        assert r.outcomes() == ["failure"] * THRESHOLD
        assert r.transport.breaker(url).state is CircuitState.OPEN
        with pytest.raises(binding.api.CircuitOpenError):
            await r.client.get(url)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        pytest.param("/reset?after=0.02", "ReadError", id="reset-mid-body"),
        pytest.param("/drip?n=3&interval=0.6", "ReadTimeout", id="drip-slower-than-timeout"),
    ],
)
async def test_an_error_while_reading_the_body_is_a_failure(
    binding: Binding, upstream: FaultServer, clock: FakeClock, path: str, error: str
) -> None:
    async with rig(binding, clock) as r:
        async with r.client.stream("GET", upstream.url + path) as response:
            assert response.status_code == 200  # the status line was fine...
            assert r.outcomes() == []  # ...and the verdict waits for the body
            with pytest.raises(getattr(binding.http, error)):
                await response.aread()
        assert r.outcomes() == ["failure"]
        assert r.transport.breaker(upstream.url).failure_count == 1


async def test_a_slow_but_steady_drip_streams_through_as_a_success(
    binding: Binding, upstream: FaultServer, clock: FakeClock
) -> None:
    async with rig(binding, clock) as r:
        chunks = []
        async with r.client.stream("GET", upstream.url + "/drip?n=5&interval=0.05") as response:
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
        assert b"".join(chunks) == b"".join(f"chunk {i}\n".encode() for i in range(5))
        assert len(chunks) > 1  # delivered incrementally, not buffered by the transport
        assert r.outcomes() == ["success"]


@pytest.mark.parametrize(
    ("status", "failure"),
    [(500, True), (502, True), (503, True), (504, True), (404, False), (429, False)],
)
async def test_5xx_answers_are_failures_and_4xx_are_not(
    binding: Binding, upstream: FaultServer, clock: FakeClock, status: int, failure: bool
) -> None:
    async with rig(binding, clock) as r:
        response = await r.client.get(f"{upstream.url}/status/{status}")
        assert response.status_code == status
        assert r.transport.breaker(upstream.url).failure_count == int(failure)
        assert r.outcomes() == ["failure" if failure else "success"]


async def test_a_caller_error_is_no_attempt_and_no_failure(
    binding: Binding, upstream: FaultServer, clock: FakeClock
) -> None:
    async with rig(binding, clock) as r:
        handle = r.transport.handle_request if binding.sync else r.transport.handle_async_request
        with pytest.raises(binding.http.UnsupportedProtocol):
            await binding.call(
                handle, binding.http.Request("GET", f"ftp://127.0.0.1:{upstream.port}/")
            )
        assert r.outcomes() == []  # passed through untouched: not even an attempt
        assert all(b["consecutive_failures"] == 0 for b in r.transport.snapshot().values())


# -- retries, trips, recovery ---------------------------------------------------------


async def test_retries_ride_out_a_5xx_burst_and_close_what_they_drop(
    binding: Binding, upstream: FaultServer, clock: FakeClock
) -> None:
    upstream.fail_next = 2
    async with rig(binding, clock, make_policy(attempts=3)) as r:
        response = await r.client.get(upstream.url + "/ok")
        assert (response.status_code, response.text) == (200, "ok")
        assert upstream.total_hits("/ok") == 3
        assert len(r.counting.opened) == 3  # the two 503s were dropped...
    # ...and closed: rig() checks that no response is left open.


async def test_a_slow_5xx_body_is_read_or_closed_before_the_retry(
    binding: Binding, upstream: FaultServer, clock: FakeClock
) -> None:
    async with rig(binding, clock, make_policy(attempts=2)) as r:
        # the dropped 503 times out while being read, and is closed; the retry's
        # 503 is handed over, its own slow body failing as the caller reads it
        async with r.client.stream("GET", upstream.url + "/status/503?drip=0.5") as response:
            assert response.status_code == 503
            with pytest.raises(binding.http.ReadTimeout):
                await response.aread()
        assert upstream.total_hits("/status/503") == 2
        assert r.outcomes() == ["failure", "failure"]
        assert r.counting.unclosed() == []
        assert await burst(r, upstream.url + "/ok") == [200] * 4 * POOL


async def test_a_post_without_idempotency_key_reaches_the_upstream_once(
    binding: Binding, upstream: FaultServer, clock: FakeClock
) -> None:
    async with rig(binding, clock, make_policy(attempts=3)) as r:
        upstream.fail_next = 1
        response = await r.client.post(upstream.url + "/ok", content=b"order")
        assert response.status_code == 503
        assert upstream.hits[("POST", "/ok")] == 1
        with pytest.raises(binding.http.ReadTimeout):
            await r.client.post(upstream.url + "/hang", content=b"order")
        assert upstream.hits[("POST", "/hang")] == 1
        r.transport.breaker(upstream.url).reset()  # two failures so far; three would trip
        upstream.fail_next = 3
        response = await r.client.post(
            upstream.url + "/ok", content=b"order", headers={"Idempotency-Key": "k1"}
        )
        assert response.status_code == 503
        assert upstream.hits[("POST", "/ok")] == 1 + 3  # with a key: retried


async def test_breaker_trips_on_mixed_faults_and_recovers(
    binding: Binding, upstream: FaultServer, clock: FakeClock
) -> None:
    async with rig(binding, clock) as r:
        breaker = r.transport.breaker(upstream.url)
        with pytest.raises(binding.http.ReadTimeout):
            await r.client.get(upstream.url + "/hang")
        with pytest.raises(binding.http.RemoteProtocolError):
            await r.client.get(upstream.url + "/garbage")
        assert breaker.state is CircuitState.CLOSED
        assert (await r.client.get(upstream.url + "/status/502")).status_code == 502
        assert breaker.state is CircuitState.OPEN

        hits = upstream.total_hits()
        with pytest.raises(binding.api.CircuitOpenError) as info:
            await r.client.get(upstream.url + "/ok")
        assert info.value.retry_after == RECOVERY
        assert upstream.total_hits() == hits  # rejected without touching the upstream

        clock.advance(RECOVERY)
        assert breaker.state is CircuitState.HALF_OPEN
        upstream.fail_next = 1  # the first probe fails: open again, timer restarted
        assert (await r.client.get(upstream.url + "/ok")).status_code == 503
        assert breaker.state is CircuitState.OPEN
        assert breaker.retry_after == RECOVERY

        clock.advance(RECOVERY)
        assert (await r.client.get(upstream.url + "/ok")).status_code == 200
        assert breaker.state is CircuitState.CLOSED
        assert await burst(r, upstream.url + "/ok") == [200] * 4 * POOL


async def test_half_open_lets_only_the_probe_limit_through(
    binding: Binding, upstream: FaultServer, clock: FakeClock
) -> None:
    async with rig(binding, clock, make_policy(half_open_max_calls=2)) as r:
        upstream.fail_next = THRESHOLD
        for _ in range(THRESHOLD):
            await r.client.get(upstream.url + "/ok")
        clock.advance(RECOVERY)
        upstream.reset()
        results: list[object] = []
        # The admitted probes wait until the four others have been turned away: a
        # probe's status line closes the circuit, and a worker thread may start
        # late. Were more than two admitted, fewer than four could be rejected.
        r.counting.hold = lambda: len(results) >= 4

        async def call() -> None:
            try:
                response = await r.client.get(upstream.url + "/drip?n=2&interval=0.1")
                results.append(response.status_code)
            except binding.api.CircuitOpenError as exc:
                results.append(exc.retry_after)

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(call)
        assert sorted(results, key=str) == [0.0] * 4 + [200] * 2
        assert upstream.total_hits("/drip") == 2
        assert r.transport.breaker(upstream.url).state is CircuitState.CLOSED


# -- the pool after every fault ----------------------------------------------------------


async def test_a_burst_larger_than_the_pool_completes_after_every_fault(
    binding: Binding, upstream: FaultServer, clock: FakeClock, refused_port: int
) -> None:
    async with rig(binding, clock, make_policy(attempts=2)) as r:
        url = upstream.url
        for path in ERROR_PATHS:
            with contextlib.suppress(binding.http.HTTPError):
                await r.client.get(url + path)
            r.transport.breaker(url).reset()
        with contextlib.suppress(binding.http.HTTPError):
            await r.client.get(f"http://127.0.0.1:{refused_port}/")
        for path in ("/reset", "/drip?n=3&interval=0.6"):
            async with r.client.stream("GET", url + path) as response:
                with contextlib.suppress(binding.http.ReadError, binding.http.ReadTimeout):
                    await response.aread()
        async with r.client.stream("GET", url + "/drip?n=50&interval=0.01"):
            pass  # closed unread
        if not binding.sync:  # a worker thread cannot be cancelled
            with anyio.move_on_after(0.05):
                await r.client.get(url + "/hang")
        upstream.fail_next = 1
        assert (await r.client.get(url + "/ok")).status_code == 200  # one 503 retried away
        r.transport.breaker(url).reset()

        assert await burst(r, url + "/ok", n=5 * POOL) == [200] * 5 * POOL
        assert r.counting.unclosed() == []
