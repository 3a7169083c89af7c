"""Weight initialisation: Glorot's limits, and activations through a deep net under four schemes.

Reproduces B 2.6.1 (Xavier/Glorot and He initialisation, `nn.init.xavier_uniform_` on
Linear(100, 90) and Linear(90, 110); "do not start from all zeros") with Keras initializers:

1. Glorot uniform draws from U(-l, l), l = sqrt(6 / (fan_in + fan_out)): 0.177705 for 100 -> 90,
   0.173205 for 90 -> 110 (DERIVED in the inventory, recomputed), 0.043671 for the MNIST CNN's
   3136 -> 10; the empirical std is l / sqrt(3). The notes write "Var(W) = sqrt(2 / (n_in +
   n_out))": that is the standard deviation; the variance is 2 / (n_in + n_out) (0.010526 for
   100 -> 90, checked on `GlorotNormal`), and He's is 2 / n_in.
2. The classic experiment (cs231n): standard normal inputs through 10 Dense layers of equal width
   (tanh, or ReLU), started from zeros, N(0, 0.01^2), Glorot normal or He normal. Glorot keeps
   every tanh layer's activation std within a factor 3 of the first layer's and He every ReLU
   layer's; N(0, 0.01^2) shrinks the std by about 0.01 sqrt(width) a layer, below 1e-2 of the
   first layer's by the last; zeros give all-zero activations; Glorot with ReLU halves the
   variance a layer. Infinitely wide (computed by numerical integration), Glorot's tanh ratio of the last
   to the first layer's std is 0.3639: above 1/3, but not by much.
3. Why not zeros: a 2-layer net started from zeros keeps all its hidden units identical however
   long it trains (the same gradient reaches each one).

    python -m recipes.weight_init
    KERAS_BACKEND=jax python -m recipes.weight_init --width 500 --seed 1

Measured, default run (10-20 s on 2 shared CPU cores, mostly imports), std of layer 10 / layer 1:
0.360-0.366 (Glorot, tanh), 0.77-1.08 (He, ReLU), 0.034-0.048 (Glorot, ReLU), 7e-8 (N(0, 0.01^2),
tanh), 0 (zeros), on the three backends.

Outputs (under --out, default runs/weight_init): activation_std.png (std per layer),
histograms.png (the activations of every layer, one panel per scheme), summary.json.
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

SECTION = "B 2.6.1"
# B 2.6.1: (fan_in, fan_out) of the notes' two Linear layers, and of the MNIST CNN's last layer.
LAYERS = {"linear1_100_90": (100, 90), "linear2_90_110": (90, 110), "mnist_fc_3136_10": (3136, 10)}
GLOROT_LIMITS = {"linear1_100_90": 0.177705, "linear2_90_110": 0.173205, "mnist_fc_3136_10": 0.043671}
SCHEMES = ("zeros", "small_normal", "glorot", "he")
DEPTH = 10


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(500, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    width: int = cli.option(256, "units of every layer of the 10-layer nets")
    examples: int = cli.option(500, "standard normal input vectors")


QUICK = dict(examples=256)
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")


def initializer(scheme, seed):
    """The Keras initializer of a scheme: zeros, N(0, 0.01^2), Glorot normal, He normal."""
    return {
        "zeros": lambda: keras.initializers.Zeros(),
        "small_normal": lambda: keras.initializers.RandomNormal(stddev=0.01, seed=seed),
        "glorot": lambda: keras.initializers.GlorotNormal(seed=seed),
        "he": lambda: keras.initializers.HeNormal(seed=seed),
    }[scheme]()


# ---- 1. limits and variances -------------------------------------------------------------------


def glorot_draws(seed):
    """{layer: {limit, max_abs, std}} of `GlorotUniform` kernels, and GlorotNormal/HeNormal variances."""
    result = {}
    for k, (name, (fan_in, fan_out)) in enumerate(LAYERS.items()):
        w = keras.ops.convert_to_numpy(
            keras.initializers.GlorotUniform(seed=seed + k)((fan_in, fan_out))
        )
        result[name] = {
            "limit": math.sqrt(6 / (fan_in + fan_out)),
            "max_abs": float(np.abs(w).max()),
            "std": float(w.std()),
        }
    fan_in, fan_out = LAYERS["linear1_100_90"]
    normal = keras.ops.convert_to_numpy(keras.initializers.GlorotNormal(seed=seed)((fan_in, fan_out)))
    he = keras.ops.convert_to_numpy(keras.initializers.HeNormal(seed=seed)((fan_in, fan_out)))
    variances = {"glorot_normal": float(normal.var()), "he_normal": float(he.var())}
    return result, variances


# ---- 2. activations through 10 layers ----------------------------------------------------------


def mean_field_std(activation, gain, depth=DEPTH, points=24_001):
    """The activation std of every layer of an infinitely wide net (float64 NumPy, no sampling).

    With weights of variance gain / width and standard normal inputs, each pre-activation is
    normal with variance q_l = gain * E[h_{l-1}^2] (q_1 = 1), so the layers follow
    q_{l+1} = gain * E[f(sqrt(q_l) z)^2], z ~ N(0, 1), an integral against the normal density on
    a fine grid over [-12, 12] (the trapezoid rule; ReLU's kink at 0 is a grid point). Glorot
    normal on equal widths is gain 1, He normal gain 2.
    """
    f = np.tanh if activation == "tanh" else (lambda v: np.maximum(v, 0))
    z = np.linspace(-12, 12, points)
    weights = np.exp(-0.5 * z * z)
    weights[[0, -1]] *= 0.5
    weights /= weights.sum()
    q, stds = 1.0, []
    for _ in range(depth):
        h = f(np.sqrt(q) * z)
        mean, second = np.sum(weights * h), np.sum(weights * h * h)
        stds.append(float(np.sqrt(second - mean**2)))
        q = gain * second
    return stds


def deep_net(scheme, activation, width, seed):
    """10 Dense(width, activation, no bias) layers initialised by `scheme`."""
    return [
        keras.layers.Dense(
            width, activation, use_bias=False, kernel_initializer=initializer(scheme, seed + i)
        )
        for i in range(DEPTH)
    ]


def layer_activations(layers, x):
    """The output of every layer for the input x: a list of (examples, width) arrays."""
    outputs, h = [], x
    for layer in layers:
        h = layer(h)  # (examples, width)
        outputs.append(keras.ops.convert_to_numpy(h))
    return outputs


def plot_stds(path, stds):
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    for ax, activation in zip(axes, ("tanh", "relu")):
        for scheme in SCHEMES[1:]:  # zeros: every std is 0, off a log axis
            ax.semilogy(range(1, DEPTH + 1), stds[activation][scheme], "o-", ms=3, label=scheme)
        ax.set(title=f"{activation} net", xlabel="layer", ylabel="activation std")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_histograms(path, activations):
    """The classic per-layer histograms, one panel per scheme: row l is the histogram of layer l's
    activations (darker: more of them), so a collapse to 0 shows as a column at 0. ReLU's exact
    zeros (about half of them) are left out, or they would hide the rest."""
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, len(activations), figsize=(3.4 * len(activations), 3.4))
    for ax, (key, outputs) in zip(axes, activations.items()):
        tanh = key.startswith("tanh")
        bins = np.linspace(-1, 1, 51) if tanh else np.linspace(0, 3, 51)
        values = [h.ravel() if tanh else h[h > 0] for h in outputs]
        counts = np.stack(
            [np.histogram(np.clip(v, bins[0], bins[-1]), bins)[0] / max(v.size, 1) for v in values]
        )
        extent = (bins[0], bins[-1], DEPTH + 0.5, 0.5)
        ax.imshow(np.sqrt(counts), aspect="auto", cmap="Greys", extent=extent, interpolation="nearest")
        xlabel = "activation" if tanh else "activation (> 0)"
        ax.set(title=key, xlabel=xlabel, ylabel="layer", yticks=range(1, DEPTH + 1))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- 3. the symmetry of zeros ------------------------------------------------------------------


def zero_symmetry(seed, steps=20):
    """Trains Dense(4, sigmoid) -> Dense(1) from zeros by SGD; returns how much its 4 hidden units
    (their incoming weights) differ from each other, and how far the weights moved."""
    rng = np.random.default_rng(seed)
    x = keras.ops.convert_to_tensor(rng.normal(size=(32, 3)), "float32")
    y = keras.ops.convert_to_tensor(rng.normal(size=(32, 1)), "float32")
    model = keras.Sequential(
        [
            keras.Input((3,)),
            keras.layers.Dense(4, "sigmoid", kernel_initializer="zeros"),  # (32, 4)
            keras.layers.Dense(1, kernel_initializer="zeros"),  # (32, 1)
        ]
    )
    optimizer = keras.optimizers.SGD(0.5)
    for _ in range(steps):
        _, grads = engine.value_and_grad(
            lambda: keras.ops.mean(keras.ops.square(model(x) - y)), model.trainable_variables
        )
        optimizer.apply(grads, model.trainable_variables)
    kernel = keras.ops.convert_to_numpy(model.layers[0].kernel)  # (3, 4): one column per hidden unit
    return float(np.abs(kernel - kernel[:, :1]).max()), float(np.abs(kernel).max())


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.weight_init",
        description=__doc__.splitlines()[0],
        quick=QUICK,
    )
    cli.reject_unused(config, UNUSED, "weight_init")
    if config.width < 2 or config.examples < 2:
        raise cli.UsageError("--width and --examples must be at least 2")
    out = Path(config.out or "runs/weight_init")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)

    # ---- 1.
    draws, variances = glorot_draws(config.seed)
    for name, d in draws.items():
        print(f"1. GlorotUniform {name}: limit {d['limit']:.6f}, max |w| {d['max_abs']:.6f}, ", end="")
        print(f"std {d['std']:.4f} (limit / sqrt 3 = {d['limit'] / math.sqrt(3):.4f})")
    print(f"   variance 100 -> 90: GlorotNormal {variances['glorot_normal']:.6f} ", end="")
    print(f"(2/190 = {2 / 190:.6f}), ", end="")
    print(f"HeNormal {variances['he_normal']:.6f} (2/100)")

    # ---- 2.
    x = (
        np.random.default_rng(config.seed)
        .standard_normal((config.examples, config.width))
        .astype("float32")
    )
    stds, means, shown = {"tanh": {}, "relu": {}}, {"tanh": {}, "relu": {}}, {}
    for activation in ("tanh", "relu"):
        for scheme in SCHEMES:
            outputs = layer_activations(deep_net(scheme, activation, config.width, config.seed), x)
            stds[activation][scheme] = [float(h.std()) for h in outputs]
            means[activation][scheme] = [float(h.mean()) for h in outputs]
            if (activation, scheme) in (
                ("tanh", "small_normal"),
                ("tanh", "glorot"),
                ("relu", "glorot"),
                ("relu", "he"),
            ):
                shown[f"{activation} {scheme}"] = outputs
            s = stds[activation][scheme]
            ratio = s[-1] / s[0] if s[0] else 0.0
            print(f"2. {activation} {scheme:<12}: std layer 1 {s[0]:.4f}, ", end="")
            print(f"layer 10 {s[-1]:.2e} (ratio {ratio:.3g})")
    mean_field = {"tanh glorot": mean_field_std("tanh", 1.0), "relu he": mean_field_std("relu", 2.0)}
    for key, m in mean_field.items():
        print(f"   infinitely wide, {key}: layer 10 / layer 1 = {m[-1] / m[0]:.4f}")
    plot_stds(out / "activation_std.png", stds)
    plot_histograms(out / "histograms.png", shown)

    # ---- 3.
    spread, moved = zero_symmetry(config.seed)
    print(f"3. from zeros, after 20 SGD steps: hidden units differ by {spread:.1e} ", end="")
    print(f"(weights moved {moved:.3f})")

    summary = {
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
        "glorot_uniform": draws,
        "variances_100_90": variances,
        "activation_std": stds,
        "mean_field_std": mean_field,
        "activation_mean": means,
        "zero_init_unit_spread": spread,
        "zero_init_weight_change": moved,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
