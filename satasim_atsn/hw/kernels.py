"""Numba kernels: exact per-PE compute-phase outcomes (docs/microarchitecture.md section 4.1).

Two witnesses of the same coupled buffer model live here:

* :func:`exact_pe_phase`, a per-cycle model of one PE (input buffer fed by the NoC link, the PE,
  the output buffer draining), skipping cycles in which nothing can change;
* the closed form used by the engine (:func:`batch_slices`), which the following argument makes
  exact whenever ``r >= 1`` spike per cycle and both buffers hold at least one spike (both are
  validated by ``hw/mapping.py``):

  1. *No output stall.* At most one spike is pushed per cycle (step 1) and the same cycle drains
     up to ``r >= 1`` spikes (step 3), so the output buffer is empty at the end of every cycle and
     a push never finds it full: ``stall_output = 0``, and the buffer is empty when the PE is done.
  2. *No starvation after the first arrival.* From cycle ``L`` on, a cycle that ends with an
     empty input buffer had room ``>= 1`` after step 1 and delivered nothing, so every spike had
     already been delivered. Hence when the PE wants a spike at a cycle ``k > L`` it finds one.
     Before cycle ``L + 1`` nothing can be popped. So the only input stalls are the cycles from
     the moment the PE first wants a spike, ``s0`` = the fire-pass cycles of the leading images
     that deliver it nothing, up to cycle ``L``: ``max(0, L + 1 - s0)`` (0 if it gets no spikes).
  3. Every other cycle until done is busy: ``sum ceil(cov/adders)`` over delivered spikes plus
     ``fire_cycles`` per neuron per image. So ``D_p = busy + stall_input`` and buffer capacities
     and ``r`` do not matter beyond being >= 1.

  ``tests/test_engine.py`` checks closed form == per-cycle kernel on random cases with one- and
  two-entry buffers, adders > 1, multi-cycle fires and several images per batch.

The rest are counting kernels: per-position spike counts (summed over channels), per-PE-block
counts, bit-plane popcounts, and coverage matrices of receptive fields.
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
    d_out: np.ndarray,
    busy_out: np.ndarray,
) -> int:
    """One slice by the recurrence of the module docstring; writes D_p/busy per class, returns deliveries.

    Image i of the slice delivers the stream spikes ``pos[row_lo[i]:row_hi[i]]`` (virtual positions whose
    destinations are ``vp_cls[vp_ptr[v]:vp_ptr[v+1]]`` with costs ``vp_cost``).
    """
    ncls = cls_neurons.shape[0]
    ready = np.zeros(ncls, dtype=np.int64)  # earliest cycle the PE can pop its next spike
    slot = np.zeros(ncls, dtype=np.int64)  # ring index of the PE's pop times
    ring = np.zeros((ncls, cap), dtype=np.int64)  # pop cycles of the PE's last ``cap`` spikes (0: none yet)
    pace = np.full(r, start_cycle - 1, dtype=np.int64)  # delivery cycles of the stream's last r spikes
    pslot = 0
    last = start_cycle
    deliveries = 0
    for c in range(ncls):
        busy_out[c] = 0
    nrows = row_lo.shape[0]
    for i in range(nrows):
        if i > 0:  # image boundary: every PE fires the previous image before popping the next one's spikes
            for c in range(ncls):
                ready[c] += cls_neurons[c] * fire_cycles
        for j in range(row_lo[i], row_hi[i]):
            v = pos[j]
            lo = vp_ptr[v]
            hi = vp_ptr[v + 1]
            if lo == hi:
                continue  # no destination in this fold: not in the stream
            d = pace[pslot] + 1
            if last > d:
                d = last
            for e in range(lo, hi):
                c = vp_cls[e]
                w = ring[c, slot[c]]
                if w > d:
                    d = w
            for e in range(lo, hi):
                c = vp_cls[e]
                pop = d + 1
                if ready[c] > pop:
                    pop = ready[c]
                ring[c, slot[c]] = pop
                slot[c] += 1
                if slot[c] == cap:
                    slot[c] = 0
                ready[c] = pop + vp_cost[e]
                busy_out[c] += vp_cost[e]
            deliveries += hi - lo
            last = d
            pace[pslot] = d
            pslot += 1
            if pslot == r:
                pslot = 0
    for c in range(ncls):
        fire = cls_neurons[c] * fire_cycles
        busy_out[c] += nrows * fire
        if busy_out[c] == 0:
            d_out[c] = 0
        else:
            d_out[c] = ready[c] + fire
    return deliveries


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The engine's recurrence on the inputs of :func:`exact_fold_phase` (one virtual position per spike)."""
    num_pes = pe_neurons.shape[0]
    total = stream_image.shape[0]
    bounds = np.searchsorted(stream_image, np.arange(num_images + 1)).astype(np.int64)
    d = np.zeros(num_pes, dtype=np.int64)
    busy = np.zeros(num_pes, dtype=np.int64)
    _stream_slice(
        bounds[:-1].copy(),
        bounds[1:].copy(),
        np.arange(total, dtype=np.int64),
        np.asarray(dst_ptr, dtype=np.int64),
        np.asarray(dst_pe, dtype=np.int64),
        np.asarray(dst_cost, dtype=np.int64),
        np.asarray(pe_neurons, dtype=np.int64),
        fire_cycles,
        start_cycle,
        stream_spikes_per_cycle,
        in_capacity,
        d,
        busy,
    )
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
) -> tuple[np.ndarray, np.ndarray]:
    """Many slices of one fold in parallel: (D [S, classes], busy [S, classes]).

    Slice s runs the images (trace rows) ``slice_rows[slice_ptr[s]:slice_ptr[s+1]]`` in batch order; row q
    delivers ``pos[row_ptr[q]:row_ptr[q+1]]``.
    """
    ns = slice_ptr.shape[0] - 1
    ncls = cls_neurons.shape[0]
    d_all = np.zeros((ns, ncls), dtype=np.int64)
    busy_all = np.zeros((ns, ncls), dtype=np.int64)
    for s in prange(ns):
        rows = slice_rows[slice_ptr[s] : slice_ptr[s + 1]]
        lo = np.empty(rows.shape[0], dtype=np.int64)
        hi = np.empty(rows.shape[0], dtype=np.int64)
        for i in range(rows.shape[0]):
            lo[i] = row_ptr[rows[i]]
            hi[i] = row_ptr[rows[i] + 1]
        _stream_slice(
            lo, hi, pos, vp_ptr, vp_cls, vp_cost, cls_neurons, fire_cycles, start_cycle, r, cap, d_all[s], busy_all[s]
        )
    return d_all, busy_all


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
