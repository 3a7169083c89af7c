"""Activation functions and their derivatives: the notes' closed forms against Keras and autodiff.

Reproduces A 2.2 (Fig. 5: sigmoid, tanh, ReLU, leaky ReLU max(0.1x, x), Maxout, ELU with
alpha = 1), B 1.2 (sigma' = sigma (1 - sigma), leaky ReLU with slope 0.01, ReLU6, swish, hard
swish, tanh' = 1 - tanh^2, GELU, ELU, Mish) and C's "Activation Function" (tanh = 2 sigma(2x) - 1):

1. every activation, evaluated by `keras.activations` (slopes passed explicitly: Keras' own
   leaky default is 0.2), equals its closed form in NumPy: leaky ReLU(-2; 0.1) = -0.2,
   ELU(-1) = 1/e - 1 = -0.6321206, ReLU6(7) = 6, leaky ReLU(-1; 0.01) = -0.01;
2. tanh(x) = 2 sigma(2x) - 1 with `keras.ops` (to float32 rounding; below 1e-15 in float64 NumPy);
3. every derivative, taken by the engine's autodiff, equals its closed form on [-5, 5];
4. Maxout (`layers.Maxout`, two pieces) is the larger of two Dense outputs, and ReLU(x w1 + b1)
   when the second piece's weights and bias are zero.

    python -m recipes.activations
    KERAS_BACKEND=torch python -m recipes.activations --points 1001

Measured, default run (10-20 s on 2 shared CPU cores, mostly imports): the values within 6.5e-7
of the closed forms, tanh's identity within 1.8e-7, the derivatives within 1.2e-6, on all three
backends.

Outputs (under --out, default runs/activations): activations.png (each activation, solid, and its
autodiff derivative, dashed), summary.json.
"""

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "A 2.2, B 1.2, C"
# The notes' points (A: -2..2, B: -3..7).
POINTS = (-3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0, 3.0, 7.0)
ELU_AT_MINUS_1 = math.exp(-1) - 1  # -0.6321205588285577


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _phi(x):  # the standard normal density; its distribution function is 0.5 (1 + erf(x / sqrt 2))
    return np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _normal_cdf(x):
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def _softplus(x):
    return np.log1p(np.exp(x))


# name: (Keras function, closed form f(x), closed form f'(x)), NumPy float64.
ACTIVATIONS = {
    "sigmoid": (
        lambda x: keras.activations.sigmoid(x),
        _sigmoid,
        lambda x: _sigmoid(x) * (1 - _sigmoid(x)),
    ),
    "tanh": (lambda x: keras.activations.tanh(x), np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "relu": (lambda x: keras.activations.relu(x), lambda x: np.maximum(0, x), lambda x: (x > 0) * 1.0),
    "leaky_relu_0.1": (  # A 2.2, C: max(0.1 x, x)
        lambda x: keras.activations.leaky_relu(x, negative_slope=0.1),
        lambda x: np.maximum(0.1 * x, x),
        lambda x: np.where(x > 0, 1.0, 0.1),
    ),
    "leaky_relu_0.01": (  # B 1.2: F.leaky_relu's slope
        lambda x: keras.activations.leaky_relu(x, negative_slope=0.01),
        lambda x: np.maximum(0.01 * x, x),
        lambda x: np.where(x > 0, 1.0, 0.01),
    ),
    "elu": (  # alpha = 1, TensorFlow's and Keras' default
        lambda x: keras.activations.elu(x, alpha=1.0),
        lambda x: np.where(x >= 0, x, np.expm1(np.minimum(x, 0))),
        lambda x: np.where(x > 0, 1.0, np.exp(np.minimum(x, 0))),
    ),
    "relu6": (
        lambda x: keras.activations.relu6(x),
        lambda x: np.clip(x, 0, 6),
        lambda x: ((x > 0) & (x < 6)) * 1.0,
    ),
    "swish": (  # x sigma(x), Keras' silu
        lambda x: keras.activations.silu(x),
        lambda x: x * _sigmoid(x),
        lambda x: _sigmoid(x) * (1 + x * (1 - _sigmoid(x))),
    ),
    "hard_swish": (  # x relu6(x + 3) / 6, Keras' hard_silu
        lambda x: keras.activations.hard_silu(x),
        lambda x: x * np.clip(x + 3, 0, 6) / 6,
        lambda x: np.where(x < -3, 0.0, np.where(x > 3, 1.0, (2 * x + 3) / 6)),
    ),
    "gelu": (  # exact: x Phi(x) (keras.ops.gelu defaults to the tanh approximation)
        lambda x: keras.activations.gelu(x, approximate=False),
        lambda x: x * _normal_cdf(x),
        lambda x: _normal_cdf(x) + x * _phi(x),
    ),
    "mish": (  # x tanh(softplus(x))
        lambda x: keras.activations.mish(x),
        lambda x: x * np.tanh(_softplus(x)),
        lambda x: np.tanh(_softplus(x)) + x * (1 - np.tanh(_softplus(x)) ** 2) * _sigmoid(x),
    ),
}


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    quick: bool = cli.option(False, "the same run (it takes a second or two)")
    points: int = cli.option(
        200, "points on [-5, 5] for the derivatives and the plot (even: 0 is skipped)"
    )


UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")


# ---- 1.-3. values, identity, derivatives -------------------------------------------------------


def values(points=POINTS):
    """{name: (Keras values, closed-form values)} at `points`."""
    x = np.asarray(points, "float32")
    return {
        name: (keras.ops.convert_to_numpy(f(x)).astype("float64"), closed(x.astype("float64")))
        for name, (f, closed, _) in ACTIVATIONS.items()
    }


def tanh_identity(x):
    """max |tanh(x) - (2 sigma(2x) - 1)| with `keras.ops` (float32)."""
    x = keras.ops.convert_to_tensor(x, "float32")
    difference = keras.ops.tanh(x) - (2 * keras.ops.sigmoid(2 * x) - 1)
    return float(keras.ops.max(keras.ops.abs(difference)))


def derivatives(x):
    """{name: f'(x)} by the engine: the gradient of sum f(x) is f' element by element.

    One call for all activations: each gets its own copy of x, a separate input of the sum.
    """
    names = list(ACTIVATIONS)
    inputs = [keras.ops.convert_to_tensor(x, "float32") for _ in names]

    def total(*xs):
        return sum(keras.ops.sum(ACTIVATIONS[name][0](xi)) for name, xi in zip(names, xs))

    _, grads = engine.value_and_grad(total, inputs)
    return {name: keras.ops.convert_to_numpy(g).astype("float64") for name, g in zip(names, grads)}


# ---- 4. Maxout ---------------------------------------------------------------------------------


def maxout_checks(seed):
    """Maxout(3, pieces=2) against the max of its two pieces as Dense layers, and against ReLU."""
    from layers import Maxout

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(8, 4)).astype("float32")
    maxout = Maxout(3, pieces=2, bias_initializer=keras.initializers.RandomNormal(seed=seed))
    y = keras.ops.convert_to_numpy(maxout(x))  # (8, 4) -> (8, 3)
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in (maxout.kernel, maxout.bias))
    # Column u * pieces + k holds piece k of unit u: piece k is Dense(3) with columns k, k + 2, ...
    pieces = []
    for k in range(2):
        dense = keras.layers.Dense(3)
        dense.build((None, 4))
        dense.set_weights([kernel[:, k::2], bias[k::2]])
        pieces.append(keras.ops.convert_to_numpy(dense(x)))
    max_difference = float(np.abs(y - np.maximum(*pieces)).max())
    # The second piece zero: max(x w1 + b1, 0) = ReLU(x w1 + b1).
    kernel[:, 1::2], bias[1::2] = 0, 0
    maxout.set_weights([kernel, bias])
    relu = keras.ops.convert_to_numpy(keras.activations.relu(x @ kernel[:, 0::2] + bias[0::2]))
    relu_difference = float(np.abs(keras.ops.convert_to_numpy(maxout(x)) - relu).max())
    return max_difference, relu_difference


def plot_activations(path, x, grads):
    plt = plots.pyplot()
    names = list(ACTIVATIONS)
    columns = 4
    rows = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.6 * rows), sharex=True)
    for ax, name in zip(axes.ravel(), names):
        f = ACTIVATIONS[name][0]
        ax.plot(x, keras.ops.convert_to_numpy(f(x.astype("float32"))), label="f")
        ax.plot(x, grads[name], "--", label="f' (autodiff)")
        ax.axhline(0, color="0.6", lw=0.5)
        ax.axvline(0, color="0.6", lw=0.5)
        ax.set(title=name, ylim=(-1.5, 5.5) if name == "relu6" else (-1.5, 3))
        ax.grid(True, alpha=0.3)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    axes.ravel()[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.activations", description=__doc__.splitlines()[0]
    )
    cli.reject_unused(config, UNUSED, "activations")
    if config.points < 2 or config.points % 2:
        raise cli.UsageError(
            "--points must be even (so that the kink at 0 is not a point) and at least 2"
        )
    out = Path(config.out or "runs/activations")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)

    table = values()
    value_errors = {name: float(np.abs(k - c).max()) for name, (k, c) in table.items()}
    print(f"1. at x = {list(POINTS)}, largest |Keras - closed form|: {max(value_errors.values()):.1e}")
    index = {x: i for i, x in enumerate(POINTS)}
    named = {
        "leaky_relu_0.1(-2)": table["leaky_relu_0.1"][0][index[-2.0]],
        "elu(-1)": table["elu"][0][index[-1.0]],
        "relu6(7)": table["relu6"][0][index[7.0]],
        "leaky_relu_0.01(-1)": table["leaky_relu_0.01"][0][index[-1.0]],
    }
    print("   " + ", ".join(f"{k} = {v:.7f}" for k, v in named.items()))

    x = np.linspace(-5, 5, config.points)
    identity = tanh_identity(x)
    identity_numpy = float(np.abs(np.tanh(x) - (2 * _sigmoid(2 * x) - 1)).max())
    print(
        f"2. max |tanh(x) - (2 sigma(2x) - 1)|: {identity:.1e} (keras.ops), {identity_numpy:.1e} (NumPy)"
    )

    grads = derivatives(x)
    derivative_errors = {
        name: float(np.abs(grads[name] - ACTIVATIONS[name][2](x)).max()) for name in grads
    }
    worst = max(derivative_errors, key=derivative_errors.get)
    print(f"3. autodiff derivatives on [-5, 5]: largest error {derivative_errors[worst]:.1e} ({worst})")

    max_difference, relu_difference = maxout_checks(config.seed)
    print(f"4. Maxout = max of two Dense: {max_difference:.1e}; ", end="")
    print(f"second piece zero = ReLU: {relu_difference:.1e}")
    plot_activations(out / "activations.png", x, grads)

    summary = {
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
        "values": {name: k.tolist() for name, (k, _) in table.items()},
        "value_errors": value_errors,
        "named_values": {k: float(v) for k, v in named.items()},
        "tanh_identity_error": identity,
        "tanh_identity_error_numpy": identity_numpy,
        "derivative_errors": derivative_errors,
        "maxout_max_difference": max_difference,
        "maxout_relu_difference": relu_difference,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
