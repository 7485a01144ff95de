"""How robust is every claim of the course? Run notebooks for several seeds and tabulate.

``make claims-report SEEDS="0 1 2" NOTEBOOKS="03 04"`` runs each notebook once per seed
(quick profile, offline where the machine allows it, like the tests), with ``TL_CLAIMS_LOG``
set so every claim appends its value, bound and slack (how far it was from failing). It
writes ``build/claims/report.md`` and ``build/claims/report.json``: every claim × seed, the
smallest slack of each claim marked, failures listed. A claim that holds by a hair on one seed
is a claim to rethink, not to keep by tuning.

``--from-logs`` rebuilds the report from logs already written (no notebook runs).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlhelpers.files import atomic_write
from tools.notebooks import ROOT, find_notebooks
from tools.run_notebooks import run_notebook

DEFAULT_OUT = ROOT / "build" / "claims"


@dataclass(frozen=True)
class ClaimRecord:
    """One claim as one notebook run logged it."""

    notebook: str
    seed: int
    order: int  # position among the claims that notebook run made
    statement: str
    passed: bool
    slack: float | None
    details: str
    unit: str
    # slack as a share of the size of the numbers compared (claims in points and in ratios
    # can then be ranked together)
    relative_slack: float | None
    # failed, yet the run went on to log more claims: the notebook caught the ClaimError on
    # purpose (a demonstration of a failing claim), so it is not a result that failed
    caught: bool = False


def read_log(path: Path, notebook: str, seed: int) -> list[ClaimRecord]:
    """The claims one run logged (one JSON object a line), in the order they ran."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = []
    for order, line in enumerate(lines):
        data = json.loads(line)
        slack = data.get("slack")
        passed = bool(data["passed"])
        records.append(
            ClaimRecord(
                notebook=notebook, seed=seed, order=order, statement=data["statement"],
                passed=passed, slack=slack, details=data.get("details", ""),
                unit=data.get("unit", ""), relative_slack=_relative(slack, data),
                caught=not passed and order < len(lines) - 1,
            )
        )
    return records


def _relative(slack: float | None, data: dict[str, Any]) -> float | None:
    """Slack as a share of the size of the numbers the claim compared."""
    if slack is None:
        return None
    scale = float(data.get("scale") or 0.0)
    if scale > 0:
        return slack / scale
    return 0.0 if slack == 0 else math.copysign(math.inf, slack)


def log_path(out: Path, notebook: str, seed: int) -> Path:
    """Where one run's claims are logged."""
    return out / f"seed-{seed}" / f"{notebook}.jsonl"


def run_all(notebooks: Sequence[Path], seeds: Sequence[int], out: Path) -> dict[str, str]:
    """Execute each notebook for each seed with claims logged; return failures by run."""
    errors = {}
    for seed in seeds:
        for notebook in notebooks:
            log = log_path(out, notebook.stem, seed)
            log.parent.mkdir(parents=True, exist_ok=True)
            log.unlink(missing_ok=True)
            print(f"running {notebook.name} with seed {seed} ...", flush=True)
            run = run_notebook(
                notebook, profile="quick", seed=seed, output_dir=log.parent,
                figures_dir=out / "figures" / f"seed-{seed}", cache_dir=out / "cache",
                offline="auto", extra_env={"MPLBACKEND": "Agg", "TL_CLAIMS_LOG": str(log)},
            )
            print(f"  {run.summary()}", flush=True)
            if not run.ok:
                errors[f"{notebook.stem} seed {seed}"] = run.error or "failed"
    return errors


def collect(out: Path) -> list[ClaimRecord]:
    """Every claim logged under ``out`` (``seed-N/NN_name.jsonl``)."""
    records = []
    for path in sorted(out.glob("seed-*/*.jsonl")):
        seed = int(path.parent.name.removeprefix("seed-"))
        records += read_log(path, path.stem, seed)
    return records


def summarise(records: Sequence[ClaimRecord], errors: dict[str, str]) -> dict[str, Any]:
    """Claims grouped by notebook and statement, each with its per-seed slack and the worst."""
    claims: dict[tuple[str, str], dict[str, Any]] = {}
    for r in records:
        entry = claims.setdefault(
            (r.notebook, r.statement),
            {"notebook": r.notebook, "statement": r.statement, "unit": r.unit, "seeds": {},
             "order": r.order},
        )
        entry["seeds"][str(r.seed)] = {
            "passed": r.passed, "caught": r.caught, "slack": r.slack,
            "relative_slack": None if r.caught else r.relative_slack, "details": r.details,
        }
    for entry in claims.values():
        runs = entry["seeds"].values()
        numeric = [s for s in runs if s["relative_slack"] is not None]
        worst = min(numeric, key=lambda s: s["relative_slack"], default=None)
        entry["worst_relative_slack"] = None if worst is None else worst["relative_slack"]
        entry["worst_slack"] = None if worst is None else worst["slack"]
        entry["failed_seeds"] = sorted(
            k for k, s in entry["seeds"].items() if not s["passed"] and not s["caught"]
        )
    ordered = sorted(claims.values(), key=lambda e: (e["notebook"], e["order"]))
    seeds = sorted({r.seed for r in records})
    return {"seeds": seeds, "claims": ordered, "run_errors": errors}


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "–"
    if math.isinf(value):
        return "∞"
    return f"{100 * value:.0f}%" if percent else f"{value:.3g}"


def render_markdown(summary: dict[str, Any], smallest: int = 10) -> str:
    """The report a reader skims: totals, failures, the smallest margins, then every claim."""
    claims, seeds = summary["claims"], summary["seeds"]
    failures = [c for c in claims if c["failed_seeds"]]
    lines = [
        "# Claims report (quick profile)",
        "",
        f"{len(claims)} claims, seeds {', '.join(map(str, seeds)) or '–'}; "
        f"{len(failures)} claim(s) failed on some seed; "
        f"{len(summary['run_errors'])} run(s) stopped early.",
        "",
        "Slack: how far a claim was from failing, in its unit; relative: as a share of the "
        "size of the numbers it compared. A run stops at its first failing claim, so later "
        "claims of that run are absent; a failed claim the notebook caught on purpose (the run "
        "went on) is marked *caught* and counts as no failure.",
        "",
    ]
    if summary["run_errors"]:
        lines += ["## Runs that stopped", ""]
        lines += [f"- {run}: {error}" for run, error in summary["run_errors"].items()] + [""]
    ranked = sorted(
        (c for c in claims if c["worst_relative_slack"] is not None),
        key=lambda c: c["worst_relative_slack"],
    )
    lines += [f"## The {smallest} smallest margins", "",
              "| notebook | claim | worst slack | relative |", "|---|---|---|---|"]
    for c in ranked[:smallest]:
        lines.append(
            f"| {c['notebook']} | {c['statement']} | {_fmt(c['worst_slack'])} {c['unit']} | "
            f"{_fmt(c['worst_relative_slack'], percent=True)} |"
        )
    header = "| notebook | claim | " + " | ".join(f"seed {s}" for s in seeds) + " |"
    lines += ["", "## Every claim (slack per seed; ✗ failed, ⚑ smallest of the claim)", "",
              header, "|---|---|" + "---|" * len(seeds)]
    for c in claims:
        cells = []
        for s in seeds:
            run = c["seeds"].get(str(s))
            if run is None:
                cells.append("not run")
                continue
            mark = "caught " if run["caught"] else "✗ " if not run["passed"] else ""
            flag = " ⚑" if (run["slack"] is not None and run["slack"] == c["worst_slack"]
                            and len(seeds) > 1) else ""
            cells.append(f"{mark}{_fmt(run['slack'])}{flag}")
        lines.append(f"| {c['notebook']} | {c['statement']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(summary: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.json`` into ``out`` (each atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "report.md", out / "report.json"
    atomic_write(md, lambda f: f.write(render_markdown(summary).encode("utf-8")))
    text = json.dumps(summary, indent=1, ensure_ascii=False)
    atomic_write(js, lambda f: f.write(text.encode("utf-8")))
    return md, js


def main(argv: Sequence[str] | None = None) -> int:
    """Command line; exit 1 when a claim failed or a run stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--notebooks", nargs="*", default=[], help="stems or NN (default: all)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--from-logs", action="store_true", help="only rebuild the report")
    args = parser.parse_args(argv)
    if any(s < 0 for s in args.seeds):
        parser.error(f"--seeds {args.seeds}: seeds must be non-negative integers, e.g. 0 1 2")
    out = args.out.resolve()  # the kernels run in the notebooks' folder, not here
    errors: dict[str, str] = {}
    if not args.from_logs:
        try:
            notebooks = find_notebooks(args.notebooks)
        except ValueError as error:
            parser.error(str(error))
        errors = run_all(notebooks, args.seeds, out)
    summary = summarise(collect(out), errors)
    md, js = write_report(summary, out)
    print(render_markdown(summary).split("## Every claim")[0].rstrip())
    print(f"\nreport: {md} (and {js.name})")
    failed = errors or any(c["failed_seeds"] for c in summary["claims"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
