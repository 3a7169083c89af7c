"""softmax_classification (B I.3.2.1-3.2.4, C): softmax, the four cost forms, the 3-class model."""

import json

import numpy as np
import pytest

from recipes import softmax_classification as softmax
from tests.conftest import BACKEND

numpy_only = pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")

# lab-06_1's printed costs after 0, 100, ..., 1000 updates: zero W, one bias shared by the classes.
LAB_COSTS = [1.098612, 0.761050, 0.689991, 0.643229, 0.604117, 0.568255, 0.533922, 0.500291,
             0.466908, 0.433507, 0.399962]  # fmt: skip


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("softmax_classification")
    assert softmax.main(["--out", str(out)]) == 0
    assert (out / "loss_curves.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


@numpy_only
def test_numpy_softmax_values():
    np.testing.assert_allclose(
        softmax.softmax_numpy([1, 2, 3]), [0.090031, 0.244728, 0.665241], atol=1e-6
    )
    # The notes' picture [2.0, 1.0, 0.1] -> [0.7, 0.2, 0.1] is this, rounded to one digit.
    notes = softmax.softmax_numpy([2.0, 1.0, 0.1])
    np.testing.assert_allclose(notes, [0.659001, 0.242433, 0.098566], atol=1e-6)
    np.testing.assert_allclose(np.round(notes, 1), [0.7, 0.2, 0.1])


@numpy_only
def test_numpy_reproduces_the_lab_and_the_per_class_bias():
    costs, predictions = softmax.descend_numpy(False, softmax.LAB_UPDATES)
    assert costs[0] == pytest.approx(np.log(3), rel=1e-12)  # 1.098612: uniform probabilities
    np.testing.assert_allclose(costs[list(softmax.PRINTED)], LAB_COSTS, atol=1e-6)
    # After the lab's 1001 updates [1, 6, 6, 6] (class 0) is taken for class 1. (SGD 0.1 ends in
    # a period-2 oscillation: after 1000 updates it is [1, 7, 5, 5] that is wrong; 0.875 both.)
    assert predictions.tolist() == [2, 2, 2, 1, 1, 1, 1, 0]
    costs, predictions = softmax.descend_numpy(True, softmax.LAB_UPDATES)
    assert costs[1000] == pytest.approx(0.248155, abs=1e-6)
    assert predictions.tolist() == softmax.Y_TRAIN


def test_softmax_through_keras_ops(summary):
    facts = summary["softmax"]
    np.testing.assert_allclose(facts["softmax_123"], [0.090031, 0.244728, 0.665241], atol=1e-6)
    np.testing.assert_allclose(facts["softmax_notes"], [0.659001, 0.242433, 0.098566], atol=1e-6)
    np.testing.assert_allclose(facts["softmax_123"], facts["softmax_123_numpy"], rtol=1e-6)
    assert facts["shift_invariant"] and facts["two_classes_is_sigmoid"]


def test_cross_entropy_forms_and_one_hot(summary):
    facts = summary["cross_entropy"]
    assert facts["minus_log_0_8"] == pytest.approx(-np.log(0.8), rel=1e-6)  # 0.2231436
    for value in facts["four_costs"].values():
        assert value == pytest.approx(facts["four_costs_numpy"], rel=1e-6)
    assert len(facts["four_costs"]) == 4 and facts["scatter_equals_one_hot"]
    assert facts["eye_one_hot"] == np.eye(5)[[2, 0, 1, 3, 4]].tolist()  # rows e3, e1, e2, e4, e5
    assert facts["one_hot_2x2"] == [[[0, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 1, 0]]]


def test_keras_reproduces_the_shared_bias_lab(summary):
    run = summary["shared_bias"]
    costs = np.asarray(run["costs_keras"])
    np.testing.assert_allclose(costs[list(softmax.PRINTED)], LAB_COSTS, rtol=1e-4)
    np.testing.assert_allclose(costs, run["costs_numpy"], rtol=1e-4)
    assert run["accuracy_keras"] == 0.875 and run["predictions_keras"] == run["predictions_numpy"]
    # Its gradient sum_c (p_c - onehot_c) / m is zero: the shared bias never moves.
    assert abs(run["shared_bias_after"]) < 1e-5


def test_keras_with_a_bias_per_class(summary):
    run = summary["per_class_bias"]
    assert run["costs_keras"][1000] == pytest.approx(0.248155, rel=1e-4)
    np.testing.assert_allclose(run["costs_keras"], run["costs_numpy"], rtol=1e-4)
    assert run["accuracy_keras"] == 1.0


def test_the_notes_random_initialisation(summary):
    run = summary["random_init"]
    # 200 NumPy draws of U(+-0.5) end within 0.234-0.276; training accuracy 0.875 at worst.
    assert run["costs"][-1] < 0.30 and run["costs"][-1] < run["costs"][0]
    assert run["accuracy"] >= 0.875
