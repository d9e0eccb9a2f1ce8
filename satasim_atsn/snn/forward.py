"""Quantised network forward over timesteps: integer-exact, batch-vectorised, with early exit.

This is the functional model. The trainer measures its quantised accuracy with it and the
simulator must reproduce its spikes, exit timesteps and predictions bit for bit.

Timestep-major: at each t every layer runs on every image still in the batch; then the exit
policy decides; images that exit leave the batch. A spiking conv on 0/1 spikes is event-driven
(snn/kernels.py): each spike adds its int8 weight rows into int32 sums, exact while
fan_in * max|w| < 2**31, with the LIF fused. Other convolutions are float32 GEMMs, exact while
fan_in * max_input * 127 < 2**24 (checked; float64 otherwise). The first layer's current of a
static image is computed once per image (an integer conv of the pixels).

A network without an output layer ends in a spiking layer: its output "membranes" are that layer's
spike counts summed over t = 1..T (flat neuron order), its logits the counts themselves, and it runs
all T timesteps (an exit policy needs an output layer).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from satasim_atsn.errors import WorkloadError
from satasim_atsn.snn.exit_policies import ExitPolicy, FixedPolicy, hardware_predictions, mean_softmax_argmax
from satasim_atsn.snn.kernels import (
    current_lif,
    gemm_rows_lif,
    im2col_into,
    pixel_conv,
    spike_conv_lif,
    spike_conv_s1_lif,
    spike_maxpool_counted,
)
from satasim_atsn.snn.neurons import decay, lif_step, output_step
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.pool_windows import window_coverage
from satasim_atsn.workload.schema import emits_spikes, is_spiking

EXACT_FLOAT32_LIMIT = 2**24
EXACT_INT32_LIMIT = 2**31
_OBSERVERS: list[Callable[[int], object]] = []  # called with the images of each finished batch


@contextmanager
def forward_progress(callback: Callable[[int], object]) -> Iterator[None]:
    """Within the block, every run_forward calls ``callback(n)`` after each batch of n images (progress bars)."""
    _OBSERVERS.append(callback)
    try:
        yield
    finally:
        _OBSERVERS.remove(callback)
SPIKE_COUNTS = "/spike_counts"  # state key of a spiking-output network's running counts (no layer name has '/')
POPCOUNT = np.array([bin(v).count("1") for v in range(256)], dtype=np.uint8)


@dataclass
class ForwardResult:
    """What the functional forward computed for N images.

    ``out_membrane`` and ``logits`` hold the output layer per timestep; rows after an image's
    exit repeat its exit value. ``sops`` holds each layer's synaptic operations per timestep
    (summed over images), ``sops_per_image`` [N, T] every image's (eq. 19's terms) and
    ``first_layer_sops_per_image`` [N, T] the first weighted layer's share of them.
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
    first_layer_sops_per_image: np.ndarray | None = None
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
def _gemm_dtype(fan_in: int, max_input: int) -> type:
    return np.float32 if fan_in * max_input * 128 < EXACT_FLOAT32_LIMIT else np.float64  # |w| <= 128 (int8)


def conv_sops(x: np.ndarray, cout: int, kernel: int, stride: int, padding: int) -> np.ndarray:
    """Each image's synaptic ops [n] of a conv on channel-last x [n, H, W, C].

    Cout x the inputs inside every receptive field, counted as the sum over inputs of value x the
    number of windows covering it (exact integers; a count of c spikes is c accumulations).
    """
    n, h, w, _ = x.shape
    cover = np.outer(window_coverage(h, kernel, stride, padding), window_coverage(w, kernel, stride, padding))
    per_position = x.sum(axis=3, dtype=np.int64).reshape(n, -1)
    return (per_position * cover.reshape(1, -1)).sum(axis=1) * int(cout)


def conv_gemm(x: np.ndarray, w_rows: np.ndarray, kernel: int, stride: int, padding: int
              ) -> tuple[np.ndarray, int, int]:
    """A conv on channel-last x [n, H, W, C] as one GEMM with weights [k*k*C, Cout] (exact-integer floats).

    Returns the output rows [n*Ho*Wo, Cout] (which are the channel-last output) and (Ho, Wo).
    """
    n, h, width, c = x.shape
    ho = (h + 2 * padding - kernel) // stride + 1
    wo = (width + 2 * padding - kernel) // stride + 1
    cols = np.empty((n * ho * wo, kernel * kernel * c), dtype=w_rows.dtype)
    im2col_into(np.ascontiguousarray(x), kernel, stride, padding, np.zeros(c, dtype=cols.dtype), cols)
    return cols @ w_rows, ho, wo


def linear_current(x: np.ndarray, w: np.ndarray, max_input: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Integer linear currents [n, out] (int64) and each image's synaptic-op count [n]."""
    dtype = _gemm_dtype(w.shape[1], max_input)
    xf = x.reshape(x.shape[0], -1).astype(dtype, copy=False)
    out = xf @ w.T.astype(dtype)
    return np.rint(out).astype(np.int64), xf.sum(axis=1, dtype=np.float64).astype(np.int64) * w.shape[0]


def spike_maxpool(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """Spike max-pooling of x [n, C, H, W]: the OR of each window."""
    return np.moveaxis(spike_maxpool_nhwc(np.moveaxis(x, 1, 3), kernel, stride), 3, 1)


def spike_maxpool_nhwc(x: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """Spike max-pooling of channel-last x [n, H, W, C]."""
    n, h, w, c = x.shape
    if kernel == stride and h % kernel == 0 and w % kernel == 0:
        return x.reshape(n, h // kernel, kernel, w // kernel, kernel, c).max(axis=(2, 4))
    windows = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(1, 2))[:, ::stride, ::stride]
    return windows.max(axis=(4, 5))


def to_nchw(value: np.ndarray) -> np.ndarray:
    """A channel-last map [n, H, W, C] as [n, C, H, W] (other ranks unchanged)."""
    return np.moveaxis(value, 3, 1) if value.ndim == 4 else value


# ------------------------------------------------------------------------------------------
# the network
# ------------------------------------------------------------------------------------------
class QuantisedNetwork:
    """A workload's integer network, ready to run timestep by timestep on a batch.

    Maps are kept channel-last ([n, H, W, C]) inside, so that a conv is an im2col of contiguous
    channel vectors and one GEMM whose rows are already the next map; :func:`run_forward` hands
    them out as [n, C, H, W], the workload's layout.
    """

    def __init__(self, workload: Workload) -> None:
        if workload.is_statistical:
            raise ValueError("a statistical workload has no weights; draw its spikes with traces.statistical")
        self.workload = workload
        self.layers = workload.layers
        self.T = workload.timesteps
        self.shifts = workload.decay_shifts
        self.shift_array = np.asarray(self.shifts, dtype=np.int64)
        self.bits = workload.vmem_bits
        self.out_bits = int(workload.meta["quant"].get("output_vmem_bits", 32))
        self.input_shift = workload.input_shift
        self.direct = workload.input_encoding == "direct"
        # the layer that reads a direct image's pixels (bit-serially, once): the first weighted layer,
        # at index 0 or behind a flatten of the image (workload/format.py checks that nothing else does)
        self.first_weighted = next(i for i, ly in enumerate(workload.layers)
                                   if ly["type"] in ("conv", "linear", "output"))
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
        self.has_output = self.output["type"] == "output"
        # without an output layer the last layer's spike counts are the output: summed over t, scale 1
        self.mode = self.output["output_mode"] if self.has_output else "spike_count"
        self.scale = float(self.output["logit_scale"]) if self.has_output else 1.0
        self.max_input = {"input": 255 if self.direct else 1}
        for ly in self.layers:
            if ly["type"] == "avgpool":
                self.max_input[ly["name"]] = int(np.prod(ly["in_shape"][1:]))
            else:
                self.max_input[ly["name"]] = 1
        self.w_spike: dict[str, np.ndarray] = {}
        self.w_pixel: np.ndarray | None = None  # the direct-input conv's weights [k, k, C, Cout] for pixel_conv
        self.w_rows = {}  # conv weights as GEMM operands [k*k*Cin, Cout] in the dtype that keeps them exact
        for ly in self.layers:
            if ly["type"] == "conv":
                w = self.w[ly["name"]]
                cout, cin, k, _ = w.shape
                dtype = _gemm_dtype(cin * k * k, self.max_input[ly["inputs"][0]])
                self.w_rows[ly["name"]] = np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(k * k * cin, cout),
                                                               dtype=dtype)
                # event-driven operand [k, k, Cin, Cout] for 0/1 spike inputs, when int32 sums stay exact
                wmax = int(np.abs(w.astype(np.int64)).max(initial=0))
                first = ly is self.layers[self.first_weighted]
                if first and self.direct and k * k * cin * 255 * wmax < EXACT_INT32_LIMIT:
                    self.w_pixel = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=np.int32)
                if k * k * cin * wmax < EXACT_INT32_LIMIT and wmax < 2**15:
                    if ly["stride"] == 1 and ly["padding"] < k:  # scatter form: [Cin, ky, kx reversed * Cout]
                        self.w_spike[ly["name"]] = np.ascontiguousarray(
                            w[:, :, :, ::-1].transpose(1, 2, 3, 0).reshape(cin, k, k * cout), dtype=np.int16)
                    else:
                        self.w_spike[ly["name"]] = np.ascontiguousarray(w.transpose(2, 3, 1, 0), dtype=np.int16)

    def scale_per_t(self) -> np.ndarray:
        """Factor from integer output membrane to logits at t = 1..T."""
        t = np.arange(1, self.T + 1, dtype=np.float64)
        return self.scale / t if self.mode == "accumulate" else np.full(self.T, self.scale)

    def output_values(self, state: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> np.ndarray:
        """The output at this timestep [n, C]: the output layer's membranes, or the running spike counts."""
        if self.has_output:
            return outputs[self.output["name"]]
        counts = state[SPIKE_COUNTS] + to_nchw(outputs[self.output["name"]]).reshape(state[SPIKE_COUNTS].shape)
        state[SPIKE_COUNTS] = counts
        return counts

    def _bias(self, name: str, width: int) -> np.ndarray:
        return self.b[name] if name in self.b else np.zeros(width, dtype=np.int64)

    def _conv_current(self, ly: dict, x: np.ndarray) -> np.ndarray:
        """Integer currents of a conv on channel-last x, channel-last [n, Ho, Wo, Cout] (bias not added)."""
        out, ho, wo = conv_gemm(x, self.w_rows[ly["name"]], ly["kernel"], ly["stride"], ly["padding"])
        return np.rint(out).astype(np.int64).reshape(x.shape[0], ho, wo, -1)

    def first_layer_current(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Current of the first layer for uint8 images [n, C, H, W]: (W.x + b) >> input_shift, computed once.

        Its synaptic operations are the bit-serial accumulations the hardware performs: one per
        set bit of each pixel in a receptive field, per output channel (docs/microarchitecture.md
        section 5), not the pixel values.
        """
        layer = self.layers[self.first_weighted]
        bits = POPCOUNT[x]
        if layer["type"] == "conv" and self.w_pixel is not None and x.dtype == np.uint8:
            sops = conv_sops(np.moveaxis(bits, 1, 3), layer["out_channels"], layer["kernel"], layer["stride"],
                             layer["padding"])
            return pixel_conv(np.ascontiguousarray(np.moveaxis(x, 1, 3)), self.w_pixel,
                              self._bias(layer["name"], layer["out_channels"]), self.input_shift, layer["kernel"],
                              layer["stride"], layer["padding"]), sops
        if layer["type"] == "conv":
            cur = self._conv_current(layer, np.moveaxis(x, 1, 3))
            sops = conv_sops(np.moveaxis(bits, 1, 3), layer["out_channels"], layer["kernel"], layer["stride"],
                             layer["padding"])
        else:
            cur, _ = linear_current(x, self.w[layer["name"]], max_input=255)
            sops = bits.reshape(x.shape[0], -1).sum(axis=1, dtype=np.int64) * int(cur.shape[-1])  # x outputs
        cur = cur + self._bias(layer["name"], cur.shape[-1])
        return cur >> self.input_shift, sops

    def init_state(self, n: int) -> dict[str, np.ndarray]:
        """Zeroed membranes for n images (channel-last for maps)."""
        state = {}
        for ly in self.layers:
            if is_spiking(ly) or ly["type"] == "output":
                shape = tuple(ly["out_shape"])
                shape = shape[1:] + shape[:1] if len(shape) == 3 else shape
                state[ly["name"]] = np.zeros((n,) + shape, dtype=np.int64)
        if not self.has_output:
            state[SPIKE_COUNTS] = np.zeros((n, int(np.prod(self.output["out_shape"]))), dtype=np.int64)
        return state

    def _lif(self, state: dict, name: str, current: np.ndarray) -> np.ndarray:
        spikes, state[name] = lif_step(state[name], current, self.vth[name], self.shifts, self.bits)
        return spikes.astype(np.uint8)

    def _first_lif(self, state: dict, name: str, current: np.ndarray) -> tuple[np.ndarray, int]:
        """The direct-input conv's LIF step on its once-computed current [n, Ho, Wo, C]: (spikes, count)."""
        n, shape = current.shape[0], current.shape
        spikes, new_state, fired = current_lif(current.reshape(n, -1, shape[-1]),
                                               state[name].reshape(n, -1, shape[-1]), self.vth[name],
                                               self.shift_array, self.bits)
        state[name] = new_state.reshape(shape)
        return spikes.reshape(shape), int(fired.sum())

    def _spike_conv(self, state: dict, ly: dict, src: np.ndarray) -> tuple[np.ndarray, int, np.ndarray]:
        """A spiking conv on a 0/1 spike map, event-driven with the LIF fused: (spikes, count, sops [n])."""
        name = ly["name"]
        w_spike, bias = self.w_spike[name], self._bias(name, ly["out_channels"])
        src = np.ascontiguousarray(src)  # input frames arrive as a channel-last view
        if w_spike.ndim == 3:  # the scatter form (stride 1, padding < k)
            spikes, state[name], ops, fired = spike_conv_s1_lif(
                src, w_spike, bias, state[name], self.vth[name], self.shift_array, self.bits, ly["padding"])
        else:
            spikes, state[name], ops, fired = spike_conv_lif(
                src, w_spike, bias, state[name], self.vth[name], self.shift_array, self.bits, ly["kernel"],
                ly["stride"], ly["padding"])
        return spikes, int(fired.sum()), ops

    def step(
        self, state: dict[str, np.ndarray], frame: np.ndarray, first_current: np.ndarray | None, t: int
    ) -> tuple[dict[str, np.ndarray], dict[str, int], dict[str, np.ndarray]]:
        """Run every layer once at timestep t (1-based) on a frame [n, C, H, W].

        Returns (outputs, spike counts, sops [n] per layer); maps in ``outputs`` are channel-last.
        """
        outputs: dict[str, np.ndarray] = {"input": frame if frame.ndim != 4 else np.moveaxis(frame, 1, 3)}
        counts: dict[str, int] = {}
        sops: dict[str, np.ndarray] = {}
        n = frame.shape[0]
        for index, ly in enumerate(self.layers):
            name, kind = ly["name"], ly["type"]
            src = outputs[ly["inputs"][0]]
            reads_pixels = self.direct and index == self.first_weighted
            if reads_pixels and kind == "conv" and is_spiking(ly) and first_current is not None:
                # its current is computed once and its synaptic ops charged once, by the caller
                outputs[name], counts[name] = self._first_lif(state, name, first_current)
                sops[name] = np.zeros(n, dtype=np.int64)
                continue
            if reads_pixels:
                current = first_current  # its synaptic ops are charged once, by the caller
                sops[name] = np.zeros(n, dtype=np.int64)
            elif kind == "conv" and is_spiking(ly) and name in self.w_spike and _binary(src, ly["inputs"][0]):
                outputs[name], counts[name], sops[name] = self._spike_conv(state, ly, src)
                continue
            elif kind == "conv" and is_spiking(ly):
                # fused: GEMM rows -> bias + LIF, without int64 currents in between (snn/kernels.py)
                out, ho, wo = conv_gemm(src, self.w_rows[name], ly["kernel"], ly["stride"], ly["padding"])
                flat = state[name].reshape(-1, out.shape[1])
                spikes, new_state = gemm_rows_lif(out, self._bias(name, out.shape[1]), flat, self.vth[name],
                                                  self.shift_array, self.bits)
                state[name] = new_state.reshape(state[name].shape)
                outputs[name] = spikes.reshape(n, ho, wo, -1)
                counts[name] = int(spikes.sum(dtype=np.int64))
                sops[name] = conv_sops(src, ly["out_channels"], ly["kernel"], ly["stride"], ly["padding"])
                continue
            elif kind == "conv":
                current = self._conv_current(ly, src) + self._bias(name, ly["out_channels"])
                sops[name] = conv_sops(src, ly["out_channels"], ly["kernel"], ly["stride"], ly["padding"])
            elif kind in ("linear", "output"):
                current, sops[name] = linear_current(src, self.w[name], self.max_input[ly["inputs"][0]])
                current = current + self._bias(name, current.shape[-1])
            if kind in ("conv", "linear", "output"):
                if kind == "output":
                    shifts = self.shifts if self.mode == "membrane" else None
                    state[name] = output_step(state[name], current, shifts, self.out_bits)
                    outputs[name] = state[name]
                elif is_spiking(ly):
                    outputs[name] = self._lif(state, name, current)
                    counts[name] = int(outputs[name].sum(dtype=np.int64))
                else:
                    outputs[name] = current
            elif kind == "maxpool" and src.dtype == np.uint8:
                outputs[name], fired = spike_maxpool_counted(src, ly["kernel"], ly["stride"])
                counts[name] = int(fired.sum())
            elif kind == "maxpool":
                outputs[name] = spike_maxpool_nhwc(src, ly["kernel"], ly["stride"])
                counts[name] = int(outputs[name].sum(dtype=np.int64))
            elif kind == "avgpool":
                outputs[name] = src.reshape(n, -1, src.shape[-1]).sum(axis=1, dtype=np.int64)
            elif kind == "flatten":
                outputs[name] = to_nchw(src).reshape(n, -1)
                if emits_spikes(self.layers[index]):
                    counts[name] = int(outputs[name].sum(dtype=np.int64))
            elif kind == "add":
                short = outputs[ly["inputs"][1]]
                if short.dtype == np.uint8:
                    short_current = short.astype(np.int64) * int(ly["shortcut_gain"])
                    sops[name] = short.reshape(n, -1).sum(axis=1, dtype=np.int64)
                else:
                    short_current = short
                    sops[name] = np.zeros(n, dtype=np.int64)
                current = src + short_current + self._bias(name, src.shape[-1])
                outputs[name] = self._lif(state, name, current)
                counts[name] = int(outputs[name].sum(dtype=np.int64))
        return outputs, counts, sops


def _binary(src: np.ndarray, producer: str) -> bool:
    """True when a layer input is a 0/1 spike map: any layer's uint8 output is, input frames are when checked."""
    if src.dtype != np.uint8:
        return False
    return producer != "input" or int(src.max(initial=0)) <= 1


def run_forward(
    workload: Workload,
    x: np.ndarray | None = None,
    policy: ExitPolicy | None = None,
    record_spikes: bool = False,
    batch_size: int = 256,
    start: int = 0,
    count: int | None = None,
    prediction: str = "membrane_sum",
) -> ForwardResult:
    """Run the integer network on inputs ``x`` (default: the workload's own, from ``start``).

    With a policy, images leave the batch at their exit step (the policy sees logits, and the
    hardware ATSN rule sees integer membranes). Without one, all T timesteps run. ``prediction``
    is the exit unit's rule for ``pred_hw`` (exit_policies.PREDICTION_RULES).
    """
    net = QuantisedNetwork(workload)
    if not net.has_output and policy is not None and not isinstance(policy, FixedPolicy):
        raise WorkloadError.at(workload.source, f"layers ({net.output['name']})",
                               f"the network ends in a spiking layer (no output layer), so it runs all T timesteps; "
                               f"the {policy.describe()['name']} exit rule needs an output layer",
                               "use the fixed-T policy (exit_unit.kind: none) or end the network with an output layer")
    if x is None:
        stop = None if count is None else start + count
        x = workload.inputs(start, stop)
    policy = policy or FixedPolicy()
    n_total = x.shape[0]
    tally = _ForwardTally.zeros(net, n_total, workload.num_classes, record_spikes)
    scale_t = net.scale_per_t()
    for lo in range(0, n_total, batch_size):
        hi = min(lo + batch_size, n_total)
        _forward_batch(net, policy, x, lo, hi, scale_t, tally)
        for observer in _OBSERVERS:
            observer(hi - lo)
    exit_t = tally.exit_t
    out_membrane, logits, pred, pred_hw = _exit_outputs(net, tally.out_membrane, exit_t, scale_t, prediction)
    return ForwardResult(
        out_membrane=out_membrane,
        logits=logits,
        exit_t=exit_t,
        pred=pred.astype(np.int64),
        pred_hw=pred_hw.astype(np.int64),
        scale_per_t=scale_t,
        spike_counts=tally.spike_counts,
        sops=tally.sops,
        sops_per_image=tally.sops_image,
        first_layer_sops_per_image=tally.first_sops_image,
        neurons={ly["name"]: int(np.prod(ly["out_shape"])) for ly in net.layers},
        spikes=tally.spikes_rec,
        policy=policy.describe(),
    )


@dataclass
class _ForwardTally:
    """What the forward records over all images: output membranes, exit steps, spike and SOP counts, spikes."""

    out_membrane: np.ndarray  # [N, T, C]
    exit_t: np.ndarray  # [N]
    spike_counts: dict[str, np.ndarray]  # layer -> [T]
    sops: dict[str, np.ndarray]  # layer -> [T]
    sops_image: np.ndarray  # [N, T]
    first_sops_image: np.ndarray  # [N, T], the first weighted layer's part of sops_image
    spikes_rec: dict[str, np.ndarray] | None  # layer -> [N, T, *shape] bool, when recorded

    @classmethod
    def zeros(cls, net: QuantisedNetwork, n_total: int, C: int, record_spikes: bool) -> _ForwardTally:
        T = net.T
        spikes_rec: dict[str, np.ndarray] | None = None
        if record_spikes:
            spikes_rec = {
                ly["name"]: np.zeros((n_total, T) + tuple(ly["out_shape"]), dtype=bool)
                for ly in net.layers
                if emits_spikes(ly)
            }
        return cls(
            out_membrane=np.zeros((n_total, T, C), dtype=np.int64),
            exit_t=np.full(n_total, T, dtype=np.int64),
            spike_counts={ly["name"]: np.zeros(T, dtype=np.int64) for ly in net.layers if emits_spikes(ly)},
            sops={
                ly["name"]: np.zeros(T, dtype=np.int64)
                for ly in net.layers
                if ly["type"] in ("conv", "linear", "output", "add")
            },
            sops_image=np.zeros((n_total, T), dtype=np.int64),
            first_sops_image=np.zeros((n_total, T), dtype=np.int64),
            spikes_rec=spikes_rec,
        )


def _forward_batch(net: QuantisedNetwork, policy: ExitPolicy, x: np.ndarray, lo: int, hi: int,
                   scale_t: np.ndarray, tally: _ForwardTally) -> None:
    """Images lo..hi-1 through the timesteps, each leaving the batch at the step its policy exits."""
    T = net.T
    sops, sops_image = tally.sops, tally.sops_image
    first_weighted = next(iter(sops), None)  # complexity.py's "first layer": the first key of ``sops``
    xb = x[lo:hi]
    active = np.arange(lo, hi)
    state = net.init_state(hi - lo)
    first_current = None
    if net.direct:
        first_current, first_sops = net.first_layer_current(xb)
        sops[net.layers[net.first_weighted]["name"]][0] += int(first_sops.sum())
        sops_image[lo:hi, 0] += first_sops
        tally.first_sops_image[lo:hi, 0] += first_sops
    for t in range(1, T + 1):
        frame = xb if net.direct else xb[:, t - 1]
        outputs, counts, ops = net.step(state, frame, first_current, t)
        for name, value in counts.items():
            tally.spike_counts[name][t - 1] += value
        for name, value in ops.items():
            sops[name][t - 1] += int(value.sum())
            sops_image[active, t - 1] += value
            if name == first_weighted:
                tally.first_sops_image[active, t - 1] += value
        membrane = net.output_values(state, outputs)
        tally.out_membrane[active, t - 1] = membrane
        if tally.spikes_rec is not None:
            for name in tally.spikes_rec:
                tally.spikes_rec[name][active, t - 1] = to_nchw(outputs[name]).astype(bool)
        if t == T:
            break
        logits_t = membrane.astype(np.float64) * scale_t[t - 1]
        stop = policy.decide(t, T, logits_t, membrane, float(scale_t[t - 1]))
        if stop.any():
            tally.exit_t[active[stop]] = t
            keep = ~stop
            active = active[keep]
            xb = xb[keep]
            state = {k: v[keep] for k, v in state.items()}
            if first_current is not None:
                first_current = first_current[keep]
            if active.size == 0:
                break


def _exit_outputs(net: QuantisedNetwork, out_membrane: np.ndarray, exit_t: np.ndarray,
                  scale_t: np.ndarray, prediction: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Output membranes and logits held after each exit, and the predictions (float rule, hardware rule)."""
    T = net.T
    n_total = out_membrane.shape[0]
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
        pred = at_exit.argmax(axis=-1)  # eq. 5: argmax of the mean output; spike counts: the most spikes
    pred_hw = hardware_predictions(out_membrane, exit_t, net.mode, prediction)
    return out_membrane, logits, pred, pred_hw


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
