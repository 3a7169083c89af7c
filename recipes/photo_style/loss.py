"""The loss of A 9.10: L = alpha L_content + beta L_style + gamma L_tv + lambda L_m.

L_style is the augmented style loss: the style image S and the content image C each come with a
segmentation into classes (masks S^s_i, S^c_i); at every style layer conv1_1 ... conv5_1 the Gram
of X restricted to class i is matched to the Gram of S restricted to the same class,

    sum_j sum_i || Gram(X_j S^c_ij) - Gram(S_j S^s_ij) ||^2,

so the sky takes the style of the sky and buildings that of buildings. The normalisation follows
the authors' code (neuralstyle_seg.lua), so their weights apply unchanged (see `Config`).
"""

import time

import numpy as np

from recipes.common import cli, style_transfer
from recipes.common.style_transfer import CONTENT_LAYER, STYLE_LAYERS
from recipes.photo_style.masks import propagate_masks
from recipes.photo_style.matting import coo_tensors, matting_laplacian, photorealism_loss

keras = cli.lazy_import("keras")


def masked_grams(features, masks):
    """Gram(F S_i) / (N area_i) for every class: features (1, h, w, N), masks (K, h, w) -> (K, N, N).

    `area_i` is the sum of mask i (its Gram weight is mask^2 per position, matching the authors'
    code); a class with no area gets a zero Gram. Uses `layers.GramMatrix(region=...)`.
    """
    from layers import GramMatrix

    ops = keras.ops
    masks = ops.convert_to_tensor(masks)
    classes, channels = masks.shape[0], features.shape[-1]
    tiled = ops.broadcast_to(features, (classes, *features.shape[1:]))  # (K, h, w, N)
    grams = GramMatrix()(tiled, region=masks)  # (K, N, N)
    area = ops.sum(masks, axis=(1, 2))  # (K,)
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
    per_class = ops.mean(ops.square(grams - target_grams), axis=(1, 2))  # (K,)
    return ops.sum(per_class * class_weights)


class PhotoStyle:
    """The VGG features, the fixed targets and the loss of one content/style pair.

    `image` is the `keras.Variable` X (1, h, w, 3), preprocessed, that starts as the content image;
    `loss()` returns `(total, {content, style, tv, photo})` (weighted terms); `laplacian_seconds`
    is the time the matting Laplacian took.
    """

    def __init__(self, config, content_rgb, style_rgb, content_masks, style_masks):
        ops = keras.ops
        self.config = config
        # "Same" (ceil) pools, as the notes' 700x530 shape table requires (350x265, 175x133, 88x67,
        # 44x34); Keras' VGG19 pools "valid" (floor).
        self.features = style_transfer.build_features(
            (*STYLE_LAYERS, CONTENT_LAYER),
            weights=config.weights,
            seed=config.seed,
            pool_padding="same",
            dtype_policy=config.dtype_policy,
        )
        content_x = style_transfer.preprocess(content_rgb)[None]  # (1, h, w, 3)
        style_x = style_transfer.preprocess(style_rgb)[None]  # (1, hs, ws, 3)
        c_masks = propagate_masks(content_masks, STYLE_LAYERS)  # {layer: (K, h_l, w_l)}
        s_masks = propagate_masks(style_masks, STYLE_LAYERS)  # {layer: (K, hs_l, ws_l)}
        # A class present in only one of the two images gets no style term.
        present = (content_masks.sum(axis=(1, 2)) > 0) & (style_masks.sum(axis=(1, 2)) > 0)
        content_features = self.features(content_x)
        style_features = self.features(style_x)
        self.targets = {"content": ops.convert_to_tensor(content_features[CONTENT_LAYER])}
        for name in STYLE_LAYERS:
            # a_i: the class's share of the positions of X, which keeps C's segmentation.
            share = c_masks[name].sum(axis=(1, 2)) / np.prod(c_masks[name].shape[1:])
            self.targets[name] = {
                "grams": masked_grams(style_features[name], s_masks[name]),  # (K, N, N)
                "masks": ops.convert_to_tensor(c_masks[name]),  # (K, h_l, w_l)
                "weights": ops.convert_to_tensor((share * present).astype("float32")),  # (K,)
            }
        start = time.perf_counter()
        laplacian = matting_laplacian(content_rgb / 255.0)  # (h w, h w), up to 25 entries a row
        self.laplacian_seconds = time.perf_counter() - start
        self.targets["laplacian"] = coo_tensors(laplacian)
        self.image = keras.Variable(content_x, name="image")

    def terms(self, image, targets):
        """The four weighted loss terms of `image` (1, h, w, 3) as a dict."""
        ops, config = keras.ops, self.config
        features = self.features(image)  # {layer: (1, h_l, w_l, N_l)}
        # L_content at conv4_2 (block4_conv2, after its ReLU), the authors' mean squared
        # difference: eq. 11 (lambda_c = 1/2) times 2 / (M N).
        content = features[CONTENT_LAYER]  # (1, h/8, w/8, 512)
        mse = ops.mean(ops.square(content - targets["content"]))
        # Per class, Grams are divided by N times the class area, the squared difference is
        # averaged over the N^2 entries and weighted by the class's share of X's positions. With
        # one all-ones class this is eq. 12 (lambda_s = 1 / (4 M^2 N^2)) times 4 / N^2.
        style = 0.0
        for name in STYLE_LAYERS:
            target = targets[name]
            grams = masked_grams(features[name], target["masks"])  # (K, N, N)
            style = style + segmented_style_loss(grams, target["grams"], target["weights"])
        return {
            "content": config.content_weight * mse,
            "style": config.style_weight * style,
            # Eq. 13 (squared neighbour differences); not in the paper.
            "tv": config.tv_weight * style_transfer.total_variation_loss(image),
            "photo": config.photo_weight * photorealism_loss(image, targets["laplacian"]),
        }

    def loss(self):
        terms = self.terms(self.image, self.targets)
        return sum(terms.values()), terms
