"""Pix2Pix: image-to-image translation with a conditional GAN (U-Net generator, 70x70 PatchGAN).

Reproduces section 9.11 of seeds/000 (Isola, Zhu, Zhou and Efros 2016, arXiv 1611.07004). G
translates an input image x into an output G(x); D sees pairs, (x, y) with the real target y or
(x, G(x)), and is a PatchGAN: one real/fake logit per 70x70 patch instead of one per image. The
objective of the notes:

    L_cGAN(G, D) = E[log D(x, y)] + E[log(1 - D(x, G(x)))]
    L_L1(G)      = E[|y - G(x)|_1]
    G*           = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G),  lambda = 100

with G trained on the non-saturating form -log D(x, G(x)), so that

    loss_G = gan + 100 * L1,   gan = -mean log sigmoid(D(x, G(x))),   L1 = mean |y - G(x)|
    loss_D = -mean log sigmoid(D(x, y)) - mean log(1 - sigmoid(D(x, G(x))))

averaged over the patches and pixels. There is no noise input z: dropout (rate 0.5, in the first
three decoder blocks, active during training) is the only source of randomness, as in the paper.

Networks, from the reusable blocks of layers/pix2pix.py (kernel 4, stride 2, weights N(0, 0.02)):
- G, the U-Net of the notes' table: encoder C64-C128-C256-C512-C512-... (`UNetDown`: conv,
  batch norm except on the first block, LeakyReLU 0.2) down to 1x1, decoder of `UNetUp` blocks
  (transposed conv, batch norm, dropout on the first three, ReLU, concatenated with the encoder
  output of the same size), then a transposed conv to 3 channels and tanh. The depth adapts to the
  image size: log2(size) encoder blocks, so 256x256 gives the notes' 8 blocks (256 -> 1x1x512) and
  the default 64x64 gives 6 (C64-C128-C256-C512-C512-C512). With `--filters 64` at 256 G has
  54,425,923 weights; the notes' 54,431,363 also counts a bias in each of the 13 batch-normed
  convolutions (5,440 weights that the batch norms' beta makes redundant).
- D, `PatchGAN`: C64-C128-C256 (stride 2), then two stride-1 convs after zero padding of 1, so a
  256x256 pair gives the notes' (N, 30, 30, 1) and a 64x64 pair (N, 6, 6, 1); each output sees a
  70x70 window of the input (tests/test_layers_pix2pix.py measures it), which at 64x64 is the whole
  image. D returns logits; the sigmoid of the notes is in the loss (`from_logits=True`).
The decoder blocks whose input has at most 2x2 pixels compute their transposed convolution as one
matrix product (same weights, same outputs; see `_compute_densely`): on JAX a convolution whose
input is smaller than its kernel is 30 to 40 times slower, which made the whole step 4 times
slower; torch gains 1.6 times on G's gradient, TensorFlow is unchanged.

Hyperparameters, from the reference code the notes cite (affinelayer/pix2pix-tensorflow): Adam
2e-4, beta1 0.5, lambda (l1 weight) 100, gan weight 1, 64 filters in G and D, batch-norm epsilon
1e-5. Where this recipe differs from the notes:
- batch size 8 instead of 1, for throughput on a CPU (`--batch-size 1` gives the notes' setting,
  and its quirk: the 1x1 bottleneck's batch norm then normalises one value per channel to 0);
- no random 286 -> 256 crop jitter; mirroring is on for facades, off for the embedded set (whose
  light falls from the left);
- the skips carry the encoder's activations (after LeakyReLU), as in the TensorFlow tutorial,
  where the notes' table concatenates the pre-activation outputs and applies ReLU to the whole;
- the held-out evaluation runs G in inference mode (moving batch-norm statistics, no dropout);
  the paper keeps dropout and batch statistics at test time.
G's and D's gradients are taken at the same weights (one forward pass of G per step): G's update
first, then D's on the same G(x).

Data (`--dataset`):
- `buildings` (default, embedded, no network): procedurally drawn building fronts, a small stand-in
  for the pix2pix facades set. The input is a label map (flat colours for sky, roof, brick wall,
  plaster wall, window, door); the target is the rendered front: a graded sky, brick courses,
  window frames with a centre cross and a shadow below, glass lighter at the top, light from the
  left. 1,000 training and 200 held-out pairs, drawn from fixed seeds.
- `facades`: the real CMP facades pairs of the paper (400 train, 106 test; label map -> photo),
  downloaded once from http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/facades.tar.gz (or
  $RECIPES_DATA_ORIGIN) into the Keras cache. No published sha256 was found for the archive, so
  it is downloaded without a hash and checked by its contents instead (JPEG pairs under
  train/ and test/).
- `--data-dir DIR`: any pix2pix-style folder (train/ and test/ or val/ of side-by-side A|B images);
  `--direction` picks A -> B or B -> A (facades: B -> A, labels to photos).

Quality is the held-out L1 distance between G(x) and y (pixels in [-1, 1], the scale of the L1
loss), next to three references: the input copy |x - y|, the untrained generator, and the best
per-pixel colour lookup learnt from the training pairs (`pixelwise_baseline`), which G must beat
to show that it draws from the layout around a pixel (frames, shadows, brick courses), not only
from its label.

Outputs (under --out, default runs/pix2pix): samples/epoch-NNN.png (input | output | target rows
of held-out pairs, every epoch), triptychs.png, losses.png, metrics.csv, tensorboard/,
checkpoints/, generator.keras and discriminator.keras (`import layers`, then
`keras.saving.load_model(path)`), summary.json.

    python -m recipes.pix2pix                          # buildings, 64x64: 4-6 min on 2 CPU cores
    KERAS_BACKEND=jax python -m recipes.pix2pix --epochs 2
    python -m recipes.pix2pix --dataset facades --image-size 256 --batch-size 1 --epochs 200
"""

import dataclasses
import io
import json
import math
import os
import sys
import tarfile
import time
import types
from pathlib import Path

import numpy as np

import datasets
from datasets.remote import DatasetUnavailable
from recipes import engine
from recipes.common import cli, gan_training

keras = cli.lazy_import("keras")

SECTION = "A 9.11"
DATASETS = ("buildings", "facades")
FACADES_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/"
FACADES_FILE = "facades.tar.gz"
BUILDINGS_TRAIN, BUILDINGS_TEST = 1000, 200
DENSE_MAX_PIXELS = 2  # decoder inputs up to 2x2 are upsampled by a matrix product (see _compute_densely)
SAMPLES = 6  # held-out pairs shown in the triptychs


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(8, "number of training epochs")
    batch_size: int = cli.option(8, "pairs per training step (the notes' reference code: 1)")
    dataset: str = cli.option("buildings", "paired data set", choices=DATASETS)
    data_dir: str = cli.option(
        None, "a pix2pix-style folder (train/ and test/ or val/ of side-by-side A|B images)"
    )
    direction: str = cli.option(
        "BtoA",
        "side-by-side pairs: translate A -> B or B -> A (facades: BtoA, labels to photos)",
        choices=("AtoB", "BtoA"),
    )
    image_size: int = cli.option(
        64, "image side, a power of 2 >= 32; 256 gives the notes' 8-block U-Net and (N,30,30,1) D"
    )
    filters: int = cli.option(
        None, "base width of G and D (default: the notes' 64 at --image-size 256, else 16 for a CPU)"
    )
    learning_rate: float = cli.option(2e-4, "Adam learning rate of G and D")
    beta_1: float = cli.option(0.5, "Adam beta_1 of G and D")
    l1_weight: float = cli.option(100.0, "lambda, the weight of the L1 term in G's loss")
    gan_weight: float = cli.option(1.0, "the weight of the cGAN term in G's loss")
    dropout: bool = cli.option(True, "dropout 0.5 in the first three decoder blocks (G's noise)")
    flip: bool = cli.option(
        None, "mirror random pairs (default: off for buildings, on for facades and --data-dir)"
    )
    train_pairs: int = cli.option(None, "train on the first N pairs only")
    test_pairs: int = cli.option(None, "evaluate on the first N held-out pairs only")
    jit: bool = cli.option(True, "compile the training step (jax.jit / tf.function)")


QUICK = dict(epochs=4, batch_size=8, image_size=32, filters=8, train_pairs=256, test_pairs=64)


# ---------------------------------------------------------------------------------------------
# Models


def _init():
    return keras.initializers.RandomNormal(stddev=0.02)


def _initializer(kernel_initializer):
    return _init() if kernel_initializer is None else keras.initializers.get(kernel_initializer)


def unet_filters(config):
    """Encoder widths: f, 2f, 4f, 8f, 8f, ... down to 1x1 (log2(image_size) blocks)."""
    depth = int(round(math.log2(config.image_size)))
    return [config.filters * min(2**i, 8) for i in range(depth)]


def build_generator(config, kernel_initializer=None, dense_bottleneck=True):
    """G, the U-Net: image (size, size, 3) in [-1, 1] -> image (size, size, 3) in [-1, 1].

    Convolution kernels are drawn from N(0, 0.02) unless `kernel_initializer` says otherwise
    (the tests build the 54-million-weight 256x256 U-Net with zeros, which is instant).
    """
    from layers import SubPixelConv2DTranspose, UNetDown, UNetUp

    size = config.image_size
    widths = unet_filters(config)
    image = keras.Input((size, size, 3), name="input_image")
    x, skips = image, []
    for i, filters in enumerate(widths):
        x = UNetDown(
            filters,
            apply_batchnorm=i > 0,
            kernel_initializer=_initializer(kernel_initializer),
            name=f"down{i + 1}",
        )(x)
        skips.append(x)
    # Decoder: mirror the encoder, each block concatenated with the encoder output of its size.
    for j, i in enumerate(range(len(widths) - 2, -1, -1)):
        block = UNetUp(
            widths[i],
            apply_dropout=config.dropout and j < 3,
            kernel_initializer=_initializer(kernel_initializer),
            name=f"up{j + 1}",
        )
        if dense_bottleneck and x.shape[1] <= DENSE_MAX_PIXELS:
            _compute_densely(block.conv)
        x = block(x, skips[i])
    x = SubPixelConv2DTranspose(
        3,
        4,
        strides=2,
        padding="same",
        kernel_initializer=_initializer(kernel_initializer),
        name="to_rgb",
    )(x)
    output = keras.layers.Activation("tanh", name="tanh")(x)
    return keras.Model(image, output, name="generator")


def _scatter_matrix(n_in, kernel_size, stride, padding):
    """0/1 array (n_in, kernel_size, n_out): input i, kernel tap t -> output i * stride + t - crop."""
    if padding == "same":
        crop, n_out = max(kernel_size - stride, 0) // 2, n_in * stride
    else:
        crop, n_out = 0, (n_in - 1) * stride + max(kernel_size, stride)
    matrix = np.zeros((n_in, kernel_size, n_out), "float32")
    for i in range(n_in):
        for t in range(kernel_size):
            if 0 <= i * stride + t - crop < n_out:
                matrix[i, t, i * stride + t - crop] = 1.0
    return matrix


def _dense_transposed_conv_call(layer, inputs):
    """`Conv2DTranspose.call` as one matrix product, for inputs of a few pixels.

    The whole map (h * w * in) -> (h' * w' * filters) is a dense matrix built from the kernel and
    two 0/1 placement arrays; gradients reach `layer.kernel` through the einsum.
    """
    ops = keras.ops
    _, height, width, channels = inputs.shape
    (kh, kw), (sh, sw) = layer.kernel_size, layer.strides
    rows = _scatter_matrix(height, kh, sh, layer.padding)
    cols = _scatter_matrix(width, kw, sw, layer.padding)
    out_h, out_w = rows.shape[-1], cols.shape[-1]
    # kernel (kh, kw, filters, in) -> matrix ((h, w, in), (h', w', filters)).
    matrix = ops.einsum("iao,jbp,abfc->ijcopf", rows, cols, layer.kernel)
    matrix = ops.reshape(matrix, (height * width * channels, out_h * out_w * layer.filters))
    outputs = ops.matmul(ops.reshape(inputs, (-1, height * width * channels)), matrix)
    outputs = ops.reshape(outputs, (-1, out_h, out_w, layer.filters))
    if layer.use_bias:
        outputs = outputs + layer.bias
    return outputs if layer.activation is None else layer.activation(outputs)


def _compute_densely(layer):
    """Makes a `Conv2DTranspose` (built or not) compute through `_dense_transposed_conv_call`.

    Same weights, config and outputs; a saved model holds the plain layer. Why: XLA:CPU (JAX)
    swaps the operands of a convolution whose input is smaller than its kernel, which makes the
    U-Net's 2x2 decoder block 30 to 40 times slower than this matrix product (batch 16, 512
    channels: 2.2 s against 60 ms forward, 4.4 s against 0.11 s with gradients).
    """
    layer.call = types.MethodType(_dense_transposed_conv_call, layer)


def build_discriminator(config, kernel_initializer=None):
    """D, the PatchGAN: (input, target) images -> patch logits (N, size/8 - 2, size/8 - 2, 1)."""
    from layers import PatchGAN

    shape = (config.image_size, config.image_size, 3)
    inputs = keras.Input(shape, name="input_image")
    target = keras.Input(shape, name="target_image")
    init = _initializer(kernel_initializer)
    logits = PatchGAN(config.filters, kernel_initializer=init, name="patchgan")(inputs, target)
    return keras.Model([inputs, target], logits, name="discriminator")


# ---------------------------------------------------------------------------------------------
# Losses and the training step


def _bce(labels_like, logits, label):
    labels = keras.ops.full_like(labels_like, label)
    return keras.ops.mean(keras.losses.binary_crossentropy(labels, logits, from_logits=True))


def discriminator_loss(real_logits, fake_logits):
    """-[log D(x, y) + log(1 - D(x, G(x)))], averaged over the batch and the patches."""
    return _bce(real_logits, real_logits, 1.0) + _bce(fake_logits, fake_logits, 0.0)


def generator_loss(fake_logits, fake, target, gan_weight=1.0, l1_weight=100.0):
    """(loss_G, gan, l1): loss_G = gan_weight * gan + l1_weight * l1, as in section 9.11.

    gan = -mean log D(x, G(x)) (non-saturating), l1 = mean |target - G(x)| over every pixel.
    """
    gan = _bce(fake_logits, fake_logits, 1.0)
    l1 = keras.ops.mean(keras.ops.abs(keras.ops.cast(target, fake.dtype) - fake))
    return gan_weight * gan + l1_weight * l1, gan, l1


class Pix2Pix:
    """G, D and their Adam optimizers, with one training step."""

    def __init__(self, config):
        self.config = config
        engine.set_seed(config.seed)
        self.generator = build_generator(config)
        self.discriminator = build_discriminator(config)
        self.g_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1)
        self.d_optimizer = keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1)
        self.g_optimizer.build(self.generator.trainable_variables)
        self.d_optimizer.build(self.discriminator.trainable_variables)

    @property
    def state(self):
        # G's dropout seed generators are variables of G, so checkpoints and jit carry them.
        return {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "g_optimizer": self.g_optimizer,
            "d_optimizer": self.d_optimizer,
        }

    def train_step(self, inputs, targets):
        """One G update and one D update from the same G(x); returns the losses.

        The only randomness is G's dropout, drawn from the seed generators its layers own.
        """
        G, D, config = self.generator, self.discriminator, self.config
        inputs, targets = keras.ops.convert_to_tensor(inputs), keras.ops.convert_to_tensor(targets)

        def g_loss_fn():
            fake = G(inputs, training=True)
            fake_logits = D([inputs, fake], training=True)
            loss, gan, l1 = generator_loss(
                fake_logits, fake, targets, config.gan_weight, config.l1_weight
            )
            return loss, (gan, l1, fake)

        (g_loss, (g_gan, g_l1, fake)), grads = engine.value_and_grad(
            g_loss_fn, G.trainable_variables, has_aux=True
        )
        self.g_optimizer.apply(grads, G.trainable_variables)
        fake = keras.ops.stop_gradient(fake)

        def d_loss_fn():
            real_logits = D([inputs, targets], training=True)
            fake_logits = D([inputs, fake], training=True)
            d_real = keras.ops.mean(keras.ops.sigmoid(real_logits))
            d_fake = keras.ops.mean(keras.ops.sigmoid(fake_logits))
            return discriminator_loss(real_logits, fake_logits), (d_real, d_fake)

        (d_loss, (d_real, d_fake)), grads = engine.value_and_grad(
            d_loss_fn, D.trainable_variables, has_aux=True
        )
        self.d_optimizer.apply(grads, D.trainable_variables)
        return {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "g_gan": g_gan,
            "g_l1": g_l1,
            "d_real": d_real,
            "d_fake": d_fake,
        }

    step = train_step  # No noise to draw: the step the loop runs is the parity-tested one.

    def translate(self, inputs, batch_size=32):
        """G(x) for uint8 or [-1, 1] float inputs, in inference mode, as float32 in [-1, 1]."""
        inputs = _as_float(inputs)
        return self.generator.predict(inputs, batch_size=batch_size, verbose=0)


def _as_float(images):
    return datasets.to_float(images, (-1.0, 1.0)) if images.dtype == np.uint8 else images


def pixelwise_baseline(x_train, y_train, x_test, levels=16, max_pixels=2_000_000):
    """The best per-pixel colour lookup learnt from the training pairs, applied to `x_test`.

    Input colours are quantised to `levels` steps per channel; each cell predicts the median
    target colour of its training pixels (the L1-optimal constant), unseen cells the overall
    median. A translation that beats it uses more than the colour of the pixel it draws: the
    layout around it (frames, shadows, brick courses, position). uint8 (N, H, W, 3).
    """

    def cells(images):
        q = images.astype(np.int64) * levels // 256
        return (q[..., 0] * levels + q[..., 1]) * levels + q[..., 2]

    keys, values = cells(x_train).ravel(), y_train.reshape(-1, 3)
    if len(keys) > max_pixels:
        pick = np.random.default_rng(0).choice(len(keys), max_pixels, replace=False)
        keys, values = keys[pick], values[pick]
    n_cells = levels**3
    table = np.tile(np.median(values, axis=0), (n_cells, 1))
    counts = np.bincount(keys, minlength=n_cells)
    seen = counts > 0
    middle = (np.cumsum(counts) - counts + (counts - 1) // 2)[seen]
    for channel in range(3):
        order = np.lexsort((values[:, channel], keys))
        table[seen, channel] = values[order, channel][middle]
    return table[cells(x_test)].astype(np.uint8)


def mean_l1(a, b):
    """Mean absolute difference of two image sets, in [-1, 1] pixel units."""
    return float(np.mean(np.abs(_as_float(a).astype(np.float64) - _as_float(b))))


# ---------------------------------------------------------------------------------------------
# Data: the embedded building fronts, facades, pix2pix folders

PALETTE = np.array(
    [  # Label colours of the input maps: sky, roof, brick wall, plaster wall, window, door.
        (30, 30, 140),
        (210, 50, 40),
        (40, 110, 230),
        (70, 200, 220),
        (250, 180, 30),
        (120, 220, 90),
    ],
    np.uint8,
)
SKY, ROOF, BRICK, PLASTER, WINDOW, DOOR = range(6)


def render_buildings(count, size=64, seed=0):
    """`count` (label map, rendered front) pairs as uint8 (count, size, size, 3) arrays.

    Pair i depends only on (seed, i), so the first n pairs are the same for any count >= n. The
    geometry scales with size (64 is the reference).
    """
    labels = np.empty((count, size, size, 3), np.uint8)
    images = np.empty((count, size, size, 3), np.uint8)
    for i in range(count):
        label_map, image = _render_building(np.random.default_rng([seed, i]), size)
        labels[i] = PALETTE[label_map]
        images[i] = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
    return labels, images


def _render_building(rng, size):
    s = size / 64
    px = lambda v: max(1, int(round(v * s)))  # noqa: E731
    rows = np.arange(size, dtype=np.float32)[:, None, None]
    cols = np.arange(size, dtype=np.float32)[None, :, None]
    label = np.full((size, size), SKY, np.uint8)
    # Sky: a vertical gradient from deep blue to a pale horizon.
    image = np.broadcast_to(
        np.array([0.35, 0.55, 0.85]) + (rows / size) * np.array([0.4, 0.3, 0.1]), (size, size, 3)
    ).copy()

    left = int(rng.integers(0, px(10) + 1))
    right = size - int(rng.integers(0, px(10) + 1))
    top = int(rng.integers(px(6), px(18) + 1))
    roof = px(int(rng.integers(3, 6)))
    wall_top = top + roof
    wall = BRICK if rng.random() < 0.5 else PLASTER
    label[top:, left:right] = wall
    label[top:wall_top, left:right] = ROOF

    y, x = np.mgrid[0:size, 0:size]
    if wall == BRICK:  # Courses of 4 px, joints every 8 px, offset on alternate courses.
        course = (y - wall_top) // px(4)
        mortar = ((y - wall_top) % px(4) == px(4) - 1) | (
            (x - left + (course % 2) * px(4)) % px(8) == px(8) - 1
        )
        wall_color = np.where(mortar[..., None], [0.80, 0.76, 0.70], [0.62, 0.30, 0.22])
    else:
        wall_color = np.broadcast_to(
            np.array([0.86, 0.80, 0.66]) - (rows / size) * 0.08, (size, size, 3)
        )
    # Light from the left: the front darkens towards its right edge.
    light = 1.08 - 0.25 * np.clip((cols - left) / max(right - left, 1), 0, 1)
    wall_color = wall_color * light
    region = label == wall
    image[region] = wall_color[region]
    image[top:wall_top, left:right] = [0.30, 0.30, 0.36]
    image[top, left:right] = [0.60, 0.60, 0.66]  # The roof's lit upper edge.

    # Windows on a grid, a door in the bottom row.
    n_cols, n_rows = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    cell_w = (right - left) / n_cols
    cell_h = (size - wall_top) / (n_rows + 1)
    win_w = max(px(4), int(cell_w * rng.uniform(0.4, 0.65)))
    win_h = max(px(5), int(cell_h * rng.uniform(0.45, 0.7)))
    door_col = int(rng.integers(n_cols))
    frame, shadow = np.array([0.95, 0.95, 0.92]), 0.6
    t = px(1)
    for r in range(n_rows + 1):
        for c in range(n_cols):
            x0 = int(left + c * cell_w + (cell_w - win_w) / 2)
            if r == n_rows:
                if c != door_col:
                    continue
                w, h = max(px(6), int(cell_w * 0.5)), max(px(8), int(cell_h * 0.9))
                x0, y0 = int(left + c * cell_w + (cell_w - w) / 2), size - h
                label[y0:, x0 : x0 + w] = DOOR
                image[y0:, x0 : x0 + w] = frame
                image[y0 + t :, x0 + t : x0 + w - t] = [0.35, 0.20, 0.10]
                continue
            y0 = int(wall_top + r * cell_h + (cell_h - win_h) / 2)
            label[y0 : y0 + win_h, x0 : x0 + win_w] = WINDOW
            image[y0 + win_h : y0 + win_h + t, x0 : x0 + win_w] *= shadow
            glass = np.linspace(0, 1, win_h)[:, None, None]
            image[y0 : y0 + win_h, x0 : x0 + win_w] = (
                np.array([0.40, 0.55, 0.70]) * (1 - glass) + np.array([0.10, 0.16, 0.25]) * glass
            )
            image[y0 : y0 + win_h, x0 : x0 + win_w][[*range(t), *range(win_h - t, win_h)]] = frame
            image[y0 : y0 + win_h, x0 : x0 + t] = frame
            image[y0 : y0 + win_h, x0 + win_w - t : x0 + win_w] = frame
            mid_y, mid_x = y0 + win_h // 2, x0 + win_w // 2
            image[mid_y : mid_y + t, x0 : x0 + win_w] = frame  # The centre cross.
            image[y0 : y0 + win_h, mid_x : mid_x + t] = frame
    return label, image


def _split_pair(image, direction):
    """A side-by-side A|B pair -> (input, target) for the direction."""
    half = image.shape[1] // 2
    a, b = image[:, :half], image[:, half : 2 * half]
    return (a, b) if direction == "AtoB" else (b, a)


def _decode_pairs(files, size, direction, limit):
    """Reads side-by-side pairs from (name, file object or path) items; uint8 (N, size, size, 3)."""
    from PIL import Image

    inputs, targets = [], []
    for name, source in files[:limit] if limit is not None else files:
        try:
            with Image.open(source) as picture:
                picture = np.asarray(picture.convert("RGB"))
        except Exception as error:
            raise DatasetUnavailable(f"cannot read the image pair {name}: {error}") from None
        if picture.shape[1] < 2 or picture.shape[1] % 2:
            raise DatasetUnavailable(
                f"{name} is not a side-by-side A|B pair (width {picture.shape[1]} is odd)"
            )
        for half, out in zip(_split_pair(picture, direction), (inputs, targets)):
            resized = Image.fromarray(half).resize((size, size), Image.BICUBIC)
            out.append(np.asarray(resized))
    return np.stack(inputs), np.stack(targets)


def _facades_archive():
    """The facades archive in the Keras cache, downloaded on first use (no published hash)."""
    from keras.utils import get_file

    base = os.environ.get("RECIPES_DATA_ORIGIN", FACADES_URL).rstrip("/") + "/"
    url = base + FACADES_FILE
    cache_dir = os.environ.get("KERAS_HOME")
    try:
        if cache_dir:
            os.makedirs(cache_dir, exist_ok=True)
        return get_file(FACADES_FILE, url, cache_subdir="datasets", cache_dir=cache_dir)
    except Exception as error:
        reason = " ".join(str(error).split())[:160] or type(error).__name__
        raise DatasetUnavailable(
            f"could not download facades from {url} (no network?): {reason}. "
            "Use the embedded pairs instead: --dataset buildings"
        ) from None


def load_facades(config, split):
    """The facades pairs of `split` ("train" or "test") from the cached archive, labels -> photo."""
    path = _facades_archive()
    try:
        with tarfile.open(path) as archive:
            members = sorted(
                (m for m in archive.getmembers() if m.isfile() and m.name.endswith(".jpg")),
                key=lambda m: _natural_key(m.name),
            )
            members = [m for m in members if Path(m.name).parent.name == split]
            files = [(m.name, io.BytesIO(archive.extractfile(m).read())) for m in members]
    except (tarfile.TarError, OSError, EOFError) as error:
        raise DatasetUnavailable(
            f"{path} is not a readable facades archive ({error}); delete it to download again. "
            "Use the embedded pairs instead: --dataset buildings"
        ) from None
    if not files:
        raise DatasetUnavailable(
            f"{path} holds no {split}/*.jpg pairs; delete it to download again. "
            "Use the embedded pairs instead: --dataset buildings"
        )
    limit = config.train_pairs if split == "train" else config.test_pairs
    return _decode_pairs(files, config.image_size, config.direction, limit)


def load_folder_pairs(config, split):
    """Side-by-side pairs from `data_dir/train` or, for the held-out split, `test/` or `val/`."""
    root = Path(config.data_dir)
    names = ("train",) if split == "train" else ("test", "val")
    for name in names:
        folder = root / name
        files = sorted(
            (p for p in folder.glob("*") if p.suffix.lower() in datasets.images.IMAGE_SUFFIXES),
            key=lambda p: _natural_key(p.name),
        )
        if files:
            limit = config.train_pairs if split == "train" else config.test_pairs
            return _decode_pairs(
                [(str(p), p) for p in files], config.image_size, config.direction, limit
            )
    raise DatasetUnavailable(
        f"no image pairs found in {' or '.join(str(root / n) for n in names)} "
        "(a pix2pix folder has train/ and test/ or val/). Use the embedded pairs: --dataset buildings"
    )


def _natural_key(name):
    stem = Path(name).stem
    return (0, int(stem), name) if stem.isdigit() else (1, 0, name)


def load_pairs(config):
    """(train_inputs, train_targets, test_inputs, test_targets), uint8 (N, size, size, 3)."""
    if config.data_dir:
        train, test = load_folder_pairs(config, "train"), load_folder_pairs(config, "test")
    elif config.dataset == "facades":
        train, test = load_facades(config, "train"), load_facades(config, "test")
    else:
        n_train = min(config.train_pairs or BUILDINGS_TRAIN, BUILDINGS_TRAIN)
        n_test = min(config.test_pairs or BUILDINGS_TEST, BUILDINGS_TEST)
        train = render_buildings(n_train, config.image_size, seed=0)
        test = render_buildings(n_test, config.image_size, seed=1)
    return (*train, *test)


def pair_batches(inputs, targets, config, epoch, flip):
    """Shuffled full batches of [-1, 1] floats; pairs mirrored at random when `flip`."""
    rng = np.random.default_rng([config.seed, epoch, 1])
    for x, y in gan_training.shuffled_batches((inputs, targets), config.batch_size, config.seed, epoch):
        x, y = _as_float(x), _as_float(y)
        if flip:
            mirror = rng.random(len(x)) < 0.5
            x[mirror], y[mirror] = x[mirror, :, ::-1], y[mirror, :, ::-1]
        yield x, y


def triptychs(inputs, outputs, targets):
    """Rows of (input, output, target) in [0, 1], for `gan_training.save_grid(..., cols=3)`."""
    rows = np.stack([_as_float(inputs), _as_float(outputs), _as_float(targets)], axis=1)
    return (rows.reshape(-1, *rows.shape[2:]) + 1.0) / 2.0


def check_config(config):
    """Raises `cli.UsageError` for settings the networks cannot take; fills in size defaults."""
    size = config.image_size
    if size < 32 or size & (size - 1):
        raise cli.UsageError(f"--image-size must be a power of 2 and at least 32, got {size}")
    if config.filters is None:
        config.filters = 64 if size >= 256 else 16
    if config.filters < 1:
        raise cli.UsageError(f"--filters must be at least 1, got {config.filters}")
    for name in ("train_pairs", "test_pairs"):
        value = getattr(config, name)
        if value is not None and value < 1:
            raise cli.UsageError(f"--{name.replace('_', '-')} must be at least 1, got {value}")


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.pix2pix", description=__doc__.split("\n")[0], quick=QUICK
    )
    check_config(config)
    started = time.perf_counter()
    x_train, y_train, x_test, y_test = load_pairs(config)
    if len(x_train) < config.batch_size:
        raise cli.UsageError(
            f"{len(x_train)} training pairs are fewer than one batch of {config.batch_size}"
        )
    name = config.data_dir or config.dataset
    flip = config.flip if config.flip is not None else name != "buildings"
    out = Path(config.out or "runs/pix2pix")
    (out / "samples").mkdir(parents=True, exist_ok=True)
    print(
        f"Pix2Pix on {name}: {len(x_train)} training and {len(x_test)} held-out pairs "
        f"{x_train.shape[1:]}, backend {engine.backend()}"
    )

    gan = Pix2Pix(config)
    print(
        f"U-Net: {len(unet_filters(config))} encoder blocks, {gan.generator.count_params():,} weights; "
        f"PatchGAN output {gan.discriminator.output_shape[1:]}, "
        f"{gan.discriminator.count_params():,} weights"
    )
    step = engine.function(gan.step, list(gan.state.values()), jit=config.jit)
    loop = engine.Loop(out, gan.state, resume=config.resume)
    summary_path = out / "summary.json"
    if loop.epoch and summary_path.exists():
        summary = json.loads(summary_path.read_text())
    else:
        summary = {
            "l1_baseline": mean_l1(x_test, y_test),
            "l1_pixelwise": mean_l1(pixelwise_baseline(x_train, y_train, x_test), y_test),
            "l1_untrained": mean_l1(gan.translate(x_test), y_test),
        }
    print(
        f"Held-out L1: input copy {summary['l1_baseline']:.4f}, colour lookup "
        f"{summary['l1_pixelwise']:.4f}, untrained G {summary['l1_untrained']:.4f}"
    )
    shown = slice(0, min(SAMPLES, len(x_test)))

    def on_epoch_end(epoch, logs):
        outputs = gan.translate(x_test)
        l1 = mean_l1(outputs, y_test)
        print(f"  held-out L1 {l1:.4f} (input copy {summary['l1_baseline']:.4f})")
        grid = triptychs(x_test[shown], outputs[shown], y_test[shown])
        gan_training.save_grid(grid, out / "samples" / f"epoch-{epoch:03d}.png", cols=3)
        return {"l1_heldout": l1}

    history = loop.fit(
        step,
        lambda epoch: pair_batches(x_train, y_train, config, epoch, flip),
        epochs=config.epochs,
        steps_per_epoch=len(x_train) // config.batch_size,
        on_epoch_end=on_epoch_end,
    )
    outputs = gan.translate(x_test)
    scale = max(1, 192 // config.image_size)
    gan_training.save_grid(
        triptychs(x_test[shown], outputs[shown], y_test[shown]), out / "triptychs.png", scale, cols=3
    )
    if history:
        gan_training.plot_history(
            history,
            out / "losses.png",
            "Pix2Pix losses",
            ["d_loss", "g_gan", "g_l1"],
            score_key="l1_heldout",
            score_label="held-out L1",
        )
    gan.generator.save(out / "generator.keras")
    gan.discriminator.save(out / "discriminator.keras")
    summary.update(
        l1_heldout=mean_l1(outputs, y_test),
        epochs=loop.epoch,
        backend=engine.backend(),
        seconds=time.perf_counter() - started,
        config=dataclasses.asdict(config),
    )
    print(
        f"Held-out L1 after {loop.epoch} epochs: {summary['l1_heldout']:.4f} (input copy "
        f"{summary['l1_baseline']:.4f}, colour lookup {summary['l1_pixelwise']:.4f}, untrained "
        f"{summary['l1_untrained']:.4f})"
    )
    summary_path.write_text(json.dumps(summary, indent=2))
    print(f"Outputs in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
