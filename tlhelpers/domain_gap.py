"""Measuring a domain gap and closing it at the batch-norm level, without labels.

* :func:`adabn` — re-estimate batch-norm statistics on the target (Li et al., ICLR workshop 2017).
* :func:`proxy_a_distance` — 2 (1 − 2 ε), ε the test error of a linear domain classifier
  (Ben-David et al., 2007/2010), on features from :func:`features_of`.

Every name is importable from :mod:`tlhelpers.adapt` too.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from tlhelpers import _checks
from tlhelpers.data.imageset import ImageSet, to_float
from tlhelpers.models.surgery import check_input_channels, eval_mode

__all__ = ["adabn", "features_of", "proxy_a_distance"]


def _batch_norms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def adabn(
    model: nn.Module,
    images: torch.Tensor | ImageSet,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
) -> nn.Module:
    """AdaBN: replace every batch-norm layer's running statistics by the target's.

    Resets the running mean and variance, then averages the statistics of ``images`` (uint8 or
    float, shape (N, C, H, W)) over full passes (cumulative average, ``momentum=None`` while it
    runs). Weights and biases are untouched; the model is returned in eval mode. Arguments are
    checked first, and if the passes fail the statistics are put back as they were.
    """
    norms = _batch_norms(model)
    if not norms:
        raise ValueError(f"{type(model).__name__} has no batch-norm layers; AdaBN needs them.")
    batch_size = _checks.positive_int("batch_size", batch_size, example=256)
    data = _check_adabn_images(model, images)
    device = device or next(model.parameters()).device
    saved = [(m.momentum, copy.deepcopy(m.state_dict())) for m in norms]
    modes = [(m, m.training) for m in model.modules()]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        for start in range(0, len(data), batch_size):
            batch = data[start : start + batch_size]
            batch = to_float(batch) if batch.dtype == torch.uint8 else batch
            model(batch.to(device))
    except BaseException:
        for m, (_, state) in zip(norms, saved, strict=True):
            m.load_state_dict(state)
        for module, training in modes:
            module.training = training
        raise
    finally:
        for m, (momentum, _) in zip(norms, saved, strict=True):
            m.momentum = momentum
    return model.eval()


def _check_adabn_images(model: nn.Module, images: torch.Tensor | ImageSet) -> torch.Tensor:
    """The image tensor, checked against the model's first convolution or batch norm."""
    data = images.images if isinstance(images, ImageSet) else images
    if not isinstance(data, torch.Tensor) or data.ndim != 4:
        shape = tuple(data.shape) if isinstance(data, torch.Tensor) else type(data).__name__
        raise ValueError(
            f"images must be an ImageSet or an (N, C, H, W) tensor of unlabelled target images; "
            f"got {shape}."
        )
    if len(data) == 0:
        raise ValueError("images is empty; pass the unlabelled target images.")
    if data.is_floating_point() and not torch.isfinite(data).all():
        raise ValueError("images hold NaN or infinite values; pass finite target images.")
    check_input_channels(model, data, "images")
    return data


def proxy_a_distance(
    source_features: torch.Tensor | np.ndarray,
    target_features: torch.Tensor | np.ndarray,
    *,
    seed: int = 0,
    C: float = 1.0,
) -> float:
    """Proxy A-distance 2 (1 − 2 ε): ε is the held-out error of a linear domain classifier.

    Equal numbers of source and target rows are used (the larger set is subsampled), features
    are standardised, and a logistic regression is trained on a random half and tested on the
    other. 0: the domains are indistinguishable (ε = 0.5); 2: perfectly separable. Values below
    0 (ε > 0.5, chance fluctuations) are reported as they are.
    """
    from sklearn.linear_model import LogisticRegression  # slow import, used here only

    xs, xt = (np.asarray(f, dtype=np.float64) for f in (source_features, target_features))
    if xs.ndim != 2 or xt.ndim != 2 or xs.shape[1] != xt.shape[1]:
        raise ValueError(
            f"proxy_a_distance needs two (n, d) feature matrices with the same d; got "
            f"{xs.shape} and {xt.shape}."
        )
    n = min(len(xs), len(xt))
    if n < 10:
        raise ValueError(f"proxy_a_distance needs at least 10 rows per domain; got {n}.")
    rng = np.random.default_rng(seed)
    xs, xt = xs[rng.permutation(len(xs))[:n]], xt[rng.permutation(len(xt))[:n]]
    x = np.concatenate([xs, xt])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    x = (x - x.mean(0)) / (x.std(0) + 1e-8)
    order = rng.permutation(2 * n)
    train, test = order[:n], order[n:]
    clf = LogisticRegression(C=C, max_iter=2000).fit(x[train], y[train])
    error = 1.0 - clf.score(x[test], y[test])
    return 2.0 * (1.0 - 2.0 * error)


def features_of(
    model: nn.Module, images: torch.Tensor | ImageSet, *, upto: str = "pool", batch_size: int = 512
) -> torch.Tensor:
    """Features of ``images`` (uint8 or float) at stage ``upto``, in eval mode without gradients.

    Afterwards every module is back in its own train/eval mode (see
    :func:`tlhelpers.models.eval_mode`).
    """
    data = images.images if isinstance(images, ImageSet) else images
    out: list[torch.Tensor] = []
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(data), batch_size):
            batch = data[start : start + batch_size]
            batch = to_float(batch) if batch.dtype == torch.uint8 else batch
            out.append(model.forward_features(batch, upto=upto).flatten(1))
    return torch.cat(out)
