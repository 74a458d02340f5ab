"""Cancellation against a real server, on the async bindings only (httpx and
httpx2, on asyncio and trio): a thread cannot be cancelled, so the sync ones
have no such case. Half-open under concurrency runs on every binding in
tests/contract/test_concurrency.py.

Breaker time is a FakeClock; the real server's ``/gated`` route holds every
request it receives until the test opens ``state.gate``, so "the probe is still
in flight" is a fact the test controls, not a timing guess.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from resilient_http import CircuitState
from resilient_http.testing import FakeClock

from .bindings import BINDINGS, Binding
from .server import LiveServer

HANG_GUARD = 10.0
RECOVERY = 10.0


@pytest.fixture(params=[b for b in BINDINGS if not b.sync], ids=str)
def binding(request: pytest.FixtureRequest) -> Binding:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(binding: Binding) -> tuple[str, dict[str, object]]:
    """The binding's event loop."""
    return (binding.backend, {"debug": True} if binding.backend == "asyncio" else {})


def resilient(binding: Binding, clock: FakeClock, **breaker: Any) -> Any:
    api = binding.api
    policy = api.Policy(breaker=api.BreakerPolicy(**breaker), retry=api.RetryPolicy(attempts=1))
    return binding.transport(policy=policy, clock=clock, sleep=clock.sleep)


def client_for(binding: Binding, transport: Any) -> Any:
    return binding.client(transport, timeout=binding.http.Timeout(30.0))


async def until(condition: Callable[[], bool]) -> None:
    """Wait for the server thread to catch up (bounded)."""
    with anyio.fail_after(HANG_GUARD):
        while not condition():
            await anyio.sleep(0.002)


async def trip(client: Any, live: LiveServer, transport: Any) -> None:
    response = await client.get(f"{live.url}/status/503")
    assert response.status_code == 503
    assert transport.breaker(live.url).state is CircuitState.OPEN


async def test_cancelled_probe_gives_its_slot_back(
    binding: Binding, live: LiveServer, clock: FakeClock
) -> None:
    transport = resilient(binding, clock, failure_threshold=1, recovery_timeout=RECOVERY)
    finished = False

    async def probe(client: Any, scope: anyio.CancelScope) -> None:
        nonlocal finished
        with scope:
            await client.get(f"{live.url}/gated")
            finished = True

    try:
        async with client_for(binding, transport) as client:
            await trip(client, live, transport)
            clock.advance(RECOVERY + 0.5)
            breaker = transport.breaker(live.url)

            scope = anyio.CancelScope()
            async with anyio.create_task_group() as tg:
                tg.start_soon(probe, client, scope)
                await until(lambda: live.state.hits["/gated"] == 1)
                assert breaker.probes_in_flight == 1
                with pytest.raises(binding.api.CircuitOpenError):  # the only slot is taken
                    await client.get(f"{live.url}/status/200")
                scope.cancel()

            assert not finished
            # Neither success nor failure: still half-open, and the slot is free.
            assert breaker.state is CircuitState.HALF_OPEN
            assert breaker.probes_in_flight == 0

            response = await client.get(f"{live.url}/status/200")
            assert response.status_code == 200
            assert breaker.state is CircuitState.CLOSED
    finally:
        live.state.gate.set()
    assert live.state.hits["/status/200"] == 1  # the rejected call never reached it


async def test_cancellation_while_closed_is_neither_success_nor_failure(
    binding: Binding, live: LiveServer, clock: FakeClock
) -> None:
    transport = resilient(binding, clock, failure_threshold=2)

    async def cancelled_call(client: Any) -> None:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    await client.get(f"{live.url}/gated")

                tg.start_soon(call)
                await until(lambda: live.state.hits["/gated"] == 1)
                scope.cancel()

    async def cancelled_mid_body(client: Any) -> None:
        with anyio.CancelScope() as scope:
            async with client.stream("GET", f"{live.url}/sse-gated?n=2") as response:
                lines = response.aiter_lines()
                assert await lines.__anext__() == "data: 0"
                assert await lines.__anext__() == ""  # the end of event 0
                scope.cancel()
                await lines.__anext__()  # the server holds event 1: cancelled here
        assert scope.cancelled_caught

    try:
        async with client_for(binding, transport) as client:
            breaker = transport.breaker(live.url)
            assert (await client.get(f"{live.url}/status/503")).status_code == 503
            assert breaker.failure_count == 1

            await cancelled_call(client)
            await cancelled_mid_body(client)
            # Not a success (the count would be reset), not a failure (it would open).
            assert breaker.state is CircuitState.CLOSED
            assert breaker.failure_count == 1

            assert (await client.get(f"{live.url}/status/503")).status_code == 503
            assert breaker.state is CircuitState.OPEN
    finally:
        live.state.gate.set()
