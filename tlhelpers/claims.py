"""Claims as tests: a notebook's prose states a result, and the code next to it checks it.

Each ``claim_*`` function compares numbers the notebook has just computed. When the claim holds
it prints one short line, ``✓ <statement>: <numbers>``, and returns a :class:`Claim` (which a
notebook does not echo again); when it does not, it raises :class:`ClaimError` (an
``AssertionError``) showing the same numbers, so a notebook run under test fails exactly where
its text and its results disagree. :func:`report` renders a sentence whose numbers come from
variables, next to the claims that check it, so prose and numbers cannot drift apart.

Values may be single numbers or one number per run (a list, array or tensor). Per-run values
are compared by their means and shown as ``mean ± sd (n=…)``, where ± is the **sample standard
deviation** over runs: the course's one uncertainty convention (see :mod:`tlhelpers.stats` for
why the sd and not an interval). A single run is shown as a number alone. ``every_seed=True``
also requires the claim to hold run by run; use it wherever the prose says "on every seed" or
"always". A NaN never passes a claim.

When ``TL_CLAIMS_LOG`` names a file, every claim (passed or failed) appends one JSON line to it
with its value, bound and slack (how far it was from failing): see :mod:`tlhelpers.claims_log`,
which also holds :class:`Claim` and :class:`ClaimError`.

Example::

    claim_greater(pretrained_acc, scratch_acc, margin=5.0, unit="%",
                  a_label="pretrained", b_label="from scratch")
    # ✓ pretrained > from scratch by more than 5%: 91.3 ± 1.2% vs 42 ± 3.1% (n=3); +49.3% > 5%
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from tlhelpers.claims_log import Claim, ClaimError, finish_claim

__all__ = [
    "Claim",
    "ClaimError",
    "claim_at_least",
    "claim_at_most",
    "claim_between",
    "claim_close",
    "claim_greater",
    "claim_true",
    "report",
]

# A number, or one number per seed: a list, tuple, NumPy array or torch tensor.
Values = Any


def _format_number(value: float, digits: int = 4) -> str:
    """Format a number for a claim's line: ``digits`` significant digits, trailing zeros dropped.

    ``_format_number(91.3) == "91.3"``, ``_format_number(0.52341) == "0.5234"``,
    ``_format_number(5.0) == "5"``; very large or small numbers use scientific notation.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return str(int(value))
    value = float(value)
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 1e5 or magnitude < 1e-3:
        return f"{value:.{max(1, digits - 1)}g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _with_unit(text: str, unit: str) -> str:
    if not unit:
        return text
    return f"{text}{unit}" if unit in ("%", "×", "x") else f"{text} {unit}"


CLAIM_DIGITS = 3  # significant digits of the numbers in a claim's line


def _num(value: float, unit: str) -> str:
    return _with_unit(_format_number(value, CLAIM_DIGITS), unit)


@dataclass(frozen=True)
class _Values:
    label: str
    values: np.ndarray  # (n,) float64
    per_seed: bool  # given as a sequence rather than one number

    @property
    def mean(self) -> float:
        return float(self.values.mean())

    def describe(self, unit: str, statement: str = "") -> str:
        """``91.3 ± 1.2% (n=3)`` for several runs, ``91.3%`` for one; led by the label when
        the ``statement`` does not already name it."""
        n = len(self.values)
        if n == 1:
            text = _num(self.mean, unit)
        else:
            std = float(self.values.std(ddof=1))
            spread = f"{_format_number(self.mean, CLAIM_DIGITS)} ± {_format_number(std, digits=2)}"
            text = f"{_with_unit(spread, unit)} (n={n})"
        return text if self.label in statement else f"{self.label} {text}"


def _signed(value: float, unit: str) -> str:
    return ("+" if value > 0 else "") + _num(value, unit)


def _values(value: Values, label: str, statement: str) -> _Values:
    if not isinstance(label, str) or not label:
        raise ValueError(f"label={label!r} must be a non-empty string naming the value.")
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{label}={value!r} is text; pass a number or one number per seed.")
    if isinstance(value, (bool, np.bool_)) or np.asarray(value).dtype == bool:
        raise TypeError(
            f"{label}={value!r} is a boolean, not a measured number; pass the numbers the claim "
            "compares (or use claim_true for a condition)."
        )
    per_seed = not np.isscalar(value) and np.ndim(value) > 0
    try:
        array = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{label}={value!r} is not a number or a sequence of numbers (one per seed)."
        ) from error
    if array.size == 0:
        raise ValueError(f"{label} is empty; pass a number or at least one value per seed.")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        what = "NaN" if np.isnan(array[bad]).all() else "NaN or infinite"
        where = "" if not per_seed else f" at position(s) {bad.tolist()} of {array.tolist()}"
        raise ClaimError(
            Claim(statement, False, f"{label} is {what}{where}; a {what} cannot support any claim")
        )
    return _Values(label, array, per_seed)


def _check_number(name: str, value: float) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r} is a boolean; pass the number the claim compares with.")
    value = float(value)
    if not math.isfinite(value):
        what = "NaN" if math.isnan(value) else "infinite"
        raise ValueError(f"{name} is {what}; pass the finite number the claim compares against.")
    return value


def _check_non_negative(name: str, value: float) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r} is a boolean; pass a number, e.g. {name}=0.0.")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value!r} must be a finite non-negative number, e.g. {name}=0.0.")
    return value


def _paired(a: _Values, b: _Values) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed pairs; a single number is compared with every seed of the other side."""
    if a.per_seed and b.per_seed and len(a.values) != len(b.values):
        raise ValueError(
            f"every_seed=True pairs values seed by seed, but {a.label} has {len(a.values)} "
            f"values and {b.label} has {len(b.values)}; pass one value per seed for both."
        )
    n = max(len(a.values), len(b.values))
    return np.broadcast_to(a.values, n), np.broadcast_to(b.values, n)


def claim_greater(
    a: Values,
    b: Values,
    *,
    a_label: str,
    b_label: str,
    margin: float = 0.0,
    unit: str = "",
    every_seed: bool = False,
    statement: str | None = None,
) -> Claim:
    """Claim that ``a`` exceeds ``b`` by more than ``margin`` (means of per-run values).

    With ``every_seed=True`` each paired difference ``a[i] - b[i]`` must exceed ``margin`` too.
    """
    margin = _check_non_negative("margin", margin)
    if statement is None:
        statement = f"{a_label} > {b_label}"
        if margin:
            statement += f" by more than {_num(margin, unit)}"
        if every_seed:
            statement += " on every seed"
    va, vb = _values(a, a_label, statement), _values(b, b_label, statement)
    difference = va.mean - vb.mean
    slack = difference - margin
    details = (
        f"{va.describe(unit, statement)} vs {vb.describe(unit, statement)}; "
        f"{_signed(difference, unit)} "
        f"{'>' if difference > margin else '≤'} {_num(margin, unit)}"
    )
    if every_seed:
        pa, pb = _paired(va, vb)
        differences = pa - pb
        smallest = float(differences.min())
        slack = min(slack, smallest - margin)
        if len(differences) > 1:
            details += f"; worst run {_signed(smallest, unit)}"
    return finish_claim(statement, slack > 0, details, slack, value=difference, bound=margin,
                        unit=unit, n=max(len(va.values), len(vb.values)),
                        scale=max(abs(va.mean), abs(vb.mean)))


def _bound_claim(
    value: Values,
    *,
    label: str,
    unit: str,
    every_seed: bool,
    statement: str,
    slack_of: Any,
    bound_text: str,
    bound: Any,
) -> Claim:
    v = _values(value, label, statement)
    checked = v.values if every_seed else np.asarray([v.mean])
    slack = float(np.min(slack_of(checked)))
    passed = bool(slack >= 0)
    details = f"{v.describe(unit, statement)}; {bound_text}"
    if every_seed and v.per_seed and len(v.values) > 1:
        details += f"; runs {', '.join(_format_number(x, CLAIM_DIGITS) for x in v.values)}"
    scale = max([abs(v.mean)] + [abs(b) for b in np.atleast_1d(bound)])
    return finish_claim(statement, passed, details, slack, value=v.mean, bound=bound, unit=unit,
                        n=len(v.values), scale=scale)


def claim_at_least(
    value: Values,
    threshold: float,
    *,
    label: str,
    unit: str = "",
    every_seed: bool = False,
    statement: str | None = None,
) -> Claim:
    """Claim that ``value`` (the mean, or every run with ``every_seed``) is ≥ ``threshold``."""
    threshold = _check_number("threshold", threshold)
    statement = statement or f"{label} ≥ {_num(threshold, unit)}" + (
        " on every seed" if every_seed else ""
    )
    return _bound_claim(
        value,
        label=label,
        unit=unit,
        every_seed=every_seed,
        statement=statement,
        slack_of=lambda x: x - threshold,
        bound_text=f"threshold {_num(threshold, unit)}",
        bound=threshold,
    )


def claim_at_most(
    value: Values,
    threshold: float,
    *,
    label: str,
    unit: str = "",
    every_seed: bool = False,
    statement: str | None = None,
) -> Claim:
    """Claim that ``value`` (the mean, or every run with ``every_seed``) is ≤ ``threshold``."""
    threshold = _check_number("threshold", threshold)
    statement = statement or f"{label} ≤ {_num(threshold, unit)}" + (
        " on every seed" if every_seed else ""
    )
    return _bound_claim(
        value,
        label=label,
        unit=unit,
        every_seed=every_seed,
        statement=statement,
        slack_of=lambda x: threshold - x,
        bound_text=f"threshold {_num(threshold, unit)}",
        bound=threshold,
    )


def claim_between(
    value: Values,
    low: float,
    high: float,
    *,
    label: str,
    unit: str = "",
    every_seed: bool = False,
    statement: str | None = None,
) -> Claim:
    """Claim that ``low ≤ value ≤ high`` (the mean, or every run with ``every_seed``)."""
    low, high = _check_number("low", low), _check_number("high", high)
    if low > high:
        raise ValueError(f"low={low!r} and high={high!r} must be numbers with low <= high.")
    interval = f"[{_format_number(low)}, {_format_number(high)}]"
    statement = statement or f"{label} in {_with_unit(interval, unit)}" + (
        " on every seed" if every_seed else ""
    )
    return _bound_claim(
        value,
        label=label,
        unit=unit,
        every_seed=every_seed,
        statement=statement,
        slack_of=lambda x: np.minimum(x - low, high - x),
        bound_text=f"interval {_with_unit(interval, unit)}",
        bound=[low, high],
    )


def claim_close(
    a: Values,
    b: Values,
    *,
    tolerance: float,
    a_label: str,
    b_label: str,
    unit: str = "",
    statement: str | None = None,
) -> Claim:
    """Claim that ``|mean(a) - mean(b)| ≤ tolerance``."""
    tolerance = _check_non_negative("tolerance", tolerance)
    statement = statement or f"{a_label} ≈ {b_label} (within {_num(tolerance, unit)})"
    va, vb = _values(a, a_label, statement), _values(b, b_label, statement)
    gap = abs(va.mean - vb.mean)
    details = (
        f"{va.describe(unit, statement)} vs {vb.describe(unit, statement)}; gap {_num(gap, unit)} "
        f"(tolerance {_num(tolerance, unit)})"
    )
    return finish_claim(statement, gap <= tolerance, details, tolerance - gap, value=gap,
                        bound=tolerance, unit=unit, n=max(len(va.values), len(vb.values)),
                        scale=max(abs(va.mean), abs(vb.mean)))


def claim_true(condition: bool, *, statement: str, details: str = "") -> Claim:
    """Claim that ``condition`` holds; ``details`` should show the numbers it was computed from."""
    if not isinstance(condition, (bool, np.bool_)):
        raise TypeError(
            f"condition={condition!r} ({type(condition).__name__}) is not a bool; pass a "
            "comparison such as bool(a > b), or tensor.item() for a one-element tensor."
        )
    if not isinstance(statement, str) or not statement:
        raise ValueError(f"statement={statement!r} must be a non-empty sentence.")
    return finish_claim(statement, bool(condition), details)


def report(sentence: str, *claims: Claim) -> None:
    """Show ``sentence`` (Markdown) as the result the claims beside it check.

    Build the sentence from the variables the claims checked, so no number is typed by hand::

        report(f"Fine-tuning leads the probe by {gap:.1f} points on every seed (n={n}).",
               claim_greater(ft, fe, a_label="fine-tuned", b_label="probe", every_seed=True))

    The claims run first (a failing one raises before anything is shown); in a notebook the
    sentence is rendered as Markdown below their lines, elsewhere it is printed.
    """
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError(f"sentence={sentence!r} must be a non-empty Markdown sentence.")
    if not claims or not all(isinstance(c, Claim) for c in claims):
        raise TypeError(
            "report() needs at least one Claim that checks the sentence, e.g. "
            "report(f'...', claim_greater(...)); got "
            f"{[type(c).__name__ for c in claims] or 'none'}."
        )
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython ships with the course's environment
        print(sentence)
        return
    if get_ipython() is None:
        print(sentence)
    else:
        display(Markdown(sentence))
