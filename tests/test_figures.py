"""Course figures: the committed list ``slides/figures.json`` matches the notebooks' save_figure
calls (so a figure that disappears or is saved twice fails here), the index page names the cell,
profile and seed of each figure, regenerating gives byte-identical files, and asking for the
full profile without a GPU warns with an estimate."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from tools import budgets
from tools import figure_index as figures

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _notebook(*cells: dict, parameters: dict | None = None) -> dict:
    metadata = {"papermill": {"parameters": parameters}} if parameters else {}
    return {"cells": list(cells), "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}


def _code(source: str, tags: tuple[str, ...] = (), count: int | None = None) -> dict:
    return {
        "cell_type": "code",
        "source": source,
        "metadata": {"tags": list(tags)},
        "outputs": [],
        "execution_count": count,
    }


def _markdown(source: str) -> dict:
    return {"cell_type": "markdown", "source": source, "metadata": {}}


# --- the committed list ------------------------------------------------------------------------


def test_every_notebook_figure_is_listed_and_every_listed_figure_is_saved(
) -> None:
    manifest = figures.read_manifest()
    found = figures.scan_notebooks(NOTEBOOKS)
    problems = figures.manifest_problems(manifest, found)
    stale = sorted(set(manifest) - set(found))
    assert not stale, (
        f"slides/figures.json lists notebooks that do not exist: {stale}; run "
        "`make figures-manifest`"
    )
    assert not problems, "figures:\n" + "\n".join(problems)
    assert sum(len(names) for names in manifest.values()) >= len(NOTEBOOKS)


def test_a_figure_that_disappears_is_reported() -> None:
    found = {"01_x": figures.figure_sources(_notebook(_code('save_figure("01-kept")')), "01_x")}
    problems = figures.manifest_problems({"01_x": ["01-kept", "01-gone"]}, found)
    assert len(problems) == 1
    assert "'01-gone'" in problems[0] and "any more" in problems[0]
    assert "make figures-manifest" in problems[0]


def test_a_duplicated_or_misnamed_figure_is_reported() -> None:
    one = _notebook(_code('save_figure("01-same")\nsave_figure("02-wrong-prefix")'))
    two = _notebook(_markdown("# two"), _code("save_figure('01-same', fig)"))
    found = {
        "01_one": figures.figure_sources(one, "01_one"),
        "03_two": figures.figure_sources(two, "03_two"),
    }
    manifest = {"01_one": ["01-same", "02-wrong-prefix"], "03_two": ["01-same"]}
    text = "\n".join(figures.manifest_problems(manifest, found))
    assert "'02-wrong-prefix' should start with 01-" in text
    assert "'01-same' should start with 03-" in text
    assert "notebooks/03_two.ipynb cell 1: figure '01-same' is also saved by " in text
    unlisted = figures.manifest_problems({"01_one": []}, {"01_one": found["01_one"]})
    assert any("not listed in slides/figures.json" in p for p in unlisted)


def test_cell_index_ignores_papermills_injected_cell() -> None:
    executed = _notebook(
        _code("profile = 'quick'", tags=("parameters",), count=1),
        _code("profile = 'full'", tags=("injected-parameters",), count=2),
        _markdown("## Section"),
        _code('fig = make()\nsave_figure("00-demo", fig)', count=3),
    )
    (source,) = figures.figure_sources(executed, "00_demo")
    assert (source.name, source.cell, source.execution_count) == ("00-demo", 2, 3)
    assert source.source_head == "fig = make()"


def test_read_manifest_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make figures-manifest"):
        figures.read_manifest(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"notebooks": ["01-x"]}', encoding="utf-8")
    with pytest.raises(ValueError, match="make figures-manifest"):
        figures.read_manifest(bad)


def test_write_manifest_round_trips(tmp_path: Path) -> None:
    found = figures.scan_notebooks(NOTEBOOKS)
    path = figures.write_manifest(found, tmp_path / "figures.json")
    assert figures.read_manifest(path) == {k: [f.name for f in v] for k, v in found.items()}
    assert path.read_text(encoding="utf-8") == (ROOT / "slides" / "figures.json").read_text(
        encoding="utf-8"
    ), "slides/figures.json is not what `make figures-manifest` writes; run it"


# --- the index page ----------------------------------------------------------------------------


def test_index_names_cell_profile_and_seed(tmp_path: Path) -> None:
    executed = _notebook(
        _code("profile = 'quick'", tags=("parameters",), count=1),
        _code("profile = 'full'\nseed = 3", tags=("injected-parameters",), count=2),
        _code('ax = plot("<a & b>")\nsave_figure("07-curves", ax)', count=3),
        _code('save_figure("07-missing")', count=4),
        parameters={"profile": "full", "seed": 3},
    )
    path = tmp_path / "executed" / "07_demo.ipynb"
    path.parent.mkdir()
    path.write_text(json.dumps(executed), encoding="utf-8")
    out = tmp_path / "figures"
    out.mkdir()
    (out / "07-curves.png").write_bytes(b"\x89PNG one")
    (out / "07-curves.svg").write_text("<svg/>", encoding="utf-8")
    (out / "07-dynamic.png").write_bytes(b"\x89PNG two")
    problems = figures.record_notebook(out, path, ["07-curves", "07-missing"])
    assert any("07-missing.png but it was not written" in p for p in problems)
    assert any("07-dynamic.png" in p and "literal" in p for p in problems)
    entry = json.loads((out / "index.json").read_text(encoding="utf-8"))["figures"]["07-curves"]
    assert entry["cell"] == 1 and entry["execution_count"] == 3
    assert (entry["profile"], entry["seed"]) == ("full", 3)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert '<img src="07-curves.png"' in page and '<a href="07-curves.svg">' in page
    assert "notebook <code>07_demo</code>, cell 1 (In [3])" in page
    assert "ax = plot(&quot;&lt;a &amp; b&gt;&quot;)" in page  # escaped
    assert "full profile, seed 3" in page
    assert "http" not in page.replace("07-", "")  # relative links only


def test_index_keeps_other_notebooks_entries(tmp_path: Path) -> None:
    out = tmp_path / "figures"
    for stem, name in (("01_a", "01-x"), ("02_b", "02-y")):
        path = tmp_path / f"{stem}.ipynb"
        nb = _notebook(_code(f'save_figure("{name}")'), parameters={"profile": "quick", "seed": 0})
        path.write_text(json.dumps(nb), encoding="utf-8")
        out.mkdir(exist_ok=True)
        (out / f"{name}.png").write_bytes(b"png")
        assert figures.record_notebook(out, path, [name]) == []
    index = json.loads((out / "index.json").read_text(encoding="utf-8"))
    assert list(index["figures"]) == ["01-x", "02-y"]


def test_remove_figures_touches_only_that_notebook(tmp_path: Path) -> None:
    for name in ("01-a.png", "01-a.svg", "02-b.png", "01-notes.txt", "index.html"):
        (tmp_path / name).write_bytes(b"")
    removed = figures.remove_figures(tmp_path, "01_pretraining")
    assert sorted(p.name for p in removed) == ["01-a.png", "01-a.svg"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01-notes.txt", "02-b.png", "index.html"]


# --- the full profile on a CPU -----------------------------------------------------------------


def test_full_profile_warning_estimates_from_quick_timings() -> None:
    text = budgets.cpu_time_warning(
        ["00_a", "01_b", "05_new"], {"00_a": 6.0, "01_b": 60.0}, (80.0, 100.0)
    )
    assert text.startswith("WARNING: profile 'full'") and "no CUDA GPU" in text
    assert "00_a" in text and "8-10 min" in text  # 6 s × 80..100
    assert "01_b" in text and "1.3-1.7 h" in text  # 60 s × 80..100
    assert "not timed in the quick profile yet: 05_new" in text
    assert "× 80 to 100" in text and "assuming" in text and "PROFILE=quick" in text


def test_quick_seconds_prefers_a_successful_quick_run(tmp_path: Path) -> None:
    timings = tmp_path / "timings.json"
    timings.write_text(
        json.dumps(
            {
                "00_welcome": {"ok": True, "profile": "quick", "execution_s": 5.5},
                "01_pretraining": {"ok": False, "profile": "quick", "execution_s": 1.0},
            }
        ),
        encoding="utf-8",
    )
    measured = budgets.read_budgets().measured_quick_s
    seconds = budgets.quick_seconds(timings)
    assert seconds["00_welcome"] == 5.5
    assert seconds["01_pretraining"] == measured["01_pretraining"]
    assert budgets.quick_seconds(tmp_path / "absent.json") == measured


def test_make_figures_full_on_a_cpu_prints_the_warning(
    runner: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = []

    def fake_run(notebook: Path, **kwargs: object) -> object:
        calls.append(kwargs["profile"])
        return runner.NotebookRun(
            notebook=notebook, output=Path("/nonexistent.ipynb"), profile="full", seed=0,
            offline=False, returncode=0, wall_s=0.0,
        )  # fmt: skip

    monkeypatch.setattr(runner, "run_notebook", fake_run)
    monkeypatch.setattr(runner, "_cuda_available", lambda: False)
    monkeypatch.setattr(runner, "update_timings_json", lambda path, run: None)
    assert runner.main(["00_welcome", "--profile", "full", "--output-dir", "/tmp/unused"]) == 0
    assert calls == ["full"]
    err = capsys.readouterr().err
    assert "WARNING: profile 'full'" in err and "00_welcome" in err


# --- regenerating ------------------------------------------------------------------------------


@pytest.mark.notebooks
@pytest.mark.slow
def test_figures_are_byte_identical_across_runs(
    runner: ModuleType, welcome_run: dict[str, Path], tmp_path: Path
) -> None:
    """Notebook 00 twice, same profile and seed: identical PNG and SVG bytes, same index."""
    again = {"executed": tmp_path / "executed", "figures": tmp_path / "figures"}
    code = runner.main(
        [
            "00_welcome",
            *("--profile", "quick", "--seed", "0", "--offline", "auto", "--timeout", "300"),
            *("--output-dir", str(again["executed"]), "--figures-dir", str(again["figures"])),
            *("--cache-dir", str(ROOT / "build" / "test-cache" / "00_welcome")),
        ]
    )
    assert code == 0
    first, second = welcome_run["figures"], again["figures"]
    expected = figures.read_manifest()["00_welcome"]
    made = sorted(p.stem for p in first.glob("*.png"))
    assert made == sorted(expected), "make figures wrote other files than slides/figures.json lists"
    for name in expected:
        for suffix in (".png", ".svg"):
            assert (first / f"{name}{suffix}").read_bytes() == (
                second / f"{name}{suffix}"
            ).read_bytes(), f"{name}{suffix} differs between two runs with the same seed"
    index_one = json.loads((first / "index.json").read_text(encoding="utf-8"))
    index_two = json.loads((second / "index.json").read_text(encoding="utf-8"))
    assert index_one == index_two
    entry = index_one["figures"][expected[0]]
    assert (entry["notebook"], entry["profile"], entry["seed"]) == ("00_welcome", "quick", 0)
    page = (first / "index.html").read_text(encoding="utf-8")
    assert f'<img src="{expected[0]}.png"' in page and f"cell {entry['cell']}" in page
