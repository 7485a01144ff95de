"""Tests for tlhelpers.doctor: the environment check behind `python -m tlhelpers doctor`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlhelpers import doctor, settings
from tlhelpers.doctor import Check, format_report, main, read_constraints, run_checks

EXPECTED_NAMES = [
    "Python version",
    *(f"{package} version" for package in doctor.PINNED_PACKAGES),
    "torchvision ops",
    "device",
    "fonts",
    "handwritten digits",
    "folders",
    "course checkpoints",
    "text encoder",
    "offline readiness",
]


@pytest.fixture(scope="module")
def default_checks() -> list[Check]:
    return run_checks()


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {check.name: check for check in checks}


def test_run_checks_returns_the_expected_checks(default_checks: list[Check]) -> None:
    assert [c.name for c in default_checks] == EXPECTED_NAMES
    for check in default_checks:
        assert isinstance(check, Check)
        assert isinstance(check.ok, bool)
        assert check.detail
        assert check.ok or check.fix, f"{check.name} failed without saying how to fix it"


def test_local_assets_are_found(default_checks: list[Check]) -> None:
    checks = by_name(default_checks)
    for name in ("Python version", "torchvision ops", "device", "fonts", "handwritten digits"):
        assert checks[name].ok, checks[name].detail
    assert "1797" in checks["handwritten digits"].detail


def test_check_is_frozen() -> None:
    check = Check("x", True, "fine", "")
    with pytest.raises(AttributeError):
        check.ok = False  # type: ignore[misc]


def test_read_constraints_parses_pins(tmp_path: Path) -> None:
    path = tmp_path / "constraints.txt"
    path.write_text(
        "# pinned\n"
        "-c other.txt\n"
        "Scikit_Learn==1.2.3  # comment\n"
        "torch==2.0.0+cpu ; python_version >= '3.10'\n"
        "numpy>=1.0\n"
        "\n",
        encoding="utf-8",
    )
    assert read_constraints(path) == {"scikit-learn": "1.2.3", "torch": "2.0.0+cpu"}


def test_missing_constraints_file_is_not_a_failure(tmp_path: Path) -> None:
    checks = by_name(run_checks(constraints_path=tmp_path / "constraints.txt"))
    for package in doctor.PINNED_PACKAGES:
        check = checks[f"{package} version"]
        assert check.ok and not check.required
        assert "not compared" in check.detail


def test_missing_constraints_file_via_repo_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "repo_root", lambda: tmp_path)
    monkeypatch.setenv("TL_DATA_DIR", str(tmp_path / "data"))
    checks = by_name(run_checks())
    assert "not compared" in checks["torch version"].detail
    assert checks["torchvision ops"].ok


def test_wrong_pin_is_flagged_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "constraints.txt"
    path.write_text("numpy==0.0.1\ntorch==2.14.1\ntorchvision==0.29.2\n", encoding="utf-8")
    checks = by_name(run_checks(constraints_path=path))
    numpy_check = checks["numpy version"]
    assert not numpy_check.ok
    assert not numpy_check.required  # a different version is a warning, not fatal
    assert "numpy==0.0.1" in numpy_check.detail
    assert "numpy==0.0.1" in numpy_check.fix and "make env" in numpy_check.fix
    assert "not pinned" in checks["tqdm version"].detail
    report = format_report(list(checks.values()))
    assert "! numpy version" in report
    assert "fix: the course is tested with numpy==0.0.1" in report


def test_broken_torchvision_gives_the_pinned_pair(monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.ops

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr(torchvision.ops, "nms", broken)
    check = by_name(run_checks())["torchvision ops"]
    assert not check.ok and check.required
    assert "operator torchvision::nms does not exist" in check.detail
    assert "torch==2.14.1 torchvision==0.29.2" in check.fix
    assert "make env" in check.fix


def test_python_too_old_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "MIN_PYTHON", (99, 0))
    check = by_name(run_checks())["Python version"]
    assert not check.ok and check.required
    assert "99.0" in check.detail and "99.0" in check.fix


def test_unwritable_folder_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("TL_FIGURES_DIR", str(blocker / "figures"))
    check = by_name(run_checks())["folders"]
    assert not check.ok
    assert "TL_FIGURES_DIR" in check.detail


def test_missing_font_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "FONT_FILES", ("DejaVuSans.ttf", "NoSuchFont.ttf"))
    check = by_name(run_checks())["fonts"]
    assert not check.ok and check.required
    assert "NoSuchFont.ttf" in check.detail
    assert "matplotlib" in check.fix


def test_a_failing_backbone_check_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    from tlhelpers.models import registry

    def broken(name: str, profile: str = "quick") -> tuple[str, str, str]:
        raise OSError("disk on fire")

    monkeypatch.setattr(registry, "backbone_status", broken)
    checks = by_name(run_checks())
    check = checks["course checkpoints"]
    assert not check.ok and check.required and "disk on fire" in check.detail
    assert not checks["text encoder"].ok and not checks["text encoder"].required


def test_checkpoints_results_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from tlhelpers.models import registry

    def all_good(name: str, profile: str = "quick") -> tuple[str, str, str]:
        return "ok", "sha256 ok", ""

    def textures_bad(name: str, profile: str = "quick") -> tuple[str, str, str]:
        if name == "textures":
            return "error", "missing.", f"python -m tlhelpers pretrain textures --profile {profile}"
        return all_good(name, profile)

    monkeypatch.setattr(registry, "backbone_status", all_good)
    checks = by_name(run_checks())
    course = registry.list_backbones("course")
    assert checks["course checkpoints"].ok
    assert f"{len(course)} verified" in checks["course checkpoints"].detail

    monkeypatch.setattr(registry, "backbone_status", textures_bad)
    checks = by_name(run_checks(profile="full"))
    assert not checks["course checkpoints"].ok
    assert f"1 of {len(course)} not usable (full)" in checks["course checkpoints"].detail
    assert "textures: missing." in checks["course checkpoints"].detail
    assert checks["course checkpoints"].fix == (
        "rebuild (offline): python -m tlhelpers pretrain textures --profile full"
    )
    assert not checks["offline readiness"].ok


def test_format_report_marks() -> None:
    checks = [
        Check("good", True, "fine", ""),
        Check("bad", False, "broken\nsecond line", "do this"),
        Check("odd", False, "different", "maybe that", required=False),
    ]
    report = format_report(checks)
    lines = report.splitlines()
    assert lines[0].startswith("✓ good")
    assert lines[1].startswith("✗ bad")
    assert lines[2].strip() == "second line"
    assert "fix: do this" in lines[3]
    assert lines[4].startswith("! odd")
    assert "1 required check(s) failed: bad." in report
    assert "1 warning(s): odd." in report
    plain = format_report(checks, ascii_marks=True)
    assert plain.isascii() and "ERR bad" in plain
    assert "All required checks pass." in format_report(checks[:1])


@pytest.mark.parametrize(
    ("checks", "code"),
    [
        ([Check("a", True, "fine", "")], 0),
        ([Check("a", True, "fine", ""), Check("b", False, "x", "y", required=False)], 0),
        ([Check("a", True, "fine", ""), Check("b", False, "x", "y")], 1),
    ],
)
def test_main_exit_code(
    checks: list[Check],
    code: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(doctor, "run_checks", lambda **kwargs: checks)
    assert main([]) == code
    assert "a" in capsys.readouterr().out


def test_main_passes_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    def fake(**kwargs: object) -> list[Check]:
        seen.update(kwargs)
        return [Check("a", True, "fine", "")]

    monkeypatch.setattr(doctor, "run_checks", fake)
    assert main(["--profile", "full", "--constraints", str(tmp_path / "c.txt")]) == 0
    assert seen == {"constraints_path": tmp_path / "c.txt", "profile": "full"}
    with pytest.raises(SystemExit):
        main(["--profile", "huge"])
