"""char_rnn's training runs: a corpus, window after window with the hidden state carried over
(A 7.3, A 7.6), and the notes' two toy strings, full batch (B 4.2.1)."""

import math
import time

import numpy as np

from datasets.text import load_text
from recipes import engine
from recipes.char_rnn.data import LONG, SHORT, char_vocabulary, decode, encode, streams, toy_data
from recipes.char_rnn.model import build_model, build_optimizer, build_toy_model, make_step, sample
from recipes.common import cli, plots

keras = cli.lazy_import("keras")


# ---- a corpus ------------------------------------------------------------------------------------


def train_corpus(config, text, verbose=True):
    """Trains on `text`; returns the model, vocabulary, per-step losses, samples and timings."""
    engine.set_seed(config.seed)
    vocab = char_vocabulary(text)
    x, y = streams(encode(vocab, text), config.batch_size, config.seq_length)
    windows = len(x)
    model = build_model(config, len(vocab))
    optimizer = build_optimizer(config, windows)
    optimizer.build(model.trainable_variables)
    state_vars = [
        keras.Variable(np.zeros(s, "float32"), trainable=False, name=f"state_{i}")
        for i, s in enumerate(model.state_shapes(config.batch_size))
    ]
    step = make_step(model, optimizer, state_vars, "sum" if config.model == "minimal" else "mean")
    rng = np.random.default_rng(config.seed)
    smooth = math.log(len(vocab))  # min-char-rnn's smooth_loss starts at the uniform loss.
    losses, smoothed, samples = [], [], []
    bar = keras.utils.Progbar(
        config.steps, verbose=engine.fit_verbose() if verbose else 0, stateful_metrics=["loss"]
    )
    start = time.perf_counter()
    compile_time = None
    for n in range(config.steps):
        k = n % windows
        if k == 0:  # A new pass over the text: reset the hidden state, as min-char-rnn does.
            for v in state_vars:
                v.assign(np.zeros(v.shape, "float32"))
        loss = float(step(x[k], y[k]))
        if n == 0:
            compile_time = time.perf_counter() - start
            start = time.perf_counter()
        if not math.isfinite(loss):
            raise engine.TrainingDiverged(f"the loss became {loss} at step {n + 1}")
        losses.append(loss)
        smooth = 0.999 * smooth + 0.001 * loss
        smoothed.append(smooth)
        if (n + 1) % config.sample_every == 0 or n + 1 == config.steps:
            # A sample from the first stream's current hidden state.
            states = [np.array(keras.ops.convert_to_numpy(v.value))[:1] for v in state_vars]
            weights = [keras.ops.convert_to_numpy(w.value) for w in model.weights]
            ids = sample(
                model.numpy_step(weights),
                states,
                x[(n + 1) % windows][0][0],  # The next training input, as min-char-rnn seeds it.
                config.sample_length,
                config.temperature,
                rng,
            )
            samples.append({"step": n + 1, "loss": smooth, "text": decode(vocab, ids)})
            if verbose:
                # min-char-rnn prints the loss per window: 25 ln 65 = 104.4 at first on Shakespeare.
                print(
                    f"\niter {n + 1}, loss {smooth:.4f} nats/char ({smooth * config.seq_length:.2f} "
                    f"per window)\n----\n{samples[-1]['text']}\n----",
                    flush=True,
                )
        if verbose:
            bar.update(n + 1, [("loss", smooth)])
    elapsed = time.perf_counter() - start
    timing = {
        "first_step_s": compile_time,
        "seconds": elapsed,
        "steps_per_s": (config.steps - 1) / elapsed if config.steps > 1 and elapsed > 0 else None,
    }
    return model, vocab, losses, smoothed, samples, timing


def run_corpus(config, out):
    """Trains on `--dataset` and writes samples.txt, metrics.csv, loss.png and the weights."""
    text = load_text(config.dataset, config.data_dir)
    if config.quick:
        text = text[:20000]
    model, vocab, losses, smoothed, samples, timing = train_corpus(config, text)
    (out / "samples.txt").write_text(
        "".join(f"--- step {s['step']}, loss {s['loss']:.4f}\n{s['text']}\n" for s in samples)
    )
    steps = np.arange(1, len(losses) + 1)
    np.savetxt(
        out / "metrics.csv",
        np.c_[steps, losses, smoothed],
        "%d,%.6f,%.6f",
        header="step,loss,smooth_loss",
        comments="",
    )
    plots.loss_curves(
        out / "loss.png",
        {"window loss": losses, "smoothed (0.999)": smoothed},
        f"{config.model} on {config.dataset}: {smoothed[-1]:.3f} nats/char after {len(losses)} steps",
        xlabel="step",
        ylabel="cross-entropy (nats/char)",
        log=False,
    )
    model.save_weights(out / "model.weights.h5")
    print(
        f"{len(text)} characters, {len(vocab)} distinct; {model.count_params()} parameters; "
        f"smoothed loss {math.log(len(vocab)):.3f} -> {smoothed[-1]:.3f} nats/char; "
        f"{timing['steps_per_s'] or 0:.1f} steps/s"
    )
    return {
        "characters": len(text),
        "vocab_size": len(vocab),
        "parameters": model.count_params(),
        "initial_loss": losses[0],
        "uniform_loss": math.log(len(vocab)),
        "final_smooth_loss": smoothed[-1],
        "mean_loss_last_100": float(np.mean(losses[-100:])),
        "samples": samples,
        **timing,
    }


# ---- the notes' toy strings (B 4.2.1) -------------------------------------------------------------


def reconstruct(which, vocab, predictions):
    """The notes' printed string: the first character, then the predictions.

    short: sample[0] + the 16 predictions. long: sentence[0] + window 0's 10 predictions + the last
    prediction of every later window (180 characters).
    """
    text = SHORT if which == "short" else LONG
    if which == "short":
        return text[0] + decode(vocab, predictions[0])
    return text[0] + decode(vocab, predictions[0]) + decode(vocab, predictions[1:, -1])


def train_toy(which, config, verbose=True):
    """Adam(0.1) on the full batch for `epochs`; returns model, losses, string, accuracies, lines."""
    engine.set_seed(config.seed)
    x, y, vocab = toy_data(which)
    model = build_toy_model(
        which, len(vocab), seed=config.seed, head=config.head, dtype_policy=config.dtype_policy
    )
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, epsilon=1e-8),  # torch's epsilon
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    losses, lines = [], []
    for epoch in range(1, config.epochs + 1):
        losses.append(float(model.train_on_batch(x, y)))
        if epoch % 10 == 0 or epoch == config.epochs:
            predictions = np.argmax(model.predict_on_batch(x), axis=-1)
            lines.append(
                f"{epoch:3d} loss: {losses[-1]:.4f} -> {reconstruct(which, vocab, predictions)}"
            )
            if verbose:
                print(lines[-1], flush=True)
    predictions = np.argmax(model.predict_on_batch(x), axis=-1)
    result = {
        "string": reconstruct(which, vocab, predictions),
        "accuracy": float(np.mean(predictions == y)),
        "last_position_accuracy": float(np.mean(predictions[:, -1] == y[:, -1])),
        "vocab_size": len(vocab),
        "windows": len(x),
    }
    return model, losses, result, lines


def run_toy(config, out):
    """Trains on `--text short|long`, checks the reconstructed string, writes loss.png and weights."""
    which = config.text
    model, losses, result, lines = train_toy(which, config)
    text = SHORT if which == "short" else LONG
    result["target"] = text
    if which == "short":
        result["exact"] = result["string"] == text
    else:
        # Position 1 follows only "i": ambiguous, so the notes' bar is everything after it.
        result["exact"] = result["string"][2:] == text[2:]
    print(f"target: {text}\nresult: {result['string']}\nreproduced: {result['exact']}")
    plots.loss_curves(
        out / "loss.png",
        {"loss": losses},
        f"{which} string",
        ylabel="cross-entropy (nats/char)",
        log=False,
    )
    model.save_weights(out / "model.weights.h5")
    return {"parameters": model.count_params(), "losses": losses, "logged": lines, **result}
