"""Fallbacks: answer a rejected call with a degraded response instead of an error.

    python examples/fallbacks.py

``transport.fallback(pattern)`` registers a function (sync or async) that is
called with the request and the rejection error whenever the circuit of a
matching host is open. Its response is marked with
``response.extensions["resilient_http.fallback"]``. While the circuit is
closed, callers see the upstream's real answers, errors included. A host with
no fallback raises ``CircuitOpenError``.

The upstream is an in-process ASGI app (``httpx.ASGITransport``), so these
host names never leave this process: no DNS, no internet.
"""

from __future__ import annotations

import asyncio

import httpx
from _upstream import Upstream

from resilient_http import (
    BreakerPolicy,
    CircuitOpenError,
    Policy,
    RejectedError,
    ResilientTransport,
    RetryPolicy,
)

RECOVERY_TIMEOUT = 0.3  # seconds; 30 by default, short here so the demo ends quickly
FALLBACK = "resilient_http.fallback"

URLS = [
    "https://inventory.internal.example.com/stock/12",
    "https://recommendations.example.com/for/7",
    "https://pricing.example.com/prices/12",
]

upstream = Upstream()
transport = ResilientTransport(
    httpx.ASGITransport(app=upstream.app),
    policy=Policy(
        breaker=BreakerPolicy(failure_threshold=2, recovery_timeout=RECOVERY_TIMEOUT),
        retry=RetryPolicy(attempts=1),
    ),
)


# As a decorator, async: stock unknown, and say so.
@transport.fallback("inventory.internal.example.com")
async def inventory_unknown(request: httpx.Request, error: RejectedError) -> httpx.Response:
    return httpx.Response(200, json={"status": "unknown", "cached": True})


# As a call, sync: no recommendations is better than a broken page.
def no_recommendations(request: httpx.Request, error: RejectedError) -> httpx.Response:
    return httpx.Response(200, json={"items": [], "reason": error.reason})


transport.fallback("recommendations.example.com", no_recommendations)


async def call(client: httpx.AsyncClient, url: str) -> None:
    try:
        response = await client.get(url)
    except CircuitOpenError as exc:
        print(f"  GET {url} -> CircuitOpenError: {exc}")
        return
    marker = response.extensions.get(FALLBACK)
    source = f"fallback ({marker})" if marker else "upstream"
    print(f"  GET {url} -> {response.status_code} {response.json()} from {source}")


async def main() -> None:
    async with httpx.AsyncClient(transport=transport) as client:
        print("1. the upstreams fail; while the circuits are closed callers see the real 503s")
        upstream.set("down")
        for url in URLS:
            await call(client, url)
            await call(client, url)

        print("2. the circuits are open: fallbacks answer, the upstream is left alone")
        before = upstream.hits()
        for url in URLS:
            await call(client, url)
        print(f"  requests that reached the upstream meanwhile: {upstream.hits() - before}")

        print(f"3. the upstreams recover; {RECOVERY_TIMEOUT}s later the real answers are back")
        upstream.set("ok")
        await asyncio.sleep(RECOVERY_TIMEOUT)
        for url in URLS:
            await call(client, url)
        for key, state in sorted(transport.snapshot().items()):
            print(f"  circuit for {key}: {state['state']}")


if __name__ == "__main__":
    asyncio.run(main())
