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
from numba import njit

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
# the engine's batched closed form
# ------------------------------------------------------------------------------------------


@njit(cache=True)
def batch_slices(
    dlv: np.ndarray,
    cyc: np.ndarray,
    pe_neurons: np.ndarray,
    fire_cycles: int,
    start_cycles: np.ndarray,
    active: np.ndarray,
    busy_out: np.ndarray,
    stall_out: np.ndarray,
) -> int:
    """Compute-phase duration max_p D_p of one slice, adding per-PE busy/stall_input into the outputs.

    ``dlv[i, p]``/``cyc[i, p]``: deliveries and accumulate cycles of image i to PE p; ``active[i]``
    marks the batch's images still running (in batch order).
    """
    num_images, num_pes = dlv.shape
    n_active = 0
    for i in range(num_images):
        if active[i]:
            n_active += 1
    d_max = 0
    for p in range(num_pes):
        fire = pe_neurons[p] * fire_cycles
        busy = n_active * fire
        seen = 0
        first = -1
        for i in range(num_images):
            if not active[i]:
                continue
            if dlv[i, p] > 0 and first < 0:
                first = seen
            busy += cyc[i, p]
            seen += 1
        stall = 0
        if first >= 0:
            stall = start_cycles[p] + 1 - first * fire
            if stall < 0:
                stall = 0
        d = busy + stall
        if d > d_max:
            d_max = d
        busy_out[p] += busy
        stall_out[p] += stall
    return d_max


@njit(cache=True)
def single_image_slices(
    dlv: np.ndarray, cyc: np.ndarray, pe_neurons: np.ndarray, fire_cycles: int, start_cycles: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Closed form for batches of one image over many (image, t) rows: (D [rows], busy [P], stall [P]).

    ``dlv``/``cyc``: [rows, P]; busy/stall are summed over rows (rows must all be active slices).
    """
    rows, num_pes = dlv.shape
    d = np.zeros(rows, dtype=np.int64)
    busy_sum = np.zeros(num_pes, dtype=np.int64)
    stall_sum = np.zeros(num_pes, dtype=np.int64)
    for j in range(rows):
        d_max = 0
        for p in range(num_pes):
            busy = pe_neurons[p] * fire_cycles + cyc[j, p]
            stall = start_cycles[p] + 1 if dlv[j, p] > 0 else 0
            if busy + stall > d_max:
                d_max = busy + stall
            busy_sum[p] += busy
            stall_sum[p] += stall
        d[j] = d_max
    return d, busy_sum, stall_sum


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
