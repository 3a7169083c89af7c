"""RNN basics: cells, states, stacks, embeddings, masks, sequence loss.

Reproduces the TensorFlow-1 walk-through "RNN with TensorFlow" of A 7.5 and the RNN basics of B 4.1
in Keras 3, printing what the notes print and checking the facts they state:

1. 'hello' (A 7.5.1-7.5.2): SimpleRNN, LSTM and GRU states, and their parameter counts;
2. a deep LSTM (A 7.5.3): seven stacked cells;
3. the embedding lookup (A 7.5.6): exactly the notes' printed (3, 5, 6) array;
4. variable lengths (A 7.5.5, B 4.3.2): masks, and PyTorch's packed-sequence bookkeeping;
5. the sequence loss (A 7.5.4): TF1's `sequence_loss` against Keras' sample-weighted mean;
6. B 4.1: SimpleRNN shapes (B, L, input) -> (B, L, hidden) and a two-layer stack.

The notes' printed states come from a random initialisation and cannot be reproduced; the
relations between them (the state is the last output, ...) and every deterministic number can.

    python -m recipes.rnn_basics
    KERAS_BACKEND=torch python -m recipes.rnn_basics --seed 1

Measured: the notes' numbers and relations hold on all three backends (parameters 14 / 56 / 48,
136 and 992; batch_sizes [5,5,5,5,4,4,4,4,3,3,3,1,1]), in 6-20 s a run (2 CPU cores); no training.

Outputs (under --out, default runs/rnn_basics): masks.png (the variable-length outputs with the
masked steps), summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "A 7.5, B 4.1"

HELLO = {"h": 0, "e": 1, "l": 2, "o": 3}
HELLO_BATCH = ("hello", "eolll", "lleel")
EMBEDDING_IDS = [[0, 3, 1, 2, 4], [1, 3, 1, 2, 3], [2, 4, 0, 2, 4]]
# The notes' printed lookup of EMBEDDING_IDS in arange(30).reshape(5, 6): row i is 6i .. 6i + 5.
EMBEDDING_PRINTED = [
    [[0, 1, 2, 3, 4, 5], [18, 19, 20, 21, 22, 23], [6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 16, 17],
     [24, 25, 26, 27, 28, 29]],
    [[6, 7, 8, 9, 10, 11], [18, 19, 20, 21, 22, 23], [6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 16, 17],
     [18, 19, 20, 21, 22, 23]],
    [[12, 13, 14, 15, 16, 17], [24, 25, 26, 27, 28, 29], [0, 1, 2, 3, 4, 5], [12, 13, 14, 15, 16, 17],
     [24, 25, 26, 27, 28, 29]],
]  # fmt: skip
LENGTHS = [5, 3, 4]
# PyTorch's pack_padded_sequence example of the notes.
PACKING_WORDS = ("hello world", "midnight", "calculation", "path", "short circuit")
# SimpleRNN: TF1's (2 + 4) x 2 kernel + 2 bias; GRU: Keras' default reset_after=True has two bias
# rows (42 without); the stacks: three LSTM(2) on 4 inputs, seven LSTM(4) on 3 inputs.
PARAMETERS = {"simple_rnn": 14, "lstm": 56, "gru": 48, "lstm_stack3": 136, "lstm_stack7": 992}


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(3, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    quick: bool = cli.option(False, "the same run (it takes a second or two)")


# ---- the computations --------------------------------------------------------------------------


def hello_batch():
    """The notes' one-hot batch [hello, eolll, lleel] of h, e, l, o, shape (3, 5, 4)."""
    eye = np.eye(len(HELLO), dtype="float32")
    return np.stack([eye[[HELLO[c] for c in word]] for word in HELLO_BATCH])


def run_cell(kind, inputs, units=2, seed=0):
    """Runs a 2-unit SimpleRNN / LSTM / GRU with sequences and state; returns outputs, states, params."""
    layer_class = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM}.get(
        kind, keras.layers.GRU
    )
    # The notes' `return_sequences=True, return_state=True`: outputs (3, 5, 2) and the state h.
    layer = layer_class(units, return_sequences=True, return_state=True, seed=seed)
    outputs, *states = layer(inputs)
    return (
        keras.ops.convert_to_numpy(outputs),
        [keras.ops.convert_to_numpy(s) for s in states],
        (layer.count_params()),
    )


def stacked_lstm(inputs, layers, units, seed=0):
    """`layers` LSTM(units) cells in one StackedRNNCells; returns outputs, [(c, h)], params."""
    cells = [keras.layers.LSTMCell(units, seed=seed + i) for i in range(layers)]
    rnn = keras.layers.RNN(keras.layers.StackedRNNCells(cells), return_sequences=True, return_state=True)
    outputs, *states = rnn(inputs)
    # One [h, c] per cell in Keras; the notes' LSTMStateTuple is (c, h).
    pairs = [(keras.ops.convert_to_numpy(c), keras.ops.convert_to_numpy(h)) for h, c in states]
    return keras.ops.convert_to_numpy(outputs), pairs, rnn.count_params()


def embedding_lookup(ids=EMBEDDING_IDS):
    """Embedding(5, 6) with the notes' arange(30) table, and the same lookup with ops.take."""
    table = np.arange(30, dtype="float32").reshape(5, 6)
    layer = keras.layers.Embedding(5, 6, embeddings_initializer=keras.initializers.Constant(table))
    ids = np.asarray(ids, "int32")
    by_layer = keras.ops.convert_to_numpy(layer(ids))
    by_take = keras.ops.convert_to_numpy(keras.ops.take(table, ids, axis=0))
    return by_layer, by_take


def variable_lengths(inputs, lengths, units=2, seed=0):
    """A masked SimpleRNN: padded outputs, final states, and each row run alone."""
    mask = np.arange(inputs.shape[1])[None, :] < np.asarray(lengths)[:, None]
    # zero_output_for_mask: outputs past each length are zero, as TF1's dynamic_rnn with lengths.
    rnn = keras.layers.SimpleRNN(
        units, return_sequences=True, return_state=True, zero_output_for_mask=True, seed=seed
    )
    outputs, state = rnn(inputs, mask=mask)
    alone = [
        keras.ops.convert_to_numpy(rnn(inputs[i : i + 1, :length])[1])[0]
        for i, length in enumerate(lengths)
    ]
    return keras.ops.convert_to_numpy(outputs), keras.ops.convert_to_numpy(state), np.stack(alone), mask


def packed_batch_sizes(lengths):
    """PyTorch's PackedSequence.batch_sizes: how many sequences are still running at each step."""
    lengths = np.asarray(lengths)
    return [int((lengths > t).sum()) for t in range(int(lengths.max()))]


def sequence_loss(logits, targets, weights):
    """TF1's sequence_loss: the weighted mean cross-entropy, sum(w * ce) / sum(w)."""
    ce = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    weights = keras.ops.convert_to_tensor(weights, ce.dtype)
    return keras.ops.sum(ce * weights) / keras.ops.sum(weights)


def sequence_loss_numpy(logits, targets, weights):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    ce = -np.take_along_axis(log_softmax, targets[..., None], axis=-1)[..., 0]
    return float((weights * ce).sum() / weights.sum())


def plot_masks(path, outputs, mask, lengths):
    plt = plots.pyplot()
    fig, axes = plt.subplots(1, len(lengths), figsize=(3.2 * len(lengths), 2.6), sharey=True)
    for row, ax in enumerate(axes):
        ax.imshow(outputs[row].T, cmap="coolwarm", vmin=-1, vmax=1, aspect="auto")
        for t in np.flatnonzero(~mask[row]):
            ax.add_patch(plt.Rectangle((t - 0.5, -0.5), 1, outputs.shape[2], color="0.7", alpha=0.8))
        ax.set(title=f"row {row}: length {lengths[row]}", xlabel="time step")
    axes[0].set_ylabel("unit")
    fig.suptitle("masked SimpleRNN outputs (grey: past the length, all zero)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- the six printed sections ------------------------------------------------------------------


def report_hello(x, config, summary):
    """1. SimpleRNN, LSTM and GRU with 2 units on 'hello': the last output is the returned state h.

    The notes' "the state is the collection of the last outputs"; the LSTM's cell state c is a
    different array.
    """
    print(f"1. 'hello' batch {HELLO_BATCH}: one-hot, shape {x.shape}")
    for kind in ("simple_rnn", "lstm", "gru"):
        outputs, states, params = run_cell(kind, x, seed=config.seed)
        # (3, 5, 2): every step's output; states[0]: h (3, 2)
        h = states[0]
        print(f"   {kind}: outputs {outputs.shape}, {params} parameters; state h ==")
        print(f"   last output: {np.allclose(h, outputs[:, -1], atol=1e-6)}\n{h}")
        if kind == "lstm":
            print(f"   LSTM cell state c (not the output):\n{states[1]}")
        summary["parameters"][kind] = params
        summary[f"{kind}_state_is_last_output"] = bool(np.allclose(h, outputs[:, -1], atol=1e-6))
    _, pairs, params = stacked_lstm(x, 3, 2, seed=config.seed)
    summary["parameters"]["lstm_stack3"] = params
    print(f"   three stacked LSTM(2): {len(pairs)} (c, h) pairs, {params} parameters")


def report_deep_lstm(config, summary):
    """2. Seven LSTM(4) cells stacked on arange(45).reshape(3, 5, 3): seven (c, h) pairs (3, 4)."""
    deep_inputs = np.arange(45, dtype="float32").reshape(3, 5, 3)
    outputs, pairs, params = stacked_lstm(deep_inputs, 7, 4, seed=config.seed)
    # outputs (3, 5, 4): the top cell's h at every step
    print(f"2. seven stacked LSTM(4) on arange(45).reshape(3, 5, 3): outputs {outputs.shape},")
    print(f"   {len(pairs)} (c, h) pairs of shapes {sorted({c.shape + h.shape for c, h in pairs})},")
    last_h = pairs[-1][1]
    print(f"   last h == last output: {np.allclose(last_h, outputs[:, -1], atol=1e-6)}; {params} params")
    summary["parameters"]["lstm_stack7"] = params
    summary["stack7_pairs"] = [[list(c.shape), list(h.shape)] for c, h in pairs]
    summary["stack7_last_h_is_last_output"] = bool(np.allclose(last_h, outputs[:, -1], atol=1e-6))


def report_embedding(summary):
    """3. The notes' lookup, by the layer and by `ops.take`: both the printed (3, 5, 6) array."""
    by_layer, by_take = embedding_lookup()
    print(f"3. embedding lookup of {EMBEDDING_IDS} in arange(30).reshape(5, 6):")
    print(by_layer.astype(int))
    summary["embedding_equals_notes"] = bool(np.array_equal(by_layer, EMBEDDING_PRINTED))
    summary["embedding_take_equals_layer"] = bool(np.array_equal(by_layer, by_take))


def report_masks(x, config, out, summary):
    """4. Lengths [5, 3, 4] as a mask, and PyTorch's packing; returns the mask.

    The final state of each row equals its output at its last real step and the state of the same
    RNN run on that row alone. Packing 'hello world', 'midnight', 'calculation', 'path',
    'short circuit' gives batch_sizes [5,5,5,5,4,4,4,4,3,3,3,1,1], 47 packed steps.
    """
    outputs, state, alone, mask = variable_lengths(x, LENGTHS, seed=config.seed)
    # outputs (3, 5, 2), zero past each length; state (3, 2)
    lengths = np.asarray(LENGTHS)
    padded_zero = bool(np.all(outputs[~mask] == 0))
    at_length = outputs[np.arange(len(lengths)), lengths - 1]
    print(f"4. lengths {LENGTHS}: outputs past each length are zero: {padded_zero};")
    print(f"   final state == output at the last real step: {np.allclose(state, at_length, atol=1e-6)};")
    print(f"   == each row run alone: {np.allclose(state, alone, atol=1e-5)}")
    batch_sizes = packed_batch_sizes([len(w) for w in PACKING_WORDS])
    print(f"   packing {PACKING_WORDS}: batch_sizes {batch_sizes}, {sum(batch_sizes)} packed steps")
    summary.update(
        masked_outputs_zero=padded_zero,
        masked_state_at_length=bool(np.allclose(state, at_length, atol=1e-6)),
        masked_state_equals_alone=bool(np.allclose(state, alone, atol=1e-5)),
        packed_batch_sizes=batch_sizes,
    )
    plot_masks(out / "masks.png", outputs, mask, LENGTHS)
    return mask


def report_sequence_loss(mask, config, summary):
    """5. TF1's sequence_loss with the mask as weights equals the NumPy reference.

    Keras' SparseCategoricalCrossentropy with `sample_weight` divides by the number of positions
    instead of the sum of the weights: the same number only when every weight is 1.
    """
    rng = np.random.default_rng(config.seed)
    logits = rng.normal(size=(3, 5, 4)).astype("float32")
    targets = rng.integers(0, 4, size=(3, 5))
    weights = mask.astype("float32")
    ours = float(sequence_loss(logits, targets, weights))
    reference = sequence_loss_numpy(logits.astype("float64"), targets, weights)
    keras_mean = float(
        keras.losses.SparseCategoricalCrossentropy(from_logits=True)(targets, logits, weights)
    )
    print(f"5. sequence loss with the mask as weights: {ours:.6f} (NumPy {reference:.6f}); Keras'")
    print(f"   sample_weight mean divides by all {weights.size} positions: {keras_mean:.6f}")
    summary.update(sequence_loss=ours, sequence_loss_numpy=reference, keras_weighted_mean=keras_mean)


def report_two_layer(x, config, summary):
    """6. B 4.1: two stacked SimpleRNN(3) map (B, L, input) to (B, L, hidden)."""
    two_layer = keras.Sequential(
        [keras.Input((5, 4)), keras.layers.SimpleRNN(3, return_sequences=True, seed=config.seed)]
        + [keras.layers.SimpleRNN(3, return_sequences=True, seed=config.seed + 1)]
    )
    # (3, 5, 4) -> (3, 5, 3) -> (3, 5, 3)
    shape = tuple(two_layer(x).shape)
    print(f"6. two stacked SimpleRNN(3): (3, 5, 4) -> {shape}")
    summary["two_layer_output_shape"] = list(shape)


def report(config, out):
    """Prints sections 1-6 and returns the summary."""
    summary = {"backend": engine.backend(), "seed": config.seed, "parameters": {}}
    x = hello_batch()
    report_hello(x, config, summary)
    report_deep_lstm(config, summary)
    report_embedding(summary)
    mask = report_masks(x, config, out, summary)
    report_sequence_loss(mask, config, summary)
    report_two_layer(x, config, summary)
    return summary


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.rnn_basics", description=__doc__.splitlines()[0]
    )
    out = Path(config.out or "runs/rnn_basics")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)
    with np.printoptions(precision=6, suppress=True):  # not set globally: other code prints too
        summary = report(config, out)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
