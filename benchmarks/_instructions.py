"""``python -m benchmarks --instructions NAME...``: our work per call, counted
rather than timed.

For bare httpx and each named production configuration, a child Python drives
``ResilientTransport(inner, **configuration).handle_async_request`` directly
(``inner`` answers a fresh in-memory 200), under ``valgrind --tool=callgrind``,
once with ``--instruction-calls`` calls and once with none: the difference,
divided by the calls, is the instructions one call executes. Unlike a timing,
the count is the same from run to run whatever else the machine is doing
(to a few hundred instructions), so two versions of the code can be compared
on a busy machine. Our overhead is a configuration's count minus bare's.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from resilient_http import ResilientTransport

from ._sections import _production_profiles

ROOT = Path(__file__).resolve().parent.parent
BARE = "bare"
_COLLECTED = re.compile(r"Collected : (\d+)")


class _Answering(httpx.AsyncBaseTransport):
    """A fresh, already read 200 per request: the upstream costs next to nothing."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"ok", request=request)


def chosen(names: Sequence[str]) -> list[str]:
    """The production configurations the names pick (each a part of exactly one
    row's name), bare first."""
    profiles = _production_profiles()
    picked = [BARE]
    for name in names:
        matches = [key for key in profiles if name.lower() in key.lower()]
        if len(matches) != 1:
            raise SystemExit(
                f"--instructions {name!r} names {'no' if not matches else 'more than one'} "
                f"configuration; pick among: {', '.join(repr(key) for key in profiles)}"
            )
        picked.append(matches[0])
    return picked


def drive(configuration: str, calls: int) -> None:
    """Send ``calls`` requests straight to the configuration's transport (the
    child's work; nothing in it suspends, so the event loop adds nothing per call)."""
    inner = _Answering()
    transport: httpx.AsyncBaseTransport = (
        inner
        if configuration == BARE
        else ResilientTransport(inner, **_production_profiles()[configuration])
    )
    request = httpx.Request("GET", "http://upstream.test/items?page=1")

    async def run() -> None:
        for _ in range(50):  # warm: route cache, breaker, metric series
            await transport.handle_async_request(request)
        for _ in range(calls):
            await transport.handle_async_request(request)

    asyncio.run(run())


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _collected(configuration: str, calls: int) -> int:
    child = f"from benchmarks._instructions import drive; drive({configuration!r}, {calls})"
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *_python(child)],
        cwd=ROOT,
        env={**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )
    found = _COLLECTED.search(proc.stderr)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"callgrind run of {configuration!r} failed:\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def per_call(configuration: str, calls: int) -> float:
    """Instructions one call of the configuration executes."""
    return (_collected(configuration, calls) - _collected(configuration, 0)) / calls


def report(names: Sequence[str], calls: int) -> str:
    if shutil.which("valgrind") is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    counts = {configuration: per_call(configuration, calls) for configuration in chosen(names)}
    width = max(map(len, counts))
    python = sys.version.split()[0]
    lines = [f"instructions per transport call (callgrind, {calls} calls, Python {python}):"]
    for configuration, count in counts.items():
        over = "" if configuration == BARE else f"  {count - counts[BARE]:+10,.0f} over bare"
        lines.append(f"  {configuration:{width}}  {count:10,.0f}{over}")
    return "\n".join(lines)
