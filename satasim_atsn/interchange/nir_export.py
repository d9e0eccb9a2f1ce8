"""NIR export: a workload's integer network as a NIR graph with integer-valued parameters (the mapping is
nir_import.py's, written backwards), so that it imports back to the same integers and the same spikes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from satasim_atsn.errors import WorkloadError
from satasim_atsn.interchange.nir_files import require_nir
from satasim_atsn.interchange.nir_graph import DEFAULT_DT, META_KEY, unique_name
from satasim_atsn.snn.neurons import shifts_to_tau
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.schema import emits_spikes, is_spiking


def export_nir(workload: Workload, dt: float = DEFAULT_DT) -> Any:
    """The workload's integer network as a NIR graph (integer-valued parameters; see the module docstring)."""
    nir = require_nir()
    if workload.is_statistical:
        raise WorkloadError.at(workload.source, "meta.kind", "is statistical: it has no weights to export",
                               "export a trained or imported workload")
    exp = _GraphExport(nir, workload, dt)
    for index, ly in enumerate(workload.layers):
        src = exp.out_node[ly["inputs"][0]]
        handler = exp.HANDLERS.get(ly["type"])
        if handler is not None:
            handler(exp, index, ly, src)
    if not workload.has_output:  # a spiking end: the Output reads its spikes, whose counts over T are the classes
        last = workload.layers[-1]
        output = unique_name("output", exp.taken)
        exp.nodes[output] = nir.Output(output_type={"output": np.array(last["out_shape"])})
        exp.edges.append((exp.out_node[last["name"]], output))
    return nir.NIRGraph(nodes=exp.nodes, edges=exp.edges,
                        metadata={META_KEY: json.dumps(_export_meta(workload, dt), sort_keys=True)}, type_check=False)


def _export_meta(workload: Workload, dt: float) -> dict:
    """What an import needs beyond the graph to give back the same integers (the graph's ``satasim`` metadata),
    and the class names of a network trained on an image folder (so an import's evaluate can check them)."""
    layers = workload.layers
    names = (workload.meta.get("provenance") or {}).get("class_names")
    named = (isinstance(names, list) and len(names) == workload.num_classes
             and all(isinstance(n, str) for n in names))
    return ({"class_names": list(names)} if named else {}) | {
        "format": "satasim-nir",
        "version": 1,
        "dt": dt,
        "name": workload.name,
        "dataset": workload.meta.get("dataset"),
        "timesteps": workload.timesteps,
        "input_encoding": workload.input_encoding,
        "input_scale": 1.0,
        "decay_shifts": list(workload.decay_shifts),
        "vmem_bits": workload.vmem_bits,
        "output_vmem_bits": int(workload.meta["quant"].get("output_vmem_bits", 32)),
        "output_mode": layers[-1].get("output_mode", "spike_count"),
        "logit_scale": float(layers[-1].get("logit_scale", 1.0)),
        "exit_policy": workload.meta.get("exit_policy", {}),
        "layer_order": [ly["name"] for ly in layers],
    }


class _GraphExport:
    """One NIR export under way: the nodes and edges so far, and the node carrying each layer's output."""

    def __init__(self, nir, workload: Workload, dt: float) -> None:
        self.nir, self.workload, self.dt = nir, workload, dt
        beta = shifts_to_tau(workload.decay_shifts)
        self.tau = dt / (1.0 - beta) if beta < 1 else None
        layers = workload.layers
        self.taken = {ly["name"] for ly in layers} | {"input"}
        self.nodes: dict = {"input": nir.Input(input_type={"input": np.array(workload.input_shape)})}
        self.edges: list[tuple[str, str]] = []
        self.out_node: dict[str, str] = {"input": "input"}  # layer -> the NIR node carrying its output
        self.add_bias = {ly["inputs"][0]: workload.arrays.get(f"b/{ly['name']}") for ly in layers
                         if ly["type"] == "add"}
        self.direct = workload.input_encoding == "direct"
        # the layer that reads the image's pixels, at index 0 or behind a flatten (as snn/forward.py has it)
        self.first_weighted = next(ly["name"] for ly in layers if ly["type"] in ("conv", "linear", "output"))

    def image_gain(self, ly: dict) -> float:
        """2**-input_shift for the layer that reads a direct image, 1 for every other."""
        return 2.0 ** -self.workload.input_shift if ly["name"] == self.first_weighted and self.direct else 1.0

    def neuron(self, shape: Sequence[int], vth: np.ndarray | float, gain: float) -> Any:
        """An IF (no decay) or LIF node with the integer thresholds ``vth`` per channel and input gain ``gain``."""
        nir, dt, tau = self.nir, self.dt, self.tau
        shape = tuple(int(v) for v in shape)
        thr = np.broadcast_to(np.asarray(vth, dtype=np.float64).reshape((-1,) + (1,) * (len(shape) - 1)), shape)
        if tau is None:
            return nir.IF(r=np.full(shape, gain / dt), v_threshold=thr.copy(), v_reset=np.zeros(shape))
        return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, gain * tau / dt), v_leak=np.zeros(shape),
                       v_threshold=thr.copy(), v_reset=np.zeros(shape))

    def weighted(self, ly: dict) -> Any:
        """The Conv2d or Affine node of a conv/linear/output layer (an add's bias joins its main current)."""
        w = self.workload.weights(ly["name"]).astype(np.float64)
        b = self.workload.arrays.get(f"b/{ly['name']}")
        b = np.zeros(w.shape[0]) if b is None else b.astype(np.float64)
        if self.add_bias.get(ly["name"]) is not None:
            b = b + self.add_bias[ly["name"]].astype(np.float64)
        if ly["type"] == "conv":
            return self.nir.Conv2d(input_shape=tuple(ly["in_shape"][1:]), weight=w, stride=int(ly["stride"]),
                                   padding=int(ly["padding"]), dilation=1, groups=1, bias=b)
        return self.nir.Affine(weight=w, bias=b)

    def _conv_linear(self, index: int, ly: dict, src: str) -> None:
        name, workload = ly["name"], self.workload
        self.nodes[name] = self.weighted(ly)
        self.edges.append((src, name))
        self.out_node[name] = name
        if is_spiking(ly):
            gain = self.image_gain(ly)
            lif = unique_name(f"{name}_lif", self.taken)
            self.nodes[lif] = self.neuron(ly["out_shape"], workload.vth(name), gain)
            self.edges.append((name, lif))
            self.out_node[name] = lif

    def _add(self, index: int, ly: dict, src: str) -> None:
        name, workload = ly["name"], self.workload
        self.nodes[name] = self.neuron(ly["out_shape"], workload.vth(name), 1.0)
        self.edges.append((src, name))
        short = self.out_node[ly["inputs"][1]]
        if is_spiking(workload.layer(ly["inputs"][1])) or emits_spikes(workload.layer(ly["inputs"][1])):
            gain = unique_name(f"{name}_gain", self.taken)
            self.nodes[gain] = self.nir.Scale(scale=np.full(tuple(ly["out_shape"]), float(ly["shortcut_gain"])))
            self.edges += [(short, gain), (gain, name)]
        else:
            self.edges.append((short, name))
        self.out_node[name] = name

    def _maxpool(self, index: int, ly: dict, src: str) -> None:
        nir, name = self.nir, ly["name"]
        k, s = int(ly["kernel"]), int(ly["stride"])
        self.nodes[name] = nir.SumPool2d(kernel_size=np.array([k, k]), stride=np.array([s, s]),
                                         padding=np.array([0, 0]))
        gate = unique_name(f"{name}_or", self.taken)
        shape = tuple(ly["out_shape"])
        self.nodes[gate] = nir.IF(r=np.full(shape, 1.0 / self.dt), v_threshold=np.full(shape, 0.5),
                                  v_reset=np.zeros(shape))
        self.edges += [(src, name), (name, gate)]
        self.out_node[name] = gate

    def _avgpool(self, index: int, ly: dict, src: str) -> None:
        nir, name = self.nir, ly["name"]
        c, h, w = ly["in_shape"]
        self.nodes[name] = nir.SumPool2d(kernel_size=np.array([h, w]), stride=np.array([h, w]),
                                         padding=np.array([0, 0]))
        flat = unique_name(f"{name}_flat", self.taken)
        self.nodes[flat] = nir.Flatten(input_type={"input": np.array([c, 1, 1])}, start_dim=0, end_dim=-1)
        self.edges += [(src, name), (name, flat)]
        self.out_node[name] = flat

    def _flatten(self, index: int, ly: dict, src: str) -> None:
        name = ly["name"]
        self.nodes[name] = self.nir.Flatten(input_type={"input": np.array(ly["in_shape"])}, start_dim=0, end_dim=-1)
        self.edges.append((src, name))
        self.out_node[name] = name

    def _output(self, index: int, ly: dict, src: str) -> None:
        nir, name, dt, tau = self.nir, ly["name"], self.dt, self.tau
        self.nodes[name] = self.weighted(ly)
        self.edges.append((src, name))
        c = int(ly["out_shape"][0])
        gain = self.image_gain(ly)  # an output layer reading the image itself
        if ly["output_mode"] == "membrane" and tau is not None:
            read = unique_name(f"{name}_li", self.taken)
            self.nodes[read] = nir.LI(tau=np.full(c, tau), r=np.full(c, gain * tau / dt), v_leak=np.zeros(c))
        else:  # accumulate (or membrane with beta = 1, which is the same running sum)
            read = unique_name(f"{name}_int", self.taken)
            self.nodes[read] = nir.I(r=np.full(c, gain / dt))
        output = unique_name("output", self.taken)
        self.nodes[output] = nir.Output(output_type={"output": np.array([c])})
        self.edges += [(name, read), (read, output)]

    HANDLERS = {"conv": _conv_linear, "linear": _conv_linear, "add": _add, "maxpool": _maxpool,
                "avgpool": _avgpool, "flatten": _flatten, "output": _output}
