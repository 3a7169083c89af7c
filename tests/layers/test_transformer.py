"""PositionalEncoding against the formula; the post-norm blocks against the same blocks composed of
Keras's built-in layers given the same weights; padding and causal masks; the shared layer checks."""

import keras
import numpy as np
import pytest
from keras import ops

from layers.transformer import PositionalEncoding, TransformerDecoderBlock, TransformerEncoderBlock
from tests.layers import layer_checks


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def np_(x):
    return ops.convert_to_numpy(x)


def np_positional_encoding(length, depth):
    table = np.zeros((length, depth))
    for pos in range(length):
        for i in range((depth + 1) // 2):
            table[pos, 2 * i] = np.sin(pos / 10000 ** (2 * i / depth))
            if 2 * i + 1 < depth:
                table[pos, 2 * i + 1] = np.cos(pos / 10000 ** (2 * i / depth))
    return table


@pytest.mark.parametrize("depth", [6, 5, 16])
def test_positional_encoding_values(depth):
    encoding = np_(PositionalEncoding()(np.zeros((2, 50, depth), "float32")))
    np.testing.assert_array_equal(encoding[0], encoding[1])
    np.testing.assert_allclose(encoding[0], np_positional_encoding(50, depth), rtol=0, atol=2e-5)
    # Known values: position 0 is (0, 1, 0, 1, ...); position 1 starts with sin(1), cos(1).
    np.testing.assert_array_equal(encoding[0, 0, 0::2], 0.0)
    np.testing.assert_array_equal(encoding[0, 0, 1::2], 1.0)
    np.testing.assert_allclose(encoding[0, 1, :2], [np.sin(1.0), np.cos(1.0)], rtol=1e-6)
    np.testing.assert_allclose(encoding[0, 10, 2], np.sin(10 / 10000 ** (2 / depth)), rtol=1e-5)


def test_positional_encoding_adds_to_inputs_and_keeps_the_mask():
    x = rand(2, 4, 6, seed=1)
    want = np.broadcast_to(np_positional_encoding(4, 6), x.shape)
    np.testing.assert_allclose(np_(PositionalEncoding()(x)) - x, want, atol=1e-6)
    tokens = np.array([[3, 1, 0, 0], [2, 0, 0, 0]])
    inputs = keras.Input((4,), dtype="int32")
    embedded = keras.layers.Embedding(5, 6, mask_zero=True)(inputs)
    encoded = PositionalEncoding()(embedded)
    model = keras.Model(inputs, TransformerEncoderBlock(2, 8)(encoded))
    assert model(tokens).shape == (2, 4, 6)
    assert encoded._keras_mask is not None


# ---------------------------------------------------------------------------------------------
# Blocks against Keras's layers given the same weights


def keras_copy(layer, *build_shapes):
    layer.build(*build_shapes)
    return layer


def keras_encoder(block, x, mask):
    d_model = x.shape[-1]
    mha = keras_copy(keras.layers.MultiHeadAttention(2, 3), x.shape, x.shape)
    mha.set_weights(block.self_attention.get_weights())
    norms = [keras_copy(keras.layers.LayerNormalization(epsilon=1e-6), x.shape) for _ in range(2)]
    norms[0].set_weights(block.attention_norm.get_weights())
    norms[1].set_weights(block.output_norm.get_weights())
    hidden_dense = keras_copy(keras.layers.Dense(8, "relu"), x.shape)
    hidden_dense.set_weights(block.ff_hidden.get_weights())
    out_dense = keras_copy(keras.layers.Dense(d_model), (*x.shape[:-1], 8))
    out_dense.set_weights(block.ff_output.get_weights())
    h = norms[0](ops.add(x, mha(x, x, value_mask=mask)))
    return norms[1](h + out_dense(hidden_dense(h)))


def keras_decoder(block, y, z, y_mask, z_mask):
    self_mha = keras_copy(keras.layers.MultiHeadAttention(2, 3), y.shape, y.shape)
    self_mha.set_weights(block.self_attention.get_weights())
    cross_mha = keras_copy(keras.layers.MultiHeadAttention(2, 3), y.shape, z.shape)
    cross_mha.set_weights(block.cross_attention.get_weights())
    norms = [keras_copy(keras.layers.LayerNormalization(epsilon=1e-6), y.shape) for _ in range(3)]
    for norm, ours in zip(
        norms, [block.self_attention_norm, block.cross_attention_norm, block.output_norm]
    ):
        norm.set_weights(ours.get_weights())
    hidden_dense = keras_copy(keras.layers.Dense(8, "relu"), y.shape)
    hidden_dense.set_weights(block.ff_hidden.get_weights())
    out_dense = keras_copy(keras.layers.Dense(y.shape[-1]), (*y.shape[:-1], 8))
    out_dense.set_weights(block.ff_output.get_weights())
    h = norms[0](ops.add(y, self_mha(y, y, value_mask=y_mask, use_causal_mask=True)))
    h = norms[1](h + cross_mha(h, z, value_mask=z_mask))
    return norms[2](h + out_dense(hidden_dense(h)))


def randomize(layer, seed):
    rng = np.random.default_rng(seed)
    layer.set_weights(
        [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in layer.get_weights()]
    )


X = rand(2, 5, 6, seed=2)
Z = rand(2, 4, 7, seed=3)
X_MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
Z_MASK = np.array([[1, 1, 0, 0], [1, 0, 1, 1]], bool)


@pytest.mark.parametrize("mask", [None, X_MASK])
def test_encoder_block_equals_keras_layers(mask):
    block = TransformerEncoderBlock(num_heads=2, ff_dim=8)
    block(X)
    randomize(block, 4)
    np.testing.assert_allclose(
        np_(block(X, mask=mask)), np_(keras_encoder(block, X, mask)), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("masks", [(None, None), (X_MASK, Z_MASK)])
def test_decoder_block_equals_keras_layers(masks):
    block = TransformerDecoderBlock(num_heads=2, ff_dim=8, key_dim=3)
    block(X, Z)
    randomize(block, 5)
    got = block(X, Z, inputs_mask=masks[0], encoder_outputs_mask=masks[1])
    np.testing.assert_allclose(np_(got), np_(keras_decoder(block, X, Z, *masks)), rtol=1e-5, atol=1e-5)


def test_encoder_padding_mask_hides_padded_tokens():
    block = TransformerEncoderBlock(num_heads=2, ff_dim=8)
    changed = X.copy()
    changed[~X_MASK] = rand(int((~X_MASK).sum()), 6, seed=6)
    before, after = np_(block(X, mask=X_MASK)), np_(block(changed, mask=X_MASK))
    np.testing.assert_allclose(after[X_MASK], before[X_MASK], rtol=1e-5, atol=1e-6)
    assert not np.allclose(np_(block(changed))[X_MASK], np_(block(X))[X_MASK])


def test_decoder_is_causal_and_ignores_padded_encoder_outputs():
    block = TransformerDecoderBlock(num_heads=2, ff_dim=8)
    reference = np_(block(X, Z, encoder_outputs_mask=Z_MASK))
    for t in range(5):
        changed = X.copy()
        changed[:, t + 1 :] = rand(2, 4 - t, 6, seed=7 + t)
        after = np_(block(changed, Z, encoder_outputs_mask=Z_MASK))
        np.testing.assert_allclose(after[:, : t + 1], reference[:, : t + 1], rtol=1e-5, atol=1e-6)
    changed_z = Z.copy()
    changed_z[~Z_MASK] = rand(int((~Z_MASK).sum()), 7, seed=20)
    after = np_(block(X, changed_z, encoder_outputs_mask=Z_MASK))
    np.testing.assert_allclose(after, reference, rtol=1e-5, atol=1e-6)
    # Without the causal mask, early positions see later ones.
    assert not np.allclose(np_(block(X, Z, use_causal_mask=False)), np_(block(X, Z)))


def test_decoder_returns_the_encoder_decoder_attention_weights():
    block = TransformerDecoderBlock(num_heads=2, ff_dim=8)
    outputs, weights = block(X, Z, encoder_outputs_mask=Z_MASK, return_attention_scores=True)
    np.testing.assert_allclose(np_(outputs), np_(block(X, Z, encoder_outputs_mask=Z_MASK)), atol=1e-6)
    weights = np_(weights)
    assert weights.shape == (X.shape[0], 2, X.shape[1], Z.shape[1])
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-5)
    assert np.all(weights[np.broadcast_to(~Z_MASK[:, None, None, :], weights.shape)] == 0)  # padding


def test_dropout_uses_seed_generators():
    block = TransformerEncoderBlock(num_heads=2, ff_dim=8, dropout=0.3, seed=1)
    inference = np_(block(X))
    np.testing.assert_array_equal(np_(block(X)), inference)
    first, second = np_(block(X, training=True)), np_(block(X, training=True))
    assert not np.allclose(first, inference) and not np.allclose(first, second)
    assert any("seed_generator" in v.path for v in block.variables)


# ---------------------------------------------------------------------------------------------
# Bad input

BAD_INPUTS = [
    ("PositionalEncoding", lambda: PositionalEncoding()(X[0])),
    ("TransformerEncoderBlock", lambda: TransformerEncoderBlock(2, 8)(X[0])),
    ("TransformerEncoderBlock", lambda: TransformerEncoderBlock(4, 8)(X)),
    ("TransformerEncoderBlock", lambda: TransformerEncoderBlock(2, 0)),
    ("TransformerDecoderBlock", lambda: TransformerDecoderBlock(2, 8)(X, Z[0])),
    ("TransformerDecoderBlock", lambda: TransformerDecoderBlock(2, 8)(X[:1], Z)),
]


@pytest.mark.parametrize("index", range(len(BAD_INPUTS)))
def test_bad_input_raises_a_value_error_naming_the_layer(index):
    name, make = BAD_INPUTS[index]
    with pytest.raises(ValueError, match=f"{name}: ") as error:
        make()
    if "shape" in str(error.value):
        assert "(batch" in str(error.value) or "S," in str(error.value), str(error.value)


def test_shapes_after_build_are_enforced():
    encoder = TransformerEncoderBlock(2, 8)
    encoder(X)
    with pytest.raises(ValueError, match=r"TransformerEncoderBlock: .*\(batch, T, 6\)"):
        encoder(rand(2, 5, 4))
    decoder = TransformerDecoderBlock(2, 8)
    decoder(X, Z)
    with pytest.raises(
        ValueError, match=r"TransformerDecoderBlock: `encoder_outputs` .*\(batch, T, 7\)"
    ):
        decoder(X, rand(2, 4, 5))


# ---------------------------------------------------------------------------------------------
# Shared layer checks


@keras.saving.register_keras_serializable(package="tests_transformer")
def positional_encoding_factory():
    return PositionalEncoding()


def encoder_factory():
    return TransformerEncoderBlock(
        num_heads=2, ff_dim=8, kernel_initializer=keras.initializers.GlorotUniform(seed=52)
    )


def decoder_factory():
    return TransformerDecoderBlock(
        num_heads=2, ff_dim=8, key_dim=4, kernel_initializer=keras.initializers.GlorotUniform(seed=53)
    )


CROSS_BACKEND_CASES = {
    "positional_encoding": (positional_encoding_factory, X),
    "transformer_encoder_block": (encoder_factory, X),
    "transformer_decoder_block": (decoder_factory, [X, Z]),
}

LAYER_CHECKS = {
    # PositionalEncoding has no weights: the checks reach through it into a Dense before it.
    "positional_encoding": (
        positional_encoding_factory,
        X,
        layer_checks.projected(positional_encoding_factory, X),
    ),
    "encoder": (encoder_factory, X, encoder_factory),
    "decoder": (decoder_factory, [X, Z], decoder_factory),
}


@pytest.mark.parametrize("name", sorted(LAYER_CHECKS))
def test_layer_checks(name, tmp_path):
    factory, inputs, trainable_factory = LAYER_CHECKS[name]
    layer_checks.assert_config_round_trip(factory, inputs)
    layer_checks.assert_saved_round_trip(factory, inputs, tmp_path / "m.keras")
    layer_checks.assert_gradients_reach_every_weight(trainable_factory, inputs)
    layer_checks.assert_trains_in_mixed_bfloat16(trainable_factory, inputs)
