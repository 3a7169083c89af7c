"""rnn_lm's data: vocabularies, the NPLM's 4-grams and the RNN's padded sentences (NumPy, outside the
models). The sentences themselves come from `recipes.common.text` (split into training and held-out
text there: every tenth block of 20 sentences is held out)."""

import numpy as np

from recipes.common import cli, text
from recipes.common.vocabulary import Vocabulary

BUCKETS = (8, 16, 24, 32)  # RNN batches are padded to the shortest of these (or --max-length) that fits


def build_vocab(token_lists, size, specials=(), unknown=text.UNK):
    """`specials`, then the most frequent words (ties alphabetical), then `unknown`: `size` in all.

    NPLM: the 249 most frequent training words and <unk> (id 249), as the assignment's 250 words.
    RNN: SENTENCE_START = 0 and SENTENCE_END = 1 (fixed here; Britz's got those ids by being the
    most frequent tokens), the most frequent words, UNKNOWN_TOKEN = N_x - 1.
    """
    try:
        return Vocabulary.build(
            token_lists,
            specials=specials,
            order="frequency-alphabetical",
            max_size=size,
            unknown=unknown,
            unknown_last=True,
        )
    except ValueError:
        raise cli.UsageError(f"a vocabulary of {size} leaves no room for words") from None


def make_ngrams(tokens, n=4):
    """The n-grams of one sentence, in order (none that crosses the sentence's ends).

    A sentence that ends in . ! or ? has "." as its last token, as in the assignment's
    "business around here .".
    """
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def ngram_arrays(token_lists, vocab, n=4):
    """(contexts (N, n-1), targets (N,)) int32 ids of every n-gram inside the sentences; words
    outside the vocabulary get the unknown id."""
    grams = [vocab.encode(g) for tokens in token_lists for g in make_ngrams(tokens, n)]
    grams = np.array(grams, "int32").reshape(-1, n)
    return grams[:, :-1], grams[:, -1]


def rnn_arrays(token_lists, vocab, max_length):
    """Britz's examples, one per sentence, padded: x, y, weights, each (N, max_length).

    x = START w1 .. wn, y = w1 .. wn END; a sentence of more than max_length - 1 words is cut into
    pieces, each its own example. Padding repeats END with weight 0.
    """
    start, end = vocab.index[text.START], vocab.index[text.END]
    pieces = []
    for tokens in token_lists:
        ids = vocab.encode(tokens)
        for i in range(0, max(len(ids), 1), max_length - 1):
            pieces.append(ids[i : i + max_length - 1])
    x = np.full((len(pieces), max_length), end, "int32")
    y = np.full((len(pieces), max_length), end, "int32")
    weights = np.zeros((len(pieces), max_length), "float32")
    for row, ids in enumerate(pieces):
        x[row, : len(ids) + 1] = [start, *ids]
        y[row, : len(ids) + 1] = [*ids, end]
        weights[row, : len(ids) + 1] = 1.0
    return x, y, weights


def bucket_batches(x, y, weights, batch_size, max_length, rng):
    """Endless shuffled batches of sentences of similar length, each padded to a bucket length.

    Sorting by length before batching cuts the padding from about 60% of the positions (every
    sentence padded to max_length) to about 10%; a few bucket lengths keep JAX's compiles few.
    """
    lengths = weights.sum(axis=1).astype(int)
    buckets = sorted({b for b in BUCKETS if b < max_length} | {max_length})
    order = np.argsort(lengths, kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    while True:
        for b in rng.permutation(len(batches)):
            rows = batches[b]
            width = next(w for w in buckets if w >= lengths[rows].max())
            yield x[rows, :width], y[rows, :width], weights[rows, :width]
