"""Tasks made from an existing ImageSet: k-shot subsets and self-supervised rotation.

:func:`few_shot` draws k labelled images per class from a target's pool (nested: a larger k
with the same seed keeps the smaller set); :func:`rotation_task` relabels images by a random
quarter-turn so a network can pretrain without any labels.
"""

from __future__ import annotations

import numpy as np
import torch

from tlhelpers.data.imageset import ImageSet
from tlhelpers.data.worlds import random_stream

__all__ = ["ROTATION_CLASSES", "few_shot", "few_shot_indices", "rotation_task"]

ROTATION_CLASSES = ("0°", "90°", "180°", "270°")


def _check_seed(seed: object) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer, e.g. seed=0.")
    return int(seed)


def few_shot_indices(pool: ImageSet, k: int, seed: int) -> np.ndarray:
    """Rows of ``pool`` that :func:`few_shot` picks: int64 array (k * num_classes,).

    Useful to index features computed once for the whole pool.
    """
    seed = _check_seed(seed)
    counts = torch.bincount(pool.labels, minlength=pool.num_classes)
    available = int(counts.min()) if len(counts) else 0
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or not 1 <= k <= available:
        smallest = [pool.classes[c] for c in torch.nonzero(counts == available).flatten()]
        shown = ", ".join(repr(c) for c in smallest[:5]) + (", ..." if len(smallest) > 5 else "")
        if available == 0:
            fix = (
                f"class(es) {shown} have no images at all in {pool.name!r}; drop them from "
                "classes or use a pool that holds every class"
            )
        else:
            fix = (
                f"use 1 <= k <= {available}, or a larger pool (profile.target_pool_per_class); "
                f"the smallest class(es): {shown}"
            )
        raise ValueError(
            f"k={k!r} images per class cannot be drawn from {pool.name!r}, which has {available} "
            f"images in its smallest class; {fix}."
        )
    rng = random_stream("few_shot", pool.name, seed)
    labels = pool.labels.numpy()
    ranked = [rng.permutation(np.flatnonzero(labels == c))[:k] for c in range(pool.num_classes)]
    return np.stack(ranked, axis=1).reshape(-1)  # round r holds every class's r-th pick


def few_shot(pool: ImageSet, k: int, seed: int) -> ImageSet:
    """k labelled images per class drawn from ``pool``; a larger k with the same seed adds to them.

    Classes appear in turn (one image of each class, then the next round), so the first
    ``j * num_classes`` images of the k-shot set are exactly the j-shot set. The rows taken
    are :func:`few_shot_indices`.

    Returns:
        ImageSet of ``k * pool.num_classes`` images named ``f"{pool.name}[k={k},seed={seed}]"``.
    """
    chosen = pool.subset(few_shot_indices(pool, k, seed))
    return ImageSet(chosen.images, chosen.labels, pool.classes, f"{pool.name}[k={k},seed={seed}]")


def rotation_task(images: ImageSet, seed: int) -> ImageSet:
    """Self-supervised rotation prediction: each image turned by 0, 90, 180 or 270 degrees.

    The label is the number of quarter turns, counter-clockwise as displayed
    (``torch.rot90(x, label, dims=(-2, -1))``); classes are :data:`ROTATION_CLASSES`.
    The original labels are not used.

    Returns:
        ImageSet of the same size, named ``f"{images.name}/rotation"``.
    """
    seed = _check_seed(seed)
    if images.images.shape[-1] != images.images.shape[-2]:
        raise ValueError(
            f"rotation_task needs square images, got {tuple(images.images.shape[-2:])}; "
            "use the course's 32×32 images."
        )
    rng = random_stream("rotation", images.name, seed)
    turns = torch.from_numpy(rng.integers(0, 4, len(images)).astype(np.int64))
    rotated = images.images.clone()
    for k in range(1, 4):
        idx = torch.nonzero(turns == k).squeeze(1)
        rotated[idx] = torch.rot90(images.images[idx], k, dims=(-2, -1))
    return ImageSet(rotated, turns, ROTATION_CLASSES, f"{images.name}/rotation")
