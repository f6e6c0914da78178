"""The engine and the history: store work off the event loop, a full disk mid-turn."""

from __future__ import annotations

import asyncio
import errno
import io
import os
import threading
from pathlib import Path

import pytest
from conftest import FakeTime, make_client

from stackspot_tui.cli import main
from stackspot_tui.sim import Simulator
from stackspot_tui.store import HistoryStore, HistoryWriteError


async def test_store_calls_run_off_the_event_loop(service, store, monkeypatch):
    loop_thread = threading.get_ident()
    threads: list[tuple[str, int]] = []
    for name in ("get_conversation", "add_turn", "update_turn", "get_turn", "update_conversation"):
        original = getattr(store, name)

        def spy(*args, _name=name, _original=original, **kwargs):
            threads.append((_name, threading.get_ident()))
            return _original(*args, **kwargs)

        monkeypatch.setattr(store, name, spy)
    conversation = service.new_conversation("code-review")
    threads.clear()
    turn = await service.send(conversation.id, "hello")
    assert turn.status == "COMPLETED"
    on_loop = [name for name, thread in threads if thread == loop_thread]
    assert {name for name, _ in threads} >= {"add_turn", "update_turn"} and on_loop == []


async def test_a_cancelled_caller_waits_for_the_store_write_in_flight(service):
    started, release, done = threading.Event(), threading.Event(), []

    def slow_write() -> str:
        started.set()
        release.wait(5)
        done.append(True)
        return "written"

    task = asyncio.create_task(service._io(slow_write))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    await asyncio.sleep(0)
    assert not task.done()  # still waiting for the write: the CANCELLED write cannot overtake it
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert done == [True]


def fail_progress_writes(store: HistoryStore, monkeypatch, after: int) -> None:
    """Page writes fail with ENOSPC from the ``after``-th update on, as on a full disk."""
    original = store.update_turn
    calls = {"n": 0}

    def update_turn(conv_id, seq, **fields):
        calls["n"] += 1
        if calls["n"] >= after:
            raise HistoryWriteError(store.page_path(conv_id, 0), OSError(errno.ENOSPC, "No space left on device"))
        return original(conv_id, seq, **fields)

    monkeypatch.setattr(store, "update_turn", update_turn)


async def test_a_full_disk_while_an_execution_runs_keeps_the_turn_resumable(service, store, monkeypatch):
    conversation = service.new_conversation("code-review")
    fail_progress_writes(store, monkeypatch, after=2)  # the execution id is saved, progress is not
    turn = await service.send(conversation.id, "hello")
    assert turn.needs_reattach and "No space left on device" in turn.error and "stackspot-tui resume" in turn.error
    monkeypatch.undo()
    [(_, pending)] = store.pending_turns()
    assert pending.execution_id == turn.execution_id
    assert (await service.reattach(conversation.id, pending.seq)).status == "COMPLETED"


async def test_a_full_disk_before_the_execution_id_is_saved_names_the_execution(service, store, monkeypatch):
    conversation = service.new_conversation("code-review")
    fail_progress_writes(store, monkeypatch, after=1)
    turn = await service.send(conversation.id, "hello")
    assert turn.execution_id and turn.execution_id in turn.error and "could not be saved" in turn.error
    assert not turn.needs_reattach


def test_run_on_a_full_disk_exits_3_with_the_resume_hint(tmp_path, monkeypatch):
    for key in [k for k in os.environ if k.startswith("STACKSPOT")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("STACKSPOT_TUI_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STACKSPOT_TUI_CONFIG", str(tmp_path / "none.toml"))
    fake = FakeTime()
    monkeypatch.setattr(
        "stackspot_tui.runtime.build_client",
        lambda settings, demo: make_client(Simulator(duration=3.0, clock=fake.clock), fake),
    )
    real_open_store = HistoryStore.__init__

    def full_disk_store(self, root: Path, **kwargs) -> None:
        real_open_store(self, root, **kwargs)
        fail_progress_writes(self, monkeypatch, after=2)

    monkeypatch.setattr(HistoryStore, "__init__", full_disk_store)
    out, err = io.StringIO(), io.StringIO()
    assert main(["run", "code-review", "hello"], stdout=out, stderr=err) == 3
    [line] = err.getvalue().splitlines()
    assert "No space left on device" in line and "stackspot-tui resume" in line and "unexpected" not in line
