"""PatchEmbedding, ClassToken, LearnedPositionalEmbedding (layers.vit, B 5.3.2) against NumPy, the
token counts of the notes, and the layer checks."""

import keras
import numpy as np
import pytest
from keras import ops

from layers.vit import ClassToken, LearnedPositionalEmbedding, PatchEmbedding
from tests.layers import layer_checks


def random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


IMAGES = random((2, 8, 12, 3), seed=1)
TOKENS = random((2, 5, 6), seed=2)


def patch_factory():
    return PatchEmbedding(4, 6, bias_initializer=keras.initializers.RandomNormal(seed=3))


def token_factory():
    return ClassToken()


def position_factory():
    return LearnedPositionalEmbedding()


CROSS_BACKEND_CASES = {
    "patch_embedding": (patch_factory, IMAGES),
    "class_token": (token_factory, TOKENS),
    "learned_positional_embedding": (position_factory, TOKENS),
}


def test_patch_embedding_is_the_projection_of_flattened_patches():
    layer = patch_factory()
    got = ops.convert_to_numpy(layer(IMAGES))
    assert got.shape == (2, 6, 6)  # (8 / 4) x (12 / 4) = 6 patches
    kernel, bias = (ops.convert_to_numpy(w) for w in layer.projection.weights)
    # NumPy: cut (B, 2, 4, 3, 4, C) patches, order them row-major, flatten each (rows, columns,
    # channels) and multiply by the kernel flattened in the same order.
    patches = IMAGES.reshape(2, 2, 4, 3, 4, 3).transpose(0, 1, 3, 2, 4, 5).reshape(2, 6, 48)
    np.testing.assert_allclose(got, patches @ kernel.reshape(48, 6) + bias, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size,patch,tokens", [(224, 16, 197), (28, 7, 17), (28, 4, 50)])
def test_token_counts_of_the_notes(size, patch, tokens):
    # 224 / 16 = 14 -> 196 patches + the class token = 197; MNIST: 16 + 1 and 49 + 1.
    images = keras.Input((size, size, 3 if size == 224 else 1))
    x = LearnedPositionalEmbedding()(ClassToken()(PatchEmbedding(patch, 8)(images)))
    assert tuple(x.shape) == (None, tokens, 8)


def test_class_token_goes_first_and_positions_are_added():
    token = ClassToken()
    got = ops.convert_to_numpy(token(TOKENS))
    value = ops.convert_to_numpy(token.token)[0, 0]
    assert got.shape == (2, 6, 6) and np.abs(value).max() > 0
    np.testing.assert_array_equal(got[:, 0], np.stack([value, value]))
    np.testing.assert_array_equal(got[:, 1:], TOKENS)
    positions = LearnedPositionalEmbedding()
    got = ops.convert_to_numpy(positions(TOKENS))
    np.testing.assert_allclose(got, TOKENS + ops.convert_to_numpy(positions.positions), atol=1e-6)


def test_bad_input_is_refused_in_words():
    with pytest.raises(ValueError, match="multiples of patch_size 5"):
        PatchEmbedding(5, 4)(IMAGES)
    with pytest.raises(ValueError, match="positive int"):
        PatchEmbedding(0, 4)
    with pytest.raises(ValueError, match=r"expected tokens \(batch, T, d\)"):
        ClassToken()(IMAGES)
    positions = LearnedPositionalEmbedding()
    positions(TOKENS)
    with pytest.raises(ValueError, match=r"built for \(batch, 5, 6\) tokens"):
        positions(TOKENS[:, :4])


@pytest.mark.parametrize("name", sorted(CROSS_BACKEND_CASES))
def test_layer_checks(name, tmp_path):
    factory, inputs = CROSS_BACKEND_CASES[name]
    layer_checks.assert_config_round_trip(factory, inputs)
    layer_checks.assert_saved_round_trip(factory, inputs, tmp_path / "m.keras")
    layer_checks.assert_gradients_reach_every_weight(factory, inputs)
    if name == "patch_embedding":  # one mixed-precision check for the module (JAX compiles each)
        layer_checks.assert_trains_in_mixed_bfloat16(factory, inputs)
