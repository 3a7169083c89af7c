"""recipes.common.nmt_models: the attention decoder's direct layer calls on torch (`layers._direct`)
give the numbers of Keras' `Layer.__call__` path, forward, backward and in a decoding step."""

import keras
import numpy as np
import pytest
from keras import ops

from layers import _direct
from recipes import engine
from recipes.common.nmt_models import AttentionNMT
from tests.conftest import BACKEND

SOURCE = np.array([[5, 6, 7, 0, 0], [4, 0, 0, 0, 0], [3, 4, 5, 6, 7]], "int32")
DECODER_INPUT = np.array([[1, 2, 3], [1, 4, 0], [1, 5, 6]], "int32")


def _model(attention):
    model = AttentionNMT(
        [str(i) for i in range(9)],
        [str(i) for i in range(7)],
        source_length=5,
        target_length=3,
        attention=attention,
        embedding=4,
        units=6,
        attention_units=4,
        maxout_units=3,
    )
    model.build()
    return model


def _run(model):
    """Loss, gradients and one decoding step of `model` (NumPy)."""

    def loss():
        return ops.sum(ops.square(model([SOURCE, DECODER_INPUT], training=True)))

    value, grads = engine.value_and_grad(loss, model.trainable_variables)
    memory, states = model.encode(SOURCE)
    logits, states, weights = model.decode_step(ops.convert_to_tensor([1, 2, 3]), states, memory)
    return [float(value), *(ops.convert_to_numpy(x) for x in (*grads, logits, *states, weights))]


@pytest.mark.skipif(BACKEND != "torch", reason="the direct calls run on torch only")
@pytest.mark.parametrize("attention", ["bahdanau", "luong-dot"])
def test_direct_calls_equal_keras_calls(monkeypatch, attention):
    model = _model(attention)
    layers = model._step_layers()
    assert layers == (model.attention.call, model.cell.call, model.readout.call, model.logits.call)
    direct = _run(model)
    monkeypatch.setattr(_direct, "ENABLED", False)
    assert model._step_layers() == (model.attention, model.cell, model.readout, model.logits)
    for got, want in zip(direct, _run(model), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.skipif(BACKEND != "torch", reason="the direct calls run on torch only")
def test_mixed_precision_keeps_keras_calls():
    # Keras' __call__ autocasts the float32 variables to float16 there: no direct calls.
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = _model("bahdanau")
    finally:
        keras.config.set_dtype_policy("float32")
    assert model._step_layers() == (model.attention, model.cell, model.readout, model.logits)
