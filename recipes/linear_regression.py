"""Linear regression: the notes' learning rate diverges; 0.005 fits; the lab's test-score data.

Reproduces B I.3.1 (linear regression, MSE, gradient descent) and I.3.3 (nn.Linear):

1. the notes' data x = [[1,2,3],[3,5,6],[8,9,10]], y = [2,4,6], W and b zero, full-batch SGD on
   the MSE. At the notes' lr 0.01 the cost grows from 18.666667 to 2.37e16 at the 100th iteration:
   the cost's Hessian has largest eigenvalue 219.21, so gradient descent is stable only for
   lr < 2 / 219.21 = 0.009124. lr 0.005 reaches 0.034284 after 100 updates;
2. the lab's 5-row test-score data (deeplearningzerotoall lab-04_1), lr 1e-5: 1.619053 after 20
   updates; the lab's 1.619033 is the same loop in float32 (Keras: 1.619033-1.619063 by backend);
3. the hand gradient of I.3.1.3, 2/m sum((xW + b - y) x), equals the engine's autodiff;
4. I.3.3: Dense(2) with torch's nn.Linear initialisation acts on the last axis of any rank.

Every run is done twice: in float64 NumPy with the hand gradient, as the notes compute it, and in
float32 with Keras (Dense, SGD, MeanSquaredError) and the engine's gradient, on any backend.

    python -m recipes.linear_regression
    KERAS_BACKEND=jax python -m recipes.linear_regression --seed 1

Measured: all of the above on the three backends (Keras float32 within 2e-5 of NumPy's float64),
in about a second after start-up (2 CPU cores).

Outputs (under --out, default runs/linear_regression): loss_curves.png (the cost per iteration at
lr 0.01, 0.005 and 0.001, log scale), summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, gradient_descent, plots

keras = cli.lazy_import("keras")

SECTION = "B I.3.1, I.3.3"
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")

# B I.3.1: the notes' inline data, trained for `range(1, 101)`: 100 updates.
X_NOTES = [[1, 2, 3], [3, 5, 6], [8, 9, 10]]
Y_NOTES = [[2], [4], [6]]
NOTES_UPDATES = 100
LEARNING_RATES = (0.01, 0.005, 0.001)  # the notes', a stable one, a slow one
# lab-04_1 (the notes' B 2.1.2 MyDataset holds its first two rows): lr 1e-5, 20 updates.
X_SCORES = [[73, 80, 75], [93, 88, 93], [89, 91, 90], [96, 98, 100], [73, 66, 70]]
Y_SCORES = [[152], [185], [180], [196], [142]]
SCORES_LEARNING_RATE = 1e-5
SCORES_UPDATES = 20


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(3, cli.HIDDEN)
    seed: int = cli.option(0, "seed of the nn.Linear-style initialisation and input of part 4")
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    quick: bool = cli.option(False, "the same run (it takes seconds)")


# ---- gradient descent, by hand (float64 NumPy) and by Keras (float32) ---------------------------


def hand_gradient(x, y, weights, bias, xp=np):
    """I.3.1.3: dcost/dW = 2/m sum((xW + b - y) x), dcost/db = 2/m sum(xW + b - y); `xp` is
    NumPy or keras.ops."""
    error = xp.matmul(x, weights) + bias - y  # (m, 1)
    m = x.shape[0]
    return 2 * xp.matmul(xp.transpose(x), error) / m, 2 * xp.sum(error, axis=0) / m


def descend_numpy(x, y, learning_rate, updates, dtype="float64"):
    """Full-batch gradient descent from W = 0, b = 0 in `dtype`; returns (costs, W, b)."""
    x, y = np.asarray(x, dtype), np.asarray(y, dtype)
    rate = np.asarray(learning_rate, dtype)
    weights, bias = np.zeros((x.shape[1], 1), dtype), np.zeros(1, dtype)
    costs = []
    for _ in range(updates):
        costs.append(np.mean((x @ weights + bias - y) ** 2))
        grad_w, grad_b = hand_gradient(x, y, weights, bias)
        weights, bias = weights - rate * grad_w, bias - rate * grad_b
    costs.append(np.mean((x @ weights + bias - y) ** 2))
    return np.asarray(costs, "float64"), weights, bias


def descend_keras(x, y, learning_rate, updates):
    """The same with Dense(1) (zeros), SGD and MeanSquaredError in float32; returns (costs, W, b)."""
    x, y = np.asarray(x, "float32"), np.asarray(y, "float32")
    # H(x) = xW + b: nn.Linear(3, 1) is Dense(1); (m, 3) -> (m, 1)
    layer = keras.layers.Dense(1, kernel_initializer="zeros", bias_initializer="zeros")
    layer.build((None, x.shape[1]))
    mse = keras.losses.MeanSquaredError()
    x_t, y_t = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)
    costs = gradient_descent.descend(
        lambda: mse(y_t, layer(x_t)),
        layer.trainable_variables,
        keras.optimizers.SGD(learning_rate),
        updates,
        state=[layer],
    )
    return costs, keras.ops.convert_to_numpy(layer.kernel), keras.ops.convert_to_numpy(layer.bias)


def stability_bound(x):
    """2 / lambda_max of the MSE's Hessian 2/m [x 1]^T [x 1]: the largest stable learning rate."""
    design = np.c_[np.asarray(x, "float64"), np.ones(len(x))]
    hessian = 2 * design.T @ design / len(x)
    largest = float(np.linalg.eigvalsh(hessian).max())
    return largest, 2 / largest


def gradient_check(x, y):
    """The hand gradient (keras.ops) against the engine's at W = [0.1, 0.2, 0.3], b = 0.5."""
    x_t, y_t = (keras.ops.convert_to_tensor(np.asarray(a, "float32")) for a in (x, y))
    weights = keras.ops.convert_to_tensor(np.array([[0.1], [0.2], [0.3]], "float32"))
    bias = keras.ops.convert_to_tensor(np.array([0.5], "float32"))

    def cost(w, b):
        return keras.ops.mean((keras.ops.matmul(x_t, w) + b - y_t) ** 2)

    _, (auto_w, auto_b) = engine.value_and_grad(cost, [weights, bias])
    hand_w, hand_b = hand_gradient(x_t, y_t, weights, bias, xp=keras.ops)
    return [keras.ops.convert_to_numpy(g) for g in (auto_w, auto_b, hand_w, hand_b)]


def torch_style_dense(units, inputs, seed):
    """Dense(units) initialised like torch's nn.Linear: U(+-1/sqrt(fan_in)) for weights and bias."""
    limit = 1 / np.sqrt(inputs)
    return keras.layers.Dense(
        units,
        # VarianceScaling's uniform limit sqrt(3 scale / fan_in) is 1/sqrt(fan_in) at scale 1/3.
        kernel_initializer=keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform", seed=seed),
        bias_initializer=keras.initializers.RandomUniform(-limit, limit, seed=seed + 1),
    )


def linear_on_any_rank(seed):
    """I.3.3: m = nn.Linear(4, 2); m(x) on x of shape (2, 5, 4): y = x W + b on the last axis."""
    x = np.random.default_rng(seed).normal(size=(2, 5, 4)).astype("float32")
    layer = torch_style_dense(2, 4, seed)
    out = keras.ops.convert_to_numpy(layer(x))
    # (2, 5, 4) -> (2, 5, 2); Keras' kernel (4, 2) is torch's weight (2, 4) transposed
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    bias = keras.ops.convert_to_numpy(layer.bias)
    return {
        "output_shape": list(out.shape),
        "kernel_shape": list(kernel.shape),
        "equals_numpy": bool(np.allclose(out, x @ kernel + bias, atol=1e-5)),
        "largest_weight": float(max(np.abs(kernel).max(), np.abs(bias).max())),
        "limit": 0.5,
    }


# ---- the steps of main ----------------------------------------------------------------------


def fmt(values, digits=5):
    return "[" + ", ".join(f"{v:.{digits}f}" for v in np.ravel(values)) + "]"


def report_notes_data(summary):
    """1. The notes' data at three learning rates, by hand and by Keras."""
    largest, bound = stability_bound(X_NOTES)
    print(f"1. x = {X_NOTES}, y = {Y_NOTES}, W = 0, b = 0, {NOTES_UPDATES} full-batch updates")
    print(f"   Hessian of the cost: largest eigenvalue {largest:.4f}, stable for lr < {bound:.6f}")
    summary["hessian_largest_eigenvalue"] = largest
    summary["stable_learning_rate_bound"] = bound
    curves = {}
    for learning_rate in LEARNING_RATES:
        costs, weights, bias = descend_numpy(X_NOTES, Y_NOTES, learning_rate, NOTES_UPDATES)
        keras_costs, keras_weights, keras_bias = descend_keras(
            X_NOTES, Y_NOTES, learning_rate, NOTES_UPDATES
        )
        print(
            f"   lr {learning_rate:g}: cost {costs[0]:.6f} -> {costs[NOTES_UPDATES - 1]:.6g} "
            f"(iteration {NOTES_UPDATES}, before its update) -> {costs[-1]:.6g} after "
            f"{NOTES_UPDATES} updates; Keras float32 {keras_costs[-1]:.6g}"
        )
        curves[f"lr {learning_rate:g}"] = keras_costs
        summary["runs"][f"{learning_rate:g}"] = {
            "costs_numpy": costs.tolist(),
            "costs_keras": keras_costs.tolist(),
            "weights_numpy": weights.ravel().tolist(),
            "bias_numpy": float(bias[0]),
            "weights_keras": keras_weights.ravel().tolist(),
            "bias_keras": float(keras_bias[0]),
            "predictions_numpy": (np.asarray(X_NOTES) @ weights + bias).ravel().tolist(),
        }
    return curves


def report_scores(summary):
    """2. The lab's 5-row data at lr 1e-5 for 20 updates."""
    costs, weights, bias = descend_numpy(X_SCORES, Y_SCORES, SCORES_LEARNING_RATE, SCORES_UPDATES)
    keras_costs, _, _ = descend_keras(X_SCORES, Y_SCORES, SCORES_LEARNING_RATE, SCORES_UPDATES)
    # The lab computes in float32 (torch.FloatTensor); its 1.619033 is this loop in float32.
    costs32, _, _ = descend_numpy(X_SCORES, Y_SCORES, SCORES_LEARNING_RATE, SCORES_UPDATES, "float32")
    print(
        f"2. test scores x = {X_SCORES}: cost {costs[0]:.6f} -> {costs[-1]:.6f} after "
        f"{SCORES_UPDATES} updates (float64); float32 NumPy {costs32[-1]:.6f}, Keras "
        f"{keras_costs[-1]:.6f}; W = {fmt(weights)}, b = {bias[0]:.5f}"
    )
    summary["scores"] = {
        "costs_numpy": costs.tolist(),
        "costs_numpy_float32": costs32.tolist(),
        "costs_keras": keras_costs.tolist(),
        "weights_numpy": weights.ravel().tolist(),
        "bias_numpy": float(bias[0]),
        "predictions_numpy": (np.asarray(X_SCORES) @ weights + bias).ravel().tolist(),
    }


def report_gradient(summary):
    """3. The hand gradient of I.3.1.3 against the engine's."""
    auto_w, auto_b, hand_w, hand_b = gradient_check(X_NOTES, Y_NOTES)
    print(
        f"3. at W = [0.1, 0.2, 0.3], b = 0.5: engine dW = {fmt(auto_w)}, db = {fmt(auto_b)}; "
        f"hand dW = {fmt(hand_w)}, db = {fmt(hand_b)}"
    )
    summary["gradient_check"] = {
        "engine": [*auto_w.ravel().tolist(), *auto_b.ravel().tolist()],
        "hand": [*hand_w.ravel().tolist(), *hand_b.ravel().tolist()],
    }


def report_linear(config, summary):
    """4. I.3.3: nn.Linear(4, 2) as Dense(2) on a rank-3 input."""
    facts = linear_on_any_rank(config.seed)
    print(
        f"4. Dense(2) on (2, 5, 4): output {facts['output_shape']}, kernel {facts['kernel_shape']} "
        f"(torch's weight transposed); x W + b in NumPy: {facts['equals_numpy']}"
    )
    summary["linear_any_rank"] = facts


def plot_costs(path, curves):
    plots.loss_curves(
        path,
        curves,
        "full-batch gradient descent on the notes' data (Keras)",
        xlabel="iteration (cost before its update)",
        ylabel="MSE",
    )


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.linear_regression", description=__doc__.splitlines()[0]
    )
    cli.reject_unused(config, UNUSED, "linear_regression")
    out = Path(config.out or "runs/linear_regression")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)
    summary = {"backend": engine.backend(), "seed": config.seed, "runs": {}}
    curves = report_notes_data(summary)
    report_scores(summary)
    report_gradient(summary)
    report_linear(config, summary)
    plot_costs(out / "loss_curves.png", curves)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
