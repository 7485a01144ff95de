"""Slide decks (``make slides``): slide metadata in the notebooks (``tools.mark_slides``),
decks that reference nothing outside their folder (``tools.make_slides``), and a real
browser that opens a deck from disk with no network, shows its figure and fetches nothing."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import nbformat
import numpy as np
import pytest

from tools import make_slides as slides
from tools import mark_slides as marker

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:", "chrome:", "chrome-error:", "devtools:")


def _types(notebook: nbformat.NotebookNode) -> list[str]:
    return [c.metadata.get("slideshow", {}).get("slide_type") for c in notebook.cells]


# --- slide metadata ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (nbformat.v4.new_markdown_cell("# 01 · Title\n\nStory."), "slide"),
        (nbformat.v4.new_markdown_cell("\n## 2. Section"), "slide"),
        (nbformat.v4.new_markdown_cell("### 1b. A detail"), "subslide"),
        (nbformat.v4.new_markdown_cell("Prose after a figure."), "notes"),
        (nbformat.v4.new_markdown_cell("#hashtag is not a heading"), "notes"),
        (nbformat.v4.new_markdown_cell("Prose ends a section.\n\n## 3. The next one"), "slide"),
        (nbformat.v4.new_markdown_cell("Run:\n```bash\n# a shell comment\n```"), "notes"),
        (nbformat.v4.new_code_cell('fig = plot()\nsave_figure("01-curves", fig)'), "subslide"),
        (nbformat.v4.new_code_cell("x = train()"), "skip"),
        (nbformat.v4.new_markdown_cell("## Solution", metadata={"tags": ["solution"]}), "skip"),
        (nbformat.v4.new_code_cell('save_figure("01-x")', metadata={"tags": ["solution"]}), "skip"),
    ],
)
def test_slide_rules(cell: nbformat.NotebookNode, expected: str) -> None:
    assert marker.slide_type(cell) == expected
    assert expected in marker.SLIDE_TYPES


def test_marking_is_idempotent_and_changes_only_metadata(
    tmp_path: Path
) -> None:
    notebook = nbformat.read(NOTEBOOKS[0], as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("slideshow", None)
    code = next(c for c in notebook.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="kept\n")]
    path = tmp_path / NOTEBOOKS[0].name
    nbformat.write(notebook, path)
    before = nbformat.read(path, as_version=4)

    assert marker.mark_paths([path], check=True)[path] == len(notebook.cells)
    assert nbformat.read(path, as_version=4) == before, "--check must not write"
    assert marker.mark_paths([path])[path] == len(notebook.cells)
    once = path.read_bytes()
    assert marker.mark_paths([path])[path] == 0
    assert path.read_bytes() == once, "a second run must not rewrite the file"

    after = nbformat.read(path, as_version=4)
    nbformat.validate(after)
    for old, new in zip(before.cells, after.cells, strict=True):
        assert new.source == old.source
        assert new.get("outputs") == old.get("outputs")
        meta = dict(new.metadata)
        assert meta.pop("slideshow")["slide_type"] in marker.SLIDE_TYPES
        assert meta == dict(old.metadata)
    assert after.metadata == before.metadata


def test_course_notebooks_carry_slide_metadata() -> None:
    changes = marker.mark_paths(NOTEBOOKS, check=True)
    unmarked = [f"{p.name} ({n} cells)" for p, n in changes.items() if n]
    assert not unmarked, (
        f"notebooks without up-to-date slide metadata: {unmarked}; run `make mark-slides` "
        "(python -m tools.mark_slides) and commit the notebooks"
    )
    for path in NOTEBOOKS:
        kinds = _types(nbformat.read(path, as_version=4))
        assert kinds[0] == "slide", f"{path.name}: the title cell should open the deck"
        assert "subslide" in kinds or "save_figure" not in path.read_text(encoding="utf-8")


# --- decks -------------------------------------------------------------------------------------


def test_remote_references_finds_fetches_but_not_links() -> None:
    page = """<html><head>
    <script src="https://cdnjs.cloudflare.com/require.js"></script>
    <link rel="stylesheet" href="//fonts.example/x.css">
    <style>/* https://in.a/comment */ @import url(https://fonts.googleapis.com/css);</style>
    <script>// https://only.a/comment
    load("http://cdn.example/mathjax.js")</script>
    </head><body>
    <a href="https://arxiv.org/abs/1411.1792">a reference</a>
    <img src="data:image/png;base64,AAAA"><img src="reveal.js/x.png">
    </body></html>"""
    found = slides.remote_references(page)
    assert len(found) == 4, found
    assert not any("arxiv" in f or "comment" in f for f in found)


def test_slides_of_gives_reveal_addresses() -> None:
    page = (
        '<div class="slides"><section><section><h1>Title</h1></section>'
        '<section><img src="data:,"></section></section>'
        "<section><section><h2>Two</h2></section></section></div>"
    )
    got = [(s.h, s.v, s.images, s.heading) for s in slides.slides_of(page)]
    assert got == [(0, 0, 0, "Title"), (0, 1, 1, ""), (1, 0, 0, "Two")]


def _demo_notebook() -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("# 07 · A demo deck\n\nWhy it matters, with $x^2$."),
        nbformat.v4.new_code_cell('profile = "quick"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_markdown_cell("## 1. The experiment"),
        nbformat.v4.new_code_cell('secret_code = 1\nsave_figure("07-demo", fig)'),
        nbformat.v4.new_markdown_cell("What the figure shows, for the speaker."),
    ]
    marker.mark_notebook(notebook)
    return notebook


def _demo_figure(directory: Path) -> None:
    import matplotlib.pyplot as plt

    from tlhelpers.plots import save_figure

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0, 1, 4])
    save_figure("07-demo", fig, directory=directory)


def test_deck_shows_figures_and_notes_and_hides_code(
    js_assets: Path, tmp_path: Path
) -> None:
    source = tmp_path / "07_demo.ipynb"
    nbformat.write(_demo_notebook(), source)
    _demo_figure(tmp_path / "figures")
    out = tmp_path / "decks"
    slides.copy_assets(out, js_assets)
    deck = slides.build_deck(source, out, tmp_path / "figures")
    page = deck.path.read_text(encoding="utf-8")
    assert deck.title == "07 · A demo deck" and deck.figures == ("07-demo",)
    assert [(s.h, s.v, s.images) for s in deck.slides] == [(0, 0, 0), (1, 0, 0), (1, 1, 1)]
    assert slides.remote_references(page) == []
    assert "secret_code" not in page, "decks show no code"
    assert '<aside class="notes">' in page and "for the speaker" in page
    assert 'src="reveal.js/dist/reveal.js"' in page and 'src="mathjax/es5/tex-svg.js"' in page
    for relative in ("reveal.js/dist/reveal.css", "reveal.js/dist/theme/white.css"):
        assert (out / relative).exists()
    assert "cdnjs" not in page and "unpkg" not in page
    assert deck.unmarked == 0

    unmarked = nbformat.read(source, as_version=4)
    for cell in unmarked.cells:
        cell.metadata.pop("slideshow")
    nbformat.write(unmarked, source)
    again = slides.build_deck(source, out, tmp_path / "figures")
    assert again.unmarked == len(unmarked.cells) and again.slides == deck.slides


def test_missing_figure_names_the_command(
    tmp_path: Path
) -> None:
    notebook = _demo_notebook()
    with pytest.raises(FileNotFoundError, match="make figures"):
        slides.deck_notebook(notebook, tmp_path)
    deck, shown, missing = slides.deck_notebook(notebook, tmp_path, allow_missing=True)
    assert (shown, missing) == ([], ["07-demo"])
    assert "make figures" in deck.cells[3].outputs[0].text
    unmarked = copy.deepcopy(notebook)
    for cell in unmarked.cells:
        cell.metadata.pop("slideshow")
    deck, _, _ = slides.deck_notebook(unmarked, tmp_path, allow_missing=True)
    assert _types(deck) == _types(notebook), "unmarked cells get the default rules"


def test_missing_assets_name_the_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make js"):
        slides.copy_assets(tmp_path / "out", tmp_path / "no_node_modules")


def test_every_course_notebook_builds_an_offline_deck(
    js_assets: Path, tmp_path: Path
) -> None:
    decks = slides.build_decks(
        out=tmp_path, figures_dir=tmp_path / "none", allow_missing=True, node_modules=js_assets
    )
    assert [d.notebook for d in decks] == [p.stem for p in NOTEBOOKS]
    index = (tmp_path / "index.html").read_text(encoding="utf-8")
    for deck in decks:
        page = deck.path.read_text(encoding="utf-8")
        assert slides.remote_references(page) == [], deck.notebook
        assert len(deck.slides) >= 3, f"{deck.notebook}: only {len(deck.slides)} slides"
        assert f'href="{deck.path.name}"' in index
    assert slides.remote_references(index) == []


# --- in a browser ------------------------------------------------------------------------------


def _find_browser() -> str | None:
    if os.environ.get("TL_CHROMIUM"):
        return os.environ["TL_CHROMIUM"]
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """A headless-capable Chromium; installed with apt-get (Debian's ``chromium``) when missing
    and the tests run as root, skipped with the reason otherwise."""
    found = _find_browser()
    if found:
        return found
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(
            f"no browser found ({', '.join(BROWSERS)}) and apt-get needs root; install one "
            "(`sudo apt-get install chromium`) or set TL_CHROMIUM to its path"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    log = ""
    for command in (install, ["apt-get", "update"], install):
        proc = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=1200, check=False
        )
        log = (proc.stderr or proc.stdout)[-800:]
        found = _find_browser()
        if found:
            return found
    pytest.skip(f"could not install Debian's chromium with apt-get: {log}")


def _screenshot(browser: str, url: str, png: Path, netlog: Path, offline: list[str]) -> str:
    """Open ``url`` headless, no network, and save a 1280×720 screenshot; return the log."""
    command = [
        *offline,
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--window-size=1280,720",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--disable-breakpad",
        # the browser's own requests: network time, AI-mode eligibility, search preconnect
        "--disable-features=NetworkTimeServiceQuerying,AimEnabled,PreconnectToSearch,"
        "MediaRouter,Translate,OptimizationGuideModelDownloading",
        "--proxy-server=127.0.0.1:9",  # belt and braces where unshare -n is not available
        "--host-resolver-rules=MAP * ~NOTFOUND",
        f"--user-data-dir={png.parent / ('profile-' + png.stem)}",
        f"--log-net-log={netlog}",
        "--virtual-time-budget=15000",
        f"--screenshot={png}",
        url,
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert png.exists(), f"no screenshot from {browser} (exit {proc.returncode}): {proc.stderr}"
    return proc.stderr


def _requested_urls(netlog: Path) -> set[str]:
    """Every URL the browser's network stack saw (Chromium's --log-net-log JSON)."""
    data = json.loads(netlog.read_text(encoding="utf-8"))
    urls: set[str] = set()

    def collect(value: object) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, str) and "url" in key.lower():
                    urls.add(item)
                else:
                    collect(item)
        elif isinstance(value, list):
            for item in value:
                collect(item)

    for event in data.get("events", []):
        collect(event.get("params", {}))
    return urls


def _pixels(png: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(png) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.mark.notebooks
@pytest.mark.slow
def test_deck_shows_its_figure_in_a_browser_offline(
    runner: ModuleType,
    chromium: str,
    js_assets: Path,
    welcome_run: dict[str, Path],
    tmp_path: Path,
) -> None:
    decks = slides.build_decks(
        ["00_welcome"], out=tmp_path / "decks", figures_dir=welcome_run["figures"],
        node_modules=js_assets,
    )  # fmt: skip
    (deck,) = decks
    figure_slide = next(s for s in deck.slides if s.images)
    title_slide = deck.slides[0]
    offline = runner.offline_prefix() if runner.offline_supported() else []
    shots = {}
    for label, slide in (("figure", figure_slide), ("title", title_slide)):
        png, netlog = tmp_path / f"{label}.png", tmp_path / f"{label}-netlog.json"
        url = f"{deck.path.resolve().as_uri()}#/{slide.h}/{slide.v}"
        _screenshot(chromium, url, png, netlog, offline)
        shots[label] = _pixels(png)
        shutil.copy(png, ROOT / "build" / f"slides-test-{label}.png")  # for a human look
        remote = sorted(u for u in _requested_urls(netlog) if not u.startswith(LOCAL_SCHEMES))
        assert not remote, f"the deck asked for {remote} (slide #/{slide.h}/{slide.v})"

    # The net log does see a page's remote fetches (file:// loads never enter it):
    probe = tmp_path / "probe.html"
    probe.write_text('<img src="http://example.com/x.png">remote', encoding="utf-8")
    _screenshot(chromium, probe.as_uri(), tmp_path / "probe.png", tmp_path / "probe.json", offline)
    assert "http://example.com/x.png" in _requested_urls(tmp_path / "probe.json")

    figure, title = shots["figure"], shots["title"]
    assert figure.shape == (720, 1280, 3)
    colours = len(np.unique(figure.reshape(-1, 3), axis=0))
    assert colours > 200, f"figure slide has only {colours} distinct colours: blank?"
    assert figure.std() > 20, "figure slide is nearly uniform: blank?"
    assert title.std() > 5, "title slide is blank: did reveal.js and its theme load?"
    changed = np.abs(figure - title).sum(axis=2) > 30
    assert changed.mean() > 0.05, "the figure slide looks like the title slide"
