"""Functional spike traces: what the simulator's timing models consume.

A trace is the output of the functional model for a range of images under one exit policy:
each image's exit step and prediction, and every spike map up to its exit. Trained workloads get
it from the integer forward (``snn/forward.py``); statistical ones from their documented draws
(``workload/statistical.py``). Engine and reference both read the same trace, never each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from satasim_atsn.snn.exit_policies import ExitPolicy
from satasim_atsn.workload.format import Workload


@dataclass
class Trace:
    """Functional results for images ``[start, start + n)``.

    ``spikes[name]``: bool [n, T, *out_shape] for every layer emitting spikes, zero after exit.
    ``inputs``: uint8 images [n, C, H, W] (direct) or 0/1 frames [n, T, C, H, W] (spike_frames).
    """

    start: int
    exit_t: np.ndarray
    pred: np.ndarray
    pred_hw: np.ndarray
    labels: np.ndarray | None
    spikes: dict[str, np.ndarray]
    inputs: np.ndarray
    policy: dict

    @property
    def num_images(self) -> int:
        return int(self.exit_t.shape[0])


def functional_trace(workload: Workload, policy: ExitPolicy, policy_name: str, start: int, count: int) -> Trace:
    """The trace of images [start, start+count) under ``policy`` (``policy_name`` picks a statistical histogram)."""
    if workload.is_statistical:
        from satasim_atsn.workload.statistical import draw_trace

        return draw_trace(workload, policy_name, start, count)
    from satasim_atsn.snn.forward import run_forward

    x = workload.inputs(start, start + count)
    result = run_forward(workload, x, policy=policy, record_spikes=True)
    labels = workload.labels()
    return Trace(
        start=start,
        exit_t=result.exit_t,
        pred=result.pred,
        pred_hw=result.pred_hw,
        labels=None if labels is None else labels[start : start + count],
        spikes=result.spikes or {},
        inputs=x,
        policy=result.policy,
    )
