"""SIGKILL at random moments: the history stays valid and no completed turn is lost."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers import SECRET, program

from stackspot_tui.sim import Simulator
from stackspot_tui.sim.server import SimulatorServer
from stackspot_tui.store import HistoryStore

pytestmark = pytest.mark.e2e


def assert_all_files_valid(root: Path) -> None:
    for path in root.rglob("*.json"):
        json.loads(path.read_bytes())  # raises on a torn write


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


def completed_after_kill(data_dir: Path, before: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Check the history after a kill: every file valid, no completed turn lost."""
    assert_all_files_valid(data_dir)
    store = HistoryStore(data_dir / "history")
    turns = [t for c in store.list_conversations() for t in store.turns(c.id)]
    now = {(t.conversation, t.seq) for t in turns if t.status == "COMPLETED"}
    assert before <= now
    return now


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


APPENDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from stackspot_tui.store import HistoryStore
    store = HistoryStore(Path(sys.argv[1]))
    conversation = store.latest_conversation() or store.create_conversation("crash")
    while True:
        turn = store.add_turn(conversation.id, "p" * 2000, "x")
        store.update_turn(conversation.id, turn.seq, status="COMPLETED", result="r" * 2000)
        print(turn.seq, flush=True)
    """
)


def test_sigkill_while_appending_keeps_every_completed_turn(tmp_path):
    rng = random.Random(7)
    reported: set[int] = set()
    kills = 12
    for _ in range(kills):
        child = subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        reported.add(int(child.stdout.readline()))  # it is writing now
        time.sleep(rng.uniform(0, 0.15))  # a random point inside the write loop
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate()
        reported.update(int(line) for line in rest.split())
        assert_all_files_valid(tmp_path)
    store = HistoryStore(tmp_path)
    [conversation] = store.list_conversations()
    done = {t.seq for t in store.turns(conversation.id) if t.status == "COMPLETED"}
    assert reported <= done, f"lost completed turns: {sorted(reported - done)}"
    print(f"{kills} kills, {len(reported)} completed turns reported, all present")


def test_sigkill_of_run_at_random_points_then_resume(tmp_path):
    simulator = Simulator(client_secret=SECRET, duration=0.4)
    rng = random.Random(11)
    with SimulatorServer(simulator) as server:
        env = sim_env(server, tmp_path)
        completed: set[tuple[str, int]] = set()
        for n in range(8):
            child = subprocess.Popen(
                [*program(), "run", "delay-800", "--continue", f"turn {n}"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.2, 1.6))  # start-up, create, polling or the final write
            child.send_signal(signal.SIGKILL)
            child.wait()
            completed = completed_after_kill(tmp_path, completed)
        resume_creates_nothing(simulator, env, tmp_path)


TUI_CHILD = textwrap.dedent(
    """
    import asyncio
    from stackspot_tui.config import load_settings
    from stackspot_tui.runtime import build_backend
    from stackspot_tui.tui.app import StackSpotApp
    from stackspot_tui.tui.widgets import PromptInput

    async def main():
        settings = load_settings()
        app = StackSpotApp(settings, backend_factory=lambda demo: build_backend(settings, demo=False),
                           slug="delay-600")
        async with app.run_test() as pilot:
            for n in range(1000):
                app.screen.query_one(PromptInput).load_text(f"tui turn {n}")
                await pilot.press("enter")
                await pilot.pause(0.05)
                while app.chat.running:
                    await pilot.pause(0.05)
                print(n, flush=True)

    asyncio.run(main())
    """
)


def test_sigkill_of_the_tui_under_run_test_then_resume(tmp_path):
    simulator = Simulator(client_secret=SECRET)
    rng = random.Random(5)
    with SimulatorServer(simulator) as server:
        env = sim_env(server, tmp_path)
        completed: set[tuple[str, int]] = set()
        kills = 5
        for _ in range(kills):
            child = subprocess.Popen(
                [sys.executable, "-c", TUI_CHILD], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(rng.uniform(1.0, 2.5))  # start-up, then somewhere inside a turn
            child.send_signal(signal.SIGKILL)
            child.wait()
            completed = completed_after_kill(tmp_path, completed)
        turns = resume_creates_nothing(simulator, env, tmp_path)
    print(f"{kills} TUI kills, {len(turns)} turns, {len(completed)} completed before resume")
