"""python -m recipes.pix2pix on the current backend: the notes' networks and loss, outputs, quality."""

import csv
import io
import json
import tarfile

import keras
import numpy as np
import pytest
from keras import ops
from PIL import Image

import layers  # noqa: F401  (registers UNetDown, UNetUp and PatchGAN for load_model)
from datasets import to_float
from datasets.pairs import render_buildings
from recipes import pix2pix
from recipes.common import cli
from tests.conftest import BACKEND, run_module
from tests.datasets.test_pairs import LABELS, PHOTO, side_by_side

# Section 9.11's generator table at 256x256: the encoder outputs, then every decoder output
# concatenated with its skip.
NOTES_ENCODER = [
    (128, 128, 64),
    (64, 64, 128),
    (32, 32, 256),
    (16, 16, 512),
    (8, 8, 512),
    (4, 4, 512),
    (2, 2, 512),
    (1, 1, 512),
]
NOTES_CONCATS = [
    (2, 2, 1024),
    (4, 4, 1024),
    (8, 8, 1024),
    (16, 16, 1024),
    (32, 32, 512),
    (64, 64, 256),
    (128, 128, 128),
]
NOTES_G_PARAMS, NOTES_D_PARAMS = 54_431_363, 2_771_393


def block_shapes(model, prefix):
    return [tuple(layer.output.shape[1:]) for layer in model.layers if layer.name.startswith(prefix)]


def test_full_size_networks_have_the_notes_shapes_and_weights():
    config = pix2pix.Config(image_size=256)
    pix2pix.check_config(config)
    assert config.filters == 64  # The notes' ngf = ndf at 256x256.
    # Zero kernels: building 54 million weights from N(0, 0.02) would take seconds per backend.
    generator = pix2pix.build_generator(config, "zeros")
    assert block_shapes(generator, "down") == NOTES_ENCODER
    assert block_shapes(generator, "up") == NOTES_CONCATS
    assert generator.output_shape == (None, 256, 256, 3)
    # The notes count a bias in each of the 13 batch-normed convolutions (redundant with beta).
    redundant_biases = 128 + 256 + 512 * 5 + 512 * 4 + 256 + 128 + 64
    assert generator.count_params() == NOTES_G_PARAMS - redundant_biases == 54_425_923
    discriminator = pix2pix.build_discriminator(config, "zeros")
    assert discriminator.output_shape == (None, 30, 30, 1)
    assert discriminator.count_params() == NOTES_D_PARAMS - (128 + 256 + 512)


def test_default_size_unet_has_six_blocks_down_to_1x1():
    config = pix2pix.Config()
    pix2pix.check_config(config)
    assert (config.image_size, config.filters) == (64, 16)
    generator = pix2pix.build_generator(config, "zeros")
    assert block_shapes(generator, "down") == [
        (32, 32, 16),
        (16, 16, 32),
        (8, 8, 64),
        (4, 4, 128),
        (2, 2, 128),
        (1, 1, 128),
    ]
    assert block_shapes(generator, "up")[-1] == (32, 32, 32)
    assert pix2pix.build_discriminator(config, "zeros").output_shape == (None, 6, 6, 1)


def test_narrow_256_networks_map_the_notes_shapes():
    config = pix2pix.Config(image_size=256, filters=2)
    pix2pix.check_config(config)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 256, 256, 3)).astype("float32")
    y = pix2pix.build_generator(config).predict(x, verbose=0)
    assert y.shape == (1, 256, 256, 3)
    assert -1 <= y.min() < y.max() <= 1  # tanh, and not constant.
    logits = pix2pix.build_discriminator(config).predict([x, y], verbose=0)
    assert logits.shape == (1, 30, 30, 1)


def test_bottleneck_blocks_upsample_by_matrix_product():
    """The decoder blocks whose input is at most 2x2 are `UNetUp(matmul=True)` (layers/pix2pix.py,
    equal to the plain block: tests/layers/test_pix2pix.py); `dense_bottleneck=False` turns it off."""
    config = pix2pix.Config()
    pix2pix.check_config(config)
    for dense, want in [(True, [True, True, False, False, False]), (False, [False] * 5)]:
        generator = pix2pix.build_generator(config, "zeros", dense_bottleneck=dense)
        blocks = [layer for layer in generator.layers if layer.name.startswith("up")]
        assert [block.matmul for block in blocks] == want


def test_generator_loss_is_gan_plus_100_l1():
    rng = np.random.default_rng(2)
    real_logits, fake_logits = rng.normal(size=(2, 2, 6, 6, 1)).astype("float32")
    fake, target = rng.uniform(-1, 1, (2, 2, 8, 8, 3)).astype("float32")
    loss, gan, l1 = pix2pix.generator_loss(fake_logits, fake, target)  # Default lambda = 100.
    want_gan = np.mean(np.log1p(np.exp(-fake_logits)))  # -log sigmoid(D(x, G(x)))
    want_l1 = np.mean(np.abs(target - fake))
    assert float(gan) == pytest.approx(want_gan, rel=1e-5)
    assert float(l1) == pytest.approx(want_l1, rel=1e-5)
    assert float(loss) == pytest.approx(want_gan + 100 * want_l1, rel=1e-5)
    d_loss = pix2pix.discriminator_loss(real_logits, fake_logits)
    want_d = np.mean(np.log1p(np.exp(-real_logits))) + np.mean(np.log1p(np.exp(fake_logits)))
    assert float(d_loss) == pytest.approx(want_d, rel=1e-5)


def test_quick_run_writes_its_outputs_and_learns(tmp_path):
    """The --quick run (32x32, 128 steps) writes everything and really improves on the baselines."""
    assert pix2pix.main(["--quick", "--out", str(tmp_path)]) == 0
    for name in ["samples/epoch-001.png", "samples/epoch-004.png", "triptychs.png", "losses.png"]:
        assert (tmp_path / name).stat().st_size > 200, name
    with Image.open(tmp_path / "triptychs.png") as picture:  # 6 rows of input | output | target.
        assert picture.size == (6 * (3 * 34 + 2), 6 * (6 * 34 + 2))
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(float(row["epoch"])) for row in rows] == [1, 2, 3, 4]
    for row in rows:  # Per-epoch means of loss_G = gan + 100 * L1 keep the identity.
        g_loss, g_gan, g_l1 = (float(row[k]) for k in ("g_loss", "g_gan", "g_l1"))
        assert g_loss == pytest.approx(g_gan + 100 * g_l1, rel=1e-4)
    assert "l1_heldout" in rows[0] and "d_loss" in rows[0]

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["backend"] == BACKEND and summary["epochs"] == 4
    # 64 held-out pairs: the label maps are far from the renderings; an untrained G outputs gray.
    assert summary["l1_baseline"] == pytest.approx(0.72, abs=0.03)
    assert summary["l1_untrained"] == pytest.approx(0.45, abs=0.03)
    # Measured 0.226-0.251 on the three backends.
    assert summary["l1_heldout"] < 0.4 * summary["l1_baseline"]
    assert summary["l1_heldout"] < 0.65 * summary["l1_untrained"]

    generator = keras.saving.load_model(tmp_path / "generator.keras")
    x = to_float(render_buildings(1, 32, seed=5)[0], (-1, 1))
    y = ops.convert_to_numpy(generator(x, training=False))
    assert y.shape == (1, 32, 32, 3) and -1 <= y.min() and y.max() <= 1
    discriminator = keras.saving.load_model(tmp_path / "discriminator.keras")
    assert ops.convert_to_numpy(discriminator([x, y])).shape == (1, 2, 2, 1)


def test_pixelwise_baseline_is_the_median_colour_of_each_input_colour():
    x = np.zeros((1, 2, 4, 3), np.uint8)
    x[0, 1] = 255  # Two input colours, black and white.
    y = np.array([[[[10] * 3, [20] * 3, [30] * 3, [90] * 3], [[200] * 3] * 4]], np.uint8)
    out = pix2pix.pixelwise_baseline(x, y, x)
    np.testing.assert_array_equal(out[0, 0], 20)  # The (lower) median of 10, 20, 30, 90.
    np.testing.assert_array_equal(out[0, 1], 200)


def test_facades_archive_is_read_as_labels_to_photos(tmp_path, no_network):
    """A facades.tar.gz already in the Keras cache is used as it is (no download)."""
    cache = tmp_path / "keras" / "datasets"
    cache.mkdir(parents=True)
    with tarfile.open(cache / "facades.tar.gz", "w:gz") as archive:
        for name in ["facades/train/2.jpg", "facades/train/10.jpg", "facades/test/1.jpg"]:
            data = side_by_side(PHOTO, LABELS)
            member = tarfile.TarInfo(name)
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    config = pix2pix.Config(dataset="facades", image_size=32)
    x_train, y_train, x_test, y_test = pix2pix.load_pairs(config)
    assert x_train.shape == y_train.shape == (2, 32, 32, 3) and x_test.shape == (1, 32, 32, 3)
    # BtoA: the label map (right half, B) is the input, the photo (left half, A) the target.
    np.testing.assert_allclose(x_train.mean(axis=(0, 1, 2)), LABELS, atol=3)
    np.testing.assert_allclose(y_test.mean(axis=(0, 1, 2)), PHOTO, atol=3)


def test_pix2pix_folder_with_val_split_and_direction(tmp_path):
    for split, count in [("train", 3), ("val", 2)]:
        (tmp_path / split).mkdir()
        for i in range(count):
            (tmp_path / split / f"{i}.jpg").write_bytes(side_by_side(PHOTO, LABELS))
    config = pix2pix.Config(data_dir=str(tmp_path), direction="AtoB", image_size=32, test_pairs=1)
    x_train, y_train, x_test, y_test = pix2pix.load_pairs(config)
    assert len(x_train) == 3 and len(x_test) == 1
    np.testing.assert_allclose(x_train.mean(axis=(0, 1, 2)), PHOTO, atol=3)


def test_offline_facades_fails_with_one_line(tmp_path, no_network, capsys):
    code = cli.run(pix2pix.main, ["--quick", "--dataset", "facades", "--out", str(tmp_path / "out")])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: could not download facades from http://127.0.0.1:9/"), lines
    assert "--dataset buildings" in lines[0]  # Names the embedded alternative.
    assert not (tmp_path / "out").exists()


def test_help_lists_the_options():
    proc = run_module("recipes.pix2pix", "--help", timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for flag in ["--image-size", "--filters", "--l1-weight", "--direction", "--no-dropout"]:
        assert flag in proc.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["--image-size", "48"], "--image-size must be a power of 2 and at least 32, got 48"),
        (["--image-size", "16"], "--image-size must be a power of 2 and at least 32, got 16"),
        (["--filters", "0"], "--filters must be at least 1"),
        (["--train-pairs", "4"], "4 training pairs are fewer than one batch of 8"),
        (["--data-dir", "/nonexistent"], "no image pairs found in /nonexistent/train"),
    ],
)
def test_bad_input_fails_with_one_line(args, message, tmp_path, capsys):
    assert cli.run(pix2pix.main, [*args, "--test-pairs", "2", "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert not (tmp_path / "out").exists()  # Nothing written for a run that cannot start.


# --- Cross-backend parity (tests/fixtures/make_parity.py, tests/test_parity.py) ----------------


def build_parity():
    """A tiny pix2pix without dropout: the same weights and pairs give the same losses anywhere."""
    config = pix2pix.Config(image_size=32, filters=2, dropout=False, batch_size=4)
    pix2pix.check_config(config)
    return pix2pix.Pix2Pix(config)


def parity_inputs():
    labels, images = render_buildings(20, 32, seed=7)
    return {
        "inputs": to_float(labels, (-1, 1)).reshape(5, 4, 32, 32, 3),
        "targets": to_float(images, (-1, 1)).reshape(5, 4, 32, 32, 3),
    }


PARITY_CASES = {"pix2pix": (build_parity, parity_inputs)}
