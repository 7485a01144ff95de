"""Helpers that run a model in eval mode give back every module's own train/eval flag, so batch
norm that set_bn_eval froze stays in eval (``model.train(was_training)`` would undo it)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from tlhelpers.adapt import features_of
from tlhelpers.features import extract_features
from tlhelpers.models import SmallCNN, eval_mode, freeze, set_bn_eval
from tlhelpers.train import evaluate, predict


def _modes(model: nn.Module) -> dict[str, bool]:
    return {name: module.training for name, module in model.named_modules()}


def _frozen_bn_model() -> SmallCNN:
    """A SmallCNN in train mode whose two lower stages are frozen, their batch norm in eval."""
    torch.manual_seed(0)
    model = SmallCNN(5, widths=(8, 8, 16, 16)).train()
    freeze(model, ["stem", "stage1"])
    assert set_bn_eval(model)
    return model


IMAGES = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
LOADER = [(IMAGES.float() / 255, torch.arange(6) % 5)]

HELPERS: dict[str, Callable[[nn.Module], object]] = {
    "extract_features": lambda m: extract_features(m, IMAGES, "stage3", cache=False),
    "features_of": lambda m: features_of(m, IMAGES, upto="stage2"),
    "evaluate": lambda m: evaluate(m, LOADER, device="cpu"),
    "predict": lambda m: predict(m, LOADER, device="cpu"),
}


@pytest.mark.parametrize("name", sorted(HELPERS))
def test_frozen_batch_norm_stays_in_eval(name: str) -> None:
    model = _frozen_bn_model()
    before = _modes(model)
    assert any(before.values()) and not all(before.values())  # a mix of train and eval
    HELPERS[name](model)
    assert _modes(model) == before


def test_eval_mode_restores_each_flag_even_when_the_block_raises() -> None:
    model = _frozen_bn_model()
    before = _modes(model)
    with pytest.raises(RuntimeError, match="inside"), eval_mode(model) as inside:
        assert inside is model
        assert not any(_modes(model).values())
        raise RuntimeError("inside")
    assert _modes(model) == before
