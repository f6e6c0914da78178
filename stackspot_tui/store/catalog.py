"""The catalog: a SQLite copy of what listing and searching need, derived from the TinyDB files.

The TinyDB files (a record per conversation, pages of turns) hold the truth. The catalog holds
a copy of every conversation record, ordered by recency, and a full-text index (FTS5) of every
turn's prompt and answer; `repair` rebuilds it from the files. See docs/history-layout.md for
why SQLite here and TinyDB elsewhere.

It stays in step with the files through one protocol, run under the history's exclusive lock:
mark the conversation dirty (one transaction), write the files, then apply the change and clear
the mark (one transaction). A process killed in between leaves the mark, and whoever reads next
takes that conversation from the files instead; the next writer re-copies it. A catalog is built
whole in a new file named by its generation and renamed into place, so a process still holding
an older one never writes into the new one.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import stat
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..atomicfile import PRIVATE_FILE, fsync_directory
from .errors import HistoryAccessError, HistoryCorruptError, HistoryReadOnlyError, HistoryWriteError
from .schema import Record
from .storage import make_private_dirs

CATALOG_VERSION = 1
SUFFIX = ".sqlite"
BUILDING = ".build-"
MAX_PREFIX_TERMS = 2000  # a prefix with more words than this is left to FTS5's own prefix query
TOKENIZER = "unicode61 remove_diacritics 2"

_SCHEMA = f"""
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE conversations(
    id TEXT PRIMARY KEY,
    updated_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    archived INTEGER NOT NULL,
    pending INTEGER NOT NULL,
    folded TEXT NOT NULL,
    record TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX conversations_recent ON conversations(updated_at DESC, created_at DESC);
CREATE INDEX conversations_archived_recent ON conversations(archived, updated_at DESC, created_at DESC);
CREATE INDEX conversations_pending ON conversations(pending) WHERE pending;
CREATE TABLE turns(key INTEGER PRIMARY KEY, conversation TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE UNIQUE INDEX turns_of_conversation ON turns(conversation, seq);
CREATE VIRTUAL TABLE turn_text USING fts5(prompt, answer, tokenize = '{TOKENIZER}');
CREATE TABLE terms(term TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE dirty(conversation TEXT PRIMARY KEY) WITHOUT ROWID;
"""
# The words of one turn as FTS5 splits them, for the vocabulary behind prefix search.
_SCRATCH = f"""
CREATE VIRTUAL TABLE IF NOT EXISTS temp.scratch USING fts5(prompt, answer, tokenize = '{TOKENIZER}');
CREATE VIRTUAL TABLE IF NOT EXISTS temp.scratch_terms USING fts5vocab(temp, scratch, 'row');
"""

TurnText = tuple[str, int, str, str, str]  # conversation, seq, created_at, prompt, answer
Folder = Callable[[Record], str]


def turn_key(created_at: str, seq: int) -> int:
    """A turn's rowid: its creation time, so the full-text index walks newest first for free."""
    try:
        stamp = datetime.fromisoformat(created_at)
    except ValueError:
        stamp = datetime(1970, 1, 1, tzinfo=UTC)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    micros = int(stamp.timestamp() * 1_000_000)
    return (max(0, micros) << 8) | (seq & 0xFF)


BOOT_ID = Path("/proc/sys/kernel/random/boot_id")  # Linux: new at every boot


def boot_id() -> str | None:
    """This boot's id; None where the system does not say (then no catch-up after a power cut)."""
    try:
        return BOOT_ID.read_text().strip() or None
    except OSError:
        return None


def _generation() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


class Catalog:
    """One history's catalog: ``<root>/catalog/<generation>.sqlite``.

    Not thread-safe by itself: the store calls it under its lock. ``fold`` turns a conversation
    record into the text the list's filter matches (title and target, case-folded).
    """

    def __init__(self, root: Path, fold: Folder) -> None:
        self.directory = root / "catalog"
        self._fold = fold
        self._db: sqlite3.Connection | None = None
        self._path: Path | None = None
        self._seen: tuple[int, int] | None = None  # the directory's (inode, mtime) when last listed
        self._scratch = False
        self.readonly = False

    # -- files -------------------------------------------------------------------------------

    def _generations(self) -> list[Path]:
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        except NotADirectoryError:
            raise HistoryCorruptError(self.directory, "a file where a directory should be") from None
        except OSError as exc:
            raise HistoryAccessError(self.directory, "read", exc) from None
        return sorted(self.directory / n for n in names if n.endswith(SUFFIX) and not n.startswith("."))

    @property
    def path(self) -> Path | None:
        """The current catalog file (the newest generation), None when there is none."""
        self._follow()
        return self._path

    def _follow(self) -> None:
        """Notice a catalog rebuilt by another process: the directory changes when it is."""
        try:
            st = os.stat(self.directory)
            seen: tuple[int, int] | None = (st.st_ino, st.st_mtime_ns)
        except FileNotFoundError:
            seen = None
        except OSError as exc:
            raise HistoryAccessError(self.directory, "read", exc) from None
        if seen is not None and seen == self._seen:
            return
        generations = self._generations()
        current = generations[-1] if generations else None
        if current != self._path:
            self.close()
            self._path = current
        self._seen = seen

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
            self._scratch = False

    @property
    def db(self) -> sqlite3.Connection:
        self._follow()
        if self._db is None:
            if self._path is None:
                raise HistoryCorruptError(self.directory / f"*{SUFFIX}", "the catalog is missing")
            self._db = self._connect(self._path)
        return self._db

    def _connect(self, path: Path) -> sqlite3.Connection:
        try:
            regular = stat.S_ISREG(os.stat(path).st_mode)
        except OSError as exc:
            raise HistoryAccessError(path, "open", exc) from None
        if not regular:
            raise HistoryCorruptError(path, "a directory where a file should be")
        writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
        try:
            if writable:
                db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA synchronous = NORMAL")
                db.execute("PRAGMA temp_store = MEMORY")
            else:
                # A read-only history is read as it is (a catalog left with a -wal file needs
                # its -shm, which cannot be made: then it is read without the -wal).
                try:
                    db = sqlite3.connect(
                        f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
                    )
                    db.execute("SELECT count(*) FROM meta").fetchone()
                except sqlite3.OperationalError:
                    uri = f"{path.as_uri()}?immutable=1"
                    db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA busy_timeout = 10000")
        except sqlite3.Error as exc:
            raise self._damaged(exc, path) from None
        self.readonly = not writable
        return db

    def _damaged(self, exc: sqlite3.Error, path: Path | None = None) -> Exception:
        path = path or self._path or self.directory
        message = str(exc)
        if isinstance(exc, sqlite3.OperationalError):
            lowered = message.lower()
            if "readonly" in lowered or "read-only" in lowered:
                return HistoryReadOnlyError(path.parent.parent, OSError(13, message))
            if "disk is full" in lowered or "disk i/o" in lowered:
                return HistoryWriteError(path, OSError(28 if "full" in lowered else 5, message))
            if "locked" in lowered or "busy" in lowered or "unable to open" in lowered:
                return HistoryAccessError(path, "use", OSError(16, message))
        return HistoryCorruptError(path, f"the search catalog is damaged: {message}")

    @contextmanager
    def _sql(self) -> Iterator[sqlite3.Connection]:
        """SQLite errors as history errors: damage names the file and says to run repair."""
        try:
            yield self.db
        except sqlite3.Error as exc:
            raise self._damaged(exc) from None
        except UnicodeDecodeError as exc:  # a damaged page of text: SQLite hands it over as it is
            path = self._path or self.directory
            raise HistoryCorruptError(
                path, f"the search catalog is damaged: text that is not UTF-8 ({exc.reason})"
            ) from None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._sql() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            sys.audit("stackspot_tui.catalog.commit", str(self._path))  # a step the kill tests can stop at
            db.execute("COMMIT")

    def check(self) -> str | None:
        """What keeps this catalog from being used (None: it is sound and complete)."""
        if self.path is None:
            return "missing"
        try:
            with self._sql() as db:
                meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        except HistoryCorruptError as exc:
            return exc.detail
        if meta.get("version") != str(CATALOG_VERSION):
            return f"catalog version {meta.get('version')!r}, this program builds {CATALOG_VERSION}"
        if meta.get("complete") != "1":
            return "its build was interrupted"
        return None

    # -- building -----------------------------------------------------------------------------

    def build(self, conversations: Iterable[tuple[Record, Iterable[TurnText]]]) -> int:
        """A new catalog from every conversation and its turns, renamed into place when whole.

        Returns the number of turns. The previous generation is removed once the new one is in
        place; a build killed half-way leaves a ``.build-`` file the next build removes."""
        make_private_dirs(self.directory)
        for leftover in self.directory.glob(f"{BUILDING}*"):
            leftover.unlink(missing_ok=True)
        generation = _generation()
        building = self.directory / f"{BUILDING}{generation}{SUFFIX}"
        os.close(os.open(building, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE))
        db = sqlite3.connect(building, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            db.execute("PRAGMA cache_size = -65536")
            db.executescript(_SCHEMA)
            db.execute("BEGIN")
            count = 0
            turn_rows: list[tuple[int, str, int]] = []
            text_rows: list[tuple[int, str, str]] = []
            for record, turns in conversations:
                db.execute("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?, ?)", self._conversation_row(record))
                for conv_id, seq, created_at, prompt, answer in turns:
                    turn_rows.append((turn_key(created_at, seq), conv_id, seq))
                    text_rows.append((turn_rows[-1][0], prompt, answer))
                    count += 1
                if len(turn_rows) >= 5000:
                    self._bulk_turns(db, turn_rows, text_rows)
                    turn_rows, text_rows = [], []
            self._bulk_turns(db, turn_rows, text_rows)
            db.execute("CREATE VIRTUAL TABLE temp.all_terms USING fts5vocab(main, turn_text, 'row')")
            db.execute("INSERT INTO terms SELECT term FROM temp.all_terms")
            db.execute("INSERT INTO turn_text(turn_text) VALUES ('optimize')")
            db.executemany(
                "INSERT INTO meta VALUES (?, ?)",
                [
                    ("version", str(CATALOG_VERSION)),
                    ("complete", "1"),
                    ("built_at", generation),
                    ("boot", boot_id() or ""),
                ],
            )
            db.execute("COMMIT")
            db.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as exc:
            db.close()
            building.unlink(missing_ok=True)
            raise self._damaged(exc, building) from None
        except BaseException:
            db.close()
            building.unlink(missing_ok=True)
            raise
        db.close()
        fd = os.open(building, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        sys.audit("stackspot_tui.catalog.commit", str(building))
        final = self.directory / f"{generation}{SUFFIX}"
        os.rename(building, final)
        fsync_directory(self.directory)
        self.close()
        self._seen = None
        self._retire(keep=final)
        return count

    @staticmethod
    def _bulk_turns(db: sqlite3.Connection, turn_rows: list[tuple[int, str, int]], text_rows: list[Any]) -> None:
        """Insert a batch; a key taken already (two turns created in the same microsecond) moves up."""
        try:
            db.execute("SAVEPOINT batch")
            db.executemany("INSERT INTO turns VALUES (?, ?, ?)", turn_rows)
            db.executemany("INSERT INTO turn_text(rowid, prompt, answer) VALUES (?, ?, ?)", text_rows)
            db.execute("RELEASE batch")
            return
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK TO batch")
            db.execute("RELEASE batch")
        for (key, conv_id, seq), (_, prompt, answer) in zip(turn_rows, text_rows, strict=True):
            key = _free_key(db, key)
            db.execute("INSERT INTO turns VALUES (?, ?, ?)", (key, conv_id, seq))
            db.execute("INSERT INTO turn_text(rowid, prompt, answer) VALUES (?, ?, ?)", (key, prompt, answer))

    def _retire(self, keep: Path) -> None:
        """Remove older generations (and their -wal, -shm): no process writes there any more."""
        for path in self._generations():
            if path != keep:
                for name in (path.name, path.name + "-wal", path.name + "-shm"):
                    (path.parent / name).unlink(missing_ok=True)

    def set_aside(self, quarantine: Callable[[Path], Path]) -> list[Path]:
        """Move the current catalog (with its -wal and -shm) aside; the names it got."""
        current = self.path
        self.close()
        moved: list[Path] = []
        if current is None:
            return moved
        for name in (current.name, current.name + "-wal", current.name + "-shm"):
            if os.path.lexists(current.parent / name):
                moved.append(quarantine(current.parent / name))
        self._seen = None
        return moved

    # -- keeping in step ---------------------------------------------------------------------

    def mark(self, conv_id: str) -> None:
        """Before a conversation's files change: readers take it from the files until `apply`."""
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO dirty VALUES (?)", (conv_id,))

    def apply(
        self,
        conv_id: str,
        record: Record | None,
        turns: Sequence[TurnText] = (),
        removed: Sequence[int] = (),
        *,
        replace_all: bool = False,
    ) -> None:
        """The conversation as its files now hold it, and the mark cleared: ``record`` None means it
        is gone; ``turns`` are (re)indexed; ``removed`` seqs dropped; ``replace_all`` drops every
        turn not in ``turns`` first."""
        with self._transaction() as db:
            if record is None:
                self._drop(db, conv_id)
            else:
                db.execute(
                    "INSERT OR REPLACE INTO conversations VALUES (?, ?, ?, ?, ?, ?, ?)", self._conversation_row(record)
                )
                if replace_all:
                    self._drop_turns(db, conv_id)
                for seq in removed:
                    self._drop_turn(db, conv_id, seq)
                for turn in turns:
                    self._put_turn(db, turn)
            db.execute("DELETE FROM dirty WHERE conversation = ?", (conv_id,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('written', ?)", (repr(time.time()),))

    def _conversation_row(self, record: Record) -> tuple[Any, ...]:
        return (
            record["id"],
            record["updated_at"],
            record["created_at"],
            int(bool(record.get("archived", False))),
            int(bool(record.get("pending"))),
            self._fold(record),
            json.dumps(record, ensure_ascii=False, separators=(",", ":")),
        )

    def _put_turn(self, db: sqlite3.Connection, turn: TurnText) -> None:
        conv_id, seq, created_at, prompt, answer = turn
        row = db.execute("SELECT key FROM turns WHERE conversation = ? AND seq = ?", (conv_id, seq)).fetchone()
        if row is not None:
            key = row[0]
            db.execute("DELETE FROM turn_text WHERE rowid = ?", (key,))
        else:
            key = _free_key(db, turn_key(created_at, seq))
            db.execute("INSERT INTO turns VALUES (?, ?, ?)", (key, conv_id, seq))
        db.execute("INSERT INTO turn_text(rowid, prompt, answer) VALUES (?, ?, ?)", (key, prompt, answer))
        self._learn_terms(db, prompt, answer)

    def _learn_terms(self, db: sqlite3.Connection, prompt: str, answer: str) -> None:
        """Add the turn's words to the vocabulary prefix search expands against, split by FTS5
        itself (a scratch table), so the two never disagree on what a word is."""
        if not self._scratch:
            for statement in _SCRATCH.strip().split(";\n"):  # not executescript: it would commit
                db.execute(statement)
            self._scratch = True
        db.execute("INSERT INTO temp.scratch(rowid, prompt, answer) VALUES (1, ?, ?)", (prompt, answer))
        db.execute("INSERT OR IGNORE INTO terms SELECT term FROM temp.scratch_terms")
        db.execute("DELETE FROM temp.scratch")

    @staticmethod
    def _drop_turn(db: sqlite3.Connection, conv_id: str, seq: int) -> None:
        row = db.execute("SELECT key FROM turns WHERE conversation = ? AND seq = ?", (conv_id, seq)).fetchone()
        if row is not None:
            db.execute("DELETE FROM turn_text WHERE rowid = ?", (row[0],))
            db.execute("DELETE FROM turns WHERE key = ?", (row[0],))

    @staticmethod
    def _drop_turns(db: sqlite3.Connection, conv_id: str) -> None:
        keys = [row[0] for row in db.execute("SELECT key FROM turns WHERE conversation = ?", (conv_id,))]
        db.executemany("DELETE FROM turn_text WHERE rowid = ?", [(key,) for key in keys])
        db.execute("DELETE FROM turns WHERE conversation = ?", (conv_id,))

    def _drop(self, db: sqlite3.Connection, conv_id: str) -> None:
        self._drop_turns(db, conv_id)
        db.execute("DELETE FROM conversations WHERE id = ?", (conv_id,))

    # -- after a power cut ------------------------------------------------------------------

    def booted_since(self) -> bool:
        """The machine has started again since this catalog was last brought in step with the files.

        Commits are not fsynced (WAL, synchronous=NORMAL): a kill loses none, a power cut may lose
        the last ones while the files (fsynced) keep what they recorded, marks included. Then the
        next start catches up (`HistoryStore._catch_up`)."""
        current = boot_id()
        if current is None:
            return False
        with self._sql() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'boot'").fetchone()
        return row is None or row[0] != current

    def note_boot(self) -> None:
        """The catalog agrees with the files as of this boot."""
        with self._transaction() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES ('boot', ?)", (boot_id() or "",))

    def written_at(self) -> float | None:
        """When the catalog last took a change (time.time()): a power cut keeps a prefix of the
        commits, so every change it lost came later. None: a catalog from before this was kept."""
        with self._sql() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'written'").fetchone()
        try:
            return float(row[0]) if row else None
        except ValueError:
            return None

    def all_ids(self) -> set[str]:
        with self._sql() as db:
            return {row[0] for row in db.execute("SELECT id FROM conversations")}

    # -- reading -----------------------------------------------------------------------------

    def dirty(self) -> set[str]:
        with self._sql() as db:
            return {row[0] for row in db.execute("SELECT conversation FROM dirty")}

    def conversations(
        self,
        *,
        archived: bool | None = False,
        limit: int | None = None,
        offset: int = 0,
        matching: str = "",
        pending: bool = False,
        ids: Sequence[str] = (),
    ) -> list[str]:
        """Conversation records (JSON text), newest activity first."""
        where, params = self._where(archived, matching, pending, ids)
        # The few conversations left running, read through their own index: left to itself SQLite
        # walks every conversation in recency order to skip a sort (0.1 s at 100k, at each start).
        table = "conversations INDEXED BY conversations_pending" if pending else "conversations"
        sql = f"SELECT record FROM {table}{where} ORDER BY updated_at DESC, created_at DESC"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        with self._sql() as db:
            return [row[0] for row in db.execute(sql, params)]

    def count(self, *, archived: bool | None = False, matching: str = "") -> int:
        where, params = self._where(archived, matching, False, ())
        with self._sql() as db:
            return int(db.execute(f"SELECT count(*) FROM conversations{where}", params).fetchone()[0])

    @staticmethod
    def _where(archived: bool | None, matching: str, pending: bool, ids: Sequence[str]) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if archived is not None:
            clauses.append("archived = ?")
            params.append(int(archived))
        if matching:
            clauses.append("instr(folded, ?) > 0")
            params.append(matching)
        if pending:
            clauses.append("pending")
        if ids:
            clauses.append(f"id IN ({', '.join('?' * len(ids))})")
            params += list(ids)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def ids_from(self, prefix: str, limit: int) -> list[str]:
        """Conversation ids starting with ``prefix`` (lower-case hex), in order."""
        upper = prefix + "g"  # just past every hex digit
        with self._sql() as db:
            rows = db.execute(
                "SELECT id FROM conversations WHERE id >= ? AND id < ? ORDER BY id LIMIT ?", (prefix, upper, limit)
            )
            return [row[0] for row in rows]

    def terms_from(self, prefix: str) -> list[str] | None:
        """The indexed words starting with ``prefix``; None when there are too many to list."""
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        with self._sql() as db:
            rows = db.execute(
                "SELECT term FROM terms WHERE term >= ? AND term < ? LIMIT ?", (prefix, upper, MAX_PREFIX_TERMS + 1)
            ).fetchall()
        return None if len(rows) > MAX_PREFIX_TERMS else [row[0] for row in rows]

    def terms_containing(self, piece: str, *, suffix: bool = False, limit: int = MAX_PREFIX_TERMS) -> list[str] | None:
        """Indexed words containing ``piece`` (ending with it, with ``suffix``); None when too many."""
        pattern = "%" + piece.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ("" if suffix else "%")
        with self._sql() as db:
            rows = db.execute(
                "SELECT term FROM terms WHERE term LIKE ? ESCAPE '\\' LIMIT ?", (pattern, limit + 1)
            ).fetchall()
        return None if len(rows) > limit else [row[0] for row in rows]

    def matches(self, query: str | None, limit: int, *, before: int | None = None) -> list[tuple[int, str, str]]:
        """(key, prompt, answer) of the newest turns matching an FTS5 query, newest first; with no
        query, the newest turns whatever they say (a scan the index cannot narrow)."""
        clauses: list[str] = []
        params: list[Any] = []
        if query is not None:
            clauses.append("turn_text MATCH ?")
            params.append(query)
        if before is not None:
            clauses.append("rowid < ?")
            params.append(before)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._sql() as db:
            sql = f"SELECT rowid, prompt, answer FROM turn_text{where} ORDER BY rowid DESC LIMIT ?"
            return db.execute(sql, [*params, limit]).fetchall()

    def turn_refs(self, keys: Sequence[int]) -> dict[int, tuple[str, int]]:
        """(conversation, seq) of each turn key."""
        if not keys:
            return {}
        with self._sql() as db:
            rows = db.execute(
                f"SELECT key, conversation, seq FROM turns WHERE key IN ({', '.join('?' * len(keys))})", list(keys)
            )
            return {key: (conv_id, seq) for key, conv_id, seq in rows}

    def turn_texts(self, conv_id: str) -> list[tuple[int, str, str]]:
        """(seq, prompt, answer) of every turn the catalog holds of a conversation, in order."""
        with self._sql() as db:
            rows = db.execute(
                "SELECT t.seq, x.prompt, x.answer FROM turns t JOIN turn_text x ON x.rowid = t.key"
                " WHERE t.conversation = ? ORDER BY t.seq",
                (conv_id,),
            )
            return [(seq, prompt, answer) for seq, prompt, answer in rows]

    def integrity(self) -> str | None:
        """SQLite's check of the file and FTS5's of its index (not against its text); None: sound."""
        try:
            with self._sql() as db:
                rows = db.execute("PRAGMA quick_check").fetchall()
                if rows != [("ok",)]:
                    return "the search catalog is damaged: " + "; ".join(str(row[0]) for row in rows[:3])
                db.execute("INSERT INTO turn_text(turn_text, rank) VALUES ('integrity-check', 0)")
                if (
                    db.execute("SELECT count(*) FROM turns").fetchone()[0]
                    != db.execute("SELECT count(*) FROM turn_text").fetchone()[0]
                ):
                    return "the search catalog's turns and texts do not match"
        except HistoryCorruptError as exc:
            return exc.detail
        return None


def _free_key(db: sqlite3.Connection, key: int) -> int:
    while db.execute("SELECT 1 FROM turns WHERE key = ?", (key,)).fetchone() is not None:
        key += 1
    return key
