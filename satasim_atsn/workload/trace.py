"""The functional spike trace as plain data: what the simulator's timing models consume.

A trace holds, for a range of images under one exit policy, each image's exit step and
prediction and every spike map up to its exit. It is produced above snn/ (``traces/functional.py``)
and read by engine and reference alike, so neither calls the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
