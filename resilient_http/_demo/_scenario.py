"""The demo's scenario: its rates, timeouts, outage window and policy."""

from __future__ import annotations

import dataclasses
import json
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
#: ``--replicas``: httpx's default pool, the same for both clients. The pile-up
#: in a small pool is the default demo's story; here the pool is no bottleneck,
#: so what is measured is where the calls go. (Three origins sharing 10 slots
#: also meet an httpcore 1.0.9 bug under CPU contention: a slot whose waiter
#: timed out stays CONNECTING for good, encode/httpcore#1093, and the pool wedges.)
REPLICAS_MAX_CONNECTIONS = 100
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
#: ``--replicas``: inventory runs as two replicas, A (sick during the outage)
#: and B (always healthy); the resilient side calls them as one logical host.
REPLICA_A, REPLICA_B = "inventory-a", "inventory-b"
LOGICAL_HOST = "inventory.internal"
#: How both sides spread inventory calls over the replicas in that variant.
BALANCE = "round_robin"
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
class Layout:
    """The servers the embedded upstream runs, each named and answering as a
    service (its URL path); ``sick`` is the one that fails during the outage."""

    servers: tuple[tuple[str, str], ...]  # (server, service)
    sick: str

    @property
    def replicas(self) -> bool:
        return self.sick == REPLICA_A

    @property
    def healthy(self) -> tuple[str, ...]:
        """The servers that stay healthy throughout."""
        return tuple(name for name, _ in self.servers if name != self.sick)


#: The default demo: one ``inventory`` (sick during the outage), one ``pricing``.
SINGLE = Layout(((SICK, SICK), (HEALTHY, HEALTHY)), SICK)
#: ``--replicas``: inventory on two servers, only replica A sick; ``pricing``.
REPLICAS = Layout(((REPLICA_A, SICK), (REPLICA_B, SICK), (HEALTHY, HEALTHY)), REPLICA_A)


def replica_policy(endpoints: Sequence[str]) -> Policy:
    """``--replicas``: the resilient side's policy for the logical inventory host."""
    return dataclasses.replace(POLICY, endpoints=tuple(endpoints), balance=BALANCE)


@dataclass(frozen=True)
class Plan:
    """What one side calls. ``targets``: for each of ``UPSTREAMS``, the URLs its
    calls go to in turn (one, or with ``--replicas`` the plain side's two
    replicas). ``endpoints``: the resilient side's replicas of ``LOGICAL_HOST``
    (``--replicas``). ``breakers``: the breakers its live table shows, name to key.
    ``max_connections``: its connection pool."""

    targets: tuple[tuple[str, ...], ...]
    endpoints: tuple[str, ...] = ()
    breakers: tuple[tuple[str, str], ...] = ()
    max_connections: int = MAX_CONNECTIONS

    def dumps(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def loads(cls, text: str) -> Plan:
        data = json.loads(text)
        return cls(
            tuple(tuple(urls) for urls in data["targets"]),
            tuple(data["endpoints"]),
            tuple((name, key) for name, key in data["breakers"]),
            data["max_connections"],
        )


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
