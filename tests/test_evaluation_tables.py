"""The evaluation tables on two hand-made images: fixed-T accuracies (eq. 10 / eq. 5), the ATSN rule (eq. 15-16)
and its sweep, and the confidence profile, each value worked out by hand from the equations."""

from __future__ import annotations

import numpy as np

from satasim_atsn.train.evaluation import atsn_sweep, confidence_profile, gain_sweep, policy_table

# two classes; logits (d, 0) give max softmax sigmoid(|d|): sigmoid(3) = 0.9526, sigmoid(0.5) = 0.6225,
# sigmoid(2) = 0.8808. Image 0 (label 0) is sure and right from t = 1. Image 1 (label 1) leans to class 0 at t = 1,
# then to its class: its eq. 10 mean softmax of class 1 is 0.3775 at t = 1, (0.3775 + 0.8808) / 2 = 0.629 at t = 2.
LOGITS = np.array([[[3.0, 0.0], [3.0, 0.0], [3.0, 0.0]],
                   [[0.5, 0.0], [-2.0, 0.0], [-3.0, 0.0]]])
LABELS = np.array([0, 1])


def test_fixed_t_accuracy_reads_each_t_by_the_output_modes_rule():
    for mode in ("membrane", "accumulate"):  # eq. 10 (mean softmax up to t) and eq. 5 (the output at t)
        table = policy_table(LOGITS, LABELS, mode, cl_init=0.9, tau_cl=0.9)
        assert table["fixed_t"] == {"1": 0.5, "2": 1.0, "3": 1.0}, mode


def test_atsn_rule_and_sweep_lower_the_level_by_tau_cl_each_step():
    # CL_1 = 0.9: image 0 (0.9526) stops at t = 1; CL_2 = 0.9 * 0.9 = 0.81 < 0.8808: image 1 stops at t = 2
    table = policy_table(LOGITS, LABELS, "membrane", cl_init=0.9, tau_cl=0.9)
    assert table["atsn"] == {"accuracy": 1.0, "avg_timestep": 1.5}
    # with tau_CL = 0.999, CL_2 = 0.8991 > 0.8808: image 1 runs to T = 3
    assert policy_table(LOGITS, LABELS, "membrane", cl_init=0.9, tau_cl=0.999)["atsn"]["avg_timestep"] == 2.0
    # the sweep sets CL_init = tau_CL = v
    assert atsn_sweep(LOGITS, LABELS, "membrane", values=(0.9, 0.95)) == [
        {"cl_init": 0.9, "tau_cl": 0.9, "accuracy": 1.0, "avg_timestep": 1.5},
        {"cl_init": 0.95, "tau_cl": 0.95, "accuracy": 1.0, "avg_timestep": 2.0},  # CL_2 = 0.9025 > 0.8808
    ]


def test_confidence_profile_counts_the_images_above_cl_t_and_their_accuracy():
    rows = confidence_profile(LOGITS, LABELS, "membrane", cl_init=0.9, tau_cl=0.9, levels=(0.9, 0.99))
    assert [row["cl_t"] for row in rows] == [0.9, 0.81, 0.729]
    assert [row["share_above_cl_t"] for row in rows] == [0.5, 1.0, 1.0]
    assert rows[0]["accuracy_above_cl_t"] == 1.0  # only image 0 clears CL_1, and it is right (image 1 is not)
    assert rows[0]["share_above"] == {"0.9": 0.5, "0.99": 0.0}
    assert rows[1]["share_above"] == {"0.9": 0.5, "0.99": 0.0}


def test_gain_sweep_sharpens_the_output_before_the_exit_test():
    """Logits x k at CL_init = tau_CL = 0.99 (CL_2 = 0.9801). k = 1: sigmoid(3) = 0.9526 and sigmoid(2) = 0.8808
    never clear, both images run T = 3 (eq. 10 right on both). k = 2: image 0 clears at t = 1 (sigmoid(6) = 0.9975),
    image 1 at t = 2 (sigmoid(4) = 0.9820 > 0.9801; eq. 10's class-1 mean (0.2689 + 0.9820) / 2 > 1/2: right).
    k = 10: image 1's wrong lean at t = 1 clears too (sigmoid(5) = 0.9933): it exits there, wrong."""
    assert gain_sweep(LOGITS, LABELS, "membrane", 0.99, 0.99, gains=(1.0, 2.0, 10.0)) == [
        {"gain": 1.0, "accuracy": 1.0, "avg_timestep": 3.0},
        {"gain": 2.0, "accuracy": 1.0, "avg_timestep": 1.5},
        {"gain": 10.0, "accuracy": 0.5, "avg_timestep": 1.0},
    ]
    # k = 1 is the rule as policy_table applies it
    plain = policy_table(LOGITS, LABELS, "membrane", cl_init=0.99, tau_cl=0.99)["atsn"]
    assert gain_sweep(LOGITS, LABELS, "membrane", 0.99, 0.99, gains=(1.0,))[0] == {"gain": 1.0, **plain}
