"""The .npz reader (satasim_atsn/workload/npz.py): a workload's x read by rows when needed, not whole; and the same
member checks for workloads, training checkpoints and dataset files."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile

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
                                   [7, 2, 2, 0], (slice(1, 4), 0), (2, 0, 1), np.array([[1, 3], [0, 8]])],
                         ids=repr)
def test_rows_read_by_index_equal_numpys(tmp_path, index):
    path, x = _many_images(tmp_path, 10)
    rows = read_workload(path).arrays["x"]
    assert np.array_equal(rows[index], x[index]) and np.array_equal(np.asarray(rows), x)
    assert rows[index].flags.writeable and rows.shape == x.shape and rows.dtype == x.dtype


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
