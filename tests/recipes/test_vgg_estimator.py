"""recipes.vgg_estimator on the current backend: VGG's numbers and structure, --quick, offline."""

import json
import tempfile
import types

import keras
import numpy as np
import pytest

from recipes import vgg_estimator
from recipes.common import cli
from recipes.common.estimator import Estimator, ModeKeys
from tests.conftest import run_module
from tests.fixtures.make_parity import STEPS


def parity_inputs():
    """The first 5 batches of the exam example's shuffled training input (batch 2)."""
    batches = vgg_estimator.exam_input_fns(seed=0)[0]()
    features, labels = zip(*(next(batches) for _ in range(STEPS)))
    return {"x": np.stack([f["x"] for f in features]), "labels": np.stack(labels)}


def parity_build():
    """The exam Estimator (A 5.3's model_fn: Dense(5, relu) -> Dense(1), MSE, Adagrad 0.1, no
    dropout) and the step `Estimator.train` runs: the facade's own engine-compiled step, built
    from the TRAIN spec as `train` builds it (no checkpoint is read or written)."""
    inputs = parity_inputs()
    with tempfile.TemporaryDirectory() as model_dir:
        estimator = Estimator(
            vgg_estimator.exam_model_fn, model_dir, {"learning_rate": 0.1}, seed=0, verbose=False
        )
        spec = estimator._spec(ModeKeys.TRAIN, {"x": inputs["x"][0]}, inputs["labels"][0])
    step = estimator._compiled_train_step(spec)

    def train_step(x, labels):
        return {"loss": step({"x": x}, labels)["loss"]}

    return types.SimpleNamespace(
        state={"model": spec.model, "optimizer": spec.optimizer}, train_step=train_step, compiled=True
    )


PARITY_CASES = {"estimator": (parity_build, parity_inputs)}


def test_parameter_counts_and_shape_table():
    assert vgg_estimator.vgg_parameter_count(16) == 138_357_544
    assert vgg_estimator.vgg_parameter_count(19) == 143_667_240
    assert vgg_estimator.vgg_parameter_count(16, include_top=False) == 14_714_688
    assert vgg_estimator.vgg_parameter_count(19, include_top=False) == 20_024_384
    table = {name: shape for name, shape, _ in vgg_estimator.vgg_table(16)}
    assert [table[f"pool{i}"] for i in range(1, 6)] == [
        (112, 112, 64),
        (56, 56, 128),
        (28, 28, 256),
        (14, 14, 512),
        (7, 7, 512),
    ]
    assert table["conv1_2"] == (224, 224, 64) and table["fc8"] == (1000,)
    counts = {name: count for name, _, count in vgg_estimator.vgg_table(19)}
    assert counts["fc6"] == 25088 * 4096 + 4096 and counts["conv5_4"] == 3 * 3 * 512 * 512 + 512
    assert sum(name.startswith("conv") for name in counts) == 16


def test_builder_follows_the_table():
    # A narrow VGG19 with a head: the built layers have the table's shapes and parameter counts.
    kwargs = dict(input_shape=(40, 40, 3), classes=10, width=1 / 16, fc_units=16)
    model = vgg_estimator.build_vgg(19, **kwargs)
    table = vgg_estimator.vgg_table(19, **kwargs)
    for name, shape, count in table:
        layer = model.get_layer(name)
        assert tuple(layer.output.shape[1:]) == shape, name
        assert layer.count_params() == count, name
    assert model.count_params() == vgg_estimator.vgg_parameter_count(19, **kwargs)
    assert table[-4][1] == (2, 2, 32)  # SAME pooling: 40 -> 20 -> 10 -> 5 -> 3 -> 2 (ceil).
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [
        0.5,
        0.5,
    ]


def test_vgg16_equals_keras_applications_with_copied_weights():
    reference = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    ours = vgg_estimator.build_vgg(16, (32, 32, 3), include_top=False)
    assert ours.count_params() == reference.count_params() == 14_714_688
    rng = np.random.default_rng(0)
    # Keras' own random kernels; random biases, so that they are checked too.
    weights = reference.get_weights()
    reference.set_weights([w if w.ndim > 1 else rng.normal(0, 0.1, w.shape) for w in weights])
    ours.set_weights(reference.get_weights())
    images = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    x = vgg_estimator.preprocess_bgr(images)
    expected = reference.predict(x, verbose=0)
    assert expected.shape == (2, 1, 1, 512) and np.abs(expected).max() > 0.1
    np.testing.assert_allclose(ours.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)


def test_preprocessing_is_keras_vgg16_preprocess_input():
    images = np.random.default_rng(1).integers(0, 256, (3, 5, 7, 3)).astype("float32")
    expected = keras.applications.vgg16.preprocess_input(images.copy())
    np.testing.assert_allclose(vgg_estimator.preprocess_bgr(images), expected, atol=1e-4)
    # BGR order: the first output channel is blue minus 103.939.
    np.testing.assert_allclose(vgg_estimator.preprocess_bgr(images)[..., 0], images[..., 2] - 103.939)


def test_quick_run(tmp_path, capsys):
    assert vgg_estimator.main(["--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "summary.json").read_text())
    exam, vgg = summary["exam"], summary["vgg"]
    assert f"Test set loss: {exam['loss']:.3f}, xxxx: {exam['xxxx']:.3f}" in out
    assert exam["global_step"] == 200 and exam["loss"] < exam["loss_before"]
    assert len(exam["predictions"]) == 2
    # 480 training digits, batch 16, 4 epochs, no dropout: the VGG learns (chance is 0.1; measured
    # 0.63 torch, 0.67 JAX, 0.83 TensorFlow on 120 held-out digits).
    assert vgg["global_step"] == 120 and vgg["accuracy"] >= 0.4
    assert summary["parameters"] == {"vgg16": 138_357_544, "vgg19": 143_667_240}
    assert (tmp_path / "exam" / "checkpoint").exists() and (tmp_path / "vgg" / "ckpt-120.npz").exists()

    # A rerun without --resume is refused in one line, nothing deleted; --overwrite starts over
    # (here the exam only); an --out that is a file is one line too (issue 16, items 4 and 5).
    files = sorted(tmp_path.rglob("*"))
    assert cli.run(vgg_estimator.main, ["--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"error: {tmp_path / 'exam'} holds a previous run: continue it with --resume, or start over "
        "with --overwrite (deletes it)"
    ]
    assert sorted(tmp_path.rglob("*")) == files
    argv = ["--quick", "--task", "exam", "--exam-steps", "20", "--overwrite", "--out", str(tmp_path)]
    assert vgg_estimator.main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "exam").glob("*.npz")) == ["ckpt-20.npz"]
    assert (tmp_path / "vgg" / "ckpt-120.npz").exists()
    assert cli.run(vgg_estimator.main, ["--quick", "--out", str(tmp_path / "summary.json")]) == 2
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--weights", "imagenet"], "VGG16 weights"),
        (["--dataset", "cifar10", "--task", "vgg"], "cifar10"),
    ],
)
def test_offline_downloads_fail_in_one_line(argv, expected, no_network, tmp_path, capsys):
    assert cli.run(vgg_estimator.main, [*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: could not download") and expected in err and "\n" not in err


def test_help_and_bad_input(capsys):
    result = run_module("recipes.vgg_estimator", "--help")
    assert result.returncode == 0 and "--weights" in result.stdout and "--task" in result.stdout
    assert cli.run(vgg_estimator.main, ["--image-size", "16"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --image-size must be at least 32 (five 2x2 poolings), got 16"
    )


def test_dtype_policy_reaches_the_estimators_models_and_checkpoints(tmp_path, capsys):
    # The VGG's TRAIN spec under mixed_float16: float16 layers, float32 logits, a loss-scaled Adam.
    params = {
        "depth": 16,
        "classes": 10,
        "width": 1 / 16,
        "fc_units": 8,
        "dropout": 0.0,
        "learning_rate": 1e-3,
        "decay_steps": 10,
        "dtype_policy": "mixed_float16",
    }
    images = np.zeros((2, 32, 32, 1), "float32")
    spec = vgg_estimator.vgg_model_fn(images, np.zeros(2, "int32"), ModeKeys.TRAIN, params)
    assert spec.model.get_layer("conv1_1").compute_dtype == "float16"
    assert spec.model.get_layer("conv1_1").variable_dtype == "float32"
    assert keras.backend.standardize_dtype(spec.model.output.dtype) == "float32"
    assert isinstance(spec.optimizer, keras.optimizers.LossScaleOptimizer)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left alone

    # The exam Estimator trains under mixed_float16 through the facade's compiled, loss-scaled step.
    argv = ["--quick", "--task", "exam", "--exam-steps", "40", "--out", str(tmp_path)]
    assert vgg_estimator.main([*argv, "--dtype-policy", "mixed_float16"]) == 0
    exam = json.loads((tmp_path / "summary.json").read_text())["exam"]
    assert np.isfinite(exam["loss"]) and exam["loss"] < exam["loss_before"]
    capsys.readouterr()
    # Its checkpoints record the policy: resuming under another one is refused in one line.
    argv = [*argv, "--exam-steps", "60", "--resume", "--dtype-policy", "mixed_bfloat16"]
    assert cli.run(vgg_estimator.main, argv) == 2
    err = capsys.readouterr().err.strip()
    assert "--dtype-policy mixed_float16 (now mixed_bfloat16)" in err and "\n" not in err
