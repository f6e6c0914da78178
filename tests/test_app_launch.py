"""Opening the app from the command line: options reach it typed, bad ids stop it before the
screen, and the real program runs in a real terminal."""

from __future__ import annotations

import gc
import io
import os
from pathlib import Path

import pytest
from ptyapp import PtyApp

from stackspot_tui.cli import main
from stackspot_tui.store import HistoryStore


class FakeApp:
    """Stands in for StackSpotApp: records what run_app hands it, runs nothing."""

    made: list[FakeApp] = []
    frozen: list[str] = []  # the gc.freeze calls so far

    def __init__(self, settings, **options):
        self.settings, self.options = settings, options
        self.return_code = 0
        FakeApp.made.append(self)

    def run(self) -> None:
        self.frozen_before_run = list(FakeApp.frozen)


@pytest.fixture
def fake_app(monkeypatch):
    FakeApp.made, FakeApp.frozen = [], []
    monkeypatch.setattr("stackspot_tui.tui.app.StackSpotApp", FakeApp)
    # Recorded, not done: a freeze here would keep every object of the test process from the GC.
    monkeypatch.setattr(gc, "freeze", lambda: FakeApp.frozen.append("freeze"))
    return FakeApp.made


def cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    code = main(list(argv), stdout=io.StringIO(), stderr=err)
    return code, err.getvalue()


def test_continue_opens_the_latest_conversation_of_the_slug(env, fake_app):
    store = HistoryStore(env / "data" / "demo")
    older = store.create_conversation("echo")
    store.create_conversation("code-review")  # newer, but another quick command
    code, _ = cli("--demo", "--slug", "echo", "--continue")
    [app] = fake_app
    assert code == 0 and app.options["conversation_id"] == older.id
    assert app.options["demo"] is True and app.options["slug"] == "echo"
    # Only the real program freezes: what it imported and built before the screen starts, and
    # what start-up built once the first conversation is on screen.
    assert app.frozen_before_run == ["freeze"] and app.options["on_started"] is gc.freeze
    slugs = dict(app.options["backend"].quick_commands())
    assert slugs["echo"] == "recent" and "generate-tests" in slugs  # history first, then the demo's catalogue


def test_a_conversation_id_is_resolved_before_the_screen(env, fake_app):
    store = HistoryStore(env / "data" / "demo")
    conversation = store.create_conversation("echo")
    assert cli("--demo", "--conversation", conversation.id[:4])[0] == 0
    assert fake_app[-1].options["conversation_id"] == conversation.id
    code, err = cli("--demo", "--conversation", "ffff0000")
    assert code == 1 and err.startswith("stackspot-tui: error:") and "ffff0000" in err
    assert len(fake_app) == 1  # the app never started
    assert err.count("\n") == 1


def test_without_credentials_the_app_opens_on_first_run(env, fake_app):
    assert cli()[0] == 0
    [app] = fake_app
    assert app.options["backend"] is None and app.options["demo"] is False  # the first-run screen decides


# -- the real program in a real terminal ---------------------------------------------------------


@pytest.mark.e2e
def test_the_program_runs_a_turn_in_a_real_terminal_and_quits_cleanly(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKSPOT")}
    env.update(
        STACKSPOT_TUI_DATA_DIR=str(tmp_path),
        STACKSPOT_TUI_CONFIG=str(tmp_path / "none.toml"),
        STACKSPOT_SIM_DURATION="0.2",
    )
    terminal = PtyApp(["--demo", "--slug", "echo"], env, size=(120, 40))
    try:
        terminal.wait_for_text("DEMO")
        terminal.wait_for_text("Type a prompt")  # the chat screen is up and the prompt has focus
        terminal.write(b"hello from a terminal")
        terminal.wait_for_text("hello from a terminal")
        terminal.write(b"\r")
        terminal.wait_for_text("COMPLETED")
        terminal.write(b"\x11")  # ctrl+q
        code = terminal.wait_exit()
    finally:
        terminal.close()
    assert code == 0
    store = HistoryStore(Path(tmp_path) / "demo")
    [conversation] = store.list_conversations()
    [turn] = store.turns(conversation.id)
    assert turn.prompt == "hello from a terminal" and turn.status == "COMPLETED" and turn.result == turn.prompt
