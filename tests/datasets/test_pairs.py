"""datasets.pairs: the embedded building fronts (pinned pixel for pixel), facades, pix2pix folders."""

import hashlib
import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from datasets import DatasetUnavailable, load_buildings, load_facades, load_folder_pairs
from datasets.pairs import PALETTE, render_buildings

# sha256 of labels + images as rendered when the renderer lived in the pix2pix recipe: the data
# of every pix2pix result (README, parity fixture) stays the same.
RENDERED = {
    (0, 50, 64): "1390ba714683a76204bc92656f95c54d390afeefc17964910bdf316bbd70311d",
    (1, 20, 32): "956ab86e69ae994372f9197e5b1469d609d26cce1259cc4a51ff8f16e622bd42",
    (7, 20, 32): "aef3c8e2f097bb574292b87d278e2c255abbb1e3ed61caea4fc091fd946ccbf9",
    (0, 3, 256): "e0497a0ecd87429efa56deebafada77a88e006f91325965060304ecce7d42338",
}


@pytest.mark.parametrize("seed,count,size", sorted(RENDERED))
def test_buildings_are_pinned(seed, count, size):
    labels, images = render_buildings(count, size, seed=seed)
    digest = hashlib.sha256(labels.tobytes() + images.tobytes()).hexdigest()
    assert digest == RENDERED[seed, count, size]


def test_buildings_are_deterministic_pairs():
    labels, images = render_buildings(3, 64, seed=0)
    assert labels.shape == images.shape == (3, 64, 64, 3) and images.dtype == np.uint8
    # Label maps use only the palette; pair i depends on (seed, i) alone.
    assert set(map(tuple, labels.reshape(-1, 3))) <= set(map(tuple, PALETTE))
    again = render_buildings(2, 64, seed=0)
    np.testing.assert_array_equal(again[1], images[:2])
    assert not np.array_equal(render_buildings(1, 64, seed=1)[1][0], images[0])


def test_load_buildings_splits_and_limits():
    labels, images = load_buildings("test", image_size=32, limit=5)
    np.testing.assert_array_equal(images, render_buildings(5, 32, seed=1)[1])
    assert labels.shape == (5, 32, 32, 3)
    train, _ = load_buildings("train", image_size=32, limit=5000)  # At most the 1,000 of the set.
    assert len(train) == 1000
    with pytest.raises(ValueError, match="split must be"):
        load_buildings("val")


def side_by_side(a_color, b_color, size=(64, 32)):
    """A JPEG of a pix2pix pair: A on the left half, B on the right."""
    pixels = np.zeros((size[1], size[0], 3), np.uint8)
    pixels[:, : size[0] // 2] = a_color
    pixels[:, size[0] // 2 :] = b_color
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


PHOTO, LABELS = (200, 40, 40), (40, 40, 200)


def test_facades_from_the_cache_in_natural_order(no_network, tmp_path):
    cache = tmp_path / "keras" / "datasets"
    cache.mkdir(parents=True)
    with tarfile.open(cache / "facades.tar.gz", "w:gz") as archive:
        for i, name in enumerate(["facades/train/10.jpg", "facades/train/2.jpg", "facades/test/1.jpg"]):
            data = side_by_side(PHOTO, (40, 40, 40 + 100 * i))
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    inputs, targets = load_facades("train", image_size=16)
    assert inputs.shape == targets.shape == (2, 16, 16, 3)
    # BtoA by default: labels (B) in, photo (A) out; 2.jpg before 10.jpg.
    np.testing.assert_allclose(inputs.mean(axis=(1, 2))[:, 2], [140, 40], atol=3)
    np.testing.assert_allclose(targets.mean(axis=(0, 1, 2)), PHOTO, atol=3)
    assert len(load_facades("test", image_size=16, limit=1)[0]) == 1


def test_facades_offline_names_the_embedded_pairs(no_network):
    with pytest.raises(DatasetUnavailable) as info:
        load_facades("train")
    message = str(info.value)
    assert message.startswith("could not download facades from http://127.0.0.1:9/facades.tar.gz")
    assert "\n" not in message and message.endswith(
        "Use the embedded pairs instead: --dataset buildings"
    )


def test_folder_pairs_use_val_when_there_is_no_test(tmp_path):
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        (tmp_path / split / "1.jpg").write_bytes(side_by_side(PHOTO, LABELS))
    inputs, targets = load_folder_pairs(tmp_path, "test", image_size=8, direction="AtoB")
    assert inputs.shape == (1, 8, 8, 3)
    np.testing.assert_allclose(inputs.mean(axis=(0, 1, 2)), PHOTO, atol=3)
    np.testing.assert_allclose(targets.mean(axis=(0, 1, 2)), LABELS, atol=3)
    with pytest.raises(DatasetUnavailable, match="no image pairs found in"):
        load_folder_pairs(tmp_path / "missing", "train")
