"""`stackspot-tui repair`: set damaged history files aside, keep every good record, rebuild the index.

Nothing is deleted or overwritten: a damaged file (or a directory where a file should be) is
renamed aside as it was, and the good records it held are written to a fresh file in its
place. Then the index is reconciled with the pages, which hold the truth.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import schema
from .errors import HistoryAccessError, HistoryError, HistoryVersionError
from .models import Conversation, now_iso
from .schema import INDEX_TABLE, PAGE_SIZE, TURNS_TABLE, is_id
from .storage import read_bytes, write_json_atomic

if TYPE_CHECKING:
    from .history import HistoryStore

_SHARD_FILE = re.compile(r"[0-9a-f]\.json")
_PAGE_FILE = re.compile(r"[0-9]{4}\.json")
_SPACE = re.compile(r"\s*")

RecordCheck = Callable[[str, Any], str | None]


@dataclass
class RepairReport:
    actions: list[str] = field(default_factory=list)  # what was done, one line each
    problems: list[str] = field(default_factory=list)  # what could not be done, one line each


def repair(store: HistoryStore) -> RepairReport:
    report = RepairReport()
    try:
        store.root.stat()
        list(store.root.iterdir())
    except OSError as exc:
        raise HistoryAccessError(store.root, "repair", exc) from None
    _clear_the_way(store, report)  # the lock itself may be what is damaged: before taking it
    with store._lock.hold():
        _guard(report, "meta.json", _repair_meta, store, report)
        _guard(report, "trash", _finish_deletes, store, report)
        store._index_cache.clear()
        hints: dict[str, dict[str, Any]] = {}  # the sound fields of bad index records, by conversation id
        for path in _entries(store.root / "index"):
            if _SHARD_FILE.fullmatch(path.name):
                check = _index_record_check(path.stem)
                bad = _guard(report, _name(store, path), _salvage, store, path, INDEX_TABLE, check, report)
                for record in (bad or {}).values():
                    if isinstance(record, dict) and is_id(record.get("id")):
                        hints[record["id"]] = _sound_fields(record)
        for directory in _entries(store.root / "conversations"):
            if is_id(directory.name):
                _guard(report, _name(store, directory), _salvage_pages, store, directory, report)
        store._index_cache.clear()
        _guard(report, "the index", _reconcile, store, report, hints)
    return report


def _guard(report: RepairReport, what: str, step: Callable[..., Any], *args: Any) -> Any:
    """One step's failure is reported and the others still run: repair never stops half-way."""
    try:
        return step(*args)
    except HistoryVersionError:
        raise
    except (HistoryError, OSError, ValueError) as exc:
        detail = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
        report.problems.append(f"could not repair {what}: {detail}")
        return None


def _name(store: HistoryStore, path: Path) -> str:
    return str(path.relative_to(store.root))


def _entries(directory: Path) -> list[Path]:
    try:
        return sorted(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise HistoryAccessError(directory, "read", exc) from None


def _set_aside(store: HistoryStore, path: Path, why: str, report: RepairReport, kept: str = "") -> Path:
    moved = store.quarantine(path)
    report.actions.append(f"set {_name(store, path)} aside as {moved.name} ({why}){kept}")
    return moved


def _clear_the_way(store: HistoryStore, report: RepairReport) -> None:
    """A file where a directory belongs, or the reverse, is moved aside."""
    for name, want_dir in (("lock", False), ("index", True), ("conversations", True), ("trash", True)):
        _guard(report, name, _clear, store, store.root / name, want_dir, report)


def _clear(store: HistoryStore, path: Path, want_dir: bool, report: RepairReport) -> None:
    if path.is_symlink() or (path.exists() and path.is_dir() != want_dir):
        what = "a file where a directory should be" if want_dir else "a directory where a file should be"
        _set_aside(store, path, what, report)


def _repair_meta(store: HistoryStore, report: RepairReport) -> None:
    try:
        missing = store._check_meta()
    except HistoryVersionError:
        raise
    except HistoryError as exc:
        _set_aside(store, store.meta_path, getattr(exc, "detail", str(exc)), report)
        missing = True
    if missing:
        store._write_meta()


def _finish_deletes(store: HistoryStore, report: RepairReport) -> None:
    done, failed = store._finish_deletes()
    report.actions += [f"finished deleting conversation {c} (its delete had been interrupted)" for c in done]
    report.problems += [str(exc) for exc in failed]


def _index_record_check(shard: str) -> RecordCheck:
    return lambda key, record: schema.conversation_problem(key, record, shard)


def _page_record_check(conv_id: str, page: int) -> RecordCheck:
    return lambda key, record: schema.turn_problem(key, record, conv_id, page)


def _salvage_pages(store: HistoryStore, directory: Path, report: RepairReport) -> None:
    if not directory.is_dir() or directory.is_symlink():
        _set_aside(store, directory, "a file where a conversation directory should be", report)
        return
    for path in _entries(directory):
        if _PAGE_FILE.fullmatch(path.name):
            check = _page_record_check(directory.name, int(path.stem))
            _guard(report, _name(store, path), _salvage, store, path, TURNS_TABLE, check, report)


def _salvage(store: HistoryStore, path: Path, table: str, check: RecordCheck, report: RepairReport) -> dict[str, Any]:
    """Keep a file that reads cleanly; otherwise set it aside and write its good records anew.

    Returns the bad records (they stay in the file set aside)."""
    if path.is_symlink() or path.is_dir():
        _set_aside(store, path, "a directory where a file should be", report)
        return {}
    raw = read_bytes(path)
    if raw is None:
        return {}
    records, why = _records_in(raw, table)
    problems = {key: check(key, record) for key, record in records.items()}
    good = {key: record for key, record in records.items() if not problems[key]}
    bad = {key: record for key, record in records.items() if problems[key]}
    if why is None and not bad:
        return {}
    why = why or str(next(p for p in problems.values() if p))
    dropped = f", {len(bad)} bad record(s) stay only there" if bad else ""
    kept = f"; {len(good)} good record(s) kept{dropped}"
    _set_aside(store, path, why, report, kept)
    if good or table == TURNS_TABLE:  # a page below next_seq must exist, even empty
        write_json_atomic(path, {table: good})
    return bad


def _sound_fields(record: dict[str, Any]) -> dict[str, Any]:
    return {
        name: value
        for name, value in record.items()
        if name in schema.CONVERSATION_FIELDS and not schema.CONVERSATION_FIELDS[name][0](value)
    }


def _records_in(raw: bytes, table: str) -> tuple[dict[str, Any], str | None]:
    """The records a file holds and what is wrong with the file itself (None: nothing)."""
    if not raw.strip():
        return {}, "empty file"
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        return _records_before_damage(raw, table), f"not valid JSON: {exc}"
    problem = schema.table_problem(data, table)
    if isinstance(data, dict) and isinstance(data.get(table), dict):
        return data[table], problem
    return {}, problem


def _records_before_damage(raw: bytes, table: str) -> dict[str, Any]:
    """The whole records at the start of a cut-off or garbled file: a truncated page keeps its first turns."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = raw[: exc.start].decode("utf-8")
    decoder = json.JSONDecoder()
    records: dict[str, Any] = {}
    head = re.compile(r'\s*\{\s*"' + re.escape(table) + r'"\s*:\s*\{').match(text)
    if head is None:
        return records
    pos = head.end()
    try:
        while True:
            pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
            if text[pos] == "}":
                return records
            key, pos = decoder.raw_decode(text, pos)
            pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
            if not isinstance(key, str) or text[pos] != ":":
                return records
            pos = _SPACE.match(text, pos + 1).end()  # type: ignore[union-attr]
            value, pos = decoder.raw_decode(text, pos)
            records[key] = value
            pos = _SPACE.match(text, pos).end()  # type: ignore[union-attr]
            if text[pos] != ",":
                return records
            pos += 1
    except (ValueError, IndexError, RecursionError):
        return records


def _reconcile(store: HistoryStore, report: RepairReport, hints: dict[str, dict[str, Any]]) -> None:
    """Index records agree with the pages: counters recounted, missing records rebuilt, missing pages stood in."""
    known: dict[str, Conversation] = {}
    for shard in "0123456789abcdef":
        for record in store._index(shard).values():
            known[record["id"]] = Conversation.from_dict(record)
    on_disk = {d.name for d in _entries(store.root / "conversations") if is_id(d.name) and d.is_dir()}
    for conv_id in sorted(on_disk - set(known)):
        _guard(report, f"conversation {conv_id}", _rebuild_record, store, conv_id, report, hints.get(conv_id, {}))
    for conv_id, conversation in sorted(known.items()):
        _guard(report, f"conversation {conv_id}", _recount, store, conversation, report)


def _recount(store: HistoryStore, conversation: Conversation, report: RepairReport) -> None:
    turns = store._turns_on_disk(conversation.id)
    counters = store._counters(turns, conversation.next_seq)
    missing = [
        page
        for page in range(-(-counters["next_seq"] // PAGE_SIZE))
        if not store.page_path(conversation.id, page).exists()
    ]
    for page in missing:
        write_json_atomic(store.page_path(conversation.id, page), {TURNS_TABLE: {}})
    if missing:
        names = ", ".join(store.page_path(conversation.id, p).name for p in missing)
        report.actions.append(
            f"conversation {conversation.id}: page file(s) {names} were missing; their turns are lost, "
            "empty pages stand in"
        )
    if any(getattr(conversation, name) != value for name, value in counters.items()):
        store._update_index(conversation.id, counters)
        report.actions.append(f"recounted conversation {conversation.id}: {counters['turn_count']} turn(s)")


def _rebuild_record(store: HistoryStore, conv_id: str, report: RepairReport, hints: dict[str, Any]) -> None:
    """An index record from the turns, and from the sound fields of the bad record it replaces."""
    turns = store._turns_on_disk(conv_id)
    if not turns:
        return  # nothing to show: an empty directory stays as it is
    first, last = turns[0], turns[-1]
    rebuilt: dict[str, Any] = {
        "slug": last.slug or ("" if last.agent_id else "unknown"),
        "agent_id": last.agent_id,
        "title": store._title_from(first.prompt),
        "conversation_id": next((t.conversation_id for t in reversed(turns) if t.conversation_id), None),
        "created_at": first.created_at,
        "updated_at": last.finished_at or last.created_at or now_iso(),
    }
    kept: dict[str, Any] = {
        name: hints[name]
        for name in ("slug", "agent_id", "title", "conversation_id", "archived", "created_at")
        if name in hints
    }
    counters = store._counters(turns, hints.get("next_seq", 0))
    conversation = Conversation.from_dict({**rebuilt, **kept, **counters, "id": conv_id})
    store._write_conversation(conversation)
    report.actions.append(f"rebuilt the index record of conversation {conv_id} from its {len(turns)} turn(s)")
