"""Work split over threads gives the same bits as one thread (session 11's speed-ups of the run).

The statistical draw runs image ranges in a few threads (satasim_atsn/threads.py); the engine's
counting kernels run rows in numba's parallel loops. Each must equal its one-thread (or numpy) formula
exactly, for any thread count, including rows that deliver nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from test_statistical import _naive_draw, _small_statistical

from satasim_atsn.hw import kernels
from satasim_atsn.study.runner import process_pool
from satasim_atsn.threads import MIN_ITEMS_PER_THREAD, in_threads, share_threads_with, thread_budget, usable_cpus
from satasim_atsn.traces.statistical_draw import draw_trace


@pytest.mark.parametrize("count", [0, 1, 7, 8, 13, 100])
@pytest.mark.parametrize("threads", [1, 2, 3, 5])
def test_in_threads_covers_every_item_once(count, threads):
    seen = np.zeros(count, dtype=np.int64)
    ranges = []

    def work(first: int, stop: int) -> None:
        ranges.append((first, stop, threading.current_thread() is threading.main_thread()))
        seen[first:stop] += 1

    in_threads(work, count, threads)
    assert (seen == 1).all()
    expected = max(1, min(threads, count // MIN_ITEMS_PER_THREAD))
    assert len(ranges) == expected  # one range per thread
    assert all(in_caller == (expected == 1) for _, _, in_caller in ranges)  # a single range: no thread


def test_in_threads_raises_a_range_error_after_every_range_ended():
    done = []

    def work(first: int, stop: int) -> None:
        if first == 0:
            raise ValueError("bad range")
        done.append((first, stop))

    with pytest.raises(ValueError, match="bad range"):
        in_threads(work, 40, 4)
    assert sorted(done) == [(10, 20), (20, 30), (30, 40)]


@pytest.mark.parametrize("encoding", ["direct", "spike_frames"])
def test_draw_trace_is_the_same_for_any_thread_count(encoding):
    wl = _small_statistical(per_channel=True, encoding=encoding)
    ref = draw_trace(wl, "dtsnn", 3, 17, threads=1)
    for threads in (2, 3, 4):
        other = draw_trace(wl, "dtsnn", 3, 17, threads=threads)
        np.testing.assert_array_equal(other.exit_t, ref.exit_t)
        np.testing.assert_array_equal(other.inputs, ref.inputs)
        assert set(other.spikes) == set(ref.spikes)
        for name in ref.spikes:
            np.testing.assert_array_equal(other.spikes[name], ref.spikes[name], err_msg=name)
    for j in (0, 8, 16):  # and both are the documented draw, image by image
        exit_t, inputs, spikes = _naive_draw(wl, "dtsnn", 3 + j)
        assert ref.exit_t[j] == exit_t
        np.testing.assert_array_equal(ref.inputs[j], inputs)
        for name, expected in spikes.items():
            np.testing.assert_array_equal(ref.spikes[name][j], expected, err_msg=name)


def _random_rows(rows: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    spikes = (rng.random((rows, size)) < rng.uniform(0.0, 0.5, size=(rows, 1))).astype(np.uint8)
    spikes[rng.random(rows) < 0.2] = 0  # rows without a spike
    valid = (rng.random(rows) < 0.8).astype(np.uint8)
    return spikes, valid


@pytest.mark.parametrize("mode", [0, 1, 2])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spike_positions_equal_a_numpy_compaction(mode, seed):
    positions = 12
    spikes, valid = _random_rows(37, 5 * positions, seed)
    counts = np.where(valid != 0, (spikes != 0).sum(axis=1), 0).astype(np.int64)
    offset = 100
    expected = []
    for j in range(spikes.shape[0]):
        if valid[j]:
            q = np.flatnonzero(spikes[j])
            expected.append(offset + (q % positions if mode == 0 else (0 * q if mode == 1 else q)))
    expected = np.concatenate(expected).astype(np.uint32)
    got = kernels.spike_positions(spikes, valid, counts, mode, positions, offset)
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got, expected)
    wrong = counts.copy()
    j = int(np.flatnonzero(counts)[0])
    wrong[j] -= 1
    wrong[int(np.flatnonzero(counts)[-1])] += 1  # same total, wrong rows
    with pytest.raises(ValueError, match="counts do not match"):
        kernels.spike_positions(spikes, valid, wrong, mode, positions, offset)


@pytest.mark.parametrize("seed", [0, 1])
def test_counting_kernels_equal_numpy(seed):
    channels, positions = 4, 9
    spikes, valid = _random_rows(29, channels * positions, seed)
    keep = valid[:, None] != 0
    per_position = spikes.reshape(29, channels, positions).sum(axis=1) * keep
    np.testing.assert_array_equal(kernels.position_counts(spikes, channels, positions, valid), per_position)
    offsets = np.array([0, 5, 5, 17, 30, 36], dtype=np.int64)
    blocks = np.stack([spikes[:, a:b].sum(axis=1) for a, b in zip(offsets[:-1], offsets[1:], strict=True)],
                      axis=1) * keep
    np.testing.assert_array_equal(kernels.block_counts(spikes, offsets, valid), blocks)

    # class loads: counts @ (costs | coverage | matrix) through a CSR, rows into distinct targets
    rng = np.random.default_rng(seed)
    ncls, offset = 6, 3
    vp_ptr = np.concatenate([[0], np.cumsum(rng.integers(0, 4, size=offset + positions))]).astype(np.int64)
    vp_cls = rng.integers(0, ncls, size=vp_ptr[-1]).astype(np.uint32)
    vp_cost = rng.integers(1, 5, size=vp_ptr[-1]).astype(np.int64)
    matrix = rng.integers(0, 7, size=(positions, 3)).astype(np.int64)
    src = np.flatnonzero(valid)
    target = src[::-1].copy() * 2
    rows = 2 * 29
    cyc, dlv_cls = np.zeros((rows, ncls), np.int64), np.zeros((rows, ncls), np.int64)
    dlv, acc, hops = (np.zeros(rows, np.int64) for _ in range(3))
    kernels.class_loads(per_position, src, target, offset, vp_ptr, vp_cls, vp_cost, matrix, cyc, dlv_cls, dlv, acc,
                        hops)
    cost_table = np.zeros((positions, ncls), np.int64)
    cover_table = np.zeros((positions, ncls), np.int64)
    for q in range(positions):
        for e in range(vp_ptr[offset + q], vp_ptr[offset + q + 1]):
            cost_table[q, vp_cls[e]] += vp_cost[e]
            cover_table[q, vp_cls[e]] += 1
    np.testing.assert_array_equal(cyc[target], per_position[src] @ cost_table)
    np.testing.assert_array_equal(dlv_cls[target], per_position[src] @ cover_table)
    np.testing.assert_array_equal(np.stack([dlv, acc, hops], axis=1)[target], per_position[src] @ matrix)
    untouched = np.setdiff1d(np.arange(rows), target)
    assert not cyc[untouched].any() and not dlv[untouched].any()


def test_run_json_is_the_same_bytes_for_any_thread_count(tmp_path):
    """A whole `satasim run` of a statistical workload (threaded draw, parallel kernels) with 1 and 3 threads."""
    root = Path(__file__).resolve().parents[1]
    outputs = []
    for threads in (1, 3):
        out = tmp_path / f"run{threads}.json"
        env = dict(os.environ, NUMBA_NUM_THREADS=str(threads))
        subprocess.run(
            [sys.executable, "-m", "satasim_atsn", "run", str(root / "archs/atsn16x16.yaml"),
             str(root / "workloads/vgg16_cifar10.npz"), "--images", "16", "--quiet", "--json", str(out)],
            check=True, env=env, cwd=tmp_path, capture_output=True,
        )
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def _worker_threads(_: int) -> int:
    import numba

    return int(numba.get_num_threads())


def test_default_workers_follow_the_affinity_mask_not_the_host():
    """Sweeps and compares start one worker per CPU this process may use (a container's cpuset), not per
    host CPU (os.cpu_count()), and the workers split this process's numba threads between them."""
    if hasattr(os, "sched_getaffinity"):
        assert usable_cpus() == len(os.sched_getaffinity(0))
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)
    budget = thread_budget()
    assert share_threads_with(1) == budget and share_threads_with(2 * budget + 1) == 1
    assert share_threads_with(2) == budget and share_threads_with(4) == max(1, budget // 2)
    workers = 4 * budget  # more workers than CPUs: one thread each, not numba's default of one per CPU
    with process_pool(workers) as pool:
        seen = set(pool.map(_worker_threads, range(workers)))
    assert seen == {1}
