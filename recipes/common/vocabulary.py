"""Tokens <-> ids, shared by every text recipe (seq2seq, rnn_lm, word2vec, image captioning and the
translation recipes). Tokenisation stays outside models, in Python; only the ids reach Keras.

    vocab = Vocabulary.build([["a", "b", "a"]], specials=("<pad>", "<eos>"), unknown="<unk>")
    vocab.tokens            # ['<pad>', '<eos>', 'a', 'b', '<unk>']
    vocab.encode(["b", "z"])  # [3, 4]
"""

import collections

ORDERS = ("frequency", "frequency-alphabetical", "first-appearance", "alphabetical")


class Vocabulary:
    """A fixed list of tokens, id = position; `unknown` (a token of the list, or None) is what
    tokens outside the list encode to (None: they raise KeyError)."""

    def __init__(self, tokens, unknown=None):
        self.tokens = list(tokens)
        self.index = {token: i for i, token in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError("Vocabulary: the tokens must be distinct")
        if unknown is not None and unknown not in self.index:
            raise ValueError(f"Vocabulary: the unknown token {unknown!r} is not in the list")
        self.unknown = unknown

    @classmethod
    def build(
        cls,
        token_lists,
        specials=(),
        order="frequency",
        max_size=None,
        unknown=None,
        unknown_last=False,
    ):
        """Specials first (ids 0, 1, ...), then the tokens of `token_lists` in `order`, then (with
        `unknown_last`) the unknown token; at most `max_size` ids in all.

        order: "frequency" (ties: first appearance), "frequency-alphabetical" (ties: alphabetical),
        "first-appearance" or "alphabetical". `unknown` is added unless it is among the specials.
        """
        if order not in ORDERS:
            raise ValueError(f"Vocabulary: order must be one of {ORDERS}; got {order!r}")
        counts = collections.Counter()
        for tokens in token_lists:
            counts.update(tokens)  # a Counter keeps first-appearance order
        reserved = set(specials) | ({unknown} if unknown is not None else set())
        ranked = [token for token in counts if token not in reserved]
        if order == "frequency":
            ranked.sort(key=lambda token: -counts[token])  # stable: ties keep first appearance
        elif order == "frequency-alphabetical":
            ranked.sort(key=lambda token: (-counts[token], token))
        elif order == "alphabetical":
            ranked.sort()
        head = list(specials)
        tail = []
        if unknown is not None and unknown not in specials:
            (tail if unknown_last else head).append(unknown)
        if max_size is not None:
            keep = max_size - len(head) - len(tail)
            if keep < 1:
                raise ValueError(f"Vocabulary: a size of {max_size} leaves no room for tokens")
            ranked = ranked[:keep]
        return cls(head + ranked + tail, unknown)

    def __len__(self):
        return len(self.tokens)

    def __contains__(self, token):
        return token in self.index

    def encode(self, tokens):
        """Ids of `tokens`; tokens outside the vocabulary get the unknown id, or raise KeyError
        naming them when there is no unknown token."""
        if self.unknown is None:
            missing = [token for token in tokens if token not in self.index]
            if missing:
                raise KeyError(f"not in the vocabulary: {' '.join(map(str, missing))}")
            return [self.index[token] for token in tokens]
        unknown_id = self.index[self.unknown]
        return [self.index.get(token, unknown_id) for token in tokens]

    def decode(self, ids, end=None, skip=()):
        """The tokens of `ids` up to (without) the first `end` id, leaving out the ids in `skip`;
        an id past the end of the list decodes to the unknown token."""
        tokens = []
        for i in ids:
            i = int(i)
            if i == end:
                break
            if i in skip:
                continue
            tokens.append(self.tokens[i] if 0 <= i < len(self.tokens) else self.unknown)
        return tokens
