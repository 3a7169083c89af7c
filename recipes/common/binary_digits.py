"""Binarised real MNIST digits (mnist5k, pixels > 0.5) and the independent-Bernoulli baseline, shared
by the likelihood recipes (generative_basics, vae, nade)."""

import numpy as np

from recipes.common import cli

PIXELS = 784


def load(limit=None, test_limit=None, batch_size=1):
    """(train, test, test_labels): float32 (N, 28, 28, 1) of 0 and 1, pixels > 127 of mnist5k's
    4,000 training and 1,000 held-out digits, limited as `limit` / `test_limit` ask."""
    from datasets import load_mnist5k

    x, _ = load_mnist5k("train")
    x_test, labels = load_mnist5k("test")
    x, x_test = (d > 127 for d in (x[:limit], x_test[:test_limit]))
    if len(x) < batch_size:
        raise cli.UsageError(f"{len(x)} training digits are fewer than one batch of {batch_size}")
    return x.astype("float32"), x_test.astype("float32"), labels[:test_limit]


def fit_independent(x, smoothing=1.0):
    """p(x_i = 1) per pixel of flat binary images (N, D): (ones + s) / (N + 2 s); s = 0 gives the
    pixel means (the maximum-likelihood estimate)."""
    return (x.sum(0) + smoothing) / (len(x) + 2 * smoothing)


def log_likelihood_independent(x, p):
    """log p(x) in nats per image under independent Bernoulli pixels `p`: (N,)."""
    return (x * np.log(p) + (1 - x) * np.log1p(-p)).sum(1)
