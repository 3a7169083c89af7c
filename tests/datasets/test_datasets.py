"""Tests for the datasets package: embedded sets, folders, helpers, downloads without network."""

import gzip
import hashlib
import os

import numpy as np
import pytest
from PIL import Image

import datasets
from datasets import DatasetUnavailable, fit_images, load_images, remote, to_float
from tests.conftest import BACKEND


def test_digits():
    images, labels = load_images("digits", split="test")
    assert images.shape == (1797, 28, 28, 1) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.max() == 255 and images.min() == 0
    assert images[:, :4].max() == 0 and images[:, 24:].max() == 0  # Centred 20x20 box.
    assert set(np.unique(labels)) == set(range(10))
    reference, reference_labels = datasets.load_digits28()
    np.testing.assert_array_equal(images, reference)
    np.testing.assert_array_equal(labels, reference_labels)
    few, few_labels = load_images("digits", limit=10)
    assert few.shape == (10, 28, 28, 1)
    np.testing.assert_array_equal(few_labels, reference_labels[:10])


def test_photos_shape_and_determinism():
    images, labels = load_images("photos")
    assert labels is None
    assert images.shape == (2000, 64, 64, 3) and images.dtype == np.uint8
    assert 60 < images.mean() < 200 and images.std() > 20
    assert len({images[i].tobytes() for i in range(100)}) == 100  # Distinct crops.
    again, _ = load_images("photos", limit=5)
    np.testing.assert_array_equal(again, images[:5])
    images[0] = 0  # Callers get a copy, not the cache.
    assert load_images("photos", limit=1)[0].max() > 0


def _write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_folder_crop_resize_gray_and_nested(tmp_path):
    frame = np.zeros((40, 30, 3), np.uint8)
    frame[10:30, 5:25] = (200, 100, 50)  # A 20x20 block in the middle, black border.
    _write_png(tmp_path / "b" / "nested" / "2.png", frame)
    _write_png(tmp_path / "a" / "1.png", np.full((16, 16), 77, np.uint8))  # Grayscale.
    (tmp_path / "notes.txt").write_text("not an image")

    images, labels = load_images("folder", data_dir=str(tmp_path), image_size=8, crop=20)
    assert labels is None
    assert images.shape == (2, 8, 8, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[0], np.full((8, 8, 3), 77))  # Sorted: a/ before b/.
    np.testing.assert_array_equal(images[1], np.broadcast_to([200, 100, 50], (8, 8, 3)))

    whole, _ = load_images("folder", data_dir=str(tmp_path), limit=1)
    assert whole.shape == (1, 64, 64, 3)
    uncropped, _ = load_images("folder", data_dir=str(tmp_path), image_size=30)
    assert uncropped[1, 0, 0].tolist() == [0, 0, 0]  # Without crop the border stays.


def test_folder_empty_or_missing(tmp_path):
    for data_dir in (str(tmp_path), str(tmp_path / "missing"), None):
        with pytest.raises(DatasetUnavailable) as info:
            load_images("folder", data_dir=data_dir)
        message = str(info.value)
        assert "\n" not in message and "no images" in message and "--dataset photos" in message


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
@pytest.mark.parametrize(
    "content,message",
    [
        (b"\x89PNG\r\n\x1a\n garbage", "cannot be read"),  # A PNG signature, then nothing valid.
        (b"", "cannot be read"),
        (None, "cannot be read"),  # A valid header, pixel data cut off.
        ("bomb", "is too large to load"),  # Over Image.MAX_IMAGE_PIXELS (patched below).
        ("warning", "is too large to load"),  # Between the limit and twice it: PIL only warns.
    ],
)
def test_folder_bad_image_names_the_file(tmp_path, monkeypatch, content, message):
    _write_png(tmp_path / "a.png", np.full((8, 8, 3), 9, np.uint8))  # 64 pixels
    bad = tmp_path / "b.png"
    if content is None:
        _write_png(bad, np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8))
        bad.write_bytes(bad.read_bytes()[:200])
    elif isinstance(content, str):
        _write_png(bad, np.zeros((20, 20, 3), np.uint8))  # 400 pixels
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 if content == "bomb" else 300)
    else:
        bad.write_bytes(content)
    with pytest.raises(DatasetUnavailable) as info:
        load_images("folder", data_dir=str(tmp_path), image_size=8)
    text = str(info.value)
    assert "\n" not in text and f"image {bad} " in text and message in text, text
    # The good image alone still loads (the bad one sorts after it).
    images, _ = load_images("folder", data_dir=str(tmp_path), image_size=8, limit=1)
    assert images.shape == (1, 8, 8, 3) and images[0, 0, 0].tolist() == [9, 9, 9]


def test_unknown_name():
    with pytest.raises(DatasetUnavailable, match="choose one of mnist5k, digits, mnist"):
        load_images("cifar100")
    assert datasets.DATASETS == ("mnist5k", "digits", "mnist", "fashion_mnist", "photos", "folder")


def test_fit_images():
    gray = np.full((3, 28, 28, 1), 90, np.uint8)
    assert fit_images(gray, 28, 1) is gray
    rgb = fit_images(gray, 32, 3)
    assert rgb.shape == (3, 32, 32, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, 90)  # A constant image stays constant.

    colour = np.zeros((2, 16, 16, 3), np.uint8)
    colour[..., 0] = 255  # Pure red: luminance 0.299 * 255 = 76.
    back = fit_images(colour, 8, 1)
    assert back.shape == (2, 8, 8, 1)
    np.testing.assert_array_equal(back, 76)

    ramp = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))[None, ..., None]
    small = fit_images(ramp, 4, 1)[0, :, :, 0]
    assert (np.diff(small.astype(int), axis=1) > 0).all()  # Left-to-right ramp survives.
    assert (small == small[0]).all()


def test_to_float():
    images = np.array([[0, 51, 255]], np.uint8)
    unit = to_float(images)
    assert unit.dtype == np.float32
    np.testing.assert_allclose(unit, [[0.0, 0.2, 1.0]], atol=1e-6)
    tanh = to_float(images, (-1, 1))
    assert tanh.dtype == np.float32
    np.testing.assert_allclose(tanh, [[-1.0, -0.6, 1.0]], atol=1e-6)


def _fake_mnist(path):
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "y_train": np.arange(5, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "y_test": np.array([7, 8, 9], np.uint8),
    }
    np.savez(path, **arrays)
    return arrays


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty Keras home and a mirror folder served as a file:// origin."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv("RECIPES_DATA_ORIGIN", mirror.as_uri())
    return mirror, tmp_path / "keras"


def test_download_unreachable(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setenv("RECIPES_DATA_ORIGIN", "http://127.0.0.1:9/")
    for name in ("mnist", "fashion_mnist"):
        with pytest.raises(DatasetUnavailable) as info:
            load_images(name)
        message = str(info.value)
        assert "\n" not in message and "Traceback" not in message
        assert message.startswith(f"could not download {name} from http://127.0.0.1:9/")
        assert "(no network?): " in message and len(message) < 300
        assert message.endswith(". Use the embedded real MNIST digits instead: --dataset mnist5k")
    assert not (tmp_path / "datasets" / "mnist.npz").exists()


def test_download_corrupt(offline):
    mirror, home = offline
    _fake_mnist(mirror / "mnist.npz")  # Not the real file: its hash cannot match.
    with pytest.raises(DatasetUnavailable) as info:
        load_images("mnist")
    message = str(info.value)
    assert "\n" not in message
    assert "corrupt" in message and "hash" in message and "--dataset mnist5k" in message


def test_download_missing_file(offline):
    with pytest.raises(DatasetUnavailable, match="could not download mnist from file://"):
        load_images("mnist")


def test_download_mnist(offline, monkeypatch):
    mirror, home = offline
    arrays = _fake_mnist(mirror / "mnist.npz")
    monkeypatch.setitem(remote.SHA256, "mnist.npz", _sha256(mirror / "mnist.npz"))

    images, labels = load_images("mnist")
    assert (home / "datasets" / "mnist.npz").exists()
    assert images.shape == (5, 28, 28, 1) and images.dtype == np.uint8
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(images[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(labels, np.arange(5))

    (mirror / "mnist.npz").unlink()  # Now only the cache has it.
    test_images, test_labels = load_images("mnist", split="test", limit=2)
    assert test_images.shape == (2, 28, 28, 1)
    np.testing.assert_array_equal(test_images[..., 0], arrays["x_test"][:2])
    np.testing.assert_array_equal(test_labels, [7, 8])


def _write_idx(path, array, magic):
    header = np.array([magic, *array.shape], ">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def test_download_fashion_mnist(offline, monkeypatch):
    mirror, home = offline
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)
    y = np.array([3, 1, 4, 1], np.uint8)
    for prefix in ("train", "t10k"):
        _write_idx(mirror / f"{prefix}-labels-idx1-ubyte.gz", y, 2049)
        _write_idx(mirror / f"{prefix}-images-idx3-ubyte.gz", x, 2051)
    for path in mirror.iterdir():
        monkeypatch.setitem(remote.SHA256, path.name, _sha256(path))

    images, labels = load_images("fashion_mnist", split="test")
    assert (home / "datasets" / "fashion-mnist" / "t10k-images-idx3-ubyte.gz").exists()
    assert images.shape == (4, 28, 28, 1) and images.dtype == np.uint8
    np.testing.assert_array_equal(images[..., 0], x)
    assert labels.dtype == np.int64 and labels.tolist() == [3, 1, 4, 1]


def test_import_stays_light():
    import subprocess
    import sys

    heavy = "{'keras', 'tensorflow', 'torch', 'jax'}"
    code = f"import sys, datasets; print(sorted({heavy} & set(sys.modules)))"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"
