"""What becomes of a checked claim: its record, its printed line, its log line, its error.

Every ``claim_*`` function of :mod:`tlhelpers.claims` ends in :func:`finish_claim`: the claim
becomes a :class:`Claim`; a claim that holds prints its one ``✓`` line, one that does not
raises :class:`ClaimError` with the same numbers. Both classes are importable from
:mod:`tlhelpers.claims` too.

When ``TL_CLAIMS_LOG`` names a file, every claim (passed or failed) appends one JSON line to it
(:func:`log_claim`): its statement, whether it passed, its details, its slack (how far it was
from failing) and what the claim function adds: value, bound, unit, number of runs and scale
(the size of the numbers compared, so slacks in points and in ratios can be ranked together).
``make claims-report`` (``tools/claims_report.py``) reads them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Claim", "ClaimError", "finish_claim", "log_claim"]


class ClaimError(AssertionError):
    """A result stated in a notebook does not hold for the numbers just computed."""

    def __init__(self, claim: Claim) -> None:
        super().__init__(
            f"✗ {claim.statement}: {claim.details}. The notebook states this result but the "
            "numbers just computed do not support it; check the experiment above (and whether "
            "it holds for other seeds) before changing the text."
        )
        self.claim = claim

    def __reduce__(self) -> tuple[type[ClaimError], tuple[Claim]]:
        return (ClaimError, (self.claim,))


@dataclass(frozen=True)
class Claim:
    """One checked statement: what was claimed, whether it held, and the numbers behind it.

    ``slack`` is how far the numbers were from failing the claim, in its unit (None when the
    claim has no numeric bound). A notebook shows the claim's printed line only: ending a cell
    with a claim call echoes nothing more.
    """

    statement: str
    passed: bool
    details: str
    slack: float | None = None

    def __str__(self) -> str:
        mark = "✓" if self.passed else "✗"
        tail = f": {self.details}" if self.details else ""
        return f"{mark} {self.statement}{tail}"

    def _ipython_display_(self) -> None:
        """Nothing: the claim's line was printed when it was checked."""


def log_claim(claim: Claim, values: dict[str, Any]) -> None:
    """Append the claim to the file named by ``TL_CLAIMS_LOG``, if set (one JSON line)."""
    target = os.environ.get("TL_CLAIMS_LOG")
    if not target:
        return
    record = {"statement": claim.statement, "passed": claim.passed, "slack": claim.slack,
              "details": claim.details, **values}
    with Path(target).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False, default=float) + "\n")


def finish_claim(
    statement: str, passed: bool, details: str, slack: float | None = None,
    **logged: Any,
) -> Claim:
    """Record a checked claim and log it (``logged``: extra JSON fields); print its line if it
    held, else raise :class:`ClaimError`."""
    claim = Claim(statement, passed, details, None if slack is None else float(slack))
    log_claim(claim, logged)
    if not passed:
        raise ClaimError(claim)
    print(claim)
    return claim
