"""tlhelpers: the shared, tested helpers of the course *Transfer Learning, hands-on*.

The modules follow the course's concepts: :mod:`tlhelpers.settings` (profiles, paths, device,
seeding), :mod:`tlhelpers.data` (the offline image world), :mod:`tlhelpers.models` (the course
CNN, surgery such as freezing and head replacement, checkpoints), :mod:`tlhelpers.train` (one
``fit`` loop), :mod:`tlhelpers.plots` and :mod:`tlhelpers.claims`. The most used names are
re-exported here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The re-exported names and the module each comes from. They are imported on first use (PEP 562),
# so ``import tlhelpers.files`` stays cheap: torch loads only when something needs it.
_EXPORTS = {
    "ClaimError": "tlhelpers.claims",
    "claim_at_least": "tlhelpers.claims",
    "claim_greater": "tlhelpers.claims",
    "claim_true": "tlhelpers.claims",
    "FULL": "tlhelpers.settings",
    "QUICK": "tlhelpers.settings",
    "Profile": "tlhelpers.settings",
    "get_profile": "tlhelpers.settings",
    "pick_device": "tlhelpers.settings",
    "seed_everything": "tlhelpers.settings",
    "EarlyStopping": "tlhelpers.train",
    "History": "tlhelpers.train",
    "evaluate": "tlhelpers.train",
    "fit": "tlhelpers.train",
}

if TYPE_CHECKING:
    from tlhelpers.claims import ClaimError, claim_at_least, claim_greater, claim_true
    from tlhelpers.settings import FULL, QUICK, Profile, get_profile, pick_device, seed_everything
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


def __getattr__(name: str) -> Any:
    """Import a re-exported name from its module on first use, then keep it here."""
    if name not in _EXPORTS:
        raise AttributeError(
            f"module 'tlhelpers' has no attribute {name!r}; the names re-exported here are "
            f"{sorted(_EXPORTS)}, and everything else is imported from its module, e.g. "
            "`from tlhelpers.plots import save_figure`."
        )
    value = getattr(import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
