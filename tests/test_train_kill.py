"""`satasim train` killed with SIGKILL at random moments and resumed loses no finished epoch and recomputes none.

The run checkpoints inside epochs too (``--checkpoint-minutes`` tiny, so after every batch), and
the resumed run must end with a workload byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.workload.format import read_workload

KILLS = 8
EPOCHS = 30  # long enough that eight kills, each after at most five batches, land before the end
ARGS = ["train", "--dataset", "synthetic", "--epochs", str(EPOCHS), "--width", "0.5", "--test-images", "32",
        "--batch-size", "32", "--checkpoint-minutes", "0.00001"]


def _command(out: Path, resume: bool) -> list[str]:
    return [sys.executable, "-m", "satasim_atsn", *ARGS, "-o", str(out)] + (["--resume"] if resume else [])


def _env() -> dict:
    env = dict(os.environ, OMP_WAIT_POLICY="passive", OPENBLAS_THREAD_TIMEOUT="4", OPENBLAS_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _stamp(path: Path) -> tuple[int, int]:
    """Identity of the checkpoint file: each atomic write renames a new inode into place."""
    try:
        st = path.stat()
        return st.st_ino, st.st_mtime_ns
    except FileNotFoundError:
        return 0, 0


def _kill_at_random_moment(proc: subprocess.Popen, ckpt: Path, rng: np.random.Generator) -> bool:
    """SIGKILL ``proc`` after a random number (0-5) of new checkpoints plus a random delay; False if it ended first.

    Counting checkpoints instead of seconds makes every kill land while the run is working, however
    loaded the machine is; the delay puts it anywhere inside a batch, an evaluation or a write.
    """
    wanted, seen, stamp = int(rng.integers(0, 6)), 0, _stamp(ckpt)
    delay = float(rng.uniform(0.0, 0.05)) + (float(rng.uniform(0.2, 1.5)) if wanted == 0 else 0.0)
    while seen < wanted:
        if proc.poll() is not None:
            return False
        now = _stamp(ckpt)
        if now != stamp:
            seen, stamp = seen + 1, now
        time.sleep(0.001)
    time.sleep(delay)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


@pytest.mark.slow
def test_sigkill_and_resume_is_byte_identical(tmp_path):
    reference = tmp_path / "ref" / "w.npz"
    reference.parent.mkdir()
    subprocess.run(_command(reference, False), check=True, env=_env(), capture_output=True, cwd=tmp_path)

    out = tmp_path / "killed" / "w.npz"
    out.parent.mkdir()
    ckpt = Path(str(out) + ".ckpt.npz")
    rng = np.random.default_rng(2026)
    kills, logs, started = 0, [], time.monotonic()
    while not out.exists():
        log = tmp_path / f"log{len(logs)}.txt"
        logs.append(log)
        with open(log, "wb") as handle:
            proc = subprocess.Popen(_command(out, ckpt.exists()), env=_env(), stdout=handle, stderr=handle,
                                    cwd=tmp_path)
            if kills < KILLS and _kill_at_random_moment(proc, ckpt, rng):
                kills += 1
                if out.exists():  # killed after its last write: the workload must be whole
                    break
                continue
            assert proc.wait(timeout=600) == 0, log.read_text()
        assert time.monotonic() - started < 900
    assert kills >= KILLS
    assert out.read_bytes() == reference.read_bytes()

    text = "".join(p.read_text() for p in logs)
    # the line of a finished epoch ("epoch 3/30: loss ..."), not those of its mid-epoch checkpoints ("epoch 3/30:
    # 2/3 batches, loss ...; checkpoint written"), which a piped log has since b10cbe6
    finished = [int(m) for m in re.findall(r"^epoch (\d+)/\d+: loss ", text, flags=re.M)]
    assert len(finished) >= EPOCHS
    assert sorted(finished) == sorted(set(finished)), f"an epoch was recomputed: {finished}"
    history = read_workload(out).meta["provenance"]["history"]
    assert [row["epoch"] for row in history] == list(range(1, EPOCHS + 1))
    assert "Traceback" not in text
