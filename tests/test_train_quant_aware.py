"""`satasim train --quant-aware`: training steps run on the weights as the int8 export rounds them (fake
quantisation, straight-through), the float weights take the updates, and the option is recorded and kept on resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_train_export import LINEAR_JOINS_FILE, _random_net
from test_train_guards import DATA, TRAIN, run_cli
from test_train_guards import _cfg as guards_cfg
from test_train_network_file import MLP_FILE

from satasim_atsn.errors import TrainError
from satasim_atsn.train.export import export_network, int8_grid_weights
from satasim_atsn.train.models import build_spec
from satasim_atsn.train.network import Network
from satasim_atsn.train.trainer import make_normaliser, on_int8_grid, train_model
from satasim_atsn.workload.format import read_workload


def _export(net: Network, x: np.ndarray, mean: np.ndarray, std: np.ndarray):
    return export_network(net, name="t", dataset="synthetic", num_classes=net.spec[-1]["out_shape"][0],
                          input_shape=list(x.shape[-3:]), mean=mean, std=std, x=x, y=np.zeros(len(x), np.int64))


@pytest.mark.parametrize("model,mode,width", [("vgg_small", "membrane", 0.5), ("resnet19", "accumulate", 0.05)])
def test_weights_on_the_grid_export_to_the_same_int8_weights(model, mode, width):
    """The grid is the export's: exporting the moved weights gives the same int8 arrays (shortcut joins, the first
    layer's folded normalisation and the output layer's single scale included), and each weight moved by at most
    half a step of its channel's scale."""
    net, x, mean, std, _ = _random_net(model, [3, 8, 8], mode, width)
    _assert_grid_is_the_exports(net, x, mean, std)


def test_an_mlp_files_grid_is_its_exports(tmp_path):
    """A network file's layers: a linear layer reading the flattened image (the input normalisation folded in, no
    floor) and a hidden linear layer with its BN."""
    path = tmp_path / "mlp.yaml"
    path.write_text(MLP_FILE)
    spec = build_spec(str(path), [1, 12, 12], 4, "membrane", 0.5)
    assert any(ly["type"] == "linear" and ly.get("bn") for ly in spec)
    net = Network(spec, 3, seed=2)
    x = np.random.default_rng(1).integers(0, 256, (16, 1, 12, 12), dtype=np.uint8)
    mean, std = np.array([0.4]), np.array([0.3])
    net.input_pad = (-mean / std).astype(np.float32)
    for _ in range(10):
        net.forward(make_normaliser(mean, std, False)(x), training=True)
    _assert_grid_is_the_exports(net, x, mean, std)


def test_a_files_linear_joins_grid_is_its_exports(tmp_path):
    """Residual joins of non-spiking linear layers: both branches on their join's shared scales (the grid had no
    scale for them, as the export had none)."""
    path = tmp_path / "linjoin.yaml"
    path.write_text(LINEAR_JOINS_FILE)
    net = Network(build_spec(str(path), [3, 8, 8], 3, "membrane", 1.0), 3, seed=2)
    x = np.random.default_rng(1).integers(0, 256, (16, 3, 8, 8), dtype=np.uint8)
    mean, std = np.array([0.4, 0.5, 0.6]), np.array([0.3, 0.2, 0.25])
    net.input_pad = (-mean / std).astype(np.float32)
    for _ in range(10):
        net.forward(make_normaliser(mean, std, False)(x), training=True)
    _assert_grid_is_the_exports(net, x, mean, std)


def _assert_grid_is_the_exports(net: Network, x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> None:
    rng = np.random.default_rng(5)
    for p in net.params.values():  # BN scales of either sign and size: the fold is not the identity
        if "gamma" in p:
            p["gamma"] = rng.uniform(-2, 2, p["gamma"].shape).astype(np.float32)
    before = _export(net, x, mean, std)
    grid = int8_grid_weights(net, mean, std)
    kinds = {ly["name"]: ly["type"] for ly in net.spec}
    assert "output" in {kinds[n] for n in grid}
    assert set(grid) == {n for n, k in kinds.items() if k in ("conv", "linear", "output")}
    moved = 0
    for name, weights in grid.items():
        raw = net.params[name]["w"]
        assert weights.shape == raw.shape and weights.dtype == raw.dtype
        moved += int((weights != raw).sum())
        net.params[name]["w"] = weights
    after = _export(net, x, mean, std)
    assert moved > 0
    for key, array in before.arrays.items():
        if key.startswith("w/"):
            assert np.array_equal(array, after.arrays[key]), key
    # on the grid already: moving again changes nothing but float rounding
    again = int8_grid_weights(net, mean, std)
    for name, weights in again.items():
        np.testing.assert_allclose(weights, net.params[name]["w"], rtol=1e-5, atol=1e-7)


def test_on_int8_grid_swaps_the_weights_in_and_gives_the_float_ones_back():
    net, x, mean, std, norm = _random_net("vgg_small", [3, 8, 8], "membrane", 0.5)
    kept = {n: p["w"] for n, p in net.params.items()}
    grid = int8_grid_weights(net, mean, std)
    with on_int8_grid(net, None):  # off: nothing changes
        assert all(net.params[n]["w"] is kept[n] for n in kept)
    with on_int8_grid(net, (mean, std)):
        for name, weights in grid.items():
            np.testing.assert_array_equal(net.params[name]["w"], weights)
        f = net.forward(norm(x), training=True)
        grads = net.backward(np.ones_like(f))
    assert all(net.params[n]["w"] is kept[n] for n in kept)  # the update lands on the float weights
    assert grads["conv1"]["w"].shape == kept["conv1"].shape
    with pytest.raises(RuntimeError), on_int8_grid(net, (mean, std)):
        raise RuntimeError("a failing step")
    assert all(net.params[n]["w"] is kept[n] for n in kept)


def test_a_quant_aware_training_records_the_option_and_trains_other_weights(tmp_path):
    plain = train_model(guards_cfg(epochs=1), tmp_path / "plain.npz", quiet=True, data=DATA)
    aware = train_model(guards_cfg(epochs=1, quant_aware=True), tmp_path / "aware.npz", quiet=True, data=DATA)
    assert aware["config"]["quant_aware"] is True
    assert "quant_aware" not in plain["config"]  # a training without it keeps its bytes
    assert read_workload(tmp_path / "aware.npz").meta["provenance"]["config"]["quant_aware"] is True
    w_plain, w_aware = (read_workload(tmp_path / n).arrays["w/conv2"] for n in ("plain.npz", "aware.npz"))
    assert not np.array_equal(w_plain, w_aware)
    # the same quant-aware training again: the same bytes
    (tmp_path / "again").mkdir()
    train_model(guards_cfg(epochs=1, quant_aware=True), tmp_path / "again" / "aware.npz", quiet=True, data=DATA)
    assert (tmp_path / "again" / "aware.npz").read_bytes() == (tmp_path / "aware.npz").read_bytes()


@pytest.mark.parametrize("first,then", [(True, False), (False, True)])
def test_resuming_with_the_option_changed_is_refused(tmp_path, first, then):
    train_model(guards_cfg(epochs=1, quant_aware=first), tmp_path / "w.npz", quiet=True, data=DATA)
    with pytest.raises(TrainError, match="--quant-aware") as info:
        train_model(guards_cfg(epochs=2, quant_aware=then), tmp_path / "w.npz", resume=True, quiet=True, data=DATA)
    assert f"resume {'with' if first else 'without'} --quant-aware" in str(info.value)
    train_model(guards_cfg(epochs=2, quant_aware=first), tmp_path / "w.npz", resume=True, quiet=True, data=DATA)


def test_the_cli_option_reaches_the_workload(tmp_path, capsys):
    out, js = tmp_path / "w.npz", tmp_path / "w.json"
    code, _, err = run_cli(TRAIN + ["--quant-aware", "-o", str(out), "--json", str(js)], capsys)
    assert code == 0, err
    assert json.loads(js.read_text())["config"]["quant_aware"] is True


def test_networks_on_spike_frames_train_quant_aware(tmp_path):
    """Frames have no input normalisation to fold: the grid of a first conv on frames is a hidden conv's (with the
    threshold floor), and a one-layer classifier on the flattened frames has the output's single scale."""
    from test_train_cli import _framed

    data = (_framed("train", 64), _framed("test", 16))
    spec = build_spec("vgg_small", [2, 8, 8], 3, "membrane", 0.5, framed=True)
    net = Network(spec, 3, seed=2, direct_input=False)
    frames = data[0].x[:16]
    mean, std = data[0].channel_stats()
    normalise = make_normaliser(mean, std, True)
    for _ in range(5):
        net.forward(normalise(frames), training=True)
    _assert_grid_is_the_exports(net, frames, mean, std)
    summary = train_model(guards_cfg(dataset="cifar10-dvs", epochs=1, timesteps=3, method="atsn", quant_aware=True),
                          tmp_path / "dvs.npz", quiet=True, data=data)
    assert summary["config"]["quant_aware"] is True
    assert read_workload(tmp_path / "dvs.npz").input_encoding == "spike_frames"
