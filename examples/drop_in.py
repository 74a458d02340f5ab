"""Drop ResilientTransport into the httpx.AsyncClient you already have.

    python examples/drop_in.py

A local upstream starts hanging. Every call would wait out its read timeout
(the cascade: callers pile up behind a stuck dependency). With the breaker,
three timeouts open the circuit and the next calls fail at once without
touching the upstream. Once the upstream is healthy again and the recovery
timeout has passed, one probe goes through and closes the circuit.
"""

from __future__ import annotations

import asyncio
import time

import httpx
from _upstream import Upstream, serve

from resilient_http import (
    BreakerPolicy,
    CircuitOpenError,
    Event,
    Policy,
    ResilientTransport,
    RetryPolicy,
    StateChanged,
)

RECOVERY_TIMEOUT = 0.5  # seconds; 30 by default, short here so the demo ends quickly
READ_TIMEOUT = 0.5  # generous for a loopback answer, short enough to watch


def show_transitions(event: Event) -> None:
    if isinstance(event, StateChanged):
        print(f"    circuit for {event.host}: {event.old.value} -> {event.new.value}")


def elapsed_ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.1f} ms"


async def get(client: httpx.AsyncClient, path: str) -> None:
    started = time.perf_counter()
    try:
        response = await client.get(path)
    except CircuitOpenError as exc:
        print(f"  GET {path} -> CircuitOpenError in {elapsed_ms(started)} ({exc})")
    except httpx.TimeoutException as exc:
        print(f"  GET {path} -> {type(exc).__name__} after {elapsed_ms(started)}")
    else:
        print(f"  GET {path} -> {response.status_code} in {elapsed_ms(started)}")


async def main(upstream: Upstream, base_url: str) -> None:
    # The only change to an existing client: wrap the transport it already used.
    transport = ResilientTransport(
        httpx.AsyncHTTPTransport(),
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=3, recovery_timeout=RECOVERY_TIMEOUT),
            retry=RetryPolicy(attempts=1),  # one attempt per call keeps the output readable
        ),
        listeners=[show_transitions],
    )
    timeout = httpx.Timeout(5.0, read=READ_TIMEOUT)
    async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=timeout) as client:
        print("1. the upstream is healthy")
        await get(client, "/orders/42")

        print(f"2. the upstream hangs: each call waits out the {READ_TIMEOUT}s read timeout")
        upstream.set("hang")
        for _ in range(3):
            await get(client, "/orders/42")

        print("3. the circuit is open: calls fail at once and never reach the upstream")
        before = upstream.hits()
        for _ in range(3):
            await get(client, "/orders/42")
        print(f"  requests that reached the upstream meanwhile: {upstream.hits() - before}")

        print(f"4. the upstream recovers; {RECOVERY_TIMEOUT}s later a probe closes the circuit")
        upstream.set("ok")
        await asyncio.sleep(RECOVERY_TIMEOUT)
        await get(client, "/orders/42")
        print(f"  circuit state: {transport.breaker(base_url).state.value}")


if __name__ == "__main__":
    upstream = Upstream()
    with serve(upstream) as base_url:  # a real server on 127.0.0.1, in a thread
        asyncio.run(main(upstream, base_url))
