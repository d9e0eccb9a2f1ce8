"""benchmarks/*.py as a user runs them: a bad argument or input file is one line on stderr and exit code 2,
before anything is timed (no traceback, no line of results first)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload

REPO = Path(__file__).resolve().parents[1]


def _script(name: str, *args: str) -> tuple[int, str, str]:
    """Run benchmarks/NAME with ARGS from the checkout; its exit code, stdout and stderr."""
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / name), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, check=False)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("bench") / "tiny.npz"
    write_workload(path, random_workload(21, images=4))
    return str(path)


@pytest.mark.parametrize(("args", "words"), [
    (["--images", "0"], "--images: must be >= 1, got 0"),
    (["--buffers", "4,x"], "--buffers: expected a whole number, got 'x'"),
    (["--trained-images", "-3"], "--trained-images: must be >= 1, got -3"),
    (["--arch", "no_such_design"], "no_such_design: no such architecture"),
    (["--workload", "{tiny}", "--images", "9"], "9 images from 0 exceed the 4 available"),
    (["--workload", "{tiny}", "--images", "1", "--trained", "no_such.npz"], "no_such.npz: no such file"),
    # --buffers is a run of its own: the timing run's options were silently ignored with it
    (["--workload", "{tiny}", "--buffers", "2,128", "--trained", "{tiny}"],
     "--trained does nothing with --buffers; run --buffers [--buffer-images N] and the timing run"),
    (["--workload", "{tiny}", "--buffers", "2", "--images", "2", "--trained-images", "2"],
     "--images and --trained-images do nothing with --buffers"),
    (["--workload", "{tiny}", "--images", "1", "--buffer-images", "2"],
     "--buffer-images does nothing with the timing run (no --buffers)"),
    (["--workload", "{tiny}", "--images", "1", "--trained-images", "2"], "--trained-images does nothing without "
     "--trained"),
])
def test_bench_engine_refuses_in_one_line(tiny, args, words):
    code, out, err = _script("bench_engine.py", *(a.format(tiny=tiny) for a in args))
    assert code == 2 and out == ""
    assert err.startswith("bench_engine.py: error: ") and words in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("args", "words"), [
    (["--steps", "0"], "--steps: must be >= 1, got 0"),
    (["--images", "0"], "--images: must be >= 1, got 0"),
    (["--model", "no_such_model"], "unknown model 'no_such_model'"),
    (["--workload", "workloads/vgg16_cifar10.npz"], "a statistical workload has no weights"),
    (["--workload", "no_such.npz"], "no_such.npz: no such file"),
    (["--json", "/proc/b.json"], "cannot be written"),
    (["--images", "8"], "--images does nothing without --workload"),  # it was silently ignored
])
def test_bench_cifar_speed_refuses_in_one_line(args, words):
    code, out, err = _script("bench_cifar_speed.py", *args)
    assert code == 2 and out == ""
    assert err.startswith("bench_cifar_speed.py: error: ") and words in err and len(err.strip().splitlines()) == 1


def test_bench_engine_names_a_statistical_floor_a_draw_and_prints_times_that_give_its_ratio(tmp_path):
    """--trained with a statistical workload times its spike draw (as satasim bench does), so the line says
    'draw'; the times are shown precisely enough that their quotient is the printed ratio."""
    built = tmp_path / "built.npz"
    done = subprocess.run([sys.executable, "-m", "satasim_atsn.cli", "workload", "build", "--network",
                           str(REPO / "examples" / "my_net.yaml"), "--rate", "0.15", "--timesteps", "2",
                           "--num-images", "3", "--exit-mean", "atsn=1.5", "-o", str(built)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    code, out, err = _script("bench_engine.py", "--workload", str(built), "--images", "1", "--trained", str(built),
                             "--trained-images", "3")
    assert code == 0, err
    line = out.splitlines()[-1]
    assert " draw " in line and " forward " not in line
    words = line.replace(",", "").split()
    floor, sim, ratio = (float(words[words.index(key) + 1]) for key in ("draw", "simulation", "ratio"))
    assert abs(sim / floor - ratio) <= 0.01 * ratio, line
