"""Hedging on the async bindings, where a losing attempt is cancelled: its
connection goes back to the pool at once, and a cancelled call leaves nothing
behind. (The contract every binding keeps is in tests/contract/test_hedging.py;
in the sync binding a losing attempt runs to its end in its own thread.)"""

from __future__ import annotations

import time

import anyio
import httpx

from resilient_http import HedgePolicy, Policy, ResilientTransport, RetryPolicy

from .server import LiveServer

POLICY = Policy(retry=RetryPolicy(attempts=1), hedge=HedgePolicy(delay=0.05))


async def test_cancelled_losers_leave_a_pool_of_two_free(live: LiveServer) -> None:
    inner = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=2))
    transport = ResilientTransport(inner, policy=POLICY)
    timeout = httpx.Timeout(5, pool=0.2)  # a leaked connection would show as a PoolTimeout
    async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
        slowest = 0.0
        for _ in range(40):
            started = time.perf_counter()
            response = await client.get(f"{live.url}/tail?every=5&slow=1")
            slowest = max(slowest, time.perf_counter() - started)
            assert response.text == "fast"
    assert slowest < 0.9  # every slow call (1 s) was cut short by its hedge
    assert transport.breaker(live.url).calls_in_flight == 0


async def test_a_call_cancelled_mid_race_records_nothing_and_leaks_nothing(
    live: LiveServer,
) -> None:
    transport = ResilientTransport(policy=POLICY)
    async with httpx.AsyncClient(transport=transport) as client:
        async with anyio.create_task_group() as group:
            # both the attempt and its hedge are slow; cancel once both reached the server
            group.start_soon(client.get, f"{live.url}/tail?every=1&slow=2")
            while live.state.hits["/tail"] < 2:
                await anyio.sleep(0.005)
            group.cancel_scope.cancel()
        breaker = transport.breaker(live.url)
        assert live.state.hits["/tail"] == 2
        assert breaker.calls_in_flight == 0
        assert breaker.failure_count == 0
        assert (await client.get(f"{live.url}/status/200")).status_code == 200
