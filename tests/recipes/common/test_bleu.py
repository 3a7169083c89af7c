"""recipes.common.bleu: corpus BLEU (Papineni et al. 2002) by hand and against the paper's example."""

import math

import numpy as np
import pytest

from recipes.common import bleu
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "jax", reason="NumPy only: once, not once per backend")


def words(text):
    return text.split()


def test_bleu_of_a_hand_computed_example():
    refs = [words("a small red circle above a large blue square"), words("there is a small red circle")]
    hyp = words("a small red circle above a blue square")
    matches, totals, c, r = bleu.bleu_statistics([refs], [hyp])
    # 1-grams all found ("a" twice in the first reference); "a blue" is in neither; the 3- and
    # 4-grams that run into "a blue" miss. c = 8; the closest reference length is 9 (not 6).
    np.testing.assert_array_equal(matches, [8, 6, 4, 3])
    np.testing.assert_array_equal(totals, [8, 7, 6, 5])
    assert (c, r) == (8, 9)
    expected = math.exp(1 - 9 / 8) * (8 / 8 * 6 / 7 * 4 / 6 * 3 / 5) ** (1 / 4)
    assert bleu.corpus_bleu([refs], [hyp]) == pytest.approx(expected, rel=1e-12)  # 0.6753
    assert bleu.corpus_bleu([refs], [hyp], max_n=2) == pytest.approx(
        math.exp(-1 / 8) * math.sqrt(6 / 7), rel=1e-12
    )
    # Papineni's modified precision: "the" x 7 against two references counts twice, not seven times
    the = [words("the cat is on the mat"), words("there is a cat on the mat")]
    matches, totals, _, _ = bleu.bleu_statistics([the], [["the"] * 7])
    assert (matches[0], totals[0]) == (2, 7) and matches[1] == 0
    assert bleu.corpus_bleu([the], [["the"] * 7]) == 0.0  # no bigram matches, no smoothing
    # a tie between two closest lengths takes the shorter; a longer hypothesis pays no penalty
    assert bleu.bleu_statistics([[["a"] * 3, ["a"] * 5]], [["a"] * 4])[3] == 3
    assert bleu.corpus_bleu([[words("a b c d")]], [words("a b c d")]) == 1.0
    assert bleu.corpus_bleu([[words("a b c d")]], [words("a b c d a b c d")]) == pytest.approx(
        (4 / 8 * 3 / 7 * 2 / 6 * 1 / 5) ** 0.25
    )
    with pytest.raises(ValueError, match="reference"):
        bleu.corpus_bleu([[words("a b")]], [words("a b"), words("a")])


def test_corpus_bleu_pools_counts_as_in_the_papineni_example():
    # The example of Papineni et al. (2002) with two hypotheses; NLTK's documented corpus_bleu is
    # 0.5920 and sentence_bleu of the first is 0.5046.
    hyp1 = words(
        "It is a guide to action which ensures that the military always obeys the commands of the party"
    )
    ref1a = words(
        "It is a guide to action that ensures that the military will forever heed Party commands"
    )
    ref1b = words(
        "It is the guiding principle which guarantees the military forces always being under the "
        "command of the Party"
    )
    ref1c = words("It is the practical guide for the army always to heed the directions of the party")
    hyp2 = words("he read the book because he was interested in world history")
    ref2a = words("he was interested in world history because he read the book")
    references = [[ref1a, ref1b, ref1c], [ref2a]]
    assert bleu.corpus_bleu(references, [hyp1, hyp2]) == pytest.approx(0.5920778868801042, rel=1e-9)
    assert bleu.corpus_bleu(references[:1], [hyp1]) == pytest.approx(0.5045666840058485, rel=1e-9)
