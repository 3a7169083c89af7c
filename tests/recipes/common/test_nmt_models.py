"""recipes.common.nmt_models on torch: the models' fast paths (the Transformer blocks and the
decoder-step layers as torch kernels, `recipes.engine.kernels`; other layers called directly,
`layers._direct`) give the numbers of Keras' `Layer.__call__` path, forward, backward and in a
decoding step."""

import keras
import numpy as np
import pytest
from keras import ops

from layers import _direct
from recipes import engine
from recipes.common.nmt_models import AttentionNMT, TransformerNMT
from recipes.engine import kernels
from tests.conftest import BACKEND

SOURCE = np.array([[5, 6, 7, 0, 0], [4, 0, 0, 0, 0], [3, 4, 5, 6, 7]], "int32")
DECODER_INPUT = np.array([[1, 2, 3], [1, 4, 0], [1, 5, 6]], "int32")
VOCABULARIES = ([str(i) for i in range(9)], [str(i) for i in range(7)])


def _model(attention):
    lengths = dict(source_length=5, target_length=3)
    if attention == "transformer":
        model = TransformerNMT(*VOCABULARIES, d_model=8, num_heads=2, ff_dim=16, **lengths)
    else:
        sizes = dict(embedding=4, units=6, attention_units=4, maxout_units=3)
        model = AttentionNMT(*VOCABULARIES, attention=attention, **sizes, **lengths)
    model.build()
    return model


def _run(model):
    """Loss, gradients and one decoding step of `model` (NumPy)."""

    def loss():
        return ops.sum(ops.square(model([SOURCE, DECODER_INPUT], training=True)))

    value, grads = engine.value_and_grad(loss, model.trainable_variables)
    memory, states = model.encode(ops.convert_to_tensor(SOURCE))
    logits, states, weights = model.decode_step(ops.convert_to_tensor([1, 2, 3]), states, memory)
    return [float(value), *(ops.convert_to_numpy(x) for x in (*grads, logits, *states, weights))]


@pytest.mark.skipif(BACKEND != "torch", reason="the fast paths run on torch only")
@pytest.mark.parametrize("attention", ["bahdanau", "luong-dot", "transformer"])
def test_fast_paths_equal_keras_calls(monkeypatch, attention):
    model = _model(attention)
    if attention != "transformer":
        step_layers = (model.attention, model.cell, model.readout, model.logits)
        calls = model._step_layers()
        # Kernels for the GRU cell and the Dense layers (and Bahdanau's attention), no Keras calls.
        assert not set(calls) & set(step_layers)
        assert (calls[0] == model.attention.call) == (attention != "bahdanau")
    fast = _run(model)
    monkeypatch.setattr(_direct, "ENABLED", False)
    monkeypatch.setattr(kernels, "_KERNELS", {})
    monkeypatch.setattr(kernels, "_fused", lambda *args: False)
    if attention != "transformer":
        assert model._step_layers() == step_layers
    for got, want in zip(fast, _run(model), strict=True):
        # float32 rounding: the Transformer's fused attention sums in another order, so the
        # absolute tolerance follows each array's scale (an ulp at 16 is 1.9e-6).
        scale = max(1.0, float(np.max(np.abs(want))))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * scale)


@pytest.mark.skipif(BACKEND != "torch", reason="the fast paths run on torch only")
def test_mixed_precision_keeps_keras_calls():
    # Keras' __call__ autocasts the float32 variables to float16 there: no kernels, no direct calls.
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = _model("bahdanau")
    finally:
        keras.config.set_dtype_policy("float32")
    assert model._step_layers() == (model.attention, model.cell, model.readout, model.logits)
