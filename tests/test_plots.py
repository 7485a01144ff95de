"""Tests for tlhelpers.plots: style, reproducible saving, and the course's plot types."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from tlhelpers import plots
from tlhelpers.plots import (
    CLASS_COLOURS,
    PALETTE,
    apply_course_style,
    course_style,
    plot_filters,
    plot_learning_curves,
    plot_with_error_bars,
    save_figure,
    show_image_grid,
)

OKABE_ITO = {
    "#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
}  # fmt: skip


@dataclass
class History:
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)


def _history(val: bool = True) -> History:
    return History(
        train_loss=[2.0, 1.2, 0.8],
        train_acc=[30.0, 60.0, 80.0],  # percent, as tlhelpers.train.History records them
        val_loss=[2.1, 1.4, 1.0] if val else [],
        val_acc=[25.0, 55.0, 70.0] if val else [],
    )


def _figure() -> plt.Figure:
    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [0, 1, 4], label="a")
    ax.set_title("a title")
    return fig


# --- style ---------------------------------------------------------------------------------------


def test_palette_is_okabe_ito_and_read_only() -> None:
    assert set(PALETTE.values()) == OKABE_ITO
    assert PALETTE["blue"] == "#0072B2"
    with pytest.raises(TypeError):
        PALETTE["blue"] = "#123456"  # type: ignore[index]


def test_class_colours_are_ten_distinct_hex_colours() -> None:
    assert len(CLASS_COLOURS) == len(set(CLASS_COLOURS)) == 10
    assert all(matplotlib.colors.is_color_like(c) and c.startswith("#") for c in CLASS_COLOURS)


def test_course_style_is_temporary() -> None:
    before = matplotlib.rcParams["font.size"], matplotlib.rcParams["svg.hashsalt"]
    with course_style():
        assert matplotlib.rcParams["font.size"] == 14
        assert matplotlib.rcParams["svg.fonttype"] == "path"
        assert matplotlib.rcParams["svg.hashsalt"] == "tlhelpers-course"
        assert matplotlib.rcParams["axes.spines.top"] is False
    assert (matplotlib.rcParams["font.size"], matplotlib.rcParams["svg.hashsalt"]) == before


def test_apply_course_style_changes_settings() -> None:
    with matplotlib.rc_context():  # restores the settings after the test
        apply_course_style()
        assert matplotlib.rcParams["axes.grid"] is True
        colours = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
        assert colours[0] == PALETTE["blue"] and set(colours) == OKABE_ITO


def test_import_changes_no_matplotlib_setting() -> None:
    code = (
        "import matplotlib\n"
        "before = dict(matplotlib.rcParams)\n"
        "import tlhelpers.plots\n"
        "after = dict(matplotlib.rcParams)\n"
        "changed = [k for k in before if before[k] != after[k]]\n"
        "assert not changed, changed\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


# --- save_figure ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "learning curves", "1-curves", "01_curves", "01-Curves", "01-", "01-curves.png", "", "01",
        "01-curves\n",  # "$" would match before a final newline
        "\u0661\u0662-curves",  # Arabic-Indic digits are \d in Unicode patterns
        "01-curv\u00e9s",
    ],
)
def test_save_figure_rejects_bad_names(name: str) -> None:
    with pytest.raises(ValueError) as info:
        save_figure(name, _figure())
    assert repr(name) in str(info.value)
    assert "01-learning-curves" in str(info.value)


def test_save_figure_writes_png_and_svg_to_figures_dir(course_dirs: dict[str, Path]) -> None:
    paths = save_figure("01-learning-curves", _figure())
    assert set(paths) == {"png", "svg"}
    assert paths["png"] == course_dirs["figures"] / "01-learning-curves.png"
    assert paths["png"].read_bytes().startswith(b"\x89PNG")
    assert paths["svg"].read_text(encoding="utf-8").lstrip().startswith("<?xml")
    assert sorted(p.name for p in course_dirs["figures"].iterdir()) == [
        "01-learning-curves.png",
        "01-learning-curves.svg",
    ]  # no temporary files left behind
    reference = course_dirs["figures"] / "reference"
    reference.write_bytes(b"")  # a file created the ordinary way, under the same umask
    assert paths["png"].stat().st_mode == reference.stat().st_mode


def test_save_figure_explicit_directory_axes_and_current_figure(tmp_path: Path) -> None:
    fig = _figure()
    from_axes = save_figure("02-from-axes", fig.axes[0], directory=tmp_path / "a")
    assert from_axes["png"].parent == tmp_path / "a"
    current = save_figure("02-current", directory=tmp_path / "b")  # pyplot's current figure
    assert current["svg"].exists()


def test_save_figure_without_open_figure() -> None:
    plt.close("all")
    with pytest.raises(ValueError, match="no open figure"):
        save_figure("01-nothing")


@pytest.mark.parametrize("dpi", [0, -5, 2.5, True])
def test_save_figure_rejects_bad_dpi(dpi: object) -> None:
    with pytest.raises(ValueError, match="dpi"):
        save_figure("01-x", _figure(), dpi=dpi)  # type: ignore[arg-type]


def test_save_figure_is_deterministic_and_has_no_volatile_metadata(tmp_path: Path) -> None:
    fig = _figure()
    first = {k: p.read_bytes() for k, p in save_figure("01-a", fig, directory=tmp_path).items()}
    second = {k: p.read_bytes() for k, p in save_figure("01-a", fig, directory=tmp_path).items()}
    assert first == second
    assert b"Software" not in first["png"] and b"matplotlib version" not in first["png"]
    assert b"<dc:date>" not in first["svg"]
    assert b"<text" not in first["svg"]  # text drawn as paths: no font needed to view it


_SUBPROCESS_SAVE = """
import sys
import matplotlib.pyplot as plt
from tlhelpers.plots import course_style, plot_learning_curves, save_figure
class H:
    train_loss = [2.0, 1.0]; train_acc = [40.0, 80.0]; val_loss = [2.2, 1.3]; val_acc = [30.0, 70.0]
ax = plot_learning_curves({"pretrained": H(), "scratch": H()}, metric="loss")
save_figure("01-determinism", ax.figure, directory=sys.argv[1])
"""


def test_save_figure_is_identical_across_fresh_processes(tmp_path: Path) -> None:
    outputs = []
    for run in ("one", "two"):
        env = {**os.environ, "MPLBACKEND": "Agg"}
        subprocess.run(
            [sys.executable, "-c", _SUBPROCESS_SAVE, str(tmp_path / run)],
            check=True,
            env=env,
            capture_output=True,
        )
        outputs.append(
            {s: (tmp_path / run / f"01-determinism.{s}").read_bytes() for s in ("png", "svg")}
        )
    assert outputs[0]["png"] == outputs[1]["png"]
    assert outputs[0]["svg"] == outputs[1]["svg"]


def test_save_figure_leaves_no_partial_file_when_saving_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fig = _figure()
    save_figure("01-kept", fig, directory=tmp_path)
    old = (tmp_path / "01-kept.png").read_bytes()

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", broken)
    with pytest.raises(OSError, match="disk full"):
        save_figure("01-kept", fig, directory=tmp_path)
    assert (tmp_path / "01-kept.png").read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01-kept.png", "01-kept.svg"]


# --- plot helpers --------------------------------------------------------------------------------


def _legend(ax: plt.Axes) -> list[str]:
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def test_learning_curves_for_several_runs() -> None:
    ax = plot_learning_curves({"pretrained": _history(), "scratch": _history(val=False)})
    assert _legend(ax) == ["pretrained (train)", "pretrained (val)", "scratch (train)"]
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "accuracy (%)"
    assert ax.get_title()
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [1, 2, 3]
    assert list(line.get_ydata()) == [30, 60, 80]  # percent, plotted as given


def test_learning_curves_single_history_loss() -> None:
    ax = plot_learning_curves(_history(), metric="loss", title="Pretraining on letters")
    assert _legend(ax) == ["train", "val"]
    assert ax.get_ylabel() == "loss (cross-entropy)"
    assert ax.get_title() == "Pretraining on letters"
    assert np.allclose(ax.get_lines()[1].get_ydata(), [2.1, 1.4, 1.0])


def test_learning_curves_small_percentages_stay() -> None:
    history = History([1.0, 0.5], [0.4, 0.8], [], [])  # below 1 %: not mistaken for fractions
    ax = plot_learning_curves(history)
    assert list(ax.get_lines()[0].get_ydata()) == [0.4, 0.8]
    assert _legend(ax) == []  # one series needs no legend


def test_learning_curves_bad_input() -> None:
    with pytest.raises(ValueError, match="'accuracy', 'loss'"):
        plot_learning_curves(_history(), metric="acc")
    with pytest.raises(TypeError, match="val_acc"):
        plot_learning_curves({"run": object()})
    with pytest.raises(ValueError, match="no epochs"):
        plot_learning_curves(History())
    with pytest.raises(TypeError):
        plot_learning_curves([1, 2, 3])  # type: ignore[arg-type]


def test_image_grid_from_tensor_with_class_names() -> None:
    images = torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8)
    fig = show_image_grid(
        images, labels=torch.arange(10) % 3, classes=["A", "B", "C"], ncols=4, title="Letters"
    )
    assert len(fig.axes) == 12  # 3 rows of 4
    titles = [ax.get_title() for ax in fig.axes[:10]]
    assert titles[:4] == ["A", "B", "C", "A"]
    assert fig._suptitle.get_text() == "Letters"
    first = fig.axes[0].get_images()[0].get_array()
    assert np.array_equal(np.asarray(first), images[0].permute(1, 2, 0).numpy())


def test_image_grid_from_grey_ndarray_with_labels() -> None:
    images = np.zeros((3, 1, 8, 8), dtype=np.uint8)
    fig = show_image_grid(images, labels=[7, 1, 2])
    assert [ax.get_title() for ax in fig.axes] == ["7", "1", "2"]


def test_image_grid_bad_input() -> None:
    with pytest.raises(TypeError, match="uint8"):
        show_image_grid(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        show_image_grid(np.zeros((2, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="2 labels for 3 images"):
        show_image_grid(np.zeros((3, 3, 4, 4), dtype=np.uint8), labels=[0, 1])
    with pytest.raises(ValueError, match="no entry in classes"):
        show_image_grid(np.zeros((1, 3, 4, 4), dtype=np.uint8), labels=[5], classes=["a"])
    with pytest.raises(ValueError, match="ncols"):
        show_image_grid(np.zeros((1, 3, 4, 4), dtype=np.uint8), ncols=0)


def test_filters_normalised_per_filter() -> None:
    weight = torch.randn(6, 3, 5, 5) * torch.arange(1, 7).view(6, 1, 1, 1)
    weight[5] = 0.0  # a constant filter shows as mid-grey, not NaN
    fig = plot_filters(weight, ncols=4, title="Stem filters")
    shown = [np.asarray(ax.get_images()[0].get_array()) for ax in fig.axes[:6]]
    for data in shown[:5]:
        assert data.shape == (5, 5, 3)
        assert data.min() == pytest.approx(0.0) and data.max() == pytest.approx(1.0)
    assert np.allclose(shown[5], 0.5)
    assert fig._suptitle.get_text() == "Stem filters"


def test_filters_single_channel_and_bad_shape() -> None:
    fig = plot_filters(np.random.default_rng(0).normal(size=(4, 16, 3, 3)))
    assert np.asarray(fig.axes[0].get_images()[0].get_array()).shape == (3, 3)
    with pytest.raises(ValueError, match="out_channels, in_channels"):
        plot_filters(torch.zeros(3, 3, 3))


def test_error_bars_curves() -> None:
    shots = [1, 5, 10, 50]
    ax = plot_with_error_bars(
        shots,
        {"pretrained": [40, 70, 80, 90], "scratch": [20, 30, 45, 70]},
        {"pretrained": [5, 3, 2, 1], "scratch": [4, 4, 3, 2]},
        xlabel="labelled images per class",
        ylabel="test accuracy (%)",
        title="Data efficiency",
        logx=True,
    )
    assert ax.get_xscale() == "log"
    assert _legend(ax) == ["pretrained", "scratch"]
    assert list(ax.get_xticks()) == shots
    assert ax.get_xlabel() == "labelled images per class" and ax.get_title() == "Data efficiency"


def test_error_bars_bad_input() -> None:
    kwargs = {"xlabel": "x", "ylabel": "y", "title": "t"}
    with pytest.raises(ValueError, match="different series"):
        plot_with_error_bars([1, 2], {"a": [1, 2]}, {"b": [1, 2]}, **kwargs)
    with pytest.raises(ValueError, match="3 values for 2 x values"):
        plot_with_error_bars([1, 2], {"a": [1, 2, 3]}, {"a": [1, 2]}, **kwargs)
    with pytest.raises(ValueError, match="positive x"):
        plot_with_error_bars([0, 2], {"a": [1, 2]}, {"a": [1, 2]}, logx=True, **kwargs)


def test_helpers_render_and_save(tmp_path: Path) -> None:
    """Every helper's figure goes through save_figure (the notebooks' path)."""
    ax = plot_learning_curves({"a": _history(), "b": _history()})
    save_figure("01-curves", ax.figure, directory=tmp_path)
    save_figure("01-grid", show_image_grid(np.zeros((4, 3, 8, 8), np.uint8)), directory=tmp_path)
    save_figure("01-filters", plot_filters(torch.randn(8, 3, 3, 3)), directory=tmp_path)
    assert len(list(tmp_path.glob("*.png"))) == 3


def test_module_exports() -> None:
    assert set(plots.__all__) <= set(dir(plots))


def test_show_image_grid_draws_a_captioned_mosaic_into_given_axes() -> None:
    import matplotlib.pyplot as plt

    images = np.zeros((5, 3, 8, 8), dtype=np.uint8)
    images[2] = 255
    fig, (left, right) = plt.subplots(1, 2)
    returned = show_image_grid(
        images, labels=[0, 1, 2, 0, 1], classes=["a", "b", "c"], ncols=3, ax=right, title="t"
    )
    assert returned is fig
    mosaic = right.get_images()[0].get_array()
    assert mosaic.shape == (2 * (8 + 2 + 4), 3 * (8 + 2), 3)  # rows × (image + gap + caption)
    assert [t.get_text() for t in right.texts] == ["a", "b", "c", "a", "b"]
    assert right.get_title() == "t" and not left.get_images()
    plt.close(fig)


def test_error_bars_say_what_they_are_and_n() -> None:
    from tlhelpers.plots import note_error_bars, plot_with_error_bars

    ax = plot_with_error_bars([1, 5], {"a": [50, 60]}, {"a": [2, 3]}, xlabel="k", ylabel="%",
                              title="t", n_runs=3)
    assert [t.get_text() for t in ax.texts] == ["error bars: mean ± sd over 3 runs"]
    note_error_bars(ax, 1, where="upper left")
    assert ax.texts[-1].get_text() == "one run (no error bar)"
    with pytest.raises(ValueError, match=r"where='middle'.*valid choices"):
        note_error_bars(ax, 3, where="middle")


def test_save_figure_names_the_variable_when_the_figures_folder_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("TL_FIGURES_DIR", str(blocker))
    with pytest.raises(OSError, match=r"TL_FIGURES_DIR.*set TL_FIGURES_DIR to a folder"):
        save_figure("01-curves", _figure())
    with pytest.raises(OSError, match=r"directory=.*not-a-folder.* not a folder"):
        save_figure("01-curves", _figure(), directory=blocker)


def test_save_figure_checks_the_folder_is_writable_before_rendering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    fig = _figure()
    rendered: list[str] = []
    monkeypatch.setattr(fig, "savefig", lambda *a, **k: rendered.append("png"))

    def read_only(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    with pytest.raises(OSError, match=r"cannot write to .*set TL_FIGURES_DIR"):
        save_figure("01-curves", fig)
    assert rendered == []
