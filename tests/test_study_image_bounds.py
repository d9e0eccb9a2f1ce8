"""study/spec.py: a study's `images` and `start` at the workload's bounds (docs/studies.md): the last image is
taken, one past it is refused in one line naming the study file and the field (and `satasim sweep` exits with 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_helpers import one_line_error
from study_helpers import ARCH

from satasim_atsn.errors import StudyError
from satasim_atsn.study.spec import load_study
from satasim_atsn.workload.format import read_workload


def _study(tmp_path: Path, workload_path: Path, lines: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(f"name: t\nmode: engine\narch: {ARCH}\nworkload: {workload_path}\n{lines}"
                    "vary: {accelerators: [1, 2]}\nmetrics: [fps]\n", encoding="utf-8")
    return path


def test_the_last_images_of_the_workload_are_taken(tmp_path, workload_path):
    n = read_workload(workload_path).num_images
    study = load_study(_study(tmp_path, workload_path, f"start: {n - 1}\nimages: 1\n"))
    assert (study.start, study.images) == (n - 1, 1)
    study = load_study(_study(tmp_path, workload_path, f"start: 0\nimages: {n}\n"))
    assert (study.start, study.images) == (0, n)
    study = load_study(_study(tmp_path, workload_path, ""))  # neither: from image 0, all it holds (fewer than 100)
    assert (study.start, study.images) == (0, n)


@pytest.mark.parametrize("lines,field,problem", [
    ("start: {n}\nimages: 1\n", "start", "{n} is past the workload's last image ({n} images)"),
    ("start: 1\nimages: {n}\n", "images", "start 1 + images {n} exceeds the workload's {n} images"),
    ("images: 0\n", "images", "must be an integer >= 1, got 0"),
    ("start: -1\n", "start", "must be an integer >= 0, got -1"),
])
def test_images_or_start_past_the_workload_are_refused(tmp_path, workload_path, lines, field, problem):
    n = read_workload(workload_path).num_images
    path = _study(tmp_path, workload_path, lines.format(n=n))
    with pytest.raises(StudyError) as info:
        load_study(path)
    assert str(info.value).startswith(f"{path}: {field}: {problem.format(n=n)};"), str(info.value)


def test_a_start_past_the_workload_is_one_line_with_exit_code_2(tmp_path, workload_path, capsys):
    n = read_workload(workload_path).num_images
    path = _study(tmp_path, workload_path, f"start: {n}\nimages: 1\n")
    line = one_line_error(["sweep", str(path), "-o", str(tmp_path / "out")], capsys)
    assert f"{path}: start: {n} is past the workload's last image" in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("vary,problem", [
    ("{accelerators: {start: 1, stop: 4, step: 0}}", "vary.accelerators: empty range (start 1, stop 4, step 0)"),
    ("{accelerators: {start: 1, stop: 4, factor: 1}}", "vary.accelerators: empty range (start 1, stop 4, factor 1)"),
    ("{accelerators: {start: 0, stop: 4, factor: 2}}", "vary.accelerators: empty range (start 0, stop 4, factor 2)"),
    ("{accelerators: {start: 1, stop: 101, step: 1}, pe.adders: {start: 1, stop: 100, step: 1}}",
     "vary: 10100 points; split the study; 10000 points at most"),
])
def test_a_range_that_never_ends_or_too_many_points_is_refused(tmp_path, workload_path, vary, problem):
    path = tmp_path / "s.yaml"
    path.write_text(f"name: t\nmode: engine\narch: {ARCH}\nworkload: {workload_path}\nimages: 1\nvary: {vary}\n"
                    "metrics: [fps]\n", encoding="utf-8")
    with pytest.raises(StudyError) as info:
        load_study(path)
    assert str(info.value).startswith(f"{path}: {problem}"), str(info.value)


def test_a_study_without_images_runs_100_of_a_larger_workload(tmp_path):
    """docs/studies.md: 'without it 100, or all the workload holds' (the default passed at 50, mutant S08 of
    session 37: the fixture workload holds fewer than 100)."""
    big = Path(__file__).resolve().parent.parent / "workloads" / "vgg16_cifar10.npz"  # statistical: 10,000 images
    assert read_workload(big).num_images > 100
    study = load_study(_study(tmp_path, big, ""))
    assert (study.start, study.images) == (0, 100)
    study = load_study(_study(tmp_path, big, f"start: {read_workload(big).num_images - 40}\n"))
    assert study.images == 40  # fewer when the workload holds fewer from start


@pytest.mark.parametrize("name", ["''", "[a, b]", "12"])
def test_a_study_name_that_is_no_text_is_refused(tmp_path, workload_path, name):
    """A name heads the report and the plots: empty or not text is refused (mutant S13 of session 37 passed)."""
    path = _study(tmp_path, workload_path, "").with_name("n.yaml")
    path.write_text(_study(tmp_path, workload_path, "").read_text(encoding="utf-8").replace("name: t", f"name: {name}"),
                    encoding="utf-8")
    with pytest.raises(StudyError, match=r"n\.yaml: name: must be a non-empty string; name the study"):
        load_study(path)


@pytest.mark.parametrize("spec,count,refused", [
    ("{start: 1, stop: 100000, step: 1}", 100000, False), ("{start: 1, stop: 100001, step: 1}", 100001, True)])
def test_a_range_of_up_to_100000_values_is_expanded_and_one_more_is_refused(tmp_path, workload_path, spec, count,
                                                                             refused):
    """The cap on one axis's values (mutant S12 of session 37 raised it 100-fold unnoticed)."""
    from satasim_atsn.study.spec_fields import expand_range

    parsed = yaml.safe_load(spec)
    if refused:
        with pytest.raises(StudyError, match=rf"s\.yaml: vary\.x: {count} values; use a coarser step"):
            expand_range(parsed, "s.yaml", "vary.x")
    else:
        assert len(expand_range(parsed, "s.yaml", "vary.x")) == count
