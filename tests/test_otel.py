"""The OpenTelemetry listener, read back through the SDK's in-memory
reader, and ``import resilient_http`` without OpenTelemetry."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import tenacity

# The tox "types" env installs opentelemetry-api only: there the SDK is untyped.
from opentelemetry.sdk.metrics import MeterProvider  # type: ignore[import-not-found,unused-ignore]
from opentelemetry.sdk.metrics.export import (  # type: ignore[import-not-found,unused-ignore]
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
    Sum,
)

from resilient_http import (
    BreakerPolicy,
    CircuitOpenError,
    Policy,
    ResilientTransport,
    RetryPolicy,
)
from resilient_http.otel import OpenTelemetryMetrics
from resilient_http.testing import FakeClock

HOST = "api.example.com:443"
SECRET_URL = "https://alice:hunter2@api.example.com/v1/items?token=tok-9f8e7d&page=2"
SECRET_HEADERS = {"Authorization": "Bearer sk-live-51Habc"}
SECRETS = ("alice", "hunter2", "tok-9f8e7d", "page", "sk-live-51Habc", "/v1/")

Points = dict[tuple[str, tuple[tuple[str, str], ...]], "float | HistogramDataPoint"]


def read(reader: InMemoryMetricReader) -> Points:
    """``{(instrument, attributes): value}``; a histogram's value is its point."""
    data = reader.get_metrics_data()
    points: Points = {}
    if data is None:
        return points
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "resilient_http"
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    attributes = {k: str(v) for k, v in (point.attributes or {}).items()}
                    key = (metric.name, tuple(sorted(attributes.items())))
                    if isinstance(point, NumberDataPoint):
                        points[key] = point.value
                    else:
                        assert isinstance(point, HistogramDataPoint)
                        points[key] = point
    return points


def make(
    clock: FakeClock, statuses: list[int], max_hosts: int = 1024
) -> tuple[ResilientTransport, InMemoryMetricReader]:
    reader = InMemoryMetricReader()
    metrics = OpenTelemetryMetrics(MeterProvider(metric_readers=[reader]))

    def handler(request: httpx.Request) -> httpx.Response:
        clock.advance(0.3)
        return httpx.Response(statuses[0])

    transport = ResilientTransport(
        httpx.MockTransport(handler),
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=2, recovery_timeout=10.0),
            retry=RetryPolicy(attempts=2, wait=tenacity.wait_none()),
        ),
        listeners=[metrics],
        clock=clock,
        sleep=clock.sleep,
        max_hosts=max_hosts,
    )

    @transport.fallback("*.example.com")
    def cached(request: httpx.Request, error: CircuitOpenError) -> httpx.Response:
        return httpx.Response(200, json={"cached": True})

    return transport, reader


async def test_instruments_after_a_trip_and_recovery(clock: FakeClock) -> None:
    statuses = [503]
    transport, reader = make(clock, statuses)
    host = (("host", HOST),)
    async with httpx.AsyncClient(transport=transport, headers=SECRET_HEADERS) as client:
        assert (await client.get(SECRET_URL)).status_code == 503  # two attempts: opens
        assert (await client.get(SECRET_URL)).json() == {"cached": True}
        got = read(reader)
        assert got[("resilient_http.circuit.state", host)] == 1
        clock.advance(10)
        statuses[0] = 200
        assert (await client.get(SECRET_URL)).status_code == 200  # the probe closes it

    got = read(reader)
    assert got[("resilient_http.circuit.state", host)] == 0
    assert got[("resilient_http.circuit.opened", host)] == 1
    assert got[("resilient_http.retries", host)] == 1
    requests = {
        dict(attrs)["outcome"]: value
        for (name, attrs), value in got.items()
        if name == "resilient_http.requests"
    }
    assert requests == {"failure": 2, "rejected": 1, "fallback": 1, "success": 1}
    duration = got[("resilient_http.request.duration", host)]
    assert isinstance(duration, HistogramDataPoint)
    assert duration.count == 3
    assert abs(duration.sum - 0.9) < 1e-9
    # Seconds-sized buckets, not the SDK's millisecond defaults.
    assert 0.25 in duration.explicit_bounds
    for name, attrs in got:
        assert {k for k, _ in attrs} <= {"host", "outcome"}, name
        assert dict(attrs)["host"] == HOST
        assert all(secret not in repr(attrs) for secret in SECRETS)


async def test_units_and_instrument_kinds(clock: FakeClock) -> None:
    transport, reader = make(clock, [200])
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://api.example.com/")
    data = reader.get_metrics_data()
    assert data is not None
    metrics = {m.name: m for m in data.resource_metrics[0].scope_metrics[0].metrics}
    assert metrics["resilient_http.request.duration"].unit == "s"
    requests = metrics["resilient_http.requests"].data
    assert isinstance(requests, Sum)
    assert requests.is_monotonic
    (state,) = metrics["resilient_http.circuit.state"].data.data_points
    assert isinstance(state, NumberDataPoint)
    assert state.value == 0


async def test_evicted_host_leaves_the_state_gauge(clock: FakeClock) -> None:
    statuses = [503]
    transport, reader = make(clock, statuses, max_hosts=1)
    async with httpx.AsyncClient(transport=transport) as client:
        await client.get("https://old.example.com/")
        transport.breaker("old.example.com").reset()
        statuses[0] = 200
        await client.get("https://new.example.com/")
    states = {
        dict(attrs)["host"]: value
        for (name, attrs), value in read(reader).items()
        if name == "resilient_http.circuit.state"
    }
    assert states == {"new.example.com:443": 0}


def test_import_resilient_http_without_opentelemetry() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        import resilient_http
        assert not any(m.startswith("opentelemetry") for m, v in sys.modules.items() if v)
        client = resilient_http.ResilientClient()
        try:
            import resilient_http.otel
        except ImportError as exc:
            print(exc)
        else:
            raise SystemExit("imported resilient_http.otel without opentelemetry")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'resilient-http[otel]'" in result.stdout


async def test_the_same_points_whether_events_are_built_or_not(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Alone, the listener takes each attempt's fields (no ``AttemptFinished`` is
    built); beside a listener of events, the events; beside ``PrometheusMetrics``,
    which takes the fields too, the fields. It records the same either way."""
    from prometheus_client import CollectorRegistry

    from resilient_http import AttemptFinished, Event
    from resilient_http.prometheus import PrometheusMetrics

    built: list[int] = []

    class Counted(AttemptFinished):
        def __init__(self, *fields: Any) -> None:
            built.append(len(got))
            super().__init__(*fields)

    monkeypatch.setattr("resilient_http._async._transport.AttemptFinished", Counted)
    seen: list[Event] = []
    got: list[tuple[Points, int, list[int]]] = []
    for extra in ([], [PrometheusMetrics(CollectorRegistry())], [seen.append]):
        reader = InMemoryMetricReader()
        metrics = OpenTelemetryMetrics(MeterProvider(metric_readers=[reader]))
        answers = iter([200, 503, 404])

        def upstream(request: httpx.Request, answers: Iterator[int] = answers) -> httpx.Response:
            return httpx.Response(next(answers))

        transport = ResilientTransport(
            httpx.MockTransport(upstream),
            policy=Policy(retry=RetryPolicy(attempts=1)),
            listeners=[metrics, *extra],
            clock=clock,
        )
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(3):
                await client.get(SECRET_URL)
        points = read(reader)
        duration = points.pop(("resilient_http.request.duration", (("host", HOST),)))
        assert isinstance(duration, HistogramDataPoint)
        got.append((points, duration.count, list(duration.bucket_counts)))
    outcomes = [e.outcome for e in seen if isinstance(e, AttemptFinished)]
    assert outcomes == ["success", "failure", "success"]
    assert built == [2, 2, 2]  # for the listener of events only
    assert got[0] == got[1] == got[2]
    assert got[0][0][("resilient_http.requests", (("host", HOST), ("outcome", "success")))] == 2
