"""Network surgery for transfer learning: new heads, freezing by stage, per-stage learning rates.

The notebooks first write each of these out by hand (``p.requires_grad = False``, a new
``nn.Linear``, a list of parameter groups) and then call them from here.

The heads are replaced here (:func:`replace_head`, :func:`grid_head`). Freezing, parameter
groups, discriminative learning rates and batch-norm modes live in
:mod:`tlhelpers.models.freezing`; every name is importable from here.

Feature extraction and fine-tuning of pretrained stages follow Yosinski et al., "How
transferable are features in deep neural networks?" (2014).
"""

from __future__ import annotations

import torch
from torch import nn

from tlhelpers.models.freezing import (
    ParameterSummary,
    StageParams,
    discriminative_lrs,
    eval_mode,
    freeze,
    freeze_all_except,
    param_groups,
    set_bn_eval,
    stage_names,
    trainable_summary,
    unfreeze,
)

__all__ = [
    "ParameterSummary",
    "StageParams",
    "check_input_channels",
    "discriminative_lrs",
    "eval_mode",
    "freeze",
    "freeze_all_except",
    "grid_head",
    "param_groups",
    "replace_head",
    "set_bn_eval",
    "stage_names",
    "trainable_summary",
    "unfreeze",
]


def replace_head(model: nn.Module, num_classes: int) -> nn.Linear:
    """Swap ``model.head`` for a fresh, trainable ``nn.Linear`` with ``num_classes`` outputs.

    The new head keeps the old one's ``in_features``, bias setting, device and dtype; its weights
    come from the default initialisation (seed first for repeatable runs). ``model.num_classes``
    is updated when the model has it, so ``model.config`` stays truthful.

    Args:
        model: a model with a linear ``head`` attribute (e.g. ``SmallCNN``).
        num_classes: outputs of the new head.

    Shapes:
        new head: (B, in_features) -> (B, num_classes).

    Returns:
        The new head (already attached to the model).
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes={num_classes!r} must be a positive integer, e.g. 10.")
    old = getattr(model, "head", None)
    if not isinstance(old, nn.Linear):
        raise TypeError(
            f"{type(model).__name__}.head is {type(old).__name__}, expected nn.Linear; "
            "replace_head works on models whose classifier is a linear `head` attribute "
            "(such as SmallCNN). Assign a new layer by hand for other models."
        )
    new = nn.Linear(
        old.in_features,
        num_classes,
        bias=old.bias is not None,
        device=old.weight.device,
        dtype=old.weight.dtype,
    )
    model.head = new
    if hasattr(model, "num_classes"):
        model.num_classes = num_classes
    return new


def grid_head(model: nn.Module, num_classes: int = 10, grid: int = 2) -> nn.Module:
    """Give a SmallCNN a spatial head: last-stage maps average-pooled to grid × grid, then linear.

    The global average pool throws away *where* a stroke is; a 2 × 2 grid keeps a little of it,
    which helps on glyphs (notebook 03 measures it). The new head's weights come from the default
    initialisation (seed first for repeatable runs); ``model.num_classes`` is updated. A model
    changed this way no longer matches ``model.config``'s global pool, so save its state dict,
    not a course checkpoint.

    Shapes:
        last-stage maps (B, C, H, W) -> pool (B, grid·grid·C) -> head (B, num_classes).

    Returns:
        The same model, changed in place.
    """
    for name, value in (("num_classes", num_classes), ("grid", grid)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer, e.g. {name}=2.")
    widths = getattr(model, "widths", None)
    if not widths:
        raise TypeError(
            f"{type(model).__name__} has no `widths`; grid_head works on SmallCNN-style models "
            "with `pool`, `head` and `widths` attributes."
        )
    model.pool = nn.Sequential(nn.AdaptiveAvgPool2d(grid), nn.Flatten())
    model.head = nn.Linear(grid * grid * widths[-1], num_classes)
    if hasattr(model, "num_classes"):
        model.num_classes = num_classes
    return model


def check_input_channels(model: nn.Module, images: torch.Tensor, name: str = "images") -> None:
    """Raise a ValueError when ``images`` (N, C, H, W) have a channel count other than the one
    the model's first convolution takes; models without a convolution accept anything."""
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is not None and images.shape[1] != first.in_channels:
        raise ValueError(
            f"{name} have {images.shape[1]} channel(s) per image but {type(model).__name__} "
            f"takes {first.in_channels} (its first convolution); pass images of shape "
            f"(N, {first.in_channels}, H, W), e.g. grey ones repeated: x.repeat(1, 3, 1, 1)."
        )
