"""Conditional DCGAN: digits drawn to order, one row per class.

Reproduces the conditional DCGAN-MNIST structure of A 9.7 (the authors' Theano code of Radford et
al. 2016): the one-hot label y (10 values) is concatenated to the noise z and, as constant feature
maps or extra features, to the input of every layer of both networks. D learns which digit it
should see, so G must draw the digit it is asked for. "label_accuracy" measures that: the fraction
of 1,000 samples (100 per class) that the project's digit classifier (recipes/common/quality.py)
reads as the digit they were drawn for, logged with the Frechet distance (fid) every epoch. The
notes ask for more than 80%.

Outputs (under --out, default runs/cgan): samples/epoch-NNN.png (a 10x10 grid, row k = digit k,
column j = noise j, after every epoch), samples.png, figure63.png (the notes' figure 63: its 64
labels in an 8x8 grid), losses.png, metrics.csv, tensorboard/, checkpoints/, generator.keras
(inputs [z, one-hot y]) and discriminator.keras (inputs [image, one-hot y]), in plain Keras layers
(`keras.saving.load_model(path)` on any backend), summary.json.

    python -m recipes.cgan                      # mnist5k's real digits (embedded), 10 epochs
    KERAS_BACKEND=jax python -m recipes.cgan --epochs 5
    python -m recipes.cgan --dataset mnist      # real MNIST with labels, downloaded once

Measured, default run on mnist5k (10 epochs, JAX): label accuracy 93.1% (chance 10%), FID 811 ->
16.7, 10 minutes on 2 busy cores. Before mnist5k became the default (20 epochs on scikit-learn's
8x8 digits, 5.5-7.5 CPU minutes per backend; label accuracy passes 80% after 3-4 epochs):

    tensorflow   label accuracy 95.1%, FID 11.9
    torch        label accuracy 94.7%, FID 6.3
    jax          label accuracy 92.8%, FID 5.6
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

SECTION = "A 9.7"
NUM_CLASSES = 10
# The labels of the notes' figure 63, read row by row (8 rows of 8 digits).
FIGURE63_LABELS = "75103252 68364083 28621201 44024423 22894003 20653052 03796123 95533708"
LABELLED_DATASETS = ("mnist5k", "digits", "mnist", "fashion_mnist")
DIGIT_DATASETS = ("mnist5k", "digits", "mnist")


@dataclasses.dataclass
class Config(gan_training.ImageGANConfig):
    # The notes give neither optimizer nor initialisation: the DCGAN paper's are used, as in the
    # dcgan recipe (Adam 2e-4, beta_1 0.5, LeakyReLU 0.2, weights from N(0, 0.02^2)).
    epochs: int = cli.option(10, "number of training epochs")
    # The notes train on MNIST; the default is mnist5k's 4,000 real training digits with labels.
    dataset: str = cli.option("mnist5k", "labelled 28x28 data set", choices=LABELLED_DATASETS)
    latent_dim: int = cli.option(100, "size of the noise vector z")
    learning_rate: float = cli.option(2e-4, "Adam learning rate of both networks")
    beta_1: float = cli.option(0.5, "Adam beta_1 of both networks")
    leaky_slope: float = cli.option(0.2, "LeakyReLU negative slope in D")
    width: float = cli.option(1.0, "multiplier of every hidden layer width of the notes")


# (Quarter width: at 1/8, D's first convolution has one output channel, whose float16 or bfloat16
# gradient torch's CPU kernels cannot take; see the README's mixed-precision paragraph.)
QUICK = dict(epochs=2, batch_size=32, width=0.25, limit=128, samples=200)


# ---------------------------------------------------------------------------------------------
# Models (shapes for the default width and N images; every "concat" is `layers.ConcatLabel`)


def concat_label(x, y, plain=False):
    """`layers.ConcatLabel` of a one-hot `y`, or (`plain=True`) the same from stock Keras layers."""
    from layers import ConcatLabel

    if not plain:
        return ConcatLabel(NUM_CLASSES)(x, y)
    L = keras.layers
    if len(x.shape) == 4:
        height, width = x.shape[1], x.shape[2]
        y = L.Reshape((height, width, NUM_CLASSES))(L.RepeatVector(height * width)(y))
    return L.Concatenate()([x, y])


def build_generator(config, plain=False):
    """G: [z (latent_dim,), one-hot y (10,)] -> image (28, 28, 1) in [0, 1].

    7,080,059 parameters at the notes' widths (bias in every layer, BatchNorm 4 per channel).
    Trains with `layers.ConcatLabel` and `layers.SubPixelConv2DTranspose`; `plain=True` builds the
    same network (identical weights and outputs) from stock Keras layers for `generator.keras`.
    """
    from layers import SubPixelConv2DTranspose

    L = keras.layers
    transposed = L.Conv2DTranspose if plain else SubPixelConv2DTranspose
    w = gan_training.scaled_width(config)
    init = gan_training.weight_init

    def up(filters):  # deconv 5x5/2: doubles height and width
        return transposed(filters, 5, strides=2, padding="same", kernel_initializer=init())

    def bn_relu(x):
        return L.ReLU()(L.BatchNormalization(momentum=0.9)(x))

    def cat(x):
        return concat_label(x, y, plain)

    z = keras.Input((config.latent_dim,), name="z")  # (N, 100)
    y = keras.Input((NUM_CLASSES,), name="label")  # (N, 10)
    x = bn_relu(L.Dense(w(1024), kernel_initializer=init())(cat(z)))  # (N, 110) -> (N, 1024)
    x = bn_relu(L.Dense(7 * 7 * w(128), kernel_initializer=init())(cat(x)))  # (N, 1034) -> (N, 6272)
    x = L.Reshape((7, 7, w(128)))(x)  # (N, 7, 7, 128)
    x = bn_relu(up(w(128))(cat(x)))  # (N, 7, 7, 138) -> (N, 14, 14, 128)
    # The notes' last deconvolution reads "5x5x3x138", a typo for one output channel.
    # float32 under a mixed --dtype-policy, as D's logit: samples and losses stay float32.
    image = L.Activation("sigmoid", dtype="float32")(up(1)(cat(x)))  # (N, 14, 14, 138) -> (N, 28, 28, 1)
    return keras.Model([z, y], image, name="generator")


def build_discriminator(config, plain=False):
    """D: [image (28, 28, 1), one-hot y (10,)] -> logit of "a real image of digit y" (N, 1).

    3,771,675 parameters at the notes' widths. The notes' D ends in a sigmoid; here it is folded
    into the loss (binary cross-entropy from logits, the same function computed stably).
    """
    L = keras.layers
    w = gan_training.scaled_width(config)
    init = gan_training.weight_init

    def conv(filters):  # conv 5x5/2: halves height and width
        return L.Conv2D(filters, 5, strides=2, padding="same", kernel_initializer=init())

    def lrelu(x):
        return L.LeakyReLU(negative_slope=config.leaky_slope)(x)

    def bn(x):
        return L.BatchNormalization(momentum=0.9)(x)

    def cat(x):
        return concat_label(x, y, plain)

    image = keras.Input((28, 28, 1), name="image")
    y = keras.Input((NUM_CLASSES,), name="label")  # (N, 10)
    x = lrelu(conv(w(11))(cat(image)))  # (N, 28, 28, 11) -> (N, 14, 14, 11)
    x = lrelu(bn(conv(w(74))(cat(x))))  # (N, 14, 14, 21) -> (N, 7, 7, 74)
    x = L.Flatten()(x)  # (N, 3626)
    x = lrelu(bn(L.Dense(w(1024), kernel_initializer=init())(cat(x))))  # (N, 3636) -> (N, 1024)
    logit = L.Dense(1, kernel_initializer=init(), dtype="float32")(cat(x))  # (N, 1034) -> (N, 1)
    return keras.Model([image, y], logit, name="discriminator")


def plain_copy(model, builder, config):
    """`model` rebuilt from stock Keras layers (`builder(config, plain=True)`), same weights."""
    plain = builder(config, plain=True)
    plain.set_weights(model.get_weights())
    return plain


def one_hot(labels):
    """Integer class ids (N,) -> float32 one-hot (N, 10)."""
    return np.eye(NUM_CLASSES, dtype="float32")[np.asarray(labels, dtype=int)]


# ---------------------------------------------------------------------------------------------
# The training step (the losses are the DCGAN ones: gan_training.discriminator_loss, generator_loss)


class ConditionalGAN(gan_training.GANState):
    """G, D, their Adam optimizers and the noise seed generator, with the training step."""

    def __init__(self, config):
        engine.set_seed(config.seed)
        adam = [keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1) for _ in "gd"]
        with precision.dtype_policy(config):
            generator, discriminator = build_generator(config), build_discriminator(config)
        super().__init__(config, generator, discriminator, *adam)

    def train_step(self, real, labels, z_d, z_g):
        """One D update on (real, G(z_d, y)), then one G update on G(z_g, y); y = `labels` (one-hot).

        D is shown every image with its label: a real digit with its own label should score high,
        a generated one low, whatever digit it looks like. As in the authors' code, the fake
        images of a step are drawn for the labels of that step's real batch. Returns the losses.
        """
        G, D = self.generator, self.discriminator
        g_opt, d_opt = self.g_optimizer, self.d_optimizer

        # (1) Update D: real digits with their labels against G's drawings of the same labels.
        def d_loss_fn():
            fake = keras.ops.stop_gradient(G([z_d, labels], training=True))
            real_logits = D([real, labels], training=True)
            fake_logits = D([fake, labels], training=True)
            d_real = keras.ops.mean(keras.ops.sigmoid(real_logits))
            return gan_training.discriminator_loss(real_logits, fake_logits), d_real

        # loss_scale: scaled under mixed_float16 (engine.apply unscales, skips an overflow).
        (d_loss, d_real), grads = engine.value_and_grad(
            d_loss_fn, D.trainable_variables, has_aux=True, loss_scale=d_opt
        )
        engine.apply(d_opt, grads, D.trainable_variables)

        # (2) Update G: make D take G's drawing of digit y for a real digit y.
        def g_loss_fn():
            fake_logits = D([G([z_g, labels], training=True), labels], training=True)
            d_fake = keras.ops.mean(keras.ops.sigmoid(fake_logits))
            return gan_training.generator_loss(fake_logits), d_fake

        (g_loss, d_fake), grads = engine.value_and_grad(
            g_loss_fn, G.trainable_variables, has_aux=True, loss_scale=g_opt
        )
        engine.apply(g_opt, grads, G.trainable_variables)
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}

    def step(self, real, labels):
        """`train_step` with noise drawn from the model's own seed generator."""
        shape = (keras.ops.shape(real)[0], self.config.latent_dim)
        z_d = keras.random.normal(shape, seed=self.noise)
        z_g = keras.random.normal(shape, seed=self.noise)
        return self.train_step(real, labels, z_d, z_g)

    def generate(self, z, labels, batch_size=256):
        """Images in [0, 1] from noise `z` and integer `labels` (NumPy), BatchNorm in inference mode."""
        return self.generator.predict([z, one_hot(labels)], batch_size=batch_size, verbose=0)


# ---------------------------------------------------------------------------------------------
# Quality: does G draw the digit it is asked for?


def label_accuracy(images, labels):
    """Fraction of `images` (in [0, 1]) that the project's digit classifier reads as `labels`."""
    from recipes.common import quality

    predicted = quality.class_probabilities(images).argmax(axis=1)
    return float(np.mean(predicted == np.asarray(labels)))


def evaluation_inputs(config):
    """Fixed noise and labels for scoring: `samples` images, classes 0..9 in turn (equal counts)."""
    count = max(NUM_CLASSES, config.samples - config.samples % NUM_CLASSES)
    z = gan_training.fixed_noise(config.seed + 1, count, config.latent_dim)
    return z, np.arange(count) % NUM_CLASSES


def grid_inputs(config, columns=10):
    """The per-epoch grid: row k asks for digit k, column j uses noise j (the same in every row)."""
    z = gan_training.fixed_noise(config.seed, columns, config.latent_dim)
    return np.tile(z, (NUM_CLASSES, 1)), np.repeat(np.arange(NUM_CLASSES), columns)


# ---------------------------------------------------------------------------------------------
# Data and outputs


def load_data(config):
    """uint8 images (N, 28, 28, 1) and int labels of a labelled data set."""
    if config.data_dir:
        raise cli.UsageError(
            "cgan needs class labels, which a folder of images does not have; "
            f"use --dataset {'|'.join(LABELLED_DATASETS)}"
        )
    images, labels = datasets.load_images(config.dataset, limit=config.limit)
    images = datasets.fit_images(images, 28, 1)
    if len(images) < config.batch_size:
        raise cli.UsageError(
            f"{config.dataset} has {len(images)} images, fewer than one batch of {config.batch_size}"
        )
    return images, labels


def batches(images, labels, config, epoch):
    """Shuffled full batches (images in [0, 1], one-hot labels); the order depends on (seed, epoch)."""
    arrays = (images, labels)
    for image_batch, label_batch in gan_training.shuffled_batches(
        arrays, config.batch_size, config.seed, epoch
    ):
        yield datasets.to_float(image_batch), one_hot(label_batch)


def save_figure63(gan, config, out):
    """The notes' figure 63: G's digits for its 64 labels, 8 per row, from fixed noise."""
    figure_labels = [int(c) for c in FIGURE63_LABELS.replace(" ", "")]
    z_figure = gan_training.fixed_noise(config.seed + 2, len(figure_labels), config.latent_dim)
    gan_training.save_grid(gan.generate(z_figure, figure_labels), out / "figure63.png", scale=3, cols=8)


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.cgan",
        description=__doc__.split("\n")[0],
        quick=QUICK,
    )
    images, labels = load_data(config)
    out = Path(config.out or "runs/cgan")
    print(
        f"Conditional DCGAN on {len(images)} labelled images ({config.dataset}), "
        f"backend {engine.backend()}"
    )

    gan = ConditionalGAN(config)
    z_grid, y_grid = grid_inputs(config)
    z_eval, y_eval = evaluation_inputs(config)

    def digit_score():  # FID, and how often the digit classifier reads the digit asked for
        from recipes.common import quality

        samples = gan.generate(z_eval, y_eval)
        return {**quality.score(samples), "label_accuracy": label_accuracy(samples, y_eval)}

    summary = gan_training.train_image_gan(
        gan,
        config,
        out,
        functools.partial(batches, images, labels, config),
        len(images) // config.batch_size,
        title="Conditional DCGAN losses",
        loss_keys=("d_loss", "g_loss"),
        sample=functools.partial(gan.generate, z_grid, y_grid),  # row k = digit k
        score=digit_score if config.dataset in DIGIT_DATASETS else None,
        grid_cols=10,
    )
    if "trained" in summary and "untrained" in summary:
        before = summary["untrained"]["label_accuracy"]
        after = summary["trained"]["label_accuracy"]
        print(f"Label accuracy (digit classifier agrees with y): untrained {before:.3f} -> {after:.3f}")
    save_figure63(gan, config, out)
    for model, build, name in (
        (gan.generator, build_generator, "generator"),
        (gan.discriminator, build_discriminator, "discriminator"),
    ):
        engine.save_model(plain_copy(model, build, config), out / f"{name}.keras")
    print(f"Outputs in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
