"""python -m recipes.dcgan on the current backend: structure, outputs, resume, failures."""

import csv
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from recipes import dcgan
from recipes.common import cli, gan_training
from tests.conftest import BACKEND, ROOT, assert_plain_log, run_module


def parity_inputs():
    """Five batches of real digits in [0, 1] and the noise for D's and G's half-steps (batch 8)."""
    from datasets import load_digits28, to_float

    images = to_float(load_digits28()[0][:40]).reshape(5, 8, 28, 28, 1)
    rng = np.random.default_rng(1234)
    return {
        "real": images,
        "z_d": rng.standard_normal((5, 8, 100)).astype("float32"),
        "z_g": rng.standard_normal((5, 8, 100)).astype("float32"),
    }


PARITY_CASES = {
    "dcgan": (lambda: dcgan.DCGAN(dcgan.Config(seed=7, width=0.125, batch_size=8)), parity_inputs),
}


@pytest.mark.parametrize(
    "arch,discriminator,generator",
    [
        # The notes' CelebA table; the MNIST structure without the conditional label channels.
        ("celeba", 4_318_337, 5_137_283),
        ("mnist", 3_740_175, 6_974_849),
    ],
)
def test_parameter_counts(arch, discriminator, generator):
    cfg = dcgan.Config(arch=arch)
    assert dcgan.build_discriminator(cfg).count_params() == discriminator
    assert dcgan.build_generator(cfg).count_params() == generator


def test_transposed_convolution_example_of_the_notes():
    keras_out, sub_pixel = dcgan.transposed_convolution_example()
    np.testing.assert_array_equal(keras_out, dcgan.NOTES_TRANSPOSED_CONV)
    np.testing.assert_array_equal(sub_pixel, dcgan.NOTES_TRANSPOSED_CONV)


def test_losses_are_the_gan_objective():
    logits = np.array([[2.0], [-1.0]], "float32")
    sigmoid = 1 / (1 + np.exp(-logits))
    d_loss = gan_training.discriminator_loss(logits, -logits)
    expected = -np.mean(np.log(sigmoid)) - np.mean(np.log(1 - (1 / (1 + np.exp(logits)))))
    assert float(d_loss) == pytest.approx(expected, rel=1e-5)
    g_loss = gan_training.generator_loss(logits)
    assert float(g_loss) == pytest.approx(-np.mean(np.log(sigmoid)), rel=1e-5)


# A shortened run on mnist5k (248 steps of a quarter-width DCGAN on 1,000 real digits, about a
# minute): the score must fall far below the untrained generator's. The default run reaches the
# 20s-30s (README); this one measured 816 -> 75 on JAX.
SHORT_RUN = ["--limit", "1000", "--width", "0.25", "--batch-size", "32", "--learning-rate", "5e-4"]
SHORT_RUN += ["--epochs", "8", "--score-every", "4", "--samples", "500"]


def test_short_run_on_mnist5k_writes_its_outputs_and_learns_digits(tmp_path):
    out = tmp_path / "run"
    proc = run_module("recipes.dcgan", *SHORT_RUN, "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "DCGAN (mnist) on 1000 images (28, 28, 1)" in proc.stdout
    assert "transposed convolution check: [[1, 1, 3, 2], [1, 1, 3, 2], [4, 4, 10, 6]" in proc.stdout
    assert_plain_log(proc.stdout, epochs=8)  # stdout is a pipe: no progress bar in engine.Loop
    for name in ["samples/epoch-001.png", "samples/epoch-008.png", "samples.png", "losses.png"]:
        assert (out / name).stat().st_size > 200, name
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(float(row["epoch"])) for row in rows] == list(range(1, 9))
    assert {"d_loss", "g_loss", "d_real", "d_fake", "fid", "steps_per_second"} <= set(rows[0])
    assert all(np.isfinite(float(row["d_loss"])) for row in rows)
    assert [row["fid"] != "" for row in rows] == [False, False, False, True] * 2
    assert list((out / "tensorboard").glob("events.out.tfevents.*"))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == BACKEND and summary["epochs"] == 8
    assert summary["untrained"]["fid"] > 600  # Gray blobs, far from digits (blank images: 978).
    assert summary["trained"]["fid"] < 200, summary["trained"]  # measured 75 (JAX)
    assert summary["trained"]["class_entropy"] > 1.8  # many digits, not one (log 10 = 2.30)

    # The saved models are plain Keras: they load without importing this project's layers.
    generator = keras.saving.load_model(out / "generator.keras")
    discriminator = keras.saving.load_model(out / "discriminator.keras")
    z = np.random.default_rng(0).normal(size=(3, 100)).astype("float32")
    images = ops.convert_to_numpy(generator(z, training=False))
    assert images.shape == (3, 28, 28, 1) and images.min() >= 0 and images.max() <= 1
    assert ops.convert_to_numpy(discriminator(images)).shape == (3, 1)


def test_celeba_structure_quick_run(tmp_path):
    assert dcgan.main(["--quick", "--arch", "celeba", "--epochs", "1", "--out", str(tmp_path)]) == 0
    generator = keras.saving.load_model(tmp_path / "generator.keras")
    assert generator.output_shape == (None, 64, 64, 3)
    assert (tmp_path / "samples" / "epoch-001.png").exists()


def checkpoint_arrays(path):
    with np.load(path) as data:
        return {key: data[key] for key in data.files if key != "__meta__"}


def _raise(error):
    def fail(*args, **kwargs):
        raise error

    return fail


def test_resumed_run_equals_uninterrupted_run(tmp_path, monkeypatch):
    args = ["--quick", "--samples", "50"]
    assert dcgan.main([*args, "--epochs", "3", "--out", str(tmp_path / "straight")]) == 0
    resumed = tmp_path / "resumed"
    with monkeypatch.context() as patch:  # Killed after its checkpoint, before its end outputs.
        patch.setattr(gan_training, "plot_history", _raise(KeyboardInterrupt))
        with pytest.raises(KeyboardInterrupt):
            dcgan.main([*args, "--epochs", "1", "--out", str(resumed)])
    assert dcgan.main([*args, "--epochs", "3", "--out", str(resumed), "--resume"]) == 0
    # The score before training comes from the killed first run (was: the resumed weights' score).
    before = json.loads((tmp_path / "straight" / "summary.json").read_text())["untrained"]
    again = json.loads((resumed / "summary.json").read_text())
    assert again["untrained"] == pytest.approx(before, rel=1e-5) and "resumed" not in again

    straight = checkpoint_arrays(tmp_path / "straight" / "checkpoints" / "epoch-0003.npz")
    again = checkpoint_arrays(resumed / "checkpoints" / "epoch-0003.npz")
    assert straight.keys() == again.keys()
    # Weights, BatchNorm statistics, both optimizers' slots and the noise seed state.
    assert any(key.startswith("g_optimizer/") for key in straight)
    assert any(key.startswith("noise/") for key in straight)
    for key in straight:
        np.testing.assert_allclose(again[key], straight[key], rtol=1e-6, atol=1e-7, err_msg=key)
    with open(resumed / "metrics.csv") as f:
        assert [int(float(row["epoch"])) for row in csv.DictReader(f)] == [1, 2, 3]


def test_offline_download_fails_with_one_line(tmp_path, no_network):
    proc = run_module(
        "recipes.dcgan", "--quick", "--dataset", "mnist", "--out", tmp_path, env=no_network
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("error: could not download mnist"), proc.stderr
    assert "digits" in lines[-1]  # Names the embedded alternative.


def test_corrupt_checkpoint_fails_with_one_line(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    (checkpoints / "epoch-0001.npz").write_bytes(b"\x00" * 100)
    proc = run_module("recipes.dcgan", "--quick", "--resume", "--out", tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: checkpoint {checkpoints / 'epoch-0001.npz'} is corrupt or unreadable")
    )


@pytest.mark.parametrize(
    "args,message",
    [
        (["--dataset", "cifar"], "invalid choice: 'cifar'"),
        (["--batch-size", "0"], "--batch-size must be at least 1"),
        (["--data-dir", "/nonexistent"], "error: no images"),
    ],
)
def test_bad_arguments_fail_with_one_line(args, message, tmp_path):
    proc = run_module("recipes.dcgan", *args, "--out", tmp_path / "out", timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert message in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out").exists()  # Nothing written for a run that cannot start.


@pytest.mark.skipif(BACKEND != "jax", reason="argument checks before any training; runs once")
@pytest.mark.parametrize(
    "args,message",
    [
        # Torch keeps Keras seeds as int32 and numpy refuses negative ones: was a traceback.
        (["--seed", "-5"], "--seed must be between 0 and 1073741823, got -5"),
        (["--seed", "5000000000"], "--seed must be between 0 and 1073741823, got 5000000000"),
        (["--samples", "0"], "--samples must be at least 2, got 0"),  # Was Keras' UnboundLocalError.
        (["--samples", "1"], "--samples must be at least 2, got 1"),  # No covariance from one.
        (["--limit", "0"], "--limit must be at least 1, got 0"),
        (["--limit", "-3"], "--limit must be at least 1, got -3"),  # Was: all but 3 images.
    ],
)
def test_out_of_range_numbers_fail_with_one_line(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:  # argparse's parser.error, or cli.run's exit code
        sys.exit(cli.run(dcgan.main, [*args, "--quick", "--out", str(tmp_path / "out")]))
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and message in err.strip().splitlines()[-1], err
    assert not (tmp_path / "out").exists()


def test_help_does_not_import_a_backend():
    code = (
        "import sys\n"
        "from recipes import dcgan\n"
        "try:\n"
        "    dcgan.main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = [m for m in ('keras.src', 'tensorflow', 'torch', 'jax') if m in sys.modules]\n"
        "print('loaded:', loaded)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert "--batch-size" in proc.stdout
    assert "loaded: []" in proc.stdout


def test_recipe_list_names_dcgan_and_its_sections():
    proc = run_module("recipes", timeout=60)
    assert proc.returncode == 0
    line = next(line for line in proc.stdout.splitlines() if line.strip().startswith("dcgan"))
    assert "A 9.7" in line and "DCGAN" in line
