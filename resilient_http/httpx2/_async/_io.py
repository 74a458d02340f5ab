# Generated from resilient_http/_async/_io.py by tests/codegen.py: do not edit.
"""What the async binding awaits, apart from the inner transport: the
bulkhead, backoff sleeps an opening circuit cuts short, the deadline, shields
and the listeners a call owes. anyio, so asyncio and trio alike.

``resilient_http/_sync/_io.py`` is the threaded twin of this module, written
by hand. Everything else in ``_sync`` is generated from ``_async``
(``python -m tests.codegen``).
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import itertools
import math
import sys
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ClassVar, Generic, NoReturn, TypeAlias, TypeVar

import anyio
import httpx2
from anyio.streams.memory import MemoryObjectReceiveStream

from resilient_http._breaker import Breaker, Clock
from resilient_http._events import Emitter, Event, Listener, run_detached
from resilient_http.httpx2._exceptions import deadline_reached

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

Sleep = Callable[[float], Awaitable[None]]
#: What a call gives before it is awaited: a coroutine to await.
Pending: TypeAlias = Awaitable[T]
#: One attempt of a race, started by calling it.
Attempt: TypeAlias = Callable[[], Awaitable[T]]
#: The default backoff sleep.
sleep: Sleep = anyio.sleep


class Lock:
    """The host map's lock: nothing to guard on one event loop."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


class Semaphore:
    """A host's bulkhead: ``free`` slots, taken at once while there are any,
    else waited for in arrival order. A released slot goes straight to the
    first waiter, so ``free`` is never above zero while anyone waits.

    A free slot costs one test and one subtraction: this runs for every call
    to a host with a bulkhead (``anyio.Semaphore`` costs several times more
    even when it does not wait). One event loop, so no lock."""

    __slots__ = ("free", "waiters")

    def __init__(self, slots: int) -> None:
        self.free = slots
        self.waiters: collections.deque[anyio.Event] = collections.deque()

    def release(self) -> None:
        """Give a slot back: to the first waiter, else to the free ones."""
        if self.waiters:
            self.waiters.popleft().set()  # (its slot now; ``free`` stays as it is)
        else:
            self.free += 1


def try_acquire(semaphore: Semaphore) -> bool:
    """A bulkhead slot if one is free now."""
    if semaphore.free > 0:
        semaphore.free -= 1
        return True
    return False


async def acquire(semaphore: Semaphore, max_wait: float) -> bool:
    """A bulkhead slot, waiting at most ``max_wait`` seconds for one. A free
    slot is taken at once: no timer, no trip through the event loop."""
    if semaphore.free > 0:
        semaphore.free -= 1
        return True
    if max_wait <= 0:
        return False
    handed = anyio.Event()  # set by ``release`` when a slot is this waiter's
    semaphore.waiters.append(handed)
    try:
        with anyio.move_on_after(max_wait):
            await handed.wait()
    except BaseException:  # cancelled while queued
        if handed.is_set():
            semaphore.release()  # handed a slot it will not use: pass it on
        else:
            semaphore.waiters.remove(handed)
        raise
    if handed.is_set():  # (maybe in the same moment the wait ran out)
        return True
    semaphore.waiters.remove(handed)
    return False


class Sleeper:
    """One backoff sleep, which ``cancel()`` (the circuit opening) cuts short."""

    __slots__ = ("_scope",)

    def __init__(self) -> None:
        self._scope = anyio.CancelScope()

    def cancel(self) -> None:
        self._scope.cancel()

    async def sleep(self, sleep: Sleep, seconds: float) -> bool:
        """``False`` when cut short."""
        with self._scope:
            await sleep(seconds)
        return not self._scope.cancel_called


def move_on_after(seconds: float) -> anyio.CancelScope:
    """A block abandoned after ``seconds`` (the code after it runs then)."""
    return anyio.move_on_after(seconds)


def shielded() -> anyio.CancelScope:
    """A block that finishes even when the call is being cancelled."""
    return anyio.CancelScope(shield=True)


async def send_by(
    transport: httpx2.AsyncBaseTransport, request: httpx2.Request, clock: Clock, deadline: float
) -> httpx2.Response:
    """One attempt, cut off at ``deadline`` (on ``clock``; ``inf``: none). Only
    called with time left: a cut attempt was really sent, and counts as a
    timeout.

    On asyncio (3.11+) the cut is a cancellation of the task, taken back when
    the attempt ends in time; one timer per event loop serves every attempt
    (a cancel scope, or a timer each, costs several times more, and this runs
    for every attempt). Elsewhere (trio, or asyncio before 3.11, which cannot
    take a cancellation back) it is a cancel scope."""
    if deadline == math.inf:
        return await transport.handle_async_request(request)
    left = deadline - clock()
    if left < 0.0:
        left = 0.0
    cut = _cut(left)
    if cut is None:
        with anyio.move_on_after(left):
            return await transport.handle_async_request(request)
        raise deadline_reached(request)
    deadlines, key, task, cancelling = cut
    try:
        response = await transport.handle_async_request(request)
    except asyncio.CancelledError:
        if deadlines.withdraw(key, task, cancelling):  # the deadline's, and nobody else's
            raise deadline_reached(request) from None
        raise
    except BaseException:
        deadlines.withdraw(key, task, cancelling)
        raise
    deadlines.withdraw(key, task, cancelling)
    return response


def _cut(seconds: float) -> tuple[_Deadlines, int, Any, int] | None:
    """A cut of the running task ``seconds`` from now: the table it is on, its
    key there, the task (an asyncio.Task; its cancelling/uncancel are Python
    3.11+, unknown to the 3.10 stubs mypy checks against) and the cancellations
    the task had before it. ``None`` where a cancellation cannot be taken back
    (trio; asyncio before 3.11).

    A cut is a key and a tuple, not an object: one is made for every attempt
    with a deadline, and an instance of a class costs several times more."""
    if not _UNCANCEL:
        return None
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # not asyncio
        return None
    task: Any = _running_task(loop)
    if task is None:
        return None
    deadlines = _Deadlines.last
    if deadlines is None or deadlines.loop() is not loop:
        deadlines = _Deadlines.of(loop)
    clock = loop.time  # (_loop_time written out: this runs for every attempt)
    now = time.monotonic() if getattr(clock, "__func__", None) is _BASE_TIME else clock()
    when = now + seconds
    key = next(deadlines.keys)
    deadlines.cuts[key] = (task, when)
    if when < deadlines.armed:
        deadlines.arm(loop, when)
    return deadlines, key, task, task.cancelling()


_UNCANCEL = hasattr(asyncio.Task, "uncancel")

# The running task, read where it is kept: ``asyncio.current_task`` is a Python
# wrapper around this lookup on 3.11 (C from 3.12), and it runs for every attempt.
_tasks = getattr(asyncio.tasks, "_current_tasks", None)
_running_task: Callable[[asyncio.AbstractEventLoop], asyncio.Task[Any] | None] = (
    _tasks.get if sys.version_info < (3, 12) and isinstance(_tasks, dict) else asyncio.current_task
)


_BASE_TIME = asyncio.BaseEventLoop.time


def _loop_time(loop: asyncio.AbstractEventLoop) -> float:
    """The loop's time, as its timers read it. asyncio's own method only
    returns ``time.monotonic()``, through a Python call: that is read directly.
    Any other clock is asked: uvloop's, a subclass's, and a fake clock a test
    helper sets on the loop itself (looked up on every call: it may be set
    after the loop's first attempt)."""
    clock = loop.time
    if getattr(clock, "__func__", None) is _BASE_TIME:
        return time.monotonic()
    return clock()


class _Deadlines:
    """The cuts pending on one event loop, and one timer, for the soonest.
    An attempt ending in time only leaves the table; the timer, when it goes
    off, cancels the tasks whose cuts are due (taking them off the table) and
    is set again for the next."""

    __slots__ = ("__weakref__", "armed", "cuts", "keys", "loop", "timer")

    _of: ClassVar[weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines]] = (
        weakref.WeakKeyDictionary()
    )
    last: ClassVar[_Deadlines | None] = None  # the table used last (one loop, usually)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # The loop and its timer (which holds the loop), weakly: ``_of`` is
        # keyed by the loop weakly, and a strong reference from its value
        # would keep every loop that ever cut an attempt alive.
        self.loop = weakref.ref(loop)
        self.cuts: dict[int, tuple[Any, float]] = {}  # key: (task, when on the loop's clock)
        self.keys = itertools.count()
        self.timer: weakref.ref[asyncio.TimerHandle] | None = None
        self.armed = math.inf  # when the timer goes off

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> _Deadlines:
        found = cls._of.get(loop)
        if found is None:
            found = cls._of[loop] = cls(loop)
        cls.last = found
        return found

    def withdraw(self, key: int, task: Any, cancelling: int) -> bool:
        """Take the cut ``key`` off the table; if it went off meanwhile, take
        the cancellation it sent back. ``True`` when the task then has no more
        than the ``cancelling`` it had before the cut (so the one it got was
        the cut's, to report)."""
        if self.cuts.pop(key, None) is not None:
            return False  # it never went off
        return bool(task.uncancel() <= cancelling)

    def arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        timer = None if self.timer is None else self.timer()
        if timer is not None:
            timer.cancel()
        self.armed = when
        self.timer = weakref.ref(loop.call_at(when, self._fire))  # (the loop holds it)

    def _fire(self) -> None:
        self.timer, self.armed = None, math.inf
        loop = asyncio.get_running_loop()  # (this table's: its timer went off)
        now = _loop_time(loop)
        soonest = math.inf
        for key, (task, when) in list(self.cuts.items()):
            if when <= now:
                del self.cuts[key]
                task.cancel()
            elif when < soonest:
                soonest = when
        if soonest < math.inf:
            self.arm(loop, soonest)


async def race(
    attempts: Callable[[int], Attempt[T] | None],
    delay: float,
    max_hedges: int,
    answered: Callable[[T], bool],
    discard: Callable[[T], Awaitable[None]],
) -> tuple[int, T]:
    """Hedged attempts: start ``attempts(0)``; each time ``delay`` seconds pass
    with no answer, start ``attempts(n)`` (``None``: no more may start), up to
    ``max_hedges`` of them. The first result that is ``answered`` wins; when
    every attempt started has ended without one, the last result does. The
    others are cancelled; every result that does not win is ``discard``ed, also
    when the race itself is cancelled. Returns the winner's index and result.
    Attempts return their errors as results (a cancelled one raises).

    On asyncio the first attempt runs in the caller's task and a hedge is a
    task started by a timer, so a call that answers in time costs a timer
    (no task, no trip through the event loop); elsewhere (trio) every attempt
    is a task of one task group."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return await _race_in_tasks(attempts, delay, max_hedges, answered, discard)
    return await _AsyncioRace(loop, attempts, delay, max_hedges, answered, discard).run()


class _AsyncioRace(Generic[T]):
    """One race on asyncio: the first attempt in the caller's task, hedges in
    tasks a timer starts. A hedge that wins cancels the first attempt's scope;
    an attempt that ends after the race is discarded in a task of its own."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        attempts: Callable[[int], Attempt[T] | None],
        delay: float,
        max_hedges: int,
        answered: Callable[[T], bool],
        discard: Callable[[T], Awaitable[None]],
    ) -> None:
        self.loop = loop
        self.attempts = attempts
        self.delay = delay
        self.max_hedges = max_hedges
        self.answered = answered
        self.discard = discard
        self.scope = anyio.CancelScope()  # the first attempt's
        self.started = 1
        self.timer: asyncio.TimerHandle | None = None
        self.hedges: set[asyncio.Task[None]] = set()
        self.results: list[tuple[int, T]] = []  # ended, not (yet) the winner
        self.winner: tuple[int, T] | None = None
        self.waiting: asyncio.Future[None] | None = None
        self.over = False

    async def run(self) -> tuple[int, T]:
        first = self.attempts(0)
        assert first is not None
        self._arm()
        try:
            ended: tuple[int, T] | None = None
            with self.scope:  # cancelled by a hedge that wins
                ended = (0, await first())
            self._stop_hedging()
            if ended is not None:
                self._ended(ended)
            while self.winner is None and self.hedges:
                self.waiting = self.loop.create_future()
                await self.waiting
            if self.winner is None:  # every attempt failed: the last failure is the outcome
                self.winner = self.results[-1]
            winner = self.winner
        finally:
            await self._close()
        return winner

    def _arm(self) -> None:
        if self.started <= self.max_hedges:
            self.timer = self.loop.call_later(self.delay, self._hedge)

    def _stop_hedging(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _hedge(self) -> None:
        self.timer = None
        attempt = self.attempts(self.started)
        if attempt is None:
            return  # refused: no more hedges
        task = self.loop.create_task(self._run(self.started, attempt))
        self.started += 1
        self.hedges.add(task)
        task.add_done_callback(self._hedge_done)
        self._arm()

    async def _run(self, index: int, attempt: Attempt[T]) -> None:
        result = (index, await attempt())
        if self.over:  # the race is over: this one lost
            await self.discard(result[1])
        else:
            self._ended(result)

    def _ended(self, result: tuple[int, T]) -> None:
        if self.winner is None and self.answered(result[1]):
            self.winner = result
            if result[0]:  # a hedge won: the first attempt, still running, is cancelled
                self.scope.cancel()
        else:
            self.results.append(result)

    def _hedge_done(self, task: asyncio.Task[None]) -> None:
        self.hedges.discard(task)
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_result(None)

    async def _close(self) -> None:
        self.over = True
        self._stop_hedging()
        hedges = list(self.hedges)
        for task in hedges:
            task.cancel()
        with anyio.CancelScope(shield=True):
            if hedges:  # the losers have recorded themselves (ignored) when this returns
                await asyncio.wait(hedges)
            for result in self.results:
                if result is not self.winner:
                    await self.discard(result[1])


async def _race_in_tasks(
    attempts: Callable[[int], Attempt[T] | None],
    delay: float,
    max_hedges: int,
    answered: Callable[[T], bool],
    discard: Callable[[T], Awaitable[None]],
) -> tuple[int, T]:
    """``race`` with every attempt a task of one task group (trio)."""
    send, receive = anyio.create_memory_object_stream[tuple[int, T]](max_hedges + 1)
    winner: tuple[int, T] | None = None
    last: tuple[int, T] | None = None

    async def run(index: int, attempt: Attempt[T]) -> None:
        send.send_nowait((index, await attempt()))

    first = attempts(0)
    assert first is not None
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(run, 0, first)
            running = started = 1
            while winner is None:
                got: tuple[int, T] | None = None
                with anyio.move_on_after(delay if started <= max_hedges else math.inf):
                    got = await receive.receive()
                if got is None:  # no answer in time: hedge
                    attempt = attempts(started)
                    if attempt is None:
                        started = max_hedges + 1  # refused: no more hedges
                    else:
                        group.start_soon(run, started, attempt)
                        started += 1
                        running += 1
                    continue
                running -= 1
                if answered(got[1]) or running == 0:
                    winner = got
                    break
                if last is not None:
                    await discard(last[1])
                last = got
            group.cancel_scope.cancel()
    finally:
        send.close()
        with anyio.CancelScope(shield=True):
            for _, result in _losers(last, winner, receive):
                await discard(result)
        receive.close()
    assert winner is not None
    return winner


def _losers(
    last: tuple[int, T] | None,
    winner: tuple[int, T] | None,
    receive: MemoryObjectReceiveStream[tuple[int, T]],
) -> list[tuple[int, T]]:
    """The results that did not win: the last one kept, and those not yet read."""
    losers = [last] if last is not None and last is not winner else []
    while True:
        try:
            losers.append(receive.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream):
            return losers


def emitter(listeners: Iterable[Listener | Callable[[Event], object]]) -> Emitter:
    """Listeners may be sync or async."""
    return Emitter(listeners)


def check_fallback(fn: object, what: str) -> None:
    """Fallbacks may be sync or async."""
    if not callable(fn):
        raise TypeError(f"{what} must be callable, got {fn!r}")


def check_store(store: object) -> None:
    """Any store: its hooks are awaited."""


async def fallback_result(result: object) -> object:
    """What a fallback returned, awaited if it is awaitable."""
    if inspect.isawaitable(result):
        return await result
    return result


async def settle(owed: list[Awaitable[object]]) -> None:
    """Run the async listener calls a call's verdict set off."""
    if owed:
        await Emitter.settle(owed)


class Misuse:
    """What ``httpx2.Client`` would call on a transport: each says what to use instead."""

    def _sync_use(self, *args: object) -> NoReturn:
        raise TypeError(
            f"{type(self).__name__} is an async transport (httpx2.AsyncBaseTransport): use it "
            "with httpx2.AsyncClient(transport=...), or use SyncResilientTransport with httpx2.Client"
        )

    handle_request = __enter__ = __exit__ = close = _sync_use
