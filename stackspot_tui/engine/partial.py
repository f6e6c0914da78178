"""Saving a streaming answer as it grows, off the event loop, so a kill keeps what had arrived."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from ..store import HistoryStore
from ..store.models import Turn


class PartialSaver:
    """Writes ``text()`` into the turn (marked incomplete) at most every ``interval`` seconds.

    A write runs in a worker thread, one at a time; text that arrives during a write is saved
    by the next one, scheduled on the loop's real clock so a quiet stream still gets its last
    words on disk within ``interval``. A failed write (disk full...) is remembered in ``error``
    and does not stop the stream: the final save reports it.
    """

    def __init__(self, store: HistoryStore, turn: Turn, text: Callable[[], str], *, interval: float = 0.25) -> None:
        self._store = store
        self._turn = turn
        self._text = text
        self._interval = interval
        self._last = 0.0
        self._dirty = False
        self._timer: asyncio.TimerHandle | None = None
        self._writing: asyncio.Future[Turn] | None = None
        self.writes = 0
        self.error: BaseException | None = None

    def changed(self) -> None:
        """More text arrived."""
        self._dirty = True
        if self._timer is None and self._writing is None:
            delay = max(0.0, self._last + self._interval - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, self._write)

    def _write(self) -> None:
        self._timer = None
        self._dirty = False
        self._last = time.monotonic()
        text = self._text()
        self._writing = asyncio.ensure_future(
            asyncio.to_thread(
                self._store.update_turn, self._turn.conversation, self._turn.seq, result=text, incomplete=True
            )
        )
        self._writing.add_done_callback(self._written)

    def _written(self, future: asyncio.Future[Turn]) -> None:
        self._writing = None
        if not future.cancelled() and future.exception() is not None:
            self.error = future.exception()
        self.writes += 1
        if self._dirty:
            self.changed()

    async def close(self) -> None:
        """No more writes; waits for the one in flight (the final save must come after it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._dirty = False
        writing = self._writing
        if writing is not None:
            with contextlib.suppress(Exception):  # already in ``error``
                await asyncio.shield(writing)
