"""tlhelpers: the shared, tested helpers of the course *Transfer Learning, hands-on*.

The modules follow the course's concepts:

- :mod:`tlhelpers.settings`: profiles and device choice, with :mod:`tlhelpers.paths` (data,
  cache and figure folders) and :mod:`tlhelpers.seeds` (seeding, run seeds) re-exported;
- :mod:`tlhelpers.data`: the offline image worlds, handwritten digits, domain shifts, the
  review corpus, few-shot splits and the in-memory batch loader;
- :mod:`tlhelpers.models`: the course CNN, surgery (freezing, heads, parameter groups, eval
  mode), and one backbone registry (``load_backbone``) over the course checkpoints and the
  torchvision and Hugging Face backbones;
- :mod:`tlhelpers.train`: one ``fit`` / ``evaluate`` loop for images and text, with
  :mod:`tlhelpers.history` (``History``, ``EarlyStopping``) and :mod:`tlhelpers.evaluation`
  (``evaluate``, ``predict``) re-exported;
- :mod:`tlhelpers.features`: cached feature extraction and linear probes;
- :mod:`tlhelpers.finetune`: fine-tuning strategies (layer transfer, discriminative learning
  rates, L2-SP);
- :mod:`tlhelpers.transferability`: LogME, LEEP, NCE, H-score;
- :mod:`tlhelpers.adapt`: domain adaptation (DANN, the domain adapter and its pair loader),
  with :mod:`tlhelpers.alignment` (gradient reversal, CORAL, DANN's schedules) and
  :mod:`tlhelpers.domain_gap` (AdaBN, proxy A-distance) re-exported;
- :mod:`tlhelpers.text`: tokenising, pooling, text heads, question answering, sentence
  embeddings, layer-wise fine-tuning;
- :mod:`tlhelpers.plots` (the course's plot types; :mod:`tlhelpers.plot_style` holds the figure
  style and :mod:`tlhelpers.figures` ``save_figure``, both re-exported),
  :mod:`tlhelpers.claims` (the checks that state a notebook's results; :mod:`tlhelpers.claims_log`
  holds what becomes of a checked claim, ``TL_CLAIMS_LOG`` included) and
  :mod:`tlhelpers.stats` (the course's one uncertainty convention, small-sample intervals);
- :mod:`tlhelpers.pretrain` (recipes of the course checkpoints), :mod:`tlhelpers.doctor`
  (environment check) and ``python -m tlhelpers`` (:mod:`tlhelpers.__main__`);
- :mod:`tlhelpers.cache` (the on-disk array cache) and :mod:`tlhelpers.files` (atomic writes).

The most used names are re-exported here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# The re-exported names and the module each comes from. They are imported on first use (PEP 562),
# so ``import tlhelpers.files`` stays cheap: torch loads only when something needs it.
_EXPORTS = {
    "ClaimError": "tlhelpers.claims_log",
    "claim_at_least": "tlhelpers.claims",
    "claim_greater": "tlhelpers.claims",
    "claim_true": "tlhelpers.claims",
    "FULL": "tlhelpers.settings",
    "QUICK": "tlhelpers.settings",
    "Profile": "tlhelpers.settings",
    "get_profile": "tlhelpers.settings",
    "pick_device": "tlhelpers.settings",
    "seed_everything": "tlhelpers.seeds",
    "EarlyStopping": "tlhelpers.train",
    "History": "tlhelpers.train",
    "evaluate": "tlhelpers.train",
    "fit": "tlhelpers.train",
}

if TYPE_CHECKING:
    from tlhelpers.claims import claim_at_least, claim_greater, claim_true
    from tlhelpers.claims_log import ClaimError
    from tlhelpers.seeds import seed_everything
    from tlhelpers.settings import FULL, QUICK, Profile, get_profile, pick_device
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
