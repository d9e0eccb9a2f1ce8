"""Layer tables of the paper's networks (CIFAR variants, DESIGN.md section 8) and their costs.

The tables are ``meta["layers"]`` lists in the format of ``workload/format.py``:

- ``vgg16(num_classes)``: 13 convs 3x3 (stride 1, padding 1, BN folded, LIF) with spike
  max-pooling 2x2 after conv 2, 4, 7, 10 and 13 (32 -> 1), a flatten of 512 spikes, and the
  output layer 512 -> classes (it lives in the AT/DT unit). 14.7 M weights, 313 M MACs/timestep.
- ``resnet19(num_classes)``: stem conv 3 -> 128 + LIF; blocks [128] x 3, [256] x 3 (first with
  stride 2), [512] x 2 (first with stride 2). A block is conv-BN-LIF (``_a``), conv-BN without
  LIF (``_b``), a shortcut (identity spikes times ``shortcut_gain``, or where the shape changes a
  1x1 stride-2 conv-BN without LIF, ``_sc``) and an ``add`` join with its LIF. Then global
  sum-pooling (``avgpool``) and the output layer 512 -> classes. 12.6 M weights, 2.29 G MACs/timestep.

Parameter counts are weights only (biases are folded BN shifts, a few thousand more).
"""

from __future__ import annotations

import copy

import numpy as np

from satasim_atsn.errors import WorkloadError
from satasim_atsn.workload.format import infer_out_shape, is_spiking, weight_shape

CIFAR_INPUT_SHAPE = [3, 32, 32]
NETWORKS = ("vgg16", "resnet19")
DATASET_CLASSES = {"cifar10": 10, "cifar100": 100}
VGG16_CONFIG = (64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P")
RESNET19_STAGES = ((128, 3, 1), (256, 3, 2), (512, 2, 2))  # (channels, blocks, stride of the first block)
IDENTITY_SHORTCUT_GAIN = 1  # statistical tables only: the gain scales currents, never spike counts


def conv_layer(name: str, src: str, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1,
               spiking: bool = True) -> dict:
    """A conv layer dict of the workload format (shapes filled in later by ``with_shapes``)."""
    return {
        "name": name,
        "type": "conv",
        "inputs": [src],
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "out_channels": cout,
        "spiking": spiking,
    }


def _output(src: str, num_classes: int) -> dict:
    return {
        "name": "fc",
        "type": "output",
        "inputs": [src],
        "out_features": num_classes,
        "output_mode": "membrane",
        "logit_scale": 1.0,
    }


def with_shapes(layers: list[dict], input_shape: list[int], num_classes: int) -> list[dict]:
    """Fill ``in_shape``/``out_shape`` of every layer (a copy), as the format's validator expects."""
    layers = copy.deepcopy(layers)
    shapes = {"input": list(input_shape)}
    for layer in layers:
        in_shapes = [shapes[src] for src in layer["inputs"]]
        layer["in_shape"] = list(in_shapes[0])
        layer["out_shape"] = infer_out_shape(layer, in_shapes, num_classes)
        shapes[layer["name"]] = layer["out_shape"]
    return layers


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def vgg16_body(width: float = 1.0) -> list[dict]:
    """VGG16's layers up to the classifier (no shapes); ``width`` scales every channel count (tests)."""
    layers: list[dict] = []
    src, conv_index, pool_index = "input", 0, 0
    for item in VGG16_CONFIG:
        if item == "P":
            pool_index += 1
            name = f"pool{pool_index}"
            layers.append({"name": name, "type": "maxpool", "inputs": [src], "kernel": 2, "stride": 2})
        else:
            conv_index += 1
            name = f"conv{conv_index}"
            layers.append(conv_layer(name, src, _scaled(int(item), width)))
        src = name
    layers.append({"name": "flatten", "type": "flatten", "inputs": [src]})
    return layers


def resnet19_body(width: float = 1.0, identity_gain: int | None = IDENTITY_SHORTCUT_GAIN) -> list[dict]:
    """ResNet19's layers up to the classifier (no shapes): current-adding joins, global sum-pooling.

    ``identity_gain`` is stored on identity joins (None leaves it to the trainer's exporter).
    """
    layers: list[dict] = [conv_layer("conv1", "input", _scaled(128, width))]
    src, cin = "conv1", _scaled(128, width)
    for stage, (channels, blocks, first_stride) in enumerate(RESNET19_STAGES, start=1):
        channels = _scaled(channels, width)
        for block in range(1, blocks + 1):
            stride = first_stride if block == 1 else 1
            prefix = f"s{stage}b{block}"
            layers.append(conv_layer(f"{prefix}_a", src, channels, stride=stride))
            layers.append(conv_layer(f"{prefix}_b", f"{prefix}_a", channels, spiking=False))
            join = {"name": f"{prefix}_add", "type": "add"}
            if stride != 1 or cin != channels:
                layers.append(conv_layer(f"{prefix}_sc", src, channels, kernel=1, stride=stride, padding=0,
                                         spiking=False))
                join["inputs"] = [f"{prefix}_b", f"{prefix}_sc"]
            else:
                join["inputs"] = [f"{prefix}_b", src]
                if identity_gain is not None:
                    join["shortcut_gain"] = identity_gain
            layers.append(join)
            src, cin = f"{prefix}_add", channels
    layers.append({"name": "gap", "type": "avgpool", "inputs": [src]})
    return layers


def vgg16(num_classes: int) -> list[dict]:
    """The CIFAR VGG16 layer table with spike max-pooling and the output layer in the exit unit."""
    layers = vgg16_body()
    layers.append(_output("flatten", num_classes))
    return with_shapes(layers, CIFAR_INPUT_SHAPE, num_classes)


def resnet19(num_classes: int) -> list[dict]:
    """The tdBN-style CIFAR ResNet19 layer table (current-adding residual joins, global sum-pooling)."""
    layers = resnet19_body()
    layers.append(_output("gap", num_classes))
    return with_shapes(layers, CIFAR_INPUT_SHAPE, num_classes)


def network_layers(network: str, num_classes: int) -> list[dict]:
    """The layer table of a named network (``vgg16`` or ``resnet19``)."""
    if network == "vgg16":
        return vgg16(num_classes)
    if network == "resnet19":
        return resnet19(num_classes)
    raise WorkloadError.at(None, "network", f"unknown network {network!r}", f"use one of {', '.join(NETWORKS)}")


def layer_params(layer: dict) -> int:
    """Number of weights of a layer (0 for pooling, flatten and add)."""
    if layer["type"] in ("conv", "linear", "output"):
        return int(np.prod(weight_shape(layer)))
    return 0


def layer_macs(layer: dict) -> int:
    """Dense multiply-accumulates of a layer per timestep (weights x output positions)."""
    if layer["type"] == "conv":
        return layer_params(layer) * int(np.prod(layer["out_shape"][1:]))
    if layer["type"] in ("linear", "output"):
        return layer_params(layer)
    return 0


def layer_neurons(layer: dict) -> int:
    """Number of output values of a layer (LIF neurons for spiking layers)."""
    return int(np.prod(layer["out_shape"]))


def layer_costs(layers: list[dict]) -> list[dict]:
    """Per-layer params, MACs per timestep, neurons and spiking flag, in layer order."""
    return [
        {
            "name": layer["name"],
            "type": layer["type"],
            "in_shape": list(layer["in_shape"]),
            "out_shape": list(layer["out_shape"]),
            "params": layer_params(layer),
            "macs_per_timestep": layer_macs(layer),
            "neurons": layer_neurons(layer),
            "spiking": is_spiking(layer),
        }
        for layer in layers
    ]


def network_totals(layers: list[dict]) -> dict:
    """Total weights, MACs per timestep and LIF neurons of a layer table."""
    costs = layer_costs(layers)
    return {
        "params": sum(c["params"] for c in costs),
        "macs_per_timestep": sum(c["macs_per_timestep"] for c in costs),
        "lif_neurons": sum(c["neurons"] for c in costs if c["spiking"]),
    }
