"""A trainable float SNN built from a layer table: forward over T timesteps and STBP backward.

Float dynamics equal the integer forward's (``snn/forward.py``): LIF with tau = 0.5, hard reset,
V_th = 1.0; spike max-pooling; global pooling; residual joins adding currents before a LIF;
output layer either eq. 8 (membrane: u_t = tau*u_{t-1} + W s_t + b, no reset) or a plain
layer whose per-step output is averaged over time (accumulate, eq. 5).
"""

from __future__ import annotations

import numpy as np

from satasim_atsn.train import layers as L

F32 = np.float32


class Network:
    """Parameters, BN running statistics and the forward/backward of one layer table."""

    def __init__(self, spec: list[dict], timesteps: int, seed: int = 0, tau: float = 0.5, vth: float = 1.0,
                 direct_input: bool = True, smooth_spikes: bool = False, reuse_buffers: bool = True) -> None:
        self.spec = spec
        self.timesteps = int(timesteps)
        self.tau, self.vth = float(tau), float(vth)
        self.direct_input = direct_input
        self.smooth_spikes = smooth_spikes  # gradient checks only: a differentiable stand-in for the step
        self.output_mode = spec[-1]["output_mode"]
        self.params: dict[str, dict[str, np.ndarray]] = {}
        self.running: dict[str, dict[str, np.ndarray]] = {}
        rng = np.random.default_rng(seed)
        for layer in spec:
            name = layer["name"]
            if layer["type"] == "conv":
                k, cin, cout = layer["kernel"], layer["in_shape"][0], layer["out_channels"]
                fan_in = k * k * cin
                p = {"w": (rng.standard_normal((fan_in, cout)) * np.sqrt(2.0 / fan_in)).astype(F32)}
                if layer.get("bn", True):
                    p["gamma"] = np.ones(cout, F32)
                    p["beta"] = np.zeros(cout, F32)
                    self.running[name] = {"mean": np.zeros(cout, F32), "var": np.ones(cout, F32)}
                self.params[name] = p
            elif layer["type"] in ("linear", "output"):
                fan_in, out = layer["in_shape"][0], layer["out_shape"][0]
                self.params[name] = {"w": (rng.standard_normal((fan_in, out)) * np.sqrt(1.0 / fan_in)).astype(F32),
                                     "b": np.zeros(out, F32)}
                if layer["type"] == "linear" and layer.get("bn", False):  # a hidden layer of a network file
                    self.params[name].update(gamma=np.ones(out, F32), beta=np.zeros(out, F32))
                    self.running[name] = {"mean": np.zeros(out, F32), "var": np.ones(out, F32)}
        self._caches: dict[str, tuple] = {}
        #: flatten layers of the direct-encoded image (an MLP on images): static, read by a static linear or output
        #: layer
        self._image_flattens = {ly["name"] for ly in spec if ly["type"] == "flatten" and ly["inputs"] == ["input"]
                                and direct_input}
        # buffers reused by training steps (the caches of a step point into them until the next forward);
        # reuse_buffers=False allocates afresh as before (tests compare the two, bit for bit)
        self._ws = L.Workspace() if reuse_buffers else None
        # what a zero uint8 pixel becomes after normalisation (the first conv pads with it)
        self.input_pad: np.ndarray | float = 0.0

    # --------------------------------------------------------------------------------------
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Per-step outputs f [T, B, classes] for normalised inputs ``x`` [B, H, W, C] (or [T, B, H, W, C])."""
        T = self.timesteps
        outs: dict[str, np.ndarray] = {"input": x.astype(F32, copy=False)}
        caches: dict[str, tuple] = {}
        ws = self._ws if training else None
        last_use = self._last_use()
        for index, layer in enumerate(self.spec):
            if not training:
                # an evaluation keeps no backward caches (the im2col patches of every layer: 16 GB for
                # ResNet19 w0.125 at batch 256) and drops each output once its last reader has run
                caches.clear()
                for dead in [k for k in outs if last_use.get(k, -1) < index]:
                    del outs[dead]
            name, kind = layer["name"], layer["type"]
            src_name = layer["inputs"][0]
            src = outs[src_name]
            if kind == "conv":
                static = src_name == "input" and self.direct_input
                p = self.params[name]
                spiking = layer.get("spiking", True)
                # a spiking layer's current dies in its LIF, so all such layers share one buffer
                cur, conv_cache = L.conv_forward(src, p["w"], layer["kernel"], layer["stride"], layer["padding"],
                                                 need_input_grad=src_name != "input",
                                                 pad_value=self.input_pad if src_name == "input" else 0.0,
                                                 ws=ws, cols_key=(name, "cols"),
                                                 out_key="current" if spiking else (name, "current"))
                bn_cache = lif_cache = None
                if (ws is not None and "gamma" in p and spiking and not static and not self.smooth_spikes
                        and cur.shape[0] == T and cur.dtype == p["gamma"].dtype == p["beta"].dtype == F32):
                    # training step: tdBN's last element-wise step and the LIF in one pass (same values)
                    out, bn_cache, lif_cache = L.bn_lif_forward(cur, p["gamma"], p["beta"], self.running[name],
                                                                training, T, self.tau, self.vth, ws,
                                                                ((name, "xhat"), (name, "u"), (name, "s")))
                else:
                    if "gamma" in p:
                        cur, bn_cache = L.bn_forward(cur, p["gamma"], p["beta"], self.running[name], training,
                                                     ws=ws, xhat_key=(name, "xhat"), overwrite_input=True)
                    if spiking:
                        out, lif_cache = L.lif_forward(cur, T, static=static, tau=self.tau, vth=self.vth,
                                                       smooth=self.smooth_spikes, ws=ws,
                                                       keys=((name, "u"), (name, "s")))
                    else:
                        out = np.broadcast_to(cur, (T,) + cur.shape) if static else cur
                caches[name] = (conv_cache, bn_cache, lif_cache, static)
            elif kind == "linear":
                out, caches[name] = self._linear_forward(layer, src, training)
            elif kind == "maxpool":
                out, caches[name] = self._maxpool_forward(layer, src, ws)
            elif kind == "avgpool":
                out, caches[name] = L.avgpool_forward(src)
            elif kind == "flatten":  # a static image has no time axis: [B, H, W, C] -> [B, H*W*C]
                out = src.reshape(src.shape[:1 if name in self._image_flattens else 2] + (-1,))
                caches[name] = src.shape
            elif kind == "add":
                cur = src + outs[layer["inputs"][1]]
                out, caches[name] = L.lif_forward(cur, T, tau=self.tau, vth=self.vth, smooth=self.smooth_spikes)
            elif kind == "output":
                p = self.params[name]
                o, lin_cache = L.linear_forward(src, p["w"], p["b"])
                # a one-layer classifier on the direct image: its current is the same at every t
                static = self.direct_input and src_name in self._image_flattens
                if static:
                    o = np.ascontiguousarray(np.broadcast_to(o, (T,) + o.shape))
                caches[name] = (lin_cache, static)
                if self.output_mode == "membrane":
                    out = np.empty_like(o)
                    u = np.zeros_like(o[0])
                    for t in range(T):
                        u = F32(self.tau) * u + o[t]
                        out[t] = u
                else:
                    out = o
            else:  # pragma: no cover - build_spec only emits the types above
                raise ValueError(kind)
            outs[name] = out
        self._caches = caches if training else {}
        return outs[self.spec[-1]["name"]]

    def _linear_forward(self, layer: dict, src: np.ndarray, training: bool) -> tuple[np.ndarray, tuple]:
        """A linear layer: its current, tdBN (a network file's hidden layer), LIF; (spikes or current, cache)."""
        name, p = layer["name"], self.params[layer["name"]]
        # a direct image flattened (an MLP on images): its current is the same at every t, as a first conv's
        static = self.direct_input and layer["inputs"][0] in self._image_flattens
        cur, lin_cache = L.linear_forward(src, p["w"], p["b"])
        bn_cache = None
        if "gamma" in p:  # tdBN over time, batch and features, as after a conv
            cur, bn_cache = L.bn_forward(cur, p["gamma"], p["beta"], self.running[name], training)
        out, lif_cache = (L.lif_forward(cur, self.timesteps, static=static, tau=self.tau, vth=self.vth,
                                        smooth=self.smooth_spikes)
                          if layer.get("spiking", True) else (cur, None))
        return out, (lin_cache, bn_cache, lif_cache)

    @staticmethod
    def _maxpool_forward(layer: dict, src: np.ndarray, ws: L.Workspace | None) -> tuple[np.ndarray, tuple]:
        """A spike max-pool: the tiling kernels (stride = kernel), or a network file's overlapping windows."""
        name, kernel = layer["name"], layer["kernel"]
        if layer.get("stride", kernel) != kernel:
            return L.strided_maxpool_forward(src, kernel, layer["stride"])
        return L.maxpool_forward(src, kernel, ws=ws, keys=((name, "out"), (name, "arg")))

    def _last_use(self) -> dict[str, int]:
        """Index of the last layer reading each output (the final layer's own output: never dropped)."""
        last: dict[str, int] = {}
        for index, layer in enumerate(self.spec):
            for src in layer["inputs"]:
                last[src] = index
        last[self.spec[-1]["name"]] = len(self.spec)
        return last

    # --------------------------------------------------------------------------------------
    def backward(self, grad_f: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """STBP: gradients of every parameter given dL/df [T, B, classes] (after a training forward)."""
        caches = self._caches
        grads: dict[str, dict[str, np.ndarray]] = {}
        gout: dict[str, np.ndarray] = {self.spec[-1]["name"]: grad_f.astype(F32, copy=False)}

        def push(src: str, g: np.ndarray | None) -> None:
            if g is None or src == "input":
                return
            gout[src] = gout[src] + g if src in gout else g

        for layer in reversed(self.spec):
            name, kind = layer["name"], layer["type"]
            g = gout.pop(name, None)
            if g is None:
                continue
            src = layer["inputs"][0]
            if kind == "output":
                p = self.params[name]
                if self.output_mode == "membrane":
                    go = np.empty_like(g)
                    acc = np.zeros_like(g[0])
                    for t in range(g.shape[0] - 1, -1, -1):
                        acc = g[t] + F32(self.tau) * acc
                        go[t] = acc
                    g = go
                lin_cache, static = caches[name]
                if static:  # the same current at every t: its gradient is the sum over t
                    g = g.sum(axis=0)
                dx, dw, db = L.linear_backward(g, p["w"], lin_cache)
                grads[name] = {"w": dw, "b": db}
                push(src, dx)
            elif kind == "conv":
                conv_cache, bn_cache, lif_cache, static = caches[name]
                p = self.params[name]
                if lif_cache is not None:
                    # dies in this layer's BN and GEMMs, so all conv layers share the buffer
                    g = L.lif_backward(g, lif_cache, ws=self._ws, key="grad_current")
                elif static:
                    g = g.sum(axis=0)
                grads[name] = {}
                if bn_cache is not None:
                    g, dgamma, dbeta = L.bn_backward(g, bn_cache, overwrite_grad=lif_cache is not None)
                    grads[name]["gamma"], grads[name]["beta"] = dgamma, dbeta
                dx, dw = L.conv_backward(g, p["w"], conv_cache, ws=self._ws, dcols_key="dcols", dx_key=(name, "dx"))
                grads[name]["w"] = dw
                push(src, dx)
            elif kind == "linear":
                lin_cache, bn_cache, lif_cache = caches[name]
                if lif_cache is not None:
                    g = L.lif_backward(g, lif_cache)
                grads[name] = {}
                if bn_cache is not None:
                    g, grads[name]["gamma"], grads[name]["beta"] = L.bn_backward(g, bn_cache)
                dx, dw, db = L.linear_backward(g, self.params[name]["w"], lin_cache)
                grads[name].update(w=dw, b=db)
                push(src, dx)
            elif kind == "maxpool":
                cache = caches[name]
                strided = isinstance(cache[0], str) and cache[0] == "strided"
                push(src, L.strided_maxpool_backward(g, cache) if strided else
                     L.maxpool_backward(g, cache, ws=self._ws, key=(name, "dx")))
            elif kind == "avgpool":
                push(src, L.avgpool_backward(g, caches[name]))
            elif kind == "flatten":
                push(src, g.reshape(caches[name]))
            elif kind == "add":
                gi = L.lif_backward(g, caches[name])
                push(src, gi)
                push(layer["inputs"][1], gi)
        self._caches = {}
        return grads

    # --------------------------------------------------------------------------------------
    def state_arrays(self) -> dict[str, np.ndarray]:
        """Flat dict of parameters and running statistics (for checkpoints)."""
        out = {f"p/{n}/{k}": v for n, p in self.params.items() for k, v in p.items()}
        out.update({f"r/{n}/{k}": v for n, r in self.running.items() for k, v in r.items()})
        return out

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Inverse of :meth:`state_arrays`; raises KeyError/ValueError on a mismatch."""
        for prefix, store in (("p", self.params), ("r", self.running)):
            for n, group in store.items():
                for k, v in group.items():
                    new = arrays[f"{prefix}/{n}/{k}"]
                    if new.shape != v.shape:
                        raise ValueError(f"{prefix}/{n}/{k} has shape {new.shape}, expected {v.shape}")
                    group[k] = new.astype(F32)
