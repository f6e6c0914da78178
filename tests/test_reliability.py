"""Damaged history, several writers at once, a 1 MB prompt, secrets in verbose output."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess

import pytest
from helpers import SECRET, program

from stackspot_tui.cli import main
from stackspot_tui.sim import Simulator
from stackspot_tui.sim.server import SimulatorServer
from stackspot_tui.store import HistoryCorruptError, HistoryStore


def seeded(root, turns=3):
    store = HistoryStore(root)
    conversation = store.create_conversation("code-review")
    for n in range(turns):
        turn = store.add_turn(conversation.id, f"prompt {n}", f"prompt {n}", slug="code-review")
        store.update_turn(conversation.id, turn.seq, status="COMPLETED", result=f"answer {n}", conversation_id="01CONV")
    store.update_conversation(conversation.id, conversation_id="01CONV")
    store.fold_journal(conversation.id)  # the damage below is done to the page and record files
    return store, conversation


def test_repair_rebuilds_a_damaged_conversation_record_from_the_pages(tmp_path):
    _store, conversation = seeded(tmp_path)
    record = tmp_path / "conversations" / conversation.id / "conversation.json"
    record.write_text("{garbage")
    with pytest.raises(HistoryCorruptError, match="stackspot-tui repair"):
        HistoryStore(tmp_path).get_conversation(conversation.id)
    report = HistoryStore(tmp_path, check=False).repair()
    assert any("conversation.json" in a and "aside" in a for a in report.actions)
    assert any("rebuilt the record" in a for a in report.actions)
    assert not report.problems
    [moved] = list(record.parent.glob("*.corrupt-*"))
    assert moved.read_text() == "{garbage"  # kept, never overwritten
    again = HistoryStore(tmp_path).get_conversation(conversation.id)
    assert (again.slug, again.turn_count, again.conversation_id, again.title) == (
        "code-review",
        3,
        "01CONV",
        "prompt 0",
    )


def test_repair_moves_a_damaged_page_aside_and_keeps_the_rest(tmp_path):
    store = HistoryStore(tmp_path)
    conversation = store.create_conversation("qc")
    for n in range(150):
        store.add_turn(conversation.id, f"p{n}", "x")
    store.fold_journal(conversation.id)
    (tmp_path / "conversations" / conversation.id / "0000.json").write_text('{"turns": {"1": ')
    HistoryStore(tmp_path, check=False).repair()
    repaired = HistoryStore(tmp_path)
    assert [t.seq for t in repaired.turns(conversation.id)] == list(range(100, 150))
    assert repaired.get_conversation(conversation.id).turn_count == 50


def test_repair_of_a_damaged_meta_file(tmp_path):
    seeded(tmp_path)
    (tmp_path / "meta.json").write_text("not json")
    report = HistoryStore(tmp_path, check=False).repair()
    assert any("meta.json" in a for a in report.actions)
    assert len(HistoryStore(tmp_path).list_conversations()) == 1


def test_repair_from_the_command_line(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("STACKSPOT")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("STACKSPOT_TUI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STACKSPOT_TUI_CONFIG", str(tmp_path / "none.toml"))
    _, conversation = seeded(tmp_path / "history")
    [catalog] = (tmp_path / "history" / "catalog").glob("*.sqlite")
    catalog.write_bytes(b"[" * 5000)  # the search catalog, damaged
    out, err = io.StringIO(), io.StringIO()
    assert main(["conversations"], stdout=out, stderr=err) == 1 and "stackspot-tui repair" in err.getvalue()
    assert err.getvalue().count("\n") == 1 and str(catalog) in err.getvalue()
    err = io.StringIO()
    assert main(["repair"], stdout=out, stderr=err) == 0 and re.search(r"\b\d+ repairs? done\b", err.getvalue())
    assert "rebuilt the search catalog" in err.getvalue() and list(catalog.parent.glob("*.corrupt-*"))
    out = io.StringIO()
    assert main(["conversations", "--json"], stdout=out, stderr=io.StringIO()) == 0
    assert json.loads(out.getvalue())[0]["id"] == conversation.id


@pytest.fixture(scope="module")
def server():
    with SimulatorServer(Simulator(client_secret=SECRET, duration=0.2)) as running:
        yield running


def env_for(server, data_dir, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKSPOT")}
    env.update(
        STACKSPOT_CLIENT_ID="demo-client",
        STACKSPOT_CLIENT_SECRET=SECRET,
        STACKSPOT_API_URL=server.url,
        STACKSPOT_AUTH_URL=f"{server.url}/r/oidc/oauth/token",
        STACKSPOT_TUI_DATA_DIR=str(data_dir),
        STACKSPOT_TUI_CONFIG=str(data_dir / "none.toml"),
        NO_PROXY="127.0.0.1",
        **extra,
    )
    return env


@pytest.mark.e2e
def test_parallel_run_processes_lose_no_turn(server, tmp_path):
    store = HistoryStore(tmp_path / "history")
    conversation = store.create_conversation("echo")
    writers, turns_each = 4, 2
    script = " && ".join(
        f"{' '.join(program())} run echo --conversation {conversation.id} -q 'w$W t{n}'" for n in range(turns_each)
    )
    processes = [
        subprocess.Popen(
            ["sh", "-c", script],
            env={**env_for(server, tmp_path), "W": str(w)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for w in range(writers)
    ]
    for process in processes:
        assert process.wait(timeout=120) == 0, process.stderr.read()
    turns = HistoryStore(tmp_path / "history").turns(conversation.id)
    assert len(turns) == writers * turns_each
    assert sorted(t.seq for t in turns) == list(range(writers * turns_each))
    assert all(t.status == "COMPLETED" and t.result == t.prompt for t in turns)


@pytest.mark.e2e
def test_a_1mb_prompt_round_trips(server, tmp_path):
    prompt = ("0123456789abcdef" * 64 + "\n") * 1000  # ~1 MB
    result = subprocess.run(
        [*program(), "run", "echo"],
        input=prompt.encode(),
        env=env_for(server, tmp_path),
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode() == prompt


@pytest.mark.e2e
def test_secrets_and_tokens_stay_out_of_verbose_output_and_files(server, tmp_path):
    env = env_for(server, tmp_path)
    outputs = []
    for args in (
        ["run", "code-review", "-v", "x"],
        ["run", "echo", "-v", "--json", "--continue", "y"],
        ["export", "--all", "--format", "html", "-o", str(tmp_path / "exports")],
    ):
        result = subprocess.run([*program(), *args], env=env, capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    written = [p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()]
    for blob in outputs + written:
        assert SECRET.encode() not in blob
        assert b"sim-" not in blob and b"Bearer" not in blob  # simulator tokens start with "sim-"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_result_escapes_are_shown_not_obeyed_on_a_terminal_but_kept_in_a_pipe():
    from stackspot_tui.cli.common import error as _error
    from stackspot_tui.cli.common import print_result as _print_result

    hostile = "ok \x1b[2J\x1b]0;pwned\x07 \x9b31m done\n"
    terminal, pipe, err = FakeTerminal(), io.StringIO(), io.StringIO()
    _print_result(hostile, terminal)
    _print_result(hostile, pipe)
    _error(err, "failed: \x1b[31mred\x1b[0m\nsecond line")
    assert "\x1b" not in terminal.getvalue() and "␛[2J" in terminal.getvalue()
    assert "\x9b" not in terminal.getvalue() and "\x07" not in terminal.getvalue()
    assert pipe.getvalue() == hostile
    assert "\x1b" not in err.getvalue() and err.getvalue().count("\n") == 1


@pytest.mark.e2e
async def test_the_app_and_the_cli_write_one_history_at_once(server, tmp_path):
    """The TUI sends turns while a `run` process appends to the same conversation."""
    from test_tui import send, until

    from stackspot_tui.api import PollPolicy, StackSpotClient
    from stackspot_tui.config import Settings
    from stackspot_tui.engine import Backend, ConversationService
    from stackspot_tui.tui.app import StackSpotApp

    store = HistoryStore(tmp_path / "history")
    conversation = store.create_conversation("echo")
    client = StackSpotClient(
        client_id="demo-client",
        client_secret=SECRET,
        token_url=f"{server.url}/r/oidc/oauth/token",
        api_url=server.url,
        poll=PollPolicy(initial=0.05, max_interval=0.2),
    )
    app = StackSpotApp(
        Settings(data_dir=tmp_path),
        backend=Backend(ConversationService(client, store)),
        slug="echo",
        conversation_id=conversation.id,
    )
    script = " && ".join(
        f"{' '.join(program())} run echo --conversation {conversation.id} -q 'cli {n}'" for n in range(3)
    )
    cli = subprocess.Popen(
        ["sh", "-c", script], env=env_for(server, tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    async with app.run_test(size=(120, 40)) as pilot:
        for n in range(3):
            # A bound, not a speed check: the three `run` processes hold the lock in turn, and
            # each takes seconds to start on a loaded machine.
            await send(pilot, app, f"tui {n}", timeout=60)
        await until(pilot, lambda: cli.poll() is not None, timeout=60)
    await client.aclose()
    assert cli.returncode == 0, cli.stderr.read()
    turns = HistoryStore(tmp_path / "history").turns(conversation.id)
    assert sorted(t.prompt for t in turns) == sorted([f"tui {n}" for n in range(3)] + [f"cli {n}" for n in range(3)])
    assert sorted(t.seq for t in turns) == list(range(6)) and all(t.status == "COMPLETED" for t in turns)
