"""layers.NADE (D 9.3): a normalised distribution (the 2^8 inputs sum to 1), autoregressive, equal to
a NumPy loop over the conditionals; the layer checks."""

import itertools

import keras
import numpy as np
import pytest
from keras import ops

from layers.nade import NADE
from tests.layers import layer_checks

INPUTS = (np.random.default_rng(0).random((4, 8)) > 0.5).astype("float32")


def nade_factory():
    return NADE(5, kernel_initializer=keras.initializers.RandomNormal(stddev=1.0, seed=1))


CROSS_BACKEND_CASES = {"nade": (nade_factory, INPUTS)}


def numpy_logits(x, w, c, v, b):
    """The conditionals one at a time: h_i = sigmoid(c + W[:, :i] x[:i]), l_i = b_i + V_i . h_i."""
    out = np.zeros_like(x, dtype="float64")
    for n, row in enumerate(x.astype("float64")):
        for i in range(len(row)):
            h = 1 / (1 + np.exp(-(c + w[:, :i] @ row[:i])))
            out[n, i] = b[i] + v[i] @ h
    return out


def test_all_256_inputs_of_8_pixels_sum_to_one():
    layer = nade_factory()
    every = np.array(list(itertools.product([0, 1], repeat=8)), "float32")
    log_p = ops.convert_to_numpy(layer.log_prob(every)).astype("float64")
    assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1e-5)
    assert len(np.unique(np.round(log_p, 4))) > 200  # a real distribution, not a uniform one


def test_logits_equal_the_numpy_conditionals_and_ignore_later_pixels():
    layer = nade_factory()
    logits = ops.convert_to_numpy(layer(INPUTS))
    w, c, v, b = (ops.convert_to_numpy(t) for t in (layer.w, layer.c, layer.v, layer.b))
    np.testing.assert_allclose(logits, numpy_logits(INPUTS, w, c, v, b), rtol=1e-5, atol=1e-5)
    changed = INPUTS.copy()
    changed[:, 5:] = 1 - changed[:, 5:]  # flip pixels 5..7: logits 0..5 stay
    again = ops.convert_to_numpy(layer(changed))
    np.testing.assert_allclose(again[:, :6], logits[:, :6], atol=1e-6)
    assert np.abs(again[:, 6:] - logits[:, 6:]).max() > 1e-3


def test_bad_input_is_refused_in_words():
    with pytest.raises(ValueError, match="positive int"):
        NADE(0)
    with pytest.raises(ValueError, match=r"expected inputs \(batch, D\)"):
        NADE(3)(np.zeros((2, 4, 4), "float32"))


def test_layer_checks(tmp_path):
    layer_checks.assert_config_round_trip(nade_factory, INPUTS)
    layer_checks.assert_saved_round_trip(nade_factory, INPUTS, tmp_path / "m.keras")
    layer_checks.assert_gradients_reach_every_weight(nade_factory, INPUTS)
