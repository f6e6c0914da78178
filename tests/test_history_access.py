"""Who may read the history: private files, read-only histories, another user's, the lock."""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from stackspot_tui.api import StackSpotClient
from stackspot_tui.cli import main
from stackspot_tui.engine import ConversationService
from stackspot_tui.engine.backend import Backend
from stackspot_tui.store import HistoryLockTimeout, HistoryReadOnlyError, HistoryStore
from stackspot_tui.store.storage import HistoryLock

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def cli_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKSPOT")}
    env.update(STACKSPOT_TUI_DATA_DIR=str(data_dir), STACKSPOT_TUI_CONFIG=str(data_dir / "none.toml"))
    return env


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("STACKSPOT")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("STACKSPOT_TUI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STACKSPOT_TUI_CONFIG", str(tmp_path / "none.toml"))
    return tmp_path / "data"


@posix_only
def test_history_and_exports_are_private(isolated, tmp_path):
    os.umask(0o022)  # the usual umask: what we create must not inherit its 0644/0755
    store = HistoryStore(isolated / "history")
    conversation = store.create_conversation("qc")
    turn = store.add_turn(conversation.id, "secret plans", "x")
    store.update_turn(conversation.id, turn.seq, status="COMPLETED", result="ok")
    exported = tmp_path / "out" / "all"
    for args in (["export", conversation.id, "-o", str(tmp_path / "one.md")], ["export", "--all", "-o", str(exported)]):
        assert main(args, stdout=io.StringIO(), stderr=io.StringIO()) == 0
    from_app = tmp_path / "app" / "exports" / "one.html"  # the app's export dialog, through the engine
    unused = StackSpotClient(client_id="x", client_secret="x", token_url="https://x", api_url="https://x")
    Backend(ConversationService(unused, store)).export_to(conversation.id, "html", from_app)
    assert mode(isolated) == 0o700
    made = [exported.parent, exported, from_app.parent.parent, from_app.parent]
    dirs = [p for p in isolated.rglob("*") if p.is_dir()] + made
    files = [p for p in isolated.rglob("*") if p.is_file()] + [tmp_path / "one.md", *exported.iterdir(), from_app]
    assert {p.name for p in files} >= {"meta.json", "lock", "conversation.json", "journal.jsonl", "one.md"}
    assert [p for p in files if p.suffix == ".sqlite"]  # the catalog, and its -wal and -shm while open
    assert {str(p): oct(mode(p)) for p in dirs if mode(p) != 0o700} == {}
    assert {str(p): oct(mode(p)) for p in files if mode(p) != 0o600} == {}


@posix_only
def test_a_history_left_readable_by_an_older_version_is_made_private(tmp_path):
    HistoryStore(tmp_path / "history")
    os.chmod(tmp_path / "history", 0o755)
    HistoryStore(tmp_path / "history")
    assert mode(tmp_path / "history") == 0o700


def test_a_lock_that_cannot_be_had_says_how_long_it_waited(tmp_path):
    store = HistoryStore(tmp_path, lock_timeout=0)
    other = HistoryLock(tmp_path / "lock")  # another open file description: another process, for flock
    with other.hold():
        with pytest.raises(HistoryLockTimeout, match=r"waited 0\.0 s for the history lock .*lock"):
            store.create_conversation("qc")
    store.create_conversation("qc")


def test_reads_share_the_lock_writes_do_not(tmp_path):
    store = HistoryStore(tmp_path, lock_timeout=0)
    conversation = store.create_conversation("qc")
    reader = HistoryLock(tmp_path / "lock")
    with reader.hold(shared=True):
        assert store.get_conversation(conversation.id).id == conversation.id  # two readers at once
        with pytest.raises(HistoryLockTimeout):
            store.add_turn(conversation.id, "x", "x")


def test_a_write_inside_a_read_is_refused(tmp_path):
    lock = HistoryLock(tmp_path / "lock")
    with lock.hold(shared=True), pytest.raises(RuntimeError), lock.hold():
        pass


# -- another user, a read-only history -----------------------------------------------------------


def unprivileged() -> list[str]:
    """A prefix that makes root obey file modes (no DAC override), so the tests mean the same as root."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: file modes cannot be tested")
    return ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps", "-all"]


COMMANDS = """
import io, json, os, sys
from stackspot_tui.cli import main
results = []
for data_dir, args in json.loads(sys.argv[1]):
    os.environ["STACKSPOT_TUI_DATA_DIR"] = data_dir
    out, err = io.StringIO(), io.StringIO()
    results.append([main(args, stdout=out, stderr=err), out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def run_unprivileged(runs: list[tuple[Path, list[str]]]) -> list[tuple[int, str, str]]:
    """CLI commands in one real process that file modes apply to (one process: the suite stays fast)."""
    env = cli_env(Path("/nonexistent"))
    plan = json.dumps([(str(data_dir), args) for data_dir, args in runs])
    result = subprocess.run(
        [*unprivileged(), sys.executable, "-c", COMMANDS, plan], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [tuple(r) for r in json.loads(result.stdout)]


@pytest.fixture
def restore_modes(tmp_path):
    yield
    for path in [tmp_path, *tmp_path.rglob("*")]:
        path.chmod(0o700 if path.is_dir() else 0o600)


def chmod_tree(root: Path, dirs: int, files: int) -> None:
    for path in sorted([root, *root.rglob("*")], key=lambda p: -len(p.parts)):
        path.chmod(dirs if path.is_dir() else files)


@posix_only
@pytest.mark.e2e
def test_a_read_only_history_still_reads(tmp_path, restore_modes):
    runs = []
    for data_dir in (tmp_path / "with-lock", tmp_path / "without-lock"):
        store = HistoryStore(data_dir / "history")
        conversation = store.create_conversation("qc")
        turn = store.add_turn(conversation.id, "read me", "x")
        store.update_turn(conversation.id, turn.seq, status="COMPLETED", result="the answer")
        if data_dir.name == "without-lock":
            (data_dir / "history" / "lock").unlink()  # and none can be created: reads go without
        chmod_tree(data_dir / "history", 0o500, 0o400)
        runs += [
            (data_dir, ["conversations"], conversation.id),
            (data_dir, ["show", conversation.id], "the answer"),
            (data_dir, ["search", "answer"], conversation.id),
            (data_dir, ["export", conversation.id, "--format", "json"], "read me"),
            (data_dir, ["rename", conversation.id, "new title"], None),
        ]
    results = run_unprivileged([(data_dir, args) for data_dir, args, _ in runs])
    for (data_dir, args, expected), (code, out, err) in zip(runs, results, strict=True):
        if expected is None:  # a write: one line saying why not
            assert code == 1 and err.count("\n") == 1 and "unexpected" not in err
            assert "read-only" in err and "reading commands work" in err
        else:
            assert code == 0 and expected in out, (args, err)
        assert mode(data_dir / "history") == 0o500  # never made writable behind the user's back


@posix_only
@pytest.mark.e2e
def test_another_users_history_is_one_clear_line(tmp_path, restore_modes):
    HistoryStore(tmp_path / "history").create_conversation("qc")
    chmod_tree(tmp_path / "history", 0o000, 0o000)  # what another user's private history looks like
    runs = [(tmp_path, ["conversations"]), (tmp_path, ["show", "abc"]), (tmp_path, ["repair"])]
    for code, _out, err in run_unprivileged(runs):
        assert code == 1 and err.count("\n") == 1 and "unexpected" not in err, err
        assert "Permission denied" in err and "another user" in err


def test_read_only_writes_say_so(tmp_path, monkeypatch):
    store = HistoryStore(tmp_path)
    store.create_conversation("qc")
    (tmp_path / "lock").unlink()
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr("stackspot_tui.store.storage.os.open", read_only)
    reader = HistoryStore(tmp_path)
    assert len(reader.list_conversations()) == 1  # read without a lock file
    with pytest.raises(HistoryReadOnlyError, match="read-only"):
        reader.create_conversation("qc")


# -- where fcntl does not exist -----------------------------------------------------------------


def test_the_package_imports_and_keeps_history_without_fcntl(tmp_path):
    script = (
        "import sys; sys.modules['fcntl'] = None\n"
        "import stackspot_tui.cli, stackspot_tui.engine\n"
        "from stackspot_tui.store import HistoryStore, storage\n"
        "assert storage.fcntl is None\n"
        f"store = HistoryStore({str(tmp_path)!r})\n"
        "c = store.create_conversation('qc'); store.add_turn(c.id, 'p', 'p')\n"
        "print(len(store.turns(c.id)))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"
