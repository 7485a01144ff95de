"""Domain adaptation helpers: gradient reversal, schedules, CORAL, AdaBN, DANN with fit, PAD."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tlhelpers.adapt import (
    DANNSchedule,
    DomainAdapter,
    DomainPairLoader,
    GradientReversal,
    adabn,
    adaptation_loss,
    coral_loss,
    dann_lambda,
    dann_lr_factor,
    domain_discriminator,
    features_of,
    grad_reverse,
    proxy_a_distance,
)
from tlhelpers.data.imageset import ImageSet
from tlhelpers.models import SmallCNN
from tlhelpers.train import fit

WIDTHS = (4, 4, 8, 8)


def _images(n: int, seed: int, shift: int = 0) -> ImageSet:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 128, (n, 3, 32, 32), generator=g, dtype=torch.uint8) + shift
    labels = torch.arange(n) % 10
    return ImageSet(images.to(torch.uint8), labels, tuple(str(i) for i in range(10)), "toy")


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0, 2.5])
def test_gradient_reversal_is_identity_forward_and_minus_lambda_backward(lam: float) -> None:
    x = torch.randn(5, 3, requires_grad=True)
    weights = torch.randn(5, 3)
    y = grad_reverse(x, lam)
    assert torch.equal(y, x)
    (y * weights).sum().backward()
    assert torch.allclose(x.grad, -lam * weights)


def test_gradient_reversal_module_reads_its_current_lambda() -> None:
    layer = GradientReversal(0.5)
    x = torch.ones(4, requires_grad=True)
    layer(x).sum().backward()
    assert torch.allclose(x.grad, torch.full((4,), -0.5))
    layer.lambda_ = 2.0
    x.grad = None
    layer(x).sum().backward()
    assert torch.allclose(x.grad, torch.full((4,), -2.0))
    with pytest.raises(ValueError, match="lambda_=-1"):
        grad_reverse(x, -1)


def test_schedules_endpoints_and_shape() -> None:
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert dann_lambda(1.0) > 0.999
    assert dann_lambda(0.1) == pytest.approx(2 / (1 + math.exp(-1)) - 1)
    assert dann_lr_factor(0.0) == 1.0
    assert dann_lr_factor(1.0) == pytest.approx(11**-0.75)
    values = [dann_lambda(p / 10) for p in range(11)]
    assert values == sorted(values)
    for bad in (-0.1, 1.5):
        with pytest.raises(ValueError, match="progress"):
            dann_lambda(bad)


def test_dann_schedule_updates_lr_and_lambda() -> None:
    model = DomainAdapter(SmallCNN(10, widths=WIDTHS), "dann", hidden=8)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    schedule = DANNSchedule(optimizer, model, total_steps=10, lambda_max=0.5)
    assert model.grl is not None and model.grl.lambda_ == 0.0
    assert optimizer.param_groups[0]["lr"] == 0.01
    for _ in range(10):
        schedule.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 11**-0.75)
    assert model.grl.lambda_ == pytest.approx(0.5 * dann_lambda(1.0))
    schedule.step()  # past the end: stays at the final values
    assert schedule.get_last_lr()[0] == pytest.approx(0.01 * 11**-0.75)


def test_coral_is_zero_for_equal_covariances_and_grows_with_difference() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 6, generator=g)
    assert coral_loss(a, a + 3.0).item() == pytest.approx(0.0, abs=1e-10)  # a shift is not seen
    assert coral_loss(a, a[torch.randperm(200, generator=g)]).item() == pytest.approx(0, abs=1e-9)
    small = coral_loss(a, a * 1.5).item()
    large = coral_loss(a, a * 3.0).item()
    assert 0 < small < large
    cov = torch.cov(a.T)
    assert coral_loss(a, 2 * a).item() == pytest.approx(((3 * cov) ** 2).sum().item() / (4 * 36))
    with pytest.raises(ValueError, match="same d"):
        coral_loss(a, a[:, :3])


def test_adabn_changes_only_batch_norm_statistics() -> None:
    torch.manual_seed(0)
    model = SmallCNN(10, widths=WIDTHS)
    weights_before = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k}
    mean_before = model.stem[1].running_mean.clone()
    target = _images(64, seed=1, shift=100)
    adabn(model, target, batch_size=16)
    assert not model.training
    for key, value in model.state_dict().items():
        if "running" not in key and "num_batches" not in key:
            assert torch.equal(value, weights_before[key]), key
    assert not torch.allclose(model.stem[1].running_mean, mean_before)
    # the statistics are those of the target: the stem's BN input mean over all target images
    with torch.no_grad():
        conv_out = model.stem[0](target.as_float())
    assert torch.allclose(model.stem[1].running_mean, conv_out.mean((0, 2, 3)), atol=1e-4)
    assert model.stem[1].momentum == 0.1  # restored


def test_domain_adapter_trains_with_fit_and_reverses_the_feature_gradient() -> None:
    torch.manual_seed(0)
    source, target = _images(64, seed=2), _images(64, seed=3, shift=120)
    model = DomainAdapter(SmallCNN(10, widths=WIDTHS), "dann", hidden=16, batches="separate")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = DomainPairLoader(source, target, batch_size=16, seed=0)
    schedule = DANNSchedule(optimizer, model, total_steps=8)
    history = fit(model, loader, optimizer=optimizer, loss_fn=adaptation_loss(model),
                  scheduler=schedule, max_steps=8, progress=False, device="cpu")
    assert history.steps == 8 and len(model.domain_acc) == 8
    assert model.grl is not None and model.grl.lambda_ > 0.99

    # the feature extractor receives minus lambda times the discriminator's gradient
    model.grl.lambda_ = 0.7
    xs, xt = source.as_float()[:8], target.as_float()[:8]
    model.train()
    out = model(xs, xt)
    grad_dann = torch.autograd.grad(out.aux_loss, model.network.stage3[0].weight)[0]
    feats = torch.cat([model.network.forward_features(x, upto="pool") for x in (xs, xt)])
    labels = torch.cat([torch.zeros(8), torch.ones(8)])
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        model.discriminator(feats).squeeze(1), labels
    )
    grad_plain = torch.autograd.grad(bce, model.network.stage3[0].weight)[0]
    assert torch.allclose(grad_dann, -0.7 * grad_plain, atol=1e-6)


@pytest.mark.parametrize("alignment", ["coral", "none"])
def test_other_alignments_return_their_aux_loss(alignment: str) -> None:
    torch.manual_seed(0)
    model = DomainAdapter(
        SmallCNN(10, widths=WIDTHS), alignment, coral_weight=10.0, batches="separate"
    )
    xs, xt = _images(8, seed=4).as_float(), _images(8, seed=5, shift=120).as_float()
    out = model(xs, xt)
    assert out.logits.shape == (8, 10) and out.domain_acc is None
    if alignment == "none":
        assert out.aux_loss.item() == 0.0
    else:
        fs = model.network.forward_features(xs, upto="pool")
        ft = model.network.forward_features(xt, upto="pool")
        assert out.aux_loss.item() == pytest.approx(10 * coral_loss(fs, ft).item(), rel=1e-4)
    plain = model(xs)  # no target: plain classification, no alignment loss
    assert plain.aux_loss.item() == 0.0
    assert torch.equal(plain.logits, model.network(xs))
    assert model.domain_acc == []


def test_pair_loader_batches() -> None:
    loader = DomainPairLoader(_images(40, 6), _images(10, 7), batch_size=8, seed=0)
    batches = list(loader)
    assert len(batches) == len(loader) == 5
    inputs, labels = batches[0]
    assert inputs["source"].shape == inputs["target"].shape == (8, 3, 32, 32)
    assert inputs["source"].dtype == torch.float32 and labels.shape == (8,)
    seen = torch.cat([b[1] for b in batches])
    assert len(seen) == 40
    with pytest.raises(ValueError, match="larger than"):
        DomainPairLoader(_images(40, 6), _images(4, 7), batch_size=8)


def test_proxy_a_distance_ranges() -> None:
    rng = np.random.default_rng(0)
    same = proxy_a_distance(rng.normal(size=(400, 5)), rng.normal(size=(400, 5)))
    apart = proxy_a_distance(rng.normal(size=(400, 5)), rng.normal(size=(400, 5)) + 4)
    assert abs(same) < 0.4
    assert apart > 1.9
    with pytest.raises(ValueError, match="same d"):
        proxy_a_distance(np.zeros((20, 3)), np.zeros((20, 4)))
    with pytest.raises(ValueError, match="at least 10"):
        proxy_a_distance(np.zeros((5, 3)), np.zeros((5, 3)))


def test_discriminator_depth_and_width_follow_the_arguments() -> None:
    network = SmallCNN(10, widths=WIDTHS)
    small = DomainAdapter(network, "dann", hidden=100, layers=1).discriminator
    assert small is not None
    linears = [m for m in small if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (network.head.in_features, 100), (100, 1)]
    large = DomainAdapter(SmallCNN(10, widths=WIDTHS), "dann").discriminator
    assert large is not None
    assert [m.out_features for m in large if isinstance(m, torch.nn.Linear)] == [1024, 1024, 1]
    assert DomainAdapter(SmallCNN(10, widths=WIDTHS), "coral", layers=1).discriminator is None
    with pytest.raises(ValueError, match="layers=0"):
        DomainAdapter(SmallCNN(10, widths=WIDTHS), "dann", layers=0)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="'adversarial' is not known"):
        DomainAdapter(SmallCNN(10, widths=WIDTHS), "adversarial")
    with pytest.raises(TypeError, match="SmallCNN"):
        DomainAdapter(torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match="hidden=0"):
        domain_discriminator(8, hidden=0)
    with pytest.raises(ValueError, match="batch-norm"):
        adabn(torch.nn.Linear(3, 3), torch.zeros(4, 3))


def test_features_of_matches_forward_features() -> None:
    torch.manual_seed(0)
    model = SmallCNN(10, widths=WIDTHS).eval()
    images = _images(12, seed=8)
    with torch.no_grad():
        expected = model.forward_features(images.as_float(), upto="pool")
    assert torch.allclose(features_of(model, images, batch_size=5), expected, atol=1e-6)


def test_mixed_batches_share_batch_norm_statistics_and_separate_ones_do_not() -> None:
    torch.manual_seed(0)
    network = SmallCNN(10, widths=WIDTHS).train()
    xs, xt = _images(8, seed=9).as_float(), _images(8, seed=10, shift=120).as_float()
    joint = network.forward_features(torch.cat([xs, xt]), upto="pool")
    alone = torch.cat([network.forward_features(x, upto="pool") for x in (xs, xt)])
    for batches, expected in (("mixed", joint), ("separate", alone)):
        model = DomainAdapter(network, "coral", coral_weight=1.0, batches=batches).train()
        assert model(xs, xt).aux_loss.item() == pytest.approx(
            coral_loss(expected[:8], expected[8:]).item(), rel=1e-4
        ), batches
    assert not torch.allclose(joint, alone, atol=1e-3)
    with pytest.raises(ValueError, match="'together' is not known"):
        DomainAdapter(network, "dann", batches="together")


@pytest.mark.parametrize(
    ("images", "kwargs", "message"),
    [
        (torch.zeros(8, 3, 32, 32, dtype=torch.uint8), {"batch_size": -4}, r"batch_size=-4"),
        (torch.zeros(8, 3, 32, 32, dtype=torch.uint8), {"batch_size": 2.0}, r"batch_size=2\.0"),
        (torch.zeros(8, 1, 32, 32, dtype=torch.uint8), {}, r"1 channel\(s\) per image but .* 3"),
        (torch.zeros(8, 32, 32, dtype=torch.uint8), {}, r"\(N, C, H, W\).*\(8, 32, 32\)"),
        (torch.full((8, 3, 32, 32), math.nan), {}, r"NaN or infinite"),
        (torch.zeros(8, 3, 1, 1), {}, r"."),  # passes the checks, fails in the forward pass
    ],
)
def test_adabn_leaves_the_model_unchanged_when_it_fails(
    images: torch.Tensor, kwargs: dict, message: str
) -> None:
    torch.manual_seed(0)
    model = SmallCNN(10, widths=WIDTHS)
    adabn(model, _images(32, seed=2))  # statistics that are not the defaults
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises((ValueError, RuntimeError), match=message):
        adabn(model, images, **kwargs)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert model.training and model.stem[1].momentum == 0.1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0, True, "1"])
def test_gradient_reversal_refuses_weights_that_are_not_finite_and_non_negative(
    bad: object,
) -> None:
    x = torch.ones(3, requires_grad=True)
    with pytest.raises((ValueError, TypeError), match="lambda_="):
        grad_reverse(x, bad)  # type: ignore[arg-type]
    with pytest.raises((ValueError, TypeError), match="lambda_="):
        GradientReversal(bad)  # type: ignore[arg-type]


def test_domain_accuracy_is_kept_on_the_device_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    model = DomainAdapter(SmallCNN(10, widths=WIDTHS), "dann", hidden=8, domain_acc_steps=3)
    xs, xt = _images(8, seed=4).as_float(), _images(8, seed=5, shift=120).as_float()
    item = torch.Tensor.item

    def no_sync(self: torch.Tensor):
        raise AssertionError("forward called .item()")

    monkeypatch.setattr(torch.Tensor, "item", no_sync)
    outputs = [model(xs[: 4 + i], xt) for i in range(5)]  # 5 batches of different accuracies
    monkeypatch.setattr(torch.Tensor, "item", item)
    for out in outputs:
        assert out.domain_acc is not None and out.domain_acc.ndim == 0
        assert out.domain_acc.requires_grad is False
    assert model.domain_acc == [float(out.domain_acc) for out in outputs[-3:]]
    assert all(0.0 <= a <= 100.0 for a in model.domain_acc)  # percent
    assert model.domain_acc[-50:] == model.domain_acc  # notebooks slice it as a list
    with pytest.raises(ValueError, match="domain_acc_steps"):
        DomainAdapter(SmallCNN(10, widths=WIDTHS), "dann", domain_acc_steps=0)


def test_adaptation_loss_is_cross_entropy_and_fit_adds_the_alignment_loss() -> None:
    torch.manual_seed(0)
    source, target = _images(32, seed=6), _images(32, seed=7, shift=120)
    model = DomainAdapter(SmallCNN(10, widths=WIDTHS), "coral", coral_weight=1.0)
    loader = DomainPairLoader(source, target, batch_size=32, seed=0)
    (inputs, labels), = list(DomainPairLoader(source, target, batch_size=32, seed=0))
    model.train()
    with torch.no_grad():
        out = model(**inputs)
    loss_fn = adaptation_loss(model)
    expected = torch.nn.functional.cross_entropy(out.logits, labels) + out.aux_loss
    assert loss_fn(out.logits, labels).item() == pytest.approx(
        torch.nn.functional.cross_entropy(out.logits, labels).item()
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    history = fit(model, loader, optimizer=optimizer, loss_fn=loss_fn, max_steps=1,
                  progress=False, device="cpu", channels_last=False)
    assert history.train_loss[0] == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(TypeError, match="DomainAdapter"):
        adaptation_loss(SmallCNN(10, widths=WIDTHS))
