"""The committed digit classifier and the Frechet distance behind the GANs' quality score."""

import numpy as np
import pytest
from scipy import linalg

from recipes.common import quality


def test_committed_classifier_is_accurate_on_held_out_mnist5k_digits():
    x_train, _, x_test, y_test = quality.digit_split()
    assert len(x_train) == 4000 and len(x_test) == 1000
    assert quality.accuracy(quality.load_classifier(), x_test, y_test) >= 0.97


def test_features_equal_those_computed_at_training_time():
    # The artifact stores features computed on the backend that trained it; every backend must
    # compute the same ones from the same weights.
    images = quality.digit_split()[2][: quality.NUM_REFERENCE]
    np.testing.assert_allclose(
        quality.features(images), quality.reference_features(), rtol=1e-4, atol=1e-4
    )


def test_frechet_distance_matches_closed_form():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((500, 3))
    b = rng.standard_normal((400, 3)) @ np.diag([1.0, 2.0, 0.5]) + 1.0
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root_a = linalg.sqrtm(cov_a).real
    # Tr sqrtm(Ca Cb) = Tr sqrtm(Ca^1/2 Cb Ca^1/2), a symmetric form.
    cross = np.trace(linalg.sqrtm(root_a @ cov_b @ root_a).real)
    expected = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * cross
    assert quality.frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert quality.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_score_separates_real_digits_from_noise():
    # The reference set is the held-out split: real digits it has never seen score about 2.
    x_train, _, x_test, _ = quality.digit_split()
    real = quality.score(x_train[: len(x_test)])
    noise = quality.score(np.random.default_rng(0).uniform(size=x_test.shape).astype("float32"))
    assert quality.score(x_test)["fid"] == pytest.approx(0.0, abs=1e-3)
    assert real["fid"] < 5.0
    assert noise["fid"] > 100 * real["fid"]
    assert real["confidence"] > 0.95
    assert real["class_entropy"] == pytest.approx(np.log(10), abs=0.01)
