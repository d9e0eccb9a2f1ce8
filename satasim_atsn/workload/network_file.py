"""Network files: a network described as data (YAML), the one source of every network (DESIGN section 10).

A network file holds an input shape, the number of classes and named layers of the kinds the
workload format knows (``workload/format.py``), each naming its inputs::

    name: my_net
    input_shape: [3, 32, 32]
    num_classes: 10
    layers:
      - {name: conv1, type: conv, out_channels: 16, kernel: 3, padding: 1}
      - {name: pool1, type: maxpool, kernel: 2}
      - {name: flat, type: flatten}
      - {name: fc, type: output}

``inputs`` defaults to the previous layer (``input`` for the first). Shapes are inferred with the
format's own rules. Every mistake is a :class:`WorkloadError` naming the file, the layer and the
field. docs/networks.md is the reference; ``satasim_atsn/data/networks/`` holds the paper's two.
"""

from __future__ import annotations

import contextlib
import copy
import math
import numbers
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from satasim_atsn.errors import WorkloadError, did_you_mean, file_count, shown, whole_count
from satasim_atsn.fileio import load_yaml, starts_as_hdf5, starts_as_zip, yaml_syntax_fix
from satasim_atsn.workload.format import check_layer_size, validate_layers
from satasim_atsn.workload.schema import LAYER_TYPES, OUTPUT_MODES, emits_spikes, infer_out_shape

NETWORKS_DIR = Path(__file__).resolve().parent.parent / "data" / "networks"
#: the fixes of a file that is no network or lacks a top-level key: self-contained, for an installed package has
#: no docs/ (a shipped network file is the example to copy)
_EXAMPLE_FILE = (f"write 'input_shape:' and 'layers:' keys, as the shipped network "
                 f"{NETWORKS_DIR / 'vgg16.yaml'} does")
_MISSING_FIX = {
    "input_shape": "add it: [C, H, W] of an image (e.g. input_shape: [3, 32, 32]) or [features]",
    "layers": ("add a list of layers in order, one per line, e.g. '- {name: conv1, type: conv, out_channels: 64, "
               f"kernel: 3, stride: 1, padding: 1}}', '- {{name: flatten, type: flatten}}', ending in an output layer "
               f"'- {{name: fc, type: output}}' (as "
               f"{NETWORKS_DIR / 'vgg16.yaml'} does)"),
}
FILE_KEYS = ("name", "input_shape", "num_classes", "layers")
# per layer type: its keys in the order the layer dicts carry them, and their defaults
# (REQUIRED: no default; None: only present when given; SAME_AS_KERNEL: the layer's kernel)
REQUIRED = object()
SAME_AS_KERNEL = object()
LAYER_KEYS: dict[str, dict[str, object]] = {
    "conv": {"kernel": REQUIRED, "stride": 1, "padding": 0, "out_channels": REQUIRED, "spiking": True},
    "linear": {"out_features": REQUIRED, "spiking": True},
    "maxpool": {"kernel": REQUIRED, "stride": SAME_AS_KERNEL},
    "avgpool": {},
    "flatten": {},
    "add": {"shortcut_gain": None},
    "output": {"out_features": None, "output_mode": "membrane", "logit_scale": 1.0},
}
COMMON_KEYS = ("name", "type", "inputs")
POSITIVE_INTS = ("kernel", "stride", "out_channels", "out_features", "shortcut_gain")


@dataclass
class NetworkSpec:
    """A parsed, checked network file: layers in execution order, without shapes."""

    name: str
    source: str
    input_shape: list[int]
    num_classes: int | None
    layers: list[dict]
    file_index: dict[str, int] = field(default_factory=dict)  # layer name -> its index in the file's list

    def relabel(self, error: WorkloadError) -> WorkloadError:
        """``error`` with every layer label (``meta.layers[i] (name)``, the workload table's index in execution
        order) written as the file's own ``layers[k] (name)``, so that it points at the line the user wrote."""
        def file_label(match: re.Match) -> str:
            i = int(match.group(1))
            if i >= len(self.layers):
                return match.group(0)
            name = self.layers[i]["name"]
            return f"layers[{self.file_index.get(name, i)}] ({name})"

        names = "|".join(sorted((re.escape(ly["name"]) for ly in self.layers), key=len, reverse=True))
        # the label's name is matched exactly: a name may hold ')' (it is any printable text without '/')
        text = re.sub(rf"(?:meta\.)?layers\[(\d+)\](?: \((?:{names})\))?", file_label, str(error))
        return error if text == str(error) else WorkloadError(text)

    @property
    def has_output(self) -> bool:
        """True when the network ends in an output layer (else its last layer is spiking)."""
        return self.layers[-1]["type"] == "output"

    def body(self, width: float = 1.0) -> list[dict]:
        """The layers before the output layer, channels scaled by ``width`` (no shapes), for the trainer."""
        layers = scaled_layers(self.layers, check_width(width, self.source))
        return layers[:-1] if self.has_output else layers

    def build(self, num_classes: int | None = None, width: float = 1.0,
              identity_gain: int | None = None) -> list[dict]:
        """The layer table of the workload format, with shapes (see :func:`shaped_layers`)."""
        classes = (self.num_classes if num_classes is None
                   else whole_count(num_classes, self.source, "num_classes", WorkloadError))
        if classes is not None and classes < 2:
            raise WorkloadError.at(self.source, "num_classes", f"{classes} is not an integer >= 2",
                                   "give the number of classes of the dataset (e.g. 10)")
        layers = with_identity_gain(scaled_layers(self.layers, check_width(width, self.source)), identity_gain,
                                    keep=True)
        try:
            return shaped_layers(layers, self.input_shape, classes, self.source)
        except WorkloadError as error:
            raise self.relabel(error) from None


def with_identity_gain(layers: list[dict], gain: int | None, keep: bool = False) -> list[dict]:
    """Store ``shortcut_gain = gain`` on every add whose shortcut is spikes (``keep``: not where one is given)."""
    if gain is not None:
        spiking = {"input"} | {ly["name"] for ly in layers if emits_spikes(ly)}
        for ly in layers:
            if ly["type"] == "add" and ly["inputs"][1] in spiking and not (keep and "shortcut_gain" in ly):
                ly["shortcut_gain"] = int(gain)
    return layers


def check_width(width: float, where: str) -> float:
    """``width`` when it is a positive finite number (a channel multiplier); else a WorkloadError naming it (0 or
    a negative one made every layer one channel wide, NaN and a string failed inside round())."""
    if isinstance(width, bool) or not isinstance(width, numbers.Real) or not math.isfinite(width) or width <= 0:
        raise WorkloadError.at(where, "width", f"must be a positive finite number, got {shown(width)}",
                               "1.0 keeps the network's channel counts, 0.5 halves them")
    return float(width)


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def scaled_layers(layers: list[dict], width: float) -> list[dict]:
    """A copy with every conv's ``out_channels`` and linear's ``out_features`` times ``width`` (rounded, >= 1)."""
    out = copy.deepcopy(layers)
    if width != 1.0:
        for ly in out:
            if ly["type"] == "conv":
                ly["out_channels"] = _scaled(ly["out_channels"], width)
            elif ly["type"] == "linear":
                ly["out_features"] = _scaled(ly["out_features"], width)
    return out


def _label(index: int, layer: dict) -> str:
    name = layer.get("name") if isinstance(layer, dict) else None
    return f"layers[{index}] ({name})" if isinstance(name, str) else f"layers[{index}]"


def shaped_layers(layers: list[dict], input_shape: list[int], num_classes: int | None,
                  where: str = "<network>") -> list[dict]:
    """Fill ``in_shape``/``out_shape`` (a copy); a mismatch names the layer and the layers feeding it."""
    layers = copy.deepcopy(layers)
    shapes = {"input": list(input_shape)}
    for index, ly in enumerate(layers):
        ins = [shapes[src] for src in ly["inputs"]]
        if ly["type"] == "output":
            if num_classes is None:
                raise WorkloadError.at(where, "num_classes", "missing", "an output layer needs num_classes")
            rest = {k: v for k, v in ly.items() if k not in COMMON_KEYS + ("out_features",)}
            head = {k: ly[k] for k in COMMON_KEYS}
            ly.clear()
            ly.update(head, out_features=int(num_classes), **rest)
        try:
            out = infer_out_shape(ly, ins, int(num_classes or 0))
        except ValueError as error:
            fed = ", ".join(f"{src!r} gives {shapes[src]}" for src in ly["inputs"])
            raise WorkloadError.at(where, _label(index, ly), f"shape mismatch: {error} ({fed})",
                                   "fix this layer or the layers feeding it") from None
        if ly["type"] != "add" and len(out) == 3 and min(out[1:]) <= 0:
            raise WorkloadError.at(where, _label(index, ly), f"output shape {out} is empty", "use a smaller kernel")
        check_layer_size(where, _label(index, ly), ly, ins[0], out)
        ly["in_shape"], ly["out_shape"] = list(ins[0]), out
        shapes[ly["name"]] = out
    return layers


def _positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _null_fix(kind: str, key: str, default: object) -> str:
    """The fix for ``key: null``: a required key needs a value; another takes its default when left out."""
    if default is REQUIRED:
        return f"{kind} layers need {key}"
    shown_default = "the kernel" if default is SAME_AS_KERNEL else (
        str(default).lower() if isinstance(default, bool) else str(default))
    return f"give a value, or leave {key} out (default: {shown_default})"


def _parse_layer(index: int, raw, previous: str, where: str) -> dict:
    """One layer entry -> a layer dict with the canonical keys (defaults filled in)."""
    if not isinstance(raw, dict):
        raise WorkloadError.at(where, f"layers[{index}]", "must be a mapping", "write {name: ..., type: ...}")
    label = _label(index, raw)
    name = raw.get("name")
    if (not isinstance(name, str) or not name or "/" in name or name == "input"
            or any(not ch.isprintable() or ch.isspace() for ch in name)):
        raise WorkloadError.at(where, f"{label}.name", f"{name!r} is not a usable name",
                               "give a non-empty string without '/', spaces or control characters, other than "
                               "'input'")
    kind = raw.get("type")
    if kind not in LAYER_TYPES:
        raise WorkloadError.at(where, f"{label}.type", f"unknown layer type {kind!r}",
                               did_you_mean(str(kind), LAYER_TYPES))
    allowed = COMMON_KEYS + tuple(LAYER_KEYS[kind])
    for key in raw:
        if key not in allowed:
            raise WorkloadError.at(where, f"{label}.{key}", f"unknown key for a {kind} layer",
                                   did_you_mean(key, allowed))
    inputs = raw.get("inputs", [previous])
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(s, str) and s for s in inputs):
        raise WorkloadError.at(where, f"{label}.inputs", f"{inputs!r} is not a list of layer names",
                               "write inputs: [a] (or [main, shortcut] for add)")
    wanted = 2 if kind == "add" else 1
    if len(inputs) != wanted:
        article = "an" if kind[0] in "aeiou" else "a"
        raise WorkloadError.at(where, f"{label}.inputs", f"{article} {kind} layer takes {wanted} input"
                               f"{'s' if wanted != 1 else ''}, got {len(inputs)}",
                               "add joins name [main current, shortcut]; every other layer names one input")
    layer: dict = {"name": name, "type": kind, "inputs": list(inputs)}
    for key, default in LAYER_KEYS[kind].items():
        if key in raw and raw[key] is None and default is not None:  # an explicit null is not "left out"
            raise WorkloadError.at(where, f"{label}.{key}", "is null", _null_fix(kind, key, default))
        value = raw.get(key, default)
        if value is REQUIRED:
            raise WorkloadError.at(where, f"{label}.{key}", "missing", f"{kind} layers need {key}")
        if value is SAME_AS_KERNEL:
            value = layer["kernel"]
        if value is None:
            continue
        field = f"{label}.{key}"
        if key in POSITIVE_INTS + ("padding",) and file_count(value) is not None:
            value = file_count(value)  # 2.0 and '1e3' are whole numbers (as architecture files take them)
        if key in POSITIVE_INTS and not _positive_int(value):
            raise WorkloadError.at(where, field, f"must be a positive integer, got {value!r}", "fix the value")
        if key == "padding" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise WorkloadError.at(where, field, f"must be a non-negative integer, got {value!r}", "fix the value")
        if key == "spiking" and not isinstance(value, bool):
            raise WorkloadError.at(where, field, f"must be true or false, got {value!r}", "fix the value")
        if key == "output_mode" and value not in OUTPUT_MODES:
            raise WorkloadError.at(where, field, f"unknown mode {value!r}", did_you_mean(str(value), OUTPUT_MODES))
        if key == "logit_scale" and isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as text
            with contextlib.suppress(ValueError):
                value = float(value.replace("_", ""))
        if key == "logit_scale" and not (
            isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < float("inf")
        ):
            raise WorkloadError.at(where, field, f"must be a positive number, got {value!r}", "fix the value")
        layer[key] = float(value) if key == "logit_scale" else value
    return layer


def _execution_order(layers: list[dict], where: str) -> list[dict]:
    """Layers sorted so that every layer comes after its inputs (file order where free); cycles are errors."""
    by_name = {ly["name"]: ly for ly in layers}
    position = {ly["name"]: i for i, ly in enumerate(layers)}
    for i, ly in enumerate(layers):
        for src in ly["inputs"]:
            if src != "input" and src not in by_name:
                raise WorkloadError.at(where, f"{_label(i, ly)}.inputs", f"names no layer {src!r}",
                                       did_you_mean(src, ["input"] + list(by_name)))
            if src == ly["name"]:
                raise WorkloadError.at(where, f"{_label(i, ly)}.inputs", "a layer cannot feed itself",
                                       "name an earlier layer")
    done: set[str] = {"input"}
    order: list[dict] = []
    pending = list(layers)
    while pending:
        ready = [ly for ly in pending if all(src in done for src in ly["inputs"])]
        if not ready:
            cycle = _find_cycle(pending)
            raise WorkloadError.at(where, "layers", "the inputs form a cycle: " + " -> ".join(cycle),
                                   "a layer may only take inputs that do not depend on it")
        first = min(ready, key=lambda ly: position[ly["name"]])
        order.append(first)
        done.add(first["name"])
        pending.remove(first)
    return order


def _find_cycle(pending: list[dict]) -> list[str]:
    """Names along one cycle among layers that can never run (each waits for another pending one)."""
    waiting = {ly["name"]: [s for s in ly["inputs"] if s in {p["name"] for p in pending}] for ly in pending}
    name = pending[0]["name"]
    seen: list[str] = []
    while name not in seen:
        seen.append(name)
        name = waiting[name][0]
    return seen[seen.index(name):] + [name]


def parse_network(data: Any, where: str, default_name: str = "network") -> NetworkSpec:
    """Check a loaded network document and return its spec (layers ordered, shapes checked)."""
    if not isinstance(data, dict):
        raise WorkloadError.at(where, None, "must be a YAML mapping", _EXAMPLE_FILE)
    for key in data:
        if key not in FILE_KEYS:
            raise WorkloadError.at(where, str(key), "unknown key", did_you_mean(str(key), FILE_KEYS))
    for key in ("input_shape", "layers"):
        if key not in data:
            raise WorkloadError.at(where, key, "missing", _MISSING_FIX[key])
    shape = data["input_shape"]
    if isinstance(shape, list) and all(file_count(v) is not None for v in shape):
        shape = [file_count(v) for v in shape]  # 32.0 and '32' are whole numbers (as architecture files take them)
    if not (isinstance(shape, list) and len(shape) in (1, 3) and all(_positive_int(v) for v in shape)):
        raise WorkloadError.at(where, "input_shape", f"{shape!r} is not [C, H, W] or [features] of positive integers",
                               "e.g. input_shape: [3, 32, 32]")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name:
        raise WorkloadError.at(where, "name", f"{name!r} is not a non-empty string",
                               f"name the network, or drop the key to use {default_name!r}")
    if not name.strip() or any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in name):
        raise WorkloadError.at(where, "name", f"{name!r} is not one line of visible text",  # it heads every result
                               f"give a name without line breaks or control characters, or drop the key to use "
                               f"{default_name!r}")
    classes = data.get("num_classes")
    classes = classes if file_count(classes) is None else file_count(classes)  # 10.0 is 10, as in arch files
    if classes is not None and not (_positive_int(classes) and classes >= 2):
        raise WorkloadError.at(where, "num_classes", f"{classes!r} is not an integer >= 2", "fix the value")
    raw_layers = data["layers"]
    if not isinstance(raw_layers, list) or not raw_layers:
        raise WorkloadError.at(where, "layers", "must be a non-empty list", _MISSING_FIX["layers"])
    layers: list[dict] = []
    seen: dict[str, int] = {}
    previous = "input"
    for index, raw in enumerate(raw_layers):
        layer = _parse_layer(index, raw, previous, where)
        if layer["name"] in seen:
            raise WorkloadError.at(where, f"{_label(index, layer)}.name",
                                   f"duplicate of layers[{seen[layer['name']]}]", "give every layer a unique name")
        seen[layer["name"]] = index
        layers.append(layer)
        previous = layer["name"]
    outputs = [ly["name"] for ly in layers if ly["type"] == "output"]
    if len(outputs) > 1:
        raise WorkloadError.at(where, "layers", f"{len(outputs)} output layers ({', '.join(outputs)})",
                               "give the network one output layer, the last")
    ordered = _execution_order(layers, where)
    consumers = {src for ly in ordered for src in ly["inputs"]}
    for ly in ordered[:-1]:
        if ly["type"] == "output":
            raise WorkloadError.at(where, f"{_label(seen[ly['name']], ly)}", "an output layer must be the last layer",
                                   "nothing may consume the output layer")
        if ly["name"] not in consumers:
            raise WorkloadError.at(where, f"{_label(seen[ly['name']], ly)}", "is not an input of any layer",
                                   f"every layer must lead to the last one ({ordered[-1]['name']!r})")
    if "input" not in consumers:
        raise WorkloadError.at(where, "layers", "no layer takes 'input'", "let the first layer read the input")
    has_output = ordered[-1]["type"] == "output"
    if has_output:
        classes = _output_classes(where, ordered[-1], _label(seen[ordered[-1]["name"]], ordered[-1]), classes)
    spec = NetworkSpec(name=name, source=where, input_shape=list(shape), num_classes=classes, layers=ordered,
                       file_index=dict(seen))
    try:
        shaped = shaped_layers(spec.layers, spec.input_shape, classes, where)  # shape errors now, naming the layers
    except WorkloadError as error:
        raise spec.relabel(error) from None
    if not has_output:  # its spike counts are the output: one class per neuron of the last layer
        _check_spiking_end(where, _label(seen[shaped[-1]["name"]], shaped[-1]), shaped[-1], classes)
    _check_graph(spec, shaped)
    return spec


def _check_graph(spec: NetworkSpec, shaped: list[dict]) -> None:
    """The workload format's rules for the layer graph (what may read a current, a join's inputs, the last layer),
    now: a file they refuse was refused only when its workload was written, after a whole training. The rules of a
    direct-encoded image, and an identity shortcut's gain, wait for the build or the training: a file does not say
    how its input is encoded or quantised."""
    classes = spec.num_classes if spec.num_classes is not None else int(math.prod(shaped[-1]["out_shape"]))
    # an identity shortcut's gain is the build's (with_identity_gain): any valid one stands in for it here
    layers = with_identity_gain(shaped, 1, keep=True)  # parse_network's own copy, dropped after the checks
    meta = {"layers": layers, "input_shape": list(spec.input_shape), "num_classes": classes,
            "input_encoding": "spike_frames"}
    try:
        validate_layers(meta, spec.source)
    except WorkloadError as error:
        raise spec.relabel(error) from None


def _output_classes(where: str, out: dict, label: str, classes: int | None) -> int:
    """The class count of a network ending in the output layer ``out``: num_classes, else the layer's out_features
    (docs/networks.md documents both; given both, they must agree). Drops out_features from ``out``: num_classes (or
    --dataset) sets it when shapes are filled in."""
    given = out.pop("out_features", None)
    if classes is None and given is not None and given < 2:
        raise WorkloadError.at(where, f"{label}.out_features", f"is {given}, but the output layer needs one neuron "
                               "per class (at least 2)", "give the number of classes of the dataset (e.g. 10)")
    if classes is not None and given is not None and given != classes:
        raise WorkloadError.at(where, f"{label}.out_features", f"is {given} but num_classes is {classes}",
                               "drop it or make them equal")
    if classes is None and given is None:
        raise WorkloadError.at(where, "num_classes", "missing", "a network with an output layer needs num_classes "
                               "(or the output layer's out_features)")
    return classes if classes is not None else given


def _check_spiking_end(where: str, label: str, last: dict, classes: int | None) -> None:
    """A network without an output layer ends in a spiking layer of at least 2 neurons, one per class."""
    if not emits_spikes(last):
        raise WorkloadError.at(where, label, f"a {last['type']} layer "
                               f"{'without spikes ' if last['type'] in ('conv', 'linear') else ''}cannot end "
                               "a network", "end it with an output layer or a spiking layer")
    neurons = int(math.prod(last["out_shape"]))
    if neurons < 2:
        raise WorkloadError.at(where, label, f"ends the network with {neurons} spiking neuron, whose spike count "
                               "would be the only class", "give the last layer at least 2 neurons (one per class), "
                               "or end with an output layer")
    if classes is not None and classes != neurons:
        raise WorkloadError.at(where, "num_classes", f"is {classes} but the network ends in the spiking layer "
                               f"{last['name']!r} of {neurons} neurons, whose spike counts are the output",
                               f"drop num_classes or make it {neurons}")


def load_network(path: str | Path) -> NetworkSpec:
    """Read and check a network YAML file (raises WorkloadError naming the file, layer and field)."""
    where = str(path)
    if not isinstance(path, (str, os.PathLike)):  # a script's None: Path() would raise a bare TypeError
        raise WorkloadError.at(where, None, f"is a {type(path).__name__}, not a path",
                               "give the network file's path as a str or pathlib.Path")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        if where in shipped_networks():  # load_network takes a path; a shipped name is resolve_network's
            raise WorkloadError.at(where, None, "no such file", f"load the shipped network by name with "
                                   f"resolve_network({where!r}), or give its path") from None
        raise WorkloadError.at(where, None, "no such file",
                               f"give a network YAML file or one of {', '.join(shipped_networks())}") from None
    except IsADirectoryError:
        raise WorkloadError.at(where, None, "is a directory, not a network YAML file",
                               f"give a network YAML file or one of {', '.join(shipped_networks())}") from None
    except (OSError, UnicodeDecodeError) as error:
        if starts_as_zip(path):  # a workload or rate-table mix-up: say what the file is
            raise WorkloadError.at(where, None, "is a workload (.npz), not a network YAML file",
                                   "give the network file (docs/networks.md) the workload was built from or trained "
                                   f"as, or one of {', '.join(shipped_networks())}") from None
        if starts_as_hdf5(path):  # it was "cannot be read (UnicodeDecodeError); check the path"
            raise WorkloadError.at(where, None, "is an HDF5 file (a NIR graph), not a network YAML file",
                                   "import it as a workload (satasim workload import MODEL.nir --inputs X.npz -o "
                                   f"W.npz), or give a network YAML file or one of {', '.join(shipped_networks())}") \
                from None
        if isinstance(error, UnicodeDecodeError):  # the path is fine: the bytes are not UTF-8 text
            raise WorkloadError.at(where, None, f"cannot be read as text ({error.reason} at byte {error.start})",
                                   "save it as a UTF-8 YAML file") from None
        raise WorkloadError.at(where, None, f"cannot be read ({error.strerror or type(error).__name__})",
                               "check the path and its permissions") from None
    try:
        data = load_yaml(text, where, WorkloadError)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise WorkloadError.at(where, None, f"is not valid YAML{at}", yaml_syntax_fix(text, error, "fix the syntax")) \
            from None
    kind = yaml_file_kind(data)
    if kind not in (None, "network"):
        raise WorkloadError.at(where, None, f"is {YAML_FILE_KINDS[kind]}, not a network file",
                               f"give a network file (docs/networks.md) or one of {', '.join(shipped_networks())} "
                               "as --network")
    return parse_network(data, where, default_name=Path(path).stem)


#: the tool's YAML files, as a refusal of one given in another's place names them
YAML_FILE_KINDS = {"network": "a network file (docs/networks.md)",
                   "rates": "a rate table (workload build takes it as --rates)",
                   "arch": "an architecture (archs/*.yaml; satasim run takes it)",
                   "study": "a study (satasim sweep runs it)"}


def yaml_file_kind(data: Any) -> str | None:
    """Which of the tool's YAML files (a key of YAML_FILE_KINDS) ``data`` is by its top-level keys, None if they do
    not say: a file given in another's place is then refused as what it is, not for its first unknown key."""
    if not isinstance(data, dict):
        return None
    if "layers" in data:  # a rate table has no layers; a network missing its input_shape is still a network
        return "network"
    if "network" in data and ("datasets" in data or "rates" in data or "default_rate" in data):
        return "rates"
    if "pe" in data and "array" in data:
        return "arch"
    if "vary" in data or ("mode" in data and "metrics" in data):
        return "study"
    return None


def shipped_networks() -> tuple[str, ...]:
    """Names of the network files shipped with the package (satasim_atsn/data/networks/)."""
    return tuple(sorted(p.stem for p in NETWORKS_DIR.glob("*.yaml")))


def shipped_network_path(name: str) -> Path:
    """The path of a shipped network file."""
    return NETWORKS_DIR / f"{name}.yaml"


def resolve_network(name_or_path: str) -> NetworkSpec:
    """A shipped network by bare name (``vgg16``), else a network YAML file by path."""
    if name_or_path in shipped_networks():
        return load_network(shipped_network_path(name_or_path))
    if not name_or_path.strip():
        raise WorkloadError.at(None, "--network", "is empty",
                               f"give a network YAML file or one of {', '.join(shipped_networks())}")
    path = Path(name_or_path)
    if path.suffix.lower() not in (".yaml", ".yml") and not path.exists():
        raise WorkloadError.at(None, "--network", f"unknown network {name_or_path!r}",
                               did_you_mean(name_or_path.lower(), shipped_networks(),
                                            "give a network YAML file or one of"))
    return load_network(path)
