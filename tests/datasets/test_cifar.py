"""datasets.cifar: a planted archive of the real format through a file:// origin, the cache, a
corrupt copy and no network."""

import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest

import datasets.cifar as cifar
from datasets import DatasetUnavailable

# ---------------------------------------------------------------------------------------------------
# datasets.cifar


def plant_archive(folder, per_batch=3):
    """A tiny cifar-10-python.tar.gz of the real layout: pickled dicts with b"data" (N, 3072) uint8
    rows (1024 red, 1024 green, 1024 blue values, each row-major) and b"labels"."""
    rng = np.random.default_rng(0)
    batches = {}
    with tarfile.open(folder / cifar.ARCHIVE, "w:gz") as archive:
        for name in cifar.BATCHES["train"] + cifar.BATCHES["test"] + ["batches.meta"]:
            if name == "batches.meta":
                content = {b"label_names": [c.encode() for c in cifar.CLASSES]}
            else:
                data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
                labels = rng.integers(0, 10, per_batch).tolist()
                batches[name] = (data, labels)
                content = {b"batch_label": name.encode(), b"labels": labels, b"data": data}
            payload = pickle.dumps(content, protocol=2)
            info = tarfile.TarInfo(f"{cifar.FOLDER}/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    digest = hashlib.sha256((folder / cifar.ARCHIVE).read_bytes()).hexdigest()
    return batches, digest


def test_cifar10_download_through_a_local_origin(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    batches, digest = plant_archive(mirror)
    monkeypatch.setattr(cifar, "SHA256", digest)
    monkeypatch.setenv("RECIPES_DATA_ORIGIN", mirror.as_uri())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    images, labels = cifar.load_cifar10("test")
    data, want = batches["test_batch"]
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8 and labels.dtype == np.int64
    assert labels.tolist() == want
    # Pixel (row 0, column 1) of image 2: values 1, 1025 and 2049 of its row.
    assert images[2, 0, 1].tolist() == [data[2, 1], data[2, 1025], data[2, 2049]]
    np.testing.assert_array_equal(images[1, ..., 2].ravel(), data[1, 2048:])
    train, train_labels = cifar.load_cifar10("train")
    assert train.shape == (15, 32, 32, 3)
    assert train_labels.tolist() == sum((batches[n][1] for n in cifar.BATCHES["train"]), [])
    assert (tmp_path / "keras" / "datasets" / cifar.ARCHIVE).exists()
    # Cached: the mirror may go away.
    monkeypatch.setenv("RECIPES_DATA_ORIGIN", "http://127.0.0.1:9/")
    np.testing.assert_array_equal(cifar.load_cifar10("test")[0], images)
    with pytest.raises(ValueError, match="split must be"):
        cifar.load_cifar10("validation")


def test_cifar10_corrupt_download_and_offline(tmp_path, monkeypatch, no_network):
    with pytest.raises(DatasetUnavailable, match="--dataset digits") as offline:
        cifar.load_cifar10("train")
    assert "\n" not in str(offline.value) and "cifar10" in str(offline.value)
    # A mirror whose archive does not match the published hash.
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    plant_archive(mirror)
    monkeypatch.setenv("RECIPES_DATA_ORIGIN", mirror.as_uri())
    with pytest.raises(DatasetUnavailable, match="sha256 hash mismatch"):
        cifar.load_cifar10("test")
