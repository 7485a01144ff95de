"""Notebook time budgets and measured times: ``notebooks/budgets.json``, the one place they live.

Per notebook the file holds ``budget_s`` (seconds of cell execution the notebook tests allow in
the quick profile on the course's 2-core reference CPU, from an empty cache),
``measured_quick_s`` (what it took there: the upper end of the runs so far), ``slower_cpu_s``
(what it took on a slower 2-core machine) and ``cost`` (what takes the time), and once the
reference CPU's training speed (``reference_images_per_s``, by :func:`cpu_training_speed`).

The notebook tests read the budgets and scale them to the machine (:func:`budget_scale`);
``make figures PROFILE=full`` on a CPU estimates its time from the measured times
(:func:`cpu_time_warning`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tools.notebooks import NOTEBOOK_DIR, ROOT, shown_path

__all__ = [
    "BUDGETS_FILE",
    "Budgets",
    "NotebookTimes",
    "budget_scale",
    "cpu_time_warning",
    "cpu_training_speed",
    "quick_seconds",
    "read_budgets",
]

BUDGETS_FILE = NOTEBOOK_DIR / "budgets.json"
FIX = "edit notebooks/budgets.json"


@dataclass(frozen=True)
class NotebookTimes:
    """One notebook's entry in ``notebooks/budgets.json``; seconds of cell execution."""

    budget_s: float  # what the notebook tests allow on the reference CPU
    measured_quick_s: float  # measured on the reference CPU (upper end of the runs so far)
    slower_cpu_s: float | None = None  # measured on a slower 2-core machine
    cost: str = ""  # what takes the time, in words


@dataclass(frozen=True)
class Budgets:
    """All of ``notebooks/budgets.json``."""

    reference_images_per_s: float  # training speed of the reference CPU
    notebooks: Mapping[str, NotebookTimes]

    @property
    def budget_s(self) -> dict[str, float]:
        """``{notebook stem: budget in seconds}``."""
        return {name: t.budget_s for name, t in self.notebooks.items()}

    @property
    def measured_quick_s(self) -> dict[str, float]:
        """``{notebook stem: measured quick-profile seconds}``."""
        return {name: t.measured_quick_s for name, t in self.notebooks.items()}


def _positive(value: Any, where: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{path}: {where}={value!r} must be a positive number of seconds; {FIX}.")
    return float(value)


def _entry(name: str, data: Any, path: Path) -> NotebookTimes:
    valid = [f.name for f in fields(NotebookTimes)]
    if not isinstance(data, dict) or set(data) - set(valid) or "budget_s" not in data:
        raise ValueError(
            f"{path}: the entry of {name} is {data!r}; valid keys: {valid} (budget_s and "
            f"measured_quick_s required); {FIX}."
        )
    slower = data.get("slower_cpu_s")
    return NotebookTimes(
        budget_s=_positive(data["budget_s"], f"{name}.budget_s", path),
        measured_quick_s=_positive(
            data.get("measured_quick_s"), f"{name}.measured_quick_s", path
        ),
        slower_cpu_s=None if slower is None else _positive(slower, f"{name}.slower_cpu_s", path),
        cost=str(data.get("cost", "")),
    )


def read_budgets(path: Path = BUDGETS_FILE) -> Budgets:
    """Read and check ``notebooks/budgets.json``; a malformed entry names itself and the fix."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} is missing; restore it with `git checkout -- {shown_path(path)}`."
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("notebooks"), dict):
        raise ValueError(
            f'{path} should hold {{"reference_images_per_s": …, "notebooks": {{"00_welcome": '
            f'{{"budget_s": 60, "measured_quick_s": 7.0}}, …}}}}; {FIX}.'
        )
    speed = _positive(data.get("reference_images_per_s"), "reference_images_per_s", path)
    notebooks = {name: _entry(name, entry, path) for name, entry in data["notebooks"].items()}
    return Budgets(reference_images_per_s=speed, notebooks=notebooks)


# --- this machine against the reference CPU ----------------------------------------------------


def cpu_training_speed(steps: int = 12, batch_size: int = 128) -> float:
    """Images per second of training steps of the quick profile's SmallCNN on this CPU.

    A fixed workload (32×32 RGB batches, channels-last, AdamW) after two warm-up steps, so
    notebook budgets can be compared across machines: see :func:`budget_scale`.
    """
    import torch

    from tlhelpers.models import SmallCNN
    from tlhelpers.settings import QUICK

    generator = torch.Generator().manual_seed(0)
    model = SmallCNN(26, widths=QUICK.widths).to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(batch_size, 3, 32, 32, generator=generator)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(26, (batch_size,), generator=generator)
    model.train()

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(2):  # warm-up: first calls allocate and pick kernels
        train_step()
    start = time.perf_counter()
    for _ in range(steps):
        train_step()
    return steps * batch_size / (time.perf_counter() - start)


def budget_scale(
    images_per_s: float, max_scale: float = 2.0, *, reference_images_per_s: float | None = None
) -> float:
    """How much longer than on the reference CPU this machine may take: at least 1, at most
    ``max_scale`` (a machine slower than that fails the budgets instead of hiding a slowdown).

    ``reference_images_per_s`` defaults to the one in ``notebooks/budgets.json``.
    """
    if not images_per_s > 0:
        raise ValueError(f"images_per_s={images_per_s!r} must be a positive speed.")
    reference = reference_images_per_s or read_budgets().reference_images_per_s
    return min(max(reference / images_per_s, 1.0), max_scale)


# --- the full profile on a CPU -----------------------------------------------------------------


def quick_seconds(
    timings_json: Path | None = None, budgets: Path = BUDGETS_FILE
) -> dict[str, float]:
    """Measured quick-profile cell seconds per notebook: a quick run's ``timings.json`` where it
    holds a successful run, else ``measured_quick_s`` from ``notebooks/budgets.json``."""
    seconds = read_budgets(budgets).measured_quick_s
    path = timings_json or ROOT / "build" / "executed" / "quick" / "timings.json"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return seconds
    for name, run in data.items():
        if isinstance(run, dict) and run.get("ok") and run.get("profile") == "quick":
            seconds[name] = float(run.get("execution_s") or 0.0)
    return seconds


def _span(low_s: float, high_s: float) -> str:
    """``"8-10 min"`` or ``"1.5-1.8 h"``: one unit for both ends."""
    if high_s < 90 * 60:
        return f"{low_s / 60:.0f}-{high_s / 60:.0f} min"
    return f"{low_s / 3600:.1f}-{high_s / 3600:.1f} h"


def _estimate_lines(
    notebooks: Sequence[str], quick_s: Mapping[str, float], ratio: tuple[float, float]
) -> tuple[list[str], list[str]]:
    """One line per timed notebook (and an ``in all`` line); and the untimed notebooks."""
    low, high = ratio
    timed = [name for name in notebooks if name in quick_s]
    lines = [
        f"  {name:<26} {_span(quick_s[name] * low, quick_s[name] * high):>12}  "
        f"(quick: {quick_s[name]:.0f} s)"
        for name in timed
    ]
    if timed:
        total = sum(quick_s[name] for name in timed)
        lines.append(f"  {'in all':<26} {_span(total * low, total * high):>12}")
    return lines, [name for name in notebooks if name not in quick_s]


def cpu_time_warning(
    notebooks: Sequence[str], quick_s: Mapping[str, float], ratio: tuple[float, float]
) -> str:
    """The warning printed when the full profile is asked for on a machine without a GPU.

    Estimates each notebook's CPU time as its measured quick-profile time (``quick_s``) times
    the full/quick training-work ``ratio`` (:data:`tlhelpers.settings.FULL_TO_QUICK_WORK`): a
    rough range, not a measurement.
    """
    low, high = ratio
    lines, untimed = _estimate_lines(notebooks, quick_s, ratio)
    if untimed:
        lines.append(f"  not timed in the quick profile yet: {', '.join(untimed)}")
    return "\n".join([
        "WARNING: profile 'full' was asked for, but torch sees no CUDA GPU. The full profile is "
        "sized for one GPU (about 10 minutes per notebook there); on this CPU expect roughly:",
        *lines,
        f"Estimate: measured quick-profile time × {low:.0f} to {high:.0f}, the ratio of training "
        "work between the profiles in tlhelpers/settings.py (images × epochs or steps × seeds × "
        "channel width²), assuming CPU time grows in proportion to it. A first full run also "
        "pretrains every course network that has no full-profile checkpoint yet.",
        "Use PROFILE=quick on a CPU, or run the full profile on a GPU (the GPU workflow in "
        ".github/workflows/gpu.yml).",
    ])  # fmt: skip


