"""The fast simulator: per-batch transaction programs from numba kernels, and an exact SimPy DRAM/dispatch scheduler.

How it follows docs/microarchitecture.md:

* Everything inside one accelerator and one batch is timing-independent except its DRAM waits.
  So for each batch the engine first builds a *program*: the sequence of local phases (weight
  streams, compute phases from :mod:`hw.kernels`, max-pool and exit-unit phases), each one a coarse
  transaction of known cycles, separated by DRAM transactions (weight fetch, membrane fill/spill,
  spike spill and read-back). Its counters and per-PE busy/stall cycles are sums over slices.
* A PE-group compute phase couples every PE of the fold through the multicast input stream
  (section 4.1: one stream per fold, head-of-line blocking on any full destination buffer). Per
  group and trace chunk the engine lists each (image, t)'s input spikes in delivery order as
  *virtual positions* (:func:`_stream_positions`); per fold, a static CSR maps each virtual position to
  its destination PE classes and accumulate cycles (:class:`_FoldModel`); the exact event recurrence
  of :mod:`hw.kernels` then runs every slice (batch, t) of the chunk, in parallel over slices.
  Accumulate cycles, deliveries, accumulations and NoC byte-hops are counted by small GEMMs over
  per-position spike counts.
* What is shared and waits -- the single DRAM channel and batch dispatch -- is a SimPy environment
  (:class:`_Scheduler`, integer cycles): one process per accelerator walks its batch programs (a
  stretch of local phases is one ``timeout``, each DRAM transaction one request), a dispatcher hands
  out batches, a DRAM arbiter serves one transaction at a time. Both deciders act only after every
  ordinary event of the current cycle has run, through SimPy queue priorities (the queue orders by
  (cycle, priority, insertion)): the dispatcher at priority 2, the arbiter at 3, after NORMAL (1).
  The dispatcher gives the next batch to the lowest-index accelerator asking at that cycle (the
  one that freed first; ties to the lowest index). The arbiter grants the pending request with the
  smallest (request cycle, accelerator index), so transactions are served in order of request
  cycle, ties to the lowest index (microarchitecture.md section 8). Exactness at equal cycles: a
  request at cycle c comes from a local phase or a DRAM completion ending at c (NORMAL events) or
  from a batch handed out at c (after the dispatcher, before the arbiter), so every request of c is
  pending when the arbiter decides; a grant never causes an event at its own cycle (a transaction
  has >= 1 byte, so it lasts >= 1 cycle). tests/test_engine_simpy.py checks the result against the
  former hand-written event heap, byte for byte. About 3 SimPy events per DRAM transaction and 3 per
  batch (VGG16 on atsn16x16: ~190 per image), never one per cycle.
* Images are processed in chunks (a multiple of ``images_per_batch``) so that spike traces of
  large networks stay within a memory budget.
* Section 11: ``layer_major`` reorders the same per-(batch, t) phases into one program per batch
  (:func:`_layer_major_program`). Batch refill cannot build programs ahead, since which images join a
  slot depends on the other accelerators' timing: each accelerator process asks the dispatcher for
  images whenever slots are free and builds one step's program at a time (:func:`_refill_step`, one
  kernel slice per fold over the slots' trace rows, in slot order, from per-chunk row data
  :class:`_RowChunk`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import simpy

from satasim_atsn.errors import SatasimError
from satasim_atsn.hw import kernels
from satasim_atsn.hw.arch import require_arch_and_workload
from satasim_atsn.hw.energy import ACTIONS
from satasim_atsn.hw.mapping import (
    Group,
    GroupInput,
    Mapping,
    multicast_links,
)
from satasim_atsn.hw.results import AcceleratorTotals, RunSummary, SimResult
from satasim_atsn.hw.run_checks import check_draw_memory, check_mappable, check_record_memory, image_count
from satasim_atsn.snn.exit_policies import keeps_running_sum
from satasim_atsn.traces.functional import functional_trace
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.trace import Trace

if TYPE_CHECKING:
    from satasim_atsn.hw.arch import Arch

A = {name: i for i, name in enumerate(ACTIONS)}
# program ops: a blocking DRAM read / write, an image's exit mark, a weight prefetch (a DRAM read that does not
# block; its value is the bytes), the wait for one (its value is the prefetch's number in the program) and a
# blocking membrane fill / spill (a DRAM read / write that crosses the mesh's entry link: section 4, phases 3, 5)
DRAM_READ, DRAM_WRITE, MARK, PREFETCH, AWAIT, MEMBRANE_READ, MEMBRANE_WRITE = 0, 1, 2, 3, 4, 5, 6
TRACE_BUDGET_BYTES = 192 * 2**20


# ------------------------------------------------------------------------------------------
# static per-slice models
# ------------------------------------------------------------------------------------------
@dataclass
class _InputModel:
    """How spikes of one group input turn into deliveries/accumulations/hop-weighted deliveries (one fold)."""

    spec: GroupInput
    matrix: np.ndarray | None = None  # conv: int64 [HW, 3] = deliveries | accumulations | hop-weighted deliveries
    dlv_per_spike: int = 0  # linear
    acc_per_spike: int = 0
    hops_per_spike: int = 0
    offsets: np.ndarray | None = None  # identity: the fold's PE blocks in the source's flat index


class ProgressSink(Protocol):
    """What the engine calls on a progress display (report/progress.py's Progress is one; report/ sits above
    hw/, so the engine names only these three methods)."""

    def start(self, total_images: int) -> None: ...  # noqa: D102

    def update(self, done: int, cycles: int) -> None: ...  # noqa: D102

    def finish(self) -> None: ...  # noqa: D102


@dataclass
class _FoldModel:
    """Static data of one fold of a PE group, including its multicast-stream routing.

    Virtual positions: the group's inputs in order, each contributing ``vp_offsets[j]`` onwards (conv: one
    per spatial position, linear: one, identity: one per flat index). ``vp_ptr``/``vp_cls``/``vp_cost``:
    CSR of the destination PE classes of each virtual position and their accumulate cycles. PEs with equal
    neurons and coverage behave identically, so the stream recurrence runs over classes
    (``pe_class[p]``, ``cls_neurons``, ``cls_members``).
    """

    neurons: int
    pe_neurons: np.ndarray
    inputs: list[_InputModel]
    weight_bytes: int  # the fold's channels' weights with their bias and threshold words
    weight_write_bytes: int  # bytes the fold's weight stream writes into the PEs' weight memories
    weight_hops: int  # byte-hops of the weight stream: each channel's bytes x the links of its multicast tree
    neuron_hops: int  # sum over the PEs of neurons x hops from tile (0, 0): one image's membrane transport
    words: int = 1  # data-memory words per neuron and image: 2 for a group reading the image (section 5)
    # the threshold words alone (a group reading only the image, t > 1, section 5): bytes, PE writes, byte-hops
    threshold_bytes: int = 0
    threshold_write_bytes: int = 0
    threshold_hops: int = 0
    vp_offsets: list[int] = field(default_factory=list)
    vp_ptr: np.ndarray | None = None
    vp_cls: np.ndarray | None = None
    vp_cost: np.ndarray | None = None
    pe_class: np.ndarray | None = None
    cls_neurons: np.ndarray | None = None
    cls_members: np.ndarray | None = None
    cls_cost: list = field(default_factory=list)  # per input: [cycles | deliveries] of each class per spike:
    # linear [2*classes]; conv and identity None (their counts come from the CSR, kernels.class_loads)


@dataclass
class _BatchWork:
    """A batch's program and its timing-independent totals."""

    images: np.ndarray  # absolute image indices
    exit_t: np.ndarray
    ops: list  # (local cycles before, kind, value, group index)
    tail: int  # local cycles after the last op
    counts: np.ndarray  # [len(ACTIONS)] int64
    pe_busy: np.ndarray  # [P]
    pe_stall_input: np.ndarray  # [P]
    local_stall_memory: int
    exit_busy: int
    exit_stall_input: int
    group_local: np.ndarray  # [G] local cycles per group
    group_counts: np.ndarray  # [G, len(ACTIONS)]
    group_busy: np.ndarray  # [G] PE busy cycles per group (summed over PEs)


class _Model:
    """Everything static the engine derives from (arch, mapping)."""

    def __init__(self, arch, mapping: Mapping, workload: Workload) -> None:
        self.arch = arch
        self.mapping = mapping
        self.workload = workload
        self.P = mapping.num_pes
        self.sb = mapping.spike_bytes
        self.T = mapping.timesteps
        self.classes = mapping.num_classes
        self.adders = int(arch.pe.adders)
        self.analog = getattr(arch.pe, "accumulation", "digital") == "analog"
        self.fire_cycles = int(arch.pe.adc_cycles_per_conversion or 1) if self.analog else 1
        hop = int(arch.noc.hop_cycles)
        self.stream_start = hop * (mapping.rows + mapping.cols - 2)  # L: depth of the multicast tree
        self.input_buffer_spikes = int(arch.pe.input_spike_buffer_bytes) // mapping.spike_bytes
        self.r = int(mapping.spikes_per_cycle)
        self.exit_start = int(mapping.exit_hops * hop)
        self.hops = mapping.pe_hops.astype(np.int64)
        self.cols = mapping.cols
        # the weight stream is a multicast over the mesh: it cannot leave tile (0, 0) faster than one NoC link carries
        self.weight_bpc = min(int(arch.global_buffers.weight.bytes_per_cycle), int(arch.noc.link_bytes_per_cycle))
        # membranes move between the DRAM and the PEs over the same entry link (hardware model 7)
        self.membrane_bpc = min(int(arch.dram.bytes_per_cycle), int(arch.noc.link_bytes_per_cycle))
        self.weight_chunk_bytes = int(arch.global_buffers.weight.bytes)  # one fetch fills at most one bank
        self.weight_banks = int(arch.global_buffers.weight.banks)  # buffer-fulls read ahead (section 4, phase 1)
        self.in_bpc = int(arch.global_buffers.input.bytes_per_cycle)
        self.out_bpc = int(arch.global_buffers.output.bytes_per_cycle)
        # a spike map stays on chip only if it fits the spike buffer pair used ping-pong: the smaller of the two
        # (docs/microarchitecture.md section 4, phase 6)
        self.spike_map_bytes = arch.global_buffers.spike_map_bytes
        self.vmem_bits = int(arch.pe.vmem_bits)
        self.exit_cost = -(-self.classes // max(1, int(arch.exit_unit.adders)))  # 0 adders: no exit unit
        unit = arch.exit_unit.unit
        self.decide_cycles = unit.decide_cycles(arch.exit_unit, self.classes)
        self.decide_ops = unit.decide_actions(arch.exit_unit, self.classes)
        # the running sum of the output membranes behind the prediction (section 7): one add per class and update
        sums = keeps_running_sum(arch.prediction_rule, workload.layers[-1].get("output_mode", ""))
        self.sum_adds = self.classes if sums else 0
        self.groups = mapping.groups
        self.producer = {g.name: g.index for g in self.groups}
        self.folds: dict[int, list[_FoldModel]] = {}
        for g in self.groups:
            if g.kind == "pe":
                self.folds[g.index] = [self._fold_model(g, f) for f in g.folds]
        ex = mapping.exit_group  # None: no exit tile or no output layer (images finish after the last group)
        self.exit_group_index = ex.index if ex is not None else len(self.groups) - 1
        self.exit_weight_bytes = ex.weight_bytes if ex is not None else 0
        self.exit_input = ex.inputs[0] if ex is not None else None
        # PE groups that read only the direct-encoded image: their current is computed at t = 1, and at t > 1
        # nothing reads their weights or biases, so a pass with no item at t = 1 fetches and streams only their
        # thresholds, which the fire pass compares (section 5)
        self.image_groups = frozenset(g.index for g in self.groups if g.reads_image_only)
        self.pass_chunks = {first: self._pass_chunks(first) for first in (True, False)}

    def streams_weights(self, gi: int, first_step: bool) -> bool:
        """Whether PE group ``gi`` fetches and streams its weights and biases in a pass (``first_step``: an item is at
        t = 1); if not, only its thresholds."""
        return first_step or gi not in self.image_groups

    def _pass_chunks(self, first_step: bool) -> list[tuple[int, int]]:
        """(bytes, group) of every weight-buffer-full one pass over the groups reads from DRAM, in order (none when
        the weights are resident): every fold of every PE group (its thresholds alone when it does not stream its
        weights in the pass), then the exit unit's weights."""
        if self.mapping.weights_resident:
            return []
        chunks = []
        B = self.weight_chunk_bytes
        for g in self.groups:
            if g.kind == "pe":
                full = self.streams_weights(g.index, first_step)
                sizes = [fm.weight_bytes if full else fm.threshold_bytes for fm in self.folds[g.index]]
            elif g.kind == "exit":
                sizes = [self.exit_weight_bytes]
            else:  # a max-pool group has no weights
                continue
            for w in sizes:
                chunks += [(min(B, w - first), g.index) for first in range(0, w, B)]
        return chunks

    def _fold_model(self, group: Group, fold) -> _FoldModel:
        pe_neurons = fold.pe_neurons.astype(np.int64)
        inputs = []
        covs = []  # per conv input: the PEs' coverage of its positions [P, HW]
        for spec in group.inputs:
            model = _InputModel(spec)
            if spec.coverage == "conv":
                cov = kernels.conv_coverage(
                    fold.pe_offsets, group.out_shape, spec.spatial, spec.kernel, spec.stride, spec.padding
                )
                covs.append(cov)
                reached = cov > 0
                model.matrix = np.ascontiguousarray(  # per position: deliveries, accumulations, multicast links
                    np.stack([reached.sum(0), cov.sum(0), multicast_links(reached, self.cols)], axis=1),
                    dtype=np.int64,
                )
            elif spec.coverage == "linear":
                has = pe_neurons > 0
                model.dlv_per_spike = int(has.sum())
                model.acc_per_spike = int(pe_neurons.sum())
                model.hops_per_spike = int(multicast_links(has[:, None], self.cols)[0])
            else:  # identity
                model.offsets = fold.pe_offsets.astype(np.int64)
            inputs.append(model)
        thresholds = fold.pe_threshold_bytes
        fm = _FoldModel(fold.n, pe_neurons, inputs, fold.weight_bytes, int(fold.pe_weight_bytes.sum()),
                        int(fold.weight_byte_hops), int(pe_neurons @ self.hops), group.words_per_neuron,
                        int(fold.threshold_bytes), int(thresholds.sum()) if thresholds is not None else 0,
                        int(fold.threshold_byte_hops))
        self._stream_routing(fold, fm, covs)
        return fm

    def _stream_routing(self, fold, fm: _FoldModel, covs: list[np.ndarray]) -> None:
        """Destination classes and costs of every virtual position of the fold (see :class:`_FoldModel`).

        ``covs``: the coverage matrix of each conv input, in input order."""
        P = self.P
        pe_neurons = fm.pe_neurons
        # the dense matrix is PEs x positions: int32 when every part fits (conv_coverage's choice), half the memory
        narrow = all(c.dtype == np.int32 for c in covs) and int(pe_neurons.max(initial=0)) < 2**31
        pe_column = pe_neurons[:, None].astype(np.int32 if narrow else np.int64)
        dense = [pe_column]  # per-PE coverage of every conv/linear virtual position
        offsets = []
        v = 0
        has_identity = False
        conv_covs = iter(covs)
        for im in fm.inputs:
            spec = im.spec
            offsets.append(v)
            if spec.coverage == "conv":
                h, w = spec.spatial
                dense.append(next(conv_covs))
                v += h * w
            elif spec.coverage == "linear":
                dense.append(pe_column)
                v += 1
            else:
                has_identity = True
                v += spec.size
        fm.vp_offsets = offsets
        full = np.concatenate(dense, axis=1)
        if has_identity:  # every PE holds different indices: one class per PE
            pe_class = np.arange(P, dtype=np.int64)
            reps = full
        else:
            reps, pe_class = _equal_rows(full)
        ncls = reps.shape[0]
        fm.pe_class = pe_class
        fm.cls_neurons = np.ascontiguousarray(reps[:, 0]).astype(np.int64)
        fm.cls_members = np.bincount(pe_class, minlength=ncls).astype(np.int64)
        counts = np.zeros(v, dtype=np.int64)
        parts_v, parts_c, parts_cost = [], [], []
        col = 1
        for im, off in zip(fm.inputs, offsets, strict=True):
            spec = im.spec
            if spec.coverage == "identity":
                j = np.arange(fold.start, fold.stop, dtype=np.int64)
                j = j[j < spec.size]
                owner = np.searchsorted(fold.pe_offsets, j, side="right") - 1
                vv = off + j
                cc = pe_class[owner]
                cost = np.ones(j.size, dtype=np.int64)
                fm.cls_cost.append(None)
            else:
                width = spec.spatial[0] * spec.spatial[1] if spec.coverage == "conv" else 1
                block = reps[:, col : col + width]
                col += width
                if spec.coverage == "conv":
                    fm.cls_cost.append(None)
                else:
                    per_cls = -(-block // self.adders)
                    fm.cls_cost.append(np.concatenate([per_cls, (block > 0).astype(per_cls.dtype)],
                                                      axis=0)[:, 0].astype(np.int64))
                vq, cc = np.nonzero(block.T)
                vv = off + vq
                cost = -(-block[cc, vq] // self.adders)
            parts_v.append(vv.astype(np.int64))
            parts_c.append(cc.astype(np.int64))
            parts_cost.append(cost.astype(np.int64))
        vv = np.concatenate(parts_v) if parts_v else np.zeros(0, dtype=np.int64)
        # each part lists its positions in ascending order and the parts follow each other's offsets,
        # so vv is usually sorted already (the stable sort is then the identity)
        order = slice(None) if np.all(vv[1:] >= vv[:-1]) else np.argsort(vv, kind="stable")
        counts += np.bincount(vv, minlength=v)
        fm.vp_ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        fm.vp_cls = np.concatenate(parts_c)[order].astype(np.uint32)
        fm.vp_cost = np.concatenate(parts_cost)[order].astype(np.int64)


def _equal_rows(full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``full`` in order of first appearance, and each row's index among them.

    Exact (hw/kernels.equal_rows: rows hashed, then compared value by value within a hash) and near linear in the
    matrix size; a Python loop over the rows took seconds per fold on arrays of 10^5 PEs. The order of the classes
    changes no result (every use of a class is per class or a max/sum over them), yet it is kept.
    """
    return kernels.equal_rows(full)


# ------------------------------------------------------------------------------------------
# per-chunk statistics
# ------------------------------------------------------------------------------------------
class _ChunkMaps:
    """Flat spike maps of one trace chunk and cached per-map reductions (rows = image*T + t-1)."""

    def __init__(self, model: _Model, trace: Trace) -> None:
        self.model = model
        self.trace = trace
        self.n = trace.num_images
        T = model.T
        self.valid = (np.arange(1, T + 1)[None, :] <= trace.exit_t[:, None]).reshape(-1)
        self._flat: dict[str, np.ndarray] = {}
        self._pos: dict[str, np.ndarray] = {}
        self._tot: dict[str, np.ndarray] = {}

    def flat(self, source: str) -> np.ndarray:
        """The 0/1 map of ``source`` as uint8 [n*T, size]."""
        if source not in self._flat:
            if source == "input":
                arr = self.trace.inputs  # spike frames [n, T, C, H, W]
            else:
                arr = self.trace.spikes[source]
            arr = np.ascontiguousarray(arr).reshape(self.n * self.model.T, -1)
            self._flat[source] = arr.view(np.uint8) if arr.dtype == np.bool_ else arr.astype(np.uint8, copy=False)
        return self._flat[source]

    def positions(self, spec: GroupInput) -> np.ndarray:
        """Spikes per spatial position (summed over channels) [n*T, HW]."""
        if spec.source not in self._pos:
            flat = self.flat(spec.source)
            h, w = spec.spatial
            self._pos[spec.source] = kernels.position_counts(flat, spec.size // (h * w), h * w, self.valid)
        return self._pos[spec.source]

    def totals(self, source: str) -> np.ndarray:
        """Spikes per row [n*T]."""
        if source not in self._tot:
            if source in self._pos:
                self._tot[source] = self._pos[source].sum(axis=1)
            else:
                flat = self.flat(source)
                offsets = np.array([0, flat.shape[1]], dtype=np.int64)
                self._tot[source] = kernels.block_counts(flat, offsets, self.valid)[:, 0]
        return self._tot[source]

    def note_totals(self, source: str, blocks: np.ndarray, offsets: np.ndarray) -> None:
        """Keep the totals of ``source`` from its per-block counts when the blocks cover the whole map."""
        if source not in self._tot and offsets[0] == 0 and offsets[-1] == self.flat(source).shape[1]:
            self._tot[source] = blocks.sum(axis=1)


def _image_rows(model: _Model, spec: GroupInput, trace: Trace) -> tuple[np.ndarray, int]:
    """Bit-plane spikes of direct images: per position [n, HW] (or totals [n, 1]) and bytes per image."""
    x = np.ascontiguousarray(trace.inputs).reshape(trace.num_images, -1)
    h, w = spec.spatial
    pos = kernels.popcount_positions(x, spec.size // (h * w), h * w)
    if spec.coverage != "conv":
        pos = pos.sum(axis=1, keepdims=True)
    return pos, spec.size


@dataclass
class _FoldStats:
    """Per (image, t) rows [n*T] of one fold: deliveries, accumulations, NoC byte-hops, output spikes."""

    acc: np.ndarray
    weighted: np.ndarray  # accumulations that read a weight (all but identity-shortcut ones)
    cyc: np.ndarray  # [n*T, classes] accumulate cycles of each PE class
    dlv_cls: np.ndarray  # [n*T, classes] deliveries to each PE of the class
    dlv_hops: np.ndarray
    deliveries: np.ndarray
    s_out: np.ndarray
    out_hops: np.ndarray


def _pe_group_stats(model: _Model, group: Group, maps: _ChunkMaps) -> tuple[list[_FoldStats], np.ndarray]:
    """Fold statistics of a PE group over a chunk, and the glb spike bytes read per row [n*T]."""
    n, T, P = maps.n, model.T, model.P
    rows = n * T
    sin_bytes = np.zeros(rows, dtype=np.int64)
    image_cache: dict[str, tuple[np.ndarray, int]] = {}
    for spec in group.inputs:
        if spec.encoding == "image":
            if spec.source not in image_cache:
                image_cache[spec.source] = _image_rows(model, spec, maps.trace)
            sin_bytes[0::T] += image_cache[spec.source][1]
        else:
            if spec.coverage == "conv":
                maps.positions(spec)  # needed below; the totals then come from it without another pass
            sin_bytes += maps.totals(spec.source) * model.sb
    # output spikes per PE block (all folds at once); the output layer on the PEs emits none
    offsets = np.concatenate([group.folds[0].pe_offsets[:1]] + [f.pe_offsets[1:] for f in group.folds])
    if group.spiking:
        offsets = offsets.astype(np.int64)
        out_blocks = kernels.block_counts(maps.flat(group.name), offsets, maps.valid)
        maps.note_totals(group.name, out_blocks, offsets)  # the next group's input totals, for free
    else:
        out_blocks = np.zeros((rows, offsets.size - 1), dtype=np.int64)
    stats = []
    for f, fm in enumerate(model.folds[group.index]):
        dlv = np.zeros(rows, dtype=np.int64)
        acc = np.zeros(rows, dtype=np.int64)
        unweighted = np.zeros(rows, dtype=np.int64)
        hops = np.zeros(rows, dtype=np.int64)
        ncls = fm.cls_neurons.size
        cyc = np.zeros((rows, ncls), dtype=np.int64)
        dlv_cls = np.zeros((rows, ncls), dtype=np.int64)
        for im, cls_cost, vp_off in zip(fm.inputs, fm.cls_cost, fm.vp_offsets, strict=True):
            spec = im.spec
            if spec.encoding == "image":
                counts, _ = image_cache[spec.source]
                sel = slice(0, rows, T)  # t = 1 rows only
            else:
                sel = slice(None)
                counts = None
            if spec.coverage == "conv":
                if counts is None:
                    counts = maps.positions(spec)
                    src = target = np.flatnonzero(maps.valid)
                else:
                    src, target = np.arange(counts.shape[0]), np.arange(0, rows, T)
                kernels.class_loads(counts, src, target, vp_off, fm.vp_ptr, fm.vp_cls, fm.vp_cost, im.matrix,
                                    cyc, dlv_cls, dlv, acc, hops)
            elif spec.coverage == "linear":
                tot = counts[:, 0] if counts is not None else maps.totals(spec.source)
                cyc[sel] += tot[:, None] * cls_cost[None, :ncls]
                dlv_cls[sel] += tot[:, None] * cls_cost[None, ncls:]
                dlv[sel] += tot * im.dlv_per_spike
                acc[sel] += tot * im.acc_per_spike
                hops[sel] += tot * im.hops_per_spike
            else:  # identity: one accumulation on the PE holding the same index (no weight: the shortcut gain)
                blocks = kernels.block_counts(maps.flat(spec.source), im.offsets, maps.valid)
                cyc += blocks  # one class per PE, one cycle per spike
                dlv_cls += blocks
                dlv += blocks.sum(axis=1)
                acc += blocks.sum(axis=1)
                unweighted += blocks.sum(axis=1)
                hops += blocks @ model.hops
        blk = out_blocks[:, f * P : (f + 1) * P]
        stats.append(
            _FoldStats(
                acc=acc,
                weighted=acc - unweighted,
                cyc=cyc,
                dlv_cls=dlv_cls,
                dlv_hops=hops * model.sb,
                deliveries=dlv,
                s_out=blk.sum(axis=1),
                out_hops=(blk @ model.hops) * model.sb,
            )
        )
    return stats, sin_bytes


def _stream_positions(model: _Model, group: Group, maps: _ChunkMaps) -> tuple[np.ndarray, np.ndarray]:
    """The group's input spikes of every trace row as virtual positions in delivery order: (row_ptr, pos).

    Per row (image, t): the group's inputs in order, each in raster order (c, y, x); a direct image
    delivers its 8 bit planes (k = 0..7, each in raster order) at t = 1 only. Virtual positions are those
    of :class:`_FoldModel` (the same for every fold of the group).
    """
    n, T = maps.n, model.T
    counts, parts = [], []
    off = 0
    for spec in group.inputs:
        if spec.coverage == "conv":
            h, w = spec.spatial
            mode, width = 0, h * w
        elif spec.coverage == "linear":
            mode, width = 1, 1
        else:
            mode, width = 2, spec.size
        if spec.encoding == "image":
            x = np.ascontiguousarray(maps.trace.inputs).reshape(n, -1)
            cnt, pos = kernels.plane_positions(x, T, mode, max(width, 1), off)
        else:
            cnt = maps.totals(spec.source)
            pos = kernels.spike_positions(maps.flat(spec.source), maps.valid, cnt, mode, max(width, 1), off)
        off += width
        counts.append(cnt)
        parts.append(pos)
    if len(parts) == 1:
        cnt, pos = counts[0], parts[0]
    else:
        cnt = np.sum(counts, axis=0)
        parts_ptr = np.concatenate([[0], np.cumsum([p.size for p in parts])]).astype(np.int64)
        pos = kernels.merge_rows(np.stack(counts), parts_ptr, np.concatenate(parts))
    row_ptr = np.concatenate([[0], np.cumsum(cnt)]).astype(np.int64)
    return row_ptr, pos  # uint32 from the kernels


# ------------------------------------------------------------------------------------------
# batch programs
# ------------------------------------------------------------------------------------------
@dataclass
class _ChunkBatches:
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


def _chunk_batches(trace: Trace, T: int, batch_size: int) -> _ChunkBatches:
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
    return _ChunkBatches(
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
class _ChunkPhases:
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
    def zeros(cls, nb: int, T: int, P: int, G: int) -> _ChunkPhases:
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


def _pe_group_phases(model: _Model, g: Group, maps: _ChunkMaps, bt: _ChunkBatches, ph: _ChunkPhases) -> None:
    """A PE group's compute phases, PE busy/stall cycles, counters and output spill over the chunk."""
    gi = g.index
    stats, sin_bytes = _pe_group_stats(model, g, maps)
    sin_b = bt.per_batch(sin_bytes)
    stream = _stream_positions(model, g, maps)
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


def phase_too_long(model: _Model, g: Group, limit: int) -> SatasimError:
    """The refusal of a compute phase whose cycles could outgrow the kernel's packed counter (``limit`` cycles)."""
    batch, source = int(model.arch.images_per_batch), model.workload.source
    problem = f"a compute phase may exceed {limit:,} cycles, more than the engine's cycle counter holds"
    if batch > 1:
        return SatasimError.at(model.arch.where, "images_per_batch", f"layer {g.name!r} of {source}: {problem}",
                               f"use a smaller images_per_batch (now {batch}) or fewer --images")
    return SatasimError.at(source, "--images", f"layer {g.name!r} on {model.arch.where}: {problem}",
                           "simulate fewer images per run (--images, --start)")


def _fold_compute_phases(
    model: _Model,
    g: Group,
    fm: _FoldModel,
    st: _FoldStats,
    stream: tuple[np.ndarray, np.ndarray],
    sin_b: np.ndarray,
    s_out_b: np.ndarray,
    bt: _ChunkBatches,
    ph: _ChunkPhases,
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
            _drain_cycles(model, s_out_b[slice_b, slice_t - 1]),
        ),
    )
    busy_b = np.add.reduceat(busy_cls, bt.slice_first, axis=0)
    stall_b = np.add.reduceat(d_cls - busy_cls, bt.slice_first, axis=0)
    ph.pe_busy[bt.slice_batches] += busy_b[:, fm.pe_class]
    ph.pe_stall[bt.slice_batches] += stall_b[:, fm.pe_class]
    ph.group_busy[bt.slice_batches, g.index] += busy_b @ fm.cls_members


def _count_pe_fold(
    model: _Model,
    fm: _FoldModel,
    st: _FoldStats,
    sin_b: np.ndarray,
    s_out_b: np.ndarray,
    bt: _ChunkBatches,
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


def _pool_group_phases(model: _Model, g: Group, maps: _ChunkMaps, bt: _ChunkBatches, ph: _ChunkPhases) -> None:
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


def _exit_group_phases(model: _Model, g: Group, maps: _ChunkMaps, bt: _ChunkBatches, ph: _ChunkPhases) -> None:
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


class _ProgramWriter:
    """One batch's program under construction: its ops, the local cycles pending before the next op, its totals."""

    def __init__(self, model: _Model, ph: _ChunkPhases, b: int, exit_t: np.ndarray, first_image: int) -> None:
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

    def move_membranes(self, words: int, fm: _FoldModel, gi: int, write: bool) -> None:
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

    def stage_fold_weights(self, fm: _FoldModel, gi: int, full: bool = True) -> int:
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


def _pe_program(w: _ProgramWriter, g: Group, t: int, b_act: int, spilled: dict[int, int]) -> None:
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


def _pool_program(w: _ProgramWriter, g: Group, t: int, b_act: int, spilled: dict[int, int]) -> None:
    """A max-pool group's step t: one local phase."""
    dur = int(w.ph.pool_cycles[g.index][w.b, t - 1])
    w.pending += dur
    w.local_mem += dur
    w.group_local[g.index] += dur
    if spilled is not None:  # timestep_major: this step's pooled map (layer_major spills all T at once)
        w.spill_map(int(w.ph.spill[g.index][w.b, t - 1]), g.index, spilled)


def _exit_program(w: _ProgramWriter, g: Group, t: int, b_act: int, spilled: dict[int, int]) -> None:
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


def _layer_major_program(w: _ProgramWriter, n: int) -> None:
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
_GROUP_PHASES = {"pe": _pe_group_phases, "pool": _pool_group_phases, "exit": _exit_group_phases}
_GROUP_PROGRAMS = {"pe": _pe_program, "pool": _pool_program, "exit": _exit_program}


def _batch_work(model: _Model, bt: _ChunkBatches, ph: _ChunkPhases, b: int, first_image: int) -> _BatchWork:
    """Assemble batch ``b``'s program: every group's step, t by t, in group order."""
    lo, hi = int(bt.starts[b]), int(bt.ends[b])
    e = bt.exit_t[lo:hi]
    w = _ProgramWriter(model, ph, b, e, first_image + lo)
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
    return _BatchWork(
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


def _build_chunk_work(model: _Model, trace: Trace, first_image: int, batch_size: int) -> list[_BatchWork]:
    """The programs of every batch in one trace chunk."""
    maps = _ChunkMaps(model, trace)
    bt = _chunk_batches(trace, model.T, batch_size)
    ph = _ChunkPhases.zeros(bt.nb, model.T, model.P, len(model.groups))
    for g in model.groups:
        _GROUP_PHASES[g.kind](model, g, maps, bt, ph)
    return [_batch_work(model, bt, ph, b, first_image) for b in range(bt.nb)]


# ------------------------------------------------------------------------------------------
# batch refill: one step of the slots at a time (section 12.2)
# ------------------------------------------------------------------------------------------
@dataclass
class _RowChunk:
    """Per trace row (chunk image * T + t - 1) data of one chunk, for batch refill's steps."""

    first: int  # absolute index of the chunk's first image
    T: int
    exit_t: np.ndarray
    pe: dict  # PE group -> (fold stats, spike-buffer bytes read per row, stream (row_ptr, pos))
    pool: dict  # pool group -> (input spikes per row, output spikes per row)
    exit_spikes: np.ndarray  # the exit unit's input spikes per row

    @classmethod
    def build(cls, model: _Model, trace: Trace, first: int) -> _RowChunk:
        maps = _ChunkMaps(model, trace)
        pe, pool = {}, {}
        exit_spikes = np.zeros(0, dtype=np.int64)
        for g in model.groups:
            if g.kind == "pe":
                stats, sin_bytes = _pe_group_stats(model, g, maps)
                pe[g.index] = (stats, sin_bytes, _stream_positions(model, g, maps))
            elif g.kind == "pool":
                pool[g.index] = (maps.totals(g.inputs[0].source), maps.totals(g.name))
            else:
                exit_spikes = maps.totals(g.inputs[0].source)
        return cls(first, model.T, trace.exit_t.astype(np.int64), pe, pool, exit_spikes)


@dataclass
class _Slot:
    """One image in a refill slot: its chunk, index in the chunk and current timestep."""

    chunk: _RowChunk
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


def _step_fold(model: _Model, g: Group, f: int, items: list[_Slot], stream, step: _ChunkPhases) -> tuple[int, int]:
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
    dur = max(int(d_cls.max()), -(-sin // model.in_bpc), int(_drain_cycles(model, np.int64(s_out))))
    return dur, s_out


def _drain_cycles(model: _Model, s_out):
    """Cycles the output spikes of a compute phase need to reach the output buffer: its write port
    (``global_buffers.output.bytes_per_cycle``) and the mesh's one link into it (r spikes per cycle, model 7)."""
    return np.maximum(-(-s_out * model.sb // model.out_bpc), -(-s_out // model.r))


def _step_stream(g: Group, items: list[_Slot]) -> tuple[np.ndarray, np.ndarray]:
    """The group's stream of the step: the items' rows of their chunks' streams, concatenated in slot order."""
    segs = []
    for it in items:
        row_ptr, pos = it.chunk.pe[g.index][2]
        segs.append(pos[row_ptr[it.row] : row_ptr[it.row + 1]])
    lens = np.array([seg.size for seg in segs], dtype=np.int64)
    return np.concatenate([[0], np.cumsum(lens)]).astype(np.int64), np.concatenate(segs).astype(np.uint32)


def _step_pe(w: _ProgramWriter, g: Group, items: list[_Slot], spilled: dict[int, int]) -> None:
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


def _step_pool(w: _ProgramWriter, g: Group, items: list[_Slot], spilled: dict[int, int]) -> None:
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


def _step_exit(w: _ProgramWriter, g: Group, items: list[_Slot]) -> int:
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


def _refill_step(model: _Model, items: list[_Slot]) -> _BatchWork:
    """The program of one refill step: every group once for the items (each image at its own t), in group order."""
    step = _ChunkPhases.zeros(1, 1, model.P, len(model.groups))
    w = _ProgramWriter(model, step, 0, np.zeros(0, dtype=np.int64), 0)
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
    return _BatchWork(
        images=none, exit_t=none, ops=w.ops, tail=w.pending, counts=w.c.sum(axis=0), pe_busy=step.pe_busy[0].copy(),
        pe_stall_input=step.pe_stall[0].copy(), local_stall_memory=w.local_mem, exit_busy=w.exit_busy,
        exit_stall_input=stall, group_local=w.group_local, group_counts=w.c.copy(),
        group_busy=step.group_busy[0].copy(),
    )


# ------------------------------------------------------------------------------------------
# the scheduler
# ------------------------------------------------------------------------------------------
_DISPATCH = 2  # SimPy priority of the dispatcher's decisions: after every NORMAL (1) / URGENT (0) event of the cycle
_ARBITRATE = 3  # SimPy priority of the DRAM arbiter's decisions: after the dispatcher's too


def _fire(env: simpy.Environment, event: simpy.Event, priority: int, delay: int = 0, value=None) -> None:
    """Trigger ``event`` ``delay`` cycles from now at SimPy queue ``priority`` (what ``succeed`` does at NORMAL)."""
    event._ok = True  # as simpy's own Timeout/Initialize do: the queue orders by (time, priority, insertion)
    event._value = value
    env.schedule(event, priority, delay)


def _deferred(env: simpy.Environment, priority: int) -> simpy.Event:
    """An event at the current cycle that runs after every event of smaller priority number at this cycle."""
    event = env.event()
    _fire(env, event, priority)
    return event


class _Scheduler:
    """Accelerators sharing one DRAM channel and one batch queue, as a SimPy environment (integer cycles).

    Processes: one per accelerator (walks its batch programs), a dispatcher (hands out batches) and a DRAM
    arbiter (serves one transaction at a time). Both deciders decide at a cycle only once every ordinary event
    of that cycle has run, via SimPy queue priorities (_DISPATCH, then _ARBITRATE): the dispatcher gives the
    next batch to the lowest waiting accelerator index; the arbiter grants the pending request with the
    smallest (request cycle, accelerator index).
    """

    def __init__(self, model: _Model, accelerators: int, num_images: int, first_image: int) -> None:
        self.model = model
        self.arch = model.arch
        self.num_acc = accelerators
        self.latency = int(self.arch.dram.latency_cycles)
        self.dram_bpc = int(self.arch.dram.bytes_per_cycle)
        self.demand_first = self.arch.dram.arbitration == "demand_first"
        G = len(model.groups)
        self.totals = [AcceleratorTotals(model.P, G) for _ in range(accelerators)]
        self.finish = np.zeros(accelerators, dtype=np.int64)
        self.first_image = first_image
        # section 8: only the first ceil(images / b) accelerators get work; the others stay off (no load, no batch)
        self.loading = min(accelerators, -(-num_images // int(self.arch.images_per_batch)))
        self.start_cycle = np.zeros(num_images, dtype=np.int64)
        self.end_cycle = np.zeros(num_images, dtype=np.int64)
        self.accelerator = np.zeros(num_images, dtype=np.int64)
        self.exit_t = np.zeros(num_images, dtype=np.int64)
        self.group_cycles = np.zeros(G, dtype=np.int64)
        self.group_counts = np.zeros((G, len(ACTIONS)), dtype=np.int64)
        self.group_busy = np.zeros(G, dtype=np.int64)
        self.setup_counts = np.zeros(len(ACTIONS), dtype=np.int64)
        self.dram_busy = 0
        self.events = 0  # SimPy events processed by the last run()
        self.env = simpy.Environment()
        # (later, request cycle, acc, seq, bytes, done); ``later`` is 1 for a weight read ahead that nobody waits
        # for yet under demand_first, else 0. Waiting for it pushes a copy with 0 and supersedes this one.
        self._dram_queue: list[tuple[int, int, int, int, int, int, simpy.Event]] = []
        self._superseded: set[int] = set()  # seqs of read-ahead entries whose copy with later = 0 was pushed
        self._entries: dict[simpy.Event, tuple] = {}  # the queued entry of each transaction not yet served
        self._dram_requests = 0  # seq: one accelerator's requests of one cycle are served in the order made
        self._dram_idle: simpy.Event | None = None  # the arbiter's wake-up while nothing is pending
        self._asking: list[tuple[int, int, simpy.Event]] = []  # (acc, images, event) of accelerators asking
        self._dispatch_idle: simpy.Event | None = None
        self._batches = iter(())
        self._progress = None
        self._done_images = 0

    # --- requests made by the accelerator processes -----------------------------------------------
    def _dram(self, acc: int, nbytes: int, ahead: bool = False, bytes_per_cycle: int = 0) -> simpy.Event:
        """Ask for a DRAM transaction of ``nbytes`` now; the event fires when it completes.

        ``ahead``: a weight read ahead, which demand_first arbitration serves after every transaction that an
        accelerator waits for, until its own accelerator waits for it (:meth:`_waiting_for`; section 8).
        ``bytes_per_cycle``: the transaction's rate when something slower than the channel paces it (0: the
        channel's)."""
        if nbytes <= 0:  # section 8: a 0-byte transaction does not happen (and every grant lasts >= 1 cycle)
            raise ValueError(f"internal: accelerator {acc} asked for a {nbytes}-byte DRAM transaction")
        done = self.env.event()
        later = int(ahead and self.demand_first)
        entry = (later, int(self.env.now), acc, self._dram_requests, nbytes, bytes_per_cycle or self.dram_bpc, done)
        heapq.heappush(self._dram_queue, entry)
        self._dram_requests += 1
        self._entries[done] = entry
        if self._dram_idle is not None:
            wake, self._dram_idle = self._dram_idle, None
            _fire(self.env, wake, _ARBITRATE)
        return done

    def _waiting_for(self, done: simpy.Event) -> simpy.Event:
        """An accelerator now waits for its read ahead ``done``: if it is still queued, it joins the transactions
        that accelerators wait for (demand_first), ranked by its request cycle as before."""
        entry = self._entries.get(done)
        if entry is not None and entry[0] == 1:
            self._superseded.add(entry[3])
            promoted = (0, *entry[1:])
            self._entries[done] = promoted
            heapq.heappush(self._dram_queue, promoted)
        return done

    def _ask_batch(self, acc: int, images: int = 0) -> simpy.Event:
        """Ask for the next batch now; the event's value is its _BatchWork, or None when none are left.

        With ``images`` > 0 (batch refill) ask instead for up to that many next images: a list of _Slot."""
        got = self.env.event()
        heapq.heappush(self._asking, (acc, images, got))
        if self._dispatch_idle is not None:
            wake, self._dispatch_idle = self._dispatch_idle, None
            _fire(self.env, wake, _DISPATCH)
        return got

    # --- the deciders ----------------------------------------------------------------------------
    def _arbiter(self):
        """The DRAM channel: one transaction at a time, smallest (request cycle, accelerator, order asked) first;
        with demand_first, a weight read ahead only when no transaction that an accelerator waits for is waiting."""
        env = self.env
        while True:
            if self._dram_queue:
                yield _deferred(env, _ARBITRATE)  # let every request of this cycle arrive first
            else:
                self._dram_idle = env.event()
                yield self._dram_idle  # fired at _ARBITRATE priority by the first request
            later, _, acc, seq, nbytes, bpc, done = heapq.heappop(self._dram_queue)
            if later and seq in self._superseded:  # its copy with later = 0 was served first
                self._superseded.discard(seq)
                continue
            self._entries.pop(done, None)
            cycles = self.latency + -(-nbytes // bpc)
            self.dram_busy += cycles  # the requester counts its own stall: from when it waits, not when it asked
            _fire(env, done, simpy.events.NORMAL, cycles)
            yield done  # the requester resumes first (it was waiting on ``done`` before the grant)

    def _dispatcher(self):
        """Batch dispatch: at each cycle, the next batch to the lowest-index accelerator asking for one."""
        env = self.env
        while True:
            if self._asking:
                yield _deferred(env, _DISPATCH)  # re-decide after the last hand-out's consequences
            else:
                self._dispatch_idle = env.event()
                yield self._dispatch_idle  # fired at _DISPATCH priority by the first request
            acc, images, got = heapq.heappop(self._asking)
            if images:
                got.succeed([slot for _, slot in zip(range(images), self._batches, strict=False)])
            else:
                got.succeed(next(self._batches, None))

    def _initial_load(self, acc: int):
        """Section 8: at cycle 0, an accelerator loads all weights when they are resident."""
        if self.model.mapping.weights_resident:
            weight_bytes = self.model.mapping.total_weight_bytes
            yield self._dram(acc, weight_bytes)
            self.totals[acc].stall_memory += int(self.env.now)
            for key in ("dram_read_bytes", "weight_glb_write_bytes"):
                self.setup_counts[A[key]] += weight_bytes
                self.totals[acc].counts[A[key]] += weight_bytes
            self.finish[acc] = self.env.now

    def _accelerator(self, acc: int):
        """One accelerator: initial weight load (if resident), then batch programs until none are left."""
        env = self.env
        first = self.first_image
        if acc >= self.loading:  # it would get no batch: it stays off (finish 0)
            return
        yield from self._initial_load(acc)
        while True:
            work = yield self._ask_batch(acc)
            if work is None:
                self.finish[acc] = env.now
                return
            idx = work.images - first
            self.start_cycle[idx] = env.now
            self.accelerator[idx] = acc
            self.exit_t[idx] = work.exit_t
            yield from self._run_work(acc, work)

    def _refill_accelerator(self, acc: int, slots: int):
        """One accelerator with batch refill (section 12.2): ``slots`` images, each at its own timestep."""
        env = self.env
        first = self.first_image
        if acc >= self.loading:
            return
        yield from self._initial_load(acc)
        held: list[_Slot | None] = [None] * slots
        while True:
            free = [s for s, slot in enumerate(held) if slot is None]
            if free:
                got = yield self._ask_batch(acc, len(free))
                for s, slot in zip(free, got, strict=False):  # lowest free slot first
                    held[s] = slot
                    self.start_cycle[slot.image - first] = env.now
                    self.accelerator[slot.image - first] = acc
                    self.exit_t[slot.image - first] = slot.exit_t
            items = [slot for slot in held if slot is not None]
            if not items:
                self.finish[acc] = env.now
                return
            yield from self._run_work(acc, _refill_step(self.model, items))
            for s, slot in enumerate(held):
                if slot is not None:
                    if slot.exit_t == slot.t:
                        held[s] = None
                    else:
                        slot.t += 1

    def _run_work(self, acc: int, work: _BatchWork):
        """Walk one program: its local stretches as timeouts, each DRAM transaction as a request."""
        env = self.env
        tot = self.totals[acc]
        first = self.first_image
        tot.busy += work.pe_busy
        tot.stall_input += work.pe_stall_input
        tot.stall_memory += work.local_stall_memory
        tot.exit_busy += work.exit_busy
        tot.exit_stall_input += work.exit_stall_input
        tot.counts += work.counts
        self.group_cycles += work.group_local
        self.group_counts += work.group_counts
        self.group_busy += work.group_busy
        t = int(env.now)  # local phases run back to back: one timeout per stretch up to a DRAM request
        prefetched: list[simpy.Event] = []  # the program's weight prefetches, in the order requested
        for delay, kind, value, gi in work.ops:
            t += delay
            if kind == MARK:
                self.end_cycle[value - first] = t
                self._done_images += 1
                continue
            if t > env.now:
                yield env.timeout(t - env.now)
            if kind == PREFETCH:  # requested now; the program goes on and waits for it at its AWAIT
                prefetched.append(self._dram(acc, value, ahead=True))
                continue
            if kind == AWAIT:
                yield self._waiting_for(prefetched[value])
            elif kind in (MEMBRANE_READ, MEMBRANE_WRITE):
                yield self._dram(acc, value, bytes_per_cycle=self.model.membrane_bpc)
            else:
                yield self._dram(acc, value)
            tot.stall_memory += env.now - t
            self.group_cycles[gi] += env.now - t
            t = int(env.now)
        t += work.tail
        if t > env.now:
            yield env.timeout(t - env.now)
        self.finish[acc] = t
        if self._progress is not None:
            self._progress.update(self._done_images, int(self.finish.max()))

    def run(self, batches: Iterable[Any], progress: ProgressSink | None = None, refill_slots: int = 0) -> None:
        """Simulate until every batch is done (batches in order, first free accelerator, ties lowest index).

        With ``refill_slots`` > 0, ``batches`` yields single images (_Slot) for accelerators with that many slots."""
        self._batches = iter(batches)
        self._progress = progress
        env = self.env
        for acc in range(self.num_acc):
            env.process(self._refill_accelerator(acc, refill_slots) if refill_slots else self._accelerator(acc))
        env.process(self._dispatcher())
        env.process(self._arbiter())
        step = env.step
        events = 0
        try:
            while True:
                step()
                events += 1
        except simpy.core.EmptySchedule:
            pass
        self.events = events

    def summary(self) -> RunSummary:
        """The public outcome of :meth:`run`: what SimResult.build needs, nothing of the scheduler's internals."""
        return RunSummary(
            total_cycles=int(max(int(self.finish.max()), int(self.end_cycle.max(initial=0)))),
            start_cycle=self.start_cycle,
            end_cycle=self.end_cycle,
            exit_t=self.exit_t,
            accelerator=self.accelerator,
            accelerators=self.totals,
            group_cycles=self.group_cycles,
            group_busy=self.group_busy,
            group_counts=self.group_counts,
            dram_busy_cycles=int(self.dram_busy),
        )


# ------------------------------------------------------------------------------------------
# entry point
# ------------------------------------------------------------------------------------------
def _chunk_images(model: _Model, workload: Workload, batch_size: int) -> int:
    """Images per trace chunk: a multiple of the batch size within the trace memory budget."""
    per_image = model.T * sum(
        int(np.prod(ly["out_shape"])) for ly in workload.layers if ly["type"] not in ("output", "avgpool")
    )
    if workload.input_encoding == "spike_frames":
        per_image += model.T * int(np.prod(workload.input_shape))
    n = max(1, min(256, TRACE_BUDGET_BYTES // max(per_image * 2, 1)))
    return max(batch_size, (n // batch_size) * batch_size)


def simulate(
    arch: Arch, workload: Workload, images: int | None = None, start: int = 0, progress: ProgressSink | None = None,
    chunk_images: int | None = None,
) -> SimResult:
    """Simulate ``images`` images of ``workload`` from index ``start`` on ``arch``.

    Refuses (MappingError) membranes narrower than the workload's: the functional result keeps the workload's
    widths, so narrower registers would be timed and charged for values they cannot hold."""
    require_arch_and_workload(arch, workload)
    count = image_count(workload, images, start)
    check_record_memory(workload, count, int(start))
    check_draw_memory(workload)
    mapping = check_mappable(arch, workload)
    if progress is not None:  # before the static model, which takes seconds on arrays of 10^5 PEs and more
        progress.start(count)
    model = _Model(arch, mapping, workload)
    batch = int(arch.images_per_batch)
    chunk = chunk_images or _chunk_images(model, workload, batch)
    chunk = max(batch, (chunk // batch) * batch)
    policy = arch.exit_policy()
    policy_name = arch.policy_name
    labels = np.full(count, -1, dtype=np.int64)
    pred = np.zeros(count, dtype=np.int64)
    pred_hw = np.zeros(count, dtype=np.int64)
    has_labels = [True]

    def batches():
        for lo in range(0, count, chunk):
            n = min(chunk, count - lo)
            trace = functional_trace(workload, policy, policy_name, start + lo, n, arch.prediction_rule)
            pred[lo : lo + n] = trace.pred
            pred_hw[lo : lo + n] = trace.pred_hw
            if trace.labels is None:
                has_labels[0] = False
            else:
                labels[lo : lo + n] = trace.labels
            if refill:  # single images; a chunk's row data lives while a slot holds one of its images
                rows = _RowChunk.build(model, trace, start + lo)
                del trace
                yield from (_Slot(rows, j) for j in range(n))
                continue
            works = _build_chunk_work(model, trace, start + lo, batch)
            del trace
            yield from works

    # batch refill (section 12.2); with one slot it is the ordinary batch of one image
    refill = bool(arch.batch_refill) and arch.dataflow == "timestep_major" and batch > 1
    scheduler = _Scheduler(model, int(arch.accelerators), count, start)
    if refill:
        scheduler.run(batches(), progress, refill_slots=batch)
    else:  # (the plain call: tests/test_engine_simpy.py swaps in a heap scheduler with this signature)
        scheduler.run(batches(), progress)
    if progress is not None:
        progress.finish()
    return SimResult.build(
        arch=arch,
        workload=workload,
        mapping=mapping,
        start=start,
        summary=scheduler.summary(),
        pred=pred,
        pred_hw=pred_hw,
        labels=labels if has_labels[0] else None,
    )


__all__ = ["simulate"]
