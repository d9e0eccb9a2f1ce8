"""Per-chunk spike statistics of the engine: flat spike maps, per-fold load counts and stream positions.

One trace chunk at a time (hw/engine.py), counted by the numba kernels of :mod:`hw.kernels`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from satasim_atsn.hw import kernels
from satasim_atsn.hw.engine_model import EngineModel
from satasim_atsn.hw.mapping import (
    Group,
    GroupInput,
)
from satasim_atsn.workload.trace import Trace


class ChunkMaps:
    """Flat spike maps of one trace chunk and cached per-map reductions (rows = image*T + t-1)."""

    def __init__(self, model: EngineModel, trace: Trace) -> None:
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


def image_rows(model: EngineModel, spec: GroupInput, trace: Trace) -> tuple[np.ndarray, int]:
    """Bit-plane spikes of direct images: per position [n, HW] (or totals [n, 1]) and bytes per image."""
    x = np.ascontiguousarray(trace.inputs).reshape(trace.num_images, -1)
    h, w = spec.spatial
    pos = kernels.popcount_positions(x, spec.size // (h * w), h * w)
    if spec.coverage != "conv":
        pos = pos.sum(axis=1, keepdims=True)
    return pos, spec.size


@dataclass
class FoldStats:
    """Per (image, t) rows [n*T] of one fold: deliveries, accumulations, NoC byte-hops, output spikes."""

    acc: np.ndarray
    weighted: np.ndarray  # accumulations that read a weight (all but identity-shortcut ones)
    cyc: np.ndarray  # [n*T, classes] accumulate cycles of each PE class
    dlv_cls: np.ndarray  # [n*T, classes] deliveries to each PE of the class
    dlv_hops: np.ndarray
    deliveries: np.ndarray
    s_out: np.ndarray
    out_hops: np.ndarray


def pe_group_stats(model: EngineModel, group: Group, maps: ChunkMaps) -> tuple[list[FoldStats], np.ndarray]:
    """Fold statistics of a PE group over a chunk, and the glb spike bytes read per row [n*T]."""
    n, T, P = maps.n, model.T, model.P
    rows = n * T
    sin_bytes = np.zeros(rows, dtype=np.int64)
    image_cache: dict[str, tuple[np.ndarray, int]] = {}
    for spec in group.inputs:
        if spec.encoding == "image":
            if spec.source not in image_cache:
                image_cache[spec.source] = image_rows(model, spec, maps.trace)
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
            FoldStats(
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


def stream_positions(model: EngineModel, group: Group, maps: ChunkMaps) -> tuple[np.ndarray, np.ndarray]:
    """The group's input spikes of every trace row as virtual positions in delivery order: (row_ptr, pos).

    Per row (image, t): the group's inputs in order, each in raster order (c, y, x); a direct image
    delivers its 8 bit planes (k = 0..7, each in raster order) at t = 1 only. Virtual positions are those
    of :class:`FoldModel` (the same for every fold of the group).
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


