"""NIR graphs whose first layer reads a flattened image (snnTorch's ``nn.Flatten(); nn.Linear``): the pixel scale
and the input shift belong to that layer on import and on export; and graphs refused before any work (NaN
parameters, a recurrent loop named as such, unsupported nodes, --timesteps against spike frames)."""

from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from satasim_atsn.errors import WorkloadError  # noqa: E402
from satasim_atsn.interchange.nir_io import DEFAULT_DT, agreement, export_nir, import_nir  # noqa: E402
from satasim_atsn.snn.forward import run_forward  # noqa: E402

DT = DEFAULT_DT


def _mlp(shape, neuron="LIF", weight=None, extra_nodes=None, extra_edges=()):
    """Input(shape) [-> Flatten] -> Affine(12) -> LIF/IF -> Affine(3) -> LI/I -> Output, seeded weights."""
    rng = np.random.default_rng(7)
    features = int(np.prod(shape))
    w1 = rng.normal(0, 0.3, (12, features)) if weight is None else weight
    nodes = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges, prev = [], "input"
    if len(shape) == 3:
        nodes["flat"] = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
        edges.append(("input", "flat"))
        prev = "flat"
    if neuron == "LIF":
        hidden = nir.LIF(tau=np.full(12, 10 * DT), r=np.full(12, 2.0), v_leak=np.zeros(12),
                         v_threshold=np.ones(12), v_reset=np.zeros(12))
    else:
        hidden = nir.IF(r=np.full(12, 2.0 / DT), v_threshold=np.ones(12), v_reset=np.zeros(12))
    nodes.update({"fc1": nir.Affine(weight=w1, bias=np.zeros(12)), "lif1": hidden,
                  "fc2": nir.Affine(weight=rng.normal(0, 0.5, (3, 12)), bias=np.zeros(3)),
                  "li": (nir.LI(tau=np.full(3, 10 * DT), r=np.full(3, 10.0), v_leak=np.zeros(3)) if neuron == "LIF"
                         else nir.I(r=np.full(3, 1.0 / DT))),
                  "output": nir.Output(output_type={"output": np.array([3])}), **(extra_nodes or {})})
    edges += [(prev, "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "li"), ("li", "output"), *extra_edges]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _images(n=32):
    return np.random.default_rng(1).integers(0, 256, (n, 1, 8, 8), dtype=np.uint8)


@pytest.mark.parametrize("neuron", ["LIF", "IF"])
def test_a_flattened_image_is_scaled_like_a_flat_input(neuron):
    """The first layer behind a Flatten of the Input used to miss the pixel scale (1/255): 0.70 spike agreement
    and 100 times the firing rate of the graph it came from."""
    x = _images()
    image = import_nir(_mlp([1, 8, 8], neuron), x, timesteps=4)
    flat = import_nir(_mlp([64], neuron), x.reshape(len(x), 64), timesteps=4)
    assert image.workload.input_shift == flat.workload.input_shift > 0
    for key in ("w/fc1", "b/fc1", "vth/fc1"):
        assert np.array_equal(image.workload.arrays[key], flat.workload.arrays[key]), key
    report = agreement(image, _mlp([1, 8, 8], neuron))
    layer = dict(report["layers"])["fc1"]
    assert report["spike_agreement"] > 0.99 and abs(layer["rate_int"] - layer["rate_float"]) < 0.01  # was 0.30


@pytest.mark.parametrize("neuron", ["LIF", "IF"])
def test_an_mlp_on_images_roundtrips_with_its_input_shift(neuron):
    """Export gave the shift's gain to the layer at index 0, which is the image's flatten: the re-import lost it."""
    wl = import_nir(_mlp([1, 8, 8], neuron), _images(), timesteps=4).workload
    assert wl.layers[0]["type"] == "flatten" and wl.input_shift > 0
    back = import_nir(export_nir(wl), wl.inputs(), wl.labels()).workload
    assert back.input_shift == wl.input_shift
    for key, value in wl.arrays.items():
        assert np.array_equal(back.arrays[key], value), key
    a, b = run_forward(wl, record_spikes=True), run_forward(back, record_spikes=True)
    assert all(np.array_equal(a.spikes[k], b.spikes[k]) for k in a.spikes)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_parameters_are_refused(bad):
    weight = np.random.default_rng(7).normal(0, 0.3, (12, 64))
    weight[0, 0] = bad
    with pytest.raises(WorkloadError, match=r"node 'fc1' \(Affine\): its weight holds NaN or infinite values"):
        import_nir(_mlp([64], weight=weight), _images().reshape(32, 64), timesteps=4)


def test_a_recurrent_loop_is_named():
    graph = _mlp([64], extra_nodes={"rec": nir.Affine(weight=np.eye(12), bias=np.zeros(12))},
                 extra_edges=[("lif1", "rec"), ("rec", "lif1")])
    with pytest.raises(WorkloadError, match=r"the graph has a cycle (rec -> lif1 -> rec|lif1 -> rec -> lif1): "
                                            r"recurrent networks are not supported"):
        import_nir(graph, _images().reshape(32, 64), timesteps=4)


def test_an_unsupported_node_is_named_before_missing_timesteps():
    graph = _mlp([64], extra_nodes={"later": nir.Delay(delay=np.ones(3))}, extra_edges=[("li", "later")])
    with pytest.raises(WorkloadError, match=r"node 'later' \(Delay\): unsupported node type"):
        import_nir(graph, _images().reshape(32, 64))  # no --timesteps either


def test_timesteps_against_spike_frames_is_refused():
    frames = (np.random.default_rng(0).random((4, 3, 1, 8, 8)) < 0.2).astype(np.uint8)  # [N, T, C, H, W]
    with pytest.raises(WorkloadError, match=r"--timesteps: is 5 but the spike-frame inputs have T = 3 frames"):
        import_nir(_mlp([1, 8, 8]), frames, timesteps=5)


def test_an_output_of_one_class_or_of_another_size_is_refused():
    one = _mlp([64])
    one.nodes["fc2"] = nir.Affine(weight=np.ones((1, 12)), bias=np.zeros(1))
    one.nodes["li"] = nir.LI(tau=np.full(1, 10 * DT), r=np.full(1, 10.0), v_leak=np.zeros(1))
    one.nodes["output"] = nir.Output(output_type={"output": np.array([1])})
    with pytest.raises(WorkloadError, match=r"^node 'output' \(Output\): gives 1 class; a classifier's output needs"):
        import_nir(one, _images().reshape(32, 64), timesteps=4)
    seven = _mlp([64])
    seven.nodes["output"] = nir.Output(output_type={"output": np.array([7])})
    with pytest.raises(WorkloadError, match=r"^node 'output' \(Output\): declares 7 outputs but its input gives 3"):
        import_nir(seven, _images().reshape(32, 64), timesteps=4)
