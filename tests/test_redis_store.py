"""RedisStateStore: one breaker per host for a whole fleet, through a real Redis.

Two layers, both against a real ``redis-server`` (started here on a free port):

- in one process: several stores (each with its own id and connections, as
  separate processes would have) and transports on ``httpx.MockTransport``;
- a fleet: four worker processes (``tests/redis_worker.py``) sharing one Redis
  and calling one real loopback upstream.

``redis.asyncio`` needs asyncio, so the async tests here run on asyncio only;
``test_under_trio_breakers_stay_local`` covers trio.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import AsyncExitStack
from typing import Any, TypeAlias

import httpx
import pytest
from redis.asyncio import Redis

from resilient_http import (
    BreakerPolicy,
    CircuitOpenError,
    CircuitState,
    Event,
    Policy,
    ResilientClient,
    ResilientTransport,
    RetryPolicy,
    StateChanged,
)
from resilient_http._store import InMemoryStore
from resilient_http.redis import RedisStateStore
from resilient_http.testing import FakeClock

from .redis_worker import ROOT, RedisServer, Upstream, Worker, free_port, start_upstream

Handler: TypeAlias = (
    Callable[[httpx.Request], httpx.Response]
    | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
)

KEY = "api.test:80"
URL = "http://api.test"


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    """redis.asyncio runs on asyncio only (trio: see test_under_trio_breakers_stay_local)."""
    return ("asyncio", {"debug": True})


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


_prefixes = iter(range(1_000_000))


@pytest.fixture
def prefix() -> str:
    """A fresh namespace per test: tests never see each other's keys."""
    return f"t{next(_prefixes)}-{time.monotonic_ns()}"


def policy(threshold: int = 3, recovery: float = 30.0, **breaker: object) -> Policy:
    return Policy(
        breaker=BreakerPolicy(failure_threshold=threshold, recovery_timeout=recovery, **breaker),  # type: ignore[arg-type]
        retry=RetryPolicy(attempts=1),
    )


async def connected(store: RedisStateStore) -> None:
    """Connected, even if a loaded machine made the first attempt miss ``timeout``
    (the store retries every ``retry_interval``)."""
    if not await store.connect():
        await eventually(lambda: store.connected, timeout=10.0)


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0) -> None:
    """Wait for something another connection pushes (Redis IO is real, no fake clock)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


class Member:
    """One 'process' of an in-process fleet: its own Redis connections, store
    (with its own id) and transport."""

    def __init__(
        self,
        port: int,
        prefix: str,
        handler: Handler,
        *,
        quorum: int = 1,
        lease: float = 5.0,
        host_policy: Policy | None = None,
        timeout: float = 0.25,
        retry_interval: float = 1.0,
    ) -> None:
        self.redis = Redis(host="127.0.0.1", port=port)
        self.store = RedisStateStore(
            self.redis,
            prefix=prefix,
            quorum=quorum,
            lease=lease,
            timeout=timeout,
            retry_interval=retry_interval,
        )
        self.events: list[StateChanged] = []
        self.transport = ResilientTransport(
            httpx.MockTransport(handler),
            policy=host_policy or policy(),
            store=self.store,
            listeners=[self._listen],
        )
        self.client = httpx.AsyncClient(transport=self.transport)

    def _listen(self, event: Event) -> None:
        if isinstance(event, StateChanged):
            self.events.append(event)

    @property
    def breaker(self) -> CircuitState:
        return self.transport.breaker(KEY).state

    async def get(self, path: str) -> int | str:
        try:
            return (await self.client.get(URL + path)).status_code
        except CircuitOpenError:
            return "rejected"

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.redis.aclose()


def status_handler(request: httpx.Request) -> httpx.Response:
    """``/503`` answers 503, anything else 200."""
    return httpx.Response(503 if request.url.path == "/503" else 200)


@pytest.fixture
async def members(
    redis_server: RedisServer, prefix: str
) -> AsyncIterator[Callable[..., Awaitable[Member]]]:
    async with AsyncExitStack() as stack:

        async def make(
            handler: Handler = status_handler,
            **kwargs: object,
        ) -> Member:
            member = Member(redis_server.port, prefix, handler, **kwargs)  # type: ignore[arg-type]
            stack.push_async_callback(member.aclose)
            member.transport.breaker(KEY)  # this process calls that host
            await connected(member.store)
            return member

        yield make


# -- in one process ---------------------------------------------------------------------


async def test_a_trip_in_one_process_opens_every_process(
    members: Callable[..., Awaitable[Member]],
) -> None:
    a, b, c = [await members() for _ in range(3)]
    for _ in range(3):
        assert await a.get("/503") == 503
    await eventually(lambda: b.breaker is CircuitState.OPEN and c.breaker is CircuitState.OPEN)
    assert await b.get("/ok") == "rejected"
    assert await c.get("/ok") == "rejected"
    # the time left is the server's: about the recovery timeout, not a local guess
    opened = b.events[-1]
    assert opened.new is CircuitState.OPEN
    assert 25.0 < opened.retry_after <= 30.0


async def test_failures_from_several_processes_add_up(
    members: Callable[..., Awaitable[Member]],
) -> None:
    a, b = await members(), await members()
    assert await a.get("/503") == 503
    assert await b.get("/503") == 503
    assert a.breaker is CircuitState.CLOSED  # locally, 1 failure each: far from 3
    assert await a.get("/503") == 503
    await eventually(lambda: a.breaker is CircuitState.OPEN and b.breaker is CircuitState.OPEN)


async def test_a_success_anywhere_resets_the_fleet_count(
    members: Callable[..., Awaitable[Member]], redis_server: RedisServer, prefix: str
) -> None:
    a, b, c = [await members() for _ in range(3)]
    probe = Redis(host="127.0.0.1", port=redis_server.port)
    state_key = f"{prefix}:{{{KEY}}}:state"
    try:
        assert await a.get("/503") == 503
        assert await a.get("/503") == 503
        await eventually(lambda: _equals(_failures(probe, state_key), 2))
        await eventually(lambda: KEY in b.store._dirty)  # b heard there is a count to reset
        assert await b.get("/ok") == 200
        await eventually(lambda: _equals(_failures(probe, state_key), 0))
        # without the reset, these would make 4 failures in a row for the fleet
        assert await c.get("/503") == 503
        assert await c.get("/503") == 503
        await eventually(lambda: _equals(_failures(probe, state_key), 2))
        assert [m.breaker for m in (a, b, c)] == [CircuitState.CLOSED] * 3
    finally:
        await probe.aclose()


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def test_one_probe_for_the_fleet_then_everyone_closes(
    members: Callable[..., Awaitable[Member]],
) -> None:
    release = asyncio.Event()
    probes = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal probes
        if request.url.path == "/503":
            return httpx.Response(503)
        probes += 1
        await release.wait()
        return httpx.Response(200)

    fleet = [await members(handler, host_policy=policy(recovery=0.2)) for _ in range(3)]
    for _ in range(3):
        await fleet[0].get("/503")
    await eventually(lambda: all(m.breaker is CircuitState.OPEN for m in fleet))
    await eventually(lambda: all(m.breaker is CircuitState.HALF_OPEN for m in fleet))
    first = asyncio.ensure_future(fleet[0].get("/slow"))
    await eventually(lambda: probes == 1)
    # the probe holds the fleet's only lease: every other process rejects
    for member in fleet[1:]:
        for _ in range(2):
            assert await asyncio.wait_for(member.get("/slow"), 5.0) == "rejected"
    assert probes == 1
    release.set()
    assert await first == 200
    await eventually(lambda: all(m.breaker is CircuitState.CLOSED for m in fleet))
    assert probes == 1


async def test_a_failed_probe_reopens_every_process(
    members: Callable[..., Awaitable[Member]],
) -> None:
    a, b = [await members(host_policy=policy(recovery=0.2)) for _ in range(2)]
    for _ in range(3):
        await a.get("/503")
    await eventually(lambda: b.breaker is CircuitState.HALF_OPEN)
    b.events.clear()
    assert await a.get("/503") == 503  # the probe fails
    await eventually(lambda: b.breaker is CircuitState.OPEN)
    assert await b.get("/ok") == "rejected"


async def test_a_lost_probe_lease_expires_and_another_process_probes(
    members: Callable[..., Awaitable[Member]],
) -> None:
    hanging = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal hanging
        if request.url.path == "/503":
            return httpx.Response(503)
        if request.url.path == "/hang":
            hanging += 1
            await asyncio.Event().wait()
        return httpx.Response(200)

    a, b = [await members(handler, host_policy=policy(recovery=0.2), lease=0.5) for _ in range(2)]
    for _ in range(3):
        await a.get("/503")
    await eventually(lambda: a.breaker is CircuitState.HALF_OPEN)
    # a takes the fleet's lease, then never hears back (as if it had died)
    stuck = asyncio.ensure_future(a.get("/hang"))
    await eventually(lambda: hanging == 1)
    assert await b.get("/ok") == "rejected"  # the lease is held
    await eventually(lambda: _is_status(b.get("/ok"), 200), timeout=5.0)
    await eventually(lambda: a.breaker is CircuitState.CLOSED)
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck


async def _is_status(result: Awaitable[int | str], expected: int) -> bool:
    return await result == expected


async def test_a_probe_cancelled_after_redis_granted_its_lease_does_not_hold_the_fleet(
    members: Callable[..., Awaitable[Member]],
) -> None:
    """The caller is cancelled after the probe script ran (its grant is on the
    way back): the lease is given back, and another process probes at once
    instead of being rejected until the lease expires (15 s)."""
    a, b = [await members(host_policy=policy(recovery=0.2), lease=15.0) for _ in range(2)]
    for _ in range(3):
        await a.get("/503")
    await eventually(lambda: b.breaker is CircuitState.HALF_OPEN)
    probe = a.store._probe

    async def granted_then_cancelled(**kwargs: Any) -> Any:
        await probe(**kwargs)  # Redis grants the lease ...
        raise asyncio.CancelledError  # ... and the caller is cancelled before it hears

    a.store._probe = granted_then_cancelled  # type: ignore[assignment]
    with pytest.raises(asyncio.CancelledError):
        await a.get("/ok")
    await eventually(lambda: _is_status(b.get("/ok"), 200), timeout=2.0)
    await eventually(lambda: a.breaker is CircuitState.CLOSED)


async def test_a_probe_granted_while_redis_was_frozen_does_not_hold_the_fleet(
    prefix: str,
) -> None:
    """Redis freezes while a probe script waits in its socket: the caller goes
    local (timeout); when Redis wakes it grants a lease nobody will use. The
    store gives it back once reconnected, so another process may probe."""
    server = RedisServer()
    server.start()
    assert server.process is not None
    try:
        async with AsyncExitStack() as stack:
            a, b = (
                Member(
                    server.port,
                    prefix,
                    status_handler,
                    host_policy=policy(recovery=0.2),
                    lease=15.0,
                    retry_interval=0.1,
                )
                for _ in range(2)
            )
            for member in (a, b):
                stack.push_async_callback(member.aclose)
                member.transport.breaker(KEY)
                await connected(member.store)
            for _ in range(3):
                await a.get("/503")
            await eventually(lambda: b.breaker is CircuitState.HALF_OPEN)
            # the probe script is cached, so Redis runs it as it wakes (no NOSCRIPT round trip)
            await a.redis.script_load(a.store._probe.script)
            os.kill(server.process.pid, signal.SIGSTOP)
            try:
                assert await a.get("/ok") == 200  # timed out on Redis: probed locally
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            await eventually(lambda: a.store.connected)
            await eventually(lambda: _is_status(b.get("/ok"), 200), timeout=3.0)
    finally:
        server.stop()


async def test_a_busy_fleet_probe_tells_rejected_callers_when_it_ends(
    members: Callable[..., Awaitable[Member]],
) -> None:
    hanging = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/503":
            return httpx.Response(503)
        hanging.set()
        await asyncio.Event().wait()
        return httpx.Response(200)  # pragma: no cover

    a, b = [await members(handler, host_policy=policy(recovery=0.2), lease=8.0) for _ in range(2)]
    for _ in range(3):
        await a.get("/503")
    await eventually(lambda: a.breaker is CircuitState.HALF_OPEN)
    stuck = asyncio.ensure_future(a.get("/hang"))  # holds the fleet's lease
    await hanging.wait()
    with pytest.raises(CircuitOpenError) as rejected:
        await b.client.get(URL + "/ok")
    assert 6.0 < rejected.value.retry_after <= 8.0
    assert "retry in 0.00s" not in str(rejected.value)
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck


@pytest.mark.parametrize(
    "breaker",
    [
        {"recovery_timeout": math.inf},
        {"failure_rate": 0.5, "minimum_calls": 3, "window": math.inf},
    ],
    ids=["recovery_timeout=inf", "window=inf"],
)
async def test_infinite_durations_are_shared_without_breaking_the_store(
    members: Callable[..., Awaitable[Member]],
    caplog: pytest.LogCaptureFixture,
    breaker: dict[str, float],
) -> None:
    """``recovery_timeout=inf`` (open until reset) and ``window=inf`` reach
    Redis as a very long time, never an error that drops the store's work."""
    caplog.set_level(logging.WARNING, logger="resilient_http.redis")
    host_policy = Policy(
        breaker=BreakerPolicy(failure_threshold=3, **breaker),  # type: ignore[arg-type]
        retry=RetryPolicy(attempts=1),
    )
    a, b = [await members(host_policy=host_policy) for _ in range(2)]
    for _ in range(3):
        assert await a.get("/503") == 503
    await eventually(lambda: b.breaker is CircuitState.OPEN)
    assert await b.get("/ok") == "rejected"
    assert a.store.connected
    assert b.store.connected
    assert [r.getMessage() for r in caplog.records if r.name == "resilient_http.redis"] == []


async def test_a_wrong_password_is_named_at_once(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="resilient_http.redis")
    server = RedisServer("--requirepass", "s3cret-pass")
    server.start()
    try:
        redis = Redis(host="127.0.0.1", port=server.port, password="wrong-pass")
        store = RedisStateStore(redis, prefix=prefix, timeout=2.0, retry_interval=30.0)
        transport = ResilientTransport(
            httpx.MockTransport(status_handler), policy=policy(), store=store
        )
        transport.breaker(KEY)
        started = time.monotonic()
        assert not await store.connect()
        assert time.monotonic() - started < 1.0  # not seconds of silent retries
        async with httpx.AsyncClient(transport=transport) as client:
            assert (await client.get(URL + "/ok")).status_code == 200  # local breakers
        await redis.aclose()
    finally:
        server.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "resilient_http.redis"]
    assert len(messages) == 1
    assert "cannot authenticate" in messages[0]
    assert "AuthenticationError" in messages[0]
    assert "wrong-pass" not in messages[0]
    assert "s3cret" not in messages[0]


async def test_below_quorum_only_the_failing_process_opens(
    members: Callable[..., Awaitable[Member]], redis_server: RedisServer, prefix: str
) -> None:
    a, b, c = [await members(quorum=2) for _ in range(3)]
    for _ in range(3):
        assert await a.get("/503") == 503
    assert a.breaker is CircuitState.OPEN  # its own breaker
    probe = Redis(host="127.0.0.1", port=redis_server.port)
    try:
        # the fleet counted a's failures, from one process: no quorum, no shared open
        state_key = f"{prefix}:{{{KEY}}}:state"
        await eventually(lambda: _equals(_failures(probe, state_key), 3))
        assert await probe.hget(state_key, "state") is None
    finally:
        await probe.aclose()
    assert b.breaker is CircuitState.CLOSED
    assert c.breaker is CircuitState.CLOSED
    assert await c.get("/ok") == 200  # (a success resets the fleet's count)
    # failures from a second process make the quorum: the whole fleet opens,
    # c too, though c itself never failed
    for _ in range(3):
        if await b.get("/503") == "rejected":
            break
    await eventually(lambda: c.breaker is CircuitState.OPEN)


async def _failures(redis: Redis, key: str) -> int:
    return int(await redis.hget(key, "failures") or 0)


async def test_a_local_trip_in_rate_mode_is_one_vote(
    members: Callable[..., Awaitable[Member]],
) -> None:
    rate = policy(failure_rate=0.5, minimum_calls=4, window=10.0)
    a, b = await members(host_policy=rate), await members(host_policy=rate)
    for _ in range(4):
        await a.get("/503")
    assert a.breaker is CircuitState.OPEN
    await eventually(lambda: b.breaker is CircuitState.OPEN)


async def test_a_forced_breaker_is_left_alone(members: Callable[..., Awaitable[Member]]) -> None:
    a, b = await members(), await members()
    b.transport.breaker(KEY).force_closed()
    for _ in range(3):
        await a.get("/503")
    await eventually(lambda: a.breaker is CircuitState.OPEN)
    late = await members()  # a process started later learns of the open circuit
    await eventually(lambda: late.breaker is CircuitState.OPEN)
    assert b.breaker is CircuitState.CLOSED
    assert await b.get("/ok") == 200


async def test_keys_are_namespaced_expire_and_hold_no_request_data(
    members: Callable[..., Awaitable[Member]], redis_server: RedisServer, prefix: str
) -> None:
    a = await members()
    for _ in range(3):
        await a.client.get("http://user:hunter2@api.test/503?token=s3cret")
    probe = Redis(host="127.0.0.1", port=redis_server.port)
    try:
        state_key = f"{prefix}:{{{KEY}}}:state"
        await eventually(lambda: _equals_bytes(probe.hget(state_key, "state"), b"open"))
        keys = sorted([k.decode() async for k in probe.scan_iter(match=f"{prefix}*")])
        assert keys == [f"{prefix}:{{{KEY}}}:state"]
        for key in keys:
            assert await probe.pttl(key) > 0
            stored = repr(await probe.hgetall(key))
            for secret in ("hunter2", "s3cret", "token", "/503", "user"):
                assert secret not in stored
    finally:
        await probe.aclose()


async def _equals_bytes(value: Awaitable[object], expected: bytes) -> bool:
    return await value == expected


async def test_redis_unreachable_requests_run_on_local_breakers_with_one_warning(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="resilient_http.redis")
    redis = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2)
    store = RedisStateStore(redis, prefix=prefix, timeout=0.2)
    async with httpx.AsyncClient(
        transport=ResilientTransport(
            httpx.MockTransport(status_handler), policy=policy(), store=store
        )
    ) as client:
        assert not await store.connect()
        for _ in range(20):
            assert (await client.get(URL + "/ok")).status_code == 200
        for _ in range(3):
            assert (await client.get(URL + "/503")).status_code == 503
        with pytest.raises(CircuitOpenError):
            await client.get(URL + "/ok")
    await redis.aclose()
    warnings = [r for r in caplog.records if r.name == "resilient_http.redis"]
    assert len(warnings) == 1
    assert "breakers are local" in warnings[0].getMessage()


async def test_a_frozen_redis_is_not_an_outage(
    prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stops answering (SIGSTOP): calls do not wait on it past ``timeout``,
    the local breaker trips and probes on its own, and the store rejoins once
    Redis answers again."""
    caplog.set_level(logging.INFO, logger="resilient_http.redis")
    server = RedisServer()
    server.start()
    assert server.process is not None
    pid = server.process.pid
    try:
        async with AsyncExitStack() as stack:
            a = Member(
                server.port,
                prefix,
                status_handler,
                host_policy=policy(recovery=0.2),
                timeout=0.2,
                retry_interval=0.1,
            )
            stack.push_async_callback(a.aclose)
            a.transport.breaker(KEY)
            assert await a.store.connect()
            os.kill(pid, signal.SIGSTOP)
            try:
                for _ in range(3):
                    assert await a.get("/503") == 503
                assert a.breaker is CircuitState.OPEN  # its own breaker, at its own threshold
                assert await a.get("/ok") == "rejected"
                await eventually(lambda: a.breaker is CircuitState.HALF_OPEN)
                assert await a.get("/ok") == 200  # the probe goes without a fleet lease
                assert a.breaker is CircuitState.CLOSED
            finally:
                os.kill(pid, signal.SIGCONT)
            await eventually(lambda: a.store.connected)
    finally:
        server.stop()
    levels = [r.levelname for r in caplog.records if r.name == "resilient_http.redis"]
    assert levels == ["WARNING", "INFO"]


async def test_the_in_memory_store_is_the_default_behaviour(clock: FakeClock) -> None:
    transport = ResilientTransport(
        httpx.MockTransport(status_handler),
        policy=policy(recovery=5.0),
        store=InMemoryStore(),
        clock=clock,
        sleep=clock.sleep,
    )
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(3):
            assert (await client.get(URL + "/503")).status_code == 503
        with pytest.raises(CircuitOpenError):
            await client.get(URL + "/ok")
        clock.advance(5.0)
        assert (await client.get(URL + "/ok")).status_code == 200
        assert transport.breaker(KEY).state is CircuitState.CLOSED


def test_under_trio_breakers_stay_local(
    redis_server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    import trio

    caplog.set_level(logging.WARNING, logger="resilient_http.redis")

    async def main() -> None:
        redis = Redis(host="127.0.0.1", port=redis_server.port)
        store = RedisStateStore(redis, prefix=prefix)
        transport = ResilientTransport(
            httpx.MockTransport(status_handler), policy=policy(), store=store
        )
        async with httpx.AsyncClient(transport=transport) as client:
            for _ in range(5):
                assert (await client.get(URL + "/ok")).status_code == 200
            for _ in range(3):
                assert (await client.get(URL + "/503")).status_code == 503
            with pytest.raises(CircuitOpenError):
                await client.get(URL + "/ok")

    trio.run(main)
    warnings = [r.getMessage() for r in caplog.records if r.name == "resilient_http.redis"]
    assert len(warnings) == 1
    assert "trio" in warnings[0]


def test_import_resilient_http_without_redis_installed() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import resilient_http\n"
        "from resilient_http import ResilientTransport\n"
        "ResilientTransport()\n"
        "try:\n"
        "    import resilient_http.redis\n"
        "except ImportError:\n"
        "    print('redis extra missing')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "redis extra missing"


def test_invalid_settings_name_the_field() -> None:
    redis = Redis()
    with pytest.raises(TypeError, match=r"redis\.asyncio\.Redis"):
        RedisStateStore(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"quorum must be >= 1, got 0"):
        RedisStateStore(redis, quorum=0)
    with pytest.raises(ValueError, match="prefix"):
        RedisStateStore(redis, prefix="a{b}")
    with pytest.raises(ValueError, match=r"lease must be > 0"):
        RedisStateStore(redis, lease=0)
    with pytest.raises(TypeError, match="timeout must be a number"):
        RedisStateStore(redis, timeout="1")  # type: ignore[arg-type]


async def test_resilient_client_takes_a_store(redis_server: RedisServer, prefix: str) -> None:
    redis = Redis(host="127.0.0.1", port=redis_server.port)
    store = RedisStateStore(redis, prefix=prefix)
    async with ResilientClient(store=store, transport=httpx.MockTransport(status_handler)) as c:
        assert (await c.get(URL + "/ok")).status_code == 200
        assert await store.connect()
    assert not store.connected  # the last transport using it closed: unsubscribed
    await redis.aclose()


# -- a fleet of processes -----------------------------------------------------------------

WORKERS = 4


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with start_upstream() as live:
        yield live


@pytest.fixture(scope="module")
def pool() -> Iterator[list[Worker]]:
    workers = [Worker() for _ in range(WORKERS)]
    yield workers
    for worker in workers:
        worker.close()


@pytest.fixture
def fleet(
    pool: list[Worker], upstream: Upstream, redis_server: RedisServer, prefix: str
) -> Callable[..., list[Worker]]:
    """Configure every worker (respawning any a previous test killed)."""
    upstream.reset()

    def configure(redis: RedisServer = redis_server, **settings: object) -> list[Worker]:
        for i, worker in enumerate(pool):
            if not worker.alive:
                worker.close()
                pool[i] = Worker()
        args = {"upstream": upstream.url, "key": upstream.key, "prefix": prefix, **settings}
        ids = [(w, w.send("configure", redis_port=redis.port, **args)) for w in pool]
        replies = [w.receive(i) for w, i in ids]
        if redis.process is not None:
            assert all(r["connected"] for r in replies)
        return list(pool)

    return configure


def all_at_once(workers: list[Worker], op: str, **args: object) -> list[dict[str, Any]]:
    ids = [(w, w.send(op, **args)) for w in workers]
    return [w.receive(i) for w, i in ids]


def test_fleet_a_dead_upstream_sees_about_threshold_failures_not_workers_times(
    fleet: Callable[..., list[Worker]], upstream: Upstream
) -> None:
    threshold = 5
    workers = fleet(threshold=threshold)
    replies = all_at_once(workers, "hammer", path="/fail", interval=0.02, until="rejected")
    assert all(r["state"] == "open" for r in replies)
    failed = upstream.count("/fail")
    # Alone, each worker would need `threshold` failures: 4 x 5 = 20 calls.
    assert threshold <= failed < 2 * threshold


@pytest.mark.parametrize("half_open_max_calls", [1, 2])
def test_fleet_exactly_half_open_max_calls_probes_reach_the_upstream(
    fleet: Callable[..., list[Worker]], upstream: Upstream, half_open_max_calls: int
) -> None:
    workers = fleet(threshold=3, recovery=0.5, half_open_max_calls=half_open_max_calls)
    all_at_once(workers, "hammer", path="/fail", interval=0.01, until="rejected")
    # every worker calls the (now healthy, gated) upstream until its breaker closes
    ids = [(w, w.send("hammer", path="/gate", interval=0.01, until="closed")) for w in workers]
    deadline = time.monotonic() + 10
    while upstream.count("/gate") < half_open_max_calls and time.monotonic() < deadline:
        time.sleep(0.005)
    assert upstream.count("/gate") == half_open_max_calls

    # while the probes are held, every worker keeps being rejected
    # while the probes are held, the other workers keep being rejected
    def rejected() -> int:
        return sum(w.call("status")["stats"].get("rejected", 0) for w in workers)

    before = rejected()
    deadline = time.monotonic() + 10
    while rejected() < before + 5 * (WORKERS - half_open_max_calls):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert upstream.count("/gate") == half_open_max_calls
    upstream.gate.set()
    replies = [w.receive(i) for w, i in ids]
    assert [r["state"] for r in replies] == ["closed"] * WORKERS
    assert upstream.count("/gate") == half_open_max_calls


def test_fleet_a_probe_killed_mid_call_lets_another_process_probe_after_the_lease(
    fleet: Callable[..., list[Worker]], upstream: Upstream, redis_server: RedisServer, prefix: str
) -> None:
    workers = fleet(threshold=3, recovery=0.3, lease=1.0)
    all_at_once(workers, "hammer", path="/fail", interval=0.01, until="rejected")
    prober, rest = workers[0], workers[1:]
    prober.send("hammer", path="/hang", interval=0.01, until="closed")  # probes, then hangs
    deadline = time.monotonic() + 10
    while upstream.count("/hang") < 1 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert upstream.count("/hang") == 1
    leases = asyncio.run(_zcard(redis_server.port, f"{prefix}:{{{upstream.key}}}:leases"))
    assert leases == 1
    prober.kill()
    replies = all_at_once(rest, "hammer", path="/ok", interval=0.01, until="closed")
    assert [r["state"] for r in replies] == ["closed"] * len(rest)
    assert upstream.count("/ok") == 1  # one replacement probe, then the fleet closed
    assert all(r["results"].get("rejected", 0) >= 10 for r in replies)


async def _zcard(port: int, key: str) -> int:
    redis = Redis(host="127.0.0.1", port=port)
    try:
        return await redis.zcard(key)
    finally:
        await redis.aclose()


def test_fleet_quorum_two_one_failing_process_opens_only_locally(
    fleet: Callable[..., list[Worker]], upstream: Upstream
) -> None:
    workers = fleet(threshold=3, quorum=2)
    sick, healthy = workers[0], workers[1:]
    assert sick.call("hammer", path="/fail", interval=0.01, until="rejected")["state"] == "open"
    # the fleet saw `threshold` failures in a row, but all from one process
    replies = all_at_once(healthy, "hammer", path="/ok", interval=0.005, calls=40)
    assert [r["results"] for r in replies] == [{"200": 40}] * len(healthy)
    assert [w.call("status")["state"] for w in healthy] == ["closed"] * len(healthy)
    assert upstream.count("/fail") == 3  # the sick worker's own threshold, nothing shared
    # a second process failing makes the quorum: the whole fleet opens
    healthy[0].call("hammer", path="/fail", interval=0.01, until="rejected")
    assert all(w.call("wait", state="open")["ok"] for w in healthy)


def test_fleet_redis_stopped_mid_run_requests_flow_on_local_breakers_then_rejoin(
    fleet: Callable[..., list[Worker]], upstream: Upstream
) -> None:
    redis = RedisServer()
    redis.start()
    try:
        workers = fleet(redis=redis, threshold=3, timeout=0.2, retry_interval=0.1)
        redis.stop()
        replies = all_at_once(workers, "hammer", path="/ok", interval=0.002, calls=30)
        assert [r["results"] for r in replies] == [{"200": 30}] * WORKERS
        replies = all_at_once(workers, "hammer", path="/fail", interval=0.01, until="rejected")
        assert all(r["state"] == "open" for r in replies)
        assert upstream.count("/fail") == 3 * WORKERS  # each worker on its own breaker
        assert all(w.call("wait", connected=False)["ok"] for w in workers)
        for worker in workers:
            levels = [level for level, _, _ in worker.call("logs")["records"]]
            assert levels == ["WARNING"]  # once, not per request
        redis.start()
        assert all(w.call("wait", connected=True)["ok"] for w in workers)
        all_at_once(workers, "reset")
        upstream.reset()
        replies = all_at_once(workers, "hammer", path="/fail", interval=0.02, until="rejected")
        assert all(r["state"] == "open" for r in replies)
        # shared again: fewer failures than the workers' own breakers would take
        # (3 each), with room for a trip still on its way to a busy worker
        assert upstream.count("/fail") < 3 * WORKERS
        for worker in workers:
            levels = [level for level, _, _ in worker.call("logs")["records"]]
            assert levels == ["WARNING", "INFO"]
    finally:
        redis.stop()


async def test_endpoint_breakers_are_shared_by_the_fleet(
    redis_server: RedisServer, prefix: str
) -> None:
    """An endpoint of a group trips in one process: the others fail over at once."""
    reached: list[tuple[int, str]] = []

    def replicas(member: int) -> Handler:
        def handler(request: httpx.Request) -> httpx.Response:
            reached.append((member, request.url.host))
            return httpx.Response(503 if request.url.host == "a.internal" else 200)

        return handler

    hosts = {
        "svc.internal": Policy(
            endpoints=("http://a.internal", "http://b.internal"),
            breaker=BreakerPolicy(failure_threshold=2, recovery_timeout=30),
            retry=RetryPolicy(attempts=1),
        )
    }
    async with AsyncExitStack() as stack:
        transports = []
        for member in (1, 2):
            redis = Redis(host="127.0.0.1", port=redis_server.port)
            stack.push_async_callback(redis.aclose)
            store = RedisStateStore(redis, prefix=prefix)
            transport = ResilientTransport(
                httpx.MockTransport(replicas(member)), hosts=hosts, store=store
            )
            stack.push_async_callback(transport.aclose)
            transport.breaker("svc.internal:80")  # this process calls the service
            await connected(store)
            transports.append(transport)
        first, second = (httpx.AsyncClient(transport=t) for t in transports)
        for _ in range(2):
            assert (await first.get("http://svc.internal/stock")).status_code == 503
        await eventually(lambda: transports[1].breaker("a.internal:80").state is CircuitState.OPEN)
        assert (await second.get("http://svc.internal/stock")).status_code == 200
    assert reached == [(1, "a.internal"), (1, "a.internal"), (2, "b.internal")]
