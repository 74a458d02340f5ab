"""Events and listeners.

A listener is any callable taking one event; it may be sync or ``async``.
Pass listeners as ``ResilientTransport(listeners=[...])``. Events are frozen,
slotted dataclasses carrying the breaker key (``host``), never a URL, a query
string or a header value. A listener that raises is logged on the
``resilient_http`` logger and never breaks the request.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import inspect
import logging
import math
import sys
import types
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from ._breaker import CircuitState
from ._outcomes import Outcome

__all__ = [
    "AttemptFinished",
    "BreakerEvicted",
    "CallRejected",
    "Event",
    "FallbackServed",
    "Hedged",
    "Listener",
    "RetryScheduled",
    "StateChanged",
]

logger = logging.getLogger("resilient_http")

E = TypeVar("E", bound=type)


def _filled_by_slots(cls: E) -> E:
    """Give a frozen, slotted event dataclass a constructor that fills each slot
    through its own descriptor. The one ``dataclass`` writes calls
    ``object.__setattr__`` per field (to get past ``frozen``), about twice as
    slow, and an event is built for every attempt when anyone listens. The
    signature, ``fields()``, ``repr``, equality, hashing and frozenness are
    unchanged (a later assignment still raises ``FrozenInstanceError``)."""
    names = [field.name for field in dataclasses.fields(cls)]
    setters = {f"_set_{name}": getattr(cls, name).__set__ for name in names}
    lines = [f"def __init__(self, {', '.join(names)}):"]
    lines += [f"    _set_{name}(self, {name})" for name in names]
    namespace: dict[str, Any] = {}
    exec("\n".join(lines), setters, namespace)  # (names from fields() only)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    setattr(cls, "__init__", init)  # noqa: B010 (mypy forbids assigning a class's __init__)
    return cls


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event. ``host`` is the breaker key, e.g. ``"api.example.com:443"``."""

    host: str


@_filled_by_slots
@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    """A circuit moved from ``old`` to ``new``; ``retry_after`` is set when it opened."""

    old: CircuitState
    new: CircuitState
    retry_after: float


@_filled_by_slots
@dataclass(frozen=True, slots=True)
class AttemptFinished(Event):
    """One attempt reached a verdict: ``outcome`` is ``success``, ``failure`` or ``ignored``
    (cancelled, or an error that is not the upstream's fault). ``duration`` runs from
    the attempt's start until its verdict (the end of the body for closed-state calls)."""

    method: str
    outcome: Outcome
    duration: float
    status_code: int | None
    error: str | None


@_filled_by_slots
@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """Attempt ``attempt`` failed with ``reason``; the next one starts in ``wait`` seconds."""

    method: str
    attempt: int
    wait: float
    reason: str


@_filled_by_slots
@dataclass(frozen=True, slots=True)
class CallRejected(Event):
    """A call was rejected without touching the network (``reason``: ``circuit_open``,
    ``bulkhead_full``)."""

    method: str
    reason: str
    retry_after: float


@_filled_by_slots
@dataclass(frozen=True, slots=True)
class FallbackServed(Event):
    """A rejected call was answered by a fallback (``source``: ``stale_cache`` or
    ``fallback``) instead of raising."""

    method: str
    reason: str
    source: str


@_filled_by_slots
@dataclass(frozen=True, slots=True)
class Hedged(Event):
    """A call sent ``hedges`` extra attempts because its first had not answered in
    ``delay`` seconds; ``winner`` is the attempt whose answer the caller got (0:
    the first one, 1: the first hedge...). The others were cancelled and closed."""

    method: str
    hedges: int
    delay: float
    winner: int


@_filled_by_slots
@dataclass(frozen=True, slots=True)
class BreakerEvicted(Event):
    """An idle closed breaker left the bounded breaker map (drop its metric series)."""


class Listener(Protocol):
    """Anything called with each event; may return an awaitable."""

    def __call__(self, event: Event, /) -> Awaitable[None] | None: ...


#: The async listener calls owed by the call running in this context: each call
#: collects its own and runs them before it returns (see ``Emitter.collect``).
_owed: contextvars.ContextVar[list[Awaitable[object]] | None] = contextvars.ContextVar(
    "resilient_http.owed", default=None
)

#: Detached asyncio tasks, kept referenced until done.
_background: set[asyncio.Task[None]] = set()


def is_async_callable(fn: object) -> bool:
    """An ``async def`` function, or an object whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 (the method, not callable())
    )


def _direct(listener: Callable[[Event], object]) -> Callable[[Event], object]:
    """The cheapest callable that calls ``listener``: an instance of a class
    with a Python ``__call__``, through that method bound (a bound method is
    called directly; an instance has its ``__call__`` looked up on every
    call); anything else (functions, ``functools.partial``) as it is. The
    method is the class's, as ``listener(event)`` would call it (never an
    instance attribute of that name), looked up once, when the transport is
    built."""
    for cls in type(listener).__mro__:
        if "__call__" in cls.__dict__:
            # as stored: a staticmethod's or classmethod's function is not bound here
            method = cls.__dict__["__call__"]
            if isinstance(method, types.FunctionType):
                return types.MethodType(method, listener)
            break
    return listener


#: The method through which a listener of ours (``PrometheusMetrics``) takes an
#: ``AttemptFinished``'s fields without the event: ``(host, method, outcome,
#: duration, status_code, error)``, as ``__call__(AttemptFinished(...))`` would.
ATTEMPT_HOOK = "_resilient_http_attempt_finished"
_PASSES_ATTEMPTS = "__resilient_http_passes_attempts__"

C = TypeVar("C", bound=Callable[..., object])


def passes_attempts_to_hook(call: C) -> C:
    """Mark a listener class's ``__call__`` as one that hands an exact
    ``AttemptFinished`` to the listener's ``ATTEMPT_HOOK`` and does nothing
    else with it: a transport may then call the hook without building the
    event. Any other ``__call__`` (a subclass's own, one patched in a test)
    gets events."""
    call.__dict__[_PASSES_ATTEMPTS] = True
    return call


def _attempt_hook(listener: object) -> Callable[..., object] | None:
    """The listener's ``ATTEMPT_HOOK`` as its ``__call__`` reaches it (through
    the instance), when that ``__call__`` is marked ``passes_attempts_to_hook``;
    else ``None``. An ``async def`` hook would never be awaited: events instead."""
    call = getattr(type(listener), "__call__", None)  # noqa: B004 (the method)
    if not isinstance(call, types.FunctionType) or call.__dict__.get(_PASSES_ATTEMPTS) is not True:
        return None
    hook = getattr(listener, ATTEMPT_HOOK, None)
    if not callable(hook) or inspect.iscoroutinefunction(hook):
        return None
    return hook  # type: ignore[no-any-return]


class Emitter:
    """Calls listeners and collects what async listeners return.

    An async listener's awaitable is owed by the call whose work emitted the
    event: the call collects its own (``collect``) and runs them before it
    returns (``settle``), so one call never waits for another call's listeners.
    Events from outside any call (``force_open()`` from your own code, a fleet
    store's background task) and the listeners of a cancelled call are not
    charged to anybody: they run in the background (``run_detached``).
    """

    __slots__ = ("_calls", "attempt_hooks", "listeners", "owing")

    def __init__(self, listeners: Iterable[Listener | Callable[[Event], object]]) -> None:
        listeners = tuple(listeners)
        for listener in listeners:
            if not callable(listener):
                raise TypeError(f"listeners must be callables, got {listener!r}")
        self.listeners: tuple[Callable[[Event], object], ...] = listeners
        # What emit calls: an object's bound ``__call__`` rather than the object
        # (calling an instance looks its ``__call__`` up on every call; this
        # runs for every attempt), a function as it is; and whether the
        # listener is ``async def``: only its calls are owed by the call that
        # emitted the event (anything else it returns runs in the background).
        self._calls = tuple(
            (_direct(listener), listener, is_async_callable(listener)) for listener in listeners
        )
        # Is any listener ``async def``? Only then does a call collect what it owes.
        self.owing = any(owing for _, _, owing in self._calls)
        # When every listener takes an attempt's fields (``ATTEMPT_HOOK``), no
        # AttemptFinished is built: ``attempt_finished`` hands them the fields.
        # An event costs several microseconds, and one ends every attempt.
        taking = [
            (hook, listener)
            for listener in listeners
            if (hook := _attempt_hook(listener)) is not None
        ]
        self.attempt_hooks: tuple[tuple[Callable[..., object], object], ...] | None = (
            tuple(taking) if taking and len(taking) == len(listeners) else None
        )

    def emit(self, event: Event) -> None:
        for call, listener, owing in self._calls:
            try:
                result = call(event)
            except Exception:
                logger.exception("resilient_http listener %r raised", listener)
                continue
            if result is not None and inspect.isawaitable(result):
                # only an ``async def`` listener's call is owed by the call that
                # emitted the event; anything else returned runs in the background
                owed = _owed.get() if owing else None
                if owed is not None:
                    owed.append(result)
                else:
                    run_detached([result])

    def attempt_finished(
        self,
        host: str,
        method: str,
        outcome: Outcome,
        duration: float,
        status_code: int | None,
        error: str | None,
    ) -> None:
        """What ``emit(AttemptFinished(...))`` does, when ``attempt_hooks`` is set:
        each listener's hook called with the event's fields (it returns nothing)."""
        for hook, listener in self.attempt_hooks or ():
            try:
                hook(host, method, outcome, duration, status_code, error)
            except Exception:
                logger.exception("resilient_http listener %r raised", listener)

    @staticmethod
    def collect() -> tuple[list[Awaitable[object]], contextvars.Token[Any]]:
        """Start collecting this context's owed listener calls; pass the token
        to ``stop_collecting`` when the call's work is done."""
        owed: list[Awaitable[object]] = []
        return owed, _owed.set(owed)

    @staticmethod
    def stop_collecting(token: contextvars.Token[Any]) -> None:
        _owed.reset(token)

    @staticmethod
    async def settle(owed: list[Awaitable[object]]) -> None:
        """Run the call's owed listener calls, one after the other. Cancelled
        meanwhile: the cancellation goes on at once, and the listener calls
        finish in the background, the one running at that moment included
        (each runs in a task of its own that the call waits for)."""
        while owed:
            awaitable = owed.pop(0)
            try:
                await _waited_in_background(awaitable)
            except BaseException:
                run_detached(owed)
                owed.clear()
                raise


async def _waited_in_background(awaitable: Awaitable[object]) -> None:
    """Run one listener call in a task of its own (an asyncio task, a trio
    system task) and wait for it; a cancellation of the waiter leaves it
    running. Its error is logged."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        await asyncio.shield(_in_task(loop, _run_all([awaitable]), contextvars.copy_context()))
        return
    import trio

    done = trio.Event()
    raised: list[BaseException] = []

    async def run() -> None:
        try:
            await _run_all([awaitable])
        except trio.Cancelled:  # (the run is ending: nobody waits any more)
            raise
        except BaseException as exc:  # not an Exception: the waiter raises it, as asyncio's would
            raised.append(exc)
        finally:
            done.set()

    trio.lowlevel.spawn_system_task(run, context=contextvars.copy_context())
    await done.wait()
    if raised:
        raise raised[0]


def _in_task(
    loop: asyncio.AbstractEventLoop,
    coroutine: Coroutine[Any, Any, None],
    context: contextvars.Context,
) -> asyncio.Task[None]:
    """An asyncio task running ``coroutine`` in ``context``, kept referenced
    until it is done (the loop itself keeps only a weak reference)."""
    task = context.run(loop.create_task, coroutine)
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


async def _run_all(awaitables: list[Awaitable[object]]) -> None:
    for awaitable in awaitables:
        try:
            await awaitable
        except Exception:
            logger.exception("resilient_http async listener raised")


def run_detached(awaitables: list[Awaitable[object]]) -> None:
    """Run listener calls that no call waits for, in a task of their own: an
    asyncio task or a trio system task, in a fresh context (so their events are
    charged to nobody). With no event loop running, they are dropped (logged)."""
    if not awaitables:
        return
    batch = list(awaitables)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    if loop is not None:
        _in_task(loop, _run_all(batch), contextvars.Context())
        return
    if in_trio():
        import trio

        trio.lowlevel.spawn_system_task(_run_all, batch, context=contextvars.Context())
        return
    for awaitable in batch:
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
    logger.warning(
        "resilient_http: %d async listener call(s) dropped: no event loop to run them",
        len(batch),
    )


def in_trio() -> bool:
    """Is this thread inside ``trio.run``? (Never imports trio.)"""
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    in_trio_run = getattr(trio.lowlevel, "in_trio_run", None)
    return bool(in_trio_run()) if in_trio_run is not None else False


def log_transition(
    host: str, old: CircuitState, new: CircuitState, retry_after: float, forced: bool
) -> None:
    if new is CircuitState.OPEN:
        if forced:
            logger.warning("circuit for %s held open by hand (was %s)", host, old.value)
        elif math.isinf(retry_after):  # recovery_timeout=inf: no probe will ever go
            logger.warning("circuit for %s opened (was %s) until reset", host, old.value)
        else:
            logger.warning(
                "circuit for %s opened (was %s); next probe in %.3fs", host, old.value, retry_after
            )
    elif new is CircuitState.HALF_OPEN:
        logger.info("circuit for %s half-open: probing", host)
    else:
        logger.info("circuit for %s closed (was %s)", host, old.value)
