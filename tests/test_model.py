"""Model-based test of the sans-IO breaker: a hypothesis state machine drives
``Breaker`` (admissions, concurrent probes, successes, failures, non-counted
errors and cancellations, stale and repeated reports, clock advances, manual
controls, trips decided elsewhere with ``open_for``) in consecutive and rate
mode, against a small reference model written from DESIGN.md and the
BreakerPolicy docstring. After every step the whole ``snapshot()`` (window
totals included), ``is_rejecting()``, ``is_idle()`` and the calls in flight
are compared with the model, and reading them must change nothing.

The exploration is derandomized (the same examples on every run), and a fixed
set of scripted scenarios drives the same machine through the edges a random
walk may miss: the window sliding part-way, a call exactly at the slow-call
duration, a share exactly at the failure rate, the backoff streak after
``reset()`` and after a recovery, ``open_for``, and a timer reaching exactly
its end."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

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
    done: bool = False  # a probe's slot given back (its first report)
    reported: bool = False  # reported at least once (else given back at teardown)


@dataclass
class Model:
    """The reference: what DESIGN.md says the breaker does."""

    policy: BreakerPolicy
    seed: int
    state: CircuitState = CLOSED
    forced: CircuitState | None = None
    generation: int = 0
    failures: int = 0
    last_failure: float = -math.inf
    probes: int = 0
    probe_successes: int = 0
    in_flight: int = 0
    streak: int = 0
    open_until: float = 0.0
    open_period: float = 0.0
    opened_total: int = 0
    #: rate mode: (time, failed, slow) of the calls recorded since the last transition
    calls: list[tuple[float, bool, bool]] = field(default_factory=list)
    jitter: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.open_period = self.policy.recovery_timeout
        self.jitter = random.Random(self.seed)  # the breaker's rng, seeded alike

    def transition(self, new: CircuitState) -> None:
        self.state = new
        self.generation += 1
        self.failures = self.probes = self.probe_successes = 0
        self.calls.clear()

    def reads(self, now: float) -> CircuitState:
        """An open circuit whose timer ran out reads half-open (it becomes
        half-open when the first probe is admitted)."""
        if self.state is OPEN and self.forced is None and now >= self.open_until:
            return HALF_OPEN
        return self.state

    def rejecting(self, now: float) -> bool:
        if self.state is CLOSED:
            return False
        if self.state is OPEN:
            return self.forced is OPEN or now < self.open_until
        return self.probes >= self.policy.half_open_max_calls

    def period(self) -> float:
        """The open period: ``recovery_timeout``; with ``max_recovery_timeout``,
        doubled for each failed probe in a row, up to the cap, with ±25% jitter,
        never below ``recovery_timeout`` nor above the cap."""
        base, cap = self.policy.recovery_timeout, self.policy.max_recovery_timeout
        if cap is None or self.streak == 0:
            return base
        doubled = min(cap, base * 2.0 ** min(self.streak, 64))
        return max(base, min(cap, doubled * self.jitter.uniform(0.75, 1.25)))

    def open(self, now: float) -> None:
        self.open_period = self.period()
        self.open_until = now + self.open_period
        self.opened_total += 1
        self.transition(OPEN)

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

    def idle(self, now: float) -> bool:
        if self.state is not CLOSED or self.forced is not None or self.in_flight:
            return False
        if self.policy.rate_mode:
            return self.window_totals(now)[1] == 0
        return self.failures == 0 or now - self.last_failure >= self.policy.window

    def snapshot(self, now: float) -> dict[str, Any]:
        if self.forced is OPEN:
            retry_after = None
        elif self.state is OPEN:
            retry_after = round(max(0.0, self.open_until - now), 3)
        else:
            retry_after = 0.0
        data: dict[str, Any] = {
            "state": self.reads(now).value,
            "forced": None if self.forced is None else self.forced.value,
            "consecutive_failures": self.failures,
            "opened_total": self.opened_total,
            "retry_after": retry_after,
            "open_period": None if math.isinf(self.open_period) else round(self.open_period, 3),
            "probes_in_flight": self.probes,
        }
        if self.policy.rate_mode:
            calls, failures, slow = self.window_totals(now)
            data["window"] = {"calls": calls, "failures": failures, "slow_calls": slow}
        return data


def policies(rate_mode: bool) -> st.SearchStrategy[BreakerPolicy]:
    """Small numbers, so that trips, recoveries and window edges are reached often."""
    return st.builds(
        BreakerPolicy,
        failure_threshold=st.integers(1, 4),
        recovery_timeout=st.just(5.0),
        half_open_max_calls=st.integers(1, 3),
        success_threshold=st.integers(1, 3),
        max_recovery_timeout=st.sampled_from([None, 5.0, 6.0, 20.0, 300.0]),
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
        self.model = Model(policy, seed)
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
        """The breaker opened on its own, for the period the model expects."""
        model, policy = self.model, self.policy
        model.open(self.clock())
        period = model.open_period
        cap = policy.max_recovery_timeout
        if cap is None or model.streak == 0:
            assert period == policy.recovery_timeout
        else:
            assert policy.recovery_timeout <= period <= cap, (period, policy)
        assert self.breaker.retry_after == pytest.approx(period)

    def _record(self, held: Held, failed: bool | None, duration: float) -> None:
        """``failed``: True failure, False success, None ignored (cancelled/caller error)."""
        model, policy, now = self.model, self.policy, self.clock()
        held.reported = True
        if held.probe:
            if held.done:
                return
            held.done = True
            model.in_flight = max(0, model.in_flight - 1)
            if held.generation != model.generation:
                return
            model.probes -= 1
            if failed is None:
                return
            if failed:
                if model.forced is None:
                    model.streak += 1
                    self._open()
            else:
                model.probe_successes += 1
                if model.probe_successes >= policy.success_threshold:
                    model.streak = 0
                    model.open_period = policy.recovery_timeout
                    model.transition(CLOSED)
            return
        # one ticket per closed generation, shared: each report settles one call
        model.in_flight = max(0, model.in_flight - 1)
        if failed is None or held.generation != model.generation:
            return
        if policy.rate_mode:
            slow = policy.slow_call_duration is not None and duration >= policy.slow_call_duration
            model.calls.append((now, failed, slow))
            if model.rate_trips(now):
                self._open()
        elif failed:
            model.last_failure = now
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
        model.in_flight += 1
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
        self._record(held, verdict, 0.0)  # for a probe, a no-op in the model too (done)

    @rule(failed=st.booleans(), count=st.integers(1, 4), duration=durations)
    def calls(self, failed: bool, count: int, duration: float) -> None:
        """Several calls admitted and answered at once (reaches thresholds sooner)."""
        for _ in range(count):
            held = self.admit()
            if isinstance(held, Held):
                (self.fail if failed else self.succeed)(held, duration)

    @rule(seconds=st.sampled_from([0.0, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 30.0, 130.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def advance_to_the_end_of_the_open_period(self) -> None:
        """Exactly to the end of the open period: the timer's edge."""
        until = self.model.open_until
        if math.isfinite(until) and until > self.clock():
            self.clock.now = until

    @rule()
    def force_open(self) -> None:
        self.breaker.force_open()
        model = self.model
        model.forced = OPEN
        if model.state is not OPEN:
            model.opened_total += 1
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
        model.open_period = self.policy.recovery_timeout
        if model.state is not CLOSED:
            model.transition(CLOSED)
        else:
            model.failures = 0
            model.calls.clear()

    @rule(seconds=st.sampled_from([-1.0, 0.0, 2.5, 30.0]))
    def open_for(self, seconds: float) -> None:
        """A trip decided elsewhere (a fleet-shared store)."""
        self.breaker.open_for(seconds)
        model = self.model
        if model.forced is not None:
            return
        seconds = max(0.0, seconds)
        model.open_until = self.clock() + seconds
        if model.state is not OPEN:
            model.open_period = seconds
            model.opened_total += 1
            model.transition(OPEN)

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        if not hasattr(self, "model"):
            return
        model, breaker, now = self.model, self.breaker, self.clock()
        assert breaker.state is model.reads(now)
        assert breaker.forced is model.forced
        assert breaker.is_rejecting() is model.rejecting(now)
        if model.forced is OPEN:
            assert breaker.retry_after == math.inf
        elif model.state is OPEN:
            assert breaker.retry_after == pytest.approx(max(0.0, model.open_until - now))
        else:
            assert breaker.retry_after == 0.0
        if not self.policy.rate_mode:
            assert breaker.failure_count == model.failures
        assert breaker.snapshot() == model.snapshot(now)
        assert breaker.calls_in_flight == model.in_flight
        assert breaker.is_idle() is model.idle(now)

    @invariant()
    def reading_changes_nothing(self) -> None:
        """``is_rejecting()``, ``state``, ``snapshot()`` and ``is_idle()`` have no side effects."""
        if not hasattr(self, "model"):
            return
        breaker = self.breaker
        before = (breaker.snapshot(), len(self.transitions), breaker.calls_in_flight)
        for _ in range(2):
            breaker.is_rejecting()
            _ = breaker.state, breaker.retry_after
            breaker.is_idle()
            breaker.snapshot()
        assert (breaker.snapshot(), len(self.transitions), breaker.calls_in_flight) == before

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

    def check(self) -> None:
        """Every invariant (for the scripted scenarios)."""
        self.agrees_with_the_model()
        self.reading_changes_nothing()
        self.probes_bounded_and_accounted()
        self.only_allowed_states()

    def teardown(self) -> None:
        """Every ticket given back: no probe slot may be left taken."""
        if not hasattr(self, "model"):
            return
        for held in self.held:
            if not held.reported:
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
    derandomize=True,  # the same examples on every run: a failure is never a lucky seed
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
ConsecutiveMode.TestCase.settings = MODEL_SETTINGS
RateMode.TestCase.settings = MODEL_SETTINGS
test_consecutive_mode_against_model = ConsecutiveMode.TestCase
test_rate_mode_against_model = RateMode.TestCase


# -- scripted scenarios, through the same machine ---------------------------------------------


def play(policy: BreakerPolicy, script: str, *, start: float = 1000.0, seed: int = 7) -> None:
    """Run ``script`` (one step a line) against the breaker and the model,
    checking every invariant after each step. Steps: ``admit`` (the ticket
    gets the next number), ``succeed N [duration]``, ``fail N [duration]``,
    ``ignore N``, ``calls fail|succeed COUNT [duration]``, ``advance S``,
    ``to_end``, ``force_open``, ``force_closed``, ``reset``, ``open_for S``,
    and ``expect KEY=VALUE ...`` (a snapshot field, as JSON would show it)."""
    machine = BreakerMachine()
    machine.clock.now = start
    machine.start(policy, seed)
    admitted: list[Held] = []
    machine.check()
    for number, line in enumerate(script.strip().splitlines(), 1):
        step, *args = line.split()
        if step == "admit":
            held = machine.admit()
            assert isinstance(held, Held), f"line {number}: rejected"
            admitted.append(held)
        elif step in ("succeed", "fail"):
            duration = float(args[1]) if len(args) > 1 else 0.0
            getattr(machine, step)(admitted[int(args[0])], duration)
        elif step == "ignore":
            machine.ignore(admitted[int(args[0])])
        elif step == "calls":
            duration = float(args[2]) if len(args) > 2 else 0.0
            machine.calls(args[0] == "fail", int(args[1]), duration)
        elif step == "advance":
            machine.advance(float(args[0]))
        elif step == "to_end":
            machine.advance_to_the_end_of_the_open_period()
        elif step == "open_for":
            machine.open_for(float(args[0]))
        elif step == "expect":
            snapshot = machine.breaker.snapshot()
            for pair in args:
                key, _, value = pair.partition("=")
                found = snapshot
                for part in key.split("."):
                    found = found[part]
                assert str(found) == value, f"line {number}: {key} is {found}, not {value}"
        else:
            getattr(machine, step)()
        machine.check()
    machine.teardown()


RATE = BreakerPolicy(failure_rate=1.0, minimum_calls=5, window=10.0, recovery_timeout=5.0)


def test_the_window_slides_part_way_bucket_by_bucket() -> None:
    play(
        RATE,
        """
        calls fail 2
        advance 4.5
        calls succeed 2
        expect window.calls=4 window.failures=2
        advance 5.49
        expect window.calls=4 window.failures=2
        advance 0.01
        expect window.calls=2 window.failures=0
        advance 4.5
        expect window.calls=0
        calls fail 1
        advance 130
        expect window.calls=0 window.failures=0
        """,
    )


def test_slots_skipped_over_are_emptied() -> None:
    play(
        RATE,
        """
        calls fail 1
        advance 9.0
        calls succeed 1
        expect window.calls=2
        advance 2.0
        calls succeed 1
        expect window.calls=2 window.failures=0
        advance 3.0
        calls fail 1 0.5
        expect window.calls=3 window.failures=1
        """,
    )


def test_slow_calls_leave_the_window_too() -> None:
    play(
        BreakerPolicy(
            failure_rate=1.0, minimum_calls=10, slow_call_duration=0.5, slow_call_rate=1.0
        ),
        """
        calls succeed 2 1.0
        advance 5.0
        calls succeed 1 0.5
        calls fail 1 0.1
        expect window.calls=4 window.slow_calls=3
        advance 5.0
        expect window.calls=2 window.slow_calls=1 window.failures=1
        calls succeed 1 0.0
        expect window.calls=3 window.slow_calls=1
        advance 5.0
        calls succeed 1 0.0
        expect window.calls=2 window.slow_calls=0
        """,
    )


def test_the_window_slides_from_a_clock_starting_at_zero() -> None:
    play(
        RATE,
        """
        calls fail 1
        advance 1.0
        calls fail 1
        advance 2.5
        calls succeed 1
        expect window.calls=3 window.failures=2
        advance 6.5
        expect window.calls=2 window.failures=1
        advance 1.0
        expect window.calls=1 window.failures=0
        """,
        start=0.0,
    )


def test_a_narrow_window_slides_too() -> None:
    play(
        BreakerPolicy(failure_rate=1.0, minimum_calls=5, window=1.0),
        """
        calls fail 2
        advance 0.55
        calls succeed 1
        advance 0.45
        expect window.calls=1
        advance 0.55
        expect window.calls=0
        """,
    )


def test_a_call_exactly_at_the_slow_call_duration_is_slow() -> None:
    play(
        BreakerPolicy(
            failure_rate=1.0, minimum_calls=3, slow_call_duration=0.5, slow_call_rate=0.5
        ),
        """
        calls succeed 1 0.49
        calls succeed 1 0.5
        expect window.slow_calls=1 state=closed
        calls succeed 1 0.1
        expect state=closed
        calls succeed 1 2.0
        expect state=open opened_total=1
        """,
    )


def test_the_slow_share_trips_exactly_at_the_slow_call_rate() -> None:
    play(
        BreakerPolicy(
            failure_rate=1.0, minimum_calls=4, slow_call_duration=1.0, slow_call_rate=0.5
        ),
        """
        calls succeed 2 1.0
        calls succeed 1 0.0
        expect state=closed window.slow_calls=2
        calls succeed 1 0.0
        expect state=open
        """,
    )


def test_the_failure_share_trips_exactly_at_the_failure_rate() -> None:
    play(
        BreakerPolicy(failure_rate=0.5, minimum_calls=4),
        """
        calls fail 1
        calls succeed 2
        expect state=closed window.failures=1
        calls fail 1
        expect state=open
        """,
    )


def test_a_success_reaching_minimum_calls_can_trip() -> None:
    play(
        BreakerPolicy(failure_rate=0.5, minimum_calls=3),
        """
        calls fail 2
        expect state=closed
        calls succeed 1
        expect state=open
        """,
    )


BACKOFF = BreakerPolicy(failure_threshold=1, recovery_timeout=5.0, max_recovery_timeout=300.0)


def test_the_backoff_streak_doubles_and_starts_again_after_reset() -> None:
    play(
        BACKOFF,
        """
        calls fail 1
        expect open_period=5.0 opened_total=1
        to_end
        admit
        fail 0
        to_end
        admit
        fail 1
        to_end
        admit
        fail 2
        expect opened_total=4
        reset
        expect state=closed open_period=5.0 consecutive_failures=0
        calls fail 1
        expect open_period=5.0 retry_after=5.0
        to_end
        admit
        fail 3
        """,
    )


def test_the_backoff_streak_ends_when_a_probe_closes_the_circuit() -> None:
    play(
        BACKOFF,
        """
        calls fail 1
        to_end
        admit
        fail 0
        to_end
        admit
        succeed 1
        expect state=closed open_period=5.0
        calls fail 1
        expect open_period=5.0
        to_end
        admit
        fail 2
        """,
    )


def test_the_backoff_never_passes_its_cap() -> None:
    play(
        BreakerPolicy(failure_threshold=1, recovery_timeout=5.0, max_recovery_timeout=12.0),
        """
        calls fail 1
        to_end
        admit
        fail 0
        to_end
        admit
        fail 1
        to_end
        admit
        fail 2
        to_end
        admit
        fail 3
        """,
    )


def test_recovery_at_the_exact_end_of_the_open_period() -> None:
    play(
        BreakerPolicy(failure_threshold=2, recovery_timeout=5.0, success_threshold=2,
                      half_open_max_calls=2),
        """
        calls fail 2
        expect state=open retry_after=5.0
        advance 4.999
        expect state=open retry_after=0.001
        to_end
        expect state=half_open retry_after=0.0
        admit
        admit
        succeed 0
        expect state=half_open probes_in_flight=1
        succeed 1
        expect state=closed opened_total=1
        """,
    )  # fmt: skip


def test_open_for_opens_extends_and_yields_to_forcing() -> None:
    play(
        BreakerPolicy(failure_threshold=3, recovery_timeout=5.0),
        """
        calls fail 2
        open_for 2.5
        expect state=open open_period=2.5 retry_after=2.5 opened_total=1 consecutive_failures=0
        advance 1
        open_for 30
        expect state=open open_period=2.5 retry_after=30.0 opened_total=1
        open_for -1
        expect state=half_open retry_after=0.0
        admit
        fail 0
        expect state=open open_period=5.0 opened_total=2
        force_open
        open_for 1
        expect state=open forced=open retry_after=None
        reset
        open_for 0
        expect state=half_open opened_total=3 open_period=0.0
        force_closed
        open_for 10
        expect state=closed forced=closed
        """,
    )


def test_force_open_counts_one_opening_and_holds_past_the_timer() -> None:
    play(
        BreakerPolicy(failure_threshold=1, recovery_timeout=5.0),
        """
        force_open
        expect state=open forced=open opened_total=1 retry_after=None
        force_open
        expect opened_total=1
        reset
        calls fail 1
        force_open
        advance 30
        expect state=open opened_total=2
        """,
    )


def test_the_snapshot_after_reset_in_rate_mode_is_a_fresh_breakers() -> None:
    play(
        BreakerPolicy(failure_rate=0.5, minimum_calls=2, slow_call_duration=0.5),
        """
        calls fail 1 1.0
        expect window.calls=1 window.failures=1 window.slow_calls=1
        reset
        expect window.calls=0 window.failures=0 window.slow_calls=0 state=closed
        calls succeed 1
        expect window.calls=1 window.failures=0 state=closed
        calls fail 1
        expect state=open
        reset
        expect state=closed window.calls=0 open_period=30.0
        """,
    )


def test_idleness_in_consecutive_mode_lasts_a_window_after_the_last_failure() -> None:
    play(
        BreakerPolicy(failure_threshold=5, window=10.0),
        """
        calls fail 2
        advance 9.9
        advance 0.1
        admit
        ignore 0
        calls succeed 1
        """,
    )


def test_stale_and_repeated_reports_settle_each_call_once() -> None:
    play(
        BreakerPolicy(failure_threshold=2, recovery_timeout=5.0, half_open_max_calls=2),
        """
        admit
        admit
        fail 0
        fail 1
        to_end
        admit
        admit
        ignore 2
        fail 3
        to_end
        admit
        succeed 4
        """,
    )
