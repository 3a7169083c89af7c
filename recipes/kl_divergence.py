"""Cross-entropy and KL divergence: discrete, between Gaussians in closed form, and by Monte Carlo.

Reproduces A 9.2:

    H(P) = -sum p log p,   H(P, Q) = -sum p log q,   KL(P || Q) = H(P, Q) - H(P) >= 0 (Gibbs),

and for two normal distributions (sigma a standard deviation)

    KL(N(mu1, sigma1^2) || N(mu2, sigma2^2)) = log(sigma2 / sigma1)
                                                + (sigma1^2 + (mu1 - mu2)^2) / (2 sigma2^2) - 1/2,

so KL(N(0, 1) || N(1, 2^2)) = log 2 - 1/4 = 0.4431471805599453 and the reverse
KL(N(1, 2^2) || N(0, 1)) = 2 - log 2 = 1.3068528194400546: KL is not symmetric. The recipe
computes both in float64 NumPy, in keras.ops on the backend, and as Monte-Carlo means of
log p(x) - log q(x) over --samples draws of x ~ P (keras.random, seeded); the discrete KL in
keras.ops equals `keras.losses.KLDivergence` on probability vectors.

    python -m recipes.kl_divergence
    KERAS_BACKEND=torch python -m recipes.kl_divergence --samples 100000 --seed 1

Outputs (under --out, default runs/kl_divergence): kl.png (the two densities, and KL in both
directions as Q's mean moves), summary.json. Takes a second or two.
"""

import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

from recipes import engine
from recipes.common import cli, plots

keras = cli.lazy_import("keras")

SECTION = "A 9.2"
P, Q = (0.0, 1.0), (1.0, 2.0)  # (mean, standard deviation) of the notes' example
KL_PQ = 0.4431471805599453  # KL(N(0, 1) || N(1, 2^2)) = log 2 - 1/4
KL_QP = 1.3068528194400546  # KL(N(1, 2^2) || N(0, 1)) = 2 - log 2
DISCRETE = ([0.1, 0.2, 0.3, 0.4], [0.25, 0.25, 0.25, 0.25])  # an example pair of distributions


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    samples: int = cli.option(1_000_000, "Monte-Carlo draws of x ~ P for each direction")

    def __post_init__(self):
        if self.samples < 2:
            raise cli.UsageError(f"--samples must be at least 2, got {self.samples}")


QUICK = dict(samples=100_000)
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")


def entropy(p):
    """H(P) = -sum p log p (0 log 0 = 0), float64."""
    p = np.asarray(p, "float64")
    return float(-np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0.0)))


def cross_entropy(p, q):
    """H(P, Q) = -sum p log q, float64; +inf where q = 0 < p."""
    p, q = np.asarray(p, "float64"), np.asarray(q, "float64")
    with np.errstate(divide="ignore"):
        return float(-np.sum(np.where(p > 0, p * np.log(q), 0.0)))


def kl_discrete(p, q):
    """KL(P || Q) = H(P, Q) - H(P), float64."""
    return cross_entropy(p, q) - entropy(p)


def kl_discrete_ops(p, q):
    """sum p log(p / q) in keras.ops on the backend (float32), for p, q > 0."""
    p, q = keras.ops.convert_to_tensor(p, "float32"), keras.ops.convert_to_tensor(q, "float32")
    return float(keras.ops.sum(p * (keras.ops.log(p) - keras.ops.log(q))))


def kl_normal(mu1, sigma1, mu2, sigma2, ops=math):
    """KL(N(mu1, sigma1^2) || N(mu2, sigma2^2)) in closed form (with `ops=keras.ops`: on tensors)."""
    return ops.log(sigma2 / sigma1) + (sigma1**2 + (mu1 - mu2) ** 2) / (2 * sigma2**2) - 0.5


def normal_log_density(x, mu, sigma):
    return -0.5 * keras.ops.square((x - mu) / sigma) - math.log(sigma) - 0.5 * math.log(2 * math.pi)


def kl_monte_carlo(p, q, samples, seed):
    """Mean of log p(x) - log q(x) over `samples` draws x ~ P = N(p[0], p[1]^2), on the backend:
    (estimate, its standard error)."""
    x = p[0] + p[1] * keras.random.normal((samples,), seed=seed)
    terms = normal_log_density(x, *p) - normal_log_density(x, *q)
    mean = float(keras.ops.mean(terms))
    return mean, float(keras.ops.std(terms)) / math.sqrt(samples)


def plot(path, p, q):
    plt = plots.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    x = np.linspace(-6, 7, 400)
    for (mu, sigma), name in ((p, "P"), (q, "Q")):
        density = np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
        left.plot(x, density, label=f"{name} = N({mu:g}, {sigma:g}^2)")
    left.set(xlabel="x", ylabel="density", title="the notes' two normal distributions")
    left.legend()
    means = np.linspace(-4, 4, 161)
    right.plot(means, [kl_normal(*p, m, q[1]) for m in means], label="KL(P || Q)")
    right.plot(means, [kl_normal(m, q[1], *p) for m in means], label="KL(Q || P)")
    right.plot([q[0]] * 2, [KL_PQ, KL_QP], "ko", ms=4)
    right.set(xlabel="mean of Q (sd 2)", ylabel="nats", title="KL is not symmetric")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    config = cli.parse(
        Config, argv, prog="python -m recipes.kl_divergence", description=__doc__.splitlines()[0],
        quick=QUICK,
    )  # fmt: skip
    cli.reject_unused(config, UNUSED, "kl_divergence")
    out = Path(config.out or "runs/kl_divergence")
    engine.set_seed(config.seed)
    seed = keras.random.SeedGenerator(config.seed)
    p, q = DISCRETE
    discrete = {
        "entropy": entropy(p),
        "cross_entropy": cross_entropy(p, q),
        "kl": kl_discrete(p, q),
        "kl_reverse": kl_discrete(q, p),
        "kl_ops": kl_discrete_ops(p, q),
        "keras_kl_divergence": float(keras.losses.KLDivergence()(np.array([p]), np.array([q]))),
    }
    gaussian = {
        "kl_pq": kl_normal(*P, *Q),
        "kl_qp": kl_normal(*Q, *P),
        "kl_pq_ops": float(kl_normal(*map(keras.ops.convert_to_tensor, (*P, *Q)), ops=keras.ops)),
        "kl_qp_ops": float(kl_normal(*map(keras.ops.convert_to_tensor, (*Q, *P)), ops=keras.ops)),
    }
    gaussian["mc_pq"], gaussian["mc_pq_se"] = kl_monte_carlo(P, Q, config.samples, seed)
    gaussian["mc_qp"], gaussian["mc_qp_se"] = kl_monte_carlo(Q, P, config.samples, seed)
    print(f"P = {p}, Q = {q}: H(P) {discrete['entropy']:.6f}, H(P, Q) {discrete['cross_entropy']:.6f}")
    print(
        f"  KL(P || Q) = H(P, Q) - H(P) = {discrete['kl']:.6f} (keras.losses.KLDivergence "
        f"{discrete['keras_kl_divergence']:.6f}), KL(Q || P) = {discrete['kl_reverse']:.6f}"
    )
    for key, a, b in (("pq", P, Q), ("qp", Q, P)):
        print(
            f"KL(N({a[0]:g}, {a[1]:g}^2) || N({b[0]:g}, {b[1]:g}^2)) = {gaussian['kl_' + key]!r}; "
            f"Monte Carlo ({config.samples:,} draws) {gaussian['mc_' + key]:.4f} "
            f"+- {gaussian['mc_' + key + '_se']:.4f}"
        )
    out.mkdir(parents=True, exist_ok=True)
    plot(out / "kl.png", P, Q)
    summary = {"backend": engine.backend(), "discrete": discrete, "gaussian": gaussian}
    summary["config"] = dataclasses.asdict(config)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
