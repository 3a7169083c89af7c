"""Wasserstein toy: TV, KL, JS and Earth-Mover distances between two parallel lines (WGAN example 1).

Reproduces the example of A 9.6 ("Wasserstein GAN", after Arjovsky et al. 2017, example 1):
Z ~ U[0, 1], P_0 is the distribution of (0, Z) and P_theta that of (theta, Z), two parallel vertical
segments in the plane. For theta != 0 their supports are disjoint and

    TV(P_0, P_theta) = 1,   KL(P_0 || P_theta) = KL(P_theta || P_0) = +inf,
    JS(P_0, P_theta) = log 2 = 0.6931471805599453,   W(P_0, P_theta) = |theta|,

and all four are 0 at theta = 0. Only the Earth-Mover (Wasserstein-1) distance shrinks as P_theta
moves towards P_0, so only it gives a usable gradient for theta: the other three are constant (or
infinite) everywhere except at 0, where they jump. That is the section's argument for the WGAN.
The recipe computes the distances in closed form and from seeded samples, and plots them against
theta with their derivatives. No training and no deep-learning backend: NumPy and SciPy only.

Outputs (under --out, default runs/wasserstein_toy): distances.png (distances, top row; d/dtheta,
bottom row), table.csv (the printed table), summary.json.

    python -m recipes.wasserstein_toy
    python -m recipes.wasserstein_toy --samples 2000 --seed 1

Measured, default run (a second or two): the closed forms above; from 500 samples of each, at
theta = 0.5: TV 1, KL inf, JS 0.6931, W 0.5011 (1-D check 0.5029); at theta = 0 the estimates are
the sampling noise of two independent samples (TV 0.118, W 0.029).
"""

import csv
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

from recipes.common import cli, plots

SECTION = "A 9.6"
LOG_2 = math.log(2)  # 0.6931471805599453, the JS divergence of distributions with disjoint supports
TABLE_THETAS = (-1.0, -0.5, -0.1, 0.0, 0.1, 0.5, 1.0)
NAMES = ("tv", "kl", "js", "w")


@dataclasses.dataclass
class Config(cli.RunConfig):
    epochs: int = cli.option(0, cli.HIDDEN)
    batch_size: int = cli.option(1, cli.HIDDEN)
    dataset: str = cli.option(None, cli.HIDDEN)
    data_dir: str = cli.option(None, cli.HIDDEN)
    resume: bool = cli.option(False, cli.HIDDEN)
    theta_max: float = cli.option(1.0, "plot theta over [-theta_max, theta_max]")
    points: int = cli.option(201, "values of theta for the closed forms (odd, so 0 is one of them)")
    estimates: int = cli.option(21, "values of theta for the sample estimates (odd)")
    samples: int = cli.option(500, "independent draws of each distribution per estimate")
    samples_1d: int = cli.option(20_000, "draws of U and of theta + U for the 1-D check")
    bins: int = cli.option(20, "histogram bins along the segment for TV, KL and JS")


QUICK = dict(points=41, estimates=11, samples=200)
UNUSED = ("epochs", "batch_size", "dataset", "data_dir", "resume")


# ---------------------------------------------------------------------------------------------
# The distances in closed form


def closed_form(theta):
    """{"tv", "kl", "js", "w"} between P_0 and P_theta, as the section gives them.

    Drawn on a fine grid of theta (`--points`) in distances.png.
    """
    if theta == 0:
        return {"tv": 0.0, "kl": 0.0, "js": 0.0, "w": 0.0}
    return {"tv": 1.0, "kl": math.inf, "js": LOG_2, "w": abs(float(theta))}


# ---------------------------------------------------------------------------------------------
# The distances computed from samples


def sample_line(theta, z):
    """Points (theta, z) of P_theta for draws z of U[0, 1]: shape (N, 2)."""
    return np.column_stack([np.full(len(z), float(theta)), z])


def histograms(p_points, q_points, bins):
    """Probability vectors of two 2-D point sets on a common grid.

    Every distinct x value gets its own column (the distributions are concentrated on vertical
    lines); y is cut into `bins` equal bins over the range of both sets.
    """
    both = np.concatenate([p_points, q_points])
    atoms = np.unique(both[:, 0])
    edges = np.linspace(both[:, 1].min(), both[:, 1].max(), bins + 1)

    def probabilities(points):
        column = np.searchsorted(atoms, points[:, 0])
        row = np.clip(np.searchsorted(edges, points[:, 1], side="right") - 1, 0, bins - 1)
        counts = np.bincount(column * bins + row, minlength=len(atoms) * bins)
        return counts / len(points)

    return probabilities(p_points), probabilities(q_points)


def total_variation(p, q):
    """sup_A |P(A) - Q(A)| = 1/2 sum |p - q| for discrete distributions."""
    return 0.5 * float(np.sum(np.abs(p - q)))


def kl_divergence(p, q):
    """sum p log(p / q); +inf where q = 0 < p."""
    from scipy.special import rel_entr

    return float(np.sum(rel_entr(p, q)))


def js_divergence(p, q):
    """1/2 KL(p || m) + 1/2 KL(q || m) with m = (p + q) / 2."""
    m = (p + q) / 2
    return 0.5 * kl_divergence(p, m) + 0.5 * kl_divergence(q, m)


def earth_mover(p_points, q_points):
    """W1 between two equally weighted point sets of the same size: the optimal assignment's mean cost.

    For uniform weights and equal sizes an optimal transport plan is a permutation (Birkhoff), so
    the assignment problem gives the exact Earth-Mover distance of the empirical distributions.
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.spatial.distance import cdist

    cost = cdist(p_points, q_points)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())


def estimate(theta, z_0, z_theta, u_1d, z_shift, bins):
    """The four distances between P_0 and P_theta from samples, and the notes' 1-D check.

    TV, KL and JS are those of the two histograms (`histograms`), W the exact optimal transport
    cost between the two point sets (`earth_mover`), and the 1-D check the Earth-Mover distance
    between samples of theta + U and U (scipy.stats.wasserstein_distance), also |theta|. At
    theta = 0 the estimates are the sampling noise of two independent samples of the same
    distribution (a few hundredths), not exactly 0.

    z_0, z_theta: independent draws of U[0, 1] for P_0 and P_theta; u_1d, z_shift: independent
    draws for the 1-D check W(U, theta + U).
    """
    from scipy.stats import wasserstein_distance

    p_points, q_points = sample_line(0.0, z_0), sample_line(theta, z_theta)
    p, q = histograms(p_points, q_points, bins)
    return {
        "tv": total_variation(p, q),
        "kl": kl_divergence(p, q),
        "js": js_divergence(p, q),
        "w": earth_mover(p_points, q_points),
        "w_1d": float(wasserstein_distance(theta + z_shift, u_1d)),
    }


# ---------------------------------------------------------------------------------------------
# Table and figure


def derivative(values, thetas):
    """Central differences d value / d theta (the same samples on both sides); nan next to inf."""
    values = np.asarray(values, float)
    with np.errstate(invalid="ignore"):
        slope = (values[2:] - values[:-2]) / (thetas[2:] - thetas[:-2])
    return thetas[1:-1], np.where(np.isfinite(slope), slope, np.nan)


def plot(thetas, exact, estimate_thetas, estimates, path):
    """Distances against theta (top row) and their derivatives (bottom row), one column each."""
    plt = plots.pyplot()
    titles = {
        "tv": "total variation",
        "kl": "KL(P_0 || P_theta)",
        "js": "Jensen-Shannon",
        "w": "Earth-Mover (Wasserstein-1)",
    }
    fig, axes = plt.subplots(2, 4, figsize=(15, 6.4), sharex=True)
    off = thetas != 0
    for column, name in enumerate(NAMES):
        top, bottom = axes[0, column], axes[1, column]
        values = np.array([row[name] for row in exact])
        shown = np.where(np.isinf(values), 1.5, values)  # +inf drawn at the top of the panel
        for side in (thetas < 0, thetas > 0):
            top.plot(thetas[side], shown[side], "C0-", lw=2, label="closed form" if side[0] else None)
        top.plot([0], [shown[~off][0]], "C0o", ms=6)
        got = np.array([row[name] for row in estimates])
        top.plot(estimate_thetas, np.where(np.isinf(got), 1.5, got), "C1x", ms=7, label="from samples")
        if name == "w":
            w_1d = [row["w_1d"] for row in estimates]
            top.plot(estimate_thetas, w_1d, "C2+", ms=7, label="1-D: W(U, theta + U)")
        if name == "kl":
            top.text(0, 1.38, "+inf for theta != 0", ha="center", fontsize=9)
            top.set_ylim(-0.05, 1.6)
        top.set(title=titles[name])
        top.legend(fontsize=8, loc="upper center" if name == "w" else "center right")
        # Derivatives: the closed forms are flat except W, whose slope is sign(theta); KL is
        # infinite on both sides, so it has none.
        if name == "kl":
            bottom.text(0, 0.5, "KL = +inf for theta != 0:\nno derivative", ha="center", fontsize=9)
        else:
            exact_slope = np.where(off, np.sign(thetas) if name == "w" else 0.0, np.nan)
            for side in (thetas < 0, thetas > 0):
                label = "closed form" if side[0] else None
                bottom.plot(thetas[side], exact_slope[side], "C0-", lw=2, label=label)
            centres, slope = derivative(got, estimate_thetas)
            bottom.plot(centres, slope, "C1x-", ms=6, lw=0.8, label="differences of the estimates")
            bottom.legend(fontsize=8, loc="lower right")
        bottom.set(xlabel="theta", ylim=(-3, 3))
        bottom.axhline(0, color="0.7", lw=0.6)
    axes[1, 0].set_ylabel("d distance / d theta")
    axes[0, 0].set_ylabel("distance")
    fig.suptitle("P_0 = (0, U[0,1]) against P_theta = (theta, U[0,1])")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def format_table(rows):
    """The printed table: closed forms, then the estimates (marked ~), "inf" where infinite."""
    header = ["theta", "TV", "KL", "JS", "W", "TV~", "KL~", "JS~", "W~", "W~ 1-D"]
    lines = ["  ".join(f"{h:>8}" for h in header)]
    for row in rows:
        cells = [row["theta"], *row["exact"].values(), *row["estimate"].values()]
        lines.append("  ".join(f"{v:>8.4f}" if math.isfinite(v) else f"{'inf':>8}" for v in cells))
    return "\n".join(lines)


def check(config):
    """Rejects options the recipe cannot use, before anything is written."""
    cli.reject_unused(config, UNUSED, "wasserstein_toy")
    if not config.theta_max > 0:
        raise cli.UsageError("--theta-max must be positive")
    for name in ("points", "estimates"):
        value = getattr(config, name)
        if value < 3 or value % 2 == 0:
            raise cli.UsageError(f"--{name} must be odd and at least 3 (so that 0 is included)")
    if config.samples < 2 or config.samples_1d < 2 or config.bins < 1:
        raise cli.UsageError("--samples and --samples-1d must be at least 2, --bins at least 1")


def theta_grid(theta_max, count):
    """`count` (odd) values of theta evenly over [-theta_max, theta_max], the middle one exactly 0."""
    thetas = np.linspace(-theta_max, theta_max, count)
    thetas[count // 2] = 0.0  # exactly, not a rounding residue
    return thetas


def table_rows(config, draws):
    """The printed table: closed forms and estimates at the notes' thetas and the range's ends."""
    table_thetas = sorted(
        {float(t) for t in TABLE_THETAS if abs(t) <= config.theta_max}
        | {0.0, config.theta_max, -config.theta_max}
    )
    return [
        {
            "theta": theta,
            "exact": closed_form(theta),
            "estimate": estimate(theta, *draws, config.bins),
        }
        for theta in table_thetas
    ]


def write_table(rows, path):
    """table.csv: theta, the four closed forms, the four estimates and the 1-D check."""
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["theta", *NAMES, *(f"{n}_estimate" for n in NAMES), "w_1d_estimate"])
        for row in rows:
            writer.writerow([row["theta"], *row["exact"].values(), *row["estimate"].values()])


def write_summary(rows, config, path):
    """summary.json: the table (infinity written as "inf": JSON has none) and the config."""

    def finite(value):
        return value if math.isfinite(value) else "inf"

    summary = {
        "log_2": LOG_2,
        "table": [
            {
                "theta": row["theta"],
                "exact": {k: finite(v) for k, v in row["exact"].items()},
                "estimate": {k: finite(v) for k, v in row["estimate"].items()},
            }
            for row in rows
        ],
        "config": dataclasses.asdict(config),
    }
    path.write_text(json.dumps(summary, indent=2))


def main(argv=None):
    config = cli.parse(
        Config,
        argv,
        prog="python -m recipes.wasserstein_toy",
        description=__doc__.split("\n")[0],
        quick=QUICK,
    )
    check(config)
    out = Path(config.out or "runs/wasserstein_toy")
    # One set of draws for every theta, so that differences between thetas are not sampling noise.
    rng = np.random.default_rng(config.seed)
    z_0, z_theta = rng.uniform(size=(2, config.samples))
    u_1d, z_shift = rng.uniform(size=(2, config.samples_1d))
    draws = (z_0, z_theta, u_1d, z_shift)

    thetas = theta_grid(config.theta_max, config.points)
    exact = [closed_form(theta) for theta in thetas]
    estimate_thetas = theta_grid(config.theta_max, config.estimates)
    estimates = [estimate(t, *draws, config.bins) for t in estimate_thetas]

    rows = table_rows(config, draws)
    print("Distances between P_0 = (0, U[0,1]) and P_theta = (theta, U[0,1]):")
    print(f"closed forms; ~ = estimated from {config.samples} samples of each (seed {config.seed})")
    print(format_table(rows))
    print(f"JS for theta != 0: log 2 = {LOG_2!r}")

    out.mkdir(parents=True, exist_ok=True)
    plot(thetas, exact, estimate_thetas, estimates, out / "distances.png")
    write_table(rows, out / "table.csv")
    write_summary(rows, config, out / "summary.json")
    print(f"Outputs in {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
