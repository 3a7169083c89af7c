"""Automatic differentiation: the notes' graph by hand, by a tiny engine and by every backend.

Reproduces C's "Autograd" slides (the graph b = w1 a, c = w2 a, d = w3 b + w4 c, L = 10 - d and its
backward function), the chain rule of A 2.1 and `tf.gradients` of A 5.1:

1. C: a 30-line reverse-mode engine (`Scalar`) whose `backward` is the slide's: each node hands
   input_grad * local_grad to its inputs. At a = 2, w = (1, 2, 3, 4): L = -12, dL/dw = (-6, -8,
   -2, -4), dL/da = -11 (a feeds two paths, whose products add). The same graph in keras.ops
   through `recipes.engine.value_and_grad` (TF GradientTape, torch autograd, jax.grad) agrees;
2. A 5.1: tf.gradients([3x + 10y, 2x + 100y], [x, y]) at x = y = 1 sums over its outputs: (5, 110);
3. A 2.1: the sigmoid as a graph (x -> -x -> e^-x -> 1 + e^-x -> 1/.) backpropagates to
   y^2 e^-x = sigma(1 - sigma); for Y = A X, df/dA = (df/dY) X^T and df/dX = A^T (df/dY);
   figure 4's two-layer example by the hand backward, its structural zeros masked;
4. the engine's float32 gradients against central finite differences in float64.

    python -m recipes.autodiff
    KERAS_BACKEND=torch python -m recipes.autodiff --seed 1

Measured: all of the above on the three backends (engine against float64 finite differences:
largest relative difference 5e-8), in about a second.

Outputs (under --out, default runs/autodiff): sigmoid_backward.png (sigma' by the formula, the
graph's backward pass and the engine), summary.json.
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

SECTION = "C, A 2.1, A 5.1"
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")

GRAPH_POINT = {"a": 2.0, "w1": 1.0, "w2": 2.0, "w3": 3.0, "w4": 4.0}
# Figure 4 of A 2.1 gives no numbers: a fixed example. x (1, 3); W = [[w1, 0], [w2, w3], [0, w4]].
FIGURE4 = {"x": [0.5, -1.0, 2.0], "w": [0.1, -0.2, 0.3, 0.4], "u": [0.7, -0.5], "t": 1.0}


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    seed: int = cli.option(0, "seed of the random matrices A and X of part 3")
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    quick: bool = cli.option(False, "the same run (it takes a second)")


# ---- 1. the slide's engine --------------------------------------------------------------------


class Scalar:
    """A number that remembers how it was computed: its inputs and the local gradients to them.

    `backward(input_grad)` is the slide's backward function: the node adds `input_grad` to its
    `.grad` and hands `input_grad * local_grad` on to every input, which does the same. A value
    used twice (a in b = w1 a and c = w2 a) receives one product per path, and they add up.
    """

    def __init__(self, value, inputs=()):
        self.value = float(value)
        self.inputs = inputs  # ((Scalar, d self / d input), ...)
        self.grad = 0.0

    @staticmethod
    def wrap(other):
        return other if isinstance(other, Scalar) else Scalar(other)

    def __add__(self, other):
        other = Scalar.wrap(other)
        return Scalar(self.value + other.value, ((self, 1.0), (other, 1.0)))

    __radd__ = __add__

    def __mul__(self, other):
        other = Scalar.wrap(other)
        return Scalar(self.value * other.value, ((self, other.value), (other, self.value)))

    __rmul__ = __mul__

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + -Scalar.wrap(other)

    def __rsub__(self, other):
        return Scalar.wrap(other) + -self

    def exp(self):
        value = math.exp(self.value)
        return Scalar(value, ((self, value),))

    def reciprocal(self):
        return Scalar(1 / self.value, ((self, -1 / self.value**2),))

    def backward(self, input_grad=1.0):
        self.grad += input_grad
        for node, local_grad in self.inputs:
            node.backward(input_grad * local_grad)


def notes_graph(a, w1, w2, w3, w4):
    """The slide's forward function; works on Scalars and on tensors alike."""
    b = w1 * a
    c = w2 * a
    d = (w3 * b) + (w4 * c)
    return 10 - d


def graph_by_scalars(point=GRAPH_POINT):
    nodes = {name: Scalar(value) for name, value in point.items()}
    loss = notes_graph(**nodes)
    loss.backward()
    return loss.value, {name: node.grad for name, node in nodes.items()}


def graph_by_engine(point=GRAPH_POINT):
    """The same graph in keras.ops, differentiated by the backend through the engine."""
    names = list(point)
    tensors = [keras.ops.convert_to_tensor(point[n], "float32") for n in names]
    value, grads = engine.value_and_grad(lambda *args: notes_graph(*args), tensors)
    return to_float(value), {n: to_float(g) for n, g in zip(names, grads)}


def to_float(x):
    return float(keras.ops.convert_to_numpy(x))


# ---- 2. tf.gradients sums over its outputs ------------------------------------------------------


def tf_gradients_example():
    """g = tf.gradients([3x + 10y, 2x + 100y], [x, y]) at x = y = 1: d(sum of ys)/d(x, y)."""
    x, y = (keras.ops.convert_to_tensor([1.0]) for _ in range(2))

    def summed(x, y):
        return keras.ops.sum(3 * x + 10 * y) + keras.ops.sum(2 * x + 100 * y)

    _, grads = engine.value_and_grad(summed, [x, y])
    return [to_float(g[0]) for g in grads]


# ---- 3. the chain rule of A 2.1 ----------------------------------------------------------------


def sigmoid_by_graph(x):
    """sigma(x) built from -x, exp, +1 and 1/.; returns (sigma, its gradient by the backward pass)."""
    node = Scalar(x)
    y = (1 + (-node).exp()).reciprocal()
    y.backward()
    return y.value, node.grad


def sigmoid_backward(xs):
    """sigma' on `xs` four ways: formula sigma(1 - sigma), the notes' y^2 e^-x, the Scalar graph and
    the engine (float32)."""
    xs = np.asarray(xs, "float64")
    sigma = 1 / (1 + np.exp(-xs))
    by_graph = np.array([sigmoid_by_graph(x)[1] for x in xs])
    _, (by_engine,) = engine.value_and_grad(
        lambda t: keras.ops.sum(keras.ops.sigmoid(t)),
        [keras.ops.convert_to_tensor(xs.astype("float32"))],
    )
    return {
        "x": xs.tolist(),
        "formula": (sigma * (1 - sigma)).tolist(),
        "y2_exp_minus_x": (sigma**2 * np.exp(-xs)).tolist(),
        "graph": by_graph.tolist(),
        "engine": keras.ops.convert_to_numpy(by_engine).tolist(),
    }


def matrix_gradients(seed):
    """Y = A X, f = sum(tanh(Y)): the notes' (df/dY) X^T and A^T (df/dY) against the engine and
    finite differences."""
    rng = np.random.default_rng(seed)
    a, x = rng.normal(size=(3, 4)), rng.normal(size=(4, 2))
    upstream = 1 - np.tanh(a @ x) ** 2  # df/dY

    def f(a, x):
        return float(np.sum(np.tanh(a @ x)))

    _, (grad_a, grad_x) = engine.value_and_grad(
        lambda a, x: keras.ops.sum(keras.ops.tanh(keras.ops.matmul(a, x))),
        [
            keras.ops.convert_to_tensor(a.astype("float32")),
            keras.ops.convert_to_tensor(x.astype("float32")),
        ],
    )
    return {
        "dA_formula": upstream @ x.T,
        "dX_formula": a.T @ upstream,
        "dA_engine": keras.ops.convert_to_numpy(grad_a),
        "dX_engine": keras.ops.convert_to_numpy(grad_x),
        "dA_finite": finite_differences(lambda m: f(m, x), a),
        "dX_finite": finite_differences(lambda m: f(a, m), x),
    }


def figure4_numpy(x, w, u, t):
    """A 2.1 figure 4 forward and the notes' hand backward; returns (E, dE/dw, dE/du, dE/dW)."""
    x, w, u = (np.asarray(v, "float64") for v in (x, w, u))
    weights = np.array([[w[0], 0.0], [w[1], w[2]], [0.0, w[3]]])
    h = 1 / (1 + np.exp(-(x @ weights)))  # z1 = w1 x1 + w2 x2, z2 = w3 x2 + w4 x3
    y = u @ h
    error = 0.5 * (t - y) ** 2
    d_y = -(t - y)
    d_u = h * d_y
    d_z = h * (1 - h) * (u * d_y)
    d_weights = np.outer(x, d_z)  # X^T dE/dz, 3x2: its structural zeros are not parameters
    d_w = d_weights[[0, 1, 1, 2], [0, 0, 1, 1]]
    return float(error), d_w, d_u, d_weights


def figure4_engine(x, w, u, t):
    ops = keras.ops

    def error(w, u):
        zero = ops.zeros_like(w[0])
        weights = ops.stack([ops.stack([w[0], zero]), ops.stack([w[1], w[2]]), ops.stack([zero, w[3]])])
        h = ops.sigmoid(ops.matmul(ops.convert_to_tensor(x, "float32")[None, :], weights))[0]
        return 0.5 * (t - ops.sum(u * h)) ** 2

    value, (d_w, d_u) = engine.value_and_grad(
        error, [ops.convert_to_tensor(w, "float32"), ops.convert_to_tensor(u, "float32")]
    )
    return to_float(value), ops.convert_to_numpy(d_w), ops.convert_to_numpy(d_u)


# ---- 4. finite differences ------------------------------------------------------------------


def finite_differences(f, point, step=1e-6):
    """Central differences (f(p + h e_i) - f(p - h e_i)) / 2h of a float64 function."""
    point = np.asarray(point, "float64")
    grad = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        shift = np.zeros_like(point)
        shift[index] = step
        grad[index] = (f(point + shift) - f(point - shift)) / (2 * step)
    return grad


def relative_error(a, b):
    a, b = np.asarray(a, "float64"), np.asarray(b, "float64")
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


# ---- the steps of main ----------------------------------------------------------------------


def report_graph(summary):
    value, grads = graph_by_scalars()
    engine_value, engine_grads = graph_by_engine()
    point = ", ".join(f"{k} = {v:g}" for k, v in GRAPH_POINT.items())
    print(f"1. C's graph at {point}: L = {value:g}")
    print("   dL/dw4 = dL/dd * dd/dw4 = -c, dL/dw3 = -b, dL/dw2 = dL/dd * dd/dc * dc/dw2 = -w4 a, ...")
    print(f"   Scalar engine: {fmt(grads)}")
    print(f"   {engine.backend()} through the engine: L = {engine_value:g}, {fmt(engine_grads)}")
    finite = finite_differences(
        lambda p: notes_graph(*p), np.array(list(GRAPH_POINT.values()))
    )  # fmt: skip
    summary["graph"] = {
        "loss": value,
        "grads": grads,
        "engine_loss": engine_value,
        "engine_grads": engine_grads,
        "finite_differences": dict(zip(GRAPH_POINT, finite.tolist())),
    }


def report_tf_gradients(summary):
    grads = tf_gradients_example()
    print(f"2. tf.gradients([3x + 10y, 2x + 100y], [x, y]) at x = y = 1: {fmt(grads)} (summed)")
    summary["tf_gradients"] = grads


def report_chain_rule(config, summary):
    sigmoid = sigmoid_backward(np.linspace(-5, 5, 21))
    worst = max(
        relative_error(sigmoid[k], sigmoid["formula"]) for k in ("y2_exp_minus_x", "graph", "engine")
    )
    print("3. A 2.1: sigma' = y^2 e^-x by the graph's backward = sigma(1 - sigma) (largest")
    print(f"   relative difference of the notes' form, the Scalar graph and the engine: {worst:.1e})")
    matrix = matrix_gradients(config.seed)
    matrix_errors = {
        "dA_formula_vs_engine": relative_error(matrix["dA_engine"], matrix["dA_formula"]),
        "dX_formula_vs_engine": relative_error(matrix["dX_engine"], matrix["dX_formula"]),
        "dA_formula_vs_finite": relative_error(matrix["dA_finite"], matrix["dA_formula"]),
        "dX_formula_vs_finite": relative_error(matrix["dX_finite"], matrix["dX_formula"]),
    }
    print(
        "   Y = A X (3x4, 4x2), f = sum tanh(Y): (df/dY) X^T and A^T (df/dY) against the engine "
        f"{max(list(matrix_errors.values())[:2]):.1e}, finite differences "
        f"{max(list(matrix_errors.values())[2:]):.1e}"
    )
    error, d_w, d_u, d_weights = figure4_numpy(**FIGURE4)
    engine_error, engine_w, engine_u = figure4_engine(**FIGURE4)
    finite_w = finite_differences(
        lambda w: figure4_numpy(FIGURE4["x"], w, FIGURE4["u"], FIGURE4["t"])[0], FIGURE4["w"]
    )
    finite_u = finite_differences(
        lambda u: figure4_numpy(FIGURE4["x"], FIGURE4["w"], u, FIGURE4["t"])[0], FIGURE4["u"]
    )
    print(
        f"   figure 4: E = {error:.6f}; dE/dw = {fmt(d_w)} (hand), {fmt(engine_w)} "
        f"({engine.backend()}); dE/du = {fmt(d_u)}"
    )
    summary["sigmoid"] = sigmoid
    summary["matrix"] = matrix_errors
    summary["figure4"] = {
        "error": error,
        "engine_error": engine_error,
        "dE_dw_hand": d_w.tolist(),
        "dE_du_hand": d_u.tolist(),
        "dE_dW_full": d_weights.tolist(),
        "dE_dw_engine": engine_w.tolist(),
        "dE_du_engine": engine_u.tolist(),
        "dE_dw_finite": finite_w.tolist(),
        "dE_du_finite": finite_u.tolist(),
    }


def report_finite_differences(summary):
    graph, figure = summary["graph"], summary["figure4"]
    errors = {
        "graph": relative_error(
            list(graph["engine_grads"].values()), list(graph["finite_differences"].values())
        ),
        "figure4_w": relative_error(figure["dE_dw_engine"], figure["dE_dw_finite"]),
        "figure4_u": relative_error(figure["dE_du_engine"], figure["dE_du_finite"]),
    }
    print(
        "4. the engine (float32) against float64 central differences: "
        + ", ".join(f"{k} {v:.1e}" for k, v in errors.items())
    )
    summary["engine_vs_finite_differences"] = errors


def fmt(values):
    if isinstance(values, dict):
        return ", ".join(f"d/d{k} = {v:g}" for k, v in values.items())
    return "[" + ", ".join(f"{v:.6g}" for v in np.ravel(values)) + "]"


def plot(path, sigmoid):
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    x = np.asarray(sigmoid["x"])
    ax.plot(x, 1 / (1 + np.exp(-x)), color="0.6", label="sigma(x)")
    ax.plot(x, sigmoid["formula"], lw=3, alpha=0.4, label="sigma (1 - sigma)")
    ax.plot(x, sigmoid["graph"], "o", ms=4, label="graph backward y^2 e^-x")
    ax.plot(x, sigmoid["engine"], "x", ms=6, label=f"engine ({engine.backend()}, float32)")
    ax.set(xlabel="x", title="the sigmoid's derivative, three ways")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.autodiff", description=__doc__.splitlines()[0]
    )
    cli.reject_unused(config, UNUSED, "autodiff")
    out = Path(config.out or "runs/autodiff")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)
    summary = {"backend": engine.backend(), "seed": config.seed}
    report_graph(summary)
    report_tf_gradients(summary)
    report_chain_rule(config, summary)
    report_finite_differences(summary)
    plot(out / "sigmoid_backward.png", summary["sigmoid"])
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
