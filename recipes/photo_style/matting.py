"""The photorealism term of A 9.10: Levin et al.'s matting Laplacian and its quadratic form.

L_m = sum_c V_c[X]^T M V_c[X]: M is the matting Laplacian (Levin, Lischinski, Weiss 2008) of the
content image C scaled to [0, 1], V_c[X] the channel c of X in [0, 1] flattened. It vanishes when
X is locally an affine function of C's colours, so edges stay where C has them and the result looks
like a photograph, not a painting. M is built once with NumPy/SciPy; the form and its gradient
2 M V come from a sparse COO product with `keras.ops.take` and `keras.ops.segment_sum`, so autodiff
differentiates it on all three backends without a custom gradient.
"""

import numpy as np

from recipes.common import cli

keras = cli.lazy_import("keras")

EPSILON = 1e-7  # the matting Laplacian's regulariser (the authors' -eps)
WINDOW_RADIUS = 1  # 3x3 windows (the authors' -patch 3)
PIXEL_SCALE = 255.0  # V = X / PIXEL_SCALE is the image in [0, 1] of the photorealism term


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
    covariance = np.einsum("kpc,kpd->kcd", centred, centred) / n  # (windows, channels, channels)
    inverse = np.linalg.inv(covariance + (eps / n) * np.eye(channels))
    affinity = np.matmul(np.matmul(centred, inverse), np.swapaxes(centred, 1, 2))  # (windows, n, n)
    values = np.eye(n) - (1.0 + affinity) / n  # (windows, n, n)
    rows = np.repeat(windows, n, axis=1).ravel()
    cols = np.tile(windows, (1, n)).ravel()
    laplacian = scipy.sparse.coo_matrix((values.ravel(), (rows, cols)), shape=(h * w, h * w))
    return laplacian.tocsr().tocoo()  # merges the duplicates, rows sorted


def coo_tensors(laplacian):
    """A SciPy COO matrix as the (rows, cols, values) tensors `photorealism_loss` takes."""
    ops = keras.ops
    return (
        ops.convert_to_tensor(laplacian.row.astype("int32")),
        ops.convert_to_tensor(laplacian.col.astype("int32")),
        ops.convert_to_tensor(laplacian.data.astype("float32")),
    )


def sparse_matvec(rows, cols, values, v, num_rows):
    """M v for M in COO form (rows, cols, values) and v of shape (n, k), with keras.ops only.

    `take` gathers v at the column of every entry, `segment_sum` adds the weighted products into
    their rows; both are differentiable on every backend, so the gradient is autodiff's.
    """
    ops = keras.ops
    products = ops.take(v, cols, axis=0) * ops.expand_dims(values, -1)  # (entries, k)
    return ops.segment_sum(products, rows, num_segments=num_rows)  # (n, k)


def sparse_quadratic_form(rows, cols, values, v):
    """sum_c v_c^T M v_c for v of shape (n, channels): the photorealism loss L_m."""
    ops = keras.ops
    return ops.sum(v * sparse_matvec(rows, cols, values, v, ops.shape(v)[0]))


def photorealism_loss(image, laplacian):
    """L_m of a preprocessed image (1, h, w, 3); `laplacian` = (rows, cols, values) tensors.

    The paper's lambda = 1e4 multiplies the form on V in [0, 1] (the authors divide pixels by 256).
    X is held in VGG's preprocessed space (BGR, ImageNet mean subtracted, 0-255 scale); since M
    annihilates constants and the sum runs over all channels, V = X / 255 gives exactly the same
    form as the RGB image in [0, 1], so the term is lambda / 255^2 in 0-255 pixel units.
    """
    ops = keras.ops
    v = ops.reshape(image, (-1, ops.shape(image)[-1])) / PIXEL_SCALE  # (h w, 3)
    return sparse_quadratic_form(*laplacian, v)
