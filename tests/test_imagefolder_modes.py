"""Image folders of colour modes other than L and RGB, subfolders, links, huge images, near-constant channels
and splits that disagree: read by the documented rules, or refused in one line before any training."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from satasim_atsn.errors import DatasetError
from satasim_atsn.train.config import TrainConfig
from satasim_atsn.train.trainer import prepare_data
from satasim_atsn.workload.datasets import Dataset, load_dataset

Image = pytest.importorskip("PIL.Image")


def _tree(root, save, classes=("a", "b"), per_class=(3, 2), seed=0):
    """train/<class>/*.png and test/<class>/*.png; ``save(rng, path)`` writes one image and returns what the
    loader must read from it ([H, W] or [H, W, 3] uint8)."""
    rng = np.random.default_rng(seed)
    expected = {}
    for split, count in zip(("train", "test"), per_class, strict=True):
        expected[split] = []
        for cls in classes:
            folder = root / split / cls
            folder.mkdir(parents=True)
            for i in range(count):
                expected[split].append(save(rng, folder / f"{i:03d}.png"))
    return expected


def _as_read(ds: Dataset, expected: list[np.ndarray]) -> None:
    want = np.stack(expected)
    want = want[:, None] if want.ndim == 3 else np.transpose(want, (0, 3, 1, 2))
    assert ds.x.dtype == np.uint8 and np.array_equal(ds.x, want)


def _rgb(rng):
    return rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)


def _save_rgb(rng, path):
    """A random RGB image, read back as it is."""
    array = _rgb(rng)
    Image.fromarray(array, "RGB").save(path)
    return array


@pytest.mark.parametrize(("mode", "read_as", "channels"), [("RGBA", "RGB", 3), ("CMYK", "RGB", 3), ("P", "RGB", 3),
                                                       ("1", "L", 1), ("LA", "L", 1)])
def test_other_modes_are_read_as_rgb_or_grey(tmp_path, mode, read_as, channels):
    """Colour modes become RGB and grey ones L, as torchvision's loader converts them (palette indices, a 4th
    channel and CMYK inks used to be read as they are stored)."""
    def save(rng, path):
        source = _rgb(rng) if read_as == "RGB" else rng.integers(0, 256, (6, 5), dtype=np.uint8)
        img = Image.fromarray(source, read_as).convert(mode)
        img.save(path.with_suffix(".tif") if mode == "CMYK" else path)
        return np.asarray(img.convert(read_as))

    expected = _tree(tmp_path, save)
    ds = load_dataset("imagefolder", "train", str(tmp_path))
    assert ds.input_shape == [channels, 6, 5]
    _as_read(ds, expected["train"])


def test_opaque_rgba_reads_the_same_pixels_as_rgb(tmp_path):
    """An opaque alpha channel carried no information; it used to become a 4th channel of constant 255."""
    def save(rng, path):
        array = _rgb(rng)
        Image.fromarray(np.dstack([array, np.full(array.shape[:2], 255, np.uint8)]), "RGBA").save(path)
        return array

    expected = _tree(tmp_path, save)
    _as_read(load_dataset("imagefolder", "train", str(tmp_path)), expected["train"])


def test_sixteen_bit_grey_keeps_its_high_byte(tmp_path):
    """A 16-bit PNG used to be cast to uint8, keeping the low byte: 8-bit values x 256 all read as 0."""
    def save(rng, path):
        values = rng.integers(0, 65536, (6, 5), dtype=np.uint16)
        Image.fromarray(values).save(path)  # a 16-bit grey PNG (mode I;16 or I, by Pillow version)
        return (values >> 8).astype(np.uint8)

    expected = _tree(tmp_path, save)
    assert Image.open(tmp_path / "train" / "a" / "000.png").mode in ("I;16", "I")
    _as_read(load_dataset("imagefolder", "train", str(tmp_path)), expected["train"])


def test_a_32_bit_image_of_8_bit_values_is_refused(tmp_path):
    """Mode I holding 0..255 (Image.convert('I') of an 8-bit image) read as 16-bit: every image was black."""
    def save(rng, path):
        values = rng.integers(0, 250, (6, 5), dtype=np.int32)
        Image.fromarray(values.astype(np.uint8), "L").convert("I").save(path.with_suffix(".tif"))
        return None

    _tree(tmp_path, save)
    assert Image.open(tmp_path / "train" / "a" / "000.tif").mode == "I"
    with pytest.raises(DatasetError, match=r"000\.tif: imagefolder: 16-bit grey images \(mode I\) whose values all "
                                           r"lie in 0\.\.255 .* they would be black; save them as 8-bit grey images"):
        load_dataset("imagefolder", "train", str(tmp_path))


def test_a_16_bit_png_of_8_bit_values_is_refused(tmp_path):
    """Pillow 13 opens a 16-bit grey PNG as I;16, which escaped the mode-I check: 8-bit values saved so trained on
    black images without a word."""
    def save(rng, path):
        Image.fromarray(rng.integers(0, 250, (6, 5)).astype(np.uint16)).save(path)
        return None

    _tree(tmp_path, save)
    with pytest.raises(DatasetError, match=r"000\.png: imagefolder: 16-bit grey images \(mode I(;16)?\) whose values "
                                           r"all lie in 0\.\.255"):
        load_dataset("imagefolder", "train", str(tmp_path))


def test_an_unreadable_subfolder_is_refused_by_name(tmp_path, monkeypatch):
    """os.walk skipped a folder it could not list without a word (an image short, or "empty class")."""
    _tree(tmp_path, _save_rgb)
    locked = tmp_path / "train" / "a" / "more"
    locked.mkdir()
    real_scandir = os.scandir

    def scandir(path="."):  # what chmod 000 does to anyone but root
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(DatasetError, match=r"more: imagefolder: cannot read this folder \(Permission denied\)"):
        load_dataset("imagefolder", "train", str(tmp_path))


def test_one_black_image_among_16_bit_mode_i_images_is_read(tmp_path):
    """The refusal is of a split of 8-bit values saved as mode I, not of one dark frame among 16-bit ones."""
    def save(rng, path):
        values = rng.integers(0, 65536, (6, 5)).astype(np.int32)
        if path.name == "000.png" and path.parent.name == "a":
            values[:] = 0  # a black frame
        Image.fromarray(values, "I").save(path.with_suffix(".tif"))
        return None

    _tree(tmp_path, save)
    assert Image.open(tmp_path / "train" / "a" / "000.tif").mode == "I"
    data = load_dataset("imagefolder", "train", str(tmp_path))
    assert data.x[0].max() == 0 and data.x.max() > 0


def test_float_images_are_refused_in_one_line(tmp_path):
    def save(rng, path):
        Image.fromarray(rng.random((6, 5)).astype(np.float32), "F").save(path.with_suffix(".tif"))
        return None

    _tree(tmp_path, save)
    with pytest.raises(DatasetError, match=r"000\.tif: imagefolder: floating-point image \(mode F\); save it as an "
                                           r"8-bit grey or RGB image$"):
        load_dataset("imagefolder", "train", str(tmp_path))


def test_grey_and_colour_still_may_not_mix(tmp_path):
    _tree(tmp_path, _save_rgb)
    Image.fromarray(np.zeros((6, 5), np.uint8), "L").save(tmp_path / "train" / "b" / "zz.png")
    with pytest.raises(DatasetError, match=r"zz\.png: imagefolder: the split mixes colour modes: 1 grey \(L\) "
                                           r"image \(this the first\) and 6 colour \(RGB\)"):
        load_dataset("imagefolder", "train", str(tmp_path))


def test_a_near_constant_channel_is_left_unscaled():
    """std 1e-3 made the padding value -mean/std about -800 and training collapsed to chance."""
    x = np.random.default_rng(0).integers(0, 256, (20, 3, 4, 4), dtype=np.uint8)
    x[:, 2] = 200
    mean, std = Dataset("imagefolder", "train", x, np.zeros(20, np.int64), 2, "d").channel_stats()
    assert std[2] == 1.0 and 0.1 < std[0] < 0.5 and abs(-mean[2] / std[2]) < 1


def test_channel_statistics_cover_every_image_exactly():
    """An image folder lists its classes in order: statistics of the first 10,000 images (the rule until session
    26) were those of the first classes. Now every image counts, from exact integer sums."""
    rng = np.random.default_rng(1)
    dark = rng.integers(0, 20, (10_000, 1, 2, 2), dtype=np.uint8)
    bright = rng.integers(220, 240, (2_000, 1, 2, 2), dtype=np.uint8)
    x = np.concatenate([dark, bright])
    mean, std = Dataset("imagefolder", "train", x, np.zeros(len(x), np.int64), 2, "d").channel_stats()
    pixels = x.astype(np.float64) / 255.0
    assert abs(mean[0] - pixels.mean()) < 1e-12 and abs(std[0] - pixels.std()) < 1e-12
    assert 0.17 < mean[0] < 0.19 and 0.3 < std[0] < 0.34


def test_subfolders_are_read_in_sorted_path_order(tmp_path):
    _tree(tmp_path, _save_rgb)
    nested = tmp_path / "train" / "a" / "more"
    nested.mkdir()
    extra = np.full((6, 5, 3), 7, np.uint8)
    Image.fromarray(extra, "RGB").save(nested / "000.png")
    (tmp_path / "train" / "a" / ".cache").mkdir()
    Image.fromarray(extra, "RGB").save(tmp_path / "train" / "a" / ".cache" / "x.png")  # hidden: skipped
    ds = load_dataset("imagefolder", "train", str(tmp_path))
    assert len(ds) == 7 and list(ds.y) == [0] * 4 + [1] * 3
    assert np.array_equal(ds.x[3], np.transpose(extra, (2, 0, 1)))  # after a/000..002.png, before b/


def test_a_broken_link_is_refused_by_name(tmp_path):
    _tree(tmp_path, _save_rgb)
    os.symlink(tmp_path / "nowhere.png", tmp_path / "train" / "b" / "gone.png")
    with pytest.raises(DatasetError, match=r"gone\.png: imagefolder: broken link; remove it or fix its target$"):
        load_dataset("imagefolder", "train", str(tmp_path))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_a_named_pipe_is_refused_by_name_instead_of_waiting_for_ever(tmp_path):
    """Pillow's read of a FIFO waits for a writer: a training on such a folder hung with no output."""
    _tree(tmp_path, _save_rgb)
    os.mkfifo(tmp_path / "train" / "b" / "zz.png")
    with pytest.raises(DatasetError, match=r"zz\.png: imagefolder: not a regular file \(a named pipe, socket or "
                                           r"device\); remove it from the class folder$"):
        load_dataset("imagefolder", "train", str(tmp_path))


def test_a_huge_image_is_one_line(tmp_path, monkeypatch):
    _tree(tmp_path, _save_rgb)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4)  # 30 pixels is then more than twice the limit
    with pytest.raises(DatasetError, match=r"000\.png: imagefolder: image too large to read safely"):
        load_dataset("imagefolder", "train", str(tmp_path))


def test_one_class_is_refused(tmp_path):
    _tree(tmp_path, _save_rgb, classes=("only",))
    with pytest.raises(DatasetError, match=r"imagefolder: one class folder \('only'\); a classifier needs at least "
                                           r"two"):
        load_dataset("imagefolder", "train", str(tmp_path))


@pytest.mark.parametrize("test_size", [(8, 8), (6, 6)])
def test_a_test_split_of_another_size_is_refused_before_training(tmp_path, test_size):
    """It crashed with a reshape or matmul traceback after the first epoch (or at export)."""
    for split, size in (("train", (6, 6)), ("test", test_size)):
        for cls in ("a", "b"):
            (tmp_path / split / cls).mkdir(parents=True)
            Image.fromarray(np.zeros(size, np.uint8), "L").save(tmp_path / split / cls / "0.png")
    if test_size == (6, 6):  # same size, other channels
        for cls in ("a", "b"):
            Image.fromarray(np.zeros((6, 6, 3), np.uint8), "RGB").save(tmp_path / "test" / cls / "0.png")
    config = TrainConfig(dataset="imagefolder", data_dir=str(tmp_path))
    fix = ("give both splits one colour mode (the train split's images have 1 channel)" if test_size == (6, 6)
           else "pass --image-size S")  # only another size is resized away
    with pytest.raises(DatasetError, match=r"imagefolder: the test split's examples have shape \[\d, \d, \d\], the "
                                           r"train split's \[1, 6, 6\]; " + re.escape(fix)):
        prepare_data(config)


def test_a_link_loop_in_a_class_is_named_as_one(tmp_path):
    """A link to '..' inside a class walked the other classes' images under the wrong label, 40 levels deep, and
    was then called a broken link."""
    def save(rng, path):
        Image.fromarray(rng.integers(0, 256, (6, 5), dtype=np.uint8), "L").save(path)
        return None

    _tree(tmp_path, save)
    os.symlink("..", tmp_path / "train" / "a" / "loop")
    with pytest.raises(DatasetError, match=r"train/a/loop: imagefolder: a link loop"):
        load_dataset("imagefolder", "train", str(tmp_path))
    (tmp_path / "train" / "a" / "loop").unlink()
    os.symlink(".", tmp_path / "train" / "a" / "self")
    with pytest.raises(DatasetError, match=r"train/a/self: imagefolder: a link loop"):
        load_dataset("imagefolder", "train", str(tmp_path))


def test_two_links_to_one_folder_are_no_loop(tmp_path):
    def save(rng, path):
        Image.fromarray(rng.integers(0, 256, (6, 5), dtype=np.uint8), "L").save(path)
        return None

    _tree(tmp_path, save)
    sub = tmp_path / "train" / "a" / "x"
    sub.mkdir()
    Image.fromarray(np.zeros((6, 5), np.uint8), "L").save(sub / "9.png")
    os.symlink("x", tmp_path / "train" / "a" / "y")
    assert len(load_dataset("imagefolder", "train", str(tmp_path))) == 3 + 2 + 3  # x/9.png read twice, as torchvision


def test_class_names_of_other_unicode_forms_are_told_apart(tmp_path):
    import unicodedata

    def save(rng, path):
        Image.fromarray(rng.integers(0, 256, (6, 5), dtype=np.uint8), "L").save(path)
        return None

    _tree(tmp_path, save, classes=(unicodedata.normalize("NFC", "grün"), "b"))
    (tmp_path / "test" / "grün").rename(tmp_path / "test" / unicodedata.normalize("NFD", "grün"))
    with pytest.raises(DatasetError) as info:
        load_dataset("imagefolder", "train", str(tmp_path))
    assert r"class folders differ (only in train/: ['gr\xfcn']; only in test/: ['gru\u0308n'])" in str(info.value)


def test_a_class_name_in_utf8_is_shown_as_its_folder_shows_it(tmp_path):
    """'ñoño_é' was shown as '\\xf1o\\xf1o_\\xe9' in the train/test and the evaluate class messages: the escapes the
    docs give for bytes that are not UTF-8 (h3, session 47). Only names that look alike are escaped."""
    from satasim_atsn.workload.datasets import class_names_shown

    def save(rng, path):
        Image.fromarray(rng.integers(0, 256, (6, 5), dtype=np.uint8), "L").save(path)

    _tree(tmp_path, save, classes=("ñoño_é", "b"))
    (tmp_path / "test" / "ñoño_é").rename(tmp_path / "test" / "zzz")
    with pytest.raises(DatasetError) as info:
        load_dataset("imagefolder", "train", str(tmp_path))
    assert "class folders differ (only in train/: ['ñoño_é']; only in test/: ['zzz'])" in str(info.value)
    assert class_names_shown(["ñoño_é"], ["ñoño_é", "b"]) == "['ñoño_é']"


def test_evaluating_on_an_unresized_folder_names_the_trained_image_size(tmp_path):
    """A workload trained with --image-size 4, evaluated on a folder of mixed sizes, was told 'pass --image-size S'."""
    from satasim_atsn.workload.datasets import with_test_split
    from satasim_atsn.workload.format import Workload

    _tree(tmp_path, _save_rgb)
    Image.fromarray(np.zeros((9, 7, 3), np.uint8), "RGB").save(tmp_path / "test" / "b" / "zz.png")
    workload = Workload({"dataset": "imagefolder", "provenance": {"config": {"image_size": 4}}}, {}, "w.npz")
    with pytest.raises(DatasetError, match=r"zz\.png: .*pass --image-size 4 \(the size the workload was trained at\)"):
        with_test_split(workload, "imagefolder", str(tmp_path))


def test_a_palette_png_with_transparency_reads_without_a_pillow_warning(tmp_path, recwarn):
    """A palette PNG with a transparency table (icons, web graphics) became RGB through Pillow's warning "Palette
    images with Transparency expressed in bytes should be converted to RGBA images": two lines pointing into
    Pillow's source on every training and evaluation, even with --quiet. Read through RGBA, same pixels."""
    def save(rng, path):
        img = Image.fromarray(_rgb(rng), "RGB").convert("P")
        img.save(path, transparency=bytes([0] * 8 + [255] * 248))
        with Image.open(path) as back:
            assert back.mode == "P" and isinstance(back.info.get("transparency"), bytes)
            return np.asarray(back.convert("RGBA"))[..., :3]

    expected = _tree(tmp_path, save)
    recwarn.clear()
    ds = load_dataset("imagefolder", "train", str(tmp_path))
    assert [str(w.message) for w in recwarn] == []
    _as_read(ds, expected["train"])


def test_an_unreadable_image_file_says_to_make_it_readable(tmp_path, monkeypatch):
    """A chmod 000 image was "not a readable image (PermissionError); remove or replace the file": the image is
    fine, its permissions are not."""
    _tree(tmp_path, _save_rgb)
    locked = tmp_path / "train" / "b" / "001.png"
    real_open = Image.open

    def image_open(path, *args, **kwargs):  # what chmod 000 does to anyone but root
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", image_open)
    with pytest.raises(DatasetError, match=r"001.png: imagefolder: cannot read this file \(Permission denied\); "
                       r"make it readable, or remove it$"):
        load_dataset("imagefolder", "train", str(tmp_path))


def test_a_class_folder_is_read_in_torchvisions_order(tmp_path):
    """torchvision's ImageFolder walks sorted(os.walk(class folder)): a folder's own files before its subfolders',
    and folders by their path string ("sub-x" before "sub/deeper"). The loader sorted by path parts instead, so
    a file beside subfolders (a/z.png after a/b/0.png) and such siblings came in another order than the docs'
    "as torchvision does" (the order --train-subset and the embedded sample draw from)."""
    _tree(tmp_path, _save_rgb, per_class=(1, 1))
    folder = tmp_path / "train" / "a"
    for i, rel in enumerate(("z.png", "b/0.png", "sub/1.png", "sub-x/0.png", "sub/deeper/0.png", "sub/0.png")):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((6, 5, 3), 10 + i, np.uint8), "RGB").save(folder / rel)
    torchvision = [Path(root) / name for root, _, names in sorted(os.walk(folder, followlinks=True))
                   for name in sorted(names)]
    assert [p.relative_to(folder).as_posix() for p in torchvision][:4] == ["000.png", "z.png", "b/0.png", "sub/0.png"]
    ds = load_dataset("imagefolder", "train", str(tmp_path))
    want = [np.asarray(Image.open(p).convert("RGB")).transpose(2, 0, 1) for p in torchvision]
    assert len(ds) == len(want) + 1 and all(np.array_equal(ds.x[i], w) for i, w in enumerate(want))
