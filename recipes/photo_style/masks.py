"""The segmentation masks of A 9.10's augmented style loss: one class per colour, or k-means.

Mask files (`--content-mask`, `--style-mask`) are images in which every distinct colour is one
class (the authors' convention; their 9 colours are `AUTHOR_COLOURS`). Without mask files,
`--masks auto` (the default) clusters the colours of both images with one scikit-learn KMeans
(`--classes` centres fitted on pixels of both images), so a class means the same colour range in
both; `--masks none` uses one class (plain neural style plus the photorealism term). The masks then
follow the features through VGG19 (`propagate_masks`).
"""

import numpy as np

from recipes.common import cli

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


def class_colours(classes, centres=None):
    """Display colours: the authors' 9 for up to 9 classes, else the k-means centres."""
    if classes <= len(AUTHOR_COLOURS):
        return np.array(list(AUTHOR_COLOURS.values())[:classes], "uint8")
    return np.clip(np.asarray(centres), 0, 255).astype("uint8")


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


def mask_picture(masks, colours):
    """One-hot masks (K, h, w) painted with one colour per class: uint8 (h, w, 3)."""
    labels = np.argmax(masks, axis=0)
    return np.asarray(colours, "uint8")[labels]


def side_by_side(left, right, gap=4):
    """Two uint8 pictures (h, w, 3) next to each other on white, `gap` pixels apart."""
    h = max(left.shape[0], right.shape[0])
    canvas = np.full((h, left.shape[1] + gap + right.shape[1], 3), 255, "uint8")
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] + gap :] = right
    return canvas
