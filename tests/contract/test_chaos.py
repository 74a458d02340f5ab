"""A seeded chaos storm on real upstreams (tests/faults.py), on every binding.

Waves of concurrent requests (GET, HEAD, PUT, DELETE, POST with and without
``Idempotency-Key``, replayable and streamed bodies) to several hosts with
different policies (consecutive and rate mode, growing break time, bulkhead,
deadline, fallback, stale cache), random faults and 5xx bursts, the breaker
clock moving while calls are in flight, and, on the async bindings, about a
third of the calls cancelled at a random moment (a thread cannot be cancelled:
on the sync bindings every call runs to its end, each in a worker thread).
Afterwards:

- nothing unexpected was raised (only responses, rejections, timeouts, network
  and protocol errors, and cancellations), and no call starved for a connection;
- every response the inner transport produced was closed (``counting``);
- no non-replayable request (POST without ``Idempotency-Key``, streamed body)
  reached an upstream twice;
- every circuit opened for a period within its policy's bounds, no probe slot is
  held, and every breaker closes within its recovery bound once the faults stop;
- a burst larger than the connection pool completes.

The plan (hosts, methods, faults, read modes, cancel times, clock steps) comes
from one seed, printed at the start: ``CHAOS_SEED=<seed> pytest
tests/contract/test_chaos.py`` replays it (the interleaving of real IO may
still differ). The quick storm takes about a second per binding; the long one
is marked slow.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
import tenacity

from resilient_http import (
    BreakerPolicy,
    CircuitState,
    Event,
    Policy,
    RetryPolicy,
    StaleCache,
    StateChanged,
)
from resilient_http.testing import FakeClock

from ..bindings import Binding
from ..faults import FaultServer, closed_port, start_faults

# httpcore (trio backend) abandons a request body's async generator when sending it
# is cancelled or the peer resets: trio reports it when collected. Bare httpx does
# the same (not a resilient_http leak: responses are counted by ``counting``). So
# does httpx2's response stream with httpcore2's when a reader closes a body
# part-way: it never closes the iterator it reads (ours close theirs).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object "
    "(ByteStream[.]__aiter__|AsyncIteratorByteStream[.]__aiter__|_body"
    "|PoolByteStream[.]__aiter__|AsyncResponseStream[.]__aiter__) "
    ":pytest.PytestUnraisableExceptionWarning"
)

POOL = 6
FALLBACK = "resilient_http.fallback"

#: One policy per host: consecutive with several probes; rate mode with growing
#: break time and a bulkhead; a small threshold with a deadline and a fallback;
#: and a refused port that never heals.
POLICIES = [
    Policy(
        breaker=BreakerPolicy(
            failure_threshold=3, recovery_timeout=5.0, half_open_max_calls=2, success_threshold=2
        ),
        retry=RetryPolicy(attempts=3, wait=tenacity.wait_exponential_jitter(multiplier=0.1, max=2)),
    ),
    Policy(
        breaker=BreakerPolicy(
            failure_rate=0.5,
            minimum_calls=4,
            window=10.0,
            recovery_timeout=4.0,
            max_recovery_timeout=20.0,
        ),
        retry=RetryPolicy(attempts=2, wait=tenacity.wait_none()),
        max_concurrency=3,
        max_wait=0.05,
    ),
    Policy(
        breaker=BreakerPolicy(failure_threshold=2, recovery_timeout=3.0),
        retry=RetryPolicy(attempts=2, wait=tenacity.wait_fixed(0.5), deadline=1.0),
    ),
    Policy(
        breaker=BreakerPolicy(failure_threshold=2, recovery_timeout=2.0),
        retry=RetryPolicy(attempts=2, wait=tenacity.wait_none()),
    ),
]


def bound(policy: Policy) -> float:
    """The longest a circuit of this policy may stay open."""
    breaker = policy.breaker
    return breaker.max_recovery_timeout or breaker.recovery_timeout


FAULTS: list[tuple[str, int]] = [  # (path, weight)
    ("/ok", 70),
    ("/status/503", 8),
    ("/status/503?retry_after=0", 3),
    ("/status/503?retry_after=999", 2),
    ("/status/502", 3),
    ("/status/500", 4),
    ("/status/429?retry_after=1", 2),
    ("/status/404", 2),
    ("/status/503?drip=0.3", 2),
    ("/hang", 5),
    ("/drip?n=4&interval=0.01", 5),
    ("/drip?n=3&interval=0.4", 3),
    ("/reset?after=0.01", 5),
    ("/reset-early", 4),
    ("/close", 4),
    ("/garbage?kind=status", 2),
    ("/garbage?kind=header", 2),
    ("/garbage?kind=length", 2),
]
HEAD_FAULTS = [("/ok", 6), ("/status/503", 2), ("/status/500", 1), ("/hang", 1)]
METHODS = [("GET", 35), ("HEAD", 8), ("PUT", 10), ("DELETE", 5), ("POST", 27), ("POST+key", 15)]


def pick(rng: random.Random, table: list[tuple[str, int]]) -> str:
    return rng.choices([k for k, _ in table], weights=[w for _, w in table])[0]


@dataclass
class Call:
    rid: str
    host: int
    method: str
    path: str
    key: bool
    streamed: bool
    mode: str  # read | stream-read | stream-close
    cancel_after: float | None  # (the async bindings only)

    @property
    def once(self) -> bool:
        """May this request reach the upstream at most once?"""
        return (self.method == "POST" and not self.key) or self.streamed


def plan_call(rng: random.Random, rid: str, hosts: int) -> Call:
    method = pick(rng, METHODS)
    key = method == "POST+key"
    method = method.removesuffix("+key")
    path = pick(rng, HEAD_FAULTS if method == "HEAD" else FAULTS)
    streamed = method in ("POST", "PUT") and rng.random() < 0.25
    mode = rng.choice(["read", "read", "stream-read", "stream-close"])
    cancel_after = rng.expovariate(1 / 0.02) if rng.random() < 1 / 3 else None
    return Call(rid, rng.randrange(hosts), method, path, key, streamed, mode, cancel_after)


@dataclass
class Storm:
    seed: int
    waves: int
    per_wave: int
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    @property
    def cancelled(self) -> int:
        return self.outcomes["cancelled"]


class SharedClock(FakeClock):
    """A ``FakeClock`` that worker threads (retry waits) and the event loop
    (the ticker) may advance at once without losing a step or going back."""

    def __init__(self, start: float = 0.0) -> None:
        super().__init__(start)
        self.lock = threading.Lock()

    def advance(self, seconds: float) -> None:
        with self.lock:
            super().advance(seconds)


# -- counting what the client side opens and closes, on any binding ----------------


@dataclass
class _Opened:
    method: str
    path: str
    status: int
    closed: bool = False


class _CountingBody:
    """Passes a response body through and notes when it is closed."""

    def __init__(self, stream: Any, record: _Opened) -> None:
        self.stream, self.record = stream, record

    def __iter__(self) -> Iterator[bytes]:
        yield from self.stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        iterator = self.stream.__aiter__()
        try:
            async for chunk in iterator:
                yield chunk
        finally:  # (closed part-way: what it reads, too)
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    def close(self) -> None:
        self.record.closed = True
        self.stream.close()

    async def aclose(self) -> None:
        self.record.closed = True
        await self.stream.aclose()


class _Counting:
    """An inner transport that counts every response it produced and whether it
    was closed (by the caller, or by the resilient layer that dropped it)."""

    def __init__(self, binding: Binding, inner: Any) -> None:
        self.binding, self.inner = binding, inner
        self.opened: list[_Opened] = []

    def _counted(self, request: Any, response: Any) -> Any:
        record = _Opened(request.method, request.url.path, response.status_code)
        self.opened.append(record)
        http = self.binding.http
        base = http.SyncByteStream if self.binding.sync else http.AsyncByteStream
        assert isinstance(response.stream, base)
        response.stream = type("CountingBody", (_CountingBody, base), {})(response.stream, record)
        return response

    def handle_request(self, request: Any) -> Any:
        return self._counted(request, self.inner.handle_request(request))

    async def handle_async_request(self, request: Any) -> Any:
        return self._counted(request, await self.inner.handle_async_request(request))

    def unclosed(self) -> list[tuple[str, str, int]]:
        return [(r.method, r.path, r.status) for r in self.opened if not r.closed]

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()


def counting(binding: Binding, inner: Any) -> Any:
    """A ``_Counting`` transport of the binding's kind over ``inner``."""
    http = binding.http
    base = http.BaseTransport if binding.sync else http.AsyncBaseTransport
    return type("Counting", (_Counting, base), {})(binding, inner)


@contextlib.asynccontextmanager
async def threads_for(binding: Binding, calls: int) -> AsyncIterator[None]:
    """On a sync binding, room for ``calls`` worker threads at once (anyio's
    default limiter has 40), so a wave really is that many concurrent calls."""
    if not binding.sync:
        yield
        return
    limiter = anyio.to_thread.current_default_thread_limiter()
    before = limiter.total_tokens
    limiter.total_tokens = max(before, calls)
    try:
        yield
    finally:
        limiter.total_tokens = before


# -- the storm ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def upstreams() -> Iterator[list[FaultServer]]:
    with start_faults() as a, start_faults() as b, start_faults() as c:
        yield [a, b, c]


@pytest.fixture(scope="module")
def refused() -> Iterator[int]:
    with closed_port() as port:
        yield port


async def _body(size: int) -> AsyncIterator[bytes]:
    for _ in range(size):
        yield b"chunk;"


def _sync_body(size: int) -> Iterator[bytes]:
    for _ in range(size):
        yield b"chunk;"


def streamed_body(binding: Binding, size: int) -> AsyncIterator[bytes] | Iterator[bytes]:
    """A body of unknown length, of the binding's kind: it cannot be replayed."""
    return _sync_body(size) if binding.sync else _body(size)


async def send(binding: Binding, client: Any, base: str, call: Call) -> str:
    http, api = binding.http, binding.api
    headers = {"x-request-id": call.rid}
    if call.key:
        headers["idempotency-key"] = call.rid
    content: bytes | AsyncIterator[bytes] | Iterator[bytes] | None = None
    if call.method in ("POST", "PUT"):
        content = streamed_body(binding, 3) if call.streamed else b"payload"
    url = base + call.path
    try:
        if call.mode == "read":
            response = await client.request(call.method, url, content=content, headers=headers)
        else:
            async with client.stream(call.method, url, content=content, headers=headers) as r:
                if call.mode == "stream-read":
                    await r.aread()
                response = r
    except api.CircuitOpenError:
        return "circuit_open"
    except api.BulkheadFullError:
        return "bulkhead_full"
    except http.PoolTimeout:
        return "POOL_TIMEOUT"
    except http.TimeoutException:
        return "timeout"
    except http.RemoteProtocolError:
        return "protocol_error"
    except http.NetworkError:
        return "network_error"
    if FALLBACK in response.extensions:
        return "stale" if "age" in response.headers else "fallback"
    return str(response.status_code)


async def run_storm(
    binding: Binding,
    storm: Storm,
    upstreams: list[FaultServer],
    refused: int,
    clock: FakeClock,
) -> None:
    http = binding.http
    rng = random.Random(storm.seed)
    print(
        f"chaos storm on {binding}: CHAOS_SEED={storm.seed} "
        f"waves={storm.waves} per_wave={storm.per_wave}"
    )
    for server in upstreams:
        server.reset()
    bases = [s.url for s in upstreams] + [f"http://127.0.0.1:{refused}"]
    keys = [f"127.0.0.1:{http.URL(b).port}" for b in bases]
    events: list[Event] = []

    async def async_listener(event: Event) -> None:
        await anyio.lowlevel.checkpoint()  # cancellations may land while listeners drain

    def sync_listener(event: Event) -> None:
        time.sleep(0)  # other threads run while listeners drain

    inner = counting(
        binding,
        binding.inner_http(
            limits=http.Limits(max_connections=POOL, max_keepalive_connections=POOL)
        ),
    )
    transport = binding.transport(
        inner,
        hosts=dict(zip(keys, POLICIES, strict=True)),
        listeners=[events.append, sync_listener if binding.sync else async_listener],
        stale_cache=StaleCache(max_entries=16),
        max_hosts=2,  # fewer than the hosts: eviction runs during the storm
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(storm.seed),
    )
    transport.fallback(keys[2], lambda request, error: binding.response(200, text="fallback"))

    timeout = http.Timeout(2.0, read=0.2, pool=3.0)
    async with (
        threads_for(binding, max(storm.per_wave, 3 * POOL)),
        binding.client(transport, timeout=timeout) as client,
    ):

        async def one(call: Call) -> None:
            with anyio.CancelScope() as scope:
                if call.cancel_after is not None and not binding.sync:
                    scope.deadline = anyio.current_time() + call.cancel_after
                try:
                    outcome = await send(binding, client, bases[call.host], call)
                except Exception as exc:  # anything else is a bug in the library
                    storm.unexpected.append(f"{call}: {exc!r}")
                    outcome = "UNEXPECTED"
            storm.outcomes["cancelled" if scope.cancelled_caught else outcome] += 1

        async def move_clock(scope: anyio.CancelScope) -> None:
            with scope:
                while True:
                    await anyio.sleep(rng.uniform(0.01, 0.05))
                    clock.advance(rng.uniform(0.0, 1.5))

        for wave in range(storm.waves):
            if rng.random() < 0.5:  # a 5xx burst on one upstream
                rng.choice(upstreams).fail_next = rng.randint(2, 8)
            calls = [plan_call(rng, f"{wave}-{i}", len(bases)) for i in range(storm.per_wave)]
            storm.calls += calls
            ticker = anyio.CancelScope()
            async with anyio.create_task_group() as tg:
                tg.start_soon(move_clock, ticker)
                async with anyio.create_task_group() as wave_tg:
                    for call in calls:
                        wave_tg.start_soon(one, call)
                ticker.cancel()
            clock.advance(rng.uniform(0.0, 6.0))

        # -- the storm is over: what must hold -------------------------------------
        context = f"({binding}, CHAOS_SEED={storm.seed})"
        assert storm.unexpected == [], context
        assert storm.outcomes["POOL_TIMEOUT"] == 0, f"a call starved for a connection {context}"
        assert inner.unclosed() == [], f"responses left open {context}"
        reached: Counter[str] = Counter()
        for server in upstreams:
            reached.update(server.request_ids)
        twice = [c for c in storm.calls if c.once and reached[c.rid] > 1]
        assert twice == [], f"non-replayable requests sent twice {context}"

        for event in events:
            if isinstance(event, StateChanged) and event.new is CircuitState.OPEN:
                policy = POLICIES[keys.index(event.host)]
                low = policy.breaker.recovery_timeout
                assert low - 1e-9 <= event.retry_after <= bound(policy) + 1e-9, (event, context)

        breakers = [transport.breaker(key) for key in keys]
        for breaker, policy in zip(breakers, POLICIES, strict=True):
            assert breaker.probes_in_flight == 0, (breaker.key, context)
            assert breaker.calls_in_flight == 0, (breaker.key, context)  # every ticket settled
            assert breaker.retry_after <= bound(policy), (breaker.key, context)

        # The faults stop: once its recovery bound has passed, every circuit lets a
        # probe through, and the healthy ones close after success_threshold probes.
        for server in upstreams:
            server.fail_next = 0
        clock.advance(max(bound(p) for p in POLICIES))
        for breaker, base, policy in zip(breakers[:3], bases[:3], POLICIES[:3], strict=True):
            assert breaker.state is not CircuitState.OPEN, (breaker.key, context)
            for _ in range(policy.breaker.success_threshold):
                assert (await client.get(base + "/ok")).status_code == 200, context
            assert breaker.state is CircuitState.CLOSED, (breaker.key, context)
        assert breakers[3].state is not CircuitState.OPEN, context

        statuses: list[int] = []

        async def get(url: str) -> None:
            statuses.append((await client.get(url)).status_code)

        async with anyio.create_task_group() as tg:
            for i in range(3 * POOL):
                tg.start_soon(get, bases[i % 3] + "/ok")
        assert statuses == [200] * 3 * POOL, context
        assert inner.unclosed() == [], context

    storm.outcomes["upstream_hits"] = sum(s.total_hits() for s in upstreams)
    print(
        f"chaos storm {storm.seed} on {binding}: {len(storm.calls)} calls, {dict(storm.outcomes)}"
    )


def _seed() -> int:
    env = os.environ.get("CHAOS_SEED")
    return int(env) if env else random.SystemRandom().randrange(2**32)


async def test_chaos_storm(binding: Binding, upstreams: list[FaultServer], refused: int) -> None:
    storm = Storm(seed=_seed(), waves=4, per_wave=40)
    await run_storm(binding, storm, upstreams, refused, SharedClock())


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_long_chaos_storm(
    binding: Binding, upstreams: list[FaultServer], refused: int
) -> None:
    base = _seed()
    for n in range(4):
        storm = Storm(seed=base + n, waves=20, per_wave=60)
        await run_storm(binding, storm, upstreams, refused, SharedClock(1000.0 * n))
