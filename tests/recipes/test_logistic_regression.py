"""logistic_regression (B I.3.2.2, 2.1.1, C): the lab's costs, W and b, the boundary, C's loss."""

import json

import numpy as np
import pytest

from recipes import logistic_regression as logistic
from tests.conftest import BACKEND

numpy_only = pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")

# lab-05's printed costs after 0, 100, ..., 1000 updates (zero initialisation, SGD lr 1).
LAB_COSTS = [0.693147, 0.134722, 0.080643, 0.057900, 0.045300, 0.037261, 0.031673, 0.027556,
             0.024394, 0.021888, 0.019852]  # fmt: skip


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("logistic_regression")
    assert logistic.main(["--out", str(out)]) == 0
    assert (out / "decision_boundary.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


@numpy_only
def test_numpy_reproduces_the_lab():
    costs, weights, bias = logistic.descend_numpy(logistic.LAB_UPDATES)
    assert costs[0] == pytest.approx(np.log(2), rel=1e-12)  # 0.693147: h = 1/2 everywhere
    np.testing.assert_allclose(costs[list(logistic.PRINTED)], LAB_COSTS, atol=1e-6)
    # W and b of the issue are those after the lab's 1001 updates (after 1000: [3.2521, 1.5174],
    # -14.4777).
    np.testing.assert_allclose(weights.ravel(), [3.2530, 1.5179], atol=1e-4)
    assert bias[0] == pytest.approx(-14.4819, abs=1e-4)
    h = logistic.sigmoid(np.asarray(logistic.X_TRAIN) @ weights + bias).ravel()
    np.testing.assert_allclose(h, [0.000276, 0.0316, 0.0390, 0.9562, 0.9982, 0.9997], atol=1e-4)


def test_keras_reproduces_the_lab(summary):
    notes = summary["notes"]
    keras_costs = np.asarray(notes["costs_keras"])
    np.testing.assert_allclose(keras_costs[list(logistic.PRINTED)], LAB_COSTS, rtol=1e-4)
    np.testing.assert_allclose(keras_costs, notes["costs_numpy"], rtol=1e-4)
    np.testing.assert_allclose(notes["weights_keras"], [3.2530, 1.5179], atol=2e-4)
    assert notes["bias_keras"] == pytest.approx(-14.4819, abs=2e-4)
    np.testing.assert_allclose(notes["train_probabilities"], notes["probabilities_numpy"], atol=1e-5)


def test_every_point_is_classified(summary):
    notes = summary["notes"]
    assert notes["train_accuracy"] == 1.0 and notes["test_accuracy"] == 1.0
    np.testing.assert_allclose(notes["test_probabilities"], [0.000276, 0.0316, 0.0390], atol=1e-4)
    # The notes' hand-written BCE (y_train in both terms) is Keras' BinaryCrossentropy.
    assert notes["bce_manual"] == pytest.approx(notes["bce_keras"], rel=1e-5)
    assert notes["bce_manual"] == pytest.approx(notes["costs_numpy"][-1], rel=1e-4)


def test_the_notes_random_initialisation_ends_near_the_lab(summary):
    run = summary["random_init"]
    # 200 NumPy seeds of nn.Linear's U(+-1/sqrt(2)) end within 0.01967-0.02001 after 1000 updates.
    assert 0.0190 < run["costs"][-1] < 0.021 and run["costs"][0] > 0.3
    assert run["train_accuracy"] == 1.0 and run["test_accuracy"] == 1.0


def test_the_slides_squared_error_without_bias_cannot_separate(summary):
    slide = summary["slide_mse_no_bias"]
    assert slide["costs"][0] == pytest.approx(0.25, rel=1e-6)  # (1/2 - y)^2 at w = 0
    assert slide["costs"][-1] == pytest.approx(slide["l0_by_hand"], rel=1e-5)
    assert slide["costs"][-1] == pytest.approx(0.165067, rel=1e-4)  # float64 NumPy replica
    # No line through the origin separates (3, 1) from (6, 2) = 2 (3, 1): at most 5 of 6.
    assert slide["train_accuracy"] == pytest.approx(5 / 6)
