"""nade (D 9.3): a quick run that learns, the pixel-by-pixel sampler against the exact
probabilities, the saved model, bad input."""

import itertools
import json

import keras
import numpy as np
import pytest

from recipes import nade
from recipes.common import cli
from tests.conftest import BACKEND


def make_saved_model(folder):
    """MODEL_CASES: the quick run's NADE and four binarised held-out digits."""
    assert nade.main(["--quick", "--out", str(folder)]) == 0
    x = (np.random.default_rng(0).random((4, nade.PIXELS)) > 0.8).astype("float32")
    return folder / "model.keras", x


MODEL_CASES = {"nade": make_saved_model}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("nade")
    assert nade.main(["--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_quick_run_learns(quick_run):
    out, summary = quick_run
    assert summary["parameters"] == 2 * 32 * 784 + 32 + 784  # W, V, c, b at H 32
    # Untrained: about 784 log 2 = 543 nats per digit. 16 steps: measured 324.5.
    assert summary["heldout_nll"] < 420 and summary["heldout_nll"] < summary["first_heldout_nll"]
    assert 190 < summary["independent_heldout_nll"] < 225  # 784 pixel frequencies: 205.5
    assert 0.02 < summary["sample_pixel_mean"] < 0.5
    for name in ("samples.png", "curves.png", "metrics.csv", "model.keras"):
        assert (out / name).stat().st_size > 0


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_the_sampler_draws_from_the_chain_rule_distribution():
    rng = np.random.default_rng(0)
    w, c, v, b = rng.normal(size=(4, 3)), rng.normal(size=4), rng.normal(size=(3, 4)), rng.normal(size=3)
    every = np.array(list(itertools.product([0, 1], repeat=3)), "float64")
    # Exact: the product of the conditionals, each sigmoid(b_i + V_i . sigmoid(c + W[:, :i] x[:i])).
    exact = []
    for x in every:
        p = 1.0
        for i in range(3):
            q = 1 / (1 + np.exp(-(b[i] + v[i] @ (1 / (1 + np.exp(-(c + w[:, :i] @ x[:i])))))))
            p *= q if x[i] else 1 - q
        exact.append(p)
    assert sum(exact) == pytest.approx(1.0)
    draws = nade.sample([w, c, v, b], 40_000, np.random.default_rng(1))
    codes = (draws @ [4, 2, 1]).astype(int)
    frequencies = np.bincount(codes, minlength=8) / len(draws)
    np.testing.assert_allclose(frequencies, exact, atol=0.01)


def test_bad_input_is_one_line(capsys, tmp_path):
    assert cli.run(nade.main, ["--hidden", "0", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --hidden must be at least 1 and --learning-rate positive"
    assert cli.run(nade.main, ["--limit", "10", "--out", str(tmp_path)]) == 2
    assert "10 training digits are fewer than one batch of 100" in capsys.readouterr().err


def test_the_saved_model_gives_the_layers_log_likelihood(quick_run):
    out, _ = quick_run
    model = keras.saving.load_model(out / "model.keras")
    x = (np.random.default_rng(2).random((3, nade.PIXELS)) > 0.8).astype("float32")
    logits = keras.ops.convert_to_numpy(model(x))
    by_hand = -np.sum(np.logaddexp(0, -logits) * x + np.logaddexp(0, logits) * (1 - x), axis=1)
    layer = model.get_layer("nade")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.log_prob(x)), by_hand, rtol=1e-5)
