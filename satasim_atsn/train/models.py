"""Network layer tables of the trainer: vgg_small, vgg16, resnet19 (DESIGN section 8) or a network file, and
the methods.

A model is a list of layer dicts in the workload's vocabulary (``satasim_atsn/workload/format.py``)
plus trainer-only keys (``bn``). Shapes are filled in by :func:`build_spec`, which also rejects
inputs a model cannot take. A network file (docs/networks.md) is trained as written: its layers up to its
output layer, every conv (and hidden linear layer) followed by batch norm as in the built-in models; the method
sets the output layer's mode.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from satasim_atsn.errors import TrainError
from satasim_atsn.fileio import expand_home
from satasim_atsn.workload.network_file import NetworkSpec, load_network
from satasim_atsn.workload.networks import resnet19_body, vgg16_body
from satasim_atsn.workload.schema import infer_out_shape

MODELS = ("vgg_small", "vgg16", "resnet19")
LOSSES = ("ce", "dtsnn", "imp")


def is_network_file(model: str) -> bool:
    """True when ``--model`` names a network YAML file (by its suffix or a path) rather than a built-in model."""
    return model.lower().endswith((".yaml", ".yml")) or "/" in model or "\\" in model


def unknown_model(model: str) -> TrainError:
    """The one-line refusal of a ``--model`` that is neither a built-in model nor a network file."""
    return TrainError.at(None, "--model", f"unknown model {model!r}",
                         f"use one of {', '.join(MODELS)}, or a network YAML file (e.g. examples/my_net.yaml)")


def network_file(model: str) -> NetworkSpec:
    """The network file ``--model`` names, read and checked (WorkloadError naming the file, layer and field), and
    refused if it has no output layer (the trainer's methods train a classifier in one)."""
    spec = load_network(expand_home(model))
    if not spec.has_output:
        last = spec.layers[-1]
        raise TrainError.at(spec.source, f"layers[{spec.file_index.get(last['name'], len(spec.layers) - 1)}] "
                            f"({last['name']})",
                            f"the network ends in the {last['type']} layer {last['name']!r}, whose spike counts are "
                            "its output; the trainer's losses and exit rules read an output layer",
                            "end the network with one: - {name: fc, type: output}")
    return spec


def check_input_readers(spec: NetworkSpec, framed: bool) -> None:
    """Refuse a network file whose input the trainer cannot read. Spike frames (a time axis) go to any layer the
    workload format lets read them, as any layer's spikes do; a direct image has no time axis, and the trainer
    reads it with a conv, or after a flatten of it with a spiking linear layer (its current, the same at every t,
    drives the LIF) or an output layer (a one-layer classifier: the same current added at every t). A current
    layer (``spiking: false``) on the image is refused: only an ``add`` may read one, and an add needs a second
    input of the same shape."""
    if framed:
        return
    flattens = {ly["name"] for ly in spec.layers if ly["type"] == "flatten" and ly["inputs"] == ["input"]}
    for index, layer in enumerate(spec.layers):
        reads = (("input" in layer["inputs"] and layer["type"] not in ("conv", "flatten"))
                 or (bool(flattens & set(layer["inputs"]))
                     and not (layer["type"] == "output" or (layer["type"] == "linear" and layer["spiking"]))))
        if reads:
            raise TrainError.at(spec.source, f"layers[{spec.file_index.get(layer['name'], index)}] "
                                f"({layer['name']})", f"{'an' if layer['type'][0] in 'aeio' else 'a'} {layer['type']} "
                                "layer reads the image, and the trainer reads images "
                                "with a conv, or a spiking linear or an output layer after a flatten of the image",
                                "start the network with one of them, or build it as a statistical workload (satasim "
                                "workload build --network) or train it elsewhere and import it (NIR)")


def output_mode_notes(model: str, output_mode: str, overridden: bool) -> list[str]:
    """A note when a network file's output layer says another mode than the one trained (the method's, or
    ``--output``): the file is trained as the method's recipe says, and the note says how to keep the file's."""
    if not is_network_file(model):
        return []
    layer = network_file(model).layers[-1]
    if layer["output_mode"] == output_mode:
        return []
    how = "--output" if overridden else "the method's"
    return [f"the network file's output layer {layer['name']!r} is {layer['output_mode']!r}; it is trained as "
            f"{output_mode!r} ({how}; --output {layer['output_mode']} keeps the file's)"]


def model_label(model: str, width: float = 1.0, spec: NetworkSpec | None = None) -> str:
    """How provenance and checkpoints name the model: a built-in's name, or a network file's name with a digest of
    its layers at ``width`` (no directory: the same file gives the same label anywhere; an edited layer another).
    ``spec``: the file as already read (:func:`network_file`), so that the label is the file that was checked."""
    if not is_network_file(model):
        return model
    spec = spec if spec is not None else network_file(model)
    table = {"input_shape": spec.input_shape, "num_classes": spec.num_classes, "layers": spec.body(width)}
    digest = hashlib.sha256(json.dumps(table, sort_keys=True).encode()).hexdigest()[:16]
    return f"{Path(spec.source).name} sha256:{digest}"


@dataclass(frozen=True)
class Method:
    """A training recipe of the paper's Table 1: its loss, output layer and default exit policy."""

    name: str
    loss: str
    output_mode: str
    exit_policy: str


METHODS = {
    "snn": Method("snn", "ce", "accumulate", "fixed"),
    "dtsnn": Method("dtsnn", "dtsnn", "accumulate", "dtsnn"),
    "atsn": Method("atsn", "imp", "membrane", "atsn"),
}


def _conv(name: str, src: str, channels: int, kernel: int = 3, stride: int = 1, spiking: bool = True) -> dict:
    return {"name": name, "type": "conv", "inputs": [src], "out_channels": channels, "kernel": kernel,
            "stride": stride, "padding": kernel // 2, "spiking": spiking, "bn": True}


def _pool(name: str, src: str) -> dict:
    return {"name": name, "type": "maxpool", "inputs": [src], "kernel": 2, "stride": 2}


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _with_bn(layers: list[dict]) -> list[dict]:
    """Mark every conv and hidden linear layer of a shared layer table as followed by (tdBN) batch norm (a hidden
    linear layer without it starts nearly silent: its binary inputs give currents far below V_th)."""
    return [dict(layer, bn=True) if layer["type"] in ("conv", "linear") else layer for layer in layers]


def vgg_small(width: float = 1.0) -> list[dict]:
    """conv16 - pool - conv32 - pool - conv64 - pool - flatten - output: small enough for 2 CPU cores."""
    return [
        _conv("conv1", "input", _scaled(16, width)),
        _pool("pool1", "conv1"),
        _conv("conv2", "pool1", _scaled(32, width)),
        _pool("pool2", "conv2"),
        _conv("conv3", "pool2", _scaled(64, width)),
        _pool("pool3", "conv3"),
        {"name": "flatten", "type": "flatten", "inputs": ["pool3"]},
    ]


def vgg16(width: float = 1.0) -> list[dict]:
    """The CIFAR VGG16 of DESIGN section 8 (workload/networks.py): 13 3x3 convs, 5 spike max-pools."""
    return _with_bn(vgg16_body(width))


def resnet19(width: float = 1.0) -> list[dict]:
    """The tdBN ResNet19 of DESIGN section 8 (workload/networks.py): stem 128, blocks 3x128, 3x256, 2x512."""
    return _with_bn(resnet19_body(width, identity_gain=None))


BUILDERS = {"vgg_small": vgg_small, "vgg16": vgg16, "resnet19": resnet19}


def build_spec(model: str, input_shape: list[int], num_classes: int, output_mode: str,
               width: float = 1.0, framed: bool = False) -> list[dict]:
    """The model's full layer table with shapes, ending in its output layer, for direct images or (``framed``)
    spike frames; TrainError if it cannot fit."""
    if is_network_file(model):
        spec = network_file(model)
        check_input_readers(spec, framed)
        return _network_file_spec(spec, input_shape, num_classes, output_mode, width)
    if model not in BUILDERS:
        raise unknown_model(model)
    try:
        return _shaped_layers(model, input_shape, num_classes, output_mode, width)
    except ValueError as error:
        side = _smallest_square_side(model, input_shape[0], num_classes, output_mode, width)
        fix = (f"use images of at least {side} x {side} (an image folder is resized with --image-size {side})"
               if side else "use larger images")
        raise TrainError.at(None, "--model", f"{model} cannot take {list(input_shape)} inputs at {error}",
                            fix) from None


def _input_shape_fix(written: list[int], data: list[int]) -> str:
    """How to make a network file's input_shape and the data agree: --image-size resizes an image folder to a square
    of the same channels only, so it is offered where that would do (it was offered for a channel mismatch and for
    a rectangular network too, where it changed nothing; h3, session 47)."""
    fix = f"write input_shape: {data}"
    same_channels = len(written) == len(data) == 3 and written[0] == data[0]
    if same_channels and written[1] == written[2]:
        return fix + f", or resize an image folder to the file's size with --image-size {written[1]}"
    if same_channels:
        return fix + " (--image-size resizes an image folder to a square only)"
    if len(written) == len(data) == 3:
        return fix + " (the images' channels differ: an image folder keeps its colour mode)"
    return fix  # another number of dimensions (a flat [144] for [1, 12, 12] images): neither channels nor a resize



def _network_file_spec(spec: NetworkSpec, input_shape: list[int], num_classes: int, output_mode: str,
                       width: float) -> list[dict]:
    """A network file's layer table with shapes, for data of ``input_shape`` and ``num_classes``: the file must
    say the same (a mismatch is refused naming the file's field, not fitted silently)."""
    if list(spec.input_shape) != list(input_shape):
        raise TrainError.at(spec.source, "input_shape", f"is {list(spec.input_shape)} but the dataset's inputs are "
                            f"{list(input_shape)}", _input_shape_fix(list(spec.input_shape), list(input_shape)))
    if spec.num_classes is not None and spec.num_classes != num_classes:
        raise TrainError.at(spec.source, "num_classes", f"is {spec.num_classes} but the dataset has {num_classes} "
                            "classes", f"write num_classes: {num_classes} (and out_features: {num_classes} in the "
                            "output layer, where the file gives it)")  # "or leave it out" was refused in turn
    output = dict(spec.layers[-1], output_mode=output_mode)
    try:
        return _with_shapes(_with_bn(spec.body(width)) + [output], input_shape, num_classes)
    except ValueError as error:  # a width that shrinks a layer below what a later one needs
        raise TrainError.at(spec.source, "--width", f"{width} leaves the network unable to take "
                            f"{list(input_shape)} inputs at {error}", "use a larger --width") from None


def _shaped_layers(model: str, input_shape: list[int], num_classes: int, output_mode: str,
                   width: float) -> list[dict]:
    """The layer table with in/out shapes; ValueError naming the first layer the input does not fit."""
    layers = BUILDERS[model](width)
    last = layers[-1]["name"]
    layers.append({"name": "output", "type": "output", "inputs": [last], "output_mode": output_mode})
    return _with_shapes(layers, input_shape, num_classes)


def _with_shapes(layers: list[dict], input_shape: list[int], num_classes: int) -> list[dict]:
    """``layers`` with in/out shapes filled in; ValueError naming the first layer the input does not fit."""
    shapes = {"input": list(input_shape)}
    for layer in layers:
        ins = [shapes[s] for s in layer["inputs"]]
        try:
            out = infer_out_shape(layer, ins, num_classes)
        except ValueError as error:
            raise ValueError(f"layer {layer['name']} ({error})") from None
        if layer["type"] == "output":
            layer["out_features"] = num_classes
        layer["in_shape"], layer["out_shape"] = ins[0], out
        shapes[layer["name"]] = out
    return layers


def _smallest_square_side(model: str, channels: int, num_classes: int, output_mode: str, width: float,
                          largest: int = 512) -> int | None:
    """The smallest S for which the model takes [channels, S, S] inputs (None up to `largest`), for the error's fix."""
    for side in range(1, largest + 1):
        try:
            _shaped_layers(model, [channels, side, side], num_classes, output_mode, width)
        except ValueError:
            continue
        return side
    return None


def parameter_count(spec: list[dict]) -> int:
    """Number of weights (conv and linear/output, no BN) of a layer table."""
    total = 0
    for layer in spec:
        if layer["type"] == "conv":
            total += layer["out_channels"] * layer["in_shape"][0] * layer["kernel"] ** 2
        elif layer["type"] in ("linear", "output"):
            total += layer["out_shape"][0] * layer["in_shape"][0]
    return total
