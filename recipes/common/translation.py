"""What the translation recipes (`nmt_attention`, `transformer`) share: the tasks, tokenisation,
greedy and beam-search decoding, exact match and BLEU, attention heatmaps.

A model plugs in through three methods (both recipes' models have them):

    model.encode(source)                       -> (memory, states)
    model.decode_step(token, states, memory)   -> (logits (B, V), new states, weights (B, S))

`memory` and `states` are lists of tensors whose first axis is the batch; `token` (B,) is the previous
output token (<sos> at the first step); `weights` are the attention weights over the source positions
that the heatmaps show. Decoding runs the compiled step once per output position and chooses tokens
on the host in float64 log-probabilities, so greedy decoding and beam search with width 1 make their
choices from the very same numbers.

Tokenisation is Python, outside the models: characters for the date task, lower-cased words and
punctuation marks for spa-eng. Ids: <pad> 0, <sos> 1, <eos> 2, <unk> 3, then tokens by frequency
(ties in order of first appearance).
"""

import dataclasses
import json
import math
import re
import time
import unicodedata
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, fitting, plots, vocabulary
from recipes.common.bleu import corpus_bleu

keras = cli.lazy_import("keras")

PAD, SOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<sos>", "<eos>", "<unk>")
ATTENTIONS = ("bahdanau", "luong-dot", "luong-general", "luong-concat")  # the scores of nmt_attention
TASKS = ("dates", "spa-eng")
DECODING_FLAGS = ("beam_width", "examples")  # change the outputs, not the training


# ---- tokenisation (Python/NumPy, outside the model) -----------------------------------------------


def characters(text):
    """Lower-cased characters: 'May 3' -> ['m', 'a', 'y', ' ', '3']."""
    return list(text.lower())


def words(text):
    """Lower case, accents kept, punctuation marks as tokens: '¿Qué?' -> ['¿', 'qué', '?']."""
    text = unicodedata.normalize("NFC", text.lower())
    return re.findall(r"\w+(?:'\w+)?|[^\w\s]", text)


class Vocabulary(vocabulary.Vocabulary):
    """The shared `Vocabulary` with a tokenizer: ids 0-3 are <pad> <sos> <eos> <unk>, then `tokens`;
    it encodes text (with <eos>) and decodes ids up to the first <eos>. `fit` builds one from texts."""

    def __init__(self, tokens, tokenizer="characters"):
        super().__init__(list(SPECIALS) + [t for t in tokens if t not in SPECIALS], SPECIALS[UNK])
        self.tokenizer = tokenizer

    @classmethod
    def fit(cls, texts, tokenizer="characters", max_size=None):
        """The tokens of `texts`, most frequent first (ties: first appearance), at most `max_size`
        ids in all."""
        split = TOKENIZERS[tokenizer]
        fitted = vocabulary.Vocabulary.build(
            (split(text) for text in texts),
            specials=SPECIALS,
            order="frequency",
            max_size=max_size,
            unknown=SPECIALS[UNK],
        )
        return cls(fitted.tokens, tokenizer)

    def split(self, text):
        return TOKENIZERS[self.tokenizer](text)

    def join(self, tokens):
        return ("" if self.tokenizer == "characters" else " ").join(tokens)

    def encode(self, text):
        """Ids of the tokens of `text` followed by <eos>; unknown tokens become <unk>."""
        return super().encode(self.split(text)) + [EOS]

    def decode(self, ids):
        """The tokens of `ids` up to (without) the first <eos>, <pad> and <sos> skipped."""
        return super().decode(ids, end=EOS, skip=(PAD, SOS))


def vocabularies(model):
    """The (source, target) `Vocabulary` a model was trained with."""
    return (
        Vocabulary(model.source_vocabulary[4:], model.tokenizer),
        Vocabulary(model.target_vocabulary[4:], model.tokenizer),
    )


TOKENIZERS = {"characters": characters, "words": words}


def pad(sequences, length):
    """Post-padding with <pad> to `length` (longer sequences are cut): int32 (N, length)."""
    out = np.full((len(sequences), length), PAD, dtype="int32")
    for row, sequence in enumerate(sequences):
        sequence = sequence[:length]
        out[row, : len(sequence)] = sequence
    return out


def make_arrays(pairs, source_vocab, target_vocab, source_length, target_length):
    """(source ids, decoder input = <sos> + target shifted right, target ids), padded to fixed lengths.

    Fixed lengths give every batch one shape (one JAX compile); the target length counts the <eos>.
    """
    sources = [source_vocab.encode(source) for source, _ in pairs]
    targets = [target_vocab.encode(target) for _, target in pairs]
    decoder_inputs = [[SOS] + target[:-1] for target in targets]
    return (
        pad(sources, source_length),
        pad(decoder_inputs, target_length),
        pad(targets, target_length),
    )


def masked_loss():
    """Cross-entropy from logits averaged over the real (non-<pad>) target tokens: Keras'
    `SparseCategoricalCrossentropy`, one fused call on torch (`engine.kernels`)."""
    from recipes.engine import kernels

    return kernels.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD)


# ---- the tasks --------------------------------------------------------------------------------------


def load_task(name, train_size, heldout_size, seed, max_words=10):
    """(train pairs, held-out pairs, tokenizer) of `name`; held-out pairs share nothing with training.

    dates: generated (datasets.translation.date_pairs); the held-out dates never occur in training.
    spa-eng: the downloaded pairs with at most `max_words` source and target tokens, shuffled with
    `seed`; the first `heldout_size` are held out (a source sentence in both halves stays in
    training only), the next `train_size` train.
    """
    from datasets import translation

    if name == "dates":
        train = translation.date_pairs(train_size, seed)
        held = translation.date_pairs(heldout_size, seed + 1, exclude=train)
        return train, held, "characters"
    if name != "spa-eng":
        raise cli.UsageError(f"unknown data set {name!r}; choose one of {', '.join(TASKS)}")
    pairs = [
        (s, t)
        for s, t in translation.load_spa_eng()
        if len(words(s)) <= max_words and len(words(t)) <= max_words
    ]
    order = np.random.default_rng(seed).permutation(len(pairs))
    held = [pairs[i] for i in order[:heldout_size]]
    held_sources = {s for s, _ in held}
    train = [pairs[i] for i in order[heldout_size:] if pairs[i][0] not in held_sources][:train_size]
    return train, held, "words"


# ---- the run both recipes share ------------------------------------------------------------------


@dataclasses.dataclass
class Task:
    """A task made ready for a model: pairs, vocabularies, fixed lengths and padded id arrays."""

    name: str
    tokenizer: str
    train_pairs: list
    held_pairs: list
    source_vocab: Vocabulary
    target_vocab: Vocabulary
    source_length: int
    target_length: int
    arrays: tuple
    held_arrays: tuple


def check_config(config, sizes):
    """UsageError for sizes below 1 (the recipe's own `sizes` and the shared options) and for
    --data-dir, which the translation tasks (generated, or downloaded) do not read."""
    if config.data_dir:
        raise cli.UsageError("--data-dir is not used: choose --dataset dates or spa-eng")
    shared = (config.epochs, config.batch_size, config.train_size, config.heldout_size)
    if min((*shared, *sizes, config.beam_width)) < 1 or config.examples < 0:
        raise cli.UsageError("--epochs, --batch-size, the sizes and --beam-width must be at least 1")
    if config.learning_rate <= 0:
        raise cli.UsageError("--learning-rate must be positive")


def prepare(config, default_out, max_vocabulary=8_000):
    """Loads `config.dataset`, fits the vocabularies, pads; returns (Task, output folder)."""
    engine.configure()
    train, held, tokenizer = load_task(
        config.dataset, config.train_size, config.heldout_size, config.seed
    )
    source_vocab = Vocabulary.fit([s for s, _ in train], tokenizer, max_vocabulary)
    target_vocab = Vocabulary.fit([t for _, t in train], tokenizer, max_vocabulary)
    source_length = max(len(source_vocab.encode(s)) for s, _ in train + held)
    target_length = max(len(target_vocab.encode(t)) for _, t in train + held)
    lengths = (source_length, target_length)
    task = Task(
        config.dataset,
        tokenizer,
        train,
        held,
        source_vocab,
        target_vocab,
        *lengths,
        make_arrays(train, source_vocab, target_vocab, *lengths),
        make_arrays(held, source_vocab, target_vocab, *lengths),
    )
    print(
        f"{task.name}: {len(train)} training and {len(held)} held-out pairs; vocabularies "
        f"{len(source_vocab)} -> {len(target_vocab)} ({tokenizer}); lengths {source_length} -> "
        f"{target_length} tokens with <eos>"
    )
    # Before any training: refuses (one line) an --out that is a file, cannot be written, or holds
    # a previous run that neither --resume nor --overwrite names.
    out = engine.prepare_output(
        Path(config.out or default_out), resume=config.resume, overwrite=config.overwrite
    )
    engine.set_seed(config.seed)
    return task, out


def steps(config, task):
    return config.epochs * -(-len(task.train_pairs) // config.batch_size)


def cosine_schedule(config, task, warmup=0.0):
    """Cosine decay from `config.learning_rate` to 5% of it, after a linear warm-up of a fraction."""
    total = steps(config, task)
    warmup_steps = int(warmup * total)
    if not warmup_steps:
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, total, alpha=0.05)
    return keras.optimizers.schedules.CosineDecay(
        0.0,
        total - warmup_steps,
        alpha=0.05,
        warmup_target=config.learning_rate,
        warmup_steps=warmup_steps,
    )


def compile_for_training(config, model, optimizer):
    """Compiles `model` as `train_and_report` fits it: `optimizer` on the masked cross-entropy,
    with the engine's in-place update on torch (`engine.fast_updates`, as the run's `Loop` gives)."""
    engine.fast_updates([optimizer], fit=True)
    model.compile(
        # The embeddings' gradients dense on TensorFlow too: its sparse ones make Adam's steps of
        # a token that occurs more than once in a batch larger than on torch and JAX.
        engine.dense_gradients(optimizer),
        loss=masked_loss(),
        # XLA's compile time outweighs a --quick run's few TensorFlow steps.
        jit_compile=False if config.quick and engine.backend() == "tensorflow" else "auto",
    )


def train_and_report(config, task, model, optimizer, out, title):
    """Fits with teacher forcing, decodes the held-out pairs, writes the outputs; returns the summary.

    `fit` runs one epoch at a time on the pairs in an order fixed by (seed, epoch), inside an
    `engine.Loop` (`recipes.common.fitting`): a checkpoint after every epoch holds the weights, Adam's
    slots and iteration count (the schedule's position), the dropout's seed state, the epoch and the
    metrics rows. `--resume` continues from the newest usable one and ends where the uninterrupted
    run would; the cosine spans --epochs, so a resume with other --epochs is refused in one line.
    """
    compile_for_training(config, model, optimizer)
    loop = engine.Loop(
        out,
        fitting.checkpoint_state(model),
        resume=config.resume,
        overwrite=config.overwrite,
        # Flags that only change the decoding may differ on --resume.
        config={k: v for k, v in dataclasses.asdict(config).items() if k not in DECODING_FLAGS},
        epochs_in_schedule=True,
    )
    rows, train_seconds = fitting.fit_epochs(
        model,
        loop,
        list(task.arrays[:2]),
        task.arrays[2],
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=config.seed,
        validation_data=(list(task.held_arrays[:2]), task.held_arrays[2]),
        name=title,
    )
    history = {key: [row[key] for row in rows] for key in ("loss", "val_loss")}

    decoder = StepDecoder(model)
    started = time.perf_counter()
    metrics, hypotheses, weights = evaluate(
        decoder,
        task.held_pairs,
        task.source_vocab,
        task.target_vocab,
        task.target_length,
        config.beam_width,
    )
    decode_seconds = time.perf_counter() - started
    engine.save_model(model, out / "model.keras")
    plots.loss_curves(
        out / "loss.png",
        {"train": history["loss"], "held-out": history["val_loss"]},
        f"{title} on {task.name}",
        ylabel="masked cross-entropy per token",
    )
    shown = min(config.examples, len(task.held_pairs))
    if shown:
        if not weights:  # beam search keeps no weights: draw the greedy ones
            _, _, weights = evaluate(
                decoder,
                task.held_pairs[:shown],
                task.source_vocab,
                task.target_vocab,
                task.target_length,
            )
        examples = [(s, h, w) for (s, _), h, w in zip(task.held_pairs[:shown], hypotheses, weights)]
        plot_attention(
            out / "attention.png",
            examples,
            task.source_vocab,
            task.target_vocab,
            f"{title} ({engine.backend()})",
        )
    pairs = list(zip(task.held_pairs, hypotheses))
    lines = [f"{s}\t{t}\t{task.target_vocab.join(h)}" for (s, t), h in pairs]
    (out / "heldout.tsv").write_text("\n".join(["source\ttarget\toutput", *lines]) + "\n")
    for (source, target), hypothesis in pairs[:8]:
        print(f"  {source:<30} -> {task.target_vocab.join(hypothesis):<24} ({target})")
    decoding = "greedy" if config.beam_width == 1 else f"beam {config.beam_width}"
    print(
        f"held-out exact match {100 * metrics['exact_match']:.1f}%, BLEU-4 {metrics['bleu']:.3f} "
        f"({decoding}); training {train_seconds:.1f} s, decoding {len(task.held_pairs)} pairs "
        f"{decode_seconds:.1f} s"
    )
    summary = {
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
        "vocabulary": {"source": len(task.source_vocab), "target": len(task.target_vocab)},
        "lengths": {"source": task.source_length, "target": task.target_length},
        "parameters": model.count_params(),
        **metrics,
        "train_seconds": train_seconds,
        "decode_seconds": decode_seconds,
        "history": history,
        "examples": [
            {"source": s, "target": t, "output": task.target_vocab.join(h)} for (s, t), h in pairs[:20]
        ],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    return summary


# ---- decoding ------------------------------------------------------------------------------------


def _log_softmax(logits):
    logits = np.asarray(logits, dtype="float64")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class StepDecoder:
    """A model's `encode` and `decode_step`, compiled with `engine.function` unless `jit=False`."""

    def __init__(self, model, jit=True):
        self.model = model
        self.encode = engine.function(model.encode, [model], jit=jit)  # source -> memory, states
        self.step = engine.function(model.decode_step, [model], jit=jit)  # token, states, memory


def greedy_decode(decoder, source, max_length):
    """Most likely token at every step: ids (B, <= max_length) and attention weights (B, steps, S).

    Stops when every row has produced <eos>; what a row holds after its <eos> means nothing.
    """
    ops = keras.ops
    memory, states = decoder.encode(ops.convert_to_tensor(np.asarray(source, "int32")))
    token = np.full(len(source), SOS, dtype="int32")
    outputs, weights, done = [], [], np.zeros(len(source), dtype=bool)
    for _ in range(max_length):
        logits, states, attention = decoder.step(ops.convert_to_tensor(token), states, memory)
        token = np.argmax(_log_softmax(ops.convert_to_numpy(logits)), axis=-1).astype("int32")
        outputs.append(token)
        weights.append(ops.convert_to_numpy(attention))
        done |= token == EOS
        if done.all():
            break
    return np.stack(outputs, axis=1), np.stack(weights, axis=1)


def beam_search(decoder, source, max_length, width, length_penalty=0.0):
    """Beam search: the `width` best partial outputs per row; returns the best finished ids (B, L).

    A hypothesis ends at its <eos>; afterwards it is carried along unchanged (its score fixed). The
    final choice among the `width` hypotheses divides each log-probability by length^length_penalty
    (0: plain log-probability, which is what width 1 needs to equal greedy decoding).
    """
    ops = keras.ops
    batch = len(source)
    memory, states = decoder.encode(ops.convert_to_tensor(np.asarray(source, "int32")))

    def repeat(x):  # row b -> rows b * width .. b * width + width - 1: one per beam
        return ops.repeat(x, width, axis=0)

    memory, states = [repeat(m) for m in memory], [repeat(s) for s in states]
    scores = np.full((batch, width), -np.inf)
    scores[:, 0] = 0.0  # all beams start equal: expand only the first at step one
    finished = np.zeros((batch, width), dtype=bool)
    lengths = np.zeros((batch, width), dtype="int64")
    history = np.zeros((batch, width, 0), dtype="int32")
    token = np.full(batch * width, SOS, dtype="int32")
    rows = np.arange(batch)[:, None]
    for _ in range(max_length):
        logits, states, _ = decoder.step(ops.convert_to_tensor(token), states, memory)
        log_probs = _log_softmax(ops.convert_to_numpy(logits)).reshape(batch, width, -1)
        vocab = log_probs.shape[-1]
        log_probs[finished] = -np.inf
        log_probs[finished, EOS] = 0.0  # a finished hypothesis repeats <eos> at no cost
        candidates = (scores[..., None] + log_probs).reshape(batch, width * vocab)
        best = np.argsort(-candidates, axis=1, kind="stable")[:, :width]
        beam, token_ids = best // vocab, (best % vocab).astype("int32")
        scores = np.take_along_axis(candidates, best, axis=1)
        lengths = lengths[rows, beam] + ~finished[rows, beam]
        history = np.concatenate([history[rows, beam], token_ids[..., None]], axis=2)
        finished = finished[rows, beam] | (token_ids == EOS)
        order = ops.convert_to_tensor((rows * width + beam).reshape(-1).astype("int32"))
        states = [ops.take(s, order, axis=0) for s in states]
        token = token_ids.reshape(-1)
        if finished.all():
            break
    normalised = scores / np.maximum(lengths, 1) ** length_penalty
    normalised[~np.isfinite(scores)] = -np.inf
    return history[np.arange(batch), np.argmax(normalised, axis=1)]


def translate(
    decoder, sources, vocab_in, vocab_out, max_length, beam_width=1, batch_size=500, force_beam=False
):
    """Decoded token lists (and greedy attention weights) for source texts, in fixed-size batches.

    Every batch is padded to `batch_size` rows so that a compiled step sees one shape. Width 1 is
    greedy decoding, unless `force_beam` runs it through `beam_search` (which must agree).
    """
    length = decoder.model.source_length
    ids = pad([vocab_in.encode(text) for text in sources], length)
    tokens, weights = [], []
    for start in range(0, len(ids), batch_size):
        batch = ids[start : start + batch_size]
        padded = np.zeros((batch_size, length), "int32")
        padded[: len(batch)] = batch
        if beam_width == 1 and not force_beam:
            out, attention = greedy_decode(decoder, padded, max_length)
            weights.extend(attention[: len(batch)])
        else:
            out = beam_search(decoder, padded, max_length, beam_width)
        tokens.extend(vocab_out.decode(row) for row in out[: len(batch)])
    return tokens, weights


def evaluate(decoder, pairs, vocab_in, vocab_out, max_length, beam_width=1):
    """Exact match and corpus BLEU-4 of decoded pairs; returns (metrics, hypotheses, weights)."""
    hypotheses, weights = translate(
        decoder, [s for s, _ in pairs], vocab_in, vocab_out, max_length, beam_width
    )
    references = [vocab_out.split(t) for _, t in pairs]
    exact = float(np.mean([h == r for h, r in zip(hypotheses, references)]))
    bleu = corpus_bleu([[r] for r in references], hypotheses)
    return {"exact_match": exact, "bleu": bleu}, hypotheses, weights


# ---- outputs -------------------------------------------------------------------------------------


def plot_attention(path, examples, vocab_in, vocab_out, title):
    """One heatmap per example: attention weight of every output token (rows) on every source token."""
    plt = plots.pyplot()
    columns = min(3, len(examples))
    rows = math.ceil(len(examples) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(examples) :]:
        ax.axis("off")
    for ax, (source, output, weights) in zip(axes.flat, examples):
        source_tokens = vocab_in.split(source) + ["<eos>"]
        output_tokens = output + ["<eos>"]
        shown = weights[: len(output_tokens), : len(source_tokens)]
        ax.imshow(shown, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(len(source_tokens)), [t if t != " " else "␣" for t in source_tokens])
        ax.set_yticks(range(len(output_tokens)), output_tokens)
        ax.tick_params(axis="x", labelrotation=90, labelsize=7)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(vocab_in.join(vocab_in.split(source)), fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
