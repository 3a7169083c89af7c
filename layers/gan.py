"""GAN building blocks: WGAN weight clipping (A 9.6) and conditional-GAN labels (A 9.7)."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="layers")
class ClipConstraint(keras.constraints.Constraint):
    """WGAN weight clipping: after every optimizer update, `w <- clip(w, -c, c)`.

    The critic of the original WGAN stays (roughly) K-Lipschitz by keeping every weight in
    `[-clip_value, clip_value]` (0.01 in the paper). Keras applies a variable's constraint inside
    `Optimizer.apply` (also in the stateless path that `fit()` uses on JAX), right after the update,
    so the clipped values are what the next step sees.

    Shapes: any weight shape -> the same shape.

    Args:
        clip_value: the bound `c > 0`.

    Example:

    >>> layer = keras.layers.Dense(8, kernel_constraint=ClipConstraint(0.01))
    """

    def __init__(self, clip_value=0.01):
        if not float(clip_value) > 0:
            raise ValueError(f"ClipConstraint: clip_value must be > 0, got {clip_value}")
        self.clip_value = float(clip_value)

    def __call__(self, w):
        return ops.clip(w, -self.clip_value, self.clip_value)

    def get_config(self):
        return {"clip_value": self.clip_value}


@keras.saving.register_keras_serializable(package="layers")
class ConcatLabel(keras.layers.Layer):
    """Conditional GAN: appends a one-hot class label to a vector or, as constant maps, to an image.

    With `y = one_hot(label, num_classes)`:

        vector input x (batch, features):          out = concat([x, y], -1)
        image input x (batch, height, width, ch):  out[b, i, j] = concat([x[b, i, j], y[b]], -1)

    i.e. for images the label becomes `num_classes` constant feature maps (1 at the label's map,
    0 elsewhere), as in conditional DCGAN generators and discriminators.

    Shapes: `inputs` `(batch, features)` -> `(batch, features + num_classes)`;
    `inputs` `(batch, height, width, channels)` -> `(batch, height, width, channels + num_classes)`.
    `labels`: integer class ids `(batch,)` (or `(batch, 1)`), or one-hot / soft labels
    `(batch, num_classes)` (used as given, cast to the input dtype).

    Args:
        num_classes: the number of classes C.

    Example:

    >>> z = np.random.rand(4, 100).astype("float32")
    >>> ConcatLabel(10)(z, np.array([0, 3, 9, 1])).shape
    (4, 110)
    >>> images = np.random.rand(4, 28, 28, 1).astype("float32")
    >>> ConcatLabel(10)(images, np.array([0, 3, 9, 1])).shape
    (4, 28, 28, 11)
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) < 1:
            raise ValueError(f"ConcatLabel: num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)

    def _check(self, inputs_shape, labels_shape):
        inputs_shape, labels_shape = tuple(inputs_shape), tuple(labels_shape)
        if len(inputs_shape) not in (2, 4):
            raise ValueError(
                "ConcatLabel expects inputs of shape (batch, features) or (batch, height, width, "
                f"channels), got {inputs_shape}"
            )
        one_hot = len(labels_shape) == 2 and labels_shape[1] not in (1, None)
        if len(labels_shape) not in (1, 2) or (one_hot and labels_shape[1] != self.num_classes):
            raise ValueError(
                f"ConcatLabel expects labels of shape (batch,) or (batch, {self.num_classes}), "
                f"got {labels_shape}"
            )
        a, b = inputs_shape[0], labels_shape[0]
        if a is not None and b is not None and a != b:
            raise ValueError(
                f"ConcatLabel expects inputs and labels with the same batch size, got {inputs_shape} "
                f"and {labels_shape}"
            )
        return inputs_shape, one_hot

    def build(self, inputs_shape, labels_shape):
        self._check(inputs_shape, labels_shape)

    def call(self, inputs, labels):
        _, one_hot = self._check(inputs.shape, labels.shape)
        if one_hot:
            y = ops.cast(labels, inputs.dtype)
        else:
            ids = ops.cast(ops.reshape(labels, (-1,)), "int32")
            y = ops.one_hot(ids, self.num_classes, dtype=inputs.dtype)
        if len(inputs.shape) == 4:
            height, width = ops.shape(inputs)[1], ops.shape(inputs)[2]
            y = ops.broadcast_to(y[:, None, None, :], (ops.shape(y)[0], height, width, self.num_classes))
        return ops.concatenate([inputs, y], axis=-1)

    def compute_output_shape(self, inputs_shape, labels_shape):
        inputs_shape, _ = self._check(inputs_shape, labels_shape)
        channels = inputs_shape[-1]
        return (*inputs_shape[:-1], None if channels is None else channels + self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
