"""scikit-learn's bundled 8x8 handwritten digits, made MNIST-shaped.

The 1,797 images ship with scikit-learn, so no network is needed. Each 8x8 image (values 0..16) is
upsampled to 20x20 and centred in a 28x28 frame, the way MNIST centres its 20x20 digit boxes.
"""

import functools

import numpy as np
from PIL import Image


@functools.lru_cache(maxsize=1)
def _digits28():
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.zeros((len(bunch.images), 28, 28), dtype=np.uint8)
    for i, image in enumerate(bunch.images):
        small = Image.fromarray((image * (255.0 / 16.0)).astype(np.float32), mode="F")
        box = np.asarray(small.resize((20, 20), Image.BICUBIC))
        images[i, 4:24, 4:24] = np.clip(np.rint(box), 0, 255).astype(np.uint8)
    return images[..., None], bunch.target.astype(np.int64)


def load_digits28():
    """Returns (images, labels): uint8 (1797, 28, 28, 1) in 0..255 and int64 (1797,) in 0..9."""
    images, labels = _digits28()
    return images.copy(), labels.copy()
