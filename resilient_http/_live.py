"""Every transport alive, of every binding, so that ``testing.isolated()`` can
give each test fresh breakers whoever built the transports, and when."""

from __future__ import annotations

import weakref
from typing import Any, Protocol


class TestClock(Protocol):
    """What ``isolated()`` runs transports on (``testing.FakeClock``)."""

    def __call__(self) -> float: ...

    def sleep(self, seconds: float, /) -> Any: ...


class Isolatable(Protocol):
    def _isolate(self, clock: TestClock | None) -> None: ...


#: Every transport alive.
LIVE: weakref.WeakSet[Isolatable] = weakref.WeakSet()
#: The clocks of the ``isolated()`` blocks running, innermost last: what
#: transports built meanwhile run on instead of their own (a test process runs
#: one test at a time).
TESTING: list[TestClock] = []
