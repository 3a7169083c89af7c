"""RNN basics: cells, states, stacks, embeddings, masks, sequence loss (seeds/000 7.5, seeds/001 4.1).

Reproduces the TensorFlow-1 walk-through of section 7.5 of seeds/000 ("RNN with TensorFlow") and the
RNN basics of section 4.1 of seeds/001 in Keras 3, printing what the notes print and checking the
facts they state:

1. 'hello' (7.5.1-7.5.2): h, e, l, o one-hot, the batch [hello, eolll, lleel] of shape (3, 5, 4)
   through SimpleRNN, LSTM and GRU with 2 units (`return_sequences=True, return_state=True`): the
   outputs are (3, 5, 2) and the last output equals the returned state h (the notes' "the state is
   the collection of the last outputs"); the LSTM's cell state c is a different array. The notes'
   printed values come from a random initialisation and cannot be reproduced; the relations can.
   Parameter counts: SimpleRNN 14 (TF1's (2 + 4) x 2 kernel + 2 bias), LSTM 56, a stack of three
   LSTMs 136, GRU 48 (Keras' default reset_after=True has two bias rows; 42 without).
2. Deep LSTM (7.5.3): seven LSTM(4) cells stacked (`StackedRNNCells`) on arange(45).reshape(3, 5, 3):
   seven (c, h) pairs of shape (3, 4), the last h equals the last output; 992 parameters.
3. Embedding lookup (7.5.6): Embedding(5, 6) initialised with arange(30).reshape(5, 6) on
   [[0,3,1,2,4],[1,3,1,2,3],[2,4,0,2,4]] gives exactly the notes' printed (3, 5, 6) array, and so
   does `keras.ops.take`.
4. Variable lengths (7.5.5, seeds/001 4.3.2): lengths [5, 3, 4] as a mask: outputs past each length
   are zero (`zero_output_for_mask=True`) and the final state of each row equals its output at its
   last real step and the state of the same RNN run on that row alone. The packed-sequence
   bookkeeping of PyTorch for 'hello world', 'midnight', 'calculation', 'path', 'short circuit':
   batch_sizes [5,5,5,5,4,4,4,4,3,3,3,1,1], 47 packed steps.
5. Sequence loss (7.5.4): TF1's `sequence_loss` = sum(w * cross-entropy) / sum(w) over all positions,
   equal to a NumPy reference; Keras' SparseCategoricalCrossentropy with `sample_weight` divides by
   the number of positions instead (the same number only when every weight is 1).
6. seeds/001 4.1: SimpleRNN shapes (B, L, input) -> (B, L, hidden) and a two-layer stack.

Outputs (under --out, default runs/rnn_basics): masks.png (the variable-length outputs with the
masked steps), summary.json. A second or two; no training.

    python -m recipes.rnn_basics
    KERAS_BACKEND=torch python -m recipes.rnn_basics --seed 1
"""

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli

keras = cli.lazy_import("keras")

SECTION = "A 7.5, B 4.1"
HIDDEN = argparse.SUPPRESS  # no training: RunConfig's training flags are hidden from --help

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
PACKING_WORDS = ("hello world", "midnight", "calculation", "path", "short circuit")
PARAMETERS = {"simple_rnn": 14, "lstm": 56, "gru": 48, "lstm_stack3": 136, "lstm_stack7": 992}


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, HIDDEN)
    batch_size: int = cli.option(3, HIDDEN)
    dataset: str = cli.option(None, HIDDEN)
    data_dir: str = cli.option(None, HIDDEN)
    resume: bool = cli.option(False, HIDDEN)
    quick: bool = cli.option(False, "the same run (it takes a second or two)")


def hello_batch():
    """The notes' one-hot batch [hello, eolll, lleel], shape (3, 5, 4)."""
    eye = np.eye(len(HELLO), dtype="float32")
    return np.stack([eye[[HELLO[c] for c in word]] for word in HELLO_BATCH])


def run_cell(kind, inputs, units=2, seed=0):
    """Runs a 2-unit SimpleRNN / LSTM / GRU with sequences and state; returns outputs, states, params."""
    layer_class = {"simple_rnn": keras.layers.SimpleRNN, "lstm": keras.layers.LSTM}.get(
        kind, keras.layers.GRU
    )
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def report(config, out):
    """Prints sections 1-6 and returns the summary."""
    summary = {"backend": engine.backend(), "seed": config.seed, "parameters": {}}

    x = hello_batch()
    print(f"1. 'hello' batch {HELLO_BATCH}: one-hot, shape {x.shape}")
    for kind in ("simple_rnn", "lstm", "gru"):
        outputs, states, params = run_cell(kind, x, seed=config.seed)
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

    deep_inputs = np.arange(45, dtype="float32").reshape(3, 5, 3)
    outputs, pairs, params = stacked_lstm(deep_inputs, 7, 4, seed=config.seed)
    print(f"2. seven stacked LSTM(4) on arange(45).reshape(3, 5, 3): outputs {outputs.shape},")
    print(f"   {len(pairs)} (c, h) pairs of shapes {sorted({c.shape + h.shape for c, h in pairs})},")
    last_h = pairs[-1][1]
    print(f"   last h == last output: {np.allclose(last_h, outputs[:, -1], atol=1e-6)}; {params} params")
    summary["parameters"]["lstm_stack7"] = params
    summary["stack7_pairs"] = [[list(c.shape), list(h.shape)] for c, h in pairs]
    summary["stack7_last_h_is_last_output"] = bool(np.allclose(last_h, outputs[:, -1], atol=1e-6))

    by_layer, by_take = embedding_lookup()
    print(f"3. embedding lookup of {EMBEDDING_IDS} in arange(30).reshape(5, 6):")
    print(by_layer.astype(int))
    summary["embedding_equals_notes"] = bool(np.array_equal(by_layer, EMBEDDING_PRINTED))
    summary["embedding_take_equals_layer"] = bool(np.array_equal(by_layer, by_take))

    outputs, state, alone, mask = variable_lengths(x, LENGTHS, seed=config.seed)
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

    two_layer = keras.Sequential(
        [keras.Input((5, 4)), keras.layers.SimpleRNN(3, return_sequences=True, seed=config.seed)]
        + [keras.layers.SimpleRNN(3, return_sequences=True, seed=config.seed + 1)]
    )
    shape = tuple(two_layer(x).shape)
    print(f"6. two stacked SimpleRNN(3): (3, 5, 4) -> {shape}")
    summary["two_layer_output_shape"] = list(shape)
    return summary


if __name__ == "__main__":
    sys.exit(cli.run(main))
