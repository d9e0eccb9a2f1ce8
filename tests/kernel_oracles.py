"""Test-only oracles of hw/kernels.py (moved from there): per-cycle witnesses and closed forms (docs/kernels.md).

``exact_pe_phase`` / ``exact_fold_phase`` step the rules of docs/microarchitecture.md section 4.1 one cycle at
a time; ``closed_form_pe_phase`` is the exit unit's closed form that hw/engine.py computes inline, batch by
batch; ``stream_fold_phase`` runs the engine's recurrence (kernels.fold_slices, one slice) on the witness's inputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from satasim_atsn.hw.kernels import fold_slices, ring_shift


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
    input_buffer_spikes: int,
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
            n = min(link_spikes_per_cycle, input_buffer_spikes - in_count, total - delivered)
            if n > 0:
                delivered += n
                in_count += n
        # 3. the output buffer drains (including a spike pushed this cycle)
        out_count -= min(out_count, link_spikes_per_cycle)
        k += 1
        # event skip: inside an accumulation nothing changes while the link cannot deliver
        if acc_left > 0 and out_count == 0 and not done:
            skip = 0
            if delivered == total or in_count == input_buffer_spikes:
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
    input_buffer_spikes: int,
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
                    if in_count[dst_pe[e]] >= input_buffer_spikes:
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
    input_buffer_spikes: int,
    paced: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The engine's recurrence on the inputs of :func:`exact_fold_phase` (one virtual position per spike).

    ``paced=True`` runs the fast path (no room check), valid when no PE receives more than ``input_buffer_spikes``.
    """
    num_pes = pe_neurons.shape[0]
    total = stream_image.shape[0]
    bounds = np.searchsorted(stream_image, np.arange(num_images + 1)).astype(np.int64)
    d = fold_slices(
        np.array([0, num_images], dtype=np.int64),
        np.arange(num_images, dtype=np.int64),
        bounds,
        np.arange(total, dtype=np.uint32),
        np.asarray(dst_ptr, dtype=np.int64),
        np.asarray(dst_pe, dtype=np.uint32),
        np.asarray(dst_cost, dtype=np.int64),
        np.asarray(pe_neurons, dtype=np.int64),
        fire_cycles,
        start_cycle,
        stream_spikes_per_cycle,
        input_buffer_spikes,
        ring_shift(input_buffer_spikes),
        np.array([paced]),
    )[0]
    busy = np.bincount(np.asarray(dst_pe, dtype=np.int64), weights=dst_cost, minlength=num_pes).astype(np.int64)
    busy += num_images * np.asarray(pe_neurons, dtype=np.int64) * fire_cycles
    busy[d == 0] = 0
    return d, busy, d - busy, np.zeros(num_pes, dtype=np.int64)
