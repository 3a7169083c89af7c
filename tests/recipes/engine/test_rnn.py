"""engine.rnn: a Keras GRU/LSTM run by the backend's fused loop (torch._VF on torch) equals the
layer; with `layers.recurrent.right_padded_rnn` around it, Keras' masked layer, gradients included."""

import keras
import numpy as np
import pytest
from keras import ops

from layers.recurrent import right_padded_rnn
from recipes import engine
from recipes.engine import rnn
from tests.conftest import BACKEND

# Right-padded: full, partial, one token, empty.
X = np.random.default_rng(0).normal(size=(4, 6, 3)).astype("float32")
MASK = np.arange(6)[None, :] < np.array([6, 4, 1, 0])[:, None]
START = np.random.default_rng(1).normal(size=(4, 5)).astype("float32")
LAYERS = {  # name: (layer, initial state)
    "gru": (lambda: keras.layers.GRU(5, return_sequences=True, return_state=True, seed=2), None),
    "gru_backwards": (
        lambda: keras.layers.GRU(5, return_state=True, go_backwards=True, seed=3),
        START,
    ),
    "lstm_backwards": (
        lambda: keras.layers.LSTM(5, return_sequences=True, go_backwards=True, seed=4),
        [START, -START],
    ),
}


def _built(name):
    """(the built layer of LAYERS[name], its initial state)."""
    factory, start = LAYERS[name]
    layer = factory()
    layer.build(X.shape)
    return layer, start


def numpy(values):
    return [ops.convert_to_numpy(v) for v in values]


@pytest.mark.skipif(BACKEND != "torch", reason="elsewhere unmasked_sequences is the layer itself")
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_unmasked_sequences_equal_the_layer(name):
    layer, start = _built(name)
    assert rnn._fused_on_torch(layer, training=False)  # one torch._VF call
    got = numpy(rnn.unmasked_sequences(layer, X, initial_state=start))
    layer.return_sequences = layer.return_state = True
    expected = numpy(layer(X, initial_state=start))
    assert [g.shape for g in got] == [e.shape for e in expected]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-5)


@pytest.mark.skipif(BACKEND != "torch", reason="elsewhere unmasked_sequences is the layer itself")
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_packed_sequences_equal_the_unpacked_run_up_to_each_length(name):
    layer, start = _built(name)
    lengths = np.array([6, 4, 1, 3], "int32")
    full = numpy(rnn.unmasked_sequences(layer, X, initial_state=start))
    packed = numpy(rnn.unmasked_sequences(layer, X, initial_state=start, lengths=lengths))
    steps = np.arange(X.shape[1])[None, :] < lengths[:, None]
    np.testing.assert_allclose(packed[0][steps], full[0][steps], atol=1e-6)
    assert np.all(packed[0][~steps] == 0)  # the skipped steps
    # The final states are the ones after each row's length (a GRU's state is its output).
    np.testing.assert_allclose(packed[1], full[0][np.arange(4), lengths - 1], atol=1e-6)


@pytest.mark.skipif(BACKEND != "torch", reason="elsewhere bidirectional leaves the layers to the caller")
@pytest.mark.parametrize(
    "zero_output_for_mask, zero_padding", [(False, False), (True, False), (False, True)]
)
def test_bidirectional_equals_keras_masked_layers_with_gradients(zero_output_for_mask, zero_padding):
    def gru(seed, **kwargs):
        layer = keras.layers.GRU(5, return_sequences=True, return_state=True, seed=seed, **kwargs)
        layer.zero_output_for_mask = zero_output_for_mask
        layer.build(X.shape)
        return layer

    forward, backward = gru(7), gru(8, go_backwards=True)
    scales = [np.random.default_rng(9).normal(size=s).astype("float32") for s in [(4, 6, 10), (4, 5)]]

    def loss(fused):
        def f(x):
            if fused:
                both = rnn.bidirectional(forward, backward, x, MASK, zero_padding=zero_padding)
                assert both is not None
            else:
                outputs, _ = forward(x, mask=MASK)
                if zero_padding:  # zeros where Keras repeats the last real output
                    outputs = ops.multiply(outputs, MASK[..., None].astype("float32"))
                backwards, last = backward(x, mask=MASK)
                both = ops.concatenate([outputs, ops.flip(backwards, axis=1)], -1), last
            value = sum(ops.sum(ops.multiply(r, s)) for r, s in zip(both, scales))
            return value, both

        return f

    wrt = [*forward.trainable_variables, *backward.trainable_variables, X]
    (value, outputs), grads = engine.value_and_grad(loss(False), wrt, has_aux=True)
    (got_value, got_outputs), got_grads = engine.value_and_grad(loss(True), wrt, has_aux=True)
    for g, e in zip(numpy([*got_outputs, *got_grads]), numpy([*outputs, *grads])):
        np.testing.assert_allclose(g, e, atol=1e-5)
    np.testing.assert_allclose(float(got_value), float(value), atol=1e-4)
    holes = MASK.copy()
    holes[0, 1] = False
    assert rnn.bidirectional(forward, backward, X, holes) is None  # not right-padded


def test_layers_the_fused_call_leaves_to_keras():
    assert not rnn._fused_on_torch(keras.layers.GRU(5, reset_after=False), training=False)
    layer = keras.layers.GRU(5, dropout=0.5, return_sequences=True, seed=5)
    layer.build(X.shape)
    assert rnn._fused_on_torch(layer, training=False)
    assert not rnn._fused_on_torch(layer, training=True)
    mixed = keras.layers.GRU(5, dtype="mixed_float16")
    mixed.build(X.shape)
    assert not rnn._fused_on_torch(mixed, training=False)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_fused_right_padded_rnn_equals_keras_masked_with_gradients(name):
    """Outputs, final states and the gradients of a weighted sum of them, against the weights and
    the inputs, equal Keras' masked layer within 1e-5."""
    layer, start = _built(name)
    weights = np.random.default_rng(6)
    scales = None

    def loss(masked):
        def f(x):
            if masked:
                result = layer(x, mask=MASK, initial_state=start)
            else:
                result = right_padded_rnn(
                    layer, x, MASK, initial_state=start, run=rnn.unmasked_sequences
                )
            result = result if isinstance(result, (list, tuple)) else [result]
            nonlocal scales
            if scales is None:
                scales = [weights.normal(size=tuple(r.shape)).astype("float32") for r in result]
            return sum(ops.sum(ops.multiply(r, s)) for r, s in zip(result, scales)), result

        return f

    wrt = [*layer.trainable_variables, X]
    (value, outputs), grads = engine.value_and_grad(loss(True), wrt, has_aux=True)
    (got_value, got_outputs), got_grads = engine.value_and_grad(loss(False), wrt, has_aux=True)
    for g, e in zip(numpy(got_outputs), numpy(outputs)):
        np.testing.assert_allclose(g, e, atol=1e-5)
    np.testing.assert_allclose(float(got_value), float(value), atol=1e-4)
    for g, e in zip(numpy(got_grads), numpy(grads)):
        np.testing.assert_allclose(g, e, atol=1e-5)
    # Padded inputs reach nothing; the real ones do.
    dx = numpy(got_grads)[-1]
    assert np.all(dx[~MASK] == 0) and np.all(np.abs(dx[MASK]).sum(-1) > 0)


@pytest.mark.skipif(BACKEND != "torch", reason="the fused path runs on torch only")
def test_nmt_encoder_takes_the_fused_path_and_equals_keras(monkeypatch):
    from recipes.common.nmt_models import AttentionNMT

    source = np.array([[5, 6, 7, 0, 0], [4, 0, 0, 0, 0], [3, 4, 5, 6, 7]], "int32")
    model = AttentionNMT(
        [str(i) for i in range(9)],
        [str(i) for i in range(7)],
        source_length=5,
        target_length=3,
        embedding=4,
        units=6,
        attention_units=4,
        maxout_units=3,
    )
    model.build()
    decoder_input = np.array([[1, 2, 3]] * 3, "int32")
    fused, calls = rnn.bidirectional, []

    def counted(*args, **kwargs):
        result = fused(*args, **kwargs)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(rnn, "bidirectional", counted)
    wrt = model.trainable_variables

    def loss():
        return ops.sum(ops.square(model([source, decoder_input])))

    value, grads = engine.value_and_grad(loss, wrt)
    assert calls == [True]  # both GRUs in one fused call
    monkeypatch.setattr(AttentionNMT, "fused_recurrence", False)
    expected_value, expected_grads = engine.value_and_grad(loss, wrt)
    assert calls == [True]
    holes = source.copy()
    holes[2, 1] = 0  # not right-padded: Keras' masked GRUs run
    monkeypatch.setattr(AttentionNMT, "fused_recurrence", True)
    model([holes, decoder_input])
    assert calls == [True, False]
    np.testing.assert_allclose(float(value), float(expected_value), rtol=1e-5)
    for g, e in zip(numpy(grads), numpy(expected_grads)):
        np.testing.assert_allclose(g, e, atol=1e-5)
