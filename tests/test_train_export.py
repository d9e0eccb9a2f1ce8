"""Export of trained float networks to int8 workloads, and the model tables."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.errors import TrainError
from satasim_atsn.snn.forward import run_forward
from satasim_atsn.train import layers as L
from satasim_atsn.train.config import TrainConfig
from satasim_atsn.train.evaluation import float_logits
from satasim_atsn.train.export import export_network
from satasim_atsn.train.models import build_spec, parameter_count
from satasim_atsn.train.network import Network
from satasim_atsn.train.trainer import make_normaliser, train_model
from satasim_atsn.workload.datasets import synthetic
from satasim_atsn.workload.format import read_workload, validate


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny vgg_small trained briefly on the synthetic set, exported and re-read."""
    out = tmp_path_factory.mktemp("wl") / "tiny.npz"
    data = (synthetic("train", 384, shape=(1, 16, 16)), synthetic("test", 96, shape=(1, 16, 16)))
    cfg = TrainConfig(model="vgg_small", dataset="synthetic", method="atsn", epochs=3, batch_size=32, lr=0.05,
                      test_images=96, width=0.5, seed=3)
    summary = train_model(cfg, out, quiet=True, data=data)
    return out, summary, data


def test_export_round_trip_float_vs_quantised(trained):
    path, summary, _ = trained
    wl = read_workload(path)
    prov = wl.meta["provenance"]
    fl, q = prov["float"]["fixed_t"], prov["quantised"]["fixed_t"]
    assert set(fl) == set(q) == {"1", "2", "3", "4"}
    assert fl["4"] > 0.6  # it learned something
    assert abs(fl["4"] - q["4"]) <= 0.05
    # the stored quantised numbers are the integer forward's
    res = run_forward(wl)
    assert abs((res.pred == wl.labels()).mean() - prov["quantised"]["fixed"]["accuracy"]) < 1e-6
    for key in ("atsn", "atsn_hw", "dtsnn"):
        assert 1.0 <= prov["quantised"][key]["avg_timestep"] <= 4.0
    assert prov["seed"] == 3 and prov["epochs"] == 3 and prov["config"]["loss"] == "imp"
    assert wl.meta["layers"][-1]["output_mode"] == "membrane"
    assert wl.weights("conv1").dtype == np.int8 and wl.vth("conv2").min() >= 1


def test_export_is_deterministic(trained, tmp_path):
    path, _, data = trained
    cfg = TrainConfig(model="vgg_small", dataset="synthetic", method="atsn", epochs=3, batch_size=32, lr=0.05,
                      test_images=96, width=0.5, seed=3)
    again = tmp_path / "tiny.npz"
    train_model(cfg, again, quiet=True, data=data)
    assert again.read_bytes() == path.read_bytes()


def _random_net(model, shape, mode, width, classes=3):
    spec = build_spec(model, shape, classes, mode, width)
    net = Network(spec, 3, seed=2)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16,) + tuple(shape), dtype=np.uint8)
    mean, std = np.full(shape[0], 0.5), np.full(shape[0], 0.25)
    norm = make_normaliser(mean, std, False)
    net.input_pad = (-mean / std).astype(np.float32)
    for _ in range(40):  # settle BN running statistics on this data
        net.forward(norm(x), training=True)
    return net, x, mean, std, norm


def _float_forward_recording_spikes(monkeypatch, net, x, norm) -> tuple[np.ndarray, list[np.ndarray]]:
    """The float network's logits on ``x`` and the spikes of each of its LIF layers, in the order they ran."""
    recorded = []
    real_lif = L.lif_forward

    def recording_lif(*args, **kw):
        spikes, cache = real_lif(*args, **kw)
        recorded.append(spikes)
        return spikes, cache

    monkeypatch.setattr(L, "lif_forward", recording_lif)
    return float_logits(net, x, norm), recorded


@pytest.mark.parametrize("model,mode", [("resnet19", "accumulate"), ("vgg_small", "membrane")])
def test_export_matches_float_layers(model, mode, monkeypatch):
    """Integer spikes equal float spikes almost everywhere (residual joins, shortcuts and avgpool included)."""
    net, x, mean, std, norm = _random_net(model, [3, 8, 8], mode, 0.05 if model == "resnet19" else 0.5)
    wl = export_network(net, name="t", dataset="synthetic", num_classes=3, input_shape=[3, 8, 8], mean=mean,
                        std=std, x=x, y=np.zeros(16, np.int64))
    validate(wl)
    if model == "resnet19":
        adds = [ly for ly in wl.meta["layers"] if ly["type"] == "add"]
        assert any("shortcut_gain" in ly for ly in adds) and any("shortcut_gain" not in ly for ly in adds)
    fl, recorded = _float_forward_recording_spikes(monkeypatch, net, x, norm)
    res = run_forward(wl, record_spikes=True)
    lif_layers = [ly["name"] for ly in wl.layers if ly["type"] == "add" or ly.get("spiking") is True]
    # a random deep net amplifies rounding, so compare the first LIF layers (one residual block at least)
    for index, (name, spikes) in enumerate(list(zip(lif_layers, recorded, strict=True))[:4]):
        float_spikes = np.transpose(spikes, (1, 0, 4, 2, 3)).astype(bool)
        assert (float_spikes != res.spikes[name]).mean() < (0.01 if index == 0 else 0.1), name
    assert fl.shape == res.logits.shape


LINEAR_JOINS_FILE = """name: linjoin
input_shape: [3, 8, 8]
num_classes: 3
layers:
  - {name: conv1, type: conv, out_channels: 8, kernel: 3, stride: 2, padding: 1}
  - {name: flat, type: flatten}
  - {name: fc1, type: linear, out_features: 48}
  - {name: fc2, type: linear, out_features: 48, spiking: false}
  - {name: fc3, type: linear, out_features: 48, spiking: false, inputs: [fc1]}
  - {name: j1, type: add, inputs: [fc2, fc3]}
  - {name: fc4, type: linear, out_features: 48, spiking: false}
  - {name: j2, type: add, inputs: [fc4, j1]}
  - {name: out, type: output}
"""


def test_joins_of_linear_layers_export_as_their_float_layers(tmp_path, monkeypatch):
    """A residual join whose branches are non-spiking linear layers (a current shortcut, then an identity of spikes)
    shares its scales as a conv join does; the export crashed on it (KeyError) after the whole training."""
    path = tmp_path / "linjoin.yaml"
    path.write_text(LINEAR_JOINS_FILE)
    net, x, mean, std, norm = _random_net(str(path), [3, 8, 8], "membrane", 1.0)
    wl = export_network(net, name="t", dataset="synthetic", num_classes=3, input_shape=[3, 8, 8], mean=mean,
                        std=std, x=x, y=np.zeros(16, np.int64))
    validate(wl)
    layers = {ly["name"]: ly for ly in wl.layers}
    assert "shortcut_gain" not in layers["j1"] and layers["j2"]["shortcut_gain"] >= 1
    assert not any(f"{kind}/{name}" in wl.arrays for kind in ("b", "vth") for name in ("fc2", "fc3", "fc4"))
    fl, recorded = _float_forward_recording_spikes(monkeypatch, net, x, norm)
    res = run_forward(wl, record_spikes=True)
    lif_layers = [ly["name"] for ly in wl.layers if ly["type"] == "add" or ly.get("spiking") is True]
    assert lif_layers == ["conv1", "fc1", "j1", "j2"]
    for name, spikes in zip(lif_layers, recorded, strict=True):
        order = (1, 0, 4, 2, 3) if spikes.ndim == 5 else (1, 0, 2)  # [T, B, H, W, C] or [T, B, F] -> [B, T, ...]
        float_spikes = np.transpose(spikes, order).astype(bool)
        assert float_spikes.mean() > 0.02, name  # the joins fire: the comparison is not of two silent layers
        assert (float_spikes != res.spikes[name]).mean() < (0.01 if name == "conv1" else 0.1), name
    agree = (fl.argmax(-1) == res.logits.argmax(-1)).mean()  # each branch on its own scales: 0.67
    assert agree >= 0.9, agree


def _net_file(tmp_path, name: str, layers: str) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\ninput_shape: [3, 8, 8]\nnum_classes: 3\nlayers:\n{layers}")
    return str(path)


@pytest.mark.parametrize("tail", ["  - {name: gap, type: avgpool}\n", "  - {name: flat, type: flatten}\n"
                                  "  - {name: fc1, type: linear, out_features: 12}\n",
                                  "  - {name: flat, type: flatten}\n"])
def test_a_flatten_of_a_flat_tensor_exports_as_without_it(tmp_path, tail):
    """``avgpool -> flatten -> output`` (how many networks end), a flatten after a linear layer or after another
    flatten: the flatten is a no-op, so the export gives the arrays of the same network without it (it crashed
    after the whole training, unpacking a [C, H, W] shape from a flat one)."""
    head = "  - {name: conv1, type: conv, out_channels: 6, kernel: 3, stride: 2, padding: 1}\n" + tail
    exported = []
    for name, extra in (("without", ""), ("with", "  - {name: again, type: flatten}\n")):
        path = _net_file(tmp_path, name, head + extra + "  - {name: out, type: output}\n")
        net, x, mean, std, _ = _random_net(path, [3, 8, 8], "membrane", 1.0)
        exported.append(export_network(net, name="t", dataset="synthetic", num_classes=3, input_shape=[3, 8, 8],
                                       mean=mean, std=std, x=x, y=np.zeros(16, np.int64)))
    without, with_flatten = exported
    validate(with_flatten)
    assert sorted(without.arrays) == sorted(with_flatten.arrays)
    for key in without.arrays:
        np.testing.assert_array_equal(without.arrays[key], with_flatten.arrays[key], err_msg=key)
    assert without.layers[-1]["logit_scale"] == with_flatten.layers[-1]["logit_scale"]
    np.testing.assert_array_equal(run_forward(without).logits, run_forward(with_flatten).logits)


def test_vgg16_and_resnet19_tables_match_design():
    vgg = build_spec("vgg16", [3, 32, 32], 10, "membrane")
    assert sum(ly["type"] == "conv" for ly in vgg) == 13 and sum(ly["type"] == "maxpool" for ly in vgg) == 5
    assert vgg[-1]["in_shape"] == [512]
    assert abs(parameter_count(vgg) - 14.7e6) < 0.1e6
    res = build_spec("resnet19", [3, 32, 32], 10, "membrane")
    assert sum(ly["type"] == "add" for ly in res) == 8
    assert sum(ly["type"] == "conv" and ly["kernel"] == 1 for ly in res) == 2
    assert res[-1]["in_shape"] == [512] and res[-2]["type"] == "avgpool"
    assert abs(parameter_count(res) - 12.6e6) < 0.1e6


def test_vgg16_tiny_forward_backward():
    spec = build_spec("vgg16", [3, 32, 32], 10, "accumulate", width=1 / 32)
    net = Network(spec, 2, seed=0)
    f = net.forward(np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype(np.float32), training=True)
    assert f.shape == (2, 2, 10)
    grads = net.backward(np.ones_like(f))
    assert set(grads) == {ly["name"] for ly in spec if ly["type"] in ("conv", "output")}


def test_model_rejects_small_inputs_and_unknown_names():
    with pytest.raises(TrainError, match="cannot take") as refused:
        build_spec("vgg16", [1, 28, 28], 10, "membrane")
    # the fix names the smallest square input that fits (5 max-pools of 2: 32 x 32), and it does fit
    assert "at least 32 x 32" in str(refused.value) and "--image-size 32" in str(refused.value)
    build_spec("vgg16", [1, 32, 32], 10, "membrane")
    with pytest.raises(TrainError, match="at least 32 x 32"):
        build_spec("vgg16", [3, 31, 31], 10, "membrane")
    with pytest.raises(TrainError, match="unknown model"):
        build_spec("alexnet", [1, 28, 28], 10, "membrane")
