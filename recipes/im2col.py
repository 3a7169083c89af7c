"""im2col: convolution and max pooling as one matrix product, with col2im as the backward pass.

Reproduces section 6.1 of seeds/000 ("im2col", after Saito's "Deep Learning from Scratch"):

- im2col turns an N x C x H x W input into a 2-D matrix with one row per filter position, so that
  the convolution with FN filters of C x FH x FW becomes one matrix product with the filters
  reshaped to (C * FH * FW, FN). The notes' example (Fig. 21): a (1, 3, 7, 7) input and a 5x5
  filter, stride 1, no padding, give 3 x 3 = 9 windows of 3 * 5 * 5 = 75 values: a (9, 75)
  matrix, (90, 75) for N = 10. OH = (H + 2P - FH) / S + 1; pooling: POH = (H - PH) / S + 1.
- Backward (col2im): an input element's gradient is the sum of dcol over every place im2col
  copied it to. With the input np.arange(147).reshape(1, 3, 7, 7), the element 22 sits at
  (c, h, w) = (0, 3, 1) and lies in 3 x 2 = 6 of the 5x5 windows; with the notes' six dcol
  values its gradient is -0.53 + 0.77 + 0.05 + 0.03 + 0.29 - 0.29 = 0.32. The figure's other dcol
  values are not in the text: the recipe draws them at random (seeded) and puts the notes' six
  values where element 22 was copied to.
- layers.im2col.Im2ColConv2D and Im2ColMaxPool2D, built on the same unfolding, equal Keras' Conv2D
  and MaxPooling2D with the same weights (valid and same padding, strides 1 and 2); the recipe
  prints the largest differences, and times Im2ColConv2D against Conv2D (forward + backward, a
  compiled step on JAX and TensorFlow, eager on torch) on a realistic shape: a batch of 32
  32x32x64 feature maps and 64 3x3 filters by default.

Outputs (under --out, default runs/im2col): im2col.png (the (9, 75) matrix with the six copies of
element 22 marked, the window counts col2im(ones) and the gradient col2im(dcol)), summary.json.

    python -m recipes.im2col
    KERAS_BACKEND=jax python -m recipes.im2col --batch-size 64 --channels 128
    python -m recipes.im2col --no-timing
"""

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli

keras = cli.lazy_import("keras")

SECTION = "A 6.1"
HIDDEN = argparse.SUPPRESS  # RunConfig's training flags mean nothing here: hidden from --help.
UNUSED = ("epochs", "dataset", "data_dir", "resume")

# Section 6.1's example: x = arange(147) as (1, 3, 7, 7), 5x5 filter, stride 1, no padding.
EXAMPLE_SHAPE = (1, 3, 7, 7)
EXAMPLE_FILTER = 5
ELEMENT = 22
ELEMENT_POSITION = (0, 0, 3, 1)  # (n, c, h, w) of the value 22 in arange(147)
DCOL_TERMS = (-0.53, 0.77, 0.05, 0.03, 0.29, -0.29)  # the notes' terms, summing to 0.32


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, HIDDEN)
    dataset: str = cli.option(None, HIDDEN)
    data_dir: str = cli.option(None, HIDDEN)
    resume: bool = cli.option(False, HIDDEN)
    batch_size: int = cli.option(32, "batch of the Im2ColConv2D vs Conv2D timing")
    image_size: int = cli.option(32, "height and width of the timed feature maps")
    channels: int = cli.option(64, "input channels of the timed convolution")
    filters: int = cli.option(64, "filters of the timed convolution")
    kernel_size: int = cli.option(3, "kernel size of the timed convolution (padding same)")
    repeats: int = cli.option(10, "timed forward + backward steps per layer (after one warm-up)")
    timing: bool = cli.option(True, "time Im2ColConv2D against Conv2D")


QUICK = dict(batch_size=2, image_size=8, channels=4, filters=4, repeats=2)


# ---------------------------------------------------------------------------------------------
# The notes' example


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
    """A (9, 75) upstream gradient: random hundredths, the notes' six terms at element 22's copies."""
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
    _, (grad,) = engine.value_and_grad(
        lambda x: ops.sum(ops.multiply(im2col(x, fh, fw, stride, pad), dcol)), [x]
    )
    return ops.convert_to_numpy(grad)


def notes_example(seed):
    """The (9, 75) / (90, 75) shapes, the window counts and the dx of element 22."""
    from keras import ops

    from layers.im2col import col2im, im2col

    x = example_input()
    col = ops.convert_to_numpy(im2col(x, EXAMPLE_FILTER, EXAMPLE_FILTER))
    batch = np.random.default_rng(seed).standard_normal((10, *EXAMPLE_SHAPE[1:])).astype("float32")
    col_10 = im2col(batch, EXAMPLE_FILTER, EXAMPLE_FILTER)
    counts = ops.convert_to_numpy(
        col2im(np.ones_like(col), EXAMPLE_SHAPE, EXAMPLE_FILTER, EXAMPLE_FILTER)
    )
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
    """Section 6.1's convolution: im2col(x) @ F reshaped to (C * FH * FW, FN), as (N, FN, OH, OW)."""
    from keras import ops

    from layers.im2col import conv_output_size, im2col

    n, _, h, w = x.shape
    fn, _, fh, fw = filters.shape
    col = im2col(x, fh, fw)
    out = ops.matmul(col, ops.transpose(ops.reshape(filters, (fn, -1))))
    out = ops.reshape(out, (n, conv_output_size(h, fh), conv_output_size(w, fw), fn))
    return ops.convert_to_numpy(ops.transpose(out, (0, 3, 1, 2)))


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


# ---------------------------------------------------------------------------------------------
# The layers against Keras' built-ins


def conv_against_keras(seed, shape=(2, 9, 8, 3), filters=4, kernel_size=3):
    """[(padding, strides, output shape, max |Im2ColConv2D - Conv2D|)] with the same weights."""
    from layers.im2col import Im2ColConv2D

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype("float32")
    rows = []
    for padding in ("valid", "same"):
        for strides in (1, 2):
            kwargs = dict(strides=strides, padding=padding)
            reference = keras.layers.Conv2D(filters, kernel_size, **kwargs)
            layer = Im2ColConv2D(filters, kernel_size, **kwargs)
            reference.build(shape)
            layer.build(shape)
            weights = [rng.standard_normal(w.shape).astype("float32") for w in reference.get_weights()]
            reference.set_weights(weights)
            layer.set_weights(weights)
            want = keras.ops.convert_to_numpy(reference(x))
            got = keras.ops.convert_to_numpy(layer(x))
            rows.append((padding, strides, got.shape, float(np.abs(got - want).max())))
    return rows


def pool_against_keras(seed, shape=(2, 9, 8, 3)):
    """[(padding, pool, strides, output shape, POH formula, max |Im2ColMaxPool2D - MaxPooling2D|)]."""
    from layers.im2col import Im2ColMaxPool2D, conv_output_size

    x = np.random.default_rng(seed).standard_normal(shape).astype("float32")
    rows = []
    for padding in ("valid", "same"):
        for pool, strides in ((2, 2), (3, 1), (3, 2)):
            kwargs = dict(pool_size=pool, strides=strides, padding=padding)
            want = keras.ops.convert_to_numpy(keras.layers.MaxPooling2D(**kwargs)(x))
            got = keras.ops.convert_to_numpy(Im2ColMaxPool2D(**kwargs)(x))
            formula = (
                conv_output_size(shape[1], pool, strides)
                if padding == "valid"
                else -(-shape[1] // strides)
            )
            rows.append((padding, pool, strides, got.shape, formula, float(np.abs(got - want).max())))
    return rows


# ---------------------------------------------------------------------------------------------
# Timing


def time_layers(config):
    """Seconds per forward + backward step of Im2ColConv2D and Conv2D on the same input."""
    from keras import ops

    from layers.im2col import Im2ColConv2D

    shape = (config.batch_size, config.image_size, config.image_size, config.channels)
    x = ops.convert_to_tensor(
        np.random.default_rng(config.seed).standard_normal(shape).astype("float32")
    )
    results = {}
    for name, layer in (
        ("Im2ColConv2D", Im2ColConv2D(config.filters, config.kernel_size, padding="same")),
        ("Conv2D", keras.layers.Conv2D(config.filters, config.kernel_size, padding="same")),
    ):
        layer.build(shape)

        def step(x, layer=layer):
            def loss(x):
                return ops.mean(ops.square(layer(x)))

            value, grads = engine.value_and_grad(loss, [*layer.trainable_variables, x])
            # Return every gradient's size, so that a compiler cannot drop the backward pass.
            return {"loss": value, "grads": sum(ops.sum(ops.square(g)) for g in grads)}

        step = engine.function(step, [layer])
        ops.convert_to_numpy(step(x)["grads"])  # warm-up: compiles
        start = time.perf_counter()
        for _ in range(config.repeats):
            out = step(x)
        ops.convert_to_numpy(out["grads"])
        results[name] = (time.perf_counter() - start) / config.repeats
    return shape, results


# ---------------------------------------------------------------------------------------------
# Figure


def plot(example, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig = plt.figure(figsize=(15, 8))
    grid = fig.add_gridspec(2, 3, height_ratios=[1, 1.5])
    top = fig.add_subplot(grid[0, :])
    col = example["col"]
    top.imshow(col, cmap="Greys", aspect="auto", interpolation="nearest")
    for row, column in example["copies"]:
        top.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, ec="red", lw=2))
    for channel in (1, 2):
        top.axvline(channel * 25 - 0.5, color="C0", lw=1)
    top.set(
        title=f"im2col of arange(147) as (1, 3, 7, 7), 5x5 filter: a {col.shape} matrix, one row per "
        f"window (red: the six copies of {ELEMENT})",
        xlabel="column = (channel, filter row, filter column); blue lines separate the channels",
        ylabel="window (row)",
    )
    x = example["x"][0, 0]
    panels = (
        (x, "input, channel 0 (values)", "{:.0f}"),
        (example["counts"][0, 0], "col2im(all ones): windows covering each element", "{:.0f}"),
        (example["dx"][0, 0], "col2im(dcol), channel 0: the input gradient", "{:.2f}"),
    )
    h, w = ELEMENT_POSITION[2:]
    for index, (values, title, fmt) in enumerate(panels):
        ax = fig.add_subplot(grid[1, index])
        ax.imshow(values, cmap="viridis" if index else "Greys")
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                light = index or values[i, j] > values.mean()  # white on the dark cells
                colour = "red" if (i, j) == (h, w) else ("white" if light else "black")
                ax.text(
                    j, i, fmt.format(values[i, j]), ha="center", va="center", color=colour, fontsize=9
                )
        ax.add_patch(Rectangle((w - 0.5, h - 0.5), 1, 1, fill=False, ec="red", lw=2))
        ax.set(title=title, xticks=range(7), yticks=range(7))
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def check(config):
    """Rejects options the recipe cannot use, before anything is written."""
    defaults = Config()
    for name in UNUSED:
        if getattr(config, name) != getattr(defaults, name):
            flag = "--" + name.replace("_", "-")
            raise cli.UsageError(f"im2col trains nothing: {flag} is not used")
    for name in ("image_size", "channels", "filters", "kernel_size", "repeats"):
        if getattr(config, name) < 1:
            raise cli.UsageError(f"--{name.replace('_', '-')} must be at least 1")


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.im2col", description=__doc__.split("\n")[0], quick=QUICK
    )
    check(config)
    out = Path(config.out or "runs/im2col")
    engine.set_seed(config.seed)
    backend = engine.backend()

    example = notes_example(config.seed)
    print(f"im2col on {backend}: x = arange(147) as (1, 3, 7, 7), 5x5 filter, stride 1, pad 0")
    print(f"  im2col(x).shape = {example['col_shape']} (OH x OW = 3 x 3 rows, C x FH x FW = 75 columns)")
    print(f"  for N = 10: {example['col_shape_batch_10']}")
    counts = example["counts"][0, 0].astype(int)
    print("  col2im(ones): number of windows covering each element of channel 0:")
    for row in counts:
        print("    " + " ".join(f"{v:2d}" for v in row))
    copies = example["copies"]
    print(
        f"  element {ELEMENT} at (c, h, w) = {ELEMENT_POSITION[1:]}: {len(copies)} copies in im2col(x)"
    )
    terms = " + ".join(f"({t:.2f})" if t < 0 else f"{t:.2f}" for t in DCOL_TERMS)
    print(f"  its gradient, col2im(dcol): {terms} = {example['dx_element']:.2f}")
    print(
        "  col2im(dcol) vs the autodiff gradient of sum(im2col(x) * dcol): "
        f"{example['dx_vs_autodiff']:.1e}"
    )
    product_shape, product_diff = filter_product_vs_conv2d(config.seed)
    print(f"  im2col(x) @ F.reshape(FN, -1).T -> {product_shape}; vs keras Conv2D: {product_diff:.1e}")

    conv_rows = conv_against_keras(config.seed)
    print("Im2ColConv2D vs keras.layers.Conv2D, same weights, input (2, 9, 8, 3), 4 3x3 filters:")
    for padding, strides, shape, diff in conv_rows:
        print(f"  padding={padding:<5}  strides={strides}  output {shape}  max |diff| {diff:.1e}")
    pool_rows = pool_against_keras(config.seed)
    print("Im2ColMaxPool2D vs keras.layers.MaxPooling2D, input (2, 9, 8, 3); POH = (H - PH) / S + 1:")
    for padding, pool, strides, shape, formula, diff in pool_rows:
        print(
            f"  padding={padding:<5}  pool={pool}  strides={strides}  output {shape}  "
            f"POH formula {formula}  max |diff| {diff:.1e}"
        )

    timing = None
    if config.timing:
        shape, seconds = time_layers(config)
        ratio = seconds["Im2ColConv2D"] / seconds["Conv2D"]
        print(
            f"forward + backward on {backend}, input {shape}, {config.filters} "
            f"{config.kernel_size}x{config.kernel_size} filters, padding same "
            f"({config.repeats} steps each):"
        )
        for name, value in seconds.items():
            print(f"  {name:<13} {value * 1000:8.1f} ms/step")
        print(f"  Im2ColConv2D / Conv2D = {ratio:.2f}")
        timing = {"input_shape": list(shape), "seconds_per_step": seconds, "ratio": ratio}

    out.mkdir(parents=True, exist_ok=True)
    plot(example, out / "im2col.png")
    summary = {
        "backend": backend,
        "col_shape": list(example["col_shape"]),
        "col_shape_batch_10": list(example["col_shape_batch_10"]),
        "counts_channel_0": counts.tolist(),
        "count_at_element": int(example["counts"][ELEMENT_POSITION]),
        "element": ELEMENT,
        "element_position": list(ELEMENT_POSITION),
        "element_copies": [list(c) for c in copies],
        "dx_terms": list(DCOL_TERMS),
        "dx_element": example["dx_element"],
        "dx_vs_autodiff": example["dx_vs_autodiff"],
        "filter_product_shape": list(product_shape),
        "filter_product_vs_conv2d": product_diff,
        "conv_vs_keras": [
            {"padding": p, "strides": s, "output_shape": list(shape), "max_abs_diff": d}
            for p, s, shape, d in conv_rows
        ],
        "pool_vs_keras": [
            {
                "padding": p,
                "pool_size": k,
                "strides": s,
                "output_shape": list(shape),
                "poh_formula": f,
                "max_abs_diff": d,
            }
            for p, k, s, shape, f, d in pool_rows
        ],
        "timing": timing,
        "config": dataclasses.asdict(config),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Outputs in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
