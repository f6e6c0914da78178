"""The TinyDB history: records, layout, recovery and concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from stackspot_tui.store import (
    PAGE_SIZE,
    AmbiguousConversationError,
    HistoryCorruptError,
    HistoryStore,
    HistoryVersionError,
    UnknownConversationError,
    UnknownTurnError,
)
from stackspot_tui.store.models import StepSummary


@pytest.fixture(autouse=True, params=["flock", "filelock"])
def lock_kind(request, monkeypatch):
    """Every store test runs twice: with flock, and with the portable lock used where fcntl does not exist."""
    if request.param == "filelock":
        monkeypatch.setattr("stackspot_tui.store.storage.fcntl", None)
    return request.param


def test_conversation_round_trip_and_title_from_first_prompt(store):
    conversation = store.create_conversation("code-review")
    assert len(conversation.id) == 8 and conversation.title == ""
    store.add_turn(conversation.id, "\n  Review this parser please\nsecond line", "x")
    again = HistoryStore(store.root).get_conversation(conversation.id)
    assert again.title == "Review this parser please" and again.turn_count == 1 and again.slug == "code-review"


def test_long_titles_are_cut(store):
    conversation = store.create_conversation("qc")
    store.add_turn(conversation.id, "x" * 200, "x")
    assert len(store.get_conversation(conversation.id).title) == 60


def test_list_newest_first_and_archive_filter(store):
    first = store.create_conversation("a")
    second = store.create_conversation("b")
    store.add_turn(first.id, "later activity", "x")
    assert [c.id for c in store.list_conversations()] == [first.id, second.id]
    store.update_conversation(first.id, archived=True)
    assert [c.id for c in store.list_conversations()] == [second.id]
    assert [c.id for c in store.list_conversations(archived=True)] == [first.id]
    assert len(store.list_conversations(archived=None)) == 2
    assert store.latest_conversation().id == second.id
    assert store.latest_conversation("a") is None


def test_resolve_prefix(store):
    conversation = store.create_conversation("a")
    assert store.resolve_id(conversation.id[:4]) == conversation.id
    assert store.resolve_id(conversation.id.upper()) == conversation.id
    with pytest.raises(UnknownConversationError):
        store.resolve_id("zz")
    with pytest.raises(UnknownConversationError):
        store.resolve_id("ffff0000" if conversation.id != "ffff0000" else "ffff0001")


def test_ambiguous_prefix(store, monkeypatch):
    ids = iter(["abc11111", "abc22222"])
    monkeypatch.setattr("stackspot_tui.store.history.secrets.token_hex", lambda n: next(ids))
    store.create_conversation("a")
    store.create_conversation("b")
    with pytest.raises(AmbiguousConversationError, match="abc11111, abc22222"):
        store.resolve_id("abc")


def test_turns_across_pages_and_partial_reads(store, lock_kind):
    if lock_kind == "filelock":
        pytest.skip("pages, not locks")
    conversation = store.create_conversation("a")
    for n in range(250):
        store.add_turn(conversation.id, f"prompt {n}", f"prompt {n}")
    directory = store.root / "conversations" / conversation.id
    for folded in (False, True):  # the newest turns in the journal, then all of them in the pages
        if folded:
            store.fold_journal(conversation.id)
            files = sorted(p.name for p in directory.iterdir())
            assert files == ["0000.json", "0001.json", "0002.json", "conversation.json", "journal.jsonl"]
            assert (directory / "journal.jsonl").stat().st_size == 0
        else:
            assert (directory / "journal.jsonl").stat().st_size > 0
        reader = HistoryStore(store.root)  # nothing cached
        assert [t.seq for t in reader.turns(conversation.id)] == list(range(250))
        assert [t.prompt for t in reader.turns(conversation.id, start=95, limit=10)] == [
            f"prompt {n}" for n in range(95, 105)
        ]
        assert reader.get_conversation(conversation.id).turn_count == 250
    assert PAGE_SIZE == 100


def test_turns_read_for_a_conversation_already_read_are_the_ones_it_counted(store, monkeypatch):
    """export --all lists every conversation and reads its turns: the record is not read again,
    the turns are those the listing counted, and one deleted in between is unknown, not damage."""
    kept, gone = store.create_conversation("a"), store.create_conversation("b")
    for n in range(150):
        store.add_turn(kept.id, f"prompt {n}", f"prompt {n}")
        store.add_turn(gone.id, f"prompt {n}", f"prompt {n}")
    store.fold_journal(kept.id)
    store.fold_journal(gone.id)
    listed = {c.id: c for c in store.list_conversations()}
    store.add_turn(kept.id, "after the listing", "after the listing")
    store.delete_conversation(gone.id)
    reader = HistoryStore(store.root)
    monkeypatch.setattr(reader, "_record", lambda conv_id: pytest.fail("the record was read again"))
    assert [t.seq for t in reader.iter_turns(listed[kept.id])] == list(range(150))
    with pytest.raises(UnknownConversationError):
        list(reader.iter_turns(listed[gone.id]))


def test_update_turn_and_pending_tracking(store):
    conversation = store.create_conversation("a")
    turn = store.add_turn(conversation.id, "q", "q")
    assert store.pending_turns() == []  # no execution id yet: nothing to re-attach
    store.update_turn(conversation.id, turn.seq, execution_id="01EXEC", status="CREATED")
    [(pending_conversation, pending_turn)] = store.pending_turns()
    assert pending_conversation.id == conversation.id and pending_turn.execution_id == "01EXEC"
    steps = [StepSummary(name="analyze", order=1, type="LLM", done=True, sources=["docs"])]
    done = store.update_turn(conversation.id, turn.seq, status="COMPLETED", result={"a": 1}, steps=steps)
    assert done.steps[0].sources == ["docs"]
    assert store.pending_turns() == []
    assert HistoryStore(store.root).get_turn(conversation.id, turn.seq).result == {"a": 1}


def test_update_turn_refuses_unknown_fields(store):
    conversation = store.create_conversation("a")
    turn = store.add_turn(conversation.id, "q", "q")
    with pytest.raises(ValueError):
        store.update_turn(conversation.id, turn.seq, colour="blue")
    with pytest.raises(ValueError):
        store.update_turn(conversation.id, turn.seq, conversation="ffffffff")


def test_delete_turn_never_reuses_its_seq(store):
    conversation = store.create_conversation("a")
    store.add_turn(conversation.id, "one", "one")
    store.add_turn(conversation.id, "two", "two")
    store.delete_turn(conversation.id, 0)
    third = store.add_turn(conversation.id, "three", "three")
    assert third.seq == 2
    assert [t.prompt for t in store.turns(conversation.id)] == ["two", "three"]
    assert store.get_conversation(conversation.id).turn_count == 2
    with pytest.raises(UnknownTurnError):
        store.get_turn(conversation.id, 0)


def test_delete_conversation(store):
    conversation = store.create_conversation("a")
    store.add_turn(conversation.id, "q", "q")
    store.delete_conversation(conversation.id)
    assert store.list_conversations(archived=None) == []
    assert not (store.root / "conversations" / conversation.id).exists()
    with pytest.raises(UnknownConversationError):
        store.get_conversation(conversation.id)


def test_search_prompts_and_results(store):
    first = store.create_conversation("a")
    turn = store.add_turn(first.id, "How do I parse TOML?", "x")
    store.update_turn(first.id, turn.seq, result="Use tomllib from the standard library.")
    second = store.create_conversation("b")
    turn = store.add_turn(second.id, "json please", "x")
    store.update_turn(second.id, turn.seq, result={"answer": "Structured Élan"})
    hits = store.search("TOMLLIB")
    assert [(h.conversation.id, h.field) for h in hits] == [(first.id, "result")]
    assert "tomllib" in hits[0].snippet
    assert store.search("élan")[0].conversation.id == second.id
    assert store.search('"answer"')[0].conversation.id == second.id  # needle with a quote: no prefilter
    assert store.search("nothing") == []


def test_import_keeps_id_or_picks_a_new_one(store, tmp_path):
    conversation = store.create_conversation("a")
    turn = store.add_turn(conversation.id, "q", "q")
    store.update_turn(conversation.id, turn.seq, execution_id="01X", status="RUNNING")
    original = store.get_conversation(conversation.id)
    turns = store.turns(conversation.id)
    elsewhere = HistoryStore(tmp_path / "other")
    assert elsewhere.import_conversation(original, turns).id == conversation.id
    assert [t.seq for _, t in elsewhere.pending_turns()] == [0]
    copy = store.import_conversation(original, store.turns(conversation.id))
    assert copy.id != conversation.id and store.turns(copy.id)[0].conversation == copy.id


def test_damaged_file_is_reported_not_overwritten(store):
    conversation = store.create_conversation("a")
    record = store.root / "conversations" / conversation.id / "conversation.json"
    record.write_text('{"conversations": {"1": ')
    with pytest.raises(HistoryCorruptError) as err:
        store.get_conversation(conversation.id)
    assert str(record) in str(err.value) and "left untouched" in str(err.value)
    with pytest.raises(HistoryCorruptError):
        store.add_turn(conversation.id, "q", "q")  # a write must not replace the damaged file
    assert record.read_text() == '{"conversations": {"1": '


@pytest.mark.parametrize(
    "content",
    ["[1, 2]", '{"conversations": [1]}', '{"conversations": {"1": {"slug": "x"}}}', '{"conversations": {}}'],
)
def test_wrong_shapes_are_damage(tmp_path, content):
    store = HistoryStore(tmp_path)
    (tmp_path / "conversations" / "00000000").mkdir(parents=True)
    (tmp_path / "conversations" / "00000000" / "conversation.json").write_text(content)
    with pytest.raises(HistoryCorruptError):
        store.get_conversation("00000000")


def test_newer_schema_is_refused(tmp_path):
    HistoryStore(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(HistoryVersionError, match="schema version 99"):
        HistoryStore(tmp_path)


def test_quarantine_never_overwrites(tmp_path):
    bad = tmp_path / "0.json"
    for _ in range(3):
        bad.write_text("junk")
        HistoryStore.quarantine(bad)
    assert len(list(tmp_path.glob("0.json.corrupt-*"))) == 3 and not bad.exists()


def test_writes_leave_no_temp_files(store):
    conversation = store.create_conversation("a")
    for n in range(5):
        store.add_turn(conversation.id, str(n), str(n))
    assert not [p for p in store.root.rglob("*") if p.name.endswith(".tmp")]


def _writer(root: str, conv_id: str | None, count: int, queue, lock_kind: str) -> None:
    if lock_kind == "filelock":
        from stackspot_tui.store import storage

        storage.fcntl = None  # type: ignore[assignment]
    store = HistoryStore(Path(root))
    target = conv_id or store.create_conversation("own").id
    for n in range(count):
        store.add_turn(target, f"writer turn {n}", "x")
    queue.put(target)


@pytest.mark.e2e  # real processes: `make test`, not `make test-fast`
@pytest.mark.parametrize("shared", [True, False], ids=["one-conversation", "own-conversations"])
def test_parallel_writer_processes_lose_no_turn(tmp_path, shared, lock_kind):
    if lock_kind == "filelock" and not shared:
        pytest.skip("one parallel run is enough for the portable lock")
    store = HistoryStore(tmp_path)
    conv_id = store.create_conversation("shared").id if shared else None
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    writers = [context.Process(target=_writer, args=(str(tmp_path), conv_id, 25, queue, lock_kind)) for _ in range(4)]
    for w in writers:
        w.start()
    targets = {queue.get(timeout=60) for _ in writers}
    for w in writers:
        w.join(timeout=60)
        assert w.exitcode == 0
    turns = [t for c in targets for t in store.turns(c)]
    assert len(turns) == 100
    if shared:
        assert sorted(t.seq for t in turns) == list(range(100))
        assert store.get_conversation(conv_id).turn_count == 100


def test_every_write_is_fsynced_file_then_directory(tmp_path, monkeypatch):
    """The suite skips fsync for speed (conftest.no_fsync); here it is counted, not skipped."""
    import os
    import stat

    synced: list[str] = []
    monkeypatch.setattr(
        "stackspot_tui.store.storage.os.fsync",
        lambda fd: synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"),
    )
    store = HistoryStore(tmp_path)
    synced.clear()
    store.create_conversation("qc")
    assert synced == ["file", "dir"]


def test_a_whole_turn_syncs_once_per_call_that_must_survive_a_power_cut(tmp_path, monkeypatch):
    """A turn's steps are journal lines: one fsync each (the journal's directory once, when it is
    made), none for a progress snapshot (a power cut keeps the previous one). Folding the journal
    fsyncs each file before its rename and the directory once, before the journal goes."""
    import os
    import stat

    events: list[str] = []
    rename = os.replace
    monkeypatch.setattr(
        "stackspot_tui.store.storage.os.fsync",
        lambda fd: events.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"),
    )

    def renaming(source, target):
        events.append(f"rename {Path(target).name}")
        rename(source, target)

    monkeypatch.setattr("stackspot_tui.atomicfile.os.replace", renaming)
    store = HistoryStore(tmp_path)
    conv_id = store.create_conversation("qc").id

    def call(fn, *args, **kwargs) -> list[str]:
        events.clear()
        fn(*args, **kwargs)
        return list(events)

    assert call(store.add_turn, conv_id, "q", "q") == ["file", "dir"]
    assert call(store.update_turn, conv_id, 0, execution_id="01E", status="CREATED") == ["file"]
    assert call(store.update_turn, conv_id, 0, status="RUNNING", percentage=0.5) == []
    assert call(store.update_turn, conv_id, 0, status="COMPLETED", result="a") == ["file"]
    assert call(store.add_turn, conv_id, "q2", "q2") == ["file"]
    page, record = "rename 0000.json", "rename conversation.json"
    assert call(store.fold_journal, conv_id) == ["file", page, "file", record, "dir"]
    assert store.journal_path(conv_id).stat().st_size == 0  # emptied, kept: no directory sync to make it again
    assert call(store.add_turn, conv_id, "q3", "q3") == ["file"]
    assert [t.prompt for t in store.turns(conv_id)] == ["q", "q2", "q3"] and store.get_turn(conv_id, 0).result == "a"
