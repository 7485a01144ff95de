"""Which notebook cell saves which course figure; the committed list of figures; the index page.

Figures are found by reading the notebooks' code cells for ``save_figure("NN-name"`` calls with a
literal name, the way a reader finds them. ``slides/figures.json`` (committed) lists every figure
each notebook is expected to save, so a figure that disappears, is renamed or is saved twice
fails a test (``tests/test_figures.py``) and ``make figures``. After the change is deliberate,
``make figures-manifest`` rewrites the list from the notebooks.

``make figures`` (``python -m tools.run_notebooks --figures-dir``) calls
:func:`record_notebook` after each notebook: it checks the notebook's figure files against the
list and merges them into ``index.json`` and ``index.html`` next to the figures: each figure
with its name, notebook, cell (index and first line) and the profile and seed it was made with.
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tlhelpers.files import atomic_write
from tools.notebooks import (
    ROOT,
    SAVE_FIGURE_CALL,
    cell_source,
    cell_tags,
    find_notebooks,
    first_line,
    is_figure_name,
    read_notebook,
    shown_path,
)

__all__ = [
    "MANIFEST",
    "FigureSource",
    "figure_sources",
    "manifest_problems",
    "read_manifest",
    "record_notebook",
    "remove_figures",
    "scan_notebooks",
    "write_index_html",
    "write_manifest",
]

MANIFEST = ROOT / "slides" / "figures.json"
INJECTED_TAG = "injected-parameters"  # the cell papermill adds after the parameters cell
MANIFEST_ABOUT = (
    "Every figure each notebook saves with save_figure(). Tests compare this list with the "
    "notebooks' save_figure calls and make figures compares it with the files written. After a "
    "deliberate change run `make figures-manifest`."
)


@dataclass(frozen=True)
class FigureSource:
    """Where a figure is saved: the notebook and the code cell holding its save_figure call."""

    name: str  # e.g. "01-learning-curves"
    notebook: str  # notebook stem, e.g. "01_pretraining"
    cell: int  # index of the cell in the course notebook (0 = first cell)
    source_head: str  # first non-blank line of that cell
    execution_count: int | None = None  # In [n] of an executed copy


def figure_sources(notebook: Mapping[str, Any], stem: str) -> list[FigureSource]:
    """Every ``save_figure("…")`` call in ``notebook`` (a parsed .ipynb), in cell order.

    Cell indices count the course notebook's cells: papermill's injected parameters cell in an
    executed copy is not counted, so an index means the same cell in both.
    """
    found = []
    index = 0
    for cell in notebook.get("cells", []):
        if INJECTED_TAG in cell_tags(cell):
            continue
        if cell.get("cell_type") == "code":
            source = cell_source(cell)
            for match in SAVE_FIGURE_CALL.finditer(source):
                found.append(
                    FigureSource(
                        name=match.group(2),
                        notebook=stem,
                        cell=index,
                        source_head=first_line(source),
                        execution_count=cell.get("execution_count"),
                    )
                )
        index += 1
    return found


def scan_notebooks(paths: Iterable[Path]) -> dict[str, list[FigureSource]]:
    """``{notebook stem: its figure sources}`` for each notebook file."""
    return {Path(p).stem: figure_sources(read_notebook(p), Path(p).stem) for p in paths}


def read_manifest(path: Path = MANIFEST) -> dict[str, list[str]]:
    """The committed list: ``{notebook stem: [figure names]}``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} is missing; create it from the notebooks with `make figures-manifest`."
        ) from None
    notebooks = data.get("notebooks") if isinstance(data, dict) else None
    if not isinstance(notebooks, dict) or not all(
        isinstance(v, list) and all(isinstance(n, str) for n in v) for v in notebooks.values()
    ):
        raise ValueError(
            f'{path} should hold {{"notebooks": {{"01_pretraining": ["01-…", …], …}}}}; '
            "rewrite it with `make figures-manifest`."
        )
    return {stem: list(names) for stem, names in notebooks.items()}


def write_manifest(found: Mapping[str, Sequence[FigureSource]], path: Path = MANIFEST) -> Path:
    """Write the list of figures ``found`` in the notebooks, atomically."""
    data = {
        "about": MANIFEST_ABOUT,
        "notebooks": {stem: [f.name for f in found[stem]] for stem in sorted(found)},
    }
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def manifest_problems(
    expected: Mapping[str, Sequence[str]], found: Mapping[str, Sequence[FigureSource]]
) -> list[str]:
    """Differences between the committed list and the notebooks' save_figure calls, in words.

    Checks only the notebooks in ``found``; each problem names the figure, the notebook and
    the fix.
    """
    problems = []
    owner: dict[str, str] = {}
    for stem, sources in found.items():
        for source in sources:
            where = f"notebooks/{stem}.ipynb cell {source.cell}"
            if not is_figure_name(source.name):
                problems.append(
                    f"{where}: figure name {source.name!r} is not like '01-learning-curves'"
                )
            elif source.name[:2] != stem[:2]:
                problems.append(f"{where}: figure {source.name!r} should start with {stem[:2]}-")
            if source.name in owner:
                problems.append(
                    f"{where}: figure {source.name!r} is also saved by {owner[source.name]}; "
                    "give each figure its own name"
                )
            owner.setdefault(source.name, where)
        listed = list(expected.get(stem, []))
        saved = [s.name for s in sources]
        for name in listed:
            if name not in saved:
                problems.append(
                    f"figure {name!r} is listed for {stem} in slides/figures.json but no "
                    f"save_figure call in notebooks/{stem}.ipynb saves it any more; restore it, "
                    "or run `make figures-manifest` if removing it is deliberate"
                )
        for name in dict.fromkeys(saved):
            if name not in listed:
                problems.append(
                    f"figure {name!r} is saved by notebooks/{stem}.ipynb but not listed in "
                    "slides/figures.json; run `make figures-manifest` and commit the list"
                )
    return problems


def remove_figures(directory: Path, stem: str) -> list[Path]:
    """Delete the figure files of notebook ``stem`` (``NN-*.png`` and ``.svg``) before a rerun."""
    removed = []
    for path in sorted(Path(directory).glob(f"{stem[:2]}-*")):
        if path.suffix in (".png", ".svg") and is_figure_name(path.stem):
            path.unlink()
            removed.append(path)
    return removed


def _read_index(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {"figures": {}}
    if not isinstance(data.get("figures"), dict):
        return {"figures": {}}
    return data


def record_notebook(
    figures_dir: Path, executed: Path, expected: Sequence[str] | None = None
) -> list[str]:
    """Merge the figures of one executed notebook into ``figures_dir``'s index; list problems.

    Reads the notebook's papermill parameters (profile, seed) and its save_figure cells, checks
    that every figure file exists and that no other ``NN-*`` file is there (a name built at run
    time, which the index could not attribute), and compares the names with ``expected`` (the
    notebook's entry in slides/figures.json) when given. Rewrites ``index.json`` and
    ``index.html`` atomically.
    """
    figures_dir, executed = Path(figures_dir), Path(executed)
    notebook = read_notebook(executed)
    stem = executed.stem
    parameters = notebook.get("metadata", {}).get("papermill", {}).get("parameters", {})
    sources = figure_sources(notebook, stem)
    problems = []
    if expected is not None:
        problems += manifest_problems({stem: expected}, {stem: sources})
    index_path = figures_dir / "index.json"
    index = _read_index(index_path)
    figures = {k: v for k, v in index["figures"].items() if v.get("notebook") != stem}
    for source in sources:
        png = figures_dir / f"{source.name}.png"
        if not png.exists():
            problems.append(
                f"notebooks/{stem}.ipynb cell {source.cell} should save {png.name} but it was not "
                "written (did the cell run?)"
            )
            continue
        figures[source.name] = {
            **asdict(source),
            "profile": parameters.get("profile"),
            "seed": parameters.get("seed"),
            "png": png.name,
            "svg": f"{source.name}.svg",
            "sha256": hashlib.sha256(png.read_bytes()).hexdigest(),
        }
    named = {s.name for s in sources}
    for path in sorted(figures_dir.glob(f"{stem[:2]}-*.png")):
        if path.stem not in named:
            problems.append(
                f'{path.name} in {figures_dir} is not named by any save_figure("…") call with a '
                f"literal name in notebooks/{stem}.ipynb; use a literal, stable name"
            )
    index["figures"] = dict(sorted(figures.items(), key=lambda kv: (kv[1]["notebook"], kv[0])))
    text = json.dumps(index, indent=2, ensure_ascii=False) + "\n"
    atomic_write(index_path, lambda handle: handle.write(text.encode("utf-8")))
    write_index_html(figures_dir)
    return problems


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Transfer Learning, hands-on: figures</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
main {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 2rem; }}
figure {{ margin: 0; }}
img {{ width: 100%; border: 1px solid #ddd; }}
figcaption {{ font-size: 0.9rem; line-height: 1.4; }}
code {{ background: #f3f3f3; padding: 0 0.2em; }}
</style>
</head>
<body>
<h1>Transfer Learning, hands-on: figures</h1>
<p>{count}, regenerated by <code>make figures</code>; each names the notebook cell that
saved it and the profile and seed it was made with. Figures are CC BY 4.0.</p>
<main>
{items}
</main>
</body>
</html>
"""

_ITEM = """<figure id="{name}">
<a href="{svg}"><img src="{png}" alt="{name}" loading="lazy"></a>
<figcaption><strong><code>{name}</code></strong>
(<a href="{png}">PNG</a>, <a href="{svg}">SVG</a>)<br>
notebook <code>{notebook}</code>, cell {cell}{count}: <code>{head}</code><br>
{profile} profile, seed {seed}</figcaption>
</figure>"""


def write_index_html(figures_dir: Path) -> Path:
    """Render ``index.json`` in ``figures_dir`` as ``index.html`` (relative links only)."""
    figures_dir = Path(figures_dir)
    figures = _read_index(figures_dir / "index.json")["figures"]
    items = []
    for name, entry in figures.items():
        count = entry.get("execution_count")
        items.append(
            _ITEM.format(
                name=html.escape(name),
                png=html.escape(entry["png"]),
                svg=html.escape(entry["svg"]),
                notebook=html.escape(entry["notebook"]),
                cell=int(entry["cell"]),
                count=f" (In [{int(count)}])" if count else "",
                head=html.escape(entry["source_head"]),
                profile=html.escape(str(entry.get("profile"))),
                seed=html.escape(str(entry.get("seed"))),
            )
        )
    count = f"{len(items)} figure" + ("" if len(items) == 1 else "s")
    text = _PAGE.format(count=count, items="\n".join(items))
    return atomic_write(figures_dir / "index.html", lambda h: h.write(text.encode("utf-8")))


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: check the notebooks against slides/figures.json, or rewrite it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--update-manifest", action="store_true", help="rewrite slides/figures.json"
    )
    args = parser.parse_args(argv)
    found = scan_notebooks(find_notebooks())
    if args.update_manifest:
        path = write_manifest(found)
        total = sum(len(v) for v in found.values())
        print(f"{shown_path(path)}: {total} figures from {len(found)} notebooks")
        return 0
    problems = manifest_problems(read_manifest(), found)
    stale = sorted(set(read_manifest()) - set(found))
    problems += [
        f"slides/figures.json lists notebook {stem!r}, which does not exist; run "
        "`make figures-manifest`"
        for stem in stale
    ]
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("slides/figures.json matches the notebooks' save_figure calls")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
