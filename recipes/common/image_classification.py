"""Image classification with `model.fit`, shared by cifar_cnn and classic_cnns: the digits or
CIFAR-10 fitted to a model's input, parameter counts (also of models built without weights), and
one training run with Keras callbacks and its outputs."""

import json
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import augment, cli, fitting, plots

keras = cli.lazy_import("keras")

DATASETS = ("digits", "cifar10")
HELD_OUT_SEED = 2024  # The digits' held-out fifth is the same for every --seed.


# ---------------------------------------------------------------------------------------------
# Data


def pad_digits(images):
    """uint8 (N, 28, 28, 1) -> (N, 32, 32, 1): two zero rows and columns on every side."""
    return np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))


def fit_images(images, size, channels):
    """uint8 images -> float32 (N, size, size, channels) in [0, 1].

    28x28 digits are first zero-padded to 32x32, then resized (PIL) to `size` if that differs;
    one channel is repeated to three (`channels=3`), three are averaged to one (`channels=1`).
    (PIL's default resampling for 8-bit images is bicubic.)
    """
    from PIL import Image

    if images.shape[1:3] == (28, 28):
        images = pad_digits(images)
    if images.shape[1:3] != (size, size):
        channels_in = images.shape[-1]
        resized = [
            np.asarray(Image.fromarray(im[..., 0] if channels_in == 1 else im).resize((size, size)))
            for im in images
        ]
        images = np.stack(resized).reshape(len(images), size, size, channels_in)
    x = images.astype("float32") / 255.0
    if x.shape[-1] != channels:
        x = np.repeat(x, channels, axis=-1) if x.shape[-1] == 1 else x.mean(-1, keepdims=True)
    return x


def load_split(dataset):
    """((train_images, train_labels), (held_out_images, held_out_labels)) as uint8 and int64.

    digits: a fixed random fifth of the 1,797 embedded digits is held out; cifar10: the published
    train/test split (downloaded; DatasetUnavailable offline).
    """
    if dataset == "cifar10":
        from datasets.cifar import load_cifar10

        return load_cifar10("train"), load_cifar10("test")
    if dataset != "digits":
        raise cli.UsageError(f"unknown data set {dataset!r}; choose one of {', '.join(DATASETS)}")
    from datasets import load_digits28

    images, labels = load_digits28()
    order = np.random.default_rng(HELD_OUT_SEED).permutation(len(images))
    held_out, train = order[: len(images) // 5], order[len(images) // 5 :]
    return (images[train], labels[train]), (images[held_out], labels[held_out])


def prepared_data(config, size, channels):
    """Float arrays for the model's input: (x_train, y_train, x_test, y_test)."""
    if config.data_dir:  # Hidden from --help (cli.HIDDEN), refused when given anyway.
        raise cli.UsageError(
            f"--data-dir is not used: choose --dataset {' or '.join(DATASETS)} (trains on no folder)"
        )
    for name in ("limit", "test_limit"):
        if getattr(config, name) is not None and getattr(config, name) < 1:
            flag = "--" + name.replace("_", "-")
            raise cli.UsageError(f"{flag} must be at least 1, got {getattr(config, name)}")
    (x, y), (x_test, y_test) = load_split(config.dataset)
    x, y = x[: config.limit], y[: config.limit]
    x_test, y_test = x_test[: config.test_limit], y_test[: config.test_limit]
    if len(x) < config.batch_size:
        raise cli.UsageError(f"{len(x)} training images are fewer than one batch of {config.batch_size}")
    return fit_images(x, size, channels), y, fit_images(x_test, size, channels), y_test


def load_mnist5k(config):
    """mnist5k (4,000 real training digits, 1,000 held out) as float32 (N, 28, 28, 1) in [0, 1] and
    int labels: (x_train, y_train, x_test, y_test), limited by `config.limit` / `test_limit`, the
    training digits followed by `config.shifted_copies` copies shifted by up to `config.max_shift`
    pixels (augmentation made once from (seed, copy); none for a config without those flags)."""
    from datasets import load_mnist5k

    images, labels = load_mnist5k("train")
    test_images, test_labels = load_mnist5k("test")
    x, y = images[: config.limit], labels[: config.limit]
    x_test, y_test = test_images[: config.test_limit], test_labels[: config.test_limit]
    if len(x) < config.batch_size:
        raise cli.UsageError(f"{len(x)} training digits are fewer than one batch of {config.batch_size}")
    # Augmentation: shifted copies made once from (seed, copy), so every epoch, and a resumed run,
    # sees the same training set; the held-out digits stay as they are.
    count = getattr(config, "shifted_copies", 0)
    copies = [
        augment.shift_images(x, np.random.default_rng([config.seed, k]), config.max_shift)
        for k in range(count)
    ]
    x, y = np.concatenate([x, *copies]), np.concatenate([y] * (1 + count))
    return x.astype("float32") / 255.0, y, x_test.astype("float32") / 255.0, y_test


def parameter_counts(model):
    """{"total", "trainable", "non_trainable"} from the variables' shapes (works without values)."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    total = model.count_params()
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def without_weights():
    """Models built inside get variables with shapes but no values, for counting the parameters of
    big models in milliseconds; such models cannot be run (`engine.without_weights`)."""
    return engine.without_weights()


# ---------------------------------------------------------------------------------------------
# Training with model.fit


def plot_curves(metrics_path, path, title):
    """Loss and accuracy per epoch, training and held out, side by side."""
    rows = engine.read_metrics(metrics_path)
    if not rows:
        return
    plt = plots.pyplot()
    epochs = [int(r["epoch"]) for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [float(r[key]) for r in rows], "o-", label="train")
        if f"val_{key}" in rows[0]:
            ax.plot(epochs, [float(r[f"val_{key}"]) for r in rows], "o-", label="held out")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _compiled(build, config, train_images):
    """`build()` compiled with Adam on a cosine-decayed rate and cross-entropy on logits."""
    model = build()
    # The rate decays along a cosine to 0: with a constant rate the held-out accuracy swings by
    # up to 15 points between late epochs (measured with batch norm on the digits). The schedule
    # spans --epochs, so a resume must keep them (engine.Loop's epochs_in_schedule).
    total_steps = max(config.epochs * -(-train_images // config.batch_size), 1)
    schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, total_steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        # XLA's compile time outweighs a --quick run's few TensorFlow steps.
        jit_compile=False if config.quick and engine.backend() == "tensorflow" else "auto",
    )
    return model


def evenly_split(x, y, x_test, y_test):
    """The data trimmed to multiples of the data-parallel device count (`--distribute`): every
    batch, the last one included, must split evenly across the devices. Unchanged on one device."""
    devices = engine.data_parallel_devices()
    keep, keep_test = len(x) - len(x) % devices, len(x_test) - len(x_test) % devices
    if (keep, keep_test) != (len(x), len(x_test)):
        print(
            f"data-parallel over {devices} devices: {keep} of {len(x)} training and {keep_test} "
            f"of {len(x_test)} held-out images (multiples of {devices})"
        )
    return x[:keep], y[:keep], x_test[:keep_test], y_test[:keep_test]


def train_and_evaluate(build, config, data, out, name, describe=None):
    """Compiles `build()` (Adam, cross-entropy on logits), fits it, evaluates it on the held-out
    data, writes metrics.csv, curves.png, checkpoints/, tensorboard/, model.keras and summary.json
    under `out`, and returns the summary dict.

    `model.fit` runs one epoch at a time, on the training data shuffled by (seed, epoch), inside an
    `engine.Loop`: after every epoch a checkpoint (written atomically) holds the weights, the
    optimizer's slots and iteration count (so the schedule's position), the dropout seed state,
    the epoch and the metrics rows. With `config.resume` training continues from the newest usable
    one and ends where the uninterrupted run would; `config.overwrite` starts over in a folder with a
    previous run. `describe(model)` adds entries to the summary.
    """
    x, y, x_test, y_test = evenly_split(*data)
    out = Path(out)
    model = _compiled(build, config, len(x))
    loop = engine.Loop(
        out,
        fitting.checkpoint_state(model),
        resume=config.resume,
        overwrite=config.overwrite,
        config=vars(config),
        epochs_in_schedule=True,
    )
    counts = parameter_counts(model)
    print(
        f"{name}: {counts['total']:,} parameters ({counts['non_trainable']:,} non-trainable); "
        f"{len(x)} training and {len(x_test)} held-out images of {config.dataset} at "
        f"{x.shape[1]}x{x.shape[2]}x{x.shape[3]}, backend {engine.backend()}"
    )

    first_epoch = loop.epoch  # > 0 when resumed
    history, seconds = fitting.fit_epochs(
        model,
        loop,
        x,
        y,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        validation_data=(x_test, y_test),
        name=name,
    )
    if history and "val_loss" in history[-1]:  # fit evaluated the final model on the held-out data.
        loss, accuracy = history[-1]["val_loss"], history[-1]["val_accuracy"]
    else:
        loss, accuracy = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    steps = (config.epochs - first_epoch) * -(-len(x) // config.batch_size)
    summary = {
        "model": name,
        "backend": engine.backend(),
        "dataset": config.dataset,
        "input_shape": list(x.shape[1:]),
        "parameters": counts,
        "train_images": len(x),
        "held_out_images": len(x_test),
        "epochs": config.epochs,
        "held_out_loss": float(loss),
        "held_out_accuracy": float(accuracy),
        "fit_seconds": round(seconds, 2),
        "steps_per_second": round(steps / seconds, 2) if steps and seconds > 0 else None,
        **(describe(model) if describe else {}),
    }
    engine.save_model(model, out / "model.keras")
    plot_curves(loop.metrics_path, out / "curves.png", f"{name} on {config.dataset}")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{name}: held-out accuracy {accuracy:.4f} (loss {loss:.4f}) after {config.epochs} epochs; "
        f"fit took {seconds:.1f} s. Outputs in {out}/"
    )
    return summary
