"""Execute every course notebook once in the quick profile, offline where possible, and time it.

Each notebook runs with papermill (``-p profile quick -p seed N``) from an empty cache, so the
time measured is the worst case a learner meets on a first run. The claims inside the notebook
assert its results; this test fails on the first claim or cell that raises, and when a notebook
runs past its budget. ``TL_NOTEBOOK_SEED=1 make test`` checks the claims for another seed.

Where the tests run as root and ``unshare -n`` works, notebooks run in a network namespace with
only loopback up, which proves the course needs no network; ``test_offline_namespace_...``
proves that namespace really has no route out.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tools import budgets

pytestmark = pytest.mark.notebooks

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))

# Seconds of cell execution allowed in the quick profile on the reference 2-core CPU, from an
# empty cache: notebooks/budgets.json.
BUDGETS = budgets.read_budgets()
BUDGETS_S = BUDGETS.budget_s
REFERENCE_IMAGES_PER_S = BUDGETS.reference_images_per_s
HEADROOM_S = 45  # extra wall-clock allowance: kernel start, papermill, namespace set-up
EXECUTED_DIR = ROOT / "build" / "executed" / "quick"
CLAIMS_DIR = EXECUTED_DIR / "claims"  # one JSON line per claim (tools.claims_report reads them)
FIGURES_DIR = ROOT / "build" / "figures-test"
CACHE_ROOT = ROOT / "build" / "test-cache"


@pytest.fixture(scope="session")
def budget_scale(machine_speed: float) -> tuple[float, float]:
    """(scale, images/s): budgets are seconds on the reference 2-core CPU; a slower machine,
    measured by the same fixed training workload (best of three), gets proportionally more
    time, up to twice the budget."""
    return budgets.budget_scale(machine_speed), machine_speed


def outputs_containing(notebook: dict, needle: str) -> list[int]:
    """Indices of code cells whose outputs (text or rich) contain ``needle``."""
    found = []
    for index, cell in enumerate(notebook.get("cells", [])):
        for output in cell.get("outputs", []):
            texts = [output.get("text", ""), *output.get("data", {}).values()]
            if any(needle in ("".join(t) if isinstance(t, list) else str(t)) for t in texts):
                found.append(index)
                break
    return found


def notebook_seed() -> int:
    """The seed notebooks run with: ``TL_NOTEBOOK_SEED`` (default 0)."""
    value = os.environ.get("TL_NOTEBOOK_SEED", "0")
    try:
        seed = int(value)
    except ValueError:
        seed = -1
    if seed < 0:
        pytest.fail(
            f"TL_NOTEBOOK_SEED={value!r} must be a non-negative integer, "
            "e.g. TL_NOTEBOOK_SEED=1 make test."
        )
    return seed


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_within_budget(
    notebook: Path, runner: ModuleType, notebook_log: list, budget_scale: tuple[float, float]
) -> None:
    name = notebook.stem
    if name not in BUDGETS_S:
        pytest.fail(
            f"{notebook.name} has no time budget; add {name!r}: {{\"budget_s\": <seconds>, "
            f"\"measured_quick_s\": <seconds>}} to notebooks/budgets.json (quick profile, 2-core "
            f"CPU, empty cache), then run `make notebook-times`. "
            f"Budgets so far: {BUDGETS_S}"
        )
    scale, speed = budget_scale
    budget = BUDGETS_S[name] * scale
    speed_note = (
        f"budget {BUDGETS_S[name]} s on the reference CPU × {scale:.2f} for this machine "
        f"({speed:.0f} vs {REFERENCE_IMAGES_PER_S:.0f} training images/s)"
    )
    cache = CACHE_ROOT / name
    shutil.rmtree(cache, ignore_errors=True)  # time the worst case: nothing cached
    claims_log = CLAIMS_DIR / f"{name}.jsonl"
    claims_log.parent.mkdir(parents=True, exist_ok=True)
    claims_log.unlink(missing_ok=True)
    run = runner.run_notebook(
        notebook,
        profile="quick",
        seed=notebook_seed(),
        output_dir=EXECUTED_DIR,
        figures_dir=FIGURES_DIR,
        cache_dir=cache,
        offline="auto",
        timeout_s=budget + HEADROOM_S + 60,
        extra_env={"MPLBACKEND": "Agg", "TL_CLAIMS_LOG": str(claims_log)},
    )
    runner.update_timings_json(EXECUTED_DIR / "timings.json", run)
    print(run.timing_table())  # shown with -s, or with the failure report
    notebook_log.append(
        f"{run.summary()}; {speed_note} (+{HEADROOM_S} s wall headroom)"
        + ("" if run.offline else " [not proven offline: unshare -n unavailable]")
    )

    slowest = run.timing_table(top=5)
    if not run.ok:
        pytest.fail(
            f"{notebook.name} failed: {run.error}\n"
            f"executed copy: {run.output}\n{slowest}\n"
            f"--- papermill log (tail) ---\n{run.log_tail}",
            pytrace=False,
        )
    echoed = outputs_containing(json.loads(run.output.read_text(encoding="utf-8")), "Claim(")
    if echoed:
        pytest.fail(
            f"{notebook.name}: code cells {echoed} show a Claim(...) repr in their output; a "
            "claim prints its own line, so do not print or display the returned Claim.",
            pytrace=False,
        )
    if run.execution_s > budget:
        pytest.fail(
            f"{notebook.name} took {run.execution_s:.1f} s in cells, over its {budget:.0f} s "
            f"budget: {speed_note} (quick profile, empty cache). Slowest cells:\n{slowest}",
            pytrace=False,
        )
    if run.wall_s > budget + HEADROOM_S:
        pytest.fail(
            f"{notebook.name} took {run.wall_s:.1f} s wall time, over {budget:.0f} + "
            f"{HEADROOM_S} s "
            f"(cells {run.execution_s:.1f} s; kernel start and papermill took the rest).",
            pytrace=False,
        )


def test_budget_scale_is_bounded() -> None:
    reference = REFERENCE_IMAGES_PER_S
    assert budgets.budget_scale(2 * reference) == 1.0  # a faster machine keeps the budget
    assert budgets.budget_scale(reference / 1.5) == pytest.approx(1.5)
    assert budgets.budget_scale(reference / 10) == 2.0  # far too slow: capped, budgets fail
    with pytest.raises(ValueError, match="images_per_s=0"):
        budgets.budget_scale(0)


def test_echoed_claims_are_found_in_outputs() -> None:
    notebook = {"cells": [
        {"cell_type": "code", "outputs": [{"output_type": "stream", "text": ["✓ a > b: 2 vs 1"]}]},
        {"cell_type": "code", "outputs": [{"output_type": "execute_result",
                                           "data": {"text/plain": "Claim(statement='a > b')"}}]},
    ]}
    assert outputs_containing(notebook, "Claim(") == [1]


def test_runner_profiles_match_the_package(runner: ModuleType) -> None:
    from tlhelpers.settings import PROFILES

    assert set(runner.PROFILES) == set(PROFILES), (
        f"tools.run_notebooks offers profiles {runner.PROFILES} but tlhelpers.settings has "
        f"{sorted(PROFILES)}; update PROFILES in tools/run_notebooks.py."
    )


_PROBE = """
import errno, socket
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
client = socket.create_connection(server.getsockname(), timeout=5)
print("loopback ok")
outside = socket.socket()
outside.settimeout(5)
try:
    outside.connect(("1.1.1.1", 53))
except OSError as error:
    print("outside", error.errno)
else:
    print("outside connected")
"""


def test_offline_namespace_has_no_route_out(runner: ModuleType) -> None:
    if not runner.offline_supported():
        pytest.skip(
            "unshare -n is not permitted here (needs root, util-linux unshare and iproute2 ip); "
            "notebooks ran with the network available"
        )
    proc = subprocess.run(
        [*runner.offline_prefix(), sys.executable, "-c", _PROBE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split()
    assert "loopback ok" in proc.stdout, f"loopback is not up in the namespace: {proc.stdout}"
    assert lines[-2:] == ["outside", str(errno.ENETUNREACH)], (
        f"inside `unshare -n` a connection to 1.1.1.1:53 should fail with 'network unreachable' "
        f"(errno {errno.ENETUNREACH}); got: {proc.stdout!r}"
    )
