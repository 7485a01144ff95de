"""Transferability scores: which pre-trained model will transfer best, without fine-tuning.

Each score looks once at a frozen source model's outputs on the *target* data and returns one
number; the higher, the better the model is expected to do on the target task after
fine-tuning or a linear probe. They rank candidate models; they do not predict accuracy.

- :func:`leep` (Nguyen et al. 2020) and :func:`nce` (Tran et al. 2019) need the source model's
  *classifier* outputs: softmax probabilities over its own Z source classes (or, for NCE, just
  its predicted source class).
- :func:`h_score` (Bao et al. 2019) and :func:`logme` (You et al. 2021) need *features*, e.g.
  from :func:`tlhelpers.features.extract_features`.

All four are plain functions of NumPy arrays (or anything ``np.asarray`` takes), compute in
float64 and return a Python float. Target labels are integer class indices; only the classes
that occur count, so labels ``[3, 7, 3]`` are two classes. Inputs are checked first: wrong
shapes, mismatched lengths, NaN or infinity, non-integer labels, a single target class and
probabilities that do not sum to 1 raise a ValueError that says what was wrong and how to fix it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["h_score", "leep", "logme", "nce"]

PROB_SUM_TOLERANCE = 1e-3  # |row sum − 1| allowed for probabilities (float32 softmax, rounding)
LOGME_MAX_ITER = 11  # fixed-point updates of α and β at most (You et al. 2021)
LOGME_TOLERANCE = 0.01  # stop when α/β changes by less than this, relatively
FEATURE_MAGNITUDE_RANGE = (1e-100, 1e100)  # |features| LogME takes: its FᵀF stays in float64
H_SCORE_RCOND = 1e-10  # pinv cut-off, relative to the largest eigenvalue of cov(f)
_FLOOR = 1e-300  # keeps α and β finite when ‖m‖² or the residual is exactly 0


# --- input checks ------------------------------------------------------------------------------


def _shape(value: object) -> str:
    return str(tuple(np.shape(value)))


def _check_finite(array: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} holds {int(bad.sum())} NaN or infinite value(s), the first at index "
            f"{where} ({array[where]!r}); every value must be finite. Drop those samples "
            f"(keep = np.isfinite({name}).all(axis=1)) or fix whatever produced them."
        )


def _check_features(
    features: object, name: str = "features", *, probabilities: bool = False
) -> np.ndarray:
    """A 2-D finite (N, D) float64 array with N ≥ 1 and D ≥ 1."""
    array = np.asarray(features)
    if array.ndim != 2:
        what = (
            "(N, Z), one row per sample of the source model's probabilities over its Z classes"
            if probabilities
            else f"(N, D), one row of D numbers per sample. Flatten per sample with "
            f"{name}.reshape(len({name}), -1)"
        )
        raise ValueError(f"{name} must be a 2-D array {what}; got shape {_shape(array)}.")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(
            f"{name} has shape {_shape(array)}; it needs at least one sample (row) and one "
            "feature (column)."
        )
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise ValueError(
            f"{name} has dtype {array.dtype}; it must hold real numbers (float32 or float64)."
        )
    array = array.astype(np.float64, copy=False)
    _check_finite(array, name)
    return array


def _check_probabilities(probs: object, name: str = "source_probs") -> np.ndarray:
    """A 2-D (N, Z) float64 array of non-negative rows summing to 1 (renormalised exactly)."""
    array = _check_features(probs, name, probabilities=True)
    softmax = (
        "If these are logits, apply a softmax first: scipy.special.softmax(logits, axis=1) or "
        "torch.softmax(logits, dim=1)."
    )
    if (array < 0).any():
        where = tuple(int(i) for i in np.argwhere(array < 0)[0])
        raise ValueError(
            f"{name} holds negative values (e.g. {array[where]!r} at index {where}); "
            f"probabilities must be ≥ 0. {softmax}"
        )
    sums = array.sum(axis=1)
    off = np.abs(sums - 1.0) > PROB_SUM_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise ValueError(
            f"every row of {name} must sum to 1 (one probability per source class); row {row} "
            f"sums to {sums[row]:.6g} ({int(off.sum())} of {len(sums)} rows are off by more "
            f"than {PROB_SUM_TOLERANCE:g}). {softmax}"
        )
    return array / sums[:, None]


def _check_labels(
    labels: object, n: int, name: str = "labels", *, other: str = "features",
    min_classes: int = 2,
) -> tuple[np.ndarray, int]:
    """Dense class indices 0..K−1 (in sorted order of the original labels) and K."""
    array = np.asarray(labels)
    if array.ndim != 1:
        hint = f" If they are one-hot, use {name}.argmax(axis=1)." if array.ndim == 2 else ""
        raise ValueError(
            f"{name} must be a 1-D array of N integer class indices; got shape "
            f"{_shape(array)}.{hint}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} have dtype {array.dtype}; they must be integer class indices such as 0..9. "
            f"Convert whole-number values with {name}.astype(int)."
        )
    if len(array) != n:
        raise ValueError(
            f"{other} has {n} rows but {name} has {len(array)} entries; both must describe the "
            "same samples in the same order."
        )
    if len(array) and array.min() < 0:
        index = int(np.argmin(array))
        raise ValueError(
            f"{name} hold {int(array[index])} (at index {index}); class indices must be ≥ 0. "
            f"Map arbitrary labels to 0..K−1 with np.unique({name}, return_inverse=True)[1]."
        )
    classes, dense = np.unique(array, return_inverse=True)
    if len(classes) < min_classes:
        only = f" (all {int(classes[0])})" if len(classes) else ""
        raise ValueError(
            f"{name} hold one class only{only}; a transferability score needs at least two "
            "target classes to tell apart. Score on data that contains several classes."
        )
    return dense.reshape(-1), len(classes)


def _power_of_two_scaled(array: np.ndarray) -> np.ndarray:
    """``array`` times the power of two that brings its largest magnitude near 1 (exact)."""
    largest = float(np.abs(array).max())
    if largest == 0.0:
        return array
    return np.ldexp(array, -math.frexp(largest)[1])


def _check_magnitude(array: np.ndarray, name: str = "features") -> np.ndarray:
    """Refuse features so large (or small) that FᵀF overflows (or underflows) float64."""
    largest = float(np.abs(array).max())
    low, high = FEATURE_MAGNITUDE_RANGE
    if largest != 0.0 and not low <= largest <= high:
        raise ValueError(
            f"{name} reach a magnitude of {largest:.3g}, outside [{low:g}, {high:g}]: their "
            "squares overflow or underflow float64. Standardise them first, e.g. "
            f"({name} - {name}.mean(0)) / {name}.std(0)."
        )
    return array


def _one_hot(dense: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros((len(dense), k))
    out[np.arange(len(dense)), dense] = 1.0
    return out


# --- scores from a source classifier -----------------------------------------------------------


def leep(source_probs: object, labels: object) -> float:
    """Log Expected Empirical Prediction (Nguyen et al., ICML 2020).

    With θ(x) the source model's softmax over its Z classes (one row of ``source_probs``)::

        P(y, z)  = 1/N Σ_{i: y_i = y} θ(x_i)_z           (empirical joint of target y, source z)
        P(y | z) = P(y, z) / Σ_y P(y, z)
        LEEP     = 1/N Σ_i log Σ_z P(y_i | z) θ(x_i)_z

    i.e. the mean log-likelihood of the target labels under the "dummy" classifier that maps
    the source prediction through P(y | z). Always ≤ 0; higher (closer to 0) means the source
    classes explain the target labels better, so the model should transfer better.

    Args:
        source_probs: (N, Z) source-model probabilities on the target samples, rows summing
            to 1 (within 1e-3; they are renormalised).
        labels: (N,) integer target labels.
    """
    theta = _check_probabilities(source_probs)
    dense, k = _check_labels(labels, len(theta), other="source_probs")
    joint = _one_hot(dense, k).T @ theta / len(theta)  # (K, Z)
    marginal = joint.sum(axis=0)  # P(z)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    likelihood = (theta @ conditional.T)[np.arange(len(theta)), dense]  # Σ_z P(y_i|z) θ(x_i)_z
    return float(np.mean(np.log(likelihood)))


def nce(source_labels_or_probs: object, labels: object) -> float:
    """Negative Conditional Entropy (Tran et al., ICCV 2019): NCE = −H(Y | Z).

    Z is the source model's predicted class (the argmax of its probabilities), Y the target
    label, and the entropy uses their empirical joint distribution over the N samples::

        NCE = Σ_{y,z} P(y, z) log P(y | z),   P(y | z) = P(y, z) / P(z)

    Always ≤ 0; 0 when the source prediction determines the target label, −H(Y) when it tells
    nothing about it. Higher means better expected transfer.

    Args:
        source_labels_or_probs: (N,) integer source-class predictions, or (N, Z) source
            probabilities (their row-wise argmax is used).
        labels: (N,) integer target labels.
    """
    source = np.asarray(source_labels_or_probs)
    if source.ndim == 2:
        z = _check_probabilities(source, "source_labels_or_probs").argmax(axis=1)
    elif source.ndim == 1:
        z, _ = _check_labels(source, len(source), "source_labels_or_probs", min_classes=1)
    else:
        raise ValueError(
            "source_labels_or_probs must be (N,) integer source-class predictions or (N, Z) "
            f"source probabilities; got shape {_shape(source)}."
        )
    dense, k = _check_labels(labels, len(z), other="source_labels_or_probs")
    pair_counts = np.bincount(z * k + dense, minlength=(int(z.max()) + 1) * k).reshape(-1, k)
    z_counts = pair_counts.sum(axis=1, keepdims=True)
    seen = pair_counts > 0
    ratio = pair_counts[seen] / np.broadcast_to(z_counts, pair_counts.shape)[seen]
    return float(np.sum(pair_counts[seen] * np.log(ratio)) / len(z))


# --- scores from features ----------------------------------------------------------------------


def h_score(features: object, labels: object) -> float:
    """H-score (Bao et al., ICIP 2019): tr(cov(f)⁺ · cov(E[f | y])).

    f are the features centred on their mean, cov(f) = fᵀf / N, E[f | y] each sample's class
    mean and cov(E[f | y]) = Σ_y (N_y / N) μ_y μ_yᵀ the between-class covariance. ⁺ is the
    Moore–Penrose pseudo-inverse (eigenvalues below 1e-10 of the largest are treated as 0), so
    constant or duplicated feature columns are harmless.

    Between 0 (every class has the same mean feature) and K − 1 for K classes (classes
    perfectly separated); higher means the features separate the target classes better with a
    linear, shared-covariance model, so the model should transfer better. Not comparable
    across different numbers of classes.

    Args:
        features: (N, D) features of the target samples.
        labels: (N,) integer target labels.
    """
    f = _power_of_two_scaled(_check_features(features))  # exact: the score is scale-free
    dense, k = _check_labels(labels, len(f))
    f = f - f.mean(axis=0)
    n = len(f)
    one_hot = _one_hot(dense, k)
    counts = one_hot.sum(axis=0)
    means = (one_hot.T @ f) / counts[:, None]  # (K, D) class means
    cov_f = f.T @ f / n
    cov_g = (means.T * (counts / n)) @ means  # Σ_y (N_y/N) μ_y μ_yᵀ
    pinv = np.linalg.pinv(cov_f, rcond=H_SCORE_RCOND, hermitian=True)
    return float(np.trace(pinv @ cov_g))


def _logme_column(
    sigma: np.ndarray,
    z2: np.ndarray,
    yy: float,
    n: int,
    d: int,
    residual_at: Callable[[float], float],
) -> float:
    """Evidence / N of one target column y (see :func:`logme`), in the eigenbasis of FᵀF.

    sigma: the D eigenvalues σ_i of FᵀF; z2: (v_iᵀFᵀy)² per eigenvector; yy: ‖y‖²;
    residual_at(λ): ‖y − F m‖² for λ = α/β. With m = β(αI + βFᵀF)⁻¹Fᵀy, the coordinates of m
    in the eigenbasis are v_iᵀFᵀy / (σ_i + λ), so ‖m‖² = Σ z2_i / (σ_i + λ)².
    """
    if not z2.any():  # Fᵀy = 0: the features say nothing about y; the optimum is α → ∞, m = 0
        beta = n / max(yy, _FLOOR)
        return (n / 2 * math.log(beta) - beta / 2 * yy - n / 2 * math.log(2 * math.pi)) / n
    alpha, beta = 1.0, 1.0
    for _ in range(LOGME_MAX_ITER):
        lam = alpha / beta
        gamma = float(np.sum(sigma / (sigma + lam)))
        m2 = float(np.sum(z2 / (sigma + lam) ** 2))
        residual = residual_at(lam)
        alpha = gamma / max(m2, _FLOOR)
        beta = (n - gamma) / max(residual, _FLOOR)
        if abs(alpha / beta - lam) / lam < LOGME_TOLERANCE:
            break
    lam = alpha / beta  # m and the residual at the final α, β: the evidence is exact there
    m2 = float(np.sum(z2 / (sigma + lam) ** 2))
    residual = residual_at(lam)
    evidence = (
        d / 2 * math.log(alpha)
        + n / 2 * math.log(beta)
        - 0.5 * float(np.sum(np.log(alpha + beta * sigma)))
        - beta / 2 * residual
        - alpha / 2 * m2
        - n / 2 * math.log(2 * math.pi)
    )
    return evidence / n


def logme(features: object, labels: object) -> float:
    """LogME, the log of the maximum evidence (You et al., ICML 2021).

    For each target class, a Bayesian linear regression of its one-hot column y (N,) on the
    features F (N, D), with prior w ~ N(0, α⁻¹I) and noise N(0, β⁻¹), picks α and β by
    maximising the evidence p(y | F, α, β) with MacKay's fixed-point updates. With σ_i the D
    eigenvalues of FᵀF (zeros beyond the rank of F count too) and starting from α = β = 1,
    at most 11 times, until α/β changes by less than 1%::

        γ = Σ_i σ_i / (σ_i + α/β)
        m = β (αI + βFᵀF)⁻¹ Fᵀy
        α = γ / ‖m‖²,   β = (N − γ) / ‖y − Fm‖²

    then, with m recomputed at the final α and β,

        evidence = D/2 log α + N/2 log β − ½ Σ_i log(α + βσ_i) − β/2 ‖y − Fm‖² − α/2 ‖m‖²
                   − N/2 log 2π

    LogME is the mean over the target classes of evidence / N. It is a log-likelihood per
    sample (usually negative); higher means the features explain the labels better with a
    simple linear model, so the model should transfer better. Features are used as given
    (not centred or scaled, no bias term), as in the paper.

    Everything is computed in float64 from one eigendecomposition: of the D×D Gram matrix
    FᵀF when N ≥ D, or a thin SVD of F when N < D, so each iteration costs O(D).

    Args:
        features: (N, D) features of the target samples.
        labels: (N,) integer target labels.
    """
    f = _check_magnitude(_check_features(features))
    dense, k = _check_labels(labels, len(f))
    n, d = f.shape
    y = _one_hot(dense, k)
    yy = y.sum(axis=0)  # ‖y‖² of each one-hot column: the class counts
    sigma = np.zeros(d)
    if n >= d:
        eigenvalues, vectors = np.linalg.eigh(f.T @ f)
        sigma[:] = np.clip(eigenvalues, 0.0, None)
        z = vectors.T @ (f.T @ y)  # (D, K): Fᵀy in the eigenbasis, all classes at once
        z2 = z**2
        squared_u = None
    else:
        u, s, _ = np.linalg.svd(f, full_matrices=False)  # F = U diag(s) Vᵀ, U (N, N)
        sigma[:n] = s**2  # the D − N missing eigenvalues of FᵀF are 0
        squared_u = np.zeros((d, k))
        squared_u[:n] = (u.T @ y) ** 2  # (y projected on the left singular vectors)²
        z2 = sigma[:, None] * squared_u  # (v_iᵀFᵀy)² = σ_i (u_iᵀy)²
    scores = []
    for c in range(k):
        if squared_u is None:
            z2c = z2[:, c]

            def residual_at(lam: float, z2c: np.ndarray = z2c, c: int = c) -> float:
                # ‖y‖² − 2 yᵀFm + mᵀFᵀFm = ‖y‖² − Σ z2_i (σ_i + 2λ) / (σ_i + λ)²
                fitted = np.sum(z2c * (sigma + 2 * lam) / (sigma + lam) ** 2)
                return max(float(yy[c] - fitted), 0.0)
        else:
            u2c = squared_u[:, c]
            outside = max(float(yy[c] - u2c.sum()), 0.0)  # part of y outside the span of F

            def residual_at(lam: float, u2c: np.ndarray = u2c, outside: float = outside) -> float:
                # in the left singular basis, y − Fm has coordinates u_iᵀy · λ / (σ_i + λ)
                return outside + float(np.sum(u2c * (lam / (sigma + lam)) ** 2))

        scores.append(_logme_column(sigma, z2[:, c], float(yy[c]), n, d, residual_at))
    return float(np.mean(scores))
