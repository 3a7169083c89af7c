"""Neural language models: Bengio's NPLM (3 words -> the 4th) and Britz's RNN LM, against a unigram.

Reproduces section 1 of seeds/000 (Bengio et al. 2003's neural probabilistic language model as
Hinton's Coursera assignment 2 builds it) and section 7.2 (Denny Britz's WildML RNN language model),
trained on the embedded English text of Python's `pydoc_data` topics (`datasets.text`).

NPLM (`--model nplm`), the notes' sizes: three word ids -> a shared 250 x 50 embedding (W0; the
notes' X1 = [W0'K1; W0'K2; W0'K3] is Embedding + Flatten) -> 200 sigmoid units (W1, b1) -> 250
logits (W2, b2) -> softmax; 92,950 parameters. Cross-entropy, batch 100, SGD with learning rate 0.1
and momentum 0.9 and weights drawn N(0, 0.01^2) (the assignment's defaults), optional weight decay
(`--weight-decay`: the notes' lambda, a gradient lambda W on W1 and W2 = L2(lambda / 2)). The
vocabulary is the 249 most frequent training words plus an unknown token `<unk>` (id 249), as the
assignment's 250 words; 4-grams are taken inside sentences, never across a boundary, and a sentence
that ends in . ! or ? gets "." as its last token, as in the assignment's "business around here .".

RNN LM (`--model rnn`): h_t = tanh(U x_t + W h_{t-1}), y_t = softmax(V h_t), no biases, hidden 100
(Britz's), one example per sentence: x = SENTENCE_START w1 .. wn, y = w1 .. wn SENTENCE_END. Ids:
SENTENCE_START = 0, SENTENCE_END = 1 (fixed here; Britz's got them by being the most frequent
tokens), the most frequent words, UNKNOWN_TOKEN = N_x - 1. Britz keeps 8,000 words of 65,517; the
embedded corpus has about 3,250 distinct words, so N_x defaults to 2,000 (97% of the running
words). In Keras U is Embedding(N_x, 100) followed by SimpleRNN's input kernel (U' = E K), W the
recurrent kernel and V a bias-free Dense. Britz trains one sentence at a time with SGD (0.005) and
truncated BPTT (K = 4); Keras has no truncated BPTT, so this trains padded batches of sentences with
full BPTT (Adam 3e-3, per-token sample weights, gradient norm clipped at 5; batches of 32
sentences of similar length, padded to 8, 16, 24, 32 or 40 tokens). `truncated_bptt` is the
notes' (and Britz's) numpy backward pass: with K >= T it equals autodiff, with K = 4 it does not
(tests/test_rnn_lm.py). Sentences are generated word by word from SENTENCE_START until
SENTENCE_END (or --max-length words).

Held-out text: the sentences, in order, are cut into blocks of 20; every tenth block is held out
(10% of the text). Perplexity = exp(mean cross-entropy per predicted word) on it. The unigram
baseline is the perplexity of the training targets' word frequencies (same vocabulary, same <unk>)
on the same held-out targets. Nearest words: cosine similarity of the learned embeddings, printed
for "list", "class", "return", "string" and "could" (the notes' example, whose neighbours on
Hinton's data were can, should, would, might, may, will; "could" is not among this corpus's 249
most frequent words, so only the RNN's larger vocabulary has it; summary.json lists which of the
notes' six its nearest words include).

Defaults: 25 NPLM epochs (about 500 steps each: the assignment's one epoch of 372,550 4-grams is
3,725 steps; with N(0, 0.01^2) weights the held-out loss sits on a plateau for the first 3-4 epochs)
and 15 RNN epochs.

Outputs (under --out, default runs/rnn_lm): nearest.txt, samples.txt, curves.png (loss per epoch,
train and held-out), embeddings.png (PCA of the NPLM's embeddings of the most frequent words),
nplm_metrics.csv, rnn_metrics.csv, nplm.keras, rnn.keras, summary.json.

    python -m recipes.rnn_lm                     # both models
    python -m recipes.rnn_lm --model nplm --epochs 20
    KERAS_BACKEND=jax python -m recipes.rnn_lm --model rnn --rnn-vocab 1000
"""

import collections
import dataclasses
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, text

keras = cli.lazy_import("keras")

SECTION = "A 1, A 7.2"
MODELS = ("nplm", "rnn", "both")


@dataclasses.dataclass
class Config(cli.RunConfig):
    model: str = cli.option("both", "nplm (section 1), rnn (section 7.2) or both", choices=MODELS)
    dataset: str = cli.option(
        "pydoc",
        "text corpus: pydoc (embedded), shakespeare (download) or file (--data-dir)",
        choices=("pydoc", "shakespeare", "file"),
    )
    data_dir: str = cli.option(None, "a .txt file or a folder of them (with --dataset file)")
    epochs: int = cli.option(25, "NPLM epochs over the training 4-grams")
    batch_size: int = cli.option(100, "NPLM 4-grams per step (the assignment's 100)")
    vocab_size: int = cli.option(250, "NPLM vocabulary: the most frequent words + <unk>")
    context: int = cli.option(3, "NPLM context words (3 words -> the 4th)")
    embedding_dim: int = cli.option(50, "NPLM embedding size")
    hidden: int = cli.option(200, "NPLM sigmoid hidden units")
    learning_rate: float = cli.option(0.1, "NPLM SGD learning rate")
    momentum: float = cli.option(0.9, "NPLM SGD momentum")
    init_scale: float = cli.option(0.01, "NPLM initial weights N(0, init_scale^2)")
    weight_decay: float = cli.option(0.0, "NPLM weight decay lambda on W1, W2 (gradient lambda W)")
    rnn_epochs: int = cli.option(15, "RNN epochs over the training sentences")
    rnn_batch_size: int = cli.option(32, "RNN sentences per step")
    rnn_vocab: int = cli.option(
        2000, "RNN vocabulary N_x: SENTENCE_START, SENTENCE_END, words, UNKNOWN_TOKEN"
    )
    rnn_hidden: int = cli.option(100, "RNN hidden units (Britz's 100)")
    rnn_learning_rate: float = cli.option(3e-3, "RNN Adam learning rate")
    max_length: int = cli.option(40, "longest RNN sentence in tokens; longer ones are cut in pieces")
    probes: str = cli.option(text.PROBES, "comma-separated words whose nearest words are printed")
    neighbours: int = cli.option(6, "nearest words shown per probe")
    samples: int = cli.option(5, "sentences generated by the RNN")


# --quick: weights N(0, 0.1^2) and a doubled learning rate leave the sigmoid plateau that 0.01
# gives for the first 3-4 epochs, so two epochs already beat the unigram.
QUICK = {
    "epochs": 2,
    "init_scale": 0.1,
    "learning_rate": 0.2,
    "rnn_epochs": 2,
    "rnn_vocab": 500,
    "rnn_hidden": 32,
    "rnn_learning_rate": 1e-2,
}
NOTES_COULD = ("can", "should", "would", "might", "may", "will")  # section 1's neighbours of 'could'


# -- text: sentences, tokens, vocabularies (NumPy/Python, outside the models) --------------------


def build_vocab(token_lists, size, specials=(), unknown=text.UNK):
    """`specials`, then the most frequent words (ties alphabetical), then `unknown`: `size` in all."""
    counts = collections.Counter(t for tokens in token_lists for t in tokens if t not in specials)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    keep = size - len(specials) - 1
    if keep < 1:
        raise cli.UsageError(f"a vocabulary of {size} leaves no room for words")
    return list(specials) + [word for word, _ in ranked[:keep]] + [unknown]


def encode(tokens, index):
    """Word ids; words outside the vocabulary get the last id (the unknown token)."""
    unknown = len(index) - 1
    return [index.get(t, unknown) for t in tokens]


def make_ngrams(tokens, n=4):
    """The n-grams of one sentence, in order (none that crosses the sentence's ends)."""
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def ngram_arrays(token_lists, index, n=4):
    """(contexts (N, n-1), targets (N,)) int32 ids of every n-gram inside the sentences."""
    grams = [encode(g, index) for tokens in token_lists for g in make_ngrams(tokens, n)]
    grams = np.array(grams, "int32").reshape(-1, n)
    return grams[:, :-1], grams[:, -1]


def rnn_arrays(token_lists, index, max_length):
    """Britz's examples, padded: x (N, max_length), y (N, max_length), weights (N, max_length).

    x = START w1 .. wn, y = w1 .. wn END; a sentence of more than max_length - 1 words is cut into
    pieces, each its own example. Padding repeats END with weight 0.
    """
    start, end = index[text.START], index[text.END]
    pieces = []
    for tokens in token_lists:
        ids = encode(tokens, index)
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


def unigram_perplexity(train_targets, heldout_targets, vocab_size, train_weights=None, weights=None):
    """Perplexity on the held-out targets of the training targets' relative frequencies."""
    counts = np.bincount(
        np.ravel(train_targets),
        np.ravel(train_weights) if train_weights is not None else None,
        minlength=vocab_size,
    )
    probabilities = counts / counts.sum()
    log_p = np.log(probabilities[np.ravel(heldout_targets)])
    w = np.ones_like(log_p) if weights is None else np.ravel(weights)
    return float(np.exp(-(log_p * w).sum() / w.sum()))


def perplexity_from_logits(logits, targets, weights=None):
    """exp(mean cross-entropy) of softmax(logits) at `targets` (weighted by `weights`)."""
    logits = np.reshape(logits, (-1, np.shape(logits)[-1]))
    targets = np.ravel(targets)
    w = np.ones(len(targets)) if weights is None else np.ravel(weights).astype("float64")
    used = w > 0  # padding positions cost nothing
    logits, targets, w = logits[used].astype("float64"), targets[used], w[used]
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_p = shifted[np.arange(len(shifted)), targets] - np.log(np.exp(shifted).sum(axis=-1))
    return float(np.exp(-(log_p * w).sum() / w.sum()))


# -- section 1: Bengio's NPLM -------------------------------------------------------------------


def build_nplm(
    vocab_size=250, context=3, embedding_dim=50, hidden=200, init_scale=0.01, weight_decay=0.0, seed=0
):
    """Embedding (W0) + Flatten = the notes' X1, Dense sigmoid (W1, b1), Dense logits (W2, b2)."""

    def normal(offset):
        return keras.initializers.RandomNormal(0.0, init_scale, seed=seed + offset)

    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None
    return keras.Sequential(
        [
            keras.Input((context,), dtype="int32"),
            keras.layers.Embedding(
                vocab_size, embedding_dim, embeddings_initializer=normal(0), name="word_embedding"
            ),
            keras.layers.Flatten(name="x1"),
            keras.layers.Dense(
                hidden,
                "sigmoid",
                kernel_initializer=normal(1),
                kernel_regularizer=regularizer,
                name="hidden",
            ),
            keras.layers.Dense(
                vocab_size, kernel_initializer=normal(2), kernel_regularizer=regularizer, name="logits"
            ),
        ],
        name="nplm",
    )


def nplm_backward(weights, contexts, targets, weight_decay=0.0):
    """The notes' hand-written backward pass (batch-major): gradients of mean cross-entropy + decay.

    `weights` = [W0 (V, D), W1 (C*D, H), b1 (H,), W2 (H, V), b2 (V,)]; returns the same list of
    gradients. dW0 = sum_i K_i dX1_i: each context position adds its rows (repeats accumulate).
    """
    w0, w1, b1, w2, b2 = (np.asarray(w, "float64") for w in weights)
    batch, context = contexts.shape
    dim = w0.shape[1]
    x1 = w0[contexts].reshape(batch, context * dim)
    f = 1.0 / (1.0 + np.exp(-(x1 @ w1 + b1)))
    logits = f @ w2 + b2
    y = np.exp(logits - logits.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    t = np.eye(w2.shape[1])[targets]
    dx3 = (y - t) / batch
    dw2 = f.T @ dx3 + weight_decay * w2
    db2 = dx3.sum(axis=0)
    dx2 = (dx3 @ w2.T) * f * (1 - f)
    dw1 = x1.T @ dx2 + weight_decay * w1
    db1 = dx2.sum(axis=0)
    dx1 = (dx2 @ w1.T).reshape(batch, context, dim)
    dw0 = np.zeros_like(w0)
    np.add.at(dw0, contexts, dx1)
    return [dw0, dw1, db1, dw2, db2]


def train_nplm(config, train_sents, heldout_sents, verbose=1, callbacks=()):
    vocab = build_vocab(train_sents, config.vocab_size)
    index = {w: i for i, w in enumerate(vocab)}
    n = config.context + 1
    x_train, y_train = ngram_arrays(train_sents, index, n)
    x_held, y_held = ngram_arrays(heldout_sents, index, n)
    if len(x_train) == 0 or len(x_held) == 0:
        raise cli.UsageError(f"the text has too few sentences of {n} or more words")
    model = build_nplm(
        len(vocab),
        config.context,
        config.embedding_dim,
        config.hidden,
        config.init_scale,
        config.weight_decay,
        config.seed,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(config.learning_rate, momentum=config.momentum),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    initial = perplexity_from_logits(model.predict(x_held, batch_size=1000, verbose=0), y_held)
    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=config.batch_size,
        epochs=config.epochs,
        validation_data=(x_held, y_held),
        shuffle=True,
        verbose=verbose,
        callbacks=list(callbacks),
    )
    seconds = time.perf_counter() - started
    logits = model.predict(x_held, batch_size=1000, verbose=0)
    result = {
        "vocab_size": len(vocab),
        "train_ngrams": len(x_train),
        "heldout_ngrams": len(x_held),
        "parameters": model.count_params(),
        "initial_loss": math.log(initial),
        "perplexity": perplexity_from_logits(logits, y_held),
        "unigram_perplexity": unigram_perplexity(y_train, y_held, len(vocab)),
        "train_seconds": seconds,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }
    return model, vocab, result


# -- section 7.2: Britz's RNN language model -------------------------------------------------------


def build_rnn_lm(vocab_size, hidden=100, seed=0):
    """Embedding -> SimpleRNN(tanh, no bias) -> Dense(no bias): U, W, V of the notes, logits out."""
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(
                vocab_size,
                hidden,
                name="embedding",
                embeddings_initializer=keras.initializers.RandomUniform(-0.05, 0.05, seed=seed),
            ),
            keras.layers.SimpleRNN(
                hidden,
                use_bias=False,
                return_sequences=True,
                seed=seed,
                name="rnn",
                kernel_initializer=keras.initializers.GlorotUniform(seed + 1),
                recurrent_initializer=keras.initializers.Orthogonal(seed=seed + 2),
            ),
            keras.layers.Dense(
                vocab_size,
                use_bias=False,
                name="output",
                kernel_initializer=keras.initializers.GlorotUniform(seed + 3),
            ),
        ],
        name="rnn_lm",
    )


def truncated_bptt(weights, x, y, truncate):
    """Britz's truncated BPTT (the notes' dW, dU, dV) for one sentence; loss summed over its words.

    `weights` = [E (N_x, H), K (H, H), W (H, H), V (H, N_x)] in Keras layout (U x_t = E[x_t] K).
    From each output step t the error flows back at most `truncate` steps. Returns
    (loss, [dE, dK, dW, dV]); with truncate >= len(x) this is exact backpropagation.
    """
    e, k, w, v = (np.asarray(a, "float64") for a in weights)
    steps = len(x)
    u = e[x] @ k  # (T, H): U x_t
    h = np.zeros((steps + 1, w.shape[0]))  # h[-1] is the zero initial state
    for t in range(steps):
        h[t] = np.tanh(u[t] + h[t - 1] @ w)
    logits = h[:steps] @ v
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(steps), y]).sum()
    delta_o = p.copy()
    delta_o[np.arange(steps), y] -= 1.0
    dv = h[:steps].T @ delta_o
    dw, du = np.zeros_like(w), np.zeros((steps, w.shape[0]))
    for t in reversed(range(steps)):
        delta = (delta_o[t] @ v.T) * (1 - h[t] ** 2)
        for step in range(t, max(0, t - truncate) - 1, -1):
            dw += np.outer(h[step - 1], delta)
            du[step] += delta
            delta = (delta @ w.T) * (1 - h[step - 1] ** 2)
    dk = e[x].T @ du
    de = np.zeros_like(e)
    np.add.at(de, x, du @ k.T)
    return loss, [de, dk, dw, dv]


def generate(model, vocab, count, max_length, seed=0, temperature=1.0):
    """`count` sentences sampled word by word from START until END (or max_length words)."""
    rng = np.random.default_rng(seed)
    start, end, unknown = 0, 1, len(vocab) - 1
    ids = np.full((count, max_length + 1), end, "int32")  # one fixed shape for every step
    ids[:, 0] = start
    done = np.zeros(count, bool)
    lengths = np.full(count, max_length)
    for t in range(max_length):
        logits = keras.ops.convert_to_numpy(model(ids[:, :max_length], training=False))[:, t]
        logits = logits.astype("float64") / temperature
        logits[:, [start, unknown]] = -np.inf  # text.START is never a target; Britz skips UNKNOWN_TOKEN
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        for row in range(count):
            if not done[row]:
                ids[row, t + 1] = rng.choice(len(vocab), p=p[row])
                if ids[row, t + 1] == end:
                    done[row], lengths[row] = True, t
        if done.all():
            break
    return [[vocab[i] for i in ids[row, 1 : lengths[row] + 1]] for row in range(count)], done


BUCKETS = (8, 16, 24, 32)  # batches are padded to the shortest of these (or --max-length) that fits


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


def train_rnn(config, train_sents, heldout_sents, verbose=1, callbacks=()):
    vocab = build_vocab(
        train_sents, config.rnn_vocab, specials=(text.START, text.END), unknown=text.UNKNOWN
    )
    index = {w: i for i, w in enumerate(vocab)}
    x_train, y_train, w_train = rnn_arrays(train_sents, index, config.max_length)
    x_held, y_held, w_held = rnn_arrays(heldout_sents, index, config.max_length)
    model = build_rnn_lm(len(vocab), config.rnn_hidden, config.seed)
    model.compile(
        optimizer=keras.optimizers.Adam(config.rnn_learning_rate, clipnorm=5.0),
        loss=keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight"
        ),
    )
    initial = perplexity_from_logits(model.predict(x_held, batch_size=256, verbose=0), y_held, w_held)
    rng = np.random.default_rng(config.seed)
    size = config.rnn_batch_size
    steps = math.ceil(len(x_train) / size)
    started = time.perf_counter()
    history = model.fit(
        bucket_batches(x_train, y_train, w_train, size, config.max_length, rng),
        steps_per_epoch=steps,
        epochs=config.rnn_epochs,
        # held-out loss on fixed padded arrays: the same batches every epoch
        validation_data=(x_held, y_held, w_held),
        validation_batch_size=256,
        verbose=verbose,
        callbacks=list(callbacks),
        shuffle=False,  # the generator shuffles
    )
    seconds = time.perf_counter() - started
    logits = model.predict(x_held, batch_size=256, verbose=0)
    result = {
        "vocab_size": len(vocab),
        "train_sentences": len(x_train),
        "heldout_sentences": len(x_held),
        "heldout_words": int(w_held.sum()),
        "parameters": model.count_params(),
        "initial_loss": math.log(initial),
        "perplexity": perplexity_from_logits(logits, y_held, w_held),
        "unigram_perplexity": unigram_perplexity(y_train, y_held, len(vocab), w_train, w_held),
        "train_seconds": seconds,
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    }
    return model, vocab, result


# -- outputs ---------------------------------------------------------------------------------------


def plot_curves(path, results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.6), squeeze=False)
    for ax, (name, result) in zip(axes[0], results.items()):
        history = result["history"]
        epochs = np.arange(1, len(history["loss"]) + 1)
        ax.plot(epochs, history["loss"], "o-", label="train")
        ax.plot(epochs, history["val_loss"], "o-", label="held-out")
        ax.axhline(math.log(result["unigram_perplexity"]), color="gray", ls="--", label="unigram")
        ax.set(
            xlabel="epoch",
            ylabel="cross-entropy (nats/word)",
            title=f"{name}: perplexity {result['perplexity']:.1f} "
            f"(unigram {result['unigram_perplexity']:.1f})",
        )
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.rnn_lm", description=__doc__.splitlines()[0], quick=QUICK
    )
    sizes = (
        config.epochs,
        config.rnn_epochs,
        config.context,
        config.embedding_dim,
        config.hidden,
        config.rnn_hidden,
        config.rnn_batch_size,
        config.neighbours,
    )
    if min(sizes) < 1 or config.max_length < 2 or config.samples < 0:
        raise cli.UsageError("sizes and epochs must be at least 1 and --max-length at least 2")
    if config.vocab_size < 2 or config.rnn_vocab < 4:
        raise cli.UsageError("--vocab-size must be at least 2 and --rnn-vocab at least 4")
    out = Path(config.out or "runs/rnn_lm")
    out.mkdir(parents=True, exist_ok=True)
    verbose = 1 if sys.stdout.isatty() else 2
    engine.set_seed(config.seed)

    sentences = text.load_sentences(config.dataset, config.data_dir)
    train_sents, heldout_sents = text.split_heldout(sentences)
    if not train_sents or not heldout_sents:
        raise cli.UsageError("the text is too short for a held-out split (20 sentences or more)")
    n_words = sum(map(len, sentences))
    print(
        f"{config.dataset}: {len(sentences)} sentences, {n_words} tokens; "
        f"{len(train_sents)} for training, {len(heldout_sents)} held out"
    )
    probes = [p.strip() for p in config.probes.split(",") if p.strip()]
    results, nearest, summary = (
        {},
        [],
        {"backend": engine.backend(), "config": dataclasses.asdict(config)},
    )

    if config.model in ("nplm", "both"):
        print(
            f"\n== NPLM (section 1): {config.context} words -> the next, "
            f"{config.vocab_size}-word vocabulary"
        )
        model, vocab, result = train_nplm(
            config,
            train_sents,
            heldout_sents,
            verbose,
            [keras.callbacks.CSVLogger(str(out / "nplm_metrics.csv"))],
        )
        embeddings = keras.ops.convert_to_numpy(model.get_layer("word_embedding").embeddings)
        nearest += text.nearest_lines(
            "NPLM word embeddings (W0), nearest by cosine:", embeddings, vocab, probes, config.neighbours
        )
        result["nearest"] = {
            p: text.nearest_words(embeddings, vocab, p, config.neighbours) for p in probes
        }
        text.plot_embeddings(
            out / "embeddings.png",
            embeddings,
            vocab,
            title="NPLM word embeddings: the 100 most frequent words (PCA)",
        )
        model.save(out / "nplm.keras")
        results["nplm"] = result
        print(
            f"NPLM held-out perplexity {result['perplexity']:.2f} against the unigram's "
            f"{result['unigram_perplexity']:.2f} ({result['train_seconds']:.1f} s)"
        )

    if config.model in ("rnn", "both"):
        print(f"\n== RNN LM (section 7.2): N_x = {config.rnn_vocab}, hidden {config.rnn_hidden}")
        model, vocab, result = train_rnn(
            config,
            train_sents,
            heldout_sents,
            verbose,
            [keras.callbacks.CSVLogger(str(out / "rnn_metrics.csv"))],
        )
        embeddings = keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings)
        nearest += text.nearest_lines(
            "RNN LM word embeddings (E), nearest by cosine:",
            embeddings,
            vocab,
            probes,
            config.neighbours,
        )
        result["nearest"] = {
            p: text.nearest_words(embeddings, vocab, p, config.neighbours) for p in probes
        }
        could = [w for w, _ in text.nearest_words(embeddings, vocab, "could", 6)]
        result["could_neighbours_in_notes"] = sorted(set(could) & set(NOTES_COULD))
        sentences_out, finished = generate(model, vocab, config.samples, config.max_length, config.seed)
        lines = [" ".join(s) + ("" if ok else " ...") for s, ok in zip(sentences_out, finished)]
        (out / "samples.txt").write_text("".join(line + "\n" for line in lines))
        result["samples"] = lines
        model.save(out / "rnn.keras")
        results["rnn"] = result
        print("Generated:\n" + "\n".join("  " + line for line in lines))
        print(
            f"RNN LM held-out perplexity {result['perplexity']:.2f} against the unigram's "
            f"{result['unigram_perplexity']:.2f} ({result['train_seconds']:.1f} s)"
        )

    (out / "nearest.txt").write_text("\n".join(nearest) + "\n")
    print("\n" + "\n".join(nearest))
    plot_curves(out / "curves.png", results)
    summary.update(results)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
