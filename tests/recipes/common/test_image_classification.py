"""recipes.common.image_classification: the digits fitted to a model's input and split once,
parameter counts of models built without weights, and a `model.fit` run that resumes."""

import json
import types

import keras
import numpy as np

from datasets import load_digits28
from recipes.common import image_classification


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


def test_a_fit_run_writes_its_outputs_and_resumes(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 8, 8, 1), dtype="float32"), rng.integers(0, 10, 32)
    data = (x, y, x[:8], y[:8])

    def build():
        inputs = keras.Input((8, 8, 1))
        outputs = keras.layers.Dense(10)(keras.layers.Flatten()(inputs))
        return keras.Model(inputs, outputs)

    config = types.SimpleNamespace(
        epochs=1, batch_size=16, learning_rate=1e-3, resume=False, quick=True, dataset="digits"
    )
    image_classification.train_and_evaluate(build, config, data, tmp_path, "tiny")
    config.epochs, config.resume = 2, True
    summary = image_classification.train_and_evaluate(build, config, data, tmp_path, "tiny")
    checkpoint = tmp_path / "checkpoints" / "last.keras"
    assert f"Resuming from {checkpoint} after epoch 1" in capsys.readouterr().out
    rows = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and [r.split(",")[0] for r in rows[1:]] == ["0", "1"]
    assert summary == json.loads((tmp_path / "summary.json").read_text())
    assert summary["parameters"]["total"] == 650 and (tmp_path / "curves.png").stat().st_size > 0
