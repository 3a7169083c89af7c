"""Binary addition with a vanilla RNN: trask's NumPy BPTT and the same network in Keras.

Reproduces the "i am trask" toy model of A 7.1. Two 7-bit numbers are fed one bit pair per time
step, least significant bit first; the network writes the sum's bit at the same step, 8 steps in
all, so it has to learn to carry through its hidden state. 16 sigmoid units, no biases, the cost
1/2 sum_i (t_i - y_i)^2, one random pair per step, 10,000 steps of gradient descent at 0.1
(trask's settings, which the notes leave open), trained twice from the same weights and pairs:
with the notes' BPTT written out in NumPy, and as a Keras RNN with SGD, whose every step is
exactly one step of trask's update. Every 1,000 steps it prints trask's lines:

    Error:[3.45638663]
    Pred:[0 0 0 0 0 0 0 1]
    True:[0 1 0 0 0 1 0 1]
    9 + 60 = 1
    ------------

and at the end the accuracy on every 7-bit pair that training never drew and on 1,000 random
10-bit pairs over 11 steps (the notes: the carry rule generalises; 100% both).

    python -m recipes.rnn_binary_addition
    KERAS_BACKEND=jax python -m recipes.rnn_binary_addition --implementation numpy --seed 2

Measured: 100% exact on all 8,928 held-out 7-bit sums (NumPy 7-8 s; the Keras RNN 4.5 s of
training on JAX, 22 s on TensorFlow; 2 CPU cores).

Outputs (under --out, default runs/rnn_binary_addition): error.png (trask's error per step,
smoothed, for NumPy and Keras), summary.json, model.keras.
"""

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "A 7.1"
IMPLEMENTATIONS = ("both", "numpy", "keras")


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(10000, "random pairs trained on, one per step (trask: 10,000 steps)")
    batch_size: int = cli.option(1, "pairs per Keras SGD step (trask: 1; the cost is summed over them)")
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    implementation: str = cli.option("both", "train trask's NumPy BPTT, the Keras RNN or both",
                                     choices=IMPLEMENTATIONS)  # fmt: skip
    hidden: int = cli.option(16, "hidden units")
    learning_rate: float = cli.option(0.1, "gradient-descent step alpha")
    bits: int = cli.option(7, "bits of each operand; the sum has one more")
    test_bits: int = cli.option(10, "bits of the operands of the generalisation test")
    log_every: int = cli.option(1000, "print trask's lines every this many steps")


QUICK = {"epochs": 100, "log_every": 50, "implementation": "both", "bits": 5, "test_bits": 6}


# ---- data ----------------------------------------------------------------------------------------


def to_bits(numbers, steps):
    """Integers -> bits (len, steps), least significant bit first."""
    numbers = np.asarray(numbers, dtype=np.int64)
    return ((numbers[..., None] >> np.arange(steps)) & 1).astype(np.float64)


def from_bits(bits):
    """Bits (..., steps), least significant first -> integers."""
    bits = np.asarray(bits, dtype=np.int64)
    return (bits << np.arange(bits.shape[-1])).sum(-1)


def encode(a, b, steps):
    """Inputs (n, steps, 2) and targets (n, steps, 1) for a + b, one bit per step, LSB first."""
    inputs = np.stack([to_bits(a, steps), to_bits(b, steps)], axis=-1)
    return inputs, to_bits(np.asarray(a) + np.asarray(b), steps)[..., None]


def initial_weights(rng, hidden, input_dim=2):
    """trask's initialisation, in his order: W_xh (2, h), W_hy (h, 1), W_hh (h, h), uniform [-1, 1)."""
    w_xh = 2 * rng.random((input_dim, hidden)) - 1
    w_hy = 2 * rng.random((hidden, 1)) - 1
    w_hh = 2 * rng.random((hidden, hidden)) - 1
    return {"w_xh": w_xh, "w_hh": w_hh, "w_hy": w_hy}


def training_pairs(rng, steps, bits):
    """trask's draws: a, b uniform in [0, 2**bits), one pair per training step."""
    pairs = np.empty((steps, 2), np.int64)
    for step in range(steps):  # a then b, step by step: the order trask's loop draws them in.
        pairs[step] = rng.randint(2**bits), rng.randint(2**bits)
    return pairs


# ---- trask's NumPy network and BPTT -----------------------------------------------------------


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def forward(weights, inputs):
    """Runs the RNN over inputs (n, steps, 2); returns hidden states (n, steps, h) and outputs.

        z_i = x_i W_xh + h_{i-1} W_hh,  h_i = sigmoid(z_i),  y_i = sigmoid(h_i W_hy)   (no biases)

    Outputs: (n, steps, 1), y_i the probability that bit i of the sum is 1.
    """
    n, steps, _ = inputs.shape
    h = np.zeros((n, weights["w_hh"].shape[0]))
    hs = []
    for i in range(steps):
        h = sigmoid(inputs[:, i] @ weights["w_xh"] + h @ weights["w_hh"])
        hs.append(h)
    hs = np.stack(hs, axis=1)
    return hs, sigmoid(hs @ weights["w_hy"])


def bptt_update(weights, inputs, targets):
    """The notes' BPTT for one sequence: the update direction (t - y) of every weight and the error.

        d_i = (t_i - y_i) y_i (1 - y_i)
        dz_i = (d_i W_hy^T + dz_{i+1} W_hh^T) h_i (1 - h_i),  dz_{n+1} = 0, h_{-1} = 0
        W_hy += alpha sum_i h_i^T d_i
        W_hh += alpha sum_i h_{i-1}^T dz_i,  W_xh += alpha sum_i x_i^T dz_i

    Returns `(updates, error)`: `updates[name]` is minus the gradient of 1/2 sum_i (t_i - y_i)^2, the
    amount trask adds (times alpha); `error` is his overallError, sum_i |t_i - y_i|.
    """
    hs, ys = forward(weights, inputs)
    hs, ys, xs, ts = hs[0], ys[0], inputs[0], targets[0]
    steps = len(xs)
    delta_y = (ts - ys) * ys * (1 - ys)  # (steps, 1)
    updates = {name: np.zeros_like(value) for name, value in weights.items()}
    dz_next = np.zeros(hs.shape[1])
    for i in reversed(range(steps)):
        dz = (delta_y[i] @ weights["w_hy"].T + dz_next @ weights["w_hh"].T) * hs[i] * (1 - hs[i])
        h_prev = hs[i - 1] if i > 0 else np.zeros_like(hs[i])
        updates["w_hy"] += np.outer(hs[i], delta_y[i])
        updates["w_hh"] += np.outer(h_prev, dz)
        updates["w_xh"] += np.outer(xs[i], dz)
        dz_next = dz
    return updates, np.abs(ts - ys).sum()


def trask_lines(error, predicted_bits, a, b):
    """trask's printed block: Error, Pred and True bits (most significant first), a + b = prediction."""
    true_bits = to_bits(a + b, len(predicted_bits)).astype(int)[::-1]
    pred = np.asarray(predicted_bits, int)
    return [
        f"Error:{np.array([float(error)])}",
        f"Pred:{pred[::-1]}",
        f"True:{true_bits}",
        f"{a} + {b} = {from_bits(pred)}",
        "------------",
    ]


def train_numpy(weights, pairs, config, verbose=True):
    """trask's training loop; returns the trained weights, the error per step and the printed lines."""
    weights = {name: value.copy() for name, value in weights.items()}
    steps = config.bits + 1
    errors, lines = np.empty(len(pairs)), []
    all_inputs, all_targets = encode(pairs[:, 0], pairs[:, 1], steps)
    for step, (a, b) in enumerate(pairs):
        inputs, targets = all_inputs[step : step + 1], all_targets[step : step + 1]
        updates, errors[step] = bptt_update(weights, inputs, targets)
        if step % config.log_every == 0:
            _, ys = forward(weights, inputs)
            block = trask_lines(errors[step], np.round(ys[0, :, 0]), a, b)
            lines += block
            if verbose:
                print("\n".join(block), flush=True)
        for name in weights:
            weights[name] += config.learning_rate * updates[name]  # in place: `updates` is fresh
    return weights, errors, lines


# ---- the Keras RNN ---------------------------------------------------------------------------


def build_model(hidden=16):
    """Input (time, 2) bit pairs -> RNN(VanillaRNNCell(h, sigmoid, no bias)) -> Dense(1, sigmoid)."""
    import layers

    cell = layers.VanillaRNNCell(hidden, activation="sigmoid", use_bias=False, name="cell")
    return keras.Sequential(
        [
            keras.Input((None, 2)),
            keras.layers.RNN(cell, return_sequences=True, name="rnn"),
            # (batch, steps, h): h_i = sigmoid(x_i W_xh + h_{i-1} W_hh)
            keras.layers.Dense(1, activation="sigmoid", use_bias=False, name="output"),
            # (batch, steps, 1): y_i = sigmoid(h_i W_hy), the sum's bit i
        ],
        name="binary_adder",
    )


def set_weights(model, weights):
    model.get_layer("rnn").cell.kernel.assign(weights["w_xh"].astype("float32"))
    model.get_layer("rnn").cell.recurrent_kernel.assign(weights["w_hh"].astype("float32"))
    model.get_layer("output").kernel.assign(weights["w_hy"].astype("float32"))


def get_weights(model):
    cell = model.get_layer("rnn").cell
    values = (cell.kernel, cell.recurrent_kernel, model.get_layer("output").kernel)
    return {name: np.asarray(keras.ops.convert_to_numpy(v), np.float64)
            for name, v in zip(("w_xh", "w_hh", "w_hy"), values)}  # fmt: skip


def half_squared_error(targets, outputs):
    """1/2 sum_i (t_i - y_i)^2 per sequence: the notes' L2 cost (trask's update is its descent)."""
    return 0.5 * keras.ops.sum(keras.ops.square(targets - outputs), axis=(1, 2))


def compile_model(model, config):
    """SGD(alpha) on 1/2 sum (t - y)^2, summed over the batch: with batch 1, trask's update exactly."""
    import keras as k

    class HalfSquaredError(k.losses.Loss):
        def call(self, y_true, y_pred):
            return half_squared_error(y_true, y_pred)

    loss = HalfSquaredError(reduction="sum", name="half_sse")
    # One compiled call runs a whole block of steps on TF and JAX (torch runs eagerly, one by one).
    per_call = (
        1 if engine.backend() == "torch" else max(1, min(200, config.log_every // config.batch_size))
    )
    model.compile(k.optimizers.SGD(config.learning_rate), loss=loss, steps_per_execution=per_call)


def train_keras(weights, pairs, config, verbose=True):
    """The same run in Keras: SGD(alpha) with `model.fit`, trask's pairs in order, from `weights`.

    Every `log_every` steps it prints trask's block for the next pair (the outputs before that step's
    update, as trask prints them) and records the mean error over the block's pairs.
    """
    model = build_model(config.hidden)
    set_weights(model, weights)
    compile_model(model, config)
    inputs, targets = encode(pairs[:, 0], pairs[:, 1], config.bits + 1)
    inputs, targets = inputs.astype("float32"), targets.astype("float32")
    steps, errors, lines = [], [], []
    for start in range(0, len(pairs), config.log_every):
        end = min(start + config.log_every, len(pairs))
        outputs = model.predict(inputs[start:end], batch_size=4096, verbose=0)[..., 0]
        block_errors = np.abs(targets[start:end, :, 0] - outputs).sum(-1)
        steps.append(start)
        errors.append(float(block_errors.mean()))
        block = trask_lines(block_errors[0], np.round(outputs[0]), *pairs[start])
        lines += block
        if verbose:
            print("\n".join(block), flush=True)
        model.fit(inputs[start:end], targets[start:end], batch_size=config.batch_size, epochs=1,
                  shuffle=False, verbose=0)  # fmt: skip
    return model, (np.array(steps), np.array(errors)), lines


# ---- evaluation ------------------------------------------------------------------------------


def held_out_pairs(pairs, bits):
    """Every (a, b) with a, b < 2**bits that training never drew."""
    seen = np.zeros((2**bits, 2**bits), bool)
    seen[pairs[:, 0], pairs[:, 1]] = True
    return np.argwhere(~seen)


def accuracy(predict, pairs, bits):
    """Fraction of pairs whose sum is predicted exactly, on bits + 1 steps."""
    inputs, _ = encode(pairs[:, 0], pairs[:, 1], bits + 1)
    predicted = from_bits(np.round(predict(inputs)[..., 0]))
    return float(np.mean(predicted == pairs.sum(1)))


def numpy_predictor(weights):
    """inputs (n, steps, 2) -> outputs (n, steps, 1) of the NumPy network with `weights`."""

    def predict(inputs):
        return forward(weights, inputs)[1]

    return predict


def keras_predictor(model):
    """inputs (n, steps, 2) -> outputs (n, steps, 1) of the Keras model."""

    def predict(inputs):
        return model.predict(inputs.astype("float32"), batch_size=4096, verbose=0)

    return predict


def evaluate(predict, pairs, config, rng_seed):
    """Accuracy on every `bits`-bit pair training never drew and on 1,000 random `test_bits` pairs
    (the notes' claim that the carry rule learnt on 7 bits generalises)."""
    rng = np.random.RandomState(rng_seed + 1)
    held_out = held_out_pairs(pairs, config.bits)
    wide = rng.randint(2**config.test_bits, size=(1000, 2))
    return {
        "held_out_pairs": len(held_out),
        "held_out_accuracy": accuracy(predict, held_out, config.bits),
        f"accuracy_{config.test_bits}_bits": accuracy(predict, wide, config.test_bits),
    }


def block_means(errors, every):
    """(first step, mean error) of every block of `every` steps."""
    starts = np.arange(0, len(errors), every)
    return starts, np.array([errors[i : i + every].mean() for i in starts])


def plot_errors(path, curves):
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for name, (steps, errors) in curves.items():
        ax.plot(steps, errors, marker="o", markersize=3, label=name)
    ax.set(xlabel="training pairs seen", ylabel="mean error sum_i |t_i - y_i|",
           title="Binary addition: trask's error, averaged per logging block")  # fmt: skip
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- the run ---------------------------------------------------------------------------------


def run(implementation, weights, pairs, config, out):
    """Trains "numpy" (trask's BPTT) or "keras" from `weights`: summary numbers and error curve."""
    in_numpy = implementation == "numpy"
    print("== NumPy BPTT (trask) ==" if in_numpy else f"== Keras RNN ({engine.backend()}) ==")
    start = time.perf_counter()
    if in_numpy:
        trained, errors, _ = train_numpy(weights, pairs, config)
        seconds = time.perf_counter() - start
        predict, curve = numpy_predictor(trained), block_means(errors, config.log_every)
    else:
        model, curve, _ = train_keras(weights, pairs, config)
        seconds = time.perf_counter() - start
        predict = keras_predictor(model)
        engine.save_model(model, out / "model.keras")
    result = evaluate(predict, pairs, config, config.seed)
    return {"seconds": seconds, "final_block_error": float(curve[1][-1]), **result}, curve


def print_accuracies(summary, config):
    for name in ("numpy", "keras"):
        if name in summary:
            numbers = summary[name]
            print(
                f"{name}: {numbers['held_out_accuracy']:.2%} of {numbers['held_out_pairs']} held-out "
                f"{config.bits}-bit sums, {numbers[f'accuracy_{config.test_bits}_bits']:.2%} of 1000 "
                f"{config.test_bits}-bit sums exact; {config.epochs} steps in {numbers['seconds']:.1f} s"
            )


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.rnn_binary_addition",
        description=__doc__.splitlines()[0],
        quick=QUICK,
    )
    if min(config.epochs, config.hidden, config.log_every, config.bits) < 1:
        raise cli.UsageError("--epochs, --hidden, --log-every and --bits must be at least 1")
    if config.bits > 12 or config.test_bits > 30:
        raise cli.UsageError("--bits must be at most 12 and --test-bits at most 30")
    out = Path(config.out or "runs/rnn_binary_addition")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)
    rng = np.random.RandomState(config.seed)  # trask: np.random.seed(0), then init, then pairs.
    weights = initial_weights(rng, config.hidden)
    pairs = training_pairs(rng, config.epochs, config.bits)

    summary = {"backend": engine.backend(), "config": dataclasses.asdict(config)}
    curves = {}
    if config.implementation in ("both", "numpy"):
        summary["numpy"], curves["NumPy BPTT"] = run("numpy", weights, pairs, config, out)
    if config.implementation in ("both", "keras"):
        summary["keras"], curves["Keras RNN"] = run("keras", weights, pairs, config, out)
    print_accuracies(summary, config)
    plot_errors(out / "error.png", curves)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
