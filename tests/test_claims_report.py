"""Tests for tools.claims_report: claims × seeds logged, reported with the worst first."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest

from tlhelpers.claims import ClaimError, claim_at_least, claim_greater
from tools import claims_report
from tools.notebooks import find_notebooks


def _log_run(out: Path, notebook: str, seed: int, accuracy: float,
             monkeypatch: pytest.MonkeyPatch) -> None:
    """Log the claims a notebook would make, through the real claims module."""
    path = out / f"seed-{seed}" / f"{notebook}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("TL_CLAIMS_LOG", str(path))
    with contextlib.suppress(ClaimError):  # a notebook run stops at its first failing claim
        claim_at_least(accuracy, 80, label="accuracy", unit="%")
        claim_greater(accuracy, 80, margin=5, a_label="fine-tuned", b_label="probe", unit="%")


def test_report_ranks_margins_and_lists_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for seed, accuracy in ((0, 96.0), (1, 91.0), (2, 84.0)):
        _log_run(tmp_path, "03_fine_tuning", seed, accuracy, monkeypatch)
    summary = claims_report.summarise(claims_report.collect(tmp_path), {})
    assert summary["seeds"] == [0, 1, 2]
    first, second = summary["claims"]
    assert first["statement"] == "accuracy ≥ 80%"
    assert first["failed_seeds"] == [] and first["worst_slack"] == pytest.approx(4.0)
    assert second["failed_seeds"] == ["2"] and second["worst_slack"] == pytest.approx(-1.0)
    assert second["seeds"]["0"]["slack"] == pytest.approx(11.0)
    assert not second["seeds"]["2"]["caught"]  # the run stopped there: a real failure
    text = claims_report.render_markdown(summary)
    assert "2 claims, seeds 0, 1, 2; 1 claim(s) failed" in text
    smallest = text.split("## The 10 smallest margins")[1].split("## Every claim")[0]
    assert smallest.index("fine-tuned > probe") < smallest.index("accuracy ≥ 80%")  # -1 first
    assert "✗ -1 ⚑" in text


def test_report_files_are_written_and_main_exits_1_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _log_run(tmp_path, "02_feature_extraction", 0, 97.0, monkeypatch)
    assert claims_report.main(["--out", str(tmp_path), "--from-logs"]) == 0
    data = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert [c["statement"] for c in data["claims"]] == ["accuracy ≥ 80%",
                                                         "fine-tuned > probe by more than 5%"]
    assert (tmp_path / "report.md").read_text(encoding="utf-8").startswith("# Claims report")
    _log_run(tmp_path, "02_feature_extraction", 1, 85.0, monkeypatch)
    assert claims_report.main(["--out", str(tmp_path), "--from-logs"]) == 1
    assert "report:" in capsys.readouterr().out


def test_bad_seeds_and_notebooks_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        claims_report.main(["--seeds", "-1", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        claims_report.main(["--notebooks", "99", "--out", str(tmp_path)])


def test_short_notebook_names() -> None:
    assert [p.stem for p in find_notebooks(["03"])] == ["03_fine_tuning"]
    assert [p.stem for p in find_notebooks(["00_welcome"])] == ["00_welcome"]


def test_a_failure_the_notebook_caught_is_a_demonstration_not_a_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "seed-0" / "00_welcome.jsonl"
    path.parent.mkdir(parents=True)
    monkeypatch.setenv("TL_CLAIMS_LOG", str(path))
    with contextlib.suppress(ClaimError):  # the notebook shows what a failing claim looks like
        claim_at_least(87.0, 99, label="1-NN accuracy", unit="%")
    claim_greater(92.0, 87.0, a_label="10 shots", b_label="5 shots", unit="%")  # the run goes on
    summary = claims_report.summarise(claims_report.collect(tmp_path), {})
    demo, later = summary["claims"]
    assert demo["seeds"]["0"]["caught"] and demo["failed_seeds"] == []
    assert demo["worst_slack"] is None  # not ranked among the smallest margins
    assert later["failed_seeds"] == [] and later["worst_slack"] == pytest.approx(5.0)
    assert "caught -12" in claims_report.render_markdown(summary)


def test_a_relative_out_reaches_the_kernels_as_an_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    given: list[Path] = []

    def fake_run_all(notebooks: object, seeds: object, out: Path) -> dict[str, str]:
        given.append(out)
        return {}

    monkeypatch.setattr(claims_report, "run_all", fake_run_all)
    assert claims_report.main(["--notebooks", "00", "--out", "relative/claims"]) == 0
    assert given == [tmp_path / "relative" / "claims"]
