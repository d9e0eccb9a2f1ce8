"""The integer layers of an import: what a node's output is in workload terms (Value), and the quantisers that make
a current and its neuron's parameters int8 weights, int32 biases and thresholds of a spiking, join or output layer."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from satasim_atsn.errors import WorkloadError
from satasim_atsn.interchange.nir_graph import INT8_MAX, node_error
from satasim_atsn.workload.schema import VTH_MAX, VTH_MAX_FIRST


@dataclass
class Value:
    """What a NIR node's output is in workload terms."""

    kind: str  # spikes | current | pooled | pooled_flat | counts | scaled
    layer: str = ""  # the workload layer producing it (spikes, counts), or the weighted node (current)
    shape: tuple = ()
    data: dict = field(default_factory=dict)


def _int8_exact(w: np.ndarray) -> bool:
    return bool(np.all(w == np.rint(w)) and np.abs(w).max(initial=0) <= INT8_MAX)


def _integral(v: np.ndarray) -> bool:
    return bool(np.all(np.asarray(v) == np.rint(v)))


def _channel_scales(w: np.ndarray, floor: np.ndarray | float = 0.0) -> np.ndarray:
    """Per-output-channel scales (trainer's rule): max|w| of the channel, at least 1/8 of the layer's, floored."""
    maxabs = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    overall = float(maxabs.max()) if maxabs.size else 0.0
    # floored only against an all-zero layer (a division by zero): an absolute 1e-12 floor zeroed every weight of a
    # network written in small units (weights x input_scale below ~1e-12)
    return np.maximum(np.maximum(maxabs, overall / 8.0), np.maximum(floor, np.finfo(np.float64).tiny)) / INT8_MAX


def _q8(w: np.ndarray, scales: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(w / scales.reshape((-1,) + (1,) * (w.ndim - 1))), -INT8_MAX, INT8_MAX).astype(np.int8)


def _note_zeroed_rows(name: str, w: np.ndarray, wq: np.ndarray, notes: list[str]) -> None:
    """Note the output channels whose float weights were not all zero but whose int8 weights are: a channel's scale
    is at least 1/8 of the layer's largest, so a channel far weaker than the rest loses every weight."""
    had = np.abs(w.reshape(w.shape[0], -1)).max(axis=1) > 0
    lost = int(np.count_nonzero(had & ~wq.reshape(wq.shape[0], -1).any(axis=1)))
    if lost:
        notes.append(f"{name}: {lost} of {w.shape[0]} output channels have all-zero int8 weights (their float "
                     "weights are below half a step of the layer's int8 grid)")


def _i32(v: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(v), -(2**31), 2**31 - 1).astype(np.int32)


def _note_grid_limits(lname: str, bias_steps: np.ndarray, theta_steps: np.ndarray, notes: list[str]) -> None:
    """Say where the integer grid changed a value beyond rounding: a threshold below half a step (raised to 1, so
    the neuron fires more readily than the graph's) or a bias beyond int32 (clipped)."""
    raised = int((np.rint(theta_steps) < 1).sum())
    if raised:
        notes.append(f"{lname}: {raised} threshold(s) below half an integer step of the layer's scale, stored as 1 "
                     "step (the neurons fire more readily than the graph's)")
    clipped = int((np.abs(np.rint(bias_steps)) > 2**31 - 1).sum())
    if clipped:
        notes.append(f"{lname}: {clipped} bias(es) beyond the int32 range of the layer's scale, clipped")


def _layer(name: str, cur: Value, spiking: bool) -> dict:
    """A conv/linear layer dict (format key order) for the weighted node behind a current."""
    spec = cur.data["layer"]
    return {"name": name, "type": spec["type"], "inputs": [cur.data["src"].layer],
            **{k: v for k, v in spec.items() if k != "type"}, "spiking": spiking}


def _scaled_by_pixels(lname: str, w: np.ndarray, b: np.ndarray, input_scale: float) -> np.ndarray:
    """The first layer's weights x ``input_scale``, refused when 8-bit pixels would take its current (or the x 2^24 of
    the exact-integer search below) beyond float64: numpy warned of an overflow and the float forward gave NaN."""
    with np.errstate(over="ignore", invalid="ignore"):
        w = w * input_scale
        peak = (np.abs(w).reshape(len(w), -1).sum(axis=1) * 255.0 + np.abs(b)) * 2.0**24
    if not (np.all(np.isfinite(peak)) and math.isfinite(255.0 * input_scale * 2.0**24)):
        raise WorkloadError.at(None, "--input-scale", f"{input_scale:g} takes the current of the first layer "
                               f"{lname!r} beyond float64", "give the float value of one pixel step (the default "
                               "1/255 maps pixels to 0..1; 1 keeps 0..255)")
    return w


def emit_spiking(lname: str, cur: Value, par: dict, first: bool, frames: bool, input_scale: float,
                 layers: list[dict], arrays: dict[str, np.ndarray], state: dict, notes: list[str]) -> None:
    """A spiking conv/linear layer from a current and its neuron's parameters, quantised."""
    w = cur.data["w"] * par["gain"].reshape((-1,) + (1,) * (cur.data["w"].ndim - 1))
    b = cur.data["b"] * par["gain"] + par["leak"]
    theta = par["theta"]
    if np.any(theta <= 0):
        raise node_error(lname, "neuron", "v_threshold must be > 0 (the integer thresholds are positive)")
    ly = _layer(lname, cur, spiking=True)
    direct_first = first and not frames
    if direct_first:
        w = _scaled_by_pixels(lname, w, b, input_scale)
        for shift in range(0, 25):  # integer-valued already (an exported graph): keep the integers
            if _int8_exact(w * 2**shift) and _integral(b * 2**shift) and _integral(theta) and theta.max() < 2**15:
                wq, bq, vth = (w * 2**shift).astype(np.int8), _i32(b * 2**shift), _i32(theta)
                break
        else:
            scales = _channel_scales(w)
            shift = 0
            while np.rint(theta / (scales * 2**shift)).max() > VTH_MAX_FIRST and shift < 63:  # the format's limit
                shift += 1
            wq, bq = _q8(w, scales), _i32(b / scales)
            vth = np.maximum(_i32(theta / (scales * 2**shift)), 1)
            _note_grid_limits(lname, b / scales, theta / (scales * 2**shift), notes)
            if vth.max() > VTH_MAX_FIRST:  # even >> 63 leaves the threshold out of reach: the layer never fires
                notes.append(f"{lname}: threshold out of reach of its input current (>> 63 leaves it above "
                             f"{VTH_MAX_FIRST} steps): stored as {VTH_MAX_FIRST}, the layer stays silent")
                vth = np.minimum(vth, VTH_MAX_FIRST)
        state["input_shift"] = shift
    elif _int8_exact(w) and _integral(b) and _integral(theta) and theta.max() < 2**15:
        wq, bq, vth = w.astype(np.int8), _i32(b), _i32(theta)
    else:
        scales = _channel_scales(w, theta * INT8_MAX / VTH_MAX)
        wq, bq, vth = _q8(w, scales), _i32(b / scales), np.maximum(_i32(theta / scales), 1)
        _note_grid_limits(lname, b / scales, theta / scales, notes)
    _note_zeroed_rows(lname, w, wq, notes)
    arrays[f"w/{lname}"], arrays[f"b/{lname}"], arrays[f"vth/{lname}"] = wq, bq, vth.astype(np.int32)
    layers.append(ly)


def emit_join(lname: str, main: Value, short: Value, par: dict, layer_name: Callable[[str], str],
              layers: list[dict], arrays: dict[str, np.ndarray], notes: list[str]) -> None:
    """A residual join: the main conv (a current), the shortcut (a current or spikes x gain) and the add's LIF."""
    g, leak, theta = par["gain"], par["leak"], par["theta"]
    if np.any(theta <= 0):
        raise node_error(lname, "neuron", "v_threshold must be > 0")
    wm = main.data["w"] * g.reshape((-1,) + (1,) * (main.data["w"].ndim - 1))
    bias = main.data["b"] * g + leak
    parts = [wm.reshape(wm.shape[0], -1)]
    ws = None
    if short.kind == "current":
        ws = short.data["w"] * g.reshape((-1,) + (1,) * (short.data["w"].ndim - 1))
        bias = bias + short.data["b"] * g
        parts.append(ws.reshape(ws.shape[0], -1))
        gain = None
    else:
        gains = g * (short.data["scale"] if short.kind == "scaled" else 1.0)
        if not np.allclose(gains, gains[0], rtol=1e-9):
            if short.kind == "scaled" and not np.allclose(short.data["scale"], short.data["scale"].flat[0], rtol=1e-9):
                raise node_error(short.data["node"], "Scale", "scales the spike shortcut of the join "
                                 f"{lname!r} per channel; the format gives a spike shortcut one gain (shortcut_gain) "
                                 "for all channels: give the Scale one value, or make the shortcut a 1x1 Conv2d")
            raise node_error(lname, "join", "a spike shortcut needs one gain for all channels, and the join neuron's "
                             "input gain (dt r / tau; a CubaLIF's w_in too) differs between channels: give its "
                             "channels one, or make the shortcut a 1x1 Conv2d")
        gain = float(gains[0])
        if not gain > 0:
            raise node_error(lname, "join", f"the spike shortcut's gain is {gain:g} (Scale times the neuron's input "
                             "gain): a join adds a positive integer multiple of each shortcut spike (shortcut_gain)",
                             listed=False)
    both = np.concatenate(parts, axis=1)
    exact = _int8_exact(both) and _integral(bias) and _integral(theta) and (gain is None or float(gain).is_integer())
    if exact:
        scales = np.ones(wm.shape[0])
    elif gain is None:
        scales = _channel_scales(both, theta * INT8_MAX / VTH_MAX)
    else:
        scales = np.full(wm.shape[0], max(float(np.abs(wm).max()), float(theta.max()) * INT8_MAX / VTH_MAX,
                                          np.finfo(np.float64).tiny) / INT8_MAX)
    if main.data["src"].layer == "input" or (short.kind == "current" and short.data["src"].layer == "input"):
        raise node_error(lname, "join", "a residual join straight from the Input is not supported", listed=True)
    main_name = layer_name(main.layer)
    layers.append(_layer(main_name, main, spiking=False))
    arrays[f"w/{main_name}"] = _q8(wm, scales)
    _note_zeroed_rows(main_name, wm, arrays[f"w/{main_name}"], notes)
    join = {"name": lname, "type": "add"}
    if ws is not None:
        sc_name = layer_name(short.layer)
        layers.append(_layer(sc_name, short, spiking=False))
        arrays[f"w/{sc_name}"] = _q8(ws, scales)
        _note_zeroed_rows(sc_name, ws, arrays[f"w/{sc_name}"], notes)
        join["inputs"] = [main_name, sc_name]
    else:
        join["inputs"] = [main_name, short.layer]
        join["shortcut_gain"] = _shortcut_gain(lname, gain, float(scales[0]), notes)
    layers.append(join)
    arrays[f"b/{lname}"] = _i32(bias / scales)
    arrays[f"vth/{lname}"] = np.maximum(_i32(theta / scales), 1)
    _note_grid_limits(lname, bias / scales, theta / scales, notes)


def _shortcut_gain(lname: str, gain: float, scale: float, notes: list[str]) -> int:
    """The join's integer shortcut gain: ``gain`` in units of the layer's scale, rounded (at least 1); an
    approximation of more than 1% is noted, since the spikes then add a different current than the graph's."""
    exact = gain / scale
    quantised = max(int(np.rint(exact)), 1)
    if abs(quantised - exact) > 0.01 * exact:
        notes.append(f"{lname}: shortcut gain {gain:.6g} is {exact:.4g} steps of the layer's int8 scale, stored as "
                     f"{quantised} (x{quantised / exact:.3g}): the shortcut is weak against the join's weights")
    if quantised > 2**15 - 1:
        notes.append(f"{lname}: shortcut gain stored as {quantised} steps: one shortcut spike alone passes a 16-bit "
                     "membrane's range (the import's vmem_bits), which saturates")
    return quantised


def emit_output(lname: str, cur: Value, par: dict, state: dict, layers: list[dict], arrays: dict[str, np.ndarray],
                meta: dict, notes: list[str], first: bool = False) -> None:
    """The output layer: one scale for the whole layer, which becomes ``logit_scale``. One that reads the
    image (``first``) keeps integer weights scaled by 2**-shift as the image's input shift, as a first spiking
    layer does, so an exported graph imports back to the same integers."""
    w = cur.data["w"] * par["gain"].reshape(-1, 1)
    b = cur.data["b"] * par["gain"] + par["leak"]
    shift = next((k for k in range(25) if _int8_exact(w * 2**k) and _integral(b * 2**k)), None) if first else None
    if shift is not None:
        w, b = w * 2**shift, b * 2**shift
        state["input_shift"] = shift
    if _int8_exact(w) and _integral(b):
        scale = 1.0
        logit = float(meta.get("logit_scale", 1.0))
    else:
        scale = max(float(np.abs(w).max()), np.finfo(np.float64).tiny) / INT8_MAX
        logit = scale
    arrays[f"w/{lname}"] = _q8(w, np.full(w.shape[0], scale))
    _note_zeroed_rows(lname, w, arrays[f"w/{lname}"], notes)
    arrays[f"b/{lname}"] = _i32(b / scale)
    layers.append({"name": lname, "type": "output", "inputs": [cur.data["src"].layer],
                   "out_features": int(w.shape[0]), "output_mode": state["output_mode"], "logit_scale": logit})
