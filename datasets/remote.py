"""Downloaded data sets (MNIST, Fashion-MNIST), fetched with `keras.utils.get_file`.

Files come from keras' public bucket, or from the mirror named by the environment variable
RECIPES_DATA_ORIGIN, are checked against their sha256 hashes and cached under the Keras home
($KERAS_HOME, else ~/.keras) in the same places `keras.datasets` uses. Any failure becomes a
`DatasetUnavailable` whose one-line message names the embedded alternative.
"""

import gzip
import os

import numpy as np

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"

# keras/src/datasets/mnist.py has the mnist hash; keras' fashion_mnist.py checks no hashes, so
# these are the published sha256 sums of the original Zalando files (which keras mirrors).
SHA256 = {
    "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",  # noqa: E501
    "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",  # noqa: E501
    "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
    "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
}

FALLBACK = "Use the embedded real MNIST digits instead: --dataset mnist5k"


class DatasetUnavailable(Exception):
    """A data set that cannot be had; str() is one line naming what failed and the alternative."""


def _short(error, limit=160):
    """One line of at most `limit` characters describing `error`."""
    text = " ".join(str(error).split()).rstrip(".") or type(error).__name__
    if text.startswith("URL fetch failure on "):
        text = text.split(": ", 1)[-1].removeprefix("None -- ")  # Our message names the URL.
    return text if len(text) <= limit else text[: limit - 3] + "..."


def origin(default=ORIGIN):
    """The download base URL: $RECIPES_DATA_ORIGIN if set, else `default` (keras' public bucket)."""
    return os.environ.get("RECIPES_DATA_ORIGIN", default).rstrip("/") + "/"


def fetch(
    name,
    fname,
    cache_subdir="datasets",
    *,
    default_origin=ORIGIN,
    path=None,
    file_hash=None,
    fallback=FALLBACK,
):
    """Downloads (or finds in the Keras cache) `fname` for data set `name`; returns its path.

    The URL is `origin(default_origin) + path` (`path` defaults to `fname`), checked against
    `file_hash` (default: this module's table; a file in neither is not checked, so its loader
    checks it itself). Any failure is one `DatasetUnavailable` line that
    ends with `fallback`, the embedded alternative.
    """
    from keras.utils import get_file

    url = origin(default_origin) + (path or fname)
    cache_dir = os.environ.get("KERAS_HOME")  # Keras itself reads it only at import time.
    try:
        if cache_dir:  # get_file falls back to /tmp/.keras when the folder does not exist yet.
            os.makedirs(cache_dir, exist_ok=True)
        return get_file(
            fname,
            url,
            file_hash=file_hash or SHA256.get(fname),
            cache_subdir=cache_subdir,
            cache_dir=cache_dir,
        )
    except Exception as e:  # URLError, Exception("URL fetch failure ..."), OSError, ValueError.
        if isinstance(e, ValueError) and "hash" in str(e):
            reason = ": the download is corrupt (sha256 hash mismatch)"
        else:
            reason = f" (no network?): {_short(e)}"
        raise DatasetUnavailable(f"could not download {name} from {url}{reason}. {fallback}") from None


def _check_split(split):
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")


def load_mnist(split="train"):
    """MNIST: uint8 (N, 28, 28, 1) and int64 (N,); 60,000 train or 10,000 test images."""
    _check_split(split)
    path = fetch("mnist", "mnist.npz")
    try:
        with np.load(path, allow_pickle=False) as f:
            images, labels = f[f"x_{split}"], f[f"y_{split}"]
    except Exception as e:
        raise DatasetUnavailable(f"could not read mnist from {path}: {_short(e)}. {FALLBACK}") from None
    return images.astype(np.uint8)[..., None], labels.astype(np.int64)


def load_fashion_mnist(split="train"):
    """Fashion-MNIST: uint8 (N, 28, 28, 1) and int64 (N,); 60,000 train or 10,000 test images."""
    _check_split(split)
    prefix = "train" if split == "train" else "t10k"
    paths = [
        fetch("fashion_mnist", f"{prefix}-{kind}.gz", cache_subdir="datasets/fashion-mnist")
        for kind in ("labels-idx1-ubyte", "images-idx3-ubyte")
    ]
    try:
        with gzip.open(paths[0], "rb") as f:
            labels = np.frombuffer(f.read(), np.uint8, offset=8)
        with gzip.open(paths[1], "rb") as f:
            images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(len(labels), 28, 28)
    except Exception as e:
        raise DatasetUnavailable(
            f"could not read fashion_mnist from {paths[1]}: {_short(e)}. {FALLBACK}"
        ) from None
    return images[..., None].copy(), labels.astype(np.int64)
