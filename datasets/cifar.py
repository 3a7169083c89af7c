"""CIFAR-10 (Krizhevsky, 2009): 60,000 32x32 colour images in ten classes, downloaded on request.

The published archive `cifar-10-python.tar.gz` (the Python version, 163 MiB) comes from the
University of Toronto page, or from the mirror named by the environment variable
RECIPES_DATA_ORIGIN (a base URL, as for `datasets.remote`); it is checked against its sha256 hash and
cached, still packed, under the Keras home ($KERAS_HOME, else ~/.keras) in `datasets/`. The batches
are read straight from the archive with an unpickler that only rebuilds NumPy arrays. Any failure
becomes a `DatasetUnavailable` whose one-line message names the embedded alternative.

    from datasets.cifar import load_cifar10
    images, labels = load_cifar10("test")   # uint8 (10000, 32, 32, 3), int64 (10000,)
"""

import os
import pickle
import tarfile

import numpy as np

from datasets import remote
from datasets.remote import DatasetUnavailable, _short

ORIGIN = "https://www.cs.toronto.edu/~kriz/"
ARCHIVE = "cifar-10-python.tar.gz"
# The sha256 that keras.datasets.cifar10 checks for the same archive.
SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
FOLDER = "cifar-10-batches-py"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

FALLBACK = "Use the embedded digits instead: --dataset digits"


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds the NumPy arrays, lists and bytes of a CIFAR batch and refuses any other global."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR batch")


def fetch():
    """Downloads (or finds in the Keras cache) the CIFAR-10 archive; returns its path."""
    return remote.fetch("cifar10", ARCHIVE, default_origin=ORIGIN, file_hash=SHA256, fallback=FALLBACK)


def _read(path, mtime, split):
    """The images (N, 32, 32, 3) and labels (N,) of `split`, read from the archive at `path`."""
    images, labels = [], []
    with tarfile.open(path, "r:*") as archive:
        for name in BATCHES[split]:
            member = archive.extractfile(f"{FOLDER}/{name}")
            if member is None:
                raise ValueError(f"{FOLDER}/{name} is not a file")
            batch = _ArrayUnpickler(member, encoding="bytes").load()
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            images.append(data.reshape(len(data), 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    images, labels = np.concatenate(images), np.concatenate(labels)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    return images, labels


def load_cifar10(split="train"):
    """CIFAR-10: uint8 (N, 32, 32, 3) in 0..255 and int64 (N,) in 0..9 (names in `CLASSES`);
    50,000 train or 10,000 test images."""
    if split not in BATCHES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    path = fetch()
    try:
        images, labels = _read(path, os.path.getmtime(path), split)
    except Exception as e:
        message = f"could not read cifar10 from {path}: {_short(e)}. {FALLBACK}"
        raise DatasetUnavailable(message) from None
    return images.copy(), labels.copy()
