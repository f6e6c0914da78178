"""The one way files are written: whole or not at all, even if the process is killed mid-write."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

PRIVATE_FILE = 0o600  # what this program writes (history, exports, config) is the user's own
PRIVATE_DIR = 0o700


def write_atomic(
    path: Path, data: bytes, *, mode: int = PRIVATE_FILE, durable: bool = True, sync_dir: bool = True
) -> None:
    write_atomic_chunks(path, (data,), mode=mode, durable=durable, sync_dir=sync_dir)


def write_atomic_chunks(
    path: Path, chunks: Iterable[bytes], *, mode: int = PRIVATE_FILE, durable: bool = True, sync_dir: bool = True
) -> None:
    """Write to a temporary file beside `path`, fsync it, rename it over `path`, fsync the directory.

    `mode` is the new file's permission bits: private (0600) unless asked otherwise, since
    what this program writes (history, exports, config) is the user's own. The temporary name
    is unique per process and thread, so concurrent writers never share one. ``durable=False``
    skips both fsyncs, for a batch of files the caller makes durable at once (`sync_all`).
    ``sync_dir=False`` skips the directory's: the file's content is durable, its rename is not
    yet (a power cut leaves the old file or the new one, each whole) until the next fsync of
    that directory, which makes every earlier rename in it durable too.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # the umask may not narrow it, a stale temp file may have other bits
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    if durable and sync_dir:
        fsync_directory(path.parent)


def make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and any missing parents, each readable by its owner only
    (`Path.mkdir(parents=True)` gives the parents the umask's mode). Raises OSError, a
    FileExistsError naming the file where a directory should be."""
    missing = []
    for candidate in (directory, *directory.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        try:
            os.mkdir(candidate, PRIVATE_DIR)
        except FileExistsError:
            if not candidate.is_dir():
                raise


def sync_all() -> None:
    """Make every write so far durable: after a batch written with ``durable=False``."""
    if hasattr(os, "sync"):
        os.sync()


def fsync_directory(directory: Path) -> None:
    """Make a rename itself durable. Windows cannot open a directory; its renames are journaled."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
