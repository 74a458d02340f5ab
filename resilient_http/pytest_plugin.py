"""The pytest plugin (entry point ``resilient_http``): a fixture that gives a
test fresh breakers and no real sleeps, whoever built the transports.

    def test_fallback_when_inventory_is_down(resilient_http):
        ...                                  # resilient_http is a FakeClock
        resilient_http.advance(30)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .testing import FakeClock, isolated

__all__ = ["resilient_http"]


@pytest.fixture
def resilient_http() -> Iterator[FakeClock]:
    """Every ``ResilientTransport`` starts this test with no breakers and runs on
    this :class:`~resilient_http.testing.FakeClock` (waits recorded in
    ``.sleeps``, time moved with ``.advance()``); afterwards nothing is left
    for the next test."""
    with isolated() as clock:
        yield clock
