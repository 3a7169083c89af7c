"""Logistic regression: the notes' six points, cost 0.693147 -> 0.019852, its decision boundary.

Reproduces B I.3.2.2 (logistic regression with binary cross-entropy), its evaluation in B 2.1.1
and the "Logistic Regression" slide of notes C:

1. the notes' x = [[1,2],[2,3],[3,1],[4,3],[5,3],[6,2]], y = [0,0,0,1,1,1], W and b zero,
   full-batch SGD lr 1 on the binary cross-entropy, the lab's loop (lab-05) of 1001 updates: cost
   0.693147, 0.134722, ..., 0.019852 after 0, 100, ..., 1000 updates; W = [3.2530, 1.5179],
   b = -14.4819 at the end (after 1001); every training point and B 2.1.1's x_test classified;
2. the notes' own initialisation (torch's nn.Linear, seeded) ends near the same cost (200 NumPy
   seeds: 0.01967-0.02001 after 1000 updates);
3. C's slide trains the sigmoid with the squared error and no bias, L0 = 1/m sum (1/(1 + e^-w.x)
   - y)^2: through the origin no line separates these points (3 w1 + w2 < 0 for (3, 1) and
   6 w1 + 2 w2 > 0 for (6, 2) contradict), so it classifies at most 5 of 6.

Run 1 is done in float64 NumPy with the hand gradient x^T (h - y) / m and in float32 with Keras
(Dense(1, sigmoid), SGD, BinaryCrossentropy) and the engine, on any backend.

    python -m recipes.logistic_regression
    KERAS_BACKEND=torch python -m recipes.logistic_regression --seed 3

Measured: all of the above on the three backends (Keras within 1e-4 of NumPy), in a few seconds.

Outputs (under --out, default runs/logistic_regression): decision_boundary.png (the points, the
three models' boundaries x W + b = 0 and their cost curves), summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, gradient_descent, plots

keras = cli.lazy_import("keras")

SECTION = "B I.3.2.2, B 2.1.1, C"
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")

X_TRAIN = [[1, 2], [2, 3], [3, 1], [4, 3], [5, 3], [6, 2]]  # (6, 2)
Y_TRAIN = [[0], [0], [0], [1], [1], [1]]  # (6, 1)
X_TEST = [[1, 2], [2, 3], [3, 1]]  # B 2.1.1
Y_TEST = [[0], [0], [0]]
LEARNING_RATE = 1.0
# The notes loop over range(1, 1001), the lab over range(1001) (1001 updates) and prints the cost
# of every 100th iteration, before its update. All models here take the lab's 1001 updates.
LAB_UPDATES = 1001
PRINTED = tuple(range(0, 1001, 100))
MODELS = ("notes", "random_init", "slide_mse_no_bias")


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(6, cli.HIDDEN)
    seed: int = cli.option(0, "seed of the nn.Linear-style initialisation of run 2")
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    quick: bool = cli.option(False, "the same run (it takes seconds)")


# ---- the cost and gradient descent by hand (float64 NumPy) ----------------------------------


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def binary_cross_entropy(h, y):
    """-mean(y log h + (1 - y) log(1 - h)); the notes' manual form mixes y_data and y_train."""
    return float(-np.mean(y * np.log(h) + (1 - y) * np.log(1 - h)))


def descend_numpy(updates):
    """Zero-initialised full-batch gradient descent; the BCE gradient is x^T (h - y) / m."""
    x, y = np.asarray(X_TRAIN, "float64"), np.asarray(Y_TRAIN, "float64")
    weights, bias = np.zeros((2, 1)), np.zeros(1)
    costs = []
    for _ in range(updates):
        h = sigmoid(x @ weights + bias)
        costs.append(binary_cross_entropy(h, y))
        weights -= LEARNING_RATE * x.T @ (h - y) / len(x)
        bias -= LEARNING_RATE * np.mean(h - y, axis=0)
    costs.append(binary_cross_entropy(sigmoid(x @ weights + bias), y))
    return np.asarray(costs), weights, bias


# ---- the same with Keras (float32) ----------------------------------------------------------


def build_model(kernel_initializer="zeros", bias_initializer="zeros", use_bias=True):
    """MyLogisticModel, nn.Linear(2, 1) -> nn.Sigmoid(): one Dense layer, (m, 2) -> (m, 1).

    (C's slide says the output is (1, batch): the transposed layout.) Called directly rather than
    wrapped in a Sequential, whose per-call overhead would double the time of these tiny steps.
    """
    layer = keras.layers.Dense(
        1,
        activation="sigmoid",
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer,
    )
    layer.build((None, 2))
    return layer


def torch_style_model(seed):
    """nn.Linear(2, 1)'s initialisation: U(+-1/sqrt(2)) for the weights and the bias."""
    limit = 1 / np.sqrt(2)
    return build_model(
        keras.initializers.RandomUniform(-limit, limit, seed=seed),
        keras.initializers.RandomUniform(-limit, limit, seed=seed + 1),
    )


def train(models, updates):
    """Full-batch SGD(1.0) of the three models of `MODELS` together; returns their costs.

    The first two on the binary cross-entropy, C's on the squared error. (Keras' loss functions
    rather than the Loss objects, whose per-call overhead would double these tiny steps on torch;
    the same numbers.) Returns an (updates + 1, 3) array, row k the costs after k updates.
    """
    x, y = (keras.ops.convert_to_tensor(np.asarray(a, "float32")) for a in (X_TRAIN, Y_TRAIN))
    bce, mse = keras.losses.binary_crossentropy, keras.losses.mean_squared_error
    notes, random_init, slide = (models[name] for name in MODELS)
    return gradient_descent.descend(
        lambda: [
            keras.ops.mean(bce(y, notes(x))),
            keras.ops.mean(bce(y, random_init(x))),
            keras.ops.mean(mse(y, slide(x))),
        ],
        [v for layer in models.values() for v in layer.trainable_variables],
        keras.optimizers.SGD(LEARNING_RATE),
        updates,
        state=list(models.values()),
    )


def evaluate(model):
    """B 2.1.1: prediction = h >= 0.5; accuracy = mean(prediction == y), on train and x_test."""
    result = {}
    for name, x, y in (("train", X_TRAIN, Y_TRAIN), ("test", X_TEST, Y_TEST)):
        h = keras.ops.convert_to_numpy(model(np.asarray(x, "float32")))
        result[f"{name}_probabilities"] = h.ravel().tolist()
        result[f"{name}_accuracy"] = float(np.mean((h >= 0.5) == np.asarray(y)))
    return result


def weights_of(layer):
    bias = keras.ops.convert_to_numpy(layer.bias)[0] if layer.use_bias else 0.0
    return keras.ops.convert_to_numpy(layer.kernel).ravel().tolist(), float(bias)


# ---- the steps of main ----------------------------------------------------------------------


def report_notes(model, keras_costs, summary):
    """1. Zero initialisation, the lab's 1001 updates, in NumPy and in Keras."""
    costs, weights, bias = descend_numpy(LAB_UPDATES)
    keras_weights, keras_bias = weights_of(model)
    quality = evaluate(model)
    h = sigmoid(np.asarray(X_TRAIN) @ weights + bias)
    print(f"1. x = {X_TRAIN}, y = {sum(Y_TRAIN, [])}; W, b = 0; SGD lr {LEARNING_RATE:g}")
    print("   cost after " + ", ".join(f"{k}: {costs[k]:.6f}" for k in PRINTED) + " updates")
    print(f"   Keras float32 after 1000: {keras_costs[1000]:.6f} (NumPy {costs[1000]:.6f})")
    print(
        f"   after {LAB_UPDATES}: W = {fmt(weights)}, b = {bias[0]:.4f} (Keras {fmt(keras_weights)}, "
        f"{keras_bias:.4f}); probabilities {fmt(h, 6)}"
    )
    print(
        f"   accuracy on the training points {quality['train_accuracy']:.3f}, on x_test "
        f"{quality['test_accuracy']:.3f}"
    )
    summary["notes"] = {
        "costs_numpy": costs.tolist(),
        "costs_keras": keras_costs.tolist(),
        "weights_numpy": weights.ravel().tolist(),
        "bias_numpy": float(bias[0]),
        "weights_keras": keras_weights,
        "bias_keras": keras_bias,
        "probabilities_numpy": h.ravel().tolist(),
        **quality,
    }
    # The manual BCE of the notes (with y_train throughout) equals Keras' on the trained model.
    probabilities = np.asarray(quality["train_probabilities"], "float64")[:, None]
    summary["notes"]["bce_manual"] = binary_cross_entropy(probabilities, np.asarray(Y_TRAIN))
    summary["notes"]["bce_keras"] = float(
        keras.losses.BinaryCrossentropy()(np.asarray(Y_TRAIN, "float32"), probabilities)
    )
    return keras_costs, (keras_weights, keras_bias)


def report_random(model, costs, config, summary):
    """2. The notes' own model: nn.Linear's random initialisation."""
    quality = evaluate(model)
    print(
        f"2. nn.Linear initialisation (seed {config.seed}): cost {costs[0]:.6f} -> "
        f"{costs[1000]:.6f} after 1000 updates, training accuracy {quality['train_accuracy']:.3f}"
    )
    summary["random_init"] = {"costs": costs.tolist(), **quality}
    return costs, weights_of(model)


def report_slide(model, costs, summary):
    """3. C's slide: the squared error of the sigmoid, no bias."""
    quality = evaluate(model)
    weights, _ = weights_of(model)
    x, y = np.asarray(X_TRAIN, "float64"), np.asarray(Y_TRAIN, "float64")
    # L0 = 1/m sum (1 / (1 + exp(-w^T x)) - y)^2, by hand, at the trained w.
    by_hand = float(np.mean((sigmoid(x @ np.asarray(weights)[:, None]) - y) ** 2))
    print(
        f"3. C's squared error without bias: L0 {costs[0]:.6f} -> {costs[-1]:.6f} (by hand "
        f"{by_hand:.6f}), w = {fmt(weights)}, training accuracy {quality['train_accuracy']:.3f}"
    )
    summary["slide_mse_no_bias"] = {
        "costs": costs.tolist(),
        "weights": weights,
        "l0_by_hand": by_hand,
        **quality,
    }
    return costs, (weights, 0.0)


def fmt(values, digits=4):
    return "[" + ", ".join(f"{v:.{digits}f}" for v in np.ravel(values)) + "]"


def plot(path, boundaries, curves):
    """The points with each model's boundary x W + b = 0, and the cost curves."""
    plt = plots.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    x, y = np.asarray(X_TRAIN, "float64"), np.ravel(Y_TRAIN)
    left.scatter(*x[y == 0].T, marker="o", color="tab:blue", label="y = 0")
    left.scatter(*x[y == 1].T, marker="^", color="tab:red", label="y = 1")
    x1 = np.linspace(0, 7, 50)
    for label, (weights, bias) in boundaries.items():
        # w1 x1 + w2 x2 + b = 0  ->  x2 = -(w1 x1 + b) / w2
        left.plot(x1, -(weights[0] * x1 + bias) / weights[1], label=label)
    left.set(xlim=(0, 7), ylim=(0, 6), xlabel="x1", ylabel="x2", title="decision boundaries")
    left.legend(fontsize=8, loc="upper right")
    for label, costs in curves.items():
        right.semilogy(costs, label=label, lw=1)
    right.set(xlabel="update", ylabel="cost", title="full-batch SGD, lr 1 (Keras)")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.logistic_regression", description=__doc__.splitlines()[0]
    )
    cli.reject_unused(config, UNUSED, "logistic_regression")
    out = Path(config.out or "runs/logistic_regression")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)
    summary = {"backend": engine.backend(), "seed": config.seed}
    models = {
        "notes": build_model(),  # zero W and b
        "random_init": torch_style_model(config.seed),
        "slide_mse_no_bias": build_model(use_bias=False),  # zero w
    }
    costs = train(models, LAB_UPDATES)  # (1002, 3)
    notes_costs, notes_boundary = report_notes(models["notes"], costs[:, 0], summary)
    random_costs, random_boundary = report_random(models["random_init"], costs[:, 1], config, summary)
    slide_costs, slide_boundary = report_slide(models["slide_mse_no_bias"], costs[:, 2], summary)
    plot(
        out / "decision_boundary.png",
        {
            "BCE, zero init": notes_boundary,
            f"BCE, nn.Linear init (seed {config.seed})": random_boundary,
            "C: squared error, no bias": slide_boundary,
        },
        {"BCE, zero init": notes_costs, "BCE, nn.Linear init": random_costs, "C: MSE": slide_costs},
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
