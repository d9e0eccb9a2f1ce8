"""Numba kernels: exact compute-phase outcomes (docs/microarchitecture.md section 4.1) and counting kernels.

**PE-group folds: one multicast stream with head-of-line blocking.** Two witnesses of the same rules:

* :func:`exact_fold_phase`, a literal per-cycle model of a fold's compute phase (every PE's step 1, the
  stream's step 2, every output buffer's step 3, one loop iteration per cycle), for tests;
* the event recurrence used by the engine (:func:`fold_slices` / :func:`_stream_slice`), which costs
  O(deliveries) instead of O(cycles x PEs). Its derivation from the per-cycle rules:

  Let stream spike ``s`` (delivery order, only spikes with >= 1 destination) be delivered in step 2 of
  cycle ``d_s``, and let PE p's k-th received spike (k = 1, 2, ... in stream order) have cost ``a_k``
  and be popped in step 1 of cycle ``pi_k``.

  1. *Stream.* Spike s is attempted at every cycle ``c >= max(L, d_{s-1})`` until delivered (the stream
     always tries its next spike first and stops at the first refusal). At cycle c it goes iff (i) fewer
     than r spikes were delivered earlier in that cycle, i.e. ``d_{s-r} < c`` (the d are non-decreasing);
     (ii) every destination p has room: p has received ``k - 1`` spikes before s (all earlier spikes were
     delivered, in order, including those of this same step) and popped those with ``pi_j <= c`` (pops in
     step 1 precede step 2), so room means ``k - 1 - #{j: pi_j <= c} < cap``, i.e. ``pi_{k-cap} <= c``
     (no condition while ``k <= cap``). Both conditions are monotone in c, so
     ``d_s = max(L, d_{s-1}, d_{s-r} + 1, max_p pi^p_{k_p(s)-cap})``.
  2. *PE.* A spike delivered at cycle d is in the buffer at the start of cycle d + 1. PE p pops its k-th
     spike at the first cycle where it is free and the spike is there: ``pi_k = max(d + 1, ready_k)``, with
     ``ready_1 = i_1 * n_p * F`` and ``ready_k = pi_{k-1} + a_{k-1} + (i_k - i_{k-1}) * n_p * F`` (an image
     i's fire pass, n_p neurons x ``fire_cycles`` F, starts in the cycle after its last accumulation;
     clarification 1: the next image's spikes wait for it; images that send p nothing fire back to back).
     While p waits (``d + 1 > ready``) it stalls on input: it cannot fire early because the spike belongs
     to the image it works on (or a later one, whose earlier fire passes are already in ``ready``).
  3. *Output.* At most one spike is pushed per cycle and the same cycle drains ``r >= 1``, so the output
     buffer is empty at the end of every cycle: ``stall_output = 0`` (both ``r >= 1`` and capacities >= 1
     are validated by ``hw/mapping.py``). Hence ``D_p = ready_{K+1} + n_p * F`` (the last image's fire
     pass after p's last spike, with ``ready`` advanced by every image boundary), 0 for a PE without
     neurons; ``busy_p = sum a + b * n_p * F`` and ``stall_input_p = D_p - busy_p``.

  Steps 1-2 form one recurrence over the stream in delivery order; each destination PE keeps ``ready``
  and a ring of its last ``cap`` pop cycles. PEs with equal neurons and equal coverage of every input
  position receive the same spikes at the same costs, hence have identical trajectories: the engine runs
  the recurrence once per such class (deep VGG layers collapse from 255 PEs to 3-66 classes).
  ``tests/test_engine.py`` checks recurrence == per-cycle model on thousands of random folds (1-3
  images, 1-3 entry buffers, r = 1..3, adders 1..3, multi-cycle fires, PEs without neurons, spikes with
  1..all destinations), and a brute-force witness of whole slices built from section 4.1's definitions.

**The exit unit** keeps its own single link (clarification 3): :func:`exact_pe_phase` is its per-cycle
model and :func:`closed_form_pe_phase` the closed form used by the engine, exact because

  1. the output buffer never fills (as above);
  2. *no starvation after the first arrival*: from cycle ``L`` on, a cycle that ends with an empty input
     buffer had room after step 1 and delivered nothing, so every spike had already been delivered.
     So the only input stalls are from the moment the unit first wants a spike, ``s0`` = the update
     passes of leading images that send it nothing, up to cycle ``L``: ``max(0, L + 1 - s0)``;
  3. every other cycle is busy.

The rest are counting kernels: per-position spike counts (summed over channels), per-PE-block counts,
bit-plane popcounts, coverage matrices of receptive fields, and the stream's virtual positions.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# ------------------------------------------------------------------------------------------
# the per-cycle witness
# ------------------------------------------------------------------------------------------


@njit(cache=True)
def exact_pe_phase(
    spike_image: np.ndarray,
    spike_cost: np.ndarray,
    num_images: int,
    num_neurons: int,
    fire_cycles: int,
    fire_spikes: np.ndarray,
    start_cycle: int,
    link_spikes_per_cycle: int,
    in_capacity: int,
    out_capacity: int,
) -> tuple[int, int, int, int]:
    """Per-cycle model of one PE's compute phase; returns (D_p, busy, stall_input, stall_output).

    ``spike_image[j]``/``spike_cost[j]``: image index (non-decreasing) and accumulate cycles of the
    j-th delivered spike in delivery order; ``fire_spikes[i, n]``: whether neuron n of image i spikes.
    """
    total = spike_image.shape[0]
    per_image = np.zeros(num_images + 1, dtype=np.int64)
    for j in range(total):
        per_image[spike_image[j]] += 1
    busy = 0
    stall_in = 0
    stall_out = 0
    delivered = 0
    popped = 0
    in_count = 0
    out_count = 0
    image = 0
    popped_image = 0
    acc_left = 0
    firing = False
    neuron = 0
    sub = 0
    done = num_images == 0 or (num_neurons == 0 and total == 0)
    k = 0
    while not done or out_count > 0:
        # 1. the PE acts on the state at the start of the cycle
        if not done:
            if acc_left > 0:
                busy += 1
                acc_left -= 1
            else:
                if not firing and popped_image < per_image[image]:
                    if in_count > 0:
                        in_count -= 1
                        popped += 1
                        popped_image += 1
                        busy += 1
                        acc_left = spike_cost[popped - 1] - 1
                    else:
                        stall_in += 1
                elif not firing:
                    firing = True
                    neuron = 0
                    sub = 0
                if firing:
                    if sub + 1 < fire_cycles:
                        busy += 1
                        sub += 1
                    elif fire_spikes[image, neuron] and out_count >= out_capacity:
                        stall_out += 1
                    else:
                        busy += 1
                        if fire_spikes[image, neuron]:
                            out_count += 1
                        neuron += 1
                        sub = 0
                        if neuron >= num_neurons:
                            firing = False
                            image += 1
                            popped_image = 0
                            if image >= num_images:
                                done = True
        # 2. the link delivers into the room left after step 1
        if k >= start_cycle and delivered < total:
            n = min(link_spikes_per_cycle, in_capacity - in_count, total - delivered)
            if n > 0:
                delivered += n
                in_count += n
        # 3. the output buffer drains (including a spike pushed this cycle)
        out_count -= min(out_count, link_spikes_per_cycle)
        k += 1
        # event skip: inside an accumulation nothing changes while the link cannot deliver
        if acc_left > 0 and out_count == 0 and not done:
            skip = 0
            if delivered == total or in_count == in_capacity:
                skip = acc_left
            elif k < start_cycle:
                skip = min(acc_left, start_cycle - k)
            busy += skip
            acc_left -= skip
            k += skip
    return k, busy, stall_in, stall_out


def closed_form_pe_phase(
    spike_image: np.ndarray,
    spike_cost: np.ndarray,
    num_images: int,
    num_neurons: int,
    fire_cycles: int,
    start_cycle: int,
) -> tuple[int, int, int, int]:
    """The closed form of the module docstring for one PE; same return as :func:`exact_pe_phase`."""
    if num_neurons == 0 and spike_image.size == 0:
        return 0, 0, 0, 0
    fire = num_neurons * fire_cycles
    busy = int(spike_cost.sum()) + num_images * fire
    stall = 0
    if spike_image.size:
        s0 = int(spike_image[0]) * fire
        stall = max(0, start_cycle + 1 - s0)
    return busy + stall, busy, stall, 0


# ------------------------------------------------------------------------------------------
# the coupled multicast stream of one fold: per-cycle witness
# ------------------------------------------------------------------------------------------


@njit(cache=True)
def exact_fold_phase(
    stream_image: np.ndarray,
    dst_ptr: np.ndarray,
    dst_pe: np.ndarray,
    dst_cost: np.ndarray,
    num_images: int,
    pe_neurons: np.ndarray,
    fire_cycles: int,
    fire_spikes: np.ndarray,
    start_cycle: int,
    stream_spikes_per_cycle: int,
    in_capacity: int,
    out_capacity: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Literal per-cycle model of a fold's compute phase (section 4.1); returns (D_p, busy, stall_in, stall_out).

    Stream spike s (delivery order) belongs to image ``stream_image[s]`` (non-decreasing) and goes to PEs
    ``dst_pe[dst_ptr[s]:dst_ptr[s+1]]`` costing ``dst_cost[...]`` accumulate cycles each;
    ``fire_spikes[i, p, n]``: whether neuron n of PE p spikes for image i. One loop iteration per cycle.
    """
    num_pes = pe_neurons.shape[0]
    total = stream_image.shape[0]
    per_image = np.zeros((num_pes, num_images + 1), dtype=np.int64)
    received = np.zeros(num_pes, dtype=np.int64)
    for s in range(total):
        for e in range(dst_ptr[s], dst_ptr[s + 1]):
            per_image[dst_pe[e], stream_image[s]] += 1
            received[dst_pe[e]] += 1
    # each PE's FIFO: the costs of the spikes it receives, in delivery order
    fifo_ptr = np.zeros(num_pes + 1, dtype=np.int64)
    for p in range(num_pes):
        fifo_ptr[p + 1] = fifo_ptr[p] + received[p]
    fifo_cost = np.zeros(fifo_ptr[num_pes], dtype=np.int64)
    fill = fifo_ptr[:-1].copy()
    for s in range(total):
        for e in range(dst_ptr[s], dst_ptr[s + 1]):
            fifo_cost[fill[dst_pe[e]]] = dst_cost[e]
            fill[dst_pe[e]] += 1
    in_count = np.zeros(num_pes, dtype=np.int64)
    out_count = np.zeros(num_pes, dtype=np.int64)
    popped = np.zeros(num_pes, dtype=np.int64)
    popped_image = np.zeros(num_pes, dtype=np.int64)
    image = np.zeros(num_pes, dtype=np.int64)
    acc_left = np.zeros(num_pes, dtype=np.int64)
    firing = np.zeros(num_pes, dtype=np.bool_)
    neuron = np.zeros(num_pes, dtype=np.int64)
    sub = np.zeros(num_pes, dtype=np.int64)
    done = np.zeros(num_pes, dtype=np.bool_)
    d_p = np.full(num_pes, -1, dtype=np.int64)
    busy = np.zeros(num_pes, dtype=np.int64)
    stall_in = np.zeros(num_pes, dtype=np.int64)
    stall_out = np.zeros(num_pes, dtype=np.int64)
    for p in range(num_pes):
        if num_images == 0 or (pe_neurons[p] == 0 and received[p] == 0):
            done[p] = True
            d_p[p] = 0
    next_spike = 0
    k = 0
    remaining = 0
    for p in range(num_pes):
        remaining += d_p[p] < 0
    while remaining > 0:
        # 1. every PE acts on the state at the start of the cycle
        for p in range(num_pes):
            if done[p]:
                continue
            if acc_left[p] > 0:
                busy[p] += 1
                acc_left[p] -= 1
                continue
            if not firing[p]:
                if popped_image[p] < per_image[p, image[p]]:
                    if in_count[p] > 0:
                        in_count[p] -= 1
                        busy[p] += 1
                        acc_left[p] = fifo_cost[fifo_ptr[p] + popped[p]] - 1
                        popped[p] += 1
                        popped_image[p] += 1
                    else:
                        stall_in[p] += 1
                    continue
                firing[p] = True
                neuron[p] = 0
                sub[p] = 0
            # in a fire pass: process the next neuron
            if sub[p] + 1 < fire_cycles:
                busy[p] += 1
                sub[p] += 1
            elif fire_spikes[image[p], p, neuron[p]] and out_count[p] >= out_capacity:
                stall_out[p] += 1
            else:
                busy[p] += 1
                if fire_spikes[image[p], p, neuron[p]]:
                    out_count[p] += 1
                neuron[p] += 1
                sub[p] = 0
                if neuron[p] >= pe_neurons[p]:
                    firing[p] = False
                    image[p] += 1
                    popped_image[p] = 0
                    if image[p] >= num_images:
                        done[p] = True
        # 2. the stream delivers: up to r spikes, each only if every destination has room
        if k >= start_cycle:
            for _ in range(stream_spikes_per_cycle):
                if next_spike >= total:
                    break
                room = True
                for e in range(dst_ptr[next_spike], dst_ptr[next_spike + 1]):
                    if in_count[dst_pe[e]] >= in_capacity:
                        room = False
                if not room:
                    break
                for e in range(dst_ptr[next_spike], dst_ptr[next_spike + 1]):
                    in_count[dst_pe[e]] += 1
                next_spike += 1
        # 3. output buffers drain (including a spike pushed this cycle)
        for p in range(num_pes):
            out_count[p] -= min(out_count[p], stream_spikes_per_cycle)
            if done[p] and out_count[p] == 0 and d_p[p] < 0:
                d_p[p] = k + 1
                remaining -= 1
        k += 1
    return d_p, busy, stall_in, stall_out


# ------------------------------------------------------------------------------------------
# the coupled multicast stream of one fold: the event recurrence used by the engine
# ------------------------------------------------------------------------------------------


@njit(cache=True)
def _stream_slice(
    row_lo: np.ndarray,
    row_hi: np.ndarray,
    pos: np.ndarray,
    vp_ptr: np.ndarray,
    vp_cls: np.ndarray,
    vp_cost: np.ndarray,
    cls_neurons: np.ndarray,
    fire_cycles: int,
    start_cycle: int,
    r: int,
    cap: int,
    shift: int,
    paced: bool,
    d_out: np.ndarray,
) -> None:
    """One slice by the recurrence of the module docstring; writes D_p per class into ``d_out``.

    Image i of the slice delivers the stream spikes ``pos[row_lo[i]:row_hi[i]]`` (virtual positions whose
    destination classes are ``vp_cls[vp_ptr[v]:vp_ptr[v+1]]`` with costs ``vp_cost``). Per class the state
    is packed in one int64, ``ready << shift | head``: ``ready`` = the earliest cycle the PE can pop its next
    spike, ``head`` = the ring slot holding the pop cycle of its spike ``cap`` deliveries back (0: none yet).
    Indices are unsigned so that numba emits no wrap-around checks (twice as fast). ``paced``: the caller
    proved that no PE receives more than ``cap`` spikes, so no buffer fills and the room check is skipped.
    """
    ncls = cls_neurons.shape[0]
    mask = (np.int64(1) << shift) - 1
    state = np.arange(ncls, dtype=np.int64) * cap
    ring = np.zeros(ncls * cap, dtype=np.int64)
    pace = np.full(r, start_cycle - 1, dtype=np.int64)  # delivery cycles of the stream's last r spikes
    pslot = 0
    last = np.int64(start_cycle)
    nrows = row_lo.shape[0]
    for i in range(nrows):
        if i > 0:  # image boundary: every PE fires the previous image before popping the next one's spikes
            for c in range(ncls):
                state[c] += (cls_neurons[c] * fire_cycles) << shift
        for j in range(row_lo[i], row_hi[i]):
            v = pos[j]
            lo = vp_ptr[v]
            hi = vp_ptr[v + 1]
            if lo == hi:
                continue  # no destination in this fold: not in the stream
            # pacing (r per cycle, in order, from L) and room at every destination
            d = max(pace[pslot] + 1, last)
            if not paced:
                for e in range(lo, hi):
                    d = max(d, ring[np.uint64(state[vp_cls[e]] & mask)])
            d1 = d + 1
            for e in range(lo, hi):
                c = vp_cls[e]
                st = state[c]
                h = st & mask
                pop = max(st >> shift, d1)
                ring[np.uint64(h)] = pop
                h += 1
                if h - np.int64(c) * cap == cap:
                    h -= cap
                state[c] = ((pop + vp_cost[e]) << shift) | h
            last = d
            pace[pslot] = d
            pslot += 1
            if pslot == r:
                pslot = 0
    for c in range(ncls):
        fire = cls_neurons[c] * fire_cycles
        ready = state[c] >> shift
        d_out[c] = ready + fire if ready + fire > 0 else 0


def ring_shift(classes: int, cap: int) -> int:
    """Bits of the packed state kept for the ring head (see :func:`_stream_slice`)."""
    return max(1, int(classes * cap).bit_length())


def stream_fold_phase(
    stream_image: np.ndarray,
    dst_ptr: np.ndarray,
    dst_pe: np.ndarray,
    dst_cost: np.ndarray,
    num_images: int,
    pe_neurons: np.ndarray,
    fire_cycles: int,
    start_cycle: int,
    stream_spikes_per_cycle: int,
    in_capacity: int,
    paced: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The engine's recurrence on the inputs of :func:`exact_fold_phase` (one virtual position per spike).

    ``paced=True`` runs the fast path (no room check), valid when no PE receives more than ``in_capacity``.
    """
    num_pes = pe_neurons.shape[0]
    total = stream_image.shape[0]
    bounds = np.searchsorted(stream_image, np.arange(num_images + 1)).astype(np.int64)
    d = np.zeros(num_pes, dtype=np.int64)
    _stream_slice(
        bounds[:-1].copy(),
        bounds[1:].copy(),
        np.arange(total, dtype=np.uint32),
        np.asarray(dst_ptr, dtype=np.int64),
        np.asarray(dst_pe, dtype=np.uint32),
        np.asarray(dst_cost, dtype=np.int64),
        np.asarray(pe_neurons, dtype=np.int64),
        fire_cycles,
        start_cycle,
        stream_spikes_per_cycle,
        in_capacity,
        ring_shift(num_pes, in_capacity),
        paced,
        d,
    )
    busy = np.bincount(np.asarray(dst_pe, dtype=np.int64), weights=dst_cost, minlength=num_pes).astype(np.int64)
    busy += num_images * np.asarray(pe_neurons, dtype=np.int64) * fire_cycles
    busy[d == 0] = 0
    return d, busy, d - busy, np.zeros(num_pes, dtype=np.int64)


@njit(cache=True, parallel=True)
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
    cap: int,
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
            vp_cls,
            vp_cost,
            cls_neurons,
            fire_cycles,
            start_cycle,
            r,
            cap,
            shift,
            paced[s],
            d_all[s],
        )
    return d_all


# ------------------------------------------------------------------------------------------
# building the stream
# ------------------------------------------------------------------------------------------


@njit(cache=True, inline="always")
def _virtual_position(mode: int, q: int, positions: int, offset: int) -> int:
    """Stream position of flat input index q: per spatial position (0), one shared slot (1), or per neuron (2)."""
    if mode == 0:
        return offset + q % positions
    if mode == 1:
        return offset
    return offset + q


@njit(cache=True)
def spike_positions(
    spikes: np.ndarray, valid: np.ndarray, mode: int, positions: int, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Spikes of each row in raster order as virtual positions: (count per row [rows], positions).

    ``spikes``: 0/1 [rows, size]; rows with valid=0 deliver nothing. ``mode``: 0 conv (offset + index mod
    ``positions``), 1 linear (offset), 2 identity (offset + index).
    """
    rows, size = spikes.shape
    counts = np.zeros(rows, dtype=np.int64)
    for j in range(rows):
        if valid[j]:
            c = 0
            for q in range(size):
                c += spikes[j, q] != 0
            counts[j] = c
    out = np.empty(counts.sum(), dtype=np.int64)
    k = 0
    for j in range(rows):
        if not valid[j]:
            continue
        for q in range(size):
            if spikes[j, q]:
                out[k] = _virtual_position(mode, q, positions, offset)
                k += 1
    return counts, out


@njit(cache=True)
def plane_positions(
    pixels: np.ndarray, timesteps: int, mode: int, positions: int, offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Bit-plane spikes of direct images (planes k = 0..7, each in raster order) at the rows of t = 1.

    ``pixels``: uint8 [n, size]; returns (count per row [n*timesteps], virtual positions) as
    :func:`spike_positions`.
    """
    n, size = pixels.shape
    counts = np.zeros(n * timesteps, dtype=np.int64)
    total = 0
    for i in range(n):
        c = 0
        for q in range(size):
            v = pixels[i, q]
            while v:
                c += v & 1
                v >>= 1
        counts[i * timesteps] = c
        total += c
    out = np.empty(total, dtype=np.int64)
    k = 0
    for i in range(n):
        for b in range(8):
            for q in range(size):
                if (pixels[i, q] >> b) & 1:
                    out[k] = _virtual_position(mode, q, positions, offset)
                    k += 1
    return counts, out


@njit(cache=True)
def merge_rows(counts: np.ndarray, parts_ptr: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """Interleave several inputs row by row: ``counts`` [inputs, rows], ``parts`` concatenated, ``parts_ptr``
    [inputs + 1] their starts; returns per row input 0's positions, then input 1's, ..."""
    ninp, rows = counts.shape
    out = np.empty(parts.shape[0], dtype=np.int64)
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


@njit(cache=True)
def position_counts(spikes: np.ndarray, channels: int, positions: int, valid: np.ndarray) -> np.ndarray:
    """Spikes per position summed over channels: [rows, C*HW] 0/1 -> [rows, HW] (rows with valid=0 stay 0)."""
    rows = spikes.shape[0]
    out = np.zeros((rows, positions), dtype=np.int64)
    for j in range(rows):
        if not valid[j]:
            continue
        for c in range(channels):
            base = c * positions
            for q in range(positions):
                if spikes[j, base + q]:
                    out[j, q] += 1
    return out


@njit(cache=True)
def block_counts(spikes: np.ndarray, offsets: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Spikes inside each block [offsets[b], offsets[b+1]) of the flat map: [rows, N] -> [rows, blocks]."""
    rows = spikes.shape[0]
    blocks = offsets.shape[0] - 1
    out = np.zeros((rows, blocks), dtype=np.int64)
    for j in range(rows):
        if not valid[j]:
            continue
        for b in range(blocks):
            s = 0
            for q in range(offsets[b], offsets[b + 1]):
                if spikes[j, q]:
                    s += 1
            out[j, b] = s
    return out


@njit(cache=True)
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


def conv_coverage(
    pe_offsets: np.ndarray,
    fold_start: int,
    out_shape: tuple[int, ...],
    in_hw: tuple[int, int],
    kernel: int,
    stride: int,
    padding: int,
) -> np.ndarray:
    """cov[p, y*W + x]: neurons of PE p (in one fold) whose receptive field holds input position (y, x)."""
    num_pes = pe_offsets.shape[0] - 1
    _, ho, wo = (int(v) for v in out_shape)
    h, w = in_hw
    lo, hi = int(pe_offsets[0]), int(pe_offsets[-1])
    neurons = np.arange(lo, hi, dtype=np.int64)
    owner = np.searchsorted(pe_offsets, neurons, side="right") - 1
    pos = neurons % (ho * wo)
    m = np.bincount(owner * (ho * wo) + pos, minlength=num_pes * ho * wo).reshape(num_pes, ho, wo)
    cov = np.zeros((num_pes, h, w), dtype=np.int64)
    for dy in range(kernel):
        oy = np.arange(ho)
        ys = oy * stride - padding + dy
        oky = (ys >= 0) & (ys < h)
        if not oky.any():
            continue
        for dx in range(kernel):
            ox = np.arange(wo)
            xs = ox * stride - padding + dx
            okx = (xs >= 0) & (xs < w)
            if not okx.any():
                continue
            cov[:, ys[oky][:, None], xs[okx][None, :]] += m[:, oy[oky]][:, :, ox[okx]]
    del fold_start
    return cov.reshape(num_pes, h * w)

