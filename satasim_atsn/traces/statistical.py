"""Statistical workloads: paper-scale networks described by firing rates and exit-step histograms.

Builds them (by fitting a twin of a trained workload, or from a network file and one rate; a rate table is
read in rate_table.py) and draws their spikes
into the same Trace a trained forward produces. The file contents and the draw order (a contract that
reproduces every spike) are in docs/statistical.md.
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from satasim_atsn import exactmath
from satasim_atsn.errors import WorkloadError, did_you_mean, shown, whole_count
from satasim_atsn.snn.exit_policies import (
    ATSN_FRAC_BITS,
    CL_INIT_DEFAULT,
    LUT_ENTRIES_DEFAULT,
    TAU_CL_DEFAULT,
    THETA_DEFAULT,
    AtsnPolicy,
    DtsnnPolicy,
    FixedPolicy,
    exit_settings,
)
from satasim_atsn.snn.forward import run_forward, spike_maxpool
from satasim_atsn.threads import in_threads
from satasim_atsn.traces.draw_kernels import apply_pooled_rows, apply_pooled_windows
from satasim_atsn.workload.format import Workload, validate
from satasim_atsn.workload.network_file import NetworkSpec
from satasim_atsn.workload.pool_windows import (
    free_fraction,
    has_window_cores,
    pool_rate_bounds,
    pool_rate_problem_of,
    window_cover_counts,
    window_coverage,
    windows_tile,
)
from satasim_atsn.workload.schema import (
    EXIT_STEPS,
    HIST_SCALE,
    INPUT_FRAMES,
    INPUT_ROW_BITS,
    SPIKE_ROWS,
    emits_spikes,
    exit_policy_names,
    grid_histogram,
    has_output_layer,
    is_spiking,
    output_neurons,
)
from satasim_atsn.workload.statistical_checks import check_pooled_profile_rows, check_profile_rows, row_profile_layers
from satasim_atsn.workload.trace import Trace

DEFAULT_NUM_IMAGES = 10000
SEED_MAX = 2**63 - 1  # a workload stores its draw seed as int64
#: an image's uniforms are drawn a block of timesteps at a time, about this many bytes (at least one timestep): the
#: stream is the same (numpy fills float32 from the same 32-bit halves in one call or several), and a thread holds
#: one block, not the T x row float32 of a whole image (331 MB for VGG16 at 128 x 128 and T = 16)
DRAW_BLOCK_BYTES = 16 * 2**20
#: the thresholds of the first timesteps, a block at a time (DRAW_BLOCK_BYTES), are kept across images up to this
#: many bytes; a longer T's later blocks are made again for each image that reaches them, so a draw holds at most this
#: plus one block of them, not all T x row float32 (1.1 GB for VGG16 at T = 1024)
THRESHOLD_KEEP_BYTES = 256 * 2**20
POLICY_ALIASES = {"atsn-hw": "atsn", "none": "fixed", "at": "atsn", "dt": "dtsnn"}
# the exit uniforms of step 2 (docs/statistical.md): these three always, in this order, even for a
# policy the file has no histogram for (so every file draws alike); any other exit_hist/<policy> of a
# file draws its uniform after them, by name
DRAW_ORDER_FIRST = ("fixed", "dtsnn", "atsn")


def draw_order(workload: Workload) -> tuple[str, ...]:
    """The workload's exit policies in the order their exit uniforms are drawn."""
    names = exit_policy_names(workload.arrays)
    return DRAW_ORDER_FIRST + tuple(p for p in names if p not in DRAW_ORDER_FIRST)


def histogram_policies(workload: Workload) -> tuple[str, ...]:
    """The policies a workload has exit histograms for, in draw order."""
    return tuple(p for p in draw_order(workload) if f"exit_hist/{p}" in workload.arrays)


# ------------------------------------------------------------------------------------------
# exit-step histograms
# ------------------------------------------------------------------------------------------


def max_entropy_histogram(mean_t: float, timesteps: int) -> np.ndarray:
    """The maximum-entropy distribution on t = 1..T with the given mean (p_t ~ exp(lam t)), on the 2^-32 grid.

    lam is found by bisection in 40-digit decimal arithmetic (correctly rounded exp), the shape is
    rounded to integers out of 2^32 that sum exactly to 2^32 with the mean as close to ``mean_t``
    as the grid allows (within 2^-33), so the stored bytes are the same on every machine.
    """
    T = int(timesteps)
    if T < 1 or not math.isfinite(mean_t) or not 1.0 <= mean_t <= T:
        raise WorkloadError.at(None, "exit mean", f"{mean_t} is not in [1, {T}]", "give a mean timestep in [1, T]")
    counts = _max_entropy_counts(float(mean_t), T)
    return np.asarray(counts, dtype=np.float64) / HIST_SCALE


def _max_entropy_counts(mean_t: float, T: int) -> list[int]:
    """Integer counts out of HIST_SCALE of the maximum-entropy histogram (see max_entropy_histogram)."""
    target = exactmath.round_to_int(exactmath.dec(mean_t) * HIST_SCALE)  # sum t * n_t wanted, exactly
    if target >= T * HIST_SCALE:
        return [0] * (T - 1) + [HIST_SCALE]
    if target <= HIST_SCALE:
        return [HIST_SCALE] + [0] * (T - 1)
    ctx = exactmath.ctx()
    mean = exactmath.dec(mean_t)

    def weights(lam: Decimal) -> list[Decimal]:
        r = exactmath.dexp(lam)
        w, out = Decimal(1), []
        for _ in range(T):  # r^(t-1): the common factor r cancels
            out.append(w)
            w = ctx.multiply(w, r)
        return out

    def mean_of(w: list[Decimal]) -> Decimal:
        num = sum((ctx.multiply(Decimal(t + 1), v) for t, v in enumerate(w)), Decimal(0))
        return ctx.divide(num, sum(w, Decimal(0)))

    lo, hi = Decimal(-60), Decimal(60)
    for _ in range(160):  # the mean is increasing in lam; 160 halvings of 120 reach 1e-46
        mid = ctx.divide(lo + hi, 2)
        if mean_of(weights(mid)) < mean:
            lo = mid
        else:
            hi = mid
    counts = exactmath.largest_remainder(weights(ctx.divide(lo + hi, 2)), HIST_SCALE)
    # move single units between neighbouring steps until sum t * n_t hits the target exactly
    delta = target - sum((t + 1) * n for t, n in enumerate(counts))
    if delta > 0:
        src = max(range(T - 1), key=lambda i: (counts[i], -i))
        counts[src] -= delta
        counts[src + 1] += delta
    elif delta < 0:
        src = max(range(1, T), key=lambda i: (counts[i], -i))
        counts[src] += delta
        counts[src - 1] -= delta
    return counts


def histogram_counts(hist: np.ndarray) -> np.ndarray:
    """A stored histogram as integers out of 2^32 (exact for histograms built here; robust to one-ulp noise)."""
    return np.rint(np.asarray(hist, dtype=np.float64) * HIST_SCALE).astype(np.int64)


def fixed_histogram(timesteps: int) -> np.ndarray:
    """The conventional SNN's histogram: every image runs all T timesteps."""
    return (np.arange(1, timesteps + 1) == timesteps).astype(np.float64)


def histogram_mean(hist: np.ndarray) -> float:
    """Mean exit timestep of a histogram over t = 1..T (exactly rounded sum, no BLAS)."""
    return math.fsum(float(h) * (t + 1) for t, h in enumerate(np.asarray(hist, dtype=np.float64)))


def exit_histograms(means: dict, T: int, where: str | None, field: str) -> dict[str, np.ndarray]:
    """``fixed`` (all images at T) plus a maximum-entropy histogram for each policy given a mean exit timestep."""
    hist = {"fixed": fixed_histogram(T)}
    for policy, value in means.items():
        if policy not in ("dtsnn", "atsn"):
            raise unknown_key_error(where, f"{field}.", policy, ("dtsnn", "atsn"))
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise WorkloadError.at(where, f"{field}.{policy}", "is not a number", "give a mean in [1, T]")
        try:
            hist[policy] = max_entropy_histogram(float(value), T)
        except WorkloadError:
            raise WorkloadError.at(where, f"{field}.{policy}", f"{value} is not in [1, {T}]",
                                   f"give a mean exit timestep between 1 and T = {T}") from None
    return {p: hist[p] for p in DRAW_ORDER_FIRST if p in hist}


def unknown_key_error(where: str, field: str, key: str, allowed: tuple[str, ...]) -> WorkloadError:
    """A one-line error for an unknown key ``key`` of ``field``, with the closest allowed ones."""
    return WorkloadError.at(where, f"{field}{key}", "unknown key", did_you_mean(key, allowed, "allowed keys:"))


# ------------------------------------------------------------------------------------------
# building
# ------------------------------------------------------------------------------------------
def spiking_layers(layers: list[dict]) -> list[dict]:
    """The layers that need a ``rate/<name>``: spiking conv/linear and add, in order."""
    return [layer for layer in layers if is_spiking(layer)]


def pooled_layers(layers: list[dict]) -> list[dict]:
    """Max-pool layers that may carry their own rate: windows with neurons of their own (kernel < 2 x stride) over a
    spiking layer that the pool alone reads."""
    spiking = {layer["name"] for layer in spiking_layers(layers)}
    consumers: dict[str, int] = {}
    for layer in layers:
        for src in layer["inputs"]:
            consumers[src] = consumers.get(src, 0) + 1
    return [
        layer
        for layer in layers
        if layer["type"] == "maxpool"
        and has_window_cores(layer["kernel"], layer["stride"])
        and layer["inputs"][0] in spiking
        and consumers.get(layer["inputs"][0], 0) == 1
    ]


def build_statistical(
    *,
    name: str,
    dataset: str,
    num_classes: int,
    layers: list[dict],
    timesteps: int,
    rates: dict[str, np.ndarray],
    exit_hist: dict[str, np.ndarray],
    input_bit_density: list[float] | None,
    seed: int,
    num_images: int = DEFAULT_NUM_IMAGES,
    input_shape: list[int] | None = None,
    input_encoding: str = "direct",
    input_rate: np.ndarray | None = None,
    input_row_bits: np.ndarray | None = None,
    spike_rows: dict[str, np.ndarray] | None = None,
    exit_steps: dict[str, np.ndarray] | None = None,
    neuron: dict | None = None,
    quant: dict | None = None,
    exit_policy: dict | None = None,
    provenance: dict | None = None,
    extra_meta: dict | None = None,
    source: str | None = None,
) -> Workload:
    """Assemble and validate a statistical workload from its parts (rates keyed by layer name, ``exit_steps`` by
    policy); ``source`` (the network file it comes from) is what a validation error names."""
    if not isinstance(num_images, int) or num_images < 1:
        raise WorkloadError.at(None, "num_images", f"{shown(num_images)} must be a positive integer", "fix the value")
    meta: dict = {
        "name": name,
        "kind": "statistical",
        "dataset": dataset,
        "num_classes": int(num_classes),
        "input_shape": list(input_shape or layers[0]["in_shape"]),
        "input_encoding": input_encoding,
        "timesteps": int(timesteps),
        "num_images": int(num_images),
        "neuron": neuron or {"tau": 0.5, "decay_shifts": [1], "v_th": 1.0},
        "quant": quant or {"weight_bits": 8, "vmem_bits": 16, "input_shift": 0},
        "layers": copy.deepcopy(layers),
        "exit_policy": exit_policy or {"cl_init": CL_INIT_DEFAULT, "tau_cl": TAU_CL_DEFAULT, "theta": THETA_DEFAULT},
        "provenance": provenance or {},
    }
    if input_bit_density is not None:
        meta["input_bit_density"] = [float(d) for d in input_bit_density]
    if input_encoding == "spike_frames":
        meta["input_width"] = int(meta["input_shape"][-1])
    meta.update(extra_meta or {})
    arrays: dict[str, np.ndarray] = {"seed": np.array(int(seed), dtype=np.int64)}
    names = {layer["name"] for layer in spiking_layers(layers)} | {layer["name"] for layer in pooled_layers(layers)}
    unknown = sorted(set(rates) - names)
    if unknown:
        raise WorkloadError.at(
            None, "rates", f"no spiking layer named {shown(unknown[0])}",
            f"spiking layers are {', '.join(sorted(names))}"
        )
    for layer_name, rate in rates.items():
        arrays[f"rate/{layer_name}"] = np.asarray(rate, dtype=np.float64)
    for policy, hist in exit_hist.items():
        arrays[f"exit_hist/{policy}"] = np.asarray(hist, dtype=np.float64)
    if input_rate is not None:
        arrays["rate/input"] = np.asarray(input_rate, dtype=np.float64)
    if input_row_bits is not None:
        arrays[INPUT_ROW_BITS] = np.asarray(input_row_bits)
    for layer_name, counts in (spike_rows or {}).items():
        arrays[f"{SPIKE_ROWS}/{layer_name}"] = np.asarray(counts)
    for policy, steps in (exit_steps or {}).items():
        arrays[f"{EXIT_STEPS}/{policy}"] = np.asarray(steps)
    return validate(Workload(meta=meta, arrays=arrays, source=source or f"<statistical {name}>"))


# ------------------------------------------------------------------------------------------
# drawing
# ------------------------------------------------------------------------------------------
def draw_memory_bytes(workload: Workload) -> tuple[int, int]:
    """(bytes, row): what drawing one image of a statistical workload holds at least, its drawn spikes (T x neurons,
    bool), the float32 thresholds kept (``_Thresholds``: THRESHOLD_KEEP_BYTES at most, plus one block of the
    timesteps beyond) and a block of uniforms, and the row of one timestep (as ``_DrawPlan`` lays it out)."""
    pooled = {layer["inputs"][0]: layer for layer in pooled_layers(workload.layers)
              if f"rate/{layer['name']}" in workload.arrays}
    row = 0 if workload.input_encoding == "direct" else int(np.prod(workload.input_shape))
    spikes = row
    for layer in spiking_layers(workload.layers):
        size = int(np.prod(layer["out_shape"]))
        pool = pooled.get(layer["name"])
        row += size + (2 * int(np.prod(pool["out_shape"])) if pool is not None else 0)
        spikes += size
    T = workload.timesteps
    block = draw_block(row)
    kept = kept_timesteps(T, row, block)
    thresholds = kept + (block if kept < T else 0)
    return T * spikes + 4 * row * (min(T, thresholds) + min(T, block)), row


def draw_block(row: int) -> int:
    """Timesteps of uniforms (and of thresholds) an image's draw makes at a time: DRAW_BLOCK_BYTES of float32."""
    return max(1, DRAW_BLOCK_BYTES // max(4 * row, 1))


def kept_timesteps(T: int, row: int, block: int) -> int:
    """The first timesteps whose thresholds a draw keeps across images: whole blocks within THRESHOLD_KEEP_BYTES
    (all T when they fit)."""
    if T * 4 * row <= THRESHOLD_KEEP_BYTES:
        return T
    return min(T, THRESHOLD_KEEP_BYTES // max(4 * row * block, 1) * block)


class _PooledSlot(NamedTuple):
    """A spiking layer drawn with its max-pool: where its three segments sit in a timestep's row of uniforms."""

    name: str  # the spiking layer
    shape: tuple[int, ...]  # its [C, H, W]
    pool_shape: tuple[int, ...]
    kernel: int
    stride: int
    pool_lo: int  # the pooled map's uniforms
    choice_lo: int  # one window-choice uniform per pooled neuron
    layer_lo: int  # the layer's own uniforms
    size: int  # C * H * W
    pool: str  # the max-pool


class _ImageRows:
    """A twin's per-image array [M, ...] (row profiles) as a draw of images [start, start + count) uses it: image i
    takes row i mod M, as int64. Only those rows are read, so a file's million fitted images cost a run of a few
    only their rows (workload/npz.py reads them out of the file); all M when count >= M."""

    def __init__(self, array: Any, start: int, count: int | None,
                 check: Callable[[np.ndarray, np.ndarray], None] | None = None) -> None:
        self.m = int(array.shape[0])
        self.first = None if count is None or count >= self.m else start
        self.images = np.arange(self.m) if self.first is None else (start + np.arange(count)) % self.m  # fitted images
        self.rows = np.asarray(array[slice(None) if self.first is None else self.images], dtype=np.int64)
        if check is not None:  # a large file's profiles are checked as read, not at reading (format.profiles_scanned)
            check(self.rows, self.images)

    def __getitem__(self, image: int) -> np.ndarray:
        """Image ``image``'s row, that of fitted image ``image mod M``."""
        return self.rows[image % self.m if self.first is None else image - self.first]


Segment = tuple[int, Callable[[int, int], Any]]  # (columns, make(first, stop) -> their thresholds at those t)


def _side_by_side(segments: list[Segment], first: int, stop: int) -> np.ndarray:
    """The segments' thresholds of timesteps [first, stop) (each [stop - first, n_i] made by its function, float64
    or float32) as one float32 [stop - first, sum n_i], each made only when its columns are filled: one copy and one
    segment at the peak, not two copies (all segments, then their join)."""
    out = np.empty((stop - first, sum(n for n, _ in segments)), dtype=np.float32)
    at = 0
    for n, make in segments:
        out[:, at:at + n] = make(first, stop)  # rounded to float32 once, as astype(np.float32) rounds
        at += n
    return out


class _Thresholds:
    """The [T, row] float32 thresholds of a draw, made a block of timesteps at a time when first asked for: the
    blocks of the first ``kept_timesteps`` are kept for every image, later ones made again for each image that reaches
    them. Each threshold depends only on its timestep's rates, so a block made twice holds the same bits."""

    def __init__(self, segments: list[Segment], T: int, row: int, block: int) -> None:
        self.segments, self.T, self.block = segments, T, block
        self.kept = kept_timesteps(T, row, block)
        self._blocks: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()  # images drawn in threads share the kept blocks

    def rows(self, first: int, stop: int) -> np.ndarray:
        """[stop - first, row] float32 thresholds of t = first+1..stop."""
        if not self.segments:
            return np.zeros((stop - first, 0), dtype=np.float32)
        end = min(self.T, first + self.block)
        if first % self.block or end > self.kept or stop > end:  # not a kept block: made for this call
            return _side_by_side(self.segments, first, stop)
        with self._lock:
            held = self._blocks.get(first)
            if held is None:
                held = self._blocks[first] = _side_by_side(self.segments, first, end)
        return held[: stop - first]


class _DrawPlan:
    """Per-workload precomputation: the flat per-neuron threshold row of every timestep, and the row profiles of
    images [start, start + count) (all of them without ``count``)."""

    def __init__(self, workload: Workload, start: int = 0, count: int | None = None) -> None:
        self.T = workload.timesteps
        self.layers = workload.layers
        self.direct = workload.input_encoding == "direct"
        self.input_shape = workload.input_shape
        self.input_size = int(np.prod(self.input_shape))
        self.seed = int(np.asarray(workload.arrays["seed"]).reshape(-1)[0])
        self.policies = draw_order(workload)
        # cumulative exit counts out of 2^32: u < cdf  <=>  floor(u * 2^32) < counts, all exact integers
        self.cdf = {p: np.cumsum(histogram_counts(workload.arrays[f"exit_hist/{p}"]))
                    for p in self.policies if f"exit_hist/{p}" in workload.arrays}
        # exit_steps/<policy> [M]: fitted image m's exit step, taken by image i (m = i mod M) in place of the draw
        self.paired = {k: _ImageRows(workload.arrays[f"{EXIT_STEPS}/{p}"], start, count)  # the images' steps alone
                       for k, p in enumerate(self.policies) if f"{EXIT_STEPS}/{p}" in workload.arrays}
        segments: list[Segment] = []  # (columns, their thresholds at timesteps [first, stop)), made when asked for
        self.slots: list[tuple[str, tuple[int, ...], int, int]] = []  # name, shape, offset, size
        offset = 0
        if not self.direct:
            rate = np.asarray(workload.arrays["rate/input"], dtype=np.float64)
            segments.append((self.input_size, lambda a, b, r=rate: self._row(r[a:b], self.input_shape)))
            self.frame_slot = (offset, self.input_size)
            offset += self.input_size
        pooled = {layer["inputs"][0]: layer for layer in pooled_layers(self.layers)
                  if f"rate/{layer['name']}" in workload.arrays}
        self.pooled: list[_PooledSlot] = []
        for layer in spiking_layers(self.layers):
            shape = tuple(int(v) for v in layer["out_shape"])
            rate = np.asarray(workload.arrays[f"rate/{layer['name']}"], dtype=np.float64)
            size = int(np.prod(shape))
            pool = pooled.get(layer["name"])
            if pool is None:
                segments.append((size, lambda a, b, r=rate, s=shape: self._row(r[a:b], s)))
                self.slots.append((layer["name"], shape, offset, size))
                offset += size
                continue
            # pooled map first, then one window-choice uniform per pooled neuron, then the layer
            pshape = tuple(int(v) for v in pool["out_shape"])
            psize = int(np.prod(pshape))
            k, stride = int(pool["kernel"]), int(pool["stride"])
            prate = np.asarray(workload.arrays[f"rate/{pool['name']}"], dtype=np.float64)
            segments.append((psize, lambda a, b, r=prate, s=pshape: self._row(r[a:b], s)))
            segments.append((psize, lambda a, b: np.float32(0)))
            segments.append((size, lambda a, b, r=rate, p=prate, s=shape, ps=pshape, k=k, st=stride:
                             self._conditional_row(r[a:b], p[a:b], s, ps, k, st)))
            self.pooled.append(_PooledSlot(layer["name"], shape, pshape, k, stride, offset, offset + psize,
                                           offset + 2 * psize, size, pool["name"]))
            offset += 2 * psize + size
        self.row = offset
        self.block = draw_block(offset)
        self.thresholds = _Thresholds(segments, self.T, offset, self.block)
        self._profile_rows(workload, start, count)

    def _profile_rows(self, workload: Workload, start: int, count: int | None) -> None:
        """The row profiles of images [start, start + count), each checked as read (format.check_profile_rows)."""
        def rows(key: str) -> _ImageRows:
            return _ImageRows(workload.arrays[key], start, count, lambda got, images: check_profile_rows(
                workload.source, workload.meta, key, got, images))

        # spike_rows/<layer> [M, T, C, H]: per-image thresholds along each row, in place of the layer's rate
        self.spike_rows = {name: rows(f"{SPIKE_ROWS}/{name}")
                           for name, _, _, _ in self.slots if f"{SPIKE_ROWS}/{name}" in workload.arrays}
        self.widths = {name: int(shape[-1]) for name, shape, _, _ in self.slots if name in self.spike_rows}
        if not self.direct and f"{SPIKE_ROWS}/{INPUT_FRAMES}" in workload.arrays:  # the spike frames' own rows
            self.spike_rows[INPUT_FRAMES] = rows(f"{SPIKE_ROWS}/{INPUT_FRAMES}")
            self.widths[INPUT_FRAMES] = int(self.input_shape[-1])
        # a layer drawn with its pool, both with spike_rows (the reader allows it when the windows tile the map)
        by_name = {layer["name"]: layer for layer in self.layers}
        self.pool_rows = {}
        for slot in self.pooled:
            if f"{SPIKE_ROWS}/{slot.name}" in workload.arrays:
                pair = (rows(f"{SPIKE_ROWS}/{slot.name}"), rows(f"{SPIKE_ROWS}/{slot.pool}"))
                check_pooled_profile_rows(workload.source, by_name[slot.pool], by_name[slot.name], pair[0].rows,
                                          pair[1].rows, pair[0].images)
                self.pool_rows[slot.name] = pair
        self.row_bits = None
        if self.direct:
            density = np.asarray(workload.meta["input_bit_density"], dtype=np.float32)
            self.plane_threshold = np.repeat(density, self.input_size).reshape(8, self.input_size)
            if INPUT_ROW_BITS in workload.arrays:
                self.row_bits = rows(INPUT_ROW_BITS)  # [M, 8, C, H]

    def image_plane_threshold(self, image: int) -> np.ndarray:
        """[8, C*H*W] float32 thresholds of image ``image``'s bit planes: ``meta.input_bit_density`` everywhere, or,
        with ``input_row_bits``, profile ``image mod M``: count / W (float64, rounded once) along each row."""
        if self.row_bits is None:
            return self.plane_threshold
        counts = self.row_bits[image]
        width = self.input_shape[-1]
        return np.repeat((counts / width).astype(np.float32).reshape(8, -1), width, axis=1)

    def row_threshold(self, name: str, image: int, first: int, stop: int) -> np.ndarray:
        """[stop - first, C*H, 1] float32 thresholds of layer ``name`` (one with ``spike_rows``) for image ``image``:
        its profile ``image mod M`` at t = first+1..stop, count / W (float64, rounded once) for each neuron of a
        row."""
        width = self.widths[name]
        rows = self.spike_rows[name][image][first:stop].astype(np.float64) / width
        return rows.astype(np.float32).reshape(stop - first, -1, 1)

    def pooled_row_thresholds(self, slot: _PooledSlot, image: int, first: int, stop: int) -> tuple[np.ndarray, ...]:
        """What ``apply_pooled_rows`` draws image ``image``'s t = first+1..stop of a layer and its pool from (both with
        row profiles, profile ``image mod M``): the pooled threshold float32(P / Wo) of each pooled row, the threshold
        float32(c_y (S - P) / (P (k S - c_y))) of each row y of the layer (0 where P = 0; each a float64 division of
        exact integers, rounded once), the counts c_y and their sums S over the k rows under each pooled row."""
        counts, fired = (a[image][first:stop] for a in self.pool_rows[slot.name])
        k = slot.kernel
        band = counts.reshape(counts.shape[:2] + (-1, k)).sum(axis=-1)  # [steps, C, H / k]
        pool_threshold = (fired / np.float64(slot.pool_shape[2])).astype(np.float32)
        spare, fired_y = np.repeat(band, k, axis=2), np.repeat(fired, k, axis=2)
        q = np.zeros(counts.shape)
        np.divide(counts * (spare - fired_y), fired_y * (k * spare - counts), out=q, where=fired_y > 0)
        return pool_threshold, q.astype(np.float32), np.ascontiguousarray(counts), band

    def _row(self, rate: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """[t, prod(shape)] thresholds: a [t] rate everywhere, a [t, C] rate per channel (t timesteps of them)."""
        size = int(np.prod(shape))
        if rate.ndim == 1:
            return np.repeat(rate[:, None], size, axis=1)
        return np.repeat(rate, size // shape[0], axis=1)

    def _conditional_row(self, rate: np.ndarray, prate: np.ndarray, shape: tuple[int, ...],
                         pshape: tuple[int, ...], k: int, stride: int) -> np.ndarray:
        """Thresholds of a pooled layer: inside windows the conditional rate q, outside the plain rate.

        An active window holds one spike at a drawn position plus each other position with
        probability q = (k*k*r_in/r_pool - 1) / (k*k - 1), so E[rate] = r_in while the OR of
        each window is exactly the drawn pooled map. Windows at another stride than k: a neuron is free
        only if every window covering it is active, and q = (r_in n_cov - N r_pool) / (sum_e n_e r_pool^e -
        N r_pool) over the n_cov covered neurons, the N windows and the n_e neurons covered by e windows.
        """
        c, h, w = shape
        ho, wo = pshape[1], pshape[2]
        steps = rate.shape[0]
        r_in = self._row(rate, (c, 1)).reshape(steps, c)
        r_pool = self._row(prate, (c, 1)).reshape(steps, c)
        kk = k * k
        inside = np.zeros((h, w), dtype=bool)
        if stride == k:
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.where(r_pool > 0, (kk * r_in / r_pool - 1.0) / (kk - 1), 0.0)
            inside[: ho * k, : wo * k] = True
        else:
            e, n, windows = window_cover_counts(h, w, k, stride)
            spare = free_fraction(r_pool, e, n) - windows * r_pool  # free neurons beyond the sure spikes
            with np.errstate(divide="ignore", invalid="ignore"):
                q = np.where(spare > 0, (r_in * n.sum() - windows * r_pool) / spare, 0.0)
            inside[:] = np.outer(window_coverage(h, k, stride), window_coverage(w, k, stride)) > 0
        q = np.clip(q, 0.0, 1.0)
        out = np.where(inside[None, None], q[:, :, None, None], r_in[:, :, None, None])
        return out.reshape(steps, -1)

    def exit_steps(self, u: np.ndarray, image: int) -> np.ndarray:
        """Image ``image``'s exit steps of every policy (``self.policies`` order; 0: no histogram): its uniform u[k]
        mapped through the histogram, or, with ``exit_steps/<policy>``, fitted image (image mod M)'s step (u[k] was
        drawn all the same, so every file draws its spikes from the same uniforms)."""
        return np.array(
            [int(self.paired[k][image]) if k in self.paired else
             min(int(np.searchsorted(self.cdf[p], math.floor(float(u[k]) * HIST_SCALE), side="right")) + 1, self.T)
             if p in self.cdf else 0 for k, p in enumerate(self.policies)]
        )


def _policy_key(policy_name: str, policies) -> str:
    key = POLICY_ALIASES.get(policy_name, policy_name)
    if key not in policies:
        raise WorkloadError.at(
            None, "policy", f"unknown exit policy {shown(policy_name)}", f"this workload has: {', '.join(policies)}"
        )
    return key


def draw_exit_steps(workload: Workload, start: int = 0, count: int | None = None) -> dict[str, np.ndarray]:
    """Exit steps of every policy for images [start, start+count), without drawing spikes."""
    count = workload.num_images - start if count is None else count
    check_image_range(workload, start, count)
    plan = _DrawPlan(workload, start, count)
    steps = np.zeros((count, len(plan.policies)), dtype=np.int64)
    for j in range(count):
        rng = np.random.Generator(np.random.PCG64([plan.seed, start + j]))
        steps[j] = plan.exit_steps(rng.random(len(plan.policies)), start + j)
    return {p: steps[:, k] for k, p in enumerate(plan.policies) if p in plan.cdf}


def require_histogram(workload: Workload, policy: str) -> None:
    """Fail clearly when a workload has no exit histogram for the policy an architecture's exit unit implements."""
    if f"exit_hist/{policy}" not in workload.arrays:
        built = ", ".join(exit_policy_names(workload.arrays))
        raise WorkloadError.at(
            workload.source, f"exit_hist/{policy}",
            f"missing: this statistical workload is built for {built} only",
            "run it on an architecture whose exit unit matches, or rebuild it with satasim workload build"
            + ("" if policy == "fixed" else f" --exit-mean {policy}=MEAN (or a rate table's measured histogram)")
            + (" (every build writes exit_hist/fixed)" if policy == "fixed" else ""),
        )


def require_policy_histogram(workload: Workload, policy_name: str) -> None:
    """require_histogram for an architecture's policy name (``atsn-hw``, ``none``...), if it is a known policy."""
    policy = POLICY_ALIASES.get(policy_name, policy_name)
    if workload.is_statistical and policy in DRAW_ORDER_FIRST:  # a known policy the file was not built for
        require_histogram(workload, policy)


def check_image_range(workload: Workload, start: int, count: int, least: int = 0) -> None:
    """Refuse (WorkloadError) a start or count that is not an int, fewer than ``least`` images, or images
    [start, start+count) that the workload does not have (a trace of them would quietly be shorter)."""
    start = whole_count(start, workload.source, "start", WorkloadError)
    count = whole_count(count, workload.source, "count", WorkloadError)
    if not 0 <= start <= workload.num_images - min(least, 1):  # (the rest from a start past the end is no count)
        raise WorkloadError.at(workload.source, "start", f"{start} is outside 0..{workload.num_images - 1}",
                               "pick an existing image")
    if count < least:
        raise WorkloadError.at(workload.source, "count", f"must be >= {least}, got {count}",
                               "ask for at least one image" if least else "give a count of 0 or more")
    if start < 0 or count < 0 or start + count > workload.num_images:
        raise WorkloadError.at(
            workload.source,
            "images",
            f"range [{start}, {start + count}) is outside the workload's {workload.num_images} images",
            f"ask for images within 0..{workload.num_images - 1}",
        )


def spike_or_pool(spikes: np.ndarray, kernel: int, stride: int) -> np.ndarray:
    """Spike max-pooling of bool maps [..., C, H, W]: the OR of each window (as snn.forward.spike_maxpool)."""
    lead = spikes.shape[:-3]
    c, h, w = spikes.shape[-3:]
    if kernel == stride and h % kernel == 0 and w % kernel == 0:
        out = np.zeros(lead + (c, h // kernel, w // kernel), dtype=bool)
        for dy in range(kernel):
            for dx in range(kernel):
                out |= spikes[..., dy::kernel, dx::kernel]
        return out
    pooled = spike_maxpool(spikes.reshape((-1, c, h, w)), kernel, stride)
    return pooled.reshape(lead + pooled.shape[1:])


def draw_trace(workload: Workload, policy_name: str, start: int, count: int, threads: int | None = None) -> Trace:
    """Draw the spikes of images [start, start+count) of a statistical workload under one policy.

    Every image has its own random stream and its own rows of the output, so ``threads`` (default: numba's
    thread count) draw disjoint ranges of images at once and the spikes are the same for any count."""
    if not workload.is_statistical:
        raise WorkloadError.at(workload.source, "meta.kind", "is not statistical", "use functional_trace instead")
    require_policy_histogram(workload, policy_name)
    policy = _policy_key(policy_name, exit_policy_names(workload.arrays))
    check_image_range(workload, start, count, least=1)
    plan = _DrawPlan(workload, start, count)
    T, row = plan.T, plan.row
    block = plan.block  # timesteps of uniforms (and thresholds) drawn at a time
    pk = plan.policies.index(policy)
    exit_t = np.zeros(count, dtype=np.int64)
    drawn = {name: np.zeros((count, T, size), dtype=bool) for name, _, _, size in plan.slots}
    for slot in plan.pooled:
        drawn[slot.name] = np.zeros((count, T, slot.size), dtype=bool)
    targets = [(drawn[name], offset, offset + size, name) for name, _, offset, size in plan.slots]
    if plan.direct:
        head = 8 * plan.input_size
        inputs = np.zeros((count, plan.input_size), dtype=np.uint8)
    else:
        head = 0
        o, s = plan.frame_slot
        frames = np.zeros((count, T, s), dtype=bool)
        targets.insert(0, (frames, o, o + s, INPUT_FRAMES))

    def draw_images(first: int, stop: int) -> None:
        """Images [first, stop) of the chunk: each from its own stream, into its own rows of the arrays."""
        for j in range(first, stop):
            rng = np.random.Generator(np.random.PCG64([plan.seed, start + j]))
            e = int(plan.exit_steps(rng.random(len(plan.policies)), start + j)[pk])
            exit_t[j] = e
            if plan.direct:
                bits = rng.random(head, dtype=np.float32).reshape(8, plan.input_size) < plan.image_plane_threshold(
                    start + j)
                inputs[j] = np.packbits(bits, axis=0, bitorder="little")[0]
            own = [(target[j], lo, hi, name) for target, lo, hi, name in targets]
            pooled = {slot.name: drawn[slot.name][j] for slot in plan.pooled}
            for first in range(0, e, block):  # the same uniforms as one call of head + e * row (DRAW_BLOCK_BYTES)
                stop = min(e, first + block)
                u = rng.random((stop - first) * row, dtype=np.float32).reshape(stop - first, row)
                _draw_layers(plan, u, start + j, first, own, pooled)

    in_threads(draw_images, count, threads)
    shapes = {name: shape for name, shape, _, _ in plan.slots}
    shapes.update({slot.name: slot.shape for slot in plan.pooled})
    spikes: dict[str, np.ndarray] = {name: drawn[name].reshape((count, T) + shape) for name, shape in shapes.items()}
    if plan.direct:
        inputs = inputs.reshape((count,) + plan.input_shape)
    else:
        inputs = frames.reshape((count, T) + plan.input_shape).astype(np.uint8)
    # spike frames are a spike map too: a max-pool or flatten may read them (the image may not: the reader refuses)
    frame_map = None if plan.direct else frames.reshape((count, T) + plan.input_shape)
    for layer in workload.layers:  # derived spike maps, exactly as the forward computes them
        if not emits_spikes(layer) or is_spiking(layer):
            continue
        src = frame_map if layer["inputs"][0] == "input" else spikes.get(layer["inputs"][0])
        if src is None:
            continue
        if layer["type"] == "maxpool":
            spikes[layer["name"]] = spike_or_pool(src, int(layer["kernel"]), int(layer["stride"]))
        elif layer["type"] == "flatten":
            spikes[layer["name"]] = src.reshape(count, T, -1)
    missing = -np.ones(count, dtype=np.int64)
    return Trace(
        start=start,
        exit_t=exit_t,
        pred=missing,
        pred_hw=missing.copy(),
        labels=None,
        spikes=spikes,
        inputs=inputs,
        policy={"name": policy, "statistical": True, "seed": plan.seed},
    )


def _draw_layers(plan: _DrawPlan, u: np.ndarray, image: int, first: int, targets: list[tuple],
                 pooled: dict[str, np.ndarray]) -> None:
    """Image ``image``'s spikes at t = first+1..first+e from their uniforms ``u`` [e, row] (step 4): ``targets`` are
    (its spikes [T, size], the slot's columns lo:hi of ``u``, the layer's name or None for an input frame),
    ``pooled`` the spikes [T, size] of the layers drawn with their pool."""
    e = u.shape[0]
    stop = first + e
    threshold = plan.thresholds.rows(first, stop)
    for target, lo, hi, name in targets:
        if name not in plan.spike_rows:
            np.less(u[:, lo:hi], threshold[:, lo:hi], out=target[first:stop])
            continue
        width = plan.widths[name]  # the same uniforms, compared with the image's own threshold of each row
        np.less(u[:, lo:hi].reshape(e, -1, width), plan.row_threshold(name, image, first, stop),
                out=target[first:stop].reshape(e, -1, width))
    for slot in plan.pooled:
        if slot.name in plan.pool_rows:
            apply_pooled_rows(u, *plan.pooled_row_thresholds(slot, image, first, stop), slot.kernel, slot.pool_lo,
                              slot.choice_lo, slot.layer_lo, pooled[slot.name][first:stop])
        else:
            _draw_pooled_layer(u, threshold, slot, pooled[slot.name][first:stop])


def _draw_pooled_layer(u: np.ndarray, threshold: np.ndarray, slot: _PooledSlot, own: np.ndarray) -> None:
    """One image's spikes [e, size] of a layer drawn with its max-pool (``_DrawPlan.pooled``): each neuron's
    own draw, then the windows made to agree with the drawn pooled map (docs/statistical.md, step 4)."""
    e, lo, hi = own.shape[0], slot.layer_lo, slot.layer_lo + slot.size
    np.less(u[:, lo:hi], threshold[:e, lo:hi], out=own)
    c, h, w = slot.shape
    apply_pooled_windows(u, threshold, c, h, w, slot.pool_shape[1], slot.pool_shape[2], slot.kernel, slot.stride,
                         slot.pool_lo, slot.choice_lo, own)


# ------------------------------------------------------------------------------------------
# fitting a statistical twin of a trained workload
# ------------------------------------------------------------------------------------------
def twin_policies(workload: Workload, cl_init: float | None = None, tau_cl: float | None = None,
                  theta: float | None = None,
                  lut_entries: int = LUT_ENTRIES_DEFAULT, frac_bits: int = ATSN_FRAC_BITS) -> dict:
    """The three policies a twin's histograms come from (defaults from ``meta.exit_policy``)."""
    cl, tau, th = exit_settings(workload.meta, cl_init, tau_cl, theta)
    return {
        "fixed": FixedPolicy(),
        "dtsnn": DtsnnPolicy(theta=th),
        "atsn": AtsnPolicy(cl_init=cl, tau_cl=tau, hardware=True, lut_entries=lut_entries, frac_bits=frac_bits),
    }


def fit_statistical_twin(
    trained_workload: Workload,
    images: int | None = None,
    *,
    per_channel: bool = False,
    rates_policy: str = "atsn",
    cl_init: float | None = None,
    tau_cl: float | None = None,
    theta: float | None = None,
    seed: int = 0,
    batch_size: int = 128,
    lut_entries: int = LUT_ENTRIES_DEFAULT,
    frac_bits: int = ATSN_FRAC_BITS,
    input_rows: bool = True,
    spike_rows: bool = True,
    exit_steps: bool = True,
) -> Workload:
    """Fit rates, exit histograms and input densities of a trained workload into a statistical twin.

    ``input_rows`` (direct [C, H, W] images): also keep every fitted image's set bits per bit plane, channel and
    row (``input_row_bits``), which twin image i draws its planes from (docs/statistical.md, step 3).
    ``spike_rows``: also keep every fitted image's spikes per timestep, channel and row of each spiking conv/add
    layer and rated max-pool (``spike_rows/<layer>``; not a layer drawn with a pool whose windows do not tile its
    map), which twin image i draws them from (step 4).
    ``exit_steps``: also keep every fitted image's exit step under each policy (``exit_steps/<policy>``, the steps
    the histograms count), at which twin image i exits (step 2; M = the fitted images, with or without profiles).

    The functional forward runs all T timesteps once (record_spikes); each policy's exit steps
    come from its logits (early exit equals post-hoc exit). Rates at t are averaged over the
    images still running at t under ``rates_policy`` (all images if none run at t).
    """
    wl = trained_workload
    if wl.is_statistical:
        raise WorkloadError.at(wl.source, "meta.kind", "is already statistical", "fit a trained or imported workload")
    for name, value in (("seed", seed), ("batch_size", batch_size)):  # 1.5 was used as given, 0 failed in range()
        if whole_count(value, wl.source, name, WorkloadError) < (name == "batch_size"):
            raise WorkloadError.at(wl.source, name, f"must be >= {int(name == 'batch_size')}, got {value}",
                                   "give a non-negative seed and a positive batch size")
    policies = twin_policies(wl, cl_init, tau_cl, theta, lut_entries, frac_bits)  # the AT unit's LUT rule as built
    exit_rules = {"cl_init": policies["atsn"].cl_init, "tau_cl": policies["atsn"].tau_cl,
                  "theta": policies["dtsnn"].theta}
    if not wl.has_output:  # a spiking-output network runs fixed-T: only the fixed histogram exists
        policies, rates_policy = {"fixed": policies["fixed"]}, "fixed"
    policy_key = _policy_key(rates_policy, tuple(policies))
    n_total, T = _fitted_images(wl, images), wl.timesteps
    spk_layers = spiking_layers(wl.layers) + pooled_layers(wl.layers)
    direct = wl.input_encoding == "direct"
    keep_rows = input_rows and len(wl.input_shape) == 3  # bit planes of images, or spike frames' rows
    profiled = row_profile_layers(wl.layers, [ly["name"] for ly in pooled_layers(wl.layers)]) if spike_rows else []
    counts, steps, bit_counts, frame_counts, row_bits, layer_rows = _twin_counts(
        wl, policies, n_total, spk_layers, batch_size, keep_rows, profiled)
    if not direct and row_bits is not None:  # spike frames: their rows are drawn like a layer's (spike_rows/input)
        layer_rows = {INPUT_FRAMES: row_bits, **layer_rows}
        row_bits = None
    fit = _running_rate_fit(steps[policy_key], T, per_channel)
    rates = {ly["name"]: fit(counts[ly["name"]], int(np.prod(ly["out_shape"][1:]))) for ly in spk_layers}
    dropped, clamped = _fit_pool_rates(rates, wl.layers)
    hist = {p: grid_histogram(np.bincount(steps[p] - 1, minlength=T)[:T]) for p in policies}
    density = (bit_counts / (n_total * int(np.prod(wl.input_shape)))).tolist() if direct else None
    input_rate = None if direct else fit(frame_counts, int(np.prod(wl.input_shape[1:])))
    paired = exit_steps  # M = the fitted images, with or without row profiles
    provenance = _twin_provenance(wl, n_total, policy_key, per_channel, policies, dropped, clamped,
                                  [n for n in layer_rows if n != INPUT_FRAMES] if spike_rows else None)
    return build_statistical(
        name=f"{wl.name}-twin", dataset=_dataset_label(wl.meta), num_classes=wl.num_classes,
        layers=wl.layers, timesteps=T, rates=rates, exit_hist=hist, input_bit_density=density, seed=seed,
        num_images=n_total, input_shape=list(wl.input_shape), input_encoding=wl.input_encoding,
        input_rate=input_rate, input_row_bits=row_bits, spike_rows=layer_rows,
        exit_steps={p: steps[p].astype(np.uint16) for p in policies} if paired else None,
        neuron=copy.deepcopy(wl.meta["neuron"]), quant=copy.deepcopy(wl.meta["quant"]), exit_policy=exit_rules,
        provenance=provenance,
    )


def _fitted_images(wl: Workload, images: int | None) -> int:
    """The images a twin is fitted from: the first ``images`` of the workload (default all)."""
    n_total = wl.num_images if images is None else whole_count(images, wl.source, "--images", WorkloadError)
    if n_total < 1 or n_total > wl.num_images:
        raise WorkloadError.at(wl.source, "--images", f"{images} is not in 1..{wl.num_images} (the images the "
                               "workload holds)", f"ask for 1 to {wl.num_images} images")
    return n_total


def _twin_provenance(wl: Workload, n_total: int, policy_key: str, per_channel: bool, policies: dict,
                     dropped: list[str], clamped: dict | None = None, profiled: list[str] | None = None) -> dict:
    """Where a twin's numbers come from: the fitted file (by name only, so the twin's bytes do not depend on the
    directory), the images, the policies, the pool rates not kept, and with ``profiled`` (the layers with
    ``spike_rows``; None: not asked for) which layers carry row profiles and which cannot (drawn with a pool whose
    windows do not tile their map)."""
    provenance = {
        "fitted_from": {"file": Path(str(wl.source)).name, "name": wl.name, "kind": wl.kind,
                        "provenance": wl.meta.get("provenance", {})},
        "images": n_total,
        "rates_over_images_running_under": policy_key,
        "per_channel": bool(per_channel),
        "exit_policies": {p: pol.describe() for p, pol in policies.items()},
        "tool": "satasim workload stats",
    }
    if dropped:
        provenance["pooled_rates_not_kept"] = dropped
    if clamped:
        provenance["pooled_rates_clamped"] = clamped
    left_out = {pool["inputs"][0]: f"drawn with its max-pool {pool['name']}, whose {pool['kernel']}x{pool['kernel']} "
                f"windows at stride {pool['stride']} do not tile its {pool['in_shape'][1]}x{pool['in_shape'][2]} map"
                for pool in pooled_layers(wl.layers) if not windows_tile(pool)}
    if profiled is not None and (profiled or left_out):
        provenance["spike_rows"] = {"layers": profiled, "left_out": left_out}
    return provenance


def pool_notes(provenance: dict) -> list[str]:
    """One line per max-pool whose measured rate a twin could not keep as measured (from its provenance)."""
    lines = [f"  note: {name} carries no rate (a pool does when every window has a neuron of its own, kernel < 2 x "
             "stride, and its input feeds no other layer): it is drawn as the OR of independent spikes, which fires "
             "it more often than clustered spikes do" for name in provenance.get("pooled_rates_not_kept", [])]
    lines += [f"  note: pool_rate_ratio gives {name} {v['given_mean']:g} on average, outside what the draw can keep "
              f"with its input's rate; drawn at {v['drawn_mean']:g} (docs/statistical.md, step 4)"
              for name, v in provenance.get("pool_rate_ratio_clamped", {}).items()]
    lines += [f"  note: {name}'s measured rate {v['measured_mean']:g} is outside what the draw can keep with its "
              f"input's rate (it draws windows independently); drawn at {v['drawn_mean']:g} (docs/statistical.md, "
              "step 4)" for name, v in provenance.get("pooled_rates_clamped", {}).items()]
    return lines


def _fit_pool_rates(rates: dict, layers: list[dict]) -> tuple[list[str], dict]:
    """Fit the measured pool rates to what the draw can keep; returns (the pools drawn as the OR of their input, the
    pools whose rate was clamped with their measured and drawn means).

    A pool whose windows have no neurons of their own (kernel >= 2 x stride) carries no rate. A measured rate
    outside the range its input's rate allows (docs/statistical.md, step 4) is moved to the nearest rate inside:
    spikes clustered in space can fire a pool of overlapping windows nearly as seldom as its input, which
    independently drawn windows cannot, and a map its windows do not tile can fire mostly outside them. The
    nearest rate misses the measured one by far less than the OR of independent draws (about twice the rate)."""
    spiking = {ly["name"] for ly in spiking_layers(layers)}
    rated = {ly["name"] for ly in pooled_layers(layers)}
    not_kept = [ly["name"] for ly in layers if ly["type"] == "maxpool" and ly["inputs"][0] in spiking
                and ly["name"] not in rated]  # no window core, or its input feeds another layer too
    clamped = {}
    for ly in pooled_layers(layers):
        r_in, r_pool = rates[ly["inputs"][0]], rates[ly["name"]]  # one fit: both [T] or both [T, C]
        if not pool_rate_problem_of(ly, r_in, r_pool):
            continue
        _, h, w = ly["in_shape"]
        rates[ly["name"]] = np.clip(r_pool, *pool_rate_bounds(r_in, ly["kernel"], ly["stride"], h, w))
        clamped[ly["name"]] = {"measured_mean": round(float(np.mean(r_pool)), 6),
                               "drawn_mean": round(float(np.mean(rates[ly["name"]])), 6)}
    return not_kept, clamped


def row_count_dtype(width: int) -> type:
    """The integer type of a row profile's counts in [0, width]: uint8 up to 255, else uint16 (uint32 beyond)."""
    return np.uint8 if width <= 255 else np.uint16 if width <= 65535 else np.uint32


def _twin_counts(wl: Workload, policies: dict, n_total: int, spk_layers: list[dict], batch_size: int,
                 keep_rows: bool = False, profiled: list[dict] | None = None):
    """One full-T forward of the first ``n_total`` images: spikes per (image, t, channel) of every spiking layer,
    each policy's exit steps, the input's bit-plane (images) or per-channel (frames) spike counts, with
    ``keep_rows`` each image's set bits per (plane, channel, row) ([N, 8, C, H]) or, for spike frames, its events
    per (t, channel, row) ([N, T, C, H]; uint8 or uint16; else None), and for each layer of ``profiled`` its spikes
    per (image, t, channel, row) ([N, T, C, H], by name)."""
    T = wl.timesteps
    layer_rows = {ly["name"]: np.zeros((n_total, T) + tuple(int(v) for v in ly["out_shape"][:2]),
                                       dtype=row_count_dtype(int(ly["out_shape"][2]))) for ly in profiled or []}
    counts = {ly["name"]: np.zeros((n_total, T, int(ly["out_shape"][0])), dtype=np.int64) for ly in spk_layers}
    steps = {p: np.zeros(n_total, dtype=np.int64) for p in policies}
    direct = wl.input_encoding == "direct"
    bit_counts = np.zeros(8, dtype=np.int64)
    frame_counts = np.zeros((n_total, T, wl.input_shape[0]), dtype=np.int64)
    row_bits = None
    if keep_rows:  # direct: set bits per (plane, channel, row); spike frames: events per (t, channel, row)
        c, h, w = (int(v) for v in wl.input_shape)
        row_bits = np.zeros((n_total, 8 if direct else T, c, h), dtype=row_count_dtype(w))
    for lo in range(0, n_total, batch_size):
        hi = min(lo + batch_size, n_total)
        x = wl.inputs(lo, hi)
        result = run_forward(wl, x, policy=FixedPolicy(), record_spikes=True, batch_size=batch_size)
        for ly in spk_layers:
            s = result.spikes[ly["name"]]
            counts[ly["name"]][lo:hi] = s.reshape(s.shape[0], T, s.shape[2], -1).sum(axis=3)
            if ly["name"] in layer_rows:  # [n, T, C, H, W] -> spikes along each row
                layer_rows[ly["name"]][lo:hi] = s.sum(axis=-1, dtype=np.int64)
        for p, policy in policies.items():
            steps[p][lo:hi] = policy.exit_steps(result.logits, result.out_membrane, result.scale_per_t)
        if direct:
            for k in range(8):
                bit_counts[k] += int(((x >> k) & 1).sum(dtype=np.int64))
                if row_bits is not None:
                    row_bits[lo:hi, k] = ((x >> k) & 1).sum(axis=-1, dtype=np.int64)
        else:
            frame_counts[lo:hi] = x.reshape(x.shape[0], T, x.shape[2], -1).sum(axis=3)
            if row_bits is not None:  # [n, T, C, H, W] -> events along each row
                row_bits[lo:hi] = x.sum(axis=-1, dtype=np.int64)
    return counts, steps, bit_counts, frame_counts, row_bits, layer_rows


def _running_rate_fit(exit_steps: np.ndarray, T: int, per_channel: bool):
    """The rate fit of a twin: spike counts [N, T, C] over ``positions`` per channel -> rates [T] (or [T, C]),
    averaged at t over the images still running at t (all images if none is)."""
    running = exit_steps[:, None] >= np.arange(1, T + 1)[None, :]  # [N, T]
    n_running = running.sum(axis=0)
    mask = np.where(n_running[None, :] > 0, running, True).astype(np.int64)
    denom_images = mask.sum(axis=0)  # [T]

    def fit(c: np.ndarray, positions: int) -> np.ndarray:
        # integer spike counts over one integer denominator: a single correctly rounded division
        spikes = np.einsum("nt,ntc->tc", mask, c)  # int64, exact
        if per_channel:
            return spikes / (denom_images[:, None] * positions)
        return spikes.sum(axis=1) / (denom_images * positions * c.shape[2])

    return fit


def _dataset_label(meta: dict) -> str:
    """A twin's dataset label: its workload's, or 'unknown' where that is absent or null (str(None) was 'None')."""
    dataset = meta.get("dataset")
    return "unknown" if dataset is None else str(dataset)


def mean_rate_per_t(rate: np.ndarray) -> list[float]:
    """A stored rate ([T], or [T, C] per channel) as its mean at each timestep."""
    rate = np.asarray(rate, dtype=np.float64)
    return [float(v) for v in (rate.mean(axis=1) if rate.ndim == 2 else rate)]


def rates_summary(workload: Workload) -> dict[str, list[float]]:
    """Per spiking (or rate-carrying max-pool) layer, the mean firing rate at each timestep."""
    return {layer["name"]: mean_rate_per_t(workload.arrays[f"rate/{layer['name']}"])
            for layer in workload.layers if f"rate/{layer['name']}" in workload.arrays}


# ------------------------------------------------------------------------------------------
# a statistical workload from a network file and one firing rate (the quick start)
# ------------------------------------------------------------------------------------------
def output_classes(net: NetworkSpec, layers: list[dict], num_classes: int | None, flag: str) -> int:
    """The classes of a built network: ``num_classes`` for an output layer; for a network ending in a spiking layer,
    that layer's neurons (its spike counts are the output), which a given ``num_classes`` (``flag``) must equal."""
    if has_output_layer(layers):
        return int(num_classes if num_classes is not None else layers[-1]["out_shape"][0])
    neurons = output_neurons(layers)
    if num_classes is not None and int(num_classes) != neurons:
        last = layers[-1]["name"]
        raise WorkloadError.at(net.source, flag, f"gives {num_classes} classes but the network ends in the spiking "
                               f"layer {last!r} of {neurons} neurons, whose spike counts are the output",
                               f"give the last layer {num_classes} neurons, or end the network with an output layer")
    return neurons


def fixed_only(net: NetworkSpec, policies: Iterable[str], flag: str, where: str | None = None) -> None:
    """A network without an output layer runs all T timesteps: no exit histogram but ``fixed`` (one line naming
    ``flag`` otherwise)."""
    other = sorted(p for p in policies if p != "fixed")
    if not net.has_output and other:
        last = net.layers[-1]["name"]
        raise WorkloadError.at(where, flag,
                               f"the network ends in the spiking layer {last!r} (no output layer), so it runs all "
                               f"T timesteps; the {other[0]} exit rule needs an output layer",
                               "drop it, or end the network with an output layer")


def build_with_rate(net: NetworkSpec, *, rate: float, timesteps: int, dataset: str | None = None,
                    num_classes: int | None = None, exit_means: dict[str, float] | None = None,
                    num_images: int = 10000, seed: int = 0) -> Workload:
    """A statistical workload in which every spiking layer fires at ``rate`` at every timestep (an assumption).

    Exit histograms: ``fixed`` always, plus a maximum-entropy one for each policy given a mean exit
    timestep in ``exit_means`` (``dtsnn``, ``atsn``); input pixels uniform (0.5 per bit plane).
    """
    from satasim_atsn.workload.networks import IDENTITY_SHORTCUT_GAIN

    if not (isinstance(rate, (int, float)) and 0.0 <= float(rate) <= 1.0):
        raise WorkloadError.at(None, "--rate", f"{rate!r} is not a firing rate in [0, 1]", "e.g. --rate 0.15")
    if not (isinstance(timesteps, int) and 1 <= timesteps <= 1024):
        raise WorkloadError.at(None, "--timesteps", f"{timesteps!r} is not in 1..1024", "e.g. --timesteps 10")
    means = dict(exit_means or {})
    fixed_only(net, means, "--exit-mean")
    hist = exit_histograms(means, timesteps, None, "--exit-mean")

    def build():
        layers = net.build(num_classes, identity_gain=IDENTITY_SHORTCUT_GAIN)
        rates = {ly["name"]: np.full(timesteps, float(rate)) for ly in spiking_layers(layers)}
        label = dataset or "unspecified"
        return build_statistical(
            name=f"{net.name}-{label}-statistical" if dataset else f"{net.name}-statistical",
            dataset=label,
            num_classes=output_classes(net, layers, num_classes or net.num_classes,
                                       "--dataset" if num_classes else "num_classes"),
            layers=layers,
            timesteps=timesteps,
            rates=rates,
            exit_hist=hist,
            input_bit_density=[0.5] * 8,
            seed=seed,
            num_images=num_images,
            input_shape=list(net.input_shape),
            source=net.source,
            provenance={
                "generator": "satasim workload build --rate",
                "network_file": Path(net.source).name,
                "rates": f"assumed: every spiking layer fires at {float(rate)} at every timestep (--rate)",
                "input_bit_density": "assumed: uniform 8-bit pixels, 0.5 per bit plane",
                "exit_histograms": "fixed: all images at T; "
                + ("maximum-entropy distributions with the given means (assumed, --exit-mean): "
                   + ", ".join(f"{p} {float(m)}" for p, m in sorted(means.items())) if means else "no other policy"),
                "accuracy": None,
                "note": "statistical workload: independent Bernoulli spikes, no weights, no labels, no accuracy",
            },
        )

    try:
        return build()
    except WorkloadError as error:  # name layers as the network file does
        raise net.relabel(error) from None
