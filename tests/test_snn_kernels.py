"""The forward's numba kernels against plain numpy formulations of the same arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.snn.forward import conv_gemm, conv_sops, spike_maxpool_nhwc
from satasim_atsn.snn.kernels import (
    current_lif,
    gemm_rows_lif,
    im2col_into,
    pixel_conv,
    spike_conv_lif,
    spike_conv_s1_lif,
    spike_maxpool_counted,
)
from satasim_atsn.snn.neurons import lif_step
from satasim_atsn.workload.pool_windows import window_coverage


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


def test_fused_lif_fires_above_the_threshold_not_at_it():
    """Spike when u > vth (neurons.lif_step; docs/training.md): a membrane exactly at the threshold decays, one above
    it fires and resets. Random membranes never landed exactly on a threshold, so '>=' passed (mutant K1)."""
    vth = np.array([5, 100, 1000], dtype=np.int64)
    out = np.array([[3.0, -20.0, 400.0], [3.0, -20.0, 400.0]], dtype=np.float32)
    bias = np.array([1, 10, -50], dtype=np.int64)
    current = out.astype(np.int64) + bias
    u = np.stack([vth - current[0], vth + 1 - current[1]])  # row 0 lands on vth, row 1 one above
    spikes, nxt = gemm_rows_lif(out, bias, u, vth, np.asarray([1], dtype=np.int64), 16)
    assert spikes.tolist() == [[0, 0, 0], [1, 1, 1]]
    assert nxt.tolist() == [[2, 50, 500], [0, 0, 0]]  # vth >> 1 (tau = 0.5), and the reset


SPIKE_CASES = [(2, 6, 5, 3, 4, 3, 1, 1), (3, 8, 8, 16, 16, 3, 1, 1), (2, 7, 6, 3, 5, 3, 2, 1), (2, 5, 5, 4, 3, 1, 1, 0),
               (1, 9, 7, 2, 3, 5, 1, 2), (2, 4, 4, 5, 2, 1, 1, 1), (2, 6, 6, 3, 3, 3, 1, 0), (1, 3, 3, 2, 33, 3, 1, 2)]


def _spike_conv_reference(x, w, bias, u, vth, shifts, bits, stride, pad):
    """im2col + float64 GEMM + lif_step: what the GEMM path of the forward computes."""
    cout, cin, k, _ = w.shape
    cols = numpy_im2col(x, k, stride, pad).astype(np.float64)
    out = cols @ w.transpose(2, 3, 1, 0).reshape(k * k * cin, cout).astype(np.float64)
    cur = out.astype(np.int64).reshape(u.shape) + bias
    spikes, nxt = lif_step(u, cur, vth, shifts, bits)
    return spikes, nxt, cols.reshape(x.shape[0], -1).sum(axis=1).astype(np.int64) * cout


@pytest.mark.parametrize("n,h,w,c,cout,k,stride,pad", SPIKE_CASES)
@pytest.mark.parametrize("shifts", [(1,), (1, 3)])
def test_event_driven_spike_convs_equal_gemm_and_lif_step(n, h, w, c, cout, k, stride, pad, shifts):
    rng = np.random.default_rng(n * 1000 + h * 31 + cout * 7 + k)
    x = (rng.random((n, h, w, c)) < 0.35).astype(np.uint8)
    weights = rng.integers(-128, 128, (cout, c, k, k)).astype(np.int8)
    ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    bias = rng.integers(-200, 200, cout).astype(np.int64)
    bits = 12
    u = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (n, ho, wo, cout)).astype(np.int64)
    vth = rng.integers(1, 400, cout).astype(np.int64)
    sh = np.asarray(shifts, dtype=np.int64)
    ref_spikes, ref_next, ref_sops = _spike_conv_reference(x, weights, bias, u, vth, shifts, bits, stride, pad)
    assert ref_spikes.any() and not ref_spikes.all()
    gather = spike_conv_lif(x, np.ascontiguousarray(weights.transpose(2, 3, 1, 0), dtype=np.int16), bias, u, vth,
                            sh, bits, k, stride, pad)
    results = [gather]
    if stride == 1 and pad < k:
        w_rev = np.ascontiguousarray(weights[:, :, :, ::-1].transpose(1, 2, 3, 0).reshape(c, k, k * cout),
                                     dtype=np.int16)
        results.append(spike_conv_s1_lif(x, w_rev, bias, u, vth, sh, bits, pad))
    for spikes, nxt, sops, fired in results:
        assert np.array_equal(spikes.astype(bool), ref_spikes) and np.array_equal(nxt, ref_next)
        assert np.array_equal(sops, ref_sops) and np.array_equal(sops, conv_sops(x, cout, k, stride, pad))
        assert np.array_equal(fired, ref_spikes.reshape(n, -1).sum(axis=1))


@pytest.mark.parametrize("shifts,bits", [((1,), 16), ((1, 2), 12), ((0,), 8)])
def test_current_lif_equals_lif_step(shifts, bits):
    rng = np.random.default_rng(bits)
    cur = rng.integers(-5000, 5000, (3, 41, 9)).astype(np.int64)
    u = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), cur.shape).astype(np.int64)
    vth = rng.integers(1, 300, 9).astype(np.int64)
    spikes, nxt, fired = current_lif(cur, u, vth, np.asarray(shifts, dtype=np.int64), bits)
    ref_spikes, ref_next = lif_step(u, cur, vth, shifts, bits)
    assert np.array_equal(spikes.astype(bool), ref_spikes) and np.array_equal(nxt, ref_next)
    assert np.array_equal(fired, ref_spikes.reshape(3, -1).sum(axis=1))


@pytest.mark.parametrize("n,h,w,c,k,stride,pad", CASES)
def test_pixel_conv_equals_exact_gemm_plus_bias_shifted(n, h, w, c, k, stride, pad):
    rng = np.random.default_rng(k * 100 + h)
    x = rng.integers(0, 256, (n, h, w, c)).astype(np.uint8)
    weights = rng.integers(-128, 128, (k, k, c, 7)).astype(np.int32)
    bias = rng.integers(-3000, 3000, 7).astype(np.int64)
    out = pixel_conv(x, weights, bias, 3, k, stride, pad)
    ref = (numpy_im2col(x, k, stride, pad).astype(np.int64) @ weights.reshape(-1, 7).astype(np.int64) + bias) >> 3
    assert out.dtype == np.int64 and np.array_equal(out.reshape(-1, 7), ref)


@pytest.mark.parametrize("h,w,k,stride", [(8, 8, 2, 2), (7, 9, 2, 2), (9, 7, 3, 2), (6, 6, 3, 3), (5, 5, 2, 1)])
def test_counted_maxpool_equals_numpy(h, w, k, stride):
    x = (np.random.default_rng(h * w).random((3, h, w, 4)) < 0.3).astype(np.uint8)
    out, total = spike_maxpool_counted(x, k, stride)
    ref = spike_maxpool_nhwc(x, k, stride)
    assert np.array_equal(out, ref) and np.array_equal(total, ref.reshape(3, -1).sum(axis=1))
