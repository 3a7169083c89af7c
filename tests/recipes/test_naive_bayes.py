"""naive_bayes (A 10.3): the hand computation, scikit-learn's MultinomialNB, the argmax."""

import json
from fractions import Fraction

import numpy as np
import pytest

from recipes import naive_bayes
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("naive_bayes")
    assert naive_bayes.main(["--out", str(out)]) == 0
    assert (out / "words.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_hand_computation_on_six_messages(summary):
    # By hand, alpha = 1, |V| = 5 (lunch, meeting, money, now, win), P(spam) = P(ham) = 3/6:
    # spam has 7 words: P(win) = 4/12, P(money) = 3/12, P(now) = 3/12;
    # ham has 6 words:  P(win) = 1/11, P(money) = 2/11, P(now) = 2/11.
    spam = Fraction(1, 2) * Fraction(4, 12) * Fraction(3, 12) * Fraction(3, 12)  # 1/96
    ham = Fraction(1, 2) * Fraction(1, 11) * Fraction(2, 11) * Fraction(2, 11)  # 2/1331
    posterior = spam / (spam + ham)
    assert posterior == Fraction(1331, 1523)
    assert summary["hand_vocabulary"] == ["lunch", "meeting", "money", "now", "win"]
    assert summary["hand_posterior_spam"] == pytest.approx(float(posterior), rel=1e-12)


def test_same_posteriors_as_sklearn_and_keras_ops(summary):
    assert summary["sklearn_max_log_difference"] < 1e-10
    assert summary["sklearn_max_posterior_difference"] < 1e-10
    assert summary["ops_max_log_difference"] < 1e-4  # float32 on the backend


def test_denominator_does_not_change_the_argmax(summary):
    assert summary["argmax_unchanged_without_denominator"]
    assert summary["argmax_unchanged_notes_denominator"]
    low, high = summary["notes_score_sums"]
    assert low < 0.99 or high > 1.01  # the notes' quotient is not a probability


def test_held_out_messages_are_classified(summary):
    assert summary["held_out_accuracy"] == 1.0
    assert summary["vocabulary_size"] == len(naive_bayes.vocabulary(t for t, _ in naive_bayes.CORPUS))


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_laplace_smoothing_and_log_space():
    counts = np.array([[2.0, 0.0, 1.0], [0.0, 3.0, 0.0]])
    log_prior, log_likelihood = naive_bayes.fit(counts, [1, 0], alpha=1.0)
    # class 0 = the second message: (0 + 1, 3 + 1, 0 + 1) / (3 + 3); class 1: (3, 1, 2) / 6
    np.testing.assert_allclose(np.exp(log_likelihood), [[1 / 6, 4 / 6, 1 / 6], [3 / 6, 1 / 6, 2 / 6]])
    np.testing.assert_allclose(np.exp(log_prior), [0.5, 0.5])
    # 2,000 words: the product of probabilities underflows to 0, the log-space posterior does not.
    long = np.array([[1000.0, 0.0, 1000.0]])
    assert np.prod(np.exp(log_likelihood[1]) ** long) == 0.0
    posterior = np.exp(naive_bayes.log_posterior(long, log_prior, log_likelihood))
    np.testing.assert_allclose(posterior.sum(), 1.0)
    assert posterior[0, 1] == pytest.approx(1.0)


def test_bad_alpha_is_one_line(capsys):
    from recipes.common import cli

    assert cli.run(naive_bayes.main, ["--alpha", "0"]) == 2
    assert "--alpha must be positive" in capsys.readouterr().err
