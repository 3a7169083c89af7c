"""optimizers (D 3.2, A 10.1): the notes' update sequences, by hand and by the Keras optimizers."""

import json

import numpy as np
import pytest

from recipes import optimizers
from recipes.common import cli
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("optimizers")
    assert optimizers.main(["--quick", "--out", str(out)]) == 0
    assert (out / "trajectories.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


# (hand float64 to 1e-6 as the notes print them; Keras float32 to a relative 1e-6)
NOTES_SEQUENCES = {
    "momentum": [0.9, 0.72, 0.486],
    # Keras' Nesterov keeps the look-ahead point W - lr beta a of the notes' NAG (see below).
    "nesterov": [0.81, 0.5751, 0.327321],
    "rmsprop": [9.683772],  # Keras' own docstring example; the notes' G = rho G "-" ... is a typo
}


@pytest.mark.parametrize("name", sorted(NOTES_SEQUENCES))
def test_notes_sequences_by_hand_and_keras(summary, name):
    row = summary["sequences"][name]
    np.testing.assert_allclose(row["hand"], NOTES_SEQUENCES[name], atol=1e-6)
    np.testing.assert_allclose(row["keras"], NOTES_SEQUENCES[name], rtol=1e-6)


def test_notes_nag_is_keras_shifted_to_the_look_ahead_point(summary):
    row = summary["sequences"]["nesterov"]
    np.testing.assert_allclose(row["notes_w"], [0.9, 0.729, 0.51759], atol=1e-12)
    np.testing.assert_allclose(row["notes_look_ahead"], NOTES_SEQUENCES["nesterov"], atol=1e-12)


def test_first_steps_and_errata(summary):
    s = summary["sequences"]
    # Adadelta (rho 0.95, eps 1e-7, g = 1, lr 1): -sqrt(1e-7) / sqrt(0.05 + 1e-7).
    assert s["adadelta"]["first_step"] == pytest.approx(-0.00141421, abs=5e-9)
    assert s["adadelta"]["keras"][0] == pytest.approx(s["adadelta"]["hand"][0], abs=1e-6)
    # Adagrad (accumulator 0, lr 0.1, g = 0.5): with the root the step is lr = 0.1; the notes'
    # lr / (G + eps) g without the root (the erratum) would step 0.2. Keras' default accumulator
    # 0.1 gives 0.05 / sqrt(0.35) = 0.0845154.
    assert s["adagrad"]["first_step"] == pytest.approx(0.1, abs=1e-6)
    assert s["adagrad"]["keras"][0] == pytest.approx(0.4, abs=1e-6)
    assert s["adagrad"]["first_step_notes_no_root"] == pytest.approx(0.2, abs=1e-6)
    assert s["adagrad"]["first_step_keras_default_accumulator"] == pytest.approx(0.0845154, abs=1e-6)
    # Adam (lr 0.01, g = 0.5): Keras' eps outside the root 0.009999937, the notes' eps inside
    # 0.009998001; at g = 0.01 the forms part: 0.00707 (notes) against 0.00999 (Keras).
    assert s["adam"]["first_step"] == pytest.approx(0.009999937, abs=1e-9)
    assert s["adam"]["keras"][0] == pytest.approx(0.5 - 0.009999937, abs=1e-6)
    assert s["adam"]["first_step_notes_eps_inside"] == pytest.approx(0.009998001, abs=1e-9)
    small = s["adam"]["small_gradient_steps"]
    assert small["notes_eps_inside"] == pytest.approx(0.00707, abs=1e-5)
    assert small["keras"] == pytest.approx(0.00999, abs=1e-5)


def test_hand_trajectories_equal_keras_on_the_bowl(summary):
    assert summary["steps"] == 10 and set(summary["bowl"]) == set(optimizers.BOWL_RATES)
    for name, row in summary["bowl"].items():
        # float32 Keras against float64 NumPy from |x| = 4: measured <= 3e-5 (Adam), 1e-6 others.
        assert row["max_abs_difference"] < 1e-4, name
        paths = summary["bowl_paths"][name]
        assert len(paths["hand"]) == 11
    # They all descend except Adadelta, whose steps start at sqrt(eps) (the notes' "no learning rate").
    start = optimizers.bowl(np.array(optimizers.BOWL_START))
    assert all(r["final_loss"] < 0.5 * start for k, r in summary["bowl"].items() if k != "adadelta")
    assert 0.8 * start < summary["bowl"]["adadelta"]["final_loss"] < start


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_keras_momentum_is_the_notes_ema_form():
    """A 10.1: v <- beta v + (1 - beta) dW, W <- W - alpha v equals SGD(alpha (1 - beta), beta)."""
    alpha, beta, w, v = 0.1, 0.9, 1.0, 0.0
    ema = []
    for _ in range(5):
        v = beta * v + (1 - beta) * w
        w = w - alpha * v
        ema.append(w)
    keras_form = optimizers.hand_trajectory("momentum", [1.0], lambda w: w, alpha * (1 - beta), 5)
    assert optimizers.HYPER["beta"] == beta
    np.testing.assert_allclose(keras_form[1:, 0], ema, rtol=1e-12)


def test_bad_steps_is_one_line(capsys, tmp_path):
    assert cli.run(optimizers.main, ["--steps", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --steps must be at least 1, got 0"
