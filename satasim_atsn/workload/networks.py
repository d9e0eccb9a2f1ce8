"""Layer tables of the paper's networks (CIFAR variants, DESIGN.md section 8) and their costs.

The tables are ``meta["layers"]`` lists in the format of ``workload/format.py``, loaded from the
network files ``satasim_atsn/data/networks/{vgg16,resnet19}.yaml`` (their one source; format in
docs/networks.md, parser in ``workload/network_file.py``):

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

import numpy as np

from satasim_atsn.errors import WorkloadError
from satasim_atsn.workload.network_file import NetworkSpec, load_network, shipped_network_path, with_identity_gain
from satasim_atsn.workload.schema import is_spiking, weight_shape

CIFAR_INPUT_SHAPE = [3, 32, 32]
NETWORKS = ("vgg16", "resnet19")
DATASET_CLASSES = {"cifar10": 10, "cifar100": 100}
IDENTITY_SHORTCUT_GAIN = 1  # statistical tables only: the gain scales currents, never spike counts


def conv_layer(name: str, src: str, cout: int, kernel: int = 3, stride: int = 1, padding: int = 1,
               spiking: bool = True) -> dict:
    """A conv layer dict of the workload format (its shapes are filled in when the workload is validated)."""
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


def _paper_network(name: str) -> NetworkSpec:
    """The shipped network file of a paper network (satasim_atsn/data/networks/<name>.yaml), parsed once."""
    if name not in _SPECS:
        _SPECS[name] = load_network(shipped_network_path(name))
    return _SPECS[name]


_SPECS: dict[str, NetworkSpec] = {}


def vgg16_body(width: float = 1.0) -> list[dict]:
    """VGG16's layers up to the classifier (no shapes); ``width`` scales every channel count (tests, trainer)."""
    return _paper_network("vgg16").body(width)


def resnet19_body(width: float = 1.0, identity_gain: int | None = IDENTITY_SHORTCUT_GAIN) -> list[dict]:
    """ResNet19's layers up to the classifier (no shapes): current-adding joins, global sum-pooling.

    ``identity_gain`` is stored on identity joins (None leaves it to the trainer's exporter).
    """
    return with_identity_gain(_paper_network("resnet19").body(width), identity_gain)


def vgg16(num_classes: int) -> list[dict]:
    """The CIFAR VGG16 layer table with spike max-pooling and the output layer in the exit unit."""
    return _paper_network("vgg16").build(num_classes)


def resnet19(num_classes: int) -> list[dict]:
    """The tdBN-style CIFAR ResNet19 layer table (current-adding residual joins, global sum-pooling)."""
    return _paper_network("resnet19").build(num_classes, identity_gain=IDENTITY_SHORTCUT_GAIN)


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
