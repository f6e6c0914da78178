"""`stackspot-tui repair`: set damaged history files aside, keep every good record, rebuild the catalog.

Nothing is deleted or overwritten: a damaged file (or a directory where a file should be) is
renamed aside as it was, and the good records it held are written to a fresh file in its
place. Then each conversation's record is reconciled with its pages, which hold the truth,
and the catalog (list and search) is checked against the files and rebuilt from them when
it is damaged or does not agree.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..atomicfile import sync_all, write_atomic
from ..wording import counted
from . import schema
from .errors import HistoryAccessError, HistoryCorruptError, HistoryError, HistoryVersionError
from .journal import JOURNAL_FILE, parse_journal
from .models import Conversation, Turn, now_iso
from .schema import INDEX_TABLE, PAGE_SIZE, TURNS_TABLE, doc_id, is_id
from .storage import read_bytes, read_json, write_json_atomic

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
        version = _guard(report, "meta.json", _repair_meta, store, report)
        if version == 1:
            _guard(report, "the older layout's index", _convert_v1, store, report)
        elif os.path.lexists(store.root / "index"):
            _guard(report, "index", _remove_v1_leftover, store, report)
        _guard(report, "trash", _finish_deletes, store, report)
        hints: dict[str, dict[str, Any]] = {}  # the sound fields of bad conversation records, by id
        for directory in _entries(store.root / "conversations"):
            if is_id(directory.name):
                _guard(report, _name(store, directory), _salvage_conversation, store, directory, report, hints)
        changed = bool(report.actions)
        sound = _guard(report, "the search catalog", _catalog_usable, store, report)
        agreement = _Agreement(store, enabled=bool(sound) and not changed)
        _guard(report, "the conversation records", _reconcile, store, report, hints, agreement)
        if not sound or changed or agreement.differs:
            why = agreement.differs or ("it was damaged or missing" if not sound else "files were repaired")
            _guard(report, "the search catalog", _rebuild_catalog, store, report, why)
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
    for name, want_dir in (("lock", False), ("conversations", True), ("trash", True), ("catalog", True)):
        _guard(report, name, _clear, store, store.root / name, want_dir, report)


def _clear(store: HistoryStore, path: Path, want_dir: bool, report: RepairReport) -> None:
    if path.is_symlink() or (path.exists() and path.is_dir() != want_dir):
        what = "a file where a directory should be" if want_dir else "a directory where a file should be"
        _set_aside(store, path, what, report)


def _repair_meta(store: HistoryStore, report: RepairReport) -> int:
    """meta.json sound again; the schema version the files are in."""
    try:
        version = store._check_meta()
    except HistoryVersionError:
        raise
    except HistoryError as exc:
        _set_aside(store, store.meta_path, getattr(exc, "detail", str(exc)), report)
        version = None
    if version is None:
        # Lost with its meta.json, an older history still has its index shards.
        version = 1 if (store.root / "index").is_dir() else store_version()
        write_json_atomic(store.meta_path, {"schema_version": version, "app": "stackspot-tui"})
    return version


def store_version() -> int:
    from .history import SCHEMA_VERSION

    return SCHEMA_VERSION


def _finish_deletes(store: HistoryStore, report: RepairReport) -> None:
    done, failed = store._finish_deletes()
    report.actions += [f"finished deleting conversation {c} (its delete had been interrupted)" for c in done]
    report.problems += [str(exc) for exc in failed]


def _index_record_check(shard: str) -> RecordCheck:
    return lambda key, record: schema.conversation_problem(key, record, shard)


def _record_check(conv_id: str) -> RecordCheck:
    def check(key: str, record: Any) -> str | None:
        if key != str(doc_id(conv_id)):
            return f"record {key!r} is not conversation {conv_id}'s"
        return schema.conversation_problem(key, record, conv_id[0])

    return check


def _page_record_check(conv_id: str, page: int) -> RecordCheck:
    return lambda key, record: schema.turn_problem(key, record, conv_id, page)


def _salvage_conversation(
    store: HistoryStore, directory: Path, report: RepairReport, hints: dict[str, dict[str, Any]]
) -> None:
    if not directory.is_dir() or directory.is_symlink():
        _set_aside(store, directory, "a file where a conversation directory should be", report)
        return
    from .history import RECORD_FILE

    # Sorted: the pages and the record are sound before the journal is laid over them.
    for path in _entries(directory):
        if _PAGE_FILE.fullmatch(path.name):
            check = _page_record_check(directory.name, int(path.stem))
            _guard(report, _name(store, path), _salvage, store, path, TURNS_TABLE, check, report)
        elif path.name == RECORD_FILE:
            check = _record_check(directory.name)
            bad = _guard(report, _name(store, path), _salvage, store, path, INDEX_TABLE, check, report)
            for record in (bad or {}).values():
                if isinstance(record, dict):
                    hints[directory.name] = _sound_fields(record)
        elif path.name == JOURNAL_FILE:
            _guard(report, _name(store, path), _salvage_journal, store, directory.name, path, report)


def _salvage_journal(store: HistoryStore, conv_id: str, path: Path, report: RepairReport) -> None:
    """A sound journal is folded into the files; a damaged one is set aside, and what its lines
    before the damage hold is folded in."""
    if path.is_symlink() or path.is_dir():
        _set_aside(store, path, "a directory where a file should be", report)
        return
    try:
        store.fold_journal(conv_id)
        return
    except HistoryCorruptError as exc:
        if exc.path != path:
            raise
        why = exc.detail
    raw = read_bytes(path) or b""
    good = parse_journal(path, raw, store._journal_check(conv_id), salvage=True)
    kept = raw[: good.length].count(b"\n")
    _set_aside(store, path, why, report, f"; {counted(kept, 'change')} before the damage kept")
    if good.length:
        write_atomic(path, raw[: good.length])
        store.fold_journal(conv_id)


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
    dropped = f", {counted(len(bad), 'bad record')} stay only there" if bad else ""
    kept = f"; {counted(len(good), 'good record')} kept{dropped}"
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


class _Agreement:
    """Whether the catalog holds what the files hold, conversation by conversation (a sound catalog
    that agrees is kept: rebuilding a large one takes minutes)."""

    def __init__(self, store: HistoryStore, *, enabled: bool) -> None:
        self.store = store
        self.enabled = enabled
        self.differs = ""  # the first difference found, said in a few words
        self.seen: set[str] = set()

    def compare(self, record: dict[str, Any], turns: list[Turn]) -> None:
        self.seen.add(record["id"])
        if not self.enabled or self.differs:
            return
        from .history import turn_text

        conv_id = record["id"]
        held = self.store.catalog.conversations(archived=None, ids=[conv_id])
        if not held or json.loads(held[0]) != record:
            self.differs = f"conversation {conv_id}'s record differs from its file"
        elif self.store.catalog.turn_texts(conv_id) != [(t.seq, *turn_text(t)[3:]) for t in turns]:
            self.differs = f"conversation {conv_id}'s turns differ from its pages"

    def finish(self) -> None:
        if self.enabled and not self.differs and self.store.catalog.count(archived=None) != len(self.seen):
            self.differs = "the catalog lists conversations the files do not hold"


def _catalog_usable(store: HistoryStore, report: RepairReport) -> bool:
    """A sound, complete catalog of this version (a damaged one is set aside)."""
    problem = store.catalog.check()
    if problem is None:
        problem = store.catalog.integrity()
    if problem is None:
        return True
    if store.catalog.path is not None and not problem.startswith(("its build", "catalog version")):
        for moved in store.catalog.set_aside(store.quarantine):
            report.actions.append(
                f"set {_name(store, moved.with_name(moved.name.split('.corrupt-')[0]))} aside as {moved.name} ({problem})"
            )
    return False


def _rebuild_catalog(store: HistoryStore, report: RepairReport, why: str) -> None:
    count = store.catalog.build(store._everything(store._ids_on_disk()))
    report.actions.append(f"rebuilt the search catalog from the files ({count} turns; {why})")


def _convert_v1(store: HistoryStore, report: RepairReport) -> None:
    """An older history: its index shards salvaged like any file, then converted."""
    for path in _entries(store.root / "index"):
        if _SHARD_FILE.fullmatch(path.name):
            check = _index_record_check(path.stem)
            _guard(report, _name(store, path), _salvage, store, path, INDEX_TABLE, check, report)
    migrate_v1(store)
    report.actions.append("converted the history to this version's layout (one record file per conversation)")


def _remove_v1_leftover(store: HistoryStore, report: RepairReport) -> None:
    """A conversion killed after it was done leaves the older index: its records live on elsewhere."""
    import shutil

    shutil.rmtree(store.root / "index")


def migrate_v1(store: HistoryStore) -> None:
    """Version 1 kept every conversation record in 16 index shards; version 2 keeps each in its
    conversation's directory. Each record is written to its new file, then meta.json says 2, then
    the shards go: killed before meta.json, the conversion runs again from the start."""
    records: dict[str, dict[str, Any]] = {}
    for shard in "0123456789abcdef":
        path = store.root / "index" / f"{shard}.json"
        data = read_json(path)
        if data is None:
            continue
        problem = schema.index_file_problem(shard, data)
        if problem:
            raise HistoryCorruptError(path, problem)
        records.update({record["id"]: record for record in data[INDEX_TABLE].values()})
    for conv_id, record in records.items():
        write_json_atomic(store.record_path(conv_id), {INDEX_TABLE: {str(doc_id(conv_id)): record}}, durable=False)
    sync_all()
    store._write_meta()
    import shutil

    shutil.rmtree(store.root / "index", ignore_errors=True)


def _reconcile(
    store: HistoryStore, report: RepairReport, hints: dict[str, dict[str, Any]], agreement: _Agreement
) -> None:
    """Records agree with the pages: counters recounted, missing records rebuilt, missing pages stood in."""
    for conv_id in _entries_ids(store):
        _guard(report, f"conversation {conv_id}", _reconcile_one, store, conv_id, report, hints.get(conv_id), agreement)
    agreement.finish()


def _entries_ids(store: HistoryStore) -> list[str]:
    return [d.name for d in _entries(store.root / "conversations") if is_id(d.name) and d.is_dir()]


def _reconcile_one(
    store: HistoryStore, conv_id: str, report: RepairReport, hints: dict[str, Any] | None, agreement: _Agreement
) -> None:
    turns = store._turns_on_disk(conv_id)
    try:
        record = store._record(conv_id)
    except HistoryCorruptError:
        record = None  # pages without a record: rebuilt below
    if record is None:
        record = _rebuild_record(store, conv_id, turns, report, hints or {})
        if record is None:
            return
    conversation = Conversation.from_dict(record)
    counters = store._counters(turns, conversation.next_seq)
    missing = [
        page for page in range(-(-counters["next_seq"] // PAGE_SIZE)) if not store.page_path(conv_id, page).exists()
    ]
    for page in missing:
        write_json_atomic(store.page_path(conv_id, page), {TURNS_TABLE: {}})
    if missing:
        names = ", ".join(store.page_path(conv_id, p).name for p in missing)
        report.actions.append(
            f"conversation {conv_id}: page file(s) {names} were missing; their turns are lost, empty pages stand in"
        )
    if any(getattr(conversation, name) != value for name, value in counters.items()):
        for name, value in counters.items():
            setattr(conversation, name, value)
        record = store._write_record(conversation)
        report.actions.append(f"recounted conversation {conv_id}: {counted(counters['turn_count'], 'turn')}")
    agreement.compare(record, turns)


def _rebuild_record(
    store: HistoryStore, conv_id: str, turns: list[Turn], report: RepairReport, hints: dict[str, Any]
) -> dict[str, Any] | None:
    """A record from the turns, and from the sound fields of the bad record it replaces."""
    if not turns and "slug" not in hints:
        return None  # nothing to show: an empty directory stays as it is
    first, last = (turns[0], turns[-1]) if turns else (None, None)
    rebuilt: dict[str, Any] = {"slug": "unknown", "created_at": now_iso(), "updated_at": now_iso()}
    if first is not None and last is not None:
        rebuilt = {
            "slug": last.slug or ("" if last.agent_id else "unknown"),
            "agent_id": last.agent_id,
            "title": store._title_from(first.prompt),
            "conversation_id": next((t.conversation_id for t in reversed(turns) if t.conversation_id), None),
            "created_at": first.created_at,
            "updated_at": last.finished_at or last.created_at or now_iso(),
        }
    kept: dict[str, Any] = {
        name: hints[name]
        for name in ("slug", "agent_id", "title", "conversation_id", "archived", "created_at", "updated_at")
        if name in hints
    }
    counters = store._counters(turns, hints.get("next_seq", 0))
    conversation = Conversation.from_dict({**rebuilt, **kept, **counters, "id": conv_id})
    record = store._write_record(conversation)
    report.actions.append(f"rebuilt the record of conversation {conv_id} from its {counted(len(turns), 'turn')}")
    return record
