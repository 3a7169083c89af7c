"""A neural network in 11 lines: trask's NumPy XOR network, and the same network in Keras.

Reproduces A 4.1 (Fig. 10 and 13): three inputs (the third a constant 1, the bias), four sigmoid
hidden units and one sigmoid output, no biases, weights drawn from U[-1, 1) by `np.random.random`,
full-batch updates `W += X^T delta` (learning rate 1 on the loss 1/2 sum (t - y)^2) for 60,000
iterations, on the XOR of the first two inputs.

1. The NumPy code, line for line, in float64. With the legacy generator seeded 1 (the blog's
   `np.random.seed(1)`) it ends at [0.0026, 0.9967, 0.9970, 0.0039] (the inventory's DERIVED
   outputs, recomputed here), max error 0.0039.
2. The same network as a `keras.Sequential` of two `Dense(use_bias=False, activation="sigmoid")`
   layers started from the NumPy weights, trained by `keras.optimizers.SGD(1.0)` on the summed
   loss through the engine's compiled step: it tracks the NumPy weights to 1e-5 (float32 Keras
   against float64 NumPy) step for step.

    python -m recipes.nn_in_11_lines
    KERAS_BACKEND=jax python -m recipes.nn_in_11_lines --seed 0 --keras-steps 5000

Measured, default run (10-30 s on 2 shared CPU cores, mostly imports): NumPy [0.0026, 0.9967,
0.9970, 0.0039]; Keras after 2,000 steps [0.0198, 0.9745, 0.9785, 0.0297], its largest weight
difference to NumPy at any compared step 5.7e-6 (TF, JAX) and 5.8e-6 (torch).

Outputs (under --out, default runs/nn_in_11_lines): loss.png (NumPy's loss over the iterations,
Keras' over its steps, and their weight difference), summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "A 4.1"
# The notes' data: XOR of the first two columns; the third column is the constant bias input.
X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype="float64")
Y = np.array([[0, 1, 1, 0]], dtype="float64").T
# A 4.1, DERIVED in the inventory (a NumPy run of the exact code with np.random.seed(1)).
SEED1_OUTPUTS = (0.0026, 0.9967, 0.9970, 0.0039)


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(4, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    seed: int = cli.option(1, "seed of NumPy's legacy generator (the notes' np.random.seed(1))")
    iterations: int = cli.option(60_000, "NumPy iterations (the notes' 60,000)")
    keras_steps: int = cli.option(2_000, "Keras steps compared with NumPy step for step")


QUICK = dict(iterations=300, keras_steps=100)
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")


# ---- 1. the NumPy network (A 4.1, Fig. 10) ---------------------------------------------------


def initial_weights(seed):
    """syn0 (3, 4) and syn1 (4, 1) from U[-1, 1), drawn as the notes do (legacy generator)."""
    random = np.random.RandomState(seed)  # `np.random.seed(seed)` without touching the global one
    syn0 = 2 * random.random_sample((3, 4)) - 1
    syn1 = 2 * random.random_sample((4, 1)) - 1
    return syn0, syn1


def numpy_network(seed, iterations, record=()):
    """The 11 lines. Returns the final outputs, the loss per iteration and {step: (syn0, syn1)}
    for the steps in `record` (the weights after that many updates)."""
    syn0, syn1 = initial_weights(seed)
    losses, snapshots = np.empty(iterations), {}
    record = set(record)
    for j in range(iterations):
        if j in record:
            snapshots[j] = (syn0.copy(), syn1.copy())
        l1 = 1 / (1 + np.exp(-(X @ syn0)))  # (4, 4) hidden layer
        l2 = 1 / (1 + np.exp(-(l1 @ syn1)))  # (4, 1) output
        losses[j] = 0.5 * np.sum((Y - l2) ** 2)
        # The derivative of the loss is -(t - y); the notes add (t - y) terms: a descent step.
        l2_delta = (Y - l2) * (l2 * (1 - l2))
        l1_delta = l2_delta @ syn1.T * (l1 * (1 - l1))
        syn1 += l1.T @ l2_delta
        syn0 += X.T @ l1_delta
    if iterations in record:
        snapshots[iterations] = (syn0.copy(), syn1.copy())
    l1 = 1 / (1 + np.exp(-(X @ syn0)))
    outputs = 1 / (1 + np.exp(-(l1 @ syn1)))
    return outputs[:, 0], losses, snapshots


# ---- 2. the same network in Keras ----------------------------------------------------------


def keras_network(syn0, syn1):
    """Dense(4, sigmoid) -> Dense(1, sigmoid), no biases, started from the NumPy weights."""
    return keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(
                4, "sigmoid", use_bias=False, kernel_initializer=keras.initializers.Constant(syn0)
            ),
            # (4, 4)
            keras.layers.Dense(
                1, "sigmoid", use_bias=False, kernel_initializer=keras.initializers.Constant(syn1)
            ),
            # (4, 1)
        ]
    )


def keras_training(model, steps, record):
    """`steps` SGD(1.0) updates on 1/2 sum (t - y)^2 (the notes' un-normalised update; Keras'
    "mse" would average over the 4 rows and drop the 1/2). Returns losses and {step: kernels}."""
    optimizer = keras.optimizers.SGD(learning_rate=1.0)
    optimizer.build(model.trainable_variables)
    x = keras.ops.convert_to_tensor(X, "float32")
    y = keras.ops.convert_to_tensor(Y, "float32")

    def step():
        def loss_fn():
            return 0.5 * keras.ops.sum(keras.ops.square(y - model(x)))

        loss, grads = engine.value_and_grad(loss_fn, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    compiled = engine.function(step, [model, optimizer])
    losses, snapshots = [], {}
    for j in range(steps + 1):
        if j in record:
            snapshots[j] = [
                keras.ops.convert_to_numpy(w).astype("float64") for w in model.trainable_variables
            ]
        if j < steps:
            losses.append(compiled())
    return [float(v) for v in keras.ops.convert_to_numpy(keras.ops.stack(losses))], snapshots


def plot_losses(path, numpy_losses, keras_losses, steps, differences):
    plt = plots.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    left.loglog(np.arange(1, len(numpy_losses) + 1), numpy_losses, label="NumPy (float64)", lw=1)
    left.loglog(np.arange(1, len(keras_losses) + 1), keras_losses, "--", label="Keras (float32)", lw=1)
    left.set(xlabel="iteration", ylabel="1/2 sum (t - y)^2", title="XOR, 11-line network")
    left.legend()
    right.semilogy(steps, np.maximum(differences, 1e-12), "o-", ms=3)
    right.axhline(1e-5, color="k", ls="--", lw=0.8, label="1e-5")
    right.set(xlabel="step", ylabel="max |W_keras - W_numpy|", title="Keras tracks NumPy")
    right.legend()
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.nn_in_11_lines",
        description=__doc__.splitlines()[0],
        quick=QUICK,
    )
    cli.reject_unused(config, UNUSED, "nn_in_11_lines", "has one fixed data set and no epochs")
    if config.iterations < 1 or not 1 <= config.keras_steps <= config.iterations:
        raise cli.UsageError(
            "--iterations must be at least 1 and --keras-steps between 1 and --iterations"
        )
    out = Path(config.out or "runs/nn_in_11_lines")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)

    # ---- 1. NumPy, float64
    record = sorted({0, 1, 10, *(int(j) for j in np.geomspace(1, config.keras_steps, 12))})
    outputs, numpy_losses, numpy_weights = numpy_network(config.seed, config.iterations, record)
    print(
        f"1. NumPy, seed {config.seed}, {config.iterations} iterations: outputs {np.round(outputs, 4)}"
    )
    print(f"   targets {Y[:, 0]}, max error {np.abs(Y[:, 0] - outputs).max():.4f}")

    # ---- 2. Keras from the same initial weights
    syn0, syn1 = numpy_weights[0]
    model = keras_network(syn0, syn1)
    keras_losses, keras_weights = keras_training(model, config.keras_steps, record)
    differences = [
        max(float(np.abs(k - n).max()) for k, n in zip(keras_weights[j], numpy_weights[j]))
        for j in record
    ]
    keras_outputs = keras.ops.convert_to_numpy(model(X.astype("float32")))[:, 0]
    print(f"2. Keras ({engine.backend()}), {config.keras_steps} SGD(1.0) steps: ", end="")
    print(f"outputs {np.round(keras_outputs, 4)}")
    print(f"   largest weight difference to NumPy at the same step: {max(differences):.2e}")

    plot_losses(out / "loss.png", numpy_losses, keras_losses, record, differences)
    summary = {
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
        "numpy_outputs": outputs.tolist(),
        "numpy_max_error": float(np.abs(Y[:, 0] - outputs).max()),
        "numpy_loss_first_last": [float(numpy_losses[0]), float(numpy_losses[-1])],
        "keras_outputs": keras_outputs.tolist(),
        "keras_losses": keras_losses,
        "numpy_losses_same_steps": numpy_losses[: config.keras_steps].tolist(),
        "compared_steps": record,
        "weight_differences": differences,
        "parameters": model.count_params(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
