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
  *virtual positions* (:func:`hw.engine_chunks.stream_positions`); per fold, a static CSR maps each virtual position to
  its destination PE classes and accumulate cycles (:class:`hw.engine_model.FoldModel`); the exact event recurrence
  of :mod:`hw.kernels` then runs every slice (batch, t) of the chunk, in parallel over slices.
  Accumulate cycles, deliveries, accumulations and NoC byte-hops are counted by small GEMMs over
  per-position spike counts.
* What is shared and waits -- the single DRAM channel and batch dispatch -- is a SimPy environment
  (:class:`hw.engine_scheduler.Scheduler`, integer cycles): one process per accelerator walks its batch programs (a
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
  (:func:`hw.engine_programs._layer_major_program`). Batch refill cannot build programs ahead, since
  which images join a slot depends on the other accelerators' timing: each accelerator process asks the
  dispatcher for images whenever slots are free and builds one step's program at a time
  (:func:`hw.engine_refill.refill_step`, one kernel slice per fold over the slots' trace rows, in slot
  order, from per-chunk row data :class:`hw.engine_refill.RowChunk`).

The engine is split by stage, each module importing only the ones before it: ``engine_model`` (the static model
of a run), ``engine_chunks`` (per-chunk spike statistics), ``engine_phases`` (the phases of every slice, with
the stream recurrence), ``engine_programs`` (batch programs), ``engine_refill`` (batch refill steps),
``engine_scheduler`` (SimPy), and this module's :func:`simulate`, which runs them chunk by chunk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from satasim_atsn.errors import SatasimError, whole_count
from satasim_atsn.hw.arch import require_arch_and_workload
from satasim_atsn.hw.engine_model import EngineModel, ProgressSink, check_progress_sink
from satasim_atsn.hw.engine_programs import build_chunk_work
from satasim_atsn.hw.engine_refill import RowChunk, Slot
from satasim_atsn.hw.engine_scheduler import Scheduler
from satasim_atsn.hw.results import SimResult
from satasim_atsn.hw.run_checks import check_draw_memory, check_mappable, check_record_memory, image_count
from satasim_atsn.traces.functional import functional_trace
from satasim_atsn.workload.format import Workload

if TYPE_CHECKING:
    from satasim_atsn.hw.arch import Arch

TRACE_BUDGET_BYTES = 192 * 2**20


def _chunk_images(model: EngineModel, workload: Workload, batch_size: int) -> int:
    """Images per trace chunk: a multiple of the batch size within the trace memory budget."""
    per_image = model.T * sum(
        int(np.prod(ly["out_shape"])) for ly in workload.layers if ly["type"] not in ("output", "avgpool")
    )
    if workload.input_encoding == "spike_frames":
        per_image += model.T * int(np.prod(workload.input_shape))
    n = max(1, min(256, TRACE_BUDGET_BYTES // max(per_image * 2, 1)))
    return max(batch_size, (n // batch_size) * batch_size)


def _given_chunk(chunk_images: object) -> int:
    """``chunk_images`` as given to simulate: a whole number >= 1 (a string raised a TypeError; 0, -3 and 1.5 were
    used as they came)."""
    chunk = whole_count(chunk_images, None, "chunk_images")
    if chunk < 1:
        raise SatasimError.at(None, "chunk_images", f"must be >= 1, got {chunk}",
                              "give the images per trace chunk, or None for the memory budget's choice")
    return chunk


def simulate(
    arch: Arch, workload: Workload, images: int | None = None, start: int = 0, progress: ProgressSink | None = None,
    chunk_images: int | None = None,
) -> SimResult:
    """Simulate ``images`` images of ``workload`` from index ``start`` on ``arch``.

    Refuses (MappingError) membranes narrower than the workload's: the functional result keeps the workload's
    widths, so narrower registers would be timed and charged for values they cannot hold."""
    require_arch_and_workload(arch, workload)
    count = image_count(workload, images, start, options=("images", "start"))  # the CLIs check theirs first
    check_record_memory(workload, count, int(start))
    check_draw_memory(workload)
    mapping = check_mappable(arch, workload)
    if progress is not None:  # before the static model, which takes seconds on arrays of 10^5 PEs and more
        check_progress_sink(progress)
        progress.start(count)
    model = EngineModel(arch, mapping, workload)
    batch = int(arch.images_per_batch)
    chunk = _chunk_images(model, workload, batch) if chunk_images is None else _given_chunk(chunk_images)
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
                rows = RowChunk.build(model, trace, start + lo)
                del trace
                yield from (Slot(rows, j) for j in range(n))
                continue
            works = build_chunk_work(model, trace, start + lo, batch)
            del trace
            yield from works

    # batch refill (section 12.2); with one slot it is the ordinary batch of one image
    refill = bool(arch.batch_refill) and arch.dataflow == "timestep_major" and batch > 1
    scheduler = Scheduler(model, int(arch.accelerators), count, start)
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
