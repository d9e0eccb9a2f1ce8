"""Every key of a `satasim run --json` block that docs/results.md describes key by key is named there in backticks:
`workload` was described as "name, kind, dataset, timesteps, classes, file name" while the JSON says `num_classes`
and `source`, and `mapping`'s `num_pes`, `weights_resident` and `membranes_resident` were named by no key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from satasim_atsn.cli import main
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]
BLOCKS = ("workload", "mapping", "metrics", "per_image", "energy_breakdown", "utilisation", "neurobench")


def test_the_run_json_keys_are_named_in_the_results_doc(tmp_path, capsys):
    workload = tmp_path / "w.npz"
    write_workload(workload, random_workload(4, images=2, timesteps=2, num_classes=3, encoding="direct"))
    with pytest.raises(SystemExit) as exc:
        main(["run", "atsn16x16", str(workload), "--images", "2", "--json", str(tmp_path / "r.json"), "--quiet"])
    assert int(exc.value.code or 0) == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "r.json").read_text())
    doc = (ROOT / "docs" / "results.md").read_text()

    def named(key: str) -> bool:  # in backticks, alone or as a part of a dotted path (`pe_array.busy`)
        return re.search(r"`(?:[\w<>]+\.)*" + re.escape(key) + r"(?:\.[\w<>.]+)?`", doc) is not None

    assert all(named(key) for key in result), [key for key in result if not named(key)]
    for block in BLOCKS:
        missing = [key for key in result[block] if not named(key)]
        assert not missing, (block, missing)


def test_a_layers_folds_are_its_mapping_groups_folds(tmp_path, capsys):
    """``layers[].folds`` said 1 for a max-pool and the exit group where ``mapping.groups[].folds`` said 0 (audit,
    session 46): one count, in both places, as docs/results.md describes both."""
    workload = ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"  # three max-pools and an output layer
    with pytest.raises(SystemExit) as exc:
        main(["run", "atsn16x16", str(workload), "--images", "2", "--json", str(tmp_path / "r.json"), "--quiet"])
    assert int(exc.value.code or 0) == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "r.json").read_text())
    groups = {g["name"]: g["folds"] for g in result["mapping"]["groups"]}
    layers = {row["name"]: row["folds"] for row in result["layers"]}
    assert layers == groups
    kinds = {row["kind"] for row in result["layers"]}
    assert {"pe", "pool", "exit"} <= kinds and all(row["folds"] == 0 for row in result["layers"] if row["kind"] != "pe")
