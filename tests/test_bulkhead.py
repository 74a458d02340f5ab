"""A bulkhead slot is the call's until its body ends (README, "Bulkhead"):
``client.get`` reads the body after the transport returns, and a streamed call
may read for minutes; both count as in flight until the body is read, closed
or failed. Against the real loopback server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from resilient_http import (
    BulkheadFullError,
    Policy,
    ResilientTransport,
    RetryPolicy,
)

from .server import LiveServer


class InFlight(httpx.AsyncBaseTransport):
    """Counts calls from their request until their body is closed, as the
    upstream sees them (the highest count is ``peak``)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.now = self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            response = await self.inner.handle_async_request(request)
        except BaseException:
            self.now -= 1
            raise
        response.stream = _Counted(response.stream, self)  # type: ignore[arg-type]
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Counted(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, owner: InFlight) -> None:
        self.stream, self.owner, self.open = stream, owner, True

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            yield chunk

    async def aclose(self) -> None:
        if self.open:
            self.open = False
            self.owner.now -= 1
        await self.stream.aclose()


def bulkhead(counter: InFlight, max_concurrency: int, max_wait: float) -> httpx.AsyncClient:
    policy = Policy(
        retry=RetryPolicy(attempts=1), max_concurrency=max_concurrency, max_wait=max_wait
    )
    return httpx.AsyncClient(transport=ResilientTransport(counter, policy=policy))


async def test_slow_bodies_count_until_they_end(live: LiveServer) -> None:
    """Ten ``client.get`` calls, two slots: never more than two bodies arriving."""
    counter = InFlight()
    async with bulkhead(counter, 2, max_wait=10.0) as client:
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


async def test_open_streams_hold_their_slots_until_closed(live: LiveServer) -> None:
    counter = InFlight()
    async with bulkhead(counter, 2, max_wait=0.0) as client:
        async with (
            client.stream("GET", f"{live.url}/sse-gated?n=2") as first,
            client.stream("GET", f"{live.url}/sse-gated?n=2") as second,
        ):
            assert first.status_code == second.status_code == 200
            with pytest.raises(BulkheadFullError):
                await client.get(f"{live.url}/status/200")
            live.state.gate.set()
            await first.aread()
            await second.aread()
        # both bodies ended: both slots are free again
        responses = [await client.get(f"{live.url}/status/200") for _ in range(2)]
        assert [r.status_code for r in responses] == [200, 200]


async def test_a_body_that_fails_gives_its_slot_back(live: LiveServer) -> None:
    counter = InFlight()
    async with bulkhead(counter, 1, max_wait=0.0) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"{live.url}/reset-mid-body")
        assert (await client.get(f"{live.url}/status/200")).status_code == 200
