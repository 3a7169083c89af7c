"""The Vision Transformer's input layers (Dosovitskiy et al. 2021; B 5.3.2): an image cut into
patches, each patch a token; a learned class token in front; learned positions added.

    x = PatchEmbedding(7, 64)(images)      # (B, 28, 28, 1) -> (B, 16, 64): 4 x 4 patches of 7 x 7
    x = ClassToken()(x)                    # (B, 17, 64): the class token first
    x = LearnedPositionalEmbedding()(x)    # (B, 17, 64): plus one learned vector per position
"""

import keras
from keras import ops


def _check_tokens(layer, shape):
    if len(shape) != 3:
        raise ValueError(f"{type(layer).__name__}: expected tokens (batch, T, d); received {shape}.")
    return tuple(shape)


@keras.saving.register_keras_serializable(package="layers")
class PatchEmbedding(keras.layers.Layer):
    """Non-overlapping `patch_size` x `patch_size` patches, each flattened (rows, then columns, then
    channels) and projected to `embed_dim` by one shared matrix and bias: the ViT's "linear
    projection of flattened patches", computed as a convolution with kernel = stride = patch size.

    Input `(batch, H, W, C)` with H and W multiples of `patch_size`; output `(batch, (H / P) (W / P),
    embed_dim)`, the patches in row-major order. 224 x 224 at patch 16 gives 196 tokens.
    """

    def __init__(
        self,
        patch_size,
        embed_dim,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg, value in (("patch_size", patch_size), ("embed_dim", embed_dim)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"PatchEmbedding: `{arg}` must be a positive int; received {value!r}.")
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _grid(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(
                f"PatchEmbedding: expected images (batch, H, W, C); received {input_shape}."
            )
        _, height, width, _ = input_shape
        if height is None or width is None or height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"PatchEmbedding: H and W must be known multiples of patch_size {self.patch_size}; "
                f"received {input_shape}."
            )
        return height // self.patch_size, width // self.patch_size

    def build(self, input_shape):
        self._grid(input_shape)
        self.projection = keras.layers.Conv2D(
            self.embed_dim,
            self.patch_size,
            strides=self.patch_size,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            name="projection",
            dtype=self.dtype_policy,
        )
        self.projection.build(input_shape)

    def call(self, inputs):
        rows, cols = self._grid(inputs.shape)
        return ops.reshape(self.projection(inputs), (-1, rows * cols, self.embed_dim))

    def compute_output_shape(self, input_shape):
        rows, cols = self._grid(input_shape)
        return (input_shape[0], rows * cols, self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_size": self.patch_size,
                "embed_dim": self.embed_dim,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="layers")
class ClassToken(keras.layers.Layer):
    """Puts one learned `d`-vector, the same for every example, in front of the tokens:
    `(batch, T, d) -> (batch, T + 1, d)`. The classifier reads the encoder's output at position 0.
    """

    def __init__(self, initializer=None, **kwargs):
        super().__init__(**kwargs)
        # Small random values: a zero token would get no gradient from a loss that is 0 at 0.
        self.initializer = keras.initializers.get(
            initializer or keras.initializers.TruncatedNormal(stddev=0.02)
        )

    def build(self, input_shape):
        shape = _check_tokens(self, input_shape)
        self.token = self.add_weight(shape=(1, 1, shape[-1]), initializer=self.initializer, name="token")

    def call(self, inputs):
        token = ops.cast(self.token, inputs.dtype)
        token = ops.broadcast_to(token, (ops.shape(inputs)[0], 1, self.token.shape[-1]))
        return ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        batch, steps, dim = _check_tokens(self, input_shape)
        return (batch, None if steps is None else steps + 1, dim)

    def get_config(self):
        config = super().get_config()
        config["initializer"] = keras.initializers.serialize(self.initializer)
        return config


@keras.saving.register_keras_serializable(package="layers")
class LearnedPositionalEmbedding(keras.layers.Layer):
    """Adds a learned vector per position: `x + E[:T]`, E of shape (T, d) fixed at build time
    (unlike `PositionalEncoding`'s fixed sinusoids, the ViT's positions are trained)."""

    def __init__(self, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(
            initializer or keras.initializers.TruncatedNormal(stddev=0.02)
        )

    def build(self, input_shape):
        _, steps, dim = _check_tokens(self, input_shape)
        if steps is None:
            raise ValueError("LearnedPositionalEmbedding: the number of tokens must be known.")
        self.positions = self.add_weight(
            shape=(1, steps, dim), initializer=self.initializer, name="positions"
        )

    def call(self, inputs):
        if tuple(inputs.shape[1:]) != tuple(self.positions.shape[1:]):
            raise ValueError(
                f"LearnedPositionalEmbedding: built for (batch, {self.positions.shape[1]}, "
                f"{self.positions.shape[2]}) tokens; received {inputs.shape}."
            )
        return inputs + ops.cast(self.positions, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return _check_tokens(self, input_shape)

    def get_config(self):
        config = super().get_config()
        config["initializer"] = keras.initializers.serialize(self.initializer)
        return config
