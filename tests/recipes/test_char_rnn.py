"""char_rnn (A 7.3, A 7.6, B 4.2.1): min-char-rnn against a NumPy min-char-rnn, the
stateful compiled step, the NumPy samplers against Keras' layers, the notes' two strings exactly."""

import json
import math
import types

import keras
import numpy as np
import pytest

from recipes import char_rnn
from recipes.common import cli
from tests.fixtures.make_parity import STEPS

# char-rnn (A 7.6): embedding -> 2 x LSTM(8) -> affine, 3 streams of 10-character windows of the
# notes' long sentence, Adam 0.02 with gradients clipped to global norm 0.1 (the first step's norm
# is 0.27), decayed by 0.97 every 2 windows (as if a pass over the text were 2 windows: the staircase
# acts twice in 5 steps). The LSTMs have no dropout: nothing in a step is random.
PARITY_CONFIG = char_rnn.Config(
    model="lstm", layers=2, hidden=8, seq_length=10, batch_size=3, learning_rate=0.02, clip=0.1
)


def parity_inputs():
    """The first 5 windows of 3 streams of the long sentence, as `train_corpus` reads them."""
    vocab = char_rnn.char_vocabulary(char_rnn.LONG)
    x, y = char_rnn.streams(char_rnn.encode(vocab, char_rnn.LONG), 3, PARITY_CONFIG.seq_length)
    return {"inputs": x[:STEPS], "targets": y[:STEPS]}


def parity_build():
    """The recipe's model, optimizer and compiled stateful step (`make_step`, an engine.function),
    set up as `train_corpus` sets them up: the hidden state runs on from window to window."""
    config = PARITY_CONFIG
    model = char_rnn.build_model(config, len(char_rnn.char_vocabulary(char_rnn.LONG)))
    optimizer = char_rnn.build_optimizer(config, steps_per_pass=2)
    optimizer.build(model.trainable_variables)
    states = [
        keras.Variable(np.zeros(s, "float32"), trainable=False, name=f"state_{i}")
        for i, s in enumerate(model.state_shapes(config.batch_size))
    ]
    step = char_rnn.make_step(model, optimizer, states, "mean")
    return types.SimpleNamespace(
        state={"model": model, "optimizer": optimizer},
        train_step=lambda x, y: {"loss": step(x, y)},
        compiled=True,
    )


PARITY_CASES = {"char_rnn": (parity_build, parity_inputs)}


def test_streams_are_min_char_rnn_windows():
    ids = np.arange(53)
    x, y = char_rnn.streams(ids, 1, 25)
    assert x.shape == (2, 1, 25)  # p = 0, 25; p = 50 would need 26 more characters.
    np.testing.assert_array_equal(x[1, 0], np.arange(25, 50))
    np.testing.assert_array_equal(y[1, 0], np.arange(26, 51))
    x, y = char_rnn.streams(np.arange(101), 2, 10)  # Two streams of 50: windows run on.
    assert x.shape == (5, 2, 10)
    np.testing.assert_array_equal(x[:, 1].reshape(-1), np.arange(50, 100))
    np.testing.assert_array_equal(y[:, 0].reshape(-1), np.arange(1, 51))
    with pytest.raises(cli.UsageError, match="too short"):
        char_rnn.streams(np.arange(20), 2, 10)


def _numpy_min_char_rnn(params, mem, inputs, targets, hprev, lr=0.1, clip=5.0):
    """One iteration of min-char-rnn.py (lossFun, clipping, Adagrad), in the row-vector layout."""
    w_xh, w_hh, w_hy, b_h, b_y = params
    hs, ps, loss = {-1: hprev}, {}, 0.0
    for t, (i, j) in enumerate(zip(inputs, targets)):
        hs[t] = np.tanh(w_xh[i] + hs[t - 1] @ w_hh + b_h)
        y = hs[t] @ w_hy + b_y
        ps[t] = np.exp(y - y.max()) / np.exp(y - y.max()).sum()
        loss -= np.log(ps[t][j])
    grads = [np.zeros_like(p) for p in params]
    dh_next = np.zeros_like(hprev)
    for t in reversed(range(len(inputs))):
        dy = ps[t].copy()
        dy[targets[t]] -= 1
        grads[2] += np.outer(hs[t], dy)
        grads[4] += dy
        dh_raw = (1 - hs[t] ** 2) * (dy @ w_hy.T + dh_next)
        grads[3] += dh_raw
        grads[0][inputs[t]] += dh_raw
        grads[1] += np.outer(hs[t - 1], dh_raw)
        dh_next = dh_raw @ w_hh.T
    for p, g, m in zip(params, grads, mem):
        g = np.clip(g, -clip, clip)
        m += g * g
        p -= lr * g / np.sqrt(m + 1e-8)
    return loss, hs[len(inputs) - 1], grads


def test_minimal_step_is_min_char_rnn():
    """Two compiled steps (state carried) equal two min-char-rnn iterations, clipping included."""
    vocab, hidden, steps = 6, 5, 8
    config = char_rnn.Config(hidden=hidden, seq_length=steps, batch_size=1, learning_rate=0.1)
    model = char_rnn.build_model(config, vocab)
    rng = np.random.default_rng(0)
    params = [rng.normal(0, 0.5, tuple(w.shape)) for w in model.weights]
    for w, value in zip(model.weights, params):
        w.assign(value.astype("float32"))
    optimizer = char_rnn.build_optimizer(config, 10)
    optimizer.build(model.trainable_variables)
    state = keras.Variable(np.zeros((1, hidden), "float32"), trainable=False)
    step = char_rnn.make_step(model, optimizer, [state], "sum")

    mem, h = [np.zeros_like(p) for p in params], np.zeros(hidden)
    windows = [([0, 1, 2, 3, 4, 5, 0, 1], [3] * 8), ([5, 4, 3, 2, 1, 0, 5, 4], [1, 2, 3, 4, 5, 0, 1, 2])]
    clipped = []
    for inputs, targets in windows:
        loss, h, grads = _numpy_min_char_rnn(params, mem, inputs, targets, h)
        clipped.append(np.abs(grads[4]).max() > 5)
        per_char = float(step(np.array([inputs], "int32"), np.array([targets], "int32")))
        np.testing.assert_allclose(per_char * steps, loss, rtol=1e-5)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(state.value)[0], h, atol=1e-5)
        for w, value in zip(model.weights, params):
            np.testing.assert_allclose(keras.ops.convert_to_numpy(w.value), value, atol=2e-5)
    assert clipped == [True, False]  # The first window's db_y (-8 (1 - p) at target 3) was clipped.


@pytest.mark.parametrize("kind", ["minimal", "lstm", "gru", "rnn"])
def test_numpy_sampler_step_equals_the_model(kind):
    config = char_rnn.Config(model=kind, hidden=6, layers=2, seed=3)
    model = char_rnn.build_model(config, 7)
    rng = np.random.default_rng(1)
    for w in model.weights:  # Non-zero biases too.
        w.assign(rng.normal(0, 0.4, tuple(w.shape)).astype("float32"))
    states = [rng.normal(0, 0.5, s).astype("float32") for s in model.state_shapes(1)]
    logits, new = model(np.array([[4]], "int32"), states)
    step = model.numpy_step([keras.ops.convert_to_numpy(w.value) for w in model.weights])
    numpy_logits, numpy_new = step(4, [s.astype("float64") for s in states])
    np.testing.assert_allclose(
        np.reshape(numpy_logits, -1), keras.ops.convert_to_numpy(logits)[0, 0], atol=1e-5
    )
    for a, b in zip(numpy_new, new):
        np.testing.assert_allclose(a, keras.ops.convert_to_numpy(b), atol=1e-5)


def test_sampling_temperature():
    logits = np.log([0.1, 0.2, 0.7])

    def step(i, states):
        return logits, states

    rng = np.random.default_rng(0)
    draws = char_rnn.sample(step, [np.zeros((1, 1))], 0, 4000, 1.0, rng)
    np.testing.assert_allclose(np.bincount(draws) / 4000, [0.1, 0.2, 0.7], atol=0.03)
    cold = char_rnn.sample(step, [np.zeros((1, 1))], 0, 200, 0.05, rng)
    assert set(cold) == {2}


def test_quick_corpus_run(tmp_path, capsys):
    assert char_rnn.main(["--quick", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    # The first 20,000 characters of the pydoc topics; the loss starts at the uniform ln V.
    assert summary["characters"] == 20_000 and summary["vocab_size"] > 60
    assert summary["parameters"] == 2 * 16 * summary["vocab_size"] + 16 * 16 + 16 + summary["vocab_size"]
    assert abs(summary["initial_loss"] - math.log(summary["vocab_size"])) < 0.01
    assert summary["final_smooth_loss"] < summary["uniform_loss"]
    # The mean window loss of the last 20 of 60 steps: 0.68-0.69 ln V measured (three backends, two
    # seeds); the smoothed loss (decay 0.999) is still 0.98 ln V after 60 steps.
    rows = np.loadtxt(tmp_path / "metrics.csv", delimiter=",", skiprows=1)
    assert rows.shape == (60, 3) and rows[-20:, 1].mean() < 0.8 * summary["uniform_loss"]
    assert [s["step"] for s in summary["samples"]] == [30, 60]
    assert all(len(s["text"]) == 40 for s in summary["samples"])
    out = capsys.readouterr().out
    assert "iter 60, loss " in out and summary["samples"][-1]["text"] in out
    assert (tmp_path / "samples.txt").read_text().count("--- step") == 2
    for name in ("loss.png", "model.weights.h5", "metrics.csv"):
        assert (tmp_path / name).stat().st_size > 0


def test_lstm_learns_a_repeated_string():
    """7.6's check: two stacked LSTMs on "hello world " x 50 fall below ln(vocab) and reproduce it."""
    config = char_rnn.apply_presets(
        char_rnn.Config(model="lstm", hidden=32, seq_length=12, steps=150, learning_rate=0.02), []
    )
    config.batch_size = 2
    text = "hello world " * 50
    model, vocab, losses, _, samples, _ = char_rnn.train_corpus(config, text, verbose=False)
    assert losses[0] > math.log(len(vocab)) - 0.1 and np.mean(losses[-10:]) < 0.05
    step = model.numpy_step([keras.ops.convert_to_numpy(w.value) for w in model.weights])
    states = [np.zeros(s) for s in model.state_shapes(1)]
    greedy = char_rnn.sample(step, states, vocab.index["h"], 35, 1e-3, np.random.default_rng(0))
    assert "h" + char_rnn.decode(vocab, greedy) == text[:36]


@pytest.mark.parametrize("which", ["short", "long"])
def test_the_notes_strings_are_reproduced(which, tmp_path, capsys):
    assert char_rnn.main(["--text", which, "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    target = char_rnn.SHORT if which == "short" else char_rnn.LONG
    assert summary["exact"]
    if which == "short":
        assert summary["string"] == target == "wow it's amazing!"
        assert summary["vocab_size"] == 13 and summary["parameters"] == 351 + 182
    else:
        # All but the first prediction (after "i" alone) right; 170 windows over 25 characters.
        assert summary["string"][2:] == target[2:] and len(summary["string"]) == 180
        assert summary["vocab_size"] == 25 and summary["windows"] == 170
        assert summary["parameters"] == 3200
        assert summary["last_position_accuracy"] == 1.0 and summary["accuracy"] >= 0.85
    assert summary["losses"][-1] < summary["losses"][0] / 5
    assert len(summary["logged"]) == 10 and f"result: {summary['string']}" in capsys.readouterr().out


def test_bad_input_is_one_line(tmp_path, capsys, no_network):
    for argv, message in [
        (["--hidden", "0"], "--hidden must be at least 1"),
        (["--temperature", "0"], "--temperature and --learning-rate must be positive"),
        (["--resume"], "char_rnn keeps no checkpoints: --resume is not used"),  # not offered
        (["--dataset", "shakespeare"], "(no network?)"),
    ]:
        assert cli.run(char_rnn.main, [*argv, "--out", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
    assert err.rstrip().endswith("--dataset pydoc")
