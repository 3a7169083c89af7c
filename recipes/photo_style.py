"""Deep photo style transfer: segmented style loss plus the matting-Laplacian photorealism term.

Reproduces section 9.10 of seeds/000 (Luan, Paris, Shechtman, Bala 2017, arXiv 1703.07511). The
output image X is optimised, starting from the content image C, to minimise

    L = alpha L_content + beta L_style + gamma L_tv + lambda L_m

- L_content: conv4_2 (Keras VGG19's block4_conv2, after its ReLU) features of X against those of C.
- L_style, the augmented style loss: the style image S and C each come with a segmentation into
  classes (masks S^s_i, S^c_i); at every style layer conv1_1 ... conv5_1 the Gram of X restricted
  to class i is matched to the Gram of S restricted to the same class,
      sum_j sum_i || Gram(X_j S^c_ij) - Gram(S_j S^s_ij) ||^2,
  so the sky takes the style of the sky and buildings that of buildings. The masks follow the
  features through the network (`propagate_masks`): a 3x3, stride-1 average pool (zero padding of
  1) at every convolution and a bilinear resize at every pool. The pools are "same" (ceil) pools, as
  the notes' 700x530 shape table requires (350x265, 175x133, 88x67, 44x34).
- L_m = sum_c V_c[X]^T M V_c[X], the photorealism regulariser: M is the matting Laplacian of Levin
  et al. (2008) of C scaled to [0, 1] (3x3 windows, eps = 1e-7; `matting_laplacian`), V_c[X] the
  channel c of X in [0, 1] flattened. It vanishes when X is locally an affine function of C's
  colours, so edges stay where C has them and the result looks like a photograph, not a painting.
  M is built once with NumPy/SciPy; the form and its gradient 2 M V come from a sparse COO
  product with `keras.ops.take` and `keras.ops.segment_sum` (`sparse_quadratic_form`), so autodiff
  differentiates it on all three backends without a custom gradient.
- L_tv: eq. 13 (squared neighbour differences), not in the paper.

Masks: `--content-mask`/`--style-mask` are images in which every distinct colour is one class
(the authors' convention; their 9 colours are `AUTHOR_COLOURS`); colours present in only one of
the two masks get no style term. Without mask files, `--masks auto` (the default) clusters the
colours of both images with one scikit-learn KMeans (`--classes` centres fitted on pixels of both
images), so a class means the same colour range in both; `--masks none` uses one class (plain
neural style plus the photorealism term).

Normalisation and default weights follow the authors' code (neuralstyle_seg.lua), so their
weights apply unchanged: alpha = 5, beta = 100, gamma = 1e-3 / 2, lambda = 1e4.
- L_content is the mean squared difference, i.e. eq. 11 (lambda_c = 1/2) times 2 / (M N).
- Per class, Grams are divided by N times the class area (the sum of the propagated mask), the
  squared difference is averaged over the N^2 entries and weighted by the class's share of X's
  positions. With one all-ones class this is eq. 12 (lambda_s = 1 / (4 M^2 N^2)) times 4 / N^2.
- The authors' TV gradient is that of half the squared differences: gamma = 1e-3 / 2 on eq. 13.
- lambda = 1e4 multiplies the form on V in [0, 1] (the authors divide pixels by 256). Here X is
  held in VGG's preprocessed space (BGR, ImageNet mean subtracted, 0-255 scale); since M annihilates
  constants and the sum runs over all channels, V = X / 255 gives exactly the same form as the RGB
  image in [0, 1], so the term is lambda / 255^2 in 0-255 pixel units.
The authors run 1,000 L-BFGS iterations; their post-processing ("local affine smooth", which the
notes leave "to be checked") is not reproduced.

Weights: `--weights imagenet` (default) downloads Keras' VGG19 weights once; `--weights random`
uses fixed random convolutions (identical on every backend; what the tests use).

Outputs (under --out, default runs/photo_style): result.png, masks.png (content and style masks side
by side, one colour per class: the authors' 9 colours for up to 9 classes), snapshots/
snapshot_XXXX.png, losses.png (the total and every weighted term per step, log scale), summary.json
(the terms before and after, seconds per step, the class colours and sizes). Images, VGG features,
the eq. 13 TV loss, the optimisers and the outputs come from recipes/common/style_transfer.py.

    python -m recipes.photo_style                           # china (content) in flower's style
    python -m recipes.photo_style --content in.png --style tar.png \\
        --content-mask in_seg.png --style-mask tar_seg.png  # the authors' examples
    KERAS_BACKEND=jax python -m recipes.photo_style --optimizer adam --steps 200
"""

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, style_transfer
from recipes.common.style_transfer import CONTENT_LAYER, STYLE_LAYERS

keras = cli.lazy_import("keras")

SECTION = "A 9.10"
EPSILON = 1e-7  # the matting Laplacian's regulariser (the authors' -eps)
WINDOW_RADIUS = 1  # 3x3 windows (the authors' -patch 3)
PIXEL_SCALE = 255.0  # V = X / PIXEL_SCALE is the image in [0, 1] of the photorealism term
# The authors' 9 mask colours (neuralstyle_seg.lua), in their order.
AUTHOR_COLOURS = {
    "blue": (0, 0, 255),
    "green": (0, 255, 0),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "red": (255, 0, 0),
    "yellow": (255, 255, 0),
    "grey": (128, 128, 128),
    "lightblue": (0, 255, 255),
    "purple": (255, 0, 255),
}
MAX_MASK_COLOURS = 32
TERMS = ("content", "style", "tv", "photo")


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


# ---------------------------------------------------------------------------------------------
# The matting Laplacian and its quadratic form


def matting_laplacian(image, eps=EPSILON, radius=WINDOW_RADIUS):
    """Levin et al.'s matting Laplacian of `image` (h, w, 3) in [0, 1], as a SciPy COO matrix.

    For every window w_k of (2 radius + 1)^2 pixels that lies inside the image, with colour mean
    mu_k and covariance Sigma_k (3x3, divided by |w_k|),

        M_ij = sum_{k: i, j in w_k} delta_ij - (1 + (I_i - mu_k)^T (Sigma_k + eps/|w_k| I)^-1
                                                    (I_j - mu_k)) / |w_k|.

    Pixels are numbered row by row (i = y * w + x). M is symmetric positive semi-definite and
    M 1 = 0 (every window's block has zero row sums); as eps -> 0 it annihilates every function
    that is affine in the colours of `image` inside each window. All windows are computed at once
    (no loop over pixels); the (window, i, j) entries are summed into COO form with duplicates
    merged. Computed in float64.
    """
    import scipy.sparse

    image = np.asarray(image, np.float64)
    if image.ndim != 3:
        raise ValueError(f"matting_laplacian expects an image (h, w, channels), got {image.shape}")
    h, w, channels = image.shape
    size = 2 * radius + 1
    n = size * size
    if h < size or w < size:
        raise ValueError(f"matting_laplacian needs an image of at least {size}x{size}, got {h}x{w}")
    index = np.arange(h * w).reshape(h, w)
    windows = np.lib.stride_tricks.sliding_window_view(index, (size, size)).reshape(-1, n)
    colours = image.reshape(-1, channels)[windows]  # (windows, n, channels)
    centred = colours - colours.mean(axis=1, keepdims=True)
    covariance = np.einsum("kpc,kpd->kcd", centred, centred) / n
    inverse = np.linalg.inv(covariance + (eps / n) * np.eye(channels))
    affinity = np.matmul(np.matmul(centred, inverse), np.swapaxes(centred, 1, 2))
    values = np.eye(n) - (1.0 + affinity) / n  # (windows, n, n)
    rows = np.repeat(windows, n, axis=1).ravel()
    cols = np.tile(windows, (1, n)).ravel()
    laplacian = scipy.sparse.coo_matrix((values.ravel(), (rows, cols)), shape=(h * w, h * w))
    return laplacian.tocsr().tocoo()  # merges the duplicates, rows sorted


def sparse_matvec(rows, cols, values, v, num_rows):
    """M v for M in COO form (rows, cols, values) and v of shape (n, k), with keras.ops only.

    `take` gathers v at the column of every entry, `segment_sum` adds the weighted products into
    their rows; both are differentiable on every backend, so the gradient is autodiff's.
    """
    ops = keras.ops
    products = ops.take(v, cols, axis=0) * ops.expand_dims(values, -1)
    return ops.segment_sum(products, rows, num_segments=num_rows)


def sparse_quadratic_form(rows, cols, values, v):
    """sum_c v_c^T M v_c for v of shape (n, channels): the photorealism loss L_m."""
    ops = keras.ops
    return ops.sum(v * sparse_matvec(rows, cols, values, v, ops.shape(v)[0]))


def photorealism_loss(image, laplacian):
    """L_m of a preprocessed image (1, h, w, 3); `laplacian` = (rows, cols, values) tensors."""
    ops = keras.ops
    v = ops.reshape(image, (-1, ops.shape(image)[-1])) / PIXEL_SCALE
    return sparse_quadratic_form(*laplacian, v)


# ---------------------------------------------------------------------------------------------
# Masks


def kmeans_masks(content, style, classes, seed=0, sample=20000):
    """Colour classes of both images from one KMeans: (content (K, h, w), style (K, hs, ws)).

    The centres are fitted on up to `sample` pixels drawn from both images together, so class i
    is the same colour range in both. Returns float32 one-hot masks and the centres (K, 3).
    """
    from sklearn.cluster import KMeans

    pixels = [np.asarray(image, "float32").reshape(-1, 3) for image in (content, style)]
    both = np.concatenate(pixels)
    rng = np.random.default_rng(seed)
    fit = both[rng.choice(len(both), min(sample, len(both)), replace=False)]
    if len(np.unique(fit, axis=0)) < classes:
        raise cli.UsageError(f"the images have fewer than --classes {classes} distinct colours")
    kmeans = KMeans(classes, n_init=4, random_state=seed).fit(fit)
    masks = []
    for image, flat in zip((content, style), pixels):
        labels = kmeans.predict(flat).reshape(image.shape[:2])
        masks.append((labels[None] == np.arange(classes)[:, None, None]).astype("float32"))
    return masks[0], masks[1], kmeans.cluster_centers_


def read_mask(path, shape):
    """A segmentation image resized (nearest) to `shape` (h, w): uint8 RGB (h, w, 3)."""
    from PIL import Image

    try:
        image = Image.open(path)
        image.load()
    except (OSError, ValueError) as error:
        raise cli.UsageError(f"cannot read mask {path!r}: {error}") from None
    image = image.convert("RGB").resize((shape[1], shape[0]), Image.Resampling.NEAREST)
    return np.asarray(image)


def colour_masks(content_mask, style_mask):
    """One class per distinct colour of two segmentation images (h, w, 3): (content (K, h, w),
    style (K, hs, ws), colours (K, 3)), classes in order of first appearance in the content mask."""
    colours = []
    for mask in (content_mask, style_mask):
        found = np.unique(mask.reshape(-1, 3), axis=0)
        if len(found) > MAX_MASK_COLOURS:
            raise cli.UsageError(
                f"a mask has {len(found)} colours, more than {MAX_MASK_COLOURS}: use flat colours "
                "(e.g. the authors' 9) saved losslessly (PNG)"
            )
        colours.extend(tuple(c) for c in found if tuple(c) not in colours)
    colours = np.array(colours, "uint8")

    def one_hot(mask):
        return np.all(mask[None] == colours[:, None, None, :], axis=-1).astype("float32")

    return one_hot(content_mask), one_hot(style_mask), colours


def propagate_masks(masks, layer_names, pool_padding="same"):
    """Masks (K, h, w) at the output of every VGG19 layer in `layer_names`: {name: (K, h_l, w_l)}.

    Follows the features through VGG19: a 3x3, stride-1 average pool with zero padding of 1 at
    every convolution (so a mask fades over a receptive field's border, as the features mix) and
    a bilinear resize (half-pixel centres) to the pooled size at every pool: ceil(h / 2) with
    "same" pools, floor with "valid" ones. NumPy, computed once per image.
    """
    from layers.style import VGG19_LAYER_NAMES

    depth = max(VGG19_LAYER_NAMES.index(name) for name in layer_names) + 1
    current, out = np.asarray(masks, np.float64), {}
    for name in VGG19_LAYER_NAMES[:depth]:
        if name.endswith("_pool"):
            h, w = current.shape[1:]
            size = (-(-h // 2), -(-w // 2)) if pool_padding == "same" else (h // 2, w // 2)
            current = resize_bilinear(current, size)
        else:
            padded = np.pad(current, ((0, 0), (1, 1), (1, 1)))
            h, w = current.shape[1:]
            current = sum(padded[:, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0
        if name in layer_names:
            out[name] = current.astype("float32")
    return out


def resize_bilinear(images, size):
    """Bilinear resize of (K, h, w) to (K, *size) with half-pixel centres and no antialiasing
    (what keras.ops.image.resize and the authors' image.scale do)."""

    def weights(n_in, n_out):
        x = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
        low = np.floor(x).astype(int)
        high = np.minimum(low + 1, n_in - 1)
        frac = x - low
        matrix = np.zeros((n_out, n_in))
        np.add.at(matrix, (np.arange(n_out), low), 1 - frac)
        np.add.at(matrix, (np.arange(n_out), high), frac)
        return matrix

    rows, cols = weights(images.shape[1], size[0]), weights(images.shape[2], size[1])
    return np.matmul(np.matmul(rows, images), cols.T)


def masked_grams(features, masks):
    """Gram(F S_i) / (N area_i) for every class: features (1, h, w, N), masks (K, h, w) -> (K, N, N).

    `area_i` is the sum of mask i (its Gram weight is mask^2 per position, matching the authors'
    code); a class with no area gets a zero Gram. Uses `layers.GramMatrix(region=...)`.
    """
    from layers import GramMatrix

    ops = keras.ops
    masks = ops.convert_to_tensor(masks)
    classes, channels = masks.shape[0], features.shape[-1]
    tiled = ops.broadcast_to(features, (classes, *features.shape[1:]))
    grams = GramMatrix()(tiled, region=masks)
    area = ops.sum(masks, axis=(1, 2))
    scale = ops.where(area > 0, 1.0 / (channels * ops.maximum(area, 1e-12)), 0.0)
    return grams * ops.reshape(scale, (-1, 1, 1))


def segmented_style_loss(grams, target_grams, class_weights):
    """The authors' per-layer segmented style loss from `masked_grams` of X and of S.

    sum_i a_i mean_{N^2}((G_i - A_i)^2), a_i = the share of X's positions in class i (zero for a
    class absent from either image). With one all-ones class, equal to eq. 12's style loss of the
    plain Grams times 4 / N^2.
    """
    ops = keras.ops
    grams, target_grams = ops.convert_to_tensor(grams), ops.convert_to_tensor(target_grams)
    per_class = ops.mean(ops.square(grams - target_grams), axis=(1, 2))
    return ops.sum(per_class * class_weights)


# ---------------------------------------------------------------------------------------------
# The problem and its loss


class PhotoStyle:
    """The VGG features, the fixed targets and the loss of one content/style pair."""

    def __init__(self, config, content_rgb, style_rgb, content_masks, style_masks):
        ops = keras.ops
        self.config = config
        self.features = style_transfer.build_features(
            (*STYLE_LAYERS, CONTENT_LAYER),
            weights=config.weights,
            seed=config.seed,
            pool_padding="same",
        )
        content_x = style_transfer.preprocess(content_rgb)[None]
        style_x = style_transfer.preprocess(style_rgb)[None]
        c_masks = propagate_masks(content_masks, STYLE_LAYERS)
        s_masks = propagate_masks(style_masks, STYLE_LAYERS)
        present = (content_masks.sum(axis=(1, 2)) > 0) & (style_masks.sum(axis=(1, 2)) > 0)
        content_features = self.features(content_x)
        style_features = self.features(style_x)
        self.targets = {"content": ops.convert_to_tensor(content_features[CONTENT_LAYER])}
        for name in STYLE_LAYERS:
            share = c_masks[name].sum(axis=(1, 2)) / np.prod(c_masks[name].shape[1:])
            self.targets[name] = {
                "grams": masked_grams(style_features[name], s_masks[name]),
                "masks": ops.convert_to_tensor(c_masks[name]),
                "weights": ops.convert_to_tensor((share * present).astype("float32")),
            }
        start = time.perf_counter()
        laplacian = matting_laplacian(content_rgb / 255.0)
        self.laplacian_seconds = time.perf_counter() - start
        self.targets["laplacian"] = (
            ops.convert_to_tensor(laplacian.row.astype("int32")),
            ops.convert_to_tensor(laplacian.col.astype("int32")),
            ops.convert_to_tensor(laplacian.data.astype("float32")),
        )
        self.image = keras.Variable(content_x, name="image")

    def terms(self, image, targets):
        """The four weighted loss terms of `image` (1, h, w, 3) as a dict."""
        ops, config = keras.ops, self.config
        features = self.features(image)
        content = features[CONTENT_LAYER]
        mse = ops.mean(ops.square(content - targets["content"]))
        style = 0.0
        for name in STYLE_LAYERS:
            target = targets[name]
            grams = masked_grams(features[name], target["masks"])
            style = style + segmented_style_loss(grams, target["grams"], target["weights"])
        return {
            "content": config.content_weight * mse,
            "style": config.style_weight * style,
            "tv": config.tv_weight * style_transfer.total_variation_loss(image),
            "photo": config.photo_weight * photorealism_loss(image, targets["laplacian"]),
        }

    def loss(self):
        terms = self.terms(self.image, self.targets)
        return sum(terms.values()), terms


# ---------------------------------------------------------------------------------------------
# Outputs


def mask_picture(masks, colours):
    """One-hot masks (K, h, w) painted with one colour per class: uint8 (h, w, 3)."""
    labels = np.argmax(masks, axis=0)
    return np.asarray(colours, "uint8")[labels]


def class_colours(classes, centres=None):
    """Display colours: the authors' 9 for up to 9 classes, else the k-means centres."""
    if classes <= len(AUTHOR_COLOURS):
        return np.array(list(AUTHOR_COLOURS.values())[:classes], "uint8")
    return np.clip(np.asarray(centres), 0, 255).astype("uint8")


def side_by_side(left, right, gap=4):
    h = max(left.shape[0], right.shape[0])
    canvas = np.full((h, left.shape[1] + gap + right.shape[1], 3), 255, "uint8")
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] + gap :] = right
    return canvas


def load_masks(config, content_rgb, style_rgb):
    """(content masks (K, h, w), style masks (K, hs, ws), display colours (K, 3))."""
    if config.content_mask is not None:
        content_seg = read_mask(config.content_mask, content_rgb.shape[:2])
        style_seg = read_mask(config.style_mask, style_rgb.shape[:2])
        return colour_masks(content_seg, style_seg)
    if config.masks == "none":
        ones = [np.ones((1, *rgb.shape[:2]), "float32") for rgb in (content_rgb, style_rgb)]
        return ones[0], ones[1], class_colours(1)
    content, style, centres = kmeans_masks(content_rgb, style_rgb, config.classes, config.seed)
    return content, style, class_colours(config.classes, centres)


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
    out.mkdir(parents=True, exist_ok=True)
    style_transfer.save_image(
        out / "masks.png",
        side_by_side(mask_picture(content_masks, colours), mask_picture(style_masks, colours)),
    )
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
        summary={
            "section": SECTION,
            "size": [h, w],
            "classes": [list(map(int, c)) for c in colours],
            "class_pixels": {
                "content": content_masks.sum(axis=(1, 2)).astype(int).tolist(),
                "style": style_masks.sum(axis=(1, 2)).astype(int).tolist(),
            },
            "laplacian_seconds": problem.laplacian_seconds,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
