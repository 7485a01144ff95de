"""How long do the transferability scores take on a realistic target set?

Random float32 features (default 10,000 samples × 512 features, 10 target classes), with class
signal: each class has its own mean feature vector (scaled by ``--signal``) plus unit Gaussian
noise. For LEEP and NCE, matching source-model probabilities over ``--source-classes`` source
classes (default 1,000, as for an ImageNet model): a softmax of noisy logits in which each
target class favours one source class.

Each score runs once as a warm-up, then ``--repeats`` times; reported: the median and range of
the wall-clock times, and the score. For LogME, the two big steps it is made of (the float64
Gram matrix FᵀF and its eigendecomposition) are timed on their own too. The target from the
issue: LogME on 10,000 × 512 with 10 classes in under a second on 2 cores.

Run: ``.venv/bin/python benchmarks/transferability_speed.py [--samples N] [--dim D]
[--classes K] [--source-classes Z] [--signal S] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from tlhelpers.transferability import h_score, leep, logme, nce


def timed(function: Callable[[], object], repeats: int) -> tuple[list[float], object]:
    """Seconds of each of ``repeats`` calls after one warm-up call, and the last result."""
    result = function()
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - start)
    return seconds, result


def make_inputs(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, args.classes, args.samples)
    centres = args.signal * rng.normal(size=(args.classes, args.dim))
    features = (centres[labels] + rng.normal(size=(args.samples, args.dim))).astype(np.float32)
    favourite = rng.choice(args.source_classes, size=args.classes, replace=False)
    logits = rng.normal(size=(args.samples, args.source_classes))
    logits[np.arange(args.samples), favourite[labels]] += 3.0
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    return features, probs, labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--source-classes", type=int, default=1_000)
    parser.add_argument("--signal", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    features, probs, labels = make_inputs(args)

    def gram() -> np.ndarray:
        f = features.astype(np.float64)
        return f.T @ f

    matrix = gram()
    rows = [
        ("logme", lambda: logme(features, labels)),
        ("  of which FᵀF (float64)", gram),
        ("  of which eigh(FᵀF)", lambda: np.linalg.eigh(matrix)),
        ("h_score", lambda: h_score(features, labels)),
        ("leep", lambda: leep(probs, labels)),
        ("nce (from probabilities)", lambda: nce(probs, labels)),
    ]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}, "
          f"Python {platform.python_version()}; 1-minute load average {load:.2f}")
    print(f"features {features.shape} float32, {args.classes} classes, source probabilities "
          f"{probs.shape} float32; median of {args.repeats} after one warm-up")
    print(f"{'':26} {'median ms':>10} {'range ms':>17} {'score':>10}")
    for name, function in rows:
        seconds, result = timed(function, args.repeats)
        score = f"{result:10.4f}" if isinstance(result, float) else ""
        print(f"{name:26} {1000 * statistics.median(seconds):10.1f} "
              f"{1000 * min(seconds):8.1f}–{1000 * max(seconds):<8.1f} {score}")


if __name__ == "__main__":
    main()
