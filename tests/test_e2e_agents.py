"""`run --agent` as a real process against `stackspot-tui simulate` on loopback: streaming, memory, cuts, kills."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import time

import pytest
from helpers import last_json_line, program, run_cli, start_simulator

from stackspot_tui.cli import main
from stackspot_tui.store import HistoryStore

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def sim():
    with start_simulator(0.3, "--first-token", "0.05", "--word-rate", "2000") as process:
        yield process


def test_two_continue_turns_carry_the_first_conversation_id(sim, tmp_path):
    env = sim.env(tmp_path)
    first = run_cli("run", "--agent", "demo-assistant", "--continue", "how do I test this?", env=env)
    assert first.returncode == 0, first.stderr
    second = run_cli("run", "--continue", "--agent", "demo-assistant", "--json", "and the edge cases?", env=env)
    assert second.returncode == 0, second.stderr
    assert "## Answer" in first.stdout.decode() and "how do I test this?" in first.stdout.decode()

    lines = second.stdout.decode().splitlines()
    deltas = [json.loads(line)["delta"] for line in lines[:-1]]
    summary = last_json_line(second.stdout)
    assert "".join(deltas) == summary["result"] and "Turn 2" in summary["result"]
    assert summary["status"] == "COMPLETED" and summary["agent_id"] == "demo-assistant"
    assert summary["stop_reason"] == "stop" and summary["tokens"]["output"] > 0 and summary["sources"]

    chats = [r["chat"] for r in sim.requests() if "chat" in r][-2:]
    assert chats[0]["conversation_id"] and chats[1]["conversation_id"] == chats[0]["conversation_id"]
    assert chats[1]["use_conversation"] is True and summary["conversation_id"] == chats[0]["conversation_id"]

    store = HistoryStore(tmp_path / "history")
    turns = store.turns(summary["conversation"])
    assert [t.prompt for t in turns] == ["how do I test this?", "and the edge cases?"]
    assert all(t.status == "COMPLETED" and t.agent_id == "demo-assistant" and not t.incomplete for t in turns)


def test_prompt_from_stdin_and_progress_on_stderr(sim, tmp_path):
    result = run_cli("run", "--agent", "demo-explainer", "-v", env=sim.env(tmp_path), input="x = 1\n")
    assert result.returncode == 0, result.stderr
    assert "x = 1" in result.stdout.decode()
    err = result.stderr.decode()
    for expected in ("request sent to agent demo-explainer", "first token after", "stop reason stop", "sources:"):
        assert expected in err


def test_a_cut_stream_keeps_the_partial_answer_says_so_and_fails(sim, tmp_path):
    result = run_cli("run", "--agent", "sim-agent-cut", "hello", env=sim.env(tmp_path))
    assert result.returncode == 1
    out, err = result.stdout.decode(), result.stderr.decode()
    assert out.strip() and "was cut" in err and "the answer above is partial" in err
    assert len(err.strip().splitlines()) == 1
    store = HistoryStore(tmp_path / "history")
    turn = store.turns(store.list_conversations()[0].id)[0]
    assert turn.status == "INCOMPLETE" and turn.incomplete and turn.result.strip() == out.strip()


def test_a_stream_without_its_final_event_fails_too(sim, tmp_path):
    result = run_cli("run", "--agent", "sim-agent-no-final", "--json", "hello", env=sim.env(tmp_path))
    assert result.returncode == 1
    summary = last_json_line(result.stdout)
    assert summary["status"] == "INCOMPLETE" and summary["incomplete"] and summary["result"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--agent", "nobody-here", "hi"], "agent 'nobody-here' not found (HTTP 404)"),
        (["--agent", "bad/id", "hi"], "is not an agent id"),
        (["--agent", "demo-assistant", "one", "two"], "with --agent, give only the PROMPT"),
        (["--agent", "demo-assistant", "--json-input", "{}"], "agents take a text prompt"),
        ([], "give a quick command SLUG, or --agent AGENT_ID"),
    ],
)
def test_mistakes_get_one_line(sim, tmp_path, monkeypatch, args, message):
    for name, value in sim.env(tmp_path).items():
        monkeypatch.setenv(name, value)
    out, err = io.StringIO(), io.StringIO()
    assert main(["run", *args], stdout=out, stderr=err) in (1, 2)
    assert message in err.getvalue() and len(err.getvalue().strip().splitlines()) == 1
    assert out.getvalue() == ""


def test_a_prompt_over_the_context_says_what_to_do(sim, tmp_path):
    result = run_cli("run", "--agent", "demo-assistant", "-", env=sim.env(tmp_path), input="x" * 200_001)
    assert result.returncode == 1
    assert "prompt is too long" in result.stderr.decode() and "new conversation" in result.stderr.decode()


def test_sigkill_during_a_stream_keeps_the_partial_answer(tmp_path):
    slow = start_simulator(0.3, "--first-token", "0.05", "--word-rate", "40")
    try:
        env = slow.env(tmp_path)
        process = subprocess.Popen(
            [*program(), "run", "--agent", "words-4000-at-40", "count for me"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        store = HistoryStore(tmp_path / "history")
        deadline = time.monotonic() + 30
        saved = None
        while time.monotonic() < deadline:  # the observed point: words of the answer on disk
            conversations = store.list_conversations() if (tmp_path / "history").exists() else []
            turns = store.turns(conversations[0].id) if conversations else []
            if turns and turns[0].result and len(turns[0].result.split()) >= 5:
                saved = turns[0]
                break
            time.sleep(0.02)
        assert saved is not None, "no partial answer was saved while streaming"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        printed = process.stdout.read().decode()
    finally:
        slow.process.terminate()
        slow.process.wait(timeout=10)
    turn = HistoryStore(tmp_path / "history").turns(saved.conversation)[0]
    assert turn.prompt == "count for me" and turn.status == "STREAMING" and turn.incomplete
    assert turn.result.startswith(saved.result) and printed.startswith(turn.result)
    shown = run_cli("show", saved.conversation, env=env)
    assert shown.returncode == 0 and "word0" in shown.stdout.decode()
