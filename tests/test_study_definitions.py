"""The studies' numbers checked against their definitions, not against the code's own output.

Each test computes what a report prints (a paper value, a ratio, a share, a per-image figure) from the paper's
printed tables (copied below as the paper prints them), from hand-made summaries whose answers are worked out
here, or from a run's raw counters with the formulas of docs/results.md and docs/studies.md. They were written
against hand-made wrong versions of the code (a ratio inverted, a constant mistyped, a mean over the wrong count)
that the rest of the suite let through.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.study import paper, published

# --- the paper's tables, as printed in the ATSN paper (Acta Automatica Sinica 2024), tab-separated ---------------
PAPER_TABLE1 = """\
VGG16	SNN	4.00	91.35	1.00	4.00	66.99	1.00	10.00	72.60	1.00
	DTSNN	2.53 (4)	91.13	0.79	3.58 (4)	69.68	0.96	5.70 (10)	73.30	0.56
	ATSN	2.19 (4)	91.61	0.67	2.49 (4)	70.05	0.63	4.13 (10)	73.00	0.43
ResNet19	SNN	4.00	91.86	1.00	4.00	67.22	1.00	10.00	70.00	1.00
	DTSNN	2.52 (4)	91.51	0.88	3.54 (4)	67.58	1.02	6.95 (10)	70.50	0.94
	ATSN	2.00 (4)	91.84	0.67	2.53 (4)	70.64	0.64	5.57 (10)	69.50	0.63"""
PAPER_TABLE2 = """\
ImageNet-100	0.998	1.009	1.009	1.010	1.003	68.49	0.90
N-Caltech-101	0.959	0.977	0.978	0.959	0.989	68.32	0.45"""
PAPER_TABLE3 = """\
VGG16	CIFAR10	215	6814	248	537.6 (7.88%)
	CIFAR100	200	7499	228	543.6 (7.24%)
ResNet19	CIFAR10	215	11088	212	606.1 (5.46%)
	CIFAR100	172	13914	180	617.2 (4.43%)"""
PAPER_TABLE4 = """\
CIFAR10	ResNet19	1.897 (4)	91.77
CIFAR10	VGG16	2.183 (4)	91.57
CIFAR100	ResNet19	2.501 (4)	70.46
CIFAR100	VGG16	2.642 (4)	69.58"""
PAPER_TABLE5 = """\
CIFAR10				34.43	89.39	90.82	91.86
	√			47.26	89.85	90.52	91.38
		√		85.68	88.78	90.39	91.28
	√	√		86.93	89.96	91.63	91.79
	√	√	√	86.93	90.14	91.39	91.86
CIFAR100				27.13	56.68	62.53	67.22
	√			30.38	57.19	63.37	67.70
		√		52.69	63.80	67.29	69.61
	√	√		53.47	64.35	67.53	69.90
	√	√	√	53.47	65.23	68.17	70.25"""
#: Sec. 3.4: "4 parallel accelerators in 28 nm at a 500 MHz clock"; the CIFAR test sets hold 10,000 images
PAPER_SEC34 = "使用 4 个工作在 28 nm 工艺、500 MHz 时钟频率条件的并行加速器运行本文模型"


def _rows(text: str) -> list[list[str]]:
    """Table lines split at tabs, a blank first cell filled from the line above (a merged cell)."""
    out: list[list[str]] = []
    for line in text.splitlines():
        cells = line.split("\t")
        if not cells[0] and out:
            cells[0] = out[-1][0]
        out.append(cells)
    return out


def _step(cell: str) -> tuple[float, int | None]:
    """'2.53 (4)' -> (2.53, 4); '4.00' -> (4.0, None)."""
    m = re.fullmatch(r"([\d.]+)(?: \((\d+)\))?", cell)
    assert m, cell
    return float(m[1]), (int(m[2]) if m[2] else None)


def test_table1_is_the_papers():
    datasets = ("CIFAR10", "CIFAR100", "CIFAR10-DVS")
    got = {}
    for cells in _rows(PAPER_TABLE1):
        net, algo, values = cells[0], cells[1], cells[2:]
        got[(net, algo)] = {}
        for d, (ts, acc, cx) in zip(datasets, np.array(values).reshape(3, 3), strict=True):
            avg, most = _step(ts)
            got[(net, algo)][d] = (avg, most if most is not None else int(avg), float(acc), float(cx))
    assert got == paper.TABLE1


def test_table2_is_the_papers():
    got = {c[0]: (tuple(float(v) for v in c[1:6]), float(c[6]), float(c[7])) for c in _rows(PAPER_TABLE2)}
    assert got == paper.TABLE2


def test_table3_and_its_printed_shares_are_the_papers():
    got, pct = {}, {}
    for net, data, gpu_fps, gpu_j, fps, joules in _rows(PAPER_TABLE3):
        j, share = re.fullmatch(r"([\d.]+) \(([\d.]+)%\)", joules).groups()
        got[(net, data)] = (int(gpu_fps), float(gpu_j), int(fps), float(j))
        pct[(net, data)] = float(share)
    assert got == paper.TABLE3
    assert pct == paper.TABLE3_PRINTED_PCT
    # the claim "4.43%-7.88% of the GPU's energy" is the range of the printed shares
    assert (min(pct.values()), max(pct.values())) == paper.CLAIM_GPU_PCT
    # the printed shares are the joules' quotients with the digits past the second decimal cut
    for key, (_, gpu_j, _, j) in got.items():
        assert pct[key] == int(j / gpu_j * 10000) / 100


def test_table4_and_table5_are_the_papers():
    got4 = {}
    for data, net, ts, acc in _rows(PAPER_TABLE4):
        avg, most = _step(ts)
        got4[(data, net)] = (avg, most, float(acc))
    assert got4 == paper.TABLE4
    got5: dict[str, list] = {}
    for cells in _rows(PAPER_TABLE5):
        cells += [""] * (8 - len(cells))
        marks = tuple(c == "√" for c in cells[1:4])
        got5.setdefault(cells[0], []).append((*marks, tuple(float(v) for v in cells[4:8])))
    assert got5 == paper.TABLE5


def test_the_papers_hardware_setting_and_test_set():
    m = re.search(r"使用 (\d+) 个工作在 28 nm 工艺、(\d+) MHz", PAPER_SEC34)
    assert int(m[1]) == paper.PAPER_ACCELERATORS and float(m[2]) * 1e6 == paper.PAPER_CLOCK_HZ
    assert paper.TEST_IMAGES == 10_000  # the CIFAR-10 and CIFAR-100 test splits


def test_published_chip_figures_are_those_their_sources_title():
    """A chip whose paper's title states its pJ/SOP ('12.7-pJ/SOP') carries that number."""
    titled = 0
    for chip in published.SNN_CHIPS:
        m = re.search(r"([\d.]+)-pJ/SOP", chip["source"])
        if m:
            titled += 1
            assert chip["pJ_per_sop"] == float(m[1]), chip["chip"]
    assert titled >= 2  # ANP-I and ODIN
    by_part = {d["part"]: d for d in published.DRAM_PUBLISHED}
    # the DDR4 figure is the Prosperity artifact's, which its source string quotes
    quoted = re.search(r"([\d.]+) pJ/bit 'derived from DRAMsim3'", published.PROSPERITY_SOURCE)
    assert by_part["dram_ddr4"]["pJ_per_bit"] == float(quoted[1])
    # Horowitz: 1.3-2.6 nJ per 64 bits; the midpoint per bit
    h = published.HOROWITZ_45NM_PJ
    assert by_part["dram_horowitz"]["pJ_per_bit"] == pytest.approx((h["dram_64b_low"] + h["dram_64b_high"]) / 2 / 64,
                                                                   rel=0.05)


def test_horowitz_scaled_to_28_nm_is_the_technology_tables_logic_energy():
    """docs/energy.md: the table's adders and multipliers are Horowitz's 45 nm figures x 0.51 (Stillmaker & Baas);
    validate's Horowitz table scales by the same factor, so its 'scaled' and 'ours' columns agree."""
    from satasim_atsn.study.validate import _horowitz_rows

    assert published.SCALE_45_TO_28 == 0.51
    logic = [row for row in _horowitz_rows() if row["op"].endswith(("add", "multiply"))]
    assert len(logic) == 5
    for row in logic:
        assert row["scaled_28nm"] == pytest.approx(row["ours"], rel=1e-12), row["op"]


# --- Table 3's rows from hand-made summaries -------------------------------------------------------------------
def _table3_rows(monkeypatch) -> list[dict]:
    """The four rows of Table 3 built from hand-made summaries: our VGG16 rows spend half the paper's joules at half
    its FPS; ResNet19 runs at 62 FPS, spends 806.4 J over the test set and does 2.5x VGG16's synaptic operations."""

    from satasim_atsn.study import table3

    monkeypatch.setattr(table3, "workload_meta", lambda path: {})
    monkeypatch.setattr(table3, "statistics_origin", lambda meta: "measured")

    def summary(fps: float, uj: float, sops: float, pj: float) -> dict:
        return {"fps": fps, "energy_per_image_uJ": uj, "images": 2, "avg_timestep": 2.0, "cycles_per_image": 1e6,
                "sops_per_image": sops, "pJ_per_sop": pj, "energy_by_component_uJ": {}}

    ours = {"VGG16": summary(124.0, 26880.0, 2e6, 5.0), "ResNet19": summary(62.0, 80640.0, 5e6, 2.0)}
    return [table3._table3_row(net, data, Path(name), ours[net]) for net, data, name in table3.ROWS]


def test_a_table3_row_sets_ours_beside_the_papers(monkeypatch):
    vgg = _table3_rows(monkeypatch)[0]
    assert (vgg["network"], vgg["dataset"]) == ("VGG16", "CIFAR10")
    assert vgg["energy_J"] == pytest.approx(268.8)  # 26,880 uJ per image x 10,000 test images
    assert vgg["fps_dev"] == pytest.approx(124 / 248 - 1) and vgg["energy_dev"] == pytest.approx(-0.5)
    assert vgg["gpu_ratio"] == pytest.approx(268.8 / 6814) and vgg["paper_gpu_ratio"] == pytest.approx(537.6 / 6814)
    assert vgg["paper_uJ_per_image"] == pytest.approx(53760.0)  # 537.6 J / 10,000 images
    assert vgg["paper_cycles_per_image"] == pytest.approx(4 * 500e6 / 248)  # 4 accelerators at 500 MHz
    assert vgg["paper_pJ_per_sop"] == pytest.approx(53760e6 / 2e6)


def test_table3_cells_quote_the_papers_printed_share_and_the_range_spans_our_rows(monkeypatch):
    """The paper prints 7.88% for VGG16/CIFAR10 where its joules give 537.6 / 6814 = 7.89%: the cell quotes the
    print; our shares span 80,640 uJ x 10,000 / ResNet19's GPU joules up to VGG16's 268.8 / 6814."""
    from satasim_atsn.study.table3 import _table3_cells, gpu_ratio_range

    rows = _table3_rows(monkeypatch)
    assert _table3_cells(rows[0])[6] == "537.6 (7.88%)"
    ratios = sorted(r["gpu_ratio"] for r in rows)
    assert gpu_ratio_range(rows) == (ratios[0], ratios[-1]) and ratios[0] < ratios[-1]


def test_the_table3_analysis_quotes_the_papers_and_our_ratios(monkeypatch):
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.study.table3 import _table3_analysis

    rows = _table3_rows(monkeypatch)
    text = " ".join(_table3_analysis(rows, load_arch("atsn16x16")))
    # paper: 606.1 / 537.6 J = 1.13x the energy, 248 / 212 FPS = 1.17x the time per frame
    assert "ResNet19 does 2.5x the synaptic operations of VGG16" in text
    assert "the paper reports 1.13x the energy and 1.17x the time per frame" in text
    assert "our ResNet19 row costs 3.00x VGG16's energy and 2.00x its time per frame" in text
    # pJ per op: the paper's 26,880 (VGG16) vs 12,122 (ResNet19) = 2.2x; ours 5.0 vs 2.0 = 2.5x
    assert "falls 2.2x in the paper's rows and 2.5x in ours" in text


# --- compare: ratios to the baseline, the differences explained -------------------------------------------------
def _design(name: str, kind: str, energy: float, timesteps: float, comps: dict[str, float],
            accelerators: int = 4, clock_hz: float = 500e6, cycles: float = 1e6) -> dict:
    """A compare summary: ``comps`` the energy per image by component (all dynamic)."""
    return {"name": name, "kind": kind, "accelerators": accelerators, "clock_hz": clock_hz, "avg_timestep": timesteps,
            "cycles_per_image": cycles, "fps": accelerators * clock_hz / cycles, "energy_per_image_uJ": energy,
            "energy_per_image_timestep_uJ": energy / timesteps, "energy_by_component_uJ": dict(comps),
            "dynamic_by_component_uJ": dict(comps), "leakage_by_component_uJ": {c: 0.0 for c in comps},
            "energy_by_action_uJ": {c: {"read": v} for c, v in comps.items()}}


def test_a_ratio_is_the_design_over_the_baseline_and_the_first_design_is_the_default_baseline():
    from satasim_atsn.study.compare import _baseline_index, _ratio

    assert _ratio(6.0, 2.0) == "3.000x" and _ratio(1.0, 4.0) == "0.250x"
    assert _ratio(None, 2.0) == "n/a" and _ratio(1.0, 0.0) == "n/a"
    assert _baseline_index(["a", "b", "c"], ["a.yaml", "b.yaml", "c.yaml"], None) == 0


def test_the_energy_difference_is_put_down_to_the_components_that_make_it():
    from satasim_atsn.study.compare import explain_difference

    base = _design("base", "conventional", 10.0, 4.0, {"dram": 6.5, "pe_compute": 3.5})
    mine = _design("mine", "atsn", 8.0, 2.0, {"dram": 5.0, "pe_compute": 3.0})
    text = " ".join(explain_difference(mine, base))
    # 2 uJ less = 20% of the baseline's 10 uJ; dram -1.5 uJ (75% of the difference), pe_compute -0.5 (25%)
    assert "**mine** spends 2 uJ (20.0%) less energy per image than **base** (8 vs 10 uJ)" in text
    assert "`dram` -1.5 uJ (75% of the difference" in text and "`pe_compute` -0.5 uJ (25% of the difference" in text
    assert text.index("`dram`") < text.index("`pe_compute`")  # the largest change first
    more = " ".join(explain_difference(base, mine))
    assert "spends 2 uJ (25.0%) more energy per image than **mine**" in more


def test_the_papers_direction_from_energy_timesteps_and_energy_per_timestep():
    from satasim_atsn.study.compare import paper_direction

    atsn = _design("at", "atsn", 8.0, 2.0, {"pe_compute": 8.0})
    conv = _design("conv", "conventional", 10.0, 4.0, {"pe_compute": 10.0})
    first, second = paper_direction([conv, atsn])
    # saving 1 - 8/10 = 20%; timesteps 1 - 2/4 = 50% fewer; per image-timestep 4 vs 2.5 uJ = 60% more
    assert "**matches** here — ATSN saves 20.0% per image" in first
    assert "early exit runs 50.0% fewer timesteps per image; per image-timestep ATSN spends 60.0% more" in second
    worse = paper_direction([conv, _design("at", "atsn", 12.5, 5.0, {"pe_compute": 12.5})])
    assert "**does not match** here — ATSN spends 25.0% more per image" in worse[0]
    assert "early exit runs 25.0% more timesteps" in worse[1]


def test_the_weight_load_outside_the_layers_is_the_dynamic_energy_they_do_not_hold():
    from satasim_atsn.study.compare import outside_layers_uJ

    summary = {"dynamic_by_component_uJ": {"dram": 1.0, "pe_compute": 2.0},
               "energy_by_layer_uJ": {"conv1": 1.5, "fc": 0.5}}
    assert outside_layers_uJ(summary) == pytest.approx(1.0)
    summary["energy_by_layer_uJ"]["fc"] = 1.5  # the layers hold it all
    assert outside_layers_uJ(summary) == 0.0


# --- one run's summary numbers, from its raw counters -----------------------------------------------------------
@pytest.fixture(scope="module")
def run():
    """A small run of 5 images on 2 accelerators whose exit steps differ (mean 2 is not the median 1), with a
    hand-set second prediction and labels: software right on 4 of 5, the exit unit's on 3, one more write to DRAM."""
    import dataclasses

    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.hw.engine import simulate
    from satasim_atsn.workload.synthetic import random_workload

    workload = random_workload(3, images=5, timesteps=4, num_classes=4, encoding="direct")
    result = simulate(load_arch("atsn16x16", ["array.rows=2", "array.cols=3", "accelerators=2"]), workload)
    totals = {**result.totals, "dram_write_bytes": result.totals["dram_write_bytes"] + 640}
    return dataclasses.replace(result, labels=np.array([0, 1, 2, 3, 0]), pred=np.array([0, 1, 2, 0, 0]),
                               pred_hw=np.array([0, 1, 0, 0, 0]), totals=totals)


def test_the_run_exercises_every_definition(run):
    exit_t = np.asarray(run.exit_t)
    assert exit_t.mean() != np.median(exit_t) and len(run.per_accelerator) == 2 and run.images == 5
    assert run.totals["exit_accumulations"] > 0 and run.totals["dram_write_bytes"] > 0
    assert np.ptp(np.asarray(run.end_cycle) - np.asarray(run.start_cycle)) > 0


def _raw(run) -> dict:
    """What docs/results.md defines the headline numbers from: images, clock, makespan, latencies, exit steps and
    the energy (total = every component's dynamic energy + leakage)."""
    dyn = sum(sum(actions.values()) for actions in run.energy["dynamic_pJ"].values())
    leak = sum(run.energy["leakage_pJ"].values())
    assert run.energy["total_pJ"] == pytest.approx(dyn + leak)
    lat = np.asarray(run.end_cycle) - np.asarray(run.start_cycle)
    return {"n": 5, "clock": run.clock_hz, "seconds": run.total_cycles / run.clock_hz, "lat": lat,
            "steps": int(np.asarray(run.exit_t).sum()), "total": dyn + leak, "dyn": dyn, "leak": leak}


def test_the_compare_summary_follows_its_definitions(run):
    from satasim_atsn.study.metrics import summarize

    r, s = _raw(run), summarize(run, "x.yaml")
    n, approx = r["n"], pytest.approx
    assert s["fps"] == approx(n / r["seconds"])
    assert s["latency_us"] == approx(r["lat"].mean() / r["clock"] * 1e6, abs=1e-9)
    assert s["cycles_per_image"] == approx(2 * run.total_cycles / n)  # accelerator-cycles: 2 accelerators
    assert s["avg_timestep"] == approx(r["steps"] / n) and s["median_exit_t"] == 1.0
    assert s["exit_hist"] == [int((np.asarray(run.exit_t) == t).sum()) for t in range(1, 5)]
    assert s["energy_per_image_uJ"] == approx(r["total"] / n * 1e-6)
    assert s["energy_per_image_timestep_uJ"] == approx(r["total"] / r["steps"] * 1e-6)
    assert s["energy_10k_images_J"] == approx(r["total"] / n * 1e-12 * 10_000)
    assert s["dynamic_energy_per_image_uJ"] == approx(r["dyn"] / n * 1e-6, abs=1e-9)
    assert s["leakage_energy_per_image_uJ"] == approx(r["leak"] / n * 1e-6, abs=1e-9)
    assert s["power_mW"] == approx(r["total"] * 1e-12 / r["seconds"] * 1e3)
    assert s["edp_uJ_ms"] == approx(r["total"] / n * 1e-6 * r["lat"].mean() / r["clock"] * 1e3)
    acs = run.totals["pe_accumulations"] + run.totals["exit_accumulations"]
    assert s["sops_per_image"] == approx(acs / n)
    assert s["dram_bytes_per_image"] == approx((run.totals["dram_read_bytes"] + run.totals["dram_write_bytes"]) / n)
    assert s["layer_cycles_per_image_timestep"] == {ly["name"]: approx(ly["cycles"] / r["steps"]) for ly in run.layers}
    assert s["area_mm2"] == approx(run.area_um2["total"] * 1e-6)
    assert (s["accuracy"], s["accuracy_hardware"]) == (approx(0.8), approx(0.6))
    assert s["neurobench"]["ClassificationAccuracy"] == approx(0.6)  # the exit unit's prediction


def test_the_run_metrics_and_per_image_values_follow_their_definitions(run):
    from satasim_atsn.hw.per_image import per_image

    r, m, p = _raw(run), run.metrics(), per_image(run)
    n, approx, lat = r["n"], pytest.approx, r["lat"]
    assert m["fps"] == approx(n / r["seconds"])
    ms = {"mean": lat.mean(), "min": lat.min(), "max": lat.max()}
    assert m["latency_ms"] == {k: approx(v / r["clock"] * 1e3) for k, v in ms.items()}
    assert m["avg_timestep"] == approx(r["steps"] / n)
    assert m["energy_dynamic_pJ"] == approx(r["dyn"]) and m["energy_leakage_pJ"] == approx(r["leak"])
    assert m["energy_per_image_timestep_uJ"] == approx(r["total"] / r["steps"] * 1e-6)
    assert m["average_power_mW"] == approx(r["total"] * 1e-12 / r["seconds"] * 1e3)
    assert m["edp_J_s"] == approx(r["total"] / n * 1e-12 * lat.mean() / r["clock"])
    assert m["area_mm2"] == approx(run.area_um2["total"] * 1e-6)
    busy = sum(int(a["pe"]["busy"].sum()) for a in run.per_accelerator)
    pes = sum(len(a["pe"]["busy"]) for a in run.per_accelerator)
    assert m["pe_utilisation"] == approx(busy / (pes * run.total_cycles))
    assert m["accuracy"] == {"software": approx(0.8), "hardware": approx(0.6), "predictions_differ": 1}
    assert p["latency_cycles"] == approx(lat.mean()) and p["timesteps"] == approx(r["steps"] / n)
    assert p["latency_us"] == approx(lat.mean() / r["clock"] * 1e6, abs=1e-9)
    assert p["accelerator_cycles"] == approx(2 * run.total_cycles / n)
    assert p["dynamic_energy_uJ"] == approx(r["dyn"] / n * 1e-6, abs=1e-9)
    assert p["dram_bytes"] == approx((run.totals["dram_read_bytes"] + run.totals["dram_write_bytes"]) / n)
    assert p["sops"] == approx((run.totals["pe_accumulations"] + run.totals["exit_accumulations"]) / n)
    share = re.search(r"\(leakage ([\d.]+)%\)", run.summary_text())[1]
    assert share == f"{r['leak'] / r['total'] * 100:.1f}"


#: the Prosperity artifact's simulator/energy.py at commit e592d5a6 (github.com/dubcyfor3/Prosperity), as written there
PROSPERITY_ENERGY_PY = """
    on_chip_power_dict = {  # derived from papers
        'Prosperity': 446.5,
        'Eyeriss': 1410.5,
        'SATO': 319.5,
        'PTB': 982.0,
        'MINT': 396.3,
        'Stellar': 834.0,
    }
        dram_enenrgy_per_bit = 12.45 # pJ, derived from DRAMsim3
"""


def test_the_prosperity_figures_are_the_artifacts():
    powers = {k: float(v) for k, v in re.findall(r"'(\w+)': ([\d.]+),", PROSPERITY_ENERGY_PY)}
    assert powers == published.PROSPERITY_POWER_MW
    per_bit = float(re.search(r"per_bit = ([\d.]+)", PROSPERITY_ENERGY_PY)[1])
    assert {d["part"]: d["pJ_per_bit"] for d in published.DRAM_PUBLISHED}["dram_ddr4"] == per_bit


def _md_row(md: str, label: str) -> list[str]:
    """The cells of the report's table row that starts with ``label``."""
    line = next(line for line in md.splitlines() if line.startswith(f"| {label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_a_compare_reports_ratios_to_the_baseline_it_names_and_shares_of_the_total(tmp_path):
    """With the second design as --baseline, the ratio column divides the first design's numbers by the second's; the
    group table's share is a part of the energy per image over the whole of it (dynamic + leakage)."""
    import json

    from satasim_atsn.report.document import ratio_text
    from satasim_atsn.study.compare import run_compare
    from satasim_atsn.workload.format import write_workload
    from satasim_atsn.workload.synthetic import random_workload

    root = Path(__file__).resolve().parents[1]
    archs = [str(root / "archs" / f"{n}.yaml") for n in ("conventional16x16", "atsn16x16")]
    wl = tmp_path / "w.npz"
    write_workload(wl, random_workload(5, images=4, timesteps=3, num_classes=4, encoding="direct"))
    run_compare(archs, str(wl), tmp_path / "out", baseline="atsn16x16", images=4, jobs=1, quiet=True, draw_plots=False)
    conv, atsn = json.loads((tmp_path / "out" / "results.json").read_text())["architectures"]
    md = (tmp_path / "out" / "report.md").read_text()
    assert _md_row(md, "FPS")[2] == ratio_text(conv["fps"] / atsn["fps"])
    energy = conv["energy_per_image_uJ"] / atsn["energy_per_image_uJ"]
    assert _md_row(md, "energy / image (uJ)")[2] == ratio_text(energy)
    for i, s in enumerate((conv, atsn)):
        share = s["energy_by_group_uJ"]["dram"]["leakage"] / s["energy_per_image_uJ"] * 100
        assert _md_row(md, "DRAM background")[2 + i] == f"{share:.3g}%"


@pytest.mark.slow  # the suite's 10-minute budget on the slower Xeon (session 46: 10-11 min idle before)
def test_a_sweeps_pareto_table_holds_the_points_no_other_point_beats(tmp_path, workload_path, monkeypatch):
    """Energy per image is better lower, FPS higher: a point is on the front unless another point has no more energy
    and no lower FPS, and is better in one of them."""
    from satasim_atsn.report import plots
    from satasim_atsn.study.runner import run_study
    from satasim_atsn.study.spec import load_study
    from satasim_atsn.study.sweep_report import sweep_report

    drawn = []
    monkeypatch.setattr(plots, "pareto_scatter", lambda path, xs, ys, front, *a, **k: drawn.append(
        (list(xs), list(ys), list(front))) or path.write_bytes(b"png"))
    arch = Path(__file__).resolve().parents[1] / "archs" / "atsn16x16.yaml"
    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: t\nmode: engine\narch: {arch}\nworkload: {workload_path}\nimages: 2\nvary:\n"
                    "  accelerators: [1, 2]\n  clock_hz: [125e6, 500e6]\n  array.rows: [4, 16]\n"
                    "metrics: [energy_per_image_uJ, fps]\nplots:\n  - {x: energy_per_image_uJ, y: fps}\n")
    study = load_study(spec)
    rows, _ = run_study(study, tmp_path / "out", jobs=1, quiet=True)
    sweep_report(study, rows, tmp_path / "out", "satasim sweep s.yaml")
    xs, ys, front = drawn[0]
    points = list(zip(xs, ys, strict=True))

    def beaten(e: float, f: float) -> bool:
        return any(e2 <= e and f2 >= f and (e2, f2) != (e, f) for e2, f2 in points)

    assert front == [not beaten(e, f) for e, f in points]
    assert 0 < sum(front) < len(points)
