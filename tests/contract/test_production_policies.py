"""Rate mode, slow calls, body phase, growing break time, deadline, retry
budget, bulkhead, per-request override, stale-while-open and the validation of
their settings, checked on every binding from this one source.

Decisions run over the binding's ``MockTransport`` on a ``FakeClock``; a
scripted body advances that clock between its chunks.
"""

from __future__ import annotations

import gzip
import math
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import pytest
import tenacity

from resilient_http import CircuitState
from resilient_http.testing import FakeClock

from ..bindings import Binding

NO_WAIT = tenacity.wait_none()


def make(
    binding: Binding,
    handler: Callable[[Any], Any],
    clock: FakeClock,
    *,
    policy: Any = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """A transport over ``handler`` on ``clock``, and a client over it."""
    transport = binding.transport(
        binding.mock(handler), policy=policy, clock=clock, sleep=clock.sleep, **kwargs
    )
    return transport, binding.client(transport)


def rate_policy(binding: Binding, **breaker: Any) -> Any:
    return binding.api.Policy(
        breaker=binding.api.BreakerPolicy(**breaker),
        retry=binding.api.RetryPolicy(attempts=1),
    )


class _ScriptedBody:
    """A body that advances the clock between chunks and may fail midway."""

    def __init__(
        self, binding: Binding, clock: FakeClock, chunks: int, gap: float, fail: bool
    ) -> None:
        self.binding, self.clock = binding, clock
        self.chunks, self.gap, self.fail = chunks, gap, fail
        self.closed = False

    def _chunks(self) -> Iterator[bytes]:
        for i in range(self.chunks):
            self.clock.advance(self.gap)
            yield f"chunk {i};".encode()
        if self.fail:
            raise self.binding.http.ReadError("connection reset mid-body")

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks():
            yield chunk

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def scripted_stream(
    binding: Binding, clock: FakeClock, chunks: int, gap: float, fail: bool = False
) -> Any:
    """A ``_ScriptedBody`` of the binding's kind of stream (sync or async)."""
    base = binding.http.SyncByteStream if binding.sync else binding.http.AsyncByteStream
    kind = type("ScriptedStream", (_ScriptedBody, base), {})
    return kind(binding, clock, chunks, gap, fail)


class Held:
    """An upstream that holds every request until ``release()``: in a worker
    thread (sync bindings) on a ``threading.Event``, in a task on an
    ``anyio.Event``. ``reached`` lists the requests that got to it."""

    def __init__(self, binding: Binding) -> None:
        self.binding = binding
        self.reached: list[Any] = []
        self._thread_release = threading.Event()
        self._task_release = anyio.Event()

    def handler(self) -> Callable[[Any], Any]:
        if self.binding.sync:

            def hold(request: Any) -> Any:
                self.reached.append(request)
                self._thread_release.wait(10)
                return self.binding.response(200)

            return hold

        async def hold_async(request: Any) -> Any:
            self.reached.append(request)
            await self._task_release.wait()
            return self.binding.response(200)

        return hold_async

    async def wait_reached(self, n: int) -> None:
        with anyio.fail_after(5):
            while len(self.reached) < n:
                await anyio.sleep(0.001)

    def release(self) -> None:
        self._thread_release.set()
        self._task_release.set()


# -- failure-rate mode ---------------------------------------------------------


async def test_rate_mode_trips_only_once_minimum_calls_are_met(
    binding: Binding, clock: FakeClock
) -> None:
    transport, client = make(
        binding,
        lambda r: binding.response(503),
        clock,
        policy=rate_policy(binding, failure_rate=0.5, minimum_calls=10, window=10.0),
    )
    breaker = transport.breaker("api.test")
    async with client:
        for _ in range(9):  # 100% failures, but fewer than minimum_calls
            assert (await client.get("https://api.test/")).status_code == 503
        assert breaker.state is CircuitState.CLOSED
        await client.get("https://api.test/")
        assert breaker.state is CircuitState.OPEN
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get("https://api.test/")


async def test_forty_percent_failures_stay_closed_at_fifty_percent(
    binding: Binding, clock: FakeClock
) -> None:
    pattern = iter([503, 200, 503, 200, 200] * 40)  # 40% failures, never 5 in a row anyway
    transport, client = make(
        binding,
        lambda r: binding.response(next(pattern)),
        clock,
        policy=rate_policy(binding, failure_rate=0.5, minimum_calls=20, window=10.0),
    )
    async with client:
        for _ in range(200):
            await client.get("https://api.test/")
            clock.advance(0.01)
    assert transport.breaker("api.test").state is CircuitState.CLOSED


async def test_consecutive_counting_does_not_apply_in_rate_mode(
    binding: Binding, clock: FakeClock
) -> None:
    # Ten failures in a row out of 100 calls: 10% < 50%, so it stays closed even
    # though failure_threshold (5) consecutive failures happened.
    statuses = iter([200] * 45 + [503] * 10 + [200] * 45)
    transport, client = make(
        binding,
        lambda r: binding.response(next(statuses)),
        clock,
        policy=rate_policy(binding, failure_rate=0.5, minimum_calls=20, failure_threshold=5),
    )
    async with client:
        for _ in range(100):
            await client.get("https://api.test/")
    assert transport.breaker("api.test").state is CircuitState.CLOSED


async def test_rate_window_forgets_old_calls(binding: Binding, clock: FakeClock) -> None:
    statuses = iter([503] * 15 + [503] * 15)
    transport, client = make(
        binding,
        lambda r: binding.response(next(statuses)),
        clock,
        policy=rate_policy(binding, failure_rate=0.5, minimum_calls=20, window=10.0),
    )
    async with client:
        for _ in range(15):
            await client.get("https://api.test/")
        clock.advance(11.0)  # those 15 failures leave the window
        for _ in range(15):
            await client.get("https://api.test/")
    assert transport.breaker("api.test").state is CircuitState.CLOSED


# -- slow calls and the body phase ------------------------------------------------


async def test_slow_calls_trip_the_breaker(binding: Binding, clock: FakeClock) -> None:
    def slow(request: Any) -> Any:
        clock.advance(2.0)  # every call takes 2 s, all return 200
        return binding.response(200, text="ok")

    transport, client = make(
        binding,
        slow,
        clock,
        policy=rate_policy(
            binding, failure_rate=0.5, minimum_calls=5, slow_call_duration=1.0, slow_call_rate=0.8
        ),
    )
    async with client:
        for _ in range(5):
            assert (await client.get("https://api.test/")).status_code == 200
        assert transport.breaker("api.test").state is CircuitState.OPEN


async def test_slow_call_duration_runs_until_the_body_ends(
    binding: Binding, clock: FakeClock
) -> None:
    # Status line at once, body takes 4 x 0.5 s: the call is 2 s long, so slow.
    def streaming(request: Any) -> Any:
        return binding.response(200, stream=scripted_stream(binding, clock, chunks=4, gap=0.5))

    transport, client = make(
        binding,
        streaming,
        clock,
        policy=rate_policy(binding, failure_rate=0.9, minimum_calls=3, slow_call_duration=1.5),
    )
    async with client:
        for _ in range(3):
            response = await client.get("https://api.test/")
            assert response.content.startswith(b"chunk 0;")
    assert transport.breaker("api.test").state is CircuitState.OPEN


@pytest.mark.parametrize("mode", ["consecutive", "rate"])
async def test_error_while_reading_the_body_is_a_failure(
    binding: Binding, clock: FakeClock, mode: str
) -> None:
    def dying(request: Any) -> Any:
        stream = scripted_stream(binding, clock, chunks=2, gap=0.0, fail=True)
        return binding.response(200, stream=stream)

    breaker = (
        {"failure_threshold": 2}
        if mode == "consecutive"
        else {"failure_rate": 0.5, "minimum_calls": 2}
    )
    transport, client = make(binding, dying, clock, policy=rate_policy(binding, **breaker))
    async with client:
        for _ in range(2):
            async with client.stream("GET", "https://api.test/") as response:
                assert response.status_code == 200  # the status line was fine
                with pytest.raises(binding.http.ReadError):
                    await response.aread()
    assert transport.breaker("api.test").state is CircuitState.OPEN


async def test_half_open_probe_is_judged_by_its_status_line(
    binding: Binding, clock: FakeClock
) -> None:
    healthy = False

    def handler(request: Any) -> Any:
        if not healthy:
            return binding.response(503)
        return binding.response(200, stream=scripted_stream(binding, clock, chunks=3, gap=60.0))

    transport, client = make(
        binding,
        handler,
        clock,
        policy=rate_policy(binding, failure_threshold=1, recovery_timeout=10.0),
    )
    breaker = transport.breaker("api.test")
    async with client:
        await client.get("https://api.test/")
        assert breaker.state is CircuitState.OPEN
        clock.advance(10.0)
        healthy = True
        async with client.stream("GET", "https://api.test/") as response:
            # Recovery does not wait for a minutes-long body.
            assert response.status_code == 200
            assert breaker.state is CircuitState.CLOSED


# -- growing break time ----------------------------------------------------------------


async def test_break_time_grows_with_failed_probes_and_resets_on_close(
    binding: Binding, clock: FakeClock
) -> None:
    healthy = False

    def handler(request: Any) -> Any:
        return binding.response(200 if healthy else 503)

    transport, client = make(
        binding,
        handler,
        clock,
        policy=rate_policy(
            binding, failure_threshold=1, recovery_timeout=10.0, max_recovery_timeout=60.0
        ),
        rng=random.Random(7),
    )
    breaker = transport.breaker("api.test")
    periods = []
    async with client:
        await client.get("https://api.test/")
        for _ in range(5):
            with pytest.raises(binding.api.CircuitOpenError) as info:
                await client.get("https://api.test/")
            periods.append(info.value.retry_after)
            clock.advance(info.value.retry_after)
            await client.get("https://api.test/")  # the probe fails: reopen, longer
        assert periods[0] == pytest.approx(10.0)
        for previous, period, n in zip(periods, periods[1:], range(1, 5), strict=False):
            nominal = min(60.0, 10.0 * 2**n)
            assert 0.75 * nominal <= period <= min(60.0, 1.25 * nominal)
            assert period >= previous or period == pytest.approx(60.0, rel=0.25)
        assert max(periods) <= 60.0
        # a successful probe closes and resets the period
        clock.advance(60.0)
        healthy = True
        await client.get("https://api.test/")
        assert breaker.state is CircuitState.CLOSED
        healthy = False
        await client.get("https://api.test/")
        with pytest.raises(binding.api.CircuitOpenError) as info:
            await client.get("https://api.test/")
        assert info.value.retry_after == pytest.approx(10.0)


# -- deadline ------------------------------------------------------------------------------


async def test_deadline_stops_a_backoff_that_would_cross_it(
    binding: Binding, clock: FakeClock
) -> None:
    hits = 0

    def handler(request: Any) -> Any:
        nonlocal hits
        hits += 1
        return binding.response(503, text=f"attempt {hits}")

    api = binding.api
    _, client = make(
        binding,
        handler,
        clock,
        policy=api.Policy(
            breaker=api.BreakerPolicy(failure_threshold=100),
            retry=api.RetryPolicy(attempts=5, wait=tenacity.wait_fixed(3.0), deadline=7.0),
        ),
    )
    async with client:
        response = await client.get("https://api.test/")
    # attempts at t=0 and t=3; a third at t=6 would need waiting until t=6 (< 7),
    # the fourth would cross it.
    assert hits == 3
    assert clock.sleeps == [3.0, 3.0]
    assert response.text == "attempt 3"  # the last outcome, readable


async def test_deadline_with_huge_waits_sleeps_nothing(binding: Binding, clock: FakeClock) -> None:
    hits = 0

    def handler(request: Any) -> Any:
        nonlocal hits
        hits += 1
        return binding.response(503)

    api = binding.api
    _, client = make(
        binding,
        handler,
        clock,
        policy=api.Policy(
            retry=api.RetryPolicy(attempts=10, wait=tenacity.wait_fixed(3600), deadline=2)
        ),
    )
    async with client:
        assert (await client.get("https://api.test/")).status_code == 503
    assert hits == 1
    assert clock.sleeps == []


# -- retry budget ---------------------------------------------------------------------------


async def test_retry_budget_caps_load_on_an_always_failing_upstream(
    binding: Binding, clock: FakeClock
) -> None:
    hits = 0

    def handler(request: Any) -> Any:
        nonlocal hits
        hits += 1
        return binding.response(503)

    api = binding.api
    _, client = make(
        binding,
        handler,
        clock,
        policy=api.Policy(
            breaker=api.BreakerPolicy(failure_statuses={500}),  # keep the circuit out of it
            retry=api.RetryPolicy(
                attempts=3,
                wait=NO_WAIT,
                budget=api.RetryBudget(ratio=0.1, min_per_second=0.1, window=10.0),
            ),
        ),
    )
    async with client:
        for _ in range(100):
            await client.get("https://api.test/")
            clock.advance(0.01)
    assert 100 < hits <= 112, hits  # not 300


async def test_budget_none_turns_the_cap_off(binding: Binding, clock: FakeClock) -> None:
    hits = 0

    def handler(request: Any) -> Any:
        nonlocal hits
        hits += 1
        return binding.response(503)

    api = binding.api
    _, client = make(
        binding,
        handler,
        clock,
        policy=api.Policy(
            breaker=api.BreakerPolicy(failure_statuses={500}),
            retry=api.RetryPolicy(attempts=3, wait=NO_WAIT, budget=None),
        ),
    )
    async with client:
        for _ in range(50):
            await client.get("https://api.test/")
    assert hits == 150


async def test_budget_is_on_by_default(binding: Binding) -> None:
    api = binding.api
    assert api.RetryPolicy().budget == api.RetryBudget(ratio=0.2, min_per_second=10.0, window=10.0)


# -- bulkhead --------------------------------------------------------------------------------


async def test_bulkhead_lets_exactly_max_concurrency_calls_through(binding: Binding) -> None:
    """Ten concurrent calls (tasks, or threads on the sync bindings), two slots."""
    upstream = Held(binding)
    transport = binding.transport(
        binding.mock(upstream.handler()), policy=binding.api.Policy(max_concurrency=2, max_wait=0.0)
    )
    outcomes: list[str] = []

    async def call(client: Any) -> None:
        try:
            response = await client.get("https://api.test/")
            outcomes.append(str(response.status_code))
        except binding.api.BulkheadFullError as exc:
            outcomes.append(f"full:{exc.host}")

    async with binding.client(transport) as client, anyio.create_task_group() as tg:
        try:
            for _ in range(10):
                tg.start_soon(call, client)
            with anyio.fail_after(5):
                while len(outcomes) < 8:
                    await anyio.sleep(0.001)
        finally:
            upstream.release()  # before the task group waits for the held calls
    assert len(upstream.reached) == 2
    assert sorted(outcomes) == ["200", "200"] + ["full:api.test:443"] * 8
    # rejections by the bulkhead are not breaker failures
    assert transport.breaker("api.test").failure_count == 0
    assert transport.breaker("api.test").state is CircuitState.CLOSED


async def test_bulkhead_waits_up_to_max_wait_and_serves_fallback(binding: Binding) -> None:
    upstream = Held(binding)
    transport = binding.transport(
        binding.mock(upstream.handler()),
        policy=binding.api.Policy(max_concurrency=1, max_wait=0.05),
    )
    errors: list[Any] = []

    def busy(request: Any, error: Any) -> Any:
        errors.append(error)
        return binding.response(503, text="busy")

    transport.fallback("api.test", busy)

    async with binding.client(transport) as client, anyio.create_task_group() as tg:
        try:
            tg.start_soon(client.get, "https://api.test/")
            await upstream.wait_reached(1)  # the first call holds the only slot
            with anyio.fail_after(5):
                response = await client.get("https://api.test/")
        finally:
            upstream.release()  # before the task group waits for the held call
    assert response.text == "busy"
    assert response.extensions["resilient_http.fallback"] == "bulkhead_full"
    assert isinstance(errors[0], binding.api.BulkheadFullError)
    assert isinstance(errors[0], binding.api.RejectedError)
    assert isinstance(errors[0], binding.http.TransportError)


async def test_exception_tree(binding: Binding) -> None:
    api = binding.api
    assert issubclass(api.RejectedError, binding.http.TransportError)
    assert issubclass(api.CircuitOpenError, api.RejectedError)
    assert issubclass(api.BulkheadFullError, api.RejectedError)


# -- per-request override -----------------------------------------------------------------


async def test_per_request_retry_override_applies_to_that_request_only(
    binding: Binding, clock: FakeClock
) -> None:
    hits = 0

    def handler(request: Any) -> Any:
        nonlocal hits
        hits += 1
        return binding.response(503)

    api = binding.api
    _, client = make(
        binding,
        handler,
        clock,
        policy=api.Policy(
            breaker=api.BreakerPolicy(failure_threshold=100),
            retry=api.RetryPolicy(attempts=2, wait=NO_WAIT),
        ),
    )
    async with client:
        await client.get(
            "https://api.test/",
            extensions={"resilient_http.retry": api.RetryPolicy(attempts=5, wait=NO_WAIT)},
        )
        assert hits == 5
        await client.get("https://api.test/")
        assert hits == 7
        await client.get(
            "https://api.test/", extensions={"resilient_http.retry": api.RetryPolicy(attempts=1)}
        )
        assert hits == 8


# -- stale-while-open --------------------------------------------------------------------


def stale_setup(
    binding: Binding, clock: FakeClock, cache: Any = None
) -> tuple[Any, Any, dict[str, Any]]:
    state: dict[str, Any] = {"healthy": True, "hits": 0, "headers": {}}

    def handler(request: Any) -> Any:
        state["hits"] += 1
        if not state["healthy"]:
            return binding.response(503)
        headers = dict(state["headers"])
        return binding.response(200, headers=headers, json={"path": request.url.path, "v": 1})

    api = binding.api
    transport, client = make(
        binding,
        handler,
        clock,
        policy=api.Policy(
            breaker=api.BreakerPolicy(failure_threshold=1, recovery_timeout=3600),
            retry=api.RetryPolicy(attempts=1),
        ),
        stale_cache=cache if cache is not None else api.StaleCache(),
    )
    return transport, client, state


async def trip(client: Any, state: dict[str, Any]) -> None:
    state["healthy"] = False
    assert (await client.get("https://api.test/trip")).status_code == 503


async def test_stale_cache_answers_a_rejected_get(binding: Binding, clock: FakeClock) -> None:
    transport, client, state = stale_setup(binding, clock)
    async with client:
        fresh = await client.get("https://api.test/items?page=2")
        assert fresh.json() == {"path": "/items", "v": 1}
        await trip(client, state)
        clock.advance(42)
        stale = await client.get("https://api.test/items?page=2")
    assert transport.breaker("api.test").state is CircuitState.OPEN
    assert stale.status_code == 200
    assert stale.json() == fresh.json()
    assert stale.headers["content-type"] == fresh.headers["content-type"]
    assert stale.headers["age"] == "42"
    assert stale.extensions["resilient_http.fallback"] == "circuit_open"


async def test_stale_cache_comes_before_the_fallback(binding: Binding, clock: FakeClock) -> None:
    transport, client, state = stale_setup(binding, clock)
    transport.fallback("api.test", lambda r, e: binding.response(200, text="fallback"))
    async with client:
        await client.get("https://api.test/known")
        await trip(client, state)
        assert (await client.get("https://api.test/known")).json()["path"] == "/known"
        # a URL it has not seen goes to the fallback
        assert (await client.get("https://api.test/unknown")).text == "fallback"


async def test_stale_cache_never_answers_a_post_or_an_unseen_url(
    binding: Binding, clock: FakeClock
) -> None:
    _, client, state = stale_setup(binding, clock)
    async with client:
        await client.get("https://api.test/known")
        await client.post("https://api.test/known")  # POST 200: never stored
        await trip(client, state)
        with pytest.raises(binding.api.CircuitOpenError):
            await client.post("https://api.test/known")
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get("https://api.test/other")
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get("https://api.test/known?x=1")


@pytest.mark.parametrize(
    ("response_headers", "request_headers"),
    [
        ({"Cache-Control": "no-store"}, {}),
        ({"Cache-Control": "private, max-age=60"}, {}),
        ({"Set-Cookie": "session=abc"}, {}),
        ({}, {"Authorization": "Bearer secret-token"}),
    ],
)
async def test_stale_cache_refuses_private_answers(
    binding: Binding,
    clock: FakeClock,
    response_headers: dict[str, str],
    request_headers: dict[str, str],
) -> None:
    _, client, state = stale_setup(binding, clock)
    state["headers"] = response_headers
    async with client:
        await client.get("https://api.test/me", headers=request_headers)
        await trip(client, state)
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get("https://api.test/me", headers=request_headers)


async def test_stale_cache_expires_entries(binding: Binding, clock: FakeClock) -> None:
    _, client, state = stale_setup(binding, clock, binding.api.StaleCache(max_age=60))
    async with client:
        await client.get("https://api.test/known")
        await trip(client, state)
        clock.advance(61)
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get("https://api.test/known")


async def test_stale_cache_never_serves_a_partial_answer_as_the_whole(
    binding: Binding, clock: FakeClock
) -> None:
    def handler(request: Any) -> Any:
        if "range" in request.headers:
            return binding.response(206, content=b"ab", headers={"Content-Range": "bytes 0-1/10"})
        return binding.response(200, content=b"abcdefghij")

    transport, client = make(binding, handler, clock, stale_cache=binding.api.StaleCache())
    async with client:
        await client.get("https://api.test/file")
        await client.get("https://api.test/file", headers={"Range": "bytes=0-1"})
        transport.breaker("api.test").force_open()
        stale = await client.get("https://api.test/file")
    assert stale.status_code == 200
    assert stale.content == b"abcdefghij"


async def test_stale_cache_keeps_an_encoded_in_memory_body_as_sent(
    binding: Binding, clock: FakeClock
) -> None:
    # A response built with content (MockTransport, respx) is decoded when built;
    # the cache must keep the bytes that match its Content-Encoding header.
    def handler(request: Any) -> Any:
        return binding.response(
            200, content=gzip.compress(b"hello"), headers={"Content-Encoding": "gzip"}
        )

    transport, client = make(binding, handler, clock, stale_cache=binding.api.StaleCache())
    async with client:
        assert (await client.get("https://api.test/z")).text == "hello"
        transport.breaker("api.test").force_open()
        stale = await client.get("https://api.test/z")
    assert stale.text == "hello"
    assert stale.extensions["resilient_http.fallback"] == "circuit_open"


async def test_stale_cache_is_bounded_by_entries_and_entry_size(
    binding: Binding, clock: FakeClock
) -> None:
    cache = binding.api.StaleCache(max_entries=2, max_entry_bytes=100)
    _, client, state = stale_setup(binding, clock, cache)
    async with client:
        for path in ("/a", "/b", "/c"):
            await client.get(f"https://api.test{path}")
        assert len(cache) == 2
        await trip(client, state)
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get("https://api.test/a")  # the oldest went first
        assert (await client.get("https://api.test/c")).status_code == 200


async def test_stale_cache_captures_a_streamed_body_as_it_is_read(
    binding: Binding, clock: FakeClock
) -> None:
    healthy = True
    streams: list[Any] = []

    def handler(request: Any) -> Any:
        if not healthy:
            return binding.response(503)
        stream = scripted_stream(binding, clock, chunks=3, gap=0.0)
        streams.append(stream)
        return binding.response(200, stream=stream)

    api = binding.api
    cache = api.StaleCache(max_entry_bytes=1000)
    _, client = make(
        binding,
        handler,
        clock,
        policy=api.Policy(
            breaker=api.BreakerPolicy(failure_threshold=1), retry=api.RetryPolicy(attempts=1)
        ),
        stale_cache=cache,
    )
    async with client:
        async with client.stream("GET", "https://api.test/s") as response:
            assert len(cache) == 0  # nothing read ahead of the caller
            body = await response.aread()
        assert len(cache) == 1
        healthy = False
        await client.get("https://api.test/trip")
        stale = await client.get("https://api.test/s")
    assert stale.content == body == b"chunk 0;chunk 1;chunk 2;"


async def test_stale_cache_skips_bodies_larger_than_an_entry(
    binding: Binding, clock: FakeClock
) -> None:
    def handler(request: Any) -> Any:
        return binding.response(200, stream=scripted_stream(binding, clock, chunks=50, gap=0.0))

    cache = binding.api.StaleCache(max_entry_bytes=64)
    _, client = make(binding, handler, clock, stale_cache=cache)
    async with client:
        response = await client.get("https://api.test/big")
        assert len(response.content) > 64
    assert len(cache) == 0


# -- validation of the new settings -------------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda api: api.BreakerPolicy(failure_rate=0.0), "failure_rate"),
        (lambda api: api.BreakerPolicy(failure_rate=1.5), "failure_rate"),
        (lambda api: api.BreakerPolicy(failure_rate=0.5, minimum_calls=0), "minimum_calls"),
        (lambda api: api.BreakerPolicy(window=0), "window"),
        (lambda api: api.BreakerPolicy(window=-1.0), "window"),
        (
            lambda api: api.BreakerPolicy(failure_rate=0.5, slow_call_duration=-1),
            "slow_call_duration",
        ),
        (lambda api: api.BreakerPolicy(failure_rate=0.5, slow_call_rate=0), "slow_call_rate"),
        (lambda api: api.BreakerPolicy(slow_call_duration=1.0), "slow_call_duration"),
        (lambda api: api.BreakerPolicy(max_recovery_timeout=5.0), "max_recovery_timeout"),
        (lambda api: api.BreakerPolicy(max_recovery_timeout=math.nan), "max_recovery_timeout"),
        (lambda api: api.RetryPolicy(deadline=0), "deadline"),
        (lambda api: api.RetryPolicy(deadline=-3), "deadline"),
        (lambda api: api.RetryBudget(ratio=-0.1), "ratio"),
        (lambda api: api.RetryBudget(min_per_second=-1), "min_per_second"),
        (lambda api: api.RetryBudget(window=0), "window"),
        (lambda api: api.Policy(max_concurrency=0), "max_concurrency"),
        (lambda api: api.Policy(max_concurrency=2, max_wait=-1), "max_wait"),
        (lambda api: api.StaleCache(max_entries=0), "max_entries"),
        (lambda api: api.StaleCache(max_entry_bytes=-5), "max_entry_bytes"),
        (lambda api: api.StaleCache(max_age=0), "max_age"),
    ],
)
async def test_invalid_new_settings_name_the_field(
    binding: Binding, factory: Callable[[Any], object], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        factory(binding.api)


@pytest.mark.parametrize(
    ("factory", "field"),
    [
        (lambda b: b.api.RetryPolicy(budget=0.2), "budget"),
        (lambda b: b.api.Policy(max_concurrency=2.5), "max_concurrency"),
        (lambda b: b.api.RetryBudget(ratio="0.2"), "ratio"),
        (lambda b: b.api.StaleCache(max_entries="many"), "max_entries"),
        (lambda b: b.transport(stale_cache={}), "stale_cache"),
    ],
)
async def test_wrongly_typed_new_settings_name_the_field(
    binding: Binding, factory: Callable[[Binding], object], field: str
) -> None:
    with pytest.raises(TypeError, match=field):
        factory(binding)
