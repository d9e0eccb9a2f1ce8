"""Compute, max-pool and exit-unit phases of a trace chunk: the cycles and action counts of every slice.

The exact stream recurrence runs here (one kernel call per fold over all slices of the chunk)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from satasim_atsn.errors import SatasimError
from satasim_atsn.hw import kernels
from satasim_atsn.hw.energy import ACTIONS
from satasim_atsn.hw.engine_chunks import ChunkMaps, FoldStats, pe_group_stats, stream_positions
from satasim_atsn.hw.engine_model import A, EngineModel, FoldModel, drain_cycles
from satasim_atsn.hw.mapping import Group
from satasim_atsn.workload.trace import Trace


@dataclass
class ChunkBatches:
    """The batches of one trace chunk and their slices (batch, t), in batch-then-t order.

    Each slice lists the trace rows (image*T + t-1) of the batch's images still running at t.
    """

    n: int
    T: int
    starts: np.ndarray  # [nb] first image of each batch, chunk-relative
    ends: np.ndarray  # [nb]
    exit_t: np.ndarray  # [n] int64
    active_count: np.ndarray  # [nb, T] images of the batch still running at t
    slice_b: np.ndarray
    slice_t: np.ndarray
    slice_rows: np.ndarray
    slice_ptr: np.ndarray
    slice_batches: np.ndarray  # the batches that have slices, and the index of each one's first slice
    slice_first: np.ndarray

    @property
    def nb(self) -> int:
        return self.starts.size

    def per_batch(self, values: np.ndarray) -> np.ndarray:
        """Sum a per-row quantity [n*T] over each batch's images: -> [nb, T]."""
        v = values.reshape(self.n, self.T)
        return np.add.reduceat(v, self.starts, axis=0)


def chunk_batches(trace: Trace, T: int, batch_size: int) -> ChunkBatches:
    """Cut a trace chunk into batches of ``batch_size`` images and list their (batch, t) slices."""
    n = trace.num_images
    exit_t = trace.exit_t.astype(np.int64)
    batch_starts = np.arange(0, n, batch_size, dtype=np.int64)
    nb = batch_starts.size
    batch_ends = np.minimum(batch_starts + batch_size, n)
    active_count = np.zeros((nb, T), dtype=np.int64)
    for b in range(nb):
        e = exit_t[batch_starts[b] : batch_ends[b]]
        active_count[b] = (np.arange(1, T + 1)[:, None] <= e[None, :]).sum(axis=1)
    sl_b, sl_t, sl_rows, sl_len = [], [], [], []
    for b in range(nb):
        lo, hi = int(batch_starts[b]), int(batch_ends[b])
        e = exit_t[lo:hi]
        for t in range(1, int(e.max()) + 1):
            act = np.flatnonzero(e >= t) + lo
            sl_b.append(b)
            sl_t.append(t)
            sl_rows.append(act * T + (t - 1))
            sl_len.append(act.size)
    slice_b = np.array(sl_b, dtype=np.int64)
    slice_batches, slice_first = np.unique(slice_b, return_index=True)
    return ChunkBatches(
        n=n,
        T=T,
        starts=batch_starts,
        ends=batch_ends,
        exit_t=exit_t,
        active_count=active_count,
        slice_b=slice_b,
        slice_t=np.array(sl_t, dtype=np.int64),
        slice_rows=np.concatenate(sl_rows).astype(np.int64) if sl_rows else np.zeros(0, dtype=np.int64),
        slice_ptr=np.concatenate([[0], np.cumsum(sl_len)]).astype(np.int64),
        slice_batches=slice_batches,
        slice_first=slice_first,
    )


@dataclass
class ChunkPhases:
    """Every group's local phase cycles per (batch, t) [nb, T] and its per-batch counters, before assembly."""

    compute_d: dict[tuple[int, int], np.ndarray]  # (PE group, fold) -> compute phase cycles
    spill: dict[int, np.ndarray]  # PE group -> output spike bytes beyond the output buffer
    out_bytes: dict[int, np.ndarray]  # PE group -> its output spike bytes
    pool_cycles: dict[int, np.ndarray]  # pool group -> its phase cycles
    exit_d: np.ndarray  # the exit unit's phase cycles
    exit_busy: np.ndarray  # [nb]
    exit_stall: np.ndarray  # [nb]
    pe_busy: np.ndarray  # [nb, P]
    pe_stall: np.ndarray  # [nb, P]
    group_busy: np.ndarray  # [nb, G]
    counts: np.ndarray  # [nb, G, len(ACTIONS)]

    @classmethod
    def zeros(cls, nb: int, T: int, P: int, G: int) -> ChunkPhases:
        return cls(
            compute_d={},
            spill={},
            out_bytes={},
            pool_cycles={},
            exit_d=np.zeros((nb, T), dtype=np.int64),
            exit_busy=np.zeros(nb, dtype=np.int64),
            exit_stall=np.zeros(nb, dtype=np.int64),
            pe_busy=np.zeros((nb, P), dtype=np.int64),
            pe_stall=np.zeros((nb, P), dtype=np.int64),
            group_busy=np.zeros((nb, G), dtype=np.int64),
            counts=np.zeros((nb, G, len(ACTIONS)), dtype=np.int64),
        )


def _pe_group_phases(model: EngineModel, g: Group, maps: ChunkMaps, bt: ChunkBatches, ph: ChunkPhases) -> None:
    """A PE group's compute phases, PE busy/stall cycles, counters and output spill over the chunk."""
    gi = g.index
    stats, sin_bytes = pe_group_stats(model, g, maps)
    sin_b = bt.per_batch(sin_bytes)
    stream = stream_positions(model, g, maps)
    s_out_total = np.zeros((bt.nb, model.T), dtype=np.int64)
    for f, (fm, st) in enumerate(zip(model.folds[gi], stats, strict=True)):
        s_out_b = bt.per_batch(st.s_out)
        s_out_total += s_out_b
        d = np.zeros((bt.nb, model.T), dtype=np.int64)
        if bt.slice_b.size:
            _fold_compute_phases(model, g, fm, st, stream, sin_b, s_out_b, bt, ph, d)
        ph.compute_d[(gi, f)] = d
        _count_pe_fold(model, fm, st, sin_b, s_out_b, bt, ph.counts[:, gi])
    ph.spill[gi] = np.maximum(0, s_out_total * model.sb - model.spike_map_bytes)
    ph.out_bytes[gi] = s_out_total * model.sb


def phase_too_long(model: EngineModel, g: Group, limit: int) -> SatasimError:
    """The refusal of a compute phase whose cycles could outgrow the kernel's packed counter (``limit`` cycles)."""
    batch, source = int(model.arch.images_per_batch), model.workload.source
    problem = f"a compute phase may exceed {limit:,} cycles, more than the engine's cycle counter holds"
    if batch > 1:
        return SatasimError.at(model.arch.where, "images_per_batch", f"layer {g.name!r} of {source}: {problem}",
                               f"use a smaller images_per_batch (now {batch}) or fewer --images")
    return SatasimError.at(source, "--images", f"layer {g.name!r} on {model.arch.where}: {problem}",
                           "simulate fewer images per run (--images, --start)")


def _fold_compute_phases(
    model: EngineModel,
    g: Group,
    fm: FoldModel,
    st: FoldStats,
    stream: tuple[np.ndarray, np.ndarray],
    sin_b: np.ndarray,
    s_out_b: np.ndarray,
    bt: ChunkBatches,
    ph: ChunkPhases,
    d: np.ndarray,
) -> None:
    """One fold's compute phase of every slice into ``d`` [nb, T], and its PE busy/stall cycles into ``ph``."""
    row_ptr, pos = stream
    slice_b, slice_t, slice_rows, slice_ptr = bt.slice_b, bt.slice_t, bt.slice_rows, bt.slice_ptr
    fire_per_neuron = model.fire_cycles
    nrows_s = np.diff(slice_ptr)
    busy_cls = np.add.reduceat(st.cyc[slice_rows], slice_ptr[:-1], axis=0)
    busy_cls += nrows_s[:, None] * (fm.cls_neurons * fire_per_neuron)[None, :]
    # fast path: a slice in which no PE receives more spikes than its buffer holds never finds a
    # full buffer (the k-th push sees at most k - 1 <= ring_length - 1 spikes), so delivery is pure
    # pacing and the kernel skips the room check; and a ring of (most spikes per PE + 1)
    # entries is never read past its start, so it gives the same result as a larger one
    most = np.add.reduceat(st.dlv_cls[slice_rows], slice_ptr[:-1], axis=0).max(axis=1)
    paced = most <= model.input_buffer_spikes
    ring_length = int(min(model.input_buffer_spikes, int(most.max()) + 1))
    shift = kernels.ring_shift(ring_length)
    # the packed state of the kernel holds any cycle below the slice's serial bound
    bound = model.stream_start + 2 + (row_ptr[-1] - row_ptr[0]) + int(busy_cls.sum())
    if bound >= 1 << (62 - shift):
        raise phase_too_long(model, g, 1 << (62 - shift))
    d_cls = kernels.fold_slices(
        slice_ptr,
        slice_rows,
        row_ptr,
        pos,
        fm.vp_ptr,
        fm.vp_cls,
        fm.vp_cost,
        fm.cls_neurons,
        fire_per_neuron,
        model.stream_start,
        model.r,
        ring_length,
        shift,
        paced,
    )
    d[slice_b, slice_t - 1] = np.maximum(
        d_cls.max(axis=1),
        np.maximum(
            -(-sin_b[slice_b, slice_t - 1] // model.in_bpc),
            drain_cycles(model, s_out_b[slice_b, slice_t - 1]),
        ),
    )
    busy_b = np.add.reduceat(busy_cls, bt.slice_first, axis=0)
    stall_b = np.add.reduceat(d_cls - busy_cls, bt.slice_first, axis=0)
    ph.pe_busy[bt.slice_batches] += busy_b[:, fm.pe_class]
    ph.pe_stall[bt.slice_batches] += stall_b[:, fm.pe_class]
    ph.group_busy[bt.slice_batches, g.index] += busy_b @ fm.cls_members


def _count_pe_fold(
    model: EngineModel,
    fm: FoldModel,
    st: FoldStats,
    sin_b: np.ndarray,
    s_out_b: np.ndarray,
    bt: ChunkBatches,
    c: np.ndarray,
) -> None:
    """Add one fold's action counts per batch to ``c`` [nb, len(ACTIONS)] (its group's counters)."""
    acc_b = bt.per_batch(st.acc).sum(axis=1)
    fires = bt.active_count.sum(axis=1) * fm.neurons
    c[:, A["pe_accumulations"]] += acc_b
    c[:, A["pe_fire_updates"]] += fires
    c[:, A["pe_dm_reads"]] += acc_b + fires * fm.words  # a fire reads the membrane, and a first layer's current
    c[:, A["pe_dm_writes"]] += acc_b + fires
    c[:, A["pe_weight_reads"]] += bt.per_batch(st.weighted).sum(axis=1)
    if model.analog:
        c[:, A["adc_conversions"]] += fires
    c[:, A["pe_spikes_out"]] += s_out_b.sum(axis=1)
    c[:, A["pe_output_buffer_pushes"]] += s_out_b.sum(axis=1)
    c[:, A["pe_input_buffer_pushes"]] += bt.per_batch(st.deliveries).sum(axis=1)
    c[:, A["spike_glb_read_bytes"]] += sin_b.sum(axis=1)
    c[:, A["spike_glb_write_bytes"]] += s_out_b.sum(axis=1) * model.sb
    c[:, A["noc_byte_hops"]] += bt.per_batch(st.dlv_hops + st.out_hops).sum(axis=1)


def _pool_group_phases(model: EngineModel, g: Group, maps: ChunkMaps, bt: ChunkBatches, ph: ChunkPhases) -> None:
    """A max-pool group's phase cycles and counters over the chunk."""
    gi = g.index
    spec = g.inputs[0]
    s_in = bt.per_batch(maps.totals(spec.source))
    s_out = bt.per_batch(maps.totals(g.name))
    ph.pool_cycles[gi] = -(-(s_in + s_out) * model.sb // model.out_bpc)
    # the pooled map is a group's output like any other: beyond the spike buffer it is spilled (section 4, phase 6)
    ph.spill[gi] = np.maximum(0, s_out * model.sb - model.spike_map_bytes)
    ph.out_bytes[gi] = s_out * model.sb
    c = ph.counts[:, gi]
    c[:, A["pool_ors"]] += s_in.sum(axis=1)
    c[:, A["spike_glb_read_bytes"]] += s_in.sum(axis=1) * model.sb
    c[:, A["spike_glb_write_bytes"]] += s_out.sum(axis=1) * model.sb


def _exit_group_phases(model: EngineModel, g: Group, maps: ChunkMaps, bt: ChunkBatches, ph: ChunkPhases) -> None:
    """The exit unit's accumulate phases, busy/stall cycles and counters over the chunk."""
    gi = g.index
    spec = g.inputs[0]  # spikes or frames: build_mapping refuses an exit unit reading the image
    tot = maps.totals(spec.source).reshape(bt.n, model.T)
    classes = model.classes
    for b in range(bt.nb):
        lo, hi = bt.starts[b], bt.ends[b]
        e = bt.exit_t[lo:hi]
        for t in range(1, int(e.max()) + 1):
            act = np.flatnonzero(e >= t)
            spikes = tot[lo:hi, t - 1][act]
            busy = int(spikes.sum()) * model.exit_cost + act.size * classes
            nz = np.flatnonzero(spikes > 0)
            stall = max(0, model.exit_start + 1 - int(nz[0]) * classes) if nz.size else 0
            ph.exit_d[b, t - 1] = busy + stall
            ph.exit_busy[b] += busy
            ph.exit_stall[b] += stall
    s_in = bt.per_batch(tot.reshape(-1))
    c = ph.counts[:, gi]
    c[:, A["exit_accumulations"]] += s_in.sum(axis=1) * classes
    c[:, A["exit_updates"]] += bt.active_count.sum(axis=1) * classes
    c[:, A["exit_prediction_adds"]] += bt.active_count.sum(axis=1) * model.sum_adds
    c[:, A["spike_glb_read_bytes"]] += s_in.sum(axis=1) * model.sb
    c[:, A["noc_byte_hops"]] += s_in.sum(axis=1) * model.sb * model.mapping.exit_hops


GROUP_PHASES = {"pe": _pe_group_phases, "pool": _pool_group_phases, "exit": _exit_group_phases}
