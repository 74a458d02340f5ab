# Generated from resilient_http/_async/_io.py by tests/codegen.py: do not edit.
"""What the async binding awaits, apart from the inner transport: the
bulkhead, backoff sleeps an opening circuit cuts short, the deadline, shields
and the listeners a call owes. anyio, so asyncio and trio alike.

``resilient_http/_sync/_io.py`` is the threaded twin of this module, written
by hand. Everything else in ``_sync`` is generated from ``_async``
(``python -m tests.codegen``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Awaitable, Callable, Iterable
from typing import NoReturn

import anyio
import httpx2

from resilient_http._breaker import Breaker, Clock
from resilient_http._events import Emitter, Event, Listener, run_detached
from resilient_http.httpx2._exceptions import DeadlineExceeded

__all__ = [
    "Breaker",
    "Lock",
    "Misuse",
    "Semaphore",
    "Sleep",
    "Sleeper",
    "acquire",
    "check_fallback",
    "check_store",
    "emitter",
    "fallback_result",
    "move_on_after",
    "run_detached",
    "send_by",
    "settle",
    "shielded",
    "sleep",
]

Sleep = Callable[[float], Awaitable[None]]
#: The default backoff sleep.
sleep: Sleep = anyio.sleep
#: The bulkhead.
Semaphore = anyio.Semaphore


class Lock:
    """The host map's lock: nothing to guard on one event loop."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


async def acquire(semaphore: anyio.Semaphore, max_wait: float) -> bool:
    """A bulkhead slot, waiting at most ``max_wait`` seconds for one."""
    # A free slot is taken at once: no timer, no trip through the event loop
    # (``Semaphore.acquire`` checkpoints even when a slot is free).
    try:
        semaphore.acquire_nowait()
    except anyio.WouldBlock:
        if max_wait <= 0:
            return False
    else:
        return True
    with anyio.move_on_after(max_wait):
        await semaphore.acquire()
        return True
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
    timeout."""
    if deadline == math.inf:
        return await transport.handle_async_request(request)
    with anyio.move_on_after(max(0.0, deadline - clock())):
        return await transport.handle_async_request(request)
    raise DeadlineExceeded(f"retry deadline reached for {request.method}", request=request)


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
