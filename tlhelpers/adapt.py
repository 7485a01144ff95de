"""Unsupervised domain adaptation: labelled source images, unlabelled target images, one task.

What is here, each in its simplest correct form, with the paper it follows:

* :class:`GradientReversal` / :func:`grad_reverse` — identity forward, −λ × gradient backward
  (Ganin & Lempitsky, 2015; Ganin et al., JMLR 2016).
* :func:`dann_lambda` and :func:`dann_lr_factor` — the paper's schedules
  λ_p = 2 / (1 + exp(−10 p)) − 1 and μ_p = μ0 / (1 + 10 p)^0.75, p the training progress in [0, 1];
  :class:`DANNSchedule` applies both after every optimiser step (pass it to ``fit`` as its
  ``scheduler``).
* :class:`DomainAdapter` — a classifier whose batches hold a source half and a target half; it
  returns an :class:`AdapterOutput`: the source logits and an auxiliary alignment loss (DANN's
  domain-classifier loss through the reversal layer, or Deep CORAL's covariance distance) in
  ``aux_loss``, which the course's ``fit`` adds to the cross-entropy of
  :func:`adaptation_loss`. This keeps the ``fit`` loop as is.
* :class:`DomainPairLoader` — batches ``({"source": xs, "target": xt}, ys)``.
* :func:`coral_loss` (Sun & Saenko, 2016), :func:`adabn` (Li et al., 2017: re-estimate batch-norm
  statistics on the target), :func:`proxy_a_distance` (Ben-David et al., 2007/2010:
  2 (1 − 2 ε) with ε the test error of a linear domain classifier).

The reversal layer, the schedules, the discriminator and CORAL live in :mod:`tlhelpers.alignment`;
AdaBN, the proxy A-distance and ``features_of`` in :mod:`tlhelpers.domain_gap`. Every name is
importable from here.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tlhelpers import _checks
from tlhelpers.alignment import (
    GradientReversal,
    coral_loss,
    dann_lambda,
    dann_lr_factor,
    domain_discriminator,
    grad_reverse,
)
from tlhelpers.data.imageset import ImageSet, to_float
from tlhelpers.domain_gap import adabn, features_of, proxy_a_distance

__all__ = [
    "ALIGNMENTS",
    "BATCHES",
    "AdapterOutput",
    "DANNSchedule",
    "DomainAdapter",
    "DomainPairLoader",
    "GradientReversal",
    "adabn",
    "adaptation_loss",
    "coral_loss",
    "dann_lambda",
    "dann_lr_factor",
    "domain_discriminator",
    "features_of",
    "grad_reverse",
    "proxy_a_distance",
]

ALIGNMENTS = ("dann", "coral", "none")
BATCHES = ("mixed", "separate")


class DANNSchedule:
    """After every optimiser step: learning rates μ0 · :func:`dann_lr_factor` and, for a
    :class:`DomainAdapter` using DANN, its reversal weight ``lambda_max`` · :func:`dann_lambda`.

    Pass it to ``fit(..., scheduler=DANNSchedule(optimizer, model, total_steps))``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        model: DomainAdapter | None,
        total_steps: int,
        *,
        lambda_max: float = 1.0,
    ) -> None:
        if not isinstance(total_steps, int) or isinstance(total_steps, bool) or total_steps < 1:
            raise ValueError(f"total_steps={total_steps!r} must be a positive integer.")
        self.optimizer, self.model, self.total_steps = optimizer, model, total_steps
        self.lambda_max = lambda_max
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.steps = 0
        self._apply()

    def _apply(self) -> None:
        progress = min(self.steps / self.total_steps, 1.0)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * dann_lr_factor(progress)
        if self.model is not None and self.model.grl is not None:
            self.model.grl.lambda_ = self.lambda_max * dann_lambda(progress)

    def step(self) -> None:
        """Advance one optimiser step."""
        self.steps += 1
        self._apply()

    def get_last_lr(self) -> list[float]:
        """Current learning rate of every parameter group."""
        return [group["lr"] for group in self.optimizer.param_groups]


@dataclass(frozen=True)
class AdapterOutput:
    """What :class:`DomainAdapter` returns for one batch.

    Attributes:
        logits: class scores of the source half, shape (n_source, num_classes).
        aux_loss: the alignment loss, a scalar; zero without a target half or for
            ``alignment="none"``. :func:`tlhelpers.train.fit` adds it to the loss.
        domain_acc: for DANN with a target half, the domain classifier's accuracy on the batch
            in percent (0–100; a scalar tensor, left on the device); else None.
    """

    logits: torch.Tensor
    aux_loss: torch.Tensor
    domain_acc: torch.Tensor | None = None


class DomainAdapter(nn.Module):
    """A classifier trained on a source half and aligned on a target half of every batch.

    ``forward(source, target=None)`` returns an :class:`AdapterOutput`: the class logits of
    ``source`` and, with ``target`` (training), an ``aux_loss``: for ``alignment="dann"``, the
    binary cross-entropy of the domain discriminator on the features of both halves, seen
    through the gradient reversal layer (so the discriminator learns to tell the domains apart
    while the features learn to make that impossible); for ``"coral"``, ``coral_weight`` ×
    :func:`coral_loss`; for ``"none"``, zero (source-only training through the same code path).
    ``fit`` adds ``aux_loss`` to the cross-entropy.

    ``batches="mixed"`` (the default, as in the DANN paper) sends both halves through the
    network as one batch, so batch norm normalises them with shared statistics;
    ``batches="separate"`` sends them one after the other, so each domain is normalised with its
    own statistics in training (as AdaBN does at test time).

    ``domain_acc`` lists the DANN discriminator's accuracy on each of the last
    ``domain_acc_steps`` training batches, oldest first, in percent (0–100). The values stay
    on the device while training runs and become floats only when ``domain_acc`` is read.

    Args:
        network: a classifier with ``forward_features(x, upto=...)`` and a ``head`` (SmallCNN).
        alignment: "dann", "coral" or "none".
        features: the stage whose output is aligned (default "pool", the head's input).
        hidden: width of the discriminator's hidden layers (DANN).
        layers: number of hidden layers of the discriminator (DANN). The DANN paper's small
            MNIST network uses one of 100 units; its SVHN network two of 1,024 (the defaults).
        coral_weight: weight of the CORAL loss.
        batches: "mixed" or "separate" (see above).
        domain_acc_steps: how many of the latest batches ``domain_acc`` keeps.
    """

    def __init__(
        self,
        network: nn.Module,
        alignment: str = "dann",
        *,
        features: str = "pool",
        hidden: int = 1024,
        layers: int = 2,
        coral_weight: float = 100.0,
        batches: str = "mixed",
        domain_acc_steps: int = 10_000,
    ) -> None:
        super().__init__()
        if batches not in BATCHES:
            raise ValueError(
                f"batches={batches!r} is not known; valid choices: "
                f"{', '.join(repr(b) for b in BATCHES)}."
            )
        self.batches = batches
        if alignment not in ALIGNMENTS:
            raise ValueError(
                f"alignment={alignment!r} is not known; valid choices: "
                f"{', '.join(repr(a) for a in ALIGNMENTS)}."
            )
        if not hasattr(network, "forward_features") or not hasattr(network, "head"):
            raise TypeError(
                f"{type(network).__name__} has no forward_features() and head; "
                "pass a tlhelpers.models.SmallCNN."
            )
        self.network, self.alignment, self.features = network, alignment, features
        self.coral_weight = coral_weight
        dim = network.head.in_features
        self.grl = GradientReversal(0.0) if alignment == "dann" else None
        self.discriminator = (
            domain_discriminator(dim, hidden, layers) if alignment == "dann" else None
        )
        steps = _checks.positive_int("domain_acc_steps", domain_acc_steps, example=10_000)
        self._domain_acc: deque[torch.Tensor] = deque(maxlen=steps)

    @property
    def domain_acc(self) -> list[float]:
        """The discriminator's accuracy in percent (0–100) on each recent training batch,
        oldest first."""
        if not self._domain_acc:
            return []
        return torch.stack([acc.cpu() for acc in self._domain_acc]).tolist()

    def forward(self, source: torch.Tensor, target: torch.Tensor | None = None) -> AdapterOutput:
        if target is None or self.alignment == "none":
            logits = self.network.head(self.network.forward_features(source, upto=self.features))
            return AdapterOutput(logits, logits.new_zeros(()))
        feats_s, feats_t = self._features(source, target)
        logits = self.network.head(feats_s)
        if self.alignment == "coral":
            return AdapterOutput(logits, self.coral_weight * coral_loss(feats_s, feats_t))
        aux_loss, domain_acc = self._domain_loss(feats_s, feats_t)
        self._domain_acc.append(domain_acc)
        return AdapterOutput(logits, aux_loss, domain_acc)

    def _features(
        self, source: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of both halves, through the network together or one after the other."""
        if self.batches == "separate":
            return (
                self.network.forward_features(source, upto=self.features),
                self.network.forward_features(target, upto=self.features),
            )
        both = self.network.forward_features(torch.cat([source, target]), upto=self.features)
        return both[: len(source)], both[len(source) :]

    def _domain_loss(
        self, feats_s: torch.Tensor, feats_t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """DANN: the discriminator's loss through gradient reversal, and its accuracy in percent."""
        assert self.grl is not None and self.discriminator is not None
        domain_logits = self.discriminator(self.grl(torch.cat([feats_s, feats_t]))).squeeze(1)
        is_target = torch.cat([feats_s.new_zeros(len(feats_s)), feats_t.new_ones(len(feats_t))])
        loss = F.binary_cross_entropy_with_logits(domain_logits, is_target)
        with torch.no_grad():
            fraction = ((domain_logits > 0).float() == is_target).float().mean()
        return loss, 100 * fraction


def adaptation_loss(
    model: DomainAdapter,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``fit``'s ``loss_fn`` for a :class:`DomainAdapter`: the cross-entropy of the source logits.

    The alignment loss travels in the model's output (:attr:`AdapterOutput.aux_loss`), and
    ``fit`` adds it, so the loss trained is cross-entropy + ``aux_loss``.
    """
    if not isinstance(model, DomainAdapter):
        raise TypeError(
            f"adaptation_loss needs the DomainAdapter being trained; got {type(model).__name__}."
        )
    return F.cross_entropy


class DomainPairLoader:
    """Batches of ``({"source": xs, "target": xt}, ys)``: labelled source, unlabelled target.

    Each epoch draws every source image once in a random order; target images are drawn at
    random (with reshuffling), so a small target set is reused. Images are normalised by
    :func:`~tlhelpers.data.imageset.to_float`, the course normalisation.
    """

    def __init__(
        self,
        source: ImageSet,
        target: torch.Tensor | ImageSet,
        batch_size: int = 64,
        *,
        seed: int = 0,
    ) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 2:
            raise ValueError(f"batch_size={batch_size!r} must be an integer >= 2, e.g. 64.")
        target_images = target.images if isinstance(target, ImageSet) else target
        if len(source) < batch_size or len(target_images) < batch_size:
            raise ValueError(
                f"batch_size={batch_size} is larger than the source ({len(source)}) or the "
                f"target ({len(target_images)}); use a smaller batch_size."
            )
        self.source, self.target = source, target_images
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return len(self.source) // self.batch_size

    def __iter__(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        order = torch.randperm(len(self.source), generator=self.generator)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            rows = order[start : start + self.batch_size]
            cols = torch.randint(len(self.target), (self.batch_size,), generator=self.generator)
            inputs = {
                "source": to_float(self.source.images[rows]),
                "target": to_float(self.target[cols]),
            }
            yield inputs, self.source.labels[rows]
