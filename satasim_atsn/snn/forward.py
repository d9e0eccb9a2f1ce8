"""Quantised network forward over timesteps: integer-exact, batch-vectorised, with early exit.

This is the functional model. The trainer measures its quantised accuracy with it and the
simulator must reproduce its spikes, exit timesteps and predictions bit for bit.

Timestep-major: at each t every layer runs on every image still in the batch; then the exit
policy decides; images that exit leave the batch. Convolutions are float32 GEMMs on 0/1 spikes
and int8 weights, which are exact while fan_in * max_input * 127 < 2**24 (checked; float64
otherwise). The first layer's current of a static image is computed once per image.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from satasim_atsn.snn.exit_policies import ExitPolicy, FixedPolicy, mean_softmax_argmax
from satasim_atsn.snn.neurons import decay, lif_step, output_step
from satasim_atsn.workload.format import Workload, emits_spikes, is_spiking

EXACT_FLOAT32_LIMIT = 2**24
_OBSERVERS: list[Callable[[int], object]] = []  # called with the images of each finished batch


@contextmanager
def forward_progress(callback: Callable[[int], object]) -> Iterator[None]:
    """Within the block, every run_forward calls ``callback(n)`` after each batch of n images (progress bars)."""
    _OBSERVERS.append(callback)
    try:
        yield
    finally:
        _OBSERVERS.remove(callback)
POPCOUNT = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)


@dataclass
class ForwardResult:
    """What the functional forward computed for N images.

    ``out_membrane`` and ``logits`` hold the output layer per timestep; rows after an image's
    exit repeat its exit value. ``sops`` holds each layer's synaptic operations per timestep
    (summed over images), ``sops_per_image`` [N, T] every image's (eq. 19's terms).
    ``spikes`` (when recorded) maps each layer whose output is a
    spike map to a bool array [N, T, *shape], zero after the image's exit.
    """

    out_membrane: np.ndarray
    logits: np.ndarray
    exit_t: np.ndarray
    pred: np.ndarray
    pred_hw: np.ndarray
    scale_per_t: np.ndarray
    spike_counts: dict[str, np.ndarray] = field(default_factory=dict)
    sops: dict[str, np.ndarray] = field(default_factory=dict)
    sops_per_image: np.ndarray | None = None
    neurons: dict[str, int] = field(default_factory=dict)
    spikes: dict[str, np.ndarray] | None = None
    policy: dict = field(default_factory=dict)

    @property
    def num_images(self) -> int:
        return int(self.exit_t.shape[0])

    def accuracy(self, labels: np.ndarray | None) -> float | None:
        """Fraction of correct software predictions (None without labels)."""
        if labels is None:
            return None
        return float((self.pred == labels[: self.num_images]).mean())

    def avg_timestep(self) -> float:
        return float(self.exit_t.mean())


# ------------------------------------------------------------------------------------------
# vectorised integer kernels
# ------------------------------------------------------------------------------------------
def im2col(x: np.ndarray, kernel: int, stride: int, padding: int) -> tuple[np.ndarray, int, int]:
    """Patches [n*Ho*Wo, C*k*k] of x [n, C, H, W] (a copy, in x's dtype)."""
    n, c, h, w = x.shape
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]  # [n, C, Ho, Wo, k, k]
    ho, wo = windows.shape[2], windows.shape[3]
    cols = np.ascontiguousarray(windows.transpose(0, 2, 3, 1, 4, 5)).reshape(n * ho * wo, c * kernel * kernel)
    return cols, ho, wo


def _gemm_dtype(fan_in: int, max_input: int) -> type:
    return np.float32 if fan_in * max_input * 127 < EXACT_FLOAT32_LIMIT else np.float64


def conv_current(x: np.ndarray, w: np.ndarray, stride: int, padding: int, max_input: int = 1
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Integer conv currents [n, Cout, Ho, Wo] (int64) and each image's synaptic-op count [n].

    Synaptic ops = Cout x the number of nonzero inputs inside each receptive field (counts
    weigh by their value, as a count of c spikes is c accumulations).
    """
    cout, cin, k, _ = w.shape
    dtype = _gemm_dtype(cin * k * k, max_input)
    cols, ho, wo = im2col(x.astype(dtype, copy=False), k, stride, padding)
    out = cols @ w.reshape(cout, -1).T.astype(dtype)
    n = x.shape[0]
    sops = cols.reshape(n, -1).sum(axis=1, dtype=np.float64).astype(np.int64) * cout
    current = np.rint(out).astype(np.int64).reshape(n, ho, wo, cout).transpose(0, 3, 1, 2)
    return current, sops


def linear_current(x: np.ndarray, w: np.ndarray, max_input: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Integer linear currents [n, out] (int64) and each image's synaptic-op count [n]."""
    dtype = _gemm_dtype(w.shape[1], max_input)
    xf = x.reshape(x.shape[0], -1).astype(dtype, copy=False)
    out = xf @ w.T.astype(dtype)
    return np.rint(out).astype(np.int64), xf.sum(axis=1, dtype=np.float64).astype(np.int64) * w.shape[0]


def spike_maxpool(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """Spike max-pooling: the OR of each window."""
    n, c, h, w = x.shape
    if kernel == stride and h % kernel == 0 and w % kernel == 0:
        return x.reshape(n, c, h // kernel, kernel, w // kernel, kernel).max(axis=(3, 5))
    windows = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(2, 3))[:, :, ::stride, ::stride]
    return windows.max(axis=(4, 5))


# ------------------------------------------------------------------------------------------
# the network
# ------------------------------------------------------------------------------------------
class QuantisedNetwork:
    """A workload's integer network, ready to run timestep by timestep on a batch."""

    def __init__(self, workload: Workload) -> None:
        if workload.is_statistical:
            raise ValueError("a statistical workload has no weights; draw its spikes with workload.statistical")
        self.workload = workload
        self.layers = workload.layers
        self.T = workload.timesteps
        self.shifts = workload.decay_shifts
        self.bits = workload.vmem_bits
        self.out_bits = int(workload.meta["quant"].get("output_vmem_bits", 32))
        self.input_shift = workload.input_shift
        self.direct = workload.input_encoding == "direct"
        self.w = {
            ly["name"]: workload.weights(ly["name"]) for ly in self.layers if ly["type"] in ("conv", "linear", "output")
        }
        self.b = {
            ly["name"]: workload.bias(ly["name"]).astype(np.int64)
            for ly in self.layers
            if f"b/{ly['name']}" in workload.arrays
        }
        self.vth = {ly["name"]: workload.vth(ly["name"]).astype(np.int64) for ly in self.layers if is_spiking(ly)}
        self.output = self.layers[-1]
        self.mode = self.output["output_mode"]
        self.scale = float(self.output["logit_scale"])
        self.max_input = {"input": 255 if self.direct else 1}
        for ly in self.layers:
            if ly["type"] == "avgpool":
                self.max_input[ly["name"]] = int(np.prod(ly["in_shape"][1:]))
            else:
                self.max_input[ly["name"]] = 1

    def scale_per_t(self) -> np.ndarray:
        """Factor from integer output membrane to logits at t = 1..T."""
        t = np.arange(1, self.T + 1, dtype=np.float64)
        return self.scale / t if self.mode == "accumulate" else np.full(self.T, self.scale)

    def _bias_view(self, name: str, ndim: int) -> np.ndarray | int:
        if name not in self.b:
            return 0
        return self.b[name].reshape((1, -1) + (1,) * (ndim - 2))

    def _vth_view(self, name: str, ndim: int) -> np.ndarray:
        return self.vth[name].reshape((1, -1) + (1,) * (ndim - 2))

    def first_layer_current(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Current of the first layer for uint8 images: (W.x + b) >> input_shift, computed once.

        Its synaptic operations are the bit-serial accumulations the hardware performs: one per
        set bit of each pixel in a receptive field, per output channel (docs/microarchitecture.md
        section 5), not the pixel values.
        """
        layer = self.layers[0]
        bits = POPCOUNT[x]
        if layer["type"] == "conv":
            cur, _ = conv_current(x, self.w[layer["name"]], layer["stride"], layer["padding"], max_input=255)
            cols, _, _ = im2col(bits, layer["kernel"], layer["stride"], layer["padding"])
            sops = cols.reshape(x.shape[0], -1).sum(axis=1, dtype=np.int64) * int(layer["out_channels"])
        else:
            cur, _ = linear_current(x, self.w[layer["name"]], max_input=255)
            sops = bits.reshape(x.shape[0], -1).sum(axis=1, dtype=np.int64) * int(layer["out_features"])
        cur = cur + self._bias_view(layer["name"], cur.ndim)
        return cur >> self.input_shift, sops

    def init_state(self, n: int) -> dict[str, np.ndarray]:
        """Zeroed membranes for n images."""
        state = {}
        for ly in self.layers:
            if is_spiking(ly) or ly["type"] == "output":
                state[ly["name"]] = np.zeros((n,) + tuple(ly["out_shape"]), dtype=np.int64)
        return state

    def step(
        self, state: dict[str, np.ndarray], frame: np.ndarray, first_current: np.ndarray | None, t: int
    ) -> tuple[dict[str, np.ndarray], dict[str, int], dict[str, np.ndarray]]:
        """Run every layer once at timestep t (1-based). Returns (outputs, spike counts, sops [n] per layer)."""
        outputs: dict[str, np.ndarray] = {"input": frame}
        counts: dict[str, int] = {}
        sops: dict[str, np.ndarray] = {}
        n = frame.shape[0]
        for index, ly in enumerate(self.layers):
            name, kind = ly["name"], ly["type"]
            src = outputs[ly["inputs"][0]]
            if kind in ("conv", "linear", "output"):
                if index == 0 and self.direct:
                    current, ops = first_current, np.zeros(n, dtype=np.int64)  # charged once, by the caller
                elif kind == "conv":
                    current, ops = conv_current(
                        src, self.w[name], ly["stride"], ly["padding"], self.max_input[ly["inputs"][0]]
                    )
                else:
                    current, ops = linear_current(src, self.w[name], self.max_input[ly["inputs"][0]])
                if not (index == 0 and self.direct):
                    current = current + self._bias_view(name, current.ndim)
                sops[name] = ops
                if kind == "output":
                    shifts = self.shifts if self.mode == "membrane" else None
                    state[name] = output_step(state[name], current, shifts, self.out_bits)
                    outputs[name] = state[name]
                elif is_spiking(ly):
                    spikes, state[name] = lif_step(
                        state[name], current, self._vth_view(name, current.ndim), self.shifts, self.bits
                    )
                    outputs[name] = spikes.astype(np.uint8)
                    counts[name] = int(spikes.sum())
                else:
                    outputs[name] = current
            elif kind == "maxpool":
                outputs[name] = spike_maxpool(src, ly["kernel"], ly["stride"])
                counts[name] = int(outputs[name].sum())
            elif kind == "avgpool":
                outputs[name] = src.reshape(src.shape[0], src.shape[1], -1).sum(axis=2, dtype=np.int64)
            elif kind == "flatten":
                outputs[name] = src.reshape(src.shape[0], -1)
                if emits_spikes(self.layers[index]):
                    counts[name] = int(outputs[name].sum())
            elif kind == "add":
                short_name = ly["inputs"][1]
                short = outputs[short_name]
                if short.dtype == np.uint8:
                    short_current = short.astype(np.int64) * int(ly["shortcut_gain"])
                    sops[name] = short.reshape(n, -1).sum(axis=1, dtype=np.int64)
                else:
                    short_current = short
                    sops[name] = np.zeros(n, dtype=np.int64)
                current = src + short_current + self._bias_view(name, src.ndim)
                spikes, state[name] = lif_step(
                    state[name], current, self._vth_view(name, src.ndim), self.shifts, self.bits
                )
                outputs[name] = spikes.astype(np.uint8)
                counts[name] = int(spikes.sum())
        return outputs, counts, sops


def run_forward(
    workload: Workload,
    x: np.ndarray | None = None,
    policy: ExitPolicy | None = None,
    record_spikes: bool = False,
    batch_size: int = 256,
    start: int = 0,
    count: int | None = None,
) -> ForwardResult:
    """Run the integer network on inputs ``x`` (default: the workload's own, from ``start``).

    With a policy, images leave the batch at their exit step (the policy sees logits, and the
    hardware ATSN rule sees integer membranes). Without one, all T timesteps run.
    """
    net = QuantisedNetwork(workload)
    if x is None:
        stop = None if count is None else start + count
        x = workload.inputs(start, stop)
    policy = policy or FixedPolicy()
    n_total, T = x.shape[0], net.T
    C = workload.num_classes
    out_membrane = np.zeros((n_total, T, C), dtype=np.int64)
    exit_t = np.full(n_total, T, dtype=np.int64)
    spike_counts = {ly["name"]: np.zeros(T, dtype=np.int64) for ly in net.layers if emits_spikes(ly)}
    sops = {
        ly["name"]: np.zeros(T, dtype=np.int64)
        for ly in net.layers
        if ly["type"] in ("conv", "linear", "output", "add")
    }
    sops_image = np.zeros((n_total, T), dtype=np.int64)
    neurons = {ly["name"]: int(np.prod(ly["out_shape"])) for ly in net.layers}
    spikes_rec: dict[str, np.ndarray] | None = None
    if record_spikes:
        spikes_rec = {
            ly["name"]: np.zeros((n_total, T) + tuple(ly["out_shape"]), dtype=bool)
            for ly in net.layers
            if emits_spikes(ly)
        }
    scale_t = net.scale_per_t()
    first = net.layers[0]
    for lo in range(0, n_total, batch_size):
        hi = min(lo + batch_size, n_total)
        xb = x[lo:hi]
        active = np.arange(lo, hi)
        state = net.init_state(hi - lo)
        first_current = None
        if net.direct:
            first_current, first_sops = net.first_layer_current(xb)
            sops[first["name"]][0] += int(first_sops.sum())
            sops_image[lo:hi, 0] += first_sops
        for t in range(1, T + 1):
            frame = xb if net.direct else xb[:, t - 1]
            outputs, counts, ops = net.step(state, frame, first_current, t)
            for name, value in counts.items():
                spike_counts[name][t - 1] += value
            for name, value in ops.items():
                sops[name][t - 1] += int(value.sum())
                sops_image[active, t - 1] += value
            membrane = outputs[net.output["name"]]
            out_membrane[active, t - 1] = membrane
            if spikes_rec is not None:
                for name in spikes_rec:
                    spikes_rec[name][active, t - 1] = outputs[name].astype(bool)
            if t == T:
                break
            logits_t = membrane.astype(np.float64) * scale_t[t - 1]
            stop = policy.decide(t, T, logits_t, membrane, float(scale_t[t - 1]))
            if stop.any():
                exit_t[active[stop]] = t
                keep = ~stop
                active = active[keep]
                xb = xb[keep]
                state = {k: v[keep] for k, v in state.items()}
                if first_current is not None:
                    first_current = first_current[keep]
                if active.size == 0:
                    break
        for observer in _OBSERVERS:
            observer(hi - lo)
    # rows after the exit repeat the exit value, so [:, t] is "the output as known at t"
    steps = np.arange(1, T + 1)[None, :]
    after = steps > exit_t[:, None]
    idx = np.where(after, exit_t[:, None] - 1, steps - 1)
    out_membrane = np.take_along_axis(out_membrane, idx[:, :, None], axis=1)
    logits = out_membrane.astype(np.float64) * scale_t[None, :, None]
    rows = np.arange(n_total)
    at_exit = logits[rows, exit_t - 1]
    if net.mode == "membrane":
        pred = mean_softmax_argmax(logits, exit_t)  # eq. 10: argmax of the running mean
    else:
        pred = at_exit.argmax(axis=-1)  # eq. 5: argmax of the mean output
    pred_hw = out_membrane[rows, exit_t - 1].argmax(axis=-1)
    return ForwardResult(
        out_membrane=out_membrane,
        logits=logits,
        exit_t=exit_t,
        pred=pred.astype(np.int64),
        pred_hw=pred_hw.astype(np.int64),
        scale_per_t=scale_t,
        spike_counts=spike_counts,
        sops=sops,
        sops_per_image=sops_image,
        neurons=neurons,
        spikes=spikes_rec,
        policy=policy.describe(),
    )


def evaluate_policies(result: ForwardResult, policies: list[ExitPolicy]) -> dict[str, np.ndarray]:
    """Exit steps of several policies from one full-T forward (no re-run needed)."""
    out = {}
    for policy in policies:
        out[policy.describe()["name"] + ("-hw" if getattr(policy, "hardware", False) else "")] = policy.exit_steps(
            result.logits, result.out_membrane, result.scale_per_t
        )
    return out


def predictions_at(result: ForwardResult, exit_t: np.ndarray, mode: str) -> np.ndarray:
    """Software predictions (eq. 10 or eq. 5) if images stopped at ``exit_t`` (from a full-T run)."""
    rows = np.arange(result.num_images)
    if mode == "membrane":
        return mean_softmax_argmax(result.logits, exit_t)
    return result.logits[rows, exit_t - 1].argmax(axis=-1)


__all__ = ["ForwardResult", "QuantisedNetwork", "run_forward", "evaluate_policies", "predictions_at", "decay"]
