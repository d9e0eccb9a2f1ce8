"""Section 5 (hardware model 9): a layer reading the direct-encoded image keeps its constant current in the PE data
memory beside the membrane, reads it at every fire update, and moves it with the membranes."""

from __future__ import annotations

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
