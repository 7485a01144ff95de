"""Tests for tlhelpers.claims: passing and failing claims, their messages, and bad arguments."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from tlhelpers.claims import (
    Claim,
    ClaimError,
    _format_number,
    claim_at_least,
    claim_at_most,
    claim_between,
    claim_close,
    claim_greater,
    claim_true,
)

NAN = float("nan")


def test_claim_error_is_an_assertion_error() -> None:
    assert issubclass(ClaimError, AssertionError)


# --- claim_greater -------------------------------------------------------------------------------


def test_greater_passes_prints_and_returns_claim(capsys: pytest.CaptureFixture[str]) -> None:
    claim = claim_greater(91.25, 71.5, a_label="pretrained", b_label="scratch", unit="%")
    assert isinstance(claim, Claim) and claim.passed
    out = capsys.readouterr().out.strip()
    assert out == str(claim)
    assert out.startswith("✓ pretrained > scratch: ")
    assert "91.2%" in out and "71.5%" in out and "+19.8%" in out  # three significant digits
    assert out.count("\n") == 0


def test_greater_fails_with_numbers() -> None:
    with pytest.raises(ClaimError) as info:
        claim_greater(70.0, 71.5, a_label="pretrained", b_label="scratch", unit="%")
    message = str(info.value)
    assert message.startswith("✗ pretrained > scratch")
    assert "70%" in message and "71.5%" in message and "-1.5%" in message
    assert info.value.claim.passed is False


def test_greater_margin() -> None:
    claim_greater(10.0, 4.0, margin=5.0, a_label="a", b_label="b")
    with pytest.raises(ClaimError, match=r"by more than 5: 10 vs 6; \+4 ≤ 5"):
        claim_greater(10.0, 6.0, margin=5.0, a_label="a", b_label="b")
    with pytest.raises(ClaimError):  # strictly more than the margin
        claim_greater(10.0, 5.0, margin=5.0, a_label="a", b_label="b")


def test_greater_per_seed_compares_means_and_shows_spread(
    capsys: pytest.CaptureFixture[str],
) -> None:
    claim = claim_greater(
        [90.0, 92.0, 94.0], np.array([70.0, 95.0, 75.0]), a_label="ft", b_label="lp", unit="%"
    )
    assert claim.details.startswith("92 ± 2% (n=3) vs ")
    assert "80 ± 13.23" not in claim.details  # sd shown to two significant digits
    assert "vs 80 ± 13% (n=3)" in claim.details
    assert "ft" not in claim.details  # the statement already names both sides
    assert "✓" in capsys.readouterr().out


def test_greater_every_seed() -> None:
    claim = claim_greater(
        [5, 6, 7], [1, 2, 3], margin=3.0, every_seed=True, a_label="a", b_label="b"
    )
    assert "on every seed" in claim.statement and "worst run +4" in claim.details
    # the means differ enough but seed 1 does not
    with pytest.raises(ClaimError, match=r"worst run -5"):
        claim_greater([90, 70, 95], [60, 75, 60], every_seed=True, a_label="a", b_label="b")
    # a single number is compared with every seed
    claim_greater(torch.tensor([0.5, 0.6]), 0.1, every_seed=True, a_label="a", b_label="chance")


def test_greater_every_seed_length_mismatch() -> None:
    with pytest.raises(ValueError, match="a has 3 values and b has 2"):
        claim_greater([3, 4, 5], [1, 2], every_seed=True, a_label="a", b_label="b")


@pytest.mark.parametrize("margin", [-0.1, NAN])
def test_greater_bad_margin(margin: float) -> None:
    with pytest.raises(ValueError, match="margin"):
        claim_greater(2.0, 1.0, margin=margin, a_label="a", b_label="b")


def test_greater_nan() -> None:
    with pytest.raises(ClaimError, match="b is NaN"):
        claim_greater(1.0, NAN, a_label="a", b_label="b")
    with pytest.raises(ClaimError, match=r"a is NaN at position\(s\) \[1\]"):
        claim_greater([1.0, NAN], [0.0, 0.0], a_label="a", b_label="b")


def test_bad_values() -> None:
    with pytest.raises(TypeError, match="text"):
        claim_greater("3", 1.0, a_label="a", b_label="b")
    with pytest.raises(ValueError, match="empty"):
        claim_greater([], 1.0, a_label="a", b_label="b")
    with pytest.raises(ValueError, match="label"):
        claim_greater(2.0, 1.0, a_label="", b_label="b")


# --- bounds --------------------------------------------------------------------------------------


def test_at_least() -> None:
    claim = claim_at_least(0.93, 0.9, label="source accuracy")
    assert claim.statement == "source accuracy ≥ 0.9"
    assert claim_at_least(0.9, 0.9, label="x").passed  # inclusive
    with pytest.raises(ClaimError, match=r"≥ 0\.9: 0\.85; threshold 0\.9"):
        claim_at_least(0.85, 0.9, label="source accuracy")


def test_at_least_every_seed() -> None:
    claim_at_least([91, 93], 90, label="acc", unit="%")  # mean
    with pytest.raises(ClaimError, match="runs 95, 89"):
        claim_at_least([95, 89], 90, label="acc", unit="%", every_seed=True)


def test_at_most() -> None:
    claim = claim_at_most(42.0, 60, label="seconds", unit="s")
    assert claim.details == "42 s; threshold 60 s"
    with pytest.raises(ClaimError, match=r": 61\.5 s"):
        claim_at_most(61.5, 60, label="seconds", unit="s")
    with pytest.raises(ClaimError, match="is NaN"):
        claim_at_most(NAN, 60, label="seconds")
    with pytest.raises(ValueError, match="threshold is NaN"):
        claim_at_most(1.0, NAN, label="seconds")


def test_between() -> None:
    claim = claim_between(0.5, 0.0, 1.0, label="ratio")
    assert "interval [0, 1]" in claim.details
    assert claim_between(1.0, 0.0, 1.0, label="ratio").passed  # inclusive
    with pytest.raises(ClaimError, match=r": 1\.2; interval \[0, 1\]"):
        claim_between(1.2, 0.0, 1.0, label="ratio")
    with pytest.raises(ClaimError):
        claim_between([0.5, 1.5], 0.0, 1.2, label="ratio", every_seed=True)
    with pytest.raises(ValueError, match="low <= high"):
        claim_between(0.5, 1.0, 0.0, label="ratio")
    with pytest.raises(ClaimError, match="NaN"):
        claim_between(NAN, 0.0, 1.0, label="ratio")


# --- close ---------------------------------------------------------------------------------------


def test_close() -> None:
    claim = claim_close(80.0, 81.5, tolerance=2.0, a_label="frozen", b_label="fine-tuned", unit="%")
    assert "gap 1.5%" in claim.details and "tolerance 2%" in claim.details
    with pytest.raises(ClaimError, match=r"gap 5%.*tolerance 2%"):
        claim_close(80.0, 85.0, tolerance=2.0, a_label="a", b_label="b", unit="%")
    with pytest.raises(ValueError, match="tolerance"):
        claim_close(1.0, 1.0, tolerance=-1.0, a_label="a", b_label="b")
    with pytest.raises(ClaimError, match="a is NaN"):
        claim_close(NAN, 1.0, tolerance=1.0, a_label="a", b_label="b")


# --- claim_true ----------------------------------------------------------------------------------


def test_true(capsys: pytest.CaptureFixture[str]) -> None:
    claim = claim_true(np.bool_(True), statement="early layers transfer", details="cos 0.91")
    assert claim.passed
    assert capsys.readouterr().out.strip() == "✓ early layers transfer: cos 0.91"
    with pytest.raises(ClaimError, match=r"✗ later layers transfer: cos 0\.12"):
        claim_true(False, statement="later layers transfer", details="cos 0.12")
    with pytest.raises(TypeError, match="not a bool"):
        claim_true(1, statement="x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="statement"):
        claim_true(True, statement="")


# --- formatting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (91.3, "91.3"),
        (91.3456, "91.35"),
        (0.52341, "0.5234"),
        (5.0, "5"),
        (0.0, "0"),
        (-3.14159, "-3.142"),
        (1234.5, "1234"),  # four significant digits (the 0.5 rounds to even)
        (123456.0, "1.23e+05"),
        (0.0001234, "0.000123"),
        (7, "7"),
        (math.inf, "inf"),
    ],
)
def test_format_number(value: float, text: str) -> None:
    assert _format_number(value) == text


def test_claim_error_survives_pickling() -> None:
    with pytest.raises(ClaimError) as info:
        claim_at_least(1.0, 2.0, label="x")
    copy = pickle.loads(pickle.dumps(info.value))
    assert copy.claim == info.value.claim and str(copy) == str(info.value)


# --- short lines, slack, the log and report ------------------------------------------------------


def test_single_runs_show_no_spread_and_lines_stay_short() -> None:
    claim = claim_greater([91.0], [80.0], a_label="fine-tuned", b_label="probe", unit="%")
    assert "±" not in claim.details and "n=1" not in claim.details
    claim = claim_greater(
        [91.0, 92.0, 90.5], [80.0, 81.0, 79.0], margin=5, every_seed=True,
        a_label="fine-tuned", b_label="probe", unit="%",
    )
    assert len(str(claim)) <= 120, str(claim)
    assert str(claim).count("fine-tuned") == 1  # the label is not repeated


def test_custom_statement_keeps_the_labels_it_does_not_name() -> None:
    claim = claim_greater(3.0, 1.0, a_label="ft", b_label="lp", statement="fine-tuning wins")
    assert claim.details.startswith("ft 3 vs lp 1")


def test_slack_is_the_distance_from_failing() -> None:
    assert claim_greater(10.0, 4.0, margin=5.0, a_label="a", b_label="b").slack == 1.0
    assert claim_greater([9, 12], [4, 4], margin=4, every_seed=True, a_label="a",
                         b_label="b").slack == 1.0  # the worst run, not the mean
    assert claim_at_least([91, 95], 90, label="acc", every_seed=True).slack == 1.0
    assert claim_at_most(42.0, 60, label="s").slack == 18.0
    assert claim_between(0.25, 0.0, 1.0, label="r").slack == 0.25
    assert claim_close(1.0, 1.5, tolerance=2.0, a_label="a", b_label="b").slack == 1.5
    assert claim_true(True, statement="x").slack is None


def test_claims_log_records_passes_and_failures(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    log = tmp_path / "claims.jsonl"
    monkeypatch.setenv("TL_CLAIMS_LOG", str(log))
    claim_at_least([91, 95], 90, label="acc", unit="%")
    with pytest.raises(ClaimError):
        claim_greater(1.0, 2.0, a_label="a", b_label="b")
    first, second = (json.loads(line) for line in log.read_text().splitlines())
    assert first["passed"] and first["slack"] == 3.0 and first["bound"] == 90 and first["n"] == 2
    assert not second["passed"] and second["slack"] == -1.0 and second["statement"] == "a > b"


def test_claim_is_not_echoed_in_a_notebook() -> None:
    claim = claim_true(True, statement="x")
    assert claim._ipython_display_() is None  # IPython calls this instead of showing the repr


def test_report_prints_the_sentence_after_its_claims(capsys: pytest.CaptureFixture[str]) -> None:
    from tlhelpers.claims import report

    gap = 12.3
    report(f"Fine-tuning leads by {gap:.1f} points.",
           claim_greater(92.3, 80.0, a_label="ft", b_label="lp"))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("✓ ft > lp") and lines[1] == "Fine-tuning leads by 12.3 points."
    with pytest.raises(TypeError, match="at least one Claim"):
        report("A sentence nothing checks.")
    with pytest.raises(ValueError, match="sentence"):
        report("", claim_true(True, statement="x"))


# --- infinities and booleans never support a claim -------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: claim_at_least(math.inf, 90, label="acc"), ClaimError, "acc is NaN or infinite"),
        (lambda: claim_at_most(-math.inf, 1, label="loss"), ClaimError, "loss is NaN or infinite"),
        (
            lambda: claim_greater([1.0, math.inf], [0.0, 0.0], a_label="a", b_label="b"),
            ClaimError,
            r"a is NaN or infinite at position\(s\) \[1\]",
        ),
        (
            lambda: claim_greater(True, False, a_label="a", b_label="b"),
            TypeError,
            "a=True is a boolean",
        ),
        (
            lambda: claim_at_least(np.array([True, True]), 0, label="hits"),
            TypeError,
            "is a boolean",
        ),
        (lambda: claim_at_least(1.0, True, label="x"), TypeError, "threshold=True is a boolean"),
        (lambda: claim_at_least(1.0, math.inf, label="x"), ValueError, "threshold is infinite"),
        (
            lambda: claim_greater(2, 1, a_label="a", b_label="b", margin=math.inf),
            ValueError,
            "margin=inf must be a finite",
        ),
        (
            lambda: claim_close(1, 2, tolerance=math.inf, a_label="a", b_label="b"),
            ValueError,
            "tolerance=inf must be a finite",
        ),
        (lambda: claim_between(5, -math.inf, math.inf, label="x"), ValueError, "low is infinite"),
    ],
)
def test_claims_refuse_infinities_and_booleans(call, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()
