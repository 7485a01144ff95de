"""The course's one uncertainty convention, and small-sample intervals.

Every spread the course shows — in a table, as an error bar, in a claim's line — is the
**sample standard deviation** (``ddof=1``) over independent runs, written ``mean ± sd (n=…)``.
Why the sd and not a 95% interval: with the two to five runs a notebook can afford, a t-interval
is 2.8× (n=5) to 12.7× (n=2) the sd wide and says more about n than about the method, while the
sd answers the question a learner asks on rerunning with another seed — how far apart do runs
land? A single run has no spread, so it is shown as a number alone.

Where a notebook *ranks* things or calls two numbers level, a spread is not enough: use
:func:`paired_difference_interval` (exact t-interval of a per-seed difference) or
:func:`bootstrap_interval` (percentile bootstrap, e.g. for Kendall's τ over a handful of
candidates, via :func:`kendall_tau_interval`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "bootstrap_interval",
    "format_spread",
    "kendall_tau",
    "kendall_tau_interval",
    "paired_difference_interval",
    "sd",
    "spread_note",
]

_SPREAD_NAME = "sd"  # what ``±`` means everywhere in the course: the sample sd over runs


def _as_runs(values: Any, name: str = "values") -> np.ndarray:
    if hasattr(values, "detach"):  # torch tensor
        values = values.detach().cpu().numpy()
    if isinstance(values, (str, bytes)):
        raise TypeError(f"{name}={values!r} is text; pass numbers, one per run.")
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name}={values!r} is not a sequence of numbers (one per run).") from error
    if array.size == 0:
        raise ValueError(f"{name} is empty; pass at least one run's value.")
    return array


def sd(values: Any, axis: int = -1) -> np.ndarray | float:
    """Sample standard deviation (ddof=1) over runs along ``axis``; NaN for a single run.

    NaN rather than 0 for n=1, so an error bar of one run is not drawn as a certain value.
    """
    array = _as_runs(values)
    if array.ndim == 0:
        return math.nan
    if array.shape[axis] < 2:
        out = np.full(np.delete(np.asarray(array.shape), axis), np.nan)
        return float(out) if out.ndim == 0 else out
    result = array.std(axis=axis, ddof=1)
    return float(result) if np.ndim(result) == 0 else result


def format_spread(values: Any, *, digits: int = 1, unit: str = "") -> str:
    """``"91.3 ± 1.2% (n=3)"`` for several runs, ``"91.3%"`` for one (no spread to show)."""
    array = _as_runs(values).reshape(-1)
    mean = float(array.mean())
    if array.size == 1:
        return f"{mean:.{digits}f}{unit}"
    return f"{mean:.{digits}f} ± {float(array.std(ddof=1)):.{digits}f}{unit} (n={array.size})"


def spread_note(n: int) -> str:
    """What error bars show, for a figure or table caption: ``"mean ± sd over 3 runs"``."""
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n={n!r} must be the number of runs, a positive integer.")
    return "one run (no error bar)" if n == 1 else f"mean ± {_SPREAD_NAME} over {n} runs"


def paired_difference_interval(
    a: Any, b: Any, *, level: float = 0.95
) -> tuple[float, float, float]:
    """``(mean difference, low, high)``: exact t-interval of the per-run difference ``a - b``.

    Runs must be paired (same seeds, same order). With one pair the interval is unbounded.
    """
    from scipy import stats as scipy_stats

    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must be in (0, 1), e.g. level=0.95.")
    xa, xb = _as_runs(a, "a").reshape(-1), _as_runs(b, "b").reshape(-1)
    if xa.shape != xb.shape:
        raise ValueError(
            f"a has {xa.size} runs and b has {xb.size}; pair them run by run (same seeds)."
        )
    difference = xa - xb
    mean = float(difference.mean())
    if difference.size < 2:
        return mean, -math.inf, math.inf
    half = float(scipy_stats.t.ppf(0.5 + level / 2, difference.size - 1)) * float(
        difference.std(ddof=1) / math.sqrt(difference.size)
    )
    return mean, mean - half, mean + half


def bootstrap_interval(
    statistic: Callable[..., float],
    *samples: Sequence[float] | np.ndarray,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(statistic, low, high)``: percentile bootstrap over rows shared by all ``samples``.

    Rows are resampled together (so paired columns stay paired); resamples where the statistic
    is undefined (NaN) are skipped.
    """
    if not 0 < level < 1:
        raise ValueError(f"level={level!r} must be in (0, 1), e.g. level=0.95.")
    if not isinstance(n_boot, int) or isinstance(n_boot, bool) or n_boot < 100:
        raise ValueError(f"n_boot={n_boot!r} must be an integer of at least 100.")
    arrays = [_as_runs(s, "sample").reshape(-1) for s in samples]
    if not arrays or len({a.size for a in arrays}) != 1:
        raise ValueError(
            f"samples must be one or more sequences of the same length; got lengths "
            f"{[a.size for a in arrays]}."
        )
    n = arrays[0].size
    if n < 3:
        raise ValueError(f"a bootstrap needs at least 3 rows; got {n}.")
    rng = np.random.default_rng(seed)
    estimate = float(statistic(*arrays))
    draws = []
    for _ in range(n_boot):
        rows = rng.integers(0, n, size=n)
        value = float(statistic(*(a[rows] for a in arrays)))
        if not math.isnan(value):
            draws.append(value)
    low, high = np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2])
    return estimate, float(low), float(high)


def kendall_tau(x: Sequence[float], y: Sequence[float]) -> float:
    """Kendall's τ-b between two score lists (NaN when either is constant)."""
    from scipy import stats as scipy_stats

    xa, ya = _as_runs(x, "x").reshape(-1), _as_runs(y, "y").reshape(-1)
    if xa.size != ya.size:
        raise ValueError(f"x has {xa.size} values and y has {ya.size}; pair them one to one.")
    if np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return math.nan
    return float(scipy_stats.kendalltau(xa, ya).statistic)


def kendall_tau_interval(
    x: Sequence[float], y: Sequence[float], *, n_boot: int = 2000, level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(τ, low, high)``: Kendall's τ with a bootstrap interval over the candidates ranked.

    With seven candidates one swapped pair moves τ by about 0.1, and the interval shows it.
    """
    return bootstrap_interval(kendall_tau, x, y, n_boot=n_boot, level=level, seed=seed)
