"""OpenTelemetry metrics for resilient_http (extra ``otel``).

``OpenTelemetryMetrics`` is a listener recording the same instruments as
:mod:`resilient_http.prometheus`, through the OpenTelemetry metrics API (only
``opentelemetry-api`` is needed at run time; the application configures the
SDK and its exporters)::

    from resilient_http import ResilientClient
    from resilient_http.otel import OpenTelemetryMetrics

    client = ResilientClient(listeners=[OpenTelemetryMetrics()])

Instruments (meter ``resilient_http``; attribute ``host`` is the breaker key,
e.g. ``api.example.com:443``, never a URL, query string, userinfo or header):

=================================== ================ ==============================
instrument                          kind             attributes, meaning
=================================== ================ ==============================
``resilient_http.circuit.state``    observable gauge ``host``: 0 closed, 1 open, 2 half-open
``resilient_http.circuit.opened``   counter          ``host``: times the circuit opened
``resilient_http.requests``         counter          ``host``, ``outcome``: success,
                                                     failure, rejected, fallback
``resilient_http.retries``          counter          ``host``: retries scheduled
``resilient_http.request.duration`` histogram (s)    ``host``: attempt durations
=================================== ================ ==============================

``outcome`` has the same meaning as in the Prometheus module: ``success`` and
``failure`` count attempts that reached the upstream; ``rejected`` counts calls
turned away without touching the network; ``fallback`` the rejected calls a
fallback answered (a subset of ``rejected``). Through OpenTelemetry's Prometheus
exporter these come out under the very names :mod:`resilient_http.prometheus`
uses (``resilient_http_requests_total``, ``resilient_http_request_duration_seconds``,
...), with the exporter's ``otel_scope_*`` labels added.

Evicted hosts leave the state gauge at once. The OpenTelemetry API cannot drop
a series from a synchronous counter or histogram: their cardinality is bounded
by the SDK's per-instrument cardinality limit (2000 by default), or use delta
temporality.
"""

from __future__ import annotations

from collections.abc import Iterable

try:
    from opentelemetry import metrics as otel_metrics
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "resilient_http.otel needs opentelemetry-api: pip install 'resilient-http[otel]' "
        "(from a checkout: pip install '.[otel]')"
    ) from exc

from . import __version__
from ._breaker import CircuitState
from ._events import (
    AttemptFinished,
    BreakerEvicted,
    CallRejected,
    Event,
    FallbackServed,
    RetryScheduled,
    StateChanged,
    passes_attempts_to_hook,
)

__all__ = ["DURATION_BUCKETS", "METER_NAME", "OpenTelemetryMetrics"]

#: The name of the meter the instruments belong to.
METER_NAME = "resilient_http"

#: Bucket boundaries (seconds) advised for the duration histogram: the same as
#: Prometheus' defaults and OpenTelemetry's HTTP semantic conventions.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

_STATE_VALUES = {CircuitState.CLOSED: 0, CircuitState.OPEN: 1, CircuitState.HALF_OPEN: 2}


class OpenTelemetryMetrics:
    """A listener that records the breakers' metrics through OpenTelemetry.

    ``meter_provider`` defaults to the global one (``opentelemetry.metrics.
    set_meter_provider``); with the API alone and no SDK configured, every
    instrument is a no-op.
    """

    def __init__(self, meter_provider: otel_metrics.MeterProvider | None = None) -> None:
        meter = otel_metrics.get_meter(METER_NAME, __version__, meter_provider=meter_provider)
        self._states: dict[str, int] = {}
        self._state = meter.create_observable_gauge(
            "resilient_http.circuit.state",
            callbacks=[self._observe_states],
            description="State of the host's circuit: 0 closed, 1 open, 2 half-open.",
        )
        self._opened = meter.create_counter(
            "resilient_http.circuit.opened",
            unit="{open}",
            description="Times the host's circuit opened.",
        )
        self._requests = meter.create_counter(
            "resilient_http.requests",
            unit="{request}",
            description="Attempts that reached the upstream (success, failure) and calls "
            "rejected without touching it (rejected; fallback: those answered by a fallback).",
        )
        self._retries = meter.create_counter(
            "resilient_http.retries",
            unit="{retry}",
            description="Retries scheduled.",
        )
        description = "Duration of each attempt that reached the upstream, until its verdict."
        try:
            self._duration = meter.create_histogram(
                "resilient_http.request.duration",
                unit="s",
                description=description,
                explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            )
        except TypeError:  # opentelemetry-api < 1.23: no advisory parameter
            self._duration = meter.create_histogram(
                "resilient_http.request.duration", unit="s", description=description
            )

    def _observe_states(
        self, options: otel_metrics.CallbackOptions
    ) -> Iterable[otel_metrics.Observation]:
        return [
            otel_metrics.Observation(value, {"host": host})
            for host, value in list(self._states.items())
        ]

    @passes_attempts_to_hook
    def __call__(self, event: Event) -> None:
        host = event.host
        if isinstance(event, BreakerEvicted):
            self._states.pop(host, None)
            return
        if isinstance(event, StateChanged):
            self._states[host] = _STATE_VALUES[event.new]
            if event.new is CircuitState.OPEN:
                self._opened.add(1, {"host": host})
            return
        if isinstance(event, AttemptFinished):
            self._resilient_http_attempt_finished(
                host, event.method, event.outcome, event.duration, event.status_code, event.error
            )
            return
        self._states.setdefault(host, 0)  # first sight: a new breaker starts closed
        if isinstance(event, RetryScheduled):
            self._retries.add(1, {"host": host})
        elif isinstance(event, CallRejected):
            self._requests.add(1, {"host": host, "outcome": "rejected"})
        elif isinstance(event, FallbackServed):
            self._requests.add(1, {"host": host, "outcome": "fallback"})

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
        # take them calls this without building the event.
        self._states.setdefault(host, 0)  # first sight: a new breaker starts closed
        if outcome != "ignored":  # cancelled, or the caller's own error
            self._requests.add(1, {"host": host, "outcome": outcome})
            self._duration.record(duration, {"host": host})
