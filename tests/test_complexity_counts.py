"""Eq. 19's complexity and the firing rates on a hand-made forward result: every value worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.snn.complexity import complexity, firing_rates, ops_until_exit, synaptic_ops_per_image
from satasim_atsn.snn.forward import ForwardResult


def _result(exit_t: list[int], sops: dict[str, list[int]], spikes: dict[str, list[int]],
            neurons: dict[str, int]) -> ForwardResult:
    """A forward result of len(exit_t) images, T = 3, holding only the counts complexity.py reads."""
    n = len(exit_t)
    empty = np.zeros((n, 3, 2))
    return ForwardResult(out_membrane=empty, logits=empty, exit_t=np.array(exit_t), pred=np.zeros(n, np.int64),
                         pred_hw=np.zeros(n, np.int64), scale_per_t=np.ones(3),
                         spike_counts={k: np.array(v) for k, v in spikes.items()},
                         sops={k: np.array(v) for k, v in sops.items()}, neurons=neurons)


def test_ops_until_exit_sums_the_steps_up_to_and_including_each_exit():
    per_image = np.array([[1, 2, 4], [8, 16, 32], [64, 128, 256]])
    assert ops_until_exit(per_image, np.array([2, 1, 3])) == 1 + 2 + 8 + 64 + 128 + 256


def test_synaptic_ops_are_per_image_and_the_first_layer_can_be_left_out():
    run = _result([1, 3], {"conv1": [10, 0, 0], "fc": [3, 4, 5]}, {}, {})
    base = _result([3, 3], {"conv1": [10, 0, 0], "fc": [6, 8, 10]}, {}, {})
    assert synaptic_ops_per_image(run) == (10 + 12) / 2
    assert synaptic_ops_per_image(run, include_first_layer=False) == 12 / 2
    assert complexity(run) == 11.0
    assert complexity(run, base) == pytest.approx(11 / 17)  # (10 + 12) / 2 over (10 + 24) / 2
    assert complexity(run, base, include_first_layer=False) == pytest.approx(12 / 24)


def test_firing_rates_divide_by_the_images_still_running_at_t():
    # image 0 stops at t = 1, image 1 at t = 3: 2, 1, 1 images running; a layer of 2 neurons
    run = _result([1, 3], {}, {"conv1": [2, 1, 0]}, {"conv1": 2})
    np.testing.assert_array_equal(firing_rates(run)["conv1"], [2 / 4, 1 / 2, 0.0])
