"""The exit rules at their edges, from the paper's equations: strict comparisons (eq. 7, 16, 18), the entropy's
ln C normalisation (eq. 6), eq. 10's mean over t <= exit, the fixed-point CL_t of the AT unit, and where the
stored hyper-parameters are read. Each case is worked by hand (mutation testing, session 37: the suite let a
>= for a >, a sum over the exit step alone and a truncated CL_t through)."""

from __future__ import annotations

import numpy as np

from satasim_atsn.snn.exit_policies import (
    AtsnPolicy,
    DtsnnPolicy,
    exit_settings,
    mean_softmax_argmax,
    policy_from_name,
)


def test_a_confidence_equal_to_the_threshold_does_not_exit():
    """eq. 16: exit when max softmax > CL_t; two equal logits give exactly 0.5, which does not pass CL = 0.5."""
    even = np.zeros((1, 2))
    assert AtsnPolicy(cl_init=0.5, tau_cl=1.0).decide(1, 4, even).tolist() == [False]
    assert AtsnPolicy(cl_init=0.49, tau_cl=1.0).decide(1, 4, even).tolist() == [True]


def test_the_hardware_rule_is_strict_too():
    """eq. 18: exp(0) > CL_t x sum_j exp(d_j). Two equal membranes: 2^23 x 2^23 against 2^22 x (2 x 2^23), equal."""
    policy = AtsnPolicy(cl_init=0.5, tau_cl=1.0, hardware=True)
    assert policy.frac_bits == 23 and policy.cl_fixed(1) == 2**22
    membranes = np.array([[7, 7]], dtype=np.int64)
    assert policy.decide(1, 4, membranes * 0.1, membranes, 0.1).tolist() == [False]
    assert policy.decide(1, 4, np.array([[0.8, 0.7]]), np.array([[8, 7]]), 0.1).tolist() == [True]


def test_the_at_units_cl_t_is_rounded_to_the_nearest_fixed_point_value():
    """CL_t x 2^23 rounded: 0.999 x 2^23 = 8380219.39 -> 8380219; 0.999^2 x 2^23 = 8371839.17 -> 8371839;
    with 20 bits 0.999 x 2^20 = 1047527.42 -> 1047527 and 0.999^2 x 2^20 = 1046479.90 -> 1046480."""
    policy = AtsnPolicy(hardware=True)
    assert policy.cl_fixed(1) == 8380219
    assert policy.cl_fixed(2) == 8371839
    narrow = AtsnPolicy(hardware=True, frac_bits=20)
    assert (narrow.cl_fixed(1), narrow.cl_fixed(2)) == (1047527, 1046480)


def test_the_at_units_test_cannot_wrap_for_many_classes_or_wide_fractions():
    """eq. 18 compares 2^(2f) with CL_t x sum_j exp(d_j): with 30 fraction bits and 10,000 equal membranes that
    product is about 2^73, past int64. The unit's test is exact for any count: 10,000 equal membranes (max
    softmax 1e-4) never clear CL = 0.5, one membrane 40 above 9,999 equal others (exp(-40 x 0.5) each) does."""
    for bits in (20, 24, 30):
        policy = AtsnPolicy(cl_init=0.5, tau_cl=1.0, hardware=True, frac_bits=bits)
        equal = np.zeros((1, 10_000), dtype=np.int64)
        assert policy.decide(1, 4, equal * 1.0, equal, 0.5).tolist() == [False]
        one_high = equal.copy()
        one_high[0, 0] = 40
        assert policy.decide(1, 4, one_high * 0.5, one_high, 0.5).tolist() == [True]


def test_normalised_entropy_divides_by_ln_c_and_is_strict():
    """eq. 6-7: H(p) / ln C < theta. p = (0.9, 0.1): H / ln 2 = 0.46900; a uniform row has exactly 1."""
    row = np.log(np.array([[0.9, 0.1]]))
    assert DtsnnPolicy(theta=0.470).decide(1, 4, row).tolist() == [True]
    assert DtsnnPolicy(theta=0.468).decide(1, 4, row).tolist() == [False]
    assert DtsnnPolicy(theta=1.0).decide(1, 4, np.zeros((1, 3))).tolist() == [False]


def test_the_prediction_averages_the_softmax_over_every_step_up_to_the_exit():
    """eq. 10: argmax of sum_{t <= exit} softmax(z_t). t = 1 is sure of class 0, t = 2 mildly prefers class 1:
    the sum over both says 0 (the exit step alone would say 1); equal sums go to the lowest class."""
    logits = np.array([[[10.0, 0.0], [0.0, 1.0]]])
    assert mean_softmax_argmax(logits, np.array([2])).tolist() == [0]
    assert mean_softmax_argmax(logits, np.array([1])).tolist() == [0]
    assert mean_softmax_argmax(np.zeros((1, 2, 3)), np.array([2])).tolist() == [0]


def test_stored_settings_are_read_each_from_its_own_key_and_one_is_allowed():
    assert exit_settings({"exit_policy": {"cl_init": 0.9, "tau_cl": 0.8, "theta": 0.3}}) == (0.9, 0.8, 0.3)
    assert exit_settings({}) == (0.999, 0.999, 0.1)
    assert exit_settings({}, cl_init=0.5, tau_cl=0.6, theta=0.7) == (0.5, 0.6, 0.7)
    assert AtsnPolicy(cl_init=1.0, tau_cl=1.0).confidence(3) == 1.0  # (0, 1]: 1 is allowed
    assert DtsnnPolicy(theta=1.0).theta == 1.0
    assert policy_from_name("atsn-hw").hardware and not policy_from_name("atsn").hardware
