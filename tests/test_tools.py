"""The tools package: its shared notebook helpers, the notebook times in ``notebooks/budgets.json``
(read by the tests and the runner, shown in README.md and slides/TEACHING.md), and imports that
need no path tricks and no torch."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools import budgets
from tools.notebooks import (
    NOTEBOOK_NAME,
    SAVE_FIGURE_CALL,
    cell_source,
    cell_tags,
    find_notebooks,
    first_line,
    is_figure_name,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = find_notebooks()


# --- tools.notebooks ---------------------------------------------------------------------------


def test_cell_helpers_read_both_source_shapes() -> None:
    cell = {"source": ["# title\n", "x = 1\n"], "metadata": {"tags": ["solution"]}}
    assert cell_source(cell) == "# title\nx = 1\n" == cell_source({"source": "# title\nx = 1\n"})
    assert cell_tags(cell) == ["solution"] and cell_tags({}) == []
    assert first_line("\n  \n  import torch  \nx") == "import torch" and first_line("") == ""


def test_names_of_notebooks_and_figures() -> None:
    assert NOTEBOOK_NAME.fullmatch("02_feature_extraction.ipynb")
    assert not NOTEBOOK_NAME.fullmatch("2_features.ipynb")
    assert not NOTEBOOK_NAME.fullmatch("02_Feature.ipynb")
    assert is_figure_name("01-learning-curves") and not is_figure_name("01_learning")
    assert not is_figure_name("01-x\n")
    calls = SAVE_FIGURE_CALL.findall("save_figure('01-a', fig)\nsave_figure(name=\"01-b\")")
    assert [name for _, name in calls] == ["01-a", "01-b"]


def test_find_notebooks_by_stem_number_file_or_path() -> None:
    first = NOTEBOOKS[0]
    assert find_notebooks([first.stem]) == [first]
    assert find_notebooks([first.stem[:2]]) == [first]
    assert find_notebooks([first.name]) == [first]
    assert find_notebooks([str(first)]) == [first.resolve()]
    with pytest.raises(ValueError, match=r"unknown notebook '99'.*valid choices: 00_welcome"):
        find_notebooks(["99"])


def test_no_path_tricks_in_tools_or_tests() -> None:
    hacks = [
        f"{path.relative_to(ROOT)}:{number}"
        for folder in ("tools", "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if re.search(r"sys\.path\.(insert|append)|spec_from_file_location", line)
        and path.name != Path(__file__).name
    ]
    assert not hacks, f"import the tools as a package (from tools import …), not by path: {hacks}"


def test_tools_and_file_writes_import_without_torch() -> None:
    code = (
        "import sys, tlhelpers.files, tools.figure_index, tools.budgets, tools.run_notebooks; "
        "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]", f"importing the tools loaded {proc.stdout.strip()}"


def test_package_names_stay_importable_from_the_lazy_package() -> None:
    import tlhelpers

    for name in tlhelpers.__all__:
        assert getattr(tlhelpers, name) is not None, name
    from tlhelpers import QUICK, fit

    assert QUICK.name == "quick" and fit.__module__ == "tlhelpers.train"
    with pytest.raises(AttributeError, match="re-exported here are"):
        _ = tlhelpers.not_a_name


# --- notebooks/budgets.json --------------------------------------------------------------------


def test_every_notebook_has_a_budget_and_every_budget_a_notebook() -> None:
    named = set(budgets.read_budgets().notebooks)
    stems = {p.stem for p in NOTEBOOKS}
    assert not stems - named, (
        f"notebooks without a time budget: {sorted(stems - named)}; add them to "
        "notebooks/budgets.json (budget_s and measured_quick_s), then run `make notebook-times`."
    )
    stale = sorted(named - stems)
    assert not stale, (
        f"notebooks/budgets.json names notebooks that do not exist: {stale}; remove them."
    )


def test_readme_and_teaching_show_the_budgets_file() -> None:
    stale = budgets.stale_tables()
    assert not stale, (
        f"{[str(p.relative_to(ROOT)) for p in stale]} show notebook times that differ from "
        "notebooks/budgets.json; run `make notebook-times` and commit the result."
    )


def test_tables_are_written_from_the_file(tmp_path: Path) -> None:
    data = {"reference_images_per_s": 1000, "notebooks": {
        "00_a": {"budget_s": 60, "measured_quick_s": 7.0},
        "01_b": {"budget_s": 120, "measured_quick_s": 92.0, "slower_cpu_s": 97, "cost": "it"},
    }}  # fmt: skip
    path = tmp_path / "budgets.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    read = budgets.read_budgets(path)
    assert read.budget_s == {"00_a": 60.0, "01_b": 120.0}
    page = tmp_path / "page.md"
    page.write_text(
        "before\n<!-- notebook-times: readme. generated -->\nold\n<!-- /notebook-times -->\nafter\n"
        "<!-- notebook-times: teaching -->\n<!-- /notebook-times -->\n",
        encoding="utf-8",
    )
    text = budgets.render_tables(page.read_text(encoding="utf-8"), read)
    assert "old" not in text and text.startswith("before\n") and "\nafter\n" in text
    assert "| `00_a` | 7 s | 1.0 min |" in text and "| `01_b` | 1.5 min | 2.0 min |" in text
    assert "| `01_b` | 92 s | 97 s | 120 s | it |" in text and "| `00_a` | 7 s | — |" in text
    assert budgets.stale_tables({page: "readme"}, read) == [page]
    page.write_text(text, encoding="utf-8")
    assert budgets.stale_tables({page: "readme"}, read) == []
    assert budgets.stale_tables({page: "other"}, read) == [page]  # no such block: missing


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"budget_s": 0, "measured_quick_s": 7}, r"00_a\.budget_s=0 must be a positive"),
        ({"budget_s": 60}, r"00_a\.measured_quick_s=None must be a positive"),
        ({"budget_s": 60, "measured_quick_s": 7, "seconds": 1}, r"valid keys: \['budget_s'"),
    ],
)
def test_a_bad_budget_names_the_entry_and_the_fix(
    tmp_path: Path, entry: dict, message: str
) -> None:
    path = tmp_path / "budgets.json"
    path.write_text(
        json.dumps({"reference_images_per_s": 1000, "notebooks": {"00_a": entry}}),
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=message) as error:
        budgets.read_budgets(path)
    assert "make notebook-times" in str(error.value)


def test_a_missing_budgets_file_says_how_to_restore_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="git checkout"):
        budgets.read_budgets(tmp_path / "budgets.json")
