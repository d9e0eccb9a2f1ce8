"""Exit policies: fixed T; ATSN confidence (float eq. 15-16, hardware eq. 17-18); DTSNN entropy (eq. 5-7).

Every policy looks at ``logits`` [n, C] at timestep t (1-based) and says which images stop
there. ``logits`` is what the network's output means at t: the output membranes times the
layer's scale (membrane mode) or their running sum times scale / t (accumulate mode, eq. 5).
The hardware ATSN rule sees only integer membranes and a per-timestep fixed-point factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from satasim_atsn import exactmath
from satasim_atsn.errors import SatasimError, shown_number

# Decisions and predictions are taken in float64 (fast) and retaken exactly (40-digit decimal,
# correctly rounded exp/ln) for the rows whose float margin is below this: numpy's exp may differ
# by a few ulps between CPUs, far below 1e-9, so every decision is the exact one on every machine.
EXACT_MARGIN = 1e-9


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis (float64; last bits may depend on the CPU)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


#: the one place of the policies' default hyper-parameters (the paper's CL_init = tau_CL = 0.999, theta = 0.1)
CL_INIT_DEFAULT = 0.999
TAU_CL_DEFAULT = 0.999
THETA_DEFAULT = 0.1


def exit_settings(meta: dict, cl_init: float | None = None, tau_cl: float | None = None,
                  theta: float | None = None) -> tuple[float, float, float]:
    """(CL_init, tau_CL, theta): each given value, else the workload's ``meta.exit_policy`` (what training was
    given), else the paper's default; every command that evaluates exits resolves them alike."""
    stored = meta.get("exit_policy") or {}
    return (float(stored.get("cl_init", CL_INIT_DEFAULT)) if cl_init is None else _given(cl_init),
            float(stored.get("tau_cl", TAU_CL_DEFAULT)) if tau_cl is None else _given(tau_cl),
            float(stored.get("theta", THETA_DEFAULT)) if theta is None else _given(theta))


def _given(value: float) -> float:
    """A value given as an option, as float; a non-finite one (refused later) as it is: the float subclass the CLI
    makes of a number typed beyond a float's range shows that text in the message refusing it, not 'inf'."""
    return value if isinstance(value, float) and not math.isfinite(value) else float(value)


LUT_ENTRIES_DEFAULT = 256


def _exact_exps(row: np.ndarray) -> tuple[list[Decimal], list[Decimal]]:
    """exp(z_j - max z) of one logit row in decimal, with the differences d_j = z_j - max z."""
    ctx = exactmath.ctx()
    top = exactmath.dec(max(float(v) for v in row))
    diffs = [ctx.subtract(exactmath.dec(float(v)), top) for v in row]
    return [exactmath.dexp(d) for d in diffs], diffs


def exact_softmax(row: np.ndarray) -> list[Decimal]:
    """Softmax of one logit row in 40-digit decimal arithmetic (machine independent)."""
    ctx = exactmath.ctx()
    exps, _ = _exact_exps(row)
    total = sum(exps, Decimal(0))
    return [ctx.divide(e, total) for e in exps]


def max_softmax_above(logits: np.ndarray, level: float) -> np.ndarray:
    """max softmax(logits) > level for each row [n, C], decided exactly (float filter + decimal fallback)."""
    p = softmax(logits).max(axis=-1)
    out = p > level
    for i in np.flatnonzero(np.abs(p - level) <= EXACT_MARGIN):
        out[i] = max(exact_softmax(logits[i])) > exactmath.dec(level)
    return out


def normalised_entropy_below(logits: np.ndarray, theta: float) -> np.ndarray:
    """H(softmax(logits)) / ln C < theta for each row [n, C] (eq. 6-7), decided exactly."""
    p = softmax(logits)
    num_classes = logits.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1) / np.log(num_classes)
    out = h < theta
    ctx = exactmath.ctx()
    for i in np.flatnonzero(np.abs(h - theta) <= EXACT_MARGIN):
        exps, diffs = _exact_exps(logits[i])
        total = sum(exps, Decimal(0))
        # H = ln S - sum_j p_j d_j with p_j = e_j / S and d_j = z_j - max z
        mean_d = ctx.divide(sum((ctx.multiply(e, d) for e, d in zip(exps, diffs, strict=True)), Decimal(0)), total)
        entropy = ctx.divide(ctx.subtract(exactmath.dln(total), mean_d), exactmath.dln(Decimal(num_classes)))
        out[i] = entropy < exactmath.dec(theta)
    return out


def mean_softmax_argmax(logits: np.ndarray, exit_t: np.ndarray) -> np.ndarray:
    """argmax_c sum_{t <= exit_t} softmax(logits[:, t])_c for logits [N, T, C] (eq. 10), decided exactly.

    Near-ties (float gap below EXACT_MARGIN, e.g. identical logits) are resolved in decimal
    arithmetic; exact ties go to the lowest class index, as numpy's argmax does.
    """
    rows = np.arange(logits.shape[0])
    csum = np.cumsum(softmax(logits), axis=1)[rows, exit_t - 1]
    pred = csum.argmax(axis=-1)
    if csum.shape[-1] < 2:
        return pred
    top2 = np.sort(csum, axis=-1)[:, -2:]
    for i in np.flatnonzero(top2[:, 1] - top2[:, 0] <= EXACT_MARGIN * logits.shape[1]):
        sums = [Decimal(0)] * logits.shape[-1]
        for t in range(int(exit_t[i])):
            sums = [a + b for a, b in zip(sums, exact_softmax(logits[i, t]), strict=True)]
        pred[i] = max(range(len(sums)), key=lambda c: (sums[c], -c))
    return pred


#: how an exit unit turns its integer output membranes into a prediction (docs/microarchitecture.md section 7):
#: ``membrane_sum`` = argmax of the running sum of the output membranes over t <= exit (for a non-reset
#: ``membrane`` output layer: argmax of the geometric mean of the softmaxes, the closest integer rule to eq. 10;
#: for an ``accumulate`` output layer the membrane already is the running sum, eq. 5); ``membrane`` = argmax
#: of the output membrane at the exit step alone.
PREDICTION_RULES = ("membrane_sum", "membrane")


def keeps_running_sum(rule: str, output_mode: str) -> bool:
    """True when the unit must keep a running sum of the output membranes (C extra words and adds)."""
    return rule == "membrane_sum" and output_mode == "membrane"


def hardware_predictions(out_membrane: np.ndarray, exit_t: np.ndarray, output_mode: str, rule: str) -> np.ndarray:
    """The exit unit's integer prediction at each image's exit step from output membranes [N, T, C]."""
    rows = np.arange(out_membrane.shape[0])
    if keeps_running_sum(rule, output_mode):
        return np.cumsum(out_membrane.astype(np.int64), axis=1)[rows, exit_t - 1].argmax(axis=-1)
    return out_membrane[rows, exit_t - 1].argmax(axis=-1)


#: the AT unit's fixed-point fraction bits (exit_unit.exp_frac_bits): 23 make the LUT rule agree with the float
#: rule of eq. 16 on >= 99.97% of the images of every shipped CIFAR-10 network at CL = 0.999 (20 bits: 99.88% on the
#: half-width VGG16, whose max o^2 crowds CL_2 = 0.998; workloads/README.md), in the same 3-byte table words
ATSN_FRAC_BITS = 23
FRAC_BITS_RANGE = (4, 30)
LUT_ENTRIES_RANGE = (2, 2**20)  # exit_unit.exp_lut_entries' bounds (and satasim evaluate --lut-entries')


def lut_word_bytes(frac_bits: int) -> int:
    """Bytes of one exp-table word: values up to 1.0 in ``frac_bits`` fraction bits (23 -> 24 bits -> 3 bytes)."""
    return (frac_bits + 1 + 7) // 8


LUT_WORD_BYTES = lut_word_bytes(ATSN_FRAC_BITS)


class ExitPolicy:
    """Base class: decide(t, T, logits, membranes, scale) -> bool [n] (True = stop at t)."""

    name = "base"

    def decide(
        self, t: int, T: int, logits: np.ndarray, membranes: np.ndarray | None = None, scale: float | None = None
    ) -> np.ndarray:
        """Which images stop at timestep ``t`` of ``T``: bool [n] from their logits z_t [n, C] (and, for a
        hardware rule, the integer membranes and their scale)."""
        raise NotImplementedError

    def exit_steps(
        self, logits: np.ndarray, membranes: np.ndarray | None = None, scale_per_t: np.ndarray | None = None
    ) -> np.ndarray:
        """First t in 1..T at which the policy stops, for logits [N, T, C] (T if never)."""
        n, T, _ = logits.shape
        steps = np.full(n, T, dtype=np.int64)
        open_ = np.ones(n, dtype=bool)
        for t in range(1, T):
            mem = None if membranes is None else membranes[:, t - 1]
            scale = None if scale_per_t is None else float(scale_per_t[t - 1])
            stop = self.decide(t, T, logits[:, t - 1], mem, scale) & open_
            steps[stop] = t
            open_ &= ~stop
        return steps

    def describe(self) -> dict:
        """The policy's name and parameters, as stored in results."""
        return {"name": self.name}


@dataclass
class FixedPolicy(ExitPolicy):
    """The conventional SNN: always run all T timesteps."""

    name: str = field(default="fixed", init=False)

    def decide(self, t: int, T: int, logits: np.ndarray, membranes: np.ndarray | None = None,
               scale: float | None = None) -> np.ndarray:  # noqa: D102
        return np.zeros(logits.shape[0], dtype=bool)


@dataclass
class AtsnPolicy(ExitPolicy):
    """ATSN: stop at the first t < T with max softmax > CL_init * tau_CL**(t-1) (eq. 15-16).

    With ``hardware=True`` the decision is the AT unit's (eq. 17-18): the largest membrane is
    subtracted, exp comes from a ``lut_entries`` table over (-lut_range, 0] with linear
    interpolation, values are fixed point with ``frac_bits`` fraction bits (the rounding of the
    small exp terms eats into the 1e-3 margin of CL = 0.999: 16 bits left 2 of 1,000 decisions of
    a Fashion-MNIST network off the float rule, 20 bits 12 of 10,000 of the half-width CIFAR-10
    VGG16; 23 bits, the default, agree on >= 99.97% of every shipped network), and the test
    ``exp(0) > CL_t * sum_j exp(d_j)`` uses one multiplication and no division.
    """

    cl_init: float = CL_INIT_DEFAULT
    tau_cl: float = TAU_CL_DEFAULT
    hardware: bool = False
    lut_entries: int = LUT_ENTRIES_DEFAULT
    lut_range: float = 16.0
    frac_bits: int = ATSN_FRAC_BITS
    name: str = field(default="atsn", init=False)

    def __post_init__(self) -> None:
        for option, value in (("--cl-init", self.cl_init), ("--tau-cl", self.tau_cl)):
            if not 0 < value <= 1:
                raise SatasimError.at(None, option, f"must be in (0, 1], got {shown_number(value)}",
                                      "the paper's default is 0.999")
        low, high = FRAC_BITS_RANGE
        if self.lut_entries < 2 or self.lut_range <= 0 or not low <= self.frac_bits <= high:
            raise SatasimError.at(
                None,
                "exit_unit",
                f"bad exp table (entries >= 2, range > 0, {low}..{high} fraction bits)",
                f"use the defaults: {LUT_ENTRIES_DEFAULT} entries over 16.0 with {ATSN_FRAC_BITS} fraction bits",
            )
        one = 1 << self.frac_bits
        # exp(-k * step) * 2^frac_bits rounded half-even from correctly rounded decimal exp: the
        # table's bits are the same on every machine (np.exp's last bit is not)
        ctx = exactmath.ctx()
        dstep = ctx.divide(exactmath.dec(self.lut_range), self.lut_entries)
        values = [exactmath.dexp(ctx.multiply(-k, dstep)) for k in range(self.lut_entries + 1)]
        self.lut = np.array([exactmath.round_to_int(ctx.multiply(v, one)) for v in values], dtype=np.int64)
        self.lut[-1] = 0  # beyond the range exp counts as zero

    def confidence(self, t: int) -> float:
        """CL_t of eq. 15 (t is 1-based)."""
        c = self.cl_init
        for _ in range(t - 1):  # repeated IEEE multiplication: pow() from libm may differ in the last bit
            c *= self.tau_cl
        return c

    def cl_fixed(self, t: int) -> int:
        """CL_t in fixed point, as stored in the AT unit's data memory."""
        return int(round(self.confidence(t) * (1 << self.frac_bits)))

    def index_factor(self, scale: float) -> int:
        """Fixed-point factor K that maps a membrane difference to a LUT position: pos = d * K >> frac_bits."""
        step = self.lut_range / self.lut_entries
        # past the table's end every nonzero difference reads 0 (exp_fixed caps K there): capping here too keeps a
        # huge scale (1e300) from overflowing the float before the cap
        return int(round(min(scale / step * (1 << self.frac_bits), float(self.lut_entries << self.frac_bits))))

    def exp_fixed(self, diff: np.ndarray, scale: float) -> np.ndarray:
        """exp(-diff*scale) in fixed point for integer diff >= 0, by LUT + linear interpolation."""
        frac_bits = self.frac_bits
        # pos = diff * K must not wrap in int64 (a large logit_scale, wide output membranes): a difference
        # whose position lies past the table's end gives 0 whatever its size, so cap diff and K where that
        # result is already fixed (K at the table's end, diff one past the first difference outside it)
        table_end = self.lut_entries << frac_bits
        factor = min(self.index_factor(scale), table_end)
        outside_from = -(-table_end // factor) if factor > 0 else 0
        diff = np.asarray(diff)
        if factor > 0:
            diff = np.minimum(diff.astype(np.uint64), np.uint64(outside_from))
        pos = diff.astype(np.int64) * np.int64(factor)
        idx = pos >> frac_bits
        frac = pos & ((1 << frac_bits) - 1)
        inside = idx < self.lut_entries
        idx_c = np.minimum(idx, self.lut_entries - 1)
        lo = self.lut[idx_c]
        hi = self.lut[idx_c + 1]
        value = lo - (((lo - hi) * frac) >> frac_bits)
        return np.where(inside, value, 0)

    def decide(self, t: int, T: int, logits: np.ndarray, membranes: np.ndarray | None = None,
               scale: float | None = None) -> np.ndarray:  # noqa: D102
        if not self.hardware:
            return max_softmax_above(logits, self.confidence(t))
        if membranes is None or scale is None:
            raise ValueError("the hardware ATSN rule needs integer membranes and their scale")
        m = membranes.astype(np.int64)
        # the difference in uint64: exact for any two int64 membranes (int64 wraps past 2^63 apart)
        diff = m.max(axis=-1, keepdims=True).astype(np.uint64) - m.astype(np.uint64)
        total = self.exp_fixed(diff, scale).sum(axis=-1)
        # one^2 > CL_t * total, as total <= floor((one^2 - 1) / CL_t): the same integer test, and no product of
        # CL_t (frac_bits bits) with a sum of C table words (C * 2^frac_bits) that could wrap int64
        one = 1 << self.frac_bits
        cl = self.cl_fixed(t)
        if cl <= 0:
            return np.ones(total.shape, dtype=bool)
        return total <= (one * one - 1) // cl

    def describe(self) -> dict:
        return {
            "name": self.name,
            "cl_init": self.cl_init,
            "tau_cl": self.tau_cl,
            "hardware": self.hardware,
            "lut_entries": self.lut_entries,
            "lut_range": self.lut_range,
            "frac_bits": self.frac_bits,
        }


@dataclass
class DtsnnPolicy(ExitPolicy):
    """DTSNN: stop at the first t < T whose normalised entropy of softmax is below theta (eq. 5-7)."""

    theta: float = THETA_DEFAULT
    name: str = field(default="dtsnn", init=False)

    def __post_init__(self) -> None:
        if not 0 < self.theta <= 1:
            raise SatasimError.at(None, "--theta", f"must be in (0, 1], got {shown_number(self.theta)}",
                                  "the default is 0.1")

    def decide(self, t: int, T: int, logits: np.ndarray, membranes: np.ndarray | None = None,
               scale: float | None = None) -> np.ndarray:  # noqa: D102
        return normalised_entropy_below(logits, self.theta)

    def describe(self) -> dict:
        return {"name": self.name, "theta": self.theta}


def policy_from_name(
    name: str,
    cl_init: float = CL_INIT_DEFAULT,
    tau_cl: float = TAU_CL_DEFAULT,
    theta: float = THETA_DEFAULT,
    hardware: bool = False,
    lut_entries: int = LUT_ENTRIES_DEFAULT,
    frac_bits: int = ATSN_FRAC_BITS,
) -> ExitPolicy:
    """Build a policy from its name: fixed, atsn, atsn-hw, dtsnn."""
    if name == "fixed":
        return FixedPolicy()
    if name in ("atsn", "atsn-hw"):
        return AtsnPolicy(
            cl_init=cl_init, tau_cl=tau_cl, hardware=hardware or name == "atsn-hw", lut_entries=lut_entries,
            frac_bits=frac_bits,
        )
    if name == "dtsnn":
        return DtsnnPolicy(theta=theta)
    raise SatasimError.at(None, "policy", f"unknown exit policy {name!r}", "use fixed, atsn, atsn-hw or dtsnn")
