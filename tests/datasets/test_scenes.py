"""datasets.scenes: generated scenes whose masks and boxes describe exactly the shapes drawn."""

import numpy as np
import pytest

from datasets.scenes import CLASSES, make_scenes
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "jax", reason="NumPy only: once, not once per backend")


def test_masks_and_boxes_agree_and_the_data_are_seeded():
    scenes = make_scenes(200, seed=3, size=48)
    assert scenes.images.shape == (200, 48, 48, 3) and scenes.images.dtype == np.float32
    assert 0 <= scenes.images.min() and scenes.images.max() <= 1
    assert CLASSES == ("background", "circle", "square", "triangle")
    counts = [len(b) for b in scenes.boxes]
    assert min(counts) >= 1 and max(counts) == 3
    assert set(np.unique(scenes.masks)) == {0, 1, 2, 3}
    for mask, boxes, labels in zip(scenes.masks, scenes.boxes, scenes.labels):
        covered = np.zeros_like(mask, bool)
        for (y0, x0, y1, x1), label in zip(boxes.astype(int), labels):
            inside = mask[y0:y1, x0:x1] == label
            # tight: the object touches all four sides of its box
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
            assert not covered[y0:y1, x0:x1].any()  # boxes do not overlap
            covered[y0:y1, x0:x1] = True
        assert np.array_equal(mask > 0, (mask > 0) & covered)  # every labelled pixel is in a box
    again = make_scenes(200, seed=3, size=48)
    np.testing.assert_array_equal(again.images, scenes.images)
    assert not np.array_equal(make_scenes(5, seed=4, size=48).masks, scenes.masks[:5])
