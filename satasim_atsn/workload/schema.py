"""The workload format's names and limits (docs/workload-format.md): its keys, layer types and fields, array
names, bounds, and the layer-shape rules the reader, the statistical checks and the networks share.

The contract itself is described in :mod:`workload.format`; :func:`fail` words every refusal of a workload."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from satasim_atsn import exactmath
from satasim_atsn.errors import WorkloadError
from satasim_atsn.workload.npz import NpzRows

FORMAT_NAME = "satasim-workload"
FORMAT_VERSION = 1
#: the integer thresholds the exporters (the trainer's and the NIR import) keep: at most VTH_MAX steps of a layer's
#: scale, so that 16-bit membranes keep headroom; the layer reading a static image, at most VTH_MAX_FIRST (it
#: climbs straight past its threshold, so finer threshold levels are worth more than headroom)
VTH_MAX = 1024
VTH_MAX_FIRST = 8192
LAYER_TYPES = ("conv", "linear", "maxpool", "avgpool", "add", "flatten", "output")
KINDS = ("trained", "imported", "statistical")
OUTPUT_MODES = ("membrane", "accumulate")
INPUT_ENCODINGS = ("direct", "spike_frames")
INPUT_ROW_BITS = "input_row_bits"  # a direct twin's per-image bit counts per plane, channel and row (statistical.md)
SPIKE_ROWS = "spike_rows"  # spike_rows/<layer>: a twin's per-image spike counts per timestep, channel and row
INPUT_FRAMES = "input"  # spike_rows/input: a spike-frame twin's per-image input events per timestep, channel and row
MAX_STATISTICAL_IMAGES = 10**9  # the images a statistical workload may stand for (meta.num_images)
EXIT_STEPS = "exit_steps"  # exit_steps/<policy>: a twin's fitted images' exit steps, paired with their row profiles
HIST_BITS = 32
HIST_SCALE = 1 << HIST_BITS  # exit histograms are stored as integers out of 2^32 (exact in float64)
WEIGHTED_TYPES = ("conv", "linear", "output")
INPUT_SHIFT_MAX = 63  # the first layer's current is int64: a right shift of 64 or more is undefined
EXIT_PARAMETERS = ("cl_init", "tau_cl", "theta")  # meta.exit_policy entries, each in (0, 1]
# every key a workload's meta may hold (docs/workload-format.md); free-form information goes in meta.provenance
META_KEYS = ("name", "kind", "dataset", "num_classes", "input_shape", "input_encoding", "input_width", "timesteps",
             "num_images", "input_bit_density", "neuron", "quant", "layers", "exit_policy", "provenance")
NEURON_KEYS = ("model", "tau", "decay_shifts", "v_th", "reset")
QUANT_KEYS = ("weight_bits", "vmem_bits", "output_vmem_bits", "input_shift", "input_mean", "input_std")
LAYER_COMMON_KEYS = ("name", "type", "inputs", "in_shape", "out_shape")
LAYER_FIELDS: dict[str, tuple[str, ...]] = {  # a layer's own keys, by type
    "conv": ("kernel", "stride", "padding", "out_channels", "spiking"),
    "linear": ("out_features", "spiking"),
    "maxpool": ("kernel", "stride"),
    "avgpool": (),
    "flatten": (),
    "add": ("shortcut_gain",),
    "output": ("out_features", "output_mode", "logit_scale"),
}
MISSING_FIX = "add it (docs/workload-format.md lists every key), or write the workload with this tool's writer"


def is_spiking(layer: dict) -> bool:
    """True when the layer ends in LIF neurons that emit spikes."""
    t = layer["type"]
    return t == "add" or (t in ("conv", "linear") and bool(layer.get("spiking", True)))


def emits_spikes(layer: dict) -> bool:
    """True when the layer's output is a binary spike map (LIF layers, max-pool, flatten of spikes)."""
    return is_spiking(layer) or layer["type"] in ("maxpool", "flatten")


# ------------------------------------------------------------------------------------------
# shape inference shared by validation, builders and the trainer's exporter
# ------------------------------------------------------------------------------------------
def conv_out_hw(h: int, w: int, kernel: int, stride: int, padding: int) -> tuple[int, int]:
    """Output height and width of a convolution or pooling window."""
    return (h + 2 * padding - kernel) // stride + 1, (w + 2 * padding - kernel) // stride + 1


def infer_out_shape(layer: dict, in_shapes: list[list[int]], num_classes: int) -> list[int]:
    """The output shape a layer must have given its input shapes (raises ValueError)."""
    t = layer["type"]
    shape = list(in_shapes[0])
    if t == "conv":
        if len(shape) != 3:
            raise ValueError(f"conv needs a [C, H, W] input, got {shape}")
        h, w = conv_out_hw(shape[1], shape[2], int(layer["kernel"]), int(layer["stride"]), int(layer["padding"]))
        if h <= 0 or w <= 0:
            raise ValueError(f"kernel {layer['kernel']} does not fit input {shape}")
        return [int(layer["out_channels"]), h, w]
    if t == "maxpool":
        if len(shape) != 3:
            raise ValueError(f"maxpool needs a [C, H, W] input, got {shape}")
        h, w = conv_out_hw(shape[1], shape[2], int(layer["kernel"]), int(layer["stride"]), 0)
        if h <= 0 or w <= 0:
            raise ValueError(f"window {layer['kernel']} does not fit input {shape}")
        return [shape[0], h, w]
    if t == "avgpool":
        if len(shape) != 3:
            raise ValueError(f"avgpool needs a [C, H, W] input, got {shape}")
        return [shape[0]]
    if t == "flatten":
        return [math.prod(int(n) for n in shape)]  # Python ints: no int64 wrap on absurd shapes
    if t == "linear":
        if len(shape) != 1:
            raise ValueError(f"linear needs a flat input, got {shape}; add a flatten or avgpool layer")
        return [int(layer["out_features"])]
    if t == "output":
        if len(shape) != 1:
            raise ValueError(f"output needs a flat input, got {shape}; add a flatten or avgpool layer")
        if "out_features" in layer and layer["out_features"] != num_classes:
            raise ValueError(f"out_features {layer['out_features']!r} is not meta.num_classes {num_classes}: the "
                             "output layer's neurons are the classes")
        return [num_classes]
    if t == "add":
        if len(in_shapes) != 2 or list(in_shapes[0]) != list(in_shapes[1]):
            raise ValueError(f"add needs two inputs of equal shape, got {in_shapes}")
        return shape
    raise ValueError(f"unknown layer type {t!r}")


def weight_shape(layer: dict) -> tuple[int, ...]:
    """Shape of ``w/<layer>`` for weighted layers."""
    if layer["type"] == "conv":
        k = int(layer["kernel"])
        return (int(layer["out_channels"]), int(layer["in_shape"][0]), k, k)
    return (int(layer["out_shape"][0]), int(layer["in_shape"][0]))


# ------------------------------------------------------------------------------------------
# validation
# ------------------------------------------------------------------------------------------
def fail(where: str, key: str, problem: str, fix: str) -> WorkloadError:
    return WorkloadError.at(where, key, problem, fix)


def has_output_layer(layers: list[dict]) -> bool:
    """True when the network ends in an output layer; else its last layer's spike counts are the output."""
    return layers[-1]["type"] == "output"


def output_neurons(layers: list[dict]) -> int:
    """Neurons whose values are the network's output: the classes of the output layer, or the last layer's spikes."""
    return int(np.prod(layers[-1]["out_shape"]))


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_finite_number(value: object) -> bool:
    """A JSON number (not a boolean) that is finite as a float64 (an integer beyond 1e308 is not)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


#: the exit policies a workload's ``meta.exit_policy.default`` may name (the methods' policies, train/models.py)
POLICY_NAMES = ("fixed", "dtsnn", "atsn")


def is_row_profile(key: str) -> bool:
    """Whether ``key`` is one of a twin's row profiles: ``input_row_bits`` or ``spike_rows/<layer>``."""
    return key == INPUT_ROW_BITS or key.partition("/")[0] == SPIKE_ROWS and key != SPIKE_ROWS


def grid_histogram(counts: np.ndarray) -> np.ndarray:
    """Exit counts (images per step) as a histogram on the 2^-32 grid, summing exactly to 1 (integer arithmetic)."""
    counts = [int(c) for c in np.asarray(counts).reshape(-1)]
    total = sum(counts)
    if total <= 0:
        raise WorkloadError.at(None, "exit histogram", "has no images", "fit from at least one image")
    return np.asarray(exactmath.largest_remainder(counts, HIST_SCALE, total), dtype=np.float64) / HIST_SCALE


def profile_images(arrays: dict) -> tuple[str, int] | None:
    """The row profiles' M (the images they hold) and the field it is read from; None without row profiles."""
    keys = ([INPUT_ROW_BITS] if INPUT_ROW_BITS in arrays else []) + sorted(
        key for key in arrays if key.partition("/")[0] == SPIKE_ROWS)
    return (keys[0], int(np.shape(arrays[keys[0]])[0])) if keys else None


def fitted_images(arrays: dict) -> tuple[str, int] | None:
    """A twin's M (its fitted images) and the field it is read from: the row profiles', or without profiles the
    first ``exit_steps/<policy>`` array's length (twin image i takes fitted image i mod M's profiles and exit step);
    None when the twin keeps neither."""
    profiles = profile_images(arrays)
    if profiles is not None:
        return profiles
    steps = sorted(key for key in arrays if key.partition("/")[0] == EXIT_STEPS)
    return (steps[0], int(np.shape(arrays[steps[0]])[0]) if np.ndim(arrays[steps[0]]) else 0) if steps else None


def exit_policy_names(arrays: dict) -> tuple[str, ...]:
    """The exit policies a statistical workload has histograms for: its ``exit_hist/<policy>`` keys, by name."""
    return tuple(sorted(key.removeprefix("exit_hist/") for key in arrays if key.startswith("exit_hist/")))


#: the largest ``x`` (bytes unpacked) read through at reading to check its CRC: about 0.5 s on EPYC-26; a larger one
#: (10^6 MNIST images: 784 MB, 6.5 s) would cost `run --images 2` that pass, so its rows are checked as read
SCANNED_INPUT_BYTES = 64 * 2**20


def read_by_rows(key: str) -> bool:
    """Whether an array is per image, read by rows when used (workload.npz.NpzRows): the inputs ``x``, their labels
    ``y``, a twin's row profiles and exit steps, of which a file may hold millions of images while a run uses a few."""
    return (key in ("x", "y", INPUT_ROW_BITS)
            or key.partition("/")[0] in (SPIKE_ROWS, EXIT_STEPS) and key not in (SPIKE_ROWS, EXIT_STEPS))


def array_blocks(array: np.ndarray | NpzRows, rows: int | None = None) -> Iterable[np.ndarray]:
    """An array whole, or one read by rows in blocks of ``rows`` (about 8 MiB by default), each block once."""
    if isinstance(array, NpzRows):
        return array.blocks(rows)
    return [array] if rows is None else (array[lo:lo + rows] for lo in range(0, len(array), rows))
