"""Endpoint groups (README, "Several endpoints per service"), on every binding,
against two real loopback servers on two ports: one logical host, two replicas.
"""

from __future__ import annotations

from typing import Any

import pytest
import tenacity

from resilient_http import (
    BreakerPolicy,
    CircuitState,
    HedgePolicy,
    Policy,
    RetryPolicy,
    StateChanged,
)
from resilient_http.testing import FakeClock

from ..bindings import Binding
from ..server import LiveServer

LOGICAL = "inventory.internal"
KEY = "inventory.internal:80"
URL = f"http://{LOGICAL}"


def group(first: LiveServer, second: LiveServer, **kwargs: Any) -> dict[str, Policy]:
    kwargs.setdefault("breaker", BreakerPolicy(failure_threshold=2, recovery_timeout=30))
    kwargs.setdefault("retry", RetryPolicy(attempts=1))
    return {LOGICAL: Policy(endpoints=(first.url, second.url), **kwargs)}


def build(binding: Binding, clock: FakeClock, hosts: dict[str, Policy], **kwargs: Any) -> Any:
    return binding.transport(
        binding.inner_http(), hosts=hosts, clock=clock, sleep=clock.sleep, **kwargs
    )


async def test_requests_go_to_the_first_endpoint_as_sent_to_it(
    binding: Binding, clock: FakeClock, live: LiveServer, live2: LiveServer
) -> None:
    transport = build(binding, clock, group(live, live2))
    async with binding.client(transport) as client:
        response = await client.get(f"{URL}/whoami?sku=42", headers={"X-Trace": "t1"})
    # the endpoint's scheme, host and port (and Host header); path and query untouched
    assert response.text == f"127.0.0.1:{live.port} /whoami?sku=42"
    assert str(response.request.url) == f"{URL}/whoami?sku=42"  # the caller's request
    assert live2.state.hits["/whoami"] == 0
    snapshot = transport.snapshot()
    assert snapshot[KEY]["endpoints"] == [f"127.0.0.1:{live.port}", f"127.0.0.1:{live2.port}"]
    assert snapshot[f"127.0.0.1:{live.port}"]["state"] == "closed"


async def test_a_failing_endpoint_is_ejected_and_calls_go_to_the_next(
    binding: Binding, clock: FakeClock, live: LiveServer, live2: LiveServer
) -> None:
    live.state.fail_next = 100
    events: list[Any] = []
    transport = build(binding, clock, group(live, live2), listeners=[events.append])
    async with binding.client(transport) as client:
        statuses = [(await client.get(f"{URL}/flaky")).status_code for _ in range(5)]
    assert statuses == [503, 503, 200, 200, 200]
    assert (live.state.hits["/flaky"], live2.state.hits["/flaky"]) == (2, 3)
    assert transport.breaker(f"127.0.0.1:{live.port}").state is CircuitState.OPEN
    assert transport.breaker(f"127.0.0.1:{live2.port}").state is CircuitState.CLOSED
    opened = [e for e in events if isinstance(e, StateChanged)]
    assert [e.host for e in opened] == [f"127.0.0.1:{live.port}"]  # events name the endpoint


async def test_a_retry_after_a_503_lands_on_the_other_endpoint(
    binding: Binding, clock: FakeClock, live: LiveServer, live2: LiveServer
) -> None:
    live.state.fail_next = 1
    retry = RetryPolicy(attempts=2, wait=tenacity.wait_none(), budget=None)
    transport = build(binding, clock, group(live, live2, retry=retry))
    async with binding.client(transport) as client:
        response = await client.get(f"{URL}/flaky")
    assert response.status_code == 200
    assert (live.state.hits["/flaky"], live2.state.hits["/flaky"]) == (1, 1)


async def test_when_no_endpoint_admits_the_logical_host_rejects(
    binding: Binding, clock: FakeClock, live: LiveServer, live2: LiveServer
) -> None:
    live.state.fail_next = live2.state.fail_next = 100
    transport = build(binding, clock, group(live, live2))
    async with binding.client(transport) as client:
        for _ in range(4):
            assert (await client.get(f"{URL}/flaky")).status_code == 503
        clock.advance(10)  # both endpoints opened at t=0: both take calls again in 20 s
        with pytest.raises(binding.api.CircuitOpenError) as caught:
            await client.get(f"{URL}/flaky")
        assert caught.value.host == KEY
        assert caught.value.retry_after == pytest.approx(20)
        assert transport.snapshot()[KEY]["state"] == "open"

        transport.fallback(LOGICAL, lambda request, error: binding.response(200, text="cached"))
        fallback = await client.get(f"{URL}/flaky")
    assert fallback.text == "cached"
    assert fallback.extensions["resilient_http.fallback"] == "circuit_open"
    assert live.state.hits["/flaky"] + live2.state.hits["/flaky"] == 4


async def test_recovery_returns_traffic_to_the_preferred_endpoint(
    binding: Binding, clock: FakeClock, live: LiveServer, live2: LiveServer
) -> None:
    live.state.fail_next = 2
    transport = build(binding, clock, group(live, live2))
    async with binding.client(transport) as client:
        for _ in range(2):
            await client.get(f"{URL}/flaky")
        assert (await client.get(f"{URL}/whoami")).text.startswith(f"127.0.0.1:{live2.port}")
        clock.advance(30)  # the first endpoint's probe goes, succeeds, closes it
        assert (await client.get(f"{URL}/whoami")).text.startswith(f"127.0.0.1:{live.port}")
        assert (await client.get(f"{URL}/whoami")).text.startswith(f"127.0.0.1:{live.port}")
    assert transport.breaker(f"127.0.0.1:{live.port}").state is CircuitState.CLOSED


async def test_round_robin_spreads_calls_over_healthy_endpoints(
    binding: Binding, clock: FakeClock, live: LiveServer, live2: LiveServer
) -> None:
    transport = build(binding, clock, group(live, live2, balance="round_robin"))
    async with binding.client(transport) as client:
        for _ in range(10):
            await client.get(f"{URL}/whoami")
    assert (live.state.hits["/whoami"], live2.state.hits["/whoami"]) == (5, 5)


async def test_the_cap_keeps_the_last_endpoint_in_rotation(
    binding: Binding, clock: FakeClock, live: LiveServer, live2: LiveServer
) -> None:
    """min_eligible=1: a fleet-wide blip cannot eject every endpoint at once."""
    live.state.fail_next = live2.state.fail_next = 100
    transport = build(binding, clock, group(live, live2, min_eligible=1))
    async with binding.client(transport) as client:
        statuses = [(await client.get(f"{URL}/flaky")).status_code for _ in range(8)]
    assert statuses == [503] * 8  # never rejected: the second endpoint stays in rotation
    assert transport.breaker(f"127.0.0.1:{live.port}").state is CircuitState.OPEN
    assert transport.breaker(f"127.0.0.1:{live2.port}").state is CircuitState.CLOSED
    assert live2.state.hits["/flaky"] == 6


async def test_a_hedge_goes_to_the_other_endpoint(
    binding: Binding, clock: FakeClock, live: LiveServer, live2: LiveServer
) -> None:
    live.state.whoami_delay = 1.0  # the first endpoint is slow today
    transport = build(binding, clock, group(live, live2, hedge=HedgePolicy(delay=0.05)))
    async with binding.client(transport) as client:
        response = await client.get(f"{URL}/whoami")
    assert response.text.startswith(f"127.0.0.1:{live2.port}")
    assert response.extensions["resilient_http.hedge"] == 1
    assert (live.state.hits["/whoami"], live2.state.hits["/whoami"]) == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"endpoints": ("ftp://a.example.com",)}, "absolute http"),
        ({"endpoints": ("a.example.com",)}, "absolute http"),
        ({"endpoints": ("http://127.0.0.1:99999",)}, "invalid port 99999"),
        ({"endpoints": ("http://127.0.0.1:0",)}, "invalid port 0"),
        ({"endpoints": ("https://a.example.com/v1",)}, "no path"),
        ({"endpoints": ("https://user:pw@a.example.com",)}, "credentials"),
        ({"endpoints": ("https://a.example.com", "https://A.example.com:443")}, "twice"),
        ({"endpoints": ()}, "at least one"),
        ({"endpoints": "https://a.example.com"}, "sequence of URLs"),
        ({"endpoints": ("https://a.example.com",), "min_eligible": 1}, "below the number"),
        ({"endpoints": ("https://a.example.com",), "balance": "random"}, "balance"),
    ],
)
async def test_bad_endpoints_fail_at_construction(
    binding: Binding, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        Policy(**kwargs)


async def test_endpoints_need_a_pattern_naming_one_host(binding: Binding) -> None:
    endpoints = Policy(endpoints=("https://a.example.com", "https://b.example.com"))
    with pytest.raises(ValueError, match="not a wildcard"):
        binding.transport(hosts={"*.example.com": endpoints})
    with pytest.raises(ValueError, match="names one host"):
        binding.transport(policy=endpoints)
