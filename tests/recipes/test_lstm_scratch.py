"""lstm_scratch (A 7.4, D 7.2-7.4): scratch cells, hand BPTT, bidirectional states."""

import json

import numpy as np
import pytest

from recipes import lstm_scratch


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("lstm_scratch")
    assert lstm_scratch.main(["--out", str(out)]) == 0
    assert (out / "nico_loss.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_scratch_cells_equal_keras(summary):
    for name, difference in summary["cell_differences"].items():
        assert difference < 1e-5, name
    for keras_count, scratch_count in summary["parameter_counts"].values():
        assert keras_count == scratch_count


def test_parameter_counts_of_the_notes(summary):
    assert summary["lstm_5_9_parameters"] == 300  # D 7.3: 4 (h (h + x) + h), h = 5, x = 9
    assert summary["gru_5_9_parameters"] == 225  # 3 ((x + h) h + h)
    assert summary["parameter_formulas"] == {"lstm": 300, "gru": 225}


def test_hand_bptt_equals_the_engine(summary):
    for variant in ("standard", "nico"):
        numbers = summary["bptt"][variant]
        assert numbers["loss_engine"] == pytest.approx(numbers["loss_numpy"], rel=1e-5)
        assert numbers["max_relative_difference"] < 1e-5


def test_nico_toy_problem_converges(summary):
    losses = summary["nico_losses"]
    assert len(losses) == 100 and losses[-1] < losses[0] / 100
    np.testing.assert_allclose(summary["nico_final_outputs"], lstm_scratch.NICO_TARGETS, atol=0.01)


def test_bidirectional_final_states(summary):
    assert summary["bidirectional"] == {
        "forward_is_last_output": True,
        "backward_is_first_output": True,
        "backward_is_not_last_output": True,
    }


@pytest.mark.parametrize("variant", ["standard", "nico"])
def test_hand_bptt_equals_finite_differences(variant):
    """The NumPy backward pass against central differences in float64, independent of any backend."""
    rng = np.random.default_rng(1)
    inputs, targets = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 4))
    kernel, bias = rng.normal(size=(5, 8)) * 0.5, rng.normal(size=8) * 0.5

    def loss(k, b):
        h, _ = lstm_scratch.lstm_forward(inputs, k, b, variant)
        return lstm_scratch.squared_loss(h, targets)[0]

    h, cache = lstm_scratch.lstm_forward(inputs, kernel, bias, variant)
    d_kernel, d_bias = lstm_scratch.lstm_backward(
        lstm_scratch.squared_loss(h, targets)[1], kernel, cache, variant
    )
    step = 1e-6
    for index in [(0, 0), (2, 5), (4, 7), (3, 2)]:
        plus, minus = kernel.copy(), kernel.copy()
        plus[index] += step
        minus[index] -= step
        expected = (loss(plus, bias) - loss(minus, bias)) / (2 * step)
        assert d_kernel[index] == pytest.approx(expected, rel=1e-6, abs=1e-8)
    plus, minus = bias.copy(), bias.copy()
    plus[6] += step
    minus[6] -= step
    assert d_bias[6] == pytest.approx((loss(kernel, plus) - loss(kernel, minus)) / (2 * step), rel=1e-6)
