"""Models of the course, the backbone registry, and the surgery transfer learning performs."""

from tlhelpers.models.cnn import SmallCNN
from tlhelpers.models.registry import (
    BACKBONES,
    Backbone,
    LoadedBackbone,
    backbone_info,
    backbone_status,
    list_backbones,
    load_backbone,
)
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
    "BACKBONES",
    "Backbone",
    "LoadedBackbone",
    "ParameterSummary",
    "SmallCNN",
    "StageParams",
    "backbone_info",
    "backbone_status",
    "discriminative_lrs",
    "eval_mode",
    "freeze",
    "freeze_all_except",
    "grid_head",
    "list_backbones",
    "load_backbone",
    "param_groups",
    "replace_head",
    "set_bn_eval",
    "stage_names",
    "trainable_summary",
    "unfreeze",
]
