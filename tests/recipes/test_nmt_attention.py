"""nmt_attention (A 7.8): the default (Bahdanau) run on the date task reaches 99% exact match on
1,000 held-out dates; beam width 1 = greedy; the saved model decodes identically."""

import contextlib
import io
import json

import numpy as np
import pytest

from recipes import engine, nmt_attention
from recipes.common import cli, translation
from tests.conftest import run_module
from tests.fixtures.make_parity import STEPS
from tests.recipes.translation_checks import check_reload_greedy_and_beam, heldout_rows, parity_case

# Bahdanau attention at the --quick sizes on 5 batches of 8 dates, the cosine spanning the 5 steps.
# Nothing in a step is random (the model has no dropout).
PARITY_CONFIG = nmt_attention.Config(
    train_size=STEPS * 8,
    batch_size=8,
    epochs=1,
    learning_rate=1e-2,
    embedding=8,
    units=8,
    attention_units=8,
    maxout_units=4,
)
PARITY_CASES = {"nmt_attention": parity_case(nmt_attention, PARITY_CONFIG)}


def _run(out, *args):
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert nmt_attention.main([*args, "--out", str(out)]) == 0
    return json.loads((out / "summary.json").read_text()), printed.getvalue()


@pytest.fixture(scope="module")
def bahdanau(tmp_path_factory):
    """The default run, in a process of its own whose XLA optimises (314 steps: conftest)."""
    out = tmp_path_factory.mktemp("bahdanau")
    proc = run_module("recipes.nmt_attention", "--out", out, xla_optimized=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, json.loads((out / "summary.json").read_text()), proc.stdout


# The translation family's one default-run test (1-2 minutes per backend); the Luong default runs
# (99.5-100%, README) are checked by `python benchmarks/default_runs.py --runs luong_dot luong_general`.
def test_default_run_reaches_99_percent_on_1000_held_out_dates(bahdanau):
    out, summary, printed = bahdanau
    rows = heldout_rows(out)
    assert len(rows) == 1000 and summary["config"]["heldout_size"] == 1000
    exact = np.mean([r["output"] == r["target"] for r in rows])
    assert exact == pytest.approx(summary["exact_match"]) and exact >= 0.99, summary["examples"]
    assert summary["bleu"] >= 0.99
    assert f"held-out exact match {100 * exact:.1f}%" in printed
    assert summary["history"]["val_loss"][-1] < 0.05
    for name in ("attention.png", "loss.png", "metrics.csv", "model.keras"):
        assert (out / name).stat().st_size > 0


def test_reloaded_model_decodes_identically_and_beam_one_is_greedy(bahdanau):
    out, _, _ = bahdanau
    beam_three = check_reload_greedy_and_beam(out, heldout_rows(out)[:256], beam_width=3)
    assert beam_three >= 0.99


def test_bahdanau_parameters_have_the_notes_shapes():
    from recipes.common.nmt_models import AttentionNMT

    n_e, n_h, n_a, n_m = 6, 5, 4, 3
    vocab = translation.Vocabulary(list("abcdefg"))  # N_v = 11 with the four specials
    model = AttentionNMT(vocab.tokens, vocab.tokens, "characters", 9, 7, "bahdanau", n_e, n_h, n_a, n_m)
    model.build()
    shapes = {w.path.split("/", 1)[1]: tuple(w.shape) for w in model.weights}
    assert shapes["attention/query_kernel"] == (n_h, n_a)  # W_q
    assert shapes["attention/key_kernel"] == (2 * n_h, n_a)  # U_a
    assert shapes["attention/bias"] == shapes["attention/score_vector"] == (n_a,)  # b_a, v_a
    assert shapes["decoder_gru/kernel"] == (n_e + 2 * n_h, 3 * n_h)  # [W; C] for z, r and s~
    assert shapes["decoder_gru/recurrent_kernel"] == (n_h, 3 * n_h)  # U_z, U_r, U
    assert shapes["maxout/kernel"] == (n_h + n_e + 2 * n_h, 2 * n_m)  # [U_o; V_o; C_o]
    assert shapes["maxout/bias"] == (2 * n_m,)  # b_o: 1 x 2 N_m (the notes' "2N_h x 1" is a typo)
    assert shapes["logits/kernel"] == (n_m, 11) and shapes["logits/bias"] == (11,)  # W_o, b_w
    assert shapes["initial_state/kernel"] == (n_h, n_h)  # W_s


def test_quick_runs_of_every_attention_and_bad_arguments(tmp_path):
    summary, printed = _run(tmp_path, "--quick", "--attention", "luong-concat", "--beam-width", "2")
    assert summary["config"]["attention"] == "luong-concat" and "(beam 2)" in printed
    assert summary["config"]["learning_rate"] == 5e-3  # the Luong general/concat default
    assert (tmp_path / "attention.png").stat().st_size > 0
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert checkpoints == ["epoch-0001.npz"]  # the checkpoint contract (test_transformer: resume)
    with pytest.raises(engine.OutputError, match="holds a previous run.*--resume.*--overwrite"):
        nmt_attention.main(["--quick", "--out", str(tmp_path)])  # deletes nothing
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == checkpoints
    with pytest.raises(cli.UsageError, match="at least 1"):
        nmt_attention.main(["--units", "0", "--out", str(tmp_path)])
    with pytest.raises(cli.UsageError, match="positive"):
        nmt_attention.main(["--learning-rate", "-1", "--out", str(tmp_path)])
    with pytest.raises(cli.UsageError, match="--data-dir is not used"):
        nmt_attention.main(["--data-dir", str(tmp_path), "--out", str(tmp_path / "new")])
    with pytest.raises(SystemExit):
        nmt_attention.main(["--attention", "luong-cosine"])
