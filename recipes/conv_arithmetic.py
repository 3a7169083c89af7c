"""Convolution arithmetic: the worked example, its backprop, output sizes and parameter counts.

Reproduces section 4 ("Convolution" 4.1-4.6) of seeds/003, with the grouped and depthwise
convolutions of Part II section 3.1 of seeds/001:

- 4.1/4.2: a CNN "convolution" is a cross-correlation, (f * g)(i, j) = sum_pq f(p, q) g(i + p, j + q).
  The worked example I with kernel [[1, 2], [3, 4]] on x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]] gives
  [[37, 47], [67, 77]] through keras.layers.Conv2D; a true (flipped) convolution would give
  [[23, 33], [53, 63]]. Output size O = i - K + 1: (5, 5, 3) * (32, 32, 3) -> (28, 28, 1); four
  kernels -> (28, 28, 4) with 5*5*3*4 + 4 = 304 parameters; then ten (5, 5, 4) kernels ->
  (24, 24, 10) with 5*5*4*10 + 10 = 1010 (both checked with Keras' count_params).
- 4.3: for L = sum(G * O) the kernel gradient is the input cross-correlated with G = dL/dO,
  dL/dw = x * G: with G = [[1, 2], [3, 4]] the same [[37, 47], [67, 77]] (backprop of a convolution
  is a convolution). The input gradient is the full convolution of G with w: for w = [[1, 0],
  [0, -1]], dL/dx = [[1, 2, 0], [3, 3, -2], [0, -3, -4]]. Both are taken by the backend's autodiff.
- 4.5: O = floor((i + 2p - k) / s) + 1, checked against Keras' output shapes (ZeroPadding2D +
  Conv2D); padding="same" gives ceil(i / s), Conv2DTranspose "valid" (i - 1) s + k. The notes'
  parameter count w x w x C x D x K counts the output channels twice (erratum: w*w*C*D + D).
- Grouped convolution (seeds/001 II 3.1): Conv2D(64 -> 128, 3, groups=G) has 9 * 64 * 128 / G
  weights + 128 biases (73,856 / 36,992 / 18,560 / 9,344 / 1,280 for G = 1, 2, 4, 8, 64) and
  G (K K C_in / G)(H W C_out / G) multiply-adds; it equals G separate convolutions on the channel
  groups. Depthwise 3x3 on 64 channels: 640 parameters; SeparableConv2D(128, 3): 8,896.
- 4.6: a 1x1 convolution is a per-pixel Dense layer. As a bottleneck, 1x1 128 -> 32 then 3x3
  32 -> 128 needs 4,096 + 36,864 = 40,960 weights against 147,456 for a direct 3x3 128 -> 128 (3.6x
  fewer weights and multiply-adds). Two stacked 3x3 convolutions see a 5x5 receptive field (three:
  7x7) with 2 * 9 C^2 weights against 25 C^2 (294,912 vs 409,600 at C = 128).

No training: a run takes a second or two (that is also the --quick run). Outputs (under --out,
default runs/conv_arithmetic): conv_arithmetic.png (the worked example and its gradients, the
receptive fields of 1-3 stacked 3x3 convolutions as gradient maps, parameter counts), summary.json.

    python -m recipes.conv_arithmetic
    KERAS_BACKEND=torch python -m recipes.conv_arithmetic --size 56
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli

keras = cli.lazy_import("keras")

SECTION = "D 4.1-4.6, B II 3.1"
HIDDEN = argparse.SUPPRESS  # RunConfig's training flags mean nothing here: hidden from --help.
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")

X = np.arange(1, 10, dtype="float32").reshape(3, 3)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
KERNEL = np.array([[1, 2], [3, 4]], "float32")
G = np.array([[1, 2], [3, 4]], "float32")  # dL/dO of section 4.3's example
W_FOR_DX = np.array([[1, 0], [0, -1]], "float32")

# (i, k, s, p) -> floor((i + 2p - k) / s) + 1; from the notes and seeds/001 II 3.1 (227 -> 112).
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


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, HIDDEN)
    batch_size: int = cli.option(1, HIDDEN)
    dataset: str = cli.option(None, HIDDEN)
    data_dir: str = cli.option(None, HIDDEN)
    resume: bool = cli.option(False, HIDDEN)
    size: int = cli.option(28, "height and width of the feature maps for the multiply-add counts")


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def conv2d(kernel, **kwargs):
    """A built single-channel Conv2D without bias holding `kernel` (KH, KW)."""
    layer = keras.layers.Conv2D(1, kernel.shape, use_bias=False, **kwargs)
    layer.build((None, None, None, 1))
    layer.set_weights([kernel[:, :, None, None]])
    return layer


def as_image(x):
    return keras.ops.convert_to_tensor(x[None, :, :, None])


# ---------------------------------------------------------------------------------------------
# 4.1-4.3: the worked example and its gradients


def correlate_valid(x, k):
    """NumPy reference: out[i, j] = sum_pq k[p, q] x[i + p, j + q]."""
    kh, kw = k.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1), x.dtype)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(k * x[i : i + kh, j : j + kw])
    return out


def worked_example():
    """Section 4.1's example I through Keras' Conv2D; the flipped kernel is the true convolution."""
    layer = conv2d(KERNEL)
    output = numpy(layer(as_image(X)))[0, :, :, 0]
    flipped = numpy(conv2d(KERNEL[::-1, ::-1].copy())(as_image(X)))[0, :, :, 0]
    terms = [
        " + ".join(f"{int(KERNEL[p, q])}*{int(X[i + p, j + q])}" for p in range(2) for q in range(2))
        for i in range(2)
        for j in range(2)
    ]
    return {"output": output, "true_convolution": flipped, "terms": terms}


def conv_gradients():
    """Section 4.3: dL/dw (G = dL/dO) and dL/dx (w = [[1, 0], [0, -1]]) of L = sum(G * conv(x, w))."""
    from keras import ops

    upstream = ops.convert_to_tensor(G[None, :, :, None])
    layer = conv2d(KERNEL)
    _, (d_kernel,) = engine.value_and_grad(
        lambda: ops.sum(ops.multiply(layer(as_image(X)), upstream)), [layer.kernel]
    )
    layer_dx = conv2d(W_FOR_DX)
    _, (d_x,) = engine.value_and_grad(
        lambda x: ops.sum(ops.multiply(layer_dx(x), upstream)), [as_image(X)]
    )
    # The full convolution of G with w: G zero-padded by 1, correlated with w flipped.
    full = correlate_valid(np.pad(G, 1), W_FOR_DX[::-1, ::-1])
    return {
        "d_kernel": numpy(d_kernel)[:, :, 0, 0],
        "x_correlate_g": correlate_valid(X, G),
        "d_x": numpy(d_x)[0, :, :, 0],
        "full_convolution": full,
    }


# ---------------------------------------------------------------------------------------------
# 4.1-4.5: shapes, output sizes and parameter counts


def output_size(i, k, s=1, p=0):
    """O = floor((i + 2p - k) / s) + 1."""
    return (i + 2 * p - k) // s + 1


def notes_shapes():
    """Examples II-IV: output shapes and count_params of Keras layers on a (32, 32, 3) input."""
    x = keras.Input((32, 32, 3))
    one = keras.layers.Conv2D(1, 5)
    four = keras.layers.Conv2D(4, 5)
    ten = keras.layers.Conv2D(10, 5)
    y1, y4 = one(x), four(x)
    y10 = ten(y4)
    return {
        "II": (tuple(y1.shape[1:]), one.count_params()),
        "III": (tuple(y4.shape[1:]), four.count_params()),
        "IV": (tuple(y10.shape[1:]), ten.count_params()),
    }


def size_table():
    """[(i, k, s, p, formula, Keras valid+ZeroPadding2D, same: formula, Keras; transpose: ...)]."""
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
    """Conv2D(c_in -> c_out, k, groups=G): count_params, the formula, multiply-adds on size x size."""
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
        parts.append(part(x[..., g * size_in : (g + 1) * size_in]))
    return float(np.abs(numpy(grouped(x)) - numpy(ops.concatenate(parts, axis=-1))).max())


def bottleneck(size, channels=128, reduced=32):
    """Section 4.6: a 3x3 conv directly against a 1x1 reduction followed by the 3x3 conv."""

    def count(layers, c_in):
        total = 0
        for layer in layers:
            total += layer_params(layer, c_in)
            c_in = layer.filters
        return total

    def convs(use_bias):
        return {
            "direct": [keras.layers.Conv2D(channels, 3, padding="same", use_bias=use_bias)],
            "bottleneck": [
                keras.layers.Conv2D(reduced, 1, use_bias=use_bias),
                keras.layers.Conv2D(channels, 3, padding="same", use_bias=use_bias),
            ],
        }

    weights = {name: count(layers, channels) for name, layers in convs(False).items()}
    with_bias = {name: count(layers, channels) for name, layers in convs(True).items()}
    # One multiply-add per weight per output pixel ("same" padding keeps size x size).
    macs = {name: n * size * size for name, n in weights.items()}
    return {
        "weights": weights,
        "with_bias": with_bias,
        "multiply_adds": macs,
        "saving": weights["direct"] / weights["bottleneck"],
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
    return float(np.abs(numpy(conv(x)) - numpy(dense(x))).max())


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
        grad = numpy(grad)[0, :, :, 0]
        rows, cols = np.nonzero(grad)
        maps[depth] = {"map": grad, "height": int(np.ptp(rows) + 1), "width": int(np.ptp(cols) + 1)}
    return maps


# ---------------------------------------------------------------------------------------------
# Figure


def plot(example, grads, fields, grouped, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 4, figsize=(16, 8))

    def matrix(ax, values, title, fmt="{:.0f}"):
        ax.imshow(values, cmap="viridis")
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, fmt.format(v), ha="center", va="center", color="white", fontsize=11)
        ax.set(title=title, xticks=[], yticks=[])

    matrix(axes[0, 0], X, "input x")
    matrix(axes[0, 1], KERNEL, "kernel w = G = dL/dO")
    matrix(axes[0, 2], example["output"], "Conv2D(x, w) = dL/dw")
    matrix(axes[0, 3], grads["d_x"], "dL/dx for w = [[1, 0], [0, -1]]")
    for ax, (depth, field) in zip(axes[1, :3], fields.items()):
        matrix(
            ax, field["map"], f"{depth} stacked 3x3: receptive field {field['height']}x{field['width']}"
        )
    ax = axes[1, 3]
    rows = grouped["grouped"]
    ax.bar([str(r["groups"]) for r in rows], [r["params"] for r in rows], color="C0")
    for index, r in enumerate(rows):
        ax.text(index, r["params"], f"{r['params']:,}", ha="center", va="bottom", fontsize=9)
    ax.set(
        title="Conv2D 64 -> 128, 3x3, groups=G",
        xlabel="G (64: one input channel per group)",
        ylabel="parameters",
        yscale="log",
    )
    fig.suptitle(
        "Convolution arithmetic (seeds/003 section 4): the worked example, gradients, receptive fields"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def check(config):
    defaults = Config()
    for name in UNUSED:
        if getattr(config, name) != getattr(defaults, name):
            flag = "--" + name.replace("_", "-")
            raise cli.UsageError(f"conv_arithmetic trains nothing: {flag} is not used")
    if config.size < 3:
        raise cli.UsageError("--size must be at least 3")


def grid(values):
    return "[" + ", ".join("[" + ", ".join(f"{v:g}" for v in row) + "]" for row in values) + "]"


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.conv_arithmetic", description=__doc__.split("\n")[0]
    )
    check(config)
    out = Path(config.out or "runs/conv_arithmetic")
    engine.set_seed(config.seed)
    backend = engine.backend()

    example = worked_example()
    grads = conv_gradients()
    print(f"4.1 the worked example on {backend}: x = {grid(X)}, w = {grid(KERNEL)}")
    for name, terms, value in zip(
        ("O11", "O12", "O21", "O22"), example["terms"], example["output"].flat
    ):
        print(f"  {name} = {terms} = {value:g}")
    print(f"  Conv2D(x, w) = {grid(example['output'])} (cross-correlation)")
    print(f"  true convolution (flipped kernel) = {grid(example['true_convolution'])}")
    print(f"4.3 backprop of L = sum(G * O), G = {grid(G)}:")
    print(f"  dL/dw (autodiff) = {grid(grads['d_kernel'])} = x * G {grid(grads['x_correlate_g'])}")
    print(
        f"  dL/dx for w = {grid(W_FOR_DX)} (autodiff) = {grid(grads['d_x'])}\n"
        f"    = the full convolution of G with w {grid(grads['full_convolution'])}"
    )

    shapes = notes_shapes()
    print("4.1 shapes and parameters (Keras count_params):")
    labels = {
        "II": "(5, 5, 3) * (32, 32, 3)",
        "III": "four (5, 5, 3) * (32, 32, 3)",
        "IV": "ten (5, 5, 4) * (28, 28, 4)",
    }
    for key, (shape, params) in shapes.items():
        print(f"  {key:>3}: {labels[key]:<30} -> {shape}, {params:,} parameters")
    print(
        "  (erratum: the notes' w x w x C x D x K gives 5*5*3*4*4 = 1200 for III; D and K are one count)"
    )

    table = size_table()
    print("4.5 output sizes, O = floor((i + 2p - k) / s) + 1 against Keras:")
    print("     i   k  s  p | formula  Keras | same ceil(i/s) Keras | transpose (i-1)s+k Keras")
    for r in table:
        print(
            f"  {r['i']:>4} {r['k']:>3} {r['s']:>2} {r['p']:>2} | {r['formula']:>7} {r['keras']:>6} | "
            f"{r['same_formula']:>14} {r['same_keras']:>5} | {r['transpose_formula']:>18} "
            f"{r['transpose_keras']:>5}"
        )

    grouped = grouped_table(config.size)
    split_diff = grouped_equals_split(config.seed)
    print(
        f"Grouped convolution, Conv2D 64 -> 128, 3x3, on {config.size}x{config.size} (seeds/001 II 3.1):"
    )
    print("  groups   params  formula  multiply-adds")
    for r in grouped["grouped"]:
        print(f"  {r['groups']:>6} {r['params']:>8,} {r['formula']:>8,} {r['multiply_adds']:>14,}")
    print(f"  Conv2D(groups=2) vs two Conv2Ds on the channel halves: max |diff| {split_diff:.1e}")
    print(
        f"  DepthwiseConv2D(3) on 64 channels: {grouped['depthwise']['params']:,} parameters; "
        f"SeparableConv2D(128, 3): {grouped['separable']['params']:,}"
    )

    savings = bottleneck(config.size)
    dense_diff = one_by_one_is_dense(config.seed)
    w, m = savings["weights"], savings["multiply_adds"]
    print(f"4.6 1x1 convolutions (multiply-adds on {config.size}x{config.size}):")
    print(f"  1x1 Conv2D vs per-pixel Dense, same weights: max |diff| {dense_diff:.1e}")
    print(
        f"  3x3 128 -> 128:                   {w['direct']:>8,} weights {m['direct']:>13,} multiply-adds"
    )
    print(
        f"  1x1 128 -> 32 + 3x3 32 -> 128:    {w['bottleneck']:>8,} weights "
        f"{m['bottleneck']:>13,} multiply-adds"
    )
    print(
        f"  {savings['saving']:.2f}x fewer; with biases {savings['with_bias']['direct']:,} vs "
        f"{savings['with_bias']['bottleneck']:,}"
    )

    fields = receptive_fields()
    print("Receptive field of stacked 3x3 convolutions, L (k - 1) + 1 (from the input gradient):")
    for depth, field in fields.items():
        print(f"  {depth} layer(s): {field['height']}x{field['width']}")
    print(
        f"  two 3x3 ({savings['vgg_two_3x3']:,} weights at C = 128) see as far as one 5x5 "
        f"({savings['vgg_one_5x5']:,})"
    )

    out.mkdir(parents=True, exist_ok=True)
    plot(example, grads, fields, grouped, out / "conv_arithmetic.png")
    summary = {
        "backend": backend,
        "worked_example": example["output"].tolist(),
        "true_convolution": example["true_convolution"].tolist(),
        "d_kernel": grads["d_kernel"].tolist(),
        "d_x": grads["d_x"].tolist(),
        "full_convolution": grads["full_convolution"].tolist(),
        "shapes": {
            key: {"shape": list(shape), "params": params} for key, (shape, params) in shapes.items()
        },
        "output_sizes": table,
        "grouped": grouped,
        "grouped_vs_split": split_diff,
        "one_by_one_vs_dense": dense_diff,
        "bottleneck": savings,
        "receptive_fields": {str(d): f["width"] for d, f in fields.items()},
        "config": dataclasses.asdict(config),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Outputs in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
