"""Hedged requests (README, "Hedged requests"), on every binding, against a real
loopback server with a long tail: every Nth request is slow.

Hedging races real time (a hedge goes when an attempt has not answered within
``delay`` seconds), so these tests measure wall-clock latency on loopback; the
slow requests take 10 to 20 times the bound asserted, so scheduling noise on a
busy machine cannot turn a pass into a fail or the other way round.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from resilient_http import (
    BreakerPolicy,
    CircuitState,
    Event,
    Hedged,
    HedgePolicy,
    Policy,
    RetryBudget,
    RetryPolicy,
)

from ..bindings import Binding
from ..server import LiveServer

NO_RETRY = RetryPolicy(attempts=1)


def hedging(delay: float | None, **kwargs: Any) -> Policy:
    return Policy(retry=NO_RETRY, hedge=HedgePolicy(delay=delay, **kwargs))


async def timed_gets(client: Any, url: str, n: int) -> tuple[list[float], list[Any]]:
    durations, responses = [], []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get(url)
        durations.append(time.perf_counter() - started)
        responses.append(response)
        assert response.status_code == 200
    return durations, responses


async def test_a_hedge_cuts_the_tail_at_a_bounded_extra_load(
    binding: Binding, live: LiveServer
) -> None:
    """Every 10th request takes 1 s; with delay=0.05, 60 sequential GETs."""
    events: list[Event] = []
    transport = binding.transport(
        binding.inner_http(), policy=hedging(0.05), listeners=[events.append]
    )
    async with binding.client(transport) as client:
        durations, responses = await timed_gets(client, f"{live.url}/tail?every=10&slow=1", 60)
    assert max(durations) < 0.4
    extra = live.state.hits["/tail"] - 60
    assert 6 <= extra <= 10
    won = [r for r in responses if r.extensions.get("resilient_http.hedge") == 1]
    assert len(won) >= 6
    assert all(r.text == "fast" for r in responses)
    hedged = [e for e in events if isinstance(e, Hedged)]
    assert len(hedged) == extra
    assert all(e.hedges == 1 and e.delay == 0.05 for e in hedged)
    snapshot = transport.snapshot()[f"127.0.0.1:{live.port}"]
    assert snapshot["hedges"]["sent"] == extra
    assert snapshot["hedges"]["won"] == len(won)
    breaker = transport.breaker(live.url)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failure_count == 0  # a cancelled loser is neither success nor failure


async def test_the_adaptive_delay_learns_the_hosts_latency(
    binding: Binding, live: LiveServer
) -> None:
    """delay=None: the host's recent latency at the 95th percentile, after a
    warm-up (no hedge for 5 answers, then 4 times their median until 20)."""
    transport = binding.transport(binding.inner_http(), policy=hedging(None))
    url = f"{live.url}/tail?every=10&slow=1"
    key = f"127.0.0.1:{live.port}"
    async with binding.client(transport) as client:
        await timed_gets(client, url, 4)
        assert transport.snapshot()[key]["hedges"]["delay"] is None  # no hedge yet
        await timed_gets(client, url, 1)
        warming = transport.snapshot()[key]["hedges"]["delay"]
        assert 0 < warming < 0.2  # 4 x the median of 5 fast answers
        await timed_gets(client, url, 35)  # the warm-up's slow calls are hedged too
        before = live.state.hits["/tail"]
        durations, _ = await timed_gets(client, url, 100)
    assert max(durations) < 0.5
    extra = live.state.hits["/tail"] - before - 100
    assert 10 <= extra <= 20
    delay = transport.snapshot()[key]["hedges"]["delay"]
    assert 0 < delay < 0.2  # the fast answers' p95: the slow ones lost and never counted


async def test_hedges_stay_within_their_budget_when_every_request_is_slow(
    binding: Binding, live: LiveServer
) -> None:
    budget = RetryBudget(ratio=0.1, min_per_second=0, window=60)
    transport = binding.transport(
        binding.inner_http(), policy=hedging(0.005, max_hedges=3, budget=budget)
    )
    async with binding.client(transport) as client:
        await timed_gets(client, f"{live.url}/tail?every=1&slow=0.05", 20)
    assert live.state.hits["/tail"] - 20 <= 2  # 10% of 20 calls


async def test_a_post_is_never_hedged_but_an_idempotency_key_is(
    binding: Binding, live: LiveServer
) -> None:
    transport = binding.transport(binding.inner_http(), policy=hedging(0.01))
    async with binding.client(transport) as client:
        response = await client.post(f"{live.url}/tail?every=1&slow=0.2", content=b"order")
        assert response.text == "slow"
        assert live.state.hits["POST /tail"] == 1
        keyed = await client.post(
            f"{live.url}/tail?every=2&slow=1", content=b"x", headers={"Idempotency-Key": "k"}
        )
    assert keyed.text == "fast"
    assert live.state.hits["POST /tail"] == 3


async def test_no_hedge_when_the_bulkhead_is_full_or_the_circuit_is_not_closed(
    binding: Binding, live: LiveServer
) -> None:
    policy = Policy(
        retry=NO_RETRY,
        max_concurrency=1,
        breaker=BreakerPolicy(failure_threshold=1, recovery_timeout=0),
        hedge=HedgePolicy(delay=0.01),
    )
    transport = binding.transport(binding.inner_http(), policy=policy)
    async with binding.client(transport) as client:
        assert (await client.get(f"{live.url}/tail?every=1&slow=0.1")).text == "slow"
        assert live.state.hits["/tail"] == 1  # the call holds the only slot
        await client.get(f"{live.url}/status/503")  # opens; recovery 0: the next is a probe
        assert (await client.get(f"{live.url}/tail?every=1&slow=0.1")).text == "slow"
    assert live.state.hits["/tail"] == 2  # a probe is not hedged


async def test_a_retry_of_a_hedged_call_is_hedged_again(binding: Binding, live: LiveServer) -> None:
    """Both first attempts fail: the call is retried, and that retry is hedged too."""
    live.state.fail_next = 2
    events: list[Event] = []
    policy = Policy(
        retry=RetryPolicy(attempts=2, budget=None),
        hedge=HedgePolicy(delay=0.0),
    )
    transport = binding.transport(binding.inner_http(), policy=policy, listeners=[events.append])
    async with binding.client(transport) as client:
        response = await client.get(f"{live.url}/flaky")
    assert response.status_code == 200
    assert sum(isinstance(e, Hedged) for e in events) == 2
    assert live.state.hits["/flaky"] >= 3


async def test_bad_hedge_settings_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="max_hedges"):
        HedgePolicy(max_hedges=0)
    with pytest.raises(ValueError, match="quantile"):
        HedgePolicy(quantile=1.5)
    with pytest.raises(ValueError, match="delay"):
        HedgePolicy(delay=-1)
    with pytest.raises(TypeError, match="HedgePolicy"):
        Policy(hedge=0.1)  # type: ignore[arg-type]


async def test_hedges_are_counted_in_prometheus(binding: Binding, live: LiveServer) -> None:
    from prometheus_client import CollectorRegistry

    from resilient_http.prometheus import PrometheusMetrics

    registry = CollectorRegistry()
    transport = binding.transport(
        binding.inner_http(), policy=hedging(0.02), listeners=[PrometheusMetrics(registry)]
    )
    async with binding.client(transport) as client:
        await timed_gets(client, f"{live.url}/tail?every=2&slow=0.5", 4)
    key = f"127.0.0.1:{live.port}"
    counted = transport.snapshot()[key]["hedges"]
    assert counted["sent"] >= 3  # the 2nd, 3rd and 4th calls met a slow attempt
    host = {"host": key}
    assert registry.get_sample_value("resilient_http_hedges_total", host) == counted["sent"]
    won = registry.get_sample_value(
        "resilient_http_hedged_calls_total", {**host, "winner": "hedge"}
    )
    assert won == counted["won"] >= 3
