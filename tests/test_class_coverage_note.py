"""The note of a run whose images hold a few of the workload's classes (a workload that stores its inputs class by
class: the CIFAR-10 image-folder workloads trained before session 45 did; its first 20 images are airplanes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.cli import main
from satasim_atsn.workload.class_coverage import class_coverage_note
from satasim_atsn.workload.format import read_workload, write_workload

ROOT = Path(__file__).resolve().parents[1]
FMNIST = ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"


def _sorted_copy(tmp_path: Path) -> Path:
    workload = read_workload(FMNIST)
    order = np.argsort(workload.labels(), kind="stable")
    arrays = dict(workload.arrays, x=workload.arrays["x"][order], y=workload.arrays["y"][order])
    path = tmp_path / "sorted.npz"
    write_workload(path, type(workload)(dict(workload.meta), arrays))
    return path


def test_a_run_of_one_class_says_so_in_its_notes_and_json(tmp_path, capsys):
    path = _sorted_copy(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["run", "atsn16x16", str(path), "--images", "8", "--json", str(tmp_path / "r.json")])
    assert info.value.code in (0, None)
    expected = ("images 0..7 hold 1 of the 10 classes of the workload's 1000 images, so accuracy, exit steps and "
                "energy per image are those of this class")
    assert expected in capsys.readouterr().err
    assert any(note.startswith(expected) for note in json.loads((tmp_path / "r.json").read_text())["notes"])


def test_mixed_classes_and_workloads_without_labels_give_no_note():
    workload = read_workload(FMNIST)  # the first 1,000 Fashion-MNIST test images: classes mixed
    assert class_coverage_note(workload, 0, 8) is None and class_coverage_note(workload, 500, 300) is None
    assert class_coverage_note(workload, 0, 1) is None  # one image holds one class, as it must
    unlabelled = type(workload)(dict(workload.meta), {k: v for k, v in workload.arrays.items() if k != "y"})
    assert class_coverage_note(unlabelled, 0, 8) is None


def test_the_note_counts_the_classes_the_images_could_hold(tmp_path):
    workload = read_workload(_sorted_copy(tmp_path))
    start = int(np.flatnonzero(workload.labels() == 3)[-1]) - 1  # two of class 3, then class 4
    assert class_coverage_note(workload, start, 4) is None  # 2 of the 4 classes 4 images could hold: half
    assert "hold 2 of the 10 classes" in class_coverage_note(workload, start, 6)  # 2 of 6: fewer than half


def test_a_twin_or_rate_table_fitted_on_one_class_says_so(tmp_path, capsys):
    """`workload stats --images 8` and `workload rates --images 8` of a class-sorted workload fitted one class with no
    word (run said so); the twin's notes (printed, --json) and the table's sources.differences now do."""
    import yaml

    path = _sorted_copy(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["workload", "stats", str(path), "--images", "8", "-o", str(tmp_path / "t.npz"),
              "--json", str(tmp_path / "t.json")])
    assert info.value.code in (0, None)
    expected = ("images 0..7 hold 1 of the 10 classes of the workload's 1000 images, so the twin's rates and exit "
                "histograms are those of this class, not of its whole sample (fit on all 1000 images")
    assert expected in capsys.readouterr().out
    assert any(note.startswith(expected) for note in json.loads((tmp_path / "t.json").read_text())["notes"])
    net = tmp_path / "vgg_small.yaml"
    net.write_text("name: vgg_small\ninput_shape: [1, 28, 28]\nnum_classes: 10\nlayers:\n"
                   + "".join(f"  - {{name: conv{i}, type: conv, out_channels: {c}, kernel: 3, padding: 1}}\n"
                             f"  - {{name: pool{i}, type: maxpool, kernel: 2}}\n"
                             for i, c in ((1, 16), (2, 32), (3, 64)))
                   + "  - {name: flatten, type: flatten}\n  - {name: output, type: output}\n")
    with pytest.raises(SystemExit) as info:
        main(["workload", "rates", str(path), "--network", str(net), "--dataset", "fmnist", "--images", "8",
              "-o", str(tmp_path / "r.yaml")])
    assert info.value.code in (0, None), capsys.readouterr().err
    table = yaml.safe_load((tmp_path / "r.yaml").read_text())
    assert "so the table's rates and exit histograms are those of this class" in table["sources"]["differences"]
    with pytest.raises(SystemExit):  # the whole sample: no note
        main(["workload", "stats", str(path), "-o", str(tmp_path / "all.npz"), "--json", str(tmp_path / "a.json")])
    assert json.loads((tmp_path / "a.json").read_text())["notes"] == []
