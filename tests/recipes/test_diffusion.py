"""diffusion (D 9.7): the forward process in NumPy and in keras.ops, the DDIM and ancestral steps
against their formulas, a quick run that learns, resume, the saved U-Net, bad input."""

import json

import keras
import numpy as np
import pytest

from recipes import diffusion, engine
from recipes.common import cli
from tests.conftest import BACKEND

SCHEDULE = diffusion.schedule()


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_linear_schedule_and_forward_process_moments():
    beta, alpha_bar = SCHEDULE["beta"], SCHEDULE["alpha_bar"]
    assert (beta[0], beta[-1], len(beta)) == (1e-4, 0.02, 1000)
    assert np.all(np.diff(alpha_bar) < 0)
    # prod(1 - beta_t), computed in log space: exp(sum log(1 - beta_t)) = 4.04e-5.
    assert alpha_bar[-1] == pytest.approx(np.exp(np.log1p(-np.linspace(1e-4, 0.02, 1000)).sum()))
    assert alpha_bar[-1] == pytest.approx(4.04e-5, rel=0.01)
    digits = np.random.default_rng(0).uniform(-1, 1, 5000)
    checks = diffusion.forward_checks(diffusion.Config(), digits)
    # q(x_T | x_0): mean ~0 and variance ~1 within 0.05 over 10,000 draws.
    assert abs(checks["x_T_mean"]) < 0.05 and abs(checks["x_T_variance"] - 1) < 0.05, checks
    # The closed form has the moments of the iterated chain (10,000 draws each, t up to T).
    assert checks["closed_vs_chain_mean_gap"] < 0.05, checks
    assert checks["closed_vs_chain_variance_gap"] < 0.05, checks


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_the_chain_check_would_see_a_wrong_closed_form():
    # With alpha_t in place of abar_t (a classic slip), x_100 from x_0 = 1 keeps a mean of 0.995
    # instead of sqrt(abar_100) = 0.94: far outside the check's tolerance.
    rng = np.random.default_rng(1)
    chain = diffusion.q_chain(np.ones(10_000), 100, rng, SCHEDULE["beta"])
    wrong = diffusion.q_sample(np.ones(10_000), np.full(10_000, 100), rng.standard_normal(10_000),
                               SCHEDULE["alpha"])  # fmt: skip
    assert chain.mean() == pytest.approx(np.sqrt(SCHEDULE["alpha_bar"][99]), abs=0.02)
    assert abs(wrong.mean() - chain.mean()) > 0.05


def _quick(out, *flags):
    return diffusion.main(["--quick", *flags, "--out", str(out)])


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("diffusion")
    assert _quick(out) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_quick_run_learns_and_writes_its_outputs(quick_run):
    out, summary = quick_run
    # The output convolution starts at zero, so the untrained U-Net predicts eps = 0: MSE 1.
    # 16 steps of 16 digits: measured 0.44 held out.
    assert summary["heldout_loss"] < 0.6 and summary["loss"] < summary["first_loss"], summary
    assert summary["steps"] == 16 and summary["sampling_steps"] == 5
    assert summary["forward"]["alpha_bar_T"] == pytest.approx(4.04e-5, rel=0.01)
    assert np.isfinite([summary["fid"], summary["fid_untrained"]]).all()
    for name in ("samples.png", "reverse.png", "forward.png", "curves.png", "metrics.csv"):
        assert (out / name).stat().st_size > 0


def test_parameter_count_of_the_default_unet():
    with engine.without_weights():
        count = diffusion.build_unet(diffusion.Config()).count_params()
    assert count == 130_593


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_the_default_weight_average_forgets_the_untrained_unet():
    # Keras' use_ema starts its average at the initial weights, without a warm-up: what is left of
    # them after the default run's steps is ema ** steps. With 0.999 and 2,170 steps it was 11% of
    # the average (0.999 ** 2170 = 0.114), and its samples scored FID 166.9, where the raw weights
    # after as many steps scored 91.1 and an average with 0.99 87.1 (measured on TensorFlow).
    config = diffusion.Config()
    steps = config.epochs * (4000 // config.batch_size)
    assert config.ema**steps < 1e-3


def test_noisy_is_the_closed_form_and_the_samplers_follow_their_formulas():
    config = diffusion.Config(**diffusion.QUICK)
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, (3, 28, 28, 1)).astype("float32")
    x = rng.standard_normal(x0.shape).astype("float32")
    t = np.array([1, 400, 1000], "int32")
    got = keras.ops.convert_to_numpy(diffusion.ForwardProcess(config).noisy(x0, t, x))
    np.testing.assert_allclose(got, diffusion.q_sample(x0, t, x, SCHEDULE["alpha_bar"]), atol=1e-5)

    # A stand-in for the U-Net whose noise prediction is known: eps = x / 2.
    inputs = [keras.Input(diffusion.SHAPE), keras.Input((), dtype="int32")]
    model = keras.Model(inputs, keras.layers.Rescaling(0.5)(inputs[0]))
    sampler = diffusion.Sampler(model, config)
    assert sampler.steps() == [1000, 750, 500, 250, 1]
    eps, ab, beta = x / 2, SCHEDULE["alpha_bar"], SCHEDULE["beta"][749]
    f32 = lambda v: keras.ops.convert_to_tensor(np.float32(v))  # noqa: E731
    step = keras.ops.convert_to_tensor(np.int32(750))
    # DDIM (eta 0): x0_hat = (x - sqrt(1 - ab) eps) / sqrt(ab), clipped; then on to step 500.
    x0_hat = np.clip((x - np.sqrt(1 - ab[749]) * eps) / np.sqrt(ab[749]), -1, 1)
    want = np.sqrt(ab[499]) * x0_hat + np.sqrt(1 - ab[499]) * eps
    got = sampler._ddim(keras.ops.convert_to_tensor(x), step, f32(ab[749]), f32(ab[499]))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, atol=1e-4)
    # Ancestral: the posterior mean (x - beta / sqrt(1 - ab) eps) / sqrt(1 - beta) plus sigma z.
    mean = (x - beta / np.sqrt(1 - ab[749]) * eps) / np.sqrt(1 - beta)
    got = sampler._ancestral(keras.ops.convert_to_tensor(x), step, f32(ab[749]), f32(beta), f32(0))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(got), mean, atol=1e-4)
    z = (
        keras.ops.convert_to_numpy(
            sampler._ancestral(keras.ops.convert_to_tensor(x), step, f32(ab[749]), f32(beta), f32(1))
        )
        - mean
    )
    assert abs(z.mean()) < 0.05 and z.std() == pytest.approx(1, abs=0.05)


def make_saved_model(folder):
    """MODEL_CASES: the quick run's U-Net and two noisy digits with their steps."""
    assert _quick(folder) == 0
    x = np.random.default_rng(0).standard_normal((2, 28, 28, 1)).astype("float32")
    return folder / "model.keras", [x, np.array([10, 900], "int32")]


MODEL_CASES = {"diffusion": make_saved_model}


def test_resumed_run_equals_the_uninterrupted_run(quick_run, tmp_path, capsys):
    out, summary = quick_run
    assert _quick(tmp_path, "--epochs", "1") == 0
    assert _quick(tmp_path, "--resume") == 0  # on to the quick run's 2 epochs
    assert "Resumed from" in capsys.readouterr().out
    resumed, straight = (engine.read_metrics(d / "metrics.csv") for d in (tmp_path, out))
    assert len(resumed) == len(straight) == 2
    for a, b in zip(resumed, straight):
        assert [a["loss"], a["heldout_loss"]] == pytest.approx([b["loss"], b["heldout_loss"]], rel=1e-5)
    assert json.loads((tmp_path / "summary.json").read_text())["fid"] == pytest.approx(
        summary["fid"], rel=1e-3
    )


def test_bad_input_is_one_line(capsys, tmp_path):
    assert cli.run(diffusion.main, ["--width", "12", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --width must be a positive multiple of 8, got 12"
    assert cli.run(diffusion.main, ["--sampling-steps", "0", "--out", str(tmp_path)]) == 2
    assert "--sampling-steps must be in 1 .. 1000" in capsys.readouterr().err
