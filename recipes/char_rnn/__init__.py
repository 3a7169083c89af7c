"""Character-level RNN language models: Karpathy's min-char-rnn, char-rnn, and two toy strings.

Reproduces A 7.3 (`--model minimal`, the default: Karpathy's min-char-rnn, a vanilla RNN on one-hot
characters with 100 hidden units, windows of 25 characters read one after another, Adagrad 0.1 with
every gradient clipped to [-5, 5]), A 7.6 (`--model lstm --layers 2`: char-rnn as in
char-rnn-tensorflow, embedding -> stacked LSTM(128) -> affine on 50 parallel streams of 50-character
windows; `--model rnn` / `gru` stack SimpleRNN / GRU layers instead) and B 4.2.1.1-4.2.1.2 (`--text
short|long`: the notes' two toy strings, "wow it's amazing!" and "if you want to build a ship, ...",
reproduced character for character; for the long one all but the first prediction, which follows
"i" alone). On a corpus (`--dataset`: pydoc, the embedded English help topics of Python, about
465,000 characters; shakespeare, Tiny Shakespeare, downloaded on request; file, `--data-dir`) a
sample drawn from softmax(logits / `--temperature`) is printed every `--sample-every` steps with the
smoothed loss in nats per character.

    python -m recipes.char_rnn                      # min-char-rnn on the pydoc topics
    python -m recipes.char_rnn --model lstm --layers 2 --dataset shakespeare
    python -m recipes.char_rnn --text long

Default run (30,000 steps on the pydoc text), smoothed loss from 4.64 nats/char to 1.75 on
TensorFlow (348 steps/s, 90 s), 2.05 on torch (197 steps/s, 160 s), 1.84 on JAX (998 steps/s, 34 s).

Outputs (under --out, default runs/char_rnn): samples.txt (every printed sample), loss.png,
metrics.csv, model.weights.h5, summary.json (losses, samples, steps/s). For `--text`: loss.png,
model.weights.h5 and summary.json with the reconstructed string.
"""

import dataclasses
import json
import sys
import time
from pathlib import Path

from recipes import engine
from recipes.char_rnn.data import LONG, SHORT, WINDOW, char_vocabulary, decode, encode, streams
from recipes.char_rnn.model import build_model, build_optimizer, build_toy_model, make_step, sample
from recipes.char_rnn.train import run_corpus, run_toy, train_corpus, train_toy
from recipes.common import cli

__all__ = [
    "LONG",
    "SHORT",
    "WINDOW",
    "Config",
    "QUICK",
    "SECTION",
    "apply_presets",
    "build_model",
    "build_optimizer",
    "build_toy_model",
    "char_vocabulary",
    "decode",
    "encode",
    "main",
    "make_step",
    "sample",
    "streams",
    "train_corpus",
    "train_toy",
]

SECTION = "A 7.3, A 7.6, B 4.2.1"
MODELS = ("minimal", "rnn", "lstm", "gru")
# Per-model defaults: min-char-rnn.py and char-rnn-tensorflow's train.py.
PRESETS = {
    "minimal": {"hidden": 100, "seq_length": 25, "batch_size": 1, "learning_rate": 0.1},
    "rnn": {"hidden": 128, "seq_length": 50, "batch_size": 50, "learning_rate": 0.002},
    "lstm": {"hidden": 128, "seq_length": 50, "batch_size": 50, "learning_rate": 0.002},
    "gru": {"hidden": 128, "seq_length": 50, "batch_size": 50, "learning_rate": 0.002},
}


@dataclasses.dataclass
class Config(cli.RunConfig):
    text: str = cli.option(
        "corpus",
        "corpus: train on --dataset; short/long: the notes' two toy strings",
        choices=("corpus", "short", "long"),
    )
    dataset: str = cli.option(
        "pydoc",
        "corpus: embedded pydoc topics, Tiny Shakespeare (download) or a local file",
        choices=("pydoc", "shakespeare", "file"),
    )
    data_dir: str = cli.option(None, "with --dataset file: a text file or a folder of *.txt files")
    model: str = cli.option("minimal", "minimal (min-char-rnn) or stacked rnn/lstm/gru", choices=MODELS)
    layers: int = cli.option(2, "stacked recurrent layers (rnn/lstm/gru; minimal has one)")
    hidden: int = cli.option(None, "hidden units (default 100 minimal, 128 otherwise)")
    seq_length: int = cli.option(None, "characters per window (default 25 minimal, 50 otherwise)")
    batch_size: int = cli.option(1, "parallel streams (default 1 minimal, 50 otherwise)")
    learning_rate: float = cli.option(None, "default 0.1 Adagrad (minimal), 0.002 Adam; --text: 0.1")
    decay: float = cli.option(0.97, "rnn/lstm/gru: learning rate factor per pass over the text")
    clip: float = cli.option(5.0, "gradient clipping: each value (minimal) or the global norm")
    steps: int = cli.option(30000, "training steps (windows) on the corpus")
    sample_every: int = cli.option(2000, "print a sample and the loss every this many steps")
    sample_length: int = cli.option(200, "characters per sample")
    temperature: float = cli.option(1.0, "sampling temperature (softmax of logits / T)")
    # --text short/long: the notes train with Adam 0.1 for 100 full-batch epochs.
    epochs: int = cli.option(100, "--text short/long: full-batch Adam epochs")
    head: bool = cli.option(
        True,
        "--text short: an affine layer after the RNN; --no-head feeds the tanh outputs to the loss "
        "as the notes do (logits in [-1, 1]: loss >= 0.965, exact for some seeds only)",
    )
    dtype_policy: str = cli.dtype_policy_option()
    # A loop of --steps windows with no checkpoints: --resume and --overwrite are not offered.
    resume: bool = cli.option(False, cli.HIDDEN)


QUICK = {"steps": 60, "sample_every": 30, "sample_length": 40, "hidden": 16, "seq_length": 10}


def _given(argv, flag):
    args = sys.argv[1:] if argv is None else [str(a) for a in argv]
    return any(a == flag or a.startswith(flag + "=") for a in args)


def apply_presets(config, argv=None):
    """Fills the per-model defaults the user left unset; checks the values."""
    preset = PRESETS[config.model]
    for name in ("hidden", "seq_length", "learning_rate"):
        if getattr(config, name) is None:
            setattr(config, name, preset[name])
    if not _given(argv, "--batch-size"):
        config.batch_size = 2 if config.quick and config.model != "minimal" else preset["batch_size"]
    if config.text != "corpus" and not _given(argv, "--learning-rate"):
        config.learning_rate = 0.1
    checks = {
        "--hidden": config.hidden,
        "--seq-length": config.seq_length,
        "--layers": config.layers,
        "--sample-every": config.sample_every,
        "--sample-length": config.sample_length,
    }
    bad = [flag for flag, value in checks.items() if value < 1]
    if bad:
        raise cli.UsageError(f"{', '.join(bad)} must be at least 1")
    if not config.temperature > 0 or not config.learning_rate > 0 or config.steps < 1:
        raise cli.UsageError("--temperature and --learning-rate must be positive, --steps at least 1")
    return config


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.char_rnn", description=__doc__.splitlines()[0], quick=QUICK
    )
    cli.reject_unused(config, ("resume",), "char_rnn", "keeps no checkpoints")
    apply_presets(config, argv)  # --quick leaves --text short/long as the notes run them (seconds).
    out = Path(config.out or "runs/char_rnn")
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    result = run_corpus(config, out) if config.text == "corpus" else run_toy(config, out)
    summary = {
        "section": SECTION,
        "backend": engine.backend(),
        "config": dataclasses.asdict(config),
        "wall_s": time.perf_counter() - start,
        **result,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0
