"""Neural style: the pixels of an image optimised to take one photo's content and another's style.

Reproduces section 9.9 of seeds/000 (Gatys, Ecker, Bethge, arXiv 1508.06576; notes/000b.md 9.9).

- Features: VGG19's convolutional base (`layers.VGGFeatures`, max pooling as in Keras' VGG19).
  Content from conv4_2 (`block4_conv2`), style from conv1_1 ... conv5_1 (`blockB_conv1`).
- Loss: L = alpha L_c + beta L_s + gamma L_tv, with
  L_c = 1/2 sum (F - P)^2 at conv4_2 (eq. 11, lambda_c = 1/2),
  L_s = sum_l 1/5 sum (G_l - A_l)^2 / (4 M_l^2 N_l^2) over the five style layers (eq. 12; Gram
  matrices G = F^T F, M positions, N channels), L_tv = sum of squared neighbour differences (eq. 13).
- The notes give no alpha, beta, gamma. Defaults alpha = 1, beta = 1e3, gamma = 10:
  alpha / beta = 1e-3 is the ratio of the paper's Fig. 2. Translated into these formulas, the weights
  of anishathalye/neural-style (which the notes cite; Adam, the same Caffe VGG19 weights in the same
  0-255 space as Keras') give beta / alpha from 4e2 (conv4_1, conv5_1) to 2.6e4 (conv1_1) at
  256x256, so 1e3 lies inside the range known to work; their TV weight is about 27 alpha, and
  gamma = 10 smooths a little less. L_c grows with the number of pixels while L_s does not:
  at larger sizes the content weighs more (raise --style-weight with --size).
- Optimiser: Adam on the pixels (step 5 in 0-255 units, 500 steps; compiled through the engine) or,
  with `--optimizer lbfgs`, scipy's L-BFGS-B as in the paper, on a compiled value and gradient;
  pixels stay within [0, 255].
- Images: `--content` and `--style` are paths or "china" / "flower", the two photographs
  scikit-learn ships (default: the Chinese temple in the style of the flower). The style image is
  resized to the same longer side; a style image of another shape has its Gram matrices scaled by
  the ratio of positions, so eq. 12 compares like with like.
- Weights: `--weights imagenet` (default) downloads Keras' VGG19 ImageNet weights once (80 MB) into
  the Keras cache; without a network the run stops with one line naming `--weights random`: random
  VGG19 weights drawn by NumPy from --seed (the same on every backend), which still transfer colour
  and texture statistics, but no learned structure.

Outputs (under --out, default runs/neural_style): result.png, snapshots/snapshot_XXXX.png every
--snapshot-every steps, comparison.png (content | style | result), losses.png (total and each term,
log scale), summary.json (initial and final losses, seconds per step, backend, config).

    python -m recipes.neural_style                                   # china in the style of flower
    python -m recipes.neural_style --content me.jpg --style starry.jpg --size 384
    KERAS_BACKEND=jax python -m recipes.neural_style --optimizer lbfgs --steps 150
    python -m recipes.neural_style --weights random --quick          # offline smoke run
"""

import dataclasses
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, style_transfer
from recipes.common.style_transfer import CONTENT_LAYER, STYLE_LAYERS

keras = cli.lazy_import("keras")

SECTION = "A 9.9"


@dataclasses.dataclass
class Config(style_transfer.StyleConfig):
    content: str = cli.option("china", "content image: a path, or an embedded photo (china, flower)")
    style: str = cli.option("flower", "style image: a path, or an embedded photo (china, flower)")
    init: str = cli.option(
        "content", "start from the content image or from white noise", choices=("content", "noise")
    )
    content_weight: float = cli.option(1.0, "alpha, weight of the content loss (eq. 11)")
    style_weight: float = cli.option(1e3, "beta, weight of the style loss (eq. 12)")
    tv_weight: float = cli.option(10.0, "gamma, weight of the total-variation loss (eq. 13)")
    pooling: str = cli.option(
        "max", "VGG19 pooling (max as in the paper's network; avg)", choices=("max", "avg")
    )


QUICK = dict(size=72, steps=6, snapshot_every=3, print_every=2)
TERMS = ("content", "style", "tv")


def build_loss(
    features,
    image,
    content_features,
    style_grams,
    *,
    content_weight=1.0,
    style_weight=1e3,
    tv_weight=10.0,
    content_layer=CONTENT_LAYER,
    style_layers=STYLE_LAYERS,
):
    """The total loss of section 9.9 as `loss_fn() -> (total, {content, style, tv})` (weighted terms).

    Args:
        features: a `VGGFeatures` returning at least `content_layer` and `style_layers`.
        image: the `keras.Variable` (1, h, w, 3) being optimised (preprocessed).
        content_features: P, the content image's `content_layer` features (NumPy).
        style_grams: {layer: A}, the style image's Gram matrices (NumPy, matched to the image size).

    Returns:
        `(loss_fn, state)`: `state` lists what `loss_fn` reads besides `image` (for `optimize`).
    """
    targets = {
        "content": keras.Variable(content_features, trainable=False, name="content_target"),
        **{
            name: keras.Variable(style_grams[name], trainable=False, name=f"gram_{name}")
            for name in style_layers
        },
    }

    def loss_fn():
        out = features(image)
        content = style_transfer.content_loss(out[content_layer], targets["content"])
        style = 0.0
        for name in style_layers:
            positions, channels = style_transfer.layer_size(out[name])
            gram = style_transfer.gram_matrix(out[name])
            style += style_transfer.style_loss(gram, targets[name], positions, channels)
        style = style / len(style_layers)  # w_l = 1/5 for each of the paper's five layers.
        tv = style_transfer.total_variation_loss(image)
        terms = {
            "content": content_weight * content,
            "style": style_weight * style,
            "tv": tv_weight * tv,
        }
        return terms["content"] + terms["style"] + terms["tv"], terms

    return loss_fn, [features, *targets.values()]


def prepare(features, content_rgb, style_rgb, *, content_layer=CONTENT_LAYER, style_layers=STYLE_LAYERS):
    """P (content features) and {layer: A} (style Gram matrices scaled to the content's size)."""
    content_out = features(style_transfer.preprocess(content_rgb)[None])
    positions = {name: style_transfer.layer_size(content_out[name])[0] for name in style_layers}
    grams = style_transfer.target_grams(
        features, style_transfer.preprocess(style_rgb), style_layers, positions
    )
    return keras.ops.convert_to_numpy(content_out[content_layer]), grams


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.neural_style",
        description=__doc__.split("\n")[0],
        quick=QUICK,
    )
    config.check()
    content_rgb = style_transfer.load_image(config.content, config.size)
    style_rgb = style_transfer.load_image(config.style, config.size)
    if min(content_rgb.shape[:2]) < 16 or min(style_rgb.shape[:2]) < 16:
        raise cli.UsageError("both images need at least 16 pixels on each side at --size")
    engine.set_seed(config.seed)
    layers = list(dict.fromkeys((*STYLE_LAYERS, CONTENT_LAYER)))
    features = style_transfer.build_features(layers, config.pooling, config.weights, config.seed)
    out = Path(config.out or "runs/neural_style")
    h, w = content_rgb.shape[:2]
    print(
        f"Neural style: content {config.content} ({h}x{w}), style {config.style}, VGG19 "
        f"{config.weights} weights, alpha {config.content_weight:g}, beta {config.style_weight:g}, "
        f"gamma {config.tv_weight:g}, {config.optimizer}, backend {engine.backend()}"
    )
    content_features, grams = prepare(features, content_rgb, style_rgb)
    if config.init == "content":
        start = style_transfer.preprocess(content_rgb)
    else:
        start = style_transfer.noise_image((h, w), config.seed)
    image = keras.Variable(start[None], name="image")
    loss_fn, state = build_loss(
        features,
        image,
        content_features,
        grams,
        content_weight=config.content_weight,
        style_weight=config.style_weight,
        tv_weight=config.tv_weight,
    )
    style_transfer.run(
        loss_fn, image, state, config, out, title=f"neural style ({config.optimizer})", terms=TERMS
    )
    result = style_transfer.deprocess(keras.ops.convert_to_numpy(image))
    style_resized = style_transfer.load_image(config.style, (h, w))
    row = np.concatenate([content_rgb, style_resized, result.astype("float32")], axis=1)
    style_transfer.save_image(out / "comparison.png", row)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
