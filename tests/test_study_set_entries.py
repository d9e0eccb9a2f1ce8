"""A study's `set:` entries against its designs and its other axes (docs/studies.md): with `vary.arch` an entry that
only some designs take skips the others' points instead of refusing the study; an entry the base refuses that a
varied field repairs is accepted whatever other axes the study has; an entry nothing repairs is refused."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from satasim_atsn.cli import main
from satasim_atsn.errors import StudyError
from satasim_atsn.study.spec import load_study

ROOT = Path(__file__).resolve().parents[1]
ATSN_WL = ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"


def _study(tmp_path: Path, body: str, workload: Path = ATSN_WL) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nmode: engine\nworkload: {workload}\nimages: 2\n{body}metrics: [fps]\n")
    return path


def _rows(tmp_path: Path, study: Path) -> list[dict]:
    with pytest.raises(SystemExit) as info:
        main(["sweep", str(study), "-o", str(tmp_path / "out"), "-j", "1", "-q"])
    assert info.value.code in (0, None)
    with (tmp_path / "out" / "points.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_a_set_entry_some_designs_take_skips_the_others_points(tmp_path):
    study = _study(tmp_path, "set: [exit_unit.theta=0.2]\nvary:\n  arch: [dtsnn16x16, atsn16x16]\n  clock_hz: [5e8]\n",
                   ROOT / "workloads" / "vgg_small_fmnist_dtsnn.npz")
    rows = _rows(tmp_path, study)
    assert [(r["arch"], r["status"]) for r in rows] == [("dtsnn16x16", "ok"), ("atsn16x16", "skipped")]
    assert rows[1]["error"].startswith("atsn16x16: exit_unit.theta: only meaningful for exit unit kind 'dt'")
    assert ("this design takes no exit_unit.theta, which the study's set gives every design, so its points are "
            "skipped") in rows[1]["error"]


def test_a_set_entry_no_design_takes_is_refused_naming_it(tmp_path):
    with pytest.raises(StudyError, match=r"s\.yaml: set\.exit_unit\.theta: value '0\.2' is refused"):
        load_study(_study(tmp_path, "set: [exit_unit.theta=0.2]\nvary:\n  arch: [atsn16x16, conventional16x16]\n"
                                    "  clock_hz: [5e8]\n"))


@pytest.mark.parametrize("other_axis", ["", "  clock_hz: [4e8, 5e8]\n", "  pe.adders: [1, 2]\n"])
def test_a_set_entry_a_varied_field_repairs_is_accepted_beside_any_other_axis(tmp_path, other_axis):
    """An exit table that the base's 3 KB cannot hold, with a larger data memory on one axis: accepted alone, and
    refused (set.exit_unit.exp_lut_entries, 'enlarge exit_unit.data_memory_bytes') once any other axis was added."""
    study = _study(tmp_path, "arch: atsn16x16\nset: [exit_unit.exp_lut_entries=2000]\nvary:\n"
                             f"  exit_unit.data_memory_bytes: [8192, 16384]\n{other_axis}")
    assert len(load_study(study).points()) == (2 if not other_axis else 4)
    rows = _rows(tmp_path, study)
    assert {r["status"] for r in rows} == {"ok"}


def test_a_set_entry_no_point_repairs_is_refused(tmp_path):
    with pytest.raises(StudyError, match=r"s\.yaml: set\.exit_unit\.exp_lut_entries: value '2000' is refused .*"
                                         r"do not fit the 3072 B data memory"):
        load_study(_study(tmp_path, "arch: atsn16x16\nset: [exit_unit.exp_lut_entries=2000]\nvary:\n"
                                    "  clock_hz: [4e8, 5e8]\n  pe.adders: [1, 2]\n"))


def test_a_value_that_cannot_hold_the_set_entry_on_any_point_is_refused(tmp_path):
    """4096 B holds no 2000-entry table whatever the other axes are: that value is refused, not skipped."""
    with pytest.raises(StudyError, match=r"s\.yaml: vary\.exit_unit\.data_memory_bytes: value 4096 is refused .*do not "
                                         r"fit the 4096 B data memory"):
        load_study(_study(tmp_path, "arch: atsn16x16\nset: [exit_unit.exp_lut_entries=2000]\nvary:\n"
                                    "  exit_unit.data_memory_bytes: [4096, 8192]\n  clock_hz: [5e8]\n"))


@pytest.mark.parametrize("mode", ["engine", "functional"])
def test_accuracy_of_a_workload_without_labels_is_refused(tmp_path, mode):
    """`y` is optional: a trained workload without it ran every point to an empty accuracy column (a statistical one
    was refused for that very reason)."""
    from satasim_atsn.workload.format import read_workload, write_workload

    workload = read_workload(ATSN_WL)
    unlabelled = type(workload)(dict(workload.meta), {k: v for k, v in workload.arrays.items() if k != "y"})
    write_workload(tmp_path / "nolabels.npz", unlabelled)
    arch = "arch: atsn16x16\n" if mode == "engine" else ""
    vary = "vary:\n  clock_hz: [5e8]\n" if mode == "engine" else "vary:\n  exit_unit.cl_init: [0.9, 0.99]\n"
    study = _study(tmp_path, f"mode: {mode}\n{arch}{vary}", tmp_path / "nolabels.npz")
    study.write_text(study.read_text().replace("mode: engine\n", "", 1).replace("metrics: [fps]",
                                                                                 "metrics: [accuracy]"))
    with pytest.raises(StudyError, match=r"s\.yaml: metrics: accuracy: nolabels\.npz has no labels \(no y array\)"):
        load_study(study)


@pytest.mark.parametrize("archs", ["[atsn16x16]", "[atsn16x16, conventional16x16]"])
def test_with_vary_arch_a_set_entry_a_varied_field_repairs_is_accepted(tmp_path, archs):
    """The same repair as with one base architecture: it was refused as soon as the designs were a vary.arch list."""
    study = _study(tmp_path, f"set: [exit_unit.exp_lut_entries=2000]\nvary:\n  arch: {archs}\n"
                             "  exit_unit.data_memory_bytes: [8192, 16384]\n")
    assert len(load_study(study).points()) == 2 * archs.count(",") + 2
