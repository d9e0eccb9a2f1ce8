"""What a user sees while an image folder loads: a bar over the images read (terminal only, not with --quiet), and
each class folder listed once (CIFAR-10's 60,000 JPEGs read for about 20 s before the first epoch, silently)."""

from __future__ import annotations

import io

import numpy as np
import pytest

from satasim_atsn.train.config import TrainConfig
from satasim_atsn.train.trainer import prepare_data, train_model
from satasim_atsn.train.training_progress import Progress
from satasim_atsn.workload import datasets
from satasim_atsn.workload.datasets import load_dataset

Image = pytest.importorskip("PIL.Image")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _tree(root, per_class=(5, 3), classes=("a", "b")) -> None:
    rng = np.random.default_rng(1)
    for split, count in zip(("train", "test"), per_class, strict=True):
        for cls in classes:
            (root / split / cls).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L").save(root / split / cls / f"{i}.png")


def _cfg(root) -> TrainConfig:
    return TrainConfig(dataset="imagefolder", data_dir=str(root), epochs=1, batch_size=4, width=0.25, timesteps=2,
                       test_images=2, augment=False)


def test_a_terminal_shows_the_images_being_read(tmp_path):
    _tree(tmp_path)
    stream = _Terminal()
    prepare_data(_cfg(tmp_path), Progress(False, stream))
    text = stream.getvalue()
    assert "reading train images:   0%" in text and "0/10 [" in text  # the total, before the first image
    assert "reading test images:   0%" in text and "0/6 [" in text


@pytest.mark.parametrize("quiet, stream", [(True, _Terminal), (False, io.StringIO)])
def test_quiet_or_piped_reading_prints_nothing(tmp_path, quiet, stream):
    _tree(tmp_path)
    out = stream()
    train_model(_cfg(tmp_path), tmp_path / "w.npz", quiet=quiet, stream=out)
    assert "images:" not in out.getvalue()  # neither "reading train images:" nor "reading test images:"


def test_the_bar_does_not_change_what_is_read(tmp_path):
    _tree(tmp_path)
    plain = prepare_data(_cfg(tmp_path))
    shown = prepare_data(_cfg(tmp_path), Progress(False, _Terminal()))
    for a, b in zip(plain, shown, strict=True):
        assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)


def test_each_class_folder_is_listed_once(tmp_path, monkeypatch):
    """The image count for --image-size's memory check walked every class folder a second time (1.3 s of
    CIFAR-10's train split)."""
    _tree(tmp_path)
    walked = []
    real = datasets._class_files

    def counting(folder):
        walked.append(folder.name)
        return real(folder)

    monkeypatch.setattr(datasets, "_class_files", counting)
    assert len(load_dataset("imagefolder", "train", str(tmp_path))) == 10
    assert walked == ["a", "b"]
