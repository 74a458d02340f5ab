"""The sync binding under threads (README, "Sync"): one transport shared by
every thread, one breaker per host for all of them.

Each test starts its threads at a barrier so that they race for real, and joins
them with a timeout so that a deadlock fails the test instead of hanging it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import redis.asyncio
import tenacity

from resilient_http import (
    BreakerEvicted,
    BreakerPolicy,
    BulkheadFullError,
    CircuitOpenError,
    CircuitState,
    Event,
    Policy,
    RetryPolicy,
    StaleCache,
    StateChanged,
    SyncResilientClient,
    SyncResilientTransport,
)
from resilient_http.redis import RedisStateStore
from resilient_http.testing import FakeClock

URL = "https://api.example.com/"
THREADS = 30
NO_RETRY = RetryPolicy(attempts=1)


def race(n: int, work: Callable[[int], object], timeout: float = 10.0) -> list[object]:
    """Run ``work(i)`` in ``n`` threads released together; their results or errors."""
    barrier = threading.Barrier(n)
    results: list[object] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return results


class Gate:
    """An upstream that holds every request until released, counting those inside."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.open = threading.Event()
        self.lock = threading.Lock()
        self.inside = 0
        self.peak = 0
        self.hits = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.hits += 1
            self.inside += 1
            self.peak = max(self.peak, self.inside)
        try:
            self.open.wait(5)
            return httpx.Response(self.status)
        finally:
            with self.lock:
                self.inside -= 1


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate()
    yield gate
    gate.open.set()


def test_half_open_admits_exactly_its_probes_across_racing_threads(
    gate: Gate, clock: FakeClock
) -> None:
    policy = Policy(
        breaker=BreakerPolicy(failure_threshold=1, half_open_max_calls=3), retry=NO_RETRY
    )
    transport = SyncResilientTransport(httpx.MockTransport(gate), policy=policy, clock=clock)
    breaker = transport.breaker(URL)
    breaker.open_for(30)
    clock.advance(30)
    client = httpx.Client(transport=transport)

    def call(i: int) -> object:
        return client.get(URL).status_code

    threading.Timer(0.5, gate.open.set).start()  # the probes wait while the rest are turned away
    results = race(THREADS, call)
    assert Counter(type(r).__name__ if isinstance(r, Exception) else r for r in results) == {
        200: 3,
        "CircuitOpenError": THREADS - 3,
    }
    assert gate.hits == 3
    assert breaker.state is CircuitState.CLOSED
    assert breaker.calls_in_flight == 0


def test_a_bulkhead_counts_threads(gate: Gate) -> None:
    policy = Policy(max_concurrency=4, max_wait=0, retry=NO_RETRY)
    client = SyncResilientClient(transport=httpx.MockTransport(gate), policy=policy)
    threading.Timer(0.5, gate.open.set).start()
    results = race(THREADS, lambda i: client.get(URL).status_code)
    assert gate.peak == 4
    assert sum(isinstance(r, BulkheadFullError) for r in results) == THREADS - 4
    assert results.count(200) == 4


def test_a_bulkhead_lets_a_thread_wait_for_a_slot(gate: Gate) -> None:
    policy = Policy(max_concurrency=2, max_wait=5, retry=NO_RETRY)
    client = SyncResilientClient(transport=httpx.MockTransport(gate), policy=policy)
    threading.Timer(0.2, gate.open.set).start()
    results = race(8, lambda i: client.get(URL).status_code)
    assert results == [200] * 8
    assert gate.peak == 2


def test_failures_from_many_threads_open_one_shared_breaker() -> None:
    hits = Counter[str]()
    lock = threading.Lock()

    def sick(request: httpx.Request) -> httpx.Response:
        with lock:
            hits["sick"] += 1
        return httpx.Response(503)

    policy = Policy(breaker=BreakerPolicy(failure_threshold=5), retry=NO_RETRY)
    client = SyncResilientClient(transport=httpx.MockTransport(sick), policy=policy)

    def call(i: int) -> object:
        outcomes: list[object] = []
        for _ in range(20):
            try:
                outcomes.append(client.get(URL).status_code)
            except CircuitOpenError:
                outcomes.append("rejected")
        return outcomes

    race(10, call)
    assert client.transport.breaker(URL).state is CircuitState.OPEN
    # every thread saw the same breaker: far fewer than 10 x 20 calls went out
    assert 5 <= hits["sick"] <= 5 + 10
    assert client.transport.breaker(URL).calls_in_flight == 0


def test_a_listener_may_call_back_into_the_transport_without_deadlock(clock: FakeClock) -> None:
    seen: list[str] = []
    transport: SyncResilientTransport

    def listener(event: Event) -> None:
        opened = isinstance(event, StateChanged) and event.new is CircuitState.OPEN
        if opened and not event.host.startswith("other"):
            # reads, a manual override, and a new host, all from inside the event
            seen.append(str(transport.snapshot().get(event.host, {}).get("state")))
            transport.breaker("other.example.com:443").force_open()
            transport.breaker(event.host).reset()

    policy = Policy(breaker=BreakerPolicy(failure_threshold=1), retry=NO_RETRY)
    transport = SyncResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(503)),
        policy=policy,
        listeners=[listener],
        clock=clock,
        max_hosts=2,
    )
    client = httpx.Client(transport=transport)
    results = race(8, lambda i: client.get(f"https://h{i % 4}.example.com/").status_code)
    # all done (no deadlock); a racing thread may have met a circuit before its reset
    assert all(r == 503 or isinstance(r, CircuitOpenError) for r in results)
    assert seen
    assert transport.breaker("other.example.com:443").state is CircuitState.OPEN


def test_a_slow_listener_holds_up_only_its_own_thread() -> None:
    release = threading.Event()

    def slow(event: Event) -> None:
        if isinstance(event, StateChanged) and event.host.startswith("sick"):
            release.wait(5)

    policy = Policy(breaker=BreakerPolicy(failure_threshold=1), retry=NO_RETRY)
    client = SyncResilientClient(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(503 if request.url.host.startswith("sick") else 200)
        ),
        policy=policy,
        listeners=[slow],
    )
    stuck = threading.Thread(target=client.get, args=("https://sick.example.com/",), daemon=True)
    stuck.start()
    time.sleep(0.05)  # the stuck thread is inside the listener now
    started = time.monotonic()
    for i in range(20):  # other hosts, and new ones, keep flowing meanwhile
        assert client.get(f"https://ok{i}.example.com/").status_code == 200
    assert client.transport.breaker("https://sick.example.com/").state is CircuitState.OPEN
    assert time.monotonic() - started < 2
    release.set()
    stuck.join(5)
    assert not stuck.is_alive()


def test_a_listener_blocked_on_an_eviction_holds_up_no_other_thread() -> None:
    # Eviction events go out once the host map's lock is released: a listener
    # that blocks on one holds up its own thread only, never another thread's
    # brand-new host (which needs that lock).
    release = threading.Event()
    blocking = threading.Event()
    evicted: list[str] = []
    evictor: threading.Thread

    def listener(event: Event) -> None:
        if isinstance(event, BreakerEvicted):
            evicted.append(event.host)
            if threading.current_thread() is evictor:
                blocking.set()
                release.wait(5)

    transport = SyncResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)),
        policy=Policy(retry=NO_RETRY),
        listeners=[listener],
        max_hosts=2,
    )
    client = httpx.Client(transport=transport)
    evictor_done: list[int] = []

    def evict() -> None:  # the third host evicts the first, idle, one
        for name in ("h1", "h2", "h3"):
            evictor_done.append(client.get(f"https://{name}.example.com/").status_code)

    evictor = threading.Thread(target=evict, daemon=True)
    newcomer_done: list[object] = []
    newcomer = threading.Thread(
        target=lambda: newcomer_done.append(client.get("https://new.example.com/").status_code),
        daemon=True,
    )
    try:
        evictor.start()
        assert blocking.wait(5), "no eviction reached the listener"
        started = time.monotonic()
        newcomer.start()
        newcomer.join(1)
        took = time.monotonic() - started
        assert newcomer_done == [200], (
            f"a call to a new host waited {took:.2f}s for a listener blocked in another thread"
        )
        assert evictor.is_alive()  # still inside its listener meanwhile
    finally:
        release.set()
        evictor.join(5)
        newcomer.join(5)
    assert not evictor.is_alive()
    assert not newcomer.is_alive()
    assert evictor_done == [200, 200, 200]
    assert "h1.example.com:443" in evicted


def test_force_open_on_a_breaker_another_thread_evicted_still_holds() -> None:
    # Between transport.breaker(host) and force_open(), another thread's new
    # host evicts the (idle) breaker: the forcing must still reject that host.
    hits = Counter[str]()
    evicted: list[str] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        hits[request.url.host] += 1
        return httpx.Response(200)

    def listener(event: Event) -> None:
        if isinstance(event, BreakerEvicted):
            evicted.append(event.host)

    transport = SyncResilientTransport(
        httpx.MockTransport(upstream),
        policy=Policy(retry=NO_RETRY),
        listeners=[listener],
        max_hosts=1,
    )
    client = httpx.Client(transport=transport)
    breaker = transport.breaker("a.example")
    other = threading.Thread(target=client.get, args=("https://b.example/",), daemon=True)
    other.start()
    other.join(5)
    assert not other.is_alive()
    assert evicted == ["a.example:443"]  # the breaker we hold is no longer the map's
    breaker.force_open()
    with pytest.raises(CircuitOpenError):
        client.get("https://a.example/")
    assert hits["a.example"] == 0
    assert transport.breaker("a.example") is breaker
    assert transport.snapshot()["a.example:443"]["state"] == "open"


def test_a_flood_of_hosts_from_threads_stays_bounded() -> None:
    transport = SyncResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(200)),
        policy=Policy(retry=NO_RETRY),
        max_hosts=64,
    )
    client = SyncResilientClient(transport=transport)

    def crawl(i: int) -> object:
        for n in range(300):
            client.get(f"https://t{i}-h{n}.example.com/")
        return "done"

    assert race(8, crawl, timeout=30) == ["done"] * 8
    assert len(transport.snapshot()) <= 64


def test_a_backoff_sleep_ends_when_another_thread_opens_the_circuit() -> None:
    first = threading.Event()

    def sick(request: httpx.Request) -> httpx.Response:
        first.set()
        return httpx.Response(503)

    policy = Policy(
        breaker=BreakerPolicy(failure_threshold=2),
        retry=RetryPolicy(attempts=3, wait=tenacity.wait_fixed(10), budget=None),
    )
    client = SyncResilientClient(transport=httpx.MockTransport(sick), policy=policy)
    outcome: list[object] = []
    retrying = threading.Thread(
        target=lambda: outcome.append(client.get(URL).status_code), daemon=True
    )
    started = time.monotonic()
    retrying.start()
    first.wait(5)
    time.sleep(0.05)  # the first caller is in its 10 s backoff now
    client.transport.breaker(URL).force_open()
    retrying.join(5)
    assert outcome == [503]  # its last real answer, at once
    assert time.monotonic() - started < 3


def test_async_listeners_fallbacks_and_stores_are_refused() -> None:
    async def async_listener(event: Event) -> None:
        pass

    async def async_fallback(request: httpx.Request, error: Exception) -> httpx.Response:
        return httpx.Response(200)

    with pytest.raises(TypeError, match=r"listener .* is async"):
        SyncResilientTransport(listeners=[async_listener])
    transport = SyncResilientTransport()
    with pytest.raises(TypeError, match="is async"):
        transport.fallback("api.example.com", async_fallback)
    with pytest.raises(TypeError, match="is async"):
        SyncResilientTransport(policy=Policy(fallback=async_fallback))
    store: Any = RedisStateStore(redis.asyncio.Redis(port=1))
    with pytest.raises(TypeError, match="RedisStateStore is an async store"):
        SyncResilientTransport(store=store)


def test_a_fallback_that_returns_an_awaitable_is_an_error() -> None:
    async def answer() -> httpx.Response:
        return httpx.Response(200)

    transport = SyncResilientTransport(httpx.MockTransport(lambda r: httpx.Response(200)))
    transport.fallback("api.example.com", lambda request, error: answer())
    transport.breaker(URL).force_open()
    with httpx.Client(transport=transport) as client, pytest.raises(TypeError, match="awaitable"):
        client.get(URL)


def test_a_sync_transport_in_an_async_client_says_what_to_use() -> None:
    transport: Any = SyncResilientTransport()
    with pytest.raises(
        TypeError, match=r"sync transport .*ResilientTransport with httpx\.AsyncClient"
    ):
        transport.handle_async_request(httpx.Request("GET", URL))


@pytest.fixture
def eager_switching() -> Iterator[None]:
    """Threads switch as often as the interpreter lets them: races show at once."""
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@pytest.mark.usefixtures("eager_switching")
def test_the_stale_caches_byte_count_holds_when_threads_store_the_same_urls() -> None:
    """One StaleCache serves every thread of a SyncResilientTransport: answers
    for the same URLs stored at once from six threads leave its byte count
    equal to what it holds, so its bounds still bound it."""
    cache = StaleCache(max_entries=50, max_total_bytes=100_000)
    answer = httpx.Response(200, content=b"x")
    requests = [httpx.Request("GET", f"https://api.example.com/{i}") for i in range(5)]
    start = threading.Barrier(6)

    def store(thread: int) -> None:
        start.wait()
        for i in range(20_000):
            cache.store(requests[i % 5], answer, b"x" * (1 + (i + thread) % 7), float(i))

    threads = [threading.Thread(target=store, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    held = [cache.find(request, now=20_000.0) for request in requests]
    assert cache.total_bytes == sum(len(found[2]) for found in held if found is not None)
    assert len(cache) == 5


@pytest.mark.usefixtures("eager_switching")
def test_threads_expiring_and_storing_the_same_urls_keep_the_count_and_raise_nothing() -> None:
    cache = StaleCache(max_age=1.0)
    answer = httpx.Response(200, content=b"x")
    requests = [httpx.Request("GET", f"https://api.example.com/{i}") for i in range(3)]
    start = threading.Barrier(6)
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        start.wait()
        try:
            for i in range(10_000):
                request = requests[i % 3]
                if thread % 2:
                    cache.store(request, answer, b"x" * (1 + i % 5), now=0.0)
                else:
                    cache.find(request, now=5.0)  # expired: dropped, by one thread only
        except BaseException as exc:  # pragma: no cover - the failure this test looks for
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    held = sum(len(found[2]) for r in requests if (found := cache.find(r, now=0.5)) is not None)
    assert cache.total_bytes == held
