"""Exit-step histograms of a statistical workload, one per exit policy (docs/statistical.md, step 2): the
maximum-entropy shape around a mean, the fixed-T one, their counts and means, and the order in which a draw takes
each policy's uniforms (so that every file draws alike)."""


from __future__ import annotations

import math
from decimal import Decimal

import numpy as np

from satasim_atsn import exactmath
from satasim_atsn.errors import WorkloadError, did_you_mean, shown
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.schema import (
    HIST_SCALE,
    exit_policy_names,
)

POLICY_ALIASES = {"atsn-hw": "atsn", "none": "fixed", "at": "atsn", "dt": "dtsnn"}
# the exit uniforms of step 2 (docs/statistical.md): these three always, in this order, even for a
# policy the file has no histogram for (so every file draws alike); any other exit_hist/<policy> of a
# file draws its uniform after them, by name
DRAW_ORDER_FIRST = ("fixed", "dtsnn", "atsn")


def draw_order(workload: Workload) -> tuple[str, ...]:
    """The workload's exit policies in the order their exit uniforms are drawn."""
    names = exit_policy_names(workload.arrays)
    return DRAW_ORDER_FIRST + tuple(p for p in names if p not in DRAW_ORDER_FIRST)


def histogram_policies(workload: Workload) -> tuple[str, ...]:
    """The policies a workload has exit histograms for, in draw order."""
    return tuple(p for p in draw_order(workload) if f"exit_hist/{p}" in workload.arrays)







def max_entropy_histogram(mean_t: float, timesteps: int) -> np.ndarray:
    """The maximum-entropy distribution on t = 1..T with the given mean (p_t ~ exp(lam t)), on the 2^-32 grid.

    lam is found by bisection in 40-digit decimal arithmetic (correctly rounded exp), the shape is
    rounded to integers out of 2^32 that sum exactly to 2^32 with the mean as close to ``mean_t``
    as the grid allows (within 2^-33), so the stored bytes are the same on every machine.
    """
    T = int(timesteps)
    if T < 1 or not math.isfinite(mean_t) or not 1.0 <= mean_t <= T:
        raise WorkloadError.at(None, "exit mean", f"{mean_t} is not in [1, {T}]", "give a mean timestep in [1, T]")
    counts = _max_entropy_counts(float(mean_t), T)
    return np.asarray(counts, dtype=np.float64) / HIST_SCALE


def _max_entropy_counts(mean_t: float, T: int) -> list[int]:
    """Integer counts out of HIST_SCALE of the maximum-entropy histogram (see max_entropy_histogram)."""
    target = exactmath.round_to_int(exactmath.dec(mean_t) * HIST_SCALE)  # sum t * n_t wanted, exactly
    if target >= T * HIST_SCALE:
        return [0] * (T - 1) + [HIST_SCALE]
    if target <= HIST_SCALE:
        return [HIST_SCALE] + [0] * (T - 1)
    ctx = exactmath.ctx()
    mean = exactmath.dec(mean_t)

    def weights(lam: Decimal) -> list[Decimal]:
        r = exactmath.dexp(lam)
        w, out = Decimal(1), []
        for _ in range(T):  # r^(t-1): the common factor r cancels
            out.append(w)
            w = ctx.multiply(w, r)
        return out

    def mean_of(w: list[Decimal]) -> Decimal:
        num = sum((ctx.multiply(Decimal(t + 1), v) for t, v in enumerate(w)), Decimal(0))
        return ctx.divide(num, sum(w, Decimal(0)))

    lo, hi = Decimal(-60), Decimal(60)
    for _ in range(160):  # the mean is increasing in lam; 160 halvings of 120 reach 1e-46
        mid = ctx.divide(lo + hi, 2)
        if mean_of(weights(mid)) < mean:
            lo = mid
        else:
            hi = mid
    counts = exactmath.largest_remainder(weights(ctx.divide(lo + hi, 2)), HIST_SCALE)
    # move single units between neighbouring steps until sum t * n_t hits the target exactly
    delta = target - sum((t + 1) * n for t, n in enumerate(counts))
    if delta > 0:
        src = max(range(T - 1), key=lambda i: (counts[i], -i))
        counts[src] -= delta
        counts[src + 1] += delta
    elif delta < 0:
        src = max(range(1, T), key=lambda i: (counts[i], -i))
        counts[src] += delta
        counts[src - 1] -= delta
    return counts


def histogram_counts(hist: np.ndarray) -> np.ndarray:
    """A stored histogram as integers out of 2^32 (exact for histograms built here; robust to one-ulp noise)."""
    return np.rint(np.asarray(hist, dtype=np.float64) * HIST_SCALE).astype(np.int64)


def fixed_histogram(timesteps: int) -> np.ndarray:
    """The conventional SNN's histogram: every image runs all T timesteps."""
    return (np.arange(1, timesteps + 1) == timesteps).astype(np.float64)


def histogram_mean(hist: np.ndarray) -> float:
    """Mean exit timestep of a histogram over t = 1..T (exactly rounded sum, no BLAS)."""
    return math.fsum(float(h) * (t + 1) for t, h in enumerate(np.asarray(hist, dtype=np.float64)))


def exit_histograms(means: dict, T: int, where: str | None, field: str) -> dict[str, np.ndarray]:
    """``fixed`` (all images at T) plus a maximum-entropy histogram for each policy given a mean exit timestep."""
    hist = {"fixed": fixed_histogram(T)}
    for policy, value in means.items():
        if policy not in ("dtsnn", "atsn"):
            raise unknown_key_error(where, f"{field}.", policy, ("dtsnn", "atsn"))
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise WorkloadError.at(where, f"{field}.{policy}", "is not a number", "give a mean in [1, T]")
        try:
            hist[policy] = max_entropy_histogram(float(value), T)
        except WorkloadError:
            raise WorkloadError.at(where, f"{field}.{policy}", f"{value} is not in [1, {T}]",
                                   f"give a mean exit timestep between 1 and T = {T}") from None
    return {p: hist[p] for p in DRAW_ORDER_FIRST if p in hist}


def unknown_key_error(where: str, field: str, key: str, allowed: tuple[str, ...]) -> WorkloadError:
    """A one-line error for an unknown key ``key`` of ``field``, with the closest allowed ones."""
    return WorkloadError.at(where, f"{field}{key}", "unknown key", did_you_mean(key, allowed, "allowed keys:"))


def histogram_key(policy_name: str, policies) -> str:
    key = POLICY_ALIASES.get(policy_name, policy_name)
    if key not in policies:
        raise WorkloadError.at(
            None, "policy", f"unknown exit policy {shown(policy_name)}", f"this workload has: {', '.join(policies)}"
        )
    return key


def require_histogram(workload: Workload, policy: str) -> None:
    """Fail clearly when a workload has no exit histogram for the policy an architecture's exit unit implements."""
    if f"exit_hist/{policy}" not in workload.arrays:
        built = ", ".join(exit_policy_names(workload.arrays))
        raise WorkloadError.at(
            workload.source, f"exit_hist/{policy}",
            f"missing: this statistical workload is built for {built} only",
            "run it on an architecture whose exit unit matches, or rebuild it with satasim workload build"
            + ("" if policy == "fixed" else f" --exit-mean {policy}=MEAN, or with --rates a table whose dataset gives "
               f"{policy} in exit_mean_timesteps or exit_histograms (build refuses --exit-mean beside --rates)")
            + (" (every build writes exit_hist/fixed)" if policy == "fixed" else ""),
        )


def require_policy_histogram(workload: Workload, policy_name: str) -> None:
    """require_histogram for an architecture's policy name (``atsn-hw``, ``none``...), if it is a known policy."""
    policy = POLICY_ALIASES.get(policy_name, policy_name)
    if workload.is_statistical and policy in DRAW_ORDER_FIRST:  # a known policy the file was not built for
        require_histogram(workload, policy)
