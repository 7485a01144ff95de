"""On-disk cache of computed arrays, in a file named by a fingerprint of what determines them.

Generated worlds (:mod:`tlhelpers.data.cache`), image features
(:func:`tlhelpers.features.extract_features`) and sentence embeddings
(:func:`tlhelpers.text.encode_texts`) all go through :func:`load_or_compute`, so they all act
the same way. A cache only saves time, so it never stops the work:

- **hit**: a usable file is read and returned; nothing is computed (a read-only cache folder is
  fine for this);
- **unusable entry**: a file that cannot be read back as the expected arrays, whatever the
  damage (zero bytes, truncated, not a NumPy file, a pickle, wrong shapes, another key), is
  recomputed and replaced, with a ``RuntimeWarning``;
- **unusable folder**: before computing, the folder is created and a write is tried; when that
  fails (``TL_CACHE_DIR`` names a file, a read-only folder), a ``RuntimeWarning`` says which
  setting to change and the arrays are computed without being stored;
- **write**: atomic (:func:`tlhelpers.files.atomic_write`), so a reader never sees half a file;
  if it fails anyway (a full disk), a ``RuntimeWarning`` and the result is still returned.

A single array is stored as ``.npy``, a dict of arrays as an uncompressed ``.npz``; neither is
ever unpickled.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import numpy as np

from tlhelpers.files import atomic_write
from tlhelpers.paths import cache_dir

__all__ = ["CACHE_FIX", "cache_argument_fix", "finite_rows", "load_or_compute", "spec_path"]

CACHE_FIX = "set TL_CACHE_DIR to a writable folder"  # what a warning tells the user to do

Arrays = TypeVar("Arrays", np.ndarray, dict[str, np.ndarray])


def load_or_compute(
    locate: Callable[[], Path],
    compute: Callable[[], Arrays],
    *,
    check: Callable[[Arrays], bool] = lambda arrays: True,
    fix: str = CACHE_FIX,
) -> Arrays:
    """The arrays cached at ``locate()``, or ``compute()``'s, stored there for the next call.

    Args:
        locate: gives the cache file (``.npy`` for one array, ``.npz`` for a dict of arrays);
            called first, and an error in it (a folder that cannot be created) only warns.
        compute: makes the arrays when there is no usable cached copy.
        check: False when loaded arrays are not what ``compute`` would give (shapes, a key).
        fix: what the warnings tell the user to change, e.g. "pass cache=False".

    Returns:
        The arrays, identical whether computed now or loaded.
    """
    try:
        path = locate()
    except OSError as err:
        _warn(f"the cache folder cannot be used ({err}); computing without a cache: {fix}.")
        return compute()
    if path.exists():
        arrays = _read(path, check)
        if arrays is not None:
            return arrays
    problem = _unwritable(path.parent)
    if problem is not None:
        _warn(
            f"the cache folder {path.parent} is not writable ({problem}); computing without "
            f"a cache: {fix}."
        )
        return compute()
    arrays = compute()
    try:
        atomic_write(path, lambda handle: _write(handle, path, arrays))
    except OSError as err:
        _warn(f"could not write the cache file {path} ({err}); continuing without it: {fix}.")
    return arrays


def spec_path(
    spec: Mapping[str, Any], *, prefix: str, folder: str, directory: str | Path | None
) -> Path:
    """``{directory or cache_dir()/folder}/{prefix}-{key}.npy``, key: sha256 of ``spec`` (JSON)."""
    key = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]
    root = Path(directory) if directory is not None else cache_dir() / folder
    return root / f"{prefix}-{key}.npy"


def cache_argument_fix(cache: object) -> str:
    """The ``fix`` for a function's ``cache=`` argument: True (``TL_CACHE_DIR``) or a folder."""
    if cache is True:
        return f"{CACHE_FIX}, or pass cache=False"
    return f"pass cache= a writable folder instead of {str(cache)!r}, or cache=False"


def finite_rows(n: int) -> Callable[[np.ndarray], bool]:
    """A ``check``: the cached array is a finite (n, D) matrix, one row per input."""
    return lambda array: array.ndim == 2 and array.shape[0] == n and bool(np.isfinite(array).all())


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=4)


def _read(path: Path, check: Callable[[Arrays], bool]) -> Arrays | None:
    """The arrays in ``path``, or None (with a warning) when the file is unusable in any way."""
    try:
        arrays = _load(path)
        if check(arrays):
            return arrays
        reason: object = "its contents do not match what was asked for"
    except Exception as err:  # any damage at all means: compute it again
        reason = err
    _warn(f"cached file {path} cannot be used ({reason}); regenerating it.")
    return None


def _load(path: Path) -> np.ndarray | dict[str, np.ndarray]:
    """A ``.npz`` as a dict of arrays, anything else as one array; pickles are refused."""
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as stored:
            return {name: stored[name] for name in stored.files}
    with open(path, "rb") as handle:
        return np.lib.format.read_array(handle, allow_pickle=False)


def _write(handle: BinaryIO, path: Path, arrays: np.ndarray | dict[str, np.ndarray]) -> None:
    if path.suffix == ".npz":
        np.savez(handle, **arrays)
    else:
        np.save(handle, arrays, allow_pickle=False)


def _unwritable(folder: Path) -> OSError | None:
    """Why no file can be written in ``folder`` (created if missing), or None when one can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        return err
    return None
