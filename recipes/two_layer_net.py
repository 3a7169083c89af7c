"""cs231n's two-layer network: the NumPy loss and backward pass, the gradient check, the Keras twin.

Reproduces the `TwoLayerNet` of A 5.2 (cs231n assignment 1): h = ReLU(X W1 + b1), scores = h W2 + b2,
softmax cross-entropy plus reg (sum W1^2 + sum W2^2), and the notes' backward pass
dL = (softmax - onehot) / N, dW2 = h^T dL + 2 reg W2, dW1 = X^T (dL W2^T masked) + 2 reg W1.

1. The gradient check on cs231n's toy problem (N 5, D 4, H 10, C 3, weights 0.1 randn with the
   legacy generator seeded 0, X = 10 randn seeded 1, y = [0, 1, 2, 2, 1], reg 0.05): the loss is
   1.30378789133 (cs231n's printed value) and the analytic gradients equal central differences to
   a relative error below 1e-8 (float64). The notes write the loss as -log(softmax + 1e-7); that
   1e-7 is not in their gradient, and with it the check fails (errors up to about 2e-5): the
   recipe uses the exact log-softmax and reports both.
2. The initial loss with the notes' std = 1e-4 and reg = 0 is about ln C: ln 3 = 1.0986 on the
   toy sizes, ln 10 = 2.3026 for cs231n's CIFAR-10 sizes (D 3,072, H 50, C 10; DERIVED in the
   inventory): tiny weights give almost equal scores, a uniform softmax.
3. The same network in Keras: Dense(H, relu, L2(reg)) -> Dense(C, L2(reg)) (Keras' L2 is
   reg sum W^2, the notes' term exactly), `SparseCategoricalCrossentropy(from_logits=True)`: with
   the toy's weights its loss and the engine's float32 gradients equal the NumPy ones, and one
   `keras.optimizers.SGD(0.01)` step equals the notes' `params -= lr * grads`.

    python -m recipes.two_layer_net
    KERAS_BACKEND=torch python -m recipes.two_layer_net --seed 3

Measured, default run: loss 1.30378789133; relative errors 3.6e-9 (W1), 2.7e-9 (b1),
3.4e-9 (W2), 4.4e-11 (b2) without the 1e-7 and 1.9e-5 with it; initial losses 1.098612 and
2.302585; Keras' gradients within 1.8e-7 of NumPy's (relative to the largest) and its SGD step
within 1.3e-8, on all three backends (10-20 s a run on 2 shared CPU cores, mostly imports).

Outputs (under --out, default runs/two_layer_net): summary.json.
"""

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli

keras = cli.lazy_import("keras")

SECTION = "A 5.2"
TOY = dict(examples=5, features=4, hidden=10, classes=3, reg=0.05)
TOY_LABELS = np.array([0, 1, 2, 2, 1])
TOY_LOSS = 1.30378789133  # cs231n's printed toy loss (two_layer_net.ipynb), recomputed here
CIFAR_SIZES = dict(features=3072, hidden=50, classes=10)
PARAMETERS = ("W1", "b1", "W2", "b2")


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    quick: bool = cli.option(False, "the same run (it takes a second or two)")
    seed: int = cli.option(0, "seed of the initial-loss weights and inputs (the toy uses cs231n's)")
    examples: int = cli.option(100, "examples of the 10-class initial-loss check")


UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")


# ---- the NumPy network (A 5.2) ----------------------------------------------------------------


def init_params(features, hidden, classes, std, randn):
    """W = std * randn, b = 0, as the notes' `__init__`; `randn(rows, columns)` draws the normals."""
    return {
        "W1": std * randn(features, hidden),
        "b1": np.zeros(hidden),
        "W2": std * randn(hidden, classes),
        "b2": np.zeros(classes),
    }


def loss_and_grads(params, X, y, reg, log_epsilon=0.0):
    """The notes' `loss(X, y, reg)`: (loss, grads). `log_epsilon=1e-7` is their -log(z + 1e-7)."""
    N = len(X)
    h = np.maximum(0, X @ params["W1"] + params["b1"])  # (N, H)
    scores = h @ params["W2"] + params["b2"]  # (N, C)
    shifted = scores - scores.max(axis=1, keepdims=True)
    z = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)  # softmax
    if log_epsilon:
        data_loss = -np.log(z[np.arange(N), y] + log_epsilon).sum() / N
    else:  # the exact log-softmax
        data_loss = -(shifted[np.arange(N), y] - np.log(np.exp(shifted).sum(axis=1))).sum() / N
    loss = data_loss + reg * (np.sum(params["W1"] ** 2) + np.sum(params["W2"] ** 2))
    dL = z.copy()
    dL[np.arange(N), y] -= 1
    dL /= N
    dh = dL @ params["W2"].T
    dh[h <= 0] = 0  # the ReLU's mask
    grads = {
        "W2": h.T @ dL + 2 * reg * params["W2"],
        "b2": dL.sum(axis=0),
        "W1": X.T @ dh + 2 * reg * params["W1"],
        "b1": dh.sum(axis=0),
    }
    return loss, grads


def numerical_gradient(f, array, h=1e-5):
    """Central differences (f(a + h) - f(a - h)) / 2h, one element of `array` at a time."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        old = array[index]
        array[index] = old + h
        plus = f()
        array[index] = old - h
        minus = f()
        array[index] = old
        grad[index] = (plus - minus) / (2 * h)
    return grad


def relative_error(a, b):
    """cs231n's max |a - b| / max(1e-8, |a| + |b|)."""
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def toy_problem():
    """cs231n's toy: the model from `np.random.seed(0)`, the data from `np.random.seed(1)`."""
    params = init_params(
        TOY["features"], TOY["hidden"], TOY["classes"], 0.1, np.random.RandomState(0).randn
    )
    X = 10 * np.random.RandomState(1).randn(TOY["examples"], TOY["features"])
    return params, X, TOY_LABELS


def gradient_check(params, X, y, reg, log_epsilon=0.0):
    """{parameter: relative error} of the analytic gradient against central differences of the loss."""
    _, grads = loss_and_grads(params, X, y, reg)
    errors = {}
    for name in PARAMETERS:
        numeric = numerical_gradient(
            lambda: loss_and_grads(params, X, y, reg, log_epsilon)[0], params[name]
        )
        errors[name] = relative_error(numeric, grads[name])
    return errors


def initial_loss(features, hidden, classes, examples, rng):
    """The loss at the notes' std = 1e-4, reg = 0, on standard normal inputs: about ln C."""
    params = init_params(features, hidden, classes, 1e-4, lambda *shape: rng.standard_normal(shape))
    X = rng.standard_normal((examples, features))
    y = rng.integers(0, classes, size=examples)
    return float(loss_and_grads(params, X, y, 0.0)[0])


# ---- the Keras twin ----------------------------------------------------------------------------


def keras_twin(params, reg):
    """Dense(H, relu, L2(reg)) -> Dense(C, L2(reg)) holding the NumPy weights."""
    features, hidden = params["W1"].shape
    model = keras.Sequential(
        [
            keras.Input((features,)),
            keras.layers.Dense(hidden, "relu", kernel_regularizer=keras.regularizers.L2(reg)),  # (N, H)
            keras.layers.Dense(
                params["W2"].shape[1], kernel_regularizer=keras.regularizers.L2(reg)
            ),  # (N, C)
        ]
    )
    model.set_weights([params[name].astype("float32") for name in PARAMETERS])
    return model


def keras_loss_and_grads(model, X, y):
    """Loss (cross-entropy + the L2 penalties in `model.losses`) and gradients by the engine."""
    cross_entropy = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    x = keras.ops.convert_to_tensor(X, "float32")

    def loss_fn():
        return cross_entropy(y, model(x)) + keras.ops.sum(model.losses)

    loss, grads = engine.value_and_grad(loss_fn, model.trainable_variables)
    return float(loss), dict(zip(PARAMETERS, (keras.ops.convert_to_numpy(g) for g in grads))), grads


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.two_layer_net", description=__doc__.splitlines()[0]
    )
    cli.reject_unused(config, UNUSED, "two_layer_net")
    if config.examples < 1:
        raise cli.UsageError("--examples must be at least 1")
    out = Path(config.out or "runs/two_layer_net")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)

    # ---- 1. the gradient check, float64
    params, X, y = toy_problem()
    loss, grads = loss_and_grads(params, X, y, TOY["reg"])
    errors = gradient_check(params, X, y, TOY["reg"])
    errors_epsilon = gradient_check(params, X, y, TOY["reg"], log_epsilon=1e-7)
    print(f"1. toy (N 5, D 4, H 10, C 3, reg 0.05): loss {loss:.11f} (cs231n {TOY_LOSS})")
    print(
        "   relative errors, exact log-softmax: " + ", ".join(f"{k} {v:.1e}" for k, v in errors.items())
    )
    print(
        "   with the notes' -log(z + 1e-7):     "
        + ", ".join(f"{k} {v:.1e}" for k, v in errors_epsilon.items())
    )

    # ---- 2. the initial loss, about ln C
    rng = np.random.default_rng(config.seed)
    toy_initial = initial_loss(TOY["features"], TOY["hidden"], TOY["classes"], TOY["examples"], rng)
    cifar_initial = initial_loss(**CIFAR_SIZES, examples=config.examples, rng=rng)
    print(f"2. initial loss at std 1e-4: {toy_initial:.6f} (ln 3 = {math.log(3):.6f}), ", end="")
    print(f"{cifar_initial:.6f} at 10 classes (ln 10 = {math.log(10):.6f})")

    # ---- 3. the Keras twin: loss, gradients, one SGD(0.01) step
    model = keras_twin(params, TOY["reg"])
    keras_loss, keras_grads, raw_grads = keras_loss_and_grads(model, X, y)
    scale = max(np.abs(g).max() for g in grads.values())
    gradient_difference = max(float(np.abs(keras_grads[k] - grads[k]).max()) for k in PARAMETERS) / scale
    optimizer = keras.optimizers.SGD(learning_rate=0.01)
    optimizer.apply(raw_grads, model.trainable_variables)
    stepped = dict(zip(PARAMETERS, model.get_weights()))
    step_difference = max(
        float(np.abs(stepped[k] - (params[k] - 0.01 * grads[k])).max()) for k in PARAMETERS
    )
    print(f"3. Keras ({engine.backend()}): loss {keras_loss:.6f}; ", end="")
    print(f"gradients within {gradient_difference:.1e}")
    print(f"   (relative to the largest); one SGD(0.01) step within {step_difference:.1e} of NumPy's")

    summary = {
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
        "toy_loss": float(loss),
        "relative_errors": errors,
        "relative_errors_with_notes_epsilon": errors_epsilon,
        "initial_loss_toy": toy_initial,
        "initial_loss_10_classes": cifar_initial,
        "keras_loss": keras_loss,
        "keras_gradient_relative_difference": gradient_difference,
        "sgd_step_difference": step_difference,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
