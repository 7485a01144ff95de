"""Seeding: one call makes a run repeatable, and each run of a notebook gets its own seed.

:func:`seed_everything` seeds Python, NumPy and torch; :func:`run_seeds` turns a notebook's
``seed`` parameter into the seeds of the runs it repeats, disjoint between parameter values.
Both are also importable from :mod:`tlhelpers.settings`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import torch

from tlhelpers import _checks

__all__ = ["SEED_STRIDE", "run_seeds", "seed_everything"]


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch so CPU runs repeat exactly; return a seeded torch Generator.

    ``seed`` is a whole number from 0 to 2**32 - 1 (NumPy integers too). Also makes cuDNN
    deterministic. Call it at the top of a notebook and before each run that
    should be repeatable.
    """
    seed = _checks.seed("seed", seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    return torch.Generator().manual_seed(seed)


SEED_STRIDE = 1000
"""Run seeds of one value of the ``seed`` parameter span ``seed * SEED_STRIDE`` onwards."""


def run_seeds(seed: int, count: int | Sequence[int]) -> list[int]:
    """The seeds of the runs a notebook repeats, for its ``seed`` parameter.

    ``run_seeds(seed, 3)`` gives ``[1000 * seed, 1000 * seed + 1, 1000 * seed + 2]``: seed 0
    runs seeds 0, 1, 2 and seed 1 runs 1000, 1001, 1002, so two values of the parameter never
    share a run (``seed + i`` would make seed 1 repeat two of seed 0's three runs). ``count``
    may also be a profile's tuple of offsets (``P.seeds``), each below :data:`SEED_STRIDE`.
    """
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed={seed!r} must be a non-negative integer, e.g. seed = 0.")
    if isinstance(count, bool):
        raise TypeError(f"count={count!r} must be a number of runs or a tuple of offsets.")
    offsets = list(range(count)) if isinstance(count, int) else list(count)
    bad = [o for o in offsets if not isinstance(o, int) or isinstance(o, bool)
           or not 0 <= o < SEED_STRIDE]
    if not offsets or bad or len(set(offsets)) != len(offsets):
        raise ValueError(
            f"count={count!r} must be a positive number of runs, or distinct integer offsets in "
            f"[0, {SEED_STRIDE}), e.g. run_seeds(seed, 3) or run_seeds(seed, P.seeds)."
        )
    return [seed * SEED_STRIDE + o for o in offsets]
