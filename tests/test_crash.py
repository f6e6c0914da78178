"""SIGKILL at observed steps: the history stays valid, no completed turn is lost, a delete is all or nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SECRET, program

from stackspot_tui.sim import Simulator
from stackspot_tui.sim.server import SimulatorServer
from stackspot_tui.store import HistoryStore

pytestmark = pytest.mark.e2e


def sim_env(server, data_dir: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "STACKSPOT_CLIENT_ID": "demo-client",
        "STACKSPOT_CLIENT_SECRET": SECRET,
        "STACKSPOT_API_URL": server.url,
        "STACKSPOT_AUTH_URL": f"{server.url}/r/oidc/oauth/token",
        "STACKSPOT_TUI_DATA_DIR": str(data_dir),
        "STACKSPOT_TUI_CONFIG": str(data_dir / "none.toml"),
    }


def resume_creates_nothing(simulator: Simulator, env: dict[str, str], data_dir: Path) -> list:
    """`stackspot-tui resume` finishes every created execution without a second create."""
    creates = sum("create-execution" in r["path"] for r in simulator.requests)
    resumed = subprocess.run([*program(), "resume"], env=env, capture_output=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert sum("create-execution" in r["path"] for r in simulator.requests) == creates
    store = HistoryStore(data_dir / "history")
    turns = [t for c in store.list_conversations() for t in store.turns(c.id)]
    assert turns and all(t.status == "COMPLETED" for t in turns if t.execution_id)
    assert store.pending_turns() == []
    return turns


def kill_harness(scenario: str, data_dir: Path, points: int, env: dict[str, str] | None = None) -> dict:
    """tests/kill_points.py: the scenario killed at chosen steps (observed, not timed); its summary."""
    points = int(os.environ.get("STACKSPOT_KILL_POINTS", points))  # more for the figures in the docs
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("kill_points.py")), scenario, str(data_dir), str(points)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.splitlines()[-1])
    print(f"{scenario}: {summary}")
    assert summary["kills"] == min(points, summary["steps"])
    return summary


def test_appends_killed_at_every_step_keep_every_completed_turn(tmp_path):
    summary = kill_harness("append", tmp_path, points=10**6)
    assert summary["steps"] > 20 and summary["completed"] > 0


def test_a_journal_fold_killed_at_every_step_keeps_every_turn_as_it_was_or_as_written(tmp_path):
    summary = kill_harness("fold", tmp_path, points=10**6)
    assert summary["steps"] >= 6 and summary["before"] >= 1 and summary["after"] >= 3


def test_a_delete_killed_at_every_step_is_all_or_nothing_and_never_revived(tmp_path):
    summary = kill_harness("delete", tmp_path, points=10**6)
    assert summary["steps"] >= 5 and summary["intact"] >= 1 and summary["deleted"] >= 1


def test_a_conversion_and_catalog_build_killed_at_every_step_is_finished_by_the_next_start(tmp_path):
    summary = kill_harness("convert", tmp_path, points=10**6)
    assert summary["steps"] >= 8


def fast_polling(env: dict[str, str], data_dir: Path) -> dict[str, str]:
    config = data_dir / "fast.toml"
    config.write_text("poll_initial = 0.05\npoll_max_interval = 0.2\n")
    return {**env, "STACKSPOT_TUI_CONFIG": str(config)}


def test_run_killed_at_steps_then_resume(tmp_path):
    simulator = Simulator(client_secret=SECRET, duration=0.05)  # done by the first poll: the same steps each run
    with SimulatorServer(simulator) as server:
        env = fast_polling(sim_env(server, tmp_path), tmp_path)
        summary = kill_harness("run", tmp_path, points=6, env=env)
        assert summary["steps"] > 6
        resume_creates_nothing(simulator, env, tmp_path)


def test_the_tui_killed_at_steps_then_resume(tmp_path):
    simulator = Simulator(client_secret=SECRET, duration=0.05)  # done by the first poll: the same steps each run
    with SimulatorServer(simulator) as server:
        env = fast_polling(sim_env(server, tmp_path), tmp_path)
        summary = kill_harness("tui", tmp_path, points=3, env=env)
        assert summary["steps"] > 3
        resume_creates_nothing(simulator, env, tmp_path)
