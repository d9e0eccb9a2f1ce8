"""hw/energy.py: counts x table exactly, leakage x time, clock independence, and the paper's hardware claims."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.energy import (
    ACTIONS,
    COMPONENTS,
    compute_area,
    compute_energy,
    energy_per_action_pJ,
    leakage_power_mW,
    memory_bytes,
)
from satasim_atsn.hw.tech import TECH_DIR

ARCHS = Path(__file__).resolve().parent.parent / "archs"


def _arch(name: str, overrides=()):
    return load_arch(ARCHS / f"{name}.yaml", list(overrides))


def test_count_names_match_microarchitecture_doc():
    doc = (Path(__file__).resolve().parent.parent / "docs" / "microarchitecture.md").read_text()
    section = doc[doc.index("## 9."):]
    for name in ACTIONS:
        assert f"`{name}`" in section, name


def test_counts_times_table_exact_atsn():
    arch = _arch("atsn16x16")
    t = arch.tech
    counts = {"pe_accumulations": 1000, "pe_fire_updates": 300, "pe_dm_reads": 1300, "pe_dm_writes": 1300,
              "pe_weight_reads": 900, "pe_weight_write_bytes": 4608,
              "pe_input_buffer_pushes": 200, "pe_output_buffer_pushes": 50, "weight_glb_read_bytes": 64,
              "spike_glb_write_bytes": 96, "dram_read_bytes": 256, "exit_multiplies": 7, "exit_lut_reads": 4}
    e = compute_energy(arch, counts, makespan_cycles=0)
    d = e.dynamic_pJ
    assert d["pe_compute"]["pe_accumulations"] == pytest.approx(1000 * 0.05 * 0.51)
    fire = t.value("decay_shift_add_16b_energy_pJ") + t.value("compare_16b_energy_pJ") + t.value("mux_16b_energy_pJ")
    assert d["pe_compute"]["pe_fire_updates"] == pytest.approx(300 * fire)
    assert d["pe_memory"]["pe_dm_reads"] == pytest.approx(1300 * 0.65 * 16 / 64)
    assert d["pe_memory"]["pe_dm_writes"] == pytest.approx(1300 * 1.37 * 16 / 64)
    wm = t.sram("sram64", arch.pe.weight_memory_bytes)  # one int8 weight per access, 8/64 of a 64-bit access
    assert d["pe_memory"]["pe_weight_reads"] == pytest.approx(900 * wm.read_pJ / 8)
    assert d["pe_memory"]["pe_weight_write_bytes"] == pytest.approx(4608 * wm.write_pJ / 8)
    assert wm.read_pJ > t.sram("sram64", arch.pe.data_memory_bytes).read_pJ  # capacity-dependent
    rf = t.value("regfile_energy_pJ_per_bit")
    assert d["spike_buffers"]["pe_input_buffer_pushes"] == pytest.approx(200 * 2 * 16 * rf)
    assert d["spike_buffers"]["pe_output_buffer_pushes"] == pytest.approx(50 * 2 * 16 * rf)
    assert d["global_buffer"]["weight_glb_read_bytes"] == pytest.approx(64 / 32 * 28.63)  # two 32 B blocks
    assert d["global_buffer"]["spike_glb_write_bytes"] == pytest.approx(96 / 32 * 12.77)
    assert d["dram"]["dram_read_bytes"] == pytest.approx(256 * 8 * 8.0)  # LPDDR4: 8 pJ per bit at the pins
    assert d["exit_unit"]["exit_multiplies"] == pytest.approx(7 * 3.1 * 0.51)
    assert d["exit_unit"]["exit_lut_reads"] == pytest.approx(4 * 1.27 * 24 / 64)  # 3-byte table words
    assert d["adc"]["adc_conversions"] == 0.0
    assert e.leakage_total_pJ == 0.0
    assert e.total_pJ == pytest.approx(sum(sum(v.values()) for v in d.values()))
    assert set(d) == set(COMPONENTS)


def test_analog_pe_and_adc_exact():
    arch = _arch("dtsnn16x16")
    t = arch.tech
    e = compute_energy(arch, {"pe_accumulations": 500, "adc_conversions": 40, "exit_divides": 3}, 0)
    assert e.dynamic_pJ["pe_compute"]["pe_accumulations"] == pytest.approx(500 * t.value("analog_accumulate_energy_pJ"))
    assert e.dynamic_pJ["adc"]["adc_conversions"] == pytest.approx(40 * t.value("adc_fom_fJ_per_step") * 1e-3 * 2**8)
    assert e.dynamic_pJ["exit_unit"]["exit_divides"] == pytest.approx(3 * t.value("div_32b_energy_pJ"))
    e10 = compute_energy(_arch("dtsnn16x16", ["pe.adc_bits=10"]), {"adc_conversions": 40}, 0)
    assert e10.dynamic_pJ["adc"]["adc_conversions"] == pytest.approx(4 * e.dynamic_pJ["adc"]["adc_conversions"])


def test_noc_energy_uses_router_and_pitch():
    arch = _arch("atsn16x16")
    t = arch.tech
    e = compute_energy(arch, {"noc_byte_hops": 1000}, 0).dynamic_pJ["noc"]["noc_byte_hops"]
    router_only = 1000 * 8 * t.value("noc_router_energy_pJ_per_bit")
    assert router_only < e < router_only * 1.5  # a ~0.1 mm link adds a few percent


def test_leakage_times_time():
    arch = _arch("atsn16x16")
    p = leakage_power_mW(arch)
    cycles = 1_000_000
    e = compute_energy(arch, {}, cycles)
    seconds = cycles / 500e6
    for c in COMPONENTS:
        assert e.leakage_pJ[c] == pytest.approx(p[c] * 1e-3 * seconds * 1e12)
    # every bank of every buffer of every accelerator leaks
    assert p["global_buffer"] == pytest.approx(4 * (2 * 24.91 + 2 * 6.26 + 2 * 6.26))
    assert e.total_pJ >= e.leakage_total_pJ > 0


def test_energy_per_op_independent_of_clock():
    slow, fast = _arch("atsn16x16"), _arch("atsn16x16", ["clock_hz=1e9"])
    assert energy_per_action_pJ(slow) == energy_per_action_pJ(fast)
    counts = {n: 10 for n in ACTIONS if n != "adc_conversions"}
    assert compute_energy(slow, counts, 0).dynamic_pJ == compute_energy(fast, counts, 0).dynamic_pJ
    # the same cycle count at twice the clock leaks half as long; the DRAM's 16 B per cycle now need
    # 16 GB/s: three LPDDR4 channels instead of two
    on_chip = [c for c in COMPONENTS if c != "dram"]
    leak_fast, leak_slow = compute_energy(fast, {}, 1000).leakage_pJ, compute_energy(slow, {}, 1000).leakage_pJ
    assert sum(leak_fast[c] for c in on_chip) == pytest.approx(sum(leak_slow[c] for c in on_chip) / 2)
    assert leak_fast["dram"] == pytest.approx(leak_slow["dram"] / 2 * 3 / 2)


def test_shift_add_decay_cheaper_than_multiplier():
    sa, mul = _arch("atsn16x16"), _arch("atsn16x16", ["pe.decay=multiplier"])
    assert energy_per_action_pJ(sa)["pe_fire_updates"] < energy_per_action_pJ(mul)["pe_fire_updates"] / 5
    assert compute_area(sa)["pe_compute"] < compute_area(mul)["pe_compute"]
    assert leakage_power_mW(sa)["pe_compute"] < leakage_power_mW(mul)["pe_compute"]


def test_at_unit_small_vs_pe_array():
    arch = _arch("atsn16x16")
    area, leak = compute_area(arch), leakage_power_mW(arch)
    pe_area = area["pe_compute"] + area["pe_memory"] + area["spike_buffers"] * 255 / 256
    pe_leak = leak["pe_compute"] + leak["pe_memory"] + leak["spike_buffers"] * 255 / 256
    assert area["exit_unit"] < pe_area / 50
    assert leak["exit_unit"] < pe_leak / 50


def test_dtsnn_memory_at_least_atsn_memory():
    """The paper: the DT design needs twice the memory of ATSN's (its timestep module vs the AT unit)."""
    dt, at = _arch("dtsnn16x16"), _arch("atsn16x16")
    m_dt, m_at = memory_bytes(dt), memory_bytes(at)
    # the DT unit's memory is its 6 KB table plus a working store: at least the table + 100 classes x 32-bit sums
    assert m_dt["exit_unit_memory"] >= dt.exit_unit.lut_bytes + 100 * 4
    assert m_dt["exit_unit_memory"] >= 2 * m_at["exit_unit_memory"]
    assert m_dt["total"] >= m_at["total"]


def test_area_components_and_totals():
    conv, dt, at = (_arch(n) for n in ("conventional16x16", "dtsnn16x16", "atsn16x16"))
    a_conv, a_dt, a_at = compute_area(conv), compute_area(dt), compute_area(at)
    for a, arch in ((a_conv, conv), (a_dt, dt), (a_at, at)):
        assert a["per_accelerator_total"] == pytest.approx(sum(a[c] for c in COMPONENTS))
        assert a["total"] == pytest.approx(4 * a["per_accelerator_total"])
        assert a["pe_memory"] == pytest.approx(255 * (1389.0 + arch.tech.sram("sram64", 6144).area_um2))
        assert a["spike_buffers"] == pytest.approx(256 * 256 * 8 * arch.tech.value("regfile_area_um2_per_bit"))
    assert a_dt["adc"] == pytest.approx(255 * dt.tech.value("adc_8b_area_um2"))
    assert a_conv["adc"] == a_at["adc"] == 0.0
    assert a_dt["per_accelerator_total"] > a_conv["per_accelerator_total"] > a_at["per_accelerator_total"]


def test_bad_counts():
    arch = _arch("atsn16x16")
    with pytest.raises(ValueError, match="unknown action counts"):
        compute_energy(arch, {"pe_accumulation": 1}, 0)
    with pytest.raises(ValueError, match="negative"):
        compute_energy(arch, {"pe_accumulations": -1}, 0)
    with pytest.raises(ValueError, match="digital PEs"):
        compute_energy(arch, {"adc_conversions": 1}, 0)


def test_to_dict_deterministic_json():
    arch = _arch("atsn16x16")
    counts = {n: 3 for n in ACTIONS if n != "adc_conversions"}
    a = json.dumps(compute_energy(arch, counts, 12345).to_dict())
    b = json.dumps(compute_energy(_arch("atsn16x16"), dict(reversed(list(counts.items()))), 12345).to_dict())
    assert a == b
    d = json.loads(a)
    assert math.isclose(d["total_pJ"], d["dynamic_total_pJ"] + d["leakage_total_pJ"])


def test_dram_entry_choice_moves_energy():
    counts = {"dram_read_bytes": 1024}
    arr = compute_energy(_arch("atsn16x16", ["dram.energy_table_entry=dram_array_only_cacti"]), counts, 0)
    lp = compute_energy(_arch("atsn16x16", ["dram.energy_table_entry=dram_lpddr4"]), counts, 0)
    hz = compute_energy(_arch("atsn16x16", ["dram.energy_table_entry=dram_horowitz"]), counts, 0)
    assert lp.dynamic_pJ["dram"]["dram_read_bytes"] == pytest.approx(1024 * 8 * 8.0)
    assert hz.dynamic_pJ["dram"]["dram_read_bytes"] == pytest.approx(1024 * 8 * 30.0)
    assert arr.dynamic_pJ["dram"]["dram_read_bytes"] < lp.dynamic_pJ["dram"]["dram_read_bytes"]
    assert _arch("atsn16x16").dram.energy_table_entry == "dram_lpddr4"  # the shipped default


def test_dram_background_power_over_the_makespan():
    """Background power: channels needed for the DRAM bandwidth x the part's power, once for the shared DRAM."""
    from satasim_atsn.hw.energy import dram_background_mW, dram_channels

    lp = _arch("atsn16x16")  # 16 B/cycle at 500 MHz = 8 GB/s: two 6.4 GB/s LPDDR4 channels
    assert dram_channels(lp) == 2
    assert dram_background_mW(lp) == pytest.approx(2 * lp.tech.value("dram_lpddr4_background_power_mW"))
    # exactly 12.8 GB/s is still two channels (decimal, not float, division)
    assert dram_channels(_arch("atsn16x16", ["dram.bytes_per_cycle=32", "clock_hz=400e6"])) == 2
    assert dram_channels(_arch("atsn16x16", ["dram.bytes_per_cycle=64"])) == 5
    # the DRAM is shared: its background power does not grow with the accelerators
    one = _arch("atsn16x16", ["accelerators=1"])
    assert leakage_power_mW(one)["dram"] == leakage_power_mW(lp)["dram"]
    assert leakage_power_mW(one)["pe_memory"] * 4 == pytest.approx(leakage_power_mW(lp)["pe_memory"])
    cycles = 5_000_000  # 10 ms at 500 MHz
    e = compute_energy(lp, {}, cycles)
    assert e.leakage_pJ["dram"] == pytest.approx(dram_background_mW(lp) * 1e-3 * 0.01 * 1e12)
    ddr4 = _arch("atsn16x16", ["dram.energy_table_entry=dram_ddr4"])  # one 25.6 GB/s channel
    assert dram_channels(ddr4) == 1 and dram_background_mW(ddr4) > dram_background_mW(lp)
    for part in ("dram_array_only_cacti", "dram_horowitz"):  # access-only figures: no background charged
        arch = _arch("atsn16x16", [f"dram.energy_table_entry={part}"])
        assert dram_channels(arch) == 0 and compute_energy(arch, {}, cycles).leakage_pJ["dram"] == 0.0


def test_every_counter_the_models_produce_has_an_energy_entry():
    from satasim_atsn.hw import reference, results

    per_action = energy_per_action_pJ(_arch("atsn16x16"))
    assert results.ACTIONS is ACTIONS and reference.ACTIONS is ACTIONS
    assert set(per_action) == set(ACTIONS)


def test_the_exit_unit_has_area_and_leakage_for_the_decay_its_updates_are_charged():
    """Every exit_updates action is charged a shift-add decay, but the unit's area and leakage had no decay unit
    (fuzzing of own designs: tripling the decay's energy moved the energy, not the area). The paper's AT unit is a
    PE without the reset mux and with a multiplier, so it keeps the PE's decay unit."""
    arch = load_arch(ARCHS / "atsn16x16.yaml")
    t, we = arch.tech, arch.exit_unit.vmem_bits
    scaled = load_arch(ARCHS / "atsn16x16.yaml", [f"tech.decay_shift_add_{we}b_area_um2="
                                                  f"{3 * t.value(f'decay_shift_add_{we}b_area_um2')}"])
    grown = compute_area(scaled)["exit_unit"] - compute_area(arch)["exit_unit"]
    assert grown == pytest.approx(2 * t.value(f"decay_shift_add_{we}b_area_um2"))


def test_the_exit_unit_decays_with_the_pes_kind_of_decay_unit():
    """A PE array with multiplier decay and an exit unit: the exit unit (a PE without the reset mux) decays with a
    multiplier too, in the energy of every exit_updates action and in its area (it was always a shift-add)."""
    shift = _arch("atsn16x16")
    mult = _arch("atsn16x16", ["pe.decay=multiplier"])
    t, we = shift.tech, shift.exit_unit.vmem_bits
    gained = energy_per_action_pJ(mult)["exit_updates"] - energy_per_action_pJ(shift)["exit_updates"]
    assert gained == pytest.approx(t.value(f"mult_{we}b_energy_pJ") - t.value(f"decay_shift_add_{we}b_energy_pJ"))
    assert gained > 0
    grown = compute_area(mult)["exit_unit"] - compute_area(shift)["exit_unit"]
    assert grown == pytest.approx(t.value(f"mult_{we}b_area_um2") - t.value(f"decay_shift_add_{we}b_area_um2"))


def test_exit_decision_adds_and_weight_writes_are_priced():
    """Model 8: the decision's adds cost one exit-width adder; a weight byte written into the exit data memory
    one eighth of that memory's 64-bit write (the same scaling as the PE weight memories)."""
    arch = _arch("atsn16x16")
    t, eu = arch.tech, arch.exit_unit
    per = energy_per_action_pJ(arch)
    assert per["exit_decision_adds"] == t.logic("add", eu.vmem_bits, "energy_pJ") > 0
    fig = t.sram("sram64", eu.data_memory_bytes)
    assert per["exit_weight_write_bytes"] == pytest.approx(fig.write_pJ * 8 / fig.access_bits)
    none = _arch("conventional16x16", ["array.exit_unit_tiles=0"])
    per_none = energy_per_action_pJ(none)
    assert per_none["exit_decision_adds"] == per_none["exit_weight_write_bytes"] == 0


def test_the_adc_row_of_the_field_table_says_what_adc_bits_sets():
    """docs/architecture.md said adc_bits sets the ADC's leakage; docs/energy.md charges an ADC none, at any width."""
    areas = {bits: compute_area(_arch("dtsnn16x16", [f"pe.adc_bits={bits}"]))["adc"] for bits in (4, 12)}
    assert areas[4] < areas[12]
    assert all(leakage_power_mW(_arch("dtsnn16x16", [f"pe.adc_bits={bits}"]))["adc"] == 0 for bits in (4, 12))
    row = next(line for line in (ARCHS.parent / "docs" / "architecture.md").read_text().splitlines()
               if line.startswith("| `pe.adc_bits`"))
    assert "leakage" not in row.split("It sets", 1)[1].split("not the result", 1)[0].replace("no leakage", "")


def test_memory_accesses_are_charged_per_the_tables_access_bits(tmp_path):
    """docs/energy.md, "Access width": an n-bit sram64 access is n/access_bits of the point's figure and a
    global-buffer byte E_block/(access_bits/8); the shipped 64 and 32 B are those tables' access_bits."""
    table = yaml.safe_load((TECH_DIR / "28nm.yaml").read_text())
    for entry in table["entries"].values():
        if "access_bits" in entry:
            entry["access_bits"] *= 2  # sram64: 128-bit port; glb: 64 B blocks
    (tmp_path / "wide.yaml").write_text(yaml.safe_dump(table))
    arch_text = (ARCHS / "atsn16x16.yaml").read_text().replace("technology: 28nm", "technology: wide.yaml")
    (tmp_path / "a.yaml").write_text(arch_text)
    wide, base = energy_per_action_pJ(load_arch(tmp_path / "a.yaml")), energy_per_action_pJ(_arch("atsn16x16"))
    for action in ("pe_dm_reads", "pe_dm_writes", "pe_weight_reads", "pe_weight_write_bytes", "exit_lut_reads",
                   "exit_weight_write_bytes", "weight_glb_read_bytes", "weight_glb_write_bytes",
                   "spike_glb_read_bytes", "spike_glb_write_bytes"):
        assert wide[action] == pytest.approx(base[action] / 2, rel=1e-12), action
    assert base["pe_dm_reads"] == pytest.approx(0.65 * 16 / 64, rel=1e-12)
    assert base["weight_glb_read_bytes"] == pytest.approx(28.63 / 32, rel=1e-12)
