"""Retries: Retry-After parsing, eligibility, tenacity waits on the FakeClock, the
breaker consulted inside the loop, and every discarded response closed."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
import httpx
import pytest
import tenacity

from resilient_http import (
    BreakerPolicy,
    CircuitState,
    Event,
    Policy,
    ResilientTransport,
    RetryBudget,
    RetryPolicy,
    RetryScheduled,
)
from resilient_http._retry import BudgetState, RetryPlan, parse_retry_after
from resilient_http.testing import FakeClock

URL = "https://api.example.com/items?page=1"

# One scripted upstream answer: a status, a (status, headers) pair, or an exception.
Answer = int | tuple[int, dict[str, str]] | Exception


class TrackedStream(httpx.AsyncByteStream):
    """A response body that records whether it was read and closed."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.read = False
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.read = True
        yield self.body

    async def aclose(self) -> None:
        self.closed = True


class Upstream(httpx.AsyncBaseTransport):
    """A MockTransport whose responses carry fresh, unread, tracked streams, the
    way a real connection pool hands them out. The last answer repeats."""

    def __init__(self, answers: Sequence[Answer]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self.streams: list[TrackedStream] = []
        self.mock = httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        n = len(self.requests)
        self.requests.append(request)
        self.bodies.append(request.content)
        answer = self.answers[min(n, len(self.answers) - 1)]
        if isinstance(answer, Exception):
            raise answer
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return httpx.Response(status, headers=headers, text=f"attempt {n + 1}: {status}")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        mocked = await self.mock.handle_async_request(request)
        stream = TrackedStream(mocked.content)
        self.streams.append(stream)
        return httpx.Response(
            mocked.status_code, headers=mocked.headers, stream=stream, request=request
        )

    @property
    def calls(self) -> int:
        return len(self.requests)


def make(
    clock: FakeClock,
    answers: Sequence[Answer],
    *,
    threshold: int = 100,
    listeners: Sequence[Callable[[Event], object]] = (),
    sleep: Callable[[float], Any] | None = None,
    **retry: Any,
) -> tuple[httpx.AsyncClient, ResilientTransport, Upstream]:
    retry.setdefault("wait", tenacity.wait_fixed(1))
    retry.setdefault("budget", None)
    upstream = Upstream(answers)
    transport = ResilientTransport(
        upstream,
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=threshold), retry=RetryPolicy(**retry)
        ),
        listeners=listeners,
        clock=clock,
        sleep=sleep if sleep is not None else clock.sleep,
    )
    return httpx.AsyncClient(transport=transport), transport, upstream


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# -- parse_retry_after -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("3600", 3600.0),
        ("99999999999", 99999999999.0),  # huge but well-formed: the cap deals with it
    ],
)
def test_parse_retry_after_delta_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=now) == pytest.approx(30.0)
    assert parse_retry_after("Wed, 21 Oct 2015 08:28:00 GMT", now=now) == pytest.approx(3600.0)


def test_parse_retry_after_http_date_in_the_past_means_now() -> None:
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=now) == 0.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0


def test_parse_retry_after_http_date_uses_wall_clock_by_default() -> None:
    delay = parse_retry_after(http_date(30))
    assert delay is not None
    assert 28.0 <= delay <= 30.0


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "soon",
        "-5",
        "-0",
        "1.5",
        "+3",
        "nan",
        "inf",
        "1e3",
        "3 seconds",
        "0x10",
        "Wed, 21 Oct 2015 07:28:00",  # an HTTP-date is always GMT
        "Wed, 32 Oct 2015 07:28:00 GMT",
        "Wed, 21 Foo 2015 07:28:00 GMT",
        "9" * 100,  # absurdly long
        "Wed, 21 Oct 99999999 07:28:00 GMT",
    ],
)
def test_parse_retry_after_rejects_garbage(value: str | None) -> None:
    assert parse_retry_after(value) is None


# -- which requests are retried ---------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"])
async def test_idempotent_methods_are_retried(clock: FakeClock, method: str) -> None:
    client, _, upstream = make(clock, [503, 503, 200])
    async with client:
        response = await client.request(method, URL, content=b"same body")
    assert response.status_code == 200
    assert upstream.calls == 3
    assert upstream.bodies == [b"same body"] * 3  # replayed intact


@pytest.mark.parametrize("method", ["POST", "PATCH", "CONNECT"])
async def test_non_idempotent_methods_are_never_retried(clock: FakeClock, method: str) -> None:
    client, _, upstream = make(clock, [503, 200])
    async with client:
        response = await client.request(method, URL, content=b"charge")
    assert response.status_code == 503
    assert upstream.calls == 1
    assert clock.sleeps == []


async def test_post_is_not_retried_after_a_network_error(clock: FakeClock) -> None:
    client, _, upstream = make(clock, [httpx.ConnectError("refused"), 200])
    async with client:
        with pytest.raises(httpx.ConnectError):
            await client.post(URL, json={"amount": 10})
    assert upstream.calls == 1


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_any_method_with_an_idempotency_key_is_retried(clock: FakeClock, method: str) -> None:
    client, _, upstream = make(clock, [503, httpx.ConnectError("refused"), 201])
    async with client:
        response = await client.request(
            method, URL, content=b"charge", headers={"Idempotency-Key": "k-1"}
        )
    assert response.status_code == 201
    assert upstream.calls == 3
    assert upstream.bodies == [b"charge"] * 3
    assert all(r.headers["idempotency-key"] == "k-1" for r in upstream.requests)


@pytest.mark.parametrize(
    ("method", "headers"), [("PUT", {}), ("GET", {}), ("POST", {"Idempotency-Key": "k-2"})]
)
async def test_a_streamed_body_that_cannot_be_replayed_is_never_retried(
    clock: FakeClock, method: str, headers: dict[str, str]
) -> None:
    produced: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        for chunk in (b"part-1 ", b"part-2"):
            produced.append(chunk)
            yield chunk

    client, _, upstream = make(clock, [503, 200])
    async with client:
        response = await client.request(method, URL, content=body(), headers=headers)
    assert response.status_code == 503
    assert upstream.calls == 1
    assert upstream.bodies == [b"part-1 part-2"]
    assert produced == [b"part-1 ", b"part-2"]
    assert clock.sleeps == []


async def test_a_streamed_body_is_not_retried_after_a_network_error(clock: FakeClock) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"upload"

    client, _, upstream = make(clock, [httpx.ReadError("reset"), 200])
    async with client:
        with pytest.raises(httpx.ReadError):
            await client.put(URL, content=body())
    assert upstream.calls == 1


async def test_attempts_1_disables_retries(clock: FakeClock) -> None:
    client, _, upstream = make(clock, [503, 200], attempts=1)
    async with client:
        response = await client.get(URL)
    assert response.status_code == 503
    assert upstream.calls == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("attempts", [2, 3, 5])
async def test_attempts_counts_the_first_try(clock: FakeClock, attempts: int) -> None:
    client, _, upstream = make(clock, [503], attempts=attempts)
    async with client:
        response = await client.get(URL)
    assert response.status_code == 503
    assert upstream.calls == attempts
    assert response.text == f"attempt {attempts}: 503"  # the last real outcome


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("slow connect"),
        httpx.ReadTimeout("slow read"),
        httpx.ReadError("reset"),
        httpx.RemoteProtocolError("bad framing"),
    ],
)
async def test_network_timeout_and_protocol_errors_are_retried(
    clock: FakeClock, error: Exception
) -> None:
    client, _, upstream = make(clock, [error, 200])
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert upstream.calls == 2


async def test_last_error_is_raised_when_attempts_run_out(clock: FakeClock) -> None:
    client, _, upstream = make(
        clock, [httpx.ConnectError("first"), httpx.ReadTimeout("second"), httpx.ConnectError("3")]
    )
    async with client:
        with pytest.raises(httpx.ConnectError, match="3"):
            await client.get(URL)
    assert upstream.calls == 3


async def test_caller_errors_are_not_retried(clock: FakeClock) -> None:
    client, transport, upstream = make(clock, [httpx.UnsupportedProtocol("no"), 200])
    async with client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get(URL)
    assert upstream.calls == 1
    assert transport.breaker(URL).failure_count == 0


async def test_429_is_retried_but_is_not_a_breaker_failure(clock: FakeClock) -> None:
    client, transport, upstream = make(clock, [429], threshold=1, attempts=4)
    async with client:
        response = await client.get(URL)
    assert response.status_code == 429
    assert upstream.calls == 4
    breaker = transport.breaker(URL)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0


async def test_500_counts_as_a_failure_but_is_not_retried_by_default(clock: FakeClock) -> None:
    client, transport, upstream = make(clock, [500, 200], threshold=2)
    async with client:
        response = await client.get(URL)
    assert response.status_code == 500
    assert upstream.calls == 1
    assert transport.breaker(URL).failure_count == 1


async def test_retry_statuses_are_configurable(clock: FakeClock) -> None:
    client, _, upstream = make(clock, [500, 500, 200], statuses={500})
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert upstream.calls == 3


@pytest.mark.parametrize("status", [400, 404, 409, 501])
async def test_statuses_outside_the_retry_set_are_returned_at_once(
    clock: FakeClock, status: int
) -> None:
    client, _, upstream = make(clock, [status, 200])
    async with client:
        response = await client.get(URL)
    assert response.status_code == status
    assert upstream.calls == 1


# -- tenacity wait strategies on the FakeClock ---------------------------------------------


async def test_wait_none_retries_without_sleeping(clock: FakeClock) -> None:
    client, _, upstream = make(clock, [503, 503, 200], wait=tenacity.wait_none())
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert upstream.calls == 3
    assert clock.sleeps == []


async def test_wait_fixed_sleeps_between_attempts(clock: FakeClock) -> None:
    client, _, upstream = make(clock, [503], wait=tenacity.wait_fixed(2.5), attempts=4)
    async with client:
        await client.get(URL)
    assert upstream.calls == 4
    assert clock.sleeps == [2.5, 2.5, 2.5]
    assert clock() == 7.5


async def test_wait_exponential_sees_the_attempt_number(clock: FakeClock) -> None:
    client, _, _ = make(
        clock, [503], wait=tenacity.wait_exponential(multiplier=1, max=100), attempts=5
    )
    async with client:
        await client.get(URL)
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]


async def test_wait_exponential_jitter_stays_in_its_bounds(clock: FakeClock) -> None:
    client, _, _ = make(
        clock,
        [503],
        wait=tenacity.wait_exponential_jitter(multiplier=1, max=30, jitter=1),
        attempts=5,
    )
    async with client:
        await client.get(URL)
    assert len(clock.sleeps) == 4
    for n, slept in enumerate(clock.sleeps, start=1):
        base = 2.0 ** (n - 1)
        assert base <= slept <= base + 1


async def test_composed_and_chained_waits(clock: FakeClock) -> None:
    chain = tenacity.wait_chain(tenacity.wait_fixed(1), tenacity.wait_fixed(5))
    wait = chain + tenacity.wait_fixed(0.5)
    client, _, _ = make(clock, [503], wait=wait, attempts=4)
    async with client:
        await client.get(URL)
    assert clock.sleeps == [1.5, 5.5, 5.5]


async def test_a_custom_wait_sees_the_outcome_and_elapsed_time(clock: FakeClock) -> None:
    seen: list[tuple[int, bool, float]] = []

    def wait(state: tenacity.RetryCallState) -> float:
        assert state.outcome is not None
        seen.append((state.attempt_number, state.outcome.failed, state.seconds_since_start or 0.0))
        return 3.0 if state.outcome.failed else 1.0

    client, _, _ = make(clock, [httpx.ConnectError("x"), 503, 200], wait=wait)
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert seen == [(1, True, 0.0), (2, False, 3.0)]
    assert clock.sleeps == [3.0, 1.0]


async def test_wait_exception_strategy_for_network_errors(clock: FakeClock) -> None:
    wait = tenacity.wait_exception(lambda exc: 4.0 if isinstance(exc, httpx.ConnectError) else 9)
    client, _, _ = make(clock, [httpx.ConnectError("x"), httpx.ReadTimeout("y"), 200], wait=wait)
    async with client:
        await client.get(URL)
    assert clock.sleeps == [4.0, 9.0]


async def test_retries_are_reported_to_listeners(clock: FakeClock) -> None:
    events: list[Event] = []
    client, _, _ = make(clock, [503, httpx.ConnectError("x"), 200], listeners=[events.append])
    async with client:
        await client.get(URL)
    retries = [e for e in events if isinstance(e, RetryScheduled)]
    assert [(e.attempt, e.wait, e.reason) for e in retries] == [
        (1, 1.0, "status 503"),
        (2, 1.0, "ConnectError"),
    ]
    assert all(e.host == "api.example.com:443" and e.method == "GET" for e in retries)


# -- Retry-After -----------------------------------------------------------------------------


async def test_retry_after_seconds_replaces_the_backoff(clock: FakeClock) -> None:
    client, _, upstream = make(clock, [(503, {"Retry-After": "7"}), 200])
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert clock.sleeps == [7.0]
    assert upstream.calls == 2


async def test_retry_after_http_date_is_honoured(clock: FakeClock) -> None:
    client, _, _ = make(clock, [(503, {"Retry-After": http_date(30)}), 200])
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    [slept] = clock.sleeps
    assert 28.0 <= slept <= 30.0


async def test_retry_after_in_the_past_retries_at_once(clock: FakeClock) -> None:
    client, _, upstream = make(
        clock,
        [(503, {"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}), 200],
        wait=tenacity.wait_fixed(5),
    )
    async with client:
        await client.get(URL)
    assert upstream.calls == 2
    assert clock.sleeps == []


async def test_429_retry_after_is_honoured(clock: FakeClock) -> None:
    client, _, _ = make(clock, [(429, {"Retry-After": "3"}), 200])
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert clock.sleeps == [3.0]


async def test_retry_after_at_the_cap_is_honoured(clock: FakeClock) -> None:
    client, _, _ = make(clock, [(503, {"Retry-After": "60"}), 200])
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert clock.sleeps == [60.0]


@pytest.mark.parametrize("value", ["61", "86400", "99999999999", "http-date"])
async def test_retry_after_beyond_the_cap_ends_retries_and_returns_that_response(
    clock: FakeClock, value: str
) -> None:
    if value == "http-date":
        value = http_date(3600)
    client, _, upstream = make(clock, [(503, {"Retry-After": value}), 200])
    async with client:
        response = await client.get(URL)
        assert response.status_code == 503
        assert response.headers["retry-after"] == value
        assert response.text == "attempt 1: 503"  # readable in full
    assert upstream.calls == 1
    assert clock.sleeps == []


async def test_max_retry_after_is_configurable(clock: FakeClock) -> None:
    client, _, upstream = make(clock, [(503, {"Retry-After": "6"}), 200], max_retry_after=5)
    async with client:
        response = await client.get(URL)
    assert response.status_code == 503
    assert upstream.calls == 1


@pytest.mark.parametrize("value", ["soon", "-3", "1.5", "", "Wed, 99 Oct 2015 07:28:00 GMT"])
async def test_malformed_retry_after_falls_back_to_normal_backoff(
    clock: FakeClock, value: str
) -> None:
    client, _, upstream = make(
        clock, [(503, {"Retry-After": value}), 200], wait=tenacity.wait_fixed(2)
    )
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert upstream.calls == 2
    assert clock.sleeps == [2.0]


async def test_retry_after_can_be_ignored(clock: FakeClock) -> None:
    client, _, _ = make(
        clock,
        [(503, {"Retry-After": "600"}), 200],
        wait=tenacity.wait_fixed(2),
        respect_retry_after=False,
    )
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert clock.sleeps == [2.0]


# -- the breaker inside the loop -------------------------------------------------------------


async def test_circuit_opening_mid_loop_stops_at_once_with_a_readable_response(
    clock: FakeClock,
) -> None:
    client, transport, upstream = make(clock, [503], threshold=2, attempts=5)
    async with client:
        response = await client.get(URL)
        assert response.status_code == 503
        assert response.text == "attempt 2: 503"  # the last real outcome, read in full
    assert upstream.calls == 2  # not 5
    assert clock.sleeps == [1.0]  # no backoff slept once the circuit was open
    assert transport.breaker(URL).state is CircuitState.OPEN


async def test_circuit_opening_mid_loop_on_errors_raises_the_last_error(clock: FakeClock) -> None:
    client, transport, upstream = make(
        clock, [httpx.ConnectError("first"), httpx.ConnectError("second")], threshold=2, attempts=5
    )
    async with client:
        with pytest.raises(httpx.ConnectError, match="second"):
            await client.get(URL)
    assert upstream.calls == 2
    assert clock.sleeps == [1.0]
    assert transport.breaker(URL).state is CircuitState.OPEN


async def test_circuit_opened_during_the_backoff_sleep_stops_before_the_retry(
    clock: FakeClock,
) -> None:
    """Other calls trip the breaker while this one sleeps: the retry is not sent,
    and the response kept from the last attempt is still readable in full."""
    transport_box: list[ResilientTransport] = []

    async def sleep(seconds: float) -> None:
        await clock.sleep(seconds)
        transport_box[0].breaker(URL).force_open()

    client, transport, upstream = make(clock, [503, 200], sleep=sleep)
    transport_box.append(transport)
    async with client:
        response = await client.get(URL)
        assert response.status_code == 503
        body = await response.aread()
    assert body == b"attempt 1: 503"
    assert upstream.calls == 1
    assert upstream.streams[0].closed  # its connection went back to the pool before the sleep


async def test_open_circuit_rejects_before_the_first_attempt_not_inside_the_loop(
    clock: FakeClock,
) -> None:
    client, _, upstream = make(clock, [503], threshold=1)
    async with client:
        first = await client.get(URL)
        assert first.status_code == 503
        with pytest.raises(httpx.TransportError, match="circuit open"):
            await client.get(URL)
    assert upstream.calls == 1
    assert clock.sleeps == []


async def test_each_retry_is_admitted_by_the_breaker(clock: FakeClock) -> None:
    """Retries count toward the threshold: each attempt goes through the breaker."""
    client, transport, _ = make(clock, [503, 503, 200], threshold=3)
    async with client:
        await client.get(URL)
    assert transport.breaker(URL).failure_count == 0  # the final 200 reset two failures
    client, transport, _ = make(clock, [503, 503, 404], threshold=3)
    async with client:
        await client.get(URL)
    assert transport.breaker(URL).failure_count == 0


# -- discarded responses are closed -----------------------------------------------------------


async def test_every_discarded_response_is_closed(clock: FakeClock) -> None:
    client, _, upstream = make(clock, [503, 502, 504, 200], attempts=4)
    async with client:
        async with client.stream("GET", URL) as response:
            assert response.status_code == 200
            discarded, final = upstream.streams[:-1], upstream.streams[-1]
            assert len(discarded) == 3
            assert all(s.closed for s in discarded)
            assert not final.read  # handed over untouched
            assert not final.closed
            assert await response.aread() == b"attempt 4: 200"
        assert final.closed


async def test_the_final_retryable_response_is_handed_over_open_and_unread(
    clock: FakeClock,
) -> None:
    client, _, upstream = make(clock, [503], attempts=3)
    async with client:
        async with client.stream("GET", URL) as response:
            assert [s.closed for s in upstream.streams] == [True, True, False]
            assert not upstream.streams[-1].read
            assert await response.aread() == b"attempt 3: 503"
    assert all(s.closed for s in upstream.streams)


async def test_response_ending_retries_by_retry_after_is_not_closed_early(
    clock: FakeClock,
) -> None:
    client, _, upstream = make(clock, [(503, {"Retry-After": "3600"})])
    async with client:
        async with client.stream("GET", URL) as response:
            assert not upstream.streams[0].closed
            assert await response.aread() == b"attempt 1: 503"
    assert upstream.streams[0].closed


async def test_calls_sleeping_in_backoff_wake_when_the_circuit_opens() -> None:
    """README: never sleep while the circuit is open. Four calls get a 503 with
    ``Retry-After: 5``; the fourth failure opens the circuit, and every call
    asleep in its backoff ends at once with its own 503, retrying nothing."""
    hits = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal hits
        hits += 1
        return httpx.Response(503, headers={"Retry-After": "5"}, text="sick")

    transport = ResilientTransport(
        httpx.MockTransport(handler),
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=4),
            retry=RetryPolicy(attempts=3, budget=None),
        ),
    )
    statuses: list[int] = []
    async with httpx.AsyncClient(transport=transport) as client:

        async def one() -> None:
            response = await client.get("https://api.example.com/")
            statuses.append(response.status_code)
            assert response.text == "sick"

        started = anyio.current_time()
        with anyio.fail_after(3):
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(one)
        assert anyio.current_time() - started < 1.0
    assert statuses == [503] * 4
    assert hits == 4


# -- the plan of one call's retries (sans-IO) -----------------------------------------


def plan(clock: FakeClock, budget: RetryBudget | None = None, **retry: Any) -> RetryPlan:
    policy = RetryPolicy(wait=tenacity.wait_fixed(1), budget=budget, **retry)
    state = BudgetState(budget) if budget is not None else None
    return RetryPlan(policy, clock, clock(), state)


def test_the_plan_stops_when_the_attempts_are_used_up(clock: FakeClock) -> None:
    retries = plan(clock, attempts=3)
    assert retries.wait_for(None, httpx.ReadTimeout("slow")) == 1.0
    retries.next_attempt(1.0)
    assert retries.wait_for(None, httpx.ReadTimeout("slow")) == 1.0
    retries.next_attempt(1.0)
    assert retries.attempt == 3
    assert retries.wait_for(None, httpx.ReadTimeout("slow")) is None


def test_the_plan_honours_retry_after_up_to_its_maximum(clock: FakeClock) -> None:
    retries = plan(clock, max_retry_after=10)
    assert retries.wait_for(httpx.Response(503, headers={"Retry-After": "7"}), None) == 7.0
    assert retries.wait_for(httpx.Response(503, headers={"Retry-After": "11"}), None) is None
    assert retries.wait_for(httpx.Response(503, headers={"Retry-After": "soon"}), None) == 1.0
    ignoring = plan(clock, respect_retry_after=False)
    assert ignoring.wait_for(httpx.Response(503, headers={"Retry-After": "7"}), None) == 1.0


def test_the_plan_never_waits_across_the_deadline(clock: FakeClock) -> None:
    retries = plan(clock, deadline=2.0)
    assert retries.wait_for(httpx.Response(503), None) == 1.0
    assert retries.may_retry(1.0)
    clock.advance(1.0)  # reading the discarded body took a second: exactly the deadline
    assert not retries.may_retry(1.0)
    assert retries.has_time()
    clock.advance(1.0)
    assert not retries.has_time()
    assert retries.wait_for(httpx.Response(503), None) is None


def test_the_plan_takes_a_budget_token_per_retry(clock: FakeClock) -> None:
    retries = plan(clock, RetryBudget(ratio=0.0, min_per_second=0.2, window=10))  # 2 tokens
    assert retries.may_retry(0.0)
    assert retries.may_retry(0.0)
    assert not retries.may_retry(0.0)
    assert plan(clock).may_retry(0.0)  # no budget: never short of tokens


# -- each place the retry loop consults the breaker, pinned on its own --------------------


class _Opens(httpx.AsyncByteStream):
    """A 503 body that opens the host's circuit while it is read for a retry."""

    def __init__(self, transport: ResilientTransport) -> None:
        self.transport = transport

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"sick"
        self.transport.breaker(URL).force_open()  # another call's failure, say


def _guarded(
    clock: FakeClock, handler: Callable[[httpx.Request], httpx.Response], **kw: Any
) -> tuple[ResilientTransport, list[Event]]:
    events: list[Event] = []
    transport = ResilientTransport(
        httpx.MockTransport(handler),
        policy=Policy(retry=RetryPolicy(attempts=3, wait=tenacity.wait_fixed(1))),
        listeners=[events.append],
        clock=clock,
        sleep=clock.sleep,
        **kw,
    )
    return transport, events


async def test_a_circuit_opened_during_the_attempt_plans_no_retry(clock: FakeClock) -> None:
    """Consulted before planning: no wait computed, no budget token, no event, no sleep."""
    transport: ResilientTransport

    def handler(request: httpx.Request) -> httpx.Response:
        transport.breaker(URL).force_open()
        return httpx.Response(503, text="sick")

    transport, events = _guarded(clock, handler)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(URL)
    assert (response.status_code, response.text) == (503, "sick")
    assert clock.sleeps == []
    assert not any(isinstance(e, RetryScheduled) for e in events)
    budget = transport._hosts[transport.breaker(URL).key].budget
    assert budget is not None
    assert budget.retries == 0  # no token taken for a retry that cannot happen


async def test_a_circuit_opened_while_the_discarded_body_is_read_sleeps_nothing(
    clock: FakeClock,
) -> None:
    """Consulted before the sleep: no event, no sleep, the last response readable."""
    transport: ResilientTransport

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, stream=_Opens(transport))

    transport, events = _guarded(clock, handler)
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(URL)
    assert (response.status_code, response.text) == (503, "sick")
    assert clock.sleeps == []
    assert not any(isinstance(e, RetryScheduled) for e in events)


async def test_a_circuit_opened_after_the_retry_was_announced_sends_nothing(
    clock: FakeClock,
) -> None:
    """Consulted before the retry (with no wait to cut short): nothing sent."""
    hits = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal hits
        hits += 1
        return httpx.Response(503, text="sick")

    transport: ResilientTransport

    def open_on_retry(event: Event) -> None:
        if isinstance(event, RetryScheduled):
            transport.breaker(URL).force_open()

    transport = ResilientTransport(
        httpx.MockTransport(handler),
        policy=Policy(retry=RetryPolicy(attempts=3, wait=tenacity.wait_none())),
        listeners=[open_on_retry],
        clock=clock,
        sleep=clock.sleep,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        response = await client.get(URL)
    assert (response.status_code, response.text, hits) == (503, "sick", 1)
