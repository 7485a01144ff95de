"""Repository hygiene: notebooks committed clean and well-formed, pinned and mirrored
dependencies, CI wiring, forbidden habits, module conventions and stable figure names."""

from __future__ import annotations

import ast
import importlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tools import typed_numbers
from tools.notebooks import (
    NOTEBOOK_NAME,
    SAVE_FIGURE_CALL,
    cell_source,
    cell_tags,
    is_figure_name,
    read_notebook,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SKIP_DIRS = {".venv", "build", ".cache", ".git", "node_modules", ".ipynb_checkpoints"}
REQUIRED_PARAMETERS = ("profile", "seed", "device")


def _ids(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def _code_cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in notebook.get("cells", []) if c.get("cell_type") == "code"]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- notebooks ---------------------------------------------------------------------------------


def test_course_has_at_least_two_notebooks() -> None:
    names = [p.name for p in NOTEBOOKS]
    assert len(NOTEBOOKS) >= 2, (
        f"notebooks/ holds {names}; the course needs at least 00_welcome.ipynb and "
        "01_pretraining.ipynb."
    )


def test_notebook_numbers_are_unique() -> None:
    numbers = [p.name[:2] for p in NOTEBOOKS]
    repeated = sorted({n for n in numbers if numbers.count(n) > 1})
    assert not repeated, f"notebook numbers used twice: {repeated}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_name(notebook: Path) -> None:
    assert NOTEBOOK_NAME.fullmatch(notebook.name), (
        f"{notebook.name} should be named NN_words.ipynb (two digits, underscore, lowercase "
        "words joined by underscores), e.g. 02_feature_extraction.ipynb"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_valid_and_has_no_outputs(notebook: Path) -> None:
    import nbformat

    nbformat.validate(nbformat.read(notebook, as_version=4))
    dirty = [
        i
        for i, cell in enumerate(read_notebook(notebook)["cells"])
        if cell.get("cell_type") == "code" and (cell.get("outputs") or cell.get("execution_count"))
    ]
    assert not dirty, (
        f"{notebook.name}: cells {dirty} have outputs or execution counts; clear them before "
        f"committing (jupyter nbconvert --clear-output --inplace notebooks/{notebook.name})"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_parameters_cell(notebook: Path) -> None:
    code = _code_cells(read_notebook(notebook))
    tagged = [i for i, cell in enumerate(code) if "parameters" in cell_tags(cell)]
    assert len(tagged) == 1, (
        f"{notebook.name}: expected exactly one code cell tagged 'parameters', found {len(tagged)}"
    )
    assert tagged[0] == 0, f"{notebook.name}: the parameters cell should be the first code cell"
    tree = ast.parse(cell_source(code[tagged[0]]))
    values: dict[str, Any] = {}
    for statement in tree.body:
        line = ast.unparse(statement)
        assert isinstance(statement, ast.Assign) and len(statement.targets) == 1, (
            f"{notebook.name}: the parameters cell may hold only assignments of literals; "
            f"found {line!r}"
        )
        target = statement.targets[0]
        assert isinstance(target, ast.Name), f"{notebook.name}: {line!r} is not `name = literal`"
        try:
            values[target.id] = ast.literal_eval(statement.value)
        except ValueError:
            pytest.fail(
                f"{notebook.name}: parameter {line!r} is not a literal (papermill needs one)"
            )
    missing = [name for name in REQUIRED_PARAMETERS if name not in values]
    assert not missing, f"{notebook.name}: parameters cell lacks {missing}"
    assert values["profile"] in ("quick", "full"), (
        f'{notebook.name}: profile = {values["profile"]!r}; use profile = "quick"'
    )
    assert isinstance(values["seed"], int), (
        f"{notebook.name}: seed = {values['seed']!r}, not an int"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_anatomy(notebook: Path) -> None:
    cells = read_notebook(notebook)["cells"]
    markdown = [cell_source(c).lower() for c in cells if c.get("cell_type") == "markdown"]
    for heading in ("key takeaways", "interview questions"):
        assert any(heading in text for text in markdown), (
            f"{notebook.name}: no markdown cell mentions {heading.capitalize()!r}"
        )
    assert any("solution" in cell_tags(c) for c in cells), (
        f"{notebook.name}: no cell tagged 'solution' (exercise solutions are tagged so "
        "exercise-only copies can drop them)"
    )


def test_readme_lists_every_notebook() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [p.stem for p in NOTEBOOKS if p.stem not in readme]
    assert not missing, f"README.md does not mention {missing}; add them to the notebook table"


def _figure_names() -> list[tuple[str, str]]:
    found = []
    for notebook in NOTEBOOKS:
        for cell in _code_cells(read_notebook(notebook)):
            for match in SAVE_FIGURE_CALL.finditer(cell_source(cell)):
                found.append((notebook.name, match.group(2)))
    return found


def test_figure_names_are_unique_and_prefixed() -> None:
    names = _figure_names()
    problems = []
    seen: dict[str, str] = {}
    for notebook, name in names:
        if not is_figure_name(name):
            problems.append(f"{notebook}: {name!r} is not like '01-learning-curves'")
        elif name[:2] != notebook[:2]:
            problems.append(f"{notebook}: {name!r} should start with {notebook[:2]}-")
        if name in seen:
            problems.append(f"{notebook}: {name!r} is also saved by {seen[name]}")
        seen.setdefault(name, notebook)
    assert not problems, "figure names:\n" + "\n".join(problems)


# --- forbidden habits --------------------------------------------------------------------------


def _python_sources() -> list[tuple[str, str]]:
    """(where, code) for every .py file and every notebook code cell in the repository."""
    sources = []
    paths = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        paths.extend(Path(folder) / f for f in sorted(files))
    for path in paths:
        relative = path.relative_to(ROOT)
        if path.suffix == ".py":
            sources.append((str(relative), path.read_text(encoding="utf-8")))
        elif path.suffix == ".ipynb":
            for i, cell in enumerate(_code_cells(read_notebook(path))):
                sources.append((f"{relative} cell {i}", cell_source(cell)))
    return sources


def _without_magics(code: str) -> str:
    lines = []
    for line in code.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            line = line[: len(line) - len(stripped)] + "pass"
        lines.append(line)
    return "\n".join(lines)


def _is_true(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _forbidden(code: str) -> list[str]:
    try:
        tree = ast.parse(_without_magics(code))
    except SyntaxError:  # fall back to a line scan
        return [
            line.strip()
            for line in code.splitlines()
            if re.search(r"pretrained\s*=\s*True", line)
            or (re.search(r"\btorch\.load\(", line) and "weights_only=True" not in line)
        ]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        if any(kw.arg == "pretrained" and _is_true(kw.value) for kw in node.keywords):
            found.append(ast.unparse(node))
        func = node.func
        is_torch_load = (
            isinstance(func, ast.Attribute)
            and func.attr == "load"
            and isinstance(func.value, ast.Name)
            and func.value.id == "torch"
        )
        if is_torch_load and not any(
            kw.arg == "weights_only" and _is_true(kw.value) for kw in node.keywords
        ):
            found.append(ast.unparse(node))
    return found


def test_no_unsafe_loading_or_deprecated_weights_api() -> None:
    problems = [
        f"{where}: {call}" for where, code in _python_sources() for call in _forbidden(code)
    ]
    assert not problems, (
        "use torchvision's weights= API instead of the deprecated pretrained flag, and pass "
        "weights_only=True whenever torch reads a file:\n" + "\n".join(problems)
    )


def test_forbidden_scan_catches_examples() -> None:
    flag = "pretrained" + "=True"
    assert _forbidden(f"m = resnet18({flag})")
    assert _forbidden("state = torch." + "load(path)")
    assert _forbidden("state = torch." + "load(path, weights_only=False)")
    assert not _forbidden("state = torch." + "load(path, map_location='cpu', weights_only=True)")
    assert _forbidden("%matplotlib inline\nx = torch." + "load(p)")


# --- package conventions -----------------------------------------------------------------------

MODULES = sorted((ROOT / "tlhelpers").rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_package_docstring_names_every_module() -> None:
    import tlhelpers

    package = ROOT / "tlhelpers"
    names = sorted(
        path.stem if path.suffix == ".py" else path.name
        for path in package.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()
    )
    public = [n for n in names if not n.startswith("_") or n == "__main__"]
    missing = [n for n in public if f":mod:`tlhelpers.{n}`" not in tlhelpers.__doc__]
    assert not missing, f"tlhelpers/__init__.py's docstring does not name {missing}"


@pytest.mark.parametrize("path", MODULES, ids=[_module_name(p) for p in MODULES])
def test_module_has_docstring_and_all(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(path)
    assert ast.get_docstring(tree), f"{name} ({path.name}) has no module docstring"
    assigned = {
        target.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    }
    assert "__all__" in assigned, f"{name} ({path.name}) does not define __all__"
    if name.endswith("__main__"):
        return  # importing it is not needed to check its names
    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ lists names it does not define: {missing}"


# --- dependencies ------------------------------------------------------------------------------


def _pyproject_dependencies() -> list[str]:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [_normalise(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", s).group(0)) for s in specs]


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[_normalise(name.split("[")[0])] = version.strip()
    return pins


def _environment() -> tuple[dict[str, str | None], list[str]]:
    """({normalised name: pinned version or None}, pip entries) from environment.yml."""
    yaml = pytest.importorskip("yaml")
    env = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    specs: list[str] = []
    pip: list[str] = []
    for entry in env["dependencies"]:
        if isinstance(entry, dict):
            pip.extend(str(e) for e in entry.get("pip", []))
        else:
            specs.append(str(entry))
    packages: dict[str, str | None] = {}
    for spec in [*specs, *pip]:
        if spec.startswith("-"):
            continue
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==?\s*([^\s,;#]+))?", spec)
        assert match, f"environment.yml: cannot read the entry {spec!r}"
        packages[_normalise(match.group(1))] = match.group(2)
    return packages, pip


def test_environment_yml_mirrors_pyproject() -> None:
    packages, pip = _environment()
    missing = [name for name in _pyproject_dependencies() if name not in packages]
    assert not missing, f"environment.yml lacks pyproject dependencies {missing}"
    unpinned = [name for name in _pyproject_dependencies() if not packages[name]]
    assert not unpinned, f"environment.yml does not pin {unpinned}; pin them as in constraints.txt"
    assert "-e ." in [p.strip() for p in pip], "environment.yml should install the course (- -e .)"
    pip_names = {_normalise(re.split(r"[=<>!~ ]", p, maxsplit=1)[0]) for p in pip}
    assert {"torch", "torchvision"} <= pip_names, (
        "torch and torchvision go under pip: (PyPI wheels)"
    )


def test_environment_yml_pins_match_constraints() -> None:
    packages, _ = _environment()
    pins = _constraints()
    wrong = [
        f"{name}: environment.yml {version} vs constraints.txt {pins.get(name, '(absent)')}"
        for name, version in packages.items()
        if version and name not in ("python", "pip") and pins.get(name) != version
    ]
    assert not wrong, "pins differ:\n" + "\n".join(wrong)


def test_pyproject_dependencies_are_locked() -> None:
    pins = _constraints()
    missing = [name for name in _pyproject_dependencies() if name not in pins]
    assert not missing, (
        f"constraints.txt does not pin {missing}; regenerate it from a tested environment "
        "(.venv/bin/pip freeze --exclude-editable > constraints.txt)"
    )


# --- wiring ------------------------------------------------------------------------------------


def test_ci_runs_the_readme_test_command() -> None:
    script = ROOT / ".ci" / "run"
    text = script.read_text(encoding="utf-8")
    assert re.search(r"^\s*make test\b", text, re.MULTILINE), ".ci/run should call `make test`"
    assert "set -euo pipefail" in text
    assert script.stat().st_mode & 0o111, ".ci/run is not executable (chmod +x .ci/run)"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make test" in readme and "make lab" in readme


def test_licences_are_present() -> None:
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    content = (ROOT / "LICENSE-CONTENT").read_text(encoding="utf-8")
    assert "https://creativecommons.org/licenses/by/4.0/" in content


@pytest.mark.skipif(
    shutil.which("git") is None or not (ROOT / ".git").exists(), reason="not a git checkout"
)
def test_gitignore_keeps_generated_files_out_and_shipped_files_in() -> None:
    ignored = [
        "build/x",
        ".venv/x",
        ".cache/x",
        "slides/figures/01-x.png",
        "tlhelpers/__pycache__/x.pyc",
        "node_modules/reveal.js/package.json",
        "wheelhouse/torch.whl",
    ]
    kept = [
        "slides/README.md",
        "slides/figures.json",
        "data/checkpoints/quick/letters.safetensors",
        "data/README.md",
        "package-lock.json",
    ]
    for path in ignored + kept:
        result = subprocess.run(
            ["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, check=False
        )
        should_ignore = path in ignored
        assert (result.returncode == 0) == should_ignore, (
            f"{path} should {'be' if should_ignore else 'not be'} ignored by .gitignore"
        )


# --- typed results in Markdown -------------------------------------------------------------------


def test_no_result_number_is_typed_into_markdown() -> None:
    hits = [h for path in NOTEBOOKS for h in typed_numbers.scan_notebook(path)]
    allowed = typed_numbers.read_allowlist()
    missing = typed_numbers.uncovered(hits, allowed)
    assert not missing, (
        "numbers that look like results are typed into Markdown (print them from the run, or "
        "render the sentence with claims.report); if one is a setting, a chance level or a "
        "cited number, add it with its reason to tests/typed_numbers_allowlist.txt:\n"
        + "\n".join(f"  cell {h.cell}: {h.line()}" for h in missing)
    )
    stale = typed_numbers.unused(hits, allowed)
    assert not stale, "allow-list entries that match nothing any more (delete them):\n" + "\n".join(
        f"  {a.notebook} | {a.token} | {a.snippet}" for a in stale
    )


def test_typed_number_scan_catches_a_planted_result_and_passes_the_rest(
) -> None:
    scan = typed_numbers.scan_markdown
    assert [t for t, _ in scan("Fine-tuning reached 88.8% after 100 steps.")] == ["88.8%"]
    assert [t for t, _ in scan("The probe lost about 30 points; it took 37 s.")] == [
        "30 points", "37 s"]
    assert [t for t, _ in scan("The gap was 4.2 ± 1.3 on average.")] == ["4.2", "± 1.3"]
    assert scan("BERT-base reaches 93.2 on SST-2 (Devlin et al., 2019).") == []  # a citation
    assert scan("With k = 50 labels and λ → 0.1, on 8×8 images.") == []  # settings and sizes
    assert scan("The accuracy is `acc = 91.3` in $0.5 \\cdot x$.") == []  # code and maths
    assert scan("torch 2.14.1 and a 7s digit.") == []  # a version and a plural


def test_typed_numbers_allowlist_format_is_checked(tmp_path: Path) -> None:
    good = tmp_path / "good.txt"
    good.write_text("# comment\n03 | 96% | That looks like | remove: a typed result\n")
    (entry,) = typed_numbers.read_allowlist(good)
    assert entry.to_remove and entry.notebook == "03"
    bad = tmp_path / "bad.txt"
    bad.write_text("03 | 96% | no reason given\n")
    with pytest.raises(ValueError, match=r"bad\.txt:1: .*keep: why"):
        typed_numbers.read_allowlist(bad)


_PROFILE_FIELD = re.compile(r"\bP\.([a-z_]+)\b")
_SUMMARY_CALL = re.compile(r"profile_summary\(\s*P\s*(?:,\s*used\s*=\s*\[([^\]]*)\])?\s*\)")


def profile_fields_printed_and_read(notebook: dict[str, Any]) -> tuple[set[str] | None, set[str]]:
    """(fields the setup cell's ``profile_summary`` prints, or None for all; fields code reads)."""
    code = "\n".join(cell_source(c) for c in _code_cells(notebook))
    read = set(_PROFILE_FIELD.findall(code)) - {"name"}
    calls = _SUMMARY_CALL.findall(code)
    assert len(calls) == 1, f"expected one profile_summary(P, used=[...]) call, found {calls}"
    printed = None if not calls[0] else set(re.findall(r"[\"']([a-z_]+)[\"']", calls[0]))
    return printed, read


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_prints_the_profile_fields_it_reads(notebook: Path) -> None:
    printed, read = profile_fields_printed_and_read(read_notebook(notebook))
    assert printed is not None, (
        f"{notebook.name} prints every profile field; print those it reads: "
        f"profile_summary(P, used={sorted(read)})"
    )
    assert read <= printed, (
        f"{notebook.name} reads profile fields {sorted(read - printed)} that its setup cell does "
        f"not print; add them to profile_summary(P, used=[...])."
    )


_SHIFTED_SEEDS = re.compile(r"\bseed\s*\+\s*\w+\s+for\s+\w+\s+in\b")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_take_their_seeds_from_run_seeds(notebook: Path) -> None:
    code = "\n".join(cell_source(c) for c in _code_cells(read_notebook(notebook)))
    assert not _SHIFTED_SEEDS.search(code), (
        f"{notebook.name} shifts its seeds by the parameter (`seed + s for s in ...`), so the run "
        "with seed = 1 repeats most runs of seed = 0; use run_seeds(seed, P.seeds)."
    )
    assert "run_seeds(seed, " in code, f"{notebook.name} does not call run_seeds(seed, ...)"


def test_shifted_seed_pattern_is_caught() -> None:
    assert _SHIFTED_SEEDS.search("seeds = [seed + s for s in P.seeds]")
    assert not _SHIFTED_SEEDS.search("seeds = run_seeds(seed, P.seeds)")
