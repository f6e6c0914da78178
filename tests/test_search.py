"""Search and the catalog at small scale: what matches, in which order, and never a turn that does not exist."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest
from conftest import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from stackspot_tui.store import HistoryCorruptError, HistoryStore
from stackspot_tui.store.catalog import Catalog
from stackspot_tui.store.models import Conversation, Turn
from stackspot_tui.store.search import Matcher, fold, parse


def turn(store: HistoryStore, conv_id: str, prompt: str, answer: object = None, **fields) -> int:
    added = store.add_turn(conv_id, prompt, prompt)
    store.update_turn(conv_id, added.seq, status="COMPLETED", result=answer, **fields)
    return added.seq


def found(store: HistoryStore, text: str, **options) -> list[tuple[str, int]]:
    return [(h.conversation.id, h.seq) for h in store.search(text, **options)]


@pytest.fixture
def history(store):
    parser = store.create_conversation("code-review")
    turn(store, parser.id, "Review the tokenizer of my JSON parser", "The parser mishandles unicode escapes.")
    turn(store, parser.id, "And the lexer?", "Fine. Parsing stops at the first error.")
    tests = store.create_conversation("generate-tests")
    turn(store, tests.id, "Write tests for retry_policy", "def test_retry(): foo bar => baz")
    agent = store.create_conversation("", agent_id="01AGENT")
    turn(store, agent.id, "Qual é a política de caché?", "A política de cache expira em 5 minutos.")
    store.ids = {"parser": parser.id, "tests": tests.id, "agent": agent.id}
    return store


def test_words_anywhere_in_prompt_or_answer_case_and_accents_ignored(history):
    ids = history.ids
    assert found(history, "PARSER unicode") == [(ids["parser"], 0)]  # one in the prompt, one in the answer
    assert found(history, "politica cache") == [(ids["agent"], 0)]  # agent turns too; accents ignored
    assert found(history, "CACHÉ") == [(ids["agent"], 0)]
    assert found(history, "parser nowhere") == []


def test_prefix_phrase_and_joined_words(history):
    ids = history.ids
    assert sorted(found(history, "pars*")) == [(ids["parser"], 0), (ids["parser"], 1)]  # parser, Parsing
    assert found(history, "lex", prefix_last=True) == [(ids["parser"], 1)]  # the word being typed
    assert [h.match for h in history.search("lex")] == ["text"]  # a whole word otherwise: then text
    assert found(history, '"unicode escapes"') == [(ids["parser"], 0)]
    assert found(history, '"escapes unicode"') == []  # a phrase keeps its order
    assert found(history, "retry_policy") == [(ids["tests"], 0)]  # underscore joins: a phrase


def test_text_when_no_turn_holds_the_words(history):
    ids = history.ids
    hits = history.search("arse")  # inside "parser": no word, but the text is there
    assert [(h.conversation.id, h.seq) for h in hits] == [(ids["parser"], 0)]
    assert all(h.match == "text" for h in hits) and "arse" in hits[0].snippet.lower()
    assert found(history, "oo ba") == [(ids["tests"], 0)]  # across words
    assert found(history, "=>") == [(ids["tests"], 0)]  # no word at all: a scan
    assert found(history, "zzzz") == []


def test_hits_say_where_and_show_a_snippet(history):
    [hit] = history.search("escapes")
    assert hit.field == "result" and "escapes" in hit.snippet and hit.match == "words"
    [hit] = history.search("tokenizer")
    assert hit.field == "prompt" and hit.seq == 0 and hit.conversation.title.startswith("Review")


def test_ranked_by_how_well_and_how_recently_they_match(store):
    old = Turn(conversation="", seq=0, prompt="an old question", input_data="x", result="cache cache cache")
    old.created_at = "2020-01-01T00:00:00.000000Z"
    imported = store.import_conversation(Conversation(id="01d00000", slug="qc"), [old])
    conversation = store.create_conversation("qc")
    answer_only = turn(store, conversation.id, "something else", "about the cache")
    in_prompt = turn(store, conversation.id, "the cache question", "an answer")
    ranked = found(store, "cache")
    assert ranked == [(conversation.id, in_prompt), (conversation.id, answer_only), (imported.id, 0)]


def test_deleted_turns_and_conversations_are_never_found(history):
    ids = history.ids
    history.delete_turn(ids["parser"], 0)
    assert found(history, "unicode") == [] and found(history, "arse") == []
    assert found(history, "lexer") == [(ids["parser"], 1)]
    history.delete_conversation(ids["parser"])
    assert found(history, "parser") == [] and found(history, "arse") == []
    assert found(HistoryStore(history.root), "lexer") == []


def test_a_write_cut_short_leaves_no_phantom_and_the_next_start_catches_up(history, monkeypatch):
    """Killed between the files and the catalog (the catalog's apply never runs): a reader takes that
    conversation from its files; the next start copies it into the catalog again."""
    ids = history.ids

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # what a kill leaves: the mark, not the change

    monkeypatch.setattr(Catalog, "apply", killed)
    with pytest.raises(KeyboardInterrupt):
        history.delete_turn(ids["parser"], 0)
    with pytest.raises(KeyboardInterrupt):
        history.add_turn(ids["tests"], "a brand new question about zeppelins", "x")
    monkeypatch.undo()
    reader = HistoryStore(history.root, check=False)  # does no chores: reads around the marks
    assert reader.catalog.dirty() == {ids["parser"], ids["tests"]}
    assert found(reader, "unicode") == []  # deleted in the files: never found
    assert found(reader, "zeppelins") == [(ids["tests"], 1)]  # in the files: found
    assert found(reader, "arse") == [] and found(reader, "lexer") == [(ids["parser"], 1)]
    assert {c.id for c in reader.list_conversations()} == set(ids.values())
    fresh = HistoryStore(history.root)  # the next start
    assert fresh.catalog.dirty() == set()
    assert found(fresh, "zeppelins") == [(ids["tests"], 1)] and found(fresh, "unicode") == []
    assert HistoryStore(history.root, check=False).repair().actions == []  # in step: nothing to rebuild


@pytest.mark.parametrize("rebooted", [True, False])
def test_a_power_cut_that_loses_the_catalogs_last_commits_is_caught_up_after_the_reboot(
    history, monkeypatch, tmp_path, rebooted
):
    """Catalog commits are not fsynced: a power cut may keep the files' changes (fsynced) and lose
    the catalog's record of them, marks included. The next start after the reboot copies every
    conversation changed since the catalog's last commit back in, and drops the deleted ones; a
    pending turn is resumable again. (Without a reboot no commit can be lost: nothing is scanned.)"""
    import shutil

    monkeypatch.setattr("stackspot_tui.store.catalog.boot_id", lambda: "boot-1")
    ids = history.ids
    HistoryStore(history.root)  # notes this boot
    history.catalog.close()  # its last connection: SQLite checkpoints the WAL into the file
    shutil.copytree(history.root / "catalog", tmp_path / "kept")  # what the disk kept of it
    later = HistoryStore(history.root)
    turn(later, ids["tests"], "a question about zeppelins", "an answer")
    seq = later.add_turn(ids["tests"], "still running: dirigibles", "x").seq
    later.update_turn(ids["tests"], seq, execution_id="01EXEC", status="CREATED")
    later.delete_conversation(ids["parser"])
    hour_ago = time.time() - 3600  # appending to a journal leaves its directory's mtime as it was
    os.utime(later.conversation_dir(ids["tests"]), (hour_ago, hour_ago))
    later.catalog.close()
    shutil.rmtree(history.root / "catalog")
    shutil.copytree(tmp_path / "kept", history.root / "catalog")  # the power cut lost those commits
    monkeypatch.setattr("stackspot_tui.store.catalog.boot_id", lambda: "boot-2" if rebooted else "boot-1")
    fresh = HistoryStore(history.root)
    if not rebooted:  # the setup really leaves the catalog behind: only the catch-up brings it back
        assert found(fresh, "zeppelins") == []
        return
    assert found(fresh, "zeppelins") == [(ids["tests"], 1)]
    assert found(fresh, "lexer") == []  # its conversation was deleted
    assert ids["parser"] not in {c.id for c in fresh.list_conversations()}
    assert [(c.id, t.seq) for c, t in fresh.pending_turns()] == [(ids["tests"], seq)]
    assert not fresh.catalog.booted_since()
    assert HistoryStore(history.root, check=False).repair().actions == []  # in step: nothing to rebuild


def test_a_damaged_catalog_is_one_clear_error_and_repair_rebuilds_it(history):
    [path] = (history.root / "catalog").glob("*.sqlite")
    history.catalog.close()
    raw = bytearray(path.read_bytes())
    raw[4096:8192] = b"\xff" * 4096  # a page of the catalog overwritten
    path.write_bytes(bytes(raw))
    (path.parent / (path.name + "-wal")).unlink(missing_ok=True)
    with pytest.raises(HistoryCorruptError, match="stackspot-tui repair") as err:
        fresh = HistoryStore(history.root)
        fresh.search("parser")
        fresh.list_conversations()
    assert str(path) in str(err.value)
    report = HistoryStore(history.root, check=False).repair()
    assert not report.problems and any("rebuilt the search catalog" in a for a in report.actions)
    assert list(path.parent.glob("*.corrupt-*"))
    repaired = HistoryStore(history.root)
    assert found(repaired, "unicode") == [(history.ids["parser"], 0)]
    assert HistoryStore(history.root, check=False).repair().actions == []


def test_repair_rebuilds_a_catalog_out_of_step_with_the_files(history):
    """A catalog that does not agree with the files (here: a turn's answer changed behind its back)."""
    history.catalog.close()
    [path] = (history.root / "catalog").glob("*.sqlite")
    db = sqlite3.connect(path)
    db.execute("UPDATE turn_text SET answer = 'stale' WHERE answer LIKE '%unicode%'")
    db.commit()
    db.close()
    report = HistoryStore(history.root, check=False).repair()
    assert any("turns differ from its pages" in a for a in report.actions), report.actions
    assert found(HistoryStore(history.root), "unicode") == [(history.ids["parser"], 0)]


def test_a_catalog_rebuilt_by_another_process_is_followed(history):
    other = HistoryStore(history.root)
    other.build_catalog()  # a new generation; the first store still has the old one open
    assert len(list((history.root / "catalog").glob("*.sqlite"))) == 1
    turn(other, history.ids["tests"], "written after the rebuild: quasar")
    assert found(history, "quasar") == [(history.ids["tests"], 1)]
    turn(history, history.ids["tests"], "and by the first store: pulsar")
    assert found(other, "pulsar") == [(history.ids["tests"], 2)]


def test_a_catalog_build_killed_half_way_is_replaced_by_the_next_start(history):
    leftover = history.root / "catalog" / ".build-20991231T000000000000Z-abcdef.sqlite"
    leftover.write_bytes(b"half a database")
    for path in (history.root / "catalog").glob("2*.sqlite*"):
        path.unlink()  # the old catalog was never there (a first build)
    fresh = HistoryStore(history.root)
    assert found(fresh, "unicode") == [(history.ids["parser"], 0)]
    assert not leftover.exists()


def test_the_list_comes_from_the_catalog(store):
    first = store.create_conversation("code-review", "Parser review")
    second = store.create_conversation("explain-code", "Decorators")
    agent = store.create_conversation("", "Policies", agent_id="01AGENT")
    turn(store, first.id, "later activity")
    store.update_conversation(second.id, archived=True)
    assert [c.id for c in store.list_conversations()] == [first.id, agent.id]
    assert [c.id for c in store.list_conversations(limit=1, offset=1)] == [agent.id]
    assert [c.id for c in store.list_conversations(matching="PARSER")] == [first.id]
    assert [c.id for c in store.list_conversations(matching="agent 01ag")] == [agent.id]
    assert [c.id for c in store.list_conversations(archived=None, matching="explain")] == [second.id]
    assert store.count_conversations() == 2 and store.count_conversations(archived=None) == 3
    assert store.latest_conversation("explain-code") is None  # archived
    assert store.latest_conversation(agent_id="01AGENT").id == agent.id
    assert store.resolve_id(agent.id[:4]) == agent.id


def test_the_catalog_is_private(store):
    store.create_conversation("qc")
    files = [p for p in (store.root / "catalog").iterdir()]
    assert files and all(p.stat().st_mode & 0o077 == 0 for p in files)
    assert (store.root / "catalog").stat().st_mode & 0o077 == 0


# -- the index agrees with a plain scan ------------------------------------------------------------

WORDS = ["alpha", "alpine", "beta", "bet", "gamma", "gam", "delta", "deltas", "ep", "epsilon"]


@settings(max_examples=examples(25), deadline=None, derandomize=True, database=None)
@given(
    texts=st.lists(
        st.tuples(st.lists(st.sampled_from(WORDS), max_size=6), st.lists(st.sampled_from(WORDS), max_size=6)),
        min_size=1,
        max_size=12,
    ),
    query=st.lists(st.sampled_from([*WORDS, "al*", "gam*", "del*", '"alpha beta"']), min_size=1, max_size=3),
)
def test_word_search_finds_exactly_what_a_scan_finds(tmp_path_factory, texts, query):
    store = HistoryStore(tmp_path_factory.mktemp("h"))
    conversation = store.create_conversation("qc")
    for prompt, answer in texts:
        turn(store, conversation.id, " ".join(prompt) or "-", " ".join(answer))
    text = " ".join(query)
    terms = parse(text)
    matcher = Matcher(terms, text)
    expected = {
        seq
        for seq, (prompt, answer) in enumerate(texts)
        if matcher.matches(fold(" ".join(prompt)), fold(" ".join(answer)))
    }
    hits = store.search(text, limit=100)
    if expected:
        assert {h.seq for h in hits} == expected and all(h.match == "words" for h in hits)
    else:
        assert all(h.match == "text" for h in hits)  # no word match: the text fallback


def test_a_catalog_record_that_is_not_one_is_damage(store):
    conversation = store.create_conversation("qc")
    [path] = (store.root / "catalog").glob("*.sqlite")
    db = sqlite3.connect(path)
    db.execute("UPDATE conversations SET record = ?", (json.dumps({"id": conversation.id, "slug": 5}),))
    db.commit()
    db.close()
    with pytest.raises(HistoryCorruptError, match="catalog holds"):
        store.list_conversations()


@given(
    st.lists(st.sampled_from(["pa", "par", "rs", "er", "_", " ", "-", "é", "\n", "1"]), max_size=20).map("".join),
    st.sampled_from(["pa", "par", "pars", "é1"]),
)
def test_a_prefix_counts_the_words_that_start_with_it(text, prefix):
    """Ranking counts a prefix's words by its pattern: the same number as the words starting so."""
    import re

    matcher = Matcher(parse(f"{prefix}*"))
    words = re.findall(r"[^\W_]+", fold(text))
    count = sum(1 for word in words if word.startswith(fold(prefix)))
    assert matcher.quality(fold(text), "") == pytest.approx(2 * count / (count + 1))


def test_finding_the_executions_left_running_reads_only_their_conversations(store):
    """Every start looks for them: reading all 100k conversations to find two took 0.1 s."""
    for n in range(300):
        store.create_conversation("code-review", f"conversation {n}")
    left = [store.create_conversation("code-review", f"left running {n}") for n in range(2)]
    for conversation in left:
        added = store.add_turn(conversation.id, "a long one", "a long one")
        store.update_turn(conversation.id, added.seq, status="RUNNING", execution_id=f"exec-{conversation.id}")
    for n in range(300):
        store.create_conversation("code-review", f"newer {n}")
    rows_read = []
    db = store.catalog.db
    db.set_progress_handler(lambda: rows_read.append(1), 10)  # called every 10 SQLite VM steps
    try:
        pending = store.pending_turns()
    finally:
        db.set_progress_handler(None, 10)
    assert sorted(c.id for c, _ in pending) == sorted(c.id for c in left)
    assert len(rows_read) < 30, f"{len(rows_read) * 10} SQLite steps: it walked every conversation"
