"""Checks every layer in `layers/` must pass, the way Keras tests its own layers.

Each check takes a *factory* (a callable returning a fresh, unbuilt layer) and NumPy inputs, and
asserts real values: identical outputs after a round trip, non-zero gradients for every weight, a
falling loss under the mixed_bfloat16 policy.
"""

import keras
import numpy as np
from keras import ops

from recipes import engine


def as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def model_inputs(inputs):
    """What a functional model built by `functional_model` takes: one array or a list."""
    inputs = as_list(inputs)
    return inputs if len(inputs) > 1 else inputs[0]


def call(layer, inputs, **kwargs):
    """The layer's outputs as a list of NumPy arrays (inputs: array or list of arrays)."""
    outputs = layer(*as_list(inputs), **kwargs)
    return [ops.convert_to_numpy(o) for o in as_list(outputs)]


def functional_model(factory, inputs):
    """A keras.Model wrapping one layer from `factory`, with Inputs shaped like `inputs`."""
    symbolic = [keras.Input(np.shape(x)[1:], dtype=str(np.asarray(x).dtype)) for x in as_list(inputs)]
    outputs = factory()(*symbolic)
    return keras.Model(symbolic if len(symbolic) > 1 else symbolic[0], outputs)


def assert_config_round_trip(factory, inputs):
    layer = factory()
    expected = call(layer, inputs)
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    call(clone, inputs)  # Builds the clone.
    clone.set_weights(layer.get_weights())
    for got, want in zip(call(clone, inputs), expected):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def assert_saved_round_trip(factory, inputs, path):
    """Saves a model holding the layer as .keras, loads it, and compares outputs."""
    model = functional_model(factory, inputs)
    model.save(path)
    loaded = keras.saving.load_model(path)
    want = [ops.convert_to_numpy(o) for o in as_list(model(model_inputs(inputs)))]
    got = [ops.convert_to_numpy(o) for o in as_list(loaded(model_inputs(inputs)))]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-6)


def assert_gradients_reach_every_weight(factory, inputs, **call_kwargs):
    """Every trainable weight gets a non-zero gradient of sum(outputs^2) through the engine."""
    layer = factory()
    call(layer, inputs, **call_kwargs)  # Build.
    assert layer.trainable_weights, f"{layer.name} has no trainable weights"

    def loss():
        outputs = as_list(layer(*as_list(inputs), **call_kwargs))
        return sum(ops.sum(ops.square(ops.cast(o, "float32"))) for o in outputs)

    _, grads = engine.value_and_grad(loss, layer.trainable_weights)
    for weight, grad in zip(layer.trainable_weights, grads):
        norm = float(np.linalg.norm(ops.convert_to_numpy(grad)))
        assert np.isfinite(norm) and norm > 0, f"no gradient reaches {weight.path}"


class Projected(keras.layers.Layer):
    """Test wrapper: Dense on the first input -> the layer (other inputs as given) -> Dense.

    For layers with no weights of their own (the gradient and mixed_bfloat16 checks need weights
    to reach through them) and for layers whose outputs a bare model cannot reshape freely
    (attention outputs are convex combinations of the values, so they cannot learn to halve them).
    """

    def __init__(self, factory, units, **kwargs):
        super().__init__(**kwargs)
        self.inner = factory()
        init = keras.initializers.RandomNormal(stddev=0.5, seed=31)
        self.before = keras.layers.Dense(units, kernel_initializer=init)
        self.after = keras.layers.Dense(2, kernel_initializer=init)

    def call(self, x, second=None, third=None):
        rest = [a for a in (second, third) if a is not None]
        outputs = self.inner(self.before(x), *rest)
        return self.after(outputs[0] if isinstance(outputs, (list, tuple)) else outputs)


def projected(factory, inputs):
    """A factory of `Projected(factory)` for `inputs`."""
    units = np.shape(as_list(inputs)[0])[-1]
    return lambda: Projected(factory, units)


def assert_trains_in_mixed_bfloat16(factory, inputs, steps=30, training=False, wrap=False):
    """Under mixed_bfloat16, the layer computes in bfloat16, keeps float32 weights, and a model
    made of it learns to halve its own initial outputs: the MSE falls by half in `steps` Adam steps.

    With `wrap=True` the layer trains inside `Projected` (between two Dense layers).
    With `training=True` the outputs and the MSE are taken in training mode, which is what `fit`
    optimises: for layers with batch norm, whose inference outputs use moving statistics that
    training only approaches. Such a factory must leave out dropout (the MSE must be deterministic).
    """
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        if wrap:
            model = functional_model(projected(factory, inputs), inputs)
            layer = model.layers[-1].inner
        else:
            model = functional_model(factory, inputs)
            layer = model.layers[-1]
        assert layer.compute_dtype == "bfloat16"
        assert all(w.dtype == "float32" for w in model.weights)
        outputs = as_list(model(model_inputs(inputs), training=training))
        targets = [0.5 * ops.convert_to_numpy(ops.cast(o, "float32")) for o in outputs]
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=["mse"] * len(targets))
        data = (model_inputs(inputs), targets if len(targets) > 1 else targets[0])

        def mse():
            if not training:
                return np.ravel(model.evaluate(*data, verbose=0))[0]
            outputs = as_list(model(model_inputs(inputs), training=True))
            return sum(
                np.mean(np.square(ops.convert_to_numpy(ops.cast(o, "float32")) - t))
                for o, t in zip(outputs, targets)
            )

        first = mse()
        model.fit(*data, epochs=steps, batch_size=len(np.asarray(as_list(inputs)[0])), verbose=0)
        last = mse()
    finally:
        keras.config.set_dtype_policy(previous)
    assert np.isfinite(last) and last < first / 2, (first, last)
