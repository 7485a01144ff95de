"""The torchvision registry entry resolves weights from disk only, verified, or says how to."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from tlhelpers.models.checkpoints import CheckpointError
from tlhelpers.models.torchvision_backbones import (
    TORCHVISION_DIR_ENV,
    find_torchvision_weights,
    load_torchvision_backbone,
)

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


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError, match="torchvision/resnet18"):
        find_torchvision_weights("torchvision/vgg99")


def test_loads_from_an_explicit_path(tmp_path: Path) -> None:
    path = _write_weights(tmp_path)
    model, provenance = load_torchvision_backbone(path=path)
    assert provenance["sha256"].startswith(path.name.split("-")[1][:8])
    assert not model.training
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 512)


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
        load_torchvision_backbone(path=path)


def test_wrong_architecture_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "not-resnet.pth"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="does not hold resnet18 weights"):
        load_torchvision_backbone(path=path)
