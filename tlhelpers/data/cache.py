"""On-disk cache of generated datasets, keyed by everything that determines their content.

A dataset is stored as an uncompressed ``.npz`` of uint8 images and int64 labels under
``cache_dir()/worlds/``. Its file name carries a sha256 of every parameter that shapes the
pixels (sizes, seed, fonts, style, :data:`RENDER_VERSION`, library versions), so changing any of
them makes a new file instead of reusing a stale one. Files are written to a temporary name in
the same folder and then renamed, so a crash never leaves a half-written file under the real
name; a file that cannot be read back anyway is regenerated with a warning.
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import PIL

from tlhelpers.files import atomic_write
from tlhelpers.settings import cache_dir

__all__ = ["RENDER_VERSION", "cache_path", "cached_arrays", "content_key"]

RENDER_VERSION = 1  # bump whenever a renderer changes what it draws

Arrays = dict[str, np.ndarray]


def content_key(params: Mapping[str, Any]) -> str:
    """sha256 (hex) of ``params`` plus the render version and the rendering libraries' versions."""
    full = {
        **params,
        "render_version": RENDER_VERSION,
        "numpy": np.__version__.split(".")[0],
        "pillow": PIL.__version__,
        "matplotlib": matplotlib.__version__,
    }
    text = json.dumps(full, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_path(kind: str, params: Mapping[str, Any]) -> Path:
    """Cache file of the dataset described by ``params``: ``…/worlds/{kind}-{key}.npz``."""
    return cache_dir() / "worlds" / f"{kind}-{content_key(params)[:24]}.npz"


def _load(path: Path, key: str, check: Callable[[Arrays], bool]) -> Arrays | None:
    """The arrays in ``path``, or None (with a warning) when the file is unusable."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        if str(arrays.pop("content_key", "")) != key or not check(arrays):
            raise ValueError("its contents do not match the requested dataset")
        return arrays
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        warnings.warn(
            f"cached dataset {path} cannot be used ({err}); regenerating it.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def _save(path: Path, key: str, arrays: Arrays) -> None:
    """Write ``arrays`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    atomic_write(path, lambda handle: np.savez(handle, content_key=np.array(key), **arrays))


def cached_arrays(
    kind: str,
    params: Mapping[str, Any],
    make: Callable[[], Arrays],
    check: Callable[[Arrays], bool] = lambda arrays: True,
) -> Arrays:
    """Load the arrays cached for ``params``, or make, save and return them.

    Args:
        kind: a readable prefix of the file name, e.g. "letters-train".
        params: every value that determines the content (JSON-serialisable).
        make: builds the arrays when there is no usable cached copy.
        check: returns False when loaded arrays have the wrong shapes or types.

    Returns:
        A dict of NumPy arrays, identical whether made now or loaded.
    """
    try:
        path = cache_path(kind, params)
    except OSError as err:  # TL_CACHE_DIR is a file or cannot be created: no cache, same data
        warnings.warn(f"{err}; continuing without the dataset cache.", RuntimeWarning, stacklevel=2)
        return make()
    key = content_key(params)
    if path.exists():
        arrays = _load(path, key, check)
        if arrays is not None:
            return arrays
    arrays = make()
    try:
        _save(path, key, arrays)
    except OSError as err:
        warnings.warn(
            f"could not write the dataset cache {path} ({err}); continuing without it. Set "
            "TL_CACHE_DIR to a writable folder to cache generated datasets.",
            RuntimeWarning,
            stacklevel=2,
        )
    return arrays
