"""Texture synthesis: white noise optimised until its VGG19 Gram matrices match a texture's.

Reproduces A 9.8 (Gatys, Ecker, Bethge, arXiv 1505.07376): the pixels of X, from seeded uniform
white noise (the same on every backend), minimise

    L = w_t L_t(X, T) + w_n L_n(X) + w_tv L_tv(X)

with Adam (compiled through the engine) or `--optimizer lbfgs` (scipy L-BFGS-B, the paper's).
The output has the texture's shape. `--texture` is a path or "china" / "flower" (scikit-learn's
two photographs; default flower). `--weights imagenet` (default) downloads Keras' VGG19 weights
once into the Keras cache; offline the run stops with one line naming `--weights random`
(NumPy-seeded random weights).

Outputs (under --out, default runs/texture_synthesis): result.png, snapshots/snapshot_XXXX.png,
comparison.png (texture | result), losses.png (log scale), summary.json.

    python -m recipes.texture_synthesis                       # the flower photograph as texture
    python -m recipes.texture_synthesis --texture bark.jpg --optimizer lbfgs --steps 200
    python -m recipes.texture_synthesis --weights random --quick
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, style_transfer

keras = cli.lazy_import("keras")

SECTION = "A 9.8"
# conv1_1, pool1 ... pool4: the set of the paper's figures (the notes name none); each weighs 1/5.
TEXTURE_LAYERS = ("block1_conv1", "block1_pool", "block2_pool", "block3_pool", "block4_pool")
TERMS = ("texture", "norm", "tv")


# The paper uses only L_t: defaults w_t = 1, w_n = 0, w_tv = 0. Its VGG19 has max pooling replaced
# by average pooling ("VGG19 with MaxPooling replaced by AvgPooling").
@dataclasses.dataclass
class Config(style_transfer.StyleConfig):
    texture: str = cli.option("flower", "texture image: a path, or an embedded photo (china, flower)")
    pooling: str = cli.option("avg", "VGG19 pooling: avg (the paper's) or max", choices=("avg", "max"))
    texture_weight: float = cli.option(1.0, "w_t, weight of the Gram-matrix loss")
    norm_weight: float = cli.option(0.0, "w_n, weight of the norm loss (sum of squared pixels)")
    tv_weight: float = cli.option(0.0, "w_tv, weight of the total-variation loss")


QUICK = dict(size=72, steps=6, snapshot_every=3, print_every=2)


def build_loss(
    features, image, grams, *, texture_weight=1.0, norm_weight=0.0, tv_weight=0.0, layers=TEXTURE_LAYERS
):
    """`loss_fn() -> (total, {texture, norm, tv})` (weighted terms) and the state it reads.

    `grams`: {layer: Gram matrix of the texture} (NumPy), for an image of the texture's size.
    """
    ops = keras.ops
    targets = {
        name: keras.Variable(grams[name], trainable=False, name=f"gram_{name}") for name in layers
    }

    def loss_fn():
        out = features(image)  # {layer: (1, h_l, w_l, N_l)}, block4_pool: (1, h/16, w/16, 512)
        # L_t: eq. 12's Gram-matrix loss, sum_l 1/5 sum (G_l(X) - G_l(T))^2 / (4 M_l^2 N_l^2).
        texture = style_transfer.layers_style_loss(out, targets, layers)
        terms = {
            "texture": texture_weight * texture,
            "norm": norm_weight * ops.sum(ops.square(image)),  # L_n: squares of X (preprocessed).
            "tv": tv_weight * style_transfer.total_variation_loss(image),  # L_tv: eq. 13.
        }
        return terms["texture"] + terms["norm"] + terms["tv"], terms

    return loss_fn, [features, *targets.values()]


def load_texture(config):
    """The texture photograph, RGB float32 in [0, 255], longer side `config.size`."""
    texture_rgb = style_transfer.load_image(config.texture, config.size)
    if min(texture_rgb.shape[:2]) < 16:
        raise cli.UsageError("the texture needs at least 16 pixels on each side at --size")
    return texture_rgb


def save_comparison(out, texture_rgb, image):
    """comparison.png: texture | result."""
    result = style_transfer.deprocess(keras.ops.convert_to_numpy(image)).astype("float32")
    style_transfer.save_image(out / "comparison.png", np.concatenate([texture_rgb, result], axis=1))


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.texture_synthesis",
        description=__doc__.split("\n")[0],
        quick=QUICK,
    )
    config.check()
    texture_rgb = load_texture(config)
    engine.set_seed(config.seed)
    features = style_transfer.build_features(
        TEXTURE_LAYERS, config.pooling, config.weights, config.seed, dtype_policy=config.dtype_policy
    )
    out = Path(config.out or "runs/texture_synthesis")
    h, w = texture_rgb.shape[:2]
    print(
        f"Texture synthesis: {config.texture} ({h}x{w}), VGG19 {config.weights} weights, "
        f"{config.pooling} pooling, {config.optimizer}, backend {engine.backend()}"
    )
    grams = style_transfer.target_grams(features, style_transfer.preprocess(texture_rgb), TEXTURE_LAYERS)
    image = keras.Variable(style_transfer.noise_image((h, w), config.seed)[None], name="image")
    loss_fn, state = build_loss(
        features,
        image,
        grams,
        texture_weight=config.texture_weight,
        norm_weight=config.norm_weight,
        tv_weight=config.tv_weight,
    )
    style_transfer.run(
        loss_fn, image, state, config, out, title=f"texture synthesis ({config.optimizer})", terms=TERMS
    )
    save_comparison(out, texture_rgb, image)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
