"""Dataset loaders on small files written in the official formats."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.errors import DatasetError
from satasim_atsn.workload.datasets import load_dataset, read_idx, synthetic, write_idx


def _write_mnist(directory, n=6, gz=True, name="train"):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 10, n).astype(np.uint8)
    suffix = ".gz" if gz else ""
    prefix = "train" if name == "train" else "t10k"
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", x)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", y)
    return x, y


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    x, y = _write_mnist(tmp_path, gz=gz, name="test")
    ds = load_dataset("fashion-mnist", "test", str(tmp_path))
    assert ds.x.shape == (6, 1, 28, 28) and ds.x.dtype == np.uint8
    assert np.array_equal(ds.x[:, 0], x) and np.array_equal(ds.y, y)
    assert ds.num_classes == 10 and ds.input_shape == [1, 28, 28]


def test_missing_dataset_says_where_and_how(tmp_path):
    with pytest.raises(DatasetError) as info:
        load_dataset("fashion-mnist", "train", str(tmp_path))
    text = str(info.value)
    assert str(tmp_path) in text and "apt-get install dataset-fashion-mnist" in text and "\n" not in text


def test_corrupt_idx(tmp_path):
    _write_mnist(tmp_path, gz=False)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 7)
    with pytest.raises(DatasetError, match="truncated"):
        load_dataset("mnist", "train", str(tmp_path))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(b"garbage!")
    with pytest.raises(DatasetError, match="magic"):
        read_idx(tmp_path / "train-images-idx3-ubyte")
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")  # read by its content: not gzip, and no idx either
    with pytest.raises(DatasetError, match="magic"):
        read_idx(tmp_path / "bad.gz")
    import gzip

    damaged = bytearray(gzip.compress(bytes(range(256)) * 100))
    damaged[20:40] = b"x" * 20  # a damaged deflate stream was a zlib.error traceback
    (tmp_path / "damaged.gz").write_bytes(bytes(damaged))
    with pytest.raises(DatasetError, match=r"damaged.gz: cannot read idx file \(Error -3 .*\); replace the corrupt"):
        read_idx(tmp_path / "damaged.gz")


def test_idx_label_count_mismatch(tmp_path):
    _write_mnist(tmp_path, n=6)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8))
    with pytest.raises(DatasetError, match="5 labels for 6 images"):
        load_dataset("fashion-mnist", "train", str(tmp_path))


def _write_cifar10(directory, n=4):
    base = directory / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(1)
    for fname in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, n))}
        with open(base / fname, "wb") as handle:
            pickle.dump(batch, handle)
    return base


def test_cifar10_pickles(tmp_path):
    base = _write_cifar10(tmp_path)
    train = load_dataset("cifar10", "train", str(tmp_path))
    assert train.x.shape == (20, 3, 32, 32) and len(train) == 20
    with open(base / "test_batch", "rb") as handle:
        raw = pickle.load(handle)
    test = load_dataset("cifar10", "test", str(base))
    assert np.array_equal(test.x[0].reshape(-1), raw[b"data"][0])  # channel-major rows, as documented


def test_cifar100_and_corrupt_pickle(tmp_path):
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    batch = {b"data": np.zeros((3, 3072), np.uint8), b"fine_labels": [0, 99, 5], b"coarse_labels": [0, 1, 2]}
    for fname in ("train", "test"):
        with open(base / fname, "wb") as handle:
            pickle.dump(batch, handle)
    ds = load_dataset("cifar100", "test", str(tmp_path))
    assert ds.num_classes == 100 and ds.y.tolist() == [0, 99, 5]
    (base / "test").write_bytes(b"\x80\x04 truncated")
    with pytest.raises(DatasetError, match="corrupt"):
        load_dataset("cifar100", "test", str(tmp_path))


def test_cifar_wrong_shape(tmp_path):
    base = _write_cifar10(tmp_path)
    with open(base / "test_batch", "wb") as handle:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, handle)
    with pytest.raises(DatasetError, match="3072"):
        load_dataset("cifar10", "test", str(tmp_path))



@pytest.mark.parametrize("labels", [["cat", "dog"], [[1], [2, 3]], {"a": 1}, [1.7, 2.2], 7, [True, False]])
def test_cifar_labels_that_are_no_class_indices_are_one_line(tmp_path, labels):
    """Labels of words, ragged lists or a dict were a ValueError/TypeError traceback from np.asarray; float labels
    were truncated to classes without a word (1.7 read as class 1)."""
    base = _write_cifar10(tmp_path)
    with open(base / "test_batch", "wb") as handle:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": labels}, handle)
    with pytest.raises(DatasetError, match=r"test_batch: labels: cifar10: labels must be a list of class indices "
                       r"\(integers\), got .*; extract the official archive again$"):
        load_dataset("cifar10", "test", str(tmp_path))


def test_cifar_needs_a_directory():
    with pytest.raises(DatasetError, match="--data-dir"):
        load_dataset("cifar10", "train")


def test_dvs_frames(tmp_path):
    x = np.random.default_rng(2).integers(0, 3, (3, 5, 2, 8, 8)).astype(np.uint8)
    np.savez(tmp_path / "test.npz", x=x, y=np.array([1, 2, 3]))
    ds = load_dataset("cifar10-dvs", "test", str(tmp_path))
    assert ds.framed and ds.x.max() == 1 and ds.input_shape == [2, 8, 8]
    np.savez(tmp_path / "train.npz", x=np.zeros((3, 2, 8, 8), np.uint8), y=np.zeros(3))
    with pytest.raises(DatasetError, match=r"\[N, T, 2, H, W\]"):
        load_dataset("cifar10-dvs", "train", str(tmp_path))


def test_unknown_dataset_and_synthetic_determinism():
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("imagenet")
    a, b = synthetic("train", 32), synthetic("train", 32)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(synthetic("test", 32).x, a.x)


def test_a_spike_frame_workload_is_evaluated_on_a_dvs_test_split(tmp_path):
    """evaluate --dataset cifar10-dvs was advertised and refused: a spike-frame workload now takes the
    split's frames (packed as the format stores them), and a direct workload is told why it cannot."""
    from satasim_atsn.train.evaluation import evaluate_workload
    from satasim_atsn.workload.datasets import with_test_split
    from satasim_atsn.workload.synthetic import random_workload

    wl = next(w for w in (random_workload(s, images=2, encoding="spike_frames", num_classes=10) for s in range(50))
              if w.input_shape[0] == 2)  # the DVS reader gives 2 polarity channels
    wl.meta["dataset"] = "cifar10-dvs"
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 2, (12, wl.timesteps, *wl.input_shape)).astype(np.uint8)
    labels = rng.integers(0, wl.num_classes, 12)
    np.savez(tmp_path / "test.npz", x=frames, y=labels)
    on_split = with_test_split(wl, "cifar10-dvs", str(tmp_path))
    assert np.array_equal(on_split.inputs(), frames) and on_split.labels().tolist() == labels.tolist()
    assert evaluate_workload(on_split)["images"] == 12
    few = next(w for w in (random_workload(s, images=2, encoding="spike_frames", num_classes=3) for s in range(200))
               if w.input_shape == wl.input_shape and w.timesteps == wl.timesteps)  # only the classes differ
    few.meta["dataset"] = "cifar10-dvs"
    with pytest.raises(DatasetError, match="has 10 classes, the workload 3"):  # DVS labels 0..9 on 3 outputs
        with_test_split(few, "cifar10-dvs", str(tmp_path))
    np.savez(tmp_path / "test.npz", x=frames[:, :1], y=labels)  # one frame per image: another T
    with pytest.raises(DatasetError, match=r"has frames \[T=1, .*frame the events as the workload was trained"):
        with_test_split(wl, "cifar10-dvs", str(tmp_path))
    with pytest.raises(DatasetError, match="cifar10-dvs gives spike frames, and the workload reads images"):
        direct = random_workload(1, images=2, encoding="direct")
        direct.meta["dataset"] = "cifar10-dvs"
        with_test_split(direct, "cifar10-dvs", str(tmp_path))


@pytest.mark.parametrize("split", ["train", "test"])
def test_an_empty_split_is_one_line_exit_2(tmp_path, capsys, split):
    """idx files of 0 images passed the loader: training then died on a ZeroDivisionError in the channel statistics
    (empty train split) or a ValueError from np.concatenate in the evaluation (empty test split), exit 1."""
    from satasim_atsn.cli import main

    for name in ("train", "test"):
        _write_mnist(tmp_path, n=0 if name == split else 6, name=name)
    with pytest.raises(SystemExit) as info:
        main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path), "--width", "0.125", "--epochs", "1",
              "-T", "1", "--quiet", "-o", str(tmp_path / "w.npz")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1, err
    assert f"mnist: the {split} split holds no examples" in err and str(tmp_path) in err
    assert not (tmp_path / "w.npz").exists()


def test_empty_cifar_and_dvs_splits_are_refused(tmp_path):
    base = _write_cifar10(tmp_path)
    with open(base / "test_batch", "wb") as handle:
        pickle.dump({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, handle)
    with pytest.raises(DatasetError, match="cifar10: the test split holds no examples"):
        load_dataset("cifar10", "test", str(tmp_path))
    np.savez(tmp_path / "test.npz", x=np.zeros((0, 2, 2, 4, 4), np.uint8), y=np.zeros(0, np.int64))
    with pytest.raises(DatasetError, match="cifar10-dvs: the test split holds no examples"):
        load_dataset("cifar10-dvs", "test", str(tmp_path))


def test_idx_files_are_read_by_their_content_not_their_suffix(tmp_path):
    """A browser that unpacks a download but keeps its .gz name left an idx file refused as "Not a gzipped file ...;
    replace the corrupt file"; a gzipped file without .gz was "bad magic number". Both files are fine."""
    import gzip

    x, y = _write_mnist(tmp_path, gz=False, name="test")
    images, labels = tmp_path / "t10k-images-idx3-ubyte", tmp_path / "t10k-labels-idx1-ubyte"
    images.rename(images.with_name(images.name + ".gz"))  # plain bytes under a .gz name
    labels.write_bytes(gzip.compress(labels.read_bytes()))  # gzipped bytes without one
    ds = load_dataset("mnist", "test", str(tmp_path))
    assert np.array_equal(ds.x[:, 0], x) and np.array_equal(ds.y, y)


def test_dvs_frames_of_no_timestep_are_refused_by_the_loader(tmp_path):
    """x [N, 0, 2, H, W] loaded, and the trainer then said "pass --timesteps 0", which it refuses."""
    np.savez(tmp_path / "test.npz", x=np.ones((3, 0, 2, 8, 8), np.uint8), y=np.arange(3))
    with pytest.raises(DatasetError, match=r"test.npz: x: cifar10-dvs: expected x \[N, T, 2, H, W\] .*T, H and W of "
                       r"at least 1.*got \(3, 0, 2, 8, 8\)"):
        load_dataset("cifar10-dvs", "test", str(tmp_path))


def test_an_idx_header_whose_size_overflows_64_bits_is_refused(tmp_path, capsys):
    """Dimensions 2**31 x 2**31 x 4 with no data: their product wrapped to 0 in numpy's int64, matched the empty
    body, and reshaping it was a ValueError traceback (evaluate --dataset fashion-mnist, exit code 1)."""
    from satasim_atsn.cli import main

    _write_mnist(tmp_path, gz=False, name="test")
    header = b"\x00\x00\x08\x03" + b"".join(d.to_bytes(4, "big") for d in (2**31, 2**31, 4))
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(header)
    with pytest.raises(DatasetError, match=f"holds 0 bytes of data, its header says {2**64}"):
        read_idx(tmp_path / "t10k-images-idx3-ubyte")
    workload = str(Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz")
    with pytest.raises(SystemExit) as info:
        main(["evaluate", workload, "--dataset", "fashion-mnist", "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "t10k-images-idx3-ubyte: holds 0 bytes" in err


def _nested(depth: int) -> list:
    """A list nested ``depth`` deep (numpy holds at most 64 dimensions)."""
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(("batch", "got"), [
    ({b"data": [[1, 2], [3]], b"labels": [0, 1]}, "got a ragged list and 2 labels"),
    ({b"data": _nested(70), b"labels": [0]}, "got a ragged list and 1 labels"),
    ({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1], b"\xff\xfe": 1}, "got uint8 (2, 100) and 2 labels")])
def test_cifar_batches_of_odd_data_or_keys_are_one_line(tmp_path, batch, got):
    """'data' as a ragged (or 70-deep) list was a ValueError traceback from np.asarray, and a key not in UTF-8 a
    UnicodeDecodeError one, out of evaluate --dataset cifar10 (exit code 1)."""
    base = _write_cifar10(tmp_path)
    with open(base / "test_batch", "wb") as handle:
        pickle.dump(batch, handle)
    with pytest.raises(DatasetError, match=r"test_batch: data: cifar10: expected uint8 \[N, 3072\] with N labels, "
                       rf"{re.escape(got)}; extract the archive again$"):
        load_dataset("cifar10", "test", str(tmp_path))


def test_evaluate_records_the_cifar_folder_read_whichever_folder_is_given(tmp_path, monkeypatch):
    """--data-dir may be CIFAR's extracted folder or the folder holding it; results.json recorded the name as given
    (the parent's, or cifar-10-batches-py), so the same data gave two files. Now the folder read is named."""
    from satasim_atsn.cli import main

    data = tmp_path / "my data"
    data.mkdir()
    _write_cifar10(data)
    workload = Path(__file__).resolve().parents[1] / "workloads" / "vgg16w025_cifar10_atsn.npz"
    monkeypatch.chdir(tmp_path)
    for name, folder in (("a.json", data), ("b.json", data / "cifar-10-batches-py")):
        with pytest.raises(SystemExit) as stop:
            main(["evaluate", str(workload), "--dataset", "cifar10", "--data-dir", str(folder), "--json", name,
                  "--quiet"])
        assert stop.value.code == 0
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert '"data_source": "cifar-10-batches-py"' in (tmp_path / "a.json").read_text()
