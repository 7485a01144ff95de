"""The course's offline image worlds: sources to pretrain on and novel-class targets.

Sources: :func:`letters` (26 Latin letters, either case, 14 training fonts) and
:func:`textures` (12 procedural texture classes, a deliberately unlike world).
Targets: :func:`novel_target` ("digits" or "greek") drawn in 8 held-out fonts never used for
pretraining, as a labelled pool to take k-shot sets from and a fixed test set.

Every dataset has its own random stream derived from (world, split, seed), so images never
repeat across datasets, and is cached on disk (see :mod:`tlhelpers.data.cache`). Sizes come
from a :class:`~tlhelpers.settings.Profile`; shrink them with
``dataclasses.replace(QUICK, source_images=200)``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from tlhelpers.data.cache import cached_arrays
from tlhelpers.data.fonts import HELDOUT_FONTS, TRAIN_FONTS, check_fonts, fonts_with
from tlhelpers.data.glyphs import (
    DIGITS,
    GREEK,
    LETTER_VARIANTS,
    LETTERS,
    SOURCE_STYLE,
    TARGET_STYLE,
    GlyphStyle,
    render_glyphs,
)
from tlhelpers.data.imageset import ImageSet
from tlhelpers.data.patterns import TEXTURE_CLASSES, render_textures
from tlhelpers.settings import Profile, get_profile

__all__ = [
    "TARGETS",
    "TargetWorld",
    "glyph_world",
    "letters",
    "novel_target",
    "random_stream",
    "textures",
]

TARGETS = ("digits", "greek")
_SOURCE_SPLITS = ("train", "val")
_TEXTURE_CHUNK = 2048


def _check_choice(what: str, value: object, choices: Sequence[str], fix: str) -> None:
    if value not in choices:
        raise ValueError(
            f"{what}={value!r} is not understood; valid choices: "
            f"{', '.join(repr(c) for c in choices)}. {fix}"
        )


def _check_count(what: str, value: object, fix: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{what}={value!r} must be a positive integer. {fix}")
    return int(value)


def _check_seed(seed: object) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer, e.g. seed=0.")
    return int(seed)


def random_stream(*key: str | int) -> np.random.Generator:
    """A NumPy generator of its own for ``key``, e.g. ``random_stream("letters", "train", 0)``.

    The key's text is hashed into a :class:`numpy.random.SeedSequence`, so different keys
    give independent streams and the same key always gives the same one.
    """
    digest = hashlib.sha256("/".join(str(k) for k in key).encode()).digest()
    words = np.frombuffer(digest, dtype=np.uint32)
    return np.random.default_rng(np.random.SeedSequence(words.tolist()))


def _balanced_labels(n: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """n labels in random order, each class appearing n // num_classes or one more times."""
    return rng.permutation(np.arange(n) % num_classes).astype(np.int64)


def _image_check(n: int, size: int, num_classes: int):
    """A check for cached arrays: n uint8 images of size×size and int64 labels in range."""

    def check(arrays: dict[str, np.ndarray]) -> bool:
        x, y = arrays.get("images"), arrays.get("labels")
        return (
            x is not None
            and y is not None
            and x.dtype == np.uint8
            and x.shape == (n, 3, size, size)
            and y.dtype == np.int64
            and y.shape == (n,)
            and (n == 0 or (y.min() >= 0 and y.max() < num_classes))
        )

    return check


def _as_imageset(arrays: dict[str, np.ndarray], classes: Sequence[str], name: str) -> ImageSet:
    return ImageSet(
        torch.from_numpy(arrays["images"]), torch.from_numpy(arrays["labels"]), tuple(classes), name
    )


def glyph_world(
    name: str,
    split: str,
    n: int,
    *,
    classes: Sequence[str],
    fonts: Sequence[str],
    style: GlyphStyle = SOURCE_STYLE,
    variants: Sequence[str] | None = None,
    seed: int = 0,
    size: int = 32,
) -> ImageSet:
    """A cached, class-balanced set of ``n`` rendered glyphs (the engine behind every glyph world).

    Args:
        name: world name; with ``split`` and ``seed`` it picks the random stream.
        split: a free label such as "train", "val", "pool" or "test".
        n: number of images.
        classes: class names; single characters unless ``variants`` is given.
        fonts: font names, each having every character drawn.
        style: the random style (see :class:`GlyphStyle`).
        variants: per class, the characters that stand for it (e.g. "aA"); default the names.
        seed: seed of the stream.
        size: image side in pixels.

    Returns:
        ImageSet of uint8 images (n, 3, size, size) named ``f"{name}/{split}"``.
    """
    for what, text in (("name", name), ("split", split)):
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(text)):
            raise ValueError(
                f"{what}={text!r} must be a short word of letters, digits, '_', '.' or '-' "
                f'(it becomes part of a file name), e.g. {what}="my-world".'
            )
    n = _check_count("n", n, "Ask for at least one image, e.g. n=200.")
    seed = _check_seed(seed)
    classes = tuple(classes)
    if not classes:
        raise ValueError(
            f"classes={classes!r} is empty; a world needs at least one class to draw, e.g. "
            "classes=DIGITS."
        )
    variants = tuple(variants if variants is not None else classes)
    if len(variants) != len(classes):
        raise ValueError(
            f"variants has {len(variants)} entries but classes has {len(classes)}; give one "
            "string of characters per class, e.g. variants=('aA', 'bB')."
        )
    check_fonts(variants, fonts)
    params = {
        "world": name,
        "split": split,
        "n": n,
        "seed": seed,
        "size": size,
        "classes": list(classes),
        "variants": list(variants),
        "fonts": list(fonts),
        "style": asdict(style),
    }

    def make() -> dict[str, np.ndarray]:
        rng = random_stream(name, split, seed)
        labels = _balanced_labels(n, len(classes), rng)
        images = render_glyphs(labels, variants, fonts, style, rng, size)
        return {"images": images, "labels": labels}

    arrays = cached_arrays(f"{name}-{split}", params, make, _image_check(n, size, len(classes)))
    return _as_imageset(arrays, classes, f"{name}/{split}")


def _source_size(split: str, profile: Profile) -> int:
    _check_choice("split", split, _SOURCE_SPLITS, 'Use split="train" or split="val".')
    field = "source_images" if split == "train" else "source_val_images"
    return _check_count(
        f"profile.{field}",
        getattr(profile, field),
        f"Use dataclasses.replace(profile, {field}=200) for a small world.",
    )


def letters(
    split: str, profile: str | Profile, seed: int = 0, *, style: GlyphStyle = SOURCE_STYLE
) -> ImageSet:
    """Latin letters a–z (either case, one label per letter) in the 14 training fonts.

    Args:
        split: "train" (``profile.source_images``) or "val" (``profile.source_val_images``).
        profile: "quick", "full" or a Profile.
        seed: seed of the world; each split has its own stream.
        style: rendering style (default :data:`SOURCE_STYLE`).

    Returns:
        ImageSet of uint8 (N, 3, 32, 32) images, 26 classes "a".."z".
    """
    profile = get_profile(profile)
    return glyph_world(
        "letters",
        split,
        _source_size(split, profile),
        classes=LETTERS,
        variants=LETTER_VARIANTS,
        fonts=TRAIN_FONTS,
        style=style,
        seed=seed,
        size=profile.image_size,
    )


def textures(split: str, profile: str | Profile, seed: int = 0) -> ImageSet:
    """Procedural textures of 12 classes (see :data:`TEXTURE_CLASSES`), a source unlike glyphs.

    Args:
        split: "train" (``profile.source_images``) or "val" (``profile.source_val_images``).
        profile: "quick", "full" or a Profile.
        seed: seed of the world; each split has its own stream.

    Returns:
        ImageSet of uint8 (N, 3, 32, 32) images, 12 balanced classes.
    """
    profile = get_profile(profile)
    n, size, seed = _source_size(split, profile), profile.image_size, _check_seed(seed)
    params = {
        "world": "textures",
        "split": split,
        "n": n,
        "seed": seed,
        "size": size,
        "classes": list(TEXTURE_CLASSES),
    }

    def make() -> dict[str, np.ndarray]:
        rng = random_stream("textures", split, seed)
        labels = _balanced_labels(n, len(TEXTURE_CLASSES), rng)
        images = np.empty((n, 3, size, size), np.uint8)
        for i in range(0, n, _TEXTURE_CHUNK):
            images[i : i + _TEXTURE_CHUNK] = render_textures(
                labels[i : i + _TEXTURE_CHUNK], rng, size
            )
        return {"images": images, "labels": labels}

    check = _image_check(n, size, len(TEXTURE_CLASSES))
    arrays = cached_arrays(f"textures-{split}", params, make, check)
    return _as_imageset(arrays, TEXTURE_CLASSES, f"textures/{split}")


@dataclass(frozen=True)
class TargetWorld:
    """A novel-class target: a labelled pool to draw k-shot sets from, and a fixed test set.

    Attributes:
        name: "digits" or "greek".
        pool: ``profile.target_pool_per_class`` images per class.
        test: ``profile.target_test_images`` images, classes balanced.
    """

    name: str
    pool: ImageSet
    test: ImageSet

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names of the target."""
        return self.pool.classes


def novel_target(
    name: str, profile: str | Profile, seed: int = 0, *, style: GlyphStyle = TARGET_STYLE
) -> TargetWorld:
    """Digits 0–9 or ten Greek capitals, rendered in fonts never used for pretraining.

    Args:
        name: "digits" (all 8 held-out fonts) or "greek" ("ΓΔΘΛΞΠΣΦΨΩ", the 6 held-out fonts
            that have them).
        profile: "quick", "full" or a Profile.
        seed: seed of the target; pool and test have their own streams.
        style: rendering style (default :data:`TARGET_STYLE`, slightly harder than the source's).

    Returns:
        TargetWorld with ``pool`` and ``test`` ImageSets of uint8 (N, 3, 32, 32) images.
    """
    _check_choice("name", name, TARGETS, 'Use name="digits" or name="greek".')
    profile = get_profile(profile)
    classes = DIGITS if name == "digits" else GREEK
    fonts = fonts_with(classes, HELDOUT_FONTS)
    per_class = _check_count(
        "profile.target_pool_per_class",
        profile.target_pool_per_class,
        "Use dataclasses.replace(profile, target_pool_per_class=20) for a small pool.",
    )
    n_test = _check_count(
        "profile.target_test_images",
        profile.target_test_images,
        "Use dataclasses.replace(profile, target_test_images=100) for a small test set.",
    )
    common = {
        "classes": classes,
        "fonts": fonts,
        "style": style,
        "seed": seed,
        "size": profile.image_size,
    }
    pool = glyph_world(name, "pool", per_class * len(classes), **common)
    test = glyph_world(name, "test", n_test, **common)
    return TargetWorld(name, pool, test)
