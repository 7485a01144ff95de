"""Course checkpoints: the files behind the ``course`` backbones, with provenance and hashes.

The backbones themselves (names, metadata) are in :mod:`tlhelpers.models.registry`; load one with
:func:`tlhelpers.models.load_backbone`. A checkpoint is two files under
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
import shlex
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save

from tlhelpers.files import atomic_write, folder_lock
from tlhelpers.models.cnn import SmallCNN
from tlhelpers.models.registry import backbone_info
from tlhelpers.settings import Profile, data_dir, get_profile

__all__ = [
    "CheckpointError",
    "checkpoint_paths",
    "load_checkpoint",
    "rebuild_command",
    "save_checkpoint",
    "sha256_of",
    "verify_checkpoint",
]

# The registry fields a manifest records under "backbone", in this order.
_MANIFEST_FIELDS = ("name", "source", "task", "supervision", "similarity", "label_noise")


class CheckpointError(RuntimeError):
    """A course checkpoint (or another backbone's weights) is missing or corrupt.

    ``problem`` says what is wrong and ``fix`` (possibly empty) the command or step that
    repairs it; the message joins them as ``"<problem> Rebuild it: <fix>"`` (``fix_label``
    replaces "Rebuild it"). Code that shows the two apart reads the fields, never the message.
    """

    def __init__(self, problem: str, fix: str = "", fix_label: str = "Rebuild it") -> None:
        super().__init__(f"{problem} {fix_label}: {fix}" if fix else problem)
        self.problem, self.fix, self.fix_label = problem, fix, fix_label

    def __reduce__(self) -> tuple[type[CheckpointError], tuple[str, str, str]]:
        return (type(self), (self.problem, self.fix, self.fix_label))


def rebuild_command(name: str, profile: str, directory: Path | None = None) -> str:
    """The command that (re)creates checkpoint ``name`` for ``profile`` (in ``directory``)."""
    command = f"python -m tlhelpers pretrain {name} --profile {profile}"
    return command + (f" --out {shlex.quote(str(directory))}" if directory is not None else "")


def checkpoint_paths(
    name: str, profile: str | Profile = "quick", directory: Path | None = None
) -> tuple[Path, Path]:
    """Return ``(weights_path, manifest_path)`` of checkpoint ``name`` in ``profile``."""
    backbone_info(name, kind="course")
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
    (of the bytes written) added to what the caller passes (command, seed, metrics, ...).
    The pair is written under an exclusive lock on the folder, weights first: two processes
    saving the same name leave one writer's weights with that same writer's manifest.
    """
    weights_path, manifest_path = checkpoint_paths(name, profile, directory)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    weights = save(state)
    full = {
        "name": name,
        "profile": get_profile(profile).name,
        "config": model.config,
        **manifest,
        "sha256": hashlib.sha256(weights).hexdigest(),
        "backbone": {key: getattr(backbone_info(name), key) for key in _MANIFEST_FIELDS},
    }
    text = json.dumps(full, indent=2, sort_keys=False) + "\n"
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    with folder_lock(weights_path.parent):
        atomic_write(weights_path, lambda handle: handle.write(weights))
        atomic_write(manifest_path, lambda handle: handle.write(text.encode("utf-8")))
    return weights_path, manifest_path


def _read_manifest(manifest_path: Path, fix: str) -> dict[str, Any]:
    """The manifest as a dict with a sha256 string and a config mapping, or CheckpointError."""
    if not manifest_path.is_file():
        raise CheckpointError(f"checkpoint has no manifest at {manifest_path}.", fix)
    try:
        manifest = json.loads(manifest_path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = " ".join(str(error).split())
        raise CheckpointError(
            f"manifest {manifest_path} is not valid JSON in UTF-8 ({reason}).",
            fix,
        ) from error
    if not isinstance(manifest, dict):
        raise CheckpointError(
            f"manifest {manifest_path} holds a JSON {type(manifest).__name__}, not an object "
            "with the checkpoint's sha256 and config.",
            fix,
        )
    sha = manifest.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        raise CheckpointError(f"manifest {manifest_path} has no valid sha256 ({sha!r}).", fix)
    if not isinstance(manifest.get("config"), dict):
        raise CheckpointError(
            f"manifest {manifest_path} lacks the model config needed to rebuild the network "
            f"(config={manifest.get('config')!r}).",
            fix,
        )
    return manifest


def _model_from(data: bytes, manifest: dict[str, Any], weights_path: Path, fix: str) -> SmallCNN:
    """The SmallCNN that ``manifest['config']`` describes, with the weights in ``data``."""
    try:
        state = load(data)
    except Exception as error:  # safetensors raises its own error type for any bad header
        raise CheckpointError(
            f"checkpoint {weights_path} is not a readable safetensors file "
            f"({' '.join(str(error).split())}).",
            fix,
        ) from error
    try:
        model = SmallCNN.from_config(manifest["config"])
    except (TypeError, ValueError) as error:
        raise CheckpointError(
            f"manifest of {weights_path} has an unusable config ({error}).", fix
        ) from error
    try:
        model.load_state_dict(state)
    except RuntimeError as error:  # weights made by a different version of the architecture
        raise CheckpointError(
            f"checkpoint {weights_path} does not fit the current SmallCNN "
            f"({' '.join(str(error).split())}).",
            fix,
        ) from error
    return model


def _read_checkpoint(
    name: str, profile: str | Profile, directory: Path | None
) -> tuple[SmallCNN, dict[str, Any]]:
    """Read manifest and weights once, check the hash of the bytes read, build the model."""
    prof = get_profile(profile).name
    weights_path, manifest_path = checkpoint_paths(name, prof, directory)
    fix = rebuild_command(name, prof, directory)
    with folder_lock(weights_path.parent, shared=True):
        manifest = _read_manifest(manifest_path, fix)
        try:
            data = weights_path.read_bytes()
        except FileNotFoundError:
            raise CheckpointError(
                f"checkpoint {name!r} ({prof}) is missing: no file {weights_path}.", fix
            ) from None
        except OSError as error:
            raise CheckpointError(
                f"checkpoint {weights_path} cannot be read ({error}).", fix
            ) from error
    actual = hashlib.sha256(data).hexdigest()
    if actual != manifest["sha256"]:
        raise CheckpointError(
            f"checkpoint {weights_path} is corrupt or was changed: sha256 {actual[:16]}… does not "
            f"match the manifest's {manifest['sha256'][:16]}….",
            fix,
        )
    return _model_from(data, manifest, weights_path, fix), manifest


def verify_checkpoint(
    name: str, profile: str | Profile = "quick", directory: Path | None = None
) -> dict[str, Any]:
    """Check that checkpoint ``name`` loads: its manifest, the weights' sha256, the network.

    Reads everything :func:`load_checkpoint` reads. Returns the manifest; raises
    :class:`CheckpointError` naming the rebuild command.
    """
    return _read_checkpoint(name, profile, directory)[1]


def load_checkpoint(
    name: str,
    *,
    profile: str | Profile = "quick",
    directory: Path | None = None,
    device: str | torch.device = "cpu",
) -> tuple[SmallCNN, dict[str, Any]]:
    """Verify, then load checkpoint ``name``; return ``(model in eval mode, manifest)``."""
    model, manifest = _read_checkpoint(name, profile, directory)
    return model.to(device).eval(), manifest
