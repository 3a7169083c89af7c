"""Estimator-style training: section 5.3's exam-score regression and VGG (6.2) through one facade.

Reproduces sections 5.3 and 6.2 of seeds/000 with `recipes.estimator` (TF1's `tf.estimator`, which no
longer exists, rebuilt on Keras 3 for every backend).

`--task exam` (5.3, `hccho_model`): features {"x": A} with the exam scores
A = [[73,80,75],[93,88,93],[89,91,90],[96,98,100],[73,66,70]] and targets B = [152,185,180,196,142];
Dense(5, relu, name L1) -> Dense(1, name L2), mean squared error, Adagrad 0.1 (Keras' initial
accumulator 0.1 equals TF1's), the mean absolute error reported under the notes' name "xxxx".
`numpy_input_fn(x={"x": A}, y=B, batch_size=2, num_epochs=10000, shuffle=True)`, `train(steps=1000)`
with a logging hook every 200 steps whose formatter writes 'k=v' lines, then `evaluate(steps=10)` (one
pass over A in batches of 2) printing the notes' line "Test set loss: ..., xxxx: ...", and
`predict` on A2 = [[73,80,75],[73,66,70]]. The notes' numpy replica shows that some seeds leave every
ReLU dead (MSE near 2.8e4), so the seed is fixed.

`--task vgg` (6.2): VGG16 / VGG19 exactly as the notes' table (3x3 convolutions, stride 1, SAME
padding, ReLU; 2x2 max-pooling with stride 2 and SAME padding; fc6 and fc7 of 4096 with dropout
0.5; fc8 of 1000 with softmax; 138,357,544 and 143,667,240 parameters, printed from the shape table
without building them) and the notes' preprocessing (RGB 0..255 -> BGR minus VGG_MEAN, which is
`keras.applications.vgg16.preprocess_input`). Trained through the same Estimator: a small-input VGG
(the same layer pattern, `--width` times the channels, fc layers of `--fc-units`; He-normal
convolutions, Glorot dense layers, Adam with a cosine-decayed learning rate) on the
embedded digits resized to 32x32, one `train` + `evaluate` per epoch on 20% held-out digits.
`--dataset cifar10` trains on CIFAR-10 instead (downloaded once).

`--weights imagenet` loads the Keras ImageNet weights of VGG`--depth` (downloaded once, about 530
MB) and prints the top-5 ImageNet classes for `--image` (default: scikit-learn's photo china.jpg,
centre-cropped and resized to 224x224 as the notes' `load_image` does).

The default run (`--task all`) is the exam example followed by the VGG on digits. Outputs (under
--out, default runs/vgg_estimator): exam/ and vgg/ (the Estimators' model_dirs: ckpt-STEP.npz and
the `checkpoint` index; a second run with --resume continues their global steps), vgg.keras (the
trained VGG), summary.json.

    python -m recipes.vgg_estimator                      # exam example, then VGG16 on digits
    python -m recipes.vgg_estimator --task exam --resume # 1000 more steps: global_step 2000
    python -m recipes.vgg_estimator --task vgg --depth 19 --dataset cifar10 --width 0.5
    python -m recipes.vgg_estimator --weights imagenet --image cat.jpg
"""

import dataclasses
import importlib.util
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

import datasets
from datasets import remote
from recipes import engine
from recipes.common import cli
from recipes.common.estimator import (
    Estimator,
    EstimatorSpec,
    LoggingHook,
    ModeKeys,
    numpy_input_fn,
)

keras = cli.lazy_import("keras")

SECTION = "A 5.3, 6.2"

# Section 5.3's data: three exam scores -> the final score.
EXAM_A = np.array([[73, 80, 75], [93, 88, 93], [89, 91, 90], [96, 98, 100], [73, 66, 70]], "float32")
EXAM_B = np.array([[152], [185], [180], [196], [142]], "float32")
EXAM_A2 = np.array([[73, 80, 75], [73, 66, 70]], "float32")

# Section 6.2: convolutions per block (VGG19 adds one to blocks 3, 4 and 5) and their widths.
BLOCKS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
CHANNELS = (64, 128, 256, 512, 512)
VGG_MEAN = (103.939, 116.779, 123.68)  # B, G, R
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


@dataclasses.dataclass
class Config(cli.RunConfig):
    task: str = cli.option(
        "all",
        "exam: section 5.3's example; vgg: VGG on images; all: both",
        choices=("all", "exam", "vgg"),
    )
    epochs: int = cli.option(15, "VGG training epochs (one Estimator.train + evaluate each)")
    batch_size: int = cli.option(32, "VGG examples per step")
    dataset: str = cli.option("digits", "VGG training images", choices=("digits", "cifar10"))
    exam_steps: int = cli.option(1000, "training steps of the exam example (batch 2)")
    log_every: int = cli.option(200, "the logging hook fires every this many steps")
    depth: int = cli.option(16, "VGG16 or VGG19", choices=(16, 19))
    width: float = cli.option(
        None, "channel multiplier of the small VGG (default 1/8 digits, 1/2 cifar10)"
    )
    fc_units: int = cli.option(128, "units of the small VGG's fc6 and fc7 (4096 in ImageNet VGG)")
    image_size: int = cli.option(32, "VGG input size (digits are resized from 28)")
    learning_rate: float = cli.option(1e-3, "initial Adam learning rate of the VGG (cosine decay to 0)")
    limit: int = cli.option(None, "use only this many images (train + held out)")
    save_checkpoints_steps: int = cli.option(100, "an Estimator checkpoint every this many steps")
    weights: str = cli.option(
        "none", "imagenet: load Keras' ImageNet VGG and classify --image", choices=("none", "imagenet")
    )
    image: str = cli.option(None, "image for --weights imagenet (default: scikit-learn's china.jpg)")


QUICK = dict(exam_steps=200, epochs=1, limit=200, width=1 / 16, fc_units=16, save_checkpoints_steps=50)


# ---------------------------------------------------------------------------------------------
# Section 5.3: the exam-score Estimator


def exam_model_fn(features, labels, mode, params):
    """`hccho_model`: x (3) -> L1 Dense(5, relu) -> L2 Dense(1) = logits."""
    inputs = keras.Input((3,), name="x")
    hidden = keras.layers.Dense(5, activation="relu", name="L1")(inputs)
    logits = keras.layers.Dense(1, name="L2")(hidden)
    model = keras.Model({"x": inputs}, logits, name="hccho_model")

    def predictions(outputs):
        return {"logits": outputs}

    if mode == ModeKeys.PREDICT:  # No labels here: the loss must not be needed.
        return EstimatorSpec(mode, model, predictions=predictions)
    # The notes' hooks: tensors every 200 steps, the last one with a 'k=v' formatter.
    every = params.get("log_every", 200)
    hooks = [
        LoggingHook(
            lambda c: {"loss": c.loss, "accuracy": float(np.mean(np.abs(c.outputs - c.labels)))},
            every,
        ),
        LoggingHook(
            lambda c: {"xxxx": -c.outputs[:, 0], "yyy": c.labels[:, 0]}, every, formatter=my_format
        ),
    ]
    return EstimatorSpec(
        mode,
        model,
        predictions=predictions,
        loss=keras.losses.MeanSquaredError(),
        optimizer=keras.optimizers.Adagrad(params["learning_rate"]),
        metrics=[keras.metrics.MeanAbsoluteError(name="xxxx")],
        training_hooks=hooks,
    )


def my_format(values):
    """The notes' formatter: one 'k=v' line per value."""
    return "\n".join(f"{key}={np.round(np.asarray(value), 3).tolist()}" for key, value in values.items())


def exam_input_fns(seed):
    """The notes' train (shuffled, 10000 epochs, batch 2), eval (1 pass) and predict (A2) inputs."""
    train = numpy_input_fn(
        {"x": EXAM_A}, EXAM_B, batch_size=2, num_epochs=10000, shuffle=True, seed=seed
    )
    evaluate = numpy_input_fn({"x": EXAM_A}, EXAM_B, batch_size=2, num_epochs=1, shuffle=False)
    predict = numpy_input_fn({"x": EXAM_A2}, batch_size=len(EXAM_A2), num_epochs=1, shuffle=False)
    return train, evaluate, predict


def run_exam(config, model_dir):
    estimator = Estimator(
        exam_model_fn,
        model_dir,
        params={"learning_rate": 0.1, "log_every": config.log_every},
        seed=config.seed,
        save_checkpoints_steps=config.save_checkpoints_steps,
    )
    train_fn, eval_fn, predict_fn = exam_input_fns(config.seed)
    before = estimator.evaluate(eval_fn, steps=10)
    start = time.perf_counter()
    estimator.train(train_fn, steps=config.exam_steps)
    seconds = time.perf_counter() - start
    result = estimator.evaluate(eval_fn, steps=10)
    print("\nTest set loss: {loss:.3f}, xxxx: {xxxx:.3f}\n".format(**result))
    predictions = list(estimator.predict(predict_fn))
    print(predictions)
    return {
        "loss_before": before["loss"],
        **result,
        "predictions": [float(p["logits"][0]) for p in predictions],
        "train_seconds": seconds,
        "steps_per_second": config.exam_steps / seconds if seconds else 0.0,
    }


# ---------------------------------------------------------------------------------------------
# Section 6.2: VGG


def vgg_table(
    depth=16, input_shape=(224, 224, 3), classes=1000, include_top=True, width=1.0, fc_units=4096
):
    """The notes' shape table: [(name, output shape, parameter count)] without building anything."""
    if depth not in BLOCKS:
        raise ValueError(f"VGG depth must be 16 or 19, got {depth}")
    height, width_px, channels = input_shape
    rows = []
    for block, (convs, filters) in enumerate(zip(BLOCKS[depth], CHANNELS), start=1):
        filters = max(1, round(filters * width))
        for i in range(1, convs + 1):
            rows.append(
                (f"conv{block}_{i}", (height, width_px, filters), 9 * channels * filters + filters)
            )
            channels = filters
        height, width_px = -(-height // 2), -(-width_px // 2)  # SAME pooling: ceil(H / 2).
        rows.append((f"pool{block}", (height, width_px, channels), 0))
    if include_top:
        units = height * width_px * channels
        for name, out in (("fc6", fc_units), ("fc7", fc_units), ("fc8", classes)):
            rows.append((name, (out,), units * out + out))
            units = out
    return rows


def vgg_parameter_count(depth=16, **kwargs):
    """138,357,544 for VGG16 and 143,667,240 for VGG19 at 224x224x3 with the ImageNet head."""
    return sum(count for _, _, count in vgg_table(depth, **kwargs))


def build_vgg(
    depth=16,
    input_shape=(224, 224, 3),
    classes=1000,
    include_top=True,
    width=1.0,
    fc_units=4096,
    dropout=0.5,
    classifier_activation="softmax",
):
    """VGG16/19 as section 6.2's table, layers named as in its weight files (conv1_1 ... fc8).

    `width` scales the channels (1/8 gives 8, 16, 32, 64, 64); `classifier_activation=None` gives
    logits. Without the top the model ends at pool5.
    """
    # He normal (fan-in). torchvision's VGG uses fan-out and N(0, 0.01) for the dense layers; on
    # the narrow digit VGG that start sat at chance for 4-5 epochs (the signal shrinks layer by
    # layer), against one with this.
    conv_init = keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")
    image = keras.Input(input_shape, name="image")
    x = image
    for name, shape, _ in vgg_table(depth, input_shape, classes, include_top, width, fc_units):
        if name.startswith("conv"):
            x = keras.layers.Conv2D(
                shape[-1], 3, padding="same", activation="relu", kernel_initializer=conv_init, name=name
            )(x)
        elif name.startswith("pool"):
            x = keras.layers.MaxPooling2D(2, strides=2, padding="same", name=name)(x)
        else:
            if name == "fc6":
                x = keras.layers.Flatten(name="flatten")(x)
            last = name == "fc8"
            x = keras.layers.Dense(
                shape[0],
                activation=classifier_activation if last else "relu",
                name=name,
            )(x)
            if not last and dropout:
                x = keras.layers.Dropout(dropout, name=f"drop{name[2:]}")(x)
    return keras.Model(image, x, name=f"vgg{depth}")


def preprocess_bgr(images):
    """The notes' `build()` step: RGB in 0..255 -> BGR minus VGG_MEAN (B, G, R)."""
    images = np.asarray(images, "float32")
    return images[..., ::-1] - np.array(VGG_MEAN, "float32")


def vgg_model_fn(features, labels, mode, params):
    model = build_vgg(
        params["depth"],
        features.shape[1:],
        params["classes"],
        width=params["width"],
        fc_units=params["fc_units"],
        classifier_activation=None,
    )

    def predictions(logits):
        return {"classes": keras.ops.argmax(logits, axis=-1), "probabilities": keras.ops.softmax(logits)}

    if mode == ModeKeys.PREDICT:
        return EstimatorSpec(mode, model, predictions=predictions)
    return EstimatorSpec(
        mode,
        model,
        predictions=predictions,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(params["learning_rate"], params["decay_steps"])
        ),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def load_vgg_data(config):
    """(x_train, y_train, x_test, y_test): float32 images in [-1, 1] and int labels."""
    if config.dataset == "cifar10":
        from datasets.cifar import load_cifar10  # Written by another module; imported on request.

        train, test = load_cifar10("train"), load_cifar10("test")
        if config.limit:
            keep = config.limit - config.limit // 5
            train = (train[0][:keep], train[1][:keep])
            test = (test[0][: config.limit // 5], test[1][: config.limit // 5])
        (x_train, y_train), (x_test, y_test) = train, test
        x_train = datasets.fit_images(x_train, config.image_size, 3)
        x_test = datasets.fit_images(x_test, config.image_size, 3)
    else:
        images, labels = datasets.load_digits28()
        order = np.random.default_rng(config.seed).permutation(len(images))
        if config.limit:
            order = order[: config.limit]
        images = datasets.fit_images(images[order], config.image_size, 1)
        labels = labels[order]
        held_out = len(images) // 5
        x_train, y_train = images[held_out:], labels[held_out:]
        x_test, y_test = images[:held_out], labels[:held_out]
    scale = (-1.0, 1.0)  # Normalize((0.5,) * C, (0.5,) * C) of the notes' CIFAR VGG.
    return datasets.to_float(x_train, scale), y_train, datasets.to_float(x_test, scale), y_test


def run_vgg(config, model_dir):
    x_train, y_train, x_test, y_test = load_vgg_data(config)
    width = config.width or (0.125 if config.dataset == "digits" else 0.5)
    params = {
        "depth": config.depth,
        "classes": 10,
        "width": width,
        "fc_units": config.fc_units,
        "learning_rate": config.learning_rate,
        "decay_steps": config.epochs * -(-len(x_train) // config.batch_size),
    }
    estimator = Estimator(
        vgg_model_fn,
        model_dir,
        params,
        seed=config.seed,
        save_checkpoints_steps=config.save_checkpoints_steps,
    )
    steps_per_epoch = -(-len(x_train) // config.batch_size)
    eval_fn = numpy_input_fn(x_test, y_test, batch_size=256, num_epochs=1, shuffle=False)
    print(
        f"VGG{config.depth} (width {width:g}, fc {config.fc_units}) on {len(x_train)} {config.dataset} "
        f"images {x_train.shape[1:]}, {len(x_test)} held out; {steps_per_epoch} steps per epoch"
    )
    start = time.perf_counter()
    history = []
    first_epoch = estimator.global_step // steps_per_epoch + 1
    for epoch in range(first_epoch, config.epochs + 1):
        train_fn = numpy_input_fn(
            x_train, y_train, config.batch_size, num_epochs=1, seed=config.seed + epoch
        )
        estimator.train(train_fn)
        result = estimator.evaluate(eval_fn)
        history.append({"epoch": epoch, **result})
        print(
            f"epoch {epoch}/{config.epochs}: held-out loss {result['loss']:.4f}, "
            f"accuracy {result['accuracy']:.4f} (global_step {result['global_step']})"
        )
    seconds = time.perf_counter() - start
    result = estimator.evaluate(eval_fn)
    predict_fn = numpy_input_fn(x_test[:5], batch_size=5, shuffle=False)
    classes = [int(row["classes"]) for row in estimator.predict(predict_fn)]
    truth = y_test[:5].tolist()
    print(f"held-out accuracy {result['accuracy']:.4f}; first five: predicted {classes}, true {truth}")
    return estimator, {
        **result,
        "width": width,
        "train_seconds": seconds,
        "history": history,
        "parameters": estimator.model(ModeKeys.EVAL).count_params(),
    }


# ---------------------------------------------------------------------------------------------
# ImageNet weights


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


# ---------------------------------------------------------------------------------------------


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.vgg_estimator",
        description=__doc__.split("\n")[0],
        quick=QUICK,
    )
    if config.exam_steps < 1 or config.log_every < 1 or config.save_checkpoints_steps < 1:
        raise cli.UsageError("--exam-steps, --log-every and --save-checkpoints-steps must be at least 1")
    if config.data_dir:
        raise cli.UsageError("--data-dir is not used here: choose --dataset digits or cifar10")
    if config.image_size < 32:
        raise cli.UsageError(
            f"--image-size must be at least 32 (five 2x2 poolings), got {config.image_size}"
        )
    out = Path(config.out or "runs/vgg_estimator")
    out.mkdir(parents=True, exist_ok=True)
    summary = {"backend": engine.backend(), "seed": config.seed}
    if config.weights == "imagenet":
        summary["imagenet_top5"] = imagenet_top5(config)
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        return 0
    summary["parameters"] = {f"vgg{d}": vgg_parameter_count(d) for d in BLOCKS}
    print(
        "VGG with the ImageNet head (section 6.2's table): "
        + ", ".join(f"VGG{d} {vgg_parameter_count(d):,} parameters" for d in BLOCKS)
    )
    start = time.perf_counter()
    for task in ("exam", "vgg"):
        if config.task not in ("all", task):
            continue
        model_dir = out / task
        if not config.resume and model_dir.exists():
            shutil.rmtree(model_dir)  # A fresh run; --resume continues from the checkpoints.
        print(f"\n== {task} (backend {engine.backend()}, model_dir {model_dir})")
        if task == "exam":
            summary["exam"] = run_exam(config, model_dir)
        else:
            estimator, summary["vgg"] = run_vgg(config, model_dir)
            if not config.quick:  # Keras' serializer imports TensorFlow: seconds a smoke run skips.
                estimator.model(ModeKeys.EVAL).save(out / "vgg.keras")
    summary["seconds"] = time.perf_counter() - start
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\nOutputs in {out}/ ({summary['seconds']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
