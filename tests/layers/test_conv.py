"""The convolution layers equal their Keras built-ins given the same weights: SubPixelConv2DTranspose
and MatMulConv2DTranspose match keras.layers.Conv2DTranspose, SpaceToDepthConv2D matches Conv2D."""

import keras
import numpy as np
import pytest
from keras import ops

from layers import MatMulConv2DTranspose, SpaceToDepthConv2D, SubPixelConv2DTranspose
from recipes import engine
from tests.conftest import BACKEND
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


def same_weights(ref, layer, input_shape, seed=0):
    """Builds the Keras layer and ours for `input_shape` and gives both the same random weights."""
    ref.build(input_shape)
    layer.build(input_shape)
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal(w.shape).astype("float32") for w in ref.get_weights()]
    ref.set_weights(weights)
    layer.set_weights(weights)
    return ref, layer


def make_pair(kernel, strides, padding, in_channels, filters, use_bias=True, seed=0):
    """Both layers, built, holding the same random weights."""
    kwargs = dict(kernel_size=kernel, strides=strides, padding=padding, use_bias=use_bias)
    kwargs["kernel_initializer"] = "zeros"  # Overwritten below; skips random-op compiles.
    ref = keras.layers.Conv2DTranspose(filters, **kwargs)
    sub = SubPixelConv2DTranspose(filters, implementation="subpixel", **kwargs)
    return same_weights(ref, sub, (None, None, None, in_channels), seed)


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


@pytest.mark.parametrize(
    "kwargs",
    [dict(strides=2, output_padding=1), dict(dilation_rate=2)],
    ids=["output-padding", "dilation"],
)
def test_fallback_settings_match(kwargs):
    if "dilation_rate" in kwargs and BACKEND == "tensorflow":
        pytest.skip(
            "TensorFlow's CPU kernels implement no dilated transposed convolution (TF 2.21: "
            "keras.layers.Conv2DTranspose(dilation_rate=2) fails the same way)"
        )
    x = random_input((1, 3, 3, 2))
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


# --- SpaceToDepthConv2D = Conv2D ----------------------------------------------------------------

# (kernel, strides, input (h, w), in_channels, filters); "same" padding, sizes divisible by strides.
SPACE_TO_DEPTH_CASES = [
    (5, 2, (14, 14), 3, 4),
    (4, 2, (12, 12), 3, 4),
    (3, 3, (12, 12), 3, 4),
    (5, 2, (28, 28), 1, 2),
    ((4, 3), (2, 3), (12, 9), 2, 3),
]


def conv_pair(kernel, strides, in_channels, filters, padding="same", seed=0):
    """keras.layers.Conv2D and SpaceToDepthConv2D (forced to its rearranged form), same weights."""
    kwargs = dict(strides=strides, padding=padding, kernel_initializer="zeros")
    ref = keras.layers.Conv2D(filters, kernel, **kwargs)
    layer = SpaceToDepthConv2D(filters, kernel, implementation="space_to_depth", **kwargs)
    return same_weights(ref, layer, (None, None, None, in_channels), seed)


@pytest.mark.parametrize("kernel,strides,size,in_channels,filters", SPACE_TO_DEPTH_CASES)
def test_space_to_depth_equals_conv2d_with_gradients(kernel, strides, size, in_channels, filters):
    """Outputs and the gradients of the kernel, the bias and the input (WGAN-GP's critic)."""
    ref, layer = conv_pair(kernel, strides, in_channels, filters)
    x = random_input((2, *size, in_channels))
    assert layer._rearranged(x.shape)
    expected = ops.convert_to_numpy(ref(x))
    actual = ops.convert_to_numpy(layer(x))
    assert actual.shape == expected.shape == tuple(layer.compute_output_shape(x.shape))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    upstream = random_input(expected.shape, seed=2)
    for a, e in zip(gradients(layer, x, upstream), gradients(ref, x, upstream)):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4)


def test_space_to_depth_falls_back_to_conv2d():
    """ "valid" padding, sizes the strides do not divide and stride 1 use Conv2D's own op."""
    for padding, size, strides in [("valid", (12, 12), 2), ("same", (13, 12), 2), ("same", (6, 6), 1)]:
        ref, layer = conv_pair(3, strides, 2, 3, padding=padding)
        x = random_input((2, *size, 2))
        assert not layer._rearranged(x.shape)
        np.testing.assert_allclose(
            ops.convert_to_numpy(layer(x)), ops.convert_to_numpy(ref(x)), rtol=1e-5, atol=1e-5
        )


def test_subpixel_auto_is_sub_pixel_on_jax_only():
    # Measured by benchmarks/dcgan_steps.py --implementations: TF and torch are faster natively.
    layers_built = {}
    for implementation in ("auto", "subpixel", "native"):
        layer = SubPixelConv2DTranspose(2, 5, strides=2, padding="same", implementation=implementation)
        layer.build((None, 7, 7, 3))
        layers_built[implementation] = layer._subpixel
    assert layers_built == {"auto": BACKEND == "jax", "subpixel": True, "native": False}


def test_space_to_depth_auto_rearranges_on_jax_only():
    layer = SpaceToDepthConv2D(2, 5, strides=2, padding="same")
    assert layer._rearranged((None, 28, 28, 1)) == (keras.backend.backend() == "jax")
    assert not SpaceToDepthConv2D(2, 5, strides=2, implementation="native")._rearranged((1, 8, 8, 1))


def test_space_to_depth_bad_input_is_named():
    with pytest.raises(ValueError, match="SpaceToDepthConv2D: implementation"):
        SpaceToDepthConv2D(2, 3, implementation="fft")
    with pytest.raises(ValueError, match=r"SpaceToDepthConv2D: expected inputs of shape \(batch"):
        SpaceToDepthConv2D(2, 3, strides=2, padding="same")(np.zeros((8, 8, 3), "float32"))
    with pytest.raises(ValueError, match=r"SpaceToDepthConv2D: expected inputs of shape \(batch"):
        SpaceToDepthConv2D(2, 3).compute_output_shape((None, 8, 3))


def space_to_depth_factory():
    return SpaceToDepthConv2D(
        4, 5, strides=2, padding="same", activation="relu", implementation="space_to_depth"
    )


SPACE_TO_DEPTH_INPUTS = random_input((2, 8, 8, 3))


# --- MatMulConv2DTranspose = Conv2DTranspose --------------------------------------------------

# (kernel, strides, padding, input (h, w), in_channels, filters): inputs of a few pixels.
MATMUL_CASES = [
    (4, 2, "same", (1, 1), 6, 5),
    (4, 2, "same", (2, 2), 6, 5),
    (3, 2, "same", (2, 3), 2, 3),
    (5, 2, "valid", (2, 2), 3, 2),
    ((3, 5), (2, 3), "same", (2, 1), 2, 2),
]


def matmul_pair(kernel, strides, padding, in_channels, filters, seed=0):
    kwargs = dict(kernel_size=kernel, strides=strides, padding=padding, kernel_initializer="zeros")
    ref = keras.layers.Conv2DTranspose(filters, **kwargs)
    layer = MatMulConv2DTranspose(filters, **kwargs)
    return same_weights(ref, layer, (None, 2, 2, in_channels), seed)


@pytest.mark.parametrize("kernel,strides,padding,size,in_channels,filters", MATMUL_CASES)
def test_matmul_equals_conv2d_transpose_with_gradients(
    kernel, strides, padding, size, in_channels, filters
):
    ref, layer = matmul_pair(kernel, strides, padding, in_channels, filters)
    x = random_input((3, *size, in_channels))
    expected = ops.convert_to_numpy(ref(x))
    actual = ops.convert_to_numpy(layer(x))
    assert actual.shape == expected.shape == tuple(layer.compute_output_shape(x.shape))
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)
    upstream = random_input(expected.shape, seed=2)
    for a, e in zip(gradients(layer, x, upstream), gradients(ref, x, upstream)):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4)


def test_matmul_bad_input_is_named():
    with pytest.raises(ValueError, match=r"MatMulConv2DTranspose: expected inputs of shape \(batch"):
        MatMulConv2DTranspose(2, 4, strides=2)(np.zeros((2, 2, 3), "float32"))
    with pytest.raises(ValueError, match="MatMulConv2DTranspose: expected .* known height"):
        MatMulConv2DTranspose(2, 4, strides=2)(keras.Input((None, None, 3)))


def matmul_factory():
    return MatMulConv2DTranspose(4, 4, strides=2, padding="same", activation="relu")


MATMUL_INPUTS = random_input((2, 2, 2, 3))


# --- The shared layer checks --------------------------------------------------------------------

LAYER_CHECK_CASES = {
    **CROSS_BACKEND_CASES,
    "space_to_depth_conv2d": (space_to_depth_factory, SPACE_TO_DEPTH_INPUTS),
    "matmul_conv2d_transpose": (matmul_factory, MATMUL_INPUTS),
}


@pytest.mark.parametrize("name", sorted(LAYER_CHECK_CASES))
def test_layer_checks(name, tmp_path):
    factory, inputs = LAYER_CHECK_CASES[name]
    layer_checks.assert_config_round_trip(factory, inputs)
    layer_checks.assert_saved_round_trip(factory, inputs, tmp_path / "m.keras")
    layer_checks.assert_gradients_reach_every_weight(factory, inputs)
    layer_checks.assert_trains_in_mixed_bfloat16(factory, inputs)
