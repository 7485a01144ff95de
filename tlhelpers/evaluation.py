"""Measuring a trained model: :func:`evaluate` (mean loss and accuracy), :func:`accuracy` (the
percentage on a whole image set) and :func:`predict`.

Both run in eval mode without gradients and give every module its own train/eval mode back.
Both names, and :class:`Evaluation`, are importable from :mod:`tlhelpers.train` too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tlhelpers._batches import (
    _CHANNELS_LAST_DEVICES,
    _check_class_targets,
    _check_loader,
    _forward,
    _loss,
    _memory_format,
    _move,
    _no_batches,
    _Running,
    _split,
)
from tlhelpers.models.surgery import eval_mode
from tlhelpers.settings import pick_device

__all__ = ["Evaluation", "accuracy", "evaluate", "predict"]


@dataclass(frozen=True)
class Evaluation:
    """Mean loss and accuracy in percent (0–100) over ``n`` examples."""

    loss: float
    accuracy: float
    n: int

    def __str__(self) -> str:
        return f"loss {self.loss:.4f}, accuracy {self.accuracy:.2f}% (n={self.n:,})"


def _run_eval(
    model: nn.Module,
    loader: Iterable,
    device: torch.device,
    loss_fn: Callable | None,
    channels_last: bool,
    argument: str = "loader",
) -> _Running:
    running = _Running()
    with eval_mode(model), torch.inference_mode():
        for batch in loader:
            x, y_in = _split(batch)
            x, y = _move(x, device, channels_last), y_in.to(device, non_blocking=True)
            logits, aux_loss = _forward(model, x)
            if loss_fn is None:
                _check_class_targets(logits, y_in)
            running.add(_loss(loss_fn or F.cross_entropy, logits, y, aux_loss), logits, y)
    if running.n == 0:
        raise _no_batches(argument, len(loader))  # type: ignore[arg-type]
    return running


def evaluate(
    model: nn.Module,
    loader: Iterable,
    *,
    device: str | torch.device = "auto",
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> Evaluation:
    """Mean loss and accuracy of ``model`` on ``loader``, in eval mode without gradients.

    Moves the model to ``device`` and, on CPU and CUDA, runs it in channels-last memory format
    (given back afterwards). Afterwards every module's train/eval mode is what it was before (so
    batch-norm layers put in eval by :func:`~tlhelpers.models.set_bn_eval` stay so).

    Args:
        model: the network.
        loader: yields ``(inputs, targets)``.
        device: "auto", "cpu", "cuda" or "mps" (see :func:`tlhelpers.settings.pick_device`).
        loss_fn: mean-reduced loss; default cross-entropy.

    Returns:
        :class:`Evaluation` with the example-weighted mean loss, the accuracy in percent
        (0–100) and ``n``.
    """
    _check_loader("loader", loader)
    dev = pick_device(device)
    model.to(dev)
    with _memory_format(model, dev.type in _CHANNELS_LAST_DEVICES) as channels_last:
        running = _run_eval(model, loader, dev, loss_fn, channels_last)
    return Evaluation(loss=running.mean_loss(), accuracy=running.accuracy(), n=running.n)


def accuracy(
    model: nn.Module,
    images: object,
    *,
    device: str | torch.device = "auto",
    batch_size: int = 500,
) -> float:
    """Accuracy in percent (0–100) of ``model`` on every image of ``images``, in order.

    ``images`` is an :class:`~tlhelpers.data.ImageSet` (anything with a ``loader(batch_size,
    shuffle=...)`` method); the same as ``evaluate(model, images.loader(batch_size,
    shuffle=False), device=device).accuracy``, the line it stands for in the notebooks.
    """
    make_loader = getattr(images, "loader", None)
    if not callable(make_loader):
        raise TypeError(
            f"images must be an ImageSet (with a .loader method), got {type(images).__name__}; "
            "for a DataLoader or TensorLoader call evaluate(model, loader).accuracy instead."
        )
    loader = make_loader(batch_size, shuffle=False)
    return evaluate(model, loader, device=device).accuracy


def predict(
    model: nn.Module, loader: Iterable, *, device: str | torch.device = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """All logits and targets of ``loader``, on the CPU, in loader order.

    Runs in eval mode under ``torch.inference_mode()`` and restores every module's mode.

    Shapes:
        returns logits (N, num_classes) and targets (N,).
    """
    _check_loader("loader", loader)
    dev = pick_device(device)
    model.to(dev)
    logits, targets = [], []
    with (
        _memory_format(model, dev.type in _CHANNELS_LAST_DEVICES) as channels_last,
        eval_mode(model),
        torch.inference_mode(),
    ):
        for batch in loader:
            x, y = _split(batch)
            logits.append(_forward(model, _move(x, dev, channels_last))[0].float().cpu())
            targets.append(y.cpu())
    return torch.cat(logits), torch.cat(targets)  # (N, num_classes), (N,)
