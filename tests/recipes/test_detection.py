"""detection (D 6.2): the blocks' numbers of the notes, a quick YOLO v1 run that learns, mAP@0.5."""

import json

import numpy as np
import pytest

from recipes import detection
from recipes.common import cli
from tests.conftest import BACKEND


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("detection")
    assert detection.main(["--quick", "--out", str(out)]) == 0
    return out, json.loads((out / "summary.json").read_text())


def test_blocks_give_the_notes_numbers(run):
    _, summary = run
    blocks = summary["blocks"]
    # SPP, levels 1, 2, 4: (1 + 4 + 16) x 256 = 21 C = 5,376 values for a 13x13 and a 17x17 map.
    assert blocks["spp_lengths"] == {"13x13": 21 * 256, "17x17": 21 * 256}
    # RoI pooling: boxes of 2x2, 32x16, 64x64 and 5x50 pixels -> 7x7x256 each.
    assert blocks["roi_box_sizes"] == [[2, 2], [32, 16], [64, 64], [5, 50]]
    assert blocks["roi_output_shape"] == [1, 4, 7, 7, 256]
    # 3 sizes x 3 ratios = 9 anchors a location, areas 128^2, 256^2, 512^2, ratios 1:1, 1:2, 2:1.
    assert blocks["anchors_per_location"] == 9 and blocks["anchors_of_2x3_map"] == 54
    np.testing.assert_allclose(blocks["anchor_areas"], np.repeat([128**2, 256**2, 512**2], 3), rtol=1e-6)
    np.testing.assert_allclose(blocks["anchor_ratios_w_to_h"], [1, 0.5, 2] * 3, rtol=1e-6)
    # The RPN head: 9 x 4 + 9 x 2 = 54 outputs a location. The notes call the 54 "parameter 수"
    # (erratum): its two 1x1 convolutions on 256 channels alone hold 257 x 54 = 13,878 weights.
    assert blocks["rpn_channels"] == {"deltas": 36, "objectness": 18}
    assert blocks["rpn_outputs_per_location"] == 54 == detection.RPN_OUTPUTS
    assert blocks["rpn_1x1_weights"] == 13_878
    # YOLO v1: S = 7, B = 2, C = 20 -> 7 x 7 x 30 = 1,470.
    assert blocks["yolo_paper_output_shape"] == [7, 7, 30] and blocks["yolo_paper_outputs"] == 1470


def test_quick_run_learns_to_detect(run):
    out, summary = run
    assert summary["output_shape"] == [4, 4, 13]  # S = 4, B = 2, C = 3: 2 x 5 + 3
    assert summary["train_scenes"] == detection.QUICK["train_size"]
    # An untrained detector scores 0.000-0.005; the quick run's 96 steps 0.250 (TensorFlow), 0.285
    # (torch), 0.409 (JAX).
    assert summary["untrained_map50"] < 0.02, summary
    assert summary["held_out_map50"] >= 0.12, summary
    assert set(summary["held_out_ap50"]) == {"circle", "square", "triangle"}
    checkpoint = f"checkpoints/epoch-{detection.QUICK['epochs']:04d}.npz"
    for name in ("detections.png", "curves.png", "model.keras", checkpoint):
        assert (out / name).stat().st_size > 0, name
    rows = (out / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + detection.QUICK["epochs"]
    losses = [float(r.split(",")[1]) for r in rows[1:]]
    assert losses[-1] < losses[0] / 2, losses


def test_bad_input_is_one_line_and_exit_2(run, capsys):
    out, _ = run
    for argv, message in (
        (["--grid-size", "5"], "--grid-size must be 2, 4, 8 or 16"),
        (["--quick", "--train-size", "8"], "--train-size 8 is smaller than one batch of 16"),
        (["--dataset", "voc"], "detection trains on generated scenes: --dataset is not used"),
        (["--quick", "--nms-iou", "0"], "--nms-iou must lie in (0, 1]"),
        (["--quick", "--out", str(out)], f"error: {out} holds a previous run"),
    ):
        capsys.readouterr()
        assert cli.run(detection.main, argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)


# ---------------------------------------------------------------------------------------------------
# NumPy-only: targets, AP and mAP


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_yolo_targets_put_each_object_in_the_cell_of_its_centre():
    boxes = [np.array([[8, 40, 24, 60], [40, 0, 64, 20]], "float32")]  # centres (16, 50), (52, 10)
    targets = detection.yolo_targets(boxes, [np.array([2, 3])], grid_size=4)
    assert targets.shape == (1, 4, 4, 8) and targets[..., 4].sum() == 2
    # (16, 50) -> row 1, column 3, offsets x = 50/16 - 3 = 0.125, y = 0; w = 20/64, h = 16/64.
    np.testing.assert_allclose(targets[0, 1, 3], [0.125, 0.0, 20 / 64, 16 / 64, 1, 0, 1, 0])
    np.testing.assert_allclose(targets[0, 3, 0], [0.625, 0.25, 20 / 64, 24 / 64, 1, 0, 0, 1])


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_average_precision_is_voc_all_points():
    # 2 objects; detections by score: hit, miss, hit. Precision 1 up to recall 0.5, 2/3 up to 1.
    assert detection.average_precision([0.9, 0.8, 0.7], [1, 0, 1], 2) == pytest.approx(0.5 + 0.5 * 2 / 3)
    # The interpolation: a later higher precision lifts the earlier dip (miss, hit, hit: 2/3 at
    # recall 1 and 1/2 at recall 0.5, raised to 2/3).
    assert detection.average_precision([0.9, 0.8, 0.7], [0, 1, 1], 2) == pytest.approx(2 / 3)
    assert detection.average_precision([0.9], [1], 4) == pytest.approx(0.25)  # recall stops at 1/4
    assert detection.average_precision([], [], 3) == 0.0


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_mean_average_precision_hand_example():
    truth = [
        np.array([[0, 0, 10, 10], [20, 20, 40, 40]], "float32"),
        np.array([[5, 5, 15, 25]], "float32"),
    ]
    labels = [np.array([1, 2]), np.array([1])]
    perfect = [(t, np.array([0.9] * len(t)), lab) for t, lab in zip(truth, labels)]
    mean_ap, per_class = detection.mean_average_precision(perfect, truth, labels)
    assert mean_ap == 1.0 and per_class[1] == per_class[2] == 1.0 and np.isnan(per_class[3])
    found = [
        # a duplicate of the class-1 box (a false positive once the first took it), the class-2 box
        # shifted to IoU 2/3 (>= 0.5, a hit), nothing in scene 2 for its class-1 box.
        (
            np.array([[0, 0, 10, 10], [0, 0, 10, 10], [20, 24, 40, 44]], "float32"),
            np.array([0.9, 0.8, 0.7]),
            np.array([1, 1, 2]),
        ),
        (np.zeros((0, 4), "float32"), np.zeros(0), np.zeros(0, int)),
    ]
    assert detection.iou_matrix(found[0][0][2:], truth[0][1:])[0, 0] == pytest.approx(2 / 3)
    mean_ap, per_class = detection.mean_average_precision(found, truth, labels)
    # class 1: 2 objects, hit then duplicate: AP = 0.5; class 2: AP = 1.
    assert per_class[1] == pytest.approx(0.5) and per_class[2] == pytest.approx(1.0)
    assert mean_ap == pytest.approx(0.75)


# ---------------------------------------------------------------------------------------------------
# The trained model's .keras on every backend (tests/recipes/test_saved_models.py)


def make_saved_model(folder):
    # Width 4 keeps the file (weights and Adam's slots) small.
    detection.main(["--quick", "--epochs", "1", "--width", "4", "--out", str(folder)])
    images = detection.load_scenes(2, detection.HELD_OUT_SEED).images
    return folder / "model.keras", images


MODEL_CASES = {"detection": make_saved_model}
