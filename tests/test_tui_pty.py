"""Keys through a real pseudo-terminal: text and Enter in one read send exactly that text.

The app runs as a real process (`stackspot-tui --demo`, in-process simulator, fast polling);
every burst is one `os.write`, so the app reads it as one piece, as it does from fast typing,
ssh, or `tmux send-keys "text" Enter`. Progress is read from the history, never slept on.
"""

from __future__ import annotations

import sys

import pytest
from ptyapp import PtyApp, demo_env

from stackspot_tui.store import HistoryStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")

BAR = "DEMO"  # in the top bar of the first frame


def stored(data_dir) -> list:
    store = HistoryStore(data_dir / "demo")
    return [t for c in store.list_conversations(archived=None) for t in store.turns(c.id)]


def all_answered(data_dir, count: int):
    def check() -> bool:
        turns = stored(data_dir)
        return len(turns) >= count and all(t.status == "COMPLETED" for t in turns)

    return check


@pytest.fixture
def app(tmp_path):
    running = PtyApp(["--demo", "--slug", "echo"], demo_env(tmp_path), size=(100, 30))
    yield running
    running.close()


def test_twenty_bursts_of_text_and_enter_are_sent_byte_for_byte(app, tmp_path):
    app.wait_for_text(BAR)
    sent = []
    for n in range(20):
        prompt = f"some prompt {n}"
        app.write(prompt.encode() + b"\r")
        sent.append(prompt)
        app.wait_for(all_answered(tmp_path, n + 1), f"turn {n + 1} answered")
    turns = stored(tmp_path)
    assert [t.prompt for t in turns] == sent
    assert [t.input_data for t in turns] == sent


def test_a_burst_at_the_first_frame_is_not_lost(app, tmp_path):
    app.wait_for_text(BAR)  # the very first frame: the prompt may not have focus yet
    app.write(b"typed at once\r")
    app.wait_for(all_answered(tmp_path, 1), "the turn answered")
    app.write(b"and again\r")
    app.wait_for(all_answered(tmp_path, 2), "the second turn answered")
    assert [t.prompt for t in stored(tmp_path)] == ["typed at once", "and again"]


def test_a_burst_typed_while_the_app_starts_is_sent_as_typed(app, tmp_path):
    # Before the app has put the terminal in raw mode: the terminal's line editor holds it, and
    # turns the Enter into a line feed (read as Ctrl+J once raw mode begins).
    app.write(b"typed before the first frame\r")
    app.write(b"and a draft")
    app.wait_for(all_answered(tmp_path, 1), "the turn answered")
    assert [t.prompt for t in stored(tmp_path)] == ["typed before the first frame"]
    app.wait_for_text("and a draft")  # in the prompt, not sent
    app.write(b"\r")
    app.wait_for(all_answered(tmp_path, 2), "the second turn answered")
    assert [t.prompt for t in stored(tmp_path)] == ["typed before the first frame", "and a draft"]


def test_editing_keys_in_a_burst_apply_in_order(app, tmp_path):
    app.wait_for_text(BAR)
    # "helo", Backspace, "lo", Left ×2, "X", End, "!" then Enter, all in one read
    app.write(b"helo\x7flo\x1b[D\x1b[DX\x1b[F!\r")
    app.wait_for(all_answered(tmp_path, 1), "the turn answered")
    assert stored(tmp_path)[0].prompt == "helXlo!"


def test_a_bracketed_paste_of_several_lines_is_inserted_not_sent(app, tmp_path):
    app.wait_for_text(BAR)
    app.write(b"\x1b[200~first line\rsecond line\r\x1b[201~")
    app.write(b" end")
    app.wait_for_text("end")
    assert stored(tmp_path) == []  # nothing sent by the pasted line breaks
    app.write(b"\r")
    app.wait_for(all_answered(tmp_path, 1), "the turn answered")
    assert stored(tmp_path)[0].prompt == "first line\nsecond line\n end"
