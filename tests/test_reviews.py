"""The review corpus in data/text: sizes, balance, split, no duplicates, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tlhelpers.data.reviews import (
    REVIEW_DOMAINS,
    ReviewSet,
    corpus_problems,
    load_reviews,
    review_words,
)


def _set(texts: list[str], labels: list[int], splits: list[str] | None = None) -> ReviewSet:
    n = len(texts)
    return ReviewSet(
        tuple(texts),
        np.array(labels, dtype=np.int64),
        ("films",) * n,
        tuple(f"films-{i:03d}" for i in range(n)),
        tuple(splits or ["train"] * n),
    )


def test_corpus_size_balance_and_fixed_split() -> None:
    everything = load_reviews()
    assert len(everything) == 1320
    for domain in REVIEW_DOMAINS:
        for split, per_label in (("train", 165), ("test", 55)):
            part = load_reviews(domain, split)
            assert len(part) == 2 * per_label, (domain, split)
            assert int(part.labels.sum()) == per_label, (domain, split)
    train_ids = set(load_reviews(split="train").ids)
    test_ids = set(load_reviews(split="test").ids)
    assert not train_ids & test_ids
    assert len(train_ids | test_ids) == 1320


def test_corpus_has_no_problems() -> None:
    assert corpus_problems() == []


def test_corpus_is_not_keyword_trivial() -> None:
    """Negations and contrasts are common, so single words are weak evidence."""
    reviews = load_reviews()
    words = [set(review_words(t)) for t in reviews.texts]
    negated = np.mean([bool(w & {"not", "never", "no", "nothing"}) or "n't" in t
                       for w, t in zip(words, reviews.texts, strict=True)])
    contrast = np.mean([bool(w & {"but", "yet", "though", "although", "despite"}) for w in words])
    assert negated > 0.25 and contrast > 0.25, (negated, contrast)
    # "but" appears in both classes in similar numbers
    but = np.array(["but" in w for w in words])
    pos_share = reviews.labels[but].mean()
    assert 0.3 < pos_share < 0.7, pos_share


def test_problems_are_detected() -> None:
    base = "The soup was cold and the waiter forgot our bread twice tonight"
    assert corpus_problems(_set([base, base.upper() + "!"], [0, 0])) != []
    near = base.replace("twice tonight", "twice again tonight")
    assert any("near-duplicates" in p for p in corpus_problems(_set([base, near], [0, 0])))
    far = "A wonderful quiet evening with attentive staff and a generous cheese board"
    assert corpus_problems(_set([base, far], [0, 1])) == []
    assert any("words" in p for p in corpus_problems(_set(["Too short."], [0])))
    third = "Honestly the best pancakes I have eaten in this town"
    unbalanced = _set([base, far, third], [0, 1, 1])
    assert any("unbalanced" in p for p in corpus_problems(unbalanced))


def test_subset_keeps_everything_aligned() -> None:
    reviews = load_reviews("electronics", "test")
    part = reviews.subset([3, 0])
    assert part.texts == (reviews.texts[3], reviews.texts[0])
    assert part.ids == (reviews.ids[3], reviews.ids[0])
    assert part.labels.tolist() == [reviews.labels[3], reviews.labels[0]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"domains": "books"}, "'books' is not known; valid choices: 'films'"),
        ({"domains": ()}, "selects nothing"),
        ({"split": "validation"}, "'validation' is not known"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_reviews(**kwargs)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="git checkout -- data/text"):
        load_reviews("films", folder=tmp_path)
    row = {"id": "films-001", "domain": "films", "label": "great", "split": "train", "text": "x"}
    (tmp_path / "films.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(ValueError, match=r"films\.jsonl:1: malformed"):
        load_reviews("films", folder=tmp_path)
