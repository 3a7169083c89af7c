"""Convolution layers."""

import keras
import numpy as np
from keras import ops


def _subpixel_axis(kernel_size, stride, padding):
    """Sub-pixel plan for one spatial axis of a transposed convolution.

    Keras places a transposed convolution as `y[i * s + t - crop] += x[i] * k[t]`
    with `crop = max(k - s, 0) // 2` and `len(y) = n * s` for `"same"`, and
    `crop = 0`, `len(y) = (n - 1) * s + max(k, s)` for `"valid"` (this is what
    `compute_conv_transpose_padding_args_for_jax` encodes as
    `crop = k - 1 - left_pad`). Writing `y[q * s + a]` (phase `a`) as a stride-1
    correlation of `x` padded by `left` gives window position `j` the kernel tap
    `t = a + crop + (left - j) * s`.

    Returns:
        taps: int array `(window, s)`, the tap for window position `j` and
            phase `a`, or -1 where no tap falls.
        pads: `(left, right)` input padding.
        trim: rows to drop from the end of the depth-to-space output.
    """
    crop = max(kernel_size - stride, 0) // 2 if padding == "same" else 0
    extra = 0 if padding == "same" else max(kernel_size, stride) - stride
    extra_rows = -(-extra // stride)  # Each phase has n + extra_rows outputs.
    left = (kernel_size - 1 - crop) // stride
    window = left + (stride - 1 + crop) // stride + 1
    right = extra_rows + window - 1 - left
    j = np.arange(window)[:, None]
    a = np.arange(stride)[None, :]
    taps = a + crop + (left - j) * stride
    taps = np.where((taps >= 0) & (taps < kernel_size), taps, -1)
    return taps, (left, right), extra_rows * stride - extra


@keras.saving.register_keras_serializable(package="layers")
class SubPixelConv2DTranspose(keras.layers.Conv2DTranspose):
    """2D transposed convolution computed as a sub-pixel convolution.

    A drop-in replacement for `keras.layers.Conv2DTranspose`: same
    constructor, config, variables (`kernel` of shape
    `(kernel_h, kernel_w, filters, in_channels)` and `bias` of shape
    `(filters,)`) and outputs, so weights can be copied between the two with
    `set_weights`. Input `(batch, height, width, in_channels)` maps to
    `(batch, height * s_h, width * s_w, filters)` for `padding="same"` and
    `(batch, (height - 1) * s_h + max(k_h, s_h), ..., filters)` for `"valid"`.

    Output phase `a` (`0 <= a < s`) of a stride-`s` transposed convolution
    only receives the kernel taps `t` with `t = a + crop (mod s)`, so every
    phase is a small stride-1 correlation of the padded input. This layer
    gathers the phases' sub-kernels from the transposed kernel into one
    stride-1 kernel with `s_h * s_w * filters` output channels, runs a single
    `ops.conv` and rearranges the channels into space (depth-to-space). The
    result is exact, not an approximation, and the gather happens inside
    `call`, so gradients flow into the original `kernel` variable.

    Why: on JAX's CPU backend the kernel gradient of a strided transposed
    convolution is very slow (about 445 ms for `64x7x7x128 -> 64x14x14x128`
    with a 5x5 kernel, against 3-4 ms for an ordinary convolution's
    gradients); the sub-pixel form only uses ordinary convolutions.

    Supports `data_format="channels_last"`, `padding="same"` or `"valid"`,
    any kernel size and stride, `dilation_rate=1` and `output_padding=None`;
    other settings fall back to `Conv2DTranspose.call`.

    Args:
        implementation: `"subpixel"`, `"native"` (`Conv2DTranspose.call`) or
            `"auto"` (default): sub-pixel on JAX only; TensorFlow and torch
            keep their own transposed-convolution kernels, faster there. The
            DCGAN training step (recipes/dcgan.py), steps/s at batch 64 on 2
            CPU cores, native vs sub-pixel: JAX 0.99 vs 3.30, torch 3.61 vs
            2.96; TensorFlow (tf.function with XLA) 0.39 vs 0.25, the medians
            of 5 interleaved rounds of `python benchmarks/dcgan_steps.py
            --backends tensorflow --modes compiled --implementations subpixel
            native --repeats 5 --seconds 3` on a machine shared with other
            jobs (a quieter run of the same comparison: 6.02-6.38 vs 5.45-5.47).
            Every other argument is `Conv2DTranspose`'s.

    Example:

    >>> x = np.random.rand(4, 7, 7, 128)
    >>> y = SubPixelConv2DTranspose(64, 5, strides=2, padding="same")(x)
    >>> print(y.shape)
    (4, 14, 14, 64)
    """

    def __init__(self, *args, implementation="auto", **kwargs):
        super().__init__(*args, **kwargs)
        if implementation not in ("auto", "subpixel", "native"):
            raise ValueError(
                f"SubPixelConv2DTranspose: implementation must be 'auto', 'subpixel' or "
                f"'native', got {implementation!r}"
            )
        self.implementation = implementation

    def get_config(self):
        return {**super().get_config(), "implementation": self.implementation}

    def build(self, input_shape):
        super().build(input_shape)
        native = self.implementation == "native" or (
            self.implementation == "auto" and keras.backend.backend() != "jax"
        )
        self._subpixel = (
            not native
            and self.data_format == "channels_last"
            and self.output_padding is None
            and self.dilation_rate == (1, 1)
        )
        if not self._subpixel:
            return
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        taps_h, self._pads_h, self._trim_h = _subpixel_axis(kh, sh, self.padding)
        taps_w, self._pads_w, self._trim_w = _subpixel_axis(kw, sw, self.padding)
        # Flat tap index, shape (window_h, window_w, s_h, s_w); kh * kw is the
        # zero row appended to the flattened kernel in `call`.
        th = taps_h[:, None, :, None]
        tw = taps_w[None, :, None, :]
        self._tap_index = np.where((th >= 0) & (tw >= 0), th * kw + tw, kh * kw).astype("int32")

    def call(self, inputs):
        if not self._subpixel:
            return super().call(inputs)
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        window_h, window_w = self._tap_index.shape[:2]
        in_channels = self.kernel.shape[-1]

        # Gather the stride-1 kernel (window_h, window_w, in, s_h * s_w * filters).
        kernel = ops.transpose(self.kernel, (0, 1, 3, 2))
        kernel = ops.reshape(kernel, (kh * kw, in_channels * self.filters))
        kernel = ops.pad(kernel, ((0, 1), (0, 0)))
        kernel = ops.take(kernel, self._tap_index, axis=0)
        kernel = ops.reshape(kernel, (window_h, window_w, sh, sw, in_channels, self.filters))
        kernel = ops.transpose(kernel, (0, 1, 4, 2, 3, 5))
        kernel = ops.reshape(kernel, (window_h, window_w, in_channels, sh * sw * self.filters))

        x = ops.pad(inputs, ((0, 0), self._pads_h, self._pads_w, (0, 0)))
        outputs = ops.conv(x, kernel, strides=1, padding="valid")

        # Depth-to-space: (b, h, w, s_h * s_w * filters) -> (b, h * s_h, w * s_w, filters).
        batch, height, width = ops.shape(outputs)[:3]
        outputs = ops.reshape(outputs, (batch, height, width, sh, sw, self.filters))
        outputs = ops.transpose(outputs, (0, 1, 3, 2, 4, 5))
        outputs = ops.reshape(outputs, (batch, height * sh, width * sw, self.filters))
        if self._trim_h or self._trim_w:
            outputs = outputs[:, : -self._trim_h or None, : -self._trim_w or None, :]

        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        if self.activation is not None:
            return self.activation(outputs)
        return outputs


def _check_images(layer, name, shape, expected=None):
    """ValueError unless `shape` is an image batch (batch, height, width, channels).

    The message names the layer, the argument (`name`) and the shape, `expected` in the layer's
    own terms when given.
    """
    if shape is None or len(shape) != 4:
        images = "(batch, height, width, channels)"
        wanted = images if expected is None else f"{expected} {images}"
        raise ValueError(
            f"{layer}: expected {name} of shape {wanted}, "
            f"got shape {None if shape is None else tuple(shape)}"
        )


@keras.saving.register_keras_serializable(package="layers")
class SpaceToDepthConv2D(keras.layers.Conv2D):
    """2D convolution with strides, computed as space-to-depth plus a stride-1 convolution.

    A drop-in replacement for `keras.layers.Conv2D`: same constructor, config, variables
    (`kernel` of shape `(k_h, k_w, in_channels, filters)`, `bias` of shape `(filters,)`) and
    outputs, so weights can be copied between the two with `set_weights`. The output is Conv2D's,

        y[i, j] = b + sum_{u, v} x[s_h i - p_h + u, s_w j - p_w + v] k[u, v]    ("same" padding,
                                                                                p the padding before),

    and `(batch, H, W, in_channels)` maps to `(batch, H / s_h, W / s_w, filters)`.

    Output pixel i reads input pixels `s i - p ... s i - p + k - 1`, which lie in the s x s
    blocks `i - m ... i + m` of the input. Cutting the input into those blocks (space-to-depth:
    `(H / s_h, W / s_w, s_h * s_w * in_channels)`) and gathering the kernel into a
    `(2m + 1) x (2m + 1)` kernel over blocks (zero where a block tap lies outside the k x k window)
    turns it into a stride-1 "same" convolution. Exact, not an approximation; the gather happens
    inside the call, so gradients flow into the original `kernel` variable.

    Why: a gradient penalty (WGAN-GP) differentiates the input gradient of the convolution with
    respect to its weights. On JAX's CPU backend the input gradient of a strided convolution is a
    dilated convolution whose own gradients are slow: the penalty's gradient for the WGAN-GP critic
    at batch 64 took 162 ms against 35 ms in this form, the whole WGAN-GP step 1,030 against
    420 ms. TensorFlow's native kernels beat the rearrangement (36 against 53 ms) and torch's are
    about even (56, 49).

    Supports `padding="same"` with input sizes divisible by the strides, channels_last,
    `dilation_rate=1` and `groups=1`; other settings (and stride 1) use `Conv2D` itself.

    Args:
        implementation: `"space_to_depth"`, `"native"` (`Conv2D`'s own op) or `"auto"`
            (default): space-to-depth on JAX only. Every other argument is `Conv2D`'s.

    Example:

    >>> x = np.random.rand(2, 28, 28, 1).astype("float32")
    >>> SpaceToDepthConv2D(32, 5, strides=2, padding="same")(x).shape
    (2, 14, 14, 32)
    """

    def __init__(self, *args, implementation="auto", **kwargs):
        super().__init__(*args, **kwargs)
        if implementation not in ("auto", "space_to_depth", "native"):
            raise ValueError(
                "SpaceToDepthConv2D: implementation must be 'auto', 'space_to_depth' or 'native', "
                f"got {implementation!r}"
            )
        self.implementation = implementation
        self.input_spec = None  # `build` checks the rank, with a message that names this layer.

    def get_config(self):
        return {**super().get_config(), "implementation": self.implementation}

    def build(self, input_shape):
        _check_images("SpaceToDepthConv2D", "inputs", input_shape)
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        _check_images("SpaceToDepthConv2D", "inputs", input_shape)
        return super().compute_output_shape(input_shape)

    def _rearranged(self, input_shape):
        """Whether this call computes the space-to-depth form (else Conv2D's own op)."""
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
        # kernel (2m + 1, 2m + 1, s_h * s_w * in, filters); input (N, H / s_h, W / s_w, s_h * s_w * in).
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


def _scatter_matrix(n_in, kernel_size, stride, padding):
    """0/1 array (n_in, kernel_size, n_out): input i, kernel tap t -> output i * stride + t - crop.

    Keras' placement of a transposed convolution along one axis (see `_subpixel_axis`).
    """
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


@keras.saving.register_keras_serializable(package="layers")
class MatMulConv2DTranspose(keras.layers.Conv2DTranspose):
    """2D transposed convolution computed as one matrix product, for inputs of a few pixels.

    A drop-in replacement for `keras.layers.Conv2DTranspose`: same constructor, config, variables
    (`kernel` of shape `(k_h, k_w, filters, in_channels)`, `bias` of shape `(filters,)`) and
    outputs. The whole linear map is one dense matrix,

        M[(i, j, c), (i', j', f)] = sum_{a, b} R[i, a, i'] C[j, b, j'] kernel[a, b, f, c]
        y = reshape(reshape(x, (N, h * w * in)) @ M, (N, h', w', filters)) + bias

    with R and C the 0/1 placement arrays of Keras' transposed convolution along the rows and
    columns (input i, kernel tap t -> output i * s + t - crop). Shapes: `(N, h, w, in_channels)`
    -> `(N, h * s_h, w * s_w, filters)` for `padding="same"` and
    `(N, (h - 1) * s_h + max(k_h, s_h), ..., filters)` for `"valid"`; h and w must be known when
    the layer is built. M has `h * w * in * h' * w' * filters` entries: use it for inputs of 1x1 or
    2x2 pixels only.

    Why: XLA:CPU (JAX) swaps the operands of a convolution whose input is smaller than its kernel,
    which made the pix2pix U-Net's 2x2 decoder block 30 to 40 times slower than this matrix product
    (batch 16, 512 channels: 2.2 s against 60 ms forward, 4.4 s against 0.11 s with gradients);
    torch gains 1.6 times on the U-Net's gradient, TensorFlow is unchanged.

    Supports `data_format="channels_last"`, `padding="same"` or `"valid"`, `dilation_rate=1` and
    `output_padding=None`; other settings use `Conv2DTranspose` itself.

    Example:

    >>> x = np.random.rand(4, 2, 2, 64).astype("float32")
    >>> MatMulConv2DTranspose(32, 4, strides=2, padding="same")(x).shape
    (4, 4, 4, 32)
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.input_spec = None  # `build` checks the shape, with a message that names this layer.

    def _matmul(self):
        return (
            self.data_format == "channels_last"
            and self.output_padding is None
            and self.dilation_rate == (1, 1)
        )

    def build(self, input_shape):
        _check_images("MatMulConv2DTranspose", "inputs", input_shape)
        if self._matmul() and None in tuple(input_shape)[1:]:
            raise ValueError(
                "MatMulConv2DTranspose: expected inputs of shape (batch, height, width, channels) "
                f"with known height, width and channels, got shape {tuple(input_shape)}"
            )
        super().build(input_shape)

    def compute_output_shape(self, input_shape):
        _check_images("MatMulConv2DTranspose", "inputs", input_shape)
        return super().compute_output_shape(input_shape)

    def call(self, inputs):
        if not self._matmul():
            return super().call(inputs)
        _, height, width, channels = inputs.shape
        (kh, kw), (sh, sw) = self.kernel_size, self.strides
        rows = _scatter_matrix(height, kh, sh, self.padding)  # (h, k_h, h')
        cols = _scatter_matrix(width, kw, sw, self.padding)  # (w, k_w, w')
        out_h, out_w = rows.shape[-1], cols.shape[-1]
        rows, cols = (ops.convert_to_tensor(m, dtype=self.compute_dtype) for m in (rows, cols))
        # kernel (k_h, k_w, filters, in) -> M ((h, w, in), (h', w', filters)); the einsum keeps
        # the kernel variable in the graph, so gradients reach it.
        matrix = ops.einsum("iao,jbp,abfc->ijcopf", rows, cols, self.kernel)
        matrix = ops.reshape(matrix, (height * width * channels, out_h * out_w * self.filters))
        outputs = ops.matmul(ops.reshape(inputs, (-1, height * width * channels)), matrix)
        outputs = ops.reshape(outputs, (-1, out_h, out_w, self.filters))
        if self.use_bias:
            outputs = outputs + self.bias
        return outputs if self.activation is None else self.activation(outputs)
