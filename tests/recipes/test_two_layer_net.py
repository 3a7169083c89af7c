"""two_layer_net (A 5.2): the gradient check, ln C at the start, the Keras twin."""

import json
import math

import pytest

from recipes import two_layer_net
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("two_layer_net")
    assert two_layer_net.main(["--quick", "--out", str(out)]) == 0
    return json.loads((out / "summary.json").read_text())


def test_keras_twin_equals_numpy(summary):
    assert summary["keras_loss"] == pytest.approx(two_layer_net.TOY_LOSS, rel=1e-6)
    # The engine's float32 gradients against the float64 NumPy ones, relative to the largest.
    assert summary["keras_gradient_relative_difference"] < 1e-5
    assert summary["sgd_step_difference"] < 1e-6


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_gradient_check_and_initial_loss(summary):
    # cs231n's toy loss, and relative errors below 1e-8 with the exact log-softmax.
    assert summary["toy_loss"] == pytest.approx(1.30378789133, abs=1e-11)
    assert set(summary["relative_errors"]) == {"W1", "b1", "W2", "b2"}
    assert max(summary["relative_errors"].values()) < 1e-8
    # The notes' -log(z + 1e-7) is not the function their gradient differentiates: the check
    # fails (W1 about 2e-5).
    assert summary["relative_errors_with_notes_epsilon"]["W1"] > 1e-6
    # std = 1e-4, reg = 0: a uniform softmax, ln C.
    assert summary["initial_loss_toy"] == pytest.approx(math.log(3), abs=1e-4)  # 1.0986
    assert summary["initial_loss_10_classes"] == pytest.approx(math.log(10), abs=1e-4)  # 2.3026
