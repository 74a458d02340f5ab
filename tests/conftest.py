"""Shared fixtures: every async test runs on asyncio (debug mode) and on trio;
``server`` is a real uvicorn server on 127.0.0.1, port 0, in a thread."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

import pytest

from resilient_http.testing import FakeClock

from .server import LiveServer, start_server

pytest_plugins = ["pytester"]


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"debug": True}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, object]]:
    return request.param  # type: ignore[no-any-return]


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Mark every ``async def`` test for anyio before anyio's own hook looks at it."""
    if not isinstance(collector, pytest.Module | pytest.Class):
        return
    inner = getattr(getattr(obj, "hypothesis", None), "inner_test", obj)
    marks = getattr(obj, "pytestmark", [])
    if any(mark.name == "asyncio" for mark in marks):
        return  # a pytest-asyncio recipe: that plugin runs it
    if collector.istestfunction(obj, name) and inspect.iscoroutinefunction(inner):
        pytest.mark.anyio(obj)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def server() -> Iterator[LiveServer]:
    with start_server() as live:
        yield live


@pytest.fixture
def live(server: LiveServer) -> LiveServer:
    """The session server, with its scripted state reset for this test."""
    server.state.reset()
    return server


@pytest.fixture(scope="session")
def second_server() -> Iterator[LiveServer]:
    with start_server() as live:
        yield live


@pytest.fixture
def live2(second_server: LiveServer) -> LiveServer:
    """A second server on another port (a replica), its state reset for this test."""
    second_server.state.reset()
    return second_server
