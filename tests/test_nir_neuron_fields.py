"""NIR neuron fields read by their meaning in the NIR spec, not by round trips (which a sign error made in both
directions, or in a field the exporter never writes, passes): a LIF's leak v_leak pulls the membrane towards it
(tau dv/dt = (v_leak - v) + R I, Euler-stepped at dt), and only a reset to zero maps (v_reset of either sign is
refused, not read as 0)."""

from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from satasim_atsn.errors import WorkloadError  # noqa: E402
from satasim_atsn.interchange.nir_io import DEFAULT_DT, float_forward, import_nir  # noqa: E402
from satasim_atsn.snn.forward import run_forward  # noqa: E402

DT = DEFAULT_DT
TAU, R, THRESHOLD = 2 * DT, 2.0, 1.0  # dt / tau = 0.5


def _leaky_graph(v_leak: float, v_reset: float = 0.0):
    """Input -> Affine -> LIF (leak ``v_leak``) -> Affine -> Output, one neuron."""
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1])}),
        "fc": nir.Affine(weight=np.array([[0.25]]), bias=np.array([0.0])),
        "lif": nir.LIF(tau=np.array([TAU]), r=np.array([R]), v_leak=np.array([v_leak]),
                       v_threshold=np.array([THRESHOLD]), v_reset=np.array([v_reset])),
        "fc2": nir.Affine(weight=np.array([[1.0], [-1.0]]), bias=np.zeros(2)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }, edges=[("input", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "output")], type_check=False)


def _euler_spikes(v_leak: float, current: float, steps: int) -> list[bool]:
    """The NIR LIF by hand: v += dt/tau (v_leak - v + R I); a spike when v > threshold, then v = 0."""
    v, spikes = 0.0, []
    for _ in range(steps):
        v += DT / TAU * (v_leak - v + R * current)
        spikes.append(v > THRESHOLD)
        v = 0.0 if v > THRESHOLD else v
    return spikes


@pytest.mark.parametrize("v_leak", [1.5, 0.0, -1.5])
def test_a_leak_pulls_the_membrane_towards_v_leak_in_float_and_once_imported(v_leak):
    """Black pixels (no input current): a leak of 1.5 alone drives the neuron over its threshold every other step;
    none, or a negative one, never does. The float forward and the imported integer workload both say so."""
    expected = _euler_spikes(v_leak, 0.0, 6)
    assert any(expected) == (v_leak > 0)
    x = np.zeros((2, 1), dtype=np.uint8)
    graph = _leaky_graph(v_leak)
    assert float_forward(graph, x.astype(np.float64), 6, DT, 1.0)["spikes"]["lif"][0, :, 0].tolist() == expected
    workload = import_nir(graph, x, timesteps=6).workload
    spiking = [ly["name"] for ly in workload.layers if ly["type"] == "linear"]
    assert spiking == ["fc"]
    spikes = run_forward(workload, record_spikes=True).spikes["fc"]
    assert spikes[0].reshape(6).tolist() == expected and spikes[1].reshape(6).tolist() == expected


@pytest.mark.parametrize("v_reset", [0.5, -0.5])
def test_a_reset_to_anything_but_zero_is_refused_whatever_its_sign(v_reset):
    with pytest.raises(WorkloadError) as info:
        import_nir(_leaky_graph(1.5, v_reset), np.zeros((2, 1), dtype=np.uint8), timesteps=4)
    assert "node 'lif' (LIF): v_reset must be 0" in str(info.value)


def _conv_graph(neuron, padding):
    """Input [2, 6, 6] -> Conv2d 5x5 (``padding``) -> ``neuron`` -> Flatten -> Affine -> Output (fixed weights)."""
    rng = np.random.default_rng(0)
    conv_w, fc_w = rng.normal(0, 0.5, (5, 2, 5, 5)), rng.normal(0, 0.3, (3, 180))
    return nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2, 6, 6])}),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=conv_w, stride=1, padding=padding, dilation=1, groups=1,
                           bias=np.zeros(5)),
        "lif": neuron((5, 6, 6)),
        "flat": nir.Flatten(input_type={"input": np.array([5, 6, 6])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=fc_w, bias=np.zeros(3)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }, edges=[("input", "conv"), ("conv", "lif"), ("lif", "flat"), ("flat", "fc"), ("fc", "output")],
        type_check=False)


def _plain_lif(shape):
    return nir.LIF(tau=np.full(shape, TAU), r=np.full(shape, 4.0), v_leak=np.zeros(shape), v_threshold=np.ones(shape),
                   v_reset=np.zeros(shape))


def _cuba_lif(shape):
    """A CubaLIF without synaptic memory (tau_syn = dt): its current is w_in x the input, so w_in 2 and r 2 drive the
    membrane as the LIF above with r 4 (NIR: tau_syn di/dt = -i + w_in I; tau_mem dv/dt = v_leak - v + r i)."""
    return nir.CubaLIF(tau_syn=np.full(shape, DT), tau_mem=np.full(shape, TAU), r=np.full(shape, 2.0),
                       w_in=np.full(shape, 2.0), v_leak=np.zeros(shape), v_threshold=np.ones(shape),
                       v_reset=np.zeros(shape))


def test_a_cuba_lif_scales_its_input_by_w_in_and_same_padding_keeps_a_5x5_maps_size():
    """The CubaLIF graph with padding 'same' is the LIF graph with padding 2 (5x5 kernel, stride 1): the same float
    spikes, and the same imported integers and layer table."""
    x = np.random.default_rng(1).integers(0, 256, (4, 2, 6, 6)).astype(np.uint8)
    plain, cuba = _conv_graph(_plain_lif, 2), _conv_graph(_cuba_lif, "same")
    spikes = float_forward(plain, x.astype(np.float64), 4, DT, 1 / 255)["spikes"]["lif"]
    assert 0.1 < spikes.mean() < 0.9  # the neurons do fire, not always
    assert np.array_equal(float_forward(cuba, x.astype(np.float64), 4, DT, 1 / 255)["spikes"]["lif"], spikes)
    a, b = import_nir(plain, x, timesteps=4).workload, import_nir(cuba, x, timesteps=4).workload
    assert b.layers[0]["padding"] == 2 and b.layers[0]["out_shape"] == [5, 6, 6]
    assert a.layers == b.layers and sorted(a.arrays) == sorted(b.arrays) and a.input_shift == b.input_shift
    integer = run_forward(a, record_spikes=True).spikes["conv"]
    assert np.array_equal(run_forward(b, record_spikes=True).spikes["conv"], integer)
    for key, value in a.arrays.items():
        assert np.array_equal(b.arrays[key], value), key


def test_a_float_output_layer_keeps_its_one_scale_as_logit_scale():
    """docs/networks.md: the output layer has one scale, stored as logit_scale, so int8 weight x logit_scale is the
    graph's float weight (to half a step) and the exit unit's logits are the graph's."""
    rng = np.random.default_rng(3)
    readout = rng.normal(0, 0.4, (3, 180))
    graph = _conv_graph(_plain_lif, 2)
    graph.nodes["fc"] = nir.Affine(weight=readout, bias=np.zeros(3))
    x = np.random.default_rng(1).integers(0, 256, (2, 2, 6, 6)).astype(np.uint8)
    workload = import_nir(graph, x, timesteps=4).workload
    out = workload.layers[-1]
    scale = out["logit_scale"]
    assert out["type"] == "output" and scale == pytest.approx(np.abs(readout).max() / 127)
    assert np.abs(workload.weights("fc") * scale - readout).max() <= scale / 2 + 1e-12


def test_narrow_membranes_survive_an_export_and_import():
    """A workload of 12-bit membranes and 20-bit output membranes (which saturate where 32-bit ones do not) comes back
    with both widths, not the default ones."""
    from satasim_atsn.interchange.nir_io import export_nir
    from satasim_atsn.workload.synthetic import random_workload

    workload = random_workload(4, images=2, vmem_bits=12, output_vmem_bits=20)
    back = import_nir(export_nir(workload), workload.inputs(), workload.labels(), name=workload.name).workload
    assert back.vmem_bits == 12 and back.meta["quant"]["output_vmem_bits"] == 20
