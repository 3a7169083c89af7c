"""im2col: convolution and max pooling as one matrix product, with col2im as the backward pass.

Reproduces A 6.1 ("im2col", after Saito's "Deep Learning from Scratch"). im2col turns an
N x C x H x W input into a matrix with one row per filter position, so that a convolution with FN
filters of C x FH x FW is one product with the filters reshaped to (C * FH * FW, FN); col2im sums
the rows back onto the input, which is the backward pass. The notes' example (`example.py`): a
(1, 3, 7, 7) input and a 5x5 filter give a (9, 75) matrix ((90, 75) for N = 10); the element 22
of arange(147) has 6 copies, and the notes' six dcol values there sum to its gradient, 0.32.
`layers.im2col`'s Im2ColConv2D and Im2ColMaxPool2D equal Keras' Conv2D and MaxPooling2D with the
same weights (valid and same padding, strides 1 and 2); the recipe prints the largest differences
and times Im2ColConv2D against Conv2D (`against_keras.py`) on a realistic shape: a batch of 32
32x32x64 feature maps and 64 3x3 filters by default.

    python -m recipes.im2col
    KERAS_BACKEND=jax python -m recipes.im2col --batch-size 64 --channels 128
    python -m recipes.im2col --no-timing

Measured: the notes' numbers above, in 6-20 s on every backend.
Outputs (under --out, default runs/im2col): im2col.png (the (9, 75) matrix with the six copies of
element 22 marked, the window counts col2im(ones) and the gradient col2im(dcol)), summary.json.
"""

import dataclasses
import json
from pathlib import Path

from recipes import engine
from recipes.common import cli
from recipes.im2col.against_keras import conv_against_keras, pool_against_keras, time_layers
from recipes.im2col.example import (
    DCOL_TERMS,
    ELEMENT,
    ELEMENT_POSITION,
    EXAMPLE_FILTER,
    EXAMPLE_SHAPE,
    autodiff_input_gradient,
    element_copies,
    example_dcol,
    example_input,
    filter_product,
    filter_product_vs_conv2d,
    notes_example,
)
from recipes.im2col.figure import plot

__all__ = [
    "DCOL_TERMS",
    "ELEMENT",
    "ELEMENT_POSITION",
    "EXAMPLE_FILTER",
    "EXAMPLE_SHAPE",
    "Config",
    "autodiff_input_gradient",
    "conv_against_keras",
    "element_copies",
    "example_dcol",
    "example_input",
    "filter_product",
    "filter_product_vs_conv2d",
    "main",
    "notes_example",
    "plot",
    "pool_against_keras",
    "time_layers",
]

SECTION = "A 6.1"
UNUSED = ("epochs", "dataset", "data_dir", "resume")


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    batch_size: int = cli.option(32, "batch of the Im2ColConv2D vs Conv2D timing")
    image_size: int = cli.option(32, "height and width of the timed feature maps")
    channels: int = cli.option(64, "input channels of the timed convolution")
    filters: int = cli.option(64, "filters of the timed convolution")
    kernel_size: int = cli.option(3, "kernel size of the timed convolution (padding same)")
    repeats: int = cli.option(10, "timed forward + backward steps per layer (after one warm-up)")
    timing: bool = cli.option(True, "time Im2ColConv2D against Conv2D")


QUICK = dict(batch_size=2, image_size=8, channels=4, filters=4, repeats=2)


def check(config):
    """Rejects options the recipe cannot use, before anything is written."""
    cli.reject_unused(config, UNUSED, "im2col")
    for name in ("image_size", "channels", "filters", "kernel_size", "repeats"):
        if getattr(config, name) < 1:
            raise cli.UsageError(f"--{name.replace('_', '-')} must be at least 1")


# ---------------------------------------------------------------------------------------------
# The steps of main


def print_example(example, backend):
    """The shapes, the window counts and the gradient of element 22."""
    print(f"im2col on {backend}: x = arange(147) as (1, 3, 7, 7), 5x5 filter, stride 1, pad 0")
    print(f"  im2col(x).shape = {example['col_shape']} (OH x OW = 3 x 3 rows, C x FH x FW = 75 columns)")
    print(f"  for N = 10: {example['col_shape_batch_10']}")
    print("  col2im(ones): number of windows covering each element of channel 0:")
    for row in example["counts"][0, 0].astype(int):
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


def print_layer_comparisons(conv_rows, pool_rows):
    print("Im2ColConv2D vs keras.layers.Conv2D, same weights, input (2, 9, 8, 3), 4 3x3 filters:")
    for padding, strides, shape, diff in conv_rows:
        print(f"  padding={padding:<5}  strides={strides}  output {shape}  max |diff| {diff:.1e}")
    print("Im2ColMaxPool2D vs keras.layers.MaxPooling2D, input (2, 9, 8, 3); POH = (H - PH) / S + 1:")
    for padding, pool, strides, shape, formula, diff in pool_rows:
        print(
            f"  padding={padding:<5}  pool={pool}  strides={strides}  output {shape}  "
            f"POH formula {formula}  max |diff| {diff:.1e}"
        )


def timed(config, backend):
    """Times the two layers and prints the result; the summary's "timing" entry."""
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
    return {"input_shape": list(shape), "seconds_per_step": seconds, "ratio": ratio}


def summarize(config, backend, example, product, conv_rows, pool_rows, timing):
    """summary.json's content."""
    product_shape, product_diff = product
    return {
        "backend": backend,
        "col_shape": list(example["col_shape"]),
        "col_shape_batch_10": list(example["col_shape_batch_10"]),
        "counts_channel_0": example["counts"][0, 0].astype(int).tolist(),
        "count_at_element": int(example["counts"][ELEMENT_POSITION]),
        "element": ELEMENT,
        "element_position": list(ELEMENT_POSITION),
        "element_copies": [list(c) for c in example["copies"]],
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


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.im2col", description=__doc__.split("\n")[0], quick=QUICK
    )
    check(config)
    out = Path(config.out or "runs/im2col")
    engine.set_seed(config.seed)
    backend = engine.backend()

    example = notes_example(config.seed)
    print_example(example, backend)
    product = filter_product_vs_conv2d(config.seed)
    print(f"  im2col(x) @ F.reshape(FN, -1).T -> {product[0]}; vs keras Conv2D: {product[1]:.1e}")

    conv_rows = conv_against_keras(config.seed)
    pool_rows = pool_against_keras(config.seed)
    print_layer_comparisons(conv_rows, pool_rows)
    timing = timed(config, backend) if config.timing else None

    out.mkdir(parents=True, exist_ok=True)
    plot(example, out / "im2col.png")
    summary = summarize(config, backend, example, product, conv_rows, pool_rows, timing)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Outputs in {out}/")
    return 0
