"""CLI history commands: conversations, show, search, export, import, rename, archive, delete, resume."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from stackspot_tui.cli import export_all, main
from stackspot_tui.store import HistoryStore


@pytest.fixture
def store(env):
    store = HistoryStore(env / "data" / "history")
    first = store.create_conversation("code-review")
    turn = store.add_turn(first.id, "review the parser", "review the parser")
    store.update_turn(
        first.id,
        turn.seq,
        status="COMPLETED",
        execution_id="01EXECA",
        result="The tokenizer mishandles UNICODE escapes.",
    )
    store.update_conversation(first.id, conversation_id="01CONVA")
    second = store.create_conversation("explain-code")
    turn = store.add_turn(second.id, "explain decorators", "explain decorators")
    store.update_turn(second.id, turn.seq, status="COMPLETED", execution_id="01EXECB", result={"answer": "wrappers"})
    store.first, store.second = first.id, second.id
    return store


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_conversations_lists_newest_first(store):
    code, out, _ = cli("conversations")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith(store.second) and lines[1].startswith(store.first)
    assert "review the parser" in lines[1] and " 1 turn " in lines[1]  # singular for one


def test_conversations_json_and_archived(store):
    assert cli("archive", store.first)[0] == 0
    _code, out, _ = cli("conversations", "--json")
    assert [c["id"] for c in json.loads(out)] == [store.second]
    _code, out, _ = cli("conversations", "--archived", "--json")
    assert [c["id"] for c in json.loads(out)] == [store.first]
    assert cli("unarchive", store.first)[0] == 0
    assert len(json.loads(cli("conversations", "--json")[1])) == 2


def test_show_by_prefix(store):
    code, out, _ = cli("show", store.first[:5])
    assert code == 0 and "review the parser" in out and "UNICODE" in out and "01CONVA" in out


def test_show_json_is_the_export_document(store):
    _code, out, _ = cli("show", store.first, "--json")
    assert json.loads(out)["conversation"]["id"] == store.first


def test_unknown_id_is_a_clear_error(store):
    code, _out, err = cli("show", "zzzzzz")
    assert code == 1 and err.startswith("stackspot-tui: error:") and "zzzzzz" in err and "Traceback" not in err


def test_search_finds_old_answers_case_insensitively(store):
    code, out, _ = cli("search", "unicode")
    assert code == 0 and store.first in out and "result" in out
    code, out, _ = cli("search", "WRAPPERS", "--json")
    assert json.loads(out)[0]["conversation"] == store.second
    code, out, err = cli("search", "nothing-like-this")
    assert code == 1 and "no match" in err


@pytest.mark.parametrize("fmt", ["md", "json", "html", "txt"])
def test_export_each_format_to_a_file(store, env, fmt):
    target = env / f"out.{fmt}"
    code, _, err = cli("export", store.first, "--format", fmt, "-o", str(target))
    assert code == 0, err
    assert "review the parser" in target.read_text()


def test_export_refuses_to_overwrite_without_force(store, env):
    target = env / "out.md"
    target.write_text("keep me")
    code, _, err = cli("export", store.first, "-o", str(target))
    assert code == 1 and "--force" in err and target.read_text() == "keep me"
    assert cli("export", store.first, "-o", str(target), "--force")[0] == 0
    assert "review the parser" in target.read_text()


def test_export_to_unwritable_path(store, env):
    code, _, err = cli("export", store.first, "-o", str(env / "no" / "such" / "dir" / "x.md"))
    assert code == 1 and "cannot write" in err


def test_export_all_to_directory(store, env):
    code, _, _ = cli("export", "--all", "--format", "json", "-o", str(env / "dump"))
    assert code == 0 and sorted(p.stem for p in (env / "dump").iterdir()) == sorted([store.first, store.second])


# The CLI in a process of its own (workers fork from it), handing out two conversations a share.
IN_SHARES_OF_TWO = "import sys; from stackspot_tui.cli import main, export_all; export_all.SHARE = 2; sys.exit(main())"


# ... and with workers that die on their first share (as one killed for memory would).
KILLED_WORKERS = """import os, sys
from stackspot_tui.cli import main, export_all
export_all.SHARE = 2
def die(*args): os._exit(9)
export_all.share = die
sys.exit(main())"""


def export_in_processes(*argv: str, script: str = IN_SHARES_OF_TWO) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", script, *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


def seven_conversations(store) -> list[str]:
    ids = [store.first, store.second]
    for n in range(5):
        conversation = store.create_conversation("code-review")
        turn = store.add_turn(conversation.id, f"prompt {n}", f"prompt {n}")
        store.update_turn(conversation.id, turn.seq, status="COMPLETED", result=f"answer {n}\n\n- a list")
        ids.append(conversation.id)
    return ids


@pytest.mark.e2e
def test_export_all_in_worker_processes_writes_what_one_process_writes(store, env):
    ids = seven_conversations(store)
    assert cli("export", "--all", "-f", "html", "-o", str(env / "one"))[0] == 0  # 7 < two shares: here
    done = export_in_processes("export", "--all", "-f", "html", "-o", str(env / "many"))
    assert done.returncode == 0 and done.stderr == f"exported 7 conversations to {env / 'many'}\n", done.stderr
    assert sorted(p.name for p in (env / "many").iterdir()) == sorted(f"{i}.html" for i in ids)
    for path in (env / "one").iterdir():
        assert (env / "many" / path.name).read_bytes() == path.read_bytes()


@pytest.mark.e2e
def test_a_damaged_conversation_stops_export_all_in_workers_with_one_line(store, env):
    ids = seven_conversations(store)
    store.fold_journal(ids[4])
    page = store.page_path(ids[4], 0)
    page.write_text("{ not json")
    done = export_in_processes("export", "--all", "-o", str(env / "many"))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()] and f"history file {page} is damaged" in done.stderr


@pytest.mark.e2e
def test_a_killed_export_worker_is_one_line_not_a_traceback(store, env):
    seven_conversations(store)
    done = export_in_processes("export", "--all", "-o", str(env / "many"), script=KILLED_WORKERS)
    assert done.returncode == 1
    assert done.stderr == (
        "stackspot-tui: error: an export process was stopped before it finished; the files written are whole: run it again\n"
    )


def test_a_workers_share_says_what_stopped_it(store, env):
    directory = env / "out"
    directory.mkdir()
    conversations = store.list_conversations(archived=None)
    assert export_all.share(store.root, conversations, "md", directory, False) is None
    again = export_all.share(store.root, conversations, "md", directory, False)
    assert again == f"{directory / (conversations[0].id + '.md')} exists; use --force to overwrite it"


def test_export_import_export_round_trip(store, env, monkeypatch):
    first = cli("export", store.first, "--format", "json")[1]
    (env / "c.json").write_text(first)
    monkeypatch.setenv("STACKSPOT_TUI_DATA_DIR", str(env / "elsewhere"))
    code, out, _ = cli("import", str(env / "c.json"))
    assert code == 0 and out.strip() == store.first
    assert cli("export", store.first, "--format", "json")[1] == first


def test_import_into_the_same_history_gets_a_new_id(store, env):
    (env / "c.json").write_text(cli("export", store.first, "--format", "json")[1])
    code, out, _ = cli("import", str(env / "c.json"))
    assert code == 0 and out.strip() != store.first
    assert len(json.loads(cli("conversations", "--json")[1])) == 3


@pytest.mark.parametrize("content, words", [("{oops", "not a JSON file"), ('{"format": "x"}', "not a stackspot-tui")])
def test_import_bad_files(store, env, content, words):
    (env / "bad.json").write_text(content)
    code, _, err = cli("import", str(env / "bad.json"))
    assert code == 1 and words in err


def test_import_missing_file(store, env):
    code, _, err = cli("import", str(env / "missing.json"))
    assert code == 1 and "cannot read" in err


def test_rename_persists(store):
    assert cli("rename", store.first, "Parser review")[0] == 0
    assert HistoryStore(store.root).get_conversation(store.first).title == "Parser review"


def test_delete_needs_yes_without_a_terminal(store, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, _, err = cli("delete", store.first)
    assert code == 1 and "--yes" in err
    assert cli("delete", store.first, "--yes")[0] == 0
    assert store.first not in cli("conversations")[1]


def test_delete_one_turn(store):
    turn = store.add_turn(store.first, "second question", "second question")
    assert cli("delete", store.first, "--turn", "1", "--yes")[0] == 0
    assert [t.seq for t in HistoryStore(store.root).turns(store.first)] == [turn.seq]
    code, _, err = cli("delete", store.first, "--turn", "9", "--yes")
    assert code == 1 and "Traceback" not in err


def test_resume_with_nothing_pending(store):
    code, _, err = cli("resume")
    assert code == 0 and "nothing to resume" in err


def test_an_empty_list_says_where_the_conversations_are(env):
    assert cli("conversations") == (0, "", "no conversations yet\n")
    assert cli("--demo", "conversations")[2] == "no demo conversations yet\n"
    demo = HistoryStore(env / "data" / "demo")
    demo.create_conversation("code-review")
    # Someone who tried the demo first: its conversations are not StackSpot's, and are found.
    assert cli("conversations")[2] == "no conversations yet; the demo's: `stackspot-tui --demo conversations`\n"
    assert "no demo conversations" not in cli("--demo", "conversations")[2]
    real = HistoryStore(env / "data" / "history")
    archived = real.create_conversation("explain-code")
    real.update_conversation(archived.id, archived=True)
    assert cli("conversations")[2] == "no active conversations; 1 archived (--archived lists them)\n"
    assert cli("conversations", "--archived")[1].startswith(archived.id)
    real.update_conversation(archived.id, archived=False)
    assert cli("conversations", "--archived")[2] == "no archived conversations\n"
    demo_store_files = sorted(p.name for p in (env / "data" / "demo").iterdir())
    cli("conversations")  # looking at the other history leaves it as it was
    assert sorted(p.name for p in (env / "data" / "demo").iterdir()) == demo_store_files


def test_holds_conversations_looks_without_making_anything(tmp_path):
    assert not HistoryStore.holds_conversations(tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "file").write_text("x")
    assert not HistoryStore.holds_conversations(tmp_path / "file")
    store = HistoryStore(tmp_path / "h")
    assert not HistoryStore.holds_conversations(tmp_path / "h")
    store.create_conversation("echo")
    assert HistoryStore.holds_conversations(tmp_path / "h")


def test_an_id_from_the_other_history_says_which_one_has_it(env):
    demo = HistoryStore(env / "data" / "demo").create_conversation("code-review")
    real = HistoryStore(env / "data" / "history").create_conversation("explain-code")
    code, _, err = cli("show", demo.id[:4])
    assert code == 1 and err.splitlines()[-1].endswith("the demo's has it: add --demo"), err
    code, _, err = cli("--demo", "rename", real.id, "new title")
    assert code == 1 and err.splitlines()[-1].endswith("StackSpot's history has it: leave out --demo"), err
    assert HistoryStore(env / "data" / "history").get_conversation(real.id).title != "new title"
    absent = next(p for p in ("abc", "bcd", "cde") if not demo.id.startswith(p) and not real.id.startswith(p))
    code, _, err = cli("show", absent)  # in neither
    assert code == 1 and "has it" not in err and f"no conversation with id '{absent}'" in err
    assert cli("--demo", "show", demo.id[:4])[0] == 0
