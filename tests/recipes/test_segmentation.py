"""segmentation (D 6.1): convolutionalization, transposed-convolution sizes, an FCN trained on
generated scenes (a --quick run), IoU against Keras' metric, saved model and parity cases."""

import json

import keras
import numpy as np
import pytest

from datasets import scenes
from recipes import segmentation
from recipes.common import cli
from tests.conftest import BACKEND
from tests.fixtures.make_parity import STEPS, FitTrainer

PARITY_BATCH = 4
PARITY_SIZE = 32


def parity_build():
    """The recipe's FCN at width 2 (4,590 weights), compiled by the recipe's `compiled_model` (Adam on
    a cosine spanning the 5 steps, per-pixel cross-entropy on logits, XLA on TensorFlow) and
    stepped by Keras' train_on_batch. No batch norm, no dropout: nothing random in a step."""
    config = segmentation.Config(epochs=1, batch_size=PARITY_BATCH, width=2, learning_rate=1e-2)
    return FitTrainer(segmentation.compiled_model(config, STEPS))


def parity_inputs():
    """Twenty generated 32x32 scenes and their masks, four a step."""
    from datasets.scenes import make_scenes

    scenes = make_scenes(STEPS * PARITY_BATCH, seed=7, size=PARITY_SIZE)
    return {
        "images": scenes.images.reshape(STEPS, PARITY_BATCH, PARITY_SIZE, PARITY_SIZE, 3),
        "masks": scenes.masks.reshape(STEPS, PARITY_BATCH, PARITY_SIZE, PARITY_SIZE),
    }


PARITY_CASES = {"segmentation": (parity_build, parity_inputs)}


def make_saved_model(folder):
    """The --quick run's FCN and three held-out-like 64x64 scenes."""
    from datasets.scenes import make_scenes

    assert segmentation.main(["--quick", "--out", str(folder)]) == 0
    return folder / "model.keras", make_scenes(3, seed=11).images


MODEL_CASES = {"segmentation": make_saved_model}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("segmentation") / "run"
    assert segmentation.main(["--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_convolutionalization_of_the_notes(run):
    facts = run[1]["convolutionalization"]
    # Dense(10) on Flatten(4x4x16): 4 * 4 * 16 * 10 + 10 = 2,570 weights, the Conv2D(10, 4) as many.
    assert facts["dense_params"] == facts["conv_params"] == segmentation.DENSE_PARAMS == 2_570
    assert facts["max_difference"] < 1e-5
    # On 8x8x16: a 5x5x10 heat map, each cell the dense layer on one 4x4 window.
    assert facts["heat_map_shape"] == [5, 5, 10]
    assert facts["heat_map_max_difference"] < 1e-5


def test_transposed_convolution_sizes(run):
    sizes = run[1]["transposed_sizes"]
    for (size, kernel, stride, padding), expected in segmentation.TRANSPOSED_EXAMPLES.items():
        assert sizes[f"{size} {kernel} {stride} {padding}"] == [expected, expected]  # 7->14, 4->8
    for key, (formula, by_keras) in sizes.items():
        assert formula == by_keras, key
    assert segmentation.transposed_size(5, 3, 2) == 11 and segmentation.transposed_size(3, 4, 1) == 6


def test_the_fcn_trains_and_keeps_the_input_size(run):
    out, summary = run
    # Fully convolutional: the mask has the input's height and width.
    assert summary["output_shapes"] == {"64": [64, 64, 4], "96": [96, 96, 4]}
    assert summary["train_scenes"] == 256 and summary["held_out_scenes"] == 32
    # Predicting background everywhere scores the background's share of the pixels (about 0.88)
    # for one class of four and finds no object; the untrained FCN does no better. The quick run
    # (128 steps of 16 scenes of 32x32) finds the objects and tells some shapes apart: measured
    # with seeds 0 and 1, foreground IoU 0.95-0.99 and mIoU 0.36-0.44 (JAX), 0.39-0.55 (TensorFlow),
    # 0.36-0.50 (torch).
    assert 0.18 < summary["all_background_miou"] < 0.25
    assert summary["untrained_miou"] < 0.25 and summary["untrained_foreground_iou"] < 0.3
    assert summary["held_out_foreground_iou"] >= 0.8, summary["held_out_foreground_iou"]
    assert summary["held_out_miou"] >= 0.28, summary["held_out_iou"]
    assert set(summary["held_out_iou"]) == set(segmentation.CLASSES) == set(scenes.CLASSES)
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,accuracy,loss") and len(rows) == 1 + 8
    for name in ("masks.png", "curves.png", "checkpoints/epoch-0008.npz"):
        assert (out / name).stat().st_size > 0, name
    model = keras.saving.load_model(out / "model.keras")
    assert model.count_params() == summary["parameters"]


def test_iou_equals_keras_mean_iou():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 4, (3, 16, 16)).astype("int32")
    predicted = np.where(rng.random(truth.shape) < 0.6, truth, rng.integers(0, 4, truth.shape, "int32"))
    report = segmentation.miou_report(truth, predicted)
    metric = keras.metrics.MeanIoU(num_classes=4)
    metric.update_state(truth.reshape(-1), predicted.reshape(-1))
    assert report["miou"] == pytest.approx(float(metric.result()), rel=1e-6)
    for index, name in enumerate(segmentation.CLASSES):
        one = keras.metrics.IoU(num_classes=4, target_class_ids=[index])
        one.update_state(truth.reshape(-1), predicted.reshape(-1))
        assert report["iou"][name] == pytest.approx(float(one.result()), rel=1e-6), name


@pytest.mark.skipif(BACKEND != "jax", reason="argument checks only; runs once")
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--size", "60"], "--size must be a multiple of 8, got 60"),
        (["--train-size", "0"], "--train-size must be at least 1, got 0"),
        (["--train-size", "8", "--batch-size", "16"], "--train-size 8 is smaller than one batch of 16"),
        (["--learning-rate", "0"], "--learning-rate must be positive, got 0.0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, flags, message):
    assert cli.run(segmentation.main, [*flags, "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [f"error: {message}"]
    assert not (tmp_path / "out").exists()
