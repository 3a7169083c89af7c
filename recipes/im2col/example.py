"""A 6.1's example: x = arange(147) as (1, 3, 7, 7), a 5x5 filter, stride 1, no padding (Fig. 21).

3 x 3 = 9 windows of 3 * 5 * 5 = 75 values give a (9, 75) matrix, (90, 75) for N = 10. The element
22 sits at (c, h, w) = (0, 3, 1) and lies in 3 x 2 = 6 of the windows: its gradient is the sum of
the six dcol values at its copies, -0.53 + 0.77 + 0.05 + 0.03 + 0.29 - 0.29 = 0.32.
"""

import numpy as np

from recipes import engine
from recipes.common import cli

keras = cli.lazy_import("keras")

EXAMPLE_SHAPE = (1, 3, 7, 7)
EXAMPLE_FILTER = 5
ELEMENT = 22
ELEMENT_POSITION = (0, 0, 3, 1)  # (n, c, h, w) of the value 22 in arange(147)
DCOL_TERMS = (-0.53, 0.77, 0.05, 0.03, 0.29, -0.29)  # the notes' terms, summing to 0.32


def example_input():
    return np.arange(np.prod(EXAMPLE_SHAPE), dtype="float32").reshape(EXAMPLE_SHAPE)


def element_copies(shape, fh, fw, position, stride=1, pad=0):
    """[(row, column)] of the im2col matrix holding the input element at `position` (n, c, h, w).

    Row (n * OH + oh) * OW + ow is window (oh, ow); column (c * FH + i) * FW + j holds its pixel
    (i, j) of channel c, i.e. input (oh * S - P + i, ow * S - P + j).
    """
    from layers.im2col import conv_output_size

    n, c, h, w = position
    out_h = conv_output_size(shape[2], fh, stride, pad)
    out_w = conv_output_size(shape[3], fw, stride, pad)
    copies = []
    for oh in range(out_h):
        for ow in range(out_w):
            i, j = h + pad - oh * stride, w + pad - ow * stride
            if 0 <= i < fh and 0 <= j < fw:
                copies.append(((n * out_h + oh) * out_w + ow, (c * fh + i) * fw + j))
    return copies


def example_dcol(seed):
    """A (9, 75) upstream gradient: random hundredths, the notes' six terms at element 22's copies.

    The figure's other dcol values are not in the text, so they are drawn (seeded).
    """
    shape = EXAMPLE_SHAPE
    rows = (shape[2] - EXAMPLE_FILTER + 1) * (shape[3] - EXAMPLE_FILTER + 1)
    rng = np.random.default_rng(seed)
    dcol = np.round(rng.uniform(-1, 1, (rows, shape[1] * EXAMPLE_FILTER**2)), 2).astype("float32")
    copies = element_copies(shape, EXAMPLE_FILTER, EXAMPLE_FILTER, ELEMENT_POSITION)
    for (row, column), term in zip(copies, DCOL_TERMS):
        dcol[row, column] = term
    return dcol, copies


def autodiff_input_gradient(x, dcol, fh, fw, stride=1, pad=0):
    """d/dx of sum(im2col(x) * dcol), taken by the backend through the engine."""
    from keras import ops

    from layers.im2col import im2col

    x = ops.convert_to_tensor(x)
    dcol = ops.convert_to_tensor(dcol)

    def weighted_sum(x):
        # Its gradient is dcol folded back onto x: what col2im computes by hand.
        return ops.sum(ops.multiply(im2col(x, fh, fw, stride, pad), dcol))

    _, (grad,) = engine.value_and_grad(weighted_sum, [x])
    return ops.convert_to_numpy(grad)


def notes_example(seed):
    """The (9, 75) / (90, 75) shapes, the window counts and the dx of element 22."""
    from keras import ops

    from layers.im2col import col2im, im2col

    x = example_input()
    col = ops.convert_to_numpy(im2col(x, EXAMPLE_FILTER, EXAMPLE_FILTER))  # (9, 75)
    batch = np.random.default_rng(seed).standard_normal((10, *EXAMPLE_SHAPE[1:])).astype("float32")
    col_10 = im2col(batch, EXAMPLE_FILTER, EXAMPLE_FILTER)  # (90, 75)
    # col2im of ones counts the windows that cover each element (the sum over its copies).
    counts = ops.convert_to_numpy(
        col2im(np.ones_like(col), EXAMPLE_SHAPE, EXAMPLE_FILTER, EXAMPLE_FILTER)
    )  # (1, 3, 7, 7)
    dcol, copies = example_dcol(seed)
    dx = ops.convert_to_numpy(col2im(dcol, EXAMPLE_SHAPE, EXAMPLE_FILTER, EXAMPLE_FILTER))
    dx_autodiff = autodiff_input_gradient(x, dcol, EXAMPLE_FILTER, EXAMPLE_FILTER)
    assert all(col[row, column] == ELEMENT for row, column in copies)
    return {
        "x": x,
        "col": col,
        "col_shape": tuple(col.shape),
        "col_shape_batch_10": tuple(col_10.shape),
        "counts": counts,
        "dcol": dcol,
        "copies": copies,
        "dx": dx,
        "dx_element": float(dx[ELEMENT_POSITION]),
        "dx_vs_autodiff": float(np.abs(dx - dx_autodiff).max()),
    }


def filter_product(x, filters):
    """A 6.1's convolution: im2col(x) @ F reshaped to (C * FH * FW, FN), as (N, FN, OH, OW)."""
    from keras import ops

    from layers.im2col import conv_output_size, im2col

    n, _, h, w = x.shape
    fn, _, fh, fw = filters.shape
    col = im2col(x, fh, fw)  # (N * OH * OW, C * FH * FW)
    out = ops.matmul(col, ops.transpose(ops.reshape(filters, (fn, -1))))  # (N * OH * OW, FN)
    out = ops.reshape(out, (n, conv_output_size(h, fh), conv_output_size(w, fw), fn))
    return ops.convert_to_numpy(ops.transpose(out, (0, 3, 1, 2)))  # (N, FN, OH, OW)


def filter_product_vs_conv2d(seed):
    """The notes' (1, 3, 7, 7) * (1, 3, 5, 5) convolution as im2col @ F against Keras' Conv2D."""
    x = example_input() / 100
    filters = np.random.default_rng(seed).standard_normal((1, 3, 5, 5)).astype("float32")
    conv = keras.layers.Conv2D(1, 5, use_bias=False)
    conv.build((None, 7, 7, 3))
    conv.set_weights([filters.transpose(2, 3, 1, 0)])  # (FN, C, FH, FW) -> (FH, FW, C, FN)
    expected = keras.ops.convert_to_numpy(conv(x.transpose(0, 2, 3, 1))).transpose(0, 3, 1, 2)
    got = filter_product(x, filters)
    return got.shape, float(np.abs(got - expected).max())
