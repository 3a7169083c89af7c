"""A 6.2's VGG16 and VGG19: the shape table, the builder and its preprocessing, and a narrow VGG
trained on images through the Estimator."""

import time

import numpy as np

import datasets
from recipes.common import cli, precision
from recipes.common.estimator import Estimator, EstimatorSpec, ModeKeys, numpy_input_fn

keras = cli.lazy_import("keras")

# Convolutions per block (VGG19 adds one to blocks 3, 4 and 5) and their widths.
BLOCKS = {16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}
CHANNELS = (64, 128, 256, 512, 512)
VGG_MEAN = (103.939, 116.779, 123.68)  # B, G, R


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
    """VGG16/19 as A 6.2's table, layers named as in its weight files (conv1_1 ... fc8): 3x3
    convolutions, stride 1, SAME padding, ReLU; 2x2 max-pooling with stride 2 and SAME padding; fc6
    and fc7 of 4096 with dropout 0.5; fc8 of 1000 with softmax.

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
    # VGG16 at (N, 224, 224, 3): pool1 ... pool5 (N, 112, 112, 64), (N, 56, 56, 128),
    # (N, 28, 28, 256), (N, 14, 14, 512), (N, 7, 7, 512); flatten (N, 25088); fc6, fc7 (N, 4096);
    # fc8 (N, 1000)
    return keras.Model(image, x, name=f"vgg{depth}")


def preprocess_bgr(images):
    """The notes' `build()` step: RGB in 0..255 -> BGR minus VGG_MEAN (B, G, R); this is
    `keras.applications.vgg16.preprocess_input`."""
    images = np.asarray(images, "float32")
    return images[..., ::-1] - np.array(VGG_MEAN, "float32")


def vgg_model_fn(features, labels, mode, params):
    """A narrow VGG of logits (He-normal convolutions, Glorot dense layers), trained with Adam on a
    learning rate that decays along a cosine to 0 over `params["decay_steps"]`."""
    policy = params.get("dtype_policy", "float32")
    with precision.dtype_policy(policy):
        model = build_vgg(
            params["depth"],
            features.shape[1:],
            params["classes"],
            width=params["width"],
            fc_units=params["fc_units"],
            dropout=params["dropout"],
            classifier_activation=None,
        )
    if policy != "float32":  # float32 logits under a mixed policy, as Keras' guide advises
        logits = keras.layers.Activation("linear", dtype="float32", name="logits")(model.output)
        model = keras.Model(model.input, logits, name=model.name)

    def predictions(logits):
        return {"classes": keras.ops.argmax(logits, axis=-1), "probabilities": keras.ops.softmax(logits)}

    if mode == ModeKeys.PREDICT:
        return EstimatorSpec(mode, model, predictions=predictions)
    return EstimatorSpec(
        mode,
        model,
        predictions=predictions,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=precision.loss_scaled(
            policy,
            keras.optimizers.Adam(
                keras.optimizers.schedules.CosineDecay(params["learning_rate"], params["decay_steps"])
            ),
        ),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )


def load_vgg_data(config):
    """(x_train, y_train, x_test, y_test): float32 images in [-1, 1] and int labels."""
    if config.dataset == "cifar10":
        from datasets.cifar import load_cifar10  # downloaded on request

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
        images = datasets.fit_images(images[order], config.image_size, 1)  # 28x28 resized
        labels = labels[order]
        held_out = len(images) // 5  # a fifth of the shuffled digits
        x_train, y_train = images[held_out:], labels[held_out:]
        x_test, y_test = images[:held_out], labels[:held_out]
    scale = (-1.0, 1.0)  # Normalize((0.5,) * C, (0.5,) * C) of the notes' CIFAR VGG.
    return datasets.to_float(x_train, scale), y_train, datasets.to_float(x_test, scale), y_test


def run_vgg(config, model_dir):
    """One `train` (an epoch) and `evaluate` per epoch; with --resume from the epoch after the
    checkpoint's global step. Returns (estimator, the summary's "vgg" entry)."""
    x_train, y_train, x_test, y_test = load_vgg_data(config)
    width = config.width or (0.125 if config.dataset == "digits" else 0.5)
    params = {
        "depth": config.depth,
        "classes": 10,
        "width": width,
        "fc_units": config.fc_units,
        "dropout": config.dropout,
        "dtype_policy": config.dtype_policy,
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
        f"VGG{config.depth} (width {width:g}, fc {config.fc_units}, dropout {config.dropout:g}) on "
        f"{len(x_train)} {config.dataset} images {x_train.shape[1:]}, {len(x_test)} held out; "
        f"{steps_per_epoch} steps per epoch"
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
