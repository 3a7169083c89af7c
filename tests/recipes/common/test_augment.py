"""recipes.common.augment: random shifts move the image and fill with zeros."""

import numpy as np
import pytest

from recipes.common import augment
from tests.conftest import BACKEND


class FixedShift:
    """A stand-in generator whose every draw is (dy, dx) = (1, -2)."""

    def integers(self, low, high, size):
        assert (low, high) == (-3, 4)
        return np.tile([1, -2], (size[0], 1))


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_shift_moves_the_image_and_fills_with_zeros():
    images = np.zeros((2, 5, 5, 1), "float32")
    images[:, 2, 2, 0] = 1.0
    images[1, 0, 4, 0] = 5.0  # moved to (1, 2)
    shifted = augment.shift_images(images, FixedShift(), max_shift=3)
    assert shifted[0, 3, 0, 0] == 1.0 and shifted[0].sum() == 1.0
    assert shifted[1, 1, 2, 0] == 5.0 and shifted[1].sum() == 6.0


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_shifts_stay_within_the_bound_and_are_reproducible():
    images = np.random.default_rng(0).random((50, 8, 8, 1)).astype("float32")
    a = augment.shift_images(images, np.random.default_rng(1))
    b = augment.shift_images(images, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    # With shifts of at most 2 the centre 4x4 of every image comes from inside the original.
    assert not np.array_equal(a, images) and np.all(a[:, 2:6, 2:6] > 0)
