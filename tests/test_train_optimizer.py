"""The trainer's update rules against their documented forms (docs/training.md "Recipe"), derived by hand.

SGD with momentum 0.9 (v = m*v + g + wd*w, w -= lr*v) and weight decay on conv and linear weights only,
the cosine schedule from --lr to 0, tdBN's running statistics (momentum 0.1, unbiased variance over
time, batch and space, used by evaluation), and the exact gradient of the output layer (no surrogate on
that path) under every loss and output mode, against finite differences with hard spikes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_train_gradients import central_difference

from satasim_atsn.train import layers as L
from satasim_atsn.train.config import SGD, cosine_lr
from satasim_atsn.train.losses import loss_and_grad
from satasim_atsn.train.models import build_spec
from satasim_atsn.train.network import Network


def small_net(mode: str = "membrane", timesteps: int = 3, seed: int = 0) -> Network:
    """A quarter-width vgg_small on 2 x 8 x 8 inputs, 4 classes."""
    return Network(build_spec("vgg_small", [2, 8, 8], 4, mode, 0.25), timesteps, seed=seed)


def test_sgd_step_is_momentum_plus_weight_decay_on_weights_only():
    net = small_net()
    rng = np.random.default_rng(0)
    for p in net.params.values():
        for k in p:
            p[k] = rng.standard_normal(p[k].shape).astype(np.float32)
    start = {n: {k: v.astype(np.float64) for k, v in p.items()} for n, p in net.params.items()}
    opt = SGD(net, 0.9, 5e-4)
    steps = [({n: {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in p.items()}
               for n, p in net.params.items()}, lr) for lr in (0.1, 0.03)]
    for grads, lr in steps:
        opt.step(grads, lr)
    for name, group in start.items():
        for key, w in group.items():
            v = np.zeros_like(w)
            for grads, lr in steps:
                decay = 5e-4 * w if key == "w" else 0.0  # no decay on BN gamma/beta or biases
                v = 0.9 * v + grads[name][key].astype(np.float64) + decay
                w = w - lr * v
            assert np.allclose(net.params[name][key], w, rtol=1e-5, atol=1e-6), (name, key)
            assert np.allclose(opt.buffers[name][key], v, rtol=1e-5, atol=1e-6), (name, key)
    assert {k for p in net.params.values() for k in p} == {"w", "b", "gamma", "beta"}


def test_cosine_schedule_runs_from_lr_to_zero():
    assert cosine_lr(0.1, 0, 100) == pytest.approx(0.1)
    assert cosine_lr(0.1, 50, 100) == pytest.approx(0.05)
    assert cosine_lr(0.1, 25, 100) == pytest.approx(0.05 * (1 + math.cos(math.pi / 4)))
    assert cosine_lr(0.1, 100, 100) == pytest.approx(0.0, abs=1e-12)
    assert cosine_lr(0.1, 130, 100) == pytest.approx(0.0, abs=1e-12)  # past the end: stays at 0
    lrs = [cosine_lr(0.2, s, 40) for s in range(41)]
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))


def test_tdbn_running_statistics_and_evaluation():
    """Momentum 0.1 on the mean and on the unbiased variance over T*B*H*W rows; evaluation uses them."""
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((3, 2, 4, 4, 5)) * 2 + 0.7)  # [T, B, H, W, C]
    gamma, beta = rng.uniform(0.5, 1.5, 5), rng.standard_normal(5)
    mean0, var0 = rng.standard_normal(5), rng.uniform(0.5, 2.0, 5)
    running = {"mean": mean0.copy(), "var": var0.copy()}
    L.bn_forward(x, gamma, beta, running, True)
    rows = x.reshape(-1, 5)
    assert np.allclose(running["mean"], 0.9 * mean0 + 0.1 * rows.mean(axis=0))
    assert np.allclose(running["var"], 0.9 * var0 + 0.1 * rows.var(axis=0, ddof=1))
    out, _ = L.bn_forward(x, gamma, beta, running, False)
    expected = (x - running["mean"]) / np.sqrt(running["var"] + 1e-5) * gamma + beta
    assert np.allclose(out, expected)


@pytest.mark.parametrize("loss", ["ce", "dtsnn", "imp"])
@pytest.mark.parametrize("mode", ["membrane", "accumulate"])
@pytest.mark.parametrize("timesteps", [1, 4])
def test_output_layer_gradient_with_hard_spikes(loss, mode, timesteps):
    """dL/dW and dL/db of the output layer (eq. 8 membrane or eq. 5 accumulate) equal finite differences.

    The spikes feeding the output layer do not depend on its weights, so the true step function is used.
    """
    net = small_net(mode, timesteps, seed=2)
    for p in net.params.values():
        for k in p:
            p[k] = p[k].astype(np.float64)
    rng = np.random.default_rng(3)
    net.params["output"]["b"][:] = rng.uniform(-0.5, 0.5, 4)
    x = rng.standard_normal((3, 8, 8, 2))
    y = np.array([0, 3, 1])

    def value() -> float:
        return loss_and_grad(net.forward(x, training=True), y, loss, mode)[0]

    f = net.forward(x, training=True)
    assert 0 < f.shape[0] == timesteps
    grads = net.backward(loss_and_grad(f, y, loss, mode)[1])
    for key in ("w", "b"):
        param = net.params["output"][key]
        numeric = np.zeros_like(param)
        picked = rng.choice(param.size, size=min(param.size, 8), replace=False)  # a few weights, every bias
        for i in (np.unravel_index(j, param.shape) for j in picked):
            numeric[i] = central_difference(param, i, value)
        mask = np.zeros(param.shape, dtype=bool)
        mask.flat[picked] = True
        assert np.abs(numeric[mask]).max() > 1e-3
        assert np.allclose(grads["output"][key][mask], numeric[mask], rtol=1e-4,
                           atol=1e-6 * np.abs(numeric).max()), key
