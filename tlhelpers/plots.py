"""The course's plot types: learning curves, image grids, filters, lines with error bars.

Every plot is drawn in the course style (:mod:`tlhelpers.plot_style`) and returns its Axes or
Figure for :func:`save_figure` (:mod:`tlhelpers.figures`). The style and ``save_figure`` are
importable from here too, so a notebook needs one import line::

    from tlhelpers.plots import PALETTE, apply_course_style, plot_learning_curves, save_figure
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from tlhelpers.figures import FIGURE_NAME_PATTERN, save_figure
from tlhelpers.plot_style import (
    _CYCLE,
    CLASS_COLOURS,
    COURSE_RC,
    PALETTE,
    apply_course_style,
    course_style,
)

__all__ = [
    "CLASS_COLOURS",
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


class HistoryLike(Protocol):
    """What :func:`plot_learning_curves` reads: per-epoch lists (validation lists may be empty)."""

    train_loss: Sequence[float]
    train_acc: Sequence[float]
    val_loss: Sequence[float]
    val_acc: Sequence[float]


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
            Accuracies are in percent (0–100), as :class:`tlhelpers.train.History` records them.
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

    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    with course_style():
        if ax is None:
            _, ax = plt.subplots()
        n_series = 0
        for i, (run_name, history) in enumerate(runs.items()):
            colour = _CYCLE[i % len(_CYCLE)]
            for split, style in (("train", "-"), ("val", "--")):
                metric_name = "acc" if metric == "accuracy" else "loss"
                values = [float(v) for v in getattr(history, f"{split}_{metric_name}")]
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
