"""recipes.common.text: sentences, tokens, held-out blocks and nearest words (NumPy only)."""

import numpy as np
import pytest

from recipes.common import text
from recipes.common.vocabulary import Vocabulary
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "jax", reason="NumPy only: once, not once per backend")


def test_sentences_tokens_and_heldout_blocks():
    assert text.split_sentences('One. "Two?" Three\n\nFour') == ["One.", '"Two?', "Three", "Four"]
    assert text.sentence_tokens('"It ends."') == ["it", "ends", "."]  # the assignment's "."
    assert text.sentence_tokens("no stop") == ["no", "stop"]
    train, heldout = text.split_heldout(list(range(400)))  # blocks of 20, every tenth held out
    assert heldout == [*range(180, 200), *range(380, 400)] and len(train) == 360


def test_nearest_words_by_cosine():
    vocab = Vocabulary(["a", "b", "c", "d"])
    embeddings = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    table = text.nearest_table(embeddings, vocab, ["a", "zzz"], k=2)
    assert [w for w, _ in table["a"]] == ["b", "c"] and table["zzz"] == []  # "a" is not its own
    assert table["a"][0][1] == pytest.approx(2 / np.sqrt(4.01))
    assert text.nearest_lines("T", table) == [
        "T",
        "         a: b (1.00), c (0.00)",
        "       zzz: (not in the vocabulary)",
    ]
