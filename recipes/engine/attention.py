"""Transformer-block kernels: a `layers` Transformer block's forward pass in the backend's own ops.

`encoder_block(block, x, mask, training)` and `decoder_block(block, y, memory, memory_mask,
training)` return what calling the built `layers.TransformerEncoderBlock` /
`TransformerDecoderBlock` returns (the decoder block with its encoder-decoder attention weights,
`return_attention_scores=True`). On torch they run the block's arithmetic as plain torch calls on
its own variables: fused bias additions (`addmm`), the heads as views, one masked softmax, and none
of the ~60 `keras.ops` dispatches and sub-layer calls of a block, each a few to 30 microseconds of
Python on every eager step. The order of the arithmetic is the layers', so the outputs and gradients
equal theirs to float32 rounding (tests/recipes/engine/test_attention.py). Elsewhere (TensorFlow and
JAX trace a step once, so the dispatch costs nothing per step), for dropout while training, other
dtype policies, inputs that carry Keras masks and quantized or LoRA feed-forward layers, it is the
block.
"""

import math

import keras

from recipes.engine import backend

_NEGATIVE = -1e9  # layers.attention's masked score in float32


def encoder_block(block, x, mask=None, training=None):
    """block(x, mask=mask, training=training): (batch, S, d) -> (batch, S, d)."""
    if _fused(block, training, x):
        return _torch_encoder(block, x, mask)
    return block(x, mask=mask, training=training)


def decoder_block(block, y, memory, memory_mask=None, training=None):
    """block(y, memory, encoder_outputs_mask=memory_mask, return_attention_scores=True, training=...)
    -> (outputs (batch, T, d), encoder-decoder weights (batch, heads, T, S)); causal self-attention."""
    if _fused(block, training, y, memory):
        return _torch_decoder(block, y, memory, memory_mask)
    return block(
        y, memory, encoder_outputs_mask=memory_mask, return_attention_scores=True, training=training
    )


def _fused(block, training, *inputs):
    if backend() != "torch" or not block.built or (training and block.dropout > 0):
        return False
    if block.dtype_policy.name != "float32" or block.activity_regularizer is not None:
        return False
    dense = (block.ff_hidden, block.ff_output)
    if any(layer.lora_enabled or layer.quantization_mode for layer in dense):
        return False  # their kernels are not plain variables
    return all(
        keras.ops.is_tensor(x)
        and getattr(x, "_keras_mask", None) is None
        and keras.backend.standardize_dtype(x.dtype) == "float32"
        for x in inputs
    )


def _linear(x, kernel, bias):
    """x (..., n) @ kernel (n, m) + bias, one addmm over the flattened leading axes."""
    import torch

    flat = x.reshape(-1, x.shape[-1])
    out = flat @ kernel if bias is None else torch.addmm(bias, flat, kernel)
    return out.view(*x.shape[:-1], kernel.shape[-1])


def _heads(attention, x, name):
    """(B, T, D) -> (B, H, T, head_dim): layers.attention.MultiHeadAttention._project."""
    kernel = getattr(attention, f"{name}_kernel").value
    features, heads, head_dim = kernel.shape
    bias = getattr(attention, f"{name}_bias").value.reshape(-1) if attention.use_bias else None
    y = _linear(x, kernel.reshape(features, heads * head_dim), bias)
    return y.view(*x.shape[:-1], heads, head_dim).transpose(1, 2)


def _attention(attention, query, value, mask):
    """MultiHeadAttention(query, value) with a boolean `mask` broadcastable to (B, H, Tq, Tv):
    (output (B, Tq, D_out), weights (B, H, Tq, Tv))."""
    import torch

    q = _heads(attention, query, "query")
    v = _heads(attention, value, "value")
    k = _heads(attention, value, "key")
    q = q * (1.0 / math.sqrt(q.shape[-1]))
    scores = q @ k.transpose(-1, -2)
    if mask is None:
        weights = torch.softmax(scores, dim=-1)
    else:
        weights = torch.softmax(scores.masked_fill(~mask, _NEGATIVE), dim=-1).masked_fill(~mask, 0.0)
    heads = (weights @ v).transpose(1, 2)  # (B, Tq, H, value_dim)
    heads = heads.reshape(*heads.shape[:2], -1)
    kernel = attention.output_kernel.value
    bias = attention.output_bias.value if attention.use_bias else None
    return _linear(heads, kernel.reshape(-1, kernel.shape[-1]), bias), weights


def _norm(layer, x):
    import torch.nn.functional as F

    return F.layer_norm(x, x.shape[-1:], layer.gamma.value, layer.beta.value, layer.epsilon)


def _feed_forward(block, x):
    hidden, output = block.ff_hidden, block.ff_output
    h = hidden.activation(_linear(x, hidden.kernel.value, hidden.bias.value))
    return _norm(block.output_norm, x + _linear(h, output.kernel.value, output.bias.value))


def _padding(mask):
    """(B, S) padding mask -> (B, 1, 1, S) boolean, or None."""
    return None if mask is None else keras.ops.convert_to_tensor(mask).bool()[:, None, None, :]


def _torch_encoder(block, x, mask):
    attended, _ = _attention(block.self_attention, x, x, _padding(mask))
    hidden = _norm(block.attention_norm, x + attended)
    return _feed_forward(block, hidden)


def _torch_decoder(block, y, memory, memory_mask):
    import torch

    length = y.shape[1]
    causal = torch.ones(length, length, dtype=torch.bool, device=y.device).tril()
    attended, _ = _attention(block.self_attention, y, y, causal)
    hidden = _norm(block.self_attention_norm, y + attended)
    attended, weights = _attention(block.cross_attention, hidden, memory, _padding(memory_mask))
    hidden = _norm(block.cross_attention_norm, hidden + attended)
    return _feed_forward(block, hidden), weights
