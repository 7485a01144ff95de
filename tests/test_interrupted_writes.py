"""A process killed while it writes (pretraining, a world cache) leaves nothing a later run trips
over: the files under their real names are complete or absent, and the next write to the same
folder removes the killed process's temporary files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tlhelpers.models.checkpoints import CheckpointError, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent

# Pretrains a tiny backbone; the BLOCK_AT-th fsync (after a file's bytes are in its temporary
# file, before the rename) announces itself and hangs, so the test can kill the process there.
# fsync 1 and 2 are the world caches (train, val), 3 the weights, 4 the manifest.
SCRIPT = """
import os, sys, time
from dataclasses import replace
from pathlib import Path

ready, block_at, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
real_fsync, calls = os.fsync, [0]

def fsync(fd):
    calls[0] += 1
    if calls[0] == block_at:
        ready.write_text("writing")
        time.sleep(600)
    real_fsync(fd)

os.fsync = fsync
from tlhelpers.pretrain import pretrain
from tlhelpers.settings import QUICK

pretrain("letters-rotation", TINY, progress=False, directory=out)
"""
TINY = (
    "replace(QUICK, source_images=52, source_val_images=26, pretrain_epochs=1, "
    "batch_size=26, widths=(4, 4, 8, 8))"
)


def _temporaries(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".*.tmp"))


def _kill_while_writing(tmp_path: Path, block_at: int, sig: signal.Signals) -> Path:
    """Run SCRIPT until its ``block_at``-th file write is half done, then send ``sig``."""
    ready, out = tmp_path / "ready", tmp_path / "ckpt"
    env = {**os.environ, "TL_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}
    script = SCRIPT.replace("TINY", TINY)
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(ready), str(block_at), str(out)], env=env
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert child.poll() is None, f"the writer exited early ({child.returncode})"
            assert time.monotonic() < deadline, "the writer never reached the write"
            time.sleep(0.05)
        child.send_signal(sig)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return out


@pytest.mark.parametrize(
    ("block_at", "sig", "where"),
    [
        (1, signal.SIGKILL, "cache"),  # writing the source world's cache
        (3, signal.SIGTERM, "ckpt"),  # writing the checkpoint's weights
    ],
)
def test_a_killed_writer_leaves_nothing_a_later_run_trips_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_at: int, sig: signal.Signals, where: str
) -> None:
    from dataclasses import replace

    from tlhelpers.pretrain import pretrain
    from tlhelpers.settings import QUICK

    out = _kill_while_writing(tmp_path, block_at, sig)
    assert _temporaries(tmp_path / where), "the killed writer should have left its temporary"
    with pytest.raises(CheckpointError, match="Rebuild it: python -m tlhelpers pretrain"):
        load_checkpoint("letters-rotation", profile="quick", directory=out)

    monkeypatch.setenv("TL_CACHE_DIR", str(tmp_path / "cache"))
    tiny = replace(
        QUICK, source_images=52, source_val_images=26, pretrain_epochs=1, batch_size=26,
        widths=(4, 4, 8, 8),
    )
    pretrain("letters-rotation", tiny, progress=False, directory=out)  # the later run
    assert _temporaries(tmp_path) == []
    model, _ = load_checkpoint("letters-rotation", profile="quick", directory=out)
    assert model.head.out_features == 4
