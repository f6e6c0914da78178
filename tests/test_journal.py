"""The conversation journal: a turn's steps as appended lines, laid over the page and record files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from stackspot_tui.store import SCHEMA_VERSION, HistoryCorruptError, HistoryStore
from stackspot_tui.store.journal import FOLD_BYTES, encode_line


def a_turn_in_the_journal(store: HistoryStore) -> tuple[str, list[bytes]]:
    """A conversation whose second turn lives in the journal only; the journal's lines as written."""
    conv_id = store.create_conversation("qc").id
    store.add_turn(conv_id, "first", "x")
    store.update_turn(conv_id, 0, status="COMPLETED", result="first answer")
    store.fold_journal(conv_id)
    store.add_turn(conv_id, "second", "x")
    store.update_turn(conv_id, 1, execution_id="01E", status="CREATED")
    store.update_turn(conv_id, 1, status="RUNNING", percentage=0.5)
    store.update_turn(conv_id, 1, status="COMPLETED", result="second answer")
    lines = store.journal_path(conv_id).read_bytes().splitlines(keepends=True)
    assert len(lines) == 4 and not (store.root / "conversations" / conv_id / "0000.json").read_text().count("second")
    return conv_id, lines


def test_a_reader_sees_the_journal_over_the_files_and_a_fold_changes_nothing_it_sees(tmp_path):
    store = HistoryStore(tmp_path)
    conv_id, _ = a_turn_in_the_journal(store)
    for _ in ("journal", "folded"):
        reader = HistoryStore(tmp_path)  # another process: nothing cached
        conversation = reader.get_conversation(conv_id)
        assert (conversation.turn_count, conversation.next_seq, conversation.pending) == (2, 2, [])
        assert [(t.prompt, t.result) for t in reader.turns(conv_id)] == [
            ("first", "first answer"),
            ("second", "second answer"),
        ]
        assert [h.seq for h in reader.search("second")] == [1]
        store.fold_journal(conv_id)
    assert store.journal_path(conv_id).stat().st_size == 0


def test_a_write_by_another_store_is_seen_at_once(tmp_path):
    writer, reader = HistoryStore(tmp_path), HistoryStore(tmp_path)
    conv_id = writer.create_conversation("qc").id
    writer.add_turn(conv_id, "q", "x")
    assert reader.get_turn(conv_id, 0).status == "PENDING"
    for status in ("CREATED", "RUNNING", "COMPLETED"):
        writer.update_turn(conv_id, 0, status=status)
        assert reader.get_turn(conv_id, 0).status == status  # the cached journal is not stale


def test_the_journal_is_folded_into_the_files_once_it_grows_past_its_limit(tmp_path):
    store = HistoryStore(tmp_path)
    conv_id = store.create_conversation("qc").id
    answer = "the answer " * 500
    sizes = []
    for n in range(40):
        store.add_turn(conv_id, f"prompt {n}", "x")
        store.update_turn(conv_id, n, status="COMPLETED", result=answer)
        sizes.append(store.journal_path(conv_id).stat().st_size)
    assert max(sizes) <= FOLD_BYTES + 2 * len(answer) + 2000 and sizes.count(0) >= 2
    page = json.loads((tmp_path / "conversations" / conv_id / "0000.json").read_text())["turns"]
    assert len(page) >= 30  # the folded turns live in the page file
    assert [t.seq for t in HistoryStore(tmp_path).turns(conv_id)] == list(range(40))


@pytest.fixture(scope="module")
def journaled(tmp_path_factory) -> tuple[Path, str, list[bytes]]:
    root = tmp_path_factory.mktemp("journaled") / "history"
    conv_id, lines = a_turn_in_the_journal(HistoryStore(root))
    return root, conv_id, lines


@settings(  # as many examples as the profile draws
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cut=st.integers(min_value=0), zeros=st.integers(0, 300))
@example(cut=9, zeros=0)  # just past the checksum's space: once taken for damage
@example(cut=9, zeros=4)
@example(cut=8, zeros=0)
def test_a_last_line_cut_short_is_a_write_that_never_finished(journaled, tmp_path_factory, cut, zeros):
    """A power cut before an append's fsync leaves part of the line (and perhaps NUL blocks):
    readers see the whole lines before it, and the next append writes over it."""
    template, conv_id, lines = journaled
    root = tmp_path_factory.mktemp("torn") / "history"
    shutil.copytree(template, root)
    path = root / "conversations" / conv_id / "journal.jsonl"
    whole = b"".join(lines[:-1])
    cut %= len(lines[-1])  # 0 .. len-1: never the whole last line
    path.write_bytes(whole + lines[-1][:cut] + b"\0" * zeros)
    reader = HistoryStore(root)
    assert reader.get_turn(conv_id, 1).status == "RUNNING"  # the state the whole lines hold
    reader.update_turn(conv_id, 1, status="COMPLETED", result="written again")
    assert path.read_bytes().startswith(whole) and path.read_bytes().endswith(b"\n")
    assert HistoryStore(root).get_turn(conv_id, 1).result == "written again"


@pytest.mark.parametrize(
    ("damage", "detail"),
    [
        (lambda lines: lines[:1] + [lines[1].replace(b"second", b"secxnd")] + lines[2:], "line 2 is damaged"),
        (lambda lines: lines[:3] + [b"garbage\n"], "line 4 is damaged"),
        (lambda lines: lines[:2] + [encode_line({"turn": {"seq": 1, "prompt": 5}})] + lines[3:], "line 3 is damaged"),
        (lambda lines: lines + [encode_line({"note": "unknown"})], "line 5 is damaged: not a journal entry"),
    ],
    ids=["bit flip", "garbage last line", "a bad turn", "an unknown entry"],
)
def test_a_damaged_journal_is_one_clear_error_and_repair_keeps_the_lines_before_the_damage(tmp_path, damage, detail):
    store = HistoryStore(tmp_path)
    conv_id, lines = a_turn_in_the_journal(store)
    path = store.journal_path(conv_id)
    path.write_bytes(b"".join(damage(lines)))
    damaged = path.read_bytes()
    with pytest.raises(HistoryCorruptError, match=f"journal.jsonl is damaged \\({detail}.*stackspot-tui repair"):
        HistoryStore(tmp_path).get_conversation(conv_id)
    with pytest.raises(HistoryCorruptError):
        HistoryStore(tmp_path).add_turn(conv_id, "no write into a damaged journal", "x")
    assert path.read_bytes() == damaged
    report = HistoryStore(tmp_path, check=False).repair()
    assert any("journal.jsonl aside" in a for a in report.actions) and not report.problems, report
    [aside] = path.parent.glob("journal.jsonl.corrupt-*")
    assert aside.read_bytes() == damaged
    repaired = HistoryStore(tmp_path)
    turns = repaired.turns(conv_id)
    assert turns[0].result == "first answer"
    assert repaired.get_conversation(conv_id).turn_count == len(turns)
    repaired.add_turn(conv_id, "after repair", "x")
    assert HistoryStore(tmp_path, check=False).repair().actions == []


def test_a_version_2_history_opens_and_says_it_may_now_hold_journals(tmp_path):
    store = HistoryStore(tmp_path)
    conv_id = store.create_conversation("qc").id
    (tmp_path / "meta.json").write_text(json.dumps({"schema_version": 2, "app": "stackspot-tui"}))
    reopened = HistoryStore(tmp_path)
    assert json.loads((tmp_path / "meta.json").read_text())["schema_version"] == SCHEMA_VERSION == 3
    reopened.add_turn(conv_id, "q", "x")
    assert HistoryStore(tmp_path).get_turn(conv_id, 0).prompt == "q"


def test_a_journal_left_by_a_killed_fold_lays_the_same_states_over_the_files(tmp_path):
    store = HistoryStore(tmp_path)
    conv_id, _ = a_turn_in_the_journal(store)
    path = store.journal_path(conv_id)
    kept = path.read_bytes()
    store.fold_journal(conv_id)
    path.write_bytes(kept)  # as if killed after the files were written, before the journal went
    os.utime(path)
    reader = HistoryStore(tmp_path)
    assert [(t.prompt, t.result) for t in reader.turns(conv_id)][1] == ("second", "second answer")
    assert reader.get_conversation(conv_id).turn_count == 2


def test_a_long_answer_saved_as_it_streams_is_not_folded_on_every_save(tmp_path):
    """Each partial save is a line holding the whole answer so far: folding whenever the journal
    passes its limit would rewrite the page after every save, twice the bytes of the old way."""
    store = HistoryStore(tmp_path)
    conv_id = store.create_conversation("qc").id
    store.add_turn(conv_id, "q", "x")
    folds = 0
    for n in range(1, 17):
        store.update_turn(conv_id, 0, result="word " * (4_000 * n), incomplete=True)
        folds += store.journal_path(conv_id).stat().st_size == 0
    assert 2 <= folds <= 6, folds
    assert HistoryStore(tmp_path).get_turn(conv_id, 0).result == "word " * 64_000
