"""Gradients through time: vanishing and exploding ||dh_T/dh_0||, and Hinton's RNN backprop quiz.

Reproduces "Recurrent Neural Network" of D 7.2 and the RNN backprop exercise of A 10.7 (figure 77):

1. D 7.2 unrolls h_t = phi(x_t U + h_{t-1} W + b); with a sigmoid the influence of h_0 shrinks to
   zero (vanishing), with a ReLU it grows (exploding). The recipe takes the whole Jacobian
   dh_T/dh_0 of `layers.VanillaRNNCell` in `keras.layers.RNN` with the engine's autodiff, for
   T = 1..50, and plots its norm for sigmoid, tanh and ReLU and recurrent weights of spectral
   radius 0.5, 1 and 1.5. Acceptance: ||dh_50/dh_0|| < 1e-3 ||dh_1/dh_0|| for sigmoid, more than
   1e3 times for ReLU with the notes' W = 1.5 I.
2. A 10.7, Hinton's Coursera quiz: one input, one logistic hidden and one linear output unit
   unrolled over three steps; dE/dz1 by autodiff and by the notes' BPTT formula (example 10.1).

    python -m recipes.rnn_gradients
    KERAS_BACKEND=torch python -m recipes.rnn_gradients --steps 100 --units 32

Measured: both acceptances hold on all three backends and dE/dz1 = 0.013934 (0.01392 with the
notes' rounded values), in 6-20 s a run (2 CPU cores).

Outputs (under --out, default runs/rnn_gradients): gradient_norms.png, summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "D 7.2, A 10.7"
ACTIVATIONS = ("sigmoid", "tanh", "relu")
RADII = (0.5, 1.0, 1.5)

# A 10.7, Hinton's quiz (figure 77): one input, one logistic hidden and one linear output unit,
# unrolled over t = 0, 1, 2; E = sum_t 1/2 (target_t - y_t)^2.
QUIZ = {
    "w_xh": -0.1,
    "w_hh": 0.5,
    "w_hy": 0.25,
    "h_bias": 0.4,
    "y_bias": 0.0,
    "inputs": (18.0, 9.0, -8.0),
    "targets": (0.1, -0.1, -0.2),
}


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(1, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    steps: int = cli.option(50, "longest unrolling T")
    units: int = cli.option(16, "hidden units")
    input_dim: int = cli.option(
        3, "input features x_t (standard normal, the same sequence for all runs)"
    )
    input_scale: float = cli.option(0.5, "scale of the inputs x_t (0 isolates the recurrence)")


QUICK = {"units": 8}


# ---- 1. ||dh_T/dh_0|| for T = 1..steps -------------------------------------------------------
# D 7.2 writes the unrolling out: h_1 = phi(h_0 W + x_1 U), h_2 = phi(phi(h_0 W + x_1 U) W + x_2 U),
# ... By the chain rule dh_T/dh_0 = prod_t diag(phi'(z_t)) W^T, so a sigmoid (phi' <= 1/4) decays
# at least like (r/4)^T, and a ReLU with W = 1.5 I, whose units stay active, grows like 1.5^T.


def recurrent_matrix(activation, radius, units, rng):
    """W with spectral radius `radius`: r I for ReLU (the notes' example), else r Q, Q orthogonal."""
    if activation == "relu":
        return radius * np.eye(units)
    q, r = np.linalg.qr(rng.normal(size=(units, units)))
    return radius * q * np.sign(np.diag(r))


def problem(config, seed):
    """The shared inputs (1, T, x), input kernel U (x, h) and initial state h_0 (1, h), all float32."""
    rng = np.random.default_rng(seed)
    inputs = config.input_scale * rng.normal(size=(1, config.steps, config.input_dim))
    kernel = rng.normal(size=(config.input_dim, config.units)) / np.sqrt(config.input_dim)
    h0 = rng.uniform(0.1, 1.0, size=(1, config.units))  # positive: a ReLU starts with every unit active
    return inputs.astype("float32"), kernel.astype("float32"), h0.astype("float32")


def jacobian_function(activation, kernel, inputs, units):
    """A compiled `recurrent -> dh_T/dh_0 for T = 1..steps` via autodiff through the Keras RNN.

    The RNN is `keras.layers.RNN(VanillaRNNCell)` run from a given initial state. One backward pass:
    the batch holds steps * units copies of the sequence; copy (T, i) contributes h_T[i], so the
    gradient with respect to its own initial state is row i of dh_T/dh_0. The returned callable takes
    W (units, units) and h_0 (1, units) and returns J (steps, units, units), J[T-1, i, j] =
    d h_T[i] / d h_0[j].
    """
    import layers

    steps = inputs.shape[1]
    cell = layers.VanillaRNNCell(units, activation=activation, use_bias=False)
    rnn = keras.layers.RNN(cell, return_sequences=True)
    rnn.build((None, steps, inputs.shape[2]))
    cell.kernel.assign(kernel)
    copies = steps * units
    batch_inputs = keras.ops.convert_to_tensor(np.repeat(inputs, copies, axis=0))  # (copies, T, x)
    selector = np.zeros((copies, steps, units), "float32")  # picks h_T[i] for copy (T, i)
    for t in range(steps):
        selector[t * units + np.arange(units), t, np.arange(units)] = 1.0
    selector = keras.ops.convert_to_tensor(selector)

    def gradient(initial):
        def picked(state):
            # rnn(...): (copies, steps, units), every h_t of every copy
            return keras.ops.sum(rnn(batch_inputs, initial_state=[state]) * selector)

        return engine.value_and_grad(picked, [initial])[1][0]

    compiled = engine.function(gradient, [rnn])  # one compile per activation, reused for every W

    def jacobian(recurrent, h0):
        cell.recurrent_kernel.assign(recurrent.astype("float32"))
        grad = compiled(keras.ops.convert_to_tensor(np.repeat(h0, copies, axis=0)))
        return keras.ops.convert_to_numpy(grad).reshape(steps, units, units)

    return jacobian


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _relu(z):
    return np.maximum(z, 0)


# phi'(z) written with the output h = phi(z), as BPTT uses it.
def _sigmoid_derivative(h):
    return h * (1 - h)


def _tanh_derivative(h):
    return 1 - h**2


def _relu_derivative(h):
    return (h > 0).astype(h.dtype)


NUMPY_ACTIVATIONS = {  # name: (phi, phi' as a function of h)
    "sigmoid": (_sigmoid, _sigmoid_derivative),
    "tanh": (np.tanh, _tanh_derivative),
    "relu": (_relu, _relu_derivative),
}


def jacobians_numpy(activation, kernel, recurrent, inputs, h0):
    """The chain rule in NumPy: dh_T/dh_0 = diag(phi'(z_T)) W^T ... diag(phi'(z_1)) W^T."""
    phi, derivative = NUMPY_ACTIVATIONS[activation]
    h = h0[0].astype(np.float64)
    jacobian, result = np.eye(len(h)), []
    for x in inputs[0].astype(np.float64):
        h = phi(x @ kernel + h @ recurrent)  # (units,)
        jacobian = (derivative(h)[:, None] * recurrent.T) @ jacobian  # (units, units)
        result.append(jacobian)
    return np.stack(result)


def gradient_norms(config, seed):
    """{(activation, radius): [||dh_T/dh_0||_F for T = 1..steps]}, plus the NumPy check's error."""
    inputs, kernel, h0 = problem(config, seed)
    norms, worst = {}, 0.0
    for index, activation in enumerate(ACTIVATIONS):
        rng = np.random.default_rng(seed + 100 + index)
        jacobians = jacobian_function(activation, kernel, inputs, config.units)
        for radius in RADII:
            recurrent = recurrent_matrix(activation, radius, config.units, rng)
            found = jacobians(recurrent, h0)
            norms[activation, radius] = np.linalg.norm(found, axis=(1, 2)).tolist()
            expected = jacobians_numpy(activation, kernel, recurrent.astype("float32"), inputs, h0)
            scale = np.abs(expected).max(axis=(1, 2), keepdims=True) + 1e-30
            worst = max(worst, float((np.abs(found - expected) / scale).max()))
    return norms, worst


def plot_norms(path, norms, steps):
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, len(ACTIVATIONS), figsize=(12, 3.8), sharey=True)
    t = np.arange(1, steps + 1)
    for ax, activation in zip(axes, ACTIVATIONS):
        for radius in RADII:
            values = np.maximum(norms[activation, radius], 1e-40)  # float32 underflows to 0
            matrix = "I" if activation == "relu" else "Q"
            ax.semilogy(t, values, label=f"W = {radius:g} {matrix}")
        ax.set(title=f"{activation}", xlabel="T")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("||dh_T / dh_0||  (Frobenius)")
    fig.suptitle("Vanishing and exploding gradients through time (VanillaRNNCell)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- 2. Hinton's quiz (A 10.7) -------------------------------------------------------------------


def quiz_forward(z1=None):
    """The quiz network in keras.ops; with `z1` given, the forward pass continues from that z1.

    Returns a dict of tensors: z, h, y (one entry per time step) and the error E.
    """
    ops = keras.ops
    q = QUIZ
    z, h, y = [], [], []
    previous = ops.convert_to_tensor(0.0)
    for t, x in enumerate(q["inputs"]):
        pre = q["w_xh"] * x + q["w_hh"] * previous + q["h_bias"]
        if t == 1 and z1 is not None:
            pre = z1
        z.append(pre)
        h.append(ops.sigmoid(pre))
        y.append(q["w_hy"] * h[-1] + q["y_bias"])
        previous = h[-1]
    error = sum(0.5 * (target - out) ** 2 for target, out in zip(q["targets"], y))
    return {"z": z, "h": h, "y": y, "E": error}


def quiz_error(z1):
    """E as a function of the pre-activation z1 (what the quiz differentiates)."""
    return quiz_forward(z1)["E"]


def quiz_formula(h, y):
    """Example 10.1 of the notes: dE/dz1 by backpropagation through time, from h and y.

        dE/dz1 = (y1 - t1) W_hy h1 (1 - h1) + (y2 - t2) W_hy h2 (1 - h2) W_hh h1 (1 - h1)

    z1 feeds E through y1 and, via h2, through y2: the two terms.
    """
    q, t = QUIZ, QUIZ["targets"]
    local = h[1] * (1 - h[1])
    direct = (y[1] - t[1]) * q["w_hy"] * local  # through y1
    through_h2 = (y[2] - t[2]) * q["w_hy"] * h[2] * (1 - h[2]) * q["w_hh"] * local  # through h2, y2
    return direct + through_h2


def quiz():
    """The quiz's values and dE/dz1 by autodiff, by the formula, and by the formula on rounded values.

    The hidden values round to 0.2, 0.4, 0.8 and the outputs to 0.05, 0.1, 0.2, the notes' numbers:
    exact dE/dz1 = 0.013934, 0.01392 with the rounded values.
    """
    forward = {k: [float(v) for v in vs] if isinstance(vs, list) else float(vs)
               for k, vs in quiz_forward().items()}  # fmt: skip
    z1 = keras.ops.convert_to_tensor(np.float32(forward["z"][1]))
    _, (grad,) = engine.value_and_grad(quiz_error, [z1])
    rounded_h = [round(v, 1) for v in forward["h"]]
    rounded_y = [round(v, 2) for v in forward["y"]]
    rounded_e = sum(0.5 * (t - y) ** 2 for t, y in zip(QUIZ["targets"], rounded_y))
    return {
        **forward,
        "dE_dz1_autodiff": float(keras.ops.convert_to_numpy(grad)),
        "dE_dz1_formula": quiz_formula(forward["h"], forward["y"]),
        "rounded": {
            "h": rounded_h,
            "y": rounded_y,
            "E": rounded_e,
            "dE_dz1": quiz_formula(rounded_h, rounded_y),
        },  # fmt: skip
    }


def print_norms(norms, worst, config):
    """Prints ||dh_T/dh_0|| at T = 1 and T = steps per run; returns their ratios."""
    print(f"1. ||dh_T/dh_0|| (Frobenius), T = 1 and T = {config.steps}, {config.units} units:")
    ratios = {}
    for (activation, radius), values in norms.items():
        ratios[f"{activation} {radius:g}"] = values[-1] / values[0]
        matrix = "I" if activation == "relu" else "Q"
        print(
            f"   {activation:<7} W = {radius:g} {matrix}: {values[0]:.3e} -> {values[-1]:.3e} "
            f"(ratio {values[-1] / values[0]:.3e})"
        )
    print(f"   autodiff against the NumPy chain rule: largest relative difference {worst:.1e}")
    return ratios


def print_quiz(answer):
    h, y = answer["h"], answer["y"]
    print("2. Hinton's RNN backprop quiz (A 10.7):")
    print(f"   z = {np.round(answer['z'], 6).tolist()}")
    print(f"   h = {np.round(h, 6).tolist()} (rounded {answer['rounded']['h']})")
    print(f"   y = {np.round(y, 6).tolist()} (rounded {answer['rounded']['y']})")
    print(f"   E = {answer['E']:.6f} (rounded values: {answer['rounded']['E']:.5f})")
    print(
        f"   dE/dz1 = {answer['dE_dz1_autodiff']:.6f} (autodiff), {answer['dE_dz1_formula']:.6f} "
        f"(BPTT formula), {answer['rounded']['dE_dz1']:.5f} (formula on the rounded values)"
    )


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.rnn_gradients",
        description=__doc__.splitlines()[0],
        quick=QUICK,
    )
    if min(config.steps, config.units, config.input_dim) < 1 or config.input_scale < 0:
        raise cli.UsageError("--steps, --units and --input-dim must be at least 1, --input-scale >= 0")
    out = Path(config.out or "runs/rnn_gradients")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)

    norms, worst = gradient_norms(config, config.seed)
    ratios = print_norms(norms, worst, config)
    plot_norms(out / "gradient_norms.png", norms, config.steps)
    answer = quiz()
    print_quiz(answer)

    summary = {
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
        "norms": {f"{a} {r:g}": v for (a, r), v in norms.items()},
        "ratio_T_over_1": ratios,
        "autodiff_vs_numpy_max_relative_difference": worst,
        "quiz": answer,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
