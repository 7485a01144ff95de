"""How much does ``tlhelpers.train.fit`` cost over a bare PyTorch loop? And channels_last?

Trains ``SmallCNN`` (quick-profile widths, 10 classes) on random 32×32 images with AdamW, in
four variants, on the same batches, for the same number of steps, with the same threads:

- ``minimal``: zero_grad → forward → loss → backward → step, nothing else (channels_last);
- ``fit, progress off`` and ``fit, progress on``: ``fit(...)`` with everything it does per step
  (running loss and accuracy, progress bar, checks) counted as its overhead;
- ``minimal, no channels_last``: the bare loop with the default memory format.

A second measurement trains a tiny MLP (2 → 16 → 3, batches of 8), where a step costs a few
hundred microseconds, so that fit's fixed cost per step shows in microseconds.

Every variant is warmed up once, then the variants run interleaved ``--repeats`` times (the
order rotates each repeat) so that drifts in machine speed hit all of them alike. Reported:
median images/s per variant, and fit's overhead as the median over repeats of
``time(fit) / time(minimal) - 1`` (paired within a repeat).

Run: ``.venv/bin/python benchmarks/fit_overhead.py [--epochs N] [--images N]``.

``--tune-malloc`` first raises glibc's mmap and trim thresholds (``mallopt``) so that freed
activation buffers are reused instead of handed back to the system and faulted in again on every
step; on Linux with glibc that speeds up every variant alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from tlhelpers.models import SmallCNN
from tlhelpers.settings import tune_cpu_allocator
from tlhelpers.train import fit

Batches = list[tuple[torch.Tensor, torch.Tensor]]


def make_batches(images: int, batch_size: int) -> Batches:
    """Random images and labels, split into in-memory batches (NCHW, as a loader yields)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(images, 3, 32, 32, generator=g)  # (N, 3, 32, 32)
    y = torch.randint(0, 10, (images,), generator=g)  # (N,)
    return [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, images, batch_size)]


def fresh_model(channels_last: bool) -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = SmallCNN(10)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3)


def run_minimal(batches: Batches, epochs: int, channels_last: bool = True) -> float:
    """The bare loop; returns seconds spent training."""
    model, optimizer = fresh_model(channels_last)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for x, y in batches:
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)  # same conversion as fit
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def run_fit(batches: Batches, epochs: int, progress: bool) -> float:
    """``fit`` on the same batches; returns seconds for the whole call."""
    model, optimizer = fresh_model(channels_last=True)
    start = time.perf_counter()
    fit(model, batches, optimizer=optimizer, epochs=epochs, device="cpu", progress=progress)
    return time.perf_counter() - start


def tiny_step_costs(repeats: int, steps: int = 512) -> dict[str, float]:
    """Median microseconds per step of the bare loop and of fit on a tiny MLP."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(steps * 8, 2, generator=g), torch.randint(0, 3, (steps * 8,), generator=g)
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, steps * 8, 8)]

    def model_and_optimizer() -> tuple[nn.Module, torch.optim.Optimizer]:
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 16), nn.ReLU(), nn.Linear(16, 3))
        return model, torch.optim.SGD(model.parameters(), lr=0.01)

    def minimal() -> float:
        model, optimizer = model_and_optimizer()
        loss_fn = nn.CrossEntropyLoss()
        start = time.perf_counter()
        for xb, yb in batches:
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
            optimizer.step()
        return time.perf_counter() - start

    def with_fit(progress: bool) -> float:
        model, optimizer = model_and_optimizer()
        start = time.perf_counter()
        fit(model, batches, optimizer=optimizer, device="cpu", progress=progress)
        return time.perf_counter() - start

    variants = {
        "minimal": minimal,
        "fit, progress off": lambda: with_fit(False),
        "fit, progress on": lambda: with_fit(True),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for repeat in range(repeats + 1):  # the first round is warm-up
        for name, run in variants.items():
            seconds = run()
            if repeat:
                times[name].append(seconds)
    return {name: 1e6 * statistics.median(t) / steps for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed run")
    parser.add_argument("--images", type=int, default=4096, help="training images")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per variant")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--tune-malloc", action="store_true", help="raise glibc's thresholds")
    args = parser.parse_args()
    malloc = "glibc malloc tuned" if args.tune_malloc and tune_cpu_allocator() else "default malloc"
    if args.threads:
        torch.set_num_threads(args.threads)

    load_before = os.getloadavg()[0]
    batches = make_batches(args.images, args.batch_size)
    variants: dict[str, Callable[[], float]] = {
        "minimal": lambda: run_minimal(batches, args.epochs),
        "fit, progress off": lambda: run_fit(batches, args.epochs, progress=False),
        "fit, progress on": lambda: run_fit(batches, args.epochs, progress=True),
        "minimal, no channels_last": lambda: run_minimal(batches, args.epochs, False),
    }
    warmup = make_batches(4 * args.batch_size, args.batch_size)
    run_minimal(warmup, 1)
    run_minimal(warmup, 1, False)
    model, optimizer = fresh_model(channels_last=True)
    fit(model, warmup, optimizer=optimizer, device="cpu", progress=False)

    seconds: dict[str, list[float]] = {name: [] for name in variants}
    names = list(variants)
    for repeat in range(args.repeats):
        order = names[repeat % len(names) :] + names[: repeat % len(names)]
        for name in order:
            seconds[name].append(variants[name]())

    work = args.images * args.epochs
    print(
        f"\nSmallCNN(10), {args.images} images 32x32, batch {args.batch_size}, "
        f"{len(batches) * args.epochs} steps per run, {args.repeats} repeats, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs ({platform.machine()}), {malloc}; 1-min load average "
        f"{load_before:.2f} before, {os.getloadavg()[0]:.2f} after (other work on the machine "
        "slows every variant)\n"
    )
    print("| variant | median images/s | range | time vs minimal (median of paired ratios) |")
    print("|---|---|---|---|")
    for name, times in seconds.items():
        rates = sorted(work / t for t in times)
        ratios = [t / m - 1 for t, m in zip(times, seconds["minimal"], strict=True)]
        relative = "—" if name == "minimal" else f"{100 * statistics.median(ratios):+.1f}%"
        print(
            f"| {name} | {statistics.median(rates):,.0f} | {rates[0]:,.0f}–{rates[-1]:,.0f} "
            f"| {relative} |"
        )

    costs = tiny_step_costs(args.repeats)
    print("\nTiny MLP (2 -> 16 -> 3, batch 8, 512 steps): microseconds per step, median\n")
    print("| variant | µs per step | added by fit |")
    print("|---|---|---|")
    for name, micro in costs.items():
        added = "—" if name == "minimal" else f"{micro - costs['minimal']:+.0f} µs"
        print(f"| {name} | {micro:.0f} | {added} |")


if __name__ == "__main__":
    main()
