"""Recurrent cells written from the notes' equations (A 7.4, D 7.2-7.4).

Keras has `SimpleRNNCell`, `LSTMCell` and `GRUCell`; these exist because the notes derive the cells
by hand, in their own weight layout and conventions. Each is a Keras RNN cell (`state_size`,
`call(inputs, states)`), so it runs inside `keras.layers.RNN`, and each equals the Keras cell given
the same weights (the tests prove it): `VanillaRNNCell` takes `SimpleRNNCell`'s weights as they are,
the LSTM and GRU cells take Keras' weights mapped by `from_keras_lstm` and `from_keras_gru`.

Row-vector convention throughout (inputs `(batch, features)`), inputs first: `[x_t, h_{t-1}]` is
the concatenation of the input and the previous hidden state along the feature axis.
"""

import keras
from keras import ops

_ACTIVATIONS = ("tanh", "sigmoid", "relu", "linear")


def _check_input(layer, input_shape):
    if len(input_shape) != 2 or input_shape[-1] is None:
        raise ValueError(
            f"{type(layer).__name__} expects inputs of shape (batch, features) with known features "
            f"(inside keras.layers.RNN: (batch, time, features)), got {tuple(input_shape)}"
        )
    return input_shape[-1]


@keras.saving.register_keras_serializable(package="layers")
class VanillaRNNCell(keras.layers.Layer):
    """The vanilla RNN cell `h_t = phi(x_t U + h_{t-1} W + b)` (D 7.2, B 4.1).

    Shapes: `x_t (batch, input_dim)`, `h_t (batch, units)`; weights `U = kernel (input_dim, units)`,
    `W = recurrent_kernel (units, units)`, `b = bias (units,)`: the layout of Keras'
    `SimpleRNNCell`, which it equals for the same weights and activation.

    Args:
        units: size of the hidden state.
        activation: "tanh" (default), "sigmoid", "relu" or "linear" (D 7.2's vanishing and
            exploding examples use sigmoid and ReLU).
        use_bias: add `b`.

    Example:

    >>> rnn = keras.layers.RNN(VanillaRNNCell(8), return_sequences=True)
    >>> rnn(np.zeros((2, 5, 3), "float32")).shape
    (2, 5, 8)
    """

    def __init__(self, units, activation="tanh", use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"VanillaRNNCell activation must be one of {_ACTIVATIONS}, got {activation!r}"
            )
        self.units = int(units)
        self.activation = activation
        self.use_bias = bool(use_bias)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape):
        input_dim = _check_input(self, input_shape)
        self.kernel = self.add_weight((input_dim, self.units), "glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(
            (self.units, self.units), "orthogonal", name="recurrent_kernel"
        )
        self.bias = self.add_weight((self.units,), "zeros", name="bias") if self.use_bias else None

    def call(self, inputs, states, training=None):
        previous = states[0] if isinstance(states, (list, tuple)) else states
        z = ops.matmul(inputs, self.kernel) + ops.matmul(previous, self.recurrent_kernel)
        if self.bias is not None:
            z = z + self.bias
        h = keras.activations.get(self.activation)(z)
        return h, [h]

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
        }


@keras.saving.register_keras_serializable(package="layers")
class ScratchLSTMCell(keras.layers.Layer):
    """The LSTM cell of A 7.4 with the notes' fused weight, gates in order f, i, o, g.

        [f, i, o, g] = [x_t, h_{t-1}] W + b          W: (input_dim + units, 4 units)
        f, i, o = sigmoid(.), g = tanh(.)
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)        (variant="standard", equations (2)-(8))
        h_t = o * c_t              (variant="nico": Nico Jimenez's blog variant, eq. (9))

    `W` is the transpose of the notes' `4 N_h x (N_x + N_h)` matrix (row vectors here). Keras'
    `LSTMCell` keeps a `kernel (input_dim, 4 units)` and a `recurrent_kernel (units, 4 units)` with
    the gates in order i, f, c (= g), o: `from_keras_lstm` stacks and permutes them into `W`.

    State: `[h, c]`, as Keras' LSTM (h first). Output: `h_t`.

    Args:
        units: size of h and c.
        variant: "standard" or "nico".
        use_bias: add `b`.

    Example:

    >>> lstm = keras.layers.RNN(ScratchLSTMCell(4), return_state=True)
    >>> output, h, c = lstm(np.zeros((2, 5, 3), "float32"))
    """

    GATES = ("f", "i", "o", "g")

    def __init__(self, units, variant="standard", use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if variant not in ("standard", "nico"):
            raise ValueError(f"ScratchLSTMCell variant must be 'standard' or 'nico', got {variant!r}")
        self.units = int(units)
        self.variant = variant
        self.use_bias = bool(use_bias)
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        input_dim = _check_input(self, input_shape)
        self.kernel = self.add_weight(
            (input_dim + self.units, 4 * self.units), "glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight((4 * self.units,), "zeros", name="bias") if self.use_bias else None

    def call(self, inputs, states, training=None):
        h_previous, c_previous = states
        z = ops.matmul(ops.concatenate([inputs, h_previous], axis=-1), self.kernel)
        if self.bias is not None:
            z = z + self.bias
        f, i, o, g = ops.split(z, 4, axis=-1)
        f, i, o, g = ops.sigmoid(f), ops.sigmoid(i), ops.sigmoid(o), ops.tanh(g)
        c = f * c_previous + i * g
        h = o * (ops.tanh(c) if self.variant == "standard" else c)
        return h, [h, c]

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "variant": self.variant,
            "use_bias": self.use_bias,
        }


@keras.saving.register_keras_serializable(package="layers")
class ScratchGRUCell(keras.layers.Layer):
    """The GRU cell of D 7.4, in the notes' convention.

        z = sigmoid([x_t, h_{t-1}] W_z + b_z)                  (update gate)
        r = sigmoid([x_t, h_{t-1}] W_r + b_r)                  (reset gate)
        h~ = tanh([x_t, r * h_{t-1}] W_h + b_h)               (reset applied before the product)
        h_t = (1 - z) * h_{t-1} + z * h~

    Weights: `kernel (input_dim + units, 3 units)` with column blocks z, r, h, and `bias (3 units,)`
    in the same order. State: `[h]`; output: `h_t (batch, units)`. Keras' GRU with
    `reset_after=False` applies the reset the same way but writes `h_t = z h_{t-1} + (1 - z) h~`:
    its z is the notes' 1 - z, so `from_keras_gru` negates the z-gate weights and bias
    (sigmoid(-a) = 1 - sigmoid(a)).

    Args:
        units: size of h.
        use_bias: add the biases.

    Example:

    >>> gru = keras.layers.RNN(ScratchGRUCell(4), return_sequences=True)
    >>> gru(np.zeros((2, 5, 3), "float32")).shape
    (2, 5, 4)
    """

    def __init__(self, units, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.use_bias = bool(use_bias)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape):
        input_dim = _check_input(self, input_shape)
        self.kernel = self.add_weight(
            (input_dim + self.units, 3 * self.units), "glorot_uniform", name="kernel"
        )
        self.bias = self.add_weight((3 * self.units,), "zeros", name="bias") if self.use_bias else None

    def call(self, inputs, states, training=None):
        previous = states[0] if isinstance(states, (list, tuple)) else states
        units = self.units
        input_dim = self.kernel.shape[0] - units
        w_x, w_h = self.kernel[:input_dim], self.kernel[input_dim:]
        x_part = ops.matmul(inputs, w_x)
        if self.bias is not None:
            x_part = x_part + self.bias
        gates = ops.sigmoid(x_part[:, : 2 * units] + ops.matmul(previous, w_h[:, : 2 * units]))
        z, r = gates[:, :units], gates[:, units:]
        candidate = ops.tanh(x_part[:, 2 * units :] + ops.matmul(r * previous, w_h[:, 2 * units :]))
        h = (1 - z) * previous + z * candidate
        return h, [h]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "use_bias": self.use_bias}


def _blocks(matrix, count):
    return ops.split(ops.convert_to_tensor(matrix), count, axis=-1)


def from_keras_lstm(kernel, recurrent_kernel, bias=None):
    """Keras LSTM weights (gates i, f, c, o) -> ScratchLSTMCell's [W, b] (gates f, i, o, g)."""
    order = (1, 0, 3, 2)
    stacked = ops.concatenate([kernel, recurrent_kernel], axis=0)
    blocks = _blocks(stacked, 4)
    weights = [ops.concatenate([blocks[k] for k in order], axis=-1)]
    if bias is not None:
        bias_blocks = _blocks(bias, 4)
        weights.append(ops.concatenate([bias_blocks[k] for k in order], axis=-1))
    return [ops.convert_to_numpy(w) for w in weights]


def from_keras_gru(kernel, recurrent_kernel, bias=None):
    """Keras GRU(reset_after=False) weights (gates z, r, h) -> ScratchGRUCell's [W, b].

    The z gate is negated: Keras' z is the notes' 1 - z.
    """
    stacked = ops.concatenate([kernel, recurrent_kernel], axis=0)
    z, r, h = _blocks(stacked, 3)
    weights = [ops.concatenate([-z, r, h], axis=-1)]
    if bias is not None:
        if len(ops.shape(bias)) != 1:
            raise ValueError(
                "from_keras_gru expects a GRU with reset_after=False (a bias of shape (3 units,))"
            )
        bz, br, bh = _blocks(bias, 3)
        weights.append(ops.concatenate([-bz, br, bh], axis=-1))
    return [ops.convert_to_numpy(w) for w in weights]
