"""compare and reproduce: reports written, self-contained, deterministic; Table 3 with tiny image counts."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from satasim_atsn.errors import StudyError
from satasim_atsn.report.document import fmt
from satasim_atsn.study.compare import run_compare
from satasim_atsn.study.driver import reproduce
from satasim_atsn.workload.format import write_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]
ARCHS = [str(ROOT / "archs" / n) for n in ("conventional16x16.yaml", "atsn16x16.yaml")]
VGG = ROOT / "workloads" / "vgg16_cifar10.npz"
needs_engine = pytest.mark.skipif(not (ROOT / "satasim_atsn" / "hw" / "engine.py").is_file() or not VGG.is_file(),
                                  reason="engine or statistical workloads not present")


def _self_contained(html: str) -> bool:
    sources = re.findall(r'src="([^"]*)"', html)
    return bool(sources) and all(s.startswith("data:image/png;base64,") for s in sources) and "http" not in html


@needs_engine
def test_compare_trained_workload_deterministic(tmp_path):
    wl = tmp_path / "w.npz"
    write_workload(wl, random_workload(5, images=4, timesteps=3, num_classes=4, encoding="direct"))
    outs = []
    for name in ("a", "b"):
        summary = run_compare(ARCHS, str(wl), tmp_path / name, baseline="conventional16x16", images=4, jobs=1,
                              command="satasim compare ...", quiet=True)
        outs.append(tmp_path / name)
    assert "atsn16x16 / conventional16x16" in summary
    a, b = outs
    assert (a / "results.json").read_bytes() == (b / "results.json").read_bytes()
    assert (a / "report.md").read_bytes() == (b / "report.md").read_bytes()
    md = (a / "report.md").read_text()
    assert md.startswith("# Comparison") and "Statistical" not in md.splitlines()[0]
    for png in ("metrics.png", "energy_by_group.png", "energy_by_component.png", "energy_by_layer.png",
                "exit_histogram.png"):
        assert (a / png).is_file()
    assert (a / "energy_by_group.png").read_bytes() == (b / "energy_by_group.png").read_bytes()
    assert "## Energy at a glance" in md and "| DRAM channel busy |" in md and "| compute dynamic |" in md
    assert "pJ per synaptic op" in summary and "PE busy (fraction)" in summary
    assert _self_contained((a / "report.html").read_text())
    data = json.loads((a / "results.json").read_text())
    assert [s["kind"] for s in data["architectures"]] == ["conventional", "atsn"]
    with pytest.raises(StudyError, match="--baseline"):
        run_compare(ARCHS, str(wl), tmp_path / "c", baseline="nope", images=2, jobs=1, quiet=True)


@needs_engine
def test_compare_statistical_first_line(tmp_path):
    run_compare(ARCHS, str(VGG), tmp_path, images=2, jobs=2, quiet=True)
    first = (tmp_path / "report.md").read_text().splitlines()[0]
    assert first.startswith("**Statistical workload")
    assert "Paper's direction" in (tmp_path / "report.md").read_text()


@needs_engine
def test_reproduce_table3_tiny(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    text = reproduce("table3", tmp_path, images=2, command="satasim reproduce table3 -o out --images 2", quiet=True)
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("**Statistical workload")
    assert "10000 test images" in md or "10,000" in md
    data = json.loads((tmp_path / "results.json").read_text())
    assert len(data["rows"]) == 4 and data["images"] == 2
    # the assumed-statistics workloads (workloads/assumed/) that differ from the shipped ones appear beside them
    wdir = ROOT / "workloads"
    differ = [r["workload"] for r in data["rows"]
              if (wdir / r["workload"]).read_bytes() != (wdir / "assumed" / r["workload"]).read_bytes()]
    assert [r["workload"] for r in data["assumed_rows"]] == [f"assumed/{w}" for w in differ]
    assert all(r["statistics"] == "assumed" for r in data["assumed_rows"])
    for row in data["rows"] + data["assumed_rows"]:
        assert fmt(row["fps"]) in md and row["statistics"] in md
    for row in data["rows"]:
        assert row["energy_dev"] == pytest.approx(row["energy_J"] / row["paper_energy_J"] - 1)
        assert row["gpu_ratio"] == pytest.approx(row["energy_J"] / row["gpu_energy_J"])
    assert "VGG16 CIFAR10" in text
    assert _self_contained((tmp_path / "report.html").read_text())


def test_reproduce_functional_tables_on_small_trained_workloads(tmp_path):
    wdir = tmp_path / "workloads"
    wdir.mkdir()
    for i, (algo, loss, out) in enumerate([("snn", "ce", "accumulate"), ("dtsnn", "dtsnn", "accumulate"),
                                           ("atsn", "imp", "membrane")]):
        w = random_workload(10 + i, images=30, timesteps=4, num_classes=4, output_mode=out, encoding="direct")
        w.meta["provenance"]["config"] = {"loss": loss, "output": out}
        write_workload(wdir / f"vgg_small_fmnist_{algo}.npz", w)
    for part in ("table1", "table4", "table5", "figs"):
        reproduce(part, tmp_path / part, workload_dir=str(wdir), command=f"satasim reproduce {part}", quiet=True)
        md = (tmp_path / part / "report.md").read_text()
        assert "synthetic" in md or "Data:" in md or "Ours" in md
    t1 = json.loads((tmp_path / "table1" / "results.json").read_text())
    assert set(t1["rows"]) == {"SNN", "DTSNN", "ATSN"} and t1["rows"]["SNN"]["complexity"] == pytest.approx(1.0)
    figs = json.loads((tmp_path / "figs" / "results.json").read_text())
    assert any("fig7" in k for k in figs["claims"])


def test_reproduce_says_when_workloads_are_missing(tmp_path):
    (tmp_path / "empty").mkdir()
    reproduce("table1", tmp_path / "t1", workload_dir=str(tmp_path / "empty"), command="c", quiet=True)
    assert "Cannot reproduce" in (tmp_path / "t1" / "report.md").read_text()
