"""Integer-exact neuron dynamics: LIF with shift-add decay and reset (eq. 1-2), and the
non-reset output neuron (eq. 8). These are the semantics the hardware implements bit for bit.

State convention: ``u_base`` is what a neuron carries into the next timestep, i.e. the
membrane after firing, reset and decay: ``u_base = 0 if spiked else decay(u)``. A timestep then
is ``u = sat(u_base + I); s = u > vth``. This equals u_t = tau*u_{t-1}*(1-s_{t-1}) + I_t.
"""

from __future__ import annotations

import itertools

import numpy as np


def tau_to_shifts(tau: float, max_terms: int = 4, max_shift: int = 16) -> list[int]:
    """The shift-add form of a decay factor in (0, 1] nearest to it: tau ~= sum(2**-k), at most ``max_terms``
    distinct shifts in 0..max_shift; ties go to fewer terms, then to the smaller shifts.

    A greedy floor turned a float32 tau of 0.49999998737 into [2, 3, 4, 5] = 0.46875 instead of [1] = 0.5.
    """
    if not 0 < tau <= 1:
        raise ValueError(f"tau must be in (0, 1], got {tau}")
    best: tuple[float, int, tuple[int, ...]] | None = None
    for terms in range(1, max_terms + 1):
        for shifts in itertools.combinations(range(max_shift + 1), terms):
            candidate = (abs(sum(2.0**-k for k in shifts) - float(tau)), terms, shifts)
            if best is None or candidate < best:
                best = candidate
    assert best is not None
    return list(best[2])


def shifts_to_tau(shifts: tuple[int, ...] | list[int]) -> float:
    """The decay factor a shift-add list implements."""
    return float(sum(2.0**-k for k in shifts))


def decay(u: np.ndarray, shifts: tuple[int, ...] | list[int]) -> np.ndarray:
    """Shift-add decay: sum of arithmetic right shifts (floor), as the PE computes it."""
    out = u >> shifts[0]
    for k in shifts[1:]:
        out = out + (u >> k)
    return out


def saturate(u: np.ndarray, bits: int) -> np.ndarray:
    """Clamp to the signed range of a ``bits``-wide membrane register."""
    hi = (1 << (bits - 1)) - 1
    return np.clip(u, -hi - 1, hi)


def lif_step(
    u_base: np.ndarray, current: np.ndarray, vth: np.ndarray, shifts: tuple[int, ...], bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """One LIF timestep. Returns (spikes bool, next u_base). ``vth`` broadcasts over channels."""
    u = saturate(u_base + current, bits)
    spikes = u > vth
    next_base = np.where(spikes, 0, decay(u, shifts))
    return spikes, next_base


def output_step(u_prev: np.ndarray, current: np.ndarray, shifts: tuple[int, ...] | None, bits: int) -> np.ndarray:
    """Output neuron: eq. 8 (decay, never reset) when ``shifts`` is given, else a running sum."""
    base = u_prev if shifts is None else decay(u_prev, shifts)
    return saturate(base + current, bits)
