"""Static mapping (docs/microarchitecture.md sections 2-3): groups, folds, PE blocks, residency, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.errors import SatasimError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.mapping import build_mapping
from satasim_atsn.snn.exit_policies import LUT_WORD_BYTES
from satasim_atsn.workload.synthetic import random_workload

ARCH = Path(__file__).resolve().parent.parent / "archs" / "atsn16x16.yaml"


def arch_with(**sets):
    return load_arch(ARCH, [f"{k}={v}" for k, v in sets.items()])


@pytest.mark.parametrize("seed", range(10))
def test_folds_and_pe_blocks_follow_section_3(seed):
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(2, 4)), int(rng.integers(2, 5))
    dm = int(rng.choice([4, 8, 16, 64]))
    arch = arch_with(**{"array.rows": rows, "array.cols": cols, "pe.data_memory_bytes": dm})
    wl = random_workload(seed, images=1)
    m = build_mapping(arch, wl)
    P, K = rows * cols - 1, dm * 8 // 16
    assert (m.num_pes, m.capacity_neurons) == (P, K)
    assert list(m.pe_hops) == [p // cols + p % cols for p in range(P)]
    assert m.exit_hops == P // cols + P % cols
    for g in m.pe_groups:
        N = g.neurons
        assert len(g.folds) == math.ceil(N / (P * K))
        covered = []
        for f, fold in enumerate(g.folds):
            assert fold.start == f * P * K and fold.stop == min(N, (f + 1) * P * K)
            q = math.ceil(fold.n / P)
            assert fold.q == q
            for p in range(P):
                lo = fold.start + min(p * q, fold.n)
                hi = fold.start + min((p + 1) * q, fold.n)
                assert (fold.pe_offsets[p], fold.pe_offsets[p + 1]) == (lo, hi)
                assert hi - lo <= K
            covered += list(range(fold.start, fold.stop))
        assert covered == list(range(N))
    # membrane residency rule
    expect = sum(math.ceil(g.neurons / P) for g in m.pe_groups) <= K
    assert m.membranes_resident == expect


def test_fold_weight_bytes_count_channels_with_a_neuron_in_the_fold():
    wl = random_workload(4, images=1, residual=False, size=8)
    arch = arch_with(**{"array.rows": 2, "array.cols": 2, "pe.data_memory_bytes": 8})
    m = build_mapping(arch, wl)
    conv = m.groups[0]
    layer = wl.layer(conv.name)
    _, ho, wo = conv.out_shape
    fan_in = layer["in_shape"][0] * layer["kernel"] ** 2
    for fold in conv.folds:
        channels = len({n // (ho * wo) for n in range(fold.start, fold.stop)})
        assert fold.weight_bytes == channels * fan_in


def test_add_group_owns_its_non_spiking_convs_and_inputs_in_order():
    for seed in range(40):
        wl = random_workload(seed, images=1, residual=True)
        names = [ly["name"] for ly in wl.layers]
        m = build_mapping(arch_with(), wl)
        add = next(g for g in m.groups if g.name == "blk_add")
        if "blk_sc" in names:
            assert add.layers == ["blk_b", "blk_sc", "blk_add"]
            assert [i.coverage for i in add.inputs] == ["conv", "conv"]
            assert add.inputs[0].source == "blk_a"
        else:
            assert add.layers == ["blk_b", "blk_add"]
            assert [i.coverage for i in add.inputs] == ["conv", "identity"]
        assert "blk_b" not in [g.name for g in m.groups]


def test_weight_residency_threshold():
    wl = random_workload(2, images=1)
    total = sum(int(v.size) for k, v in wl.arrays.items() if k.startswith("w/"))
    assert build_mapping(arch_with(**{"global_buffers.weight.bytes": total}), wl).weights_resident
    assert not build_mapping(arch_with(**{"global_buffers.weight.bytes": total - 1}), wl).weights_resident
    assert build_mapping(arch_with(), wl).total_weight_bytes == total


@pytest.mark.parametrize(
    "sets, words",
    [
        ({"pe.data_memory_bytes": 1}, "membrane"),
        ({"exit_unit.data_memory_bytes": 256 * LUT_WORD_BYTES + 1}, "output membranes"),
    ],
)
def test_mapping_errors_are_one_line(sets, words):
    with pytest.raises(SatasimError) as info:
        build_mapping(arch_with(**sets), random_workload(1, images=1))
    assert words in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("prediction", ["membrane_sum", "membrane"])
def test_exit_unit_must_hold_the_classes(prediction):
    wl = random_workload(1, images=1, num_classes=5)
    sums = prediction == "membrane_sum" and wl.layers[-1]["output_mode"] == "membrane"
    need = (2 if sums else 1) * 5 * 32 // 8 + 256 * LUT_WORD_BYTES
    fields = {"exit_unit.prediction": prediction}
    build_mapping(arch_with(**fields, **{"exit_unit.data_memory_bytes": need}), wl)
    with pytest.raises(SatasimError):
        build_mapping(arch_with(**fields, **{"exit_unit.data_memory_bytes": need - 1}), wl)
