"""Transformer: an attention-only encoder-decoder translates the same tasks as `nmt_attention`.

Reproduces B 5.2 (the Transformer in nine steps) and A 7.8.5 (figure 40) with the model of Vaswani
et al. (2017) built from this project's from-scratch layers: `layers.MultiHeadAttention` on
`layers.ScaledDotProductAttention`, `layers.PositionalEncoding` and the post-norm
`layers.TransformerEncoderBlock` / `TransformerDecoderBlock` (the steps are in
`recipes.common.nmt_models.TransformerNMT`). Sizes are small for the CPU: d_model 64, 4 heads of 16,
d_ff 128, 2 encoder and 2 decoder blocks (the paper: 512, 8, 2048, 6 + 6); no dropout by default
(`--dropout 0.1` is the paper's). Decoding is greedy or beam search (`--beam-width`), one compiled
step per output token; the heatmaps show the last decoder block's encoder-decoder attention,
averaged over the heads.

Data, metrics and outputs as `nmt_attention`: the embedded date task (1,000 held-out dates never seen
in training) or `--dataset spa-eng`; exact match and BLEU-4; attention.png, heldout.tsv, loss.png,
metrics.csv, checkpoints/ (every epoch; --resume), tensorboard/, model.keras, summary.json under
--out (default runs/transformer).

    python -m recipes.transformer
    KERAS_BACKEND=jax python -m recipes.transformer --beam-width 4
    python -m recipes.transformer --dataset spa-eng --epochs 10 --train-size 50000 --dropout 0.1

Default run (20,000 dates, 3 epochs), exact match on the 1,000 held-out dates: 99.5% on TensorFlow,
100% on torch, 99.9% on JAX.
"""

import dataclasses
import sys

from recipes.common import cli, translation

keras = cli.lazy_import("keras")

SECTION = "B 5.2, A 7.8.5"


@dataclasses.dataclass
class Config(cli.RunConfig):
    dataset: str = cli.option(
        "dates", "dates (generated here) or spa-eng (download)", choices=translation.TASKS
    )
    data_dir: str = cli.option(None, cli.HIDDEN)  # No folder data: refused in check_config().
    epochs: int = cli.option(3, "passes over the training pairs")
    batch_size: int = cli.option(128, "pairs per step")
    train_size: int = cli.option(20_000, "training pairs")
    heldout_size: int = cli.option(1_000, "held-out pairs scored by exact match and BLEU")
    d_model: int = cli.option(64, "model width (embeddings, attention, block outputs)")
    num_heads: int = cli.option(4, "attention heads (each d_model / heads wide)")
    ff_dim: int = cli.option(128, "hidden width of the feed-forward nets")
    layers: int = cli.option(2, "encoder blocks and decoder blocks (each)")
    dropout: float = cli.option(0.0, "dropout of the residual branches and attention weights")
    learning_rate: float = cli.option(2e-3, "peak Adam learning rate")
    warmup: float = cli.option(0.1, "fraction of the steps spent warming the learning rate up")
    beam_width: int = cli.option(1, "1: greedy decoding; more: beam search")
    examples: int = cli.option(6, "held-out examples drawn in attention.png")


QUICK = {
    "epochs": 1,
    "train_size": 256,
    "heldout_size": 32,
    "d_model": 16,
    "num_heads": 2,
    "ff_dim": 16,
    "layers": 1,
    "batch_size": 32,
    "examples": 2,
}


def load_model(path):
    """A saved model.keras (vocabularies included), decodable on any backend."""
    from recipes.common import nmt_models

    return nmt_models.load_model(path)


def build_model(config, task):
    """The `TransformerNMT` of `config`, built for the task's vocabularies and lengths."""
    from recipes.common.nmt_models import TransformerNMT

    model = TransformerNMT(
        task.source_vocab.tokens,
        task.target_vocab.tokens,
        task.tokenizer,
        task.source_length,
        task.target_length,
        d_model=config.d_model,
        num_heads=config.num_heads,
        ff_dim=config.ff_dim,
        layers=config.layers,
        dropout=config.dropout,
        seed=config.seed,
    )
    model.build()
    return model


def build_optimizer(config, task):
    """Adam with the paper's beta_2 and epsilon on a warm-up and cosine schedule."""
    # The paper's linear warm-up spans 4,000 steps; a run here has a few hundred, so it spans a
    # fraction of them (--warmup), followed by a cosine decay instead of the paper's 1/sqrt(step).
    schedule = translation.cosine_schedule(config, task, warmup=config.warmup)
    return keras.optimizers.Adam(schedule, beta_2=0.98, epsilon=1e-9)


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.transformer",
        description=__doc__.splitlines()[0],
        quick=QUICK,
    )
    translation.check_config(config, (config.d_model, config.num_heads, config.ff_dim, config.layers))
    if config.d_model % config.num_heads:
        raise cli.UsageError("--d-model must be a multiple of --num-heads")
    if not 0 <= config.dropout < 1 or not 0 <= config.warmup < 1:
        raise cli.UsageError("--dropout and --warmup must lie in [0, 1)")
    task, out = translation.prepare(config, "runs/transformer")
    model = build_model(config, task)
    optimizer = build_optimizer(config, task)
    translation.train_and_report(config, task, model, optimizer, out, "Transformer")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
