"""Smoke tests of the benchmark scripts: they run on tiny settings and write what they promise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_dann_long_run_writes_every_condition(tmp_path: Path) -> None:
    out = tmp_path / "results" / "dann.json"
    command = [
        sys.executable, str(ROOT / "benchmarks" / "dann_long_run.py"), "--steps", "3",
        "--seeds", "7", "--source-images", "200", "--target-images", "100",
        "--test-images", "50", "--threads", "1", "--out", str(out),
    ]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True, text=True, timeout=300)
    record = json.loads(out.read_text())
    conditions = {(r["network"], r["condition"]) for r in record["runs"]}
    # the mixed-batch control only for the network with batch norm
    assert conditions == {
        ("lenet", "source-only"), ("lenet", "DANN"), ("lenet", "oracle"),
        ("smallcnn", "source-only"), ("smallcnn", "mixed, no adversary"), ("smallcnn", "DANN"),
        ("smallcnn", "oracle"),
    }  # fmt: skip
    assert all(0 <= r["target_test"] <= 100 and r["cpu_seconds"] > 0 for r in record["runs"])
    assert len(record["summary"]) == 2 and not list(out.parent.glob("*.tmp"))
