"""The torchvision registry entry resolves weights from disk only, verified, or says how to."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from tlhelpers.models import LoadedBackbone, load_backbone
from tlhelpers.models.checkpoints import CheckpointError
from tlhelpers.models.torchvision_backbones import TORCHVISION_DIR_ENV, find_torchvision_weights

torchvision = pytest.importorskip("torchvision")


def _write_weights(folder: Path, *, name_hash: str | None = None) -> Path:
    """Random resnet18 weights (half precision, to keep the file small) under torchvision's name."""
    torch.manual_seed(0)
    state = {k: (v.half() if v.is_floating_point() else v)
             for k, v in torchvision.models.resnet18(weights=None).state_dict().items()}
    tmp = folder / "weights.pth"
    torch.save(state, tmp)
    digest = hashlib.sha256(tmp.read_bytes()).hexdigest()
    target = folder / f"resnet18-{name_hash or digest[:8]}.pth"
    tmp.rename(target)
    return target


@pytest.fixture(autouse=True)
def _isolated_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An empty torch hub folder and no TL_TORCHVISION_DIR, whatever the machine has."""
    monkeypatch.delenv(TORCHVISION_DIR_ENV, raising=False)
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield
    torch.hub.set_dir(previous)


def test_missing_weights_say_how_to_get_them() -> None:
    with pytest.raises(CheckpointError) as error:
        find_torchvision_weights("torchvision/resnet18")
    message = str(error.value)
    assert "ResNet18_Weights.IMAGENET1K_V1" in message and TORCHVISION_DIR_ENV in message
    assert "\n" not in message
    assert TORCHVISION_DIR_ENV in error.value.fix and "ImageNet" in error.value.problem


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError, match="torchvision/resnet18"):
        find_torchvision_weights("torchvision/vgg99")
    with pytest.raises(ValueError, match=r"'letters' is not a torchvision backbone"):
        find_torchvision_weights("letters")


def test_loads_from_an_explicit_path(tmp_path: Path) -> None:
    path = _write_weights(tmp_path)
    loaded = load_backbone("torchvision/resnet18", path=path)
    assert isinstance(loaded, LoadedBackbone) and loaded.tokenizer is None
    assert loaded.backbone.kind == "torchvision" and loaded.source_accuracy is None
    provenance = loaded.provenance
    assert provenance["sha256"].startswith(path.name.split("-")[1][:8])
    assert provenance["path"] == str(path) and provenance["name"] == "torchvision/resnet18"
    model = loaded.model
    assert not model.training
    assert sum(p.numel() for p in model.parameters()) == loaded.backbone.num_params
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, loaded.backbone.feature_dim)


def test_resolves_environment_folder_then_hub_cache(tmp_path: Path, monkeypatch) -> None:
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    hub.mkdir(parents=True)
    hub_file = _write_weights(hub)
    # the registry expects torchvision's own file name
    hub_file = hub_file.rename(hub / "resnet18-f37072fd.pth")
    assert find_torchvision_weights("torchvision/resnet18") == hub_file
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    (env_dir / "resnet18-f37072fd.pth").write_bytes(hub_file.read_bytes())
    monkeypatch.setenv(TORCHVISION_DIR_ENV, str(env_dir))
    assert find_torchvision_weights("torchvision/resnet18") == env_dir / "resnet18-f37072fd.pth"


def test_hash_in_the_name_is_checked(tmp_path: Path) -> None:
    path = _write_weights(tmp_path, name_hash="00000000")
    with pytest.raises(CheckpointError, match="promises 00000000"):
        load_backbone("torchvision/resnet18", path=path)


def test_wrong_architecture_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "not-resnet.pth"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="does not hold resnet18 weights"):
        load_backbone("torchvision/resnet18", path=path)


def test_status_says_where_the_weights_are_and_how_to_get_them(tmp_path: Path, monkeypatch) -> None:
    from dataclasses import replace

    from tlhelpers.models import BACKBONES, backbone_status

    state, detail, fix = backbone_status("torchvision/resnet18")
    assert state == "warning" and "no ImageNet weights" in detail and TORCHVISION_DIR_ENV in fix
    env_dir = tmp_path / "env"
    env_dir.mkdir()
    _write_weights(env_dir).rename(env_dir / "resnet18-f37072fd.pth")  # a hash its name lacks
    monkeypatch.setenv(TORCHVISION_DIR_ENV, str(env_dir))
    state, detail, fix = backbone_status("torchvision/resnet18")
    assert state == "warning" and "promises f37072fd" in detail and "delete it" in fix
    good = _write_weights(tmp_path)  # named by its own hash, as torchvision names its files
    entry = BACKBONES["torchvision/resnet18"]
    monkeypatch.setitem(BACKBONES, entry.name, replace(entry, meta={**entry.meta,
                                                                     "filename": good.name}))
    monkeypatch.setenv(TORCHVISION_DIR_ENV, str(tmp_path))
    assert backbone_status("torchvision/resnet18") == ("ok", f"weights at {good} (sha256 matches "
                                                       "its name)", "")
