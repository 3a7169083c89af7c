"""Vanilla GAN and LSGAN: two small fully connected networks learn to write digits.

Reproduces A 9.4 (vanilla GAN), A 9.5 (LSGAN, Mao et al. 2017) and the theory of D 9.6: for a fixed
G the best discriminator is D* = p_data / (p_data + p_G), and V(G, D*) = 2 JSD(p_data || p_G) - log 4.
The identity is printed at start-up for p_data = [.5, .5], p_G = [.9, .1] (-1.182796) and for
p_G = p_data (-log 4 = -1.386294, where D* = 1/2 everywhere). `--loss gan` trains with the notes'
cross-entropy losses, `--loss lsgan` with least squares, on the same networks.

Outputs (under --out, default runs/gan or runs/lsgan): samples/epoch-NNN.png, samples.png,
losses.png, metrics.csv, tensorboard/, checkpoints/, generator.keras, discriminator.keras,
summary.json; sample quality is the digit-feature FID of recipes/common/quality.py.

    python -m recipes.gan                  # vanilla GAN on mnist5k's real digits (embedded)
    python -m recipes.gan --loss lsgan     # least-squares GAN, same networks
    KERAS_BACKEND=jax python -m recipes.gan --dataset mnist

Default run on mnist5k (JAX, 30 epochs): FID 780 -> 163.7, class entropy 2.12 (ln 10 = 2.30).
Trained longer, G collapses onto a few digits: 70 epochs end at FID 244.9, class entropy 1.52.
Before mnist5k became the default (150 epochs on scikit-learn's 8x8 digits, FID in the previous
classifier's features): FID untrained -> trained, wall time

    run     tensorflow           torch                jax
    gan     912 -> 28.3, 3:47    916 -> 26.7, 7:44    906 -> 27.7, 2:04
    lsgan   912 -> 26.9, 1:28    916 -> 43.6, 6:10    906 -> 27.3, about 4:20
"""

import dataclasses
import functools
import sys
from pathlib import Path

import numpy as np

import datasets
from recipes import engine
from recipes.common import cli, gan_training, precision

keras = cli.lazy_import("keras")

SECTION = "A 9.4, A 9.5, D 9.6"
LOSSES = ("gan", "lsgan")


@dataclasses.dataclass
class Config(gan_training.ImageGANConfig):
    # The notes leave the batch size (64 here), the length of training and the noise open: z is
    # uniform in [-1, 1] as in the CS231n notebook the section follows, 30 epochs (1,860 steps): on
    # mnist5k's 4,000 digits the score is best at epochs 30-40, then G collapses onto a few digits.
    epochs: int = cli.option(30, "number of training epochs")
    score_every: int = cli.option(10, "evaluate the sample quality every N epochs (and at the end)")
    dataset: str = cli.option(
        "mnist5k", "data set of 28x28 digits", choices=("mnist5k", "digits", "mnist")
    )
    loss: str = cli.option("gan", "gan (section 9.4) or lsgan (section 9.5)", choices=LOSSES)
    latent_dim: int = cli.option(128, "size of the noise vector z")
    hidden: int = cli.option(256, "hidden units of G and D")
    d_activation: str = cli.option(
        None,
        "D's hidden activation (default: relu for gan, as in the notes; leaky_relu for lsgan)",
        choices=("relu", "leaky_relu"),
    )
    learning_rate: float = cli.option(1e-3, "Adam learning rate of both networks")
    # With TensorFlow's default beta_1 0.9 the notes warn that D's loss can go to zero and G stop
    # learning.
    beta_1: float = cli.option(0.5, "Adam beta_1 of both networks")


QUICK = dict(epochs=2, batch_size=32, hidden=32, limit=128, samples=200)


# ---------------------------------------------------------------------------------------------
# Theory: the optimal discriminator and the Jensen-Shannon divergence (D 9.6)


def optimal_discriminator(p_data, p_g):
    """D*(x) = p_data(x) / (p_data(x) + p_G(x))."""
    p_data, p_g = np.asarray(p_data, float), np.asarray(p_g, float)
    return p_data / (p_data + p_g)


def value(p_data, p_g, d):
    """V(G, D) = E_{p_data}[log D(x)] + E_{p_G}[log(1 - D(x))] for discrete distributions."""
    p_data, p_g, d = np.asarray(p_data, float), np.asarray(p_g, float), np.asarray(d, float)
    return float(np.sum(p_data * np.log(d)) + np.sum(p_g * np.log1p(-d)))


def jensen_shannon(p, q):
    """JSD(p || q) = 1/2 KL(p || m) + 1/2 KL(q || m), m = (p + q) / 2, in nats."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    m = (p + q) / 2
    return float(0.5 * np.sum(p * np.log(p / m)) + 0.5 * np.sum(q * np.log(q / m)))


def theory_check(p_data=(0.5, 0.5), p_g=(0.9, 0.1)):
    """The numbers of the identity V(G, D*) = 2 JSD - log 4, as a dict."""
    d_star = optimal_discriminator(p_data, p_g)
    return {
        "d_star": d_star.tolist(),
        "value_at_d_star": value(p_data, p_g, d_star),
        "two_jsd_minus_log4": 2 * jensen_shannon(p_data, p_g) - np.log(4),
        "value_when_equal": value(p_data, p_data, optimal_discriminator(p_data, p_data)),
    }


# ---------------------------------------------------------------------------------------------
# Models and losses (shapes for the default sizes and N images)


def build_generator(config):
    """G: z (latent_dim,) -> image (28, 28, 1) in [0, 1]; 234,512 parameters at the notes' sizes."""
    L = keras.layers
    z = keras.Input((config.latent_dim,), name="z")  # (N, 128)
    x = L.Dense(config.hidden, activation="relu")(z)  # (N, 256)
    # The output layers in float32 under a mixed --dtype-policy: the images, and D's loss, stay float32.
    x = L.Dense(28 * 28, activation="sigmoid", dtype="float32")(x)  # (N, 784)
    image = L.Reshape((28, 28, 1), dtype="float32")(x)  # (N, 28, 28, 1)
    return keras.Model(z, image, name="generator")


def build_discriminator(config):
    """D: image (28, 28, 1) -> FC hidden, ReLU -> FC 1: a logit (gan) or a score (lsgan).

    201,217 parameters at the notes' sizes. LSGAN's D uses LeakyReLU (slope 0.2) unless
    `--d-activation` says otherwise, as in the LSGAN paper: with ReLU, D learns to put G's samples
    where every hidden unit is off, its score is flat there and G gets no gradient (measured: FID
    still above 500 after 100 epochs, mode collapse).
    """
    L = keras.layers
    activation = config.d_activation or ("leaky_relu" if config.loss == "lsgan" else "relu")
    image = keras.Input((28, 28, 1), name="image")
    x = L.Dense(config.hidden, activation=activation)(L.Flatten()(image))  # (N, 256)
    logit = L.Dense(1, dtype="float32")(x)  # (N, 1), float32 under a mixed --dtype-policy
    return keras.Model(image, logit, name="discriminator")


def discriminator_loss(real, fake, loss="gan"):
    """D's loss from its outputs on real and generated images.

    gan: -[log D(x) + log(1 - D(G(z)))], D's sigmoid folded into the loss (cross-entropy from
    logits, the same function computed stably). lsgan (A 9.5): D has no sigmoid and returns a
    score; 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2].
    """
    ops = keras.ops
    if loss == "lsgan":
        return 0.5 * ops.mean(ops.square(real - 1)) + 0.5 * ops.mean(ops.square(fake))
    return gan_training.discriminator_loss(real, fake)


def generator_loss(fake, loss="gan"):
    """G's loss from D's outputs on generated images.

    gan: the non-saturating -log D(G(z)); lsgan: 1/2 E[(D(G(z)) - 1)^2].
    """
    if loss == "lsgan":
        return 0.5 * keras.ops.mean(keras.ops.square(fake - 1))
    return gan_training.generator_loss(fake)


class GAN(gan_training.GANState):
    """G, D, their Adam optimizers and the noise seed generator, with the training step."""

    def __init__(self, config):
        engine.set_seed(config.seed)
        adam = [keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1) for _ in "gd"]
        with precision.dtype_policy(config):
            generator, discriminator = build_generator(config), build_discriminator(config)
        super().__init__(config, generator, discriminator, *adam)

    def train_step(self, real, z_d, z_g):
        """One D update on (real, G(z_d)), then one G update on G(z_g). Returns the losses."""
        G, D, loss = self.generator, self.discriminator, self.config.loss
        g_opt, d_opt = self.g_optimizer, self.d_optimizer

        # (1) Update D on real images and G's, G held fixed.
        def d_loss_fn():
            fake = keras.ops.stop_gradient(G(z_d))
            return discriminator_loss(D(real), D(fake), loss)

        # (loss_scale: under mixed_float16 the loss is scaled, and engine.apply unscales.)
        d_loss, grads = engine.value_and_grad(d_loss_fn, D.trainable_variables, loss_scale=d_opt)
        engine.apply(d_opt, grads, D.trainable_variables)

        # (2) Update G against the D just updated, on fresh noise.
        def g_loss_fn():
            return generator_loss(D(G(z_g)), loss)

        g_loss, grads = engine.value_and_grad(g_loss_fn, G.trainable_variables, loss_scale=g_opt)
        engine.apply(g_opt, grads, G.trainable_variables)
        return {"d_loss": d_loss, "g_loss": g_loss}

    def step(self, real):
        """`train_step` with z ~ U(-1, 1) drawn from the model's own seed generator."""
        shape = (keras.ops.shape(real)[0], self.config.latent_dim)
        z_d = keras.random.uniform(shape, -1.0, 1.0, seed=self.noise)
        z_g = keras.random.uniform(shape, -1.0, 1.0, seed=self.noise)
        return self.train_step(real, z_d, z_g)

    def generate(self, z, batch_size=256):
        """Images in [0, 1] from noise `z` (NumPy)."""
        return self.generator.predict(z, batch_size=batch_size, verbose=0)


# ---------------------------------------------------------------------------------------------
# Data and the run


def uniform_noise(seed, count, dim):
    """Fixed z ~ U(-1, 1) (float32) for sample grids and quality scores."""
    return np.random.default_rng(seed).uniform(-1, 1, size=(count, dim)).astype("float32")


def load_data(config):
    """uint8 digits (N, 28, 28, 1); at least one batch of them."""
    name = "folder" if config.data_dir else config.dataset
    images, _ = datasets.load_images(name, data_dir=config.data_dir, limit=config.limit)
    images = datasets.fit_images(images, 28, 1)
    if len(images) < config.batch_size:
        raise cli.UsageError(f"{len(images)} images are fewer than one batch of {config.batch_size}")
    return images


def batches(images, config, epoch):
    """Shuffled full batches of floats in [0, 1]; the order depends on (seed, epoch)."""
    for (batch,) in gan_training.shuffled_batches((images,), config.batch_size, config.seed, epoch):
        yield (datasets.to_float(batch),)


def print_theory():
    """The identity V(G, D*) = 2 JSD - log 4 of D 9.6, with the numbers of `theory_check`."""
    theory = theory_check()
    print(
        "Theory (D 9.6): p_data = [.5, .5], p_G = [.9, .1]: "
        f"D* = {np.round(theory['d_star'], 6).tolist()}, V(G, D*) = {theory['value_at_d_star']:.6f}, "
        f"2 JSD - log 4 = {theory['two_jsd_minus_log4']:.6f}; "
        f"p_G = p_data: V = {theory['value_when_equal']:.6f} = -log 4"
    )


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.gan", description=__doc__.split("\n")[0], quick=QUICK
    )
    images = load_data(config)
    out = Path(config.out or f"runs/{config.loss}")
    print_theory()
    name = "LSGAN" if config.loss == "lsgan" else "GAN"
    print(f"{name} on {len(images)} images of {config.dataset}, backend {engine.backend()}")

    gan = GAN(config)
    z_fixed = uniform_noise(config.seed, 64, config.latent_dim)
    z_eval = uniform_noise(config.seed + 1, config.samples, config.latent_dim)
    from recipes.common import quality

    def digit_score():  # FID of the samples in the digit classifier's features
        return quality.score(gan.generate(z_eval))

    gan_training.train_image_gan(
        gan,
        config,
        out,
        functools.partial(batches, images, config),
        len(images) // config.batch_size,
        title=f"{name} losses",
        loss_keys=("d_loss", "g_loss"),
        sample=functools.partial(gan.generate, z_fixed),
        score=digit_score,
    )
    engine.save_model(gan.generator, out / "generator.keras")
    engine.save_model(gan.discriminator, out / "discriminator.keras")
    print(f"Outputs in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
