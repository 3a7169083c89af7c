"""SubPixelConv2DTranspose matches keras.layers.Conv2DTranspose exactly."""

import keras
import numpy as np
import pytest
from keras import ops

from layers import SubPixelConv2DTranspose
from recipes import engine
from tests.layers import layer_checks

# (kernel, strides, padding, input (h, w), in_channels, filters)
CASES = [
    (5, 2, "same", (7, 7), 3, 4),
    (3, 2, "same", (5, 5), 2, 3),
    (4, 2, "same", (4, 6), 3, 2),
    (4, 4, "same", (1, 1), 2, 3),
    (5, 2, "valid", (4, 4), 3, 2),
    (3, 1, "same", (5, 4), 2, 2),
    (2, 3, "valid", (3, 5), 2, 3),
    (1, 3, "same", (3, 2), 2, 2),
    (2, 2, "valid", (3, 4), 1, 2),
    (7, 3, "valid", (2, 3), 2, 1),
    ((3, 5), (2, 3), "same", (3, 4), 2, 2),
    ((5, 2), (3, 2), "valid", (2, 3), 2, 2),
]


def make_pair(kernel, strides, padding, in_channels, filters, use_bias=True, seed=0):
    """Both layers, built, holding the same random weights."""
    kwargs = dict(kernel_size=kernel, strides=strides, padding=padding, use_bias=use_bias)
    kwargs["kernel_initializer"] = "zeros"  # Overwritten below; skips random-op compiles.
    ref = keras.layers.Conv2DTranspose(filters, **kwargs)
    sub = SubPixelConv2DTranspose(filters, implementation="subpixel", **kwargs)
    ref.build((None, None, None, in_channels))
    sub.build((None, None, None, in_channels))
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(w.shape).astype("float32") for w in ref.get_weights()]
    ref.set_weights(weights)
    sub.set_weights(weights)
    return ref, sub


def random_input(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def gradients(layer, x, upstream):
    """Gradients of sum(layer(x) * upstream) w.r.t. (*trainable weights, x), via the engine."""

    def loss(x):
        return ops.sum(ops.multiply(layer(x), upstream))

    _, grads = engine.value_and_grad(loss, [*layer.trainable_variables, x])
    return [ops.convert_to_numpy(g) for g in grads]


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("kernel,strides,padding,size,in_channels,filters", CASES)
def test_matches_conv2d_transpose(kernel, strides, padding, size, in_channels, filters, use_bias):
    ref, sub = make_pair(kernel, strides, padding, in_channels, filters, use_bias)
    x = random_input((2, *size, in_channels))
    expected = ops.convert_to_numpy(ref(x))
    actual = ops.convert_to_numpy(sub(x))
    assert actual.shape == expected.shape
    assert tuple(sub.compute_output_shape(x.shape)) == actual.shape
    np.testing.assert_allclose(actual, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel,strides,padding,size,in_channels,filters", CASES[:7])
def test_gradients_match(kernel, strides, padding, size, in_channels, filters):
    ref, sub = make_pair(kernel, strides, padding, in_channels, filters)
    x = random_input((2, *size, in_channels))
    upstream = random_input(ref.compute_output_shape(x.shape), seed=2)
    expected = gradients(ref, x, upstream)
    actual = gradients(sub, x, upstream)
    assert len(actual) == 3  # kernel, bias, input
    for a, e in zip(actual, expected):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("implementation", [None, "subpixel", "native"])
def test_oracle(implementation):
    # y[2i + t] += x[i] * k[t] along each axis: no crop for k=3, s=2 ("same").
    kwargs = dict(strides=2, padding="same", use_bias=False, kernel_initializer="ones")
    if implementation is None:
        layer = keras.layers.Conv2DTranspose(1, 3, **kwargs)
    else:
        layer = SubPixelConv2DTranspose(1, 3, implementation=implementation, **kwargs)
    x = np.array([[1, 2], [3, 4]], "float32").reshape(1, 2, 2, 1)
    y = ops.convert_to_numpy(layer(x))[0, :, :, 0]
    expected = [[1, 1, 3, 2], [1, 1, 3, 2], [4, 4, 10, 6], [3, 3, 7, 4]]
    np.testing.assert_array_equal(y, expected)


def test_fallback_settings_match():
    x = random_input((1, 3, 3, 2))
    for kwargs in [dict(strides=2, output_padding=1), dict(dilation_rate=2)]:
        ref = keras.layers.Conv2DTranspose(2, 3, padding="same", **kwargs)
        sub = SubPixelConv2DTranspose(2, 3, padding="same", **kwargs)
        ref.build(x.shape)
        sub.build(x.shape)
        sub.set_weights(ref.get_weights())
        np.testing.assert_allclose(ops.convert_to_numpy(sub(x)), ops.convert_to_numpy(ref(x)))


def test_config_round_trip():
    _, sub = make_pair(5, 2, "same", 3, 4)
    x = random_input((2, 7, 7, 3))
    clone = SubPixelConv2DTranspose.from_config(sub.get_config())
    clone.build(x.shape)
    clone.set_weights(sub.get_weights())
    assert clone.get_config() == sub.get_config()
    np.testing.assert_array_equal(ops.convert_to_numpy(clone(x)), ops.convert_to_numpy(sub(x)))


def test_saved_model_round_trip(tmp_path):
    model = keras.Sequential(
        [
            keras.Input((7, 7, 3)),
            SubPixelConv2DTranspose(
                4, 5, strides=2, padding="same", activation="relu", implementation="subpixel"
            ),
        ]
    )
    x = random_input((2, 7, 7, 3))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.layers[0], SubPixelConv2DTranspose)
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(model(x)))


def test_functional_model_symbolic_input():
    inputs = keras.Input((None, None, 3))
    hidden = SubPixelConv2DTranspose(4, 3, strides=2, padding="same", implementation="subpixel")(inputs)
    outputs = SubPixelConv2DTranspose(2, 5, strides=2, padding="valid", implementation="subpixel")(
        hidden
    )
    assert outputs.shape == (None, None, None, 2)
    model = keras.Model(inputs, outputs)
    x = random_input((3, 5, 4, 3))
    y = model.predict(x, batch_size=2, verbose=0)
    assert y.shape == (3, 23, 19, 2)
    np.testing.assert_allclose(y, ops.convert_to_numpy(model(x)), atol=1e-5)


def test_implementations_agree_and_bad_implementation_is_named():
    x = random_input((2, 4, 4, 3))
    outputs = []
    for implementation in ("auto", "subpixel", "native"):
        layer = SubPixelConv2DTranspose(
            2, 5, strides=2, padding="same", implementation=implementation, kernel_initializer="ones"
        )
        outputs.append(ops.convert_to_numpy(layer(x)))
        assert layer.get_config()["implementation"] == implementation
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outputs[2], outputs[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="SubPixelConv2DTranspose: implementation"):
        SubPixelConv2DTranspose(2, 3, implementation="fft")


def subpixel_factory():
    return SubPixelConv2DTranspose(
        4, 5, strides=2, padding="same", activation="relu", implementation="subpixel"
    )


SUBPIXEL_INPUTS = random_input((2, 5, 5, 3))
CROSS_BACKEND_CASES = {"subpixel_conv2d_transpose": (subpixel_factory, SUBPIXEL_INPUTS)}


def test_layer_checks(tmp_path):
    layer_checks.assert_config_round_trip(subpixel_factory, SUBPIXEL_INPUTS)
    layer_checks.assert_saved_round_trip(subpixel_factory, SUBPIXEL_INPUTS, tmp_path / "m.keras")
    layer_checks.assert_gradients_reach_every_weight(subpixel_factory, SUBPIXEL_INPUTS)
    layer_checks.assert_trains_in_mixed_bfloat16(subpixel_factory, SUBPIXEL_INPUTS)
