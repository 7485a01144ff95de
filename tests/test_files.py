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


def _dead_pid() -> int:
    """The id of a process that has exited."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_the_next_write_removes_temporaries_of_dead_writers_only(tmp_path: Path) -> None:
    import os

    dead = tmp_path / f".world.npz.{_dead_pid()}.0123abcd.tmp"
    alive = tmp_path / f".world.npz.{os.getpid()}.0123abcd.tmp"  # a write of ours under way
    look_alike = tmp_path / ".notes.txt.tmp"  # not named as atomic_write names temporaries
    for path in (dead, alive, look_alike):
        path.write_bytes(b"partial")
    atomic_write(tmp_path / "other.bin", lambda f: f.write(b"x"))
    assert not dead.exists()
    assert alive.exists() and look_alike.exists()


def test_removing_temporaries_of_a_missing_folder_is_a_no_op(tmp_path: Path) -> None:
    from tlhelpers.files import _remove_stale_temporaries

    assert _remove_stale_temporaries(tmp_path / "nowhere") == []
