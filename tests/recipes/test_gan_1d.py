"""python -m recipes.gan_1d on the current backend: the notes' acceptance numbers, outputs, errors."""

import csv
import json
import math

import keras
import numpy as np
import pytest

from recipes import gan, gan_1d
from recipes.__main__ import catalog
from recipes.common import cli, gan_training
from tests.conftest import BACKEND


def tiny_gan():
    return gan_1d.GAN1D(gan_1d.Config(seed=0, hidden=4, epochs=1, steps_per_epoch=5))


def tiny_inputs():
    rng = np.random.default_rng(7)
    return {
        "real": rng.normal(4.0, 0.5, size=(5, 8, 1)).astype("float32"),
        "z_d": rng.uniform(-1, 1, size=(5, 8, 1)).astype("float32"),
        "z_g": rng.uniform(-1, 1, size=(5, 8, 1)).astype("float32"),
    }


PARITY_CASES = {"gan_1d": (tiny_gan, tiny_inputs)}


def test_losses_are_the_gan_objective():
    logits = np.array([[1.5], [-0.5], [0.2]], "float32")
    d = 1 / (1 + np.exp(-logits))
    d_fake = 1 / (1 + np.exp(logits))  # D(G(z)) for the logits -logits
    d_loss = gan_training.discriminator_loss(logits, -logits)
    expected = -np.mean(np.log(d)) - np.mean(np.log(1 - d_fake))
    assert float(d_loss) == pytest.approx(expected, rel=1e-5)
    assert float(gan_training.generator_loss(logits)) == pytest.approx(-np.mean(np.log(d)), rel=1e-5)
    # At D = 1/2 everywhere the D loss is log 4, the dotted line of losses.png.
    zeros = np.zeros((4, 1), "float32")
    assert float(gan_training.discriminator_loss(zeros, zeros)) == pytest.approx(math.log(4), rel=1e-6)


def test_optimal_discriminator_is_one_half_when_the_densities_agree():
    # p_G = p_data: D* = 1/2 everywhere, the "D(G(z)) -> 1/2" of the notes (D* itself: test_gan).
    x = np.linspace(2, 6, 9)
    density = gan_1d.normal_density(x, 4.0, 0.5)
    assert density.max() == pytest.approx(1 / (0.5 * math.sqrt(2 * math.pi)))
    np.testing.assert_array_equal(gan.optimal_discriminator(density, density), np.full(9, 0.5))


def test_models_are_the_notes_mlps():
    config = gan_1d.Config()
    generator = gan_1d.build_generator(config)
    discriminator, logits = gan_1d.build_discriminator(config)
    # 1 -> 16 -> 16 -> 1: (1*16 + 16) + (16*16 + 16) + (16 + 1) = 321 parameters each.
    assert generator.count_params() == 321 and discriminator.count_params() == 321
    x = np.array([[3.0], [4.0]], "float32")
    probability = keras.ops.convert_to_numpy(discriminator(x))
    logit = keras.ops.convert_to_numpy(logits(x))
    np.testing.assert_allclose(probability, 1 / (1 + np.exp(-logit)), rtol=1e-5)


def test_default_run_meets_the_acceptance_of_the_notes(tmp_path):
    assert gan_1d.main(["--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["backend"] == BACKEND and summary["steps"] == 800
    # Acceptance (E 03): G's mean within 0.3 of 4, std within 0.3 of 0.5; D near 1/2.
    assert abs(summary["generated_mean"] - 4.0) < 0.3, summary
    assert abs(summary["generated_std"] - 0.5) < 0.3, summary
    assert 0.35 <= summary["mean_d_fake"] <= 0.65, summary
    assert 0.35 <= summary["mean_d_real"] <= 0.65, summary

    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(float(row["epoch"])) for row in rows] == list(range(1, 11))
    first, last = rows[0], rows[-1]
    # At the end D cannot tell the two apart: its loss is near log 4 = 1.386.
    assert float(last["d_loss"]) == pytest.approx(math.log(4), abs=0.1)
    assert float(first["d_real"]) > float(first["d_fake"])  # D wins the first epoch.
    for name in ("figure1.png", "losses.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name

    # The saved models are the trained ones: they reproduce the measured numbers.
    generator = keras.saving.load_model(tmp_path / "generator.keras")
    discriminator = keras.saving.load_model(tmp_path / "discriminator.keras")
    z = np.random.default_rng(0).uniform(-1, 1, size=(5000, 1)).astype("float32")
    fake = keras.ops.convert_to_numpy(generator(z))
    assert np.mean(fake) == pytest.approx(summary["generated_mean"], abs=0.05)
    assert np.std(fake) == pytest.approx(summary["generated_std"], abs=0.05)
    d_fake = keras.ops.convert_to_numpy(discriminator(fake))
    assert np.mean(d_fake) == pytest.approx(summary["mean_d_fake"], abs=0.02)


def test_quick_run_writes_its_outputs_and_is_reproducible(tmp_path):
    summaries = []
    for name in ("a", "b"):
        assert gan_1d.main(["--quick", "--seed", "3", "--out", str(tmp_path / name)]) == 0
        summary = json.loads((tmp_path / name / "summary.json").read_text())
        assert summary["config"].pop("out") == str(tmp_path / name)
        summaries.append(summary)
    assert summaries[0] == summaries[1]  # Same seed, same numbers.
    assert summaries[0]["steps"] == 40 and summaries[0]["config"]["seed"] == 3
    out = tmp_path / "a"
    for name in ("figure1.png", "losses.png", "generator.keras", "discriminator.keras"):
        assert (out / name).stat().st_size > 5000, name
    with open(out / "metrics.csv") as f:
        assert [int(float(row["epoch"])) for row in csv.DictReader(f)] == [1, 2]
    assert len(list((out / "checkpoints").glob("epoch-*.npz"))) == 2


@pytest.mark.parametrize(
    "args,message",
    [
        (["--steps-per-epoch", "0"], "error: --steps-per-epoch must be at least 1"),
        (["--data-std", "-0.5"], "error: --data-std must be positive"),
        (["--data-dir", "/tmp"], "error: gan_1d trains on inline 1-D data"),
    ],
)
def test_bad_input_fails_with_one_line(args, message, tmp_path, capsys):
    assert cli.run(gan_1d.main, [*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err
    assert not (tmp_path / "out").exists()


def test_help_and_recipe_list(capsys):
    with pytest.raises(SystemExit):
        gan_1d.main(["--help"])
    text = capsys.readouterr().out
    for flag in ("--steps-per-epoch", "--noise", "--d-learning-rate", "--quick", "--seed", "--out"):
        assert flag in text
    sections = {name: section for name, section, _ in catalog()}
    assert sections["gan_1d"] == "E 02-03, D 9.6"
