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

    Weights are 8 (fc) + 4 (out) = 12 B <= 4096 B: resident, loaded first: DRAM 10 + ceil(12/16) = 11
    cycles [0, 11). Membranes: ceil(2/1) = 2 <= K = 512: resident.
    fc slice: stream ceil(8/32) = 1 cycle [11, 12). Compute: the multicast stream starts at
    L = hop_cycles * (rows + cols - 2) = 1; PE 0 is every spike's only destination; a = ceil(2/1) = 2:
      k=0 stall_input (k < L: no delivery); k=1 stall_input, the stream delivers all 3 (r = 4, room 64);
      k=2,3 spike 1; k=4,5 spike 2; k=6,7 spike 3; k=8 fire neuron 0 (spikes, pushed, drained);
      k=9 fire neuron 1 -> done, D_p = 10; GLB terms ceil(6/32) = ceil(2/32) = 1; D = 10: [12, 22).
    Exit group: stream ceil(4/32) = 1 [22, 23). Accumulate over its own link (clarification 3),
      L = 1*h(1) = 1, a = ceil(2/1) = 2: k=0 stall_input; k=1 stall_input (delivered at the end of k=1);
      k=2,3 the spike; k=4,5 the update pass of C = 2 cycles; D = 6: [23, 29). t = T: no decision.
      End = total = 29.
    PE 0: busy 8, stall_input 2, stall_memory 11 + 1 + 1 = 13, idle 6 (exit phases); 29 in all.
    """
    c = simulate_reference(make_arch(), three_spikes(), 1)
    assert c["total_cycles"] == 29
    assert c["images"] == {"start_cycle": [11], "end_cycle": [29], "exit_t": [1], "accelerator": [0]}
    assert pe(c) == {"busy": 8, "stall_input": 2, "stall_output": 0, "stall_memory": 13, "idle": 6}
    assert c["accelerators"][0]["exit_unit"] == {"busy": 4, "stall_input": 2, "idle": 23}
    a = actions(c)
    assert a["pe_accumulations"] == 6 and a["pe_fire_updates"] == 2 and a["pe_spikes_out"] == 1
    assert a["pe_input_buffer_pushes"] == 3 and a["pe_output_buffer_pushes"] == 1
    assert a["pe_dm_reads"] == a["pe_dm_writes"] == 8
    assert a["weight_glb_write_bytes"] == 12 and a["weight_glb_read_bytes"] == 12 and a["dram_read_bytes"] == 12
    assert a["spike_glb_read_bytes"] == 6 + 2 and a["spike_glb_write_bytes"] == 2
    # weights: fc's 8 B to PE 0 at h = 0, the output layer's 4 B to the exit unit at h = 1; the exit unit's
    # one delivery: 2 B x 1 hop
    assert a["noc_byte_hops"] == 0 + 4 + 2
    assert a["pe_weight_write_bytes"] == 8 and a["exit_weight_write_bytes"] == 4
    assert a["exit_accumulations"] == 2 and a["exit_updates"] == 2 and a["dram_write_bytes"] == 0
    assert c["pe_output_spikes"] == {"fc": [1]}


def test_two_adders_halve_the_accumulate_cycles() -> None:
    """With 2 adders a = ceil(2/2) = 1: k=0,1 stall, k=2..4 the spikes, k=5,6 fire: D = 7, so 3 cycles fewer."""
    c = simulate_reference(make_arch(**{"pe.adders": 2}), three_spikes(), 1)
    assert c["total_cycles"] == 26
    assert pe(c) == {"busy": 5, "stall_input": 2, "stall_output": 0, "stall_memory": 13, "idle": 6}
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

    [0, 11) weight load. t = 1:
      fold 0: stream ceil(4/32) = 1 [11, 12); no fill (t = 1); compute, cov = 1 so a = 1: k=0,1 stall
        (L = 1), k=2..4 the spikes, k=5 fire neuron 0: D = 6 [12, 18); spill 1*1*16/8 = 2 B: 10 + 1 = 11
        [18, 29).
      fold 1: stream [29, 30); compute (neuron 1, silent, but a linear layer: it gets the 3 spikes too)
        [30, 36); spill [36, 47).
      exit: stream [47, 48); accumulate 1 fc spike as before, 6 cycles [48, 54); no decision (none).
    t = 2:
      fold 0: stream [54, 55); fill 2 B, 11 cycles [55, 66); compute: no spikes, so no wait for the
        stream: fire 1 cycle [66, 67); no spill (t = T). fold 1: [67, 68) + [68, 79) + [79, 80).
      exit: stream [80, 81); update pass only, 2 cycles [81, 83). End = 83.
    PE 0: busy 4 + 4 + 1 + 1 = 10; stall_input 2 + 2 = 4; stall_memory 11 + 25 + 25 = 61; idle 6 + 2 = 8.
    """
    c = simulate_reference(make_arch(**{"pe.data_memory_bytes": 2}), three_spikes(timesteps=2), 1)
    mapping = build_mapping(make_arch(**{"pe.data_memory_bytes": 2}), three_spikes(timesteps=2))
    assert [len(g.folds) for g in mapping.pe_groups] == [2] and not mapping.membranes_resident
    assert c["total_cycles"] == 83
    assert pe(c) == {"busy": 10, "stall_input": 4, "stall_output": 0, "stall_memory": 61, "idle": 8}
    a = actions(c)
    assert a["dram_read_bytes"] == 12 + 2 + 2 and a["dram_write_bytes"] == 2 + 2
    assert a["pe_fire_updates"] == 4 and a["pe_accumulations"] == 6 and a["pe_input_buffer_pushes"] == 6
    # fc weights per fold: 1 neuron x 4 inputs = 4 B, streamed at both timesteps; the output layer's 4 B too
    assert a["weight_glb_read_bytes"] == 2 * (4 + 4 + 4)
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
    assert a["dram_write_bytes"] == 2 * 16 and a["dram_read_bytes"] == 2 * 16 + 16 * 4 + 2 * 16
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
    """A 8 B weight buffer cannot hold 12 B: no initial load; every slice fetches its weights.

    Two banks: both buffer-fulls of the step are requested at cycle 0 and served in turn.
    fc (one fold): fetch 8 B: 10 + 1 = 11 [0, 11); stream [11, 12); compute 10 [12, 22).
    exit: its 4 B were read [11, 22) during fc's compute; stream [22, 23); accumulate 6 [23, 29). End 29.
    """
    c = simulate_reference(make_arch(**{"global_buffers.weight.bytes": 8}), three_spikes(), 1)
    assert c["total_cycles"] == 29 and c["images"]["start_cycle"] == [0]
    assert pe(c)["stall_memory"] == 11 + 1 + 0 + 1
    a = actions(c)
    assert a["dram_read_bytes"] == 12 and a["weight_glb_write_bytes"] == 12 and a["weight_glb_read_bytes"] == 12


def test_one_weight_bank_reads_the_next_fold_while_the_pes_compute() -> None:
    """One bank: the exit unit's 4 B are requested once fc's 8 B have been streamed, at cycle 12.

    fc: fetch [0, 11); stream [11, 12); compute [12, 22). exit: read [12, 23), so the controller waits from
    22 to 23; stream [23, 24); accumulate [24, 30). End 30: one cycle more than two banks, 10 fewer than
    staging each fold's weights only when its slice starts (hardware model 3: 40).
    """
    arch = make_arch(**{"global_buffers.weight.bytes": 8, "global_buffers.weight.banks": 1})
    c = simulate_reference(arch, three_spikes(), 1)
    assert c["total_cycles"] == 30
    assert pe(c)["stall_memory"] == 11 + 1 + 1 + 1


def test_demand_first_serves_a_membrane_fill_before_a_weight_read_ahead() -> None:
    """The fold-and-spill case of above with its weights fetched (4 B buffer, one bank: fold 0, fold 1 and
    the exit unit's 4 B each are one read of 10 + 1 = 11 cycles) and T = 2.

    t = 1 (both rules): read fold 0 [0, 11); stream [11, 12), then fold 1's read is asked for and runs
      [12, 23); compute [12, 18); the spill waits for it, [23, 34); fold 1: stream [34, 35), the exit's read
      [35, 46); compute [35, 41); spill [46, 57); exit: stream [57, 58); accumulate [58, 64).
    t = 2: read fold 0 [64, 75); stream [75, 76); at 76 fold 1's read ahead and fold 0's membrane fill are
      asked for in the same cycle.
      fifo serves them as asked: read [76, 87), fill [87, 98); compute [98, 99); fold 1: stream [99, 100),
        the exit's read [100, 111) before the fill [111, 122); compute [122, 123); exit: stream [123, 124),
        update [124, 126). End 126.
      demand_first serves the fill first: [76, 87), read [87, 98); compute [87, 88); fold 1 waits for its
        read to 98: stream [98, 99); fill [99, 110), the exit's read [110, 121); compute [110, 111); exit:
        waits to 121, stream [121, 122), update [122, 124). End 124.
    """
    changes = {"pe.data_memory_bytes": 2, "global_buffers.weight.bytes": 4, "global_buffers.weight.banks": 1}
    fifo = simulate_reference(make_arch(**changes, **{"dram.arbitration": "fifo"}), three_spikes(timesteps=2), 1)
    first = simulate_reference(make_arch(**changes), three_spikes(timesteps=2), 1)  # demand_first: the default
    assert fifo["total_cycles"] == 126 and first["total_cycles"] == 124
    t1 = 11 + 1 + 16 + 1 + 16 + 1
    assert pe(fifo)["stall_memory"] == t1 + 11 + 1 + 22 + 1 + 22 + 1
    assert pe(first)["stall_memory"] == t1 + 11 + 1 + 11 + 10 + 1 + 11 + 10 + 1
    assert actions(fifo) == actions(first)


def test_dram_conflict_between_two_accelerators() -> None:
    """Two accelerators both load the weights at cycle 0: acc 0 wins the tie [0, 11), acc 1 waits and
    loads [11, 22). Image 0 runs on acc 0 from 11 (ends 29, as in the single-PE case); image 1 on
    acc 1 from 22, ends 22 + 18 = 40 = makespan. Acc 0 is idle for its last 11 cycles.
    """
    c = simulate_reference(make_arch(accelerators=2), three_spikes(images=2), 2)
    assert c["total_cycles"] == 40
    assert c["images"] == {"start_cycle": [11, 22], "end_cycle": [29, 40], "exit_t": [1, 1], "accelerator": [0, 1]}
    assert pe(c, 0) == {"busy": 8, "stall_input": 2, "stall_output": 0, "stall_memory": 13, "idle": 6 + 11}
    assert pe(c, 1) == {"busy": 8, "stall_input": 2, "stall_output": 0, "stall_memory": 22 + 2, "idle": 6}
    assert actions(c, 0)["dram_read_bytes"] == actions(c, 1)["dram_read_bytes"] == 12


def test_an_accelerator_without_work_loads_no_weights() -> None:
    """Three accelerators, two images: acc 2 would get no batch, so it loads nothing (section 8), and the
    timeline is exactly the two-accelerator one above. Under the former rule its 12 B load was queued at
    cycle 0 and held the channel [22, 33); adding an accelerator then cost DRAM bytes and never helped."""
    two = simulate_reference(make_arch(accelerators=2), three_spikes(images=2), 2)
    three = simulate_reference(make_arch(accelerators=3), three_spikes(images=2), 2)
    assert three["total_cycles"] == two["total_cycles"] == 40
    assert three["images"] == two["images"]
    assert actions(three, 2)["dram_read_bytes"] == 0 and actions(three, 2)["weight_glb_write_bytes"] == 0
    assert pe(three, 2) == {"busy": 0, "stall_input": 0, "stall_output": 0, "stall_memory": 0, "idle": 40}
    assert actions(three, 0)["dram_read_bytes"] == actions(three, 1)["dram_read_bytes"] == 12


def test_dram_conflict_mid_run() -> None:
    """Weights not resident (8 B buffer of one bank), 2 accelerators, 2 images: both fetch fc's 8 B at cycle 0.

    acc 0: fetch [0, 11), stream [11, 12), requests the output weights at 12 (its bank is free), compute
      [12, 22) (D = 10).
    acc 1: waits, fetch [11, 22), stream [22, 23), requests at 23, compute [23, 33).
    acc 0: its request at 12 is served as acc 1's fetch ends (the channel is free at the end of cycle
      22): [22, 33); it waits from 22, stream [33, 34), accumulate [34, 40): end 40.
    acc 1: its request at 23 is served as acc 0's ends: [33, 44), stream [44, 45), accumulate [45, 51):
      end 51.
    """
    arch = make_arch(accelerators=2, **{"global_buffers.weight.bytes": 8, "global_buffers.weight.banks": 1})
    c = simulate_reference(arch, three_spikes(2), 2)
    assert c["images"]["end_cycle"] == [40, 51] and c["total_cycles"] == 51
    assert pe(c, 0)["stall_memory"] == 11 + 1 + 11 + 1
    assert pe(c, 1)["stall_memory"] == 22 + 1 + 11 + 1


def test_two_banks_and_two_accelerators_under_each_arbitration() -> None:
    """As above with two banks: at cycle 0 each accelerator asks for both of its buffer-fulls, and waits for
    its first at once.

    fifo serves (request cycle, accelerator, order asked): acc 0's fc [0, 11) and output weights [11, 22),
    then acc 1's [22, 33) and [33, 44). acc 0: stream [11, 12), compute [12, 22), stream [22, 23),
    accumulate [23, 29). acc 1: stream [33, 34), compute [34, 44), stream [44, 45), accumulate [45, 51).
    demand_first serves the reads waited for first: acc 0's fc [0, 11), acc 1's fc [11, 22); at 22 acc 0
    waits for its output weights, which go before acc 1's read ahead: [22, 33), acc 1's [33, 44). The ends
    are those of one bank (above): acc 0 accumulates [34, 40), acc 1 [45, 51).
    """
    for rule, ends, stalls in (("fifo", [29, 51], (11 + 1 + 0 + 1, 33 + 1 + 0 + 1)),
                               ("demand_first", [40, 51], (11 + 1 + 11 + 1, 22 + 1 + 11 + 1))):
        arch = make_arch(accelerators=2, **{"global_buffers.weight.bytes": 8, "dram.arbitration": rule})
        c = simulate_reference(arch, three_spikes(2), 2)
        assert c["images"]["end_cycle"] == ends and c["total_cycles"] == 51, rule
        assert (pe(c, 0)["stall_memory"], pe(c, 1)["stall_memory"]) == stalls, rule


def test_early_exit_at_unit() -> None:
    """ATSN (at unit, CL = 0.9): class 0 leads by 254 x 0.2 = 50.8 in logits, so the image exits at
    t = 1 < T = 2. Same timeline as the single-PE case to 29, then the decision 3*C + 1 = 7 cycles
    [29, 36): end 36 = makespan; t = 2 never runs. Decision actions: C + 1 = 3 compares,
    2C + 1 = 5 multiplies, 2C = 4 LUT reads, 2C = 4 adds (interpolation and sum).
    """
    c = simulate_reference(at_arch(), three_spikes(timesteps=2), 1)
    assert c["images"] == {"start_cycle": [11], "end_cycle": [36], "exit_t": [1], "accelerator": [0]}
    assert c["total_cycles"] == 36
    assert c["accelerators"][0]["exit_unit"] == {"busy": 4 + 7, "stall_input": 2, "idle": 36 - 13}
    assert pe(c) == {"busy": 8, "stall_input": 2, "stall_output": 0, "stall_memory": 13, "idle": 6 + 7}
    a = actions(c)
    assert (a["exit_compares"], a["exit_multiplies"], a["exit_lut_reads"], a["exit_divides"]) == (3, 5, 4, 0)
    assert a["exit_decision_adds"] == 4
    assert c["pe_output_spikes"] == {"fc": [1, 0]}


def test_batch_with_early_exit_shares_weight_streams() -> None:
    """images_per_batch 2 on the at unit: both images exit at t = 1.

    [0, 11) load; fc stream [11, 12) once for the batch; compute: the stream holds image 0's 3 spikes
    then image 1's (k=1 delivers 4, k=2 the last 2); the PE does image 0's spikes then its fire pass,
    then image 1's: k=0,1 stall, k=2..7 image 0 spikes, k=8,9 fire, k=10..15 image 1, k=16,17
    fire: D = 18 [12, 30) (GLB: ceil(12/32) = 1). Exit: stream [30, 31); accumulate: k=0,1 stall,
    k=2,3 spike of image 0, k=4,5 its update, k=6,7 image 1's spike, k=8,9 update: [31, 41);
    decide 2 x 7 = 14 [41, 55). Both images end at 55.
    """
    c = simulate_reference(at_arch(images_per_batch=2), three_spikes(images=2, timesteps=2), 2)
    assert c["images"]["start_cycle"] == [11, 11] and c["images"]["end_cycle"] == [55, 55]
    assert pe(c)["busy"] == 16 and pe(c)["stall_input"] == 2
    assert c["accelerators"][0]["exit_unit"]["busy"] == 8 + 14
    assert actions(c)["weight_glb_read_bytes"] == 12


def test_direct_image_bit_planes() -> None:
    """Direct image [4, 1, 1], pixels [3, 0, 0, 0], into a 1x1 conv of 2 channels (cov = 2 per input):
    plane 0 and plane 1 each hold one 'spike' at channel 0.

    fc: stream [11, 12); compute: the stream holds the plane-0 spike then the plane-1 spike
    (clarification 10); a = 2 per plane spike: k=0,1 stall (L = 1), k=2..5 the two, k=6,7 fire: D = 8,
    GLB term C*H*W = 4 B -> 1 cycle: [12, 20). Exit: stream [20, 21), accumulate 6 [21, 27). End 27.
    The compute phase reads 4 pixel bytes from the spike buffer.
    """
    c = simulate_reference(make_arch(), tiny_workload(pixels=np.array([3, 0, 0, 0]).reshape(1, 4, 1, 1)), 1)
    assert c["total_cycles"] == 27
    a = actions(c)
    assert a["pe_accumulations"] == 4 and a["pe_input_buffer_pushes"] == 2
    assert a["spike_glb_read_bytes"] == 4 + 2


def test_spike_spill_and_refill() -> None:
    """An output buffer of 1 B: fc's 1 spike (2 B) exceeds it by 1 B: after the fold, one DRAM write of
    1 B (10 + 1 cycles); the exit group reads it back first (11 cycles).
    Single-PE timeline: compute ends 22; spill [22, 33); refill [33, 44); stream [44, 45); acc [45, 51).
    """
    c = simulate_reference(make_arch(**{"global_buffers.output.bytes": 1}), three_spikes(), 1)
    assert c["total_cycles"] == 51
    a = actions(c)
    assert a["dram_write_bytes"] == 1 and a["dram_read_bytes"] == 12 + 1


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

    Weights 12 + 6 = 18 B resident: load 10 + ceil(18/16) = 12 [0, 12); fc stream ceil(12/8) = 2 [12, 14) (the
    stream runs at min(weight port 32, link 8) B per cycle).
    Compute (L = 2; stream s1, s2, s3, each to {PE 0, PE 1}):
      k=0,1 both stall_input (k < L); k=2 both stall_input, s1 to both, s2 blocked (buffers full);
      k=3 PE 0 pops s1 (k=3,4), PE 1 pops s1 (k=3); s2 to both; s3 blocked (both full);
      k=4 PE 0 busy, PE 1 pops s2; s3 blocked: PE 0's buffer still holds s2 (PE 1's is empty);
      k=5 PE 0 pops s2 (k=5,6); PE 1 has room and nothing to do: stall_input (head-of-line); s3 to both;
      k=6 PE 0 busy, PE 1 pops s3; k=7 PE 0 pops s3 (k=7,8), PE 1 fires neuron 2 -> done (D_1 = 8);
      k=9,10 PE 0 fires neurons 0 (spikes) and 1 -> done, D_0 = 11. GLB terms 1. D = 11: [14, 25).
    Exit: stream ceil(6/8) = 1 [25, 26); accumulate 1 spike, own link L = h(2) = 2, a = 2: k=0..2 stall,
      k=3,4 the spike, k=5,6 update: 7 [26, 33). End 33.
    PE 0: busy 8, stall_input 3, stall_memory 12 + 2 + 1 = 15, idle 7. PE 1: busy 4 (3 spikes + 1 fire),
      stall_input 4, stall_memory 15, idle 3 + 7 = 10.
    With 2-entry buffers s1, s2 go at k=2, s3 at k=3: PE 1 pops at k=3, 4, 5 and never starves
    (stall_input 3); PE 0 is the critical path either way, so the total stays 33.
    """
    c = simulate_reference(two_pe_arch(**{"pe.input_spike_buffer_bytes": 2}), shared_linear(), 1)
    assert c["total_cycles"] == 33
    assert pe(c, p=0) == {"busy": 8, "stall_input": 3, "stall_output": 0, "stall_memory": 15, "idle": 7}
    assert pe(c, p=1) == {"busy": 4, "stall_input": 4, "stall_output": 0, "stall_memory": 15, "idle": 10}
    assert c["accelerators"][0]["exit_unit"] == {"busy": 4, "stall_input": 3, "idle": 26}
    a = actions(c)
    # 3 spikes x 2 destinations; accumulations 3 x (2 + 1); fire updates 3
    assert a["pe_input_buffer_pushes"] == 6 and a["pe_accumulations"] == 9 and a["pe_fire_updates"] == 3
    # weights, each PE's share to it: 8 B x h(0) + 4 B x h(1) = 4, the output layer's 6 B x h(2) = 12;
    # deliveries 2 B x h(p): 3 x (0 + 1) x 2; output spike from PE 0 (h = 0); the exit unit's delivery 2 B x h(2) = 4
    assert a["noc_byte_hops"] == 4 + 12 + 6 + 0 + 4
    roomy = simulate_reference(two_pe_arch(**{"pe.input_spike_buffer_bytes": 4}), shared_linear(), 1)
    assert roomy["total_cycles"] == 33
    assert pe(roomy, p=1) == {"busy": 4, "stall_input": 3, "stall_output": 0, "stall_memory": 15, "idle": 11}
    assert pe(roomy, p=0) == pe(c, p=0)


def test_larger_input_buffer_shortens_the_phase() -> None:
    """PE 1's heavy spikes queue behind PE 0's: with 1-entry buffers the phase is one cycle longer.

    Weights 9 + 12 = 21 B resident: load 10 + ceil(21/16) = 12 [0, 12); conv stream ceil(9/8) = 2 [12, 14)
    (min(weight port 32, link 8) B per cycle).
    1-entry buffers (L = 2): k=2 x0 to PE 0, x1 blocked (PE 0 full); k=3 PE 0 pops x0 (k=3,4), x1 to PE 0,
      x4 to PE 1, x5 blocked; k=4 PE 1 pops x4 (k=4..6), x5 to PE 1; k=5 PE 0 pops x1 (k=5..7);
      k=7 PE 1 pops x5 (k=7,8); PE 0 fires k=8..10 (D_0 = 11); PE 1 fires k=9..11 (D_1 = 12).
      PE 1 stalls k=0..3: at k=3 its buffer is empty and has room, but x4 waits behind x1.
      D = 12: [14, 26).
    2-entry buffers: k=2 delivers x0, x1 (PE 0 full at 2) and x4, x5 (PE 1 full at 2): PE 1 runs x4 at
      k=3..5, x5 at k=6,7, fires k=8..10: D_1 = 11; PE 0 unchanged (D_0 = 11). D = 11: [14, 25).
    Exit: stream 12 B -> 2 cycles; accumulate 6 spikes (a = 2): k=0..2 stall, k=3..14 spikes, k=15,16
      update: 17. Ends: 26 + 2 + 17 = 45 and 25 + 2 + 17 = 44.
    PE 0: busy 2 + 3 + 3 = 8, stall_input 3 (k=0..2) in both; PE 1: busy 3 + 2 + 3 = 8, stall_input 4 or 3.
    """
    small = simulate_reference(two_pe_arch(**{"pe.input_spike_buffer_bytes": 2}), conv_row(), 1)
    large = simulate_reference(two_pe_arch(**{"pe.input_spike_buffer_bytes": 4}), conv_row(), 1)
    assert small["total_cycles"] == 45 and large["total_cycles"] == 44
    # stall_memory 12 + 2 + 2 (load, conv stream, exit stream); idle: compute-phase idle + 17 exit cycles
    assert pe(small, p=0) == {"busy": 8, "stall_input": 3, "stall_output": 0, "stall_memory": 16, "idle": 1 + 17}
    assert pe(small, p=1) == {"busy": 8, "stall_input": 4, "stall_output": 0, "stall_memory": 16, "idle": 17}
    assert pe(large, p=0) == {"busy": 8, "stall_input": 3, "stall_output": 0, "stall_memory": 16, "idle": 17}
    assert pe(large, p=1) == {"busy": 8, "stall_input": 3, "stall_output": 0, "stall_memory": 16, "idle": 17}
    for c in (small, large):
        a = actions(c)
        assert a["pe_accumulations"] == 2 + 3 + 3 + 2 and a["pe_input_buffer_pushes"] == 4
        assert a["pe_spikes_out"] == 6 and a["exit_accumulations"] == 6 * 2
    # a buffer big enough for the whole stream changes nothing more
    assert simulate_reference(two_pe_arch(), conv_row(), 1)["total_cycles"] == 44


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
        assert [(f.start, f.stop, list(map(int, f.pe_offsets)), f.weight_bytes, list(map(int, f.pe_weight_bytes)))
                for f in g.folds] == [(f.start, f.stop, f.pe_offsets, f.weight_bytes, f.pe_weight_bytes)
                                      for f in w.folds], g.name
    assert mapping.membranes_resident == (arch.images_per_batch * sum(sizes) <= held) == witness.membranes_resident
    weights = sum(int(v.size) for k, v in workload.arrays.items() if k.startswith("w/"))
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
    times the weight-buffer reads for the same batches."""
    tm, workload = _section12_case(seed)
    lm, _ = _section12_case(seed, dataflow="layer_major")
    mapping = build_mapping(lm, workload)
    per_batch = sum(f.weight_bytes for g in mapping.groups if g.kind == "pe" for f in g.folds)
    per_batch += mapping.exit_group.weight_bytes if mapping.exit_group is not None else 0  # none: output on the PEs
    image_only = [g for g in mapping.groups if g.kind == "pe" and all(i.encoding == "image" for i in g.inputs)]
    image = sum(f.weight_bytes for g in image_only for f in g.folds)  # streamed at t = 1 only (section 5)
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
    Byte-hops: stream 3 spikes x 2 B x 2 links = 12; fc's weights, each neuron's 4 B to its own PE,
    4 x (0 + 1 + 2) = 12; the output layer's 2 x 3 = 6 B to the exit tile, 6 x 3 = 18; neuron 0's output
    spike from PE 0 (h = 0) 0; its delivery to the exit unit 2 B x 3 = 6. 48 in all; the engine agrees."""
    from satasim_atsn.hw.engine import simulate

    arch, wl = make_arch(**{"array.cols": 4}), shared_linear()
    a = actions(simulate_reference(arch, wl, 1))
    assert a["pe_input_buffer_pushes"] == 9  # three deliveries per spike all the same
    assert a["noc_byte_hops"] == 12 + 12 + 18 + 0 + 6
    assert simulate(arch, wl, images=1).totals["noc_byte_hops"] == 48
