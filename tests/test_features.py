"""Feature extraction (cache hit, miss and invalidation; frozen means frozen) and linear probes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tlhelpers.features import (
    extract_features,
    feature_cache_path,
    feature_layers,
    linear_probe,
    probe_accuracy,
    weights_fingerprint,
)
from tlhelpers.models import SmallCNN, freeze, replace_head, set_bn_eval
from tlhelpers.train import fit


@pytest.fixture()
def images() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8, generator=generator)


@pytest.fixture()
def net() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN(5, widths=(8, 8, 16, 16)).eval()


def test_shapes_per_layer_and_pooling(net: SmallCNN, images: torch.Tensor, tmp_path) -> None:
    assert extract_features(net, images, "stage3", cache=tmp_path).shape == (24, 16 * 4)
    assert extract_features(net, images, "stage2", pool=1, cache=tmp_path).shape == (24, 16)
    assert extract_features(net, images, "stage1", pool=None, cache=False).shape == (24, 8 * 256)
    assert extract_features(net, images, "pool", cache=False).shape == (24, 16)
    assert extract_features(net, images, "pool", cache=False).dtype == np.float32


def test_matches_a_plain_forward_pass(net: SmallCNN, images: torch.Tensor) -> None:
    from tlhelpers.data import to_float

    with torch.no_grad():
        expected = nn.functional.adaptive_avg_pool2d(
            net.forward_features(to_float(images), upto="stage3"), 2).flatten(1)
    got = extract_features(net, images, "stage3", cache=False, batch_size=7)
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_cache_miss_then_hit(net: SmallCNN, images: torch.Tensor, tmp_path, monkeypatch) -> None:
    path = feature_cache_path(net, images, "stage3", directory=tmp_path)
    assert not path.exists()
    first = extract_features(net, images, "stage3", cache=tmp_path)
    assert path.exists()
    calls = []
    monkeypatch.setattr(net, "forward_features", lambda *a, **k: calls.append(1))
    second = extract_features(net, images, "stage3", cache=tmp_path)  # no forward pass
    assert calls == []
    np.testing.assert_array_equal(first, second)
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written left behind


def test_changed_weights_never_reuse_stale_features(
    net: SmallCNN, images: torch.Tensor, tmp_path
) -> None:
    before = extract_features(net, images, "stage3", cache=tmp_path)
    with torch.no_grad():
        net.stage3[0].weight.add_(0.5)
    after = extract_features(net, images, "stage3", cache=tmp_path)
    assert not np.allclose(before, after)
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_changed_batch_norm_statistics_change_the_key(net: SmallCNN, images) -> None:
    key = weights_fingerprint(net)
    bn = next(m for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    bn.running_mean += 0.1
    assert weights_fingerprint(net) != key


def test_key_depends_on_data_layer_and_pool(net: SmallCNN, images: torch.Tensor, tmp_path) -> None:
    base = feature_cache_path(net, images, "stage3", directory=tmp_path)
    changed = images.clone()
    changed[0, 0, 0, 0] ^= 1
    assert feature_cache_path(net, changed, "stage3", directory=tmp_path) != base
    assert feature_cache_path(net, images, "stage2", directory=tmp_path) != base
    assert feature_cache_path(net, images, "stage3", pool=1, directory=tmp_path) != base


def test_corrupt_cache_file_is_recomputed(net: SmallCNN, images: torch.Tensor, tmp_path) -> None:
    path = feature_cache_path(net, images, "stage3", directory=tmp_path)
    good = extract_features(net, images, "stage3", cache=tmp_path)
    path.write_bytes(b"not a numpy file")
    with pytest.warns(RuntimeWarning, match="regenerating"):
        again = extract_features(net, images, "stage3", cache=tmp_path)
    np.testing.assert_array_equal(again, good)


def test_extraction_changes_nothing_even_from_train_mode(net: SmallCNN, images, tmp_path) -> None:
    net.train()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    extract_features(net, images, "pool", cache=False)
    for name, value in net.state_dict().items():
        assert torch.equal(value, state[name]), name
    assert net.training  # mode given back


def test_frozen_backbone_gets_no_gradient_and_no_bn_update(images: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = SmallCNN(5, widths=(8, 8, 16, 16))
    replace_head(model, 3)
    freeze(model, ["stem", "stage1", "stage2", "stage3"])
    before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head")}
    labels = torch.arange(len(images)) % 3
    loader = [(images.float() / 255, labels)]
    head_params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(head_params, lr=0.5)
    fit(model, loader, optimizer=optimizer, epochs=3, train_mode_hook=set_bn_eval,
        progress=False, device="cpu")
    for name, param in model.named_parameters():
        if not name.startswith("head"):
            assert param.grad is None, name
    for name, value in model.state_dict().items():
        if not name.startswith("head"):
            assert torch.equal(value, before[name]), name


def test_bad_layer_names_the_choices(net: SmallCNN, images: torch.Tensor) -> None:
    with pytest.raises(ValueError, match=r"layer='stage9'.*stem, stage1, stage2, stage3, pool"):
        extract_features(net, images, "stage9", cache=False)
    assert feature_layers(nn.Linear(3, 2)) == ("output",)
    with pytest.raises(ValueError, match="valid choices: output"):
        extract_features(nn.Linear(3, 2), images, "stage3", cache=False)


def test_bad_pool_batch_and_data(net: SmallCNN, images: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="pool=0"):
        extract_features(net, images, "stage3", pool=0, cache=False)
    with pytest.raises(ValueError, match="batch_size=0"):
        extract_features(net, images, "stage3", batch_size=0, cache=False)
    with pytest.raises(TypeError, match="ImageSet or a 4-D image tensor"):
        extract_features(net, images[0], "stage3", cache=False)


def test_generic_module_output_layer(images: torch.Tensor) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert extract_features(model, images, "output", cache=False).shape == (24, 4)


def _blobs(n_per_class: int, seed: int, separation: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 20)) * separation
    y = np.repeat(np.arange(3), n_per_class)
    return (centres[y] + rng.normal(size=(len(y), 20))).astype(np.float32), y


def test_probe_separates_separable_data() -> None:
    x, y = _blobs(50, 0, separation=4.0)
    x_test, y_test = _blobs(50, 0, separation=4.0)
    assert probe_accuracy(x, y, x_test, y_test) > 99


def test_probe_score_is_a_fraction_and_accuracy_a_percent() -> None:
    x, y = _blobs(30, 4, separation=0.8)
    x_test, y_test = _blobs(30, 5, separation=0.8)
    probe = linear_probe(x, y)
    fraction = probe.score(x_test, y_test)  # scikit-learn's convention
    assert 0 < fraction <= 1
    assert probe.accuracy(x_test, y_test) == 100 * fraction
    assert probe_accuracy(x, y, x_test, y_test) == 100 * fraction


def test_probe_at_chance_on_shuffled_labels() -> None:
    x, y = _blobs(100, 1, separation=4.0)
    rng = np.random.default_rng(0)
    x_test, y_test = _blobs(100, 1, separation=4.0)
    assert probe_accuracy(x, rng.permutation(y), x_test, y_test) < 60


def test_probe_matches_scikit_learn_logistic_regression() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    x, y = _blobs(30, 2, separation=0.6)
    scaler = StandardScaler().fit(x)
    reference = LogisticRegression(C=0.5, max_iter=2000, tol=1e-8).fit(scaler.transform(x), y)
    probe = linear_probe(x, y, C=0.5, max_iter=500)
    agreement = (probe.predict(x) == reference.predict(scaler.transform(x))).mean()
    assert agreement > 0.97
    np.testing.assert_allclose(probe.weight.numpy(), reference.coef_, atol=0.05)


def test_probe_is_deterministic() -> None:
    x, y = _blobs(20, 3, separation=1.0)
    a, b = linear_probe(x, y), linear_probe(x, y)
    assert torch.equal(a.weight, b.weight)


def test_probe_bad_input() -> None:
    x, y = _blobs(5, 0, 1.0)
    with pytest.raises(ValueError, match="2-D"):
        linear_probe(x[:, 0], y)
    with pytest.raises(ValueError, match="same N"):
        linear_probe(x, y[:-1])
    with pytest.raises(ValueError, match="C=0"):
        linear_probe(x, y, C=0)
    with pytest.raises(ValueError, match="integer class indices"):
        linear_probe(x, y.astype(np.float32))
    with pytest.raises(ValueError, match="max_iter"):
        linear_probe(x, y, max_iter=0)
