"""rnn_lm's training runs and their outputs: perplexity on the held-out text against a unigram
baseline, nearest words, generated sentences, loss curves."""

import math
import time

import numpy as np

from recipes import engine
from recipes.common import cli, plots, text
from recipes.rnn_lm.data import bucket_batches, build_vocab, ngram_arrays, rnn_arrays
from recipes.rnn_lm.model import build_nplm, build_rnn_lm, generate

keras = cli.lazy_import("keras")

NOTES_COULD = ("can", "should", "would", "might", "may", "will")  # A 1's neighbours of 'could'


# ---- perplexity: exp(mean cross-entropy per predicted word) ----------------------------------------


def unigram_perplexity(train_targets, heldout_targets, vocab_size, train_weights=None, weights=None):
    """Perplexity on the held-out targets of the training targets' relative frequencies (the
    baseline: same vocabulary, same unknown token)."""
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


def _history(history):
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}


# ---- A 1: the NPLM -----------------------------------------------------------------------------------


def train_nplm(config, train_sents, heldout_sents, verbose=1, callbacks=()):
    """Fits the NPLM on the training 4-grams; returns (model, vocabulary, result dict)."""
    vocab = build_vocab(train_sents, config.vocab_size)
    n = config.context + 1
    x_train, y_train = ngram_arrays(train_sents, vocab, n)
    x_held, y_held = ngram_arrays(heldout_sents, vocab, n)
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
    # The assignment's cross-entropy, batch 100, SGD 0.1 with momentum 0.9.
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
        "history": _history(history),
    }
    return model, vocab, result


def run_nplm(config, train_sents, heldout_sents, probes, out, verbose):
    """Trains the NPLM and writes its outputs; returns (result, nearest-word lines)."""
    print(
        f"\n== NPLM (section 1): {config.context} words -> the next, {config.vocab_size}-word vocabulary"
    )
    csv = keras.callbacks.CSVLogger(str(out / "nplm_metrics.csv"))
    model, vocab, result = train_nplm(config, train_sents, heldout_sents, verbose, [csv])
    embeddings = keras.ops.convert_to_numpy(model.get_layer("word_embedding").embeddings)
    result["nearest"] = text.nearest_table(embeddings, vocab, probes, config.neighbours)
    nearest = text.nearest_lines("NPLM word embeddings (W0), nearest by cosine:", result["nearest"])
    text.plot_embeddings(
        out / "embeddings.png",
        embeddings,
        vocab,
        title="NPLM word embeddings: the 100 most frequent words (PCA)",
    )
    engine.save_model(model, out / "nplm.keras")
    print(
        f"NPLM held-out perplexity {result['perplexity']:.2f} against the unigram's "
        f"{result['unigram_perplexity']:.2f} ({result['train_seconds']:.1f} s)"
    )
    return result, nearest


# ---- A 7.2: the RNN LM -------------------------------------------------------------------------------


def train_rnn(config, train_sents, heldout_sents, verbose=1, callbacks=()):
    """Fits the RNN LM on the training sentences; returns (model, vocabulary, result dict).

    Britz trains one sentence at a time with SGD (0.005) and truncated BPTT (K = 4); Keras has no
    truncated BPTT, so this trains batches of sentences of similar length with full BPTT: Adam,
    per-token sample weights (padding weighs 0), gradient norm clipped at 5.
    """
    vocab = build_vocab(
        train_sents, config.rnn_vocab, specials=(text.START, text.END), unknown=text.UNKNOWN
    )
    x_train, y_train, w_train = rnn_arrays(train_sents, vocab, config.max_length)
    x_held, y_held, w_held = rnn_arrays(heldout_sents, vocab, config.max_length)
    model = build_rnn_lm(len(vocab), config.rnn_hidden, config.seed)
    model.compile(
        optimizer=engine.dense_gradients(keras.optimizers.Adam(config.rnn_learning_rate, clipnorm=5.0)),
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
        "history": _history(history),
    }
    return model, vocab, result


def run_rnn(config, train_sents, heldout_sents, probes, out, verbose):
    """Trains the RNN LM, generates sentences, writes its outputs; returns (result, nearest lines)."""
    print(f"\n== RNN LM (section 7.2): N_x = {config.rnn_vocab}, hidden {config.rnn_hidden}")
    csv = keras.callbacks.CSVLogger(str(out / "rnn_metrics.csv"))
    model, vocab, result = train_rnn(config, train_sents, heldout_sents, verbose, [csv])
    embeddings = keras.ops.convert_to_numpy(model.get_layer("embedding").embeddings)
    result["nearest"] = text.nearest_table(embeddings, vocab, probes, config.neighbours)
    nearest = text.nearest_lines("RNN LM word embeddings (E), nearest by cosine:", result["nearest"])
    # "could" is not among the NPLM's 249 words on this corpus: only the RNN's vocabulary has it.
    could = [w for w, _ in text.nearest_words(embeddings, vocab, "could", 6)]
    result["could_neighbours_in_notes"] = sorted(set(could) & set(NOTES_COULD))
    sentences, finished = generate(model, vocab, config.samples, config.max_length, config.seed)
    lines = [" ".join(s) + ("" if ok else " ...") for s, ok in zip(sentences, finished)]
    (out / "samples.txt").write_text("".join(line + "\n" for line in lines))
    result["samples"] = lines
    engine.save_model(model, out / "rnn.keras")
    print("Generated:\n" + "\n".join("  " + line for line in lines))
    print(
        f"RNN LM held-out perplexity {result['perplexity']:.2f} against the unigram's "
        f"{result['unigram_perplexity']:.2f} ({result['train_seconds']:.1f} s)"
    )
    return result, nearest


def plot_curves(path, results):
    """Training and held-out loss per epoch of each model, the unigram's as a dashed line."""
    plt = plots.pyplot()
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
