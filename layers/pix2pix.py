"""The pix2pix building blocks: U-Net encoder/decoder blocks and the 70x70 PatchGAN discriminator.

A 9.11 (Isola et al. 2016, "Image-to-Image Translation with Conditional
Adversarial Networks"). Conventions taken from the reference implementation the notes cite
(affinelayer/pix2pix-tensorflow): kernel 4, weights N(0, 0.02), batch-norm gamma N(1, 0.02) and
epsilon 1e-5, LeakyReLU slope 0.2 in the encoder and discriminator, ReLU in the decoder. The
batch-norm momentum is 0.9 (PyTorch's 0.1): the moving statistics follow training quickly.
"""

import keras
from keras import ops

from layers.conv import MatMulConv2DTranspose, SubPixelConv2DTranspose, _check_images

_BN_EPSILON = 1e-5
_BN_MOMENTUM = 0.9


def _offset(seed, i):
    return None if seed is None else seed + i


def _conv_init(initializer, seed):
    if initializer is None:
        return keras.initializers.RandomNormal(0.0, 0.02, seed=seed)
    return initializer


def _get(initializer):
    return None if initializer is None else keras.initializers.get(initializer)


def _serialize(initializer):
    return None if initializer is None else keras.initializers.serialize(initializer)


def _gamma_init(seed):
    return keras.initializers.RandomNormal(1.0, 0.02, seed=seed)


def _batch_norm(seed, dtype):
    return keras.layers.BatchNormalization(
        momentum=_BN_MOMENTUM,
        epsilon=_BN_EPSILON,
        gamma_initializer=_gamma_init(seed),
        dtype=dtype,
    )


@keras.saving.register_keras_serializable(package="layers")
class UNetDown(keras.layers.Layer):
    """The pix2pix encoder block "Ck": Conv2D (stride 2) -> BatchNorm -> LeakyReLU(0.2).

    Structure: `Conv2D(filters, size, strides=2, padding="same")` with weights N(0, 0.02) and no
    bias when batch-normed (the batch norm's beta replaces it), then `BatchNormalization`
    (epsilon 1e-5, momentum 0.9, gamma N(1, 0.02)) unless `apply_batchnorm=False` (the first
    encoder block, "C64"), then `LeakyReLU(0.2)`.

    Shapes: `(batch, height, width, channels)` -> `(batch, height / 2, width / 2, filters)`;
    height and width must be even, so that a `UNetUp` can double them back to the skip's size.

    Args:
        filters: output channels.
        size: kernel size (4 in pix2pix).
        apply_batchnorm: whether to batch-normalise the convolution's output.
        seed: optional integer seed of the weight initialisers.
        kernel_initializer: initializer of the convolution kernel; default N(0, 0.02).

    Example:

    >>> x = np.random.rand(2, 64, 64, 3).astype("float32")
    >>> UNetDown(16)(x).shape
    (2, 32, 32, 16)
    """

    def __init__(
        self, filters, size=4, apply_batchnorm=True, seed=None, kernel_initializer=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.kernel_initializer = _get(kernel_initializer)
        self.filters = int(filters)
        self.size = int(size)
        self.apply_batchnorm = bool(apply_batchnorm)
        self.seed = seed
        self.conv = keras.layers.Conv2D(
            self.filters,
            self.size,
            strides=2,
            padding="same",
            kernel_initializer=_conv_init(self.kernel_initializer, seed),
            use_bias=not self.apply_batchnorm,
            dtype=self.dtype_policy,
            name="conv",
        )
        self.batchnorm = _batch_norm(_offset(seed, 1), self.dtype_policy) if apply_batchnorm else None
        self.activation = keras.layers.LeakyReLU(negative_slope=0.2, dtype=self.dtype_policy)

    def _check(self, input_shape):
        expected = "(batch, 2 * h, 2 * w, channels)"
        _check_images("UNetDown", "inputs", input_shape, expected)
        if any(side is not None and side % 2 for side in input_shape[1:3]):
            raise ValueError(
                f"UNetDown: expected inputs of shape {expected} with even height and width "
                f"(a stride-2 block), got shape {tuple(input_shape)}"
            )

    def build(self, input_shape):
        self._check(input_shape)
        self.conv.build(input_shape)
        if self.batchnorm is not None:
            self.batchnorm.build(self.conv.compute_output_shape(input_shape))

    def call(self, inputs, training=None):
        self._check(inputs.shape)
        x = self.conv(inputs)
        if self.batchnorm is not None:
            x = self.batchnorm(x, training=training)
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        self._check(input_shape)
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "size": self.size,
            "apply_batchnorm": self.apply_batchnorm,
            "seed": self.seed,
            "kernel_initializer": _serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="layers")
class UNetUp(keras.layers.Layer):
    """The pix2pix decoder block with its U-Net skip connection.

    Structure: `Conv2DTranspose(filters, size, strides=2, padding="same", use_bias=False)` with
    weights N(0, 0.02) -> `BatchNormalization` (epsilon 1e-5, momentum 0.9, gamma N(1, 0.02)) ->
    `Dropout(0.5)` if `apply_dropout` (pix2pix's only noise source; the layer owns its seed
    generator, and it is active only with `training=True`) -> `ReLU`, then
    `concatenate([up(inputs), skip], axis=-1)`.

    The transposed convolution is `SubPixelConv2DTranspose` (layers.conv), which holds the same
    variables and gives the same outputs as `keras.layers.Conv2DTranspose` but has fast gradients
    on JAX; with `matmul=True` it is `MatMulConv2DTranspose` (the same again, computed as one
    matrix product), much faster for the U-Net's bottleneck blocks, whose inputs are 1x1 or 2x2.

    Shapes: `inputs (batch, h, w, c)` and `skip (batch, 2h, 2w, c_skip)` ->
    `(batch, 2h, 2w, filters + c_skip)`.

    Args:
        filters: channels of the upsampled part of the output.
        size: kernel size (4 in pix2pix).
        apply_dropout: whether to apply dropout with rate 0.5 (the first three decoder blocks).
        seed: optional integer seed of the weight initialisers and of the dropout.
        kernel_initializer: initializer of the transposed convolution's kernel; default
            N(0, 0.02).
        matmul: compute the transposed convolution as one matrix product
            (`MatMulConv2DTranspose`): for inputs of a few pixels (at most 2x2 in pix2pix).

    Example:

    >>> x = np.random.rand(2, 8, 8, 32).astype("float32")
    >>> skip = np.random.rand(2, 16, 16, 16).astype("float32")
    >>> UNetUp(16, apply_dropout=True)(x, skip).shape
    (2, 16, 16, 32)
    """

    def __init__(
        self,
        filters,
        size=4,
        apply_dropout=False,
        seed=None,
        kernel_initializer=None,
        matmul=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_initializer = _get(kernel_initializer)
        self.filters = int(filters)
        self.size = int(size)
        self.apply_dropout = bool(apply_dropout)
        self.seed = seed
        self.matmul = bool(matmul)
        transposed = MatMulConv2DTranspose if self.matmul else SubPixelConv2DTranspose
        self.conv = transposed(
            self.filters,
            self.size,
            strides=2,
            padding="same",
            kernel_initializer=_conv_init(self.kernel_initializer, seed),
            use_bias=False,
            dtype=self.dtype_policy,
            name="conv_transpose",
        )
        self.batchnorm = _batch_norm(_offset(seed, 1), self.dtype_policy)
        self.dropout = (
            keras.layers.Dropout(0.5, seed=_offset(seed, 2), dtype=self.dtype_policy)
            if self.apply_dropout
            else None
        )
        self.activation = keras.layers.ReLU(dtype=self.dtype_policy)

    def _check(self, inputs_shape, skip_shape):
        _check_images("UNetUp", "inputs", inputs_shape, "(batch, h, w, channels)")
        _check_images("UNetUp", "skip", skip_shape, "(batch, 2 * h, 2 * w, skip_channels)")
        expected = [None if side is None else 2 * side for side in inputs_shape[1:3]]
        for want, got in zip(expected, skip_shape[1:3]):
            if want is not None and got is not None and want != got:
                raise ValueError(
                    f"UNetUp: expected skip of shape (batch, {expected[0]}, {expected[1]}, "
                    f"skip_channels), twice the inputs' height and width, got skip shape "
                    f"{tuple(skip_shape)} for inputs shape {tuple(inputs_shape)}"
                )
        if None not in (inputs_shape[0], skip_shape[0]) and inputs_shape[0] != skip_shape[0]:
            raise ValueError(
                f"UNetUp: inputs and skip must have the same batch size, got shapes "
                f"{tuple(inputs_shape)} and {tuple(skip_shape)}"
            )

    def build(self, inputs_shape, skip_shape):
        self._check(inputs_shape, skip_shape)
        self.conv.build(inputs_shape)
        self.batchnorm.build(self.conv.compute_output_shape(inputs_shape))

    def call(self, inputs, skip, training=None):
        self._check(inputs.shape, skip.shape)
        x = self.conv(inputs)
        x = self.batchnorm(x, training=training)
        if self.dropout is not None:
            x = self.dropout(x, training=training)
        x = self.activation(x)
        return ops.concatenate([x, ops.cast(skip, x.dtype)], axis=-1)

    def compute_output_shape(self, inputs_shape, skip_shape):
        self._check(inputs_shape, skip_shape)
        batch, height, width = self.conv.compute_output_shape(inputs_shape)[:3]
        channels = None if skip_shape[-1] is None else self.filters + skip_shape[-1]
        return (batch, height, width, channels)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "size": self.size,
            "apply_dropout": self.apply_dropout,
            "seed": self.seed,
            "kernel_initializer": _serialize(self.kernel_initializer),
            "matmul": self.matmul,
        }


@keras.saving.register_keras_serializable(package="layers")
class PatchGAN(keras.layers.Layer):
    """The 70x70 PatchGAN discriminator of pix2pix: one real/fake logit per 70x70 patch.

    Structure, for base width `filters` = f (64 in pix2pix):

        concatenate([inputs, target], axis=-1)      (N, H, W, c_in + c_target)
        UNetDown(f, apply_batchnorm=False)  "C64"   (N, H/2, W/2, f)
        UNetDown(2f)                        "C128"  (N, H/4, W/4, 2f)
        UNetDown(4f)                        "C256"  (N, H/8, W/8, 4f)
        ZeroPadding2D(1) -> Conv2D(8f, 4, "valid", no bias) -> BatchNorm -> LeakyReLU(0.2)
                                                    (N, H/8 - 1, W/8 - 1, 8f)
        ZeroPadding2D(1) -> Conv2D(1, 4, "valid")   (N, H/8 - 2, W/8 - 2, 1)

    The outputs are logits (apply a sigmoid, or use a loss with `from_logits=True`). For a
    256x256 pair the output is (N, 30, 30, 1); output (i, j) sees input rows `8i - 23 ... 8i + 46`
    and the same columns: a 70x70 receptive field (kernel 4, strides 2, 2, 2, 1, 1). Height and
    width must be multiples of 8, at least 24. With `filters=64` and 3 + 3 input channels the
    layer has 2,770,497 weights (the notes' 2,771,393 counts a bias in each of the three
    batch-normed convolutions, 128 + 256 + 512 = 896 weights that the batch norm's beta makes
    redundant).

    Args:
        filters: base width f (64 in pix2pix).
        seed: optional integer seed of the weight initialisers.
        kernel_initializer: initializer of every convolution kernel; default N(0, 0.02).

    Example:

    >>> x = np.random.rand(1, 256, 256, 3).astype("float32")
    >>> y = np.random.rand(1, 256, 256, 3).astype("float32")
    >>> PatchGAN(filters=8)(x, y).shape
    (1, 30, 30, 1)
    """

    def __init__(self, filters=64, seed=None, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = init = _get(kernel_initializer)
        self.filters = int(filters)
        self.seed = seed
        dtype = self.dtype_policy
        self.down = [
            UNetDown(
                self.filters,
                apply_batchnorm=False,
                seed=_offset(seed, 0),
                kernel_initializer=init,
                dtype=dtype,
            ),
            UNetDown(2 * self.filters, seed=_offset(seed, 10), kernel_initializer=init, dtype=dtype),
            UNetDown(4 * self.filters, seed=_offset(seed, 20), kernel_initializer=init, dtype=dtype),
        ]
        self.pad = keras.layers.ZeroPadding2D(1, dtype=dtype)
        self.conv = keras.layers.Conv2D(
            8 * self.filters,
            4,
            padding="valid",
            use_bias=False,
            kernel_initializer=_conv_init(init, _offset(seed, 30)),
            dtype=dtype,
            name="conv",
        )
        self.batchnorm = _batch_norm(_offset(seed, 31), dtype)
        self.activation = keras.layers.LeakyReLU(negative_slope=0.2, dtype=dtype)
        # Under a mixed policy the one-channel logits are computed in float32, where mixed
        # precision keeps its outputs (torch's CPU bfloat16 convolution cannot even take the
        # gradient of a one-channel kernel on processors without native bfloat16).
        self.last = keras.layers.Conv2D(
            1,
            4,
            padding="valid",
            kernel_initializer=_conv_init(init, _offset(seed, 40)),
            dtype="float32" if dtype.variable_dtype == "float32" else dtype,
            name="logits",
        )

    def _check(self, inputs_shape, target_shape):
        expected = "(batch, height, width, channels), height and width multiples of 8 and >= 24"
        _check_images("PatchGAN", "inputs", inputs_shape, expected)
        _check_images("PatchGAN", "target", target_shape, expected)
        for a, b in zip(inputs_shape[:3], target_shape[:3]):
            if a is not None and b is not None and a != b:
                raise ValueError(
                    f"PatchGAN: inputs and target must have the same batch, height and width, "
                    f"got shapes {tuple(inputs_shape)} and {tuple(target_shape)}"
                )
        for side in (*inputs_shape[1:3], *target_shape[1:3]):
            if side is not None and (side % 8 or side < 24):
                raise ValueError(
                    f"PatchGAN: expected inputs of shape {expected}, got shapes "
                    f"{tuple(inputs_shape)} and {tuple(target_shape)}"
                )

    @staticmethod
    def _pair_shape(inputs_shape, target_shape):
        channels = (
            None
            if None in (inputs_shape[-1], target_shape[-1])
            else (inputs_shape[-1] + target_shape[-1])
        )
        return (*inputs_shape[:3], channels)

    def build(self, inputs_shape, target_shape):
        self._check(inputs_shape, target_shape)
        shape = self._pair_shape(inputs_shape, target_shape)
        for block in self.down:
            block.build(shape)
            shape = block.compute_output_shape(shape)
        shape = self.pad.compute_output_shape(shape)
        self.conv.build(shape)
        shape = self.conv.compute_output_shape(shape)
        self.batchnorm.build(shape)
        self.last.build(self.pad.compute_output_shape(shape))

    def call(self, inputs, target, training=None):
        self._check(inputs.shape, target.shape)
        x = ops.concatenate([inputs, ops.cast(target, inputs.dtype)], axis=-1)
        for block in self.down:
            x = block(x, training=training)
        x = self.conv(self.pad(x))
        x = self.activation(self.batchnorm(x, training=training))
        return ops.cast(self.last(self.pad(x)), self.compute_dtype)

    def compute_output_shape(self, inputs_shape, target_shape):
        self._check(inputs_shape, target_shape)
        batch, height, width = inputs_shape[:3]
        return (
            batch,
            None if height is None else height // 8 - 2,
            None if width is None else width // 8 - 2,
            1,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "seed": self.seed,
            "kernel_initializer": _serialize(self.kernel_initializer),
        }
