"""Export a trained float network to an integer workload (DESIGN section 4).

- BN is folded into each conv's weights and bias; the first layer also absorbs the input
  normalisation (x/255 - mean)/std, so it consumes raw uint8 images.
- Each spiking layer gets per-channel scales: w_int = round(w / s_c) in int8, bias b_int =
  round(b / s_c) and threshold vth_c = round(V_th / s_c), so its integer membrane is the float
  membrane divided by s_c. Scales are bounded (s_c >= max|W|/(8*127), thresholds <= ``VTH_MAX``)
  so that 16-bit membranes keep headroom. The first layer divides by 2**input_shift as well, chosen
  so that its thresholds are at most ``VTH_MAX_FIRST``.
- A residual join shares one scale per channel between its main branch and its shortcut branch (each a
  non-spiking conv, or a non-spiking linear layer; one scalar scale when the shortcut is an identity of
  spikes, stored as ``shortcut_gain``).
- The output layer has one scale, which becomes ``logit_scale``; global pooling's 1/HW is folded
  into its weights (the integer avgpool sums spikes).
- ``int8_grid_weights`` gives the float weights moved onto that grid, by the same scale rules
  (``train --quant-aware`` trains on them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from satasim_atsn.snn.neurons import tau_to_shifts
from satasim_atsn.train.network import Network
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.schema import VTH_MAX, VTH_MAX_FIRST

INT8_MAX = 127
BN_EPS = 1e-5


def fold_bn(net: Network, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Float weights [k*k*Cin, Cout] (a linear layer's [in, out]) and bias [Cout] of a conv or linear layer with its
    BN (running stats) folded in; a linear layer's own bias goes through the BN with its current."""
    p = net.params[name]
    w = p["w"].astype(np.float64)
    own = p["b"].astype(np.float64) if "b" in p else None
    if "gamma" not in p:
        return w, np.zeros(w.shape[1]) if own is None else own
    r = net.running[name]
    scale = p["gamma"].astype(np.float64) / np.sqrt(r["var"].astype(np.float64) + BN_EPS)
    if own is None:  # a conv: no bias before its BN
        return w * scale, p["beta"].astype(np.float64) - r["mean"].astype(np.float64) * scale
    return w * scale, p["beta"].astype(np.float64) + (own - r["mean"].astype(np.float64)) * scale


def _conv_layout(w: np.ndarray, layer: dict) -> np.ndarray:
    """Trainer layout [k*k*Cin, Cout] (rows ki, kj, cin) -> workload layout [Cout, Cin, k, k]."""
    k, cin = layer["kernel"], layer["in_shape"][0]
    return w.reshape(k, k, cin, -1).transpose(3, 2, 0, 1)


def _channel_scales(w: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Per-output-channel weight scales for [Cout, ...] float weights, bounded below."""
    maxabs = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    overall = float(maxabs.max()) if maxabs.size else 0.0
    return np.maximum(np.maximum(maxabs, overall / 8.0), max(floor, 1e-12)) / INT8_MAX


def _quantise(w: np.ndarray, scales: np.ndarray) -> np.ndarray:
    view = scales.reshape((-1,) + (1,) * (w.ndim - 1))
    return np.clip(np.rint(w / view), -INT8_MAX, INT8_MAX).astype(np.int8)


def _int32(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), -(2**31), 2**31 - 1).astype(np.int32)


def export_network(net: Network, *, name: str, dataset: str, num_classes: int, input_shape: list[int],
                   mean: np.ndarray, std: np.ndarray, x: np.ndarray, y: np.ndarray, vmem_bits: int = 16,
                   exit_policy: dict | None = None, provenance: dict | None = None) -> Workload:
    """Quantise ``net`` into a Workload embedding test inputs ``x`` (uint8) and labels ``y``."""
    direct = net.direct_input
    plan = _export_plan(net, mean, std)
    arrays: dict[str, np.ndarray] = {}
    layers_out: list[dict] = []
    input_shift = 0
    for index, layer in enumerate(net.spec):
        lname, kind = layer["name"], layer["type"]
        out = {k: v for k, v in layer.items() if k != "bn"}
        if kind == "conv":
            input_shift = _export_conv(net, plan, index, layer, out, arrays, input_shift)
        elif kind == "add":
            scales = plan.join_scale[lname]
            main, short = layer["inputs"]
            bias = plan.folded[main][1] + (plan.folded[short][1] if short in plan.shortcut_of else 0.0)
            arrays[f"b/{lname}"] = _int32(bias / scales)
            arrays[f"vth/{lname}"] = np.maximum(_int32(net.vth / scales), 1)
            if short not in plan.shortcut_of:
                out["shortcut_gain"] = max(int(np.rint(1.0 / scales[0])), 1)
        elif kind in ("output", "linear"):
            input_shift = _export_dense(net, plan, layer, out, arrays, num_classes, (mean, std, input_shift))
        layers_out.append(out)
    meta = {
        "name": name,
        "kind": "trained",
        "dataset": dataset,
        "num_classes": int(num_classes),
        "input_shape": [int(v) for v in input_shape],
        "timesteps": int(net.timesteps),
        "input_encoding": "direct" if direct else "spike_frames",
        "neuron": {"model": "lif", "tau": net.tau, "decay_shifts": tau_to_shifts(net.tau), "v_th": net.vth,
                   "reset": "zero"},
        "quant": {"weight_bits": 8, "vmem_bits": int(vmem_bits), "output_vmem_bits": 32, "input_shift": input_shift,
                  "input_mean": [float(v) for v in mean], "input_std": [float(v) for v in std]},
        "layers": layers_out,
        "exit_policy": exit_policy or {},
        "provenance": provenance or {},
    }
    if direct:
        arrays["x"] = np.ascontiguousarray(x, dtype=np.uint8)
    else:
        meta["input_width"] = int(input_shape[-1])
        arrays["x"] = np.packbits(np.ascontiguousarray(x, dtype=np.uint8), axis=-1)
    arrays["y"] = np.asarray(y, dtype=np.int64)
    return Workload(meta=meta, arrays=arrays)


@dataclass
class _ExportPlan:
    """What quantising the layers needs: BN-folded convs, shortcut convs and the joins' shared scales."""

    by_name: dict[str, dict]
    shortcut_of: dict[str, dict]  # a join branch's (non-spiking conv or linear) name -> its add layer
    folded: dict[str, tuple[np.ndarray, np.ndarray]]  # conv name -> weights [Cout, Cin, k, k], bias [Cout];
    # a join branch's linear layer -> weights [out, in] (trainer's row order), bias [out]
    join_scale: dict[str, np.ndarray]  # add name -> per-channel scales shared by both branches
    vth_floor: float  # max|W| floor so that vth = V_th / scale <= VTH_MAX


def _export_plan(net: Network, mean: np.ndarray, std: np.ndarray) -> _ExportPlan:
    """Fold BN (and, for direct input, the input normalisation) into the convs and the join branches' linear
    layers; scale the residual joins."""
    spec = net.spec
    direct = net.direct_input
    by_name = {layer["name"]: layer for layer in spec}
    shortcut_of: dict[str, dict] = {}
    for layer in spec:
        if layer["type"] == "add":
            for src in layer["inputs"]:
                if by_name.get(src, {}).get("type") in ("conv", "linear") and not by_name[src].get("spiking", True):
                    shortcut_of[src] = layer
    vth_floor = INT8_MAX / VTH_MAX
    folded: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for layer in spec:
        if layer["type"] == "conv":
            w, b = fold_bn(net, layer["name"])
            if layer["inputs"][0] == "input" and direct:
                rows_c = np.tile(np.arange(layer["in_shape"][0]), layer["kernel"] ** 2)
                w, b = _fold_normalisation(w, b, rows_c, mean, std)
            folded[layer["name"]] = (_conv_layout(w, layer), b)
        elif layer["type"] == "linear" and layer["name"] in shortcut_of:
            w, b, _ = _dense_folded(net, by_name, layer, mean, std)
            folded[layer["name"]] = (w, b)
    join_scale: dict[str, np.ndarray] = {}
    for layer in spec:
        if layer["type"] != "add":
            continue
        main, short = layer["inputs"]
        wm = folded[main][0]
        if short in folded and short in shortcut_of:
            ws = folded[short][0]
            both = np.concatenate([wm.reshape(wm.shape[0], -1), ws.reshape(ws.shape[0], -1)], axis=1)
            join_scale[layer["name"]] = _channel_scales(both, vth_floor)
        else:
            scalar = max(float(np.abs(wm).max()), vth_floor) / INT8_MAX
            join_scale[layer["name"]] = np.full(wm.shape[0], scalar)
    return _ExportPlan(by_name, shortcut_of, folded, join_scale, vth_floor)


def _conv_scales(net: Network, plan: _ExportPlan, index: int, layer: dict, w: np.ndarray) -> np.ndarray:
    """Per-output-channel scales of a conv's folded weights ``w`` [Cout, ...]: its join's shared scales (a conv
    feeding a residual add), no floor for the layer reading the direct image, else the threshold floor."""
    lname = layer["name"]
    if lname in plan.shortcut_of:
        return plan.join_scale[plan.shortcut_of[lname]["name"]]
    if index == 0 and net.direct_input:
        return _channel_scales(w)
    return _channel_scales(w, plan.vth_floor)


def _export_conv(net: Network, plan: _ExportPlan, index: int, layer: dict, out: dict, arrays: dict,
                 input_shift: int) -> int:
    """A conv's int8 weights (a join's shared scales; the first direct layer's input shift); returns the shift."""
    lname = layer["name"]
    w, b = plan.folded[lname]
    scales = _conv_scales(net, plan, index, layer, w)
    if lname in plan.shortcut_of:
        arrays[f"w/{lname}"] = _quantise(w, scales)
    elif index == 0 and net.direct_input:
        input_shift = _export_first(net, lname, w, b, scales, arrays, input_shift)
    else:
        arrays[f"w/{lname}"] = _quantise(w, scales)
        arrays[f"b/{lname}"] = _int32(b / scales)
        arrays[f"vth/{lname}"] = np.maximum(_int32(net.vth / scales), 1)
    out["spiking"] = bool(layer.get("spiking", True))
    return input_shift


def _fold_normalisation(w: np.ndarray, b: np.ndarray, channel: np.ndarray, mean: np.ndarray,
                        std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weights [in, out] and bias of the layer reading the uint8 image, with the input normalisation
    ((x / 255 - mean) / std, per channel; ``channel``: each input row's) folded in."""
    return w / (255.0 * std[channel])[:, None], b - (w * (mean[channel] / std[channel])[:, None]).sum(axis=0)


def _export_first(net: Network, lname: str, w: np.ndarray, b: np.ndarray, scales: np.ndarray, arrays: dict,
                  input_shift: int) -> int:
    """The layer reading the direct-encoded image (per-channel ``scales`` with no floor): its arrays, and the input
    shift that keeps its thresholds within VTH_MAX_FIRST (its current is (W.x + b) >> shift); returns the shift."""
    pre = 1.0 / scales
    while np.rint(pre / 2**input_shift).max() > VTH_MAX_FIRST:
        input_shift += 1
    arrays[f"w/{lname}"] = _quantise(w, scales)
    arrays[f"b/{lname}"] = _int32(b / scales)
    arrays[f"vth/{lname}"] = np.maximum(_int32(pre / 2**input_shift * net.vth), 1)
    return input_shift


def _dense_folded(net: Network, by_name: dict[str, dict], layer: dict, mean: np.ndarray,
                  std: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """A linear or output layer's weights [out, in] (rows of its input in the trainer's order) and bias, with its BN
    (a hidden linear layer's), the input normalisation (a layer reading the flattened image) and a global pooling's
    1/HW folded in; and whether it reads the image."""
    w, bias = fold_bn(net, layer["name"])  # the output layer has no BN
    src = _dense_source(by_name, layer)
    reads_image = net.direct_input and src.get("type") == "flatten" and src["inputs"] == ["input"]
    if reads_image:  # rows in the trainer's [H, W, C] order: channel = row % C
        w, bias = _fold_normalisation(w, bias, np.arange(w.shape[0]) % src["in_shape"][0], mean, std)
    w = w.T  # [out, in]
    if src.get("type") == "avgpool":
        w = w / float(np.prod(src["in_shape"][1:]))
    return w, bias, reads_image


def _dense_source(by_name: dict[str, dict], layer: dict) -> dict:
    """The layer whose output a linear or output layer reads, past flattens of tensors that are flat already (a
    global pool's [C], a linear layer's [F]: no-ops, as ``avgpool -> flatten -> fc`` ends many networks); {} for
    the input."""
    src = by_name.get(layer["inputs"][0], {})
    while src.get("type") == "flatten" and len(src["in_shape"]) == 1:
        src = by_name.get(src["inputs"][0], {})
    return src


def _dense_scales(plan: _ExportPlan, layer: dict, reads_image: bool, w: np.ndarray) -> np.ndarray:
    """Per-output scales of a linear or output layer's folded weights [out, in]: one for the whole output layer
    (its ``logit_scale``), its join's shared scales (a linear layer feeding a residual add), no floor for a layer
    reading the image, else the threshold floor."""
    if layer["name"] in plan.shortcut_of:
        return plan.join_scale[plan.shortcut_of[layer["name"]]["name"]]
    if layer["type"] == "output":
        return np.full(w.shape[0], max(float(np.abs(w).max()), 1e-12) / INT8_MAX)
    return _channel_scales(w) if reads_image else _channel_scales(w, plan.vth_floor)


def _export_dense(net: Network, plan: _ExportPlan, layer: dict, out: dict, arrays: dict, num_classes: int,
                  image: tuple[np.ndarray, np.ndarray, int]) -> int:
    """A linear or output layer (weights reordered after a flatten, 1/HW folded in after global pooling; a linear
    layer reading the flattened image gets the input normalisation folded in, as a first conv does); returns the
    input shift (``image``: the normalisation's mean and std, and the shift so far)."""
    lname, kind = layer["name"], layer["type"]
    mean, std, input_shift = image
    w, bias, reads_image = _dense_folded(net, plan.by_name, layer, mean, std)
    scales = _dense_scales(plan, layer, reads_image, w)
    src = _dense_source(plan.by_name, layer)
    if src.get("type") == "flatten":
        c, h, wd = src["in_shape"]
        w = w.reshape(-1, h, wd, c).transpose(0, 3, 1, 2).reshape(w.shape[0], -1)
    if kind == "output":
        arrays[f"w/{lname}"] = _quantise(w, scales)
        arrays[f"b/{lname}"] = _int32(bias / scales)
        out["logit_scale"] = float(scales[0])
        out["out_features"] = num_classes
    elif lname in plan.shortcut_of:  # a join branch: a current on its join's scales (bias and threshold: the add's)
        arrays[f"w/{lname}"] = _quantise(w, scales)
        out["spiking"] = False
    elif reads_image:
        input_shift = _export_first(net, lname, w, bias, scales, arrays, input_shift)
        out["spiking"] = True
    else:
        arrays[f"w/{lname}"] = _quantise(w, scales)
        arrays[f"b/{lname}"] = _int32(bias / scales)
        arrays[f"vth/{lname}"] = np.maximum(_int32(net.vth / scales), 1)
        out["spiking"] = bool(layer.get("spiking", True))
    return input_shift


def int8_grid_weights(net: Network, mean: np.ndarray, std: np.ndarray) -> dict[str, np.ndarray]:
    """The weights of every conv, linear and output layer moved to the grid the export quantises them onto (at
    the current BN statistics), in the trainer's layout: exporting them gives the same int8 weights, and a float
    forward with them sees the export's weight rounding. Quantisation-aware training runs its forward on these."""
    plan = _export_plan(net, mean, std)
    grid: dict[str, np.ndarray] = {}
    for index, layer in enumerate(net.spec):
        lname, kind = layer["name"], layer["type"]
        if kind == "conv":
            folded = plan.folded[lname][0]  # [Cout, Cin, k, k]
            scales = _conv_scales(net, plan, index, layer, folded)
            k, cin = layer["kernel"], layer["in_shape"][0]
            ratio = _grid_ratio(folded, scales).transpose(2, 3, 1, 0).reshape(k * k * cin, -1)
        elif kind in ("linear", "output"):
            folded, _, reads_image = _dense_folded(net, plan.by_name, layer, mean, std)
            ratio = _grid_ratio(folded, _dense_scales(plan, layer, reads_image, folded)).T
        else:
            continue
        raw = net.params[lname]["w"]
        grid[lname] = (raw * ratio).astype(raw.dtype)
    return grid


def _grid_ratio(folded: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """quantised / folded weight, element by element (1 where the folded weight is 0: the raw weight is then 0 or
    its BN scale is, and it stays): the folding is a product per element, so raw * ratio is on the grid."""
    quantised = _quantise(folded, scales) * scales.reshape((-1,) + (1,) * (folded.ndim - 1))
    safe = np.where(folded == 0, 1.0, folded)
    return np.where(folded == 0, 1.0, quantised / safe)
