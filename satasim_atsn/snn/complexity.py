"""Computational complexity E of eq. 19, counted exactly as synaptic operations.

E = sum_l fr^{l-1} * T * conn^l is the number of synaptic operations: every input spike of
layer l times the weights it reaches. We count them exactly (borders included) during the
forward, over the timesteps each image really ran; the first layer of a direct-encoded image is
counted once per image (its current is computed once) as bit-serial accumulations, one per set
bit of a pixel in a receptive field (as the hardware computes it), and residual identity joins
count one accumulation per shortcut spike.
"""

from __future__ import annotations

import numpy as np

from satasim_atsn.snn.forward import ForwardResult


def synaptic_ops_per_image(result: ForwardResult, include_first_layer: bool = True) -> float:
    """Average synaptic operations per image (eq. 19's E for this run)."""
    names = list(result.sops)
    if not include_first_layer and names:
        names = names[1:]
    total = sum(int(result.sops[name].sum()) for name in names)
    return total / max(result.num_images, 1)


def ops_until_exit(per_image: np.ndarray, exit_t: np.ndarray) -> int:
    """Exact sum of per-image, per-timestep operation counts [N, T] over the steps each image ran (t <= exit_t).

    A run that stops image n at ``exit_t[n]`` did, for that image, what the full-T run did up to then
    (images do not interact), so early-exit complexities are read off one full-T forward.
    """
    steps = np.arange(1, per_image.shape[1] + 1)[None, :]
    return int(per_image[steps <= np.asarray(exit_t)[:, None]].sum())


def complexity(result: ForwardResult, baseline: ForwardResult | None = None, include_first_layer: bool = True) -> float:
    """E per image, or E normalised to a baseline run (the fixed-T SNN, as in Table 1)."""
    value = synaptic_ops_per_image(result, include_first_layer)
    if baseline is None:
        return value
    base = synaptic_ops_per_image(baseline, include_first_layer)
    return value / base if base else float("nan")


def firing_rates(result: ForwardResult) -> dict[str, np.ndarray]:
    """Per-layer firing rate at each timestep over the images still running then."""
    T = result.exit_t.max() if result.num_images else 0
    running = np.array([(result.exit_t >= t).sum() for t in range(1, int(T) + 1)], dtype=np.float64)
    rates = {}
    for name, counts in result.spike_counts.items():
        denom = np.maximum(running, 1) * result.neurons[name]
        rates[name] = counts[: len(running)] / denom
    return rates
