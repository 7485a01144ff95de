"""Atomic file writes: a reader sees the old file or the complete new one, never half of one.

Every file the course writes (cached worlds, checkpoints, manifests, figures) goes through
:func:`atomic_write`: the content is written to a uniquely named temporary file in the same
folder, flushed to disk, then renamed over the target (``os.replace`` is atomic on POSIX and
Windows). If writing fails, the temporary file is removed and the old file is left untouched.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write"]


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
