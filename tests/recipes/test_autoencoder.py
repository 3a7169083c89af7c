"""autoencoder (A 9.1): the notes' parameter counts and shapes, a quick run that learns, the 2-D code
picture, the fit step's parity across backends."""

import json

import keras
import numpy as np
import pytest

from recipes import autoencoder, engine
from recipes.common import cli
from tests.fixtures.make_parity import STEPS, FitTrainer


def test_parameter_counts_and_shapes_of_the_notes():
    with engine.without_weights():
        mlp, _ = autoencoder.build_mlp(autoencoder.Config())
        encoder, decoder = autoencoder.build_conv_parts()
    # 784*256+256 + 256*128+128 + 128*256+256 + 256*784+784 = 468,368
    assert mlp.count_params() == autoencoder.PARAMS["mlp"] == 468_368
    # 832 + 51,264 + 1,049,600 + 131,200; 132,096 + 4,096 + 6,428,800 + 25,088 + 131,136 + 256 + 1,025
    assert encoder.count_params() == autoencoder.PARAMS["conv_encoder"] == 1_232_896
    assert decoder.count_params() == autoencoder.PARAMS["conv_decoder"] == 6_722_497
    trainable = sum(int(np.prod(w.shape)) for w in decoder.trainable_weights)
    assert trainable == autoencoder.CONV_DECODER_TRAINABLE == 6_707_777
    shapes = {k: tuple(encoder.get_layer(k).output.shape[1:]) for k in autoencoder.CONV_SHAPES}
    assert shapes == autoencoder.CONV_SHAPES
    assert tuple(decoder.output.shape[1:]) == (28, 28, 1)


def parity_build():
    """The MLP autoencoder compiled as the recipe compiles it (RMSprop 0.01, MSE), stepped by Keras'
    train_on_batch; latent 16."""
    model, _ = autoencoder.compiled(autoencoder.Config(latent=16))
    return FitTrainer(model)


def parity_inputs():
    """The first 40 mnist5k training digits as inputs and targets."""
    x, _, _ = autoencoder.load_data(autoencoder.Config(batch_size=8, limit=STEPS * 8))
    x = x.reshape(STEPS, 8, 28, 28, 1)
    return {"images": x, "targets": x}


PARITY_CASES = {"autoencoder": (parity_build, parity_inputs)}


def make_saved_model(folder):
    """MODEL_CASES: the quick run's MLP autoencoder (latent 2) and four held-out digits."""
    assert autoencoder.main(["--quick", "--latent", "2", "--out", str(folder)]) == 0
    _, x_test, _ = autoencoder.load_data(autoencoder.Config(test_limit=4))
    # Without RMSprop's slots: half the file.
    trained = keras.saving.load_model(folder / "model.keras")
    bare, _ = autoencoder.build_mlp(autoencoder.Config(latent=2))  # not compiled
    bare.set_weights(trained.get_weights())
    bare.save(folder / "weights_only.keras")
    return folder / "weights_only.keras", x_test


MODEL_CASES = {"autoencoder": make_saved_model}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("autoencoder")
    assert autoencoder.main(["--quick", "--latent", "2", "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_quick_run_learns_and_draws_the_code(quick_run):
    out, summary = quick_run
    assert summary["parameters"] == 468_368 - 2 * 126 * 256 - 126  # latent 2 instead of 128
    # 16 steps: measured 0.070 against the untrained 0.234 (sigmoid outputs near 1/2 everywhere).
    assert summary["heldout_mse"] < 0.5 * summary["untrained_heldout_mse"], summary
    for name in ("reconstructions.png", "latent.png", "model.keras", "encoder.keras", "metrics.csv"):
        assert (out / name).stat().st_size > 0
    codes = keras.saving.load_model(out / "encoder.keras").predict(np.zeros((1, 28, 28, 1)), verbose=0)
    assert codes.shape == (1, 2) and np.all((codes > 0) & (codes < 1))  # sigmoid codes


def test_bad_input_is_one_line(capsys, tmp_path):
    assert cli.run(autoencoder.main, ["--latent", "0", "--out", str(tmp_path)]) == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: --latent must be at least 1 and --learning-rate positive"
    )
    assert cli.run(autoencoder.main, ["--model", "conv", "--init-std", "1", "--out", str(tmp_path)]) == 2
    assert "--init-std must be positive and applies to --model mlp only" in capsys.readouterr().err
