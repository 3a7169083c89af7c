"""Transformer pieces of "Attention is all you need" (Vaswani et al. 2017): sinusoidal positional
encoding and post-norm encoder and decoder blocks built on `layers.attention.MultiHeadAttention`
(called with Keras's convention: `attention(query=..., value=..., value_mask=...)`)."""

import keras
from keras import ops

from layers._direct import direct
from layers.attention import MultiHeadAttention


def _shape(x):
    return tuple(x.shape if hasattr(x, "shape") else x)


def _check_sequence(layer, argument, shape, width=None):
    """(batch, T, d_model) with a known last axis (equal to `width` when given)."""
    shape = _shape(shape)
    if len(shape) != 3 or shape[-1] is None or (width is not None and shape[-1] != width):
        expected = "(batch, T, d_model)" if width is None else f"(batch, T, {width})"
        raise ValueError(
            f"{type(layer).__name__}: `{argument}` must have shape {expected}; received shape {shape}."
        )
    return shape


@keras.saving.register_keras_serializable(package="layers")
class PositionalEncoding(keras.layers.Layer):
    """Adds the sinusoidal positional encoding to a sequence of embeddings.

        PE[pos, 2i]     = sin(pos / 10000^(2i / d_model))
        PE[pos, 2i + 1] = cos(pos / 10000^(2i / d_model))
        output          = inputs + PE[:T]

    Computed in float32 for any length (no table, no weights), then cast to the compute dtype.
    A Keras mask on the inputs passes through unchanged.

    Args:
        max_wavelength: the 10000 of the formula.

    Input `(batch, T, d_model)`; output the same shape.

    Example:

    >>> x = keras.layers.Embedding(100, 16)(np.array([[5, 7, 9]]))
    >>> PositionalEncoding()(x).shape
    (1, 3, 16)
    """

    def __init__(self, max_wavelength=10000.0, **kwargs):
        super().__init__(**kwargs)
        self.max_wavelength = float(max_wavelength)
        self.supports_masking = True

    def build(self, input_shape):
        _check_sequence(self, "inputs", input_shape)

    def encoding(self, length, depth):
        """The (length, depth) table PE, float32."""
        position = ops.expand_dims(ops.cast(ops.arange(length), "float32"), 1)  # (T, 1)
        index = ops.arange(depth)
        exponent = ops.cast(2 * (index // 2), "float32") / float(depth)  # 2i / d for columns 2i, 2i+1
        angle = position / ops.power(self.max_wavelength, exponent)  # (T, d)
        return ops.where(ops.equal(index % 2, 0), ops.sin(angle), ops.cos(angle))

    def call(self, inputs):
        shape = _check_sequence(self, "inputs", inputs.shape)
        table = self.encoding(ops.shape(inputs)[1], shape[-1])
        return inputs + ops.cast(table, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return _check_sequence(self, "inputs", input_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"max_wavelength": self.max_wavelength})
        return config


class _Block(keras.layers.Layer):
    """Shared parts of the encoder and decoder blocks: arguments, dropout and the feed-forward net."""

    def __init__(
        self,
        num_heads,
        ff_dim,
        key_dim=None,
        dropout=0.0,
        activation="relu",
        epsilon=1e-6,
        kernel_initializer="glorot_uniform",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        name = type(self).__name__
        for arg, value in (("num_heads", num_heads), ("ff_dim", ff_dim), ("key_dim", key_dim)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}: `{arg}` must be a positive int; received {value!r}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"{name}: `dropout` must be in [0, 1); received {dropout}.")
        self.num_heads = num_heads
        self.ff_dim = ff_dim
        self.key_dim = key_dim
        self.dropout = dropout
        self.activation = keras.activations.get(activation)
        self.epsilon = epsilon
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if dropout > 0 else None
        self.supports_masking = True

    def _heads(self, d_model):
        if self.key_dim is not None:
            return self.key_dim
        if d_model % self.num_heads:
            raise ValueError(
                f"{type(self).__name__}: d_model ({d_model}) must be divisible by num_heads "
                f"({self.num_heads}) when key_dim is not given; input shape (batch, T, d_model)."
            )
        return d_model // self.num_heads

    def _attention(self, name, d_model, seed_offset):
        # Distinct seeds, so that the attention dropouts and the residual dropout differ.
        return MultiHeadAttention(
            self.num_heads,
            self._heads(d_model),
            dropout=self.dropout,
            kernel_initializer=self.kernel_initializer,
            seed=None if self.seed is None else self.seed + seed_offset,
            name=name,
            dtype=self.dtype_policy,
        )

    def _norm(self, name):
        # Keras' LayerNormalization computes in float32 and casts back to the compute dtype.
        return keras.layers.LayerNormalization(epsilon=self.epsilon, name=name, dtype=self.dtype_policy)

    def _build_feed_forward(self, shape):
        init, dtype = self.kernel_initializer, self.dtype_policy
        self.ff_hidden = keras.layers.Dense(
            self.ff_dim, self.activation, kernel_initializer=init, name="ff_hidden", dtype=dtype
        )
        self.ff_output = keras.layers.Dense(
            shape[-1], kernel_initializer=init, name="ff_output", dtype=dtype
        )
        self.ff_hidden.build(shape)
        self.ff_output.build((*shape[:-1], self.ff_dim))

    def _dropout(self, x, training):
        if training and self.dropout > 0:
            return keras.random.dropout(x, self.dropout, seed=self.seed_generator)
        return x

    def _norm_sum(self, norm, x, residual, training):
        """LayerNorm(x + Dropout(residual))."""
        x = x + self._dropout(residual, training)
        return direct(norm, x)(x)

    def _feed_forward(self, x, norm, training):
        hidden = direct(self.ff_hidden, x)(x)
        return self._norm_sum(norm, x, direct(self.ff_output, hidden)(hidden), training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "ff_dim": self.ff_dim,
                "key_dim": self.key_dim,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "epsilon": self.epsilon,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "seed": self.seed,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="layers")
class TransformerEncoderBlock(_Block):
    """Post-norm Transformer encoder block (Vaswani et al. 2017, figure 1, left), MHA the
    `MultiHeadAttention` of `layers.attention`:

        h   = LayerNorm(x + Dropout(MHA(query=x, value=x), with the padding mask))
        out = LayerNorm(h + Dropout(W_2 act(W_1 h + b_1) + b_2))

    Args:
        num_heads: number of attention heads.
        ff_dim: width of the feed-forward hidden layer.
        key_dim: size of each head; defaults to d_model // num_heads.
        dropout: rate of the residual dropouts and of the attention weights (own SeedGenerators).
        activation: of the feed-forward hidden layer.
        epsilon: of the layer normalisations.
        kernel_initializer: of the attention and feed-forward kernels.
        seed: of the dropout SeedGenerators.

    Call arguments:
        inputs: `(batch, T, d_model)`.
        mask: optional boolean padding mask `(batch, T)`, True for real tokens (filled by Keras
            from an `Embedding(mask_zero=True)`); padded tokens are never attended to.
        training: whether dropout is active.

    Returns `(batch, T, d_model)`.

    Example:

    >>> block = TransformerEncoderBlock(num_heads=2, ff_dim=32)
    >>> block(np.random.rand(4, 10, 16)).shape
    (4, 10, 16)
    """

    def build(self, input_shape):
        shape = _check_sequence(self, "inputs", input_shape)
        self.self_attention = self._attention("self_attention", shape[-1], 1)
        self.self_attention.build(query_shape=shape, value_shape=shape)
        self.attention_norm = self._norm("attention_norm")
        self.attention_norm.build(shape)
        self._build_feed_forward(shape)
        self.output_norm = self._norm("output_norm")
        self.output_norm.build(shape)

    def call(self, inputs, mask=None, training=None):
        _check_sequence(self, "inputs", inputs.shape, self.attention_norm.gamma.shape[0])
        # Sub-layers called directly on torch (layers._direct) when that changes nothing.
        attended = direct(self.self_attention, inputs)(
            query=inputs, value=inputs, value_mask=mask, training=training
        )
        hidden = self._norm_sum(self.attention_norm, inputs, attended, training)
        return self._feed_forward(hidden, self.output_norm, training)

    def compute_output_shape(self, input_shape):
        return _check_sequence(self, "inputs", input_shape)


@keras.saving.register_keras_serializable(package="layers")
class TransformerDecoderBlock(_Block):
    """Post-norm Transformer decoder block (Vaswani et al. 2017, figure 1, right):

        h1  = LayerNorm(y + Dropout(MHA(query=y, value=y), with the causal and padding masks))
        h2  = LayerNorm(h1 + Dropout(MHA(query=h1, value=z), with the source padding mask))
        out = LayerNorm(h2 + Dropout(W_2 act(W_1 h2 + b_1) + b_2))

    with `y` the (shifted) target embeddings, `z` the encoder outputs and MHA the
    `MultiHeadAttention` of `layers.attention`. Arguments as `TransformerEncoderBlock`.

    Call arguments:
        inputs: `(batch, T, d_model)`.
        encoder_outputs: `(batch, S, d_enc)`.
        inputs_mask: optional boolean `(batch, T)` padding mask of the targets.
        encoder_outputs_mask: optional boolean `(batch, S)` padding mask of the source.
            Both are filled by Keras from the inputs' own masks.
        use_causal_mask: True (default): position t attends only to targets <= t.
        return_attention_scores: if True, also return the encoder-decoder attention weights
            `(batch, num_heads, T, S)` (what an alignment heatmap shows).
        training: whether dropout is active.

    Returns `(batch, T, d_model)`, or `(outputs, weights)`.

    Example:

    >>> block = TransformerDecoderBlock(num_heads=2, ff_dim=32)
    >>> block(np.random.rand(4, 7, 16), np.random.rand(4, 10, 16)).shape
    (4, 7, 16)
    """

    def _check_memory(self, inputs_shape, encoder_outputs_shape, width=None):
        """encoder_outputs: (batch, S, d_enc), with the batch of `inputs` (and d_enc once built)."""
        batch = _shape(inputs_shape)[0]
        memory = _check_sequence(self, "encoder_outputs", encoder_outputs_shape, width)
        if None not in (batch, memory[0]) and batch != memory[0]:
            raise ValueError(
                f"TransformerDecoderBlock: `encoder_outputs` must have shape ({batch}, S, d_enc) "
                f"like `inputs` (batch, T, d_model); received shape {memory}."
            )
        return memory

    def build(self, inputs_shape, encoder_outputs_shape):
        shape = _check_sequence(self, "inputs", inputs_shape)
        memory = self._check_memory(shape, encoder_outputs_shape)
        self.self_attention = self._attention("self_attention", shape[-1], 1)
        self.self_attention.build(query_shape=shape, value_shape=shape)
        self.self_attention_norm = self._norm("self_attention_norm")
        self.self_attention_norm.build(shape)
        self.cross_attention = self._attention("cross_attention", shape[-1], 2)
        self.cross_attention.build(query_shape=shape, value_shape=memory)
        self.cross_attention_norm = self._norm("cross_attention_norm")
        self.cross_attention_norm.build(shape)
        self._build_feed_forward(shape)
        self.output_norm = self._norm("output_norm")
        self.output_norm.build(shape)

    def call(
        self,
        inputs,
        encoder_outputs,
        inputs_mask=None,
        encoder_outputs_mask=None,
        use_causal_mask=True,
        return_attention_scores=False,
        training=None,
    ):
        d_model = self.output_norm.gamma.shape[0]
        _check_sequence(self, "inputs", inputs.shape, d_model)
        self._check_memory(inputs.shape, encoder_outputs.shape, self.cross_attention.key_kernel.shape[0])
        # Sub-layers called directly on torch (layers._direct) when that changes nothing.
        attended = direct(self.self_attention, inputs)(
            query=inputs,
            value=inputs,
            value_mask=inputs_mask,
            training=training,
            use_causal_mask=use_causal_mask,
        )
        hidden = self._norm_sum(self.self_attention_norm, inputs, attended, training)
        attended, weights = direct(self.cross_attention, hidden, encoder_outputs)(
            query=hidden,
            value=encoder_outputs,
            value_mask=encoder_outputs_mask,
            return_attention_scores=True,
            training=training,
        )
        hidden = self._norm_sum(self.cross_attention_norm, hidden, attended, training)
        outputs = self._feed_forward(hidden, self.output_norm, training)
        return (outputs, weights) if return_attention_scores else outputs

    def compute_output_shape(self, inputs_shape, encoder_outputs_shape):
        _check_sequence(self, "encoder_outputs", encoder_outputs_shape)
        return _check_sequence(self, "inputs", inputs_shape)
