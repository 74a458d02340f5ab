"""A bulkhead slot is the call's until its body ends (README, "Bulkhead"):
``client.get`` reads the body after the transport returns, and a streamed call
may read for minutes; both count as in flight until the body is read, closed
or failed. Against the real loopback server, on every binding (the sync ones
make their calls from concurrent worker threads)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from ..bindings import Binding
from ..server import LiveServer


class _Counting:
    """Counts calls from their request until their body is closed, as the
    upstream sees them (the highest count is ``peak``)."""

    def __init__(self, binding: Binding) -> None:
        self.binding = binding
        self.inner = binding.inner_http()
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1

    def handle_request(self, request: Any) -> Any:
        self.enter()
        try:
            response = self.inner.handle_request(request)
        except BaseException:
            self.leave()
            raise
        response.stream = counted(self.binding, response.stream, self)
        return response

    async def handle_async_request(self, request: Any) -> Any:
        self.enter()
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            self.leave()
            raise
        response.stream = counted(self.binding, response.stream, self)
        return response

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()


class _CountedBody:
    def __init__(self, stream: Any, owner: _Counting) -> None:
        self.stream, self.owner, self.open = stream, owner, True

    def __iter__(self) -> Iterator[bytes]:
        yield from self.stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            yield chunk

    def _end(self) -> None:
        if self.open:
            self.open = False
            self.owner.leave()

    def close(self) -> None:
        self._end()
        self.stream.close()

    async def aclose(self) -> None:
        self._end()
        await self.stream.aclose()


def in_flight(binding: Binding) -> Any:
    """A ``_Counting`` transport of the binding's kind, over its real HTTP transport."""
    base = binding.http.BaseTransport if binding.sync else binding.http.AsyncBaseTransport
    return type("InFlight", (_Counting, base), {})(binding)


def counted(binding: Binding, stream: Any, owner: _Counting) -> Any:
    base = binding.http.SyncByteStream if binding.sync else binding.http.AsyncByteStream
    return type("Counted", (_CountedBody, base), {})(stream, owner)


def bulkhead(binding: Binding, counter: Any, max_concurrency: int, max_wait: float) -> Any:
    api = binding.api
    policy = api.Policy(
        retry=api.RetryPolicy(attempts=1), max_concurrency=max_concurrency, max_wait=max_wait
    )
    return binding.client(binding.transport(counter, policy=policy))


async def test_slow_bodies_count_until_they_end(binding: Binding, live: LiveServer) -> None:
    """Ten ``client.get`` calls, two slots: never more than two bodies arriving."""
    counter = in_flight(binding)
    async with bulkhead(binding, counter, 2, max_wait=10.0) as client:
        statuses: list[int] = []

        async def one() -> None:
            response = await client.get(f"{live.url}/drip?n=3&interval=0.02")
            statuses.append(response.status_code)
            assert response.text == "chunk 0\nchunk 1\nchunk 2\n"

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(one)
    assert statuses == [200] * 10
    assert counter.peak == 2


async def test_open_streams_hold_their_slots_until_closed(
    binding: Binding, live: LiveServer
) -> None:
    counter = in_flight(binding)
    async with bulkhead(binding, counter, 2, max_wait=0.0) as client:
        async with (
            client.stream("GET", f"{live.url}/sse-gated?n=2") as first,
            client.stream("GET", f"{live.url}/sse-gated?n=2") as second,
        ):
            assert first.status_code == second.status_code == 200
            with pytest.raises(binding.api.BulkheadFullError):
                await client.get(f"{live.url}/status/200")
            live.state.gate.set()
            await first.aread()
            await second.aread()
        # both bodies ended: both slots are free again
        responses = [await client.get(f"{live.url}/status/200") for _ in range(2)]
        assert [r.status_code for r in responses] == [200, 200]


async def test_a_body_that_fails_gives_its_slot_back(binding: Binding, live: LiveServer) -> None:
    counter = in_flight(binding)
    async with bulkhead(binding, counter, 1, max_wait=0.0) as client:
        with pytest.raises(binding.http.RemoteProtocolError):
            await client.get(f"{live.url}/reset-mid-body")
        assert (await client.get(f"{live.url}/status/200")).status_code == 200
