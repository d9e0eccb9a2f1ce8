"""Datasets for training and for workload inputs, read from local files in their official formats.

- ``fashion-mnist`` / ``mnist``: idx files (``train-images-idx3-ubyte[.gz]`` ...), by default from
  ``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``) or ``.../mnist``.
- ``cifar10`` / ``cifar100``: the official python pickle batches (``cifar-10-batches-py``,
  ``cifar-100-python``) in a directory the user names.
- ``cifar10-dvs``: pre-framed event data, ``train.npz`` and ``test.npz`` each holding ``x`` uint8
  [N, T, 2, H, W] (0/1 spike frames or event counts, clipped to 1) and ``y`` [N].
- ``imagefolder``: ``train/<class>/*`` and ``test/<class>/*`` image files (torchvision's
  ``ImageFolder`` layout) read with Pillow (the ``[images]`` extra); class names are the sorted
  folder names, and a class folder's images may sit in subfolders (read in torchvision's order,
  ``sorted(os.walk(...))``: a folder's own files before its subfolders'). Colour rule: 8-bit grey
  (``L``) and ``RGB`` are read as they are; a bilevel
  image (``1``) becomes grey, grey with alpha (``LA``) grey, and every other colour mode (palette,
  ``RGBA``, ``CMYK``, ...) RGB, alpha dropped, as torchvision's loader does; 16-bit grey (and ``I``) keeps
  its high byte (a split whose ``I`` images all hold 0..255 is refused: they would be black); float images are
  refused.
  Resize rule: none by default (every image must have the first
  image's size and channels, and the test split the train split's); with ``image_size=S`` every
  image is resized to S x S with Pillow's bilinear filter.
- ``synthetic``: a small deterministic dataset for tests (no files).

Nothing is downloaded; a missing or corrupt file raises :class:`DatasetError` saying where the
files are expected and how to get them.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import pickle
import warnings
import zlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from satasim_atsn.errors import DatasetError, did_you_mean, shown
from satasim_atsn.fileio import text_name
from satasim_atsn.workload.format import Workload
from satasim_atsn.workload.npz import read_npz

DATASETS = ("fashion-mnist", "mnist", "cifar10", "cifar100", "cifar10-dvs", "imagefolder", "synthetic")
#: the datasets of spike frames (event data, [N, T, C, H, W]); the others hold images
SPIKE_FRAME_DATASETS = ("cifar10-dvs",)
DEFAULT_DIRS = {
    "fashion-mnist": ("/usr/share/datasets/fashion-mnist",),
    "mnist": ("/usr/share/datasets/mnist",),
}
HOW_TO_GET = {
    "fashion-mnist": "install it with `apt-get install dataset-fashion-mnist` or pass --data-dir with the idx files "
                     "from github.com/zalandoresearch/fashion-mnist",
    "mnist": "pass --data-dir with the four MNIST idx files (train-images-idx3-ubyte.gz ...)",
    "cifar10": "pass --data-dir with the official python version (cifar-10-python.tar.gz from "
               "www.cs.toronto.edu/~kriz/cifar.html, extracted)",
    "cifar100": "pass --data-dir with the official python version (cifar-100-python.tar.gz from "
                "www.cs.toronto.edu/~kriz/cifar.html, extracted)",
    "imagefolder": "pass --data-dir with train/<class>/*.png|jpg and test/<class>/... (torchvision ImageFolder "
                   "layout)",
    "cifar10-dvs": "pass --data-dir with train.npz and test.npz of pre-framed events (x uint8 [N, T, 2, H, W], y [N]), "
                   "e.g. framed with SpikingJelly",
}
#: how a caller shows progress while an image folder is read: called with a description and the number of images,
#: it returns a context manager yielding a callback that is called with 1 after each image (the trainer's bar)
ProgressHook = Callable[[str, int], AbstractContextManager[Callable[[int], object]]]
CLASS_COUNTS = {"fashion-mnist": 10, "mnist": 10, "cifar10": 10, "cifar100": 100, "cifar10-dvs": 10}


@dataclass
class Dataset:
    """One split: images uint8 [N, C, H, W] (or spike frames [N, T, C, H, W]) and labels int64 [N]."""

    name: str
    split: str
    x: np.ndarray
    y: np.ndarray
    num_classes: int
    source: str
    class_names: tuple[str, ...] = ()
    #: the size of the split this is a sample of (None: the whole split)
    sample_of: int | None = None

    @property
    def framed(self) -> bool:
        """True for spike-frame (event) data."""
        return self.x.ndim == 5

    @property
    def input_shape(self) -> list[int]:
        """[C, H, W] of one image or frame."""
        return [int(v) for v in self.x.shape[-3:]]

    def __len__(self) -> int:
        """Number of examples."""
        return int(self.y.shape[0])

    def channel_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and std of x/255 (the normalisation folded into the first layer)."""
        if self.framed:
            c = self.x.shape[2]
            return np.zeros(c), np.ones(c)
        # over every image (a sample of the first ones would be the first classes of a class-sorted image folder),
        # from exact integer sums of the uint8 pixels, so the same bits on every CPU
        c = self.x.shape[1]
        total = np.zeros(c, dtype=np.int64)
        squares = np.zeros(c, dtype=np.int64)
        for lo in range(0, len(self), 2048):
            chunk = self.x[lo:lo + 2048].astype(np.int64)
            total += chunk.sum(axis=(0, 2, 3))
            squares += (chunk * chunk).sum(axis=(0, 2, 3))
        count = len(self) * self.x.shape[2] * self.x.shape[3]
        mean = total / (count * 255.0)
        # var = (count * sum x^2 - (sum x)^2) / count^2, exact in integers (Python ints do not overflow)
        var = np.array([(count * int(q) - int(t) ** 2) / (count * count) for t, q in zip(total, squares, strict=True)])
        std = np.sqrt(var) / 255.0
        # a channel that varies by less than one grey level carries no information: dividing by its tiny std
        # would make the padding value (-mean / std) huge and swamp the other channels, so it is left unscaled
        return mean, np.where(std < 1.0 / 255.0, 1.0, std)


def _fail(name: str, where: str, problem: str) -> DatasetError:
    return DatasetError.at(where, None, f"{name}: {problem}", HOW_TO_GET.get(name))


# ------------------------------------------------------------------------------------------
# idx (MNIST, Fashion-MNIST)
# ------------------------------------------------------------------------------------------
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one idx file (gzipped or not) into a uint8 array; DatasetError if malformed."""
    path = Path(path)
    try:  # gzipped or not by its first bytes, not its name (a browser may unpack a download and keep its .gz)
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as error:  # zlib.error: a damaged deflate stream
        raise DatasetError.at(str(path), None, f"cannot read idx file ({error})", "replace the corrupt file") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError.at(str(path), None, "not an idx file of unsigned bytes (bad magic number)",
                              "replace the corrupt file")
    ndim = data[3]
    if ndim < 1 or len(data) < 4 + 4 * ndim:
        raise DatasetError.at(str(path), None, "truncated idx header", "replace the corrupt file")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    size = math.prod(dims)  # Python ints: np.prod wrapped past 2**63 (dims 2**31, 2**31, 4 claimed 0 bytes)
    body = data[4 + 4 * ndim:]
    if len(body) != size:
        raise DatasetError.at(str(path), None, f"holds {len(body)} bytes of data, its header says {size}",
                              "the file is truncated; replace it")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array as an idx file (gzipped when the name ends in .gz); used by tests."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + array.tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(payload)


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / f"{stem}.gz", directory / stem, directory / stem.replace("-idx", ".idx")):
        if candidate.is_file():
            return candidate
    return None


def _load_idx_dataset(name: str, split: str, data_dir: str | None) -> Dataset:
    dirs = [data_dir] if data_dir else list(DEFAULT_DIRS[name])
    prefix = "train" if split == "train" else "t10k"
    for d in dirs:
        directory = Path(d)
        images = _find(directory, f"{prefix}-images-idx3-ubyte")
        labels = _find(directory, f"{prefix}-labels-idx1-ubyte")
        if images is None or labels is None:
            continue
        x, y = read_idx(images), read_idx(labels)
        if x.ndim != 3 or y.ndim != 1:
            raise DatasetError.at(str(images), None, f"expected images [N, H, W] and labels [N], got {x.shape} and "
                                  f"{y.shape}", "replace the files with the official idx files")
        if x.shape[0] != y.shape[0]:
            raise DatasetError.at(str(labels), None, f"{y.shape[0]} labels for {x.shape[0]} images",
                                  "replace the files with a matching pair")
        if y.size and y.max() >= CLASS_COUNTS[name]:
            raise DatasetError.at(str(labels), None, f"label {int(y.max())} out of range", "replace the file")
        return Dataset(name, split, x[:, None, :, :].copy(), y.astype(np.int64), CLASS_COUNTS[name], str(directory))
    where = " or ".join(str(Path(d)) for d in dirs)
    raise _fail(name, where, f"no {prefix}-images-idx3-ubyte[.gz] / {prefix}-labels-idx1-ubyte[.gz] found")


# ------------------------------------------------------------------------------------------
# CIFAR-10/100 (official python pickles)
# ------------------------------------------------------------------------------------------
class _ForeignClass(pickle.UnpicklingError):
    """A batch pickle names a class or function that a CIFAR batch does not hold."""


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles a CIFAR batch: dicts, lists, bytes, numbers and numpy arrays; any other class or function a pickle
    names, which unpickling would import and call (a pickle can run code), is refused before it is imported."""

    ALLOWED = frozenset({(f"numpy.{core}.{module}", name) for core in ("core", "_core")  # numpy 1 and 2 names
                         for module, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                                              ("numeric", "_frombuffer"))}  # the last: pickle protocol 5
                        | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")})  # bytes: protocols 0-1

    def find_class(self, module: str, name: str) -> object:
        """The numpy array constructors a batch's arrays need, and nothing else."""
        if (module, name) not in self.ALLOWED:
            raise _ForeignClass(f"{module}.{name}")
        return super().find_class(module, name)


def _unpickle(path: Path, name: str) -> dict:
    try:
        with open(path, "rb") as handle:
            obj = _BatchUnpickler(handle, encoding="bytes").load()
    except _ForeignClass as error:
        raise DatasetError.at(str(path), None, f"{name}: the batch pickle names {shown(str(error))}, which a CIFAR "
                              "batch (numpy arrays, lists, bytes) never holds; it is not unpickled (a pickle can run "
                              "code)", "extract the official archive again") from None
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, ImportError) as error:
        raise DatasetError.at(str(path), None, f"{name}: cannot unpickle batch ({type(error).__name__})",
                              "the file is corrupt; extract the official archive again") from None
    if not isinstance(obj, dict):
        raise DatasetError.at(str(path), None, f"{name}: not a CIFAR batch dictionary", "extract the archive again")
    # a key not in UTF-8 is none a batch is read by ("data", the labels): kept, escaped, not a UnicodeDecodeError
    return {k.decode("utf-8", "backslashreplace") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_labels(value: object, path: Path, name: str, key: str) -> np.ndarray:
    """A batch's labels as int64 [N]; anything but a flat list of integers (words, ragged lists, floats that a cast
    would truncate to classes) is refused in one line."""
    try:
        labels = np.asarray(value)
    except (ValueError, TypeError):  # a ragged list
        labels = None
    if labels is None or labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        got = "a ragged list" if labels is None else (f"{labels.dtype} {list(labels.shape)}" if labels.ndim else
                                                      type(value).__name__)
        raise DatasetError.at(str(path), key, f"{name}: labels must be a list of class indices (integers), got {got}",
                              "extract the official archive again")
    return labels.astype(np.int64)


def data_folder(name: str, data_dir: str | os.PathLike) -> Path:
    """The folder a dataset's loader reads under ``--data-dir``: CIFAR's extracted archive folder
    (``cifar-10-batches-py``, ``cifar-100-python``) when DIR holds it, else DIR itself."""
    base = Path(data_dir)
    sub = CIFAR_FOLDERS.get(name)
    return base / sub if sub is not None and (base / sub).is_dir() else base


#: the folder the official CIFAR archives extract to
CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def _load_cifar(name: str, split: str, data_dir: str | None) -> Dataset:
    if not data_dir:
        raise _fail(name, "--data-dir", "needs the directory holding the dataset")
    directory = data_folder(name, data_dir)
    if name == "cifar10":
        files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        label_key = "labels"
    else:
        files = ["train"] if split == "train" else ["test"]
        label_key = "fine_labels"
    xs, ys = [], []
    for fname in files:
        path = directory / fname
        if not path.is_file():
            if (directory / "train").is_dir() and (directory / "test").is_dir():  # an image folder (ImageFolder layout)
                raise DatasetError.at(str(path), None, f"{name}: batch file not found; {directory} holds train/ "
                                      "and test/ folders", "for class folders of images, use --dataset imagefolder")
            raise _fail(name, str(path), "batch file not found")
        batch = _unpickle(path, name)
        if "data" not in batch or label_key not in batch:
            raise DatasetError.at(str(path), None, f"{name}: batch lacks 'data' or '{label_key}'",
                                  "extract the official archive again")
        try:
            data = np.asarray(batch["data"])
        except (ValueError, TypeError):  # a ragged list, or one nested past numpy's 64 dimensions
            data = None
        labels = _cifar_labels(batch[label_key], path, name, label_key)
        if (data is None or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072
                or data.shape[0] != labels.shape[0]):
            got = "a ragged list" if data is None else f"{data.dtype} {data.shape}"
            raise DatasetError.at(str(path), "data", f"{name}: expected uint8 [N, 3072] with N labels, got "
                                  f"{got} and {labels.shape[0]} labels", "extract the archive again")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    y = np.concatenate(ys)
    if y.size and (y.min() < 0 or y.max() >= CLASS_COUNTS[name]):
        raise DatasetError.at(str(directory), label_key, f"{name}: labels out of range", "extract the archive again")
    return Dataset(name, split, np.concatenate(xs), y, CLASS_COUNTS[name], str(directory))


# ------------------------------------------------------------------------------------------
# CIFAR10-DVS (pre-framed)
# ------------------------------------------------------------------------------------------
def _load_dvs(name: str, split: str, data_dir: str | None) -> Dataset:
    if not data_dir:
        raise _fail(name, "--data-dir", "needs the directory holding train.npz and test.npz")
    path = Path(data_dir) / f"{split}.npz"
    if not path.is_file():
        raise _fail(name, str(path), "file not found")
    arrays = read_npz(path, str(path), DatasetError, "re-frame the events", keys=("x", "y"),
                      what=f"{name} split: cannot read x and y")  # the workloads' reader and member checks
    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise DatasetError.at(str(path), missing[0], f"{name}: cannot read x and y (no array {missing[0]})",
                              "re-frame the events (train.npz and test.npz hold x and y)")
    x, y = arrays["x"], arrays["y"]
    if x.ndim != 5 or x.shape[2] != 2 or y.ndim != 1 or y.shape[0] != x.shape[0] or 0 in x.shape[1:]:
        raise DatasetError.at(str(path), "x", f"{name}: expected x [N, T, 2, H, W] (T, H and W of at least 1) and "
                              f"y [N], got {x.shape} and {y.shape}", "re-frame the events")
    if y.size and (y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= CLASS_COUNTS[name]):
        bad = y.dtype if y.dtype.kind not in "iu" else (int(y.min()) if y.min() < 0 else int(y.max()))
        raise DatasetError.at(str(path), "y", f"{name}: labels must be integers in 0..{CLASS_COUNTS[name] - 1}, got "
                              f"{bad}", "store the class index of each example")
    frames = (x > 0).astype(np.uint8)
    return Dataset(name, split, frames, y.astype(np.int64), CLASS_COUNTS[name], str(Path(data_dir)))


# ------------------------------------------------------------------------------------------
# image folders (torchvision ImageFolder layout)
# ------------------------------------------------------------------------------------------
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".jfif", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def class_names_shown(names: list[str], among: list[str]) -> str:
    """Class folder names for a message, as their folders show them (``['ñoño']``, with a name that is not UTF-8 as
    ``\\xNN`` escapes, the docs' convention for such bytes). Where two names of ``among`` differ only in their
    Unicode normalisation (NFC against NFD: they look alike), each such name is spelt with escapes so the
    difference shows; every name was spelt so before, which read as bytes that are not UTF-8 (h3, session 47)."""
    import unicodedata

    from satasim_atsn.fileio import text_name

    forms: dict[str, set[str]] = {}
    for name in among:
        forms.setdefault(unicodedata.normalize("NFC", name), set()).add(name)
    look_alike = {name for group in forms.values() if len(group) > 1 for name in group}
    return "[" + ", ".join(ascii(name) if name in look_alike else repr(text_name(name)) for name in names) + "]"


def _class_dirs(split_dir: Path) -> list[Path]:
    if not split_dir.is_dir():
        near = [n for n in ("val", "valid", "validation") if (split_dir.parent / n).is_dir()]
        hint = f" (a {near[0]}/ folder is there: rename it {split_dir.name}/ to use it)" if near else ""
        given = split_dir.parent
        above = next((d for d in given.parents if (d / "train").is_dir() and (d / "test").is_dir()
                      and any(given == d / s or d / s in given.parents for s in ("train", "test"))), None)
        if above is not None and not near:  # --data-dir named a split or a class folder, not the folder above them
            hint = f" (--data-dir is inside the image folder {above}: pass --data-dir {above})"
        raise DatasetError.at(str(split_dir), None, "imagefolder: split folder not found" + hint,
                              "pass --data-dir with train/<class>/*.png|jpg and test/<class>/... (torchvision "
                              "ImageFolder layout)")  # Pillow is there: the folder is read after its import
    classes = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError.at(str(split_dir), None, "imagefolder: no class folders",
                              "put each class's images in a folder of its own (train/<class>/*.png)")
    odd = next((c for c in classes if not _is_utf8(c.name)), None)
    if odd is not None:  # its name (the class name the workload records) would be text no JSON reader takes
        raise DatasetError.at(text_name(split_dir), None, f"imagefolder: the class folder {os.fsencode(odd.name)!r} "
                              "is not named in UTF-8 (class names are recorded as text in the workload and JSON)",
                              "rename it with a UTF-8 name")
    return classes


def _is_utf8(name: str) -> bool:
    """Whether a file name read from the system is valid UTF-8 (Python keeps other bytes as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True




#: Pillow modes read as they are; the others are converted by :func:`_eight_bit`
PLAIN_MODES = ("L", "RGB")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def _eight_bit(img, path: Path, mode_i: dict | None = None):
    """The image as 8-bit grey (``L``) or ``RGB`` by the colour rule of the module docstring; ``mode_i`` keeps the
    first 16-bit or mode-I image's path and mode and the largest value of all of them (see :func:`_check_mode_i`)."""
    from PIL import Image

    if img.mode in PLAIN_MODES:
        return img
    if img.mode in ("1", "LA", "La"):
        return img.convert("L")
    if img.mode in _SIXTEEN_BIT or img.mode == "I":
        values = np.asarray(img).astype(np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise DatasetError.at(str(path), None, f"imagefolder: {img.mode} image with values outside 0..65535",
                                  "save it as an 8-bit grey or RGB image")
        if mode_i is not None and values.size:  # mode I and 16-bit modes alike (Pillow 13 opens 16-bit grey so)
            mode_i.setdefault("first", str(path))
            mode_i.setdefault("mode", img.mode)
            mode_i["max"] = max(mode_i.get("max", 0), int(values.max()))
        return Image.fromarray((values >> 8).astype(np.uint8), mode="L")
    if img.mode == "F":
        raise DatasetError.at(str(path), None, "imagefolder: floating-point image (mode F)",
                              "save it as an 8-bit grey or RGB image")
    try:  # a palette with transparency through RGBA: the same pixels, without Pillow's UserWarning on stderr
        return (img.convert("RGBA") if img.mode == "P" and "transparency" in img.info else img).convert("RGB")
    except ValueError as error:
        raise DatasetError.at(str(path), None, f"imagefolder: cannot read image mode {img.mode} as RGB ({error})",
                              "save it as an 8-bit grey or RGB image") from None


def _check_mode_i(mode_i: dict) -> None:
    """16-bit and mode-I images (32-bit integers, as Pillow opens some 16-bit PNGs) are read as 16-bit; when every
    one of a split holds values in 0..255 they are 8-bit images saved so, and would all read black: refused. One
    dark or black image among 16-bit ones is read as it is."""
    if mode_i.get("first") is not None and mode_i["max"] <= 255:
        raise DatasetError.at(mode_i["first"], None, f"imagefolder: 16-bit grey images (mode {mode_i['mode']}) whose "
                              "values all lie in 0..255 (this one and every other 16-bit image of the split): read "
                              "as 16-bit, as the rule for them has it, they would be black",
                              "save them as 8-bit grey images (mode L), or with their 16-bit values")


def _open_image(path: Path):
    """Image.open, with the warning Pillow gives between its pixel limit and twice it made an error (refused by
    name, as the images beyond twice the limit are)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return Image.open(path)


def _read_image(path: Path, image_size: int | None, mode_i: dict | None = None):
    """One image as uint8 [H, W] or [H, W, 3], with its (converted) mode and size; one-line errors otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        with _open_image(path) as img:
            img.load()
            img = _eight_bit(img, path, mode_i)
            size = img.size  # before the resize: --image-size makes every size one
            if image_size is not None:
                img = img.resize((image_size, image_size), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8), img.mode, size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DatasetError.at(str(path), None, f"imagefolder: image too large to read safely ({error})",
                              "shrink the image, or pass --image-size after resizing it offline") from None
    except PermissionError as error:  # the image may be fine: its permissions are not
        raise DatasetError.at(str(path), None, f"imagefolder: cannot read this file ({error.strerror or 'denied'})",
                              "make it readable, or remove it") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise DatasetError.at(str(path), None, f"imagefolder: not a readable image ({type(error).__name__})",
                              "remove or replace the file") from None


#: how a size error's fix starts; :func:`with_test_split` names the size the workload was trained at in its place
RESIZE_HINT = "pass --image-size S"


def _mode_words(mode: str) -> str:
    return {"L": "grey (L)", "RGB": "colour (RGB)"}.get(mode, mode)


def _check_one_kind(modes: dict, sizes: dict, resized: bool) -> None:
    """Refuse a split of more than one colour mode, or (without --image-size) more than one size, naming the first
    image of the rarest kind: the odd one out, whichever image came first. ``modes`` and ``sizes`` map each kind to
    [count, first path], in reading order."""
    def odd_one(kinds: dict) -> tuple:
        rarest = min(kinds.items(), key=lambda item: item[1][0])  # the first of equally rare kinds
        common = max(kinds.items(), key=lambda item: item[1][0])
        return rarest[1][1], rarest[0], rarest[1][0], common[0], common[1][0]

    if len(modes) > 1:
        path, mode, count, usual, usual_count = odd_one(modes)
        raise DatasetError.at(str(path), None, f"imagefolder: the split mixes colour modes: {count} "
                              f"{_mode_words(mode)} image{'s' if count > 1 else ''} (this the first) and "
                              f"{usual_count} {_mode_words(usual)}", "convert all images to one mode (e.g. RGB)")
    if len(sizes) > 1 and not resized:
        path, size, count, usual, usual_count = odd_one(sizes)
        others = len(sizes) - 2
        more = f", and {others} other size{'s' if others > 1 else ''}" if others else ""
        raise DatasetError.at(str(path), None, f"imagefolder: the split mixes image sizes: {count} of "
                              f"{size[0]}x{size[1]} (this the first) and {usual_count} of {usual[0]}x{usual[1]}{more}",
                              # --image-size alone was offered, which a network of rectangular inputs refuses
                              f"resize or remove the odd image{'s' if count > 1 or others else ''} (most are "
                              f"{usual[0]}x{usual[1]}), or {RESIZE_HINT} to resize every image to S x S")


#: files an operating system writes into folders of pictures (Windows' thumbnail cache and folder settings), skipped
#: like hidden files; macOS's .DS_Store is hidden already
OS_METADATA_FILES = ("thumbs.db", "desktop.ini", "ehthumbs.db")


def _class_files(folder: Path) -> list[Path]:
    """A class folder's files, its subfolders' too, in torchvision's order (``sorted(os.walk(folder))``: by folder
    path string, a folder's own files before its subfolders', then by name); hidden files and folders skipped, a
    broken link or a file that is no regular file (a named pipe) refused."""
    found: list[tuple[str, str]] = []
    above: dict[str, str] = {}  # real path of each folder walked -> the path it was reached by
    def unreadable(error: OSError) -> None:
        raise DatasetError.at(error.filename or str(folder), None,
                              f"imagefolder: cannot read this folder ({error.strerror or type(error).__name__})",
                              "make it readable, or move it out of the class folder")

    for root, dirs, files in os.walk(folder, onerror=unreadable, followlinks=True):
        real = os.path.realpath(root)
        parent = os.path.realpath(os.path.dirname(root))
        # a loop: a link back to this folder or to one above it (two links to one folder are no loop: read twice)
        if root != str(folder) and (parent == real or parent.startswith(real.rstrip(os.sep) + os.sep)):
            raise DatasetError.at(root, None, f"imagefolder: a link loop (this folder is "
                                  f"{above.get(real) or real}, which holds it)",
                                  "remove the link, or point it outside the class folder")
        above[real] = root
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.startswith(".") or name.lower() in OS_METADATA_FILES:
                continue
            path = Path(root) / name
            if not path.exists():
                raise DatasetError.at(str(path), None, "imagefolder: broken link", "remove it or fix its target")
            if not path.is_file():  # a named pipe or a device: reading it would wait for a writer, for ever
                raise DatasetError.at(str(path), None, "imagefolder: not a regular file (a named pipe, socket or "
                                      "device)", "remove it from the class folder")
            found.append((root, name))
    return [Path(root) / name for root, name in sorted(found)]


MAX_IMAGE_SIZE = 4096  # pixels per side; a resize beyond it is a typo (100000 x 100000 is 30 GB per RGB image)


def _check_image_size(image_size: int | None, files: int) -> None:
    """Refuse an --image-size below 1 or beyond MAX_IMAGE_SIZE, or whose RGB images (uint8, and the float32 copy the
    trainer normalises) would not fit in this machine's memory, before the first image is resized."""
    if image_size is None:
        return
    if image_size < 1:  # Pillow's resize would fail on the first image, and the message blame it
        raise DatasetError.at(None, "--image-size", f"must be positive, got {image_size}",
                              "fix the value or leave it out")
    if image_size > MAX_IMAGE_SIZE:
        raise DatasetError.at(None, "--image-size", f"{image_size} is more than {MAX_IMAGE_SIZE} pixels a side",
                              "use a smaller size (CIFAR-10's images are 32)")
    need_bytes = files * 3 * image_size * image_size * (1 + 4)
    try:
        have_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): only the side is bounded
        return
    if need_bytes > have_bytes:
        raise DatasetError.at(None, "--image-size", f"{files} images of {image_size} x {image_size} need about "
                              f"{_bytes_text(need_bytes)}, more than this machine's {_bytes_text(have_bytes)}",
                              "use a smaller size, or fewer images")


def _bytes_text(count_bytes: int) -> str:
    return f"{count_bytes / 2**30:.1f} GiB" if count_bytes >= 2**30 else f"{count_bytes / 2**20:.0f} MiB"


@contextlib.contextmanager
def _no_progress(desc: str, total: int) -> Iterator[Callable[[int], object]]:
    """The progress hook that shows nothing: yields a callback that ignores the images done."""
    yield lambda n: None


def _read_classes(classes: list[Path], listed: list[list[Path]], image_size: int | None, into: tuple,
                  advance: Callable[[int], object]) -> None:
    """Read every listed image in order into ``into`` = (images, labels, modes, sizes, mode_i), calling
    ``advance(1)`` after each; the first empty class, non-image file or unreadable image is refused by name."""
    images, labels, modes, sizes, mode_i = into
    for label, (folder, files) in enumerate(zip(classes, listed, strict=True)):
        if not files:
            raise DatasetError.at(str(folder), None, "imagefolder: empty class folder",
                                  "add images to it or remove the folder from both splits")
        for path in files:
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise DatasetError.at(str(path), None, "imagefolder: not an image file (by its suffix)",
                                      f"remove it; images end in {', '.join(IMAGE_SUFFIXES)}")
            array, mode, size = _read_image(path, image_size, mode_i)
            modes.setdefault(mode, [0, path])[0] += 1
            sizes.setdefault(size, [0, path])[0] += 1
            images.append(array)
            labels.append(label)
            advance(1)


def _load_imagefolder(split: str, data_dir: str | None, image_size: int | None,
                      progress: ProgressHook | None = None) -> Dataset:
    if not data_dir:
        raise _fail("imagefolder", "--data-dir", "needs the directory holding train/ and test/")
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise DatasetError.at("--dataset", None, "imagefolder: needs Pillow, which is not installed",
                              "install it: `pip install 'satasim-atsn[images]'` (in a clone: "
                              "`pip install -e '.[images]'`)") from None
    base = Path(data_dir)
    classes = _class_dirs(base / split)
    other = "test" if split == "train" else "train"
    if (base / other).is_dir():
        names, theirs = [c.name for c in classes], [c.name for c in _class_dirs(base / other)]
        if names != theirs:
            only_here, only_there = sorted(set(names) - set(theirs)), sorted(set(theirs) - set(names))
            where = "; ".join(f"only in {s_}/: {class_names_shown(odd, names + theirs)}"
                              for s_, odd in ((split, only_here), (other, only_there)) if odd)
            raise DatasetError.at(str(base), None, f"imagefolder: train and test class folders differ ({where})",
                                  "give both splits the same class folders")
    listed = [_class_files(folder) for folder in classes]  # once: a second walk took 1.3 s of CIFAR-10's train split
    _check_image_size(image_size, sum(len(files) for files in listed))
    images, labels = [], []
    modes: dict = {}
    sizes: dict = {}
    mode_i: dict = {}
    with (progress or _no_progress)(f"reading {split} images", sum(len(files) for files in listed)) as advance:
        _read_classes(classes, listed, image_size, (images, labels, modes, sizes, mode_i), advance)
    _check_mode_i(mode_i)
    _check_one_kind(modes, sizes, image_size is not None)
    if len(classes) < 2:
        raise DatasetError.at(str(base / split), None, f"imagefolder: one class folder ({classes[0].name!r}); a "
                              "classifier needs at least two", "add a folder for each other class")
    x = np.stack(images)
    x = x[:, None, :, :] if x.ndim == 3 else np.transpose(x, (0, 3, 1, 2))
    names = tuple(c.name for c in classes)
    return Dataset("imagefolder", split, np.ascontiguousarray(x, dtype=np.uint8), np.asarray(labels, dtype=np.int64),
                   len(names), text_name(base.resolve().name), names)  # resolved: a/.. names a's parent folder


# ------------------------------------------------------------------------------------------
# synthetic
# ------------------------------------------------------------------------------------------
def synthetic(split: str = "train", n: int | None = None, num_classes: int = 4,
              shape: tuple[int, int, int] = (1, 12, 12), seed: int = 0) -> Dataset:
    """A small learnable dataset: each class is a fixed random template plus noise (deterministic)."""
    n = n if n is not None else (512 if split == "train" else 128)
    templates = np.random.default_rng(seed).random((num_classes,) + tuple(shape))
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    y = rng.integers(0, num_classes, size=n)
    x = 0.7 * templates[y] + 0.3 * rng.random((n,) + tuple(shape))
    return Dataset("synthetic", split, (x * 255).astype(np.uint8), y.astype(np.int64), num_classes, "<synthetic>")


def dataset_inputs(name: str, data_dir: str | None) -> list[Path]:
    """The files a dataset's loader may read from ``data_dir`` (or its default directory): no output may replace
    one of them (``-o DIR/test.npz`` would overwrite the cifar10-dvs test split with the workload). Image folders
    are guarded as whole ``train/`` and ``test/`` folders, not file by file; the synthetic set reads nothing."""
    if name in ("fashion-mnist", "mnist"):
        found = []
        for d in [data_dir] if data_dir else list(DEFAULT_DIRS[name]):
            for prefix in ("train", "t10k"):
                for kind in ("images-idx3", "labels-idx1"):
                    stem = f"{prefix}-{kind}-ubyte"
                    found += [Path(d) / f"{stem}.gz", Path(d) / stem, Path(d) / stem.replace("-idx", ".idx")]
        return found
    if not data_dir:
        return []
    if name in ("cifar10", "cifar100"):
        sub = CIFAR_FOLDERS[name]
        files = ([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"] if name == "cifar10"
                 else ["train", "test", "meta"])
        return [folder / f for folder in (Path(data_dir), Path(data_dir) / sub) for f in files]
    if name == "cifar10-dvs":
        return [Path(data_dir) / "train.npz", Path(data_dir) / "test.npz"]
    return []


def load_dataset(name: str, split: str = "train", data_dir: str | None = None,
                 image_size: int | None = None, progress: ProgressHook | None = None) -> Dataset:
    """Load one split (``train`` or ``test``) of a named dataset; DatasetError if missing or corrupt.

    ``progress`` shows the images of an image folder being read (see :data:`ProgressHook`); the other datasets are
    read from a few files."""
    if name not in DATASETS:
        raise DatasetError.at(None, "--dataset", f"unknown dataset {name!r}", f"use one of {', '.join(DATASETS)}")
    if split not in ("train", "test"):
        raise DatasetError.at(None, "split", f"unknown split {split!r}", "use train or test")
    if name in ("fashion-mnist", "mnist", "cifar10", "cifar100", "cifar10-dvs"):
        loader = {"cifar10": _load_cifar, "cifar100": _load_cifar, "cifar10-dvs": _load_dvs}.get(name,
                                                                                                  _load_idx_dataset)
        data = loader(name, split, data_dir)
        # the trainer's statistics and evaluation divide by the count (an image folder refuses an empty class)
        if len(data) == 0:
            raise DatasetError.at(data.source, None, f"{name}: the {split} split holds no examples",
                                  "replace its files with the dataset's (a split needs at least one example)")
        return data
    if name == "imagefolder":
        return _load_imagefolder(split, data_dir, image_size, progress)
    return synthetic(split)


def balanced_sample(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Indices of a seeded, class-balanced sample of ``count`` examples (never simply the first N), in the order
    drawn: classes take turns (in a seeded order) drawing a seeded random member, so every class gets
    count // classes examples, the remainder goes to the first classes of that order, and every prefix is as
    balanced as its length allows. A smaller count draws the start of a larger one (a workload's first N embedded
    images are its --eval-images N sample; sorted, an image folder's would be its first classes only).
    """
    labels = np.asarray(labels)
    count = min(int(count), labels.shape[0])
    rng = np.random.default_rng([seed, 11])
    classes = np.unique(labels)
    pools = {int(c): list(rng.permutation(np.flatnonzero(labels == c))) for c in classes}
    order = [int(c) for c in rng.permutation(classes)]
    chosen: list[int] = []
    while len(chosen) < count:
        for c in order:
            if pools[c] and len(chosen) < count:
                chosen.append(int(pools[c].pop()))
    return np.asarray(chosen, dtype=np.int64)


def cross_dataset_note(workload: Workload, dataset: str) -> str | None:
    """A note when a workload trained on an image folder is scored on a named dataset, or the reverse: only image
    folders have class names, so class i of one is taken to be class i of the other, unchecked."""
    trained_on = workload.meta.get("dataset")
    if trained_on not in DATASETS or trained_on == dataset or "imagefolder" not in (trained_on, dataset):
        return None
    return (f"note: the workload was trained on {trained_on} and is scored on {dataset}: class i of one is taken to "
            "be class i of the other (only image folders have class names, so this is not checked)")


def refuse_a_square_resize(where: str, shape: list[int], image_size: int | None) -> None:
    """--image-size S makes S x S images: refuse it for a workload whose images are not square, naming its size."""
    if image_size is None or len(shape) != 3 or shape[1] == shape[2] or image_size < 1:
        return
    height, width = shape[1], shape[2]
    raise DatasetError.at(where, "--image-size", f"{image_size} resizes every image to {image_size} x {image_size}, "
                          f"and the workload reads {width} x {height} images (width x height; input {shape}), "
                          "which no square size gives",
                          f"drop --image-size and give an image folder of {width} x {height} images")


def with_test_split(workload: Workload, dataset: str, data_dir: str | None, image_size: int | None = None,
                    progress: ProgressHook | None = None) -> Workload:
    """The workload with a dataset's whole test split as its inputs (accuracy on the full test set); ``progress``
    as for :func:`load_dataset`."""
    trained_on = workload.meta.get("dataset")
    if dataset not in DATASETS:  # first: '' or a misspelling was worded as a dataset the workload was not trained on
        raise DatasetError.at(None, "--dataset", f"unknown dataset {shown(dataset)}",
                              f"pass --dataset {trained_on} (the workload was trained on it)" if trained_on in DATASETS
                              else did_you_mean(dataset, DATASETS, "use one of"))
    crossing = trained_on in DATASETS and trained_on != dataset
    # an image folder may hold a named dataset (CIFAR-10's JPEGs), but the synthetic one is no other dataset
    if crossing and ("imagefolder" not in (trained_on, dataset) or "synthetic" in (trained_on, dataset)):
        raise DatasetError.at(workload.source, "--dataset", f"the workload was trained on {trained_on}, not "
                              f"{dataset}: its outputs would be scored against another dataset's labels",
                              f"pass --dataset {trained_on}")
    provenance = workload.meta.get("provenance") or {}  # free-form: a user's file may hold anything under these names
    config = provenance.get("config")
    trained_size = config.get("image_size") if isinstance(config, dict) else None
    if not isinstance(trained_size, int) or isinstance(trained_size, bool) or trained_size < 1:
        trained_size = None
    if image_size is not None:
        refuse_a_square_resize(workload.source, list(workload.input_shape), image_size)
    try:
        test = load_dataset(dataset, "test", data_dir, image_size, progress)
    except DatasetError as error:
        text = str(error)
        if image_size is None and trained_size and f"{RESIZE_HINT} to resize every image to S x S" in text:
            raise DatasetError(text.replace(f"{RESIZE_HINT} to resize every image to S x S", f"pass --image-size "
                                            f"{trained_size} (the size the workload was trained at) to resize every "
                                            f"image to {trained_size} x {trained_size}")) from None
        raise
    if (workload.input_encoding != "direct") != bool(test.framed):
        kind = "spike frames" if test.framed else "images"
        raise DatasetError.at(workload.source, "--dataset", f"{dataset} gives {kind}, and the workload reads "
                              f"{'images' if workload.input_encoding == 'direct' else 'spike frames'}",
                              "pick the dataset the workload was trained on")
    if test.framed:
        if test.x.shape[1] != workload.timesteps or list(test.x.shape[2:]) != list(workload.input_shape):
            raise DatasetError.at(workload.source, "--dataset", f"the {dataset} test split has frames "
                                  f"[T={test.x.shape[1]}, {', '.join(map(str, test.x.shape[2:]))}], the workload "
                                  f"reads [T={workload.timesteps}, {', '.join(map(str, workload.input_shape))}]",
                                  "frame the events as the workload was trained (its T and size)")
        if test.num_classes != workload.num_classes:
            raise DatasetError.at(workload.source, "--dataset", f"the {dataset} test split has {test.num_classes} "
                                  f"classes, the workload {workload.num_classes}",
                                  "pick the dataset the workload was trained on")
    elif list(test.input_shape) != list(workload.input_shape) or test.num_classes != workload.num_classes:
        want = list(workload.input_shape)
        size_only = (test.num_classes == workload.num_classes and len(want) == 3
                     and list(test.input_shape)[0] == want[0])  # the classes and colour mode agree
        resize = dataset == "imagefolder" and size_only and want[1] == want[2]
        raise DatasetError.at(workload.source, "--dataset", f"the {dataset} test split has images "
                              f"{test.input_shape} and {test.num_classes} classes, the workload expects "
                              f"{want} and {workload.num_classes}",
                              f"resize them with --image-size {trained_size or want[1]}" if resize else
                              # a rectangle: --image-size makes squares (the fix named classes and colour mode,
                              # which agreed; h3, session 47)
                              f"give images of {want[1]} x {want[2]} (height x width; --image-size makes squares "
                              "only)" if size_only else
                              "pick the dataset the workload was trained on (its classes, and its colour mode: "
                              f"{want[0]} channel{'s' if want[0] != 1 else ''})" if len(want) == 3 else
                              "pick the dataset the workload was trained on")
    trained_names = provenance.get("class_names")
    if not (isinstance(trained_names, list) and all(isinstance(n, str) for n in trained_names)
            and len(trained_names) == len(test.class_names)):  # written by `satasim train` on an image folder
        trained_names = []
    if trained_names and test.class_names and list(test.class_names) != trained_names:
        differ = next(i for i, (a, b) in enumerate(zip(trained_names, test.class_names, strict=True)) if a != b)
        pair = [test.class_names[differ], trained_names[differ]]
        shown_pair = [class_names_shown([name], pair)[1:-1] for name in pair]  # each alone, without the brackets
        raise DatasetError.at(workload.source, "--data-dir", f"the test split's class {differ} is "
                              f"{shown_pair[0]}, the workload's is {shown_pair[1]} "
                              "(class names are sorted folder names): the labels would not mean what the network "
                              "learnt",
                              "point --data-dir at a dataset with the class folders the workload was trained on")
    x = np.packbits(np.ascontiguousarray(test.x, dtype=np.uint8), axis=-1) if test.framed else test.x  # as stored
    return Workload(dict(workload.meta), dict(workload.arrays, x=x, y=test.y), workload.source)
