"""The calibration rows of `satasim evaluate`: accuracy vs mean confidence, and the NLL-optimal temperature."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.snn import calibration as cal
from satasim_atsn.snn.exit_policies import exact_softmax, softmax
from satasim_atsn.train.evaluation import format_table


def _labelled_by_temperature(temperature: float, rows: int = 20000, classes: int = 10, seed: int = 0):
    """Logits and labels drawn from softmax(z / temperature): that temperature is the calibrated one."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 3.0, size=(rows, classes))
    p = softmax(z / temperature)
    labels = (p.cumsum(axis=-1) < rng.random((rows, 1))).sum(axis=-1)
    return z, np.minimum(labels, classes - 1)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_nll_temperature_recovers_the_temperature_labels_were_drawn_with(temperature):
    z, labels = _labelled_by_temperature(temperature)
    found = cal.nll_temperature(z, labels)
    assert found == pytest.approx(temperature, rel=0.06)


@pytest.mark.parametrize("seed", range(4))
def test_coarse_then_fine_search_equals_the_whole_grid(seed):
    rng = np.random.default_rng(seed)
    temperature = float(rng.uniform(0.3, 3.0))
    z, labels = _labelled_by_temperature(temperature, rows=3000, seed=seed)
    grid = cal.temperature_grid()
    assert grid[0] == 0.1 and grid[-1] == 5.0 and len(grid) == 491
    whole = float(grid[int(np.argmin(cal.mean_nll(z, labels, grid)))])
    assert cal.nll_temperature(z, labels) == whole


def test_search_stops_at_the_grid_ends():
    z, labels = _labelled_by_temperature(1.0, rows=2000)
    always_wrong = (z.argmax(axis=-1) + 1) % z.shape[1]  # flatter is always better: the largest temperature
    assert cal.nll_temperature(z, always_wrong) == 5.0
    one_hot = np.eye(10)[np.arange(200) % 10]  # always right: the sharpest temperature
    assert cal.nll_temperature(one_hot, np.arange(200) % 10) == 0.1


def test_exact_loss_agrees_with_the_float_loss():
    z, labels = _labelled_by_temperature(1.5, rows=50)
    for temperature in (0.37, 1.0, 2.21):
        exact = float(cal.exact_mean_nll(z, labels, temperature))
        assert exact == pytest.approx(float(cal.mean_nll(z, labels, np.array([temperature]))[0]), rel=1e-12)


def test_flat_loss_has_no_temperature():
    z = np.zeros((100, 10))
    assert cal.nll_temperature(z, np.arange(100) % 10) is None
    rows = cal.calibration(z[:, None, :], np.arange(100) % 10)
    assert rows == [{"t": 1, "accuracy_argmax": 0.1, "mean_confidence": 0.1, "nll_temperature": None}]
    assert "T* n/a" in cal.calibration_line(rows)


def test_mean_confidence_on_a_rounding_boundary_is_the_decimal_one():
    # one row whose max softmax is 0.56785 up to the float rounding of its logit: 4-decimal boundary
    p = 0.56785
    row = np.array([[np.log(p / (1 - p)), 0.0]])
    exact = max(exact_softmax(row[0]))
    assert cal.mean_confidence(row) == float(round(exact, 4))


def test_rows_per_timestep_and_the_printed_line():
    z1, labels = _labelled_by_temperature(1.0, rows=4000, seed=1)
    z2 = 3.0 * z1  # the same ranking, three times sharper: over-confident, T* about 3
    rows = cal.calibration(np.stack([z1, z2], axis=1), labels)
    assert [r["t"] for r in rows] == [1, 2]
    assert rows[0]["accuracy_argmax"] == rows[1]["accuracy_argmax"] == round(float((z1.argmax(-1) == labels).mean()), 6)
    assert rows[1]["mean_confidence"] > rows[0]["mean_confidence"] > rows[0]["accuracy_argmax"] - 0.05
    assert rows[0]["nll_temperature"] == pytest.approx(1.0, abs=0.1)
    assert rows[1]["nll_temperature"] == pytest.approx(3.0, rel=0.1)
    line = format_table({"calibration": rows})
    assert line.startswith("calibration of max o^t") and "t=2 acc" in line and "T* " in line


def test_no_images_no_rows():
    assert cal.calibration(np.zeros((0, 4, 10)), np.zeros(0, dtype=np.int64)) == []


def test_a_temperature_at_a_grid_end_is_a_bound_not_an_optimum():
    """`T* 0.10` and `"nll_temperature": 0.1` read as an optimum at 0.1, where the optimum may lie below the grid."""
    z, labels = _labelled_by_temperature(1.0, rows=2000)
    always_wrong = (z.argmax(axis=-1) + 1) % z.shape[1]
    one_hot = np.eye(10)[np.arange(200) % 10]
    high = cal.calibration(z[:, None, :], always_wrong)[0]
    low = cal.calibration(one_hot[:, None, :], np.arange(200) % 10)[0]
    assert high["nll_temperature"] is None and high["nll_temperature_at_least"] == 5.0
    assert "nll_temperature_at_most" not in high
    assert low["nll_temperature"] is None and low["nll_temperature_at_most"] == 0.1
    line = cal.calibration_line([low, dict(high, t=2)])
    assert "t=1 acc 100.00%" in line and "T* <= 0.10" in line and "T* >= 5.00" in line
    inside = cal.calibration(z[:, None, :], labels)[0]
    assert sorted(inside) == ["accuracy_argmax", "mean_confidence", "nll_temperature", "t"]  # as before
    assert "T* 1.0" in cal.calibration_line([inside])


def test_mean_confidence_and_accuracy_on_hand_made_rows():
    # softmax of (ln 3, 0) is (0.75, 0.25); of (0, 0) is (0.5, 0.5); of (0, ln 4) is (0.2, 0.8)
    z = np.log(np.array([[3.0, 1.0], [1.0, 1.0], [1.0, 4.0]]))
    assert cal.mean_confidence(z) == round((0.75 + 0.5 + 0.8) / 3, 4) == 0.6833
    t1, t2 = z, z[:, ::-1]  # t = 2 swaps the classes: argmax (0, 0, 1) becomes (1, 0, 0)
    rows = cal.calibration(np.stack([t1, t2], axis=1), np.array([0, 0, 1]))
    assert [row["accuracy_argmax"] for row in rows] == [1.0, round(1 / 3, 6)]
    assert rows[0]["mean_confidence"] == rows[1]["mean_confidence"] == 0.6833


@pytest.mark.parametrize("temperature,seed", [(0.96, 1), (1.96, 1)])
def test_an_optimum_below_the_nearest_coarse_point_is_found(temperature, seed):
    # the coarse pass (every 0.1) lands above or below the optimum: the fine pass must search both sides of it
    z, labels = _labelled_by_temperature(temperature, rows=3000, seed=seed)
    grid = cal.temperature_grid()
    whole = float(grid[int(np.argmin(cal.mean_nll(z, labels, grid)))])
    coarse = grid[::cal.COARSE_STRIDE]
    centre = float(coarse[int(np.argmin(cal.mean_nll(z, labels, coarse)))])
    assert round(whole * 10) != whole * 10  # between coarse points
    assert cal.nll_temperature(z, labels) == whole
    assert whole < centre


def test_a_confident_network_right_on_every_image_has_the_bound_not_no_temperature():
    """Logits right on every image with confidence 0.987: the loss falls from 0.689 at T = 5 to 0.0128 at T = 1 and
    about 0 below, so the optimum is at the grid's low end (printed "T* <= 0.10"); the flatness test looked only at
    the window next to the best point, where the loss is near 0, and gave None ("T* n/a", h3, session 47)."""
    labels = np.arange(200) % 10
    z = np.zeros((200, 10))
    z[np.arange(200), labels] = 7.0  # softmax of the true class: e^7 / (e^7 + 9) = 0.9918
    assert cal.nll_temperature(z, labels) == 0.1
    row = cal.calibration(z[:, None, :], labels)[0]
    assert row["nll_temperature"] is None and row["nll_temperature_at_most"] == 0.1
    assert cal.nll_temperature(np.zeros((200, 10)), labels) is None  # truly flat: still no temperature
