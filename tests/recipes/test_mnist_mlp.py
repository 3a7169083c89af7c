"""mnist_mlp (B 2.4.2, B 2.7): the MLP and CNN of the notes on mnist5k, a quick fit, parity."""

import json

import keras
import pytest

from recipes import mnist_mlp
from recipes.common import cli, image_classification
from tests.fixtures.make_parity import STEPS, FitTrainer

PARITY_BATCH = 8


def parity_build():
    """The notes' CNN compiled as the recipe compiles it (Adam on a cosine spanning the 5 steps,
    cross-entropy on logits, XLA on TensorFlow), stepped by Keras' train_on_batch. Nothing random
    in a step (no dropout, no batch norm): relative 1e-4."""
    config = mnist_mlp.Config(epochs=1, batch_size=PARITY_BATCH)
    model = image_classification._compiled(mnist_mlp.build_cnn, config, STEPS * PARITY_BATCH)
    return FitTrainer(model)


def parity_inputs():
    """The first 40 mnist5k training digits, scaled as the recipe scales them."""
    config = mnist_mlp.Config(batch_size=PARITY_BATCH, limit=STEPS * PARITY_BATCH, shifted_copies=0)
    x, y, _, _ = image_classification.load_mnist5k(config)
    return {"images": x.reshape(STEPS, PARITY_BATCH, 28, 28, 1), "labels": y.reshape(STEPS, -1)}


PARITY_CASES = {"mnist_cnn": (parity_build, parity_inputs)}


def test_parameter_counts_and_shapes_of_the_notes():
    with image_classification.without_weights():
        mlp, cnn = mnist_mlp.build_mlp(), mnist_mlp.build_cnn()
    # 784*512+512 + 2*(512*512+512) + 512*10+10 = 932,362 (B 2.4.2's four Linear layers).
    assert mlp.count_params() == mnist_mlp.PARAMS["mlp"] == 932_362
    # 320 + 18,496 + 31,370 = 50,186 (B 2.7).
    assert cnn.count_params() == mnist_mlp.PARAMS["cnn"] == 50_186
    shapes = {k: tuple(cnn.get_layer(k).output.shape[1:]) for k in mnist_mlp.SHAPES}
    assert shapes == mnist_mlp.SHAPES


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("mnist_mlp") / "run"
    # The MLP: the CNN's convolution gradients take seconds to compile on JAX; the CNN trains in
    # the parity case below on every backend.
    assert mnist_mlp.main(["--quick", "--model", "mlp", "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_quick_run_learns_and_keeps_its_checkpoints(quick_run):
    out, summary = quick_run
    assert summary["model"] == "mnist_mlp" and summary["parameters"]["total"] == 932_362
    assert summary["train_images"] == 512 and summary["held_out_images"] == 200
    # 16 steps at 3e-3: measured 0.8-0.9 held-out accuracy; an untrained net scores about 0.1.
    assert summary["held_out_accuracy"] >= 0.6, summary["held_out_accuracy"]
    assert summary["held_out_loss"] < 1.5  # untrained: about ln 10 = 2.30
    for epoch in (1, 2):
        assert (out / "checkpoints" / f"epoch-{epoch:04d}.npz").exists()
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and "val_accuracy" in rows[0]
    assert keras.saving.load_model(out / "model.keras").count_params() == 932_362


def test_a_second_run_into_the_same_folder_is_refused(quick_run, capsys):
    out, _ = quick_run
    capsys.readouterr()
    assert cli.run(mnist_mlp.main, ["--quick", "--model", "mlp", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--resume" in err[0] and "--overwrite" in err[0], err


def test_bad_input_is_one_line(capsys, tmp_path):
    assert cli.run(mnist_mlp.main, ["--dropout", "1.5", "--out", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.strip() == "error: --dropout must be in [0, 1), got 1.5"
    assert cli.run(mnist_mlp.main, ["--model", "cnn", "--dropout", "0.5", "--out", str(tmp_path)]) == 2
    assert "--dropout applies to --model mlp only" in capsys.readouterr().err
