"""Model-based test of the sans-IO breaker: a hypothesis state machine drives
``Breaker`` (admissions, concurrent probes, successes, failures, non-counted
errors and cancellations, stale and repeated reports, clock advances, manual
controls) in consecutive and rate mode, against a small reference model written
from DESIGN.md and the BreakerPolicy docstring."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    rule,
)

from resilient_http import BreakerPolicy, CircuitState
from resilient_http._breaker import Breaker, Ticket
from resilient_http.testing import FakeClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN
BUCKETS = 10  # the window is sliced in 10 buckets (documented on _Window)

#: Transitions a circuit may make on its own; any state may also be forced or reset.
NATURAL = {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED), (HALF_OPEN, OPEN)}


@dataclass
class Held:
    """A ticket the test holds, and what the model knows about it."""

    ticket: Ticket
    generation: int
    probe: bool
    done: bool = False


@dataclass
class Model:
    """The reference: what DESIGN.md says the breaker does."""

    policy: BreakerPolicy
    state: CircuitState = CLOSED
    forced: CircuitState | None = None
    generation: int = 0
    failures: int = 0
    probes: int = 0
    probe_successes: int = 0
    streak: int = 0
    open_until: float = 0.0
    #: rate mode: (time, failed, slow) of the calls recorded since the last transition
    calls: list[tuple[float, bool, bool]] = field(default_factory=list)

    def transition(self, new: CircuitState) -> None:
        self.state = new
        self.generation += 1
        self.failures = self.probes = self.probe_successes = 0
        self.calls.clear()

    def lazy(self, now: float) -> CircuitState:
        """An open circuit whose timer ran out is half-open (when looked at)."""
        if self.state is OPEN and self.forced is None and now >= self.open_until:
            self.transition(HALF_OPEN)
        return self.state

    def rejecting(self, now: float) -> bool:
        if self.state is CLOSED:
            return False
        if self.state is OPEN:
            return self.forced is OPEN or now < self.open_until
        return self.probes >= self.policy.half_open_max_calls

    def window_totals(self, now: float) -> tuple[int, int, int]:
        width = self.policy.window / BUCKETS
        current = int(now // width)
        live = [c for c in self.calls if current - int(c[0] // width) < BUCKETS]
        return len(live), sum(c[1] for c in live), sum(c[2] for c in live)

    def rate_trips(self, now: float) -> bool:
        policy = self.policy
        calls, failures, slow = self.window_totals(now)
        if calls < policy.minimum_calls or self.forced is not None:
            return False
        assert policy.failure_rate is not None
        return failures >= policy.failure_rate * calls or (
            policy.slow_call_duration is not None and slow >= policy.slow_call_rate * calls
        )


def policies(rate_mode: bool) -> st.SearchStrategy[BreakerPolicy]:
    """Small numbers, so that trips, recoveries and window edges are reached often."""
    return st.builds(
        BreakerPolicy,
        failure_threshold=st.integers(1, 4),
        recovery_timeout=st.just(5.0),
        half_open_max_calls=st.integers(1, 3),
        success_threshold=st.integers(1, 3),
        max_recovery_timeout=st.sampled_from([None, 5.0, 6.0, 20.0]),
        failure_rate=st.sampled_from([0.25, 0.5, 0.75, 1.0]) if rate_mode else st.none(),
        minimum_calls=st.integers(1, 5),
        window=st.sampled_from([1.0, 10.0]),
        slow_call_duration=st.sampled_from([None, 0.5]) if rate_mode else st.none(),
    )


durations = st.sampled_from([0.0, 0.1, 0.5, 2.0])


class BreakerMachine(RuleBasedStateMachine):
    """Rules and invariants; the subclasses pick the policies (initialize)."""

    tickets = Bundle("tickets")
    spent = Bundle("spent")

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(1000.0)
        self.transitions: list[tuple[CircuitState, CircuitState]] = []

    def start(self, policy: BreakerPolicy, seed: int) -> None:
        self.policy = policy
        self.model = Model(policy)
        self.held: list[Held] = []
        self.breaker = Breaker(
            "api.example.com:443",
            policy,
            clock=self.clock,
            on_transition=lambda b, old, new: self.transitions.append((old, new)),
            rng=random.Random(seed),
        )

    # -- the model's side of outcomes ------------------------------------------------

    def _open(self) -> None:
        """The breaker opened on its own: check its period is within the bounds."""
        model, policy = self.model, self.policy
        model.transition(OPEN)
        period = self.breaker.retry_after
        cap = policy.max_recovery_timeout
        if cap is None or model.streak == 0:
            assert period == pytest.approx(policy.recovery_timeout)
        else:
            assert policy.recovery_timeout - 1e-9 <= period <= cap + 1e-9, (period, policy)
        model.open_until = self.clock() + period

    def _record(self, held: Held, failed: bool | None, duration: float) -> None:
        """``failed``: True failure, False success, None ignored (cancelled/caller error)."""
        model, policy, now = self.model, self.policy, self.clock()
        if held.probe:
            if held.done:
                return
            held.done = True
            if held.generation != model.generation or failed is None:
                if held.generation == model.generation:
                    model.probes -= 1
                return
            model.probes -= 1
            if failed:
                model.streak += 1
                self._open()
            else:
                model.probe_successes += 1
                if model.probe_successes >= policy.success_threshold:
                    model.streak = 0
                    model.transition(CLOSED)
            return
        if failed is None or held.generation != model.generation:
            return
        if policy.rate_mode:
            slow = policy.slow_call_duration is not None and duration >= policy.slow_call_duration
            model.calls.append((now, failed, slow))
            if model.rate_trips(now):
                self._open()
        elif failed:
            model.failures += 1
            if model.failures >= policy.failure_threshold and model.forced is None:
                self._open()
        else:
            model.failures = 0

    # -- rules -------------------------------------------------------------------------

    @rule(target=tickets)
    def admit(self) -> object:
        model, now = self.model, self.clock()
        state = model.state
        expect: bool | None = None  # None: rejected, else probe?
        if state is CLOSED:
            expect = False
        elif state is OPEN and (model.forced is OPEN or now < model.open_until):
            expect = None
        else:
            if state is OPEN:
                model.transition(HALF_OPEN)
            if model.probes < self.policy.half_open_max_calls:
                model.probes += 1
                expect = True
        ticket = self.breaker.admit()
        if expect is None:
            assert ticket is None, f"admitted while the model rejects ({model.state})"
            return multiple()
        assert ticket is not None, f"rejected while the model admits ({model.state})"
        assert ticket.probe is expect
        held = Held(ticket, model.generation, expect)
        self.held.append(held)
        return held

    @rule(target=spent, held=consumes(tickets), duration=durations)
    def succeed(self, held: Held, duration: float) -> Held:
        self.breaker.on_success(held.ticket, duration)
        self._record(held, False, duration)
        return held

    @rule(target=spent, held=consumes(tickets), duration=durations)
    def fail(self, held: Held, duration: float) -> Held:
        self.breaker.on_failure(held.ticket, duration)
        self._record(held, True, duration)
        return held

    @rule(target=spent, held=consumes(tickets))
    def ignore(self, held: Held) -> Held:
        """Cancelled, or an error that is not the upstream's fault."""
        self.breaker.on_ignored(held.ticket)
        self._record(held, None, 0.0)
        return held

    @rule(held=spent, verdict=st.sampled_from([True, False, None]))
    def report_again(self, held: Held, verdict: bool | None) -> None:
        """A ticket reported twice (a bug in a caller) must not move a probe count."""
        probes = self.breaker.probes_in_flight
        if verdict is None:
            self.breaker.on_ignored(held.ticket)
        elif verdict:
            self.breaker.on_failure(held.ticket)
        else:
            self.breaker.on_success(held.ticket)
        if held.probe:
            assert self.breaker.probes_in_flight == probes
            self._record(held, verdict, 0.0)  # a no-op in the model too (done)
        else:
            self._record(held, verdict, 0.0)

    @rule(seconds=st.sampled_from([0.0, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 30.0, 130.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def force_open(self) -> None:
        self.breaker.force_open()
        model = self.model
        model.forced = OPEN
        if model.state is not OPEN:
            model.open_until = math.inf
            model.transition(OPEN)

    @rule()
    def force_closed(self) -> None:
        self.breaker.force_closed()
        model = self.model
        model.forced = CLOSED
        if model.state is not CLOSED:
            model.transition(CLOSED)

    @rule()
    def reset(self) -> None:
        self.breaker.reset()
        model = self.model
        model.forced = None
        model.streak = 0
        if model.state is not CLOSED:
            model.transition(CLOSED)
        else:
            model.failures = 0
            model.calls.clear()

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        if not hasattr(self, "model"):
            return
        model, breaker, now = self.model, self.breaker, self.clock()
        expected = model.lazy(now)
        assert breaker.state is expected
        assert breaker.forced is model.forced
        assert breaker.is_rejecting() is model.rejecting(now)
        if model.forced is OPEN:
            assert breaker.retry_after == math.inf
        elif expected is OPEN:
            assert breaker.retry_after == pytest.approx(model.open_until - now)
        else:
            assert breaker.retry_after == 0.0
        if not self.policy.rate_mode:
            assert breaker.failure_count == model.failures

    @invariant()
    def probes_bounded_and_accounted(self) -> None:
        if not hasattr(self, "model"):
            return
        probes = self.breaker.probes_in_flight
        assert 0 <= probes <= self.policy.half_open_max_calls
        live = sum(
            1 for h in self.held if h.probe and not h.done and h.generation == self.model.generation
        )
        assert probes == self.model.probes == live

    @invariant()
    def only_allowed_states(self) -> None:
        if not hasattr(self, "model"):
            return
        breaker = self.breaker
        if breaker.forced is OPEN:
            assert breaker.state is OPEN
        if breaker.forced is CLOSED:
            assert breaker.state is CLOSED
        if breaker.state is not HALF_OPEN:
            assert breaker.probes_in_flight == 0
        for old, new in self.transitions:
            assert old is not new
            assert (old, new) in NATURAL or new in (OPEN, CLOSED), (old, new)

    def teardown(self) -> None:
        """Every ticket given back: no probe slot may be left taken."""
        if not hasattr(self, "model"):
            return
        for held in self.held:
            if not held.done:
                self.breaker.on_ignored(held.ticket)
        assert self.breaker.probes_in_flight == 0
        assert self.breaker.calls_in_flight == 0


class ConsecutiveMode(BreakerMachine):
    @initialize(policy=policies(rate_mode=False), seed=st.integers(0, 2**16))
    def begin(self, policy: BreakerPolicy, seed: int) -> None:
        self.start(policy, seed)


class RateMode(BreakerMachine):
    @initialize(policy=policies(rate_mode=True), seed=st.integers(0, 2**16))
    def begin(self, policy: BreakerPolicy, seed: int) -> None:
        self.start(policy, seed)


MODEL_SETTINGS = settings(
    max_examples=300,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
ConsecutiveMode.TestCase.settings = MODEL_SETTINGS
RateMode.TestCase.settings = MODEL_SETTINGS
test_consecutive_mode_against_model = ConsecutiveMode.TestCase
test_rate_mode_against_model = RateMode.TestCase
