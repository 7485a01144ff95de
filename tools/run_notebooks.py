"""Execute the course notebooks with papermill, time every cell, and report.

Used by ``make figures`` (every notebook in one profile, figures into ``slides/figures``) and by
``tests/test_notebooks.py`` (each notebook in the quick profile, with no network where the
machine allows it). Run ``python -m tools.run_notebooks --help`` for the options.

With ``--figures-dir``, each notebook's old figures are removed before it runs, and afterwards
its figures are checked against ``slides/figures.json`` and indexed in ``index.html`` next to
them (:mod:`tools.figure_index`). Asking for the ``full`` profile on a machine without a CUDA
GPU prints a warning with a rough estimate of the time it would take (:mod:`tools.budgets`).

Offline runs use a fresh network namespace: ``unshare -n`` (root only) with the loopback
interface brought up, because the Jupyter kernel talks to papermill over local ZMQ sockets.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlhelpers.files import atomic_write
from tools import figure_index
from tools.budgets import cpu_time_warning, quick_seconds
from tools.notebooks import (
    NOTEBOOK_DIR,
    ROOT,
    cell_source,
    find_notebooks,
    first_line,
    read_notebook,
)

__all__ = [
    "PROFILES",
    "CellTiming",
    "NotebookRun",
    "main",
    "offline_prefix",
    "offline_supported",
    "read_cell_timings",
    "run_notebook",
    "update_timings_json",
]

OFFLINE_CHOICES = ("auto", "yes", "no")
PROFILES = ("quick", "full")  # mirrors tlhelpers.settings.PROFILES; the notebook validates it
KERNEL = "python3"


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


def read_cell_timings(executed: Path) -> tuple[CellTiming, ...]:
    """Per-code-cell durations and errors from a notebook papermill has executed."""
    notebook = read_notebook(executed)
    timings = []
    for index, cell in enumerate(notebook.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("papermill", {})
        error = None
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                error = f"{output.get('ename', '?')}: {output.get('evalue', '')}"
                break
        timings.append(
            CellTiming(
                index=index,
                source_head=first_line(cell_source(cell)),
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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        data = {}
    data[run.name] = run.to_json()
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _warn_if_full_on_cpu(notebooks: Sequence[Path]) -> None:
    if _cuda_available():
        return
    from tlhelpers.settings import FULL_TO_QUICK_WORK

    warning = cpu_time_warning([p.stem for p in notebooks], quick_seconds(), FULL_TO_QUICK_WORK)
    print(warning, file=sys.stderr, flush=True)


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
    figures = figure_index if args.figures_dir is not None else None
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
