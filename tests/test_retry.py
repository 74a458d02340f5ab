"""Retries: Retry-After parsing, eligibility, tenacity waits on the FakeClock, the
breaker consulted inside the loop, and every discarded response closed.

The binding-independent tests live in tests/contract/test_retry.py (every
binding); here stay the sans-IO pieces and what is about async itself."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import anyio
import httpx
import pytest
import tenacity

from resilient_http import (
    BreakerPolicy,
    Policy,
    ResilientTransport,
    RetryBudget,
    RetryPolicy,
)
from resilient_http._retry import BudgetState, RetryPlan, parse_retry_after
from resilient_http.testing import FakeClock


def http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# -- parse_retry_after -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("3600", 3600.0),
        ("99999999999", 99999999999.0),  # huge but well-formed: the cap deals with it
    ],
)
def test_parse_retry_after_delta_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=now) == pytest.approx(30.0)
    assert parse_retry_after("Wed, 21 Oct 2015 08:28:00 GMT", now=now) == pytest.approx(3600.0)


def test_parse_retry_after_http_date_in_the_past_means_now() -> None:
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:28:00 GMT").timestamp()
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=now) == 0.0
    assert parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0


def test_parse_retry_after_http_date_uses_wall_clock_by_default() -> None:
    delay = parse_retry_after(http_date(30))
    assert delay is not None
    assert 28.0 <= delay <= 30.0


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "soon",
        "-5",
        "-0",
        "1.5",
        "+3",
        "nan",
        "inf",
        "1e3",
        "3 seconds",
        "0x10",
        "Wed, 21 Oct 2015 07:28:00",  # an HTTP-date is always GMT
        "Wed, 32 Oct 2015 07:28:00 GMT",
        "Wed, 21 Foo 2015 07:28:00 GMT",
        "9" * 100,  # absurdly long
        "Wed, 21 Oct 99999999 07:28:00 GMT",
    ],
)
def test_parse_retry_after_rejects_garbage(value: str | None) -> None:
    assert parse_retry_after(value) is None


async def test_calls_sleeping_in_backoff_wake_when_the_circuit_opens() -> None:
    """README: never sleep while the circuit is open. Four calls get a 503 with
    ``Retry-After: 5``; the fourth failure opens the circuit, and every call
    asleep in its backoff ends at once with its own 503, retrying nothing."""
    hits = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal hits
        hits += 1
        return httpx.Response(503, headers={"Retry-After": "5"}, text="sick")

    transport = ResilientTransport(
        httpx.MockTransport(handler),
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=4),
            retry=RetryPolicy(attempts=3, budget=None),
        ),
    )
    statuses: list[int] = []
    async with httpx.AsyncClient(transport=transport) as client:

        async def one() -> None:
            response = await client.get("https://api.example.com/")
            statuses.append(response.status_code)
            assert response.text == "sick"

        started = anyio.current_time()
        with anyio.fail_after(3):
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(one)
        assert anyio.current_time() - started < 1.0
    assert statuses == [503] * 4
    assert hits == 4


# -- the plan of one call's retries (sans-IO) -----------------------------------------


def plan(clock: FakeClock, budget: RetryBudget | None = None, **retry: Any) -> RetryPlan:
    policy = RetryPolicy(wait=tenacity.wait_fixed(1), budget=budget, **retry)
    state = BudgetState(budget) if budget is not None else None
    return RetryPlan(policy, clock, clock(), state)


def test_the_plan_stops_when_the_attempts_are_used_up(clock: FakeClock) -> None:
    retries = plan(clock, attempts=3)
    assert retries.wait_for(None, httpx.ReadTimeout("slow")) == 1.0
    retries.next_attempt(1.0)
    assert retries.wait_for(None, httpx.ReadTimeout("slow")) == 1.0
    retries.next_attempt(1.0)
    assert retries.attempt == 3
    assert retries.wait_for(None, httpx.ReadTimeout("slow")) is None


def test_the_plan_honours_retry_after_up_to_its_maximum(clock: FakeClock) -> None:
    retries = plan(clock, max_retry_after=10)
    assert retries.wait_for(httpx.Response(503, headers={"Retry-After": "7"}), None) == 7.0
    assert retries.wait_for(httpx.Response(503, headers={"Retry-After": "11"}), None) is None
    assert retries.wait_for(httpx.Response(503, headers={"Retry-After": "soon"}), None) == 1.0
    ignoring = plan(clock, respect_retry_after=False)
    assert ignoring.wait_for(httpx.Response(503, headers={"Retry-After": "7"}), None) == 1.0


def test_the_plan_never_waits_across_the_deadline(clock: FakeClock) -> None:
    retries = plan(clock, deadline=2.0)
    assert retries.wait_for(httpx.Response(503), None) == 1.0
    assert retries.may_retry(1.0)
    clock.advance(1.0)  # reading the discarded body took a second: exactly the deadline
    assert not retries.may_retry(1.0)
    assert retries.has_time()
    clock.advance(1.0)
    assert not retries.has_time()
    assert retries.wait_for(httpx.Response(503), None) is None


def test_the_plan_takes_a_budget_token_per_retry(clock: FakeClock) -> None:
    retries = plan(clock, RetryBudget(ratio=0.0, min_per_second=0.2, window=10))  # 2 tokens
    assert retries.may_retry(0.0)
    assert retries.may_retry(0.0)
    assert not retries.may_retry(0.0)
    assert plan(clock).may_retry(0.0)  # no budget: never short of tokens
