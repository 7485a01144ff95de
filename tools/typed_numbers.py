"""Find result numbers typed into the notebooks' Markdown, where they can drift from the runs.

Numbers an experiment produces belong in outputs (printed, or rendered by ``claims.report``),
never in Markdown. This scanner flags, in every Markdown cell, numbers that look like results:
decimals (``88.8``), percentages (``96%``), points (``30 points``), factors (``10×``), spreads
(``± 3``) and durations (``37 s``, ``2 minutes``). It does not flag:

- code spans, ``$math$``, links and HTML;
- settings: a number within a few characters after ``=`` or ``→`` (``k = 50``, ``λ → 0.1``);
- sizes written ``N×M`` (``8×8`` pixels, a ``2×2`` grid);
- sentences that cite a source (``et al.``, a year, "paper", "published", "reported").

What remains and is not a result (a chance level, a published table, a reading time) is listed
in ``tests/typed_numbers_allowlist.txt`` with its reason; entries marked ``remove:`` are typed
results a notebook still has to replace by printed numbers. ``python -m tools.typed_numbers``
lists every hit that the allow-list does not cover.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.notebooks import ROOT, cell_source, find_notebooks, read_notebook

ALLOWLIST = ROOT / "tests" / "typed_numbers_allowlist.txt"

_CODE = re.compile(r"`[^`]*`")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$]*\$", re.S)
_MARKUP = re.compile(r"\]\([^)]*\)|<[^>]+>|https?://\S+")
_SIZE = re.compile(r"\d+\s?×\s?\d+")
_NUMBER = re.compile(
    r"(?<![\w.])(?:"
    r"± ?\d+(?:\.\d+)?"  # a spread
    r"|\d+(?:\.\d+)?\s?%"  # a percentage
    r"|\d+(?:\.\d+)?\s?(?:points?|pp)\b"  # points
    r"|\d+(?:\.\d+)?\s?×"  # a factor
    r"|\d+(?:\.\d+)?\s(?:s|seconds?|minutes?|min)\b"  # a duration
    r"|[-−+]?\d+\.\d+(?![.\d])"  # a decimal (not a version such as 2.14.1)
    r")"
)
_SETTING = re.compile(r"[=→]")
_CITATION = re.compile(
    r"et al\.?|\b(?:19|20)\d{2}[a-z]?\b|ANCHORS|\bpapers?\b|published|\breport(?:s|ed)\b", re.I
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z*(\"])|\n\s*(?:[-*]|\d+\.)\s+|\n\s*\n|\n(?=\|)")


@dataclass(frozen=True)
class Hit:
    """One number in one sentence of one Markdown cell."""

    notebook: str  # "03" for 03_fine_tuning.ipynb
    cell: int
    token: str
    sentence: str

    def line(self) -> str:
        """The allow-list line that would cover this hit (reason still to fill in)."""
        return f"{self.notebook} | {self.token} | {_snippet(self.sentence)} | "


def _snippet(sentence: str, width: int = 60) -> str:
    return " ".join(sentence.split())[:width].replace("|", "/")


def _is_setting(text: str, start: int) -> bool:
    return bool(_SETTING.search(text[max(0, start - 14) : start]))


def scan_markdown(text: str) -> list[tuple[str, str]]:
    """``(token, sentence)`` for each result-like number in one Markdown cell's text."""
    text = _MATH.sub(" ", _CODE.sub(" ", _MARKUP.sub(" ", text)))
    text = _SIZE.sub(" ", text)
    hits = []
    for sentence in _SENTENCE.split(text):
        if _CITATION.search(sentence):
            continue
        for match in _NUMBER.finditer(sentence):
            if not _is_setting(sentence, match.start()):
                hits.append((match.group(0).strip(), sentence.strip()))
    return hits


def scan_notebook(path: Path) -> list[Hit]:
    """Every flagged number in the Markdown cells of the notebook at ``path``."""
    cells = read_notebook(path)["cells"]
    number = path.name[:2]
    hits = []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") != "markdown":
            continue
        text = cell_source(cell)
        hits += [Hit(number, index, token, sentence) for token, sentence in scan_markdown(text)]
    return hits


@dataclass(frozen=True)
class Allowed:
    """One reviewed allow-list entry: a number in a sentence, and why it may stay."""

    notebook: str
    token: str
    snippet: str
    reason: str

    @property
    def to_remove(self) -> bool:
        return self.reason.startswith("remove:")

    def covers(self, hit: Hit) -> bool:
        return (hit.notebook, hit.token) == (self.notebook, self.token) and _snippet(
            hit.sentence
        ).startswith(self.snippet)


def read_allowlist(path: Path = ALLOWLIST) -> list[Allowed]:
    """Entries ``NN | token | start of the sentence | reason`` (``#`` starts a comment)."""
    entries = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) != 4 or not all(parts) or not parts[3].startswith(("keep:", "remove:")):
            raise ValueError(
                f"{path}:{number}: {raw!r} is not 'NN | token | sentence start | keep: why' "
                "(or 'remove: ...' for a typed result still to replace)."
            )
        entries.append(Allowed(*parts))
    return entries


def uncovered(hits: Iterable[Hit], allowed: Sequence[Allowed]) -> list[Hit]:
    """Hits no allow-list entry covers."""
    return [h for h in hits if not any(a.covers(h) for a in allowed)]


def unused(hits: Sequence[Hit], allowed: Sequence[Allowed]) -> list[Allowed]:
    """Allow-list entries that cover no hit any more (delete them)."""
    return [a for a in allowed if not any(a.covers(h) for h in hits)]


def main(argv: Sequence[str] | None = None) -> int:
    """List hits the allow-list does not cover (and stale entries); exit 1 if any."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="stems, paths or NN (default: all)")
    args = parser.parse_args(argv)
    try:
        paths = find_notebooks(args.notebooks)
    except ValueError as error:
        parser.error(str(error))
    hits = [h for path in paths for h in scan_notebook(path)]
    allowed = read_allowlist()
    missing, stale = uncovered(hits, allowed), unused(hits, allowed)
    for hit in missing:
        print(f"cell {hit.cell}: {hit.line()}")
    for entry in stale:
        print(f"stale allow-list entry: {entry.notebook} | {entry.token} | {entry.snippet}")
    counts: dict[str, int] = {}
    for entry in allowed:
        if entry.to_remove:
            counts[entry.notebook] = counts.get(entry.notebook, 0) + 1
    print(f"typed results still to remove, per notebook: {counts or 'none'}")
    return 1 if missing or stale else 0


if __name__ == "__main__":
    sys.exit(main())
