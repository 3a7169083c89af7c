"""nn_in_11_lines (A 4.1): trask's NumPy network and the Keras network that tracks it."""

import json

import numpy as np
import pytest

from recipes import nn_in_11_lines
from recipes.common import cli
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("nn_in_11_lines")
    assert nn_in_11_lines.main(["--quick", "--out", str(out)]) == 0
    assert (out / "loss.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_keras_tracks_numpy_step_for_step(summary):
    # Float32 Keras against float64 NumPy from the same weights: 1e-5 after every compared step.
    assert summary["compared_steps"][-1] == 100
    assert max(summary["weight_differences"]) < 1e-5
    np.testing.assert_allclose(
        summary["keras_losses"], summary["numpy_losses_same_steps"], rtol=1e-5, atol=1e-7
    )
    assert summary["parameters"] == 3 * 4 + 4 * 1  # no biases


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_numpy_network_gives_the_derived_outputs():
    # A 4.1 DERIVED: np.random.seed(1), 60,000 iterations -> [0.0026, 0.9967, 0.9970, 0.0039].
    outputs, losses, _ = nn_in_11_lines.numpy_network(1, 60_000)
    np.testing.assert_allclose(outputs, nn_in_11_lines.SEED1_OUTPUTS, atol=5e-5)
    assert np.abs(outputs - nn_in_11_lines.Y[:, 0]).max() == pytest.approx(0.0039, abs=5e-5)
    assert losses[-1] < 1e-4 < losses[0]
    # The legacy generator's first draws: the notes' syn0 starts at 2 * 0.417022 - 1.
    syn0, _ = nn_in_11_lines.initial_weights(1)
    assert syn0[0, 0] == pytest.approx(2 * 0.417022004702574 - 1)


@pytest.mark.skipif(BACKEND != "jax", reason="argument checks only; runs once")
def test_unused_flags_are_refused():
    with pytest.raises(cli.UsageError, match="--epochs"):
        nn_in_11_lines.main(["--epochs", "3"])
    with pytest.raises(cli.UsageError, match="--keras-steps"):
        nn_in_11_lines.main(["--iterations", "10", "--keras-steps", "20"])
