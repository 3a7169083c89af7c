"""engine.fast_calls on torch: functional models run node by node with the engine's kernels (Conv2D,
Conv2DTranspose, BatchNormalization, Dense) give Keras' outputs, gradients and moving statistics
(1e-5), skip `Layer.__call__` only where it would change nothing, and leave everything else alone."""

import keras
import numpy as np
import pytest
from keras import ops

from layers import SubPixelConv2DTranspose
from recipes import engine
from recipes.engine import kernels
from tests.conftest import BACKEND

pytestmark = pytest.mark.skipif(
    BACKEND != "torch", reason="elsewhere the kernels and the graph call are Keras' own"
)

RNG = np.random.default_rng(0)
IMAGES = RNG.standard_normal((4, 9, 9, 3)).astype("float32")
L = keras.layers


def _randomized(layer, shape):
    layer.build(shape)
    rng = np.random.default_rng(1)
    layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])
    return layer


def _weighted_sum(x):
    return ops.sum(x * ops.reshape(ops.cos(ops.arange(ops.size(x), dtype="float32")), x.shape))


def _outputs_and_grads(run, variables, x):
    """run(x), then the gradients of its weighted sum w.r.t. `variables` and x, NumPy."""
    tensor = ops.convert_to_tensor(x)
    value, grads = engine.value_and_grad(lambda t: _weighted_sum(run(t)), [*variables, tensor])
    return [float(value), ops.convert_to_numpy(run(tensor)), *map(ops.convert_to_numpy, grads)]


def _assert_close(got, want):
    """Equal to float32 rounding: 1e-5 relative, or 1e-5 of the largest value of the array."""
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * max(1.0, float(np.max(np.abs(w)))))


CONVOLUTIONS = {
    "conv-same-stride2": lambda: L.Conv2D(5, 5, strides=2, padding="same"),
    "conv-valid-relu": lambda: L.Conv2D(4, 3, activation="relu"),
    "conv-same-dilated-nobias": lambda: L.Conv2D(4, 3, padding="same", dilation_rate=2, use_bias=False),
    "deconv-same-stride2": lambda: L.Conv2DTranspose(5, 5, strides=2, padding="same"),
    "deconv-valid-sigmoid": lambda: L.Conv2DTranspose(2, 3, strides=2, activation="sigmoid"),
    "deconv-output-padding": lambda: L.Conv2DTranspose(
        3, 3, strides=2, padding="same", output_padding=1
    ),
    "subpixel-native": lambda: SubPixelConv2DTranspose(4, 5, strides=2, padding="same"),
}


@pytest.mark.parametrize("name", CONVOLUTIONS)
def test_convolution_kernels_equal_the_layers(name):
    layer = _randomized(CONVOLUTIONS[name](), IMAGES.shape)
    assert kernels.calls(layer)[0] != layer.call  # the engine's kernel
    _assert_close(
        _outputs_and_grads(lambda x: kernels.run(layer, x), layer.trainable_variables, IMAGES),
        _outputs_and_grads(lambda x: layer(x), layer.trainable_variables, IMAGES),
    )


def test_convolution_kernels_leave_other_forms_to_the_layers():
    grouped = _randomized(L.Conv2D(6, 3, groups=3), IMAGES.shape)
    first = _randomized(L.Conv2D(4, 3, data_format="channels_first"), (4, 3, 9, 9))
    subpixel = _randomized(
        SubPixelConv2DTranspose(4, 5, strides=2, implementation="subpixel"), IMAGES.shape
    )
    for layer in (grouped, first, subpixel):
        assert kernels.calls(layer)[0] == layer.call


@pytest.mark.parametrize("shape, axis", [((4, 9, 9, 3), -1), ((6, 5), -1), ((4, 3, 9, 9), 1)])
@pytest.mark.parametrize("strided", [False, True])
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_kernel_equals_the_layer(shape, axis, strided, training):
    """On contiguous inputs (channels last: as a 2-D batch norm) and on strided views of them."""
    # strided: one more on the last axis, cut off again by a view that is not contiguous
    x = (RNG.standard_normal((*shape[:-1], shape[-1] + strided)) * 3 + 1).astype("float32")
    last = shape[-1]

    def layer():
        norm = _randomized(L.BatchNormalization(axis=axis, momentum=0.9), shape)
        norm.moving_variance.assign(ops.abs(norm.moving_variance) + 0.5)
        return norm

    fused, plain = layer(), layer()
    got = _outputs_and_grads(
        lambda t: kernels.run(fused, t[..., :last], training=training), fused.trainable_variables, x
    )
    want = _outputs_and_grads(
        lambda t: plain(t[..., :last], training=training), plain.trainable_variables, x
    )
    _assert_close(got, want)
    # Both moved their statistics twice (once per pass above) while training, not otherwise.
    _assert_close(fused.get_weights()[2:], plain.get_weights()[2:])
    moved = not np.allclose(fused.get_weights()[2], layer().get_weights()[2])
    assert moved == training


def _model(seed=3):
    """A functional model with every kind of node: kernels, direct calls, a seeded Dropout, a
    concatenation of two branches, a reshape."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((9, 9, 3))
    x = L.Conv2D(8, 3, strides=2, padding="same")(image)
    x = L.LeakyReLU(0.2)(L.BatchNormalization()(x))
    branch = L.Conv2DTranspose(4, 3, strides=2, padding="same")(x)
    x = L.Concatenate()([L.Cropping2D(((1, 0), (1, 0)))(branch), L.Conv2D(4, 1)(image)])
    x = L.Dropout(0.3, seed=5)(L.Flatten()(x))
    logits = L.Dense(3)(L.BatchNormalization()(L.Dense(16, activation="relu")(x)))
    return keras.Model(image, logits)


def _twins():
    """The same model twice, the first with the engine's graph call."""
    fast, plain = _model(), _model()
    plain.set_weights(fast.get_weights())
    engine.fast_calls([fast, "not a model"])
    assert "call" in vars(fast) and "call" not in vars(plain)
    return fast, plain


def _count_layer_calls(monkeypatch):
    calls = []
    keras_call = keras.layers.Layer.__call__

    def counted(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return keras_call(self, *args, **kwargs)

    monkeypatch.setattr(keras.layers.Layer, "__call__", counted)
    return calls


@pytest.mark.parametrize("training", [True, False])
def test_graph_call_equals_keras(monkeypatch, training):
    fast, plain = _twins()
    calls = _count_layer_calls(monkeypatch)
    got = _outputs_and_grads(lambda x: fast(x, training=training), fast.trainable_variables, IMAGES)
    # The model's own __call__ and the concatenation (a list argument) go through Keras.
    assert sorted(set(calls)) == ["Concatenate", "Functional"]
    calls.clear()
    want = _outputs_and_grads(lambda x: plain(x, training=training), plain.trainable_variables, IMAGES)
    assert "Conv2D" in calls and "Dropout" in calls
    _assert_close(got, want)
    _assert_close(fast.get_weights(), plain.get_weights())  # the moving statistics


def test_graph_call_keeps_keras_where_it_does_more(monkeypatch):
    fast, plain = _twins()
    calls = _count_layer_calls(monkeypatch)
    fast(IMAGES)  # no training value, and NumPy input: Keras' Functional.call
    fast(ops.convert_to_tensor(IMAGES), training=False, mask=None)
    assert "Conv2D" in calls
    # A float16 layer inside: its output reaches the float32 layer after it through Keras' cast.
    features = keras.Input((3,))
    half = keras.Model(features, L.Dense(2)(L.Dense(4, dtype="float16")(features)))
    half_plain = keras.models.clone_model(half)
    half_plain.set_weights(half.get_weights())
    engine.fast_calls([half])
    calls.clear()
    got = half(ops.convert_to_tensor(IMAGES[:, 0, 0]), training=True)
    assert calls == ["Functional", "Dense", "Dense"]
    np.testing.assert_array_equal(
        ops.convert_to_numpy(got), ops.convert_to_numpy(half_plain(IMAGES[:, 0, 0], training=True))
    )
    # A model whose Embedding makes a mask: the nodes that receive it go through Keras.
    tokens = keras.Input((4,), dtype="int32")
    hidden = L.GRU(3)(L.Embedding(6, 2, mask_zero=True)(tokens))
    masked, masked_plain = keras.Model(tokens, hidden), None
    masked_plain = keras.models.clone_model(masked)
    masked_plain.set_weights(masked.get_weights())
    engine.fast_calls([masked])
    ids = ops.convert_to_tensor(np.array([[1, 2, 0, 0], [3, 0, 0, 0]], "int32"))
    np.testing.assert_allclose(
        ops.convert_to_numpy(masked(ids, training=True)),
        ops.convert_to_numpy(masked_plain(ids, training=True)),
        rtol=1e-6,
    )
    # Mixed precision: every layer through Keras (autocasting).
    keras.config.set_dtype_policy("mixed_float16")
    try:
        mixed = _model()
    finally:
        keras.config.set_dtype_policy("float32")
    engine.fast_calls([mixed])
    calls.clear()
    mixed(ops.convert_to_tensor(IMAGES), training=True)
    assert "Conv2D" in calls and "BatchNormalization" in calls


def test_sequential_and_nested_models_get_the_graph_call(monkeypatch):
    inner = keras.Sequential([keras.Input((9, 9, 3)), L.Conv2D(2, 3), L.Flatten()])
    outer_input = keras.Input((9, 9, 3))
    outer = keras.Model(outer_input, L.Dense(2)(inner(outer_input)))
    plain = keras.models.clone_model(outer)
    plain.set_weights(outer.get_weights())
    engine.fast_calls([outer])
    calls = _count_layer_calls(monkeypatch)
    got = ops.convert_to_numpy(outer(ops.convert_to_tensor(IMAGES), training=True))
    assert calls == ["Functional"]
    np.testing.assert_allclose(
        got, ops.convert_to_numpy(plain(IMAGES, training=True)), rtol=1e-5, atol=1e-6
    )


def test_function_and_loop_install_the_graph_call(tmp_path):
    stepped, looped = _model(), _model()
    engine.function(lambda x: stepped(x, training=True), [stepped])
    engine.Loop(tmp_path / "run", {"model": looped}, verbose=False)
    assert "call" in vars(stepped) and "call" in vars(looped)


def test_fast_calls_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("RECIPES_FAST_CALLS", "0")
    model = _model()
    engine.fast_calls([model])
    assert "call" not in vars(model)
