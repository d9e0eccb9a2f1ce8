"""The training's random crop and flip: tiny images keep most of their pixels; images of 8 px and more are cropped
as they always were (the shipped workloads' 28 x 28 and 32 x 32 trainings keep their bytes)."""

from __future__ import annotations

import numpy as np
import pytest

from satasim_atsn.train.trainer import augment


def _augment_before(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The crop and flip as they were up to session 32: padding 2 for <= 28 px high, 4 above, whatever the width."""
    n, c, h, w = x.shape
    pad = 2 if h <= 28 else 4
    padded = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=x.dtype)
    padded[:, :, pad:pad + h, pad:pad + w] = x
    dy = rng.integers(0, 2 * pad + 1, size=n)
    dx = rng.integers(0, 2 * pad + 1, size=n)
    flip = rng.random(n) < 0.5
    out = np.empty_like(x)
    for i in range(n):
        img = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = img[:, :, ::-1] if flip[i] else img
    return out


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 28, 28), (1, 28, 28), (3, 32, 32), (3, 8, 40), (1, 29, 12)])
def test_images_of_8_px_and_more_are_cropped_as_before(shape):
    x = np.random.default_rng(4).integers(0, 256, (200, *shape), dtype=np.uint8)
    new_rng, old_rng = np.random.default_rng([0, 1000]), np.random.default_rng([0, 1000])
    assert np.array_equal(augment(x, new_rng), _augment_before(x, old_rng))
    assert new_rng.bit_generator.state == old_rng.bit_generator.state  # the next batch's draws too


@pytest.mark.parametrize("side, kept", [(1, 1), (2, 4), (3, 9), (4, 9), (7, 36), (5, 16)])
def test_a_tiny_image_keeps_most_of_its_pixels(side, kept):
    """Padded 2, a 1 x 1 image kept its pixel in 1 crop of 25 (the default augmentation erased such images) and a
    4 x 4 one could keep 4 of its 16."""
    x = np.full((500, 1, side, side), 255, dtype=np.uint8)
    out = augment(x, np.random.default_rng(0))
    assert (out == 255).sum(axis=(1, 2, 3)).min() == kept  # at most one row and column lost (none below 4 px)


def test_a_narrow_image_is_padded_by_its_smaller_side():
    x = np.full((300, 1, 32, 2), 255, dtype=np.uint8)  # padded 4 by its height, its 2 columns were mostly gone
    assert np.array_equal(augment(x, np.random.default_rng(0)), x)
