"""The data of `image_captioning`: the generated shapes (`datasets.shapes`) and their captions as
word ids, in NumPy outside the model: the vocabulary of CS231n's assignment (<NULL> 0 pads,
<START> 1, <END> 2, <UNK> 3, then the words) and the padded id arrays."""

import collections
import dataclasses

import numpy as np

from datasets.shapes import make_shapes
from recipes.common import cli
from recipes.common.vocabulary import Vocabulary

NULL, START, END, UNK = "<NULL>", "<START>", "<END>", "<UNK>"
SPECIALS = (NULL, START, END, UNK)  # ids 0, 1, 2, 3 as in the assignment's vocabulary


def build_vocab(caption_lists):
    """<NULL>, <START>, <END>, <UNK>, then the training words in alphabetical order."""
    captions = (caption for captions in caption_lists for caption in captions)
    return Vocabulary.build(captions, specials=SPECIALS, order="alphabetical", unknown=UNK)


def encode_captions(captions, vocab, length):
    """(N, length) ids: <START> w1 .. wn <END>, then <NULL> (0); unknown words get <UNK>."""
    start, end = vocab.index[START], vocab.index[END]
    ids = np.zeros((len(captions), length), "int32")
    for row, caption in enumerate(captions):
        tokens = [start, *vocab.encode(caption), end]
        if len(tokens) > length:
            raise cli.UsageError(f"a caption of {len(caption)} words does not fit {length} tokens")
        ids[row, : len(tokens)] = tokens
    return ids


def decode_ids(ids, vocab):
    """Word lists from id rows: everything up to the first <END>, without <START>/<NULL>."""
    end, skip = vocab.index[END], (vocab.index[NULL], vocab.index[START])
    return [vocab.decode(row, end=end, skip=skip) for row in np.asarray(ids)]


def training_arrays(images, captions, vocab, length):
    """Every (image, caption) pair: images (3N, ...), decoder input ids, target ids (3N, length - 1).

    The decoder reads the caption without its last token and predicts it without its first
    (teacher forcing).
    """
    rows = [n for n, caps in enumerate(captions) for _ in caps]
    ids = encode_captions([c for caps in captions for c in caps], vocab, length)
    return images[rows], ids[:, :-1], ids[:, 1:]


def most_frequent_caption(captions):
    """The training caption (word list) that occurs most often; ties go to the first in sorted order.

    Given to every held-out image, it is the baseline an image-blind captioner reaches.
    """
    counts = collections.Counter(" ".join(c) for caps in captions for c in caps)
    best = min(counts.items(), key=lambda item: (-item[1], item[0]))[0]
    return best.split()


@dataclasses.dataclass
class Captions:
    """A run's generated images and captions, the vocabulary and the padded id arrays."""

    train_images: np.ndarray  # (N, S, S, 3)
    train_captions: list  # three word lists per image
    held_images: np.ndarray
    held_captions: list
    vocab: Vocabulary
    length: int  # tokens per caption: the longest one with <START> and <END>
    train_arrays: tuple  # images, decoder input ids, target ids: one row per caption
    held_arrays: tuple


def prepare(config):
    """The training and held-out images (drawn with another seed) as `Captions`."""
    shape_args = dict(size=config.image_size, noise=config.noise, two_shapes=config.two_shapes)
    train_images, train_captions = make_shapes(config.train_images, config.seed, **shape_args)
    held_images, held_captions = make_shapes(config.heldout_images, config.seed + 10_000, **shape_args)
    vocab = build_vocab(train_captions)
    length = max(len(c) for caps in train_captions + held_captions for c in caps) + 2
    data = Captions(
        train_images,
        train_captions,
        held_images,
        held_captions,
        vocab,
        length,
        training_arrays(train_images, train_captions, vocab, length),
        training_arrays(held_images, held_captions, vocab, length),
    )
    print(
        f"shapes: {len(train_images)} training images ({len(data.train_arrays[1])} captions), "
        f"{len(held_images)} held out; {len(vocab)} words, captions padded to {length} tokens"
    )
    return data
