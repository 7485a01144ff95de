"""Mark which notebook cells become slides: the ``slideshow.slide_type`` metadata ``make slides``
reads (Jupyter's own slide metadata, also shown in JupyterLab's property inspector).

``make mark-slides`` runs this on every ``notebooks/NN_*.ipynb``. The slide type of a cell is a
pure function of its type, source and tags, so running the tool again changes nothing:

=========================================================  =============
cell                                                       slide type
=========================================================  =============
markdown with a ``#`` or ``##`` heading                    ``slide``
markdown whose largest heading is ``###`` or smaller       ``subslide``
code that saves a course figure (``save_figure("NN-…")``)  ``subslide``
any other markdown                                         ``notes``
any other code cell, and every cell tagged ``solution``    ``skip``
=========================================================  =============

So a deck shows each section's heading and prose, then each figure on a slide of its own below
its section; the prose between them becomes speaker notes (press S in the deck). Only metadata
changes: sources, outputs and every other metadata key are kept, and a notebook is rewritten
(atomically) only when a slide type differs. ``--check`` changes nothing and exits 1 when a
notebook is not marked yet, naming it.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat

from tlhelpers.files import atomic_write
from tools.notebooks import SAVE_FIGURE_CALL, cell_source, cell_tags, find_notebooks, shown_path

__all__ = [
    "SLIDE_TYPES",
    "heading_level",
    "main",
    "mark_notebook",
    "mark_paths",
    "slide_type",
]

SLIDE_TYPES = ("slide", "subslide", "fragment", "-", "skip", "notes")  # Jupyter's choices
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+\S")
FENCE = re.compile(r"^ {0,3}(```|~~~)")


def heading_level(markdown: str) -> int | None:
    """The level of the largest heading in ``markdown`` (1 for ``#``), ignoring code blocks."""
    levels, in_fence = [], False
    for line in markdown.splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match:
            levels.append(len(match.group(1)))
    return min(levels) if levels else None


def slide_type(cell: nbformat.NotebookNode) -> str:
    """The slide type the course's rules give ``cell`` (see the module docstring)."""
    if "solution" in cell_tags(cell):
        return "skip"
    source = cell_source(cell)
    if cell.get("cell_type") == "markdown":
        level = heading_level(source)
        if level is None:
            return "notes"
        return "slide" if level <= 2 else "subslide"
    if cell.get("cell_type") == "code" and SAVE_FIGURE_CALL.search(source):
        return "subslide"
    return "skip"


def mark_notebook(notebook: nbformat.NotebookNode) -> int:
    """Set every cell's ``metadata.slideshow.slide_type`` in place; return how many changed."""
    changed = 0
    for cell in notebook.cells:
        wanted = slide_type(cell)
        slideshow = cell.metadata.setdefault("slideshow", {})
        if slideshow.get("slide_type") != wanted:
            slideshow["slide_type"] = wanted
            changed += 1
    return changed


def mark_paths(paths: Sequence[Path], *, check: bool = False) -> dict[Path, int]:
    """Mark each notebook file (or with ``check``, only count); return cells changed per file."""
    changes = {}
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        changed = mark_notebook(notebook)
        changes[Path(path)] = changed
        if changed and not check:
            text = nbformat.writes(notebook) + "\n"
            atomic_write(path, lambda handle, text=text: handle.write(text.encode("utf-8")))
    return changes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="stems or paths (default: every NN_*.ipynb)")
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a notebook needs marking"
    )
    args = parser.parse_args(argv)
    try:
        paths = find_notebooks(args.notebooks)
    except ValueError as error:
        parser.error(str(error))
    changes = mark_paths(paths, check=args.check)
    stale = [path for path, changed in changes.items() if changed]
    for path, changed in changes.items():
        shown = shown_path(path)
        verb = "would change" if args.check else "changed"
        print(f"{shown}: {f'{changed} cell(s) {verb}' if changed else 'up to date'}")
    if args.check and stale:
        print(
            f"{len(stale)} notebook(s) lack slide metadata; run `make mark-slides` "
            "(python -m tools.mark_slides) and commit the notebooks.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
