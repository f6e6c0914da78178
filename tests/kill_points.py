"""Kill a process at the steps it takes on the history — observed points, never timed ones.

    python tests/kill_points.py SCENARIO DATA_DIR [POINTS]   → one JSON line on stdout

A step is a change to the history directory: a file opened for writing, a rename, a removal, a truncation,
a new directory, a commit of the search catalog (SQLite writes its own files: the store
announces each commit with an audit event just before it). An audit hook sees each one just before it happens, so "killed at step k"
means SIGKILL with steps 1..k-1 done and step k not started. A first run counts the steps of
a whole scenario (N); then, for each chosen k in 1..N, a forked child runs the scenario and
is killed at step k, and this process checks what it left: every file valid, no completed
turn lost, and what the scenario itself promises (a delete is all or nothing, ...).

Forking from one process that has already imported everything keeps a kill point at a few
milliseconds; the scenario runs in the child only, so the parent stays single-threaded.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from stackspot_tui.store import HistoryStore
from stackspot_tui.store.models import Conversation, Turn
from stackspot_tui.store.search import fold, result_text

# A SIGKILL leaves the kernel's page cache in place: what a killed process leaves behind does
# not depend on fsync (a power cut would, and no test can cause one). Skipped for speed, as in
# the rest of the suite (conftest.no_fsync).
os.fsync = lambda fd: None

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _is_step(event: str, args: tuple, root: str) -> bool:
    if event == "stackspot_tui.catalog.commit":
        return os.fsdecode(args[0]).startswith(root)
    if event == "open":
        path, mode, flags = args
        writing = bool(flags & _WRITE_FLAGS) if isinstance(flags, int) else False
        writing = writing or (isinstance(mode, str) and any(c in mode for c in "wax+"))
        return writing and isinstance(path, (str, bytes, os.PathLike)) and os.fsdecode(path).startswith(root)
    if event == "os.truncate":
        return os.fsdecode(args[0]).startswith(root)
    if event in ("os.rename", "os.remove", "os.rmdir", "os.mkdir"):
        dir_fd = args[-1] if event != "os.rename" else args[2]
        return dir_fd is not None or os.fsdecode(args[0]).startswith(root)  # rmtree works relative to a dir fd
    return False


def run_killed_at(step: int, root: Path, scenario: Callable[[], object], steps_file: Path | None = None) -> int:
    """Run ``scenario`` in a forked child killed just before its ``step``-th step (0: never).

    Returns the child's wait status; with ``steps_file``, the child writes its step count there."""
    pid = os.fork()
    if pid:
        return os.waitpid(pid, 0)[1]
    count = 0
    prefix = str(root)

    def hook(event: str, args: tuple) -> None:
        nonlocal count
        if _is_step(event, args, prefix):
            count += 1
            if count == step:
                os.kill(os.getpid(), signal.SIGKILL)

    sys.addaudithook(hook)
    code = 0
    try:
        scenario()
    except BaseException as exc:  # the scenario must not fail on its own: report it
        print(f"scenario failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    if steps_file is not None:
        steps_file.write_text(str(count))
    os._exit(code)


def all_files_valid(root: Path) -> None:
    for path in root.rglob("*.json"):
        json.loads(path.read_bytes())  # a torn write fails here


def catalog_truthful(root: Path) -> None:
    """What a reader finds before anything is finished or repaired (``check=False``: it does no
    chores): every conversation it lists and every turn its search returns exists."""
    reader = HistoryStore(root, check=False)
    if reader.catalog.check() is not None:
        return  # no catalog yet (a first build was killed): the next start builds it
    for conversation in reader.list_conversations(archived=None):
        reader.get_conversation(conversation.id)
    for query in ("prompt", "answer*", "answ", "kill test"):
        for hit in reader.search(query, limit=1000):
            turn = reader.get_turn(hit.conversation.id, hit.seq)  # UnknownTurnError: a turn that does not exist
            assert fold(query.rstrip("*")) in fold(turn.prompt + " " + str(turn.result)), (query, hit)


def catalog_agrees(root: Path) -> None:
    """After the next start (which finishes what the kill left), the catalog holds what the files hold."""
    store = HistoryStore(root)
    on_disk = sorted(p.parent.name for p in (root / "conversations").glob("*/conversation.json"))
    assert sorted(c.id for c in store.list_conversations(archived=None)) == on_disk
    for conv_id in on_disk:
        held = store.catalog.turn_texts(conv_id)
        assert held == [(t.seq, t.prompt, result_text(t.result)) for t in store.turns(conv_id)], conv_id


def completed_turns(root: Path) -> set[tuple[str, int]]:
    store = HistoryStore(root)
    return {
        (t.conversation, t.seq)
        for c in store.list_conversations(archived=None)
        for t in store.turns(c.id)
        if t.status == "COMPLETED"
    }


def chosen(total: int, points: int) -> list[int]:
    """``points`` kill steps spread evenly over 1..total (all of them when points >= total)."""
    if points >= total:
        return list(range(1, total + 1))
    return sorted({1 + round(i * (total - 1) / (points - 1)) for i in range(points)})


# -- scenarios ----------------------------------------------------------------------------------


def append(data_dir: Path, points: int) -> dict:
    """Appends and completions of turns: every completed turn survives every kill."""
    root = data_dir / "history"

    def scenario() -> None:
        store = HistoryStore(root)
        conversation = store.latest_conversation() or store.create_conversation("crash")
        for n in range(3):
            turn = store.add_turn(conversation.id, "kill test prompt " + "p" * 2000, "x")
            store.update_turn(conversation.id, turn.seq, status="COMPLETED", result=f"answer {n} " * 300)

    return _accumulating(root, scenario, points, data_dir)


def run(data_dir: Path, points: int) -> dict:
    """`stackspot-tui run --continue` against the loopback simulator the environment points at."""
    from stackspot_tui.cli import main

    def scenario() -> None:
        main(["run", "echo", "--continue", "-q", "a turn"], stdout=io.StringIO(), stderr=io.StringIO())

    return _accumulating(data_dir / "history", scenario, points, data_dir)


def tui(data_dir: Path, points: int) -> dict:
    """The app under run_test sends a turn; killed at each chosen step of it."""
    import asyncio

    from stackspot_tui.config import load_settings
    from stackspot_tui.runtime import build_backend
    from stackspot_tui.tui.app import StackSpotApp
    from stackspot_tui.tui.widgets import PromptInput

    async def one_turn() -> None:
        settings = load_settings()
        app = StackSpotApp(settings, backend_factory=lambda demo: build_backend(settings, demo=False), slug="echo")
        async with app.run_test() as pilot:
            app.screen.query_one(PromptInput).load_text("tui turn")
            await pilot.press("enter")
            await pilot.pause(0.05)
            while app.chat is not None and app.chat.running:
                await pilot.pause(0.05)

    root = data_dir / "history"
    (root / "conversations").mkdir(parents=True, exist_ok=True)  # each run then takes the same steps, the first too
    HistoryStore(root)
    return _accumulating(root, lambda: asyncio.run(one_turn()), points, data_dir, warm_up=1)


def _accumulating(root: Path, scenario: Callable[[], object], points: int, data_dir: Path, *, warm_up: int = 2) -> dict:
    """Kill at each chosen step, one run after another on the same history."""
    steps_file = data_dir / "steps"
    for _ in range(warm_up):  # a first run also creates the history: count the steps of a later one
        assert run_killed_at(0, root, scenario, steps_file) == 0, "the scenario fails without a kill"
    total = int(steps_file.read_text())
    completed = completed_turns(root)
    kills = chosen(total, points)
    for step in kills:
        status = run_killed_at(step, root, scenario)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"step {step}: not killed"
        all_files_valid(root)
        catalog_truthful(root)
        now = completed_turns(root)
        assert completed <= now, f"killed at step {step} of {total}: lost completed turns {completed - now}"
        catalog_agrees(root)
        completed = now
    return {"steps": total, "kills": len(kills), "completed": len(completed)}


def _each_step_on_a_copy(
    template: Path,
    root: Path,
    scenario: Callable[[], object],
    points: int,
    data_dir: Path,
    check: Callable[[int], object],
    *,
    whole: Callable[[], object] = lambda: None,
) -> dict:
    """Kill at each chosen step, each time on a fresh copy of ``template``, then ``check(step)``
    what it left (every file valid already checked). ``whole`` checks a run never killed."""

    def fresh() -> None:
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(template, root)

    fresh()
    steps_file = data_dir / "steps"
    assert run_killed_at(0, root, scenario, steps_file) == 0, "the scenario fails without a kill"
    whole()
    total = int(steps_file.read_text())
    kills = chosen(total, points)
    for step in kills:
        fresh()
        status = run_killed_at(step, root, scenario)
        assert os.WIFSIGNALED(status), f"step {step}: not killed"
        all_files_valid(root)
        check(step)
    return {"steps": total, "kills": len(kills)}


def delete(data_dir: Path, points: int) -> dict:
    """A conversation of two pages deleted, killed at each step: all or nothing, never revived."""
    template = data_dir / "template"
    store = HistoryStore(template)
    doomed, kept = (
        store.import_conversation(
            Conversation(id=conv_id, slug="qc"),
            [
                Turn(conversation=conv_id, seq=n, prompt=f"{n}", input_data="x", status="COMPLETED")
                for n in range(count)
            ],
        )
        for conv_id, count in (("d0000001", 105), ("a0000002", 2))
    )
    root = data_dir / "history"

    def scenario() -> None:
        HistoryStore(root).delete_conversation(doomed.id)

    outcomes = {"intact": 0, "deleted": 0}

    def check(step: int) -> None:
        catalog_truthful(root)
        after = HistoryStore(root)  # a start finishes a delete that was under way
        catalog_agrees(root)
        ids = {c.id for c in after.list_conversations(archived=None)}
        assert kept.id in ids and len(after.turns(kept.id)) == 2
        if doomed.id in ids:  # killed before the delete began: all of it is there
            assert len(after.turns(doomed.id)) == 105, f"step {step}: a half-deleted conversation"
            outcomes["intact"] += 1
        else:
            outcomes["deleted"] += 1
        report = HistoryStore(root, check=False).repair()
        assert not report.problems, report.problems
        revived = {c.id for c in HistoryStore(root).list_conversations(archived=None)} - ids
        assert not revived, f"step {step}: repair revived {revived}"
        assert not list((root / "trash").glob("*")) if (root / "trash").exists() else True

    return {**_each_step_on_a_copy(template, root, scenario, points, data_dir, check), **outcomes}


def convert(data_dir: Path, points: int) -> dict:
    """A version 1 history opened: its records moved into their conversations, the catalog built.

    Killed at each step, the next start finishes the work: every conversation and turn readable
    and found by search, the catalog in step with the files."""
    template = data_dir / "template"
    store = HistoryStore(template)
    records = []
    for n in range(3):
        conversation = store.create_conversation("qc", f"conversation {n}")
        for k in range(2 + n * 60):
            turn = store.add_turn(conversation.id, f"kill test prompt {n} {k}", "x")
            store.update_turn(conversation.id, turn.seq, status="COMPLETED", result=f"answer {n} {k}")
        records.append(store.get_conversation(conversation.id).to_dict())
    shutil.rmtree(template / "catalog")
    for record in records:
        (template / "conversations" / record["id"] / "conversation.json").unlink()
    (template / "index").mkdir()
    for record in records:
        shard = template / "index" / f"{record['id'][0]}.json"
        table = json.loads(shard.read_text())["conversations"] if shard.exists() else {}
        table[str(int(record["id"], 16) + 1)] = record
        shard.write_text(json.dumps({"conversations": table}))
    (template / "meta.json").write_text(json.dumps({"schema_version": 1, "app": "stackspot-tui"}))
    root = data_dir / "history"

    def check(step: int) -> None:
        after = HistoryStore(root)
        assert sorted(c.title for c in after.list_conversations()) == [f"conversation {n}" for n in range(3)]
        for n in range(3):
            [hit] = after.search(f'"kill test prompt {n} 1"')
            assert after.get_turn(hit.conversation.id, hit.seq).result == f"answer {n} 1"
        catalog_agrees(root)
        assert not (root / "index").exists()

    return _each_step_on_a_copy(template, root, lambda: HistoryStore(root), points, data_dir, check)


def journal_fold(data_dir: Path, points: int) -> dict:
    """A turn's result is the line that takes the journal past its limit: the append, then the
    fold of the journal into the page and record files, killed at each step. Every turn reads
    back as it was or as the call made it, never older, and the catalog agrees."""
    from stackspot_tui.store.journal import FOLD_BYTES

    template = data_dir / "template"
    store = HistoryStore(template)
    conversation = store.create_conversation("qc", "folding")
    journal = store.journal_path(conversation.id)
    answers: dict[int, str] = {}
    while not journal.exists() or journal.stat().st_size < FOLD_BYTES - 12_000:
        turn = store.add_turn(conversation.id, f"kill test prompt {len(answers)}", "x")
        answers[turn.seq] = f"answer {turn.seq} " * 300
        store.update_turn(conversation.id, turn.seq, status="COMPLETED", result=answers[turn.seq])
    assert not any(template.glob("conversations/*/0000.json")), "the template folded already"
    last = store.add_turn(conversation.id, "kill test prompt, the last", "x").seq
    store.update_turn(conversation.id, last, execution_id="01EXEC", status="RUNNING")
    root = data_dir / "history"

    def scenario() -> None:
        HistoryStore(root).update_turn(conversation.id, last, status="COMPLETED", result="answer, the last " * 800)

    def folded() -> None:
        assert (root / "conversations" / conversation.id / "0000.json").exists(), "the scenario did not fold"

    outcomes = {"before": 0, "after": 0}

    def check(step: int) -> None:
        catalog_truthful(root)
        after = HistoryStore(root)
        catalog_agrees(root)
        turns = after.turns(conversation.id)
        assert [t.result for t in turns[:-1]] == [answers[seq] for seq in sorted(answers)], f"step {step}"
        assert after.get_conversation(conversation.id).turn_count == len(answers) + 1
        outcomes["after" if turns[-1].status == "COMPLETED" else "before"] += 1
        assert turns[-1].status in ("COMPLETED", "RUNNING") and turns[-1].execution_id == "01EXEC"
        assert not HistoryStore(root, check=False).repair().problems

    return {**_each_step_on_a_copy(template, root, scenario, points, data_dir, check, whole=folded), **outcomes}


SCENARIOS = {"append": append, "run": run, "tui": tui, "delete": delete, "convert": convert, "fold": journal_fold}

if __name__ == "__main__":
    name, data_dir = sys.argv[1], Path(sys.argv[2])
    points = int(sys.argv[3]) if len(sys.argv) > 3 else 10**6
    print(json.dumps(SCENARIOS[name](data_dir, points)))
