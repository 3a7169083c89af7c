"""seq2seq (B 4.3.2-4.3.3): the lab's four pairs, masking, exact greedy decodes, reload."""

import contextlib
import io
import json

import keras
import numpy as np
import pytest

from recipes import engine, seq2seq
from recipes.common import cli


@pytest.fixture(scope="module")
def vocabularies():
    source = seq2seq.sentence_vocabulary(s for s, _ in seq2seq.PAIRS)
    target = seq2seq.sentence_vocabulary(t for _, t in seq2seq.PAIRS)
    return source, target


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("seq2seq")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert seq2seq.main(["--quick", "--out", str(out)]) == 0
    return out, printed.getvalue()


def test_tokens_padding_and_teacher_forcing_inputs(vocabularies):
    source_vocab, target_vocab = vocabularies
    # The lab prints 17 and 13 (its SOS and EOS included); <pad> adds one to each.
    assert (len(source_vocab), len(target_vocab)) == (18, 14)
    assert source_vocab.tokens[:6] == ["<pad>", "<sos>", "<eos>", "i", "feel", "hungry."]
    source, decoder_input, target = seq2seq.make_arrays(seq2seq.PAIRS, source_vocab, target_vocab)
    assert source.shape == (4, 8) and decoder_input.shape == target.shape == (4, 5)
    assert source.dtype == target.dtype == np.int32
    # "i feel hungry." + <eos>, post-padded with 0.
    np.testing.assert_array_equal(source[0], [3, 4, 5, 2, 0, 0, 0, 0])
    np.testing.assert_array_equal(target[0], [3, 4, 5, 2, 0])  # 나는 배가 고프다. <eos> <pad>
    # Teacher forcing: the decoder reads <sos> and the target shifted right, padded alike.
    np.testing.assert_array_equal(decoder_input[:, 0], seq2seq.SOS)
    np.testing.assert_array_equal(decoder_input[:, 1:], np.where(target[:, 1:] > 0, target[:, :-1], 0))
    assert (decoder_input > 0).sum() == (target > 0).sum() == 4 + 4 + 5 + 5
    assert seq2seq.decode_sentence(target_vocab, [6, 7, 8, 2, 5, 0]) == "파이토치는 매우 쉽다."
    with pytest.raises(cli.UsageError, match="not in the vocabulary: hello"):
        seq2seq.encode_sentence(source_vocab, "hello pytorch")


def test_masking_final_state_and_loss_ignore_padding(vocabularies):
    engine.set_seed(1)
    source, decoder_input, target = seq2seq.make_arrays(seq2seq.PAIRS, *vocabularies)
    model = seq2seq.build_model(18, 14, 8)
    encoder, _ = seq2seq.inference_models(model)
    # The encoder's state at the true last word: padding does not change it.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(encoder(source[:1])),
        keras.ops.convert_to_numpy(encoder(source[:1, :4])),
        atol=1e-6,
    )
    # <pad> made very unlikely: counting the padded positions would raise the loss by far.
    model.get_layer("logits").bias.assign(np.eye(14, dtype="float32")[seq2seq.PAD] * -10.0)
    model.compile(loss=seq2seq.masked_loss())
    loss = model.evaluate([source, decoder_input], target, batch_size=4, verbose=0)
    logits = keras.ops.convert_to_numpy(model([source, decoder_input])).astype("float64")
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_p, target[..., None].astype(int), -1)[..., 0]
    real = target != seq2seq.PAD
    assert loss == pytest.approx(nll[real].mean(), rel=1e-5)
    assert nll.mean() > nll[real].mean() + 1.0


def test_quick_run_decodes_all_four_pairs(quick_run):
    out, printed = quick_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["vocabulary"] == {"source": 18, "target": 14}
    assert summary["exact"] == 4
    for pair, (source, target) in zip(summary["pairs"], seq2seq.PAIRS):
        assert pair["decoded"] == target.lower() and pair["eos"]
        assert f"> {source.lower()}\n= {target}\n< {target} <eos>" in printed
    assert summary["loss_final"] < 0.05  # the notes' acceptance
    assert summary["loss_first"] > 2.0 > 0.05 > summary["loss_last"]
    assert [line.split("]")[0] for line in summary["logged"]] == [f"[epoch {e:4d}" for e in (50, 100)]
    assert summary["decode_steps"] == 5  # the longest target, 4 words + <eos>
    for name in ("loss.png", "model.keras"):
        assert (out / name).stat().st_size > 0


def test_reloaded_model_decodes_identically(quick_run, vocabularies):
    out, _ = quick_run
    summary = json.loads((out / "summary.json").read_text())
    source, decoder_input, target = seq2seq.make_arrays(seq2seq.PAIRS, *vocabularies)
    model = keras.saving.load_model(out / "model.keras")
    loss = model.evaluate([source, decoder_input], target, batch_size=4, verbose=0)
    assert loss == pytest.approx(summary["loss_final"], rel=1e-5, abs=1e-7)
    compiled = seq2seq.GreedyDecoder(model, max_length=8)(source)
    eager = seq2seq.GreedyDecoder(model, max_length=8, compile=False)(source)
    np.testing.assert_array_equal(compiled, eager)
    real = target != seq2seq.PAD
    np.testing.assert_array_equal(compiled[real], target[real])  # every word, then <eos>
    decoded = [seq2seq.decode_sentence(vocabularies[1], ids) for ids in compiled]
    assert decoded == [p["decoded"] for p in summary["pairs"]]


def test_bad_arguments_are_usage_errors(tmp_path):
    with pytest.raises(cli.UsageError, match="at least 1"):
        seq2seq.main(["--hidden", "0", "--out", str(tmp_path)])
    bad = tmp_path / "pairs.tsv"
    bad.write_text("hello world\n", encoding="utf-8")
    with pytest.raises(cli.UsageError, match="pairs.tsv:1"):
        seq2seq.main(["--pairs-file", str(bad), "--out", str(tmp_path)])
