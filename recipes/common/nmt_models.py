"""The translation models of `nmt_attention` and `transformer`, registered for `.keras` saving.

They live apart from the recipes so that `python -m recipes.nmt_attention --help` stays free of Keras;
import this module (or call the recipes' `load_model`) before `keras.saving.load_model`.
Both implement the decoding interface of `recipes.common.translation`: `encode(source) -> (memory,
states)` and `decode_step(token, states, memory) -> (logits, states, weights)`.
"""

import math

import keras

from layers import (
    BahdanauAttention,
    LuongAttention,
    Maxout,
    PositionalEncoding,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
)
from layers.recurrent import masked_rnn
from recipes.common.translation import ATTENTIONS
from recipes.engine import kernels, rnn


class _TranslationModel(keras.Model):
    """What both models keep in their config: the vocabularies, the tokenizer and the fixed lengths,
    so that a reloaded model translates text on its own (`recipes.common.translation.vocabularies`)."""

    def __init__(
        self, source_vocabulary, target_vocabulary, tokenizer, source_length, target_length, **kwargs
    ):
        super().__init__(**kwargs)
        self.source_vocabulary, self.target_vocabulary = list(source_vocabulary), list(target_vocabulary)
        self.tokenizer = tokenizer
        self.source_length, self.target_length = source_length, target_length

    def get_config(self):
        config = super().get_config()
        config.update(
            source_vocabulary=self.source_vocabulary,
            target_vocabulary=self.target_vocabulary,
            tokenizer=self.tokenizer,
            source_length=self.source_length,
            target_length=self.target_length,
        )
        return config


@keras.saving.register_keras_serializable(package="recipes")
class AttentionNMT(_TranslationModel):
    """Bidirectional GRU encoder + attention GRU decoder (A 7.8): call([source, decoder_input]).

    Encoder (both decoders): source embedding -> a forward and a backward GRU of N_h units; the
    annotation of source position j is h_j = [->h_j ; <-h_j] (2 N_h).

    Bahdanau decoder (`attention="bahdanau"`, A 7.8.2), the notes' equations with decoder state s (N_h):

        s_0   = tanh(<-h_1 W_s + b_s)
        e_ij  = v_a^T tanh(s_(i-1) W_q + h_j U_a + b_a),  alpha_i = softmax(e_i)
        c_i   = sum_j alpha_ij h_j
        s_i   = GRU([y_(i-1) ; c_i], s_(i-1))          (the notes' z, r, s~ equations: reset before U)
        t~_i  = s_(i-1) U_o + y_(i-1) V_o + c_i C_o + b_o,   t_i = maxout(t~_i) (N_m units of 2 pieces)
        logits = t_i W_o + b_w

    Luong decoder (`"luong-dot"`, `"luong-general"`, `"luong-concat"`, A 7.8.3): global attention with
    input feeding, decoder state h (2 N_h, so that the dot score fits the annotations):

        h_0 = tanh(<-h_1 W_s + b_s),   h~_0 = 0
        h_i = GRU([y_(i-1) ; h~_(i-1)], h_(i-1))
        score(h_i, h_j) = h_i^T h_j | h_i^T W_a h_j | v_a^T tanh(W_a [h_i ; h_j]),  c_i as above
        h~_i = tanh([c_i ; h_i] W_c),   logits = h~_i W_s'

    `source_vocabulary`/`target_vocabulary` (token lists) and the tokenizer travel in the config, so
    a reloaded model translates text on its own.
    """

    fused_recurrence = True  # False: the encoder's GRUs always take Keras' masked path (benchmarks)

    def __init__(
        self,
        source_vocabulary,
        target_vocabulary,
        tokenizer="characters",
        source_length=32,
        target_length=12,
        attention="bahdanau",
        embedding=32,
        units=64,
        attention_units=64,
        maxout_units=64,
        **kwargs,
    ):
        super().__init__(
            source_vocabulary, target_vocabulary, tokenizer, source_length, target_length, **kwargs
        )
        if attention not in ATTENTIONS:
            raise ValueError(f"AttentionNMT: attention must be one of {ATTENTIONS}; got {attention!r}")
        self.attention_name, self.embedding_size, self.units = attention, embedding, units
        self.attention_units, self.maxout_units = attention_units, maxout_units
        L = keras.layers
        n_source, n_target = len(self.source_vocabulary), len(self.target_vocabulary)
        self.source_embedding = L.Embedding(n_source, embedding, mask_zero=True, name="source_embedding")
        self.forward_gru = L.GRU(units, return_sequences=True, return_state=True, name="forward_gru")
        self.backward_gru = L.GRU(
            units, return_sequences=True, return_state=True, go_backwards=True, name="backward_gru"
        )
        self.target_embedding = L.Embedding(n_target, embedding, name="target_embedding")
        bahdanau = attention == "bahdanau"
        self.decoder_units = units if bahdanau else 2 * units
        self.initial_state = L.Dense(self.decoder_units, activation="tanh", name="initial_state")  # W_s
        self.cell = L.GRUCell(self.decoder_units, reset_after=False, name="decoder_gru")
        if bahdanau:
            self.attention = BahdanauAttention(attention_units, name="attention")
            self.readout = Maxout(maxout_units, pieces=2, name="maxout")  # U_o, V_o, C_o, b_o
        else:
            score = attention.split("-")[1]
            units_arg = attention_units if score == "concat" else None
            self.attention = LuongAttention(score, units=units_arg, name="attention")
            self.readout = L.Dense(self.decoder_units, "tanh", use_bias=False, name="attentional")  # W_c
        self.logits = L.Dense(n_target, name="logits")  # W_o, b_w

    def build(self, input_shape=None):
        batch, e, h, d = None, self.embedding_size, self.units, self.decoder_units
        annotations = (batch, self.source_length, 2 * h)
        self.source_embedding.build((batch, self.source_length))
        self.forward_gru.build((batch, self.source_length, e))
        self.backward_gru.build((batch, self.source_length, e))
        self.target_embedding.build((batch, self.target_length))
        self.initial_state.build((batch, h))
        if self.attention_name == "bahdanau":
            self.attention.build(query_shape=(batch, d), value_shape=annotations)
            self.cell.build((batch, e + 2 * h))
            self.readout.build((batch, d + e + 2 * h))
            self.logits.build((batch, self.maxout_units))
        else:
            self.cell.build((batch, e + d))
            self.attention.build(query_shape=(batch, d), value_shape=annotations)
            self.readout.build((batch, 2 * h + d))
            self.logits.build((batch, d))
        self.built = True

    def encode(self, source, training=False):
        """source ids (B, S) -> memory [annotations (B, S, 2N_h), mask, projected keys], states."""
        ops = keras.ops
        # Padding is masked: the GRUs skip it and the attention gives it exactly zero weight.
        mask = ops.not_equal(source, 0)  # (B, S)
        # Layers as torch kernels on torch (engine.kernels; the masks are passed explicitly).
        x = kernels.run(self.source_embedding, source)  # (B, S, N_e)
        # On torch, right-padded batches run through torch's fused GRU, both directions in one
        # call on packed sequences (engine.rnn.bidirectional), or one call each with the mask
        # applied outside (layers.recurrent.right_padded_rnn), equal to Keras' masked GRUs: Keras
        # runs a masked GRU one cell call per time step.
        fused = self.fused_recurrence and keras.backend.backend() == "torch"
        # The attention gives padding zero weight: its annotations may be zeros (zero_padding).
        both = fused and rnn.bidirectional(
            self.forward_gru, self.backward_gru, x, mask, training, zero_padding=True
        )
        if both:
            annotations, backward_last = both  # (B, S, 2N_h), (B, N_h)
        else:
            recur = dict(training=training, fused=fused, run=rnn.unmasked_sequences)
            forward, _ = masked_rnn(self.forward_gru, x, mask, **recur)  # (B, S, N_h)
            backward, backward_last = masked_rnn(self.backward_gru, x, mask, **recur)
            annotations = ops.concatenate([forward, ops.flip(backward, axis=1)], axis=-1)
        # <-h_1: the backward GRU ends at position 1.
        state = kernels.run(self.initial_state, backward_last)
        states = [state] if self.attention_name == "bahdanau" else [state, ops.zeros_like(state)]
        # The keys' share of the scores (h_j U_a + b_a for Bahdanau), once for every decoder step.
        return [annotations, mask, self.attention.project_key(annotations)], states

    def _step_layers(self):
        """(attention, cell, readout, logits) as torch kernels on torch (`engine.kernels.calls`;
        the decoder loop's inputs are the model's own float32 tensors, without Keras masks)."""
        return kernels.calls(self.attention, self.cell, self.readout, self.logits)

    def _attend(self, attention, query, memory):
        """(context (B, 2N_h), weights (B, S)) of one decoder state (B, d) over the annotations."""
        annotations, mask, projected_key = memory
        return attention(query=query, value=annotations, value_mask=mask, projected_key=projected_key)

    def _step(self, embedded, states, memory, training=False, layers=None):
        # Bahdanau scores with the previous state s_(i-1); Luong with the current one h_i.
        attention, cell, readout, logits = layers or self._step_layers()
        if self.attention_name == "bahdanau":
            (previous,) = states
            context, weights = self._attend(attention, previous, memory)
            state, _ = cell(kernels.concatenate([embedded, context], -1), [previous], training=training)
            t = readout(kernels.concatenate([previous, embedded, context], -1))
            return logits(t), [state], weights
        previous, attentional = states
        state, _ = cell(kernels.concatenate([embedded, attentional], -1), [previous], training=training)
        context, weights = self._attend(attention, state, memory)
        attentional = readout(kernels.concatenate([context, state], -1))
        return logits(attentional), [state, attentional], weights

    def decode_step(self, token, states, memory):
        """The previous token (B,) -> (logits (B, V), new states, attention weights (B, S))."""
        return self._step(kernels.run(self.target_embedding, token), states, memory)

    def call(self, inputs, training=False):
        source, decoder_input = inputs
        memory, states = self.encode(source, training=training)
        embedded = kernels.run(self.target_embedding, decoder_input)
        layers = self._step_layers()
        logits = []
        for t in range(decoder_input.shape[1]):  # teacher forcing, unrolled over the fixed length
            step_logits, states, _ = self._step(
                embedded[:, t], states, memory, training=training, layers=layers
            )
            logits.append(step_logits)
        return kernels.stack(logits, axis=1)

    def get_config(self):
        config = super().get_config()
        config.update(
            attention=self.attention_name,
            embedding=self.embedding_size,
            units=self.units,
            attention_units=self.attention_units,
            maxout_units=self.maxout_units,
        )
        return config


@keras.saving.register_keras_serializable(package="recipes")
class TransformerNMT(_TranslationModel):
    """Transformer encoder-decoder (Vaswani et al. 2017) from `layers`; call([source, decoder_input]).

    The steps of B 5.2 and A 7.8.5 (figure 40):

    1. tokens (with <eos>) -> embedding x sqrt(d_model) + sinusoidal positions
       PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(...);
    2. encoder blocks: multi-head self-attention (padding masked) and the feed-forward net
       FFN(x) = max(0, x W_1 + b_1) W_2 + b_2, each with a residual connection and LayerNorm
       (post-norm, `layers.TransformerEncoderBlock`);
    3. decoder blocks on the target shifted right (<sos> first): causal self-attention (-1e9 on
       future positions before the softmax), encoder-decoder attention (queries from the decoder,
       keys and values from the encoder), the feed-forward net (`layers.TransformerDecoderBlock`);
    4. a linear layer to the vocabulary; softmax cross-entropy over the real target tokens.

    For decoding, the state is the fixed-length buffer of the tokens fed so far and the position to fill:
    every step writes the previous token at its position, runs the decoder over the whole buffer
    (the causal mask keeps later, still empty positions out of earlier ones) and reads the logits at
    that position, so a compiled step sees one shape from the first token to the last.
    """

    def __init__(
        self,
        source_vocabulary,
        target_vocabulary,
        tokenizer="characters",
        source_length=32,
        target_length=12,
        d_model=64,
        num_heads=4,
        ff_dim=128,
        layers=2,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(
            source_vocabulary, target_vocabulary, tokenizer, source_length, target_length, **kwargs
        )
        self.d_model, self.num_heads, self.ff_dim = d_model, num_heads, ff_dim
        self.num_layers, self.dropout, self.seed = layers, dropout, seed
        L = keras.layers
        self.source_embedding = L.Embedding(
            len(self.source_vocabulary), d_model, name="source_embedding"
        )
        self.target_embedding = L.Embedding(
            len(self.target_vocabulary), d_model, name="target_embedding"
        )
        self.positions = PositionalEncoding(name="positions")
        block_args = dict(num_heads=num_heads, ff_dim=ff_dim, dropout=dropout)
        self.encoder_blocks = [
            TransformerEncoderBlock(
                **block_args, seed=None if seed is None else seed + 10 * i, name=f"encoder_{i}"
            )
            for i in range(layers)
        ]
        self.decoder_blocks = [
            TransformerDecoderBlock(
                **block_args, seed=None if seed is None else seed + 10 * i + 5, name=f"decoder_{i}"
            )
            for i in range(layers)
        ]
        self.logits = L.Dense(len(self.target_vocabulary), name="logits")

    def build(self, input_shape=None):
        source = (None, self.source_length, self.d_model)
        target = (None, self.target_length, self.d_model)
        self.source_embedding.build((None, self.source_length))
        self.target_embedding.build((None, self.target_length))
        self.positions.build(source)
        for block in self.encoder_blocks:
            block.build(source)
        for block in self.decoder_blocks:
            block.build(target, source)
        self.logits.build(target)
        self.built = True

    def _embed(self, embedding, ids):
        embed, positions = kernels.calls(embedding, self.positions)  # torch kernels on torch
        # sqrt(d_model) rounds to the same float32 from Python as from keras.ops.sqrt
        return positions(embed(ids) * math.sqrt(self.d_model))

    def _memory(self, source, training):
        """[encoder outputs (B, S, d), mask (B, S)]."""
        mask = keras.ops.not_equal(source, 0)  # (B, S)
        x = self._embed(self.source_embedding, source)  # (B, S, d)
        for block in self.encoder_blocks:  # in torch's own ops on torch (engine.kernels)
            x = kernels.encoder_block(block, x, mask, training)  # (B, S, d)
        return [x, mask]

    def encode(self, source, training=False):
        """source ids (B, S) -> memory [encoder outputs (B, S, d), mask (B, S)], decoding states."""
        batch = keras.ops.shape(source)[0]
        buffer = keras.ops.zeros((batch, self.target_length), "int32")
        position = keras.ops.zeros((batch,), "int32")
        return self._memory(source, training), [buffer, position]

    def _decode(self, decoder_input, memory, training=False, weights=True):
        """(logits (B, T, V), the last block's encoder-decoder weights (B, heads, T, S) or None
        without `weights`)."""
        outputs, mask = memory
        y = self._embed(self.target_embedding, decoder_input)  # (B, T, d)
        last, block_weights = len(self.decoder_blocks) - 1, None
        for i, block in enumerate(self.decoder_blocks):  # torch's own ops on torch (engine.kernels)
            y, block_weights = kernels.decoder_block(
                block, y, outputs, mask, training, weights=weights and i == last
            )
        return kernels.run(self.logits, y), block_weights if weights else None

    def decode_step(self, token, states, memory):
        """The previous token (B,) -> (logits (B, V), new states, attention weights (B, S)).

        The weights are the last decoder block's encoder-decoder attention, averaged over heads.
        """
        ops = keras.ops
        buffer, position = states
        here = ops.equal(
            ops.expand_dims(ops.arange(self.target_length, dtype="int32"), 0), position[:, None]
        )
        buffer = ops.where(here, ops.cast(token, "int32")[:, None], buffer)
        logits, weights = self._decode(buffer, memory)
        pick = ops.cast(here, logits.dtype)[..., None]  # (B, T, 1): the row at `position`
        step_logits = ops.sum(logits * pick, axis=1)
        step_weights = ops.sum(ops.mean(weights, axis=1) * pick, axis=1)
        return step_logits, [buffer, position + 1], step_weights

    def call(self, inputs, training=False):
        source, decoder_input = inputs
        memory = self._memory(source, training)
        return self._decode(decoder_input, memory, training=training, weights=False)[0]

    def get_config(self):
        config = super().get_config()
        config.update(
            d_model=self.d_model,
            num_heads=self.num_heads,
            ff_dim=self.ff_dim,
            layers=self.num_layers,
            dropout=self.dropout,
            seed=self.seed,
        )
        return config


def load_model(path):
    """A `model.keras` saved by `nmt_attention` or `transformer` (vocabularies included), on any
    backend; importing this module registers both model classes."""
    return keras.saving.load_model(path)
