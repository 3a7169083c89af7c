"""Default runs of the GAN recipes on each backend: quality, the issue's targets, wall time (not a test).

    python benchmarks/gan_quality.py                              # every run on every backend
    python benchmarks/gan_quality.py --runs gan wgan-gp --backends jax

Each run is `python -m recipes.NAME` with its defaults on the embedded data, one at a time (timings
on a shared machine mean little), torch on one OpenMP thread unless OMP_NUM_THREADS is set (the
runner of `default_runs.py`). The table printed at the end is the one in the README.
"""

import sys

from default_runs import main  # the same runner and table (this folder is first on the path)


def fid(summary):
    before, after = summary["untrained"]["fid"], summary["trained"]["fid"]
    return f"FID {before:.0f} -> {after:.1f}", after < 100 and after < before / 5


def label_accuracy(summary):
    after = summary["trained"]
    text = f"FID {after['fid']:.1f}, label accuracy {after['label_accuracy']:.1%}"
    return text, after["label_accuracy"] >= 0.8


def gan_1d(summary):
    mean, d_fake = summary["generated_mean"], summary["mean_d_fake"]
    text = f"G mean {mean:.3f}, std {summary['generated_std']:.3f}, D(G(z)) {d_fake:.3f}"
    return text, abs(mean - 4.0) <= 0.3 and 0.35 <= d_fake <= 0.65


def pix2pix(summary):
    baseline, l1 = summary["l1_baseline"], summary["l1_heldout"]
    return f"held-out L1 {l1:.4f} (input copy {baseline:.4f})", l1 < 0.5 * baseline


# name: (module, arguments, judge(summary) -> (text, target met))
RUNS = {
    "dcgan": ("recipes.dcgan", [], fid),
    "gan": ("recipes.gan", [], fid),
    "lsgan": ("recipes.gan", ["--loss", "lsgan"], fid),
    "wgan": ("recipes.wgan", [], fid),
    "wgan-gp": ("recipes.wgan", ["--penalty", "gp"], fid),
    "cgan": ("recipes.cgan", [], label_accuracy),
    "gan_1d": ("recipes.gan_1d", [], gan_1d),
    "pix2pix": ("recipes.pix2pix", [], pix2pix),
}


if __name__ == "__main__":
    sys.exit(main(RUNS, __doc__))
