"""svm (A 10.5): primal by gradient descent, the notes' dual, scikit-learn, the RBF kernel."""

import json

import numpy as np
import pytest

from recipes import svm
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("svm")
    assert svm.main(["--quick", "--out", str(out)]) == 0
    assert (out / "svm.png").stat().st_size > 0 and (out / "objective.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_primal_by_gradient_descent_agrees_with_sklearn(summary):
    assert summary["bound"] == pytest.approx(1 / (2 * 100 * 0.01))  # C = 1/(2 n lambda) = 0.5
    assert summary["cosine_primal_sklearn"] > 0.99
    assert summary["last_cost"] < summary["first_cost"] / 3
    # The descended cost (Keras' Hinge + L2, float32) is the notes' objective at the final w, b.
    assert summary["last_cost"] == pytest.approx(summary["cost_numpy_at_end"], rel=1e-5)
    assert summary["objectives"]["primal_gd"] == pytest.approx(
        summary["objectives"]["sklearn"], rel=1e-2
    )
    assert summary["b_primal"] == pytest.approx(summary["b_sklearn"], abs=0.05)


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy/SciPy-only; runs once")
def test_dual_satisfies_the_notes_constraints(summary):
    assert summary["qp_success"]
    assert abs(summary["sum_c_y"]) < 1e-8  # sum c_i y_i = 0
    assert summary["c_min"] >= 0 and summary["c_max"] <= summary["bound"]
    assert summary["cosine_dual_sklearn"] > 0.99999
    np.testing.assert_allclose(summary["w_dual"], summary["w_sklearn"], rtol=1e-3)
    assert summary["b_dual"] == pytest.approx(summary["b_sklearn"], abs=1e-3)
    # c_i = 0: beyond the margin; 0 < c_i < C: on it (y f = 1); c_i = C: inside it.
    assert summary["margin_of_zero_c_min"] >= 1 - 1e-6
    np.testing.assert_allclose(summary["margin_of_margin_vectors"], 1.0, atol=1e-6)
    assert summary["margin_of_bound_c_max"] <= 1 + 1e-6
    assert summary["dual_support_vectors"] == summary["sklearn_support_vectors"]
    assert summary["on_margin"] >= 1
    # Strong duality: the dual value (rescaled by 2 lambda) is the primal optimum.
    assert summary["dual_value"] == pytest.approx(summary["objectives"]["dual_qp"], rel=1e-6)
    assert summary["objectives"]["dual_qp"] == pytest.approx(summary["objectives"]["sklearn"], rel=1e-5)
    assert summary["margin_width"] == pytest.approx(2 / np.linalg.norm(summary["w_dual"]))


@pytest.mark.skipif(BACKEND != "jax", reason="scikit-learn only; runs once")
def test_rbf_kernel_separates_the_circles(summary):
    assert summary["rbf_held_out_accuracy"] > 0.95
    assert summary["linear_held_out_accuracy_on_circles"] < 0.75


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy/SciPy-only; runs once")
def test_dual_on_separable_points_is_the_hard_margin():
    # Four separable points, tiny lambda: the hard margin of the notes, w.x - b = +-1 through
    # (0, 1) and (0, -1): w = (0, 1), b = 0, margin 2/|w| = 2.
    x = np.array([[0.0, 1.0], [1.0, 2.0], [0.0, -1.0], [-1.0, -3.0]], "float32")
    y = np.array([1.0, 1.0, -1.0, -1.0], "float32")
    sol = svm.dual(x, y, lam=1e-4)
    np.testing.assert_allclose(sol["w"], [0.0, 1.0], atol=1e-6)
    assert sol["b"] == pytest.approx(0.0, abs=1e-6)
    np.testing.assert_allclose(sol["c"], [0.5, 0.0, 0.5, 0.0], atol=1e-6)


def test_bad_lambda_is_one_line(capsys):
    from recipes.common import cli

    assert cli.run(svm.main, ["--lam", "0"]) == 2
    assert "--lam" in capsys.readouterr().err
