"""Convolution arithmetic: the worked example, its backprop, output sizes and parameter counts.

Reproduces D 4.1-4.6 ("Convolution"), with the grouped and depthwise convolutions of B 3.1:
- 4.1/4.2 (`example.py`): a CNN "convolution" is a cross-correlation: the kernel [[1, 2], [3, 4]]
  on x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]] gives [[37, 47], [67, 77]] through keras.layers.Conv2D
  (a true, flipped convolution [[23, 33], [53, 63]]); Keras' parameter counts 304 and 1010;
- 4.3: the backprop of a convolution is a convolution: dL/dw = x * dL/dO, and dL/dx is the full
  convolution of dL/dO with w, both taken by the backend's autodiff;
- 4.5 (`counts.py`): O = floor((i + 2p - k) / s) + 1 against Keras' output shapes;
- B 3.1: grouped convolutions (73,856 / 36,992 / 18,560 / 9,344 / 1,280 parameters for G = 1, 2,
  4, 8, 64) equal G convolutions on the channel groups; depthwise 640, separable 8,896;
- 4.6: a 1x1 convolution is a per-pixel Dense layer; a 1x1 bottleneck needs 3.6x fewer weights;
  stacked 3x3 convolutions see 3x3, 5x5 and 7x7 receptive fields.

    python -m recipes.conv_arithmetic
    KERAS_BACKEND=torch python -m recipes.conv_arithmetic --size 56

Measured: no training; the notes' numbers above in 6-20 s on every backend (that is also the
--quick run). Outputs (under --out, default runs/conv_arithmetic): conv_arithmetic.png (the worked
example and its gradients, the receptive fields of 1-3 stacked 3x3 convolutions as gradient maps,
parameter counts), summary.json.
"""

import dataclasses
import json
from pathlib import Path

from recipes import engine
from recipes.common import cli
from recipes.conv_arithmetic.counts import (
    GROUPS,
    SIZE_CASES,
    bottleneck,
    grouped_equals_split,
    grouped_table,
    layer_params,
    notes_shapes,
    one_by_one_is_dense,
    output_size,
    receptive_fields,
    size_table,
)
from recipes.conv_arithmetic.example import (
    KERNEL,
    W_FOR_DX,
    G,
    X,
    conv2d,
    conv_gradients,
    correlate_valid,
    worked_example,
)
from recipes.conv_arithmetic.figure import plot

__all__ = [
    "G",
    "GROUPS",
    "KERNEL",
    "SIZE_CASES",
    "W_FOR_DX",
    "X",
    "Config",
    "bottleneck",
    "conv2d",
    "conv_gradients",
    "correlate_valid",
    "grouped_equals_split",
    "grouped_table",
    "layer_params",
    "main",
    "notes_shapes",
    "one_by_one_is_dense",
    "output_size",
    "plot",
    "receptive_fields",
    "size_table",
    "worked_example",
]

SECTION = "D 4.1-4.6, B 3.1"
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    size: int = cli.option(28, "height and width of the feature maps for the multiply-add counts")


def check(config):
    cli.reject_unused(config, UNUSED, "conv_arithmetic")
    if config.size < 3:
        raise cli.UsageError("--size must be at least 3")


def grid(values):
    return "[" + ", ".join("[" + ", ".join(f"{v:g}" for v in row) + "]" for row in values) + "]"


# ---------------------------------------------------------------------------------------------
# The steps of main: each prints one part of the section


def print_worked_example(example, grads, backend):
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


def print_shapes(shapes):
    print("4.1 shapes and parameters (Keras count_params):")
    labels = {
        "II": "(5, 5, 3) * (32, 32, 3)",
        "III": "four (5, 5, 3) * (32, 32, 3)",
        "IV": "ten (5, 5, 4) * (28, 28, 4)",
    }
    for key, (shape, params) in shapes.items():
        print(f"  {key:>3}: {labels[key]:<30} -> {shape}, {params:,} parameters")
    # The notes' w x w x C x D x K counts the output channels twice: w*w*C*D + D is right.
    print(
        "  (erratum: the notes' w x w x C x D x K gives 5*5*3*4*4 = 1200 for III; D and K are one count)"
    )


def print_size_table(table):
    print("4.5 output sizes, O = floor((i + 2p - k) / s) + 1 against Keras:")
    print("     i   k  s  p | formula  Keras | same ceil(i/s) Keras | transpose (i-1)s+k Keras")
    for r in table:
        print(
            f"  {r['i']:>4} {r['k']:>3} {r['s']:>2} {r['p']:>2} | {r['formula']:>7} {r['keras']:>6} | "
            f"{r['same_formula']:>14} {r['same_keras']:>5} | {r['transpose_formula']:>18} "
            f"{r['transpose_keras']:>5}"
        )


def print_grouped(size, grouped, split_diff):
    print(f"Grouped convolution, Conv2D 64 -> 128, 3x3, on {size}x{size} (B 3.1):")
    print("  groups   params  formula  multiply-adds")
    for r in grouped["grouped"]:
        print(f"  {r['groups']:>6} {r['params']:>8,} {r['formula']:>8,} {r['multiply_adds']:>14,}")
    print(f"  Conv2D(groups=2) vs two Conv2Ds on the channel halves: max |diff| {split_diff:.1e}")
    print(
        f"  DepthwiseConv2D(3) on 64 channels: {grouped['depthwise']['params']:,} parameters; "
        f"SeparableConv2D(128, 3): {grouped['separable']['params']:,}"
    )


def print_one_by_one(size, savings, dense_diff):
    w, m = savings["weights"], savings["multiply_adds"]
    print(f"4.6 1x1 convolutions (multiply-adds on {size}x{size}):")
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


def print_receptive_fields(fields, savings):
    print("Receptive field of stacked 3x3 convolutions, L (k - 1) + 1 (from the input gradient):")
    for depth, field in fields.items():
        print(f"  {depth} layer(s): {field['height']}x{field['width']}")
    print(
        f"  two 3x3 ({savings['vgg_two_3x3']:,} weights at C = 128) see as far as one 5x5 "
        f"({savings['vgg_one_5x5']:,})"
    )


# ---------------------------------------------------------------------------------------------


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
    print_worked_example(example, grads, backend)
    shapes = notes_shapes()
    print_shapes(shapes)
    table = size_table()
    print_size_table(table)
    grouped = grouped_table(config.size)
    split_diff = grouped_equals_split(config.seed)
    print_grouped(config.size, grouped, split_diff)
    savings = bottleneck(config.size)
    dense_diff = one_by_one_is_dense(config.seed)
    print_one_by_one(config.size, savings, dense_diff)
    fields = receptive_fields()
    print_receptive_fields(fields, savings)

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
