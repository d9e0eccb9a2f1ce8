"""What the NIR modules share: the discretisation step, the node-parameter readers (one value per axis, per
channel, a Conv2d's geometry), node errors and the graph's dependency order."""

from __future__ import annotations

import numpy as np

from satasim_atsn.errors import WorkloadError

DEFAULT_DT = 1e-4
INT8_MAX = 127
META_KEY = "satasim"
SUPPORTED = ("Input, Output, Conv2d, Linear, Affine, LIF, IF, CubaLIF (tau_syn = dt), LI/I (or CubaLI, tau_syn = dt) "
             "before the Output, "
             "SumPool2d/AvgPool2d (spike max-pool: pool -> IF; of spikes before a Conv2d or Flatten -> Affine/Linear, "
             "folded into its weights; or of a Conv2d's current, folded into it), Flatten, Scale (a shortcut gain)")


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``name_1``, ``name_2``, ... if taken; the name returned is added to ``taken``."""
    out, k = name, 1
    while out in taken:
        out, k = f"{name}_{k}", k + 1
    taken.add(out)
    return out


def node_error(node: str, kind: str, problem: str, listed: bool = False) -> WorkloadError:
    """An error naming the node; ``listed`` adds what the importer supports (for a node or structure it does not
    take; a bad value of a known node gets no list, which would not help)."""
    return WorkloadError(f"node {node!r} ({kind}): {problem}" + (f"; supported: {SUPPORTED}" if listed else ""))


def float_array(value) -> np.ndarray:
    """A node parameter as a float64 array."""
    return np.asarray(value, dtype=np.float64)


def square_pair(value, node: str, kind: str, what: str) -> int:
    """A kernel size, stride or padding given for both axes (a scalar or a pair) as its one value."""
    arr = np.asarray(value).reshape(-1)
    if arr.size == 0 or not np.all(arr == arr[0]) or float(arr[0]) != int(arr[0]):
        raise node_error(node, kind, f"{what} {arr.tolist()} must be one integer for both axes")
    least = 0 if what == "padding" else 1  # a window, stride or dilation of 0 has no output (and divides by 0)
    if int(arr[0]) < least:
        raise node_error(node, kind, f"{what} {int(arr[0])} must be at least {least}; fix the node's {what}")
    return int(arr[0])


def channel_axis(arr: np.ndarray, shape: tuple) -> np.ndarray:
    """A per-channel parameter [C] of a [C, H, W] layer as [C, 1, 1], so that it broadcasts over positions.

    Always per channel, also when C equals W (numpy would broadcast it along W: a per-column parameter, which no
    exporter means, and which made the same graph import or be refused depending on the map's width)."""
    if arr.ndim == 1 and len(shape) == 3 and arr.size == shape[0]:
        return arr.reshape(-1, 1, 1)
    return arr


def node_bias(bias, count: int, node: str, kind: str) -> np.ndarray:
    """A weighted node's bias as ``count`` values: none, one shared value, or one per output."""
    if bias is None:
        return np.zeros(count)
    values = float_array(bias).reshape(-1)
    if values.size not in (1, count):
        raise node_error(node, kind, f"bias has {values.size} values for {count} outputs", listed=False)
    return np.broadcast_to(values, (count,)).copy()


def conv_params(node, name: str) -> dict:
    w = float_array(node.weight)
    if w.ndim != 4 or w.shape[2] != w.shape[3]:
        raise node_error(name, "Conv2d", f"weight shape {list(w.shape)} must be [Cout, Cin, k, k] (square kernels)")
    if int(np.asarray(node.groups)) != 1:
        raise node_error(name, "Conv2d", f"groups = {node.groups} (only 1 is supported)")
    if square_pair(node.dilation, name, "Conv2d", "dilation") != 1:
        raise node_error(name, "Conv2d", "dilation must be 1")
    stride = square_pair(node.stride, name, "Conv2d", "stride")
    pad = node.padding
    if isinstance(pad, (str, bytes)):
        pad = pad.decode() if isinstance(pad, bytes) else pad
        if pad == "valid":
            pad = 0
        elif pad == "same" and stride == 1 and w.shape[2] % 2 == 1:
            pad = w.shape[2] // 2
        else:
            raise node_error(name, "Conv2d", f"padding {pad!r} with stride {stride} and kernel {w.shape[2]}")
    pad = square_pair(pad, name, "Conv2d", "padding")
    bias = node_bias(node.bias, int(w.shape[0]), name, "Conv2d")
    return {"w": w, "b": bias, "kernel": int(w.shape[2]), "stride": stride, "padding": pad}


def _cycle(pending: set[str], preds: dict) -> list[str]:
    """One cycle among the nodes ``pending`` (each of which has a predecessor in it), in edge order."""
    node, seen = min(pending), []
    while node not in seen:
        seen.append(node)
        node = min(p for p in preds[node] if p in pending)
    loop = seen[seen.index(node):][::-1]
    return loop + [loop[0]]


def topological_order(nodes: dict, preds: dict, hint: dict) -> list[str]:
    """Nodes in dependency order (ties: exported layer order, then name); a cycle is an error."""
    done: set[str] = set()
    order: list[str] = []
    pending = set(nodes)
    while pending:
        ready = [n for n in pending if all(p in done for p in preds[n])]
        if not ready:
            raise WorkloadError(f"the graph has a cycle {' -> '.join(_cycle(pending, preds))}: recurrent networks "
                                "are not supported (the workload format is feed-forward)")
        first = min(ready, key=lambda n: (hint.get(n, len(hint)), n))
        order.append(first)
        done.add(first)
        pending.remove(first)
    return order
