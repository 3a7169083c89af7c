"""Time series with an RNN: next-day Close from windows of 7 days of 5 features.

Reproduces "Time series: stock prices" of B 4.2.2 with the settings of the lab it follows
(lab 12-5): five columns Open, High, Low, Volume, Close, min-max scaled; the first 70% of the days
for training; windows of 7 days of all five features; target the next day's Close (many-to-one);
an LSTM with 10 units whose last output an affine layer maps to one number; MSE; Adam 0.01; 500
full-batch iterations. The notes' CSV is not shipped: the embedded series is generated, a random
walk (unpredictable) plus a 30-day season (predictable), so the network has to beat the naive
forecast "tomorrow's Close = today's", reported as the baseline. Printed as in the lab, then the
test errors (scaled Close; JAX, seed 0):

    [step: 0] loss: 0.6686624884605408
    ...
    lstm: test RMSE 0.0357, last-value baseline 0.0628 (500 iterations in 16.6 s)

    python -m recipes.time_series
    KERAS_BACKEND=torch python -m recipes.time_series --cell rnn --epochs 1000

Measured (default run, 2 CPU cores): test RMSE of the LSTM 0.0350 on TensorFlow (11 s), 0.0350 on
torch (17 s), 0.0357 on JAX (7 s); the last-value baseline 0.0628.

Outputs (under --out, default runs/time_series): prediction.png (test Close, the predictions and
the baseline), loss.png, series.png, summary.json.
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

SECTION = "B 4.2.2"
COLUMNS = ("Open", "High", "Low", "Volume", "Close")
CELLS = ("lstm", "rnn")


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(500, "full-batch Adam iterations (the lab: 500)")
    batch_size: int = cli.option(
        1024, "examples per step (at least the training windows: full batch, as the lab)"
    )
    dataset: str = cli.option("synthetic", "the generated 5-feature series", choices=("synthetic",))
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    cell: str = cli.option("both", "lstm (the lab), rnn (vanilla) or both", choices=(*CELLS, "both"))
    days: int = cli.option(732, "length of the generated series (the lab's file: 732 days)")
    seq_length: int = cli.option(7, "days per input window")
    hidden: int = cli.option(10, "hidden units of the RNN")
    learning_rate: float = cli.option(0.01, "Adam learning rate")
    train_fraction: float = cli.option(0.7, "leading fraction of the days used for training")
    scaling: str = cli.option("split", "min-max per split (the lab) or with the training part's range",
                              choices=("split", "train"))  # fmt: skip
    log_every: int = cli.option(50, "print the loss every this many iterations")


QUICK = {"epochs": 300, "log_every": 100, "cell": "rnn"}


# ---- data ------------------------------------------------------------------------------------


def make_series(days, seed):
    """A synthetic daily price table (days, 5): Open, High, Low, Volume, Close (by default 732 days,
    as many as the lab's stock-price CSV, which is not shipped).

    Close = 100 + random walk (steps N(0, 0.5)) + 8 sin(2 pi t / 30) + N(0, 0.3) noise; Open is the
    previous Close plus N(0, 0.3); High/Low lie |N(0, 0.5)| above/below both; Volume swings with the
    season around 1e6 with log-normal noise.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(days)
    season = 8.0 * np.sin(2 * np.pi * t / 30.0)
    close = 100.0 + np.cumsum(rng.normal(0, 0.5, days)) + season + rng.normal(0, 0.3, days)
    open_ = np.r_[close[0], close[:-1]] + rng.normal(0, 0.3, days)
    high = np.maximum(open_, close) + np.abs(rng.normal(0, 0.5, days))
    low = np.minimum(open_, close) - np.abs(rng.normal(0, 0.5, days))
    volume = 1e6 * (1 + 0.3 * np.sin(2 * np.pi * t / 30.0 + 1.0)) * rng.lognormal(0, 0.2, days)
    return np.stack([open_, high, low, volume, close], axis=1)


def min_max_scale(data, reference=None):
    """The lab's scaler: (x - min) / (max - min + 1e-7) per column, min and max from `reference`."""
    reference = data if reference is None else reference
    low, high = reference.min(axis=0), reference.max(axis=0)
    return (data - low) / (high - low + 1e-7)


def windows(data, seq_length):
    """Inputs (n, seq_length, 5) and next-day Close targets (n, 1), the lab's build_dataset."""
    inputs = np.stack([data[i : i + seq_length] for i in range(len(data) - seq_length)])
    return inputs.astype("float32"), data[seq_length:, -1:].astype("float32")


def split(series, config):
    """The lab's split and scaling; returns (x_train, y_train, x_test, y_test).

    The lab scales the training and the test part each with its own minimum and maximum
    (`--scaling split`); `--scaling train` uses the training part's for both.
    """
    train_size = int(len(series) * config.train_fraction)
    # The test part starts seq_length days early, so its first window is complete.
    train, test = series[:train_size], series[train_size - config.seq_length :]
    if config.scaling == "split":
        train, test = min_max_scale(train), min_max_scale(test)
    else:
        train, test = min_max_scale(train, series[:train_size]), min_max_scale(test, series[:train_size])
    return (*windows(train, config.seq_length), *windows(test, config.seq_length))


def rmse(predictions, targets):
    return float(np.sqrt(np.mean((np.asarray(predictions) - np.asarray(targets)) ** 2)))


# ---- model -----------------------------------------------------------------------------------


def build_model(cell, hidden, seq_length, features=5, seed=0):
    """(seq_length, 5) -> RNN(cell) last output -> Dense(1) (the lab's Linear(hidden, 1)).

    `cell`: "lstm", the notes' LSTM (`layers.ScratchLSTMCell`), or "rnn", a vanilla RNN
    (`layers.VanillaRNNCell`, equal to SimpleRNN).
    """
    import layers

    recurrent = layers.ScratchLSTMCell(hidden) if cell == "lstm" else layers.VanillaRNNCell(hidden)
    return keras.Sequential(
        [
            keras.Input((seq_length, features)),
            keras.layers.RNN(recurrent, name=cell),
            # (batch, hidden): the last step's output (many-to-one)
            keras.layers.Dense(1, kernel_initializer=keras.initializers.GlorotUniform(seed), name="fc"),
            # (batch, 1): the next day's scaled Close
        ],
        name=f"time_series_{cell}",
    )


def train(cell, data, config, verbose=True):
    """Adam on the MSE, full batch as the lab; returns the model, the losses and the printed lines."""
    engine.set_seed(config.seed)
    x_train, y_train = data[:2]
    model = build_model(cell, config.hidden, config.seq_length, seed=config.seed)
    model.compile(keras.optimizers.Adam(config.learning_rate), loss="mse")
    batch = config.batch_size
    losses, lines = [], []
    for step in range(config.epochs):
        for start in range(0, len(x_train), batch):
            loss = float(
                model.train_on_batch(x_train[start : start + batch], y_train[start : start + batch])
            )
        losses.append(loss)
        if step % config.log_every == 0 or step == config.epochs - 1:
            lines.append(f"[step: {step}] loss: {loss}")
            if verbose:
                print(lines[-1], flush=True)
    return model, losses, lines


# ---- plots -----------------------------------------------------------------------------------


def plot_series(path, series, train_size):
    plt = plots.pyplot()
    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for index in (0, 1, 2, 4):
        axes[0].plot(series[:, index], lw=0.8, label=COLUMNS[index])
    axes[1].plot(series[:, 3], lw=0.8, color="gray", label="Volume")
    for ax in axes:
        ax.axvline(train_size, color="k", ls="--", lw=0.8)
        ax.legend(fontsize=8, ncol=4)
    axes[1].set_xlabel("day (dashed: train/test split)")
    fig.suptitle("Embedded series (generated)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_predictions(path, targets, predictions, baseline):
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(targets, color="k", lw=1.2, label="truth (Close)")
    ax.plot(baseline, lw=0.8, ls=":", label=f"last value (RMSE {rmse(baseline, targets):.4f})")
    for cell, values in predictions.items():
        ax.plot(values, lw=0.9, label=f"{cell} (RMSE {rmse(values, targets):.4f})")
    ax.set(xlabel="test day", ylabel="scaled Close", title="Next-day Close on the test part")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train_cells(data, config):
    """Trains each cell of `--cell`: {cell: numbers}, {cell: test predictions}, {cell: losses}."""
    x_test, y_test = data[2:]
    cells = CELLS if config.cell == "both" else (config.cell,)
    results, predictions, losses = {}, {}, {}
    for cell in cells:
        print(f"== {cell} ==")
        start = time.perf_counter()
        model, losses[cell], lines = train(cell, data, config)
        seconds = time.perf_counter() - start
        predictions[cell] = model.predict(x_test, verbose=0)  # (test windows, 1)
        results[cell] = {
            "train_mse_first": losses[cell][0],
            "train_mse_last": losses[cell][-1],
            "test_rmse": rmse(predictions[cell], y_test),
            "seconds": seconds,
            "logged": lines,
        }
    return results, predictions, losses


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.time_series",
        description=__doc__.splitlines()[0],
        quick=QUICK,
    )
    if min(config.epochs, config.hidden, config.seq_length, config.log_every) < 1:
        raise cli.UsageError("--epochs, --hidden, --seq-length and --log-every must be at least 1")
    if not 0 < config.train_fraction < 1:
        raise cli.UsageError("--train-fraction must lie in (0, 1)")
    if int(config.days * min(config.train_fraction, 1 - config.train_fraction)) < config.seq_length + 2:
        raise cli.UsageError("--days is too short for --seq-length windows in both parts")
    out = Path(config.out or "runs/time_series")
    out.mkdir(parents=True, exist_ok=True)

    series = make_series(config.days, config.seed)
    data = split(series, config)  # x (windows, 7, 5), y (windows, 1), for train and test
    x_test, y_test = data[2:]
    baseline = x_test[:, -1, -1:]  # tomorrow's Close = today's
    baseline_rmse = rmse(baseline, y_test)
    results, predictions, losses = train_cells(data, config)
    for cell, numbers in results.items():
        print(
            f"{cell}: test RMSE {numbers['test_rmse']:.4f}, last-value baseline {baseline_rmse:.4f} "
            f"({config.epochs} iterations in {numbers['seconds']:.1f} s)"
        )

    plot_series(out / "series.png", series, int(config.days * config.train_fraction))
    plot_predictions(out / "prediction.png", y_test, predictions, baseline)
    plots.loss_curves(
        out / "loss.png", losses, "Training loss", xlabel="iteration", ylabel="training MSE (scaled)"
    )
    summary = {
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
        "shapes": {"x_train": list(data[0].shape), "x_test": list(x_test.shape)},
        "baseline_rmse": baseline_rmse,
        "results": results,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
