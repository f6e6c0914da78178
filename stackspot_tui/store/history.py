"""The conversation history, on TinyDB files laid out so a write costs little however large it grows.

Layout under the root (see docs/history-layout.md):
    meta.json                          schema version
    index/<0-f>.json                   conversation records, sharded by the id's first hex digit
    conversations/<id>/<page>.json     turns, 100 per page
    lock                               inter-process lock
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.table import Document, Table

from .errors import (
    AmbiguousConversationError,
    HistoryCorruptError,
    HistoryVersionError,
    UnknownConversationError,
    UnknownTurnError,
)
from .models import Conversation, Turn, now_iso
from .storage import AtomicJSONStorage, HistoryLock, read_json, write_json_atomic

SCHEMA_VERSION = 1
PAGE_SIZE = 100
SHARDS = "0123456789abcdef"
INDEX_TABLE = "conversations"
TURNS_TABLE = "turns"
TITLE_LENGTH = 60
_CONVERSATION_FIELDS = {"title", "slug", "agent_id", "conversation_id", "archived", "updated_at"}
_JSON_ESCAPED = set('"\\') | {chr(c) for c in range(32)}


@dataclass(frozen=True)
class SearchHit:
    conversation: Conversation
    seq: int
    field: str  # "prompt" | "result"
    snippet: str


_ID = re.compile(r"[0-9a-f]{8}")


def _is_id(text: str) -> bool:
    return _ID.fullmatch(text) is not None


def _doc_id(conv_id: str) -> int:
    return int(conv_id, 16) + 1  # TinyDB ids start at 1


def _snippet(text: str, at: int, length: int, width: int = 80) -> str:
    start = max(0, at - (width - length) // 2)
    piece = " ".join(text[start : start + width].split())
    return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")


def _result_text(result: Any) -> str:
    if result is None:
        return ""
    return result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)


class HistoryStore:
    def __init__(self, root: Path, *, check: bool = True) -> None:
        """``check=False`` skips the schema check, for `repair` of a damaged meta.json."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = HistoryLock(self.root / "lock")
        self._index_cache: dict[Path, tuple[tuple[int, int, int] | None, dict[str, dict[str, Any]]]] = {}
        if check:
            with self._lock.hold():
                self._check_meta()

    # -- files ------------------------------------------------------------------------------

    def _check_meta(self) -> None:
        path = self.root / "meta.json"
        meta = read_json(path)
        if meta is None:
            write_json_atomic(path, {"schema_version": SCHEMA_VERSION, "app": "stackspot-tui"})
            return
        version = meta.get("schema_version") if isinstance(meta, dict) else None
        if not isinstance(version, int):
            raise HistoryCorruptError(path, "no schema_version")
        if version > SCHEMA_VERSION:
            raise HistoryVersionError(path, version, SCHEMA_VERSION)

    def _shard(self, conv_id: str) -> Path:
        return self.root / "index" / f"{conv_id[0]}.json"

    def _conversation_dir(self, conv_id: str) -> Path:
        return self.root / "conversations" / conv_id

    def _page(self, conv_id: str, seq: int) -> Path:
        return self._conversation_dir(conv_id) / f"{seq // PAGE_SIZE:04d}.json"

    @contextmanager
    def _table(self, path: Path, name: str) -> Iterator[Table]:
        db = TinyDB(path, storage=AtomicJSONStorage)
        try:
            yield db.table(name, cache_size=0)
        finally:
            db.close()

    def _records(self, path: Path, table: str) -> dict[str, dict[str, Any]]:
        """A TinyDB table read straight from its file (bulk reads skip TinyDB's per-document cost).

        Index shards are kept parsed while their file is unchanged: every write replaces the
        file (new inode), so (inode, mtime, size) tells a stale copy from a fresh one, across
        processes too. Callers must not mutate the returned records.
        """
        cacheable = table == INDEX_TABLE
        if cacheable:
            try:
                st = path.stat()
                key = (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                key = None
            cached = self._index_cache.get(path)
            if cached is not None and cached[0] == key:
                return cached[1]
        data = AtomicJSONStorage(path).read() or {}
        records = data.get(table, {})
        if not isinstance(records, dict) or not all(isinstance(r, dict) for r in records.values()):
            raise HistoryCorruptError(path, f"table {table!r} is not a set of records")
        if cacheable:
            self._index_cache[path] = (key, records)
        return records

    @staticmethod
    def _conversation_from(record: dict[str, Any], path: Path) -> Conversation:
        try:
            conversation = Conversation.from_dict(record)
        except TypeError as exc:
            raise HistoryCorruptError(path, f"bad conversation record: {exc}") from None
        if not _is_id(str(conversation.id)):
            raise HistoryCorruptError(path, f"bad conversation id {conversation.id!r}")
        return conversation

    @staticmethod
    def _turn_from(record: dict[str, Any], path: Path) -> Turn:
        try:
            return Turn.from_dict(record)
        except TypeError as exc:
            raise HistoryCorruptError(path, f"bad turn record: {exc}") from None

    # -- conversations ----------------------------------------------------------------------

    def create_conversation(self, slug: str, title: str = "", *, agent_id: str | None = None) -> Conversation:
        with self._lock.hold():
            while True:
                conv_id = secrets.token_hex(4)
                if str(_doc_id(conv_id)) not in self._records(self._shard(conv_id), INDEX_TABLE):
                    break
            conversation = Conversation(id=conv_id, slug=slug, title=title, agent_id=agent_id)
            with self._table(self._shard(conv_id), INDEX_TABLE) as table:
                table.insert(Document(conversation.to_dict(), doc_id=_doc_id(conv_id)))
            return conversation

    def get_conversation(self, conv_id: str) -> Conversation:
        if not _is_id(conv_id):
            raise UnknownConversationError(conv_id)
        path = self._shard(conv_id)
        with self._lock.hold():
            record = self._records(path, INDEX_TABLE).get(str(_doc_id(conv_id)))
        if record is None:
            raise UnknownConversationError(conv_id)
        return self._conversation_from(record, path)

    def resolve_id(self, text: str) -> str:
        """An exact id, or a unique prefix of at least 3 characters."""
        text = text.strip().lower()
        if _is_id(text):
            self.get_conversation(text)
            return text
        if len(text) < 3 or not all(c in SHARDS for c in text):
            raise UnknownConversationError(text)
        path = self._shard(text)
        with self._lock.hold():
            records = self._records(path, INDEX_TABLE)
        matches = sorted(str(r["id"]) for r in records.values() if str(r.get("id", "")).startswith(text))
        if not matches:
            raise UnknownConversationError(text)
        if len(matches) > 1:
            raise AmbiguousConversationError(text, matches)
        return matches[0]

    def list_conversations(self, *, archived: bool | None = False, limit: int | None = None) -> list[Conversation]:
        """Newest activity first. ``archived``: False = active only, True = archived only, None = all."""
        conversations = []
        with self._lock.hold():
            for shard in SHARDS:
                path = self.root / "index" / f"{shard}.json"
                for record in self._records(path, INDEX_TABLE).values():
                    conversation = self._conversation_from(record, path)
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
            with self._table(self._shard(conv_id), INDEX_TABLE) as table:
                table.upsert(Document(conversation.to_dict(), doc_id=_doc_id(conv_id)))
            return conversation

    def delete_conversation(self, conv_id: str) -> None:
        with self._lock.hold():
            self.get_conversation(conv_id)
            # Index record first: a crash in between leaves an unlisted directory, never a dangling record.
            with self._table(self._shard(conv_id), INDEX_TABLE) as table:
                table.remove(doc_ids=[_doc_id(conv_id)])
            shutil.rmtree(self._conversation_dir(conv_id), ignore_errors=True)

    def import_conversation(self, conversation: Conversation, turns: list[Turn]) -> Conversation:
        """Store an exported conversation; it gets a new id if its id is taken."""
        with self._lock.hold():
            conv_id = conversation.id if _is_id(str(conversation.id)) else secrets.token_hex(4)
            while str(_doc_id(conv_id)) in self._records(self._shard(conv_id), INDEX_TABLE):
                conv_id = secrets.token_hex(4)
            pages: dict[int, dict[str, dict[str, Any]]] = {}
            for turn in turns:
                turn.conversation = conv_id
                pages.setdefault(turn.seq // PAGE_SIZE, {})[str(turn.seq + 1)] = turn.to_dict()
            for page, records in pages.items():
                write_json_atomic(self._page(conv_id, page * PAGE_SIZE), {TURNS_TABLE: records})
            imported = Conversation.from_dict({**conversation.to_dict(), "id": conv_id})
            imported.turn_count = len(turns)
            imported.next_seq = max([imported.next_seq] + [t.seq + 1 for t in turns])
            imported.pending = sorted(t.seq for t in turns if t.needs_reattach)
            with self._table(self._shard(conv_id), INDEX_TABLE) as table:
                table.insert(Document(imported.to_dict(), doc_id=_doc_id(conv_id)))
            return imported

    # -- turns -------------------------------------------------------------------------------

    def add_turn(self, conv_id: str, prompt: str, input_data: Any, *, slug: str | None = None) -> Turn:
        with self._lock.hold():
            conversation = self.get_conversation(conv_id)
            if str(conversation.next_seq + 1) in self._records(self._page(conv_id, conversation.next_seq), TURNS_TABLE):
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
            with self._table(self._page(conv_id, seq), TURNS_TABLE) as table:
                table.insert(Document(turn.to_dict(), doc_id=seq + 1))
            fields: dict[str, Any] = {
                "next_seq": seq + 1,
                "turn_count": conversation.turn_count + 1,
                "updated_at": turn.created_at,
            }
            if not conversation.title:
                fields["title"] = self._title_from(prompt)
            self._update_index(conv_id, fields)
            return turn

    @staticmethod
    def _title_from(prompt: str) -> str:
        first = next((line.strip() for line in prompt.splitlines() if line.strip()), "")
        return first if len(first) <= TITLE_LENGTH else first[: TITLE_LENGTH - 1] + "…"

    def get_turn(self, conv_id: str, seq: int) -> Turn:
        path = self._page(conv_id, seq)
        with self._lock.hold():
            record = self._records(path, TURNS_TABLE).get(str(seq + 1)) if seq >= 0 else None
        if record is None:
            raise UnknownTurnError(conv_id, seq)
        return self._turn_from(record, path)

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
            with self._table(self._page(conv_id, seq), TURNS_TABLE) as table:
                table.upsert(Document(turn.to_dict(), doc_id=seq + 1))
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
            with self._table(self._page(conv_id, seq), TURNS_TABLE) as table:
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
        with self._lock.hold():
            conversation = self.get_conversation(conv_id)
            end = conversation.next_seq if limit is None else min(conversation.next_seq, start + limit)
            found: list[Turn] = []
            for page_start in range(start - start % PAGE_SIZE, end, PAGE_SIZE):
                path = self._page(conv_id, page_start)
                for key, record in sorted(self._records(path, TURNS_TABLE).items(), key=lambda kv: int(kv[0])):
                    if start <= int(key) - 1 < end:
                        found.append(self._turn_from(record, path))
            return found

    def pending_turns(self) -> list[tuple[Conversation, Turn]]:
        """Turns created on StackSpot but never seen finished, oldest first."""
        found = []
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
            directory = self._conversation_dir(conv_id)
            turns = []
            for path in sorted(directory.glob("*.json")):
                turns += [self._turn_from(r, path) for r in self._records(path, TURNS_TABLE).values()]
            fields = {
                "turn_count": len(turns),
                "next_seq": max([t.seq + 1 for t in turns], default=0),
                "pending": sorted(t.seq for t in turns if t.needs_reattach),
            }
            return self._update_index(conv_id, fields)

    # -- search ------------------------------------------------------------------------------

    def search(self, text: str, *, limit: int = 50) -> list[SearchHit]:
        """Case-insensitive substring search over prompts and results, newest conversations first."""
        needle = text.lower()
        if not needle:
            return []
        # The raw-file prefilter is exact only when JSON writes the needle unescaped; bytes
        # lower-casing is exact only for ASCII (and is ~2x cheaper than decoding first).
        prefilter = not (set(needle) & _JSON_ESCAPED)
        ascii_needle = needle.encode("ascii") if prefilter and needle.isascii() else None
        hits: list[SearchHit] = []
        for conversation in self.list_conversations(archived=None):
            directory = self._conversation_dir(conversation.id)
            for page in range(0, conversation.next_seq, PAGE_SIZE):  # known pages: no directory listing
                path = directory / f"{page // PAGE_SIZE:04d}.json"
                try:
                    raw = path.read_bytes()
                except OSError:
                    continue
                if ascii_needle is not None:
                    if ascii_needle not in raw.lower():
                        continue
                elif prefilter and needle not in raw.decode("utf-8", "replace").lower():
                    continue
                records = self._records(path, TURNS_TABLE)
                for key in sorted(records, key=int):
                    turn = self._turn_from(records[key], path)
                    for field, value in (("prompt", turn.prompt), ("result", _result_text(turn.result))):
                        at = value.lower().find(needle)
                        if at >= 0:
                            hits.append(SearchHit(conversation, turn.seq, field, _snippet(value, at, len(needle))))
                            if len(hits) >= limit:
                                return hits
        return hits

    # -- recovery ----------------------------------------------------------------------------

    def repair(self) -> list[str]:
        """Move damaged files aside and rebuild index records from the turn pages.

        Returns what was done, one line per action. Nothing is deleted or overwritten.
        """
        actions: list[str] = []
        with self._lock.hold():
            try:
                self._check_meta()
            except HistoryCorruptError as exc:
                moved = self.quarantine(exc.path)
                actions.append(f"moved damaged meta.json aside to {moved.name} ({exc.detail})")
                self._check_meta()
            self._index_cache.clear()
            for path in sorted(self.root.glob("index/*.json")) + sorted(self.root.glob("conversations/*/*.json")):
                table = INDEX_TABLE if path.parent.name == "index" else TURNS_TABLE
                parse = self._conversation_from if table == INDEX_TABLE else self._turn_from
                try:
                    for record in self._records(path, table).values():
                        parse(record, path)
                except HistoryCorruptError as exc:
                    moved = self.quarantine(path)
                    actions.append(f"moved damaged {path.relative_to(self.root)} aside to {moved.name} ({exc.detail})")
            self._index_cache.clear()
            known: set[str] = set()
            for shard in SHARDS:
                known.update(
                    r["id"] for r in self._records(self.root / "index" / f"{shard}.json", INDEX_TABLE).values()
                )
            for directory in sorted((self.root / "conversations").glob("*")):
                if not directory.is_dir() or not _is_id(directory.name):
                    continue
                if directory.name in known:
                    self.repair_index(directory.name)
                else:
                    self._rebuild_record(directory.name)
                    actions.append(f"rebuilt the index record of conversation {directory.name} from its turns")
        return actions

    def _rebuild_record(self, conv_id: str) -> None:
        turns = []
        for path in sorted(self._conversation_dir(conv_id).glob("*.json")):
            turns += [self._turn_from(r, path) for r in self._records(path, TURNS_TABLE).values()]
        turns.sort(key=lambda t: t.seq)
        first, last = (turns[0], turns[-1]) if turns else (None, None)
        conversation = Conversation(
            id=conv_id,
            slug=(last.slug if last and last.slug else ("" if last and last.agent_id else "unknown")),
            agent_id=last.agent_id if last else None,
            title=self._title_from(first.prompt) if first else "",
            conversation_id=next((t.conversation_id for t in reversed(turns) if t.conversation_id), None),
            created_at=first.created_at if first else now_iso(),
            updated_at=(last.finished_at or last.created_at) if last else now_iso(),
            turn_count=len(turns),
            next_seq=last.seq + 1 if last else 0,
            pending=sorted(t.seq for t in turns if t.needs_reattach),
        )
        with self._table(self._shard(conv_id), INDEX_TABLE) as table:
            table.upsert(Document(conversation.to_dict(), doc_id=_doc_id(conv_id)))

    @staticmethod
    def quarantine(path: Path) -> Path:
        """Rename a damaged file aside (never over another file) and return its new name."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        counter = 1
        while target.exists():
            target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
            counter += 1
        os.rename(path, target)
        return target
