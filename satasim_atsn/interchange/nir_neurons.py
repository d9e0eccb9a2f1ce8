"""A NIR neuron node's parameters (LIF, IF, CubaLIF, LI, I) read one value per channel and discretised with forward
Euler at the step dt: the decay beta, input gain, leak current and threshold an integer layer is made of."""

from __future__ import annotations

from typing import Any

import numpy as np

from satasim_atsn.interchange.nir_graph import channel_axis, float_array, node_error


def per_channel(value: Any, shape: tuple[int, ...], node: str, kind: str, what: str) -> np.ndarray:
    """A neuron parameter broadcast to ``shape`` and reduced to one value per channel (must be uniform)."""
    arr = channel_axis(float_array(value), shape)
    try:
        full = np.broadcast_to(arr if arr.ndim <= len(shape) else arr.reshape(shape), shape)
    except ValueError:
        raise node_error(node, kind, f"{what} has shape {list(arr.shape)}, the layer has {list(shape)}") from None
    flat = full.reshape(shape[0], -1)
    if not np.allclose(flat, flat[:, :1], rtol=1e-9, atol=0):
        raise node_error(node, kind, f"{what} differs within a channel; the workload format has one value per channel")
    return flat[:, 0].copy()


def _positive(values: np.ndarray, node: str, kind: str, what: str) -> np.ndarray:
    """Time constants: positive and finite (tau = 0 divided by zero and printed numpy warnings)."""
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise node_error(node, kind, f"{what} must be positive and finite, got {values.min():g}..{values.max():g}",
                         listed=False)
    return values


def neuron_params(node: Any, kind: str, name: str, shape: tuple, dt: float) -> dict:
    """beta, per-channel gain g, leak current l, threshold theta of a neuron node (errors name the node)."""
    if kind in ("LIF", "CubaLIF", "IF"):
        reset = per_channel(node.v_reset, shape, name, kind, "v_reset")
        if np.any(reset != 0):
            raise node_error(name, kind, "v_reset must be 0 (the workload's neurons reset to zero)")
    if kind == "IF":
        beta = np.ones(shape[0])
        gain = dt * per_channel(node.r, shape, name, kind, "r")
        leak = np.zeros(shape[0])
    elif kind in ("LIF", "LI"):
        tau = _positive(per_channel(node.tau, shape, name, kind, "tau"), name, kind, "tau")
        beta = 1.0 - dt / tau
        gain = dt * per_channel(node.r, shape, name, kind, "r") / tau
        leak = dt * per_channel(node.v_leak, shape, name, kind, "v_leak") / tau
    elif kind in ("CubaLIF", "CubaLI"):  # a CubaLI (Norse's LICell) with tau_syn = dt is an LI
        tau_syn = _positive(per_channel(node.tau_syn, shape, name, kind, "tau_syn"), name, kind, "tau_syn")
        if not np.allclose(tau_syn, dt, rtol=1e-6):
            raise node_error(name, kind, f"tau_syn {tau_syn[0]:g} != dt {dt:g}: the workload's neurons have no "
                             "synaptic current state (only tau_syn = dt, a synapse without memory, maps)", listed=True)
        tau = _positive(per_channel(node.tau_mem, shape, name, kind, "tau_mem"), name, kind, "tau_mem")
        beta = 1.0 - dt / tau
        gain = (per_channel(node.w_in, shape, name, kind, "w_in") * dt
                * per_channel(node.r, shape, name, kind, "r") / tau)
        leak = dt * per_channel(node.v_leak, shape, name, kind, "v_leak") / tau
    elif kind == "I":
        beta = np.ones(shape[0])
        gain = dt * per_channel(node.r, shape, name, kind, "r")
        leak = np.zeros(shape[0])
    else:
        raise node_error(name, kind, "is not a neuron")
    if np.any(beta < 0) or np.any(beta > 1) or not np.allclose(beta, beta[0], rtol=0, atol=1e-12):
        field_name = "tau_mem" if kind in ("CubaLIF", "CubaLI") else "tau"
        # below, not up to: a --dt equal to tau gives decay 0, which decay_shifts refuses in turn
        fix = (f"give a --dt (seconds) below the smallest {field_name}, {dt / (1.0 - beta.min()):g}"
               if np.any(beta < 0) else f"give every channel one {field_name}" if not np.any(beta > 1)
               else f"give positive {field_name} and --dt")
        raise node_error(name, kind, f"decay 1 - dt/tau = {beta.min():g}..{beta.max():g} must be one value in [0, 1]; "
                         f"{fix}")
    theta = (per_channel(node.v_threshold, shape, name, kind, "v_threshold")
             if kind in ("LIF", "CubaLIF", "IF") else None)
    return {"beta": float(beta[0]), "gain": gain, "leak": leak, "theta": theta}


def check_threshold(n: str, kind: str, par: dict) -> None:
    """A spiking neuron's threshold must be positive (the integer thresholds are): named by its own node."""
    if np.any(par["theta"] <= 0):
        raise node_error(n, kind, "v_threshold must be > 0 (the integer thresholds are positive)")
