"""Recurrent kernels: a Keras GRU or LSTM run over whole sequences by the backend's fused loop.

`unmasked_sequences(layer, inputs)` returns `[outputs, *final states]` of a built Keras `GRU` or
`LSTM` run without a mask, outputs in the layer's processing order (reversed for `go_backwards`),
as `layer(inputs)` with `return_sequences` and `return_state` would. On torch it is one
`torch._VF.gru` / `torch._VF.lstm` call, the C++ loop behind `torch.nn.GRU`/`LSTM` (Keras' torch
backend uses it on CUDA only and runs a Python loop over the time steps on the CPU), on packed
sequences when `right_padded_rnn` passes the lengths. Elsewhere, and for layers the fused call
does not cover (other activations, no bias, GRU `reset_after=False`, dropout while training,
mixed precision, unbuilt), it is the layer itself.

`layers.recurrent.right_padded_rnn(..., run=unmasked_sequences)` then applies a right-padded mask
around it: `recipes.common.nmt_models` does so for the NMT encoder's GRUs on torch.
"""

import keras

from layers.recurrent import known_right_padded, right_padded_eligible, run_unmasked
from recipes.engine import backend


def unmasked_sequences(layer, inputs, initial_state=None, training=None, lengths=None):
    """[outputs (batch, time, units), *states] of `layer` (a Keras GRU or LSTM) over `inputs`.

    Args:
        layer: a `keras.layers.GRU` or `keras.layers.LSTM`.
        inputs: (batch, time, features).
        initial_state: the layer's initial state(s), or None for zeros.
        training: as for the layer (dropout makes the layer run itself).
        lengths: optional (batch,) ints, `right_padded_rnn`'s hint that only each row's first
            `lengths` outputs (processing order) are used. On torch the fused call then runs on
            packed sequences (`torch.nn.utils.rnn.pack_padded_sequence`, what `nn.GRU` users do):
            the steps past each length are skipped, forward and backward; those outputs are zeros
            and the final states are the ones after each row's length. Elsewhere it is unused.
    """
    if backend() == "torch" and _fused_on_torch(layer, training):
        return _torch_sequences(layer, inputs, initial_state, lengths)
    return run_unmasked(layer, inputs, initial_state=initial_state, training=training)


def _fused_on_torch(layer, training):
    kind = type(layer).__name__
    if kind not in ("GRU", "LSTM") or not layer.built or layer.stateful or layer.unroll:
        return False
    cell = layer.cell
    if kind == "GRU" and not cell.reset_after:
        return False
    if (training and cell.dropout) or cell.recurrent_dropout or not cell.use_bias:
        return False
    if layer.compute_dtype != "float32" or layer.variable_dtype != "float32":
        return False
    return cell.activation is keras.activations.tanh and (
        cell.recurrent_activation is keras.activations.sigmoid
    )


def _torch_sequences(layer, inputs, initial_state, lengths=None):
    import torch
    from torch.nn.utils import rnn as torch_rnn

    cell = layer.cell
    x = keras.ops.convert_to_tensor(inputs, "float32")
    if layer.go_backwards:
        x = torch.flip(x, dims=[1])
    batch, units = x.shape[0], cell.units
    if initial_state is None:
        zeros = torch.zeros(1, batch, units, dtype=x.dtype, device=x.device)
        states = [zeros] * (2 if type(layer).__name__ == "LSTM" else 1)
    else:
        given = initial_state if isinstance(initial_state, (list, tuple)) else [initial_state]
        states = [keras.ops.convert_to_tensor(s, "float32")[None] for s in given]
    train = torch.is_grad_enabled()
    gru = type(layer).__name__ == "GRU"
    params = _torch_params(layer)
    run = torch._VF.gru if gru else torch._VF.lstm
    hidden = states[0] if gru else tuple(states)
    if lengths is None:
        outputs, *final = run(x, hidden, params, True, 1, 0.0, train, False, True)
        return [outputs, *(s[0] for s in final)]
    # An empty row runs one step (its outputs are not used); packing needs lengths >= 1 on the CPU.
    lengths = keras.ops.convert_to_tensor(lengths).to("cpu", torch.int64).clamp(min=1)
    packed = torch_rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    order = packed.sorted_indices
    hidden = hidden.index_select(1, order) if gru else tuple(s.index_select(1, order) for s in hidden)
    data, *final = run(packed.data, packed.batch_sizes, hidden, params, True, 1, 0.0, train, False)
    outputs, _ = torch_rnn.pad_packed_sequence(
        packed._replace(data=data), batch_first=True, total_length=x.shape[1]
    )
    return [outputs, *(s[0].index_select(0, packed.unsorted_indices) for s in final)]


def _torch_params(layer):
    """A Keras GRU's or LSTM's weights as torch's fused call takes them: [w_ih, w_hh, b_ih, b_hh]."""
    import torch

    cell = layer.cell
    kernel, recurrent, bias = cell.kernel.value, cell.recurrent_kernel.value, cell.bias.value
    if type(layer).__name__ == "GRU":
        # Keras' gate blocks z, r, h; torch's r, z, n; bias rows: input, recurrent.
        def reorder(w):
            z, r, h = torch.chunk(w, 3, dim=-1)
            return torch.cat([r, z, h], dim=-1)

        return [reorder(kernel).T, reorder(recurrent).T, reorder(bias[0]), reorder(bias[1])]
    # LSTM: the same gate order (i, f, c, o); Keras has one bias.
    return [kernel.T, recurrent.T, bias, torch.zeros_like(bias)]


def bidirectional(forward_layer, backward_layer, inputs, mask, training=None, zero_padding=False):
    """A bidirectional encoder of two Keras GRUs over right-padded sequences, in one fused call.

    `forward_layer` and `backward_layer` (`go_backwards=True`) return sequences and states; the
    result is `(concatenate([forward outputs, flip(backward outputs)], -1), backward final state)`
    with the outputs and state Keras' masked layers give for the (batch, time) `mask`: the
    backward outputs flipped to source order, each position's state after reading from the
    sequence's end down to it; masked positions repeat the forward output at the last real token
    (zeros with `zero_output_for_mask` or `zero_padding=True`, for callers that mask those positions
    anyway) and are zeros backwards; an empty row gives zeros. On torch
    that is one `torch._VF.gru` call on packed sequences with `bidirectional=True` (what
    `nn.GRU(bidirectional=True)` users run). None where it does not apply: other backends, other
    layers, no state or sequences returned, a mask that is not right-padded or not at hand;
    the caller then runs the layers (e.g. with `layers.recurrent.masked_rnn`).
    """
    if backend() != "torch":
        return None
    for layer, backwards in ((forward_layer, False), (backward_layer, True)):
        if type(layer).__name__ != "GRU" or layer.go_backwards != backwards:
            return None
        if not (layer.return_sequences and right_padded_eligible(layer)):
            return None
        if not _fused_on_torch(layer, training) or layer.cell.units != forward_layer.cell.units:
            return None
    if not known_right_padded(mask):
        return None
    import torch
    from torch.nn.utils import rnn as torch_rnn

    x = keras.ops.convert_to_tensor(inputs, "float32")
    batch, steps, units = x.shape[0], x.shape[1], forward_layer.cell.units
    lengths = keras.ops.convert_to_tensor(mask).to(torch.int64).sum(1)  # (B,)
    # Packing needs lengths >= 1 on the CPU: an empty row runs one step, zeroed below.
    packed = torch_rnn.pack_padded_sequence(
        x, lengths.cpu().clamp(min=1), batch_first=True, enforce_sorted=False
    )
    params = _torch_params(forward_layer) + _torch_params(backward_layer)
    start = torch.zeros(2, batch, units, dtype=x.dtype, device=x.device)
    train = torch.is_grad_enabled()
    data, final = torch._VF.gru(
        packed.data, packed.batch_sizes, start, params, True, 1, 0.0, train, True
    )
    outputs, _ = torch_rnn.pad_packed_sequence(
        packed._replace(data=data), batch_first=True, total_length=steps
    )  # (B, T, 2 units), source order, zeros past each length
    backward_last = final[1].index_select(0, packed.unsorted_indices)
    if not (forward_layer.zero_output_for_mask or zero_padding):
        # Keras repeats the forward output at the last real token on the masked positions.
        forward, backward = outputs[..., :units], outputs[..., units:]
        kept = torch.arange(steps, device=x.device)[None, :, None] < lengths[:, None, None]
        last = forward[torch.arange(batch, device=x.device), (lengths - 1).clamp(min=0)]
        outputs = torch.cat([torch.where(kept, forward, last[:, None, :]), backward], -1)
    empty = lengths == 0
    if bool(empty.any()):  # the step run for packing: Keras gives zeros
        outputs = torch.where(empty[:, None, None], 0.0, outputs)
        backward_last = torch.where(empty[:, None], 0.0, backward_last)
    return outputs, backward_last
