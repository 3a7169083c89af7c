"""Building blocks of the classic CNNs: AlexNet's local response normalisation, GoogLeNet's
inception module, ResNet's basic and bottleneck blocks, DenseNet's dense and transition blocks and
SqueezeNet's fire module.

B 3.3 (LeNet, AlexNet, GoogLeNet, ResNet), D 5 (modern CNNs: AlexNet, GoogLeNet, ResNet, DenseNet)
and A 6.4 (SqueezeNet). The notes name the blocks; their structure and constants come from the
papers: Krizhevsky et al. 2012 (LRN), Szegedy et al. 2014 (inception), He et al. 2015 (residual
blocks), Huang et al. 2016 (dense blocks) and Iandola et al. 2016 (fire module). All take and
return channels-last image batches `(batch, height, width, channels)`; the blocks with batch
normalisation take `training=`.
"""

import keras
from keras import ops


def _get(initializer):
    return keras.initializers.get(initializer)


def _regularizer(regularizer):
    return None if regularizer is None else keras.regularizers.get(regularizer)


def _serialize_regularizer(regularizer):
    return None if regularizer is None else keras.regularizers.serialize(regularizer)


def _divide(side, by, ceil=False):
    """A spatial side after a stride or pooling of `by` (None stays None: an unknown side)."""
    if side is None:
        return None
    return -(-side // by) if ceil else side // by


def _check_images(layer, shape, expected, channels=None):
    """ValueError unless `shape` is (batch, height, width, channels) with known channels (equal to
    `channels` when given)."""
    shape = None if shape is None else tuple(shape)
    if (
        shape is None
        or len(shape) != 4
        or shape[-1] is None
        or (channels is not None and shape[-1] != channels)
    ):
        raise ValueError(f"{layer}: expected inputs of shape {expected}, got shape {shape}")
    return shape


class _ConvBlock(keras.layers.Layer):
    """Shared plumbing of the blocks below: sub-convolutions with common initializer/regularizer."""

    def __init__(self, kernel_initializer="glorot_uniform", kernel_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = _get(kernel_initializer)
        self.kernel_regularizer = _regularizer(kernel_regularizer)

    def _conv(self, filters, size, name, strides=1, activation=None, use_bias=True, padding="same"):
        return keras.layers.Conv2D(
            filters,
            size,
            strides=strides,
            padding=padding,
            activation=activation,
            use_bias=use_bias,
            kernel_initializer=self.kernel_initializer,
            kernel_regularizer=self.kernel_regularizer,
            dtype=self.dtype_policy,
            name=name,
        )

    def _batch_norm(self, name, gamma_initializer="ones"):
        return keras.layers.BatchNormalization(
            momentum=self.momentum,
            epsilon=self.epsilon,
            gamma_initializer=gamma_initializer,
            dtype=self.dtype_policy,
            name=name,
        )

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": _serialize_regularizer(self.kernel_regularizer),
        }


@keras.saving.register_keras_serializable(package="layers")
class LocalResponseNormalization(keras.layers.Layer):
    """AlexNet's local response normalisation across channels (Krizhevsky et al. 2012, 3.3).

        b[..., i] = a[..., i] / (k + alpha * sum_{j = i - n//2}^{i + n//2} a[..., j]^2) ^ beta

    with the sum over the existing channels only (zero beyond the edges). The paper's constants are
    the defaults: k = 2, n = 5, alpha = 1e-4, beta = 0.75. This is the paper's formula: PyTorch's
    `nn.LocalResponseNorm(size, alpha, beta, k)` divides alpha by n, and TensorFlow's
    `tf.nn.local_response_normalization` takes `depth_radius = n // 2` and `bias = k` with
    alpha as here. No weights.

    Shapes: `(batch, height, width, channels)` -> the same shape.

    Args:
        size: n, the number of adjacent channels summed over (odd).
        alpha: scale of the sum of squares.
        beta: exponent.
        k: additive constant.

    Example:

    >>> x = np.random.rand(2, 27, 27, 96).astype("float32")
    >>> LocalResponseNormalization()(x).shape
    (2, 27, 27, 96)
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=2.0, **kwargs):
        super().__init__(**kwargs)
        if int(size) < 1 or int(size) % 2 == 0:
            raise ValueError(f"LocalResponseNormalization: size must be odd and >= 1, got {size}")
        self.size = int(size)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.k = float(k)

    def _check(self, shape):
        return _check_images("LocalResponseNormalization", shape, "(batch, height, width, channels)")

    def build(self, input_shape):
        self._check(input_shape)

    def call(self, inputs):
        self._check(inputs.shape)
        channels = inputs.shape[-1]
        half = self.size // 2
        squares = ops.pad(ops.square(inputs), [[0, 0], [0, 0], [0, 0], [half, half]])
        # The window sum as n shifted slices: plain ops on every backend.
        total = squares[..., :channels]
        for shift in range(1, self.size):
            total = total + squares[..., shift : shift + channels]
        return inputs / ops.power(self.k + self.alpha * total, self.beta)

    def compute_output_shape(self, input_shape):
        return self._check(input_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "size": self.size,
            "alpha": self.alpha,
            "beta": self.beta,
            "k": self.k,
        }


@keras.saving.register_keras_serializable(package="layers")
class InceptionModule(_ConvBlock):
    """GoogLeNet's inception module with dimension reductions (Szegedy et al. 2014, Fig. 2b).

    Four branches side by side, each convolution followed by ReLU, "same" padding, stride 1:

        1x1 conv (filters_1x1)
        1x1 conv (filters_3x3_reduce) -> 3x3 conv (filters_3x3)
        1x1 conv (filters_5x5_reduce) -> 5x5 conv (filters_5x5)
        3x3 max pool (stride 1)       -> 1x1 conv (filters_pool)

    concatenated along the channels in that order. The 1x1 reductions are what keep the 3x3 and 5x5
    branches cheap. inception(3a) is `InceptionModule(64, 96, 128, 16, 32, 32)`: 192 -> 256
    channels with 163,696 parameters.

    Shapes: `(batch, height, width, channels)` ->
    `(batch, height, width, filters_1x1 + filters_3x3 + filters_5x5 + filters_pool)`.

    Args:
        filters_1x1, filters_3x3_reduce, filters_3x3, filters_5x5_reduce, filters_5x5,
        filters_pool: the six filter counts of a row of the paper's Table 1.
        use_bias: whether the convolutions have biases (the paper's do).
        kernel_initializer, kernel_regularizer: of every convolution.

    Example:

    >>> x = np.random.rand(2, 28, 28, 192).astype("float32")
    >>> InceptionModule(64, 96, 128, 16, 32, 32)(x).shape
    (2, 28, 28, 256)
    """

    def __init__(
        self,
        filters_1x1,
        filters_3x3_reduce,
        filters_3x3,
        filters_5x5_reduce,
        filters_5x5,
        filters_pool,
        use_bias=True,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = [
            int(f)
            for f in (filters_1x1, filters_3x3_reduce, filters_3x3, filters_5x5_reduce, filters_5x5)
        ] + [int(filters_pool)]
        if min(self.filters) < 1:
            raise ValueError(f"InceptionModule: every filter count must be >= 1, got {self.filters}")
        self.use_bias = bool(use_bias)
        f1, f3r, f3, f5r, f5, fp = self.filters

        def conv(filters, size, name):
            return self._conv(filters, size, name, activation="relu", use_bias=use_bias)

        self.branch_1x1 = conv(f1, 1, "branch_1x1")
        self.reduce_3x3 = conv(f3r, 1, "reduce_3x3")
        self.branch_3x3 = conv(f3, 3, "branch_3x3")
        self.reduce_5x5 = conv(f5r, 1, "reduce_5x5")
        self.branch_5x5 = conv(f5, 5, "branch_5x5")
        self.pool = keras.layers.MaxPooling2D(3, strides=1, padding="same", dtype=self.dtype_policy)
        self.branch_pool = conv(fp, 1, "branch_pool")

    @property
    def output_channels(self):
        f1, _, f3, _, f5, fp = self.filters
        return f1 + f3 + f5 + fp

    def _check(self, shape):
        return _check_images("InceptionModule", shape, "(batch, height, width, channels)")

    def build(self, input_shape):
        shape = self._check(input_shape)
        f1, f3r, f3, f5r, f5, fp = self.filters
        self.branch_1x1.build(shape)
        self.reduce_3x3.build(shape)
        self.branch_3x3.build((*shape[:3], f3r))
        self.reduce_5x5.build(shape)
        self.branch_5x5.build((*shape[:3], f5r))
        self.branch_pool.build(shape)

    def call(self, inputs):
        self._check(inputs.shape)
        return ops.concatenate(
            [
                self.branch_1x1(inputs),
                self.branch_3x3(self.reduce_3x3(inputs)),
                self.branch_5x5(self.reduce_5x5(inputs)),
                self.branch_pool(self.pool(inputs)),
            ],
            axis=-1,
        )

    def compute_output_shape(self, input_shape):
        return (*self._check(input_shape)[:3], self.output_channels)

    def get_config(self):
        names = ("filters_1x1", "filters_3x3_reduce", "filters_3x3", "filters_5x5_reduce", "filters_5x5")
        return {
            **super().get_config(),
            **dict(zip(names + ("filters_pool",), self.filters)),
            "use_bias": self.use_bias,
        }


@keras.saving.register_keras_serializable(package="layers")
class ResidualBlock(_ConvBlock):
    """ResNet's residual block, y = ReLU(F(x) + shortcut(x)) (He et al. 2015, Fig. 5).

    - basic (ResNet-18/34): F = 3x3 conv (filters, stride) -> BN -> ReLU -> 3x3 conv (filters) ->
      BN; `filters` output channels.
    - bottleneck (ResNet-50/101/152): F = 1x1 conv (filters) -> BN -> ReLU -> 3x3 conv (filters)
      -> BN -> ReLU -> 1x1 conv (4 * filters) -> BN; `4 * filters` output channels.

    The shortcut is the identity when the shape is kept, else a projection: 1x1 conv (stride) ->
    BN. The stride sits on the 3x3 convolution (torchvision's "ResNet v1.5"); with
    `downsample_first=True` it sits on the block's first convolution, as in the paper and in
    `keras.applications.ResNet50` (whose convolutions also have biases: `use_bias=True`).
    `zero_init_residual=True` starts the last batch norm's gamma at 0, so that a fresh block with an
    identity shortcut is the identity on non-negative inputs.

    Shapes: `(batch, h, w, c)` -> `(batch, ceil(h / strides), ceil(w / strides), out_channels)`.

    Args:
        filters: channels of the block's convolutions (the output has 4x that for a bottleneck).
        bottleneck: bottleneck block instead of the basic one.
        strides: stride of the block (2 at the start of a stage that halves the resolution).
        use_bias: whether the convolutions have biases.
        downsample_first: put the stride on the first convolution of F.
        zero_init_residual: initialise the last batch norm's gamma to zero.
        momentum, epsilon: of the batch norms (PyTorch's defaults: 0.9 and 1e-5).
        kernel_initializer, kernel_regularizer: of every convolution (default He normal).

    Example:

    >>> x = np.random.rand(2, 8, 8, 64).astype("float32")
    >>> ResidualBlock(32, bottleneck=True, strides=2)(x).shape
    (2, 4, 4, 128)
    """

    expansion = 4

    def __init__(
        self,
        filters,
        bottleneck=False,
        strides=1,
        use_bias=False,
        downsample_first=False,
        zero_init_residual=False,
        momentum=0.9,
        epsilon=1e-5,
        kernel_initializer="he_normal",
        **kwargs,
    ):
        super().__init__(kernel_initializer=kernel_initializer, **kwargs)
        self.filters = int(filters)
        self.bottleneck = bool(bottleneck)
        self.strides = int(strides)
        if self.filters < 1 or self.strides < 1:
            raise ValueError(
                f"ResidualBlock: filters and strides must be >= 1, got {filters}, {strides}"
            )
        self.use_bias = bool(use_bias)
        self.downsample_first = bool(downsample_first)
        self.zero_init_residual = bool(zero_init_residual)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.out_channels = self.filters * (self.expansion if self.bottleneck else 1)
        s, f = self.strides, self.filters
        first, middle = (s, 1) if self.downsample_first else (1, s)
        if self.bottleneck:
            specs = [(f, 1, first), (f, 3, middle), (self.out_channels, 1, 1)]
        else:
            specs = [(f, 3, s), (f, 3, 1)]
        self.convs = [
            self._conv(n, size, f"conv{i + 1}", strides=st, use_bias=use_bias)
            for i, (n, size, st) in enumerate(specs)
        ]
        last_gamma = "zeros" if self.zero_init_residual else "ones"
        self.norms = [
            self._batch_norm(f"bn{i + 1}", last_gamma if i == len(specs) - 1 else "ones")
            for i in range(len(specs))
        ]
        self.shortcut_conv = self.shortcut_norm = None

    def _check(self, shape):
        return _check_images("ResidualBlock", shape, "(batch, height, width, channels)")

    def build(self, input_shape):
        shape = self._check(input_shape)
        x = shape
        for conv, norm in zip(self.convs, self.norms):
            conv.build(x)
            x = conv.compute_output_shape(x)
            norm.build(x)
        if self.strides != 1 or shape[-1] != self.out_channels:
            self.shortcut_conv = self._conv(
                self.out_channels, 1, "shortcut_conv", strides=self.strides, use_bias=self.use_bias
            )
            self.shortcut_norm = self._batch_norm("shortcut_bn")
            self.shortcut_conv.build(shape)
            self.shortcut_norm.build(x)

    def call(self, inputs, training=None):
        self._check(inputs.shape)
        x = inputs
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = norm(conv(x), training=training)
            if i < len(self.convs) - 1:
                x = ops.relu(x)
        shortcut = inputs
        if self.shortcut_conv is not None:
            shortcut = self.shortcut_norm(self.shortcut_conv(inputs), training=training)
        return ops.relu(x + shortcut)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = self._check(input_shape)
        stride = self.strides
        return (b, _divide(h, stride, ceil=True), _divide(w, stride, ceil=True), self.out_channels)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "bottleneck": self.bottleneck,
            "strides": self.strides,
            "use_bias": self.use_bias,
            "downsample_first": self.downsample_first,
            "zero_init_residual": self.zero_init_residual,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }


@keras.saving.register_keras_serializable(package="layers")
class DenseBlock(_ConvBlock):
    """DenseNet's dense block (Huang et al. 2016, 3): every layer sees all earlier feature maps.

        x_l = H_l([x_0, x_1, ..., x_{l-1}]),   output [x_0, x_1, ..., x_L]

    H_l is BN -> ReLU -> 3x3 conv (growth_rate), preceded with `bottleneck=True` (DenseNet-B, the
    default, as in DenseNet-121) by BN -> ReLU -> 1x1 conv (4 * growth_rate). Convolutions have no
    biases. The channels grow linearly, c_0 + L * k (the notes' "exponentially" is an erratum).

    Shapes: `(batch, h, w, c)` -> `(batch, h, w, c + num_layers * growth_rate)`.

    Args:
        num_layers: L, the number of H_l.
        growth_rate: k, channels each layer adds.
        bottleneck: the 1x1 reduction before each 3x3 convolution.
        momentum, epsilon: of the batch norms (PyTorch's defaults: 0.9 and 1e-5).
        kernel_initializer, kernel_regularizer: of every convolution (default He normal).

    Example:

    >>> x = np.random.rand(2, 8, 8, 16).astype("float32")
    >>> DenseBlock(4, growth_rate=12)(x).shape
    (2, 8, 8, 64)
    """

    def __init__(
        self,
        num_layers,
        growth_rate=32,
        bottleneck=True,
        momentum=0.9,
        epsilon=1e-5,
        kernel_initializer="he_normal",
        **kwargs,
    ):
        super().__init__(kernel_initializer=kernel_initializer, **kwargs)
        self.num_layers = int(num_layers)
        self.growth_rate = int(growth_rate)
        if self.num_layers < 1 or self.growth_rate < 1:
            raise ValueError(
                f"DenseBlock: num_layers and growth_rate must be >= 1, got {num_layers}, {growth_rate}"
            )
        self.bottleneck = bool(bottleneck)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        # Flat lists (which Keras tracks): layer i owns the `per_layer` entries from i * per_layer.
        self.per_layer = 2 if self.bottleneck else 1
        self.norms, self.convs = [], []
        for i in range(self.num_layers):
            if self.bottleneck:
                self.norms.append(self._batch_norm(f"layer{i + 1}_bn1"))
                reduce = self._conv(4 * self.growth_rate, 1, f"layer{i + 1}_conv1", use_bias=False)
                self.convs.append(reduce)
            self.norms.append(self._batch_norm(f"layer{i + 1}_bn2"))
            self.convs.append(self._conv(self.growth_rate, 3, f"layer{i + 1}_conv2", use_bias=False))

    def _unit(self, i):
        part = slice(i * self.per_layer, (i + 1) * self.per_layer)
        return zip(self.norms[part], self.convs[part])

    def _check(self, shape):
        return _check_images("DenseBlock", shape, "(batch, height, width, channels)")

    def build(self, input_shape):
        shape = self._check(input_shape)
        for i in range(self.num_layers):
            x = (*shape[:3], shape[-1] + i * self.growth_rate)
            for norm, conv in self._unit(i):
                norm.build(x)
                conv.build(x)
                x = conv.compute_output_shape(x)

    def call(self, inputs, training=None):
        self._check(inputs.shape)
        features = inputs
        for i in range(self.num_layers):
            x = features
            for norm, conv in self._unit(i):
                x = conv(ops.relu(norm(x, training=training)))
            features = ops.concatenate([features, x], axis=-1)
        return features

    def compute_output_shape(self, input_shape):
        shape = self._check(input_shape)
        return (*shape[:3], shape[-1] + self.num_layers * self.growth_rate)

    def get_config(self):
        return {
            **super().get_config(),
            "num_layers": self.num_layers,
            "growth_rate": self.growth_rate,
            "bottleneck": self.bottleneck,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }


@keras.saving.register_keras_serializable(package="layers")
class TransitionBlock(_ConvBlock):
    """DenseNet's transition between dense blocks (Huang et al. 2016, 3): BN -> ReLU ->
    1x1 conv (filters, no bias) -> 2x2 average pooling, stride 2.

    It sets the channel count (DenseNet-121 halves it, "compression 0.5") and halves the height and
    width (odd sides round down). The notes list BN -> 1x1 conv -> 2x2 average pooling; the ReLU is
    the paper's (its composite function is BN-ReLU-Conv).

    Shapes: `(batch, h, w, c)` -> `(batch, h // 2, w // 2, filters)`.

    Args:
        filters: output channels.
        momentum, epsilon: of the batch norm (PyTorch's defaults: 0.9 and 1e-5).
        kernel_initializer, kernel_regularizer: of the convolution (default He normal).

    Example:

    >>> x = np.random.rand(2, 8, 8, 64).astype("float32")
    >>> TransitionBlock(32)(x).shape
    (2, 4, 4, 32)
    """

    def __init__(self, filters, momentum=0.9, epsilon=1e-5, kernel_initializer="he_normal", **kwargs):
        super().__init__(kernel_initializer=kernel_initializer, **kwargs)
        self.filters = int(filters)
        if self.filters < 1:
            raise ValueError(f"TransitionBlock: filters must be >= 1, got {filters}")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.norm = self._batch_norm("bn")
        self.conv = self._conv(self.filters, 1, "conv", use_bias=False)
        self.pool = keras.layers.AveragePooling2D(2, strides=2, dtype=self.dtype_policy)

    def _check(self, shape):
        shape = _check_images("TransitionBlock", shape, "(batch, height >= 2, width >= 2, channels)")
        if any(side is not None and side < 2 for side in shape[1:3]):
            raise ValueError(
                f"TransitionBlock: expected inputs of shape (batch, height >= 2, width >= 2, channels), "
                f"got shape {shape}"
            )
        return shape

    def build(self, input_shape):
        shape = self._check(input_shape)
        self.norm.build(shape)
        self.conv.build(shape)

    def call(self, inputs, training=None):
        self._check(inputs.shape)
        return self.pool(self.conv(ops.relu(self.norm(inputs, training=training))))

    def compute_output_shape(self, input_shape):
        b, h, w, _ = self._check(input_shape)
        return (b, _divide(h, 2), _divide(w, 2), self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }


@keras.saving.register_keras_serializable(package="layers")
class FireModule(_ConvBlock):
    """SqueezeNet's fire module (Iandola et al. 2016, 3.2; figure 22 of A 6.4).

        s = ReLU(1x1 conv_squeeze(x)),   y = [ReLU(1x1 conv(s)), ReLU(3x3 conv(s))]

    A squeeze layer of 1x1 filters feeds an expand layer of 1x1 and 3x3 filters ("same" padding),
    whose outputs are concatenated (1x1 first). With `squeeze` below `expand_1x1 + expand_3x3` the
    3x3 filters see few input channels, which is where SqueezeNet saves its parameters. Biases as
    in the paper. fire2 of SqueezeNet is `FireModule(16, 64, 64)`: 96 -> 128 channels with 11,920
    parameters.

    Shapes: `(batch, h, w, c)` -> `(batch, h, w, expand_1x1 + expand_3x3)`.

    Args:
        squeeze: filters of the squeeze layer (s_1x1).
        expand_1x1, expand_3x3: filters of the expand layer (e_1x1, e_3x3).
        use_bias: whether the convolutions have biases.
        kernel_initializer, kernel_regularizer: of every convolution.

    Example:

    >>> x = np.random.rand(2, 13, 13, 96).astype("float32")
    >>> FireModule(16, 64, 64)(x).shape
    (2, 13, 13, 128)
    """

    def __init__(self, squeeze, expand_1x1, expand_3x3, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.squeeze = int(squeeze)
        self.expand_1x1 = int(expand_1x1)
        self.expand_3x3 = int(expand_3x3)
        if min(self.squeeze, self.expand_1x1, self.expand_3x3) < 1:
            raise ValueError(
                f"FireModule: filter counts must be >= 1, got {squeeze}, {expand_1x1}, {expand_3x3}"
            )
        self.use_bias = bool(use_bias)
        self.squeeze_conv = self._conv(self.squeeze, 1, "squeeze", activation="relu", use_bias=use_bias)
        self.expand_1x1_conv = self._conv(
            self.expand_1x1, 1, "expand_1x1", activation="relu", use_bias=use_bias
        )
        self.expand_3x3_conv = self._conv(
            self.expand_3x3, 3, "expand_3x3", activation="relu", use_bias=use_bias
        )

    def _check(self, shape):
        return _check_images("FireModule", shape, "(batch, height, width, channels)")

    def build(self, input_shape):
        shape = self._check(input_shape)
        self.squeeze_conv.build(shape)
        squeezed = (*shape[:3], self.squeeze)
        self.expand_1x1_conv.build(squeezed)
        self.expand_3x3_conv.build(squeezed)

    def call(self, inputs):
        self._check(inputs.shape)
        s = self.squeeze_conv(inputs)
        return ops.concatenate([self.expand_1x1_conv(s), self.expand_3x3_conv(s)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*self._check(input_shape)[:3], self.expand_1x1 + self.expand_3x3)

    def get_config(self):
        return {
            **super().get_config(),
            "squeeze": self.squeeze,
            "expand_1x1": self.expand_1x1,
            "expand_3x3": self.expand_3x3,
            "use_bias": self.use_bias,
        }
