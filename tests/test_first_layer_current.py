"""Section 5 (hardware model 9): a layer reading the direct-encoded image keeps its constant current in the PE data
memory beside the membrane, reads it at every fire update, and moves it with the membranes."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.errors import MappingError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.engine import simulate
from satasim_atsn.hw.mapping import build_mapping
from satasim_atsn.workload.format import read_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
FMNIST = read_workload(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz")


def _layers(result) -> dict[str, dict]:
    return {row["name"]: row["counts"] for row in result.layers}


def test_a_fire_update_of_the_first_layer_reads_its_current_too():
    result = simulate(load_arch(ROOT / "archs" / "atsn16x16.yaml"), FMNIST, 4)
    layers = _layers(result)
    first, second = layers["conv1"], layers["conv2"]
    assert first["pe_dm_reads"] == first["pe_accumulations"] + 2 * first["pe_fire_updates"]
    assert first["pe_dm_writes"] == first["pe_accumulations"] + first["pe_fire_updates"]
    assert second["pe_dm_reads"] == second["pe_accumulations"] + second["pe_fire_updates"]  # spikes: no current


def test_the_first_layer_takes_two_words_per_neuron_in_the_mapping():
    """conv1 of vgg_small (16 x 28 x 28 = 12,544 neurons on 255 PEs, 50 per PE): one fold while a PE holds 100
    words (its membranes and currents), two of 25 neurons per PE when it holds 50."""
    arch = load_arch(ROOT / "archs" / "atsn16x16.yaml", ["pe.data_memory_bytes=200"])
    groups = {g.name: g for g in build_mapping(arch, FMNIST).groups}
    assert groups["conv1"].words_per_neuron == 2 and groups["conv2"].words_per_neuron == 1
    assert len(groups["conv1"].folds) == 1 and groups["conv1"].folds[0].q == 50
    arch = load_arch(ROOT / "archs" / "atsn16x16.yaml", ["pe.data_memory_bytes=100"])  # 50 words: 25 neurons
    groups = {g.name: g for g in build_mapping(arch, FMNIST).groups}
    assert len(groups["conv1"].folds) == 2 and groups["conv1"].folds[0].q == 25
    assert len(groups["conv2"].folds) == 1  # 32 x 14 x 14 neurons: 25 per PE, one word each


def test_a_memory_of_one_word_per_image_is_refused_naming_the_layer():
    arch = load_arch(ROOT / "archs" / "atsn16x16.yaml", ["pe.data_memory_bytes=4", "images_per_batch=2"])
    with pytest.raises(MappingError) as info:
        build_mapping(arch, FMNIST)
    message = str(info.value)
    assert "pe.data_memory_bytes" in message and "'conv1' reads the image" in message
    assert message.endswith("raise pe.data_memory_bytes to at least 8 or lower images_per_batch")


def test_the_fix_names_the_exit_units_memory_when_it_cannot_hold_the_batch_either():
    """images_per_batch=300 was told to raise pe.data_memory_bytes to 1200; followed, the exit unit refused the batch
    in turn (24,768 B). The fix names both, the reference's as the engine's, and followed, the design runs."""
    from satasim_atsn.hw.reference import simulate_reference

    arch = load_arch(ROOT / "archs" / "atsn16x16.yaml", ["images_per_batch=300"])
    with pytest.raises(MappingError) as engine_refusal:
        build_mapping(arch, FMNIST)
    with pytest.raises(MappingError) as reference_refusal:
        simulate_reference(arch, FMNIST, 1)
    message = str(engine_refusal.value)
    assert message == str(reference_refusal.value)
    assert message.endswith("raise pe.data_memory_bytes to at least 1200 and exit_unit.data_memory_bytes to at least "
                            "24768 or lower images_per_batch")
    followed = load_arch(ROOT / "archs" / "atsn16x16.yaml", ["images_per_batch=300", "pe.data_memory_bytes=1200",
                                                               "exit_unit.data_memory_bytes=24768"])
    assert simulate(followed, FMNIST, 2).metrics()["images"] == 2


def test_spilled_membranes_carry_the_current_in_at_every_step_and_out_once():
    """Membranes not resident: conv1's fill at t > 1 moves two words per neuron and image, its spill after t = 1
    two and later spills one; a spike-frame first layer would move one (checked by the reference elsewhere)."""
    arch = load_arch(ROOT / "archs" / "conventional16x16.yaml", ["pe.data_memory_bytes=128", "accelerators=1"])
    mapping = build_mapping(arch, FMNIST)
    assert not mapping.membranes_resident
    result = simulate(arch, FMNIST, 1)
    conv1 = next(g for g in mapping.groups if g.name == "conv1")
    neurons, T = conv1.neurons, FMNIST.timesteps
    counts = _layers(result)["conv1"]
    fills = 2 * neurons * (T - 1)  # words into the data memories
    spills = 2 * neurons + neurons * (T - 2)  # words out of them
    assert counts["dram_read_bytes"] == fills * 2 and counts["dram_write_bytes"] == spills * 2  # 16-bit words
    fires = counts["pe_fire_updates"]
    assert counts["pe_dm_writes"] == counts["pe_accumulations"] + fires + fills
    assert counts["pe_dm_reads"] == counts["pe_accumulations"] + 2 * fires + spills


def test_spike_frame_inputs_keep_one_word():
    workload = random_workload(5, images=1, encoding="spike_frames")
    assert workload.input_encoding == "spike_frames"
    mapping = build_mapping(load_arch(ROOT / "archs" / "atsn16x16.yaml"), workload)
    assert all(g.words_per_neuron == 1 for g in mapping.groups if g.kind == "pe")
    direct = random_workload(5, images=1, encoding="direct")
    direct = build_mapping(load_arch(ROOT / "archs" / "atsn16x16.yaml"), direct)
    assert direct.groups[0].words_per_neuron == 2


def _first_layer_weight_counts(result) -> dict[str, int]:
    counts = _layers(result)["conv1"]
    return {key: counts[key] for key in ("weight_glb_read_bytes", "weight_glb_write_bytes", "pe_weight_write_bytes",
                                         "dram_read_bytes")}


@pytest.mark.parametrize("resident", [True, False])
def test_the_first_layer_streams_its_weights_at_t_1_and_its_thresholds_after(resident):
    """Section 5: conv1 of vgg_small (16 channels x (1 x 3 x 3 weights + a 2 B bias + a 2 B threshold) = 208 B, one
    fold) computes its current at t = 1 and only fires at t > 1, so each image's batch streams (and, weights not
    resident, reads) its weights and biases once, however many timesteps it runs, and its 16 x 2 B thresholds at
    every later timestep; conv2, which reads spikes, streams everything at every timestep.

    PE shares: conv1's 16 x 28 x 28 = 12,544 neurons sit 50 per PE (ceil(12,544 / 255)) on 251 PEs; a channel is
    784 neurons, and none of its 15 inner boundaries (784 k, 784 k mod 50 = 34 k mod 50 != 0 for k <= 15) falls on
    a block's edge, so 251 + 15 = 266 (PE, channel) pairs, each written 13 B at t = 1 and 2 B later."""
    overrides = [] if resident else ["global_buffers.weight.bytes=1024"]
    arch = load_arch(ROOT / "archs" / "atsn16x16.yaml", overrides)
    mapping = build_mapping(arch, FMNIST)
    assert mapping.weights_resident == resident and mapping.membranes_resident
    images = 4  # images_per_batch 1: one batch, hence one t = 1 pass, per image
    result = simulate(arch, FMNIST, images)
    groups = {g.name: g for g in mapping.groups}
    conv1 = groups["conv1"].folds
    assert len(conv1) == 1 and conv1[0].weight_bytes == 16 * (1 * 3 * 3 + 2 + 2) == 208
    counts = _first_layer_weight_counts(result)
    steps = int(result.exit_t.sum())  # every image's timesteps
    assert steps > images  # some image runs past t = 1
    later = steps - images  # steps past t = 1: thresholds only
    assert counts["weight_glb_read_bytes"] == images * 208 + later * 16 * 2
    assert counts["pe_weight_write_bytes"] == images * 266 * 13 + later * 266 * 2
    fetched = 0 if resident else images * 208 + later * 16 * 2
    assert counts["weight_glb_write_bytes"] == counts["dram_read_bytes"] == fetched
    conv2_layer = FMNIST.layer("conv2")
    per_channel = int(conv2_layer["in_shape"][0]) * int(conv2_layer["kernel"]) ** 2 + 2 + 2
    assert len(groups["conv2"].folds) == 1 and groups["conv2"].out_shape[0] == 32
    assert _layers(result)["conv2"]["weight_glb_read_bytes"] == steps * 32 * per_channel


def test_refill_streams_the_first_layer_in_the_steps_that_start_an_image():
    """Batch refill (section 12.2): a step streams a first layer's weights, biases and thresholds when one of its
    items is at t = 1, i.e. when it starts an image, and its thresholds alone otherwise; both models agree on every
    counter."""
    from satasim_atsn.hw.reference import simulate_reference
    from satasim_atsn.hw.verify import diff_counters
    from satasim_atsn.traces.twin_fit import fit_statistical_twin

    workload = fit_statistical_twin(random_workload(7, images=6, encoding="direct", max_channels=3, size=4), seed=7)
    arch = load_arch(ROOT / "archs" / "atsn16x16.yaml", [
        "array.rows=2", "array.cols=2", "accelerators=1", "images_per_batch=2", "batch_refill=true",
        "global_buffers.weight.bytes=16", "global_buffers.weight.banks=2"])
    mapping = build_mapping(arch, workload)
    assert not mapping.weights_resident
    first = mapping.groups[0]
    assert all(inp.encoding == "image" for inp in first.inputs)
    result = simulate(arch, workload, 6)
    reference = simulate_reference(arch, workload, 6)
    assert not diff_counters(result.counters(), {k: v for k, v in reference.items() if k != "pe_output_spikes"})
    starting_steps = len(set(zip(result.accelerator.tolist(), result.start_cycle.tolist(), strict=True)))
    assert starting_steps < int(result.exit_t.sum())  # some step has no image at t = 1
    counts = _layers(result)[first.name]
    layer, out = workload.layer(first.name), workload.layers[-1]
    word = 2  # pe.vmem_bits 16: a bias or threshold word (section 3)
    per_channel = int(layer["in_shape"][0]) * int(layer["kernel"]) ** 2 + 2 * word
    channels = sum(f.channels for f in first.folds)  # a channel split over two folds is streamed with each
    steps = _layers(result)[out["name"]]["exit_weight_write_bytes"] // (
        workload.num_classes * (int(np.prod(out["in_shape"])) + 4))  # the exit unit streams its weights every step
    assert steps > starting_steps
    assert counts["weight_glb_read_bytes"] == starting_steps * channels * per_channel + \
        (steps - starting_steps) * channels * word
    assert counts["dram_read_bytes"] >= counts["weight_glb_write_bytes"] == counts["weight_glb_read_bytes"]


def test_the_first_layers_current_is_w_x_plus_b_shifted_on_either_kernel():
    """(W.x + b) >> input_shift (docs/microarchitecture.md section 5) whether the pixel kernel or the GEMM computes
    W.x (the GEMM when the pixel kernel's int32 sums would not be exact): dropping the bias on the GEMM path passed
    the suite (mutant F11 of session 37). One output position by hand."""
    from satasim_atsn.snn.forward import QuantisedNetwork

    net = QuantisedNetwork(FMNIST)
    x = np.asarray(FMNIST.arrays["x"][:2])
    assert net.w_pixel is not None
    pixel, pixel_sops = net.first_layer_current(x)
    net.w_pixel = None
    gemm, gemm_sops = net.first_layer_current(x)
    np.testing.assert_array_equal(gemm, pixel)
    np.testing.assert_array_equal(gemm_sops, pixel_sops)
    w, b = FMNIST.arrays["w/conv1"].astype(np.int64), FMNIST.arrays["b/conv1"].astype(np.int64)
    assert np.abs(b).max() > 0
    k, pad = FMNIST.layers[0]["kernel"], FMNIST.layers[0]["padding"]
    assert FMNIST.layers[0]["stride"] == 1
    padded = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    y0, x0 = 5, 7  # output row 5, column 7 (stride 1): the window padded[:, :, 5:5+k, 7:7+k]
    window = padded[1, :, y0:y0 + k, x0:x0 + k]
    by_hand = ((w * window[None]).sum(axis=(1, 2, 3)) + b) >> FMNIST.input_shift
    np.testing.assert_array_equal(gemm[1, y0, x0], by_hand)
