"""Course settings: the two run profiles and device choice; paths and seeding re-exported.

A notebook's `parameters` cell holds only literals (`profile = "quick"`, `seed = 0`,
`device = "auto"`); everything else a notebook needs to size its experiments is read from the
:class:`Profile` returned by :func:`get_profile`, never from scattered ``if profile == ...``.

Where files live (:mod:`tlhelpers.paths`: ``TL_DATA_DIR``, ``TL_CACHE_DIR``, ``TL_FIGURES_DIR``)
and seeding (:mod:`tlhelpers.seeds`) have modules of their own; their names are importable from
here as well, so a notebook's setup cell needs one import line.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch

from tlhelpers.paths import (
    cache_dir,
    check_writable,
    data_dir,
    figures_dir,
    make_folder,
    repo_root,
)
from tlhelpers.seeds import SEED_STRIDE, run_seeds, seed_everything

__all__ = [
    "FULL",
    "FULL_TO_QUICK_WORK",
    "PROFILES",
    "QUICK",
    "SEED_STRIDE",
    "Profile",
    "cache_dir",
    "check_writable",
    "data_dir",
    "figures_dir",
    "full_profile_warning",
    "get_profile",
    "make_folder",
    "pick_device",
    "profile_summary",
    "repo_root",
    "run_seeds",
    "seed_everything",
    "training_work_ratio",
    "tune_cpu_allocator",
]


@dataclass(frozen=True)
class Profile:
    """Every size a notebook uses, for one way of running the course.

    Make a variant with ``dataclasses.replace(QUICK, pretrain_epochs=1)``. The fields are
    grouped by topic below; they stay flat (``P.text_steps``, not ``P.text.steps``) because
    notebooks read them by name and print the ones they read (:func:`profile_summary`).
    """

    name: str  # "quick" (CPU, workshops, CI) or "full" (GPU, slide-quality)
    image_size: int  # side of every rendered image, in pixels
    # --- source worlds (pretraining) ---
    source_images: int  # training images in a source world (letters, textures)
    source_val_images: int  # held-out images to report source accuracy
    # --- novel-class targets (digits, Greek capitals in unseen fonts) ---
    target_pool_per_class: int  # labelled pool per class that k-shot splits draw from
    target_test_images: int  # fixed held-out test set of each target
    shots: tuple[int, ...]  # k labelled images per class for data-efficiency curves
    seeds: tuple[int, ...]  # seeds a claim is averaged over
    # --- model ---
    widths: tuple[int, int, int, int]  # channels of stem, stage1, stage2, stage3
    # --- optimisation ---
    batch_size: int  # images per step for pretraining and fine-tuning
    pretrain_epochs: int  # passes over the source world when pretraining
    pretrain_lr: float  # peak learning rate for pretraining (AdamW, one-cycle)
    finetune_steps: int  # optimiser steps when training on a small target
    finetune_batch_size: int  # images per step when fine-tuning on a small target
    finetune_lr: float  # learning rate for fine-tuning a pretrained network
    scratch_lr: float  # learning rate for training the same network from scratch
    scratch_shots: tuple[int, ...]  # k values where a from-scratch baseline is trained
    scratch_max_steps: int  # cap on a from-scratch run; early stopping on validation ends it
    probe_max_iter: int  # iterations of the logistic-regression linear probe
    # --- text (notebook 05: all-MiniLM-L6-v2 on the review corpus) ---
    text_max_length: int  # tokens per review at most, [CLS] and [SEP] included
    text_batch_size: int  # reviews per fine-tuning step
    text_steps: int  # optimiser steps of every text fine-tuning run
    text_lr: float  # peak learning rate for fine-tuning the pretrained transformer
    text_seeds: tuple[int, ...]  # seeds each text fine-tuning run is repeated for
    # --- domain adaptation (notebook 06) ---
    da_source_images: int  # labelled source images of a domain shift
    da_target_images: int  # unlabelled target images (the oracle uses their labels)
    da_test_images: int  # labelled target test images
    da_steps: int  # source-only training steps before adapting (the shared starting point)
    da_adapt_steps: int  # further steps for every method: source-only, CORAL, DANN
    da_seeds: tuple[int, ...]  # seeds the adaptation results are averaged over
    da_widths: tuple[int, int, int, int]  # SmallCNN widths for domain adaptation


QUICK = Profile(
    name="quick",
    image_size=32,
    source_images=20_000,
    source_val_images=2_000,
    target_pool_per_class=100,
    target_test_images=2_000,
    shots=(1, 5, 10, 50, 100),
    seeds=(0, 1, 2),
    widths=(32, 32, 64, 128),
    batch_size=128,
    pretrain_epochs=3,
    pretrain_lr=3e-3,
    finetune_steps=100,
    finetune_batch_size=32,
    finetune_lr=1e-3,
    scratch_lr=3e-3,
    scratch_shots=(1, 5, 10),
    scratch_max_steps=1_000,
    probe_max_iter=300,
    text_max_length=64,
    text_batch_size=16,
    text_steps=40,
    text_lr=2e-4,
    text_seeds=(0,),
    da_source_images=6_000,
    da_target_images=3_000,
    da_test_images=1_000,
    da_steps=500,
    da_adapt_steps=300,
    da_seeds=(0, 1),
    da_widths=(16, 16, 32, 64),
)

FULL = Profile(
    name="full",
    image_size=32,
    source_images=100_000,
    source_val_images=5_000,
    target_pool_per_class=200,
    target_test_images=5_000,
    shots=(1, 5, 10, 50, 100),
    seeds=(0, 1, 2, 3, 4),
    widths=(64, 64, 128, 256),
    batch_size=256,
    pretrain_epochs=15,
    pretrain_lr=3e-3,
    finetune_steps=600,
    finetune_batch_size=64,
    finetune_lr=1e-3,
    scratch_lr=3e-3,
    scratch_shots=(1, 5, 10, 50, 100),
    scratch_max_steps=3_000,
    probe_max_iter=1000,
    text_max_length=128,
    text_batch_size=16,
    text_steps=250,
    text_lr=1e-4,
    text_seeds=(0, 1, 2),
    da_source_images=20_000,
    da_target_images=10_000,
    da_test_images=2_000,
    da_steps=3_000,
    da_adapt_steps=6_000,
    da_seeds=(0, 1, 2),
    da_widths=(32, 32, 64, 128),
)

PROFILES: dict[str, Profile] = {p.name: p for p in (QUICK, FULL)}


def get_profile(name: str | Profile) -> Profile:
    """Return the profile called ``name`` ("quick" or "full"); a Profile passes through."""
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        valid = ", ".join(repr(k) for k in PROFILES)
        raise ValueError(
            f"profile={name!r} is not a course profile; valid choices: {valid}. "
            'Set `profile = "quick"` in the notebook\'s parameters cell '
            "(or pass -p profile quick to papermill)."
        )
    return PROFILES[name]


def _conv_work(profile: Profile) -> int:
    """Relative cost of one image through the course CNN: the sum of squared stage widths."""
    return sum(width * width for width in profile.widths)


def training_work_ratio(quick: Profile, full: Profile) -> tuple[float, float]:
    """How many times more training work ``full`` asks for than ``quick``: (low, high).

    Assumes time grows in proportion to the images a network processes times its width squared
    (convolution cost): pretraining is images × epochs; fine-tuning is steps × batch size ×
    seeds. The lower of the two ratios is ``low``, the higher ``high``.
    """
    width = _conv_work(full) / _conv_work(quick)
    pretrain = (full.source_images * full.pretrain_epochs) / (
        quick.source_images * quick.pretrain_epochs
    )
    finetune = (full.finetune_steps * full.finetune_batch_size * len(full.seeds)) / (
        quick.finetune_steps * quick.finetune_batch_size * len(quick.seeds)
    )
    low, high = sorted((pretrain * width, finetune * width))
    return low, high


FULL_TO_QUICK_WORK = training_work_ratio(QUICK, FULL)
"""How many times more training the full profile does than the quick one, (low, high), as
:func:`training_work_ratio` computes it from the two profiles."""


def full_profile_warning(profile: Profile, *, cuda: bool | None = None) -> str | None:
    """A warning with a rough CPU-time estimate when ``full`` runs without a CUDA GPU, else None.

    The estimate is a typical quick-profile notebook's 1–2.5 minutes on a 2-core CPU (each
    notebook's measured time is in notebooks/budgets.json) times :data:`FULL_TO_QUICK_WORK`,
    assuming CPU time grows with the training work: a range, not a measurement.
    """
    cuda = torch.cuda.is_available() if cuda is None else cuda
    if profile.name != "full" or cuda:
        return None
    low, high = FULL_TO_QUICK_WORK
    return (
        "WARNING: the 'full' profile is sized for one GPU (about 10 minutes per notebook), but "
        f"torch sees no CUDA GPU here. It does {low:.0f}-{high:.0f}x the quick profile's training, "
        "so on "
        f"a CPU expect roughly {low * 1 / 60:.0f}-{high * 2.5 / 60:.0f} hours per notebook. "
        'Set profile = "quick" in the parameters cell (or PROFILE=quick) unless that is meant.'
    )


def profile_summary(profile: Profile, used: Sequence[str] | None = None) -> str:
    """One line per field, for a notebook's setup cell; starts with the full-on-CPU warning.

    ``used`` names the fields the notebook reads (``profile_summary(P, ["shots", "seeds"])``),
    so a learner sees the sizes that matter here and nothing else; the profile's name always
    comes first. Without ``used``, every field is listed.
    """
    names = [f.name for f in fields(profile)]
    if used is not None:
        if isinstance(used, str):
            raise TypeError(f"used={used!r} must be a list of field names, e.g. [{used!r}].")
        unknown = sorted(set(used) - set(names))
        if unknown:
            raise ValueError(
                f"used names {unknown}, which are not Profile fields; valid fields: "
                f"{', '.join(names)}."
            )
        names = ["name", *(n for n in names if n in set(used) and n != "name")]
    lines = [f"{n:>22} = {getattr(profile, n)!r}" for n in names]
    warning = full_profile_warning(profile)
    return "\n".join([warning, *lines] if warning else lines)


_DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``device``: "auto" picks CUDA, then Apple's MPS, then the CPU.

    An explicit "cuda" or "mps" that this machine lacks raises an error saying so.
    """
    if isinstance(device, torch.device):
        return device
    name = str(device).split(":")[0]
    if name not in _DEVICE_CHOICES:
        raise ValueError(
            f"device={device!r} is not understood; valid choices: {', '.join(_DEVICE_CHOICES)} "
            '(optionally with an index, e.g. "cuda:1"). Use device = "auto" to let the course pick.'
        )
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(
            f'device={device!r} was asked for but torch sees no CUDA GPU; use device = "auto" '
            'or "cpu", or install a CUDA build of torch.'
        )
    if name == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise RuntimeError(
            f"device={device!r} was asked for but MPS is not available; "
            'use device = "auto" or "cpu".'
        )
    return torch.device(device)


_ALLOCATOR_TUNED = False


def tune_cpu_allocator() -> bool:
    """Let glibc keep freed buffers of up to 32 MiB for reuse; return whether it is in effect.

    By default glibc hands every large freed buffer back to the operating system and gets a
    fresh, zero-filled one on the next training step; for the course's CPU training that costs
    about a third of the time. Raising malloc's mmap and trim thresholds (``mallopt``) keeps the
    buffers in the heap: measured 1.3-1.5x faster pretraining on a 2-core CPU. It changes speed
    only, never results. Linux with glibc only; elsewhere it does nothing and returns False.
    :func:`tlhelpers.train.fit` calls it once when it trains on the CPU. Same effect without
    code: ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432`` before Python starts.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # from glibc's <malloc.h>
    _ALLOCATOR_TUNED = bool(
        libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024) and libc.mallopt(m_trim_threshold, 2**30)
    )
    return _ALLOCATOR_TUNED
