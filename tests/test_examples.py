"""Every example runs as a user would run it, and shows the breaker trip and recover."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: End-to-end runs in subprocesses (tens of seconds): `tox -e slow`, as CI runs it.
pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

EXPECTED = {
    "drop_in.py": [
        "ReadTimeout after",
        ": closed -> open",
        "-> CircuitOpenError in",
        "requests that reached the upstream meanwhile: 0",
        ": open -> half_open",
        ": half_open -> closed",
        "circuit state: closed",
    ],
    "resilient_client.py": [
        "default timeouts: Timeout(connect=5.0, read=30.0, write=30.0, pool=5.0)",
        "retry after attempt 2 (status 503)",
        "GET /catalog -> 200 {'host': '127.0.0.1', 'path': '/catalog', 'ok': True}; "
        "upstream reached 3x",
        "opened (was closed)",
        "GET /catalog -> 503 {'error': 'service unavailable'}; upstream reached 1x",
        "GET /catalog -> CircuitOpenError",
        '"state": "open"',
        "closed (was half_open)",
        "circuit state: closed",
    ],
    "per_host_policies.py": [
        "payments.example.com/charges: 503, 503, rejected (upstream reached 2x)",
        "users.internal.example.com/users/7: 503, rejected, rejected (upstream reached 3x)",
        "inventory.internal.example.com/stock/12: 503, 503, 503 (upstream reached 3x)",
        "catalog.example.com/items: 503, 503, 503 (upstream reached 3x)",
        "payments.example.com:443: half_open -> closed",
        "users.internal.example.com:443: half_open -> closed",
        "all closed: True",
    ],
    "fallbacks.py": [
        "GET https://inventory.internal.example.com/stock/12 -> 200 "
        "{'status': 'unknown', 'cached': True} from fallback (circuit_open)",
        "GET https://recommendations.example.com/for/7 -> 200 "
        "{'items': [], 'reason': 'circuit_open'} from fallback (circuit_open)",
        "GET https://pricing.example.com/prices/12 -> CircuitOpenError",
        "requests that reached the upstream meanwhile: 0",
        "circuit for inventory.internal.example.com:443: closed",
        "circuit for pricing.example.com:443: closed",
        "circuit for recommendations.example.com:443: closed",
    ],
    "openai_sdk.py": [
        "1. one retry layer",
        "SDK retries + ours: APIConnectionError, upstream hit 5x",
        "ours only (max_retries=0): InternalServerError, upstream hit 3x",
        "2. an open circuit under the SDK",
        "no fallback: APIConnectionError in ",
        "upstream hit 0x",
        "service_unavailable: InternalServerError in ",
        "upstream hit 0x",
        "SDK timeout with ResilientClient's defaults: Timeout(connect=5.0, read=30.0",
        "SDK timeout when passed explicitly: Timeout(connect=5.0, read=600",
        "streamed from the fallback: '(the assistant is busy)'; upstream hit 0x",
    ],
    "anthropic_sdk.py": [
        "1. one retry layer",
        "SDK retries, ours skip the POST: OverloadedError, upstream hit 3x",
        "ours only, with an Idempotency-Key: OverloadedError, upstream hit 3x",
        "2. an open circuit under the SDK",
        "no fallback: APIConnectionError in ",
        "upstream hit 0x",
        "service_unavailable: ServiceUnavailableError in ",
        "SDK timeout with ResilientClient's defaults: Timeout(connect=5.0, read=30.0",
        "SDK timeout when passed explicitly: Timeout(connect=5.0, read=600",
    ],
    "health_endpoint.py": [
        'GET /health -> 200 {"status": "ok", "open": 0',
        "the circuit opens",
        'GET /health -> 503 {"status": "degraded", "open": 1',
        "(Retry-After: 1)",
        "requests that reached the upstream meanwhile: 0",
        "GET /upstream/orders -> 200",
        'GET /health -> 200 {"status": "ok", "open": 0',
    ],
}


def test_every_example_is_covered() -> None:
    scripts = {path.name for path in EXAMPLES.glob("*.py") if not path.name.startswith("_")}
    assert scripts == set(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_example_runs(script: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    position = 0
    for line in EXPECTED[script]:  # each expected line, in this order
        found = result.stdout.find(line, position)
        assert found >= 0, f"{line!r} missing (or out of order) in:\n{result.stdout}"
        position = found + len(line)
