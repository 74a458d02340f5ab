"""Faults on a real upstream (tests/faults.py), through ResilientTransport over a
small real connection pool: every fault is classified as DESIGN.md says, the
breaker trips and recovers, cancellations give their slots back, and afterwards
a burst larger than the pool completes with every response closed."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import anyio
import httpx
import pytest
import tenacity

from resilient_http import (
    AttemptFinished,
    BreakerPolicy,
    CircuitOpenError,
    CircuitState,
    Event,
    Policy,
    ResilientTransport,
    RetryPolicy,
)
from resilient_http.testing import FakeClock

from .faults import CountingTransport, FaultServer, closed_port, start_faults

POOL = 2
#: Short real read timeout so hangs and slow drips end quickly; a pool timeout
#: that turns a leaked connection into a PoolTimeout instead of a stuck test.
TIMEOUT = httpx.Timeout(2.0, read=0.25, pool=2.0)
THRESHOLD = 3
RECOVERY = 10.0


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


@dataclass
class Rig:
    clock: FakeClock
    counting: CountingTransport
    transport: ResilientTransport
    client: httpx.AsyncClient
    events: list[Event] = field(default_factory=list)

    def outcomes(self) -> list[str]:
        return [e.outcome for e in self.events if isinstance(e, AttemptFinished)]


def make_policy(
    *,
    attempts: int = 1,
    half_open_max_calls: int = 1,
    max_concurrency: int | None = None,
    max_wait: float = 0.0,
) -> Policy:
    return Policy(
        breaker=BreakerPolicy(
            failure_threshold=THRESHOLD,
            recovery_timeout=RECOVERY,
            half_open_max_calls=half_open_max_calls,
        ),
        retry=RetryPolicy(attempts=attempts, wait=tenacity.wait_none(), budget=None),
        max_concurrency=max_concurrency,
        max_wait=max_wait,
    )


@contextlib.asynccontextmanager
async def rig(
    clock: FakeClock,
    policy: Policy | None = None,
    timeouts: httpx.Timeout = TIMEOUT,
    listeners: tuple[object, ...] = (),
) -> AsyncIterator[Rig]:
    pool = httpx.AsyncHTTPTransport(
        limits=httpx.Limits(max_connections=POOL, max_keepalive_connections=POOL)
    )
    counting = CountingTransport(pool)
    events: list[Event] = []
    transport = ResilientTransport(
        counting,
        policy=policy or make_policy(),
        listeners=[events.append, *listeners],  # type: ignore[list-item]
        clock=clock,
        sleep=clock.sleep,
    )
    async with httpx.AsyncClient(transport=transport, timeout=timeouts) as client:
        yield Rig(clock, counting, transport, client, events)
    assert counting.unclosed() == []


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
    pytest.param("/hang", httpx.ReadTimeout, id="hang"),
    pytest.param("/reset-early", httpx.ReadError, id="reset-before-answer"),
    pytest.param("/close", httpx.RemoteProtocolError, id="closed-without-answer"),
    pytest.param("/garbage?kind=status", httpx.RemoteProtocolError, id="garbage-status-line"),
    pytest.param("/garbage?kind=header", httpx.RemoteProtocolError, id="garbage-header"),
    pytest.param("/garbage?kind=length", httpx.RemoteProtocolError, id="garbage-length"),
]


@pytest.mark.parametrize(("path", "error"), ERROR_FAULTS)
async def test_an_error_before_the_answer_is_a_failure(
    upstream: FaultServer, clock: FakeClock, path: str, error: type[Exception]
) -> None:
    async with rig(clock) as r:
        with pytest.raises(error):
            await r.client.get(upstream.url + path)
        assert r.transport.breaker(upstream.url).failure_count == 1
        assert r.outcomes() == ["failure"]


async def test_refused_connection_is_a_failure(clock: FakeClock, refused_port: int) -> None:
    url = f"http://127.0.0.1:{refused_port}/"
    async with rig(clock) as r:
        for _ in range(THRESHOLD):
            with pytest.raises(httpx.ConnectError):
                await r.client.get(url)
        assert r.outcomes() == ["failure"] * THRESHOLD
        assert r.transport.breaker(url).state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            await r.client.get(url)


@pytest.mark.parametrize(
    ("path", "error"),
    [
        pytest.param("/reset?after=0.02", httpx.ReadError, id="reset-mid-body"),
        pytest.param("/drip?n=3&interval=0.6", httpx.ReadTimeout, id="drip-slower-than-timeout"),
    ],
)
async def test_an_error_while_reading_the_body_is_a_failure(
    upstream: FaultServer, clock: FakeClock, path: str, error: type[Exception]
) -> None:
    async with rig(clock) as r:
        async with r.client.stream("GET", upstream.url + path) as response:
            assert response.status_code == 200  # the status line was fine...
            assert r.outcomes() == []  # ...and the verdict waits for the body
            with pytest.raises(error):
                await response.aread()
        assert r.outcomes() == ["failure"]
        assert r.transport.breaker(upstream.url).failure_count == 1


async def test_a_slow_but_steady_drip_streams_through_as_a_success(
    upstream: FaultServer, clock: FakeClock
) -> None:
    async with rig(clock) as r:
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
    upstream: FaultServer, clock: FakeClock, status: int, failure: bool
) -> None:
    async with rig(clock) as r:
        response = await r.client.get(f"{upstream.url}/status/{status}")
        assert response.status_code == status
        assert r.transport.breaker(upstream.url).failure_count == int(failure)
        assert r.outcomes() == ["failure" if failure else "success"]


async def test_caller_errors_and_cancellations_are_not_failures(
    upstream: FaultServer, clock: FakeClock
) -> None:
    async with rig(clock) as r:
        with pytest.raises(httpx.UnsupportedProtocol):
            await r.transport.handle_async_request(
                httpx.Request("GET", f"ftp://127.0.0.1:{upstream.port}/")
            )
        assert r.outcomes() == []  # passed through untouched: not even an attempt
        with anyio.move_on_after(0.05):
            await r.client.get(upstream.url + "/hang")
        assert r.outcomes() == ["ignored"]
        assert all(b["consecutive_failures"] == 0 for b in r.transport.snapshot().values())


# -- retries, trips, recovery ---------------------------------------------------------


async def test_retries_ride_out_a_5xx_burst_and_close_what_they_drop(
    upstream: FaultServer, clock: FakeClock
) -> None:
    upstream.fail_next = 2
    async with rig(clock, make_policy(attempts=3)) as r:
        response = await r.client.get(upstream.url + "/ok")
        assert (response.status_code, response.text) == (200, "ok")
        assert upstream.total_hits("/ok") == 3
        assert len(r.counting.opened) == 3  # the two 503s were dropped...
    # ...and closed: rig() checks that no response is left open.


async def test_a_slow_5xx_body_is_read_or_closed_before_the_retry(
    upstream: FaultServer, clock: FakeClock
) -> None:
    async with rig(clock, make_policy(attempts=2)) as r:
        # the dropped 503 times out while being read, and is closed; the retry's
        # 503 is handed over, its own slow body failing as the caller reads it
        async with r.client.stream("GET", upstream.url + "/status/503?drip=0.5") as response:
            assert response.status_code == 503
            with pytest.raises(httpx.ReadTimeout):
                await response.aread()
        assert upstream.total_hits("/status/503") == 2
        assert r.outcomes() == ["failure", "failure"]
        assert r.counting.unclosed() == []
        assert await burst(r, upstream.url + "/ok") == [200] * 4 * POOL


async def test_a_post_without_idempotency_key_reaches_the_upstream_once(
    upstream: FaultServer, clock: FakeClock
) -> None:
    async with rig(clock, make_policy(attempts=3)) as r:
        upstream.fail_next = 1
        response = await r.client.post(upstream.url + "/ok", content=b"order")
        assert response.status_code == 503
        assert upstream.hits[("POST", "/ok")] == 1
        with pytest.raises(httpx.ReadTimeout):
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
    upstream: FaultServer, clock: FakeClock
) -> None:
    async with rig(clock) as r:
        breaker = r.transport.breaker(upstream.url)
        with pytest.raises(httpx.ReadTimeout):
            await r.client.get(upstream.url + "/hang")
        with pytest.raises(httpx.RemoteProtocolError):
            await r.client.get(upstream.url + "/garbage")
        assert breaker.state is CircuitState.CLOSED
        assert (await r.client.get(upstream.url + "/status/502")).status_code == 502
        assert breaker.state is CircuitState.OPEN

        hits = upstream.total_hits()
        with pytest.raises(CircuitOpenError) as info:
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
    upstream: FaultServer, clock: FakeClock
) -> None:
    async with rig(clock, make_policy(half_open_max_calls=2)) as r:
        upstream.fail_next = THRESHOLD
        for _ in range(THRESHOLD):
            await r.client.get(upstream.url + "/ok")
        clock.advance(RECOVERY)
        upstream.reset()
        results: list[object] = []

        async def call() -> None:
            try:
                response = await r.client.get(upstream.url + "/drip?n=2&interval=0.1")
                results.append(response.status_code)
            except CircuitOpenError as exc:
                results.append(exc.retry_after)

        async with anyio.create_task_group() as tg:
            for _ in range(6):
                tg.start_soon(call)
        assert sorted(results, key=str) == [0.0] * 4 + [200] * 2
        assert upstream.total_hits("/drip") == 2
        assert r.transport.breaker(upstream.url).state is CircuitState.CLOSED


# -- cancellation -----------------------------------------------------------------------


async def test_a_cancelled_probe_gives_its_slot_back(
    upstream: FaultServer, clock: FakeClock
) -> None:
    async with rig(clock) as r:
        upstream.fail_next = THRESHOLD
        for _ in range(THRESHOLD):
            await r.client.get(upstream.url + "/ok")
        clock.advance(RECOVERY)
        breaker = r.transport.breaker(upstream.url)
        for _ in range(3):  # a leaked slot would reject the next probe (one allowed)
            with anyio.move_on_after(0.05):
                await r.client.get(upstream.url + "/hang")
            assert breaker.state is CircuitState.HALF_OPEN
            assert breaker.probes_in_flight == 0
        assert (await r.client.get(upstream.url + "/ok")).status_code == 200
        assert breaker.state is CircuitState.CLOSED


async def test_a_probe_cancelled_while_waiting_for_the_bulkhead_gives_its_slot_back(
    upstream: FaultServer, clock: FakeClock
) -> None:
    policy = make_policy(max_concurrency=1, max_wait=5.0)
    async with rig(clock, policy, timeouts=httpx.Timeout(5.0)) as r:
        breaker = r.transport.breaker(upstream.url)
        async with anyio.create_task_group() as tg:
            # a slow call admitted while closed holds the only bulkhead slot...
            tg.start_soon(r.client.get, upstream.url + "/hang")
            while upstream.total_hits("/hang") == 0:
                await anyio.sleep(0.005)
            # ...the host fails elsewhere, the circuit opens, then goes half-open...
            for _ in range(THRESHOLD):
                breaker.on_failure(breaker.admit())  # type: ignore[arg-type]
            clock.advance(RECOVERY)
            # ...and the probe that queues for the bulkhead is cancelled.
            with anyio.move_on_after(0.05):
                await r.client.get(upstream.url + "/ok")
            tg.cancel_scope.cancel()
        assert breaker.probes_in_flight == 0
        assert (await r.client.get(upstream.url + "/ok")).status_code == 200
        assert breaker.state is CircuitState.CLOSED


async def test_a_cancelled_caller_still_closes_the_response_while_listeners_run(
    upstream: FaultServer, clock: FakeClock
) -> None:
    async def slow_listener(event: Event) -> None:
        if isinstance(event, AttemptFinished) and event.outcome == "failure":
            await anyio.sleep(1)

    async with rig(clock, listeners=(slow_listener,)) as r:
        for _ in range(POOL):  # more than the pool would strand every connection
            with anyio.move_on_after(0.05):
                await r.client.get(upstream.url + "/status/500")
        assert r.counting.unclosed() == []
        assert await burst(r, upstream.url + "/ok") == [200] * 4 * POOL


async def test_a_burst_larger_than_the_pool_completes_after_every_fault(
    upstream: FaultServer, clock: FakeClock, refused_port: int
) -> None:
    async with rig(clock, make_policy(attempts=2)) as r:
        url = upstream.url
        for path in ERROR_PATHS:
            with contextlib.suppress(httpx.HTTPError):
                await r.client.get(url + path)
            r.transport.breaker(url).reset()
        with contextlib.suppress(httpx.HTTPError):
            await r.client.get(f"http://127.0.0.1:{refused_port}/")
        for path in ("/reset", "/drip?n=3&interval=0.6"):
            async with r.client.stream("GET", url + path) as response:
                with contextlib.suppress(httpx.ReadError, httpx.ReadTimeout):
                    await response.aread()
        async with r.client.stream("GET", url + "/drip?n=50&interval=0.01"):
            pass  # closed unread
        with anyio.move_on_after(0.05):
            await r.client.get(url + "/hang")
        upstream.fail_next = 1
        assert (await r.client.get(url + "/ok")).status_code == 200  # one 503 retried away
        r.transport.breaker(url).reset()

        assert await burst(r, url + "/ok", n=5 * POOL) == [200] * 5 * POOL
        assert r.counting.unclosed() == []
