"""The demo's scenario: its rates, timeouts, outage window and policy."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import tenacity

from .._policy import BreakerPolicy, Policy, RetryPolicy

#: Seconds of traffic when ``--duration`` is not given.
DEFAULT_DURATION = 15.0
MIN_DURATION = 4.0
MAX_DURATION = 600.0
#: Calls per second to each upstream, through each client.
RATE = 80
#: The callers' timeout (connect, read, write and pool wait), the same for both.
TIMEOUT = 1.0
#: The connection pool, the same for both clients.
MAX_CONNECTIONS = 10
#: Service time of a healthy upstream call.
SERVICE_TIME = 0.002
#: During the outage, one call in this many hangs; the others get a fast 503.
HANG_EVERY = 4
#: Phases, as fractions of the duration: healthy, outage, healthy again.
OUTAGE_START = 0.30
OUTAGE_END = 0.65
#: Seconds between two progress reports of a worker.
REPORT_EVERY = 0.25

SICK, HEALTHY = "inventory", "pricing"
UPSTREAMS = (SICK, HEALTHY)
SIDES = ("plain", "resilient")
SIDE_TITLES = {"plain": "plain httpx.AsyncClient", "resilient": "ResilientClient"}
KINDS = ("ok", "fallback", "error")

#: What the resilient side is configured with (shown in the summary).
POLICY = Policy(
    breaker=BreakerPolicy(failure_threshold=3, recovery_timeout=1.0),
    retry=RetryPolicy(attempts=2, wait=tenacity.wait_random_exponential(multiplier=0.05, max=0.2)),
)

Phase = Literal["healthy", "outage", "recovered"]
Kind = Literal["ok", "fallback", "error"]


@dataclass(frozen=True)
class Schedule:
    """When the outage happens, on the ``time.monotonic`` clock (one clock for
    every process of the machine)."""

    start: float
    duration: float

    @property
    def outage_start(self) -> float:
        return self.start + OUTAGE_START * self.duration

    @property
    def outage_end(self) -> float:
        return self.start + OUTAGE_END * self.duration

    @property
    def end(self) -> float:
        return self.start + self.duration

    def phase(self, now: float) -> Phase:
        if now < self.outage_start:
            return "healthy"
        if now < self.outage_end:
            return "outage"
        return "recovered"


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile, ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# -- the flaky upstream -----------------------------------------------------------
