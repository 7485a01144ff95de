"""Bad input across the public API: each call fails at the public function, before any work,
with an error that names the argument, the value and the fix (not a deep torch/numpy error)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tlhelpers.data import GlyphStyle, ImageSet
from tlhelpers.data.reviews import load_reviews
from tlhelpers.data.tasks import few_shot
from tlhelpers.data.worlds import glyph_world
from tlhelpers.features import extract_features, linear_probe, probe_accuracy
from tlhelpers.models import SmallCNN
from tlhelpers.transferability import h_score, logme

WIDTHS = (4, 4, 8, 8)
RNG = np.random.default_rng(0)
FEATURES = RNG.normal(size=(40, 6))
LABELS = np.arange(40) % 4


def _model() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN(10, widths=WIDTHS)


def _pool_missing_a_class() -> ImageSet:
    images = torch.zeros(6, 3, 8, 8, dtype=torch.uint8)
    return ImageSet(images, torch.tensor([0, 1, 0, 1, 0, 1]), ("zero", "one", "two"), "pool")


def _nan_features() -> np.ndarray:
    x = FEATURES.copy()
    x[3, 2] = math.nan
    return x


CASES: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    (
        "extract_features on zero images",
        lambda: extract_features(_model(), torch.zeros(0, 3, 32, 32), cache=False),
        ValueError,
        r"data holds no images \(shape \(0, 3, 32, 32\)\)",
    ),
    (
        "one-channel images into a three-channel network",
        lambda: extract_features(_model(), torch.zeros(2, 1, 32, 32), cache=False),
        ValueError,
        r"1 channel\(s\) per image but SmallCNN takes 3.*repeat\(1, 3, 1, 1\)",
    ),
    (
        "probe widths that differ between train and test",
        lambda: probe_accuracy(FEATURES, LABELS, FEATURES[:, :4], LABELS),
        ValueError,
        r"test features have 4 columns but training features 6",
    ),
    (
        "a fitted probe scoring features of another width",
        lambda: linear_probe(FEATURES, LABELS, max_iter=5).score(FEATURES[:, :3], LABELS),
        ValueError,
        r"shape \(40, 3\) do not fit this probe, which was fitted on 6 columns",
    ),
    (
        "NaN in probe features",
        lambda: linear_probe(_nan_features(), LABELS),
        ValueError,
        r"NaN or infinite values in 1 row\(s\), the first row 3",
    ),
    (
        "NaN in probe test features",
        lambda: probe_accuracy(FEATURES, LABELS, _nan_features(), LABELS),
        ValueError,
        r"NaN or infinite",
    ),
    (
        "probe C that is not finite",
        lambda: linear_probe(FEATURES, LABELS, C=math.inf),
        ValueError,
        r"C=inf must be a finite number > 0",
    ),
    (
        "features scaled to 1e200 in LogME",
        lambda: logme(FEATURES * 1e200, LABELS),
        ValueError,
        r"features reach a magnitude of .*e\+200.*Standardise them",
    ),
    (
        "features scaled to 1e-200 in LogME",
        lambda: logme(FEATURES * 1e-200, LABELS),
        ValueError,
        r"magnitude of .*e-200",
    ),
    (
        "a world with no classes",
        lambda: glyph_world("empty", "train", 10, classes=(), fonts=()),
        ValueError,
        r"classes=\(\) is empty; a world needs at least one class",
    ),
    (
        "NaN rotation in a glyph style",
        lambda: GlyphStyle(rotation=math.nan),
        ValueError,
        r"rotation=nan must be a finite number >= 0",
    ),
    (
        "infinite shear in a glyph style",
        lambda: GlyphStyle(shear=math.inf),
        ValueError,
        r"shear=inf must be a finite number",
    ),
    (
        "an infinite blur range",
        lambda: GlyphStyle(blur=(0.0, math.inf)),
        ValueError,
        r"blur=\(0\.0, inf\) must be a range",
    ),
    (
        "a NaN noise level",
        lambda: GlyphStyle(noise=math.nan),
        ValueError,
        r"noise=nan",
    ),
    (
        "a few-shot split with an empty class",
        lambda: few_shot(_pool_missing_a_class(), 1, 0),
        ValueError,
        r"class\(es\) 'two' have no images at all in 'pool'",
    ),
]


@pytest.mark.parametrize(("case", "call", "error", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_fails_with_an_error_that_names_it(
    case: str, call: Callable[[], object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call()


def test_h_score_is_unchanged_by_any_scale_of_the_features() -> None:
    reference = h_score(FEATURES, LABELS)
    for scale in (1e-200, 1e200, 3.0):
        assert h_score(FEATURES * scale, LABELS) == pytest.approx(reference, rel=1e-9)
    assert h_score(FEATURES * 2.0**-40, LABELS) == reference  # a power of two: bit for bit


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r"films\.jsonl:2: not a JSON object"),
        ("[1, 2]", r"films\.jsonl:2: malformed review \[1, 2\]"),
        ('"text"', r"films\.jsonl:2: malformed review"),
        (
            json.dumps({"id": 7, "domain": "films", "label": "pos", "split": "train", "text": "x"}),
            r"films\.jsonl:2: malformed review .*exactly the keys",
        ),
    ],
)
def test_a_malformed_review_line_names_the_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    good = {"id": "films-001", "domain": "films", "label": "pos", "split": "train", "text": "ok"}
    (tmp_path / "films.jsonl").write_text(json.dumps(good) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_reviews("films", folder=tmp_path)


def test_a_review_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "films.jsonl").write_bytes(b"\xff\xfe{}\n")
    with pytest.raises(ValueError, match=r"films\.jsonl is not UTF-8 text.*git checkout"):
        load_reviews("films", folder=tmp_path)
