"""What :func:`tlhelpers.train.fit` records and decides per epoch: :class:`History` and
:class:`EarlyStopping`.

Early stopping on a validation set follows Prechelt, "Early Stopping — But When?" (1998). Both
names are importable from :mod:`tlhelpers.train` too.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from tlhelpers import _checks

__all__ = ["EarlyStopping", "History"]


@dataclass
class History:
    """What :func:`~tlhelpers.train.fit` measured, one entry per epoch (the last may be partial).

    ``train_loss`` and ``train_acc`` are averages over the epoch's training batches, weighted by
    batch size and taken while the weights were still changing (not a re-evaluation at the end).
    Accuracies are in percent (0–100; NaN when outputs are not class scores). ``val_*`` stay
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
            f"train loss {self.train_loss[-1]:.4f} acc {self.train_acc[-1]:.1f}%",
        ]
        if self.val_loss:
            parts.append(f"val loss {self.val_loss[-1]:.4f} acc {self.val_acc[-1]:.1f}%")
        if self.best_epoch is not None:
            stop = ", stopped early" if self.stopped_early else ""
            parts.append(f"best epoch {self.best_epoch + 1} (1-based){stop}")
        return " | ".join(parts)

    def __str__(self) -> str:
        return self.summary()


class EarlyStopping:
    """Stop ``fit`` when the validation metric has not improved for ``patience`` epochs.

    An epoch improves on the best so far when ``val_loss < best - min_delta`` (or
    ``val_acc > best + min_delta``; accuracies are in percent (0–100), so there ``min_delta`` is
    in percentage points). With ``restore_best`` the best epoch's weights (a copy of the state
    dict) are loaded back when training ends, whether it stopped early or not.
    ``fit`` resets the object at its start, so one instance can serve several runs.

    Args:
        patience: epochs without improvement before stopping (at least 1).
        monitor: "val_loss" (lower is better) or "val_acc" (higher is better).
        min_delta: smallest change that counts as an improvement: in loss units for
            "val_loss", in percentage points for "val_acc".
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
        self.best: float | None = None  # the best value, in the monitored unit
        self._best_key: float | None = None  # what improvements are compared against
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0

    def step(self, value: float, model: nn.Module, epoch: int) -> bool:
        """Record one epoch's metric (a loss, or an accuracy in percent); return True to stop."""
        return self._record(value, value, self.min_delta, model, epoch)

    def _step_fraction(self, percent: float, fraction: float, model: nn.Module, epoch: int) -> bool:
        """:meth:`step` for an accuracy that ``fit`` measured as ``fraction`` (percent / 100).

        Improvements are compared on the fractions, with ``min_delta / 100``: comparing the
        percentages instead can round the other way when an improvement is exactly
        ``min_delta``, and training would then stop at another epoch than it always did.
        """
        return self._record(percent, fraction, self.min_delta / 100, model, epoch)

    def _record(self, value: float, key: float, delta: float, model: nn.Module, epoch: int) -> bool:
        """Keep ``value`` as the best if ``key`` beats the best key by more than ``delta``."""
        if self.monitor == "val_loss":
            better = self._best_key is None or key < self._best_key - delta
        else:
            better = self._best_key is None or key > self._best_key + delta
        if better and not math.isnan(key):
            self.best, self._best_key, self.best_epoch, self.bad_epochs = value, key, epoch, 0
            if self.restore_best:
                self.best_state = copy.deepcopy(model.state_dict())
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def restore(self, model: nn.Module) -> None:
        """Load the best weights back into ``model`` (in place) if they were kept."""
        if self.best_state is not None:
            model.load_state_dict(self.best_state)
