"""Retry decisions: ``Retry-After`` parsing, eligibility, the per-host budget, and
the plan of one call's retries (sans-IO)."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import tenacity

from ._policy import RetryBudget, RetryPolicy

if TYPE_CHECKING:
    from ._types import Request, Response

__all__ = ["BudgetState", "RetryPlan", "can_retry", "parse_retry_after"]

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


def can_retry(request: Request, policy: RetryPolicy, replayable: bool) -> bool:
    """Idempotent (by method or ``Idempotency-Key``) and the body can be replayed.

    ``replayable``: the request's body, as the caller built it (taken before
    the first attempt), is in memory. An inner transport that reads the
    request (``MockTransport``, respx) replaces a streamed body with a
    buffered one, and the caller's stream must still count as not replayable.
    """
    return policy.attempts >= 2 and replayable and is_idempotent(request, policy)


def is_idempotent(request: Request, policy: RetryPolicy) -> bool:
    """By method (``policy.methods``) or by an ``Idempotency-Key`` header."""
    return request.method in policy.methods or "idempotency-key" in request.headers


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
        # (roll first: rolling may replace the list being counted into)
        i = self._index if now < self._until else self._roll(now)
        self._requests[i] += 1

    def try_withdraw(self, now: float) -> bool:
        """Take one retry from the budget; ``False`` when it is spent."""
        i = self._roll(now) if now >= self._until else self._index
        budget = self.budget
        allowed = budget.ratio * sum(self._requests) + budget.min_per_second * budget.window
        if sum(self._retries) + 1 > allowed:
            return False
        self._retries[i] += 1
        return True


class RetryPlan:
    """The retry loop's decisions for one call, apart from its IO: how long to
    wait before the next attempt, whether time and budget allow it. Everything
    runs on the transport's clock; nothing here awaits.

    The loop (``ResilientTransport``) asks, after each retryable outcome:

    1. ``wait_for(response, error)``: seconds to wait, or ``None`` to stop with
       that outcome (attempts used up, a ``Retry-After`` longer than
       ``max_retry_after``, or a wait that would cross the deadline);
    2. after making a discarded response readable (IO), ``may_retry(wait)``:
       time still left for the wait, and a token from the host's budget;
    3. after the backoff (IO), ``has_time()``: the deadline has not passed, so
       an attempt may be sent (one that is not sent is not counted).

    The breaker is consulted by the loop itself, before each of these steps.
    """

    __slots__ = ("_budget", "_clock", "_policy", "_state", "attempt", "deadline")

    def __init__(
        self,
        policy: RetryPolicy,
        clock: Callable[[], float],
        started: float,
        budget: BudgetState | None,
    ) -> None:
        self._policy = policy
        self._clock = clock
        self._budget = budget
        self.deadline = started + policy.deadline if policy.deadline is not None else math.inf
        self._state = tenacity.RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        self._state.start_time = started
        #: The number of the attempt whose outcome is being judged.
        self.attempt = 1

    def wait_for(self, response: Response | None, error: BaseException | None) -> float | None:
        policy = self._policy
        if self.attempt >= policy.attempts:
            return None
        state = self._state
        state.attempt_number = self.attempt
        outcome: object = response if error is None else error
        state.outcome = tenacity.Future.construct(self.attempt, outcome, error is not None)
        now = state.outcome_timestamp = self._clock()
        wait = max(0.0, float(policy.wait(state)))
        if response is not None and policy.respect_retry_after:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is not None:
                if retry_after > policy.max_retry_after:
                    return None  # the server asked for a longer pause than we will wait
                wait = retry_after
        return wait if now + wait < self.deadline else None

    def may_retry(self, wait: float) -> bool:
        now = self._clock()
        if now + wait >= self.deadline:  # reading the discarded body took the time left
            return False
        return self._budget is None or self._budget.try_withdraw(now)

    def has_time(self) -> bool:
        return self._clock() < self.deadline

    def next_attempt(self, waited: float) -> None:
        """The next attempt is about to be sent, after ``waited`` seconds of backoff."""
        self._state.idle_for += waited
        self.attempt += 1
