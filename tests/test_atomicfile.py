"""The one atomic write: whole or not at all."""

from __future__ import annotations

import os

import pytest

from stackspot_tui.atomicfile import write_atomic


def test_replaces_the_file_whole(tmp_path):
    path = tmp_path / "f.json"
    path.write_bytes(b"old")
    write_atomic(path, b"new content")
    assert path.read_bytes() == b"new content"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    path.write_bytes(b"old")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        write_atomic(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_private_mode(tmp_path):
    path = tmp_path / "secret.json"
    write_atomic(path, b"{}", mode=0o600)
    assert path.stat().st_mode & 0o777 == 0o600
