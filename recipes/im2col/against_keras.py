"""layers.im2col's Im2ColConv2D and Im2ColMaxPool2D against Keras' built-ins: the same numbers with
the same weights, and the time of a forward + backward step."""

import time

import numpy as np

from recipes import engine
from recipes.common import cli

keras = cli.lazy_import("keras")


def conv_against_keras(seed, shape=(2, 9, 8, 3), filters=4, kernel_size=3):
    """[(padding, strides, output shape, max |Im2ColConv2D - Conv2D|)] with the same weights."""
    from layers.im2col import Im2ColConv2D

    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype("float32")
    rows = []
    for padding in ("valid", "same"):
        for strides in (1, 2):
            kwargs = dict(strides=strides, padding=padding)
            reference = keras.layers.Conv2D(filters, kernel_size, **kwargs)
            layer = Im2ColConv2D(filters, kernel_size, **kwargs)
            reference.build(shape)
            layer.build(shape)
            weights = [rng.standard_normal(w.shape).astype("float32") for w in reference.get_weights()]
            reference.set_weights(weights)
            layer.set_weights(weights)
            want = keras.ops.convert_to_numpy(reference(x))
            got = keras.ops.convert_to_numpy(layer(x))
            rows.append((padding, strides, got.shape, float(np.abs(got - want).max())))
    return rows


def pool_against_keras(seed, shape=(2, 9, 8, 3)):
    """[(padding, pool, strides, output shape, POH formula, max |Im2ColMaxPool2D - MaxPooling2D|)]."""
    from layers.im2col import Im2ColMaxPool2D, conv_output_size

    x = np.random.default_rng(seed).standard_normal(shape).astype("float32")
    rows = []
    for padding in ("valid", "same"):
        for pool, strides in ((2, 2), (3, 1), (3, 2)):
            kwargs = dict(pool_size=pool, strides=strides, padding=padding)
            want = keras.ops.convert_to_numpy(keras.layers.MaxPooling2D(**kwargs)(x))
            got = keras.ops.convert_to_numpy(Im2ColMaxPool2D(**kwargs)(x))
            # The notes' POH = (H - PH) / S + 1 is the "valid" size; "same" gives ceil(H / S).
            formula = (
                conv_output_size(shape[1], pool, strides)
                if padding == "valid"
                else -(-shape[1] // strides)
            )
            rows.append((padding, pool, strides, got.shape, formula, float(np.abs(got - want).max())))
    return rows


def time_layers(config):
    """Seconds per forward + backward step of Im2ColConv2D and Conv2D on the same input: a
    compiled step on JAX and TensorFlow, eager on torch (`engine.function`)."""
    from keras import ops

    from layers.im2col import Im2ColConv2D

    shape = (config.batch_size, config.image_size, config.image_size, config.channels)
    x = ops.convert_to_tensor(
        np.random.default_rng(config.seed).standard_normal(shape).astype("float32")
    )
    results = {}
    for name, layer in (
        ("Im2ColConv2D", Im2ColConv2D(config.filters, config.kernel_size, padding="same")),
        ("Conv2D", keras.layers.Conv2D(config.filters, config.kernel_size, padding="same")),
    ):
        layer.build(shape)

        def step(x, layer=layer):
            def loss(x):
                return ops.mean(ops.square(layer(x)))

            value, grads = engine.value_and_grad(loss, [*layer.trainable_variables, x])
            # Return every gradient's size, so that a compiler cannot drop the backward pass.
            return {"loss": value, "grads": sum(ops.sum(ops.square(g)) for g in grads)}

        step = engine.function(step, [layer])
        ops.convert_to_numpy(step(x)["grads"])  # warm-up: compiles
        start = time.perf_counter()
        for _ in range(config.repeats):
            out = step(x)
        ops.convert_to_numpy(out["grads"])
        results[name] = (time.perf_counter() - start) / config.repeats
    return shape, results
