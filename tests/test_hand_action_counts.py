"""Hand-derived action counts (docs/microarchitecture.md section 9, the counts docs/energy.md prices), on both models.

The engine is checked against the reference elsewhere, so a counting rule both read the same wrong way would pass
that comparison: each case here pins the counts to numbers derived by hand from the documents' text. They reuse the
hand architecture and tiny networks of tests/test_reference.py (2 B spike addresses, 16 B/cycle DRAM).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from test_reference import ARCH, frames_workload, make_arch, three_spikes, tiny_workload

from satasim_atsn.hw.arch import build_arch
from satasim_atsn.traces.functional import functional_trace
from satasim_atsn.workload.format import Workload, validate
from satasim_atsn.workload.synthetic import random_workload


def nonzero_actions(counters: dict) -> dict[str, int]:
    """The actions of accelerator 0 that happened (a count the case does not expect shows up as a new key)."""
    return {k: int(v) for k, v in counters["accelerators"][0]["actions"].items() if v}


def direct_four_channels(timesteps: int = 2) -> Workload:
    """Direct image [4, 1, 1], pixels [3, 0, 0, 0] -> 1x1 conv of 4 channels (fc) -> flatten -> output (2 classes).

    Pixel 3 is bit planes 0 and 1: two 'spikes' at position 0, each covering the 4 channels. Channel 0 (weights +100,
    current 100 + 200 = 300 >= threshold 50) fires at t = 1 and t = 2; channels 1..3 (weights -100) never do."""
    w = tiny_workload(pixels=np.array([3, 0, 0, 0]).reshape(1, 4, 1, 1), timesteps=timesteps)
    meta = copy.deepcopy(w.meta)
    for layer in meta["layers"]:  # shapes are derived again by validate
        layer.pop("in_shape", None), layer.pop("out_shape", None)
    meta["layers"][0]["out_channels"] = 4
    w_fc = np.full((4, 4, 1, 1), -100, dtype=np.int8)
    w_fc[0] = 100
    arrays = dict(w.arrays, **{"w/fc": w_fc, "b/fc": np.zeros(4, dtype=np.int32), "vth/fc": np.full(4, 50, np.int32),
                               "w/out": np.array([[127] * 4, [-127] * 4], dtype=np.int8)})
    return validate(Workload(meta=meta, arrays=arrays, source="<direct, 4 channels>"))


def test_a_first_layers_current_moves_with_its_membranes_word_by_word(timing_model) -> None:
    """Sections 4, 5 and 9 with membranes not resident, 20-bit PE words, two PEs at h = 0 and 1 (array 1 x 3).

    Mapping: K = 6 B * 8 / 20 = 2 words per PE; fc reads the image, so 2 words per neuron (membrane and current): 1
    neuron per PE per fold, folds {0, 1} and {2, 3} (PE 0 at h = 0, PE 1 at h = 1), 4 words > 2: not resident.
    Weights: fc 4 x (4 + 3 B bias + 3 B threshold, ceil(20 / 8) = 3 B each) = 40 B, out 2 x (4 + 4 B bias) =
    16 B: 56 B resident, one read.
    Per fold: t = 1 spill after compute of 1 membrane + 1 current = 2 words per neuron: ceil(2 x 2 x 20 / 8) = 10 B,
    byte-hops ceil(2 x 20 x (1 x 0 + 1 x 1) / 8) = 5, 4 data-memory reads; t = 2 fill of the same 2 words: 10 B,
    5 byte-hops, 4 data-memory writes; no spill at t = T. Two folds: DRAM writes 20, DRAM reads 56 + 20 = 76.
    PE: 2 plane spikes x 1 neuron per PE x 2 PEs x 2 folds = 8 accumulations (8 weight reads); 4 neurons x 2 steps =
    8 fire updates; reads 8 + 8 x 2 (the current too) + 8 spilled = 32; writes 8 + 8 + 8 filled = 24.
    Weights written: t = 1 the whole 40 B, t = 2 the thresholds alone, 4 x 3 = 12 (section 5); GLB reads 40 + 12 + 16
    x 2 (the exit unit's every step) = 84; exit weight writes 32. Spikes: channel 0 at t = 1, 2 (PE 0 at h = 0):
    2 pushes, 4 B written; 4 pixel bytes per fold at t = 1 + 2 spikes x 2 B to the exit unit read = 12.
    Byte-hops: membranes 4 x 5 = 20; fc's weights 10 B to h = 1 per fold at t = 1 (20), thresholds 3 B (6);
    out's 16 B x h(2) = 2 per step (64); plane spikes, 2 x 2 B x 1 link per fold (8); channel 0's spikes 0; their
    delivery to the exit unit 2 x 2 B x 2 (8): 126. Exit unit: 2 spikes x 2 classes, 2 classes x 2 steps updated.
    """
    arch = make_arch(**{"array.cols": 3, "pe.vmem_bits": 20, "pe.data_memory_bytes": 6})
    c = timing_model(arch, direct_four_channels(), 1)
    assert nonzero_actions(c) == {
        "dram_read_bytes": 76, "dram_write_bytes": 20, "noc_byte_hops": 20 + 20 + 6 + 64 + 8 + 8,
        "pe_accumulations": 8, "pe_weight_reads": 8, "pe_fire_updates": 8, "pe_dm_reads": 32, "pe_dm_writes": 24,
        "pe_input_buffer_pushes": 8, "pe_spikes_out": 2, "pe_output_buffer_pushes": 2,
        "pe_weight_write_bytes": 52, "weight_glb_read_bytes": 84, "weight_glb_write_bytes": 56,
        "spike_glb_read_bytes": 12, "spike_glb_write_bytes": 4,
        "exit_accumulations": 4, "exit_updates": 4, "exit_weight_write_bytes": 32,
    }


def test_weight_and_spike_byte_hops_follow_the_multicast_trees_of_a_two_row_array(timing_model) -> None:
    """Section 9 on a 2 x 3 array: P = 5 PEs at tiles (0,0) (0,1) (0,2) (1,0) (1,1), h = 0, 1, 2, 1, 2; the exit unit
    at (1,2), h = 3. Spike frames [1, 1, 10], x0 and x7 on -> 3x3 conv (padding 1, 1 channel, weights +100) -> out.

    fc's 10 neurons, 2 per PE (ox 0-1 on PE 0, ..., ox 8-9 on PE 4), are one channel: its 9 weights + 2 B bias + 2 B
    threshold = 13 B go to all five PEs over the tree's 4 links (0,0)-(0,1)-(0,2), (0,0)-(1,0), (0,1)-(1,1), not
    their 0 + 1 + 2 + 1 + 2 = 6 routes: 52 byte-hops; every PE stores its 13 B (65 written). The output layer's
    2 x (10 + 4) = 28 B to the exit tile: 84. x0 covers ox 0, 1 (PE 0: no link); x7 covers ox 6, 7 (PE 3) and 8
    (PE 4): its tree is (0,0)-(0,1), (0,0)-(1,0), (0,1)-(1,1), 3 links x 2 B = 6. The 5 fired neurons' spikes go
    to the output buffer at tile (0,0) from h = 0, 0, 1, 1, 2: 2 B x 4 = 8; and to the exit unit, 5 x 2 B x 3 = 30.
    180 byte-hops; 3 deliveries; 5 accumulations (x0: 2 on PE 0; x7: 2 on PE 3, 1 on PE 4), each reading one
    weight; 10 fire updates; 5 x 2 exit accumulations."""
    layer = {"name": "fc", "type": "conv", "inputs": ["input"], "kernel": 3, "stride": 1, "padding": 1,
             "out_channels": 1, "spiking": True}
    c = timing_model(make_arch(**{"array.rows": 2, "array.cols": 3}), frames_workload(10, [0, 7], layer,
                                                                          np.full((1, 1, 3, 3), 100)), 1)
    a = nonzero_actions(c)
    assert a["noc_byte_hops"] == 52 + 84 + 6 + 8 + 30
    assert a["pe_weight_write_bytes"] == 5 * 13 and a["weight_glb_read_bytes"] == 13 + 28
    assert (a["pe_input_buffer_pushes"], a["pe_accumulations"], a["pe_fire_updates"]) == (3, 5, 10)
    assert a["pe_weight_reads"] == 5  # one int8 weight per accumulation (section 4.1), not one per delivery
    assert (a["pe_spikes_out"], a["spike_glb_write_bytes"], a["spike_glb_read_bytes"]) == (5, 10, 2 * 2 + 5 * 2)
    assert (a["exit_accumulations"], a["exit_updates"]) == (10, 2)


def dt_arch() -> object:
    """The hand-check architecture as a DTSNN accelerator: analog PEs (8-bit ADC, 2 cycles per conversion) and a DT
    exit unit (1 KB table, 4-cycle divider, theta 0.5, prediction by the running membrane sum)."""
    raw = copy.deepcopy(ARCH)
    raw.update(kind="dtsnn")
    raw["pe"].update(decay="shift_add", accumulation="analog", adc_bits=8, adc_cycles_per_conversion=2)
    raw["exit_unit"].update(kind="dt", lut_bytes=1024, divider_cycles=4, theta=0.5, multipliers=1,
                            prediction="membrane_sum")
    return build_arch(raw, where="<hand dt arch>")


def output_mode(workload: Workload, mode: str) -> Workload:
    """The workload with its output layer's output_mode set to ``mode``."""
    meta = copy.deepcopy(workload.meta)
    for layer in meta["layers"]:  # shapes are derived again by validate
        layer.pop("in_shape", None), layer.pop("out_shape", None)
    meta["layers"][-1]["output_mode"] = mode
    return validate(Workload(meta=meta, arrays=dict(workload.arrays), source=f"<{mode}>"))


@pytest.mark.parametrize(("mode", "sums"), [("accumulate", 0), ("membrane", 2)])
def test_dt_decision_adc_and_running_sum_counts(timing_model, mode: str, sums: int) -> None:
    """Sections 3 and 7, C = 2 classes, T = 2: class 0 leads by 50.8 in logits, so the normalised entropy is ~0 < 0.5
    and the image exits at t = 1: one decision of C + 1 = 3 compares, 4C = 8 LUT reads and 8 multiplies (the 2C exp
    and 2C log steps), 1 divide, 2C = 4 adds; none at t = T. The exit unit accumulates fc's 1 spike into both
    classes (2) and updates both (2); with output_mode membrane and prediction membrane_sum it also adds each
    updated membrane into its running sum (2 adds), with accumulate it keeps none. Each of the 2 fire updates of
    the analog PEs is one ADC conversion, however many cycles a conversion takes (2 here)."""
    c = timing_model(dt_arch(), output_mode(three_spikes(timesteps=2), mode), 1)
    a = nonzero_actions(c)
    exit_counts = {k: v for k, v in a.items() if k.startswith("exit_") and k != "exit_weight_write_bytes"}
    assert exit_counts == {"exit_compares": 3, "exit_lut_reads": 8, "exit_multiplies": 8, "exit_divides": 1,
                           "exit_decision_adds": 4, "exit_accumulations": 2, "exit_updates": 2,
                           **({"exit_prediction_adds": sums} if sums else {})}
    assert a["adc_conversions"] == a["pe_fire_updates"] == 2


@pytest.mark.parametrize("refill", [False, True])
def test_the_current_is_spilled_once_and_filled_at_every_later_step(timing_model, refill: bool) -> None:
    """test_a_first_layers_current_moves_with_its_membranes_word_by_word at T = 3, in plain batches and in a batch
    refill step program (one image: the same moves). Per fold (2 neurons, hop sum 1 x 0 + 1 x 1 = 1, 20-bit words):
    t = 1 spill of membrane + current, 2 words: ceil(2 x 2 x 20 / 8) = 10 B, ceil(2 x 20 x 1 / 8) = 5 byte-hops,
    4 data-memory reads; t = 2 fill of 2 words (10 B, 5, 4 writes) and spill of the membrane alone (section 5: the
    current is constant, spilled once): ceil(2 x 20 / 8) = 5 B, ceil(20 x 1 / 8) = 3 byte-hops, 2 reads; t = 3 fill
    of 2 words (10 B, 5, 4 writes). Two folds: DRAM writes 2 x 15 = 30, reads 56 (weights) + 2 x 20 = 96,
    membrane byte-hops 2 x 18 = 36. Fire updates 4 x 3 = 12: reads 8 + 12 x 2 + 12 = 44, writes 8 + 12 + 16 = 36.
    Other byte-hops: fc's weights at t = 1 (20) and thresholds at t = 2, 3 (12), out's weights 3 x 32 (96), plane
    spikes (8), channel 0's 3 spikes to the exit unit 3 x 2 B x 2 (12): 184 in all."""
    arch = make_arch(**{"array.cols": 3, "pe.vmem_bits": 20, "pe.data_memory_bytes": 6, "batch_refill": refill})
    a = nonzero_actions(timing_model(arch, direct_four_channels(timesteps=3), 1))
    assert (a["dram_write_bytes"], a["dram_read_bytes"]) == (30, 96)
    assert (a["pe_fire_updates"], a["pe_dm_reads"], a["pe_dm_writes"]) == (12, 44, 36)
    assert a["noc_byte_hops"] == 36 + 20 + 12 + 96 + 8 + 12


def test_the_exit_unit_decides_before_the_last_timestep_only(timing_model) -> None:
    """Sections 3 and 7: both output rows equal (the classes tie), so the normalised entropy is 1 >= theta 0.5 at
    every step and the image runs to T = 3. The unit decides at t = 1 and t = 2, never at t = T: 2 x (C + 1 = 3
    compares, 4C = 8 LUT reads, 8 multiplies, 1 divide, 2C = 4 adds). It updates both classes at every step (6)
    and, output_mode membrane with prediction membrane_sum, adds each into its running sum (6); fc's 1 spike at
    t = 1 is accumulated into both classes (2)."""
    w = three_spikes(timesteps=3)
    tie = Workload(meta=w.meta, arrays=dict(w.arrays, **{"w/out": np.full((2, 2), 127, dtype=np.int8)}), source="<tie>")
    c = timing_model(dt_arch(), output_mode(tie, "membrane"), 1)
    assert c["images"]["exit_t"] == [3]
    a = nonzero_actions(c)
    assert {k: v for k, v in a.items() if k.startswith("exit_") and k != "exit_weight_write_bytes"} == {
        "exit_compares": 6, "exit_lut_reads": 16, "exit_multiplies": 16, "exit_divides": 2, "exit_decision_adds": 8,
        "exit_accumulations": 2, "exit_updates": 6, "exit_prediction_adds": 6}


def test_an_identity_shortcut_accumulates_without_reading_a_weight(timing_model) -> None:
    """docs/energy.md, pe_weight_reads: one int8 weight per accumulation, identity-shortcut accumulations read none
    (docs/microarchitecture.md section 4.1: the shortcut's spike is added times the add's shortcut_gain, one
    accumulation on the PE holding the same neuron). So the weight reads are the accumulations less one per spike of
    the shortcut's source map (its functional spikes), on a random residual network with such a shortcut."""
    workload = random_workload(6, images=1, residual=True, encoding="spike_frames", max_channels=3, size=4,
                               timesteps=2)
    add = next(ly for ly in workload.layers if ly["type"] == "add")
    assert "shortcut_gain" in add  # an identity shortcut, not a 1x1 conv
    arch = make_arch(**{"array.rows": 2, "array.cols": 2})
    trace = functional_trace(workload, arch.exit_policy(), arch.policy_name, 0, 1, arch.prediction_rule)
    shortcut_spikes = int(trace.spikes[add["inputs"][1]].sum())
    assert shortcut_spikes > 0
    a = nonzero_actions(timing_model(arch, workload, 1))
    assert a["pe_weight_reads"] == a["pe_accumulations"] - shortcut_spikes
