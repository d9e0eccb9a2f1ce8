"""Split independent per-item work (images of a draw) into contiguous ranges run by a few threads.

Why: the statistical draw spends its time in numpy's random fills and comparisons and in a numba kernel,
all of which release the GIL, but one image after another on one core; the fold recurrence after it
already uses every core. Each range writes only its own items' rows, so the result does not depend on
the number of threads or on their timing (docs/kernels.md, "Session 11").
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

MIN_ITEMS_PER_THREAD = 4  # below this a thread costs more than it saves


def thread_budget() -> int:
    """The threads a command may use: numba's count (``NUMBA_NUM_THREADS``, or ``numba.set_num_threads``)."""
    import numba

    return max(1, int(numba.get_num_threads()))


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask (a container's cpuset), as numba counts them.

    ``os.cpu_count()`` is the host's count, which on a large shared machine would start dozens of
    worker processes on the two CPUs a job was given.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity masks (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def share_threads_with(workers: int) -> int:
    """numba threads for each of ``workers`` processes running at once: at most twice this process's budget in all.

    Workers that each kept the whole budget would run workers x budget threads on budget CPUs (4,096 on a 64-CPU
    machine); an even split (budget / workers each) leaves CPUs idle while the last worker finishes alone, which
    cost a 3-architecture compare on 2 CPUs 10%. Twice the even split keeps both small.
    """
    budget = thread_budget()
    return max(1, min(budget, 2 * budget // max(1, workers)))


#: DESIGN section 9's thread policy: OpenMP (numba's kernels) and OpenBLAS threads wait passively, not spinning
THREAD_POLICY = {"OMP_WAIT_POLICY": "passive", "OPENBLAS_THREAD_TIMEOUT": "4"}


def apply_thread_policy() -> None:
    """Set THREAD_POLICY in this process's environment (a user's own setting wins); a no-op once OpenMP has started.

    GNU OpenMP reads ``OMP_WAIT_POLICY`` once, when numba's first parallel kernel loads it, so a worker process
    must call this before it runs a kernel (or ``numba.set_num_threads``). The ``satasim`` command sets it before
    anything loads and local workers inherit it, but a Dask worker started by ``dask worker`` had it unset: its
    OpenMP threads spun against each other's (two workers of one thread on 2 CPUs: a sweep of 60 small points
    took 36 s instead of 5 s; no result depends on it)."""
    for name, value in THREAD_POLICY.items():
        os.environ.setdefault(name, value)


def set_worker_threads(threads: int) -> None:
    """Initialiser of a worker process: use ``threads`` numba threads (at most the process's maximum)."""
    import numba

    numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def in_threads(work: Callable[[int, int], None], count: int, threads: int | None = None) -> None:
    """Call ``work(first, stop)`` on contiguous ranges covering [0, count), one range per thread.

    ``threads`` defaults to :func:`thread_budget`; with one thread (or few items) it is one plain call in
    the caller's thread. An exception in any range is raised here after every range has ended.
    """
    n = min(threads or thread_budget(), count // MIN_ITEMS_PER_THREAD)
    if n <= 1:
        work(0, count)
        return
    bounds = [count * i // n for i in range(n + 1)]
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="satasim") as pool:
        futures = [pool.submit(work, bounds[i], bounds[i + 1]) for i in range(n)]
    for future in futures:
        future.result()


__all__ = ["apply_thread_policy", "THREAD_POLICY",
           "in_threads", "thread_budget", "usable_cpus", "share_threads_with", "set_worker_threads",
           "MIN_ITEMS_PER_THREAD"]
