"""`satasim train --model FILE.yaml`: a network file (docs/networks.md) trained as written.

The trainer built only vgg_small, vgg16 and resnet19; a user's own network could become a statistical workload or
be trained elsewhere and imported, but not trained here. These tests pin that a file is trained exactly as the
built-in model of the same layers, that its layers (names, strides, residual joins) reach the workload and the
simulator, and that a file that does not fit the data, or was edited under a checkpoint, is refused in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.cli import main
from satasim_atsn.errors import SatasimError, TrainError
from satasim_atsn.train.config import TrainConfig
from satasim_atsn.train.models import build_spec, model_label
from satasim_atsn.train.trainer import train_model
from satasim_atsn.workload.datasets import synthetic
from satasim_atsn.workload.format import read_workload

ROOT = Path(__file__).resolve().parents[1]
DATA = (synthetic("train", 96), synthetic("test", 32))

#: vgg_small (train/models.py) written as a network file, for the synthetic data's 1 x 12 x 12 images, 4 classes
VGG_SMALL_FILE = """name: vgg_small_as_a_file
input_shape: [1, 12, 12]
num_classes: 4
layers:
  - {name: conv1, type: conv, out_channels: 8, kernel: 3, padding: 1}
  - {name: pool1, type: maxpool, kernel: 2}
  - {name: conv2, type: conv, out_channels: 16, kernel: 3, padding: 1}
  - {name: pool2, type: maxpool, kernel: 2}
  - {name: conv3, type: conv, out_channels: 32, kernel: 3, padding: 1}
  - {name: pool3, type: maxpool, kernel: 2}
  - {name: flatten, type: flatten}
  - {name: output, type: output}
"""

#: strided convs, a residual join of two currents, a hidden linear layer, an output layer of its own name
RESIDUAL_FILE = """name: residual
input_shape: [1, 12, 12]
num_classes: 4
layers:
  - {name: stem, type: conv, out_channels: 6, kernel: 3, stride: 2, padding: 1}
  - {name: main, type: conv, out_channels: 6, kernel: 3, padding: 1, spiking: false}
  - {name: skip, type: conv, out_channels: 6, kernel: 1, spiking: false, inputs: [stem]}
  - {name: join, type: add, inputs: [main, skip]}
  - {name: pool, type: maxpool, kernel: 2}
  - {name: flat, type: flatten}
  - {name: hidden, type: linear, out_features: 24}
  - {name: classes, type: output}
"""


def _config(model: str, **kw) -> TrainConfig:
    base = dict(model=model, dataset="synthetic", method="atsn", epochs=1, batch_size=32, lr=0.05, test_images=16,
                width=0.5, seed=3)
    return TrainConfig(**(base | kw))


def _write(tmp_path: Path, text: str, name: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_file_of_vgg_small_trains_to_the_same_weights_as_vgg_small(tmp_path):
    """The same layers give the same network: every array of the two workloads is equal (only the provenance's
    model label and the name differ), so a file is trained by exactly the code that trains the built-in models."""
    model = _write(tmp_path, VGG_SMALL_FILE.replace("out_channels: 8", "out_channels: 16")
                   .replace("out_channels: 16, kernel: 3, padding: 1}\n  - {name: pool2",
                            "out_channels: 32, kernel: 3, padding: 1}\n  - {name: pool2")
                   .replace("out_channels: 32, kernel: 3, padding: 1}\n  - {name: pool3",
                            "out_channels: 64, kernel: 3, padding: 1}\n  - {name: pool3"), "vgg_small.yaml")
    train_model(_config(model), tmp_path / "file.npz", quiet=True, data=DATA)
    train_model(_config("vgg_small"), tmp_path / "builtin.npz", quiet=True, data=DATA)
    mine, theirs = np.load(tmp_path / "file.npz"), np.load(tmp_path / "builtin.npz")
    assert sorted(mine.files) == sorted(theirs.files)
    for key in mine.files:
        if key != "meta":
            assert np.array_equal(mine[key], theirs[key]), key
    meta = read_workload(tmp_path / "file.npz").meta
    label = meta["provenance"]["config"]["model"]
    assert label.startswith("vgg_small.yaml sha256:") and str(tmp_path) not in json.dumps(meta)
    assert read_workload(tmp_path / "builtin.npz").meta["provenance"]["config"]["model"] == "vgg_small"


def test_a_residual_file_reaches_the_workload_and_the_simulator(tmp_path, capsys):
    """Its layer names, strides and join are the workload's; `satasim run` simulates it on the ATSN design."""
    model = _write(tmp_path, RESIDUAL_FILE, "residual.yaml")
    out = tmp_path / "r.npz"
    with pytest.raises(SystemExit) as stop:
        main(["train", "--model", model, "--dataset", "synthetic", "--epochs", "1", "--test-images", "8", "-q",
              "-o", str(out)])
    assert stop.value.code in (0, None)
    layers = read_workload(out).meta["layers"]
    assert [ly["name"] for ly in layers] == ["stem", "main", "skip", "join", "pool", "flat", "hidden", "classes"]
    assert layers[0]["stride"] == 2 and layers[0]["out_shape"] == [6, 6, 6]
    assert layers[4]["out_shape"] == [6, 3, 3] and layers[-1]["out_shape"] == [4]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["run", str(ROOT / "archs" / "atsn16x16.yaml"), str(out), "--images", "4", "--json",
              str(tmp_path / "run.json"), "-q"])
    assert stop.value.code in (0, None)
    result = json.loads((tmp_path / "run.json").read_text())
    assert {ly["name"] for ly in result["layers"]} >= {"stem", "join", "hidden", "classes"}


@pytest.mark.parametrize(("edits", "needle"), [
    ([("input_shape: [1, 12, 12]", "input_shape: [1, 28, 28]")],
     "input_shape: is [1, 28, 28] but the dataset's inputs are [1, 12, 12]; write input_shape: [1, 12, 12], or "
     "resize an image folder to the file's size with --image-size 28"),
    # --image-size cannot help with another number of channels, or a rectangle (h3, session 47)
    ([("input_shape: [1, 12, 12]", "input_shape: [3, 12, 12]")],
     "write input_shape: [1, 12, 12] (the images' channels differ: an image folder keeps its colour mode)"),
    ([("input_shape: [1, 12, 12]", "input_shape: [1, 12, 16]")],
     "write input_shape: [1, 12, 12] (--image-size resizes an image folder to a square only)"),
    ([("num_classes: 4", "num_classes: 10")], "num_classes: is 10 but the dataset has 4 classes; write num_classes: 4 "
     "(and out_features: 4 in the output layer, where the file gives it)"),  # "or leave it out" was refused in turn
    ([("  - {name: classes, type: output}\n", ""), ("num_classes: 4\n", "")],
     "layers[6] (hidden): the network ends in the linear layer 'hidden', whose spike counts are its output; the "
     "trainer's losses and exit rules read an output layer; end the network with one"),
])
def test_a_file_that_does_not_fit_the_data_is_refused_naming_its_field(tmp_path, edits, needle):
    text = RESIDUAL_FILE
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    model = _write(tmp_path, text, "net.yaml")
    with pytest.raises(SatasimError) as refused:
        train_model(_config(model), tmp_path / "x.npz", quiet=True, data=DATA)
    assert needle in str(refused.value) and str(refused.value).startswith(model)
    assert not (tmp_path / "x.npz").exists()


MLP_FILE = """name: mlp
input_shape: [1, 12, 12]
num_classes: 4
layers:
  - {name: flat, type: flatten}
  - {name: fc1, type: linear, out_features: 64}
  - {name: fc2, type: linear, out_features: 32}
  - {name: out, type: output}
"""


def test_an_mlp_on_images_trains_with_the_image_read_once(tmp_path):
    """A file that flattens the image first (valid for workload build) crashed the trainer in its first step. The
    flattened image is static, as a first conv's input: its linear layer's current is computed once per image,
    and the export folds the input normalisation and the input shift into it, so the int8 network scores as the
    float one (it would not, were the pixels' channels or scale mixed up)."""


    model = _write(tmp_path, MLP_FILE, "mlp.yaml")
    summary = train_model(_config(model, epochs=5, width=1.0), tmp_path / "m.npz", quiet=True,
                          data=(synthetic("train", 256), synthetic("test", 64)))
    workload = read_workload(tmp_path / "m.npz")
    assert [ly["type"] for ly in workload.meta["layers"]] == ["flatten", "linear", "linear", "output"]
    assert workload.meta["quant"]["input_shift"] >= 0 and workload.meta["input_encoding"] == "direct"
    floated, quantised = summary["float"]["fixed_t"]["4"], summary["quantised"]["fixed_t"]["4"]
    assert floated > 0.5 and abs(quantised - floated) <= 0.05, (floated, quantised)
    rng = np.random.default_rng(5)
    _assert_stbp_gradients(build_spec(model, [1, 12, 12], 4, "membrane", 0.25),
                           rng.standard_normal((2, 12, 12, 1)), np.array([0, 3]), "fc1", ("w", "b", "gamma"), rng)


def _assert_stbp_gradients(spec: list[dict], x: np.ndarray, y: np.ndarray, layer: str, keys: tuple[str, ...],
                           rng: np.random.Generator):
    """STBP gradients of ``layer``'s parameters ``keys`` against central differences (the smooth surrogate,
    float64), at four entries of each; returns the network."""
    from test_train_gradients import central_difference

    from satasim_atsn.train.losses import loss_and_grad
    from satasim_atsn.train.network import Network

    net = Network(spec, 3, seed=1, smooth_spikes=True)
    for p in net.params.values():
        for k in p:
            p[k] = p[k].astype(np.float64)

    def loss():
        return loss_and_grad(net.forward(x, training=True), y, "imp", "membrane")[0]

    grads = net.backward(loss_and_grad(net.forward(x, training=True), y, "imp", "membrane")[1])
    for key in keys:
        param = net.params[layer][key]
        for flat in rng.choice(param.size, size=min(4, param.size), replace=False):
            i = np.unravel_index(flat, param.shape)
            numeric = central_difference(param, i, loss)
            assert abs(grads[layer][key][i] - numeric) <= 1e-4 * max(1.0, abs(numeric)), (key, i)
    return net


ONE_LAYER_FILE = ("name: lin\ninput_shape: [1, 12, 12]\nnum_classes: 4\nlayers:\n"
                  "  - {name: flat, type: flatten}\n  - {name: out, type: output}\n")


@pytest.mark.parametrize("method", ["atsn", "snn"])
def test_a_one_layer_classifier_on_the_image_trains_and_runs(tmp_path, capsys, method):
    """An output layer on the flattened image (a one-layer classifier) was refused; its current is the same at every
    t (as a first conv's), added to the output membranes each step. It trains (exact STBP gradients: the gradient is
    the sum over t), its int8 export scores what the float network does, and a fixed-T design simulates it with the
    exported accuracy (no exit tile: the exit units cannot read pixels, so the PEs compute it)."""
    model = _write(tmp_path, ONE_LAYER_FILE, "lin.yaml")
    out = tmp_path / "m.npz"
    summary = train_model(_config(model, method=method, epochs=4, width=1.0), out, quiet=True,
                          data=(synthetic("train", 256), synthetic("test", 64)))
    wl = read_workload(out)
    assert [(ly["type"], ly["inputs"]) for ly in wl.layers] == [("flatten", ["input"]), ("output", ["flat"])]
    floated, quantised = summary["float"]["fixed_t"]["4"], summary["quantised"]["fixed_t"]["4"]
    assert floated > 0.5 and abs(quantised - floated) <= 0.05, (floated, quantised)
    # the same current every step: the float network's logits at t are t times (accumulate) or the LIF sum of
    # (membrane) the first step's, so its argmax never changes and every fixed T scores the same
    assert len({summary["float"]["fixed_t"][t] for t in "1234"}) == 1
    with pytest.raises(SystemExit) as stop:
        main(["run", "conventional16x16", str(out), "--set", "array.exit_unit_tiles=0", "--quiet", "--json",
              str(tmp_path / "run.json")])
    assert stop.value.code == 0
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["neurobench"]["ClassificationAccuracy"] == pytest.approx(_workload_accuracy(out), abs=1e-12)
    rng = np.random.default_rng(2)
    _assert_stbp_gradients(build_spec(model, [1, 12, 12], 4, "membrane", 1.0),
                           rng.standard_normal((2, 12, 12, 1)), np.array([1, 2]), "out", ("w", "b"), rng)


def _workload_accuracy(path: Path) -> float:
    """Fixed-T accuracy of a workload's integer forward on its embedded inputs."""
    from satasim_atsn.snn.forward import run_forward

    wl = read_workload(path)
    result = run_forward(wl)
    return float((result.pred == wl.arrays["y"]).mean())


def test_a_pool_or_a_current_on_the_image_is_refused_before_any_data_is_read(tmp_path, capsys):
    """The trainer reads the image with a conv, or after a flatten with a spiking linear or an output layer; a
    max-pool of the image (the file of spike frames below) is one line naming the layer, before the data (a folder
    that does not exist)."""
    model = _write(tmp_path, POOL_FIRST_FILE, "pool.yaml")
    with pytest.raises(SystemExit) as stop:
        main(["train", "--model", model, "--dataset", "imagefolder", "--data-dir", str(tmp_path / "nowhere"),
              "-o", str(tmp_path / "m.npz")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and len(err.strip().splitlines()) == 1 and "nowhere" not in err
    assert f"{model}: layers[0] (pool0): a maxpool layer reads the image, and the trainer reads images with a " in err
    assert not list(tmp_path.glob("m.npz*"))


def test_an_overlapping_max_pool_trains_as_the_workloads_pool(tmp_path):
    """A max-pool of kernel 3 at stride 2 (valid for workload build) crashed the trainer, whose pool tiled the map.
    The strided pool is the workload's (its output size and its OR of each window), with exact gradients."""
    from test_train_gradients import close, numeric_grad

    from satasim_atsn.train import layers as L

    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 7, 7, 3))
    r = rng.standard_normal(L.strided_maxpool_forward(x, 3, 2)[0].shape)
    assert r.shape == (2, 3, 3, 3)

    def f():
        return float((L.strided_maxpool_forward(x, 3, 2)[0] * r).sum())

    assert close(L.strided_maxpool_backward(r, L.strided_maxpool_forward(x, 3, 2)[1]), numeric_grad(f, x))
    spikes = (rng.random((4, 9, 9, 2)) < 0.3).astype(np.float32)
    pooled = L.strided_maxpool_forward(spikes, 3, 2)[0]
    for i in range(4):
        for j in range(4):
            assert np.array_equal(pooled[:, i, j], spikes[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(1, 2)))
    model = _write(tmp_path, RESIDUAL_FILE.replace("{name: pool, type: maxpool, kernel: 2}",
                                                   "{name: pool, type: maxpool, kernel: 3, stride: 2}"), "p.yaml")
    summary = train_model(_config(model, epochs=2), tmp_path / "p.npz", quiet=True, data=DATA)
    pool = next(ly for ly in read_workload(tmp_path / "p.npz").meta["layers"] if ly["name"] == "pool")
    assert (pool["kernel"], pool["stride"], pool["out_shape"]) == (3, 2, [3, 2, 2])
    assert summary["quantised"]["fixed_t"]["4"] == pytest.approx(summary["float"]["fixed_t"]["4"], abs=0.1)


def test_a_checkpoint_of_an_edited_file_is_refused_and_of_the_same_layers_resumes(tmp_path):
    """The checkpoint names the file by its name and a digest of its layers: a comment or a move keeps it, a layer
    of another size is another model (its weights would not fit)."""
    model = _write(tmp_path, RESIDUAL_FILE, "net.yaml")
    out = tmp_path / "w.npz"
    train_model(_config(model, epochs=1), out, quiet=True, data=DATA)
    assert (tmp_path / "w.npz.ckpt.npz").is_file()
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "net.yaml").write_text("# the same layers, moved\n" + RESIDUAL_FILE)
    summary = train_model(_config(str(moved / "net.yaml"), epochs=2), out, resume=True, quiet=True, data=DATA)
    assert summary["resumed"] is not None and len(summary["history"]) == 2
    (moved / "net.yaml").write_text(RESIDUAL_FILE.replace("out_features: 24", "out_features: 40"))
    with pytest.raises(TrainError, match=r"--model: checkpoint is for model='net.yaml sha256:[0-9a-f]{16}', this "
                                         r"run has 'net.yaml sha256:[0-9a-f]{16}'"):
        train_model(_config(str(moved / "net.yaml"), epochs=3), out, resume=True, quiet=True, data=DATA)


def test_the_method_sets_the_output_mode_and_says_so_when_the_file_says_another(tmp_path):
    model = _write(tmp_path, RESIDUAL_FILE, "net.yaml")
    spec = build_spec(model, [1, 12, 12], 4, "accumulate", 0.5)
    assert spec[-1]["output_mode"] == "accumulate" and spec[-1]["name"] == "classes"
    assert spec[0]["bn"] and spec[0]["out_channels"] == 3  # convs get batch norm, --width scales them
    summary = train_model(_config(model, method="snn"), tmp_path / "s.npz", quiet=True, data=DATA)
    assert summary["notes"] == ["the network file's output layer 'classes' is 'membrane'; it is trained as "
                                "'accumulate' (the method's; --output membrane keeps the file's)"]
    assert train_model(_config(model), tmp_path / "a.npz", quiet=True, data=DATA)["notes"] == []
    assert model_label(model, 0.5) != model_label(model, 1.0)  # the width is part of the layers trained


def test_a_file_removed_while_it_trains_does_not_fail_the_checkpoints(tmp_path, monkeypatch):
    """The model's label is read once: the checkpoints and the export after each epoch named the model by reading
    the file again, so a file moved or edited during hours of training failed the next checkpoint."""
    from satasim_atsn.train import trainer

    model = _write(tmp_path, RESIDUAL_FILE, "net.yaml")
    label = model_label(model, 0.5)
    epoch = trainer._train_epoch

    def remove_then_train(*args, **kwargs):
        Path(model).unlink(missing_ok=True)
        return epoch(*args, **kwargs)

    monkeypatch.setattr(trainer, "_train_epoch", remove_then_train)
    train_model(_config(model, epochs=2), tmp_path / "w.npz", quiet=True, data=DATA)
    assert not Path(model).exists()
    assert read_workload(tmp_path / "w.npz").meta["provenance"]["config"]["model"] == label


HIDDEN_LINEAR_FILE = """name: hidden
input_shape: [2, 8, 8]
num_classes: 3
layers:
  - {name: c1, type: conv, out_channels: 4, kernel: 3, stride: 2, padding: 1}
  - {name: flat, type: flatten}
  - {name: fc1, type: linear, out_features: 6}
  - {name: out, type: output}
"""


def test_a_hidden_linear_layer_has_batch_norm_with_exact_gradients(tmp_path):
    """A hidden linear layer of a file started nearly silent (binary inputs give currents far below V_th with no
    BN after it), so networks with one barely trained; it now has tdBN as convs do. STBP through it against
    central differences (the smooth surrogate, float64)."""


    spec = build_spec(_write(tmp_path, HIDDEN_LINEAR_FILE, "h.yaml"), [2, 8, 8], 3, "membrane", 1.0)
    assert [ly.get("bn", False) for ly in spec] == [True, False, True, False]
    rng = np.random.default_rng(7)
    net = _assert_stbp_gradients(spec, rng.standard_normal((2, 8, 8, 2)), np.array([0, 2]), "fc1",
                                 ("w", "b", "gamma", "beta"), rng)
    assert set(net.params["fc1"]) == {"w", "b", "gamma", "beta"}


def test_the_export_folds_a_hidden_linear_layers_batch_norm():
    """The folded weights and bias give the BN'd current of the layer in evaluation (running statistics)."""
    from satasim_atsn.train import layers as L
    from satasim_atsn.train.export import fold_bn
    from satasim_atsn.train.network import Network

    spec = build_spec("vgg_small", [1, 12, 12], 4, "membrane", 0.25)
    spec = spec[:-1] + [dict(spec[-1], type="linear", name="fc1", bn=True, out_features=5, out_shape=[5]),
                        dict(spec[-1], inputs=["fc1"], in_shape=[5])]
    net = Network(spec, 2, seed=0)
    rng = np.random.default_rng(3)
    p, r = net.params["fc1"], net.running["fc1"]
    p["b"][:] = rng.standard_normal(5)
    p["gamma"][:], p["beta"][:] = rng.uniform(0.5, 2, 5), rng.standard_normal(5)
    r["mean"][:], r["var"][:] = rng.standard_normal(5), rng.uniform(0.5, 2, 5)
    x = rng.random((7, p["w"].shape[0]))
    current = L.linear_forward(x, p["w"].astype(np.float64), p["b"].astype(np.float64))[0]
    expected = L.bn_forward(current, p["gamma"].astype(np.float64), p["beta"].astype(np.float64),
                            {k: v.astype(np.float64) for k, v in r.items()}, training=False)[0]
    w, b = fold_bn(net, "fc1")
    assert np.allclose(x @ w + b, expected, rtol=1e-5, atol=1e-5)
    w_out, b_out = fold_bn(net, spec[-1]["name"])  # the output layer has no BN: its own weights and bias
    assert np.array_equal(w_out, net.params[spec[-1]["name"]]["w"].astype(np.float64))
    assert np.array_equal(b_out, net.params[spec[-1]["name"]]["b"].astype(np.float64))


#: an event network that pools the frames first (as DVS networks shrink 128 x 128 events), then a conv
POOL_FIRST_FILE = """name: pool_first
input_shape: [2, 8, 8]
num_classes: 4
layers:
  - {name: pool0, type: maxpool, kernel: 2}
  - {name: conv1, type: conv, out_channels: 8, kernel: 3, padding: 1}
  - {name: flat, type: flatten}
  - {name: out, type: output}
"""


def test_spike_frames_may_be_read_by_a_pool_or_an_output_layer(tmp_path, capsys):
    """The trainer refused any layer but a conv or a flatten on its input, images and spike frames alike; frames
    have a time axis, as any layer's spikes, and the workload lets a max-pool or (after a flatten) an output layer
    read them. A file that pools the frames first trains, exports its pool as the layer reading the input, and the
    simulator's accuracy on a fixed-T design is the exported network's; a one-layer classifier on the frames trains
    as well (on images too: above)."""
    from test_train_cli import _framed

    data = (_framed("train", 64), _framed("test", 16))
    model = _write(tmp_path, POOL_FIRST_FILE, "pool_first.yaml")
    out = tmp_path / "pool_first.npz"
    summary = train_model(_config(model, dataset="cifar10-dvs", timesteps=3, width=1.0), out, quiet=True, data=data)
    wl = read_workload(out)
    assert wl.input_encoding == "spike_frames"
    assert (wl.layers[0]["type"], wl.layers[0]["inputs"]) == ("maxpool", ["input"])
    with pytest.raises(SystemExit) as stop:
        main(["run", "conventional16x16", str(out), "--quiet", "--json", str(tmp_path / "run.json")])
    assert stop.value.code == 0
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["neurobench"]["ClassificationAccuracy"] == summary["quantised"]["fixed_t"]["3"]

    linear = _write(tmp_path, "name: lin\ninput_shape: [2, 8, 8]\nnum_classes: 4\nlayers:\n"
                    "  - {name: flat, type: flatten}\n  - {name: out, type: output}\n", "lin.yaml")
    train_model(_config(linear, dataset="cifar10-dvs", timesteps=3), tmp_path / "lin.npz", quiet=True, data=data)
    wl = read_workload(tmp_path / "lin.npz")
    assert [(ly["type"], ly["inputs"]) for ly in wl.layers] == [("flatten", ["input"]), ("output", ["flat"])]


def test_a_file_the_workload_format_refuses_is_refused_before_training(tmp_path, capsys):
    """A conv reading a non-spiking conv's current trained for a whole run and failed at the export, naming
    "<memory>": the workload format's graph rules now run when the file is read, naming the file's own layer,
    before any data, for the trainer and for workload build alike."""
    model = _write(tmp_path, "name: cur\ninput_shape: [1, 12, 12]\nnum_classes: 4\nlayers:\n"
                   "  - {name: c1, type: conv, out_channels: 4, kernel: 3, padding: 1}\n"
                   "  - {name: c2, type: conv, out_channels: 4, kernel: 3, padding: 1, spiking: false}\n"
                   "  - {name: c3, type: conv, out_channels: 4, kernel: 3, padding: 1}\n"
                   "  - {name: flat, type: flatten}\n  - {name: out, type: output}\n", "cur.yaml")
    expected = f"{model}: layers[2] (c3).inputs: 'c2' emits a current, not spikes; only add layers take currents"
    for argv in (["train", "--model", model, "--dataset", "imagefolder", "--data-dir", str(tmp_path / "nowhere"),
                  "-o", str(tmp_path / "m.npz")],
                 ["workload", "build", "--network", model, "--rate", "0.1", "-o", str(tmp_path / "b.npz")]):
        with pytest.raises(SystemExit) as stop:
            main(argv)
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.strip().splitlines() == [f"satasim: error: {expected}"], argv
    assert not list(tmp_path.glob("*.npz*"))


def test_the_file_is_read_once_when_the_options_are_checked(tmp_path, monkeypatch):
    """TrainConfig.check read a network file twice (to check its input readers, then to label it): a file edited
    between the two reads would be checked as one network and recorded as another."""
    from satasim_atsn.train import models

    reads = []
    real = models.load_network
    monkeypatch.setattr(models, "load_network", lambda path: reads.append(path) or real(path))
    config = _config(_write(tmp_path, ONE_LAYER_FILE, "lin.yaml"))
    config.check()
    assert len(reads) == 1 and config.model_name().startswith("lin.yaml sha256:")
    assert len(reads) == 1  # the label was made from the file as checked


def test_another_width_of_a_network_file_is_named_as_the_width_not_the_model(tmp_path):
    """A network file's model name carries a digest of its layers at the width trained, so a checkpoint trained at
    width 1 resumed or fine-tuned at --width 0.5 was refused as another --model, and the advice (--model as the
    checkpoint had it) was what the user had passed (h3, session 47); --model vgg_small already said --width."""
    model = _write(tmp_path, RESIDUAL_FILE, "net.yaml")
    out = tmp_path / "w.npz"
    train_model(_config(model, epochs=1, width=1.0), out, quiet=True, data=DATA)
    ckpt = Path(str(out) + ".ckpt.npz")
    with pytest.raises(TrainError, match=r"--width: checkpoint is for width=1\.0, this run has 0\.5"):
        train_model(_config(model, epochs=2, width=0.5), out, resume=True, quiet=True, data=DATA)
    with pytest.raises(TrainError, match=r"--width: the checkpoint is of width=1\.0, this run has 0\.5: its weights do "
                                         r"not fit this network; fine-tune with --width as the checkpoint's"):
        train_model(_config(model, epochs=1, width=0.5, init_from=str(ckpt)), tmp_path / "f.npz", quiet=True,
                    data=DATA)


def test_a_flat_input_shape_is_told_the_datas_shape_alone():
    """A linear network's input_shape [144] on [1, 12, 12] images was told "the images' channels differ: an image
    folder keeps its colour mode", on synthetic data with the same one channel (audit, session 48)."""
    from satasim_atsn.train.models import _input_shape_fix

    assert _input_shape_fix([144], [1, 12, 12]) == "write input_shape: [1, 12, 12]"
    assert _input_shape_fix([3, 12, 12], [1, 12, 12]).endswith("(the images' channels differ: an image folder "
                                                                "keeps its colour mode)")


def test_a_copy_of_the_network_file_under_another_name_fine_tunes(tmp_path):
    """`cp net.yaml copy.yaml` and `--init-from` with --model copy.yaml was refused ("its weights do not fit this
    network") though the two files' layer digests are equal (audit, session 48); a changed layer is still refused."""
    model = _write(tmp_path, ONE_LAYER_FILE, "lin.yaml")
    out = tmp_path / "w.npz"
    train_model(_config(model), out, quiet=True, data=DATA)
    ckpt = str(out) + ".ckpt.npz"
    copy = _write(tmp_path, ONE_LAYER_FILE, "copy.yaml")
    train_model(_config(copy, init_from=ckpt), tmp_path / "f.npz", quiet=True, data=DATA)
    assert (tmp_path / "f.npz").is_file()
    other = _write(tmp_path, ONE_LAYER_FILE.replace("  - {name: out,", "  - {name: hid, type: linear, out_features: "
                                                    "8}\n  - {name: out,"), "other.yaml")
    with pytest.raises(TrainError, match=r"--model: the checkpoint is of model='lin\.yaml sha256:.*', this run has "
                                         r"'other\.yaml sha256:"):
        train_model(_config(other, init_from=ckpt), tmp_path / "g.npz", quiet=True, data=DATA)
