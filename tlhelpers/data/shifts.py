"""Domain shifts for notebook 06: the same ten digits, drawn from two different distributions.

* ``"textured"`` — clean → textured (MNIST-M style, Ganin et al. 2016): the source is rendered
  digits, light ink on a dark background; the target is *other* renders of the same kind blended
  with patches of photographs, ``|digit − patch|`` per pixel and channel. The photographs are the
  two sample images that ship inside scikit-learn (``china.jpg``, ``flower.jpg``), so nothing is
  downloaded.
* ``"handwritten"`` — synthetic → real: rendered digits (half of them passed through 8×8 pixels,
  which blurs them like the target) → scikit-learn's real handwritten digits.

:func:`domain_shift` returns a :class:`DomainShift`: a labelled source training set, an
unlabelled target training set (its labels are kept only for the oracle and for plots), and a
labelled target test set. Every set is cached like the other worlds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from tlhelpers.data.cache import cached_arrays
from tlhelpers.data.fonts import HELDOUT_FONTS, TRAIN_FONTS, fonts_with
from tlhelpers.data.glyphs import DIGITS, GlyphStyle
from tlhelpers.data.handwritten import handwritten_digits
from tlhelpers.data.imageset import ImageSet
from tlhelpers.data.worlds import glyph_world, random_stream

__all__ = ["SHIFTS", "DomainShift", "domain_shift"]

SHIFTS = ("textured", "handwritten")
_CLEAN_DIGITS = GlyphStyle(colour="light-on-dark", texture_prob=0.0, noise=0.03)
"""Source style: light ink on a dark, untextured background, like MNIST."""
_BLURRY_DIGITS = dataclasses.replace(_CLEAN_DIGITS, lowres_prob=0.5)


@dataclass(frozen=True)
class DomainShift:
    """One shift: labelled source, unlabelled target (labels only for the oracle), target test."""

    name: str
    source: ImageSet
    target: ImageSet
    target_test: ImageSet
    source_test: ImageSet


def _photos() -> list[np.ndarray]:
    """scikit-learn's two bundled sample photographs as float32 (3, H, W) arrays in [0, 1]."""
    from sklearn.datasets import load_sample_images  # slow import, used here only

    return [
        np.ascontiguousarray(im.transpose(2, 0, 1), np.float32) / 255
        for im in load_sample_images().images
    ]


def _blend_with_photos(images: ImageSet, seed: int = 0) -> ImageSet:
    """MNIST-M style: each image becomes ``|image − random photo patch|`` (per pixel, channel).

    Args:
        images: uint8 (N, 3, S, S) images, e.g. light digits on a dark background.
        seed: picks the photo and the patch position for every image.

    Returns:
        A new ImageSet, same labels, named ``images.name + "+photos"``; cached on disk.
    """
    size = images.images.shape[-1]
    params = {
        "of": images.name,
        "n": len(images),
        "seed": seed,
        "size": size,
        "first": images.images[:4].sum().item(),
        "version": 1,
    }

    def make() -> dict[str, np.ndarray]:
        rng = random_stream("photo-blend", images.name, seed)
        photos = _photos()
        x = images.images.numpy().astype(np.float32) / 255
        out = np.empty_like(x)
        which = rng.integers(0, len(photos), len(x))
        for i, p in enumerate(which):
            photo = photos[p]
            r = rng.integers(0, photo.shape[1] - size + 1)
            c = rng.integers(0, photo.shape[2] - size + 1)
            out[i] = np.abs(x[i] - photo[:, r : r + size, c : c + size])
        return {"images": np.round(out * 255).astype(np.uint8), "labels": images.labels.numpy()}

    arrays = cached_arrays(
        "photo-blend", params, make, lambda a: a["images"].shape == (len(images), 3, size, size)
    )
    return ImageSet(
        torch.from_numpy(arrays["images"]),
        images.labels.clone(),
        images.classes,
        images.name + "+photos",
    )


def domain_shift(
    name: str,
    *,
    source_images: int = 6_000,
    target_images: int = 3_000,
    test_images: int = 1_000,
    seed: int = 0,
) -> DomainShift:
    """The shift called ``name`` ("textured" or "handwritten"), sized as asked.

    For "handwritten" the target sets are scikit-learn's digits (898 training, 899 test
    images), so ``target_images`` and ``test_images`` are ignored.
    """
    if name not in SHIFTS:
        raise ValueError(
            f"name={name!r} is not a shift; valid choices: {', '.join(repr(s) for s in SHIFTS)}."
        )
    for what, value in (
        ("source_images", source_images),
        ("target_images", target_images),
        ("test_images", test_images),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 10:
            raise ValueError(f"{what}={value!r} must be an integer of at least 10, e.g. 1000.")
    fonts = fonts_with(DIGITS, TRAIN_FONTS + HELDOUT_FONTS)

    def render(world: str, split: str, n: int, style: GlyphStyle) -> ImageSet:
        return glyph_world(world, split, n, classes=DIGITS, fonts=fonts, style=style, seed=seed)

    if name == "textured":
        source = render("da-digits", "source", source_images, _CLEAN_DIGITS)
        source_test = render("da-digits", "source-test", test_images, _CLEAN_DIGITS)
        target = _blend_with_photos(
            render("da-digits", "target", target_images, _CLEAN_DIGITS), seed
        )
        target_test = _blend_with_photos(
            render("da-digits", "test", test_images, _CLEAN_DIGITS), seed
        )
    else:
        source = render("da-blurry-digits", "source", source_images, _BLURRY_DIGITS)
        source_test = render("da-blurry-digits", "source-test", test_images, _BLURRY_DIGITS)
        target, target_test = handwritten_digits("train", seed), handwritten_digits("test", seed)
    return DomainShift(name, source, target, target_test, source_test)
