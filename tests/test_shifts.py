"""Domain shifts of notebook 06: sizes, labels, the MNIST-M style blend, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tlhelpers.data.imageset import ImageSet
from tlhelpers.data.shifts import _blend_with_photos, _photos, domain_shift


@pytest.fixture(scope="module")
def textured():
    return domain_shift("textured", source_images=40, target_images=30, test_images=20)


def test_textured_shift_sizes_and_shared_classes(textured) -> None:
    assert (len(textured.source), len(textured.target), len(textured.target_test)) == (40, 30, 20)
    assert len(textured.source_test) == 20
    for part in (textured.source, textured.target, textured.target_test):
        assert part.images.dtype == torch.uint8 and part.images.shape[1:] == (3, 32, 32)
        assert part.classes == tuple("0123456789")
    assert torch.bincount(textured.source.labels, minlength=10).min() >= 3


def test_blend_is_the_absolute_difference_with_a_photo_patch() -> None:
    """Every blended image equals |digit − patch| for some patch of one of the two photos."""
    images = torch.zeros(3, 3, 32, 32, dtype=torch.uint8)  # black digits: result = the patch
    images[1] = 255  # white: result = 255 − patch
    blended = _blend_with_photos(
        ImageSet(images, torch.arange(3), tuple("012"), "blend-test"), seed=5
    )
    photos = [np.round(p * 255) for p in _photos()]
    patch = blended.images[0].numpy().astype(np.float64)
    inverse = 255 - blended.images[1].numpy().astype(np.float64)
    for candidate in (patch, inverse):
        found = False
        for photo in photos:
            hits = np.argwhere(
                np.all(np.abs(photo[:, :-31, :-31] - candidate[:, :1, :1]) <= 1, axis=0)
            )
            for r, c in hits[:2000]:
                if np.abs(photo[:, r : r + 32, c : c + 32] - candidate).max() <= 1:
                    found = True
                    break
            if found:
                break
        assert found
    assert blended.labels.tolist() == [0, 1, 2] and blended.name == "blend-test+photos"


def test_shift_is_deterministic_and_cached(textured) -> None:
    again = domain_shift("textured", source_images=40, target_images=30, test_images=20)
    assert torch.equal(again.target.images, textured.target.images)
    other = domain_shift("textured", source_images=40, target_images=30, test_images=20, seed=1)
    assert not torch.equal(other.target.images, textured.target.images)


def test_handwritten_shift_uses_the_real_digits() -> None:
    shift = domain_shift("handwritten", source_images=40)
    assert (len(shift.target), len(shift.target_test)) == (898, 899)
    assert shift.target.name.startswith("handwritten")


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="'mnist-m' is not a shift; valid choices"):
        domain_shift("mnist-m")
    with pytest.raises(ValueError, match="source_images=5"):
        domain_shift("textured", source_images=5)
