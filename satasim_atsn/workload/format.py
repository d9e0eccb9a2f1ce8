"""The workload .npz contract (DESIGN.md section 4, version 1): read, write, validate.

A workload is everything the simulator needs about a network and its inputs and nothing
about the hardware. Trained/imported workloads carry integer weights and real inputs;
statistical workloads carry per-layer firing rates and exit-step histograms instead.

Layer dictionaries (``meta["layers"]``), in execution order:

========  ===================================================================================
type      fields besides ``name``, ``type``, ``inputs`` (list of layer names, or ``["input"]``),
          ``in_shape`` and ``out_shape`` (lists of ints, without the batch axis)
========  ===================================================================================
conv      ``kernel``, ``stride``, ``padding``, ``out_channels``, ``spiking`` (LIF after it, or a
          bare current feeding an ``add``); weights ``w/<name>`` int8 [Cout, Cin, k, k]
linear    ``out_features``, ``spiking``; weights int8 [out, in]
maxpool   ``kernel``, ``stride``: spike max-pooling (an OR of the window)
avgpool   global sum-pooling of spikes (integer counts per channel); feeds linear/output only
flatten   reshape to one axis
add       residual join: ``inputs`` = [main current, shortcut]; the shortcut is a current
          (a non-spiking conv) or spikes times ``shortcut_gain``; then a LIF
output    ``out_features`` = classes; ``output_mode`` ``membrane`` (ATSN eq. 8: decay, no
          reset) or ``accumulate`` (a plain layer summed over time, eq. 5); ``logit_scale``
========  ===================================================================================

Every spiking layer (spiking conv/linear, add) has ``b/<name>`` int32 [C] bias currents and
``vth/<name>`` int32 [C] thresholds (> 0); conv/linear/output have ``w/<name>``.
The first layer consuming ``input`` computes ``(W.x + b) >> input_shift`` for uint8 images.

Statistical workloads replace weights and inputs with ``rate/<layer>`` ([T] or [T, C]) for every
spiking layer, optionally ``rate/<maxpool>`` for a max-pool with kernel < 2 x stride (the pooled map
is then drawn at that rate, see ``traces/statistical.py``), ``exit_hist/<policy>`` for each exit
policy it is built for (at least one; a fixed-T network has only ``exit_hist/fixed``) and ``seed``;
a twin may add its fitted images' row profiles, ``input_row_bits`` and ``spike_rows/<layer>``
(docs/statistical.md, steps 3 and 4), and with them their exit steps, ``exit_steps/<policy>`` (step 2).
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from satasim_atsn import exactmath
from satasim_atsn.errors import WorkloadError, closest, did_you_mean, shown
from satasim_atsn.fileio import atomic_write_bytes
from satasim_atsn.workload.npz import (  # noqa: F401 (load_npz_arrays, zip_problem: this module's API)
    NpzRows,
    load_npz_arrays,
    read_npz,
    zip_problem,
    zip_problem_of,
)
from satasim_atsn.workload.pool_windows import has_window_cores, pool_rate_problem_of, windows_tile

FORMAT_NAME = "satasim-workload"
FORMAT_VERSION = 1
#: the integer thresholds the exporters (the trainer's and the NIR import) keep: at most VTH_MAX steps of a layer's
#: scale, so that 16-bit membranes keep headroom; the layer reading a static image, at most VTH_MAX_FIRST (it
#: climbs straight past its threshold, so finer threshold levels are worth more than headroom)
VTH_MAX = 1024
VTH_MAX_FIRST = 8192
LAYER_TYPES = ("conv", "linear", "maxpool", "avgpool", "add", "flatten", "output")
KINDS = ("trained", "imported", "statistical")
OUTPUT_MODES = ("membrane", "accumulate")
INPUT_ENCODINGS = ("direct", "spike_frames")
INPUT_ROW_BITS = "input_row_bits"  # a direct twin's per-image bit counts per plane, channel and row (statistical.md)
SPIKE_ROWS = "spike_rows"  # spike_rows/<layer>: a twin's per-image spike counts per timestep, channel and row
INPUT_FRAMES = "input"  # spike_rows/input: a spike-frame twin's per-image input events per timestep, channel and row
MAX_STATISTICAL_IMAGES = 10**9  # the images a statistical workload may stand for (meta.num_images)
EXIT_STEPS = "exit_steps"  # exit_steps/<policy>: a twin's fitted images' exit steps, paired with their row profiles
HIST_BITS = 32
HIST_SCALE = 1 << HIST_BITS  # exit histograms are stored as integers out of 2^32 (exact in float64)
WEIGHTED_TYPES = ("conv", "linear", "output")
INPUT_SHIFT_MAX = 63  # the first layer's current is int64: a right shift of 64 or more is undefined
EXIT_PARAMETERS = ("cl_init", "tau_cl", "theta")  # meta.exit_policy entries, each in (0, 1]
# every key a workload's meta may hold (docs/workload-format.md); free-form information goes in meta.provenance
META_KEYS = ("name", "kind", "dataset", "num_classes", "input_shape", "input_encoding", "input_width", "timesteps",
             "num_images", "input_bit_density", "neuron", "quant", "layers", "exit_policy", "provenance")
NEURON_KEYS = ("model", "tau", "decay_shifts", "v_th", "reset")
QUANT_KEYS = ("weight_bits", "vmem_bits", "output_vmem_bits", "input_shift", "input_mean", "input_std")
LAYER_COMMON_KEYS = ("name", "type", "inputs", "in_shape", "out_shape")
LAYER_FIELDS: dict[str, tuple[str, ...]] = {  # a layer's own keys, by type
    "conv": ("kernel", "stride", "padding", "out_channels", "spiking"),
    "linear": ("out_features", "spiking"),
    "maxpool": ("kernel", "stride"),
    "avgpool": (),
    "flatten": (),
    "add": ("shortcut_gain",),
    "output": ("out_features", "output_mode", "logit_scale"),
}
MISSING_FIX = "add it (docs/workload-format.md lists every key), or write the workload with this tool's writer"


def is_spiking(layer: dict) -> bool:
    """True when the layer ends in LIF neurons that emit spikes."""
    t = layer["type"]
    return t == "add" or (t in ("conv", "linear") and bool(layer.get("spiking", True)))


def emits_spikes(layer: dict) -> bool:
    """True when the layer's output is a binary spike map (LIF layers, max-pool, flatten of spikes)."""
    return is_spiking(layer) or layer["type"] in ("maxpool", "flatten")


@dataclass
class Workload:
    """An in-memory workload. ``arrays`` holds every npz entry except format/version/meta."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = "<memory>"
    #: set by validate(); the models validate a workload that was built in memory and not validated yet
    validated: bool = field(default=False, repr=False, compare=False)

    # --- convenient views -------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.meta["name"])

    @property
    def kind(self) -> str:
        return str(self.meta["kind"])

    @property
    def is_statistical(self) -> bool:
        return self.kind == "statistical"

    @property
    def layers(self) -> list[dict]:
        return self.meta["layers"]

    @property
    def timesteps(self) -> int:
        return int(self.meta["timesteps"])

    @property
    def num_classes(self) -> int:
        return int(self.meta["num_classes"])

    @property
    def has_output(self) -> bool:
        """True when the network ends in an output layer (else the last layer's spike counts are the output)."""
        return has_output_layer(self.layers)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(v) for v in self.meta["input_shape"])

    @property
    def input_encoding(self) -> str:
        return str(self.meta.get("input_encoding", "direct"))

    @property
    def num_images(self) -> int:
        """Images the workload holds: its inputs, or a statistical workload's ``meta.num_images``."""
        if self.is_statistical:
            return int(self.meta.get("num_images", 10000))
        return int(self.arrays["y"].shape[0]) if "y" in self.arrays else int(self.arrays["x"].shape[0])

    def layer(self, name: str) -> dict:
        """The layer record called ``name`` (KeyError if the network has none)."""
        for layer in self.layers:
            if layer["name"] == name:
                return layer
        raise KeyError(name)

    def weights(self, name: str) -> np.ndarray:
        """Layer ``name``'s int8 weights (``w/<name>``)."""
        return self.arrays[f"w/{name}"]

    def bias(self, name: str) -> np.ndarray:
        """Layer ``name``'s integer bias (``b/<name>``)."""
        return self.arrays[f"b/{name}"]

    def vth(self, name: str) -> np.ndarray:
        """Layer ``name``'s integer firing thresholds (``vth/<name>``)."""
        return self.arrays[f"vth/{name}"]

    def inputs(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Input images [n, C, H, W] uint8, or spike frames [n, T, C, H, W] uint8 0/1 (unpacked)."""
        x = self.arrays["x"][start:stop]
        if self.input_encoding == "spike_frames":
            width = int(self.meta["input_width"])
            if isinstance(self.arrays["x"], NpzRows) and width % 8:  # the rows read: a large x is not scanned whole
                _check_spare_bits(self.source, self.meta, x, range(len(self.arrays["x"]))[start:stop].start,
                                  -width % 8)
            x = np.unpackbits(x, axis=-1, count=width)
        return x

    def labels(self, start: int = 0, stop: int | None = None) -> np.ndarray | None:
        """The embedded inputs' labels ``y`` [start:stop] (all by default), or None for a workload without them."""
        y = self.arrays.get("y")
        return None if y is None else np.asarray(y[start:stop])

    @property
    def decay_shifts(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.meta["neuron"]["decay_shifts"])

    @property
    def vmem_bits(self) -> int:
        return int(self.meta["quant"]["vmem_bits"])

    @property
    def input_shift(self) -> int:
        return int(self.meta["quant"].get("input_shift", 0))


# ------------------------------------------------------------------------------------------
# shape inference shared by validation, builders and the trainer's exporter
# ------------------------------------------------------------------------------------------
def conv_out_hw(h: int, w: int, kernel: int, stride: int, padding: int) -> tuple[int, int]:
    """Output height and width of a convolution or pooling window."""
    return (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1


def infer_out_shape(layer: dict, in_shapes: list[list[int]], num_classes: int) -> list[int]:
    """The output shape a layer must have given its input shapes (raises ValueError)."""
    t = layer["type"]
    shape = list(in_shapes[0])
    if t == "conv":
        if len(shape) != 3:
            raise ValueError(f"conv needs a [C, H, W] input, got {shape}")
        h, w = conv_out_hw(shape[1], shape[2], int(layer["kernel"]), int(layer["stride"]), int(layer["padding"]))
        if h <= 0 or w <= 0:
            raise ValueError(f"kernel {layer['kernel']} does not fit input {shape}")
        return [int(layer["out_channels"]), h, w]
    if t == "maxpool":
        if len(shape) != 3:
            raise ValueError(f"maxpool needs a [C, H, W] input, got {shape}")
        h, w = conv_out_hw(shape[1], shape[2], int(layer["kernel"]), int(layer["stride"]), 0)
        if h <= 0 or w <= 0:
            raise ValueError(f"window {layer['kernel']} does not fit input {shape}")
        return [shape[0], h, w]
    if t == "avgpool":
        if len(shape) != 3:
            raise ValueError(f"avgpool needs a [C, H, W] input, got {shape}")
        return [shape[0]]
    if t == "flatten":
        return [math.prod(int(n) for n in shape)]  # Python ints: no int64 wrap on absurd shapes
    if t == "linear":
        if len(shape) != 1:
            raise ValueError(f"linear needs a flat input, got {shape}; add a flatten or avgpool layer")
        return [int(layer["out_features"])]
    if t == "output":
        if len(shape) != 1:
            raise ValueError(f"output needs a flat input, got {shape}; add a flatten or avgpool layer")
        if "out_features" in layer and layer["out_features"] != num_classes:
            raise ValueError(f"out_features {layer['out_features']!r} is not meta.num_classes {num_classes}: the "
                             "output layer's neurons are the classes")
        return [num_classes]
    if t == "add":
        if len(in_shapes) != 2 or list(in_shapes[0]) != list(in_shapes[1]):
            raise ValueError(f"add needs two inputs of equal shape, got {in_shapes}")
        return shape
    raise ValueError(f"unknown layer type {t!r}")


def weight_shape(layer: dict) -> tuple[int, ...]:
    """Shape of ``w/<layer>`` for weighted layers."""
    if layer["type"] == "conv":
        k = int(layer["kernel"])
        return (int(layer["out_channels"]), int(layer["in_shape"][0]), k, k)
    return (int(layer["out_shape"][0]), int(layer["in_shape"][0]))


# ------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------
def _fail(where: str, key: str, problem: str, fix: str) -> WorkloadError:
    return WorkloadError.at(where, key, problem, fix)


#: what each required meta key holds, for the fix of a missing one (an installed package has no docs/)
_META_EXAMPLES = {"name": '"name": "my_net"', "kind": f'"kind": one of {", ".join(map(repr, KINDS))}',
                  "num_classes": '"num_classes": 10', "timesteps": '"timesteps": 4',
                  "input_shape": '"input_shape": [3, 32, 32] (C, H, W)'}


def _require(meta: dict, key: str, types: type | tuple, where: str) -> Any:
    if key not in meta:
        example = _META_EXAMPLES.get(key)
        fix = f"add it, e.g. {example}, or write the workload with this tool's writer" if example else MISSING_FIX
        raise _fail(where, f"meta.{key}", "missing", fix)
    value = meta[key]
    if not isinstance(value, types) or (isinstance(value, bool) and types is int):
        want = {str: "text", int: "an integer", list: "a list", dict: "a JSON object"}.get(types, str(types))
        raise _fail(where, f"meta.{key}", f"has type {type(value).__name__}, not {want}: {shown(value)}",
                    f"write it as {want} (docs/workload-format.md, 'meta')")
    return value


def validate_layers(meta: dict, where: str = "<workload>") -> None:
    """Check the layer graph: names, types, inputs, shapes. Raises WorkloadError."""
    layers = meta.get("layers")
    if not isinstance(layers, list) or not layers:  # a mapping or text is not 'missing'
        problem = "missing or empty" if not layers else f"must be a list of layers, got {shown(layers)}"
        raise _fail(where, "meta.layers", problem, "a workload needs a list of at least one layer, in execution order")
    num_classes = int(meta["num_classes"])
    shapes: dict[str, list[int]] = {"input": list(meta["input_shape"])}
    seen_spiking: dict[str, bool] = {"input": True}
    for index, layer in enumerate(layers):
        key, inputs = _check_layer_fields(where, index, layer, shapes)
        name = layer["name"]
        in_shapes = [shapes[src] for src in inputs]
        for shape_key in ("in_shape", "out_shape"):
            if shape_key in layer:
                _check_shape_field(where, f"{key}.{shape_key}", layer[shape_key])
        if list(layer.get("in_shape", in_shapes[0])) != list(in_shapes[0]):
            raise _fail(
                where,
                f"{key}.in_shape",
                f"is {layer.get('in_shape')} but its input gives {in_shapes[0]}",
                "the input shape does not match the previous layer; fix the layer table",
            )
        try:
            out_shape = infer_out_shape(layer, in_shapes, num_classes)
        except ValueError as error:
            raise _fail(where, key, str(error), "fix the layer table") from None
        check_layer_size(where, key, layer, in_shapes[0], out_shape)
        if "out_shape" in layer and list(layer["out_shape"]) != out_shape:
            raise _fail(
                where, f"{key}.out_shape", f"is {layer['out_shape']} but should be {out_shape}", "fix the layer table"
            )
        layer.setdefault("in_shape", list(in_shapes[0]))
        layer.setdefault("out_shape", out_shape)
        _check_layer_role(where, key, index == len(layers) - 1, layer, inputs, seen_spiking)
        shapes[name] = out_shape
        seen_spiking[name] = layer["type"] != "conv" and layer["type"] != "linear" or is_spiking(layer)
    _check_last_layer(where, layers, num_classes)
    _check_current_fanout(where, layers, seen_spiking)
    if not any(ly["type"] in WEIGHTED_TYPES for ly in layers):
        raise _fail(where, "meta.layers", "no conv, linear or output layer: the network computes nothing",
                    "give it at least one weighted layer")
    _check_direct_input(where, meta, layers)


MAX_LAYER_NEURONS = 2**28  # 268 M outputs per layer (an ImageNet VGG16 layer has 3.2 M per image)
MAX_LAYER_WEIGHTS = 2**31  # 2 GiB of int8 weights per layer (VGG16's largest, fc6, has 103 M)


SIZE_FIXES = {"conv": "check its out_channels, kernel, stride and padding", "linear": "check its out_features",
             "output": "check num_classes", "maxpool": "check its kernel and stride"}


def check_layer_size(where: str, key: str, layer: dict, in_shape: list[int], out_shape: list[int]) -> None:
    """Refuse a layer beyond what one process can map and simulate, before any array of it is made (a 1e9-channel
    or 100,000-padding layer made the mapping run for hours, and np.prod of its shape wrapped around int64)."""
    neurons = math.prod(int(n) for n in out_shape)
    if neurons > MAX_LAYER_NEURONS:
        raise _fail(where, key, f"has {neurons:,} outputs {out_shape}, more than the {MAX_LAYER_NEURONS:,} this "
                    "simulator maps per layer", SIZE_FIXES.get(layer["type"], "make its input smaller"))
    if layer["type"] in ("conv", "linear", "output"):
        fan_in = int(in_shape[0]) * (int(layer["kernel"]) ** 2 if layer["type"] == "conv" else 1)
        weights = fan_in * int(out_shape[0])
        if weights > MAX_LAYER_WEIGHTS:
            raise _fail(where, key, f"has {weights:,} weights, more than the {MAX_LAYER_WEIGHTS:,} this simulator "
                        "holds per layer", "use fewer channels or features")


def _check_shape_field(where: str, key: str, value: Any) -> None:
    """A stored layer shape is a list of positive integers (a number, null or text is refused)."""
    if not isinstance(value, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value
    ):
        raise _fail(where, key, f"is {value!r}, not a list of positive integers",
                    "write the shape as a list such as [64, 32, 32], or drop the field to infer it")


def _check_current_fanout(where: str, layers: list[dict], seen_spiking: dict[str, bool]) -> None:
    """A current (a non-spiking conv or linear) flows into exactly one add, whose neurons it charges; read by two
    it would be two currents of one computation, which neither the forward nor the mapping models."""
    readers: dict[str, list[int]] = {}
    for index, layer in enumerate(layers):
        for src in layer["inputs"]:
            readers.setdefault(src, []).append(index)
    for index, layer in enumerate(layers):
        used = readers.get(layer["name"], [])
        if not seen_spiking.get(layer["name"], True) and len(used) > 1:
            raise _fail(where, f"meta.layers[{index}] ({layer['name']})", f"is a current read by {len(used)} layers "
                        f"({', '.join(layers[i]['name'] for i in used)})", "give each add its own non-spiking conv")


DIRECT_READERS = ("conv", "linear", "output")


def _check_direct_input(where: str, meta: dict, layers: list[dict]) -> None:
    """Direct-encoded images (uint8 pixels) are read once, bit-serially, by the first weighted layer.

    It is the first layer, or comes right after a flatten of the image (an MLP on [C, H, W] images);
    no other layer may read the pixels (the forward and hw/mapping.py model exactly these two cases).
    """
    if meta.get("input_encoding", "direct") != "direct":  # absent means direct (docs/workload-format.md)
        return
    readers = [i for i, layer in enumerate(layers) if "input" in layer["inputs"]]
    through_flatten = layers[0]["type"] == "flatten" and readers == [0]
    if through_flatten:  # who reads the flattened image
        readers += [i for i, layer in enumerate(layers) if layers[0]["name"] in layer["inputs"]]
    allowed = [0, 1] if through_flatten else [0]
    bad = [i for i in readers if not ((i == allowed[-1] and layers[i]["type"] in DIRECT_READERS)
                                      or (through_flatten and i == 0))]
    if not bad and readers != allowed:
        bad = readers[-1:]  # a flatten of the image that no weighted layer reads
    if bad:
        layer = layers[bad[0]]
        raise _fail(
            where,
            f"meta.layers[{bad[0]}].inputs",
            f"{layer['type']} layer {layer['name']!r} reads the direct-encoded image; with input_encoding "
            "'direct' the pixels go (once, bit-serially) to the first weighted layer only, first in the "
            "list or right after one flatten of the image",
            "put a conv first (or a flatten then a linear), or encode the inputs as spike frames",
        )


def has_output_layer(layers: list[dict]) -> bool:
    """True when the network ends in an output layer; else its last layer's spike counts are the output."""
    return layers[-1]["type"] == "output"


def output_neurons(layers: list[dict]) -> int:
    """Neurons whose values are the network's output: the classes of the output layer, or the last layer's spikes."""
    return int(np.prod(layers[-1]["out_shape"]))


def _check_last_layer(where: str, layers: list[dict], num_classes: int) -> None:
    """The last layer is the output layer, or a layer that emits spikes with exactly num_classes neurons."""
    last = layers[-1]
    if last["type"] == "output":
        return
    key = f"meta.layers[{len(layers) - 1}] ({last['name']})"
    if not emits_spikes(last):
        raise _fail(where, key, f"a network must end in an output layer or a spiking layer, not a "
                    f"{'non-spiking ' if last['type'] in ('conv', 'linear') else ''}{last['type']}",
                    "end the network with its classifier (type output) or a spiking layer")
    if output_neurons(layers) != num_classes:
        raise _fail(where, "meta.num_classes", f"is {num_classes} but the network ends in the spiking layer "
                    f"{last['name']!r} of {output_neurons(layers)} neurons (its spike counts are the output)",
                    f"set num_classes to {output_neurons(layers)} or end the network with an output layer")


def _check_layer_fields(where: str, index: int, layer: Any, shapes: dict[str, list[int]]) -> tuple[str, list]:
    """One layer entry's name, type, inputs (earlier layers) and integer fields; returns its key and inputs."""
    key = f"meta.layers[{index}]"
    if not isinstance(layer, dict):
        raise _fail(where, key, f"must be a JSON object, got {shown(layer)}",
                    'write each layer as {"name": ..., "type": ..., "inputs": [...]} (docs/workload-format.md)')
    if "name" not in layer or "type" not in layer:
        missing = " and ".join(repr(k) for k in ("name", "type") if k not in layer)
        raise _fail(where, key, f"{missing} is missing (every layer has a name and a type)",
                    "give every layer both (docs/workload-format.md, 'layers')")
    name = layer["name"]
    key = f"meta.layers[{index}] ({name})"
    if not isinstance(name, str) or not name or "/" in name or name == "input":
        raise _fail(where, key, "bad layer name", "use a non-empty name without '/' other than 'input'")
    if name in shapes:
        raise _fail(where, key, "duplicate layer name", "give every layer a unique name")
    if layer["type"] not in LAYER_TYPES:
        raise _fail(where, key + ".type", f"unknown type {layer['type']!r}", f"use one of {', '.join(LAYER_TYPES)}")
    allowed = LAYER_COMMON_KEYS + LAYER_FIELDS[layer["type"]]
    for field_name in layer:
        if field_name not in allowed:  # an unsupported feature (dilation, groups, ...) must not be ignored
            raise _fail(where, f"{key}.{_key_text(field_name)}", f"unknown key for {layer['type']} layers",
                        did_you_mean(field_name, allowed))
    inputs = layer.get("inputs")
    if not isinstance(inputs, list) or not inputs:  # a name given as text ("inputs": "fc1") is not missing
        problem = "missing" if inputs is None else f"must be a non-empty list of layer names, got {shown(inputs)}"
        raise _fail(where, key + ".inputs", problem, "list the names of the layers feeding this one, e.g. "
                    "[\"input\"] (two, [main, shortcut], for an add)")
    for src in inputs:
        if not isinstance(src, str):  # a list or object here made an unhashable-type traceback
            raise _fail(where, key + ".inputs", f"must list layer names (text), got {shown(src)}",
                        "name the earlier layers feeding this one, or \"input\"")
        if src not in shapes:
            raise _fail(
                where, key + ".inputs", f"unknown or later layer {src!r}", "inputs must name earlier layers"
            )
    if layer["type"] != "add" and len(inputs) != 1:
        raise _fail(where, key + ".inputs", "only add layers take two inputs", "give one input")
    for ikey in ("kernel", "stride", "out_channels", "out_features"):  # int32: a stride of 2^70 overflowed numba
        if ikey in layer and not (_is_int(layer[ikey]) and 0 < layer[ikey] <= LAYER_INT_MAX):
            raise _fail(where, f"{key}.{ikey}", f"must be a positive integer below 2^31, got {shown(layer[ikey])}",
                        "fix the value")
    if "padding" in layer and not (_is_int(layer["padding"]) and 0 <= layer["padding"] <= LAYER_INT_MAX):
        raise _fail(where, f"{key}.padding", f"must be a non-negative integer below 2^31, got "
                    f"{shown(layer['padding'])}", "fix the value")
    if "spiking" in layer and not isinstance(layer["spiking"], bool):  # "false" (text) was read as true
        raise _fail(where, f"{key}.spiking", f"must be true or false, got {shown(layer['spiking'])}",
                    "write a JSON boolean (true: LIF neurons; false: a current read by an add)")
    for needed in {
        "conv": ("kernel", "stride", "padding", "out_channels"),
        "maxpool": ("kernel", "stride"),
        "linear": ("out_features",),
        "output": ("output_mode", "logit_scale"),
    }.get(layer["type"], ()):
        if needed not in layer:
            raise _fail(where, f"{key}.{needed}", "missing", f"{layer['type']} layers need {needed}")
    return key, inputs


LAYER_INT_MAX = 2**31 - 1  # a layer's kernel, stride, padding and widths are int32 in the mapping's kernels
SHORTCUT_GAIN_MAX = 2**31 - 1  # the join's gain register is int32, as its bias and threshold (a larger one overflowed)
#: the largest logit_scale whose 64-bit membranes still have finite float64 logits
_LOGIT_SCALE_MAX = float(np.nextafter(np.finfo(np.float64).max / 2.0**64, 0))


def _check_layer_role(where: str, key: str, last: bool, layer: dict, inputs: list, seen_spiking: dict) -> None:
    """The output layer's fields and place; an add joins a current and a shortcut; currents feed only adds."""
    if layer["type"] == "output":
        if layer["output_mode"] not in OUTPUT_MODES:
            raise _fail(where, f"{key}.output_mode", f"unknown {layer['output_mode']!r}", f"use {OUTPUT_MODES}")
        if not (_is_finite_number(layer["logit_scale"]) and layer["logit_scale"] > 0):
            raise _fail(where, f"{key}.logit_scale", f"must be a positive finite number, got "
                        f"{shown(layer['logit_scale'])}", "fix the value")
        if not np.isfinite(float(layer["logit_scale"]) * 2.0**64):  # a 64-bit membrane's logit overflows float64
            raise _fail(where, f"{key}.logit_scale", f"{layer['logit_scale']:g} makes the logits of wide membranes "
                        "overflow a float64", f"give the logit of one membrane unit, at most {_LOGIT_SCALE_MAX:.3g}")
        if not last:
            raise _fail(where, key, "the output layer must be last", "move it to the end")
    if layer["type"] == "add":
        main_src, short_src = inputs
        if seen_spiking.get(main_src, True):
            raise _fail(
                where,
                f"{key}.inputs",
                f"the first input {main_src!r} must be a current (non-spiking conv)",
                "set spiking: false on the conv feeding the join",
            )
        if short_src == "input":
            raise _fail(where, f"{key}.inputs", "the shortcut is the network's input: the hardware routes a "
                        "shortcut from a layer's output spikes, and the input has no layer",
                        "let a layer (e.g. a 1x1 conv) read the input and take the shortcut from it")
        gain = layer.get("shortcut_gain")
        if seen_spiking.get(short_src, True) and not (_is_int(gain) and 0 < gain <= SHORTCUT_GAIN_MAX):
            raise _fail(
                where,
                f"{key}.shortcut_gain",
                f"a spike shortcut needs a positive integer gain, got {shown(gain)} (at most 2^31 - 1: an int32 "
                "register, as b/ and vth/)",
                "store the quantised identity gain (an integer: a fraction would be cut)",
            )
        if not seen_spiking.get(short_src, True) and layer.get("shortcut_gain") is not None:
            raise _fail(where, f"{key}.shortcut_gain", f"scales a spike shortcut, but {short_src!r} is a current "
                        "(a non-spiking conv, whose weights carry its scale)", "drop shortcut_gain")
    if layer["type"] in ("maxpool", "avgpool", "flatten", "linear", "conv", "output"):
        src = inputs[0]
        if not seen_spiking.get(src, True):
            raise _fail(
                where, f"{key}.inputs", f"{src!r} emits a current, not spikes", "only add layers take currents"
            )


def _check_containers(where: str, meta: object, arrays: object) -> None:
    """A workload built in memory holds a dict ``meta`` and numpy arrays (a script's Python lists failed with
    "'list' object has no attribute 'dtype'", a None meta with a TypeError)."""
    for name, value in (("meta", meta), ("arrays", arrays)):
        if not isinstance(value, dict):
            raise _fail(where, name, f"is a {type(value).__name__}, not a dict",
                        "pass a dict (docs/workload-format.md)")
    for key, value in arrays.items():
        if not isinstance(value, (np.ndarray, NpzRows)):
            raise _fail(where, str(key), f"is a {type(value).__name__}, not a numpy array",
                        "pass np.asarray(value, dtype=...) with the dtype docs/workload-format.md gives the key")


def validate(workload: Workload) -> Workload:
    """Validate a workload in place (format, shapes, dtypes, ranges, layer graph)."""
    where, meta, arrays = workload.source, workload.meta, workload.arrays
    _check_containers(where, meta, arrays)
    for key, types in (
        ("name", str),
        ("kind", str),
        ("num_classes", int),
        ("timesteps", int),
        ("input_shape", list),
        ("neuron", dict),
        ("quant", dict),
    ):
        _require(meta, key, types, where)
    _check_known_keys(where, "meta", meta, META_KEYS, "; free-form information goes in meta.provenance",
                      typos_only=True)
    if not isinstance(meta.get("provenance", {}), dict):  # read as an object by info, evaluate and the twins
        raise _fail(where, "meta.provenance", f"must be a JSON object, got {shown(meta['provenance'])}",
                    'put the notes under names, e.g. {"note": "..."}, or drop it')
    if not isinstance(meta.get("dataset", ""), (str, type(None))):
        raise _fail(where, "meta.dataset", f"must be text (the dataset's name), got {shown(meta['dataset'])}",
                    "give its name, e.g. \"cifar10\", or drop it")
    _check_known_keys(where, "meta.neuron", meta["neuron"], NEURON_KEYS)
    _check_known_keys(where, "meta.quant", meta["quant"], QUANT_KEYS, typos_only=True)
    if meta["kind"] not in KINDS:
        raise _fail(where, "meta.kind", f"unknown kind {meta['kind']!r}", f"use one of {', '.join(KINDS)}")
    name = meta["name"]  # it heads reports and summaries: one line of visible text, as an architecture's name
    if not name.strip() or any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in name):
        raise _fail(where, "meta.name", f"must be one line of visible text, got {shown(name)}",
                    "give the network a name without line breaks or control characters")
    if meta["num_classes"] < 2:
        raise _fail(where, "meta.num_classes", "must be at least 2", "fix the value")
    if not 1 <= meta["timesteps"] <= 1024:
        raise _fail(where, "meta.timesteps", "must be between 1 and 1024", "fix the value")
    if meta.get("input_encoding", "direct") not in INPUT_ENCODINGS:
        raise _fail(where, "meta.input_encoding", "unknown encoding", f"use one of {INPUT_ENCODINGS}")
    _check_input_shape(where, meta)
    shifts = meta["neuron"].get("decay_shifts")
    if not isinstance(shifts, list) or not shifts or not all(_is_int(s) and 0 <= s < 32 for s in shifts):  # not true
        raise _fail(
            where,
            "meta.neuron.decay_shifts",
            "must be a non-empty list of shifts in 0..31",
            "tau = 0.5 is [1]; tau = 0.75 is [1, 2]",
        )
    _validate_neuron(where, meta["neuron"], shifts)
    vmem_bits = _validate_quant(where, meta["quant"])
    _validate_exit_defaults(where, meta)
    validate_layers(meta, where)
    statistical = meta["kind"] == "statistical"
    for layer in meta["layers"]:
        _validate_layer_arrays(where, meta, arrays, layer, statistical, vmem_bits)
    _check_no_stray_arrays(where, meta, arrays, statistical)
    if statistical:
        _validate_statistical(where, meta, arrays)
    else:
        _validate_inputs(workload)
    workload.validated = True
    return workload


def _check_input_shape(where: str, meta: dict) -> None:
    """``meta.input_shape``: positive integers (a 0 stopped a flatten-first network in ZeroDivisionError); a
    trained or imported workload's direct images are [C, H, W] (x is [N, C, H, W])."""
    shape = meta["input_shape"]
    if not shape or not all(_is_int(n) and n > 0 for n in shape):
        raise _fail(where, "meta.input_shape", f"must be a list of positive integers, got {shown(shape)}",
                    "give [C, H, W] without the batch axis (a flat input of F features is [F, 1, 1])")
    direct = meta.get("input_encoding", "direct") == "direct"
    if direct and meta["kind"] != "statistical" and len(shape) != 3:
        raise _fail(where, "meta.input_shape", f"is {shape}, but direct images are [C, H, W] (x is [N, C, H, W])",
                    "store a flat input of F features as [F, 1, 1] (x of shape [N, F, 1, 1])" if len(shape) == 1
                    else "give [C, H, W] without the batch axis")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite_number(value: object) -> bool:
    """A JSON number (not a boolean) that is finite as a float64 (an integer beyond 1e308 is not)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _key_text(name: object) -> str:
    """A key as the error names it: plain when it is a printable string, else its bounded repr."""
    return name if isinstance(name, str) and name.isprintable() and len(name) <= 60 else shown(name)


def _check_known_keys(where: str, key: str, mapping: dict, allowed: tuple[str, ...], more: str = "",
                      typos_only: bool = False) -> None:
    """Refuse a key the format does not define: a typo or an unsupported option must not be ignored. With
    ``typos_only`` (sections where other tools keep extra information, e.g. their quantisation scales) only a key
    close to a defined one is refused; the others are kept, unread."""
    for name in mapping:
        if name in allowed:
            continue
        if typos_only and closest(name, allowed, cutoff=0.88) is None:
            continue
        raise _fail(where, f"{key}.{_key_text(name)}", "unknown key", did_you_mean(name, allowed) + more)


def _validate_neuron(where: str, neuron: dict, shifts: list[int]) -> None:
    """``meta.neuron``: the LIF model with reset to zero; ``tau``, when given, must be the shifts' decay."""
    for key, only in (("model", "lif"), ("reset", "zero")):
        if key in neuron and neuron[key] != only:
            raise _fail(where, f"meta.neuron.{key}", f"{shown(neuron[key])} is not supported",
                        f"the simulator models {key} {only!r} only")
    decay = sum(2.0 ** -s for s in shifts)  # exact: a sum of a few powers of two
    tau = neuron.get("tau")
    if tau is None:
        return
    if not isinstance(tau, (int, float)) or isinstance(tau, bool) or tau != decay:
        raise _fail(where, "meta.neuron.tau", f"{shown(tau)} is not the decay of decay_shifts {shifts} "
                    f"({decay:g}; the shifts decide it)", f"set tau to {decay:g} (or leave it out), or fix the shifts")


def _check_no_stray_arrays(where: str, meta: dict, arrays: dict, statistical: bool) -> None:
    """Every array belongs to a layer of the table (or to the inputs): a misnamed one must not be ignored."""
    layers = {layer["name"]: layer for layer in meta["layers"]}
    for key in arrays:
        prefix, _, name = key.partition("/")
        layer = layers.get(name)
        if prefix == SPIKE_ROWS and not statistical:
            raise _fail(where, key, f"is a row profile of a statistical twin, but meta.kind is {meta['kind']!r} (its "
                        "spikes come from its weights and inputs)", "remove it (satasim workload stats writes row "
                        "profiles into the twin it fits)")
        if prefix == EXIT_STEPS and not statistical:
            raise _fail(where, key, f"is a statistical twin's exit steps, but meta.kind is {meta['kind']!r} (its exits "
                        "come from its own output layer)", "remove it (satasim workload stats writes exit steps into "
                        "the twin it fits)")
        if statistical:
            frames = meta.get("input_encoding", "direct") == "spike_frames"
            known = (key == "seed" or prefix == "exit_hist" and name or key == INPUT_ROW_BITS and not frames
                     or prefix == SPIKE_ROWS and name  # checked in _check_spike_rows, which names the fix
                     or prefix == EXIT_STEPS and name  # checked in _check_exit_steps
                     or prefix == "rate" and (name == "input" and frames or layer is not None and (
                         is_spiking(layer) or layer["type"] == "maxpool")))
        else:
            known = (key in ("x", "y") or layer is not None and (
                prefix == "w" and layer["type"] in WEIGHTED_TYPES
                or prefix == "b" and layer["type"] in WEIGHTED_TYPES + ("add",)
                or prefix == "vth" and is_spiking(layer)))
        if not known:
            what = "statistical" if statistical else meta["kind"]
            raise _fail(where, key, f"is not an array of this {what} workload's layer table",
                        "rename it after its layer (w/, b/, vth/ of a weighted or spiking layer; rate/, exit_hist/, "
                        "seed for statistical workloads), or remove it")


def _validate_quant(where: str, quant: dict) -> int:
    """``meta.quant``: membrane widths, weight width and the first layer's input shift; returns vmem_bits."""
    vmem_bits = quant.get("vmem_bits")
    if not _is_int(vmem_bits) or not 8 <= vmem_bits <= 32:
        raise _fail(where, "meta.quant.vmem_bits", f"must be an integer in 8..32, got {shown(vmem_bits)}",
                    "give the membranes' width in bits (the trainer writes 16)")
    out_bits = quant.get("output_vmem_bits", 32)
    if not _is_int(out_bits) or not 8 <= out_bits <= 64:  # the forward saturates int64 output membranes
        raise _fail(where, "meta.quant.output_vmem_bits", f"must be an integer in 8..64, got {shown(out_bits)}",
                    "give the output membranes' width in bits, or leave it out for 32")
    weight_bits = quant.get("weight_bits", 8)
    if weight_bits != 8:
        raise _fail(where, "meta.quant.weight_bits", "only 8-bit weights are supported", "quantise to int8")
    shift = quant.get("input_shift", 0)
    if not _is_int(shift) or not 0 <= shift <= INPUT_SHIFT_MAX:
        raise _fail(where, "meta.quant.input_shift", f"must be an integer in 0..{INPUT_SHIFT_MAX} (a right shift of "
                    f"the first layer's int64 current), got {shown(shift)}", "re-export the workload")
    return vmem_bits


#: the exit policies a workload's ``meta.exit_policy.default`` may name (the methods' policies, train/models.py)
POLICY_NAMES = ("fixed", "dtsnn", "atsn")


def _validate_exit_defaults(where: str, meta: dict) -> None:
    """``meta.exit_policy`` (the exit rules' defaults) and a statistical workload's ``meta.num_images``."""
    defaults = meta.get("exit_policy", {})
    if defaults is None:
        defaults = {}
    if not isinstance(defaults, dict):
        raise _fail(where, "meta.exit_policy", f"must be a mapping, got {shown(defaults)}",
                    "e.g. {cl_init: 0.999, tau_cl: 0.999, theta: 0.1}")
    _check_known_keys(where, "meta.exit_policy", defaults, EXIT_PARAMETERS + ("default",))
    if not isinstance(defaults.get("default", "atsn"), str) or defaults.get("default", "atsn") not in POLICY_NAMES:
        raise _fail(where, "meta.exit_policy.default", f"must be a policy name, got {shown(defaults['default'])}",
                    did_you_mean(str(defaults["default"]), POLICY_NAMES))
    for key in EXIT_PARAMETERS:  # the ranges AtsnPolicy and DtsnnPolicy accept (snn/exit_policies.py)
        value = defaults.get(key)
        if value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not 0 < value <= 1:
            raise _fail(where, f"meta.exit_policy.{key}", f"must be a number in (0, 1], got {shown(value)}",
                        "the defaults are cl_init = tau_cl = 0.999, theta = 0.1")
    if meta["kind"] == "statistical":
        num = meta.get("num_images", 10000)
        if not _is_int(num) or not 1 <= num <= MAX_STATISTICAL_IMAGES:
            raise _fail(where, "meta.num_images", f"must be an integer in 1..10^9, got {shown(num)}",
                        "give the images the file stands for (10000 if left out)")


def _validate_layer_arrays(where: str, meta: dict, arrays: dict, layer: dict, statistical: bool,
                           vmem_bits: int) -> None:
    """One layer's arrays: weights, biases and thresholds (trained), or its rates (statistical)."""
    vmax = 2 ** (vmem_bits - 1) - 1
    name, ltype = layer["name"], layer["type"]
    channels = int(layer["out_shape"][0])
    if not statistical and ltype in WEIGHTED_TYPES:
        _array(arrays, f"w/{name}", where, np.int8, weight_shape(layer))
    has_bias = ltype != "add" or f"b/{name}" in arrays
    needs_bias = (is_spiking(layer) or ltype == "output") and has_bias
    if not statistical and (needs_bias or f"b/{name}" in arrays):  # optional biases are checked too
        _array(arrays, f"b/{name}", where, np.int32, (channels,))
    if not statistical and is_spiking(layer):
        vth = _array(arrays, f"vth/{name}", where, np.int32, (channels,))
        if (vth <= 0).any() or (vth > vmax).any():
            raise _fail(
                where,
                f"vth/{name}",
                f"thresholds must be in 1..{vmax} for {vmem_bits}-bit membranes",
                "re-export with matching vmem_bits",
            )
    pooled_rate = statistical and ltype == "maxpool" and f"rate/{name}" in arrays
    if pooled_rate and not has_window_cores(layer["kernel"], layer["stride"]):
        raise _fail(where, f"rate/{name}", f"a pooled rate needs windows with neurons of their own (kernel < 2 x "
                    f"stride), and {layer['kernel']}x{layer['kernel']} windows at stride {layer['stride']} have none",
                    "drop the rate; the pooled map is then the OR of its input")
    if pooled_rate:
        _check_pooled_source(where, meta["layers"], layer)
    if (statistical and is_spiking(layer)) or pooled_rate:
        rate = arrays.get(f"rate/{name}")
        if rate is None:
            raise _fail(
                where, f"rate/{name}", "missing", "a statistical workload needs a rate for every spiking layer"
            )
        if rate.dtype.kind != "f":
            raise _fail(where, f"rate/{name}", f"has dtype {rate.dtype}", "store rates as float64")
        if (
            rate.ndim not in (1, 2)
            or rate.shape[0] != meta["timesteps"]
            or (rate.ndim == 2 and rate.shape[1] != channels)
        ):
            raise _fail(
                where,
                f"rate/{name}",
                f"has shape {rate.shape}",
                f"use [T] or [T, C] = [{meta['timesteps']}, {channels}]",
            )
        if not np.isfinite(rate).all() or (rate < 0).any() or (rate > 1).any():
            raise _fail(where, f"rate/{name}", "rates must be finite and in [0, 1]", "fix the rates")
        if pooled_rate:
            problem = pool_rate_problem_of(layer, arrays[f"rate/{layer['inputs'][0]}"], rate)
            if problem:
                raise _fail(where, f"rate/{name}", problem,
                            "give a pooled rate in that range, or drop it: the pooled map is then the OR of its input")


def _check_pooled_source(where: str, layers: list[dict], pool: dict) -> None:
    """A pooled rate is drawn together with the pool's input layer (docs/statistical.md, step 4): that input must be
    a spiking layer the pool alone reads, or the rate could not be kept and would be ignored."""
    src = pool["inputs"][0]
    source = next((layer for layer in layers if layer["name"] == src), None)
    readers = [layer["name"] for layer in layers if src in layer["inputs"] and layer is not pool]
    fix = "drop the rate; the pooled map is then the OR of its input"
    if source is None or not is_spiking(source):
        raise _fail(where, f"rate/{pool['name']}", f"the pool reads {src!r}, not a spiking layer: a pooled rate is "
                    "drawn with the spiking layer it pools", fix)
    if readers:
        raise _fail(where, f"rate/{pool['name']}", f"{src!r} also feeds {', '.join(readers)}: a pooled rate needs the "
                    "pool to be its input's only reader", fix)


def _validate_statistical(where: str, meta: dict, arrays: dict) -> None:
    """A statistical workload's exit histograms, seed, and input densities (images) or input rate (frames)."""
    policies = exit_policy_names(arrays)
    if not policies:
        raise _fail(where, "exit_hist/<policy>", "missing",
                    "give one exit histogram per exit policy, e.g. exit_hist/atsn")
    if not has_output_layer(meta["layers"]) and tuple(policies) != ("fixed",):
        other = next(p for p in policies if p != "fixed")
        raise _fail(where, f"exit_hist/{other}", "a network without an output layer runs all T timesteps (its last "
                    "layer's spike counts are the output): only exit_hist/fixed applies",
                    "drop the other exit histograms (or end the network with an output layer)")
    for policy in policies:
        hist = arrays[f"exit_hist/{policy}"]
        if (
            hist.dtype.kind != "f"
            or hist.shape != (meta["timesteps"],)
            or not np.isfinite(hist).all()
            or (hist < 0).any()
            or not np.isclose(hist.sum(), 1.0, atol=1e-6)
        ):
            raise _fail(
                where,
                f"exit_hist/{policy}",
                "must be T non-negative probabilities summing to 1",
                "normalise the histogram",
            )
        if policy == "fixed" and ((hist[:-1] != 0).any() or hist[-1] != 1.0):
            raise _fail(where, "exit_hist/fixed", f"sends {float(hist[:-1].sum()):.6g} of the images out before "
                        f"t = {meta['timesteps']}, but a fixed-T design runs every image all T timesteps",
                        "store [0, ..., 0, 1] (every build writes it so)")
    if "seed" not in arrays:
        raise _fail(where, "seed", "missing", "statistical workloads need a seed")
    seed = arrays["seed"]
    if seed.dtype.kind not in "iu" or seed.size != 1 or int(seed.reshape(-1)[0]) < 0:
        got = (f"{seed.dtype} {int(seed.reshape(-1)[0])}" if seed.dtype.kind in "iu" and seed.size == 1
               else f"{seed.dtype} of shape {list(seed.shape)}")
        raise _fail(where, "seed", f"must be one non-negative integer, got {got}", "re-export the workload")
    density = meta.get("input_bit_density")
    if meta.get("input_encoding", "direct") == "direct":
        if not (isinstance(density, list) and len(density) == 8
                and all(_is_finite_number(d) and 0 <= d <= 1 for d in density)):
            raise _fail(
                where,
                "meta.input_bit_density",
                "needs 8 densities in [0, 1] (bit planes 0..7)",
                "fit it from real images",
            )
        if INPUT_ROW_BITS in arrays:
            _check_input_row_bits(where, meta, arrays[INPUT_ROW_BITS], profiles_scanned(arrays))
    else:
        if density is not None:
            raise _fail(where, "meta.input_bit_density", "is given, but the inputs are spike frames, drawn from "
                        "rate/input (bit-plane densities are for pixels)", "drop meta.input_bit_density")
        _check_input_rate(where, meta, arrays.get("rate/input"))
    _check_spike_rows(where, meta, arrays, profiles_scanned(arrays))
    _check_exit_steps(where, meta, arrays)


def is_row_profile(key: str) -> bool:
    """Whether ``key`` is one of a twin's row profiles: ``input_row_bits`` or ``spike_rows/<layer>``."""
    return key == INPUT_ROW_BITS or key.partition("/")[0] == SPIKE_ROWS and key != SPIKE_ROWS


def profiles_scanned(arrays: dict, whole: bool = False) -> bool:
    """Whether reading reads the row profiles through for their range checks: when they are in memory, or read by rows
    and hold up to SCANNED_INPUT_BYTES together (``whole``: always). Larger ones are checked as the draw reads their
    rows (:func:`check_profile_rows`): a twin fitted on 10^6 images does not pay the pass on `run --images 2`."""
    lazy = [a.nbytes for key, a in arrays.items() if is_row_profile(key) and isinstance(a, NpzRows)]
    return whole or sum(lazy) <= SCANNED_INPUT_BYTES


def _profile_width(meta: dict, key: str) -> tuple[int, str]:
    """The largest count a row of profile ``key`` may hold (its map's width) and what that width is, in words."""
    name = key.partition("/")[2]
    layer = next((ly for ly in meta["layers"] if ly["name"] == name), None)
    if key == INPUT_ROW_BITS or layer is None:  # input_row_bits, spike_rows/input
        return int(meta["input_shape"][-1]), "the width of a row" + ("" if key == INPUT_ROW_BITS else " of input")
    return int(layer["out_shape"][-1]), f"the width of a row of {layer['name']}"


def check_profile_rows(where: str, meta: dict, key: str, rows: np.ndarray, images: np.ndarray) -> None:
    """Rows of a twin's row profile ``key`` as the draw reads them (``images``: the fitted image of each row): counts in
    [0, W], the check reading does for profiles up to SCANNED_INPUT_BYTES (:func:`profiles_scanned`)."""
    w, what = _profile_width(meta, key)
    bad = (rows < 0) | (rows > w)
    if rows.size and bad.any():
        image = int(images[int(np.argwhere(bad)[0][0])])
        raise _fail(where, key, f"image {image}: counts must be in [0, {w}] ({what})",
                    "refit the twin with satasim workload stats")


def _check_input_row_bits(where: str, meta: dict, counts: np.ndarray | NpzRows, scan: bool = True) -> None:
    """A direct twin's ``input_row_bits``: [M, 8, C, H] integer counts in [0, W], the set bits of each measured image's
    bit plane, channel and row (docs/statistical.md, step 3); the counts read through when ``scan``."""
    shape = [int(v) for v in meta["input_shape"]]
    if len(shape) != 3:
        raise _fail(where, INPUT_ROW_BITS, f"needs [C, H, W] images, but meta.input_shape is {shape}",
                    "drop input_row_bits (flat inputs are drawn from meta.input_bit_density alone)")
    c, h, w = shape
    if counts.dtype.kind not in "iu":
        raise _fail(where, INPUT_ROW_BITS, f"has dtype {counts.dtype}", "store integer bit counts (uint8 or uint16)")
    if counts.ndim != 4 or counts.shape[0] < 1 or list(counts.shape[1:]) != [8, c, h]:
        raise _fail(where, INPUT_ROW_BITS, f"has shape {list(counts.shape)}",
                    f"use [M, 8, C, H] = [M, 8, {c}, {h}] with M >= 1 measured images")
    if scan and any(block.size and (int(block.min()) < 0 or int(block.max()) > w) for block in array_blocks(counts)):
        raise _fail(where, INPUT_ROW_BITS, f"counts must be in [0, {w}] (the width of a row)",
                    "refit the twin with satasim workload stats")


EXACT_CHOICE_LIMIT = 2**29  # a float32 uniform (24 bits) times an integer below this is exact in float64


def row_profile_layers(layers: list[dict], rated_pools: Iterable[str]) -> list[dict]:
    """The layers a statistical workload's ``spike_rows/<layer>`` may profile, in layer order: spiking conv and add
    layers (their output a [C, H, W] map), and the max-pools of ``rated_pools`` (the pools carrying their own rate,
    drawn with their input: docs/statistical.md step 4) whose windows tile their map. A layer drawn with a pool whose
    windows do not tile its map carries none."""
    rated = {ly["name"]: ly for ly in layers if ly["type"] == "maxpool" and ly["name"] in set(rated_pools)}
    untiled = {pool["inputs"][0] for pool in rated.values() if not windows_tile(pool)}
    maps = {ly["name"] for ly in layers if is_spiking(ly) and ly["type"] != "linear" and len(ly["out_shape"]) == 3}
    return [ly for ly in layers
            if ly["name"] in maps and ly["name"] not in untiled or ly["name"] in rated and windows_tile(ly)]


def _check_spike_rows(where: str, meta: dict, arrays: dict, scan: bool = True) -> None:
    """A twin's ``spike_rows/<layer>``: [M, T, C, H] integer spike counts in [0, W] of its fitted images, each row of
    each channel at each timestep, for the layers of ``row_profile_layers`` (a pool's rows and its input's go
    together); one M for every layer and for ``input_row_bits``, so twin image i takes image i mod M's profiles of
    the input and of every layer (docs/statistical.md, step 4); the counts read through when ``scan``."""
    keys = sorted(key for key in arrays if key.partition("/")[0] == SPIKE_ROWS)
    if not keys:
        return
    layers = meta["layers"]
    by_name = {ly["name"]: ly for ly in layers}
    rated_pools = [ly["name"] for ly in layers if ly["type"] == "maxpool" and f"rate/{ly['name']}" in arrays]
    allowed = {ly["name"] for ly in row_profile_layers(layers, rated_pools)}
    frames = meta.get("input_encoding", "direct") == "spike_frames" and len(meta["input_shape"]) == 3
    if frames:  # spike frames of [C, H, W]: their events per row, drawn like a layer's spikes
        allowed.add(INPUT_FRAMES)
        by_name = {**by_name, INPUT_FRAMES: {"name": INPUT_FRAMES, "type": "input", "out_shape": meta["input_shape"]}}
    images: tuple[str, int] | None = None
    if INPUT_ROW_BITS in arrays:
        images = (INPUT_ROW_BITS, int(arrays[INPUT_ROW_BITS].shape[0]))
    for key in keys:
        name = key.partition("/")[2]
        layer = by_name.get(name)
        if name == INPUT_FRAMES and not frames:
            raise _fail(where, key, "is the row profile of spike-frame inputs of [C, H, W], but the input is "
                        f"{meta.get('input_encoding', 'direct')} {list(meta['input_shape'])} (a direct image's rows "
                        f"are {INPUT_ROW_BITS})", f"remove {key}")
        if layer is None:
            raise _fail(where, key, f"no layer is called {shown(name)}",
                        did_you_mean(name, tuple(allowed), "the layers that may carry one:", limit=8)
                        if allowed else "remove it: no layer of this network can carry a row profile")
        if name not in allowed:
            raise _row_profile_refusal(where, key, layer, layers, arrays)
        _check_row_counts(where, key, layer, arrays[key], int(meta["timesteps"]), scan)
        if images is None:
            images = (key, int(arrays[key].shape[0]))
        elif int(arrays[key].shape[0]) != images[1]:
            raise _fail(where, key, f"holds {arrays[key].shape[0]} images but {images[0]} holds {images[1]}: twin "
                        "image i takes image i mod M's profiles of the input and of every layer together",
                        "refit the twin with satasim workload stats (every profile from the same images)")
    for pool in (by_name[name] for name in rated_pools if name in allowed):
        _check_pooled_rows(where, pool, by_name[pool["inputs"][0]], arrays, scan)


def _row_profile_refusal(where: str, key: str, layer: dict, layers: list[dict], arrays: dict) -> WorkloadError:
    """Why ``layer`` cannot carry ``spike_rows/<layer>`` (a layer not in ``row_profile_layers``)."""
    name = layer["name"]
    pool = layer if layer["type"] == "maxpool" else next(
        (ly for ly in layers if ly["type"] == "maxpool" and ly["inputs"][0] == name and f"rate/{ly['name']}" in arrays),
        None)
    if pool is not None and f"rate/{pool['name']}" in arrays:  # a rated pool whose windows do not tile its map
        k, s, (_, h, w) = pool["kernel"], pool["stride"], pool["in_shape"]
        src = pool["inputs"][0]
        return _fail(where, key, f"{src!r} is drawn with its max-pool {pool['name']!r} (rate/{pool['name']}; "
                     f"docs/statistical.md, step 4), whose {k}x{k} windows at stride {s} do not tile its {h}x{w} map: "
                     "row profiles are drawn with a pool only when its windows tile the map (kernel = stride, the "
                     "height and width multiples of it)", f"remove spike_rows/{src} and spike_rows/{pool['name']} "
                     f"(satasim workload stats leaves them out), or drop rate/{pool['name']} (the pooled map is then "
                     "the OR of its input)")
    if layer["type"] == "maxpool":
        return _fail(where, key, f"{name!r} is a max-pool without its own rate: its map is the OR of its input's "
                     "spikes (a pool carries a row profile only when it is drawn at its own rate, docs/statistical.md "
                     "step 4)", f"remove {key}")
    kind = ("non-spiking " if layer["type"] in ("conv", "linear") and not is_spiking(layer) else "") + layer["type"]
    return _fail(where, key, f"{name!r} is {'an' if kind[0] in 'aeiou' else 'a'} {kind} layer: row profiles are for "
                 "spiking conv and add layers, whose spikes form [C, H, W] maps", f"remove {key}")


def _check_row_counts(where: str, key: str, layer: dict, counts: np.ndarray | NpzRows, T: int, scan: bool = True
                      ) -> None:
    """``spike_rows/<layer>``: integer counts [M, T, C, H] in [0, W] of the layer's [C, H, W] map."""
    c, h, w = (int(v) for v in layer["out_shape"])
    if counts.dtype.kind not in "iu":
        raise _fail(where, key, f"has dtype {counts.dtype}", "store integer spike counts (uint8, or uint16 for "
                    "rows wider than 255)")
    if counts.ndim != 4 or counts.shape[0] < 1 or list(counts.shape[1:]) != [T, c, h]:
        raise _fail(where, key, f"has shape {list(counts.shape)}",
                    f"use [M, T, C, H] = [M, {T}, {c}, {h}] with M >= 1 fitted images")
    if scan and any(block.size and (int(block.min()) < 0 or int(block.max()) > w) for block in array_blocks(counts)):
        raise _fail(where, key, f"counts must be in [0, {w}] (the width of a row of {layer['name']})",
                    "refit the twin with satasim workload stats")


def _check_pooled_rows(where: str, pool: dict, source: dict, arrays: dict, scan: bool = True) -> None:
    """A rated pool whose windows tile its map and its input layer carry row profiles together, and they agree as an
    OR-pool does (:func:`check_pooled_profile_rows`; read through when ``scan``)."""
    pool_key, source_key = f"{SPIKE_ROWS}/{pool['name']}", f"{SPIKE_ROWS}/{source['name']}"
    if (pool_key in arrays) != (source_key in arrays):
        have, missing = (pool_key, source_key) if pool_key in arrays else (source_key, pool_key)
        raise _fail(where, have, f"{source['name']!r} is drawn with its max-pool {pool['name']!r} (docs/"
                    f"statistical.md, step 4): the two carry row profiles together, and {missing} is missing",
                    f"add {missing} (satasim workload stats writes both), or remove {have}")
    if pool_key not in arrays:
        return
    k = int(pool["kernel"])
    if k * k * int(source["out_shape"][2]) >= EXACT_CHOICE_LIMIT:
        raise _fail(where, pool_key, f"the window choice of {k}x{k} windows over rows of {source['out_shape'][2]} is "
                    f"exact only while k^2 W < 2^29 (docs/statistical.md, step 4)", f"remove {pool_key} and "
                    f"{source_key} (the layer is then drawn from its rates)")
    if arrays[source_key].shape[0] != arrays[pool_key].shape[0] or not scan:
        return  # the M check of _check_spike_rows names a mismatch; unscanned rows are checked as they are read
    lazy = [a.block_rows() for a in (arrays[source_key], arrays[pool_key]) if isinstance(a, NpzRows)]
    step = min(lazy) if lazy else None  # both read by rows: blocks of as many images
    first = 0
    for rows, fired in zip(array_blocks(arrays[source_key], step), array_blocks(arrays[pool_key], step), strict=True):
        check_pooled_profile_rows(where, pool, source, rows, fired, first + np.arange(len(rows)))
        first += len(rows)


def check_pooled_profile_rows(where: str, pool: dict, source: dict, rows: np.ndarray, fired: np.ndarray,
                              images: np.ndarray) -> None:
    """Rows of a pool's and its input's row profiles (``images``: the fitted image of each) agree as an OR-pool does:
    under each pooled row the P windows that fire hold at least P of the input's spikes in the k rows under them, and
    at most k in each of those rows of each window."""
    pool_key, source_key = f"{SPIKE_ROWS}/{pool['name']}", f"{SPIKE_ROWS}/{source['name']}"
    k = int(pool["kernel"])
    rows, fired = rows.astype(np.int64), fired.astype(np.int64)
    band = rows.reshape(rows.shape[:3] + (-1, k))
    bad = (fired > band.sum(axis=-1)) | (band.max(axis=-1) > k * fired)
    if bad.any():
        m, t, c, i = (int(v) for v in np.argwhere(bad)[0])
        raise _fail(where, pool_key, f"image {int(images[m])}, t = {t + 1}, channel {c}, pooled row {i}: "
                    f"{fired[m, t, c, i]} windows fire over input rows {i * k}..{i * k + k - 1} with "
                    f"{band[m, t, c, i].tolist()} spikes in {source_key}; an OR-pool's firing windows hold at "
                    f"least one spike each and at most {k} in each row",
                    "refit the twin with satasim workload stats (one forward's counts always agree)")


def _check_input_rate(where: str, meta: dict, rate: np.ndarray | None) -> None:
    """A spike-frame workload's ``rate/input``: [T] or [T, C] (C = the input's channels, or features for a flat
    input) float rates in [0, 1], the checks ``rate/<layer>`` gets."""
    T, channels = meta["timesteps"], int(meta["input_shape"][0])
    shape = f"[T] or [T, C] = [{T}, {channels}]"
    if rate is None:
        raise _fail(where, "rate/input", f"missing: spike-frame inputs need an input rate {shape}", "add rate/input")
    if rate.dtype.kind != "f":
        raise _fail(where, "rate/input", f"has dtype {rate.dtype}", "store rates as float64")
    if rate.ndim not in (1, 2) or rate.shape[0] != T or (rate.ndim == 2 and rate.shape[1] != channels):
        raise _fail(where, "rate/input", f"has shape {list(rate.shape)}", f"use {shape}")
    if not np.isfinite(rate).all() or (rate < 0).any() or (rate > 1).any():
        raise _fail(where, "rate/input", "rates must be finite and in [0, 1]", "fix the rates")


def grid_histogram(counts: np.ndarray) -> np.ndarray:
    """Exit counts (images per step) as a histogram on the 2^-32 grid, summing exactly to 1 (integer arithmetic)."""
    counts = [int(c) for c in np.asarray(counts).reshape(-1)]
    total = sum(counts)
    if total <= 0:
        raise WorkloadError.at(None, "exit histogram", "has no images", "fit from at least one image")
    return np.asarray(exactmath.largest_remainder(counts, HIST_SCALE, total), dtype=np.float64) / HIST_SCALE


def profile_images(arrays: dict) -> tuple[str, int] | None:
    """The row profiles' M (the images they hold) and the field it is read from; None without row profiles."""
    keys = ([INPUT_ROW_BITS] if INPUT_ROW_BITS in arrays else []) + sorted(
        key for key in arrays if key.partition("/")[0] == SPIKE_ROWS)
    return (keys[0], int(np.shape(arrays[keys[0]])[0])) if keys else None


def _check_exit_steps(where: str, meta: dict, arrays: dict) -> None:
    """A twin's ``exit_steps/<policy>``: each fitted image's exit step under the policy, [M] integers in 1..T with the M
    of the row profiles (twin image i exits at exit_steps/<policy>[i mod M], docs/statistical.md step 2), whose
    distribution is exactly ``exit_hist/<policy>`` (the histogram stays: info, run and rate tables read it)."""
    T = int(meta["timesteps"])
    for key in sorted(k for k in arrays if k.partition("/")[0] == EXIT_STEPS):
        policy = key.partition("/")[2]
        hist_key = f"exit_hist/{policy}"
        if hist_key not in arrays:
            raise _fail(where, key, f"has no {hist_key}: the steps pair each fitted image's exit with its row "
                        "profiles, and the histogram is their distribution (the mean timestep is reported from it)",
                        f"add {hist_key} (satasim workload stats writes both), or remove {key}")
        steps = arrays[key]
        if steps.dtype.kind not in "iu":
            raise _fail(where, key, f"has dtype {steps.dtype}", "store integer exit steps (uint16)")
        # M: the row profiles' images, or without profiles those of the first exit_steps array (twin image i takes
        # fitted image i mod M's profiles and exits together)
        first = min(k for k in arrays if k.partition("/")[0] == EXIT_STEPS)
        images = profile_images(arrays) or (first, int(np.shape(arrays[first])[0]) if np.ndim(arrays[first]) else 0)
        if steps.ndim != 1 or steps.shape != (images[1],) or images[1] < 1:
            raise _fail(where, key, f"has shape {list(steps.shape)}, but {images[0]} holds {images[1]} images",
                        f"use [M] = [{images[1]}]: one exit step per fitted image (those of the row profiles, if any)")
        counts = np.zeros(T + 1, dtype=np.int64)  # read in blocks: a twin of a million fitted images holds M steps
        for block in array_blocks(steps):
            if block.size and (int(block.min()) < 1 or int(block.max()) > T):
                raise _fail(where, key, f"exit steps must be in 1..{T} (T)", "refit the twin with satasim workload "
                            "stats")
            counts += np.bincount(block.astype(np.int64), minlength=T + 1)
        if policy == "fixed" and counts[T] != counts.sum():
            raise _fail(where, key, f"sends an image out before t = {T}, but a fixed-T design runs every image all T "
                        "timesteps", f"store {T} for every image (satasim workload stats does)")
        expected = grid_histogram(counts[1:])
        if not np.array_equal(np.asarray(arrays[hist_key], dtype=np.float64), expected):
            raise _fail(where, key, f"is not the distribution of {hist_key}: the histogram must equal the steps' "
                        "counts on the 2^-32 grid exactly (grid_histogram of their bincount, integer arithmetic)",
                        f"store {hist_key} = that histogram (satasim workload stats does), or remove {key}")


def exit_policy_names(arrays: dict) -> tuple[str, ...]:
    """The exit policies a statistical workload has histograms for: its ``exit_hist/<policy>`` keys, by name."""
    return tuple(sorted(key.removeprefix("exit_hist/") for key in arrays if key.startswith("exit_hist/")))


def _array(arrays: dict, key: str, where: str, dtype: type, shape: tuple) -> np.ndarray:
    if key not in arrays:
        raise _fail(where, key, "missing", f"add it: a {np.dtype(dtype).name} array of shape {tuple(shape)}, or write "
                    "the workload with this tool's writer")
    value = arrays[key]
    if value.dtype != dtype:
        raise _fail(where, key, f"has dtype {value.dtype}", f"store it as {np.dtype(dtype).name}")
    if tuple(value.shape) != tuple(shape):
        raise _fail(
            where,
            key,
            f"has shape {tuple(value.shape)}, the layer table needs {tuple(shape)}",
            "re-export the workload",
        )
    return value


def _validate_inputs(workload: Workload) -> None:
    where, meta, arrays = workload.source, workload.meta, workload.arrays
    if "x" not in arrays:
        raise _fail(where, "x", "missing", "trained workloads embed their test inputs")
    x = arrays["x"]
    if x.dtype != np.uint8:
        raise _fail(where, "x", f"has dtype {x.dtype}", "store images as uint8")
    shape = list(meta["input_shape"])
    if meta.get("input_encoding", "direct") == "direct":
        if x.ndim != 4 or list(x.shape[1:]) != shape:
            raise _fail(
                where,
                "x",
                f"has shape {x.shape}, the network's input is {shape}",
                "the images do not match the first layer; re-export",
            )
    else:
        width = meta.get("input_width")
        if width is None:
            raise _fail(where, "meta.input_width", "missing: spike frames are packed along their last axis",
                        f"store the unpacked width, {shape[-1]}")
        if width != shape[-1]:
            raise _fail(where, "meta.input_width", f"{shown(width)} must equal the last input dimension, {shape[-1]}",
                        "fix the value")
        packed = shape[:-1] + [(width + 7) // 8]
        if x.ndim != 5 or x.shape[1] != meta["timesteps"] or list(x.shape[2:]) != packed:
            raise _fail(
                where,
                "x",
                f"has shape {x.shape}, expected [N, T, {', '.join(map(str, packed))}]",
                "pack spike frames with np.packbits along the last axis",
            )
    _scan_inputs(where, meta, x)
    if "y" in arrays:
        y = arrays["y"]
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise _fail(where, "y", f"has shape {y.shape} for {x.shape[0]} inputs", "give one label per input")
        if y.dtype.kind not in "iu":
            raise _fail(where, "y", f"labels must be integers, got dtype {y.dtype}",
                        "store class indices, e.g. y.astype(np.int64) after checking they are whole numbers")
        if any(block.size and (block.min() < 0 or block.max() >= meta["num_classes"]) for block in array_blocks(y)):
            raise _fail(where, "y", f"labels must be in 0..{meta['num_classes'] - 1}", "fix the labels")
    if x.shape[0] == 0:
        raise _fail(where, "x", "holds no inputs", "embed at least one test input")


# ------------------------------------------------------------------------------------------
# reading and writing
# ------------------------------------------------------------------------------------------
def check_workload_path(path: str | os.PathLike, argument: str = "") -> None:
    """Refuse a path that cannot be a workload (a directory, a pipe, a missing file, a YAML file) in one line.

    ``argument`` says where the command took the path (e.g. "compare: the last argument", "reproduce twin:
    --trained"); the fix names it, and names no place when it is empty.
    """
    where = str(path)
    place = f" ({argument})" if argument else ""
    if not isinstance(path, (str, os.PathLike)):  # a script's None or number: Path() would raise a bare TypeError
        raise WorkloadError.at(where, None, f"is a {type(path).__name__}, not a path",
                               "give the workload's path as a str or pathlib.Path, e.g. 'workloads/vgg16_cifar10.npz'")
    if Path(path).is_dir():
        raise WorkloadError.at(where, None, "is a directory", "give a workload .npz file (shipped: workloads/)")
    if Path(path).exists() and not Path(path).is_file():  # `<(cat w.npz)`: it was called "no such file"
        raise WorkloadError.at(where, None, "is a pipe or a device, not a file (a workload is read more than once)",
                               "save it to a file first and give that file")
    if not Path(path).is_file():
        shipped_arch = Path(__file__).resolve().parents[1] / "data" / "archs" / f"{where}.yaml"
        bare = not any(sep in where for sep in "/\\")
        if bare and shipped_arch.is_file():  # `compare atsn16x16 dtsnn16x16`: the workload was forgotten
            raise WorkloadError.at(where, None, "no such file: it names a shipped architecture, and a workload "
                                   "(.npz) is needed here", f"give a workload, e.g. workloads/vgg16_cifar10.npz{place}")
        raise WorkloadError.at(where, None, "no such file", "check the path (shipped workloads are in the checkout's "
                               "workloads/, which a pip-installed package does not include)")
    if where.lower().endswith((".yaml", ".yml")):
        raise WorkloadError.at(where, None, "is a YAML file (an architecture, a network or a study), not a workload "
                               "(.npz)", f"give a workload, e.g. workloads/vgg16_cifar10.npz{place}")
    try:
        with open(path, "rb") as handle:
            magic = handle.read(8)
    except OSError:  # unreadable: the reader names it
        magic = b""
    if magic == b"\x89HDF\r\n\x1a\n":  # it was "not a readable .npz file ...; regenerate it"
        raise WorkloadError.at(where, None, "is an HDF5 file (a NIR graph), not a workload (.npz)",
                               "import it first: satasim workload import MODEL.nir --inputs X.npz -o W.npz "
                               "(docs/networks.md)")


def read_workload(path: str | os.PathLike, argument: str = "") -> Workload:
    """Read and validate a workload file, raising WorkloadError with the key and the fix (``argument``: where the
    command took the path, named in the fix of a path that is no workload; see check_workload_path)."""
    where = str(path)
    check_workload_path(path, argument)
    arrays = read_npz(path, where, WorkloadError, "the file is truncated or not a workload; regenerate it",
                      lazy=read_by_rows)
    fmt = arrays.pop("format", None)
    if fmt is None and "state" in arrays and any(key.startswith("p/") for key in arrays):
        raise WorkloadError.at(where, None, "is a training checkpoint (satasim train's OUTPUT.ckpt.npz), not a "
                               "workload", "use the workload the training wrote (its -o file)")
    if fmt is None or fmt.dtype.kind != "U" or fmt.shape != () or str(fmt) != FORMAT_NAME:
        raise WorkloadError.at(
            where,
            "format",
            f"is {None if fmt is None else str(fmt)!r}, not {FORMAT_NAME!r}",
            "this is not a satasim workload; create one with `satasim train` or `satasim workload`",
        )
    version = arrays.pop("version", None)
    if version is None or version.dtype.kind not in "iu" or version.shape != () or int(version) != FORMAT_VERSION:
        shown_version = None if version is None else " ".join(np.array2string(version, threshold=4).split())
        raise WorkloadError.at(
            where,
            "version",
            f"is {shown_version} ({'missing' if version is None else version.dtype}), this tool reads version "
            f"{FORMAT_VERSION} (an integer)",
            "upgrade satasim-atsn or re-export",
        )
    raw_meta = arrays.pop("meta", None)
    if raw_meta is None:
        raise WorkloadError.at(where, "meta", "missing", "re-export the workload")
    if raw_meta.dtype.kind != "U" or raw_meta.shape != ():
        raise WorkloadError.at(where, "meta", f"must be one JSON text, got {raw_meta.dtype} {list(raw_meta.shape)}",
                               "re-export the workload")
    try:
        meta = json.loads(str(raw_meta), object_pairs_hook=_object_of_unique_keys)
    except json.JSONDecodeError as error:
        raise WorkloadError.at(where, "meta", f"is not valid JSON ({error.msg})", "re-export the workload") from None
    except _RepeatedKey as error:  # json keeps the last silently: a hand-written "timesteps" twice ran the other T
        raise WorkloadError.at(where, "meta", f"repeats the key {shown(error.args[0])} in one object",
                               "keep one of them (json.dumps of a dict never repeats a key)") from None
    except RecursionError:
        raise WorkloadError.at(where, "meta", "is nested too deeply to read", "re-export the workload") from None
    if not isinstance(meta, dict):
        raise WorkloadError.at(where, "meta", "must be a JSON object", "re-export the workload")
    for key, value in arrays.items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "fc" and not np.isfinite(value).all():
            raise WorkloadError.at(where, key, "contains NaN or infinite values", "re-export the workload")
    return validate(Workload(meta=meta, arrays=arrays, source=where))


class _RepeatedKey(ValueError):
    """A JSON object of meta names one key twice."""


def _object_of_unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's object hook: the object's keys, each at most once."""
    mapping: dict[str, Any] = {}
    for key, value in pairs:
        if key in mapping:
            raise _RepeatedKey(key)
        mapping[key] = value
    return mapping


def check_workload_output(path: str | os.PathLike, option: str = "-o") -> None:
    """Refuse, before any work, a workload output name the tool could not read back: a .yaml/.yml name (read as an
    architecture, a network or a study). Standard output (``-o -``) is allowed: the summary then goes to stderr."""
    if str(path).lower().endswith((".yaml", ".yml")):
        raise WorkloadError.at(str(path), option, f"ends in {Path(path).suffix}, but a workload is an .npz (this "
                               "tool would read the file back as an architecture, a network or a study)",
                               f"give a name ending in .npz, e.g. {Path(path).with_suffix('.npz').name}")


def write_workload(path: str | os.PathLike, workload: Workload) -> bytes:
    """Validate and write a workload atomically (a temp file renamed into place); returns the bytes written."""
    workload = Workload(meta=json.loads(json.dumps(workload.meta)), arrays=dict(workload.arrays), source=str(path))
    validate(workload)
    payload = {
        "format": np.array(FORMAT_NAME),
        "version": np.array(FORMAT_VERSION, dtype=np.int64),
        "meta": np.array(json.dumps(workload.meta, sort_keys=True)),
    }
    payload.update({key: workload.arrays[key] for key in sorted(workload.arrays)})
    data = _npz_bytes(payload)
    atomic_write_bytes(path, data)
    return data


def _npz_bytes(payload: dict[str, np.ndarray]) -> bytes:
    """A compressed npz image with fixed zip timestamps, so equal workloads are equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key, value in payload.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


#: the largest ``x`` (bytes unpacked) read through at reading to check its CRC: about 0.5 s on EPYC-26; a larger one
#: (10^6 MNIST images: 784 MB, 6.5 s) would cost `run --images 2` that pass, so its rows are checked as read
SCANNED_INPUT_BYTES = 64 * 2**20


def read_by_rows(key: str) -> bool:
    """Whether an array is per image, read by rows when used (workload.npz.NpzRows): the inputs ``x``, their labels
    ``y``, a twin's row profiles and exit steps, of which a file may hold millions of images while a run uses a few."""
    return (key in ("x", "y", INPUT_ROW_BITS)
            or key.partition("/")[0] in (SPIKE_ROWS, EXIT_STEPS) and key not in (SPIKE_ROWS, EXIT_STEPS))


def array_blocks(array: np.ndarray | NpzRows, rows: int | None = None) -> Iterable[np.ndarray]:
    """An array whole, or one read by rows in blocks of ``rows`` (about 8 MiB by default), each block once."""
    if isinstance(array, NpzRows):
        return array.blocks(rows)
    return [array] if rows is None else (array[lo:lo + rows] for lo in range(0, len(array), rows))

def check_inputs_whole(workload: Workload) -> None:
    """Read a workload's ``x`` through once whatever its size (its CRC checked, packed frames' spare bits), and a twin's
    row profiles (their range and pooled-rows checks), as reading does for those up to SCANNED_INPUT_BYTES: `workload
    info`, which vouches for the whole file."""
    if "x" in workload.arrays:
        _scan_inputs(workload.source, workload.meta, workload.arrays["x"], whole=True)
    arrays, meta = workload.arrays, workload.meta
    if workload.is_statistical and not profiles_scanned(arrays):
        if INPUT_ROW_BITS in arrays and meta.get("input_encoding", "direct") == "direct":
            _check_input_row_bits(workload.source, meta, arrays[INPUT_ROW_BITS])
        _check_spike_rows(workload.source, meta, arrays)


def _scan_inputs(where: str, meta: dict, x: np.ndarray | NpzRows, whole: bool = False) -> None:
    """Read ``x`` through once when it is read by rows and holds up to SCANNED_INPUT_BYTES (its CRC checked, in blocks:
    never whole in memory), and refuse packed spike frames with a spare bit set past ``meta.input_width`` in their
    last byte. A larger ``x`` is not read at all here: its rows are checked as they are read (Workload.inputs: the
    spare bits; zlib: the stream; the CRC once a command reads it to its end)."""
    frames = meta.get("input_encoding", "direct") == "spike_frames"
    spare = -int(meta.get("input_width", 0)) % 8 if frames else 0
    if isinstance(x, np.ndarray):
        if spare:
            _check_spare_bits(where, meta, x, 0, spare)
        return
    if x.nbytes > SCANNED_INPUT_BYTES and not whole:
        return
    first = 0
    for block in x.blocks():
        if spare:
            _check_spare_bits(where, meta, block, first, spare)
        first += len(block)


def _check_spare_bits(where: str, meta: dict, x: np.ndarray, first: int, spare: int) -> None:
    """Packed frames' ``spare`` low bits of the last byte are 0 (np.packbits pads with 0): a set one means the frames
    were packed at another width, or damaged, and would otherwise be dropped silently by the unpacking."""
    bad = (x[..., -1] & np.uint8((1 << spare) - 1)) != 0  # one byte per row of the frames: no unpacked copy
    if not bad.any():
        return
    image, step = (int(v) for v in np.argwhere(bad)[0][:2])
    width = int(meta["input_width"])
    raise _fail(where, "x", f"image {first + image}, t = {step + 1}: bits are set past meta.input_width {width} in "
                f"the last packed byte of a row (its last {spare} bits must be 0: the frames were packed at another "
                "width, or the file is damaged)", f"pack frames {width} wide with np.packbits(frames, axis=-1), or "
                "set meta.input_width to the width they were packed at")
