"""engine.kernels: the Transformer blocks and the decoder-step layers in torch's own ops equal the
layers (outputs and gradients, 1e-5), and the layers themselves run wherever the kernels do not apply."""

import keras
import numpy as np
import pytest
from keras import ops

from layers import TransformerDecoderBlock, TransformerEncoderBlock
from recipes import engine
from recipes.engine import kernels
from tests.conftest import BACKEND

RNG = np.random.default_rng(0)
X = RNG.standard_normal((3, 5, 8)).astype("float32")
Z = RNG.standard_normal((3, 4, 8)).astype("float32")
# Right-padded, full, and one row with every position masked (zero weights, as the layers give).
X_MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], bool)
Z_MASK = np.array([[1, 1, 0, 0], [1, 0, 1, 1], [0, 0, 0, 0]], bool)
# Every row with a key to attend to: the attention whose weights are not returned is torch's fused one.
KEYED = {"x": X_MASK | (np.arange(5) == 0), "z": Z_MASK | (np.arange(4) == 3)}


def _randomized(block, *shapes):
    block.build(*shapes)
    rng = np.random.default_rng(1)
    block.set_weights([rng.normal(size=w.shape).astype("float32") * 0.5 for w in block.get_weights()])
    return block


def _weighted_sum(x):
    return ops.sum(x * ops.reshape(ops.cos(ops.arange(ops.size(x), dtype="float32")), x.shape))


def _outputs_and_grads(run, block, *inputs):
    """Outputs, then the gradients of a weighted sum of them w.r.t. the weights and the inputs."""
    tensors = [ops.convert_to_tensor(x) for x in inputs]

    def loss(*tensors):
        return sum(_weighted_sum(out) for out in run(*tensors))

    value, grads = engine.value_and_grad(loss, [*block.trainable_variables, *tensors])
    outputs = [ops.convert_to_numpy(out) for out in run(*tensors)]
    return [float(value), *outputs, *(ops.convert_to_numpy(g) for g in grads)]


def _assert_close(got, want):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(BACKEND != "torch", reason="elsewhere the kernels are the blocks themselves")
@pytest.mark.parametrize("mask", [None, X_MASK, KEYED["x"]])
def test_encoder_kernel_equals_the_block(mask):
    block = _randomized(TransformerEncoderBlock(num_heads=2, ff_dim=16), X.shape)
    x = ops.convert_to_tensor(X)
    assert kernels._fused(block, True, x)
    _assert_close(
        _outputs_and_grads(lambda x: [kernels.encoder_block(block, x, mask, True)], block, X),
        _outputs_and_grads(lambda x: [block(x, mask=mask, training=True)], block, X),
    )


@pytest.mark.skipif(BACKEND != "torch", reason="elsewhere the kernels are the blocks themselves")
@pytest.mark.parametrize("mask, weights", [(None, True), (Z_MASK, True), (KEYED["z"], False)])
def test_decoder_kernel_equals_the_block(mask, weights):
    block = _randomized(TransformerDecoderBlock(num_heads=2, ff_dim=16), X.shape, Z.shape)

    def kernel(y, z):
        outputs, attention_weights = kernels.decoder_block(block, y, z, mask, True, weights)
        assert (attention_weights is None) != weights
        return [outputs, attention_weights] if weights else [outputs]

    def layer(y, z):
        outputs = block(y, z, encoder_outputs_mask=mask, return_attention_scores=True, training=True)
        return outputs if weights else outputs[:1]

    _assert_close(_outputs_and_grads(kernel, block, X, Z), _outputs_and_grads(layer, block, X, Z))


def test_the_block_runs_where_the_kernel_does_not_apply():
    def dropout_block():  # seeded: two of them draw the same dropout masks
        return _randomized(TransformerEncoderBlock(2, 16, dropout=0.1, seed=7), X.shape)

    block, x = dropout_block(), ops.convert_to_tensor(X)
    assert kernels._fused(block, False, x) == (BACKEND == "torch")
    assert not kernels._fused(block, True, x)  # dropout while training: the block's own dropout
    masked = keras.layers.Embedding(5, 8, mask_zero=True)(np.array([[1, 2, 0, 0, 0]]))
    assert not kernels._fused(block, False, masked)  # a Keras mask: the block fills query_mask
    keras.config.set_dtype_policy("mixed_float16")
    try:
        mixed = _randomized(TransformerEncoderBlock(num_heads=2, ff_dim=16), X.shape)
    finally:
        keras.config.set_dtype_policy("float32")
    assert not kernels._fused(mixed, False, x)
    # There the kernel's result is the block's, dropout masks included.
    np.testing.assert_array_equal(
        ops.convert_to_numpy(kernels.encoder_block(block, x, X_MASK, True)),
        ops.convert_to_numpy(dropout_block()(x, mask=X_MASK, training=True)),
    )


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concatenate_and_stack_equal_numpy(axis):
    arrays = [RNG.standard_normal((2, 3)).astype("float32") for _ in range(3)]
    tensors = [ops.convert_to_tensor(a) for a in arrays]
    for fast, reference in ((kernels.stack, np.stack), (kernels.concatenate, np.concatenate)):
        got = ops.convert_to_numpy(fast(tensors, axis))
        np.testing.assert_array_equal(got, reference(arrays, axis))


@pytest.mark.parametrize("ignored", ["some", "all"])
def test_masked_crossentropy_equals_keras(ignored):
    logits = RNG.standard_normal((3, 4, 6)).astype("float32")
    target = RNG.integers(0, 6, size=(3, 4)).astype("int32")
    target[0, 2:] = 0
    if ignored == "all":
        target[:] = 0
    fast = kernels.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    y_true, y_pred = ops.convert_to_tensor(target), ops.convert_to_tensor(logits)
    assert fast._fused(y_true, y_pred, None) == (BACKEND == "torch")

    def value_and_grads(loss):
        return engine.value_and_grad(lambda y: loss(y_true, y), [y_pred])

    (value, (grad,)), (expected, (expected_grad,)) = map(value_and_grads, (fast, keras_loss))
    assert float(expected) > 0 if ignored == "some" else float(expected) == 0
    np.testing.assert_allclose(float(value), float(expected), rtol=1e-6)
    grads = [ops.convert_to_numpy(g) for g in (grad, expected_grad)]
    np.testing.assert_allclose(*grads, atol=1e-7)
    # Sample weights and other reductions are Keras' own.
    weights = RNG.uniform(size=(3, 4)).astype("float32")
    assert not fast._fused(target, logits, weights)
    np.testing.assert_allclose(
        float(fast(target, logits, weights)), float(keras_loss(target, logits, weights)), rtol=1e-6
    )
