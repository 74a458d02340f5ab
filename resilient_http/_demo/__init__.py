"""``python -m resilient_http demo``: a cascade, prevented, side by side.

An embedded upstream runs on 127.0.0.1 in a thread of this process: two
HTTP/1.1 services, ``inventory`` and ``pricing``, on two ports (so two breaker
keys). ``inventory`` is healthy, then suffers an outage (one call in four hangs
until the caller gives up, the others get a fast 503), then heals; ``pricing``
stays healthy throughout.

The same open-loop traffic (a fixed number of calls per second to each
service, whatever the latency, as real callers send it) goes through a plain
``httpx.AsyncClient`` and through a ``ResilientClient`` with a fallback for
``inventory``, with the same timeout and connection pool. Each client runs in
its own worker process, so one side's pile-up cannot slow the other's event
loop; the workers report to this process, which draws the live table and the
summary.

``--replicas`` runs inventory as two replicas on two ports: replica A has the
outage, replica B stays healthy. The plain client sends its inventory calls to
A and B in turn (a round robin without health checks); the ResilientClient
calls one logical host, ``inventory.internal``, whose endpoints are A and B,
each with its own breaker: a sick replica costs it (near) nothing.

The upstream is a few dozen lines of ``asyncio`` streams, so the demo needs
nothing beyond the library's own dependencies. asyncio sets ``TCP_NODELAY`` on
every accepted socket, so loopback round trips stay around a millisecond.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from ._report import (
    Progress,
    SideResult,
    render_summary,
    summarise,
    summarise_replicas,
)
from ._scenario import (
    BALANCE,
    DEFAULT_DURATION,
    HANG_EVERY,
    HEALTHY,
    LOGICAL_HOST,
    MAX_DURATION,
    MIN_DURATION,
    RATE,
    REPLICA_A,
    REPLICA_B,
    REPLICAS,
    REPLICAS_MAX_CONNECTIONS,
    SICK,
    SIDES,
    SINGLE,
    Layout,
    Plan,
    Schedule,
)
from ._upstream import FlakyUpstream

__all__ = ["DEFAULT_DURATION", "MAX_DURATION", "MIN_DURATION", "run"]


#: ``--replicas``: how the plain client picks a replica, as the summary says it.
PLAIN_REPLICAS = (
    f"The plain client sends its {SICK} calls to A and B in turn, one each, with no "
    "health checks (as a round-robin DNS name or a plain load balancer would): the "
    f"spread ResilientClient's balance={BALANCE!r} gives, so both see the same traffic."
)


def conduct(duration: float, out: TextIO | None, layout: Layout = SINGLE) -> dict[str, Any]:
    """Start the upstream and both workers, show progress, gather the summary."""
    with FlakyUpstream(layout) as upstream, contextlib.ExitStack() as stack:
        plans = _plans(upstream)
        sides = [_start_worker(stack, name, plans[name], duration) for name in SIDES]
        for side in sides:  # wait until both have imported everything and built a client
            assert side.process.stdout is not None
            if json.loads(side.process.stdout.readline() or "{}").get("ready") is not True:
                raise RuntimeError(f"the {side.name} worker did not start:\n{_stderr(side)}")
        schedule = Schedule(time.monotonic() + 0.2, duration)
        upstream.schedule = schedule
        readers = []
        for side in sides:
            assert side.process.stdin is not None
            side.process.stdin.write(f"{schedule.start!r}\n")
            side.process.stdin.close()
            reader = threading.Thread(target=side.read, daemon=True)
            reader.start()
            readers.append(reader)
        if out is not None:
            _introduce(out, upstream, schedule, duration)
        progress = Progress(out, sides, schedule, layout) if out is not None else None
        _follow(readers, progress, schedule)
        for side in sides:
            if side.process.wait(10) != 0 or not side.finished:
                raise RuntimeError(f"the {side.name} worker failed:\n{_stderr(side)}")
        if progress is not None and progress.tty:
            progress.draw(time.monotonic())  # the final frame
        return _summary(sides, upstream, schedule)


def _summary(
    sides: list[SideResult], upstream: FlakyUpstream, schedule: Schedule
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "duration_s": schedule.duration,
        "rate_per_upstream": RATE,
        "outage": {
            "from_s": round(schedule.outage_start - schedule.start, 3),
            "to_s": round(schedule.outage_end - schedule.start, 3),
        },
        "plain": summarise(sides[0], upstream, schedule),
        "resilient": summarise(sides[1], upstream, schedule),
    }
    if upstream.layout.replicas:
        result["replicas"] = {
            "logical_host": LOGICAL_HOST,
            "balance": BALANCE,
            "sick": {"server": REPLICA_A, "endpoint": upstream.origin(REPLICA_A)},
            "healthy": {"server": REPLICA_B, "endpoint": upstream.origin(REPLICA_B)},
            "plain_client": PLAIN_REPLICAS,
            "max_connections": REPLICAS_MAX_CONNECTIONS,
        }
        for side in sides:
            result[side.name].update(summarise_replicas(side, upstream, schedule))
    return result


def _plans(upstream: FlakyUpstream) -> dict[str, Plan]:
    """What each side calls: by default both the same two URLs; with
    ``--replicas`` the plain side both replicas' URLs in turn, the resilient
    side the logical host, whose endpoints are the replicas."""
    breakers = tuple(
        (name, f"127.0.0.1:{upstream.ports[name]}") for name, _ in upstream.layout.servers
    )
    pricing = (upstream.url(HEALTHY),)
    if not upstream.layout.replicas:
        targets = ((upstream.url(SICK),), pricing)
        return {"plain": Plan(targets), "resilient": Plan(targets, breakers=breakers)}
    pool = REPLICAS_MAX_CONNECTIONS
    return {
        "plain": Plan(
            ((upstream.url(REPLICA_A), upstream.url(REPLICA_B)), pricing), max_connections=pool
        ),
        "resilient": Plan(
            ((f"http://{LOGICAL_HOST}/{SICK}",), pricing),
            endpoints=(upstream.origin(REPLICA_A), upstream.origin(REPLICA_B)),
            breakers=breakers,
            max_connections=pool,
        ),
    }


def _start_worker(
    stack: contextlib.ExitStack, name: str, plan: Plan, duration: float
) -> SideResult:
    # The workers import this very copy of resilient_http, wherever it lives.
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[2])  # the folder holding resilient_http
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    stderr = stack.enter_context(tempfile.TemporaryFile("w+"))  # noqa: SIM115 - the stack closes it
    process = stack.enter_context(  # closes the pipes, reaps the process
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "resilient_http._demo",
                "worker",
                name,
                repr(duration),
                plan.dumps(),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
    )
    stack.callback(_stop, process)  # runs first: kill a worker still running
    return SideResult(name, process, stderr)


def _introduce(out: TextIO, upstream: FlakyUpstream, schedule: Schedule, duration: float) -> None:
    if upstream.layout.replicas:
        _introduce_replicas(out, upstream, schedule, duration)
        return
    out.write(
        f"resilient_http demo: {duration:g} s, {RATE} calls/s to each of two upstreams "
        f"on 127.0.0.1 ({SICK} on :{upstream.ports[SICK]}, {HEALTHY} on "
        f":{upstream.ports[HEALTHY]}), the same traffic through both clients.\n"
        f"{SICK} is healthy; from {schedule.outage_start - schedule.start:.1f} s to "
        f"{schedule.outage_end - schedule.start:.1f} s one call in {HANG_EVERY} hangs "
        f"and the others get 503; then it heals. {HEALTHY} stays healthy.\n\n"
    )


def _introduce_replicas(
    out: TextIO, upstream: FlakyUpstream, schedule: Schedule, duration: float
) -> None:
    ports = upstream.ports
    out.write(
        f"resilient_http demo --replicas: {duration:g} s, {RATE} calls/s to each of two "
        f"services on 127.0.0.1, the same traffic through both clients. {SICK} runs as two "
        f"replicas, A on :{ports[REPLICA_A]} and B on :{ports[REPLICA_B]}; {HEALTHY} on "
        f":{ports[HEALTHY]}.\n"
        f"From {schedule.outage_start - schedule.start:.1f} s to "
        f"{schedule.outage_end - schedule.start:.1f} s replica A fails (one call in "
        f"{HANG_EVERY} hangs, the others get 503); then it heals. Replica B and {HEALTHY} "
        f"stay healthy.\n{PLAIN_REPLICAS}\n"
        f"ResilientClient calls http://{LOGICAL_HOST}/{SICK}, one logical host with "
        f"Policy(endpoints=(A, B), balance={BALANCE!r}). Both clients: at most "
        f"{REPLICAS_MAX_CONNECTIONS} connections (httpx's default cap), so the pool is no "
        "bottleneck.\n\n"
    )


def _follow(readers: list[threading.Thread], progress: Progress | None, schedule: Schedule) -> None:
    """Wait for the workers' readers, redrawing the progress every period."""
    period = 0.25 if progress is not None and progress.tty else 1.0
    next_draw = schedule.start + period
    for reader in readers:
        while reader.is_alive():
            reader.join(max(0.0, next_draw - time.monotonic()))
            if time.monotonic() >= next_draw:
                if progress is not None:
                    progress.draw(time.monotonic())
                next_draw += period


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def _stderr(side: SideResult) -> str:
    side.stderr.seek(0)
    return side.stderr.read()


def run(
    duration: float = DEFAULT_DURATION, *, as_json: bool = False, replicas: bool = False
) -> int:
    """Run the demo; print live progress and the summary, or (``as_json``) the
    summary as one JSON object on stdout and the progress on stderr; ``replicas``
    runs the variant with two inventory replicas, one of them sick. Returns the
    exit status."""
    if not MIN_DURATION <= duration <= MAX_DURATION:
        print(
            f"--duration must be between {MIN_DURATION:g} and {MAX_DURATION:g} seconds, "
            f"got {duration:g}",
            file=sys.stderr,
        )
        return 2
    try:
        # with --json, stdout carries the summary alone; the progress goes to stderr
        out = sys.stderr if as_json else sys.stdout
        result = conduct(duration, out, REPLICAS if replicas else SINGLE)
    except RuntimeError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(render_summary(result))
    return 0
