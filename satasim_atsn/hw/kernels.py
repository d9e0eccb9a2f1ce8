"""Numba kernels of the engine: the multicast stream recurrence of a PE-group fold, and counting kernels.

Counting kernels: per-position spike counts (summed over channels), per-PE-block counts, bit-plane
popcounts, receptive-field coverage matrices and the stream's virtual positions. The derivation of the
stream recurrence and of the exit unit's closed form, and the per-cycle witnesses the tests check them
against (tests/kernel_oracles.py), are in docs/kernels.md.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from satasim_atsn.runtime import kernel_cache

CACHE = kernel_cache()  # cache the machine code on disk where a writable place exists (runtime.kernel_cache)

# ------------------------------------------------------------------------------------------
# the coupled multicast stream of one fold: the event recurrence used by the engine
# ------------------------------------------------------------------------------------------


@njit(cache=CACHE, nogil=True)
def _stream_slice(
    row_lo: np.ndarray,
    row_hi: np.ndarray,
    pos: np.ndarray,
    vp_ptr: np.ndarray,
    vp_block: np.ndarray,
    vp_cost_shifted: np.ndarray,
    cls_neurons: np.ndarray,
    fire_cycles: int,
    start_cycle: int,
    r: int,
    ring_length: int,
    shift: int,
    paced: bool,
    d_out: np.ndarray,
) -> None:
    """One slice by the recurrence of the module docstring; writes D_p per class into ``d_out``.

    Image i of the slice delivers the stream spikes ``pos[row_lo[i]:row_hi[i]]`` (virtual positions whose
    destinations are ``vp_block[vp_ptr[v]:vp_ptr[v+1]]`` with costs ``vp_cost_shifted``; both made by
    :func:`fold_slices`). Every cycle is kept shifted, ``cycle << shift``, so that a class's packed state
    ``ready << shift | k`` compares and adds with no shift: ``ready`` = the earliest cycle the PE can pop
    its next spike, ``k`` = its spikes so far modulo ``2**shift >= ring_length``. Each class has one block
    of ``2**shift + 1`` words, starting at ``vp_block`` (= class x block size): its state, then its ring,
    which holds the (shifted) pop cycle of spike k at slot k, so slot ``k - ring_length`` is the one a
    room check needs (0: none yet). The first pass over a spike's destinations reads their states and
    room slots, the second updates them (a destination appears once per spike, so the second pass reads
    what the first did). Indices are unsigned so that numba emits no wrap-around checks (twice as fast).
    ``paced``: the caller proved that no PE receives more than ``ring_length`` spikes, so no buffer fills
    and the room check is skipped.
    """
    ncls = cls_neurons.shape[0]
    mask = (np.int64(1) << shift) - 1
    high = ~mask
    one = np.int64(1) << shift  # one cycle
    width = (1 << shift) + 1  # words per class: its state, then its ring
    block = np.zeros(ncls * width, dtype=np.int64)
    pace = np.full(r, (start_cycle - 1) << shift, dtype=np.int64)  # delivery cycles of the stream's last r spikes
    pslot = 0
    last = np.int64(start_cycle) << shift
    for i in range(row_lo.shape[0]):
        if i > 0:  # image boundary: every PE fires the previous image before popping the next one's spikes
            for c in range(ncls):
                block[c * width] += (cls_neurons[c] * fire_cycles) << shift
        for j in range(row_lo[i], row_hi[i]):
            v = pos[j]
            lo = vp_ptr[v]
            n = vp_ptr[v + 1] - lo
            if n == 0:
                continue  # no destination in this fold: not in the stream
            dst = vp_block[lo : lo + n]
            cost = vp_cost_shifted[lo : lo + n]
            # pacing (r per cycle, in order, from L) and room at every destination; plain loops reading
            # each state where it is: staging the states in a buffer for the second pass cost 6-15% on AVX2
            d = max(pace[pslot] + one, last)
            if not paced:
                for e in range(n):
                    b = dst[e]
                    d = max(d, block[b + np.uint64(1) + np.uint64((block[b] - ring_length) & mask)])
            d1 = d + one
            for e in range(n):
                b = dst[e]
                st = block[b]
                pop = max(st & high, d1)
                block[b + np.uint64(1) + np.uint64(st & mask)] = pop  # unread when paced; a branch costs more
                block[b] = pop + cost[e] + ((st + 1) & mask)
            last = d
            pace[pslot] = d
            pslot += 1
            if pslot == r:
                pslot = 0
    for c in range(ncls):
        ready = (block[c * width] >> shift) + cls_neurons[c] * fire_cycles
        d_out[c] = ready if ready > 0 else 0


def ring_shift(ring_length: int) -> int:
    """Bits of the packed state kept for a PE's spike count modulo its ring (see :func:`_stream_slice`)."""
    return max(1, (int(ring_length) - 1).bit_length())


@njit(cache=CACHE, nogil=True, parallel=True)
def fold_slices(
    slice_ptr: np.ndarray,
    slice_rows: np.ndarray,
    row_ptr: np.ndarray,
    pos: np.ndarray,
    vp_ptr: np.ndarray,
    vp_cls: np.ndarray,
    vp_cost: np.ndarray,
    cls_neurons: np.ndarray,
    fire_cycles: int,
    start_cycle: int,
    r: int,
    ring_length: int,
    shift: int,
    paced: np.ndarray,
) -> np.ndarray:
    """Many slices of one fold in parallel: D_p per class [S, classes] (``paced[s]``: slice s's fast path).

    Slice s runs the images (trace rows) ``slice_rows[slice_ptr[s]:slice_ptr[s+1]]`` in batch order; row q
    delivers ``pos[row_ptr[q]:row_ptr[q+1]]``.
    """
    ns = slice_ptr.shape[0] - 1
    ncls = cls_neurons.shape[0]
    d_all = np.zeros((ns, ncls), dtype=np.int64)
    # the layout of _stream_slice: each destination as the start of its class's block, costs shifted
    vp_block = vp_cls.astype(np.uint64) * np.uint64((1 << shift) + 1)
    vp_cost_shifted = vp_cost << shift
    for s in prange(ns):
        rows = slice_rows[slice_ptr[s] : slice_ptr[s + 1]]
        lo = np.empty(rows.shape[0], dtype=np.int64)
        hi = np.empty(rows.shape[0], dtype=np.int64)
        for i in range(rows.shape[0]):
            lo[i] = row_ptr[rows[i]]
            hi[i] = row_ptr[rows[i] + 1]
        _stream_slice(
            lo,
            hi,
            pos,
            vp_ptr,
            vp_block,
            vp_cost_shifted,
            cls_neurons,
            fire_cycles,
            start_cycle,
            r,
            ring_length,
            shift,
            paced[s],
            d_all[s],
        )
    return d_all


# ------------------------------------------------------------------------------------------
# building the stream
# ------------------------------------------------------------------------------------------


@njit(cache=CACHE, inline="always")
def _is_set(v, shift: int) -> int:
    """Bit ``shift`` of v (0 or 1); shift 8: whether v is nonzero. As int64: under NUMBA_DISABLE_JIT a uint8
    result would make the caller's running index uint8 too (NumPy 2 promotion) and wrap at 256."""
    return np.int64((v >> shift) & 1) if shift < 8 else np.int64(v != 0)


@njit(cache=CACHE, inline="always")
def _compact_row(bits: np.ndarray, shift: int, mode: int, positions: int, offset: int, out: np.ndarray, k: int) -> int:
    """Append the virtual positions of the set bits ``(bits[q] >> shift) & 1`` of one row to ``out`` from k on
    (``shift`` = 8: of the nonzero entries).

    Branch-free: every index writes its position and advances k only when set, so ``out`` needs one slot of
    slack. Virtual positions per flat index q: conv (mode 0) ``offset + q mod positions``, linear (1)
    ``offset``, identity (2) ``offset + q``."""
    size = bits.shape[0]
    if mode == 0:
        for base in range(0, size, positions):
            for p in range(min(positions, size - base)):
                out[k] = offset + p
                k += _is_set(bits[base + p], shift)
    elif mode == 1:
        for q in range(size):
            out[k] = offset
            k += _is_set(bits[q], shift)
    else:
        for q in range(size):
            out[k] = offset + q
            k += _is_set(bits[q], shift)
    return k


@njit(cache=CACHE, nogil=True, parallel=True)
def spike_positions(
    spikes: np.ndarray, valid: np.ndarray, counts: np.ndarray, mode: int, positions: int, offset: int
) -> np.ndarray:
    """Spikes of each row in raster order as virtual positions (uint32), rows one after the other.

    ``spikes``: 0/1 [rows, size]; rows with valid=0 deliver nothing; ``counts`` [rows]: the nonzero entries of
    each valid row (0 for the others), which size the output. ``mode``: 0 conv (offset + index mod
    ``positions``), 1 linear (offset), 2 identity (offset + index). Rows are compacted in parallel, each
    into its own stretch with its own slot of slack (the branch-free compaction writes one past its end),
    then copied together.
    """
    rows = spikes.shape[0]
    start = np.zeros(rows + 1, dtype=np.int64)
    for j in range(rows):
        start[j + 1] = start[j] + (counts[j] if valid[j] else 0)
    total = start[rows]
    if total != counts.sum():
        raise ValueError("spike_positions: counts do not match the spikes")
    padded = np.empty(total + rows, dtype=np.uint32)
    found = np.zeros(rows, dtype=np.int64)
    for j in prange(rows):
        if valid[j]:
            found[j] = _compact_row(spikes[j], 8, mode, positions, offset, padded, start[j] + j) - start[j] - j
    out = np.empty(total, dtype=np.uint32)
    bad = 0
    for j in prange(rows):
        if found[j] != start[j + 1] - start[j]:
            bad += 1
        else:
            out[start[j] : start[j + 1]] = padded[start[j] + j : start[j + 1] + j]
    if bad:
        raise ValueError("spike_positions: counts do not match the spikes")
    return out


@njit(cache=CACHE, nogil=True)
def plane_positions(
    pixels: np.ndarray, timesteps: int, mode: int, positions: int, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Bit-plane spikes of direct images (planes k = 0..7, each in raster order) at the rows of t = 1.

    ``pixels``: uint8 [n, size]; returns (count per row [n*timesteps], virtual positions uint32).
    """
    n, size = pixels.shape
    counts = np.zeros(n * timesteps, dtype=np.int64)
    total = 0
    for i in range(n):
        c = 0
        for q in range(size):
            v = np.int64(pixels[i, q])  # not uint8: the count would wrap at 256 without the JIT (NumPy 2 promotion)
            while v:
                c += v & 1
                v >>= 1
        counts[i * timesteps] = c
        total += c
    out = np.empty(total + 1, dtype=np.uint32)
    k = 0
    for i in range(n):
        for b in range(8):
            k = _compact_row(pixels[i], b, mode, positions, offset, out, k)
    return counts, out[:total]


@njit(cache=CACHE, nogil=True)
def merge_rows(counts: np.ndarray, parts_ptr: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """Interleave several inputs row by row: ``counts`` [inputs, rows], ``parts`` concatenated, ``parts_ptr``
    [inputs + 1] their starts; returns per row input 0's positions, then input 1's, ..."""
    ninp, rows = counts.shape
    out = np.empty(parts.shape[0], dtype=parts.dtype)
    cursor = parts_ptr[:-1].copy()
    k = 0
    for j in range(rows):
        for m in range(ninp):
            for _ in range(counts[m, j]):
                out[k] = parts[cursor[m]]
                cursor[m] += 1
                k += 1
    return out


# ------------------------------------------------------------------------------------------
# counting kernels
# ------------------------------------------------------------------------------------------


@njit(cache=CACHE, nogil=True, parallel=True)
def position_counts(spikes: np.ndarray, channels: int, positions: int, valid: np.ndarray) -> np.ndarray:
    """Spikes per position summed over channels: [rows, C*HW] 0/1 -> [rows, HW] (rows with valid=0 stay 0)."""
    rows = spikes.shape[0]
    out = np.zeros((rows, positions), dtype=np.int64)
    for j in prange(rows):
        if not valid[j]:
            continue
        for c in range(channels):
            base = c * positions
            for q in range(positions):
                out[j, q] += spikes[j, base + q] != 0
    return out


@njit(cache=CACHE, nogil=True, parallel=True)
def block_counts(spikes: np.ndarray, offsets: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Spikes inside each block [offsets[b], offsets[b+1]) of the flat map: [rows, N] -> [rows, blocks]."""
    rows = spikes.shape[0]
    blocks = offsets.shape[0] - 1
    out = np.zeros((rows, blocks), dtype=np.int64)
    for j in prange(rows):
        if not valid[j]:
            continue
        for b in range(blocks):
            s = 0
            for q in range(offsets[b], offsets[b + 1]):
                s += spikes[j, q] != 0
            out[j, b] = s
    return out


@njit(cache=CACHE, nogil=True, parallel=True)
def class_loads(
    counts: np.ndarray,
    src: np.ndarray,
    target: np.ndarray,
    offset: int,
    vp_ptr: np.ndarray,
    vp_cls: np.ndarray,
    vp_cost: np.ndarray,
    matrix: np.ndarray,
    cyc: np.ndarray,
    dlv_cls: np.ndarray,
    dlv: np.ndarray,
    acc: np.ndarray,
    hops: np.ndarray,
) -> None:
    """Add the fold's loads of one conv input's spikes, row ``src[i]`` of ``counts`` into row ``target[i]``.

    ``counts`` [*, HW]: spikes per position; position q is virtual position ``offset + q`` of the fold's CSR
    (``vp_ptr``, ``vp_cls``, ``vp_cost``), and ``matrix`` [HW, 3] its deliveries, accumulations and
    hop-weighted deliveries per spike. Adds accumulate cycles and deliveries per PE class into ``cyc`` and
    ``dlv_cls`` [*, classes], and the three totals into ``dlv``, ``acc``, ``hops``: the products
    counts @ (costs | coverage | matrix), at the cost of the nonzero entries only. The ``target`` rows are
    distinct (the callers pass one per image and timestep), so the rows are done in parallel.
    """
    for i in prange(src.shape[0]):
        row = target[i]
        for q in range(counts.shape[1]):
            k = counts[src[i], q]
            if k == 0:
                continue
            dlv[row] += k * matrix[q, 0]
            acc[row] += k * matrix[q, 1]
            hops[row] += k * matrix[q, 2]
            for e in range(vp_ptr[offset + q], vp_ptr[offset + q + 1]):
                c = vp_cls[e]
                cyc[row, c] += k * vp_cost[e]
                dlv_cls[row, c] += k


@njit(cache=CACHE, nogil=True)
def popcount_positions(pixels: np.ndarray, channels: int, positions: int) -> np.ndarray:
    """Set bits (bit-plane spikes) per position summed over channels: uint8 [n, C*HW] -> [n, HW]."""
    n = pixels.shape[0]
    out = np.zeros((n, positions), dtype=np.int64)
    for i in range(n):
        for c in range(channels):
            base = c * positions
            for q in range(positions):
                v = pixels[i, base + q]
                cnt = 0
                while v:
                    cnt += v & 1
                    v >>= 1
                out[i, q] += cnt
    return out


@njit(cache=CACHE, nogil=True)
def _conv_coverage(
    pe_offsets: np.ndarray, ho: int, wo: int, h: int, w: int, kernel: int, stride: int, padding: int, cov: np.ndarray
) -> np.ndarray:
    """cov [PEs, h*w] (zeroed, given): one pass over the fold's neurons, each adding its receptive field to its PE's
    row."""
    num_pes = pe_offsets.shape[0] - 1
    per_map = ho * wo
    for p in range(num_pes):
        for neuron in range(pe_offsets[p], pe_offsets[p + 1]):
            q = neuron % per_map
            y0 = (q // wo) * stride - padding
            x0 = (q % wo) * stride - padding
            for dy in range(kernel):
                y = y0 + dy
                if y < 0 or y >= h:
                    continue
                for dx in range(kernel):
                    x = x0 + dx
                    if 0 <= x < w:
                        cov[p, y * w + x] += 1
    return cov


def conv_coverage(
    pe_offsets: np.ndarray,
    out_shape: tuple[int, ...],
    in_hw: tuple[int, int],
    kernel: int,
    stride: int,
    padding: int,
) -> np.ndarray:
    """cov[p, y*W + x]: neurons of PE p (in one fold) whose receptive field holds input position (y, x).

    int32 when no entry can pass 2^31 - 1 (a PE's neurons x kernel^2): the matrix is PEs x positions per fold,
    4 GB at int64 for a 512x512 array on a 32x32 map, and half of that is the difference between running and not."""
    _, ho, wo = (int(v) for v in out_shape)
    h, w = (int(v) for v in in_hw)
    offsets = np.ascontiguousarray(pe_offsets, dtype=np.int64)
    most = int(np.diff(offsets).max(initial=0)) * int(kernel) ** 2
    cov = np.zeros((offsets.shape[0] - 1, h * w), dtype=np.int32 if most < 2**31 else np.int64)
    return _conv_coverage(offsets, ho, wo, h, w, int(kernel), int(stride), int(padding), cov)


@njit(cache=CACHE, nogil=True)
def _first_equal_rows(rows: np.ndarray) -> np.ndarray:
    """For each row, the index of the first row equal to it (exact): rows hashed (FNV-1a over their values), sorted
    by hash (stable), and every row compared value by value with the first rows of its hash run."""
    n, m = rows.shape
    hashes = np.empty(n, dtype=np.uint64)
    for p in range(n):
        h = np.uint64(14695981039346656037)
        for j in range(m):
            h = (h ^ np.uint64(rows[p, j] & 0xFFFFFFFF)) * np.uint64(1099511628211)
            h = (h ^ np.uint64((rows[p, j] >> 32) & 0xFFFFFFFF)) * np.uint64(1099511628211)
        hashes[p] = h
    order = np.argsort(hashes, kind="mergesort")  # stable: a run lists its rows in ascending index
    first = np.empty(n, dtype=np.int64)
    reps = np.empty(n, dtype=np.int64)  # the distinct rows of the current hash run (their first indices)
    start = 0
    while start < n:
        stop = start + 1
        while stop < n and hashes[order[stop]] == hashes[order[start]]:
            stop += 1
        count = 0
        for k in range(start, stop):
            p = order[k]
            found = -1
            for r in range(count):
                q = reps[r]
                same = True
                for j in range(m):
                    if rows[p, j] != rows[q, j]:
                        same = False
                        break
                if same:
                    found = q
                    break
            if found < 0:
                reps[count] = p
                count += 1
                found = p
            first[p] = found
        start = stop
    return first


def equal_rows(full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of a 2-D integer matrix in order of first appearance, and each row's index among them (exact)."""
    rows = np.ascontiguousarray(full)
    if rows.dtype not in (np.int32, np.int64):
        rows = rows.astype(np.int64)
    first = _first_equal_rows(rows)
    distinct = np.unique(first)  # ascending first indices: the order of first appearance
    return rows[distinct], np.searchsorted(distinct, first).astype(np.int64)


@njit(cache=CACHE, nogil=True)
def channel_multicast_links(lo: np.ndarray, hi: np.ndarray, per_channel: int, first: int, last: int,
                            cols: int) -> int:
    """Sum over channels first..last of the links of the XY multicast tree from tile (0, 0) to the PEs holding a
    neuron of the channel (PE p holds neurons [lo[p], hi[p]), ascending; a channel's neurons are [c * per_channel,
    (c + 1) * per_channel)): per channel, the largest column used plus, over the used columns, the deepest row there
    (mapping.multicast_links's rule), in O(holders + columns touched) instead of a PEs x channels matrix."""
    num_pes = lo.shape[0]
    deepest = np.full(cols, -1, dtype=np.int64)
    touched = np.empty(cols, dtype=np.int64)
    total = 0
    p_start = 0
    for c in range(first, last + 1):
        c_lo = c * per_channel
        c_hi = c_lo + per_channel
        while p_start < num_pes and hi[p_start] <= c_lo:
            p_start += 1
        count = 0
        p = p_start
        while p < num_pes and lo[p] < c_hi:
            if hi[p] > lo[p] and hi[p] > c_lo:
                col = p % cols
                if deepest[col] < 0:
                    touched[count] = col
                    count += 1
                deepest[col] = p // cols  # p ascends: the last holder in a column is the deepest
            p += 1
        if count == 0:
            continue
        max_col = 0
        for k in range(count):
            col = touched[k]
            total += deepest[col]
            if col > max_col:
                max_col = col
            deepest[col] = -1
        total += max_col
    return total
