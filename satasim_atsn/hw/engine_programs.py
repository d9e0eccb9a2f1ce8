"""Batch programs: local phases and DRAM transactions of one batch, in timestep-major or layer-major order.

What the scheduler (hw/engine_scheduler.py) walks; docs/microarchitecture.md sections 4, 8 and 11."""

from __future__ import annotations

import numpy as np

from satasim_atsn.hw.engine_chunks import ChunkMaps
from satasim_atsn.hw.engine_model import (
    AWAIT,
    DRAM_READ,
    DRAM_WRITE,
    MARK,
    MEMBRANE_READ,
    MEMBRANE_WRITE,
    PREFETCH,
    A,
    BatchWork,
    EngineModel,
    FoldModel,
)
from satasim_atsn.hw.engine_phases import GROUP_PHASES, ChunkBatches, ChunkPhases, chunk_batches
from satasim_atsn.hw.mapping import Group
from satasim_atsn.workload.trace import Trace


class ProgramWriter:
    """One batch's program under construction: its ops, the local cycles pending before the next op, its totals."""

    def __init__(self, model: EngineModel, ph: ChunkPhases, b: int, exit_t: np.ndarray, first_image: int) -> None:
        self.model = model
        self.ph = ph
        self.b = b
        self.exit_t = exit_t  # of the batch's images
        self.first_image = first_image  # absolute index of the batch's first image
        self.c = ph.counts[b]  # [G, len(ACTIONS)], a view: the chunk's counters
        self.ops: list = []
        self.pending = 0
        self.local_mem = 0
        self.group_local = np.zeros(len(model.groups), dtype=np.int64)
        self.exit_busy = int(ph.exit_busy[b])
        self.prefetches = 0  # weight prefetches in the program so far (an AWAIT names one by its number)
        self.chunks: list[tuple[int, int]] = []
        self.issued = self.used = self.prefetch_base = 0

    def op(self, kind: int, value: int, gi: int) -> None:
        """End the pending local stretch with one op (a DRAM transaction or an image's exit mark)."""
        self.ops.append((self.pending, kind, value, gi))
        self.pending = 0

    def dram_read(self, nbytes: int, gi: int) -> None:
        self.op(DRAM_READ, nbytes, gi)
        self.c[gi, A["dram_read_bytes"]] += nbytes

    def dram_write(self, nbytes: int, gi: int) -> None:
        self.op(DRAM_WRITE, nbytes, gi)
        self.c[gi, A["dram_write_bytes"]] += nbytes

    def move_membranes(self, words: int, fm: FoldModel, gi: int, write: bool) -> None:
        """Section 4, phases 3 and 5: ``words`` data-memory words per neuron of fold ``fm`` (one per image's
        membrane, and one per first-layer current, section 5) between the DRAM and the PEs (a spill if ``write``,
        else a fill): one DRAM transaction at the entry link's rate, the byte-hops to each PE and one PE
        data-memory access per word."""
        bits = words * self.model.vmem_bits  # of one neuron's words
        nbytes = -(-bits * fm.neurons // 8)
        if nbytes <= 0:
            return
        self.op(MEMBRANE_WRITE if write else MEMBRANE_READ, nbytes, gi)
        self.c[gi, A["dram_write_bytes" if write else "dram_read_bytes"]] += nbytes
        self.c[gi, A["noc_byte_hops"]] += -(-bits * fm.neuron_hops // 8)
        self.c[gi, A["pe_dm_reads" if write else "pe_dm_writes"]] += words * fm.neurons

    def spill_map(self, nbytes: int, gi: int, spilled: dict[int, int]) -> None:
        """Section 4 phase 6: the bytes of group ``gi``'s map beyond the spike buffer (``nbytes``, none if <= 0) go
        to DRAM, and its consumers read them back (``spilled``)."""
        if nbytes > 0:
            self.dram_write(nbytes, gi)
            spilled[gi] = nbytes

    def begin_pass(self, first_step: bool) -> None:
        """A pass over the groups starts (a step, or a layer_major batch): every weight bank is free, so the first
        ``banks`` buffer-fulls of the pass are requested now (section 4, phase 1). ``first_step``: an item of the
        pass is at t = 1 (otherwise a group reading only the image reads no weights, section 5)."""
        self.chunks = self.model.pass_chunks[first_step]
        self.issued = 0  # buffer-fulls of the pass requested so far
        self.used = 0  # ... and streamed
        self.prefetch_base = self.prefetches
        for _ in range(self.model.weight_banks):
            self._prefetch_next()

    def end_pass(self) -> None:
        """Check that the pass streamed every buffer-full it read ahead (the two walks over the groups agree)."""
        if self.used != len(self.chunks):
            raise AssertionError(f"internal: a pass streamed {self.used} of its {len(self.chunks)} weight buffer-fulls")

    def _prefetch_next(self) -> None:
        """A bank is free: request the pass's next buffer-full into it (a DRAM read the program does not wait for)."""
        if self.issued < len(self.chunks):
            part, gi = self.chunks[self.issued]
            self.op(PREFETCH, part, gi)
            self.c[gi, A["dram_read_bytes"]] += part
            self.issued += 1
            self.prefetches += 1

    def stage_fold_weights(self, fm: FoldModel, gi: int, full: bool = True) -> int:
        """A PE fold's weights, biases and thresholds (``full``; else its thresholds alone, section 5): fetch and
        stream them, each PE writing its share; returns stream cycles."""
        if not full:
            self.c[gi, A["pe_weight_write_bytes"]] += fm.threshold_write_bytes
            return self.stage_weights(fm.threshold_bytes, gi, fm.threshold_hops)
        self.c[gi, A["pe_weight_write_bytes"]] += fm.weight_write_bytes
        return self.stage_weights(fm.weight_bytes, gi, fm.weight_hops)

    def stage_exit_weights(self, gi: int) -> int:
        """The output layer's weights: fetch and stream them into the exit data memory; returns stream cycles."""
        model = self.model
        self.c[gi, A["exit_weight_write_bytes"]] += model.exit_weight_bytes
        return self.stage_weights(model.exit_weight_bytes, gi, model.exit_weight_bytes * model.mapping.exit_hops)

    def stage_weights(self, w: int, gi: int, byte_hops: int) -> int:
        """Weight fetch and stream (section 4 phases 1-2); returns stream cycles.

        ``byte_hops``: the stream's NoC byte-hops (section 9: each channel's bytes x its multicast tree's links; the
        output layer's, the exit unit's hops).

        Not resident: per weight-buffer-full (``global_buffers.weight.bytes``), wait for its DRAM read (requested
        when a bank became free), stream it, and request the pass's next buffer-full into the freed bank."""
        model = self.model
        bpc = model.weight_bpc
        if model.mapping.weights_resident or w <= 0:
            stream = -(-w // bpc)
            self.pending += stream
        else:
            stream = 0
            for first in range(0, w, model.weight_chunk_bytes):
                part = min(model.weight_chunk_bytes, w - first)
                expected = self.chunks[self.used]
                if expected != (part, gi):
                    raise AssertionError(f"internal: group {gi} streams {part} B, the pass read {expected}")
                self.op(AWAIT, self.prefetch_base + self.used, gi)
                self.used += 1
                self.pending += -(-part // bpc)
                stream += -(-part // bpc)
                self._prefetch_next()
            self.c[gi, A["weight_glb_write_bytes"]] += w
        self.c[gi, A["weight_glb_read_bytes"]] += w
        self.c[gi, A["noc_byte_hops"]] += byte_hops
        return stream

    def read_back_spills(self, g: Group, spilled: dict[int, int]) -> None:
        """Read back, before the group's first phase, the spikes its producers spilled to DRAM (producer -> bytes)."""
        seen: set[int] = set()
        for spec in g.inputs:
            prod = self.model.producer.get(spec.source)
            if prod is None or prod in seen or prod not in spilled:
                continue
            seen.add(prod)
            self.dram_read(spilled[prod], g.index)


def _pe_program(w: ProgramWriter, g: Group, t: int, b_act: int, spilled: dict[int, int]) -> None:
    """A PE group's step t: per fold weights, membrane fill, compute, membrane spill; then its spike spill."""
    model, gi = w.model, g.index
    resident_m = model.mapping.membranes_resident
    weights = model.streams_weights(gi, t == 1)  # a group reading only the image: its thresholds alone at t > 1
    for f, fm in enumerate(model.folds[gi]):
        stream = w.stage_fold_weights(fm, gi, weights)
        w.local_mem += stream
        w.group_local[gi] += stream
        if not resident_m and t > 1:  # the membranes, and a first layer's current (section 5)
            w.move_membranes(b_act * fm.words, fm, gi, write=False)
        dur = int(w.ph.compute_d[(gi, f)][w.b, t - 1])
        w.pending += dur
        w.group_local[gi] += dur
        if not resident_m and t < model.T:  # a first layer's current once, after t = 1 computed it
            w.move_membranes(b_act * (fm.words if t == 1 else 1), fm, gi, write=True)
    w.spill_map(int(w.ph.spill[gi][w.b, t - 1]), gi, spilled)


def _pool_program(w: ProgramWriter, g: Group, t: int, b_act: int, spilled: dict[int, int]) -> None:
    """A max-pool group's step t: one local phase."""
    dur = int(w.ph.pool_cycles[g.index][w.b, t - 1])
    w.pending += dur
    w.local_mem += dur
    w.group_local[g.index] += dur
    if spilled is not None:  # timestep_major: this step's pooled map (layer_major spills all T at once)
        w.spill_map(int(w.ph.spill[g.index][w.b, t - 1]), g.index, spilled)


def _exit_program(w: ProgramWriter, g: Group, t: int, b_act: int, spilled: dict[int, int]) -> None:
    """The exit unit's step t: weights, accumulate, decide (before the last step), and the exiting images' marks."""
    model, gi = w.model, g.index
    stream = w.stage_exit_weights(gi)
    w.local_mem += stream
    dur = int(w.ph.exit_d[w.b, t - 1])
    decide = 0
    if t < model.T:
        decide = b_act * model.decide_cycles
        for key, per in model.decide_ops.items():
            w.c[gi, A[key]] += per * b_act
        w.exit_busy += decide
    w.pending += dur + decide
    w.group_local[gi] += stream + dur + decide
    for j in np.flatnonzero(w.exit_t == t):
        w.op(MARK, w.first_image + int(j), gi)


def _layer_major_program(w: ProgramWriter, n: int) -> None:
    """layer_major (section 12.3): group by group; per fold, weights once, then its slices at t = 1..T."""
    model = w.model
    T = model.T
    spilled: dict[int, int] = {}
    w.begin_pass(True)  # every fold streams its weights once, before its t = 1
    for g in model.groups:
        gi = g.index
        w.read_back_spills(g, spilled)
        if g.kind == "pe":
            for f, fm in enumerate(model.folds[gi]):
                stream = w.stage_fold_weights(fm, gi)  # once for all T timesteps
                w.local_mem += stream
                w.group_local[gi] += stream
                # the fold's membranes stay in the PEs for all T: section 3 sized its blocks for a whole batch
                for t in range(1, T + 1):
                    dur = int(w.ph.compute_d[(gi, f)][w.b, t - 1])
                    w.pending += dur
                    w.group_local[gi] += dur
            w.spill_map(int(w.ph.out_bytes[gi][w.b].sum()) - model.spike_map_bytes, gi, spilled)
        elif g.kind == "pool":
            for t in range(1, T + 1):
                _pool_program(w, g, t, n, None)
            w.spill_map(int(w.ph.out_bytes[gi][w.b].sum()) - model.spike_map_bytes, gi, spilled)
        else:
            stream = w.stage_exit_weights(gi)
            w.local_mem += stream
            w.group_local[gi] += stream
            for t in range(1, T + 1):  # fixed T: no decisions (a deciding exit unit is refused, section 12.3)
                dur = int(w.ph.exit_d[w.b, t - 1])
                w.pending += dur
                w.group_local[gi] += dur
    w.end_pass()
    for j in range(n):
        w.op(MARK, w.first_image + j, model.exit_group_index)


# one builder per group kind: its phases over a chunk, and its step of a batch program
_GROUP_PROGRAMS = {"pe": _pe_program, "pool": _pool_program, "exit": _exit_program}


def _batch_work(model: EngineModel, bt: ChunkBatches, ph: ChunkPhases, b: int, first_image: int) -> BatchWork:
    """Assemble batch ``b``'s program: every group's step, t by t, in group order."""
    lo, hi = int(bt.starts[b]), int(bt.ends[b])
    e = bt.exit_t[lo:hi]
    w = ProgramWriter(model, ph, b, e, first_image + lo)
    if model.arch.dataflow == "layer_major":
        _layer_major_program(w, hi - lo)
    else:
        for t in range(1, int(e.max()) + 1):
            b_act = int(bt.active_count[b, t - 1])
            spilled: dict[int, int] = {}
            w.begin_pass(t == 1)  # no weight is read ahead across a step: the exit decision ends it
            for g in model.groups:
                w.read_back_spills(g, spilled)
                _GROUP_PROGRAMS[g.kind](w, g, t, b_act, spilled)
            w.end_pass()
            if model.mapping.exit_group is None:  # no exit unit phase: images finish with the last group of their t
                for j in np.flatnonzero(e == t):
                    w.op(MARK, w.first_image + int(j), len(model.groups) - 1)
    return BatchWork(
        images=np.arange(lo, hi, dtype=np.int64) + first_image,
        exit_t=e.copy(),
        ops=w.ops,
        tail=w.pending,
        counts=w.c.sum(axis=0),
        pe_busy=ph.pe_busy[b].copy(),
        pe_stall_input=ph.pe_stall[b].copy(),
        local_stall_memory=w.local_mem,
        exit_busy=w.exit_busy,
        exit_stall_input=int(ph.exit_stall[b]),
        group_local=w.group_local,
        group_counts=w.c.copy(),
        group_busy=ph.group_busy[b].copy(),
    )


def build_chunk_work(model: EngineModel, trace: Trace, first_image: int, batch_size: int) -> list[BatchWork]:
    """The programs of every batch in one trace chunk."""
    maps = ChunkMaps(model, trace)
    bt = chunk_batches(trace, model.T, batch_size)
    ph = ChunkPhases.zeros(bt.nb, model.T, model.P, len(model.groups))
    for g in model.groups:
        GROUP_PHASES[g.kind](model, g, maps, bt, ph)
    return [_batch_work(model, bt, ph, b, first_image) for b in range(bt.nb)]


