"""Helpers for testing code that uses resilient_http, without sleeping."""

from __future__ import annotations

__all__ = ["FakeClock"]


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

    async def sleep(self, seconds: float) -> None:
        """Record the wait and advance the clock by it, at once."""
        self.sleeps.append(seconds)
        self.advance(seconds)
