"""Retries on every binding: which requests are retried, tenacity waits on the
FakeClock, ``Retry-After``, the breaker consulted inside the loop, and every
discarded response closed.

The upstream hands out responses whose bodies are fresh, unread streams of the
binding's own kind (sync or async, httpx or httpx2), the way a real connection
pool does, and records whether each was read and closed.
"""

from __future__ import annotations

import email.utils
import functools
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import pytest
import tenacity

from resilient_http import (
    BreakerPolicy,
    CircuitState,
    Event,
    Policy,
    RetryPolicy,
    RetryScheduled,
)
from resilient_http.testing import FakeClock

from ..bindings import Binding

URL = "https://api.example.com/items?page=1"

# One scripted upstream answer: a status, a (status, headers) pair, or an exception.
Answer = int | tuple[int, dict[str, str]] | Exception


@functools.cache
def _stream_kind(http: Any, sync: bool, behaviour: type) -> type:
    """``behaviour`` as a byte stream of one binding's kind: its library's
    ``SyncByteStream`` or ``AsyncByteStream``, so the transport and the
    response treat it exactly as they would a connection pool's."""
    base = http.SyncByteStream if sync else http.AsyncByteStream
    return type(behaviour.__name__, (behaviour, base), {})


def stream_of(binding: Binding, behaviour: type, *args: Any) -> Any:
    return _stream_kind(binding.http, binding.sync, behaviour)(*args)


class TrackedStream:
    """A response body that records whether it was read and closed."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.read = False
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        self.read = True
        yield self.body

    def close(self) -> None:
        self.closed = True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.read = True
        yield self.body

    async def aclose(self) -> None:
        self.closed = True


class Upstream:
    """A MockTransport whose responses carry fresh, unread, tracked streams, the
    way a real connection pool hands them out. The last answer repeats.
    ``transport`` is the inner transport for the binding."""

    def __init__(self, binding: Binding, answers: Sequence[Answer]) -> None:
        self.binding = binding
        self.answers = list(answers)
        self.requests: list[Any] = []
        self.bodies: list[bytes] = []
        self.streams: list[TrackedStream] = []
        self.mock = binding.mock(self.handle)  # reads the request body first
        self.transport = _inner_transport(binding, self)

    def handle(self, request: Any) -> Any:
        n = len(self.requests)
        self.requests.append(request)
        self.bodies.append(request.content)
        answer = self.answers[min(n, len(self.answers) - 1)]
        if isinstance(answer, Exception):
            raise answer
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return self.binding.response(status, headers=headers, text=f"attempt {n + 1}: {status}")

    def tracked(self, request: Any, mocked: Any) -> Any:
        stream = stream_of(self.binding, TrackedStream, mocked.content)
        self.streams.append(stream)
        return self.binding.response(
            mocked.status_code, headers=mocked.headers, stream=stream, request=request
        )

    @property
    def calls(self) -> int:
        return len(self.requests)


def _inner_transport(binding: Binding, upstream: Upstream) -> Any:
    base = binding.http.BaseTransport if binding.sync else binding.http.AsyncBaseTransport

    class Inner(base):  # type: ignore[misc,valid-type]
        def handle_request(self, request: Any) -> Any:
            return upstream.tracked(request, upstream.mock.handle_request(request))

        async def handle_async_request(self, request: Any) -> Any:
            return upstream.tracked(request, await upstream.mock.handle_async_request(request))

    return Inner()


def make(
    binding: Binding,
    clock: FakeClock,
    answers: Sequence[Answer],
    *,
    threshold: int = 100,
    listeners: Sequence[Callable[[Event], object]] = (),
    sleep: Callable[[float], Any] | None = None,
    **retry: Any,
) -> tuple[Any, Any, Upstream]:
    """A client over a resilient transport over ``Upstream(answers)``."""
    retry.setdefault("wait", tenacity.wait_fixed(1))
    retry.setdefault("budget", None)
    upstream = Upstream(binding, answers)
    transport = binding.transport(
        upstream.transport,
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=threshold), retry=RetryPolicy(**retry)
        ),
        listeners=listeners,
        clock=clock,
        sleep=sleep if sleep is not None else clock.sleep,
    )
    return binding.client(transport), transport, upstream


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# -- which requests are retried ---------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"])
async def test_idempotent_methods_are_retried(
    binding: Binding, clock: FakeClock, method: str
) -> None:
    client, _, upstream = make(binding, clock, [503, 503, 200])
    async with client:
        response = await client.request(method, URL, content=b"same body")
    assert response.status_code == 200
    assert upstream.calls == 3
    assert upstream.bodies == [b"same body"] * 3  # replayed intact


@pytest.mark.parametrize("method", ["POST", "PATCH", "CONNECT"])
async def test_non_idempotent_methods_are_never_retried(
    binding: Binding, clock: FakeClock, method: str
) -> None:
    client, _, upstream = make(binding, clock, [503, 200])
    async with client:
        response = await client.request(method, URL, content=b"charge")
    assert response.status_code == 503
    assert upstream.calls == 1
    assert clock.sleeps == []


async def test_post_is_not_retried_after_a_network_error(
    binding: Binding, clock: FakeClock
) -> None:
    http = binding.http
    client, _, upstream = make(binding, clock, [http.ConnectError("refused"), 200])
    async with client:
        with pytest.raises(http.ConnectError):
            await client.post(URL, json={"amount": 10})
    assert upstream.calls == 1


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_any_method_with_an_idempotency_key_is_retried(
    binding: Binding, clock: FakeClock, method: str
) -> None:
    client, _, upstream = make(binding, clock, [503, binding.http.ConnectError("refused"), 201])
    async with client:
        response = await client.request(
            method, URL, content=b"charge", headers={"Idempotency-Key": "k-1"}
        )
    assert response.status_code == 201
    assert upstream.calls == 3
    assert upstream.bodies == [b"charge"] * 3
    assert all(r.headers["idempotency-key"] == "k-1" for r in upstream.requests)


def streamed_body(binding: Binding, chunks: Sequence[bytes], produced: list[bytes]) -> Any:
    """A request body that can be read once: a generator of the kind the
    binding's client streams (a sync one for ``httpx.Client``)."""
    if binding.sync:

        def sync_body() -> Iterator[bytes]:
            for chunk in chunks:
                produced.append(chunk)
                yield chunk

        return sync_body()

    async def async_body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            produced.append(chunk)
            yield chunk

    return async_body()


@pytest.mark.parametrize(
    ("method", "headers"), [("PUT", {}), ("GET", {}), ("POST", {"Idempotency-Key": "k-2"})]
)
async def test_a_streamed_body_that_cannot_be_replayed_is_never_retried(
    binding: Binding, clock: FakeClock, method: str, headers: dict[str, str]
) -> None:
    produced: list[bytes] = []
    body = streamed_body(binding, [b"part-1 ", b"part-2"], produced)
    client, _, upstream = make(binding, clock, [503, 200])
    async with client:
        response = await client.request(method, URL, content=body, headers=headers)
    assert response.status_code == 503
    assert upstream.calls == 1
    assert upstream.bodies == [b"part-1 part-2"]
    assert produced == [b"part-1 ", b"part-2"]
    assert clock.sleeps == []


async def test_a_streamed_body_is_not_retried_after_a_network_error(
    binding: Binding, clock: FakeClock
) -> None:
    http = binding.http
    body = streamed_body(binding, [b"upload"], [])
    client, _, upstream = make(binding, clock, [http.ReadError("reset"), 200])
    async with client:
        with pytest.raises(http.ReadError):
            await client.put(URL, content=body)
    assert upstream.calls == 1


async def test_attempts_1_disables_retries(binding: Binding, clock: FakeClock) -> None:
    client, _, upstream = make(binding, clock, [503, 200], attempts=1)
    async with client:
        response = await client.get(URL)
    assert response.status_code == 503
    assert upstream.calls == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("attempts", [2, 3, 5])
async def test_attempts_counts_the_first_try(
    binding: Binding, clock: FakeClock, attempts: int
) -> None:
    client, _, upstream = make(binding, clock, [503], attempts=attempts)
    async with client:
        response = await client.get(URL)
    assert response.status_code == 503
    assert upstream.calls == attempts
    assert response.text == f"attempt {attempts}: 503"  # the last real outcome


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("ConnectError", "refused"),
        ("ConnectTimeout", "slow connect"),
        ("ReadTimeout", "slow read"),
        ("ReadError", "reset"),
        ("RemoteProtocolError", "bad framing"),
    ],
)
async def test_network_timeout_and_protocol_errors_are_retried(
    binding: Binding, clock: FakeClock, error: str, message: str
) -> None:
    client, _, upstream = make(binding, clock, [getattr(binding.http, error)(message), 200])
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert upstream.calls == 2


async def test_last_error_is_raised_when_attempts_run_out(
    binding: Binding, clock: FakeClock
) -> None:
    http = binding.http
    client, _, upstream = make(
        binding,
        clock,
        [http.ConnectError("first"), http.ReadTimeout("second"), http.ConnectError("3")],
    )
    async with client:
        with pytest.raises(http.ConnectError, match="3"):
            await client.get(URL)
    assert upstream.calls == 3


async def test_caller_errors_are_not_retried(binding: Binding, clock: FakeClock) -> None:
    http = binding.http
    client, transport, upstream = make(binding, clock, [http.UnsupportedProtocol("no"), 200])
    async with client:
        with pytest.raises(http.UnsupportedProtocol):
            await client.get(URL)
    assert upstream.calls == 1
    assert transport.breaker(URL).failure_count == 0


async def test_429_is_retried_but_is_not_a_breaker_failure(
    binding: Binding, clock: FakeClock
) -> None:
    client, transport, upstream = make(binding, clock, [429], threshold=1, attempts=4)
    async with client:
        response = await client.get(URL)
    assert response.status_code == 429
    assert upstream.calls == 4
    breaker = transport.breaker(URL)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0


async def test_500_counts_as_a_failure_but_is_not_retried_by_default(
    binding: Binding, clock: FakeClock
) -> None:
    client, transport, upstream = make(binding, clock, [500, 200], threshold=2)
    async with client:
        response = await client.get(URL)
    assert response.status_code == 500
    assert upstream.calls == 1
    assert transport.breaker(URL).failure_count == 1


async def test_retry_statuses_are_configurable(binding: Binding, clock: FakeClock) -> None:
    client, _, upstream = make(binding, clock, [500, 500, 200], statuses={500})
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert upstream.calls == 3


@pytest.mark.parametrize("status", [400, 404, 409, 501])
async def test_statuses_outside_the_retry_set_are_returned_at_once(
    binding: Binding, clock: FakeClock, status: int
) -> None:
    client, _, upstream = make(binding, clock, [status, 200])
    async with client:
        response = await client.get(URL)
    assert response.status_code == status
    assert upstream.calls == 1


# -- tenacity wait strategies on the FakeClock ---------------------------------------------


async def test_wait_none_retries_without_sleeping(binding: Binding, clock: FakeClock) -> None:
    client, _, upstream = make(binding, clock, [503, 503, 200], wait=tenacity.wait_none())
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert upstream.calls == 3
    assert clock.sleeps == []


async def test_wait_fixed_sleeps_between_attempts(binding: Binding, clock: FakeClock) -> None:
    client, _, upstream = make(binding, clock, [503], wait=tenacity.wait_fixed(2.5), attempts=4)
    async with client:
        await client.get(URL)
    assert upstream.calls == 4
    assert clock.sleeps == [2.5, 2.5, 2.5]
    assert clock() == 7.5


async def test_wait_exponential_sees_the_attempt_number(binding: Binding, clock: FakeClock) -> None:
    client, _, _ = make(
        binding, clock, [503], wait=tenacity.wait_exponential(multiplier=1, max=100), attempts=5
    )
    async with client:
        await client.get(URL)
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]


async def test_wait_exponential_jitter_stays_in_its_bounds(
    binding: Binding, clock: FakeClock
) -> None:
    client, _, _ = make(
        binding,
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


async def test_composed_and_chained_waits(binding: Binding, clock: FakeClock) -> None:
    chain = tenacity.wait_chain(tenacity.wait_fixed(1), tenacity.wait_fixed(5))
    wait = chain + tenacity.wait_fixed(0.5)
    client, _, _ = make(binding, clock, [503], wait=wait, attempts=4)
    async with client:
        await client.get(URL)
    assert clock.sleeps == [1.5, 5.5, 5.5]


async def test_a_custom_wait_sees_the_outcome_and_elapsed_time(
    binding: Binding, clock: FakeClock
) -> None:
    seen: list[tuple[int, bool, float]] = []

    def wait(state: tenacity.RetryCallState) -> float:
        assert state.outcome is not None
        seen.append((state.attempt_number, state.outcome.failed, state.seconds_since_start or 0.0))
        return 3.0 if state.outcome.failed else 1.0

    client, _, _ = make(binding, clock, [binding.http.ConnectError("x"), 503, 200], wait=wait)
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert seen == [(1, True, 0.0), (2, False, 3.0)]
    assert clock.sleeps == [3.0, 1.0]


async def test_wait_exception_strategy_for_network_errors(
    binding: Binding, clock: FakeClock
) -> None:
    http = binding.http
    wait = tenacity.wait_exception(lambda exc: 4.0 if isinstance(exc, http.ConnectError) else 9)
    client, _, _ = make(
        binding, clock, [http.ConnectError("x"), http.ReadTimeout("y"), 200], wait=wait
    )
    async with client:
        await client.get(URL)
    assert clock.sleeps == [4.0, 9.0]


async def test_retries_are_reported_to_listeners(binding: Binding, clock: FakeClock) -> None:
    events: list[Event] = []
    client, _, _ = make(
        binding,
        clock,
        [503, binding.http.ConnectError("x"), 200],
        listeners=[events.append],
    )
    async with client:
        await client.get(URL)
    retries = [e for e in events if isinstance(e, RetryScheduled)]
    assert [(e.attempt, e.wait, e.reason) for e in retries] == [
        (1, 1.0, "status 503"),
        (2, 1.0, "ConnectError"),
    ]
    assert all(e.host == "api.example.com:443" and e.method == "GET" for e in retries)


# -- Retry-After -----------------------------------------------------------------------------


async def test_retry_after_seconds_replaces_the_backoff(binding: Binding, clock: FakeClock) -> None:
    client, _, upstream = make(binding, clock, [(503, {"Retry-After": "7"}), 200])
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert clock.sleeps == [7.0]
    assert upstream.calls == 2


async def test_retry_after_http_date_is_honoured(binding: Binding, clock: FakeClock) -> None:
    client, _, _ = make(binding, clock, [(503, {"Retry-After": http_date(30)}), 200])
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    [slept] = clock.sleeps
    assert 28.0 <= slept <= 30.0


async def test_retry_after_in_the_past_retries_at_once(binding: Binding, clock: FakeClock) -> None:
    client, _, upstream = make(
        binding,
        clock,
        [(503, {"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}), 200],
        wait=tenacity.wait_fixed(5),
    )
    async with client:
        await client.get(URL)
    assert upstream.calls == 2
    assert clock.sleeps == []


async def test_429_retry_after_is_honoured(binding: Binding, clock: FakeClock) -> None:
    client, _, _ = make(binding, clock, [(429, {"Retry-After": "3"}), 200])
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert clock.sleeps == [3.0]


async def test_retry_after_at_the_cap_is_honoured(binding: Binding, clock: FakeClock) -> None:
    client, _, _ = make(binding, clock, [(503, {"Retry-After": "60"}), 200])
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert clock.sleeps == [60.0]


@pytest.mark.parametrize("value", ["61", "86400", "99999999999", "http-date"])
async def test_retry_after_beyond_the_cap_ends_retries_and_returns_that_response(
    binding: Binding, clock: FakeClock, value: str
) -> None:
    if value == "http-date":
        value = http_date(3600)
    client, _, upstream = make(binding, clock, [(503, {"Retry-After": value}), 200])
    async with client:
        response = await client.get(URL)
        assert response.status_code == 503
        assert response.headers["retry-after"] == value
        assert response.text == "attempt 1: 503"  # readable in full
    assert upstream.calls == 1
    assert clock.sleeps == []


async def test_max_retry_after_is_configurable(binding: Binding, clock: FakeClock) -> None:
    client, _, upstream = make(
        binding, clock, [(503, {"Retry-After": "6"}), 200], max_retry_after=5
    )
    async with client:
        response = await client.get(URL)
    assert response.status_code == 503
    assert upstream.calls == 1


@pytest.mark.parametrize("value", ["soon", "-3", "1.5", "", "Wed, 99 Oct 2015 07:28:00 GMT"])
async def test_malformed_retry_after_falls_back_to_normal_backoff(
    binding: Binding, clock: FakeClock, value: str
) -> None:
    client, _, upstream = make(
        binding, clock, [(503, {"Retry-After": value}), 200], wait=tenacity.wait_fixed(2)
    )
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert upstream.calls == 2
    assert clock.sleeps == [2.0]


async def test_retry_after_can_be_ignored(binding: Binding, clock: FakeClock) -> None:
    client, _, _ = make(
        binding,
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
    binding: Binding, clock: FakeClock
) -> None:
    client, transport, upstream = make(binding, clock, [503], threshold=2, attempts=5)
    async with client:
        response = await client.get(URL)
        assert response.status_code == 503
        assert response.text == "attempt 2: 503"  # the last real outcome, read in full
    assert upstream.calls == 2  # not 5
    assert clock.sleeps == [1.0]  # no backoff slept once the circuit was open
    assert transport.breaker(URL).state is CircuitState.OPEN


async def test_circuit_opening_mid_loop_on_errors_raises_the_last_error(
    binding: Binding, clock: FakeClock
) -> None:
    http = binding.http
    client, transport, upstream = make(
        binding,
        clock,
        [http.ConnectError("first"), http.ConnectError("second")],
        threshold=2,
        attempts=5,
    )
    async with client:
        with pytest.raises(http.ConnectError, match="second"):
            await client.get(URL)
    assert upstream.calls == 2
    assert clock.sleeps == [1.0]
    assert transport.breaker(URL).state is CircuitState.OPEN


async def test_circuit_opened_during_the_backoff_sleep_stops_before_the_retry(
    binding: Binding, clock: FakeClock
) -> None:
    """Other calls trip the breaker while this one sleeps: the retry is not sent,
    and the response kept from the last attempt is still readable in full."""
    transport_box: list[Any] = []
    sleep: Callable[[float], Any]

    if binding.sync:

        def sync_sleep(seconds: float) -> None:
            clock.sleep(seconds)
            transport_box[0].breaker(URL).force_open()

        sleep = sync_sleep

    else:

        async def async_sleep(seconds: float) -> None:
            await clock.sleep(seconds)
            transport_box[0].breaker(URL).force_open()

        sleep = async_sleep

    client, transport, upstream = make(binding, clock, [503, 200], sleep=sleep)
    transport_box.append(transport)
    async with client:
        response = await client.get(URL)
        assert response.status_code == 503
        body = await response.aread()
    assert body == b"attempt 1: 503"
    assert upstream.calls == 1
    assert upstream.streams[0].closed  # its connection went back to the pool before the sleep


async def test_open_circuit_rejects_before_the_first_attempt_not_inside_the_loop(
    binding: Binding, clock: FakeClock
) -> None:
    client, _, upstream = make(binding, clock, [503], threshold=1)
    async with client:
        first = await client.get(URL)
        assert first.status_code == 503
        with pytest.raises(binding.http.TransportError, match="circuit open"):
            await client.get(URL)
    assert upstream.calls == 1
    assert clock.sleeps == []


async def test_each_retry_is_admitted_by_the_breaker(binding: Binding, clock: FakeClock) -> None:
    """Retries count toward the threshold: each attempt goes through the breaker."""
    client, transport, _ = make(binding, clock, [503, 503, 200], threshold=3)
    async with client:
        await client.get(URL)
    assert transport.breaker(URL).failure_count == 0  # the final 200 reset two failures
    client, transport, _ = make(binding, clock, [503, 503, 404], threshold=3)
    async with client:
        await client.get(URL)
    assert transport.breaker(URL).failure_count == 0


# -- discarded responses are closed -----------------------------------------------------------


async def test_every_discarded_response_is_closed(binding: Binding, clock: FakeClock) -> None:
    client, _, upstream = make(binding, clock, [503, 502, 504, 200], attempts=4)
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
    binding: Binding, clock: FakeClock
) -> None:
    client, _, upstream = make(binding, clock, [503], attempts=3)
    async with client:
        async with client.stream("GET", URL) as response:
            assert [s.closed for s in upstream.streams] == [True, True, False]
            assert not upstream.streams[-1].read
            assert await response.aread() == b"attempt 3: 503"
    assert all(s.closed for s in upstream.streams)


async def test_response_ending_retries_by_retry_after_is_not_closed_early(
    binding: Binding, clock: FakeClock
) -> None:
    client, _, upstream = make(binding, clock, [(503, {"Retry-After": "3600"})])
    async with client:
        async with client.stream("GET", URL) as response:
            assert not upstream.streams[0].closed
            assert await response.aread() == b"attempt 1: 503"
    assert upstream.streams[0].closed


# -- each place the retry loop consults the breaker, pinned on its own --------------------


class Opens:
    """A 503 body that opens the host's circuit while it is read for a retry."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def __iter__(self) -> Iterator[bytes]:
        yield b"sick"
        self.transport.breaker(URL).force_open()  # another call's failure, say

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"sick"
        self.transport.breaker(URL).force_open()  # another call's failure, say


def guarded(
    binding: Binding, clock: FakeClock, handler: Callable[[Any], Any], **kw: Any
) -> tuple[Any, list[Event]]:
    events: list[Event] = []
    transport = binding.transport(
        binding.mock(handler),
        policy=Policy(retry=RetryPolicy(attempts=3, wait=tenacity.wait_fixed(1))),
        listeners=[events.append],
        clock=clock,
        sleep=clock.sleep,
        **kw,
    )
    return transport, events


async def test_a_circuit_opened_during_the_attempt_plans_no_retry(
    binding: Binding, clock: FakeClock
) -> None:
    """Consulted before planning: no wait computed, no budget token, no event, no sleep."""
    transport: Any

    def handler(request: Any) -> Any:
        transport.breaker(URL).force_open()
        return binding.response(503, text="sick")

    transport, events = guarded(binding, clock, handler)
    async with binding.client(transport) as client:
        response = await client.get(URL)
    assert (response.status_code, response.text) == (503, "sick")
    assert clock.sleeps == []
    assert not any(isinstance(e, RetryScheduled) for e in events)
    budget = transport._registry.get(transport.breaker(URL).key).budget
    assert budget is not None
    assert budget.retries == 0  # no token taken for a retry that cannot happen


async def test_a_circuit_opened_while_the_discarded_body_is_read_sleeps_nothing(
    binding: Binding, clock: FakeClock
) -> None:
    """Consulted before the sleep: no event, no sleep, the last response readable."""
    transport: Any

    def handler(request: Any) -> Any:
        return binding.response(503, stream=stream_of(binding, Opens, transport))

    transport, events = guarded(binding, clock, handler)
    async with binding.client(transport) as client:
        response = await client.get(URL)
    assert (response.status_code, response.text) == (503, "sick")
    assert clock.sleeps == []
    assert not any(isinstance(e, RetryScheduled) for e in events)


async def test_a_circuit_opened_after_the_retry_was_announced_sends_nothing(
    binding: Binding, clock: FakeClock
) -> None:
    """Consulted before the retry (with no wait to cut short): nothing sent."""
    hits = 0

    def handler(request: Any) -> Any:
        nonlocal hits
        hits += 1
        return binding.response(503, text="sick")

    transport: Any

    def open_on_retry(event: Event) -> None:
        if isinstance(event, RetryScheduled):
            transport.breaker(URL).force_open()

    transport = binding.transport(
        binding.mock(handler),
        policy=Policy(retry=RetryPolicy(attempts=3, wait=tenacity.wait_none())),
        listeners=[open_on_retry],
        clock=clock,
        sleep=clock.sleep,
    )
    async with binding.client(transport) as client:
        response = await client.get(URL)
    assert (response.status_code, response.text, hits) == (503, "sick", 1)
