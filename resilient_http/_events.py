"""Events and listeners.

A listener is any callable taking one event; it may be sync or ``async``.
Pass listeners as ``ResilientTransport(listeners=[...])``. Events are frozen,
slotted dataclasses carrying the breaker key (``host``), never a URL, a query
string or a header value. A listener that raises is logged on the
``resilient_http`` logger and never breaks the request.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal, Protocol, TypeAlias

from ._breaker import CircuitState

__all__ = [
    "AttemptFinished",
    "BreakerEvicted",
    "CallRejected",
    "Event",
    "FallbackServed",
    "Listener",
    "RetryScheduled",
    "StateChanged",
]

logger = logging.getLogger("resilient_http")

Outcome: TypeAlias = Literal["success", "failure", "ignored"]


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event. ``host`` is the breaker key, e.g. ``"api.example.com:443"``."""

    host: str


@dataclass(frozen=True, slots=True)
class StateChanged(Event):
    """A circuit moved from ``old`` to ``new``; ``retry_after`` is set when it opened."""

    old: CircuitState
    new: CircuitState
    retry_after: float


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


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """Attempt ``attempt`` failed with ``reason``; the next one starts in ``wait`` seconds."""

    method: str
    attempt: int
    wait: float
    reason: str


@dataclass(frozen=True, slots=True)
class CallRejected(Event):
    """A call was rejected without touching the network (``reason``: ``circuit_open``,
    ``bulkhead_full``)."""

    method: str
    reason: str
    retry_after: float


@dataclass(frozen=True, slots=True)
class FallbackServed(Event):
    """A rejected call was answered by a fallback (``source``: ``stale_cache`` or
    ``fallback``) instead of raising."""

    method: str
    reason: str
    source: str


@dataclass(frozen=True, slots=True)
class BreakerEvicted(Event):
    """An idle closed breaker left the bounded breaker map (drop its metric series)."""


class Listener(Protocol):
    """Anything called with each event; may return an awaitable."""

    def __call__(self, event: Event, /) -> Awaitable[None] | None: ...


class Emitter:
    """Calls listeners and writes the ``resilient_http`` log lines."""

    __slots__ = ("_pending", "listeners")

    def __init__(self, listeners: Iterable[Listener | Callable[[Event], object]]) -> None:
        listeners = tuple(listeners)
        for listener in listeners:
            if not callable(listener):
                raise TypeError(f"listeners must be callables, got {listener!r}")
        self.listeners: tuple[Callable[[Event], object], ...] = listeners
        self._pending: list[Awaitable[object]] = []

    def emit(self, event: Event) -> None:
        for listener in self.listeners:
            try:
                result = listener(event)
            except Exception:
                logger.exception("resilient_http listener %r raised", listener)
                continue
            if inspect.isawaitable(result):
                self._pending.append(result)

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    async def drain(self) -> None:
        while self._pending:
            awaitable = self._pending.pop(0)
            try:
                await awaitable
            except Exception:
                logger.exception("resilient_http async listener raised")

    def discard_pending(self) -> None:
        for awaitable in self._pending:
            close = getattr(awaitable, "close", None)
            if close is not None:
                close()
        self._pending.clear()


def log_transition(host: str, old: CircuitState, new: CircuitState, retry_after: float) -> None:
    if new is CircuitState.OPEN:
        if math.isinf(retry_after):
            logger.warning("circuit for %s held open by hand (was %s)", host, old.value)
        else:
            logger.warning(
                "circuit for %s opened (was %s); next probe in %.3fs", host, old.value, retry_after
            )
    elif new is CircuitState.HALF_OPEN:
        logger.info("circuit for %s half-open: probing", host)
    else:
        logger.info("circuit for %s closed (was %s)", host, old.value)
