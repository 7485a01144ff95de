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
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load, save

from tlhelpers.files import atomic_write, folder_lock
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
    """A course checkpoint (or another backbone) is missing, corrupt or unknown.

    ``problem`` says what is wrong and ``fix`` (possibly empty) the command or step that
    repairs it; the message joins them as ``"<problem> Rebuild it: <fix>"`` (``fix_label``
    replaces "Rebuild it"). Code that shows the two apart reads the fields, never the message.
    """

    def __init__(self, problem: str, fix: str = "", fix_label: str = "Rebuild it") -> None:
        super().__init__(f"{problem} {fix_label}: {fix}" if fix else problem)
        self.problem, self.fix, self.fix_label = problem, fix, fix_label

    def __reduce__(self) -> tuple[type[CheckpointError], tuple[str, str, str]]:
        return (type(self), (self.problem, self.fix, self.fix_label))


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


def rebuild_command(name: str, profile: str, directory: Path | None = None) -> str:
    """The command that (re)creates checkpoint ``name`` for ``profile`` (in ``directory``)."""
    command = f"python -m tlhelpers pretrain {name} --profile {profile}"
    return command + (f" --out {shlex.quote(str(directory))}" if directory is not None else "")


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
        "backbone": vars(BACKBONES[name]),
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


def load_backbone(name: str, *, profile: str | Profile = "quick") -> SmallCNN:
    """The pretrained network ``name`` (see :func:`list_backbones`), verified, in eval mode."""
    model, _ = load_checkpoint(name, profile=profile)
    return model


def verify_all(profile: str | Profile = "quick") -> list[tuple[str, bool, str]]:
    """``(name, ok, detail)`` for every course backbone in ``profile``.

    A failed check's detail is the problem only; :func:`rebuild_command` gives its fix.
    """
    results = []
    for name in BACKBONES:
        try:
            manifest = verify_checkpoint(name, profile)
        except CheckpointError as error:
            results.append((name, False, error.problem))
        else:
            metrics = manifest.get("metrics")
            acc = metrics.get("val_accuracy") if isinstance(metrics, dict) else None
            detail = f"sha256 ok ({manifest['sha256'][:12]}…)"
            if isinstance(acc, (int, float)):
                detail += f", source val accuracy {100 * acc:.1f}%"
            results.append((name, True, detail))
    return results
