"""Numba kernels of the integer forward (the trainer shares the im2col): event-driven spike convs with the
LIF fused, the direct-input layer's integer conv and LIF, a counted max-pool, and the GEMM path's im2col
straight into the GEMM's dtype with conv output -> LIF fused.

They compute exactly what the numpy formulation in ``forward.py`` / ``neurons.py`` computes (tests
compare them). A spike conv sums only the weight rows of the spikes (int32, exact), so its work
follows the spike count; docs/kernels.md has the measurements.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from satasim_atsn.runtime import kernel_cache

CACHE = kernel_cache()  # cache the machine code on disk where a writable place exists (runtime.kernel_cache)


@njit(cache=CACHE, nogil=True, parallel=True)
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


@njit(cache=CACHE, nogil=True, parallel=True)
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


@njit(cache=CACHE, nogil=True, parallel=True)
def spike_conv_lif(x: np.ndarray, w: np.ndarray, bias: np.ndarray, u_base: np.ndarray, vth: np.ndarray,
                   shifts: np.ndarray, bits: int, kernel: int, stride: int, padding: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A conv on 0/1 spikes x [n, H, W, C] with integer weights w [k, k, C, Cout], + bias, -> one LIF step.

    Event-driven: each output accumulates (in int32, exact while k*k*C*max|w| < 2**31) the weight
    rows of the spikes in its window only, so the work scales with the spike count rather than
    with the dense MACs. u_base [n, Ho, Wo, Cout]; the LIF is ``gemm_rows_lif``'s.
    Returns (spikes uint8, next u_base, synaptic ops [n] as ``conv_sops``, spikes fired [n]).
    """
    n, h, width, c = x.shape
    cout = w.shape[3]
    ho = (h + 2 * padding - kernel) // stride + 1
    wo = (width + 2 * padding - kernel) // stride + 1
    hi = (np.int64(1) << (bits - 1)) - 1
    lo = -hi - 1
    spikes = np.empty((n, ho, wo, cout), dtype=np.uint8)
    next_base = np.empty_like(u_base)
    sops = np.zeros(n, dtype=np.int64)
    fired = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        active = np.empty((h * width, c), dtype=np.int32)  # per input position: its spiking channels
        count = np.zeros(h * width, dtype=np.int64)
        for iy in range(h):
            for ix in range(width):
                pos = iy * width + ix
                m = 0
                for ch in range(c):
                    if x[i, iy, ix, ch] != 0:
                        active[pos, m] = ch
                        m += 1
                count[pos] = m
        acc = np.empty(cout, dtype=np.int32)
        ops = np.int64(0)
        nfired = np.int64(0)
        for oy in range(ho):
            for ox in range(wo):
                acc[:] = 0
                for ky in range(kernel):
                    iy = oy * stride - padding + ky
                    if iy < 0 or iy >= h:
                        continue
                    for kx in range(kernel):
                        ix = ox * stride - padding + kx
                        if ix < 0 or ix >= width:
                            continue
                        pos = iy * width + ix
                        ops += count[pos]
                        for j in range(count[pos]):
                            ch = active[pos, j]
                            for co in range(cout):
                                acc[co] += w[ky, kx, ch, co]
                for co in range(cout):
                    u = u_base[i, oy, ox, co] + np.int64(acc[co]) + bias[co]
                    u = min(max(u, lo), hi)
                    if u > vth[co]:
                        spikes[i, oy, ox, co] = 1
                        next_base[i, oy, ox, co] = 0
                        nfired += 1
                    else:
                        spikes[i, oy, ox, co] = 0
                        d = np.int64(0)
                        for k in shifts:
                            d += u >> k
                        next_base[i, oy, ox, co] = d
        sops[i] = ops * cout
        fired[i] = nfired
    return spikes, next_base, sops, fired


@njit(cache=CACHE, nogil=True, parallel=True)
def spike_conv_s1_lif(x: np.ndarray, w_rev: np.ndarray, bias: np.ndarray, u_base: np.ndarray, vth: np.ndarray,
                      shifts: np.ndarray, bits: int, padding: int
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``spike_conv_lif`` for stride 1 and padding < k, scattering each spike's weights instead of gathering.

    w_rev [C, k, k*Cout] holds w[co, c, ky, k-1-kx] at [c, ky, kx*Cout + co]: a spike at (iy, ix, c)
    adds, for each ky, one contiguous run of k*Cout weights to row iy+k-1-ky of a padded int32
    accumulator [H+k-1, (W+k-1)*Cout], whose entry (oy+k-1-padding, ox+k-1-padding) is output (oy, ox).
    """
    n, h, width, c = x.shape
    k = w_rev.shape[1]
    cout = w_rev.shape[2] // k
    ho = h + 2 * padding - k + 1
    wo = width + 2 * padding - k + 1
    off = k - 1 - padding
    hi = (np.int64(1) << (bits - 1)) - 1
    lo = -hi - 1
    cover_y = np.zeros(h, dtype=np.int64)
    cover_x = np.zeros(width, dtype=np.int64)
    for o in range(ho):
        for j in range(k):
            if 0 <= o - padding + j < h:
                cover_y[o - padding + j] += 1
    for o in range(wo):
        for j in range(k):
            if 0 <= o - padding + j < width:
                cover_x[o - padding + j] += 1
    spikes = np.empty((n, ho, wo, cout), dtype=np.uint8)
    next_base = np.empty_like(u_base)
    sops = np.zeros(n, dtype=np.int64)
    fired = np.zeros(n, dtype=np.int64)
    run = k * cout
    for i in prange(n):
        acc = np.zeros((h + k - 1, (width + k - 1) * cout), dtype=np.int32)
        active = np.empty(c, dtype=np.int64)
        ops = np.int64(0)
        for iy in range(h):
            for ix in range(width):
                m = 0
                for ch in range(c):  # the spiking channels at (iy, ix), listed without a branch
                    active[m] = ch
                    m += x[i, iy, ix, ch] != 0
                ops += m * cover_y[iy] * cover_x[ix]
                base = ix * cout
                for a in range(m):
                    ch = active[a]
                    for ky in range(k):
                        row = iy + k - 1 - ky
                        for j in range(run):
                            acc[row, base + j] += w_rev[ch, ky, j]
        u = np.empty(cout, dtype=np.int64)
        d = np.empty(cout, dtype=np.int64)
        nfired = np.int64(0)
        for oy in range(ho):
            for ox in range(wo):
                base = (ox + off) * cout
                for co in range(cout):
                    u[co] = min(max(u_base[i, oy, ox, co] + np.int64(acc[oy + off, base + co]) + bias[co], lo), hi)
                nfired += _lif_finish(u, d, vth, shifts, spikes[i, oy, ox], next_base[i, oy, ox])
        sops[i] = ops * cout
        fired[i] = nfired
    return spikes, next_base, sops, fired


@njit(cache=CACHE, inline="always")
def _lif_finish(u: np.ndarray, d: np.ndarray, vth: np.ndarray, shifts: np.ndarray, spikes: np.ndarray,
                next_base: np.ndarray) -> int:
    """Spike where u > vth (reset to 0), else the shift-add decay of u; returns the spikes fired."""
    cout = u.shape[0]
    first = shifts[0]
    for co in range(cout):
        d[co] = u[co] >> first
    for j in range(1, shifts.shape[0]):
        sh = shifts[j]
        for co in range(cout):
            d[co] += u[co] >> sh
    fired = 0
    for co in range(cout):
        s = u[co] > vth[co]
        spikes[co] = s
        next_base[co] = 0 if s else d[co]
        fired += s
    return fired


@njit(cache=CACHE, nogil=True, parallel=True)
def current_lif(current: np.ndarray, u_base: np.ndarray, vth: np.ndarray, shifts: np.ndarray, bits: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One LIF step (``neurons.lif_step``) of integer currents [n, m, C] on u_base [n, m, C].

    Returns (spikes uint8, next u_base, spikes fired [n]); the direct-input layer's step.
    """
    n, m, cout = u_base.shape
    hi = (np.int64(1) << (bits - 1)) - 1
    lo = -hi - 1
    spikes = np.empty((n, m, cout), dtype=np.uint8)
    next_base = np.empty_like(u_base)
    fired = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        u = np.empty(cout, dtype=np.int64)
        d = np.empty(cout, dtype=np.int64)
        nfired = np.int64(0)
        for row in range(m):
            for co in range(cout):
                u[co] = min(max(u_base[i, row, co] + np.int64(current[i, row, co]), lo), hi)
            nfired += _lif_finish(u, d, vth, shifts, spikes[i, row], next_base[i, row])
        fired[i] = nfired
    return spikes, next_base, fired


@njit(cache=CACHE, nogil=True, parallel=True)
def pixel_conv(x: np.ndarray, w: np.ndarray, bias: np.ndarray, shift: int, kernel: int, stride: int,
               padding: int) -> np.ndarray:
    """(conv of pixels x [n, H, W, C] (uint8) with weights w [k, k, C, Cout] + bias) >> shift, int64 [n, Ho, Wo, Cout].

    Sums in int32, exact while k*k*C*255*max|w| < 2**31 (the caller checks); the direct-input layer.
    """
    n, h, width, c = x.shape
    cout = w.shape[3]
    ho = (h + 2 * padding - kernel) // stride + 1
    wo = (width + 2 * padding - kernel) // stride + 1
    out = np.empty((n, ho, wo, cout), dtype=np.int64)
    for i in prange(n):
        acc = np.empty(cout, dtype=np.int32)
        for oy in range(ho):
            for ox in range(wo):
                acc[:] = 0
                for ky in range(kernel):
                    iy = oy * stride - padding + ky
                    if iy < 0 or iy >= h:
                        continue
                    for kx in range(kernel):
                        ix = ox * stride - padding + kx
                        if ix < 0 or ix >= width:
                            continue
                        for ch in range(c):
                            v = np.int32(x[i, iy, ix, ch])
                            for co in range(cout):
                                acc[co] += v * w[ky, kx, ch, co]
                for co in range(cout):
                    out[i, oy, ox, co] = (np.int64(acc[co]) + bias[co]) >> shift
    return out


@njit(cache=CACHE, nogil=True, parallel=True)
def spike_maxpool_counted(x: np.ndarray, kernel: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """Max-pooling of channel-last uint8 maps x [n, H, W, C] (no padding), and each image's sum of the result."""
    n, h, width, c = x.shape
    ho = (h - kernel) // stride + 1
    wo = (width - kernel) // stride + 1
    out = np.zeros((n, ho, wo, c), dtype=np.uint8)
    total = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        s = np.int64(0)
        for oy in range(ho):
            for ox in range(wo):
                for ky in range(kernel):
                    for kx in range(kernel):
                        for ch in range(c):
                            out[i, oy, ox, ch] = max(out[i, oy, ox, ch], x[i, oy * stride + ky, ox * stride + kx, ch])
                for ch in range(c):
                    s += out[i, oy, ox, ch]
        total[i] = s
    return out, total
