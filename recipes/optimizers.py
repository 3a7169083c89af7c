"""Optimizers by hand: SGD, momentum, Nesterov, Adagrad, RMSprop, Adadelta and Adam, step by step.

Reproduces the update rules of D 3.2 and A 10.1 (and the optimizer family of B 2.3): each rule
written out in float64 NumPy, then run next to its Keras optimizer (`keras.optimizers.SGD`,
`Adagrad`, `RMSprop`, `Adadelta`, `Adam`) on the same loss, gradients through the engine, and
compared step by step:

1. the notes' sequences on L(w) = w^2 / 2 (so g = w): momentum (lr 0.1, beta 0.9) 0.9, 0.72, 0.486;
   Nesterov 0.81, 0.5751, 0.327321 (Keras keeps the look-ahead point; the notes' W is 0.9, 0.729,
   0.51759); RMSprop's first step from 10 -> 9.683772; Adadelta's first step -0.00141421;
   Adagrad's first step 0.1 at g = 0.5 (the notes drop the square root: 0.2); Adam's first step;
2. trajectories of every optimizer on the ill-conditioned bowl f(x, y) = (x^2 + 10 y^2) / 2 from
   (-4, 1): the hand version equals Keras at every step (float32 tolerance).

The hand versions follow Keras' conventions where the notes' form differs, and say so in comments:
RMSprop, Adagrad and Adadelta add epsilon inside the square root, Adam outside it (the notes put it
inside); Adagrad's accumulator starts at 0.1 in Keras (the notes at 0); the notes' + / - sign typos
in RMSprop and Adadelta are corrected.

    python -m recipes.optimizers
    KERAS_BACKEND=jax python -m recipes.optimizers --steps 60

Measured: every hand trajectory equals Keras' within 3e-5 (Adam; the others 1e-6) from a start at
|x| = 4 on all three backends, in about 6 s a run (JAX, 2 CPU cores); no training.
Outputs (under --out, default runs/optimizers): trajectories.png, summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "D 3.2, A 10.1, B 2.3"

# Learning rates for the bowl f(x, y) = (x^2 + 10 y^2) / 2 (stable plain SGD needs lr < 2 / 10).
BOWL_RATES = {
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.05,
    "adagrad": 0.8,
    "rmsprop": 0.1,
    "adadelta": 1.0,  # the notes: Adadelta "has no learning rate"; Keras' default 0.001 scales it
    "adam": 0.3,
}
BOWL_START = (-4.0, 1.0)
HYPER = dict(beta=0.9, rho=0.9, rho_adadelta=0.95, beta_1=0.9, beta_2=0.999, epsilon=1e-7)


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    steps: int = cli.option(40, "steps of every optimizer on the 2-D bowl")
    quick: bool = cli.option(False, "fewer steps on the bowl (10)")

    def __post_init__(self):
        if self.steps < 1:
            raise cli.UsageError(f"--steps must be at least 1, got {self.steps}")


QUICK = dict(steps=10)


# ---- the update rules by hand (float64 NumPy) --------------------------------------------------


def hand_step(name, w, g, state, lr, t, initial_accumulator=0.1):
    """One update of optimizer `name` at step t (1-based): returns the new w; `state` is a dict
    of the optimizer's slots (zeros on the first call), updated in place."""
    h = HYPER
    zeros = np.zeros_like(w)
    if name == "sgd":
        return w - lr * g
    if name in ("momentum", "nesterov"):
        # Keras keeps v = -lr * a of the notes' a_{t+1} = beta a_t + g_t, so that w += v.
        v = h["beta"] * state.get("v", zeros) - lr * g
        state["v"] = v
        if name == "momentum":
            return w + v
        # Nesterov as Keras writes it: w is the notes' look-ahead point W - lr beta a, and the
        # step adds beta v - lr g (see nesterov_notes for the notes' parameterisation).
        return w + h["beta"] * v - lr * g
    if name == "adagrad":
        # The notes: w - lr / (G + eps) g, without the square root (an erratum); Keras also starts
        # G at initial_accumulator_value (0.1; the notes at 0) and puts eps inside the root.
        acc = state.get("G", zeros + initial_accumulator) + g**2
        state["G"] = acc
        return w - lr * g / np.sqrt(acc + h["epsilon"])
    if name == "rmsprop":
        # G = rho G + (1 - rho) g^2 (the notes' "-" is a typo); eps inside the root, as the notes.
        acc = h["rho"] * state.get("G", zeros) + (1 - h["rho"]) * g**2
        state["G"] = acc
        return w - lr * g / np.sqrt(acc + h["epsilon"])
    if name == "adadelta":
        # G and H (the notes' "-" signs are typos for "+"); the update has no learning rate in the
        # notes: Keras multiplies it by lr (1.0 gives the notes') but accumulates the unscaled one.
        rho, eps = h["rho_adadelta"], h["epsilon"]
        acc = rho * state.get("G", zeros) + (1 - rho) * g**2
        delta = -np.sqrt(state.get("H", zeros) + eps) / np.sqrt(acc + eps) * g
        state["G"], state["H"] = acc, rho * state.get("H", zeros) + (1 - rho) * delta**2
        return w + lr * delta
    if name == "adam":
        # Keras' "epsilon-hat" form: lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps); the notes
        # put eps inside the root, sqrt(v + eps) (adam_notes_step): equal when g^2 >> eps.
        b1, b2 = h["beta_1"], h["beta_2"]
        m = b1 * state.get("m", zeros) + (1 - b1) * g
        v = b2 * state.get("v", zeros) + (1 - b2) * g**2
        state["m"], state["v"] = m, v
        alpha = lr * np.sqrt(1 - b2**t) / (1 - b1**t)
        return w - alpha * m / (np.sqrt(v) + h["epsilon"])
    raise ValueError(f"unknown optimizer {name!r}")


def hand_trajectory(name, start, grad, lr, steps, **kwargs):
    """[w_0, ..., w_steps] of `hand_step` with gradient function `grad` (float64)."""
    w, state, path = np.asarray(start, "float64"), {}, [np.asarray(start, "float64")]
    for t in range(1, steps + 1):
        w = hand_step(name, w, grad(w), state, lr, t, **kwargs)
        path.append(w)
    return np.stack(path)


def nesterov_notes(w0, lr, beta, steps, grad=lambda w: w):
    """The notes' NAG: a <- beta a + grad(W - lr beta a); W <- W - lr a. Returns (W, look-ahead)."""
    w, a, ws, looks = float(w0), 0.0, [], []
    for _ in range(steps):
        a = beta * a + grad(w - lr * beta * a)
        w = w - lr * a
        ws.append(w)
        looks.append(w - lr * beta * a)  # the point Keras stores
    return ws, looks


def adam_notes_step(g, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """|first Adam step| in the notes' form, eps inside the root: lr/sqrt(v+eps) c m."""
    m, v = (1 - beta_1) * g, (1 - beta_2) * g**2
    return lr / np.sqrt(v + epsilon) * np.sqrt(1 - beta_2) / (1 - beta_1) * m


# ---- the same with Keras ------------------------------------------------------------------------


def keras_optimizer(name, lr, initial_accumulator=0.1):
    h = HYPER
    opt = keras.optimizers
    return {
        "sgd": lambda: opt.SGD(lr),
        "momentum": lambda: opt.SGD(lr, momentum=h["beta"]),
        "nesterov": lambda: opt.SGD(lr, momentum=h["beta"], nesterov=True),
        "adagrad": lambda: opt.Adagrad(
            lr, initial_accumulator_value=initial_accumulator, epsilon=h["epsilon"]
        ),
        "rmsprop": lambda: opt.RMSprop(lr, rho=h["rho"], epsilon=h["epsilon"]),
        "adadelta": lambda: opt.Adadelta(lr, rho=h["rho_adadelta"], epsilon=h["epsilon"]),
        "adam": lambda: opt.Adam(lr, h["beta_1"], h["beta_2"], epsilon=h["epsilon"]),
    }[name]()


def keras_trajectory(name, start, loss_fn, lr, steps, grad=None, **kwargs):
    """[w_0, ..., w_steps] of the Keras optimizer: gradients of `loss_fn(w)` by the engine, or
    `grad(w)` (the hand version's gradient function, so that only the optimizers differ)."""
    w = keras.Variable(np.asarray(start, "float32"), name="w")
    optimizer = keras_optimizer(name, lr, **kwargs)
    path = [keras.ops.convert_to_numpy(w)]
    for _ in range(steps):
        if grad is None:
            _, grads = engine.value_and_grad(lambda: loss_fn(w), [w])
        else:
            grads = [keras.ops.convert_to_tensor(grad(keras.ops.convert_to_numpy(w)), "float32")]
        optimizer.apply(grads, [w])
        path.append(keras.ops.convert_to_numpy(w))
    return np.stack(path).astype("float64")


def half_square(w):
    """L(w) = w^2 / 2 summed: the gradient is w."""
    return 0.5 * keras.ops.sum(w * w)


def bowl(w):
    """f(x, y) = (x^2 + 10 y^2) / 2, an ill-conditioned quadratic (condition number 10)."""
    return 0.5 * (w[0] ** 2 + 10.0 * w[1] ** 2)


def bowl_numpy_grad(w):
    return np.array([w[0], 10.0 * w[1]])


def bowl_keras(w):
    return 0.5 * (w[0] * w[0] + 10.0 * w[1] * w[1])


# ---- the report ---------------------------------------------------------------------------------


def notes_sequences():
    """The notes' numbers on L = w^2 / 2, by hand (float64) and with Keras (float32)."""
    identity = lambda w: w  # noqa: E731  (g = w)
    rows = {}
    for name, start, lr, steps, kwargs in (
        ("momentum", [1.0], 0.1, 3, {}),
        ("nesterov", [1.0], 0.1, 3, {}),
        ("rmsprop", [10.0], 0.1, 1, {}),
        ("adadelta", [1.0], 1.0, 1, {}),
        ("adagrad", [0.5], 0.1, 1, {"initial_accumulator": 0.0}),
        ("adam", [0.5], 0.01, 1, {}),
    ):
        hand = hand_trajectory(name, start, identity, lr, steps, **kwargs)[1:, 0]
        by_keras = keras_trajectory(name, start, half_square, lr, steps, **kwargs)[1:, 0]
        rows[name] = {"hand": hand.tolist(), "keras": by_keras.tolist(), "start": start[0], "lr": lr}
    notes_w, look_ahead = nesterov_notes(1.0, 0.1, 0.9, 3)
    rows["nesterov"].update(notes_w=notes_w, notes_look_ahead=look_ahead)
    # First steps: Adadelta's delta, Adagrad with and without the root, Adam in both forms.
    rows["adadelta"]["first_step"] = rows["adadelta"]["hand"][0] - 1.0
    rows["adagrad"]["first_step"] = 0.5 - rows["adagrad"]["hand"][0]
    rows["adagrad"]["first_step_notes_no_root"] = 0.1 * 0.5 / (0.5**2 + HYPER["epsilon"])
    keras_default = keras_trajectory("adagrad", [0.5], half_square, 0.1, 1)[1, 0]
    rows["adagrad"]["first_step_keras_default_accumulator"] = 0.5 - keras_default
    rows["adam"]["first_step"] = 0.5 - rows["adam"]["hand"][0]
    rows["adam"]["first_step_notes_eps_inside"] = float(adam_notes_step(0.5, 0.01))
    rows["adam"]["small_gradient_steps"] = {
        "notes_eps_inside": float(adam_notes_step(0.01, 0.01)),
        "keras": float(0.01 - hand_trajectory("adam", [0.01], identity, 0.01, 1)[1, 0]),
    }
    return rows


def bowl_trajectories(steps):
    """{name: (hand, keras)} trajectories on the bowl, both (steps + 1, 2)."""
    paths = {}
    for name, lr in BOWL_RATES.items():
        hand = hand_trajectory(name, BOWL_START, bowl_numpy_grad, lr, steps)
        # The bowl's exact gradient on both sides (the engine's is tested in section 1).
        by_keras = keras_trajectory(name, BOWL_START, bowl_keras, lr, steps, grad=bowl_numpy_grad)
        paths[name] = (hand, by_keras)
    return paths


def plot_trajectories(path, paths):
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    xs, ys = np.meshgrid(np.linspace(-4.5, 2.2, 200), np.linspace(-1.5, 1.5, 120))
    ax.contour(xs, ys, 0.5 * (xs**2 + 10 * ys**2), levels=np.geomspace(0.01, 30, 14), colors="0.8")
    for name, (hand, by_keras) in paths.items():
        (line,) = ax.plot(hand[:, 0], hand[:, 1], "-", lw=1, label=f"{name} (lr {BOWL_RATES[name]})")
        ax.plot(by_keras[:, 0], by_keras[:, 1], "o", ms=2, color=line.get_color())
    ax.plot(*BOWL_START, "k*", ms=9)
    ax.set(xlabel="x", ylabel="y", title="f = (x² + 10 y²)/2: by hand (lines) and Keras (dots)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.optimizers",
        description=__doc__.splitlines()[0],
        quick=QUICK,
    )
    cli.reject_unused(config, ("epochs", "batch_size", "dataset", "data_dir", "resume"), "optimizers")
    out = Path(config.out or "runs/optimizers")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)

    print("1. the notes' sequences on L(w) = w^2/2 (g = w): by hand (float64) | Keras")
    sequences = notes_sequences()
    for name, row in sequences.items():
        hand = ", ".join(f"{v:.7g}" for v in row["hand"])
        by_keras = ", ".join(f"{v:.7g}" for v in row["keras"])
        print(f"   {name:<9} from {row['start']:g}, lr {row['lr']:g}: {hand} | {by_keras}")
    nag = sequences["nesterov"]
    print(
        f"   the notes' NAG W: {nag['notes_w']}; its look-ahead W - lr beta a: {nag['notes_look_ahead']}"
    )

    print(f"2. {config.steps} steps on the bowl (x^2 + 10 y^2)/2 from {BOWL_START}:")
    paths = bowl_trajectories(config.steps)
    bowl_rows = {}
    for name, (hand, by_keras) in paths.items():
        difference = float(np.max(np.abs(hand - by_keras)))  # float32 Keras against float64
        final = float(0.5 * (hand[-1, 0] ** 2 + 10 * hand[-1, 1] ** 2))
        bowl_rows[name] = {"max_abs_difference": difference, "final_loss": final}
        print(
            f"   {name:<9} f {bowl(np.array(BOWL_START)):.1f} -> {final:.3g}; "
            f"hand vs Keras {difference:.1e}"
        )
    plot_trajectories(out / "trajectories.png", paths)
    summary = {
        "backend": engine.backend(),
        "steps": config.steps,
        "sequences": sequences,
        "bowl": bowl_rows,
        "bowl_paths": {k: {"hand": h.tolist(), "keras": v.tolist()} for k, (h, v) in paths.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"Outputs in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
