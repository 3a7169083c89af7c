"""GAN in one dimension: G learns N(4, 0.5^2) and D(G(z)) goes to 1/2 (Goodfellow et al. 2014, Fig. 1).

Reproduces E 02-03 ("GAN의 개념", "GAN의 구조와 원리") and the GAN of D 9.6: the minimax game

    min_G max_D V(D, G) = E_{x ~ p_data}[log D(x)] + E_{z ~ p_z}[log(1 - D(G(z)))]

played by two small networks on one-dimensional data, which makes the notes' figure (Goodfellow et
al. 2014, Fig. 1: data density black dotted, the generator's density green, D(x) blue dashed) and
their stated goal "D(G(z)) -> 1/2" visible: the optimal discriminator for a fixed G,
D*(x) = p_data(x) / (p_data(x) + p_G(x)), is 1/2 everywhere once p_G = p_data. The notes give no
numbers (the choices made here are explained next to the code); their acceptance: mean of G(z)
within 0.3 of 4, std within 0.3 of 0.5, mean D(G(z)) and mean D(x) both in [0.35, 0.65].

Outputs (under --out, default runs/gan_1d): figure1.png (the Fig.-1 panels at four stages of
training, with the z -> x mapping of G drawn underneath), losses.png (losses and mean D values per
epoch), metrics.csv, tensorboard/, checkpoints/, generator.keras, discriminator.keras, summary.json.

    python -m recipes.gan_1d                        # 800 steps, seconds on a CPU
    KERAS_BACKEND=jax python -m recipes.gan_1d --noise normal --seed 3
    python -m recipes.gan_1d --quick                # a smoke run

Measured, default run (800 steps of 128): mean of G(z) 4.041 (std 0.68, mean D(G(z)) 0.49) in 21 s
on tensorflow, 3.993 (0.53, 0.50) in 31 s on torch, 4.010 (0.44, 0.49) in 21 s on jax. Seeds 0-9 met
the acceptance on all backends (mean 3.97-4.08, std 0.33-0.72, mean D(G(z)) 0.48-0.50, D(x) 0.50-0.52).
"""

import dataclasses
import functools
import json
import math
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, gan_training, plots, precision

keras = cli.lazy_import("keras")

SECTION = "E 02-03, D 9.6"
NOISES = ("uniform", "normal")


@dataclasses.dataclass
class Config(cli.RunConfig):
    # An "epoch" is --steps-per-epoch steps, each on fresh samples of p_data.
    epochs: int = cli.option(10, "number of epochs of --steps-per-epoch steps")
    steps_per_epoch: int = cli.option(80, "training steps per epoch (each on fresh data)")
    batch_size: int = cli.option(128, "real and generated examples per step")
    dataset: str = cli.option(
        "gaussian", "the inline data N(data_mean, data_std^2)", choices=("gaussian",)
    )
    data_dir: str = cli.option(None, cli.HIDDEN)  # Inline data: refused in check().
    data_mean: float = cli.option(4.0, "mean of the data distribution")
    data_std: float = cli.option(0.5, "standard deviation of the data distribution")
    # z ~ U(-1, 1) as in the paper's figure.
    noise: str = cli.option("uniform", "distribution of z: U(-1, 1) or N(0, 1)", choices=NOISES)
    hidden: int = cli.option(16, "units of each of the two hidden layers of G and D")
    # Measured (seeds 0-3, 3000 steps each): with one learning rate for both networks (Adam 1e-3)
    # D flattens to 1/2 around the data before it has learned anything, G collapses onto a spike
    # (std 0.1-0.2) and no seed meets the acceptance. Hence D learns ten times faster than G (the
    # two-time-scale rule of Heusel et al. 2017).
    g_learning_rate: float = cli.option(1e-3, "Adam learning rate of G")
    d_learning_rate: float = cli.option(1e-2, "Adam learning rate of D (ten times G's)")
    beta_1: float = cli.option(0.5, "Adam beta_1 of both networks")
    # Without the decay G's mean still swings by +-0.4 around 4 at the end of the run.
    lr_floor: float = cli.option(
        0.05, "both learning rates decay (cosine) over the run to this fraction; 1 = constant"
    )
    samples: int = cli.option(10000, "draws of z and of x for the final measurements")
    jit: bool = cli.option(True, "compile the training step (jax.jit / tf.function)")
    dtype_policy: str = cli.dtype_policy_option()


QUICK = dict(epochs=2, steps_per_epoch=20, samples=500)
STAGES = 4  # panels in figure1.png, as in the paper's figure


# ---------------------------------------------------------------------------------------------
# Models: two MLPs 1 -> 16 -> 16 -> 1 (the inventory's suggestion), shapes for N examples


def build_generator(config):
    """G: z (N, 1) -> x (N, 1), an MLP 1 -> hidden -> hidden -> 1 (LeakyReLU), linear output."""
    L = keras.layers
    z = keras.Input((1,), name="z")  # (N, 1)
    # Keras' "leaky_relu" activation has slope 0.2; as an argument of Dense it saves a layer call.
    h = L.Dense(config.hidden, activation="leaky_relu")(z)  # (N, 16)
    h = L.Dense(config.hidden, activation="leaky_relu")(h)  # (N, 16)
    # float32 under a mixed --dtype-policy, as D's logit: samples and losses stay float32.
    return keras.Model(z, L.Dense(1, dtype="float32")(h), name="generator")  # (N, 1)


def build_discriminator(config):
    """D: x (N, 1) -> D(x) in (0, 1), an MLP 1 -> hidden -> hidden -> 1 (tanh), sigmoid output.

    Returns `(discriminator, logits)`: two models sharing every weight; `logits` stops before the
    sigmoid and is the one the loss uses (cross-entropy from logits, computed stably);
    `discriminator.keras` keeps the sigmoid, so it outputs D(x).
    """
    L = keras.layers
    x = keras.Input((1,), name="x")  # (N, 1)
    h = L.Dense(config.hidden, activation="tanh")(x)  # (N, 16)
    h = L.Dense(config.hidden, activation="tanh")(h)  # (N, 16)
    logit = L.Dense(1, dtype="float32", name="logit")(h)  # (N, 1)
    probability = L.Activation("sigmoid", dtype="float32", name="probability")(logit)  # (N, 1)
    return keras.Model(x, probability, name="discriminator"), keras.Model(x, logit, name="d_logit")


# ---------------------------------------------------------------------------------------------
# The training step


def normal_density(x, mean, std):
    """The density of N(mean, std^2) at x (NumPy)."""
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


class GAN1D(gan_training.GANState):
    """G, D, their Adam optimizers and the noise seed generator, with one training step."""

    def __init__(self, config):
        engine.set_seed(config.seed)
        with precision.dtype_policy(config):
            generator = build_generator(config)
            discriminator, self.d_logit = build_discriminator(config)
        g_optimizer = self._adam(config, config.g_learning_rate)
        d_optimizer = self._adam(config, config.d_learning_rate)
        super().__init__(config, generator, discriminator, g_optimizer, d_optimizer)

    @staticmethod
    def _adam(config, learning_rate):
        """Adam whose rate decays along a cosine to `lr_floor` of itself over the `--epochs` of the
        run (so a run stopped early continues exactly with `--resume` and the same `--epochs`)."""
        if config.lr_floor != 1:
            steps = max(1, config.epochs * config.steps_per_epoch)
            learning_rate = keras.optimizers.schedules.CosineDecay(
                learning_rate, steps, alpha=config.lr_floor
            )
        return keras.optimizers.Adam(learning_rate, beta_1=config.beta_1)

    def train_step(self, real, z_d, z_g):
        """One D update on (real, G(z_d)), then one G update on G(z_g). Returns losses and D means.

        One D update per G update: k = 1 in the paper's Algorithm 1.
        """
        G, D = self.generator, self.d_logit
        g_opt, d_opt = self.g_optimizer, self.d_optimizer

        # (1) Update D: maximise log D(x) + log(1 - D(G(z))), G held fixed.
        def d_loss_fn():
            fake = keras.ops.stop_gradient(G(z_d))
            # D on both halves at once: the same numbers, one model call fewer (torch runs the
            # step eagerly and pays per call).
            n = keras.ops.shape(real)[0]
            logits = D(keras.ops.concatenate([real, fake], axis=0))
            real_logits, fake_logits = logits[:n], logits[n:]
            d_real = keras.ops.mean(keras.ops.sigmoid(real_logits))
            return gan_training.discriminator_loss(real_logits, fake_logits), d_real

        # loss_scale: scaled under mixed_float16 (engine.apply unscales, skips an overflow).
        (d_loss, d_real), grads = engine.value_and_grad(
            d_loss_fn, D.trainable_variables, has_aux=True, loss_scale=d_opt
        )
        engine.apply(d_opt, grads, D.trainable_variables)

        # (2) Update G with the paper's non-saturating loss -log D(G(z)): the same fixed point as
        # the minimax loss, stronger gradients early on.
        def g_loss_fn():
            fake_logits = D(G(z_g))
            d_fake = keras.ops.mean(keras.ops.sigmoid(fake_logits))
            return gan_training.generator_loss(fake_logits), d_fake

        (g_loss, d_fake), grads = engine.value_and_grad(
            g_loss_fn, G.trainable_variables, has_aux=True, loss_scale=g_opt
        )
        engine.apply(g_opt, grads, G.trainable_variables)
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}

    def sample_noise(self, shape):
        """z of `shape` from the model's seed generator: U(-1, 1) or N(0, 1) (`--noise`)."""
        if self.config.noise == "uniform":
            return keras.random.uniform(shape, -1.0, 1.0, seed=self.noise)
        return keras.random.normal(shape, seed=self.noise)

    def step(self, real):
        """`train_step` with noise drawn from the model's own seed generator."""
        shape = (keras.ops.shape(real)[0], 1)
        return self.train_step(real, self.sample_noise(shape), self.sample_noise(shape))

    def generate(self, z):
        """G(z) as a NumPy vector (N,) for z (N, 1)."""
        return keras.ops.convert_to_numpy(self.generator(z))[:, 0]

    def discriminate(self, x):
        """D(x) in (0, 1) as a NumPy vector (N,) for values x (N,)."""
        return keras.ops.convert_to_numpy(self.discriminator(np.asarray(x, "float32")[:, None]))[:, 0]


# ---------------------------------------------------------------------------------------------
# Data, measurements and figures


def numpy_noise(config, rng, count):
    """z for measurements and figures, drawn with NumPy (the same on every backend)."""
    if config.noise == "uniform":
        z = rng.uniform(-1.0, 1.0, size=(count, 1))
    else:
        z = rng.normal(size=(count, 1))
    return z.astype("float32")


def batches(config, epoch):
    """`steps_per_epoch` batches of fresh samples of p_data, fixed by (seed, epoch)."""
    rng = np.random.default_rng([config.seed, epoch])
    shape = (config.steps_per_epoch, config.batch_size, 1)
    data = rng.normal(config.data_mean, config.data_std, size=shape).astype("float32")
    for batch in data:
        yield (batch,)


def measure(gan, config):
    """Mean and std of G(z), mean D(G(z)) and mean D(x) on `samples` fresh draws (NumPy seeds).

    The targets are 4 and 0.5 for G(z) and 1/2 for both D means. The shape is rougher than the
    paper's drawing: G piles up some mass at the left edge of its range (`ks_distance` is about
    0.1-0.2 with the defaults).
    """
    from scipy.stats import kstest

    rng = np.random.default_rng([config.seed, 10**6])
    fake = gan.generate(numpy_noise(config, rng, config.samples))
    real = rng.normal(config.data_mean, config.data_std, size=config.samples)
    return {
        # Kolmogorov-Smirnov distance sup |F_G - F_data|: 0 for a perfect fit, a shape measure.
        "ks_distance": float(kstest(fake, "norm", args=(config.data_mean, config.data_std)).statistic),
        "generated_mean": float(np.mean(fake)),
        "generated_std": float(np.std(fake)),
        "mean_d_fake": float(np.mean(gan.discriminate(fake))),
        "mean_d_real": float(np.mean(gan.discriminate(real))),
    }


def figure_inputs(config):
    """The fixed inputs of figure1.png: the x grid, z for G's density and z for the z -> x lines."""
    spread = 4 * config.data_std
    grid = np.linspace(min(-2.0, config.data_mean - spread), max(2.0, config.data_mean + spread), 241)
    z_density = numpy_noise(config, np.random.default_rng([config.seed, 10**6 + 1]), 4000)
    z_max = 1 if config.noise == "uniform" else 2  # N(0, 1): most of its mass
    z_lines = np.linspace(-z_max, z_max, 15, dtype="float32")[:, None]
    return grid, z_lines, z_density


def snapshot(gan, config, grid, z_lines, z_density):
    """What one panel of figure1.png shows: G(z) samples, D on the grid, G of the z lines."""
    return {"fake": gan.generate(z_density), "d": gan.discriminate(grid), "lines": gan.generate(z_lines)}


def load_snapshots(path, last_epoch):
    """The snapshots saved after every epoch ("EPOCH/NAME" keys) up to `last_epoch` (resumed)."""
    snapshots = {}
    with np.load(path) as saved:
        for key in saved.files:
            epoch, name = key.split("/")
            snapshots.setdefault(int(epoch), {})[name] = saved[key]
    return {epoch: shot for epoch, shot in snapshots.items() if epoch <= last_epoch}


def plot_figure1(snapshots, config, grid, z_lines, path):
    """The Fig.-1 panels: p_data black dotted, p_G green, D(x) blue dashed, z -> G(z) underneath."""
    plt = plots.pyplot()
    epochs = sorted(snapshots)
    picks = sorted({epochs[round(i)] for i in np.linspace(0, len(epochs) - 1, STAGES)})
    fig, axes = plt.subplots(1, len(picks), figsize=(3.6 * len(picks), 3.4), sharey=True)
    axes = np.atleast_1d(axes)
    p_data = normal_density(grid, config.data_mean, config.data_std)
    top = 1.15 * max(1.0, p_data.max())
    bins = np.linspace(grid[0], grid[-1], 61)
    z_values = np.ravel(z_lines)
    z_low, z_high = z_values.min(), z_values.max()
    for ax, epoch, letter in zip(axes, picks, "abcdefgh"):
        shot = snapshots[epoch]
        density, edges = np.histogram(shot["fake"], bins=bins, density=True)
        inside = np.mean((shot["fake"] >= grid[0]) & (shot["fake"] <= grid[-1]))
        centres = (edges[:-1] + edges[1:]) / 2
        ax.plot(grid, p_data, "k:", lw=2, label="p_data")
        ax.plot(centres, density * inside, "g-", lw=1.5, label="p_G (histogram)")
        ax.plot(grid, shot["d"], "b--", lw=1.5, label="D(x)")
        # The paper's lower line: z, uniformly spaced, and the arrows of x = G(z) to the x line.
        z_y, x_y = -0.55, -0.08
        width = grid[-1] - grid[0]
        z_pos = grid[0] + width * (0.15 + 0.7 * (z_values - z_low) / (z_high - z_low))
        ax.hlines([z_y, x_y], grid[0], grid[-1], color="0.4", lw=0.8)
        for z_x, x in zip(z_pos, np.ravel(shot["lines"])):
            x = float(np.clip(x, grid[0], grid[-1]))
            ax.annotate("", (x, x_y), (z_x, z_y), arrowprops=dict(arrowstyle="->", lw=0.6, color="0.3"))
        ax.text(grid[-1], z_y + 0.03, "z", fontsize=9, ha="right")
        ax.text(grid[-1], x_y - 0.1, "x", fontsize=9, ha="right")
        ax.set(title=f"({letter}) after {epoch * config.steps_per_epoch} steps", xlabel="x")
        ax.set_ylim(z_y - 0.2, top)
        ax.set_yticks([0, 0.5, 1.0])
    axes[0].set_ylabel("density, D(x)")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.subplots_adjust(left=0.6 / fig.get_figwidth(), right=0.99, bottom=0.14, top=0.9, wspace=0.06)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_history(history, path):
    """Losses per epoch, and mean D(x), D(G(z)) against the goal 1/2."""
    plt = plots.pyplot()
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for key in ("d_loss", "g_loss"):
        axes[0].plot(epochs, [row[key] for row in history], marker=".", label=key)
    axes[0].axhline(math.log(4), color="0.6", ls=":", label="log 4 (D loss at D = 1/2)")
    axes[0].set(xlabel="epoch", ylabel="loss", title="1-D GAN losses")
    axes[0].legend(fontsize=8)
    for key, label in (("d_real", "mean D(x)"), ("d_fake", "mean D(G(z))")):
        axes[1].plot(epochs, [row[key] for row in history], marker=".", label=label)
    axes[1].axhline(0.5, color="0.6", ls=":", label="1/2")
    axes[1].set(xlabel="epoch", ylim=(0, 1), title="D during training")
    axes[1].legend(fontsize=8)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.9, wspace=0.2)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def check(config):
    """Rejects options the recipe cannot use, before anything is written."""
    if config.data_dir:
        raise cli.UsageError("gan_1d trains on inline 1-D data; --data-dir is not used")
    for name in ("steps_per_epoch", "hidden"):
        if getattr(config, name) < 1:
            raise cli.UsageError(f"--{name.replace('_', '-')} must be at least 1")
    if config.samples < 2:
        raise cli.UsageError("--samples must be at least 2")
    for name in ("data_std", "g_learning_rate", "d_learning_rate"):
        if not getattr(config, name) > 0:
            raise cli.UsageError(f"--{name.replace('_', '-')} must be positive")
    if not 0 <= config.lr_floor <= 1:
        raise cli.UsageError("--lr-floor must be between 0 and 1")


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.gan_1d",
        description=__doc__.split("\n")[0],
        quick=QUICK,
    )
    check(config)
    out = Path(config.out or "runs/gan_1d")
    print(
        f"1-D GAN: p_data = N({config.data_mean}, {config.data_std}^2), z ~ "
        f"{'U(-1, 1)' if config.noise == 'uniform' else 'N(0, 1)'}, backend {engine.backend()}"
    )
    gan = GAN1D(config)
    step = engine.function(gan.step, list(gan.state.values()), jit=config.jit)
    loop = engine.Loop(
        out,
        gan.state,
        resume=config.resume,
        overwrite=config.overwrite,
        config=dataclasses.asdict(config),
        epochs_in_schedule=config.lr_floor != 1,  # the cosine decay spans --epochs
    )

    # The panels of figure1.png: one snapshot before training and one after every epoch.
    grid, z_lines, z_density = figure_inputs(config)
    snapshots_path = out / "snapshots.npz"
    if loop.epoch and snapshots_path.exists():
        snapshots = load_snapshots(snapshots_path, loop.epoch)
    else:
        snapshots = {0: snapshot(gan, config, grid, z_lines, z_density)}

    def on_epoch_end(epoch, logs):
        snapshots[epoch] = snapshot(gan, config, grid, z_lines, z_density)
        # All of them so far, so that a resumed run can still draw the early panels.
        np.savez(
            snapshots_path, **{f"{e}/{k}": v for e, shot in snapshots.items() for k, v in shot.items()}
        )

    history = loop.fit(
        step,
        functools.partial(batches, config),
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        on_epoch_end=on_epoch_end,
    )
    plot_figure1(snapshots, config, grid, z_lines, out / "figure1.png")
    if history:
        plot_history(history, out / "losses.png")
    engine.save_model(gan.generator, out / "generator.keras")
    engine.save_model(gan.discriminator, out / "discriminator.keras")

    summary = measure(gan, config)
    print(
        f"G(z): mean {summary['generated_mean']:.3f} (data {config.data_mean}), std "
        f"{summary['generated_std']:.3f} (data {config.data_std}); mean D(G(z)) "
        f"{summary['mean_d_fake']:.3f}, mean D(x) {summary['mean_d_real']:.3f} (goal 1/2)"
    )
    summary.update(
        steps=loop.epoch * config.steps_per_epoch,
        epochs=loop.epoch,
        backend=engine.backend(),
        config=dataclasses.asdict(config),
    )
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Outputs in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
