"""Course checkpoints: a small backbone registry with provenance and hashes.

Modelled on torchvision's weights registry (``models/_api.py``): each course backbone has a
name and metadata that travel with it. A checkpoint is two files under
``data_dir()/checkpoints/<profile>/``:

- ``<name>.safetensors``: the weights (safetensors never executes code when read, unlike pickle);
- ``<name>.json``: the manifest: sha256 of the weights, the command that made them, profile,
  seed, source accuracy, seconds, library versions.

Loading verifies the sha256 first; a missing or corrupt file raises :class:`CheckpointError`
naming the command that rebuilds it. Writes are atomic (temporary file, then rename).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save

from tlhelpers.files import atomic_write
from tlhelpers.models.cnn import SmallCNN
from tlhelpers.settings import Profile, data_dir, get_profile

__all__ = [
    "BACKBONES",
    "BackboneInfo",
    "CheckpointError",
    "checkpoint_paths",
    "list_backbones",
    "load_backbone",
    "load_checkpoint",
    "rebuild_command",
    "save_checkpoint",
    "sha256_of",
    "verify_all",
    "verify_checkpoint",
]


class CheckpointError(RuntimeError):
    """A course checkpoint is missing, corrupt or unknown; the message says how to fix it."""


@dataclass(frozen=True)
class BackboneInfo:
    """What a course backbone is: its pretraining data, task and labels."""

    name: str
    source: str  # the data it was pretrained on
    task: str  # what it learned to predict
    supervision: str  # "supervised" or "self-supervised"
    similarity: str  # how close the source is to the course's novel-class targets
    label_noise: float = 0.0  # share of training labels replaced by random ones (Wang et al. 2019)


BACKBONES: dict[str, BackboneInfo] = {
    info.name: info
    for info in (
        BackboneInfo(
            name="letters",
            source="26 Latin letters (either case) rendered in 14 training fonts, strong style",
            task="classify the letter (26 classes)",
            supervision="supervised",
            similarity="similar: glyph shapes, like the digit and Greek targets",
        ),
        BackboneInfo(
            name="textures",
            source="procedural textures (stripes, checks, dots, waves, ...)",
            task="classify the texture family",
            supervision="supervised",
            similarity="dissimilar: no glyph shapes at all",
        ),
        BackboneInfo(
            name="letters-rotation",
            source="the same letter images as 'letters', labels thrown away",
            task="predict the rotation applied (0/90/180/270 degrees)",
            supervision="self-supervised",
            similarity="similar images, but learned without any labels",
        ),
        BackboneInfo(
            name="letters-noise-50",
            source="the 'letters' images with 50% of the training labels replaced at random",
            task="classify the letter (26 classes), from corrupted labels",
            supervision="supervised (corrupted labels)",
            similarity="similar images; a deliberately corrupted source",
            label_noise=0.5,
        ),
        BackboneInfo(
            name="letters-noise-80",
            source="the 'letters' images with 80% of the training labels replaced at random",
            task="classify the letter (26 classes), from corrupted labels",
            supervision="supervised (corrupted labels)",
            similarity="similar images; a deliberately corrupted source",
            label_noise=0.8,
        ),
        BackboneInfo(
            name="letters-shuffled",
            source="the 'letters' images with 100% of the training labels replaced at random",
            task="classify the letter (26 classes), from corrupted labels",
            supervision="supervised (corrupted labels)",
            similarity="similar images; a deliberately corrupted source",
            label_noise=1.0,
        ),
    )
}


def list_backbones() -> list[str]:
    """Names of the course backbones, e.g. ``["letters", "textures", "letters-rotation"]``."""
    return list(BACKBONES)


def _check_name(name: str) -> BackboneInfo:
    if name not in BACKBONES:
        raise CheckpointError(
            f"backbone {name!r} is not a course backbone; valid names: "
            f"{', '.join(repr(n) for n in BACKBONES)}."
        )
    return BACKBONES[name]


def rebuild_command(name: str, profile: str) -> str:
    """The command that (re)creates checkpoint ``name`` for ``profile``."""
    return f"python -m tlhelpers pretrain {name} --profile {profile}"


def checkpoint_paths(
    name: str, profile: str | Profile = "quick", directory: Path | None = None
) -> tuple[Path, Path]:
    """Return ``(weights_path, manifest_path)`` of checkpoint ``name`` in ``profile``."""
    _check_name(name)
    prof = get_profile(profile).name
    folder = Path(directory) if directory is not None else data_dir() / "checkpoints" / prof
    return folder / f"{name}.safetensors", folder / f"{name}.json"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    model: SmallCNN,
    name: str,
    *,
    profile: str | Profile,
    manifest: dict[str, Any],
    directory: Path | None = None,
) -> tuple[Path, Path]:
    """Write ``model``'s weights and a manifest for checkpoint ``name``; return both paths.

    The manifest gets ``name``, ``profile``, ``config`` (to rebuild the model) and ``sha256``
    added to what the caller passes (command, seed, metrics, versions, ...).
    """
    weights_path, manifest_path = checkpoint_paths(name, profile, directory)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    atomic_write(weights_path, lambda handle: handle.write(save(state)))
    full = {
        "name": name,
        "profile": get_profile(profile).name,
        "config": model.config,
        **manifest,
        "sha256": sha256_of(weights_path),
        "backbone": vars(BACKBONES[name]),
    }
    text = json.dumps(full, indent=2, sort_keys=False) + "\n"
    atomic_write(manifest_path, lambda handle: handle.write(text.encode("utf-8")))
    return weights_path, manifest_path


def _read_manifest(name: str, profile: str, manifest_path: Path) -> dict[str, Any]:
    fix = rebuild_command(name, profile)
    if not manifest_path.exists():
        raise CheckpointError(
            f"checkpoint {name!r} ({profile}) has no manifest at {manifest_path}. Rebuild it: {fix}"
        )
    try:
        return json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CheckpointError(
            f"manifest {manifest_path} is not valid JSON ({error}). Rebuild it: {fix}"
        ) from error


def verify_checkpoint(
    name: str, profile: str | Profile = "quick", directory: Path | None = None
) -> dict[str, Any]:
    """Check that checkpoint ``name`` exists and matches its manifest's sha256.

    Returns the manifest; raises :class:`CheckpointError` naming the rebuild command.
    """
    prof = get_profile(profile).name
    weights_path, manifest_path = checkpoint_paths(name, prof, directory)
    manifest = _read_manifest(name, prof, manifest_path)
    fix = rebuild_command(name, prof)
    if not weights_path.exists():
        raise CheckpointError(
            f"checkpoint {name!r} ({prof}) is missing: no file {weights_path}. Rebuild it: {fix}"
        )
    actual = sha256_of(weights_path)
    if actual != manifest.get("sha256"):
        raise CheckpointError(
            f"checkpoint {weights_path} is corrupt or was changed: sha256 {actual[:16]}… does not "
            f"match the manifest's {str(manifest.get('sha256'))[:16]}…. Rebuild it: {fix}"
        )
    return manifest


def load_checkpoint(
    name: str,
    *,
    profile: str | Profile = "quick",
    directory: Path | None = None,
    device: str | torch.device = "cpu",
) -> tuple[SmallCNN, dict[str, Any]]:
    """Verify, then load checkpoint ``name``; return ``(model in eval mode, manifest)``."""
    manifest = verify_checkpoint(name, profile, directory)
    weights_path, _ = checkpoint_paths(name, profile, directory)
    model = SmallCNN.from_config(manifest["config"])
    try:
        model.load_state_dict(load_file(str(weights_path), device="cpu"))
    except RuntimeError as error:  # weights made by a different version of the architecture
        prof = get_profile(profile).name
        raise CheckpointError(
            f"checkpoint {weights_path} does not fit the current SmallCNN "
            f"({' '.join(str(error).split())}). "
            f"Rebuild it: {rebuild_command(name, prof)}"
        ) from error
    return model.to(device).eval(), manifest


def load_backbone(name: str, *, profile: str | Profile = "quick") -> SmallCNN:
    """The pretrained network ``name`` (see :func:`list_backbones`), verified, in eval mode."""
    model, _ = load_checkpoint(name, profile=profile)
    return model


def verify_all(profile: str | Profile = "quick") -> list[tuple[str, bool, str]]:
    """``(name, ok, detail)`` for every course backbone in ``profile``."""
    results = []
    for name in BACKBONES:
        try:
            manifest = verify_checkpoint(name, profile)
        except CheckpointError as error:
            results.append((name, False, str(error)))
        else:
            acc = manifest.get("metrics", {}).get("val_accuracy")
            detail = f"sha256 ok ({manifest['sha256'][:12]}…)"
            if acc is not None:
                detail += f", source val accuracy {100 * acc:.1f}%"
            results.append((name, True, detail))
    return results
