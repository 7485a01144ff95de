"""Notebook time budgets and measured times: ``notebooks/budgets.json``, the one place they live.

Per notebook the file holds ``budget_s`` (seconds of cell execution the notebook tests allow in
the quick profile on the course's 2-core reference CPU, from an empty cache),
``measured_quick_s`` (what it took there: the upper end of the runs so far), ``slower_cpu_s``
(what it took on a slower 2-core machine) and ``cost`` (what takes the time), and once the
reference CPU's training speed (``reference_images_per_s``, by :func:`cpu_training_speed`).

The notebook tests read the budgets and scale them to the machine (:func:`budget_scale`);
``make figures PROFILE=full`` on a CPU estimates its time from the measured times
(:func:`cpu_time_warning`); README.md and slides/TEACHING.md show them in tables this module
writes between ``<!-- notebook-times: NAME ... -->`` markers. After editing the file, run
``make notebook-times`` (``python -m tools.budgets --write``); ``python -m tools.budgets``
checks the tables and exits 1 when one is stale.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from tools.notebooks import NOTEBOOK_DIR, ROOT, shown_path

__all__ = [
    "BUDGETS_FILE",
    "TABLE_FILES",
    "Budgets",
    "NotebookTimes",
    "budget_scale",
    "cpu_time_warning",
    "cpu_training_speed",
    "main",
    "quick_seconds",
    "read_budgets",
    "render_tables",
    "stale_tables",
]

BUDGETS_FILE = NOTEBOOK_DIR / "budgets.json"
FIX = "edit notebooks/budgets.json, then run `make notebook-times`"


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


# --- the tables in README.md and slides/TEACHING.md --------------------------------------------

# Each file that shows the times, and the table it holds.
TABLE_FILES = {ROOT / "README.md": "readme", ROOT / "slides" / "TEACHING.md": "teaching"}
_BLOCK = re.compile(
    r"(?P<start><!-- notebook-times: (?P<name>[a-z]+)\b[^>]*-->\n)(?P<body>.*?)"
    r"(?P<end><!-- /notebook-times -->)",
    re.DOTALL,
)


def _duration(seconds: float) -> str:
    """``"7 s"`` under a minute, else ``"1.5 min"``."""
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def _readme_table(budgets: Budgets) -> str:
    rows = [
        f"| `{name}` | {_duration(t.measured_quick_s)} | {_duration(t.budget_s)} |"
        for name, t in budgets.notebooks.items()
    ]
    header = "| notebook | quick profile, reference CPU | budget in the tests |\n|---|---|---|"
    return "\n".join([header, *rows]) + "\n"


def _teaching_table(budgets: Budgets) -> str:
    rows = [
        f"| `{name}` | {t.measured_quick_s:.0f} s | "
        f"{'—' if t.slower_cpu_s is None else f'{t.slower_cpu_s:.0f} s'} | {t.budget_s:.0f} s | "
        f"{t.cost} |"
        for name, t in budgets.notebooks.items()
    ]
    header = (
        "| notebook | reference CPU | slower 2-core machine | budget in the tests "
        "| what takes the time |\n|---|---|---|---|---|"
    )
    speed = (
        f"\nThe reference CPU trains the course CNN at {budgets.reference_images_per_s:,.0f} "
        "images/s by `cpu_training_speed()` (`tools/budgets.py`).\n"
    )
    return "\n".join([header, *rows]) + "\n" + speed


_TABLES: dict[str, Callable[[Budgets], str]] = {
    "readme": _readme_table,
    "teaching": _teaching_table,
}


def render_tables(text: str, budgets: Budgets) -> str:
    """``text`` with every ``notebook-times`` block rewritten from ``budgets``."""

    def block(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in _TABLES:
            raise ValueError(
                f"<!-- notebook-times: {name} --> names no table; valid choices: {list(_TABLES)}."
            )
        return match["start"] + _TABLES[name](budgets) + match["end"]

    return _BLOCK.sub(block, text)


def _is_stale(path: Path, table: str, budgets: Budgets) -> bool:
    text = path.read_text(encoding="utf-8")
    if table not in {match["name"] for match in _BLOCK.finditer(text)}:
        return True  # the table is missing: its markers go where it belongs
    return render_tables(text, budgets) != text


def stale_tables(
    files: Mapping[Path, str] = TABLE_FILES, budgets: Budgets | None = None
) -> list[Path]:
    """The files whose ``notebook-times`` table is missing or differs from the budgets file."""
    budgets = budgets or read_budgets()
    return [path for path, table in files.items() if _is_stale(path, table, budgets)]


def _write_tables(paths: Sequence[Path], budgets: Budgets) -> None:
    from tlhelpers.files import atomic_write

    for path in paths:
        text = render_tables(path.read_text(encoding="utf-8"), budgets)
        atomic_write(path, lambda handle, text=text: handle.write(text.encode("utf-8")))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: check the tables, or rewrite them with ``--write``; exit 1 while one is
    stale or missing."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite the stale tables")
    args = parser.parse_args(argv)
    budgets = read_budgets()
    stale = stale_tables(TABLE_FILES, budgets)
    if args.write and stale:
        _write_tables(stale, budgets)
        rewritten, stale = stale, stale_tables(TABLE_FILES, budgets)
        for path in rewritten:
            if path not in stale:
                print(f"{shown_path(path)}: notebook times rewritten")
    for path in stale:
        table = TABLE_FILES[path]
        print(
            f"{shown_path(path)}: the {table!r} notebook-times table is stale or missing; run "
            f"`make notebook-times` (a missing table needs its markers first: "
            f"<!-- notebook-times: {table} --> and <!-- /notebook-times -->)"
        )
    if not stale:
        print("the notebook-times tables match notebooks/budgets.json")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
