"""tlhelpers: the shared, tested helpers of the course *Transfer Learning, hands-on*.

The modules follow the course's concepts: :mod:`tlhelpers.settings` (profiles, paths, device,
seeding), :mod:`tlhelpers.data` (the offline image world), :mod:`tlhelpers.models` (the course
CNN, surgery such as freezing and head replacement, checkpoints), :mod:`tlhelpers.train` (one
``fit`` loop), :mod:`tlhelpers.plots` and :mod:`tlhelpers.claims`. The most used names are
re-exported here.
"""

__version__ = "0.1.0"

from tlhelpers.claims import ClaimError, claim_at_least, claim_greater, claim_true
from tlhelpers.settings import (
    FULL,
    QUICK,
    Profile,
    get_profile,
    pick_device,
    seed_everything,
)
from tlhelpers.train import EarlyStopping, History, evaluate, fit

__all__ = [
    "FULL",
    "QUICK",
    "ClaimError",
    "EarlyStopping",
    "History",
    "Profile",
    "__version__",
    "claim_at_least",
    "claim_greater",
    "claim_true",
    "evaluate",
    "fit",
    "get_profile",
    "pick_device",
    "seed_everything",
]
