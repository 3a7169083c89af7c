"""Object detection blocks of D 6.2: SPP, RoI pooling, anchors (NumPy), the RPN head, the YOLO v1
head and loss, box IoU and non-maximum suppression. `keras.ops` only, except the anchors.

Boxes are `(y0, x0, y1, x1)` in pixels with the end excluded (`datasets.scenes`' convention), except
inside the YOLO tensors, which hold `(x, y, w, h)` as YOLO v1 does.
"""

import keras
import numpy as np
from keras import ops


def _shape(shape):
    return None if shape is None else tuple(shape)


def _check_maps(layer, shape):
    """ValueError unless `shape` is (batch, height, width, channels) with known channels."""
    shape = _shape(shape)
    if shape is None or len(shape) != 4 or shape[-1] is None:
        raise ValueError(
            f"{layer}: expected feature maps of shape (batch, height, width, channels), got {shape}"
        )
    return shape


def _bin_masks(start, size, bins, length):
    """Masks `(..., bins, length)`: position p lies in bin i of the span [start, start + size).

    Bin i covers [start + floor(i size / bins), start + ceil((i + 1) size / bins)), clipped to
    [0, length): adaptive pooling's bins, which may overlap by one position and cover the span
    whatever its size. `start`, `size`: int32 tensors of shape (...), or Python ints, in which case
    the mask is a NumPy constant. Integer arithmetic: XLA turns a float division by a constant into
    a multiplication by its reciprocal, and 91 * (1 / 7) rounds up past 13.
    """
    if all(isinstance(v, int) for v in (start, size, length)):
        i = np.arange(bins)
        lo = np.clip(start + i * size // bins, 0, length)
        hi = np.clip(start - (-(i + 1) * size // bins), 0, length)
        positions = np.arange(length)
        return (positions >= lo[:, None]) & (positions < hi[:, None])
    i = ops.arange(bins, dtype="int32")
    start, size = start[..., None], size[..., None]
    lo = ops.clip(start + ops.floor_divide(i * size, bins), 0, length)
    hi = ops.clip(start - ops.floor_divide(-(i + 1) * size, bins), 0, length)
    positions = ops.arange(length, dtype="int32")
    return ops.logical_and(positions >= lo[..., None], positions < hi[..., None])


def _masked_max(x, mask, axis, filler):
    """max of `x` over `axis` where `mask` holds (`filler`, the global minimum, elsewhere)."""
    return ops.max(ops.where(mask, x, filler), axis=axis)


@keras.saving.register_keras_serializable(package="layers")
class SpatialPyramidPooling(keras.layers.Layer):
    """Spatial pyramid pooling (SPPNet, He et al. 2014; D 6.2): a fixed-length vector from a feature
    map of any size.

    For every level n the map is cut into an n x n grid of bins and each bin is max pooled; the
    n * n * C values of every level are concatenated, level after level:

        out = [max over bin (i, j) of level n, for n in levels, i < n, j < n, c < C]
        bin i of n along an axis of length H covers rows floor(i H / n) .. ceil((i + 1) H / n) - 1

    With levels (1, 2, 4): (1 + 4 + 16) C = 21 C values for 13x13, 17x17 or any other map, which is
    what lets SPPNet put fully connected layers after convolutions on images of any size. Where n
    divides H and W the bins are `MaxPooling2D(H // n)`'s windows.

    Shapes: `(batch, height, width, C)` -> `(batch, sum(n^2 for n in levels) * C)`; height and width
    may be unknown (None) in a model.

    Example:

    >>> x = np.random.rand(2, 13, 13, 256).astype("float32")
    >>> SpatialPyramidPooling((1, 2, 4))(x).shape
    (2, 5376)
    """

    def __init__(self, levels=(1, 2, 4), **kwargs):
        super().__init__(**kwargs)
        levels = tuple(int(n) for n in levels)
        if not levels or min(levels) < 1:
            raise ValueError(f"SpatialPyramidPooling: levels must be >= 1, got {levels}")
        self.levels = levels

    @property
    def bins(self):
        """Bins per channel: sum of n^2 (21 for levels 1, 2, 4)."""
        return sum(n * n for n in self.levels)

    def build(self, input_shape):
        _check_maps("SpatialPyramidPooling", input_shape)

    def call(self, inputs):
        _check_maps("SpatialPyramidPooling", inputs.shape)
        height, width = ops.shape(inputs)[1], ops.shape(inputs)[2]
        if not isinstance(height, int) or not isinstance(width, int):  # unknown in a TF graph
            height, width = ops.cast(height, "int32"), ops.cast(width, "int32")
        zero = 0 if isinstance(height, int) else ops.zeros((), "int32")
        filler = ops.min(inputs)
        pooled = []
        for n in self.levels:
            rows = _bin_masks(zero, height, n, height)  # (n, H)
            cols = _bin_masks(zero, width, n, width)  # (n, W)
            # (B, 1, H, W, C) -> max over H in each row bin -> (B, n, W, C)
            x = _masked_max(inputs[:, None], rows[None, :, :, None, None], 2, filler)
            # (B, n, 1, W, C) -> max over W in each column bin -> (B, n, n, C)
            x = _masked_max(x[:, :, None], cols[None, None, :, :, None], 3, filler)
            pooled.append(ops.reshape(x, (-1, n * n * inputs.shape[-1])))  # static length
        return ops.concatenate(pooled, axis=-1)

    def compute_output_shape(self, input_shape):
        shape = _check_maps("SpatialPyramidPooling", input_shape)
        return (shape[0], self.bins * shape[-1])

    def get_config(self):
        return {**super().get_config(), "levels": list(self.levels)}


@keras.saving.register_keras_serializable(package="layers")
class RoIPooling(keras.layers.Layer):
    """RoI max pooling (Fast R-CNN, Girshick 2015; D 6.2): a fixed-size feature per region.

    Each box is scaled to the feature map (`spatial_scale`, e.g. 1/16 after four 2x2 poolings) and
    snapped outwards to whole cells, y0' = floor(y0 s), y1' = ceil(y1 s) (at least one cell), then
    cut into `pool_size` bins as `SpatialPyramidPooling` cuts a map, each bin max pooled:

        bin i of h cells from y0' covers y0' + floor(i h / ph) .. y0' + ceil((i + 1) h / ph) - 1

    so a 2x2 and a 40x40 box both give ph x pw values per channel. Bins outside the map give 0.

    Call: `layer(features, boxes)`, boxes `(y0, x0, y1, x1)` in input-image pixels, end excluded.

    Shapes: features `(batch, H, W, C)`, boxes `(batch, n, 4)` (n boxes per image) ->
    `(batch, n, ph, pw, C)`; one image with n boxes gives (1, n, 7, 7, C).

    Example:

    >>> features = np.random.rand(1, 16, 16, 64).astype("float32")
    >>> boxes = np.array([[[0, 0, 64, 64], [16, 32, 48, 200]]], "float32")
    >>> RoIPooling((7, 7), spatial_scale=1 / 16)(features, boxes).shape
    (1, 2, 7, 7, 64)
    """

    def __init__(self, pool_size=(7, 7), spatial_scale=1.0, **kwargs):
        super().__init__(**kwargs)
        pool_size = (pool_size, pool_size) if isinstance(pool_size, int) else tuple(pool_size)
        if len(pool_size) != 2 or min(pool_size) < 1 or float(spatial_scale) <= 0:
            raise ValueError(
                f"RoIPooling: pool_size must be two ints >= 1 and spatial_scale > 0, got "
                f"{pool_size} and {spatial_scale}"
            )
        self.pool_size = tuple(int(p) for p in pool_size)
        self.spatial_scale = float(spatial_scale)

    def _check(self, features_shape, boxes_shape):
        shape = _check_maps("RoIPooling", features_shape)
        boxes_shape = _shape(boxes_shape)
        if boxes_shape is None or len(boxes_shape) != 3 or boxes_shape[-1] != 4:
            raise ValueError(
                f"RoIPooling: expected boxes of shape (batch, n, 4) as (y0, x0, y1, x1), got "
                f"{boxes_shape}"
            )
        return shape, boxes_shape

    def build(self, features_shape, boxes_shape):
        self._check(features_shape, boxes_shape)

    def call(self, features, boxes):
        self._check(features.shape, boxes.shape)
        height, width = ops.shape(features)[1], ops.shape(features)[2]
        ph, pw = self.pool_size
        # Box arithmetic in float32 then int32 (bfloat16 cannot hold whole numbers above 256).
        boxes = ops.cast(boxes, "float32") * self.spatial_scale
        start = ops.cast(ops.floor(boxes[..., :2]), "int32")  # (B, n, 2): y0', x0'
        size = ops.maximum(ops.cast(ops.ceil(boxes[..., 2:]), "int32") - start, 1)
        rows = _bin_masks(start[..., 0], size[..., 0], ph, height)  # (B, n, ph, H)
        cols = _bin_masks(start[..., 1], size[..., 1], pw, width)  # (B, n, pw, W)
        filler = ops.min(features)
        # (B, 1, 1, H, W, C) -> max over H in each row bin -> (B, n, ph, W, C)
        x = _masked_max(features[:, None, None], rows[..., None, None], 3, filler)
        # (B, n, ph, 1, W, C) -> max over W in each column bin -> (B, n, ph, pw, C)
        x = _masked_max(x[:, :, :, None], cols[:, :, None, :, :, None], 4, filler)
        inside = ops.logical_and(ops.any(rows, -1)[..., :, None], ops.any(cols, -1)[..., None, :])
        return ops.where(inside[..., None], x, ops.zeros_like(x))

    def compute_output_shape(self, features_shape, boxes_shape):
        shape, boxes_shape = self._check(features_shape, boxes_shape)
        return (shape[0], boxes_shape[1], *self.pool_size, shape[-1])

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "spatial_scale": self.spatial_scale,
        }


def anchor_boxes(height, width, stride=16, sizes=(128, 256, 512), ratios=(1.0, 0.5, 2.0)):
    """Faster R-CNN's anchor boxes (Ren et al. 2015; D 6.2): k = len(sizes) x len(ratios) boxes
    centred on every location of a `height` x `width` feature map.

    Location (i, j), with `stride` input pixels per cell, is centred on ((i + 0.5) stride,
    (j + 0.5) stride); the anchor of size s and ratio r = width : height there has

        w = s sqrt(r),   h = s / sqrt(r),   so w h = s^2 and w / h = r.

    The notes' 3 sizes (128, 256, 512) x 3 ratios (1:1, 1:2, 2:1) give k = 9 anchors a location.
    Anchors are constants of the map's size (no weights, nothing learned), hence a function.

    Returns:
        float32 NumPy array (height * width * k, 4) of (y0, x0, y1, x1) in input pixels, location
        by location (row-major) and, at each, size by size then ratio by ratio: the order of
        `RPNHead`'s outputs reshaped to (batch, height * width * k, 4 or 2).

    Example:

    >>> anchor_boxes(2, 3).shape
    (54, 4)
    """
    sizes = np.asarray(sizes, "float64")
    ratios = np.asarray(ratios, "float64")
    if sizes.size == 0 or ratios.size == 0 or min(sizes.min(), ratios.min(), stride) <= 0:
        raise ValueError(
            f"anchor_boxes: sizes, ratios and stride must be > 0, got {sizes}, {ratios}, {stride}"
        )
    half_h = (sizes[:, None] / np.sqrt(ratios)[None, :]).ravel() / 2  # (k,)
    half_w = (sizes[:, None] * np.sqrt(ratios)[None, :]).ravel() / 2
    ys = (np.arange(height) + 0.5) * stride
    xs = (np.arange(width) + 0.5) * stride
    cy, cx = (a[:, :, None] for a in np.meshgrid(ys, xs, indexing="ij"))  # (H, W, 1)
    anchors = np.stack([cy - half_h, cx - half_w, cy + half_h, cx + half_w], axis=-1)  # (H, W, k, 4)
    return anchors.reshape(-1, 4).astype("float32")


@keras.saving.register_keras_serializable(package="layers")
class RPNHead(keras.layers.Layer):
    """Faster R-CNN's region proposal network head (D 6.2): a small fully convolutional network.

        h = ReLU(3x3 conv(x)),   deltas = 1x1 conv_{4k}(h),   objectness = 1x1 conv_{2k}(h)

    For each of the k anchors of a location: 4 box offsets (dy, dx, dh, dw) and 2 logits (object,
    not object). With k = 9: 36 + 18 = 54 output channels per location. (The notes write "RPN은 FCN을
    사용하고 총 parameter 수는 9 x (4+2) = 54개", calling the 54 the total number of parameters: it is
    the number of outputs per location; the two 1x1 convolutions alone hold (filters + 1) x 54
    weights, 13,878 for 256 filters.)

    Shapes: `(batch, H, W, C)` -> `[deltas (batch, H, W, 4k), objectness (batch, H, W, 2k)]`.

    Example:

    >>> deltas, objectness = RPNHead(9, filters=256)(np.zeros((1, 5, 5, 32), "float32"))
    >>> deltas.shape[-1] + objectness.shape[-1]
    54
    """

    def __init__(self, num_anchors=9, filters=256, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if int(num_anchors) < 1 or int(filters) < 1:
            raise ValueError(
                f"RPNHead: num_anchors and filters must be >= 1, got {num_anchors}, {filters}"
            )
        self.num_anchors = int(num_anchors)
        self.filters = int(filters)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        def conv(filters, size, name, activation=None):
            return keras.layers.Conv2D(
                filters,
                size,
                padding="same",
                activation=activation,
                kernel_initializer=self.kernel_initializer,
                dtype=self.dtype_policy,
                name=name,
            )

        self.conv = conv(self.filters, 3, "conv", "relu")
        self.deltas = conv(4 * self.num_anchors, 1, "deltas")
        self.objectness = conv(2 * self.num_anchors, 1, "objectness")

    def build(self, input_shape):
        shape = _check_maps("RPNHead", input_shape)
        self.conv.build(shape)
        hidden = (*shape[:3], self.filters)
        self.deltas.build(hidden)
        self.objectness.build(hidden)

    def call(self, inputs):
        _check_maps("RPNHead", inputs.shape)
        h = self.conv(inputs)
        return [self.deltas(h), self.objectness(h)]

    def compute_output_shape(self, input_shape):
        shape = _check_maps("RPNHead", input_shape)
        return [(*shape[:3], 4 * self.num_anchors), (*shape[:3], 2 * self.num_anchors)]

    def get_config(self):
        return {
            **super().get_config(),
            "num_anchors": self.num_anchors,
            "filters": self.filters,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="layers")
class YOLOHead(keras.layers.Layer):
    """YOLO v1's output tensor (Redmon et al. 2016; D 6.2): S x S cells, each with B boxes of
    (x, y, w, h, confidence) and C class probabilities, S x S x (B 5 + C) values.

    A 1x1 convolution of an S x S feature map to B 5 + C channels, squashed into the ranges the
    YOLO v1 loss compares: per box x, y (the centre's offset inside its cell), w, h (fractions of
    the image) and the confidence through a sigmoid; the C class probabilities through a softmax.
    (The paper reshapes a fully connected layer's 1,470 outputs, S = 7, B = 2, C = 20, to
    7 x 7 x 30 and leaves them linear; the layout is the same.)

    Channel layout of a cell: [x, y, w, h, conf] of box 0, ..., of box B - 1, then C classes.

    Shapes: `(batch, S, S, F)` -> `(batch, S, S, B 5 + C)`.

    Example:

    >>> YOLOHead(7, 2, 20)(np.zeros((1, 7, 7, 64), "float32")).shape
    (1, 7, 7, 30)
    """

    def __init__(
        self,
        grid_size=7,
        boxes_per_cell=2,
        num_classes=20,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if min(int(grid_size), int(boxes_per_cell), int(num_classes)) < 1:
            raise ValueError(
                f"YOLOHead: grid_size, boxes_per_cell and num_classes must be >= 1, got "
                f"{grid_size}, {boxes_per_cell}, {num_classes}"
            )
        self.grid_size = int(grid_size)
        self.boxes_per_cell = int(boxes_per_cell)
        self.num_classes = int(num_classes)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.conv = keras.layers.Conv2D(
            self.channels,
            1,
            kernel_initializer=self.kernel_initializer,
            dtype=self.dtype_policy,
            name="conv",
        )

    @property
    def channels(self):
        """B 5 + C."""
        return self.boxes_per_cell * 5 + self.num_classes

    def _check(self, shape):
        shape = _check_maps("YOLOHead", shape)
        if shape[1] != self.grid_size or shape[2] != self.grid_size:
            raise ValueError(
                f"YOLOHead: expected feature maps of shape (batch, {self.grid_size}, "
                f"{self.grid_size}, features), got {shape}"
            )
        return shape

    def build(self, input_shape):
        self.conv.build(self._check(input_shape))

    def call(self, inputs):
        self._check(inputs.shape)
        z = self.conv(inputs)
        boxes = ops.sigmoid(z[..., : 5 * self.boxes_per_cell])
        classes = ops.softmax(z[..., 5 * self.boxes_per_cell :], axis=-1)
        return ops.concatenate([boxes, classes], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*self._check(input_shape)[:3], self.channels)

    def get_config(self):
        return {
            **super().get_config(),
            "grid_size": self.grid_size,
            "boxes_per_cell": self.boxes_per_cell,
            "num_classes": self.num_classes,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


def _corners(xywh, grid_size):
    """YOLO (x, y in cell, w, h of image) -> (y0, x0, y1, x1) as fractions of the image, for a
    tensor (..., S, S, [B,] 4) whose cell axes are -3 and -2 (or -4 and -3 with a box axis)."""
    s = grid_size
    col = ops.arange(s, dtype="float32")
    # cells axis layout: (..., S_rows, S_cols, B, 4)
    cx = (xywh[..., 0] + col[None, :, None]) / s
    cy = (xywh[..., 1] + col[:, None, None]) / s
    w, h = xywh[..., 2], xywh[..., 3]
    return ops.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1)


def box_iou(a, b):
    """Intersection over union of boxes (y0, x0, y1, x1), broadcast over the leading axes:
    a (..., 4), b (..., 4) -> (...). Degenerate boxes have IoU 0."""
    y0, x0 = ops.maximum(a[..., 0], b[..., 0]), ops.maximum(a[..., 1], b[..., 1])
    y1, x1 = ops.minimum(a[..., 2], b[..., 2]), ops.minimum(a[..., 3], b[..., 3])
    inter = ops.maximum(y1 - y0, 0.0) * ops.maximum(x1 - x0, 0.0)
    area_a = ops.maximum(a[..., 2] - a[..., 0], 0.0) * ops.maximum(a[..., 3] - a[..., 1], 0.0)
    area_b = ops.maximum(b[..., 2] - b[..., 0], 0.0) * ops.maximum(b[..., 3] - b[..., 1], 0.0)
    union = area_a + area_b - inter
    return ops.where(union > 0, inter / ops.maximum(union, 1e-12), ops.zeros_like(union))


@keras.saving.register_keras_serializable(package="layers")
class YOLOv1Loss(keras.losses.Loss):
    """The YOLO v1 loss (Redmon et al. 2016, eq. 3; D 6.2), sum-squared error in five terms:

        lambda_coord sum_ij 1obj_ij [(x - x^)^2 + (y - y^)^2]
      + lambda_coord sum_ij 1obj_ij [(sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2]
      +              sum_ij 1obj_ij (C - C^)^2
      + lambda_noobj sum_ij 1noobj_ij (C - C^)^2
      +              sum_i 1obj_i sum_c (p(c) - p^(c))^2

    over cells i and their boxes j. 1obj_i: an object's centre lies in cell i; 1obj_ij: box j of
    that cell is "responsible" for it, the one of the B whose prediction has the largest IoU with
    the true box; 1noobj_ij: every other box. The confidence target C^ of a responsible box is that
    IoU (`rescore=True`, the paper's Pr(object) x IoU; darknet's `rescore` option) or 1, of every
    other box 0. The per-image sums are averaged over the batch (lambda_coord 5, lambda_noobj 0.5 as
    in the paper). sqrt w: large boxes' small errors matter less than small boxes'.

    y_true: `(batch, S, S, 5 + C)`: x, y, w, h, object (0 or 1), one-hot class of the object whose
    centre lies in the cell. y_pred: `YOLOHead`'s `(batch, S, S, 5 B + C)`.
    """

    def __init__(
        self,
        boxes_per_cell=2,
        num_classes=20,
        lambda_coord=5.0,
        lambda_noobj=0.5,
        rescore=True,
        name="yolo_v1_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.boxes_per_cell = int(boxes_per_cell)
        self.num_classes = int(num_classes)
        self.lambda_coord = float(lambda_coord)
        self.lambda_noobj = float(lambda_noobj)
        self.rescore = bool(rescore)

    def call(self, y_true, y_pred):
        b, c = self.boxes_per_cell, self.num_classes
        y_true = ops.cast(y_true, "float32")
        y_pred = ops.cast(y_pred, "float32")
        if y_true.shape[-1] != 5 + c or y_pred.shape[-1] != 5 * b + c:
            raise ValueError(
                f"YOLOv1Loss: expected y_true (batch, S, S, {5 + c}) and y_pred (batch, S, S, "
                f"{5 * b + c}), got {tuple(y_true.shape)} and {tuple(y_pred.shape)}"
            )
        s = y_pred.shape[1]
        boxes = ops.reshape(y_pred[..., : 5 * b], (-1, s, s, b, 5))  # (N, S, S, B, 5)
        truth = y_true[..., None, :4]  # (N, S, S, 1, 4)
        obj = y_true[..., 4]  # (N, S, S)
        # The responsible box: the largest IoU with the truth (no gradient through the choice).
        iou = ops.stop_gradient(box_iou(_corners(boxes[..., :4], s), _corners(truth, s)))
        responsible = ops.one_hot(ops.argmax(iou, axis=-1), b) * obj[..., None]  # (N, S, S, B)
        noobj = 1.0 - responsible

        xy = ops.sum(ops.square(boxes[..., :2] - truth[..., :2]), axis=-1)
        eps = 1e-9  # sqrt'(0) is infinite
        wh = ops.sum(
            ops.square(ops.sqrt(boxes[..., 2:4] + eps) - ops.sqrt(truth[..., 2:4] + eps)), axis=-1
        )
        target = iou if self.rescore else ops.ones_like(iou)
        conf_obj = ops.square(boxes[..., 4] - target)
        conf_noobj = ops.square(boxes[..., 4])
        classes = ops.sum(ops.square(y_pred[..., 5 * b :] - y_true[..., 5:]), axis=-1)

        per_box = (
            self.lambda_coord * responsible * (xy + wh)
            + responsible * conf_obj
            + self.lambda_noobj * noobj * conf_noobj
        )
        return ops.sum(per_box, axis=(1, 2, 3)) + ops.sum(obj * classes, axis=(1, 2))

    def get_config(self):
        return {
            **super().get_config(),
            "boxes_per_cell": self.boxes_per_cell,
            "num_classes": self.num_classes,
            "lambda_coord": self.lambda_coord,
            "lambda_noobj": self.lambda_noobj,
            "rescore": self.rescore,
        }


def yolo_boxes(y_pred, boxes_per_cell, num_classes):
    """YOLOHead outputs -> (corners, scores, classes) of all S S B boxes of every image:
    corners (batch, S S B, 4) as (y0, x0, y1, x1) fractions of the image, the class-specific
    confidence score = confidence x p(class) of the best class (batch, S S B), classes (batch, S S B)
    int (0-based)."""
    b = boxes_per_cell
    s = y_pred.shape[1]
    boxes = ops.reshape(y_pred[..., : 5 * b], (-1, s, s, b, 5))
    probs = y_pred[..., 5 * b :]
    corners = ops.reshape(_corners(boxes[..., :4], s), (-1, s * s * b, 4))
    best = ops.broadcast_to(ops.max(probs, axis=-1)[..., None], ops.shape(boxes)[:-1])
    classes = ops.broadcast_to(ops.argmax(probs, axis=-1)[..., None], ops.shape(boxes)[:-1])
    scores = ops.reshape(boxes[..., 4] * best, (-1, s * s * b))
    return corners, scores, ops.reshape(classes, (-1, s * s * b))


def non_max_suppression(boxes, scores, iou_threshold=0.5, score_threshold=0.0, classes=None):
    """Greedy non-maximum suppression: which boxes to keep, as a boolean mask.

    In order of falling score, a box is kept unless its score is at most `score_threshold` or its
    IoU with a box kept before it exceeds `iou_threshold` (only boxes of the same class suppress
    each other when `classes` is given).

    Args:
        boxes: (..., K, 4) as (y0, x0, y1, x1); scores: (..., K); classes: optional (..., K) ints.

    Returns:
        bool (..., K): True for the kept boxes. Fixed shapes, K steps of batched `keras.ops`.
    """
    scores = ops.convert_to_tensor(scores, "float32")
    boxes = ops.convert_to_tensor(boxes, "float32")
    order = ops.argsort(-scores, axis=-1)
    sorted_boxes = ops.take_along_axis(boxes, order[..., None], axis=-2)
    sorted_scores = ops.take_along_axis(scores, order, axis=-1)
    overlaps = box_iou(sorted_boxes[..., :, None, :], sorted_boxes[..., None, :, :]) > iou_threshold
    if classes is not None:
        sorted_classes = ops.take_along_axis(ops.convert_to_tensor(classes), order, axis=-1)
        same = ops.equal(sorted_classes[..., :, None], sorted_classes[..., None, :])
        overlaps = ops.logical_and(overlaps, same)
    suppressed = ops.logical_not(sorted_scores > score_threshold)
    kept = []
    for i in range(sorted_scores.shape[-1]):
        keep = ops.logical_not(suppressed[..., i])
        kept.append(keep)
        suppressed = ops.logical_or(suppressed, ops.logical_and(keep[..., None], overlaps[..., i, :]))
    kept = ops.stack(kept, axis=-1)
    return ops.take_along_axis(kept, ops.argsort(order, axis=-1), axis=-1)
