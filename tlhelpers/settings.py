"""Course settings: the two run profiles, where files live, device choice and seeding.

A notebook's `parameters` cell holds only literals (`profile = "quick"`, `seed = 0`,
`device = "auto"`); everything else a notebook needs to size its experiments is read from the
:class:`Profile` returned by :func:`get_profile`, never from scattered ``if profile == ...``.

Paths default to folders inside the repository and can be moved with environment variables:
``TL_DATA_DIR`` (shipped data and checkpoints), ``TL_CACHE_DIR`` (generated datasets) and
``TL_FIGURES_DIR`` (saved figures).
"""

from __future__ import annotations

import ctypes
import os
import random
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch

from tlhelpers import _checks

__all__ = [
    "FULL",
    "PROFILES",
    "QUICK",
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

    Make a variant with ``dataclasses.replace(QUICK, pretrain_epochs=1)``.
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


def repo_root() -> Path:
    """The course repository's root folder (the one holding ``notebooks/`` and ``data/``)."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def _dir_from_env(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    path = Path(value).expanduser() if value else default
    return path


def data_dir() -> Path:
    """Shipped data and course checkpoints; ``TL_DATA_DIR`` moves it."""
    return _dir_from_env("TL_DATA_DIR", repo_root() / "data")


def make_folder(path: Path, described: str, fix: str) -> Path:
    """Create ``path`` (and its parents); an OSError says what ``described`` is and the ``fix``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            error.errno,
            f"{described} cannot be created or is not a folder ({error.strerror}); {fix}",
        ) from error
    return path


def _made_dir(variable: str, default: Path) -> Path:
    """The folder ``variable`` names (or ``default``), created; an OSError names the variable."""
    path = _dir_from_env(variable, default)
    return make_folder(
        path,
        f"{variable}: the folder {path}",
        f"set {variable} to a folder you can write to, or unset it to use {default}",
    )


def check_writable(folder: Path, variable: str | None = None) -> None:
    """Raise an OSError naming ``variable`` (or the folder) unless a file can be made in it."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        fix = f"set {variable} to a folder you can write to" if variable else "use another"
        raise OSError(
            error.errno, f"cannot write to {folder} ({error.strerror}); {fix}"
        ) from error


def cache_dir() -> Path:
    """Generated datasets (regenerable); ``TL_CACHE_DIR`` moves it. Created on demand.

    Raises an OSError naming ``TL_CACHE_DIR`` when the folder cannot be created.
    """
    return _made_dir("TL_CACHE_DIR", repo_root() / ".cache")


def figures_dir() -> Path:
    """Where ``save_figure`` writes; ``TL_FIGURES_DIR`` moves it. Created on demand.

    Raises an OSError naming ``TL_FIGURES_DIR`` when the folder cannot be created.
    """
    return _made_dir("TL_FIGURES_DIR", repo_root() / "build" / "figures")


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
