"""Default runs of the GAN recipes on each backend: quality, the issue's targets, wall time (not a test).

    python benchmarks/gan_quality.py                              # every run on every backend
    python benchmarks/gan_quality.py --runs gan wgan-gp --backends jax

Each run is `python -m recipes.NAME` with its defaults on the embedded data, one at a time (timings
on a shared machine mean little). The table printed at the end is the one in the README.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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


def run(name, backend, workdir):
    module, args, judge = RUNS[name]
    out = Path(workdir) / f"{name}-{backend}"
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT))
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", module, *args, "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if proc.returncode:
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        return f"failed (exit {proc.returncode}): {last}", False, seconds
    text, ok = judge(json.loads((out / "summary.json").read_text()))
    return text, ok, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "torch", "jax"])
    parser.add_argument("--out", help="keep the runs' outputs here (default: a temporary folder)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.runs:
            for backend in args.backends:
                text, ok, seconds = run(name, backend, args.out or tmp)
                minutes, rest = divmod(round(seconds), 60)
                row = f"| {name} | {backend} | {text} | {'yes' if ok else 'NO'} | {minutes}:{rest:02d} |"
                print(row, flush=True)
                rows.append((row, ok))
    print("\n| run | backend | result | target met | wall time |\n|---|---|---|---|---|")
    print("\n".join(row for row, _ in rows))
    return 0 if all(ok for _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
