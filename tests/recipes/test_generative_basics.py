"""generative_basics (D 9.1-9.4): the notes' parameter counts, counting fits of binarised digits,
maximum likelihood = minimum KL on the backend, the Monte-Carlo variance Var / T."""

import json

import numpy as np
import pytest

from recipes import generative_basics as gb
from recipes.common import binary_digits, cli
from tests.conftest import BACKEND

numpy_only = pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("generative_basics")
    assert gb.main(["--quick", "--out", str(out)]) == 0
    for name in ("mle.png", "samples.png"):
        assert (out / name).stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_maximum_likelihood_reaches_the_empirical_distribution(summary):
    mle = summary["mle"]
    np.testing.assert_allclose(mle["probabilities"], mle["frequencies"], atol=1e-3)
    assert mle["mean"] == pytest.approx(mle["sample_mean"], abs=1e-3)
    assert mle["variance"] == pytest.approx(mle["biased_variance"], abs=1e-3)  # divides by N
    # KL(P_data || P_theta) = NLL - H(P_data) >= 0 falls to ~0 while the log-likelihood rises:
    # one curve is the other shifted by the data's entropy.
    nll = np.asarray(mle["nll_curve"])
    kl = nll - mle["data_entropy"]
    assert kl[0] > 0.05 and kl.min() > -1e-5 and kl[-1] < 1e-6
    assert nll[0] == pytest.approx(np.log(4), rel=1e-6)  # uniform start: logits 0
    assert np.asarray(mle["gaussian_nll_curve"])[-1] < mle["gaussian_nll_curve"][0]


def test_counts_and_the_digit_models(summary):
    assert summary["counts"] == {
        "rgb_pixel": 16_777_215,
        "full_joint_784": 2**784 - 1,
        "independent_784": 784,
        "chain_rule_equals_full_joint": True,
        "markov_784": 1_567,
    }
    digits = summary["digits"]
    assert digits["parameters"] == {"independent": 784, "markov": 1_567}  # 2n - 1, fitted
    ll = digits["held_out_log_likelihood"]
    # Binarised mnist5k, measured -207.7 and -137.5 nats per image: the neighbour helps.
    assert ll["markov"] > ll["independent"] + 40 and -250 < ll["independent"] < -150


@numpy_only
def test_fits_by_counting_and_the_monte_carlo_variance():
    rng = np.random.default_rng(0)
    x = (rng.random((500, gb.PIXELS)) < rng.random(gb.PIXELS)).astype("int8")
    np.testing.assert_array_equal(binary_digits.fit_independent(x, smoothing=0), x.mean(0))  # the MLE
    with np.errstate(invalid="ignore"):  # 0 / 0 where a pixel never follows a 0 (or a 1)
        first, given = gb.fit_markov(x, smoothing=0)
    assert first == x[:, 0].mean() and given.shape == (2, gb.PIXELS - 1)
    i = 5
    after_one = x[x[:, i - 1] == 1, i].mean()
    assert given[1, i - 1] == pytest.approx(after_one)
    # The Markov log-likelihood is the sum of the chain's conditional log-probabilities.
    first, given = gb.fit_markov(x)
    row = x[:1]
    by_hand = np.log(first if row[0, 0] else 1 - first) + sum(
        np.log(given[row[0, k - 1], k - 1] if row[0, k] else 1 - given[row[0, k - 1], k - 1])
        for k in range(1, gb.PIXELS)
    )
    assert gb.log_likelihood_markov(row, first, given)[0] == pytest.approx(by_hand, rel=1e-10)
    for t, variance in gb.mc_variances(np.random.default_rng(1), 4000).items():
        assert variance == pytest.approx(2 / t, rel=0.1)  # Var(mean of T) = Var / T, Var x^2 = 2
    assert [gb.chain_rule(n) for n in (1, 2, 3, 10)] == [1, 3, 7, 1023]


def test_bad_input_is_one_line(capsys, tmp_path):
    assert cli.run(gb.main, ["--updates", "1", "--out", str(tmp_path)]) == 2
    assert "--updates, --draws and --repeats must be at least 2" in capsys.readouterr().err
