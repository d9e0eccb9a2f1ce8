"""NIR (Neuromorphic Intermediate Representation) import and export, with the optional ``nir`` package.

NIR describes a network in continuous time; an import discretises it with forward Euler at a
step ``dt`` (default 1e-4 s, snnTorch's export convention) and maps it onto the workload format.
docs/networks.md has the full mapping; in short, per timestep:

- LIF ``tau dv/dt = (v_leak - v) + r I``: ``v <- beta v + g I + l`` with ``beta = 1 - dt/tau``,
  ``g = dt r / tau``, ``l = dt v_leak / tau``; spike when ``v > v_threshold``, then ``v <- v_reset``
  (0 is the only reset supported). IF: ``beta = 1``, ``g = dt r``. CubaLIF only with
  ``tau_syn = dt`` (no synaptic memory), ``g = w_in dt r / tau_mem``. Our integer LIF is the same
  with ``beta`` as shift-adds (one ``beta`` for the whole network) and floor rounding.
- Conv2d/Linear/Affine before a neuron: a spiking conv/linear layer, ``g`` folded into the
  weights; two currents (or a current and spikes, through a Scale for the gain) into one
  neuron: a residual ``add``.
- SumPool2d/AvgPool2d followed by an IF/LIF whose threshold lies in [0, one spike's current):
  spike max-pooling, exactly (the neuron fires iff a window holds a spike and never keeps
  charge). A global pool (window = map) before Flatten and Affine/Linear: ``avgpool``
  (AvgPool2d's 1/window folded into the next weights).
- Affine/Linear -> LI -> Output: the output layer, ``membrane`` mode (eq. 8: same decay as the
  LIFs, no reset); -> I -> Output or straight -> Output: ``accumulate`` mode (a running sum).

Export writes exactly this mapping with integer-valued parameters (weights, biases and
thresholds in units of one membrane step), so an exported graph imports back to the same
integers and the same spikes bit for bit. What a float NIR simulator of an exported graph
loses: the floor of the shift-add decay and of the first layer's ``>> input_shift``, and the
saturation of ``vmem_bits`` membranes; ``logit_scale`` lives in the graph's metadata.

This module holds the entry point (``import_nir``, its ``ImportResult``) and the embedding of the inputs; the
parts it uses: nir_meta.py (the graph's metadata, checked), nir_graph_walk.py (the walk over the nodes),
nir_neurons.py (neuron parameters at dt) and nir_layers.py (the quantised integer layers).
"""


from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from satasim_atsn.errors import WorkloadError
from satasim_atsn.interchange.nir_graph import DEFAULT_DT, META_KEY
from satasim_atsn.interchange.nir_graph_walk import GraphImport, check_nodes
from satasim_atsn.interchange.nir_meta import checked_meta, graph_meta
from satasim_atsn.snn.neurons import shifts_to_tau
from satasim_atsn.workload.format import Workload, validate


@dataclass
class ImportResult:
    """An imported workload and what the float reference needs to compare against it."""

    workload: Workload
    spike_nodes: dict[str, str] = field(default_factory=dict)  # workload layer -> NIR node emitting its spikes
    notes: list[str] = field(default_factory=list)  # approximations made while quantising
    input_scale: float = 1.0
    dt: float = DEFAULT_DT
    decision: str = "state"  # how the float output decides: "state" (LI/I value at T) or "sum" (of outputs)


def import_nir(graph: Any, x: np.ndarray, y: np.ndarray | None = None, *, timesteps: int | None = None,
               input_scale: float | None = None, dt: float | None = None, name: str = "imported",
               dataset: str = "unknown", source: str = "<nir>") -> ImportResult:
    """Map a NIR graph onto an integer workload embedding inputs ``x`` (uint8 images or 0/1 spike frames)."""
    meta = checked_meta(graph_meta(graph), source)
    check_nodes(graph)
    dt = float(dt if dt is not None else meta.get("dt", DEFAULT_DT))
    x = np.asarray(x)
    frames = x.ndim == 5
    if frames and input_scale is not None:  # it scales pixels; frames are 0/1 spikes fed as they are
        raise WorkloadError.at(None, "--input-scale", "applies to image inputs, and these are 0/1 spike frames "
                               "(fed to the first layer as spikes)", "drop --input-scale")
    input_scale = float(input_scale if input_scale is not None else meta.get("input_scale", 1.0 / 255.0))
    if frames and timesteps is not None and int(timesteps) != int(x.shape[1]):
        raise WorkloadError.at(None, "--timesteps", f"is {timesteps} but the spike-frame inputs have T = "
                               f"{x.shape[1]} frames", "drop --timesteps (frames set T)")
    T = int(x.shape[1]) if frames else int(timesteps or meta.get("timesteps") or 0)
    if T < 1 and frames:
        raise WorkloadError.at(None, "--inputs", "the spike frames have T = 0 timesteps",
                               "give [N, T, C, H, W], T >= 1")
    if T < 1:
        raise WorkloadError.at(None, "--timesteps", "missing", "give the number of timesteps for image inputs")
    if T > 1024:  # the workload format's limit (meta.timesteps), named by what set it
        raise WorkloadError.at(None, "--inputs" if frames else "--timesteps", f"gives T = {T} timesteps; a "
                               "workload holds 1..1024", "use fewer frames per image" if frames else "lower it")
    imp = GraphImport(graph, meta, dt, input_scale, frames)
    in_shape = imp.map_nodes(x)
    if len(in_shape) == 1:
        in_shape, x = _flat_images(imp, x, in_shape, frames)
    shifts = imp.decay_shifts()
    spike_counts = imp.state["output_mode"] == "spike_count"  # no output layer: the last layer's counts
    num_classes = int(imp.state["classes"]) if spike_counts else int(imp.layers[-1]["out_features"])
    workload_meta = {
        "name": name,
        "kind": "imported",
        "dataset": dataset,
        "num_classes": num_classes,
        "input_shape": list(in_shape),
        "timesteps": T,
        "input_encoding": "spike_frames" if frames else "direct",
        "neuron": {"model": "lif", "tau": shifts_to_tau(shifts), "decay_shifts": list(shifts), "reset": "zero"},
        "quant": {"weight_bits": 8, "vmem_bits": int(meta.get("vmem_bits", 16)),
                  "output_vmem_bits": int(meta.get("output_vmem_bits", 32)), "input_shift": imp.state["input_shift"]},
        "layers": imp.layers,
        "exit_policy": meta.get("exit_policy") or {"cl_init": 0.999, "tau_cl": 0.999, "theta": 0.1},
        "provenance": {"imported_from": Path(source).name, "format": "NIR", "dt": dt,
                       "input_scale": input_scale, "approximations": imp.notes},
    }
    if "class_names" in meta:  # exported from a network trained on an image folder: evaluate checks them
        if len(meta["class_names"]) != num_classes:
            raise WorkloadError.at(source, f'metadata["{META_KEY}"].class_names', f"names "
                                   f"{len(meta['class_names'])} classes, the graph's output has {num_classes}",
                                   "re-export the graph with `satasim workload export`, or remove the field")
        workload_meta["provenance"]["class_names"] = list(meta["class_names"])
    if not spike_counts:
        imp.layers[-1]["output_mode"] = imp.state["output_mode"]
    _embed_inputs(imp.arrays, workload_meta, x, y, frames, in_shape)
    from satasim_atsn.workload.network_file import shaped_layers

    workload_meta["layers"] = shaped_layers(imp.layers, list(in_shape), num_classes, source)
    wl = validate(Workload(meta=workload_meta, arrays=imp.arrays, source=source))
    return ImportResult(workload=wl, spike_nodes=imp.spike_nodes, notes=imp.notes, input_scale=input_scale, dt=dt,
                        decision=imp.state["decision"])


def _flat_images(imp: GraphImport, x: np.ndarray, in_shape: tuple,
                 frames: bool = False) -> tuple[tuple[int, ...], np.ndarray]:
    """Flat inputs (uint8 [N, features] or frames [N, T, features, 1, 1]) as the format's maps [features, 1, 1],
    read through a flatten (the format's MLP: a flatten of the input, then the weighted layer that reads it)."""
    name = "input_flatten"
    while name in imp.taken:
        name += "_"
    imp.taken.add(name)
    for ly in imp.layers:
        ly["inputs"] = [name if src == "input" else src for src in ly["inputs"]]
    imp.layers.insert(0, {"name": name, "type": "flatten", "inputs": ["input"]})
    shape = (int(in_shape[0]), 1, 1)
    return shape, x.reshape(*x.shape[: 2 if frames else 1], *shape)


def _embed_inputs(arrays: dict, workload_meta: dict, x: np.ndarray, y: np.ndarray | None, frames: bool,
                  in_shape: tuple) -> None:
    """The inputs (packed spike frames, or uint8 images) and labels as the workload's ``x``/``y`` arrays."""
    if frames:
        workload_meta["input_width"] = int(in_shape[-1])
        arrays["x"] = np.packbits(np.asarray(x, dtype=np.uint8), axis=-1)
    else:
        if x.dtype != np.uint8:
            raise WorkloadError.at(None, "--inputs", f"x has dtype {x.dtype}", "images must be uint8 [N, C, H, W] "
                                   "(float = uint8 x --input-scale) or 0/1 spike frames [N, T, C, H, W]")
        arrays["x"] = np.ascontiguousarray(x)
    if y is not None:
        labels = np.asarray(y, dtype=np.int64).reshape(-1)
        classes = int(workload_meta["num_classes"])
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise WorkloadError.at(None, "--inputs", f"y holds labels {labels.min()}..{labels.max()}, the graph's "
                                   f"Output has {classes} classes", f"give labels in 0..{classes - 1}")
        arrays["y"] = labels
