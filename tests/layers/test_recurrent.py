"""Scratch recurrent cells (A 7.4, D 7.2-7.4) equal Keras' with permuted weights."""

import keras
import numpy as np
import pytest

from layers import ScratchGRUCell, ScratchLSTMCell, VanillaRNNCell
from layers.recurrent import from_keras_gru, from_keras_lstm
from tests.layers import layer_checks

INPUTS = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
FACTORIES = {
    "lstm": lambda: keras.layers.RNN(ScratchLSTMCell(4), return_sequences=True, unroll=True),
    "lstm_nico": lambda: keras.layers.RNN(
        ScratchLSTMCell(4, variant="nico"), return_sequences=True, unroll=True
    ),
    "gru": lambda: keras.layers.RNN(ScratchGRUCell(4), return_sequences=True, unroll=True),
    "vanilla": lambda: keras.layers.RNN(
        VanillaRNNCell(4, activation="relu"), return_sequences=True, unroll=True
    ),
}


def numpy(values):
    return [keras.ops.convert_to_numpy(v) for v in values]


def test_lstm_cell_equals_keras_lstm():
    builtin = keras.layers.LSTM(4, return_sequences=True, return_state=True, seed=3, unroll=True)
    expected = numpy(builtin(INPUTS))
    cell = ScratchLSTMCell(4)
    scratch = keras.layers.RNN(cell, return_sequences=True, return_state=True, unroll=True)
    scratch(INPUTS)
    cell.set_weights(from_keras_lstm(*numpy(builtin.weights)))
    for got, want in zip(numpy(scratch(INPUTS)), expected):  # outputs, h, c
        np.testing.assert_allclose(got, want, atol=1e-5)
    # Gate order f, i, o, g: the forget block of the fused weight is Keras' second block.
    kernel, recurrent, _ = numpy(builtin.weights)
    np.testing.assert_array_equal(cell.get_weights()[0][:3, :4], kernel[:, 4:8])
    np.testing.assert_array_equal(cell.get_weights()[0][3:, 12:], recurrent[:, 8:12])


def test_gru_cell_equals_keras_gru_without_reset_after():
    builtin = keras.layers.GRU(4, reset_after=False, return_sequences=True, seed=3, unroll=True)
    expected = keras.ops.convert_to_numpy(builtin(INPUTS))
    cell = ScratchGRUCell(4)
    scratch = keras.layers.RNN(cell, return_sequences=True, unroll=True)
    scratch(INPUTS)
    cell.set_weights(from_keras_gru(*numpy(builtin.weights)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scratch(INPUTS)), expected, atol=1e-5)
    assert scratch.count_params() == builtin.count_params() == 3 * ((3 + 4) * 4 + 4)
    with pytest.raises(ValueError, match="reset_after=False"):
        reset_after = keras.layers.GRU(4)
        reset_after.build((None, 5, 3))
        from_keras_gru(*numpy(reset_after.weights))


def test_vanilla_cell_equals_simple_rnn():
    builtin = keras.layers.SimpleRNN(4, return_sequences=True, seed=3, unroll=True)
    expected = keras.ops.convert_to_numpy(builtin(INPUTS))
    cell = VanillaRNNCell(4)
    scratch = keras.layers.RNN(cell, return_sequences=True, unroll=True)
    scratch(INPUTS)
    cell.set_weights(builtin.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(scratch(INPUTS)), expected, atol=1e-6)


def test_nico_variant_outputs_o_times_c():
    cell = ScratchLSTMCell(2, variant="nico")
    rnn = keras.layers.RNN(cell, return_state=True, unroll=True)
    rnn(INPUTS[:, :1])
    cell.set_weights([np.full((5, 8), 0.3, "float32"), np.zeros(8, "float32")])
    h, _, c = numpy(rnn(INPUTS[:, :1]))
    z = INPUTS[:, 0].sum(-1, keepdims=True) * 0.3  # h_0 = 0: only x contributes
    gate, g = 1 / (1 + np.exp(-z)), np.tanh(z)
    np.testing.assert_allclose(c, np.repeat(gate * g, 2, axis=1), atol=1e-6)
    np.testing.assert_allclose(h, np.repeat(gate * gate * g, 2, axis=1), atol=1e-6)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_layer_conventions(name, tmp_path):
    factory = FACTORIES[name]
    layer_checks.assert_config_round_trip(factory, INPUTS)
    layer_checks.assert_saved_round_trip(factory, INPUTS, tmp_path / "m.keras")
    layer_checks.assert_gradients_reach_every_weight(factory, INPUTS)


def test_bad_input_names_the_cell():
    with pytest.raises(ValueError, match="ScratchLSTMCell expects inputs of shape"):
        ScratchLSTMCell(3).build((None, 2, 5))
    with pytest.raises(ValueError, match="variant"):
        ScratchLSTMCell(3, variant="peephole")
    with pytest.raises(ValueError, match="VanillaRNNCell activation"):
        VanillaRNNCell(3, activation="softplus")
