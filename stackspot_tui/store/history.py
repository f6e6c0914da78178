"""The conversation history, on TinyDB files laid out so a write costs the same however large it grows.

Layout under the root (see docs/history-layout.md):
    meta.json                              schema version
    conversations/<id>/conversation.json   the conversation's record
    conversations/<id>/<page>.json         its turns, 100 per page
    conversations/<id>/journal.jsonl       its latest changes, laid over the files above (journal.py)
    catalog/<generation>.sqlite            what listing and search need, derived from the files above
    trash/<id>                             a conversation being deleted (moved here first, then removed)
    lock                                   inter-process lock
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.table import Table

from .. import fastjson
from ..atomicfile import fsync_directory
from . import schema
from . import search as searching
from .catalog import Catalog, TurnText
from .errors import (
    AmbiguousConversationError,
    DeleteIncompleteError,
    HistoryCorruptError,
    HistoryError,
    HistoryLocationError,
    HistoryReadOnlyError,
    HistoryVersionError,
    HistoryWriteError,
    UnknownConversationError,
    UnknownTurnError,
)
from .journal import FOLD_BYTES, FOLD_LINES, JOURNAL_FILE, JournalState, append_line, encode_line, parse_journal
from .models import Conversation, Turn, now_iso
from .repair import RepairReport, migrate_v1, repair
from .schema import INDEX_TABLE, PAGE_SIZE, TURNS_TABLE, Record, Records, doc_id, is_id
from .storage import (
    CheckedStorage,
    FileCache,
    HistoryLock,
    make_private_dirs,
    read_bytes,
    read_json,
    write_json_atomic,
)

# 1: conversation records in 16 index shards, no catalog; 2: no journals (an older version
# would not read them, and its writes would be overridden by them)
SCHEMA_VERSION = 3
RECORD_FILE = "conversation.json"
HEX = "0123456789abcdef"
TITLE_LENGTH = 60
CATCH_UP_MARGIN = 60.0  # s: clock steps and timestamp granularity between a write and its directory's mtime
_CONVERSATION_FIELDS = {"title", "slug", "agent_id", "conversation_id", "archived", "updated_at"}

__all__ = ["INDEX_TABLE", "PAGE_SIZE", "SCHEMA_VERSION", "TURNS_TABLE", "HistoryStore", "SearchHit"]

Notice = Callable[[str], None]
_NO_JOURNAL = JournalState()


@dataclass(frozen=True)
class SearchHit:
    conversation: Conversation
    seq: int
    field: str  # "prompt" | "result"
    snippet: str
    score: float = 0.0  # higher first
    match: str = "words"  # "words": the query's words; "text": the query as a piece of text


def turn_text(turn: Turn) -> TurnText:
    """What the catalog indexes of a turn: its prompt and its answer."""
    return (turn.conversation, turn.seq, turn.created_at, turn.prompt, searching.result_text(turn.result))


def folded_target(record: Record) -> str:
    """What the conversation list's filter matches: title, quick command or agent, id."""
    agent = record.get("agent_id")
    target = f"agent {agent}" if agent else record.get("slug", "")
    return searching.fold(f"{record.get('title', '')}\n{target}\n{record['id']}")


def check_page_file(path: Path, data: Any) -> None:
    problem = schema.page_file_problem(path.parent.name, int(path.stem), data)
    if problem:
        raise HistoryCorruptError(path, problem)


def check_record_file(path: Path, data: Any) -> None:
    problem = schema.record_file_problem(path.parent.name, data)
    if problem:
        raise HistoryCorruptError(path, problem)


def _prepare_root(root: Path) -> None:
    """Create the history directory (0700), or say plainly why it cannot be one."""
    if root.exists() and not root.is_dir():
        raise HistoryLocationError(root, "it is a file, not a directory")
    try:
        make_private_dirs(root)
    except HistoryCorruptError as exc:
        raise HistoryLocationError(root, f"{exc.path} is a file, not a directory") from None
    try:
        st = root.stat()
        if hasattr(os, "getuid") and st.st_uid == os.getuid() and st.st_mode & 0o077:
            os.chmod(root, stat.S_IMODE(st.st_mode) & ~0o077)  # an older version's history: make it private
    except OSError:
        pass


@dataclass
class _Change:
    """What a write changed, for the catalog once the files hold it."""

    record: Record | None = None
    turns: list[TurnText] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    everything: bool = False  # the turns given are all of them


class HistoryStore:
    def __init__(
        self, root: Path, *, check: bool = True, lock_timeout: float = 10.0, notice: Notice | None = None
    ) -> None:
        """``check=False`` skips the schema check and start-up chores, for `repair`. ``notice`` hears
        about long chores (building the catalog of a large history) before they start."""
        self.root = Path(root)
        _prepare_root(self.root)
        self._lock = HistoryLock(self.root / "lock", timeout=lock_timeout)
        self.catalog = Catalog(self.root, folded_target)
        self._paths: dict[tuple[str, str], Path] = {}
        self._files = FileCache(48)  # the pages, records and journals a turn's writes read again and again
        self.notice: Notice = notice or (lambda text: None)
        if check:
            self._open()

    # -- paths -------------------------------------------------------------------------------

    @property
    def meta_path(self) -> Path:
        return self.root / "meta.json"

    @property
    def trash(self) -> Path:
        return self.root / "trash"

    def _path(self, conv_id: str, name: str) -> Path:
        # A turn's writes ask for the same few paths dozens of times: built once (pathlib is slow).
        key = (conv_id, name)
        path = self._paths.get(key)
        if path is None:
            if len(self._paths) > 512:
                self._paths.clear()
            path = self._paths[key] = (
                self.root / "conversations" / conv_id / name if name else self.root / "conversations" / conv_id
            )
        return path

    def conversation_dir(self, conv_id: str) -> Path:
        return self._path(conv_id, "")

    def record_path(self, conv_id: str) -> Path:
        return self._path(conv_id, RECORD_FILE)

    def page_path(self, conv_id: str, page: int) -> Path:
        return self._path(conv_id, f"{page:04d}.json")

    def journal_path(self, conv_id: str) -> Path:
        return self._path(conv_id, JOURNAL_FILE)

    # -- opening -----------------------------------------------------------------------------

    def _open(self) -> None:
        """Check the version; finish what a killed process left (a delete, a catalog change)."""
        with self._lock.hold(shared=True):
            version = self._check_meta()
            chores = version != SCHEMA_VERSION or bool(self._trash_entries()) or os.path.lexists(self.root / "index")
            if not chores:
                problem = self.catalog.check()
                chores = problem is not None or bool(self.catalog.dirty()) or self.catalog.booted_since()
        if not chores:
            return
        try:
            with self._lock.hold():
                self._chores()
        except HistoryReadOnlyError:
            if version is None or version >= 2:
                return  # a read-only history: read it as it is, writes will say why not
            raise HistoryReadOnlyError(
                self.root, OSError(13, "its files are in an older layout; open it once with write access to convert")
            ) from None

    def _chores(self) -> None:
        version = self._check_meta()
        if version is None:
            self._write_meta()
        elif version == 1:
            self.notice(f"converting the history at {self.root} to this version's layout…")
            migrate_v1(self)
        elif version < SCHEMA_VERSION:
            self._write_meta()  # version 2 is version 3 without journals
        if os.path.lexists(self.root / "index") and version is not None and version >= 2:
            shutil.rmtree(self.root / "index", ignore_errors=True)  # left by a conversion killed at its end
        self._finish_deletes()
        problem = self.catalog.check()
        if problem in ("missing", "its build was interrupted") or (problem or "").startswith("catalog version"):
            self.build_catalog()
        elif problem is not None:
            raise HistoryCorruptError(self.catalog.path or self.catalog.directory, problem)
        for conv_id in sorted(self.catalog.dirty()):
            self._resync(conv_id)
        if self.catalog.booted_since():
            self._catch_up()

    def _catch_up(self) -> None:
        """After a restart of the machine: copy into the catalog every conversation whose directory
        changed since the catalog's last commit (a power cut may have lost its last commits, marks
        included), and drop those whose files are gone. Once per boot: a stat of every conversation
        directory, and a resync of the few changed since."""
        written = self.catalog.written_at()
        if written is None:  # kept by an older version, which did not say when: nothing to go by
            self.catalog.note_boot()
            return
        cutoff = written - CATCH_UP_MARGIN
        on_disk = set(self._ids_on_disk())
        for conv_id in sorted(self.catalog.all_ids() - on_disk):
            self.catalog.apply(conv_id, None)
        for conv_id in sorted(on_disk):
            if self._changed_since(conv_id, cutoff):
                self._resync(conv_id)
        self.catalog.note_boot()

    def _changed_since(self, conv_id: str, cutoff: float) -> bool:
        # An append to a journal leaves its directory's mtime as it was: the journal's own counts.
        for path in (self.conversation_dir(conv_id), self.journal_path(conv_id)):
            try:
                if os.stat(path).st_mtime >= cutoff:
                    return True
            except OSError:
                continue
        return False

    def _check_meta(self) -> int | None:
        """The schema version in meta.json; None when it does not exist yet."""
        meta = read_json(self.meta_path)
        if meta is None:
            return None
        problem = schema.meta_problem(meta)
        if problem:
            raise HistoryCorruptError(self.meta_path, problem)
        if meta["schema_version"] > SCHEMA_VERSION:
            raise HistoryVersionError(self.meta_path, meta["schema_version"], SCHEMA_VERSION)
        return int(meta["schema_version"])

    def _write_meta(self) -> None:
        write_json_atomic(self.meta_path, {"schema_version": SCHEMA_VERSION, "app": "stackspot-tui"})

    # -- files -------------------------------------------------------------------------------

    @contextmanager
    def _table(self, path: Path) -> Iterator[Table]:
        """A page's TinyDB table, its file checked when TinyDB reads it: no write lands in a damaged file."""
        db = TinyDB(path, storage=CheckedStorage, validate=check_page_file, cache=self._files)
        try:
            yield db.table(TURNS_TABLE, cache_size=0)
        finally:
            db.close()

    def _load_page(self, conv_id: str, page: int) -> Records | None:
        """A page's checked records with the journal's newer turns laid over them; None: neither has any."""
        data = self._files.read(self.page_path(conv_id, page), check_page_file)
        newer = self._journal(conv_id).pages.get(page)
        if data is None:
            return None if newer is None else newer
        records: Records = data[TURNS_TABLE]
        return records if newer is None else {**records, **newer}

    def _page(self, conversation: Conversation, page: int) -> Records:
        """A page's checked records. A page below ``next_seq`` must exist: missing is damage, not empty."""
        records = self._load_page(conversation.id, page)
        if records is None:
            if page * PAGE_SIZE < conversation.next_seq:
                raise HistoryCorruptError(
                    self.page_path(conversation.id, page),
                    f"missing, though the conversation counts {conversation.next_seq} turn seqs",
                )
            return {}
        return records

    def _record(self, conv_id: str) -> Record | None:
        """A conversation's checked record (its journal's newest, else its file's); None when the
        conversation does not exist.

        A conversation directory with pages but no record is damage (`repair` rebuilds the record)."""
        path = self.record_path(conv_id)
        data = self._files.read(path, check_record_file)
        if data is None:
            directory = self.conversation_dir(conv_id)
            if any(directory.glob("[0-9][0-9][0-9][0-9].json")) or os.path.lexists(self.journal_path(conv_id)):
                raise HistoryCorruptError(path, "missing, though the conversation has pages of turns")
            return None
        newer = self._journal(conv_id).record
        record: Record = newer if newer is not None else data[INDEX_TABLE][str(doc_id(conv_id))]
        return record

    def _checked_record(self, conversation: Conversation) -> Record:
        record = conversation.to_dict()
        problem = schema.conversation_problem(str(doc_id(conversation.id)), record, conversation.id[0])
        if problem:
            raise ValueError(f"refusing to write a bad conversation record: {problem}")
        return record

    def _write_record(self, conversation: Conversation) -> Record:
        """The record written to its file: for a new conversation, or once its journal is folded."""
        record = self._checked_record(conversation)
        self._write_record_file(conversation.id, record)
        return record

    def _write_record_file(self, conv_id: str, record: Record, *, sync_dir: bool = True) -> None:
        write_json_atomic(self.record_path(conv_id), {INDEX_TABLE: {str(doc_id(conv_id)): record}}, sync_dir=sync_dir)

    # -- the journal (journal.py) ----------------------------------------------------------------

    def _journal(self, conv_id: str) -> JournalState:
        """The conversation's journal, checked; empty when it has none."""
        state = self._files.load(self.journal_path(conv_id), lambda path: self._read_journal(conv_id, path))
        return state if state is not None else _NO_JOURNAL

    def _read_journal(self, conv_id: str, path: Path) -> JournalState | None:
        raw = read_bytes(path)
        return None if raw is None else parse_journal(path, raw, self._journal_check(conv_id))

    @staticmethod
    def _journal_check(conv_id: str) -> Callable[[str, Any, str], str | None]:
        def check(what: str, record: Any, key: str) -> str | None:
            if what == "record":
                return schema.conversation_problem(str(doc_id(conv_id)), record, conv_id[0])
            return schema.turn_problem(key, record, conv_id, (int(key) - 1) // PAGE_SIZE)

        return check

    def _append(
        self, conv_id: str, *, record: Record | None = None, turn: Turn | None = None, durable: bool = True
    ) -> None:
        """One line in the journal: the new record and/or turn, in one atomic step. ``durable=False``
        (progress): not fsynced; a power cut may lose it (the previous state stays), a later
        durable append makes it durable. Past ``FOLD_BYTES`` the journal is folded into the files."""
        entry: dict[str, Any] = {}
        if record is not None:
            entry["record"] = record
        if turn is not None:
            turn_record = turn.to_dict()
            problem = schema.turn_problem(str(turn.seq + 1), turn_record, conv_id, turn.seq // PAGE_SIZE)
            if problem:
                raise ValueError(f"refusing to write a bad turn record: {problem}")
            entry["turn"] = turn_record
        path = self.journal_path(conv_id)
        state = self._journal(conv_id)
        line = encode_line(entry)
        self._files.forget(path)
        try:
            created = append_line(path, state, line, durable=durable)
            if created:
                fsync_directory(path.parent)
        except IsADirectoryError:
            raise HistoryCorruptError(path, "a directory where a file should be") from None
        except OSError as exc:
            raise HistoryWriteError(path, exc) from None
        state = state.with_entry(entry, len(line))
        self._files.put(path, state)
        # Past FOLD_BYTES, and past a few lines like this one: a long answer saved as it streams
        # (each line the whole answer so far) is not written twice on every save.
        if state.length > max(FOLD_BYTES, FOLD_LINES * len(line)):
            self.fold_journal(conv_id)

    def fold_journal(self, conv_id: str) -> None:
        """Write the journal's states into the page and record files, then empty it (kept, so the
        next append need not sync the directory to make it). Nothing the catalog holds changes.
        Killed on the way, the journal is still whole and lays the same states over the files."""
        state = self._journal(conv_id)
        path = self.journal_path(conv_id)
        if state:
            for page in sorted(state.pages):
                records = self._load_page(conv_id, page)  # the page file's turns and the journal's
                write_json_atomic(self.page_path(conv_id, page), {TURNS_TABLE: records}, sync_dir=False)
            if state.record is not None:
                self._write_record_file(conv_id, state.record, sync_dir=False)
            fsync_directory(self.conversation_dir(conv_id))  # every rename above is durable: the journal may be emptied
        if state or state.size:
            self._files.forget(path)
            try:
                os.truncate(path, 0)  # not fsynced: lost in a power cut, the same states are laid again
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise HistoryWriteError(path, exc) from None

    # -- the catalog ---------------------------------------------------------------------------

    @contextmanager
    def _changing(self, conv_id: str) -> Iterator[_Change]:
        """Files of one conversation change inside: the catalog marks it first and takes the change
        (clearing the mark) once every file holds it. Killed in between, the mark stays: readers
        take the conversation from its files, and the next writer copies it again."""
        change = _Change()
        self.catalog.mark(conv_id)
        try:
            yield change
        except BaseException:
            try:
                self._resync(conv_id)
            except HistoryError:
                pass  # the mark stays; readers use the files
            raise
        self.catalog.apply(
            conv_id, change.record, change.turns, change.removed, replace_all=change.everything
        ) if change.record is not None else self.catalog.apply(conv_id, None)

    def _resync(self, conv_id: str) -> None:
        """Copy one conversation from its files into the catalog (clearing its mark)."""
        record = self._record(conv_id) if not os.path.lexists(self.trash / conv_id) else None
        if record is None:
            self.catalog.apply(conv_id, None)
            return
        turns = [turn_text(t) for t in self._turns_on_disk(conv_id) if t.seq < record["next_seq"]]
        self.catalog.apply(conv_id, record, turns, replace_all=True)

    def build_catalog(self) -> int:
        """Build the catalog anew from every conversation's files; the number of turns indexed."""
        with self._lock.hold():
            ids = self._ids_on_disk()
            if len(ids) > 200:
                self.notice(f"indexing {len(ids):,} conversations for search (once)…")
            return self.catalog.build(self._everything(ids))

    @staticmethod
    def holds_conversations(root: Path, prefix: str = "") -> bool:
        """Whether the history at ``root`` holds a conversation (whose id starts with ``prefix``),
        without opening it: nothing is made or locked there (it may not be the history this
        process works on)."""
        try:
            with os.scandir(Path(root) / "conversations") as entries:
                return any(is_id(entry.name) and entry.name.startswith(prefix) for entry in entries)
        except OSError:
            return False

    def _ids_on_disk(self) -> list[str]:
        try:
            names = os.listdir(self.root / "conversations")
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            raise HistoryCorruptError(self.root / "conversations", "a file where a directory should be") from None
        return sorted(name for name in names if is_id(name))

    def _check_conversations_dir(self) -> None:
        directory = self.root / "conversations"
        if os.path.lexists(directory) and not directory.is_dir():
            raise HistoryCorruptError(directory, "a file where a directory should be")

    def _everything(self, ids: Iterable[str]) -> Iterator[tuple[Record, Iterator[TurnText]]]:
        for conv_id in ids:
            record = self._record(conv_id)
            if record is not None:
                yield record, (turn_text(t) for t in self._turns_on_disk(conv_id) if t.seq < record["next_seq"])

    def _records(self, texts: Iterable[str]) -> list[Record]:
        """Records as the catalog holds them, checked like the files they copy."""
        records = []
        for text in texts:
            try:
                record = fastjson.loads(text)
                conv_id = record["id"]
                problem = schema.conversation_problem(str(doc_id(conv_id)), record, conv_id[0])
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                problem = f"a conversation record that is not one ({exc})"
            if problem:
                raise HistoryCorruptError(
                    self.catalog.path or self.catalog.directory, f"the search catalog holds {problem}"
                )
            records.append(record)
        return records

    def _dirty_records(self, dirty: set[str]) -> dict[str, Record | None]:
        return {conv_id: self._record(conv_id) for conv_id in sorted(dirty)}

    # -- conversations ----------------------------------------------------------------------

    def _id_is_free(self, conv_id: str) -> bool:
        # An id whose files are still around (a delete that could not finish) is never reused.
        return not os.path.lexists(self.conversation_dir(conv_id)) and not os.path.lexists(self.trash / conv_id)

    def _new_id(self) -> str:
        while True:
            conv_id = secrets.token_hex(4)
            if self._id_is_free(conv_id):
                return conv_id

    def create_conversation(self, slug: str, title: str = "", *, agent_id: str | None = None) -> Conversation:
        with self._lock.hold():
            conversation = Conversation(id=self._new_id(), slug=slug, title=title, agent_id=agent_id)
            with self._changing(conversation.id) as change:
                change.record = self._write_record(conversation)
            return conversation

    def get_conversation(self, conv_id: str) -> Conversation:
        return self._conversation(conv_id)[0]

    def _conversation(self, conv_id: str) -> tuple[Conversation, Record]:
        """The conversation and the checked record it was read from."""
        if not is_id(conv_id):
            raise UnknownConversationError(conv_id)
        with self._lock.hold(shared=True):
            record = self._record(conv_id)
        if record is None:
            raise UnknownConversationError(conv_id)
        return Conversation.from_dict(record), record

    def resolve_id(self, text: str) -> str:
        """An exact id, or a unique prefix of at least 3 characters."""
        text = text.strip().lower()
        if is_id(text):
            self.get_conversation(text)
            return text
        if len(text) < 3 or not all(c in HEX for c in text):
            raise UnknownConversationError(text)
        with self._lock.hold(shared=True):
            dirty = self.catalog.dirty()
            matches = {conv_id for conv_id in self.catalog.ids_from(text, 6) if conv_id not in dirty}
            matches |= {c for c, record in self._dirty_records(dirty).items() if record and c.startswith(text)}
        if not matches:
            raise UnknownConversationError(text)
        if len(matches) > 1:
            raise AmbiguousConversationError(text, sorted(matches))
        return matches.pop()

    def list_conversations(
        self, *, archived: bool | None = False, limit: int | None = None, offset: int = 0, matching: str = ""
    ) -> list[Conversation]:
        """Newest activity first. ``archived``: False = active only, True = archived only, None = all.

        ``matching``: only those whose title, quick command, agent or id holds this text."""
        folded = searching.fold(matching.strip())
        with self._lock.hold(shared=True):
            dirty = self.catalog.dirty()
            wanted = None if limit is None else offset + limit + len(dirty)
            texts = self.catalog.conversations(archived=archived, limit=wanted, matching=folded)
            records = [r for r in self._records(texts) if r["id"] not in dirty]
            for record in self._dirty_records(dirty).values():
                if (
                    record is not None
                    and (archived is None or record.get("archived", False) == archived)
                    and folded in folded_target(record)
                ):
                    records.append(record)
        records.sort(key=lambda r: (r["updated_at"], r["created_at"]), reverse=True)
        end = None if limit is None else offset + limit
        return [Conversation.from_dict(r) for r in records[offset:end]]

    def count_conversations(self, *, archived: bool | None = False, matching: str = "") -> int:
        with self._lock.hold(shared=True):
            return self.catalog.count(archived=archived, matching=searching.fold(matching.strip()))

    def latest_conversation(self, slug: str | None = None, *, agent_id: str | None = None) -> Conversation | None:
        """The latest active conversation, of this quick command or this agent when one is given."""
        offset, page = 0, 200
        while True:
            conversations = self.list_conversations(limit=page, offset=offset)
            for conversation in conversations:
                if agent_id is not None:
                    if conversation.agent_id == agent_id:
                        return conversation
                elif slug is None or (conversation.slug == slug and not conversation.agent_id):
                    return conversation
            if len(conversations) < page:
                return None
            offset += page

    def update_conversation(self, conv_id: str, **fields: Any) -> Conversation:
        """Change title, slug, conversation_id or archived; ``updated_at`` moves only with turns."""
        unknown = set(fields) - _CONVERSATION_FIELDS
        if unknown:
            raise ValueError(f"not conversation fields: {sorted(unknown)}")
        with self._lock.hold(), self._changing(conv_id) as change:
            conversation = self._update_record(conv_id, fields, change)
            return conversation

    def _update_record(self, conv_id: str, fields: dict[str, Any], change: _Change) -> Conversation:
        conversation = self.get_conversation(conv_id)
        for name, value in fields.items():
            setattr(conversation, name, value)
        change.record = self._checked_record(conversation)
        self._append(conv_id, record=change.record)
        return conversation

    def delete_conversation(self, conv_id: str) -> None:
        """Crash-safe: the conversation's directory (its record and its turns) moves to trash/ in
        one atomic rename, then the catalog forgets it, then trash/<id> is removed. Killed at any
        point, it is never revived: the next start finishes the delete. A failed removal is reported."""
        with self._lock.hold():
            self.get_conversation(conv_id)
            directory = self.conversation_dir(conv_id)
            with self._changing(conv_id):
                make_private_dirs(self.trash)
                try:
                    os.rename(directory, self.trash / conv_id)
                except OSError as exc:
                    raise HistoryWriteError(directory, exc) from None
                fsync_directory(directory.parent)
                fsync_directory(self.trash)
            self._remove_trashed(conv_id)

    def _trash_entries(self) -> list[Path]:
        try:
            return sorted(self.trash.iterdir())
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _remove_trashed(self, conv_id: str) -> None:
        trashed = self.trash / conv_id
        try:
            if trashed.is_dir() and not trashed.is_symlink():
                shutil.rmtree(trashed)
            else:
                trashed.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise DeleteIncompleteError(conv_id, trashed, exc) from None

    def _finish_deletes(self) -> tuple[list[str], list[DeleteIncompleteError]]:
        """Finish deletes a killed process left half done: each trash/<id> was being deleted."""
        done, failed = [], []
        for entry in self._trash_entries():
            if not is_id(entry.name):
                continue
            if self.catalog.check() is None:
                self.catalog.apply(entry.name, None)
            try:
                self._remove_trashed(entry.name)
            except DeleteIncompleteError as exc:
                failed.append(exc)
                continue
            done.append(entry.name)
        return done, failed

    def import_conversation(self, conversation: Conversation, turns: list[Turn]) -> Conversation:
        """Store an exported conversation; it gets a new id if its id is taken."""
        with self._lock.hold():
            conv_id = (
                conversation.id if is_id(conversation.id) and self._id_is_free(conversation.id) else self._new_id()
            )
            pages: dict[int, Records] = {}
            for turn in turns:
                turn.conversation = conv_id
                key, record = str(turn.seq + 1), turn.to_dict()
                problem = schema.turn_problem(key, record, conv_id, turn.seq // PAGE_SIZE)
                if problem or key in pages.get(turn.seq // PAGE_SIZE, {}):
                    raise ValueError(f"refusing to import a bad turn: {problem or 'seq used twice'}")
                pages.setdefault(turn.seq // PAGE_SIZE, {})[key] = record
            imported = Conversation.from_dict({**conversation.to_dict(), "id": conv_id})
            imported.turn_count = len(turns)
            imported.next_seq = max([imported.next_seq] + [t.seq + 1 for t in turns])
            imported.pending = sorted(t.seq for t in turns if t.needs_reattach)
            with self._changing(conv_id) as change:
                for page in range(-(-imported.next_seq // PAGE_SIZE)):  # every page below next_seq exists
                    write_json_atomic(self.page_path(conv_id, page), {TURNS_TABLE: pages.get(page, {})})
                change.record = self._write_record(imported)  # last: until it is there, the import is not
                change.turns, change.everything = [turn_text(t) for t in turns], True
            return imported

    # -- turns -------------------------------------------------------------------------------

    def add_turn(self, conv_id: str, prompt: str, input_data: Any, *, slug: str | None = None) -> Turn:
        with self._lock.hold():
            conversation = self.get_conversation(conv_id)
            if str(conversation.next_seq + 1) in self._page(conversation, conversation.next_seq // PAGE_SIZE):
                conversation = self.repair_index(conv_id)  # a crash left the page ahead of the record
            seq = conversation.next_seq
            turn = Turn(
                conversation=conv_id,
                seq=seq,
                prompt=prompt,
                input_data=input_data,
                slug=slug or conversation.slug or None,
                agent_id=conversation.agent_id,
            )
            with self._changing(conv_id) as change:
                conversation.next_seq, conversation.turn_count = seq + 1, conversation.turn_count + 1
                conversation.updated_at = turn.created_at
                if not conversation.title:
                    conversation.title = self._title_from(prompt)
                change.record = self._checked_record(conversation)
                self._append(conv_id, record=change.record, turn=turn)  # the turn and its count, at once
                change.turns.append(turn_text(turn))
            return turn

    @staticmethod
    def _title_from(prompt: str) -> str:
        first = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
        return first if len(first) <= TITLE_LENGTH else first[: TITLE_LENGTH - 1] + "…"

    def get_turn(self, conv_id: str, seq: int) -> Turn:
        with self._lock.hold(shared=True):
            return self._turn_of(self.get_conversation(conv_id), seq)

    def _turn_of(self, conversation: Conversation, seq: int) -> Turn:
        """Turn ``seq`` of a conversation read under the lock held now."""
        record = None
        if 0 <= seq < conversation.next_seq:
            record = self._page(conversation, seq // PAGE_SIZE).get(str(seq + 1))
        if record is None:
            raise UnknownTurnError(conversation.id, seq)
        return Turn.from_dict(record)

    def update_turn(self, conv_id: str, seq: int, **fields: Any) -> Turn:
        unknown = (set(fields) - set(Turn.__dataclass_fields__)) | (set(fields) & {"conversation", "seq"})
        if unknown:
            raise ValueError(f"cannot update turn fields: {sorted(unknown)}")
        with self._lock.hold():
            conversation, record = self._conversation(conv_id)  # one read of the record per call
            before = self._turn_of(conversation, seq)
            turn = Turn.from_dict({**before.to_dict(), **{k: v for k, v in fields.items() if k != "steps"}})
            if "steps" in fields:
                turn.steps = list(fields["steps"])
            was_pending, pending = seq in conversation.pending, turn.needs_reattach
            ended = turn.is_final and not before.is_final
            text_changed = turn.prompt != before.prompt or turn.result != before.result
            if pending == was_pending and not ended and not text_changed:
                # Progress: nothing the catalog holds changes, and it need not survive a power cut
                # (the previous snapshot does): not fsynced, made durable by the turn's next write.
                self._append(conv_id, turn=turn, durable=False)
                return turn
            with self._changing(conv_id) as change:
                change.record = record
                if pending != was_pending or ended:
                    conversation.pending = sorted(
                        {*conversation.pending, seq} if pending else set(conversation.pending) - {seq}
                    )
                    conversation.updated_at = now_iso()
                    change.record = self._checked_record(conversation)
                self._append(conv_id, record=change.record if change.record is not record else None, turn=turn)
                if text_changed:
                    change.turns.append(turn_text(turn))
            return turn

    def delete_turn(self, conv_id: str, seq: int) -> None:
        with self._lock.hold():
            conversation = self.get_conversation(conv_id)
            self.get_turn(conv_id, seq)
            self.fold_journal(conv_id)  # a removal is no state to journal: the files hold everything first
            with self._changing(conv_id) as change:
                with self._table(self.page_path(conv_id, seq // PAGE_SIZE)) as table:
                    table.remove(doc_ids=[seq + 1])
                conversation.turn_count = max(0, conversation.turn_count - 1)
                conversation.pending = [s for s in conversation.pending if s != seq]
                change.record = self._write_record(conversation)
                change.removed.append(seq)

    def turns(self, conv_id: str, *, start: int = 0, limit: int | None = None) -> list[Turn]:
        """Turns in order, from seq ``start``; reads only the pages that hold them."""
        return list(self.iter_turns(conv_id, start=start, limit=limit))

    def iter_turns(
        self, conversation: str | Conversation, *, start: int = 0, limit: int | None = None
    ) -> Iterator[Turn]:
        """Turns in order, a page at a time: a long conversation is never all in memory at once.

        ``conversation``: its id, or the conversation as the caller already read it (an export's
        heading, `list_conversations` for every one): its record is then not read again, and the
        turns are those it counted. Each page is read under the shared lock; a write between two
        pages may be seen or not."""
        start = max(0, start)
        if isinstance(conversation, str):
            conversation = self.get_conversation(conversation)
        end = conversation.next_seq if limit is None else min(conversation.next_seq, start + limit)
        for page in range(start // PAGE_SIZE, -(-end // PAGE_SIZE)):
            with self._lock.hold(shared=True):
                try:
                    records = self._page(conversation, page)
                except HistoryCorruptError:
                    if not self.record_path(conversation.id).exists():
                        raise UnknownConversationError(conversation.id) from None  # deleted since it was read
                    raise
            for key in sorted(records, key=int):
                if start <= int(key) - 1 < end:
                    yield Turn.from_dict(records[key])

    def pending_turns(self) -> list[tuple[Conversation, Turn]]:
        """Turns created on StackSpot but never seen finished, oldest first."""
        found = []
        with self._lock.hold(shared=True):
            dirty = self.catalog.dirty()
            records = [
                r
                for r in self._records(self.catalog.conversations(archived=None, pending=True))
                if r["id"] not in dirty
            ]
            records += [r for r in self._dirty_records(dirty).values() if r is not None and r.get("pending")]
            for record in records:
                conversation = Conversation.from_dict(record)
                for seq in conversation.pending:
                    try:
                        turn = self.get_turn(conversation.id, seq)
                    except UnknownTurnError:
                        continue
                    if turn.needs_reattach:
                        found.append((conversation, turn))
        found.sort(key=lambda pair: pair[1].created_at)
        return found

    def repair_index(self, conv_id: str) -> Conversation:
        """Recompute a conversation's counters from its pages (the pages are the truth)."""
        with self._lock.hold(), self._changing(conv_id) as change:
            self.fold_journal(conv_id)
            conversation = self.get_conversation(conv_id)
            turns = self._turns_on_disk(conv_id)
            for name, value in self._counters(turns, conversation.next_seq).items():
                setattr(conversation, name, value)
            change.record = self._write_record(conversation)
            change.turns, change.everything = [turn_text(t) for t in turns], True
            return conversation

    def _turns_on_disk(self, conv_id: str) -> list[Turn]:
        """Every turn in the page files of a conversation, whatever its record says."""
        pages = {int(path.stem) for path in self.conversation_dir(conv_id).glob("[0-9][0-9][0-9][0-9].json")}
        turns = []
        for page in sorted(pages | set(self._journal(conv_id).pages)):
            turns += [Turn.from_dict(r) for r in (self._load_page(conv_id, page) or {}).values()]
        turns.sort(key=lambda t: t.seq)
        return turns

    @staticmethod
    def _counters(turns: list[Turn], next_seq: int = 0) -> dict[str, Any]:
        return {
            "turn_count": len(turns),
            "next_seq": max([next_seq] + [t.seq + 1 for t in turns]),  # seqs are never reused
            "pending": sorted(t.seq for t in turns if t.needs_reattach),
        }

    # -- search ------------------------------------------------------------------------------

    def search(self, text: str, *, limit: int = 50, prefix_last: bool = False) -> list[SearchHit]:
        """Turns whose prompt or answer holds the query's words, best and newest first (see search.py);
        the query as plain text when no turn holds its words. ``prefix_last``: the last word is
        still being typed. Only turns that exist are returned: each hit's conversation is checked."""
        if not text.strip():
            return []
        with self._lock.hold(shared=True):
            dirty = self.catalog.dirty()
            found = searching.search(
                self.catalog, text, limit=limit, dirty=dirty, scan_dirty=self._scan, prefix_last=prefix_last
            )
            ids = sorted({f.conversation for f in found})
            records = {r["id"]: r for r in self._records(self.catalog.conversations(archived=None, ids=ids))}
            records.update({c: r for c, r in self._dirty_records(dirty & set(ids)).items() if r is not None})
            exists = {conv_id for conv_id in records if os.path.exists(self.record_path(conv_id))}
            if len(exists) < len(records):
                self._check_conversations_dir()  # found, but gone: damage, not "no match"
        conversations = {conv_id: Conversation.from_dict(records[conv_id]) for conv_id in exists}
        return [
            SearchHit(conversations[f.conversation], f.seq, f.field, f.snippet, f.score, f.match)
            for f in found
            if f.conversation in conversations
        ]

    def _scan(self, ids: set[str]) -> Iterator[searching.Candidate]:
        """Turns of conversations the catalog may not hold rightly (a write was cut short): from their files."""
        from .catalog import turn_key

        for conv_id in sorted(ids):
            record = self._record(conv_id)
            if record is None:
                continue
            for turn in self._turns_on_disk(conv_id):
                if turn.seq >= record["next_seq"]:
                    continue  # a page a killed append left ahead of the record: not a turn yet
                _, seq, created_at, prompt, answer = turn_text(turn)
                yield turn_key(created_at, seq), conv_id, seq, prompt, answer

    # -- recovery ----------------------------------------------------------------------------

    def repair(self) -> RepairReport:
        """Set damaged files aside and rebuild what the good ones hold (see repair.py)."""
        return repair(self)

    @staticmethod
    def quarantine(path: Path) -> Path:
        """Rename a damaged file or directory aside (never over another) and return its new name."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        counter = 1
        while os.path.lexists(target):
            target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
            counter += 1
        os.rename(path, target)
        fsync_directory(path.parent)
        return target
