"""The trainer's speed paths (workspace buffers, fused numba tdBN/LIF, numba column sums) give numpy's bits."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.train import layers as L
from satasim_atsn.train.config import SGD
from satasim_atsn.train.losses import loss_and_grad
from satasim_atsn.train.models import build_spec
from satasim_atsn.train.network import Network


def bits(a: np.ndarray) -> np.ndarray:
    """The raw float32 bit patterns (so that -0.0 and NaN payloads count)."""
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("shape", [(4096, 16), (777, 5), (3, 2), (1, 7), (300, 1)])
def test_column_sums_match_numpy_bitwise(shape):
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 100).astype(np.float32)
    x[0] = -0.0
    x[:, 0] = -0.0  # a column of negative zeros sums to +0.0 in numpy
    assert np.array_equal(bits(L.column_sum(x)), bits(x.sum(axis=0)))
    assert np.array_equal(bits(L.column_mean(x)), bits(x.mean(axis=0)))


@pytest.mark.parametrize("training", [True, False])
def test_fast_tdbn_matches_numpy_formula_bitwise(training):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((6000, 12)) * 2 + 0.3).astype(np.float32)
    gamma = (rng.random(12) + 0.5).astype(np.float32)
    beta = rng.standard_normal(12).astype(np.float32)
    stats = {"mean": rng.standard_normal(12).astype(np.float32), "var": (rng.random(12) + 0.1).astype(np.float32)}
    run_ref, run_fast = dict(stats), dict(stats)
    # the numpy formulas the trainer used before the numba kernels
    mean = x.mean(axis=0) if training else stats["mean"]
    xc = x - mean
    var = np.einsum("ij,ij->j", xc, xc) / x.shape[0] if training else stats["var"]
    inv = (1.0 / np.sqrt(var + 1e-5)).astype(np.float32)
    xhat = xc * inv
    ref = xhat * gamma + beta
    L.bn_forward(x, gamma, beta, run_ref, training)
    out, cache = L.bn_forward(x.copy(), gamma, beta, run_fast, training, ws=L.Workspace(), xhat_key="h",
                              overwrite_input=True)
    assert np.array_equal(bits(out), bits(ref)) and np.array_equal(bits(cache[0]), bits(xhat))
    assert all(np.array_equal(bits(run_ref[k]), bits(run_fast[k])) for k in stats)
    g = rng.standard_normal(x.shape).astype(np.float32)
    m = x.shape[0]
    dbeta, dgamma = g.sum(axis=0), np.einsum("ij,ij->j", g, xhat)
    dx_ref = (gamma * inv / m) * (m * g - dbeta - xhat * dgamma)
    dx, dg, db = L.bn_backward(g.copy(), cache, overwrite_grad=True)
    assert np.array_equal(bits(dx), bits(dx_ref)) and np.array_equal(bits(dg), bits(dgamma))
    assert np.array_equal(bits(db), bits(dbeta))


def test_fused_tdbn_lif_matches_the_pair_bitwise():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 3, 5, 5, 8)) * 1.5).astype(np.float32)
    gamma = (rng.random(8) + 0.5).astype(np.float32)
    beta = (rng.standard_normal(8) * 0.3).astype(np.float32)
    run_a = {"mean": np.zeros(8, np.float32), "var": np.ones(8, np.float32)}
    run_b = {k: v.copy() for k, v in run_a.items()}
    cur, bn_a = L.bn_forward(x, gamma, beta, run_a, True)
    s_a, lif_a = L.lif_forward(cur, 4)
    s_b, bn_b, lif_b = L.bn_lif_forward(x.copy(), gamma, beta, run_b, True, 4, 0.5, 1.0, L.Workspace(),
                                        ("h", "u", "s"))
    for a, b in [(s_a, s_b), (bn_a[0], bn_b[0]), (lif_a[0], lif_b[0]), (lif_a[1], lif_b[1])]:
        assert np.array_equal(bits(a).ravel(), bits(b).ravel())
    assert s_a.sum() > 0


@pytest.mark.parametrize("model,image", [("vgg_small", (1, 28, 28)), ("vgg16", (3, 32, 32)),
                                         ("resnet19", (3, 32, 32))])
def test_buffered_training_steps_equal_allocating_ones(model, image):
    """Two SGD steps (the second with a smaller batch) with and without the workspace: same bits."""
    width = 0.0625 if model != "vgg_small" else 0.25
    spec = build_spec(model, list(image), 10, "membrane", width) if model != "vgg_small" else \
        build_spec(model, list(image), 10, "membrane")
    nets = [Network(spec, 4, seed=0, reuse_buffers=r) for r in (False, True)]
    opts = [SGD(n, 0.9, 5e-4) for n in nets]
    rng = np.random.default_rng(4)
    batches = [rng.standard_normal((b,) + image[1:] + image[:1]).astype(np.float32) for b in (8, 5)]
    labels = [rng.integers(0, 10, len(b)) for b in batches]
    for x, y in zip(batches, labels, strict=True):
        for net, opt in zip(nets, opts, strict=True):
            f = net.forward(x, training=True)
            _, grad = loss_and_grad(f, y, "imp", "membrane")
            opt.step(net.backward(grad), 0.05)
    a, b = nets[0].state_arrays(), nets[1].state_arrays()
    assert a.keys() == b.keys()
    assert all(np.array_equal(bits(a[k]), bits(b[k])) for k in a)
    ev = [n.forward(batches[0], training=False) for n in nets]
    assert np.array_equal(bits(ev[0]), bits(ev[1]))


@pytest.mark.parametrize("model,width", [("vgg_small", 1.0), ("resnet19", 0.0625)])
def test_evaluation_forward_keeps_nothing_and_drops_outputs_without_changing_bits(model, width, monkeypatch):
    """An evaluation forward frees each output after its last reader (the add layers read two) and keeps no
    backward caches; with every output kept to the end it gives the same bits."""
    image = (1, 28, 28) if model == "vgg_small" else (3, 32, 32)
    spec = build_spec(model, list(image), 10, "membrane", width)
    net = Network(spec, 4, seed=3)
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((6,) + image[1:] + image[:1]) * 3).astype(np.float32)
    net.forward(x, training=True)  # running statistics away from their initial values
    assert net._caches
    dropping = net.forward(x, training=False)
    assert net._caches == {}
    assert np.abs(dropping).sum() > 0  # spikes reach the output, so the comparison means something
    monkeypatch.setattr(Network, "_last_use", lambda self: {})  # nothing is dropped... and everything
    with pytest.raises(KeyError):  # ...is dropped before use: the lookup table is what keeps outputs alive
        net.forward(x, training=False)
    everything = {layer["name"]: len(spec) for layer in spec} | {"input": len(spec)}
    monkeypatch.setattr(Network, "_last_use", lambda self: everything)
    keeping = net.forward(x, training=False)
    assert np.array_equal(bits(dropping), bits(keeping))
