"""The one cache behaviour (tlhelpers.cache): hits are read, any damaged entry is recomputed, an
unwritable folder or a failed write only warns, and the folder is checked before the work."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import tlhelpers.cache as cache_module
from tlhelpers.cache import load_or_compute
from tlhelpers.data.cache import cached_arrays
from tlhelpers.features import extract_features
from tlhelpers.models import SmallCNN
from tlhelpers.settings import cache_dir

ARRAY = np.arange(12, dtype=np.float32).reshape(4, 3)


class Counter:
    """A compute function that counts its calls and notes how many warnings ``log`` held then."""

    def __init__(
        self,
        value: np.ndarray | dict[str, np.ndarray] = ARRAY,
        log: list[warnings.WarningMessage] | None = None,
    ) -> None:
        self.value = value
        self.log = log if log is not None else []
        self.calls = 0
        self.warnings_before: list[int] = []

    def __call__(self) -> np.ndarray | dict[str, np.ndarray]:
        self.calls += 1
        self.warnings_before.append(len(self.log))
        return self.value


def _no_warnings(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return function(*args, **kwargs)


def test_miss_then_hit(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.npy"
    compute = Counter()
    first = _no_warnings(load_or_compute, lambda: path, compute)
    again = _no_warnings(load_or_compute, lambda: path, compute)
    assert compute.calls == 1 and path.exists()
    assert np.array_equal(first, ARRAY) and np.array_equal(again, ARRAY)
    assert not list(path.parent.glob(".*.tmp"))


def test_a_dict_of_arrays_round_trips_as_npz(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    value = {"images": np.ones((2, 3), np.uint8), "labels": np.arange(2)}
    compute = Counter(value)
    load_or_compute(lambda: path, compute)
    loaded = _no_warnings(load_or_compute, lambda: path, compute)
    assert compute.calls == 1 and list(loaded) == ["images", "labels"]
    assert all(np.array_equal(loaded[k], value[k]) for k in value)


def _pickle_npy(path: Path) -> None:
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)


def _npz_named_npy(path: Path) -> None:
    with open(path, "wb") as handle:
        np.savez(handle, x=ARRAY)


DAMAGE = {
    "empty": lambda path, good: path.write_bytes(b""),
    "truncated": lambda path, good: path.write_bytes(good[: len(good) // 2]),
    "header only": lambda path, good: path.write_bytes(good[:128]),
    "garbage": lambda path, good: path.write_bytes(b"not a numpy file at all"),
    "a pickle": lambda path, good: _pickle_npy(path),
    "an npz": lambda path, good: _npz_named_npy(path),
    "wrong shape": lambda path, good: np.save(path, ARRAY[:2]),
    "not finite": lambda path, good: np.save(path, ARRAY * np.nan),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_any_damaged_entry_is_recomputed_and_replaced(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "a.npy"
    compute = Counter()
    check = cache_module.finite_rows(4)
    load_or_compute(lambda: path, compute, check=check)
    good = path.read_bytes()
    DAMAGE[damage](path, good)
    with pytest.warns(RuntimeWarning, match=f"{path.name}.*regenerating"):
        again = load_or_compute(lambda: path, compute, check=check)
    assert np.array_equal(again, ARRAY) and compute.calls == 2
    assert path.read_bytes() == good  # replaced by the good entry
    assert _no_warnings(load_or_compute, lambda: path, compute, check=check) is not None
    assert compute.calls == 2


UNUSABLE = ["a file", "a read-only folder"]


def _unusable_cache_dir(root: Path, where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point TL_CACHE_DIR at ``root``, made a file or a read-only folder.

    Root ignores permissions, so then the probe write is refused instead; pytest's clean-up of
    temporary folders copes with the permissions left behind.
    """
    monkeypatch.setenv("TL_CACHE_DIR", str(root))
    if where == "a file":
        root.write_text("not a folder")
        return
    root.mkdir(parents=True)
    root.chmod(0o555)
    if os.geteuid() == 0:
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(root))

        monkeypatch.setattr(cache_module.tempfile, "TemporaryFile", refuse)


@pytest.mark.parametrize("where", UNUSABLE)
def test_unusable_cache_dir_warns_before_the_work_and_carries_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    _unusable_cache_dir(tmp_path / "cache", where, monkeypatch)
    with warnings.catch_warnings(record=True) as log:
        warnings.simplefilter("always")
        compute = Counter(log=log)
        result = load_or_compute(lambda: cache_dir() / "features" / "a.npy", compute)
    assert np.array_equal(result, ARRAY) and compute.calls == 1
    assert compute.warnings_before == [1]  # checked before computing, not after
    (message,) = [str(w.message) for w in log]
    assert "TL_CACHE_DIR" in message and "computing without a cache" in message


def test_failed_write_warns_and_returns_the_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(path, write):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module, "atomic_write", full_disk)
    with pytest.warns(RuntimeWarning, match="could not write.*No space.*TL_CACHE_DIR"):
        result = load_or_compute(lambda: tmp_path / "a.npy", Counter())
    assert np.array_equal(result, ARRAY)


# --- the three caches behave alike ---------------------------------------------------------------


@pytest.fixture
def net() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN(5, widths=(8, 8, 16, 16)).eval()


IMAGES = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator())


def test_zero_byte_feature_cache_is_recomputed(net: SmallCNN, tmp_path: Path) -> None:
    good = extract_features(net, IMAGES, cache=tmp_path)
    (path,) = tmp_path.glob("*.npy")
    path.write_bytes(b"")
    with pytest.warns(RuntimeWarning, match="regenerating"):
        again = extract_features(net, IMAGES, cache=tmp_path)
    assert np.array_equal(again, good) and np.array_equal(np.load(path), good)


@pytest.mark.parametrize("where", UNUSABLE)
def test_features_and_worlds_carry_on_when_tl_cache_dir_is_unusable(
    net: SmallCNN, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    expected = extract_features(net, IMAGES, cache=False)
    _unusable_cache_dir(tmp_path / "cache", where, monkeypatch)
    with pytest.warns(RuntimeWarning, match="TL_CACHE_DIR.*or pass cache=False"):
        assert np.array_equal(extract_features(net, IMAGES), expected)
    with pytest.warns(RuntimeWarning, match="TL_CACHE_DIR"):
        arrays = cached_arrays("tiny", {"n": 1}, lambda: {"x": np.arange(3)})
    assert np.array_equal(arrays["x"], np.arange(3)) and list(arrays) == ["x"]


def test_an_explicit_unwritable_folder_names_the_argument(
    net: SmallCNN, tmp_path: Path
) -> None:
    folder = tmp_path / "a-file"
    folder.write_text("")
    with pytest.warns(RuntimeWarning, match="pass cache= a writable folder"):
        extract_features(net, IMAGES, cache=folder)
