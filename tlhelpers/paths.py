"""Where the course's files live: the repository, shipped data, generated caches, figures.

Paths default to folders inside the repository and can be moved with environment variables:
``TL_DATA_DIR`` (shipped data and checkpoints), ``TL_CACHE_DIR`` (generated datasets) and
``TL_FIGURES_DIR`` (saved figures). A folder that cannot be created or written raises an
``OSError`` that names the variable to set. Every name here is also importable from
:mod:`tlhelpers.settings`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["cache_dir", "check_writable", "data_dir", "figures_dir", "make_folder", "repo_root"]


def repo_root() -> Path:
    """The course repository's root folder (the one holding ``notebooks/`` and ``data/``)."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


def _dir_from_env(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    path = Path(value).expanduser() if value else default
    return path


def data_dir() -> Path:
    """Shipped data and course checkpoints; ``TL_DATA_DIR`` moves it."""
    return _dir_from_env("TL_DATA_DIR", repo_root() / "data")


def make_folder(path: Path, described: str, fix: str) -> Path:
    """Create ``path`` (and its parents); an OSError says what ``described`` is and the ``fix``."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(
            error.errno,
            f"{described} cannot be created or is not a folder ({error.strerror}); {fix}",
        ) from error
    return path


def _made_dir(variable: str, default: Path) -> Path:
    """The folder ``variable`` names (or ``default``), created; an OSError names the variable."""
    path = _dir_from_env(variable, default)
    return make_folder(
        path,
        f"{variable}: the folder {path}",
        f"set {variable} to a folder you can write to, or unset it to use {default}",
    )


def check_writable(folder: Path, variable: str | None = None) -> None:
    """Raise an OSError naming ``variable`` (or the folder) unless a file can be made in it."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        fix = f"set {variable} to a folder you can write to" if variable else "use another"
        raise OSError(
            error.errno, f"cannot write to {folder} ({error.strerror}); {fix}"
        ) from error


def cache_dir() -> Path:
    """Generated datasets (regenerable); ``TL_CACHE_DIR`` moves it. Created on demand.

    Raises an OSError naming ``TL_CACHE_DIR`` when the folder cannot be created.
    """
    return _made_dir("TL_CACHE_DIR", repo_root() / ".cache")


def figures_dir() -> Path:
    """Where ``save_figure`` writes; ``TL_FIGURES_DIR`` moves it. Created on demand.

    Raises an OSError naming ``TL_FIGURES_DIR`` when the folder cannot be created.
    """
    return _made_dir("TL_FIGURES_DIR", repo_root() / "build" / "figures")
