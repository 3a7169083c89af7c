"""Pix2Pix's data: the pairs of `--dataset` / `--data-dir`, training batches, triptychs, and the
held-out L1 with its references (input copy, per-pixel colour lookup)."""

import numpy as np

from datasets import pairs
from recipes.common import gan_training
from recipes.pix2pix.model import as_float


def load_pairs(config):
    """(train_inputs, train_targets, test_inputs, test_targets), uint8 (N, size, size, 3)."""
    size, direction = config.image_size, config.direction
    limits = {"train": config.train_pairs, "test": config.test_pairs}
    if config.data_dir:
        loaded = [
            pairs.load_folder_pairs(config.data_dir, split, size, direction, limit)
            for split, limit in limits.items()
        ]
    elif config.dataset == "facades":
        loaded = [pairs.load_facades(split, size, direction, limit) for split, limit in limits.items()]
    else:
        loaded = [pairs.load_buildings(split, size, limit) for split, limit in limits.items()]
    (x_train, y_train), (x_test, y_test) = loaded
    return x_train, y_train, x_test, y_test


def pair_batches(inputs, targets, config, epoch, flip):
    """Shuffled full batches of [-1, 1] floats; pairs mirrored at random when `flip`.

    No random 286 -> 256 crop jitter (the paper's); mirroring only.
    """
    rng = np.random.default_rng([config.seed, epoch, 1])
    for x, y in gan_training.shuffled_batches((inputs, targets), config.batch_size, config.seed, epoch):
        x, y = as_float(x), as_float(y)
        if flip:
            mirror = rng.random(len(x)) < 0.5
            x[mirror], y[mirror] = x[mirror, :, ::-1], y[mirror, :, ::-1]
        yield x, y


def triptychs(inputs, outputs, targets):
    """Rows of (input, output, target) in [0, 1], for `gan_training.save_grid(..., cols=3)`."""
    rows = np.stack([as_float(inputs), as_float(outputs), as_float(targets)], axis=1)
    return (rows.reshape(-1, *rows.shape[2:]) + 1.0) / 2.0


def pixelwise_baseline(x_train, y_train, x_test, levels=16, max_pixels=2_000_000):
    """The best per-pixel colour lookup learnt from the training pairs, applied to `x_test`.

    Input colours are quantised to `levels` steps per channel; each cell predicts the median
    target colour of its training pixels (the L1-optimal constant), unseen cells the overall
    median. A translation that beats it uses more than the colour of the pixel it draws: the
    layout around it (frames, shadows, brick courses, position). uint8 (N, H, W, 3).
    """

    def cells(images):
        q = images.astype(np.int64) * levels // 256
        return (q[..., 0] * levels + q[..., 1]) * levels + q[..., 2]

    keys, values = cells(x_train).ravel(), y_train.reshape(-1, 3)
    if len(keys) > max_pixels:
        pick = np.random.default_rng(0).choice(len(keys), max_pixels, replace=False)
        keys, values = keys[pick], values[pick]
    n_cells = levels**3
    table = np.tile(np.median(values, axis=0), (n_cells, 1))
    counts = np.bincount(keys, minlength=n_cells)
    seen = counts > 0
    middle = (np.cumsum(counts) - counts + (counts - 1) // 2)[seen]
    for channel in range(3):
        order = np.lexsort((values[:, channel], keys))
        table[seen, channel] = values[order, channel][middle]
    return table[cells(x_test)].astype(np.uint8)


def mean_l1(a, b):
    """Mean absolute difference of two image sets, in [-1, 1] pixel units (the L1 loss's scale)."""
    return float(np.mean(np.abs(as_float(a).astype(np.float64) - as_float(b))))
