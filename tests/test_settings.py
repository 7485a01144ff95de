"""Settings: profiles, paths with environment overrides, device choice, seeding."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tlhelpers import settings
from tlhelpers.settings import (
    FULL,
    PROFILES,
    QUICK,
    Profile,
    cache_dir,
    data_dir,
    figures_dir,
    full_profile_warning,
    get_profile,
    pick_device,
    profile_summary,
    repo_root,
    seed_everything,
    training_work_ratio,
    tune_cpu_allocator,
)


def test_profiles_are_frozen_and_named() -> None:
    assert set(PROFILES) == {"quick", "full"}
    assert get_profile("quick") is QUICK and get_profile("full") is FULL
    assert get_profile(QUICK) is QUICK
    with pytest.raises(dataclasses.FrozenInstanceError):
        QUICK.batch_size = 1  # type: ignore[misc]
    variant = dataclasses.replace(QUICK, pretrain_epochs=1)
    assert variant.pretrain_epochs == 1 and QUICK.pretrain_epochs != 1


def test_full_is_at_least_as_large_as_quick_everywhere() -> None:
    for field in dataclasses.fields(Profile):
        q, f = getattr(QUICK, field.name), getattr(FULL, field.name)
        if isinstance(q, int) and not isinstance(q, bool):
            assert f >= q, field.name
    assert set(QUICK.shots) <= set(FULL.shots) and set(QUICK.seeds) <= set(FULL.seeds)


def test_unknown_profile_names_the_value_and_the_choices() -> None:
    with pytest.raises(ValueError, match=r"profile='medium'.*'quick', 'full'"):
        get_profile("medium")


def test_profile_summary_lists_every_field() -> None:
    text = profile_summary(QUICK)
    for field in dataclasses.fields(Profile):
        assert field.name in text


def test_paths_default_inside_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("TL_DATA_DIR", "TL_CACHE_DIR", "TL_FIGURES_DIR"):
        monkeypatch.delenv(variable, raising=False)
    root = repo_root()
    assert (root / "pyproject.toml").exists()
    assert data_dir() == root / "data"
    assert cache_dir() == root / ".cache"
    assert figures_dir() == root / "build" / "figures"


def test_environment_variables_move_the_folders(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("TL_FIGURES_DIR", str(tmp_path / "f"))
    assert data_dir() == tmp_path / "d"
    assert cache_dir() == tmp_path / "c" and (tmp_path / "c").is_dir()
    assert figures_dir() == tmp_path / "f" and (tmp_path / "f").is_dir()


def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert pick_device("auto").type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert pick_device("auto") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")


def test_bad_or_missing_devices_raise_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match=r"device='gpu'.*auto, cpu, cuda, mps"):
        pick_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"device='cuda'.*no CUDA GPU"):
        pick_device("cuda")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="MPS is not available"):
        pick_device("mps")


def test_seed_everything_repeats_python_numpy_and_torch() -> None:
    import random

    def draw() -> tuple[float, float, torch.Tensor, torch.Tensor]:
        generator = seed_everything(7)
        return random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=generator)

    first, second = draw(), draw()
    assert first[:2] == second[:2]
    assert torch.equal(first[2], second[2]) and torch.equal(first[3], second[3])
    seed_everything(8)
    assert not torch.equal(torch.rand(3), first[2])


@pytest.mark.parametrize("bad", [-1, 1.5, "0", True, None])
def test_seed_everything_rejects_bad_seeds(bad: object) -> None:
    with pytest.raises(ValueError, match="non-negative integer"):
        seed_everything(bad)  # type: ignore[arg-type]


def test_tune_cpu_allocator_is_idempotent_and_applies_on_linux() -> None:
    first = tune_cpu_allocator()
    assert tune_cpu_allocator() is first
    if sys.platform.startswith("linux"):
        assert first is True and settings._ALLOCATOR_TUNED


def test_shots_fit_the_pool_and_scratch_runs_where_the_curve_has_points() -> None:
    for profile in (QUICK, FULL):
        assert max(profile.shots) <= profile.target_pool_per_class, profile.name
        assert set(profile.scratch_shots) <= set(profile.shots), profile.name
        assert profile.scratch_max_steps > 0


def test_full_profile_on_cpu_warns_with_an_estimate() -> None:
    warning = full_profile_warning(FULL, cuda=False)
    assert warning is not None and "no CUDA GPU" in warning
    assert "1-4 hours per notebook" in warning and 'profile = "quick"' in warning
    assert full_profile_warning(FULL, cuda=True) is None
    assert full_profile_warning(QUICK, cuda=False) is None
    assert profile_summary(QUICK).splitlines()[0].strip().startswith("name =")


def test_training_work_ratio_comes_from_the_profiles() -> None:
    low, high = training_work_ratio(QUICK, FULL)
    assert 1 < low <= high
    assert training_work_ratio(QUICK, QUICK) == (1.0, 1.0)
    # the full profile's estimates use the ratio computed once, from the profiles
    assert settings.FULL_TO_QUICK_WORK == (low, high) == (80, 100)


def test_run_seeds_never_overlap_between_seed_parameters() -> None:
    from tlhelpers.settings import SEED_STRIDE, run_seeds

    assert run_seeds(0, 3) == [0, 1, 2]  # seed 0 keeps the runs it always had
    assert run_seeds(0, QUICK.seeds) == [0 + s for s in QUICK.seeds]
    seen: dict[int, int] = {}
    for parameter in range(50):
        for n in (1, 2, 3, 5):
            for run in run_seeds(parameter, n):
                assert seen.setdefault(run, parameter) == parameter, (run, parameter)
    assert run_seeds(2, (0, 4)) == [2 * SEED_STRIDE, 2 * SEED_STRIDE + 4]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "0"])
def test_run_seeds_rejects_bad_seed(bad: object) -> None:
    from tlhelpers.settings import run_seeds

    with pytest.raises(ValueError, match="seed="):
        run_seeds(bad, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -2, (), (0, 0), (1000,), (0.5,)])
def test_run_seeds_rejects_bad_count(bad: object) -> None:
    from tlhelpers.settings import run_seeds

    with pytest.raises(ValueError, match="count="):
        run_seeds(0, bad)  # type: ignore[arg-type]


def test_profile_summary_lists_only_the_fields_used() -> None:
    text = profile_summary(QUICK, used=["shots", "seeds"])
    names = [line.split("=")[0].strip() for line in text.splitlines()]
    assert names == ["name", "shots", "seeds"]
    with pytest.raises(ValueError, match=r"not Profile fields.*valid fields"):
        profile_summary(QUICK, used=["shot"])
    with pytest.raises(TypeError, match="list of field names"):
        profile_summary(QUICK, used="shots")  # type: ignore[arg-type]


def test_seed_everything_takes_numpy_integers_and_rejects_seeds_numpy_cannot_use() -> None:
    import numpy as np

    seed_everything(np.int64(3))
    first = torch.rand(2)
    seed_everything(3)
    assert torch.equal(torch.rand(2), first)
    seed_everything(2**32 - 1)
    with pytest.raises(ValueError, match=r"seed=4294967296 must be .* below 2\*\*32"):
        seed_everything(2**32)
