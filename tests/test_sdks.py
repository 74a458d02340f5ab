"""The anthropic SDK (built on httpx2) over ``resilient_http.httpx2``, against a
fake Messages API on a real loopback server: it trips, and is then rejected
without touching the server (README, "httpx2" and "Under an SDK")."""

from __future__ import annotations

import time

import anthropic
import pytest
from anthropic.types import MessageParam

from resilient_http.httpx2 import (
    BreakerPolicy,
    CircuitState,
    Policy,
    ResilientClient,
    RetryPolicy,
    SyncResilientClient,
    service_unavailable,
)

from .server import LiveServer

POLICY = Policy(breaker=BreakerPolicy(failure_threshold=3), retry=RetryPolicy(attempts=1))
HELLO: list[MessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def overloaded(live: LiveServer) -> LiveServer:
    live.state.fail_next = 1000
    live.state.fail_status = 529
    return live


async def test_the_async_sdk_trips_then_is_rejected_without_reaching_the_server(
    overloaded: LiveServer,
) -> None:
    async with ResilientClient(policy=POLICY) as http:
        client = anthropic.AsyncAnthropic(
            api_key="sk-ant-test", base_url=overloaded.url, http_client=http, max_retries=0
        )
        for _ in range(3):
            with pytest.raises(anthropic.APIStatusError) as caught:
                await client.messages.create(model="m", max_tokens=8, messages=HELLO)
            assert caught.value.status_code == 529
        assert http.transport.breaker(overloaded.url).state is CircuitState.OPEN
        hits = overloaded.state.hits["/v1/messages"]
        assert hits == 3

        http.transport.fallback("127.0.0.1", service_unavailable)
        started = time.perf_counter()
        with pytest.raises(anthropic.APIStatusError) as rejected:  # with the SDK's own retries on
            await client.with_options(max_retries=2).messages.create(
                model="m", max_tokens=8, messages=HELLO
            )
        assert time.perf_counter() - started < 0.05  # x-should-retry: false: no SDK backoff
        assert rejected.value.status_code == 503
        assert rejected.value.response.headers["x-should-retry"] == "false"
        assert overloaded.state.hits["/v1/messages"] == hits  # never touched


async def test_without_a_fallback_the_sdk_sees_a_connection_error(overloaded: LiveServer) -> None:
    async with ResilientClient(policy=POLICY) as http:
        http.transport.breaker(overloaded.url).force_open()
        client = anthropic.AsyncAnthropic(
            api_key="sk-ant-test", base_url=overloaded.url, http_client=http, max_retries=0
        )
        with pytest.raises(anthropic.APIConnectionError):
            await client.messages.create(model="m", max_tokens=8, messages=HELLO)
    assert overloaded.state.hits["/v1/messages"] == 0


def test_the_sync_sdk_over_the_sync_client(overloaded: LiveServer) -> None:
    with SyncResilientClient(policy=POLICY) as http:
        http.transport.fallback("127.0.0.1", service_unavailable)
        client = anthropic.Anthropic(
            api_key="sk-ant-test", base_url=overloaded.url, http_client=http, max_retries=0
        )
        statuses = []
        for _ in range(5):
            try:
                client.messages.create(model="m", max_tokens=8, messages=HELLO)
            except anthropic.APIStatusError as exc:
                statuses.append(exc.status_code)
        assert statuses == [529, 529, 529, 503, 503]
        assert overloaded.state.hits["/v1/messages"] == 3
        overloaded.state.fail_next = 0
        http.transport.breaker(overloaded.url).reset()
        message = client.messages.create(model="m", max_tokens=8, messages=HELLO)
        assert message.content[0].text == "hello"  # type: ignore[union-attr]
