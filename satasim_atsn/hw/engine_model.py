"""The engine's static model of one run: per-fold routing and costs, program op codes, batch work items.

Split from hw/engine.py (its module docstring describes the whole engine); everything here is built once per
run from the architecture, the mapping and the workload, before any trace is read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from satasim_atsn.errors import SatasimError
from satasim_atsn.hw import kernels
from satasim_atsn.hw.energy import ACTIONS
from satasim_atsn.hw.mapping import (
    Group,
    GroupInput,
    Mapping,
    multicast_links,
)
from satasim_atsn.snn.exit_policies import keeps_running_sum
from satasim_atsn.workload.format import Workload

A = {name: i for i, name in enumerate(ACTIONS)}
# program ops: a blocking DRAM read / write, an image's exit mark, a weight prefetch (a DRAM read that does not
# block; its value is the bytes), the wait for one (its value is the prefetch's number in the program) and a
# blocking membrane fill / spill (a DRAM read / write that crosses the mesh's entry link: section 4, phases 3, 5)
DRAM_READ, DRAM_WRITE, MARK, PREFETCH, AWAIT, MEMBRANE_READ, MEMBRANE_WRITE = 0, 1, 2, 3, 4, 5, 6


@dataclass
class InputModel:
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


#: the methods of a ProgressSink and the arguments the engine passes each
PROGRESS_CALLS = {"start": (0,), "update": (0, 0), "finish": ()}


def check_progress_sink(progress: object) -> None:
    """A progress object without one of ProgressSink's methods, or whose method cannot take the engine's arguments,
    is refused before the run: it raised an AttributeError or TypeError from inside SimPy, or after the whole run
    (a missing ``finish``), or for ``progress=True``."""
    import inspect

    for name, args in PROGRESS_CALLS.items():
        method = getattr(progress, name, None)
        problem = None if callable(method) else f"has no {name}() method"
        if problem is None:
            try:
                inspect.signature(method).bind(*args)
            except TypeError:
                problem = f"{name}() cannot take {len(args)} argument{'s' * (len(args) != 1)}"
            except ValueError:  # no signature to inspect (a builtin): let the call decide
                pass
        if problem:
            raise SatasimError.at(None, "progress", f"{type(progress).__name__} {problem}",
                                  "pass report.progress.Progress, or an object with start(total_images), "
                                  "update(done, cycles) and finish(); or None")


@dataclass
class FoldModel:
    """Static data of one fold of a PE group, including its multicast-stream routing.

    Virtual positions: the group's inputs in order, each contributing ``vp_offsets[j]`` onwards (conv: one
    per spatial position, linear: one, identity: one per flat index). ``vp_ptr``/``vp_cls``/``vp_cost``:
    CSR of the destination PE classes of each virtual position and their accumulate cycles. PEs with equal
    neurons and coverage behave identically, so the stream recurrence runs over classes
    (``pe_class[p]``, ``cls_neurons``, ``cls_members``).
    """

    neurons: int
    pe_neurons: np.ndarray
    inputs: list[InputModel]
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
class BatchWork:
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


class EngineModel:
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
        self.folds: dict[int, list[FoldModel]] = {}
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

    def _fold_model(self, group: Group, fold) -> FoldModel:
        pe_neurons = fold.pe_neurons.astype(np.int64)
        inputs = []
        covs = []  # per conv input: the PEs' coverage of its positions [P, HW]
        for spec in group.inputs:
            model = InputModel(spec)
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
        fm = FoldModel(fold.n, pe_neurons, inputs, fold.weight_bytes, int(fold.pe_weight_bytes.sum()),
                        int(fold.weight_byte_hops), int(pe_neurons @ self.hops), group.words_per_neuron,
                        int(fold.threshold_bytes), int(thresholds.sum()) if thresholds is not None else 0,
                        int(fold.threshold_byte_hops))
        self._stream_routing(fold, fm, covs)
        return fm

    def _stream_routing(self, fold, fm: FoldModel, covs: list[np.ndarray]) -> None:
        """Destination classes and costs of every virtual position of the fold (see :class:`FoldModel`).

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
            reps, pe_class = equal_rows(full)
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


def equal_rows(full: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``full`` in order of first appearance, and each row's index among them.

    Exact (hw/kernels.equal_rows: rows hashed, then compared value by value within a hash) and near linear in the
    matrix size; a Python loop over the rows took seconds per fold on arrays of 10^5 PEs. The order of the classes
    changes no result (every use of a class is per class or a max/sum over them), yet it is kept.
    """
    return kernels.equal_rows(full)


def drain_cycles(model: EngineModel, s_out):
    """Cycles the output spikes of a compute phase need to reach the output buffer: its write port
    (``global_buffers.output.bytes_per_cycle``) and the mesh's one link into it (r spikes per cycle, model 7)."""
    return np.maximum(-(-s_out * model.sb // model.out_bpc), -(-s_out // model.r))
