"""The highest confidence max o^t that an output layer can reach at each timestep, bounded from its weights.

The ATSN exit (eq. 16) stops an image at the first t < T whose max softmax of the output clears
CL_t. Whether any input at all can clear it follows from the output layer alone. With inputs
x_k in [0, X] (spikes: X = 1; a global average pool's spike sums: X = its window), the current
difference between classes i and j in one timestep is at most

    M_ij = X * sum_k max(0, W_ik - W_jk) + b_i - b_j          (integer units)

and the non-reset output membrane of eq. 8, u_t = decay(u_{t-1}) + W x_t + b with the PE's
floored shift-add decay (factor tau = sum 2^-s over the shifts), keeps every margin below

    m_ij(1) = M_ij,   m_ij(t) = tau * m_ij(t-1) + len(shifts) + M_ij

(each floored shift loses less than one unit; saturation only shrinks margins). An output layer
reading a direct-encoded image (X = 255) takes (W.x + b) >> input_shift, so its M_ij becomes
M_ij / 2^shift + 1. An accumulate output (eq. 5) averages its running sum, so its logit margins stay
below M_ij at every t. Then

    max o_i^t <= 1 / (1 + sum_{j != i} exp(-scale * m_ij(t))),

the softmax of the row (0 at i, -scale * m_ij elsewhere). The margins are exact arithmetic on the
integer weights; the decision bound > CL_t is taken like the exit rules' (float filter, decimal
fallback near the level), and the value kept is rounded to 6 decimals, redone in decimal on a
rounding boundary, so both are the same on every CPU.
"""

from __future__ import annotations

import numpy as np

from satasim_atsn import exactmath
from satasim_atsn.snn.exit_policies import (
    CL_INIT_DEFAULT,
    EXACT_MARGIN,
    TAU_CL_DEFAULT,
    AtsnPolicy,
    exact_softmax,
    softmax,
)
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.steps import MOST_STEPS, steps_shown


def reads_pixels(workload: Workload) -> bool:
    """True when the output layer itself reads a direct-encoded image (directly or through a flatten)."""
    name = workload.layers[-1]["inputs"][0]
    while name != "input" and workload.layer(name)["type"] == "flatten":
        name = workload.layer(name)["inputs"][0]
    return name == "input" and workload.input_encoding == "direct"


def output_input_ceiling(workload: Workload) -> int:
    """The largest value one input of the output layer can take: 1 for spikes, 255 for pixels, a sum-pool's window."""
    if reads_pixels(workload):
        return 255
    src_name = workload.layers[-1]["inputs"][0]
    if src_name == "input":
        return 1  # spike frames
    src = workload.layer(src_name)
    return int(np.prod(src["in_shape"][1:])) if src["type"] == "avgpool" else 1


def single_step_margins(workload: Workload) -> np.ndarray:
    """M [C, C]: the most the output current of class i can exceed class j's in one timestep (integer units)."""
    out = workload.layers[-1]
    w = workload.weights(out["name"]).astype(np.int64)
    bias = workload.bias(out["name"]) if f"b/{out['name']}" in workload.arrays else None
    b = np.zeros(w.shape[0], dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64)
    ceiling = output_input_ceiling(workload)
    # sum_k max(0, W_ik - W_jk), one class i at a time (C x C x K would not fit for wide layers)
    margins = np.empty((w.shape[0], w.shape[0]), dtype=np.int64)
    for i in range(w.shape[0]):
        margins[i] = np.clip(w[i] - w, 0, None).sum(axis=1) * ceiling + b[i] - b
    return margins


def margin_bounds(workload: Workload) -> np.ndarray:
    """m [T, C, C]: upper bounds of the logit margins u_i - u_j at t = 1..T, in integer units (float64)."""
    out = workload.layers[-1]
    single = single_step_margins(workload).astype(np.float64)
    if reads_pixels(workload):
        # an output layer on the image itself gets (W.x + b) >> input_shift, floored: at most one unit more
        single = single / 2.0 ** workload.input_shift + 1.0
    T = workload.timesteps
    bounds = np.empty((T, *single.shape))
    if out["output_mode"] == "accumulate":
        bounds[:] = single  # (1/t) * running sum: the average of t single-step margins
        return bounds
    shifts = workload.decay_shifts
    tau = sum(2.0 ** -s for s in shifts)  # exact: a sum of a few powers of two
    bounds[0] = single
    for t in range(1, T):
        bounds[t] = tau * bounds[t - 1] + len(shifts) + single
    return bounds


BOUND_DECIMALS = 6


def confidence_ceiling(workload: Workload) -> list[dict]:
    """Per t = 1..T: ``{"t", "bound"}``, the bound on max o^t over every possible input.

    ``bound`` is rounded to BOUND_DECIMALS; where the float value lies within a hair of a rounding
    boundary, the rows that could hold the maximum are redone in decimal, so the stored digits are the
    same on every CPU. Raises ValueError for a network without an output layer.
    """
    out = workload.layers[-1]
    if out["type"] != "output":
        raise ValueError("a network without an output layer has no softmax output to bound")
    scale = float(out["logit_scale"])
    rows = []
    for t, m in enumerate(margin_bounds(workload), start=1):
        logit_rows = -scale * m  # row i: class i at 0 (diagonal), the others at -scale * m_ij
        np.fill_diagonal(logit_rows, 0.0)
        own = softmax(logit_rows)[np.arange(m.shape[0]), np.arange(m.shape[0])]
        best = float(own.max())
        digits = best * 10**BOUND_DECIMALS
        if abs(digits - np.floor(digits) - 0.5) > 1e-6:  # float error is ~1e-10 here: the rounding is safe
            bound = round(best, BOUND_DECIMALS)
        else:
            candidates = np.flatnonzero(own >= best - EXACT_MARGIN)
            top = max(exact_softmax(logit_rows[i])[i] for i in candidates)
            bound = float(round(top, BOUND_DECIMALS))
        rows.append({"t": t, "bound": bound})
    return rows


def can_clear(workload: Workload, level_per_t: list[float]) -> list[bool]:
    """For each t, whether some class's bound on max o^t is above ``level_per_t[t-1]`` (decided exactly)."""
    scale = float(workload.layers[-1]["logit_scale"])
    verdicts = []
    for m, level in zip(margin_bounds(workload), level_per_t, strict=True):
        logit_rows = -scale * m
        np.fill_diagonal(logit_rows, 0.0)
        verdicts.append(bool(_own_share_above(logit_rows, level).any()))
    return verdicts


def ceiling_table(workload: Workload, cl_init: float = CL_INIT_DEFAULT, tau_cl: float = TAU_CL_DEFAULT) -> list[dict]:
    """Per t: ``{"t", "bound", "cl_t", "can_clear_cl_t"}``, the ceiling against the ATSN rule's CL_t (eq. 15)."""
    policy = AtsnPolicy(cl_init, tau_cl)
    levels = [policy.confidence(t) for t in range(1, workload.timesteps + 1)]
    rows = confidence_ceiling(workload)
    for row, level, clears in zip(rows, levels, can_clear(workload, levels), strict=True):
        row.update(cl_t=round(level, 9), can_clear_cl_t=clears)
    return rows


def ceiling_line(rows: list[dict], output_mode: str) -> str:
    """The ceiling table as one line of text, as ``satasim evaluate`` and ``satasim workload info`` print it; only a
    t < T can be out of reach (t = T always stops). The equation named is the output layer's: eq. 8 for the
    non-reset membrane, eq. 5 for an accumulate output's mean."""
    def shown(row: dict) -> str:
        blocked = not row["can_clear_cl_t"] and row["t"] < len(rows)
        return f"t={row['t']} {row['bound']:.6f}" + (f" (cannot clear CL_t = {row['cl_t']})" if blocked else "")

    equation = "eq. 5" if output_mode == "accumulate" else "eq. 8"
    blocked = [i for i, row in enumerate(rows) if not row["can_clear_cl_t"] and row["t"] < len(rows)]
    runs = _runs(blocked)  # each run of steps out of reach is kept by its ends and named whole at the end (T = 20
    ends = sorted({i for first, last in runs for i in (first, last)})  # with 19 out of reach printed all 20)
    line = steps_shown([shown(row) for row in rows], "  ", keep=ends, show=8)
    if len(rows) > MOST_STEPS and len(blocked) > len(ends):  # some left out in "... N more ..."
        line += "; out of reach: t = " + ", ".join(f"{a + 1}" if a == b else f"{a + 1}..{b + 1}" for a, b in runs)
    return f"max o^t any input can reach (bound from the output weights, {equation}): " + line


def _runs(indices: list[int]) -> list[tuple[int, int]]:
    """Sorted indices as (first, last) runs of consecutive values."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def _own_share_above(logit_rows: np.ndarray, level: float) -> np.ndarray:
    """softmax(row i)_i > level for each row i, decided exactly (float filter, decimal fallback near the level)."""
    n = logit_rows.shape[0]
    own = softmax(logit_rows)[np.arange(n), np.arange(n)]
    out = own > level
    for i in np.flatnonzero(np.abs(own - level) <= EXACT_MARGIN):
        out[i] = exact_softmax(logit_rows[i])[i] > exactmath.dec(level)
    return out
