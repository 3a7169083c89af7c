"""`--weights imagenet`: Keras' ImageNet VGG16/19 weights (downloaded once, about 530 MB) and the
top-5 ImageNet classes of an image (default: scikit-learn's photo china.jpg)."""

import importlib.util
import json
import os

import numpy as np

from datasets import remote
from recipes.common import cli
from recipes.vgg_estimator.vgg import preprocess_bgr

keras = cli.lazy_import("keras")

WEIGHT_FILES = {
    16: ("vgg16", "vgg16_weights_tf_dim_ordering_tf_kernels.h5", "64373286793e3c8b2b4e3219cbf3544b"),
    19: ("vgg19", "vgg19_weights_tf_dim_ordering_tf_kernels.h5", "cbe5617147190e668d6c5d5026f83318"),
}
KERAS_WEIGHTS = "https://storage.googleapis.com/tensorflow/keras-applications/"
CLASS_INDEX = (
    "imagenet_class_index.json",
    "https://storage.googleapis.com/download.tensorflow.org/data/",
    "c2c37ea517e94d9795004a39431a14cb",
)


def _fetch(fname, url, file_hash, what):
    """`url` (or $RECIPES_DATA_ORIGIN/fname) into the Keras cache (models/); one line when offline."""
    return remote.fetch(
        what,
        fname,
        "models",
        default_origin=url[: -len(fname)],
        file_hash=file_hash,
        fallback="Train on the embedded digits instead: --weights none",
    )


def load_image(path, size=224):
    """The notes' `load_image`: centre square crop, resized to size x size; RGB float 0..255."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except OSError as error:
        raise cli.UsageError(f"cannot read image {path}: {error}") from None
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side)).resize((size, size), Image.BICUBIC)
    return np.asarray(image, "float32")


def default_image():
    root = os.path.dirname(importlib.util.find_spec("sklearn").origin)
    return os.path.join(root, "datasets", "images", "china.jpg")


def imagenet_top5(config):
    folder, fname, file_hash = WEIGHT_FILES[config.depth]
    image_path = config.image or default_image()
    image = load_image(image_path)  # Bad input fails before any download.
    weights = _fetch(
        fname, f"{KERAS_WEIGHTS}{folder}/{fname}", file_hash, f"the VGG{config.depth} weights"
    )
    class_index = _fetch(
        CLASS_INDEX[0], CLASS_INDEX[1] + CLASS_INDEX[0], CLASS_INDEX[2], "the class index"
    )
    application = keras.applications.VGG16 if config.depth == 16 else keras.applications.VGG19
    model = application(weights=weights)
    probabilities = model.predict(preprocess_bgr(image[None]), verbose=0)
    try:
        top5 = keras.applications.vgg16.decode_predictions(probabilities, top=5)[0]
    except Exception:  # Its own download missed our cache (another KERAS_HOME): read the file.
        with open(class_index) as f:
            index = json.load(f)
        order = np.argsort(probabilities[0])[::-1][:5]
        top5 = [(*index[str(i)], float(probabilities[0, i])) for i in order]
    print(f"VGG{config.depth} (ImageNet weights) on {image_path}:")
    for rank, (wnid, name, probability) in enumerate(top5, start=1):
        print(f"  {rank}. {name} ({wnid}): {probability:.4f}")
    return [{"wnid": w, "class": n, "probability": float(p)} for w, n, p in top5]
