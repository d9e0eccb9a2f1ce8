"""Neuron arithmetic and exit policies."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.errors import SatasimError
from satasim_atsn.snn.exit_policies import AtsnPolicy, DtsnnPolicy, FixedPolicy, policy_from_name, softmax
from satasim_atsn.snn.neurons import decay, lif_step, output_step, saturate, shifts_to_tau, tau_to_shifts


def test_shift_add_decay_is_floor_of_tau_times_u():
    u = np.arange(-300, 300, dtype=np.int64)
    np.testing.assert_array_equal(decay(u, [1]), np.floor(u / 2).astype(np.int64))
    assert shifts_to_tau(tau_to_shifts(0.75)) == 0.75
    assert tau_to_shifts(0.5) == [1]
    # the nearest sum, not a greedy floor: a float32 tau of 0.5 stayed far from [1] (issue 9's fuzzing)
    beta = 1 - 1e-4 / float(np.float32(2e-4))  # 0.49999998737...
    assert beta != 0.5 and tau_to_shifts(beta) == [1]
    assert tau_to_shifts(0.9) == [1, 2, 3, 5] and shifts_to_tau([1, 2, 3, 5]) == 0.90625  # greedy: 0.890625
    assert tau_to_shifts(1 - 1e-9) == [0]
    with pytest.raises(ValueError):
        tau_to_shifts(1.5)


def test_lif_reset_and_saturation():
    u = np.array([0, 10, 32000], dtype=np.int64)
    spikes, base = lif_step(u, np.array([5, 5, 5000]), np.array([4, 100, 100]), (1,), 16)
    assert spikes.tolist() == [True, False, True]
    assert base.tolist() == [0, 7, 0]  # (10 + 5) >> 1 = 7
    assert saturate(np.array([40000, -40000]), 16).tolist() == [32767, -32768]
    assert output_step(np.array([9]), np.array([1]), (1,), 32).tolist() == [5]
    assert output_step(np.array([9]), np.array([1]), None, 32).tolist() == [10]


def test_atsn_float_rule_thresholds_match_eq_15_16():
    p = AtsnPolicy(cl_init=0.9, tau_cl=0.5)
    logits = np.log(np.array([[0.85, 0.15], [0.95, 0.05]]))
    assert p.decide(1, 4, logits).tolist() == [False, True]  # CL_1 = 0.9
    assert p.decide(2, 4, logits).tolist() == [True, True]  # CL_2 = 0.45
    seq = np.repeat(logits[:, None, :], 4, axis=1)
    assert p.exit_steps(seq).tolist() == [2, 1]


def test_atsn_never_exits_at_T_by_rule_but_stops_there():
    seq = np.zeros((3, 3, 4))  # uniform softmax never passes a 0.999 confidence
    assert AtsnPolicy().exit_steps(seq).tolist() == [3, 3, 3]
    assert FixedPolicy().exit_steps(seq).tolist() == [3, 3, 3]


def test_hardware_lut_rule_agrees_with_float_rule():
    rng = np.random.default_rng(0)
    n, T, C = 4000, 4, 10
    scale = 0.02
    membranes = rng.normal(0, 400, size=(n, T, C)).round().astype(np.int64)
    membranes[:, :, 0] += rng.integers(0, 800, size=(n, T))
    logits = membranes * scale
    for cl, tau in ((0.999, 0.999), (0.99, 0.95), (0.9, 0.9)):
        f = AtsnPolicy(cl, tau).exit_steps(logits)
        h = AtsnPolicy(cl, tau, hardware=True).exit_steps(logits, membranes, np.full(T, scale))
        assert (f == h).mean() >= 0.999


def test_lut_interpolation_accuracy():
    p = AtsnPolicy(hardware=True)
    diffs = np.arange(0, 1000)
    approx = p.exp_fixed(diffs, 0.01) / 2**p.frac_bits
    exact = np.exp(-diffs * 0.01)
    step = p.lut_range / p.lut_entries
    # linear interpolation of exp on (-inf, 0] errs by at most step**2 / 8, plus fixed-point rounding
    assert np.abs(approx - exact).max() <= step**2 / 8 + 2.0 / 2**p.frac_bits


def test_lut_rule_takes_any_scale_and_membrane_width():
    """A large logit_scale or 64-bit membranes must not wrap diff * K in int64 (it crashed or indexed backwards)."""
    p = AtsnPolicy(hardware=True)
    one = 2**p.frac_bits
    extreme = np.array([[np.iinfo(np.int64).max, np.iinfo(np.int64).min, 0]], dtype=np.int64)
    for scale in (300.0, 1e12, 1e300):
        assert p.exp_fixed(np.array([0, 1, 2**40, 2**62]), scale).tolist() == [one, 0, 0, 0]
        assert p.decide(1, 4, extreme * 0.0, extreme, scale).tolist() == [True]
    tiny = 1e-30  # every difference lands on the table's first entry
    assert p.exp_fixed(np.array([0, 2**62]), tiny).tolist() == [one, one]
    # just inside and just past the table's end, at a scale whose factor is large
    scale = 1e6
    assert p.exp_fixed(np.array([0, 1]), scale).tolist() == [one, 0]
    # agrees with the unclipped arithmetic wherever that does not wrap
    diffs = np.arange(0, 5000)
    for scale in (0.003, 0.01, 0.5, 7.0):
        factor = p.index_factor(scale)
        pos = diffs * factor
        idx = pos >> p.frac_bits
        frac = pos & (one - 1)
        idx_c = np.minimum(idx, p.lut_entries - 1)
        lo, hi = p.lut[idx_c], p.lut[idx_c + 1]
        plain = np.where(idx < p.lut_entries, lo - (((lo - hi) * frac) >> p.frac_bits), 0)
        assert (p.exp_fixed(diffs, scale) == plain).all()


def test_dtsnn_entropy_rule():
    p = DtsnnPolicy(theta=0.5)
    confident = np.array([[10.0, 0.0, 0.0]])
    flat = np.zeros((1, 3))
    assert p.decide(1, 4, confident).tolist() == [True]
    assert p.decide(1, 4, flat).tolist() == [False]
    assert softmax(flat).sum() == pytest.approx(1.0)


def test_policy_errors_are_user_errors():
    with pytest.raises(SatasimError):
        policy_from_name("bogus")
    with pytest.raises(SatasimError):
        AtsnPolicy(cl_init=1.5)
    with pytest.raises(SatasimError):
        DtsnnPolicy(theta=0)


def test_running_sum_prediction_is_argmax_of_geometric_mean_softmax():
    """exit_unit.prediction: membrane_sum = argmax of prod_t softmax(s*u_t) (log Z_t is class-independent)."""
    from satasim_atsn.snn.exit_policies import hardware_predictions

    rng = np.random.default_rng(3)
    u = rng.integers(-200, 200, size=(500, 4, 10))
    exit_t = rng.integers(1, 5, size=500)
    scale = 0.037
    got = hardware_predictions(u, exit_t, "membrane", "membrane_sum")
    logits = u * scale
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(
        -1, keepdims=True)
    geo = np.array([logp[i, : exit_t[i]].sum(0) for i in range(500)])
    clear = np.sort(geo, -1)[:, -1] - np.sort(geo, -1)[:, -2] > 1e-9
    assert clear.mean() > 0.9
    assert (got[clear] == geo[clear].argmax(-1)).all()
    alone = hardware_predictions(u, exit_t, "membrane", "membrane")
    assert (alone == u[np.arange(500), exit_t - 1].argmax(-1)).all()
    assert (alone != got).any()  # the two rules differ on some images
    # an accumulate output layer's membrane already is the running sum: both rules agree
    assert (hardware_predictions(u, exit_t, "accumulate", "membrane_sum") == alone).all()


def test_evaluation_reports_both_prediction_rules():
    """evaluate: the default running-sum prediction and the membrane-alone one, each against eq. 10."""
    from satasim_atsn.snn.exit_policies import hardware_predictions
    from satasim_atsn.snn.forward import run_forward
    from satasim_atsn.train.evaluation import evaluate_workload
    from satasim_atsn.workload.synthetic import random_workload

    candidates = (random_workload(s, images=40) for s in range(10))
    wl = next(w for w in candidates if w.layers[-1]["output_mode"] == "membrane")
    table = evaluate_workload(wl)
    res = run_forward(wl)
    alone = hardware_predictions(res.out_membrane, res.exit_t, "membrane", "membrane")
    running = hardware_predictions(res.out_membrane, res.exit_t, "membrane", "membrane_sum")
    assert (res.pred_hw == running).all()
    assert table["fixed"]["hw_pred_differs"] == round(float((running != res.pred).mean()), 6)
    assert table["fixed"]["hw_pred_membrane_differs"] == round(float((alone != res.pred).mean()), 6)
