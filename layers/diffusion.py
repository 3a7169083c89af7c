"""Pieces of a denoising-diffusion U-Net (Ho et al. 2020): the sinusoidal embedding of the noise
level t and a residual block that the embedding conditions."""

import keras
from keras import ops


def _shape(x):
    return tuple(x.shape if hasattr(x, "shape") else x)


def _offset(initializer, k):
    """`initializer` with its integer seed moved by k (a seeded Keras initializer draws the same
    values at every call, so sub-layers of one shape would start equal); others unchanged."""
    config = initializer.get_config()
    if isinstance(config.get("seed"), int):
        return type(initializer).from_config({**config, "seed": config["seed"] + k})
    return initializer


@keras.saving.register_keras_serializable(package="layers")
class SinusoidalTimeEmbedding(keras.layers.Layer):
    """Embeds time steps (or any scalars) as sines and cosines of geometrically spaced frequencies.

        w_i  = max_wavelength^(-i / (dim / 2)),          i = 0 .. dim / 2 - 1
        e(t) = [sin(t w_0), ..., sin(t w_{dim/2-1}), cos(t w_0), ..., cos(t w_{dim/2-1})]

    the Transformer's positional encoding for one scalar per example, with the sines and the
    cosines in two halves. No weights; computed in float32, cast to the compute dtype.

    Args:
        dim: the embedding width, even.
        max_wavelength: the 10000 of the formula.

    Input `(batch,)` or `(batch, 1)` of integer or float steps; output `(batch, dim)`.

    Example:

    >>> SinusoidalTimeEmbedding(8)(np.array([0, 10, 999])).shape
    (3, 8)
    """

    def __init__(self, dim, max_wavelength=10000.0, **kwargs):
        super().__init__(**kwargs)
        if int(dim) != dim or dim < 2 or dim % 2:
            raise ValueError(f"SinusoidalTimeEmbedding: dim must be an even integer >= 2, got {dim!r}")
        self.dim = int(dim)
        self.max_wavelength = float(max_wavelength)

    def _check(self, shape):
        shape = _shape(shape)
        if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            raise ValueError(
                f"SinusoidalTimeEmbedding: expected time steps of shape (batch,) or (batch, 1); "
                f"received shape {shape}."
            )
        return shape

    def build(self, input_shape):
        self._check(input_shape)

    def call(self, inputs):
        self._check(inputs.shape)
        t = ops.reshape(ops.cast(inputs, "float32"), (-1, 1))  # (batch, 1)
        half = self.dim // 2
        exponent = ops.cast(ops.arange(half), "float32") / float(half)
        angle = t * ops.power(self.max_wavelength, -exponent)  # (batch, dim / 2)
        return ops.cast(ops.concatenate([ops.sin(angle), ops.cos(angle)], axis=-1), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (self._check(input_shape)[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "max_wavelength": self.max_wavelength}


@keras.saving.register_keras_serializable(package="layers")
class TimeResidualBlock(keras.layers.Layer):
    """A DDPM U-Net residual block: two 3x3 convolutions, the time embedding added in between.

        h = Conv3x3(swish(GroupNorm(x)))
        h = h + Dense(swish(emb))[:, None, None, :]          (one shift per channel and example)
        h = Conv3x3(swish(GroupNorm(h)))
        y = shortcut(x) + h                                  (a 1x1 convolution when C != filters)

    Built from Keras' `GroupNormalization`, `Conv2D` and `Dense`, so its weights load into the
    same stack of built-in layers.

    Args:
        filters: output channels.
        groups: GroupNormalization groups (must divide the input channels and `filters`).
        kernel_initializer: of the convolutions and the Dense projection.

    Call as `block(x, emb)`: x `(batch, H, W, C)`, emb `(batch, E)`; output `(batch, H, W, filters)`.

    Example:

    >>> x = np.zeros((2, 8, 8, 16), "float32"); emb = np.zeros((2, 32), "float32")
    >>> TimeResidualBlock(32)(x, emb).shape
    (2, 8, 8, 32)
    """

    def __init__(self, filters, groups=8, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.groups = int(groups)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        if self.filters % self.groups:
            raise ValueError(
                f"TimeResidualBlock: groups ({self.groups}) must divide filters ({self.filters})"
            )

    def _check(self, x_shape, emb_shape):
        x_shape, emb_shape = _shape(x_shape), _shape(emb_shape)
        if len(x_shape) != 4 or len(emb_shape) != 2 or x_shape[-1] is None or emb_shape[-1] is None:
            raise ValueError(
                "TimeResidualBlock expects x of shape (batch, H, W, C) and emb (batch, E); "
                f"received {x_shape} and {emb_shape}."
            )
        if x_shape[-1] % self.groups:
            raise ValueError(
                f"TimeResidualBlock: groups ({self.groups}) must divide the input channels "
                f"({x_shape[-1]})"
            )
        return x_shape, emb_shape

    def build(self, x_shape, emb_shape):
        x_shape, emb_shape = self._check(x_shape, emb_shape)
        init = iter(_offset(self.kernel_initializer, k) for k in range(4)).__next__
        kw = dict(dtype=self.dtype_policy)
        self.norm1 = keras.layers.GroupNormalization(self.groups, name="norm1", **kw)
        self.conv1 = keras.layers.Conv2D(self.filters, 3, padding="same", kernel_initializer=init(),
                                         name="conv1", **kw)  # fmt: skip
        self.time = keras.layers.Dense(self.filters, kernel_initializer=init(), name="time", **kw)
        self.norm2 = keras.layers.GroupNormalization(self.groups, name="norm2", **kw)
        self.conv2 = keras.layers.Conv2D(self.filters, 3, padding="same", kernel_initializer=init(),
                                         name="conv2", **kw)  # fmt: skip
        self.shortcut = None
        if x_shape[-1] != self.filters:
            self.shortcut = keras.layers.Conv2D(self.filters, 1, kernel_initializer=init(),
                                                name="shortcut", **kw)  # fmt: skip
            self.shortcut.build(x_shape)
        out_shape = (*x_shape[:-1], self.filters)
        self.norm1.build(x_shape)
        self.conv1.build(x_shape)
        self.time.build(emb_shape)
        self.norm2.build(out_shape)
        self.conv2.build(out_shape)

    def call(self, x, emb):
        self._check(x.shape, emb.shape)
        h = self.conv1(ops.silu(self.norm1(x)))
        shift = self.time(ops.silu(ops.cast(emb, self.compute_dtype)))  # (batch, filters)
        h = h + shift[:, None, None, :]
        h = self.conv2(ops.silu(self.norm2(h)))
        return (x if self.shortcut is None else self.shortcut(x)) + h

    def compute_output_shape(self, x_shape, emb_shape):
        x_shape, _ = self._check(x_shape, emb_shape)
        return (*x_shape[:-1], self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "groups": self.groups,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
