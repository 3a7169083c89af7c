"""recipes.common.image_classification: the digits fitted to a model's input and split once,
parameter counts of models built without weights, and a `model.fit` run that resumes."""

import json
import types

import keras
import numpy as np
import pytest

from datasets import load_digits28
from recipes import engine
from recipes.common import image_classification
from recipes.engine import loop as engine_loop
from tests.conftest import failing_replace


def test_digits_are_padded_to_32x32x3_and_split_once():
    images, _ = load_digits28()
    x = image_classification.fit_images(images[:5], 32, 3)
    assert x.shape == (5, 32, 32, 3) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 2:30, 2:30, 1], images[:5, ..., 0] / np.float32(255))
    assert x[:, :2].max() == 0 and x[:, 30:].max() == 0 and np.all(x[..., 0] == x[..., 2])
    assert image_classification.fit_images(images[:2], 67, 3).shape == (2, 67, 67, 3)
    (train, y), (held_out, y_held_out) = image_classification.load_split("digits")
    assert (len(train), len(held_out)) == (1438, 359)
    again = image_classification.load_split("digits")[1]
    np.testing.assert_array_equal(again[0], held_out)
    assert set(np.unique(y_held_out)) == set(range(10))
    # No held-out digit is among the training digits.
    seen = {t.tobytes() for t in train}
    assert sum(h.tobytes() in seen for h in held_out) <= 2  # sklearn's set has a few duplicates.


def test_parameter_counts_of_a_model_built_without_weights():
    with image_classification.without_weights():
        model = keras.Sequential(
            [keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()]
        )
    # Dense 4 * 3 + 3; batch norm: gamma and beta trainable, the moving mean and variance not.
    counts = image_classification.parameter_counts(model)
    assert counts == {"total": 27, "trainable": 21, "non_trainable": 6}


def fit_run(out, epochs, **flags):
    """train_and_evaluate of a tiny Dense model on 32 random 8x8 images (2 steps an epoch)."""
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 8, 8, 1), dtype="float32"), rng.integers(0, 10, 32)

    def build():
        engine.set_seed(0)  # as the recipes do: the same initial weights in every run
        inputs = keras.Input((8, 8, 1))
        hidden = keras.layers.Dropout(0.3, seed=1)(keras.layers.Flatten()(inputs))
        return keras.Model(inputs, keras.layers.Dense(10)(hidden))

    config = types.SimpleNamespace(
        epochs=epochs, batch_size=16, learning_rate=1e-2, seed=0, quick=True, dataset="digits"
    )
    config.__dict__.update(dict(resume=False, overwrite=False) | flags)
    summary = image_classification.train_and_evaluate(build, config, (x, y, x[:8], y[:8]), out, "tiny")
    return summary, engine.read_metrics(out / "metrics.csv")


def checkpoint_arrays(path):
    with np.load(path) as data:
        return {key: data[key] for key in data.files if key != "__meta__"}


def test_a_fit_run_resumed_after_a_failed_checkpoint_write_equals_the_uninterrupted_run(
    tmp_path, monkeypatch, capsys
):
    summary, straight = fit_run(tmp_path / "straight", 3)
    assert summary == json.loads((tmp_path / "straight" / "summary.json").read_text())
    assert summary["parameters"]["total"] == 650 and [row["epoch"] for row in straight] == [1, 2, 3]
    assert (tmp_path / "straight" / "curves.png").stat().st_size > 0

    # The disk fills up while epoch 3's checkpoint is written: epochs 1 and 2 stay, no .tmp.
    out = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        patch.setattr(engine_loop.os, "replace", failing_replace("epoch-0003.npz"))
        with pytest.raises(engine.CheckpointError, match="could not write checkpoint .*epoch-0003"):
            fit_run(out, 3)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "epoch-0001.npz",
        "epoch-0002.npz",
    ]
    # The learning rate's cosine spans --epochs: another number is refused with one line.
    with pytest.raises(engine.CheckpointError, match="belongs to a run of --epochs 3"):
        fit_run(out, 4, resume=True)
    capsys.readouterr()
    _, resumed = fit_run(out, 3, resume=True)
    assert f"Resumed from {out / 'checkpoints' / 'epoch-0002.npz'} (epoch 2" in capsys.readouterr().out
    assert resumed == straight  # metrics rows, to the bit
    # The dropout's seed state, kernel and bias; Adam's iteration count and two slots per weight.
    expected = checkpoint_arrays(tmp_path / "straight" / "checkpoints" / "epoch-0003.npz")
    again = checkpoint_arrays(out / "checkpoints" / "epoch-0003.npz")
    assert expected.keys() == again.keys() and len(expected) == 3 + 1 + 2 * 2
    for key in expected:
        np.testing.assert_allclose(again[key], expected[key], rtol=1e-6, atol=1e-7, err_msg=key)

    # A new run there is refused (engine.Loop's tests: --overwrite starts over).
    with pytest.raises(engine.OutputError, match="holds a previous run"):
        fit_run(out, 3)
