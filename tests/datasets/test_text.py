"""datasets.text: the embedded pydoc corpus, words(), local files, Tiny Shakespeare's download path."""

import hashlib

import pytest

from datasets import DatasetUnavailable
from datasets import text as text_module
from datasets.text import load_text, words


def test_pydoc_is_pythons_help_topics_in_key_order():
    from pydoc_data.topics import topics

    corpus = load_text()
    assert corpus == "".join(topics[key] for key in sorted(topics))
    assert load_text("pydoc") is corpus  # Read once.
    assert len(corpus) > 300_000 and 60 < len(set(corpus)) < 150
    assert corpus.startswith(topics[min(topics)])
    assert 'The "assert" statement' in corpus and 'The "if" statement' in corpus
    tokens = words(corpus)
    assert len(tokens) > 50_000 and {"the", "statement", "python", "object"} <= set(tokens)


def test_words():
    sample = "It's the 3rd 'quoted' don\u2019t x_y naïve... EOF-marker"
    assert words(sample) == ["it's", "the", "rd", "quoted", "don't", "x", "y", "naïve", "eof", "marker"]
    assert words("") == [] and words("12 + 3 ''") == []


def test_local_file_and_folder(tmp_path):
    (tmp_path / "b.txt").write_text("second")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.txt").write_text("nested")
    (tmp_path / "skip.md").write_text("not text")
    assert load_text("file", str(tmp_path / "b.txt")) == "second"
    assert load_text("file", str(tmp_path)) == "second\nnested"  # b.txt sorts before sub/a.txt.
    for data_dir in (None, str(tmp_path / "missing"), str(tmp_path / "sub" / "nothing")):
        with pytest.raises(DatasetUnavailable, match="no text file at .*--dataset pydoc$"):
            load_text("file", data_dir)
    with pytest.raises(DatasetUnavailable, match="unknown text 'ptb': choose one of pydoc, shakespeare"):
        load_text("ptb")


FAKE = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A file:// origin holding tinyshakespeare/input.txt, an empty Keras home, the fake's hash."""
    folder = tmp_path / "mirror"
    (folder / "tinyshakespeare").mkdir(parents=True)
    path = folder / "tinyshakespeare" / "input.txt"
    path.write_text(FAKE)
    monkeypatch.setenv("RECIPES_DATA_ORIGIN", folder.as_uri())
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return path, tmp_path / "keras"


def test_shakespeare_download_and_cache(mirror, monkeypatch):
    path, home = mirror
    assert text_module.SHAKESPEARE_SHA256 != hashlib.sha256(FAKE.encode()).hexdigest()
    monkeypatch.setattr(text_module, "SHAKESPEARE_SHA256", hashlib.sha256(path.read_bytes()).hexdigest())
    assert load_text("shakespeare") == FAKE
    cached = home / "datasets" / "tiny_shakespeare.txt"
    assert cached.read_text() == FAKE
    path.unlink()  # Now only the cache has it.
    assert load_text("shakespeare") == FAKE


def test_shakespeare_corrupt(mirror):
    with pytest.raises(DatasetUnavailable) as info:
        load_text("shakespeare")  # The fake cannot have the real file's hash.
    message = str(info.value)
    assert "\n" not in message and "corrupt (sha256 hash mismatch)" in message
    assert message.endswith("Use the embedded corpus instead: --dataset pydoc")
    with pytest.raises(DatasetUnavailable, match="corrupt"):  # A bad cached copy is not trusted.
        load_text("shakespeare")


def test_shakespeare_offline(no_network):
    with pytest.raises(DatasetUnavailable) as info:
        load_text("shakespeare")
    message = str(info.value)
    url = "http://127.0.0.1:9/tinyshakespeare/input.txt"
    assert message.startswith(f"could not download shakespeare from {url} (no network?): ")
    assert "\n" not in message and len(message) < 300 and message.endswith("--dataset pydoc")
