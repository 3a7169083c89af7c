"""Attention layers: Bahdanau (additive), Luong (dot/general/concat), scaled dot-product and
multi-head attention, written with `keras.ops` only.

Conventions shared by every layer here:

- a mask is boolean, `True` where a position may be attended to;
- masked keys get exactly zero weight (their scores are replaced by -1e9 before the softmax and the
  weights are zeroed after it); a query whose keys are all masked gets all-zero weights and a zero
  context, as `keras.layers.Softmax` does;
- bad input shapes raise `ValueError` naming the layer and the expected shape.
"""

import math

import keras
from keras import ops


def _large_negative(dtype):
    """The score given to masked positions (what keras.layers.Softmax uses)."""
    return -3e4 if keras.backend.standardize_dtype(dtype) == "float16" else -1e9


def _masked_softmax(scores, mask):
    """Softmax over the last axis; positions where `mask` is False get exactly zero weight."""
    if mask is None:
        return ops.softmax(scores, axis=-1)
    mask = ops.cast(mask, "bool")
    scores = ops.where(mask, scores, _large_negative(scores.dtype))
    weights = ops.softmax(scores, axis=-1)
    return ops.where(mask, weights, ops.zeros_like(weights))


def _expand_to_rank(mask, rank):
    """Inserts axes after the batch axis until `mask` has `rank` axes: (B, Tk) -> (B, 1, ..., Tk)."""
    while len(mask.shape) < rank:
        mask = ops.expand_dims(mask, 1)
    return mask


def _causal_mask(query_length, key_length):
    """(Tq, Tk) boolean, True where key position <= query position (works on dynamic lengths)."""
    ones = ops.ones((query_length, key_length), dtype="int32")
    return ops.greater_equal(ops.cumsum(ones, axis=0), ops.cumsum(ones, axis=1))


def _shape(x):
    return None if x is None else tuple(x.shape if hasattr(x, "shape") else x)


def _fail(layer, argument, expected, shape):
    raise ValueError(
        f"{type(layer).__name__}: `{argument}` must have shape {expected}; received shape {shape}."
    )


def _check_rank(layer, argument, shape, ranks, expected):
    if shape is not None and len(shape) not in ranks:
        _fail(layer, argument, expected, shape)


def _check_equal(layer, what, a, b, detail):
    if a is not None and b is not None and a != b:
        raise ValueError(f"{type(layer).__name__}: {what} must match ({detail}); received {a} and {b}.")


class _QueryKeysAttention(keras.layers.Layer):
    """Shared plumbing of the RNN-style attentions: call(query, keys, values=None, mask=None).

    Subclasses implement `_build_scores(query_dim, key_dim)`, `project_keys(keys)` (the part of the
    score that depends on the keys only) and `_scores(query, projected_keys)`, which maps query
    (B, Tq, Dq) and projected keys (B, Tk, ...) to scores (B, Tq, Tk). A decoder that attends to the
    same keys at every step can project them once and pass `projected_keys=` to each call.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def _validate(self, query_shape, keys_shape, values_shape=None):
        query_shape, keys_shape, values_shape = map(_shape, (query_shape, keys_shape, values_shape))
        _check_rank(self, "query", query_shape, (2, 3), "(batch, query_dim) or (batch, Tq, query_dim)")
        _check_rank(self, "keys", keys_shape, (3,), "(batch, Tk, key_dim)")
        _check_rank(self, "values", values_shape, (3,), "(batch, Tk, value_dim)")
        _check_equal(
            self,
            "batch sizes",
            query_shape[0],
            keys_shape[0],
            "query (batch, ...) and keys (batch, Tk, key_dim)",
        )
        if values_shape is not None:
            _check_equal(
                self,
                "lengths",
                keys_shape[1],
                values_shape[1],
                "keys (batch, Tk, key_dim), values (batch, Tk, value_dim)",
            )
            _check_equal(
                self,
                "batch sizes",
                keys_shape[0],
                values_shape[0],
                "keys (batch, Tk, key_dim), values (batch, Tk, value_dim)",
            )
        return query_shape, keys_shape, values_shape

    def build(self, query_shape, keys_shape, values_shape=None):
        query_shape, keys_shape, _ = self._validate(query_shape, keys_shape, values_shape)
        if query_shape[-1] is None or keys_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__}: the last axes of `query` and `keys` must be known; "
                f"received shapes {query_shape} and {keys_shape}."
            )
        self._build_scores(query_shape[-1], keys_shape[-1])

    def project_keys(self, keys):
        """The keys' share of the scores, (B, Tk, ...): computed once, reusable for every query."""
        return keys

    def call(self, query, keys, values=None, mask=None, keys_mask=None, projected_keys=None):
        self._validate(query.shape, keys.shape, None if values is None else values.shape)
        values = keys if values is None else values
        single_query = len(query.shape) == 2
        if single_query:
            query = ops.expand_dims(query, 1)
        if projected_keys is None:
            projected_keys = self.project_keys(keys)
        scores = self._scores(query, projected_keys)  # (B, Tq, Tk)
        mask = keys_mask if mask is None else mask
        if mask is not None:
            if len(mask.shape) != 2:
                _fail(self, "mask", "(batch, Tk)", _shape(mask))
            mask = ops.expand_dims(ops.cast(mask, "bool"), 1)  # (B, 1, Tk)
        weights = _masked_softmax(scores, mask)
        context = ops.matmul(weights, ops.cast(values, weights.dtype))
        if single_query:
            context, weights = ops.squeeze(context, 1), ops.squeeze(weights, 1)
        return context, weights

    def compute_output_shape(self, query_shape, keys_shape, values_shape=None):
        query_shape, keys_shape, values_shape = self._validate(query_shape, keys_shape, values_shape)
        values_shape = keys_shape if values_shape is None else values_shape
        context = (*query_shape[:-1], values_shape[-1])
        weights = (*query_shape[:-1], keys_shape[1])
        return context, weights

    def compute_mask(self, inputs, previous_mask):
        # The keys' mask is consumed here; the outputs are indexed by query, not by key.
        return None


@keras.saving.register_keras_serializable(package="layers")
class BahdanauAttention(_QueryKeysAttention):
    """Additive attention of Bahdanau, Cho and Bengio (2014), section 7.8 of the notes.

    For a query `s` (the decoder state) and keys `h_j` (the encoder annotations):

        e_j     = v_a^T tanh(s W_q + h_j U_a + b_a)
        alpha   = softmax(e)              (masked keys get exactly zero weight)
        context = sum_j alpha_j values_j  (values default to the keys)

    Parameters, named as in the notes' table (`N_a = units`, `2 N_h` the key size):
    `query_kernel` W_q `(query_dim, units)`, `key_kernel` U_a `(key_dim, units)`,
    `bias` b_a `(units,)`, `score_vector` v_a `(units,)`.

    Args:
        units: N_a, the size of the alignment layer.
        kernel_initializer, bias_initializer: for W_q, U_a, v_a and for b_a.

    Call arguments:
        query: `(batch, query_dim)` or `(batch, Tq, query_dim)`.
        keys: `(batch, Tk, key_dim)`.
        values: optional `(batch, Tk, value_dim)`; defaults to `keys`.
        mask: optional boolean `(batch, Tk)`, True for real (unpadded) keys.
        keys_mask: filled by Keras from the keys' own mask (e.g. `Embedding(mask_zero=True)`);
            `mask` wins when both are given.
        projected_keys: optional `project_keys(keys)` = h_j U_a + b_a `(batch, Tk, units)`,
            computed once by a decoder that attends to the same keys at every step.

    Returns:
        `(context, attention_weights)`: `(batch, [Tq,] value_dim)` and `(batch, [Tq,] Tk)`.

    Example:

    >>> attention = BahdanauAttention(units=16)
    >>> context, weights = attention(np.zeros((2, 32)), np.ones((2, 7, 64)))
    >>> context.shape, weights.shape
    ((2, 64), (2, 7))
    """

    def __init__(self, units, kernel_initializer="glorot_uniform", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"BahdanauAttention: `units` must be a positive int; received {units!r}.")
        self.units = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)

    def _build_scores(self, query_dim, key_dim):
        init = self.kernel_initializer
        self.query_kernel = self.add_weight((query_dim, self.units), init, name="query_kernel")
        self.key_kernel = self.add_weight((key_dim, self.units), init, name="key_kernel")
        self.bias = self.add_weight((self.units,), self.bias_initializer, name="bias")
        self.score_vector = self.add_weight((self.units,), init, name="score_vector")

    def project_keys(self, keys):
        return ops.matmul(keys, self.key_kernel) + self.bias  # h_j U_a + b_a: (B, Tk, units)

    def _scores(self, query, projected_keys):
        projected_query = ops.matmul(query, self.query_kernel)  # (B, Tq, units)
        hidden = ops.tanh(ops.expand_dims(projected_query, 2) + ops.expand_dims(projected_keys, 1))
        return ops.einsum("bqku,u->bqk", hidden, self.score_vector)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="layers")
class LuongAttention(_QueryKeysAttention):
    """Multiplicative attention of Luong, Pham and Manning (2015), section 7.8 of the notes.

    Three scores of a query `s` against a key `h_j`:

        dot:      score = s^T h_j                   (needs query_dim == key_dim)
        general:  score = s^T W_a h_j               `kernel` `(key_dim, query_dim)` (= W_a^T)
        concat:   score = v_a^T tanh(W_a [s; h_j])  `concat_kernel` W_a `(query_dim + key_dim, units)`,
                                                    `score_vector` v_a `(units,)`

    then `alpha = softmax(score)` over the keys (masked keys get exactly zero weight) and
    `context = sum_j alpha_j values_j`. `"dot"` equals `keras.layers.Attention()`; `"general"` is a
    bias-free Dense on the keys followed by `"dot"` (so W_a = I gives `"dot"`); `"concat"` is
    Bahdanau's additive score without the bias b_a.

    Args:
        score: `"dot"`, `"general"` or `"concat"`.
        units: size of the hidden layer of `"concat"` (required there, unused otherwise).
        kernel_initializer: for W_a and v_a.

    Call arguments and returns: as `BahdanauAttention` (`projected_keys` = `project_keys(keys)`:
    the keys, W_a h_j, or the keys' half of the concat layer): `(context, attention_weights)` of
    shapes `(batch, [Tq,] value_dim)` and `(batch, [Tq,] Tk)`.

    Example:

    >>> attention = LuongAttention("general")
    >>> context, weights = attention(np.zeros((2, 5, 8)), np.ones((2, 7, 12)))
    >>> context.shape, weights.shape
    ((2, 5, 12), (2, 5, 7))
    """

    SCORES = ("dot", "general", "concat")

    def __init__(self, score="dot", units=None, kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        if score not in self.SCORES:
            raise ValueError(
                f"LuongAttention: `score` must be one of {self.SCORES}; received {score!r}."
            )
        if score == "concat" and (not isinstance(units, int) or units < 1):
            raise ValueError(
                f"LuongAttention: score='concat' needs a positive int `units`; received {units!r}."
            )
        self.score = score
        self.units = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _validate(self, query_shape, keys_shape, values_shape=None):
        shapes = super()._validate(query_shape, keys_shape, values_shape)
        if self.score == "dot":
            _check_equal(
                self,
                "feature sizes",
                shapes[0][-1],
                shapes[1][-1],
                "score='dot' needs query (batch, [Tq,] d) and keys (batch, Tk, d)",
            )
        return shapes

    def _build_scores(self, query_dim, key_dim):
        init = self.kernel_initializer
        if self.score == "general":
            self.kernel = self.add_weight((key_dim, query_dim), init, name="kernel")
        elif self.score == "concat":
            shape = (query_dim + key_dim, self.units)
            self.concat_kernel = self.add_weight(shape, init, name="concat_kernel")
            self.score_vector = self.add_weight((self.units,), init, name="score_vector")
        self._query_dim = query_dim

    def project_keys(self, keys):
        if self.score == "general":
            return ops.matmul(keys, self.kernel)  # W_a h_j: (B, Tk, query_dim)
        if self.score == "concat":
            # W_a [s; h] = s W_s + h W_h, with W_a split row-wise: here h W_h, (B, Tk, units).
            return ops.matmul(keys, self.concat_kernel[self._query_dim :])
        return keys

    def _scores(self, query, projected_keys):
        if self.score in ("dot", "general"):
            return ops.matmul(query, ops.swapaxes(projected_keys, 1, 2))
        query_part = ops.matmul(query, self.concat_kernel[: self._query_dim])
        hidden = ops.tanh(ops.expand_dims(query_part, 2) + ops.expand_dims(projected_keys, 1))
        return ops.einsum("bqku,u->bqk", hidden, self.score_vector)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "score": self.score,
                "units": self.units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="layers")
class ScaledDotProductAttention(keras.layers.Layer):
    """Scaled dot-product attention (Vaswani et al. 2017), no weights.

        Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V

    where `M` is 0 where attending is allowed and -inf (here -1e9, then the weight is zeroed)
    where a padding mask, an attention mask or the causal mask forbids it. Dropout, when set,
    is applied to the attention weights in training, through the layer's own `SeedGenerator`.

    Args:
        dropout: dropout rate on the attention weights.
        seed: seed of the layer's `keras.random.SeedGenerator`.

    Call arguments:
        query: `(batch, ..., Tq, d_k)`; key: `(batch, ..., Tk, d_k)`; value: `(batch, ..., Tk, d_v)`
            (any number of middle axes, e.g. heads).
        key_mask: optional boolean padding mask `(batch, Tk)`, True for real keys.
        attention_mask: optional boolean mask broadcastable to `(batch, ..., Tq, Tk)`; missing axes
            are inserted after the batch axis.
        use_causal_mask: if True, query `t` attends only to keys `<= t`.
        return_attention_scores: if True, also return the weights `(batch, ..., Tq, Tk)`
            (before dropout).
        training: whether dropout is active.

    Returns:
        `(batch, ..., Tq, d_v)`, or `(output, weights)`.

    Example:

    >>> attention = ScaledDotProductAttention()
    >>> x = np.random.rand(2, 5, 8)
    >>> attention(x, x, x, use_causal_mask=True).shape
    (2, 5, 8)
    """

    def __init__(self, dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= dropout < 1.0:
            raise ValueError(
                f"ScaledDotProductAttention: `dropout` must be in [0, 1); received {dropout}."
            )
        self.dropout = dropout
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if dropout > 0 else None
        self.supports_masking = True

    def _validate(self, query_shape, key_shape, value_shape):
        query_shape, key_shape, value_shape = map(_shape, (query_shape, key_shape, value_shape))
        expected = "(batch, ..., T, d)"
        for name, shape in (("query", query_shape), ("key", key_shape), ("value", value_shape)):
            if len(shape) < 3:
                _fail(self, name, expected, shape)
        if not len(query_shape) == len(key_shape) == len(value_shape):
            raise ValueError(
                f"ScaledDotProductAttention: `query`, `key` and `value` must have the same rank "
                f"{expected}; received shapes {query_shape}, {key_shape} and {value_shape}."
            )
        _check_equal(
            self,
            "feature sizes",
            query_shape[-1],
            key_shape[-1],
            "query (batch, ..., Tq, d_k), key (batch, ..., Tk, d_k)",
        )
        _check_equal(
            self,
            "lengths",
            key_shape[-2],
            value_shape[-2],
            "key (batch, ..., Tk, d_k), value (batch, ..., Tk, d_v)",
        )
        return query_shape, key_shape, value_shape

    def build(self, query_shape, key_shape, value_shape):
        self._validate(query_shape, key_shape, value_shape)

    def call(
        self,
        query,
        key,
        value,
        key_mask=None,
        attention_mask=None,
        use_causal_mask=False,
        return_attention_scores=False,
        training=None,
    ):
        query_shape, _, _ = self._validate(query.shape, key.shape, value.shape)
        rank = len(query_shape)
        query = ops.multiply(query, ops.cast(1.0 / math.sqrt(query_shape[-1]), query.dtype))
        scores = ops.matmul(query, ops.swapaxes(key, -1, -2))  # (B, ..., Tq, Tk)
        mask = None
        if key_mask is not None:
            if len(key_mask.shape) != 2:
                _fail(self, "key_mask", "(batch, Tk)", _shape(key_mask))
            mask = _expand_to_rank(ops.cast(key_mask, "bool"), rank)
        if attention_mask is not None:
            if len(attention_mask.shape) > rank:
                _fail(
                    self,
                    "attention_mask",
                    "broadcastable to (batch, ..., Tq, Tk)",
                    _shape(attention_mask),
                )
            extra = _expand_to_rank(ops.cast(attention_mask, "bool"), rank)
            mask = extra if mask is None else ops.logical_and(mask, extra)
        if use_causal_mask:
            causal = _causal_mask(ops.shape(scores)[-2], ops.shape(scores)[-1])
            mask = causal if mask is None else ops.logical_and(mask, causal)
        weights = _masked_softmax(scores, mask)
        attended = weights
        if training and self.dropout > 0:
            attended = keras.random.dropout(weights, self.dropout, seed=self.seed_generator)
        output = ops.matmul(attended, ops.cast(value, attended.dtype))
        return (output, weights) if return_attention_scores else output

    def compute_output_shape(self, query_shape, key_shape, value_shape):
        query_shape, key_shape, value_shape = self._validate(query_shape, key_shape, value_shape)
        return (*query_shape[:-1], value_shape[-1])

    def compute_output_spec(self, query, key, value, return_attention_scores=False, **kwargs):
        output = keras.KerasTensor(
            self.compute_output_shape(query.shape, key.shape, value.shape), dtype=self.compute_dtype
        )
        if not return_attention_scores:
            return output
        weights_shape = (*query.shape[:-1], key.shape[-2])
        return output, keras.KerasTensor(weights_shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update({"dropout": self.dropout, "seed": self.seed})
        return config


@keras.saving.register_keras_serializable(package="layers")
class MultiHeadAttention(keras.layers.Layer):
    """Multi-head attention written from scratch on `ScaledDotProductAttention`.

        head_h = Attention(query W_q[h] + b_q[h], key W_k[h] + b_k[h], value W_v[h] + b_v[h])
        output = sum_h head_h W_o[h] + b_o            (= Concat(head_1..head_H) W_O + b_o)

    Same weights, in the same order, as `keras.layers.MultiHeadAttention` (rank-3 inputs), so
    `set_weights(keras_mha.get_weights())` gives the same outputs:
    `query_kernel (Dq, H, key_dim)`, `query_bias (H, key_dim)`, `key_kernel (Dk, H, key_dim)`,
    `key_bias (H, key_dim)`, `value_kernel (Dv, H, value_dim)`, `value_bias (H, value_dim)`,
    `output_kernel (H, value_dim, D_out)`, `output_bias (D_out,)` with `D_out = output_shape or Dq`.

    Args:
        num_heads: H.
        key_dim: size of each head for query and key.
        value_dim: size of each head for value; defaults to `key_dim`.
        dropout: dropout rate on the attention weights (the layer's own `SeedGenerator`).
        use_bias: whether the projections have biases.
        output_shape: last axis of the output; defaults to the query's.
        kernel_initializer, bias_initializer: for the kernels and the biases.
        seed: seed of the dropout `SeedGenerator`.

    Call arguments:
        query: `(batch, Tq, Dq)`; value: `(batch, Tv, Dv)`; key: optional `(batch, Tv, Dk)`
            (defaults to `value`).
        query_mask, value_mask, key_mask: optional boolean `(batch, T)` padding masks (filled
            by Keras from the inputs' own masks); a masked query row gets zero weights.
        attention_mask: optional boolean `(batch, Tq, Tv)`, True where attending is allowed.
        use_causal_mask: if True, query `t` attends only to positions `<= t`.
        return_attention_scores: if True, also return the weights `(batch, H, Tq, Tv)`.
        training: whether dropout is active.

    Returns:
        `(batch, Tq, D_out)`, or `(output, weights)`.

    Example:

    >>> mha = MultiHeadAttention(num_heads=2, key_dim=4)
    >>> x = np.random.rand(3, 5, 8)
    >>> mha(x, x, use_causal_mask=True).shape
    (3, 5, 8)
    """

    def __init__(
        self,
        num_heads,
        key_dim,
        value_dim=None,
        dropout=0.0,
        use_bias=True,
        output_shape=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for name, value in (("num_heads", num_heads), ("key_dim", key_dim), ("value_dim", value_dim)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(
                    f"MultiHeadAttention: `{name}` must be a positive int; received {value!r}."
                )
        if isinstance(output_shape, (tuple, list)):
            if len(output_shape) != 1:
                raise ValueError(
                    "MultiHeadAttention: `output_shape` must be an int or a 1-tuple; "
                    f"received {output_shape}."
                )
            output_shape = output_shape[0]
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = value_dim if value_dim is not None else key_dim
        self.dropout = dropout
        self.use_bias = use_bias
        self._output_dim = output_shape
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.seed = seed
        self.attention = ScaledDotProductAttention(dropout=dropout, seed=seed, name="attention")
        self.supports_masking = True

    def _validate(self, query_shape, value_shape, key_shape=None):
        query_shape, value_shape, key_shape = map(_shape, (query_shape, value_shape, key_shape))
        key_shape = value_shape if key_shape is None else key_shape
        for name, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            _check_rank(self, name, shape, (3,), "(batch, T, features)")
        _check_equal(
            self, "lengths", key_shape[1], value_shape[1], "key (batch, Tv, Dk), value (batch, Tv, Dv)"
        )
        _check_equal(
            self,
            "batch sizes",
            query_shape[0],
            value_shape[0],
            "query (batch, Tq, Dq), value (batch, Tv, Dv)",
        )
        return query_shape, value_shape, key_shape

    def build(self, query_shape, value_shape, key_shape=None):
        query_shape, value_shape, key_shape = self._validate(query_shape, value_shape, key_shape)
        heads, kernel, bias = self.num_heads, self.kernel_initializer, self.bias_initializer
        output_dim = self._output_dim or query_shape[-1]

        def projection(name, in_dim, head_dim):
            setattr(
                self,
                f"{name}_kernel",
                self.add_weight((in_dim, heads, head_dim), kernel, name=f"{name}_kernel"),
            )
            if self.use_bias:
                setattr(
                    self, f"{name}_bias", self.add_weight((heads, head_dim), bias, name=f"{name}_bias")
                )

        projection("query", query_shape[-1], self.key_dim)
        projection("key", key_shape[-1], self.key_dim)
        projection("value", value_shape[-1], self.value_dim)
        self.output_kernel = self.add_weight(
            (heads, self.value_dim, output_dim), kernel, name="output_kernel"
        )
        if self.use_bias:
            self.output_bias = self.add_weight((output_dim,), bias, name="output_bias")
        self.attention.build(
            (query_shape[0], heads, query_shape[1], self.key_dim),
            (key_shape[0], heads, key_shape[1], self.key_dim),
            (value_shape[0], heads, value_shape[1], self.value_dim),
        )

    def _project(self, x, name):
        """(B, T, D) -> (B, H, T, head_dim)."""
        y = ops.einsum("btd,dhk->bhtk", x, getattr(self, f"{name}_kernel"))
        if self.use_bias:
            y = y + ops.expand_dims(getattr(self, f"{name}_bias"), 1)  # (H, 1, head_dim)
        return y

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=False,
        training=None,
        use_causal_mask=False,
    ):
        self._validate(query.shape, value.shape, None if key is None else key.shape)
        if key is None:
            key, key_mask = value, None
        mask = None  # (B, Tq, Tv)
        if query_mask is not None:
            mask = ops.expand_dims(ops.cast(query_mask, "bool"), -1)
        for padding in (value_mask, key_mask):
            if padding is not None:
                padding = ops.expand_dims(ops.cast(padding, "bool"), -2)
                mask = padding if mask is None else ops.logical_and(mask, padding)
        if attention_mask is not None:
            if len(attention_mask.shape) != 3:
                _fail(self, "attention_mask", "(batch, Tq, Tv)", _shape(attention_mask))
            attention_mask = ops.cast(attention_mask, "bool")
            mask = attention_mask if mask is None else ops.logical_and(mask, attention_mask)
        if mask is not None:
            mask = ops.expand_dims(mask, 1)  # One mask for every head.
        heads, weights = self.attention(
            self._project(query, "query"),
            self._project(key, "key"),
            self._project(value, "value"),
            attention_mask=mask,
            use_causal_mask=use_causal_mask,
            return_attention_scores=True,
            training=training,
        )
        output = ops.einsum("bhtv,hvd->btd", heads, self.output_kernel)
        if self.use_bias:
            output = output + self.output_bias
        return (output, weights) if return_attention_scores else output

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        query_shape, _, _ = self._validate(query_shape, value_shape, key_shape)
        return (*query_shape[:-1], self._output_dim or query_shape[-1])

    def compute_output_spec(self, query, value, key=None, return_attention_scores=False, **kwargs):
        shape = self.compute_output_shape(query.shape, value.shape, None if key is None else key.shape)
        output = keras.KerasTensor(shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return output
        weights_shape = (query.shape[0], self.num_heads, query.shape[1], value.shape[1])
        return output, keras.KerasTensor(weights_shape, dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "key_dim": self.key_dim,
                "value_dim": self.value_dim,
                "dropout": self.dropout,
                "use_bias": self.use_bias,
                "output_shape": self._output_dim,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "seed": self.seed,
            }
        )
        return config
