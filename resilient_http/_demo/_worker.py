"""One side of the demo (the plain or the resilient client), in its own process."""

from __future__ import annotations

import itertools
import json
import logging
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import anyio
import httpx

from .._async._client import ResilientClient
from .._async._transport import FALLBACK_EXTENSION
from .._breaker import CircuitState
from .._events import Event, StateChanged
from .._exceptions import CircuitOpenError
from .._policy import Policy
from ._scenario import (
    LOGICAL_HOST,
    POLICY,
    RATE,
    REPORT_EVERY,
    SICK,
    TIMEOUT,
    UPSTREAMS,
    Kind,
    Plan,
    Schedule,
    percentile,
    replica_policy,
)


@dataclass(slots=True)
class Call:
    upstream: int  # index into UPSTREAMS
    issued: float
    done: float
    kind: Kind

    @property
    def latency(self) -> float:
        return self.done - self.issued


class OpenCounter:
    """A listener: counts the times a circuit opened."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, StateChanged) and event.new is CircuitState.OPEN:
            self.count += 1


def _inventory_fallback(request: httpx.Request, error: CircuitOpenError) -> httpx.Response:
    return httpx.Response(200, json={SICK: "cached", "stale": True})


@dataclass
class Worker:
    side: str
    plan: Plan
    client: httpx.AsyncClient
    opened: OpenCounter | None = None
    calls: list[Call] = field(default_factory=list)
    recent: deque[Call] = field(default_factory=deque)
    in_flight: int = 0
    error_types: Counter[str] = field(default_factory=Counter)
    # each upstream's URLs, in turn (a round robin when the plan gives several)
    targets: tuple[Iterator[str], ...] = ()

    def __post_init__(self) -> None:
        self.targets = tuple(itertools.cycle(urls) for urls in self.plan.targets)

    @classmethod
    def build(cls, side: str, plan: Plan) -> Worker:
        limits = httpx.Limits(max_connections=plan.max_connections)
        common: dict[str, Any] = {
            "timeout": TIMEOUT,
            "limits": limits,
            "trust_env": False,
            "headers": {"x-demo-side": side},
        }
        if side == "plain":
            return cls(side, plan, httpx.AsyncClient(**common))
        opened = OpenCounter()
        hosts: dict[str, Policy] | None = None
        if plan.endpoints:  # --replicas: one logical host, its replicas as endpoints
            hosts = {LOGICAL_HOST: replica_policy(plan.endpoints)}
        client = ResilientClient(policy=POLICY, hosts=hosts, listeners=[opened], **common)
        inventory = httpx.URL(plan.targets[0][0]).netloc.decode()
        client.transport.fallback(inventory, _inventory_fallback)
        return cls(side, plan, client, opened)

    async def call(self, upstream: int) -> None:
        self.in_flight += 1
        issued = time.monotonic()
        kind: Kind
        try:
            response = await self.client.get(next(self.targets[upstream]))
        except httpx.HTTPError as exc:
            kind = "error"
            self.error_types[type(exc).__name__] += 1
        else:
            if FALLBACK_EXTENSION in response.extensions:
                kind = "fallback"
            elif response.status_code >= 500:
                kind = "error"
                self.error_types[f"HTTP {response.status_code}"] += 1
            else:
                kind = "ok"
        finally:
            self.in_flight -= 1
        call = Call(upstream, issued, time.monotonic(), kind)
        self.calls.append(call)
        self.recent.append(call)

    async def drive(self, schedule: Schedule) -> None:
        """Open-loop traffic: every tick, one call to each upstream, whether or
        not earlier calls have finished."""
        interval = 1.0 / RATE
        async with anyio.create_task_group() as tg:
            tick = schedule.start
            while tick < schedule.end:
                for upstream in range(len(UPSTREAMS)):
                    tg.start_soon(self.call, upstream)
                tick += interval
                now = time.monotonic()
                if tick < now - 5 * interval:  # fell behind (a busy machine): no burst
                    tick = now
                await anyio.sleep(max(0.0, tick - now))
            # Let the calls in flight finish: each is bounded by the timeouts.
            tg.cancel_scope.deadline = anyio.current_time() + 2 * TIMEOUT + 1.0

    def report(self, now: float) -> dict[str, Any]:
        """What the last second looked like to this side's callers."""
        recent = self.recent
        while recent and recent[0].done < now - 1.0:
            recent.popleft()
        latencies = [c.latency for c in recent]
        states: dict[str, str] = {}
        if isinstance(self.client, ResilientClient):
            snapshot = self.client.transport.snapshot()
            for name, key in self.plan.breakers:
                data = snapshot.get(key)
                states[name] = "-" if data is None else str(data["state"])
        return {
            "now": now,
            "requests": len(recent),
            "p50": percentile(latencies, 50),
            "p99": percentile(latencies, 99),
            "fallbacks": sum(c.kind == "fallback" for c in recent),
            "errors": sum(c.kind == "error" for c in recent),
            "in_flight": self.in_flight,
            "states": states,
        }

    async def run(self, schedule: Schedule, out: TextIO) -> None:
        async def reporter() -> None:
            while True:
                await anyio.sleep(REPORT_EVERY)
                _send(out, {"report": self.report(time.monotonic())})

        async with self.client, anyio.create_task_group() as tg:
            tg.start_soon(reporter)
            await anyio.sleep(max(0.0, schedule.start - time.monotonic()))
            await self.drive(schedule)
            tg.cancel_scope.cancel()
        calls = [
            [c.upstream, round(c.issued - schedule.start, 6), round(c.latency, 6), c.kind]
            for c in self.calls
        ]
        opened = None if self.opened is None else self.opened.count
        _send(
            out,
            {
                "calls": calls,
                "opened": opened,
                "error_types": dict(self.error_types.most_common()),
                "cpu_s": round(time.process_time(), 3),
            },
        )


def _send(out: TextIO, message: dict[str, Any]) -> None:
    out.write(json.dumps(message) + "\n")
    out.flush()


def worker_main(argv: Sequence[str]) -> int:
    """``python -m resilient_http._demo worker SIDE DURATION PLAN`` (``Plan.dumps``):
    say ``ready``, read the start time (``time.monotonic``) from stdin, run."""
    side, duration, plan = argv
    logging.getLogger("resilient_http").addHandler(logging.NullHandler())
    worker = Worker.build(side, Plan.loads(plan))
    _send(sys.stdout, {"ready": True})
    start = float(sys.stdin.readline())
    anyio.run(worker.run, Schedule(start, float(duration)), sys.stdout)
    return 0


# -- the conductor: workers, live table, summary --------------------------------------
