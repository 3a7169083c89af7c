"""Character-level RNN language models: Karpathy's min-char-rnn, char-rnn, and two toy strings.

Three things from the notes, one recipe:

- `--model minimal` (default; section 7.3): Karpathy's minimal vanilla RNN, min-char-rnn.py.
  h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h), y_t = h_t W_hy + b_y, with one-hot characters x_t,
  100 hidden units, weights N(0, 0.01^2), biases 0 (23,165 parameters for 65 characters).
  Windows of 25 characters are read one after another (batch 1); the hidden state left by one window
  starts the next, and is reset to zero when the text wraps around. The loss is the cross-entropy
  summed over the window; Adagrad 0.1 with every gradient clipped to [-5, 5] (Keras'
  `Adagrad(initial_accumulator_value=0, epsilon=1e-8, clipvalue=5)` is exactly min-char-rnn's
  update). The model is written with keras.ops and trained through a compiled step
  (`engine.function`) that carries the hidden state across windows in a variable.
- `--model lstm --layers 2` (section 7.6): char-rnn as in char-rnn-tensorflow: embedding -> stacked
  LSTM (128 units) -> affine; 50 parallel streams of 50-character windows, Adam 0.002 decayed by
  0.97 per pass over the text, gradients clipped to global norm 5; the same stateful training step.
  `--model rnn` / `gru` stack SimpleRNN / GRU layers instead.
- `--text short|long` (seeds/001 II.4.2.1.1 and II.4.2.1.2): the notes' two toy strings, trained
  with Adam 0.1 for 100 full-batch epochs and reproduced character for character:
  "wow it's amazing!" through one SimpleRNN(13) whose tanh outputs are the logits (351 parameters),
  and "if you want to build a ship, ..." (180 characters, 25 distinct, 170 windows of 10) through
  two SimpleRNN(25) and an affine layer (3,200 parameters; torch's two biases per layer make 3,250).
  The notes' code has bugs that are documented here, not copied: `eye[x - 1]` shifts every one-hot
  vector by one (the first character becomes the last), `list(set(text))` orders the vocabulary
  differently in every process (we sort it), and `nn.RNN` without `batch_first` runs the recurrence
  across the 170 windows instead of along each (we feed (windows, 10, 25) batch-first).
  For the long sentence the first prediction (after seeing only "i") is ambiguous, so all characters
  but that first one must be right.

Corpora (`--dataset`): "pydoc" (default, embedded: the English help topics that ship with Python,
about 465,000 characters, see datasets/text.py), "shakespeare" (Tiny Shakespeare, 1.1 MB, downloaded
on request into the Keras cache), "file" (a local text file or folder, `--data-dir`).

Sampling: from the current hidden state, one character at a time, drawn from softmax(logits / T)
with `--temperature` T (1 = the model's distribution, towards 0 = greedy). Every `--sample-every`
steps a 200-character sample is printed with the smoothed loss (nats per character; min-char-rnn
prints 25 times this, starting from 25 ln 65 = 104.4 on Shakespeare).

Outputs (under --out, default runs/char_rnn): samples.txt (every printed sample), loss.png,
metrics.csv, model.weights.h5, summary.json (losses, samples, steps/s). For `--text`: loss.png,
model.weights.h5 and summary.json with the reconstructed string.

    python -m recipes.char_rnn                      # min-char-rnn on the pydoc topics
    python -m recipes.char_rnn --model lstm --layers 2 --dataset shakespeare
    python -m recipes.char_rnn --text long
"""

import dataclasses
import functools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "A 7.3, A 7.6, B 4.2.1"
SHORT = "wow it's amazing!"
LONG = (
    "if you want to build a ship, don't drum up people together to "
    "collect wood and don't assign them tasks and work, but rather "
    "teach them to long for the endless immensity of the sea."
)
WINDOW = 10  # The long sentence's sliding window (sequence_length).
MODELS = ("minimal", "rnn", "lstm", "gru")
# Per-model defaults: min-char-rnn.py and char-rnn-tensorflow's train.py.
PRESETS = {
    "minimal": {"hidden": 100, "seq_length": 25, "batch_size": 1, "learning_rate": 0.1},
    "rnn": {"hidden": 128, "seq_length": 50, "batch_size": 50, "learning_rate": 0.002},
    "lstm": {"hidden": 128, "seq_length": 50, "batch_size": 50, "learning_rate": 0.002},
    "gru": {"hidden": 128, "seq_length": 50, "batch_size": 50, "learning_rate": 0.002},
}


@dataclasses.dataclass
class Config(cli.RunConfig):
    text: str = cli.option(
        "corpus",
        "corpus: train on --dataset; short/long: the notes' two toy strings",
        choices=("corpus", "short", "long"),
    )
    dataset: str = cli.option(
        "pydoc",
        "corpus: embedded pydoc topics, Tiny Shakespeare (download) or a local file",
        choices=("pydoc", "shakespeare", "file"),
    )
    data_dir: str = cli.option(None, "with --dataset file: a text file or a folder of *.txt files")
    model: str = cli.option("minimal", "minimal (min-char-rnn) or stacked rnn/lstm/gru", choices=MODELS)
    layers: int = cli.option(2, "stacked recurrent layers (rnn/lstm/gru; minimal has one)")
    hidden: int = cli.option(None, "hidden units (default 100 minimal, 128 otherwise)")
    seq_length: int = cli.option(None, "characters per window (default 25 minimal, 50 otherwise)")
    batch_size: int = cli.option(1, "parallel streams (default 1 minimal, 50 otherwise)")
    learning_rate: float = cli.option(None, "default 0.1 Adagrad (minimal), 0.002 Adam; --text: 0.1")
    decay: float = cli.option(0.97, "rnn/lstm/gru: learning rate factor per pass over the text")
    clip: float = cli.option(5.0, "gradient clipping: each value (minimal) or the global norm")
    steps: int = cli.option(30000, "training steps (windows) on the corpus")
    sample_every: int = cli.option(2000, "print a sample and the loss every this many steps")
    sample_length: int = cli.option(200, "characters per sample")
    temperature: float = cli.option(1.0, "sampling temperature (softmax of logits / T)")
    epochs: int = cli.option(100, "--text short/long: full-batch Adam epochs")
    head: bool = cli.option(
        True,
        "--text short: an affine layer after the RNN; --no-head feeds the tanh outputs to the loss "
        "as the notes do (logits in [-1, 1]: loss >= 0.965, exact for some seeds only)",
    )


QUICK = {"steps": 60, "sample_every": 30, "sample_length": 40, "hidden": 16, "seq_length": 10}


def _given(argv, flag):
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    return any(a == flag or a.startswith(flag + "=") for a in args)


def apply_presets(config, argv=None):
    """Fills the per-model defaults the user left unset; checks the values."""
    preset = PRESETS[config.model]
    for name in ("hidden", "seq_length", "learning_rate"):
        if getattr(config, name) is None:
            setattr(config, name, preset[name])
    if not _given(argv, "--batch-size"):
        config.batch_size = 2 if config.quick and config.model != "minimal" else preset["batch_size"]
    if config.text != "corpus" and not _given(argv, "--learning-rate"):
        config.learning_rate = 0.1
    checks = {
        "--hidden": config.hidden,
        "--seq-length": config.seq_length,
        "--layers": config.layers,
        "--sample-every": config.sample_every,
        "--sample-length": config.sample_length,
    }
    bad = [flag for flag, value in checks.items() if value < 1]
    if bad:
        raise cli.UsageError(f"{', '.join(bad)} must be at least 1")
    if not config.temperature > 0 or not config.learning_rate > 0 or config.steps < 1:
        raise cli.UsageError("--temperature and --learning-rate must be positive, --steps at least 1")
    return config


# --------------------------------------------------------------------------------------------------
# Vocabulary and data


class Vocabulary:
    """The sorted distinct characters of a text (`list(set(text))` would change order per process)."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        return np.array([self.index[c] for c in text], "int32")

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in ids)


def streams(ids, batch_size, seq_length):
    """Splits the encoded text into `batch_size` contiguous streams of whole windows.

    Returns inputs and targets of shape (windows, batch_size, seq_length): window k of stream b is
    the characters [k T, (k + 1) T) of that stream, and its targets the same shifted by one, so a
    stream's hidden state can run on from one window to the next. With batch 1 these are
    min-char-rnn's windows p = 0, 25, 50, ... (it also stops before the last partial window).
    """
    per_stream = (len(ids) - 1) // batch_size
    windows = per_stream // seq_length
    if windows < 1:
        raise cli.UsageError(
            f"the text ({len(ids)} characters) is too short for {batch_size} streams of "
            f"{seq_length}-character windows"
        )
    span = windows * seq_length
    starts = np.arange(batch_size) * per_stream
    x = np.stack([ids[s : s + span] for s in starts])
    y = np.stack([ids[s + 1 : s + span + 1] for s in starts])
    shape = (batch_size, windows, seq_length)
    return x.reshape(shape).swapaxes(0, 1), y.reshape(shape).swapaxes(0, 1)


# --------------------------------------------------------------------------------------------------
# Models: call(ids, states) -> (logits, states); `numpy_step` runs one character for sampling.


@functools.cache
def model_classes():
    """(MinimalRNN, StackedRNN), defined on first use: subclassing keras.Model imports the backend,
    which `--help` must not."""

    class MinimalRNN(keras.Model):
        """min-char-rnn's vanilla RNN with explicit weights (row-vector layout: W_xh is (vocab, hidden)).

        The input term is a one-hot x_t times W_xh, as in min-char-rnn. (A gather of row x_t would
        give the same forward pass, but on TensorFlow its gradient is a list of rows in which a
        character seen twice in a window appears twice, and Keras' optimizers then square and clip the
        rows one by one instead of their sum: no longer min-char-rnn's update.)
        """

        def __init__(self, vocab_size, hidden=100, seed=0, **kwargs):
            super().__init__(**kwargs)
            self.vocab_size, self.hidden = vocab_size, hidden
            small = keras.initializers.RandomNormal(0.0, 0.01, seed=seed)
            self.w_xh = self.add_weight((vocab_size, hidden), small, name="w_xh")
            self.w_hh = self.add_weight((hidden, hidden), small, name="w_hh")
            self.w_hy = self.add_weight((hidden, vocab_size), small, name="w_hy")
            self.b_h = self.add_weight((hidden,), "zeros", name="b_h")
            self.b_y = self.add_weight((vocab_size,), "zeros", name="b_y")

        def state_shapes(self, batch_size):
            return [(batch_size, self.hidden)]

        def call(self, ids, states):
            ops = keras.ops
            h = states[0]
            inputs = ops.matmul(ops.one_hot(ids, self.vocab_size), self.w_xh)  # (batch, T, hidden)
            outputs = []
            for t in range(ids.shape[1]):  # Unrolled: T is fixed, as in min-char-rnn.
                h = ops.tanh(inputs[:, t] + ops.matmul(h, self.w_hh) + self.b_h)
                outputs.append(h)
            logits = ops.matmul(ops.stack(outputs, axis=1), self.w_hy) + self.b_y
            return logits, [h]

        def numpy_step(self, weights):
            w_xh, w_hh, w_hy, b_h, b_y = weights

            def step(i, states):
                h = np.tanh(w_xh[i] + states[0] @ w_hh + b_h)
                return h @ w_hy + b_y, [h]

            return step

    class StackedRNN(keras.Model):
        """char-rnn: embedding (vocab, hidden), `layers` x LSTM/GRU/SimpleRNN(hidden), Dense(vocab)."""

        CELLS = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}

        def __init__(self, vocab_size, hidden=128, layers=2, kind="lstm", seed=0, **kwargs):
            super().__init__(**kwargs)
            self.vocab_size, self.hidden, self.kind = vocab_size, hidden, kind
            # An embedding as a one-hot product (see MinimalRNN on why not a gather), Embedding's init.
            uniform = keras.initializers.RandomUniform(-0.05, 0.05, seed=seed)
            self.embedding = keras.layers.Dense(
                hidden, use_bias=False, kernel_initializer=uniform, name="embedding"
            )
            cell = getattr(keras.layers, self.CELLS[kind])
            self.rnns = [
                cell(hidden, return_sequences=True, return_state=True, seed=seed + i, name=f"{kind}_{i}")
                for i in range(layers)
            ]
            self.head = keras.layers.Dense(vocab_size, name="logits")

        def _per_layer(self):
            return 2 if self.kind == "lstm" else 1

        def state_shapes(self, batch_size):
            return [(batch_size, self.hidden)] * (self._per_layer() * len(self.rnns))

        def call(self, ids, states):
            x = self.embedding(keras.ops.one_hot(ids, self.vocab_size))
            new, k = [], self._per_layer()
            for i, rnn in enumerate(self.rnns):
                own = list(states[i * k : (i + 1) * k])
                x, *state = rnn(x, initial_state=own if k > 1 else own[0])
                new.extend(state)
            return self.head(x), new

        def numpy_step(self, weights):
            """One character through NumPy copies of the weights (Keras' gate layouts)."""
            embedding, rest = weights[0], weights[1:]
            per = 3  # kernel, recurrent kernel, bias
            cells = [rest[i * per : (i + 1) * per] for i in range(len(self.rnns))]
            w_out, b_out = rest[-2:]
            n, k = self.hidden, self._per_layer()

            def sigmoid(z):
                return 1.0 / (1.0 + np.exp(-z))

            def step(i, states):
                x, new = embedding[i][None], []
                for layer, (w, u, b) in enumerate(cells):
                    if self.kind == "lstm":
                        h, c = states[2 * layer], states[2 * layer + 1]
                        z = x @ w + h @ u + b
                        gi, gf, gc, go = (z[:, j * n : (j + 1) * n] for j in range(4))
                        c = sigmoid(gf) * c + sigmoid(gi) * np.tanh(gc)
                        h = sigmoid(go) * np.tanh(c)
                        new += [h, c]
                    elif self.kind == "gru":  # reset_after=True: bias has an input and a recurrent row.
                        h = states[layer]
                        zx, zh = x @ w + b[0], h @ u + b[1]
                        z = sigmoid(zx[:, :n] + zh[:, :n])
                        r = sigmoid(zx[:, n : 2 * n] + zh[:, n : 2 * n])
                        cand = np.tanh(zx[:, 2 * n :] + r * zh[:, 2 * n :])
                        h = z * h + (1 - z) * cand
                        new.append(h)
                    else:
                        h = np.tanh(x @ w + states[layer] @ u + b)
                        new.append(h)
                    x = new[-1] if k == 1 else new[-2]
                return (x @ w_out + b_out)[0], new

            return step

    return MinimalRNN, StackedRNN


def build_model(config, vocab_size):
    if config.model == "minimal":
        model = model_classes()[0](vocab_size, config.hidden, seed=config.seed, name="min_char_rnn")
    else:
        model = model_classes()[1](
            vocab_size, config.hidden, config.layers, config.model, config.seed, name="char_rnn"
        )
    states = [keras.ops.zeros(s) for s in model.state_shapes(1)]
    model(keras.ops.zeros((1, 1), "int32"), states)  # Builds the weights.
    return model


def build_optimizer(config, steps_per_pass):
    if config.model == "minimal":
        return keras.optimizers.Adagrad(
            config.learning_rate, initial_accumulator_value=0.0, epsilon=1e-8, clipvalue=config.clip
        )
    schedule = keras.optimizers.schedules.ExponentialDecay(
        config.learning_rate, steps_per_pass, config.decay, staircase=True
    )
    return keras.optimizers.Adam(schedule, global_clipnorm=config.clip)


# --------------------------------------------------------------------------------------------------
# Training on a corpus


def make_step(model, optimizer, state_vars, reduction):
    """The compiled step: loss on one window per stream, update, hidden state carried over."""
    params = model.trainable_variables
    ops = keras.ops

    def step(inputs, targets):
        def loss_fn():
            logits, new = model(inputs, [v.value for v in state_vars])
            losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
            # minimal: min-char-rnn's sum over the window; stacked: the mean, as char-rnn.
            total = ops.sum(losses) if reduction == "sum" else ops.mean(losses)
            return total, (ops.mean(losses), new)

        (_, (per_char, new)), grads = engine.value_and_grad(loss_fn, params, has_aux=True)
        optimizer.apply(grads, params)
        for variable, value in zip(state_vars, new):
            variable.assign(ops.stop_gradient(value))
        return ops.stop_gradient(per_char)

    return engine.function(step, [model, optimizer, *state_vars])


def sample(step, states, first, length, temperature, rng):
    """`length` character ids drawn one at a time from softmax(logits / temperature)."""
    states, i, out = [np.array(s, "float64") for s in states], int(first), []
    for _ in range(length):
        logits, states = step(i, states)
        z = np.asarray(logits, "float64").reshape(-1) / temperature
        p = np.exp(z - z.max())
        i = int(rng.choice(len(p), p=p / p.sum()))
        out.append(i)
    return out


def train_corpus(config, text, verbose=True):
    """Trains on `text`; returns the model, vocabulary, per-step losses, samples and timings."""
    engine.set_seed(config.seed)
    vocab = Vocabulary(text)
    x, y = streams(vocab.encode(text), config.batch_size, config.seq_length)
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
    bar = keras.utils.Progbar(config.steps, verbose=1 if verbose else 0, stateful_metrics=["loss"])
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
            samples.append({"step": n + 1, "loss": smooth, "text": vocab.decode(ids)})
            if verbose:
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
    from datasets.text import load_text

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


# --------------------------------------------------------------------------------------------------
# The notes' toy strings (seeds/001 II.4.2.1)


def toy_data(which):
    """One-hot inputs, target ids and the vocabulary of the short string or the long sentence."""
    if which == "short":
        vocab = Vocabulary(SHORT)
        ids = vocab.encode(SHORT)
        x, y = ids[None, :-1], ids[None, 1:]  # One sequence of 16 steps.
    else:
        vocab = Vocabulary(LONG)
        ids = vocab.encode(LONG)
        starts = range(len(LONG) - WINDOW)  # 170 windows.
        x = np.stack([ids[i : i + WINDOW] for i in starts])
        y = np.stack([ids[i + 1 : i + WINDOW + 1] for i in starts])
    eye = np.eye(len(vocab), dtype="float32")
    return eye[x], y.astype("int32"), vocab  # eye[x], not the notes' eye[x - 1].


def build_toy_model(which, vocab_size, seed=0, head=True):
    """short: SimpleRNN(13) -> Dense(13) (`head=False`: the RNN's outputs are the logits);
    long: SimpleRNN(25) x 2 -> Dense(25)."""
    layers = [keras.Input((None, vocab_size))]
    count = 1 if which == "short" else 2
    for i in range(count):
        layers.append(
            keras.layers.SimpleRNN(vocab_size, return_sequences=True, seed=seed + i, name=f"rnn_{i}")
        )
    if which == "long" or head:
        layers.append(keras.layers.Dense(vocab_size, name="fc"))
    return keras.Sequential(layers, name=f"char_rnn_{which}")


def reconstruct(which, vocab, predictions):
    """The notes' printed string: the first character, then the predictions.

    short: sample[0] + the 16 predictions. long: sentence[0] + window 0's 10 predictions + the last
    prediction of every later window (180 characters).
    """
    text = SHORT if which == "short" else LONG
    if which == "short":
        return text[0] + vocab.decode(predictions[0])
    return text[0] + vocab.decode(predictions[0]) + vocab.decode(predictions[1:, -1])


def train_toy(which, config, verbose=True):
    """Adam(0.1) on the full batch for `epochs`; returns model, losses, string, accuracies, lines."""
    engine.set_seed(config.seed)
    x, y, vocab = toy_data(which)
    model = build_toy_model(which, len(vocab), seed=config.seed, head=config.head)
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


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.char_rnn", description=__doc__.splitlines()[0], quick=QUICK
    )
    apply_presets(config, argv)  # --quick leaves --text short/long as the notes run them (seconds).
    out = Path(config.out or "runs/char_rnn")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = run_corpus(config, out) if config.text == "corpus" else run_toy(config, out)
    summary = {
        "section": SECTION,
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
        "wall_s": time.perf_counter() - start,
        **result,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
