"""What the sync binding does around the inner transport, with threads: the
bulkhead, backoff sleeps an opening circuit cuts short, the deadline and the
locks that make one transport safe to share between threads.

The threaded twin of ``resilient_http/_async/_io.py``, written by hand.
Everything else in ``_sync`` is generated from ``_async``
(``python -m tests.codegen``).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, NoReturn, TypeAlias, TypeVar

import httpx

from resilient_http._breaker import Clock
from resilient_http._breaker import LockedBreaker as Breaker
from resilient_http._events import (
    Emitter,
    Event,
    Listener,
    is_async_callable,
    logger,
    run_detached,
)
from resilient_http._exceptions import DeadlineExceeded, deadline_reached

__all__ = [
    "Attempt",
    "Breaker",
    "Lock",
    "Misuse",
    "Pending",
    "Semaphore",
    "Sleep",
    "Sleeper",
    "acquire",
    "check_fallback",
    "check_store",
    "emitter",
    "fallback_result",
    "move_on_after",
    "race",
    "run_detached",
    "send_by",
    "settle",
    "shielded",
    "sleep",
    "try_acquire",
]

T = TypeVar("T")

Sleep = Callable[[float], object]
#: What a call gives before it is awaited: its result (the sync binding awaits nothing).
Pending: TypeAlias = T
#: One attempt of a race, started by calling it.
Attempt: TypeAlias = Callable[[], T]
#: The default backoff sleep.
sleep: Sleep = time.sleep
#: The host map's lock (re-entrant: creating a host may evict another).
Lock = threading.RLock


class Semaphore:
    """A host's bulkhead: it counts threads. A free slot costs one plain lock
    taken and given back (``threading.Semaphore`` runs a Python condition for
    every acquire and release, several times the cost, and this runs for
    every call); threads that wait for a slot wait on a condition, woken one
    per released slot."""

    __slots__ = ("_lock", "_slot_freed", "_waiting", "free")

    def __init__(self, slots: int) -> None:
        self.free = slots
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._waiting = 0

    def release(self) -> None:
        lock = self._lock
        lock.acquire()  # (half the cost of a with statement, and this runs for every call)
        try:
            self.free += 1
            if self._waiting:
                self._slot_freed.notify()
        finally:
            lock.release()

    def wait(self, max_wait: float) -> bool:
        """A slot, waiting at most ``max_wait`` seconds for one to be freed."""
        deadline = time.monotonic() + max_wait
        with self._lock:
            self._waiting += 1
            try:
                while self.free <= 0:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._slot_freed.wait(left)
                self.free -= 1
                return True
            finally:
                self._waiting -= 1


def try_acquire(semaphore: Semaphore) -> bool:
    """A bulkhead slot if one is free now."""
    lock = semaphore._lock
    lock.acquire()
    try:
        if semaphore.free > 0:
            semaphore.free -= 1
            return True
        return False
    finally:
        lock.release()


def acquire(semaphore: Semaphore, max_wait: float) -> bool:
    """A bulkhead slot, waiting at most ``max_wait`` seconds for one."""
    if try_acquire(semaphore):
        return True
    return max_wait > 0 and semaphore.wait(max_wait)


class Sleeper:
    """One backoff sleep, which ``cancel()`` (the circuit opening, in any
    thread) cuts short. An injected ``sleep`` cannot be interrupted: it runs to
    its end and the cut is seen after it."""

    __slots__ = ("_cut",)

    def __init__(self) -> None:
        self._cut = threading.Event()

    def cancel(self) -> None:
        self._cut.set()

    def sleep(self, sleep: Sleep, seconds: float) -> bool:
        """``False`` when cut short."""
        if sleep is time.sleep:
            return not self._cut.wait(seconds)
        sleep(seconds)
        return not self._cut.is_set()


def move_on_after(seconds: float) -> contextlib.nullcontext[None]:
    """A thread cannot be interrupted: the block runs to its end, and the
    deadline is kept by the reads' own timeouts (see ``send_by``)."""
    return contextlib.nullcontext()


def shielded() -> contextlib.nullcontext[None]:
    """Nothing cancels a thread."""
    return contextlib.nullcontext()


_TIMEOUTS = ("connect", "read", "write", "pool")


def send_by(
    transport: httpx.BaseTransport, request: httpx.Request, clock: Clock, deadline: float
) -> httpx.Response:
    """One attempt whose connect, write, read and pool timeouts are cut to the
    time left before ``deadline`` (a thread cannot be interrupted, so each
    wait is bounded rather than the whole). A timeout past the deadline is
    ``DeadlineExceeded``."""
    if deadline == math.inf:
        return transport.handle_request(request)
    left = max(0.0, deadline - clock())
    own = request.extensions.get("timeout")
    timeouts = own if isinstance(own, dict) else {}
    request.extensions["timeout"] = {
        name: left if timeouts.get(name) is None else min(timeouts[name], left)
        for name in _TIMEOUTS
    }
    try:
        return transport.handle_request(request)
    except httpx.TimeoutException as exc:
        if isinstance(exc, DeadlineExceeded) or not (
            _was_cut(exc, timeouts, left) or clock() >= deadline
        ):
            raise  # the request's own timeout, shorter than the time left
        raise deadline_reached(request) from exc
    finally:
        if own is None:
            del request.extensions["timeout"]
        else:
            request.extensions["timeout"] = own


#: Which timeout each timeout error is.
_PHASES = (
    (httpx.ConnectTimeout, "connect"),
    (httpx.ReadTimeout, "read"),
    (httpx.WriteTimeout, "write"),
    (httpx.PoolTimeout, "pool"),
)


def _was_cut(exc: httpx.TimeoutException, own: dict[str, Any], left: float) -> bool:
    """Did the timeout that ran out end at the deadline rather than at the
    request's own (it was cut to the time left)? Judged by the timeouts, not
    by the clock, which a test's clock may not move while IO waits."""
    for kind, phase in _PHASES:
        if isinstance(exc, kind):
            mine = own.get(phase)
            return mine is None or left < mine
    return False


def race(
    attempts: Callable[[int], Attempt[T] | None],
    delay: float,
    max_hedges: int,
    answered: Callable[[T], bool],
    discard: Callable[[T], None],
) -> tuple[int, T]:
    """Hedged attempts, each in a thread of its own: start ``attempts(0)``;
    each time ``delay`` seconds pass with no answer, start ``attempts(n)``
    (``None``: no more may start), up to ``max_hedges`` of them. The first
    result that is ``answered`` wins; when every attempt started has ended
    without one, the last result does. A thread cannot be cancelled: an
    attempt that loses is ``discard``ed when it ends, in its own thread.
    Returns the winner's index and result."""
    threads = _Threads(discard)
    first = attempts(0)
    assert first is not None
    threads.start(0, first)
    running = started = 1
    winner: tuple[int, T] | None = None
    last: tuple[int, T] | None = None
    try:
        while winner is None:
            got = threads.next(delay if started <= max_hedges else None)
            if got is None:  # no answer in time: hedge
                attempt = attempts(started)
                if attempt is None:
                    started = max_hedges + 1  # refused: no more hedges
                else:
                    threads.start(started, attempt)
                    started += 1
                    running += 1
                continue
            running -= 1
            if answered(got[1]) or running == 0:
                winner = got
                break
            if last is not None:
                discard(last[1])
            last = got
    finally:
        threads.finish(winner, last)
    assert winner is not None
    return winner


class _Threads(Generic[T]):
    """The attempts of one race, and the results they hand in until it is decided."""

    def __init__(self, discard: Callable[[T], None]) -> None:
        self._discard = discard
        self._results: queue.SimpleQueue[tuple[int, T]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._decided = False

    def start(self, index: int, attempt: Callable[[], T]) -> None:
        _WORKERS.run(functools.partial(self._run, index, attempt))

    def _run(self, index: int, attempt: Callable[[], T]) -> None:
        result = attempt()
        with self._lock:
            late = self._decided
            if not late:
                self._results.put((index, result))
        if late:  # the race is over: this one lost
            self._discard(result)

    def next(self, timeout: float | None) -> tuple[int, T] | None:
        try:
            return self._results.get(timeout=timeout)
        except queue.Empty:
            return None

    def finish(self, winner: tuple[int, T] | None, last: tuple[int, T] | None) -> None:
        """Decided: discard every result but the winner; later ones discard themselves."""
        with self._lock:
            self._decided = True
        losers = [last] if last is not None and last is not winner else []
        while not self._results.empty():
            losers.append(self._results.get_nowait())
        for _, result in losers:
            self._discard(result)


class _Workers:
    """Threads for the attempts of hedged calls, reused: a race hands its
    attempt to an idle thread, or starts one when none is idle (so a hung
    attempt never holds up another call's). A thread idle for ``IDLE``
    seconds ends."""

    IDLE = 30.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue[Callable[[], object]]] = []

    def run(self, job: Callable[[], object]) -> None:
        with self._lock:
            inbox = self._idle.pop() if self._idle else None
        if inbox is None:
            inbox = queue.SimpleQueue()
            threading.Thread(
                target=self._serve, args=(inbox,), name="resilient_http-hedge", daemon=True
            ).start()
        inbox.put(job)

    def _serve(self, inbox: queue.SimpleQueue[Callable[[], object]]) -> None:
        while True:
            try:
                job = inbox.get(timeout=self.IDLE)
            except queue.Empty:
                with self._lock:
                    if inbox in self._idle:
                        self._idle.remove(inbox)
                        return
                continue  # a job was handed over as the wait ended
            try:
                job()
            except Exception:  # an attempt returns its errors: this is a bug
                logger.exception("resilient_http: a hedged attempt raised")
            with self._lock:
                self._idle.append(inbox)


_WORKERS = _Workers()


def emitter(listeners: Iterable[Listener | Callable[[Event], object]]) -> Emitter:
    """Listeners must be sync: nothing would run an async one."""
    listeners = tuple(listeners)
    for listener in listeners:
        if is_async_callable(listener):
            raise TypeError(
                f"listener {listener!r} is async: a sync transport calls its listeners in "
                "the calling thread, so they must be plain functions"
            )
    return Emitter(listeners)


def check_fallback(fn: object, what: str) -> None:
    """Fallbacks must be sync callables."""
    if not callable(fn):
        raise TypeError(f"{what} must be callable, got {fn!r}")
    if is_async_callable(fn):
        raise TypeError(f"{what} is async ({fn!r}): a sync transport needs a plain function")


def check_store(store: object) -> None:
    """A store whose hooks are coroutines cannot serve threads."""
    if store is not None and is_async_callable(getattr(store, "admit_probe", None)):
        raise TypeError(
            f"{type(store).__name__} is an async store: SyncResilientTransport needs a store "
            "with sync hooks (or none: each process keeps its own breakers)"
        )


def fallback_result(result: object) -> object:
    """What a fallback returned; an awaitable is an error here."""
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()
        raise TypeError("a fallback returned an awaitable: a sync transport cannot await it")
    return result


def settle(owed: list[Awaitable[object]]) -> None:
    """Sync listeners owe nothing; anything awaitable a listener returned is dropped."""
    if owed:
        run_detached(owed)


class Misuse:
    """What ``httpx.AsyncClient`` would call on a transport: each says what to use instead."""

    def _async_use(self, *args: object) -> NoReturn:
        raise TypeError(
            f"{type(self).__name__} is a sync transport (httpx.BaseTransport): use it with "
            "httpx.Client(transport=...), or use ResilientTransport with httpx.AsyncClient"
        )

    handle_async_request = __aenter__ = __aexit__ = aclose = _async_use
