"""text_lstm (E 01): the notes' exact predictions on every backend and seed."""

import json
import re

import numpy as np
import pytest

from recipes import text_lstm


def test_batch_is_the_notes_one_hot_encoding():
    contexts, targets = text_lstm.make_batch()
    assert contexts.shape == (6, 2, 9) and targets.shape == (6,)
    # 'milk' is index 2 in the slide's vocabulary: [0, 0, 1, 0, 0, 0, 0, 0, 0] (9 long, not 8).
    np.testing.assert_array_equal(contexts.sum(axis=-1), 1)
    assert [text_lstm.WORDS[t] for t in targets] == text_lstm.EXPECTED
    assert text_lstm.WORDS.index("milk") == 2
    np.testing.assert_array_equal(np.eye(9)[2], [0, 0, 1, 0, 0, 0, 0, 0, 0])


def test_default_run_prints_the_notes_lines(tmp_path, capsys):
    assert text_lstm.main(["--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    costs = [line for line in lines if line.startswith("Epoch:")]
    assert [line[:11] for line in costs] == [f"Epoch: {e:04d}" for e in (100, 200, 300, 400, 500)]
    assert all(re.fullmatch(r"Epoch: \d{4} cost = \d+\.\d{6}", line) for line in costs)
    values = [float(line.split("= ")[1]) for line in costs]
    assert values == sorted(values, reverse=True) and values[0] < 1.0 and values[-1] < 0.05
    expected = (
        "[['i', 'like'], ['i', 'love'], ['i', 'hate'], ['you', 'like'], ['you', 'love'], "
        "['you', 'hate']] -> ['dog', 'coffee', 'milk', 'cat', 'milk', 'coffee']"
    )
    assert lines[-1] == expected
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["parameters"] == 354  # LSTM 4*5*(9+5)+4*5 = 300, affine 5*9+9 = 54
    assert summary["correct"] and summary["final_cost"] < 0.05
    assert (tmp_path / "costs.png").stat().st_size > 0
    assert len((tmp_path / "metrics.csv").read_text().splitlines()) == 501


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_predictions_hold_for_every_seed(seed):
    config = text_lstm.Config(seed=seed)
    model, costs, _ = text_lstm.train(config, verbose=False)
    contexts, _ = text_lstm.make_batch()
    assert text_lstm.predict_words(model, contexts) == text_lstm.EXPECTED
    assert costs[-1] < 0.05


def test_seed_makes_the_run_reproducible():
    config = text_lstm.Config(seed=7, epochs=30)
    _, first, _ = text_lstm.train(config, verbose=False)
    _, second, _ = text_lstm.train(config, verbose=False)
    assert first == second


def test_bad_argument_is_one_line(tmp_path):
    from recipes.common import cli

    with pytest.raises(cli.UsageError, match="at least 1"):
        text_lstm.main(["--log-every", "0", "--out", str(tmp_path)])
