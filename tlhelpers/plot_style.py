"""The course's figure style: Okabe & Ito's colour-blind-safe palette and matplotlib settings.

The palette is Okabe & Ito's (2008, "Color Universal Design"), which stays distinguishable
for the common forms of colour blindness. :func:`course_style` is a context manager with the
course's matplotlib settings (readable at slide size); :func:`apply_course_style` applies the
same settings for the rest of a session and is meant for a notebook's setup cell. Importing
this module changes no matplotlib setting. Every name here is also importable from
:mod:`tlhelpers.plots`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

import matplotlib
from matplotlib import cycler

__all__ = ["CLASS_COLOURS", "COURSE_RC", "PALETTE", "apply_course_style", "course_style"]

#: Okabe–Ito colours by name (read-only).
PALETTE: Mapping[str, str] = MappingProxyType(
    {
        "blue": "#0072B2",
        "orange": "#E69F00",
        "bluish_green": "#009E73",
        "vermillion": "#D55E00",
        "reddish_purple": "#CC79A7",
        "sky_blue": "#56B4E9",
        "yellow": "#F0E442",
        "black": "#000000",
    }
)

#: Ten colours for up to ten classes in one plot (digits 0–9 in a scatter): Paul Tol's "muted"
#: scheme (nine colours chosen to stay distinct for colour-blind readers) and black. Ten hues
#: cannot all be far apart: label clusters or vary markers too where classes must be told apart.
CLASS_COLOURS: tuple[str, ...] = (
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
    "#DDCC77", "#CC6677", "#882255", "#AA4499", "#000000",
)

# Order of series colours: yellow last, it is faint on white.
_CYCLE = [PALETTE[name] for name in PALETTE]

#: matplotlib settings of the course style (read-only; use course_style() to apply them).
COURSE_RC: Mapping[str, Any] = MappingProxyType(
    {
        "figure.figsize": (8.0, 5.0),
        "figure.dpi": 100,
        "figure.facecolor": "white",
        "figure.titlesize": 18,
        "font.size": 14,
        "axes.titlesize": 16,
        "axes.labelsize": 14,
        "axes.prop_cycle": cycler(color=_CYCLE),
        "axes.grid": True,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.facecolor": "white",
        "grid.alpha": 0.35,
        "grid.linewidth": 0.8,
        "xtick.labelsize": 12,
        "ytick.labelsize": 12,
        "legend.fontsize": 12,
        "legend.frameon": False,
        "lines.linewidth": 2.2,
        "lines.markersize": 6,
        "image.cmap": "viridis",
        "savefig.dpi": 200,
        "savefig.bbox": "tight",
        "savefig.facecolor": "white",
        "svg.fonttype": "path",
        "svg.hashsalt": "tlhelpers-course",
        "pdf.fonttype": 42,
    }
)


@contextmanager
def course_style() -> Iterator[None]:
    """Apply the course's matplotlib settings inside a ``with`` block, then restore the old ones."""
    with matplotlib.rc_context(dict(COURSE_RC)):
        yield


def apply_course_style() -> None:
    """Apply the course's matplotlib settings for the rest of the session (a notebook's setup)."""
    matplotlib.rcParams.update(dict(COURSE_RC))

