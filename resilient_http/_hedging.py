"""Hedged requests, the sans-IO part: per host, the latency the adaptive delay
is learned from, the hedges' own budget, and what is counted for snapshots.
The race itself (start, wait, cancel, close) is each binding's ``_io.race``."""

from __future__ import annotations

import math
from typing import Any

from ._policy import HedgePolicy
from ._retry import BudgetState

__all__ = ["HedgeState", "LatencyWindow"]


class LatencyWindow:
    """The last ``SIZE`` latencies of a host, in seconds to the status line (a
    long body does not count). Bounded memory; the quantile is re-sorted at
    most once every ``REFRESH`` new samples.

    The warm-up: no delay at all for the first ``FIRST`` answers; then, until
    ``WARMUP`` answers, ``WARMUP_FACTOR`` times their median. Hedging during the
    warm-up matters: a slow attempt that a hedge beats is cancelled and never
    enters the window, so the tail does not teach the delay to wait for it."""

    __slots__ = ("_cached", "_count", "_fresh", "_next", "_samples")

    SIZE = 128
    FIRST = 5
    WARMUP = 20
    WARMUP_FACTOR = 4.0
    REFRESH = 8

    def __init__(self) -> None:
        self._samples = [0.0] * self.SIZE
        self._next = 0
        self._count = 0
        self._fresh = 0  # samples since the quantile was last computed
        self._cached: tuple[float, float] | None = None  # (quantile, value)

    def __len__(self) -> int:
        return self._count

    def add(self, seconds: float) -> None:
        self._samples[self._next] = seconds
        self._next = (self._next + 1) % self.SIZE
        self._count = min(self._count + 1, self.SIZE)
        self._fresh += 1

    def delay(self, q: float) -> float | None:
        """How long to wait before hedging: the ``q`` quantile of the window,
        the warm-up's rule before it fills, ``None`` before any of it."""
        count = self._count
        if count < self.FIRST:
            return None
        if count < self.WARMUP:
            ordered = sorted(self._samples[:count])
            return self.WARMUP_FACTOR * ordered[count // 2]
        return self.quantile(q)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile of the window, or ``None`` during the warm-up."""
        if self._count < self.WARMUP:
            return None
        cached = self._cached
        if cached is not None and cached[0] == q and self._fresh < self.REFRESH:
            return cached[1]
        ordered = sorted(self._samples[: self._count])
        value = ordered[min(self._count - 1, math.ceil(q * self._count) - 1)]
        self._cached = (q, value)
        self._fresh = 0
        return value


class HedgeState:
    """One host's hedging: its policy, latency window, budget and counts."""

    __slots__ = ("budget", "latency", "policy", "sent", "won")

    def __init__(self, policy: HedgePolicy) -> None:
        self.policy = policy
        self.latency = LatencyWindow()
        self.budget = BudgetState(policy.budget)
        self.sent = 0  # hedges sent
        self.won = 0  # calls a hedge answered

    def delay(self) -> float | None:
        """Seconds to wait for the first attempt before hedging; ``None``: do not hedge."""
        fixed = self.policy.delay
        if fixed is not None:
            return fixed
        return self.latency.delay(self.policy.quantile)

    def snapshot(self) -> dict[str, Any]:
        delay = self.delay()
        return {
            "sent": self.sent,
            "won": self.won,
            "delay": None if delay is None else round(delay, 4),
            "latency_samples": len(self.latency),
        }
