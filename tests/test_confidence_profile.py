"""The per-timestep confidence profile of `satasim evaluate`: shares of images that clear CL_t, exactly."""

from __future__ import annotations

import math

import numpy as np

from satasim_atsn.train.evaluation import confidence_profile, format_table


def _logits_with_top(p_top: float, classes: int = 10, correct: int = 0) -> np.ndarray:
    """A logit row whose softmax puts p_top on class ``correct`` and the rest evenly on the others."""
    row = np.zeros(classes)
    row[correct] = math.log(p_top * (classes - 1) / (1.0 - p_top))
    return row


def test_profile_counts_images_above_cl_t_per_timestep():
    # 4 images, T = 3: tops at t=1 (0.9995, 0.95, 0.5, 0.9995), t=2 all 0.99995, t=3 all 0.2 (uniform-ish)
    tops = [[0.9995, 0.99995, 0.2], [0.95, 0.99995, 0.2], [0.5, 0.99995, 0.2], [0.9995, 0.99995, 0.2]]
    logits = np.array([[_logits_with_top(p) for p in row] for row in tops])
    labels = np.array([0, 0, 0, 3])  # the last image is confidently wrong
    rows = confidence_profile(logits, labels, "membrane", cl_init=0.999, tau_cl=0.999)
    assert [r["t"] for r in rows] == [1, 2, 3]
    assert rows[0]["cl_t"] == 0.999 and rows[1]["cl_t"] == round(0.999 * 0.999, 9)
    assert rows[0]["share_above_cl_t"] == 0.5  # images 0 and 3
    assert rows[0]["accuracy_above_cl_t"] == 0.5  # image 0 right, image 3 wrong
    assert rows[0]["share_above"] == {"0.9": 0.75, "0.99": 0.5, "0.999": 0.5}
    assert rows[1]["share_above_cl_t"] == 1.0
    assert rows[2]["share_above_cl_t"] == 0.0 and rows[2]["accuracy_above_cl_t"] is None


def test_profile_decides_a_tie_with_the_level_exactly():
    # max softmax exactly 0.5 is not above 0.5 (strict >, as eq. 16), however the floats round
    logits = np.zeros((1, 1, 2))
    rows = confidence_profile(logits, None, "membrane", cl_init=0.5, tau_cl=1.0, levels=(0.5,))
    assert rows[0]["share_above_cl_t"] == 0.0 and rows[0]["share_above"] == {"0.5": 0.0}
    assert "accuracy_above_cl_t" not in rows[0]


def test_profile_is_printed_by_format_table():
    logits = np.array([[_logits_with_top(0.9999), _logits_with_top(0.9999)]])
    table = {"confidence_profile": confidence_profile(logits, np.array([0]), "membrane")}
    line = format_table(table).splitlines()[-1]
    assert line.startswith("max o^t > CL_t (the exit test): t=1 100.00% (acc 100.00%)")
    assert "> 0.999: 100.0% 100.0%" in line
