"""The engine's SimPy scheduler: one process per accelerator, a batch dispatcher and a DRAM arbiter.

Exact at equal cycles through SimPy queue priorities (hw/engine.py's docstring says why)."""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

import numpy as np
import simpy

from satasim_atsn.hw.energy import ACTIONS
from satasim_atsn.hw.engine_model import (
    AWAIT,
    MARK,
    MEMBRANE_READ,
    MEMBRANE_WRITE,
    PREFETCH,
    A,
    BatchWork,
    EngineModel,
    ProgressSink,
)
from satasim_atsn.hw.engine_refill import Slot, refill_step
from satasim_atsn.hw.results import AcceleratorTotals, RunSummary

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


class Scheduler:
    """Accelerators sharing one DRAM channel and one batch queue, as a SimPy environment (integer cycles).

    Processes: one per accelerator (walks its batch programs), a dispatcher (hands out batches) and a DRAM
    arbiter (serves one transaction at a time). Both deciders decide at a cycle only once every ordinary event
    of that cycle has run, via SimPy queue priorities (_DISPATCH, then _ARBITRATE): the dispatcher gives the
    next batch to the lowest waiting accelerator index; the arbiter grants the pending request with the
    smallest (request cycle, accelerator index).
    """

    def __init__(self, model: EngineModel, accelerators: int, num_images: int, first_image: int) -> None:
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
        self._ending: list[int] = []  # end cycles of images whose exit mark a program passed, not yet reported

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
        """Ask for the next batch now; the event's value is its BatchWork, or None when none are left.

        With ``images`` > 0 (batch refill) ask instead for up to that many next images: a list of Slot."""
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
        held: list[Slot | None] = [None] * slots
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
            yield from self._run_work(acc, refill_step(self.model, items))
            for s, slot in enumerate(held):
                if slot is not None:
                    if slot.exit_t == slot.t:
                        held[s] = None
                    else:
                        slot.t += 1

    def _run_work(self, acc: int, work: BatchWork):
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
                heapq.heappush(self._ending, t)  # a program passes its marks ahead of the clock: reported when due
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
            self._report_progress(int(env.now))

    def _report_progress(self, now: int) -> None:
        """Tell the progress display the images finished by simulated cycle ``now`` (an image another accelerator's
        program has passed the end of, but which ends later, is not done yet: counting it showed up to 4x the
        images, and so the FPS, with 4 accelerators)."""
        while self._ending and self._ending[0] <= now:
            heapq.heappop(self._ending)
            self._done_images += 1
        self._progress.update(self._done_images, now)

    def run(self, batches: Iterable[Any], progress: ProgressSink | None = None, refill_slots: int = 0) -> None:
        """Simulate until every batch is done (batches in order, first free accelerator, ties lowest index).

        With ``refill_slots`` > 0, ``batches`` yields single images (Slot) for accelerators with that many slots."""
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


