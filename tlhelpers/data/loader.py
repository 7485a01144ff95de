"""A fast in-memory batch loader for tensors that already fit in memory.

:class:`TensorLoader` slices whole batches out of two tensors with one shuffled index, which is
many times faster than ``DataLoader(TensorDataset(x, y))`` (that one collates sample by sample).
The inputs may also be a dict of tensors of the same length (a tokenised text: input ids,
attention mask, ...); each batch is then the dict of their rows.
Every epoch draws a new order from ``seed`` plus the epoch counter, so epochs differ from each
other but a fresh loader with the same seed replays exactly the same sequence of batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import torch

from tlhelpers import _checks

__all__ = ["TensorLoader"]

Inputs = torch.Tensor | Mapping[str, torch.Tensor]


class TensorLoader:
    """Iterate over ``(transform(x[idx]), y[idx])`` batches of in-memory tensors.

    Args:
        x: inputs, first dimension N (e.g. uint8 images of shape (N, 3, 32, 32)), or a dict of
            such tensors (batches are then dicts of their rows, e.g. for ``model(**inputs)``).
        y: targets, shape (N, ...).
        batch_size: samples per batch.
        shuffle: draw a new random order every epoch (seeded by ``seed`` + epoch number).
        seed: seed of the shuffling; two loaders with the same seed give the same batches.
        drop_last: skip the final batch when it is smaller than ``batch_size``.
        transform: applied to each input batch, a tensor or a dict (e.g.
            :func:`tlhelpers.data.to_float`).

    ``len(loader)`` is the number of batches per epoch. ``loader.epoch`` counts the epochs
    started so far.
    """

    def __init__(
        self,
        x: Inputs,
        y: torch.Tensor,
        batch_size: int,
        *,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        transform: Callable[[Inputs], Inputs] | None = None,
    ) -> None:
        if isinstance(x, Mapping):
            x = dict(x)
        self.n = _length(x)
        if self.n != len(y):
            raise ValueError(
                f"x has {self.n} samples but y has {len(y)}; pass inputs and targets of the "
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
        n = self.n
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size

    def _order(self) -> torch.Tensor:
        n = self.n
        if not self.shuffle:
            return torch.arange(n)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(n, generator=generator)

    def __iter__(self) -> Iterator[tuple[Inputs, torch.Tensor]]:
        """Yield the batches of the next epoch."""
        order = self._order()
        self.epoch += 1
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            xb = _rows(self.x, idx)
            if self.transform is not None:
                xb = self.transform(xb)
            yield xb, self.y[idx]


def _length(x: Inputs) -> int:
    """N, the first dimension of the input tensor or of every tensor of the dict."""
    if not isinstance(x, dict):
        return len(x)
    if not x:
        raise ValueError("x is an empty dict; pass at least one tensor of inputs.")
    sizes = {key: len(value) for key, value in x.items()}
    if len(set(sizes.values())) != 1:
        raise ValueError(f"inputs have different lengths {sizes}; pass tensors of one length N.")
    return next(iter(sizes.values()))


def _rows(x: Inputs, idx: torch.Tensor) -> Inputs:
    """The rows ``idx`` of the input tensor, or of every tensor of the dict."""
    if isinstance(x, dict):
        return {key: value[idx] for key, value in x.items()}
    return x[idx]
