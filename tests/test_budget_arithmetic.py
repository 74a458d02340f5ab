"""The retry budget's arithmetic (README, "Retry budget"; Finagle's model):
over the last ``window`` seconds, in ten buckets, retries may add at most
``ratio`` of the requests plus ``min_per_second * window``, exactly that many,
and requests and retries leave the window bucket by bucket. Also the retry
plan's edges: the deadline at exact equality, and the ``RetryCallState`` a
custom tenacity wait is given."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import tenacity

from resilient_http import RetryBudget, RetryPolicy
from resilient_http._retry import BudgetState, RetryPlan, parse_retry_after
from resilient_http.testing import FakeClock


def withdrawals(state: BudgetState, now: float) -> int:
    """How many retries the budget gives at ``now`` (taking them all)."""
    taken = 0
    while state.try_withdraw(now):
        taken += 1
        assert taken < 1000
    return taken


def deposits(state: BudgetState, now: float, count: int) -> None:
    for _ in range(count):
        state.deposit(now)


def opened(budget: RetryBudget, now: float) -> tuple[BudgetState, int]:
    """A budget whose window starts at ``now``, and the retries its reserve gave."""
    state = BudgetState(budget)
    return state, withdrawals(state, now)


@pytest.mark.parametrize(
    ("ratio", "min_per_second", "window", "requests", "allowed"),
    [
        (0.5, 0.2, 10.0, 4, 4),  # 0.5 * 4 + 0.2 * 10
        (0.2, 0.0, 10.0, 10, 2),
        (0.0, 0.5, 4.0, 7, 2),
        (1.0, 0.0, 10.0, 3, 3),
        (0.25, 0.0, 10.0, 7, 1),  # 1.75: the second retry would be over
        (0.0, 0.0, 10.0, 100, 0),
    ],
)
def test_the_budget_allows_exactly_ratio_of_requests_plus_the_reserve(
    ratio: float, min_per_second: float, window: float, requests: int, allowed: int
) -> None:
    budget = RetryBudget(ratio=ratio, min_per_second=min_per_second, window=window)
    state, taken = opened(budget, 0.0)
    assert taken == int(min_per_second * window)  # the reserve, before any request
    deposits(state, 0.0, requests)
    assert taken + withdrawals(state, 0.0) == allowed
    assert (state.requests, state.retries) == (requests, allowed)


def test_the_request_that_opens_a_window_is_counted() -> None:
    state = BudgetState(RetryBudget(ratio=1.0, min_per_second=0.0, window=10))
    state.deposit(0.0)
    assert state.requests == 1
    assert state.try_withdraw(0.0)  # one request earns one retry at ratio 1.0


def test_a_new_budget_has_counted_nothing() -> None:
    state = BudgetState(RetryBudget())
    assert (state.requests, state.retries) == (0, 0)


def test_each_request_earns_its_share_as_it_comes() -> None:
    state, _ = opened(RetryBudget(ratio=0.5, min_per_second=0.0, window=10), 0.0)
    state.deposit(0.0)
    assert not state.try_withdraw(0.0)  # half a retry
    state.deposit(0.5)
    assert state.try_withdraw(0.5)
    assert not state.try_withdraw(0.5)


def test_requests_and_retries_leave_the_window_bucket_by_bucket() -> None:
    state, _ = opened(RetryBudget(ratio=1.0, min_per_second=0.0, window=10), 0.5)  # 1 s buckets
    deposits(state, 0.5, 3)  # bucket 0
    deposits(state, 5.5, 2)  # bucket 5
    assert state.try_withdraw(5.5)
    assert withdrawals(state, 9.9) == 4  # all five requests still count (bucket 9)
    assert state.retries == 5
    # at 10.0 bucket 0 (three requests) leaves; buckets 5 and 9 stay
    assert not state.try_withdraw(10.0)
    assert (state.requests, state.retries) == (2, 5)
    # at 15.0 bucket 5 (two requests, one retry) leaves too
    state.deposit(15.0)
    assert (state.requests, state.retries) == (1, 4)
    assert not state.try_withdraw(15.0)
    # at 19.0 bucket 9 (four retries)
    state.deposit(19.0)
    assert (state.requests, state.retries) == (2, 0)
    assert withdrawals(state, 19.0) == 2


def test_a_bucket_still_in_the_window_is_kept_when_time_jumps_ahead() -> None:
    state, _ = opened(RetryBudget(ratio=1.0, min_per_second=0.0, window=10), 1.5)
    deposits(state, 1.5, 2)  # bucket 1: in the window until 11.0
    state.deposit(10.5)  # bucket 0 again, nine buckets later
    assert state.requests == 3
    state.deposit(11.0)
    assert state.requests == 2


def test_a_bucket_that_left_the_window_is_emptied_when_its_slot_comes_round() -> None:
    state, _ = opened(RetryBudget(ratio=1.0, min_per_second=0.0, window=10), 0.5)
    state.deposit(0.5)  # bucket 0
    state.deposit(5.5)  # bucket 5
    state.deposit(10.5)  # bucket 0 again: the first request has left
    assert state.requests == 2


def test_slots_skipped_over_are_emptied() -> None:
    state, _ = opened(RetryBudget(ratio=1.0, min_per_second=0.0, window=10), 0.5)
    state.deposit(0.5)  # bucket 0
    state.deposit(9.5)  # bucket 9
    state.deposit(11.5)  # buckets 10 and 11 (slots 0 and 1) begin: the first request leaves
    assert state.requests == 2


def test_a_request_at_a_bucket_edge_belongs_to_the_new_bucket() -> None:
    state, _ = opened(RetryBudget(ratio=1.0, min_per_second=0.0, window=10), 0.0)
    state.deposit(0.0)
    state.deposit(1.0)  # the first instant of bucket 1
    state.deposit(10.0)  # bucket 0 leaves, bucket 1 stays
    assert state.requests == 2


def test_a_retry_at_a_bucket_edge_belongs_to_the_new_bucket() -> None:
    state = BudgetState(RetryBudget(ratio=0.0, min_per_second=0.2, window=10))
    assert state.try_withdraw(1.0)  # the first instant of bucket 1
    state.deposit(10.0)  # bucket 0 leaves, bucket 1 stays
    assert state.retries == 1
    state.deposit(11.0)
    assert state.retries == 0


def test_a_request_at_a_float_bucket_edge_never_empties_the_window() -> None:
    """1.0 // 0.1 == 9.0: the bucket that ends at 1.0 is, in floats, still
    the current one at 1.0. The roll there must keep what the window holds."""
    state, _ = opened(RetryBudget(ratio=1.0, min_per_second=0.0, window=1), 0.5)
    deposits(state, 0.5, 2)
    state.deposit(1.0)
    assert state.requests == 3
    assert state.try_withdraw(1.0)
    assert state.retries == 1


def test_narrow_buckets_slide_too() -> None:
    state, _ = opened(RetryBudget(ratio=1.0, min_per_second=0.0, window=5), 0.25)  # 0.5 s buckets
    deposits(state, 0.25, 2)  # bucket 0
    state.deposit(0.75)  # bucket 1
    assert state.requests == 3
    state.deposit(5.0)  # bucket 10 (slot 0): the two first requests leave
    assert state.requests == 2
    state.deposit(5.5)  # bucket 11 (slot 1): the third leaves
    assert state.requests == 2


def test_after_a_quiet_window_the_budget_starts_afresh() -> None:
    state, taken = opened(RetryBudget(ratio=1.0, min_per_second=0.1, window=10), 3.0)
    deposits(state, 3.0, 5)
    assert taken + withdrawals(state, 3.0) == 6
    assert withdrawals(state, 12.9) == 0  # bucket 3 is still in
    assert withdrawals(state, 13.0) == 1  # only the reserve now
    assert withdrawals(state, 100.0) == 1  # a quiet window later: the reserve again
    deposits(state, 100.0, 2)
    assert (state.requests, state.retries) == (2, 1)
    assert withdrawals(state, 100.0) == 2


# -- the retry plan ----------------------------------------------------------------------


def plan(clock: FakeClock, **retry: Any) -> RetryPlan:
    retry.setdefault("wait", tenacity.wait_fixed(1))
    policy = RetryPolicy(budget=None, **retry)
    return RetryPlan(policy, clock, clock(), None)


def test_a_wait_ending_exactly_at_the_deadline_is_not_taken(clock: FakeClock) -> None:
    retries = plan(clock, deadline=3.0, wait=tenacity.wait_fixed(3))
    assert retries.wait_for(httpx.Response(503), None) is None
    shorter = plan(clock, deadline=3.0, wait=tenacity.wait_fixed(2.5))
    assert shorter.wait_for(httpx.Response(503), None) == 2.5


def test_a_retry_after_ending_exactly_at_the_deadline_is_not_waited_for(clock: FakeClock) -> None:
    retries = plan(clock, deadline=5.0)
    assert retries.wait_for(httpx.Response(503, headers={"Retry-After": "5"}), None) is None
    assert retries.wait_for(httpx.Response(503, headers={"Retry-After": "4"}), None) == 4.0


def test_a_retry_after_of_exactly_the_maximum_is_waited_for(clock: FakeClock) -> None:
    retries = plan(clock, max_retry_after=7)
    assert retries.wait_for(httpx.Response(503, headers={"Retry-After": "7"}), None) == 7.0


def test_a_retry_after_header_of_64_characters_is_read() -> None:
    assert parse_retry_after("0" * 63 + "9") == 9.0
    assert parse_retry_after(" " * 10 + "0" * 63 + "9 ") == 9.0  # the spaces do not count
    assert parse_retry_after("0" * 64 + "9") is None


def test_a_custom_wait_sees_each_attempt_as_tenacity_describes_it(clock: FakeClock) -> None:
    seen: list[tuple[Any, ...]] = []

    def wait(state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        assert outcome is not None
        failed = outcome.failed
        answer = outcome.exception() if failed else outcome.result()
        seen.append((state.attempt_number, outcome.attempt_number, failed, answer, state.idle_for))
        assert (state.args, state.kwargs) == ((), {})
        assert state.start_time == 10.0
        assert state.outcome_timestamp == clock()
        return 0.5 * state.attempt_number

    clock.advance(10.0)
    retries = plan(clock, attempts=4, wait=wait)
    error = httpx.ConnectError("refused")
    assert retries.wait_for(None, error) == 0.5
    retries.next_attempt(0.5)
    clock.advance(1.0)
    unavailable = httpx.Response(503)
    assert retries.wait_for(unavailable, None) == 1.0
    retries.next_attempt(1.0)
    clock.advance(2.0)
    assert retries.wait_for(unavailable, None) == 1.5
    assert seen == [
        (1, 1, True, error, 0.0),
        (2, 2, False, unavailable, 0.5),
        (3, 3, False, unavailable, 1.5),
    ]


def test_a_negative_wait_from_a_custom_strategy_is_no_wait(clock: FakeClock) -> None:
    retries = plan(clock, wait=lambda state: -3.0)
    assert retries.wait_for(httpx.Response(503), None) == 0.0
