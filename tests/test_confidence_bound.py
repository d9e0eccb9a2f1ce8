"""The bound on max o^t from the output layer's weights: attained at t = 1, never exceeded by the forward."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.snn.confidence_bound import (
    can_clear,
    confidence_ceiling,
    margin_bounds,
    output_input_ceiling,
    single_step_margins,
)
from satasim_atsn.snn.exit_policies import softmax
from satasim_atsn.snn.forward import run_forward
from satasim_atsn.snn.neurons import output_step
from satasim_atsn.workload.synthetic import random_workload


def _with_output(workload, w: np.ndarray, b: np.ndarray):
    """The workload with its output layer's weights and bias replaced (same shapes)."""
    name = workload.layers[-1]["name"]
    workload.arrays[f"w/{name}"] = w.astype(workload.weights(name).dtype)
    workload.arrays[f"b/{name}"] = b.astype(np.int32)
    return workload


def _membranes(workload, x_seq: list[np.ndarray]) -> list[np.ndarray]:
    """Integer output membranes at t = 1..len(x_seq) for a sequence of output-layer inputs (the forward's step)."""
    out = workload.layers[-1]
    w = workload.weights(out["name"]).astype(np.int64)
    b = np.asarray(workload.bias(out["name"]), dtype=np.int64)
    shifts = workload.decay_shifts if out["output_mode"] == "membrane" else None
    u = np.zeros(w.shape[0], dtype=np.int64)
    seq = []
    for x in x_seq:
        u = output_step(u, w @ x + b, shifts, 32)
        seq.append(u.copy())
    return seq


@pytest.mark.parametrize("seed", [0, 5])
def test_single_step_margin_is_attained_and_two_step_bound_holds(seed):
    wl = random_workload(seed, images=1, timesteps=2, output_mode="membrane")
    rng = np.random.default_rng(seed)
    classes, k = wl.weights(wl.layers[-1]["name"]).shape
    wl = _with_output(wl, rng.integers(-127, 128, size=(classes, k)), rng.integers(-500, 500, size=classes))
    assert output_input_ceiling(wl) == 1
    margins = single_step_margins(wl)
    bounds = margin_bounds(wl)
    w = wl.weights(wl.layers[-1]["name"]).astype(np.int64)
    for i in range(classes):
        for j in range(classes):
            best = (w[i] > w[j]).astype(np.int64)  # the spike pattern that maximises u_i - u_j in one step
            u1, u2 = _membranes(wl, [best, best])
            assert u1[i] - u1[j] == margins[i, j] == bounds[0, i, j]
            assert u2[i] - u2[j] <= bounds[1, i, j] <= u2[i] - u2[j] + 2 * len(wl.decay_shifts)
            for _ in range(20):  # no other input sequence gets past the bound
                seq = [rng.integers(0, 2, size=k) for _ in range(2)]
                v1, v2 = _membranes(wl, seq)
                assert v1[i] - v1[j] <= bounds[0, i, j] and v2[i] - v2[j] <= bounds[1, i, j]


@pytest.mark.parametrize("seed", range(8))
def test_forward_never_exceeds_the_ceiling(seed):
    wl = random_workload(seed, images=6, timesteps=3)
    result = run_forward(wl)
    top = softmax(result.logits).max(axis=-1)  # [images, T]
    ceiling = np.array([row["bound"] for row in confidence_ceiling(wl)])
    assert (top <= ceiling + 5e-7).all()  # bounds are rounded to 6 decimals


def test_accumulate_ceiling_is_flat_and_membrane_ceiling_grows():
    acc = random_workload(2, images=1, timesteps=4, output_mode="accumulate")
    mem = random_workload(2, images=1, timesteps=4, output_mode="membrane")
    a = margin_bounds(acc)
    assert all((a[t] == a[0]).all() for t in range(4))
    m = margin_bounds(mem)
    positive = single_step_margins(mem) > 0
    assert positive.any() and all((m[t][positive] > m[t - 1][positive]).all() for t in range(1, 4))
    bounds = [row["bound"] for row in confidence_ceiling(mem)]
    assert bounds == sorted(bounds)


def test_avgpool_input_scales_the_margin_by_its_window():
    wl = random_workload(1, images=1)  # ends in a global sum-pool feeding the output
    src = wl.layer(wl.layers[-1]["inputs"][0])
    assert src["type"] == "avgpool"
    window = int(np.prod(src["in_shape"][1:]))
    assert output_input_ceiling(wl) == window
    w = wl.weights(wl.layers[-1]["name"]).astype(np.int64)
    b = np.asarray(wl.bias(wl.layers[-1]["name"]), dtype=np.int64)
    expected = np.clip(w[0] - w[1], 0, None).sum() * window + b[0] - b[1]
    assert single_step_margins(wl)[0, 1] == expected


def _one_input_classifier(logit_scale: float):
    """Two classes reading one spiking input with weights +1 / -1 (margin 2 per step), no bias."""
    wl = random_workload(0, images=1, timesteps=2, output_mode="membrane", num_classes=2)
    k = wl.weights(wl.layers[-1]["name"]).shape[1]
    w = np.zeros((2, k), dtype=np.int64)
    w[0, 0], w[1, 0] = 1, -1
    wl = _with_output(wl, w, np.zeros(2))
    wl.layers[-1]["logit_scale"] = logit_scale
    return wl


def test_a_small_classifier_cannot_clear_a_high_threshold_at_t1():
    # two classes, one input, weights +1/-1 and logit scale 1: one step gives margin 2, p <= 1/(1+e^-2) = 0.8808
    wl = _one_input_classifier(logit_scale=1.0)
    rows = confidence_ceiling(wl)
    assert rows[0]["bound"] == round(1 / (1 + np.exp(-2.0)), 6)
    shifts = wl.decay_shifts
    two_step = 2.0 + sum(2.0 ** -s for s in shifts) * 2.0 + len(shifts)  # tau * m(1) + floor slack + M
    assert rows[1]["bound"] == round(1 / (1 + np.exp(-two_step)), 6)
    p1, p2 = rows[0]["bound"], rows[1]["bound"]
    assert can_clear(wl, [p1 - 1e-6, p2 - 1e-6]) == [True, True]
    assert can_clear(wl, [p1 + 1e-6, p2 + 1e-6]) == [False, False]
    assert can_clear(wl, [0.5, 1 / (1 + np.exp(-2.0))]) == [True, True]  # t = 2 clears t = 1's own bound


def test_network_without_output_layer_has_no_ceiling():
    with pytest.raises(ValueError, match="without an output layer"):
        confidence_ceiling(random_workload(3, images=1, output_layer=False))


def test_a_bound_on_a_rounding_boundary_is_rounded_in_decimal(monkeypatch):
    # equal weights: max o^1 = 1/2 exactly; with 0 decimals that is a tie, which the decimal path rounds
    # half-even (to 0), the same on every CPU
    import satasim_atsn.snn.confidence_bound as cb

    wl = random_workload(0, images=1, timesteps=1, output_mode="membrane", num_classes=2)
    k = wl.weights(wl.layers[-1]["name"]).shape[1]
    wl = _with_output(wl, np.ones((2, k), dtype=np.int64), np.zeros(2))
    assert cb.confidence_ceiling(wl)[0]["bound"] == 0.5
    monkeypatch.setattr(cb, "BOUND_DECIMALS", 0)
    assert cb.confidence_ceiling(wl)[0]["bound"] == 0.0


def test_an_output_layer_on_direct_pixels_is_bounded_with_the_input_shift():
    # logistic regression on [C, H, W] images: flatten -> output; current (W.x + b) >> input_shift, once
    import copy

    from satasim_atsn.workload.format import Workload, validate

    base = random_workload(0, images=6, timesteps=2, encoding="direct", output_mode="membrane", num_classes=3)
    meta = copy.deepcopy(base.meta)
    k = int(np.prod(base.input_shape))
    meta["layers"] = [{"name": "flat", "type": "flatten", "inputs": ["input"]},
                      {"name": "out", "type": "output", "inputs": ["flat"], "out_features": 3,
                       "output_mode": "membrane", "logit_scale": 0.05}]
    arrays = {key: v for key, v in base.arrays.items() if not key.startswith(("w/", "b/", "vth/"))}
    rng = np.random.default_rng(1)
    arrays["w/out"] = rng.integers(-20, 20, (3, k)).astype(np.int8)
    arrays["b/out"] = rng.integers(-100, 100, 3).astype(np.int32)
    wl = Workload(meta=meta, arrays=arrays, source="lr.npz")
    validate(wl)
    assert output_input_ceiling(wl) == 255
    margins = single_step_margins(wl)
    bounds = margin_bounds(wl)
    assert np.allclose(bounds[0], margins / 2.0 ** wl.input_shift + 1.0)
    res = run_forward(wl)
    u = res.out_membrane.astype(np.int64)
    for t in range(2):
        diff = u[:, t, :, None] - u[:, t, None, :]  # [n, i, j]
        assert (diff <= bounds[t][None]).all()
    top = softmax(res.logits).max(axis=-1)
    assert (top <= np.array([row["bound"] for row in confidence_ceiling(wl)]) + 5e-7).all()


def test_the_bound_applies_the_logit_scale_to_the_margins():
    # weights +1/-1 on one spike input: margin m(1) = 2; the softmax reads logits, scale * u, so with scale 1/4
    # max o^1 <= 1/(1 + e^(-2/4)) = 0.622459, far below the scale-1 value 0.880797
    wl = _one_input_classifier(logit_scale=0.25)
    p1 = 1 / (1 + np.exp(-0.5))
    assert confidence_ceiling(wl)[0]["bound"] == round(p1, 6) == 0.622459
    assert can_clear(wl, [p1 + 1e-6, 0.0]) == [False, True]
    assert can_clear(wl, [p1 - 1e-6, 0.0]) == [True, True]
