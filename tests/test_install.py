"""The installed package works outside a clone, and results do not depend on where they were made."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from satasim_atsn.cli import main
from satasim_atsn.hw.arch_files import ARCH_DIR
from satasim_atsn.hw.tech import TECH_DIR
from satasim_atsn.workload.network_file import NETWORKS_DIR

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = ROOT / "workloads" / "vgg16_cifar10.npz"


def _run_cli(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    out = capsys.readouterr()
    return info.value.code, out.out, out.err


@pytest.mark.parametrize("technology", ["28nm", "tables/28nm.yaml"])
def test_run_json_is_identical_from_two_directories(tmp_path, capsys, monkeypatch, technology):
    """The same arch + workload copied into two directories give byte-identical --json (no absolute paths)."""
    outputs = []
    for where in ("first/deeper", "second"):
        here = tmp_path / where
        (here / "tables").mkdir(parents=True)
        shutil.copy(ROOT / "satasim_atsn/data/tech/28nm.yaml", here / "tables/28nm.yaml")
        text = (ROOT / "archs/atsn16x16.yaml").read_text(encoding="utf-8")
        assert "technology: 28nm " in text
        (here / "arch.yaml").write_text(text.replace("technology: 28nm ", f"technology: {technology} "),
                                        encoding="utf-8")
        shutil.copy(WORKLOAD, here / "wl.npz")
        monkeypatch.chdir(here)
        code, _, err = _run_cli(["run", "arch.yaml", "wl.npz", "--images", "2", "--quiet", "--json", "r.json"],
                                capsys)
        assert code == 0, err
        outputs.append((here / "r.json").read_bytes())
    assert outputs[0] == outputs[1]
    text = outputs[0].decode()
    assert str(tmp_path) not in text and str(ROOT) not in text and '"path"' not in text
    assert f'"table": "{Path(technology).name}"' in text  # a user's table by its file name, however typed


def _wheel_data_files(package: Path) -> set[Path]:
    """The package's non-Python files setup.cfg's package_data puts in a wheel or sdist (its globs, expanded)."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg", encoding="utf-8")
    patterns = [p.strip() for p in parser["options.package_data"][package.name].replace("\n", ",").split(",")]
    return {path for pattern in patterns if pattern for path in package.glob(pattern) if path.is_file()}


def test_every_data_file_the_package_reads_is_packaged():
    """A pip-installed (non-editable) package holds only what package_data lists: every non-Python file of the
    package, and every file the code's data directories hold (shipped designs, tech tables, paper networks),
    must match one of its globs, or `satasim run atsn16x16` works in the clone and fails after `pip install .`."""
    package = ROOT / "satasim_atsn"
    packaged = _wheel_data_files(package)
    for directory in (ARCH_DIR, TECH_DIR, NETWORKS_DIR):
        read = set(directory.glob("*.yaml"))  # what the code lists and opens by name
        assert directory.is_relative_to(package) and read, directory
        assert read <= packaged, f"not in setup.cfg package_data: {sorted(read - packaged)}"
    files = {p for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".py"}
    assert files - packaged == set(), f"not in setup.cfg package_data (add or delete): {sorted(files - packaged)}"


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_clone(tmp_path):
    """Build a wheel offline, install it in a fresh venv, and run bench and run-by-arch-name from elsewhere."""
    src = tmp_path / "src"
    shutil.copytree(ROOT / "satasim_atsn", src / "satasim_atsn", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    env["PIP_NO_INDEX"] = "1"

    def call(*argv, cwd=tmp_path):
        done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, f"{argv}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        return done.stdout

    call(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist", src)
    wheels = list((tmp_path / "dist").glob("satasim_atsn-*.whl"))
    assert len(wheels) == 1
    venv = tmp_path / "venv"
    call(sys.executable, "-m", "venv", "--system-site-packages", venv)
    py = venv / "bin" / "python"
    # the dependencies come from this environment's site-packages (appended after the venv's own)
    venv_site = Path(call(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (venv_site / "zz_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    call(py, "-m", "pip", "install", "-q", "--no-deps", wheels[0])
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(WORKLOAD, work / "wl.npz")
    located = call(py, "-c", "import satasim_atsn; print(satasim_atsn.__file__)", cwd=work).strip()
    assert located.startswith(str(venv)), located  # the wheel's copy, not the clone's
    out = call(venv / "bin" / "satasim", "bench", "wl.npz", "--images", "2", cwd=work)
    assert "atsn16x16" in out and "ratio" in out.lower()
    out = call(venv / "bin" / "satasim", "run", "atsn16x16", "wl.npz", "--images", "2", "--json", "r.json", cwd=work)
    assert "FPS" in out and (work / "r.json").is_file()
    assert sorted(p.name for p in (Path(located).parent / "data" / "archs").glob("*.yaml")) == [
        "atsn16x16.yaml", "conventional16x16.yaml", "dtsnn16x16.yaml"]


def test_the_checkout_tracks_no_virtual_environment():
    """A committed venv runs another checkout's code: its scripts' shebangs and its editable finder name the
    directory it was made in (session 33: .venv of /tmp/h2/repo, so every clone's `satasim` ran h2's tree)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    names = [name for name in tracked.decode().split("\0") if name]
    assert names, "git ls-files listed nothing"
    venvs = sorted({name.rsplit("/", 1)[0] for name in names if name.endswith("pyvenv.cfg")
                    or "/site-packages/" in f"/{name}"})
    assert venvs == [], f"tracked virtual environment files under {venvs[:3]}; git rm -r --cached them"


@pytest.mark.parametrize("argv, shipped", [
    (["run", "atsn16x16", "no_such.npz"], "workloads/"),
    (["workload", "info", "no_such.npz"], "workloads/"),
    (["sweep", "no_such.yaml", "-o", "out"], "studies/"),
])
def test_a_missing_input_hint_says_where_shipped_files_are_after_pip_install(tmp_path, capsys, monkeypatch, argv,
                                                                           shipped):
    """'shipped workloads are in workloads/' named a directory a wheel's user does not have (pip installs only the
    package): the hint says it is the checkout's, as reproduce and validate already did."""
    monkeypatch.chdir(tmp_path)
    code, out, err = _run_cli(argv, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert f"the checkout's {shipped}, which a pip-installed package does not include" in err, err
