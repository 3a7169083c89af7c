"""rnn_lm (A 1 and A 7.2): the notes' 4-grams, sizes, backward passes, perplexity."""

import json
import math

import keras
import numpy as np
import pytest

from recipes import engine, rnn_lm
from recipes.common import cli, text
from recipes.common.vocabulary import Vocabulary


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("rnn_lm")
    assert rnn_lm.main(["--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_four_grams_are_the_notes_five():
    tokens = text.sentence_tokens("no way to do business around here.")
    assert rnn_lm.make_ngrams(tokens, 4) == [
        ("no", "way", "to", "do"),
        ("way", "to", "do", "business"),
        ("to", "do", "business", "around"),
        ("do", "business", "around", "here"),
        ("business", "around", "here", "."),
    ]
    assert text.split_sentences("One two.  Three four!\n\nFive") == ["One two.", "Three four!", "Five"]


def test_vocabularies_and_britz_examples():
    sentences = text.load_sentences()
    train, heldout = text.split_heldout(sentences)
    assert len(heldout) / len(sentences) == pytest.approx(0.1, abs=0.01)
    vocab = rnn_lm.build_vocab(train, 250)
    assert len(vocab) == 250 and vocab.tokens[-1] == text.UNK and vocab.tokens[0] == "the"
    vocab = rnn_lm.build_vocab(train, 300, specials=(text.START, text.END), unknown=text.UNKNOWN)
    index = vocab.index
    assert (index[text.START], index[text.END], index[text.UNKNOWN]) == (0, 1, 299)
    x, y, weights = rnn_lm.rnn_arrays([["a"] * 45, *train[:50]], vocab, max_length=20)
    lengths = weights.sum(axis=1).astype(int)
    pieces = sum(math.ceil(len(tokens) / 19) for tokens in train[:50])
    assert (x[:, 0] == 0).all() and x.shape == (3 + pieces, 20)  # 45 words: 3 pieces of <= 19
    np.testing.assert_array_equal(lengths[:3], [20, 20, 8])
    for row, n in enumerate(lengths):
        np.testing.assert_array_equal(y[row, : n - 1], x[row, 1:n])  # y[:-1] == x[1:]
        assert y[row, n - 1] == 1 and weights[row, n:].sum() == 0  # y[-1] == SENTENCE_END
    batches = rnn_lm.bucket_batches(x, y, weights, 8, 20, np.random.default_rng(0))
    seen = [next(batches) for _ in range(math.ceil(len(x) / 8))]  # one pass
    assert sum(len(b[0]) for b in seen) == len(x)
    for bx, _, bw in seen:
        assert bx.shape[1] in (8, 16, 20) and bw.sum(axis=1).max() <= bx.shape[1]
        assert bw.sum(axis=1).max() > {8: 0, 16: 8, 20: 16}[bx.shape[1]]  # the shortest bucket
    # the unigram baseline: frequencies 2/3 and 1/3 on targets [0, 1]
    expected = math.exp(-(math.log(2 / 3) + math.log(1 / 3)) / 2)
    assert rnn_lm.unigram_perplexity([0, 0, 1], [0, 1], 3) == pytest.approx(expected)


def test_nplm_sizes_lookup_and_backward_pass_match_the_notes():
    model = rnn_lm.build_nplm(weight_decay=0.01, seed=3)
    assert model.count_params() == 92_950
    contexts = np.array([[5, 5, 7], [249, 0, 5], [7, 7, 7], [1, 2, 3]], "int32")  # repeated ids
    targets = np.array([5, 0, 249, 3])
    w0 = keras.ops.convert_to_numpy(model.get_layer("word_embedding").embeddings)
    x1 = keras.ops.convert_to_numpy(model.get_layer("x1")(model.get_layer("word_embedding")(contexts)))
    one_hot = np.eye(250, dtype="float32")[contexts]  # K_i, batch-major
    np.testing.assert_array_equal(x1, (one_hot @ w0).reshape(4, 150))
    variables = model.trainable_variables

    def loss_fn():
        logits = model(contexts)
        ce = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
        return keras.ops.mean(ce) + keras.ops.sum(model.losses)

    loss, grads = engine.value_and_grad(loss_fn, variables)
    assert float(loss) == pytest.approx(math.log(250), rel=0.01)  # ln 250 = 5.521
    weights = [keras.ops.convert_to_numpy(v) for v in variables]
    expected = rnn_lm.nplm_backward(weights, contexts, targets, weight_decay=0.01)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=1e-4, atol=1e-7)


def test_truncated_bptt_equals_autodiff_only_when_untruncated():
    model = rnn_lm.build_rnn_lm(60, hidden=8, seed=1)
    x = np.array([0, 5, 9, 5, 12, 30, 2, 7, 7, 41], "int32")
    y = np.array([5, 9, 5, 12, 30, 2, 7, 7, 41, 1], "int32")
    variables = model.trainable_variables  # E, K, W, V

    def loss_fn():
        logits = model(x[None])[0]
        return keras.ops.sum(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))

    loss, grads = engine.value_and_grad(loss_fn, variables)
    assert float(loss) / len(x) == pytest.approx(math.log(60), rel=0.01)  # ln N_x per word
    weights = [keras.ops.convert_to_numpy(v) for v in variables]
    full_loss, full = rnn_lm.truncated_bptt(weights, x, y, truncate=len(x))
    assert full_loss == pytest.approx(float(loss), rel=1e-5)
    for got, want in zip(grads, full):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(got), want, rtol=1e-4, atol=1e-6)
    _, truncated = rnn_lm.truncated_bptt(weights, x, y, truncate=4)
    np.testing.assert_allclose(truncated[3], full[3])  # dV needs no backpropagation through time
    assert np.abs(truncated[2] - full[2]).max() > 1e-3 * np.abs(full[2]).max()


def test_generated_sentences_stop_at_the_end_token():
    vocab = Vocabulary([text.START, text.END, "a", "b", text.UNKNOWN], unknown=text.UNKNOWN)
    model = rnn_lm.build_rnn_lm(len(vocab), hidden=4)
    sentences, finished = rnn_lm.generate(model, vocab, count=6, max_length=8, seed=0)
    for words, done in zip(sentences, finished):
        assert set(words) <= {"a", "b"} and (len(words) == 8 or done)


def test_quick_run_beats_the_unigram_on_heldout_text(quick_run):
    out, summary = quick_run
    for name in ("nplm", "rnn"):
        result = summary[name]
        assert result["perplexity"] < 0.8 * result["unigram_perplexity"], name
    # ln N_x at the start (the NPLM's ln 250 needs the notes' N(0, 0.01^2); --quick starts at 0.1)
    rnn = summary["rnn"]
    assert rnn["initial_loss"] == pytest.approx(math.log(rnn["vocab_size"]), rel=0.01)
    assert summary["nplm"]["vocab_size"] == 250 and summary["nplm"]["parameters"] == 92_950
    nearest = (out / "nearest.txt").read_text()
    assert all(f"{word}:" in nearest for word in ("list", "class", "return", "string"))
    assert len((out / "samples.txt").read_text().splitlines()) == 5
    for name in ("curves.png", "embeddings.png", "nplm.keras", "rnn.keras", "nplm_metrics.csv"):
        assert (out / name).stat().st_size > 0
    reloaded = keras.saving.load_model(out / "nplm.keras")
    assert reloaded.count_params() == 92_950


def context_neighbour_hits(embeddings, sentences, vocab, count=100, k=10):
    """Share of the `count` most frequent words whose nearest word by embedding cosine is among its
    `k` nearest by context: cosine of the square-rooted counts of the words before and after it."""
    size = len(vocab)
    before, after = np.zeros((size, size)), np.zeros((size, size))
    for tokens in sentences:
        ids = [vocab.index.get(w, size - 1) for w in tokens]
        np.add.at(after, (ids[:-1], ids[1:]), 1)
        np.add.at(before, (ids[1:], ids[:-1]), 1)

    def cosines(m):
        unit = m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-12)
        similarity = unit @ unit.T
        np.fill_diagonal(similarity, -np.inf)
        return similarity

    context = cosines(np.sqrt(np.hstack([before, after])[:count]))
    nearest = cosines(embeddings[:count]).argmax(axis=1)
    alike = np.argsort(-context, axis=1, kind="stable")[:, :k]
    return float(np.mean([nearest[i] in alike[i] for i in range(count)]))


def test_nplm_embeddings_put_words_of_alike_contexts_together(quick_run):
    # Chance is k / 99 = 0.1. Measured: trained 0.52-0.58, untrained 0.07-0.17 (three backends;
    # untrained: seeds 0-2).
    out, _ = quick_run
    train, _ = text.split_heldout(text.load_sentences())
    vocab = rnn_lm.build_vocab(train, 250)
    trained = keras.saving.load_model(out / "nplm.keras").get_layer("word_embedding").embeddings
    untrained = rnn_lm.build_nplm(init_scale=0.1).get_layer("word_embedding").embeddings
    hits = [
        context_neighbour_hits(keras.ops.convert_to_numpy(e), train, vocab) for e in (trained, untrained)
    ]
    assert hits[0] >= 0.35 and hits[1] <= 0.25, hits


def test_bad_arguments_are_usage_errors(tmp_path):
    with pytest.raises(cli.UsageError, match="at least"):
        rnn_lm.main(["--hidden", "0", "--out", str(tmp_path)])
    with pytest.raises(cli.UsageError, match="vocab"):
        rnn_lm.main(["--rnn-vocab", "3", "--out", str(tmp_path)])
    # No checkpoints: --resume and --overwrite are not offered, and refused when given.
    with pytest.raises(cli.UsageError, match="rnn_lm keeps no checkpoints: --resume is not used"):
        rnn_lm.main(["--resume", "--out", str(tmp_path)])
