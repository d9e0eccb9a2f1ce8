"""DESIGN.md section 9 physical-sanity properties, over random workloads and architectures."""

from __future__ import annotations

import pytest
from test_engine import tiny_arch

from satasim_atsn.hw.engine import simulate
from satasim_atsn.workload.synthetic import random_workload


@pytest.mark.parametrize("seed", range(16))
def test_physical_sanity(seed):
    wl = random_workload(300 + seed, images=int(2 + seed % 5))
    arch = tiny_arch(seed)
    res = simulate(arch, wl)
    c = res.counters()
    cycles = c["total_cycles"]
    P = res.mapping["num_pes"]
    # cycles >= synaptic operations / adders (each accelerator's share, all its PEs at full rate)
    for acc in c["accelerators"]:
        assert cycles * P * arch.pe.adders >= acc["actions"]["pe_accumulations"]
        assert cycles * arch.exit_unit.adders >= acc["actions"]["exit_accumulations"]
    # cycles >= DRAM bytes / DRAM bandwidth (one shared channel)
    dram = sum(a["actions"]["dram_read_bytes"] + a["actions"]["dram_write_bytes"] for a in c["accelerators"])
    assert cycles * arch.dram.bytes_per_cycle >= dram
    # energy >= leakage power x time
    leak_pJ = sum(res.leakage_mW.values()) * 1e-3 * res.seconds * 1e12
    assert res.energy["total_pJ"] >= leak_pJ * (1 - 1e-12)
    # FPS <= accelerators x clock / cycles of the fastest image (x images sharing a batch)
    fastest = min(e - s for s, e in zip(c["images"]["start_cycle"], c["images"]["end_cycle"], strict=True))
    fps = res.metrics()["fps"]
    assert fps <= arch.accelerators * arch.images_per_batch * arch.clock_hz / fastest * (1 + 1e-12)


def test_area_metric_is_the_total_not_the_sum_of_all_entries():
    wl = random_workload(7, images=2)
    arch = tiny_arch(5, "atsn", accelerators=3)
    res = simulate(arch, wl)
    area = res.area_um2
    components = sum(v for k, v in area.items() if k not in ("per_accelerator_total", "total"))
    assert area["per_accelerator_total"] == pytest.approx(components)
    assert area["total"] == pytest.approx(3 * components)
    assert res.metrics()["area_mm2"] == pytest.approx(area["total"] * 1e-6)


@pytest.mark.parametrize("seed", range(6))
def test_doubling_a_one_bank_weight_buffer_never_costs_cycles_on_one_accelerator(seed):
    """Section 4 phases 1-2: a buffer twice as big fetches each fold in half as many reads (or keeps all weights).

    With one bank a fold's buffer-fulls are read and streamed in turn, and only its first read may overlap the
    previous fold's compute, so merging two reads saves a DRAM latency. (With two banks a buffer-full's read
    overlaps the previous one's stream, so finer buffer-fulls can pipeline better, and a read issued ahead can
    delay a later membrane transfer on the FIFO channel: neither is monotone, section 13. Nor is the step to
    resident weights: their initial load is one read that nothing overlaps, where reads ahead hide under compute.)"""
    wl = random_workload(400 + seed, images=2, max_channels=16)
    cycles, dram_reads, resident = [], [], []
    size = 16
    while not resident or not resident[-1]:
        one_bank = {"global_buffers.weight.bytes": size, "global_buffers.weight.banks": 1}
        res = simulate(tiny_arch(seed, accelerators=1, **one_bank), wl)
        cycles.append(res.total_cycles)
        dram_reads.append(res.totals["dram_read_bytes"])
        resident.append(res.mapping["weights_resident"])
        assert (res.mapping["weight_fetch_reads"] == 0) == resident[-1]
        size *= 2
    assert len(cycles) >= 3, "the case must cover split, whole and resident fetches"
    fetched = cycles[:-1]  # every size before the last keeps fetching
    assert all(b <= a for a, b in zip(fetched[:-1], fetched[1:], strict=True)), cycles
    assert cycles[0] > cycles[-2], "16 B buffer-fulls must cost DRAM latency"
    assert dram_reads[-1] <= dram_reads[-2]


@pytest.mark.parametrize("seed", range(3))
def test_doubling_the_clock_keeps_cycles_and_dynamic_energy_and_halves_time_and_leakage(seed):
    """docs/microarchitecture.md section 13, last paragraph: with the DRAM given in cycles, clock_hz scales time and
    every leakage energy exactly (the DRAM's background power by the channels its GB/s need) and nothing else."""
    wl = random_workload(500 + seed, images=3)
    # an analog PE's ADC grows with the conversion rate it must sustain (docs/energy.md), and with it the tiles and
    # the NoC's links: that is checked below; here the ADC's area is made rate-independent
    fixed_adc = {"tech.adc_area_rate_exponent": 0} if tiny_arch(seed).pe.accumulation == "analog" else {}
    arch = tiny_arch(seed, **fixed_adc)
    slow = simulate(arch, wl)
    fast = simulate(tiny_arch(seed, clock_hz=2 * arch.clock_hz, **fixed_adc), wl)
    assert fast.counters() == slow.counters()  # cycles, images' start/end, every action count
    assert fast.energy["dynamic_pJ"] == slow.energy["dynamic_pJ"]
    assert fast.area_um2 == slow.area_um2
    assert fast.metrics()["fps"] == pytest.approx(2 * slow.metrics()["fps"], rel=1e-12)
    assert fast.metrics()["latency_ms"]["mean"] == pytest.approx(slow.metrics()["latency_ms"]["mean"] / 2, rel=1e-12)
    assert fast.seconds == pytest.approx(slow.seconds / 2, rel=1e-12)
    for comp, leak_pJ in slow.energy["leakage_pJ"].items():
        if comp != "dram":  # the same on-chip power over half the time
            assert fast.leakage_mW[comp] == slow.leakage_mW[comp]
            assert fast.energy["leakage_pJ"][comp] == pytest.approx(leak_pJ / 2, rel=1e-12, abs=1e-9)
    dram_pJ = fast.leakage_mW["dram"] * 1e-3 * fast.seconds * 1e12  # twice the GB/s: its own channel count
    assert fast.energy["leakage_pJ"]["dram"] == pytest.approx(dram_pJ, rel=1e-12, abs=1e-9)


def test_doubling_an_analog_clock_grows_only_the_adc_area_and_no_energy_per_action():
    """An analog PE's ADC converts twice as fast, so its area grows by 2 ** adc_area_rate_exponent; every dynamic
    energy stays (until hardware model 12 the tile pitch followed the ADC area, and the NoC's energy per byte-hop
    moved with the clock, against 'energy per action never depends on the clock')."""
    wl = random_workload(501, images=3)
    arch = tiny_arch(1, kind="dtsnn")
    slow = simulate(arch, wl)
    fast = simulate(tiny_arch(1, kind="dtsnn", clock_hz=2 * arch.clock_hz), wl)
    assert fast.counters() == slow.counters()
    growth = 2 ** arch.tech.value("adc_area_rate_exponent")
    assert fast.area_um2["adc"] == pytest.approx(slow.area_um2["adc"] * growth, rel=1e-12)
    assert fast.area_um2["adc"] > slow.area_um2["adc"] > 0
    totals = ("adc", "per_accelerator_total", "total")
    assert {k: v for k, v in fast.area_um2.items() if k not in totals} == \
        {k: v for k, v in slow.area_um2.items() if k not in totals}
    assert fast.energy["dynamic_pJ"] == slow.energy["dynamic_pJ"]
