"""The transport against a real HTTP/1.1 server on loopback, on every binding:
httpx and httpx2, async on asyncio and trio, sync in worker threads.

The server (tests/server.py) supplies sockets, pools, timeouts and streams;
breaker time runs on a FakeClock, so no test sleeps through a recovery timeout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
import anyio.to_thread
import pytest
import tenacity

from resilient_http import (
    AttemptFinished,
    BreakerPolicy,
    CircuitState,
    Event,
    Policy,
    RetryPolicy,
)
from resilient_http.testing import FakeClock

from ..bindings import Binding, ThreadedResponse
from ..server import LiveServer

#: Generous bound for things that take milliseconds; only reached when broken.
HANG_GUARD = 10.0


def resilient(
    binding: Binding,
    clock: FakeClock,
    *,
    breaker: BreakerPolicy | None = None,
    retry: RetryPolicy | None = None,
    inner: Any = None,
    listeners: Sequence[Callable[[Event], object]] = (),
) -> Any:
    policy = Policy(
        breaker=breaker or BreakerPolicy(),
        retry=retry or RetryPolicy(attempts=1),
    )
    return binding.transport(
        inner, policy=policy, clock=clock, sleep=clock.sleep, listeners=listeners
    )


def one_connection_pool(binding: Binding) -> Any:
    return binding.inner_http(limits=binding.http.Limits(max_connections=1))


async def until(condition: Callable[[], bool]) -> None:
    """Wait for the server thread to catch up (bounded)."""
    with anyio.fail_after(HANG_GUARD):
        while not condition():
            await anyio.sleep(0.002)


async def burst(client: Any, url: str, n: int) -> list[int]:
    statuses: list[int] = []

    async def one() -> None:
        response = await client.get(url)
        statuses.append(response.status_code)

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return statuses


async def lines_of(response: Any) -> AsyncIterator[str]:
    """``response.aiter_lines()``; for a sync response, ``iter_lines()`` read in a
    worker thread that a timeout abandons (so ``fail_after`` still guards it)."""
    if not isinstance(response, ThreadedResponse):
        async for line in response.aiter_lines():
            yield line
        return
    lines = response.sync.iter_lines()
    while True:
        line = await anyio.to_thread.run_sync(next, lines, None, abandon_on_cancel=True)
        if line is None:
            return
        yield line


# -- a one-connection pool ------------------------------------------------------------


async def test_one_connection_pool_survives_retried_503s(
    binding: Binding, live: LiveServer, clock: FakeClock
) -> None:
    transport = resilient(
        binding,
        clock,
        retry=RetryPolicy(attempts=3, wait=tenacity.wait_exponential(multiplier=1), budget=None),
        inner=one_connection_pool(binding),
    )
    live.state.fail_next = 2
    # A pool timeout far below the test's patience: a leaked connection shows up as
    # PoolTimeout on the first retry, not as a slow test.
    timeout = binding.http.Timeout(5.0, pool=1.0)
    async with binding.client(transport, timeout=timeout) as client:
        response = await client.get(f"{live.url}/flaky")
        assert response.status_code == 200
        assert response.text == "ok"
        assert live.state.hits["/flaky"] == 3
        assert clock.sleeps == [1.0, 2.0]  # the backoff ran on the injected sleep

        # Ten callers on one connection: each waits its turn, none times out.
        assert await burst(client, f"{live.url}/status/200", 10) == [200] * 10
    assert live.state.hits["/status/200"] == 10
    assert transport.breaker(live.url).state is CircuitState.CLOSED


async def test_retry_loop_stopped_by_the_breaker_returns_a_readable_response(
    binding: Binding, live: LiveServer, clock: FakeClock
) -> None:
    transport = resilient(
        binding,
        clock,
        breaker=BreakerPolicy(failure_threshold=2),
        retry=RetryPolicy(attempts=5, wait=tenacity.wait_none(), budget=None),
        inner=one_connection_pool(binding),
    )
    live.state.fail_next = 100
    timeout = binding.http.Timeout(5.0, pool=1.0)
    async with binding.client(transport, timeout=timeout) as client:
        response = await client.get(f"{live.url}/flaky")
        # The circuit opened after the second 503: the loop stopped there, and the
        # last real answer is handed over intact.
        assert response.status_code == 503
        assert response.text == "sick"
        assert live.state.hits["/flaky"] == 2
        breaker = transport.breaker(live.url)
        assert breaker.state is CircuitState.OPEN

        breaker.reset()
        assert await burst(client, f"{live.url}/status/200", 5) == [200] * 5


async def test_stream_closed_early_frees_the_connection_and_is_no_failure(
    binding: Binding, live: LiveServer, clock: FakeClock
) -> None:
    transport = resilient(
        binding,
        clock,
        breaker=BreakerPolicy(failure_threshold=1),
        inner=one_connection_pool(binding),
    )
    timeout = binding.http.Timeout(5.0, pool=1.0)
    try:
        async with binding.client(transport, timeout=timeout) as client:
            # Walk away from a stream the server has not finished (it waits on the
            # gate). Only the status line is looked at: reading part of a body and
            # dropping the iterator makes httpx's own generators warn under trio.
            async with client.stream("GET", f"{live.url}/sse-gated?n=3") as response:
                assert response.status_code == 200
            # The only connection is free again, and walking away was not a failure.
            response = await client.get(f"{live.url}/status/200")
            assert response.status_code == 200
            assert transport.breaker(live.url).state is CircuitState.CLOSED
    finally:
        live.state.gate.set()


# -- a hanging upstream ---------------------------------------------------------------


async def test_hanging_upstream_trips_the_breaker_then_calls_never_reach_it(
    binding: Binding, live: LiveServer, clock: FakeClock
) -> None:
    transport = resilient(
        binding, clock, breaker=BreakerPolicy(failure_threshold=3, recovery_timeout=30)
    )
    timeout = binding.http.Timeout(5.0, read=0.2)
    async with binding.client(transport, timeout=timeout) as client:
        for _ in range(3):
            with pytest.raises(binding.http.ReadTimeout):
                await client.get(f"{live.url}/hang")
        await until(lambda: live.state.hits["/hang"] == 3)
        breaker = transport.breaker(live.url)
        assert breaker.state is CircuitState.OPEN

        for _ in range(20):
            with pytest.raises(binding.api.CircuitOpenError) as info:
                await client.get(f"{live.url}/hang")
            assert info.value.host == f"127.0.0.1:{live.port}"
            assert info.value.retry_after == 30.0  # the FakeClock has not moved
    assert live.state.hits["/hang"] == 3


async def test_retries_against_a_hanging_upstream_stop_when_the_circuit_opens(
    binding: Binding, live: LiveServer, clock: FakeClock
) -> None:
    transport = resilient(
        binding,
        clock,
        breaker=BreakerPolicy(failure_threshold=2),
        retry=RetryPolicy(attempts=5, wait=tenacity.wait_fixed(1), budget=None),
    )
    timeout = binding.http.Timeout(5.0, read=0.2)
    async with binding.client(transport, timeout=timeout) as client:
        with pytest.raises(binding.http.ReadTimeout):
            await client.get(f"{live.url}/hang")
    await until(lambda: live.state.hits["/hang"] >= 2)
    assert live.state.hits["/hang"] == 2
    assert clock.sleeps == [1.0]  # no backoff slept once the circuit was open
    assert transport.breaker(live.url).state is CircuitState.OPEN


# -- streaming ------------------------------------------------------------------------


async def test_server_sent_events_arrive_before_the_stream_ends(
    binding: Binding, live: LiveServer, clock: FakeClock
) -> None:
    transport = resilient(binding, clock)
    try:
        async with binding.client(transport) as client:
            async with client.stream("GET", f"{live.url}/sse-gated?n=3") as response:
                assert response.headers["content-type"].startswith("text/event-stream")
                lines = lines_of(response)
                # The server holds the rest of the stream until the gate opens: a
                # transport that buffered the body would never deliver event 0.
                with anyio.fail_after(HANG_GUARD):
                    first = await lines.__anext__()
                assert first == "data: 0"
                assert not live.state.gate.is_set()
                live.state.gate.set()
                rest = [line async for line in lines if line]
        assert rest == ["data: 1", "data: 2"]
    finally:
        live.state.gate.set()


async def test_a_streaming_probe_closes_the_circuit_on_its_status_line(
    binding: Binding, live: LiveServer, clock: FakeClock
) -> None:
    transport = resilient(
        binding, clock, breaker=BreakerPolicy(failure_threshold=1, recovery_timeout=10)
    )
    try:
        async with binding.client(transport) as client:
            assert (await client.get(f"{live.url}/status/503")).status_code == 503
            breaker = transport.breaker(live.url)
            assert breaker.state is CircuitState.OPEN
            clock.advance(10)
            async with client.stream("GET", f"{live.url}/sse-gated?n=2") as response:
                lines = lines_of(response)
                with anyio.fail_after(HANG_GUARD):
                    assert await lines.__anext__() == "data: 0"
                # The stream is still open, yet the circuit has recovered.
                assert breaker.state is CircuitState.CLOSED
                live.state.gate.set()
                assert [line async for line in lines if line] == ["data: 1"]
    finally:
        live.state.gate.set()


# -- the body phase on a real socket ----------------------------------------------------


async def test_connection_reset_mid_body_is_a_failure(
    binding: Binding, live: LiveServer, clock: FakeClock
) -> None:
    transport = resilient(binding, clock, breaker=BreakerPolicy(failure_threshold=1))
    async with binding.client(transport) as client:
        with pytest.raises(binding.http.RemoteProtocolError):
            await client.get(f"{live.url}/reset-mid-body")
        assert transport.breaker(live.url).state is CircuitState.OPEN
        with pytest.raises(binding.api.CircuitOpenError):
            await client.get(f"{live.url}/reset-mid-body")
    assert live.state.hits["/reset-mid-body"] == 1


async def test_streamed_body_that_dies_counts_when_it_dies(
    binding: Binding, live: LiveServer, clock: FakeClock
) -> None:
    transport = resilient(binding, clock, breaker=BreakerPolicy(failure_threshold=1))
    async with binding.client(transport) as client:
        async with client.stream("GET", f"{live.url}/reset-mid-body") as response:
            assert response.status_code == 200
            breaker = transport.breaker(live.url)
            assert breaker.state is CircuitState.CLOSED  # a 200 status line is no verdict
            with pytest.raises(binding.http.RemoteProtocolError):
                await response.aread()
        assert breaker.state is CircuitState.OPEN


async def read_all(binding: Binding, client: Any, url: str, how: str, fail: bool = False) -> None:
    """``client.get``, or ``client.stream`` read chunk by chunk (``fail``: the
    caller's own code raises on the first chunk). A sync client streams in one
    worker thread, ``with client.stream(...)`` as a sync caller writes it: the
    response is then closed while the error is on its way out."""
    if how == "get":
        await client.get(url)
        return
    if binding.sync:

        def read() -> None:
            with client.sync.stream("GET", url) as response:
                for _ in response.iter_bytes():
                    if fail:
                        raise KeyError("the caller's bug")

        await anyio.to_thread.run_sync(read)
        return
    async with client.stream("GET", url) as response:
        async for _ in response.aiter_bytes():
            if fail:
                raise KeyError("the caller's bug")


#: httpx leaves its own body generators suspended when reading raises above the
#: transport (it closes the stream, not the generators); trio reports them when
#: they are collected. Plain httpx does the same: not ours to close.
_HTTPX_GENERATORS = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@_HTTPX_GENERATORS
@pytest.mark.parametrize("how", ["get", "stream"])
async def test_a_body_that_does_not_decode_is_a_failure_under_httpx(
    binding: Binding, live: LiveServer, clock: FakeClock, how: str
) -> None:
    """README: an error while reading the body is a failure, also when httpx
    raises it above the transport (gzip that turns to garbage partway). httpx2
    finalises its body generator while that error is still on its way up, so
    the close cannot tell it from a reader that stopped: the attempt counts as
    neither success nor failure (README, "httpx2")."""
    events: list[Event] = []
    transport = resilient(
        binding, clock, breaker=BreakerPolicy(failure_threshold=1), listeners=[events.append]
    )
    async with binding.client(transport) as client:
        with pytest.raises(binding.http.DecodingError):
            await read_all(binding, client, f"{live.url}/bad-gzip", how)
    outcomes = [e.outcome for e in events if isinstance(e, AttemptFinished)]
    if binding.http.__name__ == "httpx2":
        assert outcomes == ["ignored"]
        assert transport.breaker(live.url).state is CircuitState.CLOSED
    else:
        assert outcomes == ["failure"]
        assert transport.breaker(live.url).state is CircuitState.OPEN


@_HTTPX_GENERATORS
async def test_the_callers_own_error_while_streaming_is_no_failure(
    binding: Binding, live: LiveServer, clock: FakeClock
) -> None:
    transport = resilient(binding, clock, breaker=BreakerPolicy(failure_threshold=1))
    async with binding.client(transport) as client:
        with pytest.raises(KeyError):
            await read_all(binding, client, f"{live.url}/drip?n=3&interval=0", "stream", fail=True)
        assert transport.breaker(live.url).state is CircuitState.CLOSED
        assert transport.snapshot()[f"127.0.0.1:{live.port}"]["consecutive_failures"] == 0
