"""Corpus BLEU (Papineni et al. 2002), shared by image captioning and the translation recipes."""

import collections
import math

import numpy as np


def _ngrams(tokens, n):
    return collections.Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def bleu_statistics(references, hypotheses, max_n=4):
    """Clipped matches and totals per n, the hypotheses' length c and the effective reference length r.

    For each hypothesis and n, an n-gram counts at most as often as it occurs in the one reference
    that has it most often ("modified precision"); r sums, per hypothesis, the length of the
    reference closest to the hypothesis' length (the shorter one on a tie).
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} reference lists for {len(hypotheses)} hypotheses")
    matches, totals = np.zeros(max_n, "int64"), np.zeros(max_n, "int64")
    hyp_length = ref_length = 0
    for refs, hyp in zip(references, hypotheses):
        if not refs:
            raise ValueError("every hypothesis needs at least one reference")
        hyp_length += len(hyp)
        ref_length += min((abs(len(r) - len(hyp)), len(r)) for r in refs)[1]
        for n in range(1, max_n + 1):
            counts = _ngrams(hyp, n)
            most = collections.Counter()
            for ref in refs:
                most |= _ngrams(ref, n)  # element-wise maximum over the references
            matches[n - 1] += sum(min(count, most[gram]) for gram, count in counts.items())
            totals[n - 1] += max(len(hyp) - n + 1, 0)
    return matches, totals, hyp_length, ref_length


def corpus_bleu(references, hypotheses, max_n=4):
    """Corpus BLEU-`max_n`: BP * exp(mean_n log p_n), uniform weights, no smoothing.

    Args:
        references: one list of reference token lists per hypothesis.
        hypotheses: token lists.
    Returns:
        A float in [0, 1]; 0 when some n has no match (or the hypotheses are empty). The precisions
        p_n = sum of clipped n-gram matches / sum of hypothesis n-grams are pooled over the corpus
        before the mean, and BP = min(1, exp(1 - r / c)).

    Example: corpus_bleu([[["a", "red", "circle"]]], [["a", "red", "circle"]], max_n=3) == 1.0
    """
    matches, totals, c, r = bleu_statistics(references, hypotheses, max_n)
    if c == 0 or (matches == 0).any():
        return 0.0
    log_precision = np.mean(np.log(matches / totals))
    brevity = 1.0 if c > r else math.exp(1.0 - r / c)
    return float(brevity * math.exp(log_precision))
