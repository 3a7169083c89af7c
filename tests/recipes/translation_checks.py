"""Checks shared by the tests of the translation recipes (nmt_attention, transformer)."""

import csv

import numpy as np

from recipes.common import nmt_models, translation
from tests.fixtures.make_parity import STEPS, FitTrainer


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


def parity_task(pairs, seed):
    """A `translation.Task` of `pairs` generated dates (one more held out) written in at most 10
    characters, so that a step is short: what `translation.prepare` makes, without its output
    folder."""
    train, held, tokenizer = translation.load_task("dates", 4 * pairs, 1, seed)
    train = [(s, t) for s, t in train if len(s) <= 10][:pairs]
    source = translation.Vocabulary.fit([s for s, _ in train], tokenizer)
    target = translation.Vocabulary.fit([t for _, t in train], tokenizer)
    lengths = (
        max(len(source.encode(s)) for s, _ in train + held),
        max(len(target.encode(t)) for _, t in train + held),
    )
    arrays = [translation.make_arrays(p, source, target, *lengths) for p in (train, held)]
    return translation.Task("dates", tokenizer, train, held, source, target, *lengths, *arrays)


def parity_case(recipe, config):
    """(build, make_inputs) of a translation recipe's parity case: the recipe's model and optimizer
    for `config` (`config.train_size` = STEPS batches), compiled as `train_and_report` compiles
    them and stepped by Keras' train_on_batch on the task's batches in order (teacher forcing)."""

    def build():
        task = parity_task(config.train_size, config.seed)
        model = recipe.build_model(config, task)
        translation.compile_for_training(config, model, recipe.build_optimizer(config, task))
        return FitTrainer(model)

    def make_inputs():
        arrays = parity_task(config.train_size, config.seed).arrays
        names = ("source", "decoder_input", "target")
        return {n: a.reshape(STEPS, config.batch_size, -1) for n, a in zip(names, arrays)}

    return build, make_inputs
