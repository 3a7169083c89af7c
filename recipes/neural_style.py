"""Neural style: the pixels of an image optimised to take one photo's content and another's style.

Reproduces A 9.9 (Gatys, Ecker, Bethge, arXiv 1508.06576): VGG19 features (`layers.VGGFeatures`),
content at conv4_2, style as the Gram matrices of conv1_1 ... conv5_1, and

    L = alpha L_c + beta L_s + gamma L_tv        (eq. 11, 12, 13 of the notes)

minimised over the pixels with Adam (compiled through the engine) or scipy's L-BFGS-B (the
paper's), the pixels kept within [0, 255]. `--content` and `--style` are paths or "china" /
"flower", the two photographs scikit-learn ships. `--weights imagenet` (default) downloads Keras'
VGG19 weights once (80 MB); offline the run stops with one line naming `--weights random`
(NumPy-seeded random weights, the same on every backend: colour and texture statistics transfer,
learned structure does not).

Outputs (under --out, default runs/neural_style): result.png, snapshots/snapshot_XXXX.png,
comparison.png (content | style | result), losses.png (each term, log scale), summary.json.

    python -m recipes.neural_style                                   # china in the style of flower
    python -m recipes.neural_style --content me.jpg --style starry.jpg --size 384
    KERAS_BACKEND=jax python -m recipes.neural_style --optimizer lbfgs --steps 150
    python -m recipes.neural_style --weights random --quick          # offline smoke run

Measured at 256x256 (random VGG weights, 2 CPU cores, nothing else running): 0.60 s per Adam
step on TensorFlow, 0.96 s on JAX, 1.03 s on torch; 1.9 / 2.2 / 2.2 s per L-BFGS iteration
(2 evaluations each).
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


# The notes give no alpha, beta, gamma. alpha / beta = 1e-3 is the ratio of the paper's Fig. 2.
# Translated into these formulas, anishathalye/neural-style (which the notes cite; Adam, the same
# Caffe VGG19 weights in the same 0-255 space as Keras') uses beta / alpha from 4e2 (conv4_1,
# conv5_1) to 2.6e4 (conv1_1) at 256x256, so 1e3 lies inside the range known to work; its TV weight
# is about 27 alpha, and gamma = 10 smooths a little less. L_c grows with the number of pixels while
# L_s does not: at larger sizes the content weighs more (raise --style-weight with --size).
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
    """The total loss of A 9.9 as `loss_fn() -> (total, {content, style, tv})` (weighted terms).

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
        out = features(image)  # {layer: (1, h_l, w_l, N_l)}, conv4_2: (1, h/8, w/8, 512)
        # Eq. 11 with lambda_c = 1/2: 1/2 sum (F - P)^2.
        content = style_transfer.content_loss(out[content_layer], targets["content"])
        # Eq. 12: sum (G_l - A_l)^2 / (4 M_l^2 N_l^2), G = F^T F (N, N), M positions, N channels;
        # w_l = 1/5 for each of the paper's five layers.
        style = style_transfer.layers_style_loss(out, targets, style_layers)
        tv = style_transfer.total_variation_loss(image)  # Eq. 13, squared neighbour differences.
        terms = {
            "content": content_weight * content,
            "style": style_weight * style,
            "tv": tv_weight * tv,
        }
        return terms["content"] + terms["style"] + terms["tv"], terms

    return loss_fn, [features, *targets.values()]


def prepare(features, content_rgb, style_rgb, *, content_layer=CONTENT_LAYER, style_layers=STYLE_LAYERS):
    """P (content features) and {layer: A} (style Gram matrices scaled to the content's size).

    The style image is resized to the same longer side; one of another shape has its Gram matrices
    scaled by the ratio of positions, so that eq. 12 compares like with like.
    """
    content_out = features(style_transfer.preprocess(content_rgb)[None])
    positions = {name: style_transfer.layer_size(content_out[name])[0] for name in style_layers}
    grams = style_transfer.target_grams(
        features, style_transfer.preprocess(style_rgb), style_layers, positions
    )
    return keras.ops.convert_to_numpy(content_out[content_layer]), grams


def load_images(config):
    """The content and style photographs, RGB float32 in [0, 255], longer side `config.size`."""
    content_rgb = style_transfer.load_image(config.content, config.size)
    style_rgb = style_transfer.load_image(config.style, config.size)
    if min(content_rgb.shape[:2]) < 16 or min(style_rgb.shape[:2]) < 16:
        raise cli.UsageError("both images need at least 16 pixels on each side at --size")
    return content_rgb, style_rgb


def starting_image(config, content_rgb):
    """The pixels the optimisation starts from: the content image, or seeded white noise."""
    if config.init == "content":
        start = style_transfer.preprocess(content_rgb)
    else:
        start = style_transfer.noise_image(content_rgb.shape[:2], config.seed)
    return keras.Variable(start[None], name="image")  # (1, h, w, 3), preprocessed


def save_comparison(config, out, content_rgb, image):
    """comparison.png: content | style (resized to the content's shape) | result."""
    result = style_transfer.deprocess(keras.ops.convert_to_numpy(image))
    style_resized = style_transfer.load_image(config.style, content_rgb.shape[:2])
    row = np.concatenate([content_rgb, style_resized, result.astype("float32")], axis=1)
    style_transfer.save_image(out / "comparison.png", row)


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.neural_style",
        description=__doc__.split("\n")[0],
        quick=QUICK,
    )
    config.check()
    content_rgb, style_rgb = load_images(config)
    engine.set_seed(config.seed)
    layers = list(dict.fromkeys((*STYLE_LAYERS, CONTENT_LAYER)))
    features = style_transfer.build_features(
        layers, config.pooling, config.weights, config.seed, dtype_policy=config.dtype_policy
    )
    out = Path(config.out or "runs/neural_style")
    h, w = content_rgb.shape[:2]
    print(
        f"Neural style: content {config.content} ({h}x{w}), style {config.style}, VGG19 "
        f"{config.weights} weights, alpha {config.content_weight:g}, beta {config.style_weight:g}, "
        f"gamma {config.tv_weight:g}, {config.optimizer}, backend {engine.backend()}"
    )
    content_features, grams = prepare(features, content_rgb, style_rgb)
    image = starting_image(config, content_rgb)
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
    save_comparison(config, out, content_rgb, image)
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
