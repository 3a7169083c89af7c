"""Deep photo style transfer: segmented style loss plus the matting-Laplacian photorealism term.

Reproduces A 9.10 (Luan, Paris, Shechtman, Bala 2017, arXiv 1703.07511): the output X, starting
from the content image C, minimises

    L = alpha L_content + beta L_style + gamma L_tv + lambda L_m

L_style matches Grams class by class through segmentation masks of C and of the style image S
(masks.py: mask files, or k-means colour classes of both images); L_m, the quadratic form of C's
matting Laplacian (matting.py), keeps X locally an affine function of C's colours, so the result
looks like a photograph, not a painting; loss.py puts them together with the authors'
normalisation. Images, VGG features, the eq. 13 TV loss, the optimisers and the outputs come from
recipes/common/style_transfer.py. The authors' post-processing ("local affine smooth", which the
notes leave "to be checked") is not reproduced. `--weights imagenet` (default) downloads Keras'
VGG19 weights once; `--weights random` uses fixed random convolutions (the same on every backend).

Outputs (under --out, default runs/photo_style): result.png, masks.png (content and style masks,
one colour per class), snapshots/snapshot_XXXX.png, losses.png (every weighted term, log scale),
summary.json (the terms before and after, seconds per step, the class colours and sizes).

    python -m recipes.photo_style                           # china (content) in flower's style
    python -m recipes.photo_style --content in.png --style tar.png \\
        --content-mask in_seg.png --style-mask tar_seg.png  # the authors' examples
    KERAS_BACKEND=jax python -m recipes.photo_style --optimizer adam --steps 200

Measured: --quick (32 pixels, 20 Adam steps, random weights) lowers the loss 8.7x.
"""

import dataclasses
from pathlib import Path

from recipes import engine
from recipes.common import cli, style_transfer
from recipes.common.style_transfer import STYLE_LAYERS
from recipes.photo_style.loss import PhotoStyle, masked_grams, segmented_style_loss
from recipes.photo_style.masks import (
    AUTHOR_COLOURS,
    colour_masks,
    kmeans_masks,
    load_masks,
    mask_picture,
    propagate_masks,
    read_mask,
    resize_bilinear,
    side_by_side,
)
from recipes.photo_style.matting import (
    matting_laplacian,
    photorealism_loss,
    sparse_matvec,
    sparse_quadratic_form,
)

# What `from recipes import photo_style` users and the tests reach without naming a submodule.
__all__ = [
    "AUTHOR_COLOURS",
    "QUICK",
    "SECTION",
    "STYLE_LAYERS",
    "TERMS",
    "Config",
    "PhotoStyle",
    "colour_masks",
    "kmeans_masks",
    "main",
    "masked_grams",
    "matting_laplacian",
    "photorealism_loss",
    "propagate_masks",
    "read_mask",
    "resize_bilinear",
    "segmented_style_loss",
    "sparse_matvec",
    "sparse_quadratic_form",
]

SECTION = "A 9.10"
TERMS = ("content", "style", "tv", "photo")


# Normalisation and default weights follow the authors' code (neuralstyle_seg.lua), so their
# weights apply unchanged: alpha = 5, beta = 100, gamma = 1e-3 / 2 (their TV gradient is that of
# half the squared differences of eq. 13), lambda = 1e4 (see `matting.photorealism_loss`).
@dataclasses.dataclass
class Config(style_transfer.StyleConfig):
    content: str = cli.option("china", "content image: a path, or 'china' / 'flower' (embedded)")
    style: str = cli.option("flower", "style image: a path, or 'china' / 'flower' (embedded)")
    content_mask: str = cli.option(None, "segmentation of the content image (one colour per class)")
    style_mask: str = cli.option(None, "segmentation of the style image (same colours)")
    masks: str = cli.option(
        "auto",
        "without mask files: k-means colour classes of both images, or one class",
        choices=("auto", "none"),
    )
    classes: int = cli.option(4, "number of k-means colour classes (--masks auto)")
    steps: int = cli.option(300, "L-BFGS iterations or Adam updates (the authors run 1,000 L-BFGS)")
    optimizer: str = cli.option("lbfgs", "optimiser of the pixels", choices=("lbfgs", "adam"))
    learning_rate: float = cli.option(2.0, "Adam step size in 0-255 pixel units (--optimizer adam)")
    content_weight: float = cli.option(5.0, "alpha: weight of the content MSE (authors' 5)")
    style_weight: float = cli.option(100.0, "beta: weight of the segmented style loss (authors' 100)")
    tv_weight: float = cli.option(5e-4, "gamma: weight of eq. 13's TV (authors' 1e-3 on half of it)")
    photo_weight: float = cli.option(1e4, "lambda: weight of V^T M V with V in [0, 1] (paper 1e4)")

    def __post_init__(self):
        self.check()
        if (self.content_mask is None) != (self.style_mask is None):
            raise cli.UsageError("give both --content-mask and --style-mask, or neither")
        if self.classes < 1:
            raise cli.UsageError(f"--classes must be at least 1, got {self.classes}")


QUICK = dict(size=32, steps=20, classes=3, optimizer="adam", learning_rate=8.0, snapshot_every=10)


def save_masks(out, content_masks, style_masks, colours):
    """masks.png: the content and the style masks side by side, one colour per class."""
    out.mkdir(parents=True, exist_ok=True)
    picture = side_by_side(mask_picture(content_masks, colours), mask_picture(style_masks, colours))
    style_transfer.save_image(out / "masks.png", picture)


def run_summary(problem, shape, colours, content_masks, style_masks):
    """What summary.json records besides the losses: the classes, their sizes, the Laplacian's time."""
    return {
        "section": SECTION,
        "size": list(shape),
        "classes": [list(map(int, c)) for c in colours],
        "class_pixels": {
            "content": content_masks.sum(axis=(1, 2)).astype(int).tolist(),
            "style": style_masks.sum(axis=(1, 2)).astype(int).tolist(),
        },
        "laplacian_seconds": problem.laplacian_seconds,
    }


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.photo_style",
        description=__doc__.split("\n")[0],
        quick=QUICK,
    )
    engine.set_seed(config.seed)
    out = Path(config.out or "runs/photo_style")
    content_rgb = style_transfer.load_image(config.content, config.size)
    style_rgb = style_transfer.load_image(config.style, config.size)
    content_masks, style_masks, colours = load_masks(config, content_rgb, style_rgb)
    save_masks(out, content_masks, style_masks, colours)
    problem = PhotoStyle(config, content_rgb, style_rgb, content_masks, style_masks)
    h, w = content_rgb.shape[:2]
    print(
        f"Deep photo style transfer {h}x{w}, {len(content_masks)} classes, {config.optimizer}, "
        f"backend {engine.backend()}; matting Laplacian in {problem.laplacian_seconds:.2f} s"
    )
    style_transfer.run(
        problem.loss,
        problem.image,
        [problem.features],
        config,
        out,
        title="deep photo style transfer",
        terms=TERMS,
        summary=run_summary(problem, (h, w), colours, content_masks, style_masks),
    )
    return 0
