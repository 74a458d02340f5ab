"""The README's contract ("How it decides", "Fallbacks and errors", "Manual
control and health"), checked on every binding from this one source: httpx and
httpx2, async on asyncio and trio, sync in worker threads.

Pure decisions run over the binding's ``MockTransport``; what involves sockets,
streams or connection pools runs against the real loopback server.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import pytest
import tenacity

from resilient_http import (
    BreakerPolicy,
    CircuitState,
    Event,
    Policy,
    RetryBudget,
    RetryPolicy,
    StaleCache,
    StateChanged,
)
from resilient_http.testing import FakeClock, isolated

from ..bindings import Binding
from ..server import LiveServer

URL = "https://api.example.com/items"
KEY = "api.example.com:443"

TRIP_AT_2 = Policy(
    breaker=BreakerPolicy(failure_threshold=2, recovery_timeout=30), retry=RetryPolicy(attempts=1)
)


class Upstream:
    """A scripted upstream: answers ``statuses`` in turn (the last one repeats),
    or raises ``errors`` first; counts what reached it."""

    def __init__(self, binding: Binding, *statuses: int, **headers: str) -> None:
        self.binding = binding
        self.statuses = list(statuses) or [200]
        self.headers = headers
        self.errors: list[Exception] = []
        self.requests: list[Any] = []

    def __call__(self, request: Any) -> Any:
        self.requests.append(request)
        if self.errors:
            raise self.errors.pop(0)
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return self.binding.response(status, headers=self.headers, text=f"status {status}")

    @property
    def hits(self) -> int:
        return len(self.requests)


def build(binding: Binding, upstream: Upstream, clock: FakeClock, **kwargs: Any) -> Any:
    kwargs.setdefault("policy", TRIP_AT_2)
    return binding.transport(binding.mock(upstream), clock=clock, sleep=clock.sleep, **kwargs)


# -- the breaker key and what counts ---------------------------------------------------


async def test_one_breaker_per_authority(binding: Binding, clock: FakeClock) -> None:
    """README, How it decides: host and port, lower-cased, default port filled in."""
    transport = build(binding, Upstream(binding, 200), clock)
    async with binding.client(transport) as client:
        await client.get("https://API.example.com/")
        await client.get("https://api.example.com:443/x")
        await client.get("http://a.example.com:8080/")
        await client.get("http://a.example.com:9090/")
    assert sorted(transport.snapshot()) == sorted([KEY, "a.example.com:8080", "a.example.com:9090"])


async def test_5xx_timeouts_and_network_errors_count_4xx_and_caller_errors_do_not(
    binding: Binding, clock: FakeClock
) -> None:
    http = binding.http
    upstream = Upstream(binding, 404, 404, 404, 500)
    transport = build(binding, upstream, clock)
    breaker = transport.breaker(URL)
    async with binding.client(transport) as client:
        for _ in range(3):
            assert (await client.get(URL)).status_code == 404
        assert breaker.failure_count == 0
        assert (await client.get(URL)).status_code == 500
        assert breaker.failure_count == 1
        upstream.errors = [http.ReadTimeout("slow")]
        with pytest.raises(http.ReadTimeout):
            await client.get(URL)
        assert breaker.state is CircuitState.OPEN  # 500 + timeout: threshold 2
        transport.breaker(URL).reset()
        upstream.errors = [http.UnsupportedProtocol("caller's fault")]
        with pytest.raises(http.UnsupportedProtocol):
            await client.get(URL)
        assert breaker.failure_count == 0
        upstream.errors = [http.ConnectError("refused")]
        with pytest.raises(http.ConnectError):
            await client.get(URL)
        assert breaker.failure_count == 1


async def test_a_success_resets_the_consecutive_count(binding: Binding, clock: FakeClock) -> None:
    upstream = Upstream(binding, 500, 200, 500, 200)
    transport = build(binding, upstream, clock)
    async with binding.client(transport) as client:
        for _ in range(4):
            await client.get(URL)
    assert transport.breaker(URL).state is CircuitState.CLOSED


# -- open: rejected at once -------------------------------------------------------------


async def test_an_open_circuit_rejects_without_touching_the_upstream(
    binding: Binding, clock: FakeClock
) -> None:
    upstream = Upstream(binding, 503)
    transport = build(binding, upstream, clock)
    async with binding.client(transport) as client:
        for _ in range(2):
            assert (await client.get(URL)).status_code == 503
        with pytest.raises(binding.api.CircuitOpenError) as caught:
            await client.get(URL)
    assert upstream.hits == 2
    error = caught.value
    assert isinstance(error, binding.http.TransportError)  # the binding's own httpx
    assert error.host == KEY
    assert error.retry_after == pytest.approx(30)


async def test_half_open_probes_then_closes_or_reopens(binding: Binding, clock: FakeClock) -> None:
    upstream = Upstream(binding, 503, 503, 503, 200)
    transport = build(binding, upstream, clock)
    breaker = transport.breaker(URL)
    async with binding.client(transport) as client:
        await client.get(URL)
        await client.get(URL)
        clock.advance(30)
        assert breaker.state is CircuitState.HALF_OPEN
        assert (await client.get(URL)).status_code == 503  # the probe fails: open again
        assert breaker.state is CircuitState.OPEN
        assert breaker.retry_after == pytest.approx(30)
        clock.advance(30)
        assert (await client.get(URL)).status_code == 200
    assert breaker.state is CircuitState.CLOSED
    assert upstream.hits == 4


# -- retries ----------------------------------------------------------------------------

RETRY3 = Policy(
    breaker=BreakerPolicy(failure_threshold=10),
    retry=RetryPolicy(attempts=3, wait=tenacity.wait_exponential(multiplier=0.1, max=1.0)),
)


async def test_idempotent_requests_are_retried_others_are_not(
    binding: Binding, clock: FakeClock
) -> None:
    upstream = Upstream(binding, 503)
    transport = build(binding, upstream, clock, policy=RETRY3)
    async with binding.client(transport) as client:
        assert (await client.get(URL)).status_code == 503
        assert upstream.hits == 3
        assert (await client.post(URL, content=b"x")).status_code == 503
        assert upstream.hits == 4
        keyed = await client.post(URL, content=b"x", headers={"Idempotency-Key": "k1"})
        assert keyed.status_code == 503
        assert upstream.hits == 7
        assert clock.sleeps == [0.1, 0.2, 0.1, 0.2]


async def test_a_streamed_request_body_is_never_replayed(
    binding: Binding, clock: FakeClock
) -> None:
    upstream = Upstream(binding, 503)
    transport = build(binding, upstream, clock, policy=RETRY3)

    if binding.sync:

        def body() -> Any:
            yield b"chunk"

    else:

        async def body() -> Any:
            yield b"chunk"

    async with binding.client(transport) as client:
        response = await client.put(URL, content=body())
    assert response.status_code == 503
    assert upstream.hits == 1


async def test_retry_after_is_honoured_and_a_long_one_ends_the_retries(
    binding: Binding, clock: FakeClock
) -> None:
    upstream = Upstream(binding, 503, 503, 200, **{"Retry-After": "2"})
    transport = build(binding, upstream, clock, policy=RETRY3)
    async with binding.client(transport) as client:
        assert (await client.get(URL)).status_code == 200
        assert clock.sleeps == [2.0, 2.0]
        upstream.statuses = [503]
        upstream.headers = {"Retry-After": "3600"}
        response = await client.get(URL)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "3600"
    assert clock.sleeps == [2.0, 2.0]  # nothing slept for the hour


async def test_a_malformed_retry_after_falls_back_to_the_backoff(
    binding: Binding, clock: FakeClock
) -> None:
    upstream = Upstream(binding, 503, 200, **{"Retry-After": "soon, maybe"})
    transport = build(binding, upstream, clock, policy=RETRY3)
    async with binding.client(transport) as client:
        assert (await client.get(URL)).status_code == 200
    assert clock.sleeps == [0.1]


async def test_no_retry_and_no_sleep_once_the_circuit_opens(
    binding: Binding, clock: FakeClock
) -> None:
    """README, How it decides: the breaker is consulted before each backoff sleep and retry."""
    upstream = Upstream(binding, 503)
    policy = Policy(
        breaker=BreakerPolicy(failure_threshold=2),
        retry=RetryPolicy(attempts=5, wait=tenacity.wait_fixed(0.1)),
    )
    events: list[Event] = []
    transport = build(binding, upstream, clock, policy=policy, listeners=[events.append])
    async with binding.client(transport) as client:
        response = await client.get(URL)
    assert response.status_code == 503  # the last real outcome, readable
    assert response.text == "status 503"
    assert upstream.hits == 2
    assert clock.sleeps == [0.1]
    assert [type(e).__name__ for e in events].count("RetryScheduled") == 1


async def test_the_retry_budget_caps_retries(binding: Binding, clock: FakeClock) -> None:
    upstream = Upstream(binding, 503)
    policy = Policy(
        breaker=BreakerPolicy(failure_threshold=1000),
        retry=RetryPolicy(
            attempts=3,
            wait=tenacity.wait_none(),
            budget=RetryBudget(ratio=0.2, min_per_second=0, window=10),
        ),
    )
    transport = build(binding, upstream, clock, policy=policy)
    async with binding.client(transport) as client:
        for _ in range(20):
            await client.get(URL)
    retries = upstream.hits - 20
    assert 0 < retries <= 0.2 * 20 + 1


# -- fallbacks and the stale cache --------------------------------------------------------


async def test_a_registered_fallback_answers_an_open_circuit(
    binding: Binding, clock: FakeClock
) -> None:
    upstream = Upstream(binding, 503)
    transport = build(binding, upstream, clock)
    seen: list[Any] = []

    def cached(request: Any, error: Any) -> Any:
        seen.append(error)
        return binding.response(200, json={"cached": True})

    transport.fallback("*.example.com", cached)

    async with binding.client(transport) as client:
        await client.get(URL)
        await client.get(URL)
        response = await client.get(URL)
    assert response.json() == {"cached": True}
    assert response.extensions["resilient_http.fallback"] == "circuit_open"
    assert isinstance(seen[0], binding.api.CircuitOpenError)
    assert upstream.hits == 2


async def test_service_unavailable_tells_sdks_not_to_retry(
    binding: Binding, clock: FakeClock
) -> None:
    transport = build(binding, Upstream(binding, 503), clock)
    transport.fallback("api.example.com", binding.api.service_unavailable)
    async with binding.client(transport) as client:
        await client.get(URL)
        await client.get(URL)
        clock.advance(0.5)
        response = await client.get(URL)
    assert isinstance(response, binding.http.Response) or isinstance(
        getattr(response, "sync", None), binding.http.Response
    )
    assert response.status_code == 503
    assert response.headers["x-should-retry"] == "false"
    assert response.headers["Retry-After"] == "30"
    assert json.loads(response.content)["host"] == KEY


async def test_a_fallback_that_raises_propagates_and_leaves_the_breaker_alone(
    binding: Binding, clock: FakeClock
) -> None:
    transport = build(binding, Upstream(binding, 503), clock)
    breaker = transport.breaker(URL)
    breaker.force_open()

    def broken(request: Any, error: Any) -> Any:
        raise LookupError("no cached copy")

    transport.fallback("api.example.com", broken)
    async with binding.client(transport) as client:
        with pytest.raises(LookupError):
            await client.get(URL)
    assert breaker.state is CircuitState.OPEN
    assert breaker.forced is CircuitState.OPEN


async def test_a_fallback_must_be_callable_and_return_a_response(
    binding: Binding, clock: FakeClock
) -> None:
    transport = build(binding, Upstream(binding, 503), clock)
    with pytest.raises(TypeError, match="must be callable"):
        transport.fallback("api.example.com", "not a function")
    transport.fallback("api.example.com", lambda request, error: "not a response")
    transport.breaker(URL).force_open()
    async with binding.client(transport) as client:
        with pytest.raises(TypeError, match=r"expected .*Response"):
            await client.get(URL)


async def test_the_stale_cache_answers_a_rejected_get(binding: Binding, clock: FakeClock) -> None:
    upstream = Upstream(binding, 200, 503, 503)
    transport = build(binding, upstream, clock, stale_cache=StaleCache(max_age=60))
    async with binding.client(transport) as client:
        fresh = await client.get(URL)
        assert fresh.text == "status 200"
        await client.get(URL)
        await client.get(URL)
        clock.advance(5)
        stale = await client.get(URL)
    assert stale.status_code == 200
    assert stale.text == "status 200"
    assert stale.headers["Age"] == "5"
    assert stale.extensions["resilient_http.fallback"] == "circuit_open"
    assert upstream.hits == 3


# -- listeners, logging, snapshot, manual control -------------------------------------------


async def test_listeners_hear_cause_before_effect_and_logs_name_only_the_host(
    binding: Binding, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Event] = []
    transport = build(binding, Upstream(binding, 503), clock, listeners=[events.append])
    caplog.set_level(logging.DEBUG, logger="resilient_http")
    async with binding.client(transport) as client:
        await client.get("https://user:secret@api.example.com/items?token=abc")
        await client.get("https://api.example.com/items?token=abc")
    names = [type(e).__name__ for e in events]
    assert names == ["AttemptFinished", "AttemptFinished", "StateChanged"]
    changed = events[-1]
    assert isinstance(changed, StateChanged)
    assert (changed.host, changed.new) == (KEY, CircuitState.OPEN)
    text = caplog.text
    assert "opened" in text
    assert KEY in text
    assert "token" not in text
    assert "secret" not in text


async def test_snapshot_and_manual_control(binding: Binding, clock: FakeClock) -> None:
    upstream = Upstream(binding, 200)
    transport = build(binding, upstream, clock)
    breaker = transport.breaker("api.example.com:443")
    breaker.force_open()
    async with binding.client(transport) as client:
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get(URL)
        snapshot = transport.snapshot()
        assert snapshot[KEY]["state"] == "open"
        assert snapshot[KEY]["forced"] == "open"
        json.dumps(snapshot)
        breaker.reset()
        assert (await client.get(URL)).status_code == 200
    assert transport.snapshot()[KEY]["state"] == "closed"
    assert upstream.hits == 1


async def test_the_breaker_map_is_bounded(binding: Binding, clock: FakeClock) -> None:
    transport = build(binding, Upstream(binding, 200), clock, max_hosts=8)
    async with binding.client(transport) as client:
        for i in range(50):
            await client.get(f"https://host{i}.example.com/")
    assert len(transport.snapshot()) == 8


async def test_per_host_policies_most_specific_first(binding: Binding, clock: FakeClock) -> None:
    strict = Policy(breaker=BreakerPolicy(failure_threshold=1), retry=RetryPolicy(attempts=1))
    upstream = Upstream(binding, 503)
    transport = build(
        binding, upstream, clock, hosts={"*.example.com": TRIP_AT_2, "api.example.com": strict}
    )
    async with binding.client(transport) as client:
        await client.get(URL)
        await client.get("https://other.example.com/")
    assert transport.breaker(URL).state is CircuitState.OPEN
    assert transport.breaker("https://other.example.com/").state is CircuitState.CLOSED


# -- time and bad input ----------------------------------------------------------------------


async def test_isolated_gives_every_transport_fresh_breakers_and_fake_time(
    binding: Binding,
) -> None:
    upstream = Upstream(binding, 503)
    transport = binding.transport(binding.mock(upstream), policy=RETRY3)
    with isolated() as clock:
        async with binding.client(transport) as client:
            await client.get(URL)
        assert clock.sleeps == [0.1, 0.2]
    assert transport.snapshot() == {}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_hosts": 0}, "max_hosts"),
        ({"policy": "strict"}, "policy must be a Policy"),
        ({"hosts": {"*.": Policy()}}, "hosts pattern"),
        ({"clock": 3}, "clock must be callable"),
        ({"listeners": [42]}, "listeners must be callables"),
    ],
)
async def test_bad_settings_fail_at_construction(
    binding: Binding, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        binding.transport(binding.mock(lambda request: binding.response()), **kwargs)


async def test_the_wrong_kind_of_inner_transport_is_named(binding: Binding) -> None:
    other = binding.http.AsyncHTTPTransport() if binding.sync else binding.http.HTTPTransport()
    with pytest.raises(TypeError, match="transport must be"):
        binding.transport(other)


# -- real sockets: streaming, pools, the body phase, deadlines, bulkheads ---------------------


async def test_a_streamed_success_passes_through_unbuffered(
    binding: Binding, live: LiveServer
) -> None:
    """README, How it decides: the body is neither read nor buffered on the success path."""
    transport = binding.transport(binding.inner_http())
    async with binding.client(transport) as client:
        async with client.stream("GET", f"{live.url}/sse-gated?n=3") as response:
            chunks = response.aiter_bytes()
            first = await chunks.__anext__()  # arrives while the server holds the rest
            assert first == b"data: 0\n\n"
            live.state.gate.set()
            rest = [chunk async for chunk in chunks]
    assert b"".join(rest) == b"data: 1\n\ndata: 2\n\n"
    assert transport.breaker(live.url).calls_in_flight == 0


async def test_retries_close_what_they_discard_so_a_pool_of_one_does_not_leak(
    binding: Binding, live: LiveServer
) -> None:
    limits = binding.http.Limits(max_connections=1)
    policy = Policy(
        breaker=BreakerPolicy(failure_threshold=100),
        retry=RetryPolicy(attempts=3, wait=tenacity.wait_none()),
    )
    transport = binding.transport(binding.inner_http(limits=limits), policy=policy)
    async with binding.client(transport, timeout=binding.http.Timeout(5, pool=1)) as client:
        for _ in range(3):
            response = await client.get(f"{live.url}/status/503")
            assert response.status_code == 503
    assert live.state.hits["/status/503"] == 9


async def test_a_body_that_breaks_counts_against_the_host(
    binding: Binding, live: LiveServer
) -> None:
    policy = Policy(breaker=BreakerPolicy(failure_threshold=1), retry=RetryPolicy(attempts=1))
    transport = binding.transport(binding.inner_http(), policy=policy)
    async with binding.client(transport) as client:
        with pytest.raises(binding.http.RemoteProtocolError):
            await client.get(f"{live.url}/reset-mid-body")
    assert transport.breaker(live.url).state is CircuitState.OPEN


async def test_the_deadline_bounds_a_hung_attempt(binding: Binding, live: LiveServer) -> None:
    policy = Policy(retry=RetryPolicy(attempts=3, deadline=0.3))
    transport = binding.transport(binding.inner_http(), policy=policy)
    async with binding.client(transport, timeout=10) as client:
        started = anyio.current_time()
        with pytest.raises(binding.api.DeadlineExceeded):
            await client.get(f"{live.url}/hang")
        assert anyio.current_time() - started < 3  # the read timeout alone is 10 s
    assert isinstance(binding.api.DeadlineExceeded("x"), binding.http.TimeoutException)


async def test_a_full_bulkhead_rejects_and_frees_its_slot_at_body_end(
    binding: Binding, live: LiveServer
) -> None:
    policy = Policy(max_concurrency=1, max_wait=0)
    transport = binding.transport(binding.inner_http(), policy=policy)
    async with binding.client(transport) as client:
        async with client.stream("GET", f"{live.url}/sse-gated?n=2") as holding:
            chunks = holding.aiter_bytes()
            await chunks.__anext__()
            with pytest.raises(binding.api.BulkheadFullError):
                await client.get(f"{live.url}/status/200")
            live.state.gate.set()
            assert [chunk async for chunk in chunks] == [b"data: 1\n\n"]
        assert (await client.get(f"{live.url}/status/200")).status_code == 200


async def test_the_client_enters_and_closes_its_inner_transport(binding: Binding) -> None:
    entered: list[str] = []
    base = binding.http.BaseTransport if binding.sync else binding.http.AsyncBaseTransport

    class Inner(base):  # type: ignore[misc,valid-type]
        def handle_request(self, request: Any) -> Any:
            return binding.response(200)

        async def handle_async_request(self, request: Any) -> Any:
            return binding.response(200)

        def __enter__(self) -> Any:
            entered.append("enter")
            return self

        def __exit__(self, *args: object) -> None:
            entered.append("exit")

        async def __aenter__(self) -> Any:
            entered.append("enter")
            return self

        async def __aexit__(self, *args: object) -> None:
            entered.append("exit")

    async with binding.resilient_client(transport=Inner()) as client:
        assert (await client.get(URL)).status_code == 200
    assert entered == ["enter", "exit"]


async def test_resilient_client_guards_every_mount(binding: Binding, clock: FakeClock) -> None:
    default, mounted = Upstream(binding, 200), Upstream(binding, 503)
    client = binding.resilient_client(
        transport=binding.mock(default),
        mounts={"https://api.example.com": binding.mock(mounted)},
        policy=TRIP_AT_2,
    )
    async with client:
        await client.get(URL)
        await client.get(URL)
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get(URL)
        assert (await client.get("https://other.example.com/")).status_code == 200
    assert (mounted.hits, default.hits) == (2, 1)


async def test_resilient_client_keeps_a_30s_timeout_by_default(binding: Binding) -> None:
    client = binding.resilient_client()
    assert client.timeout.read == 30
    assert client.timeout.connect == 5
    await client.aclose()


# -- the binding's own kind ----------------------------------------------------------------


async def test_the_policy_types_are_shared_by_every_binding(binding: Binding) -> None:
    import resilient_http

    for name in ("Policy", "BreakerPolicy", "RetryPolicy", "RetryBudget", "StaleCache"):
        assert getattr(binding.api, name) is getattr(resilient_http, name)
    assert issubclass(binding.api.CircuitOpenError, binding.http.TransportError)
    assert issubclass(binding.api.BulkheadFullError, binding.api.RejectedError)
    assert issubclass(
        binding.Transport,
        binding.http.BaseTransport if binding.sync else (binding.http.AsyncBaseTransport),
    )
    assert issubclass(
        binding.Client, binding.http.Client if binding.sync else (binding.http.AsyncClient)
    )
