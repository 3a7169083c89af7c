"""recipes.photo_style on the current backend: the matting Laplacian and its sparse quadratic form
against dense NumPy, masked Grams, the 700x530 shape table, masks, and a --quick run."""

import json

import numpy as np
import pytest
from keras import ops
from PIL import Image

from layers import GramMatrix, VGGFeatures
from recipes import engine, photo_style
from recipes.common import cli, style_transfer
from tests.conftest import run_module

# A 9.10's table: a 700x530 input with "same" (ceil) pooling.
SHAPE_TABLE = {
    "block1_conv1": (700, 530, 64),
    "block2_conv1": (350, 265, 128),
    "block3_conv1": (175, 133, 256),
    "block4_conv1": (88, 67, 512),
    "block5_conv1": (44, 34, 512),
}


@pytest.fixture(scope="module")
def tiny_image():
    return np.random.default_rng(3).uniform(size=(8, 8, 3))


@pytest.fixture(scope="module")
def tiny_laplacian(tiny_image):
    return photo_style.matting_laplacian(tiny_image)


def test_matting_laplacian_is_symmetric_psd_and_annihilates_constants(tiny_image, tiny_laplacian):
    dense = tiny_laplacian.toarray()
    assert dense.shape == (64, 64)
    np.testing.assert_allclose(dense, dense.T, atol=1e-12)
    eigenvalues = np.linalg.eigvalsh(dense)
    assert eigenvalues.min() > -1e-9 * eigenvalues.max()
    # L 1 = 0, so a constant image (every channel) has L_m = 0.
    np.testing.assert_allclose(dense @ np.ones(64), 0.0, atol=1e-10)
    constant = np.full((64, 3), 0.7)
    assert abs(np.sum(constant * (dense @ constant))) < 1e-10
    # An affine function of the guide's colours (here the guide itself) costs almost nothing next
    # to an unrelated image: the property the photorealism term relies on.
    guide = tiny_image.reshape(64, 3) @ np.array([[0.5, -1.0, 2.0]]).T + 0.3
    other = np.random.default_rng(4).uniform(size=(64, 1))
    assert (guide.T @ dense @ guide).item() < 1e-5 * (other.T @ dense @ other).item()
    # Entries only between pixels that share a 3x3 window: a 5x5 neighbourhood.
    ys, xs = np.divmod(np.arange(64), 8)
    far = (np.abs(ys[:, None] - ys[None]) > 2) | (np.abs(xs[:, None] - xs[None]) > 2)
    assert np.all(dense[far] == 0)
    # Duplicates merged, one entry per (row, col).
    assert len(set(zip(tiny_laplacian.row, tiny_laplacian.col))) == tiny_laplacian.nnz


def test_matting_laplacian_matches_levin_formula_for_one_window():
    """A 3x3 image has a single window: M = I - (1 + (I_i - mu)^T (Sigma + eps/9)^-1 (I_j - mu))/9."""
    image = np.random.default_rng(5).uniform(size=(3, 3, 3))
    colours = image.reshape(9, 3)
    centred = colours - colours.mean(0)
    inverse = np.linalg.inv(centred.T @ centred / 9 + 1e-7 / 9 * np.eye(3))
    expected = np.eye(9) - (1 + centred @ inverse @ centred.T) / 9
    np.testing.assert_allclose(photo_style.matting_laplacian(image).toarray(), expected, atol=1e-9)


def test_sparse_quadratic_form_and_gradient_equal_dense(tiny_laplacian):
    dense = tiny_laplacian.toarray()
    v = np.random.default_rng(6).uniform(size=(64, 3)).astype("float32")
    coo = (
        ops.convert_to_tensor(tiny_laplacian.row.astype("int32")),
        ops.convert_to_tensor(tiny_laplacian.col.astype("int32")),
        ops.convert_to_tensor(tiny_laplacian.data.astype("float32")),
    )
    matvec = photo_style.sparse_matvec(*coo, ops.convert_to_tensor(v), 64)
    np.testing.assert_allclose(ops.convert_to_numpy(matvec), dense @ v, rtol=1e-4, atol=1e-4)
    value, (grad,) = engine.value_and_grad(
        lambda x: photo_style.sparse_quadratic_form(*coo, x), [ops.convert_to_tensor(v)]
    )
    expected = np.sum(v * (dense @ v))
    assert float(value) == pytest.approx(expected, rel=1e-4)
    np.testing.assert_allclose(ops.convert_to_numpy(grad), 2 * dense @ v, rtol=1e-4, atol=1e-4)
    # The loss on preprocessed pixels: V = X / 255 and the sum over the three channels.
    image = v.reshape(1, 8, 8, 3) * 255.0
    loss = photo_style.photorealism_loss(ops.convert_to_tensor(image), coo)
    assert float(loss) == pytest.approx(expected, rel=1e-4)


def test_laplacian_is_vectorised():
    """No loop per pixel: 128x128 in about a quarter of a second (256x256: about one)."""
    import time

    image = np.random.default_rng(0).uniform(size=(128, 128, 3))
    start = time.perf_counter()
    laplacian = photo_style.matting_laplacian(image)
    assert time.perf_counter() - start < 2.0  # generous: the test machine is shared
    # Every interior pixel has its full 5x5 neighbourhood of entries.
    counts = np.bincount(laplacian.row, minlength=128 * 128).reshape(128, 128)
    assert np.all(counts[2:-2, 2:-2] == 25) and counts.max() == 25


def test_masked_gram_with_all_ones_mask_is_the_plain_gram():
    features = np.random.default_rng(7).normal(size=(1, 4, 5, 6)).astype("float32")
    target = np.random.default_rng(8).normal(size=(1, 4, 5, 6)).astype("float32")
    ones = np.ones((1, 4, 5), "float32")
    plain = ops.convert_to_numpy(GramMatrix()(features))
    np.testing.assert_allclose(ops.convert_to_numpy(GramMatrix()(features, region=ones)), plain)
    # The authors' normalisation: Gram / (N * area); with one all-ones class area = M = 20.
    masked = ops.convert_to_numpy(photo_style.masked_grams(features, ones))
    np.testing.assert_allclose(masked, plain / (6 * 20), rtol=1e-6)
    # With one all-ones class the segmented loss is eq. 12 of the plain Grams times 4 / N^2.
    target_masked = photo_style.masked_grams(target, ones)
    segmented = photo_style.segmented_style_loss(
        photo_style.masked_grams(features, ones), target_masked, np.ones(1, "float32")
    )
    plain_loss = style_transfer.style_loss(GramMatrix()(features), GramMatrix()(target), 20, 6)
    assert float(segmented) == pytest.approx(float(plain_loss) * 4 / 36, rel=1e-5)
    # A class absent from the features' mask contributes a zero Gram.
    two = np.stack([ones[0], np.zeros((4, 5), "float32")])
    grams = ops.convert_to_numpy(photo_style.masked_grams(features, two))
    np.testing.assert_allclose(grams[0], masked[0], rtol=1e-6)
    assert np.all(grams[1] == 0)


def test_vgg_shape_table_700x530_with_same_pooling():
    assert tuple(photo_style.STYLE_LAYERS) == tuple(SHAPE_TABLE)  # conv1_1 ... conv5_1
    features = VGGFeatures(list(SHAPE_TABLE), pool_padding="same")
    shapes = features.compute_output_shape((1, 700, 530, 3))
    assert {name: shape[1:] for name, shape in shapes.items()} == SHAPE_TABLE
    valid = VGGFeatures(list(SHAPE_TABLE)).compute_output_shape((1, 700, 530, 3))
    assert valid["block5_conv1"][1:3] == (43, 33)  # Keras' floor pooling misses the table
    # The masks follow the same sizes.
    masks = photo_style.propagate_masks(np.ones((1, 700, 530), "float32"), list(SHAPE_TABLE))
    assert {name: m.shape[1:] for name, m in masks.items()} == {
        name: shape[:2] for name, shape in SHAPE_TABLE.items()
    }


def test_mask_propagation_is_avg_pool_then_resize():
    mask = np.zeros((1, 6, 6), "float32")
    mask[0, :, :3] = 1.0
    out = photo_style.propagate_masks(mask, ["block1_conv1", "block2_conv1"])
    # block1_conv1: one 3x3 zero-padded average pool.
    padded = np.pad(mask[0], 1)
    expected = np.array([[padded[i : i + 3, j : j + 3].mean() for j in range(6)] for i in range(6)])
    np.testing.assert_allclose(out["block1_conv1"][0], expected, rtol=1e-6)
    assert out["block2_conv1"].shape == (1, 3, 3)
    # resize_bilinear halving with half-pixel centres averages 2x2 blocks.
    x = np.arange(16, dtype="float64").reshape(1, 4, 4)
    np.testing.assert_allclose(
        photo_style.resize_bilinear(x, (2, 2))[0], x[0].reshape(2, 2, 2, 2).mean(axis=(1, 3))
    )


def test_colour_masks_from_files(tmp_path):
    content = np.zeros((6, 8, 3), "uint8")
    content[:, 4:] = photo_style.AUTHOR_COLOURS["blue"]
    style = np.zeros((4, 4, 3), "uint8")
    style[2:] = photo_style.AUTHOR_COLOURS["blue"]
    style[0, 0] = photo_style.AUTHOR_COLOURS["red"]  # in the style only
    Image.fromarray(content).save(tmp_path / "c.png")
    Image.fromarray(style).save(tmp_path / "s.png")
    c_seg = photo_style.read_mask(tmp_path / "c.png", (6, 8))
    s_seg = photo_style.read_mask(tmp_path / "s.png", (4, 4))
    c_masks, s_masks, colours = photo_style.colour_masks(c_seg, s_seg)
    assert [tuple(c) for c in colours] == [(0, 0, 0), (0, 0, 255), (255, 0, 0)]
    assert c_masks.sum(axis=(1, 2)).tolist() == [24, 24, 0]
    assert s_masks.sum(axis=(1, 2)).tolist() == [7, 8, 1]
    assert np.all(c_masks.sum(0) == 1) and np.all(s_masks.sum(0) == 1)


def test_kmeans_masks_share_centres():
    content = np.zeros((4, 6, 3), "float32")
    content[:, 3:] = (200, 30, 30)
    style = np.full((5, 5, 3), (200, 30, 30), "float32")
    style[:2] = 0
    c_masks, s_masks, centres = photo_style.kmeans_masks(content, style, 2)
    red = int(np.argmax(centres[:, 0]))
    assert np.all(c_masks[red][:, 3:] == 1) and np.all(c_masks[red][:, :3] == 0)
    assert np.all(s_masks[red][2:] == 1) and np.all(s_masks[red][:2] == 0)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("photo_style")
    assert photo_style.main(["--quick", "--weights", "random", "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_quick_run_writes_outputs_and_the_loss_falls(quick_run):
    out, summary = quick_run
    h, w = summary["size"]
    assert Image.open(out / "result.png").size == (w, h)
    mask_w, mask_h = Image.open(out / "masks.png").size
    assert mask_h == h and mask_w > 2 * w
    assert (out / "losses.png").exists() and list((out / "snapshots").glob("snapshot_*.png"))
    assert summary["steps"] == photo_style.QUICK["steps"]
    initial, final = summary["initial"], summary["final"]
    # Starts at the content image: no content loss and (almost) no photorealism loss, since the
    # image is exactly an affine function of the Laplacian's guide.
    assert initial["content"] == 0
    assert initial["photo"] < 1e-4 * initial["style"]
    # NumPy-drawn VGG weights and NumPy masks: the same starting loss on every backend.
    assert initial["total"] == pytest.approx(594719.2, rel=1e-3)
    # 20 Adam steps: the style term falls by more than 10x (it dominates at the start), the total
    # by more than 5x (content, TV and photorealism terms push back: about 8.7x).
    assert final["style"] < initial["style"] / 10
    assert final["total"] < initial["total"] / 5


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, no_network):
    assert cli.run(photo_style.main, ["--content-mask", str(tmp_path / "c.png")]) == 2
    assert "--style-mask" in capsys.readouterr().err
    assert cli.run(photo_style.main, ["--content", str(tmp_path / "missing.png")]) == 2
    assert "cannot read image" in capsys.readouterr().err
    # The default ImageNet weights offline: one line that names the embedded alternative.
    assert cli.run(photo_style.main, ["--quick", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--weights random" in err and len(err.strip().splitlines()) == 1


def test_help_imports_no_backend():
    result = run_module("recipes.photo_style", "--help", env={"PYTHONWARNINGS": "ignore"}, timeout=60)
    assert result.returncode == 0 and "--content-mask" in result.stdout
