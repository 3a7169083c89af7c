"""Default runs whose quality the test suite does not re-run: results, targets, wall time per backend.

    python benchmarks/default_runs.py                             # every run on every backend
    python benchmarks/default_runs.py --runs dqn --backends torch

Each run is `python -m recipes.NAME` with its defaults (seed 0), one at a time (timings on a shared
machine mean little), with OMP_NUM_THREADS=1 unless it is set (torch's threads fight over 2 cores).
Not a test. The targets: reinforcement learning (A 8), the issue's (q_learning: deterministic lake
> 80% success, random < 5%, Q-network > 50%; policy_gradient: mean return of the last 20 episodes
>= 150; dqn: a mean return of 195 over 100 consecutive episodes); translation (A 7.8, B 5.2): 99%
exact match and BLEU on the 1,000 held-out dates for the Luong attentions and the Transformer (the
suite runs only the Bahdanau default run; each of these takes one to two minutes per backend); vit:
held-out accuracy >= 88% on mnist5k; vae (A 9.3): held-out -ELBO <= 130 nats on binarised
mnist5k; diffusion (D 9.7): FID at least 5x below the untrained U-Net's; segmentation (D 6.1):
mIoU >= 0.8 on the held-out generated scenes; detection (D 6.2):
mAP@0.5 >= 0.5 on the held-out generated scenes. The table printed at the end is the README's.
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


def q_learning(summary):
    rate = {name: summary[name]["success"] for name in ("random", "dummy", "noise", "q_network")}
    text = (
        f"success: random {rate['random']:.2%}, dummy table {rate['dummy']:.1%}, noise "
        f"{rate['noise']:.1%} (last 10% {summary['noise']['last_success']:.1%}), slippery alpha "
        f"{summary['slippery_alpha']['success']:.1%}, Q-network {rate['q_network']:.1%}"
    )
    ok = rate["random"] < 0.05 and summary["noise"]["last_success"] > 0.8 and rate["q_network"] > 0.5
    return text, ok


def policy_gradient(summary):
    mean, random = summary["last20_mean"], summary["random_mean"]
    text = f"{summary['episodes']} episodes, mean return of the last 20 {mean:.1f} (random {random:.1f})"
    return text, mean >= 150


def dqn(summary):
    solved, best = summary["solved_at_episode"], summary["best_mean_100"]
    returns = summary["returns"]
    last100 = sum(returns[-100:]) / len(returns[-100:])
    where = f"solved at episode {solved}" if solved else f"not solved in {summary['episodes']} episodes"
    best = "n/a" if best is None else f"{best:.1f}"
    text = f"{where}, mean of the last 100 {last100:.1f} (best {best}), {summary['train_steps']} updates"
    return text, solved is not None


def translation(summary):
    exact, bleu = summary["exact_match"], summary["bleu"]
    text = f"held-out exact match {exact:.1%}, BLEU {bleu:.3f}"
    return text, exact >= 0.99 and bleu >= 0.99


def vit(summary):
    accuracy = summary["held_out_accuracy"]
    return f"held-out accuracy {accuracy:.1%} after {summary['epochs']} epochs", accuracy >= 0.88


def segmentation(summary):
    miou, iou = summary["held_out_miou"], summary["held_out_iou"]
    per_class = ", ".join(f"{name} {value:.3f}" for name, value in iou.items())
    return f"held-out mIoU {miou:.3f} (IoU {per_class})", miou >= 0.8


def detection(summary):
    mean_ap, untrained = summary["held_out_map50"], summary["untrained_map50"]
    per_class = ", ".join(f"{name} {ap:.3f}" for name, ap in summary["held_out_ap50"].items())
    text = f"held-out mAP@0.5 {mean_ap:.3f} (untrained {untrained:.3f}; AP {per_class})"
    return text, mean_ap >= 0.5


def vae(summary):
    value = summary["heldout_neg_elbo"]
    text = f"held-out -ELBO {value:.1f} nats per digit (from {summary['first_heldout_neg_elbo']:.1f})"
    return text, value <= 130


def autoencoder(summary):
    mse, untrained = summary["heldout_mse"], summary["untrained_heldout_mse"]
    text = f"latent {summary['latent']}: held-out MSE {mse:.5f} (untrained {untrained:.5f})"
    return text, mse < untrained / 2


def nade(summary):
    nll, baseline = summary["heldout_nll"], summary["independent_heldout_nll"]
    text = f"held-out NLL {nll:.1f} nats per digit (independent pixels {baseline:.1f})"
    return text, nll <= 120 and nll < baseline


def diffusion(summary):
    fid, untrained = summary["fid"], summary["fid_untrained"]
    text = (
        f"FID {fid:.1f} of {summary['samples']} DDIM samples (untrained U-Net {untrained:.1f}), "
        f"confidence {summary['confidence']:.3f}, class entropy {summary['class_entropy']:.2f}"
    )
    return text, fid <= untrained / 5


# name: (module, arguments, judge(summary) -> (text, target met))
RUNS = {
    "q_learning": ("recipes.q_learning", [], q_learning),
    "policy_gradient": ("recipes.policy_gradient", [], policy_gradient),
    "dqn": ("recipes.dqn", [], dqn),
    "luong_dot": ("recipes.nmt_attention", ["--attention", "luong-dot"], translation),
    "luong_general": ("recipes.nmt_attention", ["--attention", "luong-general"], translation),
    "transformer": ("recipes.transformer", [], translation),
    "vit": ("recipes.vit", [], vit),
    "vae": ("recipes.vae", [], vae),
    "autoencoder_128": ("recipes.autoencoder", [], autoencoder),
    "autoencoder_2": ("recipes.autoencoder", ["--latent", "2"], autoencoder),
    "autoencoder_1": ("recipes.autoencoder", ["--latent", "1"], autoencoder),
    "nade": ("recipes.nade", [], nade),
    "diffusion": ("recipes.diffusion", [], diffusion),
    "segmentation": ("recipes.segmentation", [], segmentation),
    "detection": ("recipes.detection", [], detection),
}


def run(runs, name, backend, workdir):
    """Runs `runs[name]` on `backend` with outputs in workdir/NAME-BACKEND: (text, target met, s)."""
    module, args, judge = runs[name]
    out = Path(workdir) / f"{name}-{backend}"
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT))
    env.setdefault("OMP_NUM_THREADS", "1")
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


def main(runs=RUNS, doc=__doc__):
    """The command line of a benchmark of default runs (this one, `gan_quality.py`): runs the
    `runs` asked for one at a time and prints their table; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--runs", nargs="+", default=list(runs), choices=list(runs))
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "torch", "jax"])
    parser.add_argument("--out", help="keep the runs' outputs here (default: a temporary folder)")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.runs:
            for backend in args.backends:
                text, ok, seconds = run(runs, name, backend, args.out or tmp)
                minutes, rest = divmod(round(seconds), 60)
                row = f"| {name} | {backend} | {text} | {'yes' if ok else 'NO'} | {minutes}:{rest:02d} |"
                print(row, flush=True)
                rows.append((row, ok))
    print("\n| run | backend | result | target met | wall time |\n|---|---|---|---|---|")
    print("\n".join(row for row, _ in rows))
    return 0 if all(ok for _, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
