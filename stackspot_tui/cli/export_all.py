"""`export --all`: a file per conversation, written by a process per core for a large history.

Exporting is CPU work a conversation at a time (read its pages, render, write), so the shares of
a large history go to worker processes, each reading the store under the shared lock as any
reader does. A small history is exported in this process: starting workers would cost more."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .. import export
from ..atomicfile import sync_all
from ..store import HistoryStore
from ..store.errors import HistoryError
from ..store.models import Conversation
from .common import CommandError

#: conversations a worker takes at a time: small enough to keep the workers evenly busy, large
#: enough that handing a share over (its conversations pickled) costs little. With fewer than two
#: shares' worth, one process does it all.
SHARE = 100


def export_all(store: HistoryStore, fmt: str, directory: Path, force: bool) -> int:
    """Export every conversation (archived too) into ``directory``; how many there were."""
    conversations = store.list_conversations(archived=None)
    processes = min(os.cpu_count() or 1, len(conversations) // SHARE)
    if processes < 2:
        write_files(store, conversations, fmt, directory, force)
    else:
        _in_processes(store.root, conversations, fmt, directory, force, processes)
    sync_all()  # the files are made durable together: one sync, not two fsyncs a file
    return len(conversations)


def write_files(
    store: HistoryStore, conversations: Sequence[Conversation], fmt: str, directory: Path, force: bool
) -> None:
    """Each conversation's file, written as its turns are read and renamed into place whole."""
    for conversation in conversations:
        pieces = export.chunks(fmt, conversation, store.iter_turns(conversation))
        export.write_new_file(directory / f"{conversation.id}.{fmt}", pieces, force=force, durable=False)


_stopping = False  # in a worker: Ctrl+C came, and the shares already queued for it are skipped


def _start_worker() -> None:
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return  # run where Ctrl+C is ignored (a background job): so is it here

    def interrupted(signum: int, frame: object) -> None:
        global _stopping
        _stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupted)


def share(root: Path, conversations: Sequence[Conversation], fmt: str, directory: Path, force: bool) -> str | None:
    """A worker's share: the error that stopped it, as its line (the store's errors do not pickle)."""
    if _stopping:
        return None
    try:
        write_files(HistoryStore(root), conversations, fmt, directory, force)
    except (HistoryError, export.ExportWriteError) as exc:
        return str(exc)
    return None


def _in_processes(
    root: Path, conversations: Sequence[Conversation], fmt: str, directory: Path, force: bool, processes: int
) -> None:
    # Imported here: every command's process loads this module, and the process pool's modules
    # were a tenth of the start-up of `run` and `conversations`.
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    # Forked workers start at once; elsewhere fork is unsafe (macOS) or missing (Windows).
    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    shares = [conversations[at : at + SHARE] for at in range(0, len(conversations), SHARE)]
    pool = ProcessPoolExecutor(processes, mp_context=context, initializer=_start_worker)
    try:
        futures = [pool.submit(share, root, part, fmt, directory, force) for part in shares]
        for future in futures:  # the first error in the list's order, as one process would meet it
            try:
                error = future.result()
            except BrokenProcessPool:  # a worker was killed (out of memory, a signal)
                error = "an export process was stopped before it finished; the files written are whole: run it again"
            if error is not None:
                raise CommandError(error)
    finally:
        # On an error or Ctrl+C (which stops the workers' current shares too) the shares not
        # started yet are dropped: left queued, the workers would go on exporting them.
        pool.shutdown(cancel_futures=True)
