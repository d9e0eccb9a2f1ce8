"""Hand-computed cycle counts for timing rules that the engine and the reference share (docs/microarchitecture.md).

The engine is checked against the reference elsewhere, so a rule both read the same wrong way would pass that
comparison: these cases pin each rule to a number derived by hand from the document's text, on both models.
They reuse the hand architecture and tiny networks of tests/test_reference.py (P = 1, PE 0 at h = 0, the exit
unit at tile 1, h = 1, L = 1, r = 4, 2 B spike addresses, a 10-cycle DRAM latency at 16 B per cycle).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from test_reference import make_arch, many_firing, pe, three_spikes, wide_fc

from satasim_atsn.workload.format import Workload, validate


def three_classes() -> Workload:
    """three_spikes() with a 3-class output layer (class 0 wins)."""
    w = three_spikes()
    meta = copy.deepcopy(w.meta)
    for layer in meta["layers"]:  # shapes are derived again by validate
        layer.pop("in_shape", None), layer.pop("out_shape", None)
    meta["layers"][-1]["out_features"] = 3
    meta["num_classes"] = 3
    arrays = dict(w.arrays, **{"w/out": np.array([[127, 127], [-127, -127], [-127, -127]], dtype=np.int8),
                               "b/out": np.zeros(3, dtype=np.int32)})
    return validate(Workload(meta=meta, arrays=arrays, source="<three classes>"))


def test_a_spike_costs_the_ceiling_of_its_coverage_over_the_adders(timing_model) -> None:
    """Section 4.1: a = ceil(cov_p / pe.adders); cov = 16 (fc of 16 neurons on one PE), 3 adders: a = 6, not 5.

    Weights: fc 16 x (4 + 2 + 2) = 128 B, out 2 x (16 + 4) = 40 B: 168 B resident, loaded in 10 + ceil(168/16) = 21
    cycles [0, 21). fc stream ceil(128/8) = 16 [21, 37). Compute: k=0,1 stall_input (L = 1; all 3 delivered at
    k=1), k=2..19 three spikes of 6 cycles, k=20..35 fire 16 neurons: D = 36 [37, 73). Exit: stream ceil(40/8) = 5
    [73, 78); one spike, L = 1, a = 2: k=0,1 stall, k=2,3 accumulate, k=4,5 update: [78, 84). Total 84.
    PE 0: stall_memory in the load and both streams, idle in the exit unit's accumulate phase (section 9).
    """
    c = timing_model(make_arch(**{"pe.adders": 3}), wide_fc(timesteps=1), 1)
    assert c["total_cycles"] == 84
    assert pe(c) == {"busy": 18 + 16, "stall_input": 2, "stall_output": 0, "stall_memory": 21 + 16 + 5, "idle": 6}


def test_the_input_spikes_leave_the_spike_buffer_at_its_input_port_width(timing_model) -> None:
    """Section 4, phase 4: D = max(D_p, ceil(S_in * sb / global_buffers.input.bytes_per_cycle), ...).

    4 B spike addresses (r = 8 // 4 = 2), 2 adders (a = 1), an input port of 1 B per cycle. Weights 28 B resident,
    load 10 + 2 = 12 [0, 12); fc stream 2 [12, 14). Compute: k=0,1 stall (s1, s2 delivered at k=1, s3 at k=2),
    k=2..4 the spikes, k=5,6 fire: D_p = 7; the input port reads S_in * sb = 3 x 4 = 12 B in 12 cycles (the output
    port, 32 B per cycle, would take 1): D = 12 [14, 26). Exit: stream 2 [26, 28), accumulate 6 [28, 34). Total 34.
    """
    c = timing_model(make_arch(**{"spike_address_bytes": 4, "pe.adders": 2, "global_buffers.input.bytes_per_cycle": 1}),
            three_spikes(), 1)
    assert c["total_cycles"] == 34
    assert pe(c) == {"busy": 5, "stall_input": 2, "stall_output": 0, "stall_memory": 12 + 2 + 2, "idle": 5 + 6}


@pytest.mark.parametrize(("buffer_bytes", "resident"), [(28, True), (27, False)])
def test_weights_that_exactly_fill_the_weight_buffer_are_resident(timing_model, buffer_bytes: int,
                                                                  resident: bool) -> None:
    """Section 3: resident iff the total weight bytes (fc 16 B + out 12 B = 28 B) fit global_buffers.weight.bytes.

    28 B: one load of 28 B, as in test_single_pe_three_spikes (total 32). 27 B: not resident, so the pass reads fc's
    16 B and the output layer's 12 B (its 27 B buffer-fulls, section 4 phase 1), each its own DRAM transaction."""
    c = timing_model(make_arch(**{"global_buffers.weight.bytes": buffer_bytes}), three_spikes(), 1)
    if resident:
        assert c["total_cycles"] == 32 and c["accelerators"][0]["actions"]["dram_read_bytes"] == 28
    else:
        assert c["total_cycles"] != 32 and c["accelerators"][0]["actions"]["dram_read_bytes"] == 16 + 12


def test_an_exit_unit_spike_costs_the_ceiling_of_the_classes_over_its_adders(timing_model) -> None:
    """Section 7: each spike costs ceil(num_classes / exit_unit.adders) = ceil(3/2) = 2 cycles, not 1.

    Weights: fc 16 B, out 3 x (2 + 4) = 18 B: 34 B resident, load 10 + ceil(34/16) = 13 [0, 13); fc stream 2
    [13, 15), compute 10 [15, 25) (test_single_pe_three_spikes). Exit: stream ceil(18/8) = 3 [25, 28); one spike,
    L = 1: k=0,1 stall, k=2,3 accumulate, k=4..6 update 3 classes: [28, 35). Total 35; exit unit busy 2 + 3."""
    c = timing_model(make_arch(**{"exit_unit.adders": 2}), three_classes(), 1)
    assert c["total_cycles"] == 35
    assert c["accelerators"][0]["exit_unit"] == {"busy": 5, "stall_input": 2, "idle": 28}


def pooled(images: int = 1) -> Workload:
    """Spike frames [1, 2, 4] -> maxpool 2x2 -> flatten -> fc (linear 2 -> 2) -> output (2 classes).

    Inputs (0, 0), (0, 1) and (1, 3) are on at t = 1: both pooling windows fire, so S_in = 3, S_out = 2."""
    w = three_spikes()
    meta = copy.deepcopy(w.meta)
    meta["input_shape"] = [1, 2, 4]
    meta["layers"] = [
        {"name": "pool", "type": "maxpool", "inputs": ["input"], "kernel": 2, "stride": 2},
        {"name": "flat", "type": "flatten", "inputs": ["pool"]},
        {"name": "fc", "type": "linear", "inputs": ["flat"], "out_features": 2, "spiking": True},
        {"name": "out", "type": "output", "inputs": ["fc"], "out_features": 2, "output_mode": "accumulate",
         "logit_scale": 0.2},
    ]
    frames = np.zeros((images, 1, 1, 2, 4), dtype=np.uint8)
    frames[:, 0, 0, 0, [0, 1]] = 1
    frames[:, 0, 0, 1, 3] = 1
    arrays = dict(w.arrays, x=np.packbits(frames, axis=-1), y=np.zeros(images, dtype=np.int64), **{
        "w/fc": np.array([[100, 100], [-100, -100]], dtype=np.int8),
        "w/out": np.array([[127, 127], [-127, -127]], dtype=np.int8)})
    return validate(Workload(meta=meta, arrays=arrays, source="<pooled>"))


@pytest.mark.parametrize(("port", "total"), [(32, 31), (1, 40)])
def test_max_pooling_moves_its_input_and_output_spikes_through_the_output_port(timing_model, port: int,
                                                                               total: int) -> None:
    """Section 6: a pool group takes ceil((S_in + S_out) * sb / global_buffers.output.bytes_per_cycle) cycles.

    Weights fc 2 x (2 + 2 + 2) = 12 B, out 2 x (2 + 4) = 12 B: 24 B resident, load 10 + 2 = 12 [0, 12). Pool:
    (3 + 2) x 2 B = 10 B, 1 cycle at 32 B per cycle, 10 at 1. fc: stream 2; compute k=0,1 stall, 2 spikes of
    a = 2 cycles, 2 fire cycles: 8 (its output-port term, 1 spike x 2 B, stays below). Exit: stream 2, accumulate 6.
    Total 12 + 1 + 2 + 8 + 2 + 6 = 31, or 40 with a 1 B output port (the input port stays at 32 B)."""
    c = timing_model(make_arch(**{"global_buffers.output.bytes_per_cycle": port}), pooled(), 1)
    assert c["total_cycles"] == total
    assert c["accelerators"][0]["actions"]["pool_ors"] == 3


def test_max_pooling_in_a_batch_refill_step(timing_model) -> None:
    """Section 6 in a refill step (section 12.2: batch_refill with 2 images per batch, the engine's own step
    program): both images' pooling, (6 + 4) x 2 B = 20 B, takes 20 cycles at a 1 B output port and 1 at 32 B.
    Nothing else binds on that port (fc's output term, 2 spikes x 2 B = 4 cycles, is below its D_p of 14)."""
    def total(port: int) -> int:
        arch = make_arch(**{"global_buffers.output.bytes_per_cycle": port, "batch_refill": True,
                            "images_per_batch": 2})
        return timing_model(arch, pooled(images=2), 2)["total_cycles"]
    assert total(1) - total(32) == 20 - 1


def test_membranes_cross_the_mesh_entry_link_on_both_models(timing_model) -> None:
    """test_membranes_move_at_the_mesh_links_rate's hand count on both models: four 16 B membrane transactions take
    10 + ceil(16/8) = 12 cycles over 8 B links and 10 + ceil(16/16) = 11 over 16 B links (the DRAM's rate)."""
    changes = {"pe.data_memory_bytes": 16, "global_buffers.weight.bytes_per_cycle": 8}
    narrow = timing_model(make_arch(**changes, **{"noc.link_bytes_per_cycle": 8}), wide_fc(), 1)
    wide = timing_model(make_arch(**changes, **{"noc.link_bytes_per_cycle": 16}), wide_fc(), 1)
    assert narrow["total_cycles"] - wide["total_cycles"] == 4


def test_output_spikes_converge_over_one_link_on_both_models(timing_model) -> None:
    """test_output_spikes_reach_the_output_buffer_over_one_link's hand count on both models: 150 output spikes
    need ceil(150/4) = 38 cycles at r = 4 against D_p = 27; at r = 8, 19 < 27."""
    changes = {"array.rows": 4, "array.cols": 4, "global_buffers.weight.bytes_per_cycle": 8}
    narrow = timing_model(make_arch(**changes, **{"noc.link_bytes_per_cycle": 8}), many_firing(), 1)
    wide = timing_model(make_arch(**changes, **{"noc.link_bytes_per_cycle": 16}), many_firing(), 1)
    assert narrow["total_cycles"] - wide["total_cycles"] == 38 - 27


def test_layer_major_keeps_full_folds_membranes_in_the_pes(timing_model) -> None:
    """Section 12.3: layer_major never moves membranes; its PE blocks were sized for the batch (b * q <= b * K).

    K = 16 B * 8 / 16 = 8 membranes, P = 1: fc's 16 neurons fill 2 folds of exactly 8, so the network's membranes are
    not resident (16 > 8) but each fold's are, at T = 2: no DRAM write, and the only reads are the 168 B of resident
    weights (fc 16 x 8 B, out 2 x 20 B)."""
    arch = make_arch(**{"pe.data_memory_bytes": 16, "dataflow": "layer_major"})
    c = timing_model(arch, wide_fc(timesteps=2), 1)
    a = c["accelerators"][0]["actions"]
    assert a["dram_write_bytes"] == 0 and a["dram_read_bytes"] == 16 * 8 + 2 * 20
