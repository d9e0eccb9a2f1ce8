"""`workload info/stats/build` and `evaluate` with --json piped into a reader that stops early (`| head -1`): the
JSON was written after the printing, so a closed pipe ended the command (exit 1) before it; `run` writes its files
first, and so do these now."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAINED = ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"


def _closed_stdout(args: list[str], cwd: Path) -> int:
    """Run ``satasim ARGS`` with its stdout a pipe nobody reads (closed at once, as `| head -1` closes it)."""
    proc = subprocess.Popen([sys.executable, "-m", "satasim_atsn", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    proc.stdout.close()
    return proc.wait(timeout=600)


@pytest.mark.parametrize("args", [
    ["workload", "info", str(TRAINED)],
    ["workload", "build", "--network", "vgg16", "--rate", "0.1", "--timesteps", "2", "--num-images", "4",
     "-o", "w.npz"],
    ["workload", "stats", str(TRAINED), "--images", "4", "-o", "t.npz"],
    ["evaluate", str(TRAINED), "--quiet"],
])
def test_the_json_is_written_before_the_printing(tmp_path, args):
    _closed_stdout([*args, "--json", "out.json"], tmp_path)
    assert isinstance(json.loads((tmp_path / "out.json").read_text()), dict)
