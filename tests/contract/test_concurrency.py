"""Half-open under concurrency, against a real server, on every binding: 50
concurrent callers are tasks on the async bindings and worker threads on the
sync ones (every one of them in a thread at once: the default thread limiter,
40 threads, is raised for the test).

Breaker time is a FakeClock; the real server's ``/gated`` route holds every
request it receives until the test opens ``state.gate``, so "the probe is still
in flight" is a fact the test controls, not a timing guess. (Cancellation is
in tests/test_concurrency.py: a thread cannot be cancelled.)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest

from resilient_http import CircuitState
from resilient_http.testing import FakeClock

from ..bindings import Binding
from ..server import LiveServer

HANG_GUARD = 10.0
RECOVERY = 10.0
CALLERS = 50


def resilient(binding: Binding, clock: FakeClock, **breaker: Any) -> Any:
    api = binding.api
    policy = api.Policy(breaker=api.BreakerPolicy(**breaker), retry=api.RetryPolicy(attempts=1))
    return binding.transport(policy=policy, clock=clock, sleep=clock.sleep)


def client_for(binding: Binding, transport: Any) -> Any:
    return binding.client(transport, timeout=binding.http.Timeout(30.0))


@contextlib.asynccontextmanager
async def threads_for(binding: Binding, callers: int) -> AsyncIterator[None]:
    """On a sync binding, room for ``callers`` worker threads at once (and a
    spare one for the test's own calls)."""
    if not binding.sync:
        yield
        return
    limiter = anyio.to_thread.current_default_thread_limiter()
    before = limiter.total_tokens
    limiter.total_tokens = max(before, callers + 1)
    try:
        yield
    finally:
        limiter.total_tokens = before


async def until(condition: Callable[[], bool]) -> None:
    """Wait for the server thread to catch up (bounded)."""
    with anyio.fail_after(HANG_GUARD):
        while not condition():
            await anyio.sleep(0.002)


async def trip(client: Any, live: LiveServer, transport: Any) -> None:
    response = await client.get(f"{live.url}/status/503")
    assert response.status_code == 503
    assert transport.breaker(live.url).state is CircuitState.OPEN


@pytest.mark.parametrize("half_open_max_calls", [1, 3])
async def test_half_open_lets_exactly_max_calls_through_out_of_50(
    binding: Binding, live: LiveServer, clock: FakeClock, half_open_max_calls: int
) -> None:
    probes = half_open_max_calls
    transport = resilient(
        binding,
        clock,
        failure_threshold=1,
        recovery_timeout=RECOVERY,
        half_open_max_calls=probes,
    )
    statuses: list[int] = []
    rejections: list[Any] = []
    all_rejected = anyio.Event()

    async def caller(client: Any) -> None:
        try:
            response = await client.get(f"{live.url}/gated")
        except binding.api.CircuitOpenError as exc:
            rejections.append(exc)
            if len(rejections) == CALLERS - probes:
                all_rejected.set()
        else:
            statuses.append(response.status_code)

    try:
        async with threads_for(binding, CALLERS), client_for(binding, transport) as client:
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
