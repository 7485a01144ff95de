"""Write student versions of the course notebooks: every `solution` cell becomes a prompt.

``make exercises`` runs this. For each ``notebooks/NN_*.ipynb`` it writes
``build/exercises/NN_*.ipynb`` (or ``--out``) where each cell tagged ``solution`` is replaced
by a cell tagged ``exercise`` holding only a short prompt (prose answers get a prose prompt),
so learners write their own answer. Everything else (prose, parameters, experiments, claims)
is kept, outputs cleared.
Files are written to a temporary name and renamed, so a half-written notebook never appears.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import nbformat

from tlhelpers.files import atomic_write
from tools.notebooks import ROOT, cell_tags, find_notebooks, shown_path

__all__ = ["main", "prompt_cell", "student_version", "write_exercises"]

DEFAULT_OUT = ROOT / "build" / "exercises"
SOLUTION_TAG, EXERCISE_TAG = "solution", "exercise"


def _first_comment(source: str) -> str:
    """The solution's first comment line without '#', e.g. 'Solution 1: probe stage 2 ...'."""
    for line in source.splitlines():
        if line.strip().startswith("#"):
            return line.strip().lstrip("#").strip()
    return ""


def prompt_cell(solution: nbformat.NotebookNode, number: int) -> nbformat.NotebookNode:
    """The cell a learner sees instead of solution ``number`` (code or prose, like the solution)."""
    if solution.cell_type == "markdown":
        cell = nbformat.v4.new_markdown_cell(
            f"**Exercise {number}: your answer.** Write it here, then compare with the course's "
            "answer in the same notebook under `notebooks/`."
        )
        cell.metadata["tags"] = [EXERCISE_TAG]
        return cell
    title = _first_comment(solution.source)
    task = title.split(":", 1)[1].strip() if ":" in title else title
    lines = [f"# Exercise {number}" + (f": {task}" if task else "")]
    lines += [
        "# Write your answer here. The variables and helpers defined above are available;",
        "# the course's solution is in the same notebook under notebooks/.",
        "",
    ]
    cell = nbformat.v4.new_code_cell("\n".join(lines))
    cell.metadata["tags"] = [EXERCISE_TAG]
    return cell


def student_version(notebook: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, int]:
    """A copy with solution cells replaced by prompts and outputs cleared; and the count."""
    student = nbformat.v4.new_notebook(metadata=notebook.metadata)
    replaced = 0
    for cell in notebook.cells:
        if SOLUTION_TAG in cell_tags(cell):
            replaced += 1
            student.cells.append(prompt_cell(cell, replaced))
            continue
        copy = nbformat.from_dict(cell)
        if copy.cell_type == "code":
            copy.outputs, copy.execution_count = [], None
        student.cells.append(copy)
    return student, replaced


def write_exercises(names: Sequence[str] = (), out: Path = DEFAULT_OUT) -> list[Path]:
    """Write the student version of each notebook (default: all) to ``out``; return the paths."""
    try:
        paths = find_notebooks(names)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    written = []
    for path in paths:
        student, replaced = student_version(nbformat.read(path, as_version=4))
        target = out / path.name
        text = nbformat.writes(student) + "\n"
        atomic_write(target, lambda handle, text=text: handle.write(text.encode()))
        print(f"{shown_path(target)}: {replaced} exercise(s)")
        written.append(target)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="stems (default: every NN_*.ipynb)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write to")
    args = parser.parse_args(argv)
    write_exercises(args.notebooks, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
