"""SinusoidalTimeEmbedding and TimeResidualBlock (layers.diffusion, D 9.7) against NumPy and a stack
of Keras' built-in layers with the same weights, and the layer checks."""

import keras
import numpy as np
import pytest
from keras import ops

from layers.diffusion import SinusoidalTimeEmbedding, TimeResidualBlock
from tests.layers import layer_checks


def random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


STEPS = np.array([1, 17, 500, 1000], "int32")
IMAGES = random((2, 6, 6, 8), seed=1)
EMBEDDING = random((2, 12), seed=2)
INIT = keras.initializers.RandomNormal(stddev=0.3, seed=3)


def embedding_factory():
    return SinusoidalTimeEmbedding(10)


def block_factory():
    return TimeResidualBlock(16, groups=4, kernel_initializer=INIT)


CROSS_BACKEND_CASES = {
    "sinusoidal_time_embedding": (embedding_factory, STEPS),
    "time_residual_block": (block_factory, [IMAGES, EMBEDDING]),
}


def test_time_embedding_is_sines_then_cosines_of_geometric_frequencies():
    got = ops.convert_to_numpy(embedding_factory()(STEPS))
    frequencies = 10000.0 ** -(np.arange(5) / 5)  # w_i = 10000^(-i / (dim / 2))
    angle = STEPS[:, None].astype("float64") * frequencies
    np.testing.assert_allclose(got, np.concatenate([np.sin(angle), np.cos(angle)], 1), atol=2e-4)
    assert got[0, 0] == pytest.approx(np.sin(1.0), abs=1e-6) and got[0, 5] == pytest.approx(np.cos(1.0))
    # (batch, 1) steps give the same as (batch,).
    np.testing.assert_array_equal(ops.convert_to_numpy(embedding_factory()(STEPS[:, None])), got)


def test_residual_block_equals_keras_built_ins_with_the_same_weights():
    block = block_factory()
    got = ops.convert_to_numpy(block(IMAGES, EMBEDDING))
    assert got.shape == (2, 6, 6, 16)
    # The same computation from Keras' layers, with the block's weights copied in.
    norm1, norm2 = keras.layers.GroupNormalization(4), keras.layers.GroupNormalization(4)
    conv1, conv2 = keras.layers.Conv2D(16, 3, padding="same"), keras.layers.Conv2D(16, 3, padding="same")
    time, shortcut = keras.layers.Dense(16), keras.layers.Conv2D(16, 1)

    def built_ins():
        h = conv1(ops.silu(norm1(IMAGES)))
        h = h + ops.reshape(time(ops.silu(EMBEDDING)), (2, 1, 1, 16))
        return ops.convert_to_numpy(shortcut(IMAGES) + conv2(ops.silu(norm2(h))))

    built_ins()  # builds them
    pairs = [(norm1, block.norm1), (conv1, block.conv1), (time, block.time)]
    pairs += [(norm2, block.norm2), (conv2, block.conv2), (shortcut, block.shortcut)]
    for theirs, ours in pairs:
        theirs.set_weights(ours.get_weights())
    want = built_ins()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # Without a change of width the shortcut is the identity: 10 weights, not 12.
    same = TimeResidualBlock(8, groups=4)
    same(IMAGES, EMBEDDING)
    assert same.shortcut is None and len(same.weights) == 10


def test_bad_shapes_and_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="dim must be an even integer"):
        SinusoidalTimeEmbedding(7)
    with pytest.raises(ValueError, match=r"time steps of shape \(batch,\)"):
        embedding_factory()(np.zeros((2, 3), "int32"))
    with pytest.raises(ValueError, match="must divide filters"):
        TimeResidualBlock(10, groups=4)
    with pytest.raises(ValueError, match="must divide the input channels"):
        TimeResidualBlock(8, groups=8)(random((1, 4, 4, 4)), EMBEDDING[:1])
    with pytest.raises(ValueError, match=r"emb \(batch, E\)"):
        TimeResidualBlock(8, groups=4)(IMAGES, IMAGES)


@pytest.mark.parametrize(
    "factory,inputs", [(embedding_factory, STEPS), (block_factory, [IMAGES, EMBEDDING])]
)
def test_layer_checks(factory, inputs, tmp_path):
    layer_checks.assert_config_round_trip(factory, inputs)
    layer_checks.assert_saved_round_trip(factory, inputs, tmp_path / "model.keras")


def test_gradients_reach_every_weight_of_the_block():
    layer_checks.assert_gradients_reach_every_weight(block_factory, [IMAGES, EMBEDDING])
