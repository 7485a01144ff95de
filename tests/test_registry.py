"""The one backbone registry: names and aliases, listing by kind, one return type, errors that
name the fix, and pretrain_if_missing doing what the notebooks' load_or_pretrain did."""

from __future__ import annotations

import json
from dataclasses import FrozenInstanceError, replace
from pathlib import Path

import pytest
import torch

from tlhelpers import pretrain as pretrain_module
from tlhelpers.models import (
    BACKBONES,
    Backbone,
    LoadedBackbone,
    SmallCNN,
    backbone_info,
    backbone_status,
    list_backbones,
    load_backbone,
)
from tlhelpers.models.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from tlhelpers.settings import QUICK, repo_root

COURSE = ["letters", "textures", "letters-rotation", "letters-noise-50", "letters-noise-80",
          "letters-shuffled"]
TINY = replace(QUICK, source_images=260, source_val_images=52, pretrain_epochs=1,
               widths=(4, 4, 8, 8))


def _tiny_model(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(26, widths=(4, 4, 8, 8))


# --- names, aliases, kinds ---------------------------------------------------------------------


def test_one_registry_holds_every_kind_under_its_name() -> None:
    assert list_backbones() == list(BACKBONES)
    assert list_backbones("course") == COURSE
    assert list_backbones("torchvision") == ["torchvision/resnet18"]
    assert list_backbones("text") == ["minilm"]
    assert all(isinstance(b, Backbone) and b.name == name for name, b in BACKBONES.items())
    assert {b.kind for b in BACKBONES.values()} == {"course", "torchvision", "text"}


def test_records_carry_their_metadata_and_are_frozen() -> None:
    assert BACKBONES["letters-rotation"].supervision == "self-supervised"
    assert BACKBONES["letters-noise-80"].label_noise == 0.8
    assert BACKBONES["letters"].label_noise == 0.0
    minilm = BACKBONES["minilm"]
    assert minilm.num_params == 22_713_216 and minilm.feature_dim == 384
    assert minilm.licence and minilm.preprocessing and len(minilm.sha256) == 64
    assert BACKBONES["torchvision/resnet18"].meta["filename"] == "resnet18-f37072fd.pth"
    for backbone in BACKBONES.values():
        assert backbone.source and backbone.task and backbone.supervision and backbone.licence
    with pytest.raises(FrozenInstanceError):
        minilm.name = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        minilm.meta["revision"] = "0" * 40  # type: ignore[index]


def test_aliases_find_the_same_record() -> None:
    assert backbone_info("sentence-transformers/all-MiniLM-L6-v2") is BACKBONES["minilm"]
    assert backbone_info("sentence-transformers/all-MiniLM-L6-v2", kind="text").name == "minilm"
    assert backbone_info("letters", kind="course") is BACKBONES["letters"]


def test_an_unknown_name_names_itself_the_valid_names_and_the_fix() -> None:
    with pytest.raises(ValueError) as error:
        backbone_info("resnet50")
    message = str(error.value)
    assert "name='resnet50'" in message
    for name in BACKBONES:
        assert repr(name) in message
    assert "alias 'sentence-transformers/all-MiniLM-L6-v2'" in message
    assert "load_backbone('letters')" in message and "python -m tlhelpers backbones" in message
    with pytest.raises(ValueError, match="resnet50"):
        load_backbone("resnet50")


def test_a_name_of_another_kind_lists_that_kind_only() -> None:
    with pytest.raises(ValueError) as error:
        backbone_info("minilm", kind="course")
    message = str(error.value)
    assert "'minilm' is not a course backbone" in message and "'letters'" in message
    assert "'torchvision/resnet18'" not in message


def test_an_unknown_kind_lists_the_kinds() -> None:
    for call in (lambda: list_backbones("imagenet"), lambda: backbone_info("letters", "cv")):
        with pytest.raises(ValueError, match=r"kind=.*'course', 'torchvision', 'text'"):
            call()


# --- one return type ---------------------------------------------------------------------------


def test_a_course_checkpoint_loads_as_a_loaded_backbone() -> None:
    loaded = load_backbone("letters")
    model, manifest = load_checkpoint("letters", profile="quick")
    assert isinstance(loaded, LoadedBackbone) and loaded.backbone is BACKBONES["letters"]
    assert loaded.tokenizer is None and not loaded.model.training
    assert loaded.provenance == manifest
    state = model.state_dict()
    assert all(torch.equal(v, state[k]) for k, v in loaded.model.state_dict().items())
    assert next(loaded.model.parameters()).device.type == "cpu"


def test_source_accuracy_is_the_manifest_fraction_in_percent() -> None:
    loaded = load_backbone("letters-noise-50")
    fraction = loaded.provenance["metrics"]["val_accuracy"]
    assert 0 < fraction < 1
    assert loaded.source_accuracy == 100 * fraction
    without = LoadedBackbone(loaded.model, loaded.backbone, {"metrics": {}})
    assert without.source_accuracy is None
    other_kind = LoadedBackbone(loaded.model, BACKBONES["minilm"], loaded.provenance)
    assert other_kind.source_accuracy is None


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("minilm", {"pretrain_if_missing": True}, "pretrain_if_missing=True is for course"),
        ("torchvision/resnet18", {"pretrain_if_missing": True}, "'letters'"),
        ("letters", {"num_labels": 2}, "num_labels=2 is for text backbones"),
        ("letters", {"allow_download": True}, "allow_download=True is for text"),
    ],
)
def test_options_of_another_kind_are_refused_before_any_work(
    name: str, options: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        load_backbone(name, **options)


# --- pretrain_if_missing -----------------------------------------------------------------------


def test_a_missing_checkpoint_is_an_error_unless_pretraining_is_asked_for(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="pretrain letters --profile quick"):
        load_backbone("letters", path=tmp_path)


def test_pretrain_if_missing_pretrains_saves_and_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list = []

    def fake_pretrain(name, profile, **kwargs):
        calls.append((name, profile, kwargs))
        save_checkpoint(_tiny_model(), name, profile=profile, manifest={
            "metrics": {"val_accuracy": 0.25}}, directory=kwargs["directory"])

    monkeypatch.setattr(pretrain_module, "pretrain", fake_pretrain)
    loaded = load_backbone("textures", path=tmp_path, pretrain_if_missing=True)
    assert calls == [("textures", "quick", {"device": "auto", "directory": tmp_path})]
    assert loaded.source_accuracy == 25.0 and isinstance(loaded.model, SmallCNN)
    out = capsys.readouterr().out
    assert "pretrain textures --profile quick" in out
    assert "-> pretraining 'textures' now with the same recipe" in out
    load_backbone("textures", path=tmp_path, pretrain_if_missing=True, device="cpu")
    assert len(calls) == 1  # there now: loaded, not pretrained again


def test_pretrain_if_missing_gives_what_load_or_pretrain_gave(tmp_path: Path) -> None:
    """The notebooks' written-out load_or_pretrain and load_backbone make the same weights."""

    def load_or_pretrain(name: str, directory: Path) -> tuple[torch.nn.Module, dict]:
        try:
            return load_checkpoint(name, profile=TINY, directory=directory)
        except CheckpointError:
            pretrain_module.pretrain(name, TINY, device="cpu", progress=False,
                                     directory=directory)
            return load_checkpoint(name, profile=TINY, directory=directory)

    by_hand, manifest = load_or_pretrain("letters-rotation", tmp_path / "by-hand")
    loaded = load_backbone("letters-rotation", profile=TINY, device="cpu",
                           path=tmp_path / "package", pretrain_if_missing=True)
    state = by_hand.state_dict()
    assert loaded.model.state_dict().keys() == state.keys()
    assert all(torch.equal(v, state[k]) for k, v in loaded.model.state_dict().items())
    assert loaded.provenance["sha256"] == manifest["sha256"]
    assert loaded.source_accuracy == 100 * manifest["metrics"]["val_accuracy"]


# --- status ------------------------------------------------------------------------------------


def test_status_of_a_course_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state, detail, fix = backbone_status("letters")
    assert state == "ok" and "sha256 ok" in detail and "source val accuracy" in detail
    assert fix == ""
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path))
    state, detail, fix = backbone_status("letters", "full")
    assert state == "error" and "letters" in detail
    assert fix == "python -m tlhelpers pretrain letters --profile full"
    with pytest.raises(ValueError, match="'nope'"):
        backbone_status("nope")


# --- notebooks ---------------------------------------------------------------------------------


def _code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def test_load_or_pretrain_is_written_out_once_then_the_package_is_called() -> None:
    notebooks = sorted((repo_root() / "notebooks").glob("0[1-9]_*.ipynb"))
    first, *later = notebooks
    assert first.name.startswith("01_")
    assert "def load_or_pretrain" in _code(first)
    assert "pretrain_if_missing=True" in _code(first)  # checked against the package's version
    for notebook in later:
        assert "def load_or_pretrain" not in _code(notebook), notebook.name
