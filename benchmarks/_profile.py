"""``python -m benchmarks --profile NAME``: where the time of one production
configuration goes, in-process.

Runs ``--profile-calls`` sequential GETs through ``httpx.AsyncClient`` over the
``production`` section's upstream, once bare and once through
``ResilientTransport`` with the named configuration, under cProfile. Prints
resilient_http's own functions (and the listeners' and the cache's) by their
own time, then the functions that run more often per request than bare httpx
runs them: each extra call is work the configuration adds. cProfile's own
overhead inflates every figure alike; read them as shares, not as microseconds.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
from typing import Any

import httpx

from resilient_http import ResilientTransport

from ._sections import URL, Upstream, _production_profiles


def _profiled(transport: httpx.AsyncBaseTransport, calls: int) -> pstats.Stats:
    async def run(count: int) -> None:
        client = httpx.AsyncClient(transport=transport)  # (not closed: it runs twice)
        for _ in range(count):
            (await client.get(URL)).raise_for_status()

    asyncio.run(run(50))  # warm up: route cache, breaker, metric series
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(run(calls))
    profiler.disable()
    return pstats.Stats(profiler, stream=io.StringIO())


def _per_request(stats: pstats.Stats, calls: int) -> dict[str, float]:
    table: dict[tuple[str, int, str], Any] = stats.stats  # type: ignore[attr-defined]
    return {
        f"{path.rsplit('/', 1)[-1]}:{line}({name})": row[1] / calls
        for (path, line, name), row in table.items()
    }


def profile(name: str, calls: int) -> str:
    """The report for the production configuration whose name contains ``name``."""
    profiles = _production_profiles()
    matches = [key for key in profiles if name.lower() in key.lower()]
    if len(matches) != 1:
        raise SystemExit(
            f"--profile {name!r} names {'no' if not matches else 'more than one'} "
            f"configuration; pick one of: {', '.join(repr(key) for key in profiles)}"
        )
    chosen = matches[0]
    bare = _per_request(_profiled(Upstream().transport(), calls), calls)
    ours = ResilientTransport(Upstream().transport(), **profiles[chosen])
    stats = _profiled(ours, calls)
    out = io.StringIO()
    out.write(f"# {chosen}: {calls} GETs, in-process\n\n")
    out.write("## Our functions, by own time\n")
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(r"resilient_http|prometheus_client", 25)
    extra = {
        key: count - bare.get(key, 0.0)
        for key, count in _per_request(stats, calls).items()
        if count - bare.get(key, 0.0) >= 0.5
    }
    total = sum(_per_request(stats, calls).values()) - sum(bare.values())
    out.write(f"## Function calls per request beyond bare httpx: {total:+.1f}\n\n")
    for key, count in sorted(extra.items(), key=lambda item: -item[1]):
        out.write(f"{count:+6.1f}  {key}\n")
    return out.getvalue()
