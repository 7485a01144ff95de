"""Models of the course and the surgery that transfer learning performs on them."""

from tlhelpers.models.cnn import SmallCNN
from tlhelpers.models.surgery import (
    ParameterSummary,
    StageParams,
    discriminative_lrs,
    eval_mode,
    freeze,
    freeze_all_except,
    grid_head,
    param_groups,
    replace_head,
    set_bn_eval,
    stage_names,
    trainable_summary,
    unfreeze,
)

__all__ = [
    "ParameterSummary",
    "SmallCNN",
    "StageParams",
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
