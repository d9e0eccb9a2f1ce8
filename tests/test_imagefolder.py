"""The image-folder dataset (torchvision ImageFolder layout): reading, the class-balanced sample, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.cli import main
from satasim_atsn.errors import DatasetError
from satasim_atsn.workload.datasets import balanced_sample, load_dataset

Image = pytest.importorskip("PIL.Image")

CLASSES = ("cat", "airplane", "dog")
ROOT_WORKLOAD = Path(__file__).resolve().parents[1] / "workloads" / "vgg_small_fmnist_atsn.npz"


def make_tree(root, per_class=(4, 3), size=(8, 8), mode="RGB", classes=CLASSES, seed=0):
    """train/<class>/*.png and test/<class>/*.png of small random images; returns the pixel arrays by split."""
    rng = np.random.default_rng(seed)
    pixels = {}
    for split, count in zip(("train", "test"), per_class, strict=True):
        pixels[split] = []
        for cls in sorted(classes):
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
                array = rng.integers(0, 256, shape, dtype=np.uint8)
                Image.fromarray(array, mode).save(folder / f"{i:04d}.png")
                pixels[split].append(array)
    return pixels


def test_reads_classes_sorted_pixels_exact(tmp_path):
    pixels = make_tree(tmp_path)
    ds = load_dataset("imagefolder", "train", str(tmp_path))
    assert ds.class_names == ("airplane", "cat", "dog") and ds.num_classes == 3
    assert ds.x.shape == (12, 3, 8, 8) and ds.x.dtype == np.uint8
    assert list(ds.y) == [0] * 4 + [1] * 4 + [2] * 4
    assert np.array_equal(ds.x[5], np.transpose(pixels["train"][5], (2, 0, 1)))
    assert ds.source == tmp_path.name  # no absolute path


def test_grayscale_and_resize_rule(tmp_path):
    make_tree(tmp_path, size=(6, 10), mode="L")
    ds = load_dataset("imagefolder", "test", str(tmp_path))
    assert ds.x.shape == (9, 1, 10, 6)
    resized = load_dataset("imagefolder", "test", str(tmp_path), image_size=4)
    assert resized.x.shape == (9, 1, 4, 4)


def test_balanced_sample_is_seeded_and_balanced():
    labels = np.repeat(np.arange(10), 100)  # class-sorted, as image folders list them
    idx = balanced_sample(labels, 256, seed=3)
    assert len(idx) == 256 and len(set(idx.tolist())) == 256
    counts = np.bincount(labels[idx], minlength=10)
    assert counts.min() == 25 and counts.max() == 26
    for n in (1, 7, 10, 33, 100):  # in draw order: every prefix is as balanced as its length allows (sorted, the
        prefix = np.bincount(labels[idx[:n]], minlength=10)  # first 26 were class 0's)
        assert prefix.max() - prefix.min() <= 1, (n, prefix)
    assert np.array_equal(balanced_sample(labels, 40, seed=3), idx[:40])  # a smaller sample is the start
    assert np.array_equal(idx, balanced_sample(labels, 256, seed=3))
    assert not np.array_equal(idx, balanced_sample(labels, 256, seed=4))
    assert not np.array_equal(idx, np.arange(256))
    assert len(balanced_sample(labels, 5000, seed=0)) == 1000


def _expect(tmp_path, needle, split="train", **kw):
    with pytest.raises(DatasetError) as info:
        load_dataset("imagefolder", split, str(tmp_path), **kw)
    message = str(info.value)
    assert needle in message and "\n" not in message
    return message


def test_no_classes(tmp_path):
    (tmp_path / "train").mkdir()
    _expect(tmp_path, "no class folders")


def test_missing_split_and_dir(tmp_path):
    _expect(tmp_path, "split folder not found")
    for missing in (None, ""):  # the fix is the folder: Pillow is installed here, and was once suggested
        with pytest.raises(DatasetError, match="--data-dir") as info:
            load_dataset("imagefolder", "train", missing)
        assert "Pillow" not in str(info.value) and "ImageFolder layout" in str(info.value)


def test_a_data_dir_inside_an_image_folder_names_the_folder(tmp_path):
    """--data-dir cifar10/train (or a class folder) was told only that cifar10/train/train was not found."""
    make_tree(tmp_path / "data")
    for inside in ("train", "test", "train/cat"):
        message = _expect(tmp_path / "data" / inside, "split folder not found")
        assert f"is inside the image folder {tmp_path / 'data'}: pass --data-dir {tmp_path / 'data'}" in message
    (tmp_path / "data" / "other").mkdir()  # a folder beside the splits is not inside one: no such hint
    assert "inside the image folder" not in _expect(tmp_path / "data" / "other", "split folder not found")


def test_the_dataset_source_is_the_folders_name_from_any_working_directory(tmp_path, monkeypatch):
    """--data-dir data/train/.. recorded '..' resolved against the working directory: the name of the folder above
    it, so the same training gave other workload bytes from another folder."""
    make_tree(tmp_path / "data")
    for cwd in (tmp_path, tmp_path / "data" / "test" / "cat"):
        monkeypatch.chdir(cwd)
        relative = Path("data/train/..") if cwd == tmp_path else Path("../../train/..")
        assert load_dataset("imagefolder", "train", str(relative)).source == "data"
        assert load_dataset("imagefolder", "train", str(tmp_path / "data" / "train" / "..")).source == "data"


def test_mismatched_classes(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "test" / "emu").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "test" / "emu" / "a.png")
    message = _expect(tmp_path, "class folders differ")
    assert "emu" in message


def test_mixed_sizes_name_the_file(tmp_path):
    make_tree(tmp_path)
    odd = tmp_path / "train" / "dog" / "odd.png"
    Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(odd)
    message = _expect(tmp_path, "the split mixes image sizes: 1 of 8x9 (this the first) and 12 of 8x8")
    assert str(odd) in message and message.endswith("; resize or remove the odd image (most are 8x8), or pass "
                                                    "--image-size S to resize every image to S x S")
    assert load_dataset("imagefolder", "train", str(tmp_path), image_size=8).x.shape == (13, 3, 8, 8)


def test_mixed_modes(tmp_path):
    make_tree(tmp_path)
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(tmp_path / "train" / "dog" / "gray.png")
    _expect(tmp_path, "the split mixes colour modes: 1 grey (L) image (this the first) and 12 colour (RGB)")


def test_mixed_modes_name_the_odd_one_out_even_when_it_comes_first(tmp_path):
    """A grey first image made every colour image after it the one named, and a majority the odd ones."""
    make_tree(tmp_path)
    first = tmp_path / "train" / "airplane" / "0000.png"
    Image.fromarray(np.zeros((8, 8), np.uint8), "L").save(first)
    message = _expect(tmp_path, "1 grey (L) image (this the first) and 11 colour (RGB)")
    assert message.startswith(f"{first}: imagefolder: the split mixes colour modes")
    (tmp_path / "train" / "cat" / "0001.png").unlink()
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / "train" / "cat" / "0001.png")
    Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(tmp_path / "train" / "dog" / "0002.png")
    first.unlink()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(first)
    assert str(tmp_path / "train" / "cat" / "0001.png") in _expect(tmp_path, "2 of 10x8 (this the first) and 10")


def test_non_image_and_corrupt_files(tmp_path):
    make_tree(tmp_path)
    notes = tmp_path / "train" / "cat" / "notes.txt"
    notes.write_text("hello")
    assert str(notes) in _expect(tmp_path, "not an image file")
    notes.unlink()
    broken = tmp_path / "train" / "cat" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert str(broken) in _expect(tmp_path, "not a readable image")
    broken.write_bytes(b"")
    _expect(tmp_path, "not a readable image")


def test_hidden_files_are_ignored_and_empty_class_refused(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "train" / "cat" / ".DS_Store").write_bytes(b"\0")
    assert len(load_dataset("imagefolder", "train", str(tmp_path))) == 12
    for f in (tmp_path / "train" / "cat").glob("*.png"):
        f.unlink()
    _expect(tmp_path, "empty class folder")


def test_train_on_image_folder_embeds_balanced_sample(tmp_path, capsys):
    make_tree(tmp_path / "data", per_class=(8, 6), size=(12, 12))
    out = tmp_path / "w.npz"
    with pytest.raises(SystemExit) as info:
        main(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
              "--width", "0.25", "--test-images", "6", "--batch-size", "8", "--quiet", "-o", str(out)])
    assert info.value.code == 0
    from satasim_atsn.workload.format import read_workload

    w = read_workload(out)
    labels = w.labels()
    assert len(labels) == 6 and np.bincount(labels, minlength=3).tolist() == [2, 2, 2]
    assert sorted(labels[:3].tolist()) == [0, 1, 2]  # the first images embedded are of every class
    prov = w.meta["provenance"]
    assert prov["class_names"] == ["airplane", "cat", "dog"] and prov["eval_images"] == 18
    assert "class-balanced" in prov["test_split"] and prov["dataset_source"] == "data"
    assert str(tmp_path) not in str(w.meta)


def test_train_cli_bad_folder_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(SystemExit) as info:
        main(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path), "-o", str(tmp_path / "w.npz")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "empty class folder" in err
    assert not (tmp_path / "w.npz").exists()


def test_evaluate_on_the_whole_test_split(tmp_path, capsys):
    import json

    make_tree(tmp_path / "data", per_class=(8, 5), size=(12, 12))
    out = tmp_path / "w.npz"
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
              "--width", "0.25", "--test-images", "3", "--batch-size", "8", "--quiet", "-o", str(out)])
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(out), "--dataset", "imagefolder", "--data-dir", str(tmp_path / "data"),
              "--json", str(tmp_path / "e.json")])
    assert info.value.code == 0
    table = json.loads((tmp_path / "e.json").read_text())
    assert table["images"] == 15 and table["inputs"] == "imagefolder" and table["data_source"] == "data"
    capsys.readouterr()
    make_tree(tmp_path / "other", per_class=(2, 2), size=(10, 10))
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(out), "--dataset", "imagefolder", "--data-dir", str(tmp_path / "other")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "expects [3, 12, 12]" in err and err.count("\n") == 1
    assert "resize them with --image-size 12" in err  # the size it was trained at, the one fix that works
    make_tree(tmp_path / "grey", per_class=(2, 2), size=(12, 12), mode="L")
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(out), "--dataset", "imagefolder", "--data-dir", str(tmp_path / "grey")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "its colour mode: 3 channels" in err and "--image-size" not in err


def test_an_image_size_beyond_reason_is_refused_before_any_resize(tmp_path, capsys, monkeypatch):
    """--image-size 100000 resized the first image to 30 GB and the kernel killed the process (exit 137)."""
    make_tree(tmp_path)
    with pytest.raises(DatasetError, match=r"--image-size: 100000 is more than 4096 pixels a side"):
        load_dataset("imagefolder", "train", str(tmp_path), image_size=100000)
    import satasim_atsn.workload.datasets as datasets

    monkeypatch.setattr(datasets.os, "sysconf", lambda name: 1024 if name == "SC_PAGE_SIZE" else 1024)  # 1 MiB
    with pytest.raises(DatasetError, match=r"--image-size: 12 images of 256 x 256 need about 11 MiB, more than "
                                           r"this machine's 1 MiB"):
        load_dataset("imagefolder", "train", str(tmp_path), image_size=256)
    monkeypatch.undo()
    with pytest.raises(SystemExit) as exc:
        main(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path), "--image-size", "100000",
              "-o", str(tmp_path / "w.npz")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--image-size" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("size", ["0", "-4"])
def test_evaluate_refuses_an_image_size_below_one_by_its_option(tmp_path, capsys, size):
    """`evaluate --image-size 0` blamed the first image: "img.png: not a readable image (ValueError); remove or
    replace the file" (train checks the option, evaluate handed it to Pillow's resize)."""
    make_tree(tmp_path / "data", per_class=(4, 2), size=(12, 12))
    out = tmp_path / "w.npz"
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
              "--width", "0.25", "--batch-size", "8", "--quiet", "-o", str(out)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(out), "--dataset", "imagefolder", "--data-dir", str(tmp_path / "data"),
              "--image-size", size])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1, err
    assert f"--image-size: must be positive, got {size}" in err and ".png" not in err


def _non_utf8_folder(path: bytes) -> Path:
    """A folder whose name is not UTF-8 (skipped where the file system refuses such names)."""
    try:
        os.makedirs(path)
    except OSError:
        pytest.skip("this file system refuses names that are not UTF-8")
    return Path(os.fsdecode(path))


def test_a_class_folder_not_named_in_utf8_is_refused_by_train_and_evaluate(tmp_path, capsys):
    """A class folder named in Latin-1 (b'caf\\xe9') was recorded as the lone surrogate 'caf\\udce9' in the
    workload's class_names, text JSON readers refuse; now train and evaluate refuse it in one line, naming it."""
    make_tree(tmp_path / "data", classes=("dog", "cat"))
    make_tree(tmp_path / "ok", classes=("dog", "cat"))
    for split in ("train", "test"):
        odd = _non_utf8_folder(os.fsencode(tmp_path / "data" / split) + b"/caf\xe9")
        (tmp_path / "data" / split / "cat").rename(odd)
    for split in ("train", "test"):
        message = _expect(tmp_path / "data", "the class folder b'caf\\xe9' is not named in UTF-8", split)
        assert message.endswith("; rename it with a UTF-8 name")
    out = tmp_path / "w.npz"
    for args in (["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
                  "--width", "0.25", "--test-images", "2", "--batch-size", "8", "-q", "-o", str(out)],
                 ["evaluate", str(ROOT_WORKLOAD), "--dataset", "imagefolder", "--data-dir", str(tmp_path / "data")]):
        with pytest.raises(SystemExit) as info:
            main(args)
        err = capsys.readouterr().err
        assert info.value.code == 2 and err.count("\n") == 1 and "b'caf\\xe9' is not named in UTF-8" in err, err
    assert not out.exists()


def test_names_not_in_utf8_are_recorded_as_escapes(tmp_path, capsys, monkeypatch):
    """A data folder and a workload file named in Latin-1: their names went into the workload and the --json files
    as lone surrogates ('d\\udce9ta'); now as the escapes a message shows ('d\\\\xe9ta'), in strict UTF-8 JSON."""
    import json

    from satasim_atsn.workload.format import read_workload

    data = _non_utf8_folder(os.fsencode(tmp_path) + b"/d\xe9ta")
    make_tree(data, per_class=(4, 2), size=(8, 8))
    monkeypatch.chdir(tmp_path)
    out = os.fsdecode(b"w\xe9.npz")
    for args in (["train", "--dataset", "imagefolder", "--data-dir", str(data), "--epochs", "1", "--width", "0.25",
                  "--test-images", "3", "--batch-size", "8", "-q", "-o", out, "--json", "t.json"],
                 ["evaluate", out, "--dataset", "imagefolder", "--data-dir", str(data), "-q", "--json", "e.json"]):
        with pytest.raises(SystemExit) as info:
            main(args)
        assert info.value.code == 0, capsys.readouterr().err
    trained, evaluated = (json.loads((tmp_path / f).read_bytes().decode("utf-8")) for f in ("t.json", "e.json"))
    assert trained["workload"] == evaluated["workload"] == "w\\xe9.npz" and evaluated["data_source"] == "d\\xe9ta"
    meta = read_workload(out).meta
    assert meta["name"] == "w\\xe9" and meta["provenance"]["dataset_source"] == "d\\xe9ta"
    json.dumps(meta, ensure_ascii=False).encode("utf-8")  # no lone surrogate left anywhere in it


def test_evaluating_a_rectangular_workload_on_other_sizes_names_its_size_not_its_classes(tmp_path, capsys):
    """A workload of 12 x 16 images evaluated on a folder of 12 x 12 images of the same classes and colour mode was
    told to pick a dataset of its classes and colour mode, which agreed (h3, session 47); --image-size makes
    squares, so the fix names the size."""
    make_tree(tmp_path / "data", per_class=(8, 3), size=(16, 12))
    out = tmp_path / "w.npz"
    with pytest.raises(SystemExit):
        main(["train", "--dataset", "imagefolder", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
              "--width", "0.25", "--test-images", "3", "--batch-size", "8", "--quiet", "-o", str(out)])
    capsys.readouterr()
    make_tree(tmp_path / "square", per_class=(2, 2), size=(12, 12))
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(out), "--dataset", "imagefolder", "--data-dir", str(tmp_path / "square")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1, err
    assert "expects [3, 12, 16]" in err and "give images of 12 x 16 (height x width; --image-size makes squares" in err
