"""atomic_write: complete files or none, the old file kept when writing fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlhelpers.files import atomic_write


def test_writes_the_file_and_creates_its_folder(tmp_path: Path) -> None:
    target = tmp_path / "new" / "file.bin"
    assert atomic_write(target, lambda f: f.write(b"abc")) == target
    assert target.read_bytes() == b"abc"
    assert list(target.parent.iterdir()) == [target]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def broken(handle) -> None:
        handle.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
