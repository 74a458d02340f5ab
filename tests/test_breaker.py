"""The sans-IO circuit breaker, driven by a FakeClock: no IO, no sleeping."""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from resilient_http import Breaker, BreakerPolicy, CircuitState
from resilient_http._breaker import LockedBreaker, Ticket
from resilient_http.testing import FakeClock

CLOSED, OPEN, HALF_OPEN = CircuitState.CLOSED, CircuitState.OPEN, CircuitState.HALF_OPEN

Transition = tuple[CircuitState, CircuitState]


def make(
    clock: FakeClock,
    transitions: list[Transition] | None = None,
    **settings: Any,
) -> Breaker:
    def hook(breaker: Breaker, old: CircuitState, new: CircuitState) -> None:
        if transitions is not None:
            transitions.append((old, new))

    return Breaker(
        "api.example.com:443", BreakerPolicy(**settings), clock=clock, on_transition=hook
    )


def admit(breaker: Breaker) -> Ticket:
    ticket = breaker.admit()
    assert ticket is not None, f"expected admission in state {breaker.state}"
    return ticket


def fail(breaker: Breaker, times: int = 1) -> None:
    for _ in range(times):
        breaker.on_failure(admit(breaker))


def trip(breaker: Breaker) -> None:
    fail(breaker, breaker.policy.failure_threshold)
    assert breaker.state is OPEN


# -- closed ---------------------------------------------------------------------


def test_new_breaker_is_closed_and_admits(clock: FakeClock) -> None:
    breaker = make(clock)
    assert breaker.state is CLOSED
    assert breaker.retry_after == 0.0
    assert breaker.admit() is not None


def test_threshold_consecutive_failures_open(clock: FakeClock) -> None:
    transitions: list[Transition] = []
    breaker = make(clock, transitions, failure_threshold=3)
    fail(breaker, 2)
    assert breaker.state is CLOSED
    assert breaker.failure_count == 2
    fail(breaker)
    assert breaker.state is OPEN
    assert transitions == [(CLOSED, OPEN)]


def test_success_resets_the_failure_count(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=3)
    fail(breaker, 2)
    breaker.on_success(admit(breaker))
    assert breaker.failure_count == 0
    fail(breaker, 2)
    assert breaker.state is CLOSED  # 2 + 2 failures, but never 3 in a row


def test_ignored_outcome_neither_resets_nor_counts(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=3)
    fail(breaker, 2)
    breaker.on_ignored(admit(breaker))  # e.g. a cancelled call
    assert breaker.failure_count == 2
    fail(breaker)
    assert breaker.state is OPEN


# -- open -----------------------------------------------------------------------


def test_open_rejects_every_call_until_recovery_timeout(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=30)
    trip(breaker)
    for _ in range(10):
        assert breaker.admit() is None
    assert breaker.is_rejecting()
    clock.advance(29.999)
    assert breaker.admit() is None
    assert breaker.state is OPEN


def test_retry_after_counts_down_while_open(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=30)
    trip(breaker)
    assert breaker.retry_after == pytest.approx(30.0)
    clock.advance(12.5)
    assert breaker.retry_after == pytest.approx(17.5)
    clock.advance(17.5)
    assert breaker.retry_after == 0.0


# -- half-open ------------------------------------------------------------------


def test_after_recovery_timeout_state_reads_half_open(clock: FakeClock) -> None:
    transitions: list[Transition] = []
    breaker = make(clock, transitions, failure_threshold=1, recovery_timeout=30)
    trip(breaker)
    clock.advance(30)
    assert breaker.state is HALF_OPEN
    assert transitions == [(CLOSED, OPEN)]  # the first probe moves it, not a read
    assert breaker.admit() is not None
    assert transitions == [(CLOSED, OPEN), (OPEN, HALF_OPEN)]


def test_reading_an_expired_open_circuit_changes_nothing(clock: FakeClock) -> None:
    """README: a read (``state``, ``snapshot()``, ``is_rejecting()``) never moves
    a breaker, fires an event or writes a log line."""
    transitions: list[Transition] = []
    breaker = make(clock, transitions, failure_threshold=1, recovery_timeout=30)
    trip(breaker)
    clock.advance(31)
    for _ in range(3):
        assert breaker.state is HALF_OPEN
        assert breaker.snapshot()["state"] == "half_open"
        assert not breaker.is_rejecting()
    assert transitions == [(CLOSED, OPEN)]
    assert breaker.snapshot()["probes_in_flight"] == 0


@pytest.mark.parametrize("max_calls", [1, 3])
def test_half_open_admits_at_most_half_open_max_calls_concurrent_probes(
    clock: FakeClock, max_calls: int
) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=5, half_open_max_calls=max_calls)
    trip(breaker)
    clock.advance(5)
    tickets = [breaker.admit() for _ in range(50)]
    probes = [t for t in tickets if t is not None]
    assert len(probes) == max_calls
    assert all(t.probe for t in probes)
    assert breaker.probes_in_flight == max_calls
    assert breaker.is_rejecting()
    assert breaker.state is HALF_OPEN


def test_success_threshold_probe_successes_close(clock: FakeClock) -> None:
    transitions: list[Transition] = []
    breaker = make(
        clock,
        transitions,
        failure_threshold=1,
        recovery_timeout=5,
        half_open_max_calls=1,
        success_threshold=3,
    )
    trip(breaker)
    clock.advance(5)
    for _ in range(2):
        breaker.on_success(admit(breaker))
        assert breaker.state is HALF_OPEN
    breaker.on_success(admit(breaker))
    assert breaker.state is CLOSED
    assert transitions[-1] == (HALF_OPEN, CLOSED)
    assert breaker.failure_count == 0
    # closed again: the full threshold is needed to reopen
    assert breaker.admit() is not None


def test_probe_failure_reopens_and_restarts_the_timer(clock: FakeClock) -> None:
    transitions: list[Transition] = []
    breaker = make(clock, transitions, failure_threshold=1, recovery_timeout=30)
    trip(breaker)
    clock.advance(30)
    probe = admit(breaker)
    clock.advance(7)  # the probe takes a while
    breaker.on_failure(probe)
    assert breaker.state is OPEN
    assert transitions[-1] == (HALF_OPEN, OPEN)
    assert breaker.retry_after == pytest.approx(30.0)  # from the failure, not the first opening
    clock.advance(29.9)
    assert breaker.admit() is None
    clock.advance(0.1)
    assert breaker.admit() is not None


def test_probe_failure_after_some_successes_still_reopens(clock: FakeClock) -> None:
    breaker = make(
        clock, failure_threshold=1, recovery_timeout=5, half_open_max_calls=2, success_threshold=2
    )
    trip(breaker)
    clock.advance(5)
    first, second = admit(breaker), admit(breaker)
    breaker.on_success(first)
    breaker.on_failure(second)
    assert breaker.state is OPEN


def test_probe_success_frees_its_slot_for_the_next_probe(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=5, success_threshold=2)
    trip(breaker)
    clock.advance(5)
    probe = admit(breaker)
    assert breaker.admit() is None
    breaker.on_success(probe)
    assert breaker.state is HALF_OPEN
    assert breaker.admit() is not None


def test_ignored_probe_gives_its_slot_back(clock: FakeClock) -> None:
    """A cancelled probe, or one that raised a non-counted error, must not
    leave the breaker stuck half-open with no free slot."""
    breaker = make(clock, failure_threshold=1, recovery_timeout=5)
    trip(breaker)
    clock.advance(5)
    probe = admit(breaker)
    assert breaker.admit() is None
    breaker.on_ignored(probe)
    assert breaker.state is HALF_OPEN
    assert breaker.probes_in_flight == 0
    replacement = admit(breaker)
    breaker.on_success(replacement)
    assert breaker.state is CLOSED


def test_a_ticket_reported_twice_counts_once(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=5, half_open_max_calls=2)
    trip(breaker)
    clock.advance(5)
    probe = admit(breaker)
    other = admit(breaker)
    breaker.on_ignored(probe)
    breaker.on_ignored(probe)  # a second report must not free someone else's slot
    assert breaker.probes_in_flight == 1
    breaker.on_failure(probe)  # nor turn into a verdict afterwards
    assert breaker.state is HALF_OPEN
    breaker.on_success(other)
    assert breaker.state is CLOSED


# -- stale tickets ----------------------------------------------------------------


def test_stale_closed_ticket_cannot_reopen_a_circuit_that_closed_again(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=5)
    slow_call = admit(breaker)  # admitted while closed, still running
    trip(breaker)
    clock.advance(5)
    breaker.on_success(admit(breaker))
    assert breaker.state is CLOSED
    breaker.on_failure(slow_call)
    assert breaker.state is CLOSED
    assert breaker.failure_count == 0


def test_stale_closed_ticket_success_cannot_close_an_open_circuit(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=5)
    slow_call = admit(breaker)
    trip(breaker)
    breaker.on_success(slow_call)
    assert breaker.state is OPEN
    assert breaker.admit() is None


def test_stale_probe_outcome_is_ignored_after_reopening(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=5, half_open_max_calls=2)
    trip(breaker)
    clock.advance(5)
    failing, slow = admit(breaker), admit(breaker)
    breaker.on_failure(failing)
    assert breaker.state is OPEN
    breaker.on_success(slow)  # from the previous half-open period
    assert breaker.state is OPEN
    clock.advance(5)
    assert breaker.state is HALF_OPEN
    assert breaker.probes_in_flight == 0  # the stale probe freed nothing in the new period


# -- manual control ---------------------------------------------------------------


def test_force_open_rejects_indefinitely(clock: FakeClock) -> None:
    transitions: list[Transition] = []
    breaker = make(clock, transitions, recovery_timeout=5)
    breaker.force_open()
    assert breaker.state is OPEN
    assert breaker.forced is OPEN
    assert math.isinf(breaker.retry_after)
    clock.advance(10_000)
    assert breaker.state is OPEN
    assert breaker.admit() is None
    assert transitions == [(CLOSED, OPEN)]


def test_force_open_on_an_open_circuit_holds_it_past_its_timer(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=5)
    trip(breaker)
    breaker.force_open()
    clock.advance(60)
    assert breaker.admit() is None
    assert breaker.state is OPEN


def test_force_closed_ignores_failures(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=2)
    breaker.force_closed()
    fail(breaker, 10)
    assert breaker.state is CLOSED
    assert breaker.forced is CLOSED
    assert breaker.admit() is not None


def test_force_closed_closes_an_open_circuit(clock: FakeClock) -> None:
    transitions: list[Transition] = []
    breaker = make(clock, transitions, failure_threshold=1)
    trip(breaker)
    breaker.force_closed()
    assert breaker.state is CLOSED
    assert transitions[-1] == (OPEN, CLOSED)


def test_reset_releases_forcing_and_clears_counters(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=3)
    breaker.force_open()
    breaker.reset()
    assert breaker.state is CLOSED
    assert breaker.forced is None
    assert breaker.retry_after == 0.0
    fail(breaker, 2)
    breaker.reset()
    assert breaker.failure_count == 0
    fail(breaker, 2)
    assert breaker.state is CLOSED  # the threshold counts from the reset


def test_reset_after_force_closed_lets_failures_trip_again(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=2)
    breaker.force_closed()
    fail(breaker, 5)
    breaker.reset()
    fail(breaker, 2)
    assert breaker.state is OPEN


# -- snapshot ----------------------------------------------------------------------


@pytest.mark.parametrize("situation", ["closed", "open", "half_open", "forced_open"])
def test_snapshot_is_json_serialisable(clock: FakeClock, situation: str) -> None:
    breaker = make(clock, failure_threshold=2, recovery_timeout=30)
    if situation == "closed":
        fail(breaker)
    elif situation == "open":
        trip(breaker)
        clock.advance(10)
    elif situation == "half_open":
        trip(breaker)
        clock.advance(30)
        admit(breaker)
    else:
        breaker.force_open()
    snapshot = breaker.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["state"] == ("open" if situation == "forced_open" else situation)
    if situation == "closed":
        assert snapshot["consecutive_failures"] == 1
    if situation == "open":
        assert snapshot["retry_after"] == pytest.approx(20.0)
    if situation == "half_open":
        assert snapshot["probes_in_flight"] == 1
    if situation == "forced_open":
        assert snapshot["forced"] == "open"


def test_snapshot_of_a_never_recovering_breaker_is_strict_json(clock: FakeClock) -> None:
    # recovery_timeout=inf (open until reset by hand) is valid; health endpoints
    # (e.g. Starlette's JSONResponse) refuse NaN/Infinity, so the snapshot must not hold them.
    breaker = make(clock, failure_threshold=1, recovery_timeout=math.inf)
    fail(breaker)
    snapshot = breaker.snapshot()
    assert json.loads(json.dumps(snapshot, allow_nan=False)) == snapshot
    assert snapshot["state"] == "open"
    assert snapshot["retry_after"] is None
    assert snapshot["open_period"] is None


def test_snapshot_of_a_rate_mode_breaker_is_json_serialisable(clock: FakeClock) -> None:
    breaker = Breaker(
        "a:80", BreakerPolicy(failure_rate=0.5, minimum_calls=4, window=10), clock=clock
    )
    breaker.on_failure(admit(breaker))
    breaker.on_success(admit(breaker))
    snapshot = breaker.snapshot()
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert snapshot["window"] == {"calls": 2, "failures": 1, "slow_calls": 0}


def test_circuit_state_values_are_json_friendly() -> None:
    assert [s.value for s in CircuitState] == ["closed", "open", "half_open"]
    assert json.dumps({"s": CircuitState.HALF_OPEN}) == '{"s": "half_open"}'
    assert str(CircuitState.OPEN) == "open"


# -- idleness (what the host map may forget) --------------------------------------------


def test_a_breaker_with_a_recent_failure_is_not_idle(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=5, window=10)
    assert breaker.is_idle()
    fail(breaker, 2)
    assert not breaker.is_idle()
    clock.advance(9.9)
    assert not breaker.is_idle()
    clock.advance(0.1)
    assert breaker.is_idle()  # a window after the last failure


def test_a_breaker_with_a_call_in_flight_open_or_forced_is_not_idle(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1)
    ticket = admit(breaker)
    assert not breaker.is_idle()
    breaker.on_success(ticket)
    assert breaker.is_idle()
    breaker.force_closed()
    assert not breaker.is_idle()
    breaker.reset()
    trip(breaker)
    assert not breaker.is_idle()


def test_in_rate_mode_idle_means_no_failure_left_in_the_window(clock: FakeClock) -> None:
    breaker = make(clock, failure_rate=1.0, minimum_calls=10, window=10)
    breaker.on_success(admit(breaker))
    assert breaker.is_idle()
    breaker.on_failure(admit(breaker))
    assert not breaker.is_idle()
    clock.advance(10)
    assert breaker.is_idle()


# -- rate mode: the closed-state success shortcut ------------------------------------------
# A success that is neither slow nor the first in a new bucket skips judging the
# window once its totals were judged below both rates; these pin the cases that
# must still be judged.


def rate_breaker(clock: FakeClock, **settings: Any) -> Breaker:
    return make(clock, failure_rate=0.5, minimum_calls=3, window=10, **settings)


def test_a_success_after_the_window_slid_can_open_the_circuit(clock: FakeClock) -> None:
    breaker = rate_breaker(clock)
    for _ in range(3):
        breaker.on_success(admit(breaker))  # judged: 3 calls, no failure
    clock.advance(5)
    fail(breaker, 2)  # 2 of 5: below the rate
    breaker.on_success(admit(breaker))
    assert breaker.state is CLOSED
    clock.advance(5.5)  # the first three successes leave the window
    breaker.on_success(admit(breaker))  # 2 failures of 3 calls
    assert breaker.state is OPEN


def test_a_slow_success_is_judged_once_the_window_is_steady(clock: FakeClock) -> None:
    breaker = rate_breaker(clock, slow_call_duration=1.0, slow_call_rate=0.5)
    for _ in range(4):
        breaker.on_success(admit(breaker), 0.1)
    for _ in range(3):
        breaker.on_success(admit(breaker), 1.0)
    assert breaker.state is CLOSED  # 3 slow of 7
    breaker.on_success(admit(breaker), 1.0)  # 4 of 8
    assert breaker.state is OPEN


def test_a_success_reaching_minimum_calls_is_judged(clock: FakeClock) -> None:
    breaker = rate_breaker(clock)
    fail(breaker, 2)
    assert breaker.state is CLOSED  # too few calls to judge
    breaker.on_success(admit(breaker))  # 2 failures of 3 calls
    assert breaker.state is OPEN


def test_a_forced_closed_rate_breaker_judges_again_after_reset(clock: FakeClock) -> None:
    breaker = rate_breaker(clock)
    breaker.force_closed()
    fail(breaker, 3)
    breaker.on_success(admit(breaker))
    assert breaker.state is CLOSED
    breaker.reset()  # the window starts afresh
    for _ in range(3):
        breaker.on_success(admit(breaker))
    fail(breaker, 2)
    assert breaker.state is CLOSED  # 2 of 5
    fail(breaker)
    assert breaker.state is OPEN  # 3 of 6


def test_steady_successes_each_count_in_their_bucket(clock: FakeClock) -> None:
    """Successes after the window was judged below its rate take the short path;
    each still counts once in its own bucket, and leaves when that bucket does."""
    breaker = rate_breaker(clock)
    for _ in range(5):
        breaker.on_success(admit(breaker))  # the first three judged, two steady
    clock.advance(5)
    breaker.on_success(admit(breaker))
    assert breaker.snapshot()["window"]["calls"] == 6
    clock.advance(5.5)  # the first bucket's five leave the window
    assert breaker.snapshot()["window"]["calls"] == 1


def test_the_first_bucket_survives_the_first_slide_wherever_the_clock_starts() -> None:
    clock = FakeClock(start=1.5)  # (a monotonic clock starts anywhere)
    breaker = rate_breaker(clock)
    fail(breaker, 2)  # too few calls to judge
    clock.advance(1)
    fail(breaker)  # 3 failures of 3, two of them a bucket back
    assert breaker.state is OPEN


@pytest.mark.parametrize("kind", [Breaker, LockedBreaker])
def test_a_hand_made_tickets_slow_success_counts_as_slow(
    clock: FakeClock, kind: type[Breaker]
) -> None:
    policy = BreakerPolicy(failure_rate=0.5, minimum_calls=3, window=10, slow_call_duration=1.0)
    breaker = kind("api.example.com:443", policy, clock=clock)
    admit(breaker)
    breaker.on_success(Ticket(0, probe=False), 2.0)
    assert breaker.snapshot()["window"] == {"calls": 1, "failures": 0, "slow_calls": 1}


@pytest.mark.parametrize("kind", [Breaker, LockedBreaker])
def test_a_hand_made_ticket_of_the_current_generation_counts(
    clock: FakeClock, kind: type[Breaker]
) -> None:
    """Only the object differs from the closed-state ticket: it counts the same."""
    policy = BreakerPolicy(failure_rate=0.5, minimum_calls=3, window=10)
    breaker = kind("api.example.com:443", policy, clock=clock)
    admit(breaker)
    breaker.on_success(Ticket(0, probe=False))
    assert breaker.calls_in_flight == 0
    assert breaker.snapshot()["window"] == {"calls": 1, "failures": 0, "slow_calls": 0}
    counting = make(clock, failure_threshold=3)
    fail(counting, 2)
    counting.on_success(Ticket(0, probe=False))
    assert counting.failure_count == 0
    trip(counting)
    counting.on_success(Ticket(0, probe=False))  # stale now: nothing changes
    assert counting.state is OPEN
    assert counting.calls_in_flight == 0


# -- LockedBreaker (shared between threads) ---------------------------------------------


def drive(breaker: Breaker, clock: FakeClock) -> list[dict[str, Any]]:
    """The same calls on any breaker; the snapshots along the way."""
    seen = [breaker.snapshot()]
    breaker.on_success(admit(breaker), 0.1)
    breaker.on_ignored(admit(breaker))
    seen.append(breaker.snapshot())
    breaker.on_failure(admit(breaker), 0.7)
    seen.append(breaker.snapshot())
    clock.advance(30)
    probe = admit(breaker)
    assert breaker.admit() is None  # one probe at a time
    breaker.on_failure(probe)
    seen.append(breaker.snapshot())
    clock.advance(60)
    breaker.on_success(admit(breaker))
    seen.append(breaker.snapshot())
    breaker.open_for(12.5)
    seen.append(breaker.snapshot())
    breaker.force_open()
    breaker.force_closed()
    seen.append(breaker.snapshot())
    breaker.reset()
    seen.append(breaker.snapshot())
    return seen


def test_a_locked_breaker_decides_exactly_as_a_plain_one() -> None:
    policy = BreakerPolicy(
        failure_rate=0.5, minimum_calls=2, slow_call_duration=0.5, max_recovery_timeout=120
    )
    runs = []
    for kind in (Breaker, LockedBreaker):
        clock = FakeClock()
        told: list[Transition] = []

        def hook(
            b: Breaker, old: CircuitState, new: CircuitState, told: list[Transition] = told
        ) -> None:
            told.append((old, new))

        breaker = kind(
            "api.example.com:443", policy, clock=clock, on_transition=hook, rng=random.Random(3)
        )
        runs.append((drive(breaker, clock), told))
    assert runs[0] == runs[1]
    assert runs[1][1] == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
        (CLOSED, OPEN),
        (OPEN, CLOSED),
    ]


def test_a_locked_breaker_counts_each_outcomes_duration(clock: FakeClock) -> None:
    """Slow or not as reported; an outcome reported without a duration is not slow."""
    breaker = LockedBreaker(
        "api.example.com:443",
        BreakerPolicy(failure_rate=1.0, minimum_calls=10, slow_call_duration=0.5),
        clock=clock,
    )
    breaker.on_success(admit(breaker))
    breaker.on_failure(admit(breaker))
    assert breaker.snapshot()["window"] == {"calls": 2, "failures": 1, "slow_calls": 0}
    breaker.on_success(admit(breaker), 0.7)
    breaker.on_failure(admit(breaker), 0.5)
    breaker.on_failure(admit(breaker), 0.4)
    assert breaker.snapshot()["window"] == {"calls": 5, "failures": 3, "slow_calls": 2}


def test_a_locked_breakers_hook_runs_outside_its_lock(clock: FakeClock) -> None:
    """A hook may call back into the breaker (a listener reading a snapshot)."""
    seen: list[tuple[str, str, str]] = []

    def hook(breaker: Breaker, old: CircuitState, new: CircuitState) -> None:
        seen.append((str(old), str(new), breaker.snapshot()["state"]))

    breaker = LockedBreaker(
        "api.example.com:443", BreakerPolicy(failure_threshold=1), clock=clock, on_transition=hook
    )
    breaker.on_failure(admit(breaker))
    breaker.reset()
    assert seen == [("closed", "open", "open"), ("open", "closed", "closed")]


# -- construction ---------------------------------------------------------------------------


def test_a_breaker_without_a_policy_uses_the_default_one(clock: FakeClock) -> None:
    breaker = Breaker("api.example.com:443", clock=clock)
    assert breaker.policy == BreakerPolicy()
    fail(breaker, 4)
    assert breaker.state is CLOSED
    fail(breaker)
    assert breaker.state is OPEN
    assert breaker.retry_after == 30.0


def test_the_backoff_jitters_with_its_own_randomness_when_given_none(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, recovery_timeout=10, max_recovery_timeout=100)
    trip(breaker)
    for _ in range(3):
        clock.advance(breaker.retry_after)
        breaker.on_failure(admit(breaker))  # the probe fails: the next period doubles
    assert 10 <= breaker.retry_after <= 100
    assert breaker.retry_after != 10


def test_only_a_breaker_that_judges_slow_calls_needs_their_durations(clock: FakeClock) -> None:
    assert make(clock, failure_rate=0.5, slow_call_duration=2.0).timed is True
    assert make(clock, failure_rate=0.5).timed is False
    assert make(clock).timed is False
