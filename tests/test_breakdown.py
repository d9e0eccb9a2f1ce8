"""hw/breakdown.py: energy in four groups, pJ per synaptic operation and unit utilisation, from a run's counters.

The groups are checked against an independent recomputation (count x energy per action, leakage power x
time, per component of each group); the utilisations against the counters of docs/microarchitecture.md
section 9 divided by what each unit could have done over the makespan.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_engine_vs_reference import random_case

from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.breakdown import FJ_PER_PJ, energy_breakdown, mesh_links, utilisation
from satasim_atsn.hw.energy import (
    ACTION_COMPONENT,
    COMPONENT_GROUP,
    COMPONENTS,
    ENERGY_GROUPS,
    GROUP_COMPONENTS,
    energy_per_action_pJ,
    leakage_power_mW,
)
from satasim_atsn.hw.engine import simulate
from satasim_atsn.workload.synthetic import random_workload

SMALL = ["array.rows=2", "array.cols=3", "accelerators=2"]
SEEDS = range(12)
BOUNDED = ("dram_channel_busy", "dram_bandwidth", "weight_buffer_read_port", "input_buffer_read_port",
           "output_buffer_write_port", "noc_link_load")


def fJ(pJ: float) -> int:
    """A value of the block (pJ on the 1 fJ grid) as whole femtojoules."""
    value = pJ * FJ_PER_PJ
    assert abs(value - round(value)) < 1e-6, f"{pJ} pJ is not on the 1 fJ grid"
    return round(value)


@pytest.fixture(scope="module")
def runs():
    """Results of seeded random cases (random architectures: folds, spills, several accelerators, analog PEs)."""
    out = []
    for seed in SEEDS:
        arch, workload, images = random_case(seed)
        out.append((arch, simulate(arch, workload, images)))
    return out


def test_every_component_and_counter_has_exactly_one_group():
    assert set(COMPONENT_GROUP) == set(COMPONENTS) and set(COMPONENT_GROUP.values()) == set(ENERGY_GROUPS)
    assert sorted(c for g in ENERGY_GROUPS for c in GROUP_COMPONENTS[g]) == sorted(COMPONENTS)
    assert all(ACTION_COMPONENT[a] in COMPONENT_GROUP for a in ACTION_COMPONENT)
    assert COMPONENT_GROUP["dram"] == "dram" and COMPONENT_GROUP["noc"] == "noc"


def test_groups_add_up_exactly(runs):
    for _, result in runs:
        eb = energy_breakdown(result)
        groups = eb["groups"]
        for scope in ("run", "per_image"):
            def get(d, key, scope=scope):
                return d[key] if scope == "run" else d["per_image"][key]
            for g in ENERGY_GROUPS:  # dynamic + leakage = group total, exactly on the fJ grid
                parts = fJ(get(groups[g], "dynamic_pJ")) + fJ(get(groups[g], "leakage_pJ"))
                assert parts == fJ(get(groups[g], "total_pJ"))
            for key in ("dynamic_pJ", "leakage_pJ", "total_pJ"):  # the groups sum to the total
                assert sum(fJ(get(groups[g], key)) for g in ENERGY_GROUPS) == fJ(get(eb, key)), (scope, key)
        # the grid total is the run's energy, each of 8 parts rounded by at most half a fJ
        assert abs(eb["total_pJ"] - result.energy["total_pJ"]) <= 8 * 0.5e-3 + 1e-9 * result.energy["total_pJ"]
        per_image = result.to_dict()["per_image"]["energy_uJ"] * 1e6
        assert eb["per_image"]["total_pJ"] == pytest.approx(per_image, abs=8 * 0.5e-3 + 1e-3)
        shares = [groups[g][k] for g in ENERGY_GROUPS for k in ("dynamic_share", "leakage_share")]
        assert sum(shares) == pytest.approx(1.0, abs=1e-11)
        for g in ENERGY_GROUPS:
            assert groups[g]["share"] == pytest.approx(groups[g]["dynamic_share"] + groups[g]["leakage_share"],
                                                       abs=1e-11)
            assert groups[g]["share"] == round(groups[g]["total_pJ"] / eb["total_pJ"], 12)


def test_groups_equal_counts_times_table_per_component(runs):
    """Each group = sum over its components of count x energy per action (dynamic) and power x time (leakage)."""
    for arch, result in runs:
        per_action = energy_per_action_pJ(arch)
        power = leakage_power_mW(arch)
        seconds = result.total_cycles / arch.clock_hz
        groups = energy_breakdown(result)["groups"]
        for g in ENERGY_GROUPS:
            want_dyn = sum(result.totals[a] * per_action[a] for a in ACTION_COMPONENT
                           if ACTION_COMPONENT[a] in GROUP_COMPONENTS[g])
            want_leak = sum(power[c] * 1e-3 * seconds * 1e12 for c in GROUP_COMPONENTS[g])
            assert groups[g]["dynamic_pJ"] == pytest.approx(want_dyn, rel=1e-12, abs=2e-3)
            assert groups[g]["leakage_pJ"] == pytest.approx(want_leak, rel=1e-12, abs=2e-3)
        dram = groups["dram"]  # DRAM: access energy is bytes x pJ/byte, its static part the background power
        dram_bytes = result.totals["dram_read_bytes"] + result.totals["dram_write_bytes"]
        want_access = dram_bytes * per_action["dram_read_bytes"]
        assert dram["dynamic_pJ"] == pytest.approx(want_access, rel=1e-12, abs=2e-3)


def test_a_new_counter_lands_in_its_components_group():
    """A counter charged to a component (as a later one, e.g. a PE weight read, would be) moves that group only."""
    result = simulate(load_arch("atsn16x16", SMALL), random_workload(3, images=3, timesteps=3))
    before = energy_breakdown(result)["groups"]
    result.energy["dynamic_pJ"]["pe_memory"]["some_later_counter"] = 1234.5
    after = energy_breakdown(result)["groups"]
    assert fJ(after["on_chip_memory"]["dynamic_pJ"]) - fJ(before["on_chip_memory"]["dynamic_pJ"]) == 1234500
    for g in ("compute", "noc", "dram"):
        assert after[g] == {**before[g], **{k: after[g][k] for k in after[g] if k.endswith("share")}}


def test_pJ_per_sop_from_the_counts(runs):
    for _, result in runs:
        eb, data = energy_breakdown(result), result.to_dict()
        sops = result.totals["pe_accumulations"] + result.totals["exit_accumulations"]
        assert eb["synaptic_operations"] == sops
        nb = data["neurobench"]["SynapticOperations"]["Effective_ACs"]
        assert eb["synaptic_operations_per_image"] == pytest.approx(nb, rel=1e-12)  # SOP = NeuroBench's Effective_ACs
        grid = 4e-3 / sops + 1e-9  # 8 parts on the 1 fJ grid, spread over the SOPs, plus the 1e-9 pJ rounding
        assert eb["pJ_per_sop"] == round(fJ(eb["total_pJ"]) / (FJ_PER_PJ * sops), 9)
        assert eb["pJ_per_sop"] == pytest.approx(result.energy["total_pJ"] / sops, rel=1e-12, abs=grid)
        dynamic = sum(sum(a.values()) for a in result.energy["dynamic_pJ"].values())
        assert eb["dynamic_pJ_per_sop"] == pytest.approx(dynamic / sops, rel=1e-12, abs=grid)
        on_chip = eb["total_pJ"] - eb["groups"]["dram"]["total_pJ"]
        assert eb["on_chip_pJ_per_sop"] == pytest.approx(on_chip / sops, rel=1e-12, abs=grid)
        assert eb["dynamic_pJ_per_sop"] < eb["pJ_per_sop"] and eb["on_chip_pJ_per_sop"] < eb["pJ_per_sop"]


def test_utilisation_is_the_counter_ratio_and_in_range(runs):
    for arch, result in runs:
        c = result.counters()
        u = utilisation(result)
        total, accs = c["total_cycles"], c["accelerators"]
        pes = sum(len(a["pe"]["busy"]) for a in accs)
        for state, value in u["pe_array"].items():
            assert value == round(sum(sum(a["pe"][state]) for a in accs) / (pes * total), 12)
        assert sum(u["pe_array"].values()) == pytest.approx(1.0, abs=1e-11)
        for state, value in u["exit_unit"].items():
            assert value == round(sum(a["exit_unit"][state] for a in accs) / (len(accs) * total), 12)
        assert u["dram_channel_busy"] == round(c["dram_busy_cycles"] / total, 12)
        dram_bytes = result.totals["dram_read_bytes"] + result.totals["dram_write_bytes"]
        assert u["dram_bandwidth"] == round(dram_bytes / (arch.dram.bytes_per_cycle * total), 12)
        assert u["dram_bandwidth"] <= u["dram_channel_busy"]  # a transaction moves at most bytes_per_cycle a cycle
        gb, acc_cycles = arch.global_buffers, len(accs) * total
        assert u["weight_buffer_read_port"] == round(
            result.totals["weight_glb_read_bytes"] / (gb.weight.bytes_per_cycle * acc_cycles), 12)
        assert u["input_buffer_read_port"] == round(
            result.totals["spike_glb_read_bytes"] / (gb.input.bytes_per_cycle * acc_cycles), 12)
        assert u["output_buffer_write_port"] == round(
            result.totals["spike_glb_write_bytes"] / (gb.output.bytes_per_cycle * acc_cycles), 12)
        links = mesh_links(arch.array.rows, arch.array.cols)
        want = result.totals["noc_byte_hops"] / (links * arch.noc.link_bytes_per_cycle * acc_cycles) if links else 0.0
        assert u["noc_link_load"] == round(want, 12)
        values = [*u["pe_array"].values(), *u["exit_unit"].values(), *(u[k] for k in BOUNDED)]
        assert all(0.0 <= v <= 1.0 for v in values), u
    assert any(u["dram_channel_busy"] > 0 for u in (utilisation(r) for _, r in runs))


def test_mesh_links_counts_both_directions():
    assert [mesh_links(r, c) for r, c in ((1, 1), (1, 2), (2, 2), (16, 16))] == [0, 2, 8, 960]


def test_json_blocks_are_deterministic_and_on_the_grid(runs):
    _, result = runs[3]
    arch, workload, images = random_case(3)
    again = simulate(arch, workload, images)
    assert again.to_json() == result.to_json()
    data = json.loads(result.to_json())
    assert data["energy_breakdown"] == json.loads(json.dumps(energy_breakdown(result)))
    assert data["utilisation"] == json.loads(json.dumps(utilisation(result)))
    for g in ENERGY_GROUPS:
        for key in ("dynamic_pJ", "leakage_pJ", "total_pJ"):
            fJ(data["energy_breakdown"]["groups"][g][key])
            fJ(data["energy_breakdown"]["groups"][g]["per_image"][key])


def test_summary_shows_the_group_table(runs):
    _, result = runs[0]
    text = result.summary_text()
    eb = energy_breakdown(result)
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.strip().startswith("energy per image ("))
    unit = lines[head].split("(")[1].split(")")[0]
    scale = {"uJ": 1e-6, "nJ": 1e-3, "pJ": 1.0}[unit]
    labels = {"compute": "compute", "on_chip_memory": "on-chip memory", "noc": "NoC",
              "dram": "DRAM (access, background)"}
    for g in ENERGY_GROUPS:
        row = next(line for line in lines[head:] if line.strip().startswith(labels[g]))
        cells = row.strip()[len(labels[g]):].split()
        per = eb["groups"][g]["per_image"]
        assert [float(x) for x in cells[:3]] == pytest.approx(
            [per["dynamic_pJ"] * scale, per["leakage_pJ"] * scale, per["total_pJ"] * scale], abs=6e-4)
        assert cells[3] == f"{eb['groups'][g]['share']:.1%}"
    assert any(line.strip().startswith("total") for line in lines[head:])
    assert f"pJ per SOP      {eb['pJ_per_sop']:.3f}" in text
    u = utilisation(result)
    assert f"busy {u['pe_array']['busy']:.1%}" in text and f"DRAM channel {u['dram_channel_busy']:.1%}" in text


def test_energy_group_plot_is_written(tmp_path):
    from satasim_atsn.report import plots

    path = plots.energy_groups(tmp_path / "g.png", ["a", "b"], {"compute": ([1.0, 2.0], [0.5, 0.1]),
                                                                 "DRAM": ([3.0, 0.0], [1.0, 1.0])}, "t", "uJ")
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    again = plots.energy_groups(tmp_path / "h.png", ["a", "b"], {"compute": ([1.0, 2.0], [0.5, 0.1]),
                                                                  "DRAM": ([3.0, 0.0], [1.0, 1.0])}, "t", "uJ")
    assert Path(again).read_bytes() == data


def test_sweep_metrics_carry_the_groups():
    from satasim_atsn.study.metrics import summarize
    from satasim_atsn.study.spec import ENGINE_METRICS_ALL

    result = simulate(load_arch("atsn16x16", SMALL), random_workload(5, images=3, timesteps=3))
    s = summarize(result)
    for metric in ENGINE_METRICS_ALL:
        assert metric in s, metric
    for g in ENERGY_GROUPS:
        parts = s["energy_by_group_uJ"][g]
        assert s[f"energy_group_{g}_uJ"] == parts["total"]
        assert parts["dynamic"] + parts["leakage"] == pytest.approx(parts["total"], abs=1e-12)
    assert sum(s[f"energy_group_{g}_uJ"] for g in ENERGY_GROUPS) == pytest.approx(s["energy_per_image_uJ"], abs=1e-8)
    assert s["pe_utilisation"] == utilisation(result)["pe_array"]["busy"]
    assert s["weight_fetch_reads"] == result.mapping["weight_fetch_reads"]
    assert np.isclose(s["leakage_share"], s["leakage_energy_per_image_uJ"] / s["energy_per_image_uJ"], atol=1e-9)


def test_the_group_table_stays_aligned_when_an_image_takes_joules():
    """A value wider than the table's 10 characters (here about 10^6 uJ per image: a 1 kHz clock and a DRAM latency of
    10^6 cycles) widens every column alike, so each cell still ends under its heading (and so does the share)."""
    arch = load_arch("atsn16x16", SMALL + ["clock_hz=1e3", "dram.latency_cycles=1000000"])
    text = simulate(arch, random_workload(5, images=2, timesteps=2), 2).summary_text()
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.strip().startswith("energy per image ("))
    table = lines[head + 1:next(i for i, line in enumerate(lines) if line.strip().startswith("pJ per SOP"))]
    ends = [lines[head].index(word) + len(word) for word in ("dynamic", "leakage", "total", "share")]
    assert max(len(cell) for line in table for cell in line[30:].split()) > 10  # the case the test is for
    for line in table:
        cells = line[30:].split()  # a component's row has no share
        found, at = [], 30
        for cell in cells:
            at = line.index(cell, at) + len(cell)
            found.append(at)
        assert found == ends[:len(cells)], line


def test_on_chip_dynamic_pJ_per_sop_leaves_out_the_dram(runs):
    """docs/energy.md: on-chip scopes are all groups but DRAM; the on-chip dynamic figure is their dynamic parts over
    the SOPs (it once took the run's whole dynamic energy in a mutant no test saw: session 37)."""
    checked = 0
    for _, result in runs:
        eb = energy_breakdown(result)
        sops = eb["synaptic_operations"]
        if not sops or not eb["groups"]["dram"]["dynamic_pJ"]:
            continue
        on_chip = sum(fJ(eb["groups"][g]["dynamic_pJ"]) for g in ("compute", "on_chip_memory", "noc"))
        assert eb["on_chip_dynamic_pJ_per_sop"] == round(on_chip / (FJ_PER_PJ * sops), 9)
        assert eb["on_chip_dynamic_pJ_per_sop"] < eb["dynamic_pJ_per_sop"]
        checked += 1
    assert checked
