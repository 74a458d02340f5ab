"""``python -m resilient_http demo`` runs a real outage on 127.0.0.1 and
shows the resilient side far better off than the plain one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

#: End-to-end runs in subprocesses (tens of seconds): `tox -e slow`, as CI runs it.
pytestmark = pytest.mark.slow

REQUIRED = (
    "requests",
    "upstream_hits_during_outage",
    "p99_ms_during_outage",
    "fallbacks",
    "errors",
)


def demo(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # Run it as a user would. The test env sets PYTHONDEVMODE, whose asyncio debug
    # mode slows every callback several-fold: a latency demo would measure that.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDEVMODE", "PYTHONASYNCIODEBUG")}
    return subprocess.run(
        [sys.executable, "-m", "resilient_http", "demo", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    result = demo("--duration", "8", "--json")
    assert result.returncode == 0, result.stderr
    assert "t=" in result.stderr  # the progress, kept off stdout
    data: dict[str, Any] = json.loads(result.stdout)  # stdout is one JSON object, nothing else
    return data


def test_json_summary_has_both_sides(summary: dict[str, Any]) -> None:
    for side in ("plain", "resilient"):
        for key in REQUIRED:
            assert isinstance(summary[side][key], int | float), (side, key)
        assert "time_to_recover_s" in summary[side]
    # The same open-loop traffic went through both clients (a worker starved of
    # CPU on a busy machine may drop a tick or two of its schedule, never more)
    plain, resilient = summary["plain"]["requests"], summary["resilient"]["requests"]
    assert plain > 0
    assert abs(plain - resilient) <= 0.02 * plain


def test_resilient_side_is_fast_during_the_outage(summary: dict[str, Any]) -> None:
    plain, resilient = summary["plain"], summary["resilient"]
    # The plain client waits for hung calls until its timeout (1 s).
    assert plain["p99_ms_during_outage"] >= 900
    assert resilient["p99_ms_during_outage"] * 5 < plain["p99_ms_during_outage"]


def test_resilient_side_spares_the_sick_upstream(summary: dict[str, Any]) -> None:
    plain, resilient = summary["plain"], summary["resilient"]
    assert resilient["upstream_hits_during_outage"] * 4 <= plain["upstream_hits_during_outage"]
    assert resilient["fallbacks"] > 0
    assert plain["fallbacks"] == 0
    assert resilient["errors"] * 4 < plain["errors"]
    assert resilient["circuit_opened"] >= 1
    # After the upstream heals, the breaker closes again: real answers come back.
    assert resilient["time_to_recover_s"] is not None


REPLICA_KEYS = (
    "errors_during_outage",
    "fallbacks_during_outage",
    "sick_replica_hits_during_outage",
    "healthy_replica_hits_during_outage",
)


@pytest.fixture(scope="module")
def replicas() -> dict[str, Any]:
    result = demo("--replicas", "--duration", "8", "--json")
    assert result.returncode == 0, result.stderr
    assert "inventory-a=" in result.stderr  # each replica's breaker, in the progress
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_replicas_json_keeps_the_schema_and_adds_the_replicas(replicas: dict[str, Any]) -> None:
    for side in ("plain", "resilient"):
        for key in (*REQUIRED, *REPLICA_KEYS):
            assert isinstance(replicas[side][key], int | float), (side, key)
        assert set(replicas[side]["hosts"]) == {"inventory", "pricing"}
        assert replicas[side]["requests"] > 0
    assert replicas["replicas"]["logical_host"] == "inventory.internal"
    assert "in turn" in replicas["replicas"]["plain_client"]  # what the plain side was given


def test_a_sick_replica_costs_the_resilient_side_nothing(replicas: dict[str, Any]) -> None:
    plain, resilient = replicas["plain"], replicas["resilient"]
    # The plain client keeps sending half its inventory calls to the sick replica A,
    # and its callers see those calls fail (503s, and timeouts of the hung ones).
    assert plain["sick_replica_hits_during_outage"] >= 30
    assert plain["errors_during_outage"] >= 30
    # The resilient side stops sending to A once its circuit opens (a few probes
    # aside) and replica B answers: (near) no errors, and no fallback is needed.
    during = sum(host["requests_during_outage"] for host in resilient["hosts"].values())
    assert during > 0
    assert resilient["errors_during_outage"] <= max(3, 0.02 * during)
    assert resilient["fallbacks_during_outage"] <= max(3, 0.02 * during)
    sick = resilient["sick_replica_hits_during_outage"]
    healthy = resilient["healthy_replica_hits_during_outage"]
    assert healthy >= 0.9 * (sick + healthy)
    assert resilient["circuit_opened"] >= 1
    # Once A heals, a probe succeeds and it takes calls again.
    assert resilient["sick_replica_back_after_s"] is not None


def test_replicas_summary_shows_where_the_calls_went() -> None:
    result = demo("--replicas", "--duration", "4")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    progress = [line for line in out.splitlines() if line.startswith("t=")]
    assert progress
    assert all("inventory-a=" in line and "inventory-b=" in line for line in progress)
    for label in ("errors seen by callers", "fallbacks served", "sick replica A", "replica B"):
        assert label in out
    assert "http://inventory.internal" in out


def test_progress_is_plain_lines_when_stdout_is_not_a_terminal() -> None:
    result = demo("--duration", "4")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "\x1b[" not in out  # no cursor movement in a pipe or a log file
    progress = [line for line in out.splitlines() if line.startswith("t=")]
    assert len(progress) >= 3
    assert all("plain:" in line and "resilient:" in line for line in progress)
    assert "caller latency p99" in out
    assert "calls that reached the sick inventory" in out


def test_help_names_the_duration_bounds() -> None:
    result = demo("--help", timeout=30)
    assert result.returncode == 0
    assert "4 to 600" in result.stdout


def test_help_names_the_replicas_variant() -> None:
    result = demo("--help", timeout=30)
    assert result.returncode == 0
    assert "--replicas" in result.stdout


def test_an_unknown_option_shows_the_demo_usage() -> None:
    result = demo("--bogus", timeout=30)
    assert result.returncode == 2
    assert "usage: python -m resilient_http demo" in result.stderr
    assert "unrecognized arguments: --bogus" in result.stderr


@pytest.mark.parametrize("duration", ["1", "-5", "1e9"])
def test_out_of_range_duration_is_refused(duration: str) -> None:
    result = demo("--duration", duration, timeout=30)
    assert result.returncode == 2
    assert "--duration must be between" in result.stderr
