"""Generative-model basics: counting parameters, and maximum likelihood as minimum KL.

Reproduces D 9.1-9.4 (introduction, independence, autoregressive models, maximum likelihood):

1. parameter counts of the notes: an RGB pixel has 256^3 cases, 256^3 - 1 = 16,777,215 free
   parameters; n binary pixels have 2^n cases and 2^n - 1 parameters; independent pixels need n;
   the chain rule needs 1 + 2 + ... + 2^(n-1) = 2^n - 1 (no saving); a Markov chain (each pixel
   given the one before it) needs 2n - 1, 1,567 for the 784 pixels of MNIST;
2. the independent and the Markov models fitted by maximum likelihood (counting) to binarised
   mnist5k (pixels > 0.5, raster order): the independent model's parameters are the pixel means,
   and the Markov model's 1,567 parameters give a better held-out log-likelihood; samples of both;
3. maximum likelihood = minimum KL: a categorical model (softmax logits) and a Gaussian fitted by
   gradient ascent on the empirical log-likelihood (Adam, through the engine on the backend) reach
   the empirical frequencies and the sample mean and biased variance; along the way
   KL(P_data || P_theta) + E_data[log P_theta] = -H(P_data) stays constant, so each step lowers
   the KL exactly as much as it raises the log-likelihood;
4. the variance of a Monte-Carlo mean of T draws is Var / T (T = 10, 100, 1000).

    python -m recipes.generative_basics
    KERAS_BACKEND=torch python -m recipes.generative_basics --seed 1

Outputs (under --out, default runs/generative_basics): mle.png (KL and negative log-likelihood
during the fit), samples.png (independent and Markov samples), summary.json. A few seconds.
"""

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import binary_digits, cli, gradient_descent, plots

keras = cli.lazy_import("keras")

SECTION = "D 9.1-9.4"
PIXELS = 784


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    updates: int = cli.option(500, "Adam steps of the maximum-likelihood fits")
    learning_rate: float = cli.option(0.05, "Adam learning rate of the fits")
    draws: int = cli.option(200, "samples of the categorical and Gaussian data sets")
    repeats: int = cli.option(2000, "repetitions of each Monte-Carlo mean for its variance")

    def __post_init__(self):
        if min(self.updates, self.draws, self.repeats) < 2 or not self.learning_rate > 0:
            raise cli.UsageError(
                "--updates, --draws and --repeats must be at least 2, --learning-rate > 0"
            )


QUICK = dict(updates=300, repeats=500)
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")
CATEGORICAL = np.array([0.5, 0.25, 0.15, 0.1])  # the distribution the categorical data are drawn from


# ---------------------------------------------------------------------------------------------
# 1. Counting


def full_joint(n):
    """Free parameters of a distribution over n binary variables: 2^n cases, minus one (sum 1)."""
    return 2**n - 1


def independent(n):
    return n


def chain_rule(n):
    """p(x1) p(x2 | x1) ... p(xn | x1..xn-1): 2^(k-1) parameters for the k-th factor."""
    return sum(2**k for k in range(n))


def markov(n):
    """p(x1) prod p(xk | xk-1): one for x1, two for each later pixel."""
    return 2 * n - 1


def counts():
    return {
        "rgb_pixel": 256**3 - 1,
        "full_joint_784": full_joint(PIXELS),
        "independent_784": independent(PIXELS),
        "chain_rule_equals_full_joint": all(chain_rule(n) == full_joint(n) for n in range(1, 65)),
        "markov_784": markov(PIXELS),
    }


# ---------------------------------------------------------------------------------------------
# 2. Independent and Markov models of binarised digits (maximum likelihood by counting)


def binarised_digits():
    train, test, _ = binary_digits.load()
    return tuple(d.reshape(-1, PIXELS).astype("int8") for d in (train, test))


def fit_markov(x, smoothing=1.0):
    """p(x_1 = 1) and p(x_i = 1 | x_{i-1} = 0 or 1) for i >= 2, in raster order: 1 + 2 (n - 1)
    = 2n - 1 numbers, each a smoothed ratio of counts."""
    first = (x[:, 0].sum() + smoothing) / (len(x) + 2 * smoothing)
    prev, cur = x[:, :-1], x[:, 1:]
    given = np.stack([((cur == 1) & (prev == v)).sum(0) + smoothing for v in (0, 1)]) / np.stack(
        [(prev == v).sum(0) + 2 * smoothing for v in (0, 1)]
    )
    return first, given  # scalar and (2, n - 1)


def log_likelihood_markov(x, first, given):
    p1 = np.where(x[:, 0] == 1, first, 1 - first)
    p = given[x[:, :-1], np.arange(PIXELS - 1)]  # p(x_i = 1 | x_{i-1})
    rest = np.where(x[:, 1:] == 1, p, 1 - p)
    return np.log(p1) + np.log(rest).sum(1)


def sample_models(p, first, given, count, rng):
    independent_samples = (rng.random((count, PIXELS)) < p).astype("int8")
    chain = np.zeros((count, PIXELS), "int8")
    chain[:, 0] = rng.random(count) < first
    for i in range(1, PIXELS):
        chain[:, i] = rng.random(count) < given[chain[:, i - 1], i - 1]
    return independent_samples, chain


# ---------------------------------------------------------------------------------------------
# 3. Maximum likelihood by gradient ascent = minimum KL


def fit_by_gradient(config, categories, values):
    """Adam on the negative mean log-likelihood of a categorical (logits) and a Gaussian (mean,
    log standard deviation), one compiled step for both; returns (fitted, the two NLL curves)."""
    logits = keras.Variable(np.zeros(len(CATEGORICAL), "float32"), name="logits")
    mean = keras.Variable(np.zeros((), "float32"), name="mean")
    log_sd = keras.Variable(np.zeros((), "float32"), name="log_sd")
    one_hot = keras.ops.convert_to_tensor(np.eye(len(CATEGORICAL), dtype="float32")[categories])
    y = keras.ops.convert_to_tensor(values.astype("float32"))

    def costs():
        categorical = -keras.ops.mean(keras.ops.sum(one_hot * keras.ops.log_softmax(logits), axis=1))
        z = (y - mean) / keras.ops.exp(log_sd)
        gaussian = keras.ops.mean(0.5 * z * z + log_sd) + 0.5 * math.log(2 * math.pi)
        return [categorical, gaussian]

    curves = gradient_descent.descend(
        costs, [logits, mean, log_sd], keras.optimizers.Adam(config.learning_rate), config.updates
    )
    fitted = {
        "probabilities": keras.ops.convert_to_numpy(keras.ops.softmax(logits)).astype(float).tolist(),
        "mean": float(keras.ops.convert_to_numpy(mean)),
        "variance": float(keras.ops.convert_to_numpy(keras.ops.exp(2 * log_sd))),
    }
    return fitted, curves


def mc_variances(rng, repeats, sizes=(10, 100, 1000)):
    """Var of the mean of T draws of g(x) = x^2, x ~ N(0, 1) (Var g = 2), over `repeats` means."""
    return {t: float(np.var((rng.standard_normal((repeats, t)) ** 2).mean(1))) for t in sizes}


def plot_mle(path, kl_curve, nll_curve, entropy):
    plt = plots.pyplot()
    fig, (ax, log_ax) = plt.subplots(1, 2, figsize=(10, 3.8))
    steps = np.arange(len(kl_curve))
    ax.plot(steps, nll_curve, label="-E_data[log P_theta] (negative log-likelihood)")
    ax.plot(steps, kl_curve, label="KL(P_data || P_theta)")
    ax.axhline(entropy, color="0.5", ls="--", lw=0.8, label="H(P_data): their difference")
    ax.set(xlabel="Adam step", ylabel="nats", title="categorical fit: max likelihood = min KL")
    ax.set_xscale("symlog", linthresh=10)
    ax.legend(fontsize=8)
    log_ax.semilogy(steps, np.maximum(kl_curve, 1e-12))
    log_ax.set(xlabel="Adam step", ylabel="KL(P_data || P_theta), nats", title="the KL, log scale")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_samples(path, rows):
    plt = plots.pyplot()
    fig, axes = plt.subplots(len(rows), 8, figsize=(8, 1.1 * len(rows) + 0.3))
    for r, (name, images) in enumerate(rows):
        for k in range(8):
            axes[r, k].imshow(images[k].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[r, k].axis("off")
        axes[r, 0].set_title(name, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.generative_basics",
        description=__doc__.splitlines()[0], quick=QUICK,
    )  # fmt: skip
    cli.reject_unused(config, UNUSED, "generative_basics")
    out = Path(config.out or "runs/generative_basics")
    engine.set_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    summary = {"backend": engine.backend(), "counts": counts()}
    c = summary["counts"]
    print(f"RGB pixel: {c['rgb_pixel']:,} parameters; 784 binary pixels: 2^784 - 1 (full joint and")
    print(f"chain rule), {c['independent_784']} independent, {c['markov_784']:,} Markov")

    train, test = binarised_digits()
    p = binary_digits.fit_independent(train)
    first, given = fit_markov(train)
    ll = {
        "independent": float(binary_digits.log_likelihood_independent(test, p).mean()),
        "markov": float(log_likelihood_markov(test, first, given).mean()),
    }
    summary["digits"] = {
        "parameters": {"independent": int(p.size), "markov": int(1 + given.size)},
        "held_out_log_likelihood": ll,
        "train_images": len(train),
        "held_out_images": len(test),
    }
    print(f"binarised mnist5k, held-out log-likelihood per image: independent {ll['independent']:.1f}")
    print(f"nats ({p.size} parameters), Markov {ll['markov']:.1f} nats ({1 + given.size} parameters)")

    categories = rng.choice(len(CATEGORICAL), size=config.draws, p=CATEGORICAL)
    values = rng.normal(2.0, 1.5, size=config.draws)
    fitted, curves = fit_by_gradient(config, categories, values)
    frequencies = np.bincount(categories, minlength=len(CATEGORICAL)) / config.draws
    entropy = float(-np.sum(frequencies * np.log(frequencies)))
    kl_curve = curves[:, 0] - entropy  # KL(P_data || P_theta) = NLL - H(P_data)
    summary["mle"] = {
        **fitted,
        "frequencies": frequencies.tolist(),
        "sample_mean": float(values.mean()),
        "biased_variance": float(values.var()),
        "data_entropy": entropy,
        "nll_curve": curves[:, 0].tolist(),
        "gaussian_nll_curve": curves[:, 1].tolist(),
    }
    print(f"categorical MLE {np.round(fitted['probabilities'], 4)}, frequencies {frequencies}")
    print(
        f"Gaussian MLE mean {fitted['mean']:.4f} variance {fitted['variance']:.4f}; sample mean "
        f"{values.mean():.4f}, biased variance {values.var():.4f}"
    )
    summary["mc_variance"] = {str(t): v for t, v in mc_variances(rng, config.repeats).items()}
    print("variance of a Monte-Carlo mean (Var g = 2): " + ", ".join(
        f"T={t}: {v:.5f} (2/T = {2 / int(t):.5f})" for t, v in summary["mc_variance"].items()
    ))  # fmt: skip

    out.mkdir(parents=True, exist_ok=True)
    plot_mle(out / "mle.png", kl_curve, curves[:, 0], entropy)
    independent_samples, chain = sample_models(p, first, given, 8, rng)
    plot_samples(
        out / "samples.png",
        [
            ("held-out digits", test),
            ("independent pixels", independent_samples),
            ("Markov chain", chain),
        ],
    )
    summary["config"] = dataclasses.asdict(config)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
