"""The integer neuron and output rules of docs/workload-format.md, checked on hand-computed values.

LIF: u = sat(u_base + I), spike where u > vth (strictly), then u_base = 0 where it spiked, decay(u)
(a sum of floored right shifts) elsewhere. Output: membrane (eq. 8) u_t = sat(decay(u_{t-1}) + I_t),
logits u_t * logit_scale; accumulate (eq. 5) u_t = sat(u_{t-1} + I_t), logits u_t * logit_scale / t.
"""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.snn.forward import run_forward
from satasim_atsn.snn.neurons import decay, lif_step, output_step
from satasim_atsn.workload.synthetic import random_workload


def test_a_membrane_equal_to_its_threshold_does_not_spike():
    vth = np.array([10, 10, 10])
    spikes, base = lif_step(np.array([0, 0, 4]), np.array([10, 11, 6]), vth, (1,), 16)
    assert spikes.tolist() == [False, True, False]  # 10 > 10 is false; 11 > 10; 4 + 6 = 10 again
    assert base.tolist() == [5, 0, 5]  # floor(10 / 2), hard reset, floor(10 / 2)


def test_decay_floors_each_shift_separately_also_below_zero():
    # tau = 0.75 as (u >> 1) + (u >> 2): 7 -> 3 + 1 = 4 (not 5.25 rounded); -7 -> -4 + -2 = -6; -1 -> -1 + -1 = -2
    assert decay(np.array([-7, 7, -1, 0]), (1, 2)).tolist() == [-6, 4, -2, 0]


def test_saturation_comes_after_the_whole_update():
    # 16-bit membrane: 32000 + 1000 saturates to 32767 (below vth 40000), -33000 to -32768; both then decay
    spikes, base = lif_step(np.array([32000, -32000]), np.array([1000, -1000]), np.array([40000, 100]), (1,), 16)
    assert spikes.tolist() == [False, False]
    assert base.tolist() == [32767 >> 1, -32768 >> 1]


@pytest.mark.parametrize("shifts", [(1,), None])
def test_the_output_membrane_saturates_to_its_width(shifts):
    top = 2**31 - 1
    assert output_step(np.array([top]), np.array([top]), shifts, 32).tolist() == [top]
    assert output_step(np.array([-top - 1]), np.array([-top]), shifts, 32).tolist() == [-top - 1]
    assert output_step(np.array([top - 3]), np.array([10]), None, 32).tolist() == [top]


@pytest.mark.parametrize("mode", ["membrane", "accumulate"])
def test_logits_are_the_output_membrane_times_the_scale_and_over_t_when_accumulating(mode):
    wl = random_workload(4, images=3, timesteps=4, output_mode=mode)
    res = run_forward(wl)
    scale = float(wl.layers[-1]["logit_scale"])
    t = np.arange(1, 5, dtype=np.float64)
    per_t = scale / t if mode == "accumulate" else np.full(4, scale)
    np.testing.assert_array_equal(res.scale_per_t, per_t)
    np.testing.assert_allclose(res.logits, res.out_membrane * per_t[None, :, None], rtol=1e-12)
    assert np.abs(res.out_membrane).max() > 0
