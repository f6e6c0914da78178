"""Damaged history: every record checked when read, one clear error, `repair` keeps every good record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from stackspot_tui.store import (
    SCHEMA_VERSION,
    DeleteIncompleteError,
    HistoryCorruptError,
    HistoryLocationError,
    HistoryStore,
    UnknownConversationError,
    schema,
)
from stackspot_tui.store.models import Conversation, StepSummary, Turn


def seeded(root: Path, turns: int = 3, slug: str = "code-review") -> tuple[HistoryStore, Conversation]:
    store = HistoryStore(root)
    conversation = store.create_conversation(slug)
    for n in range(turns):
        turn = store.add_turn(conversation.id, f"prompt {n}", f"prompt {n}")
        store.update_turn(conversation.id, turn.seq, status="COMPLETED", result=f"answer {n}", conversation_id="01C")
    store.fold_journal(conversation.id)  # the damage below is done to the page and record files
    return store, store.get_conversation(conversation.id)


def record_of(store: HistoryStore, conv_id: str) -> Path:
    return store.record_path(conv_id)


def page_of(store: HistoryStore, conv_id: str, page: int = 0) -> Path:
    return store.page_path(conv_id, page)


def edit(path: Path, change) -> None:
    data = json.loads(path.read_bytes())
    change(data)
    path.write_text(json.dumps(data))


def index_record(data: dict, conv_id: str) -> dict:
    return data["conversations"][str(int(conv_id, 16) + 1)]


def set_aside(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f"{path.name}.corrupt-*"))


def test_the_schema_covers_every_model_field():
    """A field added to a model needs its line in schema.py (and in docs/history-layout.md)."""
    for fields, model in ((schema.CONVERSATION_FIELDS, Conversation), (schema.TURN_FIELDS, Turn)):
        assert set(fields) == set(model.__dataclass_fields__)
    assert set(schema.STEP_FIELDS) == set(StepSummary.__dataclass_fields__)


SOUND_TURN = Turn(
    conversation="abcdef01",
    seq=5,
    prompt="p",
    input_data={"a": 1},
    status="COMPLETED",
    steps=[StepSummary(name="s", order=1, type="LLM", done=True, sources=["x"])],
    percentage=0.5,
    duration=1.5,
    finished_at="2026-01-01T00:00:00.000001Z",
    tokens={"output": 3},
    sources=["doc"],
).to_dict()
SOUND_CONVERSATION = Conversation(id="abcdef01", slug="qc", turn_count=2, next_seq=6, pending=[5]).to_dict()
json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 2**64),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.just("2026-01-01T00:00:00Z"),
    st.lists(st.one_of(st.integers(-1, 7), st.text(max_size=2), st.just({"name": "x"})), max_size=3),
    st.dictionaries(st.text(max_size=6), st.integers(-1, 3), max_size=2),
)


@settings(max_examples=examples(300), deadline=None, derandomize=True, database=None)
@given(
    kind=st.sampled_from(["turn", "conversation"]),
    changes=st.lists(st.tuples(st.sampled_from([*schema.TURN_FIELDS, *schema.CONVERSATION_FIELDS, "x"]), json_values)),
    drops=st.lists(st.sampled_from([*schema.TURN_FIELDS, *schema.CONVERSATION_FIELDS])),
)
def test_the_fast_check_never_passes_what_the_reference_check_refuses(kind, changes, drops):
    record = dict(SOUND_TURN if kind == "turn" else SOUND_CONVERSATION)
    for name, value in changes:
        record[name] = value
    for name in drops:
        record.pop(name, None)
    if kind == "turn":
        fast, reference = (
            schema._sound_turn("6", record, "abcdef01", 0),
            schema._turn_problem("6", record, "abcdef01", 0),
        )
    else:
        key = str(0xABCDEF01 + 1)
        fast, reference = schema._sound_conversation(key, record, "a"), schema._conversation_problem(key, record, "a")
    assert not fast or reference is None, reference
    known = schema.TURN_FIELDS if kind == "turn" else schema.CONVERSATION_FIELDS
    if reference is None and record.keys() <= known.keys():  # sound records take the fast path
        assert fast


# Each damage: (where, how), what the reader says.
WRONG_TYPES = [
    ("record", lambda d, c: index_record(d, c).__setitem__("updated_at", 5), "'updated_at' must be an ISO 8601"),
    ("record", lambda d, c: index_record(d, c).__setitem__("title", 123), "'title' must be a string"),
    ("record", lambda d, c: index_record(d, c).__setitem__("turn_count", -1), "'turn_count' must be a whole number"),
    ("record", lambda d, c: index_record(d, c).__setitem__("archived", "no"), "'archived' must be true or false"),
    ("record", lambda d, c: index_record(d, c).pop("next_seq"), "lacks 'next_seq'"),
    ("record", lambda d, c: index_record(d, c).__setitem__("pending", [99]), "pending turn beyond"),
    ("page", lambda d, c: d["turns"]["1"].__setitem__("prompt", 12345), "turn 1: 'prompt' must be a string"),
    ("page", lambda d, c: d["turns"]["2"].__setitem__("seq", "1"), "turn 2: 'seq' must be a whole number"),
    ("page", lambda d, c: d["turns"]["2"].__setitem__("steps", [{"done": True}]), "step 1 lacks 'name'"),
    ("page", lambda d, c: d["turns"]["1"].__setitem__("percentage", 7), "'percentage' must be a number from 0"),
    ("page", lambda d, c: d["turns"]["3"].__setitem__("created_at", "yesterday"), "'created_at' must be an ISO"),
    ("page", lambda d, c: d["turns"]["1"].__setitem__("conversation", "ffffffff"), "belongs to conversation"),
    ("page", lambda d, c: d["turns"].__setitem__("7", d["turns"]["1"]), "filed under the wrong key"),
    ("page", lambda d, c: d["turns"].__setitem__("4", "garbage"), "turn 4 is not an object"),
    ("page", lambda d, c: d.__setitem__("_default", {}), "holds tables"),
]


@pytest.mark.parametrize(("where", "change", "message"), WRONG_TYPES, ids=[m for _, _, m in WRONG_TYPES])
def test_a_bad_record_is_one_clear_error_no_write_and_repair_keeps_the_good_ones(tmp_path, where, change, message):
    store, conversation = seeded(tmp_path)
    path = record_of(store, conversation.id) if where == "record" else page_of(store, conversation.id)
    edit(path, lambda data: change(data, conversation.id))
    damaged = path.read_bytes()
    fresh = HistoryStore(tmp_path)
    read = (
        (lambda: fresh.get_conversation(conversation.id))
        if where == "record"
        else (lambda: fresh.turns(conversation.id))
    )
    with pytest.raises(HistoryCorruptError) as err:
        read()
    assert message in str(err.value) and str(path) in str(err.value) and "stackspot-tui repair" in str(err.value)
    with pytest.raises(HistoryCorruptError):
        fresh.add_turn(conversation.id, "a new turn", "x")  # no write into a file that did not read cleanly
    assert path.read_bytes() == damaged

    report = HistoryStore(tmp_path, check=False).repair()
    assert not report.problems and report.actions
    [aside] = set_aside(path)
    assert aside.read_bytes() == damaged  # kept as it was
    repaired = HistoryStore(tmp_path)
    turns = repaired.turns(conversation.id)
    if where == "record":  # rebuilt from the pages, the sound fields of the bad record kept
        assert [t.prompt for t in turns] == ["prompt 0", "prompt 1", "prompt 2"]
        again = repaired.get_conversation(conversation.id)
        assert (again.slug, again.turn_count, again.next_seq) == ("code-review", 3, 3)
    else:  # the good turns of the page are still there; the bad one stays in the set-aside file
        assert len(turns) >= 2 and repaired.get_conversation(conversation.id).turn_count == len(turns)
    repaired.add_turn(conversation.id, "after repair", "x")
    assert HistoryStore(tmp_path, check=False).repair().actions == []  # nothing left to do


def test_repair_keeps_the_title_and_archive_flag_of_a_bad_record(tmp_path):
    store, conversation = seeded(tmp_path)
    store.update_conversation(conversation.id, title="My review", archived=True)
    edit(record_of(store, conversation.id), lambda d: index_record(d, conversation.id).__setitem__("updated_at", 5))
    HistoryStore(tmp_path, check=False).repair()
    again = HistoryStore(tmp_path).get_conversation(conversation.id)
    assert (again.title, again.archived, again.turn_count) == ("My review", True, 3)


@pytest.mark.parametrize("what", ["empty", "truncated", "directory", "missing", "nan"])
def test_an_unreadable_page_is_never_shown_as_empty(tmp_path, what):
    store, conversation = seeded(tmp_path)
    page = page_of(store, conversation.id)
    raw = page.read_bytes()
    if what == "empty":
        page.write_bytes(b"")
    elif what == "truncated":
        page.write_bytes(raw[: len(raw) * 2 // 3])
    elif what == "directory":
        page.unlink()
        page.mkdir()
    elif what == "missing":
        page.unlink()
    else:
        page.write_bytes(raw.replace(b'"percentage":null', b'"percentage":NaN', 1))
    fresh = HistoryStore(tmp_path)
    reads = [
        lambda: fresh.turns(conversation.id),
        lambda: fresh.get_turn(conversation.id, 0),
        lambda: fresh.add_turn(conversation.id, "x", "x"),
    ]
    # Search answers from the catalog's copy, checked when it was written: the turns are still
    # found, and opening one says what is wrong with its page.
    assert [h.seq for h in fresh.search("prompt 0")] == [0]
    for read in reads:
        with pytest.raises(HistoryCorruptError, match="stackspot-tui repair"):
            read()
    report = HistoryStore(tmp_path, check=False).repair()
    assert not report.problems
    repaired = HistoryStore(tmp_path)
    kept = [t.prompt for t in repaired.turns(conversation.id)]
    if what == "truncated":
        assert kept and kept == [f"prompt {n}" for n in range(len(kept))]  # the whole records before the cut
    assert repaired.get_conversation(conversation.id).turn_count == len(kept)
    repaired.add_turn(conversation.id, "again", "x")
    assert [t.seq for t in repaired.turns(conversation.id)][-1] == 3  # seqs are never reused


@pytest.mark.parametrize(
    "name", ["meta.json", "lock", "conversations/{id}/conversation.json", "catalog", "conversations"]
)
def test_a_directory_or_file_in_the_wrong_place_is_damage_and_repair_clears_it(tmp_path, name):
    _, conversation = seeded(tmp_path)
    path = tmp_path / name.format(id=conversation.id)
    if path.is_dir():
        shutil.rmtree(path)
        path.write_text("in the way")
    else:
        path.unlink()
        path.mkdir()
    with pytest.raises(HistoryCorruptError, match="stackspot-tui repair"):
        HistoryStore(tmp_path).turns(conversation.id)
    report = HistoryStore(tmp_path, check=False).repair()
    assert not report.problems
    repaired = HistoryStore(tmp_path)
    assert set_aside(path)
    if name == "conversations":  # every conversation was in the directory the file replaced
        assert repaired.list_conversations(archived=None) == []
        return
    assert len(repaired.turns(conversation.id)) == 3
    assert [h.seq for h in repaired.search("prompt 2")] == [2]
    repaired.add_turn(conversation.id, "works again", "x")


def test_a_data_dir_that_is_a_file_is_a_location_error(tmp_path):
    (tmp_path / "data").write_text("")
    with pytest.raises(HistoryLocationError, match="is a file"):
        HistoryStore(tmp_path / "data" / "history")
    with pytest.raises(HistoryLocationError, match="is a file"):
        HistoryStore(tmp_path / "data")


def v1_history(root: Path, records: list[dict]) -> None:
    """A history as version 1 kept it: every conversation record in one of 16 index shards."""
    (root / "index").mkdir(parents=True)
    (root / "meta.json").write_text(json.dumps({"schema_version": 1, "app": "stackspot-tui"}))
    shards: dict[str, dict] = {}
    for record in records:
        shards.setdefault(record["id"][0], {})[str(int(record["id"], 16) + 1)] = record
    for shard, table in shards.items():
        (root / "index" / f"{shard}.json").write_text(json.dumps({"conversations": table}))


def test_a_version_1_history_is_converted_on_open(tmp_path):
    store = HistoryStore(tmp_path / "template")
    conversation = store.create_conversation("qc", "kept")
    store.add_turn(conversation.id, "find the needle", "x")
    store.fold_journal(conversation.id)  # version 1 had no journals
    record = store.get_conversation(conversation.id).to_dict()
    old = tmp_path / "old"
    shutil.copytree(tmp_path / "template" / "conversations", old / "conversations")
    (old / "conversations" / conversation.id / "conversation.json").unlink()
    v1_history(old, [record, Conversation(id="b0000001", slug="qc", title="no turns yet").to_dict()])
    converted = HistoryStore(old)
    assert {c.title for c in converted.list_conversations()} == {"kept", "no turns yet"}
    assert [h.conversation.id for h in converted.search("needle")] == [conversation.id]
    assert json.loads((old / "meta.json").read_text())["schema_version"] == SCHEMA_VERSION
    assert not (old / "index").exists()
    assert HistoryStore(old, check=False).repair().actions == []


def test_repair_of_a_truncated_version_1_index_keeps_the_whole_records_before_the_cut(tmp_path):
    records = [Conversation(id=f"a000000{n}", slug="qc", title=f"kept a000000{n}").to_dict() for n in (1, 2, 3)]
    v1_history(tmp_path, records)
    shard = tmp_path / "index" / "a.json"
    raw = shard.read_bytes()
    shard.write_bytes(raw[: raw.index(b'"a0000003"')])
    with pytest.raises(HistoryCorruptError, match="stackspot-tui repair"):
        HistoryStore(tmp_path)
    report = HistoryStore(tmp_path, check=False).repair()
    assert not report.problems and any("converted" in a for a in report.actions)
    titles = sorted(c.title for c in HistoryStore(tmp_path).list_conversations())
    assert titles == ["kept a0000001", "kept a0000002"]
    assert list(tmp_path.glob("index.corrupt-*")) or list((tmp_path / "index").glob("a.json.corrupt-*")) == []


# -- delete ------------------------------------------------------------------------------


def test_a_failed_removal_is_reported_and_repair_never_revives_the_conversation(tmp_path, monkeypatch):
    store, conversation = seeded(tmp_path)

    def fail(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("stackspot_tui.store.history.shutil.rmtree", fail)
    with pytest.raises(DeleteIncompleteError, match="could not remove"):
        store.delete_conversation(conversation.id)
    with pytest.raises(UnknownConversationError):
        store.get_conversation(conversation.id)
    assert (tmp_path / "trash" / conversation.id).is_dir()
    report = HistoryStore(tmp_path, check=False).repair()
    assert any("could not remove" in p for p in report.problems)  # still failing: said again
    monkeypatch.undo()
    report = HistoryStore(tmp_path, check=False).repair()
    assert not report.problems and any(f"finished deleting conversation {conversation.id}" in a for a in report.actions)
    assert HistoryStore(tmp_path).list_conversations(archived=None) == []
    assert not (tmp_path / "trash" / conversation.id).exists()


def test_a_delete_killed_after_the_move_is_finished_by_the_next_start(tmp_path):
    store, conversation = seeded(tmp_path)
    (tmp_path / "trash").mkdir()
    store.conversation_dir(conversation.id).rename(tmp_path / "trash" / conversation.id)  # the first step only
    again = HistoryStore(tmp_path)
    assert again.list_conversations(archived=None) == []
    assert not (tmp_path / "trash" / conversation.id).exists()
    assert HistoryStore(tmp_path, check=False).repair().actions == []


def test_an_id_whose_files_are_still_around_is_never_given_to_a_new_conversation(tmp_path, monkeypatch):
    store = HistoryStore(tmp_path)
    (tmp_path / "conversations" / "abcdef01").mkdir(parents=True)
    (tmp_path / "trash").mkdir()
    (tmp_path / "trash" / "abcdef02").mkdir()
    ids = iter(["abcdef01", "abcdef02", "abcdef03"])
    monkeypatch.setattr("stackspot_tui.store.history.secrets.token_hex", lambda n: next(ids))
    assert store.create_conversation("qc").id == "abcdef03"
