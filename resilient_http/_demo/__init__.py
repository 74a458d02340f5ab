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
)
from ._scenario import (
    DEFAULT_DURATION,
    HANG_EVERY,
    HEALTHY,
    MAX_DURATION,
    MIN_DURATION,
    RATE,
    SICK,
    SIDES,
    Schedule,
)
from ._upstream import FlakyUpstream

__all__ = ["DEFAULT_DURATION", "MAX_DURATION", "MIN_DURATION", "run"]


def conduct(duration: float, out: TextIO | None) -> dict[str, Any]:
    """Start the upstream and both workers, show progress, gather the summary."""
    with FlakyUpstream() as upstream, contextlib.ExitStack() as stack:
        sides = [_start_worker(stack, name, upstream, duration) for name in SIDES]
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
        progress = Progress(out, sides, schedule) if out is not None else None
        _follow(readers, progress, schedule)
        for side in sides:
            if side.process.wait(10) != 0 or not side.finished:
                raise RuntimeError(f"the {side.name} worker failed:\n{_stderr(side)}")
        if progress is not None and progress.tty:
            progress.draw(time.monotonic())  # the final frame
        return {
            "duration_s": duration,
            "rate_per_upstream": RATE,
            "outage": {
                "from_s": round(schedule.outage_start - schedule.start, 3),
                "to_s": round(schedule.outage_end - schedule.start, 3),
            },
            "plain": summarise(sides[0], upstream, schedule),
            "resilient": summarise(sides[1], upstream, schedule),
        }


def _start_worker(
    stack: contextlib.ExitStack, name: str, upstream: FlakyUpstream, duration: float
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
                upstream.url(SICK),
                upstream.url(HEALTHY),
                repr(duration),
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
    out.write(
        f"resilient_http demo: {duration:g} s, {RATE} calls/s to each of two upstreams "
        f"on 127.0.0.1 ({SICK} on :{upstream.ports[SICK]}, {HEALTHY} on "
        f":{upstream.ports[HEALTHY]}), the same traffic through both clients.\n"
        f"{SICK} is healthy; from {schedule.outage_start - schedule.start:.1f} s to "
        f"{schedule.outage_end - schedule.start:.1f} s one call in {HANG_EVERY} hangs "
        f"and the others get 503; then it heals. {HEALTHY} stays healthy.\n\n"
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


def run(duration: float = DEFAULT_DURATION, *, as_json: bool = False) -> int:
    """Run the demo; print live progress and the summary, or (``as_json``) the
    summary as one JSON object on stdout and the progress on stderr. Returns the
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
        result = conduct(duration, sys.stderr if as_json else sys.stdout)
    except RuntimeError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(render_summary(result))
    return 0
