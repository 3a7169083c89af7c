"""Neural language models: Bengio's NPLM (3 words -> the 4th) and Britz's RNN LM, against a unigram.

Reproduces A 1 (Bengio et al. 2003's neural probabilistic language model as Hinton's Coursera
assignment 2 builds it: three word ids -> a shared 250 x 50 embedding -> 200 sigmoid units -> 250
logits, 92,950 parameters) and A 7.2 (Denny Britz's WildML RNN language model: h_t = tanh(U x_t +
W h_{t-1}), y_t = softmax(V h_t), hidden 100, one example per sentence), trained on the embedded
English text of Python's `pydoc_data` topics (`datasets.text`). Every tenth block of 20 sentences is
held out; perplexity = exp(mean cross-entropy per predicted word) on it, against a unigram baseline.
Nearest words (cosine of the learned embeddings) are printed for list, class, return, string and
could (the notes' example; its neighbours on Hinton's data were can, should, would, might, may,
will); sentences are generated word by word from SENTENCE_START until SENTENCE_END.

    python -m recipes.rnn_lm                     # both models
    python -m recipes.rnn_lm --model nplm --epochs 20
    KERAS_BACKEND=jax python -m recipes.rnn_lm --model rnn --rnn-vocab 1000

Default run, held-out perplexity NPLM (unigram 49.5) / RNN LM (unigram 290.2): 24.0 / 73.1 on
TensorFlow (3:57), 24.3 / 74.7 on torch (2:51), 24.6 / 78.0 on JAX (3:55).

Outputs (under --out, default runs/rnn_lm): nearest.txt, samples.txt, curves.png (loss per epoch,
train and held-out), embeddings.png (PCA of the NPLM's embeddings of the most frequent words),
nplm_metrics.csv, rnn_metrics.csv, nplm.keras, rnn.keras, summary.json.
"""

import dataclasses
import json
import sys
from pathlib import Path

from recipes import engine
from recipes.common import cli, text
from recipes.rnn_lm.data import (
    BUCKETS,
    bucket_batches,
    build_vocab,
    make_ngrams,
    ngram_arrays,
    rnn_arrays,
)
from recipes.rnn_lm.model import build_nplm, build_rnn_lm, generate, nplm_backward, truncated_bptt
from recipes.rnn_lm.train import (
    NOTES_COULD,
    perplexity_from_logits,
    plot_curves,
    run_nplm,
    run_rnn,
    train_nplm,
    train_rnn,
    unigram_perplexity,
)

__all__ = [
    "BUCKETS",
    "NOTES_COULD",
    "Config",
    "QUICK",
    "SECTION",
    "bucket_batches",
    "build_nplm",
    "build_rnn_lm",
    "build_vocab",
    "generate",
    "main",
    "make_ngrams",
    "ngram_arrays",
    "nplm_backward",
    "perplexity_from_logits",
    "plot_curves",
    "rnn_arrays",
    "train_nplm",
    "train_rnn",
    "truncated_bptt",
    "unigram_perplexity",
]

SECTION = "A 1, A 7.2"
MODELS = ("nplm", "rnn", "both")


@dataclasses.dataclass
class Config(cli.RunConfig):
    model: str = cli.option("both", "nplm (section 1), rnn (section 7.2) or both", choices=MODELS)
    dataset: str = cli.option(
        "pydoc",
        "text corpus: pydoc (embedded), shakespeare (download) or file (--data-dir)",
        choices=("pydoc", "shakespeare", "file"),
    )
    data_dir: str = cli.option(None, "a .txt file or a folder of them (with --dataset file)")
    # NPLM: the assignment's defaults. An epoch here is about 500 steps (the assignment's one epoch of
    # 372,550 4-grams is 3,725); with N(0, 0.01^2) weights the held-out loss sits on a plateau for the
    # first 3-4 epochs.
    epochs: int = cli.option(25, "NPLM epochs over the training 4-grams")
    batch_size: int = cli.option(100, "NPLM 4-grams per step (the assignment's 100)")
    vocab_size: int = cli.option(250, "NPLM vocabulary: the most frequent words + <unk>")
    context: int = cli.option(3, "NPLM context words (3 words -> the 4th)")
    embedding_dim: int = cli.option(50, "NPLM embedding size")
    hidden: int = cli.option(200, "NPLM sigmoid hidden units")
    learning_rate: float = cli.option(0.1, "NPLM SGD learning rate")
    momentum: float = cli.option(0.9, "NPLM SGD momentum")
    init_scale: float = cli.option(0.01, "NPLM initial weights N(0, init_scale^2)")
    weight_decay: float = cli.option(0.0, "NPLM weight decay lambda on W1, W2 (gradient lambda W)")
    # RNN: Britz keeps 8,000 words of 65,517; the embedded corpus has about 3,250 distinct words, so
    # N_x = 2,000 (97% of the running words). Batches of 32 sentences of similar length, padded to 8,
    # 16, 24, 32 or 40 tokens.
    rnn_epochs: int = cli.option(15, "RNN epochs over the training sentences")
    rnn_batch_size: int = cli.option(32, "RNN sentences per step")
    rnn_vocab: int = cli.option(
        2000, "RNN vocabulary N_x: SENTENCE_START, SENTENCE_END, words, UNKNOWN_TOKEN"
    )
    rnn_hidden: int = cli.option(100, "RNN hidden units (Britz's 100)")
    rnn_learning_rate: float = cli.option(3e-3, "RNN Adam learning rate")
    max_length: int = cli.option(40, "longest RNN sentence in tokens; longer ones are cut in pieces")
    probes: str = cli.option(text.PROBES, "comma-separated words whose nearest words are printed")
    neighbours: int = cli.option(6, "nearest words shown per probe")
    samples: int = cli.option(5, "sentences generated by the RNN")


# --quick: weights N(0, 0.1^2) and a doubled learning rate leave the sigmoid plateau that 0.01
# gives for the first 3-4 epochs, so two epochs already beat the unigram.
QUICK = {
    "epochs": 2,
    "init_scale": 0.1,
    "learning_rate": 0.2,
    "rnn_epochs": 2,
    "rnn_vocab": 500,
    "rnn_hidden": 32,
    "rnn_learning_rate": 1e-2,
}


def check(config):
    """Rejects sizes the recipe cannot use: a UsageError, shown as one line."""
    sizes = (
        config.epochs,
        config.rnn_epochs,
        config.context,
        config.embedding_dim,
        config.hidden,
        config.rnn_hidden,
        config.rnn_batch_size,
        config.neighbours,
    )
    if min(sizes) < 1 or config.max_length < 2 or config.samples < 0:
        raise cli.UsageError("sizes and epochs must be at least 1 and --max-length at least 2")
    if config.vocab_size < 2 or config.rnn_vocab < 4:
        raise cli.UsageError("--vocab-size must be at least 2 and --rnn-vocab at least 4")


def load_corpus(config):
    """(training sentences, held-out sentences) as token lists: every tenth block of 20 sentences
    is held out (10% of the text)."""
    sentences = text.load_sentences(config.dataset, config.data_dir)
    train_sents, heldout_sents = text.split_heldout(sentences)
    if not train_sents or not heldout_sents:
        raise cli.UsageError("the text is too short for a held-out split (20 sentences or more)")
    print(
        f"{config.dataset}: {len(sentences)} sentences, {sum(map(len, sentences))} tokens; "
        f"{len(train_sents)} for training, {len(heldout_sents)} held out"
    )
    return train_sents, heldout_sents


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.rnn_lm", description=__doc__.splitlines()[0], quick=QUICK
    )
    check(config)
    out = Path(config.out or "runs/rnn_lm")
    out.mkdir(parents=True, exist_ok=True)
    verbose = 1 if sys.stdout.isatty() else 2
    engine.set_seed(config.seed)

    train_sents, heldout_sents = load_corpus(config)
    probes = [p.strip() for p in config.probes.split(",") if p.strip()]
    summary = {"backend": engine.backend(), "config": dataclasses.asdict(config)}
    results, nearest = {}, []
    if config.model in ("nplm", "both"):
        results["nplm"], lines = run_nplm(config, train_sents, heldout_sents, probes, out, verbose)
        nearest += lines
    if config.model in ("rnn", "both"):
        results["rnn"], lines = run_rnn(config, train_sents, heldout_sents, probes, out, verbose)
        nearest += lines

    (out / "nearest.txt").write_text("\n".join(nearest) + "\n")
    print("\n" + "\n".join(nearest))
    plot_curves(out / "curves.png", results)
    summary.update(results)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0
