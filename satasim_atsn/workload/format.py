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

This module reads, writes and validates the file; the names and limits it checks against are in
:mod:`workload.schema`, the checks of a statistical workload's own arrays in :mod:`workload.statistical_checks`.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from satasim_atsn.errors import WorkloadError, closest, did_you_mean, shown
from satasim_atsn.fileio import atomic_write_bytes
from satasim_atsn.workload import schema
from satasim_atsn.workload.npz import (  # noqa: F401 (load_npz_arrays, zip_problem: this module's API)
    NpzRows,
    load_npz_arrays,
    read_npz,
    zip_problem,
    zip_problem_of,
)
from satasim_atsn.workload.pool_windows import has_window_cores, pool_rate_problem_of
from satasim_atsn.workload.schema import (
    EXIT_PARAMETERS,
    EXIT_STEPS,
    FORMAT_NAME,
    FORMAT_VERSION,
    INPUT_ENCODINGS,
    INPUT_ROW_BITS,
    INPUT_SHIFT_MAX,
    KINDS,
    LAYER_COMMON_KEYS,
    LAYER_FIELDS,
    LAYER_TYPES,
    MAX_STATISTICAL_IMAGES,
    META_KEYS,
    MISSING_FIX,
    NEURON_KEYS,
    OUTPUT_MODES,
    POLICY_NAMES,
    QUANT_KEYS,
    SPIKE_ROWS,
    WEIGHTED_TYPES,
    array_blocks,
    emits_spikes,
    fail,
    has_output_layer,
    infer_out_shape,
    is_finite_number,
    is_int,
    is_spiking,
    output_neurons,
    read_by_rows,
    weight_shape,
)
from satasim_atsn.workload.statistical_checks import (
    check_input_row_bits,
    check_spike_rows,
    profiles_scanned,
    validate_statistical,
)


@dataclass
class Workload:
    """An in-memory workload. ``arrays`` holds every npz entry except format/version/meta."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = "<memory>"
    #: the state validate() passed (:func:`state_digest`); None before it ran or after it refused
    checked_state: str | None = field(default=None, repr=False, compare=False)

    @property
    def validated(self) -> bool:
        """Whether validate() passed this workload as it is now. A meta or an array changed since (another array, a
        dtype or shape, other weights, thresholds, rates or labels) makes it False, so the models validate it again
        instead of running it (a negated threshold ran, with wrong numbers) or failing inside numpy."""
        return self.checked_state is not None and self.checked_state == state_digest(self)

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


#: what each required meta key holds, for the fix of a missing one (an installed package has no docs/)
_META_EXAMPLES = {"name": '"name": "my_net"', "kind": f'"kind": one of {", ".join(map(repr, KINDS))}',
                  "num_classes": '"num_classes": 10', "timesteps": '"timesteps": 4',
                  "input_shape": '"input_shape": [3, 32, 32] (C, H, W)'}


def _require(meta: dict, key: str, types: type | tuple, where: str) -> Any:
    if key not in meta:
        example = _META_EXAMPLES.get(key)
        fix = f"add it, e.g. {example}, or write the workload with this tool's writer" if example else MISSING_FIX
        raise fail(where, f"meta.{key}", "missing", fix)
    value = meta[key]
    if not isinstance(value, types) or (isinstance(value, bool) and types is int):
        want = {str: "text", int: "an integer", list: "a list", dict: "a JSON object"}.get(types, str(types))
        raise fail(where, f"meta.{key}", f"has type {type(value).__name__}, not {want}: {shown(value)}",
                    f"write it as {want} (docs/workload-format.md, 'meta')")
    return value


def validate_layers(meta: dict, where: str = "<workload>") -> None:
    """Check the layer graph: names, types, inputs, shapes. Raises WorkloadError."""
    layers = meta.get("layers")
    if not isinstance(layers, list) or not layers:  # a mapping or text is not 'missing'
        problem = "missing or empty" if not layers else f"must be a list of layers, got {shown(layers)}"
        raise fail(where, "meta.layers", problem, "a workload needs a list of at least one layer, in execution order")
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
            raise fail(
                where,
                f"{key}.in_shape",
                f"is {layer.get('in_shape')} but its input gives {in_shapes[0]}",
                "the input shape does not match the previous layer; fix the layer table",
            )
        try:
            out_shape = infer_out_shape(layer, in_shapes, num_classes)
        except ValueError as error:
            raise fail(where, key, str(error), "fix the layer table") from None
        check_layer_size(where, key, layer, in_shapes[0], out_shape)
        if "out_shape" in layer and list(layer["out_shape"]) != out_shape:
            raise fail(
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
        raise fail(where, "meta.layers", "no conv, linear or output layer: the network computes nothing",
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
        raise fail(where, key, f"has {neurons:,} outputs {out_shape}, more than the {MAX_LAYER_NEURONS:,} this "
                    "simulator maps per layer", SIZE_FIXES.get(layer["type"], "make its input smaller"))
    if layer["type"] in ("conv", "linear", "output"):
        fan_in = int(in_shape[0]) * (int(layer["kernel"]) ** 2 if layer["type"] == "conv" else 1)
        weights = fan_in * int(out_shape[0])
        if weights > MAX_LAYER_WEIGHTS:
            raise fail(where, key, f"has {weights:,} weights, more than the {MAX_LAYER_WEIGHTS:,} this simulator "
                        "holds per layer", "use fewer channels or features")


def _check_shape_field(where: str, key: str, value: Any) -> None:
    """A stored layer shape is a list of positive integers (a number, null or text is refused)."""
    if not isinstance(value, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in value
    ):
        raise fail(where, key, f"is {value!r}, not a list of positive integers",
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
            raise fail(where, f"meta.layers[{index}] ({layer['name']})", f"is a current read by {len(used)} layers "
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
        raise fail(
            where,
            f"meta.layers[{bad[0]}].inputs",
            f"{layer['type']} layer {layer['name']!r} reads the direct-encoded image; with input_encoding "
            "'direct' the pixels go (once, bit-serially) to the first weighted layer only, first in the "
            "list or right after one flatten of the image",
            "put a conv first (or a flatten then a linear), or encode the inputs as spike frames",
        )


def _check_last_layer(where: str, layers: list[dict], num_classes: int) -> None:
    """The last layer is the output layer, or a layer that emits spikes with exactly num_classes neurons."""
    last = layers[-1]
    if last["type"] == "output":
        return
    key = f"meta.layers[{len(layers) - 1}] ({last['name']})"
    if not emits_spikes(last):
        raise fail(where, key, f"a network must end in an output layer or a spiking layer, not a "
                    f"{'non-spiking ' if last['type'] in ('conv', 'linear') else ''}{last['type']}",
                    "end the network with its classifier (type output) or a spiking layer")
    if output_neurons(layers) != num_classes:
        raise fail(where, "meta.num_classes", f"is {num_classes} but the network ends in the spiking layer "
                    f"{last['name']!r} of {output_neurons(layers)} neurons (its spike counts are the output)",
                    f"set num_classes to {output_neurons(layers)} or end the network with an output layer")


def _check_layer_fields(where: str, index: int, layer: Any, shapes: dict[str, list[int]]) -> tuple[str, list]:
    """One layer entry's name, type, inputs (earlier layers) and integer fields; returns its key and inputs."""
    key = f"meta.layers[{index}]"
    if not isinstance(layer, dict):
        raise fail(where, key, f"must be a JSON object, got {shown(layer)}",
                    'write each layer as {"name": ..., "type": ..., "inputs": [...]} (docs/workload-format.md)')
    if "name" not in layer or "type" not in layer:
        missing = " and ".join(repr(k) for k in ("name", "type") if k not in layer)
        raise fail(where, key, f"{missing} is missing (every layer has a name and a type)",
                    "give every layer both (docs/workload-format.md, 'layers')")
    name = layer["name"]
    key = f"meta.layers[{index}] ({name})"
    if not isinstance(name, str) or not name or "/" in name or name == "input":
        raise fail(where, key, "bad layer name", "use a non-empty name without '/' other than 'input'")
    if name in shapes:
        raise fail(where, key, "duplicate layer name", "give every layer a unique name")
    if layer["type"] not in LAYER_TYPES:
        raise fail(where, key + ".type", f"unknown type {layer['type']!r}", f"use one of {', '.join(LAYER_TYPES)}")
    allowed = LAYER_COMMON_KEYS + LAYER_FIELDS[layer["type"]]
    for field_name in layer:
        if field_name not in allowed:  # an unsupported feature (dilation, groups, ...) must not be ignored
            raise fail(where, f"{key}.{_key_text(field_name)}", f"unknown key for {layer['type']} layers",
                        did_you_mean(field_name, allowed))
    inputs = layer.get("inputs")
    if not isinstance(inputs, list) or not inputs:  # a name given as text ("inputs": "fc1") is not missing
        problem = "missing" if inputs is None else f"must be a non-empty list of layer names, got {shown(inputs)}"
        raise fail(where, key + ".inputs", problem, "list the names of the layers feeding this one, e.g. "
                    "[\"input\"] (two, [main, shortcut], for an add)")
    for src in inputs:
        if not isinstance(src, str):  # a list or object here made an unhashable-type traceback
            raise fail(where, key + ".inputs", f"must list layer names (text), got {shown(src)}",
                        "name the earlier layers feeding this one, or \"input\"")
        if src not in shapes:
            raise fail(
                where, key + ".inputs", f"unknown or later layer {src!r}", "inputs must name earlier layers"
            )
    if layer["type"] != "add" and len(inputs) != 1:
        raise fail(where, key + ".inputs", "only add layers take two inputs", "give one input")
    for ikey in ("kernel", "stride", "out_channels", "out_features"):  # int32: a stride of 2^70 overflowed numba
        if ikey in layer and not (is_int(layer[ikey]) and 0 < layer[ikey] <= LAYER_INT_MAX):
            raise fail(where, f"{key}.{ikey}", f"must be a positive integer below 2^31, got {shown(layer[ikey])}",
                        "fix the value")
    if "padding" in layer and not (is_int(layer["padding"]) and 0 <= layer["padding"] <= LAYER_INT_MAX):
        raise fail(where, f"{key}.padding", f"must be a non-negative integer below 2^31, got "
                    f"{shown(layer['padding'])}", "fix the value")
    if "spiking" in layer and not isinstance(layer["spiking"], bool):  # "false" (text) was read as true
        raise fail(where, f"{key}.spiking", f"must be true or false, got {shown(layer['spiking'])}",
                    "write a JSON boolean (true: LIF neurons; false: a current read by an add)")
    for needed in {
        "conv": ("kernel", "stride", "padding", "out_channels"),
        "maxpool": ("kernel", "stride"),
        "linear": ("out_features",),
        "output": ("output_mode", "logit_scale"),
    }.get(layer["type"], ()):
        if needed not in layer:
            raise fail(where, f"{key}.{needed}", "missing", f"{layer['type']} layers need {needed}")
    return key, inputs


LAYER_INT_MAX = 2**31 - 1  # a layer's kernel, stride, padding and widths are int32 in the mapping's kernels
SHORTCUT_GAIN_MAX = 2**31 - 1  # the join's gain register is int32, as its bias and threshold (a larger one overflowed)
#: the largest logit_scale whose 64-bit membranes still have finite float64 logits
_LOGIT_SCALE_MAX = float(np.nextafter(np.finfo(np.float64).max / 2.0**64, 0))


def _check_layer_role(where: str, key: str, last: bool, layer: dict, inputs: list, seen_spiking: dict) -> None:
    """The output layer's fields and place; an add joins a current and a shortcut; currents feed only adds."""
    if layer["type"] == "output":
        if layer["output_mode"] not in OUTPUT_MODES:
            raise fail(where, f"{key}.output_mode", f"unknown {layer['output_mode']!r}", f"use {OUTPUT_MODES}")
        if not (is_finite_number(layer["logit_scale"]) and layer["logit_scale"] > 0):
            raise fail(where, f"{key}.logit_scale", f"must be a positive finite number, got "
                        f"{shown(layer['logit_scale'])}", "fix the value")
        if not np.isfinite(float(layer["logit_scale"]) * 2.0**64):  # a 64-bit membrane's logit overflows float64
            raise fail(where, f"{key}.logit_scale", f"{layer['logit_scale']:g} makes the logits of wide membranes "
                        "overflow a float64", f"give the logit of one membrane unit, at most {_LOGIT_SCALE_MAX:.3g}")
        if not last:
            raise fail(where, key, "the output layer must be last", "move it to the end")
    if layer["type"] == "add":
        main_src, short_src = inputs
        if seen_spiking.get(main_src, True):
            raise fail(
                where,
                f"{key}.inputs",
                f"the first input {main_src!r} must be a current (non-spiking conv)",
                "set spiking: false on the conv feeding the join",
            )
        if short_src == "input":
            raise fail(where, f"{key}.inputs", "the shortcut is the network's input: the hardware routes a "
                        "shortcut from a layer's output spikes, and the input has no layer",
                        "let a layer (e.g. a 1x1 conv) read the input and take the shortcut from it")
        gain = layer.get("shortcut_gain")
        if seen_spiking.get(short_src, True) and not (is_int(gain) and 0 < gain <= SHORTCUT_GAIN_MAX):
            raise fail(
                where,
                f"{key}.shortcut_gain",
                f"a spike shortcut needs a positive integer gain, got {shown(gain)} (at most 2^31 - 1: an int32 "
                "register, as b/ and vth/)",
                "store the quantised identity gain (an integer: a fraction would be cut)",
            )
        if not seen_spiking.get(short_src, True) and layer.get("shortcut_gain") is not None:
            raise fail(where, f"{key}.shortcut_gain", f"scales a spike shortcut, but {short_src!r} is a current "
                        "(a non-spiking conv, whose weights carry its scale)", "drop shortcut_gain")
    if layer["type"] in ("maxpool", "avgpool", "flatten", "linear", "conv", "output"):
        src = inputs[0]
        if not seen_spiking.get(src, True):
            raise fail(
                where, f"{key}.inputs", f"{src!r} emits a current, not spikes", "only add layers take currents"
            )


def _check_containers(where: str, meta: object, arrays: object) -> None:
    """A workload built in memory holds a dict ``meta`` and numpy arrays (a script's Python lists failed with
    "'list' object has no attribute 'dtype'", a None meta with a TypeError)."""
    for name, value in (("meta", meta), ("arrays", arrays)):
        if not isinstance(value, dict):
            raise fail(where, name, f"is a {type(value).__name__}, not a dict",
                        "pass a dict (docs/workload-format.md)")
    for key, value in arrays.items():
        if not isinstance(value, (np.ndarray, NpzRows)):
            raise fail(where, str(key), f"is a {type(value).__name__}, not a numpy array",
                        "pass np.asarray(value, dtype=...) with the dtype docs/workload-format.md gives the key")


#: in-memory arrays up to this size are digested by content in :func:`state_digest`; larger ones (inputs of many
#: images) by identity, dtype and shape, so that a model's check of a validated workload stays cheap
DIGESTED_ARRAY_BYTES = 16 * 2**20


def state_digest(workload: Workload) -> str:
    """A digest of what validate() checks: the meta (as JSON) and every array's key, type, dtype and shape, with the
    bytes of each in-memory array of up to DIGESTED_ARRAY_BYTES (weights, biases, thresholds, rates, histograms,
    labels) and the identity of a larger one. Arrays read from a file by rows (NpzRows) cannot be changed."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(workload.meta, sort_keys=True, default=repr).encode("utf-8"))
    for key in sorted(workload.arrays, key=str):
        array = workload.arrays[key]
        shape, dtype = getattr(array, "shape", None), getattr(array, "dtype", None)
        digest.update(f"\0{key}\0{type(array).__name__}\0{dtype}\0{shape}".encode())
        if isinstance(array, np.ndarray):
            if array.nbytes <= DIGESTED_ARRAY_BYTES:
                digest.update(np.ascontiguousarray(array).view(np.uint8).reshape(-1) if array.size else b"")
            else:
                digest.update(str(id(array)).encode("ascii"))
        elif not isinstance(array, NpzRows):
            digest.update(repr(array).encode("utf-8"))  # not an array at all: validate() refuses it
    return digest.hexdigest()


def require_validated(workload: object, argument: str = "workload") -> Workload:
    """``workload`` as the models take it: a loaded Workload (a path or anything else is a one-line error saying
    which loader to call, not an AttributeError from inside a model), validated as it is now (built in memory and
    never validated, or changed since: :attr:`Workload.validated`)."""
    if not isinstance(workload, Workload):
        raise WorkloadError.at(None, argument, f"is a {type(workload).__name__} ({shown(workload)}), not a loaded "
                               "Workload", "pass read_workload(path)'s result")
    if not workload.validated:
        validate(workload)
    return workload


def validate(workload: Workload) -> Workload:
    """Validate a workload in place (format, shapes, dtypes, ranges, layer graph); its :attr:`Workload.validated`
    then holds until the workload is changed."""
    workload.checked_state = None
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
        raise fail(where, "meta.provenance", f"must be a JSON object, got {shown(meta['provenance'])}",
                    'put the notes under names, e.g. {"note": "..."}, or drop it')
    if not isinstance(meta.get("dataset", ""), (str, type(None))):
        raise fail(where, "meta.dataset", f"must be text (the dataset's name), got {shown(meta['dataset'])}",
                    "give its name, e.g. \"cifar10\", or drop it")
    _check_known_keys(where, "meta.neuron", meta["neuron"], NEURON_KEYS)
    _check_known_keys(where, "meta.quant", meta["quant"], QUANT_KEYS, typos_only=True)
    if meta["kind"] not in KINDS:
        raise fail(where, "meta.kind", f"unknown kind {meta['kind']!r}", f"use one of {', '.join(KINDS)}")
    name = meta["name"]  # it heads reports and summaries: one line of visible text, as an architecture's name
    if not name.strip() or any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in name):
        raise fail(where, "meta.name", f"must be one line of visible text, got {shown(name)}",
                    "give the network a name without line breaks or control characters")
    if meta["num_classes"] < 2:
        raise fail(where, "meta.num_classes", "must be at least 2", "fix the value")
    if not 1 <= meta["timesteps"] <= 1024:
        raise fail(where, "meta.timesteps", "must be between 1 and 1024", "fix the value")
    if meta.get("input_encoding", "direct") not in INPUT_ENCODINGS:
        raise fail(where, "meta.input_encoding", "unknown encoding", f"use one of {INPUT_ENCODINGS}")
    _check_input_shape(where, meta)
    shifts = meta["neuron"].get("decay_shifts")
    if not isinstance(shifts, list) or not shifts or not all(is_int(s) and 0 <= s < 32 for s in shifts):  # not true
        raise fail(
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
        validate_statistical(where, meta, arrays)
    else:
        _validate_inputs(workload)
    workload.checked_state = state_digest(workload)
    return workload


def _check_input_shape(where: str, meta: dict) -> None:
    """``meta.input_shape``: positive integers (a 0 stopped a flatten-first network in ZeroDivisionError); a
    trained or imported workload's direct images are [C, H, W] (x is [N, C, H, W])."""
    shape = meta["input_shape"]
    if not shape or not all(is_int(n) and n > 0 for n in shape):
        raise fail(where, "meta.input_shape", f"must be a list of positive integers, got {shown(shape)}",
                    "give [C, H, W] without the batch axis (a flat input of F features is [F, 1, 1])")
    direct = meta.get("input_encoding", "direct") == "direct"
    if direct and meta["kind"] != "statistical" and len(shape) != 3:
        raise fail(where, "meta.input_shape", f"is {shape}, but direct images are [C, H, W] (x is [N, C, H, W])",
                    "store a flat input of F features as [F, 1, 1] (x of shape [N, F, 1, 1])" if len(shape) == 1
                    else "give [C, H, W] without the batch axis")


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
        raise fail(where, f"{key}.{_key_text(name)}", "unknown key", did_you_mean(name, allowed) + more)


def _validate_neuron(where: str, neuron: dict, shifts: list[int]) -> None:
    """``meta.neuron``: the LIF model with reset to zero; ``tau``, when given, must be the shifts' decay."""
    for key, only in (("model", "lif"), ("reset", "zero")):
        if key in neuron and neuron[key] != only:
            raise fail(where, f"meta.neuron.{key}", f"{shown(neuron[key])} is not supported",
                        f"the simulator models {key} {only!r} only")
    decay = sum(2.0 ** -s for s in shifts)  # exact: a sum of a few powers of two
    tau = neuron.get("tau")
    if tau is None:
        return
    if not isinstance(tau, (int, float)) or isinstance(tau, bool) or tau != decay:
        raise fail(where, "meta.neuron.tau", f"{shown(tau)} is not the decay of decay_shifts {shifts} "
                    f"({decay:g}; the shifts decide it)", f"set tau to {decay:g} (or leave it out), or fix the shifts")


def _check_no_stray_arrays(where: str, meta: dict, arrays: dict, statistical: bool) -> None:
    """Every array belongs to a layer of the table (or to the inputs): a misnamed one must not be ignored."""
    layers = {layer["name"]: layer for layer in meta["layers"]}
    for key in arrays:
        prefix, _, name = key.partition("/")
        layer = layers.get(name)
        if prefix == SPIKE_ROWS and not statistical:
            raise fail(where, key, f"is a row profile of a statistical twin, but meta.kind is {meta['kind']!r} (its "
                        "spikes come from its weights and inputs)", "remove it (satasim workload stats writes row "
                        "profiles into the twin it fits)")
        if prefix == EXIT_STEPS and not statistical:
            raise fail(where, key, f"is a statistical twin's exit steps, but meta.kind is {meta['kind']!r} (its exits "
                        "come from its own output layer)", "remove it (satasim workload stats writes exit steps into "
                        "the twin it fits)")
        if statistical:
            frames = meta.get("input_encoding", "direct") == "spike_frames"
            known = (key == "seed" or prefix == "exit_hist" and name or key == INPUT_ROW_BITS and not frames
                     or prefix == SPIKE_ROWS and name  # checked in check_spike_rows, which names the fix
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
            raise fail(where, key, f"is not an array of this {what} workload's layer table",
                        "rename it after its layer (w/, b/, vth/ of a weighted or spiking layer; rate/, exit_hist/, "
                        "seed for statistical workloads), or remove it")


def _validate_quant(where: str, quant: dict) -> int:
    """``meta.quant``: membrane widths, weight width and the first layer's input shift; returns vmem_bits."""
    vmem_bits = quant.get("vmem_bits")
    if not is_int(vmem_bits) or not 8 <= vmem_bits <= 32:
        raise fail(where, "meta.quant.vmem_bits", f"must be an integer in 8..32, got {shown(vmem_bits)}",
                    "give the membranes' width in bits (the trainer writes 16)")
    out_bits = quant.get("output_vmem_bits", 32)
    if not is_int(out_bits) or not 8 <= out_bits <= 64:  # the forward saturates int64 output membranes
        raise fail(where, "meta.quant.output_vmem_bits", f"must be an integer in 8..64, got {shown(out_bits)}",
                    "give the output membranes' width in bits, or leave it out for 32")
    weight_bits = quant.get("weight_bits", 8)
    if weight_bits != 8:
        raise fail(where, "meta.quant.weight_bits", "only 8-bit weights are supported", "quantise to int8")
    shift = quant.get("input_shift", 0)
    if not is_int(shift) or not 0 <= shift <= INPUT_SHIFT_MAX:
        raise fail(where, "meta.quant.input_shift", f"must be an integer in 0..{INPUT_SHIFT_MAX} (a right shift of "
                    f"the first layer's int64 current), got {shown(shift)}", "re-export the workload")
    return vmem_bits


def _validate_exit_defaults(where: str, meta: dict) -> None:
    """``meta.exit_policy`` (the exit rules' defaults) and a statistical workload's ``meta.num_images``."""
    defaults = meta.get("exit_policy", {})
    if defaults is None:
        defaults = {}
    if not isinstance(defaults, dict):
        raise fail(where, "meta.exit_policy", f"must be a mapping, got {shown(defaults)}",
                    "e.g. {cl_init: 0.999, tau_cl: 0.999, theta: 0.1}")
    _check_known_keys(where, "meta.exit_policy", defaults, EXIT_PARAMETERS + ("default",))
    if not isinstance(defaults.get("default", "atsn"), str) or defaults.get("default", "atsn") not in POLICY_NAMES:
        raise fail(where, "meta.exit_policy.default", f"must be a policy name, got {shown(defaults['default'])}",
                    did_you_mean(str(defaults["default"]), POLICY_NAMES))
    for key in EXIT_PARAMETERS:  # the ranges AtsnPolicy and DtsnnPolicy accept (snn/exit_policies.py)
        value = defaults.get(key)
        if value is None:
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not 0 < value <= 1:
            raise fail(where, f"meta.exit_policy.{key}", f"must be a number in (0, 1], got {shown(value)}",
                        "the defaults are cl_init = tau_cl = 0.999, theta = 0.1")
    if meta["kind"] == "statistical":
        num = meta.get("num_images", 10000)
        if not is_int(num) or not 1 <= num <= MAX_STATISTICAL_IMAGES:
            raise fail(where, "meta.num_images", f"must be an integer in 1..10^9, got {shown(num)}",
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
            raise fail(
                where,
                f"vth/{name}",
                f"thresholds must be in 1..{vmax} for {vmem_bits}-bit membranes",
                "re-export with matching vmem_bits",
            )
    pooled_rate = statistical and ltype == "maxpool" and f"rate/{name}" in arrays
    if pooled_rate and not has_window_cores(layer["kernel"], layer["stride"]):
        raise fail(where, f"rate/{name}", f"a pooled rate needs windows with neurons of their own (kernel < 2 x "
                    f"stride), and {layer['kernel']}x{layer['kernel']} windows at stride {layer['stride']} have none",
                    "drop the rate; the pooled map is then the OR of its input")
    if pooled_rate:
        _check_pooled_source(where, meta["layers"], layer)
    if (statistical and is_spiking(layer)) or pooled_rate:
        rate = arrays.get(f"rate/{name}")
        if rate is None:
            raise fail(
                where, f"rate/{name}", "missing", "a statistical workload needs a rate for every spiking layer"
            )
        if rate.dtype.kind != "f":
            raise fail(where, f"rate/{name}", f"has dtype {rate.dtype}", "store rates as float64")
        if (
            rate.ndim not in (1, 2)
            or rate.shape[0] != meta["timesteps"]
            or (rate.ndim == 2 and rate.shape[1] != channels)
        ):
            raise fail(
                where,
                f"rate/{name}",
                f"has shape {rate.shape}",
                f"use [T] or [T, C] = [{meta['timesteps']}, {channels}]",
            )
        if not np.isfinite(rate).all() or (rate < 0).any() or (rate > 1).any():
            raise fail(where, f"rate/{name}", "rates must be finite and in [0, 1]", "fix the rates")
        if pooled_rate:
            problem = pool_rate_problem_of(layer, arrays[f"rate/{layer['inputs'][0]}"], rate)
            if problem:
                raise fail(where, f"rate/{name}", problem,
                            "give a pooled rate in that range, or drop it: the pooled map is then the OR of its input")


def _check_pooled_source(where: str, layers: list[dict], pool: dict) -> None:
    """A pooled rate is drawn together with the pool's input layer (docs/statistical.md, step 4): that input must be
    a spiking layer the pool alone reads, or the rate could not be kept and would be ignored."""
    src = pool["inputs"][0]
    source = next((layer for layer in layers if layer["name"] == src), None)
    readers = [layer["name"] for layer in layers if src in layer["inputs"] and layer is not pool]
    fix = "drop the rate; the pooled map is then the OR of its input"
    if source is None or not is_spiking(source):
        raise fail(where, f"rate/{pool['name']}", f"the pool reads {src!r}, not a spiking layer: a pooled rate is "
                    "drawn with the spiking layer it pools", fix)
    if readers:
        raise fail(where, f"rate/{pool['name']}", f"{src!r} also feeds {', '.join(readers)}: a pooled rate needs the "
                    "pool to be its input's only reader", fix)


def _array(arrays: dict, key: str, where: str, dtype: type, shape: tuple) -> np.ndarray:
    if key not in arrays:
        raise fail(where, key, "missing", f"add it: a {np.dtype(dtype).name} array of shape {tuple(shape)}, or write "
                    "the workload with this tool's writer")
    value = arrays[key]
    if value.dtype != dtype:
        raise fail(where, key, f"has dtype {value.dtype}", f"store it as {np.dtype(dtype).name}")
    if tuple(value.shape) != tuple(shape):
        raise fail(
            where,
            key,
            f"has shape {tuple(value.shape)}, the layer table needs {tuple(shape)}",
            "re-export the workload",
        )
    return value


def _validate_inputs(workload: Workload) -> None:
    where, meta, arrays = workload.source, workload.meta, workload.arrays
    if "x" not in arrays:
        raise fail(where, "x", "missing", "trained workloads embed their test inputs")
    x = arrays["x"]
    if x.dtype != np.uint8:
        raise fail(where, "x", f"has dtype {x.dtype}", "store images as uint8")
    shape = list(meta["input_shape"])
    if meta.get("input_encoding", "direct") == "direct":
        if x.ndim != 4 or list(x.shape[1:]) != shape:
            raise fail(
                where,
                "x",
                f"has shape {x.shape}, the network's input is {shape}",
                "the images do not match the first layer; re-export",
            )
    else:
        width = meta.get("input_width")
        if width is None:
            raise fail(where, "meta.input_width", "missing: spike frames are packed along their last axis",
                        f"store the unpacked width, {shape[-1]}")
        if width != shape[-1]:
            raise fail(where, "meta.input_width", f"{shown(width)} must equal the last input dimension, {shape[-1]}",
                        "fix the value")
        packed = shape[:-1] + [(width + 7) // 8]
        if x.ndim != 5 or x.shape[1] != meta["timesteps"] or list(x.shape[2:]) != packed:
            raise fail(
                where,
                "x",
                f"has shape {x.shape}, expected [N, T, {', '.join(map(str, packed))}]",
                "pack spike frames with np.packbits along the last axis",
            )
    _scan_inputs(where, meta, x)
    if "y" in arrays:
        y = arrays["y"]
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise fail(where, "y", f"has shape {y.shape} for {x.shape[0]} inputs", "give one label per input")
        if y.dtype.kind not in "iu":
            raise fail(where, "y", f"labels must be integers, got dtype {y.dtype}",
                        "store class indices, e.g. y.astype(np.int64) after checking they are whole numbers")
        if any(block.size and (block.min() < 0 or block.max() >= meta["num_classes"]) for block in array_blocks(y)):
            raise fail(where, "y", f"labels must be in 0..{meta['num_classes'] - 1}", "fix the labels")
    if x.shape[0] == 0:
        raise fail(where, "x", "holds no inputs", "embed at least one test input")


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


def check_inputs_whole(workload: Workload) -> None:
    """Read a workload's ``x`` through once whatever its size (its CRC checked, packed frames' spare bits), and a twin's
    row profiles (their range and pooled-rows checks), as reading does for those up to SCANNED_INPUT_BYTES: `workload
    info`, which vouches for the whole file."""
    if "x" in workload.arrays:
        _scan_inputs(workload.source, workload.meta, workload.arrays["x"], whole=True)
    arrays, meta = workload.arrays, workload.meta
    if workload.is_statistical and not profiles_scanned(arrays):
        if INPUT_ROW_BITS in arrays and meta.get("input_encoding", "direct") == "direct":
            check_input_row_bits(workload.source, meta, arrays[INPUT_ROW_BITS])
        check_spike_rows(workload.source, meta, arrays)


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
    if x.nbytes > schema.SCANNED_INPUT_BYTES and not whole:
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
    raise fail(where, "x", f"image {first + image}, t = {step + 1}: bits are set past meta.input_width {width} in "
                f"the last packed byte of a row (its last {spare} bits must be 0: the frames were packed at another "
                "width, or the file is damaged)", f"pack frames {width} wide with np.packbits(frames, axis=-1), or "
                "set meta.input_width to the width they were packed at")
