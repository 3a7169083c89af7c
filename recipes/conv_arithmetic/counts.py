"""D 4.1, 4.5, 4.6 and B 3.1: output sizes and parameter counts against Keras', grouped, depthwise
and 1x1 convolutions, and the receptive fields of stacked 3x3 convolutions."""

import numpy as np

from recipes import engine
from recipes.common import cli
from recipes.conv_arithmetic.example import conv2d, numpy

keras = cli.lazy_import("keras")

# (i, k, s, p) -> floor((i + 2p - k) / s) + 1; from the notes and B 3.1 (227 -> 112).
SIZE_CASES = (
    (32, 5, 1, 0),
    (28, 5, 1, 0),
    (32, 3, 2, 1),
    (7, 3, 2, 0),
    (32, 5, 2, 0),
    (28, 5, 2, 0),
    (227, 5, 2, 0),
    (227, 11, 4, 2),
    (28, 3, 1, 1),
    (55, 3, 2, 0),
)
GROUPS = (1, 2, 4, 8, 64)


def output_size(i, k, s=1, p=0):
    """O = floor((i + 2p - k) / s) + 1."""
    return (i + 2 * p - k) // s + 1


def notes_shapes():
    """Examples II-IV: output shapes and count_params of Keras layers on a (32, 32, 3) input.

    II: one (5, 5, 3) kernel -> (28, 28, 1); III: four -> (28, 28, 4) with 5*5*3*4 + 4 = 304
    parameters; IV: then ten (5, 5, 4) kernels -> (24, 24, 10) with 5*5*4*10 + 10 = 1010.
    """
    x = keras.Input((32, 32, 3))
    one = keras.layers.Conv2D(1, 5)
    four = keras.layers.Conv2D(4, 5)
    ten = keras.layers.Conv2D(10, 5)
    y1, y4 = one(x), four(x)  # (N, 28, 28, 1), (N, 28, 28, 4)
    y10 = ten(y4)  # (N, 24, 24, 10)
    return {
        "II": (tuple(y1.shape[1:]), one.count_params()),
        "III": (tuple(y4.shape[1:]), four.count_params()),
        "IV": (tuple(y10.shape[1:]), ten.count_params()),
    }


def size_table():
    """[(i, k, s, p, formula, Keras valid+ZeroPadding2D, same: formula, Keras; transpose: ...)].

    4.5's O = floor((i + 2p - k) / s) + 1 against ZeroPadding2D + Conv2D; padding="same" gives
    ceil(i / s), Conv2DTranspose "valid" (i - 1) s + k.
    """
    rows = []
    for i, k, s, p in SIZE_CASES:
        x = keras.Input((i, i, 1))
        valid = keras.layers.Conv2D(1, k, strides=s)(keras.layers.ZeroPadding2D(p)(x) if p else x)
        same = keras.layers.Conv2D(1, k, strides=s, padding="same")(x)
        transposed = keras.layers.Conv2DTranspose(1, k, strides=s)(x)
        rows.append(
            {
                "i": i,
                "k": k,
                "s": s,
                "p": p,
                "formula": output_size(i, k, s, p),
                "keras": valid.shape[1],
                "same_formula": -(-i // s),
                "same_keras": same.shape[1],
                "transpose_formula": (i - 1) * s + k,
                "transpose_keras": transposed.shape[1],
            }
        )
    return rows


def layer_params(layer, channels):
    layer.build((None, None, None, channels))
    return layer.count_params()


def grouped_table(size, c_in=64, c_out=128, k=3):
    """Conv2D(c_in -> c_out, k, groups=G): count_params, the formula, multiply-adds on size x size.

    B 3.1: K K C_in C_out / G weights + C_out biases (73,856 / 36,992 / 18,560 / 9,344 / 1,280 for
    G = 1, 2, 4, 8, 64) and G (K K C_in / G)(H W C_out / G) multiply-adds. Depthwise 3x3 on 64
    channels: 640 parameters; SeparableConv2D(128, 3): 8,896.
    """
    rows = []
    for groups in GROUPS:
        params = layer_params(keras.layers.Conv2D(c_out, k, padding="same", groups=groups), c_in)
        formula = k * k * (c_in // groups) * c_out + c_out
        macs = groups * (k * k * c_in // groups) * (size * size * c_out // groups)
        rows.append({"groups": groups, "params": params, "formula": formula, "multiply_adds": macs})
    depthwise = layer_params(keras.layers.DepthwiseConv2D(k), c_in)
    separable = layer_params(keras.layers.SeparableConv2D(c_out, k), c_in)
    return {
        "grouped": rows,
        "depthwise": {"params": depthwise, "formula": k * k * c_in + c_in},
        "separable": {
            "params": separable,
            "formula": k * k * c_in + c_in * c_out + c_out,
            "multiply_adds": size * size * (k * k * c_in + c_in * c_out),
        },
    }


def grouped_equals_split(seed, groups=2):
    """Conv2D(groups=G) against G ordinary Conv2Ds on the channel groups, concatenated."""
    from keras import ops

    rng = np.random.default_rng(seed)
    c_in, c_out = 4, 6
    x = rng.standard_normal((1, 6, 6, c_in)).astype("float32")
    grouped = keras.layers.Conv2D(c_out, 3, groups=groups)
    grouped.build(x.shape)
    kernel = rng.standard_normal((3, 3, c_in // groups, c_out)).astype("float32")
    bias = rng.standard_normal(c_out).astype("float32")
    grouped.set_weights([kernel, bias])
    size_in, size_out = c_in // groups, c_out // groups
    parts = []
    for g in range(groups):
        part = keras.layers.Conv2D(size_out, 3)
        part.build((None, 6, 6, size_in))
        outs = slice(g * size_out, (g + 1) * size_out)
        part.set_weights([kernel[:, :, :, outs], bias[outs]])
        parts.append(part(x[..., g * size_in : (g + 1) * size_in]))  # (1, 4, 4, 3)
    return float(np.abs(numpy(grouped(x)) - numpy(ops.concatenate(parts, axis=-1))).max())


def _count(layers, c_in):
    """The parameters of a chain of convolutions on `c_in` channels."""
    total = 0
    for layer in layers:
        total += layer_params(layer, c_in)
        c_in = layer.filters
    return total


def bottleneck(size, channels=128, reduced=32):
    """4.6: a 3x3 conv directly against a 1x1 reduction followed by the 3x3 conv.

    1x1 128 -> 32 then 3x3 32 -> 128 needs 4,096 + 36,864 = 40,960 weights against 147,456 for a
    direct 3x3 128 -> 128: 3.6x fewer weights and multiply-adds.
    """

    def convs(use_bias):
        return {
            "direct": [keras.layers.Conv2D(channels, 3, padding="same", use_bias=use_bias)],
            "bottleneck": [
                keras.layers.Conv2D(reduced, 1, use_bias=use_bias),
                keras.layers.Conv2D(channels, 3, padding="same", use_bias=use_bias),
            ],
        }

    weights = {name: _count(layers, channels) for name, layers in convs(False).items()}
    with_bias = {name: _count(layers, channels) for name, layers in convs(True).items()}
    # One multiply-add per weight per output pixel ("same" padding keeps size x size).
    macs = {name: n * size * size for name, n in weights.items()}
    return {
        "weights": weights,
        "with_bias": with_bias,
        "multiply_adds": macs,
        "saving": weights["direct"] / weights["bottleneck"],
        # Two stacked 3x3 convolutions see as far as one 5x5 (three: 7x7), with 2 * 9 C^2 weights
        # against 25 C^2: 294,912 vs 409,600 at C = 128.
        "vgg_two_3x3": 2 * 9 * channels**2,
        "vgg_one_5x5": 25 * channels**2,
    }


def one_by_one_is_dense(seed):
    """A 1x1 convolution is a Dense layer applied to every pixel (same weights)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 4, 4, 5)).astype("float32")
    conv = keras.layers.Conv2D(3, 1)
    dense = keras.layers.Dense(3)
    conv.build(x.shape)
    dense.build(x.shape)
    kernel, bias = (
        rng.standard_normal((5, 3)).astype("float32"),
        rng.standard_normal(3).astype("float32"),
    )
    conv.set_weights([kernel[None, None], bias])
    dense.set_weights([kernel, bias])
    return float(np.abs(numpy(conv(x)) - numpy(dense(x))).max())  # both (2, 4, 4, 3)


def receptive_fields(layers=(1, 2, 3), size=9):
    """Gradient of the centre output of L stacked 3x3 convolutions (all-ones kernels) w.r.t. the input.

    Its non-zero support is the receptive field, L (k - 1) + 1 wide; the values count the paths.
    """
    from keras import ops

    ones = np.ones((3, 3), "float32")
    maps = {}
    for depth in layers:
        stack = [conv2d(ones, padding="same") for _ in range(depth)]
        x = ops.zeros((1, size, size, 1))

        def centre(x, stack=stack):
            for layer in stack:
                x = layer(x)
            return x[0, size // 2, size // 2, 0]

        _, (grad,) = engine.value_and_grad(centre, [x])
        grad = numpy(grad)[0, :, :, 0]  # (size, size)
        rows, cols = np.nonzero(grad)
        maps[depth] = {"map": grad, "height": int(np.ptp(rows) + 1), "width": int(np.ptp(cols) + 1)}
    return maps
