"""Attention layers: Bahdanau (additive), Luong (dot/general/concat), scaled dot-product and
multi-head attention, written with `keras.ops` only.

Conventions shared by every layer here:

- one call convention, that of `keras.layers.MultiHeadAttention`: the same arguments, in the same
  order, with the same names and meanings in all four layers,

      call(query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
           attention_mask=None, return_attention_scores=..., training=None, use_causal_mask=False)

  `key` defaults to `value`; `query_mask` `(batch, Tq)` and `value_mask` / `key_mask` `(batch, Tk)`
  are padding masks that Keras fills from the inputs' own masks (e.g. `Embedding(mask_zero=True)`);
  `attention_mask` allows single (query, key) pairs; `use_causal_mask` lets query t see keys <= t.
  Bahdanau and Luong attention return the attention weights unless told not to (a decoder draws
  them) and take one more argument, `projected_key` = `project_key(key)`, computed once by a
  decoder that attends to the same keys at every step;
- a mask is boolean, `True` where a position may be attended to;
- masked keys get exactly zero weight (their scores are replaced by -1e9 before the softmax and the
  weights are zeroed after it); a query whose keys are all masked (a masked query, too) gets
  all-zero weights and a zero context, as `keras.layers.Softmax` does;
- bad input shapes raise `ValueError` naming the layer and the expected shape.
"""

import functools
import inspect
import math

import keras
from keras import ops

from layers._direct import direct


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


def _padding_mask(layer, argument, mask, expected):
    """A boolean `(batch, T)` padding mask; another rank raises."""
    if len(mask.shape) != 2:
        _fail(layer, argument, expected, _shape(mask))
    return ops.cast(mask, "bool")


def _combined_mask(layer, rank, query_mask, value_mask, key_mask, attention_mask):
    """The padding masks and `attention_mask` as one boolean mask broadcastable to the scores
    `(batch, ..., Tq, Tk)` of `rank` axes, or None when there is none.

    Args:
        query_mask: `(batch, Tq)`, masks rows; value_mask, key_mask: `(batch, Tk)`, mask columns.
        attention_mask: `(batch, [..., Tq,] Tk)`; missing axes are inserted after the batch axis.
    """
    masks = []
    if query_mask is not None:
        rows = ops.expand_dims(_padding_mask(layer, "query_mask", query_mask, "(batch, Tq)"), -1)
        masks.append(_expand_to_rank(rows, rank))  # (B, 1, ..., Tq, 1)
    for argument, padding in (("value_mask", value_mask), ("key_mask", key_mask)):
        if padding is not None:
            columns = ops.expand_dims(_padding_mask(layer, argument, padding, "(batch, Tk)"), -2)
            masks.append(_expand_to_rank(columns, rank))  # (B, 1, ..., 1, Tk)
    if attention_mask is not None:
        if len(attention_mask.shape) > rank:
            expected = "broadcastable to (batch, ..., Tq, Tk)"
            _fail(layer, "attention_mask", expected, _shape(attention_mask))
        masks.append(_expand_to_rank(ops.cast(attention_mask, "bool"), rank))
    return functools.reduce(ops.logical_and, masks) if masks else None


def _with_causal_mask(mask, scores):
    """`mask` and the causal mask of `scores` (..., Tq, Tk): query t keeps keys <= t."""
    causal = _causal_mask(ops.shape(scores)[-2], ops.shape(scores)[-1])
    return causal if mask is None else ops.logical_and(mask, causal)


def _call_arguments(layer, args, kwargs):
    """The arguments of `layer.call(*args, **kwargs)` by name, defaults included."""
    bound = inspect.signature(layer.call).bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


class _AlignmentAttention(keras.layers.Layer):
    """Shared plumbing of Bahdanau and Luong attention, for a query (one, or one per step):

    1. scores (B, Tq, Tk) of the query against every key, by weights of the layer's own;
    2. the masks combined, a softmax over the keys that gives masked keys exactly zero weight;
    3. the context: the weighted sum of the values.

    Subclasses implement `_build_scores(query_dim, key_dim)`, `project_key(key)` (the part of the
    score that depends on the key only) and `_scores(query, projected_key)`, which maps query
    (B, Tq, Dq) and projected key (B, Tk, ...) to scores (B, Tq, Tk).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def _validate(self, query_shape, value_shape, key_shape=None):
        """The three shapes, checked; the key's is the value's when there is no key."""
        query_shape, value_shape, key_shape = map(_shape, (query_shape, value_shape, key_shape))
        _check_rank(self, "query", query_shape, (2, 3), "(batch, query_dim) or (batch, Tq, query_dim)")
        _check_rank(self, "value", value_shape, (3,), "(batch, Tk, value_dim)")
        _check_rank(self, "key", key_shape, (3,), "(batch, Tk, key_dim)")
        _check_equal(
            self,
            "batch sizes",
            query_shape[0],
            value_shape[0],
            "query (batch, ...) and value (batch, Tk, value_dim)",
        )
        if key_shape is None:
            return query_shape, value_shape, value_shape
        detail = "key (batch, Tk, key_dim), value (batch, Tk, value_dim)"
        _check_equal(self, "lengths", key_shape[1], value_shape[1], detail)
        _check_equal(self, "batch sizes", key_shape[0], value_shape[0], detail)
        return query_shape, value_shape, key_shape

    def build(self, query_shape, value_shape, key_shape=None):
        query_shape, _, key_shape = self._validate(query_shape, value_shape, key_shape)
        if query_shape[-1] is None or key_shape[-1] is None:
            raise ValueError(
                f"{type(self).__name__}: the last axes of `query` and `key` must be known; "
                f"received shapes {query_shape} and {key_shape}."
            )
        self._build_scores(query_shape[-1], key_shape[-1])

    def project_key(self, key):
        """The key's share of the scores, (B, Tk, ...): computed once, reusable for every query."""
        return key

    def call(
        self,
        query,
        value,
        key=None,
        query_mask=None,
        value_mask=None,
        key_mask=None,
        attention_mask=None,
        return_attention_scores=True,
        training=None,
        use_causal_mask=False,
        projected_key=None,
    ):
        self._validate(query.shape, value.shape, None if key is None else key.shape)
        if key is None:
            key, key_mask = value, None
        single_query = len(query.shape) == 2
        if single_query:  # one decoder step: (B, Dq) -> (B, 1, Dq), its masks alike
            query = ops.expand_dims(query, 1)
            query_mask = None if query_mask is None else ops.expand_dims(query_mask, 1)
            attention_mask = None if attention_mask is None else ops.expand_dims(attention_mask, 1)
        if projected_key is None:
            projected_key = self.project_key(key)
        scores = self._scores(query, projected_key)  # (B, Tq, Tk)
        mask = _combined_mask(self, 3, query_mask, value_mask, key_mask, attention_mask)
        if use_causal_mask:
            mask = _with_causal_mask(mask, scores)
        weights = _masked_softmax(scores, mask)
        context = ops.matmul(weights, ops.cast(value, weights.dtype))  # (B, Tq, value_dim)
        if single_query:
            context, weights = ops.squeeze(context, 1), ops.squeeze(weights, 1)
        return (context, weights) if return_attention_scores else context

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        query_shape, value_shape, key_shape = self._validate(query_shape, value_shape, key_shape)
        context = (*query_shape[:-1], value_shape[-1])
        weights = (*query_shape[:-1], key_shape[1])
        return context, weights

    def compute_output_spec(self, *args, **kwargs):
        arguments = _call_arguments(self, args, kwargs)
        query, value, key = (arguments[name] for name in ("query", "value", "key"))
        shapes = self.compute_output_shape(query.shape, value.shape, _shape(key))
        context, weights = (keras.KerasTensor(s, dtype=self.compute_dtype) for s in shapes)
        return (context, weights) if arguments["return_attention_scores"] else context

    def compute_mask(self, inputs, previous_mask):
        # The keys' mask is consumed here; the outputs are indexed by query, not by key.
        return None


@keras.saving.register_keras_serializable(package="layers")
class BahdanauAttention(_AlignmentAttention):
    """Additive attention of Bahdanau, Cho and Bengio (2014), A 7.8.2.

    For a query `s` (the decoder state) and keys `h_j` (the encoder annotations):

        e_j     = v_a^T tanh(s W_q + h_j U_a + b_a)
        alpha   = softmax(e)              (masked keys get exactly zero weight)
        context = sum_j alpha_j value_j   (the key defaults to the value)

    Parameters, named as in the notes' table (`N_a = units`, `2 N_h` the key size):
    `query_kernel` W_q `(query_dim, units)`, `key_kernel` U_a `(key_dim, units)`,
    `bias` b_a `(units,)`, `score_vector` v_a `(units,)`.

    Args:
        units: N_a, the size of the alignment layer.
        kernel_initializer, bias_initializer: for W_q, U_a, v_a and for b_a.

    Call arguments (the convention of this module, `keras.layers.MultiHeadAttention`'s):
        query: `(batch, query_dim)` (one decoder step) or `(batch, Tq, query_dim)`.
        value: `(batch, Tk, value_dim)`.
        key: optional `(batch, Tk, key_dim)`; defaults to `value`.
        query_mask: optional boolean `(batch, [Tq])`; a masked query gets zero weights.
        value_mask, key_mask: optional boolean `(batch, Tk)`, True for real (unpadded) keys; Keras
            fills them (and `query_mask`) from the inputs' own masks.
        attention_mask: optional boolean `(batch, [Tq,] Tk)`, True where attending is allowed.
        return_attention_scores: True (the default here): also return the weights.
        training: unused (no dropout); part of the shared convention.
        use_causal_mask: if True, query `t` attends only to keys `<= t`.
        projected_key: optional `project_key(key)` = h_j U_a + b_a `(batch, Tk, units)`,
            computed once by a decoder that attends to the same keys at every step.

    Returns:
        `(context, attention_weights)`: `(batch, [Tq,] value_dim)` and `(batch, [Tq,] Tk)`; only
        the context with `return_attention_scores=False`.

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

    def project_key(self, key):
        return ops.matmul(key, self.key_kernel) + self.bias  # h_j U_a + b_a: (B, Tk, units)

    def _scores(self, query, projected_key):
        projected_query = ops.matmul(query, self.query_kernel)  # (B, Tq, units)
        hidden = ops.tanh(ops.expand_dims(projected_query, 2) + ops.expand_dims(projected_key, 1))
        return ops.matmul(hidden, self.score_vector)  # sum_u hidden[b,q,k,u] v_a[u]: (B, Tq, Tk)

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
class LuongAttention(_AlignmentAttention):
    """Multiplicative attention of Luong, Pham and Manning (2015), A 7.8.3.

    Three scores of a query `s` against a key `h_j`:

        dot:      score = s^T h_j                   (needs query_dim == key_dim)
        general:  score = s^T W_a h_j               `kernel` `(key_dim, query_dim)` (= W_a^T)
        concat:   score = v_a^T tanh(W_a [s; h_j])  `concat_kernel` W_a `(query_dim + key_dim, units)`,
                                                    `score_vector` v_a `(units,)`

    then `alpha = softmax(score)` over the keys (masked keys get exactly zero weight) and
    `context = sum_j alpha_j value_j`. `"dot"` equals `keras.layers.Attention()`; `"general"` is a
    bias-free Dense on the keys followed by `"dot"` (so W_a = I gives `"dot"`); `"concat"` is
    Bahdanau's additive score without the bias b_a.

    Args:
        score: `"dot"`, `"general"` or `"concat"`.
        units: size of the hidden layer of `"concat"` (required there, unused otherwise).
        kernel_initializer: for W_a and v_a.

    Call arguments and returns: as `BahdanauAttention` (`projected_key` = `project_key(key)`:
    the key, W_a h_j, or the key's half of the concat layer): `(context, attention_weights)` of
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

    def _validate(self, query_shape, value_shape, key_shape=None):
        shapes = super()._validate(query_shape, value_shape, key_shape)
        if self.score == "dot":
            _check_equal(
                self,
                "feature sizes",
                shapes[0][-1],
                shapes[2][-1],
                "score='dot' needs query (batch, [Tq,] d) and key (batch, Tk, d)",
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

    def project_key(self, key):
        if self.score == "general":
            return ops.matmul(key, self.kernel)  # W_a h_j: (B, Tk, query_dim)
        if self.score == "concat":
            # W_a [s; h] = s W_s + h W_h, with W_a split row-wise: here h W_h, (B, Tk, units).
            return ops.matmul(key, self.concat_kernel[self._query_dim :])
        return key

    def _scores(self, query, projected_key):
        if self.score in ("dot", "general"):
            return ops.matmul(query, ops.swapaxes(projected_key, 1, 2))  # (B, Tq, Tk)
        query_part = ops.matmul(query, self.concat_kernel[: self._query_dim])  # s W_s: (B, Tq, units)
        hidden = ops.tanh(ops.expand_dims(query_part, 2) + ops.expand_dims(projected_key, 1))
        return ops.matmul(hidden, self.score_vector)  # sum_u hidden[b,q,k,u] v_a[u]: (B, Tq, Tk)

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

    Call arguments (the convention of this module, `keras.layers.MultiHeadAttention`'s):
        query: `(batch, ..., Tq, d_k)`; value: `(batch, ..., Tk, d_v)`; key: optional
            `(batch, ..., Tk, d_k)`, defaults to `value` (any number of middle axes, e.g. heads).
        query_mask: optional boolean `(batch, Tq)`; a masked query gets zero weights.
        value_mask, key_mask: optional boolean padding masks `(batch, Tk)`, True for real keys.
        attention_mask: optional boolean mask broadcastable to `(batch, ..., Tq, Tk)`; missing axes
            are inserted after the batch axis.
        return_attention_scores: if True, also return the weights `(batch, ..., Tq, Tk)`
            (before dropout).
        training: whether dropout is active.
        use_causal_mask: if True, query `t` attends only to keys `<= t`.

    Returns:
        `(batch, ..., Tq, d_v)`, or `(output, weights)`.

    Example:

    >>> attention = ScaledDotProductAttention()
    >>> x = np.random.rand(2, 5, 8)
    >>> attention(x, x, use_causal_mask=True).shape
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

    def _validate(self, query_shape, value_shape, key_shape=None):
        """The three shapes, checked; the key's is the value's when there is no key."""
        query_shape, value_shape, key_shape = map(_shape, (query_shape, value_shape, key_shape))
        key_shape = value_shape if key_shape is None else key_shape
        expected = "(batch, ..., T, d)"
        for name, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(shape) < 3:
                _fail(self, name, expected, shape)
        if not len(query_shape) == len(value_shape) == len(key_shape):
            raise ValueError(
                f"ScaledDotProductAttention: `query`, `value` and `key` must have the same rank "
                f"{expected}; received shapes {query_shape}, {value_shape} and {key_shape}."
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
        return query_shape, value_shape, key_shape

    def build(self, query_shape, value_shape, key_shape=None):
        self._validate(query_shape, value_shape, key_shape)

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
        query_shape, _, _ = self._validate(query.shape, value.shape, None if key is None else key.shape)
        if key is None:
            key, key_mask = value, None
        query = ops.multiply(query, ops.cast(1.0 / math.sqrt(query_shape[-1]), query.dtype))
        scores = ops.matmul(query, ops.swapaxes(key, -1, -2))  # (B, ..., Tq, Tk)
        rank = len(query_shape)
        mask = _combined_mask(self, rank, query_mask, value_mask, key_mask, attention_mask)
        if use_causal_mask:
            mask = _with_causal_mask(mask, scores)
        weights = _masked_softmax(scores, mask)
        attended = weights
        if training and self.dropout > 0:
            attended = keras.random.dropout(weights, self.dropout, seed=self.seed_generator)
        output = ops.matmul(attended, ops.cast(value, attended.dtype))  # (B, ..., Tq, d_v)
        return (output, weights) if return_attention_scores else output

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        query_shape, value_shape, _ = self._validate(query_shape, value_shape, key_shape)
        return (*query_shape[:-1], value_shape[-1])

    def compute_output_spec(self, *args, **kwargs):
        arguments = _call_arguments(self, args, kwargs)
        query, value, key = (arguments[name] for name in ("query", "value", "key"))
        shape = self.compute_output_shape(query.shape, value.shape, _shape(key))
        output = keras.KerasTensor(shape, dtype=self.compute_dtype)
        if not arguments["return_attention_scores"]:
            return output
        weights_shape = (*query.shape[:-1], value.shape[-2])
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

    Call arguments (the convention of this module, `keras.layers.MultiHeadAttention`'s):
        query: `(batch, Tq, Dq)`; value: `(batch, Tv, Dv)`; key: optional `(batch, Tv, Dk)`
            (defaults to `value`).
        query_mask, value_mask, key_mask: optional boolean `(batch, T)` padding masks (filled
            by Keras from the inputs' own masks); a masked query row gets zero weights.
        attention_mask: optional boolean `(batch, Tq, Tv)`, True where attending is allowed.
        return_attention_scores: if True, also return the weights `(batch, H, Tq, Tv)`.
        training: whether dropout is active.
        use_causal_mask: if True, query `t` attends only to positions `<= t`.

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
        # The sub-layer shares this layer's dtype policy (as Keras' own MultiHeadAttention passes
        # `dtype=self.dtype_policy` to its softmax and dropout): a per-layer mixed policy reaches it.
        self.attention = ScaledDotProductAttention(
            dropout=dropout, seed=seed, name="attention", dtype=self.dtype_policy
        )
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
            (value_shape[0], heads, value_shape[1], self.value_dim),
            (key_shape[0], heads, key_shape[1], self.key_dim),
        )

    def _project(self, x, name):
        """(B, T, D) -> (B, H, T, head_dim): one matrix product (B, T, D) x (D, H * head_dim), the
        sum "btd,dhk->bhtk" without an einsum's copies."""
        kernel = getattr(self, f"{name}_kernel")
        features, heads, head_dim = kernel.shape
        y = ops.matmul(x, ops.reshape(kernel, (features, heads * head_dim)))
        if self.use_bias:
            y = y + ops.reshape(getattr(self, f"{name}_bias"), (heads * head_dim,))
        y = ops.reshape(y, (*ops.shape(x)[:-1], heads, head_dim))  # (B, T, H, head_dim)
        return ops.transpose(y, (0, 2, 1, 3))

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
        if attention_mask is not None and len(attention_mask.shape) != 3:
            _fail(self, "attention_mask", "(batch, Tq, Tv)", _shape(attention_mask))
        # One mask for every head: (B, 1, Tq, Tv), or None.
        mask = _combined_mask(self, 4, query_mask, value_mask, key_mask, attention_mask)
        query = self._project(query, "query")  # (B, H, Tq, key_dim)
        value = self._project(value, "value")  # (B, H, Tv, value_dim)
        key = self._project(key, "key")  # (B, H, Tv, key_dim)
        heads, weights = direct(self.attention, query, value, key)(  # layers._direct
            query=query,
            value=value,
            key=key,
            attention_mask=mask,
            return_attention_scores=True,
            training=training,
            use_causal_mask=use_causal_mask,
        )
        # sum_h head_h W_o[h] = Concat(heads) W_O: "bhtv,hvd->btd" as one matrix product.
        heads_dim, value_dim, output_dim = self.output_kernel.shape
        concat = ops.transpose(heads, (0, 2, 1, 3))  # (B, Tq, H, value_dim)
        concat = ops.reshape(concat, (*ops.shape(concat)[:2], heads_dim * value_dim))
        kernel = ops.reshape(self.output_kernel, (heads_dim * value_dim, output_dim))
        output = ops.matmul(concat, kernel)  # (B, Tq, D_out)
        if self.use_bias:
            output = output + self.output_bias
        return (output, weights) if return_attention_scores else output

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        query_shape, _, _ = self._validate(query_shape, value_shape, key_shape)
        return (*query_shape[:-1], self._output_dim or query_shape[-1])

    def compute_output_spec(self, *args, **kwargs):
        arguments = _call_arguments(self, args, kwargs)
        query, value, key = (arguments[name] for name in ("query", "value", "key"))
        shape = self.compute_output_shape(query.shape, value.shape, _shape(key))
        output = keras.KerasTensor(shape, dtype=self.compute_dtype)
        if not arguments["return_attention_scores"]:
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
