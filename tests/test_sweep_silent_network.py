"""A functional sweep of a network that does no synaptic operation on its images (black images, no biases) wrote
`complexity` as 'nan' into points.csv, a value the journal treats as damaged: every rerun computed every point
again (and the CSV's missing value was 'nan' where an engine study leaves the cell empty)."""

from __future__ import annotations

import csv

import numpy as np

from satasim_atsn.study.runner import CSV_NAME, run_study
from satasim_atsn.study.spec import load_study
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload


def test_a_functional_sweep_of_a_silent_network_is_reused_and_leaves_complexity_empty(tmp_path):
    w = random_workload(7, images=5, timesteps=3, num_classes=3, encoding="direct")
    for name in list(w.arrays):
        if name == "x" or name.startswith("b/"):
            w.arrays[name] = np.zeros_like(w.arrays[name])
    write_workload(tmp_path / "silent.npz", w)
    study_file = tmp_path / "s.yaml"
    study_file.write_text("name: silent\nmode: functional\nworkload: silent.npz\nimages: 5\n"
                          "vary:\n  exit_unit.cl_init: [0.5, 0.9]\nmetrics: [accuracy, complexity]\n")
    study, out = load_study(study_file), tmp_path / "out"
    _, stats = run_study(study, out, jobs=1, quiet=True)
    assert stats["computed"] == 2
    with open(out / CSV_NAME, newline="") as handle:
        assert [row["complexity"] for row in csv.DictReader(handle)] == ["", ""]
    _, stats = run_study(study, out, jobs=1, quiet=True)
    assert stats["computed"] == 0 and stats["reused"] == 2
