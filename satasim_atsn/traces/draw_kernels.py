"""Numba kernels of the statistical draw: the pooled windows of a layer whose max-pooled map is drawn first.

The draw order and the conditional-rate construction are docs/statistical.md's; this kernel only
applies them without numpy temporaries (a full-width VGG16 image draws about 1.3 M uniforms, and the
broadcast version spent more time building window arrays than the generator spent drawing).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from satasim_atsn.runtime import kernel_cache

CACHE = kernel_cache()  # cache the machine code on disk where a writable place exists (runtime.kernel_cache)


@njit(cache=CACHE, nogil=True)
def window_core(i: int, windows: int, kernel: int, stride: int) -> tuple[int, int]:
    """[lo, hi) of the rows (or columns) that window i of ``windows`` covers and no neighbour does."""
    lo = i * stride
    hi = lo + kernel
    if i > 0:
        lo = max(lo, (i - 1) * stride + kernel)
    if i < windows - 1:
        hi = min(hi, (i + 1) * stride)
    return lo, hi


@njit(cache=CACHE, nogil=True)
def apply_pooled_windows(
    u: np.ndarray,
    threshold: np.ndarray,
    channels: int,
    height: int,
    width: int,
    pooled_height: int,
    pooled_width: int,
    kernel: int,
    stride: int,
    pool_lo: int,
    choice_lo: int,
    spikes: np.ndarray,
) -> None:
    """Make the windows of ``spikes`` [e, C*H*W] (each neuron's own draw) agree with the drawn pooled map.

    Per timestep t < e, pooled neuron m is active iff ``u[t, pool_lo + m] < threshold[t, pool_lo + m]``.
    Every neuron of an inactive window is cleared (a neuron that several windows share fires only if all of them
    are active); then each active window spikes at its forced position ``min(int(u[t, choice_lo + m] * n), n - 1)``
    (the float32 product, as numpy computes it), row-major among its core: the n neurons no other window covers
    (its whole window when windows tile or leave gaps; kernel < 2 x stride keeps it non-empty), so no other window
    clears it. The OR of every window is then exactly the pooled map; neurons outside the windows keep their draw.
    """
    for t in range(spikes.shape[0]):
        ut = u[t]
        th = threshold[t]
        row = spikes[t]
        for c in range(channels):
            for i in range(pooled_height):
                for jx in range(pooled_width):
                    m = (c * pooled_height + i) * pooled_width + jx
                    if ut[pool_lo + m] < th[pool_lo + m]:
                        continue
                    corner = (c * height + i * stride) * width + jx * stride
                    for dy in range(kernel):
                        at = corner + dy * width
                        for dx in range(kernel):
                            row[at + dx] = False
            for i in range(pooled_height):
                r0, r1 = window_core(i, pooled_height, kernel, stride)
                for jx in range(pooled_width):
                    m = (c * pooled_height + i) * pooled_width + jx
                    if not ut[pool_lo + m] < th[pool_lo + m]:
                        continue
                    c0, c1 = window_core(jx, pooled_width, kernel, stride)
                    nc = c1 - c0
                    core = (r1 - r0) * nc
                    forced = min(np.int64(ut[choice_lo + m] * np.float32(core)), core - 1)
                    row[(c * height + r0 + forced // nc) * width + c0 + forced % nc] = True


@njit(cache=CACHE, nogil=True)
def apply_pooled_rows(
    u: np.ndarray,
    pool_threshold: np.ndarray,
    q: np.ndarray,
    rows: np.ndarray,
    band_spikes: np.ndarray,
    kernel: int,
    pool_lo: int,
    choice_lo: int,
    layer_lo: int,
    spikes: np.ndarray,
) -> None:
    """One image's spikes [e, C*H*W] of a layer drawn with its max-pool whose k x k windows tile the map, from the row
    profiles of both (docs/statistical.md, step 4): per timestep t < e, window (c, i, j) is active iff
    ``u[t, pool_lo + m] < pool_threshold[t, c, i]``; inside an active window a neuron of row y spikes if
    ``u[t, layer_lo + n] < q[t, c, y]`` or it is the chosen one, inside an inactive window it is silent. The choice
    is the first position p (row-major) whose cumulative weight exceeds ``u[t, choice_lo + m] * k * S``, position
    (d, x) weighing ``rows[t, c, i*k + d]`` and S = ``band_spikes[t, c, i]``, their sum over d: in float64 the
    product of a float32 uniform (24 bits) and an integer below 2^29 is exact, so the choice is too.
    """
    channels, height, pooled_height = q.shape[1], q.shape[2], pool_threshold.shape[2]
    width = spikes.shape[1] // (channels * height)
    pooled_width = width // kernel
    for t in range(spikes.shape[0]):
        ut = u[t]
        row = spikes[t]
        for c in range(channels):
            for i in range(pooled_height):
                thr = pool_threshold[t, c, i]
                total = np.float64(kernel * band_spikes[t, c, i])
                for jx in range(pooled_width):
                    m = (c * pooled_height + i) * pooled_width + jx
                    active = ut[pool_lo + m] < thr
                    for dy in range(kernel):
                        y = i * kernel + dy
                        qy = q[t, c, y]
                        at = (c * height + y) * width + jx * kernel
                        for dx in range(kernel):
                            row[at + dx] = active and ut[layer_lo + at + dx] < qy
                    if not active:
                        continue
                    target = np.float64(ut[choice_lo + m]) * total
                    cum = 0
                    forced = kernel * kernel - 1
                    for p in range(kernel * kernel):
                        cum += rows[t, c, i * kernel + p // kernel]
                        if target < cum:
                            forced = p
                            break
                    row[(c * height + i * kernel + forced // kernel) * width + jx * kernel + forced % kernel] = True
