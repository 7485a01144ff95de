"""Tests of the fine-tuning strategies (tlhelpers.finetune) on a tiny SmallCNN."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from tlhelpers.data import TensorLoader
from tlhelpers.finetune import (
    L2SP,
    TRANSFERABLE_STAGES,
    discriminative_groups,
    head_lr_groups,
    transfer_stages,
)
from tlhelpers.models import SmallCNN
from tlhelpers.train import fit

WIDTHS = (4, 4, 8, 8)
FIT = {"progress": False, "device": "cpu"}


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: the tiny model gains nothing from more, and a busy CPU makes
    spinning worker threads slow every fit call by orders of magnitude."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(num_classes: int = 5, seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(num_classes, widths=WIDTHS)


def loader(n: int = 16, batch_size: int = 8, seed: int = 1) -> TensorLoader:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, 32, 32, generator=g)  # (n, 3, 32, 32)
    y = torch.randint(0, 5, (n,), generator=g)  # (n,)
    return TensorLoader(x, y, batch_size)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of every parameter and buffer."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def stage_state(state: dict[str, torch.Tensor], stage: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.split(".")[0] == stage}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def pretrained_model() -> SmallCNN:
    """A tiny model with every parameter and batch-norm buffer moved away from its init."""
    model = tiny(seed=123)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g))
        for name, b in model.named_buffers():
            if name.endswith("num_batches_tracked"):
                b.fill_(7)
            else:
                b.add_(torch.rand(b.shape, generator=g) + 0.5)  # var stays positive
    return model


# ---------------------------------------------------------------- transfer_stages


def test_transferable_stages_are_the_backbone() -> None:
    assert TRANSFERABLE_STAGES == SmallCNN.STAGES[:-1] == ("stem", "stage1", "stage2", "stage3")


@pytest.mark.parametrize("n", range(5))
def test_transfer_stages_copies_exactly_the_first_n(n: int) -> None:
    source = pretrained_model()
    before = snapshot(source)
    model = transfer_stages(source, n, num_classes=3, seed=0)
    assert isinstance(model, SmallCNN) and model is not source
    assert model.widths == WIDTHS and model.in_channels == 3 and model.num_classes == 3
    assert model.head.out_features == 3
    new = snapshot(model)
    for i, stage in enumerate(TRANSFERABLE_STAGES):
        got, old = stage_state(new, stage), stage_state(before, stage)
        assert any("running_var" in k for k in got)  # buffers are part of the check
        if i < n:
            assert same(got, old), f"{stage} should be copied for n={n}"
        else:
            differ = [k for k in got if not torch.equal(got[k], old[k])]
            assert differ == list(got), f"{stage} should be fresh for n={n}, equal: {got.keys()}"
    # the source is untouched, and the copies share no memory with it
    assert same(snapshot(source), before)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
        for b in model.buffers():
            b.add_(1)
    assert same(snapshot(source), before)
    assert all(p.requires_grad for p in model.parameters())


def test_transfer_stages_fresh_part_follows_the_seed() -> None:
    source = pretrained_model()
    a = transfer_stages(source, 2, num_classes=4, seed=5)
    b = transfer_stages(source, 2, num_classes=4, seed=5)
    c = transfer_stages(source, 2, num_classes=4, seed=6)
    assert same(snapshot(a), snapshot(b))
    assert not torch.equal(a.stage3[0].weight, c.stage3[0].weight)
    assert torch.equal(a.stage1[1].weight, c.stage1[1].weight)  # copied, seed-independent


@pytest.mark.parametrize("n", [-1, 5, 2.0, True])
def test_transfer_stages_rejects_bad_n(n: object) -> None:
    with pytest.raises(ValueError, match=r"from 0 to 4.*stem, stage1, stage2, stage3"):
        transfer_stages(tiny(), n, num_classes=3)  # type: ignore[arg-type]


def test_transfer_stages_rejects_other_models() -> None:
    with pytest.raises(TypeError, match="expected SmallCNN"):
        transfer_stages(torch.nn.Linear(2, 2), 1, num_classes=3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- learning-rate groups


def test_head_lr_groups_ratio_is_head_factor() -> None:
    model = tiny()
    groups = head_lr_groups(model, 0.5, head_factor=4.0)
    lrs = {g["name"]: g["lr"] for g in groups}
    assert list(lrs) == list(SmallCNN.STAGES)
    assert lrs["head"] == 2.0 and lrs["head"] / lrs["stage3"] == 4.0
    assert head_lr_groups(model, 0.5)[-1]["lr"] == 5.0  # default head_factor 10
    assert all(lrs[s] == 0.5 for s in TRANSFERABLE_STAGES)
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    for p in model.stem.parameters():  # frozen stages are left out
        p.requires_grad_(False)
    names = [g["name"] for g in head_lr_groups(model, 1e-3)]
    assert names == ["stage1", "stage2", "stage3", "head"]


@pytest.mark.parametrize(("kwargs", "bad"), [({"lr": 0.0}, "lr=0.0"), ({"head_factor": -1}, "-1")])
def test_head_lr_groups_rejects_bad_values(kwargs: dict, bad: str) -> None:
    kwargs = {"lr": 1e-3, **kwargs}
    with pytest.raises(ValueError, match=bad):
        head_lr_groups(tiny(), kwargs.pop("lr"), **kwargs)


def test_discriminative_groups_divide_by_2_6_per_stage() -> None:
    groups = discriminative_groups(tiny(), 1e-3)
    assert [g["name"] for g in groups] == list(SmallCNN.STAGES)
    assert groups[-1]["lr"] == 1e-3
    for lower, upper in itertools.pairwise(groups):
        assert upper["lr"] / lower["lr"] == pytest.approx(2.6, rel=1e-12)
    assert groups[0]["lr"] == pytest.approx(1e-3 / 2.6**4, rel=1e-12)
    custom = discriminative_groups(tiny(), 1.0, factor=2.0)
    assert [g["lr"] for g in custom] == [1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0]


# ---------------------------------------------------------------- L2-SP


def test_l2sp_penalty_is_zero_at_the_start() -> None:
    model = tiny()
    reg = L2SP(model, alpha=1.0, beta=0.0)
    penalty = reg.penalty()
    assert penalty.shape == () and penalty.item() == 0.0 and penalty.requires_grad
    assert not any(k.startswith("head.") for k in reg.start)
    assert len(reg.start) == sum(1 for k, _ in model.named_parameters() if k[:5] != "head.")
    with torch.no_grad():
        model.head.weight.add_(3.0)  # the head has no starting point: alpha ignores it
    assert reg.penalty().item() == 0.0


def test_l2sp_penalty_after_a_known_perturbation() -> None:
    model = tiny()
    reg = L2SP(model, alpha=0.1, beta=0.0)
    with torch.no_grad():
        model.stage3[0].weight.add_(0.5)  # 8*8*3*3 = 576 entries: ‖Δ‖² = 576 * 0.25 = 144
        model.stage1[2].bias.sub_(1.0)  # 4 entries: ‖Δ‖² = 4
    assert reg.penalty().item() == pytest.approx(7.4, rel=1e-6)  # 0.1/2 * 148


def test_l2sp_penalty_grows_quadratically() -> None:
    model = tiny()
    reg = L2SP(model, alpha=0.3, beta=0.0)
    start = snapshot(model)
    g = torch.Generator().manual_seed(3)
    directions = {n: torch.randn(p.shape, generator=g) for n, p in model.named_parameters()}
    values = []
    for scale in (1.0, 2.0):
        model.load_state_dict(start)
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.add_(scale * 0.01 * directions[name])
        values.append(reg.penalty().item())
    assert values[0] > 0
    assert values[1] == pytest.approx(4 * values[0], rel=1e-4)


def test_l2sp_head_term() -> None:
    model = tiny()
    reg = L2SP(model, alpha=5.0, beta=0.2)
    with torch.no_grad():
        model.head.weight.fill_(0.5)  # 5*8 = 40 entries: 40 * 0.25 = 10
        model.head.bias.fill_(-1.0)  # 5 entries: 5
    assert reg.penalty().item() == pytest.approx(1.5, rel=1e-6)  # 0.2/2 * 15


def test_l2sp_loss_and_gradient_pull_back_to_the_start() -> None:
    model = tiny()
    alpha, beta = 0.7, 0.3
    reg = L2SP(model, alpha=alpha, beta=beta)
    start = snapshot(model)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    logits, targets = torch.randn(6, 5), torch.tensor([0, 1, 2, 3, 4, 0])
    expected = F.cross_entropy(logits, targets) + reg.penalty()
    assert torch.equal(reg(logits, targets), expected)
    model.zero_grad()
    reg.penalty().backward()
    for name, p in model.named_parameters():
        if name.startswith("head."):
            torch.testing.assert_close(p.grad, beta * p.detach())
        else:
            delta = p.detach() - start[name]
            torch.testing.assert_close(p.grad, alpha * delta)
            assert (p.grad * delta).sum() > 0  # a gradient step moves back towards w⁰


def test_l2sp_as_fit_loss_keeps_the_backbone_closer() -> None:
    def drift(reg_alpha: float | None) -> float:
        model = tiny()
        start = snapshot(model)
        loss_fn = None if reg_alpha is None else L2SP(model, alpha=reg_alpha, beta=0.0)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        history = fit(model, loader(), optimizer=optimizer, epochs=3, loss_fn=loss_fn, **FIT)
        assert history.steps == 6 and all(math.isfinite(v) for v in history.train_loss)
        return sum(
            (p.detach() - start[n]).pow(2).sum().item()
            for n, p in model.named_parameters()
            if not n.startswith("head.")
        )

    plain, regularised = drift(None), drift(20.0)
    assert plain > 0 and regularised < 0.5 * plain


def test_l2sp_follows_the_model_to_another_device() -> None:
    model = tiny()
    reg = L2SP(model, alpha=1.0, beta=1.0)
    value = reg.penalty()
    model.to("meta")  # a device without data: the starting point must be moved, not reused
    assert reg.penalty().device.type == "meta"
    assert reg.start["stem.0.weight"].device.type == "cpu"  # the original stays
    model.to_empty(device="cpu")
    with torch.no_grad():  # back on the CPU with the same weights as at the start
        for name, p in model.named_parameters():
            p.copy_(reg.start[name] if name in reg.start else torch.zeros_like(p))
    assert reg.penalty().item() == 0.0 and value.item() > 0  # value > 0 from the head term


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": -1.0, "beta": 0.0}, "alpha=-1.0 must be a finite number >= 0"),
        ({"alpha": 0.1, "beta": float("nan")}, "beta=nan must be a finite number >= 0"),
        ({"alpha": 0.1, "beta": 0.1, "head": "classifier"}, "valid choices: stem, .*head"),
    ],
)
def test_l2sp_rejects_bad_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        L2SP(tiny(), **kwargs)

