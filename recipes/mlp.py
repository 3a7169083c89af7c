"""The multi-layer perceptron: parameter counts, why a hidden layer needs a non-linearity, and XOR.

Reproduces A 3 (networks with and without hidden layers), B 1.1 (`nn.Module` / `nn.Sequential`
MLPs; "a single-layer perceptron cannot learn XOR, an MLP can") and D 2.1-2.2 (linear and
non-linear networks, the MLP):

1. B 1.1's two networks in Keras: the `nn.Module` subclass Linear(10, 50) -> ReLU -> Linear(50, 1)
   as a `keras.Model` subclass has 10*50 + 50 + 50 + 1 = 601 parameters; the `nn.Sequential`
   Linear(10, 20) -> ReLU -> Linear(20, 1) has 241 (both DERIVED in the inventory, recomputed).
2. D 2.1: a hidden layer without an activation adds nothing, y = W2^T (W1^T x) = (W1 W2)^T x:
   two `Dense` layers equal one `Dense` with kernel W1 W2 and bias b1 W2 + b2 (to float32 rounding).
3. XOR (the lab's [[0,0],[0,1],[1,0],[1,1]] -> [0,1,1,0]): an MLP with one tanh hidden layer
   reaches accuracy 1.0; logistic regression and the two linear layers of 2. reach at most 0.75
   (no line separates XOR, and a linear stack is a line): their best binary cross-entropy is
   ln 2 = 0.6931, all four p = 1/2 (the loss is convex and symmetric). Each is trained by Adam
   on the binary cross-entropy of the four points, a few hundred full-batch steps.

    python -m recipes.mlp
    KERAS_BACKEND=torch python -m recipes.mlp --hidden 4 --steps 1000

Measured, default run (10-30 s on 2 shared CPU cores, mostly imports): 601 and 241 parameters;
the collapse holds to 2.4e-7; on XOR the MLP reaches accuracy 1.0 (loss 0.0003-0.0004) on all
three backends, while both linear models end at p = 1/2 for every point (loss 0.6931), whose
rounding gives 0.5 (torch, JAX) or 0.75 and 0.25 (TF).

Outputs (under --out, default runs/mlp): xor.png (each model's decision regions), summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "A 3, B 1.1, D 2.1-2.2"
XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype="float32")
XOR_Y = np.array([[0], [1], [1], [0]], dtype="float32")
# B 1.1 (DERIVED in the inventory): 10-50-1 and 10-20-1 with biases.
PARAMETERS = {"module_10_50_1": 601, "sequential_10_20_1": 241}


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(1, cli.HIDDEN)
    batch_size: int = cli.option(4, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    hidden: int = cli.option(8, "tanh units of the XOR MLP's hidden layer")
    steps: int = cli.option(400, "Adam steps on XOR (full batches of the 4 points)")
    learning_rate: float = cli.option(0.05, "Adam learning rate")


QUICK = dict(steps=300)
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")


# ---- 1. B 1.1's networks -----------------------------------------------------------------------


def my_model(hidden=50):
    """B 1.1's `nn.Module` Linear(10, 50) -> ReLU -> Linear(50, 1), as a `keras.Model` subclass
    (defined here, not at import time, so that `--help` does not load Keras)."""

    class MyModel(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.linear1 = keras.layers.Dense(hidden)
            self.linear2 = keras.layers.Dense(1)

        def call(self, x):
            return self.linear2(keras.ops.relu(self.linear1(x)))  # (B, 10) -> (B, 50) -> (B, 1)

    return MyModel()


def parameter_counts():
    """{name: count} of the subclassed 10-50-1 and the Sequential 10-20-1 network."""
    module = my_model()
    module(np.zeros((1, 10), "float32"))  # builds the weights
    sequential = keras.Sequential(
        [keras.Input((10,)), keras.layers.Dense(20), keras.layers.ReLU(), keras.layers.Dense(1)]
    )
    return {"module_10_50_1": module.count_params(), "sequential_10_20_1": sequential.count_params()}


# ---- 2. two linear layers are one ------------------------------------------------------------


def linear_collapse(seed):
    """Two Dense layers without activation and their one-layer equivalent on random inputs.

    Returns the largest output difference and the largest difference between the kernel product
    computed with `keras.ops.matmul` and in float64 NumPy.
    """
    rng = np.random.default_rng(seed)
    first = keras.layers.Dense(5, bias_initializer=keras.initializers.RandomNormal(seed=seed))
    second = keras.layers.Dense(3, bias_initializer=keras.initializers.RandomNormal(seed=seed + 1))
    x = rng.normal(size=(16, 4)).astype("float32")
    stacked = second(first(x))  # (16, 4) -> (16, 5) -> (16, 3)
    w1, b1 = first.kernel, first.bias
    w2, b2 = second.kernel, second.bias
    # y = (x W1 + b1) W2 + b2 = x (W1 W2) + (b1 W2 + b2): one Dense(3) with this kernel and bias.
    kernel = keras.ops.matmul(w1, w2)
    bias = keras.ops.matmul(b1[None, :], w2)[0] + b2
    one = keras.layers.Dense(3)
    one.build((None, 4))
    one.set_weights([keras.ops.convert_to_numpy(kernel), keras.ops.convert_to_numpy(bias)])
    output_difference = np.abs(keras.ops.convert_to_numpy(one(x) - stacked)).max()
    w1_np, w2_np = (keras.ops.convert_to_numpy(w).astype("float64") for w in (w1, w2))
    kernel_difference = np.abs(keras.ops.convert_to_numpy(kernel) - w1_np @ w2_np).max()
    return float(output_difference), float(kernel_difference)


# ---- 3. XOR ------------------------------------------------------------------------------------


def xor_models(hidden):
    """The three models: an MLP, logistic regression, and two linear layers (a linear model)."""
    return {
        "mlp": keras.Sequential(
            [keras.Input((2,)), keras.layers.Dense(hidden, "tanh"), keras.layers.Dense(1, "sigmoid")]
        ),
        "logistic": keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, "sigmoid")]),
        "linear_stack": keras.Sequential(
            [keras.Input((2,)), keras.layers.Dense(hidden), keras.layers.Dense(1, "sigmoid")]
        ),
    }


def train_xor(models, steps, learning_rate):
    """`steps` full-batch Adam steps on the binary cross-entropy for every model (one Adam each).

    One compiled step trains all three: with four examples a step costs less than a call, and
    `fit` would pay its per-step overhead (and a trace) three times.
    """
    optimizers = {name: keras.optimizers.Adam(learning_rate) for name in models}
    for name, model in models.items():
        optimizers[name].build(model.trainable_variables)
    x, y = keras.ops.convert_to_tensor(XOR_X), keras.ops.convert_to_tensor(XOR_Y)

    def cross_entropy(model):
        return keras.ops.mean(keras.losses.binary_crossentropy(y, model(x)))

    def step():
        losses = {}
        for name, model in models.items():
            losses[name], grads = engine.value_and_grad(
                lambda model=model: cross_entropy(model), model.trainable_variables
            )
            optimizers[name].apply(grads, model.trainable_variables)
        return losses

    compiled = engine.function(step, [*models.values(), *optimizers.values()])
    for _ in range(steps):
        compiled()
    results = {}
    for name, model in models.items():
        probabilities = keras.ops.convert_to_numpy(model(x))[:, 0]
        accuracy = float(np.mean((probabilities > 0.5) == (XOR_Y[:, 0] > 0.5)))
        results[name] = (
            accuracy,
            probabilities,
            float(keras.ops.convert_to_numpy(cross_entropy(model))),
        )
    return results


def plot_regions(path, models, accuracies):
    plt = plots.pyplot()
    grid = np.linspace(-0.5, 1.5, 101, dtype="float32")
    gx, gy = np.meshgrid(grid, grid)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    fig, axes = plt.subplots(1, len(models), figsize=(3.4 * len(models), 3.2))
    for ax, (name, model) in zip(axes, models.items()):
        p = keras.ops.convert_to_numpy(model(points))[:, 0].reshape(gx.shape)
        ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 11), cmap="coolwarm", vmin=0, vmax=1)
        ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=1)
        ax.scatter(XOR_X[:, 0], XOR_X[:, 1], c=XOR_Y[:, 0], cmap="coolwarm", edgecolors="k", s=60)
        ax.set(title=f"{name}: accuracy {accuracies[name]:.2f}", xlabel="x1", ylabel="x2")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.mlp", description=__doc__.splitlines()[0], quick=QUICK
    )
    cli.reject_unused(config, UNUSED, "mlp", "has one fixed data set and no epochs")
    if config.hidden < 1 or config.steps < 1 or not config.learning_rate > 0:
        raise cli.UsageError("--hidden and --steps must be at least 1, --learning-rate positive")
    out = Path(config.out or "runs/mlp")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)

    counts = parameter_counts()
    print(f"1. parameters: 10-50-1 (Model subclass) {counts['module_10_50_1']}, ", end="")
    print(f"10-20-1 (Sequential) {counts['sequential_10_20_1']}")

    output_difference, kernel_difference = linear_collapse(config.seed)
    print("2. two linear layers = one with kernel W1 W2, bias b1 W2 + b2: ", end="")
    print(f"outputs differ by {output_difference:.1e}")

    models = xor_models(config.hidden)
    results = train_xor(models, config.steps, config.learning_rate)
    accuracies = {name: result[0] for name, result in results.items()}
    for name, (accuracy, probabilities, loss) in results.items():
        p = np.round(probabilities, 3)
        print(f"3. XOR, {name:<12}: accuracy {accuracy:.2f}, p = {p}, loss {loss:.4f}")
    plot_regions(out / "xor.png", models, accuracies)

    summary = {
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
        "parameters": counts,
        "collapse_output_difference": output_difference,
        "collapse_kernel_difference": kernel_difference,
        "xor_accuracy": accuracies,
        "xor_probabilities": {name: result[1].tolist() for name, result in results.items()},
        "xor_final_loss": {name: result[2] for name, result in results.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
