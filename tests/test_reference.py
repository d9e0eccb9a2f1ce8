"""Hand-checked cases that pin hw/reference.py to docs/microarchitecture.md, independently of the engine.

Every expected number below is derived by hand in the comments, from the document's text only.
The networks are built so that their functional spikes are obvious: a spike-frame (or direct)
input of 4 positions, a flatten, a spiking linear layer ``fc`` of 2 neurons whose neuron 0 fires
at t = 1 and neuron 1 never does, and an output layer of 2 classes.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from satasim_atsn.hw.arch import build_arch
from satasim_atsn.hw.mapping import build_mapping
from satasim_atsn.hw.reference import ACTIONS, _Unit, derive_mapping, simulate_reference
from satasim_atsn.traces.functional import functional_trace
from satasim_atsn.workload.format import Workload, validate
from satasim_atsn.workload.synthetic import random_workload

ARCH = {
    "name": "hand",
    "kind": "conventional",
    "technology": "28nm",
    "clock_hz": 500e6,
    "accelerators": 1,
    "images_per_batch": 1,
    "spike_address_bytes": 2,
    # P = 1: PE 0 at h = 0, exit unit at tile 1, h = 1; the stream starts at L = 1 * (1 + 2 - 2) = 1
    "array": {"rows": 1, "cols": 2, "exit_unit_tiles": 1},
    "pe": {
        "input_spike_buffer_bytes": 128,
        "output_spike_buffer_bytes": 128,
        "data_memory_bytes": 1024,
        "adders": 1,
        "decay": "multiplier",
        "vmem_bits": 16,
    },
    "exit_unit": {
        "kind": "none",
        "data_memory_bytes": 3072,
        "input_spike_buffer_bytes": 128,
        "output_spike_buffer_bytes": 128,
        "adders": 1,
        "vmem_bits": 32,
    },
    "noc": {"link_bytes_per_cycle": 8, "hop_cycles": 1},  # r = 4 spikes per cycle
    "global_buffers": {
        "weight": {"bytes": 4096, "banks": 2, "bytes_per_cycle": 32},
        "input": {"bytes": 32768, "banks": 2, "bytes_per_cycle": 32},
        "output": {"bytes": 32768, "banks": 2, "bytes_per_cycle": 32},
    },
    "dram": {"bytes_per_cycle": 16, "latency_cycles": 10},
}
AT_UNIT = {"kind": "at", "exp_lut_entries": 64, "cl_init": 0.9, "tau_cl": 0.9, "multipliers": 1}


def make_arch(**changes) -> object:
    """The hand-check architecture with dotted-path changes, e.g. ``**{"pe.adders": 2}``."""
    raw = copy.deepcopy(ARCH)
    for path, value in changes.items():
        node = raw
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return build_arch(raw, where="<hand arch>")


def at_arch(**changes) -> object:
    """The hand-check architecture as an ATSN accelerator (AT exit unit, shift-add PEs)."""
    raw = copy.deepcopy(ARCH)
    raw.update(kind="atsn")
    raw["pe"]["decay"] = "shift_add"
    raw["exit_unit"].update(AT_UNIT)
    for path, value in changes.items():
        node = raw
        *parents, leaf = path.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return build_arch(raw, where="<hand at arch>")


def tiny_workload(frames: np.ndarray | None = None, pixels: np.ndarray | None = None, timesteps: int = 1) -> Workload:
    """input [1, 1, 4] -> flatten -> fc (linear 4 -> 2, spiking) -> output (2 classes).

    fc neuron 0 has weights +100 and threshold 50, so it fires at t = 1 whenever any input is
    on; neuron 1 has weights -100 and never fires. Output weights make class 0 win by far.
    """
    layers = [
        {"name": "flat", "type": "flatten", "inputs": ["input"]},
        {"name": "fc", "type": "linear", "inputs": ["flat"], "out_features": 2, "spiking": True},
        {"name": "out", "type": "output", "inputs": ["fc"], "out_features": 2, "output_mode": "accumulate",
         "logit_scale": 0.2},
    ]
    in_shape = [1, 1, 4]
    w_fc = np.array([[100] * 4, [-100] * 4], dtype=np.int8)
    if frames is None:  # a direct image: the first layer must be weighted; a 1x1 conv over 4 channels
        in_shape = [4, 1, 1]
        layers = [
            {"name": "fc", "type": "conv", "inputs": ["input"], "kernel": 1, "stride": 1, "padding": 0,
             "out_channels": 2, "spiking": True},
            {"name": "flat", "type": "flatten", "inputs": ["fc"]},
            {"name": "out", "type": "output", "inputs": ["flat"], "out_features": 2, "output_mode": "accumulate",
             "logit_scale": 0.2},
        ]
        w_fc = w_fc.reshape(2, 4, 1, 1)
    meta = {
        "name": "tiny", "kind": "trained", "dataset": "synthetic", "num_classes": 2, "input_shape": in_shape,
        "timesteps": timesteps, "input_encoding": "spike_frames" if frames is not None else "direct",
        "neuron": {"tau": 0.5, "decay_shifts": [1], "v_th": 1.0},
        "quant": {"weight_bits": 8, "vmem_bits": 16, "input_shift": 0},
        "layers": layers,
    }
    arrays = {
        "w/fc": w_fc,
        "b/fc": np.zeros(2, dtype=np.int32),
        "vth/fc": np.array([50, 50], dtype=np.int32),
        "w/out": np.array([[127, 127], [-127, -127]], dtype=np.int8),
        "b/out": np.zeros(2, dtype=np.int32),
    }
    if frames is not None:
        meta["input_width"] = 4
        arrays["x"] = np.packbits(frames.astype(np.uint8), axis=-1)
        n = frames.shape[0]
    else:
        arrays["x"] = pixels.astype(np.uint8)
        n = pixels.shape[0]
    arrays["y"] = np.zeros(n, dtype=np.int64)
    return validate(Workload(meta=meta, arrays=arrays, source="<tiny>"))


def three_spikes(images: int = 1, timesteps: int = 1) -> Workload:
    """Spike frames with inputs 0, 1 and 3 on at t = 1 and nothing later."""
    frames = np.zeros((images, timesteps, 1, 1, 4), dtype=np.uint8)
    frames[:, 0, 0, 0, [0, 1, 3]] = 1
    return tiny_workload(frames=frames, timesteps=timesteps)


def pe(counters: dict, acc: int = 0, p: int = 0) -> dict:
    """The five states of PE p of accelerator acc."""
    return {k: v[p] for k, v in counters["accelerators"][acc]["pe"].items()}


def actions(counters: dict, acc: int = 0) -> dict:
    return counters["accelerators"][acc]["actions"]


# -------------------------------------------------------------------------------------------
def test_single_pe_three_spikes() -> None:
    """One PE, three input spikes, each covering its 2 neurons.

    Weights (section 3): fc 2 neurons x (4 int8 weights + a 2 B bias + a 2 B threshold, pe.vmem_bits 16) = 16 B;
    out 2 classes x (2 weights + a 4 B bias, exit_unit.vmem_bits 32) = 12 B; 28 B <= 4096 B: resident, loaded
    first: DRAM 10 + ceil(28/16) = 12 cycles [0, 12). Membranes: ceil(2/1) = 2 <= K = 512: resident.
    The streams run at min(32, 8) = 8 B per cycle (the NoC link).
    fc slice: stream ceil(16/8) = 2 cycles [12, 14). Compute: the multicast stream starts at
    L = hop_cycles * (rows + cols - 2) = 1; PE 0 is every spike's only destination; a = ceil(2/1) = 2:
      k=0 stall_input (k < L: no delivery); k=1 stall_input, the stream delivers all 3 (r = 4, room 64);
      k=2,3 spike 1; k=4,5 spike 2; k=6,7 spike 3; k=8 fire neuron 0 (spikes, pushed, drained);
      k=9 fire neuron 1 -> done, D_p = 10; GLB terms ceil(6/32) = ceil(2/32) = 1; D = 10: [14, 24).
    Exit group: stream ceil(12/8) = 2 [24, 26). Accumulate over its own link (clarification 3),
      L = 1*h(1) = 1, a = ceil(2/1) = 2: k=0 stall_input; k=1 stall_input (delivered at the end of k=1);
      k=2,3 the spike; k=4,5 the update pass of C = 2 cycles; D = 6: [26, 32). t = T: no decision.
      End = total = 32.
    PE 0: busy 8, stall_input 2, stall_memory 12 + 2 + 2 = 16, idle 6 (exit phases); 32 in all.
    """
    c = simulate_reference(make_arch(), three_spikes(), 1)
    assert c["total_cycles"] == 32
    assert c["images"] == {"start_cycle": [12], "end_cycle": [32], "exit_t": [1], "accelerator": [0]}
    assert pe(c) == {"busy": 8, "stall_input": 2, "stall_output": 0, "stall_memory": 16, "idle": 6}
    assert c["accelerators"][0]["exit_unit"] == {"busy": 4, "stall_input": 2, "idle": 26}
    a = actions(c)
    assert a["pe_accumulations"] == 6 and a["pe_fire_updates"] == 2 and a["pe_spikes_out"] == 1
    assert a["pe_input_buffer_pushes"] == 3 and a["pe_output_buffer_pushes"] == 1
    assert a["pe_dm_reads"] == a["pe_dm_writes"] == 8
    assert a["weight_glb_write_bytes"] == 28 and a["weight_glb_read_bytes"] == 28 and a["dram_read_bytes"] == 28
    assert a["spike_glb_read_bytes"] == 6 + 2 and a["spike_glb_write_bytes"] == 2
    # weights: fc's 16 B to PE 0 at h = 0, the output layer's 12 B to the exit unit at h = 1; the exit unit's
    # one delivery: 2 B x 1 hop
    assert a["noc_byte_hops"] == 0 + 12 + 2
    assert a["pe_weight_write_bytes"] == 16 and a["exit_weight_write_bytes"] == 12
    assert a["exit_accumulations"] == 2 and a["exit_updates"] == 2 and a["dram_write_bytes"] == 0
    assert c["pe_output_spikes"] == {"fc": [1]}


def test_two_adders_halve_the_accumulate_cycles() -> None:
    """With 2 adders a = ceil(2/2) = 1: k=0,1 stall, k=2..4 the spikes, k=5,6 fire: D = 7, so 3 cycles fewer."""
    c = simulate_reference(make_arch(**{"pe.adders": 2}), three_spikes(), 1)
    assert c["total_cycles"] == 29
    assert pe(c) == {"busy": 5, "stall_input": 2, "stall_output": 0, "stall_memory": 16, "idle": 6}
    assert actions(c)["pe_accumulations"] == 6  # accumulations do not depend on the adders


def test_back_pressure_one_entry_buffer() -> None:
    """A 2 B input buffer holds 1 spike: with a single destination PE the stream is throttled but the
    PE never waits longer (the coupling needs two PEs, see the head-of-line tests below).

    With a = 1 (2 adders) and r = 1 (2 B links), per section 4.1's order (act, deliver, drain), L = 1:
      k=0 stall_input (k < L); k=1 stall_input, deliver s1 (buffer 1/1); k=2 pop s1, deliver s2 (room
      made in step 1); k=3 pop s2, deliver s3; k=4 pop s3; k=5,6 fire: D = 7, as with a 64-entry buffer.
    The same rule on a unit with its own link (the exit unit, clarification 3), L = 0: the throttling is
    visible in its delivery count: after k=0 only 1 of 3 delivered.
    """
    big = simulate_reference(make_arch(**{"pe.adders": 2, "noc.link_bytes_per_cycle": 2}), three_spikes(), 1)
    small = simulate_reference(
        make_arch(**{"pe.adders": 2, "noc.link_bytes_per_cycle": 2, "pe.input_spike_buffer_bytes": 2}),
        three_spikes(), 1,
    )
    assert small == big
    unit = _Unit([1, 1, 1], [2, 2, 2], [3], [[1, 0]], 1, 0, 1, 1, 1)
    delivered, states = [], []
    for k in range(6):
        before = (unit.busy, unit.stall_input)
        unit.step(k)
        states.append("busy" if unit.busy > before[0] else "stall_input")
        delivered.append(unit.delivered)
    assert delivered == [1, 2, 3, 3, 3, 3]
    assert states == ["stall_input"] + ["busy"] * 5 and unit.finished and unit.done_cycle == 6


def test_back_pressure_with_hops_and_slow_pe() -> None:
    """Own link (the exit unit's rule), L = 2 and a 1-entry buffer with a = 3: k=0,1 stall (no delivery
    before k = L), k=2 stall (delivered at the end of k=2), k=3..5 s1 (s2 delivered at k=3 after the pop),
    k=6..8 s2, k=9..11 s3, k=12 fire: done_cycle 13; deliveries at k = 2, 3, 6."""
    unit = _Unit([3, 3, 3], [3, 3, 3], [3], [[0]], 1, 2, 1, 1, 4)
    delivered = []
    for k in range(13):
        unit.step(k)
        delivered.append(unit.delivered)
    assert delivered == [0, 0, 1, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3]
    assert (unit.busy, unit.stall_input, unit.done_cycle, unit.accumulations) == (10, 3, 13, 9)


def test_multi_cycle_fire_and_full_output_buffer() -> None:
    """An ADC fire of 3 cycles pushes in its last cycle; an output buffer that never drains past full
    is impossible here (drain r >= 1 follows every push), so stall_output stays 0."""
    unit = _Unit([], [], [0], [[1, 1]], 3, 0, 1, 1, 1)
    for k in range(6):
        unit.step(k)
    assert (unit.busy, unit.stall_output, unit.out_pushes, unit.updates, unit.done_cycle) == (6, 0, 2, 2, 6)


def test_fold_and_membrane_spill() -> None:
    """K = 2 B * 8 / 16 = 1 neuron per PE, P = 1: fc's 2 neurons make F = 2 folds; membranes are not
    resident (ceil(2/1) = 2 > 1); T = 2, nothing on the input at t = 2.

    Weights: each fold 1 neuron x (4 + 2 + 2) = 8 B, the output layer's 12 B (as above): 28 B.
    [0, 12) weight load. t = 1:
      fold 0: stream ceil(8/8) = 1 [12, 13); no fill (t = 1); compute, cov = 1 so a = 1: k=0,1 stall
        (L = 1), k=2..4 the spikes, k=5 fire neuron 0: D = 6 [13, 19); spill 1*1*16/8 = 2 B: 10 + 1 = 11
        [19, 30).
      fold 1: stream [30, 31); compute (neuron 1, silent, but a linear layer: it gets the 3 spikes too)
        [31, 37); spill [37, 48).
      exit: stream ceil(12/8) = 2 [48, 50); accumulate 1 fc spike as before, 6 cycles [50, 56); no decision.
    t = 2:
      fold 0: stream [56, 57); fill 2 B, 11 cycles [57, 68); compute: no spikes, so no wait for the
        stream: fire 1 cycle [68, 69); no spill (t = T). fold 1: [69, 70) + [70, 81) + [81, 82).
      exit: stream [82, 84); update pass only, 2 cycles [84, 86). End = 86.
    PE 0: busy 4 + 4 + 1 + 1 = 10; stall_input 2 + 2 = 4; stall_memory 12 + 26 + 26 = 64; idle 6 + 2 = 8.
    """
    c = simulate_reference(make_arch(**{"pe.data_memory_bytes": 2}), three_spikes(timesteps=2), 1)
    mapping = build_mapping(make_arch(**{"pe.data_memory_bytes": 2}), three_spikes(timesteps=2))
    assert [len(g.folds) for g in mapping.pe_groups] == [2] and not mapping.membranes_resident
    assert c["total_cycles"] == 86
    assert pe(c) == {"busy": 10, "stall_input": 4, "stall_output": 0, "stall_memory": 64, "idle": 8}
    a = actions(c)
    assert a["dram_read_bytes"] == 28 + 2 + 2 and a["dram_write_bytes"] == 2 + 2
    assert a["pe_fire_updates"] == 4 and a["pe_accumulations"] == 6 and a["pe_input_buffer_pushes"] == 6
    # fc per fold: 1 neuron x (4 weights + bias + threshold) = 8 B, streamed at both timesteps; the output layer's
    # 12 B too
    assert a["weight_glb_read_bytes"] == 2 * (8 + 8 + 12)
    assert c["pe_output_spikes"] == {"fc": [1, 0]}


def wide_fc(timesteps: int = 2) -> Workload:
    """Spike frames [1, 1, 4] -> fc (linear 4 -> 16) -> output; inputs 0, 1, 3 on at t = 1 only, and only fc
    neuron 0 fires (at t = 1), so every stream carries at most 3 spikes in a slice."""
    w = tiny_workload(frames=np.zeros((1, timesteps, 1, 1, 4), dtype=np.uint8), timesteps=timesteps)
    meta = copy.deepcopy(w.meta)
    for layer in meta["layers"]:  # shapes are derived again by validate
        layer.pop("in_shape", None), layer.pop("out_shape", None)
    meta["layers"][1]["out_features"] = 16
    frames = np.zeros((1, timesteps, 1, 1, 4), dtype=np.uint8)
    frames[:, 0, 0, 0, [0, 1, 3]] = 1
    w_fc = np.full((16, 4), -100, dtype=np.int8)
    w_fc[0] = 100
    arrays = dict(w.arrays, x=np.packbits(frames, axis=-1), **{
        "w/fc": w_fc, "b/fc": np.zeros(16, dtype=np.int32), "vth/fc": np.full(16, 50, dtype=np.int32),
        "w/out": np.vstack([np.full((1, 16), 127), np.full((1, 16), -127)]).astype(np.int8)})
    return validate(Workload(meta=meta, arrays=arrays, source="<wide fc>"))


def test_membranes_move_at_the_mesh_links_rate() -> None:
    """Hardware model 7: a membrane fill or spill crosses the mesh's entry link, so it runs at
    min(dram.bytes_per_cycle, noc.link_bytes_per_cycle).

    K = 16 B * 8 / 16 = 8 neurons per PE, P = 1: fc's 16 neurons make 2 folds of 8 membranes, 16 B each. T = 2:
    spills of both folds at t = 1, fills at t = 2: four 16-byte transactions, 10 + ceil(16 / 8) = 12 cycles
    each over 8 B links against 11 over 16 B links (the 16 B/cycle DRAM). Nothing else changes with the link:
    the weight port is 8 B/cycle either way, and no stream carries more than 3 spikes (r = 4 or 8 per cycle).
    The PE sits at tile (0, 0) (no byte-hops); each moved membrane is one data-memory access.
    """
    changes = {"pe.data_memory_bytes": 16, "global_buffers.weight.bytes_per_cycle": 8}
    narrow = simulate_reference(make_arch(**changes, **{"noc.link_bytes_per_cycle": 8}), wide_fc(), 1)
    wide = simulate_reference(make_arch(**changes, **{"noc.link_bytes_per_cycle": 16}), wide_fc(), 1)
    assert narrow["total_cycles"] - wide["total_cycles"] == 4
    assert pe(narrow)["stall_memory"] - pe(wide)["stall_memory"] == 4
    assert actions(narrow) == actions(wide)
    a = actions(narrow)
    # fills, then the weights: fc 16 neurons x (4 + 2 + 2) B, the output layer 2 classes x (16 + 4) B
    assert a["dram_write_bytes"] == 2 * 16 and a["dram_read_bytes"] == 2 * 16 + 16 * 8 + 2 * 20
    base = a["pe_accumulations"] + a["pe_fire_updates"]
    assert a["pe_dm_writes"] - base == 16 and a["pe_dm_reads"] - base == 16


def test_membrane_transport_is_charged_byte_hops() -> None:
    """Two PEs at h = 0 and 1 (array 1 x 3, K = 4 membranes each): a fill or spill of fc's 16 neurons in two
    folds of 8 (4 per PE) moves 4 x 2 B to h = 0 and 4 x 2 B to h = 1: 8 byte-hops per transaction, 4
    transactions. Against a resident run (1 KB memories, one fold) the other difference is the second fold's
    delivery of t = 1's 3 input spikes to the PE at h = 1: 3 x 2 B."""
    arch = make_arch(**{"array.cols": 3, "pe.data_memory_bytes": 8})
    resident = make_arch(**{"array.cols": 3})
    moved, kept = simulate_reference(arch, wide_fc(), 1), simulate_reference(resident, wide_fc(), 1)
    mapping = build_mapping(arch, wide_fc())
    assert [len(g.folds) for g in mapping.pe_groups] == [2] and list(mapping.pe_hops) == [0, 1]
    assert actions(moved)["noc_byte_hops"] - actions(kept)["noc_byte_hops"] == 4 * 8 + 3 * 2


def many_firing(n: int = 150) -> Workload:
    """Spike frames [1, 1, 4] -> fc (linear 4 -> n) -> output; input 0 on at t = 1, and every fc neuron fires."""
    w = tiny_workload(frames=np.zeros((1, 1, 1, 1, 4), dtype=np.uint8))
    meta = copy.deepcopy(w.meta)
    for layer in meta["layers"]:  # shapes are derived again by validate
        layer.pop("in_shape", None), layer.pop("out_shape", None)
    meta["layers"][1]["out_features"] = n
    frames = np.zeros((1, 1, 1, 1, 4), dtype=np.uint8)
    frames[:, 0, 0, 0, 0] = 1
    arrays = dict(w.arrays, x=np.packbits(frames, axis=-1), **{
        "w/fc": np.full((n, 4), 100, dtype=np.int8), "b/fc": np.zeros(n, dtype=np.int32),
        "vth/fc": np.full(n, 50, dtype=np.int32),
        "w/out": np.vstack([np.full((1, n), 1), np.full((1, n), -1)]).astype(np.int8)})
    return validate(Workload(meta=meta, arrays=arrays, source="<many firing>"))


def test_output_spikes_reach_the_output_buffer_over_one_link() -> None:
    """Hardware model 7: a compute phase lasts at least ceil(S_out / r) cycles, the output spikes converging on the
    output buffer over one link (r spikes per cycle), besides its port's ceil(S_out * sb / port) cycles.

    4 x 4 array, 15 PEs with 10 fc neurons each; one input spike, and all 150 neurons fire. Each PE: the stream
    reaches it by L = 6, 10 accumulate and 10 fire cycles, its last spike out: D_p = 27. Links of 8 B (r = 4):
    ceil(150 / 4) = 38 cycles; links of 16 B (r = 8): ceil(150 / 8) = 19 < 27, the port ceil(300 / 32) = 10.
    Nothing else changes with the link (1 input spike; each PE's 10 spikes leave its own buffer at r per cycle
    within its slice; the weight port is 8 B/cycle either way; the exit unit's 150 spikes x 2 classes bind it).
    """
    changes = {"array.rows": 4, "array.cols": 4, "global_buffers.weight.bytes_per_cycle": 8}
    narrow = simulate_reference(make_arch(**changes, **{"noc.link_bytes_per_cycle": 8}), many_firing(), 1)
    wide = simulate_reference(make_arch(**changes, **{"noc.link_bytes_per_cycle": 16}), many_firing(), 1)
    assert actions(narrow)["pe_spikes_out"] == 150
    assert narrow["total_cycles"] - wide["total_cycles"] == 38 - 27


def test_weights_streamed_when_not_resident() -> None:
    """A 16 B weight buffer cannot hold 28 B (16 B of fc, 12 B of the output layer, with their biases and
    thresholds): no initial load; every slice fetches its weights.

    Two banks: both buffer-fulls of the step are requested at cycle 0 and served in turn.
    fc (one fold): fetch 16 B: 10 + 1 = 11 [0, 11); stream ceil(16/8) = 2 [11, 13); compute 10 [13, 23).
    exit: its 12 B were read [11, 22) during fc's compute; stream 2 [23, 25); accumulate 6 [25, 31). End 31.
    """
    c = simulate_reference(make_arch(**{"global_buffers.weight.bytes": 16}), three_spikes(), 1)
    assert c["total_cycles"] == 31 and c["images"]["start_cycle"] == [0]
    assert pe(c)["stall_memory"] == 11 + 2 + 0 + 2
    a = actions(c)
    assert a["dram_read_bytes"] == 28 and a["weight_glb_write_bytes"] == 28 and a["weight_glb_read_bytes"] == 28


def test_one_weight_bank_reads_the_next_fold_while_the_pes_compute() -> None:
    """One bank: the exit unit's 12 B are requested once fc's 16 B have been streamed, at cycle 13.

    fc: fetch [0, 11); stream [11, 13); compute [13, 23). exit: read [13, 24), so the controller waits from
    23 to 24; stream [24, 26); accumulate [26, 32). End 32: one cycle more than two banks, 10 fewer than
    staging each fold's weights only when its slice starts (hardware model 3's rule: 42).
    """
    arch = make_arch(**{"global_buffers.weight.bytes": 16, "global_buffers.weight.banks": 1})
    c = simulate_reference(arch, three_spikes(), 1)
    assert c["total_cycles"] == 32
    assert pe(c)["stall_memory"] == 11 + 2 + 1 + 2


def test_demand_first_serves_a_membrane_fill_before_a_weight_read_ahead() -> None:
    """The fold-and-spill case of above with its weights fetched (12 B buffer, one bank: fold 0's and fold 1's
    8 B and the exit unit's 12 B each are one read of 10 + 1 = 11 cycles; streams of 1, 1 and 2 cycles) and T = 2.

    t = 1 (both rules): read fold 0 [0, 11); stream [11, 12), then fold 1's read is asked for and runs
      [12, 23); compute [12, 18); the spill waits for it, [23, 34); fold 1: stream [34, 35), the exit's read
      [35, 46); compute [35, 41); spill [46, 57); exit: stream [57, 59); accumulate [59, 65).
    t = 2: read fold 0 [65, 76); stream [76, 77); at 77 fold 1's read ahead and fold 0's membrane fill are
      asked for in the same cycle.
      fifo serves them as asked: read [77, 88), fill [88, 99); compute [99, 100); fold 1: stream [100, 101),
        the exit's read [101, 112) before the fill [112, 123); compute [123, 124); exit: stream [124, 126),
        update [126, 128). End 128.
      demand_first serves the fill first: [77, 88), read [88, 99); compute [88, 89); fold 1 waits for its
        read to 99: stream [99, 100); fill [100, 111), the exit's read [111, 122); compute [111, 112); exit:
        waits to 122, stream [122, 124), update [124, 126). End 126.
    """
    changes = {"pe.data_memory_bytes": 2, "global_buffers.weight.bytes": 12, "global_buffers.weight.banks": 1}
    fifo = simulate_reference(make_arch(**changes, **{"dram.arbitration": "fifo"}), three_spikes(timesteps=2), 1)
    first = simulate_reference(make_arch(**changes), three_spikes(timesteps=2), 1)  # demand_first: the default
    assert fifo["total_cycles"] == 128 and first["total_cycles"] == 126
    t1 = 11 + 1 + 16 + 1 + 16 + 2
    assert pe(fifo)["stall_memory"] == t1 + 11 + 1 + 22 + 1 + 22 + 2
    assert pe(first)["stall_memory"] == t1 + 11 + 1 + 11 + 10 + 1 + 11 + 10 + 2
    assert actions(fifo) == actions(first)


def test_dram_conflict_between_two_accelerators() -> None:
    """Two accelerators both load the 28 B of weights at cycle 0: acc 0 wins the tie [0, 12), acc 1 waits and
    loads [12, 24). Image 0 runs on acc 0 from 12 (ends 32, as in the single-PE case); image 1 on
    acc 1 from 24, ends 24 + 20 = 44 = makespan. Acc 0 is idle for its last 12 cycles.
    """
    c = simulate_reference(make_arch(accelerators=2), three_spikes(images=2), 2)
    assert c["total_cycles"] == 44
    assert c["images"] == {"start_cycle": [12, 24], "end_cycle": [32, 44], "exit_t": [1, 1], "accelerator": [0, 1]}
    assert pe(c, 0) == {"busy": 8, "stall_input": 2, "stall_output": 0, "stall_memory": 16, "idle": 6 + 12}
    assert pe(c, 1) == {"busy": 8, "stall_input": 2, "stall_output": 0, "stall_memory": 24 + 2 + 2, "idle": 6}
    assert actions(c, 0)["dram_read_bytes"] == actions(c, 1)["dram_read_bytes"] == 28


def test_an_accelerator_without_work_loads_no_weights() -> None:
    """Three accelerators, two images: acc 2 would get no batch, so it loads nothing (section 8), and the
    timeline is exactly the two-accelerator one above. Under the former rule its 28 B load was queued at
    cycle 0 and held the channel [24, 36); adding an accelerator then cost DRAM bytes and never helped."""
    two = simulate_reference(make_arch(accelerators=2), three_spikes(images=2), 2)
    three = simulate_reference(make_arch(accelerators=3), three_spikes(images=2), 2)
    assert three["total_cycles"] == two["total_cycles"] == 44
    assert three["images"] == two["images"]
    assert actions(three, 2)["dram_read_bytes"] == 0 and actions(three, 2)["weight_glb_write_bytes"] == 0
    assert pe(three, 2) == {"busy": 0, "stall_input": 0, "stall_output": 0, "stall_memory": 0, "idle": 44}
    assert actions(three, 0)["dram_read_bytes"] == actions(three, 1)["dram_read_bytes"] == 28


def test_dram_conflict_mid_run() -> None:
    """Weights not resident (16 B buffer of one bank), 2 accelerators, 2 images: both fetch fc's 16 B at cycle 0.

    acc 0: fetch [0, 11), stream [11, 13), requests the output layer's 12 B at 13 (its bank is free), compute
      [13, 23) (D = 10).
    acc 1: waits, fetch [11, 22), stream [22, 24), requests at 24, compute [24, 34).
    acc 0: its request at 13 is served as acc 1's fetch ends (the channel is free at the end of cycle
      22): [22, 33); it waits from 23, stream [33, 35), accumulate [35, 41): end 41.
    acc 1: its request at 24 is served as acc 0's ends: [33, 44), it waits from 34, stream [44, 46),
      accumulate [46, 52): end 52.
    """
    arch = make_arch(accelerators=2, **{"global_buffers.weight.bytes": 16, "global_buffers.weight.banks": 1})
    c = simulate_reference(arch, three_spikes(2), 2)
    assert c["images"]["end_cycle"] == [41, 52] and c["total_cycles"] == 52
    assert pe(c, 0)["stall_memory"] == 11 + 2 + 10 + 2
    assert pe(c, 1)["stall_memory"] == 22 + 2 + 10 + 2


def test_two_banks_and_two_accelerators_under_each_arbitration() -> None:
    """As above with two banks: at cycle 0 each accelerator asks for both of its buffer-fulls, and waits for
    its first at once.

    fifo serves (request cycle, accelerator, order asked): acc 0's fc [0, 11) and output weights [11, 22),
    then acc 1's [22, 33) and [33, 44). acc 0: stream [11, 13), compute [13, 23), stream [23, 25),
    accumulate [25, 31). acc 1: stream [33, 35), compute [35, 45), stream [45, 47), accumulate [47, 53).
    demand_first serves the reads waited for first: acc 0's fc [0, 11), acc 1's fc [11, 22); at 22 the two
    output-weight reads ahead wait, nobody waiting for them yet (acc 0 computes to 23): equal request cycles,
    acc 0's first, [22, 33), acc 1's [33, 44). The ends are those of one bank (above): acc 0 accumulates
    [35, 41), acc 1 [46, 52).
    """
    for rule, ends, stalls in (("fifo", [31, 53], (11 + 2 + 0 + 2, 33 + 2 + 0 + 2)),
                               ("demand_first", [41, 52], (11 + 2 + 10 + 2, 22 + 2 + 10 + 2))):
        arch = make_arch(accelerators=2, **{"global_buffers.weight.bytes": 16, "dram.arbitration": rule})
        c = simulate_reference(arch, three_spikes(2), 2)
        assert c["images"]["end_cycle"] == ends and c["total_cycles"] == ends[1], rule
        assert (pe(c, 0)["stall_memory"], pe(c, 1)["stall_memory"]) == stalls, rule


def test_early_exit_at_unit() -> None:
    """ATSN (at unit, CL = 0.9): class 0 leads by 254 x 0.2 = 50.8 in logits, so the image exits at
    t = 1 < T = 2. Same timeline as the single-PE case to 32, then the decision 3*C + 1 = 7 cycles
    [32, 39): end 39 = makespan; t = 2 never runs. Decision actions: C + 1 = 3 compares,
    2C + 1 = 5 multiplies, 2C = 4 LUT reads, 2C = 4 adds (interpolation and sum).
    """
    c = simulate_reference(at_arch(), three_spikes(timesteps=2), 1)
    assert c["images"] == {"start_cycle": [12], "end_cycle": [39], "exit_t": [1], "accelerator": [0]}
    assert c["total_cycles"] == 39
    assert c["accelerators"][0]["exit_unit"] == {"busy": 4 + 7, "stall_input": 2, "idle": 39 - 13}
    assert pe(c) == {"busy": 8, "stall_input": 2, "stall_output": 0, "stall_memory": 16, "idle": 6 + 7}
    a = actions(c)
    assert (a["exit_compares"], a["exit_multiplies"], a["exit_lut_reads"], a["exit_divides"]) == (3, 5, 4, 0)
    assert a["exit_decision_adds"] == 4
    assert c["pe_output_spikes"] == {"fc": [1, 0]}


def test_batch_with_early_exit_shares_weight_streams() -> None:
    """images_per_batch 2 on the at unit: both images exit at t = 1.

    [0, 12) load; fc stream [12, 14) once for the batch; compute: the stream holds image 0's 3 spikes
    then image 1's (k=1 delivers 4, k=2 the last 2); the PE does image 0's spikes then its fire pass,
    then image 1's: k=0,1 stall, k=2..7 image 0 spikes, k=8,9 fire, k=10..15 image 1, k=16,17
    fire: D = 18 [14, 32) (GLB: ceil(12/32) = 1). Exit: stream [32, 34); accumulate: k=0,1 stall,
    k=2,3 spike of image 0, k=4,5 its update, k=6,7 image 1's spike, k=8,9 update: [34, 44);
    decide 2 x 7 = 14 [44, 58). Both images end at 58.
    """
    c = simulate_reference(at_arch(images_per_batch=2), three_spikes(images=2, timesteps=2), 2)
    assert c["images"]["start_cycle"] == [12, 12] and c["images"]["end_cycle"] == [58, 58]
    assert pe(c)["busy"] == 16 and pe(c)["stall_input"] == 2
    assert c["accelerators"][0]["exit_unit"]["busy"] == 8 + 14
    assert actions(c)["weight_glb_read_bytes"] == 16 + 12


def test_direct_image_bit_planes() -> None:
    """Direct image [4, 1, 1], pixels [3, 0, 0, 0], into a 1x1 conv of 2 channels (cov = 2 per input):
    plane 0 and plane 1 each hold one 'spike' at channel 0.

    Weights: fc 2 channels x (4 + 2 + 2) = 16 B, out 12 B (as in the single-PE case): load [0, 12).
    fc: stream [12, 14); compute: the stream holds the plane-0 spike then the plane-1 spike
    (clarification 10); a = 2 per plane spike: k=0,1 stall (L = 1), k=2..5 the two, k=6,7 fire: D = 8,
    GLB term C*H*W = 4 B -> 1 cycle: [14, 22). Exit: stream [22, 24), accumulate 6 [24, 30). End 30.
    The compute phase reads 4 pixel bytes from the spike buffer.
    """
    c = simulate_reference(make_arch(), tiny_workload(pixels=np.array([3, 0, 0, 0]).reshape(1, 4, 1, 1)), 1)
    assert c["total_cycles"] == 30
    a = actions(c)
    assert a["pe_accumulations"] == 4 and a["pe_input_buffer_pushes"] == 2
    assert a["spike_glb_read_bytes"] == 4 + 2


def test_spike_spill_and_refill() -> None:
    """An output buffer of 1 B: fc's 1 spike (2 B) exceeds it by 1 B: after the fold, one DRAM write of
    1 B (10 + 1 cycles); the exit group reads it back first (11 cycles).
    Single-PE timeline: compute ends 24; spill [24, 35); refill [35, 46); stream [46, 48); acc [48, 54).
    """
    c = simulate_reference(make_arch(**{"global_buffers.output.bytes": 1}), three_spikes(), 1)
    assert c["total_cycles"] == 54
    a = actions(c)
    assert a["dram_write_bytes"] == 1 and a["dram_read_bytes"] == 28 + 1


# -------------------------------------------------------------------------------------------
# the multicast stream: head-of-line coupling between PEs (section 4.1)
# -------------------------------------------------------------------------------------------
def two_pe_arch(**changes) -> object:
    """The hand-check architecture on a 1 x 3 array: P = 2 (PE 0 at h = 0, PE 1 at h = 1), the exit unit at
    tile 2 (h = 2); the stream starts at L = 1 * (1 + 3 - 2) = 2; r = 4, 1 adder per PE."""
    return make_arch(**{"array.cols": 3, **changes})


def frames_workload(width: int, on: list[int], layer: dict, w_fc: np.ndarray) -> Workload:
    """Spike frames [1, 1, width] with ``on`` set at t = 1 -> ``layer`` (named fc, weights +100, threshold 50,
    so a neuron fires iff an input in its window is on) -> flatten -> output (2 classes, class 0 wins)."""
    n = int(np.prod(w_fc.shape[:1])) if layer["type"] == "linear" else width * int(layer["out_channels"])
    layers = [layer, {"name": "flat", "type": "flatten", "inputs": ["fc"]},
              {"name": "out", "type": "output", "inputs": ["flat"], "out_features": 2, "output_mode": "accumulate",
               "logit_scale": 0.2}]
    if layer["type"] == "linear":
        layers = [{"name": "flat0", "type": "flatten", "inputs": ["input"]}, {**layer, "inputs": ["flat0"]},
                  *layers[1:]]
    frames = np.zeros((1, 1, 1, 1, width), dtype=np.uint8)
    frames[0, 0, 0, 0, on] = 1
    meta = {
        "name": "two-pe", "kind": "trained", "dataset": "synthetic", "num_classes": 2, "input_shape": [1, 1, width],
        "timesteps": 1, "input_encoding": "spike_frames", "input_width": width,
        "neuron": {"tau": 0.5, "decay_shifts": [1], "v_th": 1.0},
        "quant": {"weight_bits": 8, "vmem_bits": 16, "input_shift": 0},
        "layers": layers,
    }
    arrays = {
        "w/fc": w_fc.astype(np.int8),
        "b/fc": np.zeros(w_fc.shape[0], dtype=np.int32),
        "vth/fc": np.full(w_fc.shape[0], 50, dtype=np.int32),
        "w/out": np.stack([np.full(n, 127), np.full(n, -127)]).astype(np.int8),
        "b/out": np.zeros(2, dtype=np.int32),
        "x": np.packbits(frames, axis=-1),
        "y": np.zeros(1, dtype=np.int64),
    }
    return validate(Workload(meta=meta, arrays=arrays, source="<two-pe>"))


def shared_linear() -> Workload:
    """Inputs 0, 1, 3 on -> linear 4 -> 3 (neuron 0 fires, 1 and 2 never): PE 0 holds neurons 0, 1 (cov 2,
    a = 2 per spike: the slow PE), PE 1 holds neuron 2 (cov 1, a = 1): every spike goes to both PEs."""
    w = np.array([[100] * 4, [-100] * 4, [-100] * 4])
    return frames_workload(4, [0, 1, 3], {"name": "fc", "type": "linear", "out_features": 3, "spiking": True}, w)


def conv_row() -> Workload:
    """Inputs 0, 1, 4, 5 of a [1, 1, 6] row on -> 3x3 conv, padding 1, 1 channel: output ox sees x in
    {ox-1, ox, ox+1}. PE 0 holds ox 0..2, PE 1 holds ox 3..5 (q = 3); the stream (raster order) is
    x0 -> {PE 0} cov 2, x1 -> {PE 0} cov 3, x4 -> {PE 1} cov 3, x5 -> {PE 1} cov 2 (1 adder: a = cov).
    Every output neuron has an input on in its window: all 6 fire."""
    w = np.full((1, 1, 3, 3), 100)
    layer = {"name": "fc", "type": "conv", "inputs": ["input"], "kernel": 3, "stride": 1, "padding": 1,
             "out_channels": 1, "spiking": True}
    return frames_workload(6, [0, 1, 4, 5], layer, w)


def test_head_of_line_blocking_starves_the_fast_pe() -> None:
    """Two PEs share every spike; PE 0 is slow (a = 2) and both have a 1-entry buffer (2 B).

    Weights: fc 3 neurons x (4 + 2 + 2) = 24 B, out 2 x 3 + 2 x 4 = 14 B: 38 B resident: load
    10 + ceil(38/16) = 13 [0, 13); fc stream ceil(24/8) = 3 [13, 16) (the stream runs at min(weight port 32,
    link 8) B per cycle).
    Compute (L = 2; stream s1, s2, s3, each to {PE 0, PE 1}):
      k=0,1 both stall_input (k < L); k=2 both stall_input, s1 to both, s2 blocked (buffers full);
      k=3 PE 0 pops s1 (k=3,4), PE 1 pops s1 (k=3); s2 to both; s3 blocked (both full);
      k=4 PE 0 busy, PE 1 pops s2; s3 blocked: PE 0's buffer still holds s2 (PE 1's is empty);
      k=5 PE 0 pops s2 (k=5,6); PE 1 has room and nothing to do: stall_input (head-of-line); s3 to both;
      k=6 PE 0 busy, PE 1 pops s3; k=7 PE 0 pops s3 (k=7,8), PE 1 fires neuron 2 -> done (D_1 = 8);
      k=9,10 PE 0 fires neurons 0 (spikes) and 1 -> done, D_0 = 11. GLB terms 1. D = 11: [16, 27).
    Exit: stream ceil(14/8) = 2 [27, 29); accumulate 1 spike, own link L = h(2) = 2, a = 2: k=0..2 stall,
      k=3,4 the spike, k=5,6 update: 7 [29, 36). End 36.
    PE 0: busy 8, stall_input 3, stall_memory 13 + 3 + 2 = 18, idle 7. PE 1: busy 4 (3 spikes + 1 fire),
      stall_input 4, stall_memory 18, idle 3 + 7 = 10.
    With 2-entry buffers s1, s2 go at k=2, s3 at k=3: PE 1 pops at k=3, 4, 5 and never starves
    (stall_input 3); PE 0 is the critical path either way, so the total stays 36.
    """
    c = simulate_reference(two_pe_arch(**{"pe.input_spike_buffer_bytes": 2}), shared_linear(), 1)
    assert c["total_cycles"] == 36
    assert pe(c, p=0) == {"busy": 8, "stall_input": 3, "stall_output": 0, "stall_memory": 18, "idle": 7}
    assert pe(c, p=1) == {"busy": 4, "stall_input": 4, "stall_output": 0, "stall_memory": 18, "idle": 10}
    assert c["accelerators"][0]["exit_unit"] == {"busy": 4, "stall_input": 3, "idle": 29}
    a = actions(c)
    # 3 spikes x 2 destinations; accumulations 3 x (2 + 1); fire updates 3
    assert a["pe_input_buffer_pushes"] == 6 and a["pe_accumulations"] == 9 and a["pe_fire_updates"] == 3
    # weights, each PE's share to it: 16 B x h(0) + 8 B x h(1) = 8, the output layer's 14 B x h(2) = 28;
    # deliveries 2 B x h(p): 3 x (0 + 1) x 2; output spike from PE 0 (h = 0); the exit unit's delivery 2 B x h(2) = 4
    assert a["noc_byte_hops"] == 8 + 28 + 6 + 0 + 4
    roomy = simulate_reference(two_pe_arch(**{"pe.input_spike_buffer_bytes": 4}), shared_linear(), 1)
    assert roomy["total_cycles"] == 36
    assert pe(roomy, p=1) == {"busy": 4, "stall_input": 3, "stall_output": 0, "stall_memory": 18, "idle": 11}
    assert pe(roomy, p=0) == pe(c, p=0)


def test_larger_input_buffer_shortens_the_phase() -> None:
    """PE 1's heavy spikes queue behind PE 0's: with 1-entry buffers the phase is one cycle longer.

    Weights: the conv's one channel 9 + 2 + 2 = 13 B, out 2 x 6 + 2 x 4 = 20 B: 33 B resident: load
    10 + ceil(33/16) = 13 [0, 13); conv stream ceil(13/8) = 2 [13, 15) (min(weight port 32, link 8) B per cycle).
    1-entry buffers (L = 2): k=2 x0 to PE 0, x1 blocked (PE 0 full); k=3 PE 0 pops x0 (k=3,4), x1 to PE 0,
      x4 to PE 1, x5 blocked; k=4 PE 1 pops x4 (k=4..6), x5 to PE 1; k=5 PE 0 pops x1 (k=5..7);
      k=7 PE 1 pops x5 (k=7,8); PE 0 fires k=8..10 (D_0 = 11); PE 1 fires k=9..11 (D_1 = 12).
      PE 1 stalls k=0..3: at k=3 its buffer is empty and has room, but x4 waits behind x1.
      D = 12: [15, 27).
    2-entry buffers: k=2 delivers x0, x1 (PE 0 full at 2) and x4, x5 (PE 1 full at 2): PE 1 runs x4 at
      k=3..5, x5 at k=6,7, fires k=8..10: D_1 = 11; PE 0 unchanged (D_0 = 11). D = 11: [15, 26).
    Exit: stream 20 B -> 3 cycles; accumulate 6 spikes (a = 2): k=0..2 stall, k=3..14 spikes, k=15,16
      update: 17. Ends: 27 + 3 + 17 = 47 and 26 + 3 + 17 = 46.
    PE 0: busy 2 + 3 + 3 = 8, stall_input 3 (k=0..2) in both; PE 1: busy 3 + 2 + 3 = 8, stall_input 4 or 3.
    """
    small = simulate_reference(two_pe_arch(**{"pe.input_spike_buffer_bytes": 2}), conv_row(), 1)
    large = simulate_reference(two_pe_arch(**{"pe.input_spike_buffer_bytes": 4}), conv_row(), 1)
    assert small["total_cycles"] == 47 and large["total_cycles"] == 46
    # stall_memory 13 + 2 + 3 (load, conv stream, exit stream); idle: compute-phase idle + 17 exit cycles
    assert pe(small, p=0) == {"busy": 8, "stall_input": 3, "stall_output": 0, "stall_memory": 18, "idle": 1 + 17}
    assert pe(small, p=1) == {"busy": 8, "stall_input": 4, "stall_output": 0, "stall_memory": 18, "idle": 17}
    assert pe(large, p=0) == {"busy": 8, "stall_input": 3, "stall_output": 0, "stall_memory": 18, "idle": 17}
    assert pe(large, p=1) == {"busy": 8, "stall_input": 3, "stall_output": 0, "stall_memory": 18, "idle": 17}
    for c in (small, large):
        a = actions(c)
        assert a["pe_accumulations"] == 2 + 3 + 3 + 2 and a["pe_input_buffer_pushes"] == 4
        assert a["pe_spikes_out"] == 6 and a["exit_accumulations"] == 6 * 2
    # a buffer big enough for the whole stream changes nothing more
    assert simulate_reference(two_pe_arch(), conv_row(), 1)["total_cycles"] == 46


def test_stream_is_all_or_nothing_and_in_order() -> None:
    """Unit level: a spike goes to all its destinations in the same cycle or to none, and never overtakes.

    Units: A (1-entry buffer, one spike of 3 cycles), B (1-entry buffer, two spikes of 1 cycle).
    Stream: s1 -> {A, B}, s2 -> {B}; L = 0, r = 4.
      k=0: both stall; s1 to both; s2 blocked (B full). k=1: A pops s1 (k=1..3), B pops s1; s2 to B.
      k=2: B pops s2; k=3: B fires (1 neuron) -> done at 4; A busy; k=4: A fires -> done at 5.
    """
    from satasim_atsn.hw.reference import _Stream

    a = _Unit([3], [3], [1], [[0]], 1, -1, 1, 1, 4)
    b = _Unit([1, 1], [1, 1], [2], [[0]], 1, -1, 1, 1, 4)
    stream = _Stream([(0, 1), (1,)], 0, 4)
    delivered = []
    for k in range(5):
        for u in (a, b):
            u.act()
        stream.deliver(k, [a, b])
        for u in (a, b):
            u.drain(k)
        delivered.append((a.delivered, b.delivered))
    assert delivered == [(1, 1), (1, 2), (1, 2), (1, 2), (1, 2)]
    assert (a.done_cycle, b.done_cycle, stream.blocked) == (5, 4, 1)
    assert (b.busy, b.stall_input, b.idle) == (3, 1, 1)


# -------------------------------------------------------------------------------------------
# properties of the reference on random networks (no engine involved)
# -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(8))
def test_reference_invariants(seed: int) -> None:
    """States sum to the makespan; emitted spikes are the functional spikes; action identities hold."""
    arch = make_arch(**{"array.rows": 2, "array.cols": 3, "pe.data_memory_bytes": 16, "accelerators": 2,
                        "images_per_batch": 2})
    workload = random_workload(seed, images=3, max_channels=4, size=4)
    c = simulate_reference(arch, workload, 3)
    total = c["total_cycles"]
    for acc in c["accelerators"]:
        states = acc["pe"]
        for p in range(5):
            assert sum(states[s][p] for s in ("busy", "stall_input", "stall_output", "stall_memory", "idle")) == total
        assert sum(acc["exit_unit"].values()) == total
        a = acc["actions"]
        assert set(a) == set(ACTIONS)
        base = a["pe_accumulations"] + a["pe_fire_updates"]  # one membrane read and write each
        assert a["pe_dm_reads"] >= base and a["pe_dm_writes"] >= base
        assert a["pe_spikes_out"] == a["pe_output_buffer_pushes"]
    assert total == max(c["images"]["end_cycle"])
    trace = functional_trace(workload, arch.exit_policy(), arch.policy_name, 0, 3)
    for name, per_t in c["pe_output_spikes"].items():
        assert per_t == [int(trace.spikes[name][:, t].sum()) for t in range(workload.timesteps)]
    # every neuron of every PE group is updated once per active image and timestep
    mapping = build_mapping(arch, workload)
    active_steps = int(trace.exit_t.sum())
    updates = sum(acc["actions"]["pe_fire_updates"] for acc in c["accelerators"])
    assert updates == active_steps * sum(g.neurons for g in mapping.pe_groups)
    # a fire update of a layer reading the image also reads its current (section 5); beyond those reads, a fill
    # writes (t = 2..exit) each neuron's words (membrane, and current) and a spill reads (t = 1..min(exit, T - 1))
    # each membrane, and at t = 1 < T each current
    currents = sum(g.neurons for g in mapping.pe_groups if g.words_per_neuron == 2)
    moved = 0 if mapping.membranes_resident else 1
    neurons = moved * sum(g.neurons for g in mapping.pe_groups)
    words = moved * sum(g.neurons * g.words_per_neuron for g in mapping.pe_groups)
    fills = sum(a["actions"]["pe_dm_writes"] - a["actions"]["pe_accumulations"] - a["actions"]["pe_fire_updates"]
                for a in c["accelerators"])
    spills = sum(a["actions"]["pe_dm_reads"] - a["actions"]["pe_accumulations"] - a["actions"]["pe_fire_updates"]
                 for a in c["accelerators"]) - active_steps * currents
    T = workload.timesteps
    assert fills == words * int((trace.exit_t - 1).sum())
    assert spills == neurons * int(np.minimum(trace.exit_t, T - 1).sum()) + moved * currents * 3 * (T > 1)
    # deterministic
    assert simulate_reference(arch, workload, 3) == c


def test_smaller_input_buffer_never_speeds_up() -> None:
    """Shrinking pe.input_spike_buffer_bytes never decreases total cycles, and sometimes increases them.

    One accelerator: every phase then runs alone and the compute phase is a max-plus recursion that is
    monotone in the buffer capacity. (With several accelerators a faster one could reorder DRAM requests
    or batch dispatch, so monotonicity of the makespan is not a law there.)
    """
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_engine_vs_reference import random_arch_dict

    increased = 0
    for seed in range(16):
        workload = random_workload(seed, images=2, max_channels=4, size=4)
        raw = random_arch_dict(seed, workload)
        raw["accelerators"] = 1
        sb = int(raw["spike_address_bytes"])
        totals = []
        for spikes in (64, 2, 1):
            raw["pe"]["input_spike_buffer_bytes"] = spikes * sb
            arch = build_arch(copy.deepcopy(raw), where=f"<buffer {spikes} spikes, seed {seed}>")
            totals.append(simulate_reference(arch, workload, 2)["total_cycles"])
        assert totals == sorted(totals), f"seed {seed}: totals for 64, 2, 1 spikes {totals}"
        increased += totals[-1] > totals[0]
    assert increased > 0


def parameter_word_bytes(arch, workload: Workload) -> int:
    """Section 3's bias and threshold words of a whole network, whatever arrays the file holds: a spiking conv or
    linear layer and an add, per output channel (neuron), a bias and a threshold of ceil(pe.vmem_bits / 8) bytes;
    the output layer a bias per class, of ceil(exit_unit.vmem_bits / 8) bytes on the exit unit, of the PE width
    without one; a non-spiking conv of an add none (the add keeps the summed bias)."""
    pe_word = -(-arch.pe.vmem_bits // 8)
    total = 0
    for ly in workload.layers:
        channels = int(ly["out_shape"][0])
        if ly["type"] == "output":
            total += channels * (-(-arch.exit_unit.vmem_bits // 8) if arch.array.exit_unit_tiles else pe_word)
        elif ly["type"] == "add" or (ly["type"] in ("conv", "linear") and ly.get("spiking", True)):
            total += channels * 2 * pe_word
    return total


@pytest.mark.parametrize("seed", range(30))
def test_mapping_follows_section_3(seed: int) -> None:
    """hw/mapping.py's folds, PE blocks, weight shares and residency are section 3's rule, recomputed here
    (Q: the largest per-PE neuron count <= K whose weight shares fit), and equal the reference's own derivation."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_engine_vs_reference import random_case

    arch, workload, _ = random_case(seed)
    mapping = build_mapping(arch, workload)
    witness = derive_mapping(arch, workload)
    P = arch.array.rows * arch.array.cols - arch.array.exit_unit_tiles
    held = arch.pe.data_memory_bytes * 8 // arch.pe.vmem_bits  # membranes a PE holds
    K = held // arch.images_per_batch  # one image's share: every image of a batch keeps its own
    assert (mapping.capacity_neurons, mapping.fold_capacity_neurons) == (held, K)
    sizes = []
    for g, w in zip(mapping.pe_groups, [g for g in witness.groups if g.kind == "pe"], strict=True):
        N, k_group = g.neurons, K // g.words_per_neuron  # a layer reading the image keeps its currents too (section 5)
        assert g.words_per_neuron == w.words == (2 if any(i.encoding == "image" for i in g.inputs) else 1)
        sizes.append(math.ceil(N / P) * g.words_per_neuron)
        Q = max(1, min(k_group, math.ceil(N / P)) if len(g.folds) == 1 else g.folds[0].n // P)
        assert k_group >= Q
        assert len(g.folds) == math.ceil(N / (P * Q))
        assert all(int(v) <= arch.pe.weight_memory_bytes for f in g.folds for v in f.pe_weight_bytes)
        for f, fold in enumerate(g.folds):
            start, stop = f * P * Q, min(N, (f + 1) * P * Q)
            n = stop - start
            q = math.ceil(n / P)
            assert (fold.start, fold.stop) == (start, stop)
            for p in range(P):
                block = (start + min(p * q, n), start + min((p + 1) * q, n))
                assert (fold.pe_offsets[p], fold.pe_offsets[p + 1]) == block
        assert [(f.start, f.stop, list(map(int, f.pe_offsets)), f.weight_bytes, list(map(int, f.pe_weight_bytes)),
                 f.threshold_bytes, list(map(int, f.pe_threshold_bytes))) for f in g.folds] == \
            [(f.start, f.stop, f.pe_offsets, f.weight_bytes, f.pe_weight_bytes, f.threshold_bytes, f.pe_threshold_bytes)
             for f in w.folds], g.name
    assert mapping.membranes_resident == (arch.images_per_batch * sum(sizes) <= held) == witness.membranes_resident
    weights = sum(int(v.size) for k, v in workload.arrays.items() if k.startswith("w/"))
    weights += parameter_word_bytes(arch, workload)
    assert mapping.total_weight_bytes == weights == witness.total_weight_bytes
    assert mapping.weights_resident == (weights <= arch.global_buffers.weight.bytes) == witness.weights_resident


def _section12_case(seed: int, **changes):
    """A random fixed-T (conventional) case with the given top-level fields changed."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from test_engine_vs_reference import random_arch_dict

    def workload_of(s: int):
        return random_workload(s, images=5, max_channels=4, size=4)

    seed = next(s for s in range(seed, seed + 200) if random_arch_dict(s, workload_of(s))["kind"] == "conventional")
    workload = workload_of(seed)
    raw = random_arch_dict(seed, workload)
    raw.update({"dataflow": "timestep_major", "images_per_batch": 3, **changes})
    raw["global_buffers"]["weight"]["bytes"] = 147456
    pe = raw["pe"]  # one membrane per image of the batch at least (section 3), two words for a first layer (5)
    words = 2 if workload.input_encoding == "direct" else 1
    pe["data_memory_bytes"] = max(pe["data_memory_bytes"], words * raw["images_per_batch"] * pe["vmem_bits"] // 8)
    return build_arch(raw, where="<section 12>"), workload


@pytest.mark.parametrize("seed", [0, 40])
def test_refill_without_early_exit_is_plain_batches(seed):
    """Section 12.2: when every image runs T, refill gives exactly the numbers of plain batches (both models)."""
    from satasim_atsn.hw.engine import simulate

    plain, workload = _section12_case(seed, batch_refill=False)
    refill, _ = _section12_case(seed, batch_refill=True)
    assert simulate_reference(plain, workload, 5) == simulate_reference(refill, workload, 5)
    assert simulate(plain, workload, 5).counters() == simulate(refill, workload, 5).counters()


@pytest.mark.parametrize("seed", [0, 40])
def test_layer_major_streams_each_fold_once_per_batch(seed):
    """Section 12.3: layer_major streams every fold's weights (and the output layer's) once per batch, where
    timestep_major streams them at every timestep (but a layer reading the image at t = 1 only, section 5): about T
    times the weight-buffer reads for the same batches. A layer reading the image streams its thresholds alone at
    t > 1: one word of ceil(pe.vmem_bits / 8) bytes per channel of each fold (it fires)."""
    tm, workload = _section12_case(seed)
    lm, _ = _section12_case(seed, dataflow="layer_major")
    mapping = build_mapping(lm, workload)
    per_batch = sum(f.weight_bytes for g in mapping.groups if g.kind == "pe" for f in g.folds)
    per_batch += mapping.exit_group.weight_bytes if mapping.exit_group is not None else 0  # none: output on the PEs
    image_only = [g for g in mapping.groups if g.kind == "pe" and all(i.encoding == "image" for i in g.inputs)]
    word = -(-lm.pe.vmem_bits // 8)
    # streamed at t = 1 only (section 5): all but the thresholds
    image = sum(f.weight_bytes - f.channels * word for g in image_only for f in g.folds)
    assert (image > 0) == (workload.input_encoding == "direct")
    batches, T = math.ceil(5 / 3), workload.timesteps
    reads = {name: sum(a["actions"]["weight_glb_read_bytes"] for a in simulate_reference(arch, workload, 5)
                       ["accelerators"]) for name, arch in (("tm", tm), ("lm", lm))}
    assert reads["lm"] == batches * per_batch
    assert reads["tm"] == batches * (T * per_batch - (T - 1) * image)


def test_a_multicast_spike_occupies_its_trees_links_once() -> None:
    """Hardware model 8, section 9. A 1 x 4 array: PEs 0, 1, 2 at h = 0, 1, 2, the exit unit at tile 3 (h = 3).
    fc (4 -> 3) holds one neuron per PE, so each of the 3 input spikes goes to all three PEs: its tree is the
    two links (0,0)-(0,1)-(0,2), 2 byte-hops per byte, not 0 + 1 + 2 = 3 (one route per destination).
    Byte-hops: stream 3 spikes x 2 B x 2 links = 12; fc's weights, each neuron's 4 B and its 2 B bias and 2 B
    threshold to its own PE, 8 x (0 + 1 + 2) = 24; the output layer's 2 x 3 = 6 B and 2 x 4 B of biases to the
    exit tile, 14 x 3 = 42; neuron 0's output spike from PE 0 (h = 0) 0; its delivery to the exit unit
    2 B x 3 = 6. 84 in all; the engine agrees."""
    from satasim_atsn.hw.engine import simulate

    arch, wl = make_arch(**{"array.cols": 4}), shared_linear()
    a = actions(simulate_reference(arch, wl, 1))
    assert a["pe_input_buffer_pushes"] == 9  # three deliveries per spike all the same
    assert a["noc_byte_hops"] == 12 + 24 + 42 + 0 + 6
    assert simulate(arch, wl, images=1).totals["noc_byte_hops"] == 84


def test_the_reference_imports_nothing_of_the_engine_or_its_mapping() -> None:
    """The witness shares only the architecture, the workload and the functional trace with the engine: an import
    of the engine's modules (hw/engine*.py since the engine was split), its kernels or its mapping would let one bug
    hide on both sides (the module's docstring promises this; nothing checked it)."""
    import ast
    from pathlib import Path

    import satasim_atsn.hw.reference as reference

    tree = ast.parse(Path(reference.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {f"{node.module}.{alias.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 and node.module for alias in node.names}
    engine_side = sorted(name for name in imported
                         if name.startswith(("satasim_atsn.hw.engine", "satasim_atsn.hw.kernels",
                                             "satasim_atsn.hw.mapping")))
    assert engine_side == [], engine_side
