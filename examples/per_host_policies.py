"""Per-host policies: one breaker per upstream, each with the policy its host
pattern selects (most specific wins: host:port, host, longest wildcard, default).

    python examples/per_host_policies.py

Four upstreams fail at the same moment. Payments (strict) opens after two
failures; every ``*.internal.example.com`` host retries and opens after three;
``inventory.internal.example.com`` has its own, more tolerant policy, which
beats the wildcard; everything else gets the default. Then they all recover.

The upstream is an in-process ASGI app (``httpx.ASGITransport``), so these
host names never leave this process: no DNS, no internet.
"""

from __future__ import annotations

import asyncio

import httpx
import tenacity
from _upstream import Upstream

from resilient_http import (
    BreakerPolicy,
    CircuitOpenError,
    Event,
    Policy,
    ResilientTransport,
    RetryPolicy,
    StateChanged,
)

RECOVERY_TIMEOUT = 0.3  # seconds; 30 by default, short here so the demo ends quickly

CALLS = [
    ("POST", "https://payments.example.com/charges"),
    ("GET", "https://users.internal.example.com/users/7"),
    ("GET", "https://inventory.internal.example.com/stock/12"),
    ("GET", "https://catalog.example.com/items"),
]


def breaker(failure_threshold: int) -> BreakerPolicy:
    return BreakerPolicy(failure_threshold=failure_threshold, recovery_timeout=RECOVERY_TIMEOUT)


def show_transitions(event: Event) -> None:
    if isinstance(event, StateChanged):
        print(f"    circuit for {event.host}: {event.old.value} -> {event.new.value}")


async def call(client: httpx.AsyncClient, method: str, url: str) -> str:
    try:
        response = await client.request(method, url)
    except CircuitOpenError:
        return "rejected"
    return str(response.status_code)


async def main() -> None:
    upstream = Upstream()
    no_retries = RetryPolicy(attempts=1)
    transport = ResilientTransport(
        httpx.ASGITransport(app=upstream.app),
        policy=Policy(breaker=breaker(5), retry=no_retries),  # every other host
        hosts={
            # Money: trip early, never retry (POSTs are not retried anyway).
            "payments.example.com": Policy(breaker=breaker(2), retry=no_retries),
            # Internal services: cheap to retry, trip after three failures in a row.
            "*.internal.example.com": Policy(
                breaker=breaker(3), retry=RetryPolicy(attempts=3, wait=tenacity.wait_none())
            ),
            # One internal host known to be noisy: its exact name beats the wildcard.
            "inventory.internal.example.com": Policy(breaker=breaker(10), retry=no_retries),
        },
        listeners=[show_transitions],
    )
    async with httpx.AsyncClient(transport=transport) as client:
        print("1. every upstream answers 503; three calls to each")
        upstream.set("down")
        for method, url in CALLS:
            host = httpx.URL(url).host
            before = upstream.hits(host)
            outcomes = [await call(client, method, url) for _ in range(3)]
            reached = upstream.hits(host) - before
            print(f"  {method} {url}: {', '.join(outcomes)} (upstream reached {reached}x)")

        print("2. the health snapshot")
        for key, state in sorted(transport.snapshot().items()):
            print(f"  {key:40} {state['state']}")

        print(f"3. everything recovers; {RECOVERY_TIMEOUT}s later probes close the open circuits")
        upstream.set("ok")
        await asyncio.sleep(RECOVERY_TIMEOUT)
        for method, url in CALLS:
            print(f"  {method} {url}: {await call(client, method, url)}")
        states = {key: state["state"] for key, state in transport.snapshot().items()}
        print(f"  all closed: {set(states.values()) == {'closed'}}")


if __name__ == "__main__":
    asyncio.run(main())
