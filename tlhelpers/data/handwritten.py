"""Real handwritten digits, offline: scikit-learn's bundled 8×8 digits, upsampled to 32×32.

scikit-learn ships the 1,797 images of the UCI optical digits set inside the package
(``sklearn/datasets/data/digits.csv.gz``), so :func:`handwritten_digits` never touches the
network. Pixels (0–16, bright ink on a dark background) are scaled to 0–255, upsampled
bilinearly to 32×32 and repeated over three channels. A fixed, seeded, stratified half/half
split gives 898 training and 899 test images.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from tlhelpers.data.glyphs import DIGITS
from tlhelpers.data.imageset import ImageSet

__all__ = ["HANDWRITTEN_SPLITS", "handwritten_digits"]

HANDWRITTEN_SPLITS = ("train", "test", "all")


def _upsampled(images_8x8: np.ndarray, size: int) -> torch.Tensor:
    """(N, 8, 8) values 0–16 to uint8 (N, 3, size, size), bilinear, grey over 3 channels."""
    x = torch.from_numpy(images_8x8.astype(np.float32) * (255.0 / 16.0))[:, None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()


def handwritten_digits(split: str, seed: int = 0, size: int = 32) -> ImageSet:
    """scikit-learn's handwritten digits as an ImageSet.

    Args:
        split: "train" (898 images), "test" (899) or "all" (1,797, in the original order).
        seed: seed of the stratified half/half split.
        size: output side in pixels.

    Returns:
        ImageSet of uint8 (N, 3, size, size) images, classes "0".."9", named
        ``f"handwritten/{split}"``.
    """
    if split not in HANDWRITTEN_SPLITS:
        raise ValueError(
            f"split={split!r} is not understood; valid choices: "
            f'{", ".join(repr(s) for s in HANDWRITTEN_SPLITS)}. Use split="train" or '
            'split="test".'
        )
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer, e.g. seed=0.")
    if not isinstance(size, int) or size < 8:
        raise ValueError(f"size={size!r} must be an integer of at least 8, e.g. size=32.")
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    labels = digits.target.astype(np.int64)
    index = np.arange(len(labels))
    if split != "all":
        train, test = train_test_split(index, test_size=0.5, stratify=labels, random_state=seed)
        index = np.sort(train if split == "train" else test)
    images = _upsampled(digits.images[index], size)
    return ImageSet(images, torch.from_numpy(labels[index]), DIGITS, f"handwritten/{split}")
