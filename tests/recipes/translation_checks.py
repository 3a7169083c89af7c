"""Checks shared by the tests of the translation recipes (nmt_attention, transformer)."""

import csv

import numpy as np

from recipes.common import nmt_models, translation


def heldout_rows(out):
    """The rows of a run's heldout.tsv: dicts with source, target and output."""
    with open(out / "heldout.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def check_reload_greedy_and_beam(out, rows, beam_width=None):
    """The saved model.keras decodes `rows` as the run did; beam search of width 1 = greedy; the
    attention weights sum to 1 over the real source tokens (and <eos>) and are 0 on padding.

    With `beam_width`, also returns the exact match of that beam search on `rows`.
    """
    model = nmt_models.load_model(out / "model.keras")
    source_vocab, target_vocab = translation.vocabularies(model)
    decoder = translation.StepDecoder(model)
    sources = [r["source"] for r in rows]
    args = (decoder, sources, source_vocab, target_vocab, model.target_length)
    greedy, weights = translation.translate(*args, batch_size=len(rows))
    assert [target_vocab.join(t) for t in greedy] == [r["output"] for r in rows]
    beam_one, _ = translation.translate(*args, beam_width=1, batch_size=len(rows), force_beam=True)
    assert beam_one == greedy
    ids = translation.pad([source_vocab.encode(s) for s in sources], model.source_length)
    for row, length in zip(weights, (ids != 0).sum(axis=1)):
        np.testing.assert_allclose(row.sum(axis=-1), 1.0, atol=1e-5)
        assert np.all(row[:, length:] == 0)
    if beam_width:
        beams, _ = translation.translate(*args, beam_width=beam_width, batch_size=len(rows))
        return np.mean([target_vocab.join(t) == r["target"] for t, r in zip(beams, rows)])
