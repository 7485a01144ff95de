"""What does caching frozen features save? Naive head training against cached features.

Trains the same linear head (10 classes) on top of the frozen letters checkpoint, two ways, on
the digits target's full pool (quick profile: 1,000 images), with the same starting weights,
the same batches in the same order and the same optimiser:

- ``naive``: ``fit`` on the whole network with every stage frozen and in eval mode: each epoch
  runs every image through the backbone again;
- ``cached``: :func:`tlhelpers.features.extract_features` once (timed separately, cache off), then
  ``fit`` on an ``nn.Linear`` over the cached ``pool`` features.

Both variants run ``--repeats`` times, interleaved. Reported: median milliseconds per epoch for
each, the per-epoch speed-up (median of the ratios paired within a repeat), the extraction time,
the speed-up including one extraction, and both heads' test accuracy.

Run: ``.venv/bin/python benchmarks/feature_cache.py [--epochs N] [--repeats N] [--batch-size N]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
from torch import nn

from tlhelpers.data import TensorLoader, novel_target
from tlhelpers.features import extract_features
from tlhelpers.models.checkpoints import load_checkpoint
from tlhelpers.settings import get_profile, seed_everything
from tlhelpers.train import evaluate, fit

FROZEN = ("stem", "stage1", "stage2", "stage3")


def _init_head(head: nn.Linear, seed: int) -> None:
    seed_everything(seed)
    nn.init.normal_(head.weight, std=0.01)
    nn.init.zeros_(head.bias)


def _keep_frozen_in_eval(model: nn.Module) -> None:
    for stage in FROZEN:
        getattr(model, stage).eval()


def naive(model: nn.Module, pool, epochs: int, batch: int, seed: int) -> float:
    """Seconds to train model.head with the frozen backbone in the loop."""
    _init_head(model.head, seed)
    optimizer = torch.optim.AdamW(model.head.parameters(), lr=1e-2)
    start = time.perf_counter()
    fit(model, pool.loader(batch, shuffle=True, seed=seed), optimizer=optimizer, epochs=epochs,
        train_mode_hook=_keep_frozen_in_eval, device="cpu", progress=False)
    return time.perf_counter() - start


def cached(head: nn.Linear, features: torch.Tensor, labels: torch.Tensor, epochs: int,
           batch: int, seed: int) -> float:
    """Seconds to train the same head on cached features."""
    _init_head(head, seed)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2)
    start = time.perf_counter()
    fit(head, TensorLoader(features, labels, batch, shuffle=True, seed=seed), optimizer=optimizer,
        epochs=epochs, device="cpu", progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    profile = get_profile("quick")
    digits = novel_target("digits", profile)
    model, _ = load_checkpoint("letters", profile=profile)
    model.requires_grad_(False)
    model.head = nn.Linear(model.head.in_features, 10)
    head = nn.Linear(model.head.in_features, 10)

    extract_times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        features = extract_features(model, digits.pool, "pool", cache=False)
        extract_times.append(time.perf_counter() - start)
    features_t = torch.from_numpy(features)
    naive(model, digits.pool, 1, args.batch_size, 0)  # warm-up
    cached(head, features_t, digits.pool.labels, 1, args.batch_size, 0)

    naive_s, cached_s = [], []
    for repeat in range(args.repeats):
        order = (0, 1) if repeat % 2 == 0 else (1, 0)
        for which in order:
            if which == 0:
                naive_s.append(naive(model, digits.pool, args.epochs, args.batch_size, 0))
            else:
                cached_s.append(cached(head, features_t, digits.pool.labels, args.epochs,
                                       args.batch_size, 0))
    test_loader = digits.test.loader(500, shuffle=False)
    naive_acc = evaluate(model, test_loader, device="cpu").accuracy
    test_features = torch.from_numpy(extract_features(model, digits.test, "pool", cache=False))
    cached_acc = evaluate(head, [(test_features, digits.test.labels)], device="cpu").accuracy

    per_epoch = statistics.median(n / c for n, c in zip(naive_s, cached_s, strict=True))
    extract = statistics.median(extract_times)
    total = statistics.median(naive_s) / (extract + statistics.median(cached_s))
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {len(digits.pool)} images, {args.epochs} epochs, "
          f"batch {args.batch_size}, {args.repeats} repeats")
    print(f"naive : {1000 * statistics.median(naive_s) / args.epochs:8.1f} ms/epoch "
          f"(range {1000 * min(naive_s) / args.epochs:.1f}–{1000 * max(naive_s) / args.epochs:.1f})"
          f", test accuracy {naive_acc:.1f}%")
    print(f"cached: {1000 * statistics.median(cached_s) / args.epochs:8.1f} ms/epoch "
          f"(range {1000 * min(cached_s) / args.epochs:.1f}–"
          f"{1000 * max(cached_s) / args.epochs:.1f}), test accuracy {cached_acc:.1f}%")
    print(f"one extraction pass: {1000 * extract:.0f} ms (median)")
    print(f"speed-up per epoch {per_epoch:.1f}×; for {args.epochs} epochs including one "
          f"extraction {total:.1f}×")


if __name__ == "__main__":
    main()
