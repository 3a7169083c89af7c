"""rbm (A 10.6): the partition function (closed form, brute force, oracles), then CD-k on mnist5k."""

import json

import keras
import numpy as np
import pytest

from recipes import rbm
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("rbm")
    assert rbm.main(["--quick", "--out", str(out)]) == 0
    for name in ("filters.png", "samples.png", "reconstruction.png"):
        assert (out / name).stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_partition_function_through_keras_ops(summary):
    assert summary["z_notes_closed_ops"] == pytest.approx(rbm.NOTES_Z, rel=1e-5)
    assert summary["z_notes_brute_ops"] == pytest.approx(rbm.NOTES_Z, rel=1e-5)
    assert summary["z_notes_free_energy"] == pytest.approx(rbm.NOTES_Z, rel=1e-5)
    assert summary["z_zero_closed_ops"] == pytest.approx(32.0, rel=1e-6)
    # With biases: sum over (v, h) of exp(-E) = sum over v of exp(-F(v)).
    assert summary["z_biased_free_energy_ops"] == pytest.approx(summary["z_biased_brute_ops"], rel=1e-5)


def test_cd_training_lowers_the_reconstruction_error(summary):
    errors = [error for _, error in summary["reconstruction_errors"]]
    assert errors[0] == pytest.approx(0.25, abs=0.01)  # p(v | h) = 1/2 everywhere at W ~ 0, b = 0
    assert summary["reconstruction_ratio"] >= 2.0
    assert errors[-1] < 0.1
    # Digits are far more probable (lower free energy) than random images of the same density.
    assert summary["free_energy_test"] < summary["free_energy_noise"] - 50
    assert summary["free_energy_train"] < summary["free_energy_noise"] - 50
    assert 0.02 < summary["sample_mean_density"] < 0.5  # Gibbs samples: sparse digit-like images


def test_cd_gradient_is_the_classic_update():
    # d/dtheta [mean F(v0) - mean F(vk)] = -(<v h>_data - <v h>_model): the CD rule.
    from recipes import engine

    config = rbm.Config(hidden=4, seed=3)
    model = rbm.RBM(6, 4, config)
    rng = np.random.default_rng(0)
    model.w.assign(rng.normal(size=(6, 4)).astype("float32"))
    model.c.assign(rng.normal(size=4).astype("float32"))
    model.b.assign(rng.normal(size=6).astype("float32"))
    v0, vk = (rng.integers(0, 2, size=(5, 6)).astype("float32") for _ in range(2))

    def loss():
        return keras.ops.mean(model.free_energy(v0)) - keras.ops.mean(model.free_energy(vk))

    _, (dw, db, dc) = engine.value_and_grad(loss, model.variables)
    w, b, c = (keras.ops.convert_to_numpy(v).astype("float64") for v in model.variables)
    h0, hk = (1 / (1 + np.exp(-(v @ w + c))) for v in (v0, vk))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(dw), -(v0.T @ h0 - vk.T @ hk) / 5, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(db), -(v0 - vk).mean(0), atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(dc), -(h0 - hk).mean(0), atol=1e-5)


def test_cd_steps_are_reproducible_from_the_seed():
    def two_steps(seed):
        model = rbm.RBM(6, 4, rbm.Config(seed=seed, cd_k=2))
        v = np.random.default_rng(0).integers(0, 2, size=(5, 6)).astype("float32")
        energies = [float(keras.ops.convert_to_numpy(model.cd_step(v))) for _ in range(2)]
        return energies, keras.ops.convert_to_numpy(model.w)

    (first, w_first), (again, w_again), (_, w_other) = two_steps(1), two_steps(1), two_steps(2)
    assert first == again
    np.testing.assert_array_equal(w_first, w_again)
    assert not np.array_equal(w_first, w_other)


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_closed_form_equals_brute_force_and_the_oracles():
    assert rbm.z_closed_form(np.zeros((2, 3))) == 32.0
    assert rbm.z_brute_force(np.zeros((2, 3))) == 32.0
    assert rbm.z_closed_form(rbm.NOTES_W) == pytest.approx(65.23195717862367, rel=1e-14)
    assert rbm.z_brute_force(rbm.NOTES_W) == pytest.approx(65.23195717862367, rel=1e-14)
    rng = np.random.default_rng(0)
    for shape in ((2, 3), (3, 4), (4, 2)):
        w = rng.normal(size=shape)
        assert rbm.z_closed_form(w) == pytest.approx(rbm.z_brute_force(w), rel=1e-10)


@pytest.mark.skipif(BACKEND != "jax", reason="flag parsing only; runs once")
def test_bad_flags_are_one_line(capsys):
    from recipes.common import cli

    assert cli.run(rbm.main, ["--cd-k", "0"]) == 2
    assert "--cd-k" in capsys.readouterr().err
    assert cli.run(rbm.main, ["--epochs", "3"]) == 2
