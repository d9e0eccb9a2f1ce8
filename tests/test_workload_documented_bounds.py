"""workload/format.py against docs/workload-format.md's ranges, written out here: a meta value at a documented bound
is read, one step past it is refused in one line naming the file and the field (and `satasim run` exits with 2)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import one_line_error

from satasim_atsn.errors import WorkloadError
from satasim_atsn.workload.format import _npz_bytes, read_workload
from satasim_atsn.workload.synthetic import random_workload

ARCHS = Path(__file__).resolve().parent.parent / "archs"

# (meta field, a value at the documented bound, one step past it): docs/workload-format.md, the meta tables
DOCUMENTED_BOUNDS = [
    ("timesteps", 1024, 1025),
    ("timesteps", 1, 0),
    ("neuron.decay_shifts", [31], [32]),
    ("neuron.decay_shifts", [0], [-1]),
    ("quant.vmem_bits", 32, 33),
    ("quant.vmem_bits", 8, 7),
    ("quant.output_vmem_bits", 64, 65),
    ("quant.output_vmem_bits", 8, 7),
    ("quant.input_shift", 63, 64),
    ("quant.input_shift", 0, -1),
    ("exit_policy.cl_init", 1.0, 1.5),
    ("exit_policy.theta", 1e-9, 0.0),
    ("num_classes", 2, 1),
]


def _workload_with(tmp_path: Path, field: str, value, name: str = "w.npz") -> Path:
    """A small trained workload (2 classes, direct images) with one meta field changed, written as is."""
    workload = random_workload(3, images=4, timesteps=3, num_classes=2, encoding="direct")
    meta = copy.deepcopy(workload.meta)
    node = meta
    *sections, key = field.split(".")
    for part in sections:
        node = node[part]
    node[key] = value
    if field == "neuron.decay_shifts":
        meta["neuron"].pop("tau", None)  # tau must be the shifts' decay: leave it out
    arrays = dict(workload.arrays)
    if field == "quant.vmem_bits":  # thresholds must fit the membranes: the narrowest width holds 1..127
        arrays.update({k: np.minimum(v, 127).astype(np.int32) for k, v in arrays.items() if k.startswith("vth/")})
    payload = {"format": np.array("satasim-workload"), "version": np.array(1, dtype=np.int64),
               "meta": np.array(json.dumps(meta, sort_keys=True)), **arrays}
    path = tmp_path / name
    path.write_bytes(_npz_bytes(payload))
    return path


@pytest.mark.parametrize("field,good,bad", DOCUMENTED_BOUNDS, ids=[f"{f}={g}" for f, g, _ in DOCUMENTED_BOUNDS])
def test_a_meta_value_at_its_documented_bound_is_read_and_one_past_it_is_refused(tmp_path, field, good, bad):
    read_workload(_workload_with(tmp_path, field, good, "good.npz"))
    path = _workload_with(tmp_path, field, bad, "bad.npz")
    with pytest.raises(WorkloadError) as info:
        read_workload(path)
    text = str(info.value)
    assert text.startswith(f"{path}: meta.{field}: "), text
    assert "\n" not in text


def test_timesteps_past_the_documented_bound_is_one_line_with_exit_code_2(tmp_path, capsys):
    path = _workload_with(tmp_path, "timesteps", 1025)
    line = one_line_error(["run", str(ARCHS / "atsn16x16.yaml"), str(path), "--images", "2"], capsys)
    assert line.endswith(f"{path}: meta.timesteps: must be between 1 and 1024; fix the value"), line


TINY_NETWORK = """\
name: tiny
input_shape: [1, 8, 8]
num_classes: 3
layers:
  - {name: c1, type: conv, kernel: 3, stride: 1, padding: 0, out_channels: 4}
  - {name: f, type: flatten}
  - {name: out, type: output}
"""


@pytest.fixture(scope="module")
def statistical(tmp_path_factory):
    """A statistical workload built by `satasim workload build` from a tiny network file."""
    from satasim_atsn.cli import main

    folder = tmp_path_factory.mktemp("stat")
    (folder / "net.yaml").write_text(TINY_NETWORK, encoding="utf-8")
    with pytest.raises(SystemExit) as done:
        main(["workload", "build", "--network", str(folder / "net.yaml"), "--rate", "0.1", "--timesteps", "2",
              "-o", str(folder / "s.npz")])
    assert done.value.code in (0, None)
    return read_workload(folder / "s.npz")


@pytest.mark.parametrize("good,bad", [(1, 0), (10**9, 10**9 + 1)])
def test_a_statistical_workloads_num_images_is_1_to_10_to_the_9(tmp_path, statistical, good, bad):
    for value, name in ((good, "good.npz"), (bad, "bad.npz")):
        meta = {**statistical.meta, "num_images": value}
        payload = {"format": np.array("satasim-workload"), "version": np.array(1, dtype=np.int64),
                   "meta": np.array(json.dumps(meta, sort_keys=True)), **statistical.arrays}
        (tmp_path / name).write_bytes(_npz_bytes(payload))
    assert read_workload(tmp_path / "good.npz").num_images == good
    with pytest.raises(WorkloadError) as info:
        read_workload(tmp_path / "bad.npz")
    assert str(info.value).startswith(f"{tmp_path / 'bad.npz'}: meta.num_images: must be an integer in 1..10^9"), \
        str(info.value)


def test_a_threshold_at_the_membranes_largest_value_is_read_and_one_more_refused(tmp_path):
    workload = random_workload(3, images=4, timesteps=3, num_classes=2, encoding="direct")
    bits = workload.meta["quant"]["vmem_bits"]
    key = next(k for k in workload.arrays if k.startswith("vth/"))
    for extra, name in ((0, "good.npz"), (1, "bad.npz")):
        arrays = {**workload.arrays, key: np.full_like(workload.arrays[key], 2 ** (bits - 1) - 1 + extra)}
        payload = {"format": np.array("satasim-workload"), "version": np.array(1, dtype=np.int64),
                   "meta": np.array(json.dumps(workload.meta, sort_keys=True)), **arrays}
        (tmp_path / name).write_bytes(_npz_bytes(payload))
    read_workload(tmp_path / "good.npz")
    with pytest.raises(WorkloadError) as info:
        read_workload(tmp_path / "bad.npz")
    assert str(info.value).startswith(f"{tmp_path / 'bad.npz'}: {key}: thresholds must be in 1..{2 ** (bits - 1) - 1} "
                                      f"for {bits}-bit membranes;"), str(info.value)


def test_a_negative_layer_padding_is_refused_naming_the_layer(tmp_path):
    workload = random_workload(3, images=4, timesteps=3, num_classes=2, encoding="direct")
    index = next(i for i, layer in enumerate(workload.meta["layers"]) if layer["type"] == "conv")
    name = workload.meta["layers"][index]["name"]
    meta = copy.deepcopy(workload.meta)
    meta["layers"][index]["padding"] = -1
    payload = {"format": np.array("satasim-workload"), "version": np.array(1, dtype=np.int64),
               "meta": np.array(json.dumps(meta, sort_keys=True)), **workload.arrays}
    path = tmp_path / "bad.npz"
    path.write_bytes(_npz_bytes(payload))
    with pytest.raises(WorkloadError) as info:
        read_workload(path)
    assert str(info.value).startswith(f"{path}: meta.layers[{index}] ({name}).padding: must be a non-negative "
                                      "integer"), str(info.value)


@pytest.mark.parametrize("seed", [-1, -6])
def test_a_statistical_workloads_seed_is_a_non_negative_integer(tmp_path, statistical, seed):
    """docs/statistical.md: a statistical workload's `seed` is one non-negative integer; 0 is read, a negative one is
    refused naming it."""
    for value, name in ((0, "good.npz"), (seed, "bad.npz")):
        arrays = dict(statistical.arrays, seed=np.array(value, dtype=np.int64))
        payload = {"format": np.array("satasim-workload"), "version": np.array(1, dtype=np.int64),
                   "meta": np.array(json.dumps(statistical.meta, sort_keys=True)), **arrays}
        (tmp_path / name).write_bytes(_npz_bytes(payload))
    assert int(read_workload(tmp_path / "good.npz").arrays["seed"]) == 0
    with pytest.raises(WorkloadError) as info:
        read_workload(tmp_path / "bad.npz")
    assert str(info.value).startswith(f"{tmp_path / 'bad.npz'}: seed: must be one non-negative integer, got int64 "
                                      f"{seed}"), str(info.value)


def _write(tmp_path: Path, meta: dict, arrays: dict) -> Path:
    """meta and arrays written as a workload file w.npz, unvalidated (the reader judges them)."""
    payload = {"format": np.array("satasim-workload"), "version": np.array(1, dtype=np.int64),
               "meta": np.array(json.dumps(meta, sort_keys=True)), **arrays}
    path = tmp_path / "w.npz"
    path.write_bytes(_npz_bytes(payload))
    return path


def _statistical(tmp_path: Path, spike_frames: bool = False) -> tuple[dict, dict]:
    """The meta and arrays of a small statistical workload (conv 2x6x6 -> 4, flatten, 3 classes, T = 3), its inputs
    direct images or spike frames (then rate/input is the caller's to add)."""
    from satasim_atsn.traces.statistical import build_with_rate
    from satasim_atsn.workload.network_file import load_network

    net = tmp_path / "net.yaml"
    net.write_text("input_shape: [2, 6, 6]\nnum_classes: 3\nlayers:\n  - {name: conv1, type: conv, out_channels: 4, "
                   "kernel: 3, padding: 1}\n  - {name: flat, type: flatten}\n  - {name: fc, type: output}\n",
                   encoding="utf-8")
    workload = build_with_rate(load_network(net), rate=0.2, timesteps=3, num_images=4)
    meta = copy.deepcopy(workload.meta)
    if spike_frames:
        meta["input_encoding"] = "spike_frames"
        meta.pop("input_bit_density", None)
    return meta, dict(workload.arrays)


@pytest.mark.parametrize("key", ["rate/conv1", "rate/input"])
@pytest.mark.parametrize("stored", [np.int64, np.bool_, np.str_])
def test_a_rate_stored_as_anything_but_floats_is_refused_naming_its_dtype(tmp_path, key, stored):
    """docs/workload-format.md: rates are float64 in [0, 1]. An integer rate of zeros passed the range check when
    the dtype check was removed (mutant F14 of session 37), and strings ended in numpy's TypeError."""
    meta, arrays = _statistical(tmp_path, spike_frames=key == "rate/input")
    arrays[key] = np.zeros(3, dtype=stored) if stored is not np.str_ else np.array(["0", "0", "0"])
    with pytest.raises(WorkloadError, match=rf"w\.npz: {key}: has dtype {arrays[key].dtype}; store rates as float64"):
        read_workload(_write(tmp_path, meta, arrays))
    arrays[key] = np.zeros(3, dtype=np.float64)  # the same rates as floats are read
    assert read_workload(_write(tmp_path, meta, arrays)).arrays[key].dtype == np.float64


@pytest.mark.parametrize("label,refused", [(0, False), (1, False), (-1, True), (2, True)])
def test_labels_outside_0_to_classes_minus_1_are_refused(tmp_path, label, refused):
    """docs/workload-format.md: y holds class indices 0..num_classes-1; -1 passed when the lower bound was -1
    (mutant F21 of session 37)."""
    workload = random_workload(3, images=4, timesteps=3, num_classes=2, encoding="direct")
    y = np.asarray(workload.arrays["y"]).copy()
    y[2] = label
    path = _write(tmp_path, copy.deepcopy(workload.meta), dict(workload.arrays, y=y))
    if refused:
        with pytest.raises(WorkloadError, match=r"w\.npz: y: labels must be in 0\.\.1; fix the labels"):
            read_workload(path)
    else:
        assert read_workload(path).labels()[2] == label


@pytest.mark.parametrize("scale,refused", [(1e-300, False), (0.0, True), (-0.5, True)])
def test_an_output_layers_logit_scale_must_be_positive(tmp_path, scale, refused):
    """A logit_scale of 0 makes every logit 0 (mutant F27 of session 37 let it through the workload reader)."""
    workload = random_workload(3, images=4, timesteps=3, num_classes=2, encoding="direct")
    meta = copy.deepcopy(workload.meta)
    out = next(layer for layer in meta["layers"] if layer["type"] == "output")
    out["logit_scale"] = scale
    path = _write(tmp_path, meta, dict(workload.arrays))
    if refused:
        with pytest.raises(WorkloadError, match=rf"logit_scale: must be a positive finite number, got {scale:g}"):
            read_workload(path)
    else:
        read_workload(path)


@pytest.mark.parametrize("rate,refused", [(1.0, False), (0.0, False), (1.0000001, True), (-1e-9, True)])
def test_an_input_rate_outside_0_to_1_is_refused(tmp_path, rate, refused):
    """A spike-frame workload's rate/input is a probability: above 1 passed when only the lower bound was checked
    (mutant F31 of session 37)."""
    meta, arrays = _statistical(tmp_path, spike_frames=True)
    path = _write(tmp_path, meta, dict(arrays, **{"rate/input": np.full(3, rate)}))
    if refused:
        with pytest.raises(WorkloadError, match=r"rate/input: rates must be finite and in \[0, 1\]"):
            read_workload(path)
    else:
        assert read_workload(path).arrays["rate/input"][0] == rate
