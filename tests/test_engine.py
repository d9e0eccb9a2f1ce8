"""The fast engine: stream recurrence == coupled per-cycle kernel, exit-unit closed form == per-cycle kernel,
brute-force slice witness, functional equality, chunking invariance, determinism, DRAM arbitration and
per-unit cycle accounting."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from kernel_oracles import closed_form_pe_phase, exact_fold_phase, exact_pe_phase, stream_fold_phase

from satasim_atsn.hw import engine, engine_model, engine_programs
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.mapping import build_mapping
from satasim_atsn.traces.functional import functional_trace
from satasim_atsn.workload.synthetic import random_workload

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
        "global_buffers.input.bytes": int(rng.choice([16, 32768, 32768])),
        "global_buffers.output.bytes_per_cycle": int(rng.choice([2, 32])),
        "dram.bytes_per_cycle": int(rng.choice([4, 16])),
        "dram.latency_cycles": int(rng.choice([0, 7, 100])),
    }
    sets["exit_unit.prediction"] = str(rng.choice(["membrane_sum", "membrane"]))
    if kind == "dtsnn":
        sets["pe.adc_cycles_per_conversion"] = int(rng.integers(1, 4))
    if kind == "atsn":
        sets["exit_unit.cl_init"] = 0.9
        sets["exit_unit.tau_cl"] = 0.95
    if kind == "dtsnn":
        sets["exit_unit.theta"] = 0.5
    # two 16-bit words per image of a batch: a first layer's membrane and constant current (section 5)
    sets["pe.data_memory_bytes"] = max(sets["pe.data_memory_bytes"], 4 * sets["images_per_batch"])
    sets.update(extra)
    return load_arch(ARCHS / KIND_FILE[kind], [f"{k}={v}" for k, v in sets.items()])


# ------------------------------------------------------------------------------------------
# the multicast stream: event recurrence == literal per-cycle model of the coupled fold
# ------------------------------------------------------------------------------------------
def random_stream_case(rng):
    """A random fold: 1-6 PEs (some without neurons), 1-3 images, spikes with 1..all destinations."""
    P = int(rng.integers(1, 7))
    b = int(rng.integers(1, 4))
    neurons = rng.integers(0, 5, size=P).astype(np.int64)
    neurons[rng.random(P) < 0.2] = 0
    fire = int(rng.integers(1, 4))
    adders = int(rng.integers(1, 4))
    holders = np.flatnonzero(neurons > 0)
    images, ptr, pe, cost = [], [0], [], []
    if holders.size:
        for img in np.sort(rng.integers(0, b, size=int(rng.integers(0, 30)))):
            dsts = holders[rng.random(holders.size) < rng.choice([0.3, 0.7, 1.0])]
            if dsts.size == 0:
                dsts = holders[:1]
            for p in dsts:
                pe.append(int(p))
                cost.append(-(-int(rng.integers(1, 3 * neurons[p] + 1)) // adders))
            ptr.append(len(pe))
            images.append(int(img))
    spikes = rng.random((b, P, max(1, int(neurons.max())))) < 0.5
    arr = [np.array(v, dtype=np.int64) for v in (images, ptr, pe, cost)]
    return (*arr, b, neurons, fire, spikes)


@pytest.mark.parametrize("seed,cases", [(7, 1500), pytest.param(8, 6000, marks=pytest.mark.slow)])
def test_stream_recurrence_equals_per_cycle_fold_model_on_random_cases(seed: int, cases: int) -> None:
    """The fast recurrence (and its paced fast path) equals the per-cycle fold model on random folds: 1,500 in
    the default run, 6,000 more in the slow part."""
    rng = np.random.default_rng(seed)
    blocked = stalled = fast_path = 0
    for _ in range(cases):
        images, ptr, pe, cost, b, neurons, fire, spikes = random_stream_case(rng)
        start = int(rng.integers(0, 7))
        r = int(rng.integers(1, 4))
        in_cap, out_cap = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        exact = exact_fold_phase(images, ptr, pe, cost, b, neurons, fire, spikes, start, r, in_cap, out_cap)
        fast = stream_fold_phase(images, ptr, pe, cost, b, neurons, fire, start, r, in_cap)
        for got, want in zip(fast, exact, strict=True):
            np.testing.assert_array_equal(got, want, err_msg=str((images, ptr, pe, cost, b, neurons, fire, start)))
        unblocked = stream_fold_phase(images, ptr, pe, cost, b, neurons, fire, start, r, 64)  # never full
        blocked += not np.array_equal(unblocked[0], fast[0])  # head-of-line blocking changed some D_p
        stalled += int(exact[2].sum() > 0)
        if np.bincount(pe, minlength=neurons.size).max(initial=0) <= in_cap:  # the fast path applies
            paced = stream_fold_phase(images, ptr, pe, cost, b, neurons, fire, start, r, in_cap, paced=True)
            for got, want in zip(paced, exact, strict=True):
                np.testing.assert_array_equal(got, want)
            fast_path += 1
    assert blocked > cases // 8 and stalled > cases // 4 and fast_path > cases // 13, (blocked, stalled, fast_path)


def test_stream_hand_case_head_of_line_blocking():
    # PE 0 (1 neuron) gets a 5-cycle spike then a spike shared with PE 1; PE 1 (1 neuron) gets 1-cycle spikes.
    # Buffers hold 1 spike, L = 0, r = 1. Spike 0 -> PE0 at cycle 0 (popped 1, busy 1..5); spike 1 -> PE0, PE1
    # at cycle 1; spike 2 -> PE1 must wait until PE1 popped spike 1 (cycle 2): delivered 2, popped 3.
    images = np.array([0, 0, 0], dtype=np.int64)
    ptr = np.array([0, 1, 3, 4], dtype=np.int64)
    pe = np.array([0, 0, 1, 1], dtype=np.int64)
    cost = np.array([5, 1, 1, 1], dtype=np.int64)
    neurons = np.array([1, 1], dtype=np.int64)
    spikes = np.ones((1, 2, 1), dtype=bool)
    d, busy, stall_in, stall_out = exact_fold_phase(images, ptr, pe, cost, 1, neurons, 1, spikes, 0, 1, 1, 1)
    # PE0: stall 0, busy 1..5, pops spike 1 at 6, fires at 7 -> D = 8; PE1: stall 0..1, pops 2, pops 3, fires 4
    assert d.tolist() == [8, 5] and busy.tolist() == [7, 3] and stall_in.tolist() == [1, 2]
    assert stall_out.tolist() == [0, 0]
    got = stream_fold_phase(images, ptr, pe, cost, 1, neurons, 1, 0, 1, 1)
    assert [g.tolist() for g in got] == [[8, 5], [7, 3], [1, 2], [0, 0]]
    # with PE 1's buffer blocked by a shared spike: swap so the shared spike waits on PE0's full buffer
    ptr2 = np.array([0, 1, 2, 4], dtype=np.int64)
    pe2 = np.array([0, 0, 0, 1], dtype=np.int64)
    cost2 = np.array([5, 1, 1, 1], dtype=np.int64)
    d2, _, st2, _ = exact_fold_phase(images, ptr2, pe2, cost2, 1, neurons, 1, spikes, 0, 1, 1, 1)
    # spike 2 (PE0 + PE1) needs room at PE0, which pops spike 1 only at cycle 6: PE1 starves until 7
    assert d2.tolist() == [9, 9] and st2.tolist() == [1, 7]


# ------------------------------------------------------------------------------------------
# the exit unit (own link): closed form == per-cycle kernel
# ------------------------------------------------------------------------------------------
def test_exit_unit_closed_form_equals_per_cycle_kernel_on_random_cases():
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
    model = engine_model.EngineModel(arch, mapping, wl)
    trace = functional_trace(wl, arch.exit_policy(), arch.policy_name, 0, wl.num_images)
    b = arch.images_per_batch
    works = engine_programs.build_chunk_work(model, trace, 0, b)
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
                        offs = fold.pe_offsets
                        P_neurons = [list(range(int(offs[p]), int(offs[p + 1]))) for p in range(P)]
                        stream_img, ptr, dst, cost = [], [0], [], []
                        for k, i in enumerate(act):
                            for spec in g.inputs:
                                for j in _delivered(trace, spec, i, t):
                                    for p in range(P):
                                        cov = _coverage(spec, g, P_neurons[p], j)
                                        if cov:
                                            dst.append(p)
                                            cost.append(math.ceil(cov / arch.pe.adders))
                                    if len(dst) > ptr[-1]:  # spikes without a destination are not streamed
                                        ptr.append(len(dst))
                                        stream_img.append(k)
                        neurons = np.diff(fold.pe_offsets).astype(np.int64)
                        out = np.zeros((len(act), P, max(1, int(neurons.max()))), dtype=bool)
                        for k, i in enumerate(act):
                            flat = trace.spikes[g.name][i, t - 1].reshape(-1)
                            for p in range(P):
                                lo, hi = int(fold.pe_offsets[p]), int(fold.pe_offsets[p + 1])
                                out[k, p, : hi - lo] = flat[lo:hi]
                        d_p, bz, st, so = exact_fold_phase(
                            np.array(stream_img, dtype=np.int64),
                            np.array(ptr, dtype=np.int64),
                            np.array(dst, dtype=np.int64),
                            np.array(cost, dtype=np.int64),
                            len(act),
                            neurons,
                            fire,
                            out,
                            (mapping.rows + mapping.cols - 2) * arch.noc.hop_cycles,
                            r,
                            in_cap,
                            out_cap,
                        )
                        assert so.sum() == 0
                        busy += bz
                        stall += st
                        d_max = int(d_p.max())
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
                            math.ceil(s_out / r),  # one link into the output buffer (hardware model 7)
                        )
                        # a group reading only the image streams its weights at t = 1 only, then only its
                        # channels' threshold words, ceil(pe.vmem_bits / 8) bytes each (sections 3 and 5)
                        image_only = all(spec.encoding == "image" for spec in g.inputs)
                        word = -(-arch.pe.vmem_bits // 8)
                        streamed = fold.weight_bytes if t == 1 or not image_only else fold.channels * word * g.spiking
                        stream = _stream_cycles(arch, mapping, streamed)
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
                        d + decide + _stream_cycles(arch, mapping, g.weight_bytes)
                    )
        np.testing.assert_array_equal(work.pe_busy, busy)
        np.testing.assert_array_equal(work.pe_stall_input, stall)
        np.testing.assert_array_equal(work.group_local, local)
        assert (work.exit_busy, work.exit_stall_input) == (exit_busy, exit_stall)


def _stream_cycles(arch, mapping, nbytes: int) -> int:
    """Weight-stream cycles of ``nbytes`` (section 4, phase 2): the multicast enters the mesh over one link, and a
    fetched fold streams one weight-buffer-full at a time, each rounded up to whole cycles."""
    rate = min(arch.global_buffers.weight.bytes_per_cycle, arch.noc.link_bytes_per_cycle)
    chunk = max(nbytes, 1) if mapping.weights_resident else arch.global_buffers.weight.bytes
    return sum(math.ceil(min(chunk, nbytes - k) / rate) for k in range(0, nbytes, chunk))


@pytest.mark.parametrize("seed", range(12))
def test_engine_compute_phases_match_brute_force_witness(seed):
    wl = random_workload(seed, images=int(1 + seed % 4), max_channels=4, size=4 if seed % 2 else 6)
    _witness(tiny_arch(seed), wl)


@pytest.mark.parametrize("seed", range(4))
def test_pe_classes_and_large_buffers_match_brute_force_witness(seed):
    # 4x4 arrays: many PEs share coverage (one class); 1 KiB buffers exceed every stream (ring truncation)
    wl = random_workload(40 + seed, images=3, max_channels=4, size=4)
    _witness(tiny_arch(seed, **{"array.rows": 4, "array.cols": 4, "pe.input_spike_buffer_bytes": 1024}), wl)
    mapping = build_mapping(tiny_arch(seed, **{"array.rows": 4, "array.cols": 4}), wl)
    model = engine_model.EngineModel(tiny_arch(seed, **{"array.rows": 4, "array.cols": 4}), mapping, wl)
    assert any(fm.cls_members.max() > 1 for folds in model.folds.values() for fm in folds)


# ------------------------------------------------------------------------------------------
# whole-run properties
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(6))
def test_functional_results_equal_the_naive_witness(seed):
    """Exit steps and both predictions of a run, recomputed from the naive per-neuron witness's membranes.

    The engine takes its functional results from snn/forward.py's trace; here they are rebuilt from
    test_snn_forward.naive_forward (written from the format's docstring) with the exit rule, eq. 10
    and the hardware prediction (argmax of the running membrane sum, or of the membrane alone) applied by hand,
    so a wrong copy, a wrong image order or a wrong exit
    would fail.
    """
    from test_snn_forward import naive_forward

    from satasim_atsn.snn.forward import QuantisedNetwork

    wl = random_workload(50 + seed, images=5)
    arch = tiny_arch(seed)
    result = engine.simulate(arch, wl)
    policy = arch.exit_policy()
    scale = QuantisedNetwork(wl).scale_per_t()
    mode = wl.layers[-1]["output_mode"]
    x = wl.inputs()
    T = wl.timesteps
    for i in range(wl.num_images):
        membranes = naive_forward(wl, x[i])[0]  # [T, C] integer output membranes
        exit_t = T
        for t in range(1, T):
            m = membranes[t - 1][None, :]
            if policy.decide(t, T, m.astype(np.float64) * scale[t - 1], m, float(scale[t - 1]))[0]:
                exit_t = t
                break
        logits = membranes[:exit_t].astype(np.float64) * scale[:exit_t, None]
        if mode == "membrane":  # eq. 10: argmax of the running mean of the softmax
            z = np.exp(logits - logits.max(axis=1, keepdims=True))
            pred = int((z / z.sum(axis=1, keepdims=True)).sum(axis=0).argmax())
        else:  # eq. 5: argmax of the mean output
            pred = int(logits[-1].argmax())
        assert result.exit_t[i] == exit_t, f"image {i}"
        assert result.pred[i] == pred, f"image {i}"
        running = np.asarray(membranes[:exit_t], dtype=np.int64).sum(axis=0)  # exit_unit.prediction: membrane_sum
        hw = running if (arch.exit_unit.prediction == "membrane_sum" and mode == "membrane") else membranes[exit_t - 1]
        assert result.pred_hw[i] == int(np.asarray(hw).argmax()), f"image {i}"
    labels = wl.labels()
    assert result.metrics()["accuracy"]["software"] == pytest.approx(float((result.pred == labels).mean()))


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


@pytest.mark.parametrize("seed", [3, 8])
def test_a_fold_bigger_than_the_weight_buffer_is_fetched_one_buffer_full_at_a_time(seed):
    """Section 4 phases 1-2: ceil(W_f / B) DRAM reads per fetch, each holding the channel for one DRAM latency
    more; with one bank a read waits for the previous buffer-full's stream, so a smaller buffer costs cycles."""
    wl = random_workload(seed, images=2, timesteps=2, max_channels=8)
    common = {"accelerators": 1, "images_per_batch": 1, "dram.latency_cycles": 100, "dram.bytes_per_cycle": 16,
              "global_buffers.weight.bytes_per_cycle": 32, "global_buffers.weight.banks": 1}
    small = tiny_arch(seed, "conventional", **common, **{"global_buffers.weight.bytes": 32})
    mapping = build_mapping(small, wl)
    fetches = [f.weight_bytes for g in mapping.pe_groups for f in g.folds] + [mapping.exit_group.weight_bytes]
    largest = max(fetches)
    assert largest > 32 and mapping.total_weight_bytes > largest, "the case must split some fetch"
    big = tiny_arch(seed, "conventional", **common, **{"global_buffers.weight.bytes": largest})
    res_small, res_big = engine.simulate(small, wl), engine.simulate(big, wl)
    assert not res_small.mapping["weights_resident"] and not res_big.mapping["weights_resident"]
    # the count `satasim run` reports: one read per 32 B buffer-full of every fetch, against one per fetch
    assert res_small.mapping["weight_fetch_reads"] == sum(-(-w // 32) for w in fetches)
    assert res_big.mapping["weight_fetch_reads"] == sum(1 for w in fetches if w > 0)
    passes = wl.num_images * wl.timesteps
    extra_reads = (res_small.mapping["weight_fetch_reads"] - res_big.mapping["weight_fetch_reads"]) * passes
    # 32 B is a whole number of DRAM beats, so the channel is busy for exactly the extra reads' latency more
    assert res_small.dram_busy_cycles - res_big.dram_busy_cycles == 100 * extra_reads
    # one bank: a fold's buffer-fulls are read and streamed in turn, and only its first read can overlap the
    # previous fold's compute (which hides at most as much of the single read of the big buffer), so every
    # extra read's latency shows in the run's cycles
    assert res_small.total_cycles - res_big.total_cycles >= 100 * extra_reads
    assert res_small.totals["dram_read_bytes"] == res_big.totals["dram_read_bytes"]
    assert res_small.totals["weight_glb_write_bytes"] == res_big.totals["weight_glb_write_bytes"]


def test_bit_plane_counts_do_not_wrap_without_the_jit():
    """Under NUMBA_DISABLE_JIT (a debugging session) a uint8 pixel made the running bit count uint8 (NumPy 2
    promotion), which wrapped past 255 and ended in an IndexError; the JIT and the Python versions agree now."""
    from satasim_atsn.hw import kernels

    pixels = np.full((2, 40), 0xFF, dtype=np.uint8)
    jit_counts, jit_positions = kernels.plane_positions(pixels, 2, 2, 40, 0)
    py_counts, py_positions = kernels.plane_positions.py_func(pixels, 2, 2, 40, 0)
    assert jit_counts.tolist() == py_counts.tolist() == [320, 0, 320, 0]
    assert np.array_equal(jit_positions, py_positions)


@pytest.mark.parametrize("dataflow", ["timestep_major", "layer_major"])
def test_a_pooled_map_beyond_the_spike_buffers_is_spilled_like_any_map(dataflow):
    """Section 4 phase 6 and 12.3: every group's output map beyond the smaller spike buffer goes to DRAM; the
    max-pool groups' maps never did (session 24's audit: 76 B written where 96 B spilled). With resident
    membranes and weights, the DRAM writes are exactly the spilled spike bytes, counted here from the forward."""
    from satasim_atsn.snn.forward import run_forward

    for seed in range(40):
        wl = random_workload(seed, images=2, timesteps=3, residual=False)
        if any(layer["type"] == "maxpool" for layer in wl.layers):
            break
    buffer = 4
    arch = tiny_arch(seed, "conventional", **{
        "accelerators": 1, "images_per_batch": 1, "dataflow": dataflow, "pe.data_memory_bytes": 4096,
        "global_buffers.weight.bytes": 100000, "global_buffers.input.bytes": buffer,
        "global_buffers.output.bytes": buffer})
    res = engine.simulate(arch, wl)
    assert res.mapping["weights_resident"] and res.mapping["membranes_resident"]
    spikes = run_forward(wl, record_spikes=True).spikes
    sb = arch.spike_address_bytes
    expected = pooled = 0
    for name, s in spikes.items():
        if name == "input" or wl.layer(name)["type"] in ("flatten", "avgpool"):  # views of a map, no group's own
            continue
        per_step = s.reshape(s.shape[0], s.shape[1], -1).sum(axis=2).astype(np.int64) * sb  # [N, T] bytes
        if dataflow == "timestep_major":
            spill = np.maximum(0, per_step - buffer).sum()
        else:  # a group's whole map over T is written before the next group starts
            spill = np.maximum(0, per_step.sum(axis=1) - buffer).sum()
        expected += int(spill)
        if wl.layer(name)["type"] == "maxpool":
            pooled += int(spill)
    assert pooled > 0, "the case must spill a pooled map"
    assert res.totals["dram_write_bytes"] == expected
