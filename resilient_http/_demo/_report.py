"""The live progress table and the side-by-side summary."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

from ._scenario import (
    BALANCE,
    HEALTHY,
    LOGICAL_HOST,
    MAX_CONNECTIONS,
    POLICY,
    RATE,
    REPLICA_A,
    REPLICA_B,
    SICK,
    SIDE_TITLES,
    SINGLE,
    TIMEOUT,
    UPSTREAMS,
    Layout,
    Phase,
    Schedule,
    percentile,
)
from ._upstream import FlakyUpstream


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


def _headline(layout: Layout, phase: Phase) -> str:
    if phase == "outage":
        fine = " and ".join(layout.healthy)
        verb = "is" if len(layout.healthy) == 1 else "are"
        return f"OUTAGE: {layout.sick} hangs or answers 503; {fine} {verb} fine"
    if phase == "recovered":
        return f"healed: {layout.sick} is healthy again"
    return "healthy"


class Progress:
    """Redraws a small table in place on a terminal; prints one line per
    second otherwise (pipes, CI logs)."""

    def __init__(
        self, out: TextIO, sides: list[SideResult], schedule: Schedule, layout: Layout = SINGLE
    ) -> None:
        self.out = out
        self.sides = sides
        self.schedule = schedule
        self.breakers = tuple(name for name, _ in layout.servers)  # the resilient side's
        self.layout = layout
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
        states = {name: resilient["states"].get(name, "-") for name in self.breakers}
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
        rows = [
            f"t = {elapsed:4.1f} s   {_headline(self.layout, schedule.phase(now))}",
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
        for name in self.breakers:
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
        "upstream_hits_during_outage": upstream.hits(side.name, upstream.layout.sick, "outage"),
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


def summarise_replicas(
    side: SideResult, upstream: FlakyUpstream, schedule: Schedule
) -> dict[str, Any]:
    """What ``--replicas`` adds to a side's summary: what its callers saw during
    the outage, and where its inventory calls landed."""
    outage_from = schedule.outage_start - schedule.start
    outage_to = schedule.outage_end - schedule.start
    during = [c for c in side.calls if outage_from <= c[1] < outage_to]
    back = upstream.first_hit(side.name, REPLICA_A, "recovered")
    return {
        "errors_during_outage": sum(c[3] == "error" for c in during),
        "fallbacks_during_outage": sum(c[3] == "fallback" for c in during),
        "sick_replica_hits_during_outage": upstream.hits(side.name, REPLICA_A, "outage"),
        "healthy_replica_hits_during_outage": upstream.hits(side.name, REPLICA_B, "outage"),
        "sick_replica_back_after_s": (
            None if back is None else round(max(0.0, back - schedule.outage_end), 3)
        ),
    }


class _Table:
    """The summary's rows: a label, then the plain and the resilient side's value."""

    def __init__(self, result: dict[str, Any], lines: list[str]) -> None:
        self.plain, self.resilient = result["plain"], result["resilient"]
        self.lines = lines

    def row(self, label: str, key: str, unit: str = "", host: str | None = None) -> None:
        left = self.plain if host is None else self.plain["hosts"][host]
        right = self.resilient if host is None else self.resilient["hosts"][host]
        self.lines.append(f"  {label:<42}{_cell(left[key], unit):>24}{_cell(right[key], unit):>18}")


def render_summary(result: dict[str, Any]) -> str:
    if "replicas" in result:
        return _render_replicas(result)
    resilient = result["resilient"]
    outage = result["outage"]
    lines = [
        "",
        f"During the outage ({outage['from_s']:.1f} s to {outage['to_s']:.1f} s):",
        f"{'':<44}{SIDE_TITLES['plain']:>24}{SIDE_TITLES['resilient']:>18}",
    ]
    row = _Table(result, lines).row
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


def _render_replicas(result: dict[str, Any]) -> str:
    """The ``--replicas`` summary: errors, fallbacks and where the inventory calls
    landed during the outage, side by side."""
    outage, replicas = result["outage"], result["replicas"]
    lines = [
        "",
        f"During the outage ({outage['from_s']:.1f} s to {outage['to_s']:.1f} s: "
        f"replica A sick, replica B healthy):",
        f"{'':<44}{SIDE_TITLES['plain']:>24}{SIDE_TITLES['resilient']:>18}",
    ]
    row = _Table(result, lines).row
    row("errors seen by callers", "errors_during_outage")
    row("fallbacks served", "fallbacks_during_outage")
    row("calls that reached sick replica A", "sick_replica_hits_during_outage")
    row("calls that reached healthy replica B", "healthy_replica_hits_during_outage")
    row("caller latency p50", "p50_ms_during_outage", " ms")
    row("caller latency p99", "p99_ms_during_outage", " ms")
    row(f"p99 of calls to the healthy {HEALTHY}", "p99_ms_during_outage", " ms", HEALTHY)
    lines.append(f"Whole run ({result['duration_s']:g} s, {RATE} calls/s to {SICK} and {HEALTHY}):")
    row("calls made", "requests")
    row("fallbacks served", "fallbacks")
    row("errors seen by callers", "errors")
    row("replica A took calls again after it healed", "sick_replica_back_after_s", " s")
    breaker = POLICY.breaker
    lines += [
        "",
        f"{SICK} runs as two replicas: A ({replicas['sick']['endpoint']}) and B "
        f"({replicas['healthy']['endpoint']}). {replicas['plain_client']}",
        f"ResilientClient calls one logical host, http://{LOGICAL_HOST}, with "
        f"Policy(endpoints=(A, B), balance={BALANCE!r}): each replica has its own breaker "
        f"(opens after {breaker.failure_threshold} failures, probes after "
        f"{breaker.recovery_timeout:g} s), a retry ({POLICY.retry.attempts} attempts) goes to "
        f"the other replica, and the fallback answers only when both reject; replica A's "
        f"circuit opened {result['resilient']['circuit_opened']} time(s).",
        f"Both clients: timeout {TIMEOUT:g} s, at most {replicas['max_connections']} "
        "connections (httpx's default cap: the pool is no bottleneck here), each in its own "
        "process.",
    ]
    return "\n".join(lines)
