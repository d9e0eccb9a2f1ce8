"""The DRAM channel's occupancy (docs/microarchitecture.md sections 8-9), counted by hand on a tiny MLP: a membrane
fill or spill holds the channel at min(dram.bytes_per_cycle, noc.link_bytes_per_cycle), not at the DRAM's rate."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from satasim_atsn.hw import engine
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.workload.format import read_workload

DOC = Path(__file__).resolve().parent.parent / "docs" / "microarchitecture.md"
F, H, C, T = 16, 6, 4, 3  # input features (spike frames), hidden LIF neurons, classes, timesteps

ARCH = """name: tiny2x2
kind: conventional
technology: 28nm
clock_hz: 100e6
accelerators: 1
array: {rows: 2, cols: 2, exit_unit_tiles: 1}
pe: {input_spike_buffer_bytes: 6, output_spike_buffer_bytes: 4, data_memory_bytes: 2, adders: 1, vmem_bits: 16,
     decay: shift_add}
exit_unit: {kind: none, data_memory_bytes: 256}
noc: {topology: mesh, link_bytes_per_cycle: 2, hop_cycles: 1}
global_buffers:
  weight: {bytes: 4096, banks: 1, bytes_per_cycle: 4}
  input: {bytes: 512, banks: 1, bytes_per_cycle: 2}
  output: {bytes: 512, banks: 1, bytes_per_cycle: 2}
dram: {bytes_per_cycle: 16, latency_cycles: 5}
"""


def _mlp(path: Path) -> Path:
    """A spike-frame MLP (flatten -> fc1 of H LIF neurons -> output of C classes), one image, T timesteps."""
    rng = np.random.default_rng(1)
    frames = (rng.random((1, T, F)) < 0.3).astype(np.uint8)
    layers = [{"name": "flat", "type": "flatten", "inputs": ["input"]},
              {"name": "fc1", "type": "linear", "inputs": ["flat"], "out_features": H},
              {"name": "fc", "type": "output", "inputs": ["fc1"], "output_mode": "membrane", "logit_scale": 0.3}]
    meta = {"name": "mlp", "kind": "trained", "num_classes": C, "timesteps": T, "input_shape": [1, 1, F],
            "input_encoding": "spike_frames", "input_width": F, "neuron": {"decay_shifts": [1]},
            "quant": {"vmem_bits": 16}, "layers": layers}
    np.savez(path, format=np.array("satasim-workload"), version=np.array(1), meta=np.array(json.dumps(meta)),
             **{"w/fc1": rng.integers(-20, 60, (H, F)).astype(np.int8), "b/fc1": np.zeros(H, np.int32),
                "vth/fc1": np.full(H, 40, np.int32), "w/fc": rng.integers(-30, 30, (C, H)).astype(np.int8),
                "b/fc": np.zeros(C, np.int32), "x": np.packbits(frames.reshape(1, T, 1, 1, F), axis=-1)})
    return path


def test_membrane_transfers_hold_the_channel_at_the_link_rate(tmp_path):
    """One 16-bit membrane per PE: fc1's 6 neurons take 2 folds of 3 PEs, each fold filled at t > 1 and spilled at
    t < T (6 B each); the channel is busy for the weight load plus 8 transfers at the 2 B link, not the 16 B DRAM."""
    (tmp_path / "a.yaml").write_text(ARCH)
    arch = load_arch(tmp_path / "a.yaml")
    res = engine.simulate(arch, read_workload(_mlp(tmp_path / "w.npz")))
    assert not res.mapping["membranes_resident"] and res.mapping["weights_resident"]
    weights = H * (F + 2 * 2) + C * (H + 4)  # fc1: weights, bias and threshold; fc: weights and a 32-bit bias
    assert res.mapping["total_weight_bytes"] == weights
    transfers, nbytes = 2 * 2 * (T - 1), 3 * 2  # (fills + spills) x folds x steps, 3 membranes of 2 B
    assert res.totals["dram_write_bytes"] == transfers // 2 * nbytes
    load = 5 + math.ceil(weights / 16)
    assert res.dram_busy_cycles == load + transfers * (5 + math.ceil(nbytes / 2))
    assert res.dram_busy_cycles != load + transfers * (5 + math.ceil(nbytes / 16))  # the DRAM's own rate


def test_sections_8_and_9_state_the_membrane_rate():
    """The rule above is written where the channel's occupancy is defined (section 8) and counted (section 9)."""
    text = DOC.read_text()
    for title in ("## 8. ", "## 9. "):
        section = text[text.index(title):]
        section = section[:section.index("\n## ", 1)]
        rate = "min(dram.bytes_per_cycle, noc.link_bytes_per_cycle)"
        assert re.search(r"membrane fill\s+or\s+spill", section) and rate in section.replace("\n", " "), title
