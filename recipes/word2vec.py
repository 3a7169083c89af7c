"""Word2Vec: CBOW and skip-gram with negative sampling on the embedded corpus; nearest neighbours.

Reproduces the end of A 1 ("From Bengio's language model to Word2Vec"): Mikolov et al. 2013 made
Bengio's model fast by dropping the hidden layer and the softmax over the vocabulary. Skip-gram
(`--model skipgram`) scores each word of the centre word's window, CBOW (`--model cbow`) the centre
word from the mean of its window, each against `--negatives` words drawn from the unigram
distribution raised to 3/4. Trained on the sentences of the embedded pydoc text with rnn_lm's
held-out split (every tenth block of 20 sentences) and checked on the held-out text: `heldout_auc`
is the probability that the trained model ranks the word that really occurs above a negative (0.5
untrained); `pair_similarity` compares the cosine of held-out co-occurring words with that of
random pairs of vocabulary words.

    python -m recipes.word2vec                       # CBOW and skip-gram
    python -m recipes.word2vec --model skipgram --window 5 --dim 100
    KERAS_BACKEND=torch python -m recipes.word2vec --model cbow --epochs 10

Default run, held-out AUC CBOW / skip-gram: 0.791 / 0.716 on TensorFlow (99 s), 0.791 / 0.714 on
torch (51 s), 0.792 / 0.714 on JAX (36 s).

Outputs (under --out, default runs/word2vec): nearest.txt, vectors-MODEL.txt (word2vec's text
format), embeddings.png (PCA of the most frequent words' vectors), curves.png, MODEL_metrics.csv,
summary.json.
"""

import collections
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots, text
from recipes.common.vocabulary import Vocabulary

keras = cli.lazy_import("keras")

SECTION = "A 1"
MODELS = ("cbow", "skipgram", "both")
PAD = "<pad>"  # id 0: fills CBOW windows cut by a sentence's ends (masked out of the mean)


@dataclasses.dataclass
class Config(text.CorpusConfig):
    model: str = cli.option("both", "cbow, skipgram or both", choices=MODELS)
    epochs: int = cli.option(10, "passes over the training text")
    batch_size: int = cli.option(256, "rows (a word, one positive, the negatives) per step")
    dim: int = cli.option(50, "vector size")
    window: int = cli.option(2, "words on each side of the centre word")
    negatives: int = cli.option(5, "negative samples per positive")
    min_count: int = cli.option(5, "drop words seen fewer times in the training text")
    sample: float = cli.option(1e-3, "subsampling threshold t of frequent words (0: keep all)")
    # Adam replaces word2vec's linearly decaying SGD.
    learning_rate: float = cli.option(3e-3, "Adam learning rate")
    # Minutes per run, no checkpoints: --resume and --overwrite are not offered.
    resume: bool = cli.option(False, cli.HIDDEN)


QUICK = {"epochs": 2, "learning_rate": 3e-2}


# ---- words and ids (NumPy, outside the models) ---------------------------------------------------


def build_vocab(token_lists, min_count):
    """(vocabulary, counts): PAD, then the words seen at least `min_count` times, most frequent
    first (ties alphabetical); counts (V,) float64, 0 for PAD."""
    counts = collections.Counter(t for tokens in token_lists for t in tokens)
    # Word2vec drops the rare words before it builds its vocabulary.
    frequent = ([t for t in tokens if counts[t] >= min_count] for tokens in token_lists)
    vocab = Vocabulary.build(frequent, specials=(PAD,), order="frequency-alphabetical")
    return vocab, np.array([counts[w] for w in vocab.tokens], "float64")


def encode_sentences(token_lists, vocab):
    """Each sentence as an id array, words outside the vocabulary removed (word2vec drops them)."""
    return [np.array(vocab.encode([t for t in tokens if t in vocab]), "int32") for tokens in token_lists]


def keep_probability(counts, sample):
    """Word2vec's subsampling: P(keep w) = (sqrt(f / t) + 1) t / f, capped at 1; f = frequency."""
    if sample <= 0:
        return np.ones_like(counts)
    frequency = counts / counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = (np.sqrt(frequency / sample) + 1) * sample / frequency
    return np.where(counts > 0, np.minimum(keep, 1.0), 0.0)


def noise_distribution(counts):
    """Negatives are drawn from unigram^(3/4) (PAD never)."""
    weights = counts**0.75
    return weights / weights.sum()


def windows(sentences, window):
    """(centres (N,), contexts (N, 2 window)) of every position; PAD where the sentence ends.

    Windows stay inside a sentence and take both sides: the notes' example predicts "fox" from
    "the quick brown" only; standard CBOW, as here, also reads "jumped over".
    """
    centres, contexts = [], []
    for ids in sentences:
        if len(ids) < 2:
            continue
        padded = np.concatenate([np.zeros(window, "int32"), ids, np.zeros(window, "int32")])
        for i in range(len(ids)):
            around = np.concatenate(
                [padded[i : i + window], padded[i + window + 1 : i + 2 * window + 1]]
            )
            centres.append(ids[i])
            contexts.append(around)
    return np.array(centres, "int32"), np.array(contexts, "int32").reshape(-1, 2 * window)


def make_rows(mode, sentences, window, negatives, noise, keep=None, rng=None):
    """Training rows: (words, candidates, labels); candidates[:, 0] is the positive.

    skipgram: words (N, 1) = a centre word, one row per (centre, context word) pair;
    cbow: words (N, 2 window) = the context (PAD-filled), one row per position.
    """
    rng = rng or np.random.default_rng(0)
    if keep is not None:  # subsample frequent words before the windows are cut, as word2vec does
        sentences = [ids[rng.random(len(ids)) < keep[ids]] for ids in sentences]
    centres, contexts = windows(sentences, window)
    if mode == "skipgram":
        rows, cols = np.nonzero(contexts)  # every real (not PAD) context word
        words, positives = centres[rows, None], contexts[rows, cols]
    else:
        words, positives = contexts, centres
    drawn = rng.choice(len(noise), size=(len(positives), negatives), p=noise).astype("int32")
    candidates = np.concatenate([positives[:, None], drawn], axis=1)
    labels = np.zeros(candidates.shape, "float32")
    labels[:, 0] = 1.0
    return words, candidates, labels


# ---- the model: input vectors, output vectors, dot products ----------------------------------------


def build_word2vec(vocab_size, dim, context_size, candidates, seed=0, name="word2vec"):
    """Scores candidate words for a centre word (skip-gram) or a context mean (CBOW).

    Inputs: words (batch, context_size) ids (1 for skip-gram; PAD = 0 is masked out of the CBOW
    mean) and candidates (batch, candidates) ids. Output: logits (batch, candidates) = u_c . h,
    where h is the centre word's input vector or the mean of the context's input vectors. With
    binary cross-entropy on labels (1, 0, ..., 0) this is Mikolov et al.'s negative sampling loss
    -log s(u_c . h) - sum_k log s(-u_k . h) (s = sigmoid), as in Xin Rong's "word2vec Parameter
    Learning Explained".
    """
    ops = keras.ops
    scale = 0.5 / dim  # word2vec's initialisation: input vectors uniform in +-0.5 / dim, output 0
    words = keras.Input((context_size,), dtype="int32", name="words")
    candidate_ids = keras.Input((candidates,), dtype="int32", name="candidates")
    input_vectors = keras.layers.Embedding(
        vocab_size,
        dim,
        name="input_vectors",
        embeddings_initializer=keras.initializers.RandomUniform(-scale, scale, seed=seed),
    )
    output_vectors = keras.layers.Embedding(
        vocab_size, dim, name="output_vectors", embeddings_initializer="zeros"
    )
    # h: the mean of the input vectors of the real (not PAD) words
    mask = ops.cast(ops.not_equal(words, 0), "float32")
    h = ops.sum(input_vectors(words) * mask[..., None], axis=1)
    h = h / ops.maximum(ops.sum(mask, axis=1, keepdims=True), 1.0)
    # (batch, dim)
    logits = ops.einsum("bd,bkd->bk", h, output_vectors(candidate_ids))
    # (batch, candidates)
    return keras.Model([words, candidate_ids], logits, name=name)


# ---- held-out checks -----------------------------------------------------------------------------


def heldout_auc(model, words, candidates):
    """P(score of the true word > score of one negative) over held-out rows (ties count half)."""
    logits = keras.ops.convert_to_numpy(model.predict((words, candidates), batch_size=4096, verbose=0))
    positive, negative = logits[:, :1], logits[:, 1:]
    return float(np.mean((positive > negative) + 0.5 * (positive == negative)))


def pair_similarity(vectors, sentences, window, rng):
    """(mean cosine of held-out co-occurring word pairs, mean cosine of random vocabulary pairs)."""
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    centres, contexts = windows(sentences, window)
    rows, cols = np.nonzero(contexts)
    a, b = centres[rows], contexts[rows, cols]
    a, b = a[a != b], b[a != b]
    together = float(np.mean(np.sum(unit[a] * unit[b], axis=1)))
    x, y = rng.integers(1, len(vectors), size=(2, 20000))
    x, y = x[x != y], y[x != y]
    random_pairs = float(np.mean(np.sum(unit[x] * unit[y], axis=1)))
    return together, random_pairs


# ---- training --------------------------------------------------------------------------------------


def train(mode, config, train_ids, heldout_ids, counts, verbose=1, csv_path=None):
    """Trains one model; returns (model, result dict)."""
    rng = np.random.default_rng(config.seed)
    noise, keep = noise_distribution(counts), keep_probability(counts, config.sample)
    held = make_rows(
        mode,
        heldout_ids,
        config.window,
        config.negatives,
        noise,
        rng=np.random.default_rng(config.seed + 1),
    )
    model = build_word2vec(
        len(counts), config.dim, held[0].shape[1], config.negatives + 1, config.seed, mode
    )
    model.compile(
        optimizer=engine.dense_gradients(keras.optimizers.Adam(config.learning_rate)),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    auc_before = heldout_auc(model, *held[:2])
    history = collections.defaultdict(list)
    started = time.perf_counter()
    for epoch in range(config.epochs):
        # Subsampling and negatives are drawn afresh every epoch.
        words, candidates, labels = make_rows(
            mode, train_ids, config.window, config.negatives, noise, keep, rng
        )
        # whole batches only: a short last batch would be one more shape for JAX to compile
        usable = len(words) // config.batch_size * config.batch_size or len(words)
        order = rng.permutation(len(words))[:usable]
        callbacks = [keras.callbacks.CSVLogger(str(csv_path), append=epoch > 0)] if csv_path else []
        fit = model.fit(
            (words[order], candidates[order]),
            labels[order],
            batch_size=config.batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,
            verbose=verbose,
            validation_data=((held[0], held[1]), held[2]),
            callbacks=callbacks,
        )
        for key, values in fit.history.items():
            history[key] += [float(v) for v in values]
    seconds = time.perf_counter() - started
    vectors = keras.ops.convert_to_numpy(model.get_layer("input_vectors").embeddings)
    together, random_pairs = pair_similarity(
        vectors, heldout_ids, config.window, np.random.default_rng(config.seed + 2)
    )
    result = {
        "rows_per_epoch": len(order),
        "heldout_rows": len(held[0]),
        "heldout_auc_untrained": auc_before,
        "heldout_auc": heldout_auc(model, *held[:2]),
        "pair_similarity": {"heldout_cooccurring": together, "random": random_pairs},
        "train_seconds": seconds,
        "history": dict(history),
    }
    return model, result


# ---- outputs ---------------------------------------------------------------------------------------


def write_vectors(path, vocab, vectors):
    """Word2vec's text format: a header "count dim", then "word v1 v2 ..." per line (no PAD)."""
    lines = [f"{len(vocab) - 1} {vectors.shape[1]}"]
    lines += [w + " " + " ".join(f"{x:.5f}" for x in v) for w, v in zip(vocab.tokens[1:], vectors[1:])]
    Path(path).write_text("\n".join(lines) + "\n")


def plot_curves(path, results):
    """Training and held-out loss per epoch of each model."""
    series = {}
    for name, result in results.items():
        series[f"{name} train"] = result["history"]["loss"]
        series[f"{name} held-out"] = result["history"]["val_loss"]
    plots.loss_curves(
        path, series, "word2vec", ylabel="negative-sampling loss (per candidate)", log=False
    )


def check(config):
    """Rejects sizes the recipe cannot use: a UsageError, shown as one line."""
    sizes = (
        config.epochs,
        config.dim,
        config.window,
        config.negatives,
        config.min_count,
        config.neighbours,
    )
    if min(sizes) < 1 or config.sample < 0:
        raise cli.UsageError(
            "--epochs, --dim, --window, --negatives, --min-count and --neighbours "
            "must be at least 1 and --sample at least 0"
        )


def load_corpus(config):
    """(vocabulary, counts, training id arrays, held-out id arrays): rnn_lm's sentences without
    its "." tokens, split into training and held-out text the same way."""
    sentences = [
        [t for t in s if t != "."] for s in text.load_sentences(config.dataset, config.data_dir)
    ]
    train_sents, heldout_sents = text.split_heldout(sentences)
    vocab, counts = build_vocab(train_sents, config.min_count)
    if len(vocab) < config.negatives + 2:
        raise cli.UsageError(f"only {len(vocab) - 1} words occur {config.min_count} times or more")
    train_ids, heldout_ids = encode_sentences(train_sents, vocab), encode_sentences(heldout_sents, vocab)
    for part, ids in (("training", train_ids), ("held-out", heldout_ids)):
        # a window needs two vocabulary words in one sentence (words outside it are dropped)
        if not any(len(sentence) >= 2 for sentence in ids):
            raise cli.UsageError(
                f"no {part} sentence has two words seen {config.min_count}+ times: "
                "use a longer text or a lower --min-count"
            )
    print(
        f"{config.dataset}: {len(vocab) - 1} words seen {config.min_count}+ times, "
        f"{int(sum(map(len, train_ids)))} training and {int(sum(map(len, heldout_ids)))} held-out tokens"
    )
    return vocab, counts, train_ids, heldout_ids


def report(mode, result, vectors, vocab, probes, config, out):
    """Nearest words and the vectors file of one model; prints its held-out checks."""
    result["nearest"] = text.nearest_table(vectors, vocab, probes, config.neighbours)
    write_vectors(out / f"vectors-{mode}.txt", vocab, vectors)
    similar = result["pair_similarity"]
    print(
        f"{mode}: held-out AUC {result['heldout_auc']:.3f} (untrained "
        f"{result['heldout_auc_untrained']:.3f}); cosine of held-out co-occurring pairs "
        f"{similar['heldout_cooccurring']:.3f}, random pairs {similar['random']:.3f} "
        f"({result['train_seconds']:.1f} s)"
    )
    return text.nearest_lines(f"{mode} input vectors, nearest by cosine:", result["nearest"])


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.word2vec", description=__doc__.splitlines()[0], quick=QUICK
    )
    cli.reject_unused(config, ("resume",), "word2vec", "keeps no checkpoints")
    check(config)
    out = Path(config.out or "runs/word2vec")
    out.mkdir(parents=True, exist_ok=True)
    verbose = engine.fit_verbose()
    engine.set_seed(config.seed)

    vocab, counts, train_ids, heldout_ids = load_corpus(config)
    probes = [p.strip() for p in config.probes.split(",") if p.strip()]
    modes = ("cbow", "skipgram") if config.model == "both" else (config.model,)
    nearest, results = [], {}
    for mode in modes:
        print(f"\n== {mode}: window {config.window}, {config.negatives} negatives, dim {config.dim}")
        model, result = train(
            mode, config, train_ids, heldout_ids, counts, verbose, out / f"{mode}_metrics.csv"
        )
        vectors = keras.ops.convert_to_numpy(model.get_layer("input_vectors").embeddings)
        nearest += report(mode, result, vectors, vocab, probes, config, out)
        if mode == modes[-1]:
            text.plot_embeddings(
                out / "embeddings.png",
                vectors,
                vocab,
                title=f"{mode} vectors: the 100 most frequent words (PCA)",
            )
        results[mode] = result

    (out / "nearest.txt").write_text("\n".join(nearest) + "\n")
    print("\n" + "\n".join(nearest))
    plot_curves(out / "curves.png", results)
    summary = {
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
        "vocab_size": len(vocab) - 1,
        **results,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
