"""One figure style for the course, its colour-blind-safe palette, its plot types and
``save_figure``.

The palette is Okabe & Ito's (2008, "Color Universal Design"), which stays distinguishable
for the common forms of colour blindness. :func:`course_style` is a context manager with the
course's matplotlib settings (readable at slide size); :func:`apply_course_style` applies the
same settings for the rest of a session and is meant for a notebook's setup cell. Importing
this module changes no matplotlib setting.

:func:`save_figure` writes ``<figures_dir()>/<name>.png`` and ``.svg`` atomically and
byte-for-byte reproducibly: the same figure saved twice, in one process or in two, gives the
same files, so regenerated slide figures only change when the figure does.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import matplotlib
import numpy as np
from matplotlib import cycler
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tlhelpers.files import atomic_write
from tlhelpers.settings import check_writable, figures_dir, make_folder

__all__ = [
    "COURSE_RC",
    "FIGURE_NAME_PATTERN",
    "PALETTE",
    "HistoryLike",
    "apply_course_style",
    "course_style",
    "note_error_bars",
    "plot_filters",
    "plot_learning_curves",
    "plot_with_error_bars",
    "save_figure",
    "show_image_grid",
]

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

# Settings that make saved files reproducible; save_figure always uses them.
_DETERMINISTIC_RC = {"svg.hashsalt": COURSE_RC["svg.hashsalt"], "svg.fonttype": "path"}

FIGURE_NAME_PATTERN = re.compile(r"[0-9]{2}-[a-z0-9]+(?:-[a-z0-9]+)*", re.ASCII)
"""A course figure name; names are checked with ``fullmatch`` (no trailing newline passes)."""


class HistoryLike(Protocol):
    """What :func:`plot_learning_curves` reads: per-epoch lists (validation lists may be empty)."""

    train_loss: Sequence[float]
    train_acc: Sequence[float]
    val_loss: Sequence[float]
    val_acc: Sequence[float]


@contextmanager
def course_style() -> Iterator[None]:
    """Apply the course's matplotlib settings inside a ``with`` block, then restore the old ones."""
    with matplotlib.rc_context(dict(COURSE_RC)):
        yield


def apply_course_style() -> None:
    """Apply the course's matplotlib settings for the rest of the session (a notebook's setup)."""
    matplotlib.rcParams.update(dict(COURSE_RC))


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
        directory: where to write; default :func:`tlhelpers.settings.figures_dir`
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


def _as_percent(values: Sequence[float], scale: float) -> list[float]:
    return [float(v) * scale for v in values]


def plot_learning_curves(
    histories: Mapping[str, HistoryLike] | HistoryLike,
    *,
    metric: str = "accuracy",
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """Plot training (solid) and validation (dashed) curves per epoch, one colour per run.

    Args:
        histories: one history, or ``{"run name": history}``. A history has the lists
            ``train_loss, train_acc, val_loss, val_acc`` (validation lists may be empty).
            Accuracies in [0, 1] are shown as percentages.
        metric: ``"accuracy"`` or ``"loss"``.
        ax: draw into these axes; default a new figure.
        title: default ``"Learning curves: <metric>"``.

    Returns:
        The Axes.
    """
    choices = ("accuracy", "loss")
    if metric not in choices:
        raise ValueError(f"metric={metric!r} is not understood; valid choices: {choices}.")
    if hasattr(histories, "train_loss"):
        runs: dict[str, Any] = {"": histories}
    elif isinstance(histories, Mapping):
        runs = dict(histories)
    else:
        raise TypeError(
            f"histories must be a history (with train_loss, train_acc, val_loss, val_acc) or a "
            f"mapping of run names to histories; got {type(histories).__name__}."
        )
    if not runs:
        raise ValueError("histories is empty; pass at least one history.")
    needed = ("train_loss", "train_acc", "val_loss", "val_acc")
    for run_name, history in runs.items():
        missing = [a for a in needed if not hasattr(history, a)]
        if missing:
            raise TypeError(
                f"history {run_name or '(unnamed)'!r} lacks {', '.join(missing)}; a history needs "
                f"the per-epoch lists {', '.join(needed)} (e.g. the History returned by fit)."
            )
        if len(history.train_loss) == 0 and len(history.val_loss) == 0:
            raise ValueError(f"history {run_name or '(unnamed)'!r} has no epochs to plot.")

    scale = 1.0
    if metric == "accuracy":
        accs = [float(v) for h in runs.values() for v in (*h.train_acc, *h.val_acc)]
        scale = 100.0 if accs and max(accs) <= 1.0 else 1.0

    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    with course_style():
        if ax is None:
            _, ax = plt.subplots()
        n_series = 0
        for i, (run_name, history) in enumerate(runs.items()):
            colour = _CYCLE[i % len(_CYCLE)]
            for split, style in (("train", "-"), ("val", "--")):
                if metric == "accuracy":
                    values = _as_percent(getattr(history, f"{split}_acc"), scale)
                else:
                    values = [float(v) for v in getattr(history, f"{split}_loss")]
                if not values:
                    continue
                epochs = list(range(1, len(values) + 1))
                label = f"{run_name} ({split})" if run_name else split
                ax.plot(epochs, values, style, color=colour, marker="o", label=label)
                n_series += 1
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy (%)" if metric == "accuracy" else "loss (cross-entropy)")
        ax.set_title(title if title is not None else f"Learning curves: {metric}")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if n_series > 1:
            ax.legend()
    return ax


def _to_numpy(array: Any, what: str) -> np.ndarray:
    if hasattr(array, "detach"):  # a torch tensor
        array = array.detach().cpu().numpy()
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{what} must be a torch tensor or a NumPy array; got {type(array)}.")
    return array


def show_image_grid(
    images: Any,
    *,
    labels: Sequence[int] | None = None,
    classes: Sequence[str] | None = None,
    ncols: int = 8,
    title: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Show images in a grid, each captioned with its class name (or label) when given.

    Args:
        images: uint8 images, shape ``(N, 3, H, W)`` or ``(N, 1, H, W)``, tensor or ndarray.
        labels: one integer label per image.
        classes: class names indexed by label.
        ncols: images per row.
        title: figure title (the Axes' title when ``ax`` is given).
        ax: draw the grid as one mosaic into these axes (for multi-panel figures); default a
            new figure with one small axes per image.

    Returns:
        The Figure.
    """
    array = _to_numpy(images, "images")
    if array.ndim != 4 or array.shape[1] not in (1, 3) or array.shape[0] == 0:
        raise ValueError(
            f"images have shape {tuple(array.shape)}; expected (N, 3, H, W) or (N, 1, H, W) "
            "with N >= 1, channels first as the course's ImageSet stores them."
        )
    if array.dtype != np.uint8:
        raise TypeError(
            f"images have dtype {array.dtype}; expected uint8 in 0..255. Convert with "
            "(x * 255).round().clamp(0, 255).to(torch.uint8) if they are floats in [0, 1]."
        )
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols={ncols!r} must be a positive integer, e.g. ncols=8.")
    n = array.shape[0]
    label_list: list[int] | None = None
    if labels is not None:
        label_list = [int(v) for v in _flatten(labels)]
        if len(label_list) != n:
            raise ValueError(f"got {len(label_list)} labels for {n} images; pass one per image.")
    if classes is not None and label_list is None:
        raise ValueError("classes were given without labels; pass labels=... as well.")

    captions = None
    if label_list is not None:
        captions = [_caption(label, i, classes) for i, label in enumerate(label_list)]
    if ax is not None:
        return _mosaic_into(ax, array, captions, ncols, title)

    import matplotlib.pyplot as plt

    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    with course_style():
        fig, axes = plt.subplots(
            rows, cols, figsize=(1.4 * cols, 1.55 * rows + (0.5 if title else 0.0)), squeeze=False
        )
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i >= n:
                continue
            image = array[i].transpose(1, 2, 0)  # (H, W, C)
            if image.shape[2] == 1:
                ax.imshow(image[:, :, 0], cmap="gray", vmin=0, vmax=255)
            else:
                ax.imshow(image)
            if captions is not None:
                ax.set_title(captions[i], fontsize=11)
        if title:
            fig.suptitle(title)
    return fig


def _caption(label: int, index: int, classes: Sequence[str] | None) -> str:
    if classes is None:
        return str(label)
    if not 0 <= label < len(classes):
        raise ValueError(
            f"label {label} of image {index} has no entry in classes (0..{len(classes) - 1})."
        )
    return str(classes[label])


def _mosaic_into(
    ax: Axes, array: np.ndarray, captions: list[str] | None, ncols: int, title: str | None
) -> Figure:
    """Tile ``array`` (N, C, H, W) into one image with 2-pixel white gaps, drawn into ``ax``."""
    n, channels, height, width = array.shape
    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    gap = 2
    caption_room = height // 2 if captions is not None else 0
    cell_h, cell_w = height + gap + caption_room, width + gap
    mosaic = np.full((rows * cell_h, cols * cell_w, 3), 255, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = r * cell_h + caption_room, c * cell_w
        tile = array[i].transpose(1, 2, 0)  # (H, W, C)
        mosaic[top : top + height, left : left + width] = (
            tile if channels == 3 else tile.repeat(3, axis=2)
        )
    ax.imshow(mosaic, interpolation="nearest")
    if captions is not None:
        for i, text in enumerate(captions):
            r, c = divmod(i, cols)
            ax.text(
                c * cell_w + width / 2,
                r * cell_h + caption_room - 1,
                text,
                ha="center",
                va="bottom",
                fontsize=9,
            )
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax.figure


def _flatten(values: Any) -> list[Any]:
    if hasattr(values, "tolist"):
        values = values.tolist()
    return list(values)


def plot_filters(weight: Any, *, ncols: int = 8, title: str = "First-layer filters") -> Figure:
    """Show convolution filters as small images, each rescaled to [0, 1] on its own.

    A filter with 3 input channels is shown in colour (as RGB); other filters show the mean
    over their input channels in grey.

    Args:
        weight: convolution weight, shape ``(out_channels, in_channels, kh, kw)``.
        ncols: filters per row.
        title: figure title.

    Returns:
        The Figure.
    """
    array = _to_numpy(weight, "weight").astype(np.float64)
    if array.ndim != 4 or array.shape[0] == 0:
        raise ValueError(
            f"weight has shape {tuple(array.shape)}; expected (out_channels, in_channels, kh, kw), "
            "e.g. model.stem[0].weight."
        )
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols={ncols!r} must be a positive integer, e.g. ncols=8.")
    n, channels = array.shape[:2]
    if channels != 3:
        array = array.mean(axis=1, keepdims=True)
    low = array.min(axis=(1, 2, 3), keepdims=True)
    high = array.max(axis=(1, 2, 3), keepdims=True)
    spread = np.where(high > low, high - low, 1.0)
    shown = np.where(high > low, (array - low) / spread, 0.5)  # (N, C, kh, kw) in [0, 1]

    import matplotlib.pyplot as plt

    cols = min(ncols, n)
    rows = math.ceil(n / cols)
    with course_style():
        fig, axes = plt.subplots(rows, cols, figsize=(1.1 * cols, 1.1 * rows + 0.6), squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i >= n:
                continue
            if shown.shape[1] == 3:
                ax.imshow(shown[i].transpose(1, 2, 0), interpolation="nearest")
            else:
                ax.imshow(shown[i, 0], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        fig.suptitle(title)
    return fig


def plot_with_error_bars(
    x: Sequence[float],
    means: Mapping[str, Sequence[float]],
    stds: Mapping[str, Sequence[float]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    n_runs: int | None = None,
    logx: bool = False,
    ax: Axes | None = None,
) -> Axes:
    """Plot one line per series with mean ± sd error bars, e.g. accuracy against shots.

    Args:
        x: shared x values, e.g. labelled images per class.
        means: ``{"series name": mean per x}``.
        stds: ``{"series name": sd per x}`` with the same names (:func:`tlhelpers.stats.sd`).
        xlabel, ylabel: axis labels, with units.
        title: axes title.
        n_runs: runs behind each point; the figure then says what its error bars are
            (:func:`note_error_bars`).
        logx: logarithmic x axis (the x values stay as tick labels).
        ax: draw into these axes; default a new figure.

    Returns:
        The Axes.
    """
    xs = [float(v) for v in _flatten(x)]
    if set(means) != set(stds):
        raise ValueError(
            f"means and stds name different series: means has {sorted(means)}, stds has "
            f"{sorted(stds)}; give both the same names."
        )
    if not means:
        raise ValueError("means is empty; pass at least one series.")
    for name in means:
        for what, values in (("means", means[name]), ("stds", stds[name])):
            if len(_flatten(values)) != len(xs):
                raise ValueError(
                    f"{what}[{name!r}] has {len(_flatten(values))} values for {len(xs)} x values; "
                    "pass one per x."
                )
    if logx and any(v <= 0 for v in xs):
        raise ValueError(f"logx=True needs positive x values; got {xs}. Use logx=False.")

    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    with course_style():
        if ax is None:
            _, ax = plt.subplots()
        for i, name in enumerate(means):
            ax.errorbar(
                xs,
                [float(v) for v in _flatten(means[name])],
                yerr=[float(v) for v in _flatten(stds[name])],
                color=_CYCLE[i % len(_CYCLE)],
                marker="o",
                capsize=4,
                label=name,
            )
        if logx:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(FixedLocator(xs))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        if len(means) > 1:
            ax.legend()
        if n_runs is not None:
            note_error_bars(ax, n_runs)
    return ax


def note_error_bars(ax: Axes, n_runs: int, *, where: str = "lower right") -> Axes:
    """Say on the axes what its error bars are: ``"error bars: mean ± sd over 3 runs"``.

    The course's one convention (:mod:`tlhelpers.stats`): the sample standard deviation over
    independent runs; a single run is said to have no error bar.
    """
    from tlhelpers.stats import spread_note

    places = {"lower right": (0.99, 0.02, "right", "bottom"),
              "lower left": (0.01, 0.02, "left", "bottom"),
              "upper right": (0.99, 0.98, "right", "top"),
              "upper left": (0.01, 0.98, "left", "top")}
    if where not in places:
        raise ValueError(f"where={where!r} is not a corner; valid choices: {', '.join(places)}.")
    x, y, ha, va = places[where]
    text = f"error bars: {spread_note(n_runs)}" if n_runs > 1 else spread_note(n_runs)
    ax.text(x, y, text, transform=ax.transAxes, ha=ha, va=va, fontsize=9,
            color=PALETTE["black"], alpha=0.75)
    return ax
