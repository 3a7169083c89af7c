"""recipes.common.translation and datasets.translation: the date task, tokenisation, beam search =
greedy at width 1, attention weights, the spa-eng download path (a file:// origin)."""

import datetime
import hashlib
import io
import json
import zipfile

import keras
import numpy as np
import pytest

from datasets import DatasetUnavailable
from datasets import translation as data
from recipes import engine
from recipes.common import cli, translation
from tests.conftest import FIXTURES


def test_every_date_format_is_unambiguous_and_held_out_dates_are_new():
    date = datetime.date(1979, 5, 3)  # a Thursday
    written = [data.write_date(date, style, 0) for style in range(len(data.DATE_FORMATS))]
    assert written == [
        "3 May 1979",
        "03 May 1979",
        "May 3, 1979",
        "May 03 1979",
        "Thu, May 3, 1979",
        "Thu 3 May 1979",
        "3rd of May 1979",
        "3rd May 79",
        "3.5.1979",
        "03.05.79",
        "5/3/1979",
        "05/03/79",
        "1979/05/03",
        "19790503",
        "3 May, 79",
    ]
    assert data.write_date(datetime.date(2011, 12, 22), 6, 2) == "22ND OF DECEMBER 2011"
    assert data.write_date(datetime.date(2049, 1, 11), 9, 1) == "11.01.49"  # yy < 50: 20yy
    train = data.date_pairs(3000, seed=0)
    held = data.date_pairs(500, seed=1, exclude=train)
    assert train == data.date_pairs(3000, seed=0)  # reproducible
    for source, iso in train[:300] + held[:300]:
        date = datetime.date.fromisoformat(iso)
        assert data.FIRST_DATE <= date <= data.LAST_DATE
        assert source in {data.write_date(date, style, case) for style in range(15) for case in range(3)}
    assert not {iso for _, iso in train} & {iso for _, iso in held}
    assert len({iso for _, iso in train}) == 3000
    styles = {
        next(
            s
            for s in range(15)
            if data.write_date(datetime.date.fromisoformat(i), s, 0).lower() == x.lower()
        )
        for x, i in train[:1000]
    }
    assert len(styles) == 15  # every format occurs


def test_vocabulary_tokenisation_and_padded_arrays():
    vocab = translation.Vocabulary.fit(["May 3", "may 5"], "characters")
    assert vocab.tokens[:4] == ["<pad>", "<sos>", "<eos>", "<unk>"]
    assert vocab.tokens[4:] == ["m", "a", "y", " ", "3", "5"]  # by frequency, then first seen
    assert vocab.encode("MAY 9") == [4, 5, 6, 7, translation.UNK, translation.EOS]
    assert vocab.decode([4, 5, 6, 2, 4]) == ["m", "a", "y"]
    assert translation.words("¿Qué hora es? It's 5.") == [
        "¿",
        "qué",
        "hora",
        "es",
        "?",
        "it's",
        "5",
        ".",
    ]
    words = translation.Vocabulary.fit(["a b b", "c b"], "words", max_size=6)
    assert words.tokens[4:] == ["b", "a"] and words.join(["a", "b"]) == "a b"
    target = translation.Vocabulary.fit(["1979-05-03"])
    source, decoder_input, target_ids = translation.make_arrays(
        [("May 3", "1979-05-03")], vocab, target, 8, 11
    )
    assert source.tolist() == [[4, 5, 6, 7, 8, 2, 0, 0]]
    np.testing.assert_array_equal(decoder_input[0, 1:], target_ids[0, :-1])  # teacher forcing
    assert decoder_input[0, 0] == translation.SOS and target_ids[0, -1] == translation.EOS


class _Toy:
    """A tiny decoding model with random logits that depend on the token history (NumPy-seeded).

    encode: memory [source one-hot sums], states [h]; step: h <- tanh(h W + E[token] + memory U).
    """

    def __init__(self, vocab=7, hidden=5, source_length=6):
        rng = np.random.default_rng(0)
        self.source_length = source_length
        self.W = keras.ops.convert_to_tensor(rng.normal(size=(hidden, hidden)).astype("float32"))
        self.E = keras.ops.convert_to_tensor(rng.normal(size=(vocab, hidden)).astype("float32"))
        self.U = keras.ops.convert_to_tensor(rng.normal(size=(source_length, hidden)).astype("float32"))
        self.O = keras.ops.convert_to_tensor(0.7 * rng.normal(size=(hidden, vocab)).astype("float32"))

    def encode(self, source):
        ops = keras.ops
        memory = ops.cast(source, "float32") / 5.0
        return [memory], [ops.tanh(ops.matmul(memory, self.U))]

    def decode_step(self, token, states, memory):
        ops = keras.ops
        h = ops.tanh(ops.matmul(states[0], self.W) + ops.take(self.E, token, axis=0))
        logits = ops.matmul(h, self.O)
        weights = ops.softmax(memory[0], axis=-1)
        return logits, [h], weights


class _Decoder:
    def __init__(self, model):
        self.model, self.encode, self.step = model, model.encode, model.decode_step


def test_beam_search_width_one_is_greedy_and_wider_beams_score_higher():
    decoder = _Decoder(_Toy())
    source = np.random.default_rng(1).integers(1, 7, size=(40, 6)).astype("int32")
    greedy, _ = translation.greedy_decode(decoder, source, max_length=8)
    beam = translation.beam_search(decoder, source, max_length=8, width=1)
    cut = lambda rows: [list(r[: list(r).index(2) + 1]) if 2 in r else list(r) for r in rows]  # noqa: E731
    assert cut(greedy) == cut(beam)

    def log_prob(row, tokens):  # the model's log-probability of a whole output, step by step
        memory, states = decoder.encode(keras.ops.convert_to_tensor(source[row : row + 1]))
        total, previous = 0.0, translation.SOS
        for token in tokens:
            logits, states, _ = decoder.step(keras.ops.convert_to_tensor([previous]), states, memory)
            total += translation._log_softmax(keras.ops.convert_to_numpy(logits))[0, token]
            previous = token
            if token == translation.EOS:
                break
        return total

    wide = translation.beam_search(decoder, source, max_length=8, width=4)
    scores = [(log_prob(r, cut(wide)[r]), log_prob(r, cut(greedy)[r])) for r in range(40)]
    assert all(w >= g - 1e-9 for w, g in scores) and any(w > g + 1e-6 for w, g in scores)


def test_attention_weights_sum_to_one_over_the_real_source_positions():
    from recipes.common.nmt_models import AttentionNMT

    engine.set_seed(3)
    vocab = translation.Vocabulary.fit(["may 3 1979", "12/03/21"])
    target = translation.Vocabulary.fit(["1979-05-03"])
    model = AttentionNMT(vocab.tokens, target.tokens, "characters", 12, 11, "luong-concat", 8, 8, 8, 4)
    model.build()
    source = translation.pad([vocab.encode("may 3 1979"), vocab.encode("3/12")], 12)
    ids, weights = translation.greedy_decode(translation.StepDecoder(model), source, 11)
    assert ids.shape == (2, 11) and weights.shape == (2, 11, 12)
    for row, length in enumerate((source != 0).sum(axis=1)):
        np.testing.assert_allclose(weights[row].sum(axis=-1), 1.0, atol=1e-5)
        assert np.all(weights[row][:, length:] == 0) and np.all(weights[row][:, :length] > 0)


def _spa_eng_zip(path, lines):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(data.SPA_ENG_MEMBER, "\n".join(lines) + "\n")
    path.write_bytes(buffer.getvalue())
    return hashlib.sha256(buffer.getvalue()).hexdigest()


def test_spa_eng_download_from_a_file_origin_with_its_hash(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    lines = [
        "Go.\tVe.",
        "I see.\tYa veo.",
        "Who won?\t¿Quién ganó?",
        "This sentence is far too long to keep.\tX.",
    ]
    digest = _spa_eng_zip(mirror / data.SPA_ENG_FILE, lines)
    monkeypatch.setenv("RECIPES_DATA_ORIGIN", mirror.as_uri())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(data, "SPA_ENG_SHA256", digest)
    assert data.load_spa_eng()[:3] == [
        ("Ve.", "Go."),
        ("Ya veo.", "I see."),
        ("¿Quién ganó?", "Who won?"),
    ]
    train, held, tokenizer = translation.load_task("spa-eng", 10, 1, seed=0, max_words=5)
    assert tokenizer == "words" and len(train) + len(held) == 3  # the 9-word pair is left out
    assert not {s for s, _ in held} & {s for s, _ in train}

    (mirror / data.SPA_ENG_FILE).unlink()  # a cached copy is used from now on
    assert len(data.load_spa_eng()) == 4
    cached = tmp_path / "keras" / "datasets" / data.SPA_ENG_FILE
    cached.write_bytes(b"corrupt")  # not trusted: downloaded again, and the mirror's is corrupt too
    (mirror / data.SPA_ENG_FILE).write_bytes(b"corrupt")
    with pytest.raises(DatasetUnavailable) as info:
        data.load_spa_eng()
    message = str(info.value)
    assert "\n" not in message and "corrupt (sha256 hash mismatch)" in message
    assert message.endswith("Use the embedded date task instead: --dataset dates")


def test_a_quick_transformer_run_on_downloaded_word_pairs(tmp_path, monkeypatch):
    from recipes import transformer

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    names = ["Tom", "Mary", "the cat", "my friend"]
    verbs = [("runs.", "corre."), ("sleeps.", "duerme."), ("eats.", "come."), ("sings.", "canta.")]
    spanish = {"Tom": "Tom", "Mary": "Mary", "the cat": "el gato", "my friend": "mi amigo"}
    lines = [f"{n} {e}\t{spanish[n]} {s}" for n in names for e, s in verbs]
    monkeypatch.setattr(data, "SPA_ENG_SHA256", _spa_eng_zip(mirror / data.SPA_ENG_FILE, lines))
    monkeypatch.setenv("RECIPES_DATA_ORIGIN", mirror.as_uri())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    out = tmp_path / "run"
    assert (
        transformer.main(["--quick", "--dataset", "spa-eng", "--heldout-size", "4", "--out", str(out)])
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lengths"] == {"source": 5, "target": 5}  # "mi amigo duerme ." + <eos>
    assert summary["vocabulary"]["target"] == 4 + 6 + 4 + 1  # specials, words of names, verbs, "."
    assert len(summary["examples"]) == 4 and (out / "attention.png").stat().st_size > 0


def test_spa_eng_offline_is_one_line(no_network):
    with pytest.raises(DatasetUnavailable) as info:
        translation.load_task("spa-eng", 10, 1, seed=0)
    message = str(info.value)
    assert message.startswith("could not download spa-eng from http://127.0.0.1:9/spa-eng.zip")
    assert "\n" not in message and message.endswith("--dataset dates")
    with pytest.raises(cli.UsageError, match="unknown data set 'klingon'"):
        translation.load_task("klingon", 10, 1, seed=0)


@pytest.mark.parametrize("name", ["bahdanau", "transformer"])
def test_a_model_saved_on_tensorflow_decodes_identically_here(name):
    """tests/fixtures/make_translation_fixtures.py trained and saved these on TensorFlow."""
    import csv

    from recipes import nmt_attention

    folder = FIXTURES / "translation"
    model = nmt_attention.load_model(folder / f"{name}.keras")  # registers both model classes
    with open(folder / f"{name}.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) == 300
    source_vocab, target_vocab = translation.vocabularies(model)
    decoded, _ = translation.translate(
        translation.StepDecoder(model),
        [r["source"] for r in rows],
        source_vocab,
        target_vocab,
        model.target_length,
        batch_size=300,
    )
    assert [target_vocab.join(t) for t in decoded] == [r["output"] for r in rows]
    assert len({r["output"] for r in rows}) > 250  # a partly trained model: outputs differ per date
