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


# Text made of what the sanitizer cares about: plain ASCII, controls, invisible characters,
# flags whole and cut, joiners, typographic non-ASCII.
PIECES = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8),
    st.sampled_from(["\n", "\t", "\x1b[31m", "\x00", "\x7f", "\x9b", "\x85", RLO, PDF, LRI, PDI, ZWSP, BOM]),
    st.sampled_from([ENGLAND, ENGLAND[:3], ENGLAND[1:], "\U000e0041", FAMILY, "\u200c", "“é”", "🎉", "\u061c"]),
    st.text(max_size=4),
)


@given(st.lists(PIECES, max_size=12).map("".join))
def test_text_with_nothing_to_change_is_returned_as_it_is_and_the_rest_as_both_passes_make_it(text):
    from stackspot_tui.textsafe import _CONTROL, _INVISIBLE, _code_point, _picture

    both_passes = _INVISIBLE.sub(_code_point, _CONTROL.sub(_picture, text))
    assert visible(text) == both_passes
    if both_passes == text and not any(0xE0000 <= ord(c) <= 0xE007F for c in text):  # (a flag's tags: a second look)
        assert visible(text) is text  # the quick check found nothing: no copy made


def test_every_character_the_sanitizer_changes_is_seen_alone_in_ascii_and_in_other_text():
    from stackspot_tui.textsafe import _CONTROL, _INVISIBLE, _code_point, _picture

    codes = [*range(0x00, 0x100), *range(0x2000, 0x2070), 0x061C, 0xFEFF, 0xFEFE, *range(0xE0000, 0xE0080)]
    for code in codes:
        for text in (f"a{chr(code)}b", f"é{chr(code)}b"):
            assert visible(text) == _INVISIBLE.sub(_code_point, _CONTROL.sub(_picture, text)), hex(code)
