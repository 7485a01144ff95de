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
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from tlhelpers import _checks
from tlhelpers.models.surgery import eval_mode
from tlhelpers.settings import pick_device, tune_cpu_allocator

__all__ = ["EarlyStopping", "Evaluation", "History", "evaluate", "fit", "predict"]

Inputs = torch.Tensor | Mapping[str, torch.Tensor]
_CHANNELS_LAST_DEVICES = ("cpu", "cuda")  # where channels-last convolutions are fast


@dataclass
class History:
    """What :func:`fit` measured, one list entry per epoch (the last may be partial).

    ``train_loss`` and ``train_acc`` are averages over the epoch's training batches, weighted by
    batch size and taken while the weights were still changing (not a re-evaluation at the end).
    Accuracies are fractions in [0, 1] (NaN when outputs are not class scores). ``val_*`` stay
    empty without a validation loader. ``lr`` is the first parameter group's learning rate at the
    epoch's last step; ``seconds`` is the epoch's wall-clock time, validation included.
    """

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    steps: int = 0  # optimiser steps taken in total
    best_epoch: int | None = None  # list index: early stopping's best, else lowest val_loss
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        """Epochs recorded (a partial last epoch counts)."""
        return len(self.train_loss)

    def as_dict(self) -> dict[str, Any]:
        """Plain lists and numbers, ready for JSON or a DataFrame."""
        return asdict(self)

    def summary(self) -> str:
        """One line: epochs, steps, time and the last epoch's numbers."""
        if not self.epochs:
            return "History: nothing trained yet"
        parts = [
            f"{self.epochs} epochs, {self.steps} steps, {sum(self.seconds):.1f} s",
            f"train loss {self.train_loss[-1]:.4f} acc {self.train_acc[-1]:.3f}",
        ]
        if self.val_loss:
            parts.append(f"val loss {self.val_loss[-1]:.4f} acc {self.val_acc[-1]:.3f}")
        if self.best_epoch is not None:
            stop = ", stopped early" if self.stopped_early else ""
            parts.append(f"best epoch {self.best_epoch + 1} (1-based){stop}")
        return " | ".join(parts)

    def __str__(self) -> str:
        return self.summary()


@dataclass(frozen=True)
class Evaluation:
    """Mean loss and accuracy (fraction in [0, 1]) over ``n`` examples."""

    loss: float
    accuracy: float
    n: int

    def __str__(self) -> str:
        return f"loss {self.loss:.4f}, accuracy {self.accuracy:.4f} (n={self.n:,})"


class EarlyStopping:
    """Stop :func:`fit` when the validation metric has not improved for ``patience`` epochs.

    An epoch improves on the best so far when ``val_loss < best - min_delta`` (or
    ``val_acc > best + min_delta``). With ``restore_best`` the best epoch's weights (a copy of
    the state dict) are loaded back when training ends, whether it stopped early or not.
    ``fit`` resets the object at its start, so one instance can serve several runs.

    Args:
        patience: epochs without improvement before stopping (at least 1).
        monitor: "val_loss" (lower is better) or "val_acc" (higher is better).
        min_delta: smallest change that counts as an improvement.
        restore_best: load the best weights back at the end.
    """

    MONITORS = ("val_loss", "val_acc")

    def __init__(
        self,
        patience: int,
        *,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        restore_best: bool = True,
    ) -> None:
        self.patience = _checks.positive_int("patience", patience, example=3)
        self.monitor = _checks.one_of("monitor", monitor, self.MONITORS)
        self.min_delta = _checks.finite("min_delta", min_delta, minimum=0, example=1e-3)
        self.restore_best = restore_best
        self.reset()

    def __repr__(self) -> str:
        return (
            f"EarlyStopping(patience={self.patience}, monitor={self.monitor!r}, "
            f"min_delta={self.min_delta}, restore_best={self.restore_best})"
        )

    def reset(self) -> None:
        """Forget previous runs."""
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0

    def step(self, value: float, model: nn.Module, epoch: int) -> bool:
        """Record one epoch's metric; return True when training should stop."""
        if self.monitor == "val_loss":
            better = self.best is None or value < self.best - self.min_delta
        else:
            better = self.best is None or value > self.best + self.min_delta
        if better and not math.isnan(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            if self.restore_best:
                self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the best weights back into ``model`` (in place) if they were kept."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)


# ---------------------------------------------------------------- small helpers


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

    def accuracy(self) -> float:
        return float(self.correct) / self.n_acc if self.n_acc else math.nan


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


# ---------------------------------------------------------------- public API


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
        :class:`Evaluation` with the example-weighted mean loss, accuracy in [0, 1] and ``n``.
    """
    _check_loader("loader", loader)
    dev = pick_device(device)
    model.to(dev)
    with _memory_format(model, dev.type in _CHANNELS_LAST_DEVICES) as channels_last:
        running = _run_eval(model, loader, dev, loss_fn, channels_last)
    return Evaluation(loss=running.mean_loss(), accuracy=running.accuracy(), n=running.n)


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
                f"acc {running.accuracy():.3f}",
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
    watched = run.history.val_loss if early_stopping.monitor == "val_loss" else run.history.val_acc
    return early_stopping.step(watched[-1], run.model, epoch)


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
        f"acc {history.train_acc[-1]:.3f}"
    )
    if history.val_loss:
        line += f" val_loss {history.val_loss[-1]:.4f} val_acc {history.val_acc[-1]:.3f}"
    return line
