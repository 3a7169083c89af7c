"""Word-level text shared by rnn_lm and word2vec: sentences and tokens of a corpus, held-out
blocks, nearest words by cosine similarity and a PCA picture of embeddings (NumPy, outside models).

The helpers that look words up take a `recipes.common.vocabulary.Vocabulary` (id = row of the
embeddings)."""

import dataclasses
import re

import numpy as np

from datasets.text import load_text, words
from recipes.common import cli, plots

UNK = "<unk>"
START, END, UNKNOWN = "SENTENCE_START", "SENTENCE_END", "UNKNOWN_TOKEN"  # Britz's special tokens
PROBES = "list,class,return,string,could"  # words whose nearest neighbours the recipes print


@dataclasses.dataclass
class CorpusConfig(cli.RunConfig):
    """The flags of the recipes that learn word vectors from a text corpus (rnn_lm, word2vec)."""

    dataset: str = cli.option(
        "pydoc",
        "text corpus: pydoc (embedded), shakespeare (download) or file (--data-dir)",
        choices=("pydoc", "shakespeare", "file"),
    )
    data_dir: str = cli.option(None, "a .txt file or a folder of them (with --dataset file)")
    probes: str = cli.option(PROBES, "comma-separated words whose nearest words are printed")
    neighbours: int = cli.option(6, "nearest words shown per probe")


_SENTENCE_BREAK = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\n\s*\n")


def split_sentences(text):
    """Sentences: text split after . ! ? followed by white space, and at blank lines."""
    return [s.strip() for s in _SENTENCE_BREAK.split(text) if s and s.strip()]


def sentence_tokens(sentence):
    """`datasets.text.words` of a sentence, plus "." when it ends in . ! or ? (the assignment's ".")."""
    tokens = words(sentence)
    if tokens and sentence.rstrip("\"')]").endswith((".", "!", "?")):
        tokens.append(".")
    return tokens


def load_sentences(name="pydoc", data_dir=None):
    """The corpus as a list of token lists, one per sentence (empty sentences dropped)."""
    sentences = (sentence_tokens(s) for s in split_sentences(load_text(name, data_dir)))
    return [tokens for tokens in sentences if tokens]


def split_heldout(items, every=10, block=20):
    """(train, heldout): consecutive blocks of `block` items, every `every`-th block held out."""
    train, heldout = [], []
    for i, item in enumerate(items):
        (heldout if (i // block) % every == every - 1 else train).append(item)
    return train, heldout


def nearest_words(embeddings, vocab, word, k=6):
    """The k words whose embeddings have the highest cosine similarity with `word`'s: [(word, cos)]."""
    if word not in vocab:
        return []
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit[vocab.index[word]]
    similarity[vocab.index[word]] = -np.inf  # not its own neighbour
    order = np.argsort(-similarity, kind="stable")[:k]
    return [(vocab.tokens[i], float(similarity[i])) for i in order]


def nearest_table(embeddings, vocab, probes, k):
    """{probe: its k nearest words [(word, cos)]}; [] for a probe outside the vocabulary."""
    return {word: nearest_words(embeddings, vocab, word, k) for word in probes}


def nearest_lines(title, table):
    """`title`, then one line per probe of a `nearest_table`: its nearest words and their cosines."""
    lines = [title]
    for word, found in table.items():
        shown = ", ".join(f"{w} ({s:.2f})" for w, s in found) if found else "(not in the vocabulary)"
        lines.append(f"  {word:>8}: {shown}")
    return lines


def plot_embeddings(path, embeddings, vocab, count=100, title="word embeddings (PCA)"):
    """The first `count` words (the most frequent) projected on two principal components."""
    from sklearn.decomposition import PCA

    plt = plots.pyplot()
    shown = [w for w in vocab.tokens if w not in (UNK, UNKNOWN, START, END)][:count]
    points = PCA(2, random_state=0).fit_transform(embeddings[vocab.encode(shown)])
    fig, ax = plt.subplots(figsize=(9, 7))
    ax.scatter(points[:, 0], points[:, 1], s=6, color="tab:blue")
    for (px, py), word in zip(points, shown):
        ax.annotate(word, (px, py), fontsize=7, xytext=(2, 2), textcoords="offset points")
    ax.set(title=title, xticks=[], yticks=[])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
