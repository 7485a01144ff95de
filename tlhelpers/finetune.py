"""Fine-tuning strategies as small functions that compose with :func:`tlhelpers.train.fit`.

Each strategy answers one question: which pretrained weights to start from, which of them to
train, at what learning rate, and what to pull them towards.

- **Layer transfer**, Yosinski et al., "How transferable are features in deep neural networks?"
  (2014): copy the first ``n`` stages of a pretrained network into a freshly initialised one and
  train the rest (:func:`transfer_stages`). Lower stages hold general features that transfer;
  upper ones are specific to the pretraining task.
- **Discriminative learning rates**, Howard & Ruder, "Universal Language Model Fine-tuning for
  Text Classification" (ULMFiT, 2018): each stage learns 2.6 times slower than the one above it
  (:func:`discriminative_groups`); a simpler variant trains only the new head faster
  (:func:`head_lr_groups`).
- **Gradual unfreezing**, also ULMFiT: train the head alone first, then unfreeze one more stage
  per epoch from the top down, so the random head does not wreck the pretrained features before
  it has learnt anything (:class:`GradualUnfreezing`).
- **L2-SP**, Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with
  Convolutional Networks" (2018): weight decay towards the *starting point* instead of towards
  zero, ``α/2 ‖w_backbone − w⁰‖² + β/2 ‖w_head‖²`` added to the loss (:class:`L2SP`).
- **LP-FT**, Kumar et al., "Fine-Tuning can Distort Pretrained Features and Underperform
  Out-of-Distribution" (2022): first a linear probe (head only, frozen backbone), then fine-tune
  everything starting from that trained head (:func:`lp_ft`). A good head means small gradients
  into the backbone at the start of fine-tuning, so the features are distorted less.

The functions return optimizer parameter groups, schedules or loss functions rather than
training loops of their own; :func:`lp_ft` and :func:`finetune` are thin conveniences around
:func:`~tlhelpers.train.fit`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tlhelpers.models.cnn import SmallCNN
from tlhelpers.models.surgery import (
    discriminative_lrs,
    freeze_all_except,
    param_groups,
    set_bn_eval,
    stage_names,
)
from tlhelpers.train import History, fit

__all__ = [
    "L2SP",
    "TRANSFERABLE_STAGES",
    "GradualUnfreezing",
    "discriminative_groups",
    "finetune",
    "head_lr_groups",
    "lp_ft",
    "transfer_stages",
]

TRANSFERABLE_STAGES: tuple[str, ...] = ("stem", "stage1", "stage2", "stage3")
"""SmallCNN's stages below the head, input to output: what :func:`transfer_stages` can copy."""


# ---------------------------------------------------------------- small checks


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_positive(argument: str, value: object, example: str) -> None:
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{argument}={value!r} must be a positive, finite number, e.g. {example}.")


def _check_non_negative(argument: str, value: object, example: str) -> None:
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{argument}={value!r} must be a finite number >= 0, e.g. {example}.")


def _check_steps(argument: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{argument}={value!r} must be a positive integer, e.g. 100.")


def _check_fit_kwargs(function: str, fit_kwargs: dict[str, Any], reserved: Iterable[str]) -> None:
    clash = sorted(set(fit_kwargs) & set(reserved))
    if clash:
        raise TypeError(
            f"{function}() sets {', '.join(clash)} for fit itself; remove "
            f"{', '.join(f'{k}=' for k in clash)} from the call (it passes only the other fit "
            "arguments, such as device, progress or early_stopping, on to fit)."
        )


# ---------------------------------------------------------------- layer transfer


def transfer_stages(pretrained: SmallCNN, n: int, *, num_classes: int, seed: int = 0) -> SmallCNN:
    """A new SmallCNN whose first ``n`` stages are copies of ``pretrained``'s; the rest is fresh.

    Yosinski et al.'s (2014) transfer experiment: the copied stages bring their weights and
    batch-norm statistics; the other stages and the head (``num_classes`` outputs) are randomly
    initialised after ``torch.manual_seed(seed)``. ``n = 0`` is training from scratch, ``n = 4``
    keeps the whole backbone. ``pretrained`` is not changed, and the copies share no memory with
    it. Every parameter of the new model is trainable; freeze the copied stages for the "frozen"
    variant of the experiment.

    Args:
        pretrained: the source network.
        n: how many of :data:`TRANSFERABLE_STAGES` to copy, counted from the input (0 to 4).
        num_classes: outputs of the new head.
        seed: seed for the fresh stages' initialisation.

    Returns:
        The new model, with ``pretrained``'s widths and input channels, on its device.
    """
    if not isinstance(pretrained, SmallCNN):
        raise TypeError(
            f"pretrained is a {type(pretrained).__name__}, expected SmallCNN; transfer_stages "
            "rebuilds the architecture from SmallCNN.config. Copy stages of other models by "
            "hand with load_state_dict."
        )
    limit = len(TRANSFERABLE_STAGES)
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= limit:
        raise ValueError(
            f"n={n!r} must be an integer from 0 to {limit}: how many of "
            f"{', '.join(TRANSFERABLE_STAGES)} to copy from the input side (0 = from scratch, "
            f"{limit} = the whole backbone)."
        )
    torch.manual_seed(seed)
    model = SmallCNN.from_config({**pretrained.config, "num_classes": num_classes})
    for name in TRANSFERABLE_STAGES[:n]:
        # load_state_dict copies values (parameters and batch-norm buffers) into model's tensors
        getattr(model, name).load_state_dict(getattr(pretrained, name).state_dict())
    first = next(pretrained.parameters(), None)
    return model.to(first.device) if first is not None else model


# ---------------------------------------------------------------- learning rates per stage


def head_lr_groups(
    model: nn.Module, lr: float, *, head_factor: float = 10.0
) -> list[dict[str, Any]]:
    """Optimizer parameter groups: the head at ``lr * head_factor``, other stages at ``lr``.

    A new head starts from random weights and can learn faster than the pretrained stages below
    it. Only trainable parameters are included (see :func:`~tlhelpers.models.param_groups`).

    Args:
        model: a model with a ``head`` stage.
        lr: learning rate of every stage but the head.
        head_factor: how many times faster the head learns.

    Returns:
        Groups in stage order, each ``{"params": [...], "lr": float, "name": stage}``, ready for
        ``torch.optim.AdamW(groups)``.
    """
    _check_positive("lr", lr, "1e-4")
    _check_positive("head_factor", head_factor, "10.0")
    return param_groups(model, {"head": lr * head_factor}, default_lr=lr)


def discriminative_groups(
    model: nn.Module, top_lr: float, *, factor: float = 2.6
) -> list[dict[str, Any]]:
    """ULMFiT's discriminative fine-tuning as optimizer parameter groups.

    The top stage (the head) learns at ``top_lr`` and each stage below at the rate of the one
    above divided by ``factor``: for SmallCNN, stage3 at ``top_lr / 2.6``, ..., stem at
    ``top_lr / 2.6**4``. Only trainable parameters are included, so build the groups while the
    stages you will train are unfrozen (before :class:`GradualUnfreezing` freezes them).

    Returns:
        Groups in stage order (input to output), each ``{"params", "lr", "name"}``.
    """
    return param_groups(model, discriminative_lrs(stage_names(model), top_lr, factor=factor))


# ---------------------------------------------------------------- gradual unfreezing


class GradualUnfreezing:
    """ULMFiT's gradual unfreezing: the head alone first, then one more stage per epoch.

    On construction every parameter of the model is frozen except the top stage's (the head).
    ``on_epoch(e)`` then leaves the top ``e + 1`` stages trainable: epoch 0 the head, epoch 1
    stage3 and the head, and so on until every stage trains.

    Build the optimizer *once*, over all parameters, before the loop: frozen parameters get no
    gradient, and AdamW (like every torch optimizer) skips parameters without one, weight decay
    included. Because :func:`discriminative_groups` and :func:`head_lr_groups` keep only
    trainable parameters, make those groups before constructing the schedule::

        groups = discriminative_groups(model, 1e-3)      # all stages still trainable
        schedule = GradualUnfreezing(model)             # now only the head is
        optimizer = torch.optim.AdamW(groups)
        for epoch in range(5):
            schedule.on_epoch(epoch)
            fit(model, loader, optimizer=optimizer, epochs=1, train_mode_hook=set_bn_eval)

    ``train_mode_hook=set_bn_eval`` keeps the frozen stages' batch-norm statistics fixed too.

    Args:
        model: the model to change in place.
        stages: the schedule's stages ordered input to output, unfrozen from the last one
            backwards; default all of ``stage_names(model)``. Stages left out stay frozen.
    """

    def __init__(self, model: nn.Module, *, stages: Sequence[str] | None = None) -> None:
        valid = stage_names(model)
        if stages is None:
            stages = valid
        if isinstance(stages, str):
            raise TypeError(
                f"stages={stages!r} must be a sequence of stage names ordered input to output, "
                'e.g. ["stage2", "stage3", "head"], not one string.'
            )
        stages = tuple(stages)
        unknown = [s for s in stages if s not in valid]
        if not stages or unknown or len(set(stages)) != len(stages):
            raise ValueError(
                f"stages={list(stages)!r} must name at least one stage of "
                f"{type(model).__name__}, each once, ordered input to output"
                f"{f'; {unknown!r} are not stages' if unknown else ''}. Valid choices: "
                f"{', '.join(valid)}."
            )
        self.model = model
        self.stages: tuple[str, ...] = stages
        freeze_all_except(model, [stages[-1]])

    def __repr__(self) -> str:
        return f"GradualUnfreezing(stages={self.stages!r})"

    def trainable_stages(self, epoch: int) -> tuple[str, ...]:
        """The stages ``on_epoch(epoch)`` leaves trainable, input to output (changes nothing)."""
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise ValueError(
                f"epoch={epoch!r} must be an integer >= 0 (0-based: epoch 0 trains the head only)."
            )
        return self.stages[max(len(self.stages) - (epoch + 1), 0) :]

    def on_epoch(self, epoch: int) -> list[str]:
        """Make exactly the top ``epoch + 1`` stages of the schedule trainable; call before epoch.

        The other stages of the schedule are frozen, so calling it again with the same epoch
        changes nothing, and going back to an earlier epoch freezes stages again.

        Returns:
            The stages unfrozen by this call (trainable now, not fully before), input to output;
            ``[]`` for epoch 0, whose head is trainable from construction.
        """
        target = self.trainable_stages(epoch)
        newly = []
        for name in self.stages:
            params = list(getattr(self.model, name).parameters())
            train = name in target
            if train and not all(p.requires_grad for p in params):
                newly.append(name)
            for p in params:
                p.requires_grad_(train)
        return newly


# ---------------------------------------------------------------- L2-SP


class L2SP:
    """L2-SP regularised cross-entropy: decay the backbone towards its starting point.

    ``loss = cross_entropy(logits, targets) + α/2 Σ‖w − w⁰‖² + β/2 Σ‖w_head‖²``, where the first
    sum runs over every parameter outside the head, ``w⁰`` is its value when this object was made
    (the pretrained weights), and the second sum is ordinary L2 on the new head (Li, Grandvalet
    & Davoine, 2018). Pass an instance as ``fit(..., loss_fn=L2SP(model, alpha=0.01,
    beta=0.01))`` and use an optimizer without weight decay (``weight_decay=0``), which would
    otherwise pull the backbone towards zero as well.

    The starting point is kept on the device the model was on; when ``fit`` moves the model, the
    starting point is copied to the parameters' device on first use (the original stays).

    Args:
        model: the model being fine-tuned, with its pretrained weights loaded.
        alpha: strength of the pull towards the starting point (>= 0).
        beta: strength of the head's weight decay (>= 0).
        head: name of the head stage, excluded from the starting point.
    """

    def __init__(self, model: nn.Module, *, alpha: float, beta: float, head: str = "head") -> None:
        _check_non_negative("alpha", alpha, "0.01")
        _check_non_negative("beta", beta, "0.01")
        module = getattr(model, head, None) if isinstance(head, str) else None
        if not isinstance(module, nn.Module):
            raise ValueError(
                f"head={head!r} is not a submodule of {type(model).__name__}; valid choices: "
                f"{', '.join(stage_names(model))}. Name the classifier layer."
            )
        self.model = model
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.head = head
        prefix = head + "."
        self.start: dict[str, torch.Tensor] = {
            name: p.detach().clone()
            for name, p in model.named_parameters()
            if not name.startswith(prefix)
        }
        self._moved: dict[str, torch.Tensor] = {}  # start copied to the parameters' device

    def __repr__(self) -> str:
        return f"L2SP(alpha={self.alpha}, beta={self.beta}, head={self.head!r})"

    def _start_on(self, name: str, device: torch.device) -> torch.Tensor:
        w0 = self.start[name]
        if w0.device == device:
            return w0
        moved = self._moved.get(name)
        if moved is None or moved.device != device:
            moved = self._moved[name] = w0.to(device)
        return moved

    def penalty(self) -> torch.Tensor:
        """``α/2 Σ‖w − w⁰‖²`` over non-head parameters plus ``β/2 Σ‖w_head‖²``.

        Returns:
            A differentiable scalar tensor on the parameters' device.
        """
        params = dict(self.model.named_parameters())
        missing = [name for name in self.start if name not in params]
        if missing:
            raise ValueError(
                f"the model no longer has parameters {missing[:3]!r} it had when L2SP was made; "
                "build the L2SP after the last change to the model's layers (other than the head)."
            )
        device = next(iter(params.values())).device
        drift = torch.zeros((), device=device)
        for name in self.start:
            p = params[name]
            drift = drift + (p - self._start_on(name, p.device)).pow(2).sum()
        head = torch.zeros((), device=device)
        for p in getattr(self.model, self.head).parameters():
            head = head + p.pow(2).sum()
        return self.alpha / 2 * drift + self.beta / 2 * head

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy plus :meth:`penalty`: a ``loss_fn`` for :func:`fit`.

        Shapes:
            logits: (B, num_classes); targets: (B,) class indices; returns a scalar.
        """
        return F.cross_entropy(logits, targets) + self.penalty()


# ---------------------------------------------------------------- training conveniences


def lp_ft(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    probe_steps: int,
    finetune_steps: int,
    probe_lr: float,
    finetune_lr: float,
    weight_decay: float = 0.0,
    **fit_kwargs: Any,
) -> tuple[History, History]:
    """LP-FT (Kumar et al., 2022): a linear probe, then full fine-tuning from the probed head.

    1. Linear probe: every stage but ``head`` is frozen and its batch norm kept in eval mode
       (``train_mode_hook=set_bn_eval``), so the backbone stays exactly as it was; AdamW trains
       the head for ``probe_steps`` steps at ``probe_lr``.
    2. Fine-tune: every parameter is unfrozen and a new AdamW trains them all for
       ``finetune_steps`` steps at ``finetune_lr`` (typically 10-100 times smaller than
       ``probe_lr``), with batch norm in train mode.

    The model is changed in place and left fully trainable.

    Args:
        model: a pretrained model with a ``head`` stage (already replaced for the new task).
        train_loader: yields ``(inputs, targets)`` batches.
        val_loader: optional, evaluated after every epoch of both phases.
        probe_steps: optimizer steps of the linear probe.
        finetune_steps: optimizer steps of the fine-tuning.
        probe_lr: learning rate of the probe.
        finetune_lr: learning rate of the fine-tuning.
        weight_decay: AdamW weight decay of both phases.
        **fit_kwargs: passed to both :func:`fit` calls, e.g. ``device="cpu", progress=False``.

    Returns:
        ``(probe_history, finetune_history)``.
    """
    _check_steps("probe_steps", probe_steps)
    _check_steps("finetune_steps", finetune_steps)
    _check_positive("probe_lr", probe_lr, "1e-2")
    _check_positive("finetune_lr", finetune_lr, "1e-4")
    _check_non_negative("weight_decay", weight_decay, "0.01")
    _check_fit_kwargs("lp_ft", fit_kwargs, ("optimizer", "epochs", "max_steps", "train_mode_hook"))
    desc = fit_kwargs.pop("desc", None)

    freeze_all_except(model, ["head"])
    probe_optimizer = torch.optim.AdamW(
        param_groups(model, {"head": probe_lr}), lr=probe_lr, weight_decay=weight_decay
    )
    probe = fit(
        model,
        train_loader,
        val_loader,
        optimizer=probe_optimizer,
        max_steps=probe_steps,
        train_mode_hook=set_bn_eval,
        desc=desc or "linear probe",
        **fit_kwargs,
    )

    for p in model.parameters():
        p.requires_grad_(True)
    finetune_optimizer = torch.optim.AdamW(
        model.parameters(), lr=finetune_lr, weight_decay=weight_decay
    )
    tuned = fit(
        model,
        train_loader,
        val_loader,
        optimizer=finetune_optimizer,
        max_steps=finetune_steps,
        desc=desc or "fine-tune",
        **fit_kwargs,
    )
    return probe, tuned


def finetune(
    model: nn.Module,
    train_loader: Iterable,
    val_loader: Iterable | None = None,
    *,
    groups: list[dict[str, Any]],
    steps: int,
    weight_decay: float = 0.0,
    **fit_kwargs: Any,
) -> History:
    """Train with AdamW over the given parameter groups for ``steps`` optimizer steps.

    ``finetune(model, loader, groups=discriminative_groups(model, 1e-3), steps=500)``.

    Args:
        model: the model to train in place.
        train_loader: yields ``(inputs, targets)`` batches.
        val_loader: optional, evaluated after every epoch.
        groups: parameter groups, each with ``"params"`` and ``"lr"``, e.g. from
            :func:`head_lr_groups` or :func:`discriminative_groups`.
        steps: optimizer steps.
        weight_decay: AdamW weight decay (use 0 with :class:`L2SP`).
        **fit_kwargs: passed to :func:`fit`, e.g. ``loss_fn``, ``device``, ``progress``.

    Returns:
        fit's :class:`~tlhelpers.train.History`.
    """
    if not isinstance(groups, (list, tuple)) or not groups:
        raise ValueError(
            f"groups={groups!r} must be a non-empty list of parameter groups, e.g. "
            "groups=head_lr_groups(model, 1e-4) or discriminative_groups(model, 1e-3)."
        )
    for i, group in enumerate(groups):
        if not isinstance(group, dict) or "params" not in group or "lr" not in group:
            shown = sorted(group) if isinstance(group, dict) else type(group).__name__
            raise ValueError(
                f"groups[{i}] ({shown}) must be a dict with 'params' and 'lr', as made by "
                "head_lr_groups or discriminative_groups."
            )
    _check_steps("steps", steps)
    _check_non_negative("weight_decay", weight_decay, "0.01")
    _check_fit_kwargs("finetune", fit_kwargs, ("optimizer", "epochs", "max_steps"))
    optimizer = torch.optim.AdamW(groups, weight_decay=weight_decay)
    return fit(model, train_loader, val_loader, optimizer=optimizer, max_steps=steps, **fit_kwargs)
