"""Transferability scores: hand-computed cases, properties, LogME against a slow direct
implementation, and helpful errors for bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tlhelpers.transferability import h_score, leep, logme, nce


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _clusters(rng: np.random.Generator, n: int = 300, d: int = 16, k: int = 4) -> tuple:
    """Features with class signal: a random centre per class plus unit Gaussian noise."""
    labels = np.arange(n) % k
    centres = 3 * rng.normal(size=(k, d))
    return centres[labels] + rng.normal(size=(n, d)), labels


# --- LEEP --------------------------------------------------------------------------------------


def test_leep_by_hand() -> None:
    # θ rows (source classes z = 0, 1); targets y = 0, 0, 1, 1.
    # P(y, z): y=0: (0.8+0.6, 0.2+0.4)/4 = (0.35, 0.15); y=1: (0.4, 1.6)/4 = (0.10, 0.40).
    # P(z) = (0.45, 0.55); P(y=0|z) = (7/9, 3/11), P(y=1|z) = (2/9, 8/11).
    # Σ_z P(y_i|z) θ_iz: 0.8·7/9 + 0.2·3/11 = 67/99, 0.6·7/9 + 0.4·3/11 = 57/99,
    #                    0.3·2/9 + 0.7·8/11 = 57/99, 0.1·2/9 + 0.9·8/11 = 67/99.
    # LEEP = (2 log 67/99 + 2 log 57/99) / 4 = ½ log(67·57 / 99²) ≈ −0.4712.
    theta = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    assert leep(theta, np.array([0, 0, 1, 1])) == pytest.approx(0.5 * math.log(67 * 57 / 99**2))


def test_leep_is_zero_when_source_predicts_target_with_certainty() -> None:
    labels = np.array([0, 1, 1, 0, 1])
    one_hot_of_a_relabelling = np.eye(3)[[2, 0, 0, 2, 0]]
    assert leep(one_hot_of_a_relabelling, labels) == pytest.approx(0.0, abs=1e-12)


def test_leep_is_at_most_zero_and_ignores_source_and_target_naming() -> None:
    rng = np.random.default_rng(0)
    for seed in range(5):
        theta = _softmax(rng.normal(scale=1 + seed, size=(50, 7)))
        labels = rng.integers(0, 3, 50)
        score = leep(theta, labels)
        assert score <= 0
        permuted = rng.permutation(7)
        assert leep(theta[:, permuted], labels) == pytest.approx(score, abs=1e-12)
        assert leep(theta, np.array([4, 9, 6])[labels]) == pytest.approx(score, abs=1e-12)


# --- NCE ---------------------------------------------------------------------------------------


def test_nce_is_zero_when_source_label_determines_target() -> None:
    source = np.array([0, 3, 1, 2, 3, 0, 1])
    labels = np.array([0, 1, 0, 1, 1, 0, 0])  # z ∈ {0, 1} → y = 0, z ∈ {2, 3} → y = 1
    assert nce(source, labels) == pytest.approx(0.0, abs=1e-15)


def test_nce_is_minus_target_entropy_when_independent() -> None:
    # Every (y, z) pair of the multiset y ∈ {0, 0, 1} × z ∈ {0, 1, 2}: P(y, z) = P(y) P(z),
    # so H(Y|Z) = H(Y) = −(2/3 log 2/3 + 1/3 log 1/3).
    labels = np.repeat([0, 0, 1], 3)
    source = np.tile([0, 1, 2], 3)
    entropy = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert nce(source, labels) == pytest.approx(-entropy, abs=1e-12)


def test_nce_is_at_most_zero_ignores_naming_and_takes_argmax_of_probabilities() -> None:
    rng = np.random.default_rng(1)
    for _ in range(5):
        theta = _softmax(rng.normal(size=(60, 6)))
        labels = rng.integers(0, 4, 60)
        source = theta.argmax(axis=1)
        score = nce(source, labels)
        assert score <= 0
        assert nce(theta, labels) == score
        relabel = rng.permutation(6) + 10
        assert nce(relabel[source], labels) == pytest.approx(score, abs=1e-12)
        assert nce(source, np.array([7, 2, 5, 0])[labels]) == pytest.approx(score, abs=1e-12)


def test_nce_accepts_a_source_that_always_predicts_one_class() -> None:
    labels = np.array([0, 1, 1, 1])
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert nce(np.zeros(4, dtype=int), labels) == pytest.approx(-entropy)


# --- H-score -----------------------------------------------------------------------------------


def test_h_score_separated_clusters_vs_identical_class_means() -> None:
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 100)
    noise = rng.normal(size=(200, 3))
    separated = noise + 50 * np.array([1.0, -1.0, 0.5]) * labels[:, None]
    # For K classes H lies in [0, K − 1]; perfectly separated two classes approach 1.
    assert h_score(separated, labels) == pytest.approx(1.0, abs=1e-3)
    same_means = np.concatenate([noise[:100], noise[:100]])  # class 1 repeats class 0's rows
    assert h_score(same_means, labels) == pytest.approx(0.0, abs=1e-12)


def test_h_score_tolerates_constant_and_duplicated_columns() -> None:
    rng = np.random.default_rng(3)
    features, labels = _clusters(rng, d=5)
    padded = np.hstack([features, features[:, :2], np.ones((len(features), 1))])
    assert h_score(padded, labels) == pytest.approx(h_score(features, labels), rel=1e-8)


# --- LogME -------------------------------------------------------------------------------------


def _slow_logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME with D×D matrices and solves, the same fixed-point iterations, no eigenbasis."""
    f = np.asarray(features, dtype=np.float64)
    n, d = f.shape
    gram = f.T @ f
    scores = []
    for c in np.unique(labels):
        y = (labels == c).astype(np.float64)
        fty = f.T @ y

        def posterior(alpha: float, beta: float, fty: np.ndarray = fty) -> tuple:
            a = alpha * np.eye(d) + beta * gram
            return a, beta * np.linalg.solve(a, fty)

        alpha, beta = 1.0, 1.0
        for _ in range(11):
            a, m = posterior(alpha, beta)
            gamma = d - alpha * np.trace(np.linalg.inv(a))  # = Σ σ_i / (σ_i + α/β)
            lam = alpha / beta
            alpha = gamma / (m @ m)
            beta = (n - gamma) / np.sum((y - f @ m) ** 2)
            if abs(alpha / beta - lam) / lam < 0.01:
                break
        a, m = posterior(alpha, beta)
        evidence = (
            d / 2 * np.log(alpha)
            + n / 2 * np.log(beta)
            - 0.5 * np.linalg.slogdet(a)[1]
            - beta / 2 * np.sum((y - f @ m) ** 2)
            - alpha / 2 * (m @ m)
            - n / 2 * np.log(2 * np.pi)
        )
        scores.append(evidence / n)
    return float(np.mean(scores))


@pytest.mark.parametrize(("n", "d"), [(80, 6), (40, 40), (15, 30)], ids=["N>D", "N=D", "N<D"])
def test_logme_matches_slow_direct_implementation(n: int, d: int) -> None:
    rng = np.random.default_rng(n + d)
    labels = np.arange(n) % 3
    features = rng.normal(size=(n, d)) + rng.normal(size=(3, d))[labels]
    assert logme(features, labels) == pytest.approx(_slow_logme(features, labels), abs=1e-6)


def test_logme_prefers_real_labels_and_informative_features() -> None:
    rng = np.random.default_rng(4)
    features, labels = _clusters(rng)
    score = logme(features, labels)
    assert score > logme(features, rng.permutation(labels)) + 0.05
    assert score > logme(rng.normal(size=features.shape), labels) + 0.05


def test_logme_ignores_rotation_of_features_and_order_of_samples() -> None:
    rng = np.random.default_rng(5)
    features, labels = _clusters(rng, n=120, d=10, k=3)
    rotation, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    order = rng.permutation(len(labels))
    score = logme(features, labels)
    assert logme(features @ rotation, labels) == pytest.approx(score, abs=1e-9)
    assert logme(features[order], labels[order]) == pytest.approx(score, abs=1e-9)
    assert logme(features.astype(np.float32), labels) == pytest.approx(score, abs=1e-5)


def test_logme_of_zero_features_is_the_label_only_model() -> None:
    # Fᵀy = 0: the best prior pins the weights to 0, y ~ N(0, β⁻¹I) with β = N / N_c, so
    # evidence / N = ½ log(N / N_c) − ½ − ½ log 2π per class.
    labels = np.array([0, 0, 0, 1])
    expected = np.mean([0.5 * math.log(4 / c) - 0.5 - 0.5 * math.log(2 * math.pi) for c in (3, 1)])
    assert logme(np.zeros((4, 5)), labels) == pytest.approx(expected, abs=1e-12)
    assert logme(np.zeros((6, 2)), np.array([0, 1, 1, 0, 1, 0])) == pytest.approx(
        0.5 * math.log(2) - 0.5 - 0.5 * math.log(2 * math.pi), abs=1e-12
    )


# --- all scores --------------------------------------------------------------------------------


def test_scores_are_python_floats() -> None:
    rng = np.random.default_rng(6)
    features, labels = _clusters(rng, n=40, d=4, k=2)
    probs = _softmax(features)
    for score in (leep(probs, labels), nce(probs, labels), h_score(features, labels),
                  logme(features, labels)):
        assert type(score) is float and math.isfinite(score)


LABELS = np.array([0, 1, 0, 1])
FEATURES = np.arange(8.0).reshape(4, 2)
PROBS = np.full((4, 2), 0.5)
WITH_NAN = FEATURES.copy()
WITH_NAN[2, 1] = np.nan


@pytest.mark.parametrize("score", [h_score, logme])
@pytest.mark.parametrize(
    ("features", "labels", "message"),
    [
        (FEATURES, LABELS[:3], r"features has 4 rows but labels has 3 entries"),
        (FEATURES, np.zeros(4, dtype=int), r"one class only \(all 0\).*at least two"),
        (WITH_NAN, LABELS, r"features holds 1 NaN or infinite.*\(2, 1\).*np\.isfinite"),
        (FEATURES[:, 0], LABELS, r"features must be a 2-D array \(N, D\).*reshape.*shape \(4,\)"),
        (FEATURES, np.eye(2)[LABELS], r"labels must be a 1-D.*shape \(4, 2\).*argmax"),
        (FEATURES, LABELS.astype(float), r"dtype float64.*integer class indices.*astype\(int\)"),
        (FEATURES, LABELS - 1, r"labels hold -1 \(at index 0\).*≥ 0.*np\.unique"),
    ],
    ids=["lengths", "one-class", "nan", "1-d-features", "one-hot-labels", "float-labels",
         "negative-labels"],
)
def test_bad_feature_input_says_what_and_how_to_fix(score, features, labels, message) -> None:
    with pytest.raises(ValueError, match=message):
        score(features, labels)


@pytest.mark.parametrize("score", [leep, nce])
@pytest.mark.parametrize(
    ("probs", "labels", "message"),
    [
        (PROBS * 2, LABELS, r"must sum to 1.*row 0 sums to 2.*softmax"),
        (PROBS - 0.6, LABELS, r"negative values.*logits.*softmax"),
        (PROBS, LABELS[:2], r"source_\w+ has 4 rows but labels has 2 entries"),
        (PROBS, np.ones(4, dtype=int), r"one class only \(all 1\)"),
        (np.where(PROBS == 0.5, np.inf, 0), LABELS, r"NaN or infinite"),
        (PROBS[None], LABELS, r"source_\w+ must be .*\(N, Z\).*probabilities.*shape \(1, 4, 2\)"),
    ],
    ids=["sums", "negative", "lengths", "one-class", "inf", "3-d"],
)
def test_bad_probability_input_says_what_and_how_to_fix(score, probs, labels, message) -> None:
    with pytest.raises(ValueError, match=message):
        score(probs, labels)


def test_leep_rejects_integer_predictions_and_nce_checks_them() -> None:
    with pytest.raises(ValueError, match=r"source_probs must be a 2-D array \(N, Z\).*\(4,\)"):
        leep(LABELS, LABELS)
    with pytest.raises(ValueError, match=r"source_labels_or_probs have dtype float64"):
        nce(LABELS.astype(float), LABELS)
