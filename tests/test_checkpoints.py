"""Checkpoint registry: round trip, hash verification, errors that name the fix, shipped files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tlhelpers.__main__ import main as cli_main
from tlhelpers.models import SmallCNN
from tlhelpers.models.checkpoints import (
    BACKBONES,
    CheckpointError,
    checkpoint_paths,
    list_backbones,
    load_checkpoint,
    save_checkpoint,
    verify_all,
    verify_checkpoint,
)
from tlhelpers.pretrain import pretrain
from tlhelpers.settings import QUICK, repo_root


def _tiny_model(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(26, widths=(4, 4, 8, 8))


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    model = _tiny_model().eval()
    save_checkpoint(model, "letters", profile="quick", manifest={"seed": 0}, directory=tmp_path)
    loaded, manifest = load_checkpoint("letters", profile="quick", directory=tmp_path)
    x = torch.randn(5, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert manifest["name"] == "letters" and manifest["seed"] == 0
    assert len(manifest["sha256"]) == 64
    assert not loaded.training
    assert sorted(p.name for p in tmp_path.iterdir()) == ["letters.json", "letters.safetensors"]


def test_corrupt_weights_are_refused_with_the_rebuild_command(tmp_path: Path) -> None:
    save_checkpoint(_tiny_model(), "textures", profile="quick", manifest={}, directory=tmp_path)
    weights, _ = checkpoint_paths("textures", "quick", tmp_path)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="pretrain textures --profile quick"):
        load_checkpoint("textures", profile="quick", directory=tmp_path)


def test_missing_files_name_the_rebuild_command(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="python -m tlhelpers pretrain letters"):
        verify_checkpoint("letters", "quick", tmp_path)
    save_checkpoint(_tiny_model(), "letters", profile="quick", manifest={}, directory=tmp_path)
    checkpoint_paths("letters", "quick", tmp_path)[0].unlink()
    with pytest.raises(CheckpointError, match="missing"):
        verify_checkpoint("letters", "quick", tmp_path)


def test_broken_manifest_is_reported(tmp_path: Path) -> None:
    save_checkpoint(_tiny_model(), "letters", profile="quick", manifest={}, directory=tmp_path)
    checkpoint_paths("letters", "quick", tmp_path)[1].write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        verify_checkpoint("letters", "quick", tmp_path)


def test_unknown_names_and_profiles_list_the_choices() -> None:
    with pytest.raises(CheckpointError, match=r"'resnet9000'.*'letters'"):
        checkpoint_paths("resnet9000")
    with pytest.raises(ValueError, match=r"'medium'.*'quick'"):
        checkpoint_paths("letters", "medium")


def test_registry_lists_every_backbone_with_metadata() -> None:
    assert list_backbones() == list(BACKBONES)
    assert {"letters", "textures", "letters-rotation"} <= set(list_backbones())
    assert BACKBONES["letters-rotation"].supervision == "self-supervised"


def test_shipped_quick_checkpoints_verify_and_load() -> None:
    results = verify_all("quick")
    assert [name for name, ok, _ in results if not ok] == [], results
    for name in list_backbones():
        model, manifest = load_checkpoint(name, profile="quick")
        for key in ("command", "seed", "metrics", "seconds", "versions", "sha256", "config"):
            assert key in manifest, f"{name} manifest lacks {key}"
        assert manifest["command"].startswith(f"python -m tlhelpers pretrain {name}")
        assert manifest["config"]["widths"] == list(QUICK.widths)
        assert model.head.out_features == len(manifest["classes"])
        if BACKBONES[name].label_noise < 1:  # a shuffled-label source learns nothing real
            assert manifest["metrics"]["val_accuracy"] > 1.5 / len(manifest["classes"])


def test_shipped_manifests_are_committed_as_data() -> None:
    folder = repo_root() / "data" / "checkpoints" / "quick"
    for name in list_backbones():
        manifest = json.loads((folder / f"{name}.json").read_text())
        assert manifest["profile"] == "quick"


def test_pretrain_writes_a_loadable_checkpoint(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))
    tiny = replace(
        QUICK, source_images=260, source_val_images=52, pretrain_epochs=1, widths=(4, 4, 8, 8)
    )
    result = pretrain("letters-rotation", tiny, progress=False, directory=tmp_path / "ckpt")
    assert result.paths is not None
    assert 0.0 <= result.val_accuracy <= 1.0
    model, manifest = load_checkpoint(
        "letters-rotation", profile="quick", directory=tmp_path / "ckpt"
    )
    assert model.head.out_features == 4
    assert manifest["train_images"] == 260 and manifest["epochs"] == 1
    assert len(manifest["metrics"]["history"]["train_loss"]) == 1


def test_cli_lists_backbones_and_rejects_unknown_names(capsys) -> None:
    assert cli_main(["backbones"]) == 0
    out = capsys.readouterr().out
    assert "letters-rotation" in out and "self-supervised" in out
    assert "torchvision/resnet18" in out
    with pytest.raises(SystemExit) as info:
        cli_main(["pretrain", "imagenet"])
    assert info.value.code == 2
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err


def test_full_profile_network_trains_a_step_and_names_its_own_rebuild_command(
    tmp_path: Path,
) -> None:
    from tlhelpers.settings import FULL
    from tlhelpers.train import fit

    model = SmallCNN(26, widths=FULL.widths)
    batches = [(torch.randn(8, 3, 32, 32), torch.randint(0, 26, (8,)))]
    optimizer = torch.optim.AdamW(model.parameters(), lr=FULL.pretrain_lr)
    history = fit(model, batches, optimizer=optimizer, epochs=1, progress=False)
    assert history.steps == 1
    with pytest.raises(CheckpointError, match="pretrain letters --profile full"):
        verify_checkpoint("letters", "full", tmp_path)


def test_weights_from_another_architecture_name_the_rebuild_command(tmp_path: Path) -> None:
    model = _tiny_model()
    model.extra = torch.nn.Linear(2, 2)  # a layer the current SmallCNN does not have
    save_checkpoint(model, "letters", profile="quick", manifest={}, directory=tmp_path)
    with pytest.raises(
        CheckpointError, match=r"does not fit the current SmallCNN.*pretrain letters"
    ):
        load_checkpoint("letters", profile="quick", directory=tmp_path)


def test_corrupt_labels_replaces_the_requested_share() -> None:
    import torch

    from tlhelpers.data import ImageSet
    from tlhelpers.pretrain import corrupt_labels

    n = 4000
    clean = ImageSet(torch.zeros(n, 3, 32, 32, dtype=torch.uint8), torch.arange(n) % 26,
                     tuple("abcdefghijklmnopqrstuvwxyz"), "toy")
    assert torch.equal(corrupt_labels(clean, 0.0).labels, clean.labels)
    for epsilon in (0.5, 1.0):
        noisy = corrupt_labels(clean, epsilon)
        changed = (noisy.labels != clean.labels).float().mean().item()
        expected = epsilon * 25 / 26  # a random label equals the true one 1 time in 26
        assert abs(changed - expected) < 0.03, (epsilon, changed)
        assert torch.equal(noisy.images, clean.images)
        assert torch.equal(corrupt_labels(clean, epsilon).labels, noisy.labels)  # fixed stream
    with pytest.raises(ValueError, match=r"epsilon=1\.5"):
        corrupt_labels(clean, 1.5)
