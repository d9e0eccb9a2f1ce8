"""Workload files written by other tools: values of the wrong kind and damaged array headers are one-line errors
naming the key (they were tracebacks, out-of-memory lines without the file, or silently read another way)."""

from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pytest
from test_format import _expect

from satasim_atsn.cli import main
from satasim_atsn.errors import DatasetError, WorkloadError
from satasim_atsn.workload.format import Workload, _npz_bytes, read_workload, validate
from satasim_atsn.workload.synthetic import random_workload

ROOT = Path(__file__).resolve().parents[1]


def _payload(workload: Workload) -> dict:
    payload = {"format": np.array("satasim-workload"), "version": np.array(1, dtype=np.int64),
               "meta": np.array(json.dumps(workload.meta))}
    payload.update(workload.arrays)
    return payload


def _refused(tmp_path: Path, workload: Workload, *needles: str) -> str:
    """The one-line refusal of ``workload`` written as it is (tests/test_format.py's check)."""
    return _expect(tmp_path, _payload(workload), *needles)


@pytest.fixture
def trained() -> Workload:
    return random_workload(3, images=2, timesteps=3, residual=True, encoding="direct")


def _layer(workload: Workload, kind: str, **having) -> dict:
    return next(ly for ly in workload.meta["layers"] if ly["type"] == kind
                and all(key in ly for key in having))


@pytest.mark.parametrize(("kind", "key", "value", "needle"), [
    ("conv", "inputs", [[1]], "inputs: must list layer names"),  # was TypeError: unhashable type: 'list'
    ("conv", "inputs", [{"name": "input"}], "inputs: must list layer names"),
    ("conv", "spiking", "false", "spiking: must be true or false"),  # was read as true
    ("conv", "spiking", 0, "spiking: must be true or false"),
    ("conv", "padding", True, "padding: must be a non-negative integer"),
    ("output", "logit_scale", 10**400, "logit_scale: must be a positive finite number"),  # was a TypeError
    ("output", "logit_scale", True, "logit_scale: must be a positive finite number"),
], ids=["inputs-list", "inputs-object", "spiking-text", "spiking-0", "padding-true", "logit-1e400", "logit-true"])
def test_layer_values_of_the_wrong_kind_are_refused_by_key(tmp_path, trained, kind, key, value, needle):
    _layer(trained, kind)[key] = value
    _refused(tmp_path, trained, needle)


def test_a_shortcut_gain_beyond_int32_is_refused(tmp_path, trained):
    """2^70 passed the reader and the engine stopped in OverflowError (Python int too large to convert to C long)."""
    for seed in range(40):
        wl = random_workload(seed, images=2, residual=True)
        adds = [ly for ly in wl.meta["layers"] if ly["type"] == "add" and "shortcut_gain" in ly]
        if adds:
            break
    adds[0]["shortcut_gain"] = 2**31
    _refused(tmp_path, wl, "shortcut_gain", "positive integer gain, got 2147483648")
    adds[0]["shortcut_gain"] = 2**31 - 1
    validate(wl)


@pytest.mark.parametrize(("key", "value", "needle"), [
    ("provenance", "made by hand", "meta.provenance: must be a JSON object"),  # workload info's traceback
    ("provenance", [1, 2], "meta.provenance: must be a JSON object"),
    ("dataset", {"name": "cifar10"}, "meta.dataset: must be text"),
])
def test_meta_sections_of_the_wrong_kind_are_refused(tmp_path, trained, key, value, needle):
    trained.meta[key] = value
    _refused(tmp_path, trained, needle)


def test_workload_info_on_a_text_provenance_is_one_line(tmp_path, trained, capsys):
    trained.meta["provenance"] = "made by hand"
    path = tmp_path / "w.npz"
    path.write_bytes(_npz_bytes(_payload(trained)))
    with pytest.raises(SystemExit) as exc:
        main(["workload", "info", str(path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.count("\n") == 1 and "meta.provenance" in err and str(path) in err


def test_an_absent_input_encoding_is_direct_for_the_pixel_reader_check():
    """The check of who reads direct pixels ran only for an explicit "direct": without the key (the documented
    default) a max-pool on the pixels passed `workload info` and `workload stats` stopped in a traceback."""
    wl = random_workload(0, images=2, timesteps=2, encoding="direct")
    meta = copy.deepcopy(wl.meta)
    meta.pop("input_encoding", None)
    first = meta["layers"][0]
    pool = {"name": "pool0", "type": "maxpool", "kernel": 1, "stride": 1, "inputs": ["input"]}
    first["inputs"] = ["pool0"]
    for key in ("in_shape", "out_shape"):
        first.pop(key, None)
    meta["layers"].insert(0, pool)
    with pytest.raises(WorkloadError, match=r"meta.layers\[0\].inputs: maxpool layer 'pool0' reads the direct"):
        validate(Workload(meta=meta, arrays=dict(wl.arrays), source="w.npz"))


@pytest.mark.parametrize("density", [[None] * 8, [[0.5]] * 8, ["0.5"] * 8, [True] * 8])
def test_bit_densities_must_be_numbers(tmp_path, density):
    statistical = read_workload(ROOT / "workloads" / "vgg16_cifar10.npz")
    statistical.meta["input_bit_density"] = density
    _refused(tmp_path, statistical, "meta.input_bit_density", "8 densities in [0, 1]")


def _npy_header(shape: tuple[int, ...], descr: str) -> bytes:
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}".encode("latin1")
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


def _with_member(payload: dict, key: str, raw: bytes) -> bytes:
    """``_npz_bytes`` with one member's bytes replaced (the zip stays consistent: only the .npy inside lies)."""
    buffer = io.BytesIO(_npz_bytes(payload))
    out = io.BytesIO()
    with zipfile.ZipFile(buffer) as src, zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, raw if info.filename == key + ".npy" else src.read(info))
    return out.getvalue()


def test_a_header_declaring_more_than_the_file_holds_is_named(tmp_path, trained):
    """A terabyte declared over 100 bytes was allocated: "out of memory", naming neither the file nor the array."""
    path = tmp_path / "w.npz"
    key = next(k for k in trained.arrays if k.startswith("w/"))
    path.write_bytes(_with_member(_payload(trained), key, _npy_header((10**12,), "|i1") + bytes(100)))
    with pytest.raises(WorkloadError) as info:
        read_workload(path)
    text = str(info.value)
    assert text.startswith(f"{path}: {key}: its header declares [1000000000000] int8") and "holds 100 bytes" in text


def test_an_array_too_large_for_memory_is_named(tmp_path, trained, monkeypatch):
    path = tmp_path / "w.npz"
    path.write_bytes(_npz_bytes(_payload(trained)))

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(np.lib.format, "read_array", no_memory)
    with pytest.raises(WorkloadError, match=r"w\.npz: [^:]+: [0-9.e+-]+ GB does not fit in this machine's memory"):
        read_workload(path)


def test_free_form_provenance_does_not_stop_a_compare_report():
    """meta.provenance is the exporter's own (docs/workload-format.md): `compare` on a statistical file whose
    provenance.sources was text simulated every architecture, then stopped in AttributeError writing the report."""
    from satasim_atsn.study.metrics import statistics_origin

    assert statistics_origin({"kind": "statistical", "provenance": {"sources": "hand-made"}}) == "assumed"


def test_free_form_provenance_config_does_not_stop_evaluate_on_a_test_split():
    """`evaluate --dataset` read provenance.config.image_size as `satasim train` writes it: another tool's text
    there was an AttributeError before any image was read; now it is ignored unless it is a size."""
    from satasim_atsn.workload.datasets import with_test_split

    wl = random_workload(2, images=2, encoding="direct", size=12, num_classes=4)  # the synthetic set's [1, 12, 12]
    assert list(wl.input_shape) == [1, 12, 12]
    wl.meta["dataset"], wl.meta["provenance"] = "synthetic", {"config": "lr 0.1"}
    assert with_test_split(wl, "synthetic", None).inputs().shape[1:] == (1, 12, 12)


@pytest.mark.parametrize("names", [7, ["airplane", "cat"]])
def test_free_form_provenance_class_names_do_not_stop_evaluate_on_an_image_folder(tmp_path, names):
    """provenance.class_names of another kind (TypeError) or length (zip strict: ValueError) stopped evaluate on an
    image folder in a traceback; only a list of the folder's length is compared with its class folders."""
    pytest.importorskip("PIL.Image")
    from test_imagefolder import make_tree

    from satasim_atsn.workload.datasets import with_test_split

    make_tree(tmp_path)
    wl = random_workload(4, images=2, encoding="direct", size=8, num_classes=3)  # the tree's [3, 8, 8], 3 classes
    assert list(wl.input_shape) == [3, 8, 8]
    wl.meta["dataset"], wl.meta["provenance"] = "imagefolder", {"class_names": names}
    assert len(with_test_split(wl, "imagefolder", str(tmp_path)).labels()) == 9
    wl.meta["provenance"] = {"class_names": ["airplane", "cow", "dog"]}  # a list that fits is still compared
    with pytest.raises(DatasetError, match="class 1 is 'cat', the workload's is 'cow'"):
        with_test_split(wl, "imagefolder", str(tmp_path))


def _with_extra_member(payload: dict, name: str, raw: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_npz_bytes(payload))) as src, \
            zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        with pytest.warns(UserWarning, match="Duplicate name") if name in src.namelist() else nullcontext():
            dst.writestr(info, raw)
    return out.getvalue()


@pytest.mark.parametrize(("name", "raw", "needle"), [
    ("README.txt", b"made by hand", "README.txt: is not a numpy array (a 12-byte member"),  # was AttributeError
    ("notes/", b"", "notes/: is not a numpy array"),
])
def test_a_member_that_is_not_an_array_is_named(tmp_path, trained, name, raw, needle):
    path = tmp_path / "w.npz"
    path.write_bytes(_with_extra_member(_payload(trained), name, raw))
    with pytest.raises(WorkloadError, match=needle.replace("(", r"\(")):
        read_workload(path)


@pytest.mark.parametrize("suffix", [".npy", ""])
def test_an_array_stored_twice_is_refused(tmp_path, trained, suffix):
    """numpy reads one copy of a repeated name: zero weights appended to a file silently replaced the trained ones."""
    key = next(k for k in trained.arrays if k.startswith("w/"))
    zeros = io.BytesIO()
    np.lib.format.write_array(zeros, np.zeros_like(trained.arrays[key]))
    path = tmp_path / "w.npz"
    path.write_bytes(_with_extra_member(_payload(trained), key + suffix, zeros.getvalue()))
    with pytest.raises(WorkloadError, match=f"{key}: is stored twice in the archive"):
        read_workload(path)


def test_import_inputs_that_are_not_an_array_are_named(tmp_path):
    """`workload import --inputs` read its .npz on its own: an x member without the .npy magic stopped it in
    AttributeError ('bytes' object has no attribute 'ndim'); it now shares the workload reader's member checks."""
    from satasim_atsn.interchange.nir_io import load_inputs

    path = tmp_path / "inputs.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x", b"not an array")
    with pytest.raises(WorkloadError, match=r"inputs\.npz: x: is not a numpy array"):
        load_inputs(path)


def _mlp() -> Workload:
    """docs/workload-format.md's flatten-first MLP: its input shape reaches no conv, whose checks would speak first."""
    rng = np.random.default_rng(0)
    meta = {"name": "tiny-mlp", "kind": "trained", "num_classes": 3, "timesteps": 4, "input_shape": [1, 2, 2],
            "neuron": {"decay_shifts": [1]}, "quant": {"vmem_bits": 16, "input_shift": 4},
            "layers": [{"name": "flat", "type": "flatten", "inputs": ["input"]},
                       {"name": "fc1", "type": "linear", "inputs": ["flat"], "out_features": 8},
                       {"name": "fc", "type": "output", "inputs": ["fc1"], "output_mode": "membrane",
                        "logit_scale": 0.05}]}
    arrays = {"w/fc1": rng.integers(-64, 64, size=(8, 4)).astype(np.int8), "b/fc1": np.zeros(8, np.int32),
              "vth/fc1": np.full(8, 100, np.int32), "w/fc": rng.integers(-64, 64, size=(3, 8)).astype(np.int8),
              "b/fc": np.zeros(3, np.int32), "x": rng.integers(0, 256, size=(2, 1, 2, 2)).astype(np.uint8)}
    return Workload(meta=meta, arrays=arrays, source="w.npz")


@pytest.mark.parametrize(("shape", "needle"), [
    ([1, 0, 2], "meta.input_shape: must be a list of positive integers, got [1, 0, 2]"),  # was ZeroDivisionError
    ([True, 2, 2], "meta.input_shape: must be a list of positive integers"),
    ([4], "meta.input_shape: is [4], but direct images are [C, H, W]"),  # x of [N, 16] was told to "re-export"
])
def test_an_input_shape_that_no_image_can_have_is_named(tmp_path, shape, needle):
    wl = _mlp()
    validate(copy.deepcopy(wl))
    wl.meta["input_shape"] = shape
    features = int(np.prod(shape))
    wl.arrays["w/fc1"] = np.ones((8, features), np.int8)
    wl.arrays["x"] = np.zeros((2, *[int(n) for n in shape]), np.uint8)
    _refused(tmp_path, wl, needle)


@pytest.mark.parametrize(("key", "value"), [("stride", 2**70), ("stride", 2**31), ("padding", 2**63)])
def test_layer_integers_beyond_int32_are_refused(tmp_path, trained, key, value):
    """A stride of 2^70 on a map it covers in one window passed every check and stopped evaluate, run and stats in
    numba's OverflowError ('Int value is too large')."""
    conv = _layer(trained, "conv")
    conv[key] = value
    conv.pop("out_shape", None)
    for later in trained.meta["layers"]:
        later.pop("in_shape", None), later.pop("out_shape", None)
    _refused(tmp_path, trained, f".{key}: must be a ", "integer below 2^31")


def test_an_encrypted_member_is_named(tmp_path, trained):
    """zipfile refuses an encrypted member with RuntimeError, which the reader let through as a traceback."""
    data = bytearray(_npz_bytes(_payload(trained)))
    for signature, flags_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # local and central headers agree
        start = data.find(signature)
        while start >= 0:
            data[start + flags_at] |= 0x1
            start = data.find(signature, start + 4)
    path = tmp_path / "w.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(WorkloadError, match=r"w\.npz: format: is encrypted in the archive"):
        read_workload(path)


def test_a_large_file_is_checked_without_copying_it_into_memory(tmp_path, trained):
    """The zip check read the whole file first: a 3 GB disk image named .npz took 3.2 GB and 9 s before 'does not
    start with a zip member' (or, under a memory limit, 'out of memory' naming no file); a large workload took twice
    its size. It now reads through a memory map."""
    import tracemalloc

    big = tmp_path / "disk.npz"
    with big.open("wb") as handle:  # sparse: no disk space taken
        handle.truncate(256 * 2**20)
    good = tmp_path / "w.npz"
    good.write_bytes(_npz_bytes(_payload(trained)))
    tracemalloc.start()
    try:
        with pytest.raises(WorkloadError, match=r"disk\.npz: not a readable \.npz file \(does not start with a zip"):
            read_workload(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * 2**20, peak
    read_workload(good)


@pytest.mark.parametrize(("text", "needle"), [
    ('"timesteps": 16}', "meta: repeats the key 'timesteps' in one object"),  # json kept the last: T = 16 ran
    ('"provenance": ' + "[" * 100_000 + "]" * 100_000 + "}", "meta: is nested too deeply"),  # was RecursionError
])
def test_meta_json_that_reads_two_ways_or_not_at_all_is_named(tmp_path, trained, text, needle):
    payload = _payload(trained)
    payload["meta"] = np.array(json.dumps(trained.meta)[:-1] + ", " + text)
    path = tmp_path / "w.npz"
    path.write_bytes(_npz_bytes(payload))
    with pytest.raises(WorkloadError, match=re.escape(f"{path}: {needle}")):
        read_workload(path)
