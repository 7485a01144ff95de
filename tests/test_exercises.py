"""Student versions of the notebooks (``make exercises``): solutions become prompts, and each
student notebook runs, offline where possible, up to and including its first exercise."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="module")
def exercises(tool: Callable[[str], ModuleType]) -> ModuleType:
    """``tools/make_exercises.py`` as a module."""
    return tool("make_exercises")


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_every_solution_becomes_a_prompt(exercises: ModuleType, tmp_path: Path) -> None:
    written = exercises.write_exercises(out=tmp_path)
    assert [p.name for p in written] == [p.name for p in NOTEBOOKS]
    for original_path, student_path in zip(NOTEBOOKS, written, strict=True):
        original = nbformat.read(original_path, as_version=4)
        student = nbformat.read(student_path, as_version=4)
        nbformat.validate(student)
        assert len(student.cells) == len(original.cells)
        solutions = [c for c in original.cells if "solution" in _tags(c)]
        prompts = [c for c in student.cells if "exercise" in _tags(c)]
        assert solutions, f"{original_path.name} has no solution cells"
        assert len(prompts) == len(solutions)
        assert not [c for c in student.cells if "solution" in _tags(c)]
        for before, after in zip(original.cells, student.cells, strict=True):
            if "solution" in _tags(before):
                assert after.cell_type == before.cell_type
                assert after.source.startswith(("# Exercise ", "**Exercise "))
                assert before.source not in after.source
            else:
                assert after.source == before.source
            if after.cell_type == "code":
                assert after.outputs == []


def test_prompt_names_the_task(exercises: ModuleType) -> None:
    solution = nbformat.v4.new_code_cell("# Solution 2: probe each stage, k=5.\nx = 1")
    prompt = exercises.prompt_cell(solution, 2)
    assert prompt.source.splitlines()[0] == "# Exercise 2: probe each stage, k=5."
    assert "x = 1" not in prompt.source
    assert _tags(prompt) == ["exercise"]


def test_unknown_notebook_names_the_choices(exercises: ModuleType, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown notebook"):
        exercises.write_exercises(["99_nothing"], out=tmp_path)


@pytest.mark.notebooks
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_version_runs_up_to_the_first_exercise(
    notebook: Path, exercises: ModuleType, runner: ModuleType, tmp_path: Path
) -> None:
    student, _ = exercises.student_version(nbformat.read(notebook, as_version=4))
    first = next(i for i, c in enumerate(student.cells) if "exercise" in _tags(c))
    student.cells = student.cells[: first + 1]
    path = tmp_path / notebook.name
    nbformat.write(student, path)
    cache = ROOT / "build" / "test-cache" / notebook.stem  # reuse the worlds the notebook test made
    run = runner.run_notebook(
        path,
        profile="quick",
        seed=0,
        output_dir=tmp_path / "executed",
        figures_dir=tmp_path / "figures",
        cache_dir=cache,
        offline="auto",
        timeout_s=600,
        extra_env={"MPLBACKEND": "Agg"},
    )
    assert run.ok, f"student version of {notebook.name} failed: {run.error}\n{run.log_tail}"
