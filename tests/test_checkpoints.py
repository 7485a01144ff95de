"""Checkpoint registry: round trip, hash verification, errors that name the fix, shipped files."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tlhelpers.__main__ import main as cli_main
from tlhelpers.models import BACKBONES, SmallCNN, backbone_status, list_backbones
from tlhelpers.models.checkpoints import (
    CheckpointError,
    checkpoint_paths,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from tlhelpers.pretrain import _fraction, pretrain
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
    with pytest.raises(ValueError, match=r"'resnet9000'.*'letters'"):
        checkpoint_paths("resnet9000")
    with pytest.raises(ValueError, match=r"'minilm' is not a course backbone.*'letters'"):
        checkpoint_paths("minilm")  # in the registry, but not a course checkpoint
    with pytest.raises(ValueError, match=r"'medium'.*'quick'"):
        checkpoint_paths("letters", "medium")


def test_manifests_record_the_backbone_fields_they_always_did(tmp_path: Path) -> None:
    save_checkpoint(_tiny_model(), "letters-noise-50", profile="quick", manifest={},
                    directory=tmp_path)
    record = json.loads((tmp_path / "letters-noise-50.json").read_text())["backbone"]
    assert list(record) == ["name", "source", "task", "supervision", "similarity", "label_noise"]
    shipped = json.loads(
        (repo_root() / "data/checkpoints/quick/letters-noise-50.json").read_text()
    )["backbone"]
    assert record == shipped


def test_shipped_quick_checkpoints_verify_and_load() -> None:
    states = {name: backbone_status(name, "quick") for name in list_backbones("course")}
    assert [name for name, (state, _, _) in states.items() if state != "ok"] == [], states
    for name in list_backbones("course"):
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
    for name in list_backbones("course"):
        manifest = json.loads((folder / f"{name}.json").read_text())
        assert manifest["profile"] == "quick"


def test_pretrain_writes_a_loadable_checkpoint(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))
    tiny = replace(
        QUICK, source_images=260, source_val_images=52, pretrain_epochs=1, widths=(4, 4, 8, 8)
    )
    result = pretrain("letters-rotation", tiny, progress=False, directory=tmp_path / "ckpt")
    assert result.paths is not None
    assert 0.0 <= result.val_accuracy <= 100.0  # percent
    model, manifest = load_checkpoint(
        "letters-rotation", profile="quick", directory=tmp_path / "ckpt"
    )
    assert model.head.out_features == 4
    assert manifest["train_images"] == 260 and manifest["epochs"] == 1
    assert len(manifest["metrics"]["history"]["train_loss"]) == 1
    metrics = manifest["metrics"]  # the file keeps fractions, exactly the ones measured
    assert 100 * metrics["val_accuracy"] == result.val_accuracy
    assert [100 * a for a in metrics["history"]["train_acc"]] == result.history.train_acc


def test_manifest_fractions_are_the_measured_ones_bit_for_bit() -> None:
    for k, n in ((1, 3), (2, 3), (4, 6), (17, 52), (0, 52), (52, 52)):
        percent = 100 * (k / n)  # what fit records
        assert _fraction(percent, n) == k / n
    assert (100 * (1 / 3)) / 100 != 1 / 3  # why dividing by 100 would not do
    with pytest.raises(ValueError, match="whole number"):
        _fraction(50.1, 52)


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


# --- damaged checkpoints: every failure is a CheckpointError with the rebuild command ---------


def _pickle_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, buffer)
    return buffer.getvalue()


def _rewrite_manifest(manifest_path: Path, **changes: object) -> None:
    manifest = json.loads(manifest_path.read_text())
    manifest.update(changes)
    manifest_path.write_text(json.dumps(manifest))


def _damage(case: str, weights: Path, manifest_path: Path) -> None:
    import hashlib

    if case == "manifest without config":
        manifest = json.loads(manifest_path.read_text())
        del manifest["config"]
        manifest_path.write_text(json.dumps(manifest))
    elif case == "manifest is a JSON list":
        manifest_path.write_text("[1, 2, 3]")
    elif case == "manifest is not UTF-8":
        manifest_path.write_bytes(b'{"sha256": "\xff\xfe"}')
    elif case == "manifest sha256 is not text":
        _rewrite_manifest(manifest_path, sha256=12)
    elif case in ("truncated weights, hash updated", "pickle renamed .safetensors"):
        data = weights.read_bytes()[:100] if case.startswith("truncated") else _pickle_bytes()
        weights.write_bytes(data)
        _rewrite_manifest(manifest_path, sha256=hashlib.sha256(data).hexdigest())
    elif case == "weights are a folder":
        weights.unlink()
        weights.mkdir()
    else:  # pragma: no cover
        raise AssertionError(case)


DAMAGE_CASES = [
    "manifest without config",
    "manifest is a JSON list",
    "manifest is not UTF-8",
    "manifest sha256 is not text",
    "truncated weights, hash updated",
    "pickle renamed .safetensors",
    "weights are a folder",
]


@pytest.mark.parametrize("case", DAMAGE_CASES)
def test_every_damaged_checkpoint_names_the_file_and_the_rebuild_command(
    case: str, tmp_path: Path
) -> None:
    save_checkpoint(_tiny_model(), "letters", profile="quick", manifest={}, directory=tmp_path)
    weights, manifest_path = checkpoint_paths("letters", "quick", tmp_path)
    _damage(case, weights, manifest_path)
    for read in (
        lambda: verify_checkpoint("letters", "quick", tmp_path),  # reads what loading reads
        lambda: load_checkpoint("letters", profile="quick", directory=tmp_path),
    ):
        with pytest.raises(CheckpointError) as info:
            read()
        error = info.value
        assert str(tmp_path) in error.problem, error.problem
        assert error.fix == f"python -m tlhelpers pretrain letters --profile quick --out {tmp_path}"
        assert str(error).endswith(f"Rebuild it: {error.fix}")


def test_checkpoint_error_keeps_its_fix_when_pickled() -> None:
    import pickle

    error = CheckpointError("it broke.", "python -m tlhelpers pretrain letters")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.problem, copy.fix, str(copy)) == (error.problem, error.fix, str(error))
    assert str(CheckpointError("no fix here.")) == "no fix here."


def test_one_bad_manifest_does_not_stop_the_listing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path))
    folder = tmp_path / "checkpoints" / "quick"
    for name in ("letters", "textures"):
        save_checkpoint(_tiny_model(), name, profile="quick", manifest={}, directory=folder)
    (folder / "letters.json").write_text('["not", "a", "manifest"]')
    states = {name: backbone_status(name, "quick") for name in ("letters", "textures")}
    assert states["textures"][0] == "ok" and states["letters"][0] == "error"
    assert "Rebuild it" not in states["letters"][1]  # the detail is the problem; fix apart
    assert states["letters"][2] == "python -m tlhelpers pretrain letters --profile quick"
    assert cli_main(["backbones"]) == 0
    out = capsys.readouterr().out
    assert "rebuild: python -m tlhelpers pretrain letters --profile quick" in out
    assert "sha256 ok" in out  # textures still listed as fine


def test_concurrent_saves_leave_weights_and_manifest_of_one_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writer A pauses between its weights and its manifest while writer B saves the same name:
    the pair on disk still comes from one writer (B waits for A's lock)."""
    import threading

    from tlhelpers.models import checkpoints

    real_write = checkpoints.atomic_write
    b_done = threading.Event()

    def pausing_write(path, write):
        result = real_write(path, write)
        if threading.current_thread().name == "A" and str(path).endswith(".safetensors"):
            b_done.wait(timeout=0.5)  # without a lock, B's whole save lands here
        return result

    monkeypatch.setattr(checkpoints, "atomic_write", pausing_write)
    models = {"A": _tiny_model(1), "B": _tiny_model(2)}

    def save(writer: str) -> None:
        save_checkpoint(
            models[writer], "letters", profile="quick", manifest={"writer": writer},
            directory=tmp_path,
        )
        if writer == "B":
            b_done.set()

    a = threading.Thread(target=save, args=("A",), name="A")
    b = threading.Thread(target=save, args=("B",), name="B")
    a.start()
    while not any(tmp_path.glob("*.safetensors")) and a.is_alive():
        threading.Event().wait(0.005)
    b.start()
    a.join()
    b.join()
    loaded, manifest = load_checkpoint("letters", profile="quick", directory=tmp_path)
    expected = models[manifest["writer"]].state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in loaded.state_dict().items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["letters.json", "letters.safetensors"]


def test_pretrain_checks_its_arguments_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tlhelpers import pretrain as pretrain_module

    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the source world was generated before the arguments were checked")

    monkeypatch.setattr(pretrain_module, "source_data", no_work)
    for seed in (-1, 2**32, 1.5, True):
        with pytest.raises(ValueError, match=r"seed=.* must be a non-negative integer"):
            pretrain("letters", "quick", seed=seed, directory=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="device='tpu'"):
        pretrain("letters", "quick", device="tpu", directory=tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CheckpointError, match="cannot write checkpoints"):
        pretrain("letters", "quick", directory=blocker)


def test_pretrain_full_profile_off_cuda_warns_before_work(monkeypatch: pytest.MonkeyPatch) -> None:
    from tlhelpers import pretrain as pretrain_module

    class StopError(Exception):
        pass

    def stop(*args: object, **kwargs: object) -> None:
        raise StopError

    monkeypatch.setattr(pretrain_module, "source_data", stop)
    with pytest.warns(RuntimeWarning, match="'full' profile is sized for one GPU"), pytest.raises(
        StopError
    ):
        pretrain("letters", "full", device="cpu", save=False)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pretrain", "letters", "--seed", "-1"], "is not a seed"),
        (["pretrain", "letters", "--seed", "4294967296"], "is not a seed"),
        (["pretrain", "letters", "--device", "tpu"], "device='tpu'"),
    ],
)
def test_cli_rejects_bad_pretrain_arguments_before_work(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_doctor_passes_the_profile_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from tlhelpers import doctor

    seen: list[list[str]] = []
    monkeypatch.setattr(doctor, "main", lambda argv: seen.append(list(argv)) or 0)
    assert cli_main(["doctor", "--profile", "full"]) == 0
    assert seen == [["--profile", "full"]]
