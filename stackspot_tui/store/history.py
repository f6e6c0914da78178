"""The conversation history, on TinyDB files laid out so a write costs little however large it grows.

Layout under the root (see docs/history-layout.md):
    meta.json                          schema version
    index/<0-f>.json                   conversation records, sharded by the id's first hex digit
    conversations/<id>/<page>.json     turns, 100 per page
    trash/<id>                         a conversation being deleted (moved here first, then removed)
    lock                               inter-process lock
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.table import Document, Table

from ..atomicfile import fsync_directory
from . import schema
from .errors import (
    AmbiguousConversationError,
    DeleteIncompleteError,
    HistoryCorruptError,
    HistoryError,
    HistoryLocationError,
    HistoryVersionError,
    HistoryWriteError,
    UnknownConversationError,
    UnknownTurnError,
)
from .models import Conversation, Turn, now_iso
from .repair import RepairReport, repair
from .schema import INDEX_TABLE, PAGE_SIZE, TURNS_TABLE, Records, doc_id, is_id
from .storage import (
    CheckedStorage,
    HistoryLock,
    make_private_dirs,
    parse_json,
    read_bytes,
    read_json,
    write_json_atomic,
)

SCHEMA_VERSION = 1
SHARDS = "0123456789abcdef"
TITLE_LENGTH = 60
_CONVERSATION_FIELDS = {"title", "slug", "agent_id", "conversation_id", "archived", "updated_at"}
_JSON_ESCAPED = set('"\\') | {chr(c) for c in range(32)}

__all__ = ["INDEX_TABLE", "PAGE_SIZE", "SCHEMA_VERSION", "TURNS_TABLE", "HistoryStore", "SearchHit"]


@dataclass(frozen=True)
class SearchHit:
    conversation: Conversation
    seq: int
    field: str  # "prompt" | "result"
    snippet: str


def _snippet(text: str, at: int, length: int, width: int = 80) -> str:
    start = max(0, at - (width - length) // 2)
    piece = " ".join(text[start : start + width].split())
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


def _result_text(result: Any) -> str:
    if result is None:
        return ""
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)


def check_index_file(path: Path, data: Any) -> None:
    problem = schema.index_file_problem(path.stem, data)
    if problem:
        raise HistoryCorruptError(path, problem)


def check_page_file(path: Path, data: Any) -> None:
    problem = schema.page_file_problem(path.parent.name, int(path.stem), data)
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


class HistoryStore:
    def __init__(self, root: Path, *, check: bool = True, lock_timeout: float = 10.0) -> None:
        """``check=False`` skips the schema check and start-up chores, for `repair`."""
        self.root = Path(root)
        _prepare_root(self.root)
        self._lock = HistoryLock(self.root / "lock", timeout=lock_timeout)
        self._index_cache: dict[Path, tuple[tuple[int, int, int] | None, Records]] = {}
        if check:
            self._open()

    # -- paths -------------------------------------------------------------------------------

    @property
    def meta_path(self) -> Path:
        return self.root / "meta.json"

    @property
    def trash(self) -> Path:
        return self.root / "trash"

    def shard_path(self, shard: str) -> Path:
        return self.root / "index" / f"{shard}.json"

    def _shard(self, conv_id: str) -> Path:
        return self.shard_path(conv_id[0])

    def conversation_dir(self, conv_id: str) -> Path:
        return self.root / "conversations" / conv_id

    def page_path(self, conv_id: str, page: int) -> Path:
        return self.conversation_dir(conv_id) / f"{page:04d}.json"

    # -- files -------------------------------------------------------------------------------

    def _open(self) -> None:
        with self._lock.hold(shared=True):
            meta_missing = self._check_meta()
            interrupted = self._trash_entries()
        if not (meta_missing or interrupted):
            return
        try:
            with self._lock.hold():
                if self._check_meta():
                    self._write_meta()
                self._finish_deletes()
        except HistoryError:
            if not meta_missing:
                raise
            # A read-only history without meta.json: reads still work, writes will say why not.

    def _check_meta(self) -> bool:
        """Check meta.json; True when it does not exist yet."""
        meta = read_json(self.meta_path)
        if meta is None:
            return True
        problem = schema.meta_problem(meta)
        if problem:
            raise HistoryCorruptError(self.meta_path, problem)
        if meta["schema_version"] > SCHEMA_VERSION:
            raise HistoryVersionError(self.meta_path, meta["schema_version"], SCHEMA_VERSION)
        return False

    def _write_meta(self) -> None:
        write_json_atomic(self.meta_path, {"schema_version": SCHEMA_VERSION, "app": "stackspot-tui"})

    @contextmanager
    def _table(self, path: Path, name: str) -> Iterator[Table]:
        """A TinyDB table whose file is checked when TinyDB reads it, so no write lands in a damaged file."""
        validate = check_index_file if name == INDEX_TABLE else check_page_file
        db = TinyDB(path, storage=CheckedStorage, validate=validate)
        try:
            yield db.table(name, cache_size=0)
        finally:
            db.close()

    def _load(self, path: Path, table: str) -> Records | None:
        """The checked records of a file, or None when it does not exist.

        Index shards are kept parsed while their file is unchanged: every write replaces the
        file (new inode), so (inode, mtime, size) tells a stale copy from a fresh one, across
        processes too. Callers must not mutate the returned records.
        """
        key: tuple[int, int, int] | None = None
        if table == INDEX_TABLE:
            try:
                st = path.stat()
                key = (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                return None
            except OSError:
                key = None  # read_json below says what is wrong
            cached = self._index_cache.get(path)
            if key is not None and cached is not None and cached[0] == key:
                return cached[1]
        data = read_json(path)
        if data is None:
            return None
        (check_index_file if table == INDEX_TABLE else check_page_file)(path, data)
        records: Records = data[table]
        if key is not None:
            self._index_cache[path] = (key, records)
        return records

    def _index(self, conv_id_or_shard: str) -> Records:
        return self._load(self.shard_path(conv_id_or_shard[0]), INDEX_TABLE) or {}

    def _page(self, conversation: Conversation, page: int) -> Records:
        """A page's checked records. A page below ``next_seq`` must exist: missing is damage, not empty."""
        path = self.page_path(conversation.id, page)
        records = self._load(path, TURNS_TABLE)
        if records is None:
            if page * PAGE_SIZE < conversation.next_seq:
                raise HistoryCorruptError(path, f"missing, though the index counts {conversation.next_seq} turn seqs")
            return {}
        return records

    # -- conversations ----------------------------------------------------------------------

    def _id_is_free(self, conv_id: str) -> bool:
        # An id whose files are still around (a delete that could not finish) is never reused.
        return (
            str(doc_id(conv_id)) not in self._index(conv_id)
            and not os.path.lexists(self.conversation_dir(conv_id))
            and not os.path.lexists(self.trash / conv_id)
        )

    def _new_id(self) -> str:
        while True:
            conv_id = secrets.token_hex(4)
            if self._id_is_free(conv_id):
                return conv_id

    def create_conversation(self, slug: str, title: str = "", *, agent_id: str | None = None) -> Conversation:
        with self._lock.hold():
            conversation = Conversation(id=self._new_id(), slug=slug, title=title, agent_id=agent_id)
            self._write_conversation(conversation, insert=True)
            return conversation

    def _write_conversation(self, conversation: Conversation, *, insert: bool = False) -> None:
        record = conversation.to_dict()
        key = str(doc_id(conversation.id))
        problem = schema.conversation_problem(key, record, conversation.id[0])
        if problem:
            raise ValueError(f"refusing to write a bad conversation record: {problem}")
        with self._table(self._shard(conversation.id), INDEX_TABLE) as table:
            document = Document(record, doc_id=int(key))
            table.insert(document) if insert else table.upsert(document)

    def get_conversation(self, conv_id: str) -> Conversation:
        if not is_id(conv_id):
            raise UnknownConversationError(conv_id)
        with self._lock.hold(shared=True):
            record = self._index(conv_id).get(str(doc_id(conv_id)))
        if record is None:
            raise UnknownConversationError(conv_id)
        return Conversation.from_dict(record)

    def resolve_id(self, text: str) -> str:
        """An exact id, or a unique prefix of at least 3 characters."""
        text = text.strip().lower()
        if is_id(text):
            self.get_conversation(text)
            return text
        if len(text) < 3 or not all(c in SHARDS for c in text):
            raise UnknownConversationError(text)
        with self._lock.hold(shared=True):
            records = self._index(text)
        matches = sorted(str(r["id"]) for r in records.values() if str(r["id"]).startswith(text))
        if not matches:
            raise UnknownConversationError(text)
        if len(matches) > 1:
            raise AmbiguousConversationError(text, matches)
        return matches[0]

    def list_conversations(self, *, archived: bool | None = False, limit: int | None = None) -> list[Conversation]:
        """Newest activity first. ``archived``: False = active only, True = archived only, None = all."""
        conversations = []
        with self._lock.hold(shared=True):
            for shard in SHARDS:
                for record in self._index(shard).values():
                    conversation = Conversation.from_dict(record)
                    if archived is None or conversation.archived == archived:
                        conversations.append(conversation)
        conversations.sort(key=lambda c: (c.updated_at, c.created_at), reverse=True)
        return conversations[:limit] if limit is not None else conversations

    def latest_conversation(self, slug: str | None = None, *, agent_id: str | None = None) -> Conversation | None:
        """The latest active conversation, of this quick command or this agent when one is given."""
        for conversation in self.list_conversations():
            if agent_id is not None:
                if conversation.agent_id == agent_id:
                    return conversation
            elif slug is None or (conversation.slug == slug and not conversation.agent_id):
                return conversation
        return None

    def update_conversation(self, conv_id: str, **fields: Any) -> Conversation:
        """Change title, slug, conversation_id or archived; ``updated_at`` moves only with turns."""
        unknown = set(fields) - _CONVERSATION_FIELDS
        if unknown:
            raise ValueError(f"not conversation fields: {sorted(unknown)}")
        return self._update_index(conv_id, fields)

    def _update_index(self, conv_id: str, fields: dict[str, Any]) -> Conversation:
        with self._lock.hold():
            conversation = self.get_conversation(conv_id)
            for name, value in fields.items():
                setattr(conversation, name, value)
            self._write_conversation(conversation)
            return conversation

    def delete_conversation(self, conv_id: str) -> None:
        """Crash-safe: the turns move to trash/ (one atomic rename), then the index record goes,
        then trash/<id> is removed. Killed at any point, the conversation is never revived:
        the next start finishes the delete. A removal that fails is reported."""
        with self._lock.hold():
            self.get_conversation(conv_id)
            directory = self.conversation_dir(conv_id)
            trashed = self.trash / conv_id
            moved = os.path.lexists(directory)
            if moved:
                make_private_dirs(self.trash)
                try:
                    os.rename(directory, trashed)
                except OSError as exc:
                    raise HistoryWriteError(directory, exc) from None
                fsync_directory(directory.parent)
                fsync_directory(self.trash)
            with self._table(self._shard(conv_id), INDEX_TABLE) as table:
                table.remove(doc_ids=[doc_id(conv_id)])
            if moved:
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
            if str(doc_id(entry.name)) in self._index(entry.name):
                with self._table(self._shard(entry.name), INDEX_TABLE) as table:
                    table.remove(doc_ids=[doc_id(entry.name)])
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
            for page in range(-(-imported.next_seq // PAGE_SIZE)):  # every page below next_seq exists
                write_json_atomic(self.page_path(conv_id, page), {TURNS_TABLE: pages.get(page, {})})
            self._write_conversation(imported, insert=True)
            return imported

    # -- turns -------------------------------------------------------------------------------

    def add_turn(self, conv_id: str, prompt: str, input_data: Any, *, slug: str | None = None) -> Turn:
        with self._lock.hold():
            conversation = self.get_conversation(conv_id)
            if str(conversation.next_seq + 1) in self._page(conversation, conversation.next_seq // PAGE_SIZE):
                conversation = self.repair_index(conv_id)  # a crash left the page ahead of the index
            seq = conversation.next_seq
            turn = Turn(
                conversation=conv_id,
                seq=seq,
                prompt=prompt,
                input_data=input_data,
                slug=slug or conversation.slug or None,
                agent_id=conversation.agent_id,
            )
            self._write_turn(turn, insert=True)
            fields: dict[str, Any] = {
                "next_seq": seq + 1,
                "turn_count": conversation.turn_count + 1,
                "updated_at": turn.created_at,
            }
            if not conversation.title:
                fields["title"] = self._title_from(prompt)
            self._update_index(conv_id, fields)
            return turn

    def _write_turn(self, turn: Turn, *, insert: bool = False) -> None:
        record = turn.to_dict()
        key = str(turn.seq + 1)
        problem = schema.turn_problem(key, record, turn.conversation, turn.seq // PAGE_SIZE)
        if problem:
            raise ValueError(f"refusing to write a bad turn record: {problem}")
        with self._table(self.page_path(turn.conversation, turn.seq // PAGE_SIZE), TURNS_TABLE) as table:
            document = Document(record, doc_id=turn.seq + 1)
            table.insert(document) if insert else table.upsert(document)

    @staticmethod
    def _title_from(prompt: str) -> str:
        first = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
        return first if len(first) <= TITLE_LENGTH else first[: TITLE_LENGTH - 1] + "…"

    def get_turn(self, conv_id: str, seq: int) -> Turn:
        with self._lock.hold(shared=True):
            conversation = self.get_conversation(conv_id)
            if not 0 <= seq < conversation.next_seq:
                raise UnknownTurnError(conv_id, seq)
            record = self._page(conversation, seq // PAGE_SIZE).get(str(seq + 1))
        if record is None:
            raise UnknownTurnError(conv_id, seq)
        return Turn.from_dict(record)

    def update_turn(self, conv_id: str, seq: int, **fields: Any) -> Turn:
        unknown = (set(fields) - set(Turn.__dataclass_fields__)) | (set(fields) & {"conversation", "seq"})
        if unknown:
            raise ValueError(f"cannot update turn fields: {sorted(unknown)}")
        with self._lock.hold():
            conversation = self.get_conversation(conv_id)
            before = self.get_turn(conv_id, seq)
            turn = Turn.from_dict({**before.to_dict(), **{k: v for k, v in fields.items() if k != "steps"}})
            if "steps" in fields:
                turn.steps = list(fields["steps"])
            was_pending, pending = seq in conversation.pending, turn.needs_reattach
            if pending and not was_pending:
                # Index first: a crash after this still re-attaches (readers check the turn itself).
                self._update_index(conv_id, {"pending": sorted(conversation.pending + [seq]), "updated_at": now_iso()})
            self._write_turn(turn)
            if was_pending and not pending:
                self._update_index(
                    conv_id, {"pending": [s for s in conversation.pending if s != seq], "updated_at": now_iso()}
                )
            elif turn.is_final and not before.is_final:
                self._update_index(conv_id, {"updated_at": now_iso()})
            return turn

    def delete_turn(self, conv_id: str, seq: int) -> None:
        with self._lock.hold():
            conversation = self.get_conversation(conv_id)
            self.get_turn(conv_id, seq)
            with self._table(self.page_path(conv_id, seq // PAGE_SIZE), TURNS_TABLE) as table:
                table.remove(doc_ids=[seq + 1])
            self._update_index(
                conv_id,
                {
                    "turn_count": max(0, conversation.turn_count - 1),
                    "pending": [s for s in conversation.pending if s != seq],
                },
            )

    def turns(self, conv_id: str, *, start: int = 0, limit: int | None = None) -> list[Turn]:
        """Turns in order, from seq ``start``; reads only the pages that hold them."""
        start = max(0, start)
        with self._lock.hold(shared=True):
            conversation = self.get_conversation(conv_id)
            end = conversation.next_seq if limit is None else min(conversation.next_seq, start + limit)
            found: list[Turn] = []
            for page in range(start // PAGE_SIZE, -(-end // PAGE_SIZE)):
                records = self._page(conversation, page)
                for key in sorted(records, key=int):
                    if start <= int(key) - 1 < end:
                        found.append(Turn.from_dict(records[key]))
            return found

    def pending_turns(self) -> list[tuple[Conversation, Turn]]:
        """Turns created on StackSpot but never seen finished, oldest first."""
        found = []
        with self._lock.hold(shared=True):
            for conversation in self.list_conversations(archived=None):
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
        with self._lock.hold():
            conversation = self.get_conversation(conv_id)
            turns = self._turns_on_disk(conv_id)
            return self._update_index(conv_id, self._counters(turns, conversation.next_seq))

    def _turns_on_disk(self, conv_id: str) -> list[Turn]:
        """Every turn in the page files of a conversation, whatever the index says."""
        turns = []
        directory = self.conversation_dir(conv_id)
        for path in sorted(directory.glob("[0-9][0-9][0-9][0-9].json")):
            turns += [Turn.from_dict(r) for r in (self._load(path, TURNS_TABLE) or {}).values()]
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

    def search(self, text: str, *, limit: int = 50) -> list[SearchHit]:
        """Case-insensitive substring search over prompts and results, newest conversations first.

        A page whose raw text cannot hold the needle is not parsed (most of them), but every
        page is read: a missing, empty or cut-off page is reported, never skipped as "no match".
        """
        needle = text.lower()
        if not needle:
            return []
        # The raw-file prefilter is exact only when JSON writes the needle unescaped; bytes
        # lower-casing is exact only for ASCII (and is ~2x cheaper than decoding first).
        prefilter = not (set(needle) & _JSON_ESCAPED)
        ascii_needle = needle.encode("ascii") if prefilter and needle.isascii() else None
        hits: list[SearchHit] = []
        with self._lock.hold(shared=True):
            for conversation in self.list_conversations(archived=None):
                for page in range(-(-conversation.next_seq // PAGE_SIZE)):  # known pages: no directory listing
                    path = self.page_path(conversation.id, page)
                    raw = read_bytes(path)
                    if raw is None:
                        raise HistoryCorruptError(path, "missing, though the index counts its turns")
                    if not (raw.startswith(b'{"turns":{') and raw.endswith(b"}}")):
                        check_page_file(path, parse_json(path, raw))  # says what is wrong
                    if ascii_needle is not None:
                        if ascii_needle not in raw.lower():
                            continue
                    elif prefilter and needle not in raw.decode("utf-8", "replace").lower():
                        continue
                    data = parse_json(path, raw)
                    check_page_file(path, data)
                    records = data[TURNS_TABLE]
                    for key in sorted(records, key=int):
                        turn = Turn.from_dict(records[key])
                        for field, value in (("prompt", turn.prompt), ("result", _result_text(turn.result))):
                            at = value.lower().find(needle)
                            if at >= 0:
                                hits.append(SearchHit(conversation, turn.seq, field, _snippet(value, at, len(needle))))
                                if len(hits) >= limit:
                                    return hits
        return hits

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
