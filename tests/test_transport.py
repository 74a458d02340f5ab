"""ResilientTransport over MockTransport: classification, rejection, fallbacks,
caller errors, lifetime, the bounded breaker map, the body phase and logging."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
import httpx
import pytest
import tenacity

from resilient_http import (
    Breaker,
    BreakerPolicy,
    CallRejected,
    CircuitOpenError,
    CircuitState,
    Event,
    FallbackServed,
    Policy,
    RejectedError,
    ResilientClient,
    ResilientTransport,
    RetryPolicy,
    RetryScheduled,
    StateChanged,
    service_unavailable,
)
from resilient_http.testing import FakeClock

URL = "https://api.example.com/v1/items"
CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN

Handler = Callable[[httpx.Request], httpx.Response]


class Counting(httpx.AsyncBaseTransport):
    """Counts the requests that reach the upstream, and whether it was closed."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler or (lambda request: httpx.Response(200, text="fresh"))
        self.mock = httpx.MockTransport(self.handler)
        self.requests: list[httpx.Request] = []
        self.closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return await self.mock.handle_async_request(request)

    async def aclose(self) -> None:
        self.closed = True

    @property
    def calls(self) -> int:
        return len(self.requests)


def policy(threshold: int = 1, recovery: float = 30.0, **retry: Any) -> Policy:
    retry.setdefault("attempts", 1)
    retry.setdefault("wait", tenacity.wait_none())
    retry.setdefault("budget", None)
    return Policy(
        breaker=BreakerPolicy(failure_threshold=threshold, recovery_timeout=recovery),
        retry=RetryPolicy(**retry),
    )


def make(
    clock: FakeClock,
    handler: Handler | None = None,
    *,
    default: Policy | None = None,
    hosts: dict[str, Policy] | None = None,
    listeners: Sequence[Callable[[Event], object]] = (),
    max_hosts: int = 1024,
) -> tuple[httpx.AsyncClient, ResilientTransport, Counting]:
    upstream = Counting(handler)
    transport = ResilientTransport(
        upstream,
        policy=default if default is not None else policy(),
        hosts=hosts,
        listeners=listeners,
        max_hosts=max_hosts,
        clock=clock,
        sleep=clock.sleep,
    )
    return httpx.AsyncClient(transport=transport), transport, upstream


def raising(exc: Exception) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


def status(code: int) -> Handler:
    return lambda request: httpx.Response(code, text=f"status {code}")


def fail(breaker: Breaker, times: int = 1) -> None:
    """Record counted failures directly on the state machine."""
    for _ in range(times):
        ticket = breaker.admit()
        assert ticket is not None
        breaker.on_failure(ticket)


def trip(transport: ResilientTransport, url: str = URL) -> None:
    """Open the circuit for ``url``'s host (the recovery timer starts now)."""
    breaker = transport.breaker(url)
    fail(breaker, breaker.policy.failure_threshold)
    assert breaker.state is OPEN


# -- failure classification ------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        httpx.ConnectTimeout("connect timeout"),
        httpx.ReadTimeout("read timeout"),
        httpx.WriteTimeout("write timeout"),
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.WriteError("broken pipe"),
        httpx.CloseError("close"),
        httpx.RemoteProtocolError("peer closed"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_timeouts_network_and_protocol_errors_are_failures(
    clock: FakeClock, error: Exception
) -> None:
    client, transport, _ = make(clock, raising(error))
    async with client:
        with pytest.raises(type(error)):
            await client.post(URL)
    assert transport.breaker(URL).state is OPEN


@pytest.mark.parametrize("code", [500, 502, 503, 504, 599])
async def test_5xx_responses_are_failures(clock: FakeClock, code: int) -> None:
    client, transport, _ = make(clock, status(code))
    async with client:
        response = await client.post(URL)
    assert response.status_code == code
    assert response.text == f"status {code}"
    assert transport.breaker(URL).state is OPEN


@pytest.mark.parametrize("code", [200, 201, 204, 301, 304, 400, 401, 403, 404, 409, 429, 499])
async def test_other_statuses_are_not_failures(clock: FakeClock, code: int) -> None:
    client, transport, _ = make(clock, status(code), default=policy(threshold=2))
    async with client:
        fail(transport.breaker(URL))
        await client.post(URL)
    breaker = transport.breaker(URL)
    assert breaker.state is CLOSED
    assert breaker.failure_count == 0  # an answer from a live upstream resets the count


async def test_failure_statuses_are_configurable(clock: FakeClock) -> None:
    custom = Policy(
        breaker=BreakerPolicy(failure_threshold=1, failure_statuses={503, 429}),
        retry=RetryPolicy(attempts=1),
    )
    client, transport, upstream = make(clock, status(500), default=custom)
    async with client:
        await client.get(URL)
        assert transport.breaker(URL).state is CLOSED
        upstream.mock = httpx.MockTransport(status(429))
        await client.get(URL)
    assert transport.breaker(URL).state is OPEN


@pytest.mark.parametrize(
    "error",
    [
        httpx.UnsupportedProtocol("unsupported protocol"),
        httpx.LocalProtocolError("bad request framing"),
        httpx.InvalidURL("invalid url"),
        # our own pool is full (often of calls hung on another host): not this host's fault
        httpx.PoolTimeout("pool timeout"),
        ValueError("caller bug"),
        RuntimeError("caller bug"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_caller_errors_are_not_failures(clock: FakeClock, error: Exception) -> None:
    client, transport, _ = make(clock, raising(error), default=policy(threshold=2))
    breaker = transport.breaker(URL)
    fail(breaker)
    async with client:
        with pytest.raises(type(error)):
            await client.get(URL)
    assert breaker.state is CLOSED
    assert breaker.failure_count == 1  # neither a failure nor a success


async def test_caller_error_during_a_probe_gives_the_slot_back(clock: FakeClock) -> None:
    answers: list[Handler] = [raising(httpx.LocalProtocolError("bad")), status(200)]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)(request)

    client, transport, upstream = make(clock, handler)
    async with client:
        trip(transport)
        clock.advance(30)
        with pytest.raises(httpx.LocalProtocolError):
            await client.get(URL)
        assert transport.breaker(URL).state is HALF_OPEN
        response = await client.get(URL)  # the slot is free again: this probe goes through
    assert response.status_code == 200
    assert upstream.calls == 2
    assert transport.breaker(URL).state is CLOSED


class Hanging(httpx.AsyncBaseTransport):
    """The first ``hang`` requests never answer; later ones get 200."""

    def __init__(self, hang: int = 1) -> None:
        self.hang = hang
        self.calls = 0
        self.entered = anyio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls <= self.hang:
            self.entered.set()
            await anyio.sleep_forever()
        return httpx.Response(200)


async def cancel_once_inside(client: httpx.AsyncClient, upstream: Hanging) -> None:
    async with anyio.create_task_group() as tg:
        tg.start_soon(client.get, URL)
        await upstream.entered.wait()
        tg.cancel_scope.cancel()


async def test_cancellation_is_neither_success_nor_failure(clock: FakeClock) -> None:
    upstream = Hanging()
    transport = ResilientTransport(upstream, policy=policy(threshold=2), clock=clock)
    breaker = transport.breaker(URL)
    fail(breaker)
    async with httpx.AsyncClient(transport=transport) as client:
        await cancel_once_inside(client, upstream)
        assert breaker.state is CLOSED
        assert breaker.failure_count == 1


async def test_cancelled_probe_gives_its_slot_back(clock: FakeClock) -> None:
    upstream = Hanging()
    transport = ResilientTransport(upstream, policy=policy(), clock=clock)
    async with httpx.AsyncClient(transport=transport) as client:
        trip(transport)
        clock.advance(30)
        await cancel_once_inside(client, upstream)
        breaker = transport.breaker(URL)
        assert breaker.state is HALF_OPEN
        assert breaker.probes_in_flight == 0
        response = await client.get(URL)
    assert response.status_code == 200
    assert breaker.state is CLOSED


async def test_half_open_lets_exactly_half_open_max_calls_of_50_concurrent_callers_through(
    clock: FakeClock,
) -> None:
    release = anyio.Event()
    reached = 0

    class Gate(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            nonlocal reached
            reached += 1
            await release.wait()
            return httpx.Response(200)

    probes = Policy(breaker=BreakerPolicy(failure_threshold=1, half_open_max_calls=3))
    transport = ResilientTransport(Gate(), policy=probes, clock=clock)
    outcomes: list[str] = []

    async def call(client: httpx.AsyncClient) -> None:
        try:
            await client.get(URL)
        except CircuitOpenError as exc:
            # half-open and busy: a probe may go as soon as a slot frees
            outcomes.append(f"rejected, retry after {exc.retry_after}")
        else:
            outcomes.append("ok")

    async with httpx.AsyncClient(transport=transport) as client:
        trip(transport)
        clock.advance(30)
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(call, client)
            await anyio.wait_all_tasks_blocked()
            assert reached == 3
            release.set()
    assert outcomes.count("ok") == 3
    assert outcomes.count("rejected, retry after 0.0") == 47
    assert transport.breaker(URL).state is CLOSED


# -- open circuit ------------------------------------------------------------------------------


async def test_open_circuit_rejects_without_touching_the_inner_transport(
    clock: FakeClock,
) -> None:
    client, _, upstream = make(clock, status(503))
    async with client:
        await client.get(URL)
        assert upstream.calls == 1
        for _ in range(20):
            with pytest.raises(CircuitOpenError):
                await client.get(URL)
    assert upstream.calls == 1


async def test_circuit_open_error_names_the_host_key_and_retry_after(clock: FakeClock) -> None:
    client, _, _ = make(clock, status(503), default=policy(recovery=30))
    secret_url = "https://alice:hunter2@API.example.com/v1/items?token=s3cret"
    async with client:
        await client.get(secret_url)
        clock.advance(10)
        with pytest.raises(CircuitOpenError) as info:
            await client.get(secret_url)
    error = info.value
    assert error.host == "api.example.com:443"
    assert error.retry_after == pytest.approx(20.0)
    assert isinstance(error, RejectedError)
    assert "api.example.com:443" in str(error)
    for secret in ("alice", "hunter2", "token", "s3cret", "/v1/items"):
        assert secret not in str(error)
        assert secret not in repr(error)


async def test_forced_open_reports_infinite_retry_after(clock: FakeClock) -> None:
    client, transport, _ = make(clock)
    transport.breaker(URL).force_open()
    async with client:
        with pytest.raises(CircuitOpenError) as info:
            await client.get(URL)
    assert math.isinf(info.value.retry_after)


async def test_recovery_after_the_timeout_closes_on_a_good_probe(clock: FakeClock) -> None:
    healthy = False

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if healthy else 503)

    client, transport, upstream = make(clock, handler, default=policy(recovery=30))
    async with client:
        await client.get(URL)
        clock.advance(29)
        with pytest.raises(CircuitOpenError):
            await client.get(URL)
        clock.advance(1)
        healthy = True
        assert (await client.get(URL)).status_code == 200
        assert (await client.get(URL)).status_code == 200
    assert upstream.calls == 3
    assert transport.breaker(URL).state is CLOSED


async def test_failed_probe_reopens_with_a_fresh_timer(clock: FakeClock) -> None:
    client, _, upstream = make(clock, status(503), default=policy(recovery=30))
    async with client:
        await client.get(URL)
        clock.advance(30)
        await client.get(URL)  # the probe fails
        clock.advance(29)
        with pytest.raises(CircuitOpenError) as info:
            await client.get(URL)
    assert info.value.retry_after == pytest.approx(1.0)
    assert upstream.calls == 2


# -- fallbacks -------------------------------------------------------------------------------


async def test_async_fallback_by_decorator(clock: FakeClock) -> None:
    client, transport, upstream = make(clock)
    seen: list[tuple[httpx.Request, RejectedError]] = []

    @transport.fallback("api.example.com")
    async def unknown(request: httpx.Request, error: RejectedError) -> httpx.Response:
        seen.append((request, error))
        return httpx.Response(200, json={"status": "unknown", "cached": True})

    assert unknown.__name__ == "unknown"  # the decorator returns the function itself
    transport.breaker(URL).force_open()
    async with client:
        response = await client.get(URL + "?page=2")
    assert response.json() == {"status": "unknown", "cached": True}
    assert response.extensions["resilient_http.fallback"] == "circuit_open"
    assert upstream.calls == 0
    [(request, error)] = seen
    assert request.url == httpx.URL(URL + "?page=2")
    assert isinstance(error, CircuitOpenError)
    assert error.host == "api.example.com:443"


async def test_sync_fallback_by_call(clock: FakeClock) -> None:
    client, transport, _ = make(clock)

    def cached(request: httpx.Request, error: RejectedError) -> httpx.Response:
        return httpx.Response(203, text="from cache")

    assert transport.fallback("*.example.com", cached) is cached
    transport.breaker(URL).force_open()
    async with client:
        response = await client.get(URL)
    assert (response.status_code, response.text) == (203, "from cache")
    assert response.extensions["resilient_http.fallback"] == "circuit_open"


async def test_fallback_is_served_only_for_rejections(clock: FakeClock) -> None:
    client, transport, _ = make(clock, raising(httpx.ConnectError("refused")))
    transport.fallback("api.example.com", lambda request, error: httpx.Response(200))
    async with client:
        with pytest.raises(httpx.ConnectError):
            await client.get(URL)  # the circuit was closed: the real error, not the fallback
        response = await client.get(URL)  # now open: the fallback answers
    assert response.extensions["resilient_http.fallback"] == "circuit_open"


def tagged(tag: str) -> Callable[[httpx.Request, RejectedError], httpx.Response]:
    def fallback(request: httpx.Request, error: RejectedError) -> httpx.Response:
        return httpx.Response(200, text=tag)

    return fallback


async def served_by(client: httpx.AsyncClient, transport: ResilientTransport, url: str) -> str:
    transport.breaker(url).force_open()
    try:
        return (await client.get(url)).text
    except CircuitOpenError:
        return "raised"


async def test_most_specific_fallback_pattern_wins(clock: FakeClock) -> None:
    client, transport, _ = make(clock)
    transport.fallback("*.example.com", tagged("wildcard"))
    transport.fallback("*.internal.example.com", tagged("longer wildcard"))
    transport.fallback("api.example.com", tagged("host"))
    transport.fallback("api.example.com:8443", tagged("host:port"))
    async with client:
        assert await served_by(client, transport, "https://api.example.com:8443/") == "host:port"
        assert await served_by(client, transport, "https://api.example.com/") == "host"
        assert await served_by(client, transport, "http://api.example.com:8080/") == "host"
        assert (
            await served_by(client, transport, "https://db.internal.example.com/")
            == "longer wildcard"
        )
        assert await served_by(client, transport, "https://www.example.com/") == "wildcard"
        assert await served_by(client, transport, "https://example.com/") == "raised"
        assert await served_by(client, transport, "https://example.org/") == "raised"


async def test_registered_fallback_versus_policy_fallback(clock: FakeClock) -> None:
    client, transport, _ = make(
        clock,
        default=Policy(fallback=tagged("default policy")),
        hosts={
            "api.example.com": Policy(fallback=tagged("api policy")),
            "pay.example.com": Policy(fallback=tagged("pay policy")),
        },
    )
    transport.fallback("*.example.com", tagged("registered wildcard"))
    transport.fallback("pay.example.com", tagged("registered pay"))
    async with client:
        # a policy on a more specific pattern beats a registered wildcard
        assert await served_by(client, transport, "https://api.example.com/") == "api policy"
        # equally specific: the registered fallback wins
        assert await served_by(client, transport, "https://pay.example.com/") == "registered pay"
        # a registered wildcard beats the default policy's fallback
        assert (
            await served_by(client, transport, "https://www.example.com/") == "registered wildcard"
        )
        assert await served_by(client, transport, "https://example.org/") == "default policy"


async def test_fallback_registered_after_the_breaker_exists_applies(clock: FakeClock) -> None:
    client, transport, _ = make(clock, status(503))
    async with client:
        await client.get(URL)  # the host and its open breaker exist now
        with pytest.raises(CircuitOpenError):
            await client.get(URL)
        transport.fallback("api.example.com", tagged("late"))
        assert (await client.get(URL)).text == "late"


@pytest.mark.parametrize("result", [None, {"status": "unknown"}, b"body", 200])
async def test_fallback_returning_a_non_response_is_a_type_error_naming_it(
    clock: FakeClock, result: object
) -> None:
    client, transport, _ = make(clock)

    @transport.fallback("api.example.com")
    async def inventory_unknown(request: httpx.Request, error: RejectedError) -> Any:
        return result

    transport.breaker(URL).force_open()
    async with client:
        with pytest.raises(TypeError, match="inventory_unknown") as info:
            await client.get(URL)
    assert type(result).__name__ in str(info.value)


async def test_fallback_that_raises_propagates_and_leaves_the_breaker_unchanged(
    clock: FakeClock,
) -> None:
    client, transport, upstream = make(clock, status(503))

    def broken(request: httpx.Request, error: RejectedError) -> httpx.Response:
        raise LookupError("cache miss")

    transport.fallback("api.example.com", broken)
    async with client:
        await client.get(URL)
        clock.advance(5)
        before = transport.snapshot()
        with pytest.raises(LookupError, match="cache miss"):
            await client.get(URL)
        assert transport.snapshot() == before
        clock.advance(25)
        # still recovers on schedule: the raising fallback was not a probe
        upstream.mock = httpx.MockTransport(status(200))
        assert (await client.get(URL)).status_code == 200
    assert upstream.calls == 2
    assert transport.breaker(URL).state is CLOSED


async def test_async_fallback_that_raises_propagates(clock: FakeClock) -> None:
    client, transport, _ = make(clock)

    async def broken(request: httpx.Request, error: RejectedError) -> httpx.Response:
        raise error

    transport.fallback("api.example.com", broken)
    transport.breaker(URL).force_open()
    async with client:
        with pytest.raises(CircuitOpenError):
            await client.get(URL)
    assert transport.breaker(URL).state is OPEN


# -- caller errors: no usable authority ---------------------------------------------------


@pytest.mark.parametrize(
    "url", ["ftp://example.com/file", "ftp://example.com:2121/file", "http:///no-host"]
)
async def test_unknown_scheme_or_missing_host_is_the_callers_error(
    clock: FakeClock, url: str
) -> None:
    transport = ResilientTransport(
        httpx.AsyncHTTPTransport(), policy=policy(), clock=clock, sleep=clock.sleep
    )
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get(url)
        with pytest.raises(httpx.UnsupportedProtocol):
            await client.get(url)  # not rejected: nothing was counted
    assert transport.snapshot() == {}  # no breaker was created


# -- lifetime ------------------------------------------------------------------------------


async def test_aclose_closes_the_inner_transport(clock: FakeClock) -> None:
    _, transport, upstream = make(clock)
    await transport.aclose()
    assert upstream.closed


async def test_closing_the_client_closes_the_inner_transport(clock: FakeClock) -> None:
    client, _, upstream = make(clock)
    async with client:
        await client.get(URL)
        assert not upstream.closed
    assert upstream.closed


# -- the bounded breaker map ----------------------------------------------------------------


async def test_idle_closed_breakers_are_evicted_past_max_hosts(clock: FakeClock) -> None:
    client, transport, _ = make(clock, max_hosts=3)
    async with client:
        for n in range(10):
            await client.get(f"https://h{n}.example.com/")
    assert sorted(transport.snapshot()) == [
        "h7.example.com:443",
        "h8.example.com:443",
        "h9.example.com:443",
    ]


async def test_eviction_is_least_recently_used(clock: FakeClock) -> None:
    client, transport, _ = make(clock, max_hosts=2)
    async with client:
        await client.get("https://a.example.com/")
        await client.get("https://b.example.com/")
        await client.get("https://a.example.com/x")  # a is used again
        await client.get("https://c.example.com/")
    assert sorted(transport.snapshot()) == ["a.example.com:443", "c.example.com:443"]


async def test_open_breakers_outlive_idle_and_failing_ones(clock: FakeClock) -> None:
    """README (Memory): idle breakers go first, then closed ones with recent
    failures, open circuits last."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if request.url.host.startswith("down") else 200)

    client, transport, _ = make(clock, handler, default=policy(threshold=2), max_hosts=3)
    async with client:
        await client.get("https://down1.example.com/")  # one recent failure
        await client.get("https://down2.example.com/")
        await client.get("https://down2.example.com/")  # open
        await client.get("https://h0.example.com/")
        await client.get("https://h1.example.com/")  # h0 (idle) goes, not down1
        assert set(transport.snapshot()) == {
            "down1.example.com:443",
            "down2.example.com:443",
            "h1.example.com:443",
        }
        await client.get("https://h2.example.com/")  # down1 goes before h1? no: h1 is idle
        assert "down1.example.com:443" in transport.snapshot()
        await client.get("https://h3.example.com/")
        await client.get("https://h4.example.com/")
        snapshot = transport.snapshot()
        assert len(snapshot) == 3
        assert snapshot["down1.example.com:443"]["consecutive_failures"] == 1
        assert snapshot["down2.example.com:443"]["state"] == "open"
        with pytest.raises(CircuitOpenError):
            await client.get("https://down2.example.com/")


async def test_hosts_beyond_a_full_map_of_open_breakers_still_work(clock: FakeClock) -> None:
    """When nothing can be evicted, a new host still gets a working, visible breaker."""
    client, transport, upstream = make(clock, default=policy(threshold=1), max_hosts=1)
    transport.breaker("https://down.example.com/").force_open()
    async with client:
        for _ in range(3):
            response = await client.get("https://up.example.com/")
            assert response.status_code == 200
    assert upstream.calls == 3
    assert transport.breaker("https://down.example.com/").state is OPEN
    assert "up.example.com:443" in transport.snapshot()


async def test_transport_snapshot_is_json_serialisable(clock: FakeClock) -> None:
    client, transport, _ = make(clock, status(503), default=policy(threshold=2))
    async with client:
        await client.get("https://a.example.com/")
        await client.get("https://b.example.com/")
        await client.get("https://b.example.com/")
        transport.breaker("c.example.com").force_open()
        transport.breaker("d.example.com:8443")
        snapshot = transport.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert {k: v["state"] for k, v in snapshot.items()} == {
        "a.example.com:443": "closed",
        "b.example.com:443": "open",
        "c.example.com:443": "open",
        "d.example.com:8443": "closed",
    }


# -- per-request override ------------------------------------------------------------------


async def test_retry_extension_overrides_the_host_policy_for_one_request(
    clock: FakeClock,
) -> None:
    client, _, upstream = make(clock, status(503), default=policy(threshold=100, attempts=1))
    override = RetryPolicy(attempts=4, wait=tenacity.wait_fixed(2), budget=None)
    async with client:
        await client.get(URL, extensions={"resilient_http.retry": override})
        assert upstream.calls == 4
        assert clock.sleeps == [2.0, 2.0, 2.0]
        await client.get(URL)
        assert upstream.calls == 5


async def test_retry_extension_can_disable_retries(clock: FakeClock) -> None:
    client, _, upstream = make(clock, status(503), default=policy(threshold=100, attempts=3))
    async with client:
        await client.get(URL, extensions={"resilient_http.retry": RetryPolicy(attempts=1)})
    assert upstream.calls == 1


async def test_retry_extension_of_the_wrong_type_is_a_type_error(clock: FakeClock) -> None:
    client, _, upstream = make(clock)
    async with client:
        with pytest.raises(TypeError, match=r"resilient_http\.retry"):
            await client.get(URL, extensions={"resilient_http.retry": 3})
    assert upstream.calls == 0


# -- streaming and the body phase -------------------------------------------------------------


class Body(httpx.AsyncByteStream):
    """A streamed response body: yields ``chunks``, then raises ``error`` if given.
    ``gate`` (if set) must be released before the second chunk."""

    def __init__(
        self,
        chunks: Sequence[bytes],
        error: Exception | None = None,
        gate: anyio.Event | None = None,
    ) -> None:
        self.chunks = chunks
        self.error = error
        self.gate = gate
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for n, chunk in enumerate(self.chunks):
            if n == 1 and self.gate is not None:
                await self.gate.wait()
            yield chunk
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        self.closed = True


def streaming(make_body: Callable[[], Body], code: int = 200) -> Handler:
    return lambda request: httpx.Response(code, stream=make_body())


async def test_a_read_error_mid_body_is_a_failure(clock: FakeClock) -> None:
    body = lambda: Body([b"partial"], httpx.ReadError("connection reset"))  # noqa: E731
    client, transport, _ = make(clock, streaming(body))
    async with client:
        async with client.stream("GET", URL) as response:
            assert response.status_code == 200
            assert transport.breaker(URL).state is CLOSED  # the verdict waits for the body
            with pytest.raises(httpx.ReadError):
                await response.aread()
        assert transport.breaker(URL).state is OPEN
        with pytest.raises(CircuitOpenError):
            await client.get(URL)


async def test_a_timeout_mid_body_is_a_failure(clock: FakeClock) -> None:
    body = lambda: Body([b"a", b"b"], httpx.ReadTimeout("stalled"))  # noqa: E731
    client, transport, _ = make(clock, streaming(body))
    async with client:
        with pytest.raises(httpx.ReadTimeout):
            await client.get(URL)
    assert transport.breaker(URL).state is OPEN


async def test_a_streamed_body_read_in_full_is_a_success(clock: FakeClock) -> None:
    client, transport, _ = make(
        clock, streaming(lambda: Body([b"a", b"b", b"c"])), default=policy(threshold=2)
    )
    breaker = transport.breaker(URL)
    fail(breaker)
    async with client:
        async with client.stream("GET", URL) as response:
            assert breaker.failure_count == 1  # pending until the body ends
            assert await response.aread() == b"abc"
        assert breaker.failure_count == 0


async def test_a_streamed_body_closed_early_is_a_success(clock: FakeClock) -> None:
    bodies: list[Body] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(Body([b"a", b"b"]))
        return httpx.Response(200, stream=bodies[-1])

    client, transport, _ = make(clock, handler, default=policy(threshold=2))
    breaker = transport.breaker(URL)
    fail(breaker)
    async with client:
        async with client.stream("GET", URL):
            pass
    assert bodies[0].closed
    assert breaker.failure_count == 0


async def test_a_response_built_with_content_records_success_at_once(clock: FakeClock) -> None:
    """MockTransport responses arrive already read and closed: the verdict must
    not wait for a body end that never comes."""
    answers = [503, 200, 503]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(answers.pop(0), content=b"in memory")

    client, transport, _ = make(clock, handler, default=policy(threshold=2))
    async with client:
        await client.get(URL)
        assert transport.breaker(URL).failure_count == 1
        await client.get(URL)
        assert transport.breaker(URL).failure_count == 0
        await client.get(URL)
    assert transport.breaker(URL).state is CLOSED  # 503, 200, 503 is never two in a row


async def test_success_bodies_stream_through_without_being_buffered(clock: FakeClock) -> None:
    gate = anyio.Event()
    client, _, _ = make(clock, streaming(lambda: Body([b"first", b"second"], gate=gate)))
    async with client:
        async with client.stream("GET", URL) as response:
            chunks = response.aiter_bytes()
            # the first chunk arrives while the upstream is still holding the second
            assert await chunks.__anext__() == b"first"
            gate.set()
            assert [c async for c in chunks] == [b"second"]


async def test_a_probe_is_judged_by_its_status_line(clock: FakeClock) -> None:
    gate = anyio.Event()
    client, transport, _ = make(clock, streaming(lambda: Body([b"a", b"b"], gate=gate)))
    async with client:
        trip(transport)
        clock.advance(30)
        async with client.stream("GET", URL) as response:
            assert response.status_code == 200
            assert transport.breaker(URL).state is CLOSED  # without waiting for the body
            gate.set()
            await response.aread()


# -- events and logging ------------------------------------------------------------------------


SECRET_URL = "https://alice:hunter2@api.example.com/v1/items?token=s3cret&page=2"
SECRETS = ("alice", "hunter2", "s3cret", "token", "Bearer", "t0psecret", "/v1/items", "page=2")


async def run_a_whole_outage(
    clock: FakeClock, listeners: Sequence[Callable[[Event], object]] = ()
) -> None:
    healthy = False

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if healthy else 503, headers={"Set-Cookie": "sid=t0psecret"})

    client, transport, _ = make(
        clock, handler, default=policy(threshold=2, attempts=3), listeners=listeners
    )
    transport.fallback("api.example.com", tagged("fallback"))
    headers = {"Authorization": "Bearer t0psecret", "Idempotency-Key": "t0psecret"}
    async with client:
        await client.get(SECRET_URL, headers=headers)  # retried, then opens
        await client.get(SECRET_URL, headers=headers)  # rejected: fallback
        clock.advance(30)
        healthy = True
        await client.get(SECRET_URL, headers=headers)  # probe closes


async def test_logging_warns_on_open_and_informs_on_close(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="resilient_http")
    await run_a_whole_outage(clock)
    records = [r for r in caplog.records if r.name == "resilient_http"]
    opened = [r for r in records if " opened (was " in r.getMessage()]
    closed = [r for r in records if " closed (was " in r.getMessage()]
    assert [r.levelno for r in opened] == [logging.WARNING]
    assert [r.levelno for r in closed] == [logging.INFO]
    assert "api.example.com:443" in opened[0].getMessage()
    assert "api.example.com:443" in closed[0].getMessage()


async def test_no_query_userinfo_or_header_value_in_any_log_record(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="resilient_http")
    await run_a_whole_outage(clock)
    records = [r for r in caplog.records if r.name.startswith("resilient_http")]
    assert len(records) >= 3  # retry, open, half-open, close were all logged
    for record in records:
        text = record.getMessage() + repr(record.args)
        for secret in SECRETS:
            assert secret not in text, (secret, text)


async def test_events_report_changes_retries_rejections_and_fallbacks(clock: FakeClock) -> None:
    events: list[Event] = []
    await run_a_whole_outage(clock, listeners=[events.append])
    changes = [(e.old, e.new) for e in events if isinstance(e, StateChanged)]
    assert changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]
    assert [e.attempt for e in events if isinstance(e, RetryScheduled)] == [1]
    rejected = [e for e in events if isinstance(e, CallRejected)]
    assert [(e.reason, e.retry_after) for e in rejected] == [("circuit_open", 30.0)]
    served = [e for e in events if isinstance(e, FallbackServed)]
    assert [(e.reason, e.source) for e in served] == [("circuit_open", "fallback")]
    for event in events:
        assert event.host == "api.example.com:443"
        for secret in SECRETS:
            assert secret not in repr(event)


async def test_async_listeners_are_awaited(clock: FakeClock) -> None:
    seen: list[Event] = []

    async def listener(event: Event) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(event)

    client, _, _ = make(clock, status(503), listeners=[listener])
    async with client:
        await client.get(URL)
        assert any(isinstance(e, StateChanged) and e.new is OPEN for e in seen)


async def test_a_raising_listener_never_breaks_the_request(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def listener(event: Event) -> None:
        raise RuntimeError("listener bug")

    client, _, _ = make(clock, listeners=[listener])
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert any("listener" in r.getMessage() for r in caplog.records if r.name == "resilient_http")


def _use_sync(client: httpx.Client, use: str) -> None:
    if use == "request":
        client.get("https://api.example.com/")
    else:
        with client:
            pass


@pytest.mark.parametrize("use", ["request", "context manager"])
def test_an_async_transport_in_a_sync_client_says_what_to_use(use: str) -> None:
    transport = ResilientTransport(httpx.MockTransport(lambda request: httpx.Response(200)))
    client = httpx.Client(transport=transport)  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=r"httpx\.AsyncClient.*SyncResilientTransport with httpx\.Client"
    ):
        _use_sync(client, use)


class _Recording(httpx.AsyncBaseTransport):
    """An inner transport that records how its lifetime is managed."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    async def __aenter__(self) -> _Recording:
        self.calls.append("__aenter__")
        return self

    async def __aexit__(self, *args: object) -> None:
        self.calls.append("__aexit__")

    async def aclose(self) -> None:
        self.calls.append("aclose")


async def test_a_client_used_as_a_context_manager_enters_and_exits_the_inner_transport() -> None:
    """README: a drop-in. httpx's client enters and exits its transport; through
    this layer the inner transport sees exactly that, as it would without it."""
    inner = _Recording()
    async with httpx.AsyncClient(transport=ResilientTransport(inner)) as client:
        assert inner.calls == ["__aenter__"]
        assert (await client.get("https://api.example.com/")).status_code == 200
    assert inner.calls == ["__aenter__", "__aexit__"]

    inner = _Recording()
    async with ResilientClient(transport=inner):
        pass
    assert inner.calls == ["__aenter__", "__aexit__"]

    inner = _Recording()
    client = httpx.AsyncClient(transport=ResilientTransport(inner))
    await client.aclose()  # no context manager: closing is aclose()
    assert inner.calls == ["aclose"]


async def test_service_unavailable_answers_an_open_circuit_with_a_503_sdks_do_not_retry(
    clock: FakeClock,
) -> None:
    transport = ResilientTransport(
        httpx.MockTransport(lambda request: httpx.Response(500)),
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=1, recovery_timeout=12.3),
            retry=RetryPolicy(attempts=1),
        ),
        clock=clock,
    )
    transport.fallback("*.example.com", service_unavailable)
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get("https://api.example.com/x?token=secret")).status_code == 500
        response = await client.get("https://api.example.com/x?token=secret")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "13"  # whole seconds, rounded up
        assert response.headers["x-should-retry"] == "false"
        assert response.json() == {
            "error": "circuit_open",
            "host": "api.example.com:443",
            "retry_after": 12.3,
        }
        assert "secret" not in response.text
        assert response.extensions["resilient_http.fallback"] == "circuit_open"
        transport.breaker("https://held.example.com/").force_open()
        held = await client.get("https://held.example.com/")
        assert held.status_code == 503
        assert "retry-after" not in held.headers  # held open by hand: no time to give
        assert held.headers["x-should-retry"] == "false"
