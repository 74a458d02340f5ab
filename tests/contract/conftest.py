"""Every test in this folder runs on each binding: httpx and httpx2, async (on
asyncio and on trio) and sync (in worker threads)."""

from __future__ import annotations

import pytest

from ..bindings import BINDINGS, Binding


@pytest.fixture(params=BINDINGS, ids=str)
def binding(request: pytest.FixtureRequest) -> Binding:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(binding: Binding) -> tuple[str, dict[str, object]]:
    """The test's own event loop: the binding's (the sync ones drive threads from asyncio)."""
    return (binding.backend, {"debug": True} if binding.backend == "asyncio" else {})
