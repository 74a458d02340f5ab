"""The transport over an in-memory upstream, on every binding from this one
source (httpx and httpx2, async on asyncio and trio, sync in worker threads):
classification, rejection, fallbacks, caller errors, lifetime, the bounded
breaker map, the per-request retry override, the body phase, events and logging.

The upstream, the streamed bodies and the recording inner transport are each
built as the binding's own kind (``httpx.BaseTransport`` or
``httpx.AsyncBaseTransport``, ``SyncByteStream`` or ``AsyncByteStream``, of
httpx or httpx2). What only the async binding has (cancellation, async
listeners and fallbacks, its misuse in ``httpx.Client``) is tested in
tests/test_transport.py.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from types import ModuleType
from typing import Any, TypeVar, cast

import anyio
import pytest
import tenacity

from resilient_http import (
    Breaker,
    BreakerPolicy,
    CallRejected,
    CircuitState,
    Event,
    FallbackServed,
    Policy,
    RetryPolicy,
    RetryScheduled,
    StateChanged,
)
from resilient_http.testing import FakeClock

from ..bindings import Binding

URL = "https://api.example.com/v1/items"
CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN

Handler = Callable[[Any], Any]
T = TypeVar("T")


def native(binding: Binding, mixin: type[T], sync_base: str, async_base: str) -> type[T]:
    """``mixin`` as a subclass of the binding's own class: ``binding.http.<sync_base>``
    for the sync bindings, ``binding.http.<async_base>`` for the async ones."""
    base = getattr(binding.http, sync_base if binding.sync else async_base)
    return cast("type[T]", type(mixin.__name__, (mixin, base), {}))


class Counting:
    """The upstream: answers with ``handler`` (a test may swap it) through the
    binding's ``MockTransport``, counts the requests that reach it and notes
    whether it was closed. ``counting()`` builds it as the binding's kind."""

    def __init__(self, binding: Binding, handler: Handler | None = None) -> None:
        self.handler: Handler = handler or (lambda request: binding.response(200, text="fresh"))
        self.mock = binding.mock(lambda request: self.handler(request))
        self.requests: list[Any] = []
        self.closed = False

    def handle_request(self, request: Any) -> Any:
        self.requests.append(request)
        return self.mock.handle_request(request)

    async def handle_async_request(self, request: Any) -> Any:
        self.requests.append(request)
        return await self.mock.handle_async_request(request)

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True

    @property
    def calls(self) -> int:
        return len(self.requests)


def counting(binding: Binding, handler: Handler | None = None) -> Counting:
    return native(binding, Counting, "BaseTransport", "AsyncBaseTransport")(binding, handler)


def policy(threshold: int = 1, recovery: float = 30.0, **retry: Any) -> Policy:
    retry.setdefault("attempts", 1)
    retry.setdefault("wait", tenacity.wait_none())
    retry.setdefault("budget", None)
    return Policy(
        breaker=BreakerPolicy(failure_threshold=threshold, recovery_timeout=recovery),
        retry=RetryPolicy(**retry),
    )


def make(
    binding: Binding,
    clock: FakeClock,
    handler: Handler | None = None,
    *,
    default: Policy | None = None,
    hosts: dict[str, Policy] | None = None,
    listeners: Sequence[Callable[[Event], object]] = (),
    max_hosts: int = 1024,
) -> tuple[Any, Any, Counting]:
    """A client (behind the async face), its resilient transport and the upstream."""
    upstream = counting(binding, handler)
    transport = binding.transport(
        upstream,
        policy=default if default is not None else policy(),
        hosts=hosts,
        listeners=listeners,
        max_hosts=max_hosts,
        clock=clock,
        sleep=clock.sleep,
    )
    return binding.client(transport), transport, upstream


def raising(exc: BaseException) -> Handler:
    def handler(request: Any) -> Any:
        raise exc

    return handler


def status(binding: Binding, code: int) -> Handler:
    return lambda request: binding.response(code, text=f"status {code}")


def fail(breaker: Breaker, times: int = 1) -> None:
    """Record counted failures directly on the state machine."""
    for _ in range(times):
        ticket = breaker.admit()
        assert ticket is not None
        breaker.on_failure(ticket)


def trip(transport: Any, url: str = URL) -> None:
    """Open the circuit for ``url``'s host (the recovery timer starts now)."""
    breaker = transport.breaker(url)
    fail(breaker, breaker.policy.failure_threshold)
    assert breaker.state is OPEN


# -- failure classification ------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(lambda http: http.ConnectTimeout("connect timeout"), id="ConnectTimeout"),
        pytest.param(lambda http: http.ReadTimeout("read timeout"), id="ReadTimeout"),
        pytest.param(lambda http: http.WriteTimeout("write timeout"), id="WriteTimeout"),
        pytest.param(lambda http: http.ConnectError("refused"), id="ConnectError"),
        pytest.param(lambda http: http.ReadError("reset"), id="ReadError"),
        pytest.param(lambda http: http.WriteError("broken pipe"), id="WriteError"),
        pytest.param(lambda http: http.CloseError("close"), id="CloseError"),
        pytest.param(
            lambda http: http.RemoteProtocolError("peer closed"), id="RemoteProtocolError"
        ),
    ],
)
async def test_timeouts_network_and_protocol_errors_are_failures(
    binding: Binding, clock: FakeClock, error: Callable[[ModuleType], Exception]
) -> None:
    exc = error(binding.http)
    client, transport, _ = make(binding, clock, raising(exc))
    async with client:
        with pytest.raises(type(exc)):
            await client.post(URL)
    assert transport.breaker(URL).state is OPEN


@pytest.mark.parametrize("code", [500, 502, 503, 504, 599])
async def test_5xx_responses_are_failures(binding: Binding, clock: FakeClock, code: int) -> None:
    client, transport, _ = make(binding, clock, status(binding, code))
    async with client:
        response = await client.post(URL)
    assert response.status_code == code
    assert response.text == f"status {code}"
    assert transport.breaker(URL).state is OPEN


@pytest.mark.parametrize("code", [200, 201, 204, 301, 304, 400, 401, 403, 404, 409, 429, 499])
async def test_other_statuses_are_not_failures(
    binding: Binding, clock: FakeClock, code: int
) -> None:
    client, transport, _ = make(binding, clock, status(binding, code), default=policy(threshold=2))
    async with client:
        fail(transport.breaker(URL))
        await client.post(URL)
    breaker = transport.breaker(URL)
    assert breaker.state is CLOSED
    assert breaker.failure_count == 0  # an answer from a live upstream resets the count


async def test_failure_statuses_are_configurable(binding: Binding, clock: FakeClock) -> None:
    custom = Policy(
        breaker=BreakerPolicy(failure_threshold=1, failure_statuses={503, 429}),
        retry=RetryPolicy(attempts=1),
    )
    client, transport, upstream = make(binding, clock, status(binding, 500), default=custom)
    async with client:
        await client.get(URL)
        assert transport.breaker(URL).state is CLOSED
        upstream.handler = status(binding, 429)
        await client.get(URL)
    assert transport.breaker(URL).state is OPEN


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(
            lambda http: http.UnsupportedProtocol("unsupported protocol"), id="UnsupportedProtocol"
        ),
        pytest.param(
            lambda http: http.LocalProtocolError("bad request framing"), id="LocalProtocolError"
        ),
        pytest.param(lambda http: http.InvalidURL("invalid url"), id="InvalidURL"),
        # our own pool is full (often of calls hung on another host): not this host's fault
        pytest.param(lambda http: http.PoolTimeout("pool timeout"), id="PoolTimeout"),
        pytest.param(lambda http: ValueError("caller bug"), id="ValueError"),
        pytest.param(lambda http: RuntimeError("caller bug"), id="RuntimeError"),
    ],
)
async def test_caller_errors_are_not_failures(
    binding: Binding, clock: FakeClock, error: Callable[[ModuleType], Exception]
) -> None:
    exc = error(binding.http)
    client, transport, _ = make(binding, clock, raising(exc), default=policy(threshold=2))
    breaker = transport.breaker(URL)
    fail(breaker)
    async with client:
        with pytest.raises(type(exc)):
            await client.get(URL)
    assert breaker.state is CLOSED
    assert breaker.failure_count == 1  # neither a failure nor a success


async def test_caller_error_during_a_probe_gives_the_slot_back(
    binding: Binding, clock: FakeClock
) -> None:
    answers: list[Handler] = [
        raising(binding.http.LocalProtocolError("bad")),
        status(binding, 200),
    ]

    def handler(request: Any) -> Any:
        return answers.pop(0)(request)

    client, transport, upstream = make(binding, clock, handler)
    async with client:
        trip(transport)
        clock.advance(30)
        with pytest.raises(binding.http.LocalProtocolError):
            await client.get(URL)
        assert transport.breaker(URL).state is HALF_OPEN
        response = await client.get(URL)  # the slot is free again: this probe goes through
    assert response.status_code == 200
    assert upstream.calls == 2
    assert transport.breaker(URL).state is CLOSED


# -- open circuit ------------------------------------------------------------------------------


async def test_open_circuit_rejects_without_touching_the_inner_transport(
    binding: Binding, clock: FakeClock
) -> None:
    client, _, upstream = make(binding, clock, status(binding, 503))
    async with client:
        await client.get(URL)
        assert upstream.calls == 1
        for _ in range(20):
            with pytest.raises(binding.api.CircuitOpenError):
                await client.get(URL)
    assert upstream.calls == 1


async def test_circuit_open_error_names_the_host_key_and_retry_after(
    binding: Binding, clock: FakeClock
) -> None:
    client, _, _ = make(binding, clock, status(binding, 503), default=policy(recovery=30))
    secret_url = "https://alice:hunter2@API.example.com/v1/items?token=s3cret"
    async with client:
        await client.get(secret_url)
        clock.advance(10)
        with pytest.raises(binding.api.CircuitOpenError) as info:
            await client.get(secret_url)
    error = info.value
    assert error.host == "api.example.com:443"
    assert error.retry_after == pytest.approx(20.0)
    assert isinstance(error, binding.api.RejectedError)
    assert "api.example.com:443" in str(error)
    for secret in ("alice", "hunter2", "token", "s3cret", "/v1/items"):
        assert secret not in str(error)
        assert secret not in repr(error)


async def test_forced_open_reports_infinite_retry_after(binding: Binding, clock: FakeClock) -> None:
    client, transport, _ = make(binding, clock)
    transport.breaker(URL).force_open()
    async with client:
        with pytest.raises(binding.api.CircuitOpenError) as info:
            await client.get(URL)
    assert math.isinf(info.value.retry_after)


async def test_recovery_after_the_timeout_closes_on_a_good_probe(
    binding: Binding, clock: FakeClock
) -> None:
    healthy = False

    def handler(request: Any) -> Any:
        return binding.response(200 if healthy else 503)

    client, transport, upstream = make(binding, clock, handler, default=policy(recovery=30))
    async with client:
        await client.get(URL)
        clock.advance(29)
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get(URL)
        clock.advance(1)
        healthy = True
        assert (await client.get(URL)).status_code == 200
        assert (await client.get(URL)).status_code == 200
    assert upstream.calls == 3
    assert transport.breaker(URL).state is CLOSED


async def test_failed_probe_reopens_with_a_fresh_timer(binding: Binding, clock: FakeClock) -> None:
    client, _, upstream = make(binding, clock, status(binding, 503), default=policy(recovery=30))
    async with client:
        await client.get(URL)
        clock.advance(30)
        await client.get(URL)  # the probe fails
        clock.advance(29)
        with pytest.raises(binding.api.CircuitOpenError) as info:
            await client.get(URL)
    assert info.value.retry_after == pytest.approx(1.0)
    assert upstream.calls == 2


# -- fallbacks -------------------------------------------------------------------------------


async def test_sync_fallback_by_call(binding: Binding, clock: FakeClock) -> None:
    client, transport, _ = make(binding, clock)

    def cached(request: Any, error: Any) -> Any:
        return binding.response(203, text="from cache")

    assert transport.fallback("*.example.com", cached) is cached
    transport.breaker(URL).force_open()
    async with client:
        response = await client.get(URL)
    assert (response.status_code, response.text) == (203, "from cache")
    assert response.extensions["resilient_http.fallback"] == "circuit_open"


async def test_fallback_is_served_only_for_rejections(binding: Binding, clock: FakeClock) -> None:
    client, transport, _ = make(binding, clock, raising(binding.http.ConnectError("refused")))
    transport.fallback("api.example.com", lambda request, error: binding.response(200))
    async with client:
        with pytest.raises(binding.http.ConnectError):
            await client.get(URL)  # the circuit was closed: the real error, not the fallback
        response = await client.get(URL)  # now open: the fallback answers
    assert response.extensions["resilient_http.fallback"] == "circuit_open"


def tagged(binding: Binding, tag: str) -> Callable[[Any, Any], Any]:
    def fallback(request: Any, error: Any) -> Any:
        return binding.response(200, text=tag)

    return fallback


async def served_by(binding: Binding, client: Any, transport: Any, url: str) -> str:
    transport.breaker(url).force_open()
    try:
        return str((await client.get(url)).text)
    except binding.api.CircuitOpenError:
        return "raised"


async def test_most_specific_fallback_pattern_wins(binding: Binding, clock: FakeClock) -> None:
    client, transport, _ = make(binding, clock)
    transport.fallback("*.example.com", tagged(binding, "wildcard"))
    transport.fallback("*.internal.example.com", tagged(binding, "longer wildcard"))
    transport.fallback("api.example.com", tagged(binding, "host"))
    transport.fallback("api.example.com:8443", tagged(binding, "host:port"))

    async def served(url: str) -> str:
        return await served_by(binding, client, transport, url)

    async with client:
        assert await served("https://api.example.com:8443/") == "host:port"
        assert await served("https://api.example.com/") == "host"
        assert await served("http://api.example.com:8080/") == "host"
        assert await served("https://db.internal.example.com/") == "longer wildcard"
        assert await served("https://www.example.com/") == "wildcard"
        assert await served("https://example.com/") == "raised"
        assert await served("https://example.org/") == "raised"


async def test_registered_fallback_versus_policy_fallback(
    binding: Binding, clock: FakeClock
) -> None:
    client, transport, _ = make(
        binding,
        clock,
        default=Policy(fallback=tagged(binding, "default policy")),
        hosts={
            "api.example.com": Policy(fallback=tagged(binding, "api policy")),
            "pay.example.com": Policy(fallback=tagged(binding, "pay policy")),
        },
    )
    transport.fallback("*.example.com", tagged(binding, "registered wildcard"))
    transport.fallback("pay.example.com", tagged(binding, "registered pay"))

    async def served(url: str) -> str:
        return await served_by(binding, client, transport, url)

    async with client:
        # a policy on a more specific pattern beats a registered wildcard
        assert await served("https://api.example.com/") == "api policy"
        # equally specific: the registered fallback wins
        assert await served("https://pay.example.com/") == "registered pay"
        # a registered wildcard beats the default policy's fallback
        assert await served("https://www.example.com/") == "registered wildcard"
        assert await served("https://example.org/") == "default policy"


async def test_fallback_registered_after_the_breaker_exists_applies(
    binding: Binding, clock: FakeClock
) -> None:
    client, transport, _ = make(binding, clock, status(binding, 503))
    async with client:
        await client.get(URL)  # the host and its open breaker exist now
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get(URL)
        transport.fallback("api.example.com", tagged(binding, "late"))
        assert (await client.get(URL)).text == "late"


@pytest.mark.parametrize("result", [None, {"status": "unknown"}, b"body", 200])
async def test_fallback_returning_a_non_response_is_a_type_error_naming_it(
    binding: Binding, clock: FakeClock, result: object
) -> None:
    """The binding's own kind of fallback: a coroutine function for the async
    bindings (its result is checked once awaited), a plain function for the sync."""
    client, transport, _ = make(binding, clock)
    register: Callable[[Callable[..., Any]], Callable[..., Any]]
    register = transport.fallback("api.example.com")  # the decorator form

    if binding.sync:

        @register
        def inventory_unknown(request: Any, error: Any) -> Any:
            return result

    else:

        @register
        async def inventory_unknown(request: Any, error: Any) -> Any:
            return result

    transport.breaker(URL).force_open()
    async with client:
        with pytest.raises(TypeError, match="inventory_unknown") as info:
            await client.get(URL)
    assert type(result).__name__ in str(info.value)


async def test_fallback_that_raises_propagates_and_leaves_the_breaker_unchanged(
    binding: Binding, clock: FakeClock
) -> None:
    client, transport, upstream = make(binding, clock, status(binding, 503))

    def broken(request: Any, error: Any) -> Any:
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
        upstream.handler = status(binding, 200)
        assert (await client.get(URL)).status_code == 200
    assert upstream.calls == 2
    assert transport.breaker(URL).state is CLOSED


async def test_service_unavailable_answers_an_open_circuit_with_a_503_sdks_do_not_retry(
    binding: Binding, clock: FakeClock
) -> None:
    transport = binding.transport(
        binding.mock(lambda request: binding.response(500)),
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=1, recovery_timeout=12.3),
            retry=RetryPolicy(attempts=1),
        ),
        clock=clock,
    )
    transport.fallback("*.example.com", binding.api.service_unavailable)
    async with binding.client(transport) as client:
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


# -- caller errors: no usable authority ---------------------------------------------------


@pytest.mark.parametrize(
    "url", ["ftp://example.com/file", "ftp://example.com:2121/file", "http:///no-host"]
)
async def test_unknown_scheme_or_missing_host_is_the_callers_error(
    binding: Binding, clock: FakeClock, url: str
) -> None:
    transport = binding.transport(
        binding.inner_http(), policy=policy(), clock=clock, sleep=clock.sleep
    )
    async with binding.client(transport) as client:
        with pytest.raises(binding.http.UnsupportedProtocol):
            await client.get(url)
        with pytest.raises(binding.http.UnsupportedProtocol):
            await client.get(url)  # not rejected: nothing was counted
    assert transport.snapshot() == {}  # no breaker was created


# -- lifetime ------------------------------------------------------------------------------


async def test_closing_the_transport_closes_the_inner_transport(
    binding: Binding, clock: FakeClock
) -> None:
    _, transport, upstream = make(binding, clock)
    await binding.call(transport.close if binding.sync else transport.aclose)
    assert upstream.closed


async def test_closing_the_client_closes_the_inner_transport(
    binding: Binding, clock: FakeClock
) -> None:
    client, _, upstream = make(binding, clock)
    async with client:
        await client.get(URL)
        assert not upstream.closed
    assert upstream.closed


class Recording:
    """An inner transport that records how its lifetime is managed.
    ``recording()`` builds it as the binding's kind."""

    def __init__(self, binding: Binding) -> None:
        self.binding = binding
        self.calls: list[str] = []

    def handle_request(self, request: Any) -> Any:
        return self.binding.response(200)

    async def handle_async_request(self, request: Any) -> Any:
        return self.binding.response(200)

    def __enter__(self) -> Recording:
        self.calls.append("__enter__")
        return self

    def __exit__(self, *args: object) -> None:
        self.calls.append("__exit__")

    def close(self) -> None:
        self.calls.append("close")

    async def __aenter__(self) -> Recording:
        self.calls.append("__aenter__")
        return self

    async def __aexit__(self, *args: object) -> None:
        self.calls.append("__aexit__")

    async def aclose(self) -> None:
        self.calls.append("aclose")


def recording(binding: Binding) -> Recording:
    return native(binding, Recording, "BaseTransport", "AsyncBaseTransport")(binding)


async def test_a_client_used_as_a_context_manager_enters_and_exits_the_inner_transport(
    binding: Binding,
) -> None:
    """README: a drop-in. httpx's client enters and exits its transport; through
    this layer the inner transport sees exactly that, as it would without it."""
    if binding.sync:
        enter, exit_, close = "__enter__", "__exit__", "close"
    else:
        enter, exit_, close = "__aenter__", "__aexit__", "aclose"

    inner = recording(binding)
    async with binding.client(binding.transport(inner)) as client:
        assert inner.calls == [enter]
        assert (await client.get("https://api.example.com/")).status_code == 200
    assert inner.calls == [enter, exit_]

    inner = recording(binding)
    async with binding.resilient_client(transport=inner):
        pass
    assert inner.calls == [enter, exit_]

    inner = recording(binding)
    client = binding.client(binding.transport(inner))
    await client.aclose()  # no context manager: closing is close() / aclose()
    assert inner.calls == [close]


# -- the bounded breaker map ----------------------------------------------------------------


async def test_idle_closed_breakers_are_evicted_past_max_hosts(
    binding: Binding, clock: FakeClock
) -> None:
    client, transport, _ = make(binding, clock, max_hosts=3)
    async with client:
        for n in range(10):
            await client.get(f"https://h{n}.example.com/")
    assert sorted(transport.snapshot()) == [
        "h7.example.com:443",
        "h8.example.com:443",
        "h9.example.com:443",
    ]


async def test_eviction_is_least_recently_used(binding: Binding, clock: FakeClock) -> None:
    client, transport, _ = make(binding, clock, max_hosts=2)
    async with client:
        await client.get("https://a.example.com/")
        await client.get("https://b.example.com/")
        await client.get("https://a.example.com/x")  # a is used again
        await client.get("https://c.example.com/")
    assert sorted(transport.snapshot()) == ["a.example.com:443", "c.example.com:443"]


async def test_open_breakers_outlive_idle_and_failing_ones(
    binding: Binding, clock: FakeClock
) -> None:
    """README (Memory): idle breakers go first, then closed ones with recent
    failures, open circuits last."""

    def handler(request: Any) -> Any:
        return binding.response(503 if request.url.host.startswith("down") else 200)

    client, transport, _ = make(binding, clock, handler, default=policy(threshold=2), max_hosts=3)
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
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get("https://down2.example.com/")


async def test_hosts_beyond_a_full_map_of_open_breakers_still_work(
    binding: Binding, clock: FakeClock
) -> None:
    """When nothing can be evicted, a new host still gets a working, visible breaker."""
    client, transport, upstream = make(binding, clock, default=policy(threshold=1), max_hosts=1)
    transport.breaker("https://down.example.com/").force_open()
    async with client:
        for _ in range(3):
            response = await client.get("https://up.example.com/")
            assert response.status_code == 200
    assert upstream.calls == 3
    assert transport.breaker("https://down.example.com/").state is OPEN
    assert "up.example.com:443" in transport.snapshot()


async def test_transport_snapshot_is_json_serialisable(binding: Binding, clock: FakeClock) -> None:
    client, transport, _ = make(binding, clock, status(binding, 503), default=policy(threshold=2))
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
    binding: Binding, clock: FakeClock
) -> None:
    client, _, upstream = make(
        binding, clock, status(binding, 503), default=policy(threshold=100, attempts=1)
    )
    override = RetryPolicy(attempts=4, wait=tenacity.wait_fixed(2), budget=None)
    async with client:
        await client.get(URL, extensions={"resilient_http.retry": override})
        assert upstream.calls == 4
        assert clock.sleeps == [2.0, 2.0, 2.0]
        await client.get(URL)
        assert upstream.calls == 5


async def test_retry_extension_can_disable_retries(binding: Binding, clock: FakeClock) -> None:
    client, _, upstream = make(
        binding, clock, status(binding, 503), default=policy(threshold=100, attempts=3)
    )
    async with client:
        await client.get(URL, extensions={"resilient_http.retry": RetryPolicy(attempts=1)})
    assert upstream.calls == 1


async def test_retry_extension_of_the_wrong_type_is_a_type_error(
    binding: Binding, clock: FakeClock
) -> None:
    client, _, upstream = make(binding, clock)
    async with client:
        with pytest.raises(TypeError, match=r"resilient_http\.retry"):
            await client.get(URL, extensions={"resilient_http.retry": 3})
    assert upstream.calls == 0


# -- streaming and the body phase -------------------------------------------------------------


class Body:
    """A streamed response body: yields ``chunks``, then raises ``error`` if given.
    ``gate`` (if set) must be released before the second chunk. ``body()``
    builds it as the binding's kind of stream."""

    def __init__(
        self,
        chunks: Sequence[bytes],
        error: Exception | None = None,
        gate: Any = None,
    ) -> None:
        self.chunks = chunks
        self.error = error
        self.gate = gate
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for n, chunk in enumerate(self.chunks):
            if n == 1 and self.gate is not None:
                self.gate.wait()
            yield chunk
        if self.error is not None:
            raise self.error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for n, chunk in enumerate(self.chunks):
            if n == 1 and self.gate is not None:
                await self.gate.wait()
            yield chunk
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def body(
    binding: Binding, chunks: Sequence[bytes], error: Exception | None = None, gate: Any = None
) -> Body:
    return native(binding, Body, "SyncByteStream", "AsyncByteStream")(chunks, error, gate)


def gate(binding: Binding) -> Any:
    """What holds a body back until the test sets it: a sync body is read in a
    worker thread, which waits on a ``threading.Event``."""
    return threading.Event() if binding.sync else anyio.Event()


def streaming(binding: Binding, make_body: Callable[[], Body], code: int = 200) -> Handler:
    return lambda request: binding.response(code, stream=make_body())


async def test_a_read_error_mid_body_is_a_failure(binding: Binding, clock: FakeClock) -> None:
    def broken() -> Body:
        return body(binding, [b"partial"], binding.http.ReadError("connection reset"))

    client, transport, _ = make(binding, clock, streaming(binding, broken))
    async with client:
        async with client.stream("GET", URL) as response:
            assert response.status_code == 200
            assert transport.breaker(URL).state is CLOSED  # the verdict waits for the body
            with pytest.raises(binding.http.ReadError):
                await response.aread()
        assert transport.breaker(URL).state is OPEN
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get(URL)


async def test_a_timeout_mid_body_is_a_failure(binding: Binding, clock: FakeClock) -> None:
    def stalled() -> Body:
        return body(binding, [b"a", b"b"], binding.http.ReadTimeout("stalled"))

    client, transport, _ = make(binding, clock, streaming(binding, stalled))
    async with client:
        with pytest.raises(binding.http.ReadTimeout):
            await client.get(URL)
    assert transport.breaker(URL).state is OPEN


async def test_a_streamed_body_read_in_full_is_a_success(
    binding: Binding, clock: FakeClock
) -> None:
    client, transport, _ = make(
        binding,
        clock,
        streaming(binding, lambda: body(binding, [b"a", b"b", b"c"])),
        default=policy(threshold=2),
    )
    breaker = transport.breaker(URL)
    fail(breaker)
    async with client:
        async with client.stream("GET", URL) as response:
            assert breaker.failure_count == 1  # pending until the body ends
            assert await response.aread() == b"abc"
        assert breaker.failure_count == 0


async def test_a_streamed_body_closed_early_is_a_success(
    binding: Binding, clock: FakeClock
) -> None:
    bodies: list[Body] = []

    def handler(request: Any) -> Any:
        bodies.append(body(binding, [b"a", b"b"]))
        return binding.response(200, stream=bodies[-1])

    client, transport, _ = make(binding, clock, handler, default=policy(threshold=2))
    breaker = transport.breaker(URL)
    fail(breaker)
    async with client:
        async with client.stream("GET", URL):
            pass
    assert bodies[0].closed
    assert breaker.failure_count == 0


async def test_a_response_built_with_content_records_success_at_once(
    binding: Binding, clock: FakeClock
) -> None:
    """MockTransport responses arrive already read and closed: the verdict must
    not wait for a body end that never comes."""
    answers = [503, 200, 503]

    def handler(request: Any) -> Any:
        return binding.response(answers.pop(0), content=b"in memory")

    client, transport, _ = make(binding, clock, handler, default=policy(threshold=2))
    async with client:
        await client.get(URL)
        assert transport.breaker(URL).failure_count == 1
        await client.get(URL)
        assert transport.breaker(URL).failure_count == 0
        await client.get(URL)
    assert transport.breaker(URL).state is CLOSED  # 503, 200, 503 is never two in a row


async def test_success_bodies_stream_through_without_being_buffered(
    binding: Binding, clock: FakeClock
) -> None:
    held = gate(binding)
    client, _, _ = make(
        binding, clock, streaming(binding, lambda: body(binding, [b"first", b"second"], gate=held))
    )
    async with client:
        async with client.stream("GET", URL) as response:
            chunks = response.aiter_bytes()
            # the first chunk arrives while the upstream is still holding the second
            assert await chunks.__anext__() == b"first"
            held.set()
            assert [c async for c in chunks] == [b"second"]


async def test_a_probe_is_judged_by_its_status_line(binding: Binding, clock: FakeClock) -> None:
    held = gate(binding)
    client, transport, _ = make(
        binding, clock, streaming(binding, lambda: body(binding, [b"a", b"b"], gate=held))
    )
    async with client:
        trip(transport)
        clock.advance(30)
        async with client.stream("GET", URL) as response:
            assert response.status_code == 200
            assert transport.breaker(URL).state is CLOSED  # without waiting for the body
            held.set()
            await response.aread()


# -- events and logging ------------------------------------------------------------------------


SECRET_URL = "https://alice:hunter2@api.example.com/v1/items?token=s3cret&page=2"
SECRETS = ("alice", "hunter2", "s3cret", "token", "Bearer", "t0psecret", "/v1/items", "page=2")


async def run_a_whole_outage(
    binding: Binding, clock: FakeClock, listeners: Sequence[Callable[[Event], object]] = ()
) -> None:
    healthy = False

    def handler(request: Any) -> Any:
        return binding.response(200 if healthy else 503, headers={"Set-Cookie": "sid=t0psecret"})

    client, transport, _ = make(
        binding, clock, handler, default=policy(threshold=2, attempts=3), listeners=listeners
    )
    transport.fallback("api.example.com", tagged(binding, "fallback"))
    headers = {"Authorization": "Bearer t0psecret", "Idempotency-Key": "t0psecret"}
    async with client:
        await client.get(SECRET_URL, headers=headers)  # retried, then opens
        await client.get(SECRET_URL, headers=headers)  # rejected: fallback
        clock.advance(30)
        healthy = True
        await client.get(SECRET_URL, headers=headers)  # probe closes


async def test_logging_warns_on_open_and_informs_on_close(
    binding: Binding, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="resilient_http")
    await run_a_whole_outage(binding, clock)
    records = [r for r in caplog.records if r.name == "resilient_http"]
    opened = [r for r in records if " opened (was " in r.getMessage()]
    closed = [r for r in records if " closed (was " in r.getMessage()]
    assert [r.levelno for r in opened] == [logging.WARNING]
    assert [r.levelno for r in closed] == [logging.INFO]
    assert "api.example.com:443" in opened[0].getMessage()
    assert "api.example.com:443" in closed[0].getMessage()


async def test_no_query_userinfo_or_header_value_in_any_log_record(
    binding: Binding, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="resilient_http")
    await run_a_whole_outage(binding, clock)
    records = [r for r in caplog.records if r.name.startswith("resilient_http")]
    assert len(records) >= 3  # retry, open, half-open, close were all logged
    for record in records:
        text = record.getMessage() + repr(record.args)
        for secret in SECRETS:
            assert secret not in text, (secret, text)


async def test_events_report_changes_retries_rejections_and_fallbacks(
    binding: Binding, clock: FakeClock
) -> None:
    events: list[Event] = []
    await run_a_whole_outage(binding, clock, listeners=[events.append])
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


async def test_a_raising_listener_never_breaks_the_request(
    binding: Binding, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def listener(event: Event) -> None:
        raise RuntimeError("listener bug")

    client, _, _ = make(binding, clock, listeners=[listener])
    async with client:
        response = await client.get(URL)
    assert response.status_code == 200
    assert any("listener" in r.getMessage() for r in caplog.records if r.name == "resilient_http")
