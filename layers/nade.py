"""NADE, the neural autoregressive density estimator (Larochelle and Murray 2011; D 9.3).

    p(x) = prod_i p(x_i | x_<i),   p(x_i = 1 | x_<i) = sigmoid(b_i + V_i . h_i),
    h_i = sigmoid(c + W[:, <i] x_<i)

One weight matrix W is shared by all the conditionals: h_{i+1} is h_i's pre-activation plus
W[:, i] x_i, so all D hidden states come from one exclusive cumulative sum, O(D H) per image.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="layers")
class NADE(keras.layers.Layer):
    """NADE over `(batch, D)` binary vectors: returns the D conditional logits
    `l_i = log p(x_i = 1 | x_<i) - log p(x_i = 0 | x_<i)`, each depending on x_1..x_{i-1} only.
    `log_prob(x)` gives log p(x) in nats, `(batch,)`.

    Args:
        hidden: units H of the shared hidden layer.
        kernel_initializer: of W (H, D) and V (D, H).
    """

    def __init__(self, hidden, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"NADE: `hidden` must be a positive int; received {hidden!r}.")
        self.hidden = hidden
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        if len(input_shape) != 2 or input_shape[-1] is None:
            raise ValueError(f"NADE: expected inputs (batch, D) with D known; received {input_shape}.")
        size = input_shape[-1]
        init = self.kernel_initializer
        self.w = self.add_weight(shape=(self.hidden, size), initializer=init, name="w")
        self.c = self.add_weight(shape=(self.hidden,), initializer="zeros", name="c")
        self.v = self.add_weight(shape=(size, self.hidden), initializer=init, name="v")
        self.b = self.add_weight(shape=(size,), initializer="zeros", name="b")

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        contributions = x[:, :, None] * ops.transpose(self.w)[None]  # (B, D, H): x_j W[:, j]
        before = ops.cumsum(contributions, axis=1) - contributions  # sum over j < i
        h = ops.sigmoid(before + self.c)  # (B, D, H): h_i
        return ops.sum(h * self.v[None], axis=-1) + self.b  # (B, D)

    def log_prob(self, inputs):
        logits = self(inputs)
        x = ops.cast(inputs, logits.dtype)
        return -ops.sum(ops.binary_crossentropy(x, logits, from_logits=True), axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "hidden": self.hidden,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
