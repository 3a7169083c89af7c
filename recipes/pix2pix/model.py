"""Pix2Pix's networks (U-Net G, PatchGAN D), the losses of A 9.11 and the training step."""

import math

import numpy as np

import datasets
from recipes import engine
from recipes.common import cli, gan_training, precision

keras = cli.lazy_import("keras")

DENSE_MAX_PIXELS = 2  # decoder inputs up to 2x2 upsample by one matrix product (MatMulConv2DTranspose)


# ---------------------------------------------------------------------------------------------
# Models, from the reusable blocks of layers/pix2pix.py (kernel 4, stride 2, weights N(0, 0.02))


def _initializer(kernel_initializer):
    if kernel_initializer is None:
        return gan_training.weight_init()
    return keras.initializers.get(kernel_initializer)


def unet_filters(config):
    """Encoder widths: f, 2f, 4f, 8f, 8f, ... down to 1x1 (log2(image_size) blocks).

    256x256 gives the notes' 8 blocks (256 -> 1x1x512), the default 64x64 gives 6
    (C64-C128-C256-C512-C512-C512).
    """
    depth = int(round(math.log2(config.image_size)))
    return [config.filters * min(2**i, 8) for i in range(depth)]


def build_generator(config, kernel_initializer=None, dense_bottleneck=True):
    """G, the U-Net of the notes' table: image (size, size, 3) in [-1, 1] -> image in [-1, 1].

    Encoder of `UNetDown` blocks (conv, batch norm except on the first, LeakyReLU 0.2) down to
    1x1; decoder of `UNetUp` blocks (transposed conv, batch norm, dropout on the first three,
    ReLU, concatenated with the encoder output of the same size); a transposed conv to 3 channels
    and tanh. With `--filters 64` at 256 G has 54,425,923 weights; the notes' 54,431,363 also
    counts a bias in each of the 13 batch-normed convolutions (redundant with the batch norms'
    beta). The skips carry the encoder's activations (after LeakyReLU), as in the TensorFlow
    tutorial, where the notes' table concatenates the pre-activation outputs and applies ReLU to
    the whole.

    Decoder blocks whose input has at most 2x2 pixels compute their transposed convolution as one
    matrix product (`UNetUp(matmul=True)`; same weights and outputs) unless `dense_bottleneck` is
    False: on JAX a convolution whose input is smaller than its kernel is 30 to 40 times slower,
    which made the whole step 4 times slower; torch gains 1.6 times on G's gradient.
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
        )(x)  # (N, size / 2^(i+1), size / 2^(i+1), filters)
        skips.append(x)
    # Decoder: mirror the encoder, each block concatenated with the encoder output of its size.
    for j, i in enumerate(range(len(widths) - 2, -1, -1)):
        x = UNetUp(
            widths[i],
            apply_dropout=config.dropout and j < 3,  # G's only noise, as in the paper: no z
            kernel_initializer=_initializer(kernel_initializer),
            matmul=dense_bottleneck and x.shape[1] <= DENSE_MAX_PIXELS,
            name=f"up{j + 1}",
        )(x, skips[i])  # (N, 2h, 2w, widths[i] + widths[i])
    x = SubPixelConv2DTranspose(
        3,
        4,
        strides=2,
        padding="same",
        kernel_initializer=_initializer(kernel_initializer),
        name="to_rgb",
    )(x)
    # float32 under a mixed --dtype-policy, as D's logits: the L1 term and the outputs stay float32.
    output = keras.layers.Activation("tanh", dtype="float32", name="tanh")(x)  # (N, size, size, 3)
    return keras.Model(image, output, name="generator")


def build_discriminator(config, kernel_initializer=None):
    """D, the 70x70 PatchGAN: (input, target) images -> patch logits (N, size/8 - 2, size/8 - 2, 1).

    One real/fake logit per 70x70 patch instead of one per image: a 256x256 pair gives the notes'
    (N, 30, 30, 1), a 64x64 pair (N, 6, 6, 1), where each output sees the whole image. D returns
    logits; the sigmoid of the notes is in the loss (`from_logits=True`).
    """
    from layers import PatchGAN

    shape = (config.image_size, config.image_size, 3)
    inputs = keras.Input(shape, name="input_image")
    target = keras.Input(shape, name="target_image")
    init = _initializer(kernel_initializer)
    logits = PatchGAN(config.filters, kernel_initializer=init, name="patchgan")(inputs, target)
    # No weights: PatchGAN returns its compute dtype; the loss wants float32 under a mixed policy.
    logits = keras.layers.Activation("linear", dtype="float32", name="logits")(logits)
    return keras.Model([inputs, target], logits, name="discriminator")


# ---------------------------------------------------------------------------------------------
# Losses and the training step
#
#     L_cGAN(G, D) = E[log D(x, y)] + E[log(1 - D(x, G(x)))],   L_L1(G) = E[|y - G(x)|_1]
#     G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G),        lambda = 100
#
# with G trained on the non-saturating form -log D(x, G(x)); every mean runs over the batch, the
# patches and the pixels.


def _bce(labels_like, logits, label):
    labels = keras.ops.full_like(labels_like, label)
    return keras.ops.mean(keras.losses.binary_crossentropy(labels, logits, from_logits=True))


def discriminator_loss(real_logits, fake_logits):
    """-[log D(x, y) + log(1 - D(x, G(x)))], averaged over the batch and the patches."""
    return _bce(real_logits, real_logits, 1.0) + _bce(fake_logits, fake_logits, 0.0)


def generator_loss(fake_logits, fake, target, gan_weight=1.0, l1_weight=100.0):
    """(loss_G, gan, l1): loss_G = gan_weight * gan + l1_weight * l1, as in A 9.11.

    gan = -mean log D(x, G(x)) (non-saturating), l1 = mean |target - G(x)| over every pixel.
    """
    gan = _bce(fake_logits, fake_logits, 1.0)
    l1 = keras.ops.mean(keras.ops.abs(keras.ops.cast(target, fake.dtype) - fake))
    return gan_weight * gan + l1_weight * l1, gan, l1


class Pix2Pix(gan_training.GANState):
    """G, D and their Adam optimizers (2e-4, beta1 0.5), with one training step.

    Dropout is G's only noise, drawn from the seed generators its layers own, which are variables
    of G, so checkpoints and jit carry them; GANState's noise seed generator goes unused.
    """

    def __init__(self, config):
        engine.set_seed(config.seed)
        with precision.dtype_policy(config):
            generator, discriminator = build_generator(config), build_discriminator(config)
        adam = [keras.optimizers.Adam(config.learning_rate, beta_1=config.beta_1) for _ in "gd"]
        super().__init__(config, generator, discriminator, *adam)

    @property
    def state(self):
        # Without the unused noise generator: checkpoints keep their layout (earlier runs resume).
        return {name: value for name, value in super().state.items() if name != "noise"}

    def train_step(self, inputs, targets):
        """One G update, then one D update on the same G(x); returns the losses.

        G's and D's gradients are taken at the same weights: one forward pass of G per step.
        """
        G, D, config = self.generator, self.discriminator, self.config
        g_opt, d_opt = self.g_optimizer, self.d_optimizer
        inputs, targets = keras.ops.convert_to_tensor(inputs), keras.ops.convert_to_tensor(targets)

        # ---- G: loss_G = gan + 100 * L1
        def g_loss_fn():
            fake = G(inputs, training=True)
            fake_logits = D([inputs, fake], training=True)
            loss, gan, l1 = generator_loss(
                fake_logits, fake, targets, config.gan_weight, config.l1_weight
            )
            return loss, (gan, l1, fake)

        # loss_scale: scaled under mixed_float16 (engine.apply unscales, skips an overflow).
        (g_loss, (g_gan, g_l1, fake)), grads = engine.value_and_grad(
            g_loss_fn, G.trainable_variables, has_aux=True, loss_scale=g_opt
        )
        engine.apply(g_opt, grads, G.trainable_variables)
        fake = keras.ops.stop_gradient(fake)

        # ---- D: real pairs (x, y) against (x, G(x))
        def d_loss_fn():
            real_logits = D([inputs, targets], training=True)
            fake_logits = D([inputs, fake], training=True)
            d_real = keras.ops.mean(keras.ops.sigmoid(real_logits))
            d_fake = keras.ops.mean(keras.ops.sigmoid(fake_logits))
            return discriminator_loss(real_logits, fake_logits), (d_real, d_fake)

        (d_loss, (d_real, d_fake)), grads = engine.value_and_grad(
            d_loss_fn, D.trainable_variables, has_aux=True, loss_scale=d_opt
        )
        engine.apply(d_opt, grads, D.trainable_variables)
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
        """G(x) for uint8 or [-1, 1] float inputs, in inference mode, as float32 in [-1, 1].

        Inference mode (moving batch-norm statistics, no dropout) for the held-out evaluation;
        the paper keeps dropout and batch statistics at test time.
        """
        inputs = as_float(inputs)
        return self.generator.predict(inputs, batch_size=batch_size, verbose=0)


def as_float(images):
    """uint8 images as float32 in [-1, 1]; float images are returned as they are."""
    return datasets.to_float(images, (-1.0, 1.0)) if images.dtype == np.uint8 else images
