"""recipes.common.vocabulary: the orders, sizes and unknown-token rules every text recipe relies on."""

import pytest

from recipes.common.vocabulary import Vocabulary
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(BACKEND != "jax", reason="Python only: once, not once per backend")
TEXT = [["b", "a", "c", "a"], ["c", "d", "b", "a"]]  # a x3, b x2, c x2, d x1; first seen b, a, c, d


def test_orders():
    assert Vocabulary.build(TEXT).tokens == ["a", "b", "c", "d"]
    assert Vocabulary.build(TEXT, order="frequency").tokens[1:3] == ["b", "c"]  # ties: first seen
    assert Vocabulary.build([["c", "b", "b", "c"]], order="frequency-alphabetical").tokens == ["b", "c"]
    assert Vocabulary.build(TEXT, order="first-appearance").tokens == ["b", "a", "c", "d"]
    assert Vocabulary.build(TEXT, order="alphabetical").tokens == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="order"):
        Vocabulary.build(TEXT, order="random")


def test_specials_unknown_and_size():
    vocab = Vocabulary.build(TEXT, specials=("<pad>", "<eos>"), unknown="<unk>", max_size=5)
    assert vocab.tokens == ["<pad>", "<eos>", "<unk>", "a", "b"]
    last = Vocabulary.build(TEXT, specials=("S",), unknown="U", unknown_last=True, max_size=4)
    assert last.tokens == ["S", "a", "b", "U"]
    assert last.encode(["a", "zzz", "b"]) == [1, 3, 2]
    with pytest.raises(ValueError, match="no room"):
        Vocabulary.build(TEXT, specials=("S",), unknown="U", max_size=2)


def test_encode_decode():
    vocab = Vocabulary.build(TEXT, specials=("<pad>", "<sos>", "<eos>"))
    ids = vocab.encode(["a", "d"])
    assert ids == [3, 6] and len(vocab) == 7 and "d" in vocab
    assert vocab.decode([1, 3, 0, 6, 2, 4], end=2, skip=(0, 1)) == ["a", "d"]
    with pytest.raises(KeyError, match="zzz"):
        vocab.encode(["a", "zzz"])
    with pytest.raises(ValueError, match="distinct"):
        Vocabulary(["a", "a"])
