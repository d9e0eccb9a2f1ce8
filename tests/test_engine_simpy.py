"""The SimPy scheduler of the engine (hw/engine_scheduler.py) against its predecessor, a hand-written event heap.

The heap scheduler below (the oracle) is a copy of ``engine._Scheduler`` (now ``engine_scheduler.Scheduler``) as of
commit fe4921c (before the SimPy rewrite), kept here ONLY as a test witness: production code has one scheduler. Its
one change since: session 16's weight prefetches (a PREFETCH op requests a DRAM read the program does not wait for;
an AWAIT op waits for it), marked "since session 16" below. The oracle serves the channel in request order, so the
comparisons run with ``dram.arbitration: fifo``; demand_first is checked against hw/reference.py. Every comparison
runs ``engine.simulate`` twice, once with the SimPy scheduler and once with the oracle patched in, and demands
byte-identical ``SimResult.to_json()`` and equal ``counters()``.
"""

from __future__ import annotations

import heapq
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from satasim_atsn.hw import engine
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.energy import ACTIONS
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
)
from satasim_atsn.hw.results import AcceleratorTotals
from satasim_atsn.workload.format import read_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parent.parent
KIND_FILE = {"atsn": "atsn16x16.yaml", "dtsnn": "dtsnn16x16.yaml", "conventional": "conventional16x16.yaml"}


# ------------------------------------------------------------------------------------------
# ORACLE: the former heap scheduler (copied from hw/engine.py at fe4921c; do not "fix" it; prefetches added)
# ------------------------------------------------------------------------------------------
class HeapSchedulerOracle:
    """ORACLE (test witness only): the pre-SimPy hand-written event heap of hw/engine.py, copied verbatim."""

    def __init__(self, model, accelerators: int, num_images: int, first_image: int) -> None:
        self.model = model
        self.arch = model.arch
        self.num_acc = accelerators
        self.dram_free = 0
        self.latency = int(self.arch.dram.latency_cycles)
        self.dram_bpc = int(self.arch.dram.bytes_per_cycle)
        G = len(model.groups)
        self.totals = [AcceleratorTotals(model.P, G) for _ in range(accelerators)]
        self.finish = np.zeros(accelerators, dtype=np.int64)
        self.first_image = first_image
        self.start_cycle = np.zeros(num_images, dtype=np.int64)
        self.end_cycle = np.zeros(num_images, dtype=np.int64)
        self.accelerator = np.zeros(num_images, dtype=np.int64)
        self.exit_t = np.zeros(num_images, dtype=np.int64)
        self.group_cycles = np.zeros(G, dtype=np.int64)
        self.group_counts = np.zeros((G, len(ACTIONS)), dtype=np.int64)
        self.group_busy = np.zeros(G, dtype=np.int64)
        self.setup_counts = np.zeros(len(ACTIONS), dtype=np.int64)
        self.dram_busy = 0

    summary = engine.Scheduler.summary  # the run's public outcome, read off the same attributes

    def _dram(self, acc: int, request: int, nbytes: int, bpc: int = 0) -> int:
        start = max(request, self.dram_free)
        end = start + self.latency + -(-nbytes // (bpc or self.dram_bpc))  # bpc: since hardware model 7
        self.dram_free = end
        self.dram_busy += end - start
        self.totals[acc].stall_memory += end - request
        return end

    def run(self, batches, progress=None) -> None:
        """Serve DRAM transactions and dispatch batches in (cycle, accelerator) order."""
        heap: list[tuple[int, int, int]] = []  # (cycle, accelerator, kind) kind 0 = DRAM op, 1 = wants a batch
        state: list[list] = [[None, 0, []] for _ in range(self.num_acc)]  # current work, next op index, prefetch ends
        # (since 2026-12: the accelerators beyond the first ceil(images / b) stay off: no load, no batch)
        working = min(self.num_acc, -(-len(self.start_cycle) // int(self.arch.images_per_batch)))
        if self.model.mapping.weights_resident:
            for a in range(working):
                heapq.heappush(heap, (0, a, 2))
        else:
            for a in range(working):
                heapq.heappush(heap, (0, a, 1))
        batches = iter(batches)
        done_images = 0
        weight_bytes = self.model.mapping.total_weight_bytes
        while heap:
            now, a, kind = heapq.heappop(heap)
            if kind == 2:  # initial weight load
                end = self._dram(a, now, weight_bytes)
                self.setup_counts[A["dram_read_bytes"]] += weight_bytes
                self.setup_counts[A["weight_glb_write_bytes"]] += weight_bytes
                self.totals[a].counts[A["dram_read_bytes"]] += weight_bytes
                self.totals[a].counts[A["weight_glb_write_bytes"]] += weight_bytes
                self.finish[a] = end
                heapq.heappush(heap, (end, a, 1))
                continue
            if kind == 1:
                work = next(batches, None)
                if work is None:
                    self.finish[a] = now
                    continue
                idx = work.images - self.first_image
                self.start_cycle[idx] = now
                self.accelerator[idx] = a
                self.exit_t[idx] = work.exit_t
                tot = self.totals[a]
                tot.busy += work.pe_busy
                tot.stall_input += work.pe_stall_input
                tot.stall_memory += work.local_stall_memory
                tot.exit_busy += work.exit_busy
                tot.exit_stall_input += work.exit_stall_input
                tot.counts += work.counts
                self.group_cycles += work.group_local
                self.group_counts += work.group_counts
                self.group_busy += work.group_busy
                state[a] = [work, 0, []]
                t = now
            else:
                work, i, ends = state[a]
                _, op_kind, nbytes, gi = work.ops[i]
                if op_kind == PREFETCH:  # since session 16: served like any request, but nobody stalls for it
                    start = max(now, self.dram_free)
                    self.dram_free = start + self.latency + -(-nbytes // self.dram_bpc)
                    self.dram_busy += self.dram_free - start
                    ends.append(self.dram_free)
                    end = now
                else:  # since hardware model 7: membranes move at the slower of the DRAM and the mesh's link
                    membranes = op_kind in (MEMBRANE_READ, MEMBRANE_WRITE)
                    end = self._dram(a, now, nbytes, self.model.membrane_bpc if membranes else 0)
                    self.group_cycles[gi] += end - now
                state[a][1] = i + 1
                t = end
            # run the program up to the next DRAM request
            work, i, ends = state[a]
            ops = work.ops
            while i < len(ops):
                delay, op_kind, value, gi = ops[i]
                t += delay
                if op_kind == MARK:
                    self.end_cycle[value - self.first_image] = t
                    i += 1
                    done_images += 1
                    continue
                if op_kind == AWAIT:  # since session 16: its prefetch was served when requested
                    wait = max(0, ends[value] - t)
                    self.totals[a].stall_memory += wait
                    self.group_cycles[gi] += wait
                    t += wait
                    i += 1
                    continue
                break
            state[a][1] = i
            if i < len(ops):
                heapq.heappush(heap, (t, a, 0))
            else:
                t += work.tail
                self.finish[a] = t
                heapq.heappush(heap, (t, a, 1))
                if progress is not None:
                    progress.update(done_images, int(self.finish.max()))


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
class CountingScheduler(engine.Scheduler):
    """The production scheduler, also recording DRAM contention and same-cycle ties (to show they occur)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.transactions = 0
        self.queued = 0  # requests made while another one was already waiting for the channel
        self.ties = 0  # requests made while another one with the same request cycle was waiting

    def _dram(self, acc: int, nbytes: int, ahead: bool = False, bytes_per_cycle: int = 0):
        self.transactions += 1
        waiting = [r for _, r, *_ in self._dram_queue]
        self.queued += bool(waiting)
        self.ties += int(self.env.now) in waiting
        return super()._dram(acc, nbytes, ahead, bytes_per_cycle)


def run_both(arch, wl, images=None, **kwargs):
    """(SimPy result, oracle result, the SimPy scheduler) of one simulation."""
    made: list[CountingScheduler] = []

    def counting(*args):
        made.append(CountingScheduler(*args))
        return made[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "Scheduler", counting)
        new = engine.simulate(arch, wl, images, **kwargs)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(engine, "Scheduler", HeapSchedulerOracle)
        old = engine.simulate(arch, wl, images, **kwargs)
    return new, old, made[0]


def assert_identical(new, old, what: str) -> None:
    """Byte-identical JSON and equal counters."""
    assert new.counters() == old.counters(), what
    assert new.to_json() == old.to_json(), what


def contention_arch(seed: int):
    """2-4 accelerators sharing a slow DRAM (1-4 B/cycle, long latency); weights streamed or resident."""
    rng = np.random.default_rng(7000 + seed)
    kind = ["atsn", "dtsnn", "conventional"][seed % 3]
    resident = seed % 2 == 0
    sets = {
        "array.rows": int(rng.integers(2, 4)),
        "array.cols": int(rng.integers(2, 4)),
        "accelerators": int(rng.integers(2, 5)),
        "images_per_batch": int(rng.integers(1, 4)),
        "pe.input_spike_buffer_bytes": int(rng.choice([2, 4, 8])),
        "pe.data_memory_bytes": int(rng.choice([8, 16, 1024])),
        "pe.adders": int(rng.choice([1, 2])),
        "noc.link_bytes_per_cycle": int(rng.choice([2, 4])),
        "noc.hop_cycles": int(rng.integers(0, 3)),
        "global_buffers.weight.bytes": 10**6 if resident else int(rng.choice([16, 64])),
        "global_buffers.weight.bytes_per_cycle": int(rng.choice([4, 32])),
        "global_buffers.output.bytes": int(rng.choice([16, 32768])),
        "global_buffers.input.bytes": int(rng.choice([16, 32768, 32768])),
        "dram.bytes_per_cycle": int(rng.choice([1, 2, 4])),
        "dram.latency_cycles": int(rng.choice([0, 1, 40, 300])),
        "dram.arbitration": "fifo",  # the oracle's rule: demand_first is checked against hw/reference.py
    }
    # two 16-bit words per image of a batch: a first layer's membrane and constant current (section 5)
    sets["pe.data_memory_bytes"] = max(sets["pe.data_memory_bytes"], 4 * sets["images_per_batch"])
    if kind == "dtsnn":
        sets["pe.adc_cycles_per_conversion"] = int(rng.integers(1, 4))
        sets["exit_unit.theta"] = 0.5
    if kind == "atsn":
        sets["exit_unit.cl_init"] = 0.9
        sets["exit_unit.tau_cl"] = 0.95
    return load_arch(ROOT / "archs" / KIND_FILE[kind], [f"{k}={v}" for k, v in sets.items()])


# ------------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seeds", [range(30), pytest.param(range(30, 90), marks=pytest.mark.slow)],
                         ids=["default", "more"])
def test_simpy_scheduler_equals_heap_oracle_on_random_contended_cases(seeds: range) -> None:
    """Random small workloads/archs (30 in the default run, 60 more in the slow part): identical results, and
    contention and same-cycle ties really occur."""
    queued = ties = resident = streamed = 0
    for seed in seeds:
        arch = contention_arch(seed)
        wl = random_workload(300 + seed, images=int(3 + seed % 6), max_channels=4, size=4)
        new, old, sched = run_both(arch, wl)
        assert_identical(new, old, f"seed {seed}")
        queued += sched.queued
        ties += sched.ties
        resident += bool(new.mapping["weights_resident"])
        streamed += not new.mapping["weights_resident"]
        # O(DRAM transactions + batches) SimPy events, never per cycle (a prefetch adds its AWAIT's timeout)
        batches = -(-wl.num_images // arch.images_per_batch)
        bound = 4 * sched.transactions + 3 * (batches + arch.accelerators) + arch.accelerators + 2
        assert sched.events <= bound, f"seed {seed}: {sched.events} events > {bound}"
    assert resident >= len(seeds) // 3 and streamed >= len(seeds) // 3, (resident, streamed)
    assert queued >= 7 * len(seeds) and ties >= 2 * len(seeds), (queued, ties)


def test_simpy_scheduler_equals_heap_oracle_with_small_chunks():
    """Chunked batch generation (lazy, across trace chunks) changes nothing either."""
    for seed in range(4):
        arch = contention_arch(seed)
        wl = random_workload(500 + seed, images=7, max_channels=4, size=4)
        new, old, _ = run_both(arch, wl, chunk_images=arch.images_per_batch)
        assert_identical(new, old, f"seed {seed}")


def test_tie_rule_same_cycle_requests_go_to_lowest_index():
    """Identical images on 3 accelerators with resident weights: loads at cycle 0 served 0, 1, 2."""
    arch = contention_arch(0)
    arch_sets = [
        "accelerators=3",
        "images_per_batch=1",
        "global_buffers.weight.bytes=1000000",
        "dram.latency_cycles=50",
        "dram.bytes_per_cycle=1",
        "dram.arbitration=fifo",
    ]
    arch = load_arch(ROOT / "archs" / "atsn16x16.yaml", arch_sets + ["array.rows=2", "array.cols=3"])
    wl = random_workload(7, images=6, max_channels=3, size=4)
    new, old, sched = run_both(arch, wl)
    assert_identical(new, old, "tie case")
    start = new.counters()["images"]["start_cycle"]
    load = 50 + new.mapping["total_weight_bytes"]
    assert start[:3] == [load, 2 * load, 3 * load]
    assert new.counters()["images"]["accelerator"][:3] == [0, 1, 2]
    assert sched.ties >= 2  # the two later weight loads tie with acc 0's at cycle 0


STATISTICAL = ["vgg16_cifar10.npz", "vgg16_cifar100.npz", "resnet19_cifar10.npz", "resnet19_cifar100.npz"]


@pytest.mark.slow
@pytest.mark.parametrize("name", STATISTICAL)
def test_simpy_scheduler_equals_heap_oracle_on_shipped_workloads(name):
    """The 4 shipped statistical workloads, 40 images on archs/atsn16x16.yaml (fifo): byte-identical JSON."""
    arch = load_arch(ROOT / "archs" / "atsn16x16.yaml", ["dram.arbitration=fifo"])
    wl = read_workload(ROOT / "workloads" / name)
    new, old, sched = run_both(arch, wl, 40)
    assert_identical(new, old, name)
    assert sched.transactions > 0


# ------------------------------------------------------------------------------------------
# the scheduler alone, on synthetic programs with tiny delays: same-cycle ties everywhere
# ------------------------------------------------------------------------------------------
def fake_model(latency: int, bpc: int, resident: bool, weight_bytes: int, groups: int = 3, pes: int = 2,
               images_per_batch: int = 1):
    """The few fields of engine_model.EngineModel that the schedulers read."""
    dram = SimpleNamespace(latency_cycles=latency, bytes_per_cycle=bpc, arbitration="fifo")
    mapping = SimpleNamespace(weights_resident=resident, total_weight_bytes=weight_bytes)
    arch = SimpleNamespace(dram=dram, images_per_batch=images_per_batch)
    # membranes move at most 2 B per cycle (a narrow mesh link) when the channel is faster (hardware model 7)
    return SimpleNamespace(arch=arch, groups=[None] * groups, P=pes, mapping=mapping, membrane_bpc=min(bpc, 2))


def fake_work(rng, images, ops, tail: int, groups: int = 3, pes: int = 2) -> BatchWork:
    """A batch with the given program and random timing-independent totals."""
    n = len(ACTIONS)
    return BatchWork(
        images=np.asarray(images, dtype=np.int64),
        exit_t=np.ones(len(images), dtype=np.int64),
        ops=ops,
        tail=tail,
        counts=rng.integers(0, 5, n),
        pe_busy=rng.integers(0, 5, pes),
        pe_stall_input=rng.integers(0, 5, pes),
        local_stall_memory=int(rng.integers(5)),
        exit_busy=int(rng.integers(5)),
        exit_stall_input=int(rng.integers(5)),
        group_local=rng.integers(0, 5, groups),
        group_counts=rng.integers(0, 5, (groups, n)),
        group_busy=rng.integers(0, 5, groups),
    )


def synthetic_case(seed: int):
    """(model, accelerators, images, batches): 2-4 accelerators, 0-3 cycle phases, 1-8 B transactions."""
    rng = np.random.default_rng(seed)
    latency, bpc = int(rng.choice([0, 1, 2, 5])), int(rng.choice([1, 2, 8]))
    resident, weight_bytes = bool(rng.integers(2)), int(rng.integers(1, 6))
    images, per = int(rng.integers(3, 15)), int(rng.integers(1, 4))
    model = fake_model(latency, bpc, resident, weight_bytes, images_per_batch=per)
    works = []
    for lo in range(0, images, per):
        batch = list(range(lo, min(images, lo + per)))
        ops = []
        prefetches = awaited = 0
        for img in rng.permutation(batch):
            for _ in range(int(rng.integers(0, 5))):
                kind = int(rng.choice([DRAM_READ, DRAM_WRITE, PREFETCH, AWAIT, MEMBRANE_READ, MEMBRANE_WRITE]))
                if kind == AWAIT and awaited == prefetches:
                    kind = PREFETCH
                value = awaited if kind == AWAIT else int(rng.integers(1, 9))
                awaited += kind == AWAIT
                prefetches += kind == PREFETCH
                ops.append((int(rng.choice([0, 0, 1, 2, 3])), kind, value, int(rng.integers(3))))
            ops.append((int(rng.choice([0, 1, 2])), MARK, int(img), 2))
        ops += [(int(rng.choice([0, 1])), AWAIT, h, 0) for h in range(awaited, prefetches)]
        works.append(fake_work(rng, batch, ops, int(rng.choice([0, 0, 1, 3]))))
    return model, int(rng.integers(2, 5)), images, works


def scheduler_state(s) -> list:
    """Everything SimResult.build reads from a scheduler, plus DRAM busy cycles and setup counts."""
    out = [s.finish, s.start_cycle, s.end_cycle, s.accelerator, s.exit_t, s.group_cycles, s.group_counts]
    out += [s.group_busy, s.setup_counts, [s.dram_busy]]
    for tot in s.totals:
        out += [tot.busy, tot.stall_input, [tot.stall_memory, tot.exit_busy, tot.exit_stall_input], tot.counts]
    return [np.asarray(x).tolist() for x in out]


def run_scheduler(cls, model, accelerators: int, images: int, works):
    """Run one scheduler class over ``works``; return it."""
    s = cls(model, accelerators, images, 0)
    s.run(iter(works))
    return s


def test_simpy_scheduler_equals_heap_oracle_on_synthetic_programs():
    """400 random programs with 0-3 cycle phases and 0-5 cycle latency: same state as the oracle."""
    for seed in range(400):
        model, accelerators, images, works = synthetic_case(seed)
        new = run_scheduler(engine.Scheduler, model, accelerators, images, works)
        old = run_scheduler(HeapSchedulerOracle, model, accelerators, images, works)
        assert scheduler_state(new) == scheduler_state(old), f"seed {seed}"


def test_dispatch_at_a_cycle_precedes_dram_arbitration_at_that_cycle():
    """A batch handed out at cycle c requests DRAM at c and beats a higher-index request made at c.

    Latency 0, 1 B/cycle. acc 0: batch 0 = read 1 B at 0 (0..1), done at 3. acc 1: batch 1 = read 1 B at 0
    (waits, 1..2), then read 1 B at 3. At cycle 3 acc 0 gets batch 2, whose first op reads 4 B at once: the
    request (3, acc 0) precedes (3, acc 1), so acc 0 is served 3..7 and acc 1 7..8. An arbiter that decided
    before the dispatch at cycle 3 had taken effect would serve acc 1 first (3..4, acc 0 4..8).
    """
    rng = np.random.default_rng(0)
    works = [
        fake_work(rng, [0], [(0, DRAM_READ, 1, 0), (2, MARK, 0, 2)], 0),
        fake_work(rng, [1], [(0, DRAM_READ, 1, 0), (1, DRAM_READ, 1, 1), (0, MARK, 1, 2)], 0),
        fake_work(rng, [2], [(0, DRAM_READ, 4, 0), (0, MARK, 2, 2)], 0),
    ]
    model = fake_model(0, 1, False, 1)
    new = run_scheduler(engine.Scheduler, model, 2, 3, works)
    old = run_scheduler(HeapSchedulerOracle, model, 2, 3, works)
    assert new.start_cycle.tolist() == [0, 0, 3] and new.accelerator.tolist() == [0, 1, 0]
    assert new.end_cycle.tolist() == [3, 8, 7]
    assert scheduler_state(new) == scheduler_state(old)
