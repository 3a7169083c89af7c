"""GramMatrix and VGGFeatures (layers.style) against NumPy and keras.applications.VGG19."""

import keras
import numpy as np
import pytest
from keras import ops

from layers.style import VGG19_LAYER_NAMES, GramMatrix, VGGFeatures
from tests.layers import layer_checks


def random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def numpy(x):
    return ops.convert_to_numpy(x)


# ---------------------------------------------------------------------------------------------------
# GramMatrix


def test_gram_of_known_tensor():
    # A 9.8: Gram(arange(8).reshape(1, 2, 2, 2)) = [[56, 68], [68, 84]].
    x = np.arange(8, dtype="float32").reshape(1, 2, 2, 2)
    np.testing.assert_array_equal(numpy(GramMatrix(normalize=False)(x)), [[[56, 68], [68, 84]]])
    np.testing.assert_array_equal(numpy(GramMatrix()(x)), [[[56, 68], [68, 84]]])  # The notes' default.
    np.testing.assert_array_equal(numpy(GramMatrix(normalize=True)(x)), [[[14, 17], [17, 21]]])


@pytest.mark.parametrize("normalize", [False, True])
def test_gram_matches_numpy(normalize):
    x = random((2, 3, 4, 5), seed=1)
    features = x.reshape(2, 12, 5)
    expected = np.einsum("bpc,bpd->bcd", features, features) / (12 if normalize else 1)
    layer = GramMatrix(normalize=normalize)
    got = numpy(layer(x))
    assert got.shape == (2, 5, 5) == tuple(layer.compute_output_shape(x.shape))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_gram_symbolic_float32_output_and_bad_input():
    out = GramMatrix()(keras.Input((None, None, 7), dtype="bfloat16"))
    assert out.shape == (None, 7, 7) and out.dtype == "float32"
    with pytest.raises(ValueError, match=r"GramMatrix expects features of shape \(batch, height, width"):
        GramMatrix()(random((2, 3, 4)))


def test_gram_with_region():
    x = random((2, 3, 4, 5), seed=6)
    region = (np.random.default_rng(7).random((2, 3, 4)) > 0.5).astype("float32")
    masked = (x * region[..., None]).reshape(2, 12, 5)
    expected = np.einsum("bpc,bpd->bcd", masked, masked) / 12
    layer = GramMatrix(normalize=True)
    np.testing.assert_allclose(numpy(layer(x, region=region)), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(numpy(layer(x, region=region[..., None])), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(numpy(layer(x, region=np.ones_like(region))), numpy(layer(x)), rtol=1e-6)
    features, mask = keras.Input((3, 4, 5)), keras.Input((3, 4))
    assert layer(features, region=mask).shape == (None, 5, 5)
    with pytest.raises(
        ValueError, match=r"GramMatrix expects a region of shape \(batch, height, width\)"
    ):
        layer(x, region=region[:, :2])


def gram_factory():
    return GramMatrix(normalize=True)


GRAM_INPUTS = random((2, 3, 3, 4), seed=2)


def test_gram_layer_checks(tmp_path):
    layer_checks.assert_config_round_trip(gram_factory, GRAM_INPUTS)
    layer_checks.assert_saved_round_trip(gram_factory, GRAM_INPUTS, tmp_path / "m.keras")
    layer_checks.assert_trains_in_mixed_bfloat16(gram_factory, GRAM_INPUTS, wrap=True)


# ---------------------------------------------------------------------------------------------------
# VGGFeatures

EXPECTED_64 = {  # (height, width, channels) of each VGG19 layer for a 64x64 input.
    **{f"block1_conv{i}": (64, 64, 64) for i in (1, 2)},
    "block1_pool": (32, 32, 64),
    **{f"block2_conv{i}": (32, 32, 128) for i in (1, 2)},
    "block2_pool": (16, 16, 128),
    **{f"block3_conv{i}": (16, 16, 256) for i in range(1, 5)},
    "block3_pool": (8, 8, 256),
    **{f"block4_conv{i}": (8, 8, 512) for i in range(1, 5)},
    "block4_pool": (4, 4, 512),
    **{f"block5_conv{i}": (4, 4, 512) for i in range(1, 5)},
    "block5_pool": (2, 2, 512),
}


@pytest.fixture(scope="module")
def vgg19():
    """keras.applications.VGG19 without weights (no network), and its intermediate outputs."""
    model = keras.applications.VGG19(weights=None, include_top=False, input_shape=(64, 64, 3))
    outputs = keras.Model(model.input, {n: model.get_layer(n).output for n in VGG19_LAYER_NAMES})
    return model, outputs


IMAGE = random((1, 64, 64, 3), seed=3)


def test_vgg_features_equal_keras_vgg19(vgg19):
    model, intermediate = vgg19
    assert sorted(EXPECTED_64) == sorted(VGG19_LAYER_NAMES)
    features = VGGFeatures(VGG19_LAYER_NAMES)
    got = features(IMAGE)
    assert list(got) == list(VGG19_LAYER_NAMES)
    for name, shape in EXPECTED_64.items():
        assert tuple(got[name].shape) == (1, *shape), name
    assert features.compute_output_shape((None, 64, 64, 3)) == {
        n: (None, *s) for n, s in EXPECTED_64.items()
    }
    assert [tuple(w.shape) for w in features.weights] == [tuple(w.shape) for w in model.weights]

    features.copy_weights_from(model)
    got, want = features(IMAGE), intermediate(IMAGE)
    for name in VGG19_LAYER_NAMES:
        w = numpy(want[name])
        assert np.abs(w).max() > 0, name  # Not a dead ReLU layer.
        np.testing.assert_allclose(numpy(got[name]), w, rtol=1e-4, atol=1e-4 * np.abs(w).max())


def test_avg_pooling_differs_only_in_pooling(vgg19):
    model, _ = vgg19
    names = ["block1_conv2", "block1_pool", "block2_conv1"]
    avg = VGGFeatures(names, pooling="avg", output_format="list")
    top = VGGFeatures(names, pooling="max", output_format="list")
    avg.build(IMAGE.shape)
    top.build(IMAGE.shape)
    avg.copy_weights_from(model)
    top.copy_weights_from(model)
    (conv_a, pool_a, next_a), (conv_m, pool_m, next_m) = map(numpy, avg(IMAGE)), map(numpy, top(IMAGE))

    np.testing.assert_array_equal(conv_a, conv_m)  # Same convolutions before the first pool.
    blocks = conv_a.reshape(1, 32, 2, 32, 2, 64)
    np.testing.assert_allclose(pool_a, blocks.mean(axis=(2, 4)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pool_m, blocks.max(axis=(2, 4)), rtol=1e-5, atol=1e-6)
    assert np.abs(pool_a - pool_m).max() > 1e-3
    # The next convolution is VGG19's own block2_conv1, applied to the average-pooled maps.
    reference = numpy(model.get_layer("block2_conv1")(keras.layers.AveragePooling2D(2)(conv_a)))
    np.testing.assert_allclose(next_a, reference, rtol=1e-4, atol=1e-5)
    reference = numpy(model.get_layer("block2_conv1")(keras.layers.MaxPooling2D(2)(conv_m)))
    np.testing.assert_allclose(next_m, reference, rtol=1e-4, atol=1e-5)


def test_imagenet_weights_are_copied_from_keras_vgg19(vgg19, monkeypatch):
    model, _ = vgg19
    calls = []

    def fake_vgg19(**kwargs):  # Stands in for the download.
        calls.append(kwargs)
        return model

    monkeypatch.setattr(keras.applications, "VGG19", fake_vgg19)
    features = VGGFeatures(["block1_conv2"], weights="imagenet")
    features(IMAGE[:, :8, :8])
    assert calls == [{"weights": "imagenet", "include_top": False}]
    for got, want in zip(features.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(got, want)
    assert features.get_config()["weights"] is None  # Weights are state, not configuration.


def test_pool_padding_same_rounds_up():
    x = random((1, 10, 7, 3), seed=4)
    for padding, expected in [("valid", [(5, 3), (2, 1)]), ("same", [(5, 4), (3, 2)])]:
        layer = VGGFeatures(["block1_pool", "block2_pool"], pool_padding=padding, output_format="list")
        got = [tuple(o.shape[1:3]) for o in layer(x)]
        assert got == expected, padding
        assert [s[1:3] for s in layer.compute_output_shape(x.shape)] == expected
    symbolic = VGGFeatures(["block2_pool"])(keras.Input((None, None, 3)))
    assert symbolic["block2_pool"].shape == (None, None, None, 128)


def test_vgg_features_bad_input_and_arguments():
    layer = VGGFeatures(["block1_conv1"])
    with pytest.raises(
        ValueError, match=r"VGGFeatures expects images of shape \(batch, height, width, 3\)"
    ):
        layer(random((1, 8, 8, 4)))
    with pytest.raises(ValueError, match=r"VGGFeatures expects images of shape"):
        layer(random((8, 8, 3)))
    with pytest.raises(ValueError, match="VGGFeatures: layer_names must be"):
        VGGFeatures(["conv1_1"])
    with pytest.raises(ValueError, match="VGGFeatures: pooling must be one of"):
        VGGFeatures(pooling="min")


def vgg_factory():
    """A two-convolution VGGFeatures (small enough for the cross-backend .keras file)."""
    return VGGFeatures(["block1_conv1", "block1_pool"], pooling="avg", output_format="list")


VGG_INPUTS = random((2, 8, 8, 3), seed=5)


def test_vgg_features_layer_checks(tmp_path):
    layer_checks.assert_config_round_trip(vgg_factory, VGG_INPUTS)
    layer_checks.assert_saved_round_trip(vgg_factory, VGG_INPUTS, tmp_path / "m.keras")
    layer_checks.assert_gradients_reach_every_weight(vgg_factory, VGG_INPUTS)
    layer_checks.assert_trains_in_mixed_bfloat16(vgg_factory, VGG_INPUTS)


CROSS_BACKEND_CASES = {
    "gram_matrix": (gram_factory, GRAM_INPUTS),
    "vgg_features": (vgg_factory, VGG_INPUTS),
}
