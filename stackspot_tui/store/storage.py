"""History files on disk: checked reads, atomic private writes, and the inter-process lock."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from .. import atomicfile, fastjson
from ..atomicfile import PRIVATE_FILE, write_atomic
from .errors import HistoryAccessError, HistoryCorruptError, HistoryLockTimeout, HistoryReadOnlyError, HistoryWriteError

try:
    import fcntl
except ImportError:  # Windows and other systems without flock: filelock's portable lock instead
    fcntl = None  # type: ignore[assignment]

_READ_ONLY_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})

Validator = Callable[[Path, Any], None]  # raises HistoryCorruptError


def read_json(path: Path) -> Any | None:
    """Parse a history file. A missing file is None; anything unreadable raises."""
    raw = read_bytes(path)
    return None if raw is None else parse_json(path, raw)


def read_bytes(path: Path) -> bytes | None:
    """A history file's bytes, None when it does not exist; a directory in its place is damage."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise HistoryCorruptError(path, "a directory where a file should be") from None
    except NotADirectoryError:
        raise HistoryCorruptError(_file_in_the_way(path), "a file where a directory should be") from None
    except OSError as exc:
        raise HistoryAccessError(path, "read", exc) from None


def parse_json(path: Path, raw: bytes) -> Any:
    """An empty file is damage, not an empty record set: every file is written whole and renamed
    into place, so a 0-byte file means something else truncated it."""
    if not raw.strip():
        raise HistoryCorruptError(path, "empty file")
    try:
        return fastjson.loads(raw)
    except UnicodeDecodeError as exc:
        raise HistoryCorruptError(path, f"not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise HistoryCorruptError(path, f"not valid JSON: {exc.msg.lower()} at byte {exc.pos}") from None
    except RecursionError:
        raise HistoryCorruptError(path, "not valid JSON: nested too deep") from None


def _file_in_the_way(path: Path) -> Path:
    """The nearest ancestor of ``path`` that exists and is not a directory."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            return parent
    return path


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and any missing parents, each readable by its owner only."""
    try:
        atomicfile.make_private_dirs(directory)
    except FileExistsError as exc:
        raise HistoryCorruptError(Path(exc.filename), "a file where a directory should be") from None
    except NotADirectoryError:
        raise HistoryCorruptError(_file_in_the_way(directory), "a file where a directory should be") from None
    except OSError as exc:
        raise HistoryWriteError(Path(exc.filename or directory), exc) from None


def write_json_atomic(path: Path, data: Any, *, durable: bool = True, sync_dir: bool = True) -> None:
    make_private_dirs(path.parent)
    # NaN and Infinity are written as Python's json writes them: a server may send them in a
    # result, and the answer is kept as it came; typed fields are checked finite on read.
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    try:
        write_atomic(path, payload, durable=durable, sync_dir=sync_dir)
    except IsADirectoryError:
        raise HistoryCorruptError(path, "a directory where a file should be") from None
    except OSError as exc:
        raise HistoryWriteError(path, exc) from None


class FileCache:
    """Checked files kept parsed while unchanged on disk. Every write replaces a file (a new
    inode) or appends to a journal (a new size and mtime), so (inode, mtime, size) tells a stale
    copy from a fresh one, across processes too. Callers must not change what it gives them."""

    def __init__(self, size: int = 16) -> None:
        self._size = size
        self._files: OrderedDict[Path, tuple[tuple[int, int, int], Any]] = OrderedDict()

    @staticmethod
    def _key(path: Path) -> tuple[int, int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def read(self, path: Path, validate: Validator) -> Any | None:
        """The file's checked content, from the cache when the file has not changed."""
        return self.load(path, lambda path: _checked_json(path, validate))

    def load(self, path: Path, loader: Callable[[Path], Any | None]) -> Any | None:
        """What ``loader`` makes of the file (None: no file), from the cache when it has not changed."""
        key = self._key(path)
        cached = self._files.get(path)
        if key is not None and cached is not None and cached[0] == key:
            self._files.move_to_end(path)
            return cached[1]
        data = loader(path)
        if data is not None and key is not None:
            self.put(path, data, key)
        return data

    def put(self, path: Path, data: Any, key: tuple[int, int, int] | None = None) -> None:
        key = key or self._key(path)
        if key is None:
            return
        self._files[path] = (key, data)
        self._files.move_to_end(path)
        while len(self._files) > self._size:
            self._files.popitem(last=False)

    def forget(self, path: Path) -> None:
        self._files.pop(path, None)

    def clear(self) -> None:
        self._files.clear()


def _checked_json(path: Path, validate: Validator) -> Any | None:
    data = read_json(path)
    if data is not None:
        validate(path, data)
    return data


class CheckedStorage(Storage):
    """TinyDB storage: every read is checked whole (so no write lands in a damaged file);
    every write is whole, atomic and private. With a ``cache``, a file read again unchanged is
    not parsed again (TinyDB gets a copy it may change)."""

    def __init__(
        self, path: Path, validate: Validator, cache: FileCache | None = None, *, sync_dir: bool = True
    ) -> None:
        self.path = Path(path)
        self._validate = validate
        self._cache = cache
        self._sync_dir = sync_dir  # False: the caller's next write in this directory syncs it

    def read(self) -> dict[str, Any] | None:
        if self._cache is None:
            data = read_json(self.path)
            if data is not None:
                self._validate(self.path, data)
            return data
        cached = self._cache.read(self.path, self._validate)
        if cached is None:
            return None
        # TinyDB updates documents in place: it gets its own copies.
        return {name: {key: dict(doc) for key, doc in table.items()} for name, table in cached.items()}

    def write(self, data: dict[str, Any]) -> None:
        if self._cache is not None:
            self._cache.forget(self.path)
        write_json_atomic(self.path, data, sync_dir=self._sync_dir)
        if self._cache is not None:
            self._cache.put(self.path, data)

    def close(self) -> None:
        pass


class HistoryLock:
    """Between processes: flock on the lock file, shared for reads and exclusive for writes
    (filelock's exclusive lock where fcntl does not exist). Between threads: an RLock.

    A read needs no write access: the lock file is opened read-only, and if it does not exist
    and cannot be created (a read-only history) the read goes without it — every file is
    replaced by an atomic rename, so a lockless reader still never sees a torn file.
    """

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._shared = False
        self._release: Callable[[], None] | None = None

    @contextmanager
    def hold(self, *, shared: bool = False) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                self._release = self._acquire(shared)
                self._shared = shared
            elif self._shared and not shared:
                raise RuntimeError("a history write inside a read: take the exclusive lock first")
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._release is not None:
                    release, self._release = self._release, None
                    release()

    def _acquire(self, shared: bool) -> Callable[[], None] | None:
        if fcntl is None:
            return self._acquire_portable(shared)
        fd = self._open(shared)
        if fd is None:
            return None
        operation = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
        started = time.monotonic()
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, operation)
                break
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= self.timeout:
                    os.close(fd)
                    raise HistoryLockTimeout(self.path, waited) from None
                # flock has no timeout: poll. Async callers run the store in a worker thread.
                time.sleep(delay)
                delay = min(0.05, delay * 2)

        def release() -> None:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

        return release

    def _open(self, shared: bool) -> int | None:
        fd: int | None = None
        if shared:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise self._open_error(exc) from None
        if fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
            except OSError as exc:
                if shared and exc.errno in _READ_ONLY_ERRNOS:
                    return None  # read-only history without a lock file: read without one
                raise self._open_error(exc) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise HistoryCorruptError(self.path, "the lock is not a regular file")
        return fd

    def _open_error(self, exc: OSError) -> Exception:
        if isinstance(exc, IsADirectoryError):
            return HistoryCorruptError(self.path, "a directory where a file should be")
        if isinstance(exc, NotADirectoryError):
            return HistoryCorruptError(_file_in_the_way(self.path), "a file where a directory should be")
        readable = os.access(self.path.parent, os.R_OK | os.X_OK)
        if exc.errno == errno.EROFS or (exc.errno in _READ_ONLY_ERRNOS and readable):
            return HistoryReadOnlyError(self.path.parent, exc)
        return HistoryAccessError(self.path, "open", exc)

    def _acquire_portable(self, shared: bool) -> Callable[[], None] | None:
        import filelock

        if self.path.is_dir():
            raise HistoryCorruptError(self.path, "a directory where a file should be")
        lock = filelock.FileLock(str(self.path), mode=PRIVATE_FILE)
        started = time.monotonic()
        try:
            lock.acquire(timeout=self.timeout, poll_interval=0.01)
        except filelock.Timeout:
            raise HistoryLockTimeout(self.path, time.monotonic() - started) from None
        except OSError as exc:
            if shared and exc.errno in _READ_ONLY_ERRNOS:
                return None
            raise self._open_error(exc) from None
        return lambda: lock.release()
