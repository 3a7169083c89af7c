"""activations (A 2.2, B 1.2, C): closed forms, tanh = 2 sigma(2x) - 1, autodiff derivatives, Maxout."""

import json
import math

import numpy as np
import pytest

from recipes import activations
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("activations")
    assert activations.main(["--quick", "--out", str(out)]) == 0
    assert (out / "activations.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_values_are_the_closed_forms(summary):
    assert set(summary["value_errors"]) == set(activations.ACTIVATIONS)
    assert max(summary["value_errors"].values()) < 2e-6
    named = summary["named_values"]
    assert named["leaky_relu_0.1(-2)"] == pytest.approx(-0.2, abs=1e-7)
    assert named["elu(-1)"] == pytest.approx(-0.6321206, abs=1e-7)
    assert named["relu6(7)"] == 6.0
    assert named["leaky_relu_0.01(-1)"] == pytest.approx(-0.01, abs=1e-8)


def test_tanh_identity_and_derivatives(summary):
    assert summary["tanh_identity_error"] < 1e-6
    assert set(summary["derivative_errors"]) == set(activations.ACTIVATIONS)
    assert max(summary["derivative_errors"].values()) < 1e-5


def test_maxout_is_the_max_of_two_dense(summary):
    assert summary["maxout_max_difference"] < 1e-6
    assert summary["maxout_relu_difference"] < 1e-6


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_closed_forms_in_float64():
    x = np.linspace(-5, 5, 1001)
    sigmoid = activations.ACTIVATIONS["sigmoid"][1]
    assert np.abs(np.tanh(x) - (2 * sigmoid(2 * x) - 1)).max() < 1e-15
    assert activations.ACTIVATIONS["elu"][1](np.array(-1.0)) == pytest.approx(math.exp(-1) - 1)
    # Each closed-form derivative against central differences of its closed form (away from kinks).
    h = 1e-6
    x = x[np.all(np.abs(x[:, None] - np.array([0.0, 3.0, -3.0, 6.0])) > 1e-3, axis=1)]
    for name, (_, f, derivative) in activations.ACTIVATIONS.items():
        numeric = (f(x + h) - f(x - h)) / (2 * h)
        np.testing.assert_allclose(derivative(x), numeric, atol=1e-6, err_msg=name)
