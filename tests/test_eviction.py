"""The breaker map stays bounded whatever the hosts do (README, "Memory"):
idle breakers go first, closed breakers with recent failures next, open
circuits last; a host with a call in flight and a forced breaker never go; and
each new host costs the same however many hosts came before."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import httpx
import pytest
import tenacity

from resilient_http import (
    BreakerEvicted,
    BreakerPolicy,
    CircuitOpenError,
    CircuitState,
    Event,
    Policy,
    ResilientTransport,
    RetryPolicy,
)
from resilient_http._breaker import Breaker
from resilient_http.testing import FakeClock


def make(
    clock: FakeClock,
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    max_hosts: int,
    breaker: BreakerPolicy | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
    listeners: list[Callable[[Event], None]] | None = None,
) -> tuple[ResilientTransport, httpx.AsyncClient]:
    transport = ResilientTransport(
        httpx.MockTransport(handler),
        policy=Policy(
            breaker=breaker or BreakerPolicy(),
            retry=retry or RetryPolicy(attempts=1),
        ),
        max_hosts=max_hosts,
        clock=clock,
        sleep=sleep or clock.sleep,
        listeners=listeners or (),
    )
    return transport, httpx.AsyncClient(transport=transport)


async def test_a_crawler_whose_hosts_fail_stays_bounded_at_a_flat_cost(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Half of 3,000 hosts fail once (each failure recent: the clock stands
    still). The map never exceeds ``max_hosts`` and no new host looks at more
    than a handful of others."""
    looked_at = 0
    is_idle = Breaker.is_idle

    def counting(self: Breaker) -> bool:
        nonlocal looked_at
        looked_at += 1
        return is_idle(self)

    monkeypatch.setattr(Breaker, "is_idle", counting)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if int(request.url.host.split(".")[0][1:]) % 2 else 200)

    transport, client = make(clock, handler, max_hosts=128)
    hosts = 3000
    async with client:
        for n in range(hosts):
            await client.get(f"https://h{n}.example.com/")
        assert len(transport.snapshot()) == 128
    assert looked_at <= 8 * hosts


async def test_a_rate_mode_breaker_failing_under_host_churn_is_kept_and_opens(
    clock: FakeClock,
) -> None:
    """Rate mode keeps no consecutive count: a failing host must still be kept
    while idle hosts come and go, until its window opens the circuit."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if request.url.host == "sick.example.com" else 200)

    breaker = BreakerPolicy(failure_rate=0.5, minimum_calls=5, window=60.0)
    transport, client = make(clock, handler, max_hosts=4, breaker=breaker)
    async with client:
        for round_ in range(5):
            assert (await client.get("https://sick.example.com/")).status_code == 503
            for n in range(6):  # more churn than max_hosts: sick is the LRU host
                await client.get(f"https://r{round_}-{n}.example.com/")
        assert transport.breaker("https://sick.example.com/").state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            await client.get("https://sick.example.com/")


async def test_an_old_single_failure_is_no_reason_to_keep_a_breaker(clock: FakeClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if request.url.host == "once.example.com" else 200)

    transport, client = make(clock, handler, max_hosts=2)
    async with client:
        await client.get("https://once.example.com/")
        clock.advance(BreakerPolicy().window)  # the failure is now old
        await client.get("https://a.example.com/")
        await client.get("https://b.example.com/")
    assert "once.example.com:443" not in transport.snapshot()


class Gate(httpx.AsyncByteStream):
    """A body that waits for the test, then fails (``fail``) or ends."""

    def __init__(self, fail: bool) -> None:
        self.release = anyio.Event()
        self.fail = fail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"first chunk;"
        await self.release.wait()
        if self.fail:
            raise httpx.ReadError("connection reset mid-body")
        yield b"last chunk"


async def test_a_host_whose_body_is_being_read_is_never_evicted(clock: FakeClock) -> None:
    """Its verdict must reach the live breaker: the failure mid-body opens the
    circuit that later calls see, and no eviction is announced for it."""
    body = Gate(fail=True)
    events: list[Event] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "slow.example.com":
            return httpx.Response(200, stream=body)
        return httpx.Response(200)

    transport, client = make(
        clock,
        handler,
        max_hosts=1,
        breaker=BreakerPolicy(failure_threshold=1),
        listeners=[events.append],
    )
    async with client:
        async with client.stream("GET", "https://slow.example.com/") as response:
            for n in range(3):
                await client.get(f"https://other{n}.example.com/")
            assert "slow.example.com:443" in transport.snapshot()
            body.release.set()
            with pytest.raises(httpx.ReadError):
                await response.aread()
        assert transport.breaker("https://slow.example.com/").state is CircuitState.OPEN
        with pytest.raises(CircuitOpenError):
            await client.get("https://slow.example.com/")
    evicted = [e.host for e in events if isinstance(e, BreakerEvicted)]
    assert "slow.example.com:443" not in evicted


async def test_a_host_in_backoff_is_never_evicted(clock: FakeClock) -> None:
    """A call between two attempts is in flight too: its retry's verdict lands
    on the breaker the transport keeps."""
    asleep, wake = anyio.Event(), anyio.Event()

    async def sleep(seconds: float) -> None:
        asleep.set()
        await wake.wait()

    statuses = iter([429, 503])  # a 429 alone is no failure: the breaker looks idle

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "busy.example.com":
            return httpx.Response(next(statuses))
        return httpx.Response(200)

    retry = RetryPolicy(attempts=2, wait=tenacity.wait_fixed(1), budget=None)
    transport, client = make(clock, handler, max_hosts=1, retry=retry, sleep=sleep)
    async with client, anyio.create_task_group() as tg:
        tg.start_soon(client.get, "https://busy.example.com/")
        await asleep.wait()
        for n in range(3):
            await client.get(f"https://other{n}.example.com/")
        wake.set()
    snapshot = transport.snapshot()
    assert snapshot["busy.example.com:443"]["consecutive_failures"] == 1


async def test_forced_breakers_are_never_evicted(clock: FakeClock) -> None:
    transport, client = make(clock, lambda request: httpx.Response(200), max_hosts=1)
    transport.breaker("https://held.example.com/").force_open()
    async with client:
        for n in range(5):
            await client.get(f"https://h{n}.example.com/")
    assert transport.snapshot()["held.example.com:443"]["forced"] == "open"


async def test_when_every_host_is_down_the_oldest_open_circuit_goes(clock: FakeClock) -> None:
    """Bounded even when nothing is idle: the map stays at ``max_hosts``."""
    transport, client = make(
        clock,
        lambda request: httpx.Response(503),
        max_hosts=3,
        breaker=BreakerPolicy(failure_threshold=1),
    )
    async with client:
        for n in range(10):
            await client.get(f"https://down{n}.example.com/")
    snapshot = transport.snapshot()
    assert len(snapshot) == 3
    assert {state["state"] for state in snapshot.values()} == {"open"}
