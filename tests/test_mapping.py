"""Static mapping (docs/microarchitecture.md sections 2-3): groups, folds, PE blocks, residency, errors."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.errors import SatasimError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.mapping import build_mapping
from satasim_atsn.snn.exit_policies import LUT_WORD_BYTES
from satasim_atsn.workload.synthetic import random_workload

ARCH = Path(__file__).resolve().parent.parent / "archs" / "atsn16x16.yaml"
WORDS = 2 + 2  # a firing channel's bias and threshold beside its weights: 2 B each at pe.vmem_bits 16 (section 3)


def arch_with(**sets):
    return load_arch(ARCH, [f"{k}={v}" for k, v in sets.items()])


@pytest.mark.parametrize("seed", range(10))
def test_folds_and_pe_blocks_follow_section_3(seed):
    rng = np.random.default_rng(seed)
    rows, cols = int(rng.integers(2, 4)), int(rng.integers(2, 5))
    dm = int(rng.choice([4, 8, 16, 64]))
    # images per batch: each keeps its own membranes, and a first layer's currents (section 5)
    b = int(rng.integers(1, min(3, dm * 8 // 16 // 2) + 1))
    arch = arch_with(**{"array.rows": rows, "array.cols": cols, "pe.data_memory_bytes": dm, "images_per_batch": b})
    wl = random_workload(seed, images=1)
    m = build_mapping(arch, wl)
    P, K = rows * cols - 1, dm * 8 // 16 // b
    assert (m.num_pes, m.capacity_neurons, m.fold_capacity_neurons) == (P, dm * 8 // 16, K)
    assert list(m.pe_hops) == [p // cols + p % cols for p in range(P)]
    assert m.exit_hops == P // cols + P % cols
    for g in m.pe_groups:
        N, K = g.neurons, m.fold_capacity_neurons // g.words_per_neuron
        assert g.words_per_neuron == (2 if any(i.encoding == "image" for i in g.inputs) else 1)
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
    expect = b * sum(math.ceil(g.neurons / P) * g.words_per_neuron for g in m.pe_groups) <= m.capacity_neurons
    assert m.membranes_resident == expect


def test_a_batch_divides_the_pe_data_memory():
    """Section 3: b images keep b membranes per neuron, so folds shrink and residency needs b times the room."""
    wl = random_workload(3, images=1, residual=False, size=8)
    for b in (1, 2, 4):
        m = build_mapping(arch_with(**{"array.rows": 2, "array.cols": 2, "pe.data_memory_bytes": 1000,
                                       "images_per_batch": b}), wl)
        assert m.fold_capacity_neurons == 500 // b
        assert max(int(np.diff(f.pe_offsets).max()) for g in m.pe_groups for f in g.folds) <= 500 // b
        per_image = sum(math.ceil(g.neurons / m.num_pes) * g.words_per_neuron for g in m.pe_groups)
        assert m.membranes_resident == (b * per_image <= 500)
    assert per_image * 2 <= 500 < per_image * 4, "the case must be resident at b = 2 and not at b = 4"
    # the shipped VGG16 on the shipped design: conv1's 65,536 neurons, two words each (membrane and current,
    # section 5), need ceil(65536 / (255 x 256)) = 2 folds of 255 x 512 words for one image, and
    # ceil(65536 / (255 x 32)) = 9 for a batch of 8
    from satasim_atsn.workload.format import read_workload

    vgg = read_workload(Path(__file__).resolve().parent.parent / "workloads" / "vgg16_cifar10.npz")
    assert [len(build_mapping(arch_with(images_per_batch=b), vgg).groups[0].folds) for b in (1, 8)] == [2, 9]


def test_fold_weight_bytes_count_channels_with_a_neuron_in_the_fold():
    """A fold's bytes are its channels' weights and their bias and threshold words; its threshold-only stream (a
    layer reading the image, t > 1, section 5) their threshold words."""
    wl = random_workload(4, images=1, residual=False, size=8)
    arch = arch_with(**{"array.rows": 2, "array.cols": 2, "pe.data_memory_bytes": 8})
    m = build_mapping(arch, wl)
    conv = m.groups[0]
    layer = wl.layer(conv.name)
    _, ho, wo = conv.out_shape
    fan_in = layer["in_shape"][0] * layer["kernel"] ** 2
    assert len(conv.folds) > 1
    for fold in conv.folds:
        channels = len({n // (ho * wo) for n in range(fold.start, fold.stop)})
        assert fold.weight_bytes == channels * (fan_in + WORDS) and fold.threshold_bytes == channels * 2


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
    from test_reference import parameter_word_bytes

    wl = random_workload(2, images=1)
    total = sum(int(v.size) for k, v in wl.arrays.items() if k.startswith("w/"))
    total += parameter_word_bytes(arch_with(), wl)  # biases and thresholds stay beside the weights (section 3)
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


def test_exit_memory_fix_is_sized_for_the_batch():
    """The fix named the size of one image's membranes; with images_per_batch 3 the batch check then asked for
    three times that (a second failed run). It names what the whole batch needs."""
    from satasim_atsn.hw.run_checks import check_batch

    wl = random_workload(1, images=3, num_classes=5)
    sums = wl.layers[-1]["output_mode"] == "membrane"
    table = 256 * LUT_WORD_BYTES
    per_image = (2 if sums else 1) * 5 * 32 // 8
    with pytest.raises(SatasimError, match=rf"raise it to at least {3 * per_image + table} \(the 3 images of a "
                                           r"batch, images_per_batch\)"):
        build_mapping(arch_with(**{"images_per_batch": 3, "exit_unit.data_memory_bytes": table}), wl)
    roomy = arch_with(**{"images_per_batch": 3, "exit_unit.data_memory_bytes": 3 * per_image + table})
    check_batch(roomy, build_mapping(roomy, wl), wl)  # the size named is enough for both checks


def test_a_shipped_design_given_by_name_is_named_so():
    """`satasim run atsn16x16 ...` named the installed file's absolute path in its errors."""
    with pytest.raises(SatasimError, match=r"^atsn16x16: pe\.data_memory_bytes: "):
        build_mapping(load_arch("atsn16x16", ["pe.data_memory_bytes=1"]), random_workload(1, images=1))
    with pytest.raises(SatasimError, match=r"^atsn16x16: pe\.adders: must be positive"):
        load_arch("atsn16x16", ["pe.adders=0"])
    assert load_arch(ARCH).source == str(ARCH)


def _fan_in(layer: dict) -> int:
    return layer["in_shape"][0] * layer["kernel"] ** 2 if layer["type"] == "conv" else layer["in_shape"][0]


def test_weight_memory_splits_folds_so_every_share_fits():
    """Section 3: each PE's weight share (its channels' kernels) fits pe.weight_memory_bytes; Q is the largest such."""
    wl = random_workload(4, images=1, residual=False, size=8)
    conv_layer = wl.layer(wl.layers[0]["name"])
    fan_in = _fan_in(conv_layer)
    roomy = build_mapping(arch_with(**{"array.rows": 2, "array.cols": 2, "pe.data_memory_bytes": 2048}), wl)
    tight = build_mapping(arch_with(**{"array.rows": 2, "array.cols": 2, "pe.data_memory_bytes": 2048,
                                       "pe.weight_memory_bytes": fan_in + WORDS}), wl)
    g_roomy, g_tight = roomy.groups[0], tight.groups[0]
    _, ho, wo = g_tight.out_shape
    assert len(g_roomy.folds) == 1 and len(g_tight.folds) > 1
    for fold in g_tight.folds:
        for p in range(3):
            lo, hi = int(fold.pe_offsets[p]), int(fold.pe_offsets[p + 1])
            channels = len({n // (ho * wo) for n in range(lo, hi)})
            assert fold.pe_weight_bytes[p] == channels * (fan_in + WORDS) <= fan_in + WORDS
    # Q is the largest: with Q + 1 neurons per PE some block of some fold spans two channels
    Q, N = g_tight.folds[0].n // 3, g_tight.neurons
    spans = []
    for start in range(0, N, 3 * (Q + 1)):
        n = min(N, start + 3 * (Q + 1)) - start
        q = math.ceil(n / 3)
        spans += [len({j // (ho * wo) for j in range(start + min(p * q, n), start + min((p + 1) * q, n))})
                  for p in range(3)]
    assert max(spans) > 1
    # the roomy mapping writes a channel shared by two PEs into both memories
    f = g_roomy.folds[0]
    assert int(f.pe_weight_bytes.sum()) >= f.weight_bytes


def test_a_neuron_whose_weights_do_not_fit_is_a_one_line_error():
    wl = random_workload(4, images=1, residual=False, size=8)
    need = _fan_in(wl.layers[0]) + WORDS  # one channel's weights, bias and threshold (section 3)
    with pytest.raises(SatasimError) as info:
        build_mapping(arch_with(**{"pe.weight_memory_bytes": need - 1}), wl)
    msg = str(info.value)
    assert "pe.weight_memory_bytes" in msg and wl.layers[0]["name"] in msg and f"at least {need}" in msg
    assert "weights, bias and threshold" in msg and "\n" not in msg


def test_the_weight_memory_fix_given_is_the_one_that_works():
    """Several layers too large: the error names the largest, so that raising to the value given maps them all."""
    from satasim_atsn.workload.format import read_workload

    wl = read_workload(ARCH.parent.parent / "workloads" / "vgg16_cifar10.npz")
    fans = {ly["name"]: _fan_in(ly) + WORDS for ly in wl.layers if ly["type"] == "conv"}
    largest = max(fans.values())
    with pytest.raises(SatasimError) as info:
        build_mapping(arch_with(**{"pe.weight_memory_bytes": 100}), wl)
    msg = str(info.value)
    assert f"at least {largest}" in msg and "the largest of 12 layers that do not fit" in msg
    build_mapping(arch_with(**{"pe.weight_memory_bytes": largest}), wl)  # the fix given works in one step
    with pytest.raises(SatasimError, match=f"at least {largest}"):
        build_mapping(arch_with(**{"pe.weight_memory_bytes": largest - 1}), wl)


def test_a_batch_too_large_for_pe_and_exit_unit_gets_one_fix_for_both():
    """The PE rule's fix alone led to the exit unit's refusal; the fix given now satisfies both, in both models."""
    from satasim_atsn.hw.reference import derive_mapping
    from satasim_atsn.hw.run_checks import check_batch
    from satasim_atsn.workload.format import read_workload

    wl = read_workload(ARCH.parent.parent / "workloads" / "vgg16_cifar10.npz")
    arch = arch_with(images_per_batch=4096)
    with pytest.raises(SatasimError) as engine_error:
        build_mapping(arch, wl)
    with pytest.raises(SatasimError) as reference_error:
        derive_mapping(arch, wl)
    fix = str(engine_error.value).split("; ", 1)[1]
    assert fix == str(reference_error.value).split("; ", 1)[1]
    # 16384 B: two 16-bit words per image for conv1, its membrane and current (section 5)
    # 28: the exit unit's 3072 B less its 768 B exp table hold 28 images of 10 membranes and running sums (80 B)
    assert "images_per_batch <= 28 or raise pe.data_memory_bytes to 16384 and exit_unit.data_memory_bytes to" in fix
    need = int(fix.rsplit(" ", 1)[1])
    fixed = arch_with(images_per_batch=4096, **{"pe.data_memory_bytes": 16384, "exit_unit.data_memory_bytes": need})
    check_batch(fixed, build_mapping(fixed, wl), wl)  # the fix given maps and holds the batch
    check_batch(arch_with(images_per_batch=28), build_mapping(arch_with(images_per_batch=28), wl), wl)
    with pytest.raises(SatasimError, match="exit_unit.data_memory_bytes to"):
        small = arch_with(images_per_batch=29)
        check_batch(small, build_mapping(small, wl), wl)


@pytest.mark.parametrize("workload", ["vgg16_cifar10", "resnet19_cifar10", "vgg16_cifar100", "resnet19_cifar100"])
def test_shipped_archs_map_the_paper_networks(workload):
    """The shipped weight memory holds one neuron's weights of every layer of the paper's networks."""
    from satasim_atsn.workload.format import read_workload

    wl = read_workload(Path(__file__).resolve().parent.parent / "workloads" / f"{workload}.npz")
    for name in ("atsn16x16", "dtsnn16x16", "conventional16x16"):
        m = build_mapping(load_arch(ARCH.parent / f"{name}.yaml"), wl)
        memory = load_arch(ARCH.parent / f"{name}.yaml").pe.weight_memory_bytes
        assert all(int(f.pe_weight_bytes.max()) <= memory for g in m.pe_groups for f in g.folds)


def test_a_mapping_whose_stream_routing_would_not_fit_in_memory_is_refused(monkeypatch, capsys):
    """A 4x4 array with one 16-bit membrane per PE split ResNet19 into 96,133 folds; building their routing took
    24 GB and the kernel killed the run without a word. It is refused at mapping time, naming the PE memory."""
    from satasim_atsn.cli import main
    from satasim_atsn.hw import mapping as mapping_module

    root = Path(__file__).resolve().parents[1]
    with pytest.raises(SystemExit) as stop:
        main(["run", str(root / "archs" / "atsn16x16.yaml"), str(root / "workloads" / "resnet19_cifar10.npz"),
              "--set", "array.rows=4", "--set", "array.cols=4", "--set", "pe.data_memory_bytes=4", "-q"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    # two membranes per PE: conv1 keeps one neuron's membrane and current (section 5), the others two membranes
    assert "pe.data_memory_bytes: 4 B holds 2 membrane(s) per PE, fold and image" in err and "52,441 folds" in err
    assert "raise pe.data_memory_bytes" in err
    # the limit is on the estimate: sum over folds of their inputs' stream positions x 32 B
    workload = random_workload(5, images=2, size=8)
    arch = arch_with(**{"pe.data_memory_bytes": 8})
    groups = [g for g in build_mapping(arch, workload).groups if g.kind == "pe"]
    positions = 0
    for g in groups:
        per_fold = sum(s.spatial[0] * s.spatial[1] if s.coverage == "conv" else 1 if s.coverage == "linear"
                       else s.size for s in g.inputs)
        positions += len(g.folds) * per_fold
    need = positions * mapping_module.ROUTING_BYTES_PER_POSITION
    monkeypatch.setattr(mapping_module, "ROUTING_LIMIT_BYTES", need)
    build_mapping(arch, workload)  # at the limit: mapped
    monkeypatch.setattr(mapping_module, "ROUTING_LIMIT_BYTES", need - 1)
    with pytest.raises(SatasimError, match="whose stream routing would take") as refused:
        build_mapping(arch, workload)
    # one fold per layer already: no memory helps, and the fix says so (it asked for more memory)
    assert str(refused.value).endswith("no PE memory helps, since one fold per layer would not fit either: simulate a "
                                       "network of fewer or smaller layers")
    # the fix names a memory (it named none; audit, session 48): a lower bound, followed until the design maps
    workload = random_workload(5, images=2, size=24)
    monkeypatch.setattr(mapping_module, "ROUTING_LIMIT_BYTES", 2**40)
    groups = [g for g in build_mapping(arch, workload).groups if g.kind == "pe"]
    assert max(len(g.folds) for g in groups) > 1
    least = sum(sum(mapping_module._input_positions(s) for s in g.inputs) for g in groups)  # one fold per group
    monkeypatch.setattr(mapping_module, "ROUTING_LIMIT_BYTES", least * mapping_module.ROUTING_BYTES_PER_POSITION)
    with pytest.raises(SatasimError, match="whose stream routing would take") as refused:
        build_mapping(arch, workload)
    memory = int(re.search(r"raise pe\.data_memory_bytes, to ([\d,]+) B at least", str(refused.value))[1].replace(",",
                                                                                                                ""))
    assert memory >= 16
    for _ in range(40):
        try:
            build_mapping(arch_with(**{"pe.data_memory_bytes": memory}), workload)
            break
        except SatasimError as error:
            memory = int(re.search(r"to ([\d,]+) B at least", str(error))[1].replace(",", ""))
    else:
        pytest.fail("the named memories never mapped")


def test_multicast_links_are_the_union_of_the_xy_routes():
    """Section 9: a multicast from tile (0, 0) occupies the union of its destinations' routes (row 0, then down the
    column), checked against the routes' link sets on random destination sets of a 3 x 4 array (11 PEs)."""
    from satasim_atsn.hw.mapping import multicast_links

    cols = 4

    def routes(pes) -> int:
        links = set()
        for p in pes:
            row, col = divmod(int(p), cols)
            links |= {("across", j) for j in range(col)} | {("down", col, i) for i in range(row)}
        return len(links)

    rng = np.random.default_rng(5)
    for density in (0.05, 0.3, 0.9):
        dest = rng.random((11, 64)) < density
        assert multicast_links(dest, cols).tolist() == [routes(np.flatnonzero(dest[:, x])) for x in range(64)]
    assert multicast_links(np.eye(11, dtype=bool), cols).tolist() == [p // cols + p % cols for p in range(11)]


def test_a_channels_weights_are_multicast_to_the_pes_holding_it():
    """Channel 0 (neurons 0-3) sits on PEs 0 and 1, channel 1 (4-5) on PE 2, in a 1 x 4 row: 9 B x 1 link
    + 9 B x 2 links (one route per PE would be 9 x (0 + 1) + 9 x 2)."""
    from satasim_atsn.hw.mapping import _weight_byte_hops

    offsets = np.array([0, 2, 4, 6])
    assert _weight_byte_hops(offsets, per_channel=4, fan_in=9, cols=4) == 9 * 1 + 9 * 2
    # a channel over PEs 1 and 2 of the row shares the link to PE 1: 2 links, not 1 + 2
    assert _weight_byte_hops(np.array([0, 0, 3, 6]), per_channel=6, fan_in=5, cols=4) == 5 * 2
