"""Execute the course notebooks with papermill, time every cell, and report.

Used by ``make figures`` (every notebook in one profile, figures into ``slides/figures``) and by
``tests/test_notebooks.py`` (each notebook in the quick profile, with no network where the
machine allows it). Run ``python tools/run_notebooks.py --help`` for the options.

With ``--figures-dir``, each notebook's old figures are removed before it runs, and afterwards
its figures are checked against ``slides/figures.json`` and indexed in ``index.html`` next to
them (``tools/figure_index.py``). Asking for the ``full`` profile on a machine without a CUDA
GPU prints a warning with a rough estimate of the time it would take.

Offline runs use a fresh network namespace: ``unshare -n`` (root only) with the loopback
interface brought up, because the Jupyter kernel talks to papermill over local ZMQ sockets.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "MEASURED_QUICK_S",
    "PROFILES",
    "REFERENCE_IMAGES_PER_S",
    "CellTiming",
    "NotebookRun",
    "budget_scale",
    "cpu_training_speed",
    "find_notebooks",
    "full_profile_warning",
    "main",
    "offline_prefix",
    "offline_supported",
    "quick_seconds",
    "read_cell_timings",
    "run_notebook",
    "training_work_ratio",
    "update_timings_json",
]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOK_PATTERN = re.compile(r"^\d{2}_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb$")
PROFILES = ("quick", "full")  # mirrors tlhelpers.settings.PROFILES; the notebook validates it
OFFLINE_CHOICES = ("auto", "yes", "no")
KERNEL = "python3"
# Seconds of cell execution per notebook in the quick profile, measured on a 2-core CPU from an
# empty cache (the upper ends in slides/TEACHING.md); used when no quick timings.json is at hand.
MEASURED_QUICK_S = {
    "00_welcome": 7.0,
    "01_pretraining": 92.0,
    "02_feature_extraction": 82.0,
    "03_fine_tuning": 138.0,
    "04_negative_transfer": 60.0,
    "05_cv_vs_nlp": 250.0,
    "06_domain_adaptation": 175.0,
}


# Training speed of the machine the budgets and MEASURED_QUICK_S were set on, in images per
# second, by cpu_training_speed(): the course's 2-core reference CPU, where a ~150k-parameter
# CNN of this shape trains at about 2,150 images/s (the scoping measurements of the course).
REFERENCE_IMAGES_PER_S = 2150.0


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


def budget_scale(images_per_s: float, max_scale: float = 2.0) -> float:
    """How much longer than on the reference CPU this machine may take: at least 1, at most
    ``max_scale`` (a machine slower than that fails the budgets instead of hiding a slowdown)."""
    if not images_per_s > 0:
        raise ValueError(f"images_per_s={images_per_s!r} must be a positive speed.")
    return min(max(REFERENCE_IMAGES_PER_S / images_per_s, 1.0), max_scale)


@dataclass(frozen=True)
class CellTiming:
    """How long one executed code cell took, as papermill recorded it."""

    index: int  # position among the executed notebook's cells
    source_head: str  # first line of the cell's source
    duration_s: float  # metadata.papermill.duration (0 for cells that did not run)
    error: str | None = None  # "ename: evalue" if the cell raised
    execution_count: int | None = None  # the In [n] number Jupyter showed


@dataclass(frozen=True)
class NotebookRun:
    """The outcome of executing one notebook."""

    notebook: Path
    output: Path
    profile: str
    seed: int
    offline: bool
    returncode: int
    wall_s: float  # whole papermill process, kernel start included
    cells: tuple[CellTiming, ...] = field(default_factory=tuple)
    timed_out: bool = False
    log_tail: str = ""  # last lines of papermill's stderr and stdout

    @property
    def name(self) -> str:
        return self.notebook.stem

    @property
    def execution_s(self) -> float:
        """Seconds spent executing cells (sum of per-cell durations; kernel start excluded)."""
        return sum(cell.duration_s for cell in self.cells)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and self.error is None

    @property
    def error(self) -> str | None:
        """``cell N (first line): ename: evalue`` of the first failing cell, if any."""
        for cell in self.cells:
            if cell.error:
                shown = f"In [{cell.execution_count}], " if cell.execution_count else ""
                return f"cell {cell.index} ({shown}{cell.source_head!r}): {cell.error}"
        if self.timed_out:
            return f"timed out after {self.wall_s:.0f} s"
        if self.returncode != 0:
            return f"papermill exited with status {self.returncode}"
        return None

    def summary(self) -> str:
        mode = "offline" if self.offline else "network allowed"
        status = "ok" if self.ok else "FAILED"
        return (
            f"{self.name} ({self.profile}, seed {self.seed}, {mode}): {status}, "
            f"{self.execution_s:.1f} s in cells, {self.wall_s:.1f} s wall"
        )

    def timing_table(self, top: int | None = None) -> str:
        """The summary line, then one line per code cell (the slowest ``top`` if given)."""
        cells = list(self.cells)
        if top is not None:
            cells = sorted(cells, key=lambda c: c.duration_s, reverse=True)[:top]
        lines = [self.summary(), f"  {'cell':>5} {'seconds':>8}  source"]
        for cell in cells:
            flag = f"  <- {cell.error[:100]}" if cell.error else ""
            lines.append(
                f"  {cell.index:>5} {cell.duration_s:>8.2f}  {cell.source_head[:60]}{flag}"
            )
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "seed": self.seed,
            "offline": self.offline,
            "ok": self.ok,
            "error": self.error,
            "execution_s": round(self.execution_s, 3),
            "wall_s": round(self.wall_s, 3),
            "cells": [
                {"index": c.index, "source": c.source_head, "seconds": round(c.duration_s, 3)}
                for c in self.cells
            ],
        }


def find_notebooks(names: Sequence[str] = (), directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The course notebooks ``NN_name.ipynb`` in order, or those named (stem, file or path)."""
    every = sorted(p for p in directory.glob("*.ipynb") if NOTEBOOK_PATTERN.match(p.name))
    if not names:
        return every
    chosen = []
    by_stem = {p.stem: p for p in every}
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.exists():
            chosen.append(path.resolve())
        elif path.stem in by_stem:
            chosen.append(by_stem[path.stem])
        else:
            valid = ", ".join(by_stem) or "(none found)"
            raise ValueError(f"notebook {name!r} not found in {directory}; valid choices: {valid}.")
    return chosen


@functools.lru_cache(maxsize=1)
def offline_supported() -> bool:
    """Whether this machine lets us run a command with no network (root, ``unshare -n``, ``ip``)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    try:
        probe = subprocess.run(
            ["unshare", "-n", "sh", "-c", "ip link set lo up"],
            capture_output=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def offline_prefix() -> list[str]:
    """Command prefix that runs the rest of the argv in a new network namespace, loopback up."""
    return ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']


def _source_head(source: str) -> str:
    for line in source.splitlines():
        if line.strip():
            return line.strip()
    return ""


def read_cell_timings(executed: Path) -> tuple[CellTiming, ...]:
    """Per-code-cell durations and errors from a notebook papermill has executed."""
    notebook = json.loads(executed.read_text(encoding="utf-8"))
    timings = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        meta = cell.get("metadata", {}).get("papermill", {})
        error = None
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                error = f"{output.get('ename', '?')}: {output.get('evalue', '')}"
                break
        timings.append(
            CellTiming(
                index=index,
                source_head=_source_head(source),
                duration_s=float(meta.get("duration") or 0.0),
                error=error,
                execution_count=cell.get("execution_count"),
            )
        )
    return tuple(timings)


def run_notebook(
    notebook: Path,
    *,
    profile: str = "quick",
    seed: int = 0,
    output_dir: Path,
    figures_dir: Path | None = None,
    cache_dir: Path | None = None,
    offline: str = "no",
    timeout_s: float | None = None,
    extra_env: dict[str, str] | None = None,
) -> NotebookRun:
    """Execute ``notebook`` with papermill (``-p profile … -p seed …``) and time its cells.

    The executed copy goes to ``output_dir / notebook.name``; the kernel's working directory is
    the notebook's folder. ``figures_dir`` and ``cache_dir`` set ``TL_FIGURES_DIR`` and
    ``TL_CACHE_DIR``. ``offline``: "yes" requires a network-free run, "auto" uses one where
    the machine allows it, "no" runs normally.
    """
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is not a course profile; valid choices: {PROFILES}.")
    if offline not in OFFLINE_CHOICES:
        raise ValueError(
            f"offline={offline!r} is not understood; valid choices: {OFFLINE_CHOICES}."
        )
    go_offline = offline == "yes" or (offline == "auto" and offline_supported())
    if offline == "yes" and not offline_supported():
        raise RuntimeError(
            "offline='yes' needs root and a working `unshare -n`; run with offline='auto' "
            "or 'no' here."
        )
    notebook = Path(notebook).resolve()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    output = output_dir / notebook.name
    output.unlink(missing_ok=True)

    env = dict(os.environ)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets a debugger warning
    if figures_dir is not None:
        env["TL_FIGURES_DIR"] = str(Path(figures_dir).resolve())
    if cache_dir is not None:
        env["TL_CACHE_DIR"] = str(Path(cache_dir).resolve())
    env.update(extra_env or {})

    command = [
        sys.executable, "-m", "papermill", str(notebook), str(output.resolve()),
        "-p", "profile", profile, "-p", "seed", str(seed),
        "-k", KERNEL, "--cwd", str(notebook.parent), "--no-progress-bar",
    ]  # fmt: skip
    if go_offline:
        command = offline_prefix() + command
    start = time.perf_counter()
    timed_out = False
    try:
        proc = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
        returncode, log = proc.returncode, (proc.stderr or "") + (proc.stdout or "")
    except subprocess.TimeoutExpired as expired:
        timed_out, returncode = True, -1
        log = _text(expired.stderr) + _text(expired.stdout)
    wall_s = time.perf_counter() - start
    marker = log.rfind("PapermillExecutionError")  # skip papermill's own call stack
    if marker >= 0:
        log = log[marker:]
    cells = read_cell_timings(output) if output.exists() else ()
    return NotebookRun(
        notebook=notebook,
        output=output,
        profile=profile,
        seed=seed,
        offline=go_offline,
        returncode=returncode,
        wall_s=wall_s,
        cells=cells,
        timed_out=timed_out,
        log_tail="\n".join(log.strip().splitlines()[-40:]),
    )


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def update_timings_json(path: Path, run: NotebookRun) -> None:
    """Merge one run into ``path`` (``{notebook: {...}}``), writing atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        data = {}
    data[run.name] = run.to_json()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _conv_work(profile: Any) -> int:
    """Relative cost of one image through the course CNN: the sum of squared stage widths."""
    return sum(width * width for width in profile.widths)


def training_work_ratio(quick: Any, full: Any) -> tuple[float, float]:
    """How many times more training work ``full`` asks for than ``quick``: (low, high).

    Read from the two profiles (``tlhelpers.settings.QUICK`` and ``FULL``), assuming time grows
    in proportion to the images a network processes times its width squared (convolution cost):
    pretraining is images × epochs; fine-tuning is steps × batch size × seeds. The lower of the
    two ratios is ``low``, the higher ``high``.
    """
    width = _conv_work(full) / _conv_work(quick)
    pretrain = (full.source_images * full.pretrain_epochs) / (
        quick.source_images * quick.pretrain_epochs
    )
    finetune = (full.finetune_steps * full.finetune_batch_size * len(full.seeds)) / (
        quick.finetune_steps * quick.finetune_batch_size * len(quick.seeds)
    )
    ratios = sorted((pretrain * width, finetune * width))
    return ratios[0], ratios[1]


def quick_seconds(timings_json: Path | None = None) -> dict[str, float]:
    """Measured quick-profile cell seconds per notebook: a quick run's ``timings.json`` where it
    holds a successful run, else :data:`MEASURED_QUICK_S`."""
    seconds = dict(MEASURED_QUICK_S)
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


def full_profile_warning(
    notebooks: Sequence[str], quick_s: Mapping[str, float], ratio: tuple[float, float]
) -> str:
    """The warning printed when the full profile is asked for on a machine without a GPU.

    Estimates each notebook's CPU time as its measured quick-profile time (``quick_s``) times
    the full/quick training-work ``ratio`` (see :func:`training_work_ratio`): a rough range,
    not a measurement.
    """
    low, high = ratio
    lines = [
        "WARNING: profile 'full' was asked for, but torch sees no CUDA GPU. The full profile is "
        "sized for one GPU (about 10 minutes per notebook there); on this CPU expect roughly:"
    ]
    total_low = total_high = 0.0
    untimed = []
    for name in notebooks:
        if name not in quick_s:
            untimed.append(name)
            continue
        total_low += quick_s[name] * low
        total_high += quick_s[name] * high
        span = _span(quick_s[name] * low, quick_s[name] * high)
        lines.append(f"  {name:<26} {span:>12}  (quick: {quick_s[name]:.0f} s)")
    if len(notebooks) > len(untimed):
        lines.append(f"  {'in all':<26} {_span(total_low, total_high):>12}")
    if untimed:
        lines.append(f"  not timed in the quick profile yet: {', '.join(untimed)}")
    lines += [
        f"Estimate: measured quick-profile time × {low:.0f} to {high:.0f}, the ratio of training "
        "work between the profiles in tlhelpers/settings.py (images × epochs or steps × seeds × "
        "channel width²), assuming CPU time grows in proportion to it. A first full run also "
        "pretrains every course network that has no full-profile checkpoint yet.",
        "Use PROFILE=quick on a CPU, or run the full profile on a GPU (the GPU workflow in "
        ".github/workflows/gpu.yml).",
    ]
    return "\n".join(lines)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _warn_if_full_on_cpu(notebooks: Sequence[Path]) -> None:
    if _cuda_available():
        return
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tlhelpers.settings import FULL, QUICK

    warning = full_profile_warning(
        [p.stem for p in notebooks], quick_seconds(), training_work_ratio(QUICK, FULL)
    )
    print(warning, file=sys.stderr, flush=True)


def _figure_index() -> ModuleType:
    """``tools/figure_index.py`` (a sibling script) as a module."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import figure_index

    return figure_index


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: execute notebooks, print a timing table each; with ``--figures-dir``, check
    and index their figures. Exit 1 if a notebook failed or a figure is missing or unlisted."""
    parser = argparse.ArgumentParser(
        description="Execute the course notebooks with papermill and report per-cell timings."
    )
    parser.add_argument("notebooks", nargs="*", help="stems or paths (default: all NN_*.ipynb)")
    parser.add_argument("--profile", choices=PROFILES, default="quick")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--output-dir", type=Path, default=None, help="default build/executed/PROFILE"
    )
    parser.add_argument(
        "--figures-dir",
        type=Path,
        default=None,
        help="sets TL_FIGURES_DIR; checks figures against slides/figures.json; writes index.html",
    )
    parser.add_argument("--cache-dir", type=Path, default=None, help="sets TL_CACHE_DIR")
    parser.add_argument("--offline", choices=OFFLINE_CHOICES, default="no")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per notebook")
    args = parser.parse_args(argv)

    try:
        notebooks = find_notebooks(args.notebooks)
    except ValueError as error:
        parser.error(str(error))
    if not notebooks:
        parser.error(f"no notebooks NN_name.ipynb found in {NOTEBOOK_DIR}")
    output_dir = args.output_dir or ROOT / "build" / "executed" / args.profile
    if args.profile == "full":
        _warn_if_full_on_cpu(notebooks)
    figures = _figure_index() if args.figures_dir is not None else None
    expected = figures.read_manifest() if figures is not None else {}
    failed, figure_problems = [], []
    for notebook in notebooks:
        if figures is not None:
            figures.remove_figures(args.figures_dir, notebook.stem)  # no stale figure survives
        print(f"running {notebook.name} ({args.profile}, seed {args.seed}) ...", flush=True)
        run = run_notebook(
            notebook,
            profile=args.profile,
            seed=args.seed,
            output_dir=output_dir,
            figures_dir=args.figures_dir,
            cache_dir=args.cache_dir,
            offline=args.offline,
            timeout_s=args.timeout,
        )
        update_timings_json(output_dir / "timings.json", run)
        print(run.timing_table(), flush=True)
        if not run.ok:
            failed.append(run)
            print(f"  error: {run.error}\n{run.log_tail}", file=sys.stderr, flush=True)
        elif figures is not None:
            figure_problems += figures.record_notebook(
                args.figures_dir, run.output, expected.get(notebook.stem, [])
            )
    print(f"executed copies and timings.json in {output_dir}")
    if figures is not None:
        print(f"figures and their index (index.html) in {args.figures_dir}")
    for problem in figure_problems:
        print(f"figure problem: {problem}", file=sys.stderr)
    if failed:
        print(
            f"{len(failed)} notebook(s) failed: {', '.join(r.name for r in failed)}",
            file=sys.stderr,
        )
    return 1 if failed or figure_problems else 0


if __name__ == "__main__":
    sys.exit(main())
