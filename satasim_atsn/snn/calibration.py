"""How well the output's softmax confidence matches its accuracy, per timestep (why 0.999 exits are rare or not).

The ATSN exit (eq. 16) trusts max softmax(z_t) as the probability that the class argmax z_t is
right. For a network whose confidence is calibrated, an image clears CL_t = 0.999 only when the
network is right on 99.9% of such images; a network that is 82% accurate cannot be that sure of
most images, whatever its threshold. Per t this module measures, on labelled images:

- ``accuracy_argmax``: the share of images whose argmax z_t is the label (the class the test trusts);
- ``mean_confidence``: the mean of max softmax(z_t); above the accuracy = over-confident, below = under;
- ``nll_temperature``: the temperature T* minimising the mean cross-entropy of softmax(z_t / T) on a
  grid of TEMPERATURE_STEP (Guo et al., 2017, "On Calibration of Modern Neural Networks"); at a grid
  end it is None and ``nll_temperature_at_most`` / ``nll_temperature_at_least`` holds the bound. T* < 1
  means the softmax is too flat (sharpening it would be calibrated), T* > 1 too sharp. A network
  trained to 100% on its training set typically has T* > 1 on its test set, and those are the
  networks whose images clear 0.999 early.

Every stored number is the same on every CPU: the mean confidence is rounded to CONFIDENCE_DECIMALS
and recomputed in 40-digit decimal when the float mean lies within a hair of a rounding boundary;
the temperature is a grid point, and when the two best grid points' float losses are within
EXACT_LOSS_MARGIN of each other they are compared in decimal.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from satasim_atsn import exactmath
from satasim_atsn.snn.exit_policies import exact_softmax, softmax
from satasim_atsn.workload.steps import steps_shown

TEMPERATURE_STEP = 0.01
TEMPERATURE_RANGE = (0.1, 5.0)  # grid ends; T* at an end means "at least / at most this"
CONFIDENCE_DECIMALS = 4
FLAT_LOSS_SPREAD = 1e-6  # a loss this flat over 20 grid steps leaves at most 2 points within the margin
EXACT_LOSS_MARGIN = 1e-9  # float64 losses of 1e4 rows agree to ~1e-13; closer than this is decided exactly
COARSE_STRIDE = 10  # grid points between the coarse pass's temperatures
_GRID_CHUNK = 16  # temperatures per vectorised pass: chunk x rows x classes float64 values in memory


def temperature_grid() -> np.ndarray:
    """The temperatures tried, TEMPERATURE_RANGE in steps of TEMPERATURE_STEP (exact decimal grid points)."""
    lo, hi = TEMPERATURE_RANGE
    count = int(round((hi - lo) / TEMPERATURE_STEP)) + 1
    return np.array([round(lo + i * TEMPERATURE_STEP, 2) for i in range(count)])


def mean_nll(logits: np.ndarray, labels: np.ndarray, temperatures: np.ndarray) -> np.ndarray:
    """Mean cross-entropy of softmax(logits / T) against ``labels`` for each T (float64, last bits CPU-dependent)."""
    z = logits - logits.max(axis=-1, keepdims=True)  # the shift does not change the loss, and keeps exp <= 1
    target = z[np.arange(z.shape[0]), labels]
    out = np.empty(len(temperatures))
    for lo in range(0, len(temperatures), _GRID_CHUNK):
        inv = (1.0 / temperatures[lo:lo + _GRID_CHUNK]).reshape(-1, 1, 1)
        log_total = np.log(np.exp(z[None] * inv).sum(axis=-1))  # [chunk, rows]
        out[lo:lo + _GRID_CHUNK] = (log_total - target[None] * inv[:, :, 0]).mean(axis=-1)
    return out


def exact_mean_nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> Decimal:
    """The same loss in 40-digit decimal arithmetic (machine independent, slow: for tie-breaks only)."""
    ctx = exactmath.ctx()
    inv = ctx.divide(Decimal(1), exactmath.dec(temperature))
    total = Decimal(0)
    for row, label in zip(logits, labels, strict=True):
        top = exactmath.dec(float(row.max()))
        scaled = [ctx.multiply(ctx.subtract(exactmath.dec(float(v)), top), inv) for v in row]
        log_sum = exactmath.dln(sum((exactmath.dexp(s) for s in scaled), Decimal(0)))
        total += ctx.subtract(log_sum, scaled[int(label)])
    return ctx.divide(total, Decimal(len(labels)))


def nll_temperature(logits: np.ndarray, labels: np.ndarray) -> float | None:
    """The grid temperature with the lowest mean cross-entropy; ties go to the lower temperature.

    None when the loss hardly depends on T (its spread over the whole grid is below FLAT_LOSS_SPREAD, e.g.
    outputs that are equal for every class): no temperature is then better than another. A loss that falls
    towards the grid's lowest T and is flat there (a confident network right on every image: the loss is near 0)
    gives that lowest T, which callers report as a bound; judged on the final window alone, it gave None.

    The loss is convex in 1/T, hence unimodal along the grid: a pass over every COARSE_STRIDE-th
    point brackets the minimum, and the fine points between the coarse minimum's neighbours decide it.
    """
    grid = temperature_grid()
    coarse = np.arange(0, len(grid), COARSE_STRIDE)
    coarse_losses = mean_nll(logits, labels, grid[coarse])
    lowest = float(coarse_losses.min())
    if float(coarse_losses.max()) - lowest < FLAT_LOSS_SPREAD:
        return None
    if float(coarse_losses[0]) - lowest < FLAT_LOSS_SPREAD:  # still falling, flat near 0, at the lowest T
        return float(grid[0])
    centre = int(coarse[int(np.argmin(coarse_losses))])
    fine = np.arange(max(centre - COARSE_STRIDE, 0), min(centre + COARSE_STRIDE, len(grid) - 1) + 1)
    losses = mean_nll(logits, labels, grid[fine])
    order = np.argsort(losses, kind="stable")
    best = int(order[0])
    close = [int(i) for i in order[1:3] if losses[i] - losses[best] <= EXACT_LOSS_MARGIN]
    if close:  # float losses this close could order differently on another CPU: decide in decimal
        exact = {i: exact_mean_nll(logits, labels, float(grid[fine[i]])) for i in [best, *close]}
        best = min(exact, key=lambda i: (exact[i], i))
    return float(grid[fine[best]])


def mean_confidence(logits: np.ndarray) -> float:
    """Mean of max softmax over the rows, rounded to CONFIDENCE_DECIMALS the same way on every CPU."""
    value = float(softmax(logits).max(axis=-1).mean())
    digits = value * 10**CONFIDENCE_DECIMALS
    if abs(digits - np.floor(digits) - 0.5) > 1e-6:  # float error here is ~1e-12: the rounding is safe
        return round(value, CONFIDENCE_DECIMALS)
    ctx = exactmath.ctx()
    total = sum((max(exact_softmax(row)) for row in logits), Decimal(0))
    return float(round(ctx.divide(total, Decimal(len(logits))), CONFIDENCE_DECIMALS))


def calibration(logits: np.ndarray, labels: np.ndarray) -> list[dict]:
    """Per t = 1..T of logits [N, T, C]: accuracy of argmax z_t, mean max softmax, NLL-optimal temperature."""
    labels = np.asarray(labels, dtype=np.int64)
    if logits.shape[0] == 0:
        return []
    rows = []
    for t in range(1, logits.shape[1] + 1):
        z = np.ascontiguousarray(logits[:, t - 1], dtype=np.float64)
        rows.append({"t": t, "accuracy_argmax": round(float((z.argmax(axis=-1) == labels).mean()), 6),
                     "mean_confidence": mean_confidence(z), **temperature_fields(nll_temperature(z, labels))})
    return rows


def temperature_fields(found: float | None) -> dict:
    """A row's T* fields: ``nll_temperature`` the optimum inside the grid; at a grid end, where the optimum may lie
    beyond it, ``nll_temperature`` is None and ``nll_temperature_at_most`` (0.1) or ``_at_least`` (5.0) the bound."""
    lo, hi = TEMPERATURE_RANGE
    if found is not None and found <= lo:
        return {"nll_temperature": None, "nll_temperature_at_most": lo}
    if found is not None and found >= hi:
        return {"nll_temperature": None, "nll_temperature_at_least": hi}
    return {"nll_temperature": found}


def temperature_text(row: dict) -> str:
    """T* as printed: ``T* 1.99``, ``T* <= 0.10`` or ``T* >= 5.00`` at a grid end, ``T* n/a`` for a flat loss."""
    if "nll_temperature_at_most" in row:
        return f"T* <= {row['nll_temperature_at_most']:.2f}"
    if "nll_temperature_at_least" in row:
        return f"T* >= {row['nll_temperature_at_least']:.2f}"
    return "T* n/a" if row["nll_temperature"] is None else f"T* {row['nll_temperature']:.2f}"


def calibration_line(rows: list[dict]) -> str:
    """One line for `satasim evaluate`: per t, accuracy of argmax z_t against mean confidence, and T*."""
    parts = [f"t={row['t']} acc {100 * row['accuracy_argmax']:.2f}% conf {100 * row['mean_confidence']:.2f}% "
             + temperature_text(row) for row in rows]
    return ("calibration of max o^t (T* = NLL-optimal temperature; > 1 over-confident, < 1 under): "
            + steps_shown(parts, "  ", show=4))
