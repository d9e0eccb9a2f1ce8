"""Gradient checks of the numpy STBP trainer against central finite differences (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.train import layers as L
from satasim_atsn.train.losses import importance, loss_and_grad
from satasim_atsn.train.models import build_spec
from satasim_atsn.train.network import Network


def central_difference(param: np.ndarray, index: tuple, value, step: float = 1e-6) -> float:
    """d value / d param[index] by a central difference (param is restored)."""
    old = param[index]
    param[index] = old + step
    plus = value()
    param[index] = old - step
    minus = value()
    param[index] = old
    return (plus - minus) / (2 * step)


def numeric_grad(fn, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of scalar fn() wrt every entry of x (modified in place)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        g[it.multi_index] = central_difference(x, it.multi_index, fn, eps)
    return g


def close(a: np.ndarray, b: np.ndarray, tol: float = 1e-5) -> bool:
    return float(np.abs(a - b).max()) <= tol * max(1.0, float(np.abs(b).max()))


@pytest.mark.parametrize("stride,padding,kernel", [(1, 1, 3), (2, 1, 3), (2, 0, 1)])
def test_conv_gradients(stride, padding, kernel):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 5, 3))
    w = rng.standard_normal((kernel * kernel * 3, 4))
    r = rng.standard_normal(L.conv_forward(x, w, kernel, stride, padding)[0].shape)

    def f():
        return float((L.conv_forward(x, w, kernel, stride, padding)[0] * r).sum())

    _, cache = L.conv_forward(x, w, kernel, stride, padding)
    dx, dw = L.conv_backward(r, w, cache)
    assert close(dx, numeric_grad(f, x))
    assert close(dw, numeric_grad(f, w))


def test_conv_matches_direct_convolution():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 4, 4, 2))
    w = rng.standard_normal((9 * 2, 3))
    out = L.conv_forward(x, w, 3, 1, 1)[0]
    wk = w.reshape(3, 3, 2, 3)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    direct = np.zeros((1, 4, 4, 3))
    for i in range(4):
        for j in range(4):
            direct[0, i, j] = np.einsum("abc,abcd->d", xp[0, i:i + 3, j:j + 3], wk)
    assert np.allclose(out, direct)


def test_linear_gradients():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((3, 2, 5)), rng.standard_normal((5, 4)), rng.standard_normal(4)
    r = rng.standard_normal((3, 2, 4))

    def f():
        return float((L.linear_forward(x, w, b)[0] * r).sum())

    dx, dw, db = L.linear_backward(r, w, L.linear_forward(x, w, b)[1])
    assert close(dx, numeric_grad(f, x)) and close(dw, numeric_grad(f, w)) and close(db, numeric_grad(f, b))


def test_tdbn_gradients_and_statistics():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 2, 2, 4)) * 3 + 1  # [T, B, H, W, C]
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    r = rng.standard_normal(x.shape)

    def f():
        return float((L.bn_forward(x, gamma, beta, None, True)[0] * r).sum())

    out, cache = L.bn_forward(x, gamma, beta, None, True)
    normed = (out - beta) / gamma
    assert np.allclose(normed.reshape(-1, 4).mean(axis=0), 0, atol=1e-6)  # over time, batch and space
    assert np.allclose(normed.reshape(-1, 4).std(axis=0), 1, atol=1e-3)
    dx, dg, db = L.bn_backward(r, cache)
    assert close(dx, numeric_grad(f, x), 1e-4)
    assert close(dg, numeric_grad(f, gamma), 1e-4) and close(db, numeric_grad(f, beta), 1e-4)


@pytest.mark.parametrize("static", [False, True])
def test_lif_surrogate_chain(static):
    """With the smooth stand-in whose derivative is the triangle, BPTT must equal finite differences."""
    rng = np.random.default_rng(4)
    T = 4
    cur = rng.uniform(-0.5, 2.5, (3, 5)) if static else rng.uniform(-0.5, 2.5, (T, 3, 5))
    r = rng.standard_normal((T, 3, 5))

    def f():
        return float((L.lif_forward(cur, T, static=static, smooth=True)[0] * r).sum())

    _, cache = L.lif_forward(cur, T, static=static, smooth=True)
    assert close(L.lif_backward(r, cache), numeric_grad(f, cur), 1e-4)


def test_lif_hard_dynamics():
    s, _ = L.lif_forward(np.array([[0.6], [0.6], [0.6], [1.2]]), 4)
    # u: 0.6, 0.9, 1.05 -> spike, reset: 1.2 -> spike
    assert s[:, 0].tolist() == [0, 0, 1, 1]
    assert L.triangle(np.array([1.0, 0.5, 2.0, 2.5]), 1.0).tolist() == [1.0, 0.5, 0.0, 0.0]


def test_maxpool_and_avgpool_gradients():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 1, 5, 4, 3))
    r = rng.standard_normal((2, 1, 2, 2, 3))

    def f():
        return float((L.maxpool_forward(x, 2)[0] * r).sum())

    assert close(L.maxpool_backward(r, L.maxpool_forward(x, 2)[1]), numeric_grad(f, x))
    r2 = rng.standard_normal((2, 1, 3))

    def g():
        return float((L.avgpool_forward(x)[0] * r2).sum())

    assert close(L.avgpool_backward(r2, x.shape), numeric_grad(g, x))


@pytest.mark.parametrize("loss", ["ce", "dtsnn", "imp"])
@pytest.mark.parametrize("mode", ["membrane", "accumulate"])
def test_loss_gradients(loss, mode):
    rng = np.random.default_rng(6)
    f = rng.standard_normal((4, 3, 5))
    y = np.array([0, 3, 4])

    def fn():
        return loss_and_grad(f, y, loss, mode)[0]

    _, g = loss_and_grad(f, y, loss, mode)
    assert close(g, numeric_grad(fn, f), 1e-4)


def test_importance_weights_follow_eq_11():
    w = importance(4)
    raw = 1 + np.exp(-1 - (np.arange(1, 5) + 1) / 4)
    assert np.allclose(w, raw / raw.sum()) and np.all(np.diff(w) < 0)


def test_imp_loss_weighs_early_steps_more():
    f = np.zeros((4, 1, 2))
    f[0, 0, 0] = 5.0  # confident and right at t=1 only
    early, _ = loss_and_grad(f, np.array([0]), "imp", "membrane")
    g = np.zeros((4, 1, 2))
    g[3, 0, 0] = 5.0  # confident and right at t=4 only
    late, _ = loss_and_grad(g, np.array([0]), "imp", "membrane")
    assert early < late


@pytest.mark.parametrize("model,mode", [("vgg_small", "membrane"), ("resnet19", "accumulate")])
def test_whole_network_gradients(model, mode):
    """The full STBP chain (conv, tdBN, LIF, pooling, residual joins, output) against finite differences."""
    width = 0.03 if model == "resnet19" else 0.25
    shape = [2, 8, 8]
    spec = build_spec(model, shape, 3, mode, width)
    net = Network(spec, 3, seed=1, smooth_spikes=True)
    for p in net.params.values():
        for k in p:
            p[k] = p[k].astype(np.float64)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 8, 8, 2))
    y = np.array([0, 2])

    def fn():
        return loss_and_grad(net.forward(x, training=True), y, "imp", mode)[0]

    _, g = loss_and_grad(net.forward(x, training=True), y, "imp", mode)
    grads = net.backward(g)
    checked = 0
    for name in [spec[0]["name"], spec[-1]["name"]] + [ly["name"] for ly in spec if ly["type"] == "conv"][1:3]:
        for key in ("w", "gamma"):
            if key not in net.params[name]:
                continue
            param = net.params[name][key]
            flat_idx = rng.choice(param.size, size=min(6, param.size), replace=False)
            for fi in flat_idx:
                i = np.unravel_index(fi, param.shape)
                num = central_difference(param, i, fn)
                assert abs(grads[name][key][i] - num) <= 1e-4 * max(1.0, abs(num)), (name, key, i)
                checked += 1
    assert checked >= 12


def test_numba_kernels_match_numpy_reference():
    rng = np.random.default_rng(8)
    for static in (False, True):
        cur = rng.uniform(-1, 3, (3, 2, 5, 5, 4) if static else (4, 2, 5, 5, 4)).astype(np.float32)
        cur = cur[0] if static else cur
        s_fast, c_fast = L.lif_forward(cur, 4, static=static)
        s_ref, c_ref = L.lif_forward(cur, 4, static=static, fast=False)
        assert np.array_equal(s_fast, s_ref) and np.allclose(c_fast[0], c_ref[0], atol=1e-6)
        g = rng.standard_normal(s_ref.shape).astype(np.float32)
        assert np.allclose(L.lif_backward(g, c_fast), L.lif_backward(g, c_ref, fast=False), atol=1e-5)
    x = (rng.random((3, 2, 6, 7, 4)) < 0.4).astype(np.float32)
    out_fast, cache_fast = L.maxpool_forward(x, 2)
    out_ref, cache_ref = L.maxpool_forward(x, 2, fast=False)
    assert np.array_equal(out_fast, out_ref)
    g = rng.standard_normal(out_ref.shape).astype(np.float32)
    assert np.array_equal(L.maxpool_backward(g, cache_fast), L.maxpool_backward(g, cache_ref))


@pytest.mark.parametrize("stride,padding,kernel", [(1, 1, 3), (2, 1, 3), (2, 0, 1)])
def test_im2col_kernels_match_numpy(stride, padding, kernel):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 7, 6, 5))
    pad = rng.standard_normal(5)
    fast = L.im2col(x.astype(np.float32), kernel, stride, padding, pad.astype(np.float32))
    assert np.allclose(fast, L.im2col(x, kernel, stride, padding, pad), atol=1e-6)
    x32, pad32 = x.astype(np.float32), pad.astype(np.float32)
    assert np.array_equal(fast, L.im2col(x32, kernel, stride, padding, pad32, fast=False))
    cols = rng.standard_normal(fast.shape).astype(np.float32)
    back = L.col2im(cols, x.shape, kernel, stride, padding)
    assert np.array_equal(back, L.col2im(cols, x.shape, kernel, stride, padding, fast=False))  # same sums, bitwise
