"""The building blocks of adversarial and statistical domain alignment.

* :class:`GradientReversal` / :func:`grad_reverse` — identity forward, −λ × gradient backward
  (Ganin & Lempitsky, 2015; Ganin et al., JMLR 2016).
* :func:`dann_lambda` and :func:`dann_lr_factor` — the DANN paper's schedules
  λ_p = 2 / (1 + exp(−10 p)) − 1 and μ_p = μ0 / (1 + 10 p)^0.75, p the training progress in [0, 1].
* :func:`domain_discriminator` — the MLP that tells the domains apart.
* :func:`coral_loss` — Deep CORAL's covariance distance (Sun & Saenko, 2016).

Every name is importable from :mod:`tlhelpers.adapt` too.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from tlhelpers import _checks

__all__ = [
    "GradientReversal",
    "coral_loss",
    "dann_lambda",
    "dann_lr_factor",
    "domain_discriminator",
    "grad_reverse",
]


class _GradReverse(torch.autograd.Function):
    """Identity in the forward pass; multiplies the incoming gradient by −λ going back."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lambda_: float) -> torch.Tensor:
        ctx.lambda_ = lambda_
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.lambda_ * grad, None


def grad_reverse(x: torch.Tensor, lambda_: float = 1.0) -> torch.Tensor:
    """``x`` unchanged; its gradient is multiplied by ``-lambda_`` on the way back."""
    lambda_ = _checks.finite("lambda_", lambda_, minimum=0, example=1.0)
    return _GradReverse.apply(x, lambda_)


class GradientReversal(nn.Module):
    """The gradient reversal layer as a module; set ``lambda_`` as training goes on."""

    def __init__(self, lambda_: float = 1.0) -> None:
        super().__init__()
        self.lambda_ = _checks.finite("lambda_", lambda_, minimum=0, example=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return grad_reverse(x, self.lambda_)

    def extra_repr(self) -> str:
        return f"lambda_={self.lambda_:.3g}"


def _check_progress(progress: float) -> float:
    if not isinstance(progress, (int, float)) or not 0 <= progress <= 1:
        raise ValueError(f"progress={progress!r} must lie in [0, 1] (step / total_steps).")
    return float(progress)


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """DANN's domain-loss weight: 2 / (1 + exp(−γ p)) − 1, from 0 at p = 0 towards 1."""
    return 2.0 / (1.0 + math.exp(-gamma * _check_progress(progress))) - 1.0


def dann_lr_factor(progress: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """DANN's learning-rate annealing factor 1 / (1 + α p)^β (1 at the start, 0.17 at the end)."""
    return 1.0 / (1.0 + alpha * _check_progress(progress)) ** beta


def domain_discriminator(in_features: int, hidden: int = 1024, layers: int = 2) -> nn.Sequential:
    """An MLP that outputs one logit per example: > 0 means "target domain"."""
    for name, value in (("in_features", in_features), ("hidden", hidden), ("layers", layers)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive integer.")
    blocks: list[nn.Module] = []
    width = in_features
    for _ in range(layers):
        blocks += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
        width = hidden
    blocks.append(nn.Linear(width, 1))
    return nn.Sequential(*blocks)


def coral_loss(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Deep CORAL: ‖C_s − C_t‖²_F / (4 d²), C the (unbiased) feature covariances.

    Shapes: source (n_s, d) and target (n_t, d) with n_s, n_t >= 2; returns a scalar.
    """
    if source.ndim != 2 or target.ndim != 2 or source.shape[1] != target.shape[1]:
        raise ValueError(
            f"coral_loss needs two (n, d) feature matrices with the same d; got "
            f"{tuple(source.shape)} and {tuple(target.shape)}."
        )
    if len(source) < 2 or len(target) < 2:
        raise ValueError("coral_loss needs at least 2 examples per domain for a covariance.")
    d = source.shape[1]
    diff = torch.cov(source.T) - torch.cov(target.T)
    return (diff * diff).sum() / (4 * d * d)
