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
    passes_attempts_to_hook,
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
        # the attempt counts' pieces, bound here so the hot path reaches them
        # in one attribute load each
        self._rows = self._attempts.rows
        self._starts = self._attempts.starts
        self._bounds = self._attempts.bounds
        self._lock = self._attempts.lock

    def _series(self, host: str) -> _Series:
        series = self._hosts.get(host)
        if series is None:
            # First sight of this host: a new breaker starts closed.
            series = self._hosts[host] = _Series(self, host)
            series.state.set(0)
        return series

    @passes_attempts_to_hook
    def __call__(self, event: Event) -> None:
        if type(event) is AttemptFinished:  # (exact: a subclass takes _dispatch)
            self._resilient_http_attempt_finished(
                event.host,
                event.method,
                event.outcome,
                event.duration,
                event.status_code,
                event.error,
            )
            return
        self._dispatch(event)

    def _resilient_http_attempt_finished(
        self,
        host: str,
        method: str,
        outcome: str,
        duration: float,
        status_code: int | None,
        error: str | None,
    ) -> None:
        # An AttemptFinished, by its fields: a transport whose listeners all
        # take them calls this without building the event (see ATTEMPT_HOOK).
        # The hot path: one per attempt, of a host already seen. Shaped for
        # speed: two dict subscripts in a ``try`` (free until it raises: a
        # host's first attempt, an outcome the row has no slot for); the
        # bucket found by C code outside the lock (and the bounds alone: a
        # ``lo`` argument costs more than adding ``start``); the lock taken by
        # hand (``with`` costs twice as much). A host has a row only once its
        # labelled series exist.
        try:
            row = self._rows[host]
            start = self._starts[outcome]
            if not start:  # ignored: nothing to count
                return
            index = bisect.bisect_left(self._bounds, duration) + start
        except (KeyError, TypeError):  # (no duration: no bucket)
            self._on_attempt(host, outcome, duration)
            return
        lock = self._lock
        lock.acquire()
        try:
            row[index] += 1
            row[0] += duration
        finally:
            lock.release()

    def _on_attempt(self, host: str, outcome: str, duration: float) -> None:
        """An attempt the hot path does not take: the host's first, an ignored
        one's first, one without a duration, an unknown verdict."""
        # The row first, then the series: an eviction in another thread between
        # the two can leave series without a row (the next attempt makes it),
        # never a row without series (the hot path would never make them).
        self._attempts.add(host, outcome, duration)
        self._series(host)

    def _dispatch(self, event: Event) -> None:
        """Every event but the hot path's, most frequent first (the event types
        are disjoint: the order changes nothing else)."""
        host = event.host
        if isinstance(event, RetryScheduled):
            self._series(host).retries.inc()
        elif isinstance(event, CallRejected):
            self._series(host)
            self._attempts.add(host, "rejected")
        elif isinstance(event, FallbackServed):
            self._series(host)
            self._attempts.add(host, "fallback")
        elif isinstance(event, AttemptFinished):
            self._on_attempt(event.host, event.outcome, event.duration)
        elif isinstance(event, Hedged):
            self._hedges.labels(host).inc(event.hedges)
            self._hedged.labels(host, "hedge" if event.winner else "first").inc()
        elif isinstance(event, StateChanged):
            series = self._series(host)
            series.state.set(STATE_VALUES[event.new])
            if event.new is CircuitState.OPEN:
                series.opened.inc()
        elif isinstance(event, BreakerEvicted):
            self._forget(host)

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


class _Attempts(Collector):
    """``resilient_http_requests_total`` and ``resilient_http_request_duration_seconds``,
    kept as plain numbers under one lock and turned into metric families when
    the registry is scraped (prometheus-client's own children take a lock and
    a few checks per series, several times slower).

    Each host has one row, a list: the sum of the durations at 0; then one
    count per duration bucket for each verdict (``success``, ``failure``, any
    other), from ``starts[verdict]``; then one count per ``OUTCOMES`` for what
    has no bucket (rejected calls, an attempt without a duration). So an
    attempt adds 1 to one slot, ``starts[verdict] + bisect_left(bounds,
    duration)``, and its duration to the sum: a verdict's count is the sum of
    its buckets (and of its bucketless count), a bucket's count the sum of
    that bucket over the verdicts."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self._le = [_le(bound) for bound in self.bounds]
        size = len(self.bounds)
        # where each verdict's buckets start (0: an ignored attempt counts nowhere)
        self.starts = {"success": 1, "failure": 1 + size, "ignored": 0}
        self._other = 1 + 2 * size  # the buckets of any other verdict
        self._bucketless = 1 + 3 * size
        self._size = self._bucketless + len(OUTCOMES)
        self.lock = threading.Lock()
        self.rows: dict[str, list[float]] = {}

    def add(self, host: str, outcome: str, duration: float | None = None) -> None:
        """Count one outcome; ``duration``: an attempt's (ignored ones have none)."""
        lock = self.lock
        lock.acquire()  # (by hand: half the cost of ``with``)
        try:
            row = self.rows.get(host)
            if row is None:
                row = self.rows[host] = [0.0] + [0] * (self._size - 1)
            if outcome == "ignored":  # cancelled, or the caller's own error
                return
            start = self.starts.get(outcome)  # (not 0: ignored returned above)
            if duration is not None:
                row[(start or self._other) + bisect.bisect_left(self.bounds, duration)] += 1
                row[0] += duration
                if start is not None:
                    return  # counted by its bucket
            if outcome in OUTCOMES:
                row[self._bucketless + OUTCOMES.index(outcome)] += 1
        finally:
            lock.release()

    def forget(self, host: str) -> None:
        with self.lock:
            self.rows.pop(host, None)

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            rows = [(host, list(row)) for host, row in self.rows.items()]
        return self._families(rows)

    def _families(self, rows: Sequence[tuple[str, list[float]]] = ()) -> Iterator[Metric]:
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
        step = len(self.bounds)
        for host, row in rows:
            success, failure, other = (row[i : i + step] for i in range(1, self._bucketless, step))
            counts = row[self._bucketless :]
            counts[0] += sum(success)
            counts[1] += sum(failure)
            for outcome, count in zip(OUTCOMES, counts, strict=True):
                if count:  # a series appears with its first count
                    requests.add_metric([host, outcome], count)
            cumulative, seen = [], 0.0
            for le, *verdicts in zip(self._le, success, failure, other, strict=True):
                seen += sum(verdicts)
                cumulative.append((le, seen))
            durations.add_metric([host], cumulative, row[0])
        yield requests
        yield durations
