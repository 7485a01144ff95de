"""How the training loop reads batches: split, move, forward, score, sum up (private).

Shared by :mod:`tlhelpers.train` and :mod:`tlhelpers.evaluation`. Loaders are anything with
``len()`` that yields ``(inputs, targets)``; ``inputs`` is a tensor or a dict of tensors.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch
from torch import nn

__all__: list[str] = []  # private: internal to the training loop

Inputs = torch.Tensor | Mapping[str, torch.Tensor]
_CHANNELS_LAST_DEVICES = ("cpu", "cuda")  # where channels-last convolutions are fast


def _check_loader(argument: str, loader: Iterable) -> int:
    try:
        n = len(loader)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{argument} of type {type(loader).__name__} has no len(); pass a "
            "torch.utils.data.DataLoader or the course's TensorLoader."
        ) from None
    if n == 0:
        raise ValueError(
            f"{argument} is empty (len {n}); check the dataset size and batch_size "
            "(drop_last=True with fewer examples than one batch yields no batch)."
        )
    return n


def _split(batch: Any) -> tuple[Inputs, torch.Tensor]:
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return batch[0], batch[1]
    raise TypeError(
        f"a batch must be a pair (inputs, targets); got {type(batch).__name__}"
        f"{' of length ' + str(len(batch)) if isinstance(batch, (tuple, list)) else ''}. "
        "Make the loader yield (inputs, targets)."
    )


def _move(x: Inputs, device: torch.device, channels_last: bool) -> Inputs:
    if isinstance(x, torch.Tensor):
        x = x.to(device, non_blocking=True)
        if channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)  # (B, C, H, W), NHWC in memory
        return x
    if isinstance(x, Mapping):
        return {k: v.to(device, non_blocking=True) for k, v in x.items()}
    raise TypeError(
        f"batch inputs of type {type(x).__name__} are not supported; valid: a Tensor or a dict "
        "of Tensors (passed to the model as keyword arguments)."
    )


def _forward(model: nn.Module, x: Inputs) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The model's logits and, if its output carries one, its ``aux_loss`` (else None)."""
    out = model(**x) if isinstance(x, Mapping) else model(x)
    if isinstance(out, torch.Tensor):
        return out, None  # (B, num_classes)
    return out.logits, getattr(out, "aux_loss", None)


def _loss(
    loss_fn: Callable, logits: torch.Tensor, targets: torch.Tensor, aux_loss: torch.Tensor | None
) -> torch.Tensor:
    """``loss_fn(logits, targets)``, plus the model's auxiliary loss when it has one."""
    loss = loss_fn(logits, targets)
    return loss if aux_loss is None else loss + aux_loss


def _correct(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
    """Number of correct argmax predictions, or None when outputs are not class scores."""
    if targets.is_floating_point() or logits.ndim < 2 or logits.shape[:-1] != targets.shape:
        return None
    return (logits.argmax(dim=-1) == targets).sum()


def _uses_channels_last(model: nn.Module) -> bool:
    return any(
        p.ndim == 4 and p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
        for p in model.parameters()
    )


@contextlib.contextmanager
def _memory_format(model: nn.Module, channels_last: bool) -> Iterator[bool]:
    """Channels-last weights inside the block (if asked); the model's own format afterwards.

    Yields whether 4-D inputs should be made channels-last too. Giving the original format back
    keeps ``weight.view(...)`` and safetensors (which need contiguous tensors) working.
    """
    if not channels_last or _uses_channels_last(model):
        yield channels_last
        return
    model.to(memory_format=torch.channels_last)
    try:
        yield True
    finally:
        model.to(memory_format=torch.contiguous_format)


class _Running:
    """Sums of loss, correct predictions and counts, kept on the device to avoid syncs."""

    def __init__(self) -> None:
        self.loss: torch.Tensor | float = 0.0
        self.correct: torch.Tensor | int = 0
        self.n = 0  # examples (first dimension of targets)
        self.n_acc = 0  # predictions scored for accuracy

    def add(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        batch = targets.shape[0]
        self.loss = self.loss + loss.detach().float() * batch
        self.n += batch
        correct = _correct(logits.detach(), targets)
        if correct is not None:
            self.correct = self.correct + correct
            self.n_acc += targets.numel()

    def mean_loss(self) -> float:
        return float(self.loss) / max(self.n, 1)

    def fraction(self) -> float:
        """Share of predictions that were correct, in [0, 1] (NaN when none were scored)."""
        return float(self.correct) / self.n_acc if self.n_acc else math.nan

    def accuracy(self) -> float:
        """Accuracy in percent (0–100): ``100 * fraction()``, as the notebooks computed it."""
        return 100 * self.fraction()


def _check_class_targets(logits: torch.Tensor, targets: torch.Tensor) -> None:
    """For cross-entropy: integer targets of shape logits.shape[:-1] with values in range.

    The value range is only checked for targets still on the CPU (no device sync).
    """
    if targets.is_floating_point() or targets.dtype == torch.bool:
        return  # class probabilities (or a loss that is not cross-entropy's business)
    classes = logits.shape[-1]
    if targets.shape != logits.shape[:-1]:
        hint = " Use targets.squeeze(1)." if targets.shape == (*logits.shape[:-1], 1) else ""
        raise ValueError(
            f"targets of shape {tuple(targets.shape)} do not fit logits of shape "
            f"{tuple(logits.shape)}: cross-entropy wants one class index per example, shape "
            f"{tuple(logits.shape[:-1])}.{hint}"
        )
    if targets.device.type == "cpu" and targets.numel():
        low, high = int(targets.min()), int(targets.max())
        if low < 0 or high >= classes:
            bad = low if low < 0 else high
            raise ValueError(
                f"target label {bad} is out of range for a model with {classes} outputs; labels "
                f"must lie in range(0, {classes}). Give the model {high + 1} outputs "
                "(replace_head) or fix the labels."
            )


def _no_batches(argument: str, n: int, epoch: int | None = None) -> ValueError:
    when = f" in epoch {epoch + 1}" if epoch is not None else ""
    return ValueError(
        f"{argument} yielded no batches{when}, though len() says {n}. A generator or iterator "
        "is used up after one pass: pass a list, a DataLoader or the course's TensorLoader."
    )
