"""The public surface: ``__all__``, ``py.typed`` and the exception tree."""

from __future__ import annotations

import importlib.resources
import math
import types

import httpx
import pytest

import resilient_http
from resilient_http import (
    BulkheadFullError,
    CircuitOpenError,
    Policy,
    RejectedError,
    ResilientTransport,
)
from resilient_http.testing import FakeClock

#: DESIGN.md "Public names" (core table, plus the later-issue names that exist already).
DESIGN_NAMES = {
    "ResilientTransport",
    "ResilientClient",
    "Policy",
    "BreakerPolicy",
    "RetryPolicy",
    "CircuitState",
    "CircuitOpenError",
    "RejectedError",
    "BulkheadFullError",
    "RetryBudget",
    "StaleCache",
}


def test_all_is_sorted() -> None:
    assert resilient_http.__all__ == sorted(resilient_http.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(set(resilient_http.__all__)) == len(resilient_http.__all__)


def test_every_name_in_all_is_importable() -> None:
    for name in resilient_http.__all__:
        assert hasattr(resilient_http, name), name
    namespace: dict[str, object] = {}
    exec("from resilient_http import *", namespace)
    assert set(resilient_http.__all__) <= set(namespace)


def test_all_lists_every_public_member() -> None:
    """Like httpx's test_exported_members: nothing public is left out of ``__all__``."""
    public = {
        name
        for name, value in vars(resilient_http).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public == set(resilient_http.__all__) - {"__version__"}


def test_all_exports_nothing_private() -> None:
    private = [n for n in resilient_http.__all__ if n.startswith("_") and n != "__version__"]
    assert private == []
    for name in resilient_http.__all__:
        module = getattr(getattr(resilient_http, name), "__module__", "resilient_http")
        # defined in a private module, but never itself a private helper
        assert module.startswith("resilient_http"), (name, module)


def test_design_names_are_exported() -> None:
    assert set(resilient_http.__all__) >= DESIGN_NAMES


def test_version_is_a_string() -> None:
    assert isinstance(resilient_http.__version__, str)
    assert resilient_http.__version__.count(".") >= 1


def test_py_typed_is_shipped() -> None:
    marker = importlib.resources.files("resilient_http").joinpath("py.typed")
    assert marker.is_file()


def test_testing_helpers_are_importable() -> None:
    from resilient_http.testing import FakeClock as Clock

    clock = Clock(5)
    clock.advance(2.5)
    assert clock() == 7.5
    with pytest.raises(ValueError, match="-1"):
        clock.advance(-1)


# -- the exception tree ----------------------------------------------------------------


@pytest.mark.parametrize("cls", [RejectedError, CircuitOpenError, BulkheadFullError])
def test_rejections_are_httpx_transport_errors(cls: type[Exception]) -> None:
    assert issubclass(cls, httpx.TransportError)
    assert issubclass(cls, httpx.RequestError)
    assert issubclass(cls, httpx.HTTPError)
    # a rejection is not one of the errors the breaker counts as an upstream failure
    assert not issubclass(cls, httpx.NetworkError | httpx.TimeoutException)


def test_circuit_open_error_and_bulkhead_full_error_are_rejections() -> None:
    assert issubclass(CircuitOpenError, RejectedError)
    assert issubclass(BulkheadFullError, RejectedError)
    assert not issubclass(CircuitOpenError, BulkheadFullError)


def test_circuit_open_error_carries_host_and_retry_after() -> None:
    request = httpx.Request("GET", "https://api.example.com/")
    error = CircuitOpenError("api.example.com:443", 12.5, request=request)
    assert error.host == "api.example.com:443"
    assert error.retry_after == 12.5
    assert error.request is request
    assert "api.example.com:443" in str(error)
    held = CircuitOpenError("api.example.com:443", math.inf)
    assert math.isinf(held.retry_after)


def test_bulkhead_full_error_carries_host_and_retry_after() -> None:
    error = BulkheadFullError("api.example.com:443", 4)
    assert error.host == "api.example.com:443"
    assert error.retry_after == 0.0
    assert error.max_concurrency == 4
    assert isinstance(error, RejectedError)
    assert error.retry_after == RejectedError.retry_after


async def test_except_httpx_http_error_catches_a_rejection(clock: FakeClock) -> None:
    """The promise of the tree: existing ``except httpx.HTTPError`` code keeps working."""
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    transport = ResilientTransport(httpx.MockTransport(handler), policy=Policy(), clock=clock)
    transport.breaker("api.example.com").force_open()
    caught: httpx.HTTPError | None = None
    async with httpx.AsyncClient(transport=transport) as client:
        try:
            await client.get("https://api.example.com/")
        except httpx.HTTPError as exc:
            caught = exc
    assert isinstance(caught, CircuitOpenError)
    assert caught.host == "api.example.com:443"
    assert math.isinf(caught.retry_after)
    assert calls == []


def test_import_resilient_http_never_imports_httpx2() -> None:
    """README, "httpx2": the package works without httpx2 installed."""
    import subprocess
    import sys

    code = "import sys, resilient_http, resilient_http.testing; print('httpx2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_httpx2_binding_exports_the_same_names() -> None:
    import resilient_http
    import resilient_http.httpx2

    bound = set(resilient_http.httpx2.__all__)
    assert bound == set(resilient_http.__all__) - {"__version__"}
