"""char_rnn's data: the character vocabulary, windows of a corpus as parallel streams, and the notes'
two toy strings (B 4.2.1.1 and B 4.2.1.2) as one-hot windows."""

import numpy as np

from recipes.common import cli
from recipes.common.vocabulary import Vocabulary

SHORT = "wow it's amazing!"
LONG = (
    "if you want to build a ship, don't drum up people together to "
    "collect wood and don't assign them tasks and work, but rather "
    "teach them to long for the endless immensity of the sea."
)
WINDOW = 10  # the long sentence's sliding window (the notes' sequence_length)


def char_vocabulary(text):
    """The sorted distinct characters of `text`: the notes' `list(set(text))` orders them
    differently in every process."""
    return Vocabulary.build([text], order="alphabetical")


def encode(vocab, text):
    """Character ids of `text`, int32 (N,)."""
    return np.array(vocab.encode(text), "int32")


def decode(vocab, ids):
    """The string of character ids `ids`."""
    return "".join(vocab.decode(ids))


def streams(ids, batch_size, seq_length):
    """Splits the encoded text into `batch_size` contiguous streams of whole windows.

    Returns inputs and targets of shape (windows, batch_size, seq_length): window k of stream b is
    the characters [k T, (k + 1) T) of that stream, and its targets the same shifted by one, so a
    stream's hidden state can run on from one window to the next. With batch 1 these are
    min-char-rnn's windows p = 0, 25, 50, ... read one after another (it also stops before the last
    partial window); char-rnn reads 50 streams in parallel.
    """
    per_stream = (len(ids) - 1) // batch_size
    windows = per_stream // seq_length
    if windows < 1:
        raise cli.UsageError(
            f"the text ({len(ids)} characters) is too short for {batch_size} streams of "
            f"{seq_length}-character windows"
        )
    span = windows * seq_length
    starts = np.arange(batch_size) * per_stream
    x = np.stack([ids[s : s + span] for s in starts])
    y = np.stack([ids[s + 1 : s + span + 1] for s in starts])
    shape = (batch_size, windows, seq_length)
    return x.reshape(shape).swapaxes(0, 1), y.reshape(shape).swapaxes(0, 1)


def toy_data(which):
    """One-hot inputs, target ids and the vocabulary of the short string or the long sentence.

    short: one sequence of 16 steps over 13 characters. long: 180 characters, 25 distinct, 170
    windows of 10, fed batch-first as (170, 10, 25). The notes' code has bugs that are not copied:
    `eye[x - 1]` shifts every one-hot vector by one (the first character becomes the last), and
    `nn.RNN` without `batch_first` runs the recurrence across the 170 windows instead of along each.
    """
    if which == "short":
        vocab = char_vocabulary(SHORT)
        ids = encode(vocab, SHORT)
        x, y = ids[None, :-1], ids[None, 1:]  # (1, 16)
    else:
        vocab = char_vocabulary(LONG)
        ids = encode(vocab, LONG)
        starts = range(len(LONG) - WINDOW)
        x = np.stack([ids[i : i + WINDOW] for i in starts])  # (170, 10)
        y = np.stack([ids[i + 1 : i + WINDOW + 1] for i in starts])
    eye = np.eye(len(vocab), dtype="float32")
    return eye[x], y.astype("int32"), vocab  # eye[x], not the notes' eye[x - 1]
