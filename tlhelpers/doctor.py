"""Environment check: is this machine ready to run the course, offline?

``python -m tlhelpers doctor`` (or :func:`run_checks` in a notebook) looks at everything the
course needs locally and says, for each item, what it found and how to fix it:

- the Python version (3.10 or newer);
- installed versions of the core libraries against the pins in the repository's
  ``constraints.txt`` (a difference is flagged, not fatal);
- that torchvision really runs an operator (a torch/torchvision pair that does not match fails
  with ``operator torchvision::nms does not exist``);
- the device ``pick_device("auto")`` chooses and whether CUDA or Apple's MPS is present;
- the fonts the image world renders with (bundled with matplotlib);
- scikit-learn's bundled handwritten digits;
- that the data, cache and figures folders are writable;
- the course checkpoints (sha256 against their manifests) and the pretrained text encoder
  all-MiniLM-L6-v2 (sha256 of the pinned revision; optional: a warning when missing), each by
  :func:`tlhelpers.models.backbone_status`;
- a summary: nothing the course needs has to come from the network.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from tlhelpers import settings

__all__ = [
    "FONT_FILES",
    "MIN_PYTHON",
    "PINNED_PACKAGES",
    "Check",
    "format_report",
    "main",
    "read_constraints",
    "run_checks",
]

MIN_PYTHON = (3, 10)
PINNED_PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "matplotlib",
    "scikit-learn",
    "safetensors",
    "tqdm",
)
FONT_FILES = ("DejaVuSans.ttf", "STIXGeneral.ttf", "cmr10.ttf")
# The tested torch/torchvision pair, used in advice when constraints.txt cannot be read.
_DEFAULT_PAIR = {"torch": "2.14.1", "torchvision": "0.29.2"}
_ENV_FIX = "run `make env` (or `pip install -c constraints.txt -e .`) from the repository root"


@dataclass(frozen=True)
class Check:
    """The outcome of one environment check."""

    name: str  # short, stable name, e.g. "torch version"
    ok: bool  # True when the check passed (or only has a note to make)
    detail: str  # what was found
    fix: str  # what to do when ok is False ("" when there is nothing to do)
    required: bool = True  # a failed required check makes `main` return non-zero


def _normalise(name: str) -> str:
    """Package names compare case- and separator-insensitively (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_constraints(path: Path) -> dict[str, str]:
    """Exact pins (``name==version``) from a constraints file, keyed by normalised name.

    Comments, options (``-c``, ``--index-url``), environment markers and non-exact
    requirements are skipped.
    """
    pins: dict[str, str] = {}
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].strip()
        if not line or line.startswith("-") or "==" not in line:
            continue
        name, version = (part.strip() for part in line.split("==", 1))
        name = name.split("[", 1)[0]
        pins[_normalise(name)] = version
    return pins


def _python_check() -> Check:
    found = ".".join(str(v) for v in sys.version_info[:3])
    need = ".".join(str(v) for v in MIN_PYTHON)
    ok = sys.version_info[:2] >= MIN_PYTHON
    fix = ""
    if not ok:
        fix = f"install Python {need} or newer (`conda env create -f environment.yml`), then "
        fix += _ENV_FIX
    return Check("Python version", ok, f"{found} (the course needs ≥ {need})", fix)


def _read_pins(constraints_path: Path) -> dict[str, str] | None:
    """The pins, or None when the file is missing or unreadable (versions are then not compared)."""
    try:
        return read_constraints(constraints_path) if constraints_path.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None


def _version_checks(constraints_path: Path, pins: dict[str, str] | None) -> list[Check]:
    checks = []
    for package in PINNED_PACKAGES:
        name = f"{package} version"
        try:
            installed = metadata.version(package)
        except metadata.PackageNotFoundError:
            pin = pins.get(_normalise(package)) if pins else None
            wanted = f"{package}=={pin}" if pin else package
            checks.append(
                Check(
                    name,
                    False,
                    "not installed",
                    f"install it: {_ENV_FIX} (or pip install {wanted})",
                )
            )
            continue
        if pins is None:
            detail = f"{installed} (no readable {constraints_path}: not compared)"
            checks.append(Check(name, True, detail, "", required=False))
            continue
        pin = pins.get(_normalise(package))
        if pin is None:
            detail = f"{installed} (not pinned in {constraints_path.name})"
            checks.append(Check(name, True, detail, "", required=False))
        elif installed.split("+", 1)[0] == pin.split("+", 1)[0]:
            checks.append(Check(name, True, f"{installed} (pinned {pin})", ""))
        else:
            detail = f"{installed} installed, but {constraints_path.name} pins {package}=={pin}"
            fix = f"the course is tested with {package}=={pin}; {_ENV_FIX}"
            checks.append(Check(name, False, detail, fix, required=False))
    return checks


def _torchvision_check(pins: dict[str, str] | None) -> Check:
    pair = {k: (pins or {}).get(k, v) for k, v in _DEFAULT_PAIR.items()}
    fix = (
        "torch and torchvision must be a matching pair; install the pinned pair "
        f"torch=={pair['torch']} torchvision=={pair['torchvision']} from constraints.txt: "
        f"{_ENV_FIX}"
    )
    try:
        import torch
        from torchvision.ops import nms

        boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.9]])
        kept = nms(boxes, torch.tensor([0.9, 0.8]), iou_threshold=0.5)
    except Exception as error:  # a broken install fails in many ways; report any of them
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        return Check("torchvision ops", False, f"torchvision.ops.nms failed: {message}", fix)
    if kept.tolist() != [0]:
        return Check("torchvision ops", False, f"nms returned {kept.tolist()}, expected [0]", fix)
    return Check("torchvision ops", True, "torchvision.ops.nms runs", "")


def _device_check() -> Check:
    import torch

    cuda = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps = mps_backend is not None and mps_backend.is_available()
    try:
        picked = settings.pick_device("auto")
    except Exception as error:  # report, do not crash the whole report
        return Check("device", False, f"pick_device('auto') failed: {error}", 'use device = "cpu"')
    detail = (
        f"auto picks {picked.type}; CUDA: {'yes' if cuda else 'no'}, MPS: {'yes' if mps else 'no'}"
    )
    if not (cuda or mps):
        detail += " (the quick profile is made for a CPU; the full profile wants a GPU)"
    return Check("device", True, detail, "")


def _font_files() -> list[str]:
    """The font files to look for: the three families, plus every font of the image world."""
    names = list(FONT_FILES)
    try:
        from tlhelpers.data.fonts import list_fonts
    except ImportError:  # the image world's font list is optional here
        return names
    return names + [f"{n}.ttf" for n in list_fonts() if f"{n}.ttf" not in names]


def _fonts_check() -> Check:
    import matplotlib

    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    wanted = _font_files()
    missing = [name for name in wanted if not (folder / name).is_file()]
    if missing:
        return Check(
            "fonts",
            False,
            f"missing from matplotlib's fonts folder {folder}: {', '.join(missing)}",
            f"reinstall matplotlib with its bundled fonts: {_ENV_FIX}",
        )
    detail = f"{len(wanted)} font files bundled with matplotlib ({', '.join(FONT_FILES)}, …)"
    return Check("fonts", True, detail, "")


def _digits_check() -> Check:
    try:
        from sklearn.datasets import load_digits

        digits = load_digits()
    except Exception as error:  # a missing or damaged scikit-learn install
        return Check(
            "handwritten digits",
            False,
            f"sklearn.datasets.load_digits() failed: {error}",
            f"reinstall scikit-learn, which bundles the digits: {_ENV_FIX}",
        )
    n_images = digits.images.shape[0]
    detail = f"{n_images} images of {digits.images.shape[1]}×{digits.images.shape[2]} pixels"
    return Check("handwritten digits", True, detail + " (bundled with scikit-learn)", "")


def _folders_check() -> Check:
    found, problems = [], []
    for label, locate, variable in (
        ("data", settings.data_dir, "TL_DATA_DIR"),
        ("cache", settings.cache_dir, "TL_CACHE_DIR"),
        ("figures", settings.figures_dir, "TL_FIGURES_DIR"),
    ):
        try:
            path = locate()
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as error:
            problems.append(f"{label} ({error}; set {variable} to a writable folder)")
        else:
            found.append(f"{label}: {path}")
    if problems:
        return Check(
            "folders",
            False,
            "not writable: " + "; ".join(problems),
            "point the named environment variable at a folder you can write to",
        )
    return Check("folders", True, "writable — " + ", ".join(found), "")


def _backbones_check(name: str, kind: str, profile: str) -> Check:
    """Every backbone of ``kind`` by ``backbone_status``: required for course checkpoints only."""
    required = kind == "course"
    try:
        from tlhelpers.models.registry import backbone_status, list_backbones

        statuses = {n: backbone_status(n, profile) for n in list_backbones(kind)}
    except Exception as error:  # report it with the others rather than stop the report
        return Check(name, False, f"checking failed: {error}", f"reinstall: {_ENV_FIX}", required)
    bad = {n: (detail, fix) for n, (state, detail, fix) in statuses.items() if state != "ok"}
    if bad:
        lines = [f"{len(bad)} of {len(statuses)} not usable ({profile}):"]
        lines += [f"  {n}: {detail}" for n, (detail, _) in bad.items()]
        fix = "; ".join(fix for _, fix in bad.values())
        fix = f"rebuild (offline): {fix}" if required else fix
        return Check(name, False, "\n".join(lines), fix, required)
    if required:
        return Check(
            name,
            True,
            f"{len(statuses)} verified by sha256 ({profile}): " + ", ".join(statuses),
            "",
        )
    return Check(name, True, "; ".join(f"{n}: {s[1]}" for n, s in statuses.items()), "")


def _offline_check(checks: Sequence[Check]) -> Check:
    assets = ("fonts", "handwritten digits", "course checkpoints", "folders")
    missing = [c.name for c in checks if c.name in assets and not c.ok and c.required]
    if missing:
        return Check(
            "offline readiness",
            False,
            "missing locally: " + ", ".join(missing),
            "fix the checks above; then nothing needs the network",
        )
    return Check(
        "offline readiness",
        True,
        "every asset the course needs is on this machine; no network needed",
        "",
    )


def run_checks(*, constraints_path: Path | None = None, profile: str = "quick") -> list[Check]:
    """Run every environment check and return the results in report order.

    Args:
        constraints_path: the pins to compare against; default ``repo_root()/constraints.txt``.
            When the file does not exist (the package was installed elsewhere), versions are
            shown but not compared.
        profile: whose course checkpoints to verify ("quick" or "full").
    """
    profile = settings.get_profile(profile).name
    path = (
        settings.repo_root() / "constraints.txt"
        if constraints_path is None
        else Path(constraints_path)
    )
    pins = _read_pins(path)
    checks = [_python_check(), *_version_checks(path, pins), _torchvision_check(pins)]
    checks += [_device_check(), _fonts_check(), _digits_check(), _folders_check()]
    checks.append(_backbones_check("course checkpoints", "course", profile))
    checks.append(_backbones_check("text encoder", "text", profile))
    checks.append(_offline_check(checks))
    return checks


def _mark(check: Check, ascii_marks: bool) -> str:
    if check.ok:
        return "OK " if ascii_marks else "✓"
    if check.required:
        return "ERR" if ascii_marks else "✗"
    return "!  " if ascii_marks else "!"


def format_report(checks: Sequence[Check], *, ascii_marks: bool = False) -> str:
    """A readable report: one line per check (✓ passed, ✗ failed, ! warning), fixes indented.

    ``ascii_marks=True`` writes OK/ERR/! instead, for terminals that cannot show ✓ and ✗.
    """
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for check in checks:
        first, *rest = check.detail.splitlines() or [""]
        lines.append(f"{_mark(check, ascii_marks)} {check.name:<{width}}  {first}")
        lines += [f"  {'':<{width}}  {line}" for line in rest]
        if not check.ok and check.fix:
            lines.append(f"  {'':<{width}}  fix: {check.fix}")
    failed = [c.name for c in checks if not c.ok and c.required]
    warned = [c.name for c in checks if not c.ok and not c.required]
    if failed:
        lines.append(f"{len(failed)} required check(s) failed: {', '.join(failed)}.")
    else:
        lines.append("All required checks pass.")
    if warned:
        lines.append(f"{len(warned)} warning(s): {', '.join(warned)}.")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tlhelpers doctor``: print the report; return 1 if a required check fails.

    Args:
        argv: command-line options, e.g. ``["--profile", "full"]``; ``None`` means none.
    """
    parser = argparse.ArgumentParser(
        prog="python -m tlhelpers doctor", description="Check this machine for the course."
    )
    parser.add_argument(
        "--profile",
        choices=list(settings.PROFILES),
        default="quick",
        help="whose course checkpoints to verify (default: quick)",
    )
    parser.add_argument(
        "--constraints",
        type=Path,
        default=None,
        help="constraints file to compare against (default: the repository's)",
    )
    args = parser.parse_args([] if argv is None else list(argv))
    checks = run_checks(constraints_path=args.constraints, profile=args.profile)
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        "✓✗≥×—".encode(encoding)
        ascii_marks = False
    except (LookupError, UnicodeEncodeError):
        ascii_marks = True
    report = format_report(checks, ascii_marks=ascii_marks)
    if ascii_marks:
        report = report.encode(encoding, errors="replace").decode(encoding)
    print(report)
    return 1 if any(not c.ok and c.required for c in checks) else 0
