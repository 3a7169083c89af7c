"""word2vec (A 1): windows, subsampling, the model's scores, held-out quality."""

import json

import keras
import numpy as np
import pytest

from recipes import word2vec
from recipes.common import cli


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("word2vec")
    assert word2vec.main(["--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_windows_and_rows_of_the_notes_sentence():
    tokens = "the quick brown fox jumped over the lazy dog".split()
    vocab, counts = word2vec.build_vocab([tokens], min_count=1)
    assert vocab.tokens[:2] == [word2vec.PAD, "the"] and counts[1] == 2
    (ids,) = word2vec.encode_sentences([tokens], vocab)
    centres, contexts = word2vec.windows([ids], window=2)
    fox = list(tokens).index("fox")
    assert vocab.tokens[centres[fox]] == "fox"
    assert [vocab.tokens[i] for i in contexts[fox]] == ["quick", "brown", "jumped", "over"]
    assert [vocab.tokens[i] for i in contexts[0]] == [word2vec.PAD, word2vec.PAD, "quick", "brown"]
    noise = word2vec.noise_distribution(counts)
    words, candidates, labels = word2vec.make_rows("skipgram", [ids], 2, 3, noise)
    assert words.shape == (30, 1) and candidates.shape == (30, 4)  # 2+3+4*4+3+2 = 30 pairs
    np.testing.assert_array_equal(labels[:, 0], 1) and np.testing.assert_array_equal(labels[:, 1:], 0)
    assert (candidates[:, 1:] > 0).all()  # PAD is never a negative
    words, candidates, _ = word2vec.make_rows("cbow", [ids], 2, 3, noise)
    assert words.shape == (9, 4) and vocab.tokens[candidates[fox, 0]] == "fox"


def test_subsampling_and_noise_follow_word2vec():
    counts = np.array([0, 1000, 10, 1], "float64")
    keep = word2vec.keep_probability(counts, 1e-3)
    frequency = counts[1] / counts.sum()
    assert keep[1] == pytest.approx((np.sqrt(frequency / 1e-3) + 1) * 1e-3 / frequency)
    assert keep[0] == 0 and keep[3] == 1.0 and keep[1] < keep[2]
    noise = word2vec.noise_distribution(counts)
    np.testing.assert_allclose(noise, counts**0.75 / (counts**0.75).sum())


def test_scores_are_output_vectors_dot_the_masked_context_mean():
    model = word2vec.build_word2vec(12, 5, context_size=4, candidates=3, seed=2)
    rng = np.random.default_rng(0)
    out_vectors = rng.normal(size=(12, 5)).astype("float32")
    model.get_layer("output_vectors").set_weights([out_vectors])
    in_vectors = keras.ops.convert_to_numpy(model.get_layer("input_vectors").embeddings)
    words = np.array([[0, 3, 4, 0], [5, 5, 6, 7]], "int32")
    candidates = np.array([[1, 2, 3], [11, 0, 4]], "int32")
    logits = keras.ops.convert_to_numpy(model((words, candidates)))
    means = [in_vectors[[3, 4]].mean(axis=0), in_vectors[[5, 5, 6, 7]].mean(axis=0)]
    expected = np.stack([out_vectors[c] @ m for c, m in zip(candidates, means)])
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-7)


def test_quick_run_learns_heldout_cooccurrence(quick_run):
    out, summary = quick_run
    for mode in ("cbow", "skipgram"):
        result = summary[mode]
        assert result["heldout_auc_untrained"] == pytest.approx(0.5, abs=0.02)
        assert result["heldout_auc"] > 0.6, mode
        similar = result["pair_similarity"]
        assert similar["heldout_cooccurring"] > similar["random"] + 0.02, mode
        assert all(len(result["nearest"][w]) == 6 for w in ("list", "class", "return", "string"))
        header = (out / f"vectors-{mode}.txt").read_text().splitlines()[0]
        assert header == f"{summary['vocab_size']} 50"
    nearest = (out / "nearest.txt").read_text()
    assert "cbow input vectors" in nearest and "skipgram input vectors" in nearest
    assert (out / "embeddings.png").stat().st_size > 0 and (out / "curves.png").stat().st_size > 0


def test_bad_arguments_are_usage_errors(tmp_path):
    with pytest.raises(cli.UsageError, match="at least"):
        word2vec.main(["--window", "0", "--out", str(tmp_path)])
    with pytest.raises(cli.UsageError, match="occur"):
        word2vec.main(["--min-count", "100000", "--out", str(tmp_path)])
    # No checkpoints: --resume and --overwrite are not offered, and refused when given.
    with pytest.raises(cli.UsageError, match="word2vec keeps no checkpoints: --overwrite is not"):
        word2vec.main(["--overwrite", "--out", str(tmp_path)])


def test_a_text_whose_heldout_words_are_all_unseen_is_a_usage_error(tmp_path):
    # Every tenth block of 20 sentences is held out; here those blocks use words found nowhere else,
    # so no held-out window exists (it used to end in Keras' UnboundLocalError on an empty predict).
    lines = [
        f"zz{i} qq{i} rr{i}." if (i // 20) % 10 == 9 else "the cat sat on the mat and the dog ran."
        for i in range(400)
    ]
    (tmp_path / "corpus.txt").write_text("\n".join(lines))
    argv = ["--dataset", "file", "--data-dir", str(tmp_path / "corpus.txt"), "--out", str(tmp_path)]
    with pytest.raises(cli.UsageError, match="no held-out sentence has two words seen 1\\+ times"):
        word2vec.main([*argv, "--min-count", "1"])
