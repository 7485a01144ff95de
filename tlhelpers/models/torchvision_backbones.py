"""ImageNet-pretrained torchvision backbones, used only when their weights are already on disk.

The course never downloads at run time. A registry entry such as ``torchvision/resnet18`` is
resolved in this order:

1. an explicit ``path=`` argument;
2. the folder in the environment variable ``TL_TORCHVISION_DIR`` (a file with torchvision's
   own name, e.g. ``resnet18-f37072fd.pth``);
3. the torch hub cache (``torch.hub.get_dir()/checkpoints``), where
   ``resnet18(weights=ResNet18_Weights.DEFAULT)`` stores the file after a download.

torchvision names its weight files ``<arch>-<first hex digits of the sha256>.pth``; where the
name carries that prefix, the file's sha256 is checked against it before loading. Files are
read with ``torch.load(..., weights_only=True)``: tensors only, never arbitrary pickled code.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from tlhelpers.models.checkpoints import CheckpointError, sha256_of

__all__ = [
    "TORCHVISION_BACKBONES",
    "TORCHVISION_DIR_ENV",
    "TorchvisionBackbone",
    "find_torchvision_weights",
    "load_torchvision_backbone",
]

TORCHVISION_DIR_ENV = "TL_TORCHVISION_DIR"
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")


@dataclass(frozen=True)
class TorchvisionBackbone:
    """A torchvision architecture and the ImageNet weights file it expects."""

    name: str  # registry name, e.g. "torchvision/resnet18"
    arch: str  # torchvision.models builder, e.g. "resnet18"
    weights: str  # weights enum member, e.g. "ResNet18_Weights.IMAGENET1K_V1"
    filename: str  # torchvision's file name, sha256 prefix included
    feature_dim: int  # width of the pooled features before the classifier


TORCHVISION_BACKBONES: dict[str, TorchvisionBackbone] = {
    "torchvision/resnet18": TorchvisionBackbone(
        "torchvision/resnet18",
        "resnet18",
        "ResNet18_Weights.IMAGENET1K_V1",
        "resnet18-f37072fd.pth",
        512,
    ),
}


def _entry(name: str) -> TorchvisionBackbone:
    if name not in TORCHVISION_BACKBONES:
        valid = ", ".join(repr(k) for k in TORCHVISION_BACKBONES)
        raise ValueError(f"name={name!r} is not a torchvision backbone; valid choices: {valid}.")
    return TORCHVISION_BACKBONES[name]


def _candidates(entry: TorchvisionBackbone, path: str | Path | None) -> list[Path]:
    if path is not None:
        return [Path(path)]
    found = []
    if os.environ.get(TORCHVISION_DIR_ENV):
        found.append(Path(os.environ[TORCHVISION_DIR_ENV]) / entry.filename)
    found.append(Path(torch.hub.get_dir()) / "checkpoints" / entry.filename)
    return found


def find_torchvision_weights(name: str, *, path: str | Path | None = None) -> Path:
    """Path of the weights of torchvision backbone ``name``; CheckpointError if none is found."""
    entry = _entry(name)
    candidates = _candidates(entry, path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = ", ".join(str(c) for c in candidates)
    raise CheckpointError(
        f"{name}: no ImageNet weights on this machine (looked in {where}). With internet, run "
        f"torchvision.models.{entry.arch}(weights=torchvision.models.{entry.weights}) once, "
        f"or copy {entry.filename} into ${TORCHVISION_DIR_ENV}."
    )


def _verify(path: Path) -> str:
    """sha256 of ``path``; checked against the hash prefix in its name where there is one."""
    digest = sha256_of(path)
    match = _HASH_IN_NAME.search(path.name)
    if match and not digest.startswith(match.group(1)):
        raise CheckpointError(
            f"{path} is corrupt or not the file its name says: its sha256 starts {digest[:8]}, "
            f"the name promises {match.group(1)}. Delete it and fetch it again."
        )
    return digest


def load_torchvision_backbone(
    name: str = "torchvision/resnet18",
    *,
    path: str | Path | None = None,
) -> tuple[nn.Module, dict[str, str]]:
    """Build a torchvision backbone with its ImageNet weights read from disk (never downloaded).

    Returns:
        The model in ``eval()`` mode, its classifier replaced by ``nn.Identity()`` so that
        ``model(x)`` gives the pooled features, shape (B, ``feature_dim``); and a provenance
        dict (name, path, sha256, weights).
    """
    import torchvision

    entry = _entry(name)
    weights_path = find_torchvision_weights(name, path=path)
    digest = _verify(weights_path)
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    model = getattr(torchvision.models, entry.arch)(weights=None)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise CheckpointError(
            f"{weights_path} does not hold {entry.arch} weights ({first}). Use the file "
            f"torchvision downloads for {entry.weights}."
        ) from None
    model.fc = nn.Identity()
    provenance = {"name": name, "path": str(weights_path), "sha256": digest,
                  "weights": entry.weights}
    return model.eval(), provenance
