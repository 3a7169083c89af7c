"""im2col / col2im against NumPy and autodiff; Im2ColConv2D and Im2ColMaxPool2D against Keras."""

import keras
import numpy as np
import pytest
from keras import ops

from layers.im2col import Im2ColConv2D, Im2ColMaxPool2D, col2im, conv_output_size, im2col
from recipes import engine
from tests.layers import layer_checks

# One input shape for the layer comparisons (the im2col recipe uses it too: on JAX every new shape
# is a compile).
SHAPE = (2, 9, 8, 3)


def random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def numpy(x):
    return ops.convert_to_numpy(x)


# ---------------------------------------------------------------------------------------------------
# NumPy references: Saito's im2col / col2im (channels-first, rows ordered (C, FH, FW))


def im2col_reference(x, fh, fw, stride=1, pad=0):
    n, c, h, w = x.shape
    out_h, out_w = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    col = np.zeros((n, c, fh, fw, out_h, out_w), x.dtype)
    for y in range(fh):
        for x_ in range(fw):
            col[:, :, y, x_] = img[
                :, :, y : y + stride * out_h : stride, x_ : x_ + stride * out_w : stride
            ]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * out_h * out_w, -1)


def col2im_reference(col, shape, fh, fw, stride=1, pad=0):
    n, c, h, w = shape
    out_h, out_w = (h + 2 * pad - fh) // stride + 1, (w + 2 * pad - fw) // stride + 1
    col = col.reshape(n, out_h, out_w, c, fh, fw).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * pad + stride - 1, w + 2 * pad + stride - 1), col.dtype)
    for y in range(fh):
        for x_ in range(fw):
            img[:, :, y : y + stride * out_h : stride, x_ : x_ + stride * out_w : stride] += col[
                :, :, y, x_
            ]
    return img[:, :, pad : h + pad, pad : w + pad]


# ---------------------------------------------------------------------------------------------------
# im2col / col2im


def test_im2col_shapes_of_the_notes():
    # Section 6.1 (a): (1, 3, 7, 7) with a 5x5 filter -> 3 x 3 windows of 75 values; (90, 75) for N = 10.
    x = np.arange(147, dtype="float32").reshape(1, 3, 7, 7)
    col = numpy(im2col(x, 5, 5, stride=1, pad=0))
    assert col.shape == (9, 75)
    assert numpy(im2col(np.zeros((10, 3, 7, 7), "float32"), 5, 5)).shape == (90, 75)
    assert conv_output_size(7, 5) == 3
    # Row 0 is the top-left window, channel by channel; row 4 the centre one.
    np.testing.assert_array_equal(col[0], x[0, :, :5, :5].ravel())
    np.testing.assert_array_equal(col[4], x[0, :, 1:6, 1:6].ravel())
    np.testing.assert_array_equal(col, im2col_reference(x, 5, 5))


def test_im2col_and_col2im_match_saito(fh=3, fw=2, stride=2, pad=1):
    x = random((2, 3, 7, 6), seed=1)
    col = numpy(im2col(x, fh, fw, stride, pad))
    np.testing.assert_array_equal(col, im2col_reference(x, fh, fw, stride, pad))
    dcol = random(col.shape, seed=2)
    np.testing.assert_allclose(
        numpy(col2im(dcol, x.shape, fh, fw, stride, pad)),
        col2im_reference(dcol, x.shape, fh, fw, stride, pad),
        rtol=1e-6,
        atol=1e-6,
    )


def test_col2im_of_ones_counts_the_windows():
    # Section 6.1 (b): the element 22 at (0, 3, 1) lies in 3 x 2 = 6 of the 5x5 windows.
    counts = numpy(col2im(np.ones((9, 75), "float32"), (1, 3, 7, 7), 5, 5))
    assert counts[0, 0, 3, 1] == 6
    per_axis = np.array([1, 2, 3, 3, 3, 2, 1], "float32")  # windows covering each row / column
    np.testing.assert_array_equal(counts, np.broadcast_to(np.outer(per_axis, per_axis), (1, 3, 7, 7)))


@pytest.mark.parametrize("fh,fw,stride,pad", [(5, 5, 1, 0), (3, 2, 2, 1)])
def test_col2im_is_the_autodiff_gradient(fh, fw, stride, pad):
    # Section 6.1 (b): col2im(dcol) = d/dx sum(im2col(x) * dcol), the gradient taken by the backend.
    shape = (1, 3, 7, 7) if fh == 5 else (2, 3, 7, 6)
    x = ops.convert_to_tensor(random(shape, seed=3))
    col_shape = numpy(im2col(x, fh, fw, stride, pad)).shape
    dcol = ops.convert_to_tensor(random(col_shape, seed=4))
    _, (grad,) = engine.value_and_grad(
        lambda x: ops.sum(ops.multiply(im2col(x, fh, fw, stride, pad), dcol)), [x]
    )
    np.testing.assert_allclose(
        numpy(col2im(dcol, shape, fh, fw, stride, pad)), numpy(grad), rtol=1e-5, atol=1e-5
    )


def test_the_notes_dx_example():
    # The gradient of element 22: (-0.53) + 0.77 + 0.05 + 0.03 + 0.29 + (-0.29) = 0.32, one term per
    # window (oh, ow) containing (h, w) = (3, 1); column c * 25 + (h - oh) * 5 + (w - ow).
    terms = [-0.53, 0.77, 0.05, 0.03, 0.29, -0.29]
    dcol = np.zeros((9, 75), "float32")
    windows = [(oh, ow) for oh in range(3) for ow in range(2)]
    for (oh, ow), term in zip(windows, terms):
        dcol[oh * 3 + ow, (3 - oh) * 5 + (1 - ow)] = term
    x = np.arange(147, dtype="float32").reshape(1, 3, 7, 7)
    assert all(numpy(im2col(x, 5, 5))[np.nonzero(dcol)] == 22)
    dx = numpy(col2im(dcol, (1, 3, 7, 7), 5, 5))
    assert dx[0, 0, 3, 1] == pytest.approx(0.32, abs=1e-6)
    assert np.count_nonzero(dx) == 1


def test_im2col_bad_input():
    with pytest.raises(ValueError, match=r"im2col expects x of shape \(N, C, H, W\)"):
        im2col(np.zeros((3, 7, 7), "float32"), 3, 3)
    with pytest.raises(ValueError, match="im2col: a 5x5 filter does not fit a 4x4 input"):
        im2col(np.zeros((1, 1, 4, 4), "float32"), 5, 5)
    with pytest.raises(
        ValueError, match=r"col2im expects col of shape \(N \* OH \* OW, C \* FH \* FW\)"
    ):
        col2im(np.zeros((9, 74), "float32"), (1, 3, 7, 7), 5, 5)


# ---------------------------------------------------------------------------------------------------
# Im2ColConv2D


def conv_pair(filters, kernel_size, strides, padding, channels=3, seed=5):
    kwargs = dict(strides=strides, padding=padding)
    reference = keras.layers.Conv2D(filters, kernel_size, **kwargs)
    layer = Im2ColConv2D(filters, kernel_size, **kwargs)
    reference.build((None, None, None, channels))
    layer.build((None, *SHAPE[1:3], channels))  # height and width must be known
    weights = [random(w.shape, seed=seed + i) for i, w in enumerate(reference.get_weights())]
    reference.set_weights(weights)
    layer.set_weights(weights)
    assert [w.shape for w in layer.weights] == [w.shape for w in reference.weights]
    return reference, layer


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("strides", [1, 2])
def test_conv_matches_keras_conv2d(padding, strides):
    # Section 6.1 (c): the same weights give Conv2D's outputs (atol 1e-5).
    reference, layer = conv_pair(4, 3, strides, padding)
    x = random(SHAPE, seed=6)
    want, got = numpy(reference(x)), numpy(layer(x))
    assert got.shape == want.shape == tuple(layer.compute_output_shape(SHAPE))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv_gradients_match_keras_conv2d():
    reference, layer = conv_pair(2, (3, 2), (2, 1), "same")
    x = ops.convert_to_tensor(random(SHAPE, seed=7))
    upstream = ops.convert_to_tensor(random(reference.compute_output_shape(SHAPE), seed=8))

    def gradients(conv):
        _, grads = engine.value_and_grad(
            lambda x: ops.sum(ops.multiply(conv(x), upstream)), [*conv.trainable_variables, x]
        )
        return [numpy(g) for g in grads]

    for got, want in zip(gradients(layer), gradients(reference), strict=True):  # kernel, bias, x
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conv_activation_and_no_bias():
    reference = keras.layers.Conv2D(3, 2, activation="relu", use_bias=False)
    layer = Im2ColConv2D(3, 2, activation="relu", use_bias=False)
    x = random(SHAPE, seed=9)
    reference.build(SHAPE)
    layer.build(SHAPE)
    layer.set_weights(reference.get_weights())
    assert len(layer.weights) == 1
    np.testing.assert_allclose(numpy(layer(x)), numpy(reference(x)), rtol=1e-5, atol=1e-5)
    assert numpy(layer(x)).min() == 0


def test_conv_bad_input_and_arguments():
    with pytest.raises(
        ValueError, match=r"Im2ColConv2D expects input of shape \(batch, height, width, channels\)"
    ):
        Im2ColConv2D(2, 3)(random((2, 9, 8)))
    with pytest.raises(
        ValueError, match=r"Im2ColConv2D expects input .* with height >= 5 and width >= 5"
    ):
        Im2ColConv2D(2, 5)(random((1, 4, 8, 3)))
    with pytest.raises(ValueError, match="Im2ColConv2D expects input of shape .* known height, width"):
        Im2ColConv2D(2, 3, padding="same")(keras.Input((None, None, 3)))
    layer = Im2ColConv2D(2, 3)
    layer(random((1, 5, 5, 3)))
    with pytest.raises(ValueError):  # Built for 3 channels.
        layer(random((1, 5, 5, 4)))
    with pytest.raises(ValueError, match="Im2ColConv2D: padding must be 'valid' or 'same'"):
        Im2ColConv2D(2, 3, padding="full")
    with pytest.raises(ValueError, match="Im2ColConv2D: filters must be a positive int"):
        Im2ColConv2D(0, 3)
    with pytest.raises(ValueError, match="Im2ColConv2D: strides must be a positive int or a pair"):
        Im2ColConv2D(2, 3, strides=(1, 0))


def conv_factory():
    # The shapes of test_conv_matches_keras_conv2d[2-same]: on JAX each new shape is a compile.
    return Im2ColConv2D(4, 3, strides=2, padding="same", bias_initializer="ones")


CONV_INPUTS = random(SHAPE, seed=10)


def test_conv_layer_checks(tmp_path):
    assert Im2ColConv2D.from_config(conv_factory().get_config()).get_config()["strides"] == (2, 2)
    layer_checks.assert_config_round_trip(conv_factory, CONV_INPUTS)
    layer_checks.assert_saved_round_trip(conv_factory, CONV_INPUTS, tmp_path / "c.keras")
    layer_checks.assert_gradients_reach_every_weight(conv_factory, CONV_INPUTS)
    assert_computes_in_bfloat16(conv_factory, CONV_INPUTS, atol=0.1)


def assert_computes_in_bfloat16(factory, inputs, atol):
    """Under mixed_bfloat16 the layer keeps float32 weights, computes in bfloat16 and stays close to
    its float32 outputs. (Cheaper than layer_checks.assert_trains_in_mixed_bfloat16, whose 30
    fit() epochs would take most of this file's time budget.)"""
    reference = factory()
    want = numpy(reference(inputs))
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        layer = factory()
        layer.build(inputs.shape)
        layer.set_weights(reference.get_weights())
        got = layer(inputs)
    finally:
        keras.config.set_dtype_policy(previous)
    assert layer.compute_dtype == "bfloat16" and all(w.dtype == "float32" for w in layer.weights)
    assert keras.backend.standardize_dtype(got.dtype) == "bfloat16"
    got = numpy(ops.cast(got, "float32"))
    np.testing.assert_allclose(got, want, rtol=0.02, atol=atol)


# ---------------------------------------------------------------------------------------------------
# Im2ColMaxPool2D

POOL_CASES = [
    (padding, pool, strides)
    for padding in ("valid", "same")
    for pool, strides in ((2, 2), (3, 1), (3, 2))
]


@pytest.mark.parametrize("padding,pool,strides", POOL_CASES)
def test_pool_matches_keras_max_pooling(padding, pool, strides):
    # Section 6.1 (d): equal to MaxPooling2D; POH = (H - PH) / S + 1 ("valid"), ceil(H / S) ("same").
    x = random(SHAPE, seed=11)
    kwargs = dict(pool_size=pool, strides=strides, padding=padding)
    want = numpy(keras.layers.MaxPooling2D(**kwargs)(x))
    layer = Im2ColMaxPool2D(**kwargs)
    got = numpy(layer(x))
    h, w = SHAPE[1:3]
    if padding == "valid":
        expected = (conv_output_size(h, pool, strides), conv_output_size(w, pool, strides))
        assert expected == ((h - pool) // strides + 1, (w - pool) // strides + 1)
    else:
        expected = (-(-h // strides), -(-w // strides))
    assert got.shape == want.shape == (2, *expected, 3) == tuple(layer.compute_output_shape(SHAPE))
    np.testing.assert_array_equal(got, want)


def test_pool_defaults_and_gradient():
    # strides default to pool_size; the gradient goes to each window's maximum, as MaxPooling2D's.
    layer, reference = Im2ColMaxPool2D(), keras.layers.MaxPooling2D()
    assert layer.strides == (2, 2) == tuple(reference.strides)
    x = ops.convert_to_tensor(random(SHAPE, seed=12))
    upstream = ops.convert_to_tensor(random((2, 4, 4, 3), seed=13))

    def gradient(pool):
        _, (grad,) = engine.value_and_grad(lambda x: ops.sum(ops.multiply(pool(x), upstream)), [x])
        return numpy(grad)

    got = gradient(layer)
    np.testing.assert_array_equal(got, gradient(reference))
    assert np.count_nonzero(got) == 2 * 4 * 4 * 3  # one maximum per window


def test_pool_bad_input():
    with pytest.raises(
        ValueError, match=r"Im2ColMaxPool2D expects input of shape \(batch, height, width, channels\)"
    ):
        Im2ColMaxPool2D(2)(random((9, 8, 3)))
    with pytest.raises(ValueError, match="Im2ColMaxPool2D expects input .* with height >= 3"):
        Im2ColMaxPool2D(3)(random((1, 2, 8, 3)))
    with pytest.raises(ValueError, match="Im2ColMaxPool2D: pool_size must be a positive int"):
        Im2ColMaxPool2D(0)


def pool_factory():
    return Im2ColMaxPool2D(3, strides=2, padding="same")


def test_pool_layer_checks(tmp_path):
    layer_checks.assert_config_round_trip(pool_factory, CONV_INPUTS)
    layer_checks.assert_saved_round_trip(pool_factory, CONV_INPUTS, tmp_path / "p.keras")
    projected = layer_checks.projected(pool_factory, CONV_INPUTS)
    layer_checks.assert_gradients_reach_every_weight(projected, CONV_INPUTS)
    assert_computes_in_bfloat16(pool_factory, CONV_INPUTS, atol=0.02)


def test_layers_in_a_model():
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), Im2ColConv2D(4, 3, padding="same"), Im2ColMaxPool2D(2)]
    )
    assert model.output_shape == (None, 4, 4, 4)
    assert model.count_params() == 3 * 3 * 3 * 4 + 4
