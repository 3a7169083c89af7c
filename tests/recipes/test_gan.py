"""The vanilla GAN and LSGAN of A 9.4-9.5 and the GAN theory of D 9.6."""

import csv
import json

import keras
import numpy as np
import pytest
from keras import ops

from recipes import gan


def test_theory_numbers_of_the_notes():
    theory = gan.theory_check()
    np.testing.assert_allclose(theory["d_star"], [0.357143, 0.833333], atol=1e-6)
    assert theory["value_at_d_star"] == pytest.approx(-1.182796, abs=1e-6)
    assert theory["two_jsd_minus_log4"] == pytest.approx(theory["value_at_d_star"], abs=1e-12)
    assert theory["value_when_equal"] == pytest.approx(-np.log(4), abs=1e-12)
    np.testing.assert_allclose(gan.optimal_discriminator([0.3, 0.7], [0.3, 0.7]), [0.5, 0.5])


def test_optimal_discriminator_maximises_the_value():
    p_data, p_g = [0.5, 0.5], [0.9, 0.1]
    best = gan.value(p_data, p_g, gan.optimal_discriminator(p_data, p_g))
    grid = np.linspace(0.01, 0.99, 99)
    values = [gan.value(p_data, p_g, [a, b]) for a in grid for b in grid]
    assert max(values) <= best
    assert max(values) == pytest.approx(best, abs=1e-3)  # The grid comes close to D*.


@pytest.mark.parametrize("loss,discriminator,generator", [("gan", 201_217, 234_512)])
def test_parameter_counts_of_the_notes(loss, discriminator, generator):
    config = gan.Config(loss=loss)
    assert gan.build_discriminator(config).count_params() == discriminator
    assert gan.build_generator(config).count_params() == generator


def test_lsgan_losses_of_section_9_5():
    one, zero = np.ones((4, 1), "float32"), np.zeros((4, 1), "float32")
    assert float(gan.discriminator_loss(one, zero, "lsgan")) == 0.0
    assert float(gan.generator_loss(one, "lsgan")) == 0.0
    assert float(gan.discriminator_loss(zero, zero, "lsgan")) == pytest.approx(0.5)
    assert float(gan.generator_loss(zero, "lsgan")) == pytest.approx(0.5)


def test_vanilla_losses_are_the_gan_objective():
    real, fake = np.array([[2.0], [-1.0]], "float32"), np.array([[0.5], [-3.0]], "float32")
    sigmoid = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    d_loss = -np.mean(np.log(sigmoid(real))) - np.mean(np.log(1 - sigmoid(fake)))
    assert float(gan.discriminator_loss(real, fake)) == pytest.approx(d_loss, rel=1e-5)
    assert float(gan.generator_loss(fake)) == pytest.approx(-np.mean(np.log(sigmoid(fake))), rel=1e-5)


def fixed_inputs(steps=5, batch=8, latent_dim=128, seed=5):
    from datasets import load_digits28, to_float

    rng = np.random.default_rng(seed)
    images = to_float(load_digits28()[0][: steps * batch]).reshape(steps, batch, 28, 28, 1)
    z = rng.uniform(-1, 1, size=(2, steps, batch, latent_dim)).astype("float32")
    return {"real": images, "z_d": z[0], "z_g": z[1]}


def small_gan(loss):
    return gan.GAN(gan.Config(loss=loss, hidden=32, seed=3))


PARITY_CASES = {
    "gan": (lambda: small_gan("gan"), fixed_inputs),
    "lsgan": (lambda: small_gan("lsgan"), fixed_inputs),
}


@pytest.mark.parametrize("loss", gan.LOSSES)
def test_a_discriminator_step_lowers_its_loss(loss):
    # A small rate: Adam's first step moves every weight by about the rate, whatever the gradient,
    # and at 1e-3 that can overshoot on a fixed batch.
    model = gan.GAN(gan.Config(loss=loss, hidden=32, seed=3, learning_rate=1e-4))
    inputs = fixed_inputs(steps=1)
    real, z = inputs["real"][0], inputs["z_d"][0]
    fake = ops.convert_to_numpy(model.generator(z))  # The images D's step sees (G moves after).

    def d_loss():
        D = model.discriminator
        return float(ops.convert_to_numpy(gan.discriminator_loss(D(real), D(fake), loss)))

    before = d_loss()
    model.train_step(real, z, inputs["z_g"][0])
    assert d_loss() < before


@pytest.mark.parametrize("loss", gan.LOSSES)
def test_quick_run_writes_its_outputs(loss, tmp_path, capsys):
    assert gan.main(["--quick", "--loss", loss, "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "V(G, D*) = -1.182796, 2 JSD - log 4 = -1.182796" in printed
    assert "V = -1.386294 = -log 4" in printed
    for name in ["samples/epoch-001.png", "samples/epoch-002.png", "samples.png", "losses.png"]:
        assert (tmp_path / name).stat().st_size > 200, name
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(float(row["epoch"])) for row in rows] == [1, 2]
    assert rows[-1]["fid"] and np.isfinite(float(rows[-1]["d_loss"]))
    generator = keras.saving.load_model(tmp_path / "generator.keras")
    images = ops.convert_to_numpy(generator(np.zeros((2, 128), "float32")))
    assert images.shape == (2, 28, 28, 1) and 0 <= images.min() and images.max() <= 1


def test_training_improves_the_samples_far_beyond_the_untrained_generator(tmp_path):
    # A shortened default run: 1,800 of mnist5k's digits, the notes' widths and optimiser.
    args = ["--limit", "1800", "--epochs", "60", "--score-every", "60", "--samples", "500"]
    args += ["--out", str(tmp_path)]
    assert gan.main(args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["untrained"]["fid"] > 500
    # Measured 780 -> 264 (JAX); the MLP's samples are noisier than a DCGAN's (README).
    assert summary["trained"]["fid"] < 400, summary["trained"]


@pytest.mark.parametrize("module", ["gan", "wgan"])
def test_data_dir_is_read_not_ignored(module, tmp_path, capsys):
    # --data-dir trains on a folder of images (made 28x28 grey); a folder without images is one line.
    import importlib

    from PIL import Image

    from recipes.common import cli

    recipe = importlib.import_module(f"recipes.{module}")
    assert cli.run(recipe.main, ["--quick", "--data-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no images" in err[0] and str(tmp_path / "none") in err[0], err
    folder = tmp_path / "faces"
    folder.mkdir()
    for i in range(40):
        Image.new("RGB", (40, 40), (6 * i, 255 - 6 * i, 128)).save(folder / f"{i:02d}.png")
    config = recipe.Config(data_dir=str(folder), batch_size=8, limit=20)
    images = recipe.load_data(config)
    assert images.shape == (20, 28, 28, 1) and images.dtype == np.uint8
