"""The fast engine: closed form == per-cycle kernel, brute-force slice witness, functional equality,
chunking invariance, determinism, DRAM arbitration and per-unit cycle accounting."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.hw import engine
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.kernels import closed_form_pe_phase, exact_pe_phase
from satasim_atsn.hw.mapping import build_mapping
from satasim_atsn.snn.forward import run_forward
from satasim_atsn.workload.synthetic import random_workload
from satasim_atsn.workload.trace import functional_trace

ARCHS = Path(__file__).resolve().parent.parent / "archs"
KIND_FILE = {"atsn": "atsn16x16.yaml", "dtsnn": "dtsnn16x16.yaml", "conventional": "conventional16x16.yaml"}


def tiny_arch(seed: int, kind: str | None = None, **extra):
    """A small random architecture: 2-3 rows, 2-4 cols, tiny buffers and memories, 1-3 accelerators."""
    rng = np.random.default_rng(1000 + seed)
    kind = kind or ["atsn", "dtsnn", "conventional"][seed % 3]
    sets = {
        "array.rows": int(rng.integers(2, 4)),
        "array.cols": int(rng.integers(2, 5)),
        "accelerators": int(rng.integers(1, 4)),
        "images_per_batch": int(rng.integers(1, 4)),
        "pe.input_spike_buffer_bytes": int(rng.choice([2, 4, 6])),
        "pe.output_spike_buffer_bytes": int(rng.choice([2, 4])),
        "pe.data_memory_bytes": int(rng.choice([8, 16, 64, 1024])),
        "pe.adders": int(rng.choice([1, 1, 2, 3])),
        "exit_unit.input_spike_buffer_bytes": int(rng.choice([2, 4])),
        "exit_unit.adders": int(rng.choice([1, 2])),
        "noc.link_bytes_per_cycle": int(rng.choice([2, 3, 4])),
        "noc.hop_cycles": int(rng.integers(0, 3)),
        "global_buffers.weight.bytes": int(rng.choice([64, 100000])),
        "global_buffers.weight.bytes_per_cycle": int(rng.choice([4, 32])),
        "global_buffers.input.bytes_per_cycle": int(rng.choice([2, 32])),
        "global_buffers.output.bytes": int(rng.choice([16, 32768])),
        "global_buffers.output.bytes_per_cycle": int(rng.choice([2, 32])),
        "dram.bytes_per_cycle": int(rng.choice([4, 16])),
        "dram.latency_cycles": int(rng.choice([0, 7, 100])),
    }
    if kind == "dtsnn":
        sets["pe.adc_cycles_per_conversion"] = int(rng.integers(1, 4))
    if kind == "atsn":
        sets["exit_unit.cl_init"] = 0.9
        sets["exit_unit.tau_cl"] = 0.95
    if kind == "dtsnn":
        sets["exit_unit.theta"] = 0.5
    sets.update(extra)
    return load_arch(ARCHS / KIND_FILE[kind], [f"{k}={v}" for k, v in sets.items()])


# ------------------------------------------------------------------------------------------
# closed form == per-cycle kernel
# ------------------------------------------------------------------------------------------
def test_closed_form_equals_per_cycle_kernel_on_random_cases():
    rng = np.random.default_rng(7)
    cases = 0
    for _ in range(4000):
        b = int(rng.integers(1, 5))
        neurons = int(rng.integers(0, 6))
        fire = int(rng.integers(1, 4))
        per_image = np.zeros(b, dtype=np.int64) if neurons == 0 else rng.integers(0, 7, size=b) * (rng.random(b) < 0.7)
        image = np.repeat(np.arange(b), per_image).astype(np.int64)
        adders = int(rng.integers(1, 4))
        cost = -(-rng.integers(1, 9, size=image.size) // adders).astype(np.int64)
        spikes = rng.random((b, max(neurons, 1))) < 0.6
        start = int(rng.integers(0, 9))
        r = int(rng.integers(1, 3))
        in_cap, out_cap = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        exact = exact_pe_phase(image, cost, b, neurons, fire, spikes, start, r, in_cap, out_cap)
        closed = closed_form_pe_phase(image, cost, b, neurons, fire, start)
        assert tuple(exact) == tuple(closed), (b, neurons, fire, per_image, cost, start, r, in_cap, out_cap)
        cases += exact[2] > 0  # stalls really happen in the sample
    assert cases > 100


def test_per_cycle_kernel_small_hand_case():
    # 2 spikes (3 + 1 cycles) arrive from cycle 2 (delivered at 2, popped at 3); then 2 neurons fire
    image = np.array([0, 0], dtype=np.int64)
    cost = np.array([3, 1], dtype=np.int64)
    spikes = np.array([[True, True]])
    d, busy, stall_in, stall_out = exact_pe_phase(image, cost, 1, 2, 1, spikes, 2, 1, 1, 1)
    assert (d, busy, stall_in, stall_out) == (9, 6, 3, 0)


# ------------------------------------------------------------------------------------------
# brute-force witness of the compute phases, straight from section 4.1's definitions
# ------------------------------------------------------------------------------------------
def _delivered(trace, spec, i, t):
    """Spikes of one group input for image i at t, in delivery order: list of flat indices."""
    if spec.encoding == "image":
        if t != 1:
            return []
        x = trace.inputs[i].reshape(-1).astype(np.int64)
        return [int(j) for k in range(8) for j in np.flatnonzero((x >> k) & 1)]
    if spec.encoding == "frames":
        return [int(j) for j in np.flatnonzero(trace.inputs[i, t - 1].reshape(-1))]
    return [int(j) for j in np.flatnonzero(trace.spikes[spec.source][i, t - 1].reshape(-1))]


def _coverage(spec, group, neurons, j):
    """Number of ``neurons`` (flat output indices) whose receptive field holds input index j."""
    if spec.coverage == "linear":
        return len(neurons)
    if spec.coverage == "identity":
        return sum(1 for n in neurons if n == j)
    _, h, w = spec.shape
    y, x = (j % (h * w)) // w, j % w
    _, ho, wo = group.out_shape
    count = 0
    for n in neurons:
        oy, ox = (n % (ho * wo)) // wo, n % wo
        y0, x0 = oy * spec.stride - spec.padding, ox * spec.stride - spec.padding
        count += y0 <= y < y0 + spec.kernel and x0 <= x < x0 + spec.kernel
    return count


def _witness(arch, wl):
    mapping = build_mapping(arch, wl)
    model = engine._Model(arch, mapping, wl)
    trace = functional_trace(wl, arch.exit_policy(), arch.policy_name, 0, wl.num_images)
    b = arch.images_per_batch
    works = engine._build_chunk_work(model, trace, 0, b)
    sb, P = mapping.spike_bytes, mapping.num_pes
    r = mapping.spikes_per_cycle
    in_cap = arch.pe.input_spike_buffer_bytes // sb
    out_cap = arch.pe.output_spike_buffer_bytes // sb
    fire = model.fire_cycles
    for bi, work in enumerate(works):
        imgs = list(range(bi * b, min((bi + 1) * b, wl.num_images)))
        busy = np.zeros(P, dtype=np.int64)
        stall = np.zeros(P, dtype=np.int64)
        local = np.zeros(len(mapping.groups), dtype=np.int64)
        exit_busy = exit_stall = 0
        for t in range(1, int(trace.exit_t[imgs].max()) + 1):
            act = [i for i in imgs if trace.exit_t[i] >= t]
            for g in mapping.groups:
                if g.kind == "pe":
                    for fold in g.folds:
                        d_max = 0
                        for p in range(P):
                            lo, hi = int(fold.pe_offsets[p]), int(fold.pe_offsets[p + 1])
                            neurons = list(range(lo, hi))
                            seq_img, seq_cost = [], []
                            for k, i in enumerate(act):
                                for spec in g.inputs:
                                    for j in _delivered(trace, spec, i, t):
                                        cov = _coverage(spec, g, neurons, j)
                                        if cov:
                                            seq_img.append(k)
                                            seq_cost.append(math.ceil(cov / arch.pe.adders))
                            out = np.zeros((len(act), max(hi - lo, 1)), dtype=bool)
                            for k, i in enumerate(act):
                                out[k, : hi - lo] = trace.spikes[g.name][i, t - 1].reshape(-1)[lo:hi]
                            d, bz, st, so = exact_pe_phase(
                                np.array(seq_img, dtype=np.int64),
                                np.array(seq_cost, dtype=np.int64),
                                len(act),
                                hi - lo,
                                fire,
                                out,
                                int(mapping.pe_hops[p]) * arch.noc.hop_cycles,
                                r,
                                in_cap,
                                out_cap,
                            )
                            assert so == 0
                            busy[p] += bz
                            stall[p] += st
                            d_max = max(d_max, d)
                        s_in = 0
                        for i in act:
                            for spec in g.inputs:
                                if spec.encoding == "image":
                                    s_in += spec.size if t == 1 else 0
                                else:
                                    s_in += len(_delivered(trace, spec, i, t)) * sb
                        s_out = sum(
                            int(trace.spikes[g.name][i, t - 1].reshape(-1)[fold.start : fold.stop].sum()) for i in act
                        )
                        d_slice = max(
                            d_max,
                            math.ceil(s_in / arch.global_buffers.input.bytes_per_cycle),
                            math.ceil(s_out * sb / arch.global_buffers.output.bytes_per_cycle),
                        )
                        stream = math.ceil(fold.weight_bytes / arch.global_buffers.weight.bytes_per_cycle)
                        local[g.index] += d_slice + stream
                elif g.kind == "pool":
                    s_in = sum(int(trace.spikes[g.inputs[0].source][i, t - 1].sum()) for i in act)
                    s_out = sum(int(trace.spikes[g.name][i, t - 1].sum()) for i in act)
                    local[g.index] += math.ceil((s_in + s_out) * sb / arch.global_buffers.output.bytes_per_cycle)
                else:
                    C = mapping.num_classes
                    seq_img, seq_cost = [], []
                    for k, i in enumerate(act):
                        for _ in _delivered(trace, g.inputs[0], i, t):
                            seq_img.append(k)
                            seq_cost.append(math.ceil(C / arch.exit_unit.adders))
                    d, bz, st, _ = exact_pe_phase(
                        np.array(seq_img, dtype=np.int64),
                        np.array(seq_cost, dtype=np.int64),
                        len(act),
                        C,
                        1,
                        np.zeros((len(act), C), dtype=bool),
                        mapping.exit_hops * arch.noc.hop_cycles,
                        r,
                        arch.exit_unit.input_spike_buffer_bytes // sb,
                        1,
                    )
                    decide = len(act) * model.decide_cycles if t < mapping.timesteps else 0
                    exit_busy += bz + decide
                    exit_stall += st
                    local[g.index] += (
                        d + decide + math.ceil(g.weight_bytes / arch.global_buffers.weight.bytes_per_cycle)
                    )
        np.testing.assert_array_equal(work.pe_busy, busy)
        np.testing.assert_array_equal(work.pe_stall_input, stall)
        np.testing.assert_array_equal(work.group_local, local)
        assert (work.exit_busy, work.exit_stall_input) == (exit_busy, exit_stall)


@pytest.mark.parametrize("seed", range(12))
def test_engine_compute_phases_match_brute_force_witness(seed):
    wl = random_workload(seed, images=int(1 + seed % 4), max_channels=4, size=4 if seed % 2 else 6)
    _witness(tiny_arch(seed), wl)


# ------------------------------------------------------------------------------------------
# whole-run properties
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_functional_results_equal_run_forward(seed):
    wl = random_workload(50 + seed, images=5)
    arch = tiny_arch(seed)
    result = engine.simulate(arch, wl)
    ref = run_forward(wl, policy=arch.exit_policy())
    np.testing.assert_array_equal(result.exit_t, ref.exit_t)
    np.testing.assert_array_equal(result.pred, ref.pred)
    np.testing.assert_array_equal(result.pred_hw, ref.pred_hw)
    assert result.metrics()["accuracy"]["software"] == pytest.approx(float((ref.pred == wl.labels()).mean()))


@pytest.mark.parametrize("seed", range(5))
def test_chunking_does_not_change_counters(seed):
    wl = random_workload(80 + seed, images=7)
    arch = tiny_arch(seed + 3)
    whole = engine.simulate(arch, wl).counters()
    step = arch.images_per_batch
    pieces = engine.simulate(arch, wl, chunk_images=step).counters()
    assert whole == pieces


def test_results_are_deterministic(tmp_path):
    wl = random_workload(3, images=4)
    arch = tiny_arch(4)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    engine.simulate(arch, wl).write_json(a)
    engine.simulate(arch, wl).write_json(b)
    assert a.read_bytes() == b.read_bytes()
    json.loads(a.read_text())


@pytest.mark.parametrize("seed", range(8))
def test_every_cycle_of_every_unit_is_accounted_for(seed):
    wl = random_workload(100 + seed, images=6)
    arch = tiny_arch(seed)
    res = engine.simulate(arch, wl)
    c = res.counters()
    total = c["total_cycles"]
    assert total == max(c["images"]["end_cycle"]) or arch.accelerators > 1 or res.mapping["weights_resident"]
    for acc in c["accelerators"]:
        pe = acc["pe"]
        for p in range(len(pe["busy"])):
            states = [pe[s][p] for s in ("busy", "stall_input", "stall_output", "stall_memory", "idle")]
            assert min(states) >= 0 and sum(states) == total
        eu = acc["exit_unit"]
        assert min(eu.values()) >= 0 and eu["busy"] + eu["stall_input"] + eu["idle"] == total
    assert all(e > s for s, e in zip(c["images"]["start_cycle"], c["images"]["end_cycle"], strict=True))


def test_initial_weight_loads_are_served_one_at_a_time_lowest_index_first():
    wl = random_workload(5, images=3)
    arch = tiny_arch(1, "atsn", accelerators=3, images_per_batch=1, **{"global_buffers.weight.bytes": 10**6})
    res = engine.simulate(arch, wl)
    assert res.mapping["weights_resident"]
    load = arch.dram.latency_cycles + math.ceil(res.mapping["total_weight_bytes"] / arch.dram.bytes_per_cycle)
    # every accelerator loads the weights at cycle 0; the DRAM serves acc 0, then 1, then 2
    assert res.counters()["images"]["start_cycle"] == [load, 2 * load, 3 * load]
    assert res.counters()["images"]["accelerator"] == [0, 1, 2]


def test_streamed_weights_and_spilled_membranes_reach_dram():
    wl = random_workload(11, images=3, timesteps=3)
    arch = tiny_arch(2, "conventional", **{"pe.data_memory_bytes": 8, "global_buffers.weight.bytes": 16})
    res = engine.simulate(arch, wl)
    assert not res.mapping["weights_resident"] and not res.mapping["membranes_resident"]
    totals = res.totals
    mapping = build_mapping(arch, wl)
    weights_per_t = sum(f.weight_bytes for g in mapping.pe_groups for f in g.folds) + mapping.exit_group.weight_bytes
    membranes = sum(g.neurons for g in mapping.pe_groups) * arch.pe.vmem_bits // 8
    T = wl.timesteps
    images = wl.num_images
    assert totals["dram_write_bytes"] >= images * (T - 1) * membranes
    batches = -(-images // arch.images_per_batch)
    assert totals["dram_read_bytes"] >= batches * T * weights_per_t + images * (T - 1) * membranes
