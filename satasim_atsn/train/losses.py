"""The three losses the paper compares, on per-step network outputs f [T, B, C], with their gradients.

Notation: a_t = (1/t) sum_{k<=t} f_k is the running mean of the per-step outputs (eq. 5), and
z_t are the logits the exit rules see at t: u_t itself for the membrane output (eq. 8), a_t for
the accumulate output.

- ``ce``: cross-entropy of the time-averaged output a_T.
- ``dtsnn``: (1/T) sum_t CE(a_t) (the DTSNN loss).
- ``imp``: L_imp = sum_t (I_t / D) CE(softmax(z_t)) with I_t = 1 + exp(-1 - (t+1)/T), t = 1..T,
  D = sum_t I_t, natural log (eq. 11-13).
"""

from __future__ import annotations

import numpy as np

from satasim_atsn.errors import TrainError

LOSSES = ("ce", "dtsnn", "imp")


def importance(timesteps: int) -> np.ndarray:
    """I_t / D of eq. 11-12 for t = 1..T."""
    t = np.arange(1, timesteps + 1, dtype=np.float64)
    weights = 1.0 + np.exp(-1.0 - (t + 1.0) / timesteps)
    return weights / weights.sum()


def _ce(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy over the batch and its gradient wrt logits [B, C] (float64)."""
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    b = logits.shape[0]
    rows = np.arange(b)
    loss = -float(logp[rows, labels].mean())
    grad = np.exp(logp)
    grad[rows, labels] -= 1.0
    return loss, grad / b


def running_mean(f: np.ndarray) -> np.ndarray:
    """a_t = cumulative mean over time of f [T, B, C]."""
    t = np.arange(1, f.shape[0] + 1, dtype=np.float64).reshape(-1, 1, 1)
    return np.cumsum(f, axis=0) / t


def exit_logits(f: np.ndarray, output_mode: str) -> np.ndarray:
    """The logits z_t the exit rules see: u_t (membrane) or the running mean a_t (accumulate)."""
    return f.astype(np.float64) if output_mode == "membrane" else running_mean(f.astype(np.float64))


def loss_and_grad(f: np.ndarray, labels: np.ndarray, loss: str, output_mode: str) -> tuple[float, np.ndarray]:
    """Loss value and dL/df [T, B, C] (float32) for per-step outputs ``f``."""
    if loss not in LOSSES:
        raise TrainError.at(None, "--loss", f"unknown loss {loss!r}", f"use one of {', '.join(LOSSES)}")
    f64 = f.astype(np.float64)
    T = f.shape[0]
    g_a = np.zeros_like(f64)  # gradient wrt running means a_t
    g_f = np.zeros_like(f64)  # direct gradient wrt f_t (membrane z_t = f_t)
    a = running_mean(f64)
    total = 0.0
    if loss == "ce":
        total, g_a[-1] = _ce(a[-1], labels)
    elif loss == "dtsnn":
        for t in range(T):
            value, g = _ce(a[t], labels)
            total += value / T
            g_a[t] = g / T
    else:
        weights = importance(T)
        for t in range(T):
            z = f64[t] if output_mode == "membrane" else a[t]
            value, g = _ce(z, labels)
            total += weights[t] * value
            if output_mode == "membrane":
                g_f[t] += weights[t] * g
            else:
                g_a[t] += weights[t] * g
    # a_t = (1/t) sum_{k<=t} f_k  =>  dL/df_k = sum_{t>=k} g_a[t] / t
    t = np.arange(1, T + 1, dtype=np.float64).reshape(-1, 1, 1)
    g_f += np.cumsum((g_a / t)[::-1], axis=0)[::-1]
    return float(total), g_f.astype(np.float32)
