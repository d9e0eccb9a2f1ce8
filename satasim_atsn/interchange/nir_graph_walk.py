"""The walk of a NIR graph for an import: its edges checked, each node in dependency order mapped onto what its
output is (spikes, a current, a pool, ...) and onto layers (pool folds, joins, the readout), and the one decay."""

from __future__ import annotations

from typing import Any

import numpy as np

from satasim_atsn.errors import WorkloadError
from satasim_atsn.interchange.nir_graph import (
    conv_params,
    float_array,
    node_bias,
    node_error,
    square_pair,
    topological_order,
    unique_name,
)
from satasim_atsn.interchange.nir_layers import Value, emit_join, emit_output, emit_spiking
from satasim_atsn.interchange.nir_neurons import check_threshold, neuron_params, per_channel
from satasim_atsn.snn.neurons import shifts_to_tau, tau_to_shifts
from satasim_atsn.workload.schema import infer_out_shape

_NODE_KINDS = ("Input", "Output", "Conv2d", "Linear", "Affine", "LIF", "IF", "CubaLIF", "LI", "CubaLI", "I",
               "SumPool2d", "AvgPool2d", "Flatten", "Scale")


class GraphImport:
    """One NIR import under way: the graph's nodes and edges, what each node's output is, the layers made so far."""

    def __init__(self, graph: Any, meta: dict, dt: float, input_scale: float, frames: bool) -> None:
        self.meta, self.dt, self.input_scale, self.frames = meta, dt, input_scale, frames
        self.nodes = dict(graph.nodes)
        self.kinds = {n: type(node).__name__ for n, node in self.nodes.items()}  # supported: check_nodes
        self.preds: dict[str, list[str]] = {n: [] for n in self.nodes}
        self.succs: dict[str, list[str]] = {n: [] for n in self.nodes}
        for a, b in graph.edges:
            if a not in self.nodes or b not in self.nodes:
                raise WorkloadError(f"edge ({a!r}, {b!r}) names a node that is not in the graph; the NIR file is "
                                    "corrupt")
            self.preds[b].append(a)
            self.succs[a].append(b)
        self.values: dict[str, Value] = {}
        self.layers: list[dict] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.spike_nodes: dict[str, str] = {}
        self.notes: list[str] = []
        self.betas: dict[str, float] = {}
        self.consumers = {n: len(self.succs[n]) for n in self.nodes}
        self.taken = {"input"}
        self.single_channel = False  # an [H, W] Input read as [1, H, W]
        self.state = {"first": True, "input_shift": 0, "output_mode": None, "logit_scale": 1.0, "decision": "state"}

    def map_nodes(self, x: np.ndarray) -> tuple[int, ...]:
        """Map every node in dependency order onto layers and arrays; returns the Input's shape."""
        inputs = [n for n, k in self.kinds.items() if k == "Input"]
        outputs = [n for n, k in self.kinds.items() if k == "Output"]
        if len(inputs) != 1 or len(outputs) != 1:
            raise WorkloadError(f"the graph has {len(inputs)} Input and {len(outputs)} Output nodes; "
                                "the workload format needs exactly one of each")
        in_node = inputs[0]
        self._check_every_node_is_on_a_path(in_node, outputs[0])
        in_shape = tuple(int(v) for v in np.asarray(self.nodes[in_node].input_type["input"]).reshape(-1))
        if len(in_shape) == 2:  # an [H, W] image (snnTorch's MNIST nets): one channel, as [1, H, W]
            in_shape = (1, *in_shape)
            self.notes.append(f"the Input {in_node!r} is [H, W] = {list(in_shape[1:])}: read as one channel "
                              f"{list(in_shape)} (inputs given as [N, 1, H, W])")
            self.single_channel = True
        data_shape = tuple(x.shape[2:] if self.frames else x.shape[1:])
        if self.frames and len(in_shape) == 1 and data_shape == (in_shape[0], 1, 1):
            data_shape = in_shape  # flat frames [N, T, F, 1, 1] for an Input [F]: read through a flatten
        if len(in_shape) not in (1, 3):
            raise WorkloadError.at(None, f"node {in_node!r} (Input)", f"input_type is {list(in_shape)}: the workload "
                                   "format holds inputs as [C, H, W] maps, [H, W] images or flat [features]",
                                   "declare the Input as [C, H, W] (e.g. [1, H, W]) or flatten it to [features]")
        if data_shape != in_shape:
            frames_hint = " (flat spike frames: [N, T, F, 1, 1])" if self.frames and len(in_shape) == 1 else ""
            shown_as = ""
            if self.single_channel:  # say how the declared [H, W] became the shape quoted
                declared = list(in_shape[1:])
                shown_as = f" (its input_type {declared}, read as an [H, W] image, one channel)"
                if declared[0] == 1 and data_shape == (declared[1],):  # an exporter's batch dim: [1, F]
                    frames_hint = (f": x[:, None, None] is [N, 1, 1, {declared[1]}] (an input_type [1, F] is often an "
                                   "exporter's batch dim, and reads as a 1 x F image, the same neurons)")
            raise WorkloadError.at(None, "--inputs", f"x has per-image shape {list(data_shape)}, the graph's Input "
                                   f"{in_node!r} is {list(in_shape)}{shown_as}",
                                   f"give inputs of the graph's shape{frames_hint}")
        order_hint = {n: i for i, n in enumerate(self.meta.get("layer_order", []))}
        order = topological_order(self.nodes, self.preds, order_hint)
        self.values[in_node] = Value("spikes", "input", in_shape)
        for n in order:
            if n == in_node:
                continue
            handler = self._HANDLERS.get(self.kinds[n])
            if handler is None:
                raise node_error(n, self.kinds[n], "unsupported here", listed=True)
            handler(self, n)
        if self.state["output_mode"] is None:
            raise WorkloadError("the graph's Output is not reached from its Input; the NIR graph is incomplete")
        if self.layers[-1]["type"] != "output" and self.state["output_mode"] != "spike_count":
            raise WorkloadError(f"layer {self.layers[-1]['name']!r} does not lead to the Output; every node of the "
                                "graph must")
        return in_shape

    def _check_every_node_is_on_a_path(self, in_node: str, out_node: str) -> None:
        """Refuse a node the Input does not reach, or one that reaches no Output: a dead-end branch would be
        simulated and charged cycles and energy for spikes no layer reads, and a loose node means nothing."""
        def reached(start: str, step: dict) -> set[str]:
            seen, todo = {start}, [start]
            while todo:
                for nxt in step[todo.pop()]:
                    if nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            return seen

        from_input, to_output = reached(in_node, self.succs), reached(out_node, self.preds)
        for n in self.nodes:
            if n not in from_input:
                why = "has no input edge" if not self.preds[n] else "is not reached from the Input"
                raise node_error(n, self.kinds[n], f"{why}; add an edge into it or remove the node (every node must "
                                 "lie on a path from the Input to the Output)", listed=False)
        for n in self.nodes:
            if n not in to_output:
                raise node_error(n, self.kinds[n], "leads to no Output: a branch whose result no layer reads would be "
                                 "simulated and charged for nothing; remove it from the graph", listed=False)

    def decay_shifts(self) -> list[int] | tuple[int, ...]:
        """The one shift-add decay of every neuron (an approximation is noted); accumulate if it does not decay."""
        betas, meta = self.betas, self.meta
        # equal within float32 rounding (an exporter's float32 tau of 2e-4 gives 0.49999998737, a float64 one 0.5)
        lif_betas = sorted(set(round(b, 6) for n, b in betas.items()))
        if len(lif_betas) > 1:
            names = ", ".join(f"{n} {b:g}" for n, b in betas.items())
            kinds = {self.kinds.get(n) for n in betas}
            fix = ("give them one tau" if not kinds & {"IF", "I"} else
                   "give them one decay: an IF or I node does not decay (1), so pair it with IF and I nodes only, or "
                   "make every neuron an LIF and LI of one tau")
            raise WorkloadError(f"the neurons decay differently ({names}); the workload format has one membrane "
                                f"decay (1 - dt/tau) for every layer; {fix}")
        beta = lif_betas[0] if lif_betas else 1.0
        shifts = meta.get("decay_shifts") if meta and abs(shifts_to_tau(meta.get("decay_shifts", [0])) - beta) < 1e-12 \
            else (tau_to_shifts(beta) if beta > 0 else None)
        if shifts is None:
            raise WorkloadError.at(None, "--dt", f"is {self.dt:g}, so the neurons' decay 1 - dt/tau is {beta:g} "
                                   "(tau = dt), which no shift-add decay gives", "give a --dt below the neurons' tau "
                                   "(a graph this tool exported stores its dt: drop --dt)")
        if abs(shifts_to_tau(shifts) - beta) > 1e-6:  # beyond float32 rounding of tau (exporters store float32)
            self.notes.append(f"decay {beta:.6g} approximated by shift-adds {shifts} = {shifts_to_tau(shifts):.6g}")
        if beta == 1.0 and self.state["output_mode"] in ("membrane", "accumulate"):
            # a readout that does not decay (I, or LI with beta = 1) holds the running sum of both modes, which
            # differ only in how the logits read it (eq. 10 or eq. 5's mean); this tool's own export says which
            self.state["output_mode"] = "membrane" if (meta or {}).get("output_mode") == "membrane" else "accumulate"
        return shifts

    def layer_name(self, node_name: str) -> str:
        """A unique workload layer name for a node (also the joins' namer, passed to nir_layers.emit_join)."""
        clean = node_name.replace("/", "_") or "layer"
        return unique_name("input_" if clean == "input" else clean, self.taken)

    def reads_image(self, value: Value) -> bool:
        """True when ``value`` is the Input's data, directly or through a Flatten: the layer reading it is the one
        that scales pixels (``input_scale``) and shifts (``input_shift``), as snn/forward.py computes it."""
        if value.layer == "input":
            return True
        layer = next((ly for ly in self.layers if ly["name"] == value.layer), None)
        return layer is not None and layer["type"] == "flatten" and layer["inputs"] == ["input"]

    def need_single(self, n: str) -> Value:
        if not self.preds[n]:
            raise node_error(n, self.kinds[n], "has no input edge; add an edge into it or remove the node",
                             listed=False)
        if len(self.preds[n]) != 1:
            raise node_error(n, self.kinds[n], f"has {len(self.preds[n])} inputs; only neurons (residual joins) may "
                             "sum two", listed=True)
        return self.values[self.preds[n][0]]

    def _weighted(self, n: str) -> None:
        """Conv2d/Linear/Affine: a current, made a layer by the neuron (or Output) it feeds."""
        src = self.need_single(n)
        node, kind = self.nodes[n], self.kinds[n]
        folds = src.kind == "pooled" and not src.data["global"] and kind == "Conv2d" or \
            src.kind == "pooled_flat" and kind != "Conv2d"
        if folds and self.consumers[n] != 1:
            raise node_error(n, kind, f"feeds {self.consumers[n]} nodes; a current must feed exactly one neuron or "
                             "Output")
        if folds:
            (self._conv_of_pooled if kind == "Conv2d" else self._linear_of_pooled)(n, src)
            return
        if src.kind not in ("spikes", "counts"):
            pooled = ("a global pool of spikes (Flatten it for an Affine/Linear)" if src.kind == "pooled" and
                      src.data["global"] else "a pool of spikes without a Flatten (an Affine/Linear reads it through "
                      "one; a Conv2d folds it into its weights; an IF after it makes a spike max-pool)")
            what = {"pooled": pooled, "pooled_flat": "a flattened pool of spikes (a Conv2d takes the map)",
                    "current": "a current (a weighted node's output, not yet through a neuron)"}.get(
                        src.kind, f"a {src.kind} value")
            raise node_error(n, kind, f"its input is {what}; weighted nodes take spikes, or the counts of a global "
                             "pool before Flatten", listed=True)
        if self.consumers[n] != 1:
            raise node_error(n, kind, f"feeds {self.consumers[n]} nodes; a current must feed exactly one neuron or "
                             "Output")
        if kind == "Conv2d":
            if len(src.shape) != 3 or src.kind != "spikes":
                raise node_error(n, kind, f"needs a [C, H, W] spike map, gets {list(src.shape)}", listed=True)
            p, ly, out = self._checked_conv(n, src.shape)
        else:
            w = float_array(node.weight)
            if w.ndim != 2:
                raise node_error(n, kind, f"weight shape {list(w.shape)} must be [out, in]")
            b = node_bias(node.bias if kind == "Affine" else None, int(w.shape[0]), n, kind)
            if len(src.shape) != 1 or w.shape[1] != src.shape[0]:
                raise node_error(n, kind, f"weight [out, in] = {list(w.shape)} does not take its input "
                                 f"{list(src.shape)}; flatten the map first")
            p = {"w": w, "b": b}
            if src.kind == "counts" and src.data.get("average"):
                p["w"] = p["w"] / float(src.data["average"])
            ly = {"type": "linear", "out_features": int(w.shape[0])}
            out = (int(w.shape[0]),)
        self.values[n] = Value("current", n, out, {"layer": ly, "src": src, **p})

    def _checked_conv(self, n: str, shape: tuple) -> tuple[dict, dict, tuple]:
        """A Conv2d's parameters, its conv layer and its output shape on an input map of ``shape``, each checked
        against the map (channels, the declared input_shape, a kernel that fits)."""
        node, kind = self.nodes[n], self.kinds[n]
        p = conv_params(node, n)
        if p["w"].shape[1] != shape[0]:
            raise node_error(n, kind, f"weight has {p['w'].shape[1]} input channels, its input has {shape[0]}")
        declared = getattr(node, "input_shape", None)
        if declared is not None and np.asarray(declared).reshape(-1).tolist() != list(shape[1:]):
            raise node_error(n, kind, f"input_shape {np.asarray(declared).reshape(-1).tolist()} is not its input map's "
                             f"{list(shape[1:])}; fix the graph's shapes", listed=False)
        ly = {"type": "conv", "kernel": p["kernel"], "stride": p["stride"], "padding": p["padding"],
              "out_channels": int(p["w"].shape[0])}
        out = self._conv_out_shape(n, ly, shape)
        return p, ly, out

    def _conv_out_shape(self, n: str, ly: dict, shape: tuple) -> tuple:
        """The output shape of conv layer ``ly`` of node ``n`` on an input map of ``shape``; a kernel larger than
        the padded map is the node's one-line error."""
        try:
            out = tuple(infer_out_shape(ly, [list(shape)], 2))
        except ValueError:
            out = (0, 0, 0)
        if min(out[1:]) <= 0:
            fits = min(shape[1:]) + 2 * ly["padding"]
            raise node_error(n, self.kinds[n], f"kernel {ly['kernel']} (padding {ly['padding']}) does not fit its "
                             f"input {list(shape)}; fix the graph: a kernel of at most {fits} at this padding")
        return out

    def _pool_weights(self, n: str, pool: Value) -> tuple[int, int, int]:
        """A sum (or average) pool of spikes that a weighted node reads: (window, stride, divisor), refused where
        folding it into the weights would not be exact (a window that is not square)."""
        if "window" in pool.data:
            h, w = pool.data["window"]
            raise node_error(n, self.kinds[n], f"reads a pool whose window {h}x{w} is not square; only square windows "
                             "fold into its weights", listed=True)
        return pool.data["kernel"], pool.data["stride"], pool.data["average"]

    def _conv_of_pooled(self, n: str, pool: Value) -> None:
        """A Conv2d reading a sum pool of spikes (Sinabs' IAF -> SumPool2d -> Conv2d): one convolution of the pool's
        input spikes, exactly. Pooled row i sums input rows s*i .. s*i+k-1, so kernel row u reads them through
        kernel row s*u + a of a conv at stride s x stride, with padding s x padding; where the pooled map's
        zero padding would cover real input rows (an overlapping pool, or rows the pool drops), it is refused."""
        kind = self.kinds[n]
        k, s, divisor = self._pool_weights(n, pool)
        src = pool.data["src"]
        p, _, out = self._checked_conv(n, pool.shape)
        covered = all(s * o >= size for o, size in zip(pool.shape[1:], src.shape[1:], strict=True))
        if p["padding"] and (k > s or not covered):
            why = "overlapping windows" if k > s else "windows that leave input rows or columns out"
            raise node_error(n, kind, f"pads ({p['padding']}) a pool of {why} (window {k}, stride {s}, input "
                             f"{list(src.shape)}): its zero padding would cover real spikes once folded into one conv; "
                             "use a pool whose windows tile its input, or padding 0", listed=False)
        kernel = s * (p["kernel"] - 1) + k
        w = np.zeros(p["w"].shape[:2] + (kernel, kernel))
        for u in range(p["kernel"]):
            for v in range(p["kernel"]):
                w[:, :, s * u:s * u + k, s * v:s * v + k] += p["w"][:, :, u:u + 1, v:v + 1]
        ly = {"type": "conv", "kernel": kernel, "stride": s * p["stride"], "padding": s * p["padding"],
              "out_channels": int(p["w"].shape[0])}
        if self._conv_out_shape(n, ly, src.shape) != out:
            raise node_error(n, kind, f"cannot fold its input pool (window {k}, stride {s}) into one conv of the same "
                             f"output shape {list(out)}", listed=True)
        self.notes.append(f"{n} (Conv2d) reads a {k}x{k} pool of spikes at stride {s}: folded into it (exact), one "
                          f"conv of kernel {kernel} at stride {ly['stride']} on {src.layer}'s spikes ({w.size} weights "
                          f"for {p['w'].size}: the accelerators pool spikes by max only)")
        self.values[n] = Value("current", n, out, {"layer": ly, "src": src, "w": w / divisor, "b": p["b"],
                                                    "kernel": kernel, "stride": ly["stride"],
                                                    "padding": ly["padding"]})

    def _linear_of_pooled(self, n: str, flat: Value) -> None:
        """Linear/Affine reading a flattened sum pool of spikes: one linear layer on the flattened input spikes,
        exactly (an input neuron's weight is the sum of the weights of the pooled neurons whose windows hold it;
        one no window holds gets 0)."""
        node, kind = self.nodes[n], self.kinds[n]
        pool = flat.data["pool"]
        k, s, divisor = self._pool_weights(n, pool)
        w = float_array(node.weight)
        if w.ndim != 2 or w.shape[1] != int(np.prod(pool.shape)):
            raise node_error(n, kind, f"weight [out, in] = {list(w.shape)} does not take its input {[flat.shape[0]]}")
        b = node_bias(node.bias if kind == "Affine" else None, int(w.shape[0]), n, kind)
        c, oh, ow = pool.shape
        h, wd = pool.data["src"].shape[1:]
        pooled = w.reshape(w.shape[0], c, oh, ow)
        full = np.zeros((w.shape[0], c, h, wd))
        for i in range(oh):
            for j in range(ow):
                full[:, :, s * i:s * i + k, s * j:s * j + k] += pooled[:, :, i:i + 1, j:j + 1]
        self.notes.append(f"{n} ({kind}) reads a flattened {k}x{k} pool of spikes at stride {s}: folded into it "
                          f"(exact), one linear layer of {c * h * wd} inputs on {flat.layer} ({full.size} weights for "
                          f"{w.size}: the accelerators pool spikes by max only)")
        ly = {"type": "linear", "out_features": int(w.shape[0])}
        src = Value("spikes", flat.layer, (c * h * wd,))
        self.values[n] = Value("current", n, (int(w.shape[0]),), {"layer": ly, "src": src,
                                                                   "w": full.reshape(w.shape[0], -1) / divisor,
                                                                   "b": b})

    def _scale(self, n: str) -> None:
        """Scale: the gain of a spike shortcut into a residual join."""
        src, kind = self.need_single(n), self.kinds[n]
        if src.kind != "spikes" or src.layer == "input":
            raise node_error(n, kind, "only a gain on a spike shortcut into a residual join is supported", listed=True)
        self.values[n] = Value("scaled", src.layer, src.shape,
                                {"scale": per_channel(self.nodes[n].scale, src.shape, n, kind, "scale"), "src": src,
                                 "node": n})

    def _pool_of_current(self, n: str, cur: Value) -> None:
        """A pool of a Conv2d's current (snnTorch's Conv2d -> AvgPool2d -> Leaky): one convolution, exactly (the
        window sums of a convolution are a convolution with the kernel summed over the window, at stride x stride)."""
        node, kind = self.nodes[n], self.kinds[n]
        if square_pair(node.padding, n, kind, "padding") != 0:
            raise node_error(n, kind, "padding must be 0")
        if self.consumers[n] != 1:
            raise node_error(n, kind, f"feeds {self.consumers[n]} nodes; a current must feed exactly one neuron or "
                             "Output")
        k, s = square_pair(node.kernel_size, n, kind, "kernel_size"), square_pair(node.stride, n, kind, "stride")
        if k > min(cur.shape[1:]):
            raise node_error(n, kind, f"window {k} does not fit its input {list(cur.shape)}")
        d = cur.data
        c = d["stride"]
        w = np.zeros(d["w"].shape[:2] + (d["kernel"] + c * (k - 1),) * 2)
        for a1 in range(k):
            for a2 in range(k):
                w[:, :, c * a1:c * a1 + d["kernel"], c * a2:c * a2 + d["kernel"]] += d["w"]
        average = kind == "AvgPool2d"
        w, b = (w / (k * k), d["b"]) if average else (w, d["b"] * (k * k))
        ly = {"type": "conv", "kernel": int(w.shape[2]), "stride": c * s, "padding": d["padding"],
              "out_channels": int(w.shape[0])}
        out = self._conv_out_shape(n, ly, d["src"].shape)
        self.notes.append(f"{n} ({kind} {k}x{k}, stride {s}) of the current of {cur.layer}: folded into it (exact), "
                          f"one conv of kernel {ly['kernel']} at stride {ly['stride']}")
        self.values[n] = Value("current", cur.layer, out, {"layer": ly, "src": d["src"], "w": w, "b": b,
                                                            "kernel": ly["kernel"], "stride": ly["stride"],
                                                            "padding": ly["padding"]})

    def _pool(self, n: str) -> None:
        """SumPool2d/AvgPool2d: pooled spikes, for a max-pool neuron or a global pool before Flatten."""
        src, node, kind = self.need_single(n), self.nodes[n], self.kinds[n]
        if src.kind == "current" and src.data["layer"]["type"] == "conv":
            self._pool_of_current(n, src)
            return
        if src.kind != "spikes" or len(src.shape) != 3 or (src.layer == "input" and not self.frames):
            raise node_error(n, kind, "pools spikes of a [C, H, W] layer (or spike-frame inputs), or the current of a "
                             "Conv2d", listed=True)
        c, h, w = src.shape
        if square_pair(node.padding, n, kind, "padding") != 0:
            raise node_error(n, kind, "padding must be 0")
        window = np.asarray(node.kernel_size).reshape(-1).tolist()
        if window == [h, w] and h != w:  # a global pool of a map that is not square: one window
            self.values[n] = Value("pooled", src.layer, (c, 1, 1), {"kernel": h, "stride": h, "global": True,
                                                                      "src": src, "window": (h, w),
                                                                      "average": h * w if kind == "AvgPool2d" else 1})
            return
        k = square_pair(node.kernel_size, n, kind, "kernel_size")
        s = square_pair(node.stride, n, kind, "stride")
        glob = k == h == w
        oh = (h - k) // s + 1
        if oh <= 0:
            raise node_error(n, kind, f"window {k} does not fit input {list(src.shape)}")
        self.values[n] = Value("pooled", src.layer, (c, oh, (w - k) // s + 1),
                                {"kernel": k, "stride": s, "global": bool(glob), "src": src,
                                 "average": k * k if kind == "AvgPool2d" else 1})

    def _flatten(self, n: str) -> None:
        """Flatten: of a global pool (an avgpool layer), of a spike map (a flatten layer), or of flat spikes."""
        src = self.need_single(n)
        node, kind = self.nodes[n], self.kinds[n]
        declared = (getattr(node, "input_type", None) or {}).get("input")
        dims = None if declared is None else np.asarray(declared).reshape(-1)
        rank = len(src.shape)
        start, end = int(getattr(node, "start_dim", 0)), int(getattr(node, "end_dim", -1))
        # NIR counts dims without the batch; an exporter that kept torch's batch-first dims (Sinabs: input_type
        # [0, 0, 0, 0], start_dim 1) says so by an input_type one longer than the map: shift its dims by one
        batch_first = dims is not None and dims.size == rank + 1 and (not dims.any() or dims[1:].tolist() ==
                                                                       list(src.shape))
        if self.single_channel and src.layer == "input" and dims is not None and dims.tolist() == list(src.shape[1:]):
            dims = np.asarray(src.shape)  # the [H, W] Input's Flatten declares [H, W]: the same neurons
        if dims is not None and dims.size and not batch_first and dims.tolist() != list(src.shape):
            raise node_error(n, kind, f"input_type {dims.tolist()} is not the shape it gets, "
                             f"{list(src.shape)}; fix the graph's shapes", listed=False)
        given = (start, end)  # as the file says, for the message
        if batch_first:  # a dim counted from the front skips the batch; one counted from the end (-1) does not
            start, end = (start - 1 if start >= 0 else start), (end - 1 if end >= 0 else end)
        first, last = (start + rank if start < 0 else start), (end + rank if end < 0 else end)
        if first != 0 or last != rank - 1:
            raise node_error(n, kind, f"start_dim {given[0]}, end_dim {given[1]} flattens part of a "
                             f"{list(src.shape)} map" + (" (its input_type counts a batch dim)" if batch_first else
                                                         " (NIR counts dims without the batch: start_dim 1 keeps "
                                                         "the channel axis)") + "; the format flattens whole maps: "
                             f"start_dim {1 if batch_first else 0} (or {-rank}), end_dim -1", listed=False)
        if src.kind == "pooled" and src.data["global"]:
            lname = self.layer_name(self.preds[n][0])
            self.layers.append({"name": lname, "type": "avgpool", "inputs": [src.layer]})
            self.values[n] = Value("counts", lname, (src.shape[0],), {"average": src.data["average"]})
        elif src.kind == "spikes" and len(src.shape) == 3:  # of the image too: the format's MLP on images
            lname = self.layer_name(n)
            self.layers.append({"name": lname, "type": "flatten", "inputs": [src.layer]})
            self.values[n] = Value("spikes", lname, (int(np.prod(src.shape)),))
            self.spike_nodes[lname] = n
        elif src.kind in ("spikes", "counts", "pooled_flat") and len(src.shape) == 1:
            self.values[n] = src  # already flat (a flat layer's spikes, a global pool's counts): a no-op
        elif src.kind == "pooled":  # of a pool that is not global: its Linear/Affine reads the pool's input spikes
            spikes = src.data["src"]
            lname = self.layer_name(n)
            self.layers.append({"name": lname, "type": "flatten", "inputs": [spikes.layer]})
            self.values[n] = Value("pooled_flat", lname, (int(np.prod(src.shape)),), {"pool": src})
        else:
            raise node_error(n, self.kinds[n], f"flattens a {src.kind} of shape {list(src.shape)}; it must flatten a "
                             "spike map or a global pool", listed=True)

    def _neuron(self, n: str) -> None:
        """LIF/IF/CubaLIF: a spike max-pool after a pool, a spiking layer after one current, or a residual join."""
        node, kind, dt = self.nodes[n], self.kinds[n], self.dt
        srcs = [self.values[p] for p in self.preds[n]]
        if len(srcs) == 1 and srcs[0].kind == "pooled":  # spike max-pool: pool -> neuron that fires iff any spike
            self._max_pool(n, srcs[0])
            return
        currents = [v for v in srcs if v.kind == "current"]
        if len(srcs) == 1 and currents:
            cur = currents[0]
            par = neuron_params(node, kind, n, cur.shape, dt)
            check_threshold(n, kind, par)
            self.betas[n] = par["beta"]
            lname = self.layer_name(cur.layer)
            first = self.reads_image(cur.data["src"])
            emit_spiking(lname, cur, par, first, self.frames, self.input_scale, self.layers, self.arrays,
                          self.state, self.notes)
            self.values[n] = Value("spikes", lname, cur.shape)
            self.spike_nodes[lname] = n
        elif len(srcs) == 2 and currents:
            main = currents[0]
            short = srcs[1] if srcs[0] is main else srcs[0]
            if short.kind not in ("current", "scaled", "spikes") or short.shape != main.shape:
                raise node_error(n, kind, f"joins a {main.kind} {list(main.shape)} and a {short.kind} "
                                 f"{list(short.shape)}; a join adds two currents of one shape (or a current and "
                                 "spikes)", listed=True)
            if short.kind == "spikes" and short.layer == "input":
                raise node_error(n, kind, "a shortcut from the Input is not supported", listed=True)
            par = neuron_params(node, kind, n, main.shape, dt)
            check_threshold(n, kind, par)
            self.betas[n] = par["beta"]
            lname = unique_name(n.replace("/", "_"), self.taken)
            emit_join(lname, main, short, par, self.layer_name, self.layers, self.arrays, self.notes)
            self.values[n] = Value("spikes", lname, main.shape)
            self.spike_nodes[lname] = n
        else:
            raise node_error(n, kind, "a neuron takes one current (Conv2d/Linear/Affine), two for a residual join, or "
                             "a pool (spike max-pool)", listed=True)

    def _max_pool(self, n: str, pool: Value) -> None:
        """A pool followed by a neuron that fires iff its window holds a spike: a maxpool layer, exactly."""
        kind = self.kinds[n]
        if "window" in pool.data:  # a maxpool layer has a square window: kernel h on an h x w map would skip columns
            h, w = pool.data["window"]
            raise node_error(n, kind, f"follows a pool whose window {h}x{w} is not square; the workload's max-pool "
                             "windows are square (a global pool of a non-square map is supported only before "
                             "Flatten -> Affine/Linear)", listed=True)
        par = neuron_params(self.nodes[n], kind, n, pool.shape, self.dt)
        one = par["gain"] / pool.data["average"]
        if np.any(par["leak"] != 0) or np.any(par["theta"] < 0):
            raise node_error(n, kind, "after a pool it must fire iff its window holds a spike: v_leak = 0 and "
                             "0 <= v_threshold < the current of one spike")
        if np.any(par["theta"] >= one):  # e.g. an IF with r = 1 (as Sinabs writes it) at the default --dt 1e-4
            c = int(np.argmax(par["theta"] - one))
            gain = "dt x r" + (" / window" if pool.data["average"] != 1 else "")
            raise node_error(n, kind, f"after a pool it must fire iff its window holds a spike, but one spike gives "
                             f"it a current of {one[c]:g} ({gain}) and its v_threshold is {par['theta'][c]:g}; lower "
                             f"v_threshold below that current, or import with the --dt (seconds) the graph's r was "
                             f"written for")
        lname = self.layer_name(self.preds[n][0])
        self.layers.append({"name": lname, "type": "maxpool", "inputs": [pool.layer],
                            "kernel": pool.data["kernel"], "stride": pool.data["stride"]})
        self.values[n] = Value("spikes", lname, pool.shape)
        self.spike_nodes[lname] = n

    def _readout(self, n: str) -> None:
        """LI/I (or a CubaLI with tau_syn = dt): the leaky integrator of the readout (Affine/Linear -> LI/I ->
        Output)."""
        src, kind = self.need_single(n), self.kinds[n]
        if src.kind != "current" or src.data["layer"]["type"] != "linear" or [
                self.kinds[s] for s in self.succs[n]] != ["Output"]:
            raise node_error(n, kind, "a leaky integrator is supported only as the readout: Affine/Linear -> LI/I -> "
                             "Output", listed=True)
        par = neuron_params(self.nodes[n], kind, n, src.shape, self.dt)
        if kind in ("LI", "CubaLI"):
            self.betas[n] = par["beta"]
        self.state["output_mode"] = "membrane" if kind in ("LI", "CubaLI") else "accumulate"
        self.values[n] = Value("readout", src.layer, src.shape, {"cur": src, "par": par})

    def _output(self, n: str) -> None:
        """Output: the output layer, from a readout or straight from an Affine/Linear current (a running sum); or,
        reading a spiking layer, no output layer: that layer's spike counts over T are the output (fixed T)."""
        src, kind = self.need_single(n), self.kinds[n]
        if src.kind == "spikes" and src.layer != "input":
            self._spike_count_end(n, src)
            return
        if src.kind == "readout":
            cur, par = src.data["cur"], src.data["par"]
        elif src.kind == "current" and src.data["layer"]["type"] == "linear":
            cur, par = src, {"gain": np.ones(src.shape[0]), "leak": np.zeros(src.shape[0])}
            self.state["output_mode"] = "accumulate"
            self.state["decision"] = "sum"
        elif src.kind == "spikes":
            raise node_error(n, kind, "reads the Input itself; a network needs at least one layer between them",
                             listed=True)
        else:
            raise node_error(n, kind, f"reads a {src.kind}; the output must be an Affine/Linear current or a spiking "
                             "layer's spikes", listed=True)
        classes = int(cur.shape[0])
        self._check_classes(n, classes)
        first = self.reads_image(cur.data["src"]) and not self.frames
        if first:  # a network of one layer: pixels scaled here
            par = dict(par, gain=par["gain"] * self.input_scale)
        emit_output(self.layer_name(cur.layer), cur, par, self.state, self.layers, self.arrays, self.meta,
                     self.notes, first)

    def _spike_count_end(self, n: str, src: Value) -> None:
        """Output reading a spiking layer (snnTorch-style rate-coded classifiers): the workload ends in that layer,
        one class per neuron, predicted by the most spikes over all T timesteps (docs/workload-format.md)."""
        self._check_classes(n, int(np.prod(src.shape)))
        self.state["output_mode"] = "spike_count"
        self.state["decision"] = "sum"
        self.state["classes"] = int(np.prod(src.shape))

    def _check_classes(self, n: str, classes: int) -> None:
        """The Output's declared size against what reaches it, and at least two classes."""
        kind = self.kinds[n]
        declared = np.asarray((getattr(self.nodes[n], "output_type", None) or {}).get("output", [classes])).reshape(-1)
        if declared.size and int(np.prod(declared)) != classes:
            raise WorkloadError.at(None, f"node {n!r} ({kind})", f"declares {int(np.prod(declared))} outputs but its "
                                   f"input gives {classes}", "fix the Output's output_type (or export the graph again)")
        if classes < 2:
            raise WorkloadError.at(None, f"node {n!r} ({kind})", f"gives {classes} class",
                                   "a classifier's output needs at least two classes")

    _HANDLERS = {
        "Conv2d": _weighted, "Linear": _weighted, "Affine": _weighted, "Scale": _scale,
        "SumPool2d": _pool, "AvgPool2d": _pool, "Flatten": _flatten,
        "LIF": _neuron, "IF": _neuron, "CubaLIF": _neuron, "LI": _readout, "CubaLI": _readout, "I": _readout,
        "Output": _output,
    }


def check_nodes(graph: Any) -> None:
    """Before anything else: every node is of a supported kind, and every parameter is finite (a NaN weight
    would become a platform-dependent integer)."""
    for n, node in graph.nodes.items():
        kind = type(node).__name__
        if kind == "NIRGraph":
            raise node_error(n, kind, "nested graphs are not supported: write a feed-forward subgraph's nodes into the "
                             "top graph (recurrence has no mapping)", listed=True)
        if kind not in _NODE_KINDS:
            raise node_error(n, kind, "unsupported node type", listed=True)
        for attr, value in sorted(vars(node).items()):
            if isinstance(value, np.ndarray) and value.dtype.kind == "c":  # float() would drop the imaginary part
                raise WorkloadError.at(None, f"node {n!r} ({kind})", f"its {attr} holds complex values",
                                       "export real parameters")
            if isinstance(value, np.ndarray) and value.dtype.kind in "fc" and not np.isfinite(value).all():
                raise WorkloadError.at(None, f"node {n!r} ({kind})", f"its {attr} holds NaN or infinite values",
                                       "export the graph from a network with finite parameters")
