"""RedisStateStore: the connection, the background task and the hooks the
transport calls. The scripts and the key layout are in ``_scripts``."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import itertools
import logging
import math
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from redis import exceptions as redis_exceptions
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .._breaker import Breaker, CircuitState, Ticket
from .._events import in_trio
from .._outcomes import Outcome
from .._store import HasBreaker
from . import _scripts

__all__ = ["RedisStateStore"]

logger = logging.getLogger("resilient_http.redis")

_CLOSED, _OPEN = CircuitState.CLOSED, CircuitState.OPEN

#: Pending writes kept while Redis is slow; older ones are dropped past this.
_MAX_PENDING = 10_000
#: Bookkeeping maps are pruned past this many keys.
_MAX_KEYS = 4096

#: Longest duration sent to Redis (ten years): ``recovery_timeout=inf`` (open
#: until reset) or ``window=inf`` become this, never an overflow.
_MAX_MS = 10 * 365 * 24 * 3600 * 1000

#: How long a "the fleet's probe lease is busy" answer is trusted before asking
#: Redis again (a lease given back early is also announced on pub/sub).
_BUSY_RECHECK = 0.25

#: Errors that mean Redis itself is unreachable or too slow (the store goes
#: local and reconnects). Anything else from one update is that update's problem.
_CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    redis_exceptions.ConnectionError,
    redis_exceptions.TimeoutError,
)


def _ms(seconds: float) -> int:
    if not seconds < _MAX_MS / 1000:  # inf (and nan) too
        return _MAX_MS
    return max(1, int(seconds * 1000))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decode(reply: Any) -> tuple[str, int, int]:
    state, ms, gen = reply
    return _text(state), int(ms), int(gen)


def _consume(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


async def _bounded(awaitable: Awaitable[Any], timeout: float) -> Any:
    """``await`` with a time limit. Unlike ``asyncio.wait_for`` on Python < 3.12,
    never swallows a cancellation that lands as the awaitable completes."""
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout)
    except BaseException:
        task.cancel()
        task.add_done_callback(_consume)
        raise
    if not done:
        task.cancel()
        await asyncio.wait({task})
        raise TimeoutError(f"no answer from Redis within {timeout}s")
    return task.result()


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"RedisStateStore.{name} must be a number, got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"RedisStateStore.{name} must be > 0 and finite, got {value!r}")
    return float(value)


class RedisStateStore:
    """Share each host's breaker across processes through Redis.

    ``redis`` is a ``redis.asyncio.Redis`` client (the store never closes it).
    ``prefix`` namespaces every key and the pub/sub channel. ``quorum`` is the
    number of distinct processes that must report failures within a breaker's
    ``window`` before the shared circuit opens. ``timeout`` bounds every Redis
    call (past it, Redis counts as down), ``lease`` is how long a half-open probe
    holds its fleet-wide slot, ``retry_interval`` how often a down store tries
    to reconnect, ``ttl`` how long an idle host's keys live.

    Pass it as ``ResilientTransport(store=...)`` or ``ResilientClient(store=...)``.
    It connects on first use (or ``await store.connect()``) and disconnects when
    the last transport using it closes (or ``await store.aclose()``).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "resilient_http",
        quorum: int = 1,
        timeout: float = 0.25,
        lease: float = 15.0,
        retry_interval: float = 1.0,
        ttl: float = 3600.0,
    ) -> None:
        if not isinstance(redis, Redis):
            raise TypeError(
                f"RedisStateStore.redis must be a redis.asyncio.Redis, got {type(redis).__name__}"
            )
        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise ValueError(
                f"RedisStateStore.prefix must be a non-empty string without braces, got {prefix!r}"
            )
        if isinstance(quorum, bool) or not isinstance(quorum, int):
            raise TypeError(f"RedisStateStore.quorum must be an int, got {quorum!r}")
        if quorum < 1:
            raise ValueError(f"RedisStateStore.quorum must be >= 1, got {quorum!r}")
        self.prefix = prefix
        self.quorum = quorum
        self.timeout = _positive("timeout", timeout)
        self.lease = _positive("lease", lease)
        self.retry_interval = _positive("retry_interval", retry_interval)
        self.ttl = _positive("ttl", ttl)
        self._redis = redis
        self._channel = f"{prefix}:events"
        self._fail = redis.register_script(_scripts.FAIL)
        self._reset = redis.register_script(_scripts.RESET)
        self._probe = redis.register_script(_scripts.PROBE)
        self._probe_done = redis.register_script(_scripts.PROBE_DONE)
        self._fetch = redis.register_script(_scripts.FETCH)
        self._maps: list[Mapping[str, HasBreaker]] = []
        # idle -> connecting -> up <-> down (-> idle again on aclose). Stays idle,
        # and every breaker local, when used without an asyncio loop (trio).
        self._status = "idle"
        self._id = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._broken: asyncio.Event | None = None
        self._settled: asyncio.Event | None = None
        self._ops: collections.deque[tuple[Any, ...]] = collections.deque(maxlen=_MAX_PENDING)
        self._tokens = itertools.count()
        self._dirty: set[str] = set()  # keys whose fleet failure count may need a reset
        self._seen: dict[str, tuple[int, bool]] = {}  # key -> (shared gen, mirrored open)
        # key -> (monotonic time asked, monotonic time the fleet's probe lease ends)
        self._busy: dict[str, tuple[float, float]] = {}
        self._leases: dict[Ticket, tuple[str, str, int]] = {}  # ticket -> (key, token, gen)
        # leases that may be held in Redis with nobody to give them back (the
        # caller was cancelled or timed out after the grant was sent, or Redis
        # went away mid-probe): token -> breaker, released as soon as Redis answers
        self._orphans: dict[str, Breaker] = {}
        self._applying = False
        self._warned_off = False

    # -- public ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the store is currently sharing state (subscribed to Redis)."""
        return self._status == "up"

    async def connect(self) -> bool:
        """Connect now instead of on first use; ``True`` once subscribed.
        ``False`` if Redis did not answer (the store keeps retrying)."""
        if self._active() and self._status == "connecting" and self._settled is not None:
            await self._settled.wait()
        return self._status == "up"

    async def aclose(self) -> None:
        """Give back any probe lease held, stop the background task and
        unsubscribe (the Redis client stays open)."""
        task, loop = self._task, self._loop
        if self._status == "up" and task is not None and not task.done():
            self._orphan_leases()
            with contextlib.suppress(Exception):
                await _bounded(self._release_orphans(), self.timeout)
        self._orphans.clear()
        self._task = self._loop = None
        self._status = "idle"
        self._ops.clear()
        self._leases.clear()
        self._busy.clear()
        if task is None or loop is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            while not task.done():
                task.cancel()
                await asyncio.wait({task}, timeout=1.0)
            if not task.cancelled():
                task.exception()  # retrieved: the store is closing anyway
        elif not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)

    # -- StateStore hooks --------------------------------------------------------

    def attach(self, hosts: Mapping[str, HasBreaker]) -> None:
        if not any(m is hosts for m in self._maps):
            self._maps.append(hosts)

    async def detach(self, hosts: Mapping[str, HasBreaker]) -> None:
        self._maps = [m for m in self._maps if m is not hosts]
        if not self._maps:
            await self.aclose()

    def bind(self, breaker: Breaker) -> None:
        if self._active():
            self._push(("fetch", breaker.key))

    def record(self, breaker: Breaker, ticket: Ticket, outcome: Outcome) -> None:
        if ticket.probe:
            if self._leases:
                lease = self._leases.pop(ticket, None)
                if lease is not None and self._active():
                    self._push(("probe_done", breaker, *lease, outcome))
            return
        if outcome == "success":
            dirty = self._dirty
            if dirty and breaker.key in dirty:
                dirty.discard(breaker.key)
                if self._active():
                    self._push(("reset", breaker.key))
            return
        if (
            outcome == "failure"
            and breaker._state is _CLOSED
            and ticket.generation == breaker._generation
            and breaker.forced is None
            and not breaker.policy.rate_mode
            and self._active()
        ):
            self._push(("fail", breaker, False, 0.0))

    def transitioned(self, breaker: Breaker, old: CircuitState, new: CircuitState) -> None:
        if self._applying:
            return  # mirroring the fleet: nothing to report back
        if (
            new is _OPEN
            and old is _CLOSED
            and breaker.forced is None
            and breaker.policy.rate_mode
            and self._active()
        ):
            self._push(("fail", breaker, True, breaker.retry_after))

    async def admit_probe(self, breaker: Breaker, ticket: Ticket) -> bool:
        if not self._active():
            return True
        if self._known_busy(breaker.key):
            breaker.on_ignored(ticket)
            return False
        if self._status != "up":
            return True  # still connecting: the local breaker decides
        token = f"{self._id}:{next(self._tokens)}"
        reply = await self._ask_lease(breaker, ticket, token)
        if reply is None:
            return True  # Redis in trouble: the local breaker decides
        state, ms, gen = reply
        logger.debug("probe for %s: %s (%d ms, generation %d)", breaker.key, state, ms, gen)
        if ticket.generation != breaker._generation:
            # the breaker moved on while Redis answered (a push closed or reopened
            # it): this call was admitted as a probe of a state that is gone
            if state == "granted":
                self._orphan(token, breaker)
            breaker.on_ignored(ticket)
            return False
        if state == "granted":
            self._leases[ticket] = (breaker.key, token, gen)
            if len(self._leases) > _MAX_KEYS:  # tickets never given back: forget the oldest
                del self._leases[next(iter(self._leases))]
            return True
        if state == "local":
            return self._probe_locally(breaker, ticket, gen)
        self._refused(breaker, ticket, state, ms, gen)
        return False

    def _refused(self, breaker: Breaker, ticket: Ticket, state: str, ms: int, gen: int) -> None:
        """The fleet's lease is busy for ``ms`` more, or the shared circuit is
        still open for ``ms``: no probe here."""
        breaker.on_ignored(ticket)
        now = time.monotonic()
        self._busy[breaker.key] = (now, now + ms / 1000.0)
        if state == "open":
            self._apply(breaker.key, "open", ms, gen)

    def _known_busy(self, key: str) -> bool:
        """Another process holds the fleet's probe lease, as heard a moment ago."""
        busy = self._busy.get(key)
        if busy is None:
            return False
        now = time.monotonic()
        if now < busy[1] and now < busy[0] + _BUSY_RECHECK:
            return True
        del self._busy[key]
        return False

    async def _ask_lease(
        self, breaker: Breaker, ticket: Ticket, token: str
    ) -> tuple[str, int, int] | None:
        """Run the probe script; ``None`` when Redis is in trouble."""
        state_key, _, leases_key = self._keys(breaker.key)
        policy = breaker.policy
        try:
            reply = await _bounded(
                self._probe(
                    keys=[state_key, leases_key],
                    args=[token, policy.half_open_max_calls, _ms(self.lease), _ms(self.ttl)],
                ),
                self.timeout,
            )
            return _decode(reply)
        except BaseException as exc:
            # The script may have run and granted a lease this caller will never
            # know it holds: give it back as soon as Redis answers.
            self._orphan(token, breaker)
            if not isinstance(exc, Exception):  # cancelled: no probe
                breaker.on_ignored(ticket)
                raise
            self._trouble(exc)
            return None

    def _probe_locally(self, breaker: Breaker, ticket: Ticket, gen: int) -> bool:
        """The shared circuit is closed: this breaker opened on its own, and
        probes on its own; unless the fleet closed a moment ago (its push is on
        the way): close here too, and leave this call out, as any call racing a
        transition."""
        seen = self._seen.get(breaker.key)
        if seen is not None and seen[1] and gen > seen[0]:
            breaker.on_ignored(ticket)
            self._apply(breaker.key, "closed", 0, gen)
            return False
        return True

    def retry_after(self, breaker: Breaker) -> float:
        """Seconds until the fleet's probe lease for this host ends, as last heard
        (0 when none is known busy): what a call rejected meanwhile is told."""
        busy = self._busy.get(breaker.key)
        return max(0.0, busy[1] - time.monotonic()) if busy is not None else 0.0

    # -- bookkeeping ---------------------------------------------------------------

    def _keys(self, key: str) -> tuple[str, str, str]:
        base = f"{self.prefix}:{{{key}}}"
        return f"{base}:state", f"{base}:reporters", f"{base}:leases"

    def _breakers(self, key: str) -> Iterator[Breaker]:
        for hosts in self._maps:
            host = hosts.get(key)
            if host is not None:
                yield host.breaker

    def _has(self, key: str) -> bool:
        return any(key in hosts for hosts in self._maps)

    def _active(self) -> bool:
        """Whether to talk to Redis now; starts the background task on first use."""
        status = self._status
        if status == "up" or status == "connecting":
            try:
                return asyncio.get_running_loop() is self._loop
            except RuntimeError:
                return False
        if status == "idle":
            return self._start()
        return False

    def _start(self) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if in_trio() and not self._warned_off:
                self._warned_off = True
                logger.warning(
                    "RedisStateStore needs an asyncio event loop (redis.asyncio); "
                    "breakers stay local under trio"
                )
            return False
        self._loop = loop
        self._id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._wake = asyncio.Event()
        self._broken = asyncio.Event()
        self._settled = asyncio.Event()
        self._status = "connecting"
        # a fresh context: whatever the background task sets off (a mirrored
        # transition's events) belongs to no caller's request
        self._task = contextvars.Context().run(
            loop.create_task, self._run(), name="resilient_http.redis"
        )
        return True

    def _push(self, op: tuple[Any, ...]) -> None:
        self._ops.append(op)
        assert self._wake is not None
        self._wake.set()

    def _trouble(self, exc: BaseException) -> None:
        """Redis failed or was too slow: go local now, reconnect in the background."""
        self._down(exc)
        if self._broken is not None:
            self._broken.set()

    def _down(self, exc: BaseException) -> None:
        was = self._status
        if was not in ("connecting", "up"):
            return
        self._status = "down"
        self._ops.clear()
        self._orphan_leases()
        self._busy.clear()
        if self._settled is not None:
            self._settled.set()
        if _is_auth_error(exc):
            logger.warning(
                "Redis state store cannot authenticate (%s): check the client's username and "
                "password; breakers are local until it can",
                type(exc).__name__,
            )
        else:
            logger.warning(
                "Redis state store unavailable (%s): breakers are local until it returns",
                type(exc).__name__,
            )

    def _orphan(self, token: str, breaker: Breaker) -> None:
        self._orphans[token] = breaker
        if len(self._orphans) > _MAX_KEYS:  # Redis gone for long: the leases expire anyway
            del self._orphans[next(iter(self._orphans))]
        if self._wake is not None:
            self._wake.set()

    def _orphan_leases(self) -> None:
        """Probes in flight can no longer report through the queue: their
        leases are given back instead."""
        leases, self._leases = self._leases, {}
        for key, token, _ in leases.values():
            for breaker in self._breakers(key):
                self._orphan(token, breaker)
                break

    async def _release_orphans(self) -> None:
        while self._orphans:
            token, breaker = next(iter(self._orphans.items()))
            await self._finish_probe(breaker, token, 0, "ignored")
            self._orphans.pop(token, None)

    def _prune(self) -> None:
        if len(self._seen) > _MAX_KEYS:
            self._seen = {k: v for k, v in self._seen.items() if v[1] and self._has(k)}
        if len(self._dirty) > _MAX_KEYS:
            self._dirty.clear()
        if len(self._busy) > _MAX_KEYS:
            self._busy.clear()

    def _apply(self, key: str, state: str, ms: int, gen: int) -> None:
        """Mirror the fleet's state for ``key`` into this process's breakers."""
        if state == "dirty":
            if self._has(key):
                self._dirty.add(key)
        elif state == "free":  # a probe lease was given back unused: ask again
            self._busy.pop(key, None)
        elif state in ("closed", "open", "half_open"):
            seen = self._seen.get(key)
            if seen is not None and gen <= seen[0]:
                return  # already applied, or older than what was
            if state == "closed":
                if seen is not None and seen[1]:  # a local-only trip stays local
                    self._mirror_closed(key, gen)
            else:
                self._mirror_open(key, state, ms, gen)

    def _mirror_closed(self, key: str, gen: int) -> None:
        self._seen[key] = (gen, False)
        self._dirty.discard(key)
        self._busy.pop(key, None)
        for breaker in list(self._breakers(key)):
            if breaker.forced is None and breaker._state is not _CLOSED:
                self._mirror(breaker.reset)

    def _mirror_open(self, key: str, state: str, ms: int, gen: int) -> None:
        self._seen[key] = (gen, True)
        self._prune()
        self._dirty.discard(key)
        if state == "open":
            self._busy.pop(key, None)
        seconds = ms / 1000.0
        for breaker in list(self._breakers(key)):
            self._mirror(functools.partial(breaker.open_for, seconds))

    def _mirror(self, change: Callable[[], None]) -> None:
        self._applying = True
        try:
            change()
        finally:
            self._applying = False

    # -- the background task -------------------------------------------------------

    async def _run(self) -> None:
        while True:
            pubsub: Any = self._redis.pubsub()
            try:
                await _bounded(self._handshake(), self.timeout)
                await _bounded(pubsub.subscribe(self._channel), self.timeout)
                keys = sorted({k for hosts in self._maps for k in list(hosts)})
                await _bounded(self._resync(keys), self.timeout + 0.001 * len(keys))
                if self._status == "down":
                    logger.info("Redis state store reachable again: breakers rejoin the fleet")
                self._status = "up"
                assert self._settled is not None
                assert self._broken is not None
                self._settled.set()
                self._broken.clear()
                await self._serve(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._down(exc)
            finally:
                with contextlib.suppress(Exception):
                    await _bounded(pubsub.aclose(), self.timeout)
            await asyncio.sleep(self.retry_interval)

    async def _resync(self, keys: list[str]) -> None:
        if not keys:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                await self._fetch(keys=[self._keys(key)[0]], client=pipe)
            replies = await pipe.execute()
        for key, reply in zip(keys, replies, strict=True):
            self._apply(key, *_decode(reply))

    async def _serve(self, pubsub: Any) -> None:
        loop = asyncio.get_running_loop()
        assert self._broken is not None
        tasks = {
            loop.create_task(self._listen(pubsub)),
            loop.create_task(self._write()),
            loop.create_task(self._broken.wait()),
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            pending = tasks
            while pending:
                for task in pending:
                    task.cancel()
                _, pending = await asyncio.wait(pending, timeout=1.0)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        raise ConnectionError("Redis state store lost its connection")

    async def _listen(self, pubsub: Any) -> None:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            if message is None or message.get("type") != "message":
                continue
            parts = _text(message["data"]).split("|", 3)
            if len(parts) != 4 or not self._has(parts[3]):
                continue
            with contextlib.suppress(ValueError):
                self._apply(parts[3], parts[0], int(parts[1]), int(parts[2]))

    async def _write(self) -> None:
        ops = self._ops
        wake = self._wake
        assert wake is not None
        while True:
            if self._orphans:
                await _bounded(self._release_orphans(), self.timeout)
                continue
            if not ops:
                wake.clear()
                await wake.wait()
                continue
            op = ops.popleft()
            try:
                await _bounded(self._execute(op), self.timeout)
            except _CONNECTION_ERRORS:
                raise
            except Exception:  # this update's own trouble: drop it, keep the rest
                logger.exception("Redis state store dropped one %r update", op[0])

    async def _execute(self, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "fail":
            breaker: Breaker = op[1]
            trip: bool = op[2]
            policy = breaker.policy
            key = breaker.key
            period = op[3] if trip and math.isfinite(op[3]) else policy.recovery_timeout
            reply = await self._fail(
                keys=list(self._keys(key)),
                args=[
                    self._id,
                    policy.failure_threshold,
                    self.quorum,
                    _ms(policy.window),
                    _ms(period),
                    _ms(self.ttl),
                    self._channel,
                    key,
                    1 if trip else 0,
                ],
            )
            state, count, gen = _decode(reply)
            if state == "closed":
                if count > 0 and self._has(key):
                    self._dirty.add(key)
            else:
                self._apply(key, state, count, gen)
        elif kind == "reset":
            await self._reset(keys=[self._keys(op[1])[0]])
        elif kind == "probe_done":
            breaker, key, token, gen, outcome = op[1:]
            await self._finish_probe(breaker, token, gen, outcome)
        elif kind == "fetch":
            key = op[1]
            reply = await self._fetch(keys=[self._keys(key)[0]])
            self._apply(key, *_decode(reply))

    async def _finish_probe(self, breaker: Breaker, token: str, gen: int, outcome: str) -> None:
        policy = breaker.policy
        key = breaker.key
        period = breaker.retry_after if breaker._state is _OPEN else 0.0
        if not (period > 0 and math.isfinite(period)):
            period = policy.recovery_timeout
        state_key, reporters_key, leases_key = self._keys(key)
        reply = await self._probe_done(
            keys=[state_key, leases_key, reporters_key],
            args=[
                token,
                gen,
                outcome,
                policy.success_threshold,
                _ms(period),
                _ms(self.ttl),
                self._channel,
                key,
            ],
        )
        self._apply(key, *_decode(reply))

    async def _handshake(self) -> None:
        """Connect and PING once, without the client's own retries, so wrong
        credentials or a refused connection are named at once (redis-py would
        retry them for seconds, and the store would only see a timeout)."""
        make_connection = getattr(self._redis.connection_pool, "make_connection", None)
        if make_connection is None:
            return
        connection = make_connection()
        connection.retry = Retry(NoBackoff(), 0)
        try:
            await connection.connect()
            await connection.send_command("PING")
            await connection.read_response()
        finally:
            await connection.disconnect()


def _is_auth_error(exc: BaseException) -> bool:
    if isinstance(exc, redis_exceptions.AuthenticationError):
        return True
    return isinstance(exc, redis_exceptions.ResponseError) and str(exc).startswith(
        ("NOAUTH", "WRONGPASS")
    )
