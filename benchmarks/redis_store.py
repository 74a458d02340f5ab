"""The fleet-shared breaker: what ``RedisStateStore`` costs, and how fast a trip spreads.

Run it on its own::

    python -m benchmarks.redis_store                  # ~20 s on 2 cores
    python -m benchmarks.redis_store --quick          # checks that it works, not how fast
    python -m benchmarks.redis_store --json           # the result as JSON
    python -m benchmarks.redis_store --redis-url redis://127.0.0.1:6379/0

or call ``await run(...)`` (it returns a JSON-serialisable dict). Without
``--redis-url`` it starts its own ``redis-server`` (127.0.0.1, a free port, no
persistence) and stops it afterwards; with no ``redis-server`` on the machine the
result says so (``"skipped"``) instead of failing.

Two figures:

- ``success_path``: sequential ``client.get()`` through a ``ResilientTransport``
  over ``httpx.MockTransport`` (a 200 with a 2-byte body), with the default
  in-memory breakers (``store=None``, the baseline) and with a connected
  ``RedisStateStore``, in interleaved rounds; the ratio is per round, same run.
  Target: <= 1.10x. A healthy call must never wait on Redis, so this is the
  price of the store's bookkeeping alone.
- ``trip_propagation``: ``processes`` worker processes, each with its own store
  and a breaker for the host; the benchmark process trips the shared circuit
  (``failure_threshold`` failures) and every worker notes when its breaker
  opened. Reported per trip: from the start of the tripping call to the moment
  the *last* worker opened (``time.monotonic()``, CLOCK_MONOTONIC, is one clock
  for every process on Linux). This covers the Lua script, the pub/sub push and
  each worker's event loop picking it up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from resilient_http import (
    BreakerPolicy,
    CircuitState,
    Event,
    Policy,
    ResilientTransport,
    RetryPolicy,
    StateChanged,
)

from ._measure import Batch, Row, Section, Target, interleave

__all__ = ["run"]

ROOT = Path(__file__).resolve().parent.parent
URL = "http://api.example.com/items"
THRESHOLD = 5


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=b"ok")


def _fail(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, content=b"no")


def _policy() -> Policy:
    return Policy(
        breaker=BreakerPolicy(failure_threshold=THRESHOLD, recovery_timeout=60.0),
        retry=RetryPolicy(attempts=1),
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def _redis_server() -> Iterator[str | None]:
    """A throwaway redis-server; yields its URL, or None if none is installed."""
    executable = shutil.which("redis-server")
    if executable is None:
        yield None
        return
    port = _free_port()
    process = subprocess.Popen(
        [
            executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.asynccontextmanager
async def _store(url: str, prefix: str) -> AsyncIterator[Any]:
    from redis.asyncio import Redis

    from resilient_http.redis import RedisStateStore

    redis = Redis.from_url(url)
    try:
        yield RedisStateStore(redis, prefix=prefix)
    finally:
        await redis.aclose()


# -- success path ------------------------------------------------------------------------


async def _success_path(url: str, requests: int, rounds: int) -> Section:
    baseline, ours = "in-memory breakers (store=None)", "RedisStateStore"
    rows = {baseline: Row(baseline, "baseline"), ours: Row(ours, "ours")}
    async with _store(url, f"bench-success-{os.getpid()}") as store:
        clients = {
            baseline: httpx.AsyncClient(
                transport=ResilientTransport(httpx.MockTransport(_ok), policy=_policy())
            ),
            ours: httpx.AsyncClient(
                transport=ResilientTransport(
                    httpx.MockTransport(_ok), policy=_policy(), store=store
                )
            ),
        }
        try:
            await clients[ours].get(URL)
            if not await store.connect():
                raise RuntimeError("the Redis store did not connect")

            def batch(client: httpx.AsyncClient) -> Batch:
                async def timed() -> float:
                    started = time.perf_counter()
                    for _ in range(requests):
                        await client.get(URL)
                    return (time.perf_counter() - started) / requests * 1e6

                return timed

            await interleave({name: batch(c) for name, c in clients.items()}, rows, rounds)
        finally:
            for client in clients.values():
                await client.aclose()
    section = Section(
        key="redis_success_path",
        title="Success path: the Redis store vs in-memory breakers",
        unit="µs per request",
        baseline=baseline,
        rows=list(rows.values()),
        targets=[Target(ours, "<=", 1.10)],
        params={"requests_per_round": requests, "rounds": rounds},
    )
    section.compute_ratios()
    return section


# -- trip propagation ------------------------------------------------------------------------


def _host(trip: int) -> str:
    return f"trip{trip}.example.com"


async def _worker(url: str, prefix: str, trips: int) -> None:
    """One fleet member: note when each trip's breaker opened, report on 'done'."""
    opened: dict[str, float] = {}

    def listener(event: Event) -> None:
        if isinstance(event, StateChanged) and event.new is CircuitState.OPEN:
            opened.setdefault(event.host, time.monotonic())

    async with _store(url, prefix) as store:
        transport = ResilientTransport(
            httpx.MockTransport(_ok), policy=_policy(), store=store, listeners=[listener]
        )
        for trip in range(trips):
            transport.breaker(f"{_host(trip)}:80")  # this process calls these hosts
        connected = await store.connect()
        print(json.dumps({"ready": connected}), flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)
        print(json.dumps({"opened": opened}), flush=True)
        await transport.aclose()


def _read_line(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError("benchmark worker did not answer")
    line = process.stdout.readline()
    if not line:
        raise RuntimeError("benchmark worker exited")
    data: dict[str, Any] = json.loads(line)
    return data


def _spawn_workers(
    url: str, prefix: str, processes: int, trips: int
) -> list[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "benchmarks.redis_store", "--worker"]
    command += ["--redis-url", url, "--prefix", prefix, "--trips", str(trips)]
    return [
        subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        for _ in range(processes)
    ]


async def _trip_propagation(url: str, processes: int, trips: int) -> dict[str, Any]:
    prefix = f"bench-trip-{os.getpid()}"
    workers = _spawn_workers(url, prefix, processes, trips)
    try:
        if not all(_read_line(w, 60)["ready"] for w in workers):
            raise RuntimeError("a benchmark worker could not connect to Redis")
        started: dict[str, float] = {}
        async with _store(url, prefix) as store:
            transport = ResilientTransport(
                httpx.MockTransport(_fail), policy=_policy(), store=store
            )
            async with httpx.AsyncClient(transport=transport) as client:
                await client.get("http://warm-up.example.com/")  # opens the connections
                await store.connect()
                for trip in range(trips):
                    host = _host(trip)
                    for _ in range(THRESHOLD - 1):
                        await client.get(f"http://{host}/items")
                    await asyncio.sleep(0.05)  # those failures are counted in Redis by now
                    started[host] = time.monotonic()
                    await client.get(f"http://{host}/items")  # the failure that trips it
                    await asyncio.sleep(0.05)
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(b"done\n")
            worker.stdin.flush()
        reports = [_read_line(w, 60)["opened"] for w in workers]
    finally:
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.wait(timeout=10)
            if worker.poll() is None:
                worker.kill()
            for stream in (worker.stdin, worker.stdout):
                if stream is not None:
                    stream.close()
    samples: list[float] = []
    missed = 0
    for trip in range(trips):
        key = f"{_host(trip)}:80"
        times = [report.get(key) for report in reports]
        if any(t is None for t in times):
            missed += 1
            continue
        samples.append((max(t for t in times if t is not None) - started[_host(trip)]) * 1e3)
    return {
        "processes": processes,
        "trips": trips,
        "missed": missed,  # trips some worker never saw (should be 0)
        "median_ms": round(statistics.median(samples), 3) if samples else None,
        "max_ms": round(max(samples), 3) if samples else None,
        "samples_ms": [round(s, 3) for s in samples],
    }


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The benchmark trips circuits on purpose: no WARNING lines for that."""
    log = logging.getLogger("resilient_http")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


# -- entry points -----------------------------------------------------------------------------


async def run(
    *,
    requests: int = 500,
    rounds: int = 20,
    processes: int = 4,
    trips: int = 20,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """Measure both figures; returns ``{"success_path": <section JSON>,
    "trip_propagation": {...}, "redis": ...}``, or ``{"skipped": reason}`` when
    there is no Redis to measure against."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(_quiet())
        url = redis_url or stack.enter_context(_redis_server())
        if url is None:
            return {"skipped": "redis-server not found (apt-get install redis-server)"}
        success = await _success_path(url, requests, rounds)
        propagation = await _trip_propagation(url, processes, trips)
    return {
        "redis": redis_url or "redis-server started by the benchmark",
        "success_path": success.to_json(),
        "trip_propagation": propagation,
    }


def _print(result: dict[str, Any]) -> None:
    if "skipped" in result:
        print(f"skipped: {result['skipped']}")
        return
    success = result["success_path"]
    print(f"{success['title']} ({success['unit']}, {success['params']['rounds']} rounds)")
    for row in success["rows"]:
        ratio = f"{row['ratio']:.3f}x" if row["ratio"] is not None else "-"
        median = f"{row['median']:.1f}" if row["median"] is not None else row["status"]
        print(f"  {row['name']:<36} {median:>8}  {ratio}")
    for target in success["targets"]:
        print(f"  target {target['target']}: {'met' if target['met'] else 'NOT met'}")
    trip = result["trip_propagation"]
    print(
        f"A trip reaching all {trip['processes']} worker processes "
        f"({trip['trips']} trips, {trip['missed']} missed): "
        f"median {trip['median_ms']} ms, max {trip['max_ms']} ms"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_store", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny counts: checks that it runs")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 20)")
    parser.add_argument("--requests", type=int, help="requests per round (default 500)")
    parser.add_argument("--processes", type=int, default=4, help="worker processes (default 4)")
    parser.add_argument("--trips", type=int, help="trips to time (default 20)")
    parser.add_argument("--redis-url", help="use this Redis instead of starting one")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        logging.getLogger("resilient_http").setLevel(logging.ERROR)
        asyncio.run(_worker(args.redis_url, args.prefix, args.trips))
        return
    quick = args.quick
    result = asyncio.run(
        run(
            requests=args.requests or (50 if quick else 500),
            rounds=args.rounds or (3 if quick else 20),
            processes=args.processes,
            trips=args.trips or (3 if quick else 20),
            redis_url=args.redis_url,
        )
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print(result)


if __name__ == "__main__":
    main()
