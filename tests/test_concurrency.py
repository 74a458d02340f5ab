"""Half-open under concurrency, and cancellation, against a real server.

Breaker time is a FakeClock; the real server's ``/gated`` route holds every
request it receives until the test opens ``state.gate``, so "the probe is still
in flight" is a fact the test controls, not a timing guess.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx
import pytest

from resilient_http import (
    BreakerPolicy,
    CircuitOpenError,
    CircuitState,
    Policy,
    ResilientTransport,
    RetryPolicy,
)
from resilient_http.testing import FakeClock

from .server import LiveServer

HANG_GUARD = 10.0
RECOVERY = 10.0
CALLERS = 50


def resilient(clock: FakeClock, breaker: BreakerPolicy) -> ResilientTransport:
    policy = Policy(breaker=breaker, retry=RetryPolicy(attempts=1))
    return ResilientTransport(policy=policy, clock=clock, sleep=clock.sleep)


def client_for(transport: ResilientTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(30.0))


async def until(condition: Callable[[], bool]) -> None:
    """Wait for the server thread to catch up (bounded)."""
    with anyio.fail_after(HANG_GUARD):
        while not condition():
            await anyio.sleep(0.002)


async def trip(client: httpx.AsyncClient, live: LiveServer, transport: ResilientTransport) -> None:
    response = await client.get(f"{live.url}/status/503")
    assert response.status_code == 503
    assert transport.breaker(live.url).state is CircuitState.OPEN


@pytest.mark.parametrize("half_open_max_calls", [1, 3])
async def test_half_open_lets_exactly_max_calls_through_out_of_50(
    live: LiveServer, clock: FakeClock, half_open_max_calls: int
) -> None:
    probes = half_open_max_calls
    transport = resilient(
        clock,
        BreakerPolicy(failure_threshold=1, recovery_timeout=RECOVERY, half_open_max_calls=probes),
    )
    statuses: list[int] = []
    rejections: list[CircuitOpenError] = []
    all_rejected = anyio.Event()

    async def caller(client: httpx.AsyncClient) -> None:
        try:
            response = await client.get(f"{live.url}/gated")
        except CircuitOpenError as exc:
            rejections.append(exc)
            if len(rejections) == CALLERS - probes:
                all_rejected.set()
        else:
            statuses.append(response.status_code)

    try:
        async with client_for(transport) as client:
            await trip(client, live, transport)
            clock.advance(RECOVERY + 0.5)
            breaker = transport.breaker(live.url)

            async with anyio.create_task_group() as tg:
                for _ in range(CALLERS):
                    tg.start_soon(caller, client)
                # Every caller has had its answer from the breaker while the probes
                # are still held by the server: nothing can have closed the circuit.
                with anyio.fail_after(HANG_GUARD):
                    await all_rejected.wait()
                await until(lambda: live.state.hits["/gated"] == probes)
                assert breaker.state is CircuitState.HALF_OPEN
                assert breaker.probes_in_flight == probes
                live.state.gate.set()

            assert statuses == [200] * probes
            assert len(rejections) == CALLERS - probes
            # Rejected in half-open: a probe may go as soon as a slot frees up.
            assert all(error.retry_after == 0.0 for error in rejections)
            assert breaker.state is CircuitState.CLOSED

            response = await client.get(f"{live.url}/status/200")
            assert response.status_code == 200
    finally:
        live.state.gate.set()
    assert live.state.hits["/gated"] == probes


async def test_cancelled_probe_gives_its_slot_back(live: LiveServer, clock: FakeClock) -> None:
    transport = resilient(clock, BreakerPolicy(failure_threshold=1, recovery_timeout=RECOVERY))
    finished = False

    async def probe(client: httpx.AsyncClient, scope: anyio.CancelScope) -> None:
        nonlocal finished
        with scope:
            await client.get(f"{live.url}/gated")
            finished = True

    try:
        async with client_for(transport) as client:
            await trip(client, live, transport)
            clock.advance(RECOVERY + 0.5)
            breaker = transport.breaker(live.url)

            scope = anyio.CancelScope()
            async with anyio.create_task_group() as tg:
                tg.start_soon(probe, client, scope)
                await until(lambda: live.state.hits["/gated"] == 1)
                assert breaker.probes_in_flight == 1
                with pytest.raises(CircuitOpenError):  # the only slot is taken
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
    live: LiveServer, clock: FakeClock
) -> None:
    transport = resilient(clock, BreakerPolicy(failure_threshold=2))

    async def cancelled_call(client: httpx.AsyncClient) -> None:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    await client.get(f"{live.url}/gated")

                tg.start_soon(call)
                await until(lambda: live.state.hits["/gated"] == 1)
                scope.cancel()

    async def cancelled_mid_body(client: httpx.AsyncClient) -> None:
        with anyio.CancelScope() as scope:
            async with client.stream("GET", f"{live.url}/sse-gated?n=2") as response:
                lines = response.aiter_lines()
                assert await lines.__anext__() == "data: 0"
                assert await lines.__anext__() == ""  # the end of event 0
                scope.cancel()
                await lines.__anext__()  # the server holds event 1: cancelled here
        assert scope.cancelled_caught

    try:
        async with client_for(transport) as client:
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
