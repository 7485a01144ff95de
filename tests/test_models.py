"""Tests of SmallCNN and the surgery helpers (tlhelpers.models)."""

from __future__ import annotations

import itertools
import json

import pytest
import torch
from torch import nn

from tlhelpers.models import (
    SmallCNN,
    discriminative_lrs,
    freeze,
    freeze_all_except,
    grid_head,
    param_groups,
    replace_head,
    set_bn_eval,
    trainable_summary,
    unfreeze,
)


@pytest.fixture
def model() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN(10)


def _images(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))


# ---------------------------------------------------------------- SmallCNN


def test_stage_output_shapes(model: SmallCNN) -> None:
    outputs = model.stage_outputs(_images())
    shapes = {name: tuple(t.shape) for name, t in outputs.items()}
    assert shapes == {
        "stem": (4, 32, 32, 32),
        "stage1": (4, 32, 16, 16),
        "stage2": (4, 64, 8, 8),
        "stage3": (4, 128, 4, 4),
        "pool": (4, 128),
        "head": (4, 10),
    }
    model.eval()
    x = _images()
    for name in SmallCNN.FEATURE_STAGES:
        assert model.forward_features(x, upto=name).shape == model.stage_outputs(x)[name].shape
    assert torch.allclose(model(x), model.stage_outputs(x)["head"])


def test_custom_widths_and_grey_input() -> None:
    net = SmallCNN(3, widths=(8, 8, 16, 24), in_channels=1)
    assert net.forward_features(torch.zeros(2, 1, 32, 32)).shape == (2, 24, 4, 4)
    assert net(torch.zeros(2, 1, 32, 32)).shape == (2, 3)


def test_parameter_count_in_expected_range() -> None:
    assert 140_000 <= sum(p.numel() for p in SmallCNN(10).parameters()) <= 160_000
    assert 140_000 <= sum(p.numel() for p in SmallCNN(52).parameters()) <= 160_000
    convs = [m for m in SmallCNN(10).modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5 and all(c.bias is None for c in convs)


def test_stage_attributes_in_order(model: SmallCNN) -> None:
    names = [name for name, _ in model.named_children()]
    assert names == ["stem", "stage1", "stage2", "stage3", "pool", "head"]
    assert SmallCNN.STAGES == ("stem", "stage1", "stage2", "stage3", "head")


def test_channels_last_gives_same_outputs(model: SmallCNN) -> None:
    model.eval()
    x = _images()
    expected = model.stage_outputs(x)
    model.to(memory_format=torch.channels_last)
    got = model.stage_outputs(x.contiguous(memory_format=torch.channels_last))
    for name in expected:
        assert torch.allclose(expected[name], got[name], atol=1e-5), name


def test_config_round_trip(model: SmallCNN) -> None:
    config = model.config
    assert config == {
        "arch": "SmallCNN",
        "num_classes": 10,
        "widths": (32, 32, 64, 128),
        "in_channels": 3,
    }
    rebuilt = SmallCNN.from_config(json.loads(json.dumps(config)))  # widths come back as a list
    assert rebuilt.config == config
    rebuilt.load_state_dict(model.state_dict())
    model.eval()
    rebuilt.eval()
    x = _images()
    assert torch.equal(model(x), rebuilt(x))


@pytest.mark.parametrize(
    ("config", "fragment"),
    [
        ({"arch": "ResNet", "num_classes": 10}, "'ResNet'"),
        ({"num_classes": 10, "depth": 3}, "depth"),
        ({"widths": (1, 2, 3, 4)}, "num_classes"),
        ({"num_classes": 10, "widths": (32, 64)}, "(32, 64)"),
        ({"num_classes": 0}, "num_classes=0"),
    ],
)
def test_from_config_validates(config: dict, fragment: str) -> None:
    with pytest.raises(ValueError) as error:
        SmallCNN.from_config(config)
    assert fragment in str(error.value)


def test_unknown_feature_stage_lists_valid_ones(model: SmallCNN) -> None:
    with pytest.raises(ValueError) as error:
        model.forward_features(_images(), upto="stage4")
    assert "'stage4'" in str(error.value) and "stem, stage1, stage2, stage3, pool" in str(
        error.value
    )


# ---------------------------------------------------------------- surgery


def test_replace_head(model: SmallCNN) -> None:
    freeze(model, ["head"])
    head = replace_head(model, 5)
    assert model.head is head
    assert (head.in_features, head.out_features) == (128, 5)
    assert all(p.requires_grad for p in head.parameters())
    assert model(_images(3)).shape == (3, 5)
    assert model.config["num_classes"] == 5
    with pytest.raises(ValueError, match="num_classes=0"):
        replace_head(model, 0)


def test_freeze_and_unfreeze_flags(model: SmallCNN) -> None:
    freeze(model, ["stem", "stage1"])
    for name in SmallCNN.STAGES:
        expected = name not in ("stem", "stage1")
        assert all(p.requires_grad == expected for p in getattr(model, name).parameters()), name
    unfreeze(model, "stage1")  # a single name may be a string
    assert all(p.requires_grad for p in model.stage1.parameters())
    freeze_all_except(model, ["head"])
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [
        "head.weight",
        "head.bias",
    ]


def test_unknown_stage_names_are_listed(model: SmallCNN) -> None:
    for call in (freeze, unfreeze, freeze_all_except):
        with pytest.raises(ValueError) as error:
            call(model, ["stage9", "head"])
        message = str(error.value)
        assert "'stage9'" in message and "stem, stage1, stage2, stage3, head" in message


def test_frozen_parameters_do_not_change_after_a_step(model: SmallCNN) -> None:
    freeze_all_except(model, ["stage3", "head"])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)  # all params, incl. frozen ones
    loss = nn.functional.cross_entropy(model(_images(8)), torch.arange(8) % 10)
    loss.backward()
    optimizer.step()
    for name, p in model.named_parameters():
        changed = not torch.equal(before[name], p)
        assert changed == name.startswith(("stage3", "head")), name


def test_trainable_summary_matches_direct_count(model: SmallCNN) -> None:
    freeze(model, ["stem", "stage1", "stage2"])
    summary = trainable_summary(model)
    assert summary.total == sum(p.numel() for p in model.parameters())
    assert summary.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    for row in summary.rows:
        params = list(getattr(model, row.name).parameters())
        assert row.params == sum(p.numel() for p in params)
        assert row.trainable == sum(p.numel() for p in params if p.requires_grad)
    text = str(summary)
    assert text.splitlines()[0].split() == ["stage", "params", "trainable"]
    share = 100 * summary.trainable / summary.total
    assert text.splitlines()[-1].split() == [
        "total",
        f"{summary.total:,}",
        f"{summary.trainable:,}",
        f"({share:.1f}%)",
    ]


def test_param_groups_rates_and_exact_parameters(model: SmallCNN) -> None:
    freeze(model, ["stem"])
    groups = param_groups(model, {"head": 1e-3, "stage3": 5e-4}, default_lr=1e-4)
    assert [(g["name"], g["lr"]) for g in groups] == [
        ("stage1", 1e-4),
        ("stage2", 1e-4),
        ("stage3", 5e-4),
        ("head", 1e-3),
    ]
    optimizer = torch.optim.AdamW(groups)
    in_optimizer = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert in_optimizer == {id(p) for p in model.parameters() if p.requires_grad}

    only_named = param_groups(model, {"head": 1e-3})  # default_lr=None leaves the rest out
    assert [g["name"] for g in only_named] == ["head"]
    assert {id(p) for p in only_named[0]["params"]} == {id(p) for p in model.head.parameters()}


@pytest.mark.parametrize(
    ("lrs", "default_lr", "fragment"),
    [
        ({"stage7": 1e-3}, None, "'stage7'"),
        ({"head": 0.0}, None, "lrs['head']=0.0"),
        ({"head": -1e-3}, None, "-0.001"),
        ({"head": 1e-3}, -1.0, "default_lr=-1.0"),
        ({"stem": 1e-3}, None, "no trainable"),  # stem frozen below
    ],
)
def test_param_groups_errors(model: SmallCNN, lrs: dict, default_lr: float | None, fragment: str):
    freeze(model, ["stem"])
    with pytest.raises(ValueError) as error:
        param_groups(model, lrs, default_lr=default_lr)
    assert fragment in str(error.value)


def test_discriminative_lrs_ratios() -> None:
    lrs = discriminative_lrs(SmallCNN.STAGES, 1e-3)
    assert list(lrs) == list(SmallCNN.STAGES)
    assert lrs["head"] == 1e-3
    values = list(lrs.values())
    for lower, upper in itertools.pairwise(values):
        assert upper / lower == pytest.approx(2.6, rel=1e-12)
    assert discriminative_lrs(["a", "b"], 1.0, factor=10.0) == {"a": 0.1, "b": 1.0}
    with pytest.raises(ValueError, match="factor=0"):
        discriminative_lrs(["a", "b"], 1.0, factor=0)
    with pytest.raises(TypeError, match="'head'"):
        discriminative_lrs("head", 1.0)


def test_set_bn_eval_keeps_running_statistics(model: SmallCNN) -> None:
    freeze(model, ["stem", "stage1", "stage2"])
    model.train()
    switched = set_bn_eval(model)  # stages=None: BN layers whose parameters are frozen
    assert switched == ["stem.1", "stage1.2", "stage2.1", "stage2.4"]
    frozen_bn = {n: b.clone() for n, b in model.named_buffers() if n.startswith(("stem", "stage1"))}
    stage3_mean = model.stage3[1].running_mean.clone()
    with torch.no_grad():
        model(_images(8) * 3 + 1)
    for name, value in frozen_bn.items():
        assert torch.equal(model.get_buffer(name), value), name
    assert not torch.equal(model.stage3[1].running_mean, stage3_mean)  # trainable BN still learns

    model.train()
    assert set_bn_eval(model, ["stage3"]) == ["stage3.1"]
    assert not model.stage3[1].training and model.stem[1].training
    with pytest.raises(ValueError, match="'stage8'"):
        set_bn_eval(model, ["stage8"])


def _grid_head_by_hand(model: nn.Module, num_classes: int = 10) -> nn.Module:
    """The head notebook 03 writes out: 2×2 average pool, flatten, new linear layer."""
    model.pool = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten())
    model.head = nn.Linear(4 * model.widths[-1], num_classes)
    return model


def test_grid_head_equals_the_written_out_version() -> None:
    torch.manual_seed(3)
    by_hand = _grid_head_by_hand(SmallCNN(num_classes=26, widths=(8, 8, 16, 32)))
    torch.manual_seed(3)
    packaged = grid_head(SmallCNN(num_classes=26, widths=(8, 8, 16, 32)))
    hand_state, packaged_state = by_hand.state_dict(), packaged.state_dict()
    assert list(hand_state) == list(packaged_state)
    for name, tensor in hand_state.items():
        assert torch.equal(tensor, packaged_state[name]), name
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(by_hand.eval()(x), packaged.eval()(x))
    assert packaged(x).shape == (3, 10) and packaged.num_classes == 10


@pytest.mark.parametrize("kwargs", [{"num_classes": 0}, {"grid": True}, {"grid": 1.5}])
def test_grid_head_refuses_bad_sizes(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must be a positive integer"):
        grid_head(SmallCNN(num_classes=10, widths=(8, 8, 16, 32)), **kwargs)


def test_grid_head_needs_widths() -> None:
    with pytest.raises(TypeError, match="no `widths`"):
        grid_head(nn.Linear(3, 3))
