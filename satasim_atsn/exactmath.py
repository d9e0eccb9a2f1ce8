"""Machine-independent arithmetic for numbers that end up in files compared byte for byte.

numpy's exp/log (SIMD code paths chosen per CPU), libm's (FMA or not) and BLAS sums may differ in
the last bit from one x86-64 machine to the next. Everything stored or decided from a
transcendental function goes through here instead: :mod:`decimal` arithmetic at 40 digits,
whose exp and ln are correctly rounded by specification, then one rounding to float64 or to an
integer grid. The functions are slow (microseconds each) and meant for scalars and short tables.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Context, Decimal

import numpy as np

PRECISION_DIGITS = 40
_CTX = Context(prec=PRECISION_DIGITS, rounding=ROUND_HALF_EVEN, Emax=999_999_999, Emin=-999_999_999)


def dec(x: float | int) -> Decimal:
    """The exact decimal value of a float or int (no rounding)."""
    return Decimal(float(x)) if isinstance(x, (float, np.floating)) else Decimal(int(x))


def exp(x: float) -> float:
    """exp(x) rounded to float64, the same on every machine."""
    return float(_CTX.exp(dec(x)))


def ln(x: float) -> float:
    """Natural log of x > 0 rounded to float64, the same on every machine."""
    return float(_CTX.ln(dec(x)))


def dexp(x: Decimal) -> Decimal:
    """exp of a Decimal at the module's precision."""
    return _CTX.exp(x)


def dln(x: Decimal) -> Decimal:
    """ln of a positive Decimal at the module's precision."""
    return _CTX.ln(x)


def ctx() -> Context:
    """The decimal context used for every exact computation (40 digits, round half even)."""
    return _CTX


def round_to_int(x: Decimal) -> int:
    """Round half to even to an integer."""
    return int(x.to_integral_value(rounding=ROUND_HALF_EVEN))


def largest_remainder(weights: list[Decimal] | list[int], total: int, denominator: int | None = None) -> list[int]:
    """Non-negative integers summing exactly to ``total``, proportional to ``weights``.

    With ``denominator`` the weights are integers and the shares ``w * total / denominator`` are
    computed in pure integer arithmetic; otherwise they are Decimals normalised by their sum.
    Ties in the remainders go to the lower index, so the result is unique.
    """
    if denominator is not None:
        floors = [int(w) * total // denominator for w in weights]
        rems = [int(w) * total % denominator for w in weights]
    else:
        s = _CTX.add(Decimal(0), sum(weights, Decimal(0)))
        shares = [_CTX.divide(_CTX.multiply(w, Decimal(total)), s) for w in weights]
        floors = [int(v.to_integral_value(rounding="ROUND_FLOOR")) for v in shares]
        rems = [v - f for v, f in zip(shares, floors, strict=True)]
    missing = total - sum(floors)
    order = sorted(range(len(floors)), key=lambda i: (-rems[i], i))
    for i in order[:missing]:
        floors[i] += 1
    return floors


__all__ = ["PRECISION_DIGITS", "dec", "exp", "ln", "dexp", "dln", "ctx", "round_to_int", "largest_remainder"]
