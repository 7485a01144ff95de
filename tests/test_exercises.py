"""Student versions of the notebooks (``make exercises``): solutions become prompts that run no
code, and nothing outside the solutions depends on them, so the student version runs exactly as
the notebook test runs the original (which executes each notebook once per suite)."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from tools import make_exercises as exercises

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def test_every_solution_becomes_a_prompt(tmp_path: Path) -> None:
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


def test_prompt_names_the_task() -> None:
    solution = nbformat.v4.new_code_cell("# Solution 2: probe each stage, k=5.\nx = 1")
    prompt = exercises.prompt_cell(solution, 2)
    assert prompt.source.splitlines()[0] == "# Exercise 2: probe each stage, k=5."
    assert "x = 1" not in prompt.source
    assert _tags(prompt) == ["exercise"]


def test_unknown_notebook_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown notebook"):
        exercises.write_exercises(["99_nothing"], out=tmp_path)


def _defined(code: str) -> set[str]:
    """Names a cell binds: assignments, loop and with targets, functions, classes, imports."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def _used(code: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(code))
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _python(cell: nbformat.NotebookNode) -> str:
    """A code cell's source without IPython magics (``%``, ``!``) so ``ast`` can read it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in cell.source.splitlines())


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_student_version_runs_like_the_notebook_without_its_solutions(
    notebook: Path
) -> None:
    """The student version is the notebook with each solution swapped for a prompt, so it runs
    exactly as the notebook test runs the original, up to the first prompt, provided (1) every
    prompt is code that does nothing and (2) no later cell needs a name only a solution defines.
    Both are checked here without executing the notebook a second time."""
    original = nbformat.read(notebook, as_version=4)
    student, replaced = exercises.student_version(original)
    assert replaced, f"{notebook.name} has no solution cells"
    for cell in student.cells:
        if "exercise" in _tags(cell) and cell.cell_type == "code":
            body = ast.parse(cell.source).body  # a syntax error in a prompt fails here
            assert body == [], f"prompt {cell.source.splitlines()[0]!r} runs code: {body}"
    problems = _cells_needing_solutions(original)
    assert not problems, (
        f"{notebook.name}: cells outside the solutions use names only a solution defines, so "
        f"the student version would fail there: {problems}"
    )


def _cells_needing_solutions(notebook: nbformat.NotebookNode) -> list[tuple[int, list[str]]]:
    """``(cell index, names)`` for each non-solution cell that needs a solution's name."""
    before: set[str] = set()  # names the notebook binds outside its solutions
    only_in_solutions: set[str] = set()
    problems = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        code = _python(cell)
        if "solution" in _tags(cell):
            only_in_solutions |= _defined(code) - before
            continue
        needed = (_used(code) & only_in_solutions) - before
        if needed:
            problems.append((index, sorted(needed)))
        before |= _defined(code)
    return problems


def test_dependency_check_sees_a_cell_that_needs_a_solution() -> None:
    solution = nbformat.v4.new_code_cell("# Solution 1: the probe.\nanswer = 42")
    solution.metadata["tags"] = ["solution"]
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import numpy as np\nfrom a.b import c\nx = np.ones(3)"),
        solution,
        nbformat.v4.new_code_cell("print(x, c)"),  # fine: defined before the solution
        nbformat.v4.new_code_cell("print(answer + 1)"),  # needs the solution
    ])
    assert _cells_needing_solutions(notebook) == [(3, ["answer"])]
