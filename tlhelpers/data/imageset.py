"""The course's image container and its one normalisation.

Every dataset in the course is an :class:`ImageSet`: uint8 images of shape (N, 3, H, W), int64
labels, the class names and a name. Images stay uint8 in memory (4× smaller than float32) and
are converted batch by batch with :func:`to_float`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tlhelpers.data.loader import TensorLoader

__all__ = ["MEAN", "STD", "ImageSet", "to_float"]

MEAN = 0.5  # subtracted from every channel after scaling to [0, 1]
STD = 0.25  # then divided by this


def to_float(images: torch.Tensor) -> torch.Tensor:
    """The course normalisation: uint8 pixels to float32, ``(x / 255 - 0.5) / 0.25``.

    The same fixed constants for every channel and dataset, so a pixel value 0 maps to -2.0,
    128 to about 0.0 and 255 to +2.0. Every network in the course sees inputs made this way.

    Args:
        images: uint8 tensor of any shape, e.g. (N, 3, 32, 32).

    Returns:
        float32 tensor of the same shape.
    """
    if images.dtype != torch.uint8:
        raise ValueError(
            f"to_float expects uint8 images, got dtype={images.dtype}; pass ImageSet.images "
            "(uint8) or convert with images.to(torch.uint8) first."
        )
    return (images.float() / 255.0 - MEAN) / STD


@dataclass(frozen=True)
class ImageSet:
    """A labelled set of images kept as uint8 in memory.

    Attributes:
        images: uint8 tensor (N, 3, H, W), H = W = 32 in the course.
        labels: int64 tensor (N,), values in ``range(len(classes))``.
        classes: class names; ``classes[label]`` names a label.
        name: a short description, e.g. ``"letters/train"``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(
                f"ImageSet {self.name!r}: images must be uint8 of shape (N, 3, H, W), got "
                f"dtype={self.images.dtype}, shape={tuple(self.images.shape)}."
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != (len(self.images),):
            raise ValueError(
                f"ImageSet {self.name!r}: labels must be int64 of shape ({len(self.images)},), "
                f"got dtype={self.labels.dtype}, shape={tuple(self.labels.shape)}."
            )
        if len(self.labels) and (
            int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes)
        ):
            raise ValueError(
                f"ImageSet {self.name!r}: labels range from {int(self.labels.min())} to "
                f"{int(self.labels.max())} but there are {len(self.classes)} classes; labels "
                f"must lie in range(0, {len(self.classes)})."
            )

    def __len__(self) -> int:
        """Number of images."""
        return len(self.images)

    def __repr__(self) -> str:
        shape = "×".join(str(s) for s in self.images.shape[1:])
        n_cls = len(self.classes)
        return f"ImageSet({self.name!r}, {len(self)} images of {shape}, {n_cls} classes)"

    @property
    def num_classes(self) -> int:
        """Number of classes (``len(classes)``)."""
        return len(self.classes)

    def subset(self, indices: Sequence[int] | np.ndarray | torch.Tensor) -> ImageSet:
        """The images at ``indices`` (in that order, or where a boolean mask is True).

        ``indices`` are integers (a list, array or tensor) or a boolean mask with one entry per
        image; float indices are refused rather than truncated.
        """
        array = indices.cpu().numpy() if isinstance(indices, torch.Tensor) else np.asarray(indices)
        if array.dtype == bool:
            if array.shape != (len(self),):
                raise ValueError(
                    f"a boolean mask must have one entry per image of {self.name!r}, shape "
                    f"({len(self)},); got shape {array.shape}. Build it from this set, e.g. "
                    "data.labels == 3."
                )
            array = np.flatnonzero(array)
        elif array.size and not np.issubdtype(array.dtype, np.integer):
            raise TypeError(
                f"subset indices must be integers or a boolean mask; got dtype {array.dtype} "
                f"({array.reshape(-1)[:3].tolist()}...). Round them yourself if that is meant, "
                "e.g. np.round(indices).astype(int)."
            )
        idx = torch.as_tensor(array.astype(np.int64, copy=False)).reshape(-1)
        if len(idx) and (int(idx.min()) < -len(self) or int(idx.max()) >= len(self)):
            raise ValueError(
                f"subset indices range from {int(idx.min())} to {int(idx.max())} but "
                f"{self.name!r} has {len(self)} images; use indices in range(0, {len(self)})."
            )
        return ImageSet(self.images[idx], self.labels[idx], self.classes, self.name)

    def as_float(self) -> torch.Tensor:
        """All images as normalised float32 (N, 3, H, W); see :func:`to_float`."""
        return to_float(self.images)

    def loader(
        self, batch_size: int, *, shuffle: bool, seed: int = 0, drop_last: bool = False
    ) -> TensorLoader:
        """Batches of ``(float images (B, 3, H, W), labels (B,))`` normalised by to_float."""
        return TensorLoader(
            self.images,
            self.labels,
            batch_size,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
            transform=to_float,
        )
