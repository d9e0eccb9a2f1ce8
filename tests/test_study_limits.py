"""Study files and sweep outputs at their limits (study/spec.py, study/runner.py, fileio.py): numbers of hundreds
of digits, one technology table given twice, advice a skipped point can follow, and output paths that are not
plain directories. A user's mistake is one line naming the study file and the field, exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from study_helpers import engine_study

from satasim_atsn.cli import main
from satasim_atsn.errors import StudyError
from satasim_atsn.study.spec import load_study
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "archs" / "atsn16x16.yaml"
HUGE = "9" * 400  # an integer no float holds: math.isfinite(int) raised OverflowError


def _one_line_error(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "Traceback" not in err and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(("vary", "field"), [
    (f"clock_hz: [5.0e+8, {HUGE}]", "vary.clock_hz: value"),
    (f"tech.add_16b_energy_pJ: [0.03, {HUGE}]", "vary.tech.add_16b_energy_pJ: value"),
    (f"clock_hz: {{start: 5.0e+8, stop: {HUGE}, factor: 2}}", "vary.clock_hz.stop: must be a finite number"),
    (f"zip:\n    - {{clock_hz: [5.0e+8, {HUGE}], array.rows: [8, 16]}}", "vary.zip: value"),
], ids=["list", "tech-entry", "range", "zip"])
def test_a_number_of_hundreds_of_digits_is_one_line(tmp_path, workload_path, capsys, vary, field):
    path = engine_study(tmp_path, workload_path, f"vary:\n  {vary}\n")
    err = _one_line_error(capsys, ["sweep", str(path), "-o", str(tmp_path / "out"), "-q"])
    assert err.startswith(f"satasim: error: {path}: {field}"), err
    assert not (tmp_path / "out").exists()


SHIPPED_28NM = ROOT / "satasim_atsn" / "data" / "tech" / "28nm.yaml"


@pytest.mark.parametrize("second", [str(SHIPPED_28NM), "COPY", f"{SHIPPED_28NM.parent}/../tech/28nm.yaml",
                                    "RENAMED"], ids=["shipped-path", "copy", "dotted-path", "renamed"])
def test_one_technology_table_named_twice_is_refused(tmp_path, workload_path, second):
    """`vary: {technology: [28nm, <the shipped 28nm table's path>]}` ran two identical points; vary.arch refuses
    one file listed twice. A copy whose name and node_nm alone differ (provenance: nothing scales by node_nm) ran
    two identical points without a word (audit, session 48)."""
    if second in ("COPY", "RENAMED"):
        text = SHIPPED_28NM.read_text(encoding="utf-8")
        if second == "RENAMED":
            assert "name: 28nm" in text and "\nnode_nm: 28\n" in text
            text = text.replace("name: 28nm", "name: my16nm").replace("\nnode_nm: 28\n", "\nnode_nm: 16\n")
        second = str(tmp_path / "my28.yaml")
        Path(second).write_text(text, encoding="utf-8")
    path = engine_study(tmp_path, workload_path, f"vary:\n  technology: [28nm, {second}]\n")
    with pytest.raises(StudyError, match=r"vary\.technology: '28nm' and '.*' name tables of the same figures.*; "
                                         r"list each table once, or change the figures of one") as info:
        load_study(path)
    assert str(info.value).startswith(f"{path}: ")


def test_distinct_tables_and_a_zip_that_differs_elsewhere_still_run(tmp_path, workload_path):
    assert len(load_study(engine_study(tmp_path, workload_path, "vary:\n  technology: [28nm, 45nm]\n")).points()) == 2
    zipped = f"vary:\n  zip:\n    - {{technology: [28nm, {SHIPPED_28NM}], clock_hz: [1e8, 2e8]}}\n"
    assert len(load_study(engine_study(tmp_path, workload_path, zipped)).points()) == 2
    with pytest.raises(StudyError, match=r"vary\.zip: .* name tables of the same figures"):
        load_study(engine_study(tmp_path, workload_path, zipped.replace("2e8", "1e8")))


def test_a_skip_reason_of_a_varied_field_gives_advice_the_study_can_follow(workload_path):
    """`vary: {arch: [conventional16x16, dtsnn16x16], exit_unit.theta: [0.5, 0.9]}` skipped the conventional points
    saying "or exit_unit.theta=null in the study's set"; a field both set and varied is refused, and a vary list
    takes no null."""
    from satasim_atsn.study.spec import point_refusal

    conventional = str(ROOT / "archs" / "conventional16x16.yaml")
    args = (conventional, ["exit_unit.theta=0.5"], str(workload_path), "conventional16x16.yaml")
    reason = point_refusal(*args, varied=["arch", "exit_unit.theta"])
    assert reason is not None and reason.startswith("conventional16x16.yaml: exit_unit.theta: only meaningful"), reason
    assert "in the study's set" not in reason and "null" not in reason, reason
    assert "this design takes no exit_unit.theta, so its points of vary.exit_unit.theta are skipped" in reason
    assert "exit_unit.theta=null in the study's set" in point_refusal(*args)  # a set value: the set fix stands


def test_a_note_of_a_varied_field_names_its_vary_list():
    from satasim_atsn.study.spec import in_study_terms

    note = "the workload's own theta 0.1 apply with --set exit_unit.theta=0.1 --set exit_unit.cl_init=2"
    assert in_study_terms(note, ["exit_unit.theta"]).endswith(
        "apply with exit_unit.cl_init=2 in the study's set and 0.1 among vary.exit_unit.theta's values")
    assert in_study_terms(note).endswith("apply with exit_unit.theta=0.1, exit_unit.cl_init=2 in the study's set")


def test_the_layer_energy_figure_adds_up_to_the_dynamic_energy(tmp_path, monkeypatch):
    """energy_by_layer.png summed to less than the dynamic energy when the weights are resident: the initial weight
    load (DRAM reads, weight-buffer writes) belongs to no layer. It is now a stack of its own, given in the caption."""
    from satasim_atsn.report import plots
    from satasim_atsn.report.document import fmt
    from satasim_atsn.study.compare import run_compare

    drawn: dict[str, dict] = {}
    real = plots.stacked_bars

    def spy(path, labels, stacks, *args, **kwargs):
        drawn[Path(path).name] = stacks
        return real(path, labels, stacks, *args, **kwargs)

    monkeypatch.setattr(plots, "stacked_bars", spy)
    wl = tmp_path / "w.npz"
    write_workload(wl, random_workload(5, images=4, timesteps=3, num_classes=4, encoding="direct"))
    run_compare([str(ARCH)], str(wl), tmp_path / "out", baseline=None, images=4, jobs=1, command="satasim compare",
                quiet=True)
    record = json.loads((tmp_path / "out" / "results.json").read_text())["architectures"][0]
    dynamic = sum(record["dynamic_by_component_uJ"].values())
    in_layers = sum(record["energy_by_layer_uJ"].values())
    assert dynamic - in_layers > 1e-6  # resident weights: a load the layers do not hold
    bar = sum(values[0] for values in drawn["energy_by_layer.png"].values())
    assert bar == pytest.approx(dynamic, abs=1e-8)
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"which belongs to no layer: atsn16x16 {fmt(dynamic - in_layers)} uJ per image" in report


@pytest.mark.parametrize("force", [[], ["--force"]], ids=["plain", "force"])
def test_a_sweep_into_a_compares_directory_is_refused_and_changes_nothing(tmp_path, workload_path, capsys, force):
    """`sweep --force -o DIR` over a compare's output deleted its plots and kept its results.json beside the sweep's
    report; compare refuses a sweep's directory, so sweep refuses a compare's."""
    out = tmp_path / "cmp"
    out.mkdir()
    for name, text in (("results.json", "{}"), ("report.md", "# Comparison\n![m](metrics.png)\n"),
                       ("metrics.png", "png")):
        (out / name).write_text(text)
    path = engine_study(tmp_path, workload_path, "vary:\n  clock_hz: [1e8, 2e8]\n")
    err = _one_line_error(capsys, ["sweep", str(path), "-o", str(out), "-q", *force])
    assert err.startswith(f"satasim: error: {out}: -o: holds another command's output (report.md, results.json) "
                          "and no study.json"), err
    assert sorted(p.name for p in out.iterdir()) == ["metrics.png", "report.md", "results.json"]


def test_an_output_through_a_dangling_link_is_one_line_and_makes_no_folder(tmp_path, workload_path, capsys):
    """-o at a link to a missing directory said 'cannot be created (File exists)'; --json through a link made the
    missing folders of the link's target."""
    far = tmp_path / "far"
    (tmp_path / "out").symlink_to(far / "deeper" / "out")
    (tmp_path / "r.json").symlink_to(far / "deep" / "r.json")
    study = engine_study(tmp_path, workload_path, "vary:\n  clock_hz: [1e8, 2e8]\n")
    for out in ("out", "out/sub"):
        err = _one_line_error(capsys, ["sweep", str(study), "-o", str(tmp_path / out), "-q"])
        assert f"-o: {'is' if out == 'out' else 'goes through the folder ' + str(tmp_path / 'out') + ', which is'} " \
               f"a symbolic link to {far / 'deeper' / 'out'}, which does not exist" in err, err
    err = _one_line_error(capsys, ["run", str(ARCH), str(workload_path), "--images", "1", "-q",
                                   "--json", str(tmp_path / "r.json")])
    assert err.startswith(f"satasim: error: {tmp_path / 'r.json'}: --json: is a symbolic link to "
                          f"{far / 'deep' / 'r.json'}, whose folder {far / 'deep'} does not exist"), err
    assert not far.exists()
    (far / "deep").mkdir(parents=True)  # a link whose target's folder exists is written through, as by a shell's >
    with pytest.raises(SystemExit) as stop:
        main(["run", str(ARCH), str(workload_path), "--images", "1", "-q", "--json", str(tmp_path / "r.json")])
    assert stop.value.code in (0, None)
    assert (tmp_path / "r.json").is_symlink() and json.loads((far / "deep" / "r.json").read_text())


def test_a_writer_through_a_dangling_link_makes_no_folder(tmp_path):
    from satasim_atsn.errors import SatasimError
    from satasim_atsn.fileio import atomic_write_text

    (tmp_path / "link").symlink_to(tmp_path / "nowhere" / "x.txt")
    with pytest.raises(SatasimError, match=r"link: is a symbolic link to .*nowhere/x\.txt, whose folder"):
        atomic_write_text(tmp_path / "link", "text")
    assert not (tmp_path / "nowhere").exists()


def _a_compares_directory(out: Path) -> Path:
    out.mkdir()
    (out / "results.json").write_text("{}")
    (out / "report.md").write_text("# Comparison\n\n![m](metrics.png)\n")
    (out / "metrics.png").write_bytes(b"the compare's plot")
    (out / "photo.png").write_bytes(b"a user's own file")
    return out


def test_reproduce_into_a_compares_directory_leaves_none_of_its_plots(tmp_path):
    """`reproduce table1 -o DIR` over a compare's output replaced its report and kept its plots beside it (compare
    into a compare's directory removes the plots the old report showed); a user's own files stay."""
    from satasim_atsn.study.driver import reproduce

    out = _a_compares_directory(tmp_path / "cmp")
    reproduce("table1", out, quiet=True)
    assert "# Table 1" in (out / "report.md").read_text()
    assert not (out / "metrics.png").exists() and (out / "photo.png").read_bytes() == b"a user's own file"


@pytest.mark.parametrize("what", ["table1", "algorithm"])
def test_reproduce_into_a_sweeps_directory_is_refused(tmp_path, what):
    from satasim_atsn.study.driver import reproduce

    out = tmp_path / "sweep"
    target = out / "table1" if what == "algorithm" else out
    target.mkdir(parents=True)
    (target / "study.json").write_text("{}")
    (target / "report.md").write_text("# Study s1\n")
    with pytest.raises(StudyError, match=r"-o: holds a sweep's results \(study\.json\)"):
        reproduce(what, out, quiet=True)
    assert (target / "report.md").read_text() == "# Study s1\n"  # and no part ran into a sibling directory
    assert sorted(p.name for p in out.iterdir()) == (["table1"] if what == "algorithm" else ["report.md", "study.json"])


@pytest.mark.parametrize("argv", [["run", str(ARCH), "W", "--images", "1", "-q", "--json", "LOOP"],
                                  ["compare", str(ARCH), "W", "--images", "1", "-q", "-o", "LOOP"],
                                  ["compare", str(ARCH), "W", "--images", "1", "-q", "-o", "NEW", "--json", "LOOP"]],
                         ids=["run-json", "compare-o", "compare-json"])
def test_an_output_that_is_a_loop_of_links_is_one_line_and_stays_a_link(tmp_path, workload_path, capsys, argv):
    """--json LOOP raised RuntimeError (Path.resolve) with a traceback; compare --json LOOP replaced the link by
    the file."""
    loop = tmp_path / "a"
    loop.symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(loop)
    names = {"W": str(workload_path), "LOOP": str(loop), "NEW": str(tmp_path / "new")}
    err = _one_line_error(capsys, [names.get(a, a) for a in argv])
    assert f"{loop}: {'--json' if argv[-2] == '--json' else '-o'}: is a loop of symbolic links" in err, err
    assert loop.is_symlink() and not (tmp_path / "new").exists()


@pytest.mark.parametrize("field", ["workload", "arch", "vary.arch"])
def test_a_study_input_that_is_a_loop_of_links_is_one_line(tmp_path, workload_path, capsys, field):
    """Path.resolve raised RuntimeError on the loop: a traceback."""
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    body = {"workload": f"arch: {ARCH}\nworkload: a\n", "arch": f"arch: a\nworkload: {workload_path}\n",
            "vary.arch": f"workload: {workload_path}\n"}[field]
    vary = f"vary:\n  arch: [{ARCH}, a]\n" if field == "vary.arch" else "vary:\n  clock_hz: [1e8, 2e8]\n"
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\n{body}images: 1\n{vary}metrics: [fps]\n")
    err = _one_line_error(capsys, ["sweep", str(path), "-o", str(tmp_path / "out"), "-q"])
    assert err.startswith(f"satasim: error: {path}: {field}: 'a' is a loop of symbolic links"), err


def test_a_compare_workload_that_is_a_loop_of_links_is_one_line(tmp_path, capsys):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    err = _one_line_error(capsys, ["compare", str(ARCH), str(ARCH.parent / "conventional16x16.yaml"),
                                   str(tmp_path / "a"), "-o", str(tmp_path / "out"), "-q"])
    assert str(tmp_path / "a") in err


@pytest.mark.parametrize("argv", [["run", str(ARCH), "W", "--images", "1", "-q", "--json", "OUT/"],
                                  ["compare", str(ARCH), "W", "--images", "1", "-q", "-o", "C", "--json", "OUT/"]],
                         ids=["run", "compare"])
def test_a_file_output_ending_in_a_slash_is_refused(tmp_path, workload_path, capsys, argv):
    """`--json out/` (a folder meant) wrote a regular file named `out`: Path drops the trailing slash."""
    names = {"W": str(workload_path), "OUT/": f"{tmp_path / 'out'}/", "C": str(tmp_path / "c")}
    err = _one_line_error(capsys, [names.get(a, a) for a in argv])
    assert err.startswith(f"satasim: error: {tmp_path / 'out'}/: --json: ends with a slash, so it names a folder, "
                          f"not a file; give a file name, e.g. {tmp_path / 'out'}/results.json"), err
    assert not (tmp_path / "out").exists() and not (tmp_path / "c").exists()


@pytest.mark.parametrize(("value", "text"), [(9999.4, "9999"), (9999.5, "1.000e+04"), (9999.96, "1.000e+04"),
                                             (10000.0, "1.000e+04"), (-9999.7, "-1.000e+04"), (537.64, "537.6")])
def test_a_number_that_rounds_up_to_ten_thousand_keeps_four_digits(value, text):
    """fmt(9999.5) was '1e+04' (the 'g' format drops the digits), beside '1.000e+04' for 10000 in the same table."""
    from satasim_atsn.report.document import fmt

    assert fmt(value) == text


LONG = "x" * 300  # more than any file system's 255-byte name: Path.exists/is_file raised OSError ENAMETOOLONG


@pytest.mark.parametrize("argv", [["sweep", "S", "-o", "LONG", "-q"],
                                  ["run", str(ARCH), "W", "--images", "1", "-q", "--json", "LONG.json"],
                                  ["compare", str(ARCH), "W", "--images", "1", "-q", "-o", "LONG"]],
                         ids=["sweep-o", "run-json", "compare-o"])
def test_an_output_name_too_long_is_one_line(tmp_path, workload_path, capsys, argv):
    study = engine_study(tmp_path, workload_path, "vary:\n  clock_hz: [1e8, 2e8]\n")
    names = {"S": str(study), "W": str(workload_path), "LONG": str(tmp_path / LONG),
             "LONG.json": str(tmp_path / f"{LONG}.json")}
    err = _one_line_error(capsys, [names.get(a, a) for a in argv])
    assert "is too long a name for the file system" in err and "give a shorter name" in err, err


@pytest.mark.parametrize("field", ["study", "workload", "arch"])
def test_a_study_input_name_too_long_is_one_line(tmp_path, workload_path, capsys, field):
    path = tmp_path / f"{LONG}.yaml" if field == "study" else tmp_path / "s.yaml"
    if field != "study":
        body = (f"arch: {ARCH}\nworkload: {LONG}.npz\n" if field == "workload"
                else f"arch: {LONG}.yaml\nworkload: {workload_path}\n")
        path.write_text(f"name: t\n{body}images: 1\nvary:\n  clock_hz: [1e8, 2e8]\nmetrics: [fps]\n")
    err = _one_line_error(capsys, ["sweep", str(path), "-o", str(tmp_path / "out"), "-q"])
    expected = "no such file" if field == "study" else f"{field}: 'xxxx"
    assert err.startswith(f"satasim: error: {path}: {'' if field == 'study' else expected}"), err
    assert ("no such file" if field == "study" else "does not exist") in err, err


def _sweep(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code in (0, None)


def test_a_sweeps_directory_whose_study_json_was_deleted_resumes_or_starts_over(tmp_path, workload_path, capsys):
    """With its study.json deleted, a sweep's own directory was refused as 'another command's output (report.md,
    report.html)', even with --force, so only emptying it by hand went on (session 35). It is named for what it is;
    --resume keeps the rows (their keys hash the points) and --force starts over."""
    path = engine_study(tmp_path, workload_path, "vary:\n  clock_hz: [1e8, 2e8]\n")
    out = tmp_path / "out"
    _sweep(["sweep", str(path), "-o", str(out), "-q"])
    rows = (out / "points.csv").read_bytes()
    (out / "study.json").unlink()
    err = _one_line_error(capsys, ["sweep", str(path), "-o", str(out), "-q"])
    assert f"{out}: study.json: is missing beside a sweep's points.csv (deleted?); pass --resume" in err, err
    _sweep(["sweep", str(path), "-o", str(out), "--resume"])
    assert "(0 computed, 2 reused," in capsys.readouterr().out
    assert (out / "points.csv").read_bytes() == rows and (out / "study.json").is_file()
    (out / "study.json").unlink()
    _sweep(["sweep", str(path), "-o", str(out), "--force"])
    assert "(2 computed, 0 reused," in capsys.readouterr().out and (out / "points.csv").read_bytes() == rows


def test_a_one_point_sweep_says_one_point_not_one_points(tmp_path, workload_path, capsys):
    """The summary and the report said '1 points' and '0 errors' read alike for any count (h4, session 35)."""
    path = engine_study(tmp_path, workload_path, "vary:\n  clock_hz: [1e8]\n")
    out = tmp_path / "one"
    _sweep(["sweep", str(path), "-o", str(out)])
    assert ": 1 point (1 computed, 0 reused, 0 errors, 0 skipped)" in capsys.readouterr().out
    assert "1 point, 1 ok, 0 errors" in (out / "report.md").read_text()


def test_jobs_with_a_scheduler_is_refused_not_ignored(tmp_path, workload_path, capsys):
    """--jobs was silently ignored with --scheduler (a Dask cluster's workers run the points; h4, session 35)."""
    path = engine_study(tmp_path, workload_path, "vary:\n  clock_hz: [1e8, 2e8]\n")
    err = _one_line_error(capsys, ["sweep", str(path), "-o", str(tmp_path / "out"), "-j", "2", "--scheduler",
                                   "tcp://127.0.0.1:1"])
    assert "--jobs/--scheduler: are exclusive" in err and "drop --jobs" in err
    assert not (tmp_path / "out").exists()


def test_a_skip_reason_never_asks_to_clear_a_varied_field(workload_path):
    """A layer_major point of an AT design was told to 'make it fixed-T: ..., exit_unit.cl_init: null' while the
    study varied exit_unit.cl_init: a set of it is refused (it is varied) and a vary list takes no null, so the fix
    could not be followed (h2, session 47). The varied field leaves the list; the reason says the design takes none."""
    from satasim_atsn.study.spec import point_refusal

    reason = point_refusal(str(ROOT / "archs" / "atsn16x16.yaml"), ["exit_unit.cl_init=0.9", "dataflow=layer_major"],
                           str(workload_path), "atsn16x16.yaml", varied=["arch", "exit_unit.cl_init", "dataflow"])
    assert reason and "exit_unit.cl_init: null" not in reason, reason
    assert reason.endswith("exit_unit.tau_cl: null (that design takes no exit_unit.cl_init, which the study varies: "
                           "vary it in a study of the designs that take it)"), reason


@pytest.mark.parametrize("vary", [False, True])
def test_a_workload_given_as_the_studys_architecture_names_the_study_and_its_field(tmp_path, workload_path, capsys,
                                                                                  vary):
    """arch: W.npz was refused naming the .npz and the command line's argument order ('satasim run ARCH WORKLOAD'),
    neither the study file nor its field (h2, session 47)."""
    arch = f"vary:\n  arch: [{ROOT / 'archs' / 'atsn16x16.yaml'}, {workload_path}]\n" if vary else \
        f"arch: {workload_path}\nvary:\n  clock_hz: [1e8, 2e8]\n"
    study = tmp_path / "s.yaml"
    study.write_text(f"name: s\nworkload: {workload_path}\nimages: 2\n{arch}metrics: [fps]\n")
    err = _one_line_error(capsys, ["sweep", str(study), "-o", str(tmp_path / "out")])
    field = "vary.arch" if vary else "arch"
    assert err.startswith(f"satasim: error: {study}: {field}: '{workload_path}' is a workload (.npz), not an "
                          "architecture YAML; give an architecture file"), err
    assert "satasim run" not in err


def test_a_set_entry_without_a_value_is_named(tmp_path, workload_path, capsys):
    """set: [accelerators] was told 'must be a list of 'path.to.field=value' strings', which it was (h2)."""
    study = engine_study(tmp_path, workload_path, "set: [accelerators]\nvary:\n  clock_hz: [1e8, 2e8]\n")
    err = _one_line_error(capsys, ["sweep", str(study), "-o", str(tmp_path / "out")])
    assert "set[0]: 'accelerators' has no '=value'; write FIELD=VALUE, e.g. set: [accelerators=4]" in err, err
