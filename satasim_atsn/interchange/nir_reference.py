"""The float reference of an import: the supported NIR subset, Euler-discretised at dt, in float64 numpy, and how
the quantised integer forward agrees with it (spikes per layer, top-1, accuracies)."""

from __future__ import annotations

from typing import Any

import numpy as np

from satasim_atsn.interchange.nir_graph import channel_axis, conv_params, float_array, square_pair, topological_order
from satasim_atsn.interchange.nir_import import ImportResult


def _conv2d_nchw(x: np.ndarray, w: np.ndarray, stride: int, padding: int) -> np.ndarray:
    n, c, h, wd = x.shape
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    ho, wo = win.shape[2], win.shape[3]
    cols = np.ascontiguousarray(win.transpose(0, 2, 3, 1, 4, 5)).reshape(n * ho * wo, c * k * k)
    return (cols @ w.reshape(w.shape[0], -1).T).reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)


def _pool_nchw(x: np.ndarray, k: int, s: int) -> np.ndarray:
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    return win.sum(axis=(4, 5))


def _p(value, like: np.ndarray) -> np.ndarray:
    """A neuron parameter shaped to broadcast against a batch of values [n, ...]."""
    return channel_axis(float_array(value), like.shape[1:])


def float_forward(graph: Any, x: np.ndarray, timesteps: int, dt: float, input_scale: float,
                  batch_size: int = 64) -> dict:
    """Run the NIR graph in float64: spikes of every spiking node [N, T, ...] and the Output [N, T, C]."""
    nodes = dict(graph.nodes)
    kinds = {n: type(node).__name__ for n, node in nodes.items()}
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in graph.edges:
        preds[b].append(a)
    order = topological_order(nodes, preds, {})
    frames = x.ndim == 5
    spikes: dict[str, list[np.ndarray]] = {n: [] for n, k in kinds.items() if k in ("LIF", "IF", "CubaLIF")}
    outputs: list[np.ndarray] = []
    for lo in range(0, x.shape[0], batch_size):
        xb = x[lo:lo + batch_size].astype(np.float64)
        state: dict[str, np.ndarray] = {}
        syn: dict[str, np.ndarray] = {}
        rec = {n: [] for n in spikes}
        out_t = []
        for t in range(timesteps):
            frame = xb[:, t] if frames else xb * input_scale
            val: dict[str, np.ndarray] = {}
            for n in order:
                k, node = kinds[n], nodes[n]
                if k == "Input":
                    val[n] = frame
                    continue
                inp = sum(val[p] for p in preds[n])
                if k == "Conv2d":
                    p = conv_params(node, n)
                    val[n] = _conv2d_nchw(inp, p["w"], p["stride"], p["padding"]) + p["b"][None, :, None, None]
                elif k in ("Linear", "Affine"):
                    flat = inp.reshape(inp.shape[0], -1)
                    val[n] = flat @ float_array(node.weight).T + (float_array(node.bias) if k == "Affine" else 0.0)
                elif k == "Scale":
                    val[n] = inp * float_array(node.scale)
                elif k in ("SumPool2d", "AvgPool2d"):
                    window = np.asarray(node.kernel_size).reshape(-1).tolist()
                    if window == list(inp.shape[2:]):  # a global pool (of any map shape, as the importer takes it)
                        val[n] = inp.sum(axis=(2, 3), keepdims=True) / (inp.shape[2] * inp.shape[3]
                                                                         if k == "AvgPool2d" else 1)
                    else:
                        kk, s = square_pair(node.kernel_size, n, k, "kernel"), square_pair(node.stride, n, k, "stride")
                        val[n] = _pool_nchw(inp, kk, s) / (kk * kk if k == "AvgPool2d" else 1)
                elif k == "Flatten":
                    val[n] = inp.reshape(inp.shape[0], -1)
                elif k in ("LIF", "IF", "CubaLIF", "LI", "CubaLI", "I"):
                    v = state.get(n, np.zeros_like(inp))
                    if k in ("CubaLIF", "CubaLI"):
                        i_syn = syn.get(n, np.zeros_like(inp))
                        i_syn = i_syn + dt / _p(node.tau_syn, inp) * (-i_syn + _p(node.w_in, inp) * inp)
                        syn[n] = i_syn
                        v = v + dt / _p(node.tau_mem, inp) * (_p(node.v_leak, inp) - v + _p(node.r, inp) * i_syn)
                    elif k in ("LIF", "LI"):
                        v = v + dt / _p(node.tau, inp) * (_p(node.v_leak, inp) - v + _p(node.r, inp) * inp)
                    else:
                        v = v + dt * _p(node.r, inp) * inp
                    if k in ("LIF", "IF", "CubaLIF"):
                        z = v > _p(node.v_threshold, inp)
                        v = np.where(z, _p(node.v_reset, inp), v)
                        rec[n].append(z)
                        val[n] = z.astype(np.float64)
                    else:
                        val[n] = v
                    state[n] = v
                elif k == "Output":
                    val[n] = inp
                    out_t.append(inp.reshape(inp.shape[0], -1))
        for n in spikes:
            spikes[n].append(np.stack(rec[n], axis=1))
        outputs.append(np.stack(out_t, axis=1))
    return {"spikes": {n: np.concatenate(v, axis=0) for n, v in spikes.items()},
            "output": np.concatenate(outputs, axis=0)}


def agreement(result: ImportResult, graph: Any) -> dict:
    """How the quantised integer forward (snn/forward.py) agrees with the float NIR forward on the inputs."""
    from satasim_atsn.snn.forward import run_forward

    wl = result.workload
    x = wl.inputs()
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, not as numpy warnings
        ref = float_forward(graph, x, wl.timesteps, result.dt, result.input_scale)
    fwd = run_forward(wl, x, record_spikes=True)
    layers = {}
    for lname, node in result.spike_nodes.items():
        if lname not in fwd.spikes or node not in ref["spikes"]:
            continue
        ours = fwd.spikes[lname].reshape(fwd.spikes[lname].shape[:2] + (-1,))
        theirs = ref["spikes"][node].reshape(ours.shape)
        layers[lname] = {"node": node, "spike_agreement": float((ours == theirs).mean()),
                         "rate_int": float(ours.mean()), "rate_float": float(theirs.mean())}
    out = ref["output"]
    decision = out.sum(axis=1) if result.decision == "sum" else out[:, -1]
    notes = list(result.notes)
    silent = [lname for lname, v in layers.items() if v["rate_int"] == 0 and v["rate_float"] == 0]
    if silent:  # agreement of 1.0 between two silent layers says nothing
        shown = ", ".join(silent[:4]) + (f" and {len(silent) - 4} more" if len(silent) > 4 else "")
        units = ("" if result.dt == 1 else f"; if the graph's time constants and r are in timesteps (SpikingJelly and "
                 f"Sinabs write them so), import it with --dt 1 (this import took dt = {result.dt:g} s, snnTorch's "
                 "convention)")
        one = len(silent) == 1
        notes.append(f"layer{'' if one else 's'} {shown} fire{'s' if one else ''} no spike in either forward on "
                     f"these {x.shape[0]} inputs, so {'its' if one else 'their'} spike agreement compares silent "
                     f"layers{units}")
    finite = np.isfinite(decision).all(axis=1)
    if not finite.all():  # overflow in float64: its argmax is the first NaN, not a decision
        notes.append(f"the float forward overflowed (non-finite outputs) on {int((~finite).sum())} of "
                     f"{finite.size} inputs: its top-1 there is meaningless")
    pred_float = decision.argmax(axis=1)
    final = fwd.out_membrane[:, -1]
    pred_int = final.argmax(axis=1)
    tied = (final == final.max(axis=1, keepdims=True)).sum(axis=1) > 1
    if tied.any():  # argmax breaks a tie to the lowest class: say how often the integer decision is a tie
        notes.append(f"the integer output ties for the top class on {int(tied.sum())} of {tied.size} inputs "
                     "(argmax takes the lowest class)")
    report = {
        "images": int(x.shape[0]),
        "timesteps": wl.timesteps,
        "top1_agreement": float((pred_float == pred_int).mean()),
        "spike_agreement": float(np.mean([v["spike_agreement"] for v in layers.values()])) if layers else None,
        "layers": layers,
        "approximations": notes,
    }
    labels = wl.labels()
    if labels is not None:
        report.update(_accuracies(wl, fwd, labels, pred_float, pred_int, result.decision))
    return report


# how `satasim evaluate` predicts at fixed T, by output mode (its headline accuracy), and the argmax-at-T rules
EVALUATE_RULES = {"membrane": "eq. 10: argmax of the mean softmax of the outputs over t = 1..T",
                  "accumulate": "eq. 5: argmax of the accumulated output at T",
                  "spike_count": "the most spikes over t = 1..T (ties to the lowest class)"}


def _accuracies(wl: Any, fwd: Any, labels: np.ndarray, pred_float: np.ndarray, pred_int: np.ndarray,
                decision: str) -> dict:
    """The import's accuracies, each with its rule: the int8 one as `satasim evaluate` reports it at fixed T
    (``accuracy_int``), and the argmax at T of the int8 and float outputs that top-1 agreement compares."""
    from satasim_atsn.train.evaluation import fixed_t_predictions

    mode = wl.layers[-1]["output_mode"] if wl.has_output else "spike_count"
    pred_eval = fixed_t_predictions(wl, fwd)
    return {"accuracy_int": float((pred_eval == labels).mean()),
            "accuracy_int_at_t": float((pred_int == labels).mean()),
            "accuracy_float": float((pred_float == labels).mean()),
            "accuracy_rules": {
                "accuracy_int": f"{EVALUATE_RULES[mode]} (satasim evaluate's fixed-T accuracy)",
                "accuracy_int_at_t": "argmax of the int8 output at T alone (the top-1 agreement's int8 decision)",
                "accuracy_float": "argmax of the float NIR output " + ("summed over t = 1..T" if decision == "sum"
                                                                      else "at T") + " (top-1 agreement's float "
                                  "decision)"}}
