"""UNetDown, UNetUp and PatchGAN (A 9.11): shapes, the 70x70 receptive field,
equality with the same Keras layers composed by hand, and the shared layer checks."""

import keras
import numpy as np
import pytest
from keras import ops

from layers.pix2pix import PatchGAN, UNetDown, UNetUp
from recipes import engine
from tests.layers import layer_checks


def random_array(shape, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).uniform(-1, 1, shape)).astype("float32")


def random_weights(layer, seed=0):
    """Random weights for `layer`: kernels N(0, 0.3); vectors (biases, gamma, beta, moving mean and
    variance) uniform in [0.5, 1.5], so that every batch norm in inference mode does something."""
    rng = np.random.default_rng(seed)
    return [
        (0.3 * rng.standard_normal(w.shape) if w.ndim > 1 else rng.uniform(0.5, 1.5, w.shape)).astype(
            "float32"
        )
        for w in layer.get_weights()
    ]


def numpy_outputs(fn, *args, **kwargs):
    return ops.convert_to_numpy(fn(*args, **kwargs))


def batch_norm():
    return keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5)


# --- PatchGAN -------------------------------------------------------------------------------


def test_patchgan_maps_256_pair_to_30x30_logits():
    layer = PatchGAN(filters=2, seed=0)
    x, y = random_array((2, 256, 256, 3), 1), random_array((2, 256, 256, 3), 2)
    out = numpy_outputs(layer, x, y)
    assert out.shape == (2, 30, 30, 1)
    assert np.all(np.isfinite(out)) and np.std(out) > 0
    assert tuple(layer.compute_output_shape(x.shape, y.shape)) == (2, 30, 30, 1)
    assert tuple(layer.compute_output_shape((None, 128, 64, 3), (None, 128, 64, 1))) == (
        None,
        14,
        6,
        1,
    )


def test_patchgan_parameter_count_at_pix2pix_width():
    layer = PatchGAN()  # filters=64, a (3 + 3)-channel pair; building allocates no activations.
    layer.build((None, 256, 256, 3), (None, 256, 256, 3))
    # C64 6*16*64 + 64; C128 64*16*128 + 2*128; C256 128*16*256 + 2*256; C512 256*16*512 + 2*512;
    # logits 512*16 + 1 (trainable), plus the moving mean and variance of the three batch norms.
    trainable = 6208 + 131328 + 524800 + 2098176 + 8193
    assert sum(int(np.prod(w.shape)) for w in layer.trainable_weights) == trainable
    assert layer.count_params() == trainable + 2 * (128 + 256 + 512) == 2_770_497
    # The notes' 2,771,393 also counts a (redundant) bias in each of the three batch-normed convs.
    assert layer.count_params() + 128 + 256 + 512 == 2_771_393


def positive_patchgan(size=128):
    """A PatchGAN with positive kernels, zero biases and identity batch norms: every path from an
    input pixel to an output carries a positive weight, so each pixel inside an output's field
    changes it, and an all-zero input gives all-zero outputs."""
    layer = PatchGAN(filters=2)
    layer.build((None, size, size, 3), (None, size, size, 3))
    rng = np.random.default_rng(0)
    for w in layer.weights:
        if "kernel" in w.path:
            w.assign(rng.uniform(0.5, 1.5, w.shape).astype("float32"))
        elif w.path.endswith(("gamma", "moving_variance")):
            w.assign(np.ones(w.shape, "float32"))
        else:
            w.assign(np.zeros(w.shape, "float32"))
    return layer


# Output (7, 7) of a 128x128 pair (a 14x14 output map) sees rows and columns 8*7 - 23 = 33 to
# 8*7 + 46 = 102: a 70x70 field.
OUT, LO, HI = 7, 33, 102


def test_patchgan_receptive_field_is_70x70():
    layer = positive_patchgan()
    inside = [(LO, LO), (LO, HI), (HI, LO), (HI, HI), (60, 70)]
    outside = [(LO - 1, 60), (HI + 1, 60), (60, LO - 1), (60, HI + 1), (0, 0), (127, 127)]
    pixels = [(which, r, c) for which in (0, 1) for r, c in inside + outside]
    x = np.zeros((1 + len(pixels), 128, 128, 3), "float32")
    y = np.zeros_like(x)
    for k, (which, r, c) in enumerate(pixels, start=1):
        (x, y)[which][k, r, c, 0] = 1.0  # One pixel, in the input image or in the target.
    out = numpy_outputs(layer, x, y)
    assert out.shape == (len(x), 14, 14, 1)
    change = np.abs(out[:, OUT, OUT, 0] - out[0, OUT, OUT, 0])
    changed = change > 1e-3
    expected = [(r, c) in inside for _, r, c in pixels]
    assert np.all(changed[1:] == np.array(expected)), (pixels, change[1:])
    assert np.all(change[1:][np.logical_not(expected)] <= 1e-6)
    assert np.min(change[1:][np.array(expected)]) > 1e-2


def test_patchgan_gradient_support_is_the_70x70_window():
    layer = positive_patchgan()
    x, y = random_array((1, 128, 128, 3), 1, 0.5) + 0.5, random_array((1, 128, 128, 3), 2, 0.5) + 0.5

    def output_at_patch(x, y):
        return layer(x, y)[0, OUT, OUT, 0]

    _, grads = engine.value_and_grad(
        output_at_patch, [ops.convert_to_tensor(x), ops.convert_to_tensor(y)]
    )
    for grad in grads:
        support = np.abs(ops.convert_to_numpy(grad)[0]) > 1e-6 * np.abs(ops.convert_to_numpy(grad)).max()
        rows, cols, _ = np.nonzero(support)
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (LO, HI, LO, HI)
        assert support.sum() == 70 * 70 * 3


# --- UNetDown / UNetUp against the same Keras layers ----------------------------------------


@pytest.mark.parametrize("apply_batchnorm", [True, False])
def test_unet_down_equals_keras_layers(apply_batchnorm):
    layer = UNetDown(4, apply_batchnorm=apply_batchnorm)
    reference = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(4, 4, strides=2, padding="same", use_bias=not apply_batchnorm),
            *([batch_norm()] if apply_batchnorm else []),
            keras.layers.LeakyReLU(negative_slope=0.2),
        ]
    )
    x = random_array((2, 8, 8, 3), 1)
    layer.build(x.shape)
    assert [w.shape for w in layer.weights] == [w.shape for w in reference.weights]
    weights = random_weights(layer)
    layer.set_weights(weights)
    reference.set_weights(weights)
    for training in (False, True):
        want = numpy_outputs(reference, x, training=training)
        got = numpy_outputs(layer, x, training=training)
        assert got.shape == (2, 4, 4, 4)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # Training mode updated the batch norm's moving statistics the same way.
    for got, want in zip(layer.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert tuple(layer.compute_output_shape((None, 8, 8, 3))) == (None, 4, 4, 4)


def unet_up_reference(filters, in_shape, skip_shape):
    """Conv2DTranspose -> BatchNorm -> ReLU, concatenated with the skip, as a functional model."""
    x, skip = keras.Input(in_shape), keras.Input(skip_shape)
    up = keras.layers.Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=False)(x)
    up = keras.layers.ReLU()(batch_norm()(up))
    return keras.Model([x, skip], keras.layers.Concatenate()([up, skip]))


@pytest.mark.parametrize(
    "apply_dropout,matmul,size", [(False, False, 4), (True, False, 4), (False, True, 2)]
)
def test_unet_up_equals_keras_layers_and_concatenates_skip(apply_dropout, matmul, size):
    """Also with `matmul=True` (the U-Net's bottleneck blocks: one matrix product, same outputs)."""
    layer = UNetUp(3, apply_dropout=apply_dropout, seed=5, matmul=matmul)
    x, skip = random_array((2, size, size, 6), 1), random_array((2, 2 * size, 2 * size, 2), 2)
    reference = unet_up_reference(3, x.shape[1:], skip.shape[1:])
    layer.build(x.shape, skip.shape)
    weights = random_weights(layer)
    layer.set_weights(weights)
    reference.set_weights(weights)

    got = numpy_outputs(layer, x, skip)  # Inference: dropout is the identity.
    want = numpy_outputs(reference, [x, skip])
    assert got.shape == (2, 2 * size, 2 * size, 5)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got[..., 3:], skip)  # The skip, concatenated unchanged.
    assert tuple(layer.compute_output_shape(x.shape, skip.shape)) == (2, 2 * size, 2 * size, 5)

    got = numpy_outputs(layer, x, skip, training=True)
    want = numpy_outputs(reference, [x, skip], training=True)
    np.testing.assert_array_equal(got[..., 3:], skip)
    if not apply_dropout:
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    else:
        # Dropout(0.5) before the ReLU: each unit is either dropped (0) or doubled.
        up, ref = got[..., :3], want[..., :3]
        dropped = np.isclose(up, 0.0, atol=1e-6)
        np.testing.assert_allclose(up[~dropped], 2 * ref[~dropped], rtol=1e-4, atol=1e-5)
        fraction = dropped[ref > 1e-3].mean()
        assert 0.3 < fraction < 0.7, fraction


# --- Bad input --------------------------------------------------------------------------------


def test_bad_input_raises_value_error_naming_layer_and_shape():
    with pytest.raises(ValueError, match=r"UNetDown: expected inputs of shape .*even"):
        UNetDown(2)(np.zeros((1, 7, 8, 3), "float32"))
    with pytest.raises(ValueError, match=r"UNetDown: expected inputs of shape \(batch"):
        UNetDown(2)(np.zeros((8, 8, 3), "float32"))
    with pytest.raises(ValueError, match=r"UNetUp: expected skip of shape \(batch, 8, 8"):
        UNetUp(2)(np.zeros((1, 4, 4, 3), "float32"), np.zeros((1, 6, 8, 2), "float32"))
    with pytest.raises(ValueError, match=r"PatchGAN: inputs and target must have the same"):
        PatchGAN(2)(np.zeros((1, 32, 32, 3), "float32"), np.zeros((1, 64, 64, 3), "float32"))
    with pytest.raises(ValueError, match=r"PatchGAN: expected inputs of shape .*multiples of 8"):
        PatchGAN(2)(np.zeros((1, 36, 36, 3), "float32"), np.zeros((1, 36, 36, 3), "float32"))
    with pytest.raises(ValueError, match=r"PatchGAN: expected inputs of shape .*>= 24"):
        PatchGAN(2)(np.zeros((1, 16, 16, 3), "float32"), np.zeros((1, 16, 16, 3), "float32"))
    with pytest.raises(ValueError, match=r"PatchGAN: expected .*shapes"):
        PatchGAN(2).compute_output_shape((None, 30, 32, 3), (None, 30, 32, 3))


# --- Shared layer checks ------------------------------------------------------------------------


def patchgan_factory():
    return PatchGAN(filters=2, seed=1)


def unet_down_factory():  # A non-default initializer goes through the config and the .keras file.
    return UNetDown(4, seed=2, kernel_initializer=keras.initializers.HeNormal(seed=2))


def unet_up_factory():
    # Dropout is only active in training mode; every comparison below runs in inference mode.
    return UNetUp(4, apply_dropout=True, seed=3)


PATCHGAN_INPUTS = [random_array((2, 32, 32, 3), 10), random_array((2, 32, 32, 3), 11)]
UNET_DOWN_INPUTS = random_array((2, 8, 8, 3), 12)
# The skip passes through unchanged, so training cannot halve it: keep it small, so that the
# mixed-precision check's target (half the outputs) is reachable through the upsampled part.
UNET_UP_INPUTS = [random_array((2, 4, 4, 6), 13), random_array((2, 8, 8, 2), 14, scale=0.1)]

CROSS_BACKEND_CASES = {
    "patchgan": (patchgan_factory, PATCHGAN_INPUTS),
    "unet_down": (unet_down_factory, UNET_DOWN_INPUTS),
    "unet_up": (unet_up_factory, UNET_UP_INPUTS),
}


def unet_up_without_dropout():
    return UNetUp(4, seed=3)


# Batch norm: `fit` trains in training mode, so the mixed-precision check measures in that mode,
# with dropout left out so that the measured loss is deterministic.
TRAINING_MODE_FACTORIES = {"unet_up": unet_up_without_dropout}


@pytest.mark.parametrize("name", sorted(CROSS_BACKEND_CASES))
def test_layer_checks(name, tmp_path):
    factory, inputs = CROSS_BACKEND_CASES[name]
    layer_checks.assert_config_round_trip(factory, inputs)
    layer_checks.assert_saved_round_trip(factory, inputs, tmp_path / "m.keras")
    layer_checks.assert_gradients_reach_every_weight(factory, inputs)
    layer_checks.assert_gradients_reach_every_weight(factory, inputs, training=True)
    factory = TRAINING_MODE_FACTORIES.get(name, factory)
    layer_checks.assert_trains_in_mixed_bfloat16(factory, inputs, training=True)


def unet_up_matmul_factory():
    return UNetUp(4, seed=3, matmul=True)


UNET_UP_MATMUL_INPUTS = [random_array((2, 2, 2, 6), 15), random_array((2, 4, 4, 2), 16, scale=0.1)]


def test_unet_up_matmul_layer_checks(tmp_path):
    """The `matmul` option goes through the config and the .keras file; gradients reach G's kernel."""
    factory, inputs = unet_up_matmul_factory, UNET_UP_MATMUL_INPUTS
    assert factory().get_config()["matmul"] is True
    layer_checks.assert_config_round_trip(factory, inputs)
    layer_checks.assert_saved_round_trip(factory, inputs, tmp_path / "m.keras")
    layer_checks.assert_gradients_reach_every_weight(factory, inputs, training=True)
