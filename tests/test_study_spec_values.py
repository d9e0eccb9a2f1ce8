"""Study files (study/spec.py): numeric text in range bounds and point keys, repeated sweep
values, and a bad ``set`` entry named as such (one line, exit code 2, never a traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from study_helpers import engine_study

from satasim_atsn.cli import main
from satasim_atsn.errors import StudyError
from satasim_atsn.study.spec import load_study

ROOT = Path(__file__).resolve().parents[1]
ARCH = ROOT / "archs" / "atsn16x16.yaml"
CONVENTIONAL = ROOT / "archs" / "conventional16x16.yaml"


def _keys(path: Path) -> list[str]:
    study = load_study(path)
    base = study.base_identity()
    return [study.point_key(p, base) for p in study.points()]


# ------------------------------------------------------------------------------------------
# 1. numeric text (1e8: PyYAML reads an exponent without a dot as text) in ranges and keys
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["{start: 1e8, stop: 3e8, step: 1e8}", "{start: 1e8, stop: 4e8, factor: 2}",
                                      "{start: 1e8, stop: 3.0e+8, step: 1.0e+8}"])
def test_range_bounds_accept_exponent_text(tmp_path, workload_path, spelling):
    study = load_study(engine_study(tmp_path, workload_path, f"vary:\n  clock_hz: {spelling}\n"))
    values = [v[0] for v in study.axes[0].values]
    assert values[:3] == ([1e8, 2e8, 3e8] if "step" in spelling else [1e8, 2e8, 4e8])
    dotted = spelling.replace("1e8", "1.0e+8").replace("3e8", "3.0e+8").replace("4e8", "4.0e+8")
    assert _keys(tmp_path / "s.yaml") == _keys(engine_study(tmp_path, workload_path, f"vary:\n  clock_hz: {dotted}\n",
                                                       "dotted.yaml"))


@pytest.mark.parametrize("bound", ["abc", "'1e8 Hz'", ".nan", "'inf'", "true"])
def test_range_bounds_still_refuse_what_is_not_a_number(tmp_path, workload_path, bound):
    path = engine_study(tmp_path, workload_path, f"vary:\n  clock_hz: {{start: {bound}, stop: 3e8, step: 1e8}}\n")
    with pytest.raises(StudyError, match=r"s\.yaml: vary\.clock_hz\.start: must be a (finite )?number"):
        load_study(path)


@pytest.mark.parametrize(("text", "number"), [("clock_hz: [1e8, 2e8]", "clock_hz: [1.0e+8, 2.0e+8]"),
                                              ("pe.data_memory_bytes: [1e3]", "pe.data_memory_bytes: [1000]"),
                                              ("tech.add_16b_energy_pJ: [1e-2]",
                                               "tech.add_16b_energy_pJ: [0.01]")])
def test_equal_numbers_give_equal_keys(tmp_path, workload_path, text, number):
    written = _keys(engine_study(tmp_path, workload_path, f"vary:\n  {text}\n", "text.yaml"))
    assert written == _keys(engine_study(tmp_path, workload_path, f"vary:\n  {number}\n", "number.yaml"))
    assert load_study(tmp_path / "text.yaml").identity()["digest"] == \
        load_study(tmp_path / "number.yaml").identity()["digest"]


def test_text_of_a_text_field_keeps_its_key(tmp_path, workload_path):
    """Only numeric fields read numeric text as a number: a text value keeps its own key."""
    from satasim_atsn.study.spec_fields import key_value

    assert key_value("dram.energy_table_entry", "1e3") == "1e3"
    assert key_value("arch", "1e3") == "1e3"
    assert key_value("clock_hz", "1e8") == 1e8 and isinstance(key_value("pe.adders", "2e0"), int)


def test_numeric_text_is_labelled_as_the_number_it_spells(tmp_path, workload_path):
    """points.csv and the plots showed 250e6 beside 500000000.0: the values of a numeric field are numbers now;
    text fields keep their text, and the keys are those the text gave."""
    text = load_study(engine_study(tmp_path, workload_path, "vary:\n  clock_hz: [250e6, 5.0e+8]\n  pe.adders: ['2']\n",
                              "text.yaml"))
    assert [axis.values for axis in text.axes] == [[(250000000.0,), (500000000.0,)], [(2,)]]
    assert isinstance(text.axes[1].values[0][0], int)
    number = load_study(engine_study(tmp_path, workload_path, "vary:\n  clock_hz: [2.5e+8, 5.0e+8]\n  pe.adders: [2]\n",
                                "number.yaml"))
    base = text.base_identity()
    assert [text.point_key(p, base) for p in text.points()] == \
        [number.point_key(p, number.base_identity()) for p in number.points()]


def test_shipped_studies_keep_their_keys():
    """The normalisation changes no key of a shipped study: each digest equals the one its report stored."""
    for report in sorted((ROOT / "reports").glob("*/study.json")):
        stored = json.loads(report.read_text())
        study_file = ROOT / "studies" / stored["study_file"]
        if not study_file.is_file():
            continue
        assert load_study(study_file).identity()["digest"] == stored["digest"], report


# ------------------------------------------------------------------------------------------
# 2. a value given twice is the same point twice, under one key: refused
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("vary", "pattern"),
    [
        ("clock_hz: [1e8, 1e8]", r"vary\.clock_hz: value '1e8' is given twice; list each value once"),
        ("pe.adders: [1, 2, 1]", r"vary\.pe\.adders: value 1 is given twice"),
        ("clock_hz: [1e8, 1.0e+8]", r"vary\.clock_hz: values '1e8' and 100000000\.0 are the same"),
        ("pe.adders: [2, 2.0]", r"vary\.pe\.adders: values 2 and 2\.0 are the same"),
        ("dataflow: [timestep_major, timestep_major]", r"vary\.dataflow: value 'timestep_major' is given twice"),
        ("zip:\n    - {array.rows: [8, 16, 8], array.cols: [8, 16, 8]}", r"vary\.zip\[0\]: value \(8, 8\) is given"),
        ("clock_hz: {start: 1, stop: 1.000000000001, step: 1.0e-13}", r"vary\.clock_hz: value 1\.0 is given twice; "
         r"use a coarser step"),
        (f"arch: [{ARCH}, {ARCH.parent}/../archs/atsn16x16.yaml]", r"vary\.arch: .* name the same file"),
        (f"arch: [{ARCH}, {ARCH}]", r"vary\.arch: value '.*atsn16x16\.yaml' is given twice"),
    ],
)
def test_repeated_sweep_values_are_refused(tmp_path, workload_path, vary, pattern):
    path = engine_study(tmp_path, workload_path, f"vary:\n  {vary}\n")
    with pytest.raises(StudyError, match=pattern) as info:
        load_study(path)
    assert str(info.value).startswith(f"{path}: ")


def test_zip_columns_may_repeat_when_the_combinations_differ(tmp_path, workload_path):
    study = load_study(engine_study(tmp_path, workload_path, "vary:\n  zip:\n    - {array.rows: [8, 16], "
                                                        "array.cols: [16, 16]}\n"))
    assert len(study.points()) == 2 and len(set(_keys(tmp_path / "s.yaml"))) == 2


def test_sweep_cli_refuses_a_repeated_value_in_one_line(tmp_path, workload_path, capsys):
    path = engine_study(tmp_path, workload_path, "vary:\n  clock_hz: [1e8, 1e8]\n")
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(path), "-o", str(tmp_path / "out"), "-q"])
    out, err = capsys.readouterr()
    assert exc.value.code == 2 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "vary.clock_hz" in lines[0] and "'1e8'" in lines[0]


# ------------------------------------------------------------------------------------------
# 3. a `set` entry the architecture refuses is named as set.<field>, not as a varied value
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ("set: [pe.adders=0]\nvary: {clock_hz: [1e8]}\n", r"set\.pe\.adders: value '0' is refused \(.*pe\.adders: "
         r"must be positive.*fix or remove this set entry"),
        ("set: [accelerators=1, tech.add_16b_energy_pJ=-1]\nvary: {pe.adders: [1, 2]}\n",
         r"set\.tech\.add_16b_energy_pJ: value '-1' is refused"),
        ("set: [array.rows=1, array.cols=1]\nvary: {clock_hz: [1e8]}\n", r"set\.array\.cols: value '1' is refused "
         r"\(.*rows x cols = 1 x 1 leaves no tile for a PE"),
        (f"set: [pe.adders=0]\nvary: {{arch: [{ARCH}, {CONVENTIONAL}]}}\n", r"set\.pe\.adders: value '0' is refused"),
    ],
)
def test_a_bad_set_entry_is_named(tmp_path, workload_path, body, pattern):
    path = engine_study(tmp_path, workload_path, body)
    with pytest.raises(StudyError, match=pattern) as info:
        load_study(path)
    assert str(info.value).startswith(f"{path}: set.") and "vary." not in str(info.value)


def test_a_bad_varied_value_is_still_named_as_vary(tmp_path, workload_path):
    path = engine_study(tmp_path, workload_path, "set: [pe.adders=2]\nvary: {pe.vmem_bits: [16, 0]}\n")
    with pytest.raises(StudyError, match=r"vary\.pe\.vmem_bits: value 0 is refused"):
        load_study(path)


def test_sweep_cli_names_the_set_entry_in_one_line(tmp_path, workload_path, capsys):
    path = engine_study(tmp_path, workload_path, "set: [pe.adders=0]\nvary: {clock_hz: [1e8]}\n")
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(path), "-o", str(tmp_path / "out"), "-q"])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert exc.value.code == 2 and len(lines) == 1 and f"{path}: set.pe.adders" in lines[0]


@pytest.mark.parametrize("maker", ["engine", "functional"])
@pytest.mark.parametrize("entry", ["=5", " = 5"])
def test_a_set_entry_without_a_field_name_says_so(tmp_path, workload_path, capsys, maker, entry):
    """`set: ['=5']` said "set: : no such architecture field"."""
    body = f"set: [accelerators=2, '{entry}']\nvary: {{clock_hz: [1e8]}}\n"
    path = (engine_study(tmp_path, workload_path, body) if maker == "engine" else
            _functional(tmp_path, workload_path, body.replace("accelerators=2", "exit_unit.cl_init=0.5")
                        .replace("clock_hz: [1e8]", "exit_unit.tau_cl: [0.99]")))
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(path), "-o", str(tmp_path / "out"), "-q"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(lines) == 1, lines
    assert f"{path}: set[1]: '{entry}' has no field name before '='; write FIELD=VALUE" in lines[0], lines[0]
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------
# 4. a functional study's `set` entries are parsed and checked like its varied values
# ------------------------------------------------------------------------------------------
def _functional(tmp_path: Path, workload_path: Path, body: str, name: str = "f.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"name: f\nmode: functional\nworkload: {workload_path}\nimages: 4\n{body}"
                    "metrics: [accuracy, avg_timestep]\n")
    return path


@pytest.mark.parametrize(
    ("entry", "pattern"),
    [
        ("exit_unit.cl_init=1.5", r"set\.exit_unit\.cl_init: value '1\.5' is refused \(.*must be in \(0, 1\]"),
        ("exit_unit.kind=foo", r"set\.exit_unit\.kind: value 'foo' is refused \(.*one of at, dt, none"),
        ("exit_unit.exp_lut_entries=abc", r"set\.exit_unit\.exp_lut_entries: value 'abc' is refused \(.*integer"),
        ("exit_unit.theta=-0.5", r"set\.exit_unit\.theta: value '-0\.5' is refused"),
        ("exit_unit.clinit=0.9", r"set: exit_unit\.clinit: no such field for a functional study; did you mean "
         r"'exit_unit\.cl_init'"),
    ],
)
def test_a_bad_functional_set_entry_is_refused_before_any_point_runs(tmp_path, workload_path, entry, pattern):
    path = _functional(tmp_path, workload_path, f"set: ['{entry}']\nvary: {{exit_unit.tau_cl: [0.99, 0.999]}}\n")
    with pytest.raises(StudyError, match=pattern):
        load_study(path)


@pytest.mark.parametrize("maker", [engine_study, _functional])
def test_a_field_both_set_and_varied_is_refused(tmp_path, workload_path, maker):
    field, values = ("clock_hz", "[1e8, 2e8]") if maker is engine_study else ("exit_unit.tau_cl", "[0.99, 0.999]")
    path = maker(tmp_path, workload_path, f"set: ['{field}=3e8']\nvary: {{{field}: {values}}}\n")
    with pytest.raises(StudyError, match=rf"set\.{field}: is also varied, and the varied values would win"):
        load_study(path)


@pytest.mark.parametrize(("body", "pattern"), [
    ("set: ['exit_unit.kind=dt']\nvary: {exit_unit.cl_init: [0.5, 0.9]}\n",
     r"vary\.exit_unit\.cl_init: only meaningful for exit unit kind 'at', not 'dt'"),
    ("set: ['exit_unit.theta=0.2']\nvary: {exit_unit.cl_init: [0.5, 0.9]}\n",
     r"set\.exit_unit\.theta: only meaningful for exit unit kind 'dt', not 'at'"),
])
def test_a_field_of_another_exit_unit_kind_is_refused(tmp_path, workload_path, body, pattern):
    """Its points would all repeat one another (the rule ignores the field); an engine study refuses it too."""
    with pytest.raises(StudyError, match=pattern):
        load_study(_functional(tmp_path, workload_path, body))


def test_points_whose_kind_ignores_a_varied_field_are_skipped(tmp_path, workload_path):
    from satasim_atsn.study.runner import run_study

    study = load_study(_functional(tmp_path, workload_path, "vary: {exit_unit.kind: [at, dt], "
                                   "exit_unit.cl_init: [0.5, 0.9]}\n"))
    rows, _ = run_study(study, tmp_path / "out", jobs=1, quiet=True)
    assert [r["status"] for r in rows] == ["ok", "ok", "skipped", "skipped"]
    assert rows[2]["error"] == ("exit_unit.cl_init: only meaningful for exit unit kind 'at', not 'dt'; the points of "
                                "this kind are skipped (vary exit_unit.cl_init in a study of exit_unit.kind 'at', one "
                                "study per kind)")  # a fix, as an engine study's skipped points give
    # a set field of one kind, the kind varied: each kind's point runs once (the at point ignores theta)
    study = load_study(_functional(tmp_path, workload_path, "set: ['exit_unit.theta=0.2']\n"
                                   "vary: {exit_unit.kind: [at, dt]}\n", "g.yaml"))
    rows, _ = run_study(study, tmp_path / "out2", jobs=1, quiet=True)
    assert [r["status"] for r in rows] == ["ok", "ok"]


def test_functional_set_values_reach_the_exit_rule_parsed(tmp_path, workload_path):
    from satasim_atsn.study.runner import make_task, run_point

    spaced = load_study(_functional(tmp_path, workload_path, "set: ['exit_unit.cl_init = 1']\n"
                                    "vary: {exit_unit.tau_cl: [1.0]}\n", "spaced.yaml"))
    varied = load_study(_functional(tmp_path, workload_path, "vary: {exit_unit.cl_init: [1], "
                                    "exit_unit.tau_cl: [1.0]}\n", "varied.yaml"))
    plain = load_study(_functional(tmp_path, workload_path, "vary: {exit_unit.tau_cl: [1.0]}\n", "plain.yaml"))
    task = make_task(spaced, spaced.points()[0])
    assert task["params"] == {"exit_unit.cl_init": 1, "exit_unit.tau_cl": 1.0}
    assert spaced.fixed == ["exit_unit.cl_init=1"]
    got = run_point(task)
    assert got == run_point(make_task(varied, varied.points()[0]))
    # the entry changes the rule: CL = 1 is never reached, so every image runs all T = 4 timesteps, where the
    # default CL_init = 0.999 lets this random network's images leave at t = 1
    assert got["avg_timestep"] == 4.0 > run_point(make_task(plain, plain.points()[0]))["avg_timestep"]


# ------------------------------------------------------------------------------------------
# 5. what a point's key covers, and ranges that would never end
# ------------------------------------------------------------------------------------------
def test_editing_a_users_technology_table_changes_the_keys(tmp_path, workload_path):
    """The key hashed the architecture file but not the table it names: an edited table reused stale rows."""
    table = tmp_path / "mytech.yaml"
    table.write_text((ROOT / "satasim_atsn" / "data" / "tech" / "28nm.yaml").read_text())
    arch = tmp_path / "a.yaml"
    arch.write_text(ARCH.read_text().replace("technology: 28nm", "technology: mytech.yaml"))
    assert "technology: mytech.yaml" in arch.read_text()
    study = tmp_path / "s.yaml"
    study.write_text(f"name: t\nmode: engine\narch: {arch}\nworkload: {workload_path}\nimages: 2\n"
                     "vary: {clock_hz: [1e8, 2e8]}\nmetrics: [fps]\n")
    before = _keys(study)
    text = table.read_text()
    table.write_text(text.replace("entries:", "entries:  # edited", 1) if "entries:" in text else text + "\n# edited\n")
    assert _keys(study) != before
    shipped = engine_study(tmp_path, workload_path, "vary: {clock_hz: [1e8, 2e8]}\n", "shipped.yaml")
    assert _keys(shipped) == _keys(shipped)  # a shipped table adds nothing to the key (it is part of the tool)


def test_a_factor_range_of_too_many_values_is_refused_at_once(tmp_path, workload_path):
    path = engine_study(tmp_path, workload_path,
                   "vary:\n  clock_hz: {start: 1.0e+8, stop: 1.0e+9, factor: 1.000000000000001}\n")
    with pytest.raises(StudyError, match=r"vary\.clock_hz: \d+ values; use a larger factor"):
        load_study(path)


def test_a_workload_without_the_architectures_exit_histogram_is_refused_up_front(tmp_path, capsys):
    """Every point became an error row (exit code 0) when the workload was built for fixed T only."""
    fixed = tmp_path / "fixed.npz"
    with pytest.raises(SystemExit):
        main(["workload", "build", "--network", "vgg16", "--rate", "0.1", "--timesteps", "2", "--num-images", "4",
              "-o", str(fixed)])
    capsys.readouterr()
    path = engine_study(tmp_path, fixed, "vary: {clock_hz: [1e8]}\n")
    with pytest.raises(StudyError, match=r"s\.yaml: workload: fixed\.npz cannot run on atsn16x16\.yaml: missing: this "
                                         r"statistical workload is built for fixed only; rebuild it with --exit-mean"):
        load_study(path)


@pytest.mark.parametrize("color", ["[a]", "{b: 1}", "3"])
def test_a_plot_axis_that_is_not_a_name_is_refused(tmp_path, workload_path, color):
    path = engine_study(tmp_path, workload_path,
                        f"vary: {{clock_hz: [1e8]}}\nplots: [{{x: fps, y: fps, color: {color}}}]\n")
    with pytest.raises(StudyError, match=r"plots\[0\]\.color: .* is not a name"):
        load_study(path)


@pytest.mark.parametrize(("field", "a", "b"), [("pe.adders", "[2]", "[2.0]"), ("clock_hz", "[500000000]", "[5.0e+8]"),
                                               ("clock_hz", "[5e8]", "[500000000]")])
def test_an_integer_and_a_float_of_one_value_share_a_key(tmp_path, workload_path, field, a, b):
    """48 and 48.0 (or 5e8 and 500000000) are one point: --resume recomputed it."""
    first = engine_study(tmp_path, workload_path, f"vary: {{{field}: {a}}}\n", "a.yaml")
    second = engine_study(tmp_path, workload_path, f"vary: {{{field}: {b}}}\n", "b.yaml")
    assert _keys(first) == _keys(second)


def test_colour_by_text_or_with_missing_values_keeps_every_point(tmp_path):
    """Text colours (dataflow) became NaN and their points vanished from the plot."""
    import numpy as np

    from satasim_atsn.report.plots import pareto_scatter
    from satasim_atsn.study.sweep_report import _colours

    codes, label, names = _colours(["timestep_major", "layer_major", "timestep_major"], "dataflow")
    assert list(codes) == [1.0, 0.0, 1.0] and label == "dataflow" and names == ["layer_major", "timestep_major"]
    path = pareto_scatter(tmp_path / "q.png", np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]),
                          np.array([True, True, True]), "a", "b", "t", color=codes, color_label=label,
                          categories=names)
    assert path.is_file()
    codes, label, names = _colours(["True", False], "batch_refill")
    assert list(codes) == [1.0, 0.0] and label == "batch_refill" and names == ["False", "True"]
    codes, label, names = _colours([1.5, None, "2.5"], "x")
    assert codes[0] == 1.5 and np.isnan(codes[1]) and codes[2] == 2.5 and label == "x" and names is None
    assert _colours([None, ""], "x") == (None, "", None)
    path = pareto_scatter(tmp_path / "p.png", np.array([1.0, 2.0, 3.0]), np.array([3.0, 2.0, 1.0]),
                          np.array([True, True, True]), "a", "b", "t", color=codes, color_label=label)
    assert path.is_file()


def test_a_damaged_journal_is_one_line_and_a_cut_row_is_run_again(tmp_path):
    from satasim_atsn.study.runner import read_rows

    journal = tmp_path / "points.csv"
    journal.write_text("point,key,clock_hz,status,fps,error\n0,k0,1e8,ok,12.5,\n1,k1,2e8,ok\n")
    rows = read_rows(journal)
    assert [r["point"] for r in rows] == ["0"]  # the row cut after 'ok' had no metrics: not reused
    journal.write_text("point,key,clock_hz,status,fps,error\n0,k0,1e8,ok,12.5," + "x" * 200000 + "\n")
    with pytest.raises(StudyError, match=r"points\.csv: is not a readable journal .*run with --force"):
        read_rows(journal)


def test_an_empty_zip_is_refused(tmp_path, workload_path):
    path = engine_study(tmp_path, workload_path, "vary: {clock_hz: [1e8], zip: []}\n")
    with pytest.raises(StudyError, match=r"vary\.zip: is empty: it varies nothing"):
        load_study(path)


def test_compare_start_past_the_last_image_is_named(tmp_path, workload_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(ARCH), str(workload_path), "-o", str(tmp_path / "c"), "--start", "9"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--start: 9 is past the last image (the workload holds 4)" in err


def test_a_functional_study_refuses_an_architecture_file(tmp_path, workload_path):
    """Its arch: was ignored (the AT unit's defaults ran) while the report named it as the base architecture."""
    path = _functional(tmp_path, workload_path, "arch: ../archs/atsn16x16.yaml\nvary: {exit_unit.tau_cl: [0.99]}\n")
    with pytest.raises(StudyError, match=r"arch: a functional study reads no architecture file"):
        load_study(path)


@pytest.mark.parametrize("maker", [engine_study, _functional])
def test_a_field_set_twice_is_refused(tmp_path, workload_path, maker):
    field, a, b = ("accelerators", 2, 3) if maker is engine_study else ("exit_unit.cl_init", 0.9, 0.99)
    other = "clock_hz: [1e8, 2e8]" if maker is engine_study else "exit_unit.tau_cl: [0.99, 0.999]"
    path = maker(tmp_path, workload_path, f"set: ['{field}={a}', '{field}={b}']\nvary: {{{other}}}\n")
    with pytest.raises(StudyError, match=rf"set\.{field}: is given twice, and the last value would win"):
        load_study(path)


def test_a_field_given_twice_with_set_on_the_command_line_is_refused():
    from satasim_atsn.errors import ArchError
    from satasim_atsn.hw.arch import load_arch

    with pytest.raises(ArchError, match=r"overrides: accelerators: given twice"):
        load_arch("atsn16x16", ["accelerators=2", "accelerators=3"])


@pytest.mark.parametrize("metric", ["accuracy", "accuracy_hardware"])
def test_an_accuracy_of_a_statistical_workload_is_refused_before_any_point(tmp_path, metric):
    """Its column stayed empty and the plots said 'nothing to plot', with exit 0."""
    shipped = Path(ARCH).parents[1] / "workloads" / "vgg16_cifar10.npz"
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\narch: {ARCH}\nworkload: {shipped}\nimages: 2\nvary: {{accelerators: [1, 2]}}\n"
                    f"metrics: [fps, {metric}]\n")
    with pytest.raises(StudyError, match=rf"metrics: {metric}: a statistical workload has no labels"):
        load_study(path)


def test_a_nested_section_under_vary_says_to_write_dotted_keys(tmp_path, workload_path):
    path = engine_study(tmp_path, workload_path, "vary: {pe: {input_spike_buffer_bytes: [64, 128]}}\n")
    with pytest.raises(StudyError, match=r"vary\.pe: is a section, and vary takes one field per key, dotted; write "
                                         r"vary: \{pe\.input_spike_buffer_bytes: \[\.\.\.\]\}"):
        load_study(path)


def test_a_baseline_index_out_of_range_is_named_so():
    from satasim_atsn.study.compare import _baseline_index

    assert _baseline_index(["a", "b"], ["a.yaml", "b.yaml"], "1") == 1
    with pytest.raises(StudyError, match=r"--baseline: index 5 is out of range: there are 2 architectures, 0\.\.1"):
        _baseline_index(["a", "b"], ["a.yaml", "b.yaml"], "5")


def test_a_study_takes_a_shipped_architectures_name(tmp_path, workload_path):
    """run and compare take 'atsn16x16'; a study's arch: and vary.arch said it did not exist."""
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\narch: atsn16x16\nworkload: {workload_path}\nimages: 2\n"
                    "vary: {arch: [conventional16x16, atsn16x16]}\nmetrics: [fps]\n")
    study = load_study(path)
    assert study.arch.name == "atsn16x16.yaml" and [p.name for p in study.arch_files.values()] == [
        "conventional16x16.yaml", "atsn16x16.yaml"]
    # a base design outside vary.arch ran nowhere, yet the report named it as the base
    path.write_text(f"name: t\narch: dtsnn16x16\nworkload: {workload_path}\nimages: 2\n"
                    "vary: {arch: [conventional16x16, atsn16x16]}\nmetrics: [fps]\n")
    with pytest.raises(StudyError, match=r"arch: 'dtsnn16x16' is not one of vary\.arch's designs"):
        load_study(path)
    path.write_text(f"name: t\narch: {workload_path.parent}\nworkload: {workload_path}\nimages: 2\n"
                    "vary: {accelerators: [1, 2]}\nmetrics: [fps]\n")
    with pytest.raises(StudyError, match=r"arch: '.*' is a folder, not a file; name a file in it"):
        load_study(path)
    path.write_text(f"name: t\narch: my_design\nworkload: {workload_path}\nimages: 2\nvary: {{accelerators: [1, 2]}}\n"
                    "metrics: [fps]\n")  # no shipped name close to it (a near one is suggested: below)
    with pytest.raises(StudyError, match=r"arch: 'my_design' does not exist .*shipped architecture's name"):
        load_study(path)


def test_a_technology_entry_the_design_does_not_read_is_refused(tmp_path, workload_path):
    """DDR4 figures varied on an LPDDR4 design gave identical points with exit 0."""
    path = engine_study(tmp_path, workload_path, "vary: {tech.dram_ddr4_energy_pJ_per_bit: [1, 100]}\n")
    with pytest.raises(StudyError, match=r"vary\.tech\.dram_ddr4_energy_pJ_per_bit: changes nothing in "
                                         r"atsn16x16\.yaml: the design does not use this technology entry"):
        load_study(path)
    used = engine_study(tmp_path, workload_path, "vary: {tech.dram_lpddr4_energy_pJ_per_bit: [1, 100]}\n", "u.yaml")
    load_study(used)
    # another axis may make it matter: DDR4 figures beside a DRAM type axis are studied on the DDR4 points
    crossed = engine_study(tmp_path, workload_path, "vary: {dram.energy_table_entry: [dram_lpddr4, dram_ddr4], "
                      "tech.dram_ddr4_energy_pJ_per_bit: [8.2, 12]}\n", "c.yaml")
    load_study(crossed)


def test_technology_entries_the_design_does_not_read_are_refused_zipped_or_on_several_axes(tmp_path, workload_path):
    """A zip of two entries ATSN does not read (an 8-bit adder, the ADC), or two such axes, ran every point with the
    same numbers and exit 0, where the same entry alone on its axis was refused (session 35)."""
    zipped = engine_study(tmp_path, workload_path, "vary:\n  zip:\n    - {tech.add_8b_energy_pJ: [0.01, 0.5], "
                          "tech.adc_fom_fJ_per_step: [1, 100]}\n", "z.yaml")
    with pytest.raises(StudyError, match=r"vary: tech\.add_8b_energy_pJ, tech\.adc_fom_fJ_per_step change nothing in "
                                         r"atsn16x16\.yaml: the design uses none of these technology entries"):
        load_study(zipped)
    two = engine_study(tmp_path, workload_path, "vary: {tech.dram_ddr4_energy_pJ_per_bit: [1, 20], "
                       "tech.add_8b_energy_pJ: [0.01, 0.5]}\n", "t.yaml")
    with pytest.raises(StudyError, match=r"tech\.dram_ddr4_energy_pJ_per_bit, tech\.add_8b_energy_pJ change nothing"):
        load_study(two)
    # one entry the design reads, zipped or on its own axis, makes the points differ: accepted
    load_study(engine_study(tmp_path, workload_path, "vary:\n  zip:\n    - {tech.add_8b_energy_pJ: [0.01, 0.5], "
                            "tech.dram_lpddr4_energy_pJ_per_bit: [1, 100]}\n", "u.yaml"))
    load_study(engine_study(tmp_path, workload_path, "vary: {tech.dram_lpddr4_energy_pJ_per_bit: [1, 100], "
                            "tech.add_8b_energy_pJ: [0.01, 0.5]}\n", "v.yaml"))


def test_an_integer_range_with_a_float_step_gives_integers():
    """{start: 64, stop: 256, step: 64.0} wrote 64.0, 128.0 ... in the CSV and the heat-map labels."""
    from satasim_atsn.study.spec_fields import axis_values

    ints = axis_values({"start": 64, "stop": 256, "step": 64.0}, "s.yaml", "vary.pe.input_spike_buffer_bytes")
    assert ints == [64, 128, 192, 256] and all(isinstance(v, int) for v in ints)
    zipped = axis_values({"start": 8, "stop": 32, "factor": 2.0}, "s.yaml", "vary.zip[0].array.rows")
    assert all(isinstance(v, int) for v in zipped)
    floats = axis_values({"start": 4, "stop": 8, "step": 2.0}, "s.yaml", "vary.tech.sram64_1KB_read_energy_pJ")
    assert floats == [4.0, 6.0, 8.0] and all(isinstance(v, float) for v in floats)  # a float field stays float


def test_a_baseline_may_be_given_by_its_file_name():
    """`--baseline conventional16x16.yaml` (the file name, with its extension) was refused as none of the
    architectures; the path as typed and the stem were accepted."""
    from satasim_atsn.study.compare import _baseline_index

    paths = ["archs/atsn16x16.yaml", "archs/conventional16x16.yaml"]
    names = ["atsn16x16", "conv"]
    for given in ("archs/conventional16x16.yaml", "conventional16x16.yaml", "conventional16x16", "conv", "1"):
        assert _baseline_index(names, paths, given) == 1, given


def test_a_sweep_whose_every_point_is_skipped_exits_2(tmp_path, workload_path, capsys):
    """Every point refused by its design ran to exit 0 with an empty report."""
    from satasim_atsn.cli import main

    path = engine_study(tmp_path, workload_path, "vary: {pe.weight_memory_bytes: [1, 2]}\n")
    with pytest.raises(SystemExit) as stop:
        main(["sweep", str(path), "-o", str(tmp_path / "out"), "-j", "1", "-q"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "none of the 2 points could run" in err and err.count("\n") == 1, err
    assert (tmp_path / "out" / "report.md").is_file()


def test_hardware_rule_metrics_of_a_float_rule_unit_are_refused(tmp_path, workload_path):
    """A dt study asking for the AT unit's hardware-rule metrics ran with empty columns."""
    path = tmp_path / "d.yaml"
    path.write_text(f"name: d\nmode: functional\nworkload: {workload_path}\nimages: 4\nset: [exit_unit.kind=dt]\n"
                    "vary: {exit_unit.theta: [0.1, 0.5]}\nmetrics: [accuracy, pred_hw_differs]\n")
    with pytest.raises(StudyError, match=r"metrics: pred_hw_differs: exit unit kind dt decides by the float rule"):
        load_study(path)
    path.write_text(f"name: d\nmode: functional\nworkload: {workload_path}\nimages: 4\n"
                    "vary: {exit_unit.kind: [at, dt]}\nmetrics: [accuracy, pred_hw_differs]\n")
    assert load_study(path).metrics == ["accuracy", "pred_hw_differs"]  # the at points have one



def test_a_metric_listed_twice_is_named(tmp_path, workload_path):
    """'metrics: lists a metric twice' left the user to find which one in a long list."""
    path = tmp_path / "m.yaml"
    path.write_text(f"name: m\nmode: functional\nworkload: {workload_path}\nimages: 4\n"
                    "vary: {exit_unit.cl_init: [0.5, 0.9]}\n"
                    "metrics: [accuracy, avg_timestep, complexity, avg_timestep]\n")
    with pytest.raises(StudyError, match=r"m.yaml: metrics: lists avg_timestep twice; list each metric once"):
        load_study(path)

# ------------------------------------------------------------------------------------------
# a DRAM rate in two units (dram.bytes_per_cycle / dram.bandwidth_GB_per_s): one rate, refused twice up front
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "pattern"), [
    ("set: [dram.bandwidth_GB_per_s=8]\nvary:\n  dram.bytes_per_cycle: [8, 16]\n",
     r"s\.yaml: set\.dram\.bandwidth_GB_per_s: is also varied as dram\.bytes_per_cycle \(one rate in two units\); "
     r"drop it from set, or vary dram\.bandwidth_GB_per_s instead of dram\.bytes_per_cycle$"),  # was garbled
    ("vary:\n  dram.bandwidth_GB_per_s: [4, 8]\n  dram.bytes_per_cycle: [8, 16]\n",
     r"s\.yaml: vary\.dram\.bandwidth_GB_per_s: and vary\.dram\.bytes_per_cycle are one rate in two units"),
    ("set: [dram.latency_cycles=50]\nvary:\n  dram.latency_ns: [100, 200]\n",
     r"set\.dram\.latency_cycles: is also varied as dram\.latency_ns"),
])
def test_a_dram_rate_in_two_units_is_refused_before_any_point(tmp_path, workload_path, body, pattern):
    """Each point would give both spellings and be refused by the architecture; the study says so at once (the
    checks of the varied values apply each axis on its own and let it pass)."""
    with pytest.raises(StudyError, match=pattern):
        load_study(engine_study(tmp_path, workload_path, body))


def test_a_null_set_of_one_spelling_lets_the_other_vary(tmp_path, workload_path):
    study = load_study(engine_study(tmp_path, workload_path, "set: [dram.latency_cycles=null]\nvary:\n"
                                                        "  dram.latency_ns: [100, 200]\n"))
    assert [p["dram.latency_ns"] for p in study.points()] == [100, 200]


# ------------------------------------------------------------------------------------------
# the study's name heads its report and the terminal line; its description is text
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("line", "pattern"), [
    ('name: "a\\nb"\n', r"s\.yaml: name: must be one line of text, got 'a\\nb'; remove the line breaks"),
    ("description: [a, b]\n", r"s\.yaml: description: must be text, got a list \['a', 'b'\]; write it as one string"),
    ("description: {a: b}\n", r"s\.yaml: description: must be text, got a dict"),
])
def test_a_name_of_two_lines_or_a_description_that_is_not_text_is_refused(tmp_path, workload_path, line, pattern):
    """A name with a line break split the report's heading in two; a list description was shown as ['a', 'b']."""
    path = engine_study(tmp_path, workload_path, "vary: {accelerators: [1, 2]}\n")
    path.write_text(line + path.read_text().replace("name: t\n", "" if line.startswith("name") else "name: t\n"))
    with pytest.raises(StudyError, match=pattern):
        load_study(path)


def test_a_functional_studys_refused_value_does_not_speak_of_set(tmp_path, workload_path):
    """A functional study's varied or set exit-unit value was refused with '(--set: exit_unit.kind: ...)', an option
    the user never gave."""
    path = tmp_path / "f.yaml"
    path.write_text(f"name: f\nmode: functional\nworkload: {workload_path}\nimages: 4\n"
                    "vary: {exit_unit.kind: [at, fixed]}\nmetrics: [avg_timestep]\n")
    with pytest.raises(StudyError, match=r"vary\.exit_unit\.kind: value 'fixed' is refused \(exit_unit\.kind: must be "
                                         r"one of at, dt, none") as refused:
        load_study(path)
    assert "--set" not in str(refused.value)
    path.write_text(f"name: f\nmode: functional\nworkload: {workload_path}\nimages: 4\nset: [exit_unit.cl_init=7]\n"
                    "vary: {exit_unit.tau_cl: [0.5, 0.9]}\nmetrics: [avg_timestep]\n")
    pattern = r"set\.exit_unit\.cl_init: value '7' is refused \(exit_unit\.cl_init: must be"
    with pytest.raises(StudyError, match=pattern) as refused:
        load_study(path)
    assert "--set" not in str(refused.value)


def test_a_sweep_whose_every_point_is_skipped_says_why_and_names_the_study(tmp_path, workload_path, capsys):
    """It said 'each design refused the workload (the reasons are in report.md)' and named the output directory: the
    designs had refused their combination of values, and the user had to open the report to learn which."""
    path = engine_study(tmp_path, workload_path, "vary: {pe.weight_memory_bytes: [1, 2]}\n")
    with pytest.raises(SystemExit) as stop:
        main(["sweep", str(path), "-o", str(tmp_path / "out"), "-j", "1", "-q"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"satasim: error: {path}: vary: none of the 2 points could run: every point was skipped (1 "
                          "of them: atsn16x16.yaml: pe.weight_memory_bytes: 1 B cannot hold "), err
    assert f"; 1 other reason in {tmp_path / 'out'}/report.md); change the varied or set values" in err, err


def test_a_shipped_design_given_by_name_is_a_baseline_by_its_file_name():
    """`compare atsn16x16 ...` records arch_path atsn16x16.yaml in results.json, but `--baseline atsn16x16.yaml`
    was refused as none of the architectures."""
    from satasim_atsn.study.compare import _baseline_index

    assert _baseline_index(["conv", "mine"], ["conventional16x16", "archs/mine.yaml"], "conventional16x16.yaml") == 0
    with pytest.raises(StudyError, match="'atsn16x16.yaml' is none of the architectures"):
        _baseline_index(["conv", "mine"], ["conventional16x16", "archs/mine.yaml"], "atsn16x16.yaml")


def test_a_quoted_text_value_reaches_the_design_as_written(tmp_path, workload_path):
    """A point's value went to the design as `field=value` text read back as YAML, so the study's quotes were lost:
    name "yes" became true and was refused with 'write it in quotes' (it was quoted), "007" an octal number, "a #b"
    the name 'a', and "timestep_major " (a stray space) a second, identical point."""
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.hw.arch_overrides import apply_overrides
    from satasim_atsn.study.spec import point_overrides

    body = 'vary:\n  zip: [{name: ["yes", "007", "a #b", "x: y", "[a]", c], accelerators: [1, 2, 3, 4, 5, 6]}]\n'
    study = load_study(engine_study(tmp_path, workload_path, body))
    base = load_arch(ARCH).to_dict()
    names = [apply_overrides(base, point_overrides(study, p))["name"] for p in study.points()]
    assert names == ["yes", "007", "a #b", "x: y", "[a]", "c"]
    switch = load_study(engine_study(tmp_path, workload_path, 'vary:\n  zip: [{batch_refill: ["true", "false"], '
                                'accelerators: ["4", "2"]}]\n', "n.yaml"))
    read = [apply_overrides(base, point_overrides(switch, p)) for p in switch.points()]  # as --set reads them
    assert [(a["batch_refill"], a["accelerators"]) for a in read] == [(True, 4), (False, 2)]
    path = engine_study(tmp_path, workload_path, 'vary:\n  dataflow: [timestep_major, "timestep_major "]\n')
    with pytest.raises(StudyError, match=r"vary\.dataflow: value 'timestep_major ' is refused .*did you mean"):
        load_study(path)


def test_heat_map_axes_run_in_ascending_order(tmp_path, workload_path, monkeypatch):
    """A study listing tau_CL as [0.9, 0.99, 1.0, 0.5] got a heat map with 0.5 right of 1.0; text axes keep their
    order."""
    from satasim_atsn.report import plots
    from satasim_atsn.study.runner import run_study
    from satasim_atsn.study.sweep_report import sweep_report

    drawn = []
    monkeypatch.setattr(plots, "heatmap", lambda path, grid, xs, ys, *a: drawn.append((xs, ys, grid.tolist()))
                        or Path(path).write_bytes(b"png"))
    study = load_study(engine_study(tmp_path, workload_path, f"arch: {CONVENTIONAL}\nvary:\n  accelerators: [2, 1]\n"
                               "  dataflow: [timestep_major, layer_major]\n"))
    rows, _ = run_study(study, tmp_path / "out", jobs=1, quiet=True)
    sweep_report(study, rows, tmp_path / "out", "satasim sweep s.yaml")
    xs, ys, grid = drawn[0]
    assert (xs, ys) == (["timestep_major", "layer_major"], [1, 2])
    fps = {(int(r["accelerators"]), r["dataflow"]): float(r["fps"]) for r in rows}
    assert grid == [[fps[(a, d)] for d in xs] for a in ys]


@pytest.mark.parametrize("base", ["", f"arch: {ARCH}\n"])
def test_architectures_in_a_zip_are_refused_as_such(tmp_path, base):
    """`zip: [{arch: [...], accelerators: [...]}]` was refused as 'arch: missing' or as 'no such architecture field'."""
    path = tmp_path / "z.yaml"
    path.write_text(f"name: z\nmode: engine\n{base}workload: w.npz\nvary:\n  zip:\n"
                    "    - {arch: [atsn16x16, conventional16x16], accelerators: [1, 2]}\nmetrics: [fps]\n")
    pattern = (r"z\.yaml: vary\.zip\[0\]\.arch: architectures are not zipped with other fields: vary\.arch is an axis "
               r"of its own; move arch: \[\.\.\.\] out of the zip")
    with pytest.raises(StudyError, match=pattern):
        load_study(path)


def test_an_invalid_varied_architecture_is_not_called_the_base(tmp_path, workload_path):
    """A bad file among vary.arch's designs was refused as 'the study's base architecture is invalid'."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(ARCH.read_text().replace("clock_hz: 500e6", "clock_hz: -1"))
    assert bad.read_text() != ARCH.read_text()
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nworkload: {workload_path}\nimages: 2\nvary: {{arch: [{ARCH}, {bad}]}}\n"
                    "metrics: [fps]\n")
    with pytest.raises(StudyError, match=r"bad\.yaml: one of the study's vary\.arch architectures is invalid: .*"
                                         r"clock_hz"):
        load_study(path)
    path.write_text(f"name: t\narch: {bad}\nworkload: {workload_path}\nimages: 2\nvary: {{accelerators: [1, 2]}}\n"
                    "metrics: [fps]\n")
    with pytest.raises(StudyError, match=r"bad\.yaml: the study's base architecture is invalid"):
        load_study(path)


@pytest.mark.parametrize(("vary", "key"), [("name: [a, b]", "vary.name"),
                                          ("zip: [{name: [a, b]}]", r"vary.zip\[0\].name")])
def test_varying_only_the_design_name_is_refused(tmp_path, workload_path, vary, key):
    """A name labels results and changes no hardware: the points ran one design again under other labels."""
    path = engine_study(tmp_path, workload_path, f"vary:\n  {vary}\n")
    with pytest.raises(StudyError, match=rf"s\.yaml: {key}: a design's name changes no hardware: every point would run "
                                         r"the same design; vary a hardware field \(zip name with it"):
        load_study(path)


@pytest.mark.parametrize(("images", "start"), [("2.0", "1.0"), ("'2'", "'1e0'")])
def test_images_and_start_take_whole_numbers_as_architecture_files_do(tmp_path, workload_path, images, start):
    # architecture sizes take 16.0 and '1e3' (hw.arch_fields._number); a study's images: 2.0 was refused
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nmode: engine\narch: atsn16x16\nworkload: {workload_path}\nimages: {images}\n"
                    f"start: {start}\nvary: {{accelerators: [1, 2]}}\nmetrics: [fps]\n")
    study = load_study(path)
    assert (study.images, study.start) == (2, 1)
    assert type(study.images) is int and type(study.start) is int
    path.write_text(path.read_text().replace(f"images: {images}", "images: 2.5"))
    with pytest.raises(StudyError, match=r"images: must be an integer >= 1, got 2.5"):
        load_study(path)


def test_two_architecture_files_of_the_same_design_are_refused(tmp_path, workload_path):
    """A byte copy of a design in vary.arch ran every point twice under one key; a copy whose relative technology
    table differs is another design and runs."""
    copy = tmp_path / "copy.yaml"
    copy.write_bytes(ARCH.read_bytes())
    with pytest.raises(StudyError, match=r"vary\.arch: 'copy\.yaml' and 'atsn16x16' are files of the same contents "
                                         r"and technology table"):
        load_study(engine_study(tmp_path, workload_path, f"vary:\n  arch: [atsn16x16, {copy.name}]\n"))
    table = (ROOT / "satasim_atsn" / "data" / "tech" / "28nm.yaml").read_text()
    for folder, leakage in (("a", "6.26"), ("b", "7.26")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "t.yaml").write_text(table.replace("value: 6.26", f"value: {leakage}", 1))
        (tmp_path / folder / "x.yaml").write_text(ARCH.read_text().replace("technology: 28nm", "technology: t.yaml", 1))
    study = load_study(engine_study(tmp_path, workload_path, "vary:\n  arch: [a/x.yaml, b/x.yaml]\n"))
    assert len(study.points()) == 2
    for folder in ("c", "d"):  # two copies naming a table that is not there: that is what is said
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.yaml").write_text((tmp_path / "a" / "x.yaml").read_text())
    with pytest.raises(StudyError, match=r"technology table not found"):
        load_study(engine_study(tmp_path, workload_path, "vary:\n  arch: [c/x.yaml, d/x.yaml]\n"))


# ------------------------------------------------------------------------------------------
# a DRAM part and its other name, and a zipped name over repeated hardware: one point twice
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("vary", ["dram.energy_table_entry: [dram_ddr4, dram_commodity]",
                                  "dram.energy_table_entry: [dram_commodity, dram_lpddr4, dram_ddr4]",
                                  "zip:\n    dram.energy_table_entry: [dram_ddr4, dram_commodity]\n"
                                  "    pe.adders: [2, 2]"])
def test_a_dram_part_and_its_alias_are_refused(tmp_path, workload_path, vary):
    path = engine_study(tmp_path, workload_path, f"vary:\n  {vary}\n")
    with pytest.raises(StudyError, match=r"s\.yaml: vary\.(zip|dram\.energy_table_entry): 'dram_commodity' is "
                       r"another name of 'dram_ddr4'.*; list dram_ddr4 once"):
        load_study(path)


def test_the_alias_beside_other_hardware_or_its_own_entry_is_kept(tmp_path, workload_path):
    """Zipped with another value of a hardware field, or given its own entry, dram_commodity is another point."""
    zipped = engine_study(tmp_path, workload_path, "vary:\n  zip:\n    dram.energy_table_entry: [dram_ddr4, "
                          "dram_commodity]\n    pe.adders: [1, 2]\n", "zip.yaml")
    assert len(load_study(zipped).points()) == 2
    table = yaml.safe_load((ROOT / "satasim_atsn" / "data" / "tech" / "28nm.yaml").read_text(encoding="utf-8"))
    table["entries"]["dram_commodity_energy_pJ_per_bit"] = {"value": 20.0, "node_nm": 28, "scaling": "none",
                                                            "source": "a test's own part"}
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(table), encoding="utf-8")
    own = engine_study(tmp_path, workload_path, f"set: [technology={tmp_path / 'mine.yaml'}]\n"
                       "vary:\n  dram.energy_table_entry: [dram_ddr4, dram_commodity]\n", "own.yaml")
    assert len(load_study(own).points()) == 2


def test_a_zipped_name_over_the_same_hardware_is_refused(tmp_path, workload_path):
    path = engine_study(tmp_path, workload_path, "vary:\n  zip:\n    name: [small, big]\n    pe.adders: [2, 2.0]\n")
    with pytest.raises(StudyError, match=r"vary\.zip\[0\]: names 'small' and 'big' label the same hardware"):
        load_study(path)
    again = engine_study(tmp_path, workload_path, "vary:\n  zip:\n    name: [a, a]\n    pe.adders: [1, 2]\n", "n.yaml")
    with pytest.raises(StudyError, match=r"vary\.zip\[0\]: name 'a' labels two different points; give each"):
        load_study(again)
    fine = engine_study(tmp_path, workload_path, "vary:\n  zip:\n    name: [a, b]\n    pe.adders: [1, 2]\n", "f.yaml")
    assert len(load_study(fine).points()) == 2


def test_a_mistyped_shipped_design_name_in_a_study_is_suggested(tmp_path, workload_path):
    """run offered 'did you mean atsn16x16' for atsn16x61; a study's arch: and vary.arch did not."""
    for body in ("arch: atsn16x61\nvary:\n  clock_hz: [5e8]\n", "vary:\n  arch: [atsn16x16, dtsnn16x61]\n"):
        path = engine_study(tmp_path, workload_path, body)
        with pytest.raises(StudyError, match=r"does not exist \(looked at .*\); fix the path \(did you mean the "
                           r"shipped '(atsn|dtsnn)16x16'\?\)"):
            load_study(path)
