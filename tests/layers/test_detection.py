"""layers.detection (D 6.2): SPP, RoI pooling, anchors, the RPN and YOLO heads, the YOLO v1 loss and
non-maximum suppression, against NumPy references and Keras built-ins."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from layers.detection import (
    RoIPooling,
    RPNHead,
    SpatialPyramidPooling,
    YOLOHead,
    YOLOv1Loss,
    anchor_boxes,
    box_iou,
    non_max_suppression,
)
from tests.conftest import BACKEND
from tests.layers import layer_checks


def random(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def numpy(x):
    return ops.convert_to_numpy(x)


def bins(start, size, count, length):
    """NumPy: the [lo, hi) spans of `count` adaptive bins over [start, start + size), clipped."""
    return [
        (
            min(max(start + math.floor(i * size / count), 0), length),
            min(max(start + math.ceil((i + 1) * size / count), 0), length),
        )
        for i in range(count)
    ]


# ---------------------------------------------------------------------------------------------------
# Spatial pyramid pooling


def spp_reference(x, levels):
    batch, height, width, channels = x.shape
    out = []
    for n in levels:
        pooled = np.empty((batch, n, n, channels), x.dtype)
        for i, (r0, r1) in enumerate(bins(0, height, n, height)):
            for j, (c0, c1) in enumerate(bins(0, width, n, width)):
                pooled[:, i, j] = x[:, r0:r1, c0:c1].max(axis=(1, 2))
        out.append(pooled.reshape(batch, -1))
    return np.concatenate(out, axis=-1)


@pytest.mark.parametrize("size", [13, 17])
def test_spp_gives_21_c_values_at_any_size(size):
    # D 6.2: levels 1, 2, 4 -> (1 + 4 + 16) C = 21 C values, for a 13x13 and a 17x17 map alike.
    x = random((2, size, size, 5), seed=size)
    layer = SpatialPyramidPooling((1, 2, 4))
    got = numpy(layer(x))
    assert got.shape == (2, 21 * 5) and layer.bins == 21
    np.testing.assert_allclose(got, spp_reference(x, (1, 2, 4)), rtol=0, atol=0)


def test_spp_equals_max_pooling_where_the_bins_tile_the_map():
    x = random((2, 16, 12, 3), seed=1)
    got = numpy(SpatialPyramidPooling((1, 4))(x))
    whole = numpy(keras.layers.GlobalMaxPooling2D()(x))
    grid = numpy(keras.layers.MaxPooling2D((4, 3))(x)).reshape(2, -1)  # 4x4 bins of 4x3
    np.testing.assert_array_equal(got, np.concatenate([whole, grid], axis=-1))


def test_spp_in_a_model_with_unknown_size():
    inputs = keras.Input((None, None, 4))
    model = keras.Model(inputs, SpatialPyramidPooling()(inputs))
    assert model.output.shape == (None, 84)
    x = random((1, 9, 11, 4), seed=2)
    np.testing.assert_array_equal(numpy(model(x)), spp_reference(x, (1, 2, 4)))
    with pytest.raises(ValueError, match=r"SpatialPyramidPooling: expected feature maps of shape"):
        SpatialPyramidPooling()(random((2, 5, 5)))
    with pytest.raises(ValueError, match="SpatialPyramidPooling: levels must be >= 1"):
        SpatialPyramidPooling((0, 2))


# ---------------------------------------------------------------------------------------------------
# RoI pooling


def roi_reference(features, boxes, pool_size, scale):
    batch, height, width, channels = features.shape
    ph, pw = pool_size
    out = np.zeros((batch, boxes.shape[1], ph, pw, channels), features.dtype)
    for b in range(batch):
        for r, (y0, x0, y1, x1) in enumerate(boxes[b] * scale):
            top, left = math.floor(y0), math.floor(x0)
            rows = bins(top, max(math.ceil(y1) - top, 1), ph, height)
            cols = bins(left, max(math.ceil(x1) - left, 1), pw, width)
            for i, (r0, r1) in enumerate(rows):
                for j, (c0, c1) in enumerate(cols):
                    if r1 > r0 and c1 > c0:
                        out[b, r, i, j] = features[b, r0:r1, c0:c1].max(axis=(0, 1))
    return out


ROI_BOXES = np.array(
    [
        [[0, 0, 2, 2], [8, 4, 40, 21], [0, 0, 64, 64], [30, 10, 35, 60], [50, 50, 90, 80]],
        [[3, 3, 9, 7], [60, 0, 64, 64], [-8, -8, 12, 12], [100, 100, 120, 120], [1, 1, 63, 33]],
    ],
    "float32",
)


def test_roi_pooling_has_a_fixed_shape_and_matches_numpy():
    # D 6.2: boxes of 2x2 to 64x64 pixels (on a 64x64 image's 16x16 map) all give 7x7xC; one box
    # lies outside the map (zeros), others leave it partly.
    features = random((2, 16, 16, 3), seed=3)
    layer = RoIPooling((7, 7), spatial_scale=1 / 4)
    got = numpy(layer(features, ROI_BOXES))
    assert got.shape == (2, 5, 7, 7, 3) == layer.compute_output_shape(features.shape, ROI_BOXES.shape)
    np.testing.assert_array_equal(got, roi_reference(features, ROI_BOXES, (7, 7), 1 / 4))
    assert not got[1, 3].any()  # (100, 100, 120, 120) / 4 is off the 16x16 map


def test_roi_pooling_picks_the_bottom_right_of_every_bin_of_a_ramp():
    # f[y, x] = 14 y + x grows to the right and downwards, so every bin's maximum is its
    # bottom-right cell. The whole 14x14 map in 7x7 bins: bin (i, j) covers rows 2i, 2i + 1 and
    # columns 2j, 2j + 1, maximum 14 (2i + 1) + 2j + 1.
    ramp = np.arange(14 * 14, dtype="float32").reshape(1, 14, 14, 1)
    boxes = np.array([[[0, 0, 14, 14], [2, 4, 5, 11]]], "float32")
    got = numpy(RoIPooling((7, 7))(ramp, boxes))[0, ..., 0]
    i, j = np.meshgrid(np.arange(7), np.arange(7), indexing="ij")
    np.testing.assert_array_equal(got[0], 14 * (2 * i + 1) + 2 * j + 1)
    # A 3x7 box at (2, 4): row bin i over 3 rows ends at row 2 + ceil(3 (i + 1) / 7) - 1, i.e. rows
    # 2, 2, 3, 3, 4, 4, 4; column bin j over 7 columns is column 4 + j.
    rows = np.array([2, 2, 3, 3, 4, 4, 4])[:, None]
    np.testing.assert_array_equal(got[1], 14 * rows + np.arange(4, 11)[None, :])


def test_roi_pooling_bad_input():
    with pytest.raises(ValueError, match=r"RoIPooling: expected boxes of shape \(batch, n, 4\)"):
        RoIPooling()(random((1, 8, 8, 2)), np.zeros((1, 4), "float32"))
    with pytest.raises(ValueError, match=r"RoIPooling: expected feature maps of shape"):
        RoIPooling()(random((8, 8, 2)), np.zeros((1, 1, 4), "float32"))
    with pytest.raises(ValueError, match="RoIPooling: pool_size must be"):
        RoIPooling((7, 0))


# ---------------------------------------------------------------------------------------------------
# Anchors (NumPy only)


@pytest.mark.skipif(BACKEND != "jax", reason="NumPy-only; runs once")
def test_nine_anchors_a_location_with_the_notes_areas_and_ratios():
    # D 6.2: sizes 128, 256, 512 x ratios 1:1, 1:2, 2:1 (width : height) = 9 anchors a location.
    anchors = anchor_boxes(2, 3, stride=16)
    assert anchors.shape == (2 * 3 * 9, 4)
    heights, widths = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    areas = np.repeat([128.0**2, 256.0**2, 512.0**2], 3)
    np.testing.assert_allclose((heights * widths)[:9], areas, rtol=1e-6)
    np.testing.assert_allclose((widths / heights)[:9], [1, 0.5, 2] * 3, rtol=1e-6)
    root2 = 2**0.5
    expected_widths = [s * r for s in (128, 256, 512) for r in (1, 1 / root2, root2)]
    np.testing.assert_allclose(widths[:9], expected_widths, rtol=1e-6)
    centres = (anchors[:, :2] + anchors[:, 2:]) / 2
    expected = np.array([[8 + 16 * i, 8 + 16 * j] for i in range(2) for j in range(3)], "float32")
    np.testing.assert_allclose(centres, np.repeat(expected, 9, axis=0), atol=1e-4)
    next_column = anchors[9:18] - anchors[:9]
    np.testing.assert_allclose(next_column, [[0, 16, 0, 16]] * 9, atol=1e-3)
    with pytest.raises(ValueError, match="anchor_boxes: sizes, ratios and stride must be > 0"):
        anchor_boxes(2, 2, ratios=(1.0, 0.0))


# ---------------------------------------------------------------------------------------------------
# RPN head


def rpn_factory():
    return RPNHead(9, filters=8, kernel_initializer=keras.initializers.RandomNormal(0, 0.3, seed=4))


RPN_INPUTS = random((2, 5, 6, 4), seed=5)


def test_rpn_head_has_54_outputs_a_location():
    # D 6.2: "총 parameter 수는 9 x (4+2) = 54개" (the notes: 54 parameters). Erratum: 54 is the
    # number of output channels per location (36 box offsets + 18 objectness logits); the two 1x1
    # convolutions alone hold (filters + 1) x 54 weights.
    layer = rpn_factory()
    deltas, objectness = layer(RPN_INPUTS)
    assert tuple(deltas.shape) == (2, 5, 6, 36) and tuple(objectness.shape) == (2, 5, 6, 18)
    assert deltas.shape[-1] + objectness.shape[-1] == 54
    assert [tuple(s) for s in layer.compute_output_shape(RPN_INPUTS.shape)] == [
        (2, 5, 6, 36),
        (2, 5, 6, 18),
    ]
    assert layer.deltas.count_params() + layer.objectness.count_params() == (8 + 1) * 54
    assert layer.count_params() == (3 * 3 * 4 + 1) * 8 + (8 + 1) * 54
    # The head: 3x3 conv + ReLU, then two 1x1 convolutions: matrix products per location.
    hidden = numpy(layer.conv(RPN_INPUTS))
    for conv, out in ((layer.deltas, deltas), (layer.objectness, objectness)):
        kernel, bias = (numpy(w) for w in conv.weights)
        np.testing.assert_allclose(numpy(out), hidden @ kernel[0, 0] + bias, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------------
# YOLO head and loss


def yolo_factory():
    return YOLOHead(2, 2, 3, kernel_initializer=keras.initializers.RandomNormal(0, 0.5, seed=6))


YOLO_INPUTS = random((2, 2, 2, 4), seed=7)


def test_yolo_head_output_is_s_s_b5_plus_c():
    # YOLO v1: S = 7, B = 2, C = 20 -> 7 x 7 x 30 = 1,470 values.
    layer = YOLOHead(7, 2, 20)
    out = layer(random((1, 7, 7, 6), seed=8))
    assert tuple(out.shape) == (1, 7, 7, 30) and layer.channels == 30 and np.prod(out.shape) == 1470
    # The layer: a 1x1 convolution, sigmoid on the 2 x 5 box values, softmax on the 3 classes.
    layer = yolo_factory()
    got = numpy(layer(YOLO_INPUTS))
    kernel, bias = (numpy(w) for w in layer.conv.weights)
    z = YOLO_INPUTS @ kernel[0, 0] + bias
    classes = np.exp(z[..., 10:]) / np.exp(z[..., 10:]).sum(-1, keepdims=True)
    np.testing.assert_allclose(got[..., :10], 1 / (1 + np.exp(-z[..., :10])), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[..., 10:], classes, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"YOLOHead: expected feature maps of shape \(batch, 2, 2"):
        yolo_factory()(random((1, 3, 3, 4)))


def corners(x, y, w, h, row, col, s):
    cx, cy = (col + x) / s, (row + y) / s
    return np.array([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2])


def iou_reference(a, b):
    inter = max(min(a[2], b[2]) - max(a[0], b[0]), 0) * max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def yolo_loss_reference(y_true, y_pred, b, c, coord=5.0, noobj=0.5, rescore=True):
    """YOLO v1's eq. 3, written out cell by cell and box by box; mean over the batch."""
    n, s = y_true.shape[:2]
    total = np.zeros(n)
    for k in range(n):
        for row in range(s):
            for col in range(s):
                t, p = y_true[k, row, col], y_pred[k, row, col]
                boxes = p[: 5 * b].reshape(b, 5)
                if t[4] == 0:
                    total[k] += noobj * np.sum(boxes[:, 4] ** 2)
                    continue
                truth = corners(*t[:4], row, col, s)
                ious = [iou_reference(corners(*box[:4], row, col, s), truth) for box in boxes]
                j = int(np.argmax(ious))
                x, y, w, h, conf = boxes[j]
                total[k] += coord * ((x - t[0]) ** 2 + (y - t[1]) ** 2)
                total[k] += coord * (
                    (np.sqrt(w) - np.sqrt(t[2])) ** 2 + (np.sqrt(h) - np.sqrt(t[3])) ** 2
                )
                total[k] += (conf - (ious[j] if rescore else 1.0)) ** 2
                total[k] += noobj * sum(boxes[i, 4] ** 2 for i in range(b) if i != j)
                total[k] += np.sum((p[5 * b :] - t[5:]) ** 2)
    return total.mean()


def yolo_example():
    """2 images, S = 2, B = 2, C = 3: three objects, box 1 of image 0's object cell overlaps best."""
    y_true = np.zeros((2, 2, 2, 8), "float32")
    y_true[0, 0, 1] = [0.3, 0.6, 0.4, 0.2, 1, 0, 1, 0]
    y_true[1, 1, 0] = [0.5, 0.5, 0.3, 0.45, 1, 1, 0, 0]
    y_true[1, 0, 0] = [0.9, 0.1, 0.1, 0.1, 1, 0, 0, 1]
    rng = np.random.default_rng(9)
    y_pred = rng.uniform(0.05, 0.95, (2, 2, 2, 13)).astype("float32")
    y_pred[0, 0, 1, 5:10] = [0.32, 0.55, 0.38, 0.25, 0.7]  # near the truth: responsible
    y_pred[..., 10:] /= y_pred[..., 10:].sum(-1, keepdims=True)
    return y_true, y_pred


@pytest.mark.parametrize("rescore", [True, False])
def test_yolo_v1_loss_matches_numpy(rescore):
    y_true, y_pred = yolo_example()
    loss = YOLOv1Loss(2, 3, lambda_coord=5.0, lambda_noobj=0.5, rescore=rescore)
    expected = yolo_loss_reference(y_true, y_pred, 2, 3, rescore=rescore)
    assert float(numpy(loss(y_true, y_pred))) == pytest.approx(expected, rel=1e-5)
    # A perfect prediction (confidence target 1 without rescoring) costs 0.
    perfect = np.zeros((2, 2, 2, 13), "float32")
    perfect[..., :5], perfect[..., 10:] = y_true[..., :5], y_true[..., 5:]
    if not rescore:
        assert float(numpy(loss(y_true, perfect))) == pytest.approx(0.0, abs=1e-6)
    clone = YOLOv1Loss.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()


# ---------------------------------------------------------------------------------------------------
# Box IoU and non-maximum suppression


def nms_reference(boxes, scores, iou_threshold, score_threshold, classes=None):
    keep = np.zeros(len(scores), bool)
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] <= score_threshold:
            continue
        rivals = [j for j in np.nonzero(keep)[0] if classes is None or classes[j] == classes[i]]
        if all(iou_reference(boxes[i], boxes[j]) <= iou_threshold for j in rivals):
            keep[i] = True
    return keep


def random_boxes(shape, seed):
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 50, (*shape, 2))
    return np.concatenate([start, start + rng.uniform(2, 20, (*shape, 2))], axis=-1).astype("float32")


def test_box_iou_matches_numpy():
    a, b = random_boxes((6,), 10), random_boxes((6,), 11)
    a[0] = b[0]  # identical: 1
    a[1, 2:] = a[1, :2]  # empty: 0
    got = numpy(box_iou(a[:, None], b[None, :]))
    expected = np.array([[iou_reference(p, q) for q in b] for p in a])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert got[0, 0] == pytest.approx(1.0) and not got[1].any()


@pytest.mark.parametrize("class_aware", [False, True])
def test_non_max_suppression_matches_numpy(class_aware):
    boxes = random_boxes((3, 24), 12)
    scores = np.random.default_rng(13).permutation(72).reshape(3, 24).astype("float32") / 72
    classes = np.random.default_rng(14).integers(0, 3, (3, 24)) if class_aware else None
    got = numpy(non_max_suppression(boxes, scores, 0.3, 0.1, classes))
    for n in range(3):
        expected = nms_reference(boxes[n], scores[n], 0.3, 0.1, None if classes is None else classes[n])
        np.testing.assert_array_equal(got[n], expected)
    assert 0 < got.sum() < (scores > 0.1).sum()  # something is suppressed, something kept


def test_non_max_suppression_hand_example():
    # Two boxes overlapping by IoU 0.6 and a third apart: the weaker of the pair goes at 0.5, both
    # stay at 0.7; a score at the threshold goes.
    boxes = np.array([[0, 0, 10, 10], [0, 2.5, 10, 12.5], [20, 20, 30, 30]], "float32")
    scores = np.array([0.8, 0.9, 0.5], "float32")
    assert iou_reference(boxes[0], boxes[1]) == pytest.approx(0.6)
    np.testing.assert_array_equal(numpy(non_max_suppression(boxes, scores, 0.5)), [False, True, True])
    np.testing.assert_array_equal(numpy(non_max_suppression(boxes, scores, 0.7)), [True, True, True])
    np.testing.assert_array_equal(
        numpy(non_max_suppression(boxes, scores, 0.7, 0.5)), [True, True, False]
    )


# ---------------------------------------------------------------------------------------------------
# Round trips, gradients, mixed precision


def spp_factory():
    return SpatialPyramidPooling((1, 2))


SPP_INPUTS = random((2, 5, 5, 3), seed=15)


def roi_factory():
    return RoIPooling((2, 2), spatial_scale=0.5)


ROI_INPUTS = [random((2, 6, 6, 3), seed=16), ROI_BOXES[:, :3] / 8]


@pytest.mark.parametrize(
    "factory,inputs",
    [
        (spp_factory, SPP_INPUTS),
        (roi_factory, ROI_INPUTS),
        (rpn_factory, RPN_INPUTS),
        (yolo_factory, YOLO_INPUTS),
    ],
    ids=["spp", "roi", "rpn", "yolo"],
)
def test_config_and_saved_round_trip(factory, inputs, tmp_path):
    layer_checks.assert_config_round_trip(factory, inputs)
    layer_checks.assert_saved_round_trip(factory, inputs, tmp_path / "m.keras")


def test_gradients_reach_every_weight():
    # Both 1x1 convolutions and the 3x3 one (the poolings' and the YOLO head's gradients are checked
    # by tests/layers/test_mixed_precision.py).
    layer_checks.assert_gradients_reach_every_weight(rpn_factory, RPN_INPUTS)


def test_spp_trains_in_mixed_bfloat16():
    layer_checks.assert_trains_in_mixed_bfloat16(spp_factory, SPP_INPUTS, wrap=True)


CROSS_BACKEND_CASES = {
    "spatial_pyramid_pooling": (spp_factory, SPP_INPUTS),
    "roi_pooling": (roi_factory, ROI_INPUTS),
    "rpn_head": (rpn_factory, RPN_INPUTS),
    "yolo_head": (yolo_factory, YOLO_INPUTS),
}
