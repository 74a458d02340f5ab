"""Helpers for testing code that uses resilient_http, without sleeping.

- :class:`FakeClock`: a clock you move by hand, and a ``sleep`` that advances it.
- :func:`isolated`: fresh breakers and no real sleeps for every transport, for
  the length of a block (or a test: the ``resilient_http`` pytest fixture).

The pytest plugin (installed with the package, no configuration) provides::

    def test_checkout(resilient_http):           # a FakeClock
        ...                                       # every transport starts afresh
        resilient_http.advance(30)                # past a recovery timeout, at once
        assert resilient_http.sleeps == [...]     # retry waits, recorded, not slept
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Generator, Iterator

from ._live import LIVE, TESTING

__all__ = ["FakeClock", "isolated"]


class FakeClock:
    """A monotonic clock you move by hand; pass it as ``clock=`` and, for retry
    waits, its :meth:`sleep` as ``sleep=`` (it advances time instead of waiting).

    >>> clock = FakeClock()
    >>> clock.advance(30)
    >>> clock()
    30.0
    """

    def __init__(self, start: float = 0.0) -> None:
        self.now = float(start)
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a monotonic clock cannot go back ({seconds!r}s)")
        self.now += seconds

    def sleep(self, seconds: float) -> Awaitable[None]:
        """Record the wait and advance the clock by it, at once. Serves both
        bindings: ``await clock.sleep(1)`` (``ResilientTransport``) and plain
        ``clock.sleep(1)`` (``SyncResilientTransport``) do the same."""
        self.sleeps.append(seconds)
        self.advance(seconds)
        return _SLEPT


class _Slept:
    """An awaitable that is already done (and harmless when never awaited)."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield


_SLEPT = _Slept()


@contextlib.contextmanager
def isolated(clock: FakeClock | None = None) -> Iterator[FakeClock]:
    """Within the block, every transport of every binding (already built, say
    at import time, or built inside) starts with no breakers and runs on ``clock``
    (a new :class:`FakeClock` by default): retry waits are recorded in
    ``clock.sleeps`` instead of slept, and recovery timeouts pass with
    ``clock.advance()``. On leaving, their breakers are forgotten again and
    their own clock and sleep come back, so nothing leaks into the next test.
    """
    clock = clock if clock is not None else FakeClock()
    for transport in list(LIVE):
        transport._isolate(clock)
    TESTING.append(clock)
    try:
        yield clock
    finally:
        TESTING.pop()
        for transport in list(LIVE):  # built before or during the block alike
            transport._isolate(None)
