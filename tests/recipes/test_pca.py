"""pca (A 10.4): the notes' identities through keras.ops, scikit-learn, reconstruction."""

import json

import numpy as np
import pytest

from recipes import pca
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("pca")
    assert pca.main(["--quick", "--out", str(out)]) == 0
    for name in ("variance.png", "projection.png", "reconstructions.png"):
        assert (out / name).stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_trace_is_the_sum_of_eigenvalues(summary):
    assert summary["examples"] == 1000
    assert summary["eigenvalue_sum"] == pytest.approx(summary["trace"], rel=1e-5)
    assert summary["pixel_variance_sum"] == pytest.approx(summary["trace"], rel=1e-4)
    assert summary["smallest_eigenvalue_relative"] > -1e-5  # lambda_p >= 0 up to float32


def test_projected_covariance_is_diagonal_lambda(summary):
    assert summary["var_y_diagonal_error"] < 1e-5
    assert summary["var_y_off_diagonal_max"] < 1e-5
    assert summary["sigma_rebuilt_error"] < 1e-4  # Sigma = A^T D A


def test_equal_to_sklearn_up_to_sign(summary):
    assert summary["sklearn_eigenvalue_error"] < 1e-4
    assert min(summary["sklearn_component_cosines"]) > 0.999
    top = summary["eigenvalues_top"]
    assert top == sorted(top, reverse=True)


def test_reconstruction_error_falls_with_k(summary):
    errors = summary["reconstruction_errors"]
    assert all(a > b for a, b in zip(errors, errors[1:]))
    assert errors[-1] < errors[0] / 20
    # The error of k components is what the dropped eigenvalues hold.
    np.testing.assert_allclose(errors, summary["reconstruction_predicted"], rtol=2e-3, atol=1e-6)
    share = summary["components_for_percent"]
    assert share["50"] < share["90"] < share["95"] < share["99"] < 784


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_random_data_identities_in_float64():
    # The notes' check on random correlated data, NumPy float64.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 6)) @ rng.normal(size=(6, 6))
    sigma = np.cov(x, rowvar=False)
    values, vectors = np.linalg.eigh(sigma)
    a = vectors[:, ::-1].T
    values = values[::-1]
    np.testing.assert_allclose(np.trace(sigma), values.sum())
    y = (x - x.mean(0)) @ a.T
    np.testing.assert_allclose(np.cov(y, rowvar=False), np.diag(values), atol=1e-10)
    np.testing.assert_allclose(a.T @ np.diag(values) @ a, sigma, atol=1e-10)
