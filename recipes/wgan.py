"""WGAN: Wasserstein GAN with weight clipping (Algorithm 1) or a gradient penalty, on digits.

Reproduces section 9.6 of seeds/000 (Arjovsky et al. 2017). The critic f_w has no sigmoid: it
scores images, and by the Kantorovich-Rubinstein duality

    W(P_r, P_g) = sup_{||f||_L <= 1} E_{x~P_r}[f(x)] - E_{z}[f(G(z))],

so the critic maximises E[f(x)] - E[f(G(z))] (its estimate of the Wasserstein distance, up to the
Lipschitz constant; `wasserstein.png` plots it per epoch) and the generator minimises -E[f(G(z))].
Algorithm 1 of the notes: every generator update follows `--critic-steps` (n_critic = 5) critic
updates, each on its own real batch of m = 64 and its own noise, with RMSprop at alpha = 5e-5.

`--penalty` chooses how the critic is kept Lipschitz:
- `clip` (default, the notes' Algorithm 1): after every critic update each critic weight (kernels,
  biases, BatchNorm gamma and beta) is clipped to [-c, c], c = 0.01 (`layers.ClipConstraint`,
  applied by `Optimizer.apply`, also on JAX).
- `gp`: the improvement the notes name but do not implement (Gulrajani et al. 2017, arXiv
  1704.00028): no clipping; the critic loss gets lambda * E[(||grad_x f(x_hat)||_2 - 1)^2],
  lambda = 10, on random interpolates x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1] per example, and
  both networks use Adam with lr 1e-4, beta_1 = 0, beta_2 = 0.9 (the paper's settings). The penalty
  is a gradient of a gradient: `engine.value_and_grad` nested inside `engine.value_and_grad`, on all
  three backends. Its critic has no batch normalisation, since the penalty is per example.

The notes leave the architecture open ("reuse 9.4 MLP or 9.7 DCGAN"); `--arch` offers both:
- `conv` (default): a DCGAN-like pair, narrower than section 9.7's. G: z(100) -> FC 7x7x64, BN,
  ReLU -> deconv 5x5/2 to 14x14x32, BN, ReLU -> deconv 5x5/2 to 28x28x1, tanh. Critic: conv 5x5/2
  to 14x14x32, lrelu -> conv 5x5/2 to 7x7x64, BN (clipping only, as in the WGAN paper's DCGAN
  critic), lrelu -> FC 1, linear. Without BatchNorm the clipped critic learns far more slowly (FID
  720 after 1,600 generator updates at half width, against 200 with it).
- `mlp`: section 9.4's widths. G: z -> FC 256, ReLU -> FC 784, tanh. Critic: FC 256, lrelu -> FC 1.
  Much weaker here: the clipped MLP critic leaves G at the mean digit (FID about 640 after 3,000
  updates) and the penalised one reached FID about 250 in 3,000.
Where the notes are silent: LeakyReLU slope 0.2, weights from N(0, 0.02) (as in the WGAN code), the
Keras RMSprop (rho 0.9), images scaled to [-1, 1]. The notes' loop "for t = 0, ..., n_critic" runs
n_critic + 1 times (off by one, as in the paper); this recipe runs exactly n_critic. The paper's
code also gives the critic 100 updates per generator update during the first 25; the notes do not,
and neither does this recipe.

An epoch here is `--steps-per-epoch` generator updates (each on `--critic-steps` fresh batches; the
data are reshuffled whenever they run out), since one pass over the 1,797 embedded digits is only
five generator updates. The default run is 1,600 generator updates with clipping and 800 with the
penalty, which improves the samples about twice as fast per update (and costs more per update).

The gradient penalty's critic computes its strided convolutions as `SpaceToDepthConv2D` (this
module): exactly `Conv2D`, rearranged so that JAX's CPU backend does not spend most of the step in
the second-order gradients of strided convolutions.

Outputs (under --out, default runs/wgan, or runs/wgan_gp with --penalty gp): samples/epoch-NNN.png
(fixed noise), samples.png, losses.png, wasserstein.png (the critic's estimate and the FID per
epoch), metrics.csv, tensorboard/, checkpoints/, generator.keras and critic.keras (plain Keras
layers: `keras.saving.load_model(path)` without this project's code), summary.json (FID before and
after, the numbers of critic and generator updates). Sample quality is the Frechet distance in the
digit classifier's features (recipes/common/quality.py); lower is better.

    python -m recipes.wgan                         # weight clipping, embedded digits
    python -m recipes.wgan --penalty gp            # WGAN-GP
    KERAS_BACKEND=jax python -m recipes.wgan --penalty gp --epochs 5
    python -m recipes.wgan --dataset mnist         # real MNIST, downloaded once
"""

import csv
import dataclasses
import functools
import json
import sys
from pathlib import Path

import numpy as np

import datasets
from recipes import engine
from recipes.common import cli, gan_training

keras = cli.lazy_import("keras")

SECTION = "A 9.6"
IMAGE_SHAPE = (28, 28, 1)
VALUE_RANGE = (-1.0, 1.0)  # tanh output of G; real images are scaled to the same range
PENALTIES = ("clip", "gp")
DEFAULT_LEARNING_RATE = {"clip": 5e-5, "gp": 1e-4}
# 1,600 generator updates with clipping, 800 with the penalty, which gets there in half the steps.
DEFAULT_STEPS_PER_EPOCH = {"clip": 100, "gp": 50}


@dataclasses.dataclass
class Config(gan_training.ImageGANConfig):
    epochs: int = cli.option(16, "number of epochs (of --steps-per-epoch generator updates)")
    dataset: str = cli.option(
        "digits", "data set to train on", choices=("digits", "mnist", "fashion_mnist")
    )
    penalty: str = cli.option(
        "clip", "Lipschitz constraint: weight clipping or gradient penalty", choices=PENALTIES
    )
    arch: str = cli.option(
        "conv", "network pair: DCGAN-like convolutions or 9.4's MLP", choices=("conv", "mlp")
    )
    steps_per_epoch: int = cli.option(None, "generator updates per epoch (default: 100 clip, 50 gp)")
    critic_steps: int = cli.option(5, "critic updates per generator update (n_critic)")
    clip_value: float = cli.option(0.01, "weight clipping bound c (--penalty clip)")
    gp_weight: float = cli.option(10.0, "gradient penalty weight lambda (--penalty gp)")
    learning_rate: float = cli.option(
        None, "learning rate (default: RMSprop 5e-5 for clip, Adam 1e-4 for gp)"
    )
    beta_1: float = cli.option(0.0, "Adam beta_1 (--penalty gp)")
    beta_2: float = cli.option(0.9, "Adam beta_2 (--penalty gp)")
    latent_dim: int = cli.option(100, "size of the noise vector z")
    leaky_slope: float = cli.option(0.2, "LeakyReLU negative slope in the critic")
    width: float = cli.option(1.0, "multiplier of every hidden layer width")
    critic_batchnorm: bool = cli.option(
        None, "BatchNorm in the critic (default: with --penalty clip and --arch conv; never with gp)"
    )

    def __post_init__(self):
        super().__post_init__()
        if self.critic_steps < 1:
            raise cli.UsageError(f"--critic-steps must be at least 1, got {self.critic_steps}")
        if self.learning_rate is None:
            self.learning_rate = DEFAULT_LEARNING_RATE[self.penalty]
        if self.steps_per_epoch is None:
            self.steps_per_epoch = DEFAULT_STEPS_PER_EPOCH[self.penalty]
        if self.steps_per_epoch < 1:
            raise cli.UsageError(f"--steps-per-epoch must be at least 1, got {self.steps_per_epoch}")
        if self.penalty == "clip" and not self.clip_value > 0:
            raise cli.UsageError(f"--clip-value must be > 0, got {self.clip_value}")
        if self.penalty == "gp" and self.critic_batchnorm:
            raise cli.UsageError(
                "--critic-batchnorm cannot be used with --penalty gp: the gradient penalty is per "
                "example, batch normalisation mixes the examples of a batch"
            )

    @property
    def use_batchnorm(self):
        if self.critic_batchnorm is None:
            return self.penalty == "clip" and self.arch == "conv"
        return self.critic_batchnorm


# Two critic updates per generator update under --quick: the compiled step unrolls the critic loop,
# and tracing five copies would make the smoke run several times slower.
QUICK = dict(
    epochs=2, steps_per_epoch=2, critic_steps=2, batch_size=16, width=0.25, limit=128, samples=100
)


# ---------------------------------------------------------------------------------------------
# Models


def _init():
    return keras.initializers.RandomNormal(stddev=0.02)


def _widths(config):
    return lambda n: max(1, round(n * config.width))


def build_generator(config, plain=False):
    """G: z (latent_dim,) -> image (28, 28, 1) in [-1, 1].

    `plain=True` builds the same network with `keras.layers.Conv2DTranspose` instead of
    `layers.SubPixelConv2DTranspose` (identical weights and outputs; see recipes/dcgan.py), which is
    what `generator.keras` holds.
    """
    from layers import SubPixelConv2DTranspose

    L = keras.layers
    w = _widths(config)
    transposed = L.Conv2DTranspose if plain else SubPixelConv2DTranspose

    def bn_relu(x):
        return L.ReLU()(L.BatchNormalization(momentum=0.9)(x))

    z = keras.Input((config.latent_dim,), name="z")
    if config.arch == "conv":
        x = bn_relu(L.Dense(7 * 7 * w(64), kernel_initializer=_init())(z))
        x = L.Reshape((7, 7, w(64)))(x)
        x = bn_relu(transposed(w(32), 5, strides=2, padding="same", kernel_initializer=_init())(x))
        x = transposed(1, 5, strides=2, padding="same", kernel_initializer=_init())(x)
    else:
        x = L.Dense(w(256), activation="relu", kernel_initializer=_init())(z)
        x = L.Reshape(IMAGE_SHAPE)(L.Dense(int(np.prod(IMAGE_SHAPE)), kernel_initializer=_init())(x))
    image = L.Activation("tanh")(x)
    return keras.Model(z, image, name="generator")


@functools.cache
def _space_to_depth_conv2d():
    """The `SpaceToDepthConv2D` class, defined on first use (keeps `--help` free of Keras)."""

    class SpaceToDepthConv2D(keras.layers.Conv2D):
        """`keras.layers.Conv2D` with strides, computed as space-to-depth plus a stride-1 convolution.

        A drop-in replacement: same arguments, `kernel` (k, k, in, filters), `bias` and outputs.
        Output pixel i of a stride-s "same" convolution reads input pixels s*i - p ... s*i - p + k - 1
        (p the padding before), which lie in the s x s blocks i - m ... i + m of the input. Cutting
        the input into those blocks (space-to-depth: (H/s, W/s, s*s*in)) and gathering the kernel
        into a (2m + 1) x (2m + 1) kernel over blocks (zero where a block tap lies outside the k x k
        window) turns it into a stride-1 "same" convolution. Exact, not an approximation.

        Why: the gradient penalty differentiates the critic's input gradient with respect to its
        weights. On JAX's CPU backend the input gradient of a strided convolution is a dilated
        ("transposed") convolution whose own gradients are slow: the penalty's gradient for this
        recipe's critic at batch 64 took 162 ms against 35 ms in this form, and the whole WGAN-GP
        step 1,030 against 420 ms. TensorFlow's native kernels beat the rearrangement (36 against
        53 ms) and torch's are about even (56, 49), so `implementation="auto"` uses it on JAX only.

        Supports `padding="same"` with input sizes divisible by the strides, channels_last,
        `dilation_rate=1`, `groups=1`; other settings (and stride 1) use `Conv2D` itself.
        """

        def __init__(self, *args, implementation="auto", **kwargs):
            super().__init__(*args, **kwargs)
            if implementation not in ("auto", "space_to_depth", "native"):
                raise ValueError(
                    "SpaceToDepthConv2D: implementation must be 'auto', 'space_to_depth' or 'native', "
                    f"got {implementation!r}"
                )
            self.implementation = implementation

        def get_config(self):
            return {**super().get_config(), "implementation": self.implementation}

        def _rearranged(self, input_shape):
            native = self.implementation == "native" or (
                self.implementation == "auto" and keras.backend.backend() != "jax"
            )
            sizes = input_shape[1:3]
            return not (
                native
                or self.padding != "same"
                or self.data_format != "channels_last"
                or self.dilation_rate != (1, 1)
                or self.groups != 1
                or self.strides == (1, 1)
                or any(n is None or n % s for n, s in zip(sizes, self.strides))
            )

        def convolution_op(self, inputs, kernel):
            if not self._rearranged(inputs.shape):
                return super().convolution_op(inputs, kernel)
            ops = keras.ops
            _, height, width, channels = inputs.shape
            (kh, kw), (sh, sw) = self.kernel_size, self.strides
            # "same": output i reads input pixels s*i - before ... s*i - before + k - 1, i.e. the
            # s x s blocks i - m ... i + m; a stride-1 "same" convolution over the blocks with a
            # (2m + 1)-wide kernel reads exactly those (and zeros beyond the edges).
            taps = []
            for size, k, s in ((height, kh, sh), (width, kw, sw)):
                before = max((size // s - 1) * s + k - size, 0) // 2
                m = max(-(-before // s), (k - 1 - before) // s)
                offsets = s * np.arange(-m, m + 1)[:, None] + np.arange(s)[None, :] + before
                taps.append(np.where((offsets >= 0) & (offsets < k), offsets, -1))
            rows, cols = taps[0][:, None, :, None], taps[1][None, :, None, :]
            # A gather into (blocks_h, blocks_w, s_h, s_w) taps, the appended zero row for taps
            # outside the kernel; the channel order (p, q, c) is that of the blocks below.
            index = np.where((rows >= 0) & (cols >= 0), rows * kw + cols, kh * kw).astype("int32")
            k = ops.reshape(kernel, (kh * kw, channels, self.filters))
            k = ops.take(ops.pad(k, ((0, 1), (0, 0), (0, 0))), index, axis=0)
            k = ops.reshape(k, (*index.shape[:2], sh * sw * channels, self.filters))
            x = ops.reshape(inputs, (-1, height // sh, sh, width // sw, sw, channels))
            x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
            x = ops.reshape(x, (-1, height // sh, width // sw, sh * sw * channels))
            # A padded input with a "valid" convolution computes the same, but XLA:CPU runs the
            # second-order gradients of that form as slowly as the strided convolution.
            return ops.conv(x, k, strides=1, padding="same")

    return SpaceToDepthConv2D


def __getattr__(name):
    if name == "SpaceToDepthConv2D":
        return _space_to_depth_conv2d()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_critic(config, clip=True, plain=False):
    """The critic f: image -> score (N, 1), linear output (no sigmoid).

    With `--penalty clip` (and `clip=True`) every kernel, bias and BatchNorm gamma/beta carries
    `ClipConstraint(c)`; `clip=False` builds the same network without constraints, which is what
    `critic.keras` holds, with plain `Conv2D` layers (`plain=True`) instead of the identical
    `SpaceToDepthConv2D`. With `config.use_batchnorm` (the default with clipping, as in the WGAN
    paper's DCGAN critic) BatchNorm follows the second convolution (mlp: the hidden layer).
    """
    from layers import ClipConstraint

    L = keras.layers
    w = _widths(config)
    constraint = ClipConstraint(config.clip_value) if clip and config.penalty == "clip" else None
    weights = dict(kernel_initializer=_init(), kernel_constraint=constraint, bias_constraint=constraint)

    def lrelu(x):
        return L.LeakyReLU(negative_slope=config.leaky_slope)(x)

    def norm(x):
        if not config.use_batchnorm:
            return x
        return L.BatchNormalization(
            momentum=0.9, gamma_constraint=constraint, beta_constraint=constraint
        )(x)

    image = keras.Input(IMAGE_SHAPE, name="image")
    if config.arch == "conv":
        # The penalty's second-order gradients are where the space-to-depth form pays off.
        conv = L.Conv2D if plain or config.penalty != "gp" else _space_to_depth_conv2d()
        x = lrelu(conv(w(32), 5, strides=2, padding="same", **weights)(image))
        x = lrelu(norm(conv(w(64), 5, strides=2, padding="same", **weights)(x)))
        x = L.Flatten()(x)
    else:
        x = lrelu(norm(L.Dense(w(256), **weights)(L.Flatten()(image))))
    score = L.Dense(1, **weights)(x)
    return keras.Model(image, score, name="critic")


# ---------------------------------------------------------------------------------------------
# Losses and the training step


def wasserstein_estimate(real_scores, fake_scores):
    """E[f(x)] - E[f(G(z))]: what the critic maximises, its estimate of W(P_r, P_g) (up to K)."""
    return keras.ops.mean(real_scores) - keras.ops.mean(fake_scores)


def gradient_penalty(critic, real, fake, epsilon):
    """E[(||grad_x f(x_hat)||_2 - 1)^2] on x_hat = epsilon * real + (1 - epsilon) * fake.

    Args:
        critic: a model mapping a batch of examples to scores (N, 1); no cross-example layers.
        real, fake: (N, ...) batches; epsilon: (N,) interpolation weights in [0, 1].

    Returns:
        (penalty, norms): the scalar penalty and the per-example gradient norms (N,).
    The input gradient comes from an inner `engine.value_and_grad`; the penalty stays
    differentiable with respect to the critic's weights by an outer one.
    """
    ops = keras.ops
    epsilon = ops.reshape(epsilon, (-1,) + (1,) * (len(real.shape) - 1))
    x_hat = epsilon * real + (1.0 - epsilon) * fake
    # Examples are independent, so the gradient of the summed scores is every example's gradient.
    _, (grad_x,) = engine.value_and_grad(lambda x: ops.sum(critic(x, training=True)), [x_hat])
    squares = ops.sum(ops.reshape(grad_x, (ops.shape(grad_x)[0], -1)) ** 2, axis=1)
    norms = ops.sqrt(squares + 1e-12)  # The offset keeps d sqrt finite at a zero gradient.
    return ops.mean((norms - 1.0) ** 2), norms


class WGAN:
    """G, the critic, their optimizers and the noise seed generator, with one training step."""

    def __init__(self, config):
        self.config = config
        engine.set_seed(config.seed)
        self.generator = build_generator(config)
        self.critic = build_critic(config)
        if config.penalty == "clip":
            self.g_optimizer = keras.optimizers.RMSprop(config.learning_rate)
            self.c_optimizer = keras.optimizers.RMSprop(config.learning_rate)
        else:
            adam = dict(beta_1=config.beta_1, beta_2=config.beta_2)
            self.g_optimizer = keras.optimizers.Adam(config.learning_rate, **adam)
            self.c_optimizer = keras.optimizers.Adam(config.learning_rate, **adam)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.c_optimizer.build(self.critic.trainable_variables)
        self.noise = keras.random.SeedGenerator(config.seed)

    @property
    def state(self):
        return {
            "generator": self.generator,
            "critic": self.critic,
            "g_optimizer": self.g_optimizer,
            "c_optimizer": self.c_optimizer,
            "noise": self.noise,
        }

    def critic_update(self, real, z, epsilon=None):
        """One critic update on a real batch and G(z); returns (estimate, penalty or None)."""
        G, f, ops = self.generator, self.critic, keras.ops
        gp = self.config.penalty == "gp"

        def loss_fn():
            fake = ops.stop_gradient(G(z, training=True))
            if self.config.use_batchnorm:  # Batch statistics of the real and the fake batch.
                estimate = wasserstein_estimate(f(real, training=True), f(fake, training=True))
            else:  # No cross-example layers: one call on both batches gives the same scores.
                scores = f(ops.concatenate([real, fake]), training=True)
                batch = ops.shape(real)[0]
                estimate = wasserstein_estimate(scores[:batch], scores[batch:])
            if not gp:
                return -estimate, (estimate, ops.zeros(()))
            penalty, _ = gradient_penalty(f, real, fake, epsilon)
            return -estimate + self.config.gp_weight * penalty, (estimate, penalty)

        (loss, (estimate, penalty)), grads = engine.value_and_grad(
            loss_fn, f.trainable_variables, has_aux=True
        )
        # With --penalty clip, Optimizer.apply clips every critic weight after the update.
        self.c_optimizer.apply(grads, f.trainable_variables)
        return loss, estimate, penalty

    def train_step(self, real, z_critic, z_generator, epsilon=None):
        """Algorithm 1: n_critic critic updates, then one generator update.

        Args:
            real: (n_critic, batch, 28, 28, 1) real images in [-1, 1], one batch per critic update.
            z_critic: (n_critic, batch, latent_dim) noise of the critic updates.
            z_generator: (batch, latent_dim) noise of the generator update.
            epsilon: (n_critic, batch) interpolation weights in [0, 1] (`--penalty gp` only).
        Returns:
            {"c_loss", "wasserstein", "g_loss"} (+ "penalty" with gp), critic values averaged over
            the n_critic updates.
        """
        ops = keras.ops
        n = self.config.critic_steps
        if real.shape[0] != n or z_critic.shape[0] != n:
            raise cli.UsageError(
                f"train_step needs {n} real batches and noise batches, got {real.shape[0]}"
            )
        totals = [0.0, 0.0, 0.0]
        for i in range(n):
            values = self.critic_update(real[i], z_critic[i], None if epsilon is None else epsilon[i])
            totals = [t + v for t, v in zip(totals, values)]
        c_loss, estimate, penalty = (t / n for t in totals)

        G, f = self.generator, self.critic

        def g_loss_fn():
            return -ops.mean(f(G(z_generator, training=True), training=True))

        g_loss, grads = engine.value_and_grad(g_loss_fn, G.trainable_variables)
        self.g_optimizer.apply(grads, G.trainable_variables)
        logs = {"c_loss": c_loss, "wasserstein": estimate, "g_loss": g_loss}
        if self.config.penalty == "gp":
            logs["penalty"] = penalty
        return logs

    def step(self, real):
        """`train_step` with noise (and interpolation weights) drawn from the seed generator."""
        n, batch = self.config.critic_steps, keras.ops.shape(real)[1]
        latent = self.config.latent_dim
        z_critic = keras.random.normal((n, batch, latent), seed=self.noise)
        z_generator = keras.random.normal((batch, latent), seed=self.noise)
        epsilon = None
        if self.config.penalty == "gp":
            epsilon = keras.random.uniform((n, batch), seed=self.noise)
        return self.train_step(real, z_critic, z_generator, epsilon)

    def generate(self, z, batch_size=256):
        """Images in [0, 1] from noise `z` (NumPy), BatchNorm in inference mode."""
        images = self.generator.predict(z, batch_size=batch_size, verbose=0)
        low, high = VALUE_RANGE
        return (images - low) / (high - low)


# ---------------------------------------------------------------------------------------------
# Data and outputs


def load_data(config):
    """uint8 digits (N, 28, 28, 1); at least one stack of n_critic batches."""
    images, _ = datasets.load_images(config.dataset, limit=config.limit)
    images = datasets.fit_images(images, IMAGE_SHAPE[0], IMAGE_SHAPE[2])
    if len(images) < config.batch_size:
        raise cli.UsageError(
            f"{config.dataset} has {len(images)} images, fewer than one batch of {config.batch_size}"
        )
    return images


def batches(images, config, epoch):
    """`steps_per_epoch` stacks (n_critic, batch, 28, 28, 1) of floats in [-1, 1].

    Consecutive shuffled passes over the data (full batches only), fixed by (seed, epoch), so a
    resumed run sees the same data as an uninterrupted one.
    """
    per_step = config.critic_steps * config.batch_size
    needed = config.steps_per_epoch * per_step
    usable = len(images) // config.batch_size * config.batch_size
    rng = np.random.default_rng([config.seed, epoch])
    order = np.concatenate([rng.permutation(len(images))[:usable] for _ in range(-(-needed // usable))])
    for i in range(config.steps_per_epoch):
        index = order[i * per_step : (i + 1) * per_step]
        stack = datasets.to_float(images[index], VALUE_RANGE)
        yield (stack.reshape(config.critic_steps, config.batch_size, *IMAGE_SHAPE),)


def plot_wasserstein(history, path, title):
    """The critic's Wasserstein estimate per epoch, with the FID beside it when it was scored."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    scored = [row for row in history if "fid" in row]
    fig, axes = plt.subplots(1, 2 if scored else 1, figsize=(10 if scored else 5, 3.6))
    axes = np.atleast_1d(axes)
    axes[0].plot(epochs, [row["wasserstein"] for row in history], marker=".")
    axes[0].set(xlabel="epoch", ylabel="E[f(x)] - E[f(G(z))]", title=title)
    if scored:
        x, y = [row["epoch"] for row in scored], [row["fid"] for row in scored]
        axes[1].plot(x, y, marker=".", color="C2")
        axes[1].set(xlabel="epoch", ylabel="FID (digit features)", title="sample quality")
        axes[1].set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def read_metrics(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.wgan",
        description=__doc__.split("\n")[0],
        quick=QUICK,
    )
    images = load_data(config)
    gan = WGAN(config)
    name = "WGAN" if config.penalty == "clip" else "WGAN-GP"
    out = Path(config.out or ("runs/wgan" if config.penalty == "clip" else "runs/wgan_gp"))
    print(
        f"{name} ({config.arch}) on {len(images)} images, {config.critic_steps} critic updates per "
        f"generator update, backend {engine.backend()}"
    )

    from recipes.common import quality

    z_fixed = gan_training.fixed_noise(config.seed, 64, config.latent_dim)
    z_eval = gan_training.fixed_noise(config.seed + 1, config.samples, config.latent_dim)
    loss_keys = ("c_loss", "g_loss") + (("penalty",) if config.penalty == "gp" else ())
    summary = gan_training.train_image_gan(
        gan,
        config,
        out,
        lambda epoch: batches(images, config, epoch),
        config.steps_per_epoch,
        title=f"{name} losses",
        loss_keys=loss_keys,
        sample=lambda: gan.generate(z_fixed),
        score=lambda: quality.score(gan.generate(z_eval)),
    )
    history = read_metrics(out / "metrics.csv")[: summary["epochs"]]
    if history:
        plot_wasserstein(history, out / "wasserstein.png", f"{name}: critic's Wasserstein estimate")
        summary["wasserstein"] = history[-1]["wasserstein"]
    summary["critic_updates"] = int(keras.ops.convert_to_numpy(gan.c_optimizer.iterations))
    summary["generator_updates"] = int(keras.ops.convert_to_numpy(gan.g_optimizer.iterations))
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    exported = build_generator(config, plain=True)
    exported.set_weights(gan.generator.get_weights())
    exported.save(out / "generator.keras")
    critic = build_critic(config, clip=False, plain=True)
    critic.set_weights(gan.critic.get_weights())
    critic.save(out / "critic.keras")
    print(f"{summary['critic_updates']} critic and {summary['generator_updates']} generator updates")
    print(f"Outputs in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
