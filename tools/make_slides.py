"""Build one reveal.js slide deck per notebook, and an index page, for talks: ``make slides``.

A deck shows the cells its notebook marks as slides (``slideshow.slide_type``, written by
``make mark-slides``): each section's heading and prose, then each figure on a slide of its
own; the other prose becomes speaker notes (press S) and code is not shown. Figure slides show
the files ``make figures`` saved (``slides/figures/NN-name.png``, embedded in the deck), so the
decks carry the figures of the profile and seed the figures were last made with; a missing
figure stops the build and names the command that makes it.

Decks open offline from disk: reveal.js and MathJax are copied from ``node_modules/`` (pinned in
``package.json`` and ``package-lock.json``, installed by ``make js``) into the output folder,
and every deck is checked for references to anything outside it; an http(s) resource stops the
build. Output: ``build/slides/NN_name.html``, ``index.html``, ``reveal.js/``, ``mathjax/``.
"""

from __future__ import annotations

import argparse
import base64
import copy
import html
import json
import re
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import nbformat

from tlhelpers.files import atomic_write
from tools import mark_slides
from tools.notebooks import ROOT, SAVE_FIGURE_CALL, find_notebooks, shown_path

__all__ = [
    "Deck",
    "Slide",
    "build_deck",
    "build_decks",
    "copy_assets",
    "deck_notebook",
    "main",
    "remote_references",
    "slides_of",
]

DEFAULT_OUT = ROOT / "build" / "slides"
DEFAULT_FIGURES = ROOT / "slides" / "figures"
NODE_MODULES = ROOT / "node_modules"
TEMPLATE_DIR = Path(__file__).resolve().parent / "slides_template"
TEMPLATE = "course_reveal"
REVEAL_DIR, MATHJAX_DIR = "reveal.js", "mathjax"
MATHJAX_SCRIPT = f"{MATHJAX_DIR}/es5/tex-svg.js"
# What a deck loads, relative to each package in node_modules (folders are copied whole).
ASSETS = {
    REVEAL_DIR: (
        "LICENSE",
        "dist/reveal.css",
        "dist/reveal.js",
        "dist/theme/white.css",
        "dist/theme/fonts/source-sans-pro",
        "plugin/notes/notes.js",
    ),
    MATHJAX_DIR: (
        "LICENSE",
        "es5/tex-svg.js",
        "es5/input/tex/extensions",
        "es5/ui",
        "es5/a11y",
    ),
}
REMOTE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])\s*((?:https?:)?//[^'")\s]+)""", re.I)
CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True)
class Slide:
    """One slide of a rendered deck, addressed as reveal.js does: ``#/h/v``."""

    h: int
    v: int
    images: int  # <img> elements on the slide
    heading: str  # first heading's text, or ""


@dataclass(frozen=True)
class Deck:
    """A deck written by :func:`build_deck`."""

    notebook: str  # stem
    title: str
    path: Path
    slides: tuple[Slide, ...]
    figures: tuple[str, ...]  # figure names shown
    missing: tuple[str, ...] = ()  # figure names without a file (placeholders shown)
    unmarked: int = 0  # cells without slide metadata, given the default rules for this build


class _Scanner(HTMLParser):
    """Collects external resource references and the reveal.js slide structure of a page."""

    FETCHED = frozenset({"src", "href", "poster", "data", "srcset", "background"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.remote: list[str] = []
        self.slides: list[dict] = []
        self._depth = 0  # <section> nesting inside .slides
        self._h = -1
        self._v = -1
        self._stack: list[str] = []
        self._heading: list[str] | None = None
        self._notes = 0  # inside <aside class="notes">: speaker notes, not the slide

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name, value in attrs:
            if name not in self.FETCHED or not value or tag == "a":
                continue
            if any(REMOTE.match(part) for part in value.split(",")):
                self.remote.append(f"<{tag} {name}={value!r}>")
        if "style" in values and values["style"] and CSS_URL.search(values["style"]):
            self.remote.append(f"<{tag} style={values['style']!r}>")
        self._stack.append(tag)
        if tag == "section":
            self._depth += 1
            if self._depth == 1:
                self._h, self._v = self._h + 1, -1
            else:
                self._v += 1
                self.slides.append({"h": self._h, "v": self._v, "images": 0, "heading": ""})
        elif tag == "img" and self.slides and self._depth >= 2:
            self.slides[-1]["images"] += 1
        elif tag == "aside":
            self._notes += 1
        elif tag in ("h1", "h2", "h3") and self.slides and not self._notes:
            self._heading = [] if not self.slides[-1]["heading"] else None

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._depth -= 1
        elif tag == "aside":
            self._notes -= 1
        elif tag in ("h1", "h2", "h3") and self._heading is not None:
            text = "".join(self._heading).replace("¶", "")  # nbconvert's anchor links
            self.slides[-1]["heading"] = " ".join(text.split())
            self._heading = None
        if self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)
        if self._stack and self._stack[-1] == "style":
            self.remote += [f"CSS {u}" for u in CSS_URL.findall(CSS_COMMENT.sub("", data))]
        elif self._stack and self._stack[-1] == "script":
            code = re.sub(r"^\s*//.*$", "", data, flags=re.MULTILINE)
            self.remote += [f"script {u}" for u in re.findall(r"https?://[^\s'\"]+", code)]


def remote_references(page: str) -> list[str]:
    """Every resource ``page`` (HTML) would fetch from another host; links (``<a>``) excepted."""
    scanner = _Scanner()
    scanner.feed(page)
    return scanner.remote


def slides_of(page: str) -> list[Slide]:
    """The slides of a rendered reveal.js deck, in order, with their ``#/h/v`` address."""
    scanner = _Scanner()
    scanner.feed(page)
    return [Slide(**s) for s in scanner.slides]


def copy_assets(out: Path, node_modules: Path = NODE_MODULES) -> list[Path]:
    """Copy the reveal.js and MathJax files decks load into ``out``; return what was copied.

    Checks that no copied stylesheet imports anything from another host.
    """
    copied = []
    for package, files in ASSETS.items():
        source_root = Path(node_modules) / package
        if not (source_root / "package.json").exists():
            raise FileNotFoundError(
                f"{source_root} is missing; install the pinned JavaScript assets with `make js` "
                "(npm ci, needs the npm registry once)."
            )
        for relative in files:
            source, target = source_root / relative, Path(out) / package / relative
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            elif source.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
            else:
                raise FileNotFoundError(
                    f"{source} is missing from the installed {package}; reinstall with "
                    "`rm -rf node_modules && make js`."
                )
            copied.append(target)
    for css in (Path(out) / REVEAL_DIR).rglob("*.css"):
        found = CSS_URL.findall(CSS_COMMENT.sub("", css.read_text(encoding="utf-8")))
        if found:
            raise RuntimeError(f"{css} loads {found}; decks must not fetch from other hosts.")
    return copied


def _title(notebook: nbformat.NotebookNode, fallback: str) -> str:
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return fallback


def _figure_output(name: str, png: Path) -> nbformat.NotebookNode:
    data = {"image/png": base64.b64encode(png.read_bytes()).decode("ascii"), "text/plain": name}
    return nbformat.v4.new_output("display_data", data=data, metadata={})


def deck_notebook(
    notebook: nbformat.NotebookNode, figures_dir: Path, *, allow_missing: bool = False
) -> tuple[nbformat.NotebookNode, list[str], list[str]]:
    """The notebook a deck renders: figure cells show their saved figures, nothing else runs.

    Cells without slide metadata get the default rules of :mod:`tools.mark_slides`. Returns
    ``(notebook, figures shown, figures missing)``; a missing figure raises unless
    ``allow_missing``, which shows a placeholder line instead.
    """
    deck = copy.deepcopy(notebook)
    shown, missing = [], []
    for cell in deck.cells:
        slideshow = cell.metadata.setdefault("slideshow", {})
        slideshow.setdefault("slide_type", mark_slides.slide_type(cell))
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        if slideshow["slide_type"] in ("skip", "notes"):
            continue
        for match in SAVE_FIGURE_CALL.finditer(cell.source):
            name = match.group(2)
            png = Path(figures_dir) / f"{name}.png"
            if png.exists():
                cell.outputs.append(_figure_output(name, png))
                shown.append(name)
            else:
                missing.append(name)
                text = f"[figure {name} not generated yet: run `make figures`]\n"
                cell.outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text))
    if missing and not allow_missing:
        raise FileNotFoundError(
            f"figures {missing} are not in {figures_dir}; run `make figures` (or "
            "`make figures PROFILE=full`) first, or pass --allow-missing-figures for a preview."
        )
    return deck, shown, missing


def _exporter() -> object:
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    config = Config()
    config.SlidesExporter.reveal_url_prefix = REVEAL_DIR
    config.SlidesExporter.reveal_theme = "white"
    config.SlidesExporter.reveal_transition = "none"
    config.SlidesExporter.reveal_width = "1280"
    config.SlidesExporter.reveal_height = "720"
    config.TemplateExporter.exclude_input = True
    config.TemplateExporter.exclude_input_prompt = True
    config.TemplateExporter.exclude_output_prompt = True
    return SlidesExporter(
        config=config, template_name=TEMPLATE, extra_template_basedirs=[str(TEMPLATE_DIR)]
    )


def _figures_made_with(figures_dir: Path) -> str:
    """``"quick profile, seed 0"`` from the figures' index.json, or "" if unknown."""
    try:
        figures = json.loads((figures_dir / "index.json").read_text(encoding="utf-8"))["figures"]
    except (FileNotFoundError, KeyError, json.JSONDecodeError):
        return ""
    runs = sorted({(str(f.get("profile")), str(f.get("seed"))) for f in figures.values()})
    return "; ".join(f"{profile} profile, seed {seed}" for profile, seed in runs)


def build_deck(
    path: Path, out: Path, figures_dir: Path = DEFAULT_FIGURES, *, allow_missing: bool = False
) -> Deck:
    """Render notebook ``path`` as ``out/<stem>.html``; assets must already be in ``out``."""
    path, out = Path(path), Path(out)
    notebook = nbformat.read(path, as_version=4)
    unmarked = sum("slide_type" not in c.metadata.get("slideshow", {}) for c in notebook.cells)
    deck, shown, missing = deck_notebook(notebook, figures_dir, allow_missing=allow_missing)
    title = _title(notebook, path.stem)
    made_with = _figures_made_with(Path(figures_dir))
    footer = f"Transfer Learning, hands-on · {path.stem}" + (
        f" · figures: {made_with}" if made_with else ""
    )
    resources = {
        "metadata": {"name": title},
        "course": {"mathjax": MATHJAX_SCRIPT, "footer": footer},
    }
    page, _ = _exporter().from_notebook_node(deck, resources=resources)
    remote = remote_references(page)
    if remote:
        raise RuntimeError(
            f"the deck for {path.name} would fetch from other hosts: {remote[:5]}; decks must "
            "work offline (see tools/slides_template/)."
        )
    target = out / f"{path.stem}.html"
    atomic_write(target, lambda handle: handle.write(page.encode("utf-8")))
    return Deck(
        notebook=path.stem,
        title=title,
        path=target,
        slides=tuple(slides_of(page)),
        figures=tuple(shown),
        missing=tuple(missing),
        unmarked=unmarked,
    )


_INDEX = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Transfer Learning, hands-on: slide decks</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; color: #222; }}
td, th {{ padding: 0.3rem 0.8rem; text-align: left; border-bottom: 1px solid #ddd; }}
</style>
</head>
<body>
<h1>Transfer Learning, hands-on: slide decks</h1>
<p>One deck per notebook, built by <code>make slides</code>. Open a deck, press <kbd>S</kbd> for
speaker notes, <kbd>Esc</kbd> for an overview. Everything loads from this folder: no network
needed. {made_with}</p>
<table>
<tr><th>deck</th><th>notebook</th><th>slides</th><th>figures</th></tr>
{rows}
</table>
</body>
</html>
"""


def write_index(out: Path, decks: Sequence[Deck], figures_dir: Path) -> Path:
    """Write ``out/index.html`` linking every deck (relative links)."""
    rows = [
        f'<tr><td><a href="{html.escape(d.path.name)}">{html.escape(d.title)}</a></td>'
        f"<td><code>{html.escape(d.notebook)}</code></td><td>{len(d.slides)}</td>"
        f"<td>{len(d.figures)}{f' ({len(d.missing)} missing)' if d.missing else ''}</td></tr>"
        for d in decks
    ]
    made_with = _figures_made_with(Path(figures_dir))
    text = _INDEX.format(
        rows="\n".join(rows),
        made_with=f"Figures: {html.escape(made_with)}." if made_with else "",
    )
    return atomic_write(Path(out) / "index.html", lambda handle: handle.write(text.encode()))


def build_decks(
    names: Sequence[str] = (),
    out: Path = DEFAULT_OUT,
    figures_dir: Path = DEFAULT_FIGURES,
    *,
    allow_missing: bool = False,
    node_modules: Path = NODE_MODULES,
) -> list[Deck]:
    """Copy the assets, build a deck per notebook (default: all), write the index page."""
    paths = find_notebooks(names)
    out = Path(out)
    copy_assets(out, node_modules)
    decks = [build_deck(path, out, figures_dir, allow_missing=allow_missing) for path in paths]
    write_index(out, decks, figures_dir)
    return decks


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="stems or paths (default: every NN_*.ipynb)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder to write to")
    parser.add_argument(
        "--figures-dir", type=Path, default=DEFAULT_FIGURES, help="where make figures wrote"
    )
    parser.add_argument(
        "--allow-missing-figures",
        action="store_true",
        help="build anyway, with a placeholder line for each missing figure",
    )
    args = parser.parse_args(argv)
    try:
        decks = build_decks(
            args.notebooks, args.out, args.figures_dir, allow_missing=args.allow_missing_figures
        )
    except (FileNotFoundError, RuntimeError, ValueError) as error:
        print(f"make slides: {error}", file=sys.stderr)
        return 1
    for deck in decks:
        print(f"{shown_path(deck.path)}: {len(deck.slides)} slides, {len(deck.figures)} figures")
        if deck.missing:
            print(f"  placeholders for missing figures: {', '.join(deck.missing)}")
        if deck.unmarked:
            print(
                f"  {deck.unmarked} cells of notebooks/{deck.notebook}.ipynb have no slide "
                "metadata; marked by the default rules for now: run `make mark-slides`"
            )
    print(f"open {Path(args.out) / 'index.html'} in a browser (works offline)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
