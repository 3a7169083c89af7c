"""rnn_gradients (D 7.2, A 10.7): vanishing/exploding ||dh_T/dh_0||; Hinton's quiz."""

import json

import numpy as np
import pytest

from recipes import rnn_gradients
from recipes.common import cli


def test_hinton_quiz_answer():
    answer = rnn_gradients.quiz()
    np.testing.assert_allclose(answer["z"], [-1.4, -0.401092, 1.400525], atol=2e-6)
    assert answer["rounded"]["h"] == [0.2, 0.4, 0.8]
    assert answer["rounded"]["y"] == [0.05, 0.1, 0.2]
    assert answer["E"] == pytest.approx(0.101557, abs=2e-6)
    assert answer["dE_dz1_autodiff"] == pytest.approx(0.0139342, abs=1e-6)
    assert answer["dE_dz1_formula"] == pytest.approx(0.0139342, abs=1e-6)
    assert round(answer["dE_dz1_autodiff"], 4) == 0.0139
    assert answer["rounded"]["dE_dz1"] == pytest.approx(0.01392, abs=1e-9)
    assert answer["rounded"]["E"] == pytest.approx(0.10125, abs=1e-9)


def test_quick_run_vanishes_and_explodes(tmp_path, capsys):
    assert rnn_gradients.main(["--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "dE/dz1 = 0.013934 (autodiff), 0.013934 (BPTT formula), 0.01392" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    norms, ratios = summary["norms"], summary["ratio_T_over_1"]
    assert all(len(values) == 50 for values in norms.values())
    # D 7.2's acceptance: sigmoid (spectral radius 1) vanishes, ReLU with W = 1.5 I explodes.
    assert ratios["sigmoid 1"] < 1e-3
    assert ratios["relu 1.5"] > 1e3
    # ReLU units that stay active: dh_T/dh_0 = 1.5^T on them, so the norm grows by 1.5 per step.
    relu = np.array(norms["relu 1.5"])
    np.testing.assert_allclose(relu[-1] / relu[-2], 1.5, rtol=1e-4)
    assert ratios["tanh 0.5"] < 1e-3 and ratios["sigmoid 1.5"] < 1e-3  # sigmoid: phi' <= 1/4
    # The engine's Jacobians equal the NumPy chain rule prod_t diag(phi'(z_t)) W^T.
    assert summary["autodiff_vs_numpy_max_relative_difference"] < 1e-4
    assert (tmp_path / "gradient_norms.png").stat().st_size > 0


def test_bad_arguments_are_usage_errors(tmp_path):
    with pytest.raises(cli.UsageError, match="at least 1"):
        rnn_gradients.main(["--steps", "0", "--out", str(tmp_path)])
