"""Tests of the generated worlds, their cache, few-shot sets, rotation and handwritten digits."""

from __future__ import annotations

import dataclasses
import socket
from collections import Counter

import numpy as np
import pytest
import torch

import tlhelpers.data.worlds as worlds
from tlhelpers.data import (
    GREEK,
    HELDOUT_FONTS,
    LETTERS,
    ROTATION_CLASSES,
    TEXTURE_CLASSES,
    TRAIN_FONTS,
    ImageSet,
    few_shot,
    few_shot_indices,
    glyph_world,
    handwritten_digits,
    letters,
    novel_target,
    rotation_task,
    textures,
)
from tlhelpers.settings import QUICK

TINY = dataclasses.replace(
    QUICK, source_images=60, source_val_images=26, target_pool_per_class=6, target_test_images=30
)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))


def _cache_files(tmp_path):
    return sorted((tmp_path / "cache" / "worlds").iterdir())


def _rows(data: ImageSet) -> set[bytes]:
    return {img.numpy().tobytes() for img in data.images}


# --- shapes and determinism ----------------------------------------------------------------


def test_letters_shapes_dtypes_and_labels():
    train, val = letters("train", TINY), letters("val", TINY)
    assert train.images.shape == (60, 3, 32, 32) and train.images.dtype == torch.uint8
    assert train.labels.dtype == torch.int64 and len(val) == 26
    assert train.classes == LETTERS and train.name == "letters/train"
    assert int(train.labels.min()) >= 0 and int(train.labels.max()) < 26
    assert torch.bincount(val.labels, minlength=26).tolist() == [1] * 26  # balanced


def test_textures_shapes_and_balance():
    data = textures("train", TINY)
    assert data.images.shape == (60, 3, 32, 32) and data.classes == TEXTURE_CLASSES
    assert torch.bincount(data.labels, minlength=12).tolist() == [5] * 12
    assert textures("val", TINY).name == "textures/val"


def test_same_seed_same_world_and_other_seed_differs(tmp_path, monkeypatch):
    first = letters("train", TINY, seed=0)
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "elsewhere"))  # regenerate, no cache
    again = letters("train", TINY, seed=0)
    other = letters("train", TINY, seed=1)
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)
    assert not torch.equal(first.images, other.images)


def test_datasets_never_share_images():
    target = novel_target("digits", TINY)
    sets = [letters("train", TINY), letters("val", TINY), target.pool, target.test]
    sets.append(novel_target("digits", TINY, seed=1).pool)
    rows = [_rows(s) for s in sets]
    for i in range(len(rows)):
        assert len(rows[i]) == len(sets[i])  # no repeats inside a set
        for j in range(i):
            assert not rows[i] & rows[j], (sets[i].name, sets[j].name)


# --- cache -------------------------------------------------------------------------------


def test_cache_hit_returns_identical_data_without_rendering(tmp_path, monkeypatch):
    first = letters("val", TINY)
    files = _cache_files(tmp_path)
    assert len(files) == 1 and files[0].suffix == ".npz" and files[0].name.startswith("letters")

    def fail(*args, **kwargs):
        raise AssertionError("rendered again despite a cached copy")

    monkeypatch.setattr(worlds, "render_glyphs", fail)
    again = letters("val", TINY)
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)


def test_cache_key_depends_on_every_parameter(tmp_path):
    letters("val", TINY)
    letters("val", TINY, seed=1)
    letters("val", dataclasses.replace(TINY, source_val_images=27))
    letters("val", TINY, style=dataclasses.replace(worlds.SOURCE_STYLE, rotation=5.0))
    assert len(_cache_files(tmp_path)) == 4


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_damaged_cache_file_is_regenerated(tmp_path, damage):
    first = textures("val", TINY)
    (path,) = _cache_files(tmp_path)
    content = path.read_bytes()
    broken = {"garbage": b"not a numpy file", "truncated": content[: len(content) // 2]}
    path.write_bytes(broken.get(damage, b""))
    with pytest.warns(RuntimeWarning, match="regenerating"):
        again = textures("val", TINY)
    assert torch.equal(first.images, again.images)
    assert _cache_files(tmp_path) == [path]  # rewritten in place, no temporary files left
    assert path.read_bytes() == content


def test_cache_file_with_wrong_shapes_is_regenerated(tmp_path):
    first = textures("val", TINY)
    (path,) = _cache_files(tmp_path)
    with np.load(path) as stored:
        key = stored["content_key"]
    np.savez(
        path.with_suffix(""),
        content_key=key,
        images=np.zeros((1, 3, 32, 32), np.uint8),
        labels=np.zeros(1, np.int64),
    )
    with pytest.warns(RuntimeWarning, match="regenerating"):
        again = textures("val", TINY)
    assert torch.equal(first.images, again.images)


# --- novel targets and few-shot ----------------------------------------------------------


@pytest.mark.parametrize("name", ["digits", "greek"])
def test_novel_target_sizes(name):
    target = novel_target(name, TINY)
    assert target.classes == target.test.classes and len(target.classes) == 10
    assert torch.bincount(target.pool.labels, minlength=10).tolist() == [6] * 10
    assert len(target.test) == 30 and target.test.images.shape[1:] == (3, 32, 32)
    if name == "greek":
        assert target.classes == GREEK


def test_fonts_used_by_sources_and_targets(monkeypatch):
    used: dict[str, set[str]] = {}
    real = worlds.render_glyphs

    def spy(labels, variants, fonts, style, rng, size=32):
        used.setdefault("".join(variants), set()).update(fonts)
        return real(labels, variants, fonts, style, rng, size)

    monkeypatch.setattr(worlds, "render_glyphs", spy)
    letters("val", TINY)
    novel_target("digits", TINY)
    novel_target("greek", TINY)
    letter_fonts = used["".join(worlds.LETTER_VARIANTS)]
    assert letter_fonts == set(TRAIN_FONTS)
    assert used["0123456789"] == set(HELDOUT_FONTS)
    assert len(used["".join(GREEK)]) == 6 and used["".join(GREEK)] <= set(HELDOUT_FONTS)


def test_few_shot_is_balanced_seeded_and_nested():
    pool = novel_target("digits", TINY).pool
    five = few_shot(pool, 5, seed=0)
    assert len(five) == 50 and torch.bincount(five.labels).tolist() == [5] * 10
    assert torch.equal(five.images, few_shot(pool, 5, seed=0).images)
    assert not torch.equal(five.images, few_shot(pool, 5, seed=1).images)
    two = few_shot(pool, 2, seed=0)
    assert torch.equal(five.images[:20], two.images)  # larger k keeps the smaller set
    assert _rows(five) <= _rows(pool)
    rows = few_shot_indices(pool, 5, seed=0)
    assert torch.equal(pool.images[rows], five.images) and len(set(rows.tolist())) == 50


@pytest.mark.parametrize("k", [0, 7, -1])
def test_few_shot_rejects_impossible_k(k):
    pool = novel_target("digits", TINY).pool
    with pytest.raises(ValueError, match=rf"k={k}.* 6 images.*1 <= k <= 6"):
        few_shot(pool, k, seed=0)


# --- rotation ----------------------------------------------------------------------------


def test_rotation_task_labels_match_rotation():
    base = letters("val", TINY)
    task = rotation_task(base, seed=0)
    assert task.classes == ROTATION_CLASSES and len(task) == len(base)
    assert set(task.labels.tolist()) == {0, 1, 2, 3}
    for img, turns, original in zip(task.images, task.labels, base.images, strict=True):
        assert torch.equal(torch.rot90(img, -int(turns), dims=(-2, -1)), original)
    assert torch.equal(task.labels, rotation_task(base, seed=0).labels)
    assert not torch.equal(task.labels, rotation_task(base, seed=1).labels)


# --- handwritten digits ------------------------------------------------------------------


def test_handwritten_split_is_a_stratified_partition(monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    train, test, everything = (handwritten_digits(s) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(everything)) == (898, 899, 1797)
    assert train.images.shape[1:] == (3, 32, 32) and train.images.dtype == torch.uint8
    assert torch.equal(train.images[:, 0], train.images[:, 2])  # grey over three channels
    rows = Counter(_rows_list(train)) + Counter(_rows_list(test))
    assert rows == Counter(_rows_list(everything))
    counts = torch.bincount(train.labels, minlength=10) - torch.bincount(test.labels, minlength=10)
    assert counts.abs().max() <= 1
    other = handwritten_digits("train", seed=1)
    assert not torch.equal(other.images, train.images)


def _rows_list(data: ImageSet) -> list[bytes]:
    return [
        img.numpy().tobytes() + bytes([int(y)])
        for img, y in zip(data.images, data.labels, strict=True)
    ]


# --- errors name the bad value -----------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: letters("test", TINY), "'test'"),
        (lambda: textures("training", TINY), "'training'"),
        (lambda: novel_target("kanji", TINY), "'kanji'"),
        (lambda: letters("train", "medium"), "'medium'"),
        (lambda: letters("train", TINY, seed=-1), "seed=-1"),
        (lambda: letters("train", dataclasses.replace(TINY, source_images=0)), "source_images=0"),
        (lambda: textures("val", dataclasses.replace(TINY, source_val_images=-5)), "=-5"),
        (
            lambda: novel_target("digits", dataclasses.replace(TINY, target_pool_per_class=0)),
            "target_pool_per_class=0",
        ),
        (
            lambda: novel_target("greek", dataclasses.replace(TINY, target_test_images=0)),
            "target_test_images=0",
        ),
        (lambda: glyph_world("w", "s", 5, classes=("a",), fonts=("Arial",)), "'Arial'"),
        (lambda: glyph_world("w", "s", 5, classes=("Ж", "Γ"), fonts=("cmr10",)), "Ж"),
        (lambda: glyph_world("w", "s", 0, classes=("a",), fonts=TRAIN_FONTS), "n=0"),
        (lambda: handwritten_digits("val"), "'val'"),
        (lambda: glyph_world("a/b", "s", 5, classes=("a",), fonts=TRAIN_FONTS), "'a/b'"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_value(call, named):
    with pytest.raises(ValueError, match=named):
        call()


def test_a_cache_folder_that_is_a_file_warns_and_the_world_is_still_made(tmp_path, monkeypatch):
    blocker = tmp_path / "cache-file"
    blocker.write_text("")
    monkeypatch.setenv("TL_CACHE_DIR", str(blocker))
    with pytest.warns(RuntimeWarning, match="TL_CACHE_DIR.*computing without a cache"):
        data = letters("val", TINY)
    assert len(data) == TINY.source_val_images
