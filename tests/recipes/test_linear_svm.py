"""linear_svm (A 4.2): the Weston-Watkins hinge, three ways; C - 1 at W = 0; not CategoricalHinge."""

import json

import numpy as np
import pytest

from recipes import linear_svm
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("linear_svm")
    assert linear_svm.main(["--quick", "--out", str(out)]) == 0
    assert (out / "hinge.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_vectorised_loop_and_autodiff_agree(summary):
    assert summary["loss_loop"] == pytest.approx(summary["loss_vectorized"], rel=1e-12)
    assert summary["gradient_loop_relative_difference"] < 1e-12
    # The engine's float32 gradient of the keras.ops loss.
    assert summary["loss_autodiff"] == pytest.approx(summary["loss_vectorized"], rel=1e-5)
    assert summary["gradient_autodiff_relative_difference"] < 1e-5


def test_loss_is_c_minus_1_near_zero_and_not_categorical_hinge(summary):
    # At W = 0 each of the 9 wrong classes contributes the margin 1: exactly 9.
    assert summary["loss_at_zero_W"] == 9.0
    assert summary["loss_at_small_W"] == pytest.approx(9.0, abs=0.05)
    # Keras' CategoricalHinge keeps only the largest wrong score: 1 at W = 0.
    assert summary["keras_categorical_hinge_at_zero_W"] == pytest.approx(1.0)
    assert summary["keras_categorical_hinge_on_scores"] == pytest.approx(
        summary["keras_formula_numpy_on_scores"], rel=1e-5
    )
    assert summary["multiclass_hinge_on_scores"] == pytest.approx(
        summary["multiclass_hinge_numpy_on_scores"], rel=1e-5
    )
    assert summary["multiclass_hinge_on_scores"] > 3 * summary["keras_categorical_hinge_on_scores"]


def test_training_separates_the_classes(summary):
    assert summary["train_accuracy"] == 1.0  # an untrained model is at chance, about 0.1


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_vectorised_gradient_equals_finite_differences():
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(7, 5)), rng.integers(0, 4, size=7)
    W = 0.1 * rng.normal(size=(5, 4))
    _, grad = linear_svm.svm_loss_vectorized(W, X, y, 0.1)
    numeric = np.zeros_like(W)
    for index in np.ndindex(W.shape):
        step = np.zeros_like(W)
        step[index] = 1e-6
        plus = linear_svm.svm_loss_vectorized(W + step, X, y, 0.1)[0]
        minus = linear_svm.svm_loss_vectorized(W - step, X, y, 0.1)[0]
        numeric[index] = (plus - minus) / 2e-6
    np.testing.assert_allclose(grad, numeric, atol=1e-7)
    # Keras' form of Crammer-Singer puts the zeroed true score in the max: with all other scores
    # negative it is max(0, 1 - s_y), not max(0, 1 + max_{j != y} s_j - s_y).
    scores = np.array([[2.0, -1.0, -3.0]])
    assert linear_svm.crammer_singer_keras_form(scores, np.array([0]))[0] == 0.0
    scores = np.array([[0.5, -0.2, -3.0]])
    assert linear_svm.crammer_singer_keras_form(scores, np.array([0]))[0] == pytest.approx(0.5)
