"""im2col and col2im, and a convolution and a max pooling built on them (A 6.1).

im2col lays every receptive field of a 4-D input out as one row of a 2-D matrix, so that a
convolution becomes a single matrix product with the reshaped filters; col2im is its adjoint
(transpose), which sums the rows back into the image and is therefore the input gradient.

The functions `im2col` / `col2im` work on channels-first `(N, C, H, W)` arrays, as the notes (and
Saito's book, whose example they use) do: a row holds one window in the order `(C, FH, FW)`, so a
filter bank `(FN, C, FH, FW)` reshaped to `(FN, C * FH * FW)` and transposed multiplies it. The
layers `Im2ColConv2D` and `Im2ColMaxPool2D` are channels-last `(N, H, W, C)` like Keras'
built-ins; their rows hold a window in the order `(FH, FW, C)`, the order of a Conv2D kernel
`(FH, FW, C, FN)` reshaped to `(FH * FW * C, FN)`.

Output size (A 6.1): OH = (H + 2P - FH) // S + 1 for the convolution and
POH = (H - PH) // S + 1 for the pooling; Keras' `padding="same"` gives ceil(H / S) and pads
`max((OH - 1) * S + FH - H, 0)` rows, the smaller half on top.
"""

import math

import keras
import numpy as np
from keras import ops


def conv_output_size(size, kernel, stride=1, pad=0):
    """OH = (H + 2P - FH) // S + 1."""
    return (size + 2 * pad - kernel) // stride + 1


def _same_padding(size, kernel, stride):
    """(output size, top pad, bottom pad) of Keras' padding="same" along one axis."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def _window_index(height, width, window, strides, out_hw):
    """Flat positions (OH, OW, FH * FW) of every window pixel in a (height, width) grid.

    Saito's im2col copies x[..., i + S_h oh, j + S_w ow] into window (oh, ow), pixel (i, j) with
    one strided slice per (i, j); this precomputes all those positions at once, so that unfolding
    is one gather (and its gradient, col2im, one scatter-add) whatever the filter size.
    """
    (fh, fw), (sh, sw), (out_h, out_w) = window, strides, out_hw
    rows = sh * np.arange(out_h)[:, None, None, None] + np.arange(fh)[None, None, :, None]
    cols = sw * np.arange(out_w)[None, :, None, None] + np.arange(fw)[None, None, None, :]
    return (rows * width + cols).reshape(out_h, out_w, fh * fw).astype("int32")


def _check_nchw(name, shape, fh, fw, stride, pad):
    if len(shape) != 4 or any(d is None for d in shape[1:]):
        raise ValueError(f"{name} expects x of shape (N, C, H, W), got shape {tuple(shape)}")
    if min(fh, fw, stride) < 1 or pad < 0:
        raise ValueError(f"{name}: filter sizes and stride must be >= 1 and pad >= 0")
    out_h = conv_output_size(shape[2], fh, stride, pad)
    out_w = conv_output_size(shape[3], fw, stride, pad)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"{name}: a {fh}x{fw} filter does not fit a {shape[2]}x{shape[3]} input with pad {pad}"
        )
    return out_h, out_w


def im2col(x, fh, fw, stride=1, pad=0):
    """Unfolds `x` of shape (N, C, H, W) into the matrix (N * OH * OW, C * FH * FW).

    Row `(n * OH + oh) * OW + ow` is the window of image `n` whose top-left corner is
    `(oh * S - P, ow * S - P)`, flattened in the order (C, FH, FW); zeros stand for the padding.
    Example of the notes: a (1, 3, 7, 7) input and a 5x5 filter give 3 x 3 = 9 windows of
    3 * 5 * 5 = 75 values, a (9, 75) matrix ((90, 75) for N = 10).
    """
    x = ops.convert_to_tensor(x)
    out_h, out_w = _check_nchw("im2col", x.shape, fh, fw, stride, pad)
    _, c, h, w = x.shape
    height, width = h + 2 * pad, w + 2 * pad
    index = _window_index(height, width, (fh, fw), (stride, stride), (out_h, out_w))
    x = ops.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    col = ops.take(ops.reshape(x, (-1, c, height * width)), index, axis=2)  # (N, C, OH, OW, FH*FW)
    col = ops.transpose(col, (0, 2, 3, 1, 4))
    return ops.reshape(col, (-1, c * fh * fw))


def col2im(col, input_shape, fh, fw, stride=1, pad=0):
    """The adjoint of `im2col`: sums the rows of `col` back into an (N, C, H, W) image.

    Every entry of `col` is added to the input position it was copied from, so an input element
    receives the sum of `dcol` over every window that contains it: `col2im(dcol)` is the gradient
    of `sum(im2col(x) * dcol)` with respect to `x`, and `col2im` of all ones counts, per element,
    the windows covering it.
    """
    out_h, out_w = _check_nchw("col2im", tuple(input_shape), fh, fw, stride, pad)
    n, c, h, w = (int(d) for d in input_shape)
    col = ops.convert_to_tensor(col)
    if tuple(col.shape) != (n * out_h * out_w, c * fh * fw):
        raise ValueError(
            f"col2im expects col of shape (N * OH * OW, C * FH * FW) = "
            f"({n * out_h * out_w}, {c * fh * fw}) for input {(n, c, h, w)}, got {tuple(col.shape)}"
        )
    height, width = h + 2 * pad, w + 2 * pad
    index = _window_index(height, width, (fh, fw), (stride, stride), (out_h, out_w))
    # One value per (window, pixel) and image channel, summed into its padded-image position.
    col = ops.reshape(col, (n, out_h * out_w, c, fh * fw))
    col = ops.reshape(ops.transpose(col, (1, 3, 0, 2)), (-1, n * c))
    image = ops.segment_sum(col, index.reshape(-1), num_segments=height * width)
    image = ops.transpose(ops.reshape(image, (height, width, n, c)), (2, 3, 0, 1))
    return image[:, :, pad : pad + h, pad : pad + w]


def _patches(x, window, strides, padding, pad_value):
    """The windows of a channels-last `x` (N, H, W, C): (N, OH, OW, FH * FW, C).

    Reshaped to (N, OH, OW, FH * FW * C) they are the im2col rows in the order (FH, FW, C) of a
    Conv2D kernel reshaped to (FH * FW * C, FN).
    """
    (fh, fw), (sh, sw) = window, strides
    h, w, c = x.shape[1:]
    if padding == "same":
        out_h, top, bottom = _same_padding(h, fh, sh)
        out_w, left, right = _same_padding(w, fw, sw)
        if top or bottom or left or right:
            x = ops.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad_value)
        h, w = h + top + bottom, w + left + right
    else:
        out_h, out_w = (h - fh) // sh + 1, (w - fw) // sw + 1
    index = _window_index(h, w, window, strides, (out_h, out_w))
    return ops.take(ops.reshape(x, (-1, h * w, c)), index, axis=1)


def _pair(value, name, layer):
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and v >= 1 for v in pair):
        raise ValueError(f"{layer}: {name} must be a positive int or a pair of them, got {value!r}")
    return pair


def _padding(value, layer):
    value = str(value).lower()
    if value not in ("valid", "same"):
        raise ValueError(f"{layer}: padding must be 'valid' or 'same', got {value!r}")
    return value


def _check_image(layer, input_shape, window, padding, channels=None):
    """The (N, H, W, C) input shape, or a ValueError naming the layer and the expected shape."""
    shape = tuple(input_shape) if input_shape is not None else None
    expected = f"(batch, height, width, {channels if channels else 'channels'})"
    if (
        shape is None
        or len(shape) != 4
        or any(d is None for d in shape[1:])
        or (channels is not None and shape[3] != channels)
    ):
        raise ValueError(
            f"{layer} expects input of shape {expected} with known height, width and channels, "
            f"got shape {shape}"
        )
    if padding == "valid" and (shape[1] < window[0] or shape[2] < window[1]):
        raise ValueError(
            f"{layer} expects input of shape {expected} with height >= {window[0]} and width >= "
            f"{window[1]} for padding='valid', got shape {shape}"
        )
    return shape


def _output_hw(shape, window, strides, padding):
    if padding == "same":
        return tuple(math.ceil(shape[1 + a] / strides[a]) for a in range(2))
    return tuple((shape[1 + a] - window[a]) // strides[a] + 1 for a in range(2))


@keras.saving.register_keras_serializable(package="layers")
class Im2ColConv2D(keras.layers.Layer):
    """2D convolution as im2col + one matrix product, with `keras.layers.Conv2D`'s weights.

        col = im2col(x)                        (N, OH, OW, FH * FW * C)
        y   = col @ reshape(kernel, (FH * FW * C, FN)) + bias

    The kernel has Conv2D's layout `(FH, FW, C, FN)` and the bias shape `(FN,)`, so weights copy
    between the two layers with `set_weights` and the outputs agree; like Conv2D (and the notes,
    D 4.1) it computes a cross-correlation. The matrix `col` holds every input value
    FH * FW / (S_h * S_w) times (9x for a 3x3 stride-1 kernel): the price of turning the
    convolution into one large, fast matrix product.

    Shapes: `(batch, H, W, C)` -> `(batch, OH, OW, filters)`, with OH = (H - FH) // S + 1 for
    `padding="valid"` and OH = ceil(H / S) for `"same"` (zero padding, the smaller half on top, as
    Keras does). Height and width must be known: the window positions are computed once, in
    `call`, for the input's size.

    Args:
        filters: number of filters FN.
        kernel_size: int or (FH, FW).
        strides: int or (S_h, S_w).
        padding: "valid" or "same".
        activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
        bias_regularizer, kernel_constraint, bias_constraint: as in `keras.layers.Conv2D`.

    Example:

    >>> x = np.random.rand(2, 7, 7, 3).astype("float32")
    >>> Im2ColConv2D(4, 5)(x).shape
    (2, 3, 3, 4)
    """

    def __init__(
        self,
        filters,
        kernel_size,
        strides=1,
        padding="valid",
        activation=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(filters, int) or filters < 1:
            raise ValueError(f"Im2ColConv2D: filters must be a positive int, got {filters!r}")
        self.filters = filters
        self.kernel_size = _pair(kernel_size, "kernel_size", "Im2ColConv2D")
        self.strides = _pair(strides, "strides", "Im2ColConv2D")
        self.padding = _padding(padding, "Im2ColConv2D")
        self.activation = keras.activations.get(activation)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)

    def build(self, input_shape):
        channels = _check_image("Im2ColConv2D", input_shape, self.kernel_size, self.padding)[3]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(*self.kernel_size, channels, self.filters),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.filters,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.input_spec = keras.InputSpec(ndim=4, axes={-1: channels})

    def call(self, inputs):
        _check_image("Im2ColConv2D", inputs.shape, self.kernel_size, self.padding, self.kernel.shape[2])
        windows = _patches(inputs, self.kernel_size, self.strides, self.padding, 0.0)
        _, out_h, out_w, size, channels = windows.shape
        col = ops.reshape(windows, (-1, out_h, out_w, size * channels))  # rows (FH, FW, C)
        kernel = ops.reshape(self.kernel, (-1, self.filters))
        outputs = ops.matmul(col, kernel)
        if self.bias is not None:
            outputs = ops.add(outputs, self.bias)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def compute_output_shape(self, input_shape):
        shape = _check_image("Im2ColConv2D", input_shape, self.kernel_size, self.padding)
        return (shape[0], *_output_hw(shape, self.kernel_size, self.strides, self.padding), self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "strides": self.strides,
            "padding": self.padding,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
        }


@keras.saving.register_keras_serializable(package="layers")
class Im2ColMaxPool2D(keras.layers.Layer):
    """2D max pooling as im2col + a max over each window, equal to `keras.layers.MaxPooling2D`.

        y[n, oh, ow, c] = max over the PH x PW window of channel c

    The windows are the im2col rows, taken channel by channel: `(N, OH, OW, PH * PW, C)`, and the
    max runs over the window axis (Saito's pooling layer does the same on channels-first data). The
    gradient goes to the maximum of each window. With `padding="same"` the padding never wins
    the max (it is -inf), as in Keras.

    Shapes: `(batch, H, W, C)` -> `(batch, POH, POW, C)` with POH = (H - PH) // S + 1 for
    `padding="valid"` (A 6.1) and POH = ceil(H / S) for `"same"`; height and width must be
    known.

    Args:
        pool_size: int or (PH, PW); default 2.
        strides: int, pair or None (default: `pool_size`, as in MaxPooling2D).
        padding: "valid" or "same".

    Example:

    >>> x = np.random.rand(2, 7, 7, 3).astype("float32")
    >>> Im2ColMaxPool2D(2)(x).shape
    (2, 3, 3, 3)
    """

    def __init__(self, pool_size=2, strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _pair(pool_size, "pool_size", "Im2ColMaxPool2D")
        strides = self.pool_size if strides is None else strides
        self.strides = _pair(strides, "strides", "Im2ColMaxPool2D")
        self.padding = _padding(padding, "Im2ColMaxPool2D")

    def build(self, input_shape):
        channels = _check_image("Im2ColMaxPool2D", input_shape, self.pool_size, self.padding)[3]
        self.input_spec = keras.InputSpec(ndim=4, axes={-1: channels})

    def call(self, inputs):
        _check_image("Im2ColMaxPool2D", inputs.shape, self.pool_size, self.padding)
        windows = _patches(inputs, self.pool_size, self.strides, self.padding, float("-inf"))
        return ops.max(windows, axis=3)

    def compute_output_shape(self, input_shape):
        shape = _check_image("Im2ColMaxPool2D", input_shape, self.pool_size, self.padding)
        return (shape[0], *_output_hw(shape, self.pool_size, self.strides, self.padding), shape[3])

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": self.pool_size,
            "strides": self.strides,
            "padding": self.padding,
        }
