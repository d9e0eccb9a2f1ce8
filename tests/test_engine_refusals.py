"""Networks the hardware models cannot run are refused in one line before simulating, by the engine and its
per-cycle witness alike (a design either runs on both or on neither), and by the workload validator when no
design could run them."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.errors import MappingError, WorkloadError
from satasim_atsn.hw.arch import load_arch
from satasim_atsn.hw.engine import simulate
from satasim_atsn.hw.reference import simulate_reference
from satasim_atsn.workload.format import Workload, validate
from satasim_atsn.workload.networks import conv_layer
from satasim_atsn.workload.synthetic import _random_parameters

OUT = {"name": "out", "type": "output", "inputs": ["flat"], "output_mode": "membrane", "out_features": 3,
       "logit_scale": 0.05}


def _workload(layers: list[dict], encoding: str = "direct", classes: int = 3) -> Workload:
    rng = np.random.default_rng(0)
    meta = {"name": "w", "kind": "trained", "dataset": "synthetic", "num_classes": classes, "input_shape": [2, 4, 4],
            "timesteps": 2, "input_encoding": encoding, "neuron": {"tau": 0.5, "decay_shifts": [1], "v_th": 1.0},
            "quant": {"weight_bits": 8, "vmem_bits": 16, "input_shift": 0}, "layers": layers,
            "exit_policy": {"cl_init": 0.9, "tau_cl": 0.95, "theta": 0.3}, "provenance": {}}
    if encoding == "spike_frames":
        meta["input_width"] = 4
    arrays = _random_parameters(rng, meta)
    if encoding == "direct":
        arrays["x"] = rng.integers(0, 256, size=(2, 2, 4, 4)).astype(np.uint8)
    else:
        arrays["x"] = np.packbits((rng.random((2, 2, 2, 4, 4)) < 0.3).astype(np.uint8), axis=-1)
    arrays["y"] = np.array([0, 1])
    return validate(Workload(meta=meta, arrays=arrays, source="<w>"))


def test_an_exit_unit_reading_the_image_is_refused_by_both_models():
    """The reference used to simulate it while the engine refused it mid-run."""
    wl = _workload([{"name": "flat", "type": "flatten", "inputs": ["input"]}, OUT])
    arch = load_arch("atsn16x16", ["array.rows=2", "array.cols=2"])
    for model in (simulate, simulate_reference):
        with pytest.raises(MappingError, match=r"<w>: layers: the output layer reads the image, and the exit unit "
                                               r"cannot read pixels"):
            model(arch, wl, 2)
    fixed_t = load_arch("conventional16x16", ["array.rows=2", "array.cols=2", "array.exit_unit_tiles=0"])
    engine, reference = simulate(fixed_t, wl, 2), simulate_reference(fixed_t, wl, 2)  # the PEs compute it
    assert engine.total_cycles == reference["total_cycles"] > 0


@pytest.mark.parametrize(("layers", "needle"), [
    ([conv_layer("c1", "input", 2, spiking=False), {"name": "add", "type": "add", "inputs": ["c1", "input"],
                                                     "shortcut_gain": 20},
      {"name": "flat", "type": "flatten", "inputs": ["add"]}, OUT],
     "(add).inputs: the shortcut is the network's input"),
    ([{"name": "pool", "type": "maxpool", "inputs": ["input"], "kernel": 2, "stride": 2},
      {"name": "flat", "type": "flatten", "inputs": ["pool"]}], "no conv, linear or output layer"),
])
def test_networks_no_design_runs_are_refused_by_the_validator(layers, needle):
    """Both models raised KeyError, StopIteration or an internal 0-byte-transaction error on these."""
    classes = 3 if layers[-1]["type"] == "output" else 8
    with pytest.raises(WorkloadError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        _workload(layers, "spike_frames", classes)
