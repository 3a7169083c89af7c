"""vae (A 9.3, D 9.5): the notes' parameter counts and KL terms, the KL against Monte Carlo through
layers.Sampling, compiled step = eager step, a quick run that learns, resume, saved decoder."""

import json
import math

import keras
import numpy as np
import pytest

from layers import Sampling
from recipes import engine, vae
from recipes.common import cli


@pytest.mark.parametrize("model", ["mlp", "conv"])
def test_parameter_counts_of_the_notes(model):
    config = vae.Config(model=model)  # N_h 500, N_z 20
    with engine.without_weights():
        counts = (vae.build_encoder(config).count_params(), vae.build_decoder(config).count_params())
    # MLP: 784*500+500 + 500*500+500 + 500*40+40 = 663,040; 20*500+500 + 500*500+500 + 500*784+784
    # = 653,784. Conv: 416 + 12,832 + 1568*40+40 = 76,008; 32,928 + 12,816 + 401 = 46,145.
    assert counts == vae.PARAMS[model] == {"mlp": (663_040, 653_784), "conv": (76_008, 46_145)}[model]


def test_kl_terms_of_the_notes_and_monte_carlo():
    def kl(mean, sigma):
        log_var = keras.ops.convert_to_tensor(2 * math.log(sigma), "float32")
        return float(vae.kl_normal(keras.ops.convert_to_tensor(mean, "float32"), log_var))

    assert kl(1.0, 1.0) == pytest.approx(0.5, abs=1e-6)
    assert kl(0.0, 2.0) == pytest.approx(0.5 * (4 - math.log(4) - 1), abs=1e-6) == 0.8068528 + 1.9e-8
    assert kl(0.0, 1.0) == 0
    # Monte Carlo through layers.Sampling: z ~ N(0.5, 1.5^2), mean of log q(z) - log p(z).
    n, mean, sigma = 200_000, 0.5, 1.5
    z = Sampling(seed=3)(
        [np.full((n, 1), mean, "float32"), np.full((n, 1), 2 * math.log(sigma), "float32")]
    )
    z = keras.ops.convert_to_numpy(z)[:, 0].astype("float64")
    assert z.mean() == pytest.approx(mean, abs=0.01) and z.std() == pytest.approx(sigma, rel=0.01)
    log_q = -0.5 * ((z - mean) / sigma) ** 2 - math.log(sigma)
    log_p = -0.5 * z**2
    assert np.mean(log_q - log_p) == pytest.approx(kl(mean, sigma), abs=0.01)


def test_compiled_step_equals_eager_step():
    config = vae.Config(hidden=16, latent=4, dropout=0.1, seed=5)
    x = (np.random.default_rng(0).random((8, 28, 28, 1)) > 0.7).astype("float32")
    results = []
    for jit in (True, False):
        engine.set_seed(config.seed)  # the same weights, noise and dropout masks
        model = vae.VAE(config)
        step = engine.function(model.step, list(model.state.values()), jit=jit)
        losses = [float(keras.ops.convert_to_numpy(step(x)["loss"])) for _ in range(2)]
        results.append((losses, model.decoder.get_weights()[0]))
    (compiled, w_compiled), (eager, w_eager) = results
    np.testing.assert_allclose(compiled, eager, rtol=1e-5)
    np.testing.assert_allclose(w_compiled, w_eager, rtol=1e-5, atol=1e-6)
    assert compiled[1] < compiled[0]


def _quick(out, *flags):
    return vae.main(["--quick", *flags, "--out", str(out)])


def make_saved_model(folder):
    """MODEL_CASES: the quick run's decoder (z -> pixel probabilities) and four latent codes."""
    assert _quick(folder) == 0
    z = np.random.default_rng(0).standard_normal((4, vae.QUICK["latent"])).astype("float32")
    return folder / "decoder.keras", z


MODEL_CASES = {"vae": make_saved_model}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae")
    assert _quick(out) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_quick_run_learns_and_writes_its_outputs(quick_run):
    out, summary = quick_run
    # An untrained decoder gives each pixel about 1/2: 784 log 2 = 543 nats. 16 steps: measured 385.
    assert summary["heldout_neg_elbo"] < 460, summary
    assert summary["heldout_neg_elbo"] < summary["first_heldout_neg_elbo"]
    assert summary["heldout_kl"] > 0.5  # the posterior moved away from the prior
    for name in ("samples.png", "reconstructions.png", "walk.png", "curves.png", "encoder.keras"):
        assert (out / name).stat().st_size > 0
    decoder = keras.saving.load_model(out / "decoder.keras")
    images = keras.ops.convert_to_numpy(decoder(np.zeros((2, 8), "float32")))
    assert images.shape == (2, 28, 28, 1) and 0 <= images.min() and images.max() <= 1


def test_resumed_run_equals_the_uninterrupted_run(quick_run, tmp_path, capsys):
    out, _ = quick_run
    assert _quick(tmp_path, "--epochs", "1") == 0
    assert _quick(tmp_path, "--resume") == 0  # on to the quick run's 2 epochs
    assert "Resumed from" in capsys.readouterr().out
    keys = ("epoch", "loss", "reconstruction", "kl", "heldout_neg_elbo")
    resumed, straight = (engine.read_metrics(d / "metrics.csv") for d in (tmp_path, out))
    assert len(resumed) == len(straight) == 2
    for a, b in zip(resumed, straight):
        assert [a[k] for k in keys] == pytest.approx([b[k] for k in keys], rel=1e-6)


def test_bad_input_is_one_line(capsys, tmp_path):
    assert cli.run(vae.main, ["--latent", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --latent and --hidden must be at least 1"
    assert cli.run(vae.main, ["--dataset", "cifar10", "--out", str(tmp_path)]) == 2
    assert "vae trains on mnist5k only: --dataset is not used" in capsys.readouterr().err
