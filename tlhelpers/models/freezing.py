"""Which stages train, and how fast: freezing, parameter counts, per-stage parameter groups,
discriminative learning rates, and the batch-norm modes that frozen stages need.

Ideas followed:

- Discriminative fine-tuning, Howard & Ruder, "Universal Language Model Fine-tuning for Text
  Classification" (ULMFiT, 2018): each lower stage learns at the rate of the one above divided by
  2.6.
- Batch-norm statistics as domain knowledge, Li et al., "Revisiting Batch Normalization for
  Practical Domain Adaptation" (AdaBN, 2016): this is why a frozen stage's batch norm must stay
  in eval mode.

Stages are addressed by name. A model lists them in a ``STAGES`` class attribute (``SmallCNN``
does); for any other model its top-level children are its stages.

Batch-norm pitfall: ``requires_grad = False`` stops gradients, not batch norm. A BatchNorm layer
in ``train()`` mode updates its running mean and variance on every forward pass, even under
``torch.no_grad()``, so a "frozen" stage still drifts. Call :func:`set_bn_eval` after every
``model.train()`` (``fit(..., train_mode_hook=set_bn_eval)`` does that each epoch). For the same
reason a helper that runs a model in eval mode restores each module's own flag afterwards
(:func:`eval_mode`), not ``model.train(was_training)``, which would switch them back on.

Every name is importable from :mod:`tlhelpers.models.surgery` too.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from torch import nn

__all__ = [
    "ParameterSummary",
    "StageParams",
    "discriminative_lrs",
    "eval_mode",
    "freeze",
    "freeze_all_except",
    "param_groups",
    "set_bn_eval",
    "stage_names",
    "trainable_summary",
    "unfreeze",
]


def stage_names(model: nn.Module) -> tuple[str, ...]:
    """The model's stage names, input to output: ``model.STAGES`` or its top-level children."""
    names = getattr(model, "STAGES", None)
    if names is None:
        names = tuple(name for name, _ in model.named_children())
    return tuple(names)


def _check_stages(model: nn.Module, stages: Iterable[str], argument: str = "stages") -> list[str]:
    """Validate stage names against the model; a single string counts as one name."""
    if isinstance(stages, str):
        stages = [stages]
    stages = list(stages)
    valid = stage_names(model)
    unknown = [s for s in stages if s not in valid]
    if unknown:
        raise ValueError(
            f"{argument}={stages!r} names {unknown!r}, not stages of {type(model).__name__}; "
            f"valid choices: {', '.join(valid)}. Spell them as in model.STAGES."
        )
    return stages


def _set_requires_grad(model: nn.Module, stages: Iterable[str], flag: bool) -> None:
    for name in stages:
        for p in getattr(model, name).parameters():
            p.requires_grad_(flag)


def freeze(model: nn.Module, stages: Iterable[str]) -> None:
    """Stop training the named stages: their parameters get ``requires_grad = False``.

    Their batch norm still updates running statistics in ``train()`` mode; see :func:`set_bn_eval`.

    Args:
        model: the model to change in place.
        stages: stage names, e.g. ``["stem", "stage1"]`` (one name may be passed as a string).
    """
    _set_requires_grad(model, _check_stages(model, stages), False)


def unfreeze(model: nn.Module, stages: Iterable[str]) -> None:
    """Train the named stages again: their parameters get ``requires_grad = True``."""
    _set_requires_grad(model, _check_stages(model, stages), True)


def freeze_all_except(model: nn.Module, stages: Iterable[str]) -> None:
    """Freeze every parameter of the model, then unfreeze the named stages.

    ``freeze_all_except(model, ["head"])`` is feature extraction (a linear probe trained by SGD).
    """
    stages = _check_stages(model, stages)
    for p in model.parameters():
        p.requires_grad_(False)
    _set_requires_grad(model, stages, True)


class StageParams(NamedTuple):
    """One row of a :class:`ParameterSummary`."""

    name: str
    params: int
    trainable: int


@dataclass(frozen=True)
class ParameterSummary:
    """Parameter counts per stage: total and trainable. ``print()`` it for a table."""

    rows: tuple[StageParams, ...]
    total: int
    trainable: int

    @property
    def trainable_fraction(self) -> float:
        """Share of parameters that will train, in [0, 1]."""
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        share = f"{self.trainable:,} ({100 * self.trainable_fraction:.1f}%)"
        names = [r.name for r in self.rows] + ["stage", "total"]
        width_name = max(len(n) for n in names)
        width_params = max(len(f"{n:,}") for n in [self.total, *(r.params for r in self.rows)])
        width_params = max(width_params, len("params"))
        lines = [f"{'stage':<{width_name}}  {'params':>{width_params}}  trainable"]
        for r in self.rows:
            lines.append(f"{r.name:<{width_name}}  {r.params:>{width_params},}  {r.trainable:,}")
        lines.append(f"{'total':<{width_name}}  {self.total:>{width_params},}  {share}")
        return "\n".join(lines)


def trainable_summary(model: nn.Module) -> ParameterSummary:
    """Count parameters per stage, and how many of them will train (``requires_grad``).

    Parameters outside every stage (none in ``SmallCNN``) appear in a row named "(other)".

    Returns:
        A :class:`ParameterSummary`; ``print(summary)`` shows a table such as::

            stage    params  trainable
            stem        928  0
            ...
            total   141,034  1,290 (0.9%)
    """
    rows: list[StageParams] = []
    seen: set[int] = set()
    for name in stage_names(model):
        params = [p for p in getattr(model, name).parameters() if id(p) not in seen]
        seen.update(id(p) for p in params)
        rows.append(
            StageParams(
                name,
                sum(p.numel() for p in params),
                sum(p.numel() for p in params if p.requires_grad),
            )
        )
    other = [p for p in model.parameters() if id(p) not in seen]
    if other:
        rows.append(
            StageParams(
                "(other)",
                sum(p.numel() for p in other),
                sum(p.numel() for p in other if p.requires_grad),
            )
        )
    return ParameterSummary(
        rows=tuple(rows),
        total=sum(r.params for r in rows),
        trainable=sum(r.trainable for r in rows),
    )


def _check_lr(argument: str, value: object) -> None:
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{argument}={value!r} must be a positive, finite number, e.g. 1e-3.")


def param_groups(
    model: nn.Module, lrs: Mapping[str, float], *, default_lr: float | None = None
) -> list[dict[str, Any]]:
    """Optimizer parameter groups with one learning rate per stage.

    ``torch.optim.AdamW(param_groups(model, {"head": 1e-3, "stage3": 3e-4}))`` trains the head at
    1e-3 and stage3 at 3e-4. Only trainable parameters (``requires_grad``) are included, so frozen
    stages cost the optimizer nothing. Stages not named in ``lrs`` get ``default_lr``; with
    ``default_lr=None`` they are left out of the optimizer entirely (they will not train even if
    unfrozen). Stages with no trainable parameters produce no group.

    Args:
        model: the model whose stages to group.
        lrs: stage name -> learning rate (positive), e.g. from :func:`discriminative_lrs`.
        default_lr: learning rate for stages not named in ``lrs``, or None to leave them out.

    Returns:
        Groups in stage order, each ``{"params": [...], "lr": float, "name": stage}``; extra keys
        are ignored by torch optimizers and help to read ``optimizer.param_groups``.
    """
    _check_stages(model, list(lrs), argument="lrs")
    for name, lr in lrs.items():
        _check_lr(f"lrs[{name!r}]", lr)
    if default_lr is not None:
        _check_lr("default_lr", default_lr)

    groups: list[dict[str, Any]] = []
    seen: set[int] = set()
    for name in stage_names(model):
        stage_params = [p for p in getattr(model, name).parameters() if id(p) not in seen]
        seen.update(id(p) for p in stage_params)
        lr = lrs.get(name, default_lr)
        trainable = [p for p in stage_params if p.requires_grad]
        if lr is not None and trainable:
            groups.append({"params": trainable, "lr": float(lr), "name": name})
    other = [p for p in model.parameters() if id(p) not in seen and p.requires_grad]
    if other and default_lr is not None:
        groups.append({"params": other, "lr": float(default_lr), "name": "(other)"})
    if not groups:
        raise ValueError(
            f"param_groups(lrs={dict(lrs)!r}, default_lr={default_lr!r}) selects no trainable "
            "parameters: the named stages are frozen or absent. Unfreeze them first, or pass "
            "default_lr to include the other stages."
        )
    return groups


def discriminative_lrs(
    stages: Sequence[str], top_lr: float, *, factor: float = 2.6
) -> dict[str, float]:
    """ULMFiT's discriminative learning rates: each lower stage learns ``factor`` times slower.

    ``lr[stages[-1]] = top_lr`` and ``lr[stages[i]] = lr[stages[i + 1]] / factor``.

    Args:
        stages: stage names ordered from input to output, e.g. ``SmallCNN.STAGES``.
        top_lr: learning rate of the last (top) stage.
        factor: ratio between neighbouring stages' rates (ULMFiT uses 2.6).

    Returns:
        Stage name -> learning rate, ready for :func:`param_groups`.

    Example:
        >>> discriminative_lrs(["stage3", "head"], 1e-3)
        {'stage3': 0.0003846153846153846, 'head': 0.001}
    """
    if isinstance(stages, str):
        raise TypeError(
            f"stages={stages!r} must be a sequence of names ordered input to output, "
            'e.g. ["stage2", "stage3", "head"], not one string.'
        )
    stages = list(stages)
    if not stages or len(set(stages)) != len(stages):
        raise ValueError(
            f"stages={stages!r} must list at least one stage, each once, input to output "
            "(e.g. SmallCNN.STAGES)."
        )
    _check_lr("top_lr", top_lr)
    _check_lr("factor", factor)
    lrs: dict[str, float] = {}
    lr = float(top_lr)
    for name in reversed(stages):
        lrs[name] = lr
        lr = lr / factor
    return {name: lrs[name] for name in stages}


def set_bn_eval(model: nn.Module, stages: Iterable[str] | None = None) -> list[str]:
    """Put batch-norm layers into eval mode so they stop updating running statistics.

    In ``train()`` mode every BatchNorm layer normalises with the batch's statistics and updates
    its running mean and variance, even with frozen weights and even under ``torch.no_grad()``.
    In eval mode it normalises with the stored statistics and leaves them alone.
    ``model.train()`` switches them back, so call this after every ``model.train()``.

    Args:
        model: the model to change in place.
        stages: stages whose batch norm to put in eval mode; None means every BatchNorm layer
            whose own parameters are all frozen (and those without affine parameters inside a
            stage that has no trainable parameters).

    Returns:
        Names of the modules switched to eval mode (as in ``model.named_modules()``).
    """
    bn_types = (nn.modules.batchnorm._BatchNorm,)
    switched: list[str] = []
    if stages is not None:
        for stage in _check_stages(model, stages):
            for name, module in getattr(model, stage).named_modules():
                if isinstance(module, bn_types):
                    module.eval()
                    switched.append(f"{stage}.{name}" if name else stage)
        return switched

    frozen_stages = {
        s
        for s in stage_names(model)
        if not any(p.requires_grad for p in getattr(model, s).parameters())
    }
    for name, module in model.named_modules():
        if not isinstance(module, bn_types):
            continue
        own = list(module.parameters(recurse=False))
        if own:
            frozen = not any(p.requires_grad for p in own)
        else:
            frozen = name.split(".")[0] in frozen_stages
        if frozen:
            module.eval()
            switched.append(name)
    return switched


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode inside the block; afterwards every module's own flag is back.

    ``model.train(was_training)`` would put every submodule in the top module's mode, undoing
    :func:`set_bn_eval`; this restores each module's ``training`` flag as it was, even when the
    block raises.

    Example:
        >>> with eval_mode(model):
        ...     logits = model(x)
    """
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
