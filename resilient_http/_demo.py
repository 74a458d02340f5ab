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

import asyncio
import contextlib
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Any, Literal, TextIO

import anyio
import httpx
import tenacity

from ._breaker import CircuitState
from ._client import ResilientClient
from ._events import Event, StateChanged
from ._exceptions import CircuitOpenError
from ._policy import BreakerPolicy, Policy, RetryPolicy
from ._transport import FALLBACK_EXTENSION

__all__ = ["DEFAULT_DURATION", "run"]

#: Seconds of traffic when ``--duration`` is not given.
DEFAULT_DURATION = 15.0
MIN_DURATION = 4.0
MAX_DURATION = 600.0
#: Calls per second to each upstream, through each client.
RATE = 80
#: The callers' timeout (connect, read, write and pool wait), the same for both.
TIMEOUT = 1.0
#: The connection pool, the same for both clients.
MAX_CONNECTIONS = 10
#: Service time of a healthy upstream call.
SERVICE_TIME = 0.002
#: During the outage, one call in this many hangs; the others get a fast 503.
HANG_EVERY = 4
#: Phases, as fractions of the duration: healthy, outage, healthy again.
OUTAGE_START = 0.30
OUTAGE_END = 0.65
#: Seconds between two progress reports of a worker.
REPORT_EVERY = 0.25

SICK, HEALTHY = "inventory", "pricing"
UPSTREAMS = (SICK, HEALTHY)
SIDES = ("plain", "resilient")
SIDE_TITLES = {"plain": "plain httpx.AsyncClient", "resilient": "ResilientClient"}
KINDS = ("ok", "fallback", "error")

#: What the resilient side is configured with (shown in the summary).
POLICY = Policy(
    breaker=BreakerPolicy(failure_threshold=3, recovery_timeout=1.0),
    retry=RetryPolicy(attempts=2, wait=tenacity.wait_random_exponential(multiplier=0.05, max=0.2)),
)

Phase = Literal["healthy", "outage", "recovered"]
Kind = Literal["ok", "fallback", "error"]


@dataclass(frozen=True)
class Schedule:
    """When the outage happens, on the ``time.monotonic`` clock (one clock for
    every process of the machine)."""

    start: float
    duration: float

    @property
    def outage_start(self) -> float:
        return self.start + OUTAGE_START * self.duration

    @property
    def outage_end(self) -> float:
        return self.start + OUTAGE_END * self.duration

    @property
    def end(self) -> float:
        return self.start + self.duration

    def phase(self, now: float) -> Phase:
        if now < self.outage_start:
            return "healthy"
        if now < self.outage_end:
            return "outage"
        return "recovered"


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile, ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# -- the flaky upstream -----------------------------------------------------------


class FlakyUpstream:
    """Two tiny HTTP/1.1 servers on 127.0.0.1 in a thread with its own event loop.

    ``hits[(side, upstream, phase)]`` counts the requests that reached it; the
    side comes from the ``x-demo-side`` request header. Until ``schedule`` is
    set, every call is healthy.
    """

    def __init__(self) -> None:
        self.schedule: Schedule | None = None
        self.ports: dict[str, int] = {}
        self._hits: Counter[tuple[str, str, Phase]] = Counter()
        self._outage_calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._run, name="demo-upstream", daemon=True)
        self._error: BaseException | None = None

    def url(self, upstream: str) -> str:
        return f"http://127.0.0.1:{self.ports[upstream]}/{upstream}"

    def __enter__(self) -> FlakyUpstream:
        self._thread.start()
        if not self._ready.wait(10) or self._error is not None:
            raise RuntimeError(f"the demo upstream did not start: {self._error!r}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(stop.set)
        self._thread.join(5)

    def hits(self, side: str, upstream: str, phase: Phase) -> int:
        with self._lock:
            return self._hits[(side, upstream, phase)]

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # pragma: no cover - reported by __enter__
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        servers = []
        for name in UPSTREAMS:
            server = await asyncio.start_server(
                partial(self._serve, name), "127.0.0.1", 0, backlog=512
            )
            servers.append(server)
            self.ports[name] = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        for server in servers:
            server.close()
        for writer in list(self._writers):  # hung handlers see EOF and return
            writer.close()
        await asyncio.sleep(0.05)

    def _decide(self, upstream: str, side: str) -> Literal["ok", "fail", "hang"]:
        schedule = self.schedule
        phase = "healthy" if schedule is None else schedule.phase(time.monotonic())
        with self._lock:
            self._hits[(side, upstream, phase)] += 1
            if upstream != SICK or phase != "outage":
                return "ok"
            n = self._outage_calls[side]
            self._outage_calls[side] += 1
        return "hang" if n % HANG_EVERY == 0 else "fail"

    async def _serve(
        self, upstream: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get(b"content-length", b"0") or 0)
                if length:
                    await reader.readexactly(length)
                side = headers.get(b"x-demo-side", b"other").decode("ascii", "replace")
                action = self._decide(upstream, side)
                if action == "hang":
                    await reader.read()  # until the caller gives up and hangs up
                    return
                if action == "fail":
                    status, body = b"503 Service Unavailable", b'{"error": "overloaded"}'
                else:
                    await asyncio.sleep(SERVICE_TIME)
                    status, body = b"200 OK", b'{"%s": "fresh"}' % upstream.encode()
                writer.write(
                    b"HTTP/1.1 %s\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (status, len(body), body)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


# -- a worker: one client, its traffic, its reports -----------------------------------


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
    urls: tuple[str, str]
    client: httpx.AsyncClient
    opened: OpenCounter | None = None
    calls: list[Call] = field(default_factory=list)
    recent: deque[Call] = field(default_factory=deque)
    in_flight: int = 0
    error_types: Counter[str] = field(default_factory=Counter)

    @classmethod
    def build(cls, side: str, urls: tuple[str, str]) -> Worker:
        limits = httpx.Limits(max_connections=MAX_CONNECTIONS)
        common: dict[str, Any] = {
            "timeout": TIMEOUT,
            "limits": limits,
            "trust_env": False,
            "headers": {"x-demo-side": side},
        }
        if side == "plain":
            return cls(side, urls, httpx.AsyncClient(**common))
        opened = OpenCounter()
        client = ResilientClient(policy=POLICY, listeners=[opened], **common)
        client.transport.fallback(httpx.URL(urls[0]).netloc.decode(), _inventory_fallback)
        return cls(side, urls, client, opened)

    async def call(self, upstream: int) -> None:
        self.in_flight += 1
        issued = time.monotonic()
        kind: Kind
        try:
            response = await self.client.get(self.urls[upstream])
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
            for name, url in zip(UPSTREAMS, self.urls, strict=True):
                data = snapshot.get(httpx.URL(url).netloc.decode())
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
    """``python -m resilient_http._demo worker SIDE SICK_URL HEALTHY_URL DURATION``:
    say ``ready``, read the start time (``time.monotonic``) from stdin, run."""
    side, sick_url, healthy_url, duration = argv
    logging.getLogger("resilient_http").addHandler(logging.NullHandler())
    worker = Worker.build(side, (sick_url, healthy_url))
    _send(sys.stdout, {"ready": True})
    start = float(sys.stdin.readline())
    anyio.run(worker.run, Schedule(start, float(duration)), sys.stdout)
    return 0


# -- the conductor: workers, live table, summary --------------------------------------


@dataclass
class SideResult:
    name: str
    process: subprocess.Popen[str]
    stderr: IO[str]
    latest: dict[str, Any] | None = None
    calls: list[tuple[int, float, float, str]] = field(default_factory=list)
    opened: int | None = None
    cpu_s: float | None = None
    error_types: dict[str, int] = field(default_factory=dict)
    finished: bool = False

    def read(self) -> None:
        """Read the worker's messages until it closes its stdout (in a thread)."""
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            if "report" in message:
                self.latest = message["report"]
            elif "calls" in message:
                self.calls = [tuple(c) for c in message["calls"]]
                self.opened = message["opened"]
                self.cpu_s = message["cpu_s"]
                self.error_types = message["error_types"]
                self.finished = True


def _ms(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}"


def _state_text(state: str) -> str:
    return state.upper().replace("_", "-")


class Progress:
    """Redraws a small table in place on a terminal; prints one line per
    second otherwise (pipes, CI logs)."""

    def __init__(self, out: TextIO, sides: list[SideResult], schedule: Schedule) -> None:
        self.out = out
        self.sides = sides
        self.schedule = schedule
        self.tty = out.isatty()
        self._drawn = 0

    def frame(self, now: float) -> list[str]:
        schedule = self.schedule
        elapsed = max(0.0, now - schedule.start)
        empty: dict[str, Any] = {
            "requests": 0,
            "p50": None,
            "p99": None,
            "fallbacks": 0,
            "errors": 0,
            "in_flight": 0,
            "states": {},
        }
        stats = {side.name: side.latest or empty for side in self.sides}
        plain, resilient = stats["plain"], stats["resilient"]
        states = {name: resilient["states"].get(name, "-") for name in UPSTREAMS}
        if not self.tty:
            parts = [f"t={elapsed:4.1f}s {schedule.phase(now):9}"]
            for name, s in stats.items():
                parts.append(
                    f"{name}: {s['requests']:3d} req/s, p50 {_ms(s['p50'])} ms, "
                    f"p99 {_ms(s['p99'])} ms, in flight={s['in_flight']}, "
                    f"fallbacks={s['fallbacks']}, errors={s['errors']}"
                )
            parts.append(" ".join(f"{n}={_state_text(st)}" for n, st in states.items()))
            return [" | ".join(parts)]
        phase = schedule.phase(now)
        if phase == "outage":
            headline = f"OUTAGE: {SICK} hangs or answers 503; {HEALTHY} is fine"
        elif phase == "recovered":
            headline = f"healed: {SICK} is healthy again"
        else:
            headline = "healthy"
        rows = [
            f"t = {elapsed:4.1f} s   {headline}",
            f"{'last second':<22}{SIDE_TITLES['plain']:>26}{SIDE_TITLES['resilient']:>26}",
        ]

        def row(label: str, left: str, right: str) -> None:
            rows.append(f"  {label:<20}{left:>26}{right:>26}")

        row("requests/s", str(plain["requests"]), str(resilient["requests"]))
        row(
            "p50 / p99 latency",
            f"{_ms(plain['p50'])} / {_ms(plain['p99'])} ms",
            f"{_ms(resilient['p50'])} / {_ms(resilient['p99'])} ms",
        )
        row("in flight", str(plain["in_flight"]), str(resilient["in_flight"]))
        row("fallbacks served", "-", str(resilient["fallbacks"]))
        row("errors", str(plain["errors"]), str(resilient["errors"]))
        for name in UPSTREAMS:
            row(f"breaker {name}", "(none)", _state_text(states[name]))
        return rows

    def draw(self, now: float) -> None:
        lines = self.frame(now)
        if self.tty:
            if self._drawn:
                self.out.write(f"\x1b[{self._drawn}F")
            self.out.write("".join(f"\x1b[2K{line}\n" for line in lines))
            self._drawn = len(lines)
        else:
            self.out.write("\n".join(lines) + "\n")
        self.out.flush()


def summarise(side: SideResult, upstream: FlakyUpstream, schedule: Schedule) -> dict[str, Any]:
    outage_from = schedule.outage_start - schedule.start
    outage_to = schedule.outage_end - schedule.start
    calls = side.calls
    during = [c for c in calls if outage_from <= c[1] < outage_to]
    healed = [c[1] + c[2] for c in calls if c[0] == 0 and c[3] == "ok" and c[1] >= outage_to]
    hosts = {}
    for index, name in enumerate(UPSTREAMS):
        mine = [c for c in during if c[0] == index]
        hosts[name] = {
            "requests_during_outage": len(mine),
            "errors_during_outage": sum(c[3] == "error" for c in mine),
            "fallbacks_during_outage": sum(c[3] == "fallback" for c in mine),
            "p99_ms_during_outage": _round_ms(percentile([c[2] for c in mine], 99)),
        }
    latencies = [c[2] for c in during]
    return {
        "requests": len(calls),
        "upstream_hits_during_outage": upstream.hits(side.name, SICK, "outage"),
        "p50_ms_during_outage": _round_ms(percentile(latencies, 50)),
        "p99_ms_during_outage": _round_ms(percentile(latencies, 99)),
        "fallbacks": sum(c[3] == "fallback" for c in calls),
        "errors": sum(c[3] == "error" for c in calls),
        "time_to_recover_s": round(min(healed) - outage_to, 3) if healed else None,
        "circuit_opened": side.opened,
        "error_types": side.error_types,
        "worker_cpu_s": side.cpu_s,
        "hosts": hosts,
    }


def _round_ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _cell(value: object, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        value = f"{value:.0f}" if value >= 100 else f"{value:.1f}"
    return f"{value}{unit}"


def render_summary(result: dict[str, Any]) -> str:
    plain, resilient = result["plain"], result["resilient"]
    outage = result["outage"]
    lines = [
        "",
        f"During the outage ({outage['from_s']:.1f} s to {outage['to_s']:.1f} s):",
        f"{'':<44}{SIDE_TITLES['plain']:>24}{SIDE_TITLES['resilient']:>18}",
    ]

    def row(label: str, key: str, unit: str = "", host: str | None = None) -> None:
        left = plain if host is None else plain["hosts"][host]
        right = resilient if host is None else resilient["hosts"][host]
        lines.append(f"  {label:<42}{_cell(left[key], unit):>24}{_cell(right[key], unit):>18}")

    row("caller latency p50", "p50_ms_during_outage", " ms")
    row("caller latency p99", "p99_ms_during_outage", " ms")
    row(f"p99 of calls to the healthy {HEALTHY}", "p99_ms_during_outage", " ms", HEALTHY)
    row(f"calls that reached the sick {SICK}", "upstream_hits_during_outage")
    lines.append(f"Whole run ({result['duration_s']:g} s, {RATE} calls/s to each upstream):")
    row("calls made", "requests")
    row("fallbacks served", "fallbacks")
    row("errors seen by callers", "errors")
    row(f"time to recover after {SICK} healed", "time_to_recover_s", " s")
    breaker = POLICY.breaker
    lines += [
        "",
        f"Both clients: timeout {TIMEOUT:g} s, at most {MAX_CONNECTIONS} connections, each in "
        f"its own process. ResilientClient: opens after {breaker.failure_threshold} failures, "
        f"probes after {breaker.recovery_timeout:g} s, {POLICY.retry.attempts} attempts, a "
        f"fallback for {SICK}; its circuit opened {resilient['circuit_opened']} time(s).",
    ]
    return "\n".join(lines)


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
    here = str(Path(__file__).resolve().parent.parent)
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
    """Run the demo; print live progress and the summary, or (``as_json``) only
    the summary as one JSON object. Returns the exit status."""
    if not MIN_DURATION <= duration <= MAX_DURATION:
        print(
            f"--duration must be between {MIN_DURATION:g} and {MAX_DURATION:g} seconds, "
            f"got {duration:g}",
            file=sys.stderr,
        )
        return 2
    try:
        result = conduct(duration, None if as_json else sys.stdout)
    except RuntimeError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        print(render_summary(result))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        sys.exit(worker_main(sys.argv[2:]))
    sys.exit(run())
