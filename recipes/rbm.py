"""Restricted Boltzmann machine: the partition function, then CD-k on binarised mnist5k.

Reproduces A 10.6. The notes' RBM has 3 binary visible units V, 2 binary hidden units H, a 2 x 3
weight matrix W and no biases: E(V, H) = -H^T W V and Z = sum_{V, H} exp(-E(V, H)). Summing over V
in closed form, each H contributes prod_j (1 + exp((H^T W)_j)): for H = (0, 0) that is 2^3 = 8,
and Z is the sum over the four H of those row-wise products.

1. Z in closed form = brute force over the 32 (V, H) pairs = sum_V exp(-F(V)) with the free energy
   F(V) = -sum_i log(1 + exp((W V)_i)), in float64 NumPy (rtol 1e-10) and through keras.ops
   (float32); the notes' oracles Z(W = 0) = 32 and Z([[.1,.2,.3],[.4,.5,.6]]) = 65.23195717862367.
2. An RBM with biases (E = -v.b - h.c - h^T W v) trained by contrastive divergence (CD-k) on the
   4,000 binarised training digits of mnist5k, through keras.ops on the backend: the step
   differentiates mean F(v_data) - mean F(v_k) (v_k, the end of k Gibbs steps, held constant) with
   the engine, which is the CD update <v h>_data - <v h>_model, and a Keras SGD applies it. Noise
   from keras.random with a SeedGenerator. Reported: the reconstruction error of the 1,000 held-out
   digits, their free energy against that of random binary images, the learned filters, and
   samples from Gibbs chains started at one held-out digit of each class.

A short run (a fixed number of --steps, under half a minute; no epochs, no checkpoints).

    python -m recipes.rbm
    KERAS_BACKEND=torch python -m recipes.rbm --hidden 100 --cd-k 3

Measured, default run (JAX, 64 hidden units, CD-1, 3,000 steps of 100 digits, 15-30 s on 2 shared
cores): Z = 32 and 65.23195717862367 exactly in float64 (keras.ops 65.231949); held-out
reconstruction error 0.2498 -> 0.0330 (7.6x); mean free energy of 1,000 training digits -234.8,
held-out -227.0, random images of the digits' density +92.9; chains started at digits wander
from class to class (a 7 becomes a 0 within 250 steps).

Outputs (under --out, default runs/rbm): filters.png (the hidden units' weights as 28 x 28
images), samples.png (Gibbs chains), reconstruction.png (the error along training), summary.json.
"""

import dataclasses
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from datasets import load_mnist5k
from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "A 10.6"
NOTES_W = [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]
NOTES_Z = 65.23195717862367


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(100, "digits per CD step")
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    hidden: int = cli.option(64, "hidden units")
    cd_k: int = cli.option(1, "Gibbs steps per contrastive-divergence update (CD-k)")
    steps: int = cli.option(3000, "CD updates")
    lr: float = cli.option(0.1, "SGD learning rate (momentum 0.5)")
    gibbs: int = cli.option(1000, "Gibbs steps of the sampling chains")


QUICK = dict(hidden=16, steps=150, gibbs=50)
UNUSED = ("epochs", "dataset", "data_dir", "resume")


# ---- 1. the notes' partition function ----------------------------------------------------------


def binary_configurations(units):
    return np.array(list(itertools.product([0, 1], repeat=units)), dtype="float64")


def z_closed_form(w):
    """The notes' sum over H of prod_j (1 + exp((H^T W)_j)); W is (hidden, visible), float64."""
    w = np.asarray(w, "float64")
    h = binary_configurations(w.shape[0])
    return float(np.prod(1.0 + np.exp(h @ w), axis=1).sum())


def z_brute_force(w):
    """sum over every (V, H) of exp(H^T W V)."""
    w = np.asarray(w, "float64")
    h, v = binary_configurations(w.shape[0]), binary_configurations(w.shape[1])
    return float(np.exp(h @ w @ v.T).sum())


def z_closed_form_ops(w):
    """The closed form through keras.ops (float32)."""
    ops = keras.ops
    w = ops.convert_to_tensor(np.asarray(w, "float32"))
    h = ops.convert_to_tensor(binary_configurations(w.shape[0]).astype("float32"))
    return ops.sum(ops.prod(1.0 + ops.exp(ops.matmul(h, w)), axis=1))


def z_brute_force_ops(w, b=None, c=None):
    """sum over every (v, h) of exp(-E) through keras.ops, E = -v.b - h.c - h^T W v (float32)."""
    ops = keras.ops
    w = ops.convert_to_tensor(np.asarray(w, "float32"))
    hidden, visible = w.shape
    h = ops.convert_to_tensor(binary_configurations(hidden).astype("float32"))
    v = ops.convert_to_tensor(binary_configurations(visible).astype("float32"))
    minus_energy = ops.matmul(ops.matmul(h, w), ops.transpose(v))  # (2^hidden, 2^visible)
    if b is not None:
        minus_energy = minus_energy + ops.matmul(v, np.asarray(b, "float32")[:, None])[:, 0][None, :]
        minus_energy = minus_energy + ops.matmul(h, np.asarray(c, "float32")[:, None])
    return ops.sum(ops.exp(minus_energy))


def free_energy(v, w, b, c):
    """F(v) = -v.b - sum_j softplus(c_j + (v W)_j), per row of v; W is (visible, hidden)."""
    ops = keras.ops
    return -ops.matmul(v, b[:, None])[:, 0] - ops.sum(ops.softplus(ops.matmul(v, w) + c), axis=1)


def z_by_free_energy_ops(w, b, c):
    """sum_v exp(-F(v)) over every visible configuration (keras.ops, float32)."""
    ops = keras.ops
    w = ops.convert_to_tensor(np.asarray(w, "float32"))  # (visible, hidden)
    v = ops.convert_to_tensor(binary_configurations(w.shape[0]).astype("float32"))
    b = ops.convert_to_tensor(np.asarray(b, "float32"))
    c = ops.convert_to_tensor(np.asarray(c, "float32"))
    return ops.sum(ops.exp(-free_energy(v, w, b, c)))


def partition_function(summary, seed):
    number = lambda t: float(keras.ops.convert_to_numpy(t))  # noqa: E731
    zero = np.zeros((2, 3))
    h00 = float(np.prod(1.0 + np.exp(np.zeros(3))))  # the H = (0, 0) row
    rng = np.random.default_rng(seed)
    w, b, c = rng.normal(size=(2, 3)), rng.normal(size=3), rng.normal(size=2)

    def through_ops():  # one compiled program (JAX compiles each eager operation separately)
        return dict(
            z_notes_free_energy=z_by_free_energy_ops(np.transpose(NOTES_W), np.zeros(3), np.zeros(2)),
            z_notes_closed_ops=z_closed_form_ops(NOTES_W),
            z_notes_brute_ops=z_brute_force_ops(NOTES_W),
            z_zero_closed_ops=z_closed_form_ops(zero),
            # With biases, the brute force against sum_v exp(-F(v)) (W as (visible, hidden)).
            z_biased_brute_ops=z_brute_force_ops(w, b, c),
            z_biased_free_energy_ops=z_by_free_energy_ops(w.T, b, c),
        )

    summary.update({key: number(value) for key, value in engine.function(through_ops, [])().items()})
    summary.update(
        h00_term=h00,
        z_zero_closed=z_closed_form(zero),
        z_zero_brute=z_brute_force(zero),
        z_notes_closed=z_closed_form(NOTES_W),
        z_notes_brute=z_brute_force(NOTES_W),
    )
    biased = (summary["z_biased_brute_ops"], summary["z_biased_free_energy_ops"])
    print("1. the notes' RBM (3 visible, 2 hidden, no biases):")
    print(f"   H = (0, 0) term {h00:g}; Z(W = 0) = {summary['z_zero_closed']:g} (brute force ")
    print(f"   {summary['z_zero_brute']:g}); Z(notes' W) = {summary['z_notes_closed']!r} closed form,")
    print(f"   {summary['z_notes_brute']!r} brute force, keras.ops {summary['z_notes_closed_ops']:.6f}")
    print(f"   random W and biases: brute force {biased[0]:.6f} = sum_v exp(-F(v)) {biased[1]:.6f}")


# ---- 2. CD-k on binarised mnist5k --------------------------------------------------------------


class RBM:
    """Weights (visible, hidden), visible biases b, hidden biases c; CD-k steps and Gibbs chains."""

    def __init__(self, visible, hidden, config):
        self.noise = keras.random.SeedGenerator(config.seed)
        init = keras.random.normal((visible, hidden), stddev=0.01, seed=config.seed + 1)
        self.w = keras.Variable(init, name="w")
        self.b = keras.Variable(keras.ops.zeros((visible,)), name="b")
        self.c = keras.Variable(keras.ops.zeros((hidden,)), name="c")
        self.variables = [self.w, self.b, self.c]
        self.optimizer = keras.optimizers.SGD(config.lr, momentum=0.5)
        self.optimizer.build(self.variables)
        self.k = config.cd_k

    def hidden_probability(self, v):
        return keras.ops.sigmoid(keras.ops.matmul(v, self.w) + self.c)

    def visible_probability(self, h):
        return keras.ops.sigmoid(keras.ops.matmul(h, keras.ops.transpose(self.w)) + self.b)

    def sample(self, probability):
        uniform = keras.random.uniform(keras.ops.shape(probability), seed=self.noise)
        return keras.ops.cast(uniform < probability, "float32")

    def gibbs(self, v):
        """One Gibbs step v -> h -> v'; returns the sample v' and its probabilities."""
        p_v = self.visible_probability(self.sample(self.hidden_probability(v)))
        return self.sample(p_v), p_v

    def free_energy(self, v):
        return free_energy(v, self.w, self.b, self.c)

    def cd_step(self, v):
        """One CD-k update on the batch v; returns the batch's mean free energy."""
        v_k = v
        for _ in range(self.k):
            v_k, _ = self.gibbs(v_k)
        v_k = keras.ops.stop_gradient(v_k)

        def loss():
            data = keras.ops.mean(self.free_energy(v))
            return data - keras.ops.mean(self.free_energy(v_k)), data

        (_, data), grads = engine.value_and_grad(loss, self.variables, has_aux=True)
        self.optimizer.apply(grads, self.variables)
        return data

    def reconstruction_error(self, v):
        """Mean squared error of the mean-field reconstruction p(v | p(h | v))."""
        p_v = self.visible_probability(self.hidden_probability(v))
        return keras.ops.mean((v - p_v) ** 2)


def load_binary(split):
    images, _ = load_mnist5k(split)
    return (images.reshape(len(images), -1) > 127).astype("float32")


def train(config, train_x, test_x):
    rbm = RBM(train_x.shape[1], config.hidden, config)
    step = engine.function(rbm.cd_step, [rbm.optimizer, rbm.noise, *rbm.variables])
    rng = np.random.default_rng(config.seed)
    batches = len(train_x) // config.batch_size
    order = rng.permutation(len(train_x))
    error = engine.function(rbm.reconstruction_error, rbm.variables)
    errors = [(0, float(keras.ops.convert_to_numpy(error(test_x))))]
    print(
        f"2. RBM 784 x {config.hidden}, CD-{config.cd_k}, {config.steps} steps of {config.batch_size}:"
    )
    print(f"   step 0: held-out reconstruction error {errors[0][1]:.4f}")
    every = max(1, config.steps // 10)
    for t in range(config.steps):
        if t % batches == 0 and t:
            order = rng.permutation(len(train_x))
        index = order[(t % batches) * config.batch_size : (t % batches + 1) * config.batch_size]
        data_energy = float(step(keras.ops.convert_to_tensor(train_x[index])))
        if not np.isfinite(data_energy):
            raise engine.TrainingDiverged(f"rbm: free energy became {data_energy} at step {t + 1}")
        if (t + 1) % every == 0 or t + 1 == config.steps:
            errors.append((t + 1, float(keras.ops.convert_to_numpy(error(test_x)))))
            print(f"   step {t + 1}: held-out reconstruction error {errors[-1][1]:.4f}")
    return rbm, errors


def chains(rbm, config, start, shown=6):
    """Gibbs chains from the digits `start`; the probabilities p(v | h) at `shown` steps.

    (Chains started at random noise mostly stay at the all-hidden-off mode, p(v) = sigmoid(b),
    for thousands of steps: CD-1 teaches the model little about states far from the data.)
    """
    gibbs = engine.function(rbm.gibbs, [rbm.noise, *rbm.variables])
    v = keras.ops.convert_to_tensor(start)
    marks = set(np.unique(np.geomspace(1, config.gibbs, shown).astype(int)))
    frames = []
    for t in range(1, config.gibbs + 1):
        v, p_v = gibbs(v)
        if t in marks:
            frames.append((t, keras.ops.convert_to_numpy(p_v)))
    return frames


def mosaic(images, cols, pad=1, fill=0.0):
    """(n, 784) images as one (rows*29-1, cols*29-1) array, a single imshow (subplots are slow)."""
    rows = int(np.ceil(len(images) / cols))
    size = 28 + pad
    sheet = np.full((rows * size - pad, cols * size - pad), fill, dtype="float32")
    for k, image in enumerate(images):
        r, c = divmod(k, cols)
        sheet[r * size : r * size + 28, c * size : c * size + 28] = image.reshape(28, 28)
    return sheet


def plot_filters(path, w, shown=64):
    plt = plots.pyplot()
    filters = w[:, : min(shown, w.shape[1])].T
    filters = filters / np.abs(filters).max(axis=1, keepdims=True)  # each filter on its own scale
    cols = int(np.ceil(np.sqrt(len(filters))))
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(mosaic(filters, cols), cmap="coolwarm", vmin=-1, vmax=1)
    ax.set_title("RBM filters (weights of each hidden unit, red > 0 > blue)")
    ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_samples(path, frames):
    plt = plots.pyplot()
    count = frames[0][1].shape[0]
    fig, ax = plt.subplots(figsize=(count, len(frames) * 1.1))
    ax.imshow(
        mosaic(np.concatenate([p for _, p in frames]), count, fill=0.5), cmap="gray", vmin=0, vmax=1
    )
    ax.set_yticks([14 + 29 * r for r in range(len(frames))], [f"step {t}" for t, _ in frames])
    ax.set_xticks([])
    ax.set_title("Gibbs chains from held-out digits: p(v | h)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.rbm", description=__doc__.splitlines()[0], quick=QUICK
    )
    cli.reject_unused(config, UNUSED, "rbm", "trains a fixed number of --steps, without checkpoints")
    if min(config.hidden, config.cd_k, config.steps, config.gibbs) < 1 or config.lr <= 0:
        raise cli.UsageError("--hidden, --cd-k, --steps and --gibbs must be at least 1, --lr positive")
    if config.batch_size > 4000:
        raise cli.UsageError(
            f"--batch-size must be at most 4000 (mnist5k's training digits), got {config.batch_size}"
        )
    out = Path(config.out or "runs/rbm")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)
    summary = {"backend": engine.backend(), "seed": config.seed}
    partition_function(summary, config.seed)

    train_x, test_x = load_binary("train"), load_binary("test")
    rbm, errors = train(config, train_x, test_x)
    noise = (np.random.default_rng(config.seed + 1).random(test_x.shape) < test_x.mean()).astype(
        "float32"
    )
    energy = engine.function(lambda v: keras.ops.mean(rbm.free_energy(v)), rbm.variables)
    f_test, f_train, f_noise = (
        float(keras.ops.convert_to_numpy(energy(v))) for v in (test_x, train_x[: len(test_x)], noise)
    )
    print(f"   mean free energy: {len(test_x)} training digits {f_train:.2f}, held-out {f_test:.2f},")
    print(f"   random images of the digits' density {f_noise:.2f} (lower = more probable)")
    _, test_labels = load_mnist5k("test")
    start = test_x[[int(np.flatnonzero(test_labels == d)[0]) for d in range(10)]]
    frames = chains(rbm, config, start)
    plot_filters(out / "filters.png", keras.ops.convert_to_numpy(rbm.w))
    plot_samples(out / "samples.png", frames)
    plots.loss_curves(
        out / "reconstruction.png",
        {"held-out digits": [e for _, e in errors]},
        f"RBM reconstruction error (CD-{config.cd_k}); x = logged point",
        xlabel="logged point",
        ylabel="mean squared error",
    )
    summary.update(
        hidden=config.hidden,
        cd_k=config.cd_k,
        steps=config.steps,
        reconstruction_errors=errors,
        reconstruction_ratio=errors[0][1] / errors[-1][1],
        free_energy_train=f_train,
        free_energy_test=f_test,
        free_energy_noise=f_noise,
        sample_mean_density=float(frames[-1][1].mean()),
        data_density=float(test_x.mean()),
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
