"""Prometheus metrics for resilient_http (extra ``prometheus``).

``PrometheusMetrics`` is a listener: pass it to the transport or client and
scrape the registry as usual::

    from prometheus_client import start_http_server

    from resilient_http import ResilientClient
    from resilient_http.prometheus import PrometheusMetrics

    start_http_server(9100)
    client = ResilientClient(listeners=[PrometheusMetrics()])

Exported series (the ``host`` label is the breaker key, e.g.
``api.example.com:443``; never a URL, a query string, userinfo or a header):

- ``resilient_http_circuit_state{host}``: gauge, 0 closed, 1 open, 2 half-open.
- ``resilient_http_circuit_opened_total{host}``: times the circuit opened.
- ``resilient_http_requests_total{host,outcome}``: ``success`` and ``failure``
  count attempts that reached the upstream (a retried call counts once per
  attempt); ``rejected`` counts calls turned away without touching the network
  (open circuit, full bulkhead); ``fallback`` counts the rejected calls that a
  fallback or the stale cache answered (a subset of ``rejected``).
- ``resilient_http_retries_total{host}``: retries scheduled.
- ``resilient_http_request_duration_seconds{host}``: histogram of attempt
  durations, from the attempt's start to its verdict.
- ``resilient_http_hedges_total{host}``: hedged attempts sent (``HedgePolicy``).
- ``resilient_http_hedged_calls_total{host,winner}``: hedged calls by the
  attempt that answered: ``first`` (the hedge was wasted) or ``hedge``.

Cardinality is bounded by the transport's breaker map: when an idle breaker is
evicted (``max_hosts``), every series of that host is removed.

This module is the only one that imports ``prometheus_client``; ``import
resilient_http`` never does.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import threading
from collections.abc import Iterator, Sequence

try:
    from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
    from prometheus_client.registry import Collector
    from prometheus_client.utils import floatToGoString
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "resilient_http.prometheus needs prometheus-client: "
        "pip install 'resilient-http[prometheus]' (from a checkout: pip install '.[prometheus]')"
    ) from exc

from ._breaker import CircuitState
from ._events import (
    AttemptFinished,
    BreakerEvicted,
    CallRejected,
    Event,
    FallbackServed,
    Hedged,
    RetryScheduled,
    StateChanged,
)

__all__ = ["OUTCOMES", "STATE_VALUES", "PrometheusMetrics"]

#: The values of ``resilient_http_circuit_state``.
STATE_VALUES: dict[CircuitState, int] = {
    CircuitState.CLOSED: 0,
    CircuitState.OPEN: 1,
    CircuitState.HALF_OPEN: 2,
}

#: The values of the ``outcome`` label of ``resilient_http_requests_total``.
OUTCOMES = ("success", "failure", "rejected", "fallback")


class PrometheusMetrics:
    """A listener that exports the breakers' metrics to a Prometheus registry.

    ``registry`` defaults to ``prometheus_client.REGISTRY``; the metrics are
    registered once, at construction, so create one instance per registry and
    pass it to as many transports or clients as you like. ``buckets`` are the
    duration histogram's upper bounds in seconds (Prometheus' defaults if
    omitted).
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        buckets: Sequence[float] | None = None,
    ) -> None:
        if registry is None:
            registry = REGISTRY
        self.registry = registry
        self._state = Gauge(
            "resilient_http_circuit_state",
            "State of the host's circuit: 0 closed, 1 open, 2 half-open.",
            ["host"],
            registry=registry,
        )
        self._opened = Counter(
            "resilient_http_circuit_opened_total",
            "Times the host's circuit opened.",
            ["host"],
            registry=registry,
        )
        self._retries = Counter(
            "resilient_http_retries_total",
            "Retries scheduled.",
            ["host"],
            registry=registry,
        )
        # the per-attempt series: plain numbers, exported when scraped
        self._attempts = _Attempts(
            Histogram.DEFAULT_BUCKETS if buckets is None else _bounds(buckets)
        )
        registry.register(self._attempts)
        self._hedges = Counter(
            "resilient_http_hedges_total",
            "Hedged attempts sent.",
            ["host"],
            registry=registry,
        )
        self._hedged = Counter(
            "resilient_http_hedged_calls_total",
            "Hedged calls, by the attempt that answered (first, hedge).",
            ["host", "winner"],
            registry=registry,
        )
        # each host's labelled series, looked up once (``labels()`` costs
        # microseconds per call); dropped with the host on eviction
        self._hosts: dict[str, _Series] = {}

    def _series(self, host: str) -> _Series:
        series = self._hosts.get(host)
        if series is None:
            # First sight of this host: a new breaker starts closed.
            series = self._hosts[host] = _Series(self, host)
            series.state.set(0)
        return series

    def __call__(self, event: Event) -> None:
        host = event.host
        if isinstance(event, AttemptFinished):
            if host not in self._hosts:
                self._series(host)
            self._attempts.add(host, event.outcome, event.duration)
        elif isinstance(event, StateChanged):
            series = self._series(host)
            series.state.set(STATE_VALUES[event.new])
            if event.new is CircuitState.OPEN:
                series.opened.inc()
        elif isinstance(event, BreakerEvicted):
            self._forget(host)
        elif isinstance(event, RetryScheduled):
            self._series(host).retries.inc()
        elif isinstance(event, CallRejected | FallbackServed):
            self._series(host)
            self._attempts.add(host, "rejected" if isinstance(event, CallRejected) else "fallback")
        elif isinstance(event, Hedged):
            self._hedges.labels(host).inc(event.hedges)
            self._hedged.labels(host, "hedge" if event.winner else "first").inc()

    def _forget(self, host: str) -> None:
        self._hosts.pop(host, None)
        self._attempts.forget(host)
        series: list[tuple[Gauge | Counter, tuple[str, ...]]] = [
            (self._state, (host,)),
            (self._opened, (host,)),
            (self._retries, (host,)),
            (self._hedges, (host,)),
        ]
        series += [(self._hedged, (host, winner)) for winner in ("first", "hedge")]
        for metric, labels in series:
            # prometheus-client < 0.20 raises KeyError for a series never set.
            with contextlib.suppress(KeyError):
                metric.remove(*labels)


class _Series:
    """One host's labelled children of the metrics kept by prometheus-client."""

    __slots__ = ("host", "opened", "retries", "state")

    def __init__(self, metrics: PrometheusMetrics, host: str) -> None:
        self.host = host
        self.state = metrics._state.labels(host)
        self.opened = metrics._opened.labels(host)
        self.retries = metrics._retries.labels(host)


def _bounds(buckets: Sequence[float]) -> list[float]:
    """Histogram upper bounds as prometheus-client takes them: sorted, ending
    with +Inf (added when missing), at least two."""
    bounds = [float(bound) for bound in buckets]
    if bounds != sorted(bounds):
        raise ValueError("buckets must be in increasing order")
    if bounds and bounds[-1] != math.inf:
        bounds.append(math.inf)
    if len(bounds) < 2:
        raise ValueError("buckets need at least one finite upper bound")
    return bounds


def _le(bound: float) -> str:
    """A bucket's ``le`` label, written as prometheus-client writes it."""
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


class _Host:
    """One host's attempt counts and duration histogram (per bucket, not cumulative)."""

    __slots__ = ("buckets", "outcomes", "total")

    def __init__(self, size: int) -> None:
        self.outcomes: dict[str, int] = {}
        self.buckets = [0] * size
        self.total = 0.0


class _Attempts(Collector):
    """``resilient_http_requests_total`` and ``resilient_http_request_duration_seconds``,
    kept as plain numbers under one lock and turned into metric families when
    the registry is scraped. Every attempt lands here, so it costs a lookup, a
    bisect and three additions (prometheus-client's own children take a lock
    and a few checks per series, several times slower)."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = tuple(bounds)
        self._le = [_le(bound) for bound in self._bounds]
        self._lock = threading.Lock()
        self._hosts: dict[str, _Host] = {}

    def add(self, host: str, outcome: str, duration: float | None = None) -> None:
        """Count one outcome; ``duration``: an attempt's (ignored ones have none)."""
        with self._lock:
            series = self._hosts.get(host)
            if series is None:
                series = self._hosts[host] = _Host(len(self._bounds))
            if outcome == "ignored":  # cancelled, or the caller's own error
                return
            series.outcomes[outcome] = series.outcomes.get(outcome, 0) + 1
            if duration is not None:
                series.buckets[bisect.bisect_left(self._bounds, duration)] += 1
                series.total += duration

    def forget(self, host: str) -> None:
        with self._lock:
            self._hosts.pop(host, None)

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            rows = [
                (host, dict(series.outcomes), list(series.buckets), series.total)
                for host, series in self._hosts.items()
            ]
        return self._families(rows)

    def _families(
        self, rows: Sequence[tuple[str, dict[str, int], list[int], float]] = ()
    ) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "resilient_http_requests",
            "Attempts that reached the upstream (success, failure) and calls rejected "
            "without touching it (rejected; fallback: those answered by a fallback).",
            labels=["host", "outcome"],
        )
        durations = HistogramMetricFamily(
            "resilient_http_request_duration_seconds",
            "Duration of each attempt that reached the upstream, until its verdict.",
            labels=["host"],
        )
        for host, outcomes, buckets, total in rows:
            for outcome in OUTCOMES:
                if outcome in outcomes:
                    requests.add_metric([host, outcome], outcomes[outcome])
            cumulative, seen = [], 0
            for le, count in zip(self._le, buckets, strict=True):
                seen += count
                cumulative.append((le, float(seen)))
            durations.add_metric([host], cumulative, total)
        yield requests
        yield durations
