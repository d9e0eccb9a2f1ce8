"""`reproduce table2` on a trained set whose networks do no synaptic operation on their test images (black images,
no biases: nothing fires) ended in a ZeroDivisionError traceback (the whole-run complexity divides by the DTSNN
network's operations); table1 already gave its complexity as n/a. The ratio is now n/a / null."""

from __future__ import annotations

import json

import numpy as np
import pytest

from satasim_atsn.cli import main
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload


def _silent_set(wdir) -> None:
    """The three networks of a trained set, with all-zero images and biases: no layer ever fires."""
    for i, (algo, loss, out) in enumerate([("snn", "ce", "accumulate"), ("dtsnn", "dtsnn", "accumulate"),
                                           ("atsn", "imp", "membrane")]):
        w = random_workload(20 + i, images=6, timesteps=3, num_classes=4, output_mode=out, encoding="direct")
        w.meta["provenance"]["config"] = {"loss": loss, "output": out}
        for name in list(w.arrays):
            if name == "x" or name.startswith("b/"):
                w.arrays[name] = np.zeros_like(w.arrays[name])
        write_workload(wdir / f"silent_{algo}.npz", w)


def test_table2_of_networks_that_never_fire_gives_no_ratio_instead_of_a_traceback(tmp_path, capsys):
    _silent_set(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "table2", "-o", str(tmp_path / "t2"), "--workloads", str(tmp_path),
              "--trained-set", "silent", "--quiet"])
    out, err = capsys.readouterr()
    assert int(exc.value.code or 0) == 0, err
    results = json.loads((tmp_path / "t2" / "results.json").read_text())
    assert results["dtsnn"]["ops_per_timestep"] == [0.0, 0.0, 0.0]
    assert results["whole_run_complexity"] is None
    matched = results["atsn_at_dtsnn_accuracy"]
    assert matched is None or matched["whole_run_complexity"] is None
    row = next(line for line in (tmp_path / "t2" / "report.md").read_text().splitlines()
               if line.startswith("| ours (silent_*.npz) |"))
    assert row.split(" | ")[6] == "n/a"  # the whole-run column


def test_the_latency_claim_of_networks_that_never_fire_says_no_complexity_not_a_100_percent_cut(tmp_path):
    """table1 gives such a set's complexity as null; `reproduce claims` read null as 0 and printed 'complexity
    -100.0%' (a cut of all the work) and judged the claim on it."""
    from satasim_atsn.study.functional import TrainedSet
    from satasim_atsn.study.reproduce import table1
    from satasim_atsn.study.table3 import _latency_claim

    _silent_set(tmp_path)
    _, t1, _ = table1(tmp_path / "t1", None, tmp_path, "satasim reproduce table1", TrainedSet("silent"))
    assert t1["rows"]["SNN"]["complexity"] is None and t1["rows"]["ATSN"]["complexity"] is None
    _, text, verdict = _latency_claim(t1, "trained silent workloads")
    assert "complexity n/a" in text and "-100.0%" not in text
    assert verdict.startswith("cannot check")
