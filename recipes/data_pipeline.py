"""Data pipeline: standardisation, and the notes' Dataset/DataLoader as a keras.utils.PyDataset.

Reproduces B 2.1 (building the training set: Dataset, DataLoader, mini-batch gradient descent)
and B 2.5 (normalisation and standardisation) on the test-score data of B I.3.1:

1. B 2.5: x = [[73,80,75],[93,88,93],[89,91,90],[96,98,100],[73,66,70]] standardised with torch's
   std (ddof 1): row 0 = [-1.0674, -0.3758, -0.8398]; with the population std of keras.ops.std
   and Normalization.adapt (ddof 0) [-1.1934, -0.4202, -0.9390]; min-max scaling. Keras'
   Normalization layer gives the ddof-1 version when given the mean and variance;
2. B 2.1: the notes' MyDataset (its two rows) and DataLoader(batch_size=2, shuffle=True) become
   one PyDataset, whose __getitem__ returns a whole batch and __len__ counts batches; it reshuffles
   the samples in on_epoch_end with a seeded NumPy Generator (every sample once per epoch, the same
   orders for the same --seed). Dense(1) from zero, SGD 1e-5, `model.fit` on it:
   - the two rows as one full batch: cost 28664.5 -> 1.104703 after 20 updates (1.104712 in a
     NumPy float32 replica: float32 rounding moves the sixth digit);
   - all five rows in shuffled batches of 2 (3 updates an epoch) for 20 epochs: the same updates
     as a NumPy replay of the recorded orders, full-data MSE about 1.6-2.0 depending on the seed.

    python -m recipes.data_pipeline
    KERAS_BACKEND=torch python -m recipes.data_pipeline --seed 4 --batch-size 3

Measured: all of the above on the three backends (Keras within 1e-4 of NumPy), in a few seconds.

Outputs (under --out, default runs/data_pipeline): batches.png (the sample order of every epoch
and the cost per epoch), summary.json.
"""

import dataclasses
import functools
import json
import math
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "B 2.1, 2.5"
UNUSED = ("epochs", "dataset", "data_dir", "resume")

# B I.3.1's test scores (lab-04_1); the notes' MyDataset holds the first two rows.
X_SCORES = [[73, 80, 75], [93, 88, 93], [89, 91, 90], [96, 98, 100], [73, 66, 70]]
Y_SCORES = [[152], [185], [180], [196], [142]]
LEARNING_RATE = 1e-5
EPOCHS = 20  # the 20 updates of the inventory's two-row example; seconds, no checkpoints


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(EPOCHS, cli.HIDDEN)
    batch_size: int = cli.option(2, "batch size of the shuffled five-row training")
    seed: int = cli.option(0, "seed of the per-epoch shuffling")
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    drop_last: bool = cli.option(False, "drop the last, smaller batch of an epoch (DataLoader's)")
    quick: bool = cli.option(False, "the same run (it takes seconds)")


# ---- 1. B 2.5: scaling -----------------------------------------------------------------------


def scalings(x):
    """Standardisation (ddof 1 and 0) and min-max scaling in float64 NumPy."""
    x = np.asarray(x, "float64")
    mean = x.mean(axis=0)
    return {
        "mean": mean,
        "std_ddof1": x.std(axis=0, ddof=1),
        "standardised_ddof1": (x - mean) / x.std(axis=0, ddof=1),
        "standardised_ddof0": (x - mean) / x.std(axis=0),
        "min_max": (x - x.min(axis=0)) / (x.max(axis=0) - x.min(axis=0)),
    }


def keras_scalings(x):
    """The same with keras.ops and keras.layers.Normalization."""
    x = np.asarray(x, "float32")
    ops = keras.ops
    x_t = ops.convert_to_tensor(x)
    adapted = keras.layers.Normalization()
    adapted.adapt(x)  # population variance: ddof 0
    # torch's x.std() is the sample std: pass the ddof-1 variance to get its standardisation.
    given = keras.layers.Normalization(mean=x.mean(axis=0), variance=x.var(axis=0, ddof=1))
    by_ops = (x_t - ops.mean(x_t, axis=0)) / ops.std(x_t, axis=0)
    return {
        "normalization_adapt": ops.convert_to_numpy(adapted(x)),
        "normalization_ddof1": ops.convert_to_numpy(given(x)),
        "ops_std": ops.convert_to_numpy(by_ops),
    }


# ---- 2. B 2.1: the notes' Dataset + DataLoader as one PyDataset ---------------------------------


def score_batches(x, y, batch_size, *, shuffle=False, drop_last=False, seed=0):
    """MyDataset and DataLoader(batch_size, shuffle, drop_last) in one Keras PyDataset.

    torch's Dataset returns one sample and the DataLoader batches them; a PyDataset returns whole
    batches: `len()` is the number of batches of an epoch and `[i]` the i-th batch of the current
    order. `set_epoch(e)` draws epoch e's order from a NumPy Generator seeded with (seed, e), as
    DataLoader(shuffle=True) reshuffles the samples every epoch (`fit(shuffle=True)` would only
    reorder whole batches); `.orders[e]` records it. `fit_linear` calls it from a callback's
    `on_epoch_begin(epoch)`: the PyDataset's own hooks do not count epochs, as Keras also calls
    them when it peeks at a batch to build the model (JAX, torch: one extra on_epoch_begin) and
    when it resets its iterator before the first epoch (one extra on_epoch_end).
    """
    return _score_batches_class()(x, y, batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed)


@functools.cache
def _score_batches_class():
    # Defined on first use: subclassing keras.utils.PyDataset imports Keras (keeps --help fast).
    class ScoreBatches(keras.utils.PyDataset):
        def __init__(self, x, y, batch_size, *, shuffle=False, drop_last=False, seed=0, **kwargs):
            super().__init__(**kwargs)
            self.x, self.y = np.asarray(x, "float32"), np.asarray(y, "float32")
            self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
            self.seed = seed
            self.orders = {}
            self.set_epoch(0)

        def set_epoch(self, epoch):
            """Draws the order of epoch `epoch` (torch's DistributedSampler.set_epoch)."""
            rng = np.random.default_rng([self.seed, epoch])
            self.order = rng.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))
            self.orders[epoch] = self.order.tolist()

        def __len__(self):
            batches = len(self.x) / self.batch_size
            return math.floor(batches) if self.drop_last else math.ceil(batches)

        def __getitem__(self, index):
            rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
            return self.x[rows], self.y[rows]  # (batch, 3), (batch, 1)

    return ScoreBatches


def fit_linear(dataset, epochs):
    """Dense(1) from zero, SGD(1e-5) on the MSE, `model.fit` on the PyDataset; returns the model."""
    model = keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")]
    )
    # (batch, 3) -> (batch, 1)
    model.compile(keras.optimizers.SGD(LEARNING_RATE), loss="mse")
    reshuffle = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, _: dataset.set_epoch(epoch))
    history = model.fit(dataset, epochs=epochs, shuffle=False, verbose=0, callbacks=[reshuffle])
    return model, history.history["loss"]


def replay_numpy(x, y, batches_per_epoch, learning_rate=LEARNING_RATE, dtype="float64"):
    """Mini-batch gradient descent from zero over the given batches of row indices (a list per
    epoch), in `dtype`; returns (W, b)."""
    x, y = np.asarray(x, dtype), np.asarray(y, dtype)
    learning_rate = np.asarray(learning_rate, dtype)
    weights, bias = np.zeros((x.shape[1], 1), dtype), np.zeros(1, dtype)
    for batches in batches_per_epoch:
        for rows in batches:
            error = x[rows] @ weights + bias - y[rows]
            weights = weights - learning_rate * 2 * x[rows].T @ error / len(rows)
            bias = bias - learning_rate * 2 * error.mean(axis=0)
    return weights, bias


def mse(x, y, weights, bias):
    return float(np.mean((np.asarray(x, "float64") @ weights + bias - np.asarray(y)) ** 2))


def keras_weights(model):
    dense = model.layers[-1]
    return (
        keras.ops.convert_to_numpy(dense.kernel).astype("float64"),
        keras.ops.convert_to_numpy(dense.bias).astype("float64"),
    )


def split_orders(orders, batch_size, batches):
    return [[order[i * batch_size : (i + 1) * batch_size] for i in range(batches)] for order in orders]


# ---- the steps of main ----------------------------------------------------------------------


def report_scaling(summary):
    ours, by_keras = scalings(X_SCORES), keras_scalings(X_SCORES)
    print(f"1. B 2.5 on x = {X_SCORES}:")
    print(f"   mean {fmt(ours['mean'], 1)}, std (ddof 1) {fmt(ours['std_ddof1'])}")
    for name in ("standardised_ddof1", "standardised_ddof0", "min_max"):
        print(f"   {name:<19} row 0 {fmt(ours[name][0])}")
    print(
        "   Keras: Normalization.adapt row 0 "
        f"{fmt(by_keras['normalization_adapt'][0])} (ddof 0); with the ddof-1 variance "
        f"{fmt(by_keras['normalization_ddof1'][0])}"
    )
    summary["scaling"] = {name: np.asarray(v).tolist() for name, v in {**ours, **by_keras}.items()}


def report_full_batch(config, summary):
    """The notes' two rows, DataLoader(batch_size=2): one full batch per epoch."""
    dataset = score_batches(X_SCORES[:2], Y_SCORES[:2], 2, shuffle=True, seed=config.seed)
    first = dataset[0]
    model, losses = fit_linear(dataset, EPOCHS)
    weights, bias = keras_weights(model)
    final = mse(X_SCORES[:2], Y_SCORES[:2], weights, bias)
    exact = replay_numpy(X_SCORES[:2], Y_SCORES[:2], [[[0, 1]]] * EPOCHS)
    exact_final = mse(X_SCORES[:2], Y_SCORES[:2], *exact)
    print(
        f"2. the notes' MyDataset: {len(dataset)} batch of shapes {first[0].shape}, "
        f"{first[1].shape}; fit for {EPOCHS} epochs: cost {losses[0]:.1f} -> {final:.6f} "
        f"(float64 NumPy {exact_final:.6f})"
    )
    summary["full_batch"] = {
        "batches": len(dataset),
        "batch_shapes": [list(first[0].shape), list(first[1].shape)],
        "losses": list(map(float, losses)),
        "final_cost": final,
        "final_cost_numpy": exact_final,
    }
    return losses


def report_minibatches(config, summary):
    """All five rows in shuffled mini-batches."""
    dataset = score_batches(
        X_SCORES,
        Y_SCORES,
        config.batch_size,
        shuffle=True,
        drop_last=config.drop_last,
        seed=config.seed,
    )
    model, losses = fit_linear(dataset, EPOCHS)
    weights, bias = keras_weights(model)
    orders = [dataset.orders[epoch] for epoch in range(EPOCHS)]
    batches = split_orders(orders, config.batch_size, len(dataset))
    first_epoch = batches[0]
    replay = replay_numpy(X_SCORES, Y_SCORES, batches)
    print(
        f"   all five rows, batch {config.batch_size}{', drop_last' if config.drop_last else ''}: "
        f"{len(dataset)} batches an epoch, epoch 1 {first_epoch}; full-data MSE after "
        f"{EPOCHS} epochs {mse(X_SCORES, Y_SCORES, weights, bias):.6f} (NumPy replay of the "
        f"orders {mse(X_SCORES, Y_SCORES, *replay):.6f})"
    )
    summary["minibatch"] = {
        "batches": len(dataset),
        "first_epoch_batches": first_epoch,
        "orders": orders,
        "losses": list(map(float, losses)),
        "final_cost": mse(X_SCORES, Y_SCORES, weights, bias),
        "final_cost_replay": mse(X_SCORES, Y_SCORES, *replay),
        "weights": weights.ravel().tolist() + bias.tolist(),
        "weights_replay": replay[0].ravel().tolist() + replay[1].tolist(),
    }
    return losses, orders


def fmt(values, digits=4):
    return "[" + ", ".join(f"{v:.{digits}f}" for v in np.ravel(values)) + "]"


def plot(path, curves, orders):
    """Left: each epoch's sample order; right: the cost per epoch (fit's history)."""
    plt = plots.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    orders = np.asarray(orders)
    colours = plt.get_cmap("viridis", orders.shape[1])
    image = left.imshow(
        orders.T,
        cmap=colours,
        aspect="auto",
        extent=(0.5, len(orders) + 0.5, orders.shape[1] - 0.5, -0.5),
    )
    left.set(xlabel="epoch", ylabel="position in the epoch", title="sample order (seeded shuffle)")
    fig.colorbar(image, ax=left, label="sample", ticks=range(orders.shape[1]))
    for label, losses in curves.items():
        right.semilogy(np.arange(1, len(losses) + 1), losses, label=label, lw=1)
    right.set(xlabel="epoch", ylabel="MSE (fit's mean over the epoch)", title="SGD 1e-5")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.data_pipeline", description=__doc__.splitlines()[0]
    )
    cli.reject_unused(config, UNUSED, "data_pipeline", f"runs the notes' {EPOCHS} epochs of seconds")
    if config.batch_size > len(X_SCORES):
        raise cli.UsageError(f"--batch-size must be at most {len(X_SCORES)}, the number of rows")
    out = Path(config.out or "runs/data_pipeline")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)
    summary = {"backend": engine.backend(), "seed": config.seed, "epochs": EPOCHS}
    report_scaling(summary)
    full_losses = report_full_batch(config, summary)
    mini_losses, orders = report_minibatches(config, summary)
    plot(
        out / "batches.png",
        {
            "MyDataset, 2 rows, full batch": full_losses,
            f"5 rows, batch {config.batch_size}": mini_losses,
        },
        orders,
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
