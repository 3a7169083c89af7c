"""Eager torch kernels: `layers` and Keras layers' forward passes in torch's own ops.

On torch every training step runs eagerly, so each `keras.ops` call and each `Layer.__call__`
costs its Python on every step (a few to 30 microseconds per op, about a third of a millisecond
per layer call on the CPU), and each op adds a node to the backward pass. TensorFlow and JAX trace a
step once, so there these functions are the layers themselves. On torch they run the same
arithmetic, in the layers' order, as plain torch calls on the layers' own variables (fused bias
additions with `addmm`, views instead of copies), so outputs and gradients equal the layers' to
float32 rounding (tests/recipes/engine/test_kernels.py):

- `encoder_block(block, x, mask, training)` and `decoder_block(block, y, memory, memory_mask,
  training)`: what calling a built `layers.TransformerEncoderBlock` / `TransformerDecoderBlock`
  returns (the decoder block with its encoder-decoder attention weights), without the ~60 op
  dispatches and sub-layer calls of a block;
- `calls(*layers)`: for each layer, a callable equal to its `call` (no Keras mask is attached to
  the outputs): kernels for `keras.layers.Dense`, `Embedding`, `GRUCell` with
  `reset_after=False`, `layers.BahdanauAttention` for one query with projected keys,
  `layers.Maxout` and `layers.PositionalEncoding` (its table computed once per length), and the
  layer called directly (`layers._direct`) for any other.

They fall back to the layers for dropout while training, other dtype policies, inputs that carry
Keras masks and quantized or LoRA Dense layers.
"""

import math

import keras

from layers._direct import direct
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
    return _norm(block.output_norm, x + _dense(block.ff_output)(_dense(block.ff_hidden)(x)))


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


# ---------------------------------------------------------------------------------------------
# Single layers


def calls(*layers):
    """For each built layer, a torch kernel equal to `layer.call` where there is one (see the module
    docstring), else `layers._direct.direct(layer)`; the layers themselves off torch."""
    return tuple(_kernel(layer) or direct(layer) for layer in layers)


def run(layer, *args, **kwargs):
    """`calls(layer)[0](*args, **kwargs)`."""
    return calls(layer)[0](*args, **kwargs)


_KERNELS = {}  # class name -> kernel factory (layer -> call), filled below


def _plain(layer):
    """Built, float32, nothing that `Layer.__call__` or a quantized kernel would add."""
    return (
        layer.built
        and layer.dtype_policy.name == "float32"
        and layer.activity_regularizer is None
        and not getattr(layer, "lora_enabled", False)
        and not getattr(layer, "quantization_mode", None)
    )


def _kernel(layer):
    factory = _KERNELS.get(type(layer).__name__)
    if backend() != "torch" or factory is None or not _plain(layer):
        return None
    return factory(layer)


def _activation(function):
    """A Keras activation as torch's own function where they are the same op."""
    import torch

    known = {
        keras.activations.sigmoid: torch.sigmoid,
        keras.activations.tanh: torch.tanh,
        keras.activations.relu: torch.relu,
        keras.activations.linear: None,
    }
    return known.get(function, function)


def _dense(layer):
    activation = _activation(layer.activation)
    bias = layer.bias.value if layer.use_bias else None

    def call(inputs):
        y = _linear(inputs, layer.kernel.value, bias)
        return y if activation is None else activation(y)

    return call


def _gru_cell(cell):
    """Keras' GRUCell (implementation 2, reset gate before the recurrent product)."""
    if cell.reset_after or cell.dropout or cell.recurrent_dropout or cell.implementation != 2:
        return None
    activation = _activation(cell.activation) or (lambda x: x)
    recurrent_activation = _activation(cell.recurrent_activation) or (lambda x: x)
    units = cell.units

    def call(inputs, states, training=False):
        previous = states[0] if isinstance(states, (list, tuple)) else states
        kernel, recurrent = cell.kernel.value, cell.recurrent_kernel.value
        x = _linear(inputs, kernel, cell.bias.value if cell.use_bias else None)
        x_z, x_r, x_h = x[:, :units], x[:, units : 2 * units], x[:, 2 * units :]
        inner = previous @ recurrent[:, : 2 * units]
        z = recurrent_activation(x_z + inner[:, :units])
        r = recurrent_activation(x_r + inner[:, units:])
        candidate = activation(x_h + (r * previous) @ recurrent[:, 2 * units :])
        h = z * previous + (1 - z) * candidate
        return h, [h] if isinstance(states, (list, tuple)) else h

    return call


def _maxout(layer):
    import torch

    bias = layer.bias.value if layer.bias is not None else None

    def call(inputs):
        z = _linear(inputs, layer.kernel.value, bias)
        return torch.amax(z.view(*z.shape[:-1], layer.units, layer.pieces), dim=-1)

    return call


def _bahdanau(layer):
    """One query (B, Dq) against projected keys: the decoder step of A 7.8.2."""
    import torch

    def call(query, value, value_mask=None, projected_key=None, **kwargs):
        if kwargs or projected_key is None or len(query.shape) != 2:
            return layer.call(query, value, value_mask=value_mask, projected_key=projected_key, **kwargs)
        projected_query = query @ layer.query_kernel.value  # (B, units)
        hidden = torch.tanh(projected_query[:, None, :] + projected_key)  # (B, Tk, units)
        scores = hidden @ layer.score_vector.value  # (B, Tk)
        if value_mask is None:
            weights = torch.softmax(scores, dim=-1)
        else:
            mask = keras.ops.convert_to_tensor(value_mask).bool()
            weights = torch.softmax(scores.masked_fill(~mask, _NEGATIVE), dim=-1)
            weights = weights.masked_fill(~mask, 0.0)
        context = (weights[:, None, :] @ value)[:, 0]  # (B, value_dim)
        return context, weights

    return call


def _embedding(layer):
    import torch.nn.functional as F

    def call(inputs):
        ids = keras.ops.convert_to_tensor(inputs)
        if keras.backend.standardize_dtype(ids.dtype) not in ("int32", "int64"):
            return layer.call(inputs)
        return F.embedding(ids, layer.embeddings.value)

    return call


_TABLES = {}  # (max_wavelength, length, depth, device) -> PositionalEncoding's float32 table


def _positional_encoding(layer):
    def call(inputs):
        length, depth = inputs.shape[1], inputs.shape[2]
        key = (layer.max_wavelength, length, depth, str(inputs.device))
        if key not in _TABLES:
            _TABLES[key] = keras.ops.convert_to_tensor(layer.encoding(length, depth)).detach()
        return inputs + _TABLES[key].to(inputs.dtype)

    return call


_KERNELS.update(
    Dense=_dense,
    Embedding=_embedding,
    GRUCell=_gru_cell,
    Maxout=_maxout,
    BahdanauAttention=_bahdanau,
    PositionalEncoding=_positional_encoding,
)
