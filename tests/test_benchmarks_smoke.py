"""The benchmark entry point still runs end to end (tiny counts, no timing checks).

Peer packages and matplotlib are optional: without them the run must still
finish, list each missing peer as "not installed" and skip only the chart.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = [
    "success_in_process",
    "success_real_server",
    "rejection",
    "concurrency",
    "memory",
    "production",
    "sync",
    "hedging",
]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_benchmark_entry_point_runs_and_writes_results(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--rounds", "2", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "ResourceWarning" not in proc.stderr, proc.stderr

    data = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    assert [s["key"] for s in data["sections"]] == SECTIONS
    assert data["machine"]["cores"] == os.cpu_count()
    sections = {s["key"]: s for s in data["sections"]}
    for key in ("success_in_process", "success_real_server", "concurrency"):
        rows = {r["name"]: r for r in sections[key]["rows"]}
        bare, ours = rows["httpx (bare)"], rows["resilient_http ResilientTransport"]
        assert bare["status"] == ours["status"] == "ok", (key, bare, ours)
        assert bare["ratio"] == pytest.approx(1.0)
        assert ours["median"] > 0
        assert ours["ratio"] > 0
        for row in rows.values():  # a peer is measured, missing, or broken: never silent
            status = row["status"]
            assert status in ("ok", "not installed") or status.startswith("error:"), row
            assert (row["median"] is None) == (row["status"] != "ok"), row

    rejection = {r["name"]: r for r in sections["rejection"]["rows"]}
    raised = rejection["resilient_http: rejected, CircuitOpenError raised"]
    served = rejection["resilient_http: rejected, fallback response served"]
    assert raised["status"] == served["status"] == "ok", (raised, served)

    sync = {r["name"]: r for r in sections["sync"]["rows"]}  # httpx.Client, the sync binding
    bare, ours = sync["httpx.Client (bare)"], sync["resilient_http SyncResilientTransport"]
    assert bare["status"] == ours["status"] == "ok", (bare, ours)
    assert bare["ratio"] == pytest.approx(1.0)
    assert ours["median"] > 0
    for row in sync.values():  # "n/a: ..." when interlock-cb has no sync transport
        status = row["status"]
        assert status in ("ok", "not installed") or status.startswith(("n/a:", "error:")), row

    hedging = {r["name"]: r for r in sections["hedging"]["rows"]}  # a long-tailed uvicorn
    assert [r["role"] for r in hedging.values()] == ["baseline", "ours", "ours"], hedging
    for row in hedging.values():
        assert row["status"] == "ok", row
        figures = row["metrics"]
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["p999_ms"] <= figures["max_ms"]
        assert figures["load"] >= 1.0  # counted by the server: every call reached it
        assert 0 <= figures["hedges_won"] <= figures["hedges_sent"], row
    off = next(r for r in hedging.values() if r["role"] == "baseline")["metrics"]
    assert off["load"] == 1.0, off
    assert off["hedges_sent"] == 0, off
    assert sections["hedging"]["params"]["warmup_calls"] > 0

    memory = sections["memory"]
    ours_rows = [r for r in memory["rows"] if r["role"] == "ours"]
    assert all(r["status"] == "ok" and r["median"] > 0 for r in ours_rows), ours_rows
    assert memory["targets"], memory

    table = (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert "| **resilient_http ResilientTransport** |" in table
    # too few samples to judge a target: the table says so instead of "met"/"MISSED"
    assert "not judged (--quick)" in table
    assert "MISSED" not in table
    assert table.strip() in proc.stdout
    if importlib.util.find_spec("matplotlib") is None:
        assert not (tmp_path / "latest.png").exists()
        assert "matplotlib is not installed" in proc.stderr
    else:
        assert (tmp_path / "latest.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_profile_command_shows_where_one_configurations_time_goes() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "benchmarks", "--profile", "full", "--profile-calls", "50"]
    proc = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=100, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# full production profile: 50 GETs")
    assert "_transport.py" in proc.stdout  # our own functions are listed
    assert "Function calls per request beyond bare httpx" in proc.stdout
    unknown = subprocess.run(
        [*command[:4], "nothing like it"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert unknown.returncode != 0
    assert "pick one of" in unknown.stderr


def test_the_instruction_count_drives_every_production_configuration() -> None:
    """``--instructions``: the child's work runs for each configuration, and a
    name must pick exactly one of them."""
    from benchmarks import _instructions

    every = _instructions.chosen(["default", "rate", "deadline", "bulkhead", "stale"])
    every += _instructions.chosen(["prometheus", "listener", "full"])[1:]
    assert every[0] == _instructions.BARE
    assert len(set(every)) == len(every) == 9
    for configuration in every:
        _instructions.drive(configuration, 3)
    with pytest.raises(SystemExit, match="pick among"):
        _instructions.chosen(["nothing like it"])
    with pytest.raises(SystemExit, match="names more than one"):
        _instructions.chosen(["e"])


def test_the_instruction_count_is_the_difference_per_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each configuration runs twice under callgrind, with and without the calls;
    the report gives the difference per call, and our overhead over bare."""
    from benchmarks import _instructions

    cost = {_instructions.BARE: 100, "default Policy()": 112}
    ran: list[list[str]] = []

    def callgrind(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        ran.append(command)
        configuration, calls = re.findall(r"drive\('(.+)', (\d+)\)", command[-1])[0]
        total = 5_000 + cost[configuration] * int(calls)
        return subprocess.CompletedProcess(command, 0, "", f"==1== Collected : {total}\n")

    monkeypatch.setattr(shutil, "which", lambda _: "/usr/bin/valgrind")
    monkeypatch.setattr(subprocess, "run", callgrind)
    text = _instructions.report(["default"], 10)
    assert all(command[:2] == ["valgrind", "--tool=callgrind"] for command in ran)
    assert len(ran) == 4
    assert text.splitlines()[1].split() == ["bare", "100"]
    assert text.splitlines()[2].split() == ["default", "Policy()", "112", "+12", "over", "bare"]
    monkeypatch.setattr(shutil, "which", lambda _: None)
    with pytest.raises(SystemExit, match="needs valgrind"):
        _instructions.report(["default"], 10)
