"""rnn_binary_addition (A 7.1): trask's adder in NumPy BPTT and Keras, exact on held-out sums."""

import json

import numpy as np
import pytest

from recipes import rnn_binary_addition as adder
from recipes.common import cli


@pytest.fixture(scope="module")
def trained():
    """trask's full run (seed 0, 10,000 steps) with the NumPy BPTT."""
    config = adder.Config()
    rng = np.random.RandomState(config.seed)
    weights = adder.initial_weights(rng, config.hidden)
    pairs = adder.training_pairs(rng, config.epochs, config.bits)
    trained, errors, lines = adder.train_numpy(weights, pairs, config, verbose=False)
    return config, pairs, trained, lines


def test_numpy_run_prints_trasks_blocks(trained):
    _, _, _, lines = trained
    # trask's published output for np.random.seed(0): the first block and the last (step 9000).
    assert lines[:5] == [
        "Error:[3.45638663]",
        "Pred:[0 0 0 0 0 0 0 1]",
        "True:[0 1 0 0 0 1 0 1]",
        "9 + 60 = 1",
        "------------",
    ]
    assert lines[-5:-1] == [
        "Error:[0.21595037]",
        "Pred:[0 0 0 0 1 1 1 0]",
        "True:[0 0 0 0 1 1 1 0]",
        "11 + 3 = 14",
    ]


def test_trained_adder_is_exact_in_numpy_and_in_keras(trained):
    config, pairs, weights, _ = trained
    held_out = adder.held_out_pairs(pairs, config.bits)
    assert len(held_out) > 8000  # 16384 pairs, about 7,400 of them drawn in training
    wide = np.random.RandomState(1).randint(2**10, size=(1000, 2))
    assert adder.accuracy(adder.numpy_predictor(weights), held_out, 7) == 1.0
    assert adder.accuracy(adder.numpy_predictor(weights), wide, 10) == 1.0  # 11 steps
    model = adder.build_model(config.hidden)
    adder.set_weights(model, weights)
    assert model.count_params() == 2 * 16 + 16 * 16 + 16
    assert adder.accuracy(adder.keras_predictor(model), held_out, 7) == 1.0
    assert adder.accuracy(adder.keras_predictor(model), wide, 10) == 1.0


def test_keras_sgd_is_trasks_update():
    """Keras SGD(0.1) on 1/2 sum (t - y)^2, batch 1, follows the NumPy BPTT step for step."""
    config = adder.Config(epochs=30, log_every=15)
    rng = np.random.RandomState(3)
    weights = adder.initial_weights(rng, config.hidden)
    pairs = adder.training_pairs(rng, config.epochs, config.bits)
    expected, errors, lines = adder.train_numpy(weights, pairs, config, verbose=False)
    model, (steps, keras_errors), keras_lines = adder.train_keras(weights, pairs, config, verbose=False)
    found = adder.get_weights(model)
    for name in expected:
        assert np.abs(expected[name] - weights[name]).max() > 1e-3  # training moved them
        np.testing.assert_allclose(found[name], expected[name], atol=2e-5)
    assert steps.tolist() == [0, 15]
    # The first block is computed before any update: the same bits, the error to float32 precision.
    assert keras_lines[1:4] == lines[1:4]
    assert float(keras_lines[0][7:-1]) == pytest.approx(float(lines[0][7:-1]), rel=1e-5)


def test_quick_run_writes_its_outputs(tmp_path, capsys):
    assert adder.main(["--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("Error:[") == 4 and "== Keras RNN" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    for name in ("numpy", "keras"):
        assert summary[name]["held_out_pairs"] > 900 and 0 <= summary[name]["held_out_accuracy"] <= 1
    assert (tmp_path / "error.png").stat().st_size > 0 and (tmp_path / "model.keras").exists()


def test_bad_arguments_are_usage_errors(tmp_path):
    with pytest.raises(cli.UsageError, match="at least 1"):
        adder.main(["--hidden", "0", "--out", str(tmp_path)])
