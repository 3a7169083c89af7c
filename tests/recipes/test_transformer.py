"""transformer (B 5.2, A 7.8.5): causal decoding; beam width 1 = greedy; the saved model decodes
identically; resume. The default run's 99% exact match on 1,000 held-out dates (a minute or more per
backend) is checked by benchmarks/default_runs.py, as the Luong runs of nmt_attention are; the
translation family's default-run test is nmt_attention's Bahdanau run."""

import json

import keras
import numpy as np
import pytest

from recipes import engine, transformer
from recipes.common import cli, translation
from recipes.engine import loop as engine_loop
from tests.conftest import failing_replace
from tests.fixtures.make_parity import STEPS
from tests.recipes.translation_checks import check_reload_greedy_and_beam, heldout_rows, parity_case

# One encoder and one decoder block of width 8 (2 heads) on 5 batches of 8 dates; the learning rate
# warms up over the first 2 steps, then follows the cosine. Dropout 0 (the recipe's default): nothing
# in a step is random.
PARITY_CONFIG = transformer.Config(
    train_size=STEPS * 8,
    batch_size=8,
    epochs=1,
    d_model=8,
    num_heads=2,
    ff_dim=8,
    layers=1,
    dropout=0.0,
    warmup=0.4,
)
PARITY_CASES = {"transformer": parity_case(transformer, PARITY_CONFIG)}


def test_decoding_is_causal_and_the_step_equals_the_full_decoder():
    from recipes.common.nmt_models import TransformerNMT

    engine.set_seed(0)
    vocab = translation.Vocabulary(list("0123456789-"))
    model = TransformerNMT(vocab.tokens, vocab.tokens, "characters", 8, 6, 16, 2, 16, 1)
    model.build()
    rng = np.random.default_rng(0)
    source = rng.integers(4, 15, size=(3, 8)).astype("int32")
    target = rng.integers(4, 15, size=(3, 6)).astype("int32")
    changed = target.copy()
    changed[:, 3:] = rng.integers(4, 15, size=(3, 3))
    logits = keras.ops.convert_to_numpy(model([source, target]))
    logits_changed = keras.ops.convert_to_numpy(model([source, changed]))
    np.testing.assert_allclose(logits[:, :3], logits_changed[:, :3], atol=1e-5)  # future tokens unseen
    assert np.abs(logits[:, 3:] - logits_changed[:, 3:]).max() > 1e-3
    memory, states = model.encode(source)  # feeding the target token by token gives the same logits
    for t in range(6):
        step_logits, states, _ = model.decode_step(target[:, t], states, memory)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(step_logits), logits[:, t], atol=1e-4)


def _quick(out, *flags):
    """A two-epoch quick run with dropout (seed state to checkpoint) of 2 steps an epoch."""
    quick = ["--quick", "--epochs", "2", "--dropout", "0.1", "--train-size", "64"]
    return transformer.main([*quick, "--heldout-size", "8", *flags, "--out", str(out)])


def _checkpoint_arrays(path):
    with np.load(path) as data:
        return {key: data[key] for key in data.files if key != "__meta__"}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    out = tmp_path_factory.mktemp("transformer")
    assert _quick(out) == 0
    for name in ("attention.png", "loss.png", "metrics.csv", "model.keras", "heldout.tsv"):
        assert (out / name).stat().st_size > 0
    return out


def test_reloaded_model_decodes_identically_and_beam_one_is_greedy(straight):
    check_reload_greedy_and_beam(straight, heldout_rows(straight))


def test_quick_run_resumed_after_a_failed_checkpoint_write_equals_the_uninterrupted_run(
    straight, tmp_path, monkeypatch, capsys
):
    summary = json.loads((straight / "summary.json").read_text())
    rows = engine.read_metrics(straight / "metrics.csv")
    assert [row["epoch"] for row in rows] == [1, 2] and rows[1]["loss"] < rows[0]["loss"]
    assert summary["history"]["val_loss"] == [row["val_loss"] for row in rows]

    # The disk fills up while epoch 2's checkpoint is written (issue 16 item 2: a killed run
    # restarted at epoch 1): epoch 1's checkpoint stays, nothing else.
    out = tmp_path / "resumed"
    with monkeypatch.context() as patch:
        patch.setattr(engine_loop.os, "replace", failing_replace("epoch-0002.npz"))
        with pytest.raises(engine.CheckpointError, match="could not write checkpoint .*epoch-0002"):
            _quick(out)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["epoch-0001.npz"]
    # A new run there is refused before anything is trained; the warm-up and cosine span --epochs.
    with pytest.raises(engine.OutputError, match="--resume.*--overwrite"):
        _quick(out)
    with pytest.raises(engine.CheckpointError, match="belongs to a run of --epochs 2"):
        _quick(out, "--resume", "--epochs", "3")
    capsys.readouterr()
    assert _quick(out, "--resume", "--beam-width", "2") == 0  # decoding flags may change
    printed = capsys.readouterr().out
    assert f"Resumed from {out / 'checkpoints' / 'epoch-0001.npz'} (epoch 1" in printed
    assert "(beam 2)" in printed
    assert json.loads((out / "summary.json").read_text())["config"]["beam_width"] == 2
    assert engine.read_metrics(out / "metrics.csv") == rows  # to the bit
    # Weights, the dropouts' seed states, Adam's iteration count and slots after epoch 2.
    expected = _checkpoint_arrays(straight / "checkpoints" / "epoch-0002.npz")
    again = _checkpoint_arrays(out / "checkpoints" / "epoch-0002.npz")
    assert expected.keys() == again.keys() and len(expected) > 50
    for key in expected:
        np.testing.assert_allclose(again[key], expected[key], rtol=1e-6, atol=1e-7, err_msg=key)
    assert json.loads((out / "summary.json").read_text())["history"] == summary["history"]


def test_bad_arguments(tmp_path):
    with pytest.raises(cli.UsageError, match="multiple of --num-heads"):
        transformer.main(["--d-model", "30", "--num-heads", "4", "--out", str(tmp_path)])
    with pytest.raises(cli.UsageError, match="at least 1"):
        transformer.main(["--layers", "0", "--out", str(tmp_path)])
