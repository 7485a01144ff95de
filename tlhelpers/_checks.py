"""Argument checks shared by the package, with one wording for every message.

Each check returns the value in its plain Python form (``np.int64(3)`` becomes ``3``) or raises
a ``ValueError`` (``TypeError`` for a value of the wrong kind) that names the argument, the bad
value and an example of a good one. Booleans are never numbers here: ``True`` is not ``1``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any, TypeVar

__all__ = ["finite", "integer", "non_negative_int", "one_of", "positive_int", "seed"]

_SEED_MAX = 2**32 - 1  # NumPy's legacy seeding (np.random.seed) takes 32-bit seeds

T = TypeVar("T")


def _example(name: str, example: object) -> str:
    return f", e.g. {name}={example!r}" if example is not None else ""


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def integer(
    name: str,
    value: object,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    example: object = None,
) -> int:
    """``value`` as an int when it is an integer (NumPy's too) within [minimum, maximum]."""
    if minimum == 1 and maximum is None:
        wanted = "a positive integer"
    elif minimum == 0 and maximum is None:
        wanted = "a non-negative integer"
    elif minimum is not None and maximum is not None:
        wanted = f"an integer in [{minimum}, {maximum}]"
    elif minimum is not None:
        wanted = f"an integer >= {minimum}"
    elif maximum is not None:
        wanted = f"an integer <= {maximum}"
    else:
        wanted = "an integer"
    ok = _is_integer(value)
    if ok and minimum is not None and value < minimum:  # type: ignore[operator]
        ok = False
    if ok and maximum is not None and value > maximum:  # type: ignore[operator]
        ok = False
    if not ok:
        raise ValueError(f"{name}={value!r} must be {wanted}{_example(name, example)}.")
    return int(value)  # type: ignore[call-overload]


def positive_int(name: str, value: object, *, example: object = None) -> int:
    """``value`` as an int when it is an integer >= 1."""
    return integer(name, value, minimum=1, example=example)


def non_negative_int(name: str, value: object, *, example: object = None) -> int:
    """``value`` as an int when it is an integer >= 0."""
    return integer(name, value, minimum=0, example=example)


def seed(name: str, value: object) -> int:
    """``value`` as an int when it is a usable seed: a whole number from 0 to 2**32 - 1."""
    if not _is_integer(value) or not 0 <= value <= _SEED_MAX:  # type: ignore[operator]
        raise ValueError(
            f"{name}={value!r} must be a non-negative integer below 2**32 (NumPy's limit), "
            f"e.g. {name}=0."
        )
    return int(value)  # type: ignore[call-overload]


def finite(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    example: object = None,
) -> float:
    """``value`` as a float when it is a finite real number (not a bool, not text) in range.

    ``minimum``/``maximum`` are inclusive bounds, ``above`` an exclusive lower bound.
    """
    if isinstance(value, (str, bytes)) or not _is_real(value):
        raise TypeError(
            f"{name}={value!r} ({type(value).__name__}) must be a real number"
            f"{_example(name, example)}."
        )
    number = float(value)  # type: ignore[arg-type]
    bounds = []
    if minimum is not None:
        bounds.append(f">= {minimum:g}")
    if above is not None:
        bounds.append(f"> {above:g}")
    if maximum is not None:
        bounds.append(f"<= {maximum:g}")
    if (
        not math.isfinite(number)
        or (minimum is not None and number < minimum)
        or (above is not None and number <= above)
        or (maximum is not None and number > maximum)
    ):
        wanted = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
        raise ValueError(f"{name}={value!r} must be {wanted}{_example(name, example)}.")
    return number


def one_of(name: str, value: T, choices: Iterable[Any], *, fix: str = "") -> T:
    """``value`` when it is one of ``choices``; the error lists them (and ``fix`` if given)."""
    options = tuple(choices)
    try:
        known = bool(value in options)
    except (TypeError, ValueError):  # e.g. an array compared with strings
        known = False
    if isinstance(value, bool) and not any(isinstance(c, bool) for c in options):
        known = False  # True == 1 must not pick the choice 1
    if not known:
        valid = ", ".join(repr(c) for c in options)
        tail = f" {fix}" if fix else ""
        raise ValueError(f"{name}={value!r} is not understood; valid choices: {valid}.{tail}")
    return value
