"""What the GAN recipes share: state, the notes' losses, initialiser, batches, grids, plots, the run.

`train_image_gan` is the run every image GAN recipe (dcgan, gan, wgan, cgan) makes: an
`engine.Loop` over epochs of a compiled step, a sample grid from fixed inputs after every epoch, an
optional quality score per epoch (and once before training), `losses.png`, `samples.png` and
`summary.json` at the end. `GANState` holds G, D, their optimizers and the noise seed generator;
`discriminator_loss` and `generator_loss` are the cross-entropy losses of the notes (A 9.4, A 9.7);
`weight_init` and `scaled_width` are the DCGAN initialiser and the `--width` multiplier. Each
recipe keeps its own models and training step.

Mixed precision (`--dtype-policy`, every GAN recipe): the recipes build their networks inside
`precision.dtype_policy(config)`, with the last layer of G and of D in float32 (images and logits, hence
samples and losses, stay float32, as Keras' mixed-precision guide advises); under mixed_float16
`GANState` wraps both optimizers in `keras.optimizers.LossScaleOptimizer` and the steps take
gradients with `engine.value_and_grad(..., loss_scale=optimizer)` and apply them with
`engine.apply`, which skips a step whose gradients overflow and halves the scale.
"""

import dataclasses
import json

import numpy as np

from recipes import engine
from recipes.common import cli, plots, precision

keras = cli.lazy_import("keras")


@dataclasses.dataclass
class ImageGANConfig(cli.RunConfig):
    """Flags every image GAN recipe takes besides the common ones."""

    limit: int = cli.option(None, "train on the first N images only")
    samples: int = cli.option(1000, "generated images per quality evaluation")
    score_every: int = cli.option(1, "evaluate the sample quality every N epochs (and at the end)")
    jit: bool = cli.option(True, "compile the training step (jax.jit / tf.function)")
    dtype_policy: str = cli.dtype_policy_option()

    def __post_init__(self):
        if self.score_every < 1:
            raise cli.UsageError(f"--score-every must be at least 1, got {self.score_every}")
        if self.samples < 2:  # The FID's covariance needs two samples.
            raise cli.UsageError(f"--samples must be at least 2, got {self.samples}")
        if self.limit is not None and self.limit < 1:
            raise cli.UsageError(f"--limit must be at least 1, got {self.limit}")


class GANState:
    """G and D, an optimizer for each and the noise seed generator: what a GAN step updates.

    The optimizers are built here for their networks' variables, as `engine.function` needs.
    Under `--dtype-policy mixed_float16` each is wrapped in `keras.optimizers.LossScaleOptimizer`
    (its loss scale is an optimizer variable, so checkpoints carry it). Recipes subclass it and
    add `train_step` and `step`.
    """

    def __init__(self, config, generator, discriminator, g_optimizer, d_optimizer):
        g_optimizer = precision.loss_scaled(config, g_optimizer)
        d_optimizer = precision.loss_scaled(config, d_optimizer)
        self.config = config
        self.generator, self.discriminator = generator, discriminator
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.g_optimizer.build(generator.trainable_variables)
        self.d_optimizer.build(discriminator.trainable_variables)
        self.noise = keras.random.SeedGenerator(config.seed)

    @property
    def state(self):
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "g_optimizer": self.g_optimizer,
            "d_optimizer": self.d_optimizer,
            "noise": self.noise,
        }


def weight_init():
    """The DCGAN paper's initialisation (dcgan, cgan, wgan, pix2pix): N(0, 0.02^2) weights."""
    return keras.initializers.RandomNormal(stddev=0.02)


def scaled_width(config):
    """`width(n)`: n channels or units scaled by `config.width` (the quick runs' tiny networks)."""

    def width(n):
        return max(1, round(n * config.width))

    return width


# The GAN losses of the notes (the logits are D's outputs before the sigmoid)


def discriminator_loss(real_logits, fake_logits):
    """-[log D(x) + log(1 - D(G(z)))], averaged over the batch."""
    bce = keras.losses.binary_crossentropy
    real = bce(keras.ops.ones_like(real_logits), real_logits, from_logits=True)
    fake = bce(keras.ops.zeros_like(fake_logits), fake_logits, from_logits=True)
    return keras.ops.mean(real) + keras.ops.mean(fake)


def generator_loss(fake_logits):
    """The non-saturating generator loss -log D(G(z))."""
    bce = keras.losses.binary_crossentropy
    return keras.ops.mean(bce(keras.ops.ones_like(fake_logits), fake_logits, from_logits=True))


def fixed_noise(seed, count, dim):
    """`count` standard-normal noise vectors (float32), the same on every backend for a seed."""
    return np.random.default_rng(seed).normal(size=(count, dim)).astype("float32")


def shuffled_batches(arrays, batch_size, seed, epoch):
    """Full batches of `arrays` (aligned NumPy arrays) in an order fixed by (seed, epoch).

    Deterministic per epoch, so a resumed run sees the same data as an uninterrupted one.
    """
    order = np.random.default_rng([seed, epoch]).permutation(len(arrays[0]))
    for i in range(len(order) // batch_size):
        index = order[i * batch_size : (i + 1) * batch_size]
        yield tuple(array[index] for array in arrays)


def save_grid(images, path, scale=2, cols=None):
    """Writes images in [0, 1] (N, H, W, C) as a grid PNG, `cols` per row (default: square)."""
    from PIL import Image

    n, h, w, c = images.shape
    cols = cols or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    grid = np.ones((rows * (h + 2) + 2, cols * (w + 2) + 2, c), dtype=np.float32)
    for i, image in enumerate(images):
        r, k = divmod(i, cols)
        grid[2 + r * (h + 2) : 2 + r * (h + 2) + h, 2 + k * (w + 2) : 2 + k * (w + 2) + w] = image
    pixels = np.clip(np.rint(grid * 255), 0, 255).astype(np.uint8)
    picture = Image.fromarray(pixels[..., 0] if c == 1 else pixels)
    picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST).save(path)


def plot_history(history, path, title, loss_keys, score_key="fid", score_label="FID (digit features)"):
    """Loss curves per epoch, and the quality score beside them when some epochs have one."""
    plot_curves(history, path, title, loss_keys, score_key=score_key, score_label=score_label)


def _format(scores):
    return ", ".join(f"{key} {value:.3f}" for key, value in scores.items())


def train_image_gan(
    gan, config, out, batches, steps_per_epoch, *, title, loss_keys, sample, score=None, grid_cols=None
):
    """Trains `gan` for `config.epochs` epochs and writes the common outputs under `out`.

    Args:
        gan: has `.state` ({name: model, optimizer or SeedGenerator}) and `.step(*batch)`.
        config: an `ImageGANConfig` (epochs, resume, jit, score_every).
        batches: `batches(epoch)`, deterministic per epoch (see `shuffled_batches`).
        sample: `sample() -> images in [0, 1]` from fixed inputs, for the per-epoch grids.
        score: `score() -> {name: float}` with "fid" first, evaluated before training, every
            `config.score_every` epochs and after the last (logged to metrics.csv), or None.

    Returns:
        The summary dict also written to `summary.json`: the scores before and after training,
        epochs, backend and config.
    """
    step = engine.function(gan.step, list(gan.state.values()), jit=config.jit)
    # Checks --out (a file, a previous run) before anything is written there.
    loop = engine.Loop(
        out,
        gan.state,
        resume=config.resume,
        overwrite=config.overwrite,
        config=dataclasses.asdict(config),
    )
    (out / "samples").mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    summary = {}
    if score is not None:
        if loop.epoch and summary_path.exists():
            summary = json.loads(summary_path.read_text())
        if not loop.epoch:
            summary["untrained"] = score()
            # Written now, so that a run killed later still has its untrained score on --resume.
            _write_json(summary_path, summary)
        if "untrained" in summary:
            print(f"Untrained generator: {_format(summary['untrained'])}")
        else:  # Resumed without the first run's summary.json: the score is not the untrained one.
            summary["resumed"] = {"epoch": loop.epoch, **score()}
            print(f"Generator at epoch {loop.epoch} (resumed): {_format(summary['resumed'])}")

    def on_epoch_end(epoch, logs):
        save_grid(sample(), out / "samples" / f"epoch-{epoch:03d}.png", cols=grid_cols)
        if score is None or (epoch % config.score_every and epoch != config.epochs):
            return None
        scores = score()
        print(f"  {_format(scores)}")
        return scores

    history = loop.fit(
        step, batches, epochs=config.epochs, steps_per_epoch=steps_per_epoch, on_epoch_end=on_epoch_end
    )
    save_grid(sample(), out / "samples.png", scale=3, cols=grid_cols)
    if history:
        plot_history(history, out / "losses.png", title, loss_keys)
    if score is not None and history:
        first = "untrained" if "untrained" in summary else "resumed"
        summary["trained"] = {key: history[-1][key] for key in summary[first] if key != "epoch"}
        before, after = summary[first]["fid"], summary["trained"]["fid"]
        print(f"FID: {first} {before:.2f} -> trained {after:.2f} after {loop.epoch} epochs")
    summary.update(epochs=loop.epoch, backend=engine.backend(), config=dataclasses.asdict(config))
    _write_json(summary_path, summary)
    return summary


def _write_json(path, data):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)


# --- used by wgan and pix2pix


def plot_curves(
    history,
    path,
    title,
    keys,
    *,
    ylabel="loss",
    legend=True,
    score_key="fid",
    score_label="FID (digit features)",
):
    """`plot_history` with the left panel's y label and legend chosen: any logged curves per epoch
    (wgan: the critic's Wasserstein estimate), the quality score beside them when scored."""
    plt = plots.pyplot()
    epochs = [row["epoch"] for row in history]
    scored = [row for row in history if score_key in row]
    fig, axes = plt.subplots(1, 2 if scored else 1, figsize=(10 if scored else 5, 3.6))
    axes = np.atleast_1d(axes)
    for key in keys:
        axes[0].plot(epochs, [row[key] for row in history], marker=".", label=key)
    axes[0].set(xlabel="epoch", ylabel=ylabel, title=title)
    if legend:
        axes[0].legend()
    if scored:
        x, y = [row["epoch"] for row in scored], [row[score_key] for row in scored]
        axes[1].plot(x, y, marker=".", color="C2")
        axes[1].set(xlabel="epoch", ylabel=score_label, title="sample quality")
        axes[1].set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
