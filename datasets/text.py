"""Text corpora for the language-model recipes: an embedded one by default, Tiny Shakespeare on request.

    from datasets.text import load_text, words
    text = load_text()                  # "pydoc": about 465,000 characters, no network needed
    text = load_text("shakespeare")     # Tiny Shakespeare, 1,115,394 characters (downloaded once)
    text = load_text("file", "my.txt")  # a local UTF-8 file, or every *.txt under a folder
    tokens = words(text)                # ["the", "python", "language", "reference", ...]

"pydoc" is the English text of the Python standard library's `pydoc_data.topics.topics`: the
help pages that `help("if")`, `help("LOOPING")` and friends print (the language reference's
sections on statements, operators, types, ...), joined in sorted key order. It ships with every
CPython, so it is always there; its size depends on the Python version (464,970 characters, 103
distinct ones, over 79 topics on Python 3.11.7).

"shakespeare" is Tiny Shakespeare, the `input.txt` of karpathy/char-rnn (40,000 lines from the
plays, 1,115,394 bytes of ASCII). It comes from GitHub, or from the mirror named by the environment
variable RECIPES_DATA_ORIGIN (a base URL holding `tinyshakespeare/input.txt`, as for
`datasets.remote`), goes through `keras.utils.get_file` into the Keras cache ($KERAS_HOME, else
~/.keras) under `datasets/`, and is checked against its sha256 hash. Any failure becomes a
`DatasetUnavailable` whose one-line message names the embedded alternative, `--dataset pydoc`.
"""

import functools
import os
import re
from pathlib import Path

from datasets import remote
from datasets.remote import DatasetUnavailable, _short

TEXTS = ("pydoc", "shakespeare", "file")

ORIGIN = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
SHAKESPEARE_PATH = "tinyshakespeare/input.txt"
SHAKESPEARE_FILE = "tiny_shakespeare.txt"  # Its name in the Keras cache.
# The sha256 and size that tensorflow_datasets records for this URL
# (tensorflow_datasets/url_checksums/tiny_shakespeare.txt); we could not download the file here to
# check it ourselves, so a mismatch on first online use would mean this hash needs a second look.
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_SIZE = 1_115_394

FALLBACK = "Use the embedded corpus instead: --dataset pydoc"


@functools.lru_cache(maxsize=1)
def _pydoc():
    from pydoc_data.topics import topics

    return "".join(topics[key] for key in sorted(topics))


def _fetch_shakespeare():
    """Downloads (or finds in the Keras cache) Tiny Shakespeare; returns its path."""
    return remote.fetch(
        "shakespeare",
        SHAKESPEARE_FILE,
        default_origin=ORIGIN,
        path=SHAKESPEARE_PATH,
        file_hash=SHAKESPEARE_SHA256,
        fallback=FALLBACK,
    )


def _read(path, name):
    try:
        return Path(path).read_text(encoding="utf-8")
    except Exception as e:
        raise DatasetUnavailable(f"could not read {name} from {path}: {_short(e)}. {FALLBACK}") from None


def _local(data_dir):
    """The text of a UTF-8 file, or of every *.txt file under a folder (sorted, joined by newlines)."""
    if data_dir and os.path.isfile(data_dir):
        return _read(data_dir, "file")
    files = sorted(Path(data_dir).rglob("*.txt")) if data_dir and os.path.isdir(data_dir) else []
    if not files:
        raise DatasetUnavailable(
            f"no text file at {data_dir} (--data-dir names a .txt file or a folder). {FALLBACK}"
        )
    return "\n".join(_read(path, "file") for path in files)


def load_text(name="pydoc", data_dir=None):
    """The whole corpus `name` as one string (see the module docstring for what each one is)."""
    if name == "pydoc":
        return _pydoc()
    if name == "shakespeare":
        return _read(_fetch_shakespeare(), "shakespeare")
    if name == "file":
        return _local(data_dir)
    raise DatasetUnavailable(f"unknown text {name!r}: choose one of {', '.join(TEXTS)}. {FALLBACK}")


_WORD = re.compile(r"(?:[^\W\d_]|')+")


def words(text):
    """Lower-case word tokens: runs of letters and apostrophes ("it's", "don't"); digits, underscores
    and punctuation separate words, typographic apostrophes count as "'", and apostrophes at either
    end of a word (quotes) are dropped."""
    tokens = (token.strip("'") for token in _WORD.findall(text.lower().replace("\u2019", "'")))
    return [token for token in tokens if token]
