"""Shared test set-up: headless matplotlib, course folders in temporary directories, the
notebook runner from ``tools/``, and a summary of notebook runs at the end of the session."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
_NOTEBOOK_RUNS = pytest.StashKey[list]()


def pytest_configure(config: pytest.Config) -> None:
    """Draw figures without a display, in every test and in every subprocess tests start."""
    os.environ["MPLBACKEND"] = "Agg"
    config.stash[_NOTEBOOK_RUNS] = []


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
    """``tools/run_notebooks.py`` as a module (it is a script, not part of the package)."""
    path = ROOT / "tools" / "run_notebooks.py"
    spec = importlib.util.spec_from_file_location("run_notebooks", path)
    assert spec is not None and spec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def notebook_log(request: pytest.FixtureRequest) -> list:
    """Notebook runs of this session, summarised after the test results."""
    return request.config.stash[_NOTEBOOK_RUNS]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config
) -> None:
    """After the results: one line per notebook run (time, budget, offline or not)."""
    runs = config.stash.get(_NOTEBOOK_RUNS, [])
    if not runs:
        return
    terminalreporter.section("notebook timings (quick profile)")
    for line in runs:
        terminalreporter.write_line(line)
