"""A conversation's journal: the steps of its turns appended as lines instead of rewriting its files.

A turn is written five or more times (the prompt, the execution id, progress snapshots, the
result; a streamed answer every quarter second). Rewriting its page (up to 100 turns) and the
record each time costs a rename and two fsyncs per write; appending a line to
``journal.jsonl`` costs one write and one fsync. Each line holds whole new states (the record,
a turn, or both at once), so a change to both is one atomic step, and replaying the lines in
order is idempotent: the last state of each wins. Readers lay the journal over the files; once
it passes ``FOLD_BYTES`` its states are written into the page and record files and it is
emptied (killed on the way, the next reader replays the same states over the files).

A line is ``<crc32 of the JSON, 8 hex digits> <JSON>\\n``. A last line cut short (its start and
no end, perhaps blocks of NUL bytes) is a write that never finished (a power cut before its
fsync): it is ignored, and the next append writes over it. Any other bad line is damage.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import fastjson
from .errors import HistoryCorruptError
from .schema import PAGE_SIZE, Record

JOURNAL_FILE = "journal.jsonl"
FOLD_BYTES = 64 * 1024  # a fold rewrites the pages it touched; reading the journal stays under ~1 ms
FOLD_LINES = 4  # and waits for at least this many lines the size of the last one

# (what, record, key) -> a problem or None: the store's schema checks, given by the store
RecordCheck = Callable[[str, Any, str], str | None]


@dataclass(frozen=True)
class JournalState:
    """What a journal holds: the newest record, the newest state of each turn by page and doc id."""

    record: Record | None = None
    pages: dict[int, dict[str, Record]] = field(default_factory=dict)
    length: int = 0  # bytes of whole, checked lines
    size: int = 0  # bytes in the file (more than ``length``: an unfinished last line)

    def __bool__(self) -> bool:
        return self.record is not None or bool(self.pages)

    def with_entry(self, entry: dict[str, Any], line_length: int) -> JournalState:
        """The state after one more line (``length`` and ``size`` both at its end)."""
        pages = self.pages
        turn = entry.get("turn")
        if turn is not None:
            page = turn["seq"] // PAGE_SIZE
            pages = {**pages, page: {**pages.get(page, {}), str(turn["seq"] + 1): turn}}
        end = self.length + line_length
        return JournalState(entry.get("record", self.record), pages, end, end)


def encode_line(entry: dict[str, Any]) -> bytes:
    body = json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"%08x %s\n" % (zlib.crc32(body), body)


def _decode_line(line: bytes) -> Any:
    """The line's entry; None when the line is not whole (short, or its checksum fails)."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
    except ValueError:
        return None
    try:
        return fastjson.loads(body)
    except (ValueError, RecursionError):
        return None


def parse_journal(path: Path, raw: bytes, check: RecordCheck, *, salvage: bool = False) -> JournalState:
    """Every whole line, checked; an unfinished last line is left out of ``length``. A damaged
    line raises, unless ``salvage``: then the state is the lines before it (``length`` their end)."""
    state = JournalState(size=len(raw))
    position, number = 0, 0
    while position < len(raw):
        number += 1
        end = raw.find(b"\n", position)
        entry: Any = None if end == -1 else _decode_line(raw[position:end])
        if entry is None:
            if _unfinished(raw[position:]):
                break  # a last write that never finished
            problem: str | None = "its checksum fails" if end != -1 else "not a whole line"
        else:
            problem = _entry_problem(entry, check)
        if problem:
            if salvage:
                break
            raise HistoryCorruptError(path, f"line {number} is damaged: {problem}")
        state = state.with_entry(entry, end + 1 - position)
        position = end + 1
    return JournalState(state.record, state.pages, state.length, len(raw))


_LINE_START = re.compile(rb"[0-9a-f]{0,8}( (\{.*)?)?", re.DOTALL)  # cut anywhere, even just past the space


def _unfinished(tail: bytes) -> bool:
    """What a last write cut short can leave: the start of a line, no end, perhaps blocks of NUL
    bytes the disk never got to. Anything else (a newline, bytes no line starts with) is damage."""
    if b"\0" in tail.rstrip(b"\0"):
        return b"\n" not in tail.rstrip(b"\n\0")  # a block never written inside the last line
    return b"\n" not in tail and _LINE_START.fullmatch(tail.rstrip(b"\0")) is not None


def _entry_problem(entry: Any, check: RecordCheck) -> str | None:
    if type(entry) is not dict or not entry or set(entry) - {"record", "turn"}:
        return "not a journal entry (a record and/or a turn)"
    if "record" in entry:
        problem = check("record", entry["record"], "")
        if problem:
            return problem
    turn = entry.get("turn")
    if "turn" in entry:
        seq = turn.get("seq") if type(turn) is dict else None
        if type(seq) is not int or seq < 0:
            return "a turn without a seq"
        problem = check("turn", turn, str(seq + 1))
        if problem:
            return problem
    return None


def append_line(path: Path, state: JournalState, line: bytes, *, durable: bool) -> bool:
    """Append one line after the whole ones (over an unfinished last line); True when the file
    was created, so the caller syncs its directory."""
    created = state.size == 0 and not os.path.lexists(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)  # Windows: no \r\n
    try:
        if state.size != state.length or os.fstat(fd).st_size != state.length:
            os.ftruncate(fd, state.length)
        os.lseek(fd, state.length, os.SEEK_SET)
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view) :]
        if durable or created:
            os.fsync(fd)
    finally:
        os.close(fd)
    return created
