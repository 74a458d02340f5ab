"""The five measurements. Each returns a :class:`Section` of rows and ratios."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util
import inspect
import os
import select
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import httpx

from resilient_http import ResilientTransport

from ._contenders import (
    CONTENDERS,
    Bare,
    Contender,
    Entry,
    NotInstalled,
    Resilient,
    Unsupported,
)
from ._measure import Batch, Row, Section, Target, interleave

__all__ = [
    "Settings",
    "concurrency",
    "memory",
    "production",
    "rejection",
    "server_process",
    "success_in_process",
    "success_real_server",
]

BASELINE = next(e.name for e in CONTENDERS if e.role == "baseline")
OURS = next(e.name for e in CONTENDERS if e.role == "ours")
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
    contenders, rows = await _build(CONTENDERS, httpx.AsyncHTTPTransport)
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


def _production_entries() -> list[Entry]:
    """The configuration the README recommends for production, all together and one
    feature at a time, each against bare httpx in the same rounds."""
    from prometheus_client import CollectorRegistry

    from resilient_http import BreakerPolicy, Policy, RetryPolicy, StaleCache
    from resilient_http.prometheus import PrometheusMetrics

    rate = BreakerPolicy(failure_rate=0.5, minimum_calls=20, window=10.0, slow_call_duration=2.0)

    def noop(event: object) -> None:
        pass

    def ours(**kwargs: object) -> Callable[[httpx.AsyncBaseTransport], Contender]:
        def build(inner: httpx.AsyncBaseTransport) -> Contender:
            options = dict(kwargs)
            listeners = options.pop("listeners", ())
            if listeners == "prometheus":
                listeners = [PrometheusMetrics(registry=CollectorRegistry())]
            elif listeners == "all":
                listeners = [PrometheusMetrics(registry=CollectorRegistry()), noop]
            elif listeners == "noop":
                listeners = [noop]
            return Contender(ResilientTransport(inner, listeners=listeners, **options))  # type: ignore[arg-type]

        return build

    full = Policy(breaker=rate, retry=RetryPolicy(deadline=5.0), max_concurrency=100, max_wait=0.1)
    return [
        Entry(BASELINE, "baseline", Bare),
        Entry("default Policy()", "reference", ours()),
        Entry("rate mode + slow calls", "reference", ours(policy=Policy(breaker=rate))),
        Entry(
            "RetryPolicy(deadline=5)",
            "reference",
            ours(policy=Policy(retry=RetryPolicy(deadline=5.0))),
        ),
        Entry(
            "bulkhead (max_concurrency=100, max_wait=0.1)",
            "reference",
            ours(policy=Policy(max_concurrency=100, max_wait=0.1)),
        ),
        Entry("StaleCache()", "reference", ours(stale_cache=StaleCache())),
        Entry("PrometheusMetrics", "reference", ours(listeners="prometheus")),
        Entry("one no-op listener", "reference", ours(listeners="noop")),
        Entry(
            "full production profile",
            "ours",
            ours(policy=full, stale_cache=StaleCache(), listeners="all"),
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
        Target("full production profile", "<=", 1.10),
    )
    base = section.row(BASELINE)
    if base is not None and base.median is not None:
        for row in section.rows:
            if row.median is not None and row.name != BASELINE:
                section.notes.append(f"{row.name}: {row.median - base.median:+.1f} µs per request")
    return section
