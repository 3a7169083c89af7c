"""Naive Bayes spam filter: multinomial word counts, Laplace smoothing, log space.

Reproduces A 10.3. With the words of a message assumed independent given the class,

    P(spam | w1..wn) = P(w1|spam) ... P(wn|spam) P(spam) / evidence,

and the classifier works with logarithms (a product of many small probabilities underflows).
P(w|c) = (count(w, c) + alpha) / (words in c + alpha |V|) is the Laplace-smoothed estimate (the
notes give no smoothing; without it one unseen word zeroes a class).

1. The notes' 6-message corpus (HAND_CORPUS): the posterior of "win money now" is 1331/1523,
   computed by hand in the test from the counts.
2. The embedded corpus (CORPUS, written for this project): the NumPy classifier's log-posteriors
   equal `sklearn.naive_bayes.MultinomialNB(alpha)` to 1e-10, and the same posteriors through
   `keras.ops` (float32) on the backend; held-out accuracy on HELD_OUT.
3. The notes' denominator P(w1)...P(wn) (or none at all) does not depend on the class: dropping it
   changes the scores, not the argmax. (Divided by the product of the word marginals, the two
   scores are not probabilities: they do not sum to 1.)

    python -m recipes.naive_bayes
    KERAS_BACKEND=torch python -m recipes.naive_bayes --alpha 0.5

Measured, default run (a few seconds, mostly imports): hand posterior 0.873933 = 1331/1523;
max |log-posterior - sklearn| 1.8e-14, keras.ops (float32) within 8e-6; held-out accuracy 1.0
(8 of 8); the notes' two scores sum to 0.64 .. 17.4.

Outputs (under --out, default runs/naive_bayes): words.png (the most spam-indicative words),
summary.json.
"""

import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "A 10.3"

# The notes' check: a hand-made corpus of six messages (1 = spam). Counts, for the hand computation:
# spam: win 3, money 2, now 2 (7 words); ham: lunch 2, meeting 2, now 1, money 1 (6 words).
HAND_CORPUS = [
    ("win money", 1),
    ("win win now", 1),
    ("money now", 1),
    ("lunch now", 0),
    ("meeting lunch", 0),
    ("money meeting", 0),
]
HAND_QUERY = "win money now"

# A small corpus written for this recipe (no download).
CORPUS = [
    ("Win a free prize now, click the link", 1),
    ("Cheap loans, no credit check, apply now", 1),
    ("You have won cash! Claim your free reward today", 1),
    ("Limited offer: free entry to win a holiday", 1),
    ("Urgent: your account wins a cash bonus, click here", 1),
    ("Buy cheap watches, best price, free delivery", 1),
    ("Congratulations, you are selected for a free gift card", 1),
    ("Earn money fast from home, click to claim", 1),
    ("Lowest price pills, order now, free shipping", 1),
    ("Exclusive deal: double your money today only", 1),
    ("Final notice: claim your prize money before midnight", 1),
    ("Hot singles near you, click the link now", 1),
    ("Are we still meeting for lunch tomorrow?", 0),
    ("The lecture notes for Tuesday are on the course page", 0),
    ("Can you send me the slides from the meeting", 0),
    ("Dinner at my place on Friday, bring the kids", 0),
    ("I pushed the fix, please review the pull request", 0),
    ("Happy birthday! See you at the party tonight", 0),
    ("The train is late, I will be there in twenty minutes", 0),
    ("Reminder: project meeting moved to Thursday afternoon", 0),
    ("Thanks for lunch, let us do it again next week", 0),
    ("Could you pick up milk and bread on the way home", 0),
    ("The homework is due Monday, the notes cover chapter ten", 0),
    ("Mom called, call her back when you are free", 0),
]
HELD_OUT = [
    ("Click now to claim your free cash prize", 1),
    ("Cheap pills, best price, order today", 1),
    ("Win money fast, limited offer", 1),
    ("Your reward is waiting, click the link", 1),
    ("See you at the meeting on Thursday", 0),
    ("Can we move lunch to Friday", 0),
    ("The slides for the lecture are on the page", 0),
    ("I will call you back after dinner", 0),
]
CLASSES = ("ham", "spam")


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    alpha: float = cli.option(1.0, "Laplace (additive) smoothing alpha; > 0")
    quick: bool = cli.option(False, "the same run (it takes a second)")


UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")


# ---- the classifier, from scratch ---------------------------------------------------------------


def tokenize(text):
    return re.findall(r"[a-z]+", text.lower())


def vocabulary(messages):
    return sorted({word for text in messages for word in tokenize(text)})


def count_matrix(messages, vocab):
    """(messages, |V|) word counts; words outside `vocab` are ignored."""
    index = {word: j for j, word in enumerate(vocab)}
    counts = np.zeros((len(messages), len(vocab)))
    for i, text in enumerate(messages):
        for word in tokenize(text):
            if word in index:
                counts[i, index[word]] += 1
    return counts


def fit(counts, labels, alpha=1.0, classes=2):
    """log P(c) (classes,) and the smoothed log P(w|c) (classes, |V|), float64."""
    labels = np.asarray(labels)
    per_class = np.stack([counts[labels == c].sum(axis=0) for c in range(classes)])
    log_prior = np.log(np.bincount(labels, minlength=classes) / len(labels))
    smoothed = per_class + alpha
    log_likelihood = np.log(smoothed / smoothed.sum(axis=1, keepdims=True))
    return log_prior, log_likelihood


def joint_log(counts, log_prior, log_likelihood):
    """log P(c) + sum_w count(w) log P(w|c): the numerator, (messages, classes)."""
    return counts @ log_likelihood.T + log_prior


def log_posterior(counts, log_prior, log_likelihood):
    """log P(c | message): the numerator normalised by the evidence, a log-sum-exp over classes."""
    joint = joint_log(counts, log_prior, log_likelihood)
    top = joint.max(axis=1, keepdims=True)
    return joint - (top + np.log(np.exp(joint - top).sum(axis=1, keepdims=True)))


def log_posterior_ops(counts, log_prior, log_likelihood):
    """The same log-posteriors through keras.ops (float32), on the backend."""
    counts = keras.ops.convert_to_tensor(counts, "float32")
    joint = keras.ops.matmul(counts, keras.ops.transpose(log_likelihood.astype("float32")))
    joint = joint + log_prior.astype("float32")
    return keras.ops.log_softmax(joint, axis=1)


def notes_scores(counts, log_prior, log_likelihood):
    """The notes' form in logs: numerator minus log of P(w1)...P(wn), the words' marginals."""
    log_marginal = np.log(np.exp(log_likelihood + log_prior[:, None]).sum(axis=0))
    return joint_log(counts, log_prior, log_likelihood) - (counts @ log_marginal)[:, None]


# ---- the run ------------------------------------------------------------------------------------


def hand_check(alpha, summary):
    texts, labels = zip(*HAND_CORPUS)
    vocab = vocabulary(texts)
    log_prior, log_likelihood = fit(count_matrix(texts, vocab), labels, alpha)
    posterior = np.exp(log_posterior(count_matrix([HAND_QUERY], vocab), log_prior, log_likelihood))
    print(f"1. six-message corpus, vocabulary {vocab}:")
    print(f"   P(spam | {HAND_QUERY!r}) = {posterior[0, 1]:.6f}")
    summary.update(hand_vocabulary=vocab, hand_posterior_spam=float(posterior[0, 1]))


def sklearn_check(train_counts, labels, test_counts, log_prior, log_likelihood, alpha):
    from sklearn.naive_bayes import MultinomialNB

    model = MultinomialNB(alpha=alpha).fit(train_counts, labels)
    ours = log_posterior(test_counts, log_prior, log_likelihood)
    theirs = model.predict_log_proba(test_counts)
    return float(np.abs(ours - theirs).max()), float(np.abs(np.exp(ours) - np.exp(theirs)).max())


def plot_words(path, vocab, log_likelihood, top=15):
    ratio = log_likelihood[1] - log_likelihood[0]
    order = np.argsort(ratio)[::-1][:top]
    plt = plots.pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.barh(np.arange(top)[::-1], ratio[order], color="tab:red")
    ax.set_yticks(np.arange(top)[::-1], [vocab[j] for j in order])
    ax.set(xlabel="log P(w | spam) - log P(w | ham)", title="most spam-indicative words")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.naive_bayes", description=__doc__.splitlines()[0]
    )
    cli.reject_unused(config, UNUSED, "naive_bayes", "has one fixed corpus and trains nothing")
    if not config.alpha > 0:
        raise cli.UsageError(f"--alpha must be positive, got {config.alpha}")
    out = Path(config.out or "runs/naive_bayes")
    out.mkdir(parents=True, exist_ok=True)
    engine.set_seed(config.seed)
    summary = {"backend": engine.backend(), "seed": config.seed, "alpha": config.alpha}
    hand_check(config.alpha, summary)

    texts, labels = zip(*CORPUS)
    test_texts, test_labels = zip(*HELD_OUT)
    labels, test_labels = np.asarray(labels), np.asarray(test_labels)
    vocab = vocabulary(texts)
    train_counts, test_counts = count_matrix(texts, vocab), count_matrix(test_texts, vocab)
    log_prior, log_likelihood = fit(train_counts, labels, config.alpha)
    both = np.concatenate([train_counts, test_counts])
    posterior = log_posterior(test_counts, log_prior, log_likelihood)
    accuracy = float((posterior.argmax(1) == test_labels).mean())
    log_diff, prob_diff = sklearn_check(
        train_counts, labels, both, log_prior, log_likelihood, config.alpha
    )
    by_ops = keras.ops.convert_to_numpy(log_posterior_ops(both, log_prior, log_likelihood))
    ops_diff = float(np.abs(by_ops - log_posterior(both, log_prior, log_likelihood)).max())
    print(f"2. {len(CORPUS)} training messages, {len(vocab)} words; held-out accuracy {accuracy:.3f}")
    print(f"   max |log-posterior - MultinomialNB| {log_diff:.2e} (posteriors {prob_diff:.2e});")
    print(f"   keras.ops ({engine.backend()}, float32) within {ops_diff:.2e}")

    joint = joint_log(both, log_prior, log_likelihood)
    notes = notes_scores(both, log_prior, log_likelihood)
    full = log_posterior(both, log_prior, log_likelihood)
    same = bool(np.array_equal(joint.argmax(1), full.argmax(1)))
    same_notes = bool(np.array_equal(notes.argmax(1), full.argmax(1)))
    notes_sums = np.exp(notes).sum(axis=1)
    print(f"3. argmax unchanged without the denominator: {same}; with P(w1)..P(wn): {same_notes}")
    print(f"   the notes' two scores sum to {notes_sums.min():.3g} .. {notes_sums.max():.3g}, not 1")
    for text, row in zip(test_texts, np.exp(posterior)):
        print(f"   P(spam) = {row[1]:.4f}  {text}")
    summary.update(
        vocabulary_size=len(vocab),
        held_out_accuracy=accuracy,
        held_out_spam_posteriors=np.exp(posterior[:, 1]).tolist(),
        sklearn_max_log_difference=log_diff,
        sklearn_max_posterior_difference=prob_diff,
        ops_max_log_difference=ops_diff,
        argmax_unchanged_without_denominator=same,
        argmax_unchanged_notes_denominator=same_notes,
        notes_score_sums=[float(notes_sums.min()), float(notes_sums.max())],
    )
    plot_words(out / "words.png", vocab, log_likelihood)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
