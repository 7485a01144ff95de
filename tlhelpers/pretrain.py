"""Pretraining recipes for the course checkpoints (``python -m tlhelpers pretrain NAME``).

Each recipe trains :class:`~tlhelpers.models.SmallCNN` on a source world with one loop
(:func:`tlhelpers.train.fit`): AdamW with a one-cycle learning-rate schedule (Smith & Topin,
2019), sizes from the profile. ``letters-rotation`` is self-supervised: the letter images' labels
are thrown away and the network learns to predict which rotation was applied (Gidaris et al.,
"Unsupervised representation learning by predicting image rotations", ICLR 2018).
"""

from __future__ import annotations

import math
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import tlhelpers
from tlhelpers import _checks
from tlhelpers.data import ImageSet, letters, rotation_task, textures
from tlhelpers.models.checkpoints import CheckpointError, checkpoint_paths, save_checkpoint
from tlhelpers.models.cnn import SmallCNN
from tlhelpers.models.registry import backbone_info
from tlhelpers.settings import (
    Profile,
    full_profile_warning,
    get_profile,
    pick_device,
    seed_everything,
)
from tlhelpers.train import History, fit

__all__ = ["PretrainResult", "corrupt_labels", "pretrain", "source_data"]


@dataclass(frozen=True)
class PretrainResult:
    """What a pretraining run produced."""

    model: SmallCNN
    history: History
    val_accuracy: float  # in percent (0–100) on the source world's held-out images
    seconds: float
    paths: tuple[Path, Path] | None  # (weights, manifest) when saved


def _letters(profile: Profile, seed: int) -> tuple[ImageSet, ImageSet]:
    return letters("train", profile, seed=seed), letters("val", profile, seed=seed)


def _textures(profile: Profile, seed: int) -> tuple[ImageSet, ImageSet]:
    return textures("train", profile, seed=seed), textures("val", profile, seed=seed)


def _letters_rotation(profile: Profile, seed: int) -> tuple[ImageSet, ImageSet]:
    train, val = _letters(profile, seed)
    return rotation_task(train, seed=seed), rotation_task(val, seed=seed + 1)


def corrupt_labels(data: ImageSet, epsilon: float, *, seed: int = 2019) -> ImageSet:
    """Replace each label, with probability ``epsilon``, by one drawn uniformly at random.

    Wang et al. (2019) corrupt a source this way to sweep it from useful (0) to useless (1).
    A replaced label may by chance equal the true one (probability 1/classes).
    """
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon={epsilon!r} must be in [0, 1], e.g. 0.5 for half the labels.")
    rng = np.random.default_rng([seed, round(epsilon * 1000)])
    labels = data.labels.numpy().copy()
    replaced = rng.random(len(labels)) < epsilon
    labels[replaced] = rng.integers(0, len(data.classes), int(replaced.sum()))
    name = f"{data.name}, {epsilon:.0%} of labels random"
    return ImageSet(data.images, torch.from_numpy(labels), data.classes, name)


def _letters_label_noise(epsilon: float) -> Callable[[Profile, int], tuple[ImageSet, ImageSet]]:
    """Letters with corrupted *training* labels; validation labels stay clean, so the
    manifest's accuracy says how much of the real task the network still learned."""

    def make(profile: Profile, seed: int) -> tuple[ImageSet, ImageSet]:
        train, val = _letters(profile, seed)
        return corrupt_labels(train, epsilon), val

    return make


_SOURCES: dict[str, Callable[[Profile, int], tuple[ImageSet, ImageSet]]] = {
    "letters": _letters,
    "textures": _textures,
    "letters-rotation": _letters_rotation,
    "letters-noise-50": _letters_label_noise(0.5),
    "letters-noise-80": _letters_label_noise(0.8),
    "letters-shuffled": _letters_label_noise(1.0),
}


def source_data(name: str, profile: str | Profile, *, seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """The ``(train, val)`` source world that course backbone ``name`` is pretrained on."""
    return _SOURCES[backbone_info(name, kind="course").name](get_profile(profile), seed)


def _versions() -> dict[str, str]:
    import safetensors
    import torchvision

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "tlhelpers": tlhelpers.__version__,
    }


def _fraction(percent: float, n: int) -> float:
    """The fraction k / n that ``fit``'s accuracy ``percent`` (100 × k / n) was computed from.

    Bit for bit: ``percent / 100`` can be a unit in the last place away from k / n.
    """
    if math.isnan(percent):
        return percent
    fraction = round(percent * n / 100) / n
    if 100 * fraction != percent:
        raise ValueError(f"accuracy {percent!r}% is not 100 × k / {n} for a whole number k.")
    return fraction


def _manifest_metrics(history: History, train_images: int, val_images: int) -> dict[str, Any]:
    """The manifest's metrics, accuracies as fractions in [0, 1] (the unit checkpoint files
    keep), each exactly the fraction that was measured, so the files read as they always did."""
    record = history.as_dict()
    record["train_acc"] = [_fraction(p, train_images) for p in history.train_acc]
    record["val_acc"] = [_fraction(p, val_images) for p in history.val_acc]
    return {
        "val_accuracy": record["val_acc"][-1],
        "train_accuracy": record["train_acc"][-1],
        "history": record,
    }


def _check_writable_folder(folder: Path) -> None:
    """Fail before training when the checkpoint folder cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise CheckpointError(
            f"cannot write checkpoints to {folder} ({error}).",
            "pass --out (directory=) a folder you can write to",
            "Fix",
        ) from error


def pretrain(
    name: str,
    profile: str | Profile = "quick",
    *,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    save: bool = True,
    directory: Path | None = None,
    command: str | None = None,
) -> PretrainResult:
    """Pretrain backbone ``name`` on its source world and (by default) save the checkpoint.

    Args:
        name: a course backbone, one of ``tlhelpers.models.list_backbones("course")``.
        profile: "quick" or "full" (or a Profile); sizes, epochs and learning rate come from it.
        seed: seeds data order and initialisation; the source world uses its own fixed stream.
        device: "auto", "cpu", "cuda" or "mps", or a torch.device. The full profile without
            CUDA warns first (it is sized for a GPU), as notebooks do.
        save: write ``<name>.safetensors`` and ``<name>.json`` under the checkpoints folder.
        directory: where to save instead of ``data_dir()/checkpoints/<profile>``.
        command: the command line recorded in the manifest.
    """
    backbone_info(name, kind="course")  # an unknown name fails before any work
    prof = get_profile(profile)
    seed = _checks.seed("seed", seed)
    dev = pick_device(device)
    if save:
        _check_writable_folder(checkpoint_paths(name, prof, directory)[0].parent)
    warning = full_profile_warning(prof, cuda=dev.type == "cuda")
    if warning:
        warnings.warn(warning, RuntimeWarning, stacklevel=2)
    train_set, val_set = source_data(name, prof, seed=0)
    seed_everything(seed)
    model = SmallCNN(len(train_set.classes), widths=prof.widths)
    train_loader = train_set.loader(prof.batch_size, shuffle=True, seed=seed)
    val_loader = val_set.loader(512, shuffle=False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=prof.pretrain_lr, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=prof.pretrain_lr, total_steps=prof.pretrain_epochs * len(train_loader)
    )
    start = time.perf_counter()
    history = fit(
        model,
        train_loader,
        val_loader,
        optimizer=optimizer,
        scheduler=scheduler,
        epochs=prof.pretrain_epochs,
        device=dev,
        progress=progress,
        desc=f"pretrain {name}",
    )
    seconds = time.perf_counter() - start
    model = model.cpu().eval()
    val_accuracy = history.val_acc[-1]
    paths = None
    if save:
        manifest = {
            "command": command
            or f"python -m tlhelpers pretrain {name} --profile {prof.name} --seed {seed}",
            "seed": seed,
            "device": str(dev),
            "classes": list(train_set.classes),
            "train_images": len(train_set),
            "val_images": len(val_set),
            "epochs": prof.pretrain_epochs,
            "metrics": _manifest_metrics(history, len(train_set), len(val_set)),
            "seconds": round(seconds, 1),
            "versions": _versions(),
        }
        paths = save_checkpoint(model, name, profile=prof, manifest=manifest, directory=directory)
    return PretrainResult(model, history, val_accuracy, seconds, paths)
