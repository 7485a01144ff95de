"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

Every file the course writes (cached worlds, checkpoints, manifests, figures) goes through
:func:`atomic_write`: the content is written to a uniquely named temporary file in the same
folder, flushed to disk, then renamed over the target (``os.replace`` is atomic on POSIX and
Windows). If writing fails, the temporary file is removed and the old file is left untouched.
A process killed mid-write (SIGKILL, SIGTERM, a power cut) cannot remove its temporary file;
the next write to the same folder removes the temporaries of processes that no longer run.

:func:`folder_lock` serialises writers (and readers) of files that belong together, such as a
checkpoint's weights and its manifest.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "folder_lock"]

# ".<target name>.<pid>.<8 hex digits>.tmp", as atomic_write names its temporary files
_TEMPORARY = re.compile(r"\..+\.(?P<pid>[0-9]+)\.[0-9a-f]{8}\.tmp", re.ASCII)


def _process_running(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (True when that cannot be told)."""
    if pid == os.getpid():
        return True
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # someone else's process, or not a pid at all
        return True
    return True


def _remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Delete the temporary files that killed writers left in ``folder``; return them.

    Only files named as :func:`atomic_write` names them, whose process no longer runs, are
    removed; a missing or unreadable folder is left alone.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None or _process_running(int(match["pid"])):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
            removed.append(Path(entry.path))
    return removed


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(handle)`` on a temporary sibling of ``path``, then rename it onto ``path``.

    Args:
        path: the file to create or replace; its folder is created if missing.
        write: writes the content to the binary handle it is given.

    Returns:
        ``path`` as a Path. The file gets the usual permissions (the process's umask).

    Example:
        >>> atomic_write("/tmp/example.txt", lambda f: f.write(b"hello"))
        PosixPath('/tmp/example.txt')
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target.parent)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], *, shared: bool = False) -> Iterator[None]:
    """Hold an advisory lock on ``folder`` inside the block: exclusive, or ``shared`` for readers.

    Writers of files that must change together (a checkpoint's weights and manifest) take the
    exclusive lock, readers the shared one, so a reader never sees one writer's weights with
    another's manifest. The lock is the folder itself (``flock``), so no lock file is left
    behind and a killed process releases it. Where ``flock`` does not exist (Windows) or the
    folder is missing, the block runs unlocked.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
