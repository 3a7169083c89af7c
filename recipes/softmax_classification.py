"""Softmax classification: softmax, cross-entropy's four forms, the notes' 8-point, 3-class model.

Reproduces B I.3.2.1-3.2.4 (one-hot encoding, softmax classification, cross-entropy) and the
"Softmax" slide of notes C:

1. softmax([1, 2, 3]) = [0.090031, 0.244728, 0.665241]; the notes' [2.0, 1.0, 0.1] ->
   [0.7, 0.2, 0.1] is [0.659001, 0.242433, 0.098566] rounded; softmax(z + c) = softmax(z) and,
   for two classes, softmax([z, 0])_0 = sigmoid(z) (C: softmax generalises logistic regression);
2. cross-entropy: P = [0, 0, 1], Q = [0.1, 0.1, 0.8] gives -log 0.8 = 0.223144; the notes' four
   cost forms (one-hot * -log softmax, one-hot * -log_softmax, NLL of log_softmax, cross_entropy)
   agree; one-hot by eye(5)[y - 1], by one_hot and by the notes' scatter;
3. the notes' x (8, 4), y = [2,2,2,1,1,1,0,0], SGD lr 0.1, full batch, the lab's (lab-06_1) 1001
   updates from zero: with the lab's single bias shared by all classes (its gradient is zero, so
   it stays 0) the cost falls 1.098612 -> 0.399962 after 1000 updates and 7 of 8 points end
   right (0.875); with a bias per class (Keras' Dense) 0.248155 and all 8; with nn.Linear's
   random initialisation (seeded) below 0.30.

Run 3 is done in float64 NumPy with the hand gradient x^T (softmax - one_hot) / m and in float32
with Keras (Dense, SGD, SparseCategoricalCrossentropy) and the engine, on any backend.

    python -m recipes.softmax_classification
    KERAS_BACKEND=jax python -m recipes.softmax_classification --seed 2

Measured: all of the above on the three backends (Keras within 1e-4 of NumPy), in a few seconds.

Outputs (under --out, default runs/softmax_classification): loss_curves.png (the three models'
costs), summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, gradient_descent, plots

keras = cli.lazy_import("keras")

SECTION = "B I.3.2.1-3.2.4, C"
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")

X_TRAIN = [[1, 2, 1, 1], [2, 1, 3, 2], [3, 1, 3, 4], [4, 1, 5, 5],
           [1, 7, 5, 5], [1, 2, 5, 6], [1, 6, 6, 6], [1, 7, 7, 7]]  # fmt: skip
Y_TRAIN = [2, 2, 2, 1, 1, 1, 0, 0]
CLASSES = 3
LEARNING_RATE = 0.1
# The notes loop over range(1, 1001), the lab over range(1001) (1001 updates) and prints the cost
# of every 100th iteration, before its update. All models here take the lab's 1001 updates.
LAB_UPDATES = 1001
PRINTED = tuple(range(0, 1001, 100))


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(8, cli.HIDDEN)
    seed: int = cli.option(0, "seed of the random logits of part 2 and nn.Linear's initialisation")
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    quick: bool = cli.option(False, "the same run (it takes seconds)")


# ---- 1.-2. softmax, cross-entropy, one-hot --------------------------------------------------


def softmax_numpy(z):
    z = np.asarray(z, "float64")
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_facts():
    """Part 1 through keras.ops, next to the float64 NumPy values."""
    ops = keras.ops
    z = np.array([1.0, 2.0, 3.0], "float32")
    sigmoid_side = np.linspace(-4, 4, 9).astype("float32")
    two_class = ops.softmax(ops.stack([sigmoid_side, ops.zeros_like(sigmoid_side)], axis=-1))
    return {
        "softmax_123": ops.convert_to_numpy(ops.softmax(z)).tolist(),
        "softmax_123_numpy": softmax_numpy([1, 2, 3]).tolist(),
        "softmax_notes": ops.convert_to_numpy(ops.softmax(np.array([2.0, 1.0, 0.1]))).tolist(),
        "softmax_notes_numpy": softmax_numpy([2.0, 1.0, 0.1]).tolist(),
        "shift_invariant": bool(
            np.allclose(ops.convert_to_numpy(ops.softmax(z + 100.0)), softmax_numpy(z), atol=1e-6)
        ),
        "two_classes_is_sigmoid": bool(
            np.allclose(
                ops.convert_to_numpy(two_class)[:, 0],
                ops.convert_to_numpy(ops.sigmoid(sigmoid_side)),
                atol=1e-6,
            )
        ),
    }


def cross_entropy_facts(seed):
    """Part 2: the notes' example, the four cost forms, the three one-hot encodings."""
    ops = keras.ops
    p, q = np.array([[0.0, 0.0, 1.0]], "float32"), np.array([[0.1, 0.1, 0.8]], "float32")
    example = float(ops.convert_to_numpy(keras.losses.categorical_crossentropy(p, q))[0])
    # The notes' y = [3, 0, 2] with logits z (undefined in the notes: here seeded, 5 classes).
    y = np.array([3, 0, 2], "int32")
    z = np.random.default_rng(seed).normal(size=(3, 5)).astype("float32")
    # torch.zeros_like(h).scatter_(1, y.unsqueeze(1), 1): a 1 at (i, y_i) of each row.
    coordinates = np.stack([np.arange(3), y], axis=1).astype("int32")
    by_scatter = ops.scatter(coordinates, ops.ones((3,)), (3, 5))
    y_one_hot = ops.one_hot(y, 5)
    costs = {
        "one_hot_neg_log_softmax": ops.mean(ops.sum(y_one_hot * -ops.log(ops.softmax(z)), axis=1)),
        "one_hot_neg_log_softmax_fused": ops.mean(ops.sum(y_one_hot * -ops.log_softmax(z), axis=1)),
        "nll_of_log_softmax": -ops.mean(ops.take_along_axis(ops.log_softmax(z), y[:, None], axis=1)),
        "cross_entropy": keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, z),
    }
    labels = np.array([3, 1, 2, 4, 5])  # 1-based: eye(len(y))[y - 1]
    return {
        "minus_log_0_8": example,
        "four_costs": {name: float(ops.convert_to_numpy(c)) for name, c in costs.items()},
        "four_costs_numpy": float(-np.mean(np.log(softmax_numpy(z)[np.arange(3), y]))),
        "scatter_equals_one_hot": bool(
            np.array_equal(ops.convert_to_numpy(by_scatter), ops.convert_to_numpy(y_one_hot))
        ),
        "eye_one_hot": ops.convert_to_numpy(ops.take(ops.eye(5), labels - 1, axis=0)).tolist(),
        "one_hot_2x2": ops.convert_to_numpy(ops.one_hot(np.array([[1, 2], [0, 1]]), 3)).tolist(),
    }


# ---- 3. training, by hand (float64 NumPy) and by Keras (float32) ----------------------------


def descend_numpy(per_class_bias, updates):
    """Zero-initialised full-batch gradient descent on the cross-entropy; returns (costs, pred).

    Gradient of the mean cross-entropy: x^T (softmax(z) - one_hot) / m for W, the column sums of
    (softmax(z) - one_hot) / m for a per-class bias; a bias shared by all classes would get their
    sum, which is zero (the probabilities and the one-hot rows both sum to 1).
    """
    x = np.asarray(X_TRAIN, "float64")
    one_hot = np.eye(CLASSES)[Y_TRAIN]
    weights, bias = np.zeros((4, CLASSES)), np.zeros(CLASSES)
    costs = []
    for _ in range(updates):
        p = softmax_numpy(x @ weights + bias)
        costs.append(-np.mean(np.log(p[np.arange(len(x)), Y_TRAIN])))
        weights -= LEARNING_RATE * x.T @ (p - one_hot) / len(x)
        if per_class_bias:
            bias -= LEARNING_RATE * (p - one_hot).sum(axis=0) / len(x)
    p = softmax_numpy(x @ weights + bias)
    costs.append(-np.mean(np.log(p[np.arange(len(x)), Y_TRAIN])))
    return np.asarray(costs), p.argmax(axis=1)


def build_layer(bias, kernel_initializer="zeros", bias_initializer="zeros"):
    """nn.Linear(4, 3) as Dense(3), called directly: logits (m, 4) -> (m, 3)."""
    layer = keras.layers.Dense(
        CLASSES,
        use_bias=bias,
        kernel_initializer=kernel_initializer,
        bias_initializer=bias_initializer,
    )
    layer.build((None, 4))
    return layer


def train(shared, per_class, random_init, shared_bias, updates):
    """Full-batch SGD(0.1) of the three models together on the cross-entropy of their logits.

    `shared` has no bias of its own: `shared_bias`, one scalar added to every logit, is the lab's
    b = zeros(1). (Keras' loss function rather than the Loss object, whose per-call overhead would
    double these tiny steps on torch; the same numbers.) Returns the (updates + 1, 3) costs and
    each model's final predictions.
    """
    x = keras.ops.convert_to_tensor(np.asarray(X_TRAIN, "float32"))
    y = keras.ops.convert_to_tensor(np.asarray(Y_TRAIN, "int32"))

    def cross_entropy(logits):
        return keras.ops.mean(keras.losses.sparse_categorical_crossentropy(y, logits, from_logits=True))

    def all_logits():
        return shared(x) + shared_bias, per_class(x), random_init(x)

    costs = gradient_descent.descend(
        lambda: [cross_entropy(logits) for logits in all_logits()],
        [*shared.trainable_variables, shared_bias]
        + per_class.trainable_variables
        + random_init.trainable_variables,
        keras.optimizers.SGD(LEARNING_RATE),
        updates,
        state=[shared, shared_bias, per_class, random_init],
    )
    predictions = [keras.ops.convert_to_numpy(keras.ops.argmax(z, axis=1)) for z in all_logits()]
    return costs, predictions


def torch_style_layer(seed):
    """nn.Linear(4, 3)'s initialisation: U(+-1/sqrt(4)) for the weights and the bias."""
    return build_layer(
        True,
        keras.initializers.RandomUniform(-0.5, 0.5, seed=seed),
        keras.initializers.RandomUniform(-0.5, 0.5, seed=seed + 1),
    )


def accuracy(predictions):
    return float(np.mean(np.asarray(predictions) == np.asarray(Y_TRAIN)))


# ---- the steps of main ----------------------------------------------------------------------


def report_softmax(summary):
    facts = softmax_facts()
    print(
        f"1. softmax([1, 2, 3]) = {fmt(facts['softmax_123'])}; softmax([2.0, 1.0, 0.1]) = "
        f"{fmt(facts['softmax_notes'])} (the notes: [0.7, 0.2, 0.1]);"
    )
    print(
        f"   softmax(z + 100) = softmax(z): {facts['shift_invariant']}; softmax([z, 0])_0 = "
        f"sigmoid(z): {facts['two_classes_is_sigmoid']}"
    )
    summary["softmax"] = facts


def report_cross_entropy(config, summary):
    facts = cross_entropy_facts(config.seed)
    costs = ", ".join(f"{v:.6f}" for v in facts["four_costs"].values())
    print(
        f"2. H([0, 0, 1], [0.1, 0.1, 0.8]) = {facts['minus_log_0_8']:.6f} = -log 0.8; the four "
        f"cost forms on seeded logits: {costs} (NumPy {facts['four_costs_numpy']:.6f});"
    )
    print(
        f"   scatter one-hot == one_hot: {facts['scatter_equals_one_hot']}; eye(5)[[3,1,2,4,5] - 1]"
        f" rows {[int(np.argmax(r)) + 1 for r in facts['eye_one_hot']]}"
    )
    summary["cross_entropy"] = facts


def report_training(config, summary):
    """3. The three models, and the NumPy replicas of the two zero-initialised ones."""
    print(f"3. x (8, 4), y = {Y_TRAIN}: full-batch SGD lr {LEARNING_RATE:g}")
    shared_bias = keras.Variable(0.0, name="shared_bias")
    costs, predictions = train(
        build_layer(False), build_layer(True), torch_style_layer(config.seed), shared_bias, LAB_UPDATES
    )
    curves = {}
    for column, (name, per_class) in enumerate((("shared_bias", False), ("per_class_bias", True))):
        costs_numpy, predictions_numpy = descend_numpy(per_class, LAB_UPDATES)
        keras_costs = costs[:, column]
        print(
            f"   {name.replace('_', ' ')}: cost "
            + ", ".join(f"{costs_numpy[k]:.6f}" for k in PRINTED[::2])
            + f" after {', '.join(map(str, PRINTED[::2]))} updates; Keras {keras_costs[1000]:.6f}"
            + f"; predictions {predictions[column].tolist()}, accuracy "
            + f"{accuracy(predictions[column]):.3f}"
        )
        summary[name] = {
            "costs_numpy": costs_numpy.tolist(),
            "costs_keras": keras_costs.tolist(),
            "predictions_numpy": predictions_numpy.tolist(),
            "predictions_keras": predictions[column].tolist(),
            "accuracy_numpy": accuracy(predictions_numpy),
            "accuracy_keras": accuracy(predictions[column]),
        }
        curves[name.replace("_", " ") + " (zero init)"] = keras_costs
    summary["shared_bias"]["shared_bias_after"] = float(keras.ops.convert_to_numpy(shared_bias))
    print(
        f"   nn.Linear initialisation (seed {config.seed}): cost {costs[0, 2]:.6f} -> "
        f"{costs[1000, 2]:.6f} after 1000 updates, accuracy {accuracy(predictions[2]):.3f}"
    )
    summary["random_init"] = {"costs": costs[:, 2].tolist(), "accuracy": accuracy(predictions[2])}
    curves[f"nn.Linear init (seed {config.seed})"] = costs[:, 2]
    return curves


def fmt(values, digits=6):
    return "[" + ", ".join(f"{v:.{digits}f}" for v in np.ravel(values)) + "]"


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.softmax_classification",
        description=__doc__.splitlines()[0],
    )
    cli.reject_unused(config, UNUSED, "softmax_classification")
    out = Path(config.out or "runs/softmax_classification")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)
    summary = {"backend": engine.backend(), "seed": config.seed}
    report_softmax(summary)
    report_cross_entropy(config, summary)
    curves = report_training(config, summary)
    plots.loss_curves(
        out / "loss_curves.png",
        curves,
        "softmax classification, full-batch SGD lr 0.1 (Keras)",
        xlabel="update",
        ylabel="cross-entropy",
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
