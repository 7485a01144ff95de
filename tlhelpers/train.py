"""One training loop for every notebook: :func:`fit`, :func:`evaluate`, :func:`predict`.

``fit`` is the plain PyTorch loop (zero_grad → forward → loss → backward → step) with the few
things every notebook needs around it: a progress bar, a :class:`History` of per-epoch numbers,
validation, early stopping, a learning-rate scheduler, gradient clipping and, on CUDA, mixed
precision. Its overhead over a bare loop is measured in ``benchmarks/fit_overhead.py``.

Ideas followed: early stopping on a validation set (Prechelt, "Early Stopping — But When?",
1998); mixed-precision training with loss scaling (Micikevicius et al., 2018); gradient-norm
clipping (Pascanu et al., 2013).

Loaders are anything with ``len()`` that yields ``(inputs, targets)`` batches: ``inputs`` is a
tensor (passed as ``model(inputs)``) or a dict of tensors (passed as ``model(**inputs)``, as text
models expect). A model may return logits or an object with a ``.logits`` attribute and,
optionally, an ``.aux_loss`` scalar that is added to the loss (as
:class:`tlhelpers.adapt.DomainAdapter`'s output carries its alignment loss).

:class:`History` and :class:`EarlyStopping` live in :mod:`tlhelpers.history`, :func:`evaluate`,
:func:`accuracy`, :func:`predict` and :class:`Evaluation` in :mod:`tlhelpers.evaluation`; all are
importable from here.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from tlhelpers import _checks
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
from tlhelpers.evaluation import Evaluation, _run_eval, accuracy, evaluate, predict
from tlhelpers.history import EarlyStopping, History
from tlhelpers.settings import pick_device, tune_cpu_allocator

__all__ = [
    "EarlyStopping",
    "Evaluation",
    "History",
    "accuracy",
    "evaluate",
    "fit",
    "predict",
]


def fit(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    optimizer: torch.optim.Optimizer,
    epochs: int | None = None,
    max_steps: int | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    scheduler: Any = None,
    device: str | torch.device = "auto",
    early_stopping: EarlyStopping | None = None,
    amp: bool | None = None,
    grad_clip: float | None = None,
    train_mode_hook: Callable[[nn.Module], Any] | None = None,
    progress: bool = True,
    desc: str = "train",
    channels_last: bool = True,
) -> History:
    """Train ``model`` with ``optimizer`` on ``train_loader``; validate after every epoch.

    Each epoch calls ``model.train()`` (every module, frozen batch norm included), then
    ``train_mode_hook(model)`` if given: pass ``train_mode_hook=set_bn_eval`` to keep frozen
    stages' batch norm from updating its statistics. Frozen parameters (``requires_grad=False``)
    are never changed. The model stays in train mode afterwards.

    Args:
        model: the network; moved to ``device`` (and to channels-last memory, see below).
        train_loader: yields ``(inputs, targets)`` batches and has ``len()``.
        val_loader: optional; evaluated (eval mode, no gradients) after every epoch.
        optimizer: built on the model's parameters, e.g. ``AdamW(model.parameters(), 1e-3)``.
        epochs: passes over ``train_loader``. Default: 1, or as many as ``max_steps`` needs.
        max_steps: total optimiser steps; training stops when reached, mid-epoch if need be
            (the partial epoch is recorded). With ``epochs`` too, whichever ends first wins.
        loss_fn: mean-reduced loss ``loss_fn(logits, targets)``; default cross-entropy. An
            ``aux_loss`` in the model's output is added to it.
        scheduler: learning-rate scheduler, stepped after every optimiser step (not every
            epoch): size schedules in steps, e.g. ``OneCycleLR(..., total_steps=...)``.
        device: "auto", "cpu", "cuda" or "mps".
        early_stopping: an :class:`EarlyStopping`; needs ``val_loader``.
        amp: mixed precision (bfloat16, or float16 with loss scaling where bfloat16 is not
            supported). None: on for CUDA, off elsewhere. True on a non-CUDA device raises.
        grad_clip: clip the gradients' global L2 norm to this value before each step.
        train_mode_hook: called with the model right after each ``model.train()``.
        progress: show a tqdm progress bar (False: print nothing).
        desc: label of the progress bar.
        channels_last: on CPU and CUDA, train with the 4-D weights and inputs in channels-last
            memory format (same numbers, faster convolutions). The model is given back in its
            own memory format; models without 4-D weights are unaffected.

    Returns:
        A :class:`History`.
    """
    epochs, max_steps, grad_clip = _check_fit_arguments(
        optimizer, epochs, max_steps, grad_clip, scheduler
    )
    steps_per_epoch = _check_loaders(train_loader, val_loader, early_stopping)
    dev = pick_device(device)
    if dev.type == "cpu":
        tune_cpu_allocator()  # speed only: reuse large freed buffers (see its docstring)
    precision = _precision(dev, amp)
    model.to(dev)
    if early_stopping is not None:
        early_stopping.reset()
    if epochs is None:
        epochs = 1 if max_steps is None else math.ceil(max_steps / steps_per_epoch)
    total = epochs * steps_per_epoch
    if max_steps is not None:
        total = min(max_steps, total)
    with (
        _memory_format(model, channels_last and dev.type in _CHANNELS_LAST_DEVICES) as use_cl,
        tqdm(total=total, desc=desc, unit="step", disable=not progress, dynamic_ncols=True) as bar,
    ):
        run = _Run(
            model=model,
            optimizer=optimizer,
            loss_fn=loss_fn or nn.CrossEntropyLoss(),
            default_loss=loss_fn is None,
            scheduler=scheduler,
            grad_clip=grad_clip,
            precision=precision,
            device=dev,
            channels_last=use_cl,
            epochs=epochs,
            max_steps=max_steps,
            history=History(),
            bar=bar,
            progress=progress,
        )
        for epoch in range(epochs):
            if _run_epoch(run, epoch, train_loader, val_loader, early_stopping, train_mode_hook):
                break
    _finish(run.history, model, early_stopping)
    return run.history


@dataclass
class _Run:
    """What every step and epoch of one :func:`fit` call shares."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    default_loss: bool  # cross-entropy chosen by fit: check targets, validate with it too
    scheduler: Any
    grad_clip: float | None
    precision: _Precision
    device: torch.device
    channels_last: bool
    epochs: int
    max_steps: int | None
    history: History
    bar: Any  # the tqdm progress bar
    progress: bool

    def out_of_steps(self) -> bool:
        """Whether ``max_steps`` optimiser steps have been taken."""
        return self.max_steps is not None and self.history.steps >= self.max_steps


@dataclass(frozen=True)
class _Precision:
    """Mixed precision: an autocast dtype (None: full precision) and an always-present scaler.

    The :class:`torch.amp.GradScaler` is enabled only for float16; disabled, its ``scale``,
    ``unscale_``, ``step`` and ``update`` are plain pass-throughs, so one code path serves all.
    """

    dtype: torch.dtype | None
    scaler: torch.amp.GradScaler

    def autocast(self) -> contextlib.AbstractContextManager:
        """The forward pass's autocast context (a null context in full precision)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast("cuda", dtype=self.dtype)


def _precision(dev: torch.device, amp: bool | None) -> _Precision:
    """Mixed precision for ``fit(amp=...)`` on ``dev``: bfloat16, else float16 with scaling."""
    if amp is None:
        amp = dev.type == "cuda"
    elif amp and dev.type != "cuda":
        raise ValueError(
            f"amp=True needs a CUDA device, but training runs on {dev.type!r}; use amp=None "
            "(mixed precision on CUDA only) or amp=False."
        )
    if not amp:
        return _Precision(None, torch.amp.GradScaler(dev.type, enabled=False))
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return _Precision(dtype, torch.amp.GradScaler("cuda", enabled=dtype == torch.float16))


def _check_fit_arguments(
    optimizer: Any, epochs: Any, max_steps: Any, grad_clip: Any, scheduler: Any
) -> tuple[int | None, int | None, float | None]:
    """``fit``'s optimiser, scheduler and numbers, checked; returns epochs, max_steps, grad_clip."""
    if optimizer is None or not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer={optimizer!r} must be a torch optimizer built on the model's parameters, "
            "e.g. optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3)."
        )
    if epochs is not None:
        epochs = _checks.positive_int("epochs", epochs, example=3)
    if max_steps is not None:
        max_steps = _checks.positive_int("max_steps", max_steps, example=100)
    if grad_clip is not None:
        grad_clip = _checks.finite("grad_clip", grad_clip, above=0, example=1.0)
    _check_learning_rates(optimizer)
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"scheduler={scheduler!r} has no step() method; pass a torch LR scheduler.")
    return epochs, max_steps, grad_clip


def _check_loaders(
    train_loader: Iterable, val_loader: Iterable | None, early_stopping: EarlyStopping | None
) -> int:
    """Both loaders non-empty, a validation set for early stopping; returns steps per epoch."""
    steps_per_epoch = _check_loader("train_loader", train_loader)
    if val_loader is not None:
        _check_loader("val_loader", val_loader)
    if early_stopping is not None and val_loader is None:
        raise ValueError(
            f"early_stopping={early_stopping!r} needs a validation set to watch, but "
            "val_loader=None; pass val_loader=... or drop early_stopping."
        )
    return steps_per_epoch


def _train_step(run: _Run, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """One optimiser step on one batch; returns loss, logits, targets and the step's lr."""
    x, y_in = _split(batch)
    x, y = _move(x, run.device, run.channels_last), y_in.to(run.device, non_blocking=True)
    scaler = run.precision.scaler
    run.optimizer.zero_grad(set_to_none=True)
    with run.precision.autocast():
        logits, aux_loss = _forward(run.model, x)  # (B, num_classes)
        if run.default_loss:
            _check_class_targets(logits, y_in)
        loss = _loss(run.loss_fn, logits, y, aux_loss)
    scaler.scale(loss).backward()
    scaler.unscale_(run.optimizer)  # true gradients for clipping (a no-op when disabled)
    if run.grad_clip is not None:
        nn.utils.clip_grad_norm_(run.model.parameters(), run.grad_clip)
    lr = run.optimizer.param_groups[0]["lr"]
    scaler.step(run.optimizer)
    scaler.update()
    if run.scheduler is not None:
        run.scheduler.step()
    return loss, logits, y, lr


def _train_epoch(run: _Run, loader: Iterable, epoch: int) -> tuple[_Running, float]:
    """One pass over ``loader`` (shorter at ``max_steps``); returns the sums and the last lr."""
    running, lr, last_shown = _Running(), math.nan, time.perf_counter()
    for batch in loader:
        loss, logits, y, lr = _train_step(run, batch)
        run.history.steps += 1
        running.add(loss, logits, y)
        run.bar.update()
        if run.progress and time.perf_counter() - last_shown > 0.5:
            last_shown = time.perf_counter()
            _check_finite(running, run.history.steps, epoch)
            run.bar.set_postfix_str(
                f"epoch {epoch + 1}/{run.epochs} loss {running.mean_loss():.4f} "
                f"acc {running.accuracy():.1f}%",
                refresh=False,
            )
        if run.out_of_steps():
            break
    if running.n == 0:
        raise _no_batches("train_loader", len(loader), epoch)  # type: ignore[arg-type]
    _check_finite(running, run.history.steps, epoch)
    return running, lr


def _validate(
    run: _Run, loader: Iterable, early_stopping: EarlyStopping | None, epoch: int
) -> bool:
    """Evaluate on ``loader``, record it; return whether early stopping says stop."""
    loss_fn = None if run.default_loss else run.loss_fn
    val = _run_eval(run.model, loader, run.device, loss_fn, run.channels_last, "val_loader")
    run.history.val_loss.append(val.mean_loss())
    run.history.val_acc.append(val.accuracy())
    if early_stopping is None:
        return False
    if early_stopping.monitor == "val_loss":
        return early_stopping.step(run.history.val_loss[-1], run.model, epoch)
    return early_stopping._step_fraction(run.history.val_acc[-1], val.fraction(), run.model, epoch)


def _run_epoch(
    run: _Run,
    epoch: int,
    train_loader: Iterable,
    val_loader: Iterable | None,
    early_stopping: EarlyStopping | None,
    train_mode_hook: Callable[[nn.Module], Any] | None,
) -> bool:
    """Train one epoch, validate, record it in the history; return whether to stop."""
    start = time.perf_counter()
    run.model.train()
    if train_mode_hook is not None:
        train_mode_hook(run.model)
    running, lr = _train_epoch(run, train_loader, epoch)
    history = run.history
    history.train_loss.append(running.mean_loss())
    history.train_acc.append(running.accuracy())
    history.lr.append(lr)
    stop = val_loader is not None and _validate(run, val_loader, early_stopping, epoch)
    history.seconds.append(time.perf_counter() - start)
    run.bar.set_postfix_str(_epoch_line(history, epoch, run.epochs), refresh=True)
    history.stopped_early = stop  # stays False until the epoch that stops
    return stop or run.out_of_steps()


def _finish(history: History, model: nn.Module, early_stopping: EarlyStopping | None) -> None:
    """Set the best epoch and, if asked, load the best weights back."""
    if early_stopping is not None:
        history.best_epoch = early_stopping.best_epoch
        if early_stopping.restore_best:
            early_stopping.restore(model)
    elif history.val_loss:
        history.best_epoch = min(range(len(history.val_loss)), key=history.val_loss.__getitem__)


def _check_learning_rates(optimizer: torch.optim.Optimizer) -> None:
    """Every parameter group's learning rate is a finite number >= 0 (a negative one ascends)."""
    for index, group in enumerate(optimizer.param_groups):
        lr = group.get("lr")
        try:
            value = float(lr)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            value = math.nan
        if not (math.isfinite(value) and value >= 0) or isinstance(lr, bool):
            raise ValueError(
                f"parameter group {index} of the optimizer has lr={lr!r}; a learning rate must "
                "be a finite number >= 0 (a negative one climbs the loss instead of descending "
                "it), e.g. lr=1e-3."
            )


def _check_finite(running: _Running, step: int, epoch: int) -> None:
    loss = running.mean_loss()
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"training loss became {loss} by step {step} (epoch {epoch + 1}); lower the learning "
            "rate, or pass grad_clip=1.0 to fit."
        )


def _epoch_line(history: History, epoch: int, epochs: int) -> str:
    line = (
        f"epoch {epoch + 1}/{epochs} loss {history.train_loss[-1]:.4f} "
        f"acc {history.train_acc[-1]:.1f}%"
    )
    if history.val_loss:
        line += f" val_loss {history.val_loss[-1]:.4f} val_acc {history.val_acc[-1]:.1f}%"
    return line
