"""Type-checked only (mypy --strict runs over tests/): the public API as users
write it must type-check without casts or ignores."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import tenacity

from resilient_http import (
    Breaker,
    BreakerPolicy,
    CircuitOpenError,
    CircuitState,
    Event,
    Policy,
    RejectedError,
    ResilientClient,
    ResilientTransport,
    RetryBudget,
    RetryPolicy,
    StaleCache,
    StateChanged,
)

if TYPE_CHECKING:
    from typing_extensions import assert_type

    async def usage() -> None:
        transport = ResilientTransport(
            httpx.AsyncHTTPTransport(http2=True),
            policy=Policy(
                retry=RetryPolicy(
                    attempts=4,
                    wait=tenacity.wait_exponential_jitter(initial=0.1, max=2),
                    statuses={429, 503},
                    budget=RetryBudget(ratio=0.1),
                    deadline=5.0,
                )
            ),
            hosts={
                "payments.example.com": Policy(
                    breaker=BreakerPolicy(failure_threshold=3, recovery_timeout=60)
                ),
                "*.internal.example.com": Policy(max_concurrency=10, max_wait=0.1),
            },
            stale_cache=StaleCache(max_entries=128),
        )

        @transport.fallback("inventory.internal.example.com")
        async def unknown(request: httpx.Request, error: RejectedError) -> httpx.Response:
            return httpx.Response(200, json={"status": "unknown"})

        def sync_fallback(request: httpx.Request, error: RejectedError) -> httpx.Response:
            return httpx.Response(503)

        registered = transport.fallback("*.example.com", sync_fallback)
        assert registered is sync_fallback
        breaker = transport.breaker("payments.example.com")
        assert_type(breaker, Breaker)
        assert_type(breaker.state, CircuitState)
        breaker.force_open()
        breaker.reset()
        snapshot: dict[str, dict[str, object]] = transport.snapshot()
        del snapshot

        def on_event(event: Event) -> None:
            if isinstance(event, StateChanged):
                assert_type(event.new, CircuitState)

        async with ResilientClient(base_url="https://api.example.com", listeners=[on_event]) as c:
            assert_type(c.transport, ResilientTransport)
            try:
                response = await c.get("/orders")
            except CircuitOpenError as exc:
                assert_type(exc.retry_after, float)
                assert_type(exc.host, str)
            else:
                assert_type(response, httpx.Response)
