"""Bidi overrides and other invisible characters are shown, never obeyed: wherever text is printed."""

from __future__ import annotations

import io
import json
import os
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stackspot_tui.cli import main
from stackspot_tui.store import HistoryStore
from stackspot_tui.textsafe import one_line, visible

RLO, PDF, LRI, PDI, ZWSP, BOM = "\u202e", "\u202c", "\u2066", "\u2069", "\u200b", "\ufeff"
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"


def test_bidi_and_invisible_characters_are_made_visible():
    assert visible(f"price: 10{RLO}00 USD{PDF}") == "price: 10‹U+202E›00 USD‹U+202C›"
    assert visible(f"a{ZWSP}b{BOM}c{LRI}d{PDI}") == "a‹U+200B›b‹U+FEFF›c‹U+2066›d‹U+2069›"
    assert visible("hidden \U000e0041\U000e0042") == "hidden ‹U+E0041›‹U+E0042›"  # tag-character smuggling
    assert one_line(f"title {RLO}txt.exe\n second") == "title ‹U+202E›txt.exe second"


def test_flags_emoji_and_scripts_keep_their_joiners():
    for text in (ENGLAND, FAMILY, "می\u200cخواهم"):  # a subdivision flag, a ZWJ family, a Persian ZWNJ
        assert visible(text) == text and one_line(text) == text


INVISIBLE_CATEGORIES = {"Cc", "Cf"}


@given(st.text())
def test_nothing_invisible_is_left_but_newlines_tabs_and_joiners(text):
    shown = visible(text).replace(ENGLAND, "")
    left = {c for c in shown if unicodedata.category(c) in INVISIBLE_CATEGORIES} - {"\n", "\t", "\u200c", "\u200d"}
    bidi = {
        c
        for c in left
        if unicodedata.bidirectional(c) in {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}
    }
    assert not bidi
    assert not ({c for c in left if ord(c) < 0xA0})  # C0 and C1 controls


@pytest.fixture
def history(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("STACKSPOT")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("STACKSPOT_TUI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STACKSPOT_TUI_CONFIG", str(tmp_path / "none.toml"))
    store = HistoryStore(tmp_path / "history")
    conversation = store.create_conversation("code-review")
    turn = store.add_turn(conversation.id, f"invoice {RLO}fdp.exe", "x")
    store.update_turn(conversation.id, turn.seq, status="COMPLETED", result=f"answer {LRI}hidden{PDI} end")
    return conversation


@pytest.mark.parametrize(
    "args",
    [
        ["conversations"],
        ["show", "{id}"],
        ["search", "invoice"],
        ["export", "{id}", "--format", "md"],
        ["export", "{id}", "--format", "html"],
    ],
)
def test_the_command_line_never_prints_a_raw_bidi_control(history, args):
    out, err = io.StringIO(), io.StringIO()
    assert main([a.format(id=history.id) for a in args], stdout=out, stderr=err) == 0, err.getvalue()
    printed = out.getvalue() + err.getvalue()
    assert RLO not in printed and LRI not in printed and "‹U+202E›" in printed


@pytest.mark.parametrize(
    "args",
    [
        ["conversations", "--json"],
        ["show", "{id}", "--json"],
        ["search", "invoice", "--json"],
        ["export", "{id}", "--format", "json"],
    ],
)
def test_json_output_escapes_them_and_parses_to_the_same_text(history, args):
    out, err = io.StringIO(), io.StringIO()
    assert main([a.format(id=history.id) for a in args], stdout=out, stderr=err) == 0, err.getvalue()
    assert RLO not in out.getvalue() and "\\u202e" in out.getvalue()
    assert f"invoice {RLO}fdp.exe" in json.dumps(json.loads(out.getvalue()), ensure_ascii=False)
