"""Max-pool windows and the rates they allow: how many windows cover each neuron of a map, and the pooled rates a
statistical draw can keep with its input's rate (docs/statistical.md, step 4). Validation, the statistical draw and
the forward share them."""

from __future__ import annotations

import numpy as np

POOLED_RATE_TOLERANCE = 1e-6  # a rate table's grid (6 decimals): rounding may cross a bound by this much


def has_window_cores(kernel: int, stride: int) -> bool:
    """Whether every window of a max-pool holds a neuron no other window covers (kernel < 2 x stride): the statistical
    draw puts an active window's sure spike there, so a pooled rate can be kept (docs/statistical.md, step 4)."""
    return int(kernel) < 2 * int(stride)


def window_coverage(size: int, kernel: int, stride: int, padding: int = 0) -> np.ndarray:
    """How many windows of a kernel/stride pool (or a conv with ``padding``) along one axis cover each position of
    an axis of ``size`` (int64 [size])."""
    out = (size + 2 * padding - kernel) // stride + 1
    cover = np.zeros(size, dtype=np.int64)
    for o in range(out):
        lo = o * stride - padding
        cover[max(lo, 0):max(min(lo + kernel, size), 0)] += 1
    return cover


def window_cover_counts(height: int, width: int, kernel: int, stride: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The covered neurons of an H x W map grouped by how many windows cover them: (coverings e, neurons with e,
    number of windows). A neuron covered by e windows is free to fire in the draw iff all e are active."""
    rows, cols = window_coverage(height, kernel, stride), window_coverage(width, kernel, stride)
    cover = np.outer(rows, cols)
    e, n = np.unique(cover[cover > 0], return_counts=True)
    windows = ((int(height) - int(kernel)) // int(stride) + 1) * ((int(width) - int(kernel)) // int(stride) + 1)
    return e.astype(np.int64), n.astype(np.int64), int(windows)


def free_fraction(pooled_rate: np.ndarray, exponents: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Expected covered neurons whose windows are all active, sum_e n_e r^e, for independent windows at rate r."""
    r = np.asarray(pooled_rate, dtype=np.float64)
    total = np.zeros_like(r)
    for e, n in zip(exponents.tolist(), counts.tolist(), strict=True):  # products and sums in a fixed order:
        power = np.ones_like(r)  # the same bits on every CPU (no pow, no BLAS), since draws compare against them
        for _ in range(int(e)):
            power = power * r
        total = total + float(n) * power
    return total


def pooled_rate_range(input_rate: np.ndarray, kernel: int, stride: int, height: int,
                      width: int) -> tuple[np.ndarray, np.ndarray]:
    """The pooled rates the draw can keep with an input rate r (docs/statistical.md, step 4): covered neurons must fire
    at r on average, N r_pool of them surely (one per active window) and the rest only where all their windows are
    active, so N r_pool <= r n_cov <= sum_e n_e r_pool^e. Windows that tile give [r, min(1, k^2 r)]."""
    r_in = np.asarray(input_rate, dtype=np.float64)
    e, n, windows = window_cover_counts(height, width, kernel, stride)
    covered = float(n.sum())
    high = np.minimum(1.0, r_in * covered / windows)
    lo, hi = np.zeros_like(r_in), np.ones_like(r_in)
    for _ in range(60):  # sum_e n_e x^e rises with x from 0 to n_cov: bisect for r_in n_cov
        mid = (lo + hi) / 2
        below = free_fraction(mid, e, n) < r_in * covered
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return hi, high


def pool_rate_bounds(input_rate: np.ndarray, kernel: int, stride: int, height: int,
                     width: int) -> tuple[np.ndarray, np.ndarray]:
    """The pooled rates the draw keeps with an input rate r: [r, min(1, k^2 r)] for windows that tile (kernel ==
    stride, the map's height and width aside), ``pooled_rate_range`` for any other stride."""
    r_in = np.asarray(input_rate, dtype=np.float64)
    if int(stride) == int(kernel):
        return r_in, np.minimum(1.0, int(kernel) ** 2 * r_in)
    return pooled_rate_range(r_in, kernel, stride, height, width)


def pooled_rate_problem(input_rate: np.ndarray, pooled_rate: np.ndarray, kernel: int, stride: int | None = None,
                        height: int | None = None, width: int | None = None) -> str | None:
    """Why a max-pool's own rate cannot be drawn with its input's (None if it can).

    Each pooled neuron is the OR of a kernel x kernel window, so at every timestep (and channel) its rate lies
    between its input's rate r and min(1, kernel^2 r): the draw (docs/statistical.md, step 4) keeps both rates
    only inside that range, and would otherwise draw other rates than the ones given. [T] and [T, C] mix freely.
    """
    r_in, r_pool = (np.asarray(r, dtype=np.float64) for r in (input_rate, pooled_rate))
    r_in, r_pool = np.broadcast_arrays(r_in if r_in.ndim == 2 else r_in[:, None],
                                       r_pool if r_pool.ndim == 2 else r_pool[:, None])
    slack = POOLED_RATE_TOLERANCE  # each rate rounded by up to half of it; the upper bound scales r by kernel^2
    if stride is None or int(stride) == int(kernel):
        low, high = pool_rate_bounds(r_in, kernel, kernel, 0, 0)
        bad = (r_pool < low - 2 * slack) | (r_pool > high + (kernel * kernel + 1) * slack)
        how = (f"with {kernel}x{kernel} windows (a window fires when any of its neurons does: at least as often as "
               "one neuron, at most kernel^2 times)")
    else:
        low, high = pool_rate_bounds(r_in, kernel, stride, int(height), int(width))
        bad = (r_pool < low - (kernel * kernel + 1) * slack) | (r_pool > high + (kernel * kernel + 1) * slack)
        between = ("neighbouring windows share neurons" if int(stride) < int(kernel) else
                   "neurons between the windows belong to none")  # a gapped pool: its windows skip neurons
        how = (f"with {kernel}x{kernel} windows at stride {stride} on a {height}x{width} map (a window fires when "
               f"any of its neurons does, and {between})")
    if not bad.any():
        return None
    t, c = (int(v) for v in np.argwhere(bad)[0])
    channel = f", channel {c}" if bad.shape[1] > 1 else ""
    return (f"at t = {t + 1}{channel} the pooled rate {r_pool[t, c]:.6g} is outside [{low[t, c]:.6g}, "
            f"{high[t, c]:.6g}], the range its input's rate {r_in[t, c]:.6g} allows {how}")


def pool_rate_problem_of(layer: dict, input_rate: np.ndarray, pooled_rate: np.ndarray) -> str | None:
    """``pooled_rate_problem`` for a max-pool layer of a shaped network (its kernel, stride and input map)."""
    _, h, w = (int(v) for v in layer["in_shape"])
    return pooled_rate_problem(input_rate, pooled_rate, int(layer["kernel"]), int(layer["stride"]), h, w)


def windows_tile(pool: dict) -> bool:
    """Whether a max-pool's windows tile its input map exactly (kernel == stride, the height and width multiples of
    it): a layer drawn with such a pool may carry row profiles, and the pool too (docs/statistical.md, step 4)."""
    k = int(pool["kernel"])
    _, h, w = (int(v) for v in pool["in_shape"])
    return int(pool["stride"]) == k and h % k == 0 and w % k == 0
