"""Core layers: Maxout (A 2.2) and VAE Sampling (A 9.3)."""

import keras
from keras import ops


def _shape(shape):
    return tuple(shape) if shape is not None else None


@keras.saving.register_keras_serializable(package="layers")
class Maxout(keras.layers.Layer):
    """Maxout: the largest of `pieces` affine functions, per output unit.

    For an input `x` of `features` values, unit `u` of the output is

        y_u = max_k (x W[:, u, k] + b[u, k]),   k = 0 .. pieces - 1

    (A 2.2: `max(w1^T x + b1, w2^T x + b2)` for two pieces; also the readout
    `t_i = maxout(t~_i, N_m)` of the Bahdanau decoder, A 7.8). It is computed as one dense
    projection to `units * pieces` values, reshaped to `(..., units, pieces)`, then a max over the
    last axis. The kernel has shape `(features, units * pieces)`: column `u * pieces + k` holds
    piece `k` of unit `u`; the bias has shape `(units * pieces,)`.

    Shapes: `(batch, ..., features)` -> `(batch, ..., units)`.

    Args:
        units: number of output units.
        pieces: number of affine pieces per unit (k, at least 1; 2 in the notes).
        use_bias: whether the pieces have biases.
        kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        kernel_constraint, bias_constraint: as in `keras.layers.Dense`.

    Example:

    >>> x = np.random.rand(4, 10).astype("float32")
    >>> Maxout(units=3, pieces=2)(x).shape
    (4, 3)
    """

    def __init__(
        self,
        units,
        pieces=2,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if int(units) < 1 or int(pieces) < 1:
            raise ValueError(
                f"Maxout: units and pieces must be >= 1, got units={units}, pieces={pieces}"
            )
        self.units = int(units)
        self.pieces = int(pieces)
        self.use_bias = use_bias
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)

    def _check(self, input_shape):
        input_shape = _shape(input_shape)
        if input_shape is None or len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(
                "Maxout expects input of shape (batch, ..., features) with rank >= 2 and a known "
                f"last dimension, got shape {input_shape}"
            )
        return input_shape

    def build(self, input_shape):
        features = self._check(input_shape)[-1]
        self.kernel = self.add_weight(
            name="kernel",
            shape=(features, self.units * self.pieces),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        if self.use_bias:
            self.bias = self.add_weight(
                name="bias",
                shape=(self.units * self.pieces,),
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.input_spec = keras.InputSpec(min_ndim=2, axes={-1: features})

    def call(self, inputs):
        z = ops.matmul(inputs, self.kernel)
        if self.bias is not None:
            z = ops.add(z, self.bias)
        z = ops.reshape(z, (*ops.shape(z)[:-1], self.units, self.pieces))
        return ops.max(z, axis=-1)

    def compute_output_shape(self, input_shape):
        return (*self._check(input_shape)[:-1], self.units)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "pieces": self.pieces,
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
        }


@keras.saving.register_keras_serializable(package="layers")
class Sampling(keras.layers.Layer):
    """VAE reparameterisation: draws `z ~ N(mean, exp(log_var))` differentiably.

        z = mean + exp(0.5 * log_var) * eps,   eps ~ N(0, I)

    `eps` comes from the layer's own `keras.random.SeedGenerator(seed)`, so a given seed gives the
    same sequence of draws, also inside compiled steps (the generator's state is a variable that
    advances on every call). Gradients flow to `mean` and `log_var`, not through `eps`.

    Shapes: `mean` and `log_var` both `(batch, ..., latent_dim)` -> `z` of the same shape.

    Call either as `Sampling()([mean, log_var])` (the keras-io VAE convention) or
    `Sampling()(mean, log_var)`.

    Args:
        seed: integer seed of the layer's `SeedGenerator` (None: drawn from Keras' global seed).

    Example:

    >>> mean = np.zeros((2, 4), "float32"); log_var = np.zeros((2, 4), "float32")
    >>> Sampling(seed=1)([mean, log_var]).shape
    (2, 4)
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    @staticmethod
    def _split(inputs, log_var):
        if log_var is None:
            if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
                raise ValueError(
                    "Sampling expects [mean, log_var], two tensors of shape (batch, ..., latent_dim), "
                    f"got {len(inputs) if isinstance(inputs, (list, tuple)) else 1} tensor(s)"
                )
            return inputs
        return inputs, log_var

    @staticmethod
    def _check(mean_shape, log_var_shape):
        mean_shape, log_var_shape = _shape(mean_shape), _shape(log_var_shape)
        if (
            len(mean_shape) < 2
            or len(mean_shape) != len(log_var_shape)
            or any(a is not None and b is not None and a != b for a, b in zip(mean_shape, log_var_shape))
        ):
            raise ValueError(
                "Sampling expects mean and log_var of the same shape (batch, ..., latent_dim), "
                f"got {mean_shape} and {log_var_shape}"
            )
        return mean_shape

    @classmethod
    def _split_shapes(cls, inputs_shape, log_var_shape):
        if log_var_shape is None and not all(isinstance(s, (list, tuple)) for s in inputs_shape or ()):
            inputs_shape = (inputs_shape,)  # One shape: a single tensor, not [mean, log_var].
        return cls._split(inputs_shape, log_var_shape)

    def build(self, inputs_shape, log_var_shape=None):
        self._check(*self._split_shapes(inputs_shape, log_var_shape))

    def call(self, inputs, log_var=None):
        mean, log_var = self._split(inputs, log_var)
        self._check(mean.shape, log_var.shape)
        mean = ops.cast(mean, self.compute_dtype)
        log_var = ops.cast(log_var, self.compute_dtype)
        eps = keras.random.normal(ops.shape(mean), dtype=self.compute_dtype, seed=self.seed_generator)
        return ops.add(mean, ops.multiply(ops.exp(ops.multiply(0.5, log_var)), eps))

    def compute_output_shape(self, inputs_shape, log_var_shape=None):
        return self._check(*self._split_shapes(inputs_shape, log_var_shape))

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}
