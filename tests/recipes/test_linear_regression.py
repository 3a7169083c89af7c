"""linear_regression (B I.3.1, I.3.3): the notes' divergent lr, lr 0.005, the lab's score data."""

import json

import numpy as np
import pytest

from recipes import linear_regression as lr
from recipes.common import cli
from tests.conftest import BACKEND

numpy_only = pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("linear_regression")
    assert lr.main(["--out", str(out)]) == 0
    assert (out / "loss_curves.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


# ---- float64 NumPy, as the notes compute by hand --------------------------------------------


@numpy_only
def test_the_notes_learning_rate_diverges_beyond_the_stability_bound():
    largest, bound = lr.stability_bound(lr.X_NOTES)
    assert largest == pytest.approx(219.2094, abs=1e-4)
    assert bound == pytest.approx(0.009124, abs=1e-6) and 0.005 < bound < 0.01
    costs, _, _ = lr.descend_numpy(lr.X_NOTES, lr.Y_NOTES, 0.01, 100)
    assert costs[0] == pytest.approx(56 / 3, rel=1e-12)  # 18.666667 = mean(2^2, 4^2, 6^2)
    assert costs[1] == pytest.approx(26.413096, rel=1e-6)
    # "2.37e16": the cost the notes' loop computes at its 100th iteration, before that update.
    assert costs[99] == pytest.approx(2.370176e16, rel=1e-5)
    assert costs[100] == pytest.approx(3.368231e16, rel=1e-5)  # after the 100th update
    assert np.all(np.diff(costs) > 0)


@numpy_only
def test_a_stable_learning_rate_fits_the_notes_data():
    costs, weights, bias = lr.descend_numpy(lr.X_NOTES, lr.Y_NOTES, 0.005, 100)
    assert costs[100] == pytest.approx(0.034284, rel=1e-4)
    assert costs[99] == pytest.approx(0.034943, rel=1e-4)
    np.testing.assert_allclose(weights.ravel(), [-0.0532, 0.2506, 0.4166], atol=1e-4)
    assert bias[0] == pytest.approx(0.1660, abs=1e-4)
    predictions = (np.asarray(lr.X_NOTES) @ weights + bias).ravel()
    np.testing.assert_allclose(predictions, [1.864, 3.759, 6.161], atol=1e-3)
    slow, _, _ = lr.descend_numpy(lr.X_NOTES, lr.Y_NOTES, 0.001, 100)
    assert slow[100] == pytest.approx(0.165582, rel=1e-4)


@numpy_only
def test_the_score_data_after_20_updates():
    costs, weights, bias = lr.descend_numpy(lr.X_SCORES, lr.Y_SCORES, 1e-5, 20)
    assert costs[0] == pytest.approx(29661.8, rel=1e-9)
    assert costs[1] == pytest.approx(9298.5197, rel=1e-7)
    assert costs[10] == pytest.approx(1.897675, rel=1e-6)
    # The and the lab's 1.619033 is the float32 computation (torch.FloatTensor): the
    # errors xW + b - y of about 1 are differences of numbers about 150, so float32 keeps only
    # about five digits of them. In exact (float64) arithmetic the cost is 1.619053.
    assert costs[20] == pytest.approx(1.619053, rel=1e-6)
    costs32, _, _ = lr.descend_numpy(lr.X_SCORES, lr.Y_SCORES, 1e-5, 20, "float32")
    assert costs32[20] == pytest.approx(1.619033, rel=1e-6)
    np.testing.assert_allclose(weights.ravel(), [0.668994, 0.665952, 0.675754], atol=1e-6)
    assert bias[0] == pytest.approx(0.007797, abs=1e-6)
    predictions = (np.asarray(lr.X_SCORES) @ weights + bias).ravel()
    np.testing.assert_allclose(
        predictions, [152.8020, 183.6731, 180.9677, 197.0699, 140.1000], atol=1e-3
    )


@numpy_only
def test_flags_it_does_not_use_are_refused():
    with pytest.raises(cli.UsageError, match="--epochs"):
        lr.main(["--epochs", "3"])


# ---- float32 Keras and the engine, on every backend ------------------------------------------


def test_keras_diverges_at_the_notes_rate(summary):
    costs = np.asarray(summary["runs"]["0.01"]["costs_keras"])
    assert costs[0] == pytest.approx(18.666666, rel=1e-6)
    assert costs[99] == pytest.approx(2.370176e16, rel=1e-4)
    assert costs[100] == pytest.approx(3.368231e16, rel=1e-4)
    assert np.all(np.diff(costs) > 0)


def test_keras_fits_at_a_stable_rate_like_numpy(summary):
    run = summary["runs"]["0.005"]
    assert run["costs_keras"][100] == pytest.approx(0.034284, rel=1e-4)
    np.testing.assert_allclose(run["costs_keras"], run["costs_numpy"], rtol=1e-4)
    np.testing.assert_allclose(run["weights_keras"], run["weights_numpy"], atol=1e-5)
    assert run["bias_keras"] == pytest.approx(run["bias_numpy"], abs=1e-5)
    assert summary["runs"]["0.001"]["costs_keras"][100] == pytest.approx(0.165582, rel=1e-4)


def test_keras_on_the_score_data(summary):
    # float32 rounding moves the last digits by backend (1.619033 to 1.619063 measured); the
    # float64 value is 1.619053.
    assert summary["scores"]["costs_keras"][20] == pytest.approx(1.619053, rel=5e-5)
    assert summary["scores"]["costs_keras"][0] == pytest.approx(29661.8, rel=1e-6)


def test_the_hand_gradient_is_the_engines(summary):
    expected = np.concatenate(
        [np.ravel(g) for g in lr.hand_gradient(
            np.asarray(lr.X_NOTES, float), np.asarray(lr.Y_NOTES, float),
            np.array([[0.1], [0.2], [0.3]]), np.array([0.5]),
        )]
    )  # fmt: skip
    np.testing.assert_allclose(expected, [-1 / 3, -13 / 15, -17 / 15, -4 / 15], rtol=1e-12)
    np.testing.assert_allclose(summary["gradient_check"]["engine"], expected, rtol=1e-5)
    np.testing.assert_allclose(summary["gradient_check"]["hand"], expected, rtol=1e-5)


def test_dense_acts_on_the_last_axis_like_nn_linear(summary):
    facts = summary["linear_any_rank"]
    assert facts["output_shape"] == [2, 5, 2] and facts["kernel_shape"] == [4, 2]
    assert facts["equals_numpy"]
    assert 0.1 < facts["largest_weight"] <= facts["limit"]  # U(+-1/sqrt(4)) draws
