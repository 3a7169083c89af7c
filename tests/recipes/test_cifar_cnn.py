"""The CIFAR CNN of A 5.2: shapes and parameter counts of the notes, a --quick run, offline."""

import json

import keras
import pytest

from recipes import cifar_cnn
from recipes.common import cli, image_classification
from tests.fixtures.make_parity import STEPS, FitTrainer

PARITY_BATCH = 8


def parity_build():
    """Mode 2 (batch norm: no dropout, nothing random in a step) at 1/16 of the notes' widths,
    compiled by the recipe's own `_compiled` (Adam on a cosine spanning the 5 steps, cross-entropy on
    logits, XLA on TensorFlow) and stepped by Keras' train_on_batch."""
    config = cifar_cnn.Config(epochs=1, batch_size=PARITY_BATCH)
    model = image_classification._compiled(
        lambda: cifar_cnn.build_model(True, width=1 / 16), config, STEPS * PARITY_BATCH
    )
    trainer = FitTrainer(model)
    # Relative 1e-3, not 1e-4: batch norm cancels a shift of fc3_1's bias, and of a conv3_2 channel
    # whose pooled outputs are all positive in a batch, so their true gradient is 0 and each backend
    # computes float32 noise of about 1e-7 instead, different on every backend. That is Adam's
    # epsilon (1e-7): its first step turns the noise into updates of 0.5-0.9 times the learning
    # rate, in a direction that differs by backend, and a channel cancelled in batch 1 is not in
    # batch 2. Measured against TensorFlow: 2.9e-4 on JAX and torch (JAX against torch: 1.9e-5 at
    # step 2); swapping TensorFlow's conv3_2 bias after step 1 into JAX's weights accounts for the
    # whole step-2 difference. (A real error is larger: Keras' sparse embedding updates on
    # TensorFlow, see engine.dense_gradients, moved the translation cases' losses by 3e-3 to 5e-3.)
    trainer.rtol = 1e-3
    return trainer


def parity_inputs():
    """The first 40 embedded training digits, prepared as the recipe prepares them (32x32x3)."""
    (images, labels), _ = image_classification.load_split("digits")
    count = STEPS * PARITY_BATCH
    x = image_classification.fit_images(images[:count], 32, 3)
    return {
        "images": x.reshape(STEPS, PARITY_BATCH, 32, 32, 3),
        "labels": labels[:count].reshape(STEPS, -1),
    }


PARITY_CASES = {"cifar_cnn": (parity_build, parity_inputs)}


@pytest.mark.parametrize("batch_norm", [False, True])
def test_shapes_and_parameter_counts_of_the_notes(batch_norm):
    with image_classification.without_weights():
        model = cifar_cnn.build_model(batch_norm)
    assert cifar_cnn.feature_shapes(model) == cifar_cnn.SHAPES
    assert model.output.shape == (None, 10)
    counts = image_classification.parameter_counts(model)
    # A 5.2: mode 1 3,445,034; mode 2 3,449,130 = 3,447,082 trainable + 2,048 statistics.
    expected = (3_447_082, 2_048) if batch_norm else (3_445_034, 0)
    assert (counts["trainable"], counts["non_trainable"]) == expected
    assert counts["total"] == cifar_cnn.PARAMS[batch_norm]


def test_quick_run_writes_its_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    assert cifar_cnn.main(["--quick", "--batch-norm", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["mode"] == 2 and summary["parameters"]["total"] == 3_449_130
    assert summary["feature_shapes"]["pool3_3"] == [4, 4, 128]
    assert summary["train_images"] == 128 and summary["held_out_images"] == 32
    # 8 steps learn: 0.69-0.84 measured on the three backends and two seeds; chance is 0.1.
    assert summary["held_out_accuracy"] >= 0.3, summary["held_out_accuracy"]
    assert (out / "checkpoints" / "epoch-0001.npz").exists() and (out / "curves.png").exists()
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].split(",")[:2] == ["epoch", "accuracy"] and len(rows) == 2
    assert keras.saving.load_model(out / "model.keras").count_params() == 3_449_130

    # A rerun into the finished run's folder, or an --out that is a file: one line, exit 2, nothing
    # deleted or changed (issue 16, items 4 and 5).
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert cli.run(cifar_cnn.main, ["--quick", "--batch-norm", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {out} holds a previous run ("), err
    assert "--resume" in err[0] and "--overwrite" in err[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files
    assert cli.run(cifar_cnn.main, ["--quick", "--out", str(out / "summary.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: the output folder {out / 'summary.json'} is a file (--out must name a folder)"
    ]


def test_cifar10_offline_is_one_line_and_exit_2(tmp_path, no_network, capsys):
    assert cli.run(cifar_cnn.main, ["--dataset", "cifar10", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not download cifar10" in err[0] and "--dataset digits" in err[0]
