"""A leading ``~`` in a path argument or option is expanded as the shell does, also when quoted ("~/w.npz" reaches
the program unexpanded). ARCH was expanded and WORKLOAD was not: `satasim run "~/a.yaml" "~/w.npz"` said the
workload did not exist. Every path parameter of every command now takes satasim_atsn/options.py's UserPath."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import click
import pytest

from satasim_atsn.cli import cli, main
from satasim_atsn.errors import SatasimError
from satasim_atsn.options import UserPath

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"
ARCH = ROOT / "archs" / "atsn16x16.yaml"

# string parameters that are not paths (names, choices, PATH=VALUE pairs: compare's ARCH=WORKLOAD and
# --borrow-dataset NAME=TABLE expand each side themselves, tested below)
NOT_PATHS = {"overrides", "dataset", "test_dataset", "borrowed", "exit_means", "name", "model", "method", "loss",
             "output_mode", "policy", "paths", "baseline", "scheduler", "prefix"}


def _commands(command: click.Command, path: tuple[str, ...] = ()):
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))
    else:
        yield " ".join(path), command


def test_every_path_parameter_expands_home():
    plain = [(name, p.name) for name, command in _commands(cli) for p in command.params
             if (p.type is click.STRING or isinstance(p.type, click.Path)) and not isinstance(p.type, UserPath)
             and p.name not in NOT_PATHS]
    assert plain == [], f"path parameters without ~ expansion (type=PATH/FILE from satasim_atsn.options): {plain}"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home directory holding a.yaml and w.npz, and a working directory elsewhere."""
    (tmp_path / "home").mkdir()
    shutil.copy(ARCH, tmp_path / "home" / "a.yaml")
    shutil.copy(WORKLOAD, tmp_path / "home" / "w.npz")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path / "home"


def _ok(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 0


def test_run_expands_home_in_arch_workload_and_json(home):
    _ok(["run", "~/a.yaml", "~/w.npz", "--images", "2", "--quiet", "--json", "~/r.json", "--csv", "~/csv"])
    assert json.loads((home / "r.json").read_text())["workload"]["source"] == "w.npz"
    assert (home / "csv").is_dir() and not Path("~").exists()


def test_compare_expands_home_on_each_side_of_arch_equals_workload(home):
    _ok(["compare", "--no-plots", "~/a.yaml=~/w.npz", "conventional16x16=~/w.npz", "-o", "~/cmp", "--images", "2",
         "--jobs", "1",
         "--quiet", "--baseline", "~/a.yaml"])
    assert (home / "cmp" / "report.md").is_file() and not Path("~").exists()
    assert "baseline for the ratios: **atsn16x16**" in (home / "cmp" / "report.md").read_text()


def test_workload_info_expands_home(home, capsys):
    _ok(["workload", "info", "~/w.npz", "--json", "~/info.json"])
    assert (home / "info.json").is_file()


@pytest.mark.parametrize("text", ["", "  "])
def test_every_path_parameter_refuses_an_empty_value(text):
    """`--arch "$DESIGN"` with DESIGN unset: `run ""` read the working directory ('.: cannot read ... Is a
    directory') and `bench --arch ""` timed the default design; every path parameter now names itself and the cause."""
    paths = [(name, p) for name, command in _commands(cli) for p in command.params if isinstance(p.type, UserPath)]
    assert len(paths) > 20
    for name, param in paths:
        with pytest.raises(SatasimError) as refused:
            param.type.convert(text, param, None)
        assert "is an empty path (a shell variable left unset?); give " in str(refused.value), (name, param.name)


def test_an_empty_arch_is_one_line_naming_the_argument(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "", str(WORKLOAD), "--images", "1"])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "\n" not in err
    assert err == ("satasim: error: ARCH: is an empty path (a shell variable left unset?); give an architecture "
                   "YAML's path or a shipped design's name (e.g. atsn16x16)")


def test_every_path_argument_says_what_it_takes():
    """An empty argument's fix says what the argument is (an architecture, a workload, a study), not just 'a path
    name': the user who left a variable unset learns which file was meant."""
    arguments = [(name, p) for name, command in _commands(cli) for p in command.params
                 if isinstance(p.type, UserPath) and isinstance(p, click.Argument)]
    assert len(arguments) >= 10
    for name, param in arguments:
        with pytest.raises(SatasimError) as refused:
            param.type.convert("", param, None)
        fix = str(refused.value).split("; give ", 1)[1]
        assert fix.endswith(("(e.g. atsn16x16)", "writes one)", "(.nir)", ".yaml)")), (name, param.name, fix)
