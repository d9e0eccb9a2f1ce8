"""`satasim compare` and `satasim workload` robustness: one-line errors (exit 2) for user mistakes, and JSON
outputs that are the same bytes whatever the working directory and however the paths were typed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from satasim_atsn.cli import main
from satasim_atsn.workload.schema import FORMAT_NAME, FORMAT_VERSION

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"
ARCHS = [ROOT / "archs" / "conventional16x16.yaml", ROOT / "archs" / "atsn16x16.yaml"]
TINY = ["--images", "4", "--jobs", "1", "--quiet"]


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    """``satasim ARGV`` in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return int(exc.value.code), out, err


def user_error(argv: list[str], capsys) -> str:
    """Run a command that must fail with the one-line user error; return that line."""
    code, _, err = run(argv, capsys)
    assert code == 2, err
    assert err.startswith("satasim: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _garbage(path: Path) -> Path:
    path.write_bytes(b"garbage")
    return path


BAD_WORKLOADS = {
    "missing": lambda d: d / "missing.npz",
    "not a zip": lambda d: _garbage(d / "garbage.npz"),
    "npz without format or meta": lambda d: _npz(d / "plain.npz", x=np.zeros(3)),
    "npz without meta": lambda d: _npz(d / "nometa.npz", format=np.array(FORMAT_NAME),
                                       version=np.array(FORMAT_VERSION, dtype=np.int64)),
    "npz with bad meta JSON": lambda d: _npz(d / "badmeta.npz", format=np.array(FORMAT_NAME),
                                             version=np.array(FORMAT_VERSION, dtype=np.int64),
                                             meta=np.array("{not json")),
    "an arch YAML (workload forgotten)": lambda d: ARCHS[1],
    "a directory": lambda d: (d / "dir.npz").mkdir() or d / "dir.npz",
}


@pytest.mark.parametrize("case", sorted(BAD_WORKLOADS))
def test_compare_bad_workload_gives_the_error_run_gives(tmp_path, capsys, case):
    workload = BAD_WORKLOADS[case](tmp_path)
    out = tmp_path / "out"
    err = user_error(["compare", *ARCHS, workload, "-o", out, *TINY], capsys)
    ran = user_error(["run", ARCHS[1], workload, "--images", "4", "--quiet"], capsys)
    own = "(compare: the last argument, or the WORKLOAD of an ARCH=WORKLOAD pair)"
    assert err == ran.replace("(run: the second argument)", own)  # each command names its own place
    assert not out.exists()
    if case == "a directory":
        assert "is a directory" in err


def test_compare_out_is_an_existing_file(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("keep me")
    err = user_error(["compare", *ARCHS, WORKLOAD, "-o", target, *TINY], capsys)
    assert str(target) in err and "-o: is a file, not a directory" in err and target.read_text() == "keep me"
    study = tmp_path / "s.yaml"
    study.write_text(f"name: tiny\narch: {ARCHS[1]}\nworkload: {WORKLOAD}\nimages: 2\nvary:\n  accelerators: [1]\n"
                     "metrics: [fps]\n")
    assert err == user_error(["sweep", study, "-o", target, "--jobs", "1", "--quiet"], capsys)
    err = user_error(["compare", *ARCHS, WORKLOAD, "-o", target / "sub", *TINY], capsys)
    assert f"cannot be written ({target} is a file)" in err
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("jobs", ["0", "-2"])
def test_compare_refuses_non_positive_jobs_like_sweep(tmp_path, capsys, jobs):
    err = user_error(["compare", *ARCHS, WORKLOAD, "-o", tmp_path / "out", "--images", "4", "-j", jobs], capsys)
    assert "--jobs" in err and err == user_error(["sweep", "any.yaml", "-o", tmp_path / "s", "-j", jobs], capsys)
    assert not (tmp_path / "out").exists()


def test_compare_refuses_two_architectures_of_one_name(tmp_path, capsys):
    copy = tmp_path / "copy.yaml"  # the shipped name and its own path are one file: see the test below
    copy.write_text(ARCHS[1].read_text())
    err = user_error(["compare", "atsn16x16", copy, WORKLOAD, "-o", tmp_path / "out", *TINY], capsys)
    assert f"atsn16x16 and {copy}" in err and "'atsn16x16'" in err and "name:" in err
    assert not (tmp_path / "out").exists()


def test_compare_refuses_an_ambiguous_baseline(tmp_path, capsys):
    text = ARCHS[1].read_text()
    paths = []
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        paths.append(tmp_path / sub / "design.yaml")
        paths[-1].write_text(text.replace("name: atsn16x16", f"name: design_{sub}"))
    err = user_error(["compare", *paths, WORKLOAD, "-o", tmp_path / "out", "--baseline", "design", *TINY], capsys)
    assert "--baseline" in err and "ambiguous" in err and "design_a" in err and "design_b" in err
    assert not (tmp_path / "out").exists()


def test_compare_names_one_architecture_file_given_twice(tmp_path, capsys):
    """The same file twice (or its shipped name and its path) was told to give one of them another `name:` in its
    YAML, which a single file cannot (session 34); two files of one name still are."""
    for pair in ([ARCHS[1], ARCHS[1]], ["atsn16x16", ARCHS[1]], [f"{ARCHS[1]}={WORKLOAD}", f"{ARCHS[1]}={WORKLOAD}"]):
        err = user_error(["compare", *pair, *([] if "=" in str(pair[0]) else [WORKLOAD]), "-o", tmp_path / "out",
                          *TINY], capsys)
        assert "the same architecture file is given twice; list it once" in err, err
    copy = tmp_path / "copy.yaml"
    copy.write_text(ARCHS[1].read_text())
    err = user_error(["compare", ARCHS[1], copy, WORKLOAD, "-o", tmp_path / "out", *TINY], capsys)
    assert "name: both are 'atsn16x16'; give one of them another `name:`" in err
    assert not (tmp_path / "out").exists()


def test_compare_json_does_not_depend_on_cwd_or_path_spelling(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    relative = ["archs/conventional16x16.yaml", "archs/atsn16x16.yaml", "workloads/vgg_small_fmnist_atsn.npz"]
    code, _, err = run(["compare", "--no-plots", *relative, "-o", tmp_path / "a", "--json", tmp_path / "a.json",
                        *TINY], capsys)
    assert code == 0, err
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    absolute = [ARCHS[0], "atsn16x16", WORKLOAD]  # a shipped name is the same architecture file
    code, _, err = run(["compare", "--no-plots", *absolute, "-o", "../b", "--json", "../b.json", *TINY], capsys)
    assert code == 0, err
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "a" / "results.json").read_bytes() == (tmp_path / "b" / "results.json").read_bytes()
    data = json.loads((tmp_path / "a.json").read_text())
    assert [s["arch_path"] for s in data["architectures"]] == ["conventional16x16.yaml", "atsn16x16.yaml"]
    assert data["workload"] == WORKLOAD.name
    code, _, err = run(["compare", "--no-plots", *ARCHS, WORKLOAD, "-o", tmp_path / "c", "--baseline", ARCHS[1],
                        *TINY], capsys)
    assert code == 0, err  # --baseline still takes an architecture's file as typed
    assert json.loads((tmp_path / "c" / "results.json").read_text())["baseline"] == "atsn16x16"


def _twice(tmp_path: Path, capsys, monkeypatch, argv) -> tuple[bytes, str]:
    """Run ``argv(root_or_abs, out_dir)`` from the repository with relative paths and from elsewhere with
    absolute ones; assert both JSON files are the same bytes; return them and the first stdout."""
    outputs, first = [], ""
    for k, (cwd, base) in enumerate([(ROOT, Path(".")), (tmp_path, ROOT)]):
        monkeypatch.chdir(cwd)
        target = tmp_path / f"run{k}"
        target.mkdir()
        code, out, err = run(argv(base, target), capsys)
        assert code == 0, err
        first = first or out
        outputs.append((target / "numbers.json").read_bytes())
    assert outputs[0] == outputs[1]
    return outputs[0], first


def test_workload_info_json_records_the_file_name(tmp_path, capsys, monkeypatch):
    data, out = _twice(tmp_path, capsys, monkeypatch, lambda base, target: [
        "workload", "info", base / "workloads" / WORKLOAD.name, "--json", target / "numbers.json"])
    assert json.loads(data)["file"] == WORKLOAD.name
    assert out.startswith(f"{Path('workloads') / WORKLOAD.name}: ")  # the terminal shows the path as typed


def test_workload_stats_json(tmp_path, capsys, monkeypatch):
    data, out = _twice(tmp_path, capsys, monkeypatch, lambda base, target: [
        "workload", "stats", base / "workloads" / WORKLOAD.name, "-o", target / "twin.npz", "--images", "4",
        "--json", target / "numbers.json"])
    numbers = json.loads(data)
    assert data.decode() == json.dumps(numbers, indent=2, sort_keys=True) + "\n"
    assert numbers["source"] == WORKLOAD.name and numbers["file"] == "twin.npz" and numbers["num_images"] == 4
    assert set(numbers["exit_hist"]) == {"fixed", "dtsnn", "atsn"} and numbers["exit_mean_timestep"]["fixed"] == 4
    for name, rates in numbers["rates"].items():
        assert f"  {name:<12} " + " ".join(f"{r:.4f}" for r in rates) in out
    for policy, mean in numbers["exit_mean_timestep"].items():
        assert f"exit {policy:<6} [" in out and f"mean {mean:.4f}" in out
    assert "input bit densities " + " ".join(f"{d:.4f}" for d in numbers["input_bit_density"]) in out


def test_workload_build_json(tmp_path, capsys, monkeypatch):
    data, out = _twice(tmp_path, capsys, monkeypatch, lambda base, target: [
        "workload", "build", "--network", base / "examples" / "my_net.yaml", "--rate", "0.15", "--timesteps", "4",
        "--exit-mean", "atsn=2.5", "--num-images", "8", "-o", target / "w.npz", "--json", target / "numbers.json",
        "--timing"])
    numbers = json.loads(data)
    assert data.decode() == json.dumps(numbers, indent=2, sort_keys=True) + "\n"
    assert numbers == {"file": "w.npz", "name": "my_vgg-statistical", "num_images": 8, "timesteps": 4,
                       "exit_hist": {"fixed": [0.0, 0.0, 0.0, 1.0], "atsn": [0.25, 0.25, 0.25, 0.25]},
                       "exit_mean_timestep": {"fixed": 4.0, "atsn": 2.5}, "notes": []}  # notes: what it printed
    assert "8 images, T = 4, mean exit fixed 4.00, atsn 2.50" in out and "took " in out


@pytest.mark.parametrize("name", ["a/b", "../../../escaped", "..", "x y:z"])
def test_an_architecture_name_never_becomes_a_path(tmp_path, capsys, name):
    arch = tmp_path / "named.yaml"
    arch.write_text(ARCHS[1].read_text().replace("name: atsn16x16", f"name: {json.dumps(name)}"))
    out = tmp_path / "deep" / "report"
    code, _, err = run(["compare", arch, ARCHS[0], WORKLOAD, *TINY, "-o", out], capsys)
    assert code == 0, err
    inside = {p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()}
    assert all(str(p).startswith("deep/report/") or p.name == "named.yaml" for p in inside), inside
    assert not [p for p in out.iterdir() if p.is_dir()]  # no subdirectory made from the name
    assert any(p.name.startswith("timeline_0_") and p.suffix == ".png" for p in out.iterdir())


def test_a_set_of_one_exit_unit_kind_says_it_reaches_every_architecture(tmp_path, capsys):
    """The conventional design's own fix, '--set exit_unit.cl_init=null', would break the ATSN one."""
    err = user_error(["compare", *ARCHS, WORKLOAD, "-o", tmp_path / "out", "--set", "exit_unit.cl_init=0.5", *TINY],
                     capsys)
    assert "--set exit_unit.cl_init: only meaningful for exit unit kind 'at'" in err
    assert "a --set reaches every architecture of a compare" in err and "=null" not in err
    # a shipped design is named as the user gave it, not by the installed file's path
    err = user_error(["compare", "conventional16x16", "atsn16x16", WORKLOAD, "-o", tmp_path / "out", "--set",
                      "exit_unit.cl_init=0.5", *TINY], capsys)
    assert "error: conventional16x16: --set exit_unit.cl_init" in err
    assert not (tmp_path / "out").exists()


def test_an_interrupted_compare_leaves_its_output_directory_as_it_was(tmp_path, capsys, monkeypatch):
    """Ctrl-C while plotting left a few PNGs and no report.md or results.json in -o; the report is now staged in a
    hidden directory inside -o and moved in only once every file is written."""
    from satasim_atsn.report import plots

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(plots, "timeline", interrupted)
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in ["compare", *ARCHS, WORKLOAD, "-o", out, *TINY]])
    assert exc.value.code == 130 and capsys.readouterr().err == "satasim: interrupted\n"  # one line (click's
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]  # Abort printed an empty line before it)
    monkeypatch.undo()
    code, _, err = run(["compare", *ARCHS, WORKLOAD, "-o", out, *TINY], capsys)
    assert code == 0, err
    assert {"report.md", "report.html", "results.json", "keep.txt"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".report-")]


def test_long_and_odd_architecture_names_make_plots_without_a_word(tmp_path, capsys, recwarn):
    """A 300-character name made a plot file name the file system refused, after the simulations; a tab or a CJK
    name printed matplotlib's 'Glyph missing from font' warnings even with --quiet."""
    text = ARCHS[1].read_text()
    names = {"long.yaml": "x" * 300, "tab.yaml": "a\\tb", "cjk.yaml": "自适应时间步"}
    paths = []
    for file, name in names.items():
        path = tmp_path / file
        path.write_text(re.sub(r"(?m)^name:.*$", f'name: "{name}"', text, count=1))
        paths.append(path)
    code, _, err = run(["compare", *paths, WORKLOAD, "-o", tmp_path / "out", *TINY], capsys)
    assert code == 0 and err == "", err
    assert not [str(w.message) for w in recwarn if "Glyph" in str(w.message)]
    plots = sorted(p.name for p in (tmp_path / "out").glob("timeline_*.png"))
    assert plots == ["timeline_0_" + "x" * 64 + ".png", "timeline_1_a_b.png", "timeline_2__.png"]


def test_a_forgotten_workload_is_named_as_one(tmp_path, capsys):
    """`compare atsn16x16 dtsnn16x16` read the last architecture as a missing workload ('no such file')."""
    err = user_error(["compare", "conventional16x16", "dtsnn16x16", "-o", tmp_path / "o", *TINY], capsys)
    assert "dtsnn16x16: no such file: it names a shipped architecture, and a workload (.npz) is needed here" in err
    err = user_error(["compare", *ARCHS, "-o", tmp_path / "o", *TINY], capsys)
    assert "is a YAML file (an architecture, a network or a study), not a workload (.npz)" in err
    assert not (tmp_path / "o").exists()


def test_a_bad_set_value_names_the_set(capsys):
    err = user_error(["run", ARCHS[1], WORKLOAD, "--images", "2", "--set", "accelerators=0", "--quiet"], capsys)
    assert "accelerators: must be positive, got 0" in err and "(the value comes from --set accelerators=0)" in err


@pytest.mark.parametrize("command", ["run", "bench"])
def test_a_set_value_refused_at_mapping_time_names_the_set(capsys, command):
    """images_per_batch is checked against the PE memories when the network is mapped, after the architecture
    loaded: the refusal named the architecture file only, which does not hold the value."""
    where = [ARCHS[1], WORKLOAD, "--quiet"] if command == "run" else [WORKLOAD, "--arch", ARCHS[1], "--repeat", "1"]
    err = user_error([command, *where, "--images", "2", "--set", "images_per_batch=600"], capsys)
    assert "images_per_batch: 600 images need 600 membranes per PE" in err
    assert "(the value comes from --set images_per_batch=600)" in err


def test_compare_names_the_set_of_a_value_refused_at_mapping_time(tmp_path, capsys):
    err = user_error(["compare", *ARCHS, WORKLOAD, "-o", tmp_path / "o", "--set", "images_per_batch=600", *TINY],
                     capsys)
    assert "images_per_batch: 600 images need" in err and "(the value comes from --set images_per_batch=600)" in err


@pytest.mark.parametrize("field", ["pe.vmem_bits", "exit_unit.vmem_bits"])
def test_membranes_narrower_than_the_workloads_are_refused_before_any_design_runs(tmp_path, capsys, monkeypatch,
                                                                                  field):
    """The width check ran in the simulation only: the other designs were simulated (and their notes printed)
    before the one-line refusal, against docs/studies.md's "checked before anything is simulated"."""
    section, key = field.split(".")
    arch = yaml.safe_load(ARCHS[1].read_text())
    arch["name"], arch[section][key] = "narrow", 8
    narrow = tmp_path / "narrow.yaml"
    narrow.write_text(yaml.safe_dump(arch))
    monkeypatch.setattr("satasim_atsn.study.compare.run_all", lambda *a, **k: pytest.fail("simulated"))
    err = user_error(["compare", ARCHS[0], narrow, WORKLOAD, "-o", tmp_path / "o", "--images", "4", "--jobs", "1"],
                     capsys)
    assert f"narrow.yaml: {field}: 8-bit" in err and f"use {field} >= " in err
    assert not (tmp_path / "o").exists()


def test_a_design_whose_exit_rule_the_statistical_workload_lacks_is_refused_before_any_design_runs(
        tmp_path, capsys, monkeypatch):
    """The missing exit_hist/<policy> was found when that design's spikes were drawn, after the others ran."""
    w = tmp_path / "atsn_only.npz"
    assert run(["workload", "build", "--network", ROOT / "examples" / "my_net.yaml", "--rate", "0.1",
                "--timesteps", "3", "--exit-mean", "atsn=2", "--num-images", "4", "-o", w], capsys)[0] == 0
    monkeypatch.setattr("satasim_atsn.study.compare.run_all", lambda *a, **k: pytest.fail("simulated"))
    err = user_error(["compare", "atsn16x16", "dtsnn16x16", w, "-o", tmp_path / "o", *TINY], capsys)
    assert "atsn_only.npz: exit_hist/dtsnn: missing" in err and "--exit-mean dtsnn=MEAN" in err
    assert not (tmp_path / "o").exists()


def test_a_start_past_the_shortest_workload_names_that_workload(tmp_path, capsys):
    """With each design on its own workload, "--start: 7 is past the last image (the workload holds 5)" did not
    say which workload holds 5 (`satasim run` names its file)."""
    short = tmp_path / "short.npz"
    assert run(["workload", "build", "--network", ROOT / "examples" / "my_net.yaml", "--rate", "0.1",
                "--timesteps", "3", "--exit-mean", "atsn=2", "--num-images", "5", "-o", short], capsys)[0] == 0
    err = user_error(["compare", f"{ARCHS[0]}={WORKLOAD}", f"{ARCHS[1]}={short}", "-o", tmp_path / "o", "--start", "7",
                      *TINY[2:]], capsys)
    assert err.startswith(f"satasim: error: {short}: --start: 7 is past the last image (the workload holds 5)")
