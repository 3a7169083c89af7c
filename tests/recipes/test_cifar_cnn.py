"""The CIFAR CNN of seeds/000 5.2 (shapes and parameter counts of the notes, a --quick run) and
datasets.cifar (a planted archive of the real format through a file:// origin)."""

import hashlib
import io
import json
import pickle
import tarfile

import keras
import numpy as np
import pytest

import datasets.cifar as cifar
from datasets import DatasetUnavailable, load_digits28
from recipes import cifar_cnn, classic_cnns
from recipes.common import cli, image_classification


@pytest.mark.parametrize("batch_norm", [False, True])
def test_shapes_and_parameter_counts_of_the_notes(batch_norm):
    with classic_cnns.without_weights():
        model = cifar_cnn.build_model(batch_norm)
    assert cifar_cnn.feature_shapes(model) == cifar_cnn.SHAPES
    assert model.output.shape == (None, 10)
    counts = image_classification.parameter_counts(model)
    # notes 000a 5.2: mode 1 3,445,034; mode 2 3,449,130 = 3,447,082 trainable + 2,048 statistics.
    expected = (3_447_082, 2_048) if batch_norm else (3_445_034, 0)
    assert (counts["trainable"], counts["non_trainable"]) == expected
    assert counts["total"] == cifar_cnn.PARAMS[batch_norm]


def test_digits_are_padded_to_32x32x3_and_split_once():
    images, _ = load_digits28()
    x = image_classification.fit_images(images[:5], 32, 3)
    assert x.shape == (5, 32, 32, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 2:30, 2:30, 1], images[:5, ..., 0] / np.float32(255))
    assert x[:, :2].max() == 0 and x[:, 30:].max() == 0 and np.all(x[..., 0] == x[..., 2])
    assert image_classification.fit_images(images[:2], 67, 3).shape == (2, 67, 67, 3)
    (train, y), (held_out, y_held_out) = image_classification.load_split("digits")
    assert (len(train), len(held_out)) == (1438, 359)
    again = image_classification.load_split("digits")[1]
    np.testing.assert_array_equal(again[0], held_out)
    assert set(np.unique(y_held_out)) == set(range(10))
    # No held-out digit is among the training digits.
    seen = {t.tobytes() for t in train}
    assert sum(h.tobytes() in seen for h in held_out) <= 2  # sklearn's set has a few duplicates.


def test_quick_run_writes_its_outputs(tmp_path):
    out = tmp_path / "run"
    assert cifar_cnn.main(["--quick", "--batch-norm", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == 2 and summary["parameters"]["total"] == 3_449_130
    assert summary["feature_shapes"]["pool3_3"] == [4, 4, 128]
    assert summary["train_images"] == 64 and 0 <= summary["held_out_accuracy"] <= 1
    assert (out / "checkpoints" / "last.keras").exists() and (out / "curves.png").exists()
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].split(",")[:2] == ["epoch", "accuracy"] and len(rows) == 2
    assert keras.saving.load_model(out / "model.keras").count_params() == 3_449_130


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


def test_cifar10_corrupt_download_and_offline(tmp_path, monkeypatch, no_network, capsys):
    with pytest.raises(DatasetUnavailable, match="--dataset digits") as offline:
        cifar.load_cifar10("train")
    assert "\n" not in str(offline.value) and "cifar10" in str(offline.value)
    # The recipe: one line, exit code 2.
    assert cli.run(cifar_cnn.main, ["--dataset", "cifar10", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not download cifar10" in err[0] and "--dataset digits" in err[0]
    # A mirror whose archive does not match the published hash.
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    plant_archive(mirror)
    monkeypatch.setenv("RECIPES_DATA_ORIGIN", mirror.as_uri())
    with pytest.raises(DatasetUnavailable, match="sha256 hash mismatch"):
        cifar.load_cifar10("test")
