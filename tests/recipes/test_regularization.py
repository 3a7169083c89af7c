"""regularization (D 3.3, B 2.4): each regulariser's facts, and each shrinks the overfit gap."""

import json

import numpy as np
import pytest

from recipes import regularization
from recipes.common import cli


@pytest.fixture(scope="module")
def summary(tmp_path_factory):
    out = tmp_path_factory.mktemp("regularization")
    assert regularization.main(["--quick", "--out", str(out)]) == 0
    assert (out / "curves.png").stat().st_size > 0
    return json.loads((out / "summary.json").read_text())


def test_label_smoothing_targets_and_keras_loss(summary):
    facts = summary["facts"]["label_smoothing"]
    # eps 0.1: 1 - 0.1 + 0.1/10 = 0.91 and 0.1/10 = 0.01; 9 classes: 0.911111 and 0.011111.
    np.testing.assert_allclose(facts["ten_classes"], [0.91, 0.01], atol=1e-12)
    np.testing.assert_allclose(facts["nine_classes"], [0.911111, 0.011111], atol=1e-6)
    assert facts["keras_loss"] == pytest.approx(facts["manual_loss"], rel=1e-5)


def test_l2_is_half_alpha_times_the_squared_norm(summary):
    facts = summary["facts"]["l2"]
    # keras.regularizers.L2(l) adds l sum w^2: the notes' (alpha / 2) ||W||^2 is L2(alpha / 2).
    assert facts["keras_penalty"] == pytest.approx(facts["half_alpha_sum_w2"], rel=1e-6)
    assert facts["keras_penalty"] > 0


def test_dropout_zeroes_half_and_keeps_the_mean(summary):
    facts = summary["facts"]["dropout"]
    assert facts["zero_fraction"] == pytest.approx(0.5, abs=0.02)
    assert facts["mean"] == pytest.approx(1.0, abs=0.05)
    assert facts["kept_value"] == pytest.approx(2.0)  # inverted dropout scales by 1 / (1 - 0.5)
    assert facts["identity_at_inference"]


def test_every_regulariser_shrinks_the_gap(summary):
    runs = summary["runs"]
    assert set(runs) == set(regularization.METHODS)
    plain = runs["none"]
    # The plain net memorises its 100 digits (train cross-entropy ~0) and its held-out loss grows.
    assert plain["train_loss"] < 0.01 and plain["train_accuracy"] == 1.0
    assert plain["gap"] > 0.8
    for method in regularization.METHODS[1:]:
        # Seeded quick runs, gap with the regulariser / plain gap, measured (L2, dropout, label
        # smoothing, early stopping, augmentation): torch 0.78 0.90 0.79 0.77 0.55 (plain 1.12);
        # JAX 0.75 0.81 0.79 0.71 0.49 (1.14); TensorFlow 0.74 0.85 0.71 0.73 0.48 (1.24).
        assert runs[method]["gap"] < 0.95 * plain["gap"], method
        assert runs[method]["held_out_accuracy"] > 0.5, method  # they all still learn (chance 0.1)
    stop = runs["early_stopping"]
    # Early stopping stopped before the last epoch and restored the best held-out epoch.
    assert stop["stopped_epoch"] is not None and stop["stopped_epoch"] < plain["epochs"]
    assert stop["held_out_loss"] == pytest.approx(min(stop["curves"]["held_out"]), rel=1e-4)
    assert len(plain["curves"]["train"]) == plain["epochs"] == 15  # 60 steps of 25 of 100 digits


def test_bad_input_is_one_line(capsys, tmp_path):
    assert cli.run(regularization.main, ["--train-size", "5000", "--out", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err.strip() == "error: mnist5k has 4,000 training and 1,000 held-out digits"
    )
