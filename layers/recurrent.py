"""Recurrent cells written from the notes' equations (A 7.4, D 7.2-7.4).

Keras has `SimpleRNNCell`, `LSTMCell` and `GRUCell`; these exist because the notes derive the cells
by hand, in their own weight layout and conventions. Each is a Keras RNN cell (`state_size`,
`call(inputs, states)`), so it runs inside `keras.layers.RNN`, and each equals the Keras cell given
the same weights (the tests prove it): `VanillaRNNCell` takes `SimpleRNNCell`'s weights as they are,
the LSTM and GRU cells take Keras' weights mapped by `from_keras_lstm` and `from_keras_gru`.

Row-vector convention throughout (inputs `(batch, features)`), inputs first: `[x_t, h_{t-1}]` is
the concatenation of the input and the previous hidden state along the feature axis.

`right_padded_rnn` calls a Keras `GRU` or `LSTM` on right-padded sequences as
`layer(inputs, mask=mask)` would, with the recurrence itself unmasked, so that a backend's fused
kernel stays in play (Keras' torch GRU/LSTM drop to a per-step loop of cell calls under any mask).
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


# -- masked recurrence without the mask in the loop --------------------------------------------------


def is_right_padded(mask):
    """A boolean scalar tensor: is every row of the (batch, time) mask True up to its length, then
    False (a prefix mask, the form `right_padded_rnn` requires)?"""
    mask = ops.cast(mask, "int32")
    lengths = ops.sum(mask, axis=1, keepdims=True)
    prefix = ops.arange(ops.shape(mask)[1], dtype="int32")[None, :] < lengths
    return ops.all(ops.equal(mask, ops.cast(prefix, "int32")))


def right_padded_eligible(layer):
    """Whether `right_padded_rnn` reproduces `layer(inputs, mask=mask)` for this layer: a Keras GRU,
    or an LSTM returning no state (its cell state at each length is not among the outputs); not
    stateful, unrolled or with dropout (their masks would not be drawn alike). (Keras' JAX SimpleRNN
    differs from its other backends backwards from an initial state: left out.)"""
    kind = type(layer).__name__
    if kind not in ("GRU", "LSTM") or layer.stateful or layer.unroll:
        return False
    if kind == "LSTM" and layer.return_state:
        return False  # the cell state c at each length is not among the outputs
    if layer.zero_output_for_mask and not layer.return_sequences:
        return False  # Keras' last output would be a zero row: keep its own path
    return not (getattr(layer, "dropout", 0) or getattr(layer, "recurrent_dropout", 0))


def right_padded_rnn(layer, inputs, mask, initial_state=None, training=None, run=None):
    """`layer(inputs, mask=mask, initial_state=..., training=...)` for a right-padded `mask`, with
    the layer run unmasked (a backend may then use its fused kernel) and the mask applied outside.

    Keras' masked semantics, reproduced: a masked step keeps the state and repeats the previous
    output (before the first real step: zeros, on JAX the initial state; zeros at every masked step
    with `zero_output_for_mask`); the final state is the one after each sequence's last real token (the
    initial state for an empty one). Forward: outputs `t < length` are the unmasked run's, later ones
    the output at `length - 1`. `go_backwards`: the layer reads each sequence reversed within its
    length (a gather), so it starts at the last real token; its outputs, in Keras' processing
    order, are zeros for the `time - length` leading masked steps, then the run's first `length`.

    Requires a prefix mask (`is_right_padded`; a mask with holes gives other numbers) and
    `right_padded_eligible(layer)`; the caller checks both and otherwise calls the layer with its mask.

    Args:
        layer: a built or unbuilt `keras.layers.GRU` or `LSTM`.
        inputs: (batch, time, features).
        mask: (batch, time) booleans, True up to each sequence's length.
        initial_state: as for the layer.
        training: as for the layer.
        run: `run(layer, inputs, initial_state=, training=, lengths=) -> [outputs (batch, time,
            units) in the layer's processing order, *final states]`, the layer's unmasked
            recurrence; None: the layer itself (`recipes.engine.rnn.unmasked_sequences` is the fused
            one on torch). Only each row's first `lengths` (batch,) outputs are used (the inputs
            hold that row's real tokens first), so a run may skip the rest.

    Returns:
        What the layer returns: outputs (batch, time, units) or the last output (batch, units),
        followed by the final states when `return_state`.
    """
    steps = inputs.shape[1]
    if steps is None:
        steps = ops.shape(inputs)[1]
    mask = ops.cast(mask, "bool")
    lengths = ops.sum(ops.cast(mask, "int32"), axis=1, keepdims=True)  # (B, 1)
    time = ops.arange(steps, dtype="int32")[None, :]  # (1, T)
    if layer.go_backwards:
        # The layer reads position T-1 first: shift each sequence to the end of the window, so that
        # it reads x[length-1], ..., x[0] first (positions before the shift are read last, unused).
        lead = steps - lengths  # (B, 1) masked steps Keras runs before the real ones
        shifted = ops.where(time >= lead, time - lead, time)  # (B, T)
        sequences = _take_steps(inputs, shifted)
        picks, kept = shifted, time >= lead
    else:
        sequences = ops.where(ops.expand_dims(mask, -1), inputs, ops.zeros_like(inputs))
        kept = time < lengths
        picks = ops.where(kept, time, ops.maximum(lengths - 1, 0))
    # Each row's outputs from its length on (processing order) are not used below.
    result = (run or run_unmasked)(
        layer,
        sequences,
        initial_state=initial_state,
        training=training,
        lengths=ops.reshape(lengths, (-1,)),
    )
    states = list(result[1:])
    gathered = _take_steps(result[0], picks)
    # The state after each sequence's last real token: the last output read backwards, or the
    # output at length - 1 carried to T - 1 forwards (a GRU's state is its output).
    final = gathered[:, -1]
    if initial_state is None:
        start = ops.zeros_like(final)
    else:
        start = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
        start = ops.cast(start, final.dtype)
    # A masked step before any real one outputs zeros (Keras' JAX backend: the initial state).
    fill = start if keras.backend.backend() == "jax" else ops.zeros_like(start)
    if layer.zero_output_for_mask:
        outputs = ops.where(ops.expand_dims(kept, -1), gathered, ops.zeros_like(gathered))
    elif layer.go_backwards:
        outputs = ops.where(ops.expand_dims(kept, -1), gathered, ops.expand_dims(fill, 1))
    else:
        outputs = ops.where(ops.expand_dims(lengths > 0, -1), gathered, ops.expand_dims(fill, 1))
    last = outputs[:, -1]
    if layer.return_state:
        states = [ops.where(lengths > 0, final, start)]  # an empty sequence keeps its initial state
    head = outputs if layer.return_sequences else last
    return [head, *states] if layer.return_state else head


def run_unmasked(layer, inputs, initial_state=None, training=None, lengths=None):
    """[outputs (batch, time, units), *final states] of a Keras RNN layer run unmasked, whatever
    its `return_sequences` and `return_state` (`lengths`, a `right_padded_rnn` hint, unused)."""
    saved = layer.return_sequences, layer.return_state
    layer.return_sequences = layer.return_state = True
    try:
        return list(layer(inputs, initial_state=initial_state, training=training))
    finally:
        layer.return_sequences, layer.return_state = saved


def _take_steps(sequences, steps):
    """sequences (B, T, F), steps (B, T) ints -> (B, T, F): row b's time steps[b, t] at t.

    One gather of whole rows of the flattened (B * T, F) sequences: on torch's CPU eight times
    faster, forward and backward, than `take_along_axis` with indices broadcast over F."""
    shape = ops.shape(sequences)
    rows = ops.arange(shape[0], dtype="int32")[:, None] * shape[1] + ops.cast(steps, "int32")
    flat = ops.reshape(sequences, (-1, shape[-1]))
    return ops.reshape(ops.take(flat, ops.reshape(rows, (-1,)), axis=0), shape)


def masked_rnn(layer, inputs, mask, initial_state=None, training=None, fused=True, run=None):
    """`layer(inputs, mask=mask, ...)`, through `right_padded_rnn` when `fused`, the layer is
    eligible and the mask's values are at hand (eager) and right-padded; else the layer's own path.
    `run`: as for `right_padded_rnn`.

    The check reads the mask on the host (one small transfer), so callers pass `fused` only where
    the step runs eagerly and the fused kernel pays (Keras' torch backend); inside a traced graph
    (jax.jit, tf.function, symbolic tensors) the values are unknown and the layer keeps its mask.
    """
    if fused and right_padded_eligible(layer) and known_right_padded(mask):
        return right_padded_rnn(
            layer, inputs, mask, initial_state=initial_state, training=training, run=run
        )
    return layer(inputs, mask=mask, initial_state=initial_state, training=training)


def known_right_padded(mask):
    """Whether `mask`'s values are at hand (eager) and right-padded (`is_right_padded`)."""
    try:
        return bool(ops.convert_to_numpy(is_right_padded(mask)))
    except Exception:  # a traced or symbolic mask: no values to check
        return False
