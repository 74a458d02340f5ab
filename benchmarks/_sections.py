"""The measurements. Each returns a :class:`Section` of rows and ratios."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import inspect
import math
import os
import select
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from resilient_http import (
    HedgePolicy,
    Policy,
    ResilientTransport,
    RetryPolicy,
    SyncResilientTransport,
)

from ._contenders import (
    CONTENDERS,
    SYNC_CONTENDERS,
    Bare,
    Contender,
    Entry,
    NotInstalled,
    Resilient,
    SyncEntry,
    Unsupported,
)
from ._measure import Batch, Column, Row, Section, Target, interleave

__all__ = [
    "Settings",
    "concurrency",
    "hedging",
    "memory",
    "production",
    "rejection",
    "server_process",
    "success_in_process",
    "success_real_server",
    "sync",
]

BASELINE = next(e.name for e in CONTENDERS if e.role == "baseline")
OURS = next(e.name for e in CONTENDERS if e.role == "ours")
FULL_PROFILE = "full production profile"
HOST = "api.example.com"
URL = f"http://{HOST}/items"
SERVER_SCRIPT = Path(__file__).with_name("_server.py")


@dataclass(frozen=True)
class Settings:
    """How much to measure. ``FULL`` is the default run; ``QUICK`` only checks
    that everything works (its numbers are too few to trust)."""

    rounds: int
    in_process_calls: int  # sequential requests per contender per round
    server_calls: int
    rejected_calls: int
    hang_calls: int
    hang_timeout: float  # seconds
    tasks: int
    task_hosts: int
    calls_per_task: int
    memory_hosts: tuple[int, int]  # "few" and "many" distinct hosts
    hedge_calls: int  # sequential GETs per hedging configuration (after its warm-up)
    hedge_every: int  # the upstream's tail: every Nth call's first attempt is slow ...
    hedge_slow_ms: int  # ... by this many milliseconds
    hedge_delay: float  # the fixed-delay configuration's HedgePolicy(delay=...), seconds


FULL = Settings(
    rounds=40,
    in_process_calls=500,
    server_calls=60,
    rejected_calls=500,
    hang_calls=1,
    hang_timeout=0.1,
    tasks=1000,
    task_hosts=100,
    calls_per_task=1,
    memory_hosts=(10_000, 100_000),
    hedge_calls=1000,
    hedge_every=20,
    hedge_slow_ms=200,
    hedge_delay=0.01,
)
QUICK = Settings(
    rounds=3,
    in_process_calls=50,
    server_calls=10,
    rejected_calls=50,
    hang_calls=1,
    hang_timeout=0.02,
    tasks=1000,
    task_hosts=100,
    calls_per_task=1,
    memory_hosts=(1_500, 3_000),
    hedge_calls=200,
    hedge_every=20,
    hedge_slow_ms=200,
    hedge_delay=0.01,
)


class Upstream:
    """The in-process upstream behind ``httpx.MockTransport``; counts its hits."""

    def __init__(self) -> None:
        self.hits = 0

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.hits += 1
        return httpx.Response(200, content=b"ok")

    async def async_handler(self, request: httpx.Request) -> httpx.Response:
        self.hits += 1
        await asyncio.sleep(0)  # let the other tasks run, as real IO would
        return httpx.Response(200, content=b"ok")

    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(self.handler)

    def sync_transport(self) -> httpx.BaseTransport:
        return httpx.MockTransport(self.handler)

    def async_transport(self) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(self.async_handler)


async def _build(
    entries: Sequence[Entry],
    make_inner: Callable[[], httpx.AsyncBaseTransport],
) -> tuple[dict[str, Contender], dict[str, Row]]:
    contenders: dict[str, Contender] = {}
    rows: dict[str, Row] = {}
    for entry in entries:
        row = rows[entry.name] = Row(entry.name, entry.role)
        inner = make_inner()
        try:
            contenders[entry.name] = entry.build(inner)
        except NotInstalled:
            row.status = "not installed"
            await inner.aclose()
        except Exception as exc:
            row.fail(exc)
            await inner.aclose()
    return contenders, rows


async def _close(contenders: dict[str, Contender] | list[Contender]) -> None:
    for contender in contenders.values() if isinstance(contenders, dict) else contenders:
        with contextlib.suppress(Exception):
            await contender.aclose()


async def _sequential(contender: Contender, url: str, host: str, calls: int) -> float:
    """µs per request over ``calls`` sequential GETs."""
    get = contender.get
    started = time.perf_counter_ns()
    for _ in range(calls):
        response = await get(url, host)
        if response.status_code != 200:
            raise RuntimeError(f"unexpected status {response.status_code}")
    return (time.perf_counter_ns() - started) / calls / 1000


def _delta_notes(section: Section) -> None:
    """One note per row: its median minus the baseline's, in µs per request."""
    base = section.row(section.baseline)
    if base is None or base.median is None:
        return
    for row in section.rows:
        if row.median is not None and row.name != section.baseline:
            section.notes.append(f"{row.name}: {row.median - base.median:+.1f} µs per request")


def _ours_overhead_note(section: Section) -> None:
    base, ours = section.row(BASELINE), section.row(OURS)
    if base is None or ours is None or base.median is None or ours.median is None:
        return
    section.notes.append(
        f"resilient_http's own work: {ours.median - base.median:+.1f} µs per request "
        f"(median {ours.median:.1f} µs vs {base.median:.1f} µs bare)"
    )


# -- 1. success path, in-process ---------------------------------------------------


async def _sequential_section(
    settings: Settings, entries: Sequence[Entry], key: str, title: str, target: Target
) -> Section:
    """Sequential in-process GETs through each entry, interleaved rounds."""
    upstream = Upstream()
    contenders, rows = await _build(entries, upstream.transport)
    batches: dict[str, Batch] = {
        name: partial(_sequential, c, URL, HOST, settings.in_process_calls)
        for name, c in contenders.items()
    }
    try:
        await interleave(batches, rows, settings.rounds)
    finally:
        await _close(contenders)
    section = Section(
        key=key,
        title=title,
        unit="µs/request",
        baseline=BASELINE,
        rows=list(rows.values()),
        targets=[target],
        params={"requests_per_round": settings.in_process_calls, "rounds": settings.rounds},
    )
    section.compute_ratios()
    return section


async def success_in_process(settings: Settings) -> Section:
    section = await _sequential_section(
        settings,
        CONTENDERS,
        "success_in_process",
        "Success path, in-process (httpx.AsyncClient over httpx.MockTransport)",
        Target(OURS, "<=", 1.05),
    )
    _ours_overhead_note(section)
    return section


# -- 2. success path, real server -------------------------------------------------------


@contextlib.contextmanager
def server_process(timeout: float = 30.0) -> Iterator[int]:
    """uvicorn in its own process on 127.0.0.1, port 0; yields the port."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER_SCRIPT)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONDEVMODE": "0"},  # serve at full speed
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline() if ready else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"benchmark server did not start (said {line!r})")
        yield int(line.split()[1])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def uvicorn_missing() -> str | None:
    if importlib.util.find_spec("uvicorn") is None:
        return "uvicorn is not installed (pip install -e '.[bench]')"
    return None


async def success_real_server(settings: Settings, port: int | None, why: str | None) -> Section:
    section = Section(
        key="success_real_server",
        title="Success path, real server (uvicorn on 127.0.0.1 in its own process)",
        unit="µs/request",
        baseline=BASELINE,
        rows=[],
        targets=[Target(OURS, "<=", 1.02)],
        params={"requests_per_round": settings.server_calls, "rounds": settings.rounds},
    )
    if port is None:
        section.skipped = why or "no server"
        section.rows = [Row(e.name, e.role, status="skipped") for e in CONTENDERS]
        return section
    url = f"http://127.0.0.1:{port}/ok"
    entries = list(CONTENDERS)
    if importlib.util.find_spec("prometheus_client") is not None:
        # what production runs, against a real socket: its cost next to ~1 ms of IO
        full = _production_profiles()[FULL_PROFILE]
        entries.append(Entry(FULL_PROFILE, "reference", partial(_resilient_with, full)))
        section.targets.append(Target(FULL_PROFILE, "<=", 1.02))
    contenders, rows = await _build(entries, httpx.AsyncHTTPTransport)
    batches: dict[str, Batch] = {
        name: partial(_sequential, c, url, "127.0.0.1", settings.server_calls)
        for name, c in contenders.items()
    }
    try:
        await interleave(batches, rows, settings.rounds)
    finally:
        await _close(contenders)
    section.rows = list(rows.values())
    section.params["http_server"] = "uvicorn (separate process), keep-alive HTTP/1.1"
    section.compute_ratios()
    _ours_overhead_note(section)
    return section


# -- 3. rejection path ------------------------------------------------------------------


async def _rejected(
    contender: Contender, upstream: Upstream, calls: int, *, fallback: bool
) -> float:
    """µs per call rejected by an open circuit (opened before the clock starts)."""
    await contender.open_circuit(URL, HOST)
    get = contender.get
    hits = upstream.hits
    served = raised = 0
    started = time.perf_counter_ns()
    for _ in range(calls):
        try:
            response = await get(URL, HOST)
        except Exception:
            raised += 1
        else:
            served += response.content == b"fallback"
    elapsed = time.perf_counter_ns() - started
    if upstream.hits != hits:
        raise RuntimeError("the circuit was not open: the upstream was called")
    if (served if fallback else raised) != calls:
        raise RuntimeError(f"expected {calls} rejections, got {raised} raised, {served} served")
    return elapsed / calls / 1000


async def _hanging_server(client: httpx.AsyncClient, url: str, calls: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        with contextlib.suppress(httpx.TimeoutException):
            await client.get(url)
            raise RuntimeError("the hanging upstream answered")
    return (time.perf_counter_ns() - started) / calls / 1000


async def _hanging_in_process(client: httpx.AsyncClient, timeout: float, calls: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.get(URL), timeout)
            raise RuntimeError("the hanging upstream answered")
    return (time.perf_counter_ns() - started) / calls / 1000


async def _raising(client: httpx.AsyncClient, calls: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(calls):
        with contextlib.suppress(httpx.ConnectError):
            await client.get(URL)
            raise RuntimeError("the raising transport answered")
    return (time.perf_counter_ns() - started) / calls / 1000


def _refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("refused at once", request=request)


async def _hang_forever(request: httpx.Request) -> httpx.Response:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def rejection(settings: Settings, port: int | None) -> Section:
    upstream = Upstream()
    calls = settings.rejected_calls
    base_name = f"{BASELINE}: successful request"
    ours_raised = "resilient_http: rejected, CircuitOpenError raised"
    ours_fallback = "resilient_http: rejected, fallback response served"
    hang_name = f"httpx (bare): hanging upstream, {settings.hang_timeout * 1000:g} ms timeout"
    rows: dict[str, Row] = {}
    batches: dict[str, Batch] = {}
    opened: list[Contender] = []
    clients: list[httpx.AsyncClient] = []
    try:
        bare = Bare(upstream.transport())
        opened.append(bare)
        rows[base_name] = Row(base_name, "baseline")
        batches[base_name] = partial(_sequential, bare, URL, HOST, calls)
        floor = "floor: a transport that raises at once (httpx.ConnectError)"
        rows[floor] = Row(floor, "reference")
        rows[floor].note = (
            "any error raised from inside httpx.AsyncClient costs this much: "
            "building the request, the send machinery, the exception's way out"
        )
        floor_client = httpx.AsyncClient(transport=httpx.MockTransport(_refuse))
        clients.append(floor_client)
        batches[floor] = partial(_raising, floor_client, calls)
        for name, fallback in ((ours_raised, False), (ours_fallback, True)):
            ours = Resilient(upstream.transport(), fallback_for=HOST if fallback else None)
            opened.append(ours)
            rows[name] = Row(name, "ours")
            batches[name] = partial(_rejected, ours, upstream, calls, fallback=fallback)
        peer_entries = [e for e in CONTENDERS if e.role == "peer"]
        peers, peer_rows = await _build(peer_entries, upstream.transport)
        opened.extend(peers.values())
        for entry in peer_entries:
            name = f"{entry.name}: rejected, raised"
            row = rows[name] = Row(name, "peer", status=peer_rows[entry.name].status)
            peer = peers.get(entry.name)
            if peer is None:
                continue
            try:
                await peer.open_circuit(URL, HOST)
            except Unsupported as exc:
                row.status = f"n/a: {exc}"
                continue
            except Exception as exc:
                row.fail(exc)
                continue
            batches[name] = partial(_rejected, peer, upstream, calls, fallback=False)
        hang = rows[hang_name] = Row(hang_name, "reference")
        if port is not None:
            client = httpx.AsyncClient(timeout=settings.hang_timeout)
            url = f"http://127.0.0.1:{port}/hang"
            batches[hang_name] = partial(_hanging_server, client, url, settings.hang_calls)
            hang.note = "a real socket to the uvicorn process, httpx read timeout"
        else:
            client = httpx.AsyncClient(transport=httpx.MockTransport(_hang_forever))
            batches[hang_name] = partial(
                _hanging_in_process, client, settings.hang_timeout, settings.hang_calls
            )
            hang.note = "in-process (uvicorn missing): asyncio.wait_for timeout"
        clients.append(client)
        await interleave(batches, rows, settings.rounds)
    finally:
        await _close(opened)
        for client in clients:
            await client.aclose()
    section = Section(
        key="rejection",
        title="Rejection path: a call rejected by an open circuit (in-process)",
        unit="µs/call",
        baseline=base_name,
        rows=list(rows.values()),
        targets=[Target(ours_raised, "<=", 0.6), Target(ours_fallback, "<=", 0.6)],
        params={
            "calls_per_round": calls,
            "hanging_calls_per_round": settings.hang_calls,
            "hang_timeout_s": settings.hang_timeout,
            "rounds": settings.rounds,
        },
    )
    section.compute_ratios()
    return section


# -- 4. concurrency ------------------------------------------------------------------------


async def _concurrent(
    contender: Contender, targets: list[tuple[str, str]], tasks: int, calls: int
) -> float:
    """Requests per second for ``tasks`` concurrent tasks of ``calls`` GETs each."""
    get = contender.get

    async def worker(url: str, host: str) -> None:
        for _ in range(calls):
            response = await get(url, host)
            if response.status_code != 200:
                raise RuntimeError(f"unexpected status {response.status_code}")

    started = time.perf_counter_ns()
    await asyncio.gather(*(worker(*targets[i % len(targets)]) for i in range(tasks)))
    return tasks * calls / ((time.perf_counter_ns() - started) / 1e9)


async def concurrency(settings: Settings) -> Section:
    upstream = Upstream()
    hosts = [f"h{i}.example.com" for i in range(settings.task_hosts)]
    targets = [(f"http://{host}/items", host) for host in hosts]
    contenders, rows = await _build(CONTENDERS, upstream.async_transport)
    batches: dict[str, Batch] = {
        name: partial(_concurrent, c, targets, settings.tasks, settings.calls_per_task)
        for name, c in contenders.items()
    }
    try:
        await interleave(batches, rows, settings.rounds)
    finally:
        await _close(contenders)
    section = Section(
        key="concurrency",
        title=(
            f"Concurrency: {settings.tasks:,} concurrent tasks over "
            f"{settings.task_hosts} hosts (MockTransport)"
        ),
        unit="requests/s",
        baseline=BASELINE,
        rows=list(rows.values()),
        higher_is_better=True,
        targets=[Target(OURS, ">=", 0.95)],
        params={
            "tasks": settings.tasks,
            "hosts": settings.task_hosts,
            "requests_per_task": settings.calls_per_task,
            "rounds": settings.rounds,
        },
    )
    section.compute_ratios()
    return section


# -- 5. memory ------------------------------------------------------------------------------


async def _held_bytes(make: Callable[[], httpx.AsyncBaseTransport], hosts: int) -> int:
    """Bytes still allocated (tracemalloc) after one GET to each of ``hosts`` hosts."""
    transport = make()
    handle: Callable[[httpx.Request], Awaitable[httpx.Response]] = transport.handle_async_request
    try:
        for _ in range(3):  # warm up lazy state outside the measurement
            response = await handle(httpx.Request("GET", "http://warm.example.com/"))
            await response.aclose()
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for i in range(hosts):
                response = await handle(httpx.Request("GET", f"http://h{i}.example.com/"))
                await response.aclose()
            del response
            gc.collect()
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    finally:
        await transport.aclose()


def _mock() -> httpx.AsyncBaseTransport:
    return httpx.MockTransport(lambda request: httpx.Response(200, content=b"ok"))


async def memory(settings: Settings) -> Section:
    few, many = settings.memory_hosts
    rows: list[Row] = []
    notes: list[str] = []

    async def measure(
        label: str, role: str, make_default: Callable[[], httpx.AsyncBaseTransport]
    ) -> tuple[str, str]:
        held_few = Row(f"{label}: held after {few:,} hosts", role)
        held_many = Row(f"{label}: held after {many:,} hosts", role)
        rows.extend([held_few, held_many])
        try:
            held_few.samples.append(await _held_bytes(make_default, few))
            held_many.samples.append(await _held_bytes(make_default, many))
        except Exception as exc:
            held_few.fail(exc)
            held_many.fail(exc)
        else:
            held_few.ratios.append(1.0)
            held_many.ratios.append(held_many.samples[0] / held_few.samples[0])
        return held_few.name, held_many.name

    # Bytes per live breaker: a map large enough to keep every host alive.
    per_breaker = Row(f"resilient_http: bytes per live breaker ({few:,} live)", "ours")
    rows.append(per_breaker)
    try:
        held = await _held_bytes(lambda: ResilientTransport(_mock(), max_hosts=few), few)
        per_breaker.samples.append(held / few)
    except Exception as exc:
        per_breaker.fail(exc)
    default_max_hosts = inspect.signature(ResilientTransport).parameters["max_hosts"].default
    ours_few, ours_many = await measure(
        "resilient_http (default max_hosts)", "ours", lambda: ResilientTransport(_mock())
    )
    notes.append(
        f"Default max_hosts={default_max_hosts}: past it, idle closed breakers are evicted "
        "(least recently used first), so the map stays bounded."
    )
    try:
        from interlock.integrations.httpx import AsyncCircuitBreakerTransport

    except ImportError:
        rows.append(Row("interlock-cb AsyncCircuitBreakerTransport", "peer", "not installed"))
    else:
        await measure(
            "interlock-cb AsyncCircuitBreakerTransport (no bound)",
            "peer",
            lambda: AsyncCircuitBreakerTransport(_mock()),
        )
    section = Section(
        key="memory",
        title="Memory held by the breaker map (tracemalloc, one GET per distinct host)",
        unit="bytes",
        baseline=ours_few,
        rows=rows,
        targets=[Target(ours_many, "<", 1.5)],
        params={"hosts": [few, many], "default_max_hosts": default_max_hosts},
        notes=notes,
    )
    section.notes.append(
        "Ratio: memory held after the larger number of hosts / after the smaller, per library."
    )
    return section


# -- 6. the production profile ---------------------------------------------------------


def _noop(event: object) -> None:
    pass


def _production_profiles() -> dict[str, dict[str, Any]]:
    """The configuration the README recommends for production, one feature at a time
    and then all together, as keyword arguments for ``ResilientTransport`` and
    ``SyncResilientTransport`` alike. Every call builds fresh objects (policies, caches,
    metrics on a registry of their own), so no two transports share state."""
    from prometheus_client import CollectorRegistry

    from resilient_http import BreakerPolicy, Policy, RetryPolicy, StaleCache
    from resilient_http.prometheus import PrometheusMetrics

    rate = BreakerPolicy(failure_rate=0.5, minimum_calls=20, window=10.0, slow_call_duration=2.0)

    def prometheus() -> PrometheusMetrics:
        return PrometheusMetrics(registry=CollectorRegistry())

    full = Policy(breaker=rate, retry=RetryPolicy(deadline=5.0), max_concurrency=100, max_wait=0.1)
    return {
        "default Policy()": {},
        "rate mode + slow calls": {"policy": Policy(breaker=rate)},
        "RetryPolicy(deadline=5)": {"policy": Policy(retry=RetryPolicy(deadline=5.0))},
        "bulkhead (max_concurrency=100, max_wait=0.1)": {
            "policy": Policy(max_concurrency=100, max_wait=0.1)
        },
        "StaleCache()": {"stale_cache": StaleCache()},
        "PrometheusMetrics": {"listeners": [prometheus()]},
        "one no-op listener": {"listeners": [_noop]},
        FULL_PROFILE: {
            "policy": full,
            "stale_cache": StaleCache(),
            "listeners": [prometheus(), _noop],
        },
    }


def _resilient_with(options: dict[str, Any], inner: httpx.AsyncBaseTransport) -> Contender:
    return Contender(ResilientTransport(inner, **options))


def _production_entries() -> list[Entry]:
    """Each production profile through the async binding, against bare httpx in the
    same rounds."""
    return [
        Entry(BASELINE, "baseline", Bare),
        *(
            Entry(
                name,
                "ours" if name == FULL_PROFILE else "reference",
                partial(_resilient_with, options),
            )
            for name, options in _production_profiles().items()
        ),
    ]


async def production(settings: Settings) -> Section:
    if importlib.util.find_spec("prometheus_client") is None:
        return Section(
            key="production",
            title="Production profile, in-process",
            unit="µs/request",
            baseline=BASELINE,
            rows=[],
            skipped="prometheus-client is not installed",
        )
    section = await _sequential_section(
        settings,
        _production_entries(),
        "production",
        "Production profile, in-process (each feature alone, then all together)",
        Target(FULL_PROFILE, "<=", 1.10),
    )
    _delta_notes(section)
    return section


# -- 7. the sync binding -------------------------------------------------------------------

SYNC_BASELINE = next(e.name for e in SYNC_CONTENDERS if e.role == "baseline")
SYNC_INTERLOCK = next(e.name for e in SYNC_CONTENDERS if e.distribution == "interlock-cb")


def _sync_production(inner: httpx.BaseTransport) -> httpx.BaseTransport:
    """``SyncResilientTransport`` with the production section's full profile."""
    if importlib.util.find_spec("prometheus_client") is None:
        raise NotInstalled("prometheus-client is not installed")
    return SyncResilientTransport(inner, **_production_profiles()[FULL_PROFILE])


def _sync_entries() -> list[SyncEntry]:
    """Bare ``httpx.Client``, ours (default, then the full production profile), peers."""
    production = SyncEntry(
        f"{FULL_PROFILE} (SyncResilientTransport)", "ours", _sync_production, "resilient-http"
    )
    return [
        *(e for e in SYNC_CONTENDERS if e.role != "peer"),
        production,
        *(e for e in SYNC_CONTENDERS if e.role == "peer"),
    ]


def _build_sync(
    entries: Sequence[SyncEntry], make_inner: Callable[[], httpx.BaseTransport]
) -> tuple[dict[str, httpx.Client], dict[str, Row]]:
    clients: dict[str, httpx.Client] = {}
    rows: dict[str, Row] = {}
    for entry in entries:
        row = rows[entry.name] = Row(entry.name, entry.role)
        inner = make_inner()
        try:
            clients[entry.name] = httpx.Client(transport=entry.wrap(inner))
        except NotInstalled:
            row.status = "not installed"
            inner.close()
        except Unsupported as exc:
            row.status = f"n/a: {exc}"
            inner.close()
        except Exception as exc:
            row.fail(exc)
            inner.close()
    return clients, rows


async def _sequential_sync(client: httpx.Client, url: str, calls: int) -> float:
    """µs per request over ``calls`` sequential blocking GETs (nothing is awaited
    while the clock runs: ``async`` only so that :func:`interleave` can drive it)."""
    get = client.get
    started = time.perf_counter_ns()
    for _ in range(calls):
        response = get(url)
        if response.status_code != 200:
            raise RuntimeError(f"unexpected status {response.status_code}")
    return (time.perf_counter_ns() - started) / calls / 1000


def _interlock_sync_note(section: Section) -> None:
    row = section.row(SYNC_INTERLOCK)
    if row is None:
        return
    if row.status.startswith("n/a"):
        section.notes.append(
            "interlock-cb: the installed package has no sync httpx transport "
            "(no interlock.integrations.httpx.CircuitBreakerTransport), so it is not measured"
        )
    elif row.status != "not installed":
        section.notes.append(
            "interlock-cb's sync transport is interlock.integrations.httpx."
            "CircuitBreakerTransport (a breaker per host; breaker.call_sync around the "
            "inner handle_request), the twin of its AsyncCircuitBreakerTransport"
        )


async def sync(settings: Settings) -> Section:
    """The in-process success path through ``httpx.Client`` (the sync binding)."""
    upstream = Upstream()
    clients, rows = _build_sync(_sync_entries(), upstream.sync_transport)
    batches: dict[str, Batch] = {
        name: partial(_sequential_sync, client, URL, settings.in_process_calls)
        for name, client in clients.items()
    }
    try:
        await interleave(batches, rows, settings.rounds)
    finally:
        for client in clients.values():
            with contextlib.suppress(Exception):
                client.close()
    section = Section(
        key="sync",
        title="Sync binding, in-process (httpx.Client over httpx.MockTransport)",
        unit="µs/request",
        baseline=SYNC_BASELINE,
        rows=list(rows.values()),
        params={"requests_per_round": settings.in_process_calls, "rounds": settings.rounds},
    )
    section.compute_ratios()
    _delta_notes(section)
    _interlock_sync_note(section)
    return section


# -- 8. hedging: a real upstream with a long tail ---------------------------------------

HEDGE_OFF = "no hedging: Policy(retry=RetryPolicy(attempts=1))"
HEDGE_ADAPTIVE = "adaptive: HedgePolicy(delay=None)"
#: ``response.extensions`` key on a hedged call's response: the winning attempt's index.
HEDGE_EXTENSION = "resilient_http.hedge"
#: Calls the adaptive configuration may take to learn its delay before the run gives up.
HEDGE_WARMUP_LIMIT = 1000
HEDGE_COLUMNS = [
    Column("p50_ms", "p50 ms", "{:,.2f}"),
    Column("p99_ms", "p99 ms", "{:,.1f}"),
    Column("p999_ms", "p99.9 ms", "{:,.1f}"),
    Column("max_ms", "max ms", "{:,.1f}"),
    Column("slow_p50_ms", "slow calls: median ms", "{:,.1f}"),
    Column("load", "upstream load (server hits/call)", "{:.3f}"),
    Column("hedges_sent", "hedges sent", "{:,.0f}"),
    Column("hedges_won", "hedges won", "{:,.0f}"),
    Column("delay_ms", "hedge delay ms (at the end)", "{:.2f}"),
]


@dataclass
class _HedgeRun:
    """One configuration: its own client, its own counter on the server
    (``/tail/<key>``), and what its calls measured."""

    name: str
    key: str
    transport: ResilientTransport
    client: httpx.AsyncClient
    calls: int = 0  # call numbers used so far, warm-up included
    latencies: list[float] = field(default_factory=list)  # ms, measured calls only
    slow: list[float] = field(default_factory=list)  # ms, the measured calls the tail hits
    won_seen: int = 0  # measured responses that a hedge answered (the extension's view)
    delays: list[float] = field(default_factory=list)  # the hedge delay after each batch, ms
    warm_delay: float | None = None  # the hedge delay once warmed up, ms

    def hedges(self) -> dict[str, Any]:
        """``transport.snapshot()[host]["hedges"]`` (empty: the host does not hedge)."""
        hosts = list(self.transport.snapshot().values())
        return dict(hosts[0].get("hedges") or {}) if hosts else {}


def _hedge_policies(settings: Settings) -> list[tuple[str, str, str, Policy]]:
    """(name, role, key on the server, policy): retries off everywhere, so that
    only hedging differs."""
    once = RetryPolicy(attempts=1)
    return [
        (HEDGE_OFF, "baseline", "off", Policy(retry=once)),
        (
            f"fixed: HedgePolicy(delay={settings.hedge_delay:g})",
            "ours",
            "fixed",
            Policy(retry=once, hedge=HedgePolicy(delay=settings.hedge_delay)),
        ),
        (HEDGE_ADAPTIVE, "ours", "adaptive", Policy(retry=once, hedge=HedgePolicy(delay=None))),
    ]


async def _tail_calls(
    run: _HedgeRun, base: str, settings: Settings, calls: int, *, record: bool
) -> float:
    """``calls`` sequential GETs to the long-tailed upstream, each a new call
    number; returns their mean in ms. ``record``: keep every call's latency."""
    get = run.client.get
    tail = f"every={settings.hedge_every}&slow_ms={settings.hedge_slow_ms}"
    total = 0
    for _ in range(calls):
        run.calls += 1
        url = f"{base}/tail/{run.key}?call={run.calls}&{tail}"
        started = time.perf_counter_ns()
        response = await get(url)
        elapsed = time.perf_counter_ns() - started
        if response.status_code != 200:
            raise RuntimeError(f"unexpected status {response.status_code}")
        total += elapsed
        if record:
            run.latencies.append(elapsed / 1e6)
            if run.calls % settings.hedge_every == 0:
                run.slow.append(elapsed / 1e6)
            run.won_seen += int(response.extensions.get(HEDGE_EXTENSION, 0) > 0)
    delay = run.hedges().get("delay")
    if record and delay is not None:
        run.delays.append(delay * 1000)
    return total / max(calls, 1) / 1e6


async def _learn_delay(run: _HedgeRun, base: str, settings: Settings) -> int:
    """Call until the adaptive delay is learned (no hedging before); returns how
    many calls that took."""
    while (delay := run.hedges().get("delay")) is None:
        if run.calls >= HEDGE_WARMUP_LIMIT:
            raise RuntimeError(f"no adaptive delay after {run.calls} calls")
        await _tail_calls(run, base, settings, 1, record=False)
    run.warm_delay = delay * 1000
    return run.calls


async def _server_hits(probe: httpx.AsyncClient, base: str, key: str) -> int:
    """Requests ``/tail/<key>`` has received: the server's own count."""
    response = await probe.get(f"{base}/hits/{key}")
    response.raise_for_status()
    return int(response.text)


def _nearest_rank(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values, nearest rank (as the adaptive delay's)."""
    return ordered[max(0, math.ceil(round(q * len(ordered), 9)) - 1)]


def _rank_words(calls: int, q: float) -> str:
    rank = max(1, math.ceil(round(q * calls, 9)))
    return "slowest (the max)" if rank == calls else f"{rank:,}th fastest"


def _hedge_figures(run: _HedgeRun, row: Row, hits: int, sent: int, won: int) -> None:
    """The row's figures over its measured calls (``row.samples``: every call, in ms)."""
    calls = len(run.latencies)
    if hits < calls or (row.role == "baseline" and hits != calls):
        raise RuntimeError(f"the upstream counted {hits} requests for {calls} calls")
    ordered = sorted(run.latencies)
    delay = run.hedges().get("delay")
    row.samples = list(run.latencies)  # the per-round means, replaced by every call
    row.metrics = {
        "p50_ms": _nearest_rank(ordered, 0.5),
        "p99_ms": _nearest_rank(ordered, 0.99),
        "p999_ms": _nearest_rank(ordered, 0.999),
        "max_ms": ordered[-1],
        "slow_p50_ms": statistics.median(run.slow) if run.slow else None,
        "load": hits / calls,
        "hedges_sent": sent,
        "hedges_won": won,
        "delay_ms": None if delay is None else delay * 1000,
        "server_hits": hits,
        "calls": calls,
    }
    if won != run.won_seen:
        row.note = (
            f"the snapshot counts {won} hedges won, the responses' "
            f"{HEDGE_EXTENSION!r} extension {run.won_seen}"
        )


def _hedge_section(settings: Settings, rows: list[Row]) -> Section:
    return Section(
        key="hedging",
        title=(
            "Hedging: a long-tailed real upstream (uvicorn on 127.0.0.1 in its own process; "
            f"1 call in {settings.hedge_every} takes {settings.hedge_slow_ms} ms on its first "
            "attempt)"
        ),
        unit="ms/call",
        baseline=HEDGE_OFF,
        rows=rows,
        columns=HEDGE_COLUMNS,
        params={
            "calls": settings.hedge_calls,
            "rounds": max(1, min(settings.rounds, settings.hedge_calls)),
            "slow_every": settings.hedge_every,
            "slow_ms": settings.hedge_slow_ms,
            "fixed_delay_s": settings.hedge_delay,
        },
    )


def _hedge_notes(section: Section, settings: Settings, warmup: int, runs: list[_HedgeRun]) -> None:
    every, slow = settings.hedge_every, settings.hedge_slow_ms
    rounds = section.params["rounds"]
    section.notes += [
        f"The upstream's tail: call n (numbered from 1, warm-up included) is slow when n % "
        f"{every} == 0: its first attempt answers after {slow} ms, any other request for it "
        f"(a hedge) at once; every other call answers at once. So {1 / every:.1%} of the calls "
        "are slow, the same calls in every configuration.",
        f"{settings.hedge_calls:,} sequential GETs per configuration through httpx.AsyncClient "
        f"over ResilientTransport(httpx.AsyncHTTPTransport()), in {rounds} interleaved rounds; "
        "retries off (RetryPolicy(attempts=1)) in all three, so only hedging differs.",
        f"Warm-up, not measured: the adaptive delay took {warmup} calls to learn (no hedge "
        "for the host's first 5 answers; until 20, after 4x their median); every "
        f"configuration got the same {warmup} warm-up calls first.",
        "Upstream load: requests that reached the server (counted by the server) per call; "
        "1.000 = no extra load. Hedges sent and won: transport.snapshot()[host]['hedges'], "
        f"over the measured calls. Slow calls: the {1 / every:.0%} the tail hits.",
        "Percentiles by nearest rank over every measured call: p99.9 of "
        f"{settings.hedge_calls:,} calls is the {_rank_words(settings.hedge_calls, 0.999)}.",
    ]
    base = section.row(HEDGE_OFF)
    base_p50 = base.metrics.get("p50_ms") if base is not None else None
    if base_p50 is not None:
        costs = [
            f"{row.name.partition(':')[0]} {p50 - base_p50:+.2f} ms"
            for row in section.rows
            if row.name != HEDGE_OFF and (p50 := row.metrics.get("p50_ms")) is not None
        ]
        if costs:
            section.notes.append(
                f"p50 against no hedging: {', '.join(costs)}. Every call of a host that "
                "hedges goes through the race, hedged or not: on asyncio that is a timer "
                "(the first attempt runs in the caller's task; a hedge is a task)."
            )
    for run in runs:
        if run.name == HEDGE_ADAPTIVE and run.delays and run.warm_delay is not None:
            section.notes.append(
                "The adaptive delay (p95 of the host's last 128 answers): "
                f"{run.warm_delay:.2f} ms once warmed up, then {min(run.delays):.2f} to "
                f"{max(run.delays):.2f} ms at the ends of the rounds."
            )


async def _warm_hedge_runs(
    runs: list[_HedgeRun], rows: dict[str, Row], base: str, settings: Settings
) -> int:
    """Warm the adaptive configuration until it hedges, then every other one
    with as many calls (connections opened, the same call numbers ahead)."""
    adaptive = next(run for run in runs if run.name == HEDGE_ADAPTIVE)
    try:
        warmup = await _learn_delay(adaptive, base, settings)
    except Exception as exc:
        rows[adaptive.name].fail(exc)
        warmup = max(adaptive.calls, 1)
    for run in runs:
        if run is adaptive:
            continue
        try:
            await _tail_calls(run, base, settings, warmup, record=False)
        except Exception as exc:
            rows[run.name].fail(exc)
    return warmup


async def hedging(settings: Settings, port: int | None, why: str | None) -> Section:
    """Hedged requests against a real upstream whose every Nth call is slow: no
    hedging, a fixed delay and the adaptive delay, side by side in one run."""
    policies = _hedge_policies(settings)
    rows = {name: Row(name, role) for name, role, _, _ in policies}
    if port is None:
        section = _hedge_section(settings, list(rows.values()))
        section.skipped = why or "no server"
        for row in rows.values():
            row.status = "skipped"
        return section
    base = f"http://127.0.0.1:{port}"
    runs: list[_HedgeRun] = []
    for name, _, key, policy in policies:
        transport = ResilientTransport(httpx.AsyncHTTPTransport(), policy=policy)
        runs.append(_HedgeRun(name, key, transport, httpx.AsyncClient(transport=transport)))
    rounds = max(1, min(settings.rounds, settings.hedge_calls))
    sizes = [
        settings.hedge_calls // rounds + (i < settings.hedge_calls % rounds) for i in range(rounds)
    ]
    probe = httpx.AsyncClient()
    try:
        warmup = await _warm_hedge_runs(runs, rows, base, settings)
        before = {run.key: (await _server_hits(probe, base, run.key), run.hedges()) for run in runs}

        def batch(run: _HedgeRun) -> Batch:
            pending = iter(sizes)
            return lambda: _tail_calls(run, base, settings, next(pending), record=True)

        await interleave({run.name: batch(run) for run in runs}, rows, rounds, warmup=False)
        await asyncio.sleep(0.05)  # a hedge cancelled in flight may still reach the server
        for run in runs:
            row = rows[run.name]
            if not row.ok:
                continue
            hits, hedges = before[run.key]
            after = run.hedges()
            try:
                _hedge_figures(
                    run,
                    row,
                    await _server_hits(probe, base, run.key) - hits,
                    after.get("sent", 0) - hedges.get("sent", 0),
                    after.get("won", 0) - hedges.get("won", 0),
                )
            except Exception as exc:
                row.fail(exc)
    finally:
        for run in runs:
            with contextlib.suppress(Exception):
                await run.client.aclose()
        await probe.aclose()
    section = _hedge_section(settings, list(rows.values()))
    section.params.update(warmup_calls=warmup, http_server="uvicorn (separate process)")
    _hedge_notes(section, settings, warmup, runs)
    return section
