"""Network layer tables of the trainer: vgg_small, vgg16 and resnet19 (DESIGN section 8), and the methods.

A model is a list of layer dicts in the workload's vocabulary (``satasim_atsn/workload/format.py``)
plus trainer-only keys (``bn``). Shapes are filled in by :func:`build_spec`, which also rejects
inputs a model cannot take.
"""

from __future__ import annotations

from dataclasses import dataclass

from satasim_atsn.errors import TrainError
from satasim_atsn.workload.format import infer_out_shape
from satasim_atsn.workload.networks import resnet19_body, vgg16_body

MODELS = ("vgg_small", "vgg16", "resnet19")
LOSSES = ("ce", "dtsnn", "imp")


def unknown_model(model: str) -> TrainError:
    """The one-line refusal of a ``--model`` the trainer does not build; a network file gets its own fix."""
    if model.lower().endswith((".yaml", ".yml")) or "/" in model or "\\" in model:
        return TrainError.at(None, "--model", f"{model!r} is a network file, and the trainer builds only its own "
                             f"models ({', '.join(MODELS)}; --width scales them)",
                             f"train one of those, or give the file to satasim workload build --network {model} "
                             "(a statistical workload), or train it elsewhere and bring it in with satasim "
                             "workload import (NIR; docs/networks.md)")
    return TrainError.at(None, "--model", f"unknown model {model!r}", f"use one of {', '.join(MODELS)}")


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
    """Mark every conv of a shared layer table as followed by (tdBN) batch norm."""
    return [dict(layer, bn=True) if layer["type"] == "conv" else layer for layer in layers]


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
               width: float = 1.0) -> list[dict]:
    """The model's full layer table with shapes, ending in its output layer; TrainError if it cannot fit."""
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


def _shaped_layers(model: str, input_shape: list[int], num_classes: int, output_mode: str,
                   width: float) -> list[dict]:
    """The layer table with in/out shapes; ValueError naming the first layer the input does not fit."""
    layers = BUILDERS[model](width)
    last = layers[-1]["name"]
    layers.append({"name": "output", "type": "output", "inputs": [last], "output_mode": output_mode})
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
