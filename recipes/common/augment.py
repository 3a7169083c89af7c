"""Data augmentation in NumPy, outside the models (the same on every backend, reproducible from a
seeded generator): random integer shifts of images with empty borders."""

import numpy as np


def shift_images(images, rng, max_shift=2):
    """Every image of `images` (N, H, W, C) moved by its own random (dy, dx), each drawn from
    [-max_shift, max_shift] by `rng` (a NumPy Generator); pixels moved in from outside are 0."""
    shifted = np.zeros_like(images)
    h, w = images.shape[1:3]
    for i, (dy, dx) in enumerate(rng.integers(-max_shift, max_shift + 1, size=(len(images), 2))):
        shifted[i, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
            i, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
        ]
    return shifted
