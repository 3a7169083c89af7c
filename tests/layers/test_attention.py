"""Attention layers: NumPy references of the notes' formulas (A 7.8), equality with the Keras
built-ins given the same weights, masks, one call convention (Keras's) for all four layers, `.keras`
files saved before it, and the shared layer checks."""

import inspect

import keras
import numpy as np
import pytest
from keras import ops

from layers.attention import (
    BahdanauAttention,
    LuongAttention,
    MultiHeadAttention,
    ScaledDotProductAttention,
)
from tests.conftest import FIXTURES
from tests.layers import layer_checks


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype("float32")


def np_(x):
    return ops.convert_to_numpy(x)


# Batch 2, Tq 3, Tk 5, feature sizes all different so that a swapped weight cannot pass.
QUERY = rand(2, 3, 4, seed=1)
KEYS = rand(2, 5, 6, seed=2)
VALUES = rand(2, 5, 7, seed=3)
# Row 0 keeps 3 keys, row 1 keeps keys 0, 2, 4.
KEY_MASK = np.array([[1, 1, 1, 0, 0], [1, 0, 1, 0, 1]], bool)


def np_masked_softmax(scores, mask=None):
    """Softmax over the last axis with masked entries at exactly zero (a fully masked row: zeros)."""
    mask = np.ones(scores.shape, bool) if mask is None else np.broadcast_to(mask, scores.shape)
    highest = np.where(mask, scores, -np.inf).max(-1, keepdims=True)
    exp = np.where(mask, np.exp(scores - np.where(np.isfinite(highest), highest, 0.0)), 0.0)
    total = exp.sum(-1, keepdims=True)
    return np.divide(exp, total, out=np.zeros_like(exp), where=total > 0)


def np_attend(score, query, keys, values, mask):
    """alpha_i = softmax_j(score(s_i, h_j)), c_i = sum_j alpha_ij v_j, written as loops; `mask` is
    a key padding mask (B, Tk) or a whole mask (B, Tq, Tk)."""
    batch, tq, tk = query.shape[0], query.shape[1], keys.shape[1]
    e = np.array(
        [[[score(query[b, i], keys[b, j]) for j in range(tk)] for i in range(tq)] for b in range(batch)]
    )
    if mask is not None and mask.ndim == 2:
        mask = mask[:, None, :]
    alpha = np_masked_softmax(e, mask)
    return np.einsum("bij,bjd->bid", alpha, values), alpha


def weights_of(layer):
    return {w.path.split("/")[-1]: np_(w) for w in layer.weights}


# ---------------------------------------------------------------------------------------------
# Bahdanau


def bahdanau_factory():
    return BahdanauAttention(
        units=8,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=11),
        bias_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=12),
    )


@pytest.mark.parametrize("mask", [None, KEY_MASK])
def test_bahdanau_matches_its_formula(mask):
    layer = bahdanau_factory()
    context, alpha = layer(QUERY, VALUES, KEYS, value_mask=mask)
    w = weights_of(layer)

    def score(s, h):  # e_ij = tanh(s_{i-1} W_q + h_j U_a + b_a) v_a^T
        return np.tanh(s @ w["query_kernel"] + h @ w["key_kernel"] + w["bias"]) @ w["score_vector"]

    want_context, want_alpha = np_attend(score, QUERY, KEYS, VALUES, mask)
    np.testing.assert_allclose(np_(alpha), want_alpha, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_(context), want_context, rtol=1e-5, atol=1e-5)


def test_bahdanau_parameter_shapes_follow_the_notes_table():
    # Table of section 7.8: W_q N_h x N_a, U_a 2N_h x N_a, b_a 1 x N_a, v_a 1 x N_a; the decoder
    # state s_{i-1} is (N, N_h), the annotations h are (N, T_e, 2N_h), c_i is (N, 2N_h).
    n, t_e, n_h, n_a = 2, 5, 3, 4
    state, annotations = rand(n, n_h, seed=4), rand(n, t_e, 2 * n_h, seed=5)
    layer = BahdanauAttention(units=n_a)
    context, alpha = layer(state, annotations)
    shapes = {name: tuple(v.shape) for name, v in weights_of(layer).items()}
    assert shapes == {
        "query_kernel": (n_h, n_a),
        "key_kernel": (2 * n_h, n_a),
        "bias": (n_a,),
        "score_vector": (n_a,),
    }
    assert tuple(context.shape) == (n, 2 * n_h) and tuple(alpha.shape) == (n, t_e)
    np.testing.assert_allclose(np_(alpha).sum(-1), 1.0, rtol=1e-6)
    # A single query equals the same query as a length-1 sequence.
    context_seq, alpha_seq = layer(state[:, None, :], annotations)
    np.testing.assert_allclose(np_(context_seq)[:, 0], np_(context), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np_(alpha_seq)[:, 0], np_(alpha), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Luong


def luong_factory(score="concat"):
    def factory():
        return LuongAttention(
            score, units=5, kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=21)
        )

    return factory


@pytest.mark.parametrize("mask", [None, KEY_MASK])
@pytest.mark.parametrize("score", ["general", "concat"])
def test_luong_matches_numpy(score, mask):
    layer = luong_factory(score)()
    context, alpha = layer(QUERY, VALUES, KEYS, value_mask=mask)
    w = weights_of(layer)
    if score == "general":
        w_a = w["kernel"].T  # score = s^T W_a h with W_a (query_dim, key_dim).

        def score_fn(s, h):
            return s @ w_a @ h

    else:

        def score_fn(s, h):  # v_a^T tanh(W_a [s; h])
            return np.tanh(np.concatenate([s, h]) @ w["concat_kernel"]) @ w["score_vector"]

    want_context, want_alpha = np_attend(score_fn, QUERY, KEYS, VALUES, mask)
    np.testing.assert_allclose(np_(alpha), want_alpha, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_(context), want_context, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("score", ["bahdanau", "dot", "general", "concat"])
def test_projected_key_computed_once_gives_the_same_attention(score):
    layer = bahdanau_factory() if score == "bahdanau" else luong_factory(score)()
    query, keys = (QUERY, KEYS) if score != "dot" else (rand(2, 3, 6, seed=6), KEYS)
    context, alpha = layer(query, VALUES, keys, value_mask=KEY_MASK)
    projected = layer.project_key(ops.convert_to_tensor(keys))
    for t in range(query.shape[1]):  # one query at a time, as a decoder asks
        step_context, step_alpha = layer(
            query[:, t], VALUES, keys, value_mask=KEY_MASK, projected_key=projected
        )
        np.testing.assert_allclose(np_(step_alpha), np_(alpha)[:, t], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(np_(step_context), np_(context)[:, t], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mask", [None, KEY_MASK])
def test_luong_dot_equals_keras_attention(mask):
    query, keys = rand(2, 3, 6, seed=6), KEYS
    context, alpha = LuongAttention("dot")(query, VALUES, keys, value_mask=mask)
    keras_mask = None if mask is None else [None, mask]
    want_context, want_alpha = keras.layers.Attention()(
        [query, VALUES, keys], mask=keras_mask, return_attention_scores=True
    )
    np.testing.assert_allclose(np_(alpha), np_(want_alpha), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_(context), np_(want_context), rtol=1e-5, atol=1e-5)


def test_luong_general_with_identity_equals_dot():
    query = rand(2, 3, 6, seed=6)
    general = LuongAttention("general", kernel_initializer="identity")
    for got, want in zip(
        general(query, KEYS, value_mask=KEY_MASK),
        LuongAttention("dot")(query, KEYS, value_mask=KEY_MASK),
    ):
        np.testing.assert_allclose(np_(got), np_(want), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Scaled dot-product attention


def np_scaled_dot_product(q, k, v, mask=None):
    weights = np_masked_softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]), mask)
    return weights @ v, weights


def test_scaled_dot_product_matches_numpy():
    q, k, v = rand(2, 2, 4, 3, seed=7), rand(2, 2, 5, 3, seed=8), rand(2, 2, 5, 2, seed=9)
    layer = ScaledDotProductAttention()
    causal = np.tril(np.ones((4, 5), bool))
    extra = np.random.default_rng(0).random((2, 4, 5)) > 0.3
    extra[..., 0] = True  # Every query keeps one key.
    query_mask = np.array([[1, 0, 1, 1], [1, 1, 1, 0]], bool)
    cases = [
        ({}, None),
        ({"value_mask": KEY_MASK}, KEY_MASK[:, None, None, :]),
        ({"key_mask": KEY_MASK}, KEY_MASK[:, None, None, :]),
        ({"query_mask": query_mask}, query_mask[:, None, :, None]),
        ({"use_causal_mask": True}, causal),
        ({"value_mask": KEY_MASK, "use_causal_mask": True}, KEY_MASK[:, None, None, :] & causal),
        ({"attention_mask": extra}, extra[:, None]),
    ]
    for kwargs, mask in cases:
        output, weights = layer(q, v, k, return_attention_scores=True, **kwargs)
        want_output, want_weights = np_scaled_dot_product(q, k, v, mask)
        np.testing.assert_allclose(np_(weights), want_weights, rtol=1e-5, atol=1e-6, err_msg=str(kwargs))
        np.testing.assert_allclose(np_(output), want_output, rtol=1e-5, atol=1e-5, err_msg=str(kwargs))
        np.testing.assert_allclose(np_(layer(q, v, k, **kwargs)), want_output, rtol=1e-5, atol=1e-5)
    # Without a key, the value is the key.
    np.testing.assert_allclose(np_(layer(q, k)), np_scaled_dot_product(q, k, k)[0], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# Multi-head attention


def mha_pair(query_dim, value_dim, key_dim=None, output_shape=None, head_value_dim=4):
    """Keras's and ours, built, holding the same random weights (biases included)."""
    kwargs = dict(num_heads=2, key_dim=3, value_dim=head_value_dim, output_shape=output_shape)
    ref, ours = keras.layers.MultiHeadAttention(**kwargs), MultiHeadAttention(**kwargs)
    shapes = [(None, 3, query_dim), (None, 5, value_dim)]
    if key_dim is not None:
        shapes.append((None, 5, key_dim))
    ref.build(*shapes)
    ours.build(*shapes)
    rng = np.random.default_rng(10)
    weights = [rng.standard_normal(w.shape).astype("float32") * 0.5 for w in ref.get_weights()]
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in weights]
    ref.set_weights(weights)
    ours.set_weights(weights)
    return ref, ours


MHA_CASES = {
    "self": dict(),
    "self_causal": dict(use_causal_mask=True),
    "self_padding": dict(value_mask=KEY_MASK),
    "self_padding_causal": dict(value_mask=KEY_MASK, use_causal_mask=True),
    "cross": dict(cross=True),
    "cross_key": dict(cross=True, key=True),
    "cross_padding": dict(cross=True, value_mask=KEY_MASK),
    "cross_causal_output_shape": dict(cross=True, use_causal_mask=True, output_shape=6),
    "cross_attention_mask": dict(cross=True, attention_mask=True),
}


@pytest.mark.parametrize("case", sorted(MHA_CASES))
def test_multi_head_attention_equals_keras(case):
    kwargs = dict(MHA_CASES[case])
    cross, with_key = kwargs.pop("cross", False), kwargs.pop("key", False)
    output_shape = kwargs.pop("output_shape", None)
    if cross:
        query, value = QUERY, VALUES
    else:
        query = value = rand(2, 5, 4, seed=12)
    key = KEYS if with_key else None
    if kwargs.get("attention_mask"):
        mask = np.random.default_rng(1).random((2, query.shape[1], 5)) > 0.4
        mask[..., 0] = True
        kwargs["attention_mask"] = mask
    # Self-attention cases use value heads as wide as key heads: Keras's fused path (taken without
    # dropout and scores) then applies; with other widths it fails on JAX in Keras 3.15, so there
    # Keras's explicit path (return_attention_scores=True) is the reference.
    head_value_dim = 4 if cross else 3
    key_size = key.shape[-1] if with_key else None
    ref, ours = mha_pair(query.shape[-1], value.shape[-1], key_size, output_shape, head_value_dim)
    want_output, want_scores = ref(query, value, key, return_attention_scores=True, **kwargs)
    got_output, got_scores = ours(query, value, key, return_attention_scores=True, **kwargs)
    outputs = [got_output, ours(query, value, key, **kwargs)]
    if head_value_dim == 3:
        outputs.append(ref(query, value, key, **kwargs))
    np.testing.assert_allclose(np_(got_scores), np_(want_scores), rtol=1e-5, atol=1e-6)
    for got in outputs:
        assert tuple(got.shape) == tuple(want_output.shape)
        np.testing.assert_allclose(np_(got), np_(want_output), rtol=1e-5, atol=1e-5)
    assert tuple(ours.compute_output_shape(query.shape, value.shape)) == tuple(got_output.shape)


def test_multi_head_attention_dropout_uses_its_seed_generator():
    x = rand(2, 5, 4, seed=13)
    layer = MultiHeadAttention(2, 3, dropout=0.5, seed=1)
    inference, weights = layer(x, x, return_attention_scores=True)
    first, first_weights = layer(x, x, return_attention_scores=True, training=True)
    second = layer(x, x, training=True)
    # Weights are returned before dropout; the outputs of two training calls differ (the seed
    # generator advances) and differ from inference.
    np.testing.assert_allclose(np_(first_weights), np_(weights), rtol=1e-6)
    assert not np.allclose(np_(first), np_(inference))
    assert not np.allclose(np_(first), np_(second))
    state = [v for v in layer.variables if "seed_generator" in v.path]
    assert len(state) == 1


# ---------------------------------------------------------------------------------------------
# One call convention: Keras's


ATTENTION_LAYERS = (BahdanauAttention, LuongAttention, ScaledDotProductAttention, MultiHeadAttention)
CONVENTION = list(inspect.signature(keras.layers.MultiHeadAttention.call).parameters)[1:]


def test_the_four_layers_share_the_call_signature_of_keras_multi_head_attention():
    assert CONVENTION[:5] == ["query", "value", "key", "query_mask", "value_mask"]
    keras_defaults = inspect.signature(keras.layers.MultiHeadAttention.call).parameters
    for layer_class in ATTENTION_LAYERS:
        parameters = inspect.signature(layer_class.call).parameters
        names = list(parameters)[1:]
        assert names[: len(CONVENTION)] == CONVENTION, layer_class.__name__
        # Bahdanau and Luong add one argument after the shared ones: the precomputed keys.
        recurrent = layer_class in (BahdanauAttention, LuongAttention)
        assert names[len(CONVENTION) :] == (["projected_key"] if recurrent else [])
        for name in CONVENTION:
            default = parameters[name].default
            if name == "return_attention_scores" and recurrent:
                assert default is True  # a decoder draws the weights
            else:
                assert default == keras_defaults[name].default, (layer_class.__name__, name)
        assert list(inspect.signature(layer_class.build).parameters)[1:] == [
            "query_shape",
            "value_shape",
            "key_shape",
        ]
    for layer_class in (BahdanauAttention, LuongAttention):
        assert hasattr(layer_class, "project_key") and not hasattr(layer_class, "project_keys")


def saved_fixture(name):
    """(layer, inputs, outputs) of a fixture saved on TensorFlow (tests/fixtures/layers), the inputs
    in the call's order (query, value, key). The three layers that were called (query, keys,
    values) before they took Keras's convention were saved again after it: their outputs equal
    the ones saved before the change to 1.5e-7."""
    folder = FIXTURES / "layers"
    model = keras.saving.load_model(folder / f"{name}.keras")
    with np.load(folder / f"{name}.npz") as data:
        inputs = [data[k] for k in sorted(data.files) if k.startswith("input_")]
        outputs = [data[k] for k in sorted(data.files) if k.startswith("output_")]
    return model.layers[-1], inputs, outputs


@pytest.mark.parametrize(
    "name",
    [
        "bahdanau_attention",
        "luong_attention",
        "scaled_dot_product_attention",
        "multi_head_attention",
    ],
)
def test_keyword_and_positional_calls_give_the_saved_outputs(name):
    saved, (query, value, key), want = saved_fixture(name)
    layer = type(saved).from_config(saved.get_config())
    layer(query=query, value=value, key=key)  # builds
    layer.set_weights(saved.get_weights())
    got = layer_checks.as_list(layer(query=query, value=value, key=key))
    positional = layer_checks.as_list(layer(query, value, key))
    assert len(got) == len(positional) == len(want)  # Bahdanau and Luong: context and weights
    for g, p, w in zip(got, positional, want):
        np.testing.assert_allclose(np_(g), w, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(np_(p), np_(g))


@pytest.mark.parametrize("name", ["bahdanau", "luong_general", "scaled_dot_product"])
def test_query_attention_and_causal_masks_of_the_convention(name):
    query_mask = np.array([[1, 0, 1], [1, 1, 1]], bool)
    attention_mask = np.random.default_rng(2).random((2, 3, 5)) > 0.4
    attention_mask[..., 0] = True
    causal = np.tril(np.ones((3, 5), bool))
    masks = KEY_MASK[:, None, :] & query_mask[:, :, None] & attention_mask & causal
    if name == "scaled_dot_product":
        layer, keys = ScaledDotProductAttention(), rand(2, 5, 4, seed=19)
    else:
        layer, keys = (bahdanau_factory if name == "bahdanau" else luong_factory("general"))(), KEYS
    kwargs = dict(
        query_mask=query_mask,
        value_mask=KEY_MASK,
        attention_mask=attention_mask,
        use_causal_mask=True,
    )
    context, alpha = layer(QUERY, VALUES, keys, return_attention_scores=True, **kwargs)
    _, unmasked = layer(QUERY, VALUES, keys, return_attention_scores=True)
    # The same scores, masked: the weights renormalised over the allowed keys, zero elsewhere.
    scores = np.log(np_(unmasked))
    want_alpha = np_masked_softmax(scores, masks)
    np.testing.assert_allclose(np_(alpha), want_alpha, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_(context), want_alpha @ VALUES, rtol=1e-5, atol=1e-5)
    assert np.all(np_(alpha)[0, 1] == 0) and np.all(np_(context)[0, 1] == 0)  # the masked query
    kwargs["return_attention_scores"] = False
    np.testing.assert_array_equal(np_(layer(QUERY, VALUES, keys, **kwargs)), np_(context))


# ---------------------------------------------------------------------------------------------
# Masks, for every layer


def all_attention_weights(mask):
    """{name: attention weights (..., Tk)} of every layer given the padding mask on the keys."""
    q6 = rand(2, 3, 6, seed=6)
    heads_q, heads_k = rand(2, 2, 3, 6, seed=14), rand(2, 2, 5, 6, seed=15)
    return {
        "bahdanau": BahdanauAttention(4)(QUERY, KEYS, value_mask=mask)[1],
        "bahdanau_single_query": BahdanauAttention(4)(QUERY[:, 0], KEYS, value_mask=mask)[1],
        "luong_dot": LuongAttention("dot")(q6, KEYS, value_mask=mask)[1],
        "luong_general": LuongAttention("general")(QUERY, KEYS, value_mask=mask)[1],
        "luong_concat": LuongAttention("concat", units=3)(QUERY, KEYS, value_mask=mask)[1],
        "scaled_dot_product": ScaledDotProductAttention()(
            heads_q, heads_k, value_mask=mask, return_attention_scores=True
        )[1],
        "multi_head": MultiHeadAttention(2, 3)(
            QUERY, KEYS, value_mask=mask, return_attention_scores=True
        )[1],
    }


def test_masked_keys_get_exactly_zero_weight_and_the_rest_sum_to_one():
    for name, weights in all_attention_weights(KEY_MASK).items():
        weights = np_(weights)
        mask = KEY_MASK.reshape((2,) + (1,) * (weights.ndim - 2) + (5,))
        mask = np.broadcast_to(mask, weights.shape)
        assert np.all(weights[~mask] == 0.0), name
        assert np.all(weights[mask] > 0.0), name
        np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6, err_msg=name)


def test_keras_mask_of_the_keys_is_used():
    tokens = np.array([[3, 1, 2, 0, 0], [1, 0, 0, 0, 0]])
    keys = keras.layers.Embedding(4, 6, mask_zero=True)(tokens)
    for layer in (BahdanauAttention(4), LuongAttention("general")):
        _, weights = layer(QUERY, keys)
        np.testing.assert_array_equal(
            np_(weights) > 0, np.broadcast_to((tokens > 0)[:, None], (2, 3, 5))
        )
    _, weights = MultiHeadAttention(2, 3)(QUERY, keys, return_attention_scores=True)
    np.testing.assert_array_equal(
        np_(weights) > 0, np.broadcast_to((tokens > 0)[:, None, None], (2, 2, 3, 5))
    )


def test_causal_output_at_t_ignores_later_inputs():
    x = rand(2, 6, 4, seed=16)
    mha, sdpa = MultiHeadAttention(2, 3), ScaledDotProductAttention()
    for t in range(6):
        changed = x.copy()
        changed[:, t + 1 :] = rand(2, 5 - t, 4, seed=17 + t)
        for layer in (mha, sdpa):
            inputs = (x, x) if layer is mha else (x, x, x)
            changed_inputs = (changed, changed) if layer is mha else (changed, changed, changed)
            before = np_(layer(*inputs, use_causal_mask=True))
            after = np_(layer(*changed_inputs, use_causal_mask=True))
            np.testing.assert_allclose(after[:, : t + 1], before[:, : t + 1], rtol=1e-5, atol=1e-6)
            if t < 5:  # Without the causal mask the early outputs do change.
                assert not np.allclose(
                    np_(layer(*changed_inputs))[:, : t + 1], np_(layer(*inputs))[:, : t + 1]
                )


# ---------------------------------------------------------------------------------------------
# Bad input


BAD_INPUTS = [
    ("BahdanauAttention", lambda: BahdanauAttention(4)(QUERY, KEYS[:, 0])),
    ("BahdanauAttention", lambda: BahdanauAttention(4)(rand(2, 3, 4, 1), KEYS)),
    ("BahdanauAttention", lambda: BahdanauAttention(4)(QUERY, VALUES[:, :4], KEYS)),
    ("BahdanauAttention", lambda: BahdanauAttention(4)(QUERY, KEYS, value_mask=KEY_MASK[:, None])),
    ("BahdanauAttention", lambda: BahdanauAttention(4)(QUERY, KEYS, query_mask=KEY_MASK[:, None])),
    ("BahdanauAttention", lambda: BahdanauAttention(0)),
    ("LuongAttention", lambda: LuongAttention("dot")(QUERY, KEYS)),
    ("LuongAttention", lambda: LuongAttention("cosine")),
    ("LuongAttention", lambda: LuongAttention("concat")),
    ("LuongAttention", lambda: LuongAttention("general")(QUERY[0], KEYS)),
    ("ScaledDotProductAttention", lambda: ScaledDotProductAttention()(QUERY[0], KEYS[0], KEYS[0])),
    ("ScaledDotProductAttention", lambda: ScaledDotProductAttention()(QUERY, KEYS, KEYS)),
    ("ScaledDotProductAttention", lambda: ScaledDotProductAttention()(KEYS, VALUES[:, :4], KEYS)),
    (
        "ScaledDotProductAttention",
        lambda: ScaledDotProductAttention()(KEYS, KEYS, value_mask=KEY_MASK[0]),
    ),
    ("MultiHeadAttention", lambda: MultiHeadAttention(2, 3)(QUERY[0], KEYS)),
    ("MultiHeadAttention", lambda: MultiHeadAttention(2, 3)(QUERY, VALUES, KEYS[:, :4])),
    ("MultiHeadAttention", lambda: MultiHeadAttention(2, 3)(QUERY, KEYS, attention_mask=KEY_MASK)),
    ("MultiHeadAttention", lambda: MultiHeadAttention(2, 3)(QUERY, KEYS, value_mask=KEY_MASK[0])),
]


@pytest.mark.parametrize("index", range(len(BAD_INPUTS)))
def test_bad_input_raises_a_value_error_naming_the_layer(index):
    name, make = BAD_INPUTS[index]
    with pytest.raises(ValueError, match=f"{name}: ") as error:
        make()
    if "shape" in str(error.value):  # Shape errors name the expected shape.
        assert "(batch" in str(error.value), str(error.value)


# ---------------------------------------------------------------------------------------------
# Shared layer checks


@keras.saving.register_keras_serializable(package="tests_attention")
def scaled_dot_product_factory():
    return ScaledDotProductAttention()


def multi_head_factory():
    return MultiHeadAttention(
        num_heads=2,
        key_dim=3,
        value_dim=2,
        kernel_initializer=keras.initializers.GlorotUniform(seed=41),
        bias_initializer=keras.initializers.RandomNormal(stddev=0.1, seed=42),
    )


SDPA_INPUTS = [rand(2, 3, 6, seed=18), VALUES, KEYS]  # query, value, key

CROSS_BACKEND_CASES = {
    "bahdanau_attention": (bahdanau_factory, [QUERY, VALUES, KEYS]),
    "luong_attention": (luong_factory("concat"), [QUERY, VALUES, KEYS]),
    "scaled_dot_product_attention": (scaled_dot_product_factory, SDPA_INPUTS),
    "multi_head_attention": (multi_head_factory, [QUERY, VALUES, KEYS]),
}

# name: (factory, inputs, whether it has weights of its own, whether the mixed_bfloat16 check
# runs). That check costs seconds of tracing per model on TensorFlow, so it runs once per class
# (LuongAttention with its "concat" score, which has the most weights). Attention outputs are
# convex combinations of the values, so it trains the layer inside layer_checks.Projected.
LAYER_CHECKS = {
    "bahdanau": (bahdanau_factory, [QUERY, VALUES, KEYS], True, True),
    "luong_dot": (luong_factory("dot"), [QUERY, KEYS[..., :4]], False, False),
    "luong_general": (luong_factory("general"), [QUERY, KEYS], True, False),
    "luong_concat": (luong_factory("concat"), [QUERY, KEYS], True, True),
    "scaled_dot_product": (scaled_dot_product_factory, SDPA_INPUTS, False, True),
    "multi_head": (multi_head_factory, [QUERY, VALUES, KEYS], True, True),
}


@pytest.mark.parametrize("name", sorted(LAYER_CHECKS))
def test_layer_checks(name, tmp_path):
    factory, inputs, has_weights, bfloat16 = LAYER_CHECKS[name]
    layer_checks.assert_config_round_trip(factory, inputs)
    layer_checks.assert_saved_round_trip(factory, inputs, tmp_path / "m.keras")
    # Weight-free layers: gradients must pass through them into the projection before them.
    grad_factory = factory if has_weights else layer_checks.projected(factory, inputs)
    layer_checks.assert_gradients_reach_every_weight(grad_factory, inputs)
    if bfloat16:
        layer_checks.assert_trains_in_mixed_bfloat16(factory, inputs, steps=10, wrap=True)
