"""``save_figure``: a course figure written as PNG and SVG, atomically and byte-for-byte
reproducibly.

:func:`save_figure` writes ``<figures_dir()>/<name>.png`` and ``.svg``: the same figure saved
twice, in one process or in two, gives the same files, so regenerated slide figures only change
when the figure does. Names follow :data:`FIGURE_NAME_PATTERN` (``NN-words-with-hyphens``, NN
the notebook's number). Both names are also importable from :mod:`tlhelpers.plots`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tlhelpers.files import atomic_write
from tlhelpers.paths import check_writable, figures_dir, make_folder
from tlhelpers.plot_style import COURSE_RC

__all__ = ["FIGURE_NAME_PATTERN", "save_figure"]

# Settings that make saved files reproducible; save_figure always uses them.
_DETERMINISTIC_RC = {"svg.hashsalt": COURSE_RC["svg.hashsalt"], "svg.fonttype": "path"}

FIGURE_NAME_PATTERN = re.compile(r"[0-9]{2}-[a-z0-9]+(?:-[a-z0-9]+)*", re.ASCII)
"""A course figure name; names are checked with ``fullmatch`` (no trailing newline passes)."""


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not FIGURE_NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"figure name {name!r} is not a course figure name: use the notebook's two-digit "
            "number, a hyphen, then lowercase words joined by hyphens, "
            'e.g. save_figure("01-learning-curves").'
        )


def _atomic_savefig(fig: Figure, path: Path, fmt: str, dpi: int, metadata: dict) -> None:
    atomic_write(path, lambda handle: fig.savefig(handle, format=fmt, dpi=dpi, metadata=metadata))


def _figure_folder(directory: str | os.PathLike[str] | None) -> Path:
    """The folder figures go to, created and checked writable before anything is rendered."""
    if directory is None:
        folder, variable = figures_dir(), "TL_FIGURES_DIR"
    else:
        folder, variable = Path(directory), None
        make_folder(folder, f"directory={str(directory)!r}", "pass a folder you can write to")
    check_writable(folder, variable)
    return folder


def save_figure(
    name: str,
    fig: Figure | Axes | None = None,
    *,
    directory: str | os.PathLike[str] | None = None,
    dpi: int = 200,
) -> dict[str, Path]:
    """Save ``fig`` (default: the current figure) as ``<name>.png`` and ``<name>.svg``.

    Args:
        name: stable figure name, ``NN-words-with-hyphens`` where NN is the notebook's number,
            e.g. ``"01-learning-curves"``.
        fig: the Figure (or one of its Axes); ``None`` takes pyplot's current figure.
        directory: where to write; default :func:`tlhelpers.paths.figures_dir`
            (``TL_FIGURES_DIR`` moves it).
        dpi: resolution of the PNG.

    Returns:
        ``{"png": path, "svg": path}``. Files are written atomically and carry no timestamp
        or version metadata, so saving the same figure again gives identical bytes.
    """
    _check_name(name)
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi <= 0:
        raise ValueError(f"dpi={dpi!r} must be a positive integer, e.g. dpi=200.")
    if fig is None:
        import matplotlib.pyplot as plt

        if not plt.get_fignums():
            raise ValueError(
                f"save_figure({name!r}) found no open figure; pass the figure explicitly: "
                f"save_figure({name!r}, fig)."
            )
        fig = plt.gcf()
    elif isinstance(fig, Axes):
        fig = fig.get_figure()
    if not isinstance(fig, Figure):
        raise TypeError(
            f"fig={fig!r} is not a matplotlib Figure or Axes; pass the figure returned by "
            "plt.subplots() or by a tlhelpers.plots helper."
        )
    folder = _figure_folder(directory)
    paths = {"png": folder / f"{name}.png", "svg": folder / f"{name}.svg"}
    with matplotlib.rc_context(_DETERMINISTIC_RC):
        _atomic_savefig(fig, paths["png"], "png", dpi, {"Software": None})
        _atomic_savefig(fig, paths["svg"], "svg", dpi, {"Date": None})
    return paths
