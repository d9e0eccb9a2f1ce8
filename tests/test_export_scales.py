"""The int8 export, layer by layer, against the rules of docs/training.md "Export" (DESIGN section 4).

Each expectation is computed here from the float parameters by the documented rule (BN folded with its
running statistics, per-channel scales bounded below by max|W|/8 and by vth <= 1024, round to nearest,
the output's single scale = logit_scale with global pooling's 1/HW folded in, the first layer's input
normalisation and input shift), not read back from the exporter.
"""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.train.export import BN_EPS, INT8_MAX, VTH_MAX, VTH_MAX_FIRST, export_network
from satasim_atsn.train.models import build_spec
from satasim_atsn.train.network import Network

MEAN, STD = np.array([0.4, 0.5, 0.6]), np.array([0.2, 0.25, 0.3])


def _exported(model: str, shape: list[int], width: float):
    """A random net with random BN statistics (one channel's weights tiny, one variance near BN_EPS), exported."""
    spec = build_spec(model, shape, 3, "membrane", width)
    net = Network(spec, 3, seed=5)
    rng = np.random.default_rng(7)
    for name, stats in net.running.items():
        cout = stats["mean"].shape[0]
        stats["mean"][:] = rng.normal(0, 0.5, cout)
        stats["var"][:] = rng.uniform(0.05, 2.0, cout)
        if name != spec[0]["name"]:
            stats["var"][0] = 2e-5  # BN_EPS is then a third of the denominator
        net.params[name]["gamma"][:] = rng.uniform(0.5, 1.5, cout)
        net.params[name]["beta"][:] = rng.normal(0, 0.3, cout)
        net.params[name]["w"][:, -1] *= 0.01  # a channel far below the layer's max|W| / 8
    net.params[spec[0]["name"]]["w"][:] *= 0.05  # small first-layer weights: thresholds need an input shift
    for p in net.params.values():
        if "b" in p:
            p["b"][:] = rng.normal(0, 0.5, p["b"].shape)
    x = np.zeros((2, *shape), dtype=np.uint8)
    wl = export_network(net, name="t", dataset="synthetic", num_classes=3, input_shape=shape, mean=MEAN, std=STD,
                        x=x, y=np.zeros(2, np.int64))
    return net, wl


def _folded(net: Network, name: str, layer: dict) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(w, b, k, Cin) with BN folded: w * gamma / sqrt(var + eps), beta - mean * gamma / sqrt(var + eps)."""
    p, r = net.params[name], net.running[name]
    g = p["gamma"].astype(np.float64) / np.sqrt(r["var"].astype(np.float64) + BN_EPS)
    w = p["w"].astype(np.float64) * g
    b = p["beta"].astype(np.float64) - r["mean"].astype(np.float64) * g
    k, cin = layer["kernel"], layer["in_shape"][0]
    return w, b, k, cin


def _to_workload(w: np.ndarray, k: int, cin: int) -> np.ndarray:
    """Trainer rows (ky, kx, cin) x Cout -> workload [Cout, Cin, k, k]."""
    return w.reshape(k, k, cin, -1).transpose(3, 2, 0, 1)


def _check_rounded(ints: np.ndarray, floats: np.ndarray, scale: np.ndarray) -> None:
    """ints * scale is floats rounded to the nearest step: off by at most half a step (round, not floor)."""
    err = np.abs(ints.astype(np.float64) * scale - floats)
    assert (err <= scale / 2 * (1 + 1e-6) + 1e-12).all(), float((err / scale).max())


def test_hidden_convs_are_bn_folded_and_rounded_on_their_channel_scale():
    net, wl = _exported("vgg_small", [3, 16, 16], 0.5)
    for layer in wl.layers:
        if layer["type"] != "conv" or layer["inputs"][0] == "input":
            continue
        w, b, k, cin = _folded(net, layer["name"], layer)
        w = _to_workload(w, k, cin)
        maxabs = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
        s = np.maximum(np.maximum(maxabs, maxabs.max() / 8), INT8_MAX / VTH_MAX) / INT8_MAX
        _check_rounded(wl.weights(layer["name"]), w, s[:, None, None, None])
        _check_rounded(wl.bias(layer["name"]), b, s)
        np.testing.assert_array_equal(wl.vth(layer["name"]), np.maximum(np.rint(net.vth / s), 1))
        assert wl.vth(layer["name"]).max() <= VTH_MAX


def test_first_conv_absorbs_the_input_normalisation_and_its_shift():
    net, wl = _exported("vgg_small", [3, 16, 16], 0.5)
    layer = wl.layers[0]
    w, b, k, cin = _folded(net, layer["name"], layer)
    w = _to_workload(w, k, cin)
    # (x/255 - mean)/std: weight / (255 std_c), bias - sum_k w * mean_c / std_c
    b = b - (w * (MEAN / STD)[None, :, None, None]).sum(axis=(1, 2, 3))
    w = w / (255.0 * STD)[None, :, None, None]
    maxabs = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    s = np.maximum(maxabs, maxabs.max() / 8) / INT8_MAX
    shift = 0
    while np.rint(1 / s / 2**shift).max() > VTH_MAX_FIRST:  # the smallest shift keeping thresholds <= VTH_MAX_FIRST
        shift += 1
    assert wl.input_shift == shift > 0
    _check_rounded(wl.weights(layer["name"]), w, s[:, None, None, None])
    _check_rounded(wl.bias(layer["name"]), b, s)
    np.testing.assert_array_equal(wl.vth(layer["name"]), np.maximum(np.rint(net.vth / s / 2**shift), 1))


def test_output_after_a_flatten_keeps_the_channel_major_order_and_one_logit_scale():
    net, wl = _exported("vgg_small", [3, 16, 16], 0.5)
    out = wl.layers[-1]
    c, h, wd = wl.layer(out["inputs"][0])["in_shape"]
    assert h == wd == 2  # a spatial flatten, so the order matters
    wf = net.params[out["name"]]["w"].astype(np.float64)  # trainer rows (y, x, c)
    expected = wf.reshape(h, wd, c, -1).transpose(3, 2, 0, 1).reshape(wf.shape[1], -1)  # workload (c, y, x)
    scale = np.abs(wf).max() / INT8_MAX
    assert out["logit_scale"] == pytest.approx(scale, rel=1e-9)
    _check_rounded(wl.weights(out["name"]), expected, scale)
    _check_rounded(wl.bias(out["name"]), net.params[out["name"]]["b"].astype(np.float64), scale)


def test_output_after_global_pooling_folds_one_over_hw_and_identity_shortcuts_get_their_gain():
    net, wl = _exported("resnet19", [3, 8, 8], 0.05)
    out = wl.layers[-1]
    pool = wl.layer(out["inputs"][0])
    assert pool["type"] == "avgpool"
    hw = int(np.prod(pool["in_shape"][1:]))
    assert hw > 1
    expected = net.params[out["name"]]["w"].astype(np.float64).T / hw  # the integer pool sums, the float one means
    scale = np.abs(expected).max() / INT8_MAX
    assert out["logit_scale"] == pytest.approx(scale, rel=1e-9)
    _check_rounded(wl.weights(out["name"]), expected, scale)
    gains = 0
    for layer in wl.layers:
        if "shortcut_gain" not in layer:
            continue
        main = wl.layer(layer["inputs"][0])
        w, _, k, cin = _folded(net, main["name"], main)
        s = max(np.abs(w).max(), INT8_MAX / VTH_MAX) / INT8_MAX  # one scalar scale for an identity of spikes
        assert layer["shortcut_gain"] == max(int(np.rint(1 / s)), 1), layer["name"]
        gains += 1
    assert gains >= 2
