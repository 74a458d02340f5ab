"""The Prometheus listener's text exposition (names, labels, values,
no secrets), eviction, and ``import resilient_http`` without prometheus-client."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import textwrap
import threading
from typing import Any
from unittest import mock

import httpx
import pytest
import tenacity
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from resilient_http import (
    AttemptFinished,
    BreakerEvicted,
    BreakerPolicy,
    CallRejected,
    CircuitOpenError,
    CircuitState,
    Event,
    FallbackServed,
    Policy,
    ResilientTransport,
    RetryPolicy,
)
from resilient_http.prometheus import PrometheusMetrics
from resilient_http.testing import FakeClock

HOST = "api.example.com:443"
SECRET_URL = "https://alice:hunter2@api.example.com/v1/items?token=tok-9f8e7d&page=2"
SECRET_HEADERS = {"Authorization": "Bearer sk-live-51Habc", "X-Api-Key": "key-0c0ffee"}
SECRETS = ("alice", "hunter2", "tok-9f8e7d", "page", "sk-live-51Habc", "key-0c0ffee", "/v1/")


class Upstream:
    """Answers ``status`` after ``latency`` seconds of fake time."""

    def __init__(self, clock: FakeClock, status: int, latency: float = 0.3) -> None:
        self.clock, self.status, self.latency = clock, status, latency

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.clock.advance(self.latency)
        return httpx.Response(self.status)


def make(
    upstream: Upstream, clock: FakeClock, registry: CollectorRegistry, max_hosts: int = 1024
) -> ResilientTransport:
    transport = ResilientTransport(
        httpx.MockTransport(upstream),
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=2, recovery_timeout=10.0),
            retry=RetryPolicy(attempts=2, wait=tenacity.wait_none()),
        ),
        listeners=[PrometheusMetrics(registry)],
        clock=clock,
        sleep=clock.sleep,
        max_hosts=max_hosts,
    )

    @transport.fallback("api.example.com")
    def cached(request: httpx.Request, error: CircuitOpenError) -> httpx.Response:
        return httpx.Response(200, json={"cached": True})

    return transport


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, ``_created`` timestamps left out."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


async def test_exposition_after_a_trip(clock: FakeClock) -> None:
    registry = CollectorRegistry()
    upstream = Upstream(clock, 503)
    transport = make(upstream, clock, registry)
    async with httpx.AsyncClient(transport=transport, headers=SECRET_HEADERS) as client:
        # One call: two attempts (one retry), both 503: the circuit opens.
        assert (await client.get(SECRET_URL)).status_code == 503
        # Open: rejected and answered by the fallback.
        assert (await client.get(SECRET_URL)).json() == {"cached": True}

    text = generate_latest(registry).decode()
    for secret in SECRETS:
        assert secret not in text
    host = (("host", HOST),)
    got = samples(registry)
    assert got[("resilient_http_circuit_state", host)] == 1.0
    assert got[("resilient_http_circuit_opened_total", host)] == 1.0
    assert got[("resilient_http_retries_total", host)] == 1.0
    requests = {
        dict(labels)["outcome"]: value
        for (name, labels), value in got.items()
        if name == "resilient_http_requests_total"
    }
    assert requests == {"failure": 2.0, "rejected": 1.0, "fallback": 1.0}
    # Two attempts of 0.3 s each (fake time).
    assert got[("resilient_http_request_duration_seconds_count", host)] == 2.0
    assert abs(got[("resilient_http_request_duration_seconds_sum", host)] - 0.6) < 1e-9
    assert got[("resilient_http_request_duration_seconds_bucket", (*host, ("le", "0.25")))] == 0
    assert got[("resilient_http_request_duration_seconds_bucket", (*host, ("le", "0.5")))] == 2
    # Only the documented label names, and the host label is the breaker key.
    for name, labels in got:
        keys = {k for k, _ in labels}
        assert keys <= {"host", "outcome", "le"}, name
        assert dict(labels)["host"] == HOST


async def test_gauge_follows_half_open_and_close(clock: FakeClock) -> None:
    registry = CollectorRegistry()
    upstream = Upstream(clock, 503)
    transport = make(upstream, clock, registry)
    state = ("resilient_http_circuit_state", (("host", HOST),))
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/")
        assert samples(registry)[state] == 1.0
        clock.advance(10)
        assert transport.breaker(HOST).state is CircuitState.HALF_OPEN
        assert samples(registry)[state] == 1.0  # a read moves nothing: the probe will
        probe = transport.breaker(HOST).admit()  # a probe slot, taken by hand
        assert probe is not None
        assert samples(registry)[state] == 2.0
        transport.breaker(HOST).on_ignored(probe)
        upstream.status = 200
        await client.get("https://api.example.com/")
    got = samples(registry)
    assert got[state] == 0.0
    assert got[("resilient_http_circuit_opened_total", (("host", HOST),))] == 1.0
    assert got[("resilient_http_requests_total", (("host", HOST), ("outcome", "success")))] == 1


async def test_a_healthy_host_appears_closed(clock: FakeClock) -> None:
    registry = CollectorRegistry()
    transport = make(Upstream(clock, 200, latency=0.001), clock, registry)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/")
    got = samples(registry)
    assert got[("resilient_http_circuit_state", (("host", HOST),))] == 0.0
    assert got[("resilient_http_requests_total", (("host", HOST), ("outcome", "success")))] == 1


async def test_evicted_hosts_leave_every_series(clock: FakeClock) -> None:
    registry = CollectorRegistry()
    upstream = Upstream(clock, 503)
    transport = make(upstream, clock, registry, max_hosts=1)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://old.example.com/")  # two failures: opens, kept in the map
        transport.breaker("old.example.com").reset()  # closed and idle again: evictable
        upstream.status = 200
        await client.get("https://new.example.com/")  # the map overflows: old is evicted

    assert list(transport.snapshot()) == ["new.example.com:443"]
    text = generate_latest(registry).decode()
    assert "old.example.com" not in text
    hosts = {dict(labels)["host"] for _, labels in samples(registry)}
    assert hosts == {"new.example.com:443"}


def test_import_resilient_http_without_prometheus_client() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["prometheus_client"] = None  # as if it were not installed
        import resilient_http
        assert "prometheus_client" not in {m for m, v in sys.modules.items() if v is not None}
        client = resilient_http.ResilientClient()
        try:
            import resilient_http.prometheus
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("imported resilient_http.prometheus without prometheus_client")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'resilient-http[prometheus]'" in result.stdout


def test_attempts_counted_from_racing_threads_are_all_there() -> None:
    """A sync transport calls its listeners from every calling thread: no
    attempt may be lost between them."""
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry=registry)
    start = threading.Barrier(8)

    def record() -> None:
        start.wait()
        for i in range(2_000):
            metrics(AttemptFinished("api.example.com:443", "GET", "success", i / 1e4, 200, None))

    threads = [threading.Thread(target=record) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = samples(registry)
    host = (("host", "api.example.com:443"),)
    assert got[("resilient_http_requests_total", (*host, ("outcome", "success")))] == 16_000
    assert got[("resilient_http_request_duration_seconds_count", host)] == 16_000
    # i / 1e4 <= 0.1 for i <= 1000: 1,001 of each thread's 2,000
    assert got[("resilient_http_request_duration_seconds_bucket", (*host, ("le", "0.1")))] == 8_008


@pytest.mark.parametrize("after", ["_series", "add"])
def test_an_eviction_between_an_attempts_row_and_series_leaves_both_whole(after: str) -> None:
    """Another thread evicts the host while a first attempt is being counted
    (after either of its two steps): the next attempt still has the host's
    state series and its count."""
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry=registry)
    host = "api.example.com:443"
    owner: Any = metrics if after == "_series" else metrics._attempts
    step = getattr(owner, after)

    def then_evict(*args: Any) -> Any:
        result = step(*args)
        setattr(owner, after, step)  # once
        metrics(BreakerEvicted(host))
        return result

    setattr(owner, after, then_evict)
    metrics(AttemptFinished(host, "GET", "success", 0.01, 200, None))
    metrics(AttemptFinished(host, "GET", "success", 0.01, 200, None))
    got = samples(registry)
    assert got[("resilient_http_circuit_state", (("host", host),))] == 0
    assert got[("resilient_http_requests_total", (("host", host), ("outcome", "success")))] == 1


def test_custom_buckets_get_their_inf_bucket_and_must_be_sorted() -> None:
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry=registry, buckets=[0.5, 2])
    metrics(AttemptFinished("a:443", "GET", "failure", 1.0, 503, None))
    got = samples(registry)
    host = (("host", "a:443"),)
    bucket = "resilient_http_request_duration_seconds_bucket"
    assert got[(bucket, (*host, ("le", "0.5")))] == 0
    assert got[(bucket, (*host, ("le", "2.0")))] == 1
    assert got[(bucket, (*host, ("le", "+Inf")))] == 1
    assert got[("resilient_http_request_duration_seconds_sum", host)] == 1.0
    with pytest.raises(ValueError, match="increasing"):
        PrometheusMetrics(registry=CollectorRegistry(), buckets=[2, 0.5])
    with pytest.raises(ValueError, match="at least one"):
        PrometheusMetrics(registry=CollectorRegistry(), buckets=[])


def test_every_path_of_an_attempt_lands_in_the_same_series() -> None:
    """A host's first attempt, the later ones, ignored ones, one without a
    duration, rejected calls, and the host's return after its eviction."""
    registry = CollectorRegistry()
    metrics = PrometheusMetrics(registry=registry, buckets=[0.1, 1])
    host = (("host", "a:443"),)

    def attempt(outcome: str, duration: float | None) -> None:
        metrics(AttemptFinished("a:443", "GET", outcome, duration, None, None))  # type: ignore[arg-type]

    def got() -> dict[str, float]:
        return {
            name.removeprefix("resilient_http_") + "".join(f"/{v}" for _, v in labels[1:]): value
            for (name, labels), value in samples(registry).items()
            if name.startswith(("resilient_http_requests", "resilient_http_request_duration"))
        }

    attempt("ignored", 0.5)  # a first sight ignored: the host appears, counted nowhere
    assert got() == {
        "request_duration_seconds_bucket/0.1": 0,
        "request_duration_seconds_bucket/1.0": 0,
        "request_duration_seconds_bucket/+Inf": 0,
        "request_duration_seconds_count": 0,
        "request_duration_seconds_sum": 0,
    }
    assert samples(registry)[("resilient_http_circuit_state", host)] == 0
    attempt("success", 0.05)
    attempt("failure", 0.1)  # on a bound: its bucket
    attempt("failure", 5.0)
    attempt("success", float("inf"))
    attempt("ignored", 0.5)
    attempt("success", None)  # no duration: counted, in no bucket
    metrics(CallRejected("a:443", "GET", "circuit_open", 1.0))
    metrics(FallbackServed("a:443", "GET", "circuit_open", "fallback"))
    metrics(CallRejected("a:443", "GET", "bulkhead_full", 0.0))
    assert got() == {
        "requests_total/success": 3,
        "requests_total/failure": 2,
        "requests_total/rejected": 2,
        "requests_total/fallback": 1,
        "request_duration_seconds_bucket/0.1": 2,
        "request_duration_seconds_bucket/1.0": 2,
        "request_duration_seconds_bucket/+Inf": 4,
        "request_duration_seconds_count": 4,
        "request_duration_seconds_sum": float("inf"),
    }
    metrics(BreakerEvicted("a:443"))
    assert got() == {}
    attempt("failure", 2.0)  # back: from zero
    assert got() == {
        "requests_total/failure": 1,
        "request_duration_seconds_bucket/0.1": 0,
        "request_duration_seconds_bucket/1.0": 0,
        "request_duration_seconds_bucket/+Inf": 1,
        "request_duration_seconds_count": 1,
        "request_duration_seconds_sum": 2.0,
    }


# -- an attempt's fields, without the event ------------------------------------------


def _scenario_transport(
    listeners: list[Any], outcomes: list[int | type[httpx.RequestError]]
) -> ResilientTransport:
    """A transport whose upstream answers each status (or raises each error) in
    turn, 0.3 s each on a fake clock of its own."""
    answers = iter(outcomes)
    clock = FakeClock()

    def upstream(request: httpx.Request) -> httpx.Response:
        clock.advance(0.3)
        answer = next(answers)
        if isinstance(answer, int):
            return httpx.Response(answer)
        raise answer("upstream", request=request)

    return ResilientTransport(
        httpx.MockTransport(upstream),
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=3, recovery_timeout=10.0),
            retry=RetryPolicy(attempts=1),
        ),
        listeners=listeners,
        clock=clock,
        sleep=clock.sleep,
        max_hosts=1,
    )


#: Every verdict an attempt can get: success, a 5xx, a network error, a caller's
#: error (ignored), and a 4xx (a success to the breaker); the last one's host is
#: another one, which evicts the first from the bounded breaker map.
_SCENARIO: list[int | type[httpx.RequestError]] = [
    200,
    503,
    httpx.ConnectError,
    httpx.UnsupportedProtocol,
    404,
    200,
]


async def _run_scenario(transport: ResilientTransport) -> None:
    async with httpx.AsyncClient(transport=transport) as client:
        for url in ["https://api.example.com/"] * 5 + ["https://other.example.com/"]:
            with contextlib.suppress(httpx.HTTPError):
                await client.get(url)


async def test_the_metrics_are_the_same_whether_events_are_built_or_not() -> None:
    """With ``PrometheusMetrics`` as its only listener, a transport hands it each
    attempt's fields instead of an ``AttemptFinished``; with another listener
    beside it, the event. The exposition is the same either way."""
    alone, beside = CollectorRegistry(), CollectorRegistry()
    seen: list[Event] = []
    await _run_scenario(_scenario_transport([PrometheusMetrics(alone)], list(_SCENARIO)))
    await _run_scenario(
        _scenario_transport([PrometheusMetrics(beside), seen.append], list(_SCENARIO))
    )
    outcomes = [e.outcome for e in seen if isinstance(e, AttemptFinished)]
    assert outcomes == ["success", "failure", "failure", "ignored", "success", "success"]
    assert samples(alone) == samples(beside)
    requests = {
        (dict(labels)["host"], dict(labels)["outcome"]): value
        for (name, labels), value in samples(alone).items()
        if name == "resilient_http_requests_total"
    }
    assert requests == {("other.example.com:443", "success"): 1.0}  # the first host evicted


async def test_no_event_is_built_when_prometheus_listens_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The point of the fields: building an event costs several microseconds per
    attempt, for nobody. Any other listener beside it gets its events."""
    built: list[AttemptFinished] = []

    class Counted(AttemptFinished):
        def __init__(self, *fields: Any) -> None:
            built.append(self)
            super().__init__(*fields)

    monkeypatch.setattr("resilient_http._async._transport.AttemptFinished", Counted)
    registry = CollectorRegistry()
    await _run_scenario(_scenario_transport([PrometheusMetrics(registry)], list(_SCENARIO)))
    assert built == []
    assert (
        samples(registry)[
            (
                "resilient_http_requests_total",
                (("host", "other.example.com:443"), ("outcome", "success")),
            )
        ]
        == 1.0
    )
    seen: list[Event] = []
    await _run_scenario(
        _scenario_transport([PrometheusMetrics(CollectorRegistry()), seen.append], list(_SCENARIO))
    )
    assert len(built) == 6
    assert [e for e in seen if isinstance(e, AttemptFinished)] == built


async def test_a_subclass_with_its_own_call_gets_every_event() -> None:
    """A ``PrometheusMetrics`` subclass that looks at events in its ``__call__``
    gets each ``AttemptFinished``; one that does not, counts the same."""
    seen: list[Event] = []

    class Watching(PrometheusMetrics):
        def __call__(self, event: Event) -> None:
            seen.append(event)
            super().__call__(event)

    class Renamed(PrometheusMetrics):
        pass

    watched, renamed = CollectorRegistry(), CollectorRegistry()
    await _run_scenario(_scenario_transport([Watching(watched)], list(_SCENARIO)))
    await _run_scenario(_scenario_transport([Renamed(renamed)], list(_SCENARIO)))
    assert len([e for e in seen if isinstance(e, AttemptFinished)]) == 6
    assert samples(watched) == samples(renamed)
    assert (
        samples(renamed)[
            (
                "resilient_http_requests_total",
                (("host", "other.example.com:443"), ("outcome", "success")),
            )
        ]
        == 1.0
    )


async def test_metrics_that_raise_on_an_attempts_fields_are_logged_and_the_call_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(PrometheusMetrics):
        def _resilient_http_attempt_finished(self, *fields: Any) -> None:
            raise RuntimeError("metrics bug")

    transport = _scenario_transport(
        [Broken(CollectorRegistry()), Broken(CollectorRegistry())], [200]
    )
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(SECRET_URL, headers=SECRET_HEADERS)).status_code == 200
    errors = [
        r for r in caplog.records if r.name == "resilient_http" and r.levelno >= logging.ERROR
    ]
    assert len(errors) == 2  # each listener's, the first not stopping the second
    assert all(r.exc_info is not None and type(r.exc_info[1]) is RuntimeError for r in errors)
    for record in errors:
        assert all(secret not in record.getMessage() for secret in SECRETS)


@pytest.mark.parametrize("backend", ["prometheus", "otel"])
async def test_a_call_method_patched_before_the_client_is_built_gets_every_event(
    backend: str,
) -> None:
    """As the README says of any listener: ``__call__`` patched on the class (a
    spy, a replacement) before the client is built is what gets the events,
    ``AttemptFinished`` included; the fields are for the method as shipped."""
    from resilient_http.otel import OpenTelemetryMetrics

    metrics: Any = PrometheusMetrics if backend == "prometheus" else OpenTelemetryMetrics

    def make() -> Any:
        return PrometheusMetrics(CollectorRegistry()) if backend == "prometheus" else metrics()

    def attempts(events: list[Any]) -> int:
        return sum(type(event) is AttemptFinished for event in events)

    with mock.patch.object(metrics, "__call__", autospec=True, side_effect=metrics.__call__) as spy:
        await _run_scenario(_scenario_transport([make()], list(_SCENARIO)))
    assert attempts([call.args[1] for call in spy.call_args_list]) == len(_SCENARIO)
    heard: list[Event] = []
    with mock.patch.object(metrics, "__call__", lambda self, event: heard.append(event)):
        await _run_scenario(_scenario_transport([make()], list(_SCENARIO)))
    assert attempts(heard) == len(_SCENARIO)
