"""Random small trained-kind workloads, for tests and property checks.

``random_workload(seed)`` draws a small valid network (convs, max-pooling, an optional residual
block, flatten or global pooling, an output layer), int8 weights, biases and thresholds tuned
so that layers fire at moderate rates, and a few uint8 images (or spike frames). With
``output_layer=False`` the network ends in a spiking layer instead (a spiking linear layer of
``num_classes`` neurons, or the flattened spike map itself), whose spike counts are the output.
"""

from __future__ import annotations

import math

import numpy as np

from satasim_atsn.workload.format import Workload, validate
from satasim_atsn.workload.networks import conv_layer
from satasim_atsn.workload.schema import infer_out_shape, weight_shape


def _ceil_log2(value: float) -> int:
    """max(0, ceil(log2(value))) exactly (frexp, no libm log2 whose last bit may vary by machine)."""
    mantissa, exponent = math.frexp(value)  # value = mantissa * 2^exponent, 0.5 <= mantissa < 1
    return max(0, exponent - 1 if mantissa == 0.5 else exponent)


def random_workload(
    seed: int,
    *,
    images: int = 3,
    timesteps: int | None = None,
    residual: bool | None = None,
    encoding: str | None = None,
    output_mode: str | None = None,
    max_channels: int = 6,
    size: int | None = None,
    num_classes: int | None = None,
    output_layer: bool = True,
    vmem_bits: int = 16,
    output_vmem_bits: int | None = None,
) -> Workload:
    """A small random network and inputs; every choice is drawn from ``seed`` unless given.

    Other membrane widths than the default 16 bits (``vmem_bits``, 8-32) and 32 output bits (``output_vmem_bits``,
    8-64) shrink the same draw until no membrane can leave its register (:func:`fit_widths`)."""
    rng = np.random.default_rng(seed)
    T = int(timesteps or rng.integers(1, 5))
    C = int(num_classes or rng.integers(2, 6))
    enc = encoding or ("direct" if rng.random() < 0.75 else "spike_frames")
    mode = output_mode or ("membrane" if rng.random() < 0.6 else "accumulate")
    cin = int(rng.integers(1, 4))
    hw = int(size or rng.choice([4, 6, 8]))
    residual = bool(rng.random() < 0.4) if residual is None else residual
    layers = _random_layers(rng, cin, hw, C, mode, residual, max_channels, output_layer)
    if not output_layer:  # the last layer's spike counts are the output: one class per neuron
        _fill_shapes(layers, [cin, hw, hw], C)
        C = int(np.prod(layers[-1]["out_shape"]))
    meta = {
        "name": f"random-{seed}",
        "kind": "trained",
        "dataset": "synthetic",
        "num_classes": C,
        "input_shape": [cin, hw, hw],
        "timesteps": T,
        "input_encoding": enc,
        "neuron": {"tau": 0.5, "decay_shifts": [1], "v_th": 1.0} if rng.random() < 0.7 else
                  {"tau": 0.75, "decay_shifts": [1, 2], "v_th": 1.0},
        "quant": {"weight_bits": 8, "vmem_bits": 16, "input_shift": 0},
        "layers": layers,
        "exit_policy": {"cl_init": 0.9, "tau_cl": 0.95, "theta": 0.3},
        "provenance": {"generator": "satasim_atsn.workload.synthetic", "seed": seed},
    }
    if enc == "spike_frames":
        meta["input_width"] = hw
    arrays = _random_parameters(rng, meta)
    if vmem_bits != 16 or output_vmem_bits is not None:
        fit_widths(meta, arrays, vmem_bits, output_vmem_bits or 32)
    if enc == "direct":
        arrays["x"] = rng.integers(0, 256, size=(images, cin, hw, hw)).astype(np.uint8)
    else:
        frames = (rng.random((images, T, cin, hw, hw)) < 0.3).astype(np.uint8)
        arrays["x"] = np.packbits(frames, axis=-1)
    arrays["y"] = rng.integers(0, C, size=images).astype(np.int64)
    return validate(Workload(meta=meta, arrays=arrays, source=f"<random workload {seed}>"))


def _random_layers(
    rng: np.random.Generator, cin: int, hw: int, C: int, mode: str, residual: bool, max_channels: int,
    output_layer: bool = True,
) -> list[dict]:
    """conv1, maybe conv2, maybe a residual block, maybe a max-pool, then the head (see :func:`_random_head`)."""
    layers: list[dict] = []
    src = "input"
    ch = int(rng.integers(2, max_channels + 1))
    layers.append(conv_layer("conv1", src, ch, kernel=int(rng.choice([1, 3])), padding=1 if rng.random() < 0.8 else 0))
    layers[-1]["padding"] = layers[-1]["padding"] if layers[-1]["kernel"] == 3 else 0
    src = "conv1"
    if rng.random() < 0.5:
        layers.append(conv_layer("conv2", src, int(rng.integers(2, max_channels + 1)), stride=int(rng.choice([1, 2]))))
        src = "conv2"
    if residual:
        src = _random_residual_block(rng, layers, src, cin, hw, C, max_channels)
    cur = {"input": [cin, hw, hw]}
    for ly in layers:
        cur[ly["name"]] = infer_out_shape(ly, [cur[i] for i in ly["inputs"]], C)
    if cur[src][1] >= 2 and cur[src][1] % 2 == 0 and rng.random() < 0.6:
        layers.append({"name": "pool", "type": "maxpool", "inputs": [src], "kernel": 2, "stride": 2})
        src = "pool"
    if output_layer:
        _random_head(rng, layers, src, C, mode)
    else:
        _random_spiking_head(rng, layers, src, C)
    return layers


def _fill_shapes(layers: list[dict], input_shape: list[int], C: int) -> None:
    """Set every layer's in_shape and out_shape (the format's rules)."""
    shapes = {"input": list(input_shape)}
    for ly in layers:
        ly["in_shape"] = shapes[ly["inputs"][0]]
        ly["out_shape"] = shapes[ly["name"]] = infer_out_shape(ly, [shapes[i] for i in ly["inputs"]], C)


def _random_spiking_head(rng: np.random.Generator, layers: list[dict], src: str, C: int) -> None:
    """End in a spiking layer (no output layer): global pooling or flatten, then a spiking linear layer of C
    neurons; or, drawn 1 in 4, the flattened spike map itself."""
    if rng.random() < 0.25:
        layers.append({"name": "flat", "type": "flatten", "inputs": [src]})
        return
    if rng.random() < 0.35:
        layers.append({"name": "gap", "type": "avgpool", "inputs": [src]})
    else:
        layers.append({"name": "flat", "type": "flatten", "inputs": [src]})
    layers.append({"name": "out", "type": "linear", "inputs": [layers[-1]["name"]], "out_features": C,
                   "spiking": True})


def _random_residual_block(
    rng: np.random.Generator, layers: list[dict], src: str, cin: int, hw: int, C: int, max_channels: int
) -> str:
    """Append a residual block on ``src`` (two convs and an add; downsampling through a 1x1 shortcut
    conv, or an identity shortcut with a gain); returns the add's name."""
    cur = {"input": [cin, hw, hw]}
    for ly in layers:
        cur[ly["name"]] = infer_out_shape(ly, [cur[ly["inputs"][0]]], C)
    ch_in = cur[src][0]
    down = rng.random() < 0.5 and cur[src][1] >= 4
    stride = 2 if down else 1
    cout = int(rng.integers(2, max_channels + 1)) if down else ch_in
    layers.append(conv_layer("blk_a", src, cout, stride=stride))
    layers.append(conv_layer("blk_b", "blk_a", cout, spiking=False))
    if down:
        layers.append(conv_layer("blk_sc", src, cout, kernel=1, stride=2, padding=0, spiking=False))
        layers.append({"name": "blk_add", "type": "add", "inputs": ["blk_b", "blk_sc"]})
    else:
        layers.append(
            {"name": "blk_add", "type": "add", "inputs": ["blk_b", src], "shortcut_gain": int(rng.integers(8, 64))}
        )
    return "blk_add"


def _random_head(rng: np.random.Generator, layers: list[dict], src: str, C: int, mode: str) -> None:
    """Append global pooling, or flatten and maybe a spiking linear layer; then the output layer."""
    if rng.random() < 0.35:
        layers.append({"name": "gap", "type": "avgpool", "inputs": [src]})
        src = "gap"
    else:
        layers.append({"name": "flat", "type": "flatten", "inputs": [src]})
        src = "flat"
        if rng.random() < 0.4:
            layers.append(
                {
                    "name": "fc",
                    "type": "linear",
                    "inputs": [src],
                    "out_features": int(rng.integers(4, 16)),
                    "spiking": True,
                }
            )
            src = "fc"
    layers.append(
        {
            "name": "out",
            "type": "output",
            "inputs": [src],
            "output_mode": mode,
            "out_features": C,
            "logit_scale": float(rng.choice([0.01, 0.05, 0.2])),
        }
    )


def _random_parameters(rng: np.random.Generator, meta: dict) -> dict[str, np.ndarray]:
    """Fill in the layers' shapes; int8 weights, biases and thresholds scaled to each layer's typical input
    current so that layers fire at moderate rates (and the first layer's ``input_shift`` into ``meta``)."""
    layers, C, enc = meta["layers"], meta["num_classes"], meta["input_encoding"]
    shapes = {"input": list(meta["input_shape"])}
    arrays: dict[str, np.ndarray] = {}
    in_scale = {"input": 255.0 if enc == "direct" else 1.0}
    density = {"input": 0.5}
    for index, ly in enumerate(layers):
        ly["in_shape"] = shapes[ly["inputs"][0]]
        ly["out_shape"] = infer_out_shape(ly, [shapes[i] for i in ly["inputs"]], C)
        shapes[ly["name"]] = ly["out_shape"]
        name, kind = ly["name"], ly["type"]
        src_name = ly["inputs"][0]
        if kind in ("conv", "linear", "output"):
            w = rng.integers(-127, 128, size=weight_shape(ly)).astype(np.int8)
            arrays[f"w/{name}"] = w
            fan_in = int(np.prod(w.shape[1:]))
            typical = 70.0 * np.sqrt(max(fan_in * density.get(src_name, 0.3), 1.0)) * max(in_scale.get(src_name, 1), 1)
            if index == 0 and enc == "direct":
                shift = _ceil_log2(max(typical * 3, 1) / 4000.0)
                meta["quant"]["input_shift"] = shift
                typical /= 2**shift
            cout = w.shape[0]
            arrays[f"b/{name}"] = rng.integers(-int(typical // 4) - 1, int(typical // 4) + 2, size=cout).astype(
                np.int32
            )
            if kind != "output" and ly.get("spiking", True):
                arrays[f"vth/{name}"] = np.clip(
                    rng.integers(int(typical * 0.3) + 1, int(typical * 1.2) + 2, size=cout), 1, 30000
                ).astype(np.int32)
            density[name] = 0.25
            in_scale[name] = 1.0
        elif kind == "add":
            cout = ly["out_shape"][0]
            typical = 70.0 * np.sqrt(9 * cout * 0.25)
            arrays[f"vth/{name}"] = np.clip(
                rng.integers(int(typical * 0.3) + 1, int(typical) + 2, size=cout), 1, 30000
            ).astype(np.int32)
            if rng.random() < 0.5:
                arrays[f"b/{name}"] = rng.integers(-10, 10, size=cout).astype(np.int32)
            density[name] = 0.25
        elif kind == "avgpool":
            in_scale[name] = float(np.prod(ly["in_shape"][1:]))
            density[name] = 0.25 * in_scale[name]
        else:
            density[name] = density.get(src_name, 0.25)
            in_scale[name] = in_scale.get(src_name, 1.0)
    return arrays


def fit_widths(meta: dict, arrays: dict[str, np.ndarray], bits: int, out_bits: int) -> None:
    """Shrink a drawn network's weights, biases, thresholds, input shift and shortcut gains (in place) so that no
    membrane can leave a ``bits``-wide register (``out_bits`` for the output layer's), and record both widths.

    With decay keeping at most a fraction k of a membrane (shifts s: k = sum 2^-s, each floor losing at most one
    unit, m = len(s)) and currents |I| <= B, a LIF membrane stays in [-(B + m) / (1 - k), vth + B]: B =
    (2^(bits-1)) (1 - k) - m and vth <= 2^(bits-1) - 1 - B keep it in the register, so the forward never saturates
    (it computes what wider registers would). A layer's current bound is the sum of its |weights| times its
    inputs' largest value plus |bias|; rows above it keep their signs and shrink in proportion (largest remainders
    round), the thresholds with them. An add's inputs (a non-spiking conv, the shortcut) share its bound."""
    shifts = [int(k) for k in meta["neuron"]["decay_shifts"]]
    keep = sum(2.0**-k for k in shifts)
    vmax = 2 ** (bits - 1) - 1
    lif = int((vmax + 1) * (1 - keep)) - len(shifts)  # B of a LIF layer
    out_max = 2 ** (out_bits - 1) - 1
    layers = meta["layers"]
    out_mode = layers[-1].get("output_mode", "membrane")
    out_budget = (out_max // int(meta["timesteps"]) if out_mode == "accumulate"
                  else int((out_max + 1) * (1 - keep)) - len(shifts))
    direct = meta["input_encoding"] == "direct"
    amp = {"input": 255 if direct else 1}  # the largest value one input element of each layer's output can take
    factor: dict[str, np.ndarray] = {}  # per layer and channel, how much its currents shrank
    add_bias = max(lif // 8, 0)
    for index, ly in enumerate(layers):
        name, kind, src = ly["name"], ly["type"], ly["inputs"][0]
        spiking = kind != "output" and ly.get("spiking", True)
        if kind in ("conv", "linear", "output"):
            budget = out_budget if kind == "output" else lif if spiking else (lif - add_bias) // 2
            if index == 0 and direct:
                factor[name] = _fit_input_shift(meta, arrays, name, budget)
            else:
                factor[name] = _shrink_rows(arrays, name, amp[src], budget)
            amp[name] = 1 if spiking else budget
        elif kind == "add":
            if "shortcut_gain" in ly:  # a spike shortcut's (a current one is a non-spiking conv, fitted above)
                ly["shortcut_gain"] = max(min(int(ly["shortcut_gain"]), (lif - add_bias) // 2), 1)
            if f"b/{name}" in arrays:
                arrays[f"b/{name}"] = np.clip(arrays[f"b/{name}"], -add_bias, add_bias).astype(np.int32)
            factor[name] = factor[src]
            amp[name] = 1
        elif kind == "avgpool":
            amp[name] = amp[src] * int(np.prod(ly["in_shape"][1:]))
        else:
            amp[name] = amp[src]
        if f"vth/{name}" in arrays:
            vth = np.ceil(arrays[f"vth/{name}"] * factor[name])
            arrays[f"vth/{name}"] = np.clip(vth, 1, max(vmax - lif, 1)).astype(np.int32)
    meta["quant"]["vmem_bits"] = int(bits)
    meta["quant"]["output_vmem_bits"] = int(out_bits)


def _shrink_rows(arrays: dict[str, np.ndarray], name: str, amp: int, budget: int) -> np.ndarray:
    """Scale each output channel's weights (and bias) so that |weights| . amp + |bias| <= budget; the factors."""
    w = arrays[f"w/{name}"].astype(np.int64)
    rows = w.reshape(w.shape[0], -1)
    bias_room = budget // 4
    allowed = max(budget - bias_room, 0) // max(amp, 1)  # sum of |weights| a row may keep
    total = np.abs(rows).sum(axis=1)
    factor = np.ones(len(rows))
    for r, s in enumerate(total):
        if s <= allowed:
            continue
        scaled = np.abs(rows[r]) * allowed
        new, rest = scaled // s, scaled % s
        new[np.argsort(-rest, kind="stable")[: allowed - int(new.sum())]] += 1  # largest remainders round up
        rows[r] = np.sign(rows[r]) * new
        factor[r] = allowed / s
    arrays[f"w/{name}"] = rows.reshape(w.shape).astype(np.int8)
    if f"b/{name}" in arrays:
        b = np.floor(arrays[f"b/{name}"] * factor)
        arrays[f"b/{name}"] = np.clip(b, -bias_room, bias_room).astype(np.int32)
    return factor


def _fit_input_shift(meta: dict, arrays: dict[str, np.ndarray], name: str, budget: int) -> np.ndarray:
    """Raise the input shift until the first layer's current (W.x + b) >> shift of 8-bit pixels fits ``budget``."""
    w = arrays[f"w/{name}"].astype(np.int64)
    bias = np.abs(arrays[f"b/{name}"].astype(np.int64)) if f"b/{name}" in arrays else 0
    worst = int((np.abs(w).reshape(w.shape[0], -1).sum(axis=1) * 255 + bias).max(initial=0))
    old = shift = int(meta["quant"]["input_shift"])
    while -(-worst >> shift) > budget:  # ceil(worst / 2^shift): the floor shift of a negative current
        shift += 1
    meta["quant"]["input_shift"] = shift
    return np.full(w.shape[0], 2.0 ** (old - shift))
