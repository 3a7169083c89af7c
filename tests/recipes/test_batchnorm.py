"""batchnorm (A 10.2, B 2.6.2): the backward pass three ways and Keras' gradient; BN trains."""

import json

import numpy as np
import pytest

from recipes import batchnorm
from recipes.common import cli
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("batchnorm")
    assert batchnorm.main(["--quick", "--out", str(out)]) == 0
    assert (out / "training.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_keras_gradient_equals_the_fast_formula(summary):
    check = summary["gradient_check"]
    # float32 Keras on the current backend against float64 NumPy, gradients of size ~1-10.
    for name, difference in check["keras_vs_fast_max_abs"].items():
        assert difference < 1e-5, name


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_fast_backward_equals_graph_and_finite_differences():
    check = batchnorm.gradient_check(seed=3)
    for name in ("dx", "dgamma", "dbeta"):
        assert check["fast_vs_graph"][name] < 1e-12, name
        assert check["fast_vs_finite_differences"][name] < 1e-6, name
    assert check["output_mean_max"] < 1e-12  # X_n has zero mean per feature


def test_parameter_counts_of_the_notes(summary):
    runs = summary["runs"]
    # 25,120 + 64 + 1,056 + 64 + 330 trainable, + 2 x 64 moving mean / variance.
    assert (runs["with BN"]["trainable"], runs["with BN"]["non_trainable"]) == (26_634, 128)
    assert (runs["without BN"]["trainable"], runs["without BN"]["non_trainable"]) == (26_506, 0)


def test_batch_norm_reaches_a_lower_loss_in_the_same_steps(summary):
    with_bn, without = summary["runs"]["with BN"], summary["runs"]["without BN"]
    assert summary["steps"] == 100 and len(with_bn["losses"]) == len(without["losses"]) == 100
    # The same 100 batches from the same initial Dense weights: with BN the training loss falls
    # faster. Mean over all steps with / without BN, measured: JAX 0.592 / 0.653, torch 0.578 /
    # 0.656, TensorFlow 0.595 / 0.634; over the first 20 steps 1.34 / 1.48-1.57 on all three.
    # (By step 100 both are near 0.2; the default run's 1,250 steps end at 0.073 / 0.073 on the
    # training batches, held-out loss 0.347 / 0.527, as the notes' lab: 0.123 / 0.170.)
    assert np.mean(with_bn["losses"]) < 0.96 * np.mean(without["losses"])
    first = slice(0, 20)
    assert np.mean(with_bn["losses"][first]) < 0.95 * np.mean(without["losses"][first])
    # Both learn: an untrained 10-class net is at ln 10 = 2.30, 10% accuracy.
    assert min(with_bn["held_out_accuracy"], without["held_out_accuracy"]) > 0.75


def test_bad_input_is_one_line(capsys, tmp_path):
    assert cli.run(batchnorm.main, ["--steps", "0", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == "error: --steps must be at least 1, got 0"
    assert cli.run(batchnorm.main, ["--epochs", "3", "--out", str(tmp_path)]) == 2
    assert "--epochs is not used" in capsys.readouterr().err
