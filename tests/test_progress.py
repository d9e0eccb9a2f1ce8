"""Progress bars (tqdm): drawn on a terminal, absent when piped, absent with --quiet."""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.cli import main
from satasim_atsn.report.progress import Progress
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--set", "array.rows=2", "--set", "array.cols=3", "--set", "accelerators=2"]
BAR_MARKS = ("simulated FPS", "img/s", "it/s", "\r", "%|")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def workload_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("progress") / "wl.npz"
    write_workload(path, random_workload(21, images=6))
    return str(path)


def cli(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


def test_progress_draws_on_a_terminal_only():
    term = _Terminal()
    bar = Progress(500e6, stream=term, interval_s=0)
    bar.start(10)
    for done in range(1, 11):
        bar.update(done, done * 1_000_000)
    bar.finish()
    text = term.getvalue()
    assert "simulated FPS" in text and "500.0" in text and "10/10" in text
    piped = io.StringIO()
    quiet_term = _Terminal()
    for stream, quiet in ((piped, False), (quiet_term, True)):
        bar = Progress(500e6, quiet=quiet, stream=stream)
        bar.start(10)
        bar.update(5, 1000)
        bar.finish()
        assert stream.getvalue() == ""


@pytest.mark.parametrize("quiet", [False, True])
def test_run_piped_shows_no_bar_and_quiet_prints_nothing(workload_file, tmp_path, capsys, quiet):
    out_json = tmp_path / "r.json"
    argv = ["run", "atsn16x16", workload_file, *SMALL, "--json", str(out_json)] + (["--quiet"] if quiet else [])
    code, out, err = cli(argv, capsys)
    assert code == 0, err
    # no bar; only the one-line note that the random workload's own exit thresholds are not the design's
    assert [line for line in err.splitlines() if not line.startswith("note: the exit unit decides")] == []
    assert not any(mark in out for mark in BAR_MARKS[:3])
    assert (out == "") if quiet else ("FPS" in out)
    assert json.loads(out_json.read_text())["metrics"]["images"] == 6


@pytest.mark.parametrize("quiet", [False, True])
def test_compare_piped_and_quiet(workload_file, tmp_path, capsys, quiet, monkeypatch):
    argv = ["compare", "--no-plots", "archs/atsn16x16.yaml", "archs/conventional16x16.yaml", workload_file, "-o",
            str(tmp_path / "cmp"), *SMALL, "--jobs", "1"] + (["--quiet"] if quiet else [])
    monkeypatch.chdir(ROOT)
    code, out, err = cli(argv, capsys)
    assert code == 0, err
    # no bar anywhere; on stderr at most the notes (the random network's own exit thresholds are other ones)
    assert all(line.startswith("note: ") for line in err.splitlines())
    assert not any(mark in out for mark in BAR_MARKS[:3])
    assert (err == "") if quiet else ("exit unit decides" in err)
    assert (out == "") if quiet else ("atsn16x16" in out)
    assert (tmp_path / "cmp" / "report.md").is_file()


def test_sweep_piped_and_quiet(tmp_path, capsys, workload_file):
    study = tmp_path / "s.yaml"
    study.write_text(f"name: tiny\narch: {ROOT / 'archs/atsn16x16.yaml'}\nworkload: {workload_file}\nimages: 2\n"
                     "set: [array.rows=2, array.cols=3]\nvary:\n  accelerators: [1, 2]\nmetrics: [fps]\n")
    for quiet in (False, True):
        out_dir = tmp_path / f"out{quiet}"
        code, out, err = cli(["sweep", str(study), "-o", str(out_dir), "--jobs", "1"]
                             + (["--quiet"] if quiet else []), capsys)
        assert code == 0, err
        assert all(line.startswith("note (") for line in err.splitlines()) and not any(
            mark in out for mark in BAR_MARKS[:3])
        if quiet:
            assert err == ""
        assert (out == "") if quiet else ("2 points" in out)


@pytest.mark.parametrize("quiet", [False, True])
def test_evaluate_piped_and_quiet(workload_file, capsys, quiet):
    code, out, err = cli(["evaluate", workload_file] + (["--quiet"] if quiet else []), capsys)
    assert code == 0, err
    assert err == "" and not any(mark in out for mark in BAR_MARKS[:3])
    assert "images, T =" in out  # --quiet drops the bar, not the result


def _on_a_pty(argv: list[str], rows: int = 24, cols: int = 120) -> tuple[int, str, str]:
    """Run satasim with stderr on a pseudo-terminal (stdout piped); return code, stdout, terminal text."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))  # a cols x rows terminal
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "satasim_atsn", *argv], stdout=subprocess.PIPE, stderr=slave,
                            cwd=ROOT, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read().decode()
    code = proc.wait()
    os.close(master)
    return code, out, b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_run_and_evaluate_draw_a_bar_on_a_real_terminal(tmp_path, workload_file):
    code, out, term = _on_a_pty(["run", "atsn16x16", "workloads/vgg16_cifar10.npz", "--images", "2"])
    assert code == 0, term
    assert "simulated FPS" in term and "img" in term and "FPS" in out
    assert "simulated FPS" not in out  # results on stdout, the bar on the terminal only
    code, out, term = _on_a_pty(["run", "atsn16x16", "workloads/vgg16_cifar10.npz", "--images", "2", "--quiet",
                                 "--json", str(tmp_path / "r.json")])
    assert code == 0 and out == "" and term == ""
    code, out, term = _on_a_pty(["evaluate", workload_file])
    assert code == 0, term
    assert "evaluate" in term and "img" in term and "images, T =" in out


@pytest.mark.parametrize(("rows", "cols"), [(0, 0), (0, 80)])
def test_an_unsized_terminal_still_shows_the_bar(rows, cols):
    """A pty that reports 0 rows (`script`, some CI runners) showed no bar: tqdm followed the 0 rows and hid it."""
    argv = ["run", "atsn16x16", "workloads/vgg_small_fmnist_atsn.npz", "--images", "4"]
    code, out, term = _on_a_pty(argv, rows, cols)
    assert code == 0, term
    assert "simulated FPS" in term and "FPS" in out


def test_the_eta_is_not_taken_from_the_set_up_before_the_first_images():
    """12 s of compilation and set-up before the first of 256 images showed an ETA of 55 minutes for a 40 s run:
    the rate now starts at the first update (ETA '?'), and the next updates' ETA comes from their own pace."""
    now = [100.0]
    term = _Terminal()
    bar = Progress(500e6, stream=term, interval_s=0)
    bar.start(256)
    bar.bar._time = lambda: now[0]
    bar.bar.start_t = bar.bar.last_print_t = now[0]
    now[0] += 12.0  # set-up and numba's compilation
    bar.update(1, 1_000_000)
    assert term.getvalue().rstrip().endswith("1/256 [00:00<?, ?img/s, 500.0 simulated FPS]"), term.getvalue()
    for done in range(2, 12):
        now[0] += 0.15
        bar.update(done, done * 1_000_000)
    assert "11/256 [00:01<00:36," in term.getvalue().split("\r")[-1], term.getvalue().split("\r")[-1]
    bar.finish()


class _Recorder:
    """A progress display that records what the engine tells it."""

    def __init__(self) -> None:
        self.updates: list[tuple[int, int]] = []

    def start(self, total_images: int) -> None:
        self.total = total_images

    def update(self, done: int, cycles: int) -> None:
        self.updates.append((done, cycles))

    def finish(self) -> None:
        self.finished = True


@pytest.mark.parametrize("accelerators", [1, 4])
def test_the_images_done_are_those_finished_by_the_cycle_reported(accelerators):
    """update(done, cycles) counted an image as done when another accelerator's program passed its end, ahead of the
    clock: with 4 accelerators up to 4x the images finished by ``cycles`` (and the bar's FPS with them; h1, session
    47). Each update now counts exactly the images whose end cycle is at most ``cycles``."""
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.hw.engine import simulate
    from satasim_atsn.workload.format import read_workload

    workload = read_workload(Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz")
    sink = _Recorder()
    result = simulate(load_arch("atsn16x16", [f"accelerators={accelerators}"]), workload, images=8, progress=sink)
    ends = np.asarray(result.end_cycle)
    assert sink.total == 8 and sink.finished and sink.updates[-1][0] == 8
    assert [done for done, _ in sink.updates] == [int((ends <= cycles).sum()) for _, cycles in sink.updates]
    assert [cycles for _, cycles in sink.updates] == sorted(cycles for _, cycles in sink.updates)


@pytest.mark.parametrize("sink,problem", [
    (True, "bool has no start() method"),
    (type("NoFinish", (), {"start": lambda self, n: None, "update": lambda self, d, c: None})(),
     "NoFinish has no finish() method"),
    (type("BadStart", (), {"start": lambda self: None, "update": lambda self, d, c: None,
                           "finish": lambda self: None})(), "BadStart start() cannot take 1 argument"),
])
def test_a_progress_object_the_engine_cannot_call_is_refused_before_the_run(sink, problem):
    """A missing finish() raised an AttributeError after the whole run, a missing update() one from inside SimPy,
    a start() of another signature a TypeError (h1, session 47)."""
    from satasim_atsn.errors import SatasimError
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.hw.engine import simulate

    workload = random_workload(3, images=2, timesteps=2, num_classes=3)
    with pytest.raises(SatasimError, match=rf"^progress: {re.escape(problem)}; pass report\.progress\.Progress"):
        simulate(load_arch("atsn16x16"), workload, images=2, progress=sink)
