"""Drawing a statistical workload's spikes and exit steps (docs/statistical.md, steps 2-4): per image, the
seeded uniforms against per-layer thresholds (a twin's row profiles where it has them), in blocks within a memory
budget, on several threads with the same bytes."""


from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from satasim_atsn.errors import WorkloadError, whole_count
from satasim_atsn.snn.forward import spike_maxpool
from satasim_atsn.threads import in_threads
from satasim_atsn.traces.draw_kernels import apply_pooled_rows, apply_pooled_windows
from satasim_atsn.traces.exit_histograms import draw_order, histogram_counts, histogram_key, require_policy_histogram
from satasim_atsn.traces.statistical import pooled_layers, spiking_layers
from satasim_atsn.workload.format import Workload, require_validated
from satasim_atsn.workload.pool_windows import (
    free_fraction,
    window_cover_counts,
    window_coverage,
)
from satasim_atsn.workload.schema import (
    EXIT_STEPS,
    HIST_SCALE,
    INPUT_FRAMES,
    INPUT_ROW_BITS,
    SPIKE_ROWS,
    emits_spikes,
    exit_policy_names,
    is_spiking,
)
from satasim_atsn.workload.statistical_checks import check_pooled_profile_rows, check_profile_rows
from satasim_atsn.workload.trace import Trace

#: an image's uniforms are drawn a block of timesteps at a time, about this many bytes (at least one timestep): the
#: stream is the same (numpy fills float32 from the same 32-bit halves in one call or several), and a thread holds
#: one block, not the T x row float32 of a whole image (331 MB for VGG16 at 128 x 128 and T = 16)
DRAW_BLOCK_BYTES = 16 * 2**20
#: the thresholds of the first timesteps, a block at a time (DRAW_BLOCK_BYTES), are kept across images up to this
#: many bytes; a longer T's later blocks are made again for each image that reaches them, so a draw holds at most this
#: plus one block of them, not all T x row float32 (1.1 GB for VGG16 at T = 1024)
THRESHOLD_KEEP_BYTES = 256 * 2**20


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


def draw_exit_steps(workload: Workload, start: int = 0, count: int | None = None) -> dict[str, np.ndarray]:
    """Exit steps of every policy for images [start, start+count), without drawing spikes."""
    require_validated(workload)
    count = workload.num_images - start if count is None else count
    check_image_range(workload, start, count)
    plan = _DrawPlan(workload, start, count)
    steps = np.zeros((count, len(plan.policies)), dtype=np.int64)
    for j in range(count):
        rng = np.random.Generator(np.random.PCG64([plan.seed, start + j]))
        steps[j] = plan.exit_steps(rng.random(len(plan.policies)), start + j)
    return {p: steps[:, k] for k, p in enumerate(plan.policies) if p in plan.cdf}


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
    require_validated(workload)
    if not workload.is_statistical:
        raise WorkloadError.at(workload.source, "meta.kind", "is not statistical", "use functional_trace instead")
    require_policy_histogram(workload, policy_name)
    policy = histogram_key(policy_name, exit_policy_names(workload.arrays))
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
