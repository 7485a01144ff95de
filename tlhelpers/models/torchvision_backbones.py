"""ImageNet-pretrained torchvision backbones, used only when their weights are already on disk.

The course never downloads at run time. A ``torchvision`` entry of the registry
(:mod:`tlhelpers.models.registry`), such as ``torchvision/resnet18``, is resolved in this order:

1. an explicit ``path=`` argument;
2. the folder in the environment variable ``TL_TORCHVISION_DIR`` (a file with torchvision's
   own name, e.g. ``resnet18-f37072fd.pth``);
3. the torch hub cache (``torch.hub.get_dir()/checkpoints``), where
   ``resnet18(weights=ResNet18_Weights.DEFAULT)`` stores the file after a download.

torchvision names its weight files ``<arch>-<first hex digits of the sha256>.pth``; where the
name carries that prefix, the file's sha256 is checked against it before loading. Files are
read with ``torch.load(..., weights_only=True)``: tensors only, never arbitrary pickled code.
Load one with ``load_backbone("torchvision/resnet18")``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from torch import nn

from tlhelpers.models.checkpoints import CheckpointError, sha256_of
from tlhelpers.models.registry import Backbone, backbone_info

__all__ = [
    "TORCHVISION_DIR_ENV",
    "find_torchvision_weights",
    "read_torchvision_model",
    "verify_weights",
]

TORCHVISION_DIR_ENV = "TL_TORCHVISION_DIR"
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")


def _candidates(entry: Backbone, path: str | Path | None) -> list[Path]:
    if path is not None:
        return [Path(path)]
    found = []
    if os.environ.get(TORCHVISION_DIR_ENV):
        found.append(Path(os.environ[TORCHVISION_DIR_ENV]) / entry.meta["filename"])
    found.append(Path(torch.hub.get_dir()) / "checkpoints" / entry.meta["filename"])
    return found


def find_torchvision_weights(name: str, *, path: str | Path | None = None) -> Path:
    """Path of the weights of torchvision backbone ``name``; CheckpointError if none is found."""
    entry = backbone_info(name, kind="torchvision")
    candidates = _candidates(entry, path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    where = ", ".join(str(c) for c in candidates)
    arch, weights, filename = (entry.meta[k] for k in ("arch", "weights", "filename"))
    raise CheckpointError(
        f"{name}: no ImageNet weights on this machine (looked in {where}).",
        f"with internet, run torchvision.models.{arch}(weights=torchvision.models.{weights}) "
        f"once, or copy {filename} into ${TORCHVISION_DIR_ENV}.",
        "Get it",
    )


def verify_weights(path: Path) -> str:
    """sha256 of ``path``; checked against the hash prefix in its name where there is one."""
    digest = sha256_of(path)
    match = _HASH_IN_NAME.search(path.name)
    if match and not digest.startswith(match.group(1)):
        raise CheckpointError(
            f"{path} is corrupt or not the file its name says: its sha256 starts {digest[:8]}, "
            f"the name promises {match.group(1)}.",
            "delete it and fetch it again.",
            "Fix",
        )
    return digest


def read_torchvision_model(
    name: str = "torchvision/resnet18",
    *,
    path: str | Path | None = None,
) -> tuple[nn.Module, dict[str, str]]:
    """Build a torchvision backbone with its ImageNet weights read from disk (never downloaded).

    Returns:
        The model in ``eval()`` mode on the CPU, its classifier replaced by ``nn.Identity()`` so
        that ``model(x)`` gives the pooled features, shape (B, ``feature_dim``); and a provenance
        dict (name, path, sha256, weights).
    """
    import torchvision

    entry = backbone_info(name, kind="torchvision")
    weights_path = find_torchvision_weights(name, path=path)
    digest = verify_weights(weights_path)
    state = torch.load(weights_path, map_location="cpu", weights_only=True)
    model = getattr(torchvision.models, entry.meta["arch"])(weights=None)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise CheckpointError(
            f"{weights_path} does not hold {entry.meta['arch']} weights ({first}).",
            f"use the file torchvision downloads for {entry.meta['weights']}.",
            "Fix",
        ) from None
    model.fc = nn.Identity()
    provenance = {
        "name": entry.name,
        "path": str(weights_path),
        "sha256": digest,
        "weights": entry.meta["weights"],
    }
    return model.eval(), provenance
