"""The same inputs give the same bytes on another kind of CPU (README, "On any machine").

This machine is made to behave like others (benchmarks/cross_cpu.py: numba compiled for an SSE4.2-only CPU
or an Intel AVX-512 one, numpy and OpenBLAS on the matching SIMD paths) and a simulation of real spikes, a
statistical twin's fit, its draw and simulation, and an evaluation must give the host's bytes. Slow: each
profile compiles the kernels afresh (about 30 s)."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("cross_cpu", REPO / "benchmarks" / "cross_cpu.py")
cross_cpu = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cross_cpu)

COMMANDS = [
    "satasim run {repo}/archs/atsn16x16.yaml {repo}/workloads/vgg_small_fmnist_atsn.npz --images 48 "
    "--json run.json -q",
    "satasim workload stats {repo}/workloads/vgg_small_fmnist_atsn.npz -o twin.npz",
    "satasim run {repo}/archs/dtsnn16x16.yaml twin.npz --images 48 --json run_twin.json -q",
    "satasim evaluate {repo}/workloads/vgg_small_fmnist_atsn.npz --json evaluate.json",
]


def _no_wide_vectors_under(profile: str, tmp_path: Path) -> bool:
    """Whether numba, under ``profile``, compiles a dot product without any 256-bit (ymm) register: the
    emulation is real, not only environment variables nobody reads."""
    code = ("import numba, numpy as np\n"
            "@numba.njit\ndef dot(a, b):\n s = 0.0\n for i in range(a.size):\n  s += a[i] * b[i]\n return s\n"
            "a = np.ones(64); dot(a, a)\nprint('ymm' not in next(iter(dot.inspect_asm().values())))\n")
    env = {**os.environ, **cross_cpu.PROFILES[profile], "NUMBA_CACHE_DIR": str(tmp_path / "nc")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip() == "True"


@pytest.mark.slow
def test_the_sse42_profile_really_compiles_without_avx(tmp_path):
    if not cross_cpu.supported("avx2"):
        pytest.skip("this CPU has no AVX2 to compare with")
    assert _no_wide_vectors_under("sse42", tmp_path)
    assert not _no_wide_vectors_under("avx2", tmp_path)


@pytest.fixture(scope="module")
def host_outputs(tmp_path_factory) -> Path:
    return cross_cpu.run_profile("host", tmp_path_factory.mktemp("cross-cpu"), COMMANDS)


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["sse42", "skylakex"])
def test_results_are_the_same_bytes_on_another_cpu(host_outputs, tmp_path, profile):
    if not cross_cpu.supported(profile):
        pytest.skip(f"this CPU cannot run the {profile} profile's code")
    host = host_outputs
    other = cross_cpu.run_profile(profile, tmp_path, COMMANDS)
    assert sorted(p.name for p in host.iterdir()) == ["evaluate.json", "log.txt", "run.json", "run_twin.json",
                                                      "twin.npz"]
    assert cross_cpu.differing_files(host, other) == []


def _parse(command: str, inputs: Path) -> None:
    """Parse one of cross_cpu.py's command lines with the CLI's own options (nothing is run)."""
    import click

    from satasim_atsn.cli import cli

    words = command.format(repo=REPO, inputs=inputs).split()
    assert words[0] == "satasim"
    group, args, parent = cli, words[1:], None
    while isinstance(group, click.Group):
        parent = click.Context(group, info_name=group.name, parent=parent)
        group, args = group.commands[args[0]], args[1:]
    group.make_context(group.name, args, parent=parent)


def test_every_benchmark_command_is_a_valid_command_line(tmp_path):
    """The script's commands name options the CLI has: a renamed option would fail it only after minutes."""
    inputs = cross_cpu.make_inputs(tmp_path / "inputs")
    assert sorted(p.name for p in inputs.iterdir()) == ["engine_study.yaml", "functional_study.yaml", "images"]
    for command in cross_cpu.COMMANDS + COMMANDS:
        _parse(command, inputs)
    with pytest.raises(Exception, match="no_such_option"):
        _parse("satasim workload stats x.npz -o y.npz --no_such_option", inputs)


def test_benchmark_inputs_are_the_same_bytes_each_time(tmp_path):
    """The image folder the training reads is drawn from a fixed seed, so two runs of the script train alike."""
    first, second = (cross_cpu.make_inputs(tmp_path / name) for name in ("a", "b"))
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert len(files) == 2 + 3 * (24 + 8)
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)


def test_readme_counts_the_commands_the_script_runs():
    """README's "On any machine" gives the number of commands cross_cpu.py runs; it follows the script."""
    text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert f"outputs of its {len(cross_cpu.COMMANDS)} commands were byte-identical" in text


def test_a_relative_out_directory_reaches_the_inputs(tmp_path, monkeypatch):
    """`--out scratch` (relative): each command runs inside scratch/PROFILE and still finds scratch/inputs."""
    monkeypatch.chdir(tmp_path)
    cross_cpu.make_inputs(Path("scratch") / "inputs")
    where = cross_cpu.run_profile("host", Path("scratch"), ["ls {inputs}/engine_study.yaml"])
    assert where == tmp_path / "scratch" / "host"
    assert "engine_study.yaml" in (where / "log.txt").read_text()


def test_an_unusable_out_directory_is_one_line(tmp_path, capsys):
    """--out under a file: one line and exit code 2 before any command, not a traceback."""
    (tmp_path / "file").write_text("x")
    assert cross_cpu.main(["--out", str(tmp_path / "file" / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cross_cpu.py: error: --out: cannot make ") and len(err.strip().splitlines()) == 1


def test_an_out_directory_with_the_users_files_is_refused(tmp_path, capsys):
    """--out . in a project: the script empties inputs/ and host/, so a folder holding other files is refused
    before anything is deleted; a former --out (only the script's own folders) is accepted."""
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "precious.png").write_text("x")
    (tmp_path / "notes.txt").write_text("mine")
    assert cross_cpu.main(["--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--out: " in err and "notes.txt" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "inputs" / "precious.png").read_text() == "x"
    (tmp_path / "notes.txt").unlink()
    for name in ("host", "sse42", "numba-cache-host"):
        (tmp_path / name).mkdir()
    assert cross_cpu.foreign_entries(tmp_path) == []
