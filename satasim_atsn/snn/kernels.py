"""Numba kernels of the integer forward (the trainer shares the im2col): im2col straight into the GEMM's dtype,
and conv output -> LIF fused.

They compute exactly what the numpy formulation in ``forward.py`` computes (tests compare them);
they exist because the numpy version spent most of its time in copies, casts and transposes
around the GEMM rather than in the GEMM.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def im2col_into(x: np.ndarray, kernel: int, stride: int, padding: int, pad_value: np.ndarray,
                cols: np.ndarray) -> None:
    """Fill ``cols`` [n*Ho*Wo, k*k*C] from channel-last x [n, H, W, C]: rows (image, y, x), columns (ky, kx, c);
    borders get ``pad_value`` [C] (zeros for spikes; the trainer pads with the normalised black pixel)."""
    n, h, w, c = x.shape
    ho = (h + 2 * padding - kernel) // stride + 1
    wo = (w + 2 * padding - kernel) // stride + 1
    for i in prange(n):
        for oy in range(ho):
            for ox in range(wo):
                row = (i * ho + oy) * wo + ox
                for ky in range(kernel):
                    iy = oy * stride - padding + ky
                    for kx in range(kernel):
                        ix = ox * stride - padding + kx
                        base = (ky * kernel + kx) * c
                        if 0 <= iy < h and 0 <= ix < w:
                            for ch in range(c):
                                cols[row, base + ch] = x[i, iy, ix, ch]
                        else:
                            for ch in range(c):
                                cols[row, base + ch] = pad_value[ch]


@njit(cache=True, parallel=True)
def gemm_rows_lif(out: np.ndarray, bias: np.ndarray, u_base: np.ndarray, vth: np.ndarray, shifts: np.ndarray,
                  bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Conv GEMM rows [m, Cout] + bias -> one LIF step (``neurons.lif_step``) on u_base [m, Cout].

    Returns (spikes uint8, next u_base): saturate to ``bits``, spike when u > vth, reset to 0,
    otherwise the shift-add decay (sum of arithmetic right shifts).
    """
    m, cout = u_base.shape
    hi = (np.int64(1) << (bits - 1)) - 1
    lo = -hi - 1
    spikes = np.empty((m, cout), dtype=np.uint8)
    next_base = np.empty_like(u_base)
    for row in prange(m):
        for co in range(cout):
            u = u_base[row, co] + np.int64(np.rint(out[row, co])) + bias[co]
            u = min(max(u, lo), hi)
            if u > vth[co]:
                spikes[row, co] = 1
                next_base[row, co] = 0
            else:
                spikes[row, co] = 0
                d = np.int64(0)
                for k in shifts:
                    d += u >> k
                next_base[row, co] = d
    return spikes, next_base


def window_coverage(size: int, kernel: int, stride: int, padding: int) -> np.ndarray:
    """How many output windows along one axis contain each input position (int64 [size])."""
    out = (size + 2 * padding - kernel) // stride + 1
    cover = np.zeros(size, dtype=np.int64)
    for o in range(out):
        lo = o * stride - padding
        cover[max(lo, 0):max(min(lo + kernel, size), 0)] += 1
    return cover
