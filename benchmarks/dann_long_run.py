"""DANN on clean → textured digits with the paper's protocol, trained long: how much of the gap?

Notebook 06's quick profile adapts for a few hundred steps from a shared source-trained start
and closes a small share of the source-only → oracle gap, against the 56% Ganin et al. (2016)
report on MNIST → MNIST-M. This script asks whether training length and the network are what
is missing. It follows the paper's protocol as far as the offline shift allows:

* every model trains **from scratch** (no shared start), for ``--steps`` SGD steps with momentum
  0.9, μ0 = 0.01 annealed as μ0 / (1 + 10 p)^0.75, weight decay 5e-4;
* DANN: batches of 64 source + 64 target images through the network together, the reversal
  weight rising as λ_p = 2 / (1 + exp(−10 p)) − 1 to 1, a domain classifier of one hidden layer
  of 100 units on the features;
* the paper's MNIST network ("lenet": conv 5×5 32, max-pool, conv 5×5 48, max-pool; label
  predictor fc 100, fc 100, fc 10; the reversal sits after the convolutions), beside the course's
  ``SmallCNN`` with the quick profile's widths ("smallcnn", aligned on its pooled features);
* controls: source-only (64 source images a step), the same mixed 64 + 64 batches with the
  adversary off (λ_max = 0: batch norm sees target images, nothing aligns; run only for the
  network with batch norm, for the other it would repeat source-only), and the oracle
  (64 labelled target images a step).

Every condition runs for each ``--seeds`` value and each ``--steps`` value; results (target
test accuracy, share of the gap, seconds) go to ``--out`` as JSON, written to a temporary file
and renamed after every run, so an interrupted benchmark keeps what finished.

    .venv/bin/python benchmarks/dann_long_run.py                      # both networks, long
    .venv/bin/python benchmarks/dann_long_run.py --steps 800 --seeds 100 --networks lenet
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from tlhelpers.alignment import dann_lambda, dann_lr_factor, domain_discriminator, grad_reverse
from tlhelpers.data.imageset import ImageSet, to_float
from tlhelpers.data.shifts import domain_shift
from tlhelpers.evaluation import accuracy
from tlhelpers.models import SmallCNN
from tlhelpers.settings import seed_everything

NETWORKS = ("lenet", "smallcnn")
CONDITIONS = ("source-only", "mixed, no adversary", "DANN", "oracle")
QUICK_WIDTHS = (16, 16, 32, 64)
BATCH, LR0 = 64, 0.01


class LeNetDANN(nn.Module):
    """The DANN paper's MNIST network for 3 × 32 × 32 inputs; ``features`` feed the reversal."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(32, 48, 5), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.classifier = nn.Sequential(
            nn.Linear(48 * 5 * 5, 100), nn.ReLU(inplace=True),
            nn.Linear(100, 100), nn.ReLU(inplace=True),
            nn.Linear(100, num_classes),
        )
        self.feature_dim = 48 * 5 * 5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class SmallCNNDANN(nn.Module):
    """The course's SmallCNN with its pooled features exposed for the reversal layer."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.net = SmallCNN(num_classes, widths=QUICK_WIDTHS)
        self.feature_dim = self.net.head.in_features

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.forward_features(x, upto="pool")

    def classifier(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net.head(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def build(network: str) -> nn.Module:
    """A fresh network by name."""
    if network not in NETWORKS:
        raise ValueError(f"network={network!r} is not known; valid choices: {', '.join(NETWORKS)}.")
    return LeNetDANN() if network == "lenet" else SmallCNNDANN()


def batches(
    images: ImageSet, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless batches of BATCH images drawn without replacement within each pass."""
    while True:
        order = torch.randperm(len(images), generator=generator)
        for start in range(0, len(order) - BATCH + 1, BATCH):
            rows = order[start : start + BATCH]
            yield to_float(images.images[rows]), images.labels[rows]


def conditions_for(network: str, conditions: list[str]) -> list[str]:
    """The conditions to run: the mixed-batch control only where batch norm can see the mix.

    Without batch norm ("lenet") mixed batches with the adversary off train exactly as
    source-only does (the target half gets no gradient), so the control would repeat it.
    """
    has_batch_norm = any(isinstance(m, nn.BatchNorm2d) for m in build(network).modules())
    return [c for c in conditions if has_batch_norm or c != "mixed, no adversary"]


def train(network: str, condition: str, shift, steps: int, seed: int) -> dict[str, float]:
    """One run from scratch: target and source test accuracy, wall and CPU seconds of training.

    With one thread (``--threads 1``) the CPU seconds are the training time even when the
    process was paused or shared the machine.
    """
    seed_everything(seed)
    model = build(network)
    discriminator = domain_discriminator(model.feature_dim, 100, 1)
    params = list(model.parameters()) + list(discriminator.parameters())
    optimizer = torch.optim.SGD(params, lr=LR0, momentum=0.9, weight_decay=5e-4)
    generator = torch.Generator().manual_seed(seed)
    labelled = batches(shift.target if condition == "oracle" else shift.source, generator)
    unlabelled = batches(shift.target, generator)
    lambda_max = {"DANN": 1.0, "mixed, no adversary": 0.0}.get(condition)
    model.train()
    t0, cpu0 = time.perf_counter(), time.process_time()
    for step in range(steps):
        progress = step / steps
        for group in optimizer.param_groups:
            group["lr"] = LR0 * dann_lr_factor(progress)
        x, y = next(labelled)
        if lambda_max is None:
            loss = F.cross_entropy(model(x), y)
        else:
            xt, _ = next(unlabelled)
            feats = model.features(torch.cat([x, xt]))
            loss = F.cross_entropy(model.classifier(feats[:BATCH]), y)
            reversed_feats = grad_reverse(feats, lambda_max * dann_lambda(progress))
            is_target = torch.cat([torch.zeros(BATCH), torch.ones(BATCH)])
            loss = loss + F.binary_cross_entropy_with_logits(
                discriminator(reversed_feats).squeeze(1), is_target
            )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "target_test": accuracy(model, shift.target_test, device="cpu"),
        "source_test": accuracy(model, shift.source_test, device="cpu"),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
    }


def write_atomic(path: Path, payload: dict) -> None:
    """Write JSON to a temporary file beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=1)
    os.replace(tmp, path)


def summarise(runs: list[dict]) -> list[str]:
    """One line per network × steps × seed: accuracies and DANN's share of the gap."""
    lines = []
    keys = sorted({(r["network"], r["steps"], r["seed"]) for r in runs})
    for network, steps, seed in keys:
        acc = {r["condition"]: r["target_test"] for r in runs
               if (r["network"], r["steps"], r["seed"]) == (network, steps, seed)}
        if not {"source-only", "oracle"} <= acc.keys():
            continue
        gap = acc["oracle"] - acc["source-only"]
        shares = {c: (acc[c] - acc["source-only"]) / gap for c in acc
                  if c not in ("source-only", "oracle") and gap > 0}
        cells = ", ".join(f"{c} {a:.1f}%" for c, a in acc.items())
        share_text = ", ".join(f"{c} closes {100 * v:.0f}%" for c, v in shares.items())
        lines.append(f"{network:>8} {steps:>6} steps seed {seed}: {cells}; {share_text}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[800, 3000, 12000])
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101])
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=NETWORKS)
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    parser.add_argument("--source-images", type=int, default=20_000)
    parser.add_argument("--target-images", type=int, default=10_000)
    parser.add_argument("--test-images", type=int, default=2_000)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all)")
    parser.add_argument("--out", type=Path, default=Path("build/benchmarks/dann_long_run.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    shift = domain_shift("textured", source_images=args.source_images,
                         target_images=args.target_images, test_images=args.test_images)
    runs: list[dict] = []
    for steps in sorted(args.steps):
        for seed in args.seeds:
            for network in args.networks:
                for condition in conditions_for(network, args.conditions):
                    result = train(network, condition, shift, steps, seed)
                    runs.append({"network": network, "condition": condition, "steps": steps,
                                 "seed": seed, **result})
                    print(f"{network:>8} {condition:>20} {steps:>6} steps seed {seed}: "
                          f"target {result['target_test']:5.1f}%, source "
                          f"{result['source_test']:5.1f}%, {result['cpu_seconds']:.0f} s CPU",
                          flush=True)
                    write_atomic(args.out, {"args": {k: str(v) for k, v in vars(args).items()},
                                            "threads": torch.get_num_threads(), "runs": runs,
                                            "summary": summarise(runs)})
    print("\n".join(summarise(runs)))
    if not math.isfinite(sum(r["target_test"] for r in runs)):
        raise SystemExit("a run produced a non-finite accuracy")


if __name__ == "__main__":
    main()
