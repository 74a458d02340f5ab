"""The circuit breaker: a sans-IO state machine driven by an injected clock.

It performs no IO and never awaits, so under asyncio or trio every method runs
atomically; :class:`LockedBreaker` makes each change atomic between threads.
The transport asks it for a :class:`Ticket` before each attempt
(``admit``), and reports how the attempt ended with exactly one of
``on_success``, ``on_failure`` or ``on_ignored``::

    CLOSED --(threshold failures / failure share)--> OPEN
    OPEN --(recovery timeout elapsed)--> HALF_OPEN
    HALF_OPEN --(success_threshold probe successes)--> CLOSED
    HALF_OPEN --(any probe failure)--> OPEN (timer restarts, period may grow)

Outcomes of tickets issued before the last transition are stale and ignored:
a slow call admitted while closed cannot reopen a circuit that has since
closed again, nor close one that is now open.
"""

from __future__ import annotations

import collections
import enum
import math
import random
import threading
from collections.abc import Callable
from typing import Any

from ._policy import BreakerPolicy

__all__ = ["Breaker", "CircuitState", "Clock", "LockedBreaker", "Ticket"]

Clock = Callable[[], float]
"""A monotonic clock in seconds, ``time.monotonic`` by default."""


class CircuitState(str, enum.Enum):
    """The state of one host's circuit. Values are JSON-friendly strings."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"

    def __str__(self) -> str:
        return self.value


CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN

#: Called as ``hook(breaker, old_state, new_state)`` after every transition.
TransitionHook = Callable[["Breaker", CircuitState, CircuitState], None]


class Ticket:
    """Permission for one attempt. Give it back exactly once."""

    __slots__ = ("done", "generation", "probe")

    def __init__(self, generation: int, probe: bool) -> None:
        self.generation = generation
        self.probe = probe
        self.done = False


class _Window:
    """Time-sliced counters over the last ``window`` seconds (O(1) per call),
    and the rate-mode thresholds they are judged against."""

    __slots__ = (
        "_below",
        "_calls",
        "_epoch",
        "_failure_rate",
        "_failures",
        "_index",
        "_minimum",
        "_quotient",
        "_slow",
        "_slow_rate",
        "_width",
        "calls",
        "failures",
        "slow",
    )

    BUCKETS = 10

    def __init__(
        self, window: float, minimum_calls: int, failure_rate: float, slow_rate: float | None
    ) -> None:
        self._width = window / self.BUCKETS
        self._calls = [0] * self.BUCKETS
        self._failures = [0] * self.BUCKETS
        self._slow = [0] * self.BUCKETS
        self._epoch = -1
        # The bucket of the last roll, kept as the float ``now // width`` gave
        # (compared without int()) and as its index (no modulo per call).
        self._quotient = -1.0
        self._index = -1 % self.BUCKETS
        self._minimum = minimum_calls
        self._failure_rate = failure_rate
        self._slow_rate = slow_rate  # None: slow calls are not detected
        #: The totals were last judged with at least minimum_calls and below
        #: both rates; False again whenever the totals shrink (roll, clear).
        self._below = False
        self.calls = self.failures = self.slow = 0

    def clear(self) -> None:
        for series in (self._calls, self._failures, self._slow):
            series[:] = [0] * self.BUCKETS
        self.calls = self.failures = self.slow = 0
        self._below = False

    def _roll(self, now: float) -> int:
        quotient = now // self._width
        epoch = int(quotient)
        last = self._epoch
        if epoch != last:
            if last < 0 or epoch - last >= self.BUCKETS:
                self.clear()
            else:
                for e in range(last + 1, epoch + 1):
                    i = e % self.BUCKETS
                    self.calls -= self._calls[i]
                    self.failures -= self._failures[i]
                    self.slow -= self._slow[i]
                    self._calls[i] = self._failures[i] = self._slow[i] = 0
                self._below = False
            self._epoch = epoch
        self._quotient = quotient
        self._index = index = epoch % self.BUCKETS
        return index

    def add(self, now: float, failed: bool, slow: bool) -> bool:
        """Count one finished call at ``now``. ``True`` when the window (rolled
        to now, so its totals are current) holds at least ``minimum_calls``
        calls and the share of failures, or of slow calls, reaches its rate."""
        # Nearly every call lands in the bucket of the one before: one float
        # division and compare, the rolling only when the bucket changed.
        i = self._index if now // self._width == self._quotient else self._roll(now)
        self._calls[i] += 1
        calls = self.calls = self.calls + 1
        if failed:
            self._failures[i] += 1
            self.failures += 1
        if slow:
            self._slow[i] += 1
            self.slow += 1
        elif not failed and self._below:
            # A call that neither failed nor was slow only lowers both shares:
            # totals judged below their rates, and not rolled since, stay below.
            return False
        if calls < self._minimum:
            return False
        slow_rate = self._slow_rate
        reached = self.failures >= self._failure_rate * calls or (
            slow_rate is not None and self.slow >= slow_rate * calls
        )
        self._below = not reached
        return reached

    def totals_at(self, now: float) -> tuple[int, int, int]:
        """The totals as of ``now`` without rolling the buckets (a read changes nothing)."""
        epoch = int(now // self._width)
        last = self._epoch
        if last < 0 or epoch - last >= self.BUCKETS:
            return 0, 0, 0
        calls, failures, slow = self.calls, self.failures, self.slow
        for e in range(last + 1, epoch + 1):
            i = e % self.BUCKETS
            calls -= self._calls[i]
            failures -= self._failures[i]
            slow -= self._slow[i]
        return calls, failures, slow

    def failures_at(self, now: float) -> int:
        return self.totals_at(now)[1]


class Breaker:
    """One host's circuit breaker.

    Get one with ``ResilientTransport.breaker(host_or_url)``. ``state`` is the
    current :class:`CircuitState`; ``force_open()`` holds the circuit open and
    ``force_closed()`` holds it closed until ``reset()`` (or the other forcing
    call); ``reset()`` returns to a fresh closed circuit.
    """

    __slots__ = (
        "_clock",
        "_closed_ticket",
        "_failures",
        "_forced",
        "_generation",
        "_hook",
        "_in_flight",
        "_last_failure",
        "_open_period",
        "_open_until",
        "_opened_total",
        "_probe_successes",
        "_probes",
        "_random",
        "_slow_after",
        "_state",
        "_streak",
        "_window",
        "key",
        "policy",
        "timed",
    )

    def __init__(
        self,
        key: str,
        policy: BreakerPolicy | None = None,
        *,
        clock: Clock,
        on_transition: TransitionHook | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.key = key
        self.policy = policy = policy if policy is not None else BreakerPolicy()
        self._clock = clock
        self._hook = on_transition
        self._random = rng if rng is not None else random.Random()
        self._state = CLOSED
        self._generation = 0
        self._closed_ticket = Ticket(0, probe=False)
        self._failures = 0
        self._last_failure = -math.inf
        self._in_flight = 0
        self._probes = 0
        self._probe_successes = 0
        self._open_until = 0.0
        self._open_period = policy.recovery_timeout
        self._streak = 0
        self._opened_total = 0
        self._forced: CircuitState | None = None
        self._slow_after = policy.slow_call_duration
        self._window = (
            _Window(
                policy.window,
                policy.minimum_calls,
                policy.failure_rate,
                None if self._slow_after is None else policy.slow_call_rate,
            )
            if policy.failure_rate is not None  # (rate mode)
            else None
        )
        #: Whether outcomes need a duration (slow-call detection); else 0.0 will do.
        self.timed = self._slow_after is not None

    # -- reading -------------------------------------------------------------

    @property
    def state(self) -> CircuitState:
        """The current state. An open circuit whose timer ran out reads half-open;
        reading never changes anything (the transition, its event and its log
        line happen when the first probe is admitted)."""
        state = self._state
        if state is OPEN and self._forced is None and self._clock() >= self._open_until:
            return HALF_OPEN
        return state

    @property
    def retry_after(self) -> float:
        """Seconds until a probe may go: 0 unless open; ``inf`` while forced open."""
        if self._forced is OPEN:
            return math.inf
        if self._state is OPEN:
            return max(0.0, self._open_until - self._clock())
        return 0.0

    @property
    def forced(self) -> CircuitState | None:
        return self._forced

    @property
    def failure_count(self) -> int:
        """Consecutive failures so far while closed (consecutive mode)."""
        return self._failures

    @property
    def probes_in_flight(self) -> int:
        return self._probes

    @property
    def calls_in_flight(self) -> int:
        """Attempts admitted and not yet settled (for a closed-state call, until its body ends)."""
        return self._in_flight

    def is_idle(self) -> bool:
        """Nothing here worth remembering: closed, not forced, no attempt in
        flight, and no failure within the last ``window`` seconds. Only idle
        breakers may be forgotten without forgetting an outage. Never changes state."""
        if self._state is not CLOSED or self._forced is not None or self._in_flight:
            return False
        if self._window is not None:
            return self._window.failures_at(self._clock()) == 0
        return self._failures == 0 or self._clock() - self._last_failure >= self.policy.window

    def is_rejecting(self) -> bool:
        """Would a call be rejected right now? Never changes state."""
        state = self._state
        if state is CLOSED:
            return False
        if state is OPEN:
            return self._forced is OPEN or self._clock() < self._open_until
        return self._probes >= self.policy.half_open_max_calls

    def snapshot(self) -> dict[str, Any]:
        """A JSON-serialisable view of this breaker. Reading it changes nothing."""
        state = self.state
        retry_after = self.retry_after
        data: dict[str, Any] = {
            "state": state.value,
            "forced": self._forced.value if self._forced is not None else None,
            "consecutive_failures": self._failures,
            "opened_total": self._opened_total,
            "retry_after": None if math.isinf(retry_after) else round(retry_after, 3),
            "open_period": None if math.isinf(self._open_period) else round(self._open_period, 3),
            "probes_in_flight": self._probes,
        }
        if self._window is not None:
            calls, failures, slow = self._window.totals_at(self._clock())
            data["window"] = {"calls": calls, "failures": failures, "slow_calls": slow}
        return data

    # -- admission -----------------------------------------------------------

    def admit(self) -> Ticket | None:
        """A ticket for one attempt, or ``None`` when the call must be rejected."""
        state = self._state
        if state is CLOSED:
            self._in_flight += 1
            return self._closed_ticket
        if state is OPEN:
            if self._forced is OPEN or self._clock() < self._open_until:
                return None
            self._to_half_open()
        if self._probes >= self.policy.half_open_max_calls:
            return None
        self._probes += 1
        self._in_flight += 1
        return Ticket(self._generation, probe=True)

    # -- outcomes --------------------------------------------------------------

    def on_success(self, ticket: Ticket, duration: float = 0.0) -> None:
        # Nearly every call brings back the current closed-state ticket, which
        # is neither a probe nor stale: one identity test covers both checks.
        if ticket is not self._closed_ticket:
            self._other_success(ticket, duration)
            return
        if self._in_flight:  # (a closed ticket reported twice must not drive it negative)
            self._in_flight -= 1
        window = self._window
        if window is None:
            self._failures = 0
            return
        now = self._clock()
        slow_after = self._slow_after
        slow = slow_after is not None and duration >= slow_after
        if slow or not window._below or now // window._width != window._quotient:
            # A success can be the call that reaches minimum_calls with the failure
            # share already over the rate, or land after the window slid: judge it.
            self._count(window, now, False, slow)
            return
        # _Window.add inlined for the steady state (nearly every call): one more
        # call in the current bucket, neither failed nor slow, and the totals
        # already judged below both rates, so they stay below.
        window._calls[window._index] += 1
        window.calls += 1

    def _other_success(self, ticket: Ticket, duration: float) -> None:
        """A probe's success, a stale ticket's, or a ticket made by hand."""
        if ticket.probe:
            self._probe_succeeded(ticket)
        elif ticket.generation == self._generation:  # the closed ticket's equal
            Breaker.on_success(self, self._closed_ticket, duration)  # (no lock to retake)
        elif self._in_flight:
            self._in_flight -= 1

    def on_failure(self, ticket: Ticket, duration: float = 0.0) -> None:
        if ticket.probe:
            if not self._release_probe(ticket):
                return
            if self._forced is None:
                self._streak += 1
                self._open()
            return
        if self._in_flight:  # (a closed ticket reported twice must not drive it negative)
            self._in_flight -= 1
        if ticket.generation != self._generation:
            return
        window = self._window
        if window is not None:
            slow_after = self._slow_after
            self._count(
                window, self._clock(), True, slow_after is not None and duration >= slow_after
            )
        else:
            self._last_failure = self._clock()
            self._failures += 1
            if self._failures >= self.policy.failure_threshold and self._forced is None:
                self._open()

    def on_ignored(self, ticket: Ticket) -> None:
        """The attempt ended without a verdict (cancelled, caller error): free its slot."""
        if ticket.probe:
            self._release_probe(ticket)
        elif self._in_flight:
            self._in_flight -= 1

    def _release_probe(self, ticket: Ticket) -> bool:
        """Give a probe slot back; ``True`` if the ticket is current (not stale)."""
        if ticket.done:
            return False
        ticket.done = True
        if self._in_flight:
            self._in_flight -= 1
        if ticket.generation != self._generation:
            return False
        self._probes -= 1
        return True

    def _count(self, window: _Window, now: float, failed: bool, slow: bool) -> None:
        """Rate mode: add one finished call to the window, then judge it."""
        if window.add(now, failed, slow) and self._forced is None:
            self._open()

    def _probe_succeeded(self, ticket: Ticket) -> None:
        if not self._release_probe(ticket):
            return
        self._probe_successes += 1
        if self._probe_successes >= self.policy.success_threshold:
            self._streak = 0
            self._open_period = self.policy.recovery_timeout
            self._transition(CLOSED)

    # -- manual control ---------------------------------------------------------

    def force_open(self) -> None:
        """Hold the circuit open (every call rejected) until ``reset()`` or ``force_closed()``."""
        self._forced = OPEN
        if self._state is not OPEN:
            self._opened_total += 1
            self._open_until = math.inf
            self._transition(OPEN)

    def force_closed(self) -> None:
        """Hold the circuit closed (failures never trip it) until ``reset()``/``force_open()``."""
        self._forced = CLOSED
        if self._state is not CLOSED:
            self._transition(CLOSED)

    def reset(self) -> None:
        """Back to a fresh closed circuit: counters cleared, forcing released."""
        self._forced = None
        self._streak = 0
        self._open_period = self.policy.recovery_timeout
        if self._state is not CLOSED:
            self._transition(CLOSED)
        else:
            self._failures = 0
            if self._window is not None:
                self._window.clear()

    def open_for(self, seconds: float) -> None:
        """Open now for ``seconds``: a trip decided elsewhere (a fleet-shared
        store). If already open, the open period now ends in ``seconds``.
        Ignored while forced."""
        if self._forced is not None:
            return
        seconds = max(0.0, seconds)
        self._open_until = self._clock() + seconds
        if self._state is not OPEN:
            self._open_period = seconds
            self._opened_total += 1
            self._transition(OPEN)

    # -- transitions -----------------------------------------------------------

    def _open(self) -> None:
        policy = self.policy
        period = policy.recovery_timeout
        cap = policy.max_recovery_timeout
        if cap is not None and self._streak > 0:
            period = min(cap, period * 2.0 ** min(self._streak, 64))
            jittered = period * self._random.uniform(0.75, 1.25)
            # never below recovery_timeout, even when the cap is close to it
            period = max(policy.recovery_timeout, min(cap, jittered))
        self._open_period = period
        self._open_until = self._clock() + period
        self._opened_total += 1
        self._transition(OPEN)

    def _to_half_open(self) -> None:
        self._transition(HALF_OPEN)

    def _transition(self, new: CircuitState) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        self._closed_ticket = Ticket(self._generation, probe=False)
        self._failures = 0
        self._probes = 0
        self._probe_successes = 0
        if self._window is not None:
            self._window.clear()
        if old is not new:
            self._announce(old, new)

    def _announce(self, old: CircuitState, new: CircuitState) -> None:
        if self._hook is not None:
            self._hook(self, old, new)


class LockedBreaker(Breaker):
    """A :class:`Breaker` that threads share: each change runs under one lock,
    and the transition hook runs after the lock is released, so a hook (and
    the listeners it calls) may call back into the breaker, or block, without
    holding up or deadlocking the other threads. Reads take no lock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self._announcements: collections.deque[tuple[CircuitState, CircuitState]] = (
            collections.deque()
        )

    def _announce(self, old: CircuitState, new: CircuitState) -> None:
        self._announcements.append((old, new))  # told once the lock is released

    def _tell(self) -> None:
        announcements = self._announcements
        while announcements:
            try:
                old, new = announcements.popleft()
            except IndexError:  # another thread told it
                return
            super()._announce(old, new)

    # The four calls made for every attempt take the lock with acquire() and
    # release() (about half the cost of a with statement), call the plain
    # breaker's method directly (no super() object), and look for something
    # to tell before calling _tell.

    def admit(self) -> Ticket | None:
        lock = self._lock
        lock.acquire()
        try:
            ticket = Breaker.admit(self)
        finally:
            lock.release()
        if self._announcements:
            self._tell()
        return ticket

    def on_success(self, ticket: Ticket, duration: float = 0.0) -> None:
        lock = self._lock
        lock.acquire()
        try:
            Breaker.on_success(self, ticket, duration)
        finally:
            lock.release()
        if self._announcements:
            self._tell()

    def on_failure(self, ticket: Ticket, duration: float = 0.0) -> None:
        lock = self._lock
        lock.acquire()
        try:
            Breaker.on_failure(self, ticket, duration)
        finally:
            lock.release()
        if self._announcements:
            self._tell()

    def on_ignored(self, ticket: Ticket) -> None:
        lock = self._lock
        lock.acquire()
        try:
            Breaker.on_ignored(self, ticket)
        finally:
            lock.release()
        if self._announcements:
            self._tell()

    def force_open(self) -> None:
        with self._lock:
            super().force_open()
        self._tell()

    def force_closed(self) -> None:
        with self._lock:
            super().force_closed()
        self._tell()

    def reset(self) -> None:
        with self._lock:
            super().reset()
        self._tell()

    def open_for(self, seconds: float) -> None:
        with self._lock:
            super().open_for(seconds)
        self._tell()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return super().snapshot()
