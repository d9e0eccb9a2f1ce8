"""Pareto fronts of study points (each objective minimised or maximised)."""

from __future__ import annotations

import numpy as np


def pareto_front(values: np.ndarray, maximise: list[bool] | None = None) -> np.ndarray:
    """Boolean mask of the non-dominated rows of values [n, k].

    A row is dominated when another row is at least as good in every objective and strictly
    better in one. Objectives are minimised unless ``maximise[j]``. Rows with NaN are never on
    the front. Equal rows are all kept.
    """
    pts = np.asarray(values, dtype=np.float64)
    if pts.ndim != 2:
        raise ValueError("values must be [n, k]")
    n, k = pts.shape
    sign = np.array([-1.0 if (maximise and maximise[j]) else 1.0 for j in range(k)])
    costs = pts * sign
    valid = ~np.isnan(costs).any(axis=1)
    front = valid.copy()
    for i in np.flatnonzero(valid):
        others = costs[valid]
        dominated = (others <= costs[i]).all(axis=1) & (others < costs[i]).any(axis=1)
        if dominated.any():
            front[i] = False
    return front
