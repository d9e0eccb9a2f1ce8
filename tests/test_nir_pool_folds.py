"""NIR import of a sum (or average) pool of spikes read by a Conv2d or by Flatten -> Affine (Sinabs' IAF ->
SumPool2d -> Conv2d, and the Flatten -> Linear after a last pool): both fold into the weights of one layer on the
pool's input spikes. They were refused ("a spike max-pool without its IF gate"), so such graphs could not be
simulated. With integer weights and IF neurons the int8 workload is exact, so every spike must agree with the
float NIR forward, which computes the pool and the conv separately.
"""

from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from satasim_atsn.errors import WorkloadError  # noqa: E402
from satasim_atsn.hw.arch import load_arch  # noqa: E402
from satasim_atsn.hw.engine import simulate  # noqa: E402
from satasim_atsn.hw.reference import simulate_reference  # noqa: E402
from satasim_atsn.hw.verify import diff_counters  # noqa: E402
from satasim_atsn.interchange.nir_io import agreement, import_nir  # noqa: E402

DT = 1e-4


def _graph(side: int, pool: tuple[int, int], conv_padding: int, average: bool = False, seed: int = 0):
    """IF spike maps: conv1 -> pool -> conv2 (3x3, ``conv_padding``) -> pool 2x2 -> Flatten -> Affine -> IF."""
    rng = np.random.default_rng(seed)
    k, s = pool
    pooled = (side - k) // s + 1
    conv2 = pooled + 2 * conv_padding - 2
    pool_kind = nir.AvgPool2d if average else nir.SumPool2d

    def neurons(shape):  # integrate and fire: v += input, spike above 1 (exact in integers)
        return nir.IF(r=np.full(shape, 1 / DT), v_threshold=np.full(shape, 1.0), v_reset=np.zeros(shape))

    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, side, side])}),
        "conv1": nir.Conv2d(input_shape=(side, side), weight=rng.integers(-1, 2, (4, 2, 3, 3)).astype(float),
                            stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(4)),
        "if1": neurons((4, side, side)),
        "pool1": pool_kind(kernel_size=np.array([k, k]), stride=np.array([s, s]), padding=np.array([0, 0])),
        "conv2": nir.Conv2d(input_shape=(pooled, pooled), weight=rng.integers(-1, 2, (6, 4, 3, 3)).astype(float),
                            stride=1, padding=conv_padding, dilation=1, groups=1, bias=np.zeros(6)),
        "if2": neurons((6, conv2, conv2)),
        "pool2": pool_kind(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([6, conv2 // 2, conv2 // 2])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.integers(-2, 3, (3, 6 * (conv2 // 2) ** 2)).astype(float), bias=np.zeros(3)),
        "if3": neurons((3,)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("input", "conv1"), ("conv1", "if1"), ("if1", "pool1"), ("pool1", "conv2"), ("conv2", "if2"),
             ("if2", "pool2"), ("pool2", "flat"), ("flat", "fc"), ("fc", "if3"), ("if3", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _frames(side: int, n: int = 12, t: int = 5) -> np.ndarray:
    return (np.random.default_rng(1).random((n, t, 2, side, side)) < 0.3).astype(np.uint8)


@pytest.mark.parametrize(("side", "pool", "padding", "kernel", "stride"), [
    (12, (2, 2), 1, 6, 2),   # Sinabs' 2x2 sum pool before a padded 3x3 conv
    (12, (3, 2), 0, 7, 2),   # overlapping windows, no padding
    (14, (2, 3), 0, 8, 3),   # windows with gaps between them
])
def test_a_pool_of_spikes_folds_into_the_next_conv_and_linear_exactly(side, pool, padding, kernel, stride):
    graph = _graph(side, pool, padding)
    result = import_nir(graph, _frames(side), dt=DT)
    layers = {ly["name"]: ly for ly in result.workload.layers}
    assert [ly["type"] for ly in result.workload.layers] == ["conv", "conv", "flatten", "linear"]
    assert layers["conv2"]["inputs"] == ["conv1"] and layers["conv2"]["kernel"] == kernel
    assert layers["conv2"]["stride"] == stride and layers["conv2"]["padding"] == pool[1] * padding
    assert layers["fc"]["in_shape"] == [int(np.prod(layers["conv2"]["out_shape"]))]  # the unpooled map
    assert any("folded into it (exact)" in note and note.startswith("conv2") for note in result.notes)
    report = agreement(result, graph)
    assert report["top1_agreement"] == 1.0
    assert {name: v["spike_agreement"] for name, v in report["layers"].items()} == {"conv1": 1.0, "conv2": 1.0,
                                                                                      "fc": 1.0}
    assert min(v["rate_int"] for v in report["layers"].values()) > 0.05  # the layers do fire: a real check


def test_an_average_pool_folds_with_its_divisor():
    """AvgPool2d is a sum pool / window: the folded weights are the sum pool's / 4 (the first fold checked
    against the sum pool's, which is exact above)."""
    summed = import_nir(_graph(12, (2, 2), 1), _frames(12), dt=DT).workload
    averaged = import_nir(_graph(12, (2, 2), 1, average=True), _frames(12), dt=DT).workload

    assert summed.layers[1]["kernel"] == averaged.layers[1]["kernel"] == 6
    ratio = _conv_gain(averaged, "conv2") / _conv_gain(summed, "conv2")
    assert ratio == pytest.approx(0.25, rel=0.02)


def _conv_gain(workload, name: str) -> float:
    """How strongly a layer's weights drive its neurons relative to their threshold: sum |w| / mean threshold."""
    w = workload.arrays[f"w/{name}"].astype(float)
    vth = workload.arrays[f"vth/{name}"].astype(float)
    return float(np.abs(w).sum() / vth.mean())


def test_a_padded_conv_of_a_pool_that_drops_rows_is_refused():
    """13 rows in 2x2 windows: the pool drops the last row, which the folded conv's padding would read as real."""
    with pytest.raises(WorkloadError, match=r"node 'conv2' \(Conv2d\): pads \(1\) a pool of windows that leave "
                                            r"input rows or columns out \(window 2, stride 2, input \[4, 13, 13\]\)"):
        import_nir(_graph(13, (2, 2), 1), _frames(13), dt=DT)


def test_the_folded_workload_simulates_as_the_reference_does():
    """The folded conv (kernel 6, stride 2, padding 2) maps and runs on the fixed-T design, counter for counter
    the per-cycle reference's."""
    from satasim_atsn.hw.arch_files import resolve_arch_path

    workload = import_nir(_graph(12, (2, 2), 1), _frames(12, n=2), dt=DT).workload
    arch = load_arch(resolve_arch_path("conventional16x16"))
    fast = simulate(arch, workload, 2)
    problems = diff_counters(fast.counters(), {k: v for k, v in simulate_reference(arch, workload, 2).items()
                                               if k != "pe_output_spikes"})
    assert problems == [] and fast.counters()["accelerators"][0]["actions"]["pe_accumulations"] > 0


def test_a_pool_read_without_a_flatten_or_by_two_nodes_is_refused_saying_what_would_work():
    """An Affine on a pooled map (no Flatten) was told it read 'a spike max-pool without its IF gate'; a folded
    conv feeding two nodes must be refused as any current feeding two is."""
    graph = _graph(12, (2, 2), 1)
    graph.edges.remove(("pool2", "flat"))
    graph.edges.remove(("flat", "fc"))
    graph.edges.append(("pool2", "fc"))
    del graph.nodes["flat"]
    with pytest.raises(WorkloadError, match=r"node 'fc' \(Affine\): its input is a pool of spikes without a Flatten "
                                            r"\(an Affine/Linear reads it through one; a Conv2d folds it"):
        import_nir(graph, _frames(12), dt=DT)
    graph = _graph(12, (2, 2), 1)
    graph.nodes["if2b"] = nir.IF(r=np.full((6, 6, 6), 1 / DT), v_threshold=np.full((6, 6, 6), 1.0),
                                 v_reset=np.zeros((6, 6, 6)))
    graph.edges += [("conv2", "if2b"), ("if2b", "pool2")]
    with pytest.raises(WorkloadError, match=r"node 'conv2' \(Conv2d\): feeds 2 nodes; a current must feed exactly "
                                            r"one neuron or Output"):
        import_nir(graph, _frames(12), dt=DT)
