"""The forward's numba kernels against plain numpy formulations of the same arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.snn.forward import conv_gemm, conv_sops
from satasim_atsn.snn.kernels import gemm_rows_lif, im2col_into, window_coverage
from satasim_atsn.snn.neurons import lif_step


def numpy_im2col(x: np.ndarray, kernel: int, stride: int, padding: int) -> np.ndarray:
    """Channel-last im2col with sliding windows: rows (image, y, x), columns (ky, kx, c)."""
    n, _, _, c = x.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kernel, kernel), axis=(1, 2))[:, ::stride, ::stride]
    ho, wo = win.shape[1], win.shape[2]
    return win.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, kernel * kernel * c)


CASES = [(1, 5, 5, 1, 3, 1, 1), (2, 7, 6, 3, 3, 2, 1), (3, 8, 8, 4, 1, 1, 0), (2, 9, 7, 2, 5, 2, 2),
         (1, 4, 4, 5, 2, 2, 0), (2, 3, 3, 2, 3, 1, 2)]


@pytest.mark.parametrize("n,h,w,c,k,stride,pad", CASES)
def test_im2col_and_sops_match_numpy(n, h, w, c, k, stride, pad):
    rng = np.random.default_rng(h * 31 + w)
    x = (rng.random((n, h, w, c)) < 0.4).astype(np.uint8) * rng.integers(1, 4, (n, h, w, c)).astype(np.uint8)
    ref = numpy_im2col(x, k, stride, pad)
    cols = np.full(ref.shape, -7.0, dtype=np.float32)
    im2col_into(x, k, stride, pad, np.zeros(c, dtype=np.float32), cols)
    assert np.array_equal(cols, ref.astype(np.float32))
    assert np.array_equal(conv_sops(x, 5, k, stride, pad), ref.reshape(n, -1).sum(axis=1).astype(np.int64) * 5)
    w_rows = rng.integers(-127, 128, (k * k * c, 6)).astype(np.float32)
    out, ho, wo = conv_gemm(x, w_rows, k, stride, pad)
    assert out.shape == (n * ho * wo, 6)
    assert np.array_equal(out, ref.astype(np.float64) @ w_rows.astype(np.float64))


def test_window_coverage_brute_force():
    for size, k, stride, pad in [(5, 3, 1, 1), (8, 2, 2, 0), (7, 5, 2, 2), (4, 3, 3, 0), (1, 3, 1, 1)]:
        out = (size + 2 * pad - k) // stride + 1
        brute = np.zeros(size, dtype=np.int64)
        for o in range(out):
            for j in range(k):
                pos = o * stride - pad + j
                if 0 <= pos < size:
                    brute[pos] += 1
        assert np.array_equal(window_coverage(size, k, stride, pad), brute)


@pytest.mark.parametrize("shifts,bits", [((1,), 16), ((1, 2), 16), ((2,), 8), ((1, 3, 5), 12)])
def test_fused_lif_equals_lif_step(shifts, bits):
    rng = np.random.default_rng(bits + len(shifts))
    m, cout = 97, 7
    out = rng.integers(-3000, 3000, (m, cout)).astype(np.float32)
    bias = rng.integers(-50, 50, cout).astype(np.int64)
    u = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (m, cout)).astype(np.int64)
    vth = rng.integers(1, 300, cout).astype(np.int64)
    spikes, nxt = gemm_rows_lif(out, bias, u, vth, np.asarray(shifts, dtype=np.int64), bits)
    ref_spikes, ref_next = lif_step(u, out.astype(np.int64) + bias, vth, shifts, bits)
    assert np.array_equal(spikes.astype(bool), ref_spikes) and np.array_equal(nxt, ref_next)
