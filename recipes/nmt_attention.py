"""Neural machine translation with attention: a bidirectional GRU encoder and an attention GRU decoder
(Bahdanau's additive attention with the maxout readout, or Luong's dot/general/concat scores).

Reproduces section 7.8 of seeds/000 (7.8.2 Bahdanau, Cho and Bengio 2014; 7.8.3 Luong, Pham and
Manning 2015; the encoder-decoder with teacher forcing of 7.8.1).

Encoder (both variants): source embedding -> a forward and a backward GRU of N_h units; the annotation
of source position j is h_j = [->h_j ; <-h_j] (2 N_h). Padding is masked: the GRUs skip it and the
attention gives it exactly zero weight.

Bahdanau decoder (`--attention bahdanau`), the notes' equations with decoder state s (N_h):

    s_0   = tanh(<-h_1 W_s + b_s)
    e_ij  = v_a^T tanh(s_(i-1) W_q + h_j U_a + b_a),  alpha_i = softmax(e_i),  c_i = sum_j alpha_ij h_j
    s_i   = GRU([y_(i-1) ; c_i], s_(i-1))          (the notes' z, r, s~ equations: reset before U)
    t~_i  = s_(i-1) U_o + y_(i-1) V_o + c_i C_o + b_o,   t_i = maxout(t~_i) (N_m units of 2 pieces)
    logits = t_i W_o + b_w

(`layers.BahdanauAttention`, a Keras GRUCell with reset_after=False, `layers.Maxout`.)

Luong decoder (`--attention luong-dot|luong-general|luong-concat`), global attention with input
feeding, decoder state h (2 N_h, so that the dot score fits the annotations):

    h_0 = tanh(<-h_1 W_s + b_s),   h~_0 = 0
    h_i = GRU([y_(i-1) ; h~_(i-1)], h_(i-1))
    score(h_i, h_j) = h_i^T h_j | h_i^T W_a h_j | v_a^T tanh(W_a [h_i ; h_j]),  c_i as above
    h~_i = tanh([c_i ; h_i] W_c),   logits = h~_i W_s'

(`layers.LuongAttention`.) Luong scores with the *current* state h_i; Bahdanau with the previous one.

Training is teacher forcing with the masked cross-entropy (`model.fit`): 20,000 pairs, 2 epochs of
batch 128, Adam with a cosine decay from 1e-2 (5e-3 for the general and concat scores, which stalled
at 1e-2 on TensorFlow). Decoding is greedy or beam search (`--beam-width`, recipes.translation),
from the same compiled one-step decoder; the keys' share of the attention scores (h_j U_a + b_a) is
computed once per sentence, not at every step.

Data: the embedded date-normalisation task (datasets.translation: many human-written formats ->
ISO 8601; 1,000 held-out dates that never occur in training), or `--dataset spa-eng`, the Tatoeba
Spanish-English pairs (downloaded once; at most 10 words per side). Tokens are characters for dates,
words for spa-eng, tokenised in Python outside the model. Reports held-out exact match and BLEU-4.

Outputs (under --out, default runs/nmt_attention): attention.png (heatmaps of a few held-out
examples), heldout.tsv (every held-out source, target and output), loss.png, metrics.csv,
model.keras (vocabularies included: `load_model` + `recipes.translation` decode it on any backend),
summary.json.

    python -m recipes.nmt_attention
    KERAS_BACKEND=jax python -m recipes.nmt_attention --attention luong-general --beam-width 4
    python -m recipes.nmt_attention --dataset spa-eng --epochs 10 --train-size 50000
"""

import dataclasses
import sys

from recipes.common import cli, translation

keras = cli.lazy_import("keras")

SECTION = "A 7.8"


@dataclasses.dataclass
class Config(cli.RunConfig):
    dataset: str = cli.option(
        "dates", "dates (generated here) or spa-eng (download)", choices=translation.TASKS
    )
    attention: str = cli.option("bahdanau", "attention and decoder", choices=translation.ATTENTIONS)
    epochs: int = cli.option(2, "passes over the training pairs")
    batch_size: int = cli.option(128, "pairs per step")
    train_size: int = cli.option(20_000, "training pairs")
    heldout_size: int = cli.option(1_000, "held-out pairs scored by exact match and BLEU")
    embedding: int = cli.option(32, "N_e: token embedding size")
    units: int = cli.option(64, "N_h: units of each encoder direction (and of the Bahdanau decoder)")
    attention_units: int = cli.option(64, "N_a: alignment layer of Bahdanau / Luong-concat")
    maxout_units: int = cli.option(64, "N_m: maxout units of the Bahdanau readout")
    learning_rate: float = cli.option(
        None, "peak Adam learning rate, decayed to 5%% (None: 1e-2, 5e-3 for luong-general/concat)"
    )
    beam_width: int = cli.option(1, "1: greedy decoding; more: beam search")
    examples: int = cli.option(6, "held-out examples drawn in attention.png")


QUICK = {
    "epochs": 1,
    "train_size": 256,
    "heldout_size": 32,
    "embedding": 8,
    "units": 8,
    "attention_units": 8,
    "maxout_units": 4,
    "batch_size": 32,
    "examples": 2,
}


def load_model(path):
    """A saved model.keras (vocabularies included), decodable on any backend."""
    from recipes.common import nmt_models

    return nmt_models.load_model(path)


def build_model(config, task):
    from recipes.common.nmt_models import AttentionNMT

    model = AttentionNMT(
        task.source_vocab.tokens,
        task.target_vocab.tokens,
        task.tokenizer,
        task.source_length,
        task.target_length,
        config.attention,
        config.embedding,
        config.units,
        config.attention_units,
        config.maxout_units,
    )
    model.build()
    return model


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.nmt_attention",
        description=__doc__.splitlines()[0],
        quick=QUICK,
    )
    sizes = (config.embedding, config.units, config.attention_units, config.maxout_units)
    if config.learning_rate is None:
        # Measured: Luong's general score stalled at 1e-2 on TensorFlow (20% after two epochs).
        config.learning_rate = 1e-2 if config.attention in ("bahdanau", "luong-dot") else 5e-3
    translation.check_config(config, sizes)
    task, out = translation.prepare(config, "runs/nmt_attention")
    model = build_model(config, task)
    optimizer = keras.optimizers.Adam(translation.cosine_schedule(config, task))
    translation.train_and_report(config, task, model, optimizer, out, f"{config.attention} attention")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
