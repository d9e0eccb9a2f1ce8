"""The workload .npz reader/writer (workload/format.py): every bad input fails clearly; round trips are exact."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.errors import WorkloadError
from satasim_atsn.snn.forward import run_forward
from satasim_atsn.workload.format import Workload, _npz_bytes, read_workload, validate, write_workload
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]


def _payload(workload) -> dict:
    payload = {
        "format": np.array("satasim-workload"),
        "version": np.array(1, dtype=np.int64),
        "meta": np.array(json.dumps(workload.meta, sort_keys=True)),
    }
    payload.update(workload.arrays)
    return payload


def _write_raw(path: Path, payload: dict) -> Path:
    path.write_bytes(_npz_bytes(payload))
    return path


@pytest.fixture
def trained():
    return random_workload(3, images=4, timesteps=3, residual=True, encoding="direct")


def _expect(tmp_path, payload, *needles):
    path = _write_raw(tmp_path / "w.npz", payload)
    with pytest.raises(WorkloadError) as info:
        read_workload(path)
    text = str(info.value)
    assert str(path) in text and "\n" not in text
    for needle in needles:
        assert needle in text, text
    return text


# ------------------------------------------------------------------------------------------
# round trips
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 5, 8])
def test_round_trip_is_exact_and_byte_identical(tmp_path, seed):
    wl = random_workload(seed, images=3)
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    write_workload(a, wl)
    back = read_workload(a)
    assert back.meta == json.loads(json.dumps(wl.meta))
    assert set(back.arrays) == set(wl.arrays)
    for key, value in wl.arrays.items():
        assert back.arrays[key].dtype == value.dtype
        np.testing.assert_array_equal(back.arrays[key], value)
    write_workload(b, back)
    assert a.read_bytes() == b.read_bytes()


def test_statistical_round_trip(tmp_path):
    src = ROOT / "workloads" / "vgg16_cifar100.npz"
    out = tmp_path / "copy.npz"
    write_workload(out, read_workload(src))
    assert out.read_bytes() == src.read_bytes()


def test_write_refuses_invalid_and_leaves_no_file(tmp_path, trained):
    bad = copy.deepcopy(trained)
    bad.arrays["w/conv1"] = bad.arrays["w/conv1"].astype(np.int16)
    with pytest.raises(WorkloadError, match="int16"):
        write_workload(tmp_path / "x.npz", bad)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------
# unreadable files
# ------------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(WorkloadError, match="no such file"):
        read_workload(tmp_path / "none.npz")


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, 0.9])
def test_truncated_file(tmp_path, trained, keep):
    data = _npz_bytes(_payload(trained))
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    path = tmp_path / "t.npz"
    path.write_bytes(data[:cut])
    with pytest.raises(WorkloadError, match="not a readable .npz"):
        read_workload(path)


def test_corrupt_member_data(tmp_path, trained):
    """A flipped byte inside a compressed member must give a one-line error, not a zlib traceback."""
    data = bytearray(_npz_bytes(_payload(trained)))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("w/conv1.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for offset in range(start + 2, start + min(info.compress_size, 40)):
        data[offset] ^= 0xFF
    path = tmp_path / "c.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(WorkloadError, match="not a readable .npz"):
        read_workload(path)


def test_pickled_object_array_is_refused(tmp_path, trained):
    """numpy's "Object arrays cannot be loaded when allow_pickle=False" named no member: the message now does."""
    payload = _payload(trained)
    buffer = io.BytesIO()
    np.savez(buffer, **{k: v for k, v in payload.items()}, obj=np.array([{"a": 1}], dtype=object))
    path = tmp_path / "p.npz"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(WorkloadError, match=r"p\.npz: obj: is an array of Python objects \(object\), stored as a "
                       "pickle"):
        read_workload(path)


# ------------------------------------------------------------------------------------------
# header: format, version, meta
# ------------------------------------------------------------------------------------------
def test_wrong_or_missing_format(tmp_path, trained):
    payload = _payload(trained)
    payload["format"] = np.array("something-else")
    _expect(tmp_path, payload, "format", "not a satasim workload")
    del payload["format"]
    _expect(tmp_path, payload, "format", "None")


@pytest.mark.parametrize("version", [0, 2, 99])
def test_wrong_version(tmp_path, trained, version):
    payload = _payload(trained)
    payload["version"] = np.array(version, dtype=np.int64)
    _expect(tmp_path, payload, "version", f"is {version}", "reads version 1")


def test_missing_version_and_meta(tmp_path, trained):
    payload = _payload(trained)
    del payload["version"]
    _expect(tmp_path, payload, "version")
    payload = _payload(trained)
    del payload["meta"]
    _expect(tmp_path, payload, "meta: missing")


@pytest.mark.parametrize(("raw", "needle"), [("{not json", "not valid JSON"), ("[1, 2]", "JSON object")])
def test_bad_meta_json(tmp_path, trained, raw, needle):
    payload = _payload(trained)
    payload["meta"] = np.array(raw)
    _expect(tmp_path, payload, "meta", needle)


@pytest.mark.parametrize("key", ["name", "kind", "num_classes", "timesteps", "input_shape", "neuron", "quant"])
def test_missing_meta_keys(tmp_path, trained, key):
    del trained.meta[key]
    _expect(tmp_path, _payload(trained), f"meta.{key}", "missing")


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("num_classes", "ten", "has type str"),
        ("num_classes", True, "has type bool"),
        ("neuron", [1], "has type list, not a JSON object: [1]; write it as a JSON object"),
        ("num_classes", 1, "at least 2"),
        ("timesteps", 0, "between 1 and 1024"),
        ("timesteps", 5000, "between 1 and 1024"),
        ("kind", "magic", "unknown kind"),
        ("input_encoding", "morse", "unknown encoding"),
    ],
)
def test_bad_meta_values(tmp_path, trained, key, value, needle):
    trained.meta[key] = value
    _expect(tmp_path, _payload(trained), f"meta.{key}", needle)


@pytest.mark.parametrize(
    ("section", "key", "value", "needle"),
    [
        ("neuron", "decay_shifts", [], "decay_shifts"),
        ("neuron", "decay_shifts", [40], "decay_shifts"),
        ("neuron", "decay_shifts", [True], "decay_shifts: must be a non-empty list of shifts"),  # JSON true was 1
        ("quant", "vmem_bits", 4, "vmem_bits"),
        ("quant", "weight_bits", 4, "only 8-bit"),
    ],
)
def test_bad_neuron_and_quant(tmp_path, trained, section, key, value, needle):
    trained.meta[section][key] = value
    _expect(tmp_path, _payload(trained), needle)


# ------------------------------------------------------------------------------------------
# arrays: missing keys, dtypes, shapes, NaN, ranges
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["w/conv1", "b/conv1", "vth/conv1", "x", "w/out", "b/out"])
def test_missing_arrays(tmp_path, trained, key):
    del trained.arrays[key]
    _expect(tmp_path, _payload(trained), key, "missing")


@pytest.mark.parametrize(
    ("key", "dtype"), [("w/conv1", np.int16), ("b/conv1", np.int64), ("vth/conv1", np.float32), ("x", np.int16)]
)
def test_wrong_dtypes(tmp_path, trained, key, dtype):
    trained.arrays[key] = trained.arrays[key].astype(dtype)
    _expect(tmp_path, _payload(trained), key, "dtype")


@pytest.mark.parametrize("key", ["w/conv1", "b/conv1", "vth/conv1", "w/out"])
def test_wrong_shapes(tmp_path, trained, key):
    trained.arrays[key] = np.concatenate([trained.arrays[key], trained.arrays[key][:1]])
    _expect(tmp_path, _payload(trained), key, "shape")


@pytest.mark.parametrize("value", [0, -5, 40000])
def test_thresholds_out_of_range(tmp_path, trained, value):
    trained.arrays["vth/conv1"][0] = value
    _expect(tmp_path, _payload(trained), "vth/conv1", "thresholds must be in 1..32767")


def test_labels_checked(tmp_path, trained):
    trained.arrays["y"] = np.array([0, 1, 99, 0], dtype=np.int64)
    _expect(tmp_path, _payload(trained), "y", "labels must be in")
    trained.arrays["y"] = np.zeros(3, dtype=np.int64)
    _expect(tmp_path, _payload(trained), "y", "one label per input")
    trained.arrays["y"] = np.array([0.0, 1.7, 2.0, 0.0])  # was truncated to 1 without a word
    _expect(tmp_path, _payload(trained), "y", "labels must be integers, got dtype float64")


def test_input_shape_must_match_the_first_layer(tmp_path, trained):
    x = trained.arrays["x"]
    trained.arrays["x"] = np.zeros((x.shape[0], x.shape[1] + 1) + x.shape[2:], dtype=np.uint8)
    _expect(tmp_path, _payload(trained), "x", "do not match the first layer")
    bad = random_workload(3, images=4, timesteps=3, residual=True, encoding="direct")
    bad.meta["input_shape"] = [bad.meta["input_shape"][0] + 1] + bad.meta["input_shape"][1:]
    _expect(tmp_path, _payload(bad), "meta.layers[0]")


def test_no_inputs(tmp_path, trained):
    trained.arrays["x"] = trained.arrays["x"][:0]
    trained.arrays["y"] = trained.arrays["y"][:0]
    _expect(tmp_path, _payload(trained), "x", "no inputs")


def test_spike_frames_shape(tmp_path):
    wl = random_workload(1, images=3, encoding="spike_frames", timesteps=3)
    wl.arrays["x"] = wl.arrays["x"][:, :2]
    _expect(tmp_path, _payload(wl), "x", "np.packbits")


# ------------------------------------------------------------------------------------------
# layer graph
# ------------------------------------------------------------------------------------------
def _layers(wl):
    return wl.meta["layers"]


def test_layer_graph_errors(tmp_path):
    cases = []
    wl = random_workload(3, images=2, timesteps=2, residual=True)
    w = copy.deepcopy(wl)
    _layers(w)[1]["inputs"] = ["nowhere"]
    cases.append((w, "unknown or later layer"))
    w = copy.deepcopy(wl)
    _layers(w)[1]["name"] = _layers(w)[0]["name"]
    cases.append((w, "duplicate layer name"))
    w = copy.deepcopy(wl)
    _layers(w)[0]["type"] = "softmax"
    cases.append((w, "unknown type"))
    w = copy.deepcopy(wl)
    _layers(w)[0]["name"] = "a/b"
    cases.append((w, "bad layer name"))
    w = copy.deepcopy(wl)
    _layers(w)[0]["kernel"] = 0
    cases.append((w, "kernel"))
    w = copy.deepcopy(wl)
    _layers(w)[0]["out_shape"] = [99, 1, 1]
    cases.append((w, "out_shape"))
    w = copy.deepcopy(wl)
    w.meta["layers"] = _layers(w)[:-1]  # ends in a spiking map: its neurons must be the classes
    cases.append((w, "but the network ends in the spiking layer"))
    w = copy.deepcopy(wl)
    w.meta["layers"] = []
    cases.append((w, "missing or empty"))
    w = copy.deepcopy(wl)
    _layers(w)[-1]["logit_scale"] = -1.0
    cases.append((w, "logit_scale"))
    w = copy.deepcopy(wl)
    _layers(w)[-1]["logit_scale"] = 1e300  # finite, but a wide membrane's logit is not
    cases.append((w, "overflow a float64"))
    for name in ("", "  ", "two\nlines"):  # it heads reports and summaries
        w = copy.deepcopy(wl)
        w.meta["name"] = name
        cases.append((w, "meta.name: must be one line of visible text"))
    w = copy.deepcopy(wl)
    _layers(w)[-1]["output_mode"] = "vote"
    cases.append((w, "output_mode"))
    w = copy.deepcopy(wl)
    add = next(ly for ly in _layers(w) if ly["type"] == "add")
    add["inputs"] = list(reversed(add["inputs"]))
    cases.append((w, "must be a current"))
    w = copy.deepcopy(wl)
    _layers(w)[0]["inputs"] = ["input", "input"]
    cases.append((w, "only add layers take two inputs"))
    w = copy.deepcopy(wl)  # a mapping of layers was 'missing or empty'
    w.meta["layers"] = {ly["name"]: ly for ly in _layers(w)}
    cases.append((w, "meta.layers: must be a list of layers, got {"))
    w = copy.deepcopy(wl)  # a layer as text was "needs 'name' and 'type'; see satasim_atsn/workload/format.py"
    _layers(w)[0] = "conv"
    cases.append((w, "meta.layers[0]: must be a JSON object, got 'conv'; write each layer as"))
    w = copy.deepcopy(wl)
    del _layers(w)[0]["type"]
    cases.append((w, "meta.layers[0]: 'type' is missing (every layer has a name and a type); give every layer both"))
    w = copy.deepcopy(wl)  # a name as text, not a list: it was reported as 'missing'
    _layers(w)[1]["inputs"] = _layers(w)[0]["name"]
    cases.append((w, f".inputs: must be a non-empty list of layer names, got '{_layers(w)[0]['name']}'"))
    w = copy.deepcopy(wl)
    del _layers(w)[1]["inputs"]
    cases.append((w, ".inputs: missing; list the names"))
    w = copy.deepcopy(wl)  # a layer beyond what one process maps: refused before any array of it is made
    first = _layers(w)[0]
    first["out_channels"], first["out_shape"] = 10**9, [10**9] + list(first["out_shape"][1:])
    cases.append((w, "more than the 268,435,456 this simulator maps per layer"))
    for index, (workload, needle) in enumerate(cases):
        _expect(tmp_path, _payload(workload), needle)
        assert index >= 0


def test_identity_shortcut_needs_a_gain(tmp_path):
    for seed in range(40):
        wl = random_workload(seed, images=2, residual=True)
        add = next(ly for ly in _layers(wl) if ly["type"] == "add")
        if "shortcut_gain" in add:
            add["shortcut_gain"] = 0
            _expect(tmp_path, _payload(wl), "shortcut_gain")
            return
    pytest.fail("no identity shortcut among 40 random workloads")


# ------------------------------------------------------------------------------------------
# statistical workloads
# ------------------------------------------------------------------------------------------
@pytest.fixture
def statistical():
    return read_workload(ROOT / "workloads" / "vgg16_cifar10.npz")


def test_statistical_nan_rates(tmp_path, statistical):
    statistical.arrays["rate/conv1"] = np.array([0.1, np.nan, 0.1, 0.1])
    _expect(tmp_path, _payload(statistical), "rate/conv1", "NaN")


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("rate/conv1", np.array([0.1, 0.1, 0.1]), "has shape"),
        ("rate/conv1", np.full((4, 3), 0.1), "has shape"),
        ("rate/conv1", np.array([0.1, 1.5, 0.1, 0.1]), "in [0, 1]"),
        ("exit_hist/atsn", np.array([0.5, 0.5, 0.5, 0.0]), "summing to 1"),
        ("exit_hist/atsn", np.array([1.5, -0.5, 0.0, 0.0]), "non-negative"),
        ("exit_hist/dtsnn", np.array([1.0, 0.0, 0.0]), "summing to 1"),
    ],
)
def test_statistical_bad_arrays(tmp_path, statistical, key, value, needle):
    statistical.arrays[key] = value
    _expect(tmp_path, _payload(statistical), key, needle)


@pytest.mark.parametrize("key", ["rate/conv5", "exit_hist/<policy>", "seed"])
def test_statistical_missing_arrays(tmp_path, statistical, key):
    prefix = "exit_hist/" if key.endswith("<policy>") else None
    for name in [k for k in statistical.arrays if k == key or (prefix and k.startswith(prefix))]:
        del statistical.arrays[name]
    _expect(tmp_path, _payload(statistical), key, "missing")


def test_statistical_policies_are_named_by_the_file(tmp_path, statistical):
    """A new exit policy is a new exit_hist/<name> array, not a format change; any subset is valid."""
    from satasim_atsn.workload.schema import exit_policy_names

    statistical.arrays["exit_hist/newrule"] = statistical.arrays["exit_hist/atsn"].copy()
    del statistical.arrays["exit_hist/fixed"]
    path = _write_raw(tmp_path / "w.npz", _payload(statistical))
    assert exit_policy_names(read_workload(path).arrays) == ("atsn", "dtsnn", "newrule")


def test_statistical_histograms_only_for_the_policies_it_is_built_for(tmp_path, statistical):
    """A fixed-T network needs no DTSNN/ATSN histogram; a workload without any histogram is refused."""
    del statistical.arrays["exit_hist/atsn"], statistical.arrays["exit_hist/dtsnn"]
    validate(statistical)
    del statistical.arrays["exit_hist/fixed"]
    _expect(tmp_path, _payload(statistical), "exit_hist/<policy>", "missing")



@pytest.mark.parametrize("density", [None, [0.5] * 7, [0.5] * 7 + [2.0]])
def test_statistical_bad_bit_density(tmp_path, statistical, density):
    if density is None:
        del statistical.meta["input_bit_density"]
    else:
        statistical.meta["input_bit_density"] = density
    _expect(tmp_path, _payload(statistical), "input_bit_density")


def _deflate_tail_bits(data: bytes) -> set[int]:
    """Offsets of the last byte of each member's deflate stream: its unused padding bits may flip
    without changing the stream (the content stays bit-identical, so nothing is corrupted)."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {i.header_offset + 30 + len(i.orig_filename) + len(i.extra) + i.compress_size - 1
                for i in archive.infolist()} | {i.header_offset + 30 + len(i.orig_filename) + len(i.extra)
                                                + i.compress_size - 2 for i in archive.infolist()}


@pytest.mark.parametrize("part", [0, pytest.param(1, marks=pytest.mark.slow), pytest.param(2, marks=pytest.mark.slow)])
def test_any_single_corrupted_byte_gives_a_workload_error(tmp_path, trained, part: int):
    """Every byte of a workload file flipped in turn: a one-line WorkloadError naming the file, or (deflate padding
    only) the same arrays. One byte in three in the default run, the other two thirds in the slow part."""
    data = _npz_bytes(_payload(trained))
    path = tmp_path / "c.npz"
    original = read_workload(_write_raw(tmp_path / "o.npz", _payload(trained)))
    harmless = _deflate_tail_bits(data)
    accepted = []
    offsets = range(part, len(data), 3)
    for offset in offsets:
        corrupted = bytearray(data)
        corrupted[offset] ^= 0xFF
        path.write_bytes(bytes(corrupted))
        try:
            read = read_workload(path)
        except WorkloadError as error:
            assert "\n" not in str(error) and str(path) in str(error)
            continue
        # accepted: only a flip of unused deflate padding bits, which leaves every array identical
        assert offset in harmless, f"byte {offset} corrupted silently"
        assert read.meta == original.meta and read.arrays.keys() == original.arrays.keys()
        for key, value in read.arrays.items():
            assert value.dtype == original.arrays[key].dtype and np.array_equal(value, original.arrays[key])
        accepted.append(offset)
    assert len(accepted) <= len(harmless) and len(accepted) < len(offsets) // 100


def _direct_reader_workload(leading: list[dict], encoding: str, fan_in: int | None = None):
    """``leading`` layers (the first reads the input), then a spiking linear of 8 and an output layer."""
    base = random_workload(0, images=2, timesteps=2, encoding=encoding, output_mode="membrane")
    meta = copy.deepcopy(base.meta)
    rng = np.random.default_rng(0)
    classes, k = base.num_classes, fan_in or int(np.prod(base.input_shape))
    arrays = {key: v for key, v in base.arrays.items() if not key.startswith(("w/", "b/", "vth/"))}
    meta["layers"] = [*leading, {"name": "fc", "type": "linear", "inputs": [leading[-1]["name"]], "out_features": 8,
                                 "spiking": True},
                      {"name": "out", "type": "output", "inputs": ["fc"], "out_features": classes,
                       "output_mode": "membrane", "logit_scale": 0.01}]
    arrays["w/fc"] = rng.integers(-50, 50, (8, k)).astype(np.int8)
    arrays["b/fc"] = np.zeros(8, np.int32)
    arrays["vth/fc"] = np.full(8, 3, np.int32)
    arrays["w/out"] = rng.integers(-50, 50, (classes, 8)).astype(np.int8)
    arrays["b/out"] = np.zeros(classes, np.int32)
    return Workload(meta=meta, arrays=arrays, source="w.npz")


FLAT = {"name": "flat", "type": "flatten", "inputs": ["input"]}
POOL_FLAT = [{"name": "pool", "type": "maxpool", "kernel": 2, "stride": 2, "inputs": ["input"]},
             {"name": "flat", "type": "flatten", "inputs": ["pool"]}]


def test_direct_images_are_read_only_by_a_weighted_first_layer():
    # a pool on the pixels passed the check and then crashed the forward; now a one-line error names it
    bad = _direct_reader_workload(POOL_FLAT, "direct", fan_in=2 * 3 * 3)
    with pytest.raises(WorkloadError, match=r"meta.layers\[0\].inputs: maxpool layer 'pool' reads the direct"):
        validate(bad)
    # the same network on spike frames is fine: the frames are spikes
    frames = _direct_reader_workload(POOL_FLAT, "spike_frames", fan_in=2 * 3 * 3)
    validate(frames)
    assert run_forward(frames).logits.shape[:2] == (2, 2)


def test_a_flatten_of_direct_pixels_feeds_the_first_linear_once():
    # an MLP on [C, H, W] images: the linear behind the flatten reads the pixels, (W.x + b) >> input_shift,
    # once per image; the forward, the exact synaptic-op count and a simulation all accept it
    from satasim_atsn.hw import engine
    from satasim_atsn.hw.arch import load_arch
    from satasim_atsn.snn.neurons import lif_step, output_step

    wl = _direct_reader_workload([FLAT], "direct")
    validate(wl)
    res = run_forward(wl)
    x = wl.inputs(0, None).reshape(2, -1).astype(np.int64)
    current = (x @ wl.weights("fc").astype(np.int64).T + wl.bias("fc").astype(np.int64)) >> wl.input_shift
    u, out = np.zeros_like(current), np.zeros((2, wl.num_classes), dtype=np.int64)
    for t in range(wl.timesteps):
        spikes, u = lif_step(u, current, wl.vth("fc").astype(np.int64), wl.decay_shifts, wl.vmem_bits)
        cur_out = spikes.astype(np.int64) @ wl.weights("out").astype(np.int64).T + wl.bias("out")
        out = output_step(out, cur_out, wl.decay_shifts, 32)
        assert np.array_equal(res.out_membrane[:, t], out)
    bits = np.array([[bin(int(v)).count("1") for v in row] for row in x])
    assert np.array_equal(res.first_layer_sops_per_image[:, 0], bits.sum(axis=1) * 8)
    assert (res.first_layer_sops_per_image[:, 1:] == 0).all()
    result = engine.simulate(load_arch(ROOT / "archs" / "conventional16x16.yaml"), wl, 2)
    assert result.counters()["total_cycles"] > 0


# ------------------------------------------------------------------------------------------
# what a hand-written file may get wrong without a wrong number following (docs/workload-format.md)
# ------------------------------------------------------------------------------------------
def _with_identity_shortcut():
    for seed in range(40):
        wl = random_workload(seed, images=2, residual=True)
        add = next(ly for ly in _layers(wl) if ly["type"] == "add")
        if "shortcut_gain" in add:
            return wl, add
    pytest.fail("no identity shortcut among 40 random workloads")


@pytest.mark.parametrize("gain", [1.5, 1.9, 2.0, True, "2"])
def test_a_shortcut_gain_must_be_an_integer(tmp_path, gain):
    """int() used to cut 1.9 to 1: the run then simulated a gain the file does not hold."""
    wl, add = _with_identity_shortcut()
    add["shortcut_gain"] = gain
    _expect(tmp_path, _payload(wl), f"({add['name']}).shortcut_gain", "positive integer gain, got")


@pytest.mark.parametrize(("where", "key", "needle"), [
    ("layer", "out_featres", "({name}).out_featres: unknown key for output layers; did you mean 'out_features'?"),
    ("layer", "dilation", "({name}).dilation: unknown key for output layers"),
    ("meta", "exit_polcy", "meta.exit_polcy: unknown key; did you mean 'exit_policy'?"),
    ("neuron", "decay_shift", "meta.neuron.decay_shift: unknown key; did you mean 'decay_shifts'?"),
    ("quant", "output_vmem_bit", "did you mean 'output_vmem_bits'"),
    ("exit_policy", "cl_inti", "meta.exit_policy.cl_inti: unknown key; did you mean 'cl_init'?"),
])
def test_unknown_keys_are_refused_by_name(tmp_path, where, key, needle):
    """An unsupported option or a typo must not be ignored (the network YAML refused them; the .npz did not)."""
    wl = random_workload(2, images=2, timesteps=2, encoding="direct")
    output = _layers(wl)[-1]
    target = {"meta": wl.meta, "neuron": wl.meta["neuron"], "quant": wl.meta["quant"], "layer": output,
              "exit_policy": wl.meta["exit_policy"]}[where]
    target[key] = 2
    _expect(tmp_path, _payload(wl), needle.format(name=output["name"]))


def test_tau_must_be_the_decay_of_the_shifts(tmp_path):
    wl = random_workload(2, images=2, timesteps=2)
    wl.meta["neuron"].update(tau=0.5, decay_shifts=[2])
    _expect(tmp_path, _payload(wl), "meta.neuron.tau: 0.5 is not the decay of decay_shifts [2] (0.25",
            "set tau to 0.25")
    wl.meta["neuron"].update(tau=0.75, decay_shifts=[2, 1])  # 2^-2 + 2^-1: accepted
    validate(wl)
    del wl.meta["neuron"]["tau"]  # optional: the shifts decide
    validate(wl)
    wl.meta["neuron"]["reset"] = "subtract"
    _expect(tmp_path, _payload(wl), "meta.neuron.reset", "'zero' only")


@pytest.mark.parametrize(("key", "statistical_file"), [("w/fc9", False), ("vth/output", False), ("rate/conv1", False),
                                                       ("b/pool1", True), ("rate/flatten", True), ("rate/input", True)])
def test_stray_arrays_are_refused(tmp_path, key, statistical_file):
    """A misnamed array (w/fc9 for w/fc1) used to be ignored: the file then ran without what it meant to say."""
    if statistical_file:
        wl = read_workload(ROOT / "workloads" / "vgg16_cifar10.npz")  # direct images: no rate/input
        key = {"b/pool1": "b/pool1", "rate/flatten": f"rate/{_first_of(wl, 'flatten')}",
               "rate/input": "rate/input"}[key]
    else:
        wl = random_workload(2, images=2, timesteps=2, encoding="direct")
        key = key.replace("output", _first_of(wl, "output")).replace("conv1", _first_of(wl, "conv"))
    wl.arrays[key] = np.zeros(3, dtype=np.float64 if statistical_file else np.int32)
    _expect(tmp_path, _payload(wl), f": {key}: is not an array of this")


def _first_of(wl, kind: str) -> str:
    return next(ly["name"] for ly in _layers(wl) if ly["type"] == kind)


def test_a_missing_frame_width_says_what_to_store(tmp_path):
    wl = random_workload(1, images=3, encoding="spike_frames", timesteps=3)
    del wl.meta["input_width"]
    _expect(tmp_path, _payload(wl), "meta.input_width: missing", f"store the unpacked width, {wl.input_shape[-1]}")


def test_the_output_layers_width_is_the_class_count(tmp_path):
    """out_features on the output layer was ignored when it disagreed with num_classes."""
    wl = random_workload(2, images=2, timesteps=2)
    output = _layers(wl)[-1]
    output["out_features"] = wl.num_classes + 2
    _expect(tmp_path, _payload(wl), f"({output['name']}): out_features {wl.num_classes + 2} is not meta.num_classes")


@pytest.mark.parametrize(("section", "key"), [("meta", "description"), ("meta", "input_scale"),
                                              ("quant", "weight_scale"), ("quant", "input_scale")])
def test_other_tools_extra_information_is_kept_where_it_changes_nothing(tmp_path, section, key):
    """Top-level and quant keys far from any defined one (an exporter's own scales or notes) are kept unread;
    near-misses of defined keys are refused (test_unknown_keys_are_refused_by_name)."""
    wl = random_workload(2, images=2, timesteps=2)
    (wl.meta if section == "meta" else wl.meta["quant"])[key] = 0.5
    path = _write_raw(tmp_path / "w.npz", _payload(wl))
    assert read_workload(path).meta == wl.meta


def _npz_with_a_broken_header(path: Path, names: tuple[str, ...]) -> Path:
    """An .npz whose members' .npy headers hold an unterminated string: numpy parses them with Python's tokenizer,
    which raises ValueError on Python 3.11 and tokenize.TokenError on 3.12 (a traceback there until session 21)."""
    buf = io.BytesIO()
    np.save(buf, np.arange(3))
    bad = buf.getvalue().replace(b"{'descr': '<i8'", b"{'descr': '<i8 ")
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(f"{name}.npy", bad)
    return path


def test_a_broken_npy_header_is_one_line_on_every_python(tmp_path):
    from satasim_atsn.errors import DatasetError, TrainError
    from satasim_atsn.train.checkpoints import load_checkpoint
    from satasim_atsn.workload.datasets import load_dataset

    with pytest.raises(WorkloadError, match="not a readable .npz file"):
        read_workload(_npz_with_a_broken_header(tmp_path / "w.npz", ("format", "version", "meta")))
    with pytest.raises(TrainError, match="not a readable checkpoint"):
        load_checkpoint(_npz_with_a_broken_header(tmp_path / "c.npz", ("state",)), None, None, None)
    dvs = tmp_path / "dvs"
    dvs.mkdir()
    _npz_with_a_broken_header(dvs / "test.npz", ("x", "y"))
    with pytest.raises(DatasetError, match="cannot read x and y"):
        load_dataset("cifar10-dvs", "test", str(dvs))


def test_a_misspelt_default_exit_policy_is_refused():
    """meta.exit_policy.default 'atsm' passed; the policy names are fixed, dtsnn and atsn."""
    import re

    import pytest

    from satasim_atsn.errors import WorkloadError
    from satasim_atsn.workload.format import validate
    from satasim_atsn.workload.synthetic import random_workload

    wl = random_workload(0, images=2, timesteps=2, size=8)
    wl.meta.setdefault("exit_policy", {})["default"] = "atsn"
    validate(wl)
    wl.meta["exit_policy"]["default"] = "atsm"
    with pytest.raises(WorkloadError, match=re.escape("meta.exit_policy.default: must be a policy name, got 'atsm'; "
                                                      "did you mean 'atsn'?")):
        validate(wl)
