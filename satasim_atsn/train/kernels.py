"""numba kernels for the trainer's element-wise hot spots: the LIF time loop, 2x2 spike max-pooling, col2im, tdBN.

They compute the same thing as the numpy reference code in ``layers.py`` (tests compare them),
in one pass over memory instead of several temporaries per timestep; the tdBN ones do numpy's
float32 operations in numpy's order, so that training stays bit-identical.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from satasim_atsn.runtime import kernel_cache

CACHE = kernel_cache()  # cache the machine code on disk where a writable place exists (runtime.kernel_cache)


@njit(parallel=True, cache=CACHE, fastmath=False)
def lif_forward_kernel(cur: np.ndarray, static: bool, us: np.ndarray, ss: np.ndarray, tau: float,
                       vth: float) -> None:  # pragma: no cover - compiled
    """u_t = tau*u_{t-1}*(1-s_{t-1}) + I_t; s_t = u_t > vth, over flat neurons; writes us, ss [T, M]."""
    T, M = us.shape
    tau32 = np.float32(tau)
    for i in prange(M):
        u = np.float32(0.0)
        s = np.float32(0.0)
        for t in range(T):
            current = cur[0, i] if static else cur[t, i]
            u = tau32 * u * (np.float32(1.0) - s) + current
            s = np.float32(1.0) if u > vth else np.float32(0.0)
            us[t, i] = u
            ss[t, i] = s


@njit(parallel=True, cache=CACHE, fastmath=False)
def lif_backward_kernel(grad: np.ndarray, us: np.ndarray, ss: np.ndarray, tau: float, vth: float,
                        static: bool, gi: np.ndarray) -> None:  # pragma: no cover - compiled
    """BPTT with the triangle surrogate; gi is [T, M], or [1, M] summed over time for a static current."""
    T, M = us.shape
    tau32 = np.float32(tau)
    vth32 = np.float32(vth)
    for i in prange(M):
        gu_next = np.float32(0.0)
        acc = np.float32(0.0)
        for t in range(T - 1, -1, -1):
            u = us[t, i]
            sg = np.float32(1.0) - abs(u - vth32) / vth32
            if sg < 0:
                sg = np.float32(0.0)
            gs = grad[t, i] - gu_next * tau32 * u
            gu = gs * sg + gu_next * tau32 * (np.float32(1.0) - ss[t, i])
            if static:
                acc += gu
            else:
                gi[t, i] = gu
            gu_next = gu
        if static:
            gi[0, i] = acc


@njit(parallel=True, cache=CACHE)
def maxpool2_forward_kernel(x: np.ndarray, out: np.ndarray, arg: np.ndarray) -> None:  # pragma: no cover
    """2x2 stride-2 max-pooling of x [N, H, W, C]; arg holds the first maximal window position (0..3)."""
    N, Ho, Wo, C = out.shape
    for n in prange(N):
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    best = x[n, 2 * i, 2 * j, c]
                    pos = 0
                    v = x[n, 2 * i, 2 * j + 1, c]
                    if v > best:
                        best, pos = v, 1
                    v = x[n, 2 * i + 1, 2 * j, c]
                    if v > best:
                        best, pos = v, 2
                    v = x[n, 2 * i + 1, 2 * j + 1, c]
                    if v > best:
                        best, pos = v, 3
                    out[n, i, j, c] = best
                    arg[n, i, j, c] = pos


@njit(parallel=True, cache=CACHE)
def maxpool2_backward_kernel(grad: np.ndarray, arg: np.ndarray, dx: np.ndarray) -> None:  # pragma: no cover
    """Route each pooled gradient to its window's first maximum (dx must be zeroed)."""
    N, Ho, Wo, C = grad.shape
    for n in prange(N):
        for i in range(Ho):
            for j in range(Wo):
                for c in range(C):
                    pos = arg[n, i, j, c]
                    dx[n, 2 * i + pos // 2, 2 * j + pos % 2, c] = grad[n, i, j, c]


@njit(parallel=True, cache=CACHE)
def col2im_kernel(cols: np.ndarray, kernel: int, stride: int, padding: int,
                  dx: np.ndarray) -> None:  # pragma: no cover - compiled
    """Adjoint of ``snn.kernels.im2col_into``: scatter-add cols into dx [N, H, W, C] (dx must be zeroed).

    Each dx element receives its terms in (ki, kj) order, as the numpy version adds them, so the
    float32 sums are bitwise equal.
    """
    N, H, W, C = dx.shape
    Ho = (H + 2 * padding - kernel) // stride + 1
    Wo = (W + 2 * padding - kernel) // stride + 1
    for n in prange(N):
        for ki in range(kernel):
            for kj in range(kernel):
                base = (ki * kernel + kj) * C
                for i in range(Ho):
                    y = i * stride + ki - padding
                    if y < 0 or y >= H:
                        continue
                    for j in range(Wo):
                        xx = j * stride + kj - padding
                        if xx < 0 or xx >= W:
                            continue
                        row = (n * Ho + i) * Wo + j
                        for c in range(C):
                            dx[n, y, xx, c] += cols[row, base + c]


@njit(parallel=True, cache=CACHE, fastmath=False)
def bn_center_kernel(x: np.ndarray, mean: np.ndarray, xc: np.ndarray) -> None:  # pragma: no cover - compiled
    """xc = x - mean over rows of [M, C] (numpy's float32 subtraction, element by element)."""
    M, C = x.shape
    for i in prange(M):
        for j in range(C):
            xc[i, j] = x[i, j] - mean[j]


@njit(parallel=True, cache=CACHE, fastmath=False)
def bn_scale_shift_kernel(xc: np.ndarray, inv: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                          xhat: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """xhat = xc * inv; out = xhat * gamma + beta, each product and sum rounded to float32 as numpy does.

    ``xhat`` may be ``xc`` itself (each element is read before it is written).
    """
    M, C = xc.shape
    for i in prange(M):
        for j in range(C):
            h = xc[i, j] * inv[j]
            xhat[i, j] = h
            p = h * gamma[j]
            out[i, j] = p + beta[j]


@njit(parallel=True, cache=CACHE, fastmath=False)
def bn_backward_kernel(g: np.ndarray, xhat: np.ndarray, coef: np.ndarray, m32: np.float32, dbeta: np.ndarray,
                       dgamma: np.ndarray, dx: np.ndarray) -> None:  # pragma: no cover - compiled
    """dx = coef * ((m*g - dbeta) - xhat*dgamma), numpy's order and float32 rounding; ``dx`` may be ``g``."""
    M, C = g.shape
    for i in prange(M):
        for j in range(C):
            a = m32 * g[i, j]
            a = a - dbeta[j]
            b = xhat[i, j] * dgamma[j]
            dx[i, j] = coef[j] * (a - b)


LIF_BLOCK = 4096  # neurons per block of bn_lif_forward_kernel: u and s of a block stay in cache across t


@njit(parallel=True, cache=CACHE, fastmath=False)
def bn_lif_forward_kernel(xc: np.ndarray, inv: np.ndarray, gamma: np.ndarray, beta: np.ndarray, us: np.ndarray,
                          ss: np.ndarray, tau: float, vth: float) -> None:  # pragma: no cover - compiled
    """tdBN's last step fused into :func:`lif_forward_kernel` (time-varying current only).

    xc [T, P, C] (x - mean) becomes xhat = xc * inv in place; the current xhat * gamma + beta feeds
    u_t = tau*u_{t-1}*(1-s_{t-1}) + I_t, s_t = u_t > vth into us, ss [T, P, C]. Every value is
    computed by the same float32 operations, in the same order, as the unfused kernels; the loop
    runs t inside blocks of neurons so that the inner loop over channels vectorises.
    """
    T, P, C = xc.shape
    tau32 = np.float32(tau)
    pblock = max(1, LIF_BLOCK // C)
    for b in prange((P + pblock - 1) // pblock):
        lo = b * pblock
        hi = min(lo + pblock, P)
        for t in range(T):
            for p in range(lo, hi):
                for c in range(C):
                    h = xc[t, p, c] * inv[c]
                    xc[t, p, c] = h
                    current = h * gamma[c] + beta[c]
                    if t == 0:
                        u = np.float32(0.0)
                        s = np.float32(0.0)
                    else:
                        u = us[t - 1, p, c]
                        s = ss[t - 1, p, c]
                    u = tau32 * u * (np.float32(1.0) - s) + current
                    us[t, p, c] = u
                    ss[t, p, c] = np.float32(1.0) if u > vth else np.float32(0.0)



@njit(cache=CACHE, fastmath=False)
def column_sums_kernel(x: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """numpy's float32 ``x.sum(axis=0)`` of a C-contiguous x [M, C] with C >= 2: each column from 0.0, rows in order.

    (numpy reduces the outer axis of such an array by adding whole rows element-wise; a single
    column, C = 1, is summed pairwise instead, so callers keep numpy for it.)
    """
    M, C = x.shape
    for j in range(C):
        out[j] = np.float32(0.0)
    for i in range(M):
        for j in range(C):
            out[j] += x[i, j]
