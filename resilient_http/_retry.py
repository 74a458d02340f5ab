"""Retry helpers: ``Retry-After`` parsing, eligibility, the per-host budget."""

from __future__ import annotations

import email.utils
import math
import time

import httpx

from ._policy import RetryBudget, RetryPolicy

__all__ = ["BudgetState", "can_retry", "parse_retry_after"]

# A header longer than this is garbage, not a delay.
_MAX_HEADER_LEN = 64


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or ``None`` if it is absent
    or malformed (then the normal backoff applies).

    Accepts delta-seconds (``"120"``) and an HTTP-date (``"Wed, 21 Oct 2015
    07:28:00 GMT"``; a date in the past means ``0``). Negative, fractional-looking
    garbage, NaN and absurd values are rejected rather than trusted.
    """
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > _MAX_HEADER_LEN:
        return None
    # delta-seconds: 1*DIGIT (RFC 9110 §10.2.3). ASCII only: a latin-1 header
    # may carry "²", which str.isdigit() accepts and int() rejects.
    if value.isascii() and value.isdigit():
        return float(int(value))
    try:
        # A plain number ("1.5", "-3") is not an HTTP-date: reject before the date parser.
        float(value)
    except ValueError:
        pass
    else:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None  # HTTP-dates are always GMT; a zone-less date is malformed
    try:
        stamp = when.timestamp()
    except (OverflowError, OSError, ValueError):
        return None
    delay = stamp - (time.time() if now is None else now)
    if math.isnan(delay):
        return None
    return max(0.0, delay)


def can_retry(request: httpx.Request, policy: RetryPolicy, body: object = None) -> bool:
    """Idempotent (by method or ``Idempotency-Key``) and the body can be replayed.

    ``body`` is ``request.stream`` as the caller built it, taken before the
    first attempt: an inner transport that reads the request (``MockTransport``,
    respx) replaces a streamed body with a buffered one, and the caller's
    stream must still count as not replayable.
    """
    if policy.attempts < 2:
        return False
    if request.method not in policy.methods and "idempotency-key" not in request.headers:
        return False
    return isinstance(request.stream if body is None else body, httpx.ByteStream)


class BudgetState:
    """Sliding-window counts of requests and retries for one host's budget.

    ``deposit`` runs on every request, so it only bumps the current bucket
    (one comparison while the bucket lasts); totals are summed on the rare
    ``try_withdraw``."""

    __slots__ = ("_epoch", "_index", "_requests", "_retries", "_until", "_width", "budget")

    BUCKETS = 10

    def __init__(self, budget: RetryBudget) -> None:
        self.budget = budget
        self._width = budget.window / self.BUCKETS
        self._requests = [0] * self.BUCKETS
        self._retries = [0] * self.BUCKETS
        self._epoch = 0
        self._index = 0
        self._until = -math.inf  # no bucket yet: the first call rolls

    def _roll(self, now: float) -> int:
        epoch = int(now // self._width)
        gap = epoch - self._epoch
        if self._until == -math.inf or not 0 <= gap < self.BUCKETS:
            self._requests = [0] * self.BUCKETS
            self._retries = [0] * self.BUCKETS
        else:
            for e in range(self._epoch + 1, epoch + 1):
                i = e % self.BUCKETS
                self._requests[i] = self._retries[i] = 0
        self._epoch = epoch
        self._index = epoch % self.BUCKETS
        self._until = (epoch + 1) * self._width
        return self._index

    @property
    def requests(self) -> int:
        """Requests counted in the window (as of the last deposit or withdrawal)."""
        return sum(self._requests)

    @property
    def retries(self) -> int:
        """Retries taken in the window (as of the last deposit or withdrawal)."""
        return sum(self._retries)

    def deposit(self, now: float) -> None:
        """Count one request (each call, not each attempt)."""
        if now < self._until:
            self._requests[self._index] += 1
        else:
            self._requests[self._roll(now)] += 1

    def try_withdraw(self, now: float) -> bool:
        """Take one retry from the budget; ``False`` when it is spent."""
        i = self._roll(now) if now >= self._until else self._index
        budget = self.budget
        allowed = budget.ratio * sum(self._requests) + budget.min_per_second * budget.window
        if sum(self._retries) + 1 > allowed:
            return False
        self._retries[i] += 1
        return True
