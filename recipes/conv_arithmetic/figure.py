"""conv_arithmetic.png: the worked example and its gradients, the receptive fields of 1-3 stacked
3x3 convolutions as gradient maps, the parameters of grouped convolutions."""

import numpy as np

from recipes.common import plots
from recipes.conv_arithmetic.example import KERNEL, X


def _matrix(ax, values, title, fmt="{:.0f}"):
    """`values` as an image with each number written on its cell."""
    ax.imshow(values, cmap="viridis")
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, fmt.format(v), ha="center", va="center", color="white", fontsize=11)
    ax.set(title=title, xticks=[], yticks=[])


def plot(example, grads, fields, grouped, path):
    plt = plots.pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(16, 8))
    _matrix(axes[0, 0], X, "input x")
    _matrix(axes[0, 1], KERNEL, "kernel w = G = dL/dO")
    _matrix(axes[0, 2], example["output"], "Conv2D(x, w) = dL/dw")
    _matrix(axes[0, 3], grads["d_x"], "dL/dx for w = [[1, 0], [0, -1]]")
    for ax, (depth, field) in zip(axes[1, :3], fields.items()):
        _matrix(
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
    fig.suptitle("Convolution arithmetic (D 4): the worked example, gradients, receptive fields")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
