"""Scratch recurrent cells (A 7.4, D 7.2-7.4) equal Keras' with permuted weights; `right_padded_rnn`
equals Keras' masked GRU/LSTM."""

import keras
import numpy as np
import pytest

from layers import ScratchGRUCell, ScratchLSTMCell, VanillaRNNCell
from layers.recurrent import (
    from_keras_gru,
    from_keras_lstm,
    is_right_padded,
    masked_rnn,
    right_padded_eligible,
    right_padded_rnn,
)
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


# -- right_padded_rnn: Keras' masked recurrence with the mask outside the loop -----------------------

# Four right-padded sequences: full, partial, one token, empty (Keras keeps the initial state).
RAGGED = np.random.default_rng(1).normal(size=(4, 6, 3)).astype("float32")
PREFIX = np.arange(6)[None, :] < np.array([6, 3, 1, 0])[:, None]
START = np.random.default_rng(2).normal(size=(4, 5)).astype("float32")
RIGHT_PADDED = {  # name: (layer class, layer arguments, initial state)
    "gru_last_output": (keras.layers.GRU, dict(return_state=True), START),
    "lstm": (keras.layers.LSTM, dict(return_sequences=True), [START, -START]),
    "lstm_backwards_last_output": (keras.layers.LSTM, dict(go_backwards=True), None),
}
# recipes/engine's test_rnn covers GRUs forwards and backwards, with gradients.


def _outputs(result):
    return numpy(result if isinstance(result, (list, tuple)) else [result])


@pytest.mark.parametrize("name", sorted(RIGHT_PADDED))
def test_right_padded_rnn_equals_keras_masked_recurrence(name):
    layer_class, arguments, start = RIGHT_PADDED[name]
    layer = layer_class(5, seed=4, **arguments)
    expected = _outputs(layer(RAGGED, mask=PREFIX, initial_state=start))
    got = _outputs(right_padded_rnn(layer, RAGGED, PREFIX, initial_state=start))
    assert [g.shape for g in got] == [e.shape for e in expected]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-5)
    if arguments.get("return_state"):  # the empty sequence keeps its initial state
        np.testing.assert_allclose(got[-1][3], start[3], atol=1e-6)
    if name == "lstm":  # forwards, a masked step repeats the last real output
        np.testing.assert_array_equal(got[0][1, 3:], np.repeat(got[0][1, 2:3], 3, axis=0))


def test_bidirectional_zero_outputs_at_masked_steps():
    """Keras' Bidirectional sets zero_output_for_mask on its layers: zeros at masked steps."""
    for go_backwards in (False, True):
        layer = keras.layers.GRU(5, return_sequences=True, go_backwards=go_backwards, seed=4)
        layer.zero_output_for_mask = True
        expected = keras.ops.convert_to_numpy(layer(RAGGED, mask=PREFIX))
        got = keras.ops.convert_to_numpy(right_padded_rnn(layer, RAGGED, PREFIX))
        np.testing.assert_allclose(got, expected, atol=1e-5)
        masked = ~PREFIX[:, ::-1] if go_backwards else ~PREFIX
        assert np.all(got[masked] == 0) and np.all(np.abs(got[~masked]).sum(-1) > 0)


def test_prefix_masks_and_eligible_layers():
    holes = PREFIX.copy()
    holes[0, 2] = False
    assert bool(is_right_padded(PREFIX))
    assert not bool(is_right_padded(holes)) and not bool(is_right_padded(PREFIX[:, ::-1]))
    # A mask with holes takes the layer's own masked path.
    layer = keras.layers.GRU(5, return_sequences=True, seed=4)
    expected = keras.ops.convert_to_numpy(layer(RAGGED, mask=holes))
    got = keras.ops.convert_to_numpy(masked_rnn(layer, RAGGED, holes))
    np.testing.assert_array_equal(got, expected)
    assert right_padded_eligible(layer)
    assert not right_padded_eligible(keras.layers.LSTM(5, return_state=True))  # c not in outputs
    assert not right_padded_eligible(keras.layers.GRU(5, dropout=0.1))
    assert not right_padded_eligible(keras.layers.SimpleRNN(5))
