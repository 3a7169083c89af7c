"""recipes.wgan on the current backend: clipping, critic update count, the gradient penalty, outputs."""

import csv
import json
import zipfile

import keras
import numpy as np
import pytest
from keras import ops

from layers import SpaceToDepthConv2D
from recipes import engine, wgan
from tests.conftest import BACKEND, run_module

CRITIC_STEPS = 5


def tiny_config(penalty, **overrides):
    """Fixed-seed, narrow networks (critic 4/8 channels), batch 8: the parity and clipping cases."""
    return wgan.Config(seed=7, width=0.125, batch_size=8, penalty=penalty, **overrides)


def parity_inputs(penalty):
    """Five steps of: n_critic real digit batches in [-1, 1], the critic and generator noise, and
    (gp) the interpolation weights."""
    from datasets import load_digits28, to_float

    real = to_float(load_digits28()[0][: 5 * CRITIC_STEPS * 8], wgan.VALUE_RANGE)
    rng = np.random.default_rng(4321)
    inputs = {
        "real": real.reshape(5, CRITIC_STEPS, 8, 28, 28, 1),
        "z_critic": rng.standard_normal((5, CRITIC_STEPS, 8, 100)).astype("float32"),
        "z_generator": rng.standard_normal((5, 8, 100)).astype("float32"),
    }
    if penalty == "gp":
        inputs["epsilon"] = rng.uniform(size=(5, CRITIC_STEPS, 8)).astype("float32")
    return inputs


PARITY_CASES = {
    "wgan": (lambda: wgan.WGAN(tiny_config("clip")), lambda: parity_inputs("clip")),
    "wgan_gp": (lambda: wgan.WGAN(tiny_config("gp")), lambda: parity_inputs("gp")),
}


def critic_weights(critic):
    """Every trainable critic weight: kernels, biases, BatchNorm gamma and beta."""
    return [ops.convert_to_numpy(v.value) for v in critic.trainable_weights]


def test_defaults_are_algorithm_1_and_the_gp_paper():
    clip = wgan.WGAN(wgan.Config())
    assert isinstance(clip.c_optimizer, keras.optimizers.RMSprop)
    assert isinstance(clip.g_optimizer, keras.optimizers.RMSprop)
    assert float(clip.c_optimizer.learning_rate) == pytest.approx(5e-5)
    assert clip.config.clip_value == 0.01 and clip.config.batch_size == 64
    assert clip.config.critic_steps == 5
    # Clipping on every trainable critic weight (BatchNorm gamma and beta included), none in G.
    assert all(v.constraint.clip_value == 0.01 for v in clip.critic.trainable_weights)
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in clip.critic.layers)
    assert all(v.constraint is None for v in clip.generator.weights)
    # No sigmoid: the critic's last layer is linear.
    assert clip.critic.layers[-1].activation is keras.activations.linear
    gp = wgan.WGAN(wgan.Config(penalty="gp"))
    assert isinstance(gp.c_optimizer, keras.optimizers.Adam)
    assert float(gp.c_optimizer.learning_rate) == pytest.approx(1e-4)
    assert (gp.c_optimizer.beta_1, gp.c_optimizer.beta_2) == (0.0, 0.9)
    assert gp.config.gp_weight == 10.0
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in gp.critic.layers)
    # The GP critic's strided convolutions are layers.SpaceToDepthConv2D (tests/layers/test_conv.py).
    assert sum(isinstance(layer, SpaceToDepthConv2D) for layer in gp.critic.layers) == 2
    assert all(v.constraint is None for v in gp.critic.weights)


def test_wasserstein_estimate():
    real = np.array([[0.5], [0.1], [0.3]], "float32")
    fake = np.array([[-0.2], [0.4]], "float32")
    assert float(wgan.wasserstein_estimate(real, fake)) == pytest.approx(0.3 - 0.1)


def test_clipping_and_n_critic_updates_per_generator_update():
    gan, make_inputs = wgan.WGAN(tiny_config("clip")), PARITY_CASES["wgan"][1]
    # N(0, 0.02) initial weights: many lie outside [-c, c] before the first update.
    assert max(np.abs(w).max() for w in critic_weights(gan.critic)) > 0.03
    # The step test_parity.py compiles for the "wgan" case (JAX reuses it from its compilation cache).
    step = engine.function(gan.train_step, list(gan.state.values()))
    inputs = make_inputs()
    for i in range(2):
        step(*[array[i] for array in inputs.values()])
        assert int(ops.convert_to_numpy(gan.c_optimizer.iterations)) == CRITIC_STEPS * (i + 1)
        assert int(ops.convert_to_numpy(gan.g_optimizer.iterations)) == i + 1
        weights = critic_weights(gan.critic)
        # Two conv kernels and biases, BatchNorm gamma and beta, the output kernel and bias.
        assert len(weights) == 8
        for weight in weights:
            assert np.abs(weight).max() <= 0.01 + 1e-9
        # Clipping is active: kernels sit at the bound.
        assert np.isclose(np.abs(weights[0]).max(), 0.01)


# ---------------------------------------------------------------------------------------------
# The gradient penalty against finite differences (float64 NumPy)


def numpy_critic(params, x):
    """f(x) = tanh(flatten(x) W1 + b1) W2 + b2 for (N, 2, 2, 1) inputs, float64."""
    w1, b1, w2, b2 = params
    return (np.tanh(x.reshape(len(x), -1) @ w1 + b1) @ w2 + b2)[:, 0]


def numpy_input_gradients(params, x, h=1e-6):
    """Central differences of f with respect to every input value: (N, 2, 2, 1)."""
    grads = np.zeros_like(x)
    for index in np.ndindex(x.shape[1:]):
        step = np.zeros_like(x)
        step[(slice(None), *index)] = h
        grads[(slice(None), *index)] = (
            numpy_critic(params, x + step) - numpy_critic(params, x - step)
        ) / (2 * h)
    return grads


def numpy_penalty(params, real, fake, epsilon):
    x_hat = epsilon[:, None, None, None] * real + (1 - epsilon[:, None, None, None]) * fake
    norms = np.sqrt((numpy_input_gradients(params, x_hat) ** 2).reshape(len(x_hat), -1).sum(axis=1))
    return np.mean((norms - 1) ** 2), norms


def test_gradient_penalty_matches_finite_differences():
    """Nested engine.value_and_grad: the input-gradient norms and d penalty / d weights."""
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (3, 2, 2, 1)).astype("float32")
    fake = rng.uniform(-1, 1, (3, 2, 2, 1)).astype("float32")
    epsilon = np.array([0.2, 0.5, 0.9], "float32")
    params = [
        rng.normal(0, 0.8, (4, 5)),
        rng.normal(0, 0.3, 5),
        rng.normal(0, 0.8, (5, 1)),
        np.array([0.1]),
    ]
    critic = keras.Sequential(
        [
            keras.Input((2, 2, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(5, "tanh"),
            keras.layers.Dense(1),
        ]
    )
    critic.set_weights([p.astype("float32") for p in params])

    def penalty_and_grads():
        return engine.value_and_grad(
            lambda: wgan.gradient_penalty(critic, real, fake, epsilon),
            critic.trainable_variables,
            has_aux=True,
        )

    # Compiled as in a training step (and one compilation instead of many eager JAX operations).
    (penalty, norms), grads = engine.function(penalty_and_grads, [critic])()
    real64, fake64, eps64 = (a.astype("float64") for a in (real, fake, epsilon))
    want_penalty, want_norms = numpy_penalty(params, real64, fake64, eps64)
    assert np.all(np.abs(want_norms - 1) > 0.1)  # The penalty is not at its minimum.
    np.testing.assert_allclose(ops.convert_to_numpy(norms), want_norms, rtol=1e-5)
    assert float(penalty) == pytest.approx(want_penalty, rel=1e-5)

    h = 1e-4
    for i, (param, grad) in enumerate(zip(params, grads)):
        numeric = np.zeros_like(param)
        for index in np.ndindex(param.shape):
            shifted = [p.copy() for p in params], [p.copy() for p in params]
            shifted[0][i][index] += h
            shifted[1][i][index] -= h
            plus = numpy_penalty(shifted[0], real64, fake64, eps64)[0]
            minus = numpy_penalty(shifted[1], real64, fake64, eps64)[0]
            numeric[index] = (plus - minus) / (2 * h)
        np.testing.assert_allclose(
            ops.convert_to_numpy(grad), numeric, rtol=1e-3, atol=1e-5, err_msg=f"weight {i}"
        )
    # The output bias does not change the input gradient; the penalty does not depend on it.
    assert np.abs(ops.convert_to_numpy(grads[3])).max() < 1e-6


def numpy_conv_same(x, kernel, bias, stride=2):
    """Keras Conv2D(padding="same", strides=2) in float64 NumPy, NHWC."""
    k = kernel.shape[0]
    out_size = -(-x.shape[1] // stride)
    pad = max((out_size - 1) * stride + k - x.shape[1], 0)
    padded = np.pad(x, ((0, 0), (pad // 2, pad - pad // 2), (pad // 2, pad - pad // 2), (0, 0)))
    span = (out_size - 1) * stride + 1
    out = sum(
        padded[:, i : i + span : stride, j : j + span : stride, :] @ kernel[i, j]
        for i in range(k)
        for j in range(k)
    )
    return out + bias


def numpy_conv_critic(weights, x, slope):
    """The recipe's convolutional GP critic (conv, lrelu, conv, lrelu, dense) in float64 NumPy."""
    k1, b1, k2, b2, w, b = weights
    lrelu = lambda a: np.where(a > 0, a, slope * a)  # noqa: E731
    h = lrelu(numpy_conv_same(lrelu(numpy_conv_same(x, k1, b1)), k2, b2))
    return (h.reshape(len(h), -1) @ w + b)[:, 0]


def test_conv_critic_input_gradient_matches_finite_differences():
    """The recipe's convolutional critic: the norms inside the penalty against central differences."""
    config = tiny_config("gp")
    critic = wgan.build_critic(config)
    rng = np.random.default_rng(1)
    weights = [rng.normal(0, 0.1, v.shape).astype("float32") for v in critic.weights]
    critic.set_weights(weights)
    real = rng.uniform(-1, 1, (2, 28, 28, 1)).astype("float32")
    fake = rng.uniform(-1, 1, (2, 28, 28, 1)).astype("float32")
    epsilon = np.array([0.3, 0.8], "float32")
    norms = engine.function(lambda: wgan.gradient_penalty(critic, real, fake, epsilon)[1], [critic])()

    weights64 = [w.astype("float64") for w in weights]
    x_hat = (epsilon[:, None, None, None] * real + (1 - epsilon[:, None, None, None]) * fake).astype(
        "float64"
    )
    # The NumPy critic is the Keras one.
    np.testing.assert_allclose(
        numpy_conv_critic(weights64, x_hat, config.leaky_slope),
        ops.convert_to_numpy(critic(x_hat.astype("float32")))[:, 0],
        rtol=1e-4,
        atol=1e-5,
    )
    h = 1e-6
    steps = h * np.eye(28 * 28).reshape(-1, 28, 28, 1)
    for example, norm in zip(x_hat, ops.convert_to_numpy(norms)):
        plus = numpy_conv_critic(weights64, example + steps, config.leaky_slope)
        minus = numpy_conv_critic(weights64, example - steps, config.leaky_slope)
        numeric = (plus - minus) / (2 * h)
        assert float(norm) == pytest.approx(np.linalg.norm(numeric), rel=1e-4)


# ---------------------------------------------------------------------------------------------
# Runs


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("penalty", ["clip", "gp"])
def test_quick_run_writes_its_outputs(penalty, tmp_path):
    out = tmp_path / penalty
    assert wgan.main(["--quick", "--penalty", penalty, "--out", str(out)]) == 0
    for name in ["samples/epoch-001.png", "samples/epoch-002.png", "samples.png", "losses.png"]:
        assert (out / name).stat().st_size > 200, name
    assert (out / "wasserstein.png").stat().st_size > 2000
    rows = read_rows(out / "metrics.csv")
    assert [int(float(row["epoch"])) for row in rows] == [1, 2]
    keys = {"c_loss", "g_loss", "wasserstein", "fid"} | ({"penalty"} if penalty == "gp" else set())
    assert keys <= set(rows[0])
    for row in rows:
        assert all(np.isfinite(float(row[key])) for key in keys)
        if penalty == "clip":  # The critic loss is minus the estimate.
            assert float(row["c_loss"]) == pytest.approx(-float(row["wasserstein"]), rel=1e-4, abs=1e-7)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == BACKEND and summary["epochs"] == 2
    generator_updates = 2 * wgan.QUICK["steps_per_epoch"]
    assert summary["generator_updates"] == generator_updates
    assert summary["critic_updates"] == wgan.QUICK["critic_steps"] * generator_updates
    assert summary["untrained"]["fid"] > 500

    # Plain Keras files: no layer or constraint of this project inside, so they load anywhere.
    for name in ("generator.keras", "critic.keras"):
        with zipfile.ZipFile(out / name) as archive:
            config = archive.read("config.json").decode()
        assert "layers>" not in config and "SpaceToDepth" not in config, name
    generator = keras.saving.load_model(out / "generator.keras")
    critic = keras.saving.load_model(out / "critic.keras")
    z = np.random.default_rng(0).normal(size=(3, 100)).astype("float32")
    images = ops.convert_to_numpy(generator(z))
    assert images.shape == (3, 28, 28, 1) and images.min() >= -1 and images.max() <= 1
    assert ops.convert_to_numpy(critic(images)).shape == (3, 1)
    weights = critic_weights(critic)
    if penalty == "clip":
        assert max(np.abs(w).max() for w in weights) <= 0.01 + 1e-9
    else:
        assert max(np.abs(w).max() for w in weights) > 0.01  # Nothing clips the GP critic.


def test_bad_argument_fails_with_one_line(tmp_path):
    proc = run_module("recipes.wgan", "--critic-steps", "0", "--out", tmp_path / "out", timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "error: --critic-steps must be at least 1, got 0"
    assert not (tmp_path / "out").exists()


def test_recipe_list_names_wgan_and_its_section():
    from recipes.__main__ import catalog

    assert ("wgan", "A 9.6") in [(name, section) for name, section, _ in catalog()]
