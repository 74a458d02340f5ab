"""ResilientClient: an httpx.AsyncClient with a breaker per host, safe retries
and real timeouts, configured in one place.

    python examples/resilient_client.py

A blip (two 503s) is absorbed by retries. An outage opens the circuit: retries
stop as soon as it opens, and later calls are rejected without reaching the
upstream. ``client.transport.snapshot()`` is what a health endpoint would show.
After the recovery timeout one probe closes the circuit again. The breaker's
own log lines (``resilient_http`` logger) are printed as they happen.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys

import httpx
import tenacity
from _upstream import Upstream, serve

from resilient_http import (
    BreakerPolicy,
    CircuitOpenError,
    Event,
    Policy,
    ResilientClient,
    RetryPolicy,
    RetryScheduled,
)

RECOVERY_TIMEOUT = 0.5  # seconds; 30 by default, short here so the demo ends quickly


def show_retries(event: Event) -> None:
    if isinstance(event, RetryScheduled):
        print(f"    retry after attempt {event.attempt} ({event.reason}), in {event.wait:.3f}s")


async def get(client: httpx.AsyncClient, upstream: Upstream, path: str) -> None:
    before = upstream.hits()
    try:
        response = await client.get(path)
    except CircuitOpenError as exc:
        outcome = f"CircuitOpenError (retry in {exc.retry_after:.2f}s)"
    else:
        outcome = f"{response.status_code} {response.json()}"
    print(f"  GET {path} -> {outcome}; upstream reached {upstream.hits() - before}x")


async def main(upstream: Upstream, base_url: str) -> None:
    logging.basicConfig(level=logging.WARNING, format="    log: %(message)s", stream=sys.stdout)
    logging.getLogger("resilient_http").setLevel(logging.INFO)

    policy = Policy(
        breaker=BreakerPolicy(failure_threshold=4, recovery_timeout=RECOVERY_TIMEOUT),
        # Any tenacity wait strategy; tiny waits so the demo is quick.
        retry=RetryPolicy(attempts=3, wait=tenacity.wait_exponential(multiplier=0.01, max=0.1)),
    )
    async with ResilientClient(
        base_url=base_url, policy=policy, listeners=[show_retries]
    ) as client:
        print(f"default timeouts: {client.timeout}")

        print("1. a blip: the next two answers are 503, retries absorb them")
        upstream.fail_next(2)
        await get(client, upstream, "/catalog")

        print("2. an outage: retries stop the moment the circuit opens")
        upstream.set("down")
        await get(client, upstream, "/catalog")  # 3 attempts, 3 failures
        await get(client, upstream, "/catalog")  # 4th failure opens it: no more attempts
        await get(client, upstream, "/catalog")  # rejected at once
        print(f"  health: {json.dumps(client.transport.snapshot())}")

        print(f"3. the upstream recovers; {RECOVERY_TIMEOUT}s later a probe closes the circuit")
        upstream.set("ok")
        await asyncio.sleep(RECOVERY_TIMEOUT)
        await get(client, upstream, "/catalog")
        print(f"  circuit state: {client.transport.breaker(base_url).state.value}")


if __name__ == "__main__":
    upstream = Upstream()
    with serve(upstream) as base_url:  # a real server on 127.0.0.1, in a thread
        asyncio.run(main(upstream, base_url))
