"""Reading the course notebooks the way every tool and test does: which files are course
notebooks (``NN_name.ipynb``), a cell's source and tags, and the ``save_figure("NN-name")``
calls in code cells.

Notebooks are read as plain JSON (``read_notebook``) or with nbformat; the helpers take either,
since both are mappings with the same keys.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "NOTEBOOK_DIR",
    "NOTEBOOK_NAME",
    "ROOT",
    "SAVE_FIGURE_CALL",
    "cell_source",
    "cell_tags",
    "find_notebooks",
    "first_line",
    "is_figure_name",
    "read_notebook",
    "shown_path",
]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
# A course notebook: two digits, an underscore, lowercase words joined by underscores.
NOTEBOOK_NAME = re.compile(r"(\d{2})_[a-z0-9]+(?:_[a-z0-9]+)*\.ipynb", re.ASCII)
# save_figure("NN-name") or save_figure(name="NN-name"): group 2 is the literal name.
SAVE_FIGURE_CALL = re.compile(r"save_figure\(\s*(?:name\s*=\s*)?([\"'])(.*?)\1")


def read_notebook(path: Path) -> dict[str, Any]:
    """The notebook at ``path`` as parsed JSON."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def cell_source(cell: Mapping[str, Any]) -> str:
    """A cell's source as one string (the .ipynb format may store it as a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def cell_tags(cell: Mapping[str, Any]) -> list[str]:
    """A cell's ``metadata.tags`` (empty if it has none)."""
    return list(cell.get("metadata", {}).get("tags", []))


def first_line(source: str) -> str:
    """The first non-blank line of ``source``, stripped ("" if there is none)."""
    return next((line.strip() for line in source.splitlines() if line.strip()), "")


def is_figure_name(name: str) -> bool:
    """Whether ``name`` is a course figure name (``01-learning-curves``), by the rule
    :func:`tlhelpers.plots.save_figure` enforces (imported only when a name is checked)."""
    from tlhelpers.plots import FIGURE_NAME_PATTERN

    return bool(FIGURE_NAME_PATTERN.fullmatch(name))


def _course_notebooks(directory: Path) -> list[Path]:
    return sorted(p for p in Path(directory).glob("*.ipynb") if NOTEBOOK_NAME.fullmatch(p.name))


def _find_one(name: str, by_stem: Mapping[str, Path], directory: Path) -> Path:
    path = Path(name)
    if path.suffix == ".ipynb" and path.exists():
        return path.resolve()
    matches = [p for stem, p in by_stem.items() if path.stem in (stem, stem[:2])]
    if len(matches) == 1:
        return matches[0]
    valid = ", ".join(by_stem) or "(none found)"
    raise ValueError(
        f"unknown notebook {name!r}: not a course notebook in {directory}; valid choices: "
        f"{valid} (a stem, a file name, a path or the two-digit number, e.g. 03)."
    )


def find_notebooks(names: Sequence[str] = (), directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The course notebooks in ``directory`` in order, or those named: by stem
    (``03_fine_tuning``), file name, path or number (``03``). An unknown name raises a
    ValueError that lists the valid choices."""
    every = _course_notebooks(directory)
    if not names:
        return every
    by_stem = {p.stem: p for p in every}
    return [_find_one(name, by_stem, Path(directory)) for name in names]


def shown_path(path: Path) -> Path:
    """``path`` relative to the repository root when it is inside it, for messages."""
    path = Path(path)
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
