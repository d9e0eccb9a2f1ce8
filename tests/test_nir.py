"""NIR import and export (interchange/nir_io.py): graphs built in code with the nir package (no torch),
export -> import -> the same spikes bit for bit, float-forward agreement, and one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from satasim_atsn.cli import main  # noqa: E402
from satasim_atsn.errors import WorkloadError  # noqa: E402
from satasim_atsn.interchange.nir_io import (  # noqa: E402
    DEFAULT_DT,
    agreement,
    export_nir,
    float_forward,
    import_nir,
    read_nir,
    write_nir,
)
from satasim_atsn.snn.forward import run_forward  # noqa: E402
from satasim_atsn.workload.format import Workload, read_workload, validate  # noqa: E402
from satasim_atsn.workload.schema import is_spiking  # noqa: E402
from satasim_atsn.workload.synthetic import random_workload  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DT = DEFAULT_DT


def _same_spikes(a, b) -> None:
    fa, fb = run_forward(a, record_spikes=True), run_forward(b, record_spikes=True)
    assert sorted(fa.spikes) == sorted(fb.spikes)
    for name in fa.spikes:
        assert np.array_equal(fa.spikes[name], fb.spikes[name]), name
    assert np.array_equal(fa.out_membrane, fb.out_membrane)
    assert np.array_equal(fa.exit_t, fb.exit_t)


def _roundtrip(wl, path):
    write_nir(path, export_nir(wl))
    return import_nir(read_nir(path), wl.inputs(), wl.labels(), name=wl.name, source=str(path))


@pytest.mark.parametrize("method", ["snn", "dtsnn", "atsn"])
def test_shipped_vgg_small_roundtrips_bit_for_bit(tmp_path, method):
    wl = read_workload(ROOT / "workloads" / f"vgg_small_fmnist_{method}.npz")
    res = _roundtrip(wl, tmp_path / "v.nir")
    new = res.workload
    assert [ly["name"] for ly in new.layers] == [ly["name"] for ly in wl.layers]
    assert [ly["type"] for ly in new.layers] == [ly["type"] for ly in wl.layers]
    assert new.decay_shifts == wl.decay_shifts and new.input_shift == wl.input_shift
    assert new.layers[-1]["logit_scale"] == wl.layers[-1]["logit_scale"]
    assert new.layers[-1]["output_mode"] == wl.layers[-1]["output_mode"]
    for key, value in wl.arrays.items():  # the same integers, not only the same spikes
        assert np.array_equal(new.arrays[key], value), key
    _same_spikes(wl, new)
    assert res.notes == []


@pytest.mark.parametrize("seed", range(40))
def test_random_workloads_roundtrip_bit_for_bit(tmp_path, seed):
    wl = random_workload(seed, images=3)
    res = _roundtrip(wl, tmp_path / "r.nir")
    assert [ly["name"] for ly in res.workload.layers] == [ly["name"] for ly in wl.layers]
    _same_spikes(wl, res.workload)


@pytest.mark.parametrize("seed", [6, 13])
def test_a_flatten_after_a_global_pool_roundtrips_as_a_no_op(tmp_path, seed):
    """``avgpool -> flatten -> output`` (valid, and how many networks end) exported a graph the import refused
    ('flattens a counts of shape [C]'); the flatten of a flat tensor is a no-op, so the import gives what the
    network without it imports to, and the same spikes."""
    wl = random_workload(seed, images=3)
    meta = json.loads(json.dumps(wl.meta))
    layers = [{k: v for k, v in ly.items() if k not in ("in_shape", "out_shape")} for ly in meta["layers"]]
    gap = [ly["type"] for ly in layers].index("avgpool")
    layers[gap + 1]["inputs"] = ["gap_flat"]
    layers.insert(gap + 1, {"name": "gap_flat", "type": "flatten", "inputs": [layers[gap]["name"]]})
    meta["layers"] = layers
    flattened = Workload(meta=meta, arrays=dict(wl.arrays))
    validate(flattened)
    new = _roundtrip(flattened, tmp_path / "f.nir").workload
    plain = _roundtrip(wl, tmp_path / "p.nir").workload  # the same network without the flatten, round-tripped
    assert [ly["name"] for ly in new.layers] == [ly["name"] for ly in plain.layers]
    assert sorted(new.arrays) == sorted(plain.arrays)
    for key, value in plain.arrays.items():
        assert np.array_equal(new.arrays[key], value), key
    fa, fb = run_forward(flattened, record_spikes=True), run_forward(new, record_spikes=True)
    assert sorted(fb.spikes) == sorted(set(fa.spikes) - {"gap_flat"})  # the no-op is not imported
    for name in fb.spikes:
        assert np.array_equal(fa.spikes[name], fb.spikes[name]), name
    assert np.array_equal(fa.out_membrane, fb.out_membrane) and np.array_equal(fa.exit_t, fb.exit_t)


def test_exported_graph_structure_documents_the_mapping():
    wl = random_workload(3, images=2, residual=True)
    graph = export_nir(wl)
    kinds = {n: type(node).__name__ for n, node in graph.nodes.items()}
    assert kinds["input"] == "Input" and list(kinds.values()).count("Output") == 1
    assert kinds["conv1"] == "Conv2d" and kinds["conv1_lif"] == "LIF"
    meta = json.loads(graph.metadata["satasim"])
    assert meta["timesteps"] == wl.timesteps and meta["decay_shifts"] == list(wl.decay_shifts)
    beta = sum(2.0**-k for k in wl.decay_shifts)
    assert np.allclose(graph.nodes["conv1_lif"].tau, DT / (1 - beta))
    assert np.allclose(graph.nodes["conv1_lif"].r * DT / graph.nodes["conv1_lif"].tau, 2.0**-wl.input_shift)


# ------------------------------------------------------------------------------------------
# foreign graphs built in code (float parameters, snnTorch's conventions: tau = dt/(1-beta), r = tau/dt)
# ------------------------------------------------------------------------------------------
def _lif(shape, beta=0.5, threshold=1.0):
    tau = DT / (1 - beta)
    return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, tau / DT), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, threshold), v_reset=np.zeros(shape))


def _float_cnn(seed=0, pool="max", readout="li"):
    rng = np.random.default_rng(seed)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
        "conv1": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.6, (6, 2, 3, 3)), stride=1, padding=1,
                            dilation=1, groups=1, bias=rng.normal(0.1, 0.1, 6)),
        "lif1": _lif((6, 8, 8)),
        "pool1": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "gate1": nir.IF(r=np.full((6, 4, 4), 1 / DT), v_threshold=np.full((6, 4, 4), 0.5),
                        v_reset=np.zeros((6, 4, 4))),
        "flat": nir.Flatten(input_type={"input": np.array([6, 4, 4])}, start_dim=0, end_dim=-1),
        "fc1": nir.Affine(weight=rng.normal(0, 0.3, (12, 96)), bias=rng.normal(0, 0.1, 12)),
        "lif2": _lif((12,)),
        "fc2": nir.Linear(weight=rng.normal(0, 0.5, (4, 12))),
        "li": nir.LI(tau=np.full(4, 2 * DT), r=np.full(4, 2.0), v_leak=np.zeros(4)),
        "output": nir.Output(output_type={"output": np.array([4])}),
    }
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "pool1"), ("pool1", "gate1"), ("gate1", "flat"),
             ("flat", "fc1"), ("fc1", "lif2"), ("lif2", "fc2"), ("fc2", "li"), ("li", "output")]
    if readout == "none":
        del nodes["li"]
        edges = edges[:-2] + [("fc2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _images(n=40, seed=1):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 2, 8, 8)).astype(np.uint8)


@pytest.mark.parametrize("readout", ["li", "none"])
def test_float_graph_imports_quantised_and_agrees_with_the_float_forward(tmp_path, readout):
    graph = _float_cnn(readout=readout)
    write_nir(tmp_path / "f.nir", graph)
    graph = read_nir(tmp_path / "f.nir")
    res = import_nir(graph, _images(), timesteps=4, source="f.nir")
    wl = res.workload
    assert [ly["type"] for ly in wl.layers] == ["conv", "maxpool", "flatten", "linear", "output"]
    assert wl.layers[-1]["output_mode"] == ("membrane" if readout == "li" else "accumulate")
    assert wl.decay_shifts == (1,) and wl.weights("conv1").dtype == np.int8
    assert np.abs(wl.weights("conv1")).max() == 127  # per output channel scales use the int8 range
    report = agreement(res, graph)
    assert report["spike_agreement"] > 0.97, report
    assert report["top1_agreement"] >= 0.85, report
    assert set(report["layers"]) == {"conv1", "pool1", "fc1"}


def test_a_graph_in_timestep_units_says_its_layers_are_silent_and_names_dt():
    """SpikingJelly writes tau in steps and r = 1: at the default dt (1e-4 s, snnTorch's) no neuron can fire, and the
    report's agreement of 1.0 compared silent layers without a word; at --dt 1 the layers fire and no note is given."""
    rng = np.random.default_rng(0)

    def lif(n):
        return nir.LIF(tau=np.full(n, 2.0), r=np.ones(n), v_leak=np.zeros(n), v_threshold=np.ones(n),
                       v_reset=np.zeros(n))

    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([16])}),
                                "fc1": nir.Linear(weight=rng.normal(0, 1, (20, 16))), "lif1": lif(20),
                                "fc2": nir.Linear(weight=rng.normal(0, 1, (4, 20))), "li": nir.LI(
                                    tau=np.full(4, 2.0), r=np.ones(4), v_leak=np.zeros(4)),
                                "output": nir.Output(output_type={"output": np.array([4])})},
                         edges=[("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "li"), ("li", "output")])
    x = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    silent = agreement(import_nir(graph, x, timesteps=8), graph)
    notes = [n for n in silent["approximations"] if "fires no spike in either forward" in n]
    assert len(notes) == 1 and notes[0].startswith("layer fc1 fires no spike"), silent["approximations"]
    assert "import it with --dt 1 (this import took dt = 0.0001 s" in notes[0]
    firing = agreement(import_nir(graph, x, timesteps=8, dt=1.0), graph)
    assert firing["layers"]["fc1"]["rate_float"] > 0.01
    assert not any("no spike" in n for n in firing["approximations"])


def test_float_reference_follows_the_euler_lif_by_hand():
    """A 1-neuron Affine -> LIF graph: v <- beta v + (dt r / tau) I, spike when v > thr, reset to 0."""
    tau, r, thr = 4 * DT, 8.0, 1.0  # beta = 0.75, gain = 2
    graph = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([1])}),
        "fc": nir.Affine(weight=np.array([[0.3]]), bias=np.array([0.0])),
        "lif": nir.LIF(tau=np.array([tau]), r=np.array([r]), v_leak=np.array([0.0]), v_threshold=np.array([thr]),
                       v_reset=np.array([0.0])),
        "fc2": nir.Affine(weight=np.array([[1.0], [-1.0]]), bias=np.zeros(2)),
        "output": nir.Output(output_type={"output": np.array([2])}),
    }, edges=[("input", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "output")], type_check=False)
    x = np.array([[1.0]])
    out = float_forward(graph, x, 5, DT, 1.0)
    v, spikes = 0.0, []
    for _ in range(5):
        v = 0.75 * v + 2 * 0.3
        spikes.append(v > thr)
        v = 0.0 if v > thr else v
    assert out["spikes"]["lif"][0, :, 0].tolist() == spikes
    assert out["output"][0, :, 0].tolist() == [float(s) for s in spikes]


def test_residual_graph_with_a_scaled_spike_shortcut_imports():
    graph = _scaled_shortcut_graph(0.5)
    x = np.random.default_rng(2).integers(0, 256, size=(30, 1, 6, 6)).astype(np.uint8)
    res = import_nir(graph, x, timesteps=3)
    types = {ly["name"]: ly["type"] for ly in res.workload.layers}
    assert types == {"c1": "conv", "c2": "conv", "join": "add", "gap": "avgpool", "fc": "output"}
    assert res.workload.layer("join")["shortcut_gain"] >= 1 and not res.workload.layer("c2")["spiking"]
    report = agreement(res, graph)
    assert report["spike_agreement"] > 0.95, report


# ------------------------------------------------------------------------------------------
# refusals: one line naming the node and what is supported
# ------------------------------------------------------------------------------------------
def _mutate(kind):
    graph = _float_cnn()
    nodes, edges = dict(graph.nodes), list(graph.edges)
    if kind == "reset":
        nodes["lif1"].v_reset = np.full((6, 8, 8), 0.5)
    elif kind == "cuba":
        s = (12,)
        nodes["lif2"] = nir.CubaLIF(tau_syn=np.full(s, 5 * DT), tau_mem=np.full(s, 2 * DT), r=np.full(s, 2.0),
                                    v_leak=np.zeros(s), v_threshold=np.ones(s), v_reset=np.zeros(s))
    elif kind == "delay":
        nodes["gate1"] = nir.Delay(delay=np.ones((6, 4, 4)))
    elif kind == "sumpool-into-padded-conv":  # a pool of spikes folds into a conv, but not overlapping and padded
        nodes["pool1"] = nir.SumPool2d(kernel_size=np.array([3, 3]), stride=np.array([2, 2]), padding=np.array([0, 0]))
        nodes["gate1"] = nir.Conv2d(input_shape=(3, 3), weight=np.ones((6, 6, 3, 3)), stride=1, padding=1,
                                    dilation=1, groups=1, bias=np.zeros(6))
    elif kind == "spiking-output":
        nodes["li"] = _lif((4,))
    elif kind == "groups":
        nodes["conv1"].groups = 2
    elif kind == "two-taus":
        nodes["lif2"] = _lif((12,), beta=0.75)
    elif kind == "affine-bias-length":
        nodes["fc1"] = nir.Affine(weight=np.ones((12, 96)), bias=np.zeros(7))
    elif kind == "conv-bias-length":
        nodes["conv1"].bias = np.zeros(9)
    elif kind == "tau-zero":
        nodes["lif2"] = nir.LIF(tau=np.zeros(12), r=np.ones(12), v_leak=np.zeros(12), v_threshold=np.ones(12),
                                v_reset=np.zeros(12))
    elif kind == "complex-weight":
        nodes["fc2"] = nir.Linear(weight=np.ones((4, 12)) * (1 + 1j))
    elif kind == "no-input-edge":
        edges.remove(("flat", "fc1"))
    elif kind == "kernel-too-big":  # on the 8x8 image without padding (a traceback from the layer's shape check)
        nodes["conv1"] = nir.Conv2d(input_shape=(8, 8), weight=np.ones((6, 2, 9, 9)), stride=1, padding=0,
                                    dilation=1, groups=1, bias=np.zeros(6))
    elif kind == "pool-stride-0":  # a ZeroDivisionError
        nodes["pool1"] = nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([0, 0]), padding=np.array([0, 0]))
    elif kind == "conv-padding-negative":  # named an internal meta.layers field
        nodes["conv1"].padding = -1
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.mark.parametrize(("kind", "needle"), [
    ("reset", "node 'lif1' (LIF): v_reset must be 0"),
    ("cuba", "node 'lif2' (CubaLIF): tau_syn 0.0005 != dt 0.0001"),
    ("delay", "node 'gate1' (Delay): unsupported node type"),
    ("sumpool-into-padded-conv", "node 'gate1' (Conv2d): pads (1) a pool of overlapping windows (window 3, stride 2, "
     "input [6, 8, 8]): its zero padding would cover real spikes once folded into one conv"),
    ("groups", "node 'conv1' (Conv2d): groups = 2"),
    ("two-taus", "the neurons decay differently"),
    # a bad value of a supported node: named without the list of supported nodes (they were tracebacks)
    ("affine-bias-length", "node 'fc1' (Affine): bias has 7 values for 12 outputs"),
    ("conv-bias-length", "node 'conv1' (Conv2d): bias has 9 values for 6 outputs"),
    ("tau-zero", "node 'lif2' (LIF): tau must be positive and finite, got 0..0"),
    ("no-input-edge", "node 'fc1' (Affine): has no input edge; add an edge into it or remove the node"),
    ("complex-weight", "node 'fc2' (Linear): its weight holds complex values"),
    ("kernel-too-big", "node 'conv1' (Conv2d): kernel 9 (padding 0) does not fit its input [2, 8, 8]; fix the graph: "
     "a kernel of at most 8 at this padding"),
    ("pool-stride-0", "node 'pool1' (SumPool2d): stride 0 must be at least 1; fix the node's stride"),
    ("conv-padding-negative", "node 'conv1' (Conv2d): padding -1 must be at least 0; fix the node's padding"),
])
def test_unsupported_graphs_are_refused_in_one_line(tmp_path, capsys, kind, needle):
    graph = _mutate(kind)
    with pytest.raises(WorkloadError) as info:
        import_nir(graph, _images(4), timesteps=2)
    text = str(info.value)
    assert needle in text and "\n" not in text
    assert ("supported:" in text) == (kind not in ("two-taus", "affine-bias-length", "conv-bias-length", "tau-zero",
                                                             "no-input-edge", "complex-weight", "reset", "groups",
                                                             "sumpool-into-padded-conv", "kernel-too-big",
                                                             "pool-stride-0", "conv-padding-negative"))
    _cli_import_is_refused(tmp_path, capsys, graph, needle)


def _cli_import_is_refused(tmp_path: Path, capsys, graph, needle: str) -> None:
    """`satasim workload import` of ``graph`` exits 2 with one line holding ``needle`` (no numpy warnings either)
    and writes no workload."""
    path = tmp_path / "m.nir"
    write_nir(path, graph)
    np.savez(tmp_path / "x.npz", x=_images(4))
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", str(path), "--inputs", str(tmp_path / "x.npz"), "--timesteps", "2",
              "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("layer_order", 5, 'metadata["satasim"].layer_order: must be a list of node names, got 5'),
    ("decay_shifts", "x", 'metadata["satasim"].decay_shifts: must be a list of shifts in 0..31'),
    ("dt", 0, 'metadata["satasim"].dt: must be a positive number, got 0'),
    ("input_scale", -1.0, 'metadata["satasim"].input_scale: must be a positive number'),
    ("timesteps", 2.5, 'metadata["satasim"].timesteps: must be an integer in 1..1024'),
    ("vmem_bits", 99, 'metadata["satasim"].vmem_bits: must be an integer in 8..32'),
    ("exit_policy", {"cl_init": "high"}, 'metadata["satasim"].exit_policy: must map cl_init, tau_cl, theta'),
    ("exit_policy", {"default": 3}, 'metadata["satasim"].exit_policy.default: must be a policy name'),
    ("class_names", "cat", 'metadata["satasim"].class_names: must be a list of class names, got \'cat\''),
    ("class_names", ["a", "b"], 'metadata["satasim"].class_names: names 2 classes, the graph\'s output has 10'),
])
def test_edited_satasim_metadata_is_refused_naming_the_field(tmp_path, capsys, key, value, needle):
    """An exported graph's metadata read back after an edit: TypeError tracebacks before (issue 9's fuzzing)."""
    wl = read_workload(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz")
    graph = export_nir(wl)
    meta = json.loads(graph.metadata["satasim"])
    meta[key] = value
    graph.metadata["satasim"] = json.dumps(meta)
    path = tmp_path / "v.nir"
    write_nir(path, graph)
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", str(path), "--inputs", str(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"),
              "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1, err
    assert str(path) in err and not (tmp_path / "o.npz").exists()


def test_the_class_names_of_an_image_folder_network_survive_a_roundtrip(tmp_path):
    """A workload trained on an image folder names its classes (provenance.class_names), which evaluate checks
    against the test folders; its NIR export dropped them, so an import could not be checked (audit, session 47)."""
    wl = read_workload(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz")
    names = [f"class {i}" for i in range(wl.num_classes)]
    meta = dict(wl.meta, provenance=dict(wl.meta.get("provenance") or {}, class_names=names))
    named = validate(Workload(meta, dict(wl.arrays), wl.source))
    assert _roundtrip(named, tmp_path / "n.nir").workload.meta["provenance"]["class_names"] == names
    assert "class_names" not in _roundtrip(wl, tmp_path / "u.nir").workload.meta["provenance"]  # none to carry


def test_a_statistical_workload_gives_no_inputs_to_import(tmp_path, capsys):
    path = tmp_path / "m.nir"
    write_nir(path, export_nir(random_workload(2, images=2)))
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", str(path), "--inputs", str(ROOT / "workloads" / "vgg16_cifar10.npz"),
              "--timesteps", "2", "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "a statistical workload embeds no inputs" in err, err


def test_a_spiking_output_imports_as_spike_counts(tmp_path, capsys):
    """An Output reading a spiking layer (snnTorch's rate-coded classifiers) was refused; the format has such
    networks: no output layer, one class per neuron of the last layer, the most spikes over T wins."""
    graph = _mutate("spiking-output")  # fc2 -> LIF (4) -> Output
    labels = np.arange(40) % 4
    res = import_nir(graph, _images(40), labels, timesteps=4)
    wl = res.workload
    assert [ly["type"] for ly in wl.layers] == ["conv", "maxpool", "flatten", "linear", "linear"]
    assert not wl.has_output and wl.num_classes == 4 and is_spiking(wl.layers[-1])
    fwd = run_forward(wl, record_spikes=True)
    counts = fwd.spikes["fc2"].reshape(40, 4, -1).sum(axis=1)  # the integer spike counts over T
    assert np.array_equal(fwd.out_membrane[:, -1], counts)
    report = agreement(res, graph)
    assert set(report["layers"]) == {"conv1", "pool1", "fc1", "fc2"} and report["spike_agreement"] > 0.95, report
    ref = float_forward(graph, wl.inputs(), 4, DT, res.input_scale)["output"].sum(axis=1)
    assert np.array_equal(ref, ref.astype(np.int64)) and ref.max() <= 4  # the float side counts spikes too
    expected = float((ref.argmax(axis=1) == counts.argmax(axis=1)).mean())
    assert report["top1_agreement"] == pytest.approx(expected)
    # it exports back the same way (the Output reads the last LIF) and imports to the same spikes
    again = _roundtrip(wl, tmp_path / "s.nir")
    _same_spikes(wl, again.workload)
    exported = export_nir(wl)
    out = next(n for n, node in exported.nodes.items() if type(node).__name__ == "Output")
    assert [a for a, b in exported.edges if b == out] == ["fc2_lif"]
    # an exit unit that decides needs an output layer: the mapping says so in one line; fixed T runs
    from satasim_atsn.workload.format import write_workload

    write_workload(tmp_path / "s.npz", wl)
    with pytest.raises(SystemExit) as exc:
        main(["run", str(ROOT / "archs" / "atsn16x16.yaml"), str(tmp_path / "s.npz"), "--images", "2", "-q"])
    assert exc.value.code == 2 and "the at exit rule needs an output layer" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run", str(ROOT / "archs" / "conventional16x16.yaml"), str(tmp_path / "s.npz"), "--images", "2", "-q",
              "--json", str(tmp_path / "run.json")])
    assert exc.value.code == 0
    assert json.loads((tmp_path / "run.json").read_text())["metrics"]["fps"] > 0


@pytest.mark.parametrize("seed", range(0, 40, 3))
def test_random_spiking_end_workloads_roundtrip_bit_for_bit(tmp_path, seed):
    """Networks without an output layer (random ones end in a linear layer or a flatten of spikes) export and import
    back to the same layers and spikes; a conv and a max-pool end: test_graphs_ending_in_a_spike_map_roundtrip."""
    wl = random_workload(seed, images=3, output_layer=False)
    assert not wl.has_output
    res = _roundtrip(wl, tmp_path / "r.nir")
    assert [ly["name"] for ly in res.workload.layers] == [ly["name"] for ly in wl.layers]
    assert res.workload.num_classes == wl.num_classes
    _same_spikes(wl, res.workload)


def test_an_output_that_reads_the_input_is_refused():
    nodes = {"input": nir.Input(input_type={"input": np.array([4])}),
             "output": nir.Output(output_type={"output": np.array([4])})}
    graph = nir.NIRGraph(nodes=nodes, edges=[("input", "output")], type_check=False)
    with pytest.raises(WorkloadError, match="reads the Input itself"):
        import_nir(graph, np.zeros((2, 4), dtype=np.uint8), timesteps=2)


def _set_version(path, version):
    import h5py

    with h5py.File(path, "r+") as handle:
        del handle["version"]
        handle.create_dataset("version", data=version, dtype=h5py.string_dtype())


@pytest.mark.parametrize(("damage", "needle"), [
    ("missing", "no such file"),
    ("garbage", "not a readable NIR (HDF5) file"),
    ("truncated", "not a readable NIR (HDF5) file"),
    ("old", "is NIR 0.5.0; this tool reads NIR 1.x"),
    ("future", "is NIR 2.1.0; this tool reads NIR 1.x"),
    ("noversion", "version: missing"),
])
def test_corrupt_or_foreign_version_files_one_line_exit_2(tmp_path, capsys, damage, needle):
    path = tmp_path / "m.nir"
    if damage != "missing":
        write_nir(path, export_nir(random_workload(2, images=2)))
    if damage == "garbage":
        path.write_bytes(b"not an hdf5 file at all" * 10)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:700])
    elif damage in ("old", "future"):
        _set_version(path, "0.5.0" if damage == "old" else "2.1.0")
    elif damage == "noversion":
        import h5py

        with h5py.File(path, "r+") as handle:
            del handle["version"]
    np.savez(tmp_path / "x.npz", x=np.zeros((2, 1, 4, 4), np.uint8))
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", str(path), "--inputs", str(tmp_path / "x.npz"), "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o.npz").exists()


# ------------------------------------------------------------------------------------------
# the commands
# ------------------------------------------------------------------------------------------
def test_cli_export_then_import_reports_agreement(tmp_path, capsys):
    wl = random_workload(11, images=6, timesteps=3)
    from satasim_atsn.workload.format import write_workload

    src = tmp_path / "w.npz"
    write_workload(src, wl)
    with pytest.raises(SystemExit) as exc:
        main(["workload", "export", str(src), "--nir", str(tmp_path / "w.nir")])
    assert exc.value.code == 0 and "NIR nodes" in capsys.readouterr().out
    argv = ["workload", "import", str(tmp_path / "w.nir"), "--inputs", str(src), "-o", str(tmp_path / "back.npz"),
            "--json", str(tmp_path / "a.json")]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr().out
    assert exc.value.code == 0 and "top-1" in out and "wrote" in out
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["images"] == 6 and 0 <= report["top1_agreement"] <= 1
    first = (tmp_path / "a.json").read_bytes(), (tmp_path / "back.npz").read_bytes()
    with pytest.raises(SystemExit):
        main(argv)
    assert ((tmp_path / "a.json").read_bytes(), (tmp_path / "back.npz").read_bytes()) == first
    _same_spikes(wl, read_workload(tmp_path / "back.npz"))


def test_cli_export_refuses_a_statistical_workload(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["workload", "export", str(ROOT / "workloads" / "vgg16_cifar10.npz"), "--nir", str(tmp_path / "o.nir")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "is statistical" in err and not (tmp_path / "o.nir").exists()


@pytest.mark.parametrize(("x", "needle"), [
    (np.zeros((2, 1, 4, 4), np.float32), "dtype float32"),
    (np.full((2, 3, 1, 4, 4), 2, np.uint8), "0/1 spike frames"),
    # one-channel images without their channel axis (as MNIST is stored): the fix names the axis to add
    (np.zeros((2, 4, 4), np.uint8), "add the channel axis: x[:, None] is [N, 1, H, W]"),
])
def test_cli_import_bad_inputs(tmp_path, capsys, x, needle):
    path = tmp_path / "m.nir"
    write_nir(path, export_nir(random_workload(2, images=2)))
    np.savez(tmp_path / "x.npz", x=x)
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", str(path), "--inputs", str(tmp_path / "x.npz"), "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err


def test_a_channel_quantised_to_zero_is_noted():
    """A row far weaker than the layer's strongest loses every int8 weight; the import says so (it listed no
    approximation while spike agreement fell)."""
    graph = _float_cnn()
    weight = np.array(graph.nodes["fc1"].weight, dtype=float)
    weight[3] *= 1e-6
    graph.nodes["fc1"].weight = weight
    res = import_nir(graph, _images(4), timesteps=2)
    assert any("1 of 12 output channels have all-zero int8 weights" in note for note in res.notes), res.notes
    assert not any("output channels" in note for note in import_nir(_float_cnn(), _images(4), timesteps=2).notes)


def test_a_float32_tau_keeps_its_exact_shift_decay():
    """snnTorch-style graphs store tau as float32: beta = 1 - dt/tau is 0.49999998737 for 0.5, which the greedy
    floor made [2, 3, 4, 5] = 0.46875 with an approximation note; the nearest sum is [1], within float32 rounding."""
    graph = _float_cnn()
    for name in ("lif1", "lif2"):
        node = graph.nodes[name]
        node.tau = np.asarray(node.tau, dtype=np.float32)
        node.r = np.asarray(node.r, dtype=np.float32)
    res = import_nir(graph, _images(4), timesteps=2)
    assert res.workload.decay_shifts == (1,)
    assert not any("decay" in note for note in res.notes), res.notes


@pytest.mark.parametrize("shifts", [[0], [1, 1]])
@pytest.mark.parametrize("seed", [3, 11])
def test_a_membrane_output_that_does_not_decay_keeps_its_mode(tmp_path, seed, shifts):
    """With a decay of 1 the exported readout is an I node, which a foreign graph means as a running sum
    (accumulate); this tool's own export says it is a membrane output, whose logits are not divided by t."""
    from satasim_atsn.snn.neurons import shifts_to_tau
    from satasim_atsn.workload.format import Workload, validate

    wl = random_workload(seed, images=6, output_mode="membrane", residual=False)  # a join moves its bias
    meta = json.loads(json.dumps(wl.meta))
    meta["neuron"].update(decay_shifts=shifts, tau=shifts_to_tau(shifts))
    wl = validate(Workload(meta=meta, arrays=dict(wl.arrays), source="<test>"))
    new = _roundtrip(wl, tmp_path / "m.nir").workload
    assert new.layers[-1]["output_mode"] == "membrane" and new.decay_shifts == wl.decay_shifts
    for key, value in wl.arrays.items():
        assert np.array_equal(new.arrays[key], value), key
    _same_spikes(wl, new)
    a, b = run_forward(wl), run_forward(new)
    assert np.array_equal(a.logits, b.logits) and np.array_equal(a.pred, b.pred)


def _scaled_shortcut_graph(scale: float):
    rng = np.random.default_rng(5)
    shape = (4, 6, 6)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([1, 6, 6])}),
        "c1": nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0, 1, (4, 1, 3, 3)), stride=1, padding=1, dilation=1,
                         groups=1, bias=np.zeros(4)),
        "l1": _lif(shape),
        "c2": nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0, 0.4, (4, 4, 3, 3)), stride=1, padding="same",
                         dilation=1, groups=1, bias=np.zeros(4)),
        "gain": nir.Scale(scale=np.full(shape, scale)),
        "join": _lif(shape),
        "gap": nir.AvgPool2d(kernel_size=np.array([6, 6]), stride=np.array([6, 6]), padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type={"input": np.array([4, 1, 1])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 1, (3, 4)), bias=np.zeros(3)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("input", "c1"), ("c1", "l1"), ("l1", "c2"), ("c2", "join"), ("l1", "gain"), ("gain", "join"),
             ("join", "gap"), ("gap", "flat"), ("flat", "fc"), ("fc", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.mark.parametrize("scale", [-0.5, 0.0])
def test_a_shortcut_that_inhibits_or_is_absent_is_refused(scale):
    """shortcut_gain is a positive integer: a negative or zero Scale used to become a gain of 1 without a word."""
    x = np.random.default_rng(2).integers(0, 256, size=(4, 1, 6, 6)).astype(np.uint8)
    with pytest.raises(WorkloadError, match=r"node 'join' \(join\): the spike shortcut's gain is -?0?\.?5?"):
        import_nir(_scaled_shortcut_graph(scale), x, timesteps=3)


def test_a_cuba_li_readout_without_synaptic_memory_is_an_li():
    """Norse exports its LICell as a CubaLI: with tau_syn = dt it is the LI readout (it was refused as an unsupported
    node), and a real synaptic time constant is refused as for a CubaLIF."""
    x = _images(8)
    plain = import_nir(_float_cnn(), x, timesteps=3)
    graph = _float_cnn()
    graph.nodes["li"] = nir.CubaLI(tau_syn=np.full(4, DT), tau_mem=np.full(4, 2 * DT), r=np.full(4, 1.0),
                                   v_leak=np.zeros(4), w_in=np.full(4, 2.0))  # w_in x r = the LI's r of 2
    cuba = import_nir(graph, x, timesteps=3)
    assert sorted(cuba.workload.arrays) == sorted(plain.workload.arrays)
    for key, value in plain.workload.arrays.items():
        assert np.array_equal(cuba.workload.arrays[key], value), key
    report = agreement(cuba, graph)
    assert report["top1_agreement"] == agreement(plain, _float_cnn())["top1_agreement"]
    graph.nodes["li"] = nir.CubaLI(tau_syn=np.full(4, 5 * DT), tau_mem=np.full(4, 2 * DT), r=np.ones(4),
                                   v_leak=np.zeros(4))
    with pytest.raises(WorkloadError, match=r"node 'li' \(CubaLI\): tau_syn 0\.0005 != dt 0\.0001"):
        import_nir(graph, x, timesteps=3)


def test_a_per_channel_shortcut_scale_is_named_with_its_fix():
    """It was blamed on the join neuron, '(join)', with no fix."""
    graph = _scaled_shortcut_graph(0.5)
    graph.nodes["gain"] = nir.Scale(scale=np.array([0.5, 1.0, 1.5, 2.0]))
    x = np.random.default_rng(2).integers(0, 256, size=(4, 1, 6, 6)).astype(np.uint8)
    with pytest.raises(WorkloadError, match=r"node 'gain' \(Scale\): scales the spike shortcut of the join 'join' per "
                                            r"channel; .*give the Scale one value, or make the shortcut a 1x1 Conv2d"):
        import_nir(graph, x, timesteps=3)


def test_an_if_beside_a_decaying_readout_is_told_it_does_not_decay():
    """'give them one tau' for an IF, which has no tau."""
    graph = _float_cnn()
    graph.nodes["lif2"] = nir.IF(r=np.full(12, 1 / DT), v_threshold=np.ones(12), v_reset=np.zeros(12))
    graph.nodes["lif1"] = nir.IF(r=np.full((6, 8, 8), 1 / DT), v_threshold=np.ones((6, 8, 8)),
                                 v_reset=np.zeros((6, 8, 8)))
    with pytest.raises(WorkloadError, match=r"decay differently .*an IF or I node does not decay \(1\), so pair it "
                                            r"with IF and I nodes only, or make every neuron an LIF and LI of one tau"):
        import_nir(graph, _images(4), timesteps=2)


def test_a_shortcut_gain_below_one_step_is_noted():
    x = np.random.default_rng(2).integers(0, 256, size=(4, 1, 6, 6)).astype(np.uint8)
    weak = import_nir(_scaled_shortcut_graph(1e-4), x, timesteps=3)
    assert weak.workload.layer("join")["shortcut_gain"] == 1
    assert any(note.startswith("join: shortcut gain 0.0001") for note in weak.notes), weak.notes
    assert not import_nir(_scaled_shortcut_graph(0.5), x, timesteps=3).notes  # 0.5 is many steps: exact enough


def _handmade(layers, shape, classes, arrays, frames=False):
    """A small workload written by hand (docs/workload-format.md), with 8 inputs."""
    from satasim_atsn.workload.format import Workload, validate

    rng = np.random.default_rng(1)
    meta = {"name": "hand", "kind": "trained", "num_classes": classes, "timesteps": 4, "input_shape": shape,
            "neuron": {"decay_shifts": [1]}, "quant": {"vmem_bits": 16, "input_shift": 0 if frames else 4},
            "layers": layers, "exit_policy": {"cl_init": 0.9, "tau_cl": 0.95, "theta": 0.2}}
    if frames:
        meta.update(input_encoding="spike_frames", input_width=shape[-1])
        x = np.packbits((rng.random((8, 4, *shape)) < 0.3).astype(np.uint8), axis=-1)
    else:
        x = rng.integers(0, 256, (8, *shape)).astype(np.uint8)
    arrays = dict(arrays, x=x, y=rng.integers(0, classes, 8))
    return validate(Workload(meta=json.loads(json.dumps(meta)), arrays=arrays, source="<hand>"))


_RNG = np.random.default_rng(7)


def _ints(*shape):
    return _RNG.integers(-60, 61, shape).astype(np.int8)


_CONV = {"name": "conv1", "type": "conv", "inputs": ["input"], "out_channels": 4, "kernel": 3, "stride": 1,
         "padding": 1}
_OUT = {"name": "fc", "type": "output", "output_mode": "membrane", "logit_scale": 0.01}
HANDMADE = {
    # a max-pool straight of the spike frames (the format allows it; import refused the pool of the Input)
    "pool_of_frames": dict(layers=[{"name": "pool0", "type": "maxpool", "inputs": ["input"], "kernel": 2, "stride": 2},
                                   dict(_CONV, inputs=["pool0"]), {"name": "flat", "type": "flatten",
                                                                   "inputs": ["conv1"]}, dict(_OUT, inputs=["flat"])],
                           shape=[2, 8, 8], frames=True,
                           arrays={"w/conv1": _ints(4, 2, 3, 3), "b/conv1": np.arange(4, dtype=np.int32),
                                   "vth/conv1": np.full(4, 20, np.int32), "w/fc": _ints(3, 64),
                                   "b/fc": np.arange(3, dtype=np.int32)}),
    # a global average pool of a map that is not square (exported as one [4, 8] window)
    "global_pool_4x8": dict(layers=[_CONV, {"name": "gap", "type": "avgpool", "inputs": ["conv1"]},
                                    dict(_OUT, inputs=["gap"])], shape=[1, 4, 8],
                            arrays={"w/conv1": _ints(4, 1, 3, 3), "b/conv1": np.arange(4, dtype=np.int32),
                                    "vth/conv1": np.full(4, 3000, np.int32), "w/fc": _ints(3, 4),
                                    "b/fc": np.arange(3, dtype=np.int32)}),
    # an output layer reading the image itself (its pixels' input shift was re-quantised away)
    "output_of_the_image": dict(layers=[{"name": "flat", "type": "flatten", "inputs": ["input"]},
                                        dict(_OUT, inputs=["flat"])], shape=[1, 4, 4],
                                arrays={"w/fc": _ints(3, 16), "b/fc": np.array([2, -14, 11], np.int32)}),
}


@pytest.mark.parametrize("case", sorted(HANDMADE))
def test_handmade_networks_the_format_allows_roundtrip(tmp_path, case):
    spec = HANDMADE[case]
    wl = _handmade(spec["layers"], spec["shape"], 3, spec["arrays"], spec.get("frames", False))
    res = _roundtrip(wl, tmp_path / "h.nir")
    new = res.workload
    assert new.input_shift == wl.input_shift and new.layers[-1]["logit_scale"] == wl.layers[-1]["logit_scale"]
    for key, value in wl.arrays.items():
        assert np.array_equal(new.arrays[key], value), key
    _same_spikes(wl, new)
    assert res.notes == []


def test_a_branch_that_leads_to_no_output_is_refused():
    """A conv -> LIF hanging off a layer and read by nothing was imported and then simulated and charged."""
    graph = _scaled_shortcut_graph(0.5)
    rng = np.random.default_rng(3)
    graph.nodes["dead"] = nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0, 1, (4, 4, 3, 3)), stride=1, padding=1,
                                     dilation=1, groups=1, bias=np.zeros(4))
    graph.nodes["dead_lif"] = _lif((4, 6, 6))
    graph.edges += [("l1", "dead"), ("dead", "dead_lif")]
    x = np.random.default_rng(2).integers(0, 256, size=(4, 1, 6, 6)).astype(np.uint8)
    with pytest.raises(WorkloadError, match=r"node 'dead' \(Conv2d\): leads to no Output.*remove it from the graph$"):
        import_nir(graph, x, timesteps=3)


@pytest.mark.parametrize("change, needle", [
    (lambda g: setattr(g.nodes["c1"], "input_shape", np.array([5, 5])),
     r"node 'c1' \(Conv2d\): input_shape \[5, 5\] is not its input map's \[6, 6\]"),
    (lambda g: setattr(g.nodes["flat"], "input_type", {"input": np.array([9, 9, 9])}),
     r"node 'flat' \(Flatten\): input_type \[9, 9, 9\] is not the shape it gets, \[4, 1, 1\]"),
    (lambda g: setattr(g.nodes["flat"], "end_dim", 1),
     r"node 'flat' \(Flatten\): start_dim 0, end_dim 1 flattens part of a \[4, 1, 1\] map"),
])
def test_shapes_the_graph_declares_are_checked_not_ignored(change, needle):
    graph = _scaled_shortcut_graph(0.5)
    change(graph)
    x = np.random.default_rng(2).integers(0, 256, size=(4, 1, 6, 6)).astype(np.uint8)
    with pytest.raises(WorkloadError, match=needle):
        import_nir(graph, x, timesteps=3)


def test_a_dt_that_makes_tau_equal_dt_names_the_option(tmp_path):
    wl = read_workload(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz")
    write_nir(tmp_path / "v.nir", export_nir(wl))  # tau = 2 dt for decay 0.5 at the default dt 1e-4
    with pytest.raises(WorkloadError, match=r"^--dt: is 0.0002, so the neurons' decay 1 - dt/tau is 0 .*drop --dt\)$"):
        import_nir(read_nir(tmp_path / "v.nir"), wl.inputs(0, 2), dt=2e-4)


def test_a_dt_above_tau_asks_for_one_below_tau_not_up_to_it():
    """The fix said "no larger than the smallest tau_mem": --dt equal to tau, followed literally, was refused in
    turn (decay 0); an LIF's field is tau, not tau_mem. It names the bound, which the fix must stay under."""
    with pytest.raises(WorkloadError, match=r"node 'lif1' \(LIF\): decay .* give a --dt \(seconds\) below the "
                       r"smallest tau, 0\.0002$"):
        import_nir(_float_cnn(), _images(4), timesteps=2, dt=3 * DT)
    with pytest.raises(WorkloadError, match=r"^--dt: is 0.0002, so the neurons' decay 1 - dt/tau is 0"):
        import_nir(_float_cnn(), _images(4), timesteps=2, dt=2 * DT)
    assert import_nir(_float_cnn(), _images(4), timesteps=2, dt=1.5 * DT).workload.timesteps == 2


def test_too_many_timesteps_are_named_by_what_set_them(tmp_path):
    wl = read_workload(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz")
    graph = export_nir(wl)
    with pytest.raises(WorkloadError, match=r"^--timesteps: gives T = 2000 timesteps; a workload holds 1..1024"):
        import_nir(graph, wl.inputs(0, 1), timesteps=2000)


# ------------------------------------------------------------------------------------------
# session 24's audit of foreign graphs: flatten dims, non-square pools, small units, per-channel parameters
# ------------------------------------------------------------------------------------------
def _with(graph, **nodes):
    """The graph with some nodes replaced (same edges)."""
    return nir.NIRGraph(nodes={**graph.nodes, **nodes}, edges=list(graph.edges), type_check=False)


def test_a_flatten_that_keeps_the_channel_axis_is_refused():
    """NIR counts dims without the batch: start_dim 1 on a [6, 4, 4] map is a [6, 16] tensor, not a full flatten
    (it was read as one, and the float reference shared the reading, so the agreement could not show it)."""
    graph = _with(_float_cnn(), flat=nir.Flatten(input_type={"input": np.array([6, 4, 4])}, start_dim=1, end_dim=-1))
    with pytest.raises(WorkloadError, match=r"start_dim 1, end_dim -1 flattens part of a \[6, 4, 4\] map"):
        import_nir(graph, _images(4), timesteps=2)


def test_a_batch_first_flatten_is_read_shifted_by_one():
    """Sinabs keeps torch's batch dim: input_type [0, 0, 0, 0] and start_dim 1 are a full flatten."""
    plain = import_nir(_float_cnn(), _images(8), timesteps=2).workload
    graph = _with(_float_cnn(), flat=nir.Flatten(input_type={"input": np.array([0, 0, 0, 0])}, start_dim=1,
                                                 end_dim=-1))
    shifted = import_nir(graph, _images(8), timesteps=2).workload
    for key, value in plain.arrays.items():
        assert np.array_equal(shifted.arrays[key], value), key


@pytest.mark.parametrize(("input_type", "start", "end"), [([6, 4, 4], -3, -1), ([6, 4, 4], -3, 2), ([6, 4, 4], 0, 2),
                                                          ([0, 0, 0, 0], -3, -1), ([0, 0, 0, 0], 1, 3)])
def test_a_whole_map_flatten_counted_from_the_end_is_a_full_flatten(input_type, start, end):
    """start_dim -3 of a [6, 4, 4] map is its first axis, as nir's own output_type [96] says (it was refused as a
    partial flatten, and a batch-first one quoted a start_dim of -4 the file does not hold)."""
    plain = import_nir(_float_cnn(), _images(8), timesteps=2).workload
    graph = _with(_float_cnn(), flat=nir.Flatten(input_type={"input": np.array(input_type)}, start_dim=start,
                                                 end_dim=end))
    same = import_nir(graph, _images(8), timesteps=2).workload
    for key, value in plain.arrays.items():
        assert np.array_equal(same.arrays[key], value), key


def test_a_partial_batch_first_flatten_quotes_the_files_dims():
    graph = _with(_float_cnn(), flat=nir.Flatten(input_type={"input": np.array([0, 0, 0, 0])}, start_dim=2,
                                                 end_dim=-1))
    with pytest.raises(WorkloadError, match=r"start_dim 2, end_dim -1 flattens part of a \[6, 4, 4\] map \(its "
                                            r"input_type counts a batch dim\); the format flattens whole maps: "
                                            r"start_dim 1 \(or -3\), end_dim -1"):
        import_nir(graph, _images(4), timesteps=2)


def test_a_global_pool_of_a_non_square_map_before_a_neuron_is_refused():
    """Kernel [8, 4] on an 8x4 map feeding an IF became a max-pool of kernel 8 that never read... a square
    window (columns skipped, no error); a max-pool window is square in the format."""
    rng = np.random.default_rng(0)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 8, 4])}),
        "conv1": nir.Conv2d(input_shape=(8, 4), weight=rng.normal(0, 0.6, (6, 2, 3, 3)), stride=1, padding=1,
                            dilation=1, groups=1, bias=np.zeros(6)),
        "lif1": _lif((6, 8, 4)),
        "pool1": nir.SumPool2d(kernel_size=np.array([8, 4]), stride=np.array([8, 4]), padding=np.array([0, 0])),
        "gate1": nir.IF(r=np.full((6, 1, 1), 1 / DT), v_threshold=np.full((6, 1, 1), 0.5),
                        v_reset=np.zeros((6, 1, 1))),
        "flat": nir.Flatten(input_type={"input": np.array([6, 1, 1])}, start_dim=0, end_dim=-1),
        "fc2": nir.Linear(weight=rng.normal(0, 0.5, (4, 6))),
        "output": nir.Output(output_type={"output": np.array([4])}),
    }
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "pool1"), ("pool1", "gate1"), ("gate1", "flat"),
             ("flat", "fc2"), ("fc2", "output")]
    x = np.random.default_rng(1).integers(0, 256, size=(4, 2, 8, 4)).astype(np.uint8)
    with pytest.raises(WorkloadError, match=r"window 8x4 is not square"):
        import_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), x, timesteps=2)


@pytest.mark.parametrize("factor", [1e-4, 1e-10, 1e-30])
def test_a_network_written_in_small_units_imports_the_same_integers(factor):
    """Scaling the first layer's weights, bias and threshold together changes nothing a LIF computes; an absolute
    1e-12 floor on the scales zeroed every weight below it (top-1 agreement 0.11 at 1e-10)."""
    graph = _float_cnn()
    conv = graph.nodes["conv1"]
    lif = graph.nodes["lif1"]
    small = _with(graph, conv1=nir.Conv2d(input_shape=(8, 8), weight=conv.weight * factor, stride=1, padding=1,
                                          dilation=1, groups=1, bias=conv.bias * factor),
                  lif1=nir.LIF(tau=lif.tau, r=lif.r, v_leak=lif.v_leak, v_threshold=lif.v_threshold * factor,
                               v_reset=lif.v_reset))
    plain = import_nir(graph, _images(8), timesteps=2).workload
    scaled = import_nir(small, _images(8), timesteps=2).workload
    for name in ("w/conv1", "b/conv1", "vth/conv1"):
        assert np.array_equal(scaled.arrays[name], plain.arrays[name]), name


@pytest.mark.parametrize("channels", [6, 8])
def test_a_per_channel_parameter_is_per_channel_also_when_channels_equal_the_width(channels):
    """A [C] threshold on a [C, 8, 8] layer: C = 6 imported, C = 8 was read along W and refused."""
    rng = np.random.default_rng(0)
    graph = _float_cnn()
    thresholds = np.linspace(0.5, 1.5, channels)
    lif = _lif((channels,))  # every parameter [C]: nir wants one shape for all of them
    fc1 = graph.nodes["fc1"]
    changed = _with(
        graph,
        conv1=nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.6, (channels, 2, 3, 3)), stride=1, padding=1,
                         dilation=1, groups=1, bias=np.zeros(channels)),
        lif1=nir.LIF(tau=lif.tau, r=lif.r, v_leak=lif.v_leak, v_threshold=thresholds, v_reset=lif.v_reset),
        gate1=nir.IF(r=np.full((channels, 4, 4), 1 / DT), v_threshold=np.full((channels, 4, 4), 0.5),
                     v_reset=np.zeros((channels, 4, 4))),
        flat=nir.Flatten(input_type={"input": np.array([channels, 4, 4])}, start_dim=0, end_dim=-1),
        fc1=nir.Affine(weight=rng.normal(0, 0.3, (12, channels * 16)), bias=fc1.bias),
    )
    wl = import_nir(changed, _images(8), timesteps=2).workload
    vth = wl.arrays["vth/conv1"]
    assert vth.shape == (channels,) and len(set(vth.tolist())) == channels  # one threshold per channel


def test_agreement_notes_integer_ties():
    """An output layer of zeros: every integer decision is a tie (argmax takes class 0), said beside the top-1."""
    graph = _float_cnn(readout="none")
    fc2 = graph.nodes["fc2"]
    dead = _with(graph, fc2=nir.Linear(weight=np.zeros_like(fc2.weight)))
    result = import_nir(dead, _images(8), timesteps=2)
    report = agreement(result, dead)
    assert any("ties for the top class on 8 of 8 inputs" in note for note in report["approximations"])


def test_a_threshold_below_one_step_and_a_bias_beyond_int32_are_noted():
    """Both were changed silently: the threshold raised to 1 step, the bias clipped to int32."""
    graph = _float_cnn()
    fc1 = graph.nodes["fc1"]
    bias = fc1.bias.copy()
    bias[0] = 1e12
    changed = _with(graph, lif2=_lif((12,), threshold=1e-9), fc1=nir.Affine(weight=fc1.weight, bias=bias))
    notes = import_nir(changed, _images(4), timesteps=2).notes
    assert any("fc1: 12 threshold(s) below half an integer step" in note for note in notes), notes
    assert any("fc1: 1 bias(es) beyond the int32 range" in note for note in notes), notes


def test_a_node_name_with_a_slash_is_named_as_the_cause(tmp_path):
    """nir.write stores 'blk/fc1' as nested HDF5 groups, and reading it failed with "KeyError: 'type'"."""
    graph = _float_cnn()
    nodes = dict(graph.nodes)
    nodes["blk/fc1"] = nodes.pop("fc1")
    edges = [tuple("blk/fc1" if end == "fc1" else end for end in edge) for edge in graph.edges]
    path = tmp_path / "slash.nir"
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    with pytest.raises(WorkloadError, match=r"node names: \['blk/fc1'\] contain '/'.*rename the nodes"):
        read_nir(path)


def _frames_mlp(features: int = 20):
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(input_type={"input": np.array([features])}),
             "fc1": nir.Affine(weight=rng.normal(0, 0.5, (12, features)), bias=rng.normal(0, 0.1, 12)),
             "lif1": _lif((12,)),
             "fc2": nir.Linear(weight=rng.normal(0, 0.5, (4, 12))),
             "output": nir.Output(output_type={"output": np.array([4])})}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_an_mlp_on_flat_spike_frames_imports():
    """An Input [F] fed spike frames [N, T, F, 1, 1] (an SHD-style MLP): refused as [F, 1, 1] against [F], while
    [N, T, F] was refused as not 5-D; it is read through a flatten, as flat images are."""
    graph = _frames_mlp()
    x = (np.random.default_rng(1).random((16, 5, 20, 1, 1)) < 0.3).astype(np.uint8)
    result = import_nir(graph, x)
    assert [ly["type"] for ly in result.workload.layers] == ["flatten", "linear", "output"]
    assert result.workload.timesteps == 5
    report = agreement(result, graph)
    assert report["top1_agreement"] >= 0.9 and report["spike_agreement"] >= 0.99


def test_an_input_of_rank_two_is_read_as_one_channel(tmp_path):
    """Input [H, W] (snnTorch's MNIST networks) was refused: it is read as [1, H, W], with inputs [N, 1, H, W], for a
    Conv2d of one input channel and for a Flatten that declares [H, W]; an Affine straight on the map is refused."""
    rng = np.random.default_rng(0)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([8, 8])}),
        "conv1": nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.8, (4, 1, 3, 3)), stride=1, padding=1,
                            dilation=1, groups=1, bias=rng.normal(0.1, 0.1, 4)),
        "lif1": _lif((4, 8, 8)),
        "flat": nir.Flatten(input_type={"input": np.array([4, 8, 8])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 0.3, (3, 256)), bias=np.zeros(3)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "flat"), ("flat", "fc"), ("fc", "output")]
    graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
    res = import_nir(graph, rng.integers(0, 256, (20, 1, 8, 8)).astype(np.uint8), timesteps=3)
    assert tuple(res.workload.input_shape) == (1, 8, 8)
    assert any("is [H, W] = [8, 8]: read as one channel [1, 8, 8]" in note for note in res.notes)
    report = agreement(res, graph)
    assert report["spike_agreement"] > 0.97 and report["top1_agreement"] >= 0.85
    mlp = {"input": nir.Input(input_type={"input": np.array([4, 5])}),
           "flat": nir.Flatten(input_type={"input": np.array([4, 5])}, start_dim=0, end_dim=-1),
           "fc1": nir.Affine(weight=rng.normal(0, 0.1, (6, 20)), bias=np.zeros(6)), "lif": _lif((6,)),
           "fc2": nir.Linear(weight=rng.normal(0, 0.5, (3, 6))),
           "output": nir.Output(output_type={"output": np.array([3])})}
    chain = [("input", "flat"), ("flat", "fc1"), ("fc1", "lif"), ("lif", "fc2"), ("fc2", "output")]
    x = rng.integers(0, 256, (20, 1, 4, 5)).astype(np.uint8)
    res = import_nir(nir.NIRGraph(nodes=mlp, edges=chain, type_check=False), x, timesteps=3)
    assert [ly["type"] for ly in res.workload.layers] == ["flatten", "linear", "output"]
    _same_spikes(res.workload, _roundtrip(res.workload, tmp_path / "r.nir").workload)  # exported as [1, H, W]
    direct = dict(mlp, fc1=nir.Affine(weight=np.ones((6, 5)), bias=np.zeros(6)))
    del direct["flat"]
    with pytest.raises(WorkloadError, match=r"node 'fc1' \(Affine\): weight \[out, in\] = \[6, 5\] does not take "
                                            r"its input \[1, 4, 5\]; flatten the map first"):
        import_nir(nir.NIRGraph(nodes=direct, edges=[("input", "fc1")] + chain[2:], type_check=False), x,
                   timesteps=3)


def test_an_input_scale_for_spike_frames_is_refused():
    """--input-scale scales pixels; with 0/1 frames it was accepted and ignored."""
    x = (np.random.default_rng(1).random((4, 3, 20, 1, 1)) < 0.3).astype(np.uint8)
    with pytest.raises(WorkloadError, match=r"--input-scale: applies to image inputs.*drop --input-scale"):
        import_nir(_frames_mlp(), x, input_scale=0.5)


def test_a_non_positive_threshold_is_named_by_its_neuron_node():
    """It named the layer ('fc1' (neuron)), not the LIF node that holds the value."""
    graph = _with(_float_cnn(), lif2=_lif((12,), threshold=0.0))
    with pytest.raises(WorkloadError, match=r"node 'lif2' \(LIF\): v_threshold must be > 0"):
        import_nir(graph, _images(4), timesteps=2)


def _overlapping_pool_cnn(seed=0):
    """A CNN with a ResNet stem's max-pool (3x3 windows at stride 2) on an 9x9 map, read by a linear readout."""
    rng = np.random.default_rng(seed)
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 9, 9])}),
        "conv1": nir.Conv2d(input_shape=(9, 9), weight=rng.normal(0, 0.6, (4, 2, 3, 3)), stride=1, padding=1,
                            dilation=1, groups=1, bias=rng.normal(0.1, 0.1, 4)),
        "lif1": _lif((4, 9, 9)),
        "pool1": nir.SumPool2d(kernel_size=np.array([3, 3]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "gate1": nir.IF(r=np.full((4, 4, 4), 1 / DT), v_threshold=np.full((4, 4, 4), 0.5),
                        v_reset=np.zeros((4, 4, 4))),
        "flat": nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0, end_dim=-1),
        "fc": nir.Linear(weight=rng.normal(0, 0.5, (3, 64))),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    edges = [("input", "conv1"), ("conv1", "lif1"), ("lif1", "pool1"), ("pool1", "gate1"), ("gate1", "flat"),
             ("flat", "fc"), ("fc", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


@pytest.mark.parametrize("per_channel", [False, True])
def test_a_twin_keeps_the_rate_of_an_overlapping_max_pool(per_channel):
    """A 3x3 stride-2 max-pool carried no rate: its twin drew it as the OR of independent spikes, about twice the
    trained network's pooled rate. The twin now keeps a rate for it (clamped into what independently drawn windows
    allow, and said so), and draws both layers at their fitted rates."""
    from satasim_atsn.traces.statistical_draw import draw_trace, spike_or_pool
    from satasim_atsn.traces.twin_fit import fit_statistical_twin
    from satasim_atsn.workload.format import validate

    images = np.random.default_rng(2).integers(0, 256, size=(60, 2, 9, 9)).astype(np.uint8)
    res = import_nir(_overlapping_pool_cnn(), images, timesteps=3)
    wl = res.workload
    assert [(ly["type"], ly.get("kernel"), ly.get("stride")) for ly in wl.layers[:2]] == [("conv", 3, 1),
                                                                                          ("maxpool", 3, 2)]
    twin = fit_statistical_twin(wl, rates_policy="fixed", per_channel=per_channel)
    validate(twin)
    assert "rate/pool1" in twin.arrays and "pooled_rates_not_kept" not in twin.meta["provenance"]
    fwd = run_forward(wl, record_spikes=True)
    measured = fwd.spikes["pool1"].mean()
    clamped = twin.meta["provenance"].get("pooled_rates_clamped", {})
    assert set(clamped) <= {"pool1"}
    if clamped:
        assert clamped["pool1"]["measured_mean"] == pytest.approx(measured, abs=1e-6)
    twin.meta["num_images"] = 600
    trace = draw_trace(twin, "fixed", 0, 600)
    np.testing.assert_array_equal(spike_or_pool(trace.spikes["conv1"], 3, 2), trace.spikes["pool1"])
    for name in ("conv1", "pool1"):
        want = np.asarray(twin.arrays[f"rate/{name}"]).mean()
        assert trace.spikes[name].mean() == pytest.approx(want, rel=0.05, abs=0.003), name
    independent = 1 - (1 - fwd.spikes["conv1"].mean()) ** 9  # the OR of 9 independent neurons, roughly
    assert abs(trace.spikes["pool1"].mean() - measured) < abs(independent - measured)


@pytest.mark.parametrize("end", ["conv", "maxpool"])
def test_graphs_ending_in_a_spike_map_roundtrip(tmp_path, end):
    """An Output reading a conv's LIF or a max-pool's gate: one class per neuron of the map, counted in C-order."""
    graph = _float_cnn()
    last = {"conv": "lif1", "maxpool": "gate1"}[end]
    keep = {"input", "conv1", "lif1"} | ({"pool1", "gate1"} if end == "maxpool" else set())
    classes = 6 * 8 * 8 if end == "conv" else 6 * 4 * 4
    nodes = {k: v for k, v in graph.nodes.items() if k in keep}
    nodes["output"] = nir.Output(output_type={"output": np.array([classes])})
    edges = [(a, b) for a, b in graph.edges if a in keep and b in keep] + [(last, "output")]
    res = import_nir(nir.NIRGraph(nodes=nodes, edges=edges, type_check=False), _images(6), timesteps=3)
    wl = res.workload
    assert wl.layers[-1]["type"] == end and wl.num_classes == classes and not wl.has_output
    again = _roundtrip(wl, tmp_path / "e.nir")
    _same_spikes(wl, again.workload)
    fwd = run_forward(wl, record_spikes=True)
    counts = fwd.spikes[wl.layers[-1]["name"]].reshape(6, 3, -1).sum(axis=1)  # NCHW flattened, as NIR's Output
    assert np.array_equal(fwd.out_membrane[:, -1], counts)


def test_cli_import_reports_the_accuracy_satasim_evaluate_reports_with_each_rule_named(tmp_path, capsys):
    """import printed 'accuracy: float 0.3333, int8 0.3667' (argmax of the membrane at T) where satasim evaluate of
    the same imported workload said 33.33% (eq. 10); its accuracies now name their rules, accuracy_int evaluate's."""
    from satasim_atsn.workload.format import write_workload

    wl = random_workload(23, images=12, timesteps=3)  # eq. 10 and the membrane at T disagree on this one
    src = tmp_path / "w.npz"
    write_workload(src, wl)
    export_nir_path = tmp_path / "w.nir"
    write_nir(export_nir_path, export_nir(wl))
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", str(export_nir_path), "--inputs", str(src), "-o", str(tmp_path / "back.npz"),
              "--json", str(tmp_path / "a.json")])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    report = json.loads((tmp_path / "a.json").read_text())
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", str(tmp_path / "back.npz"), "-q", "--json", str(tmp_path / "e.json")])
    evaluated = json.loads((tmp_path / "e.json").read_text())
    assert exc.value.code == 0
    assert round(report["accuracy_int"], 6) == evaluated["fixed_t"]["3"] == round(4 / 12, 6)
    assert report["accuracy_int_at_t"] == 0.5  # the top-1 decision's rule, named as such
    rules = report["accuracy_rules"]
    assert rules["accuracy_int"].startswith("eq. 10: argmax of the mean softmax")
    assert "satasim evaluate" in rules["accuracy_int"]
    assert "at T alone" in rules["accuracy_int_at_t"] and "float NIR output" in rules["accuracy_float"]
    assert f"satasim evaluate's fixed-T accuracy): int8 {4 / 12:.4f}" in out
    assert f"float {report['accuracy_float']:.4f}, int8 0.5000" in out


@pytest.mark.parametrize(("r", "threshold", "needle"), [
    # a Sinabs-style IF gate (r = 1): one spike gives dt x r = 1e-4 at the default dt, far under its threshold
    (1.0, 0.5, "one spike gives it a current of 0.0001 (dt x r) and its v_threshold is 0.5"),
    (1 / DT, 1e4, "one spike gives it a current of 1 (dt x r) and its v_threshold is 10000"),
])
def test_a_max_pool_gate_that_one_spike_cannot_fire_names_both_numbers_and_the_fix(tmp_path, capsys, r, threshold,
                                                                                   needle):
    """The refusal said what the IF after a SumPool2d must do, but not by how much it missed nor how to fix it."""
    graph = _float_cnn()
    graph.nodes["gate1"].r = np.full((6, 4, 4), r)
    graph.nodes["gate1"].v_threshold = np.full((6, 4, 4), threshold)
    with pytest.raises(WorkloadError) as info:
        import_nir(graph, _images(4), timesteps=2)
    text = str(info.value)
    assert "node 'gate1' (IF)" in text and needle in text and "--dt" in text and "\n" not in text, text
    _cli_import_is_refused(tmp_path, capsys, graph, needle)


def test_an_input_scale_that_overflows_float64_is_refused_in_one_line(tmp_path, capsys):
    """--input-scale 1e307 printed a numpy RuntimeWarning, imported, and reported a float forward of NaN currents
    (spike rate 0.0000, agreement 0.43) as if it were the graph's."""
    graph = _float_cnn()
    path = tmp_path / "g.nir"
    write_nir(path, graph)
    np.savez(tmp_path / "x.npz", x=_images(4))
    args = ["workload", "import", str(path), "--inputs", str(tmp_path / "x.npz"), "--timesteps", "2",
            "-o", str(tmp_path / "o.npz")]
    with pytest.raises(SystemExit) as exc:
        main(args + ["--input-scale", "1e307"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--input-scale: 1e+307 takes the current of the first layer 'conv1' beyond float64" in err
    assert not (tmp_path / "o.npz").exists()
    with pytest.raises(SystemExit) as exc:  # a large but representable scale still imports
        main(args + ["--input-scale", "1e200"])
    assert exc.value.code == 0, capsys.readouterr().err


def _conv_pool_graph(pool: str, conv_stride: int, seed: int = 4):
    """snnTorch's tutorial-6 shape: Conv2d -> AvgPool2d (or SumPool2d) -> LIF, then Flatten -> Affine -> LI."""
    rng = np.random.default_rng(seed)
    pool_node = getattr(nir, pool)(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    scale = 0.25 if pool == "SumPool2d" else 1.0
    conv_out = (11 + 2 - 3) // conv_stride + 1  # an 11 x 11 image, kernel 3, padding 1
    side = (conv_out - 2) // 2 + 1
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2, 11, 11])}),
        "conv": nir.Conv2d(input_shape=(11, 11), weight=rng.normal(0, 0.8 * scale, (5, 2, 3, 3)), stride=conv_stride,
                           padding=1, dilation=1, groups=1, bias=rng.normal(0.05, 0.05, 5) * scale),
        "pool": pool_node,
        "lif": _lif((5, side, side)),
        "flat": nir.Flatten(input_type={"input": np.array([5, side, side])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(0, 0.5, (3, 5 * side * side)), bias=np.zeros(3)),
        "li": nir.LI(tau=np.full(3, 2 * DT), r=np.full(3, 2.0), v_leak=np.zeros(3)),
        "output": nir.Output(output_type={"output": np.array([3])}),
    }
    order = ["input", "conv", "pool", "lif", "flat", "fc", "li", "output"]
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:], strict=True)), type_check=False), side


@pytest.mark.parametrize(("pool", "conv_stride"), [("AvgPool2d", 1), ("SumPool2d", 1), ("AvgPool2d", 2)])
def test_a_pool_of_a_conv_current_imports_as_one_conv(pool, conv_stride):
    """Conv2d -> AvgPool2d -> LIF (snnTorch's tutorial-6 CSNN) was refused: the pool reads a current, not spikes.
    Window sums of a convolution are a convolution (kernel k + stride (p - 1), stride x p): imported so, it agrees with
    the float NIR forward of the graph as written (the pool run on the currents) as closely as any layer."""
    graph, side = _conv_pool_graph(pool, conv_stride)
    x = np.random.default_rng(5).integers(0, 256, size=(24, 2, 11, 11)).astype(np.uint8)
    res = import_nir(graph, x, timesteps=4)
    conv = res.workload.layer("conv")
    assert (conv["kernel"], conv["stride"], conv["padding"]) == (3 + conv_stride, 2 * conv_stride, 1)
    assert conv["out_shape"] == [5, side, side]
    assert any("folded into it (exact)" in note for note in res.notes)
    report = agreement(res, graph)
    conv_report = report["layers"]["conv"]
    assert conv_report["spike_agreement"] > 0.98 and 0.02 < conv_report["rate_float"] < 0.98, report
    assert report["top1_agreement"] >= 0.9, report


@pytest.mark.parametrize("name", ["", "  ", "a\nb"])
def test_import_refuses_a_blank_name_naming_the_option(tmp_path, capsys, name):
    """`--name ""` silently took the file's stem, and a blank one was blamed on the graph's meta.name."""
    src = tmp_path / "w.npz"
    from satasim_atsn.workload.format import write_workload

    wl = random_workload(11, images=2, timesteps=2)
    write_workload(src, wl)
    write_nir(tmp_path / "w.nir", export_nir(wl))
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", str(tmp_path / "w.nir"), "--inputs", str(src), "-o", str(tmp_path / "o.npz"),
              "--name", name])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--name: '" in err and "' is not one line of visible text" in err and "drop --name" in err, err
    assert not (tmp_path / "o.npz").exists()


def test_import_names_a_graph_given_as_its_inputs(tmp_path, capsys):
    """`--inputs model.nir` said 'not a readable .npz file (BadZipFile); regenerate it'."""
    wl = random_workload(11, images=2, timesteps=2)
    write_nir(tmp_path / "w.nir", export_nir(wl))
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", str(tmp_path / "w.nir"), "--inputs", str(tmp_path / "w.nir"),
              "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1, err
    assert "w.nir: is an HDF5 file (a NIR graph), not inputs; give the graph as MODEL" in err
    assert "regenerate" not in err
    assert not (tmp_path / "o.npz").exists()


def test_import_help_says_a_graph_we_exported_keeps_its_dt(tmp_path, capsys):
    """import's --dt help said "default 1e-4", but a graph exported with --dt D imports at D when --dt is not
    given (its metadata's dt): the help names that default, and the import follows it."""
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", "--help"])
    text = " ".join(capsys.readouterr().out.split("--dt")[1].split("--name")[0].split())
    assert exc.value.code == 0 and "the dt in its metadata" in text and "1e-4" in text, text
    src = ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"
    with pytest.raises(SystemExit):
        main(["workload", "export", str(src), "--nir", str(tmp_path / "g.nir"), "--dt", "0.001"])
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", str(tmp_path / "g.nir"), "--inputs", str(src), "-o", str(tmp_path / "w.npz")])
    capsys.readouterr()
    assert exc.value.code == 0 and read_workload(tmp_path / "w.npz").meta["provenance"]["dt"] == 0.001


@pytest.mark.parametrize("command", [["workload", "build", "--rate", "0.1", "--timesteps", "2"],
                                     ["workload", "rates", str(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz"),
                                      "--dataset", "x"]])
def test_a_graph_given_as_network_is_named(tmp_path, capsys, command):
    """`--network model.nir` said 'cannot be read (UnicodeDecodeError); check the path'."""
    write_nir(tmp_path / "g.nir", export_nir(random_workload(11, images=2, timesteps=2)))
    with pytest.raises(SystemExit) as exc:
        main(command + ["--network", str(tmp_path / "g.nir"), "-o", str(tmp_path / "o.out")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1, err
    assert "g.nir: is an HDF5 file (a NIR graph), not a network YAML file; import it" in err, err
    assert "UnicodeDecodeError" not in err and not (tmp_path / "o.out").exists()


@pytest.mark.parametrize(("model", "needle"), [
    ("w.npz", "is a .npz file (a workload or inputs), not a NIR graph; give a NIR graph as MODEL (a workload is "
              "exported with satasim workload export"),
    ("net.yaml", "is a YAML file, not a NIR graph; give a NIR graph as MODEL"),
])
def test_a_workload_or_yaml_given_as_the_graph_is_named(tmp_path, capsys, model, needle):
    """`workload import W.npz` said 'not a readable NIR (HDF5) file (OSError); ...; export it again'."""
    wl = random_workload(11, images=2, timesteps=2)
    from satasim_atsn.workload.format import write_workload

    write_workload(tmp_path / "w.npz", wl)
    (tmp_path / "net.yaml").write_text((ROOT / "examples" / "my_net.yaml").read_text())
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", str(tmp_path / model), "--inputs", str(tmp_path / "w.npz"),
              "-o", str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and needle in err and "OSError" not in err, err
    assert not (tmp_path / "o.npz").exists()


@pytest.mark.parametrize(("binary", "hint"), [(True, "spike frames of a flat Input [F] are x[:, :, :, None, None]"),
                                              (False, "add the channel axis: x[:, None] is [N, 1, H, W]")])
def test_three_dimensional_inputs_are_told_both_forms(tmp_path, capsys, binary, hint):
    """[N, T, F] 0/1 spike frames of an MLP were told only to add an image channel axis, which cannot work."""
    rng = np.random.default_rng(0)
    x = (rng.random((4, 3, 16)) < 0.3) if binary else rng.integers(2, 256, (4, 8, 8))
    np.savez(tmp_path / "x.npz", x=x.astype(np.uint8))
    write_nir(tmp_path / "m.nir", _float_cnn())
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", str(tmp_path / "m.nir"), "--inputs", str(tmp_path / "x.npz"), "-o",
              str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and hint in err and len(err.strip().splitlines()) == 1, err
    assert ("spike frames" in err) == binary


def test_an_unsupported_node_is_named_before_the_inputs_are_read(tmp_path, capsys):
    """A Conv1d graph with [N, C, L] data was first told to add a channel axis to its inputs; only after reshaping
    them did it learn that Conv1d is not supported."""
    rng = np.random.default_rng(0)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([2, 16])}),
                                "c": nir.Conv1d(input_shape=16, weight=rng.normal(0, 1, (3, 2, 3)), stride=1,
                                                padding=1, dilation=1, groups=1, bias=np.zeros(3)),
                                "li": nir.LI(tau=np.full((3, 16), 2 * DT), r=np.ones((3, 16)),
                                             v_leak=np.zeros((3, 16))),
                                "output": nir.Output(output_type={"output": np.array([3, 16])})},
                         edges=[("input", "c"), ("c", "li"), ("li", "output")], type_check=False)
    write_nir(tmp_path / "m.nir", graph)
    np.savez(tmp_path / "x.npz", x=rng.integers(0, 256, (4, 2, 16)).astype(np.uint8))
    with pytest.raises(SystemExit) as exc:
        main(["workload", "import", str(tmp_path / "m.nir"), "--inputs", str(tmp_path / "x.npz"), "-o",
              str(tmp_path / "o.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "node 'c' (Conv1d): unsupported node type" in err, err
    assert "channel axis" not in err and str(tmp_path / "m.nir") in err


def test_an_input_with_an_exporters_batch_dim_is_told_the_shape_that_imports():
    """snnTorch's export with sample data [1, 784] writes an Input [1, F]; flat [N, F] inputs were told the Input
    is [1, 1, F] with no word of the [H, W] reading or of the x that imports."""
    rng = np.random.default_rng(0)
    graph = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([1, 16])}),
                                "flat": nir.Flatten(input_type={"input": np.array([1, 16])}, start_dim=0, end_dim=-1),
                                "fc": nir.Linear(weight=rng.normal(0, 1, (4, 16))),
                                "li": nir.LI(tau=np.full(4, 2 * DT), r=np.ones(4), v_leak=np.zeros(4)),
                                "output": nir.Output(output_type={"output": np.array([4])})},
                         edges=[("input", "flat"), ("flat", "fc"), ("fc", "li"), ("li", "output")], type_check=False)
    flat = rng.integers(0, 256, (4, 16)).astype(np.uint8)
    with pytest.raises(WorkloadError, match=r"is \[1, 1, 16\] \(its input_type \[1, 16\], read as an \[H, W\] image, "
                                            r"one channel\); give inputs of the graph's shape: x\[:, None, None\] is "
                                            r"\[N, 1, 1, 16\]"):
        import_nir(graph, flat, timesteps=2)
    assert list(import_nir(graph, flat[:, None, None], timesteps=2).workload.input_shape) == [1, 1, 16]
