"""``examples/health_endpoint.py`` mounts ``snapshot()`` as a health
endpoint; its upstream here is the real test server on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import cast

import httpx
import pytest
from starlette.applications import Starlette

from resilient_http import BreakerPolicy, Policy, ResilientTransport, RetryPolicy
from resilient_http.testing import FakeClock

from .server import LiveServer

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "health_endpoint.py"


def load_example() -> ModuleType:
    """Import the example from its file, as ``python examples/...`` would see it."""
    folder = str(EXAMPLE.parent)
    sys.path.insert(0, folder)  # for its ``from _upstream import ...``
    try:
        spec = importlib.util.spec_from_file_location("health_endpoint_example", EXAMPLE)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(folder)
    return module


create_app = cast(Callable[[str, ResilientTransport], Starlette], load_example().create_app)


def make_transport(clock: FakeClock) -> ResilientTransport:
    return ResilientTransport(
        policy=Policy(
            breaker=BreakerPolicy(failure_threshold=2, recovery_timeout=10.0),
            retry=RetryPolicy(attempts=1),
        ),
        clock=clock,
        sleep=clock.sleep,
    )


async def test_health_shows_the_circuits_and_503_while_one_is_open(
    live: LiveServer, clock: FakeClock
) -> None:
    app = create_app(live.url, make_transport(clock))
    key = f"127.0.0.1:{live.port}"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc") as svc,
    ):
        assert (await svc.get("/upstream/status/200")).status_code == 200
        health = await svc.get("/health")
        assert health.status_code == 200
        assert health.headers["cache-control"] == "no-store"
        body = health.json()
        assert (body["status"], body["open"]) == ("ok", [])
        assert body["circuits"][key]["state"] == "closed"

        for _ in range(2):  # two failures open the circuit
            assert (await svc.get("/upstream/status/503")).status_code == 503
        health = await svc.get("/health")
        assert health.status_code == 503
        body = health.json()
        assert (body["status"], body["open"]) == ("degraded", [key])
        assert body["circuits"][key]["state"] == "open"
        assert body["circuits"][key]["retry_after"] == 10.0
        assert body["circuits"][key]["opened_total"] == 1

        # Open: answered at once by the example's fallback, upstream untouched.
        hits = live.state.hits["/status/200"]
        rejected = await svc.get("/upstream/status/200")
        assert rejected.status_code == 503
        assert rejected.headers["retry-after"] == "10"
        assert rejected.json() == {"error": "upstream unavailable"}
        assert live.state.hits["/status/200"] == hits

        # Half-open is healthy: the breaker is already probing.
        clock.advance(10)
        health = await svc.get("/health")
        assert health.status_code == 200
        assert health.json()["circuits"][key]["state"] == "half_open"

        assert (await svc.get("/upstream/status/200")).status_code == 200  # the probe
        body = (await svc.get("/health")).json()
        assert (body["status"], body["circuits"][key]["state"]) == ("ok", "closed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def service(live: LiveServer) -> Iterator[str]:
    """The example run as a user would: ``--serve`` under uvicorn, with metrics."""
    port = free_port()
    args = ["--serve", "--metrics", "--port", str(port), "--upstream", live.url]
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    _, err = process.communicate(timeout=5)
                    raise AssertionError(f"the example did not start:\n{err}") from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
        assert "Traceback" not in err, err


def test_the_example_serves_health_and_metrics(service: str, live: LiveServer) -> None:
    health = httpx.get(f"{service}/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "open": [], "circuits": {}}

    assert httpx.get(f"{service}/upstream/status/404").status_code == 404
    assert httpx.get(f"{service}/health").json()["circuits"][f"127.0.0.1:{live.port}"] == {
        "state": "closed",
        "forced": None,
        "consecutive_failures": 0,
        "opened_total": 0,
        "retry_after": 0.0,
        "open_period": 10.0,
        "probes_in_flight": 0,
    }
    metrics = httpx.get(f"{service}/metrics").text
    labels = f'host="127.0.0.1:{live.port}",outcome="success"'
    assert f"resilient_http_requests_total{{{labels}}} 1.0" in metrics
    assert f'resilient_http_circuit_state{{host="127.0.0.1:{live.port}"}} 0.0' in metrics
