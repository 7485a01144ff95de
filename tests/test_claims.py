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
    claim_at_least,
    claim_at_most,
    claim_between,
    claim_close,
    claim_greater,
    claim_true,
    format_number,
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
    assert out.startswith("✓ pretrained > scratch — ")
    assert "91.25%" in out and "71.5%" in out and "19.75%" in out
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
    with pytest.raises(ClaimError, match=r"by more than 5 .*margin 5"):
        claim_greater(10.0, 6.0, margin=5.0, a_label="a", b_label="b")
    with pytest.raises(ClaimError):  # strictly more than the margin
        claim_greater(10.0, 5.0, margin=5.0, a_label="a", b_label="b")


def test_greater_per_seed_compares_means_and_shows_spread(
    capsys: pytest.CaptureFixture[str],
) -> None:
    claim = claim_greater(
        [90.0, 92.0, 94.0], np.array([70.0, 95.0, 75.0]), a_label="ft", b_label="lp", unit="%"
    )
    assert "ft 92 ± 2% (n=3)" in claim.details
    assert "lp 80 ± 13.23" not in claim.details  # std shown to two significant digits
    assert "lp 80 ± 13% (n=3)" in claim.details
    assert "✓" in capsys.readouterr().out


def test_greater_every_seed() -> None:
    claim = claim_greater(
        [5, 6, 7], [1, 2, 3], margin=3.0, every_seed=True, a_label="a", b_label="b"
    )
    assert "on every seed" in claim.statement and "smallest per-seed difference 4" in claim.details
    # the means differ enough but seed 1 does not
    with pytest.raises(ClaimError, match=r"smallest per-seed difference -5 \(seed position 1\)"):
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
    with pytest.raises(ClaimError, match=r"source accuracy 0\.85; threshold 0\.9"):
        claim_at_least(0.85, 0.9, label="source accuracy")


def test_at_least_every_seed() -> None:
    claim_at_least([91, 93], 90, label="acc", unit="%")  # mean
    with pytest.raises(ClaimError, match="per seed 95, 89"):
        claim_at_least([95, 89], 90, label="acc", unit="%", every_seed=True)


def test_at_most() -> None:
    claim = claim_at_most(42.0, 60, label="seconds", unit="s")
    assert "seconds 42 s" in claim.details and "threshold 60 s" in claim.details
    with pytest.raises(ClaimError, match=r"seconds 61\.5 s"):
        claim_at_most(61.5, 60, label="seconds", unit="s")
    with pytest.raises(ClaimError, match="is NaN"):
        claim_at_most(NAN, 60, label="seconds")
    with pytest.raises(ValueError, match="threshold is NaN"):
        claim_at_most(1.0, NAN, label="seconds")


def test_between() -> None:
    claim = claim_between(0.5, 0.0, 1.0, label="ratio")
    assert "interval [0, 1]" in claim.details
    assert claim_between(1.0, 0.0, 1.0, label="ratio").passed  # inclusive
    with pytest.raises(ClaimError, match=r"ratio 1\.2; interval \[0, 1\]"):
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
    assert capsys.readouterr().out.strip() == "✓ early layers transfer — cos 0.91"
    with pytest.raises(ClaimError, match=r"✗ later layers transfer — cos 0\.12"):
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
    assert format_number(value) == text


def test_claim_error_survives_pickling() -> None:
    with pytest.raises(ClaimError) as info:
        claim_at_least(1.0, 2.0, label="x")
    copy = pickle.loads(pickle.dumps(info.value))
    assert copy.claim == info.value.claim and str(copy) == str(info.value)


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
