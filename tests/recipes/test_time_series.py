"""time_series (B 4.2.2): the lab's windows and split; the RNN beats the last value."""

import json

import numpy as np
import pytest

from recipes import time_series
from recipes.common import cli


def test_lab_windows_split_and_scaling():
    config = time_series.Config()
    series = time_series.make_series(config.days, seed=0)
    assert series.shape == (732, 5)
    np.testing.assert_array_equal(series, time_series.make_series(732, seed=0))
    high, low = series[:, 1], series[:, 2]
    assert np.all(high >= series[:, [0, 4]].max(1)) and np.all(low <= series[:, [0, 4]].min(1))
    x_train, y_train, x_test, y_test = time_series.split(series, config)
    # 70% of 732 = 512 training days -> 505 windows; the test part starts 7 days early -> 220 windows.
    assert x_train.shape == (505, 7, 5) and y_train.shape == (505, 1)
    assert x_test.shape == (220, 7, 5) and y_test.shape == (220, 1)
    for part in (x_train, x_test):  # the lab scales each part with its own min and max
        assert part.min() == pytest.approx(0.0, abs=1e-6) and part.max() == pytest.approx(1.0, abs=1e-6)
    # The target is the next day's Close: the last Close of the following window.
    np.testing.assert_array_equal(y_train[:-1, 0], x_train[1:, -1, 4])


def test_quick_run_beats_the_last_value_baseline(tmp_path, capsys):
    assert time_series.main(["--quick", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("]")[0] for line in lines if line.startswith("[step")] == [
        f"[step: {step}" for step in (0, 100, 200, 299)
    ]
    summary = json.loads((tmp_path / "summary.json").read_text())
    result = summary["results"]["rnn"]
    assert result["train_mse_last"] < result["train_mse_first"] / 10
    assert result["test_rmse"] < summary["baseline_rmse"]
    assert result["test_rmse"] < 0.1
    for name in ("prediction.png", "loss.png", "series.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_bad_arguments_are_usage_errors(tmp_path):
    with pytest.raises(cli.UsageError, match="train-fraction"):
        time_series.main(["--train-fraction", "1.5", "--out", str(tmp_path)])
    with pytest.raises(cli.UsageError, match="too short"):
        time_series.main(["--days", "20", "--out", str(tmp_path)])
