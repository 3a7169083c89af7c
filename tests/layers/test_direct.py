"""layers._direct: on torch, sub-layers called directly (`layer.call`) give the numbers of Keras'
`Layer.__call__` path, forward and backward; `direct` keeps `__call__` wherever it would do more."""

import keras
import numpy as np
import pytest
from keras import ops

from layers import MultiHeadAttention, TransformerDecoderBlock, TransformerEncoderBlock, _direct
from layers._direct import direct
from recipes import engine
from tests.conftest import BACKEND

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 5, 8)).astype("float32")
Z = RNG.standard_normal((2, 4, 8)).astype("float32")
X_MASK = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)


def _run(block, *inputs, **kwargs):
    """Output and gradients (weights and inputs) of sum(block(*inputs) * cos), NumPy."""
    tensors = [ops.convert_to_tensor(x) for x in inputs]

    def loss(*tensors):
        out = block(*tensors, training=True, **kwargs)
        out = out[0] if isinstance(out, tuple) else out
        return ops.sum(out * ops.reshape(ops.cos(ops.arange(ops.size(out), dtype="float32")), out.shape))

    value, grads = engine.value_and_grad(loss, [*block.trainable_variables, *tensors])
    return [float(value), *(ops.convert_to_numpy(g) for g in grads)]


@pytest.mark.skipif(BACKEND != "torch", reason="direct calls happen on torch only")
@pytest.mark.parametrize("kind", ["encoder", "decoder"])
def test_direct_calls_equal_keras_calls(monkeypatch, kind):
    if kind == "encoder":
        block, inputs, kwargs = TransformerEncoderBlock(2, 16), (X,), {"mask": X_MASK}
        block.build(X.shape)
    else:
        block, inputs, kwargs = TransformerDecoderBlock(2, 16), (X, Z), {"inputs_mask": X_MASK}
        block.build(X.shape, Z.shape)
    assert direct(block.self_attention, ops.convert_to_tensor(X)) == block.self_attention.call
    got = _run(block, *inputs, **kwargs)
    monkeypatch.setattr(_direct, "ENABLED", False)
    assert direct(block.self_attention, ops.convert_to_tensor(X)) is block.self_attention
    for g, w in zip(got, _run(block, *inputs, **kwargs), strict=True):
        np.testing.assert_array_equal(g, w)


def test_direct_keeps_keras_calls_where_they_do_more():
    mha = MultiHeadAttention(2, 4)
    x = ops.convert_to_tensor(X)
    assert direct(mha, x) is mha  # not built yet
    mha.build(X.shape, X.shape)
    assert direct(mha, x) == (mha.call if BACKEND == "torch" else mha)
    masked = keras.layers.Embedding(5, 8, mask_zero=True)(np.array([[1, 2, 0]]))
    assert direct(mha, masked) is mha  # __call__ would fill query_mask from the Keras mask
    assert direct(mha, X.astype("float64")) is mha  # __call__ converts and casts NumPy input
    assert direct(mha, ops.cast(x, "float16")) is mha
    keras.config.set_dtype_policy("mixed_float16")
    try:
        mixed = MultiHeadAttention(2, 4)
    finally:
        keras.config.set_dtype_policy("float32")
    mixed.build(X.shape, X.shape)
    assert direct(mixed, x) is mixed  # __call__ autocasts
