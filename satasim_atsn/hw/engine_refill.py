"""Batch refill (docs/microarchitecture.md section 12.2): one step of the slots' program at a time, since
which images join a slot depends on the other accelerators' timing."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from satasim_atsn.hw import kernels
from satasim_atsn.hw.engine_chunks import ChunkMaps, pe_group_stats, stream_positions
from satasim_atsn.hw.engine_model import MARK, A, BatchWork, EngineModel, drain_cycles
from satasim_atsn.hw.engine_phases import ChunkPhases, phase_too_long
from satasim_atsn.hw.engine_programs import ProgramWriter
from satasim_atsn.hw.mapping import Group
from satasim_atsn.workload.trace import Trace


@dataclass
class RowChunk:
    """Per trace row (chunk image * T + t - 1) data of one chunk, for batch refill's steps."""

    first: int  # absolute index of the chunk's first image
    T: int
    exit_t: np.ndarray
    pe: dict  # PE group -> (fold stats, spike-buffer bytes read per row, stream (row_ptr, pos))
    pool: dict  # pool group -> (input spikes per row, output spikes per row)
    exit_spikes: np.ndarray  # the exit unit's input spikes per row

    @classmethod
    def build(cls, model: EngineModel, trace: Trace, first: int) -> RowChunk:
        maps = ChunkMaps(model, trace)
        pe, pool = {}, {}
        exit_spikes = np.zeros(0, dtype=np.int64)
        for g in model.groups:
            if g.kind == "pe":
                stats, sin_bytes = pe_group_stats(model, g, maps)
                pe[g.index] = (stats, sin_bytes, stream_positions(model, g, maps))
            elif g.kind == "pool":
                pool[g.index] = (maps.totals(g.inputs[0].source), maps.totals(g.name))
            else:
                exit_spikes = maps.totals(g.inputs[0].source)
        return cls(first, model.T, trace.exit_t.astype(np.int64), pe, pool, exit_spikes)


@dataclass
class Slot:
    """One image in a refill slot: its chunk, index in the chunk and current timestep."""

    chunk: RowChunk
    j: int
    t: int = 1

    @property
    def row(self) -> int:
        return self.j * self.chunk.T + self.t - 1

    @property
    def image(self) -> int:
        return self.chunk.first + self.j

    @property
    def exit_t(self) -> int:
        return int(self.chunk.exit_t[self.j])


def _step_fold(model: EngineModel, g: Group, f: int, items: list[Slot], stream, step: ChunkPhases) -> tuple[int, int]:
    """One fold's compute phase over the items (one slice, items in slot order); (cycles, output spikes)."""
    fm = model.folds[g.index][f]
    sts = [it.chunk.pe[g.index][0][f] for it in items]
    rows = [it.row for it in items]
    n = len(items)
    busy_cls = sum(st.cyc[r] for st, r in zip(sts, rows, strict=True)) + n * fm.cls_neurons * model.fire_cycles
    most = int(sum(st.dlv_cls[r] for st, r in zip(sts, rows, strict=True)).max())
    row_ptr, pos = stream
    ring_length = int(min(model.input_buffer_spikes, most + 1))
    shift = kernels.ring_shift(ring_length)
    if model.stream_start + 2 + pos.size + int(busy_cls.sum()) >= 1 << (62 - shift):
        raise phase_too_long(model, g, 1 << (62 - shift))
    d_cls = kernels.fold_slices(
        np.array([0, n], dtype=np.int64), np.arange(n, dtype=np.int64), row_ptr, pos, fm.vp_ptr, fm.vp_cls,
        fm.vp_cost, fm.cls_neurons, model.fire_cycles, model.stream_start, model.r, ring_length, shift,
        np.array([most <= model.input_buffer_spikes]),
    )[0]
    sin = sum(int(it.chunk.pe[g.index][1][r]) for it, r in zip(items, rows, strict=True))
    s_out = sum(int(st.s_out[r]) for st, r in zip(sts, rows, strict=True))
    step.pe_busy[0] += busy_cls[fm.pe_class]
    step.pe_stall[0] += (d_cls - busy_cls)[fm.pe_class]
    step.group_busy[0, g.index] += int(busy_cls @ fm.cls_members)
    c = step.counts[0, g.index]
    acc = sum(int(st.acc[r]) for st, r in zip(sts, rows, strict=True))
    fires = n * fm.neurons
    c[A["pe_accumulations"]] += acc
    c[A["pe_fire_updates"]] += fires
    c[A["pe_dm_reads"]] += acc + fires * fm.words  # a fire reads the membrane, and a first layer's current
    c[A["pe_dm_writes"]] += acc + fires
    c[A["pe_weight_reads"]] += sum(int(st.weighted[r]) for st, r in zip(sts, rows, strict=True))
    if model.analog:
        c[A["adc_conversions"]] += fires
    c[A["pe_spikes_out"]] += s_out
    c[A["pe_output_buffer_pushes"]] += s_out
    c[A["pe_input_buffer_pushes"]] += sum(int(st.deliveries[r]) for st, r in zip(sts, rows, strict=True))
    c[A["spike_glb_read_bytes"]] += sin
    c[A["spike_glb_write_bytes"]] += s_out * model.sb
    c[A["noc_byte_hops"]] += sum(int(st.dlv_hops[r] + st.out_hops[r]) for st, r in zip(sts, rows, strict=True))
    dur = max(int(d_cls.max()), -(-sin // model.in_bpc), int(drain_cycles(model, np.int64(s_out))))
    return dur, s_out


def _step_stream(g: Group, items: list[Slot]) -> tuple[np.ndarray, np.ndarray]:
    """The group's stream of the step: the items' rows of their chunks' streams, concatenated in slot order."""
    segs = []
    for it in items:
        row_ptr, pos = it.chunk.pe[g.index][2]
        segs.append(pos[row_ptr[it.row] : row_ptr[it.row + 1]])
    lens = np.array([seg.size for seg in segs], dtype=np.int64)
    return np.concatenate([[0], np.cumsum(lens)]).astype(np.int64), np.concatenate(segs).astype(np.uint32)


def _step_pe(w: ProgramWriter, g: Group, items: list[Slot], spilled: dict[int, int]) -> None:
    """A PE group in a refill step: per fold weights, fill (images at t > 1), compute, spill (t < T); spike spill."""
    model, gi = w.model, g.index
    stream = _step_stream(g, items)
    move = not model.mapping.membranes_resident
    n_fill = sum(1 for it in items if it.t > 1)
    n_spill = sum(1 for it in items if it.t < model.T)
    n_first = sum(1 for it in items if it.t == 1 < model.T)  # whose first layer's current is spilled (section 5)
    weights = model.streams_weights(gi, any(it.t == 1 for it in items))  # an image-only group: thresholds alone later
    s_out_total = 0
    for f, fm in enumerate(model.folds[gi]):
        cycles = w.stage_fold_weights(fm, gi, weights)
        w.local_mem += cycles
        w.group_local[gi] += cycles
        if move and n_fill:
            w.move_membranes(n_fill * fm.words, fm, gi, write=False)
        dur, s_out = _step_fold(model, g, f, items, stream, w.ph)
        s_out_total += s_out
        w.pending += dur
        w.group_local[gi] += dur
        if move and n_spill:
            w.move_membranes(n_spill + n_first * (fm.words - 1), fm, gi, write=True)
    w.spill_map(s_out_total * model.sb - model.spike_map_bytes, gi, spilled)


def _step_pool(w: ProgramWriter, g: Group, items: list[Slot], spilled: dict[int, int]) -> None:
    """A max-pool group in a refill step: one local phase."""
    model, gi = w.model, g.index
    s_in = sum(int(it.chunk.pool[gi][0][it.row]) for it in items)
    s_out = sum(int(it.chunk.pool[gi][1][it.row]) for it in items)
    c = w.c[gi]
    c[A["pool_ors"]] += s_in
    c[A["spike_glb_read_bytes"]] += s_in * model.sb
    c[A["spike_glb_write_bytes"]] += s_out * model.sb
    dur = -(-(s_in + s_out) * model.sb // model.out_bpc)
    w.pending += dur
    w.local_mem += dur
    w.group_local[gi] += dur
    w.spill_map(s_out * model.sb - model.spike_map_bytes, gi, spilled)


def _step_exit(w: ProgramWriter, g: Group, items: list[Slot]) -> int:
    """The exit unit in a refill step: weights, accumulate, decide (images before T), exit marks; its stall cycles."""
    model, gi = w.model, g.index
    stream = w.stage_exit_weights(gi)
    w.local_mem += stream
    spikes = np.array([int(it.chunk.exit_spikes[it.row]) for it in items], dtype=np.int64)
    classes = model.classes
    busy = int(spikes.sum()) * model.exit_cost + len(items) * classes
    nz = np.flatnonzero(spikes > 0)
    stall = max(0, model.exit_start + 1 - int(nz[0]) * classes) if nz.size else 0
    deciding = sum(1 for it in items if it.t < model.T)
    decide = deciding * model.decide_cycles
    c = w.c[gi]
    c[A["exit_accumulations"]] += int(spikes.sum()) * classes
    c[A["exit_updates"]] += len(items) * classes
    c[A["exit_prediction_adds"]] += len(items) * model.sum_adds
    c[A["spike_glb_read_bytes"]] += int(spikes.sum()) * model.sb
    c[A["noc_byte_hops"]] += int(spikes.sum()) * model.sb * model.mapping.exit_hops
    for key, per in model.decide_ops.items():
        c[A[key]] += per * deciding
    w.exit_busy += busy + decide
    w.pending += busy + stall + decide
    w.group_local[gi] += stream + busy + stall + decide
    for it in items:
        if it.exit_t == it.t:
            w.op(MARK, it.image, gi)
    return stall


def refill_step(model: EngineModel, items: list[Slot]) -> BatchWork:
    """The program of one refill step: every group once for the items (each image at its own t), in group order."""
    step = ChunkPhases.zeros(1, 1, model.P, len(model.groups))
    w = ProgramWriter(model, step, 0, np.zeros(0, dtype=np.int64), 0)
    spilled: dict[int, int] = {}
    stall = 0
    w.begin_pass(any(it.t == 1 for it in items))
    for g in model.groups:
        w.read_back_spills(g, spilled)
        if g.kind == "pe":
            _step_pe(w, g, items, spilled)
        elif g.kind == "pool":
            _step_pool(w, g, items, spilled)
        else:
            stall += _step_exit(w, g, items)
    w.end_pass()
    if model.mapping.exit_group is None:  # no exit unit phase: images finish with the last group of their t
        for it in items:
            if it.exit_t == it.t:
                w.op(MARK, it.image, len(model.groups) - 1)
    none = np.zeros(0, dtype=np.int64)
    return BatchWork(
        images=none, exit_t=none, ops=w.ops, tail=w.pending, counts=w.c.sum(axis=0), pe_busy=step.pe_busy[0].copy(),
        pe_stall_input=step.pe_stall[0].copy(), local_stall_memory=w.local_mem, exit_busy=w.exit_busy,
        exit_stall_input=stall, group_local=w.group_local, group_counts=w.c.copy(),
        group_busy=step.group_busy[0].copy(),
    )


