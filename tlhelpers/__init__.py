"""tlhelpers: the shared, tested helpers of the course *Transfer Learning, hands-on*.

The modules follow the course's concepts:

- :mod:`tlhelpers.settings`: profiles, paths (data, cache, figures), device choice, seeding;
- :mod:`tlhelpers.data`: the offline image worlds, handwritten digits, domain shifts, the
  review corpus, few-shot splits and the in-memory batch loader;
- :mod:`tlhelpers.models`: the course CNN, surgery (freezing, heads, parameter groups, eval
  mode), checkpoints and the torchvision and Hugging Face backbones;
- :mod:`tlhelpers.train`: one ``fit`` / ``evaluate`` loop for images and text;
- :mod:`tlhelpers.features`: cached feature extraction and linear probes;
- :mod:`tlhelpers.finetune`: fine-tuning strategies (top-k, discriminative learning rates,
  gradual unfreezing, LP-FT, L2-SP);
- :mod:`tlhelpers.transferability`: LogME, LEEP, NCE, H-score;
- :mod:`tlhelpers.adapt`: domain adaptation (gradient reversal, DANN, CORAL, AdaBN, proxy
  A-distance);
- :mod:`tlhelpers.text`: tokenising, pooling, text heads, question answering, sentence
  embeddings, layer-wise fine-tuning;
- :mod:`tlhelpers.plots` (the course's figure style, ``save_figure``),
  :mod:`tlhelpers.claims` (the checks that state a notebook's results) and
  :mod:`tlhelpers.stats` (the course's one uncertainty convention, small-sample intervals);
- :mod:`tlhelpers.pretrain` (recipes of the course checkpoints), :mod:`tlhelpers.doctor`
  (environment check) and ``python -m tlhelpers`` (:mod:`tlhelpers.__main__`);
- :mod:`tlhelpers.cache` (the on-disk array cache) and :mod:`tlhelpers.files` (atomic writes).

The most used names are re-exported here.
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
