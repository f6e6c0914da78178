"""Damage fuzzer: hypothesis damages real history files, then every command runs on them.

Each example copies a real history (three conversations, one over two pages, one archived,
one turn left running, one journal), damages one file or directory, and runs `conversations`, `show`,
`search`, `export`, a new turn (`run`) and `repair` in-process. Asserted: no traceback and no
"unexpected" message; a failure is one line that names `stackspot-tui repair`; nothing
unreadable is shown as empty; after `repair` the history is sound, and every turn that was
readable is still readable or kept in a file set aside.

STACKSPOT_FUZZ_EXAMPLES=500 runs more examples; STACKSPOT_FUZZ_REPORT=FILE writes the
mutations × commands table (docs/reliability.md has one).
"""

from __future__ import annotations

import io
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FakeTime, make_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackspot_tui.cli import main
from stackspot_tui.sim import Simulator
from stackspot_tui.store import HistoryStore
from stackspot_tui.store.models import Conversation, StepSummary, Turn

A, B, C = "a1b2c3d4", "7e000001", "c0ffee00"  # B spans two pages; C is archived
TURNS = {A: 3, B: 105, C: 1}
CATALOG = "catalog/*.sqlite"  # the search catalog (its name changes with each build)
FILES = [
    "meta.json",
    "lock",
    f"conversations/{A}/conversation.json",
    f"conversations/{B}/conversation.json",
    f"conversations/{C}/conversation.json",
    f"conversations/{A}/0000.json",
    f"conversations/{B}/0000.json",
    f"conversations/{B}/0001.json",
    f"conversations/{C}/0000.json",
]
TABLE_FILES = [f for f in FILES if f.startswith("conversations/")]
JOURNAL = f"conversations/{A}/journal.jsonl"
RAW_FILES = [*FILES, JOURNAL, CATALOG]  # damaged byte by byte: the catalog and the journal are not JSON
DIRECTORIES = ["catalog", "conversations", f"conversations/{A}", f"conversations/{B}"]
COMMANDS = ["conversations", "show", "search", "export", "run", "repair"]
OUTCOMES: Counter[tuple[str, str, str]] = Counter()  # (mutation, command, outcome)


def prompt(conv_id: str, seq: int) -> str:
    return f"{conv_id}-prompt-{seq}"


def build_template(root: Path) -> None:
    store = HistoryStore(root / "history")
    for conv_id, count in TURNS.items():
        turns = []
        for seq in range(count):
            turn = Turn(conversation=conv_id, seq=seq, prompt=prompt(conv_id, seq), input_data=prompt(conv_id, seq))
            turn.status, turn.execution_id, turn.result = "COMPLETED", f"01EXEC{conv_id}{seq}", f"answer {seq}"
            turn.steps = [StepSummary(name="analyze", order=1, type="LLM", done=True, sources=["docs"])]
            turns.append(turn)
        if conv_id == A:
            turns[1].result = {"json": ["answer", 1]}
        if conv_id == B:
            turns[-1].status, turns[-1].result = "RUNNING", None  # left running: pending
        conversation = Conversation(id=conv_id, slug="code-review", archived=conv_id == C)
        store.import_conversation(conversation, turns)
    store.update_turn(A, 2, status="COMPLETED")  # A's journal: lines that hold what its files hold
    store.update_conversation(A, archived=False)
    assert [c.id for c in store.pending_turns()[0][:1]] == [B]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("template")
    build_template(root)
    return root


# -- mutations ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    kind: str
    target: str
    detail: object = None

    def __str__(self) -> str:
        return f"{self.kind} {self.target} {self.detail!r}"[:200]


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
field_names = st.sampled_from(
    ["id", "slug", "title", "updated_at", "turn_count", "next_seq", "pending", "archived"]
    + ["conversation", "seq", "prompt", "input_data", "status", "steps", "percentage", "created_at", "duration"]
    + ["execution_id", "result", "finished_at"]
)
mutations = st.one_of(
    st.builds(Mutation, st.just("truncate"), st.sampled_from(RAW_FILES), st.floats(0.01, 0.99)),
    st.builds(Mutation, st.just("empty"), st.sampled_from(RAW_FILES)),
    st.builds(Mutation, st.just("garbage"), st.sampled_from(RAW_FILES), st.binary(min_size=1, max_size=40)),
    st.builds(Mutation, st.just("scribble"), st.just(CATALOG), st.tuples(st.integers(0, 10**6), st.binary(min_size=1))),
    st.builds(Mutation, st.just("directory"), st.sampled_from(RAW_FILES)),
    st.builds(Mutation, st.just("file-for-dir"), st.sampled_from(DIRECTORIES)),
    st.builds(
        Mutation,
        st.just("flip-type"),
        st.sampled_from(TABLE_FILES),
        st.tuples(st.integers(0, 200), field_names, json_values),
    ),
    st.builds(Mutation, st.just("drop-key"), st.sampled_from(TABLE_FILES), st.tuples(st.integers(0, 200), field_names)),
    st.builds(
        Mutation, st.just("add-record"), st.sampled_from(TABLE_FILES), st.tuples(st.text(max_size=4), json_values)
    ),
    st.builds(
        Mutation,
        st.just("flip-type"),
        st.just("meta.json"),
        st.tuples(st.just(0), st.just("schema_version"), json_values),
    ),
)


def apply(root: Path, mutation: Mutation) -> None:
    path = next(root.glob(mutation.target)) if "*" in mutation.target else root / mutation.target
    if mutation.kind == "scribble":  # bytes overwritten somewhere inside
        raw = bytearray(path.read_bytes())
        at, data = mutation.detail  # type: ignore[misc]
        at %= len(raw)
        raw[at : at + len(data)] = data
        path.write_bytes(bytes(raw))
    elif mutation.kind == "truncate":
        raw = path.read_bytes()
        path.write_bytes(raw[: int(len(raw) * float(mutation.detail))])  # type: ignore[arg-type]
    elif mutation.kind == "empty":
        path.write_bytes(b"")
    elif mutation.kind == "garbage":
        path.write_bytes(mutation.detail)  # type: ignore[arg-type]
    elif mutation.kind == "directory":
        path.unlink()
        path.mkdir()
    elif mutation.kind == "file-for-dir":
        shutil.rmtree(path)
        path.write_text("not a directory")
    else:
        data = json.loads(path.read_bytes())
        table = data[next(iter(data))] if mutation.target != "meta.json" else {"0": data}
        if mutation.kind == "add-record":
            key, value = mutation.detail  # type: ignore[misc]
            table[key or "0"] = value
        else:
            index, name = mutation.detail[:2]  # type: ignore[index]
            record = table[sorted(table)[index % len(table)]]
            if mutation.kind == "drop-key":
                record.pop(name, None)
            else:
                record[name] = mutation.detail[2]  # type: ignore[index]
        path.write_text(json.dumps(data))  # NaN and Infinity written as Python does


def kept_aside(root: Path, relative: str) -> bool:
    """The damaged file (or one of its directories) was set aside by repair."""
    parts = Path(relative).parts
    for n in range(1, len(parts) + 1):
        path = root.joinpath(*parts[:n])
        if list(path.parent.glob(f"{path.name}.corrupt-*")):
            return True
    return False


def page_file(conv_id: str, seq: int) -> str:
    return f"conversations/{conv_id}/{seq // 100:04d}.json"


# -- running the commands -----------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch):
    """`main()` in-process on a data dir; `run` talks to the simulator on fake time."""
    for key in [k for k in os.environ if k.startswith("STACKSPOT")]:
        monkeypatch.delenv(key)
    fake = FakeTime()
    monkeypatch.setattr(
        "stackspot_tui.runtime.build_client",
        lambda settings, demo: make_client(Simulator(duration=0.1, clock=fake.clock), fake),
    )

    def run(data_dir: Path, *args: str) -> tuple[int, str, str]:
        os.environ["STACKSPOT_TUI_DATA_DIR"] = str(data_dir)
        os.environ["STACKSPOT_TUI_CONFIG"] = str(data_dir / "none.toml")
        out, err = io.StringIO(), io.StringIO()
        code = main(list(args), stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    yield run
    os.environ.pop("STACKSPOT_TUI_DATA_DIR", None)
    os.environ.pop("STACKSPOT_TUI_CONFIG", None)


def one_clear_line(code: int, err: str, *, allowed: tuple[str, ...] = ()) -> str:
    assert "Traceback" not in err and "error: unexpected" not in err, err
    if code == 0:
        return "works"
    assert err.count("\n") == 1, err
    assert "stackspot-tui repair" in err or any(a in err for a in allowed), err
    return "one line"


def check_history(data_dir: Path, mutation: Mutation, cli) -> None:
    root = data_dir / "history"
    tag = mutation.kind
    intact = {(c, s) for c, n in TURNS.items() for s in range(n)}

    if mutation.target == "meta.json" and isinstance(mutation.detail, tuple):
        version = mutation.detail[2]
        if type(version) is int and version > 1:  # a newer history: every command, repair too, refuses it
            for args in (["conversations"], ["show", A], ["repair"]):
                code, _, err = cli(data_dir, *args)
                assert code == 1 and "newer than this stackspot-tui supports" in err, err
            return

    code, out, err = cli(data_dir, "conversations", "--all", "--json")
    OUTCOMES[tag, "conversations", one_clear_line(code, err)] += 1
    if code == 0:
        assert {c["id"] for c in json.loads(out)} == set(TURNS)  # none hidden

    for conv_id in TURNS:
        code, out, err = cli(data_dir, "show", conv_id, "--json")
        OUTCOMES[tag, "show", one_clear_line(code, err)] += 1
        if code == 0:  # never shown as empty: every turn of an unchanged page is there
            shown = {t["seq"] for t in json.loads(out)["turns"]}
            untouched = {s for s in range(TURNS[conv_id]) if page_file(conv_id, s) != mutation.target}
            if f"conversations/{conv_id}" != mutation.target:
                assert untouched <= shown

    code, out, err = cli(data_dir, "search", "prompt-1")
    OUTCOMES[tag, "search", one_clear_line(code, err)] += 1

    code, out, err = cli(data_dir, "export", A, "--format", "md")
    OUTCOMES[tag, "export", one_clear_line(code, err)] += 1
    if code == 0:
        assert all(prompt(A, s) in out for s in range(3) if page_file(A, s) != mutation.target)

    code, out, err = cli(data_dir, "run", "code-review", "--conversation", A, "-q", "a new turn")
    OUTCOMES[tag, "run", one_clear_line(code, err)] += 1
    new_turn = code == 0

    code, out, err = cli(data_dir, "repair")
    OUTCOMES[tag, "repair", one_clear_line(code, err)] += 1
    assert code == 0, err

    store = HistoryStore(root)
    readable = set()
    for conversation in store.list_conversations(archived=None):
        turns = store.turns(conversation.id)
        assert conversation.turn_count == len(turns)
        readable |= {(t.conversation, t.seq) for t in turns if t.prompt == prompt(t.conversation, t.seq)}
        if new_turn and conversation.id == A:
            assert "a new turn" in [t.prompt for t in turns]
    for conv_id, seq in intact - readable:
        assert kept_aside(root, page_file(conv_id, seq)), f"turn {seq} of {conv_id} lost"
    for hit in store.search("prompt", limit=500):  # never a turn that does not exist
        assert store.get_turn(hit.conversation.id, hit.seq).prompt == prompt(hit.conversation.id, hit.seq)
    store.add_turn(A if (A, 0) in readable else store.create_conversation("qc").id, "after repair", "x")
    code, _, err = cli(data_dir, "repair")
    assert code == 0 and "nothing to repair" in err, err


EXAMPLES = int(os.environ.get("STACKSPOT_FUZZ_EXAMPLES", "20"))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(mutation=mutations)
def test_damaged_history_never_crashes_a_command_and_repair_keeps_every_good_turn(template, cli, tmp_path, mutation):
    data_dir = tmp_path / "case"
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(template, data_dir)
    apply(data_dir / "history", mutation)
    check_history(data_dir, mutation, cli)


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    path = os.environ.get("STACKSPOT_FUZZ_REPORT")
    if not path or not OUTCOMES:
        return
    kinds = sorted({k for k, _, _ in OUTCOMES})
    lines = ["| mutation | " + " | ".join(COMMANDS) + " |", "|---|" + "---|" * len(COMMANDS)]
    for kind in kinds:
        cells = []
        for command in COMMANDS:
            works, line = OUTCOMES[kind, command, "works"], OUTCOMES[kind, command, "one line"]
            cells.append(f"{works} ok / {line} one-line error")
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    Path(path).write_text("\n".join(lines) + "\n")


APP_CASES = [
    (Mutation("flip-type", f"conversations/{A}/conversation.json", (0, "updated_at", 5)), A),
    (Mutation("empty", f"conversations/{A}/0000.json"), A),
    (Mutation("directory", f"conversations/{B}/conversation.json"), A),
    (Mutation("garbage", CATALOG, b"not a database"), None),
    (Mutation("truncate", "meta.json", 0.5), None),
    (Mutation("drop-key", f"conversations/{B}/0001.json", (0, "status")), None),  # the pending turn's page
]


@pytest.mark.parametrize(("mutation", "open_id"), APP_CASES, ids=[f"{m.kind}-{m.target}" for m, _ in APP_CASES])
async def test_the_app_starts_or_says_in_one_line_why_not(template, tmp_path, mutation, open_id):
    from stackspot_tui.config import Settings
    from stackspot_tui.runtime import build_backend
    from stackspot_tui.tui.app import StackSpotApp

    shutil.copytree(template / "history", tmp_path / "demo")  # the app runs in demo mode on this history
    apply(tmp_path / "demo", mutation)
    settings = Settings(data_dir=tmp_path)
    app = StackSpotApp(
        settings, demo=True, backend_factory=lambda demo: build_backend(settings, demo=True), conversation_id=open_id
    )
    messages: list[object] = []
    leave = app.exit
    app.exit = lambda *args, **kwargs: (messages.append(kwargs.get("message")), leave(*args, **kwargs))  # type: ignore[method-assign]
    async with app.run_test() as pilot:  # an exception inside the app is raised here
        await pilot.pause()
        started = app.chat is not None
    if app.return_code:
        [message] = messages
        assert app.return_code == 1 and "stackspot-tui repair" in str(message) and "\n" not in str(message), message
    else:
        assert started
