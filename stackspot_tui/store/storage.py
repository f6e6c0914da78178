"""TinyDB storage that never leaves a half-written file, and the inter-process lock."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from ..atomicfile import write_atomic
from .errors import HistoryCorruptError, HistoryLockTimeout


def read_json(path: Path) -> Any | None:
    """Parse a history file; a missing or empty file is None, a damaged one raises."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise HistoryCorruptError(path, f"not valid JSON: {exc}") from None


def write_json_atomic(path: Path, data: Any) -> None:
    """The whole document, compact, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


class AtomicJSONStorage(Storage):
    """TinyDB storage: reads the whole file, writes it whole and atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any] | None:
        data = read_json(self.path)
        if data is not None and not isinstance(data, dict):
            raise HistoryCorruptError(self.path, "not a TinyDB document")
        return data

    def write(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.path, data)

    def close(self) -> None:
        pass


class HistoryLock:
    """flock on a lock file (between processes) plus an RLock (between threads)."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._thread_lock:
            if self._depth == 0:
                self._acquire()
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    self._release()

    def _acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + self.timeout
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise HistoryLockTimeout(self.path, self.timeout) from None
                time.sleep(delay)  # flock has no timeout: poll with a short, growing wait
                delay = min(0.05, delay * 2)
        self._fd = fd

    def _release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
