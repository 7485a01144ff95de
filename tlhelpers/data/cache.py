"""On-disk cache of generated datasets, keyed by everything that determines their content.

A dataset is stored as an uncompressed ``.npz`` of uint8 images and int64 labels under
``cache_dir()/worlds/``. Its file name carries a sha256 of every parameter that shapes the
pixels (sizes, seed, fonts, style, the renderers' version, library versions), so changing any of
them makes a new file instead of reusing a stale one. Files are written to a temporary name in
the same folder and then renamed, so a crash never leaves a half-written file under the real
name; a file that cannot be read back anyway is regenerated with a warning, and an unwritable
cache folder warns and the dataset is generated without being stored (the behaviour of every
cache of the course: :mod:`tlhelpers.cache`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import PIL

from tlhelpers.cache import CACHE_FIX, load_or_compute
from tlhelpers.paths import cache_dir

__all__ = ["cached_arrays"]

_RENDER_VERSION = 1  # bump whenever a renderer changes what it draws

Arrays = dict[str, np.ndarray]


def _content_key(params: Mapping[str, Any]) -> str:
    """sha256 (hex) of ``params`` plus the render version and the rendering libraries' versions."""
    full = {
        **params,
        "render_version": _RENDER_VERSION,
        "numpy": np.__version__.split(".")[0],
        "pillow": PIL.__version__,
        "matplotlib": matplotlib.__version__,
    }
    text = json.dumps(full, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _cache_path(kind: str, params: Mapping[str, Any]) -> Path:
    """Cache file of the dataset described by ``params``: ``…/worlds/{kind}-{key}.npz``."""
    return cache_dir() / "worlds" / f"{kind}-{_content_key(params)[:24]}.npz"


def cached_arrays(
    kind: str,
    params: Mapping[str, Any],
    make: Callable[[], Arrays],
    check: Callable[[Arrays], bool] = lambda arrays: True,
) -> Arrays:
    """Load the arrays cached for ``params``, or make, save and return them.

    A damaged file is regenerated and an unwritable cache folder only warns; see
    :func:`tlhelpers.cache.load_or_compute`.

    Args:
        kind: a readable prefix of the file name, e.g. "letters-train".
        params: every value that determines the content (JSON-serialisable).
        make: builds the arrays when there is no usable cached copy.
        check: returns False when loaded arrays have the wrong shapes or types.

    Returns:
        A dict of NumPy arrays, identical whether made now or loaded.
    """
    key = _content_key(params)

    def matches(stored: Arrays) -> bool:
        arrays = {name: value for name, value in stored.items() if name != "content_key"}
        return str(stored.get("content_key", "")) == key and check(arrays)

    stored = load_or_compute(
        lambda: _cache_path(kind, params),
        lambda: {"content_key": np.array(key), **make()},
        check=matches,
        fix=f"{CACHE_FIX} to cache generated datasets",
    )
    return {name: value for name, value in stored.items() if name != "content_key"}
