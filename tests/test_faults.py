"""Faults on a real upstream (tests/faults.py), through ResilientTransport over a
small real connection pool: what only the async binding can do. The rest (every
fault classified, trips, recovery, retries, a burst after every fault) runs on
every binding in tests/contract/test_faults.py.

- A cancelled caller is no failure: a sync call in a worker thread cannot be cancelled.
- A cancelled probe, also one waiting for the bulkhead, gives its slot back: the same.
- A cancelled caller still closes its response while async listeners run: async
  listeners, and cancellation, exist only on the async binding.
"""

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
    CircuitState,
    Event,
    Policy,
    ResilientTransport,
    RetryPolicy,
)
from resilient_http.testing import FakeClock

from .faults import CountingTransport, FaultServer, start_faults

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


@dataclass
class Rig:
    clock: FakeClock
    counting: CountingTransport
    transport: ResilientTransport
    client: httpx.AsyncClient
    events: list[Event] = field(default_factory=list)

    def outcomes(self) -> list[str]:
        return [e.outcome for e in self.events if isinstance(e, AttemptFinished)]


def make_policy(*, max_concurrency: int | None = None, max_wait: float = 0.0) -> Policy:
    return Policy(
        breaker=BreakerPolicy(failure_threshold=THRESHOLD, recovery_timeout=RECOVERY),
        retry=RetryPolicy(attempts=1, wait=tenacity.wait_none(), budget=None),
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


# -- cancellation -----------------------------------------------------------------------


async def test_a_cancelled_caller_is_no_failure(upstream: FaultServer, clock: FakeClock) -> None:
    async with rig(clock) as r:
        with anyio.move_on_after(0.05):
            await r.client.get(upstream.url + "/hang")
        assert r.outcomes() == ["ignored"]
        assert all(b["consecutive_failures"] == 0 for b in r.transport.snapshot().values())


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
