"""Semantic segmentation with a fully convolutional network (FCN) and transposed convolutions.

Reproduces D 6.1: label every pixel. Three ideas of the notes, then a trained FCN:

1. convolutionalization: a Dense(10) on Flatten(4x4x16) is a Conv2D(10, 4x4, valid) whose kernel is
   the dense kernel reshaped to (4, 4, 16, 10); both have 2,570 weights and give the same outputs;
2. the convolutional version runs on any input size: on 8x8x16 it gives a 5x5x10 heat map (each
   cell is the dense layer applied to one 4x4 window) instead of one vector of 10 classes;
3. a transposed convolution enlarges: valid output O = (i - 1) s + k (7 -> 14 with k 2, s 2), "same"
   output O = i s (4 -> 8 with k 4, s 2);
4. an FCN: a convolutional encoder (64 -> 32 -> 16 -> 8 pixels), a decoder of stride-2 transposed
   convolutions (k 2, s 2: 8 -> 16 -> 32 -> 64) with skip connections from the encoder, and a
   softmax over the 4 classes (background, circle, square, triangle) at every pixel, trained with
   `model.fit` on generated scenes of coloured shapes (`datasets.scenes`, embedded, no network).
   It has no dense layer, so its mask has the input's height and width for any multiple of 8.

The held-out scenes come from a fixed seed of their own; IoU per class and the mean IoU (mIoU) are
counted over all their pixels, against the all-background prediction.

    python -m recipes.segmentation
    KERAS_BACKEND=jax python -m recipes.segmentation --epochs 20 --train-size 4000

Measured (default run: 8 epochs of 1,000 scenes, seed 0, 2 CPU cores shared with other jobs):
held-out mIoU 0.979 on JAX (8:00 wall), 0.987 on TensorFlow (5:45), 0.992 on torch (7:00).
Outputs (under --out, default runs/segmentation): masks.png (input / prediction / truth of held-out
scenes), curves.png, metrics.csv, checkpoints/ (for --resume), model.keras, summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, fitting, image_classification, plots

keras = cli.lazy_import("keras")

SECTION = "D 6.1"
CLASSES = ("background", "circle", "square", "triangle")  # datasets.scenes.CLASSES
NUM_CLASSES = len(CLASSES)
HELD_OUT_SEED = 2024  # the held-out scenes are the same for every --seed
DOWNSAMPLING = 8  # three 2x2 poolings: the FCN takes sides that are multiples of 8
# Convolutionalization: Flatten(4x4x16) -> Dense(10), i.e. 4 * 4 * 16 * 10 + 10 weights.
DENSE_INPUT, DENSE_UNITS, DENSE_PARAMS = (4, 4, 16), 10, 2_570
# Transposed convolutions of the notes: (input side, kernel, stride, padding) -> output side.
TRANSPOSED_EXAMPLES = {(7, 2, 2, "valid"): 14, (4, 4, 2, "same"): 8}
PALETTE = np.array([[0.08, 0.08, 0.08], [0.95, 0.3, 0.3], [0.3, 0.85, 0.35], [0.35, 0.5, 1.0]])


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(8, "number of training epochs")
    batch_size: int = cli.option(16, "scenes per training step")
    dataset: str = cli.option(None, cli.HIDDEN)  # embedded generated scenes only
    data_dir: str = cli.option(None, cli.HIDDEN)
    train_size: int = cli.option(1000, "generated training scenes")
    held_out_size: int = cli.option(200, "generated held-out scenes (a fixed seed of their own)")
    size: int = cli.option(64, "side of the training scenes in pixels (a multiple of 8)")
    width: int = cli.option(8, "filters of the first encoder block (x2 per level down)")
    learning_rate: float = cli.option(3e-3, "Adam learning rate (cosine decay to 0)")
    pictures: int = cli.option(6, "held-out scenes in masks.png")

    def __post_init__(self):
        for name in ("train_size", "held_out_size", "size", "width", "pictures"):
            if getattr(self, name) < 1:
                flag = "--" + name.replace("_", "-")
                raise cli.UsageError(f"{flag} must be at least 1, got {getattr(self, name)}")
        if self.size % DOWNSAMPLING:
            raise cli.UsageError(f"--size must be a multiple of {DOWNSAMPLING}, got {self.size}")
        if self.train_size < self.batch_size:
            raise cli.UsageError(
                f"--train-size {self.train_size} is smaller than one batch of {self.batch_size}"
            )
        if not self.learning_rate > 0:
            raise cli.UsageError(f"--learning-rate must be positive, got {self.learning_rate}")


# --quick: 128 steps on 256 scenes of 32x32 (seconds): the FCN finds the shapes (foreground IoU
# 0.86-0.99) and tells some of them apart (mIoU 0.36-0.44).
QUICK = dict(epochs=8, train_size=256, held_out_size=32, size=32, learning_rate=1e-2, pictures=3)


# ---------------------------------------------------------------------------------------------
# 1-3. The notes' ideas


def convolutionalization(seed=0):
    """A Dense(10) on Flatten(4x4x16) and the Conv2D(10, 4) holding the same weights.

    Returns a dict: both parameter counts, the largest difference of their outputs on a batch of
    4x4x16 inputs, the heat map's shape on an 8x8x16 input and the largest difference between
    each heat-map cell and the dense layer applied to that cell's 4x4 window.
    """
    rng = np.random.default_rng(seed)
    dense = keras.Sequential(
        [keras.Input(DENSE_INPUT), keras.layers.Flatten(), keras.layers.Dense(DENSE_UNITS)]
    )
    # Any input size: (None, None, 16).
    conv = keras.Sequential(
        [keras.Input((None, None, DENSE_INPUT[-1])), keras.layers.Conv2D(DENSE_UNITS, 4)]
    )
    kernel, bias = dense.layers[-1].get_weights()  # (256, 10): Flatten is row-major (h, w, c)
    conv.set_weights([kernel.reshape(*DENSE_INPUT, DENSE_UNITS), bias])

    x = rng.normal(size=(5, *DENSE_INPUT)).astype("float32")
    by_dense = keras.ops.convert_to_numpy(dense(x))  # (5, 10)
    by_conv = keras.ops.convert_to_numpy(conv(x))  # (5, 1, 1, 10)

    big = rng.normal(size=(2, 8, 8, DENSE_INPUT[-1])).astype("float32")
    heat = keras.ops.convert_to_numpy(conv(big))  # (2, 5, 5, 10): one class vector per window
    windows = np.stack(
        [big[:, i : i + 4, j : j + 4] for i in range(5) for j in range(5)], axis=1
    )  # (2, 25, 4, 4, 16)
    by_window = keras.ops.convert_to_numpy(dense(windows.reshape(-1, *DENSE_INPUT)))
    return {
        "dense_params": dense.count_params(),
        "conv_params": conv.count_params(),
        "max_difference": float(np.abs(by_dense - by_conv.reshape(by_dense.shape)).max()),
        "heat_map_shape": list(heat.shape[1:]),
        "heat_map_max_difference": float(np.abs(heat.reshape(-1, DENSE_UNITS) - by_window).max()),
    }


def transposed_size(size, kernel, stride, padding="valid"):
    """The output side of a transposed convolution: (i - 1) s + k valid, i s "same"."""
    return size * stride if padding == "same" else (size - 1) * stride + kernel


def transposed_sizes(
    cases=((7, 2, 2, "valid"), (4, 4, 2, "same"), (5, 3, 2, "valid"), (3, 4, 1, "valid")),
):
    """{"i k s padding": [formula, Keras' Conv2DTranspose]} of output sides, run on a 1-channel input."""
    found = {}
    for size, kernel, stride, padding in cases:
        layer = keras.layers.Conv2DTranspose(1, kernel, strides=stride, padding=padding)
        out = layer(np.zeros((1, size, size, 1), "float32"))
        key = f"{size} {kernel} {stride} {padding}"
        found[key] = [transposed_size(size, kernel, stride, padding), int(out.shape[1])]
    return found


# ---------------------------------------------------------------------------------------------
# 4. The FCN


def build_model(width=16, classes=NUM_CLASSES):
    """The FCN: per-pixel logits (N, H, W, classes) for images (N, H, W, 3), H and W multiples of 8.

    Encoder: two 3x3 convolutions then a 2x2 max pool, three times (width, 2 width, 4 width
    filters); a bottleneck at 1/8 of the side; decoder: a stride-2 transposed convolution with a
    2x2 kernel ((i - 1) 2 + 2 = 2i: exactly doubles), the encoder's map of that size concatenated
    (skip connection: the fine detail that pooling lost), and a 3x3 convolution, three times; a
    1x1 convolution to the class logits. No dense layer: any input size.
    """
    from layers import SubPixelConv2DTranspose  # Conv2DTranspose's weights and outputs (layers/conv.py)

    layers = keras.layers

    def conv(filters, name):
        return layers.Conv2D(
            filters, 3, padding="same", activation="relu", kernel_initializer="he_normal", name=name
        )

    inputs = keras.Input((None, None, 3), name="images")  # (N, H, W, 3) in [0, 1]
    # Centred inputs and He initialisation (for ReLU): without them the FCN first sits for a
    # hundred steps or more on "background everywhere" (88% of the pixels).
    x, skips = layers.Rescaling(2.0, offset=-1.0, name="centre")(inputs), []
    for level in range(3):
        filters = width * 2**level
        x = conv(filters, f"enc{level + 1}_1")(x)
        x = conv(filters, f"enc{level + 1}_2")(x)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level + 1}")(x)
    # (N, H, W, w) -> (N, H/2, W/2, 2w) -> (N, H/4, W/4, 4w) -> pooled (N, H/8, W/8, 4w)
    x = conv(8 * width, "bottleneck")(x)  # (N, H/8, W/8, 8w)
    for level in reversed(range(3)):
        filters = width * 2**level
        x = SubPixelConv2DTranspose(filters, 2, strides=2, name=f"up{level + 1}")(x)
        x = layers.Concatenate(name=f"skip{level + 1}")([x, skips[level]])
        x = conv(filters, f"dec{level + 1}")(x)
    # (N, H/4, W/4, 4w) -> (N, H/2, W/2, 2w) -> (N, H, W, w)
    outputs = layers.Conv2D(classes, 1, name="logits")(x)  # (N, H, W, 4): softmax in the loss
    return keras.Model(inputs, outputs, name="fcn")


def compiled_model(config, steps):
    """`build_model` compiled as the recipe trains it: Adam on a cosine decay over `steps` to 0,
    per-pixel cross-entropy on the logits (the softmax over the 4 classes at every pixel)."""
    model = build_model(config.width)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, max(steps, 1))
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],  # pixel accuracy
        # XLA's compile time outweighs a --quick run's few TensorFlow steps.
        jit_compile=False if config.quick and engine.backend() == "tensorflow" else "auto",
    )
    return model


def predict_masks(model, images, batch_size=64):
    """(masks, objects): the class of every pixel (N, H, W), the argmax of its logits, and
    whether the pixel is more likely some shape than background (the three shape classes'
    probabilities sum to more than 1/2), whichever shape."""
    logits = np.asarray(model.predict(images, batch_size=batch_size, verbose=0), "float64")
    shapes = np.log(np.exp(logits[..., 1:] - logits[..., :1]).sum(-1))  # log P(shape) / P(bg)
    return logits.argmax(-1).astype("int32"), shapes > 0


def confusion(truth, predicted, classes=NUM_CLASSES):
    """(classes, classes) pixel counts: row = true class, column = predicted class."""
    index = truth.reshape(-1).astype("int64") * classes + predicted.reshape(-1)
    return np.bincount(index, minlength=classes * classes).reshape(classes, classes)


def iou_per_class(matrix):
    """IoU_c = TP / (TP + FP + FN) from a confusion matrix; NaN for a class absent from both."""
    tp = np.diag(matrix).astype("float64")
    union = matrix.sum(0) + matrix.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / union


def miou_report(truth, predicted):
    """{"iou": {class: IoU}, "miou": mean over the classes present}."""
    iou = iou_per_class(confusion(truth, predicted))
    return {"iou": dict(zip(CLASSES, map(float, iou))), "miou": float(np.nanmean(iou))}


def foreground_iou(truth, objects):
    """IoU of the pixels found to be "some shape" (`objects`, boolean) against the true shapes'
    pixels, whatever the class: how well the FCN finds the objects before it names them."""
    truth = truth > 0
    return float((truth & objects).sum() / max((truth | objects).sum(), 1))


def make_data(config):
    """(train images, train masks, held-out images, held-out masks): generated scenes, the
    training ones from --seed, the held-out ones from a fixed seed (never the same stream)."""
    from datasets.scenes import make_scenes

    train = make_scenes(config.train_size, seed=[config.seed, 0], size=config.size)
    held_out = make_scenes(config.held_out_size, seed=[HELD_OUT_SEED, 1], size=config.size)
    return train.images, train.masks, held_out.images, held_out.masks


def colour_masks(masks):
    return PALETTE[masks]


def plot_masks(path, images, predicted, truth):
    """A grid: one column per scene, rows input / prediction / truth."""
    plt = plots.pyplot()
    count = len(images)
    fig, axes = plt.subplots(3, count, figsize=(1.6 * count + 0.6, 5.2), squeeze=False)
    for row, (title, pictures) in enumerate(
        (("input", images), ("prediction", colour_masks(predicted)), ("truth", colour_masks(truth)))
    ):
        for column in range(count):
            ax = axes[row, column]
            ax.imshow(np.clip(pictures[column], 0, 1), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=PALETTE[c]) for c in range(len(CLASSES))]
    fig.legend(handles, CLASSES, loc="lower center", ncol=len(CLASSES), fontsize=8)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.segmentation",
        description=__doc__.split("\n")[0],
        quick=QUICK,
    )
    engine.set_seed(config.seed)
    out = Path(config.out or "runs/segmentation")

    # ---- 1-3. the notes' ideas
    facts = convolutionalization(config.seed)
    print(
        f"convolutionalization: Dense {facts['dense_params']:,} and Conv2D {facts['conv_params']:,} "
        f"weights, outputs differ by {facts['max_difference']:.1e}; on 8x8x16 the Conv2D gives a "
        f"{'x'.join(map(str, facts['heat_map_shape']))} heat map"
    )
    sizes = transposed_sizes()
    print("transposed convolution (i k s padding: formula, Keras):", sizes)

    # ---- 4. data and the FCN
    x, y, x_test, y_test = make_data(config)
    steps = config.epochs * -(-len(x) // config.batch_size)
    model = compiled_model(config, steps)
    # What training has to beat: the untrained FCN on the held-out scenes.
    untrained_masks, untrained_objects = predict_masks(model, x_test)
    untrained = miou_report(y_test, untrained_masks)
    untrained["foreground_iou"] = foreground_iou(y_test, untrained_objects)
    loop = engine.Loop(
        out,
        fitting.checkpoint_state(model),
        resume=config.resume,
        overwrite=config.overwrite,
        config=vars(config),
        epochs_in_schedule=True,
    )
    print(
        f"fcn: {model.count_params():,} parameters; {len(x)} training and {len(x_test)} held-out "
        f"scenes of {config.size}x{config.size}, backend {engine.backend()}"
    )
    rows, seconds = fitting.fit_epochs(
        model,
        loop,
        x,
        y,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        name="fcn",
    )

    # ---- evaluation: IoU per class over every held-out pixel; the mask keeps the input's size
    predicted, objects = predict_masks(model, x_test)
    report = miou_report(y_test, predicted)
    background = miou_report(y_test, np.zeros_like(y_test))
    shapes = {}
    for side in (64, 96):
        probe = np.zeros((1, side, side, 3), "float32")
        shapes[str(side)] = list(np.asarray(model.predict(probe, verbose=0)).shape[1:])

    engine.save_model(model, out / "model.keras")
    shown = min(config.pictures, len(x_test))
    plot_masks(out / "masks.png", x_test[:shown], predicted[:shown], y_test[:shown])
    image_classification.plot_curves(loop.metrics_path, out / "curves.png", "fcn on generated scenes")
    summary = {
        "backend": engine.backend(),
        "convolutionalization": facts,
        "transposed_sizes": sizes,
        "parameters": model.count_params(),
        "train_scenes": len(x),
        "held_out_scenes": len(x_test),
        "size": config.size,
        "epochs": config.epochs,
        "output_shapes": shapes,
        "held_out_iou": report["iou"],
        "held_out_miou": report["miou"],
        "held_out_pixel_accuracy": float((predicted == y_test).mean()),
        "held_out_foreground_iou": foreground_iou(y_test, objects),
        "all_background_miou": background["miou"],
        "untrained_miou": untrained["miou"],
        "untrained_foreground_iou": untrained["foreground_iou"],
        "final_loss": rows[-1]["loss"] if rows else None,
        "fit_seconds": round(seconds, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    per_class = ", ".join(f"{name} {value:.3f}" for name, value in report["iou"].items())
    print(
        f"held-out mIoU {report['miou']:.4f} (IoU {per_class}), objects found with IoU "
        f"{summary['held_out_foreground_iou']:.3f}; untrained FCN "
        f"{untrained['miou']:.4f}, all-background prediction {background['miou']:.4f}; masks of "
        f"64x64 and 96x96 inputs: {shapes['64']} and {shapes['96']}. fit took {seconds:.1f} s. "
        f"Outputs in {out}/"
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
