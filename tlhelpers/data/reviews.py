"""The course's review corpus: short English reviews labelled positive or negative.

1,320 reviews written for the course (CC BY 4.0), 440 in each of three domains (films,
restaurants, electronics), balanced per domain and label, with a fixed train/test split (110 test
reviews per domain). They are stored one JSON object per line in ``data/text/<domain>.jsonl``::

    {"id": "films-001", "domain": "films", "label": "pos", "split": "train", "text": "..."}

Many reviews turn on a negation ("not bad at all") or a contrast ("lovely terrace, but the fish
was raw") so that single words are weak evidence. :func:`corpus_problems` lists what the
corpus must never contain (duplicates, near-duplicates, unbalanced cells); the tests run it.
See ``data/README.md`` for the datasheet.
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tlhelpers.paths import data_dir

__all__ = [
    "REVIEW_DOMAINS",
    "REVIEW_LABELS",
    "REVIEW_SPLITS",
    "ReviewSet",
    "corpus_problems",
    "load_reviews",
    "review_words",
]

REVIEW_DOMAINS = ("films", "restaurants", "electronics")
REVIEW_LABELS = ("neg", "pos")  # label index 0 = negative, 1 = positive
REVIEW_SPLITS = ("train", "test", "all")
NEAR_DUPLICATE_JACCARD = 0.5  # word-bigram Jaccard similarity at which two reviews are too alike
WORDS_RANGE = (8, 60)  # allowed review length in words
_FIELDS = {"id", "domain", "label", "split", "text"}


@dataclass(frozen=True)
class ReviewSet:
    """Reviews with integer labels (0 = neg, 1 = pos) and their domains, in file order."""

    texts: tuple[str, ...]
    labels: np.ndarray  # int64 (N,)
    domains: tuple[str, ...]
    ids: tuple[str, ...]
    splits: tuple[str, ...]  # "train" or "test", fixed in the files

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        counts = Counter(self.domains)
        parts = ", ".join(f"{d}: {counts[d]}" for d in REVIEW_DOMAINS if counts[d])
        return f"ReviewSet({len(self)} reviews; {parts}; {int(self.labels.sum())} positive)"

    def subset(self, indices: Sequence[int] | np.ndarray) -> ReviewSet:
        """The reviews at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        return ReviewSet(
            tuple(self.texts[i] for i in idx),
            self.labels[idx],
            tuple(self.domains[i] for i in idx),
            tuple(self.ids[i] for i in idx),
            tuple(self.splits[i] for i in idx),
        )


def review_words(text: str) -> list[str]:
    """Lower-case words (letters, digits, apostrophes) of ``text``."""
    return re.findall(r"[a-z0-9']+", text.lower())


def _check_choice(what: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(
            f"{what}={value!r} is not known; valid choices: "
            f"{', '.join(repr(c) for c in choices)}."
        )


def _read_domain(domain: str, folder: Path) -> list[dict]:
    path = folder / f"{domain}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; the review corpus ships with the course in data/text/. "
            "Restore it with `git checkout -- data/text`."
        )
    fix = "Restore the shipped file with `git checkout -- data/text`."
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error}). {fix}") from error
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}:{number}: not a JSON object ({error.msg}). {fix}") from None
        if (
            not isinstance(row, dict)
            or set(row) != _FIELDS
            or row["label"] not in REVIEW_LABELS
            or row["domain"] != domain
            or row["split"] not in ("train", "test")
            or not all(isinstance(row[key], str) for key in ("id", "text"))
        ):
            raise ValueError(
                f"{path}:{number}: malformed review {row!r}; each line needs exactly the keys "
                f"{sorted(_FIELDS)}, label in {REVIEW_LABELS}, domain {domain!r}, split 'train' "
                f"or 'test'. {fix}"
            )
        rows.append(row)
    return rows


def load_reviews(
    domains: str | Sequence[str] | None = None,
    split: str = "all",
    *,
    folder: str | Path | None = None,
) -> ReviewSet:
    """Reviews of the given domains and split.

    Args:
        domains: one domain, several, or None for all three (:data:`REVIEW_DOMAINS`).
        split: "train" (990 reviews over all domains), "test" (330) or "all".
        folder: where the ``<domain>.jsonl`` files are; default ``data_dir() / "text"``.

    Returns:
        A :class:`ReviewSet` in file order (domains in the order given).
    """
    if domains is None:
        chosen: tuple[str, ...] = REVIEW_DOMAINS
    else:
        chosen = (domains,) if isinstance(domains, str) else tuple(domains)
    if not chosen:
        raise ValueError("domains=() selects nothing; pass None for all three domains.")
    for domain in chosen:
        _check_choice("domain", domain, REVIEW_DOMAINS)
    _check_choice("split", split, REVIEW_SPLITS)
    folder = Path(folder) if folder is not None else data_dir() / "text"
    rows = [
        row
        for domain in chosen
        for row in _read_domain(domain, folder)
        if split == "all" or row["split"] == split
    ]
    return ReviewSet(
        tuple(r["text"] for r in rows),
        np.array([REVIEW_LABELS.index(r["label"]) for r in rows], dtype=np.int64),
        tuple(r["domain"] for r in rows),
        tuple(r["id"] for r in rows),
        tuple(r["split"] for r in rows),
    )


def _bigrams(text: str) -> frozenset[tuple[str, str]]:
    words = review_words(text)
    return frozenset(itertools.pairwise(words))


def corpus_problems(reviews: ReviewSet | None = None) -> list[str]:
    """Everything wrong with the corpus, one line each; an empty list means it is sound.

    Checks: unique ids; lengths within :data:`WORDS_RANGE` words; no exact duplicates after
    lower-casing and dropping punctuation; no near-duplicates (word-bigram Jaccard similarity
    at least :data:`NEAR_DUPLICATE_JACCARD`); every (domain, label) cell of each split the same
    size.
    """
    reviews = reviews if reviews is not None else load_reviews()
    problems = []
    if len(set(reviews.ids)) != len(reviews):
        problems.append("review ids are not unique")
    low, high = WORDS_RANGE
    for rid, text in zip(reviews.ids, reviews.texts, strict=True):
        n = len(review_words(text))
        if not low <= n <= high:
            problems.append(f"{rid}: {n} words, outside {low}–{high}")
    normal = Counter(" ".join(review_words(t)) for t in reviews.texts)
    problems += [f"exact duplicate: {t!r}" for t, n in normal.items() if n > 1]
    grams = [_bigrams(t) for t in reviews.texts]
    for a, b in itertools.combinations(range(len(reviews)), 2):
        union = len(grams[a] | grams[b])
        if union and len(grams[a] & grams[b]) / union >= NEAR_DUPLICATE_JACCARD:
            problems.append(f"near-duplicates: {reviews.ids[a]} and {reviews.ids[b]}")
    problems += _balance_problems(reviews)
    return problems


def _balance_problems(reviews: ReviewSet) -> list[str]:
    """Unequal (domain, label) cells within a split."""
    cells = Counter(zip(reviews.splits, reviews.domains, reviews.labels.tolist(), strict=True))
    problems = []
    for split in ("train", "test"):
        sizes = {k: v for k, v in cells.items() if k[0] == split}
        if len(set(sizes.values())) > 1:
            problems.append(f"{split} split is unbalanced across (domain, label): {sizes}")
    return problems
