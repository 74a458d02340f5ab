"""The breaker map stays bounded whatever the hosts do (README, "Memory"):
idle breakers go first, closed breakers with recent failures next, open
circuits last; a host with a call in flight and a forced breaker never go; and
each new host costs the same however many hosts came before. On every binding
(the sync ones make their calls from worker threads).

A held body and a held backoff sleep are the binding's own kind: an
``anyio.Event`` for the async bindings, a ``threading.Event`` waited on in the
worker thread for the sync ones.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.to_thread
import pytest
import tenacity

from resilient_http import (
    BreakerEvicted,
    BreakerPolicy,
    CircuitState,
    Event,
    Policy,
    RetryPolicy,
)
from resilient_http._breaker import Breaker
from resilient_http.testing import FakeClock

from ..bindings import Binding

Handler = Callable[[Any], Any]


def make(
    binding: Binding,
    clock: FakeClock,
    handler: Handler,
    *,
    max_hosts: int,
    breaker: BreakerPolicy | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], object] | None = None,
    listeners: list[Callable[[Event], None]] | None = None,
) -> tuple[Any, Any]:
    """The resilient transport over ``handler`` and a plain client over it
    (behind the async face)."""
    transport = binding.transport(
        binding.mock(handler),
        policy=Policy(
            breaker=breaker or BreakerPolicy(),
            retry=retry or RetryPolicy(attempts=1),
        ),
        max_hosts=max_hosts,
        clock=clock,
        sleep=sleep or clock.sleep,
        listeners=listeners or (),
    )
    return transport, binding.client(transport)


async def crawl(binding: Binding, client: Any, urls: list[str]) -> None:
    """``GET`` each URL in turn, as one caller: the sync bindings make every
    call from one worker thread (a thread hop per call would only add time)."""
    if binding.sync:

        def sequentially() -> None:
            for url in urls:
                client.sync.get(url)

        await anyio.to_thread.run_sync(sequentially)
    else:
        for url in urls:
            await client.get(url)


async def test_a_crawler_whose_hosts_fail_stays_bounded_at_a_flat_cost(
    binding: Binding, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
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

    def handler(request: Any) -> Any:
        return binding.response(503 if int(request.url.host.split(".")[0][1:]) % 2 else 200)

    transport, client = make(binding, clock, handler, max_hosts=128)
    hosts = 3000
    async with client:
        await crawl(binding, client, [f"https://h{n}.example.com/" for n in range(hosts)])
        assert len(transport.snapshot()) == 128
    assert looked_at <= 8 * hosts


async def test_a_rate_mode_breaker_failing_under_host_churn_is_kept_and_opens(
    binding: Binding, clock: FakeClock
) -> None:
    """Rate mode keeps no consecutive count: a failing host must still be kept
    while idle hosts come and go, until its window opens the circuit."""

    def handler(request: Any) -> Any:
        return binding.response(503 if request.url.host == "sick.example.com" else 200)

    breaker = BreakerPolicy(failure_rate=0.5, minimum_calls=5, window=60.0)
    transport, client = make(binding, clock, handler, max_hosts=4, breaker=breaker)
    async with client:
        for round_ in range(5):
            assert (await client.get("https://sick.example.com/")).status_code == 503
            for n in range(6):  # more churn than max_hosts: sick is the LRU host
                await client.get(f"https://r{round_}-{n}.example.com/")
        assert transport.breaker("https://sick.example.com/").state is CircuitState.OPEN
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get("https://sick.example.com/")


async def test_an_old_single_failure_is_no_reason_to_keep_a_breaker(
    binding: Binding, clock: FakeClock
) -> None:
    def handler(request: Any) -> Any:
        return binding.response(503 if request.url.host == "once.example.com" else 200)

    transport, client = make(binding, clock, handler, max_hosts=2)
    async with client:
        await client.get("https://once.example.com/")
        clock.advance(BreakerPolicy().window)  # the failure is now old
        await client.get("https://a.example.com/")
        await client.get("https://b.example.com/")
    assert "once.example.com:443" not in transport.snapshot()


class _Gate:
    """A body that waits for the test, then fails (``fail``) or ends. ``gate()``
    builds it as the binding's kind of byte stream."""

    def __init__(self, binding: Binding, fail: bool) -> None:
        self.binding = binding
        self.release: Any = threading.Event() if binding.sync else anyio.Event()
        self.fail = fail

    def __iter__(self) -> Iterator[bytes]:
        yield b"first chunk;"
        # bounded: a test that never releases it fails rather than wedging its thread
        assert self.release.wait(10), "the test never released the body"
        if self.fail:
            raise self.binding.http.ReadError("connection reset mid-body")
        yield b"last chunk"

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"first chunk;"
        await self.release.wait()
        if self.fail:
            raise self.binding.http.ReadError("connection reset mid-body")
        yield b"last chunk"


def gate(binding: Binding, fail: bool) -> _Gate:
    base = binding.http.SyncByteStream if binding.sync else binding.http.AsyncByteStream
    body: _Gate = type("Gate", (_Gate, base), {})(binding, fail)
    return body


async def test_a_host_whose_body_is_being_read_is_never_evicted(
    binding: Binding, clock: FakeClock
) -> None:
    """Its verdict must reach the live breaker: the failure mid-body opens the
    circuit that later calls see, and no eviction is announced for it."""
    body = gate(binding, fail=True)
    events: list[Event] = []

    def handler(request: Any) -> Any:
        if request.url.host == "slow.example.com":
            return binding.response(200, stream=body)
        return binding.response(200)

    transport, client = make(
        binding,
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
            with pytest.raises(binding.http.ReadError):
                await response.aread()
        assert transport.breaker("https://slow.example.com/").state is CircuitState.OPEN
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get("https://slow.example.com/")
    evicted = [e.host for e in events if isinstance(e, BreakerEvicted)]
    assert "slow.example.com:443" not in evicted


class Pause:
    """A backoff ``sleep`` of the binding's kind that holds the retry until the
    test calls ``wake()``: a coroutine function for the async bindings, a plain
    function (blocking its worker thread) for the sync ones."""

    def __init__(self, binding: Binding) -> None:
        self.sync = binding.sync
        if self.sync:
            self._asleep_t, self._wake_t = threading.Event(), threading.Event()
        else:
            self._asleep_a, self._wake_a = anyio.Event(), anyio.Event()

    @property
    def sleep(self) -> Callable[[float], object]:
        if self.sync:
            return self._sync_sleep
        return self._async_sleep

    def _sync_sleep(self, seconds: float) -> None:
        self._asleep_t.set()
        # bounded: a test that never wakes it fails rather than wedging its thread
        assert self._wake_t.wait(10), "the test never woke the sleeper"

    async def _async_sleep(self, seconds: float) -> None:
        self._asleep_a.set()
        await self._wake_a.wait()

    async def asleep(self) -> None:
        """Returns once the retry is in its backoff sleep."""
        if self.sync:
            assert await anyio.to_thread.run_sync(self._asleep_t.wait, 10)
        else:
            await self._asleep_a.wait()

    def wake(self) -> None:
        if self.sync:
            self._wake_t.set()
        else:
            self._wake_a.set()


async def test_a_host_in_backoff_is_never_evicted(binding: Binding, clock: FakeClock) -> None:
    """A call between two attempts is in flight too: its retry's verdict lands
    on the breaker the transport keeps."""
    pause = Pause(binding)
    statuses = iter([429, 503])  # a 429 alone is no failure: the breaker looks idle

    def handler(request: Any) -> Any:
        if request.url.host == "busy.example.com":
            return binding.response(next(statuses))
        return binding.response(200)

    retry = RetryPolicy(attempts=2, wait=tenacity.wait_fixed(1), budget=None)
    transport, client = make(binding, clock, handler, max_hosts=1, retry=retry, sleep=pause.sleep)
    async with client, anyio.create_task_group() as tg:
        tg.start_soon(client.get, "https://busy.example.com/")
        await pause.asleep()
        for n in range(3):
            await client.get(f"https://other{n}.example.com/")
        pause.wake()
    snapshot = transport.snapshot()
    assert snapshot["busy.example.com:443"]["consecutive_failures"] == 1


async def test_forced_breakers_are_never_evicted(binding: Binding, clock: FakeClock) -> None:
    transport, client = make(binding, clock, lambda request: binding.response(200), max_hosts=1)
    transport.breaker("https://held.example.com/").force_open()
    async with client:
        for n in range(5):
            await client.get(f"https://h{n}.example.com/")
    assert transport.snapshot()["held.example.com:443"]["forced"] == "open"


async def test_when_every_host_is_down_the_oldest_open_circuit_goes(
    binding: Binding, clock: FakeClock
) -> None:
    """Bounded even when nothing is idle: the map stays at ``max_hosts``."""
    transport, client = make(
        binding,
        clock,
        lambda request: binding.response(503),
        max_hosts=3,
        breaker=BreakerPolicy(failure_threshold=1),
    )
    async with client:
        for n in range(10):
            await client.get(f"https://down{n}.example.com/")
    snapshot = transport.snapshot()
    assert len(snapshot) == 3
    assert {state["state"] for state in snapshot.values()} == {"open"}
