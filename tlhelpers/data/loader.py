"""A fast in-memory batch loader for tensors that already fit in memory.

:class:`TensorLoader` slices whole batches out of two tensors with one shuffled index, which is
many times faster than ``DataLoader(TensorDataset(x, y))`` (that one collates sample by sample).
Every epoch draws a new order from ``seed`` plus the epoch counter, so epochs differ from each
other but a fresh loader with the same seed replays exactly the same sequence of batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch

from tlhelpers import _checks

__all__ = ["TensorLoader"]


class TensorLoader:
    """Iterate over ``(transform(x[idx]), y[idx])`` batches of in-memory tensors.

    Args:
        x: inputs, first dimension N (e.g. uint8 images of shape (N, 3, 32, 32)).
        y: targets, shape (N, ...).
        batch_size: samples per batch.
        shuffle: draw a new random order every epoch (seeded by ``seed`` + epoch number).
        seed: seed of the shuffling; two loaders with the same seed give the same batches.
        drop_last: skip the final batch when it is smaller than ``batch_size``.
        transform: applied to each input batch (e.g. :func:`tlhelpers.data.to_float`).

    ``len(loader)`` is the number of batches per epoch. ``loader.epoch`` counts the epochs
    started so far.
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(
                f"x has {len(x)} samples but y has {len(y)}; pass inputs and targets of the "
                "same length."
            )
        self.seed = _checks.non_negative_int("seed", seed, example=0)
        self.x = x
        self.y = y
        self.batch_size = _checks.positive_int("batch_size", batch_size, example=128)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.transform = transform
        self.epoch = 0

    def __len__(self) -> int:
        """Number of batches in one epoch."""
        n = len(self.x)
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size

    def _order(self) -> torch.Tensor:
        n = len(self.x)
        if not self.shuffle:
            return torch.arange(n)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(n, generator=generator)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield the batches of the next epoch."""
        order = self._order()
        self.epoch += 1
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            xb = self.x[idx]
            if self.transform is not None:
                xb = self.transform(xb)
            yield xb, self.y[idx]
