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
- **L2-SP**, Li, Grandvalet & Davoine, "Explicit Inductive Bias for Transfer Learning with
  Convolutional Networks" (2018): weight decay towards the *starting point* instead of towards
  zero, ``α/2 ‖w_backbone − w⁰‖² + β/2 ‖w_head‖²`` added to the loss (:class:`L2SP`).

The functions return optimizer parameter groups or loss functions rather than training loops of
their own. Gradual unfreezing (ULMFiT) and LP-FT (Kumar et al., 2022) are a few lines around
``fit`` each; notebook 03 writes them out.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from tlhelpers.models.cnn import SmallCNN
from tlhelpers.models.surgery import discriminative_lrs, param_groups, stage_names

__all__ = [
    "L2SP",
    "TRANSFERABLE_STAGES",
    "discriminative_groups",
    "head_lr_groups",
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
    stages you will train are unfrozen (before a gradual-unfreezing schedule freezes them).

    Returns:
        Groups in stage order (input to output), each ``{"params", "lr", "name"}``.
    """
    return param_groups(model, discriminative_lrs(stage_names(model), top_lr, factor=factor))


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

