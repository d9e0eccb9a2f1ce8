"""The .npz reader (satasim_atsn/workload/npz.py): a workload's x read by rows when needed, not whole; and the same
member checks for workloads, training checkpoints and dataset files."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.errors import WorkloadError
from satasim_atsn.workload.format import Workload, read_workload, validate, write_workload
from satasim_atsn.workload.npz import NpzRows
from satasim_atsn.workload.synthetic import random_workload


def _many_images(tmp_path, images: int, encoding: str = "direct"):
    """A small network's workload file embedding ``images`` inputs (repeats of three, so it compresses)."""
    wl = random_workload(4, images=3, timesteps=2, encoding=encoding)
    reps = -(-images // 3)
    x = np.concatenate([wl.arrays["x"]] * reps)[:images]
    y = np.concatenate([wl.arrays["y"]] * reps)[:images]
    path = tmp_path / "many.npz"
    write_workload(path, Workload(wl.meta, dict(wl.arrays, x=x, y=y)))
    return path, x


def test_a_few_images_of_a_large_file_are_read_without_loading_x_whole(tmp_path):
    """`satasim run ARCH big.npz --images 2` loaded all of x: a 40 MB compressed file of 100 M images took the memory
    of all of them. Now x is streamed through once in blocks (its CRC checked) and the rows asked for are read."""
    path, x = _many_images(tmp_path, 400_000)  # x is [N, C, H, W] uint8: tens of MB unpacked
    assert x.nbytes > 40 * 2**20
    del x
    tracemalloc.start()
    try:
        wl = read_workload(path)
        first = wl.inputs(0, 2)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(wl.arrays["x"], NpzRows) and wl.num_images == 400_000
    assert peak < 32 * 2**20, peak
    with np.load(path) as data:
        assert np.array_equal(first, data["x"][:2])


@pytest.mark.parametrize("index", [slice(3, 9), slice(None), slice(9, 3), slice(None, None, 4), 5, -1,
                                   [7, 2, 2, 0], (slice(1, 4), 0), (2, 0, 1), np.array([[1, 3], [0, 8]]),
                                   (Ellipsis, -1), (Ellipsis,), (Ellipsis, 0, 1, 1), (None,), (None, slice(2, 4)),
                                   [], np.array([], dtype=np.int64), ([], 0)],  # x[[]]: an empty selection
                         ids=repr)
def test_rows_read_by_index_equal_numpys(tmp_path, index):
    path, x = _many_images(tmp_path, 10)
    rows = read_workload(path).arrays["x"]
    assert np.array_equal(rows[index], x[index]) and np.array_equal(np.asarray(rows), x)
    assert rows[index].flags.writeable and rows.shape == x.shape and rows.dtype == x.dtype


def test_consecutive_rows_of_an_index_are_read_at_once(tmp_path, monkeypatch):
    """An index array was read row by row (a positioning, a stat and a zip read each): a twin's draw of images
    [start, start + n) takes rows (start + i) mod M, one or two runs, which each cost n reads per profile."""
    path, x = _many_images(tmp_path, 12)
    rows = read_workload(path).arrays["x"]
    seen = []
    original = NpzRows._member_at
    monkeypatch.setattr(NpzRows, "_member_at", lambda self, row: seen.append(row) or original(self, row))
    index = np.array([9, 10, 11, 0, 1, 2, 3, 5, 3])
    assert np.array_equal(rows[index], x[index])
    assert seen == [0, 5, 9]


def test_spike_frames_read_by_rows_unpack_as_before(tmp_path):
    path, x = _many_images(tmp_path, 7, "spike_frames")
    wl = read_workload(path)
    whole = Workload(wl.meta, dict(wl.arrays, x=x))
    assert np.array_equal(wl.inputs(2, 5), whole.inputs(2, 5))


def test_a_damaged_x_is_named_when_read(tmp_path):
    """A byte of x's compressed data flipped: the CRC (or the stream) fails on the pass over x at reading."""
    path, _ = _many_images(tmp_path, 3000)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("x.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0x55
    path.write_bytes(bytes(data))
    with pytest.raises(WorkloadError, match=r"many\.npz: x: cannot be read \("):
        read_workload(path)


def test_a_file_replaced_under_a_reader_is_refused(tmp_path):
    path, _ = _many_images(tmp_path, 10)
    wl = read_workload(path)
    other = random_workload(5, images=10, encoding="direct")
    write_workload(path, other)
    with pytest.raises(WorkloadError, match=r"many\.npz: x: the file changed since it was read"):
        wl.inputs(0, 1)


def test_a_file_rewritten_in_place_between_reads_is_refused(tmp_path):
    """The member stays open between reads: a file rewritten in place (cp onto it: same inode) was read on from the
    open member, its new bytes at the old offsets (garbage rows, or a zlib error calling the file damaged)."""
    path, _ = _many_images(tmp_path, 10)
    wl = read_workload(path)
    wl.inputs(0, 3)  # the member is open, positioned at row 3
    other = tmp_path / "other.npz"
    write_workload(other, random_workload(5, images=10, encoding="direct"))
    assert other.stat().st_size != path.stat().st_size
    with open(path, "r+b") as handle:
        handle.write(other.read_bytes())
        handle.truncate()
    with pytest.raises(WorkloadError, match=r"many\.npz: x: the file changed since it was read"):
        wl.inputs(3, 6)


def test_rows_are_read_from_the_file_read_after_a_change_of_directory(tmp_path, monkeypatch):
    """A workload read by a relative path was reopened by that path from the new working directory ('the file
    changed since it was read', or another file of that name)."""
    path, x = _many_images(tmp_path, 10)
    monkeypatch.chdir(tmp_path)
    wl = read_workload(path.name)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert np.array_equal(wl.inputs(0, 4), x[:4])
    assert wl.source == path.name  # messages still name the file as given


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts the open files in /proc/self/fd")
def test_no_file_stays_open_after_a_twin_is_read_and_drawn(tmp_path):
    """Each member read by rows kept its file open after the pass at reading and after a draw of all its rows: a twin
    (a member per profiled layer) held one open file per layer for as long as it was used."""
    from satasim_atsn.traces.statistical_draw import draw_trace

    path, _ = _twin(tmp_path, 5)
    before = len(os.listdir("/proc/self/fd"))
    wl = read_workload(path)
    assert sum(isinstance(a, NpzRows) for a in wl.arrays.values()) >= 2
    assert len(os.listdir("/proc/self/fd")) == before
    draw_trace(wl, "atsn", 0, 5, threads=1)  # every fitted image's rows: each member read to its end
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_workload_read_by_rows_writes_back_the_same_bytes(tmp_path):
    path, _ = _many_images(tmp_path, 10)
    again = tmp_path / "again.npz"
    write_workload(again, read_workload(path))
    assert again.read_bytes() == path.read_bytes()


def _frames() -> Workload:
    wl = random_workload(6, images=4, timesteps=3, encoding="spike_frames", size=6)
    assert wl.meta["input_width"] % 8, "the network's frames need spare bits"
    return wl


def test_spare_bits_past_input_width_are_refused(tmp_path):
    """Frames packed at another width (or damaged) had their extra bits dropped by the unpacking, silently."""
    wl = _frames()
    x = wl.arrays["x"].copy()
    x[2, 1, 0, 0, -1] |= 1  # the last bit of a row: past input_width
    with pytest.raises(WorkloadError, match=r"x: image 2, t = 2: bits are set past meta\.input_width"):
        validate(Workload(wl.meta, dict(wl.arrays, x=x), "w.npz"))
    path = tmp_path / "w.npz"
    buffer = io.BytesIO()
    np.savez(buffer, format=np.array("satasim-workload"), version=np.array(1), meta=np.array(json.dumps(wl.meta)),
             **dict(wl.arrays, x=x))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(WorkloadError, match=r"w\.npz: x: image 2, t = 2: bits are set past meta\.input_width "
                       r"\d+ in the last packed byte"):
        read_workload(path)
    validate(wl)  # np.packbits's own padding is accepted


def test_frames_without_spare_bits_need_no_check():
    wl = random_workload(6, images=2, timesteps=2, encoding="spike_frames", size=8)
    assert wl.meta["input_width"] == 8
    validate(Workload(wl.meta, dict(wl.arrays, x=np.full_like(wl.arrays["x"], 255)), "w.npz"))


def test_the_reader_is_the_only_copy_of_the_member_checks():
    """Workloads, checkpoints and datasets share workload/npz.py: no other module opens an .npz with np.load."""
    root = os.path.join(os.path.dirname(__file__), "..", "satasim_atsn")
    readers = []
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".py") and name != "npz.py":
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    text = handle.read()
                if "np.load(" in text:
                    readers.append(name)
    assert readers == [], readers


def _checkpoint_like(path, **extra) -> None:
    """An .npz with a checkpoint's ``state`` and one parameter, and ``extra`` members."""
    buffer = io.BytesIO()
    np.savez(buffer, state=np.array(json.dumps({"epochs_done": 1})), **{"p/conv1.w": np.zeros(3)}, **extra)
    path.write_bytes(buffer.getvalue())


def _append_member(path, name: str, raw: bytes) -> None:
    """The archive rewritten by one writer with one more member (its zip headers stay consistent)."""
    import warnings

    out = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w") as dst, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of a duplicate name, which is the point
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        added, first = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), src.infolist()[0]
        added.create_system, added.external_attr = first.create_system, first.external_attr
        with dst.open(added, "w", force_zip64=True) as member:  # as np.savez writes its members
            member.write(raw)
    path.write_bytes(out.getvalue())


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array)
    return buffer.getvalue()


def _huge_header() -> bytes:
    text = b"{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000000,), }"
    text += b" " * (63 - (10 + len(text)) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + bytes(64)


@pytest.mark.parametrize(("damage", "needle"), [
    ("twice", "p/conv1.w: is stored twice in the archive"),  # np.load read the appended copy: another network
    ("huge", "huge: its header declares [1000000000000] float64"),  # allocated, or "out of memory" naming nothing
    ("object", "obj: is an array of Python objects"),  # "not a readable checkpoint (ValueError)"
])
def test_a_damaged_checkpoint_names_the_member(tmp_path, damage, needle):
    from satasim_atsn.errors import TrainError
    from satasim_atsn.train.checkpoints import load_checkpoint

    path = tmp_path / "run.ckpt.npz"
    _checkpoint_like(path, **({"obj": np.array([{"a": 1}], dtype=object)} if damage == "object" else {}))
    if damage == "twice":
        _append_member(path, "p/conv1.w.npy", _npy(np.ones(3)))
    if damage == "huge":
        _append_member(path, "huge.npy", _huge_header())
    with pytest.raises(TrainError) as info:
        load_checkpoint(path, None, None, None)
    assert str(info.value).startswith(f"{path}: {needle}"), info.value


def test_a_damaged_dvs_split_names_the_member(tmp_path):
    from satasim_atsn.errors import DatasetError
    from satasim_atsn.workload.datasets import load_dataset

    path = tmp_path / "test.npz"
    np.savez(path, x=np.zeros((2, 2, 2, 4, 4), np.uint8), y=np.zeros(2, np.int64))
    _append_member(path, "y.npy", _npy(np.ones(2, np.int64)))
    with pytest.raises(DatasetError, match=r"test\.npz: y: is stored twice in the archive"):
        load_dataset("cifar10-dvs", "test", str(tmp_path))


class _Mkdir:
    """A pickle that makes a directory when it is loaded (any function could be called so)."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


def test_a_cifar_batch_that_would_run_code_is_refused_unloaded(tmp_path):
    """pickle.load called whatever a batch file named: a planted data_batch ran code before being refused."""
    import pickle

    from satasim_atsn.errors import DatasetError
    from satasim_atsn.workload.datasets import load_dataset

    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    planted = tmp_path / "planted"
    (batches / "test_batch").write_bytes(pickle.dumps({b"data": _Mkdir(planted), b"labels": [0]}, protocol=2))
    with pytest.raises(DatasetError, match=r"test_batch: cifar10: the batch pickle names 'posix\.mkdir'"):
        load_dataset("cifar10", "test", str(tmp_path))
    assert not planted.exists()


def _twin(tmp_path, images: int):
    """A statistical workload whose row profiles hold ``images`` fitted images (repeats of five), written to a file,
    and the same workload in memory."""
    from satasim_atsn.traces.exit_histograms import fixed_histogram
    from satasim_atsn.traces.statistical import build_statistical, spiking_layers
    from satasim_atsn.workload.statistical_checks import row_profile_layers

    wl = random_workload(3, images=2, timesteps=3, residual=True, encoding="direct")
    rng = np.random.default_rng(0)
    rates = {ly["name"]: rng.uniform(0.05, 0.6, size=3) for ly in spiking_layers(wl.layers)}
    c, h, w = wl.input_shape
    profiles = {"input_row_bits": rng.integers(0, w + 1, size=(5, 8, c, h)).astype(np.uint8)}
    for ly in row_profile_layers(wl.layers, []):
        lc, lh, lw = ly["out_shape"]
        profiles[f"spike_rows/{ly['name']}"] = rng.integers(0, lw + 1, size=(5, 3, lc, lh)).astype(np.uint8)
    twin = build_statistical(name="twin", dataset="synthetic", num_classes=wl.num_classes, layers=wl.layers,
                             timesteps=3, rates=rates, exit_hist={"fixed": fixed_histogram(3),
                                                                  "atsn": [0.5, 0.3, 0.2]},
                             input_bit_density=[0.5] * 8, input_shape=list(wl.input_shape), seed=1,
                             num_images=10**6)
    reps = -(-images // 5)
    twin.arrays.update({key: np.concatenate([rows] * reps)[:images] for key, rows in profiles.items()})
    validate(twin)
    path = tmp_path / "twin.npz"
    write_workload(path, twin)
    return path, twin


def test_a_twins_row_profiles_are_read_for_the_images_drawn(tmp_path):
    """A twin's row profiles (input_row_bits, spike_rows/<layer>: one row per fitted image) were loaded whole, and
    the draw made an int64 copy of each (8x): a run of 2 images of a twin of many fitted images took all of it."""
    from satasim_atsn.traces.statistical_draw import draw_trace

    path, twin = _twin(tmp_path, 300_000)
    size = sum(twin.arrays[key].nbytes for key in twin.arrays if key.startswith(("spike_rows/", "input_row_bits")))
    assert size > 40 * 2**20
    del twin
    tracemalloc.start()
    try:
        wl = read_workload(path)
        draw_trace(wl, "atsn", 299_998, 2, threads=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(wl.arrays["input_row_bits"], NpzRows)
    assert peak < 32 * 2**20, peak


@pytest.mark.parametrize(("start", "count"), [(3, 4), (0, 12), (4, 1)])
def test_a_twin_read_by_rows_draws_what_the_whole_arrays_draw(tmp_path, start, count):
    from satasim_atsn.traces.statistical_draw import draw_trace

    path, twin = _twin(tmp_path, 5)
    read = draw_trace(read_workload(path), "atsn", start, count, threads=1)
    whole = draw_trace(twin, "atsn", start, count, threads=1)
    assert np.array_equal(read.inputs, whole.inputs) and np.array_equal(read.exit_t, whole.exit_t)
    assert all(np.array_equal(read.spikes[k], whole.spikes[k]) for k in whole.spikes)


def test_a_twins_row_profiles_are_checked_in_blocks(tmp_path, monkeypatch):
    """The checks of counts in [0, W] still see every fitted image, block by block."""
    import satasim_atsn.workload.npz as npz

    path, twin = _twin(tmp_path, 50)
    key = next(k for k in twin.arrays if k.startswith("spike_rows/"))
    twin.arrays[key][37, 0, 0, 0] = 200  # wider than any row of this network
    twin.source = "twin.npz"
    buffer = io.BytesIO()
    np.savez(buffer, format=np.array("satasim-workload"), version=np.array(1), meta=np.array(json.dumps(twin.meta)),
             **twin.arrays)
    path.write_bytes(buffer.getvalue())
    monkeypatch.setattr(npz, "BLOCK_BYTES", 64)  # a few images per block
    with pytest.raises(WorkloadError, match=rf"twin\.npz: {key}: counts must be in \[0, "):
        read_workload(path)


def test_labels_are_read_by_rows_and_checked_in_blocks(tmp_path, monkeypatch):
    """``y`` was loaded whole at reading (8 MB for 10^6 images, which `run --images 2` does not use); now it is read by
    rows like x, its labels checked block by block, and a command reads the labels of its images alone."""
    from satasim_atsn.workload import npz

    path, x = _many_images(tmp_path, 30)
    wl = read_workload(path)
    with np.load(path) as data:
        y = data["y"]
    assert isinstance(wl.arrays["y"], NpzRows) and wl.num_images == 30
    assert np.array_equal(wl.labels(4, 9), y[4:9]) and np.array_equal(wl.labels(), y)
    monkeypatch.setattr(npz, "BLOCK_BYTES", 8 * 4)  # four labels a block: the bad one is in the last block
    bad = y.copy()
    bad[-1] = wl.num_classes
    write_workload(tmp_path / "ok.npz", wl)  # a label in range in every block: read
    np.savez(tmp_path / "bad.npz", format=np.array("satasim-workload"), version=np.array(1),
             meta=np.array(json.dumps(wl.meta)), **dict(wl.arrays, x=x, y=bad))
    read_workload(tmp_path / "ok.npz")
    with pytest.raises(WorkloadError, match=r"bad\.npz: y: labels must be in 0\.\."):
        read_workload(tmp_path / "bad.npz")


def test_a_twins_exit_steps_are_read_for_the_images_drawn(tmp_path, monkeypatch):
    """``exit_steps/<policy>`` [M] was loaded whole at reading and by every draw; now a draw of images [start, start +
    n) reads the steps of the fitted images they take (i mod M), and the steps are checked at reading in blocks."""
    from satasim_atsn.traces.statistical_draw import draw_exit_steps
    from satasim_atsn.traces.twin_fit import fit_statistical_twin

    trained = random_workload(3, images=7, timesteps=4, size=8, output_mode="membrane")
    twin = fit_statistical_twin(trained, rates_policy="atsn")
    twin = Workload(dict(twin.meta, num_images=20), twin.arrays)  # more twin images than fitted ones (M = 7)
    path = tmp_path / "twin.npz"
    write_workload(path, twin)
    wl = read_workload(path)
    keys = [k for k in wl.arrays if k.startswith("exit_steps/")]
    assert keys and all(isinstance(wl.arrays[k], NpzRows) for k in keys)
    read = []
    original = NpzRows._read_indices
    monkeypatch.setattr(NpzRows, "_read_indices", lambda self, i: read.append((self.key, sorted(i.tolist())))
                        or original(self, i))
    drawn = draw_exit_steps(wl, start=5, count=3)
    steps = [entry for entry in read if entry[0].startswith("exit_steps/")]
    assert sorted(steps) == sorted((k, [0, 5, 6]) for k in keys)  # images 5, 6, 7 take fitted 5, 6, 0
    whole = draw_exit_steps(twin, start=5, count=3)
    assert drawn.keys() == whole.keys() and all(np.array_equal(drawn[p], whole[p]) for p in drawn)


def test_a_large_x_is_not_read_through_at_reading(tmp_path, monkeypatch):
    """Reading a workload streamed all of x once to check its CRC: 6.5 s of `run --images 2` on 10^6 MNIST images.
    Beyond SCANNED_INPUT_BYTES the rows are checked as read: damage past them does not stop a run of the first
    images, and is named once a command reads x to its end (zipfile's CRC check at the member's end)."""
    from satasim_atsn.workload import schema

    path, x = _many_images(tmp_path, 3000)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("x.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + info.compress_size - 8] ^= 0x55  # near the end of x's data: past the first images' rows
    path.write_bytes(bytes(data))
    monkeypatch.setattr(schema, "SCANNED_INPUT_BYTES", x.nbytes - 1)
    wl = read_workload(path)
    assert np.array_equal(wl.inputs(0, 2), x[:2])
    with pytest.raises(WorkloadError, match=r"many\.npz: x: cannot be read \("):
        wl.inputs()
    monkeypatch.setattr(schema, "SCANNED_INPUT_BYTES", x.nbytes)  # small enough: read through at reading, as before
    with pytest.raises(WorkloadError, match=r"many\.npz: x: cannot be read \("):
        read_workload(path)


def test_spare_bits_of_a_large_x_are_refused_in_the_rows_read(tmp_path, monkeypatch):
    from satasim_atsn.workload import schema

    wl = _frames()
    x = wl.arrays["x"].copy()
    x[3, 0, 0, 0, -1] |= 1
    path = tmp_path / "w.npz"
    np.savez(path, format=np.array("satasim-workload"), version=np.array(1), meta=np.array(json.dumps(wl.meta)),
             **dict(wl.arrays, x=x))
    monkeypatch.setattr(schema, "SCANNED_INPUT_BYTES", 0)
    read = read_workload(path)
    assert np.array_equal(read.inputs(0, 3), wl.inputs(0, 3))
    with pytest.raises(WorkloadError, match=r"w\.npz: x: image 3, t = 1: bits are set past meta\.input_width"):
        read.inputs(2, 4)


def test_workload_info_reads_a_large_x_through(tmp_path, monkeypatch, capsys):
    """`workload info` vouches for the whole file: a large x, not read through at reading, is read through there."""
    from satasim_atsn.cli import main
    from satasim_atsn.workload import schema

    path, x = _many_images(tmp_path, 3000)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("x.npy")
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size - 8] ^= 0x55
    path.write_bytes(bytes(data))
    monkeypatch.setattr(schema, "SCANNED_INPUT_BYTES", 0)
    read_workload(path)  # not read through at reading
    with pytest.raises(SystemExit) as exit_info:
        main(["workload", "info", str(path)])
    assert exit_info.value.code == 2
    assert "many.npz: x: cannot be read (" in capsys.readouterr().err


ROOT = Path(__file__).resolve().parents[1]


def _fmnist_twin_file(tmp_path, images: int = 8, **damage):
    """The Fashion-MNIST network's twin of ``images`` fitted images (pool1 and pool2 tile their maps, so conv1/pool1
    and conv2/pool2 carry rows together), written unvalidated after ``damage`` (key -> [(index, value), ...])."""
    from satasim_atsn.traces.twin_fit import fit_statistical_twin

    trained = read_workload(ROOT / "workloads" / "vgg_small_fmnist_atsn.npz")
    twin = fit_statistical_twin(trained, images, rates_policy="fixed")
    arrays = {k: np.array(v) for k, v in twin.arrays.items()}
    for key, changes in damage.items():
        for index, value in changes:
            arrays[key.replace("__", "/")][index] = value
    path = tmp_path / "twin.npz"
    np.savez(path, format=np.array("satasim-workload"), version=np.array(1),
             meta=np.array(json.dumps(dict(twin.meta, num_images=20))),  # 20 twin images of M fitted ones
             **{k: v for k, v in arrays.items() if k not in ("format", "version", "meta")})
    return path


@pytest.mark.parametrize("damage, needle", [
    ({"spike_rows__conv1": [((5, 0, 0, 0), 29)]}, "spike_rows/conv1: image 5: counts must be in [0, 28] (the width "
                                                  "of a row of conv1)"),
    ({"input_row_bits": [((5, 0, 0, 0), 29)]}, "input_row_bits: image 5: counts must be in [0, 28] (the width of a "
                                               "row)"),
    ({"spike_rows__conv1": [((5, 0, 0, 0), 0), ((5, 0, 0, 1), 0)], "spike_rows__pool1": [((5, 0, 0, 0), 1)]},
     "spike_rows/pool1: image 5, t = 1, channel 0, pooled row 0: 1 windows fire over input rows 0..1 with [0, 0]"),
])
def test_a_large_twins_row_profiles_are_checked_as_the_draw_reads_them(tmp_path, capsys, monkeypatch, damage,
                                                                       needle):
    """A twin's row profiles were read through at reading for their range checks, so a twin fitted on 10^6 images
    paid that pass on `run --images 2`; past SCANNED_INPUT_BYTES they are now checked as the draw reads their rows
    (image i takes fitted image i mod M), and `workload info` still reads them all."""
    from satasim_atsn.cli import main
    from satasim_atsn.workload import schema

    path = _fmnist_twin_file(tmp_path, **damage)
    with pytest.raises(WorkloadError, match=needle.split(":")[0]):  # small: read through at reading, as before
        read_workload(path)
    monkeypatch.setattr(schema, "SCANNED_INPUT_BYTES", 1024)
    read_workload(path)  # large: not read through

    def run(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exc:
            main([*args])
        return int(exc.value.code or 0), capsys.readouterr().err

    arch = str(ROOT / "archs" / "atsn16x16.yaml")
    assert run("run", arch, str(path), "--images", "2", "--quiet") == (0, "")  # fitted images 0 and 1 only
    for start in ("4", "13"):  # images 4..5, and 13..14 (fitted images 5 and 6 of M = 8)
        code, err = run("run", arch, str(path), "--images", "2", "--start", start, "--quiet")
        assert code == 2 and err.count("\n") == 1 and needle in err, err
    code, err = run("workload", "info", str(path))
    assert code == 2 and err.count("\n") == 1 and needle.split(": image 5")[0] in err, err


def test_a_large_twins_row_profiles_are_not_read_at_reading_and_a_draw_reads_its_images_rows(tmp_path, monkeypatch):
    """Reading a twin whose profiles exceed SCANNED_INPUT_BYTES reads none of their rows; a draw of two images reads
    the two rows of each profile it uses, however many fitted images the file holds."""
    from satasim_atsn.traces.statistical_draw import draw_trace
    from satasim_atsn.workload import schema

    path = _fmnist_twin_file(tmp_path)
    read: list[tuple[str, int]] = []
    by_range, by_index = NpzRows.read_rows, NpzRows._read_indices

    def rows(self, start, stop):
        read.append((self.key, stop - start))
        return by_range(self, start, stop)

    def picked(self, indices):
        read.append((self.key, len(set(indices.tolist()))))
        return by_index(self, indices)

    monkeypatch.setattr(NpzRows, "read_rows", rows)
    monkeypatch.setattr(NpzRows, "_read_indices", picked)
    monkeypatch.setattr(schema, "SCANNED_INPUT_BYTES", 1024)
    wl = read_workload(path)
    def profile(key: str) -> bool:
        return key == "input_row_bits" or key.startswith("spike_rows/")

    assert not [k for k, _ in read if profile(k)], read
    draw_trace(wl, "fixed", 3, 2)
    profiles = {k: n for k, n in read if profile(k)}
    assert profiles and set(profiles.values()) == {2}, read
    monkeypatch.setattr(schema, "SCANNED_INPUT_BYTES", 64 * 2**20)  # small: read through at reading
    read.clear()
    read_workload(path)
    assert sum(n for k, n in read if k == "spike_rows/conv1") >= 8  # every fitted image (range and pooled checks)
